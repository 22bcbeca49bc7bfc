//! Bedrock ConverseStream event-stream messages → OpenAI chat.completion.chunk SSE.
//!
//! Feed decoded messages with [`BedrockToOpenAi::on_message`] (or `on_event` with the
//! `:event-type` and payload). `messageStart` → role chunk; `contentBlockStart` with `toolUse`
//! → first tool-call delta; `contentBlockDelta` `text` → `content`, `toolUse.input` →
//! argument fragments, `reasoningContent.text` → `reasoning_content` (signatures and redacted
//! reasoning have no OpenAI form); `messageStop` → finish chunk; `metadata` (usage) → usage
//! chunk (if asked) and `[DONE]`. Exception messages become an OpenAI in-stream error.
//! Unknown event types are informational and skipped.

use super::{slot, BStr, ChunkWriter, StreamTranslator};
use crate::bedrock::eventstream::Message;
use crate::common::bedrock_stop_to_openai;
use crate::error::{parse_upstream_error, ErrorDialect, TranslateError};
use aigw::llm::{Usage, UsageAccumulator, UsageProtocol};
use serde::Deserialize;

/// State machine translating one ConverseStream.
#[derive(Debug)]
pub struct BedrockToOpenAi {
    writer: ChunkWriter,
    usage: UsageAccumulator,
    tools: Vec<Option<u32>>,
    next_tool: u32,
    started: bool,
    stopped: bool,
    done: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    #[serde(default)]
    content_block_index: Option<usize>,
    #[serde(default, borrow)]
    start: Option<Start<'a>>,
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    stop_reason: Option<BStr<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Start<'a> {
    #[serde(default, borrow)]
    tool_use: Option<ToolStart<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolStart<'a> {
    #[serde(borrow)]
    tool_use_id: BStr<'a>,
    #[serde(borrow)]
    name: BStr<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delta<'a> {
    #[serde(default, borrow)]
    text: Option<BStr<'a>>,
    #[serde(default, borrow)]
    tool_use: Option<ToolDelta<'a>>,
    #[serde(default, borrow)]
    reasoning_content: Option<ReasoningDelta<'a>>,
}

#[derive(Deserialize)]
struct ToolDelta<'a> {
    #[serde(default, borrow)]
    input: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct ReasoningDelta<'a> {
    #[serde(default, borrow)]
    text: Option<BStr<'a>>,
}

impl BedrockToOpenAi {
    /// A translator for one stream (Bedrock sends no id or model name in the stream).
    pub fn new(id: &str, model: &str, created: u64, include_usage: bool) -> Self {
        BedrockToOpenAi {
            writer: ChunkWriter::new(id, model, created, include_usage),
            usage: UsageAccumulator::new(UsageProtocol::Bedrock),
            tools: Vec::new(),
            next_tool: 0,
            started: false,
            stopped: false,
            done: false,
        }
    }

    /// Feeds one decoded event-stream message (events and exceptions).
    pub fn on_message(&mut self, msg: &Message, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        if msg.is_error() {
            if self.done {
                return Ok(());
            }
            let ty = msg.exception_type().or_else(|| msg.header(":error-code"));
            let e = parse_upstream_error(ErrorDialect::Bedrock, 500, &msg.payload, ty);
            self.writer
                .error(out, e.kind, &e.message, e.code.as_deref());
            self.done = true;
            return Ok(());
        }
        self.on_event(msg.event_type(), &msg.payload, out)
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

impl StreamTranslator for BedrockToOpenAi {
    fn on_event(
        &mut self,
        event: Option<&str>,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        let ev: Event = match serde_json::from_slice(data) {
            Ok(e) => e,
            Err(e) => {
                return self.fail(
                    out,
                    TranslateError::upstream(format!("unparseable bedrock stream event: {e}")),
                )
            }
        };
        match event.unwrap_or_default() {
            "messageStart" => self.ensure_started(out),
            "contentBlockStart" => {
                self.ensure_started(out);
                if let (Some(index), Some(tu)) =
                    (ev.content_block_index, ev.start.and_then(|s| s.tool_use))
                {
                    let tool = self.next_tool;
                    self.next_tool += 1;
                    match slot(&mut self.tools, index) {
                        Ok(s) => *s = Some(tool),
                        Err(e) => return self.fail(out, e),
                    }
                    self.writer.tool_start(
                        out,
                        tool,
                        tu.tool_use_id.as_str(),
                        tu.name.as_str(),
                        "",
                    );
                }
            }
            "contentBlockDelta" => {
                self.ensure_started(out);
                let Some(d) = ev.delta else { return Ok(()) };
                if let Some(t) = d.text.as_ref().filter(|t| !t.as_str().is_empty()) {
                    self.writer.text(out, t.as_str());
                }
                if let Some(t) = d
                    .reasoning_content
                    .as_ref()
                    .and_then(|r| r.text.as_ref())
                    .filter(|t| !t.as_str().is_empty())
                {
                    self.writer.reasoning(out, t.as_str());
                }
                if let Some(input) = d.tool_use.as_ref().and_then(|t| t.input.as_ref()) {
                    let tool = ev
                        .content_block_index
                        .and_then(|i| self.tools.get(i).copied().flatten());
                    let Some(tool) = tool else {
                        return self.fail(
                            out,
                            TranslateError::upstream(
                                "tool input delta for a block that is not a tool use",
                            ),
                        );
                    };
                    if !input.as_str().is_empty() {
                        self.writer.tool_args(out, tool, input.as_str());
                    }
                }
            }
            "messageStop" => {
                self.ensure_started(out);
                let reason = ev
                    .stop_reason
                    .as_ref()
                    .map(BStr::as_str)
                    .unwrap_or("end_turn");
                self.writer.finish(out, bedrock_stop_to_openai(reason));
                self.stopped = true;
            }
            "metadata" => {
                self.usage.feed(data);
                if self.stopped {
                    self.writer.usage_and_done(out, self.usage.usage());
                    self.done = true;
                }
            }
            // contentBlockStop and unknown informational events.
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        if self.stopped {
            // No metadata event: close with whatever usage we have.
            self.writer.usage_and_done(out, self.usage.usage());
            self.done = true;
            return Ok(());
        }
        self.fail(
            out,
            TranslateError::upstream("bedrock stream ended before messageStop"),
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
    use crate::bedrock::eventstream::{encode, Decoder};

    fn frame(ty: &str, payload: &str) -> Vec<u8> {
        encode(
            &[
                (":event-type", ty),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.as_bytes(),
        )
    }

    fn upstream() -> Vec<u8> {
        [
            frame("messageStart", r#"{"p":"abcdefgh","role":"assistant"}"#),
            frame("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"Compute."}},"p":"ab"}"#),
            frame("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"c2ln"}}}"#),
            frame("contentBlockStop", r#"{"contentBlockIndex":0}"#),
            frame("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"text":"Sure, "}}"#),
            frame("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"text":"calling."}}"#),
            frame("contentBlockStop", r#"{"contentBlockIndex":1}"#),
            frame("contentBlockStart", r#"{"contentBlockIndex":2,"start":{"toolUse":{"toolUseId":"tooluse_X","name":"calc"}}}"#),
            frame("contentBlockDelta", r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"{\"expr\":"}}}"#),
            frame("contentBlockDelta", r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"\"1+1\"}"}}}"#),
            frame("contentBlockStop", r#"{"contentBlockIndex":2}"#),
            frame("messageStop", r#"{"stopReason":"tool_use"}"#),
            frame("metadata", r#"{"usage":{"inputTokens":25,"outputTokens":18,"totalTokens":43},"metrics":{"latencyMs":512}}"#),
        ]
        .concat()
    }

    fn run_split(bytes: &[u8], split: usize) -> Vec<u8> {
        let mut dec = Decoder::new(64 * 1024);
        let mut t = BedrockToOpenAi::new("chatcmpl-b", "claude", 9, true);
        let mut out = Vec::new();
        for piece in [&bytes[..split], &bytes[split..]] {
            for m in dec.push(piece).unwrap() {
                t.on_message(&m, &mut out).unwrap();
            }
        }
        t.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn translates_a_converse_stream_split_at_every_byte() {
        let bytes = upstream();
        let expected = run_split(&bytes, 0);
        let ev = json(&expected);
        assert_eq!(ev[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(
            ev[1]["choices"][0]["delta"]["reasoning_content"],
            "Compute."
        );
        assert_eq!(ev[2]["choices"][0]["delta"]["content"], "Sure, ");
        assert_eq!(ev[3]["choices"][0]["delta"]["content"], "calling.");
        assert_eq!(
            ev[4]["choices"][0]["delta"]["tool_calls"][0]["id"],
            "tooluse_X"
        );
        assert_eq!(
            ev[5]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "{\"expr\":"
        );
        assert_eq!(
            ev[6]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "\"1+1\"}"
        );
        assert_eq!(ev[7]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(ev[8]["usage"]["prompt_tokens"], 25);
        assert_eq!(ev[8]["usage"]["completion_tokens"], 18);
        assert_eq!(ev[9], "[DONE]");
        for split in 1..bytes.len() {
            assert_eq!(run_split(&bytes, split), expected, "split at {split}");
        }
    }

    #[test]
    fn exception_frames_become_errors() {
        let mut bytes = frame("messageStart", r#"{"role":"assistant"}"#);
        bytes.extend(encode(
            &[
                (":message-type", "exception"),
                (":exception-type", "modelStreamErrorException"),
                (":content-type", "application/json"),
            ],
            br#"{"message":"Model stream failed","originalStatusCode":500}"#,
        ));
        let mut dec = Decoder::new(4096);
        let mut t = BedrockToOpenAi::new("i", "m", 0, true);
        let mut out = Vec::new();
        for m in dec.push(&bytes).unwrap() {
            t.on_message(&m, &mut out).unwrap();
        }
        let ev = json(&out);
        assert_eq!(ev[1]["error"]["message"], "Model stream failed");
        assert_eq!(ev[1]["error"]["code"], "modelStreamErrorException");
        assert!(t.is_done());
    }
}
