//! Anthropic Messages SSE → neutral events.
//!
//! `message_start` → [`Event::Start`] and the input usage; `content_block_start` of a `text` /
//! `thinking` block → its initial text (if any), of a `tool_use` block →
//! [`Event::ToolStart`] with the next tool index; `text_delta` → content, `thinking_delta` →
//! reasoning, `input_json_delta` → argument fragments of that block's call; `message_delta` →
//! cumulative usage and [`Event::Stop`]; `message_stop` → [`Event::Done`]; `error` →
//! [`Event::Error`]. `signature_delta`, `citations_delta`, `redacted_thinking` blocks, `ping`
//! and `content_block_stop` carry nothing neutral and are skipped; other block types (server
//! tools) are refused, since no client dialect here could carry them.

use super::super::{next_index, slot, BStr, Channel, Decoder, Event, StopReason};
use super::{decoder_impl, error_event, parse, push_usage, text, Step, StreamError};
use crate::llm::stream::anthropic_error_status;
use crate::llm::{Usage, UsageAccumulator, UsageProtocol};
use serde::Deserialize;

/// Decoder state for one Anthropic stream.
#[derive(Debug)]
pub struct AnthropicDecoder {
    usage: UsageAccumulator,
    /// Block index → tool index (+1; 0 = not a tool block).
    blocks: Vec<u32>,
    next_tool: u32,
    done: bool,
    lenient: bool,
    /// The last `stop_reason`, verbatim.
    stop_word: Option<String>,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", borrow)]
    kind: BStr<'a>,
    #[serde(default)]
    index: Option<usize>,
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    content_block: Option<BlockStart<'a>>,
    #[serde(default, borrow)]
    message: Option<MessageStart<'a>>,
    #[serde(default, borrow)]
    error: Option<ErrorIn<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<BStr<'a>>,
    #[serde(default, borrow)]
    text: Option<BStr<'a>>,
    #[serde(default, borrow)]
    partial_json: Option<BStr<'a>>,
    #[serde(default, borrow)]
    thinking: Option<BStr<'a>>,
    #[serde(default, borrow)]
    stop_reason: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct BlockStart<'a> {
    #[serde(rename = "type", borrow)]
    kind: BStr<'a>,
    #[serde(default, borrow)]
    id: Option<BStr<'a>>,
    #[serde(default, borrow)]
    name: Option<BStr<'a>>,
    #[serde(default, borrow)]
    text: Option<BStr<'a>>,
    #[serde(default, borrow)]
    thinking: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct MessageStart<'a> {
    #[serde(default, borrow)]
    id: Option<BStr<'a>>,
    #[serde(default, borrow)]
    model: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct ErrorIn<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<BStr<'a>>,
    #[serde(default, borrow)]
    message: Option<BStr<'a>>,
}

impl Default for AnthropicDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl AnthropicDecoder {
    /// A decoder for one stream.
    pub fn new() -> Self {
        AnthropicDecoder {
            usage: UsageAccumulator::new(UsageProtocol::Anthropic),
            blocks: Vec::new(),
            next_tool: 0,
            done: false,
            lenient: false,
            stop_word: None,
        }
    }

    fn step<'a>(&mut self, _event: Option<&str>, data: &'a [u8], out: &mut Vec<Event<'a>>) -> Step {
        let ev: Wire = parse(data, "anthropic")?;
        match ev.kind.as_str() {
            "message_start" => {
                let (id, model) = match ev.message {
                    Some(m) => (m.id.map(BStr::into_cow), m.model.map(BStr::into_cow)),
                    None => (None, None),
                };
                out.push(Event::Start { id, model });
                push_usage(&mut self.usage, data, out);
            }
            "content_block_start" => {
                let (Some(index), Some(block)) = (ev.index, ev.content_block) else {
                    return Err(StreamError::upstream(
                        "content_block_start without index or block",
                    ));
                };
                match block.kind.as_str() {
                    "text" => text(out, Channel::Content, block.text.map(BStr::into_cow)),
                    "thinking" => text(out, Channel::Reasoning, block.thinking.map(BStr::into_cow)),
                    "redacted_thinking" => {}
                    "tool_use" => {
                        let tool = next_index(&mut self.next_tool)?;
                        *slot(&mut self.blocks, index)? = tool.saturating_add(1);
                        out.push(Event::ToolStart {
                            index: tool,
                            id: block.id.map(BStr::into_cow).unwrap_or_default(),
                            name: block.name.map(BStr::into_cow).unwrap_or_default(),
                        });
                    }
                    other => {
                        return Err(StreamError::upstream(format!(
                            "anthropic `{other}` content blocks cannot be translated"
                        )))
                    }
                }
            }
            "content_block_delta" => {
                let Some(delta) = ev.delta else {
                    return Err(StreamError::upstream("content_block_delta without delta"));
                };
                match delta.kind.as_ref().map(BStr::as_str) {
                    Some("text_delta") => {
                        text(out, Channel::Content, delta.text.map(BStr::into_cow))
                    }
                    Some("thinking_delta") => {
                        text(out, Channel::Reasoning, delta.thinking.map(BStr::into_cow))
                    }
                    Some("input_json_delta") => {
                        let tool = ev
                            .index
                            .and_then(|i| self.blocks.get(i).copied())
                            .unwrap_or(0);
                        let Some(index) = tool.checked_sub(1) else {
                            return Err(StreamError::upstream(
                                "input_json_delta for a block that is not a tool_use",
                            ));
                        };
                        if let Some(j) = delta.partial_json.filter(|j| !j.as_str().is_empty()) {
                            out.push(Event::ToolArgs {
                                index,
                                fragment: j.into_cow(),
                            });
                        }
                    }
                    // signature_delta, citations_delta and future deltas.
                    _ => {}
                }
            }
            "message_delta" => {
                push_usage(&mut self.usage, data, out);
                if let Some(r) = ev.delta.and_then(|d| d.stop_reason) {
                    self.stop_word = Some(r.as_str().to_string());
                    out.push(Event::Stop(StopReason::from_anthropic(r.as_str())));
                }
            }
            "message_stop" => {
                self.done = true;
                out.push(Event::Done);
            }
            "error" => {
                let (kind, message) = match ev.error {
                    Some(e) => (e.kind, e.message),
                    None => (None, None),
                };
                let status = kind
                    .as_ref()
                    .map_or(500, |k| anthropic_error_status(k.as_str()));
                out.push(error_event(
                    status,
                    message.map(BStr::into_cow),
                    kind.map(BStr::into_cow),
                ));
                self.done = true;
            }
            // ping, content_block_stop and unknown informational events.
            _ => {}
        }
        Ok(())
    }
}

decoder_impl!(AnthropicDecoder, "anthropic stream ended before message_stop";
    fn usage(&self) -> Option<Usage> {
        self.usage.usage()
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::stream::tests::util::{decode_all, decode_stream};

    pub(crate) const STREAM: &[&str] = &[
        r#"{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":50,"cache_read_input_tokens":20,"cache_creation_input_tokens":0,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Need the tool."}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCkYI"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"ping"}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me\ncheck."}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_A","name":"weather","input":{}}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ris\"}"}}"#,
        r#"{"type":"content_block_stop","index":2}"#,
        r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_B","name":"time","input":{}}}"#,
        r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
        r#"{"type":"content_block_stop","index":3}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":77}}"#,
        r#"{"type":"message_stop"}"#,
    ];

    #[test]
    fn decodes_a_tool_use_stream() {
        let mut d = AnthropicDecoder::new();
        let ev = decode_stream(&mut d, STREAM);
        assert!(
            matches!(&ev[0], Event::Start { id: Some(id), model: Some(m) } if id == "msg_01" && m == "claude-sonnet-4-5")
        );
        let Event::Usage(u) = ev[1] else { panic!() };
        assert_eq!((u.input, u.cached_input), (70, 20), "usage before any text");
        assert!(
            matches!(&ev[2], Event::Text { channel: Channel::Reasoning, text } if text == "Need the tool.")
        );
        assert!(
            matches!(&ev[3], Event::Text { channel: Channel::Content, text } if text == "Let me\ncheck.")
        );
        assert!(
            matches!(&ev[4], Event::ToolStart { index: 0, id, name } if id == "toolu_A" && name == "weather")
        );
        assert!(
            matches!(&ev[5], Event::ToolArgs { index: 0, fragment } if fragment == "{\"city\": \"Pa")
        );
        assert!(matches!(&ev[6], Event::ToolArgs { index: 0, fragment } if fragment == "ris\"}"));
        assert!(matches!(&ev[7], Event::ToolStart { index: 1, id, .. } if id == "toolu_B"));
        assert!(matches!(&ev[8], Event::ToolArgs { index: 1, .. }));
        let Event::Usage(u) = ev[9] else { panic!() };
        assert_eq!((u.input, u.output, u.total), (70, 77, 147));
        assert_eq!(ev[10], Event::Stop(StopReason::ToolCalls));
        assert_eq!(ev[11], Event::Done);
        assert_eq!(ev.len(), 12);
        assert_eq!(d.usage().map(|u| u.total), Some(147));
    }

    #[test]
    fn errors_truncation_and_bounds() {
        let mut d = AnthropicDecoder::new();
        let ev = decode_all(
            &mut d,
            [
                (None, STREAM[0].as_bytes()),
                (
                    Some("error"),
                    br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                ),
            ],
        );
        assert!(
            matches!(&ev[2], Event::Error { status: 503, message, code: Some(c), .. } if message == "Overloaded" && c == "overloaded_error")
        );
        assert!(d.finish().is_ok());

        let mut d = AnthropicDecoder::new();
        let mut out = Vec::new();
        d.decode(None, STREAM[0].as_bytes(), &mut out).unwrap();
        assert!(d.finish().is_err(), "truncated stream is an error");

        let mut d = AnthropicDecoder::new();
        let far = br#"{"type":"content_block_start","index":5000,"content_block":{"type":"tool_use","id":"t","name":"n"}}"#;
        assert!(d.decode(None, far, &mut Vec::new()).is_err());
        let mut d = AnthropicDecoder::new();
        let stray = br#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#;
        assert!(d.decode(None, stray, &mut Vec::new()).is_err());
        let mut d = AnthropicDecoder::new();
        let server = br#"{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"s","name":"web_search"}}"#;
        assert!(d.decode(None, server, &mut Vec::new()).is_err());
    }
}
