//! ai-statistics end to end in the host simulator: every metric with exact values, for
//! OpenAI, Anthropic (`/v1/messages`) and Gemini (`:generateContent`) shapes, streamed and whole, with SSE events split at
//! every byte boundary; durations driven by the simulated clock; cost; access-log attributes;
//! and flat VM memory over a long stream.

use aigw_test_kit::answer::{self, sse_pieces, usage};
use aigw_test_kit::{
    assert_configs_rejected, at_every_cut, filter_state_json, load, logs_with, send_200, Chat,
};
use host_sim::{Request, Sim, SimOptions, UpstreamResponse};
use serde_json::{json, Value};
use std::time::Duration;

fn sim(config: &str) -> Sim {
    load("ai-statistics", 1, config)
}

const LABELS: &str = "route=default;cluster=upstream";

/// Metric `name` for `model` and `consumer` (and `;last` labels when given).
fn metric(sim: &Sim, name: &str, model: &str, consumer: &str, last: &str) -> Option<i64> {
    sim.metric(&format!(
        "{name};{LABELS};model={model};consumer={consumer}{last}"
    ))
}

fn tokens(sim: &Sim, model: &str, consumer: &str, kind: &str) -> i64 {
    let kind = format!(";token_type={kind}");
    metric(sim, "gen_ai_client_token_usage", model, consumer, &kind).unwrap_or(0)
}

fn requests(sim: &Sim, model: &str, consumer: &str, class: &str) -> i64 {
    let class = format!(";status_class={class}");
    metric(sim, "gen_ai_client_requests", model, consumer, &class).unwrap_or(0)
}

fn samples(sim: &Sim, name: &str, model: &str, consumer: &str) -> Vec<u64> {
    sim.metrics()
        .get(&format!(
            "{name};{LABELS};model={model};consumer={consumer}"
        ))
        .map(|m| m.samples.clone())
        .unwrap_or_default()
}

/// Asserts every `(token type, count)` of `want` for `model` and `consumer`, counted `runs`
/// times (`what` names the run in the messages).
fn assert_tokens(
    sim: &Sim,
    model: &str,
    consumer: &str,
    want: &[(&str, i64)],
    runs: i64,
    what: &str,
) {
    for (kind, n) in want {
        assert_eq!(
            tokens(sim, model, consumer, kind),
            n * runs,
            "{kind} tokens, {what}"
        );
    }
}

/// Runs `req` with the SSE answer `body` cut in two at every byte; after each run, every
/// `(token type, count)` of `want` has been counted once more. Returns the number of runs.
fn counts_at_every_cut(
    sim: &mut Sim,
    req: &Request,
    body: &str,
    model: &str,
    consumer: &str,
    want: &[(&str, i64)],
) -> i64 {
    let mut runs = 0i64;
    at_every_cut(sim, req, &UpstreamResponse::sse(body), |sim, at, rec| {
        assert!(rec.finished, "cut at {at}");
        runs += 1;
        assert_tokens(sim, model, consumer, want, runs, &format!("cut at {at}"));
    });
    runs
}

fn chat(model: &str, stream: bool) -> Request {
    Chat::openai(model)
        .stream(stream)
        .user("What is 2+2?")
        .request()
        .header("x-mse-consumer", "alice")
}

fn anthropic(model: &str, stream: bool) -> Request {
    Chat::anthropic(model)
        .max_tokens(50)
        .stream(stream)
        .user("Say hi")
        .request()
        .header("x-mse-consumer", "bob")
}

fn openai_body(prompt: u64, completion: u64, cached: u64, reasoning: u64) -> String {
    let mut u = usage(prompt, completion);
    u["prompt_tokens_details"] = json!({ "cached_tokens": cached });
    u["completion_tokens_details"] = json!({ "reasoning_tokens": reasoning });
    answer::openai_body("gpt-4o-2024-08-06", "The answer is 4.", u)
}

/// An OpenAI stream: role chunk, three content chunks, finish chunk, usage chunk, [DONE].
fn openai_stream() -> String {
    let mut s = String::new();
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":delta,"finish_reason":finish}],"usage":null})
        )
    };
    s.push_str(&chunk(
        json!({"role":"assistant","content":""}),
        Value::Null,
    ));
    for piece in ["The ", "answer ", "is 4."] {
        s.push_str(&chunk(json!({"content": piece}), Value::Null));
    }
    s.push_str(&chunk(json!({}), json!("stop")));
    s.push_str(&format!(
        "data: {}\n\n",
        json!({"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":21,"completion_tokens":9,"total_tokens":30,"prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":3}}})
    ));
    s.push_str("data: [DONE]\n\n");
    s
}

/// An Anthropic stream with cache reads/writes and cumulative output in message_delta.
fn anthropic_stream() -> String {
    let ev = answer::event;
    [
        ev("message_start", json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"usage":{"input_tokens":40,"cache_creation_input_tokens":10,"cache_read_input_tokens":50,"output_tokens":1}}})),
        ev("content_block_start", json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})),
        ev("ping", json!({"type":"ping"})),
        ev("content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi "}})),
        ev("content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"there!"}})),
        ev("content_block_stop", json!({"type":"content_block_stop","index":0})),
        ev("message_delta", json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":12}})),
        ev("message_stop", json!({"type":"message_stop"})),
    ]
    .concat()
}

#[test]
fn openai_non_stream_counts_tokens_requests_and_duration() {
    let mut sim = sim("{}");
    let sid = sim.begin(chat("gpt-4o", false)).unwrap();
    sim.advance(Duration::from_millis(700));
    send_200(&mut sim, sid, "application/json");
    sim.advance(Duration::from_millis(50));
    sim.send_response_body(sid, openai_body(100, 20, 64, 5).as_bytes(), true)
        .unwrap();
    let rec = sim.take_record(sid).unwrap();
    assert!(rec.finished);
    let want = [
        ("input", 100),
        ("output", 20),
        ("cached_input", 64),
        ("reasoning", 5),
    ];
    assert_tokens(&sim, "gpt-4o", "alice", &want, 1, "whole");
    assert_eq!(requests(&sim, "gpt-4o", "alice", "2xx"), 1);
    assert_eq!(
        samples(&sim, "gen_ai_server_request_duration", "gpt-4o", "alice"),
        vec![750]
    );
    // No time to first token for a whole (non-streamed) answer.
    assert!(samples(&sim, "gen_ai_server_time_to_first_token", "gpt-4o", "alice").is_empty());
    // A second identical request adds up.
    let rec = sim
        .run(
            chat("gpt-4o", false),
            UpstreamResponse::json(200, openai_body(100, 20, 64, 5)).chunked(7),
        )
        .unwrap();
    assert_eq!(rec.response.status, 200);
    assert_eq!(tokens(&sim, "gpt-4o", "alice", "input"), 200);
    assert_eq!(requests(&sim, "gpt-4o", "alice", "2xx"), 2);
}

#[test]
fn openai_stream_split_at_every_byte_counts_exactly() {
    let mut sim = sim("{}");
    let body = openai_stream();
    let want = [
        ("input", 21),
        ("output", 9),
        ("cached_input", 8),
        ("reasoning", 3),
    ];
    let mut runs = counts_at_every_cut(
        &mut sim,
        &chat("gpt-4o", true),
        &body,
        "gpt-4o",
        "alice",
        &want,
    );
    // One byte per chunk.
    let rec = sim
        .run(chat("gpt-4o", true), UpstreamResponse::sse(body).chunked(1))
        .unwrap();
    assert!(rec.finished);
    runs += 1;
    assert_eq!(tokens(&sim, "gpt-4o", "alice", "output"), 9 * runs);
    assert_eq!(requests(&sim, "gpt-4o", "alice", "2xx"), runs);
}

#[test]
fn anthropic_stream_split_at_every_byte_counts_exactly() {
    let mut sim = sim("{}");
    // input = 40 uncached + 10 cache writes + 50 cache reads; output is the latest cumulative.
    let want = [("input", 100), ("output", 12), ("cached_input", 50)];
    counts_at_every_cut(
        &mut sim,
        &anthropic("claude-sonnet-4-5", true),
        &anthropic_stream(),
        "claude-sonnet-4-5",
        "bob",
        &want,
    );
    assert_eq!(tokens(&sim, "claude-sonnet-4-5", "bob", "reasoning"), 0);
}

fn gemini(model: &str, stream: bool) -> Request {
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    Request::post(
        &format!("/v1beta/models/{model}:{method}"),
        json!({"contents": [{"role": "user", "parts": [{"text": "Why is the sky blue?"}]}]})
            .to_string(),
    )
    .header("x-mse-consumer", "carol")
}

/// A Gemini stream: usage is cumulative in every chunk (thoughts counted apart from
/// candidates), so only the last one counts.
fn gemini_stream() -> String {
    let mut s = String::new();
    for (i, (text, out)) in [("Rayleigh ", 3), ("scattering ", 6), ("of light.", 9)]
        .iter()
        .enumerate()
    {
        let finish = if i == 2 {
            r#","finishReason":"STOP""#
        } else {
            ""
        };
        s.push_str(&format!(
            "data: {{\"candidates\":[{{\"content\":{{\"role\":\"model\",\"parts\":[{{\"text\":\"{text}\"}}]}}{finish}}}],\"usageMetadata\":{{\"promptTokenCount\":14,\"candidatesTokenCount\":{out},\"thoughtsTokenCount\":20,\"cachedContentTokenCount\":4,\"totalTokenCount\":{}}},\"modelVersion\":\"gemini-2.5-flash-001\"}}\r\n\r\n",
            14 + out + 20
        ));
    }
    s
}

#[test]
fn gemini_stream_split_at_every_byte_and_non_stream_count_exactly() {
    let mut sim = sim("{}");
    // The model comes from the path. Output = candidates + thoughts of the last chunk.
    let want = [
        ("input", 14),
        ("output", 29),
        ("reasoning", 20),
        ("cached_input", 4),
    ];
    let runs = counts_at_every_cut(
        &mut sim,
        &gemini("gemini-2.5-flash", true),
        &gemini_stream(),
        "gemini-2.5-flash",
        "carol",
        &want,
    );
    assert_eq!(requests(&sim, "gemini-2.5-flash", "carol", "2xx"), runs);

    let whole = json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Because of Rayleigh scattering."}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 5, "totalTokenCount": 14},
        "modelVersion": "gemini-2.0-flash-001"
    });
    let rec = sim
        .run(
            gemini("gemini-2.0-flash", false),
            UpstreamResponse::json(200, whole.to_string()),
        )
        .unwrap();
    assert!(rec.finished);
    let want = [("input", 9), ("output", 5), ("reasoning", 0)];
    assert_tokens(&sim, "gemini-2.0-flash", "carol", &want, 1, "whole");
    assert_eq!(requests(&sim, "gemini-2.0-flash", "carol", "2xx"), 1);
}

#[test]
fn anthropic_non_stream_and_labels() {
    let mut sim = sim("{}");
    let body = json!({"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-haiku","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":6,"cache_read_input_tokens":3}}).to_string();
    let mut req = anthropic("claude-3-5-haiku", false).route("chat-route");
    req.opts.props.cluster_name = "outbound|443||anthropic".into();
    let rec = sim.run(req, UpstreamResponse::json(200, body)).unwrap();
    assert!(rec.finished);
    let base =
        "route=chat-route;cluster=outbound|443||anthropic;model=claude-3-5-haiku;consumer=bob";
    for (name, want) in [
        ("gen_ai_client_token_usage;{base};token_type=input", 15),
        ("gen_ai_client_token_usage;{base};token_type=output", 6),
        (
            "gen_ai_client_token_usage;{base};token_type=cached_input",
            3,
        ),
        ("gen_ai_client_requests;{base};status_class=2xx", 1),
    ] {
        let name = name.replace("{base}", base);
        assert_eq!(sim.metric(&name), Some(want), "{name}");
    }
}

#[test]
fn status_classes() {
    let mut sim = sim("{}");
    let err = |status: u16| {
        UpstreamResponse::json(
            status,
            r#"{"error":{"message":"x","type":"invalid_request_error","param":null,"code":null}}"#,
        )
    };
    for status in [400, 404, 429] {
        sim.run(chat("gpt-4o", false), err(status)).unwrap();
    }
    for status in [500, 503] {
        sim.run(chat("gpt-4o", false), err(status)).unwrap();
    }
    sim.run(
        chat("gpt-4o", false),
        UpstreamResponse::json(200, openai_body(1, 1, 0, 0)),
    )
    .unwrap();
    assert_eq!(requests(&sim, "gpt-4o", "alice", "4xx"), 3);
    assert_eq!(requests(&sim, "gpt-4o", "alice", "5xx"), 2);
    assert_eq!(requests(&sim, "gpt-4o", "alice", "2xx"), 1);
    // Errors carry no usage: only the successful answer counted tokens.
    assert_eq!(tokens(&sim, "gpt-4o", "alice", "input"), 1);
    // Without a consumer header the consumer label is "unknown".
    sim.run(
        Request::post("/v1/chat/completions", r#"{"model":"m1"}"#),
        UpstreamResponse::json(200, openai_body(2, 2, 0, 0)),
    )
    .unwrap();
    assert_eq!(requests(&sim, "m1", "unknown", "2xx"), 1);
}

#[test]
fn time_to_first_token_and_per_output_token_follow_the_clock() {
    let mut sim = sim("{}");
    let body = openai_stream();
    // The first event (the role chunk) opens the stream; the content follows.
    let at = body.find("\n\n").unwrap() + 2;
    let (first, rest) = body.split_at(at);
    let sid = sim.begin(chat("gpt-4o", true)).unwrap();
    sim.advance(Duration::from_millis(120));
    send_200(&mut sim, sid, "text/event-stream");
    sim.advance(Duration::from_millis(180));
    // First body bytes at 300 ms.
    sim.send_response_body(sid, first.as_bytes(), false)
        .unwrap();
    // The rest arrives over 800 ms more, in three pieces.
    let pieces: Vec<&[u8]> = rest.as_bytes().chunks(rest.len() / 3 + 1).collect();
    for p in &pieces {
        sim.advance(Duration::from_millis(800 / pieces.len() as u64));
        sim.send_response_body(sid, p, false).unwrap();
    }
    sim.advance(Duration::from_millis(800 - 3 * (800 / pieces.len() as u64)));
    sim.send_response_body(sid, b"", true).unwrap();
    let rec = sim.take_record(sid).unwrap();
    assert!(rec.finished);
    assert_eq!(
        samples(&sim, "gen_ai_server_time_to_first_token", "gpt-4o", "alice"),
        vec![300]
    );
    assert_eq!(
        samples(&sim, "gen_ai_server_request_duration", "gpt-4o", "alice"),
        vec![1100]
    );
    // 800 ms after the first token for 9 output tokens: 800 / (9 - 1) = 100 ms each.
    assert_eq!(
        samples(
            &sim,
            "gen_ai_server_time_per_output_token",
            "gpt-4o",
            "alice"
        ),
        vec![100]
    );
}

#[test]
fn cost_from_the_price_table() {
    let cfg = r#"{"prices":{"gpt-4o":{"input":2.5,"output":10,"cached_input":1.25},"claude-*":{"input":3,"output":15,"cached_input":0.3}}}"#;
    let mut sim = sim(cfg);
    sim.run(
        chat("gpt-4o", false),
        UpstreamResponse::json(200, openai_body(1000, 200, 400, 0)),
    )
    .unwrap();
    // 600 uncached * 2.5 + 400 cached * 1.25 + 200 output * 10 = 1500 + 500 + 2000 micro-dollars.
    let cost = |sim: &Sim, model: &str, consumer: &str| {
        metric(sim, "gen_ai_client_cost_micro_usd", model, consumer, "")
    };
    assert_eq!(cost(&sim, "gpt-4o", "alice"), Some(4000));
    sim.run(
        anthropic("claude-sonnet-4-5", true),
        UpstreamResponse::sse(anthropic_stream()).chunked(13),
    )
    .unwrap();
    // input 100 = 50 cached + 50 other: 50*3 + 50*0.3 + 12*15 = 150 + 15 + 180.
    assert_eq!(cost(&sim, "claude-sonnet-4-5", "bob"), Some(345));
    // No price, no cost metric.
    sim.run(
        chat("llama-3", false),
        UpstreamResponse::json(200, openai_body(10, 10, 0, 0)),
    )
    .unwrap();
    assert_eq!(cost(&sim, "llama-3", "alice"), None);
    let rec = sim
        .run(
            chat("gpt-4o", false),
            UpstreamResponse::json(200, openai_body(1000, 200, 400, 0)),
        )
        .unwrap();
    let log = filter_state_json(&rec, "aigw.log");
    assert_eq!(log["cost_micro_usd"], 4000);
}

#[test]
fn prefers_the_usage_ai_proxy_published() {
    let mut sim = sim("{}");
    let mut req = chat("gpt-4o", false);
    req.opts.props.extra.insert(
        "aigw.usage".into(),
        br#"{"input":70,"output":30,"total":100,"cached_input":10,"reasoning":4,"model":"gpt-4o-2024-08-06","provider":"openai"}"#.to_vec(),
    );
    // The body says otherwise (as after a translation the client sees different counts).
    sim.run(req, UpstreamResponse::json(200, openai_body(1, 1, 0, 0)))
        .unwrap();
    let want = [
        ("input", 70),
        ("output", 30),
        ("cached_input", 10),
        ("reasoning", 4),
    ];
    assert_tokens(&sim, "gpt-4o", "alice", &want, 1, "from aigw.usage");
}

#[test]
fn access_log_attributes_without_and_with_question_and_answer() {
    let mut sim = sim("{}");
    let sid = sim.begin(chat("gpt-4o", true)).unwrap();
    sim.advance(Duration::from_millis(40));
    send_200(&mut sim, sid, "text/event-stream");
    sim.send_response_body(sid, openai_stream().as_bytes(), true)
        .unwrap();
    let rec = sim.take_record(sid).unwrap();
    let log = filter_state_json(&rec, "aigw.log");
    assert_eq!(log["model"], "gpt-4o");
    assert_eq!(log["consumer"], "alice");
    assert_eq!(log["status"], 200);
    assert_eq!(log["stream"], true);
    assert_eq!(log["input_tokens"], 21);
    assert_eq!(log["output_tokens"], 9);
    assert_eq!(log["total_tokens"], 30);
    assert_eq!(log["cached_tokens"], 8);
    assert_eq!(log["reasoning_tokens"], 3);
    assert_eq!(log["ttft_ms"], 40);
    assert_eq!(log["finish_reason"], "stop");
    assert!(
        log.get("question").is_none() && log.get("answer").is_none(),
        "{log}"
    );
    // The same record is one info log line.
    let lines = logs_with(&sim, "\"finish_reason\":\"stop\"");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(!lines[0].contains("What is 2+2"));

    let mut sim = self::sim(r#"{"log_question":true,"log_answer":true,"max_log_bytes":8}"#);
    let rec = sim
        .run(
            chat("gpt-4o", true),
            UpstreamResponse::sse(openai_stream()).chunked(5),
        )
        .unwrap();
    let log = filter_state_json(&rec, "aigw.log");
    assert_eq!(log["question"], "What is ");
    assert_eq!(log["question_truncated"], true);
    assert_eq!(log["answer"], "The answ");
    assert_eq!(log["answer_truncated"], true);
    let rec = sim
        .run(anthropic("claude-x", false), UpstreamResponse::json(200, json!({"id":"m","type":"message","model":"claude-x","content":[{"type":"text","text":"Hi!"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}).to_string()))
        .unwrap();
    let log = filter_state_json(&rec, "aigw.log");
    assert_eq!(log["question"], "Say hi");
    assert_eq!(log["answer"], "Hi!");
    assert!(log.get("answer_truncated").is_none());
    assert_eq!(log["finish_reason"], "end_turn");
}

#[test]
fn long_stream_keeps_vm_memory_flat() {
    let mut sim = sim(r#"{"log_answer":true,"max_log_bytes":4096}"#);
    let sid = sim.begin(chat("gpt-4o", true)).unwrap();
    send_200(&mut sim, sid, "text/event-stream");
    let event = |content: &str| {
        format!(
            "data: {}\n\n",
            json!({"id":"c1","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":content},"finish_reason":null}],"usage":null})
        )
    };
    let mut chunk = String::new();
    while chunk.len() < 60 * 1024 {
        chunk.push_str(&event(
            "lorem ipsum dolor sit amet, consectetur adipiscing elit ",
        ));
    }
    // Split events across chunk borders: send the chunk shifted by an odd offset.
    let bytes = chunk.as_bytes();
    let (head, tail) = bytes.split_at(777);
    let total = 32 * 1024 * 1024;
    let (mut sent, mut after_first_mb) = (0usize, None);
    sim.send_response_body(sid, head, false).unwrap();
    while sent < total {
        sim.send_response_body(sid, tail, false).unwrap();
        sim.send_response_body(sid, head, false).unwrap();
        sent += bytes.len();
        sim.take_client_body(sid);
        if after_first_mb.is_none() && sent >= 1024 * 1024 {
            after_first_mb = sim.vm_memory(0, 0);
        }
    }
    sim.send_response_body(sid, tail, false).unwrap();
    let usage = format!(
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"id":"c1","object":"chat.completion.chunk","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":4_000_000,"total_tokens":4_000_011}})
    );
    sim.send_response_body(sid, usage.as_bytes(), true).unwrap();
    let rec = sim.take_record(sid).unwrap();
    assert!(rec.finished);
    assert_eq!(tokens(&sim, "gpt-4o", "alice", "output"), 4_000_000);
    let log = filter_state_json(&rec, "aigw.log");
    assert_eq!(log["answer"].as_str().unwrap().len(), 4096);
    let start = after_first_mb.expect("memory measured");
    let end = sim.vm_memory(0, 0).expect("memory");
    eprintln!(
        "VM memory after 1 MB: {start} bytes; after {} MB: {end} bytes",
        sent >> 20
    );
    assert!(
        end <= start + 128 * 1024,
        "VM memory grew from {start} to {end} bytes"
    );
}

#[test]
fn bad_config_is_one_clear_error() {
    assert_configs_rejected(
        "ai-statistics",
        &[
            (
                r#"{"prices":{"m":{"input":"cheap","output":1}}}"#,
                "ai-statistics: invalid config: prices",
            ),
            (
                r#"{"prices":{"m":{"input":-2,"output":1}}}"#,
                "ai-statistics: invalid config: prices.m.input: must be a non-negative number",
            ),
        ],
    );
}

// ---- side by side with Higress's Go-built ai-statistics 2.0.0 ----

/// Higress's ai-statistics 2.0.0 from the `gpustack-higress-plugins` wheel, configured with
/// no attributes (token metrics only).
fn higress_statistics() -> Sim {
    let path = aigw_test_kit::gpustack_module("ai-statistics", "2.0.0");
    let spec = host_sim::PluginSpec::from_file(&path)
        .unwrap_or_else(|e| panic!("cannot load {}: {e:#}", path.display()))
        .name("ai-statistics")
        .config_json("{}");
    let mut sim = Sim::new(SimOptions::default());
    sim.add_plugin(spec).expect("Higress ai-statistics loads");
    sim
}

/// Higress's metric name (route, upstream cluster, model as the response names it, consumer).
fn higress_metric(sim: &Sim, model: &str, consumer: &str, metric: &str) -> Option<i64> {
    sim.metric(&format!(
        "route.default.upstream.upstream.model.{model}.consumer.{consumer}.metric.{metric}"
    ))
}

#[test]
fn same_counts_as_higress_on_whole_events_and_exact_where_higress_loses_split_ones() {
    let body = openai_stream();
    // Whole events, one per chunk.
    let events: Vec<Vec<u8>> = body
        .split_inclusive("\n\n")
        .map(|e| e.as_bytes().to_vec())
        .collect();
    let mut theirs = higress_statistics();
    let mut ours = sim("{}");
    theirs
        .run(chat("gpt-4o", true), sse_pieces(events.clone()))
        .unwrap();
    ours.run(chat("gpt-4o", true), sse_pieces(events)).unwrap();
    let model = "gpt-4o-2024-08-06";
    assert_eq!(
        higress_metric(&theirs, model, "alice", "input_token"),
        Some(21)
    );
    assert_eq!(
        higress_metric(&theirs, model, "alice", "output_token"),
        Some(9)
    );
    assert_eq!(tokens(&ours, "gpt-4o", "alice", "input"), 21);
    assert_eq!(tokens(&ours, "gpt-4o", "alice", "output"), 9);

    // The usage event split in the middle of its JSON across two chunks.
    let at = body.find("\"usage\":{").unwrap() + 12;
    let split = vec![
        body.as_bytes()[..at].to_vec(),
        body.as_bytes()[at..].to_vec(),
    ];
    let mut theirs = higress_statistics();
    let mut ours = sim("{}");
    theirs
        .run(chat("gpt-4o", true), sse_pieces(split.clone()))
        .unwrap();
    ours.run(chat("gpt-4o", true), sse_pieces(split)).unwrap();
    let their_input = higress_metric(&theirs, model, "alice", "input_token");
    eprintln!("Higress ai-statistics 2.0.0 on a split usage event: input_token = {their_input:?}");
    assert_ne!(
        their_input,
        Some(21),
        "Higress counted the split event after all"
    );
    assert_eq!(tokens(&ours, "gpt-4o", "alice", "input"), 21);
    assert_eq!(tokens(&ours, "gpt-4o", "alice", "output"), 9);
}

#[test]
fn example_config_loads_and_prices() {
    let text = aigw_test_kit::read_example_config("ai-statistics");
    let mut sim = sim(&text);
    sim.run(
        chat("gpt-4o-mini", false),
        UpstreamResponse::json(200, openai_body(1_000_000, 100_000, 0, 0)),
    )
    .unwrap();
    // 1M input * 0.15 + 100k output * 0.6 micro-dollars each.
    assert_eq!(
        metric(
            &sim,
            "gen_ai_client_cost_micro_usd",
            "gpt-4o-mini",
            "alice",
            ""
        ),
        Some(150_000 + 60_000)
    );
}

/// With question and answer logging, the log is what ai-statistics read (the chain with
/// ai-guard, which masks them, is in tests/tests/chains.rs).
#[test]
fn without_ai_guard_the_log_is_what_ai_statistics_read() {
    let mut sim = sim(r#"{"log_question":true,"log_answer":true,"max_log_bytes":4096}"#);
    let ask = |question: &str, stream: bool| {
        Chat::openai("gpt-4o")
            .stream(stream)
            .system("be brief")
            .user(question)
            .request()
    };
    let rec = sim
        .run(
            ask("Mail me at bob@corp.example please", false),
            answer::openai("gpt-4o", "I will write to you.", usage(5, 4)),
        )
        .unwrap();
    let log = filter_state_json(&rec, "aigw.log");
    assert_eq!(log["question"], "Mail me at bob@corp.example please");
    assert_eq!(log["answer"], "I will write to you.");
    assert!(log.get("question_withheld").is_none());
    let body = answer::openai_stream("gpt-4o", &["Hi ", "there"], "stop", None);
    let rec = sim
        .run(ask("hello", true), UpstreamResponse::sse(body).chunked(3))
        .unwrap();
    let log = filter_state_json(&rec, "aigw.log");
    assert_eq!(
        (log["question"].as_str(), log["answer"].as_str()),
        (Some("hello"), Some("Hi there"))
    );
}
