//! The end-to-end suite's own library: the time-to-first-token rig shared by
//! `tests/tests/gateway_ttft.rs` and the benchmarks ([`ttft`]), and everything of the test kit
//! (`aigw-test-kit`, tests/kit), re-exported so the cross-plugin, gateway and CLI tests and the
//! benchmarks reach it under one name.

pub mod ttft;

pub use aigw_test_kit::*;

/// The WAT text of the bump allocator the hand-written test modules export as
/// `proxy_on_memory_allocate` (it needs a mutable global `$heap`: the next free address), as a
/// literal for `concat!`.
#[macro_export]
macro_rules! wat_bump_alloc {
    () => {
        r#"  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
"#
    };
}

/// The main route's chain as `make run` deploys it (`envoy/gateway.json`, `envoy/envoy.yaml`),
/// in request order.
pub const SHIPPED_CHAIN: [&str; 6] = [
    "ai-statistics",
    "ai-auth",
    "ai-guard",
    "ai-cache",
    "ai-token-ratelimit",
    "ai-proxy",
];
