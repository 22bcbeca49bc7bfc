//! ai-load-balancer end to end in the host simulator: the real module, several worker VMs,
//! the simulated clock, streams driven step by step, and scrape call-outs answered by hand.
//!
//! The backends are three `ip:port` hosts picked through `x-envoy-original-dst-host`. The
//! expected distributions are derived from the algorithms (see each test's comment).

use aigw_test_kit::{load, send_200, spec, Chat};
use host_sim::{CallReply, Cluster, Request, Sim, SimOptions, StreamRecord, UpstreamResponse};
use serde_json::{json, Value};
use std::time::Duration;

const A: &str = "10.0.0.1:8000";
const B: &str = "10.0.0.2:8000";
const C: &str = "10.0.0.3:8000";
const HOSTS: [&str; 3] = [A, B, C];
const DST: &str = "x-envoy-original-dst-host";

fn sim_with(workers: usize, config: &Value) -> Sim {
    load("ai-load-balancer", workers, &config.to_string())
}

/// A one-worker latency balancer over hosts A and B scoring by `signal` (`ttft` or `tpot`),
/// with EWMA weight `alpha` and score half-life `half_life_ms`.
fn latency_balancer(signal: &str, alpha: f64, half_life_ms: u64) -> Sim {
    sim_with(
        1,
        &json!({
            "policy": "latency",
            "backends": [{"host": A}, {"host": B}],
            "latency": {"signal": signal, "alpha": alpha, "half_life_ms": half_life_ms}
        }),
    )
}

/// A balancer over the three hosts with `weights`, picking by `policy`.
fn balancer(workers: usize, policy: &str, weights: &[u32]) -> Sim {
    sim_with(
        workers,
        &json!({"policy": policy, "backends": backends(weights)}),
    )
}

/// Opens `n` streams, spread over `workers` workers in turn; none is answered yet.
fn open_streams(sim: &mut Sim, n: usize, workers: usize) -> Vec<u64> {
    (0..n)
        .map(|i| sim.begin(chat(i % workers)).expect("stream opens"))
        .collect()
}

fn backends(weights: &[u32]) -> Value {
    Value::Array(
        HOSTS
            .iter()
            .zip(weights)
            .map(|(h, w)| json!({"host": h, "weight": w}))
            .collect(),
    )
}

fn chat(worker: usize) -> Request {
    Chat::openai("m")
        .stream(true)
        .user("hi")
        .request()
        .header("content-type", "application/json")
        .worker(worker)
}

fn ok() -> UpstreamResponse {
    UpstreamResponse::json(200, r#"{"choices":[{"message":{"content":"hi"}}]}"#)
}

/// The backend a finished exchange went to.
fn target(rec: &StreamRecord) -> String {
    rec.upstream_request
        .as_ref()
        .and_then(|u| u.header(DST))
        .unwrap_or_else(|| panic!("no target header: {:?}", rec.response))
        .to_string()
}

/// The backend an open stream went to.
fn open_target(sim: &Sim, sid: u64) -> String {
    sim.upstream_request(sid)
        .and_then(|u| u.header(DST).map(String::from))
        .expect("stream reached the upstream with a target")
}

/// Field `i` of a backend's shared record (0 in-flight, 1 consecutive failures, 2 ejections,
/// 3 ejected until, 4 EWMA µs, 5 EWMA time, 6 samples).
fn field(sim: &Sim, host: &str, i: usize) -> u64 {
    sim.shared_data("", &format!("alb|b|{host}"))
        .map(|v| u64::from_le_bytes(v[i * 8..i * 8 + 8].try_into().unwrap()))
        .unwrap_or(0)
}

fn in_flight(sim: &Sim, host: &str) -> u64 {
    field(sim, host, 0)
}

/// No backend has a stream in flight (nothing leaked).
fn assert_none_in_flight(sim: &Sim) {
    for h in HOSTS {
        assert_eq!(in_flight(sim, h), 0, "{h} leaked an in-flight count");
    }
}

fn index(host: &str) -> usize {
    HOSTS.iter().position(|h| *h == host).expect("known host")
}

fn counts(targets: &[String]) -> [usize; 3] {
    let mut c = [0; 3];
    for t in targets {
        c[index(t)] += 1;
    }
    c
}

/// Answers an open stream with a 200 JSON body.
fn finish_ok(sim: &mut Sim, sid: u64) {
    sim.respond(sid, &ok()).expect("respond");
}

// ---- weighted round robin -------------------------------------------------------------

#[test]
fn weighted_round_robin_follows_the_smooth_sequence_across_workers() {
    let mut sim = balancer(2, "round_robin", &[3, 1, 2]);
    let mut got = Vec::new();
    for i in 0..60 {
        // A client-supplied target must not survive.
        let req = chat(i % 2).header(DST, "6.6.6.6:1");
        got.push(target(&sim.run(req, ok()).unwrap()));
    }
    // Smooth WRR for weights 3,1,2 is A C A B C A; the counter is shared by both workers,
    // so the whole run follows that sequence exactly.
    let first: Vec<&str> = got.iter().take(6).map(String::as_str).collect();
    assert_eq!(first, [A, C, A, B, C, A]);
    assert_eq!(counts(&got), [30, 10, 20]);
    assert_none_in_flight(&sim);
}

// ---- least in-flight ------------------------------------------------------------------

#[test]
fn least_in_flight_counts_streams_of_every_worker() {
    let mut sim = balancer(2, "least_in_flight", &[1, 1, 1]);
    // Three open streams on alternating workers: all counts equal, ties rotate → A, B, C.
    let s1 = sim.begin(chat(0)).unwrap();
    let s2 = sim.begin(chat(1)).unwrap();
    let s3 = sim.begin(chat(0)).unwrap();
    assert_eq!(
        [
            open_target(&sim, s1),
            open_target(&sim, s2),
            open_target(&sim, s3)
        ],
        [A, B, C]
    );
    assert_eq!(
        [in_flight(&sim, A), in_flight(&sim, B), in_flight(&sim, C)],
        [1, 1, 1]
    );
    // B's stream (worker 1) ends: B is now the only backend with 0, whichever worker asks.
    finish_ok(&mut sim, s2);
    assert_eq!(in_flight(&sim, B), 0);
    let s4 = sim.begin(chat(0)).unwrap();
    assert_eq!(open_target(&sim, s4), B);
    let s5 = sim.begin(chat(1)).unwrap();
    // All at 1 again; rotation position 4 % 3 = 1 → B first in order B, C, A.
    assert_eq!(open_target(&sim, s5), B);
    assert_eq!(in_flight(&sim, B), 2);
    // A long stream on B, then two more: they must go to A and C (count 1) before B (2).
    let s6 = sim.begin(chat(1)).unwrap();
    let s7 = sim.begin(chat(0)).unwrap();
    let mut pair = [open_target(&sim, s6), open_target(&sim, s7)];
    pair.sort();
    assert_eq!(pair, [A, C]);
    for sid in [s1, s3, s4, s5, s6, s7] {
        finish_ok(&mut sim, sid);
    }
    assert_none_in_flight(&sim);
}

#[test]
fn weighted_least_in_flight_divides_by_weight() {
    let mut sim = balancer(1, "least_in_flight", &[1, 1, 4]);
    // With open streams C takes requests until its count per weight exceeds the others':
    // after A and B hold one each, C holds up to 4 before load/weight 5/4 > 1/1.
    let sids = open_streams(&mut sim, 6, 1);
    let got: Vec<String> = sids.iter().map(|s| open_target(&sim, *s)).collect();
    assert_eq!(counts(&got), [1, 1, 4], "{got:?}");
    for s in sids {
        sim.client_abort(s);
    }
    assert_none_in_flight(&sim);
}

#[test]
fn in_flight_returns_to_zero_after_aborts_on_two_workers() {
    let mut sim = balancer(2, "least_in_flight", &[1, 1, 1]);
    let sids = open_streams(&mut sim, 12, 2);
    let total: u64 = HOSTS.iter().map(|h| in_flight(&sim, h)).sum();
    assert_eq!(total, 12);
    for (i, sid) in sids.iter().enumerate() {
        match i % 4 {
            // Client goes away before any response.
            0 => sim.client_abort(*sid),
            // Client goes away in the middle of a streamed answer.
            1 => {
                send_200(&mut sim, *sid, "text/event-stream");
                sim.send_response_body(*sid, b"data: {\"x\":1}\n\n", false)
                    .unwrap();
                sim.client_abort(*sid);
            }
            // The upstream resets.
            2 => sim.upstream_reset(*sid),
            // Normal completion.
            _ => finish_ok(&mut sim, *sid),
        }
    }
    assert_none_in_flight(&sim);
    assert_eq!(sim.open_streams(), 0);
}

// ---- header picking -------------------------------------------------------------------

#[test]
fn cluster_header_mode_writes_the_configured_header() {
    let cfg = json!({
        "policy": "round_robin",
        "target_header": "X-Backend-Cluster",
        "backends": [{"host": "vllm-a"}, {"host": "vllm-b"}]
    });
    let mut sim = sim_with(1, &cfg);
    let got: Vec<String> = (0..4)
        .map(|_| {
            let rec = sim.run(chat(0), ok()).unwrap();
            let u = rec.upstream_request.unwrap();
            assert_eq!(u.header(DST), None);
            u.header("x-backend-cluster").unwrap().to_string()
        })
        .collect();
    assert_eq!(got, ["vllm-a", "vllm-b", "vllm-a", "vllm-b"]);
}

// ---- passive health -------------------------------------------------------------------

#[test]
fn failing_backend_is_ejected_for_a_growing_period_and_recovers() {
    let cfg = json!({
        "policy": "round_robin",
        "backends": backends(&[1, 1, 1]),
        "health": {"consecutive_failures": 2, "base_ejection_ms": 10000, "max_ejection_ms": 40000}
    });
    let mut sim = sim_with(2, &cfg);
    // C fails in three ways: a 500, a reset before headers, a router timeout.
    let mut c_failures = 0;
    let mut send = |sim: &mut Sim, i: usize| -> String {
        let sid = sim.begin(chat(i % 2)).unwrap();
        let t = open_target(sim, sid);
        if t == C {
            match c_failures % 3 {
                0 => sim
                    .respond(sid, &UpstreamResponse::json(500, r#"{"error":"boom"}"#))
                    .unwrap(),
                1 => sim.upstream_reset(sid),
                _ => sim.router_reply(
                    sid,
                    504,
                    "upstream_response_timeout",
                    b"upstream request timeout",
                ),
            }
            c_failures += 1;
        } else {
            finish_ok(sim, sid);
        }
        t
    };
    // Positions 0..5 of the A B C cycle: C fails at 2 and 5 → ejected at the 2nd failure.
    let got: Vec<String> = (0..6).map(|i| send(&mut sim, i)).collect();
    assert_eq!(counts(&got), [2, 2, 2]);
    assert_eq!(field(&sim, C, 2), 1, "one ejection");
    // While ejected, C's slots go to the next backend in the cycle (A): positions 6..11 give
    // A B (C→A) A B (C→A).
    let got: Vec<String> = (6..12).map(|i| send(&mut sim, i)).collect();
    assert_eq!(counts(&got), [4, 2, 0]);
    // 10 s later C is back; it fails twice more → second ejection lasts 20 s.
    sim.advance(Duration::from_millis(10_000));
    let got: Vec<String> = (12..18).map(|i| send(&mut sim, i)).collect();
    assert_eq!(counts(&got), [2, 2, 2]);
    assert_eq!(field(&sim, C, 2), 2, "second ejection");
    sim.advance(Duration::from_millis(10_000));
    let got: Vec<String> = (18..24).map(|i| send(&mut sim, i)).collect();
    assert_eq!(counts(&got), [4, 2, 0], "still ejected after 10 of 20 s");
    sim.advance(Duration::from_millis(10_000));
    // Back after 20 s; now C answers well: successes keep it in.
    let mut got = Vec::new();
    for i in 24..36 {
        let rec = sim.run(chat(i % 2), ok()).unwrap();
        got.push(target(&rec));
    }
    assert_eq!(counts(&got), [4, 4, 4]);
    assert_eq!(field(&sim, C, 1), 0, "consecutive failures reset");
    assert_none_in_flight(&sim);
}

#[test]
fn client_aborts_do_not_count_as_backend_failures() {
    let cfg = json!({
        "policy": "round_robin",
        "backends": [{"host": A}],
        "health": {"consecutive_failures": 1}
    });
    let mut sim = sim_with(1, &cfg);
    for _ in 0..3 {
        let sid = sim.begin(chat(0)).unwrap();
        sim.client_abort(sid);
    }
    assert_eq!(field(&sim, A, 1), 0);
    assert_eq!(field(&sim, A, 3), 0, "never ejected");
    assert_eq!(target(&sim.run(chat(0), ok()).unwrap()), A);
}

#[test]
fn no_healthy_backend_is_a_503_in_the_clients_protocol() {
    let cfg = json!({
        "policy": "least_in_flight",
        "backends": [{"host": A}],
        "health": {"consecutive_failures": 1, "base_ejection_ms": 5000}
    });
    let mut sim = sim_with(1, &cfg);
    let rec = sim
        .run(chat(0), UpstreamResponse::json(503, "overloaded"))
        .unwrap();
    assert_eq!(target(&rec), A);
    let rec = sim.run(chat(0), ok()).unwrap();
    assert_eq!(rec.response.status, 503);
    assert!(
        rec.upstream_request.is_none(),
        "nothing reaches an upstream"
    );
    let body: Value = serde_json::from_slice(&rec.response.body).unwrap();
    assert_eq!(body["error"]["code"], "no_healthy_upstream");
    assert!(body["error"]["message"].is_string());
    let msg = Request::post(
        "/v1/messages",
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    let rec = sim.run(msg, ok()).unwrap();
    assert_eq!(rec.response.status, 503);
    let body: Value = serde_json::from_slice(&rec.response.body).unwrap();
    assert_eq!(body["type"], "error", "Anthropic shape: {body}");
    // After the ejection period the backend is tried again.
    sim.advance(Duration::from_millis(5_000));
    assert_eq!(target(&sim.run(chat(0), ok()).unwrap()), A);
}

// ---- latency --------------------------------------------------------------------------

/// One exchange whose first byte arrives `ttft_ms` after the pick; returns the backend.
fn timed(sim: &mut Sim, ttft_ms: impl Fn(&str) -> u64) -> String {
    let sid = sim.begin(chat(0)).unwrap();
    let t = open_target(sim, sid);
    sim.advance(Duration::from_millis(ttft_ms(&t)));
    send_200(sim, sid, "text/event-stream");
    sim.send_response_body(sid, b"data: {\"x\":1}\n\ndata: [DONE]\n\n", true)
        .unwrap();
    t
}

#[test]
fn latency_avoids_the_slow_backend_and_retries_it_after_decay() {
    let mut sim = latency_balancer("ttft", 0.5, 1000);
    // Unsampled backends score 0: A then B are tried first. A answers in 100 ms, B in 1 s.
    assert_eq!(timed(&mut sim, |_| 100), A);
    assert_eq!(timed(&mut sim, |_| 1000), B);
    assert_eq!(field(&sim, B, 4), 1_000_000);
    // B (recovered) would now answer in 100 ms too, but its EWMA says 1 s. A keeps sampling
    // 100 ms, so its EWMA settles near x = 0.5·100000 + 0.5·x·2^(-0.1) ≈ 93.7 ms, while B's
    // decays as 1e6·2^(-t/1 s): B wins once t > log2(1e6/93720) s ≈ 3.42 s, i.e. after 35
    // requests of 100 ms each (requests 2..=36 go to A, request 37 to B).
    let mut got = Vec::new();
    for _ in 2..60 {
        got.push(timed(&mut sim, |_| 100));
    }
    let first_b = got.iter().position(|t| t == B).map(|p| p + 2);
    assert_eq!(first_b, Some(37), "{got:?}");
    // From then on both are equally fast: the one sampled last scores higher (less decayed),
    // so they alternate exactly.
    let tail = &got[35..];
    for pair in tail.windows(2) {
        assert_ne!(pair[0], pair[1], "{tail:?}");
    }
}

#[test]
fn tpot_signal_prefers_the_backend_with_faster_tokens() {
    let mut sim = latency_balancer("tpot", 1.0, 600000);
    // Stream 5 events with `gap` ms between them: TPOT sample = 4 gaps / 4 = gap.
    let stream = |sim: &mut Sim, gap: &dyn Fn(&str) -> u64| -> String {
        let sid = sim.begin(chat(0)).unwrap();
        let t = open_target(sim, sid);
        send_200(sim, sid, "text/event-stream");
        for i in 0..5 {
            if i > 0 {
                sim.advance(Duration::from_millis(gap(&t)));
            }
            sim.send_response_body(sid, format!("data: {{\"i\":{i}}}\n\n").as_bytes(), false)
                .unwrap();
        }
        sim.send_response_body(sid, b"data: [DONE]\n\n", true)
            .unwrap();
        t
    };
    let speed = |t: &str| if t == A { 50 } else { 10 };
    assert_eq!(stream(&mut sim, &speed), A);
    assert_eq!(stream(&mut sim, &speed), B);
    assert_eq!(field(&sim, A, 4), 50_000);
    assert_eq!(field(&sim, B, 4), 10_000);
    let got: Vec<String> = (0..10).map(|_| stream(&mut sim, &speed)).collect();
    assert_eq!(counts(&got), [0, 10, 0]);
}

// ---- prefix affinity ------------------------------------------------------------------

#[test]
fn shared_prefixes_stick_to_one_backend_with_bounded_load() {
    let cfg = json!({
        "policy": "prefix_affinity",
        "backends": backends(&[1, 1, 1]),
        "prefix": {"header": "x-prompt-prefix", "block_bytes": 8, "load_factor": 1.25}
    });
    let mut sim = sim_with(2, &cfg);
    let sys = "system: you are a terse assistant.|";
    let with = |w: usize, p: &str| chat(w).header("x-prompt-prefix", p);
    // First conversation: no index entry → least in-flight, rotation 0 → A.
    let t = target(
        &sim.run(with(0, &format!("{sys}user: hello")), ok())
            .unwrap(),
    );
    assert_eq!(t, A);
    // Another conversation (different first block) → rotation 1 → B.
    let t = target(
        &sim.run(with(1, "other system prompt entirely|user: x"), ok())
            .unwrap(),
    );
    assert_eq!(t, B);
    // Conversations sharing the system prompt, on both workers, follow A.
    for i in 0..10 {
        let p = format!("{sys}user: question {i} with a longer tail");
        assert_eq!(target(&sim.run(with(i % 2, &p), ok()).unwrap()), A, "{i}");
    }
    // Bounded load: with one open stream on A and none elsewhere, the cap is
    // ceil(1.25 × (1 + 1) / 3) = 1, so the next shared-prefix request must not go to A.
    let s1 = sim
        .begin(with(0, &format!("{sys}user: long stream")))
        .unwrap();
    assert_eq!(open_target(&sim, s1), A);
    let s2 = sim.begin(with(1, &format!("{sys}user: next"))).unwrap();
    // Fallback least in-flight: rotation 13 % 3 = 1 → B (count 0).
    assert_eq!(open_target(&sim, s2), B);
    finish_ok(&mut sim, s1);
    finish_ok(&mut sim, s2);
    assert_none_in_flight(&sim);
    // Without the header the request is plain least in-flight (rotation 14 % 3 = 2 → C).
    assert_eq!(target(&sim.run(chat(0), ok()).unwrap()), C);
}

/// `prefix.source: "body"`: the headers are held (Envoy's `allow_on_headers_stop_iteration`)
/// while the plugin reads the prompt, then the target header is set from it.
#[test]
fn prefix_from_the_prompt_body_with_held_headers() {
    let cfg = json!({
        "policy": "prefix_affinity",
        "backends": backends(&[1, 1, 1]),
        "prefix": {"source": "body", "block_bytes": 32, "load_factor": 1.25, "max_body_bytes": 4096}
    });
    let mut sim = Sim::new(SimOptions {
        workers: 2,
        ..Default::default()
    });
    sim.add_plugin(
        spec("ai-load-balancer")
            .config_json(cfg.to_string())
            .allow_on_headers_stop_iteration(true),
    )
    .expect("plugin loads");
    let sys = "You are the support assistant of ACME. Answer briefly and politely.";
    let convo = |w: usize, turns: &[&str]| {
        let mut messages = vec![json!({"role": "system", "content": sys})];
        for (i, t) in turns.iter().enumerate() {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            messages.push(json!({"role": role, "content": t}));
        }
        let body = json!({"model": "m", "stream": true, "messages": messages}).to_string();
        (
            Request::post("/v1/chat/completions", body.clone())
                .header("content-type", "application/json")
                .worker(w)
                .chunked(40),
            body,
        )
    };
    // First conversation: nothing indexed → least in-flight, rotation 0 → A. The body reaches
    // the upstream whole and unchanged, with the target header set after reading it.
    let (req, body) = convo(0, &["my order is late"]);
    let rec = sim.run(req, ok()).unwrap();
    assert_eq!(target(&rec), A);
    let up = rec.upstream_request.as_ref().unwrap();
    assert_eq!(up.body_str(), body);
    assert!(up.complete);
    // A different system prompt → rotation 1 → B.
    let other = json!({"model":"m","messages":[{"role":"system","content":"A wholly different assistant persona for tests."},{"role":"user","content":"x"}]}).to_string();
    let rec = sim
        .run(Request::post("/v1/chat/completions", other).worker(1), ok())
        .unwrap();
    assert_eq!(target(&rec), B);
    // Later turns of the first conversation, and new conversations sharing its system prompt,
    // on either worker, follow A (JSON key order does not matter).
    for i in 0..6 {
        let (req, _) = convo(
            i % 2,
            &[
                "my order is late",
                "sorry to hear that",
                &format!("question {i}"),
            ],
        );
        assert_eq!(target(&sim.run(req, ok()).unwrap()), A, "turn {i}");
    }
    let reordered = format!(
        r#"{{"messages":[{{"content":"{sys}","role":"system"}},{{"content":"something new","role":"user"}}],"stream":false,"model":"m"}}"#
    );
    let rec = sim
        .run(
            Request::post("/v1/chat/completions", reordered).worker(1),
            ok(),
        )
        .unwrap();
    assert_eq!(target(&rec), A);
    // Bounded load: one open stream on A caps it at ceil(1.25 × 2 / 3) = 1.
    let (req, _) = convo(0, &["a long stream"]);
    let s1 = sim.begin(req).unwrap();
    assert_eq!(open_target(&sim, s1), A);
    let (req, _) = convo(1, &["next one"]);
    let s2 = sim.begin(req).unwrap();
    assert_ne!(open_target(&sim, s2), A);
    finish_ok(&mut sim, s1);
    finish_ok(&mut sim, s2);
    // A body over max_body_bytes, or not JSON, is routed by least in-flight, never stuck.
    let big = json!({"model":"m","messages":[{"role":"system","content": sys},{"role":"user","content":"y".repeat(5000)}]}).to_string();
    let rec = sim
        .run(
            Request::post("/v1/chat/completions", big.clone()).chunked(1000),
            ok(),
        )
        .unwrap();
    assert!(HOSTS.contains(&target(&rec).as_str()));
    assert_eq!(rec.upstream_request.as_ref().unwrap().body_str(), big);
    let rec = sim
        .run(Request::post("/v1/chat/completions", "not json"), ok())
        .unwrap();
    assert!(HOSTS.contains(&target(&rec).as_str()));
    assert_none_in_flight(&sim);
}

/// The `higress` build on Higress (ABI 0_2_100, no Envoy flag needed): the prompt comes from
/// the body while the headers are held, and the pick also goes through Higress's
/// `proxy_set_upstream_override_host`.
#[test]
fn higress_build_overrides_the_upstream_host() {
    let cfg = json!({
        "policy": "prefix_affinity",
        "backends": backends(&[1, 1, 1]),
        "prefix": {"source": "body", "block_bytes": 16}
    });
    let mut sim = load("ai-load-balancer-higress", 1, &cfg.to_string());
    let body = |q: &str| {
        json!({"model":"m","messages":[{"role":"system","content":"A shared system prompt for everyone."},{"role":"user","content":q}]}).to_string()
    };
    let mut seen = Vec::new();
    for q in ["one", "two", "three"] {
        let rec = sim
            .run(
                Request::post("/v1/chat/completions", body(q)).chunked(16),
                ok(),
            )
            .unwrap();
        let t = target(&rec);
        assert_eq!(rec.upstream_override_host.as_deref(), Some(t.as_str()));
        assert_eq!(rec.upstream_request.as_ref().unwrap().body_str(), body(q));
        seen.push(t);
    }
    // The shared system prompt keeps the conversations on the first backend.
    assert_eq!(seen, vec![A, A, A]);
}

// ---- metrics scoring ------------------------------------------------------------------

fn prom(waiting: f64, running: f64, kv: f64) -> CallReply {
    CallReply::Response {
        status: 200,
        headers: vec![("content-type".into(), "text/plain; version=0.0.4".into())],
        body: format!(
            "# HELP vllm:num_requests_waiting Waiting requests.\n# TYPE vllm:num_requests_waiting gauge\n\
vllm:num_requests_waiting{{model_name=\"m\"}} {waiting}\n\
vllm:num_requests_running{{model_name=\"m\"}} {running}\n\
vllm:kv_cache_usage_perc{{model_name=\"m\"}} {kv}\n"
        )
        .into_bytes(),
    }
}

/// Answers every pending scrape with `reply(host)`; returns the hosts scraped.
fn answer_scrapes(sim: &mut Sim, reply: impl Fn(&str) -> CallReply) -> Vec<String> {
    let mut hosts = Vec::new();
    for call in sim.pending_http_calls() {
        assert_eq!(call.call.cluster, "vllm-metrics");
        let header = |k: &str| {
            call.call
                .headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header(":path").as_deref(), Some("/metrics"));
        let host = header(DST).expect("scrape carries the original-dst header");
        assert_eq!(header(":authority").as_deref(), Some(host.as_str()));
        sim.answer_http(call.id, reply(&host)).unwrap();
        hosts.push(host);
    }
    hosts.sort();
    hosts
}

#[test]
fn metrics_scores_follow_waiting_and_kv_usage_and_go_stale() {
    let cfg = json!({
        "policy": "metrics",
        "backends": backends(&[1, 1, 1]),
        "metrics": {
            "cluster": "vllm-metrics", "interval_ms": 1000, "stale_ms": 3000,
            "weights": {"waiting": 1.0, "running": 0.1, "kv_cache": 4.0, "in_flight": 1.0}
        }
    });
    let mut sim = sim_with(2, &cfg);
    sim.add_cluster("vllm-metrics", Cluster::Manual);
    // Before any scrape the metrics are missing: least in-flight, rotating A B C.
    let got: Vec<String> = (0..3)
        .map(|i| target(&sim.run(chat(i % 2), ok()).unwrap()))
        .collect();
    assert_eq!(got, [A, B, C]);
    // One tick on each of two workers: the shared lease lets exactly one scrape per backend.
    sim.advance(Duration::from_millis(1000));
    let load = |h: &str| match h {
        A => prom(5.0, 8.0, 0.9), // 5 + 0.8 + 3.6 = 9.4
        B => prom(0.0, 2.0, 0.2), // 0 + 0.2 + 0.8 = 1.0
        _ => prom(1.0, 1.0, 0.1), // 1 + 0.1 + 0.4 = 1.5
    };
    assert_eq!(answer_scrapes(&mut sim, load), [A, B, C]);
    // Sequential requests (in-flight 0): all to B, the lowest score.
    let got: Vec<String> = (0..5)
        .map(|i| target(&sim.run(chat(i % 2), ok()).unwrap()))
        .collect();
    assert_eq!(counts(&got), [0, 5, 0]);
    // Open streams add their in-flight term: B 1.0 → 2.0 after one, so C (1.5) is next,
    // then B (2.0 < C's 2.5).
    let s: Vec<u64> = (0..3).map(|i| sim.begin(chat(i % 2)).unwrap()).collect();
    let open: Vec<String> = s.iter().map(|sid| open_target(&sim, *sid)).collect();
    assert_eq!(open, [B, C, B]);
    for sid in s {
        finish_ok(&mut sim, sid);
    }
    // Next period: B reports a queue and a full cache → C is best (A 9.4, B 14.2, C 1.5).
    sim.advance(Duration::from_millis(1000));
    let load2 = |h: &str| match h {
        B => prom(10.0, 2.0, 1.0),
        other => load(other),
    };
    assert_eq!(answer_scrapes(&mut sim, load2), [A, B, C]);
    let got: Vec<String> = (0..4)
        .map(|i| target(&sim.run(chat(i % 2), ok()).unwrap()))
        .collect();
    assert_eq!(counts(&got), [0, 0, 4]);
    // Scrapes start failing (500, reset, timeout): once the last good figures are older
    // than stale_ms the policy falls back to least in-flight, which rotates over all three.
    for _ in 0..4 {
        sim.advance(Duration::from_millis(1000));
        answer_scrapes(&mut sim, |h| match h {
            A => CallReply::json(500, "{}"),
            B => CallReply::Reset,
            _ => CallReply::Timeout,
        });
    }
    let got: Vec<String> = (0..6)
        .map(|i| target(&sim.run(chat(i % 2), ok()).unwrap()))
        .collect();
    assert_eq!(counts(&got), [2, 2, 2], "{got:?}");
}

#[test]
fn one_backend_without_metrics_makes_the_pick_fall_back_to_in_flight() {
    let cfg = json!({
        "policy": "metrics",
        "backends": backends(&[1, 1, 1]),
        "metrics": {"cluster": "vllm-metrics", "interval_ms": 1000, "stale_ms": 3000}
    });
    let mut sim = sim_with(1, &cfg);
    sim.add_cluster("vllm-metrics", Cluster::Manual);
    sim.advance(Duration::from_millis(1000));
    // C is not a vLLM server (no vllm: metrics): its figures are missing.
    answer_scrapes(&mut sim, |h| match h {
        C => CallReply::json(200, "up 1\n"),
        A => prom(0.0, 0.0, 0.0),
        _ => prom(9.0, 9.0, 0.9),
    });
    let got: Vec<String> = (0..6)
        .map(|_| target(&sim.run(chat(0), ok()).unwrap()))
        .collect();
    assert_eq!(
        counts(&got),
        [2, 2, 2],
        "in-flight rotation, not metrics: {got:?}"
    );
}

// ---- configuration --------------------------------------------------------------------

#[test]
fn bad_config_names_the_field() {
    let cases = [
        (
            json!({"backends": []}),
            "backends: must list at least one backend",
        ),
        (
            json!({"backends": [{"host": A, "weight": 0}]}),
            "backends[0].weight: must be at least 1",
        ),
        (
            json!({"backends": [{"host": A}, {"host": A}]}),
            "backends[1].host: duplicate backend",
        ),
        (
            json!({"policy": "metrics", "backends": [{"host": A}]}),
            "metrics: required by policy \"metrics\"",
        ),
        (
            json!({"policy": "fastest", "backends": [{"host": A}]}),
            "policy: unknown variant",
        ),
    ];
    for (cfg, want) in cases {
        let err = Sim::new(SimOptions::default())
            .add_plugin(spec("ai-load-balancer").config_json(cfg.to_string()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("ai-load-balancer: invalid config: {want}")),
            "{err}"
        );
    }
}

#[test]
fn example_config_loads_and_balances() {
    let text = aigw_test_kit::read_example_config("ai-load-balancer");
    let mut sim = Sim::new(SimOptions::default());
    sim.add_plugin(spec("ai-load-balancer").config_json(text))
        .expect("example loads");
    let rec = sim.run(chat(0), ok()).unwrap();
    assert_eq!(rec.response.status, 200);
    assert!(target(&rec).starts_with("127.0.0.1:81"));
}
