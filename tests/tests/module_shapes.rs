//! Module shapes host-sim must take as Envoy does: a root context chosen by `root_id` (what
//! AssemblyScript proxy-runtime modules and multi-root modules need), WASI imported under the
//! old `wasi_unstable` name, and network (TCP) filter modules, which `inspect` must call so.
//! Also the properties `run` can set (route, cluster, client address, metadata), the absent
//! `upstream.address` before any upstream was contacted, and start-up logs shown by `run`.

use aigw_tests::cli::{host_sim, run_request, stderr, write};
use aigw_tests::module_path;
use std::path::PathBuf;

fn scratch(test: &str) -> PathBuf {
    aigw_tests::cli::scratch("shapes", test)
}

const GET: &str = "GET /status HTTP/1.1\r\nhost: api.example.com\r\n\r\n";

/// Like an AssemblyScript proxy-runtime module: the root context looks itself up by
/// `plugin_root_id` and aborts when no root context of that name was registered ("my_root" is
/// the only one).
const NAMED_ROOT: &str = concat!(
    r#"(module
  (import "env" "proxy_get_property" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 0) "plugin_root_id")
  (data (i32.const 32) "my_root")
  (data (i32.const 48) "root context my_root started")
  (func (export "proxy_abi_version_0_2_1"))
"#,
    aigw_tests::wat_bump_alloc!(),
    r#"  (func (export "proxy_on_context_create") (param $ctx i32) (param $parent i32)
    (local $ptr i32)
    (if (local.get $parent) (then (return)))
    (drop (call $get (i32.const 0) (i32.const 14) (i32.const 512) (i32.const 516)))
    (local.set $ptr (i32.load (i32.const 512)))
    ;; abort unless the value is exactly "my_root" (7 bytes)
    (if (i32.ne (i32.load (i32.const 516)) (i32.const 7)) (then unreachable))
    (if (i64.ne (i64.load (local.get $ptr)) (i64.load (i32.const 32)))
      (then
        ;; compare 7 bytes: mask the 8th
        (if (i64.ne
              (i64.and (i64.load (local.get $ptr)) (i64.const 0x00ffffffffffffff))
              (i64.and (i64.load (i32.const 32)) (i64.const 0x00ffffffffffffff)))
          (then unreachable))))
    (drop (call $log (i32.const 2) (i32.const 48) (i32.const 28)))))"#
);

#[test]
fn root_id_selects_the_root_context() {
    let dir = scratch("rootid");
    let m = write(&dir, "named.wat", NAMED_ROOT);
    let req = write(&dir, "req.http", GET);
    let (m, r) = (m.to_str().unwrap(), req.to_str().unwrap());
    // Without a root_id the module aborts at start, and the error says which flag helps.
    let out = host_sim(&["run", m, "--request", r]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--root-id"), "{}", stderr(&out));
    // With it the module starts and the request completes.
    let out = host_sim(&["run", m, "--request", r, "--root-id", "my_root"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("HTTP/1.1 200"));
    // The start-up log line is shown (it comes from proxy_on_context_create of the root).
    assert!(
        stderr(&out).contains("root context my_root started"),
        "{}",
        stderr(&out)
    );
}

/// Writes to stdout through `wasi_unstable.fd_write` when the VM starts.
const WASI_UNSTABLE: &str = r#"(module
  (import "wasi_unstable" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\10\00\00\00\18\00\00\00")
  (data (i32.const 16) "hello from wasi_unstable")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 64)))
    (i32.const 1)))"#;

#[test]
fn wasi_unstable_is_provided_as_envoy_does() {
    let dir = scratch("wasi");
    let m = write(&dir, "old_wasi.wat", WASI_UNSTABLE);
    let req = write(&dir, "req.http", GET);
    let out = host_sim(&["inspect", m.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["non_envoy_imports"], serde_json::json!([]), "{info}");
    // The VM-start output is a log line `run` shows.
    let out = run_request(&m, &req, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("hello from wasi_unstable"), "{err}");
    assert!(!err.contains("unimplemented import"), "{err}");
}

const TCP_FILTER: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_new_connection") (param i32) (result i32) (i32.const 0))
  (func (export "proxy_on_downstream_data") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_upstream_data") (param i32 i32 i32) (result i32) (i32.const 0)))"#;

#[test]
fn inspect_names_network_filters() {
    let dir = scratch("tcp");
    let m = write(&dir, "tcp.wat", TCP_FILTER);
    let out = host_sim(&["inspect", m.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kind:    network (TCP) filter"), "{text}");
    let out = host_sim(&["inspect", m.to_str().unwrap(), "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["kind"], "network");
    // `run` drives HTTP streams and says so instead of running nothing.
    let req = write(&dir, "req.http", GET);
    let out = run_request(&m, &req, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("network (TCP) filter"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_sets_stream_properties_and_upstream_address_waits_for_the_upstream() {
    let dir = scratch("props");
    let conformance = module_path("conformance");
    assert!(conformance.exists(), "run `make build` first");
    let req = write(
        &dir,
        "req.http",
        "POST /v1/chat/completions HTTP/1.1\r\nhost: a.example\r\nx-conf: props\r\nx-props: upstream.address,route_name,cluster_name,source.address,route_metadata.filter_metadata.team.owner\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"model\":\"m\"}",
    );
    let out = run_request(
        &conformance,
        &req,
        &[
            "--route-name",
            "chat-route",
            "--cluster-name",
            "llm-pool",
            "--source-address",
            "10.1.2.3:4567",
            "--route-metadata",
            r#"{"filter_metadata":{"team":{"owner":"ml-platform"}}}"#,
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let logs: Vec<&str> = report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    for want in [
        "conf: prop upstream.address=<none>",
        "conf: prop route_name=chat-route",
        "conf: prop cluster_name=llm-pool",
        "conf: prop source.address=10.1.2.3:4567",
        "conf: prop route_metadata.filter_metadata.team.owner=ml-platform",
    ] {
        assert!(logs.contains(&want), "missing {want:?} in {logs:#?}");
    }
}
