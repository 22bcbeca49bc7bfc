//! Request-headers StopIteration under Higress's ABI (`proxy_abi_version_0_2_100`): Higress's
//! host passes it to Envoy as it is, so body data still reaches the filter's body callback and
//! the held headers stay writable there; every other host turns it into "stop all", unless the
//! plugin has Envoy's `allow_on_headers_stop_iteration` (Envoy 1.35+), which gives the standard
//! ABI the same behaviour. The same tiny module is run with both ABI markers.

use host_sim::{global_loader, PluginSpec, Request, Sim, SimOptions, UpstreamResponse};
use std::time::Duration;

/// A module that stops in `on_request_headers`, logs "body" and adds `x-from-body: yes` in
/// every `on_request_body` (returning Pause), and continues the request from its 1 s tick.
fn module(abi_marker: &str) -> String {
    format!(
        concat!(
            r#"(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $effective (param i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  (global $stream (mut i32) (i32.const 0))
  (data (i32.const 0) "body")
  (data (i32.const 16) "x-from-body")
  (data (i32.const 32) "yes")
  (func (export "{abi_marker}"))
"#,
            aigw_tests::wat_bump_alloc!(),
            r#"  (func (export "proxy_on_context_create") (param $ctx i32) (param $parent i32)
    (if (local.get $parent) (then (global.set $stream (local.get $ctx)))))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $tick (i32.const 1000)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (i32.const 1))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 4)))
    (drop (call $add_header (i32.const 0) (i32.const 16) (i32.const 11) (i32.const 32) (i32.const 3)))
    (i32.const 1))
  (func (export "proxy_on_tick") (param i32)
    (if (global.get $stream)
      (then
        (drop (call $effective (global.get $stream)))
        (drop (call $continue (i32.const 0)))))))"#
        ),
        abi_marker = abi_marker
    )
}

fn gateway(abi_marker: &str) -> Sim {
    gateway_with(abi_marker, false)
}

fn gateway_with(abi_marker: &str, allow_on_headers_stop_iteration: bool) -> Sim {
    let m = global_loader()
        .load_bytes(module(abi_marker).as_bytes())
        .expect("module compiles");
    let mut sim = Sim::new(SimOptions::default());
    sim.add_plugin(
        PluginSpec::new("stopper", m)
            .allow_on_headers_stop_iteration(allow_on_headers_stop_iteration),
    )
    .unwrap();
    sim
}

fn body_callbacks(sim: &Sim) -> usize {
    sim.logs().iter().filter(|l| l.message == "body").count()
}

const BODY: &str = r#"{"model":"m","messages":[]}"#;

#[test]
fn higress_abi_runs_body_callbacks_while_headers_are_held() {
    held_headers_then_body(gateway("proxy_abi_version_0_2_100"));
}

#[test]
fn envoy_allow_on_headers_stop_iteration_holds_only_the_headers() {
    held_headers_then_body(gateway_with("proxy_abi_version_0_2_1", true));
}

fn held_headers_then_body(mut sim: Sim) {
    let sid = sim
        .begin(Request::post("/v1/chat/completions", BODY).chunked(10))
        .unwrap();
    // Three pieces, three body callbacks; the headers are still held.
    assert_eq!(body_callbacks(&sim), 3);
    assert!(sim.upstream_request(sid).is_none());
    // The continue sends the headers (with what the body callback added), then the body the
    // filter has already seen, in one piece and without calling it again.
    sim.advance(Duration::from_secs(1));
    let up = sim.upstream_request(sid).expect("released");
    assert_eq!(up.header("x-from-body"), Some("yes"));
    assert_eq!(up.body_str(), BODY);
    assert_eq!(up.chunks.len(), 1);
    assert!(up.complete);
    assert_eq!(body_callbacks(&sim), 3);
    sim.respond(sid, &UpstreamResponse::json(200, "{}"))
        .unwrap();
    let rec = sim.take_record(sid).unwrap();
    assert!(rec.finished);
    assert_eq!(rec.response.status, 200);
}

#[test]
fn standard_abi_turns_stop_iteration_into_stop_all() {
    let mut sim = gateway("proxy_abi_version_0_2_1");
    let sid = sim
        .begin(Request::post("/v1/chat/completions", BODY).chunked(10))
        .unwrap();
    // Stop all: the body is buffered without calling the filter.
    assert_eq!(body_callbacks(&sim), 0);
    assert!(sim.upstream_request(sid).is_none());
    // The continue releases the headers; the held body then goes to the same filter, whose
    // header window has closed (its header is refused) and which pauses the body.
    sim.advance(Duration::from_secs(1));
    assert_eq!(body_callbacks(&sim), 1);
    let up = sim.upstream_request(sid).expect("headers went upstream");
    assert_eq!(up.header("x-from-body"), None);
    assert!(up.body.is_empty() && !up.complete);
    // The next continue releases the body.
    sim.advance(Duration::from_secs(1));
    let up = sim.upstream_request(sid).expect("upstream");
    assert_eq!(up.body_str(), BODY);
    assert!(up.complete);
}

// ---- Response headers: Higress keeps StopIteration there too ----
//
// Higress's proxy-wasm-cpp-host turns a headers StopIteration into "stop all" only for modules
// whose `proxy_on_request_headers` was bound with the 0.1/0.2 ABI; a 0_2_100 module binds it as
// the Higress variant, so both header callbacks keep plain StopIteration. The Go SDK returns it
// from response headers whenever the plugin wants the response body: the body callbacks must
// still run, or the stream never ends.

/// gpustack-token-usage 1.2.2 (Go, Higress ABI) from the gpustack wheel, configured with
/// `config`.
fn token_usage(config: &str) -> Sim {
    let path = aigw_tests::gpustack_module("gpustack-token-usage", "1.2.2");
    let spec = PluginSpec::from_file(&path)
        .expect("module loads")
        .name("gpustack-token-usage")
        .config_json(config);
    let mut sim = Sim::new(SimOptions::default());
    if let Err(e) = sim.add_plugin(spec) {
        panic!("rejected {config}: {e:#}\n{:#?}", sim.logs());
    }
    sim
}

const COMPLETION: &str = r#"{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;

#[test]
fn higress_response_stop_iteration_still_delivers_the_body() {
    let mut sim = token_usage("{}");
    let rec = sim
        .run(
            Request::post("/v1/chat/completions", BODY),
            UpstreamResponse::json(200, COMPLETION),
        )
        .unwrap();
    assert!(rec.finished, "{:?}\n{:#?}", rec.response, sim.logs());
    assert!(rec.response.complete);
    assert_eq!(rec.response.status, 200);
    assert_eq!(rec.response.body_str(), COMPLETION);
}

#[test]
fn higress_response_stop_iteration_passes_a_429_to_the_client() {
    let mut sim = token_usage("{}");
    let busy = r#"{"error":{"message":"rate limited"}}"#;
    let rec = sim
        .run(
            Request::post("/v1/chat/completions", BODY),
            UpstreamResponse::json(429, busy),
        )
        .unwrap();
    assert!(rec.finished, "{:?}", rec.response);
    assert_eq!(rec.response.status, 429);
    assert_eq!(rec.response.body_str(), busy);
}
