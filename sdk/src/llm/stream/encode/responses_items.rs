//! The Responses API output items an encoder keeps (for the `.done` events and the final
//! `response` object) and their JSON shapes.

use crate::llm::Usage;
use serde_json::{json, Value};

/// A message content part being written.
#[derive(Debug, Clone)]
pub(super) struct Part {
    /// A `refusal` part (else `output_text`).
    pub refusal: bool,
    /// Its text so far.
    pub text: String,
}

/// An output item: a message, a reasoning summary or a function call.
#[derive(Debug, Clone)]
pub(super) enum Item {
    Message {
        id: String,
        parts: Vec<Part>,
    },
    Reasoning {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        args: String,
        tool: u32,
    },
}

/// A content part as JSON.
pub(super) fn part_json(p: &Part) -> Value {
    if p.refusal {
        json!({"type": "refusal", "refusal": p.text})
    } else {
        json!({"type": "output_text", "text": p.text, "annotations": [], "logprobs": []})
    }
}

/// An item as JSON: empty and `in_progress` when just added, whole and `completed` when done.
pub(super) fn item_json(item: &Item, done: bool) -> Value {
    let status = if done { "completed" } else { "in_progress" };
    match item {
        Item::Message { id, parts } => {
            let content: Vec<Value> = if done {
                parts.iter().map(part_json).collect()
            } else {
                Vec::new()
            };
            json!({"id": id, "type": "message", "status": status, "role": "assistant", "content": content})
        }
        Item::Reasoning { id, text } => {
            let summary = if done {
                json!([{"type": "summary_text", "text": text}])
            } else {
                json!([])
            };
            json!({"id": id, "type": "reasoning", "summary": summary})
        }
        Item::Call {
            id,
            call_id,
            name,
            args,
            ..
        } => json!({
            "id": id, "type": "function_call", "status": status, "call_id": call_id,
            "name": name, "arguments": if done { args.as_str() } else { "" }}),
    }
}

/// Usage as a Responses `usage` object.
pub(super) fn usage_json(u: &Usage) -> Value {
    serde_json::to_value(crate::llm::responses::ResponsesUsage::from_usage(u))
        .unwrap_or(Value::Null)
}
