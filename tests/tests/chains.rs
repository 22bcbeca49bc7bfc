//! Plugins chained in one simulator, as a gateway runs them (each plugin's own tests are in
//! `plugins/<name>/tests/`):
//!
//! - ai-auth in front of ai-token-ratelimit, with the shipped example configurations
//!   (`plugins/ai-auth/example.json`, `plugins/ai-token-ratelimit/example.json`): ai-auth authenticates and
//!   removes the API key, so the limiter's `by: api_key` limit counts by the key fingerprint
//!   ai-auth publishes (`aigw.auth.key_id`). Each key has its own budget; without a key or a
//!   fingerprint the limit cannot apply, which is counted and logged once.
//! - ai-auth in front of ai-proxy: the model list is filtered per consumer.
//! - ai-statistics in front of ai-auth: consumers and refusals are counted.
//! - ai-statistics in front of ai-guard: the logged question and answer are the masked ones.

use aigw_tests::answer::{openai_body, openai_stream, usage};
use aigw_tests::{filter_state_json, load, logs_with, send_200, spec, sse, upstream_header, Chat};
use host_sim::{Request, Sim, SimOptions, UpstreamResponse};
use serde_json::Value;

/// team-web (allowed `gpt-4o*`) and batch-jobs (allowed `gpt-4o-mini`) in the example.
const WEB_KEY: &str = "sk-web-3f9a1c7e5b2d4068";
const BATCH_KEY: &str = "sk-batch-8c2e61d09a7f4b35";
/// `key-model-tokens` in the example: 200,000 tokens a minute per key and model.
const PER_MINUTE: u64 = 200_000;

fn example(name: &str) -> String {
    aigw_tests::read_example_config(name)
}

fn chain() -> Sim {
    let mut sim = Sim::new(SimOptions::default());
    sim.add_plugin(spec("ai-auth").config_json(example("ai-auth")))
        .expect("ai-auth loads");
    sim.add_plugin(spec("ai-token-ratelimit").config_json(example("ai-token-ratelimit")))
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
    sim.add_plugin(spec("ai-token-ratelimit").config_json(example("ai-token-ratelimit")))
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

// ---- ai-auth in front of ai-proxy ----------------------------------------------------------

const ALICE: &str = "sk-alice-0123456789";
const BOB: &str = "sk-bob-9876543210";
const CAROL: &str = "carol-secret-key";

/// alice: gpt-4* and o4-mini but not gpt-4-32k*; bob: everything; carol: all but claude-*.
const AUTH_MODELS: &str = r#"{"consumers": [
    {"name": "alice", "credential": "sk-alice-0123456789", "allowed_models": ["gpt-4*", "o4-mini"], "denied_models": ["gpt-4-32k*"]},
    {"name": "bob", "credential": "sk-bob-9876543210"},
    {"name": "carol", "credential": "carol-secret-key", "denied_models": ["claude-*"]}
]}"#;

/// ai-auth in front of ai-proxy: `GET /v1/models` lists only what the consumer may use.
#[test]
fn models_list_from_ai_proxy_is_filtered_per_consumer() {
    let mut sim = load("ai-auth", 1, AUTH_MODELS);
    let proxy = r#"{"providers":[{"id":"llm","type":"openai-compatible","cluster":"llm","host":"llm",
        "models":["gpt-4o","gpt-4-32k","o4-mini","claude-3-5-sonnet","llama-3"]}]}"#;
    sim.add_plugin(spec("ai-proxy").config_json(proxy))
        .expect("ai-proxy loads");
    let ids = |sim: &mut Sim, req: Request| -> Vec<String> {
        let rec = sim.run(req, aigw_tests::answer::ok()).unwrap();
        assert_eq!(rec.response.status, 200, "{}", rec.response.body_str());
        assert!(rec.upstream_request.is_none(), "answered by ai-proxy");
        rec.response.json()["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let models = || Request::get("/v1/models");
    // alice: gpt-4* and o4-mini, but not gpt-4-32k*.
    let got = ids(
        &mut sim,
        models().header("authorization", &format!("Bearer {ALICE}")),
    );
    assert_eq!(got, vec!["gpt-4o", "o4-mini"]);
    // bob: unrestricted. A header bob sends himself is replaced by ai-auth's.
    let got = ids(
        &mut sim,
        models()
            .header("x-api-key", BOB)
            .header("x-aigw-allowed-models", "llama-3"),
    );
    assert_eq!(
        got,
        vec![
            "gpt-4o",
            "gpt-4-32k",
            "o4-mini",
            "claude-3-5-sonnet",
            "llama-3"
        ]
    );
    // carol: everything but claude-*.
    let got = ids(&mut sim, models().header("x-api-key", CAROL));
    assert_eq!(got, vec!["gpt-4o", "gpt-4-32k", "o4-mini", "llama-3"]);
}

// ---- ai-statistics in front of ai-auth -----------------------------------------------------

/// The value of ai-statistics metric `name` for `model` and `consumer` with label `last`
/// (`token_type=…`, `status_class=…`), 0 when not recorded.
fn stat(sim: &Sim, name: &str, model: &str, consumer: &str, last: &str) -> i64 {
    sim.metric(&format!(
        "{name};route=default;cluster=upstream;model={model};consumer={consumer};{last}"
    ))
    .unwrap_or(0)
}

fn tokens(sim: &Sim, model: &str, consumer: &str, kind: &str) -> i64 {
    stat(
        sim,
        "gen_ai_client_token_usage",
        model,
        consumer,
        &format!("token_type={kind}"),
    )
}

fn requests(sim: &Sim, model: &str, consumer: &str, class: &str) -> i64 {
    stat(
        sim,
        "gen_ai_client_requests",
        model,
        consumer,
        &format!("status_class={class}"),
    )
}

#[test]
fn in_front_of_ai_auth_counts_consumers_and_refusals() {
    // ai-statistics first: it sees every request body (also those ai-auth refuses after
    // reading it) and reads x-mse-consumer at log time, after ai-auth set it.
    let mut sim = load("ai-statistics", 1, "{}");
    sim.add_plugin(spec("ai-auth").config_json(
        r#"{"consumers":[{"name":"team-web","credential":"sk-web-1","allowed_models":["gpt-4o"]}]}"#,
    ))
    .unwrap();
    let req = |key: Option<&str>, model: &str| {
        let r = Chat::openai(model)
            .user("hi")
            .request()
            // A spoofed identity: ai-auth replaces it, and that is what gets counted.
            .header("x-mse-consumer", "someone-else");
        match key {
            Some(k) => r.header("authorization", &format!("Bearer {k}")),
            None => r,
        }
    };
    let answer =
        || UpstreamResponse::json(200, openai_body("gpt-4o", "The answer is 4.", usage(10, 5)));
    let rec = sim.run(req(Some("sk-web-1"), "gpt-4o"), answer()).unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(tokens(&sim, "gpt-4o", "team-web", "input"), 10);
    assert_eq!(requests(&sim, "gpt-4o", "team-web", "2xx"), 1);
    // Refused after the body was read (model not allowed): 4xx for the consumer and model.
    let rec = sim
        .run(req(Some("sk-web-1"), "gpt-3.5-turbo"), answer())
        .unwrap();
    assert_eq!(rec.response.status, 403);
    assert_eq!(requests(&sim, "gpt-3.5-turbo", "team-web", "4xx"), 1);
    // Refused at request headers (no key): the spoofed consumer was removed by ai-auth.
    let rec = sim.run(req(None, "gpt-4o"), answer()).unwrap();
    assert_eq!(rec.response.status, 401);
    // The body never left the client, so the model is not known either.
    assert_eq!(requests(&sim, "unknown", "unknown", "4xx"), 1);
    assert!(sim
        .metrics()
        .keys()
        .all(|k| !k.contains("consumer=someone-else")));
}

// ---- ai-statistics in front of ai-guard: the logged question and answer are the masked ones

/// ai-guard masking e-mail addresses, restoring them in answers, blocking one word.
const GUARD: &str = r#"{"patterns":[{"builtin":"email","restore":true}],
  "keywords":{"lists":[{"name":"stop","words":["persimmon"]}]}}"#;
const SECRET: &str = "bob@corp.example";

/// ai-statistics logging question and answer, then ai-guard with `guard`.
fn chain_with_guard(guard: &str) -> Sim {
    let mut sim = load(
        "ai-statistics",
        1,
        r#"{"log_question":true,"log_answer":true,"max_log_bytes":4096}"#,
    );
    sim.add_plugin(spec("ai-guard").config_json(guard))
        .expect("ai-guard loads");
    sim
}

fn ask(question: &str, stream: bool) -> Request {
    Chat::openai("gpt-4o")
        .stream(stream)
        .system("be brief")
        .user(question)
        .request()
}

/// Asks `question` (not streamed); the upstream answers `answer` whole.
fn ask_whole(sim: &mut Sim, question: &str, answer: &str) -> host_sim::StreamRecord {
    let resp = UpstreamResponse::json(200, answer_body(answer));
    sim.run(ask(question, false), resp).expect("exchange")
}

/// A whole OpenAI answer saying `content`.
fn answer_body(content: &str) -> String {
    openai_body("gpt-4o", content, usage(5, 4))
}

/// An OpenAI stream whose content deltas are `pieces`.
fn stream_of(pieces: &[&str]) -> String {
    openai_stream("gpt-4o", pieces, "stop", None)
}

/// ai-statistics's record, checked to hold no trace of [`SECRET`] (nor its info log line).
fn masked_log(sim: &Sim, rec: &host_sim::StreamRecord) -> Value {
    let raw = rec.filter_state.get("aigw.log").expect("aigw.log property");
    let text = String::from_utf8_lossy(raw);
    assert!(!text.contains(SECRET), "{text}");
    assert!(
        logs_with(sim, SECRET).is_empty(),
        "a log line holds the secret"
    );
    filter_state_json(rec, "aigw.log")
}

#[test]
fn with_ai_guard_a_whole_answer_is_logged_masked() {
    let mut sim = chain_with_guard(GUARD);
    let rec = ask_whole(
        &mut sim,
        &format!("Mail me at {SECRET} please"),
        "I will write to [EMAIL_1] today.",
    );
    // The upstream got the placeholder, the client its own address back.
    let up = rec.upstream_request.as_ref().unwrap().json();
    assert_eq!(up["messages"][1]["content"], "Mail me at [EMAIL_1] please");
    assert_eq!(
        rec.response.json()["choices"][0]["message"]["content"],
        format!("I will write to {SECRET} today.")
    );
    let log = masked_log(&sim, &rec);
    assert_eq!(log["question"], "Mail me at [EMAIL_1] please");
    assert_eq!(log["answer"], "I will write to [EMAIL_1] today.");
    assert!(log.get("question_truncated").is_none() && log.get("answer_truncated").is_none());
    assert_eq!(log["output_tokens"], 4);

    // Delivered in small pieces: the same.
    let rec = sim
        .run(
            ask(&format!("Mail me at {SECRET} please"), false),
            UpstreamResponse::json(200, answer_body("I will write to [EMAIL_1] today.")).chunked(7),
        )
        .unwrap();
    assert!(rec.response.body_str().contains(SECRET));
    let log = masked_log(&sim, &rec);
    assert_eq!(log["answer"], "I will write to [EMAIL_1] today.");

    // Nothing masked: ai-guard publishes nothing and the log is ai-statistics's own.
    let rec = ask_whole(&mut sim, "What is 2+2?", "4");
    assert!(!rec.filter_state.contains_key("aigw.guard.question"));
    assert!(!rec.filter_state.contains_key("aigw.guard.answer"));
    let log = filter_state_json(&rec, "aigw.log");
    assert_eq!(
        (log["question"].as_str(), log["answer"].as_str()),
        (Some("What is 2+2?"), Some("4"))
    );
}

#[test]
fn with_ai_guard_a_streamed_answer_is_logged_masked_at_every_split() {
    let mut sim = chain_with_guard(GUARD);
    let body = stream_of(&["Sure, writing to [EMA", "IL_1", "] now", ", ok?"]);
    for k in 1..=body.len() {
        let rec = sim
            .run(
                ask(&format!("I am {SECRET}"), true),
                UpstreamResponse::sse(body.clone()).chunked(k),
            )
            .unwrap();
        assert_eq!(
            sse::openai_text(&rec.response.body),
            format!("Sure, writing to {SECRET} now, ok?"),
            "chunk size {k}"
        );
        let log = masked_log(&sim, &rec);
        assert_eq!(log["question"], "I am [EMAIL_1]", "chunk size {k}");
        assert_eq!(
            log["answer"], "Sure, writing to [EMAIL_1] now, ok?",
            "chunk size {k}"
        );
        assert!(log.get("answer_truncated").is_none(), "chunk size {k}");
        assert_eq!(log["finish_reason"], "stop");
        assert_eq!(log["stream"], true);
    }
}

#[test]
fn with_ai_guard_a_stream_cut_short_logs_only_masked_text() {
    let mut sim = chain_with_guard(GUARD);
    let piece = "Reply to [EMAIL_1] with the report. ";
    let pieces = vec![piece; 80];
    let body = stream_of(&pieces);
    let sid = sim.begin(ask(&format!("I am {SECRET}"), true)).unwrap();
    send_200(&mut sim, sid, "text/event-stream");
    // About three quarters of the stream, then the client goes away.
    let cut = body.len() * 3 / 4;
    for c in body.as_bytes()[..cut].chunks(50) {
        sim.send_response_body(sid, c, false).unwrap();
    }
    let seen = sim.take_client_body(sid);
    assert!(
        String::from_utf8_lossy(&seen).contains(SECRET),
        "the client got its address"
    );
    sim.client_abort(sid);
    let rec = sim.take_record(sid).unwrap();
    let log = masked_log(&sim, &rec);
    let answer = log["answer"].as_str().unwrap();
    // What was published before the abort: a checkpoint of at least 1 KiB of masked text.
    assert!(answer.len() >= 1024, "{answer}");
    assert!(piece.repeat(80).starts_with(answer), "{answer}");
    assert_eq!(log["answer_truncated"], true);

    // Cut before the first checkpoint: an empty answer rather than the restored one.
    let sid = sim.begin(ask(&format!("I am {SECRET}"), true)).unwrap();
    send_200(&mut sim, sid, "text/event-stream");
    sim.send_response_body(sid, &body.as_bytes()[..600], false)
        .unwrap();
    sim.client_abort(sid);
    let rec = sim.take_record(sid).unwrap();
    let log = masked_log(&sim, &rec);
    assert_eq!(log["answer"], "");
    assert_eq!(log["answer_truncated"], true);
}

#[test]
fn with_ai_guard_a_blocked_question_is_withheld() {
    let mut sim = chain_with_guard(GUARD);
    let rec = ask_whole(&mut sim, &format!("persimmon for {SECRET}"), "never sent");
    assert_eq!(rec.response.status, 400);
    let log = masked_log(&sim, &rec);
    assert_eq!(log["question_withheld"], "blocked");
    assert!(log.get("question").is_none(), "{log}");
    assert_eq!(log["status"], 400);
}
