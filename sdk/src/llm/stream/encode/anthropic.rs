//! Neutral events → Anthropic Messages SSE.
//!
//! `message_start` is delayed until the first event other than [`Event::Start`] /
//! [`Event::Usage`], so that it carries the real `input_tokens` when the upstream reported
//! them early; its id is `msg_…` (an upstream id without the prefix becomes `msg_` + its
//! alphanumerics). Reasoning opens a `thinking` block, content and refusal a `text` block
//! (refusal text makes the stop reason `refusal`), each tool call a `tool_use` block with a
//! `toolu_…` id whose fragments become `input_json_delta`s; a block is closed when another
//! kind starts. [`Event::Stop`] closes the open block; [`Event::Done`] (or
//! [`Encoder::finish`]) writes `message_delta` (stop reason, usage with input and output
//! fields) and `message_stop`. An [`Event::Error`] becomes `event: error`.

use super::super::{anthropic_error_type, Channel, Encoder, Event, StopReason};
use super::{prefixed_id, write_json};
use crate::llm::Usage;
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    Thinking,
    Tool(u32),
}

/// Encoder state for one Anthropic Messages stream.
#[derive(Debug, Clone)]
pub struct AnthropicEncoder {
    id: String,
    model: String,
    usage: Option<Usage>,
    open: Open,
    /// Index of the open block, or of the next one when none is open.
    block: u32,
    /// Tool index → its block index.
    tool_blocks: Vec<(u32, u32)>,
    stop: Option<StopReason>,
    refusal: bool,
    started: bool,
    done: bool,
}

#[derive(Serialize)]
struct DeltaEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: DeltaBody<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum DeltaBody<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

fn usage_json(u: Option<Usage>) -> serde_json::Value {
    let a = u.unwrap_or_default().to_anthropic();
    json!({
        "input_tokens": a.input_tokens,
        "cache_creation_input_tokens": a.cache_creation_input_tokens.unwrap_or(0),
        "cache_read_input_tokens": a.cache_read_input_tokens.unwrap_or(0),
        "output_tokens": a.output_tokens,
    })
}

impl AnthropicEncoder {
    /// An encoder for one stream; `id`/`model` are used unless [`Event::Start`] names the
    /// upstream's (the id gets the `msg_` prefix either way).
    pub fn new(id: &str, model: &str) -> Self {
        AnthropicEncoder {
            id: prefixed_id("msg_", id, "stream"),
            model: model.to_string(),
            usage: None,
            open: Open::None,
            block: 0,
            tool_blocks: Vec::new(),
            stop: None,
            refusal: false,
            started: false,
            done: false,
        }
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let start = json!({"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "content": [],
            "model": self.model, "stop_reason": null, "stop_sequence": null,
            "usage": usage_json(self.usage)}});
        write_json(out, Some("message_start"), &start);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open != Open::None {
            let stop = json!({"type": "content_block_stop", "index": self.block});
            write_json(out, Some("content_block_stop"), &stop);
            self.block = self.block.saturating_add(1);
            self.open = Open::None;
        }
    }

    fn open_block(&mut self, out: &mut Vec<u8>, kind: Open, block: serde_json::Value) {
        self.close(out);
        let start =
            json!({"type": "content_block_start", "index": self.block, "content_block": block});
        write_json(out, Some("content_block_start"), &start);
        self.open = kind;
    }

    fn delta(&self, out: &mut Vec<u8>, index: u32, delta: DeltaBody<'_>) {
        let ev = DeltaEvent {
            kind: "content_block_delta",
            index,
            delta,
        };
        write_json(out, Some("content_block_delta"), &ev);
    }

    fn text(&mut self, out: &mut Vec<u8>, channel: Channel, text: &str) {
        if channel == Channel::Reasoning {
            if self.open != Open::Thinking {
                let block = json!({"type": "thinking", "thinking": ""});
                self.open_block(out, Open::Thinking, block);
            }
            self.delta(out, self.block, DeltaBody::Thinking { thinking: text });
        } else {
            if channel == Channel::Refusal {
                self.refusal = true;
            }
            if self.open != Open::Text {
                self.open_block(out, Open::Text, json!({"type": "text", "text": ""}));
            }
            self.delta(out, self.block, DeltaBody::Text { text });
        }
    }

    fn complete(&mut self, out: &mut Vec<u8>) {
        self.ensure_started(out);
        self.close(out);
        let stop = if self.refusal {
            StopReason::ContentFilter
        } else {
            self.stop.unwrap_or(StopReason::End)
        };
        let delta = json!({"type": "message_delta",
            "delta": {"stop_reason": stop.to_anthropic(), "stop_sequence": null},
            "usage": usage_json(self.usage)});
        write_json(out, Some("message_delta"), &delta);
        write_json(out, Some("message_stop"), &json!({"type": "message_stop"}));
        self.done = true;
    }
}

impl Encoder for AnthropicEncoder {
    fn encode(&mut self, event: &Event<'_>, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            Event::Start { id, model } => {
                if !self.started {
                    if let Some(id) = id.as_deref().filter(|i| !i.is_empty()) {
                        self.id = prefixed_id("msg_", id, "stream");
                    }
                    if let Some(m) = model.as_deref().filter(|m| !m.is_empty()) {
                        m.clone_into(&mut self.model);
                    }
                }
            }
            Event::Usage(u) => self.usage = Some(*u),
            Event::Text { channel, text } => {
                self.ensure_started(out);
                self.text(out, *channel, text);
            }
            Event::ToolStart { index, id, name } => {
                self.ensure_started(out);
                let fallback = format!("{}_{index}", self.id.trim_start_matches("msg_"));
                let id = prefixed_id("toolu_", id, &fallback);
                let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                self.open_block(out, Open::Tool(*index), block);
                if self.tool_blocks.len() < crate::llm::stream::MAX_BLOCKS {
                    self.tool_blocks.push((*index, self.block));
                }
            }
            Event::ToolArgs { index, fragment } => {
                self.ensure_started(out);
                let block = if self.open == Open::Tool(*index) {
                    Some(self.block)
                } else {
                    // A late fragment of an earlier call: address that call's block.
                    self.tool_blocks
                        .iter()
                        .rev()
                        .find(|(t, _)| t == index)
                        .map(|(_, b)| *b)
                };
                if let Some(block) = block {
                    let delta = DeltaBody::InputJson {
                        partial_json: fragment,
                    };
                    self.delta(out, block, delta);
                }
            }
            Event::Stop(reason) => {
                self.ensure_started(out);
                self.close(out);
                self.stop = Some(*reason);
            }
            Event::Error {
                status, message, ..
            } => {
                let err = json!({"type": "error", "error": {
                    "type": anthropic_error_type(*status), "message": message}});
                write_json(out, Some("error"), &err);
                self.done = true;
            }
            Event::Done => self.complete(out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.done {
            self.complete(out);
        }
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::stream::tests::util::json_events;

    #[test]
    fn writes_blocks_with_real_input_tokens_and_prefixed_ids() {
        let mut e = AnthropicEncoder::new("fallback", "m");
        let mut out = Vec::new();
        let events = [
            Event::Start {
                id: Some("chatcmpl-9".into()),
                model: Some("deepseek".into()),
            },
            Event::Usage(Usage {
                input: 30,
                output: 0,
                total: 30,
                cached_input: 10,
                ..Usage::default()
            }),
            Event::Text {
                channel: Channel::Reasoning,
                text: "Think".into(),
            },
            Event::Text {
                channel: Channel::Content,
                text: "Hi".into(),
            },
            Event::ToolStart {
                index: 0,
                id: "call_1".into(),
                name: "f".into(),
            },
            Event::ToolArgs {
                index: 0,
                fragment: "{\"a\":".into(),
            },
            Event::ToolArgs {
                index: 0,
                fragment: "1}".into(),
            },
            Event::ToolStart {
                index: 1,
                id: "toolu_B".into(),
                name: "g".into(),
            },
            Event::Stop(StopReason::ToolCalls),
            Event::Usage(Usage {
                input: 30,
                output: 12,
                total: 42,
                cached_input: 10,
                ..Usage::default()
            }),
            Event::Done,
        ];
        for ev in &events {
            e.encode(ev, &mut out);
        }
        let ev = json_events(&out);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_deref().unwrap_or("")).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(ev[0].1["message"]["id"], "msg_chatcmpl-9");
        assert_eq!(ev[0].1["message"]["model"], "deepseek");
        assert_eq!(ev[0].1["message"]["usage"]["input_tokens"], 20);
        assert_eq!(ev[0].1["message"]["usage"]["cache_read_input_tokens"], 10);
        assert_eq!(ev[1].1["content_block"]["type"], "thinking");
        assert_eq!(
            ev[2].1["delta"],
            json!({"type": "thinking_delta", "thinking": "Think"})
        );
        assert_eq!(
            ev[5].1["delta"],
            json!({"type": "text_delta", "text": "Hi"})
        );
        assert_eq!(ev[5].1["index"], 1);
        assert_eq!(
            ev[7].1["content_block"],
            json!({"type": "tool_use", "id": "toolu_call_1", "name": "f", "input": {}})
        );
        assert_eq!(ev[9].1["delta"]["partial_json"], "1}");
        assert_eq!(ev[11].1["content_block"]["id"], "toolu_B");
        assert_eq!(ev[11].1["index"], 3);
        assert_eq!(ev[13].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(
            ev[13].1["usage"],
            json!({"input_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10, "output_tokens": 12})
        );
    }

    #[test]
    fn refusal_error_and_finish() {
        let mut e = AnthropicEncoder::new("x", "m");
        let mut out = Vec::new();
        e.encode(
            &Event::Text {
                channel: Channel::Refusal,
                text: "No.".into(),
            },
            &mut out,
        );
        e.encode(&Event::Stop(StopReason::End), &mut out);
        e.finish(&mut out);
        let ev = json_events(&out);
        assert_eq!(ev[0].1["message"]["id"], "msg_x");
        assert_eq!(ev[ev.len() - 2].1["delta"]["stop_reason"], "refusal");
        assert_eq!(ev[ev.len() - 1].0.as_deref(), Some("message_stop"));

        let mut e = AnthropicEncoder::new("x", "m");
        let mut out = Vec::new();
        e.fail(
            &crate::llm::stream::StreamError {
                status: 429,
                kind: "rate_limit_exceeded".into(),
                message: "slow".into(),
                code: None,
            },
            &mut out,
        );
        let ev = json_events(&out);
        assert_eq!(ev[0].0.as_deref(), Some("error"));
        assert_eq!(
            ev[0].1["error"],
            json!({"type": "rate_limit_error", "message": "slow"})
        );
        assert!(e.is_done());
    }
}
