//! What the upstream answers: OpenAI chat completions (whole and streamed) and Anthropic
//! message streams, in the providers' documented shapes.

use host_sim::UpstreamResponse;
use serde_json::{json, Value};

/// `usage` of an OpenAI answer: `prompt` and `completion` tokens and their total.
pub fn usage(prompt: u64, completion: u64) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// A whole OpenAI chat completion body (id `c1`) from `model` saying `content`, with `usage`.
pub fn openai_body(model: &str, content: &str, usage: Value) -> String {
    json!({
        "id": "c1", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": usage
    })
    .to_string()
}

/// A 200 answer with [`openai_body`].
pub fn openai(model: &str, content: &str, usage: Value) -> UpstreamResponse {
    UpstreamResponse::json(200, openai_body(model, content, usage))
}

/// A 200 answer `{"ok":true}`, for tests where the answer does not matter.
pub fn ok() -> UpstreamResponse {
    UpstreamResponse::json(200, r#"{"ok":true}"#)
}

/// One OpenAI stream chunk event (id `c1`) of `model` with `choices`, and `extra` fields
/// (such as `usage`) after them.
pub fn openai_chunk(model: &str, choices: Value, extra: Value) -> String {
    let mut ev =
        json!({"id": "c1", "object": "chat.completion.chunk", "model": model, "choices": choices});
    if let (Some(ev), Value::Object(extra)) = (ev.as_object_mut(), extra) {
        ev.extend(extra);
    }
    format!("data: {ev}\n\n")
}

/// An OpenAI stream from `model`: a role chunk, one content chunk per piece, a chunk with
/// `finish` as its finish reason, a usage chunk when `usage` is given, and `[DONE]`.
pub fn openai_stream(model: &str, pieces: &[&str], finish: &str, usage: Option<Value>) -> String {
    let delta =
        |d: Value, finish: Value| json!([{"index": 0, "delta": d, "finish_reason": finish}]);
    let mut s = openai_chunk(
        model,
        delta(json!({"role": "assistant", "content": ""}), Value::Null),
        Value::Null,
    );
    for p in pieces {
        s.push_str(&openai_chunk(
            model,
            delta(json!({ "content": p }), Value::Null),
            Value::Null,
        ));
    }
    s.push_str(&openai_chunk(
        model,
        delta(json!({}), json!(finish)),
        Value::Null,
    ));
    if let Some(u) = usage {
        s.push_str(&openai_chunk(model, json!([]), json!({ "usage": u })));
    }
    s.push_str("data: [DONE]\n\n");
    s
}

/// A 200 answer of `content_type` with `body` in one piece.
pub fn typed(content_type: &str, body: impl Into<Vec<u8>>) -> UpstreamResponse {
    let mut r = UpstreamResponse::json(200, body);
    r.headers = vec![("content-type".into(), content_type.into())];
    r
}

/// A 200 `text/event-stream` answer delivered in exactly these pieces.
pub fn sse_pieces(pieces: Vec<Vec<u8>>) -> UpstreamResponse {
    let mut r = UpstreamResponse::sse(Vec::new());
    r.chunks = pieces;
    r
}

/// One SSE event named `name` with JSON `data`.
pub fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// An Anthropic messages stream from `model` whose text deltas are `pieces`: message_start
/// (its `usage` as given), one text block, message_delta (`stop_reason`, `output` tokens),
/// message_stop.
pub fn anthropic_stream(
    model: &str,
    pieces: &[&str],
    usage: Value,
    stop_reason: &str,
    output: u64,
) -> String {
    let mut s = event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
            "model": model, "content": [], "usage": usage}}),
    );
    s.push_str(&event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ));
    for p in pieces {
        s.push_str(&event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
        ));
    }
    s.push_str(&event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    s.push_str(&event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": output}}),
    ));
    s.push_str(&event("message_stop", json!({"type": "message_stop"})));
    s
}
