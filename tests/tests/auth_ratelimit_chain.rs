//! ai-auth in front of ai-token-ratelimit, with the shipped example configurations
//! (`examples/ai-auth.json`, `examples/ai-token-ratelimit.json`), as the pack's full chain
//! runs them: ai-auth authenticates and removes the API key, so the limiter's `by: api_key`
//! limit counts by the key fingerprint ai-auth publishes (`aigw.auth.key_id`). Each key has
//! its own budget; without a key or a fingerprint the limit cannot apply, which is counted and
//! logged once.

use aigw_tests::{logs_with, root, spec};
use host_sim::{Request, Sim, SimOptions, StreamRecord, UpstreamResponse};

/// team-web (allowed `gpt-4o*`) and batch-jobs (allowed `gpt-4o-mini`) in the example.
const WEB_KEY: &str = "sk-web-3f9a1c7e5b2d4068";
const BATCH_KEY: &str = "sk-batch-8c2e61d09a7f4b35";
/// `key-model-tokens` in the example: 200,000 tokens a minute per key and model.
const PER_MINUTE: u64 = 200_000;

fn example(name: &str) -> String {
    std::fs::read_to_string(root().join("examples").join(name)).expect("example config")
}

fn chain() -> Sim {
    let mut sim = Sim::new(SimOptions::default());
    sim.add_plugin(spec("ai-auth").config_json(example("ai-auth.json")))
        .expect("ai-auth loads");
    sim.add_plugin(spec("ai-token-ratelimit").config_json(example("ai-token-ratelimit.json")))
        .expect("ai-token-ratelimit loads");
    sim
}

fn chat(key: &str) -> Request {
    Request::post(
        "/v1/chat/completions",
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}"#,
    )
    .header("content-type", "application/json")
    .header("authorization", &format!("Bearer {key}"))
}

/// An answer that used `total` tokens.
fn answer(total: u64) -> UpstreamResponse {
    let prompt = total - 10;
    UpstreamResponse::json(
        200,
        format!(
            r#"{{"id":"c1","object":"chat.completion","model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":"hi"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":{prompt},"completion_tokens":10,"total_tokens":{total}}}}}"#
        ),
    )
}

fn upstream_header<'a>(rec: &'a StreamRecord, name: &str) -> Option<&'a str> {
    rec.upstream_request.as_ref().and_then(|u| u.header(name))
}

#[test]
fn per_key_limit_applies_behind_ai_auth() {
    let mut sim = chain();
    // team-web spends almost its whole minute in one answer.
    let rec = sim.run(chat(WEB_KEY), answer(PER_MINUTE - 5)).unwrap();
    assert_eq!(rec.response.status, 200, "{}", rec.response.body_str());
    assert_eq!(upstream_header(&rec, "x-mse-consumer"), Some("team-web"));
    assert_eq!(
        upstream_header(&rec, "authorization"),
        None,
        "ai-auth removed the key"
    );
    assert_eq!(
        rec.response.header("x-ratelimit-limit-tokens"),
        Some("200000"),
        "the per-key limit applied: {:?}",
        rec.response.headers
    );

    // Its next request no longer fits the key's budget.
    let rec = sim.run(chat(WEB_KEY), answer(100)).unwrap();
    assert_eq!(
        rec.response.status,
        429,
        "team-web is over its per-key budget: {}",
        rec.response.body_str()
    );
    assert!(rec.upstream_request.as_ref().is_none_or(|u| !u.complete));
    assert!(rec.response.header("retry-after").is_some());

    // batch-jobs has its own bucket.
    for _ in 0..3 {
        let rec = sim.run(chat(BATCH_KEY), answer(1_000)).unwrap();
        assert_eq!(rec.response.status, 200, "{}", rec.response.body_str());
        assert_eq!(upstream_header(&rec, "x-mse-consumer"), Some("batch-jobs"));
    }
    assert_eq!(
        sim.metric("ai_token_ratelimit_no_api_key_total;limit=key-model-tokens"),
        None,
        "every request had a key id"
    );
    // The fingerprint is published, the key never.
    let rec = sim.run(chat(BATCH_KEY), answer(1_000)).unwrap();
    let id = rec
        .filter_state
        .get("aigw.auth.key_id")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .expect("ai-auth publishes the key id");
    assert_eq!(id.len(), 16, "{id}");
    assert!(!id.contains("sk-"), "{id}");
    for (name, value) in &rec.filter_state {
        let v = String::from_utf8_lossy(value);
        assert!(!v.contains(BATCH_KEY), "{name} carries the key: {v}");
    }
}

#[test]
fn api_key_limit_without_any_key_is_counted_and_logged_once() {
    let mut sim = Sim::new(SimOptions::default());
    sim.add_plugin(spec("ai-token-ratelimit").config_json(example("ai-token-ratelimit.json")))
        .expect("ai-token-ratelimit loads");
    for _ in 0..3 {
        let req = Request::post(
            "/v1/chat/completions",
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
        );
        let rec = sim.run(req, answer(100)).unwrap();
        assert_eq!(rec.response.status, 200, "{}", rec.response.body_str());
    }
    assert_eq!(
        sim.metric("ai_token_ratelimit_no_api_key_total;limit=key-model-tokens"),
        Some(3)
    );
    let warnings = logs_with(
        &sim,
        "limit `key-model-tokens` (by: api_key) does not apply",
    );
    assert_eq!(warnings.len(), 1, "logged once per VM: {warnings:?}");
}

#[test]
fn a_key_seen_directly_counts_in_the_same_bucket_as_behind_ai_auth() {
    // Without ai-auth the limiter reads the key itself; its bucket is the fingerprint, so a
    // per-key `match` written with the key still selects it.
    let cfg = format!(
        r#"{{"limits":[{{"name":"one-key","key":[{{"by":"api_key","match":"{WEB_KEY}"}}],"count":"total","per_minute":1000}}]}}"#
    );
    let mut sim = Sim::new(SimOptions::default());
    sim.add_plugin(spec("ai-token-ratelimit").config_json(&cfg))
        .expect("ai-token-ratelimit loads");
    let rec = sim.run(chat(WEB_KEY), answer(995)).unwrap();
    assert_eq!(
        rec.response.header("x-ratelimit-limit-tokens"),
        Some("1000")
    );
    let rec = sim.run(chat(WEB_KEY), answer(100)).unwrap();
    assert_eq!(rec.response.status, 429);
    let rec = sim.run(chat(BATCH_KEY), answer(100)).unwrap();
    assert_eq!(rec.response.status, 200, "another key is not limited");
    assert_eq!(rec.response.header("x-ratelimit-limit-tokens"), None);
}
