//! Rewriting client-dialect events: splicing new text into an event, an extra increment for a
//! lane, and the early end of a stream.

use super::{Lane, Part};
use crate::llm::stream::Channel;
use crate::llm::Api;
use crate::sse::write_done;
use std::ops::Range;

/// What a stream said about itself, to stamp the events a plugin adds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StreamMeta {
    /// Response id (OpenAI chunk `id`, Anthropic message id, Responses response id).
    pub id: Option<String>,
    /// Model name.
    pub model: Option<String>,
    /// OpenAI `created` / Responses `created_at`.
    pub created: Option<u64>,
    /// The chunks are legacy completions (`object: "text_completion"`).
    pub legacy: bool,
}

/// Appends `s` as a JSON string literal.
fn push_str(out: &mut Vec<u8>, s: &str) {
    // Writing a `&str` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Writes `data` into `out` with each span replaced by the JSON string of its text. Spans must
/// be in order and not overlap (as [`super::locate`] gives them); out-of-order or out-of-range
/// ones are skipped.
pub fn splice<S: AsRef<str>>(data: &[u8], edits: &[(Range<usize>, S)], out: &mut Vec<u8>) {
    let mut at = 0;
    for (span, text) in edits {
        if span.start < at || span.end > data.len() || span.start > span.end {
            continue;
        }
        out.extend_from_slice(data.get(at..span.start).unwrap_or_default());
        push_str(out, text.as_ref());
        at = span.end;
    }
    out.extend_from_slice(data.get(at..).unwrap_or_default());
}

/// The `"id":…,"object":…,"created":…,"model":…,` head of an OpenAI chunk.
fn chunk_head(out: &mut Vec<u8>, meta: &StreamMeta) {
    out.extend_from_slice(b"data: {\"id\":");
    push_str(out, meta.id.as_deref().unwrap_or("chatcmpl-guard"));
    out.extend_from_slice(if meta.legacy {
        b",\"object\":\"text_completion\",\"created\":"
    } else {
        b",\"object\":\"chat.completion.chunk\",\"created\":"
    });
    out.extend_from_slice(meta.created.unwrap_or(0).to_string().as_bytes());
    out.extend_from_slice(b",\"model\":");
    push_str(out, meta.model.as_deref().unwrap_or("unknown"));
    out.extend_from_slice(b",\"choices\":[{\"index\":");
}

/// An OpenAI choice's text: `"text":…` for legacy chunks, else `"delta":{…}` with `text` on
/// `part`'s key and `args` as tool call `tool`'s arguments.
fn chat_text(out: &mut Vec<u8>, part: Part, tool: u32, text: &str, args: &str) {
    if part == Part::Legacy {
        out.extend_from_slice(b",\"text\":");
        push_str(out, text);
        return;
    }
    out.extend_from_slice(b",\"delta\":{");
    let mut first = true;
    if !text.is_empty() {
        let key: &[u8] = match part {
            Part::Text(Channel::Reasoning) => b"\"reasoning_content\":",
            Part::Text(Channel::Refusal) => b"\"refusal\":",
            _ => b"\"content\":",
        };
        out.extend_from_slice(key);
        push_str(out, text);
        first = false;
    }
    if !args.is_empty() {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"\"tool_calls\":[{\"index\":");
        out.extend_from_slice(tool.to_string().as_bytes());
        out.extend_from_slice(b",\"function\":{\"arguments\":");
        push_str(out, args);
        out.extend_from_slice(b"}}]");
    }
    out.push(b'}');
}

fn anthropic_delta(out: &mut Vec<u8>, block: u32, part: Part, text: &str) {
    let (kind, key): (&[u8], &[u8]) = match part {
        Part::ToolArgs => (b"input_json_delta", b"partial_json"),
        Part::Text(Channel::Reasoning) => (b"thinking_delta", b"thinking"),
        _ => (b"text_delta", b"text"),
    };
    out.extend_from_slice(
        b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
    );
    out.extend_from_slice(block.to_string().as_bytes());
    out.extend_from_slice(b",\"delta\":{\"type\":\"");
    out.extend_from_slice(kind);
    out.extend_from_slice(b"\",\"");
    out.extend_from_slice(key);
    out.extend_from_slice(b"\":");
    push_str(out, text);
    out.extend_from_slice(b"}}\n\n");
}

fn responses_delta(out: &mut Vec<u8>, lane: &Lane, item_id: Option<&str>, text: &str) {
    let kind = match lane.part {
        Part::ToolArgs => "response.function_call_arguments.delta",
        Part::Text(Channel::Refusal) => "response.refusal.delta",
        Part::Text(Channel::Reasoning) => "response.reasoning_text.delta",
        _ => "response.output_text.delta",
    };
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: {\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.push(b'"');
    if let Some(id) = item_id {
        out.extend_from_slice(b",\"item_id\":");
        push_str(out, id);
    }
    out.extend_from_slice(b",\"output_index\":");
    out.extend_from_slice(lane.choice.to_string().as_bytes());
    if lane.part != Part::ToolArgs {
        out.extend_from_slice(b",\"content_index\":");
        out.extend_from_slice(lane.block.to_string().as_bytes());
    }
    out.extend_from_slice(b",\"delta\":");
    push_str(out, text);
    out.extend_from_slice(b"}\n\n");
}

/// Writes one extra increment of `text` on `lane` in the lane's own dialect: an OpenAI chunk
/// (stamped with `meta`), an Anthropic `content_block_delta`, or a Responses `.delta` event
/// (with `item_id` when known).
pub fn write_delta(
    lane: &Lane,
    meta: &StreamMeta,
    item_id: Option<&str>,
    text: &str,
    out: &mut Vec<u8>,
) {
    if text.is_empty() {
        return;
    }
    match lane.api {
        Api::AnthropicMessages => anthropic_delta(out, lane.block, lane.part, text),
        Api::Responses => responses_delta(out, lane, item_id, text),
        _ => {
            chunk_head(out, meta);
            out.extend_from_slice(lane.choice.to_string().as_bytes());
            let (text, args) = if lane.part.is_json() {
                ("", text)
            } else {
                (text, "")
            };
            chat_text(out, lane.part, lane.block, text, args);
            out.extend_from_slice(b",\"finish_reason\":null}]}\n\n");
        }
    }
}

/// How a stream is cut short.
#[derive(Debug, Clone, Copy)]
pub struct Cut<'a> {
    /// The dialect of the stream.
    pub api: Api,
    /// The lane the last text belongs to (where `text` and `args` go).
    pub lane: Option<Lane>,
    /// Prose delivered last (checked text before the cut, and any message for the reader).
    pub text: &'a str,
    /// Tool-argument text delivered last (JSON text).
    pub args: &'a str,
    /// Anthropic content blocks still open (each gets its `content_block_stop`).
    pub open_blocks: &'a [u32],
}

/// Ends a stream early because of a content filter, in the dialect's own terminal shape:
/// - OpenAI: one chunk with the last text and `finish_reason: "content_filter"`, then
///   `data: [DONE]`;
/// - Anthropic: the last text as `content_block_delta`s, `content_block_stop` for the open
///   blocks, `message_delta` with `stop_reason: "refusal"`, then `message_stop`;
/// - Responses: the last text as a `.delta`, then `response.incomplete` with
///   `incomplete_details.reason: "content_filter"`.
pub fn write_cut(cut: &Cut<'_>, meta: &StreamMeta, item_id: Option<&str>, out: &mut Vec<u8>) {
    let content = Lane {
        api: cut.api,
        choice: 0,
        block: 0,
        part: Part::Text(Channel::Content),
    };
    let lane = cut.lane.unwrap_or(content);
    match cut.api {
        Api::AnthropicMessages => {
            if !cut.args.is_empty() {
                anthropic_delta(out, lane.block, Part::ToolArgs, cut.args);
            }
            if !cut.text.is_empty() {
                let part = if lane.part.is_json() {
                    Part::Text(Channel::Content)
                } else {
                    lane.part
                };
                anthropic_delta(out, lane.block, part, cut.text);
            }
            for b in cut.open_blocks {
                out.extend_from_slice(
                    b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":",
                );
                out.extend_from_slice(b.to_string().as_bytes());
                out.extend_from_slice(b"}\n\n");
            }
            out.extend_from_slice(
                b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"refusal\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":0}}\n\n",
            );
            out.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        }
        Api::Responses => {
            if !cut.args.is_empty() {
                let args_lane = Lane {
                    part: Part::ToolArgs,
                    ..lane
                };
                responses_delta(out, &args_lane, item_id, cut.args);
            }
            if !cut.text.is_empty() {
                let text_lane = if lane.part.is_json() { content } else { lane };
                responses_delta(out, &text_lane, item_id, cut.text);
            }
            out.extend_from_slice(
                b"event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"response\":{\"id\":",
            );
            push_str(out, meta.id.as_deref().unwrap_or("resp_guard"));
            out.extend_from_slice(b",\"object\":\"response\",\"model\":");
            push_str(out, meta.model.as_deref().unwrap_or("unknown"));
            out.extend_from_slice(
                b",\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"content_filter\"}}}\n\n",
            );
        }
        _ => {
            chunk_head(out, meta);
            out.extend_from_slice(lane.choice.to_string().as_bytes());
            let part = if lane.part.is_json() {
                Part::Text(Channel::Content)
            } else {
                lane.part
            };
            chat_text(out, part, lane.block, cut.text, cut.args);
            out.extend_from_slice(b",\"finish_reason\":\"content_filter\"}]}\n\n");
            write_done(out);
        }
    }
}
