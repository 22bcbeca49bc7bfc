//! Gemini `streamGenerateContent?alt=sse` chunks → neutral events.
//!
//! The first chunk gives [`Event::Start`] (`responseId`, `modelVersion`). `usageMetadata` is
//! cumulative: every chunk carrying it gives [`Event::Usage`] (before the chunk's text). Text
//! parts → content, `thought: true` parts → reasoning, each `functionCall` part → one
//! [`Event::ToolStart`] (its `id`, else `call_<index>`) and one [`Event::ToolArgs`] with the
//! whole `args` JSON (`{}` when absent). The chunk carrying `finishReason` (or a blocked
//! prompt's `promptFeedback.blockReason`) gives [`Event::Stop`] and [`Event::Done`]. An
//! `{"error":{...}}` chunk → [`Event::Error`]. Only the first candidate is decoded; binary
//! `inlineData` parts are refused.

use super::super::{next_index, BStr, Channel, Decoder, Event, FirstOnly, StopReason};
use super::{decoder_impl, error_event, parse, push_usage, Step, StreamError};
use crate::llm::stream::gemini_error_status;
use crate::llm::{Usage, UsageAccumulator, UsageProtocol};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Decoder state for one Gemini stream.
#[derive(Debug)]
pub struct GeminiDecoder {
    usage: UsageAccumulator,
    next_tool: u32,
    started: bool,
    done: bool,
    lenient: bool,
    /// The last `finishReason` (or a blocked prompt's `blockReason`), verbatim.
    stop_word: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk<'a> {
    #[serde(default, borrow)]
    candidates: FirstOnly<Candidate<'a>>,
    #[serde(default, borrow)]
    model_version: Option<BStr<'a>>,
    #[serde(default, borrow)]
    response_id: Option<BStr<'a>>,
    #[serde(default, borrow)]
    prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(default, borrow)]
    error: Option<ErrorIn<'a>>,
}

#[derive(Deserialize)]
struct ErrorIn<'a> {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default, borrow)]
    message: Option<BStr<'a>>,
    #[serde(default, borrow)]
    status: Option<BStr<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback<'a> {
    #[serde(default, borrow)]
    block_reason: Option<BStr<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(default, borrow)]
    content: Option<Content<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(default, borrow)]
    parts: Vec<Part<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(default, borrow)]
    text: Option<BStr<'a>>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default, borrow)]
    function_call: Option<FunctionCall<'a>>,
    #[serde(default)]
    inline_data: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct FunctionCall<'a> {
    #[serde(default, borrow)]
    id: Option<BStr<'a>>,
    #[serde(borrow)]
    name: BStr<'a>,
    #[serde(default, borrow)]
    args: Option<&'a RawValue>,
}

impl Default for GeminiDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl GeminiDecoder {
    /// A decoder for one stream.
    pub fn new() -> Self {
        GeminiDecoder {
            usage: UsageAccumulator::new(UsageProtocol::Gemini),
            next_tool: 0,
            started: false,
            done: false,
            lenient: false,
            stop_word: None,
        }
    }

    fn step<'a>(&mut self, _event: Option<&str>, data: &'a [u8], out: &mut Vec<Event<'a>>) -> Step {
        let chunk: Chunk = parse(data, "gemini")?;
        if let Some(e) = chunk.error {
            let status = e.code.filter(|c| *c >= 400).unwrap_or_else(|| {
                e.status
                    .as_ref()
                    .and_then(|s| gemini_error_status(s.as_str()))
                    .unwrap_or(500)
            });
            out.push(error_event(
                status,
                e.message.map(BStr::into_cow),
                e.status.map(BStr::into_cow),
            ));
            self.done = true;
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: chunk.response_id.map(BStr::into_cow),
                model: chunk.model_version.map(BStr::into_cow),
            });
        }
        push_usage(&mut self.usage, data, out);
        let mut stop = None;
        if let Some(cand) = chunk.candidates.0 {
            for p in cand.content.into_iter().flat_map(|c| c.parts) {
                if let Some(t) = p.text.filter(|t| !t.as_str().is_empty()) {
                    let channel = if p.thought == Some(true) {
                        Channel::Reasoning
                    } else {
                        Channel::Content
                    };
                    out.push(Event::Text {
                        channel,
                        text: t.into_cow(),
                    });
                } else if let Some(fc) = p.function_call {
                    let index = next_index(&mut self.next_tool)?;
                    let id = match fc.id.filter(|i| !i.as_str().is_empty()) {
                        Some(id) => id.into_cow(),
                        None => Cow::Owned(format!("call_{index}")),
                    };
                    out.push(Event::ToolStart {
                        index,
                        id,
                        name: fc.name.into_cow(),
                    });
                    out.push(Event::ToolArgs {
                        index,
                        fragment: Cow::Borrowed(fc.args.map_or("{}", RawValue::get)),
                    });
                } else if p.inline_data.is_some() {
                    return Err(StreamError::upstream(
                        "gemini streamed binary output that cannot be translated",
                    ));
                }
            }
            if let Some(r) = cand.finish_reason {
                stop = Some(StopReason::from_gemini(r.as_str(), self.next_tool > 0));
                self.stop_word = Some(r.as_str().to_string());
            }
        } else if let Some(r) = chunk.prompt_feedback.and_then(|f| f.block_reason) {
            stop = Some(StopReason::ContentFilter);
            self.stop_word = Some(r.as_str().to_string());
        }
        if let Some(s) = stop {
            out.push(Event::Stop(s));
            out.push(Event::Done);
            self.done = true;
        }
        Ok(())
    }
}

decoder_impl!(GeminiDecoder, "gemini stream ended without a finishReason";
    fn usage(&self) -> Option<Usage> {
        self.usage.usage()
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::stream::tests::util::{decode_all, decode_stream};

    #[test]
    fn decodes_thoughts_text_calls_and_cumulative_usage() {
        let chunks = [
            r#"{"candidates":[{"content":{"parts":[{"text":"**Thinking** about it","thought":true}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":12,"totalTokenCount":40,"thoughtsTokenCount":28},"modelVersion":"gemini-2.5-flash","responseId":"r-1"}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"It is "}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":2,"totalTokenCount":42,"thoughtsTokenCount":28},"modelVersion":"gemini-2.5-flash","responseId":"r-1"}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"sunny.\n"},{"functionCall":{"name":"log","args":{"msg":"done","n":[1,2]}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":9,"totalTokenCount":49,"thoughtsTokenCount":28},"modelVersion":"gemini-2.5-flash","responseId":"r-1"}"#,
        ];
        let mut d = GeminiDecoder::new();
        let ev = decode_stream(&mut d, &chunks);
        assert!(matches!(&ev[0], Event::Start { id: Some(id), .. } if id == "r-1"));
        assert!(matches!(ev[1], Event::Usage(_)));
        assert!(
            matches!(&ev[2], Event::Text { channel: Channel::Reasoning, text } if text == "**Thinking** about it")
        );
        assert!(
            matches!(&ev[4], Event::Text { channel: Channel::Content, text } if text == "It is ")
        );
        assert!(
            matches!(&ev[7], Event::ToolStart { index: 0, id, name } if id == "call_0" && name == "log")
        );
        let Event::ToolArgs { fragment, .. } = &ev[8] else {
            panic!()
        };
        let args: serde_json::Value = serde_json::from_str(fragment).unwrap();
        assert_eq!(args, serde_json::json!({"msg": "done", "n": [1, 2]}));
        assert_eq!(ev[9], Event::Stop(StopReason::ToolCalls));
        assert_eq!(ev[10], Event::Done);
        let u = d.usage().unwrap();
        assert_eq!(
            (u.input, u.output, u.total),
            (12, 37, 49),
            "latest wins, thoughts in output"
        );
    }

    #[test]
    fn blocked_prompt_errors_and_truncation() {
        let mut d = GeminiDecoder::new();
        let ev = decode_all(&mut d, [(None, &br#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":4,"totalTokenCount":4}}"#[..])]);
        assert_eq!(ev[2], Event::Stop(StopReason::ContentFilter));
        assert!(d.finish().is_ok());

        let mut d = GeminiDecoder::new();
        let ev = decode_all(
            &mut d,
            [(
                None,
                &br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}"#[..],
            )],
        );
        assert!(
            matches!(&ev[0], Event::Error { status: 429, code: Some(c), .. } if c == "RESOURCE_EXHAUSTED")
        );

        let mut d = GeminiDecoder::new();
        decode_all(
            &mut d,
            [(
                None,
                &br#"{"candidates":[{"content":{"parts":[{"text":"par"}]}}]}"#[..],
            )],
        );
        assert!(d.finish().is_err());
        let mut d = GeminiDecoder::new();
        let bin = br#"{"candidates":[{"content":{"parts":[{"inlineData":{"mimeType":"image/png","data":"AA=="}}]}}]}"#;
        assert!(d.decode(None, bin, &mut Vec::new()).is_err());
    }
}
