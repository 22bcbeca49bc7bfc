//! host-sim conformance: each Envoy behaviour the simulator promises, observed through the
//! conformance fixture plugin (tests/fixtures/conformance), which logs what it sees.

use aigw_tests::{logs_with, spec, RedisServer};
use host_sim::{CallReply, Cluster, FailPolicy, Request, Sim, SimOptions, UpstreamResponse};
use std::time::Duration;

fn sim_with(workers: usize, config: &str) -> Sim {
    let mut sim = Sim::new(SimOptions {
        workers,
        ..Default::default()
    });
    sim.add_plugin(spec("conformance").config_json(config))
        .expect("plugin loads");
    sim
}

fn conf(scenario: &str) -> Request {
    Request::post("/v1/chat/completions", "{\"model\":\"m\"}").header("x-conf", scenario)
}

fn ok() -> UpstreamResponse {
    UpstreamResponse::json(200, "{\"ok\":true}")
}

fn pos(logs: &[String], needle: &str) -> usize {
    logs.iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no log line with {needle:?} in {logs:#?}"))
}

#[test]
fn lifecycle_order_with_canary_and_log_before_done() {
    let mut sim = sim_with(1, "{}");
    let rec = sim.run(conf("none"), ok()).unwrap();
    assert!(rec.finished);
    let logs = logs_with(&sim, "conf:");
    // The canary VM configures first, then the worker VM: two configure calls.
    assert_eq!(
        logs.iter()
            .filter(|l| l.contains("configure root=1"))
            .count(),
        2
    );
    assert!(pos(&logs, "vm_start") < pos(&logs, "configure"));
    let order = [
        "create stream 2 root=1",
        "stream 2 req_headers",
        "stream 2 req_body",
        "stream 2 resp_headers",
        "stream 2 resp_body",
        "stream 2 log",
        "stream 2 done",
    ];
    for w in order.windows(2) {
        assert!(
            pos(&logs, w[0]) < pos(&logs, w[1]),
            "{} before {}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn context_ids_are_per_vm() {
    let mut sim = sim_with(2, "{}");
    for w in [0, 0, 1] {
        sim.run(conf("none").worker(w), ok()).unwrap();
    }
    let creates = logs_with(&sim, "create stream");
    assert_eq!(
        creates,
        vec![
            "conf: create stream 2 root=1",
            "conf: create stream 3 root=1",
            "conf: create stream 2 root=1"
        ]
    );
}

#[test]
fn header_windows_and_lowercasing() {
    let mut sim = sim_with(1, "{}");
    let rec = sim.run(conf("lowercase"), ok()).unwrap();
    // Added inside on_request_headers, keys lowercased.
    let up = rec.upstream_request.unwrap();
    assert_eq!(up.header("x-upper-case"), Some("v"));
    assert!(up.headers.iter().any(|(k, _)| k == "x-upper-case"));
    let logs = logs_with(&sim, "conf:");
    // Request headers are closed in the body callback and on the response path: BAD_ARGUMENT,
    // and the pairs call returns an empty map.
    assert!(logs[pos(&logs, "req_body")].contains("header_status=2"));
    let rh = &logs[pos(&logs, "resp_headers")];
    assert!(
        rh.contains("req_header_status=2") && rh.contains("req_pairs=0"),
        "{rh}"
    );
    // In on_log both maps are readable copies.
    let l = &logs[pos(&logs, "stream 2 log")];
    assert!(
        l.contains("req_header_status=0 value=lowercase") && l.contains("resp_status_read=0"),
        "{l}"
    );
    // A header added on the response path reaches the client.
    assert_eq!(rec.response.header("x-seen-by-resp"), Some("lowercase"));
}

#[test]
fn body_accumulates_after_pause_and_can_be_replaced() {
    let mut sim = sim_with(1, "{}");
    let rec = sim.run(conf("pause_body").chunked(5), ok()).unwrap();
    let sizes: Vec<String> = logs_with(&sim, "req_body size=");
    assert_eq!(sizes.len(), 3);
    assert!(sizes[0].contains("size=5 end=false"));
    assert!(sizes[1].contains("size=10 end=false"));
    assert!(sizes[2].contains("size=13 end=true"));
    let up = rec.upstream_request.unwrap();
    assert_eq!(up.body_str(), "{\"MODEL\":\"M\"}");
    // Nothing passed upstream before the plugin continued: one piece.
    assert_eq!(up.chunks.len(), 1);
}

#[test]
fn without_pause_each_callback_sees_only_its_chunk() {
    let mut sim = sim_with(1, "{}");
    let rec = sim.run(conf("none").chunked(5), ok()).unwrap();
    let sizes = logs_with(&sim, "req_body size=");
    assert!(sizes[1].contains("size=5 end=false"), "{sizes:?}");
    assert!(sizes[2].contains("size=3 end=true"), "{sizes:?}");
    assert_eq!(rec.upstream_request.unwrap().chunks.len(), 3);
}

#[test]
fn set_buffer_bytes_shapes() {
    let mut sim = sim_with(1, "{}");
    let rec = sim.run(conf("shapes"), ok()).unwrap();
    assert_eq!(
        rec.upstream_request.unwrap().body_str(),
        "<{\"model\":\"m\"}>"
    );
    assert!(sim.logged("shapes prepend=0 append=0 middle=2"));
}

#[test]
fn request_buffer_limit_gives_413() {
    let mut sim = Sim::new(SimOptions {
        buffer_limit: 16,
        ..Default::default()
    });
    sim.add_plugin(spec("conformance")).unwrap();
    let body = "x".repeat(40);
    let rec = sim
        .run(
            Request::post("/v1/chat/completions", body)
                .header("x-conf", "hold")
                .chunked(10),
            ok(),
        )
        .unwrap();
    assert_eq!(rec.response.status, 413);
    let lr = rec.local_reply.unwrap();
    assert_eq!(lr.details, "request_payload_too_large");
    assert!(!rec.upstream_request.unwrap().complete);
}

#[test]
fn response_buffer_limit_gives_500_before_headers_went_out() {
    let mut sim = Sim::new(SimOptions {
        buffer_limit: 16,
        ..Default::default()
    });
    sim.add_plugin(spec("conformance")).unwrap();
    let rec = sim
        .run(
            conf("resp_pause"),
            UpstreamResponse::json(200, "y".repeat(40)).chunked(10),
        )
        .unwrap();
    // Headers continued, so the client already has them: the overflow resets the stream.
    assert!(rec.response.reset, "{rec:?}");
}

#[test]
fn paused_response_body_is_replaced_whole() {
    let mut sim = sim_with(1, "{}");
    let rec = sim
        .run(
            conf("resp_pause"),
            UpstreamResponse::json(200, "abcdefghij").chunked(3),
        )
        .unwrap();
    assert_eq!(rec.response.body_str(), "[whole]");
    assert!(rec.response.header("content-length").is_none());
}

#[test]
fn local_reply_passes_through_own_response_callbacks() {
    let mut sim = sim_with(1, "{}");
    let rec = sim.run(conf("local_reply"), ok()).unwrap();
    assert!(rec.upstream_request.is_none());
    assert_eq!(rec.response.status, 403);
    assert_eq!(rec.response.body_str(), "denied by conformance");
    assert_eq!(rec.response.header("x-lr"), Some("1"));
    assert_eq!(rec.response.header("content-type"), Some("text/plain"));
    assert_eq!(rec.response.header("content-length"), Some("21"));
    // The reply went through this plugin's on_response_headers.
    assert_eq!(rec.response.header("x-seen-by-resp"), Some("local_reply"));
    assert!(sim.logged("resp_headers n=") && sim.logged("status=403"));
}

#[test]
fn local_reply_on_response_path_goes_straight_to_client() {
    let mut sim = sim_with(1, "{}");
    let rec = sim.run(conf("resp_local"), ok()).unwrap();
    assert_eq!(rec.response.status, 502);
    assert_eq!(rec.response.body_str(), "replaced");
    assert!(rec.response.header("x-seen-by-resp").is_none());
}

#[test]
fn close_stream_resets() {
    let mut sim = sim_with(1, "{}");
    let rec = sim.run(conf("close"), ok()).unwrap();
    assert!(rec.response.reset);
    assert!(rec.finished);
    assert!(sim.logged("stream 2 done"));
}

#[test]
fn callout_answered_after_pause_resumes_with_buffered_body() {
    let mut sim = sim_with(1, "{}");
    sim.add_cluster("svc", Cluster::Manual);
    let rec = sim
        .run(conf("callout").header("x-cluster", "svc"), ok())
        .unwrap();
    assert!(!rec.finished);
    assert!(rec.upstream_request.is_none());
    // The body arrived while headers were paused: no body callback yet.
    assert!(logs_with(&sim, "req_body").is_empty());
    let calls = sim.pending_http_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].call.cluster, "svc");
    assert!(calls[0]
        .call
        .headers
        .contains(&(":path".into(), "/probe".into())));
    sim.answer_http(calls[0].id, CallReply::json(200, "pong"))
        .unwrap();
    let logs = logs_with(&sim, "conf:");
    assert!(pos(&logs, "call response") < pos(&logs, "req_body size=13 end=true"));
    assert!(logs[pos(&logs, "call response")].contains("status=200 body=pong"));
    assert!(sim.logged("add header while paused status=0"));
    let sid = rec.stream_id;
    let up = sim.upstream_request(sid).unwrap();
    assert_eq!(up.header("x-call-status"), Some("200"));
    assert!(up.complete);
    sim.respond(sid, &ok()).unwrap();
    let rec = sim.take_record(sid).unwrap();
    assert!(rec.finished);
    assert_eq!(rec.response.status, 200);
}

#[test]
fn callout_failures_arrive_as_values() {
    // Reset: 0 headers.
    let mut sim = sim_with(1, "{}");
    sim.add_cluster("svc", Cluster::Manual);
    let r = sim
        .run(conf("callout").header("x-cluster", "svc"), ok())
        .unwrap();
    let id = sim.pending_http_calls()[0].id;
    sim.answer_http(id, CallReply::Reset).unwrap();
    assert_eq!(
        sim.upstream_request(r.stream_id)
            .unwrap()
            .header("x-call-status"),
        Some("reset")
    );

    // Timeout fires on the simulated clock: 504 from the host.
    let r = sim
        .run(
            conf("callout")
                .header("x-cluster", "svc")
                .header("x-timeout", "300"),
            ok(),
        )
        .unwrap();
    sim.advance(Duration::from_millis(299));
    assert!(sim.upstream_request(r.stream_id).is_none());
    sim.advance(Duration::from_millis(1));
    assert_eq!(
        sim.upstream_request(r.stream_id)
            .unwrap()
            .header("x-call-status"),
        Some("504")
    );
    assert!(sim.logged("body=upstream request timeout"));

    // Connect failure to a real address: 503.
    let port = aigw_tests::free_port();
    sim.add_cluster("dead", Cluster::Addr(([127, 0, 0, 1], port).into()));
    let r = sim
        .run(conf("callout").header("x-cluster", "dead"), ok())
        .unwrap();
    assert_eq!(r.response.status, 200);
    assert!(sim.logged("status=503 body=upstream connect error"));
}

#[test]
fn bad_callouts_are_bad_argument() {
    let mut sim = sim_with(1, "{}");
    sim.add_cluster("svc", Cluster::Manual);
    sim.run(conf("callout_bad"), ok()).unwrap();
    assert!(sim.logged("missing authority status=2"));
    assert!(sim.logged("unknown cluster status=2"));
    assert!(sim.pending_http_calls().is_empty());
}

#[test]
fn callout_to_a_real_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        let req = String::from_utf8_lossy(&buf[..n]).into_owned();
        s.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nhello")
            .unwrap();
        req
    });
    let mut sim = sim_with(1, "{}");
    sim.add_cluster("real", Cluster::Addr(addr));
    let rec = sim
        .run(conf("callout_reply").header("x-cluster", "real"), ok())
        .unwrap();
    let req = server.join().unwrap();
    assert!(req.starts_with("GET /probe HTTP/1.1"), "{req}");
    assert_eq!(rec.response.status, 200);
    assert_eq!(rec.response.body_str(), "hello");
    assert_eq!(rec.response.header("x-from"), Some("callout"));
}

#[test]
fn callout_answer_after_client_abort_is_harmless() {
    let mut sim = sim_with(1, "{}");
    sim.add_cluster("svc", Cluster::Manual);
    let r = sim
        .run(conf("callout").header("x-cluster", "svc"), ok())
        .unwrap();
    sim.client_abort(r.stream_id);
    assert!(sim.logged("stream 2 done"));
    let id = sim.pending_http_calls()[0].id;
    sim.answer_http(id, CallReply::json(200, "late")).unwrap();
    assert!(!sim.vm_failed(0, 0));
    let rec = sim.run(conf("none"), ok()).unwrap();
    assert_eq!(rec.response.status, 200);
}

#[test]
fn shared_data_cas_conflict_between_workers() {
    let mut sim = sim_with(2, "{}");
    sim.set_shared_data("", "k", b"v0");
    sim.run(conf("cas_read").worker(0), ok()).unwrap();
    sim.run(conf("cas_read").worker(1), ok()).unwrap();
    sim.run(conf("cas_write").worker(0), ok()).unwrap();
    sim.run(conf("cas_write").worker(1), ok()).unwrap();
    let writes = logs_with(&sim, "cas_write status=");
    assert_eq!(
        writes,
        vec!["conf: cas_write status=0", "conf: cas_write status=8"]
    );
    assert_eq!(sim.shared_data("", "k").unwrap(), b"w");
}

#[test]
fn shared_counter_loses_no_update_across_workers() {
    let mut sim = sim_with(3, "{}");
    for _ in 0..60 {
        sim.run(conf("shared_inc"), ok()).unwrap();
    }
    assert_eq!(sim.shared_data("", "counter").unwrap(), b"60");
}

#[test]
fn shared_queue_notifies_the_registering_root() {
    let mut sim = sim_with(2, "{\"queue\":true}");
    sim.run(conf("enqueue").worker(0), ok()).unwrap();
    assert!(sim.logged("queue ready id=1 status=0 item=hello"));
    assert!(sim.logged("dequeue again status=7"));
}

#[test]
fn metrics_follow_envoy_type_rules() {
    let mut sim = sim_with(1, "{}");
    sim.run(conf("metrics"), ok()).unwrap();
    assert!(sim.logged("metrics inc0=2 inc3=0 gauge=0 hist_inc=2 hist_get=2"));
    assert_eq!(sim.metric("conf_counter"), Some(3));
    assert_eq!(sim.metric("conf_gauge"), Some(-2));
    assert_eq!(sim.metrics()["conf_hist"].samples, vec![42]);
}

#[test]
fn ticks_fire_on_the_simulated_clock_per_worker() {
    let mut sim = sim_with(2, "{\"tick_ms\":1000}");
    sim.advance(Duration::from_millis(999));
    assert!(logs_with(&sim, "tick 1").is_empty());
    sim.advance(Duration::from_millis(2600));
    // Three ticks on each worker's root context.
    assert_eq!(logs_with(&sim, "conf: tick").len(), 6);
    assert_eq!(logs_with(&sim, "tick 3").len(), 2);
}

#[test]
fn properties_and_set_property_round_trip() {
    let mut sim = sim_with(1, "{}");
    let rec = sim
        .run(
            conf("props")
                .route("chat-route")
                .header("x-props", "request.path,request.method,request.url_path,route_name,xds.cluster_name,plugin_name,source.address,response.code,nope.nothing"),
            ok(),
        )
        .unwrap();
    for want in [
        "prop request.path=/v1/chat/completions",
        "prop request.method=POST",
        "prop request.url_path=/v1/chat/completions",
        "prop route_name=chat-route",
        "prop xds.cluster_name=upstream",
        "prop plugin_name=conformance",
        "prop source.address=127.0.0.1:50000",
        "prop response.code=<none>",
        "prop nope.nothing=<none>",
        "roundtrip=set-by-conf",
    ] {
        assert!(sim.logged(want), "missing {want:?}");
    }
    assert_eq!(rec.filter_state.get("conf.state").unwrap(), b"set-by-conf");
}

#[test]
fn foreign_functions() {
    let mut sim = sim_with(1, "{}");
    sim.run(conf("foreign"), ok()).unwrap();
    assert!(sim.logged("foreign clear_route_cache=0 nope=1"));
}

#[test]
fn trap_fail_closed_fails_that_worker_only() {
    let mut sim = sim_with(2, "{}");
    let rec = sim.run(conf("trap").worker(0), ok()).unwrap();
    assert_eq!(rec.response.status, 503);
    assert_eq!(rec.local_reply.unwrap().details, "wasm_fail_stream");
    assert!(sim.logged("panicked at") || sim.logged("conformance trap"));
    assert!(sim.vm_failed(0, 0));
    let again = sim.run(conf("none").worker(0), ok()).unwrap();
    assert_eq!(again.response.status, 503);
    assert!(again.upstream_request.is_none());
    let other = sim.run(conf("none").worker(1), ok()).unwrap();
    assert_eq!(other.response.status, 200);
}

#[test]
fn trap_fail_open_skips_the_plugin() {
    let mut sim = Sim::new(Default::default());
    sim.add_plugin(spec("conformance").fail_policy(FailPolicy::Open))
        .unwrap();
    assert_eq!(sim.run(conf("trap"), ok()).unwrap().response.status, 503);
    let rec = sim.run(conf("lowercase"), ok()).unwrap();
    assert_eq!(rec.response.status, 200);
    // The plugin did not run: no header added.
    assert!(rec
        .upstream_request
        .unwrap()
        .header("x-upper-case")
        .is_none());
}

#[test]
fn trap_fail_reload_builds_a_new_vm_after_backoff() {
    let mut sim = Sim::new(Default::default());
    sim.add_plugin(spec("conformance").fail_policy(FailPolicy::Reload))
        .unwrap();
    assert_eq!(sim.run(conf("trap"), ok()).unwrap().response.status, 503);
    assert_eq!(sim.run(conf("none"), ok()).unwrap().response.status, 503);
    sim.advance(Duration::from_secs(1));
    let rec = sim.run(conf("lowercase"), ok()).unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(
        rec.upstream_request.unwrap().header("x-upper-case"),
        Some("v")
    );
    assert!(!sim.vm_failed(0, 0));
}

#[test]
fn rejected_config_is_an_error_with_the_plugin_message() {
    let mut sim = Sim::new(Default::default());
    let err = sim
        .add_plugin(spec("conformance").config_json("{\"reject\":true}"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("rejected its configuration"), "{err}");
    assert!(err.contains("reject: asked to reject"), "{err}");
}

#[test]
fn environment_reaches_wasi() {
    let mut sim = Sim::new(Default::default());
    sim.add_plugin(spec("conformance").env("CONF_ENV", "hello"))
        .unwrap();
    assert!(sim.logged("env CONF_ENV=hello"));
}

#[test]
fn hot_reload_keeps_open_streams_on_the_old_root() {
    let mut sim = sim_with(1, "{\"gen\":1}");
    // A stream that is mid-response when the reload happens.
    let sid = sim.begin(conf("none")).unwrap();
    aigw_tests::send_200(&mut sim, sid, "text/event-stream");
    sim.send_response_body(sid, b"data: 1\n\n", false).unwrap();
    sim.reload(0, spec("conformance").config_json("{\"gen\":2}"))
        .unwrap();
    // Same module: a new root context (id 3) on the same VM.
    assert!(sim.logged("configure root=3 config={\"gen\":2}"));
    assert!(!sim.logged("root 1 done"));
    let fresh = sim.run(conf("none"), ok()).unwrap();
    assert_eq!(fresh.response.status, 200);
    assert!(sim.logged("create stream 4 root=3"));
    sim.send_response_body(sid, b"data: 2\n\n", true).unwrap();
    let old = sim.take_record(sid).unwrap();
    assert_eq!(old.response.body_str(), "data: 1\n\ndata: 2\n\n");
    assert!(old.finished);
    // The old root is finished once its last stream ended.
    let logs = logs_with(&sim, "conf:");
    assert!(pos(&logs, "stream 2 done") < pos(&logs, "root 1 done"));
}

#[test]
fn hot_reload_with_a_rejected_config_keeps_the_old_one() {
    let mut sim = sim_with(1, "{\"gen\":1}");
    assert!(sim
        .reload(0, spec("conformance").config_json("{\"reject\":true}"))
        .is_err());
    let rec = sim.run(conf("lowercase"), ok()).unwrap();
    assert_eq!(
        rec.upstream_request.unwrap().header("x-upper-case"),
        Some("v")
    );
}

#[test]
fn filter_chain_order() {
    let mut sim = Sim::new(Default::default());
    sim.add_plugin(spec("conformance").name("first")).unwrap();
    sim.add_plugin(spec("conformance").name("second")).unwrap();
    sim.run(conf("none"), ok()).unwrap();
    let seq: Vec<(String, String)> = sim
        .logs()
        .into_iter()
        .filter(|l| l.message.contains("req_headers") || l.message.contains("resp_headers"))
        .map(|l| {
            let kind = if l.message.contains("resp_headers") {
                "resp"
            } else {
                "req"
            };
            (l.plugin, kind.to_string())
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("first", "req"),
        ("second", "req"),
        ("second", "resp"),
        ("first", "resp"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seq, want);
}

#[test]
fn upstream_reset_before_headers_is_a_503_through_the_plugin() {
    let mut sim = sim_with(1, "{}");
    let sid = sim.begin(conf("none")).unwrap();
    sim.upstream_reset(sid);
    let rec = sim.take_record(sid).unwrap();
    assert_eq!(rec.response.status, 503);
    assert_eq!(rec.response.header("x-seen-by-resp"), Some("none"));
}

#[test]
fn grpc_unary_callout() {
    let mut sim = sim_with(1, "{}");
    sim.add_cluster("grpc", Cluster::Manual);
    let rec = sim.run(conf("grpc"), ok()).unwrap();
    assert!(sim.upstream_request(rec.stream_id).is_none());
    let calls = sim.pending_grpc_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].call.method, "Say");
    assert_eq!(calls[0].call.message, b"ping");
    sim.answer_grpc(calls[0].id, Ok(b"pong".to_vec())).unwrap();
    assert!(sim.logged("grpc response token=1 status=0 msg=pong"));
    // The response resumed the stream.
    assert!(sim.upstream_request(rec.stream_id).unwrap().complete);
}

#[test]
fn redis_calls_reach_a_real_redis() {
    let redis = RedisServer::start();
    let mut sim = Sim::new(Default::default());
    sim.add_redis("redis", redis.addr);
    sim.add_plugin(spec("conformance").config_json("{\"redis\":\"redis\"}"))
        .unwrap();
    assert!(sim.logged("redis_init status=0"));
    sim.run(conf("redis"), ok()).unwrap();
    assert!(
        sim.logged("status=0 reply=\"+OK\\r\\n\""),
        "{:#?}",
        logs_with(&sim, "redis")
    );
    assert!(sim.logged("status=0 reply=\"$2\\r\\nv1\\r\\n\""));
}

#[test]
fn redis_down_is_a_failed_status() {
    let mut redis = RedisServer::start();
    let mut sim = Sim::new(Default::default());
    sim.add_redis("redis", redis.addr);
    sim.add_plugin(spec("conformance").config_json("{\"redis\":\"redis\"}"))
        .unwrap();
    redis.stop();
    sim.run(conf("redis"), ok()).unwrap();
    assert_eq!(logs_with(&sim, "redis reply").len(), 2);
    assert!(logs_with(&sim, "redis reply")
        .iter()
        .all(|l| l.contains("status=1")));
}

#[test]
fn modules_are_checked_on_load() {
    let loader = host_sim::Loader::new();
    let e = loader.load_bytes(b"hello").unwrap_err().to_string();
    assert!(e.contains("not a WebAssembly module"), "{e}");
    let no_marker = r#"(module (memory (export "memory") 1) (func (export "malloc") (param i32) (result i32) i32.const 0))"#;
    let e = loader
        .load_bytes(no_marker.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing Proxy-Wasm ABI version"), "{e}");
    let old = r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_1_0")))"#;
    let e = loader.load_bytes(old.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("unknown Proxy-Wasm ABI version"), "{e}");
    let higress = r#"(module
        (import "env" "proxy_some_future_call" (func (param i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "malloc") (param i32) (result i32) i32.const 1024)
        (func (export "proxy_abi_version_0_2_100")))"#;
    let m = loader.load_bytes(higress.as_bytes()).unwrap();
    assert_eq!(m.abi, host_sim::AbiVersion::V0_2_100);
    let info = host_sim::inspect(&m);
    assert_eq!(info.non_envoy_imports, vec!["env.proxy_some_future_call"]);
    // An unknown import still links: the module instantiates and serves a request.
    let mut sim = Sim::with_loader(loader.clone(), Default::default());
    sim.add_plugin(host_sim::PluginSpec::new("wat", m)).unwrap();
    assert_eq!(
        sim.run(Request::get("/"), ok()).unwrap().response.status,
        200
    );
}

mod router {
    use super::*;
    use host_sim::router::{Endpoint, Route, Upstream};

    fn chains() -> (Sim, Sim) {
        let mut down = Sim::new(Default::default());
        down.add_plugin(spec("conformance").name("down")).unwrap();
        let mut up = down.sibling();
        up.add_plugin(spec("conformance").name("up")).unwrap();
        (down, up)
    }

    fn route() -> Route {
        Route::new(vec![
            Endpoint::new("10.0.0.1:443", 0),
            Endpoint::new("10.0.0.2:443", 1),
        ])
        .retry_on(&["5xx", "connect-failure", "reset"], 1)
    }

    fn req() -> Request {
        conf("props").header("x-props", "upstream.address")
    }

    #[test]
    fn retry_moves_to_the_next_priority_and_reruns_upstream_filters() {
        let (mut down, mut up) = chains();
        let out = down
            .run_routed(&mut up, &route(), req(), |ep, _| {
                if ep.priority == 0 {
                    Upstream::Respond(UpstreamResponse::json(503, "busy"))
                } else {
                    Upstream::Respond(UpstreamResponse::sse("data: a\n\ndata: b\n\n").chunked(4))
                }
            })
            .unwrap();
        assert_eq!(out.attempts.len(), 2);
        assert_eq!(out.attempts[0].status, 503);
        assert_eq!(out.attempts[1].endpoint.address, "10.0.0.2:443");
        assert_eq!(out.record.response.status, 200);
        assert_eq!(out.record.response.body_str(), "data: a\n\ndata: b\n\n");
        assert!(out.record.finished);
        // The upstream filter ran once per attempt and saw each chosen host.
        let seen: Vec<String> = sim_logs(&down, "prop upstream.address=");
        assert!(seen.iter().any(|l| l.ends_with("10.0.0.1:443")), "{seen:?}");
        assert!(seen.iter().any(|l| l.ends_with("10.0.0.2:443")), "{seen:?}");
        // Both chains wrote into the same process-wide log.
        assert!(down.logs().iter().any(|l| l.plugin == "up"));
    }

    fn sim_logs(sim: &Sim, needle: &str) -> Vec<String> {
        logs_with(sim, needle)
    }

    #[test]
    fn connection_failures_retry_then_give_up_with_503() {
        let (mut down, mut up) = chains();
        let out = down
            .run_routed(&mut up, &route(), req(), |ep, _| {
                if ep.priority == 0 {
                    Upstream::ConnectFailure
                } else {
                    Upstream::Respond(ok())
                }
            })
            .unwrap();
        assert_eq!(out.attempts[0].failure, Some("connect-failure"));
        assert_eq!(out.record.response.status, 200);

        let out = down
            .run_routed(&mut up, &route(), req(), |_, _| Upstream::Reset)
            .unwrap();
        assert_eq!(out.attempts.len(), 2);
        assert_eq!(out.record.response.status, 503);
        // The router's reply passed through the downstream plugin's response callback.
        assert_eq!(out.record.response.header("x-seen-by-resp"), Some("props"));
    }

    #[test]
    fn without_a_retry_policy_the_first_answer_is_final() {
        let (mut down, mut up) = chains();
        let route = Route::new(vec![
            Endpoint::new("10.0.0.1:443", 0),
            Endpoint::new("10.0.0.2:443", 1),
        ]);
        let out = down
            .run_routed(&mut up, &route, req(), |_, _| {
                Upstream::Respond(UpstreamResponse::json(429, "slow down"))
            })
            .unwrap();
        assert_eq!(out.attempts.len(), 1);
        assert_eq!(out.record.response.status, 429);
        assert_eq!(out.record.response.body_str(), "slow down");
    }
}

#[test]
fn content_length_reaches_filters_and_a_stale_one_is_a_framing_error() {
    let mut sim = sim_with(1, "{}");
    // The client's content-length passes the chain, as in Envoy; transfer-encoding does not.
    let rec = sim.run(conf("plain"), ok()).unwrap();
    let up = rec.upstream_request.unwrap();
    assert_eq!(up.header("content-length"), Some("13"));
    assert_eq!(up.framing_error, None);
    assert_eq!(rec.response.header("content-length"), Some("11"));
    assert_eq!(rec.response.framing_error, None);
    let rec = sim
        .run(
            Request::post("/v1/x", "{}")
                .header("transfer-encoding", "chunked")
                .header("x-conf", "plain"),
            ok(),
        )
        .unwrap();
    let up = rec.upstream_request.unwrap();
    assert_eq!(up.header("transfer-encoding"), None);
    assert_eq!(up.header("content-length"), None);

    // A request body grown by 2 bytes under the client's content-length.
    let rec = sim.run(conf("shapes"), ok()).unwrap();
    let up = rec.upstream_request.unwrap();
    assert_eq!(
        up.framing_error.as_deref(),
        Some("content-length is 13 but 15 body bytes were sent")
    );
    // The same with content-length removed first: no error.
    let rec = sim
        .run(conf("shapes").header("x-conf-drop-cl", "1"), ok())
        .unwrap();
    let up = rec.upstream_request.unwrap();
    assert_eq!(up.header("content-length"), None);
    assert_eq!(up.framing_error, None);

    // A response rewritten to another size under the upstream's content-length.
    let answer = || UpstreamResponse::json(200, "{\"ok\":true,\"n\":12345}");
    let rec = sim.run(conf("resp_rewrite"), answer()).unwrap();
    assert_eq!(rec.response.body_str(), "[rewritten]");
    assert_eq!(rec.response.header("content-length"), Some("21"));
    assert_eq!(
        rec.response.framing_error.as_deref(),
        Some("content-length is 21 but 11 body bytes were sent")
    );
    let rec = sim
        .run(conf("resp_rewrite").header("x-conf-drop-cl", "1"), answer())
        .unwrap();
    assert_eq!(rec.response.body_str(), "[rewritten]");
    assert_eq!(rec.response.framing_error, None);
}

#[test]
fn an_upstream_reset_after_response_headers_resets_the_client_with_its_reason() {
    let mut sim = sim_with(1, "{}");
    let sid = sim.begin(conf("plain")).unwrap();
    aigw_tests::send_200(&mut sim, sid, "text/event-stream");
    sim.send_response_body(sid, b"data: 1\n\n", false).unwrap();
    sim.upstream_reset(sid);
    let rec = sim.take_record(sid).unwrap();
    assert_eq!(rec.response.status, 200);
    assert!(rec.response.reset && !rec.response.complete, "{rec:?}");
    assert_eq!(
        rec.response.reset_reason.as_deref(),
        Some("upstream_reset_after_response_started{connection_termination}")
    );
    // The client going away is recorded as such.
    let sid = sim.begin(conf("plain")).unwrap();
    sim.client_abort(sid);
    let rec = sim.take_record(sid).unwrap();
    assert_eq!(
        rec.response.reset_reason.as_deref(),
        Some("downstream_remote_disconnect")
    );
}
