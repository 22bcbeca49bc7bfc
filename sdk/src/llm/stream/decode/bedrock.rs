//! Bedrock ConverseStream event-stream messages → neutral events.
//!
//! Feed each decoded message's `:event-type` and JSON payload. `messageStart` →
//! [`Event::Start`] (Bedrock names no id or model); `contentBlockStart` with `toolUse` →
//! [`Event::ToolStart`]; `contentBlockDelta` `text` → content, `reasoningContent.text` →
//! reasoning (signatures and redacted reasoning are skipped), `toolUse.input` → argument
//! fragments; `messageStop` → [`Event::Stop`]; `metadata` → [`Event::Usage`] and, after
//! `messageStop`, [`Event::Done`]. Exception messages go through
//! [`BedrockDecoder::decode_exception`]. A stream that ends after `messageStop` without
//! `metadata` is accepted. Unknown event types are skipped.

use super::super::{next_index, slot, BStr, Channel, Decoder, Event, StopReason};
use super::{decoder_impl, error_event, parse, push_usage, text, Step, StreamError};
use crate::llm::stream::bedrock_exception_status;
use crate::llm::{Usage, UsageAccumulator, UsageProtocol};
use serde::Deserialize;
use std::borrow::Cow;

/// Decoder state for one ConverseStream.
#[derive(Debug)]
pub struct BedrockDecoder {
    usage: UsageAccumulator,
    /// Block index → tool index + 1 (0 = not a tool block).
    tools: Vec<u32>,
    next_tool: u32,
    started: bool,
    stopped: bool,
    done: bool,
    lenient: bool,
    /// The `messageStop` `stopReason`, verbatim.
    stop_word: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
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
    tool_use: Option<Fragment<'a>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Reasoning<'a>>,
}

#[derive(Deserialize)]
struct Fragment<'a> {
    #[serde(default, borrow)]
    input: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct Reasoning<'a> {
    #[serde(default, borrow)]
    text: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct ExceptionBody<'a> {
    #[serde(default, alias = "Message", borrow)]
    message: Option<BStr<'a>>,
}

impl Default for BedrockDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BedrockDecoder {
    /// A decoder for one stream.
    pub fn new() -> Self {
        BedrockDecoder {
            usage: UsageAccumulator::new(UsageProtocol::Bedrock),
            tools: Vec::new(),
            next_tool: 0,
            started: false,
            stopped: false,
            done: false,
            lenient: false,
            stop_word: None,
        }
    }

    /// Decodes an exception message (`:message-type` `exception`, or `error` with
    /// `:error-code`): `exception_type` is its `:exception-type` / `:error-code`, `payload`
    /// its JSON (`{"message":...}`). Gives [`Event::Error`] with the status for the type.
    pub fn decode_exception<'a>(
        &mut self,
        exception_type: Option<&'a str>,
        payload: &'a [u8],
        out: &mut Vec<Event<'a>>,
    ) {
        if self.done {
            return;
        }
        self.done = true;
        let message = serde_json::from_slice::<ExceptionBody>(payload)
            .ok()
            .and_then(|b| b.message)
            .map(BStr::into_cow);
        let status = exception_type.map_or(500, bedrock_exception_status);
        out.push(error_event(
            status,
            message,
            exception_type.map(Cow::Borrowed),
        ));
    }

    fn ensure_started(&mut self, out: &mut Vec<Event<'_>>) {
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: None,
                model: None,
            });
        }
    }

    fn step<'a>(&mut self, event: Option<&str>, data: &'a [u8], out: &mut Vec<Event<'a>>) -> Step {
        let ev: Wire = parse(data, "bedrock")?;
        match event.unwrap_or_default() {
            "messageStart" => self.ensure_started(out),
            "contentBlockStart" => {
                self.ensure_started(out);
                if let (Some(at), Some(tu)) =
                    (ev.content_block_index, ev.start.and_then(|s| s.tool_use))
                {
                    let index = next_index(&mut self.next_tool)?;
                    *slot(&mut self.tools, at)? = index.saturating_add(1);
                    out.push(Event::ToolStart {
                        index,
                        id: tu.tool_use_id.into_cow(),
                        name: tu.name.into_cow(),
                    });
                }
            }
            "contentBlockDelta" => {
                self.ensure_started(out);
                let Some(d) = ev.delta else { return Ok(()) };
                text(out, Channel::Content, d.text.map(BStr::into_cow));
                let reasoning = d.reasoning_content.and_then(|r| r.text);
                text(out, Channel::Reasoning, reasoning.map(BStr::into_cow));
                if let Some(input) = d.tool_use.and_then(|t| t.input) {
                    let tool = ev
                        .content_block_index
                        .and_then(|i| self.tools.get(i).copied())
                        .unwrap_or(0);
                    let Some(index) = tool.checked_sub(1) else {
                        return Err(StreamError::upstream(
                            "tool input delta for a block that is not a tool use",
                        ));
                    };
                    if !input.as_str().is_empty() {
                        out.push(Event::ToolArgs {
                            index,
                            fragment: input.into_cow(),
                        });
                    }
                }
            }
            "messageStop" => {
                self.ensure_started(out);
                let reason = ev.stop_reason.as_ref().map_or("end_turn", BStr::as_str);
                self.stop_word = Some(reason.to_string());
                out.push(Event::Stop(StopReason::from_bedrock(reason)));
                self.stopped = true;
            }
            "metadata" => {
                push_usage(&mut self.usage, data, out);
                if self.stopped {
                    out.push(Event::Done);
                    self.done = true;
                }
            }
            // contentBlockStop and unknown informational events.
            _ => {}
        }
        Ok(())
    }
}

decoder_impl!(BedrockDecoder, "bedrock stream ended before messageStop", stopped: stopped;
    fn usage(&self) -> Option<Usage> {
        self.usage.usage()
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::stream::tests::util::decode_all;

    pub(crate) const STREAM: &[(&str, &str)] = &[
        ("messageStart", r#"{"p":"abcdefgh","role":"assistant"}"#),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"Compute."}},"p":"ab"}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"c2ln"}}}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":0}"#),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":1,"delta":{"text":"Sure, "}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":1,"delta":{"text":"calling."}}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":1}"#),
        (
            "contentBlockStart",
            r#"{"contentBlockIndex":2,"start":{"toolUse":{"toolUseId":"tooluse_X","name":"calc"}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"{\"expr\":"}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"\"1+1\"}"}}}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":2}"#),
        ("messageStop", r#"{"stopReason":"tool_use"}"#),
        (
            "metadata",
            r#"{"usage":{"inputTokens":25,"outputTokens":18,"totalTokens":43},"metrics":{"latencyMs":512}}"#,
        ),
    ];

    #[test]
    fn decodes_a_converse_stream() {
        let mut d = BedrockDecoder::new();
        let ev = decode_all(&mut d, STREAM.iter().map(|(n, p)| (Some(*n), p.as_bytes())));
        d.finish().unwrap();
        assert_eq!(
            ev[0],
            Event::Start {
                id: None,
                model: None
            }
        );
        assert!(
            matches!(&ev[1], Event::Text { channel: Channel::Reasoning, text } if text == "Compute.")
        );
        assert!(
            matches!(&ev[2], Event::Text { channel: Channel::Content, text } if text == "Sure, ")
        );
        assert!(
            matches!(&ev[4], Event::ToolStart { index: 0, id, name } if id == "tooluse_X" && name == "calc")
        );
        assert!(
            matches!(&ev[5], Event::ToolArgs { index: 0, fragment } if fragment == "{\"expr\":")
        );
        assert!(matches!(&ev[6], Event::ToolArgs { index: 0, fragment } if fragment == "\"1+1\"}"));
        assert_eq!(ev[7], Event::Stop(StopReason::ToolCalls));
        let Event::Usage(u) = ev[8] else { panic!() };
        assert_eq!((u.input, u.output, u.total), (25, 18, 43));
        assert_eq!(ev[9], Event::Done);
    }

    #[test]
    fn exceptions_and_missing_metadata() {
        let mut d = BedrockDecoder::new();
        let mut out = Vec::new();
        d.decode(Some("messageStart"), b"{}", &mut out).unwrap();
        d.decode_exception(
            Some("modelStreamErrorException"),
            br#"{"message":"Model stream failed","originalStatusCode":500}"#,
            &mut out,
        );
        assert!(
            matches!(&out[1], Event::Error { status: 502, message, code: Some(c), .. } if message == "Model stream failed" && c == "modelStreamErrorException")
        );
        assert!(d.is_done() && d.finish().is_ok());

        let mut d = BedrockDecoder::new();
        let mut out = Vec::new();
        d.decode(
            Some("messageStop"),
            br#"{"stopReason":"end_turn"}"#,
            &mut out,
        )
        .unwrap();
        assert!(d.finish().is_ok(), "no metadata after messageStop is fine");
        let mut d = BedrockDecoder::new();
        d.decode(Some("messageStart"), b"{}", &mut out).unwrap();
        assert!(d.finish().is_err());
    }
}
