//! Decoders: one upstream dialect's wire events → neutral [`Event`](super::Event)s.

mod anthropic;
mod bedrock;
mod dashscope;
mod gemini;
mod openai;
mod responses;

pub use anthropic::AnthropicDecoder;
pub use bedrock::BedrockDecoder;
pub use dashscope::DashScopeDecoder;
pub use gemini::GeminiDecoder;
pub use openai::OpenAiDecoder;
pub use responses::ResponsesDecoder;

use super::{BStr, Event, StreamError};
use crate::llm::UsageAccumulator;
use serde::Deserialize;
use std::borrow::Cow;

/// One OpenAI-shaped tool-call delta (`tool_calls[i]`), as OpenAI-compatible servers and
/// DashScope stream them.
#[derive(Deserialize)]
struct ToolIn<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default, borrow)]
    id: Option<BStr<'a>>,
    #[serde(default, borrow)]
    function: Option<FnIn<'a>>,
}

/// The function part of a tool-call delta.
#[derive(Deserialize)]
struct FnIn<'a> {
    #[serde(default, borrow)]
    name: Option<BStr<'a>>,
    #[serde(default, borrow)]
    arguments: Option<BStr<'a>>,
}

/// Parses one event's JSON, naming the dialect in the error.
fn parse<'a, T: Deserialize<'a>>(data: &'a [u8], dialect: &str) -> Result<T, StreamError> {
    serde_json::from_slice(data)
        .map_err(|e| StreamError::upstream(format!("unparseable {dialect} stream event: {e}")))
}

/// Feeds `data` to the accumulator and appends the cumulative usage when it carried some.
fn push_usage(acc: &mut UsageAccumulator, data: &[u8], out: &mut Vec<Event<'_>>) {
    if acc.feed(data) {
        if let Some(u) = acc.usage() {
            out.push(Event::Usage(u));
        }
    }
}

/// An [`Event::Error`] from parts, with the OpenAI type derived from the status.
fn error_event<'a>(
    status: u16,
    message: Option<Cow<'a, str>>,
    code: Option<Cow<'a, str>>,
) -> Event<'a> {
    let status = if status < 400 { 502 } else { status };
    Event::Error {
        status,
        kind: Cow::Borrowed(super::openai_error_type(status)),
        message: message
            .unwrap_or_else(|| Cow::Owned(format!("upstream stream error (status {status})"))),
        code,
    }
}

/// A text event unless the text is empty.
fn text<'a>(out: &mut Vec<Event<'a>>, channel: super::Channel, t: Option<Cow<'a, str>>) {
    if let Some(t) = t.filter(|t| !t.is_empty()) {
        out.push(Event::Text { channel, text: t });
    }
}
