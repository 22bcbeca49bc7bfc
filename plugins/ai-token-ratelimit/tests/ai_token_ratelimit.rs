//! ai-token-ratelimit end to end in the host simulator: the real module, several worker VMs,
//! the simulated clock, streams step by step, and (cluster mode) a real redis-server.
//!
//! Numbers used throughout: the standard chat body below has a prompt estimate of 14 tokens
//! (55 bytes of JSON strings at 4 bytes per token) and asks for `max_tokens` 10, so admission
//! reserves 24 tokens for it.
//!
//! The cluster-mode tests need the module built with the `higress` feature at
//! `dist/higress/ai-token-ratelimit.wasm` (`scripts/build-wasm.sh` builds it).

use aigw_test_kit::answer::{openai_body, usage};
use aigw_test_kit::{
    assert_refused, error_message, load, logs_with, reached_upstream, spec, Chat, RedisServer,
};
use host_sim::{Request, Sim, SimOptions, StreamRecord, UpstreamResponse};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

const ESTIMATE: u64 = 24;
const PROMPT_ESTIMATE: u64 = 14;

fn sim_with(workers: usize, config: &str) -> Sim {
    load("ai-token-ratelimit", workers, config)
}

/// The standard chat (see the numbers above).
fn chat_body(model: &str) -> String {
    Chat::openai(model)
        .max_tokens(10)
        .user("hello there")
        .body()
}

fn chat(consumer: &str) -> Request {
    Request::post("/v1/chat/completions", chat_body("gpt-4o")).header("x-mse-consumer", consumer)
}

fn openai_usage(prompt: u64, completion: u64) -> UpstreamResponse {
    UpstreamResponse::json(200, openai_body("gpt-4o", "hi", usage(prompt, completion)))
}

fn header<'a>(rec: &'a StreamRecord, name: &str) -> Option<&'a str> {
    rec.response.header(name)
}

fn remaining_tokens(rec: &StreamRecord) -> u64 {
    header(rec, "x-ratelimit-remaining-tokens")
        .unwrap_or_else(|| panic!("no remaining header: {:?}", rec.response.headers))
        .parse()
        .unwrap()
}

fn assert_limited(rec: &StreamRecord) {
    assert_refused(rec, 429, "limited");
    assert!(
        rec.upstream_request
            .as_ref()
            .is_none_or(|u| u.body.is_empty()),
        "no body byte reaches the upstream"
    );
}

/// The count of a local-mode counter with one slot (a limit whose key has one value).
fn local_count(sim: &Sim, limit: &str, windows: &str, window: usize) -> u64 {
    let key = format!("atr|{limit}|{windows}s1|0");
    let v = sim
        .shared_data("", &key)
        .unwrap_or_else(|| panic!("no shared data {key}: {:?}", sim.shared_keys("")));
    let at = 8 + 16 * window + 8;
    u64::from_le_bytes(v[at..at + 8].try_into().unwrap())
}

/// The count in the slot that holds identity `value` of a limit with a table of slots.
fn slot_count(sim: &Sim, prefix: &str, value: &str) -> u64 {
    let id = fnv(&[value]);
    for key in sim.shared_keys("") {
        if !key.starts_with(prefix) {
            continue;
        }
        let v = sim.shared_data("", &key).unwrap();
        if u64::from_le_bytes(v[0..8].try_into().unwrap()) == id {
            return u64::from_le_bytes(v[16..24].try_into().unwrap());
        }
    }
    0
}

/// The identity hash the plugin uses (FNV-1a over the key values, each followed by 0x1f).
fn fnv(values: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for b in v.as_bytes().iter().chain(std::iter::once(&0x1f)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h.max(1)
}

const PER_CONSUMER: &str =
    r#"{"limits":[{"name":"per-consumer","key":[{"by":"consumer"}],"per_minute":100}]}"#;

#[test]
fn admits_on_estimate_charges_usage_and_limits_in_openai_shape() {
    let mut sim = sim_with(1, PER_CONSUMER);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let rec = sim.run(chat("alice"), openai_usage(20, 10)).unwrap();
        assert_eq!(rec.response.status, 200);
        assert!(reached_upstream(&rec));
        assert_eq!(header(&rec, "x-ratelimit-limit-tokens"), Some("100"));
        assert_eq!(header(&rec, "x-ratelimit-reset-tokens"), Some("60s"));
        remaining.push(remaining_tokens(&rec));
    }
    // Each answer reserves 24 and is then charged its real 30 tokens: the remaining count
    // goes down by the real usage.
    assert_eq!(
        remaining,
        vec![100 - ESTIMATE, 100 - 30 - ESTIMATE, 100 - 60 - ESTIMATE]
    );
    assert_eq!(slot_count(&sim, "atr|per-consumer|", "alice"), 90);

    // 90 used: the next estimate (24) does not fit.
    let rec = sim.run(chat("alice"), openai_usage(20, 10)).unwrap();
    assert_limited(&rec);
    assert_eq!(header(&rec, "retry-after"), Some("60"));
    assert_eq!(header(&rec, "x-ratelimit-limit-tokens"), Some("100"));
    assert_eq!(header(&rec, "x-ratelimit-remaining-tokens"), Some("10"));
    assert_eq!(header(&rec, "x-ratelimit-reset-tokens"), Some("60s"));
    let body = rec.response.json();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "tokens");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("per-consumer"));
    // Nothing was counted for the refused request.
    assert_eq!(slot_count(&sim, "atr|per-consumer|", "alice"), 90);
    assert_eq!(
        sim.metric("ai_token_ratelimit_requests_total;result=limited"),
        Some(1)
    );
    assert_eq!(
        sim.metric("ai_token_ratelimit_requests_total;result=allowed"),
        Some(3)
    );
    assert_eq!(
        sim.metric("ai_token_ratelimit_tokens_total;limit=per-consumer"),
        Some(90)
    );

    // Another consumer has its own counter; a request without a consumer is not limited.
    let rec = sim.run(chat("bob"), openai_usage(20, 10)).unwrap();
    assert_eq!(remaining_tokens(&rec), 100 - ESTIMATE);
    let anon = Request::post("/v1/chat/completions", chat_body("gpt-4o"));
    let rec = sim.run(anon, openai_usage(20, 10)).unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(header(&rec, "x-ratelimit-limit-tokens"), None);
}

#[test]
fn anthropic_clients_get_anthropic_errors() {
    let mut sim = sim_with(
        1,
        r#"{"limits":[{"name":"a","key":[{"by":"api_key"}],"per_minute":30}],"rejected_msg":"slow down"}"#,
    );
    let req = || {
        Request::post(
            "/v1/messages",
            r#"{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .header("x-api-key", "sk-ant-secret")
    };
    let ok = UpstreamResponse::json(
        200,
        r#"{"type":"message","content":[{"type":"text","text":"yo"}],"usage":{"input_tokens":12,"output_tokens":8}}"#,
    );
    let rec = sim.run(req(), ok.clone()).unwrap();
    assert_eq!(rec.response.status, 200);
    let rec = sim.run(req(), ok).unwrap();
    assert_eq!(rec.response.status, 429);
    assert_eq!(
        rec.response.json(),
        serde_json::json!({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}})
    );
    assert_eq!(header(&rec, "x-ratelimit-remaining-tokens"), Some("10"));
    // The API key never shows up in counter names or logs.
    assert!(sim.shared_keys("").iter().all(|k| !k.contains("sk-ant")));
    assert!(sim.logs().iter().all(|l| !l.message.contains("sk-ant")));
}

#[test]
fn workers_share_one_request_counter_exactly() {
    let mut sim = sim_with(
        4,
        r#"{"limits":[{"name":"all","count":"requests","per_minute":10}]}"#,
    );
    // 40 requests spread over 4 worker VMs, all in flight at once.
    let sids: Vec<u64> = (0..40)
        .map(|i| sim.begin(chat("x").worker(i % 4)).unwrap())
        .collect();
    let mut admitted = Vec::new();
    let mut limited = 0;
    for sid in &sids {
        let rec = sim.record(*sid).unwrap();
        if rec.response.status == 429 {
            assert_eq!(header(&rec, "x-ratelimit-limit-requests"), Some("10"));
            assert_eq!(header(&rec, "x-ratelimit-remaining-requests"), Some("0"));
            limited += 1;
        } else {
            assert!(reached_upstream(&rec));
            admitted.push(*sid);
        }
    }
    assert_eq!((admitted.len(), limited), (10, 30));
    // The admitted requests came from every worker.
    let workers: std::collections::BTreeSet<usize> = admitted
        .iter()
        .map(|s| sim.record(*s).unwrap().worker)
        .collect();
    assert_eq!(workers.len(), 4);
    assert_eq!(local_count(&sim, "all", "60", 0), 10);
    for sid in admitted {
        sim.respond(sid, &openai_usage(5, 5)).unwrap();
        let rec = sim.take_record(sid).unwrap();
        assert_eq!(rec.response.status, 200);
        assert!(header(&rec, "x-ratelimit-remaining-requests").is_some());
    }
    // Requests count once, whatever their tokens.
    assert_eq!(local_count(&sim, "all", "60", 0), 10);
}

#[test]
fn workers_share_token_reservations_exactly() {
    let mut sim = sim_with(4, r#"{"limits":[{"name":"tok","per_minute":1000}]}"#);
    let sids: Vec<u64> = (0..60)
        .map(|i| sim.begin(chat("x").worker(i % 4)).unwrap())
        .collect();
    let admitted: Vec<u64> = sids
        .iter()
        .copied()
        .filter(|s| reached_upstream(&sim.record(*s).unwrap()))
        .collect();
    // Every in-flight request holds its estimate: exactly floor(1000 / 24) fit.
    assert_eq!(admitted.len() as u64, 1000 / ESTIMATE);
    assert_eq!(local_count(&sim, "tok", "60", 0), 41 * ESTIMATE);
    // Each is then charged its real usage (10), replacing its reservation.
    for sid in &admitted {
        sim.respond(*sid, &openai_usage(6, 4)).unwrap();
    }
    assert_eq!(local_count(&sim, "tok", "60", 0), 41 * 10);
    // The freed room admits more: (1000 - 410) / 24 = 24 more in flight.
    let more_sids: Vec<u64> = (0..30)
        .map(|i| sim.begin(chat("x").worker(i % 4)).unwrap())
        .collect();
    let more = more_sids
        .iter()
        .filter(|s| reached_upstream(&sim.record(**s).unwrap()))
        .count();
    assert_eq!(more, 24);
}

#[test]
fn windows_roll_over_on_the_simulated_clock() {
    let mut sim = sim_with(
        2,
        r#"{"limits":[{"name":"m","per_minute":50,"per_hour":120}]}"#,
    );
    let run = |sim: &mut Sim, w: usize| sim.run(chat("a").worker(w), openai_usage(20, 10)).unwrap();
    assert_eq!(run(&mut sim, 0).response.status, 200);
    // 30 used this minute: 30 + 24 > 50.
    assert_limited(&run(&mut sim, 1));
    sim.advance(Duration::from_secs(59));
    let rec = run(&mut sim, 1);
    assert_limited(&rec);
    assert_eq!(header(&rec, "retry-after"), Some("1"));
    sim.advance(Duration::from_secs(1));
    // A new minute; the hour still remembers: the tightest window is reported.
    let rec = run(&mut sim, 0);
    assert_eq!(rec.response.status, 200);
    assert_eq!(remaining_tokens(&rec), 50 - ESTIMATE);
    assert_eq!(local_count(&sim, "m", "60.3600", 0), 30);
    assert_eq!(local_count(&sim, "m", "60.3600", 1), 60);
    for _ in 0..2 {
        sim.advance(Duration::from_secs(60));
        assert_eq!(run(&mut sim, 1).response.status, 200);
    }
    // 120 used this hour: the hour window refuses, and says when it resets.
    sim.advance(Duration::from_secs(60));
    let rec = run(&mut sim, 0);
    assert_limited(&rec);
    assert_eq!(header(&rec, "x-ratelimit-limit-tokens"), Some("120"));
    assert_eq!(
        header(&rec, "retry-after"),
        Some(&*(3600 - 240).to_string())
    );
    sim.advance(Duration::from_secs(3600 - 240));
    assert_eq!(run(&mut sim, 1).response.status, 200);
    // Counters were reused in place: one key for this limit.
    assert_eq!(
        sim.shared_keys("")
            .iter()
            .filter(|k| k.starts_with("atr|m|"))
            .count(),
        1
    );
}

const OPENAI_STREAM: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n\
data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}],\"usage\":null}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":21,\"total_tokens\":38}}\n\n\
data: [DONE]\n\n";

#[test]
fn openai_stream_usage_in_the_final_chunk_split_anywhere() {
    for piece in [1, 5, 13, 4096] {
        let mut sim = sim_with(1, r#"{"limits":[{"name":"s","per_minute":1000}]}"#);
        let rec = sim
            .run(
                chat("a"),
                UpstreamResponse::sse(OPENAI_STREAM).chunked(piece),
            )
            .unwrap();
        assert_eq!(rec.response.status, 200);
        // The stream passes through unchanged.
        assert_eq!(rec.response.body_str(), OPENAI_STREAM);
        assert_eq!(remaining_tokens(&rec), 1000 - ESTIMATE);
        assert_eq!(local_count(&sim, "s", "60", 0), 38, "piece {piece}");
    }
}

const ANTHROPIC_STREAM: &str = "event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":4,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":25}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

fn anthropic_req() -> Request {
    Request::post(
        "/v1/messages",
        r#"{"model":"claude","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    )
}

#[test]
fn anthropic_stream_usage_is_cumulative_and_cached_tokens_weighted() {
    let mut sim = sim_with(
        1,
        r#"{"limits":[
            {"name":"full","per_minute":1000},
            {"name":"nocache","per_minute":1000,"cached_input_weight":0},
            {"name":"out","count":"completion","per_minute":1000},
            {"name":"in","count":"prompt","per_minute":1000}
        ]}"#,
    );
    let rec = sim
        .run(
            anthropic_req(),
            UpstreamResponse::sse(ANTHROPIC_STREAM).chunked(9),
        )
        .unwrap();
    assert_eq!(rec.response.body_str(), ANTHROPIC_STREAM);
    // input 10 + 4 cache reads = 14; output 25 (the final cumulative value, not 1 + 25).
    assert_eq!(local_count(&sim, "full", "60", 0), 39);
    assert_eq!(local_count(&sim, "nocache", "60", 0), 35);
    assert_eq!(local_count(&sim, "out", "60", 0), 25);
    assert_eq!(local_count(&sim, "in", "60", 0), 14);
}

#[test]
fn a_stream_cut_off_by_the_client_is_charged_for_what_was_seen() {
    let mut sim = sim_with(1, r#"{"limits":[{"name":"c","per_minute":1000}]}"#);
    // OpenAI: usage only comes in the last chunk, which never arrives. Charged: the prompt
    // estimate plus one token per streamed event.
    let sid = sim.begin(chat("a")).unwrap();
    assert_eq!(local_count(&sim, "c", "60", 0), ESTIMATE);
    let sse = vec![("content-type".to_string(), "text/event-stream".to_string())];
    sim.send_response_headers(sid, 200, &sse, false).unwrap();
    let first_two: String = OPENAI_STREAM.split_inclusive("\n\n").take(2).collect();
    sim.send_response_body(sid, first_two.as_bytes(), false)
        .unwrap();
    sim.client_abort(sid);
    assert!(sim.take_record(sid).unwrap().finished);
    assert_eq!(local_count(&sim, "c", "60", 0), PROMPT_ESTIMATE + 2);

    // Anthropic: message_start told the input (14); the output is at least the 3 events seen.
    let mut sim = sim_with(1, r#"{"limits":[{"name":"c","per_minute":1000}]}"#);
    let sid = sim.begin(anthropic_req()).unwrap();
    sim.send_response_headers(sid, 200, &sse, false).unwrap();
    let head: String = ANTHROPIC_STREAM.split_inclusive("\n\n").take(3).collect();
    sim.send_response_body(sid, head.as_bytes(), false).unwrap();
    sim.client_abort(sid);
    assert_eq!(local_count(&sim, "c", "60", 0), 14 + 3);

    // Gone before any response: the prompt was sent, so its estimate is charged.
    let mut sim = sim_with(1, r#"{"limits":[{"name":"c","per_minute":1000}]}"#);
    let sid = sim.begin(chat("a")).unwrap();
    sim.client_abort(sid);
    assert_eq!(local_count(&sim, "c", "60", 0), PROMPT_ESTIMATE);
}

#[test]
fn a_client_gone_before_admission_is_not_charged() {
    // Local admission is synchronous (made inside the body callback), so the client can only
    // leave before it (nothing counted) or after it (the previous test). Before it:
    let mut sim = sim_with(1, r#"{"limits":[{"name":"c","per_minute":1000}]}"#);
    let req = chat("a");
    let sid = sim.start_stream(Default::default());
    sim.send_request_headers(sid, &req.header_list("r1"), false)
        .unwrap();
    sim.send_request_body(sid, br#"{"model":"gpt-4o","#, false)
        .unwrap();
    assert_eq!(local_count(&sim, "c", "60", 0), 0);
    sim.client_abort(sid);
    assert!(sim.take_record(sid).unwrap().finished);
    assert_eq!(local_count(&sim, "c", "60", 0), 0);
    assert!(sim
        .metric("ai_token_ratelimit_requests_total;result=allowed")
        .is_none());
}

#[test]
fn cache_hits_and_upstream_errors_are_not_charged() {
    let mut sim = sim_with(
        1,
        r#"{"limits":[{"name":"t","per_minute":1000},{"name":"r","count":"requests","per_minute":1000}]}"#,
    );
    let hit = openai_usage(100, 100).header("x-cache-status", "HIT");
    assert_eq!(sim.run(chat("a"), hit).unwrap().response.status, 200);
    assert_eq!(local_count(&sim, "t", "60", 0), 0);
    let err = UpstreamResponse::json(500, r#"{"error":{"message":"boom"}}"#);
    assert_eq!(sim.run(chat("a"), err).unwrap().response.status, 500);
    assert_eq!(local_count(&sim, "t", "60", 0), 0);
    // A success without usage is charged its estimate.
    let bare = UpstreamResponse::json(200, r#"{"choices":[]}"#);
    sim.run(chat("a"), bare).unwrap();
    assert_eq!(local_count(&sim, "t", "60", 0), ESTIMATE);
    // Requests are requests: all three counted.
    assert_eq!(local_count(&sim, "r", "60", 0), 3);
}

#[test]
fn usage_published_by_ai_proxy_wins() {
    let mut sim = sim_with(1, r#"{"limits":[{"name":"p","per_minute":1000}]}"#);
    let mut req = chat("a");
    req.opts.props.extra.insert(
        "aigw.usage".into(),
        br#"{"input":7,"output":3,"total":10,"cached_input":0,"reasoning":0}"#.to_vec(),
    );
    sim.run(req, openai_usage(300, 300)).unwrap();
    assert_eq!(local_count(&sim, "p", "60", 0), 10);
}

#[test]
fn ip_request_limits_with_trusted_forwarded_for() {
    let mut sim = sim_with(
        2,
        r#"{"limits":[{"name":"ip","key":[{"by":"ip"}],"count":"requests","per_second":2}],
            "client_ip":{"xff_trusted_hops":1}}"#,
    );
    let from = |xff: &str, w: usize| {
        Request::post("/v1/chat/completions", chat_body("m"))
            .header("x-forwarded-for", xff)
            .worker(w)
    };
    let ok = || openai_usage(1, 1);
    let rec = sim.run(from("9.9.9.9, 5.5.5.5", 0), ok()).unwrap();
    assert_eq!(header(&rec, "x-ratelimit-limit-requests"), Some("2"));
    assert_eq!(header(&rec, "x-ratelimit-remaining-requests"), Some("1"));
    assert_eq!(header(&rec, "x-ratelimit-reset-requests"), Some("1s"));
    // The client controls the left part of the header: changing it does not escape.
    assert_eq!(
        sim.run(from("1.1.1.1, 5.5.5.5", 1), ok())
            .unwrap()
            .response
            .status,
        200
    );
    let rec = sim.run(from("2.2.2.2, 5.5.5.5", 0), ok()).unwrap();
    assert_limited(&rec);
    assert_eq!(header(&rec, "retry-after"), Some("1"));
    assert_eq!(header(&rec, "x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(rec.response.json()["error"]["type"], "requests");
    // Another client address is separate; a new second starts over.
    assert_eq!(
        sim.run(from("5.5.5.6", 1), ok()).unwrap().response.status,
        200
    );
    sim.advance(Duration::from_secs(1));
    assert_eq!(
        sim.run(from("5.5.5.5", 1), ok()).unwrap().response.status,
        200
    );

    // Without trusted hops the connection's peer address is the client.
    let mut sim = sim_with(
        1,
        r#"{"limits":[{"name":"ip","key":[{"by":"ip","match":"127.0.0.0/8"}],"count":"requests","per_minute":1}]}"#,
    );
    assert_eq!(
        sim.run(from("5.5.5.5", 0), ok()).unwrap().response.status,
        200
    );
    assert_limited(&sim.run(from("6.6.6.6", 0), ok()).unwrap());
    let mut other = from("5.5.5.5", 0);
    other.opts.props.source_address = "10.1.1.1:4000".into();
    let rec = sim.run(other, ok()).unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(
        header(&rec, "x-ratelimit-limit-requests"),
        None,
        "outside 127.0.0.0/8"
    );
}

#[test]
fn higress_configuration_first_match_by_query_parameter() {
    let mut sim = sim_with(
        1,
        r#"{"rule_name":"default_rule","rule_items":[
            {"limit_by_param":"apikey","limit_keys":[{"key":"vip","token_per_minute":1000}]},
            {"limit_by_per_param":"apikey","limit_keys":[{"key":"*","token_per_minute":50}]}
          ],
          "redis":{"service_name":"redis.static"}}"#,
    );
    // This module has no Redis calls: it says so and keeps the counters local.
    assert!(!logs_with(&sim, "built without the `higress` feature").is_empty());
    let q = |key: &str| {
        Request::post(
            &format!("/v1/chat/completions?apikey={key}"),
            chat_body("gpt-4o"),
        )
    };
    let ok = || openai_usage(20, 4);
    assert_eq!(sim.run(q("a"), ok()).unwrap().response.status, 200);
    assert_eq!(sim.run(q("a"), ok()).unwrap().response.status, 200);
    assert_limited(&sim.run(q("a"), ok()).unwrap());
    // Each value of the parameter has its own counter; the exact key has its own limit.
    assert_eq!(sim.run(q("b"), ok()).unwrap().response.status, 200);
    for _ in 0..3 {
        let rec = sim.run(q("vip"), ok()).unwrap();
        assert_eq!(header(&rec, "x-ratelimit-limit-tokens"), Some("1000"));
    }
}

#[test]
fn per_consumer_per_model() {
    let mut sim = sim_with(
        1,
        r#"{"limits":[{"name":"cm","key":[{"by":"consumer"},{"by":"model","match":"regexp:^gpt-4"}],"per_minute":50}]}"#,
    );
    let req = |consumer: &str, model: &str| {
        Request::post("/v1/chat/completions", chat_body(model)).header("x-mse-consumer", consumer)
    };
    let ok = || openai_usage(20, 10);
    assert_eq!(
        sim.run(req("alice", "gpt-4o"), ok())
            .unwrap()
            .response
            .status,
        200
    );
    assert_limited(&sim.run(req("alice", "gpt-4o"), ok()).unwrap());
    // Same consumer, another matching model: another counter.
    assert_eq!(
        sim.run(req("alice", "gpt-4o-mini"), ok())
            .unwrap()
            .response
            .status,
        200
    );
    // Another consumer, same model: another counter.
    assert_eq!(
        sim.run(req("bob", "gpt-4o"), ok()).unwrap().response.status,
        200
    );
    // A model the pattern does not match is not limited.
    let rec = sim.run(req("alice", "claude"), ok()).unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(header(&rec, "x-ratelimit-limit-tokens"), None);
}

#[test]
fn expired_windows_free_their_slots_and_the_table_stays_bounded() {
    let config = |mode: &str| {
        format!(
            r#"{{"limits":[{{"name":"u","key":[{{"by":"header","name":"x-user"}}],"count":"requests","per_second":5}}],
                "local":{{"slots":4}},"failure_mode":"{mode}"}}"#
        )
    };
    let user = |u: &str| chat("x").header("x-user", u);
    let mut sim = sim_with(1, &config("open"));
    assert_eq!(
        sim.shared_keys("")
            .iter()
            .filter(|k| k.starts_with("atr|u|"))
            .count(),
        4
    );
    for u in ["u1", "u2", "u3", "u4"] {
        let rec = sim.run(user(u), openai_usage(1, 1)).unwrap();
        assert_eq!(header(&rec, "x-ratelimit-remaining-requests"), Some("4"));
    }
    // Four identities hold every slot for this second: a fifth is let through uncounted
    // (failure mode open), and the failure is counted and logged.
    let rec = sim.run(user("u5"), openai_usage(1, 1)).unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(header(&rec, "x-ratelimit-remaining-requests"), None);
    assert_eq!(
        sim.metric("ai_token_ratelimit_store_errors_total;store=local;op=admit"),
        Some(1)
    );
    assert!(!logs_with(&sim, "counter table full").is_empty());
    // The windows end: the slots are taken over by new identities.
    sim.advance(Duration::from_secs(1));
    for u in ["u5", "u6", "u7", "u8"] {
        let rec = sim.run(user(u), openai_usage(1, 1)).unwrap();
        assert_eq!(header(&rec, "x-ratelimit-remaining-requests"), Some("4"));
    }
    assert_eq!(
        sim.shared_keys("")
            .iter()
            .filter(|k| k.starts_with("atr|u|"))
            .count(),
        4
    );

    let mut sim = sim_with(1, &config("closed"));
    for u in ["u1", "u2", "u3", "u4"] {
        sim.run(user(u), openai_usage(1, 1)).unwrap();
    }
    let rec = sim.run(user("u5"), openai_usage(1, 1)).unwrap();
    assert_eq!(rec.response.status, 503);
    assert_eq!(header(&rec, "retry-after"), Some("1"));
    assert!(!reached_upstream(&rec));
}

#[test]
fn large_prompts_and_max_tokens_decide_admission() {
    let mut sim = sim_with(1, r#"{"limits":[{"name":"big","per_minute":300}]}"#);
    // 2,000 bytes of prompt: about 500 tokens, more than the whole limit.
    let long = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "abcd".repeat(500)
    );
    let rec = sim
        .run(
            Request::post("/v1/chat/completions", long).chunked(100),
            openai_usage(1, 1),
        )
        .unwrap();
    assert_limited(&rec);
    assert!(error_message(&rec).contains("request too large"));
    // A small prompt asking for many completion tokens is priced by max_tokens.
    let greedy = r#"{"model":"m","max_tokens":295,"messages":[]}"#;
    assert_limited(
        &sim.run(
            Request::post("/v1/chat/completions", greedy),
            openai_usage(1, 1),
        )
        .unwrap(),
    );
    let modest = r#"{"model":"m","max_tokens":100,"messages":[]}"#;
    assert_eq!(
        sim.run(
            Request::post("/v1/chat/completions", modest),
            openai_usage(1, 1)
        )
        .unwrap()
        .response
        .status,
        200
    );
}

#[test]
fn request_limits_decide_at_headers_without_holding_the_body() {
    let mut sim = sim_with(
        1,
        r#"{"limits":[{"name":"r","key":[{"by":"route"}],"count":"requests","per_minute":1}]}"#,
    );
    let rec = sim
        .run(chat("a").route("r1").chunked(7), openai_usage(1, 1))
        .unwrap();
    assert_eq!(rec.response.status, 200);
    // Not held: the body went upstream in the pieces it came in.
    assert!(rec.upstream_request.unwrap().chunks.len() > 1);
    let rec = sim.run(chat("a").route("r1"), openai_usage(1, 1)).unwrap();
    assert_eq!(rec.response.status, 429);
    assert!(
        rec.upstream_request.is_none(),
        "refused before the upstream saw anything"
    );
    assert_eq!(
        sim.run(chat("a").route("r2"), openai_usage(1, 1))
            .unwrap()
            .response
            .status,
        200
    );
}

#[test]
fn every_kind_of_bad_field_is_refused_with_its_name() {
    let cases = [
        (r#"{}"#, "limits: required"),
        (
            r#"{"limits":[{"per_minute":0}]}"#,
            "limits[0].per_minute: must be greater than 0",
        ),
        (
            r#"{"limits":[{"per_hour":"x"}]}"#,
            "limits[0].per_hour: invalid type",
        ),
        (
            r#"{"limits":[{"per_minute":1,"key":[{"by":"header"}]}]}"#,
            "limits[0].key[0].name: required",
        ),
        (
            r#"{"limits":[{"per_minute":1,"key":[{"by":"model","match":"regexp:("}]}]}"#,
            "limits[0].key[0].match: invalid regular expression",
        ),
        (
            r#"{"limits":[{"per_minute":1,"key":[{"by":"ip","match":"1.2.3.4/77"}]}]}"#,
            "limits[0].key[0].match",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"mode":"cluster","redis":{"cluster":"r"}}"#,
            "mode: \"cluster\" needs the module built with the `higress` feature",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"admission":{"bytes_per_token":0}}"#,
            "admission.bytes_per_token",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"redis":{"cluster":"r","timeout":0}}"#,
            "redis.timeout",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"colour":"red"}"#,
            "colour: unknown field",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_by_per_ip":"socket","limit_keys":[{"key":"*","token_per_day":1}]}]}"#,
            "rule_items[0].limit_by_per_ip",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_by_param":"k","limit_keys":[{"key":"a"}]}]}"#,
            "rule_items[0].limit_keys[0]: needs at least one of token_per_second",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"_rules_":[{"_match_route_":["x"],"limits":[{"per_second":0}]}]}"#,
            "_rules_[0].limits[0].per_second",
        ),
    ];
    aigw_test_kit::assert_configs_rejected("ai-token-ratelimit", &cases);
}

#[test]
fn per_route_rules_pick_their_own_limits() {
    let mut sim = sim_with(
        1,
        r#"{"limits":[{"name":"default","count":"requests","per_minute":100}],
            "_rules_":[{"_match_route_":["tight"],"limits":[{"name":"tight","count":"requests","per_minute":1}]}]}"#,
    );
    assert_eq!(
        sim.run(chat("a").route("tight"), openai_usage(1, 1))
            .unwrap()
            .response
            .status,
        200
    );
    assert_eq!(
        sim.run(chat("a").route("tight"), openai_usage(1, 1))
            .unwrap()
            .response
            .status,
        429
    );
    let rec = sim
        .run(chat("a").route("other"), openai_usage(1, 1))
        .unwrap();
    assert_eq!(header(&rec, "x-ratelimit-limit-requests"), Some("100"));
}

// ---- cluster mode (Redis) -------------------------------------------------------------------

const REDIS_CLUSTER: &str = "outbound|6379||redis.static";

fn cluster_config(extra: &str) -> String {
    format!(
        r#"{{"limits":[{{"name":"per-consumer","key":[{{"by":"consumer"}}],"per_minute":100}}],
            "redis":{{"service_name":"redis.static","service_port":6379,"timeout":300}}{extra}}}"#
    )
}

fn gateway(redis: SocketAddr, config: &str) -> Sim {
    let mut sim = Sim::new(SimOptions {
        workers: 2,
        ..Default::default()
    });
    sim.add_redis(REDIS_CLUSTER, redis);
    sim.add_plugin(spec("ai-token-ratelimit-higress").config_json(config))
        .expect("plugin loads");
    sim
}

/// Sends one command to Redis and returns the raw reply.
fn redis_cmd(addr: SocketAddr, args: &[&str]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut q = format!("*{}\r\n", args.len());
    for a in args {
        q.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(q.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s);
    let mut out = String::new();
    r.read_line(&mut out).unwrap();
    if out.starts_with('$') && !out.starts_with("$-1") {
        r.read_line(&mut out).unwrap();
    } else if let Some(n) = out
        .strip_prefix('*')
        .and_then(|n| n.trim().parse::<usize>().ok())
    {
        for _ in 0..n * 2 {
            r.read_line(&mut out).unwrap();
        }
    }
    out
}

/// The sum of every counter of a Redis key prefix.
fn redis_total(addr: SocketAddr, pattern: &str) -> u64 {
    let keys = redis_cmd(addr, &["KEYS", pattern]);
    keys.lines()
        .filter(|l| !l.starts_with('*') && !l.starts_with('$'))
        .map(|k| {
            let v = redis_cmd(addr, &["GET", k]);
            v.lines()
                .nth(1)
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn cluster_mode_counters_are_shared_by_gateway_replicas() {
    let redis = RedisServer::start();
    let mut a = gateway(redis.addr, &cluster_config(""));
    let mut b = gateway(redis.addr, &cluster_config(""));
    let mut remaining = Vec::new();
    for i in 0..3 {
        let sim = if i == 1 { &mut b } else { &mut a };
        let rec = sim
            .run(chat("alice").worker(i % 2), openai_usage(20, 10))
            .unwrap();
        assert_eq!(rec.response.status, 200);
        assert!(reached_upstream(&rec));
        remaining.push(remaining_tokens(&rec));
    }
    assert_eq!(
        remaining,
        vec![100 - ESTIMATE, 100 - 30 - ESTIMATE, 100 - 60 - ESTIMATE]
    );
    assert_eq!(redis_total(redis.addr, "aigw-trl:per-consumer:*"), 90);
    // The fourth request, on the other replica, no longer fits.
    let rec = b.run(chat("alice"), openai_usage(20, 10)).unwrap();
    assert_limited(&rec);
    assert_eq!(header(&rec, "x-ratelimit-remaining-tokens"), Some("10"));
    assert_eq!(header(&rec, "retry-after"), Some("60"));
    assert_eq!(redis_total(redis.addr, "aigw-trl:per-consumer:*"), 90);
    // Keys expire on their own a minute after their window.
    let key = redis_cmd(redis.addr, &["KEYS", "aigw-trl:per-consumer:*"]);
    let key = key.lines().nth(2).unwrap().to_string();
    let ttl: i64 = redis_cmd(redis.addr, &["TTL", &key])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(ttl > 60 && ttl <= 120, "ttl {ttl}");
    // Streams settle through Redis too.
    let rec = a
        .run(chat("bob"), UpstreamResponse::sse(OPENAI_STREAM).chunked(6))
        .unwrap();
    assert_eq!(rec.response.body_str(), OPENAI_STREAM);
    assert_eq!(redis_total(redis.addr, "aigw-trl:per-consumer:*"), 90 + 38);
}

#[test]
fn cluster_mode_redis_down_fails_open_or_closed_as_configured() {
    let mut redis = RedisServer::start();
    let addr = redis.addr;
    let mut open = gateway(addr, &cluster_config(""));
    let mut closed = gateway(addr, &cluster_config(r#","failure_mode":"closed""#));
    redis.stop();
    let rec = open.run(chat("alice"), openai_usage(20, 10)).unwrap();
    assert_eq!(rec.response.status, 200);
    assert!(reached_upstream(&rec));
    assert_eq!(
        open.metric("ai_token_ratelimit_store_errors_total;store=redis;op=admit"),
        Some(1)
    );
    assert_eq!(
        open.metric("ai_token_ratelimit_requests_total;result=failed_open"),
        Some(1)
    );
    assert!(!logs_with(&open, "redis admission failed").is_empty());

    let rec = closed.run(chat("alice"), openai_usage(20, 10)).unwrap();
    assert_eq!(rec.response.status, 503);
    assert!(!reached_upstream(&rec));
    assert_eq!(header(&rec, "retry-after"), Some("1"));
    assert_eq!(rec.response.json()["error"]["type"], "server_error");
}

#[test]
fn cluster_mode_slow_redis_times_out_instead_of_hanging() {
    // A server that accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = (&s).read(&mut buf);
            held.push(s);
        }
    });
    let mut open = gateway(addr, &cluster_config(""));
    let mut closed = gateway(addr, &cluster_config(r#","failure_mode":"closed""#));
    let rec = open.run(chat("alice"), openai_usage(20, 10)).unwrap();
    assert!(rec.finished);
    assert_eq!(rec.response.status, 200);
    assert!(reached_upstream(&rec));
    let rec = closed.run(chat("alice"), openai_usage(20, 10)).unwrap();
    assert!(rec.finished);
    assert_eq!(rec.response.status, 503);
    assert_eq!(
        closed.metric("ai_token_ratelimit_store_errors_total;store=redis;op=admit"),
        Some(1)
    );
}

#[test]
fn cluster_mode_survives_a_redis_restart() {
    let mut first = RedisServer::start();
    let addr = first.addr;
    let mut sim = gateway(addr, &cluster_config(""));
    // What alice's next request gets: each one uses 30 of her 100 tokens.
    let next = |sim: &mut Sim| {
        sim.run(chat("alice"), openai_usage(20, 10))
            .unwrap()
            .response
            .status
    };
    for _ in 0..3 {
        assert_eq!(next(&mut sim), 200);
    }
    assert_limited(&sim.run(chat("alice"), openai_usage(20, 10)).unwrap());
    // Redis goes away: requests fail open meanwhile.
    first.stop();
    assert_eq!(next(&mut sim), 200);
    // Back on the same address, empty (no persistence): counting starts over and the limit
    // holds again.
    let second = RedisServer::start_on(addr.port());
    let statuses: Vec<u16> = (0..4).map(|_| next(&mut sim)).collect();
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    assert_eq!(redis_total(addr, "aigw-trl:per-consumer:*"), 90);
    drop(second);
}

/// One section of `INFO` (a bulk string of many lines).
fn redis_info(addr: SocketAddr, section: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let q = format!("*2\r\n$4\r\nINFO\r\n${}\r\n{section}\r\n", section.len());
    s.write_all(q.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s);
    let mut head = String::new();
    r.read_line(&mut head).unwrap();
    let n: usize = head.trim().trim_start_matches('$').parse().unwrap();
    let mut body = vec![0u8; n];
    r.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

/// How many times Redis ran `command` (`calls=` of `INFO commandstats`; 0 before the first).
fn redis_calls(addr: SocketAddr, command: &str) -> u64 {
    let stats = redis_info(addr, "commandstats");
    let prefix = format!("cmdstat_{command}:calls=");
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map(|n| n.parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn cluster_mode_a_client_gone_during_admission_leaves_nothing_reserved() {
    let redis = RedisServer::start();
    let addr = redis.addr;
    let mut sim = gateway(addr, &cluster_config(""));
    let abandon = |sim: &mut Sim| {
        // The admission call is held in flight while the client goes away; then Redis runs
        // it and its reply finds no stream.
        sim.hold_redis(true);
        let sid = sim.begin(chat("alice")).unwrap();
        assert_eq!(sim.pending_redis_calls(), 1);
        assert!(!sim.upstream_request(sid).is_some_and(|u| u.complete));
        sim.client_abort(sid);
        assert!(sim.take_record(sid).unwrap().finished);
        sim.hold_redis(false);
        assert_eq!(sim.pending_redis_calls(), 0);
    };
    // A fresh Redis does not know the script yet (NOSCRIPT): nothing was counted, nothing to
    // give back, and the gone stream's EVAL fallback is not sent.
    abandon(&mut sim);
    assert_eq!(redis_cmd(addr, &["KEYS", "aigw-trl:*"]).trim(), "*0");
    assert_eq!(redis_calls(addr, "eval"), 0);
    // Once the script is loaded (bob's request), the abandoned admission runs in Redis and
    // reserves 24 tokens for alice; the fallback releases them.
    let rec = sim.run(chat("bob"), openai_usage(20, 10)).unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(redis_total(addr, "aigw-trl:per-consumer:*"), 30);
    abandon(&mut sim);
    let keys = redis_cmd(addr, &["KEYS", "aigw-trl:per-consumer:*"]);
    assert!(
        keys.starts_with("*2"),
        "alice's counter was charged: {keys}"
    );
    assert_eq!(redis_total(addr, "aigw-trl:per-consumer:*"), 30);
    assert_eq!(
        sim.metric("ai_token_ratelimit_requests_total;result=abandoned"),
        Some(2)
    );
    assert!(sim
        .metric("ai_token_ratelimit_store_errors_total;store=redis;op=release")
        .is_none());
    // Alice's next request sees her whole budget.
    let rec = sim.run(chat("alice"), openai_usage(20, 10)).unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(remaining_tokens(&rec), 100 - ESTIMATE);
    assert_eq!(redis_total(addr, "aigw-trl:per-consumer:*"), 60);

    // A refused admission whose client left releases nothing (nothing was counted): alice
    // reaches 90 of 100, then a request that does not fit is abandoned.
    for _ in 0..2 {
        let rec = sim.run(chat("alice"), openai_usage(20, 10)).unwrap();
        assert_eq!(rec.response.status, 200);
    }
    assert_eq!(redis_total(addr, "aigw-trl:per-consumer:*"), 30 + 90);
    abandon(&mut sim);
    assert_eq!(redis_total(addr, "aigw-trl:per-consumer:*"), 30 + 90);
    assert_eq!(
        sim.metric("ai_token_ratelimit_requests_total;result=abandoned"),
        Some(3)
    );
}

#[test]
fn cluster_mode_runs_scripts_by_sha_and_reloads_them_after_a_flush() {
    let redis = RedisServer::start();
    let addr = redis.addr;
    let mut sim = gateway(addr, &cluster_config(""));
    let run = |sim: &mut Sim| {
        let rec = sim.run(chat("alice"), openai_usage(20, 10)).unwrap();
        assert_eq!(rec.response.status, 200, "{}", rec.response.body_str());
        assert!(reached_upstream(&rec));
        remaining_tokens(&rec)
    };
    // A fresh Redis knows no script: admission and settle each try EVALSHA, get NOSCRIPT and
    // are sent again with EVAL, transparently for the request.
    assert_eq!(run(&mut sim), 100 - ESTIMATE);
    assert_eq!(redis_calls(addr, "evalsha"), 2);
    assert_eq!(redis_calls(addr, "eval"), 2);
    assert_eq!(redis_total(addr, "aigw-trl:per-consumer:*"), 30);
    // From then on only the SHA-1 goes over the wire.
    assert_eq!(run(&mut sim), 100 - 30 - ESTIMATE);
    assert_eq!(redis_calls(addr, "evalsha"), 4);
    assert_eq!(redis_calls(addr, "eval"), 2);
    assert_eq!(redis_total(addr, "aigw-trl:per-consumer:*"), 60);
    // SCRIPT FLUSH empties Redis's script cache: the next request still works (and its
    // settle too), falling back to EVAL once per script.
    assert!(redis_cmd(addr, &["SCRIPT", "FLUSH"]).starts_with("+OK"));
    assert_eq!(run(&mut sim), 100 - 60 - ESTIMATE);
    assert_eq!(redis_calls(addr, "evalsha"), 6);
    assert_eq!(redis_calls(addr, "eval"), 4);
    assert_eq!(redis_total(addr, "aigw-trl:per-consumer:*"), 90);
    assert_limited(&sim.run(chat("alice"), openai_usage(20, 10)).unwrap());
    assert_eq!(redis_calls(addr, "eval"), 4);
    assert!(sim
        .metric("ai_token_ratelimit_store_errors_total;store=redis;op=admit")
        .is_none());
    assert!(sim
        .metric("ai_token_ratelimit_store_errors_total;store=redis;op=settle")
        .is_none());
}

#[test]
fn cluster_mode_refuses_an_unknown_redis_cluster() {
    let mut sim = Sim::new(SimOptions::default());
    let err =
        sim.add_plugin(spec("ai-token-ratelimit-higress").config_json(
            r#"{"limits":[{"per_minute":1}],"redis":{"service_name":"nowhere.dns"}}"#,
        ))
        .expect_err("unknown cluster")
        .to_string();
    assert!(
        err.contains("redis: the gateway refused Redis cluster"),
        "{err}"
    );
    assert!(err.contains("outbound|6379||nowhere.dns"), "{err}");
}

#[test]
fn a_body_with_a_repeated_key_is_refused_before_admission() {
    let mut sim = sim_with(1, PER_CONSUMER);
    // `"n":1,"n":128` or two models: the estimate and per-model limits cannot be decided.
    for body in [
        r#"{"model":"gpt-4o","n":1,"max_tokens":10,"messages":[],"n":128}"#,
        r#"{"model":"gpt-4o-mini","max_tokens":10,"messages":[],"model":"gpt-4o"}"#,
    ] {
        let rec = sim
            .run(
                Request::post("/v1/chat/completions", body).header("x-mse-consumer", "alice"),
                openai_usage(20, 10),
            )
            .unwrap();
        assert_eq!(rec.response.status, 400, "{body}");
        assert!(!reached_upstream(&rec));
        assert_eq!(rec.response.json()["error"]["code"], "invalid_json");
    }
    // Nothing was reserved or charged for them.
    assert_eq!(slot_count(&sim, "atr|per-consumer|", "alice"), 0);
    let rec = sim.run(chat("alice"), openai_usage(20, 10)).unwrap();
    assert_eq!(rec.response.status, 200);
}
