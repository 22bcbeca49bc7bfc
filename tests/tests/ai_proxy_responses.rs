//! ai-proxy and the OpenAI Responses API in host-sim (dist/ai-proxy.wasm): Responses clients
//! in front of other providers, OpenAI upstreams called through the Responses API, and model
//! lookup (`GET /v1/models/{id}`).
//!
//! Payloads follow OpenAI's documented Responses objects and Anthropic's Messages shapes.

use aigw_tests::spec;
use host_sim::{Request, Sim, SimOptions, UpstreamResponse};
use serde_json::{json, Value};

fn sim(config: Value) -> Sim {
    let mut sim = Sim::new(SimOptions::default());
    sim.add_plugin(spec("ai-proxy").config_json(config.to_string()))
        .unwrap();
    sim
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
