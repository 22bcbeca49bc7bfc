//! The ai-guard plugin (plugins/ai-guard) run in host-sim: every action on requests,
//! non-streamed answers and streamed answers split at every byte boundary, Chinese and English
//! word lists, masks restored in answers, parse errors, limits, a 100 MB stream in flat memory,
//! and the same verdicts as Higress's Go-built ai-data-masking 2.0.3 where features overlap.

use aigw_test_kit::answer::{self, usage};
use aigw_test_kit::{
    at_every_split, error_message, gpustack_module, load, logs_with, send_200, spec, sse,
};
use host_sim::mock_llm::{self, MockOptions};
use host_sim::{
    CallReply, Cluster, LogLevel, PluginSpec, Request, Sim, SimOptions, StreamRecord,
    UpstreamResponse,
};
use serde_json::{json, Value};
use std::time::Duration;

const CONFIG: &str = r#"{
  "keywords": {"lists": [
    {"name": "banned", "words": ["persimmon", "敏感词"], "ignore_separators": true},
    {"name": "rude", "action": "mask", "value": "***", "words": ["darn", "坏蛋"]},
    {"name": "watch", "action": "log", "words": ["competitor"]}
  ]},
  "patterns": [
    {"builtin": "phone_cn", "restore": true},
    {"builtin": "email", "restore": true},
    {"builtin": "openai_key", "action": "block"},
    {"name": "ticket", "regex": "TCK-[0-9]{6}", "type": "hash"}
  ],
  "mask": {"hash_salt": "test-salt"}
}"#;

/// ai-guard with `config`, its load logs cleared.
fn sim_with(config: &str) -> Sim {
    let sim = load("ai-guard", 1, config);
    sim.clear_logs();
    sim
}

fn guard() -> Sim {
    sim_with(CONFIG)
}

fn user(content: &str) -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": content}]})
}

/// `body` asking for a streamed answer.
fn streaming(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body
}

fn chat(body: &Value) -> Request {
    Request::post("/v1/chat/completions", body.to_string())
}

fn completion(content: &str) -> UpstreamResponse {
    answer::openai("gpt-4o", content, usage(5, 3))
}

/// No body byte reached the upstream (the headers may have: the plugin holds only the body,
/// and the local reply resets the upstream request).
fn nothing_upstream(rec: &StreamRecord) -> bool {
    rec.upstream_request
        .as_ref()
        .is_none_or(|u| u.body.is_empty() && !u.complete)
}

fn hits(sim: &Sim, rule: &str, action: &str, direction: &str) -> i64 {
    sim.metric(&format!(
        "aigw_guard_hits_total;rule={rule};action={action};direction={direction}"
    ))
    .unwrap_or(0)
}

fn sent_content(rec: &StreamRecord) -> String {
    let up = rec
        .upstream_request
        .as_ref()
        .expect("the request went upstream");
    assert!(up.complete);
    up.json()["messages"][1]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no content in {}", up.body_str()))
        .to_string()
}

/// An OpenAI stream whose content deltas are `pieces`.
fn openai_stream(pieces: &[&str]) -> String {
    answer::openai_stream("gpt-4o", pieces, "stop", Some(usage(5, 9)))
}

/// An Anthropic messages stream whose text deltas are `pieces`.
fn anthropic_stream(pieces: &[&str]) -> String {
    let usage = json!({"input_tokens": 4, "output_tokens": 1});
    answer::anthropic_stream("claude", pieces, usage, "end_turn", 9)
}

/// The events of an SSE body as (event name, data parsed as JSON, or the raw data string).
fn events(body: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(body).expect("the client got UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "ends with a complete event: {text:?}"
    );
    sse::events(body)
        .into_iter()
        .map(|e| (e.kind().to_string(), e.json()))
        .collect()
}

/// The answer text a client would show.
fn streamed_text(body: &[u8]) -> String {
    let mut t = String::new();
    for (_, v) in events(body) {
        for p in ["/choices/0/delta/content", "/delta/text"] {
            if let Some(s) = v.pointer(p).and_then(Value::as_str) {
                t.push_str(s);
            }
        }
    }
    t
}

// ---- configuration ----

#[test]
fn bad_config_is_one_error_line_naming_the_field() {
    let mut sim = Sim::new(SimOptions::default());
    let err = sim
        .add_plugin(spec("ai-guard").config_json(r#"{"patterns":[{"builtin":"phone"}]}"#))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "ai-guard: invalid config: patterns[0].builtin: unknown built-in pattern \"phone\""
        ),
        "{err}"
    );
    let errors: Vec<_> = sim
        .logs()
        .into_iter()
        .filter(|l| l.level >= LogLevel::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");

    let err =
        Sim::new(SimOptions::default())
            .add_plugin(spec("ai-guard").config_json(
                r#"{"keywords":{"lists":[{"name":"a","words":["x"],"acton":"mask"}]}}"#,
            ))
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("invalid config: keywords.lists[0].acton: unknown field"),
        "{err}"
    );
}

#[test]
fn example_config_masks_the_demo_request_and_restores_the_answer() {
    let cfg = aigw_test_kit::read_example_config("ai-guard");
    let mut sim = sim_with(&cfg);
    let body = json!({"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to alice@example.com, call 13812345678"}],"max_tokens":64});
    let rec = sim
        .run(
            chat(&body),
            completion("Hello [EMAIL_1], I will call [PHONE_1]!"),
        )
        .unwrap();
    assert_eq!(sent_content(&rec), "Say hello to [EMAIL_1], call [PHONE_1]");
    assert_eq!(
        rec.response.json()["choices"][0]["message"]["content"],
        "Hello alice@example.com, I will call 13812345678!"
    );
    // Deny words in both languages, and an API key, are blocked.
    for text in [
        "how to make a bomb",
        "教我制作炸弹",
        "my key sk-proj-abcdefghijklmnopqrstuvwxyz0123",
    ] {
        let rec = sim.run(chat(&user(text)), completion("never")).unwrap();
        assert!(nothing_upstream(&rec), "{text}");
        assert_eq!(rec.response.status, 400, "{text}");
        assert_eq!(
            rec.response.json()["error"]["code"],
            "content_filter",
            "{text}"
        );
    }
}

// ---- requests ----

#[test]
fn request_block_in_the_clients_protocol_at_every_chunk_size() {
    let mut sim = guard();
    let body = user("tell me about p.e.r.s.i.m.m.o.n trees").to_string();
    for n in 1..=body.len() {
        let rec = sim
            .run(
                Request::post("/v1/chat/completions", body.clone()).chunked(n),
                completion("never"),
            )
            .unwrap();
        assert!(
            nothing_upstream(&rec),
            "chunk size {n}: nothing reaches the upstream"
        );
        assert_eq!(rec.response.status, 400);
        assert_eq!(
            rec.response.header("content-type"),
            Some("application/json")
        );
        assert_eq!(
            rec.response.json(),
            json!({"error": {"message": "The content was blocked by the content policy.", "type": "invalid_request_error", "param": null, "code": "content_filter"}})
        );
    }
    assert_eq!(hits(&sim, "banned", "block", "request"), body.len() as i64);
    assert_eq!(
        logs_with(&sim, "blocked the request (rule banned)").len(),
        body.len()
    );
    // No log line carries the matched text.
    assert!(!sim
        .logs()
        .iter()
        .any(|l| l.message.contains("persimmon") || l.message.contains("s.i.m")));

    // Chinese, full-width and on the Anthropic route: the Anthropic error shape.
    let body = json!({"model":"claude","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"这是敏感词吗"}]}]});
    let rec = sim
        .run(
            Request::post("/v1/messages", body.to_string()),
            completion("never"),
        )
        .unwrap();
    assert!(nothing_upstream(&rec));
    assert_eq!(rec.response.status, 400);
    assert_eq!(
        rec.response.json(),
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "The content was blocked by the content policy."}})
    );
    let rec = sim
        .run(chat(&user("ＰＥＲＳＩＭＭＯＮ")), completion("never"))
        .unwrap();
    assert_eq!(rec.response.status, 400);
}

#[test]
fn request_mask_hash_and_log() {
    let mut sim = guard();
    let body = user(
        "darn, 坏蛋! reach me at 13812345678 or bob@corp.example, ticket TCK-123456, competitor X",
    );
    let rec = sim.run(chat(&body).chunked(7), completion("ok")).unwrap();
    let sent = sent_content(&rec);
    let hash = sent
        .split("ticket [TICKET:")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("no hash mask in {sent}"));
    assert_eq!(hash.len(), 8);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        sent,
        format!(
            "***, ***! reach me at [PHONE_1] or [EMAIL_1], ticket [TICKET:{hash}], competitor X"
        )
    );
    // The system message and the rest of the body are untouched; content-length was dropped.
    let up = rec.upstream_request.as_ref().unwrap();
    assert_eq!(up.json()["messages"][0]["content"], "be brief");
    assert_eq!(up.json()["model"], "gpt-4o");
    assert!(up.header("content-length").is_none());
    // The hash is stable across requests (same salt).
    let rec = sim
        .run(chat(&user("TCK-123456")), completion("ok"))
        .unwrap();
    assert_eq!(sent_content(&rec), format!("[TICKET:{hash}]"));
    assert_eq!(hits(&sim, "watch", "log", "request"), 1);
    assert_eq!(hits(&sim, "rude", "mask", "request"), 2);
    assert_eq!(hits(&sim, "phone_cn", "mask", "request"), 1);
    assert_eq!(hits(&sim, "ticket", "mask", "request"), 2);
    assert_eq!(
        logs_with(&sim, "rule watch matched 1 time(s) in the request").len(),
        1
    );
}

#[test]
fn request_scope_roles_paths_and_raw_text() {
    let cfg = r#"{
      "scope": {"request": {"roles": ["user"], "json_paths": ["$.metadata.note"], "raw": true}},
      "keywords": {"lists": [{"name": "banned", "words": ["persimmon"]}]},
      "block": {"raw_message": "no!", "content_type": "text/plain"}
    }"#;
    let mut sim = sim_with(cfg);
    // A system message is not in the roles: passes.
    let body = json!({"messages":[{"role":"system","content":"persimmon"},{"role":"user","content":"hi"}]});
    let rec = sim.run(chat(&body), completion("ok")).unwrap();
    assert!(rec.upstream_request.is_some_and(|u| u.complete));
    // A configured path is.
    let body = json!({"messages":[{"role":"user","content":"hi"}],"metadata":{"note":"persimmon"}});
    let rec = sim.run(chat(&body), completion("ok")).unwrap();
    assert_eq!(rec.response.status, 400);
    // Plain text bodies are scanned raw and answered with the raw message.
    let mut req = Request::post("/v1/completions", "a persimmon");
    req.headers = vec![("content-type".into(), "text/plain".into())];
    let rec = sim.run(req, completion("ok")).unwrap();
    assert!(nothing_upstream(&rec));
    assert_eq!(rec.response.status, 400);
    assert_eq!(rec.response.header("content-type"), Some("text/plain"));
    assert_eq!(rec.response.body_str(), "no!");
    // Binary uploads are never scanned, even with `raw` on.
    let mut req = Request::post(
        "/v1/audio/transcriptions",
        b"--b\r\npersimmon\xff\r\n--b--".to_vec(),
    );
    req.headers = vec![(
        "content-type".into(),
        "multipart/form-data; boundary=b".into(),
    )];
    let rec = sim.run(req, completion("ok")).unwrap();
    assert!(rec
        .upstream_request
        .is_some_and(|u| u.complete && u.body_str().contains("persimmon")));
    // JSON sent as form data (curl's default) is still read as JSON.
    let mut req = Request::post(
        "/v1/chat/completions",
        json!({"messages":[{"role":"user","content":"persimmon"}]}).to_string(),
    );
    req.headers = vec![(
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    )];
    let rec = sim.run(req, completion("ok")).unwrap();
    assert_eq!(rec.response.json()["error"]["code"], "content_filter");
}

#[test]
fn higress_style_canned_answer() {
    let mut sim = sim_with(
        r#"{"deny_words":["persimmon"],"deny_code":200,"deny_message":"I cannot talk about that."}"#,
    );
    let rec = sim
        .run(chat(&user("persimmon?")), completion("never"))
        .unwrap();
    assert!(nothing_upstream(&rec));
    assert_eq!(rec.response.status, 200);
    let v = rec.response.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "I cannot talk about that."
    );
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    // A streaming request gets a stream.
    let mut body = user("persimmon?");
    body["stream"] = json!(true);
    let rec = sim.run(chat(&body), completion("never")).unwrap();
    assert_eq!(
        rec.response.header("content-type"),
        Some("text/event-stream")
    );
    let evs = events(&rec.response.body);
    assert_eq!(evs[0].1["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(
        streamed_text(&rec.response.body),
        "I cannot talk about that."
    );
    assert_eq!(evs.last().unwrap().1, Value::String("[DONE]".into()));
}

#[test]
fn unparsable_requests_get_a_clear_400_or_pass() {
    let mut sim = guard();
    let rec = sim
        .run(
            Request::post("/v1/chat/completions", "{\"messages\": [oops"),
            completion("ok"),
        )
        .unwrap();
    assert!(nothing_upstream(&rec));
    assert_eq!(rec.response.status, 400);
    let v = rec.response.json();
    assert_eq!(v["error"]["code"], "invalid_request_body");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{v}"
    );
    let rec = sim
        .run(Request::post("/v1/messages", "{\"x\":"), completion("ok"))
        .unwrap();
    assert_eq!(rec.response.json()["type"], "error");
    // Not UTF-8.
    let rec = sim
        .run(
            Request::post(
                "/v1/chat/completions",
                b"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}".to_vec(),
            ),
            completion("ok"),
        )
        .unwrap();
    assert_eq!(rec.response.status, 400);
    assert!(error_message(&rec).contains("UTF-8"));
    assert!(!sim.vm_failed(0, 0));

    let mut sim = sim_with(
        r#"{"keywords":{"lists":[{"name":"b","words":["x"]}]},"body":{"on_parse_error":"pass"}}"#,
    );
    let rec = sim
        .run(
            Request::post("/v1/chat/completions", "not json {"),
            completion("ok"),
        )
        .unwrap();
    assert_eq!(rec.upstream_request.unwrap().body_str(), "not json {");
    assert_eq!(
        sim.metric("aigw_guard_unchecked_total;direction=request;reason=parse_error"),
        Some(1)
    );
}

#[test]
fn request_body_limit_policy() {
    let cfg = |policy: &str| {
        format!(
            r#"{{"keywords":{{"lists":[{{"name":"b","words":["persimmon"]}}]}},"body":{{"max_bytes":100,"over_limit":"{policy}"}}}}"#
        )
    };
    let big = user(&format!("persimmon {}", "x".repeat(200)));
    let mut sim = sim_with(&cfg("pass"));
    let rec = sim.run(chat(&big).chunked(30), completion("ok")).unwrap();
    let up = rec.upstream_request.expect("forwarded unchecked");
    assert_eq!(up.body_str(), big.to_string());
    assert_eq!(
        sim.metric("aigw_guard_unchecked_total;direction=request;reason=over_limit"),
        Some(1)
    );
    let mut sim = sim_with(&cfg("block"));
    let rec = sim.run(chat(&big).chunked(30), completion("ok")).unwrap();
    assert!(nothing_upstream(&rec));
    assert_eq!(rec.response.json()["error"]["code"], "content_filter");
}

// ---- non-streamed answers ----

#[test]
fn answer_mask_restore_and_block() {
    let mut sim = guard();
    // The model repeats the placeholders it saw; the client sees its own values again, while
    // new personal data in the answer is masked and a rude word replaced.
    let rec = sim
        .run(
            chat(&user("I am bob@corp.example, 13812345678")),
            completion("Noted [EMAIL_1] and [PHONE_1]; also call 13900001111, darn"),
        )
        .unwrap();
    assert_eq!(sent_content(&rec), "I am [EMAIL_1], [PHONE_1]");
    let v = rec.response.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Noted bob@corp.example and 13812345678; also call [PHONE], ***"
    );
    assert_eq!(v["usage"]["total_tokens"], 8);
    assert!(rec.response.header("content-length").is_none());

    // A block rule in the answer: the answer is replaced, upstream id/model/usage kept.
    let rec = sim
        .run(chat(&user("hi")), completion("you want persimmon"))
        .unwrap();
    assert_eq!(rec.response.status, 200);
    let v = rec.response.json();
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "The content was blocked by the content policy."
    );
    assert_eq!(
        (v["id"].as_str(), v["model"].as_str()),
        (Some("c1"), Some("gpt-4o"))
    );
    assert_eq!(v["usage"]["total_tokens"], 8);
    assert!(!rec.response.body_str().contains("persimmon"));
    assert_eq!(hits(&sim, "banned", "block", "response"), 1);

    // Delivered in small pieces: the same.
    let rec = sim
        .run(
            chat(&user("hi")),
            completion("you want persimmon").chunked(3),
        )
        .unwrap();
    assert!(!rec.response.body_str().contains("persimmon"));
    // Binary answers pass untouched even when values are to be restored.
    let audio = UpstreamResponse {
        status: 200,
        headers: vec![("content-type".into(), "audio/mpeg".into())],
        chunks: vec![b"ID3\xff\xfe[EMAIL_1]".to_vec()],
        trailers: vec![],
    };
    let rec = sim.run(chat(&user("bob@corp.example")), audio).unwrap();
    assert_eq!(rec.response.body, b"ID3\xff\xfe[EMAIL_1]");
    // An upstream answer that is not JSON is still checked, as text.
    let rec = sim
        .run(
            chat(&user("hi")),
            UpstreamResponse::json(200, "oops 13812345678 {"),
        )
        .unwrap();
    assert_eq!(rec.response.body_str(), "oops [PHONE] {");
}

#[test]
fn answer_body_limit_policy() {
    let cfg = r#"{"keywords":{"lists":[{"name":"b","words":["persimmon"]}]},"body":{"max_bytes":200,"over_limit":"block"}}"#;
    let mut sim = sim_with(cfg);
    let rec = sim
        .run(chat(&user("hi")), completion(&"y".repeat(300)).chunked(64))
        .unwrap();
    assert_eq!(
        rec.response.json()["choices"][0]["finish_reason"],
        "content_filter"
    );
    assert!(!rec.response.body_str().contains("yyy"));
}

// ---- streamed answers ----

#[test]
fn openai_stream_masks_and_restores_at_every_split() {
    let mut sim = guard();
    let body = openai_stream(&[
        "Mail [EMA",
        "IL_1] or call 139",
        "0000",
        "1111, you 坏",
        "蛋!",
    ]);
    let req = streaming(user("I am bob@corp.example"));
    at_every_split(
        &mut sim,
        &chat(&req),
        &UpstreamResponse::sse(body.clone()),
        |_, k, rec| {
            assert!(rec.response.complete, "chunk size {k}");
            assert_eq!(
                streamed_text(&rec.response.body),
                "Mail bob@corp.example or call [PHONE], you ***!",
                "chunk size {k}"
            );
            let evs = events(&rec.response.body);
            assert!(evs
                .iter()
                .any(|(_, v)| v["choices"][0]["finish_reason"] == "stop"));
            assert!(evs.iter().any(|(_, v)| v["usage"]["total_tokens"] == 14));
            assert_eq!(evs.last().unwrap().1, Value::String("[DONE]".into()));
        },
    );
}

/// An OpenAI stream calling tool `send` with argument fragments `pieces`.
fn openai_tool_stream(pieces: &[&str]) -> String {
    let mut s = String::new();
    for (i, p) in pieces.iter().enumerate() {
        let call = if i == 0 {
            json!({"index": 0, "id": "call_1", "type": "function", "function": {"name": "send", "arguments": p}})
        } else {
            json!({"index": 0, "function": {"arguments": p}})
        };
        let ev = json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[call]},"finish_reason":null}]});
        s.push_str(&format!("data: {ev}\n\n"));
    }
    s.push_str("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n");
    s.push_str("data: [DONE]\n\n");
    s
}

/// The tool-call arguments a client assembles from a streamed answer.
fn streamed_tool_args(body: &[u8]) -> String {
    events(body)
        .iter()
        .filter_map(|(_, v)| v.pointer("/choices/0/delta/tool_calls/0/function/arguments"))
        .filter_map(Value::as_str)
        .collect()
}

#[test]
fn streamed_tool_call_arguments_are_masked_restored_and_blocked_at_every_split() {
    let mut sim = guard();
    let req = streaming(user("I am bob@corp.example"));
    let body = openai_tool_stream(&["{\"to\":\"[EMA", "IL_1]\",\"sms\":\"139", "00001111\"}"]);
    at_every_split(
        &mut sim,
        &chat(&req),
        &UpstreamResponse::sse(body.clone()),
        |_, k, rec| {
            assert!(rec.response.complete, "chunk size {k}");
            let args = streamed_tool_args(&rec.response.body);
            let v: Value = serde_json::from_str(&args).unwrap_or_else(|e| panic!("{e}: {args}"));
            assert_eq!(
                v,
                json!({"to": "bob@corp.example", "sms": "[PHONE]"}),
                "chunk size {k}"
            );
        },
    );
    let body = openai_tool_stream(&["{\"q\":\"pers", "immon pie\"}"]);
    at_every_split(
        &mut sim,
        &chat(&req),
        &UpstreamResponse::sse(body.clone()),
        |_, k, rec| {
            let text = rec.response.body_str();
            assert!(!text.contains("immon"), "chunk size {k}: {text}");
            let evs = events(&rec.response.body);
            assert_eq!(
                evs[evs.len() - 2].1["choices"][0]["finish_reason"],
                "content_filter"
            );
            assert_eq!(evs.last().unwrap().1, Value::String("[DONE]".into()));
        },
    );
    assert!(hits(&sim, "banned", "block", "response") > 0);
}

#[test]
fn openai_stream_block_ends_cleanly_at_every_split() {
    let mut sim = guard();
    let body = openai_stream(&["Sure. Per", "sim", "mon is", " a fruit"]);
    at_every_split(
        &mut sim,
        &chat(&user("fruit?")),
        &UpstreamResponse::sse(body.clone()),
        |_, k, rec| {
            let text = rec.response.body_str();
            assert!(rec.response.complete, "chunk size {k}");
            assert!(
                !text.contains("sim") && !text.contains("fruit"),
                "chunk size {k}: {text}"
            );
            assert_eq!(streamed_text(&rec.response.body), "Sure. ");
            let evs = events(&rec.response.body);
            let n = evs.len();
            assert_eq!(evs[n - 1].1, Value::String("[DONE]".into()));
            assert_eq!(
                evs[n - 2].1["choices"][0]["finish_reason"],
                "content_filter"
            );
            assert_eq!(evs[n - 2].1["object"], "chat.completion.chunk");
            assert_eq!(evs[n - 2].1["id"], "c1");
        },
    );
    assert_eq!(hits(&sim, "banned", "block", "response"), body.len() as i64);
}

#[test]
fn anthropic_stream_block_and_restore_at_every_split() {
    let mut sim = guard();
    let body = anthropic_stream(&["Hi [PHO", "NE_1], 敏", "感", "词 and more"]);
    let req = json!({"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"call 13812345678"}]});
    at_every_split(
        &mut sim,
        &Request::post("/v1/messages", req.to_string()),
        &UpstreamResponse::sse(body.clone()),
        |_, k, rec| {
            assert_eq!(
                rec.upstream_request.as_ref().unwrap().json()["messages"][0]["content"],
                "call [PHONE_1]"
            );
            assert_eq!(
                streamed_text(&rec.response.body),
                "Hi 13812345678, ",
                "chunk size {k}"
            );
            let evs = events(&rec.response.body);
            let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                &names[names.len() - 3..],
                ["content_block_stop", "message_delta", "message_stop"],
                "chunk size {k}"
            );
            assert_eq!(evs[evs.len() - 2].1["delta"]["stop_reason"], "refusal");
            assert!(!rec.response.body_str().contains("and more"));
        },
    );
}

#[test]
fn stream_scanning_can_be_turned_off_but_restore_stays() {
    let mut sim = sim_with(
        r#"{"keywords":{"lists":[{"name":"b","words":["persimmon"]}]},"patterns":[{"builtin":"email","restore":true}],"stream":{"enabled":false}}"#,
    );
    let body = openai_stream(&["[EMAIL", "_1] persimmon"]);
    let rec = sim
        .run(
            chat(&user("a@b.co")),
            UpstreamResponse::sse(body).chunked(5),
        )
        .unwrap();
    assert_eq!(streamed_text(&rec.response.body), "a@b.co persimmon");
}

/// 100 MB of answer streamed through the plugin in 64 KiB chunks, with a phone number split
/// across every chunk boundary (and so across events): every one is masked, and the VM's
/// linear memory after the first MB does not grow.
#[test]
fn hundred_megabyte_stream_in_flat_memory() {
    let mut sim = guard();
    let mut req = user("tell me a long story");
    req["stream"] = json!(true);
    let sid = sim.begin(chat(&req)).unwrap();
    send_200(&mut sim, sid, "text/event-stream");
    let event = |content: &str| {
        format!(
            "data: {}\n\n",
            json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":content},"finish_reason":null}]})
        )
    };
    let filler = event(&"lorem ipsum dolor sit amet ".repeat(37));
    // Each chunk: the end of a number, filler, the start of the next number.
    let mut chunk = event("12345678 ok. ");
    while chunk.len() + filler.len() + 200 < 64 * 1024 {
        chunk.push_str(&filler);
    }
    chunk.push_str(&event("call 138"));
    let total = 100 * 1024 * 1024;
    sim.send_response_body(sid, event("call 138").as_bytes(), false)
        .unwrap();
    let (mut sent, mut phones, mut client_bytes) = (0usize, 0usize, 0usize);
    let mut after_first_mb = None;
    while sent < total {
        sim.send_response_body(sid, chunk.as_bytes(), false)
            .unwrap();
        sent += chunk.len();
        let out = sim.take_client_body(sid);
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(!text.contains("13812345678"), "a number escaped");
        phones += text.matches("[PHONE]").count();
        client_bytes += text.len();
        if after_first_mb.is_none() && sent >= 1024 * 1024 {
            after_first_mb = sim.vm_memory(0, 0);
        }
    }
    sim.send_response_body(sid, b"data: [DONE]\n\n", true)
        .unwrap();
    let tail = sim.take_client_body(sid);
    phones += String::from_utf8_lossy(&tail).matches("[PHONE]").count();
    client_bytes += tail.len();
    let rec = sim.take_record(sid).unwrap();
    assert!(rec.response.complete);
    let iterations = sent / chunk.len();
    assert_eq!(phones, iterations, "every split number was masked");
    assert!(client_bytes > total * 9 / 10);
    let start = after_first_mb.expect("memory measured");
    let end = sim.vm_memory(0, 0).expect("memory");
    eprintln!("VM memory after 1 MB: {start} bytes; after 100 MB: {end} bytes");
    assert!(
        end <= start + 256 * 1024,
        "VM memory grew from {start} to {end} bytes"
    );
    assert!(!sim.vm_failed(0, 0));
}

/// The content and tool-argument text of every complete event in `body`.
fn released(body: &[u8]) -> (String, String) {
    let mut content = String::new();
    let mut args = String::new();
    for (_, v) in events(body) {
        if let Some(c) = v
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
        {
            content.push_str(c);
        }
        for call in v
            .pointer("/choices/0/delta/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(a) = call.pointer("/function/arguments").and_then(Value::as_str) {
                args.push_str(a);
            }
        }
    }
    (content, args)
}

/// The shipped example configuration on a clean answer streamed one word per event: after
/// every upstream event the client already has all of the text but the word still being
/// written (what a keyword or pattern could still need), and tool-call arguments arrive in as
/// many pieces as they were sent. (The old fixed window held back ~390 characters, so a short
/// answer arrived all at the end.)
#[test]
fn clean_answer_is_released_as_it_arrives_with_the_shipped_config() {
    let config = aigw_test_kit::read_example_config("ai-guard");
    let mut sim = sim_with(&config);
    let mut req = user("What is the weather like in Paris?");
    req["stream"] = json!(true);
    let sid = sim.begin(chat(&req)).unwrap();
    send_200(&mut sim, sid, "text/event-stream");
    let answer = "The weather in Paris is mild today, with light rain expected in the \
                  afternoon and a gentle breeze from the west. Take an umbrella if you go out, \
                  and enjoy the cafes along the river.";
    let words: Vec<String> = answer.split_inclusive(' ').map(str::to_string).collect();
    let chunk = |delta: Value| {
        format!(
            "data: {}\n\n",
            json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":delta,"finish_reason":null}]})
        )
    };
    let (mut sent, mut got) = (String::new(), Vec::new());
    let mut nonempty_events = 0;
    for w in &words {
        sent.push_str(w);
        sim.send_response_body(sid, chunk(json!({"content": w})).as_bytes(), false)
            .unwrap();
        let out = sim.take_client_body(sid);
        if !released(&out).0.is_empty() {
            nonempty_events += 1;
        }
        got.extend_from_slice(&out);
        let (content, _) = released(&got);
        assert!(
            sent.starts_with(&content),
            "{content:?} is not a prefix of {sent:?}"
        );
        let held = &sent[content.len()..];
        assert!(
            !held.trim_end().contains(' '),
            "after {sent:?} the client has only {content:?} (held back {held:?})"
        );
    }
    // Tool-call arguments, fragment by fragment.
    let fragments = ["{\"city\":", " \"Paris\",", " \"unit\":", " \"celsius\"}"];
    sim.send_response_body(
        sid,
        chunk(json!({"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]})).as_bytes(),
        false,
    )
    .unwrap();
    let mut arg_events = 0;
    for f in fragments {
        sim.send_response_body(
            sid,
            chunk(json!({"tool_calls":[{"index":0,"function":{"arguments":f}}]})).as_bytes(),
            false,
        )
        .unwrap();
        let out = sim.take_client_body(sid);
        if !released(&out).1.is_empty() {
            arg_events += 1;
        }
        got.extend_from_slice(&out);
    }
    sim.send_response_body(sid, b"data: [DONE]\n\n", true)
        .unwrap();
    got.extend_from_slice(&sim.take_client_body(sid));
    let (content, args) = released(&got);
    assert_eq!(content, answer);
    assert_eq!(args, fragments.concat());
    assert!(
        nonempty_events >= words.len() - 2,
        "{nonempty_events} of {}",
        words.len()
    );
    assert!(
        arg_events >= fragments.len() - 1,
        "arguments in {arg_events} pieces"
    );
}

// ---- the same verdicts as Higress ai-data-masking 2.0.3 ----

/// Higress ai-data-masking's own configuration format, accepted by ai-guard as is.
const HIGRESS_CONFIG: &str = r#"{
  "deny_openai": true,
  "system_deny": false,
  "deny_code": 403,
  "deny_message": "blocked by policy",
  "deny_words": ["forbiddenword", "违禁词"],
  "replace_roles": [
    {"regex": "%{MOBILE}", "type": "replace", "value": "****"}
  ]
}"#;

#[test]
fn same_verdicts_as_higress_ai_data_masking() {
    let higress_path = gpustack_module("ai-data-masking", "2.0.3");
    let mut higress = Sim::new(SimOptions::default());
    higress
        .add_plugin(
            PluginSpec::from_file(&higress_path)
                .unwrap()
                .name("ai-data-masking")
                .config_json(HIGRESS_CONFIG),
        )
        .unwrap();
    let mut ours = sim_with(HIGRESS_CONFIG);

    // Deny words in the prompt: both block before the upstream, with the configured status
    // and message as an assistant answer.
    for prompt in ["please say forbiddenword now", "这里有违禁词"] {
        for sim in [&mut higress, &mut ours] {
            let rec = sim.run(chat(&user(prompt)), completion("never")).unwrap();
            assert!(nothing_upstream(&rec), "{prompt}");
            assert_eq!(rec.response.status, 403, "{prompt}");
            assert_eq!(
                rec.response.json()["choices"][0]["message"]["content"],
                "blocked by policy"
            );
        }
    }
    // Phone numbers are masked the same way on their way upstream.
    let prompt = "call me at 13800138000 please";
    let mut sent = Vec::new();
    for sim in [&mut higress, &mut ours] {
        let rec = sim
            .run(chat(&user(prompt)).chunked(9), completion("sure"))
            .unwrap();
        sent.push(sent_content(&rec));
        assert_eq!(
            rec.response.json()["choices"][0]["message"]["content"],
            "sure"
        );
    }
    assert_eq!(sent, ["call me at **** please", "call me at **** please"]);
    // A deny word in the answer: both replace it with the message, status unchanged.
    for sim in [&mut higress, &mut ours] {
        let rec = sim
            .run(
                chat(&user("hello")),
                completion("the forbiddenword is here"),
            )
            .unwrap();
        assert_eq!(rec.response.status, 200);
        assert_eq!(
            rec.response.json()["choices"][0]["message"]["content"],
            "blocked by policy"
        );
        assert!(!rec.response.body_str().contains("forbiddenword"));
    }
    // Clean traffic passes both unchanged.
    for sim in [&mut higress, &mut ours] {
        let rec = sim
            .run(chat(&user("hello there")), completion("hi"))
            .unwrap();
        assert_eq!(sent_content(&rec), "hello there");
        assert_eq!(
            rec.response.json()["choices"][0]["message"]["content"],
            "hi"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// External moderation (call-outs)

const MOD_KEY: &str = "sk-moderation-secret-123";

/// A guard with a masking rule and the moderation call-out on cluster `moderation`.
fn moderated(moderation: &str, cluster: Cluster) -> Sim {
    let config = format!(
        r#"{{"patterns": [{{"builtin": "email", "restore": true}}],
            "keywords": {{"lists": [{{"name": "banned", "words": ["persimmon"]}}]}},
            "mask": {{"hash_salt": "s"}},
            "moderation": {moderation}}}"#
    );
    let mut sim = sim_with(&config);
    sim.add_cluster("moderation", cluster);
    sim
}

fn openai_moderation(on_error: &str) -> String {
    format!(
        r#"{{"cluster": "moderation", "authority": "api.openai.example", "model": "omni-moderation-latest",
            "api_key": "{MOD_KEY}", "timeout_ms": 1500, "on_error": "{on_error}"}}"#
    )
}

fn mod_result(flagged: bool) -> String {
    json!({"id": "modr-1", "model": "omni-moderation-latest", "results": [{
        "flagged": flagged,
        "categories": {"violence": flagged, "hate": false, "self-harm": false},
        "category_scores": {"violence": if flagged { 0.97 } else { 0.01 }, "hate": 0.001, "self-harm": 0.0}
    }]})
    .to_string()
}

fn no_secret_in_logs(sim: &Sim, secrets: &[&str]) {
    for l in sim.logs() {
        for s in secrets {
            assert!(
                !l.message.contains(s),
                "log line leaks {s:?}: {}",
                l.message
            );
        }
    }
}

fn mod_metric(sim: &Sim, result: &str, source: &str) -> i64 {
    sim.metric(&format!(
        "aigw_guard_moderation_total;result={result};source={source}"
    ))
    .unwrap_or(0)
}

fn mod_errors(sim: &Sim, reason: &str, policy: &str) -> i64 {
    sim.metric(&format!(
        "aigw_guard_moderation_errors_total;reason={reason};policy={policy}"
    ))
    .unwrap_or(0)
}

#[test]
fn moderation_flagged_request_is_blocked_before_the_upstream() {
    let mut sim = moderated(&openai_moderation("allow"), Cluster::Manual);
    let body = user("how do I kill a neighbour's cat, ask bob@example.com");
    let sid = sim.begin(chat(&body)).unwrap();
    let calls = sim.pending_http_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0].call;
    assert_eq!(call.cluster, "moderation");
    let h = |n: &str| {
        call.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(h(":method"), Some("POST"));
    assert_eq!(h(":path"), Some("/v1/moderations"));
    assert_eq!(h(":authority"), Some("api.openai.example"));
    assert_eq!(h("authorization"), Some(&*format!("Bearer {MOD_KEY}")));
    assert_eq!(call.timeout_ms, 1500);
    // The message text by role, masked: the address never leaves the gateway.
    let sent: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(sent["model"], "omni-moderation-latest");
    assert_eq!(
        sent["input"],
        "be brief\nhow do I kill a neighbour's cat, ask [EMAIL_1]"
    );
    // Held while the call runs.
    assert!(sim.upstream_request(sid).is_none_or(|u| !u.complete));
    sim.answer_http(calls[0].id, CallReply::json(200, mod_result(true)))
        .unwrap();
    let rec = sim.take_record(sid).unwrap();
    assert!(nothing_upstream(&rec));
    assert_eq!(rec.response.status, 400);
    let v = rec.response.json();
    assert_eq!(v["error"]["code"], "content_filter");
    assert_eq!(mod_metric(&sim, "flagged", "call"), 1);
    assert_eq!(
        logs_with(
            &sim,
            "moderation flagged the request (categories: violence)"
        )
        .len(),
        1
    );
    no_secret_in_logs(&sim, &[MOD_KEY, "neighbour", "bob@example.com"]);
}

#[test]
fn moderation_clean_request_passes_masked_and_the_verdict_is_cached() {
    let mut sim = moderated(&openai_moderation("block"), Cluster::Manual);
    let body = user("write to bob@example.com about lunch");
    let sid = sim.begin(chat(&body)).unwrap();
    let calls = sim.pending_http_calls();
    assert_eq!(calls.len(), 1);
    sim.answer_http(calls[0].id, CallReply::json(200, mod_result(false)))
        .unwrap();
    let up = sim.upstream_request(sid).expect("forwarded");
    assert!(up.complete);
    assert_eq!(
        up.json()["messages"][1]["content"],
        "write to [EMAIL_1] about lunch"
    );
    sim.respond(sid, &completion("Sent to [EMAIL_1].")).unwrap();
    let rec = sim.take_record(sid).unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(
        rec.response.json()["choices"][0]["message"]["content"],
        "Sent to bob@example.com."
    );
    assert_eq!(mod_metric(&sim, "passed", "call"), 1);

    // A retry of the same prompt reuses the verdict: no second call-out.
    let rec = sim.run(chat(&body), completion("ok")).unwrap();
    assert!(sim.pending_http_calls().is_empty());
    assert_eq!(rec.response.status, 200);
    assert_eq!(sent_content(&rec), "write to [EMAIL_1] about lunch");
    assert_eq!(mod_metric(&sim, "passed", "cache"), 1);
    // After the TTL (60 s by default) the service is asked again.
    sim.advance(Duration::from_secs(61));
    let sid = sim.begin(chat(&body)).unwrap();
    assert_eq!(sim.pending_http_calls().len(), 1);
    let id = sim.pending_http_calls()[0].id;
    sim.answer_http(id, CallReply::json(200, mod_result(false)))
        .unwrap();
    assert!(sim.upstream_request(sid).is_some_and(|u| u.complete));
    // A local block needs no call-out.
    let rec = sim.run(chat(&user("persimmon")), completion("x")).unwrap();
    assert!(sim.pending_http_calls().is_empty());
    assert_eq!(rec.response.status, 400);
    assert!(nothing_upstream(&rec));
    no_secret_in_logs(&sim, &[MOD_KEY, "bob@example.com"]);
}

#[test]
fn moderation_timeout_fails_open_or_closed_as_configured() {
    // Fail open: forwarded unchanged after the timeout.
    let mut sim = moderated(&openai_moderation("allow"), Cluster::Manual);
    let sid = sim.begin(chat(&user("hello there"))).unwrap();
    assert_eq!(sim.pending_http_calls().len(), 1);
    sim.advance(Duration::from_millis(1499));
    assert!(sim.upstream_request(sid).is_none_or(|u| !u.complete));
    sim.advance(Duration::from_millis(2));
    assert!(sim.pending_http_calls().is_empty());
    let up = sim.upstream_request(sid).expect("forwarded");
    assert!(up.complete);
    assert_eq!(up.json()["messages"][1]["content"], "hello there");
    assert_eq!(mod_errors(&sim, "timeout", "allow"), 1);
    assert_eq!(mod_metric(&sim, "error", "call"), 1);

    // Fail closed: 503 in the client's protocol, nothing upstream.
    let mut sim = moderated(&openai_moderation("block"), Cluster::Manual);
    let req = Request::post(
        "/v1/messages",
        json!({"model": "claude", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hello there"}]})
        .to_string(),
    );
    let sid = sim.begin(req).unwrap();
    sim.advance(Duration::from_millis(1501));
    let rec = sim.take_record(sid).unwrap();
    assert!(nothing_upstream(&rec));
    assert_eq!(rec.response.status, 503);
    let v = rec.response.json();
    assert_eq!(v["type"], "error", "Anthropic error shape: {v}");
    assert_eq!(mod_errors(&sim, "timeout", "block"), 1);
    // Errors are not cached: the next request calls again.
    sim.begin(chat(&user("hello there"))).unwrap();
    assert_eq!(sim.pending_http_calls().len(), 1);
    no_secret_in_logs(&sim, &[MOD_KEY, "hello there"]);
}

#[test]
fn moderation_5xx_reset_and_bad_answers_follow_on_error() {
    let cases: [(CallReply, &str); 4] = [
        (CallReply::json(500, r#"{"error":"boom"}"#), "status"),
        (CallReply::Reset, "unreachable"),
        (CallReply::json(200, "not json at all"), "malformed"),
        (
            CallReply::json(200, r#"{"results":[{"flagged":"maybe"}]}"#),
            "malformed",
        ),
    ];
    for (reply, reason) in cases {
        for policy in ["allow", "block"] {
            let mut sim = moderated(&openai_moderation(policy), Cluster::Manual);
            let sid = sim.begin(chat(&user("hello there"))).unwrap();
            let id = sim.pending_http_calls()[0].id;
            sim.answer_http(id, reply.clone()).unwrap();
            assert_eq!(mod_errors(&sim, reason, policy), 1, "{reason} {policy}");
            if policy == "allow" {
                assert!(
                    sim.upstream_request(sid).is_some_and(|u| u.complete),
                    "{reason}: forwarded"
                );
            } else {
                let rec = sim.take_record(sid).unwrap();
                assert!(nothing_upstream(&rec), "{reason}: held back");
                assert_eq!(rec.response.status, 503);
                assert_eq!(
                    rec.response.json()["error"]["code"],
                    "moderation_unavailable"
                );
            }
            no_secret_in_logs(&sim, &[MOD_KEY, "hello there"]);
        }
    }
}

#[test]
fn moderation_generic_service_mode() {
    let generic = r#"{"mode": "generic", "cluster": "moderation", "authority": "guard.internal",
        "path": "/v2/check", "text_field": "content", "verdict_path": "$.result.block",
        "categories_path": "$.result.labels", "on_error": "block"}"#;
    let mut sim = moderated(generic, Cluster::Manual);
    let sid = sim.begin(chat(&user("buy cheap pills now"))).unwrap();
    let calls = sim.pending_http_calls();
    let call = &calls[0].call;
    assert!(call
        .headers
        .iter()
        .any(|(k, v)| k == ":path" && v == "/v2/check"));
    assert!(!call.headers.iter().any(|(k, _)| k == "authorization"));
    let sent: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(sent, json!({"content": "be brief\nbuy cheap pills now"}));
    sim.answer_http(
        calls[0].id,
        CallReply::json(
            200,
            r#"{"result":{"block":true,"labels":["spam","drugs"]}}"#,
        ),
    )
    .unwrap();
    let rec = sim.take_record(sid).unwrap();
    assert!(nothing_upstream(&rec));
    assert_eq!(rec.response.json()["error"]["code"], "content_filter");
    assert_eq!(
        logs_with(
            &sim,
            "moderation flagged the request (categories: spam, drugs)"
        )
        .len(),
        1
    );

    let sid = sim.begin(chat(&user("good morning"))).unwrap();
    let id = sim.pending_http_calls()[0].id;
    sim.answer_http(id, CallReply::json(200, r#"{"result":{"block":false}}"#))
        .unwrap();
    assert!(sim.upstream_request(sid).is_some_and(|u| u.complete));
}

#[test]
fn moderation_against_the_mock_llm_over_http() {
    let mock = mock_llm::spawn(MockOptions::default()).unwrap();
    let mut sim = moderated(&openai_moderation("block"), Cluster::Addr(mock.addr));
    let rec = sim
        .run(
            chat(&user("Please kill the background job")),
            completion("x"),
        )
        .unwrap();
    assert!(nothing_upstream(&rec));
    assert_eq!(rec.response.status, 400);
    assert_eq!(rec.response.json()["error"]["code"], "content_filter");
    let rec = sim
        .run(
            chat(&user("mail carol@example.org the report")),
            completion("Done."),
        )
        .unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(sent_content(&rec), "mail [EMAIL_1] the report");
    let calls: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.api == "openai.moderations")
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].auth.first().map(|a| a.key.as_str()), Some(MOD_KEY));
    let second = calls[1].json().unwrap();
    assert_eq!(second["input"], "be brief\nmail [EMAIL_1] the report");
    assert!(!String::from_utf8_lossy(&calls[1].body).contains("carol@example.org"));
    assert_eq!(mod_metric(&sim, "flagged", "call"), 1);
    assert_eq!(mod_metric(&sim, "passed", "call"), 1);
    no_secret_in_logs(&sim, &[MOD_KEY, "carol@example.org", "background job"]);
}

#[test]
fn moderation_config_errors_name_the_field() {
    for (cfg, expected) in [
        (
            r#"{"moderation": {"timeout_ms": 10}}"#,
            "moderation.cluster",
        ),
        (
            r#"{"moderation": {"cluster": "m", "on_error": "maybe"}}"#,
            "moderation.on_error",
        ),
        (
            r#"{"moderation": {"cluster": "m", "mode": "generic"}}"#,
            "moderation.path",
        ),
    ] {
        let mut sim = Sim::new(SimOptions::default());
        assert!(sim.add_plugin(spec("ai-guard").config_json(cfg)).is_err());
        assert!(
            sim.logs().iter().any(|l| l.message.contains(expected)),
            "{expected}: {:#?}",
            sim.logs()
        );
    }
}

// ---- texts published for access logs ----

fn published(rec: &StreamRecord, name: &str) -> Option<Value> {
    rec.filter_state
        .get(name)
        .map(|raw| serde_json::from_slice(raw).expect("a JSON record"))
}

#[test]
fn masked_question_and_answer_are_published_within_the_byte_bound() {
    let config = |max: usize| {
        format!(
            r#"{{"patterns":[{{"builtin":"email","restore":true}}],"log":{{"max_bytes":{max}}}}}"#
        )
    };
    let mut sim = sim_with(&config(4096));
    let rec = sim
        .run(
            chat(&user("Write to bob@corp.example, thanks")),
            completion("Writing to [EMAIL_1]."),
        )
        .unwrap();
    assert_eq!(
        published(&rec, "aigw.guard.question").unwrap(),
        json!({"text": "Write to [EMAIL_1], thanks", "truncated": false, "complete": true})
    );
    assert_eq!(
        published(&rec, "aigw.guard.answer").unwrap(),
        json!({"text": "Writing to [EMAIL_1].", "truncated": false, "complete": true})
    );

    // A small bound: both texts cut there, at a character boundary.
    let mut sim = sim_with(&config(12));
    let rec = sim
        .run(
            chat(&user("Écrire à bob@corp.example, merci")),
            completion("Writing to [EMAIL_1]."),
        )
        .unwrap();
    let q = published(&rec, "aigw.guard.question").unwrap();
    // "Écrire à " is 11 bytes; the next character (`[`) fits, then the bound.
    assert_eq!(q["text"], "Écrire à [");
    assert_eq!(q["truncated"], true);
    let a = published(&rec, "aigw.guard.answer").unwrap();
    assert_eq!(
        (a["text"].as_str(), a["truncated"].as_bool()),
        (Some("Writing to ["), Some(true))
    );
    // The client still gets the whole answer, restored.
    assert_eq!(
        rec.response.json()["choices"][0]["message"]["content"],
        "Writing to bob@corp.example."
    );

    // Streamed: a long answer in small chunks never publishes more than the bound.
    let pieces = vec!["[EMAIL_1] again and again. "; 200];
    let mut req = user("I am bob@corp.example");
    req["stream"] = json!(true);
    let rec = sim
        .run(
            chat(&req),
            UpstreamResponse::sse(openai_stream(&pieces)).chunked(17),
        )
        .unwrap();
    let a = published(&rec, "aigw.guard.answer").unwrap();
    assert_eq!(
        a,
        json!({"text": "[EMAIL_1] ag", "truncated": true, "complete": true})
    );
    assert!(streamed_text(&rec.response.body).starts_with("bob@corp.example again"));

    // `max_bytes: 0`: nothing published.
    let mut sim = sim_with(&config(0));
    let rec = sim
        .run(
            chat(&user("Write to bob@corp.example")),
            completion("Writing to [EMAIL_1]."),
        )
        .unwrap();
    assert!(published(&rec, "aigw.guard.question").is_none());
    assert!(published(&rec, "aigw.guard.answer").is_none());
    assert_eq!(sent_content(&rec), "Write to [EMAIL_1]");
}

#[test]
fn unchecked_and_blocked_questions_are_withheld() {
    // Over `body.max_bytes` and passed unchecked.
    let mut sim = sim_with(
        r#"{"patterns":[{"builtin":"email","restore":true}],"keywords":{"lists":[{"name":"b","words":["persimmon"]}]},"body":{"max_bytes":64}}"#,
    );
    let rec = sim
        .run(
            chat(&user(&format!("bob@corp.example {}", "x".repeat(100)))),
            completion("ok"),
        )
        .unwrap();
    assert_eq!(
        published(&rec, "aigw.guard.question").unwrap(),
        json!({"withheld": "unchecked"})
    );
    // Blocked.
    let mut sim = sim_with(
        r#"{"patterns":[{"builtin":"email","restore":true}],"keywords":{"lists":[{"name":"b","words":["persimmon"]}]}}"#,
    );
    let rec = sim
        .run(
            chat(&user("persimmon, bob@corp.example")),
            completion("never sent"),
        )
        .unwrap();
    assert_eq!(rec.response.status, 400);
    assert_eq!(
        published(&rec, "aigw.guard.question").unwrap(),
        json!({"withheld": "blocked"})
    );
    assert!(published(&rec, "aigw.guard.answer").is_none());
}

#[test]
fn a_body_with_a_repeated_key_is_refused_not_checked_one_way() {
    let mut sim = guard();
    // Which `content` (or `role`) counts depends on the parser: refused, whatever the order.
    for body in [
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello","content":"persimmon"}]}"#,
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"persimmon","content":"hello"}]}"#,
        r#"{"model":"gpt-4o","messages":[{"role":"assistant","content":"hi","role":"user"}]}"#,
        "\u{feff}{\"model\":\"gpt-4o\",\"messages\":[]}",
    ] {
        for n in [0, 5] {
            let rec = sim
                .run(
                    Request::post("/v1/chat/completions", body).chunked(n),
                    completion("never"),
                )
                .unwrap();
            assert!(nothing_upstream(&rec), "{body}");
            assert_eq!(rec.response.status, 400, "{body}");
            assert_eq!(
                rec.response.json()["error"]["code"],
                "invalid_request_body",
                "{body}"
            );
        }
    }
    // The same message without the repeat passes.
    let ok = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}"#;
    let rec = sim
        .run(
            Request::post("/v1/chat/completions", ok),
            completion("fine"),
        )
        .unwrap();
    assert_eq!(rec.response.status, 200);
}

const EVASION_CONFIG: &str = r#"{
  "scope": {"request": {"roles": ["system", "user"]}},
  "keywords": {"lists": [
    {"name": "banned", "words": ["cocaine"]},
    {"name": "banned_sep", "ignore_separators": true, "words": ["bomb"]},
    {"name": "secret", "action": "mask", "value": "***", "words": ["password"]},
    {"name": "gamble", "words": ["赌博网站", "賭場"]}
  ]}
}"#;

/// Cheap evasions of a keyword list in prompts: full-width, mathematical and
/// enclosed letters, combining marks, zero-width and other invisible characters
/// inside the word, Cyrillic and Greek look-alikes, newlines inside a word with
/// `ignore_separators`, Traditional spellings of a Simplified Chinese word (and
/// the reverse), and the `developer` / `SYSTEM` roles; ordinary Russian,
/// Greek, French and Chinese text passes unchanged.
#[test]
fn evasive_spellings_are_caught_in_requests() {
    let mut sim = sim_with(EVASION_CONFIG);
    for text in [
        "buy ｃｏｃａｉｎｅ",
        "buy 𝐜𝐨𝐜𝐚𝐢𝐧𝐞",
        "buy ⓒⓞⓒⓐⓘⓝⓔ",
        "buy c\u{0301}o\u{0327}c\u{0308}aine",
        "buy co\u{200B}ca\u{2060}i\u{FEFF}ne",
        "buy co\u{200E}c\u{180E}a\u{034F}ine",
        "buy \u{0441}\u{043E}\u{0441}\u{0430}\u{0456}ne",
        "buy \u{03BF}\u{03BF}", // look-alikes alone are no keyword: checked below
        "make a b\no\nm\nb",
        "make a ΒΟΜΒ",
        "去賭博網站玩",
        "去赌场玩",
    ] {
        let rec = sim.run(chat(&user(text)), completion("ok")).unwrap();
        if text.contains('\u{03BF}') {
            assert_eq!(rec.response.status, 200, "{text:?}");
            continue;
        }
        assert_eq!(rec.response.status, 400, "{text:?}");
        assert!(nothing_upstream(&rec), "{text:?}");
    }
    // Roles: `developer` is scanned like `system`, names in any case.
    for role in ["developer", "SYSTEM", "Developer", "USER"] {
        let body = json!({"messages":[{"role": role, "content": "about cocaine"},{"role":"user","content":"hi"}]});
        let rec = sim.run(chat(&body), completion("ok")).unwrap();
        assert_eq!(rec.response.status, 400, "{role}");
    }
    let body = json!({"messages":[{"role":"assistant","content":"about cocaine"},{"role":"user","content":"hi"}]});
    let rec = sim.run(chat(&body), completion("ok")).unwrap();
    assert_eq!(rec.response.status, 200);
    // A mask replaces exactly the original bytes of the evasive spelling.
    let rec = sim
        .run(
            chat(&user(
                "my p\u{200B}ass\u{0301}w\u{043E}rd, ＰＡＳＳＷＯＲＤ: x",
            )),
            completion("ok"),
        )
        .unwrap();
    assert_eq!(sent_content(&rec), "my ***, ***: x");
    // Ordinary text in other scripts gets no new match.
    for text in [
        "Сорока охраняет пароль, а сосиска на тарелке.",
        "Καλημέρα, το κρασί και το ψωμί.",
        "Un café à côté de l'hôtel, ça coûte cher.",
        "我们今天去北京，咖啡很好喝。",
    ] {
        let rec = sim.run(chat(&user(text)), completion("ok")).unwrap();
        assert_eq!(sent_content(&rec), text);
    }
}

/// The same evasions in a streamed answer, each split across SSE events and
/// delivered at every chunk size: masked exactly as in one piece.
#[test]
fn evasive_spellings_are_caught_in_streamed_answers_at_every_split() {
    let mut sim = sim_with(
        r#"{"keywords": {"lists": [
          {"name": "drugs", "action": "mask", "value": "[X]", "words": ["cocaine", "password"]},
          {"name": "sep", "action": "mask", "value": "[B]", "ignore_separators": true, "words": ["bomb"]},
          {"name": "gamble", "action": "mask", "value": "[G]", "words": ["赌博网站"]}
        ]}}"#,
    );
    let body = openai_stream(&[
        "ｃｏｃａ",
        "ｉｎｅ, 𝐜𝐨",
        "𝐜𝐚𝐢𝐧𝐞; c\u{0301}o",
        "\u{0327}caine, co\u{200B}",
        "ca\u{2060}ine, \u{0441}\u{043E}",
        "\u{0441}\u{0430}\u{0456}ne, b\n",
        "o\nm\nb, PAS\u{0405}",
        "WORD, 賭博",
        "網站. Сорока, καλημέρα, café, 咖啡.",
    ]);
    let req = streaming(user("hi"));
    at_every_split(
        &mut sim,
        &chat(&req),
        &UpstreamResponse::sse(body.clone()),
        |_, k, rec| {
            assert!(rec.response.complete, "chunk size {k}");
            assert_eq!(
                streamed_text(&rec.response.body),
                "[X], [X]; [X], [X], [X], [B], [X], [G]. Сорока, καλημέρα, café, 咖啡.",
                "chunk size {k}"
            );
        },
    );
}

/// A 1 MiB prompt of 20,000 messages with `scope.request.roles` set: the role
/// filter is linear (the native test in `scope.rs` counts its steps); here the
/// whole request goes through in the module, with a generous time bound that
/// only quadratic work (seconds) would break.
#[test]
fn many_messages_with_roles_are_checked_in_linear_time() {
    let mut sim = sim_with(
        r#"{"scope": {"request": {"roles": ["user", "system"]}},
            "body": {"max_bytes": 4194304},
            "keywords": {"lists": [{"name": "banned", "words": ["cocaine"]}]}}"#,
    );
    let n = 20_000;
    let mut messages = Vec::with_capacity(n + 1);
    for i in 0..n {
        let role = ["user", "assistant", "Developer"][i % 3];
        messages.push(json!({"role": role, "content": [{"type": "text", "text": format!("message {i} with a little text")}]}));
    }
    let body = json!({"model": "gpt-4o", "messages": messages});
    assert!(body.to_string().len() > 1_000_000);
    let started = std::time::Instant::now();
    let rec = sim.run(chat(&body), completion("ok")).unwrap();
    let took = started.elapsed();
    assert_eq!(rec.response.status, 200);
    eprintln!("20,000 messages checked in {took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    // The last message (developer, scanned like system) is still checked.
    messages.push(json!({"role": "developer", "content": "cocaine"}));
    let body = json!({"model": "gpt-4o", "messages": messages});
    let rec = sim.run(chat(&body), completion("ok")).unwrap();
    assert_eq!(rec.response.status, 400);
}
