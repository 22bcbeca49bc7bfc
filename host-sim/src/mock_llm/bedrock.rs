//! AWS Bedrock Converse wire format: `POST /model/{modelId}/converse` (JSON) and
//! `/converse-stream` (binary AWS event-stream, see [`super::eventstream`]).

use super::eventstream;
use super::plan::{required_list, text_of, tools_at, Output, Plan, Turn};
use super::tokens;
use super::wire::{Frame, Reply};
use serde_json::{json, Value};

fn block_text(b: &Value) -> String {
    if let Some(t) = b.get("text").and_then(Value::as_str) {
        t.to_string()
    } else if let Some(tr) = b.get("toolResult") {
        text_of(tr.get("content").unwrap_or(&Value::Null))
    } else if let Some(tu) = b.get("toolUse") {
        tu.get("input").map(Value::to_string).unwrap_or_default()
    } else {
        String::new()
    }
}

fn content_text(content: &Value) -> String {
    match content.as_array() {
        Some(blocks) => blocks
            .iter()
            .map(block_text)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        None => text_of(content),
    }
}

/// Reads a Converse request; `model` comes from the path.
pub fn parse(body: &Value, model: &str, stream: bool) -> Result<Turn, String> {
    let messages = required_list(
        body,
        "messages",
        "1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null",
        "A conversation must start with a user message.",
    )?;
    let mut prompt_tokens =
        tokens::count(&content_text(body.get("system").unwrap_or(&Value::Null)));
    for m in messages {
        prompt_tokens += tokens::count(&content_text(m.get("content").unwrap_or(&Value::Null)));
    }
    let last = messages.last().unwrap_or(&Value::Null);
    let content = last.get("content").unwrap_or(&Value::Null);
    let has_tool_result = content
        .as_array()
        .is_some_and(|bs| bs.iter().any(|b| b.get("toolResult").is_some()));
    let tools = tools_at(body, "/toolConfig/tools", "/toolSpec", "/inputSchema/json");
    Ok(Turn {
        model: model.to_string(),
        stream,
        include_usage: true,
        max_tokens: body
            .pointer("/inferenceConfig/maxTokens")
            .and_then(Value::as_u64),
        prompt_tokens,
        last_text: content_text(content),
        last_from_user: last.get("role").and_then(Value::as_str) == Some("user")
            && !has_tool_result,
        tools,
    })
}

fn usage(p: &Plan) -> Value {
    json!({
        "inputTokens": p.prompt_tokens,
        "outputTokens": p.completion_tokens,
        "totalTokens": p.prompt_tokens + p.completion_tokens,
    })
}

/// A non-streamed Converse response.
pub fn full(p: &Plan, latency_ms: u64) -> Reply {
    let block = match &p.output {
        Output::Text(_) => json!({"text": p.text()}),
        Output::ToolCall { id, name, .. } => json!({"toolUse": {
            "toolUseId": format!("tooluse_{id}"),
            "name": name,
            "input": p.arguments_json(),
        }}),
    };
    Reply::json(
        200,
        &json!({
            "output": {"message": {"role": "assistant", "content": [block]}},
            "stopReason": p.finish.anthropic_reason(),
            "usage": usage(p),
            "metrics": {"latencyMs": latency_ms},
        }),
    )
}

fn ev(name: &str, v: Value, tokens: u64) -> Frame {
    Frame::new(eventstream::event(name, v.to_string().as_bytes()), tokens)
}

/// A ConverseStream response: `messageStart`, (`contentBlockStart` for tool use),
/// `contentBlockDelta`s, `contentBlockStop`, `messageStop`, and `metadata` with the usage, each
/// an event-stream message.
pub fn stream(p: &Plan, size: usize, latency_ms: u64) -> Reply {
    let mut frames = vec![ev("messageStart", json!({"role": "assistant"}), 0)];
    if let Output::ToolCall { id, name, .. } = &p.output {
        frames.push(ev(
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": format!("tooluse_{id}"), "name": name}}}),
            0,
        ));
    }
    for (text, n) in p.chunks(size) {
        let delta = match &p.output {
            Output::Text(_) => json!({"text": text}),
            Output::ToolCall { .. } => json!({"toolUse": {"input": text}}),
        };
        frames.push(ev(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": delta}),
            n,
        ));
    }
    frames.push(ev("contentBlockStop", json!({"contentBlockIndex": 0}), 0));
    frames.push(ev(
        "messageStop",
        json!({"stopReason": p.finish.anthropic_reason()}),
        0,
    ));
    frames.push(ev(
        "metadata",
        json!({"usage": usage(p), "metrics": {"latencyMs": latency_ms}}),
        0,
    ));
    Reply::stream("application/vnd.amazon.eventstream", frames)
}
