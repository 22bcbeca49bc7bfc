//! ai-token-ratelimit in rls mode against a real rate limit service: the default module in
//! the host simulator (and in two `host-sim serve` gateways) calls `aigw-rls`
//! (`ShouldRateLimit` over h2c, Limitador counting in a real `redis-server`). What the plugin
//! sent is observed on the service side: its own log of the requests it decoded (with its
//! own protobuf decoder) and the counters it keeps in Redis.
//!
//! The standard chat body below has a prompt estimate of 14 tokens and asks for `max_tokens`
//! 10, so admission sends 24 hits for it.

use aigw_test_kit::{
    answer, assert_refused, free_port, grpc_stub, logs_with, spec, Chat, RedisServer, RlsServer,
    ServeProcess,
};
use host_sim::{Cluster, Request, Sim, SimOptions, StreamRecord, UpstreamResponse};
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const ESTIMATE: u64 = 24;

/// The standard chat (see the numbers above).
fn chat(consumer: &str) -> Request {
    Chat::openai("gpt-4o")
        .max_tokens(10)
        .user("hello there")
        .request()
        .header("x-mse-consumer", consumer)
}

fn usage(prompt: u64, completion: u64) -> UpstreamResponse {
    answer::openai("gpt-4o", "hi", answer::usage(prompt, completion))
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aigw-rls-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn write_config(dir: &Path, config: &Value) -> PathBuf {
    let p = dir.join("ai-token-ratelimit.json");
    std::fs::write(&p, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    p
}

/// A plugin config in rls mode with `limits`, cluster `ratelimit`, domain `ai`.
fn rls_config(limits: Value, failure_mode: &str, timeout_ms: u64) -> Value {
    json!({
        "mode": "rls",
        "rls": { "cluster": "ratelimit", "domain": "ai", "timeout_ms": timeout_ms },
        "failure_mode": failure_mode,
        "limits": limits,
    })
}

fn sim_with(config: &Value, ratelimit: Cluster) -> Sim {
    let mut sim = Sim::new(SimOptions {
        workers: 1,
        ..Default::default()
    });
    sim.add_cluster("ratelimit", ratelimit);
    sim.add_plugin(spec("ai-token-ratelimit").config_json(config.to_string()))
        .expect("plugin loads");
    sim
}

/// The Limitador counters in Redis whose key mentions every one of `needles`, summed.
fn redis_count(redis: SocketAddr, needles: &[&str]) -> i64 {
    let cli = |args: &[&str]| -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &redis.port().to_string(), "--raw"])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let keys = cli(&["--scan", "--pattern", "namespace:{ai}*counter:*"]);
    keys.lines()
        .filter(|k| needles.iter().all(|n| k.contains(n)))
        .map(|k| cli(&["get", k]).trim().parse::<i64>().unwrap_or(0))
        .sum()
}

fn descriptor(entries: &[(&str, &str)]) -> Value {
    Value::Array(entries.iter().map(|(k, v)| json!([k, v])).collect())
}

fn assert_limited(rec: &StreamRecord) {
    assert_refused(rec, 429, "limited");
}

#[test]
fn tokens_are_admitted_on_the_estimate_then_charged_the_difference_and_limited() {
    let redis = RedisServer::start();
    let dir = scratch("tokens");
    let config = rls_config(
        json!([{ "name": "tok", "key": [{ "by": "consumer" }], "per_minute": 100 }]),
        "closed",
        5000,
    );
    let path = write_config(&dir, &config);
    let rls = RlsServer::start(&path, redis.addr);
    let mut sim = sim_with(&config, Cluster::Addr(rls.addr));

    let rec = sim.run(chat("alice"), usage(30, 20)).unwrap();
    assert_eq!(rec.response.status, 200, "{}", rec.response.body_str());
    assert_eq!(rec.response.header("x-ratelimit-limit-tokens"), Some("100"));
    assert_eq!(
        rec.response.header("x-ratelimit-remaining-tokens"),
        Some((100 - ESTIMATE).to_string().as_str())
    );
    // Admission sent the estimate; after the response, what the real 50 tokens exceed it by.
    let sent = rls.wait_requests(2);
    let alice = descriptor(&[
        ("limit", "tok"),
        ("consumer", "alice"),
        ("window", "minute"),
    ]);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0]["domain"], "ai");
    assert_eq!(sent[0]["hits_addend"], ESTIMATE);
    assert_eq!(sent[0]["descriptors"], json!([alice.clone()]));
    assert_eq!(sent[0]["codes"], json!([1]));
    assert_eq!(sent[1]["hits_addend"], 50 - ESTIMATE);
    assert_eq!(sent[1]["descriptors"], json!([alice.clone()]));
    assert_eq!(redis_count(redis.addr, &["alice", "minute"]), 50);

    // 50 + 24 fits; the charge brings the window to 100.
    let rec = sim.run(chat("alice"), usage(30, 20)).unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(
        rec.response.header("x-ratelimit-remaining-tokens"),
        Some((100 - 50 - ESTIMATE).to_string().as_str())
    );
    rls.wait_requests(4);
    assert_eq!(redis_count(redis.addr, &["alice", "minute"]), 100);

    // The window is used up: 429 in OpenAI's shape, with Retry-After from the service.
    let rec = sim.run(chat("alice"), usage(30, 20)).unwrap();
    assert_limited(&rec);
    let retry: u64 = rec
        .response
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(
        rec.response.header("x-ratelimit-remaining-tokens"),
        Some("0")
    );
    let body = rec.response.json();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"].as_str().unwrap().contains("tok"));
    let sent = rls.wait_requests(5);
    assert_eq!(
        sent.len(),
        5,
        "no report follows a refused request: {sent:?}"
    );
    assert_eq!(sent[4]["codes"], json!([2]));
    assert_eq!(
        sim.metric("ai_token_ratelimit_requests_total;result=limited"),
        Some(1)
    );
    assert_eq!(
        sim.metric("ai_token_ratelimit_requests_total;result=allowed"),
        Some(2)
    );

    // Another consumer has its own counter in the service.
    let rec = sim.run(chat("bob"), usage(1, 1)).unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(
        rec.response.header("x-ratelimit-remaining-tokens"),
        Some((100 - ESTIMATE).to_string().as_str())
    );
    // A real cost below the estimate cannot be given back: nothing more is sent.
    assert_eq!(rls.wait_requests(7).len(), 6);
    assert_eq!(redis_count(redis.addr, &["bob", "minute"]), ESTIMATE as i64);
}

#[test]
fn requests_count_one_hit_in_every_window() {
    let redis = RedisServer::start();
    let dir = scratch("requests");
    let config = rls_config(
        json!([{ "name": "req", "key": [{ "by": "consumer" }], "count": "requests",
                 "per_minute": 3, "per_hour": 10 }]),
        "open",
        5000,
    );
    let path = write_config(&dir, &config);
    let rls = RlsServer::start(&path, redis.addr);
    let mut sim = sim_with(&config, Cluster::Addr(rls.addr));
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let rec = sim.run(chat("carol"), usage(30, 20)).unwrap();
        statuses.push(rec.response.status);
        if rec.response.status == 200 {
            assert_eq!(rec.response.header("x-ratelimit-limit-requests"), Some("3"));
        } else {
            assert_limited(&rec);
            assert_eq!(
                rec.response.json()["error"]["type"],
                "requests",
                "{}",
                rec.response.body_str()
            );
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    let sent = rls.wait_requests(4);
    assert_eq!(
        sent.len(),
        4,
        "requests have nothing to report after: {sent:?}"
    );
    for s in &sent {
        assert_eq!(s["hits_addend"], 1);
        assert_eq!(
            s["descriptors"],
            json!([
                descriptor(&[
                    ("limit", "req"),
                    ("consumer", "carol"),
                    ("window", "minute")
                ]),
                descriptor(&[("limit", "req"), ("consumer", "carol"), ("window", "hour")])
            ])
        );
    }
    // envoyproxy/ratelimit semantics: the refused request's hit stays counted.
    assert_eq!(redis_count(redis.addr, &["carol", "minute"]), 4);
    assert_eq!(redis_count(redis.addr, &["carol", "hour"]), 4);
}

#[test]
fn an_unreachable_service_goes_by_failure_mode() {
    let port = free_port();
    let down = Cluster::Addr(([127, 0, 0, 1], port).into());
    let limits = json!([{ "name": "tok", "per_minute": 100 }]);

    let mut open = sim_with(&rls_config(limits.clone(), "open", 500), down.clone());
    let rec = open.run(chat("alice"), usage(3, 2)).unwrap();
    assert_eq!(rec.response.status, 200, "failure_mode open admits");
    assert_eq!(
        open.metric("ai_token_ratelimit_rls_errors_total;op=admit;reason=unavailable"),
        Some(1)
    );
    assert_eq!(
        open.metric("ai_token_ratelimit_requests_total;result=failed_open"),
        Some(1)
    );
    let logs = logs_with(&open, "rate limit service admit failed (unavailable)");
    assert_eq!(logs.len(), 1, "{:?}", open.logs());

    let mut closed = sim_with(&rls_config(limits, "closed", 500), down);
    let rec = closed.run(chat("alice"), usage(3, 2)).unwrap();
    assert_eq!(rec.response.status, 503, "{}", rec.response.body_str());
    assert!(rec.upstream_request.as_ref().is_none_or(|u| !u.complete));
    assert_eq!(
        closed.metric("ai_token_ratelimit_rls_errors_total;op=admit;reason=unavailable"),
        Some(1)
    );
    assert_eq!(
        closed.metric("ai_token_ratelimit_requests_total;result=failed_closed"),
        Some(1)
    );
}

#[test]
fn a_service_that_does_not_answer_in_time_goes_by_failure_mode() {
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in silent.incoming().take(2) {
            conns.push(c);
        }
        std::thread::sleep(std::time::Duration::from_secs(3));
    });
    let limits = json!([{ "name": "tok", "per_minute": 100 }]);
    let mut closed = sim_with(
        &rls_config(limits.clone(), "closed", 300),
        Cluster::Addr(addr),
    );
    let rec = closed.run(chat("alice"), usage(3, 2)).unwrap();
    assert_eq!(rec.response.status, 503);
    assert_eq!(
        closed.metric("ai_token_ratelimit_rls_errors_total;op=admit;reason=deadline_exceeded"),
        Some(1)
    );
    let mut open = sim_with(&rls_config(limits, "open", 300), Cluster::Addr(addr));
    let rec = open.run(chat("alice"), usage(3, 2)).unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(
        open.metric("ai_token_ratelimit_rls_errors_total;op=admit;reason=deadline_exceeded"),
        Some(1)
    );
    drop(held);
}

#[test]
fn rls_config_errors_name_the_field() {
    let cases = [
        (
            r#"{"mode":"rls","rls":{"domain":"ai"},"limits":[{"per_minute":1}]}"#,
            "rls.cluster: required",
        ),
        (
            r#"{"mode":"rls","rls":{"cluster":"ratelimit"},"limits":[{"per_minute":1}]}"#,
            "rls.domain: required",
        ),
        (
            r#"{"mode":"rls","rls":{"cluster":"ratelimit","domain":"ai","timeout_ms":0},"limits":[{"per_minute":1}]}"#,
            "rls.timeout_ms: must be between 1 and 60000",
        ),
        (
            r#"{"mode":"rls","limits":[{"per_minute":1}]}"#,
            "rls: required when mode is \"rls\"",
        ),
    ];
    aigw_test_kit::assert_configs_rejected("ai-token-ratelimit", &cases);
}

/// Two gateway processes, each with its own configuration file in rls mode, share one
/// aigw-rls and one Redis: the limit holds across them.
#[test]
fn two_gateways_share_one_limit() {
    let redis = RedisServer::start();
    let dir = scratch("two-gateways");
    let plugin = rls_config(
        json!([{ "name": "shared", "key": [{ "by": "consumer" }], "count": "requests",
                 "per_minute": 5 }]),
        "closed",
        5000,
    );
    let plugin_path = write_config(&dir, &plugin);
    let rls = RlsServer::start(&plugin_path, redis.addr);
    let mock =
        host_sim::mock_llm::spawn(host_sim::mock_llm::MockOptions::default()).expect("mock LLM");
    let wasm = aigw_test_kit::module_path("ai-token-ratelimit");
    let mut gateways = Vec::new();
    let mut ports = Vec::new();
    for g in 0..2 {
        let port = free_port();
        let cfg = json!({
            "listen": format!("127.0.0.1:{port}"),
            "workers": 2,
            "access_log": "off",
            "clusters": {
                "llm": { "endpoints": [mock.addr.to_string()] },
                "ratelimit": { "endpoints": [rls.addr.to_string()] }
            },
            "routes": [{
                "name": "chat", "prefix": "/", "cluster": "llm", "timeout": "30s",
                "plugins": [{ "name": "ai-token-ratelimit", "wasm": wasm,
                              "config_file": plugin_path }]
            }]
        });
        let path = dir.join(format!("gateway-{g}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
        gateways.push(ServeProcess::start(
            &path,
            &dir.join(format!("gateway-{g}.err")),
            port,
        ));
        ports.push(port);
    }
    let body = r#"{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let mut admitted = [0usize; 2];
    let mut refused = [0usize; 2];
    for i in 0..12 {
        let g = i % 2;
        let (status, _, text) = aigw_test_kit::http::exchange(
            ("127.0.0.1", ports[g]),
            "gw.local",
            "POST",
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("x-mse-consumer", "dave"),
            ],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("request {i} to gateway {g}: {e}"));
        match status {
            200 => admitted[g] += 1,
            429 => refused[g] += 1,
            other => panic!(
                "gateway {g}: {other} {}\n{}",
                String::from_utf8_lossy(&text),
                gateways[g].stderr_text()
            ),
        }
    }
    assert_eq!(
        admitted[0] + admitted[1],
        5,
        "admitted {admitted:?}, refused {refused:?}"
    );
    assert!(
        admitted[0] > 0 && admitted[1] > 0,
        "both gateways admitted: {admitted:?}"
    );
    assert!(
        refused[0] > 0 && refused[1] > 0,
        "both gateways refused: {refused:?}"
    );
    assert_eq!(rls.wait_requests(12).len(), 12);
    assert_eq!(redis_count(redis.addr, &["dave", "minute"]), 12);
}

const OPENAI_STREAM: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":21,\"total_tokens\":38}}\n\n\
data: [DONE]\n\n";

#[test]
fn a_stream_reports_its_real_usage_when_it_ends() {
    let redis = RedisServer::start();
    let dir = scratch("stream");
    let config = rls_config(
        json!([{ "name": "tok", "key": [{ "by": "consumer" }], "per_minute": 1000,
                 "per_hour": 5000 }]),
        "closed",
        5000,
    );
    let path = write_config(&dir, &config);
    let rls = RlsServer::start(&path, redis.addr);
    let mut sim = sim_with(&config, Cluster::Addr(rls.addr));
    let rec = sim
        .run(
            chat("erin"),
            UpstreamResponse::sse(OPENAI_STREAM).chunked(7),
        )
        .unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(
        rec.response.body_str(),
        OPENAI_STREAM,
        "the stream passes unchanged"
    );
    let sent = rls.wait_requests(2);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0]["hits_addend"], ESTIMATE);
    // 38 real tokens: 14 more than the estimate, in both windows.
    assert_eq!(sent[1]["hits_addend"], 38 - ESTIMATE);
    assert_eq!(
        sent[1]["descriptors"],
        json!([
            descriptor(&[("limit", "tok"), ("consumer", "erin"), ("window", "minute")]),
            descriptor(&[("limit", "tok"), ("consumer", "erin"), ("window", "hour")])
        ])
    );
    assert_eq!(redis_count(redis.addr, &["erin", "minute"]), 38);
    assert_eq!(redis_count(redis.addr, &["erin", "hour"]), 38);
    assert_eq!(
        sim.metric("ai_token_ratelimit_tokens_total;limit=tok"),
        Some(38)
    );
}

#[test]
fn a_bad_answer_or_a_failure_status_goes_by_failure_mode() {
    let limits = json!([{ "name": "tok", "per_minute": 100 }]);
    // grpc-status 0 with an empty message: overall_code UNKNOWN, not an answer to act on.
    let empty = Cluster::Addr(grpc_stub(0, Duration::ZERO));
    let mut closed = sim_with(&rls_config(limits.clone(), "closed", 2000), empty.clone());
    let rec = closed.run(chat("alice"), usage(3, 2)).unwrap();
    assert_eq!(rec.response.status, 503);
    assert_eq!(
        closed.metric("ai_token_ratelimit_rls_errors_total;op=admit;reason=bad_answer"),
        Some(1)
    );
    let mut open = sim_with(&rls_config(limits.clone(), "open", 2000), empty);
    assert_eq!(
        open.run(chat("alice"), usage(3, 2))
            .unwrap()
            .response
            .status,
        200
    );
    assert_eq!(
        open.metric("ai_token_ratelimit_rls_errors_total;op=admit;reason=bad_answer"),
        Some(1)
    );
    // UNAUTHENTICATED (16) from the service: another gRPC status.
    let denied = Cluster::Addr(grpc_stub(16, Duration::ZERO));
    let mut closed = sim_with(&rls_config(limits, "closed", 2000), denied);
    assert_eq!(
        closed
            .run(chat("alice"), usage(3, 2))
            .unwrap()
            .response
            .status,
        503
    );
    assert_eq!(
        closed.metric("ai_token_ratelimit_rls_errors_total;op=admit;reason=status"),
        Some(1)
    );
    let logs = logs_with(
        &closed,
        "rate limit service admit failed (status): gRPC status 16",
    );
    assert_eq!(logs.len(), 1, "{:?}", closed.logs());
}
