//! The SDK's hostcall layer, run for real inside host-sim: the `hello` example plugin and the
//! `sdk-probe` fixture (tests/fixtures/sdk-probe).

use aigw_tests::{logs_with, spec};
use host_sim::{CallReply, Cluster, Request, Sim, SimOptions, UpstreamResponse};
use std::time::Duration;

fn ok() -> UpstreamResponse {
    UpstreamResponse::json(200, "{}")
}

const HELLO: &str =
    r#"{"header_name":"x-hello","header_value":"hi","blocked_prefixes":["/admin"]}"#;

fn hello(config: &str) -> Sim {
    let mut sim = Sim::new(Default::default());
    sim.add_plugin(spec("hello").config_json(config)).unwrap();
    sim
}

#[test]
fn hello_adds_its_header() {
    let mut sim = hello(HELLO);
    let rec = sim.run(Request::get("/v1/chat/completions"), ok()).unwrap();
    assert_eq!(rec.upstream_request.unwrap().header("x-hello"), Some("hi"));
    assert_eq!(rec.response.status, 200);
}

#[test]
fn hello_blocks_in_the_clients_protocol() {
    let mut sim = hello(
        r#"{"header_name":"x-hello","header_value":"hi","blocked_prefixes":["/admin","/v1/messages"]}"#,
    );
    let rec = sim.run(Request::post("/admin/x", "{}"), ok()).unwrap();
    assert!(rec.upstream_request.is_none());
    assert_eq!(rec.response.status, 403);
    assert_eq!(
        rec.response.header("content-type"),
        Some("application/json")
    );
    assert_eq!(
        rec.response.json(),
        serde_json::json!({"error":{"message":"this path is blocked","type":"permission_error","param":null,"code":"permission_denied"}})
    );
    let rec = sim.run(Request::post("/v1/messages", "{}"), ok()).unwrap();
    assert_eq!(rec.response.status, 403);
    assert_eq!(
        rec.response.json(),
        serde_json::json!({"type":"error","error":{"type":"permission_error","message":"this path is blocked"}})
    );
}

#[test]
fn config_errors_are_one_clear_line() {
    let mut sim = Sim::new(Default::default());
    let err = sim
        .add_plugin(spec("hello").config_json(r#"{"header_value":"x"}"#))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("hello: invalid config: header_name: required field is missing"),
        "{err}"
    );
    let errors: Vec<_> = sim
        .logs()
        .into_iter()
        .filter(|l| l.level >= host_sim::LogLevel::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");

    let err = Sim::new(Default::default())
        .add_plugin(spec("sdk-probe").config_json(r#"{"mode":"other"}"#))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sdk-probe: invalid config: mode: expected \"probe\", got \"other\""),
        "{err}"
    );
    let err = Sim::new(Default::default())
        .add_plugin(spec("sdk-probe").config_json(r#"{"mode":"probe","extra":1}"#))
        .unwrap_err()
        .to_string();
    assert!(err.contains("sdk-probe: invalid config: extra"), "{err}");
}

#[test]
fn higress_rules_select_per_route_config() {
    let cfg = r#"{"_rules_":[{"_match_route_":["r1"],"header_name":"x-r","header_value":"1"},
                             {"_match_domain_":["*.example.com"],"header_name":"x-d","header_value":"2","blocked_prefixes":["/x"]}]}"#;
    let mut sim = hello(cfg);
    let rec = sim.run(Request::get("/a").route("r1"), ok()).unwrap();
    assert_eq!(rec.upstream_request.unwrap().header("x-r"), Some("1"));
    let rec = sim
        .run(Request::get("/a").authority("api.example.com:8443"), ok())
        .unwrap();
    assert_eq!(rec.upstream_request.unwrap().header("x-d"), Some("2"));
    let rec = sim
        .run(Request::get("/x").authority("api.example.com"), ok())
        .unwrap();
    assert_eq!(rec.response.status, 403);
    // No rule and no global config: the stream passes through untouched.
    let rec = sim.run(Request::get("/x").route("other"), ok()).unwrap();
    let up = rec.upstream_request.unwrap();
    assert!(up.header("x-r").is_none() && up.header("x-d").is_none());
    assert_eq!(rec.response.status, 200);
    // A rule's config is merged over the global one.
    let mut sim = hello(
        r#"{"header_name":"x-g","header_value":"g","_rules_":[{"_match_route_":["r1"],"header_value":"rule"}]}"#,
    );
    let rec = sim.run(Request::get("/a").route("r1"), ok()).unwrap();
    assert_eq!(rec.upstream_request.unwrap().header("x-g"), Some("rule"));
    let rec = sim.run(Request::get("/a").route("r2"), ok()).unwrap();
    assert_eq!(rec.upstream_request.unwrap().header("x-g"), Some("g"));
}

fn probe(workers: usize, extra: &str) -> Sim {
    let mut sim = Sim::new(SimOptions {
        workers,
        ..Default::default()
    });
    sim.add_cluster("svc", Cluster::Manual);
    sim.add_plugin(spec("sdk-probe").config_json(format!(r#"{{"mode":"probe"{extra}}}"#)))
        .unwrap();
    sim
}

fn req(scenario: &str) -> Request {
    Request::post("/v1/chat/completions", "{\"a\":1}").header("x-probe", scenario)
}

#[test]
fn callout_closure_resumes_the_paused_stream() {
    let mut sim = probe(1, "");
    let rec = sim.run(req("callout"), ok()).unwrap();
    assert!(
        rec.upstream_request.is_none(),
        "paused while the call is out"
    );
    let call = &sim.pending_http_calls()[0];
    assert_eq!(call.call.cluster, "svc");
    assert!(call
        .call
        .headers
        .contains(&("x-from".into(), "probe".into())));
    assert_eq!(call.call.timeout_ms, 500);
    sim.answer_http(call.id, CallReply::json(200, "fine"))
        .unwrap();
    let up = sim.upstream_request(rec.stream_id).unwrap();
    assert_eq!(up.header("x-call"), Some("200 fine"));
    assert_eq!(up.body_str(), "{\"a\":1}");
    sim.respond(rec.stream_id, &ok()).unwrap();
    assert_eq!(sim.take_record(rec.stream_id).unwrap().response.status, 200);
}

#[test]
fn callout_errors_reach_the_closure_as_values() {
    let mut sim = probe(1, "");
    // Timeout on the simulated clock.
    let rec = sim.run(req("callout"), ok()).unwrap();
    sim.advance(Duration::from_millis(500));
    let r = sim.take_record(rec.stream_id).unwrap();
    assert_eq!(r.response.status, 502);
    let msg = r.response.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        msg.starts_with("check failed:") && msg.contains("timed out"),
        "{msg}"
    );
    // Reset.
    let rec = sim.run(req("callout"), ok()).unwrap();
    let id = sim.pending_http_calls()[0].id;
    sim.answer_http(id, CallReply::Reset).unwrap();
    let r = sim.take_record(rec.stream_id).unwrap();
    assert_eq!(r.response.status, 502);
    assert!(
        r.response.body_str().contains("reset"),
        "{}",
        r.response.body_str()
    );
    // A 5xx answer.
    let rec = sim.run(req("callout"), ok()).unwrap();
    let id = sim.pending_http_calls()[0].id;
    sim.answer_http(id, CallReply::json(500, "boom")).unwrap();
    assert_eq!(sim.take_record(rec.stream_id).unwrap().response.status, 502);
    assert!(!sim.vm_failed(0, 0));
}

#[test]
fn dispatch_to_an_unknown_cluster_is_a_value() {
    let mut sim = Sim::new(Default::default());
    sim.add_plugin(spec("sdk-probe").config_json(r#"{"mode":"probe","cluster":"nowhere"}"#))
        .unwrap();
    let rec = sim.run(req("callout"), ok()).unwrap();
    assert_eq!(
        rec.upstream_request.unwrap().header("x-call"),
        Some("dispatch-failed")
    );
}

#[test]
fn cas_loop_retries_after_a_conflict() {
    let mut sim = probe(1, "");
    // An existing key (CAS 0 would be an unconditional write in the ABI).
    sim.set_shared_data("", "probe:cas", b"5");
    let rec = sim.run(req("interfere"), ok()).unwrap();
    // The interfering write (100) is kept and the loop's own +1 lands on top of it.
    assert_eq!(
        rec.upstream_request.unwrap().header("x-cas"),
        Some("Ok(101)")
    );
    assert_eq!(sim.shared_data("", "probe:cas").unwrap(), b"101");
}

#[test]
fn stale_cas_is_an_error_value() {
    let mut sim = probe(1, "");
    sim.set_shared_data("", "probe:k", b"v");
    let rec = sim.run(req("stale"), ok()).unwrap();
    assert_eq!(
        rec.upstream_request.unwrap().header("x-stale"),
        Some("Err(CasMismatch)")
    );
}

#[test]
fn counters_shared_by_two_workers_lose_nothing() {
    let mut sim = probe(2, "");
    for i in 0..40 {
        sim.run(req("counter").worker(i % 2), ok()).unwrap();
    }
    let rec = sim.run(req("counter").worker(1), ok()).unwrap();
    assert_eq!(rec.upstream_request.unwrap().header("x-count"), Some("41"));
}

#[test]
fn fixed_window_limits_and_rolls_over() {
    let mut sim = probe(2, r#","window_limit":3"#);
    for i in 0..3 {
        let rec = sim.run(req("window").worker(i % 2), ok()).unwrap();
        assert_eq!(
            rec.upstream_request.unwrap().header("x-remaining"),
            Some((2 - i).to_string().as_str())
        );
    }
    let rec = sim.run(req("window"), ok()).unwrap();
    assert_eq!(rec.response.status, 429);
    assert_eq!(rec.response.header("x-ratelimit-limit-requests"), Some("3"));
    assert_eq!(
        rec.response.header("x-ratelimit-remaining-requests"),
        Some("0")
    );
    assert!(rec.response.header("retry-after").is_some());
    sim.advance(Duration::from_secs(60));
    let rec = sim.run(req("window"), ok()).unwrap();
    assert_eq!(
        rec.upstream_request.unwrap().header("x-remaining"),
        Some("2")
    );
}

#[test]
fn header_access_outside_the_window_is_an_error_value() {
    let mut sim = probe(1, "");
    let rec = sim.run(req("none"), ok()).unwrap();
    assert_eq!(rec.response.header("x-window"), Some("Err(BadArgument)"));
    assert!(!sim.vm_failed(0, 0));
}

#[test]
fn whole_body_within_and_over_the_limit() {
    let mut sim = probe(1, "");
    let rec = sim.run(req("whole").chunked(3), ok()).unwrap();
    assert_eq!(rec.upstream_request.unwrap().body_str(), "{\"A\":1}");
    let big = Request::post("/v1/chat/completions", "x".repeat(40))
        .header("x-probe", "whole")
        .chunked(7);
    let rec = sim.run(big, ok()).unwrap();
    assert_eq!(rec.response.status, 413);
    assert_eq!(
        rec.response.json()["error"]["type"],
        "invalid_request_error"
    );
}

#[test]
fn whole_body_over_the_limit_can_pass_through_unread() {
    let mut sim = probe(1, "");
    let rec = sim.run(req("whole-pass").chunked(3), ok()).unwrap();
    assert_eq!(
        rec.upstream_request.unwrap().body_str(),
        "{\"A\":1}",
        "{:#?}",
        sim.logs()
    );
    let text = "abcdefghij".repeat(4);
    let big = Request::post("/v1/chat/completions", text.clone())
        .header("x-probe", "whole-pass")
        .chunked(7);
    let rec = sim.run(big, ok()).unwrap();
    // No local reply: the whole body reached the upstream unchanged, in order.
    assert!(rec.local_reply.is_none(), "{:?}", rec.local_reply);
    assert_eq!(rec.response.status, 200);
    let up = rec.upstream_request.expect("went upstream");
    assert_eq!(up.body_str(), text);
    assert!(up.complete);
    // Reported for the chunk that crossed 16 bytes (21) and every later one (28, 35, 40).
    let logs = aigw_tests::logs_with(&sim, "over the limit");
    assert_eq!(logs.len(), 4, "{logs:?}");
    assert!(
        logs.iter().all(|l| l.ends_with("replied: false")),
        "{logs:?}"
    );
}

#[test]
fn metrics_with_labels() {
    let mut sim = probe(1, "");
    sim.run(req("metric").route("chat"), ok()).unwrap();
    sim.run(req("metric").route("chat"), ok()).unwrap();
    let names: Vec<String> = sim.metrics().keys().cloned().collect();
    let name = names
        .iter()
        .find(|n| n.starts_with("probe_requests_total") && n.contains("chat"))
        .unwrap_or_else(|| panic!("{names:?}"))
        .clone();
    assert_eq!(sim.metric(&name), Some(4));
}

#[test]
fn sse_rewrite_is_the_same_however_the_stream_is_split() {
    let body = "data: one\n\ndata: two\r\n\r\n: comment\n\nevent: x\ndata: three\n\n";
    let mut outputs = Vec::new();
    for chunk in [1, 2, 5, 13, 1000] {
        let mut sim = probe(1, "");
        let rec = sim
            .run(req("sse"), UpstreamResponse::sse(body).chunked(chunk))
            .unwrap();
        outputs.push(rec.response.body_str());
    }
    assert_eq!(
        outputs[0],
        "data: ONE\n\ndata: TWO\n\ndata: THREE\n\n: events 3\n"
    );
    assert!(outputs.iter().all(|o| *o == outputs[0]), "{outputs:#?}");
}

#[test]
fn no_plugin_log_leaks_secrets() {
    let mut sim = probe(1, "");
    sim.run(
        req("none").header("authorization", "Bearer sk-secret-123"),
        ok(),
    )
    .unwrap();
    assert!(logs_with(&sim, "sk-secret-123").is_empty());
}
