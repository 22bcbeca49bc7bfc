//! Anthropic Messages wire format (`POST /v1/messages`, `/v1/messages/count_tokens`).

use super::plan::{model_of, required_list, text_of, tools_at, wants_stream, Output, Plan, Turn};
use super::tokens;
use super::wire::{sse_event, Frame, Reply};
use serde_json::{json, Value};

/// Reads a Messages request. `max_tokens` is required, as the real API requires it.
pub fn parse(body: &Value, require_max_tokens: bool) -> Result<Turn, String> {
    let messages = required_list(
        body,
        "messages",
        "messages: Field required",
        "messages: at least one message is required",
    )?;
    let max_tokens = body.get("max_tokens").and_then(Value::as_u64);
    if require_max_tokens && max_tokens.is_none() {
        return Err("max_tokens: Field required".into());
    }
    let mut prompt_tokens = tokens::count(&text_of(body.get("system").unwrap_or(&Value::Null)));
    for m in messages {
        let content = m.get("content").unwrap_or(&Value::Null);
        prompt_tokens += tokens::count(&text_of(content));
        if let Some(blocks) = content.as_array() {
            for b in blocks {
                if b.get("type").and_then(Value::as_str) == Some("tool_use") {
                    prompt_tokens +=
                        tokens::count(&b.get("input").map(Value::to_string).unwrap_or_default());
                }
            }
        }
    }
    let last = messages.last().unwrap_or(&Value::Null);
    let content = last.get("content").unwrap_or(&Value::Null);
    let has_tool_result = content.as_array().is_some_and(|bs| {
        bs.iter()
            .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
    });
    let tools = tools_at(body, "/tools", "", "/input_schema");
    Ok(Turn {
        model: model_of(body),
        stream: wants_stream(body),
        include_usage: true,
        max_tokens,
        prompt_tokens,
        last_text: text_of(content),
        last_from_user: last.get("role").and_then(Value::as_str) == Some("user")
            && !has_tool_result,
        tools,
    })
}

fn block(p: &Plan, full: bool) -> Value {
    match &p.output {
        Output::Text(_) => {
            json!({"type": "text", "text": if full { p.text() } else { String::new() }})
        }
        Output::ToolCall { id, name, .. } => json!({
            "type": "tool_use",
            "id": format!("toolu_{id}"),
            "name": name,
            "input": if full { p.arguments_json() } else { json!({}) },
        }),
    }
}

/// A non-streamed message.
pub fn full(p: &Plan, model: &str, seq: u64) -> Reply {
    Reply::json(
        200,
        &json!({
            "id": format!("msg_mock{seq}"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [block(p, true)],
            "stop_reason": p.finish.anthropic_reason(),
            "stop_sequence": null,
            "usage": {
                "input_tokens": p.prompt_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": p.completion_tokens,
            },
        }),
    )
}

/// A streamed message: `message_start` (input tokens, output_tokens 1 as the real API sends),
/// `content_block_start`, `ping`, deltas (`text_delta` or `input_json_delta`),
/// `content_block_stop`, `message_delta` with the cumulative output tokens, `message_stop`.
pub fn stream(p: &Plan, model: &str, seq: u64, chunk: usize) -> Reply {
    let mut frames = vec![Frame::new(
        sse_event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": format!("msg_mock{seq}"),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {
                    "input_tokens": p.prompt_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 1,
                },
            }}),
        ),
        0,
    )];
    frames.push(Frame::new(
        sse_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": block(p, false)}),
        ),
        0,
    ));
    frames.push(Frame::new(sse_event("ping", &json!({"type": "ping"})), 0));
    for (text, n) in p.chunks(chunk) {
        let delta = match &p.output {
            Output::Text(_) => json!({"type": "text_delta", "text": text}),
            Output::ToolCall { .. } => json!({"type": "input_json_delta", "partial_json": text}),
        };
        frames.push(Frame::new(
            sse_event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0, "delta": delta}),
            ),
            n,
        ));
    }
    frames.push(Frame::new(
        sse_event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": 0}),
        ),
        0,
    ));
    frames.push(Frame::new(
        sse_event(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": p.finish.anthropic_reason(), "stop_sequence": null},
                "usage": {"output_tokens": p.completion_tokens},
            }),
        ),
        0,
    ));
    frames.push(Frame::new(
        sse_event("message_stop", &json!({"type": "message_stop"})),
        0,
    ));
    Reply::stream("text/event-stream", frames)
}

/// Answers `count_tokens`.
pub fn count_tokens(body: &Value) -> Result<(Reply, u64), String> {
    let t = parse(body, false)?;
    Ok((
        Reply::json(200, &json!({"input_tokens": t.prompt_tokens})),
        t.prompt_tokens,
    ))
}
