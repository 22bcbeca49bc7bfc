//! ai-proxy and the OpenAI Responses API in host-sim (dist/ai-proxy.wasm): Responses clients
//! in front of other providers, OpenAI upstreams called through the Responses API, and model
//! lookup (`GET /v1/models/{id}`).
//!
//! Payloads follow OpenAI's documented Responses objects and Anthropic's Messages shapes.

use aigw_test_kit::{at_every_split, load, spec, sse};
use host_sim::{Request, Sim, SimOptions, UpstreamResponse};
use serde_json::{json, Value};

fn sim(config: Value) -> Sim {
    load("ai-proxy", 1, &config.to_string())
}

fn responses(body: Value) -> Request {
    Request::post("/v1/responses", body.to_string()).header("authorization", "Bearer sk-client")
}

const ANTHROPIC_ANSWER: &str = r#"{"id":"msg_01A","type":"message","role":"assistant","model":"claude-sonnet-4-20250514",
  "content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Paris"}}],
  "stop_reason":"tool_use","stop_sequence":null,
  "usage":{"input_tokens":30,"output_tokens":12,"cache_read_input_tokens":8}}"#;

#[test]
fn responses_client_to_anthropic_upstream() {
    let mut sim = sim(
        json!({"providers":[{"id":"claude","type":"anthropic","api_keys":["sk-ant-gw"],
        "model_mapping":{"gpt-4.1":"claude-sonnet-4-20250514"}}]}),
    );
    let rec = sim
        .run(
            responses(json!({
                "model": "gpt-4.1", "instructions": "Be brief.", "max_output_tokens": 100,
                "input": [{"role": "user", "content": "Weather in Paris?"}],
                "tools": [{"type": "function", "name": "get_weather",
                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                "store": false
            })),
            UpstreamResponse::json(200, ANTHROPIC_ANSWER),
        )
        .unwrap();
    let up = rec.upstream_request.clone().expect("sent upstream");
    assert_eq!(up.header(":path"), Some("/v1/messages"));
    assert_eq!(up.header("x-api-key"), Some("sk-ant-gw"));
    let b = up.json();
    assert_eq!(b["model"], "claude-sonnet-4-20250514");
    assert_eq!(b["system"], "Be brief.");
    assert_eq!(b["max_tokens"], 100);
    assert_eq!(b["messages"][0]["content"], "Weather in Paris?");
    assert_eq!(b["tools"][0]["name"], "get_weather");

    assert_eq!(rec.response.status, 200);
    let r = rec.response.json();
    assert_eq!(r["object"], "response");
    assert!(r["id"].as_str().unwrap().starts_with("resp_"), "{r}");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["model"], "gpt-4.1", "the requested model is reported");
    assert_eq!(r["output"][0]["type"], "message");
    assert_eq!(r["output"][0]["content"][0]["text"], "Checking.");
    assert_eq!(r["output"][1]["type"], "function_call");
    assert_eq!(r["output"][1]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(r["output"][1]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(
        r["usage"]["input_tokens"], 38,
        "cache reads are part of input"
    );
    assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 8);
    assert_eq!(r["usage"]["output_tokens"], 12);
    let usage: Value = serde_json::from_slice(rec.filter_state.get("aigw.usage").unwrap()).unwrap();
    assert_eq!(usage["input"], 38);
}

#[test]
fn responses_features_another_upstream_cannot_honour_are_refused() {
    let mut sim = sim(json!({"providers":[{"type":"anthropic","api_keys":["k-123456"]}]}));
    for (body, param) in [
        (
            json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
        (
            json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}),
            "tools[0]",
        ),
    ] {
        let rec = sim
            .run(responses(body), UpstreamResponse::json(500, "unused"))
            .unwrap();
        assert_eq!(rec.response.status, 400);
        assert_eq!(rec.response.json()["error"]["param"], param);
    }
}

const RESPONSES_ANSWER: &str = r#"{"id":"resp_67ccd2","object":"response","created_at":1741476542,"status":"completed",
  "model":"gpt-4.1-2025-04-14","output":[{"type":"message","id":"msg_67ccd2","status":"completed","role":"assistant",
  "content":[{"type":"output_text","text":"Hello there.","annotations":[]}]}],
  "usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,
  "output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}}"#;

#[test]
fn responses_client_passes_through_to_openai() {
    let mut sim = sim(
        json!({"providers":[{"type":"openai","api_keys":["sk-gw-123"],
        "model_mapping":{"fast":"gpt-4.1"}}]}),
    );
    let request = json!({"model": "fast", "input": "hi", "previous_response_id": "resp_0",
        "tools": [{"type": "web_search"}]});
    let rec = sim
        .run(
            responses(request),
            UpstreamResponse::json(200, RESPONSES_ANSWER),
        )
        .unwrap();
    let up = rec.upstream_request.clone().unwrap();
    assert_eq!(up.header(":path"), Some("/v1/responses"));
    assert_eq!(up.header("authorization"), Some("Bearer sk-gw-123"));
    let b = up.json();
    assert_eq!(b["model"], "gpt-4.1");
    assert_eq!(
        b["previous_response_id"], "resp_0",
        "stateful fields reach an upstream that keeps state"
    );
    assert_eq!(b["tools"][0]["type"], "web_search");
    let r = rec.response.json();
    assert_eq!(r["id"], "resp_67ccd2");
    assert_eq!(r["model"], "fast");
    assert_eq!(r["output"][0]["content"][0]["text"], "Hello there.");
    let usage: Value = serde_json::from_slice(rec.filter_state.get("aigw.usage").unwrap()).unwrap();
    assert_eq!(
        (usage["input"].as_u64(), usage["output"].as_u64()),
        (Some(36), Some(87))
    );
}

#[test]
fn chat_client_to_an_openai_upstream_on_the_responses_api() {
    let mut sim =
        sim(json!({"providers":[{"type":"openai","api":"responses","api_keys":["sk-gw-123"]}]}));
    let rec = sim
        .run(
            Request::post(
                "/v1/chat/completions",
                json!({"model": "gpt-4.1", "max_tokens": 50, "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"}]})
                .to_string(),
            ),
            UpstreamResponse::json(200, RESPONSES_ANSWER),
        )
        .unwrap();
    let up = rec.upstream_request.clone().unwrap();
    assert_eq!(up.header(":path"), Some("/v1/responses"));
    let b = up.json();
    assert_eq!(b["instructions"], "Be brief.");
    assert_eq!(b["input"], json!([{"role": "user", "content": "hi"}]));
    assert_eq!(b["max_output_tokens"], 50);
    assert_eq!(b["store"], false, "the gateway keeps no state upstream");
    let r = rec.response.json();
    assert_eq!(r["object"], "chat.completion");
    assert_eq!(r["choices"][0]["message"]["content"], "Hello there.");
    assert_eq!(r["choices"][0]["finish_reason"], "stop");
    assert_eq!(r["usage"]["total_tokens"], 123);

    // Other OpenAI endpoints keep their own API on such a provider.
    let rec = sim
        .run(
            Request::post(
                "/v1/embeddings",
                json!({"model": "text-embedding-3-small", "input": "x"}).to_string(),
            ),
            UpstreamResponse::json(200, r#"{"object":"list","data":[],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}"#),
        )
        .unwrap();
    assert_eq!(
        rec.upstream_request.unwrap().header(":path"),
        Some("/v1/embeddings")
    );
}

#[test]
fn responses_api_needs_a_provider_that_serves_it() {
    let mut sim = Sim::new(SimOptions::default());
    let err = sim
        .add_plugin(
            spec("ai-proxy").config_json(
                json!({"providers":[{"type":"anthropic","api":"responses","api_keys":["k"]}]})
                    .to_string(),
            ),
        )
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("providers[0].api"), "{text}");
}

#[test]
fn model_lookup_by_id() {
    let mut sim = sim(json!({
        "providers":[{"type":"openai","models":["gpt-4o","meta-llama/Llama-3.1-8B"],
                      "model_mapping":{"claude-*":"gpt-4o"}}],
        "allowed_models_header": "x-aigw-allowed-models"}));
    let get = |sim: &mut Sim, path: &str, policy: Option<&str>| {
        let mut r = Request::get(path);
        if let Some(p) = policy {
            r = r.header("x-aigw-allowed-models", p);
        }
        let rec = sim.run(r, UpstreamResponse::json(500, "unused")).unwrap();
        assert!(rec.upstream_request.is_none(), "answered by the gateway");
        (rec.response.status, rec.response.json())
    };
    let (status, body) = get(&mut sim, "/v1/models/gpt-4o", None);
    assert_eq!(status, 200);
    assert_eq!(body["id"], "gpt-4o");
    assert_eq!(body["object"], "model");
    let (status, body) = get(&mut sim, "/v1/models/meta-llama/Llama-3.1-8B", None);
    assert_eq!(
        (status, body["id"].as_str()),
        (200, Some("meta-llama/Llama-3.1-8B"))
    );
    let (status, body) = get(&mut sim, "/v1/models/claude-3-haiku", None);
    assert_eq!(
        (status, body["id"].as_str()),
        (200, Some("claude-3-haiku")),
        "routed by a mapping rule"
    );
    let (status, body) = get(&mut sim, "/v1/models/gpt-5-nope", None);
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    let only_o3 = get(&mut sim, "/v1/models/gpt-4o", Some("o3"));
    assert_eq!(only_o3.0, 404, "a consumer only sees its own models");
}

/// An Anthropic stream with a text block in three deltas and a tool call whose arguments come
/// in three `input_json_delta`s; the prompt partly read from and written to the cache.
const ANTHROPIC_TOOL_STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01Stream\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-20250514\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":20,\"cache_creation_input_tokens\":4,\"cache_read_input_tokens\":6,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me \"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"check \\u00e9t\\u00e9 \"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"weather.\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01Weather\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Pa\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ris\\\", \\\"unit\\\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\": \\\"c\\\"}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":17}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
);

/// The (event name, data) pairs of an SSE body; every data line must be JSON.
fn sse_json(body: &str) -> Vec<(String, Value)> {
    sse::events(body)
        .into_iter()
        .map(|e| {
            let v = serde_json::from_str(&e.data)
                .unwrap_or_else(|err| panic!("data is not JSON ({err}): {}", e.data));
            (e.name.unwrap_or_default(), v)
        })
        .collect()
}

#[test]
fn responses_stream_from_anthropic_at_every_split() {
    let mut sim = sim(
        json!({"providers":[{"id":"claude","type":"anthropic","api_keys":["sk-ant-gw"],
        "model_mapping":{"gpt-4.1":"claude-sonnet-4-20250514"}}]}),
    );
    let request = json!({
        "model": "gpt-4.1", "stream": true,
        "input": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"type": "function", "name": "get_weather",
                   "parameters": {"type": "object", "properties": {
                       "city": {"type": "string"}, "unit": {"type": "string"}}}}]
    });
    // Event names in order, runs of deltas folded into one entry.
    let expected_order = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ];
    at_every_split(
        &mut sim,
        &responses(request.clone()),
        &UpstreamResponse::sse(ANTHROPIC_TOOL_STREAM),
        |_, k, rec| {
            let up = rec.upstream_request.as_ref().expect("sent upstream");
            assert_eq!(up.header(":path"), Some("/v1/messages"));
            assert_eq!(up.json()["stream"], true);
            assert_eq!(rec.response.status, 200);
            let body = rec.response.body_str();
            let events = sse_json(&body);

            let mut order: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
            order.dedup();
            assert_eq!(order, expected_order, "k={k}: {body}");
            for (i, (name, data)) in events.iter().enumerate() {
                assert_eq!(data["type"], name.as_str(), "k={k}");
                assert_eq!(data["sequence_number"], i, "k={k}");
            }

            let text: String = events
                .iter()
                .filter(|(n, _)| n == "response.output_text.delta")
                .filter_map(|(_, d)| d["delta"].as_str())
                .collect();
            assert_eq!(text, "Let me check été weather.", "k={k}");
            let text_done = events
                .iter()
                .find(|(n, _)| n == "response.output_text.done")
                .map(|(_, d)| d["text"].clone());
            assert_eq!(text_done, Some(json!("Let me check été weather.")));

            let arg_deltas: Vec<&str> = events
                .iter()
                .filter(|(n, _)| n == "response.function_call_arguments.delta")
                .filter_map(|(_, d)| d["delta"].as_str())
                .collect();
            assert!(arg_deltas.len() > 1, "k={k}: {arg_deltas:?}");
            let args: Value = serde_json::from_str(&arg_deltas.concat()).unwrap();
            assert_eq!(args, json!({"city": "Paris", "unit": "c"}), "k={k}");
            let call_added = &events
                .iter()
                .find(|(n, d)| {
                    n == "response.output_item.added" && d["item"]["type"] == "function_call"
                })
                .expect("function_call added")
                .1;
            assert_eq!(call_added["item"]["name"], "get_weather");
            assert_eq!(call_added["item"]["call_id"], "toolu_01Weather");
            assert_eq!(call_added["output_index"], 1);

            let (last, done) = events.last().expect("events");
            assert_eq!(last, "response.completed", "k={k}");
            let r = &done["response"];
            assert_eq!(r["status"], "completed");
            assert_eq!(r["model"], "gpt-4.1", "the requested model is reported");
            assert_eq!(
                r["output"][0]["content"][0]["text"],
                "Let me check été weather."
            );
            assert_eq!(r["output"][1]["type"], "function_call");
            assert_eq!(
                serde_json::from_str::<Value>(r["output"][1]["arguments"].as_str().unwrap())
                    .unwrap(),
                args
            );
            assert_eq!(
                r["usage"],
                json!({"input_tokens": 30, "output_tokens": 17, "total_tokens": 47,
                   "input_tokens_details": {"cached_tokens": 6, "cache_write_tokens": 4},
                   "output_tokens_details": {"reasoning_tokens": 0}}),
                "k={k}: cache reads and writes are part of input"
            );
            let usage: Value =
                serde_json::from_slice(rec.filter_state.get("aigw.usage").unwrap()).unwrap();
            assert_eq!(
                (usage["input"].as_u64(), usage["output"].as_u64()),
                (Some(30), Some(17)),
                "k={k}"
            );
        },
    );
}

/// A Responses API stream as OpenAI sends it: text in three deltas, then a function call whose
/// arguments arrive in two deltas, then `response.completed` with usage.
const RESPONSES_TOOL_STREAM: &str = concat!(
    "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_9\",\"object\":\"response\",\"created_at\":1741476542,\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":null}}\n\n",
    "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":1,\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_9\",\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":2,\"item_id\":\"msg_9\",\"output_index\":0,\"content_index\":0,\"delta\":\"Let \"}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":3,\"item_id\":\"msg_9\",\"output_index\":0,\"content_index\":0,\"delta\":\"me \"}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_9\",\"output_index\":0,\"content_index\":0,\"delta\":\"check.\"}\n\n",
    "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":5,\"output_index\":1,\"item\":{\"type\":\"function_call\",\"id\":\"fc_9\",\"call_id\":\"call_w\",\"name\":\"get_weather\",\"arguments\":\"\",\"status\":\"in_progress\"}}\n\n",
    "event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":6,\"item_id\":\"fc_9\",\"output_index\":1,\"delta\":\"{\\\"city\\\":\"}\n\n",
    "event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":7,\"item_id\":\"fc_9\",\"output_index\":1,\"delta\":\"\\\"Paris\\\"}\"}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":8,\"response\":{\"id\":\"resp_9\",\"object\":\"response\",\"created_at\":1741476542,\"status\":\"completed\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[{\"type\":\"message\",\"id\":\"msg_9\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Let me check.\",\"annotations\":[]}]},{\"type\":\"function_call\",\"id\":\"fc_9\",\"call_id\":\"call_w\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\",\"status\":\"completed\"}],\"usage\":{\"input_tokens\":40,\"input_tokens_details\":{\"cached_tokens\":8},\"output_tokens\":12,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":52}}}\n\n",
);

/// Every event's data as JSON (`[DONE]` skipped).
fn data_json(body: &str) -> Vec<Value> {
    sse::json(body)
}

#[test]
fn chat_and_anthropic_clients_stream_from_a_responses_upstream_at_every_split() {
    let mut sim =
        sim(json!({"providers":[{"type":"openai","api":"responses","api_keys":["sk-gw-123"]}]}));
    let chat = json!({"model": "gpt-4.1", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]});
    let messages = json!({"model": "gpt-4.1", "stream": true, "max_tokens": 100,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]});
    for k in 1..=RESPONSES_TOOL_STREAM.len() {
        // OpenAI chat client.
        let rec = sim
            .run(
                Request::post("/v1/chat/completions", chat.to_string()),
                UpstreamResponse::sse(RESPONSES_TOOL_STREAM).chunked(k),
            )
            .unwrap();
        let up = rec.upstream_request.as_ref().unwrap();
        assert_eq!(up.header(":path"), Some("/v1/responses"));
        assert_eq!(up.json()["stream"], true);
        let events = data_json(&rec.response.body_str());
        let mut text = String::new();
        let mut args = String::new();
        let (mut arg_deltas, mut finish, mut usage) = (0, None, None);
        for e in &events {
            if let Some(c) = e["choices"][0]["delta"]["content"].as_str() {
                text.push_str(c);
            }
            if let Some(call) = e["choices"][0]["delta"]["tool_calls"].get(0) {
                if let Some(name) = call["function"]["name"].as_str() {
                    assert_eq!(
                        (name, call["id"].as_str()),
                        ("get_weather", Some("call_w")),
                        "k={k}"
                    );
                }
                if let Some(a) = call["function"]["arguments"]
                    .as_str()
                    .filter(|a| !a.is_empty())
                {
                    args.push_str(a);
                    arg_deltas += 1;
                }
            }
            if let Some(f) = e["choices"][0]["finish_reason"].as_str() {
                finish = Some(f.to_string());
            }
            if e["usage"].is_object() {
                usage = Some(e["usage"].clone());
            }
        }
        assert_eq!(text, "Let me check.", "k={k}");
        assert_eq!(args, r#"{"city":"Paris"}"#, "k={k}");
        assert!(arg_deltas >= 2, "arguments stream in pieces (k={k})");
        assert_eq!(finish.as_deref(), Some("tool_calls"), "k={k}");
        let usage = usage.unwrap_or_else(|| panic!("no usage chunk (k={k})"));
        assert_eq!(
            (
                usage["prompt_tokens"].as_u64(),
                usage["completion_tokens"].as_u64()
            ),
            (Some(40), Some(12))
        );
        assert!(
            rec.response.body_str().trim_end().ends_with("data: [DONE]"),
            "k={k}"
        );

        // Anthropic client on the same provider.
        let rec = sim
            .run(
                Request::post("/v1/messages", messages.to_string()),
                UpstreamResponse::sse(RESPONSES_TOOL_STREAM).chunked(k),
            )
            .unwrap();
        let body = rec.response.body_str();
        let events = data_json(&body);
        let start = events
            .iter()
            .find(|e| e["type"] == "message_start")
            .expect("message_start");
        assert!(
            start["message"]["id"].as_str().unwrap().starts_with("msg_"),
            "k={k}"
        );
        let tool = events
            .iter()
            .find(|e| {
                e["type"] == "content_block_start" && e["content_block"]["type"] == "tool_use"
            })
            .expect("tool_use block");
        assert!(
            tool["content_block"]["id"]
                .as_str()
                .unwrap()
                .starts_with("toolu_"),
            "k={k}"
        );
        let text: String = events
            .iter()
            .filter_map(|e| e["delta"]["text"].as_str())
            .collect();
        assert_eq!(text, "Let me check.", "k={k}");
        let stop = events
            .iter()
            .find(|e| e["type"] == "message_delta")
            .expect("message_delta");
        assert_eq!(stop["delta"]["stop_reason"], "tool_use", "k={k}");
        assert_eq!(stop["usage"]["output_tokens"], 12, "k={k}");
        assert_eq!(events.last().unwrap()["type"], "message_stop", "k={k}");
    }
}
