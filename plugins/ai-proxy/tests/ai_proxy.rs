//! ai-proxy end to end in host-sim: dist/ai-proxy.wasm (`scripts/build-wasm.sh ai-proxy`).
//!
//! Payloads follow the providers' documented shapes (OpenAI chat completions and chunks,
//! Anthropic Messages and its SSE events, Gemini streamGenerateContent, Bedrock ConverseStream
//! event-stream frames).

use aigw_test_kit::answer;
use aigw_test_kit::sse::{self, json as json_events, openai_text};
use aigw_test_kit::{
    assert_configs_rejected, at_every_split, error_message, filter_state_json, load, spec, Chat,
};
use host_sim::router::{Endpoint, Route, Upstream};
use host_sim::{Request, Sim, SimOptions, StreamRecord, UpstreamResponse};
use serde_json::{json, Value};

fn sim_with(config: &Value, workers: usize) -> Sim {
    load("ai-proxy", workers, &config.to_string())
}

fn sim(config: Value) -> Sim {
    sim_with(&config, 1)
}

fn openai_cfg() -> Value {
    json!({"providers":[{"id":"oai","type":"openai","api_keys":["sk-one"],
        "model_mapping":{"gpt-4":"gpt-4o","~^my-(.*)$":"gpt-$1"}}]})
}

fn anthropic_cfg() -> Value {
    json!({"providers":[{"id":"claude","type":"anthropic","api_keys":["sk-ant-1"],
        "model_mapping":{"gpt-4o":"claude-sonnet-4-20250514"}}]})
}

fn chat(model: &str, stream: bool) -> Request {
    Chat::openai(model)
        .stream(stream)
        .system("Be brief.")
        .user("Hello")
        .request()
}

fn usage_prop(rec: &StreamRecord) -> Value {
    filter_state_json(rec, "aigw.usage")
}

/// Counts of the usage ai-proxy published (`aigw.usage`), by field name.
fn usage_of<const N: usize>(rec: &StreamRecord, fields: [&str; N]) -> [Option<u64>; N] {
    let u = usage_prop(rec);
    fields.map(|f| u[f].as_u64())
}

/// The (event name, data) pairs of an SSE body.
fn sse_events(body: &str) -> Vec<(Option<String>, String)> {
    sse::events(body)
        .into_iter()
        .map(|e| (e.name, e.data))
        .collect()
}

// ---- OpenAI-compatible upstream ------------------------------------------------------------

const OPENAI_ANSWER: &str = r#"{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there!","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":3,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":8,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}"#;

#[test]
fn openai_chat_is_rewritten_and_reports_the_requested_model() {
    let mut sim = sim(openai_cfg());
    let rec = sim
        .run(
            chat("gpt-4", false).header("authorization", "Bearer client-token"),
            UpstreamResponse::json(200, OPENAI_ANSWER),
        )
        .unwrap();
    let up = rec.upstream_request.clone().unwrap();
    assert_eq!(up.header(":path"), Some("/v1/chat/completions"));
    assert_eq!(up.header(":authority"), Some("api.openai.com"));
    assert_eq!(up.header("authorization"), Some("Bearer sk-one"));
    assert_eq!(up.header("content-length"), None);
    assert_eq!(up.json()["model"], "gpt-4o");
    assert_eq!(rec.response.status, 200);
    let body = rec.response.json();
    assert_eq!(body["model"], "gpt-4", "the client's model is reported");
    assert_eq!(body["choices"][0]["message"]["content"], "Hi there!");
    assert_eq!(
        body["system_fingerprint"], "fp_fc9f1d7035",
        "other fields pass"
    );
    assert_eq!(rec.response.header("x-aigw-provider"), Some("oai"));
    assert_eq!(rec.response.header("x-aigw-model"), Some("gpt-4o"));
    let u = usage_prop(&rec);
    assert_eq!(
        u,
        json!({"input":19,"output":3,"total":22,"cached_input":8,"reasoning":0,"model":"gpt-4o","provider":"oai"})
    );
    // Keys never reach the logs.
    assert!(!sim.logs().iter().any(|l| l.message.contains("sk-one")));
}

#[test]
fn regex_mapping_and_upstream_model_reporting() {
    let mut cfg = openai_cfg();
    cfg["report_model"] = json!("upstream");
    let mut sim = sim(cfg);
    let rec = sim
        .run(
            chat("my-4o-mini", false),
            UpstreamResponse::json(200, OPENAI_ANSWER),
        )
        .unwrap();
    assert_eq!(rec.upstream_request.unwrap().json()["model"], "gpt-4o-mini");
    assert_eq!(rec.response.json()["model"], "gpt-4o-2024-08-06");
}

const OPENAI_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11,\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
    "data: [DONE]\n\n"
);

#[test]
fn openai_stream_forces_usage_and_strips_it_at_every_split() {
    let mut sim = sim(openai_cfg());
    let resp = UpstreamResponse::sse(OPENAI_STREAM);
    at_every_split(&mut sim, &chat("gpt-4", true), &resp, |_, k, rec| {
        let up = rec.upstream_request.clone().unwrap().json();
        assert_eq!(up["stream_options"]["include_usage"], true);
        let body = rec.response.body_str();
        assert_eq!(openai_text(&body), "Hello", "k={k}");
        assert!(
            !body.contains("prompt_tokens"),
            "usage chunk stripped, k={k}"
        );
        assert!(body.ends_with("data: [DONE]\n\n"));
        assert!(!body.contains("gpt-4o-2024-08-06") && body.contains("\"model\":\"gpt-4\""));
        assert_eq!(usage_prop(rec)["total"], 11, "k={k}");
        assert_eq!(
            rec.response.header("content-type"),
            Some("text/event-stream")
        );
    });
}

#[test]
fn openai_stream_keeps_the_usage_chunk_the_client_asked_for() {
    let mut sim = sim(openai_cfg());
    let req = Request::post(
        "/v1/chat/completions",
        json!({"model":"gpt-4","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}).to_string(),
    );
    let rec = sim.run(req, UpstreamResponse::sse(OPENAI_STREAM)).unwrap();
    let events = json_events(rec.response.body_str());
    assert_eq!(events.last().unwrap()["usage"]["total_tokens"], 11);
}

/// A same-dialect stream as an OpenAI-compatible upstream may send it: a comment, an `id:`
/// line, spaces around a colon; the model name the client asked for.
const PASS_STREAM: &str = concat!(
    ": keep-alive\n\n",
    "id: 1\ndata: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\" : \"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n",
    "data: [DONE]\n\n"
);

/// The usage-only chunk of [`PASS_STREAM`].
const PASS_USAGE_ONLY: &str = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n";

#[test]
fn same_dialect_stream_is_the_upstream_bytes_at_every_split() {
    let mut sim = sim(openai_cfg());
    let asked = |stream_options: bool| {
        let mut body =
            json!({"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Hi"}]});
        if stream_options {
            body["stream_options"] = json!({"include_usage": true});
        }
        Request::post("/v1/chat/completions", body.to_string())
    };
    let stripped = PASS_STREAM.replace(PASS_USAGE_ONLY, "");
    assert_ne!(stripped, PASS_STREAM);
    for k in 1..=PASS_STREAM.len() {
        for (include_usage, want) in [(false, stripped.as_str()), (true, PASS_STREAM)] {
            let rec = sim
                .run(
                    asked(include_usage),
                    UpstreamResponse::sse(PASS_STREAM).chunked(k),
                )
                .unwrap();
            assert_eq!(
                rec.response.body_str(),
                want,
                "k={k}, include_usage={include_usage}"
            );
            assert_eq!(usage_prop(&rec)["total"], 11, "k={k}");
        }
    }
}

#[test]
fn same_dialect_stream_chunks_pass_unreplaced_until_the_usage_chunk() {
    // The client asks for the model the upstream reports: nothing in the events changes, so
    // every chunk before the usage-only chunk reaches the client as the upstream sent it
    // (same bytes, same boundaries); the usage-only chunk is dropped.
    let mut sim = sim(openai_cfg());
    let usage_start = PASS_STREAM.find(PASS_USAGE_ONLY).unwrap();
    for k in [7, 64, 100, 512] {
        let up = UpstreamResponse::sse(PASS_STREAM).chunked(k);
        let rec = sim.run(chat("gpt-4o", true), up.clone()).unwrap();
        let before = usage_start / k;
        assert!(before > 0, "k={k}");
        assert_eq!(
            rec.response.chunks.get(..before),
            up.chunks.get(..before),
            "k={k}"
        );
        assert!(!rec.response.body_str().contains("prompt_tokens"), "k={k}");
        assert_eq!(usage_prop(&rec)["total"], 11, "k={k}");
    }
}

#[test]
fn completions_and_embeddings_pass_with_mapping_and_usage() {
    let mut sim = sim(
        json!({"providers":[{"type":"openai","api_keys":["k"],"model_mapping":{"emb":"text-embedding-3-small"}}]}),
    );
    let rec = sim
        .run(
            Request::post("/v1/embeddings", r#"{"model":"emb","input":"The food was delicious"}"#),
            UpstreamResponse::json(
                200,
                r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023,-0.0093]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}"#,
            ),
        )
        .unwrap();
    let up = rec.upstream_request.clone().unwrap();
    assert_eq!(up.header(":path"), Some("/v1/embeddings"));
    assert_eq!(up.json()["model"], "text-embedding-3-small");
    assert_eq!(rec.response.json()["data"][0]["embedding"][1], -0.0093);
    assert_eq!(usage_prop(&rec)["input"], 5);

    let rec = sim
        .run(
            Request::post("/v1/completions", r#"{"model":"gpt-3.5-turbo-instruct","prompt":"Say this","max_tokens":7}"#),
            UpstreamResponse::json(
                200,
                r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct","choices":[{"text":"\n\nThis is","index":0,"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#,
            ),
        )
        .unwrap();
    assert_eq!(
        rec.upstream_request.clone().unwrap().header(":path"),
        Some("/v1/completions")
    );
    assert_eq!(rec.response.json()["choices"][0]["text"], "\n\nThis is");
    assert_eq!(usage_prop(&rec)["output"], 7);
}

#[test]
fn models_are_answered_from_config() {
    let mut sim = sim(
        json!({"providers":[{"type":"openai","models":["gpt-4o","o3"],"model_mapping":{"gpt-4":"gpt-4o","claude-*":"gpt-4o"}}]}),
    );
    let rec = sim
        .run(
            Request::get("/v1/models"),
            UpstreamResponse::json(500, "unused"),
        )
        .unwrap();
    assert!(rec.upstream_request.is_none());
    assert_eq!(rec.response.status, 200);
    let body = rec.response.json();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["gpt-4o", "o3", "gpt-4"]);
}

// ---- errors ---------------------------------------------------------------------------------

#[test]
fn bad_requests_get_errors_in_the_clients_protocol() {
    let mut sim = sim(openai_cfg());
    let rec = sim
        .run(
            Request::post("/v1/chat/completions", "{not json"),
            UpstreamResponse::json(200, OPENAI_ANSWER),
        )
        .unwrap();
    assert_eq!(rec.response.status, 400);
    let e = rec.response.json();
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert_eq!(e["error"]["code"], "invalid_json");
    let rec = sim
        .run(
            Request::post("/v1/messages", "[]"),
            UpstreamResponse::json(200, OPENAI_ANSWER),
        )
        .unwrap();
    assert_eq!(rec.response.status, 400);
    assert_eq!(rec.response.json()["type"], "error");
    assert_eq!(
        rec.response.json()["error"]["type"],
        "invalid_request_error"
    );
    let rec = sim
        .run(
            Request::post("/v1/files", "{}"),
            UpstreamResponse::json(200, "{}"),
        )
        .unwrap();
    assert_eq!(rec.response.status, 404);
    assert!(rec.upstream_request.is_none());
    // Too large for the configured limit: 413.
    let mut cfg = openai_cfg();
    cfg["max_request_body_bytes"] = json!(64);
    let mut small = sim_with(&cfg, 1);
    let rec = small
        .run(
            chat("gpt-4", false),
            UpstreamResponse::json(200, OPENAI_ANSWER),
        )
        .unwrap();
    assert_eq!(rec.response.status, 413);
    assert!(!small.vm_failed(0, 0));
}

#[test]
fn provider_errors_are_translated() {
    let mut sim = sim(anthropic_cfg());
    let rec = sim
        .run(
            chat("gpt-4o", false),
            UpstreamResponse::json(529, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011"}"#),
        )
        .unwrap();
    assert_eq!(rec.response.status, 503);
    let e = rec.response.json();
    assert_eq!(e["error"]["message"], "Overloaded");
    assert_eq!(e["error"]["code"], "overloaded_error");
    // OpenAI error to an Anthropic client.
    let mut sim = sim_with(&openai_cfg(), 1);
    let rec = sim
        .run(
            Request::post("/v1/messages", r#"{"model":"gpt-4","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#),
            UpstreamResponse::json(429, r#"{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#),
        )
        .unwrap();
    assert_eq!(rec.response.status, 429);
    assert_eq!(
        rec.response.json(),
        json!({"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached for gpt-4o"}})
    );
}

#[test]
fn unmappable_features_are_a_400_not_dropped() {
    let mut sim = sim(anthropic_cfg());
    let req = Request::post(
        "/v1/chat/completions",
        json!({"model":"gpt-4o","n":2,"messages":[{"role":"user","content":"hi"}]}).to_string(),
    );
    let rec = sim.run(req, UpstreamResponse::json(200, "{}")).unwrap();
    assert_eq!(rec.response.status, 400);
    assert_eq!(rec.response.json()["error"]["param"], "n");
}

// ---- Anthropic upstream for OpenAI clients --------------------------------------------------

const ANTHROPIC_TOOL_ANSWER: &str = r#"{"id":"msg_01Aq9w938a90dw8q","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"I'll check the weather."},{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather","input":{"location":"San Francisco, CA"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":91,"cache_creation_input_tokens":0,"cache_read_input_tokens":100}}"#;

#[test]
fn openai_client_to_anthropic_with_tools() {
    let mut sim = sim(anthropic_cfg());
    let req = Request::post(
        "/v1/chat/completions",
        json!({"model":"gpt-4o","max_tokens":1024,
               "messages":[{"role":"system","content":"Use tools."},{"role":"user","content":"Weather in SF?"}],
               "tools":[{"type":"function","function":{"name":"get_weather","description":"Get weather","parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}}]})
        .to_string(),
    );
    let rec = sim
        .run(req, UpstreamResponse::json(200, ANTHROPIC_TOOL_ANSWER))
        .unwrap();
    let up = rec.upstream_request.clone().unwrap();
    assert_eq!(up.header(":path"), Some("/v1/messages"));
    assert_eq!(up.header(":authority"), Some("api.anthropic.com"));
    assert_eq!(up.header("x-api-key"), Some("sk-ant-1"));
    assert_eq!(up.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(up.header("authorization"), None);
    let b = up.json();
    assert_eq!(b["model"], "claude-sonnet-4-20250514");
    assert_eq!(b["system"], "Use tools.");
    assert_eq!(b["tools"][0]["input_schema"]["required"][0], "location");
    let r = rec.response.json();
    assert_eq!(r["object"], "chat.completion");
    assert_eq!(r["model"], "gpt-4o");
    assert_eq!(r["choices"][0]["finish_reason"], "tool_calls");
    let call = &r["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap()
            ["location"],
        "San Francisco, CA"
    );
    assert_eq!(r["usage"]["prompt_tokens"], 572);
    let u = usage_prop(&rec);
    assert_eq!(
        (
            u["input"].as_u64(),
            u["output"].as_u64(),
            u["cached_input"].as_u64()
        ),
        (Some(572), Some(91), Some(100))
    );
}

const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-20250514\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1,\"cache_read_input_tokens\":5}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\": \\\"San\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" Francisco\\\"}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
);

fn check_openai_tool_stream(body: &str, k: usize) {
    assert_eq!(openai_text(body), "Hello", "k={k}: {body}");
    let events = json_events(body);
    let args: String = events
        .iter()
        .filter_map(|v| {
            v["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap()["location"],
        "San Francisco",
        "k={k}"
    );
    let name = events
        .iter()
        .find_map(|v| v["choices"][0]["delta"]["tool_calls"][0]["function"]["name"].as_str());
    assert_eq!(name, Some("get_weather"));
    assert!(events
        .iter()
        .any(|v| v["choices"][0]["finish_reason"] == "tool_calls"));
    assert!(events.iter().all(|v| v["model"] == "gpt-4o"), "k={k}");
    assert!(body.ends_with("data: [DONE]\n\n"));
}

#[test]
fn anthropic_stream_to_openai_at_every_split() {
    let mut sim = sim(anthropic_cfg());
    at_every_split(
        &mut sim,
        &chat("gpt-4o", true),
        &UpstreamResponse::sse(ANTHROPIC_STREAM),
        |_, k, rec| {
            assert_eq!(
                rec.upstream_request.as_ref().unwrap().json()["stream"],
                true
            );
            let body = rec.response.body_str();
            check_openai_tool_stream(&body, k);
            assert!(
                !body.contains("\"usage\":{"),
                "client did not ask for usage"
            );
            // Input counts cached prompt tokens too (OpenAI semantics): 25 + 5 read from cache.
            assert_eq!(
                usage_of(rec, ["input", "output", "cached_input"]),
                [Some(30), Some(15), Some(5)],
                "k={k}"
            );
        },
    );
}

// ---- Anthropic clients ----------------------------------------------------------------------

/// The events of an Anthropic stream as JSON, checked to open with `message_start` and end
/// with `message_stop` (`k` is the piece size, for the messages).
fn anthropic_events(body: &str, k: usize) -> Vec<Value> {
    let names: Vec<String> = sse_events(body)
        .into_iter()
        .filter_map(|(n, _)| n)
        .collect();
    assert_eq!(
        names.first().map(String::as_str),
        Some("message_start"),
        "k={k}: {body}"
    );
    assert_eq!(
        names.last().map(String::as_str),
        Some("message_stop"),
        "k={k}"
    );
    json_events(body)
}

/// The `delta.<field>` strings of Anthropic events, concatenated (`text`, `thinking`).
fn deltas(events: &[Value], field: &str) -> String {
    events
        .iter()
        .filter_map(|v| v["delta"][field].as_str())
        .collect()
}

fn messages(model: &str, stream: bool) -> Request {
    Request::post(
        "/v1/messages",
        json!({"model": model, "max_tokens": 256, "stream": stream, "system": "Be brief.",
               "messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}]})
        .to_string(),
    )
    .header("x-api-key", "client-key")
    .header("anthropic-version", "2023-06-01")
}

#[test]
fn anthropic_client_to_openai_upstream() {
    let mut sim = sim(openai_cfg());
    let rec = sim
        .run(
            messages("gpt-4", false),
            UpstreamResponse::json(200, OPENAI_ANSWER),
        )
        .unwrap();
    let up = rec.upstream_request.clone().unwrap();
    assert_eq!(up.header(":path"), Some("/v1/chat/completions"));
    assert_eq!(
        up.header("x-api-key"),
        None,
        "the client's key is not forwarded"
    );
    assert_eq!(up.header("authorization"), Some("Bearer sk-one"));
    let b = up.json();
    assert_eq!(
        b["messages"][0],
        json!({"role":"system","content":"Be brief."})
    );
    assert_eq!(b["model"], "gpt-4o");
    let r = rec.response.json();
    assert_eq!(r["type"], "message");
    assert_eq!(r["model"], "gpt-4");
    assert_eq!(r["content"][0], json!({"type":"text","text":"Hi there!"}));
    assert_eq!(r["stop_reason"], "end_turn");
    assert_eq!(r["usage"]["output_tokens"], 3);
}

#[test]
fn anthropic_client_streams_from_openai_at_every_split() {
    let mut sim = sim(openai_cfg());
    at_every_split(
        &mut sim,
        &messages("gpt-4", true),
        &UpstreamResponse::sse(OPENAI_STREAM),
        |_, k, rec| {
            let events = anthropic_events(&rec.response.body_str(), k);
            assert_eq!(deltas(&events, "text"), "Hello", "k={k}");
            let delta = events
                .iter()
                .find(|v| v["type"] == "message_delta")
                .unwrap();
            assert_eq!(delta["usage"]["output_tokens"], 2);
            assert_eq!(usage_prop(rec)["input"], 9);
        },
    );
}

#[test]
fn anthropic_to_anthropic_passes_with_mapping() {
    let mut sim = sim(
        json!({"providers":[{"type":"anthropic","api_keys":["sk-ant-1"],"model_mapping":{"claude-latest":"claude-sonnet-4-20250514"}}]}),
    );
    let rec = sim
        .run(
            messages("claude-latest", true),
            UpstreamResponse::sse(ANTHROPIC_STREAM).chunked(7),
        )
        .unwrap();
    let up = rec.upstream_request.clone().unwrap();
    assert_eq!(up.header("x-api-key"), Some("sk-ant-1"));
    assert_eq!(up.json()["model"], "claude-sonnet-4-20250514");
    let body = rec.response.body_str();
    assert!(body.contains("\"model\":\"claude-latest\""));
    assert!(!body.contains("claude-sonnet-4-20250514"));
    assert_eq!(sse_events(&body).len(), sse_events(ANTHROPIC_STREAM).len());
    assert_eq!(usage_prop(&rec)["output"], 15);
}

// ---- Gemini ---------------------------------------------------------------------------------

const GEMINI_STREAM: &str = concat!(
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 6,\"totalTokenCount\": 6},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"mZ8aaOvmHs\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"location\": \"San Francisco\"}}}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 6,\"candidatesTokenCount\": 12,\"totalTokenCount\": 30,\"thoughtsTokenCount\": 12},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"mZ8aaOvmHs\"}\r\n\r\n"
);

fn gemini_cfg() -> Value {
    json!({"providers":[{"type":"gemini","api_keys":["AIza-test"],"model":"gemini-2.5-flash"}]})
}

#[test]
fn gemini_stream_at_every_split() {
    let mut sim = sim(gemini_cfg());
    at_every_split(
        &mut sim,
        &chat("gpt-4o", true),
        &UpstreamResponse::sse(GEMINI_STREAM),
        |_, k, rec| {
            let up = rec.upstream_request.clone().unwrap();
            assert_eq!(
                up.header(":path"),
                Some("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
            );
            assert_eq!(up.header("x-goog-api-key"), Some("AIza-test"));
            assert_eq!(
                up.header(":authority"),
                Some("generativelanguage.googleapis.com")
            );
            let b = up.json();
            assert_eq!(b["systemInstruction"]["parts"][0]["text"], "Be brief.");
            assert_eq!(b["contents"][0]["parts"][0]["text"], "Hello");
            let body = rec.response.body_str();
            assert_eq!(openai_text(&body), "Hel", "k={k}");
            let events = json_events(&body);
            let call = events
                .iter()
                .find_map(|v| {
                    v["choices"][0]["delta"]["tool_calls"][0]["function"]
                        .as_object()
                        .cloned()
                })
                .unwrap();
            assert_eq!(call["name"], "get_weather");
            assert!(events
                .iter()
                .any(|v| v["choices"][0]["finish_reason"] == "tool_calls"));
            assert_eq!(
                usage_of(rec, ["input", "output", "reasoning"]),
                [Some(6), Some(24), Some(12)],
                "k={k}"
            );
        },
    );
}

#[test]
fn gemini_non_stream_client_gets_one_answer() {
    let mut sim = sim(gemini_cfg());
    let rec = sim
        .run(
            chat("gpt-4o", false),
            UpstreamResponse::sse(GEMINI_STREAM).chunked(13),
        )
        .unwrap();
    assert_eq!(
        rec.response.header("content-type"),
        Some("application/json")
    );
    let r = rec.response.json();
    assert_eq!(r["object"], "chat.completion");
    assert_eq!(r["model"], "gpt-4o");
    assert_eq!(r["choices"][0]["message"]["content"], "Hel");
    assert_eq!(
        r["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(r["usage"]["total_tokens"], 30);
    // An Anthropic client of Gemini.
    let rec = sim
        .run(
            messages("claude", false),
            UpstreamResponse::sse(GEMINI_STREAM),
        )
        .unwrap();
    let r = rec.response.json();
    assert_eq!(r["type"], "message");
    assert_eq!(r["content"][1]["type"], "tool_use");
    assert_eq!(r["stop_reason"], "tool_use");
}

#[test]
fn gemini_without_a_known_model_is_a_clear_400() {
    let mut sim = sim(
        json!({"providers":[{"type":"gemini","api_keys":["k"],"model_mapping":{"gpt-4o":"gemini-2.5-pro"}}]}),
    );
    let rec = sim
        .run(chat("gpt-4o", true), UpstreamResponse::sse(GEMINI_STREAM))
        .unwrap();
    assert_eq!(rec.response.status, 400);
    assert!(error_message(&rec).contains("x-aigw-model"));
    // With the header the model is mapped and goes into the URL.
    let rec = sim
        .run(
            chat("gpt-4o", true).header("x-aigw-model", "gpt-4o"),
            UpstreamResponse::sse(GEMINI_STREAM),
        )
        .unwrap();
    let up = rec.upstream_request.unwrap();
    assert_eq!(
        up.header(":path"),
        Some("/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse")
    );
    assert_eq!(up.header("x-aigw-model"), None);
}

#[test]
fn gemini_errors() {
    let mut sim = sim(gemini_cfg());
    let rec = sim
        .run(
            chat("gpt-4o", true),
            UpstreamResponse::json(429, r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#),
        )
        .unwrap();
    assert_eq!(rec.response.status, 429);
    assert_eq!(rec.response.json()["error"]["code"], "RESOURCE_EXHAUSTED");
}

// ---- Bedrock --------------------------------------------------------------------------------

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One AWS event-stream frame with string headers.
fn frame(headers: &[(&str, &str)], payload: &str) -> Vec<u8> {
    let mut hb = Vec::new();
    for (n, v) in headers {
        hb.push(n.len() as u8);
        hb.extend_from_slice(n.as_bytes());
        hb.push(7);
        hb.extend_from_slice(&(v.len() as u16).to_be_bytes());
        hb.extend_from_slice(v.as_bytes());
    }
    let total = 12 + hb.len() + payload.len() + 4;
    let mut f = Vec::new();
    f.extend_from_slice(&(total as u32).to_be_bytes());
    f.extend_from_slice(&(hb.len() as u32).to_be_bytes());
    let c = crc32(&f);
    f.extend_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&hb);
    f.extend_from_slice(payload.as_bytes());
    let c = crc32(&f);
    f.extend_from_slice(&c.to_be_bytes());
    f
}

fn event(kind: &str, payload: &str) -> Vec<u8> {
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

fn bedrock_stream() -> Vec<u8> {
    [
        event("messageStart", r#"{"p":"abcd","role":"assistant"}"#),
        event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hel"},"p":"ab"}"#),
        event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"lo"},"p":"abcdef"}"#),
        event("contentBlockStop", r#"{"contentBlockIndex":0,"p":"a"}"#),
        event("messageStop", r#"{"p":"abc","stopReason":"end_turn"}"#),
        event("metadata", r#"{"metrics":{"latencyMs":312},"p":"ab","usage":{"inputTokens":11,"outputTokens":4,"totalTokens":15}}"#),
    ]
    .concat()
}

fn bedrock_cfg() -> Value {
    json!({"providers":[{"type":"bedrock","bedrock_region":"us-west-2","api_keys":["ABSK-test"],
        "model":"anthropic.claude-3-5-sonnet-20240620-v1:0"}]})
}

fn bedrock_response(body: Vec<u8>) -> UpstreamResponse {
    answer::typed("application/vnd.amazon.eventstream", body)
}

#[test]
fn bedrock_event_stream_at_every_split() {
    let mut sim = sim(bedrock_cfg());
    let stream = bedrock_stream();
    at_every_split(
        &mut sim,
        &chat("claude", true),
        &bedrock_response(stream.clone()),
        |_, k, rec| {
            let up = rec.upstream_request.clone().unwrap();
            assert_eq!(
                up.header(":path"),
                Some("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream")
            );
            assert_eq!(
                up.header(":authority"),
                Some("bedrock-runtime.us-west-2.amazonaws.com")
            );
            assert_eq!(up.header("authorization"), Some("Bearer ABSK-test"));
            let b = up.json();
            assert_eq!(b["system"][0]["text"], "Be brief.");
            assert_eq!(b["messages"][0]["content"][0]["text"], "Hello");
            let body = rec.response.body_str();
            assert_eq!(openai_text(&body), "Hello", "k={k}: {body}");
            assert!(body.ends_with("data: [DONE]\n\n"));
            assert_eq!(usage_prop(rec)["total"], 15, "k={k}");
        },
    );
}

/// Bedrock with SigV4 credentials: `hold_headers` keeps the request headers until the body is
/// translated (Envoy's `allow_on_headers_stop_iteration`), then the plugin sets the model's
/// URL from the body and signs the translated body.
#[test]
fn bedrock_sigv4_signs_the_translated_body_while_headers_are_held() {
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let cfg = json!({"hold_headers": true, "providers":[{"type":"bedrock","bedrock_region":"us-west-2",
        "bedrock_access_key_id":"AKIDEXAMPLE","bedrock_secret_access_key":SECRET,
        "bedrock_session_token":"session-token-1",
        "model_mapping":{"claude":"anthropic.claude-3-5-sonnet-20240620-v1:0"}}]});
    let mut sim = Sim::new(SimOptions::default());
    sim.add_plugin(
        spec("ai-proxy")
            .config_json(cfg.to_string())
            .allow_on_headers_stop_iteration(true),
    )
    .unwrap();
    let rec = sim
        .run(
            chat("claude", true).chunked(7),
            bedrock_response(bedrock_stream()).chunked(13),
        )
        .unwrap();
    let up = rec.upstream_request.clone().expect("went upstream");
    assert!(up.complete);
    // The model in the URL came from the body (no `model`, no x-aigw-model header).
    let path = up.header(":path").unwrap_or_default().to_string();
    assert_eq!(
        path,
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
    );
    let host = up.header(":authority").unwrap_or_default().to_string();
    assert_eq!(host, "bedrock-runtime.us-west-2.amazonaws.com");
    // Signed over the body that was sent.
    let body = up.body.clone();
    let digest = ai_proxy::providers::bedrock::crypto::hex(&aigw_sha256(&body));
    assert_eq!(up.header("x-amz-content-sha256"), Some(digest.as_str()));
    assert_eq!(up.header("x-amz-security-token"), Some("session-token-1"));
    let date = up.header("x-amz-date").unwrap_or_default().to_string();
    assert_eq!(date.len(), 16, "{date}");
    let creds = ai_proxy::providers::bedrock::sigv4::Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: SECRET.into(),
        session_token: Some("session-token-1".into()),
    };
    let expected = ai_proxy::providers::bedrock::sigv4::sign_bedrock(
        &creds,
        &host,
        "us-west-2",
        &path,
        &body,
        &date,
    );
    let auth = up.header("authorization").unwrap_or_default();
    assert_eq!(auth, expected.authorization);
    assert!(auth.starts_with(&format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/us-west-2/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=",
        &date[..8]
    )));
    assert_eq!(up.header("content-type"), Some("application/json"));
    assert_eq!(up.json()["messages"][0]["content"][0]["text"], "Hello");
    // The client gets the translated stream; the secret is in no log line.
    assert_eq!(openai_text(rec.response.body_str()), "Hello");
    assert!(sim.logs().iter().all(|l| !l.message.contains(SECRET)));

    // A body the plugin cannot translate is answered while the headers are still held.
    let rec = sim
        .run(
            Request::post("/v1/chat/completions", "{not json").chunked(3),
            bedrock_response(bedrock_stream()),
        )
        .unwrap();
    assert!(rec.upstream_request.is_none());
    assert_eq!(rec.response.status, 400);
}

/// On Higress the `higress` build (ABI 0_2_100) gets held headers without any Envoy flag.
#[test]
fn hold_headers_on_higress_with_the_higress_build() {
    let cfg = json!({"hold_headers": true, "providers":[{"type":"gemini","api_keys":["g-key"],
        "model_mapping":{"*":"gemini-2.5-flash"}}]});
    let mut sim = load("ai-proxy-higress", 1, &cfg.to_string());
    let gemini = "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hi\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":1,\"totalTokenCount\":4}}\r\n\r\n";
    let rec = sim
        .run(
            chat("any-model", false).chunked(5),
            UpstreamResponse::sse(gemini.as_bytes().to_vec()),
        )
        .unwrap();
    let up = rec.upstream_request.expect("went upstream");
    // The model of the URL came from the body's mapping, with no header and no fixed model.
    assert_eq!(
        up.header(":path"),
        Some("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    );
    assert_eq!(up.header("x-goog-api-key"), Some("g-key"));
    assert_eq!(rec.response.status, 200);
    assert_eq!(
        rec.response.json()["choices"][0]["message"]["content"],
        "Hi"
    );
}

fn aigw_sha256(data: &[u8]) -> [u8; 32] {
    ai_proxy::providers::bedrock::crypto::sha256(data)
}

#[test]
fn bedrock_sigv4_needs_hold_headers() {
    let cfg = json!({"providers":[{"type":"bedrock","bedrock_region":"us-west-2",
        "bedrock_access_key_id":"AKIDEXAMPLE","bedrock_secret_access_key":"s"}]});
    let mut sim = Sim::new(SimOptions::default());
    let err = sim
        .add_plugin(spec("ai-proxy").config_json(cfg.to_string()))
        .unwrap_err();
    let logs: Vec<String> = sim.logs().into_iter().map(|l| l.message).collect();
    assert!(
        logs.iter()
            .any(|l| l.contains("providers[0].bedrock_access_key_id") && l.contains("hold_headers")),
        "{err:#}: {logs:?}"
    );
}

#[test]
fn bedrock_exception_in_stream_and_http_error() {
    let mut sim = sim(bedrock_cfg());
    let mut stream = vec![event("messageStart", r#"{"role":"assistant"}"#)];
    stream.push(frame(
        &[
            (":exception-type", "throttlingException"),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        r#"{"message":"Too many requests, please wait before trying again."}"#,
    ));
    let rec = sim
        .run(
            chat("claude", true),
            bedrock_response(stream.concat()).chunked(5),
        )
        .unwrap();
    let body = rec.response.body_str();
    let err = json_events(&body)
        .into_iter()
        .find(|v| v.get("error").is_some())
        .unwrap();
    assert_eq!(
        err["error"]["message"],
        "Too many requests, please wait before trying again."
    );
    let rec = sim
        .run(
            chat("claude", false),
            UpstreamResponse::json(
                400,
                r#"{"message":"The provided model identifier is invalid."}"#,
            )
            .header(
                "x-amzn-errortype",
                "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            ),
        )
        .unwrap();
    assert_eq!(rec.response.status, 400);
    assert_eq!(rec.response.json()["error"]["code"], "ValidationException");
}

// ---- Azure and presets ----------------------------------------------------------------------

#[test]
fn azure_and_presets_use_their_urls_and_auth() {
    let mut sim = sim(
        json!({"providers":[{"type":"azure","host":"myres.openai.azure.com","api_keys":["az-key"],
        "azure_deployment":"prod-gpt4o","azure_api_version":"2024-10-21"}]}),
    );
    let rec = sim
        .run(
            chat("gpt-4o", false),
            UpstreamResponse::json(200, OPENAI_ANSWER),
        )
        .unwrap();
    let up = rec.upstream_request.unwrap();
    assert_eq!(
        up.header(":path"),
        Some("/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21")
    );
    assert_eq!(up.header("api-key"), Some("az-key"));
    assert_eq!(up.header(":authority"), Some("myres.openai.azure.com"));
    assert_eq!(up.header("authorization"), None);

    for (kind, path, host) in [
        ("deepseek", "/chat/completions", "api.deepseek.com"),
        (
            "qwen",
            "/compatible-mode/v1/chat/completions",
            "dashscope.aliyuncs.com",
        ),
        ("moonshot", "/v1/chat/completions", "api.moonshot.cn"),
        ("zhipu", "/api/paas/v4/chat/completions", "open.bigmodel.cn"),
        ("groq", "/openai/v1/chat/completions", "api.groq.com"),
        ("openrouter", "/api/v1/chat/completions", "openrouter.ai"),
        ("mistral", "/v1/chat/completions", "api.mistral.ai"),
    ] {
        let mut sim = sim_with(&json!({"providers":[{"type":kind,"api_keys":["k1"]}]}), 1);
        let rec = sim
            .run(chat("m", false), UpstreamResponse::json(200, OPENAI_ANSWER))
            .unwrap();
        let up = rec.upstream_request.unwrap();
        assert_eq!(up.header(":path"), Some(path), "{kind}");
        assert_eq!(up.header(":authority"), Some(host), "{kind}");
        assert_eq!(up.header("authorization"), Some("Bearer k1"), "{kind}");
    }
    // A custom OpenAI-compatible server with a base path and no key; a cluster header.
    let mut sim = sim_with(
        &json!({"providers":[{"type":"openai-compatible","host":"vllm.internal:8000","base_path":"/api/v1","cluster":"vllm"}]}),
        1,
    );
    let rec = sim
        .run(chat("m", false), UpstreamResponse::json(200, OPENAI_ANSWER))
        .unwrap();
    let up = rec.upstream_request.unwrap();
    assert_eq!(up.header(":path"), Some("/api/v1/chat/completions"));
    assert_eq!(up.header("authorization"), None);
    assert_eq!(up.header("x-aigw-cluster"), Some("vllm"));
    // Embeddings are not served by Anthropic: 404 in the client's protocol.
    let mut sim = sim_with(&anthropic_cfg(), 1);
    let rec = sim
        .run(
            Request::post("/v1/embeddings", r#"{"model":"x","input":"a"}"#),
            UpstreamResponse::json(200, "{}"),
        )
        .unwrap();
    assert_eq!(rec.response.status, 404);
}

// ---- keys -----------------------------------------------------------------------------------

fn keys_cfg(selection: &str) -> Value {
    json!({"key_selection": selection, "key_cooldown_secs": 30,
           "providers":[{"type":"openai","api_keys":["sk-a","sk-b","sk-c"]}]})
}

fn used_key(rec: &StreamRecord) -> String {
    rec.upstream_request
        .as_ref()
        .unwrap()
        .header("authorization")
        .unwrap()
        .to_string()
}

#[test]
fn round_robin_and_cooldown_shared_by_workers() {
    let mut sim = sim_with(&keys_cfg("round_robin"), 2);
    let ok = || UpstreamResponse::json(200, OPENAI_ANSWER);
    let seen: Vec<String> = (0..3)
        .map(|_| used_key(&sim.run(chat("gpt-4o", false).worker(0), ok()).unwrap()))
        .collect();
    assert_eq!(seen, vec!["Bearer sk-a", "Bearer sk-b", "Bearer sk-c"]);
    // Worker 1 gets a 429 on sk-a: it cools down for every worker.
    let rec = sim
        .run(chat("gpt-4o", false).worker(1), UpstreamResponse::json(429, r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#))
        .unwrap();
    assert_eq!(used_key(&rec), "Bearer sk-a");
    assert_eq!(rec.response.status, 429);
    let next: Vec<String> = (0..4)
        .map(|_| used_key(&sim.run(chat("gpt-4o", false).worker(0), ok()).unwrap()))
        .collect();
    assert!(!next.contains(&"Bearer sk-a".to_string()), "{next:?}");
    assert!(
        sim.shared_keys("").iter().all(|k| !k.contains("sk-")),
        "no key in shared data"
    );
    // After the cooldown the key is used again.
    sim.advance(std::time::Duration::from_secs(31));
    let later: Vec<String> = (0..3)
        .map(|_| used_key(&sim.run(chat("gpt-4o", false).worker(0), ok()).unwrap()))
        .collect();
    assert!(later.contains(&"Bearer sk-a".to_string()), "{later:?}");
}

#[test]
fn consumer_sticky_keys() {
    let mut sim = sim(keys_cfg("consumer"));
    let ok = || UpstreamResponse::json(200, OPENAI_ANSWER);
    let k1: Vec<String> = (0..3)
        .map(|_| {
            used_key(
                &sim.run(
                    chat("gpt-4o", false).header("x-mse-consumer", "alice"),
                    ok(),
                )
                .unwrap(),
            )
        })
        .collect();
    assert!(k1.iter().all(|k| k == &k1[0]), "{k1:?}");
    let others: std::collections::HashSet<String> = ["bob", "carol", "dave", "erin", "frank"]
        .iter()
        .map(|c| {
            used_key(
                &sim.run(chat("gpt-4o", false).header("x-mse-consumer", c), ok())
                    .unwrap(),
            )
        })
        .collect();
    assert!(others.len() > 1, "consumers spread over keys: {others:?}");
}

// ---- failover through upstream mode ---------------------------------------------------------

fn failover_cfg() -> Value {
    json!({"mode":"upstream","providers":[
        {"id":"primary","type":"openai","endpoint":"10.0.0.1:443","api_keys":["sk-p"]},
        {"id":"backup","type":"anthropic","endpoint":"10.0.0.2:443","api_keys":["sk-ant-b"],
         "model_mapping":{"*":"claude-sonnet-4-20250514"}}]})
}

fn failover_route() -> Route {
    Route::new(vec![
        Endpoint::new("10.0.0.1:443", 0),
        Endpoint::new("10.0.0.2:443", 1),
    ])
    .retry_on(&["5xx", "429", "connect-failure", "reset"], 1)
}

fn run_failover(first: Upstream) -> host_sim::router::Routed {
    let mut down = Sim::new(Default::default());
    let mut up = down.sibling();
    up.add_plugin(spec("ai-proxy").config_json(failover_cfg().to_string()))
        .unwrap();
    down.run_routed(
        &mut up,
        &failover_route(),
        chat("gpt-4o", true),
        |ep, req| {
            if ep.priority == 0 {
                assert_eq!(req.header("authorization"), Some("Bearer sk-p"));
                assert_eq!(req.json()["stream_options"]["include_usage"], true);
                first.clone()
            } else {
                assert_eq!(req.header("x-api-key"), Some("sk-ant-b"));
                assert_eq!(req.header(":path"), Some("/v1/messages"));
                assert_eq!(req.json()["model"], "claude-sonnet-4-20250514");
                Upstream::Respond(UpstreamResponse::sse(ANTHROPIC_STREAM).chunked(17))
            }
        },
    )
    .unwrap()
}

#[test]
fn failover_to_anthropic_on_503_429_and_connect_failure() {
    for first in [
        Upstream::Respond(UpstreamResponse::json(
            503,
            r#"{"error":{"message":"The server is overloaded","type":"server_error","code":null}}"#,
        )),
        Upstream::Respond(UpstreamResponse::json(
            429,
            r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
        )),
        Upstream::ConnectFailure,
        Upstream::Reset,
    ] {
        let out = run_failover(first.clone());
        assert_eq!(out.attempts.len(), 2, "{first:?}");
        assert_eq!(out.attempts[1].endpoint.address, "10.0.0.2:443");
        let rec = out.record;
        assert_eq!(rec.response.status, 200, "{first:?}");
        let body = rec.response.body_str();
        check_openai_tool_stream(&body, 17);
        assert_eq!(rec.response.header("x-aigw-provider"), Some("backup"));
    }
}

#[test]
fn failover_exhausted_gives_an_openai_error() {
    let mut down = Sim::new(Default::default());
    let mut up = down.sibling();
    up.add_plugin(spec("ai-proxy").config_json(failover_cfg().to_string()))
        .unwrap();
    let out = down
        .run_routed(&mut up, &failover_route(), chat("gpt-4o", false), |_, _| {
            Upstream::Respond(UpstreamResponse::json(
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ))
        })
        .unwrap();
    assert_eq!(out.attempts.len(), 2);
    // The last attempt went to the Anthropic backup; its error is in OpenAI shape.
    assert_eq!(out.record.response.status, 503);
    assert_eq!(out.record.response.json()["error"]["message"], "Overloaded");
}

#[test]
fn unknown_upstream_address_is_a_502() {
    let mut down = Sim::new(Default::default());
    let mut up = down.sibling();
    up.add_plugin(spec("ai-proxy").config_json(failover_cfg().to_string()))
        .unwrap();
    let route = Route::new(vec![Endpoint::new("10.9.9.9:443", 0)]);
    let out = down
        .run_routed(&mut up, &route, chat("gpt-4o", false), |_, _| {
            Upstream::Respond(UpstreamResponse::json(200, OPENAI_ANSWER))
        })
        .unwrap();
    assert_eq!(out.record.response.status, 502);
    assert!(error_message(&out.record).contains("10.9.9.9:443"));
}

#[test]
fn bad_config_is_one_clear_error() {
    assert_configs_rejected(
        "ai-proxy",
        &[(
            r#"{"providers":[{"type":"openai","model_mapping":{"~(":"x"}}]}"#,
            "ai-proxy: invalid config: providers[0].model_mapping",
        )],
    );
}

#[test]
fn the_example_config_proxies_a_chat() {
    let raw = aigw_test_kit::read_example_config("ai-proxy");
    let mut sim = Sim::new(Default::default());
    sim.add_plugin(spec("ai-proxy").config_json(raw)).unwrap();
    let rec = sim
        .run(
            chat("claude-3-haiku", false),
            UpstreamResponse::json(200, OPENAI_ANSWER),
        )
        .unwrap();
    let up = rec.upstream_request.unwrap();
    assert_eq!(up.json()["model"], "gpt-4o-mini");
    assert_eq!(up.header("x-aigw-cluster"), Some("llm"));
    assert_eq!(up.header("authorization"), Some("Bearer sk-demo-1"));
    assert_eq!(rec.response.json()["model"], "claude-3-haiku");
}

// ---- DashScope native (qwen-native) ----------------------------------------------------------

/// A DashScope native stream as `X-DashScope-SSE: enable` + `incremental_output: true` sends
/// it: `id:` / `event:result` / `:HTTP_STATUS/200` comment / `data:` with cumulative usage and
/// the string "null" as finish_reason while generating.
const DASHSCOPE_STREAM: &str = concat!(
    "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"reasoning_content\":\"The user greets.\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":27,\"output_tokens\":4,\"input_tokens\":23,\"output_tokens_details\":{\"reasoning_tokens\":4}},\"request_id\":\"c3b1f3e2-5d4a-9d7e-a1b2-7f0e3d2c1b00\"}\n\n",
    "id:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"Hello\",\"reasoning_content\":\"\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":28,\"output_tokens\":5,\"input_tokens\":23,\"output_tokens_details\":{\"reasoning_tokens\":4}},\"request_id\":\"c3b1f3e2-5d4a-9d7e-a1b2-7f0e3d2c1b00\"}\n\n",
    "id:3\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"! 你好。\",\"reasoning_content\":\"\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":31,\"output_tokens\":8,\"input_tokens\":23,\"output_tokens_details\":{\"reasoning_tokens\":4}},\"request_id\":\"c3b1f3e2-5d4a-9d7e-a1b2-7f0e3d2c1b00\"}\n\n",
    "id:4\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"reasoning_content\":\"\",\"role\":\"assistant\"},\"finish_reason\":\"stop\"}]},\"usage\":{\"total_tokens\":31,\"output_tokens\":8,\"input_tokens\":23,\"prompt_tokens_details\":{\"cached_tokens\":16},\"output_tokens_details\":{\"reasoning_tokens\":4}},\"request_id\":\"c3b1f3e2-5d4a-9d7e-a1b2-7f0e3d2c1b00\"}\n\n",
);

fn dashscope_cfg() -> Value {
    json!({"providers":[{"id":"bailian","type":"qwen-native","api_keys":["sk-ds-1"],
        "model_mapping":{"gpt-4o":"qwen-plus","*":"qwen-turbo"}}]})
}

fn dashscope_sse(body: &str) -> UpstreamResponse {
    answer::typed("text/event-stream;charset=UTF-8", body)
}

#[test]
fn dashscope_native_request_shape_and_stream_at_every_split() {
    let mut sim = sim(dashscope_cfg());
    let req = || {
        Request::post(
            "/v1/chat/completions",
            json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
                   "temperature": 0.3, "max_tokens": 64, "top_k": 20,
                   "tools": [{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
                   "messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}]})
            .to_string(),
        )
        .header("authorization", "Bearer client-key")
    };
    at_every_split(
        &mut sim,
        &req(),
        &dashscope_sse(DASHSCOPE_STREAM),
        |_, k, rec| {
            let up = rec.upstream_request.clone().unwrap();
            assert_eq!(
                up.header(":path"),
                Some("/api/v1/services/aigc/text-generation/generation")
            );
            assert_eq!(up.header(":authority"), Some("dashscope.aliyuncs.com"));
            assert_eq!(up.header("authorization"), Some("Bearer sk-ds-1"));
            assert_eq!(up.header("x-dashscope-sse"), Some("enable"));
            assert_eq!(up.header("accept"), Some("text/event-stream"));
            let b = up.json();
            assert_eq!(b["model"], "qwen-plus");
            assert_eq!(
                b["input"]["messages"],
                json!([{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}])
            );
            let p = &b["parameters"];
            assert_eq!(p["result_format"], "message");
            assert_eq!(p["incremental_output"], true);
            assert_eq!(
                (
                    p["temperature"].as_f64(),
                    p["max_tokens"].as_u64(),
                    p["top_k"].as_u64()
                ),
                (Some(0.3), Some(64), Some(20))
            );
            assert_eq!(p["tools"][0]["function"]["name"], "get_weather");
            assert!(b.get("stream").is_none() && b.get("messages").is_none());

            assert_eq!(rec.response.status, 200);
            assert_eq!(
                rec.response.header("content-type"),
                Some("text/event-stream")
            );
            let body = rec.response.body_str();
            assert!(
                !body.contains("HTTP_STATUS") && !body.contains("output"),
                "k={k}: {body}"
            );
            assert_eq!(openai_text(&body), "Hello! 你好。", "k={k}");
            let events = json_events(&body);
            assert!(events
                .iter()
                .all(|e| e["object"] == "chat.completion.chunk"));
            assert!(events.iter().all(|e| e["model"] == "gpt-4o"));
            assert_eq!(
                events[1]["choices"][0]["delta"]["reasoning_content"],
                "The user greets."
            );
            let fin = events
                .iter()
                .filter(|e| e["choices"][0]["finish_reason"].is_string())
                .collect::<Vec<_>>();
            assert_eq!(fin.len(), 1, "k={k}");
            assert_eq!(fin[0]["choices"][0]["finish_reason"], "stop");
            let last = events.last().unwrap();
            assert_eq!(last["choices"], json!([]));
            assert_eq!(
                (
                    last["usage"]["prompt_tokens"].as_u64(),
                    last["usage"]["completion_tokens"].as_u64(),
                    last["usage"]["total_tokens"].as_u64()
                ),
                (Some(23), Some(8), Some(31)),
                "k={k}"
            );
            assert!(body.ends_with("data: [DONE]\n\n"), "k={k}");
            let u = usage_prop(rec);
            assert_eq!(
                (
                    u["input"].as_u64(),
                    u["output"].as_u64(),
                    u["cached_input"].as_u64(),
                    u["reasoning"].as_u64()
                ),
                (Some(23), Some(8), Some(16), Some(4)),
                "k={k}"
            );
            assert_eq!(u["provider"], "bailian");
            assert_eq!(u["model"], "qwen-plus");
        },
    );
    // Without include_usage the usage chunk is not shown (but still published).
    let rec = sim
        .run(
            chat("gpt-4o", true),
            dashscope_sse(DASHSCOPE_STREAM).chunked(9),
        )
        .unwrap();
    let body = rec.response.body_str();
    assert!(!body.contains("prompt_tokens"), "{body}");
    assert_eq!(usage_prop(&rec)["total"], 31);
}

#[test]
fn dashscope_native_non_stream_client_gets_one_answer() {
    let mut sim = sim(dashscope_cfg());
    // The upstream is always streamed; a non-stream client gets one chat completion.
    let rec = sim
        .run(
            chat("gpt-4o", false),
            dashscope_sse(DASHSCOPE_STREAM).chunked(17),
        )
        .unwrap();
    let up = rec.upstream_request.clone().unwrap();
    assert_eq!(up.header("x-dashscope-sse"), Some("enable"));
    assert_eq!(
        rec.response.header("content-type"),
        Some("application/json")
    );
    let r = rec.response.json();
    assert_eq!(r["object"], "chat.completion");
    assert_eq!(r["model"], "gpt-4o");
    assert_eq!(r["choices"][0]["message"]["content"], "Hello! 你好。");
    assert_eq!(
        r["choices"][0]["message"]["reasoning_content"],
        "The user greets."
    );
    assert_eq!(r["choices"][0]["finish_reason"], "stop");
    assert_eq!(r["usage"]["total_tokens"], 31);
    // A JSON answer (the gateway or DashScope ignored the SSE header) is translated whole.
    let answer = r#"{"output":{"choices":[{"finish_reason":"tool_calls","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":"{\"city\": \"Hangzhou\"}"},"index":0,"id":"call_4d5e6f","type":"function"}]}}]},"usage":{"total_tokens":220,"output_tokens":18,"input_tokens":202},"request_id":"8f6b1c2d-0000-4e5f-9a8b-1234567890ab"}"#;
    let rec = sim
        .run(chat("gpt-4o", false), UpstreamResponse::json(200, answer))
        .unwrap();
    let r = rec.response.json();
    assert_eq!(r["choices"][0]["finish_reason"], "tool_calls");
    let call = &r["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "call_4d5e6f");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(r["usage"]["prompt_tokens"], 202);
    assert_eq!(usage_prop(&rec)["output"], 18);
}

#[test]
fn anthropic_client_streams_from_dashscope_native_at_every_split() {
    let mut sim = sim(dashscope_cfg());
    for k in (1..=DASHSCOPE_STREAM.len()).step_by(3) {
        let rec = sim
            .run(
                messages("claude-sonnet-4", true),
                dashscope_sse(DASHSCOPE_STREAM).chunked(k),
            )
            .unwrap();
        let up = rec.upstream_request.clone().unwrap();
        let b = up.json();
        assert_eq!(b["model"], "qwen-turbo");
        assert_eq!(b["input"]["messages"][0]["role"], "system");
        assert_eq!(b["parameters"]["max_tokens"], 256);
        assert_eq!(up.header("x-api-key"), None);
        let events = anthropic_events(&rec.response.body_str(), k);
        assert_eq!(deltas(&events, "text"), "Hello! 你好。", "k={k}");
        assert_eq!(deltas(&events, "thinking"), "The user greets.", "k={k}");
        let delta = events
            .iter()
            .find(|v| v["type"] == "message_delta")
            .unwrap();
        assert_eq!(delta["delta"]["stop_reason"], "end_turn");
        assert_eq!(delta["usage"]["output_tokens"], 8);
        assert_eq!(usage_prop(&rec)["input"], 23);
    }
}

#[test]
fn dashscope_native_errors() {
    let mut sim = sim(dashscope_cfg());
    // HTTP error with DashScope's body.
    let rec = sim
        .run(
            chat("gpt-4o", true),
            UpstreamResponse::json(
                401,
                r#"{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"fb53c4ec-1c12-4fc4-a580-cdb7c3261fc1"}"#,
            ),
        )
        .unwrap();
    assert_eq!(rec.response.status, 401);
    let e = rec.response.json();
    assert_eq!(e["error"]["code"], "InvalidApiKey");
    assert_eq!(e["error"]["type"], "authentication_error");
    assert_eq!(e["error"]["message"], "Invalid API-key provided.");
    // An error framed as an SSE event on an HTTP error status, to an Anthropic client.
    let framed = "id:1\nevent:error\n:HTTP_STATUS/429\ndata:{\"code\":\"Throttling.RateQuota\",\"message\":\"Requests rate limit exceeded, please try again later.\",\"request_id\":\"r-2\"}\n\n";
    let mut resp = dashscope_sse(framed);
    resp.status = 429;
    let rec = sim.run(messages("claude", true), resp).unwrap();
    assert_eq!(rec.response.status, 429);
    let e = rec.response.json();
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["type"], "rate_limit_error");
    // An error event inside a 200 stream ends the OpenAI stream with an error event.
    let mid = format!(
        "{}id:2\nevent:error\n:HTTP_STATUS/400\ndata:{{\"code\":\"DataInspectionFailed\",\"message\":\"Output data may contain inappropriate content.\",\"request_id\":\"r-3\"}}\n\n",
        DASHSCOPE_STREAM.split("id:2").next().unwrap()
    );
    let rec = sim
        .run(chat("gpt-4o", true), dashscope_sse(&mid).chunked(5))
        .unwrap();
    let events = json_events(rec.response.body_str());
    let last = events.last().unwrap();
    assert_eq!(last["error"]["code"], "DataInspectionFailed");
    assert_eq!(last["error"]["type"], "invalid_request_error");
    // Image input is a clear 400 before anything is sent.
    let rec = sim
        .run(
            Request::post(
                "/v1/chat/completions",
                json!({"model":"gpt-4o","messages":[{"role":"user","content":[
                    {"type":"text","text":"What is this?"},
                    {"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]})
                .to_string(),
            ),
            dashscope_sse(DASHSCOPE_STREAM),
        )
        .unwrap();
    assert_eq!(rec.response.status, 400);
    let e = rec.response.json();
    assert_eq!(e["error"]["param"], "messages[0].content[1]");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("takes text only"));
    // Embeddings are not served natively: 404.
    let rec = sim
        .run(
            Request::post(
                "/v1/embeddings",
                json!({"model":"text-embedding-v3","input":"hi"}).to_string(),
            ),
            UpstreamResponse::json(200, "{}"),
        )
        .unwrap();
    assert_eq!(rec.response.status, 404);
}

#[test]
fn a_body_with_a_repeated_key_is_a_400_in_the_clients_protocol() {
    let mut sim = sim(openai_cfg());
    // A last-wins and a first-wins parser would call different models.
    let rec = sim
        .run(
            Request::post(
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"model":"gpt-4o"}"#,
            ),
            UpstreamResponse::json(200, "{}"),
        )
        .unwrap();
    assert_eq!(rec.response.status, 400, "{}", rec.response.body_str());
    assert!(rec.upstream_request.as_ref().is_none_or(|u| !u.complete));
    let err = rec.response.json();
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(err["error"]["code"], "invalid_json");
    assert_eq!(err["error"]["param"], "model");
    // Anthropic clients get the Anthropic shape, for a repeat deeper in the body too.
    let mut sim = self::sim(anthropic_cfg());
    let rec = sim
        .run(
            Request::post(
                "/v1/messages",
                r#"{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"a","content":"b"}]}"#,
            ),
            UpstreamResponse::json(200, "{}"),
        )
        .unwrap();
    assert_eq!(rec.response.status, 400);
    let err = rec.response.json();
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "invalid_request_error");
}

#[test]
fn an_upstream_error_that_echoes_the_providers_key_never_reaches_the_client() {
    let key = "sk-proj-gateway-0123456789abcdef";
    let cfg = json!({"providers":[{"id":"oai","type":"openai","api_keys":[key]}]});
    let echo = UpstreamResponse::json(
        401,
        format!(
            r#"{{"error":{{"message":"Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
        ),
    );
    // OpenAI client.
    let mut s = sim(cfg.clone());
    let rec = s.run(chat("gpt-4o", false), echo.clone()).unwrap();
    assert_eq!(
        rec.upstream_request
            .as_ref()
            .unwrap()
            .header("authorization"),
        Some(format!("Bearer {key}").as_str()),
        "the key does go upstream"
    );
    let body = rec.response.body_str();
    assert!(!body.contains(key), "{body}");
    let err = rec.response.json();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Incorrect API key provided: [REDACTED]"),
        "{err}"
    );
    // Anthropic client of the same provider.
    let mut s = sim(cfg);
    let rec = s
        .run(
            Request::post(
                "/v1/messages",
                r#"{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
            ),
            echo,
        )
        .unwrap();
    let body = rec.response.body_str();
    assert!(!body.contains(key), "{body}");
    assert_eq!(rec.response.json()["type"], "error", "{body}");
}
