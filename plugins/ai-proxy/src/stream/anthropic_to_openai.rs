//! Anthropic Messages SSE → OpenAI chat.completion.chunk SSE.
//!
//! `message_start` → role chunk; `text_delta` → `content`; `thinking_delta` →
//! `reasoning_content`; `tool_use` block start → first tool-call delta (id, name) with the next
//! tool index; `input_json_delta` → argument fragments for that index; `message_delta` → stop
//! reason and usage; `message_stop` → finish chunk, usage chunk (if asked), `[DONE]`.
//! `signature_delta` and `citations_delta` have no OpenAI form and are skipped; `ping` is
//! skipped; an `error` event becomes an OpenAI in-stream error.

use super::{slot, BStr, ChunkWriter, StreamTranslator};
use crate::common::anthropic_stop_to_openai;
use crate::error::{parse_upstream_error, ErrorDialect, TranslateError};
use aigw::llm::{Usage, UsageAccumulator, UsageProtocol};
use serde::Deserialize;

/// What a content block index maps to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Block {
    #[default]
    Other,
    Tool(u32),
}

/// State machine translating one Anthropic stream.
#[derive(Debug)]
pub struct AnthropicToOpenAi {
    writer: ChunkWriter,
    usage: UsageAccumulator,
    blocks: Vec<Block>,
    next_tool: u32,
    stop_reason: Option<&'static str>,
    started: bool,
    done: bool,
}

#[derive(Deserialize)]
struct Event<'a> {
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

impl AnthropicToOpenAi {
    /// A translator for one stream. `id`/`model` are used until `message_start` supplies the
    /// upstream's; `created` stamps every chunk; `include_usage` adds the usage chunk.
    pub fn new(id: &str, model: &str, created: u64, include_usage: bool) -> Self {
        AnthropicToOpenAi {
            writer: ChunkWriter::new(id, model, created, include_usage),
            usage: UsageAccumulator::new(UsageProtocol::Anthropic),
            blocks: Vec::new(),
            next_tool: 0,
            stop_reason: None,
            started: false,
            done: false,
        }
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            self.writer.role(out);
        }
    }

    fn fail(&mut self, out: &mut Vec<u8>, e: TranslateError) -> Result<(), TranslateError> {
        self.writer
            .error(out, e.kind, &e.message, e.code.as_deref());
        self.done = true;
        Err(e)
    }
}

impl StreamTranslator for AnthropicToOpenAi {
    fn on_event(
        &mut self,
        _event: Option<&str>,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        let ev: Event = match serde_json::from_slice(data) {
            Ok(ev) => ev,
            Err(e) => {
                return self.fail(
                    out,
                    TranslateError::upstream(format!("unparseable anthropic stream event: {e}")),
                )
            }
        };
        match ev.kind.as_str() {
            "message_start" => {
                self.usage.feed(data);
                if let Some(m) = &ev.message {
                    if let Some(id) = &m.id {
                        self.writer.set_id(id.as_str());
                    }
                    if let Some(model) = &m.model {
                        self.writer.set_model(model.as_str());
                    }
                }
                self.ensure_started(out);
            }
            "content_block_start" => {
                self.ensure_started(out);
                let (Some(index), Some(block)) = (ev.index, ev.content_block) else {
                    return self.fail(
                        out,
                        TranslateError::upstream("content_block_start without index or block"),
                    );
                };
                match block.kind.as_str() {
                    "text" => {
                        if let Some(t) = block.text.filter(|t| !t.as_str().is_empty()) {
                            self.writer.text(out, t.as_str());
                        }
                    }
                    "thinking" => {
                        if let Some(t) = block.thinking.filter(|t| !t.as_str().is_empty()) {
                            self.writer.reasoning(out, t.as_str());
                        }
                    }
                    "redacted_thinking" => {}
                    "tool_use" => {
                        let tool = self.next_tool;
                        self.next_tool += 1;
                        match slot(&mut self.blocks, index) {
                            Ok(s) => *s = Block::Tool(tool),
                            Err(e) => return self.fail(out, e),
                        }
                        let id = block.id.unwrap_or_default();
                        let name = block.name.unwrap_or_default();
                        self.writer
                            .tool_start(out, tool, id.as_str(), name.as_str(), "");
                    }
                    other => {
                        let e = TranslateError::upstream(format!(
                            "anthropic `{other}` blocks have no OpenAI form"
                        ));
                        return self.fail(out, e);
                    }
                }
            }
            "content_block_delta" => {
                self.ensure_started(out);
                let Some(delta) = ev.delta else {
                    return self.fail(
                        out,
                        TranslateError::upstream("content_block_delta without delta"),
                    );
                };
                match delta.kind.as_ref().map(BStr::as_str) {
                    Some("text_delta") => {
                        if let Some(t) = &delta.text {
                            self.writer.text(out, t.as_str());
                        }
                    }
                    Some("thinking_delta") => {
                        if let Some(t) = &delta.thinking {
                            self.writer.reasoning(out, t.as_str());
                        }
                    }
                    Some("input_json_delta") => {
                        let block = ev
                            .index
                            .and_then(|i| self.blocks.get(i).copied())
                            .unwrap_or_default();
                        let Block::Tool(tool) = block else {
                            return self.fail(
                                out,
                                TranslateError::upstream(
                                    "input_json_delta for a block that is not a tool_use",
                                ),
                            );
                        };
                        if let Some(j) = delta
                            .partial_json
                            .as_ref()
                            .filter(|j| !j.as_str().is_empty())
                        {
                            self.writer.tool_args(out, tool, j.as_str());
                        }
                    }
                    // signature_delta, citations_delta and future deltas: no OpenAI form.
                    _ => {}
                }
            }
            "message_delta" => {
                self.usage.feed(data);
                if let Some(reason) = ev.delta.as_ref().and_then(|d| d.stop_reason.as_ref()) {
                    self.stop_reason = Some(anthropic_stop_to_openai(reason.as_str()));
                }
            }
            "message_stop" => {
                self.ensure_started(out);
                self.writer.finish(out, self.stop_reason.unwrap_or("stop"));
                self.writer.usage_and_done(out, self.usage.usage());
                self.done = true;
            }
            "error" => {
                let e = parse_upstream_error(ErrorDialect::Anthropic, 500, data, None);
                self.writer
                    .error(out, e.kind, &e.message, e.code.as_deref());
                self.done = true;
            }
            // ping, content_block_stop and unknown informational events.
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        self.fail(
            out,
            TranslateError::upstream("anthropic stream ended before message_stop"),
        )
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.usage()
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::json;
    use super::*;

    const STREAM: &[&str] = &[
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
    fn translates_a_tool_use_stream() {
        let mut t = AnthropicToOpenAi::new("fallback", "client-model", 1700000000, true);
        let mut out = Vec::new();
        for e in STREAM {
            t.on_event(None, e.as_bytes(), &mut out).unwrap();
        }
        assert!(t.is_done());
        t.finish(&mut out).unwrap();
        let ev = json(&out);
        assert_eq!(
            ev[0]["choices"][0]["delta"],
            serde_json::json!({"role": "assistant", "content": ""})
        );
        assert_eq!(ev[0]["id"], "msg_01");
        assert_eq!(ev[0]["model"], "claude-sonnet-4-5");
        assert_eq!(ev[0]["object"], "chat.completion.chunk");
        assert_eq!(
            ev[1]["choices"][0]["delta"]["reasoning_content"],
            "Need the tool."
        );
        assert_eq!(ev[2]["choices"][0]["delta"]["content"], "Let me\ncheck.");
        assert_eq!(
            ev[3]["choices"][0]["delta"]["tool_calls"][0],
            serde_json::json!({"index": 0, "id": "toolu_A", "type": "function", "function": {"name": "weather", "arguments": ""}})
        );
        assert_eq!(
            ev[4]["choices"][0]["delta"]["tool_calls"][0],
            serde_json::json!({"index": 0, "function": {"arguments": "{\"city\": \"Pa"}})
        );
        assert_eq!(
            ev[5]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "ris\"}"
        );
        assert_eq!(ev[6]["choices"][0]["delta"]["tool_calls"][0]["index"], 1);
        assert_eq!(
            ev[6]["choices"][0]["delta"]["tool_calls"][0]["id"],
            "toolu_B"
        );
        assert_eq!(
            ev[7]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
        assert_eq!(ev[8]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(ev[9]["choices"], serde_json::json!([]));
        assert_eq!(ev[9]["usage"]["prompt_tokens"], 70);
        assert_eq!(ev[9]["usage"]["completion_tokens"], 77);
        assert_eq!(ev[9]["usage"]["prompt_tokens_details"]["cached_tokens"], 20);
        assert_eq!(ev[10], "[DONE]");
        assert_eq!(ev.len(), 11);
        assert_eq!(t.usage().map(|u| u.total), Some(147));
    }

    #[test]
    fn without_include_usage_and_with_errors() {
        let mut t = AnthropicToOpenAi::new("id", "m", 0, false);
        let mut out = Vec::new();
        for e in [STREAM[0], STREAM[6], STREAM[7], STREAM[17], STREAM[18]] {
            t.on_event(None, e.as_bytes(), &mut out).unwrap();
        }
        let ev = json(&out);
        assert_eq!(ev.last().unwrap(), "[DONE]");
        assert_eq!(
            ev[ev.len() - 2]["choices"][0]["finish_reason"],
            "tool_calls"
        );

        let mut t = AnthropicToOpenAi::new("id", "m", 0, true);
        let mut out = Vec::new();
        t.on_event(None, STREAM[0].as_bytes(), &mut out).unwrap();
        t.on_event(
            Some("error"),
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            &mut out,
        )
        .unwrap();
        let ev = json(&out);
        assert_eq!(ev[1]["error"]["message"], "Overloaded");
        assert!(t.is_done());

        let mut t = AnthropicToOpenAi::new("id", "m", 0, true);
        let mut out = Vec::new();
        t.on_event(None, STREAM[0].as_bytes(), &mut out).unwrap();
        assert!(t.finish(&mut out).is_err(), "truncated stream is an error");
        assert!(json(&out).last().unwrap().get("error").is_some());
    }
}
