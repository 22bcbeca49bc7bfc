//! Modules written by others run in host-sim: Higress plugins built with the Go toolchain
//! (ABI `proxy_abi_version_0_2_100`), shipped in the PyPI package `gpustack-higress-plugins`
//! 0.5.1 and downloaded on first use (see `aigw_tests::gpustack_module`). Each test feeds a
//! request and an upstream answer, then checks what the plugin's documentation promises:
//! what reached the upstream, what the client got, the metrics and the access-log attributes.

use aigw_tests::{gpustack_module, logs_with};
use host_sim::{PluginSpec, Request, Sim, SimOptions, StreamRecord, UpstreamResponse};
use serde_json::{json, Value};
use std::time::Duration;

/// A gateway with one Higress plugin from the wheel, configured with `config`.
fn gateway(name: &str, version: &str, config: &str) -> Sim {
    let path = gpustack_module(name, version);
    let spec = PluginSpec::from_file(&path)
        .unwrap_or_else(|e| panic!("cannot load {}: {e:#}", path.display()))
        .name(name)
        .config_json(config);
    let mut sim = Sim::new(SimOptions::default());
    if let Err(e) = sim.add_plugin(spec) {
        panic!(
            "{name} {version} rejected {config}: {e:#}\n{:#?}",
            sim.logs()
        );
    }
    sim.clear_logs();
    sim
}

fn chat(body: Value) -> Request {
    Request::post("/v1/chat/completions", body.to_string())
}

/// An OpenAI chat completion answer.
fn completion(model: &str, content: &str, usage: Option<(u64, u64)>) -> UpstreamResponse {
    let mut body = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    });
    if let Some((p, c)) = usage {
        body["usage"] = json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c});
    }
    UpstreamResponse::json(200, body.to_string())
}

/// The content of the first choice of an OpenAI chat answer (message or delta).
fn first_content(v: &Value) -> &str {
    let c = &v["choices"][0];
    c["message"]["content"]
        .as_str()
        .or_else(|| c["delta"]["content"].as_str())
        .unwrap_or_else(|| panic!("no content in {v}"))
}

/// Higress's access-log attributes (`ai_log` filter state): a JSON object written as an
/// escaped JSON string.
fn ai_log(rec: &StreamRecord) -> Value {
    let raw = rec
        .filter_state
        .get("ai_log")
        .unwrap_or_else(|| panic!("no ai_log in {:?}", rec.filter_state.keys()));
    let raw = std::str::from_utf8(raw).expect("ai_log is text");
    let unescaped: String = serde_json::from_str(&format!("\"{raw}\"")).expect("escaped string");
    serde_json::from_str(&unescaped).expect("ai_log is JSON")
}

// ---- ai-data-masking 2.0.3 ----

const MASKING: &str = r#"{
  "deny_openai": true,
  "system_deny": false,
  "deny_code": 403,
  "deny_message": "blocked by policy",
  "deny_words": ["forbiddenword"],
  "replace_roles": [
    {"regex": "%{MOBILE}", "type": "replace", "value": "****"},
    {"regex": "sk-[0-9a-zA-Z]*", "type": "hash", "restore": true}
  ]
}"#;

fn masking() -> Sim {
    gateway("ai-data-masking", "2.0.3", MASKING)
}

fn user(content: &str) -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]})
}

#[test]
fn data_masking_blocks_a_deny_word_with_its_configured_openai_reply() {
    let mut sim = masking();
    let rec = sim
        .run(
            chat(user("please say forbiddenword now")),
            completion("gpt-4o", "never", None),
        )
        .unwrap();
    // Blocked in the request phase: nothing reached the upstream.
    assert!(rec.upstream_request.is_none(), "{:?}", rec.upstream_request);
    assert_eq!(
        rec.local_reply.as_ref().map(|l| (l.status, l.filter)),
        Some((403, Some(0)))
    );
    // deny_code and deny_message, as an OpenAI chat answer from the assistant.
    assert_eq!(rec.response.status, 403);
    assert_eq!(
        rec.response.header("content-type"),
        Some("application/json")
    );
    let body = rec.response.json();
    assert_eq!(first_content(&body), "blocked by policy");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        logs_with(&sim, "custom deny word"),
        vec!["[ai-data-masking] custom deny word forbiddenword matched from please say forbiddenword now"]
    );

    // A streaming request is answered in the client's protocol: one SSE chunk.
    let mut streaming = user("forbiddenword");
    streaming["stream"] = json!(true);
    let rec = sim
        .run(chat(streaming), completion("gpt-4o", "never", None))
        .unwrap();
    assert!(rec.upstream_request.is_none());
    assert_eq!(rec.response.status, 403);
    assert_eq!(
        rec.response.header("content-type"),
        Some("text/event-stream;charset=UTF-8")
    );
    let text = rec.response.body_str();
    let event = text
        .strip_prefix("data: ")
        .map(str::trim_end)
        .unwrap_or_else(|| panic!("not an SSE event: {text:?}"));
    assert_eq!(
        first_content(&serde_json::from_str(event).unwrap()),
        "blocked by policy"
    );
}

#[test]
fn data_masking_masks_a_phone_number_on_its_way_upstream() {
    let mut sim = masking();
    // The body arrives in 9-byte pieces: the plugin holds the headers (Higress StopIteration)
    // and reads the whole body before anything goes upstream.
    let req = chat(user("call me at 13800138000 please")).chunked(9);
    let rec = sim.run(req, completion("gpt-4o", "sure", None)).unwrap();
    let up = rec.upstream_request.expect("the request went upstream");
    assert!(up.complete);
    let sent = up.json();
    assert_eq!(sent["messages"][0]["content"], "call me at **** please");
    assert_eq!(sent["model"], "gpt-4o");
    assert!(!up.body_str().contains("13800138000"), "{}", up.body_str());
    // One piece: nothing passed the plugin before it had the whole body.
    assert_eq!(up.chunks.len(), 1);
    // The answer reaches the client unchanged in meaning.
    assert_eq!(rec.response.status, 200);
    assert_eq!(first_content(&rec.response.json()), "sure");
}

#[test]
fn data_masking_hashes_a_secret_and_restores_it_in_the_answer() {
    let mut sim = masking();
    // SHA-256 of "sk-12345": what the model sees instead of the key.
    let hashed = "c11e7177eb60c80cf983ddf8ca98f2dc1272d4c612204ce9bedd2460b18939cc";
    let answer = format!("I will not share {hashed} with anyone");
    let rec = sim
        .run(
            chat(user("my key is sk-12345")),
            completion("gpt-4o", &answer, None),
        )
        .unwrap();
    let up = rec.upstream_request.expect("upstream");
    assert_eq!(
        up.json()["messages"][0]["content"],
        format!("my key is {hashed}")
    );
    // On the way back the hash becomes the original secret again.
    assert_eq!(rec.response.status, 200);
    assert_eq!(
        first_content(&rec.response.json()),
        "I will not share sk-12345 with anyone"
    );
}

#[test]
fn data_masking_blocks_a_deny_word_in_the_answer() {
    let mut sim = masking();
    let rec = sim
        .run(
            chat(user("hello")),
            completion("gpt-4o", "the forbiddenword is here", None),
        )
        .unwrap();
    assert!(rec.upstream_request.is_some());
    // The upstream's status stays; the answer is replaced by deny_message.
    assert_eq!(rec.response.status, 200);
    let body = rec.response.json();
    assert_eq!(first_content(&body), "blocked by policy");
    assert!(!rec.response.body_str().contains("forbiddenword"));
}

// ---- ai-statistics 2.0.0 ----

const STATISTICS: &str = r#"{"attributes": [
  {"key": "question", "value_source": "request_body", "value": "messages.@reverse.0.content", "apply_to_log": true},
  {"key": "answer", "value_source": "response_streaming_body", "value": "choices.0.delta.content", "rule": "append", "apply_to_log": true},
  {"key": "answer", "value_source": "response_body", "value": "choices.0.message.content", "apply_to_log": true}
]}"#;

/// Higress's metric name: route, upstream cluster, model and consumer, then the metric.
fn stat(route: &str, model: &str, consumer: &str, metric: &str) -> String {
    format!("route.{route}.upstream.upstream.model.{model}.consumer.{consumer}.metric.{metric}")
}

#[test]
fn ai_statistics_counts_tokens_of_chat_completions() {
    let mut sim = gateway("ai-statistics", "2.0.0", STATISTICS);
    let req = || {
        chat(user("hello there"))
            .route("chat")
            .header("x-mse-consumer", "alice")
    };
    let rec = sim
        .run(req(), completion("gpt-4o-2024-08-06", "hi!", Some((11, 7))))
        .unwrap();
    assert_eq!(rec.response.status, 200);
    let m = |sim: &Sim, name: &str| sim.metric(&stat("chat", "gpt-4o-2024-08-06", "alice", name));
    assert_eq!(m(&sim, "input_token"), Some(11));
    assert_eq!(m(&sim, "output_token"), Some(7));
    assert_eq!(m(&sim, "total_token"), Some(18));
    assert_eq!(m(&sim, "llm_duration_count"), Some(1));
    // Not a streaming request: no stream counters.
    assert_eq!(m(&sim, "llm_stream_duration_count"), None);

    // The access-log attributes: tokens, the model the upstream named, question and answer.
    let log = ai_log(&rec);
    assert_eq!(log["input_token"], 11);
    assert_eq!(log["output_token"], 7);
    assert_eq!(log["total_token"], 18);
    assert_eq!(log["model"], "gpt-4o-2024-08-06");
    assert_eq!(log["question"], "hello there");
    assert_eq!(log["answer"], "hi!");
    assert_eq!(log["response_type"], "normal");

    // Counters are process-wide: a second request adds up.
    sim.run(
        req(),
        completion("gpt-4o-2024-08-06", "again", Some((4, 3))),
    )
    .unwrap();
    assert_eq!(m(&sim, "input_token"), Some(15));
    assert_eq!(m(&sim, "output_token"), Some(10));
    assert_eq!(m(&sim, "llm_duration_count"), Some(2));

    // Higress's `plugin_vm_memory` property: the plugin logs what the host reported, the VM's
    // linear memory in whole wasm pages.
    let mem = logs_with(&sim, "Current VM memory usage: ");
    assert_eq!(mem.len(), 2, "{mem:?}");
    let bytes: usize = mem[0]
        .split("usage: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", mem[0]));
    // Whole 64 KiB pages.
    assert!(bytes > 0 && bytes.trailing_zeros() >= 16, "{bytes}");
    assert!(bytes <= sim.vm_memory(0, 0).unwrap_or(0));
}

#[test]
fn ai_statistics_counts_tokens_and_latency_of_a_stream() {
    let mut sim = gateway("ai-statistics", "2.0.0", STATISTICS);
    let body = json!({
        "model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "count to two"}],
    });
    let chunk = |delta: Value| {
        let c = json!({"id": "c2", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                       "choices": [{"index": 0, "delta": delta}]});
        format!("data: {c}\n\n")
    };
    // OpenAI with stream_options.include_usage: usage comes in a last chunk with no choices.
    let usage = json!({"id": "c2", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                       "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}});
    let events = [
        chunk(json!({"role": "assistant", "content": "one"})),
        chunk(json!({"content": " two"})),
        format!("data: {usage}\n\n"),
        "data: [DONE]\n\n".to_string(),
    ];
    let sid = sim.begin(chat(body).route("chat")).unwrap();
    // Simulated clock: first byte 120 ms after the request, then one event every 10 ms.
    sim.advance(Duration::from_millis(120));
    let sse = [("content-type".to_string(), "text/event-stream".to_string())];
    sim.send_response_headers(sid, 200, &sse, false).unwrap();
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            sim.advance(Duration::from_millis(10));
        }
        sim.send_response_body(sid, e.as_bytes(), i + 1 == events.len())
            .unwrap();
    }
    let rec = sim.take_record(sid).unwrap();
    assert!(rec.finished && rec.response.complete);
    // The stream reaches the client untouched.
    assert_eq!(rec.response.body_str(), events.concat());

    let m = |name: &str| sim.metric(&stat("chat", "gpt-4o-mini", "none", name));
    assert_eq!(m("input_token"), Some(5));
    assert_eq!(m("output_token"), Some(2));
    assert_eq!(m("total_token"), Some(7));
    assert_eq!(m("llm_stream_duration_count"), Some(1));
    assert_eq!(m("llm_duration_count"), Some(1));
    assert_eq!(m("llm_first_token_duration"), Some(120));
    assert_eq!(m("llm_service_duration"), Some(150));

    let log = ai_log(&rec);
    assert_eq!(log["response_type"], "stream");
    assert_eq!(log["question"], "count to two");
    assert_eq!(log["answer"], "one two");
    assert_eq!(log["llm_first_token_duration"], 120);
    assert_eq!(log["llm_service_duration"], 150);
    assert_eq!(log["output_token"], 2);
}

#[test]
fn ai_statistics_raises_the_request_buffer_limit_as_on_higress() {
    // The plugin buffers the whole request body and asks Higress for a 100 MiB decoder buffer
    // (property `set_decoder_buffer_limit`); the gateway's own limit is 1 MiB.
    let mut sim = gateway("ai-statistics", "2.0.0", "{}");
    let content = "x".repeat(1_500_000);
    let req = chat(user(&content)).chunked(64 * 1024);
    let size = req.body.len();
    let rec = sim
        .run(req, completion("gpt-4o", "ok", Some((375_000, 1))))
        .unwrap();
    assert_eq!(rec.response.status, 200, "{:?}", rec.local_reply);
    let up = rec.upstream_request.expect("upstream");
    assert_eq!(up.body.len(), size);
    assert!(up.complete);
    assert_eq!(
        sim.metric(&stat("default", "gpt-4o", "none", "input_token")),
        Some(375_000)
    );
}

// ---- transformer 2.0.0 ----

#[test]
fn transformer_maps_a_body_field_to_a_header_before_the_headers_go_upstream() {
    let config = r#"{
      "reqRules": [
        {"operate": "remove", "headers": [{"key": "x-remove"}]},
        {"operate": "map", "mapSource": "body", "headers": [{"fromKey": "userId", "toKey": "x-user-id"}]},
        {"operate": "rename", "body": [{"oldKey": "a2", "newKey": "a2-new"}]}
      ],
      "respRules": [{"operate": "add", "headers": [{"key": "x-resp-added", "value": "yes"}]}]
    }"#;
    let mut sim = gateway("transformer", "2.0.0", config);
    let req = Request::post("/post", r#"{"userId":12,"a2":"t2"}"#).header("x-remove", "gone");
    let rec = sim.run(req, UpstreamResponse::json(200, "{}")).unwrap();
    let up = rec.upstream_request.expect("upstream");
    // The header was set from the body in the body callback, while Higress still held the
    // request headers (StopIteration), so the upstream got it.
    assert_eq!(up.header("x-user-id"), Some("12"));
    assert_eq!(up.header("x-remove"), None);
    assert_eq!(up.json(), json!({"userId": 12, "a2-new": "t2"}));
    assert_eq!(rec.response.header("x-resp-added"), Some("yes"));
}
