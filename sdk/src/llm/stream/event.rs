//! The neutral stream event and the stream error.

use super::StopReason;
use crate::llm::Usage;
use std::borrow::Cow;
use std::fmt;

/// Which text stream of the answer a [`Event::Text`] increment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The visible answer.
    Content,
    /// Reasoning / thinking text.
    Reasoning,
    /// A refusal message (OpenAI `refusal`).
    Refusal,
}

/// One neutral event of a streamed answer, borrowed from the upstream bytes when possible.
///
/// Decoders produce them in answer order; encoders consume them. `index` values of tool calls
/// are 0-based in the order the calls appear in the answer, whatever the upstream numbering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// The answer began; the upstream's response id and model name when it says them.
    Start {
        /// Upstream response id.
        id: Option<Cow<'a, str>>,
        /// Upstream model name.
        model: Option<Cow<'a, str>>,
    },
    /// A text increment on one channel.
    Text {
        /// Which text stream.
        channel: Channel,
        /// The increment (never empty from a decoder).
        text: Cow<'a, str>,
    },
    /// Tool call `index` begins.
    ToolStart {
        /// 0-based position of the call in the answer.
        index: u32,
        /// Upstream call id (generated `call_<index>` when the upstream gave none).
        id: Cow<'a, str>,
        /// Function name (may be empty when the upstream never said it).
        name: Cow<'a, str>,
    },
    /// A fragment of tool call `index`'s JSON arguments text.
    ToolArgs {
        /// 0-based position of the call in the answer.
        index: u32,
        /// The fragment (never empty from a decoder).
        fragment: Cow<'a, str>,
    },
    /// Why generation stopped.
    Stop(StopReason),
    /// Cumulative token usage seen so far (absolute numbers, not increments).
    Usage(Usage),
    /// An in-stream upstream error; nothing follows it.
    Error {
        /// HTTP-like status (>= 400).
        status: u16,
        /// Error type in OpenAI vocabulary (`rate_limit_exceeded`, `api_error`, ...).
        kind: Cow<'a, str>,
        /// Upstream message.
        message: Cow<'a, str>,
        /// Upstream's own error code or type.
        code: Option<Cow<'a, str>>,
    },
    /// The upstream's own terminal event was seen.
    Done,
}

fn own(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

impl Event<'_> {
    /// The same event with every string owned (to keep it past the input buffer).
    pub fn into_owned(self) -> Event<'static> {
        match self {
            Event::Start { id, model } => Event::Start {
                id: id.map(own),
                model: model.map(own),
            },
            Event::Text { channel, text } => Event::Text {
                channel,
                text: own(text),
            },
            Event::ToolStart { index, id, name } => Event::ToolStart {
                index,
                id: own(id),
                name: own(name),
            },
            Event::ToolArgs { index, fragment } => Event::ToolArgs {
                index,
                fragment: own(fragment),
            },
            Event::Stop(r) => Event::Stop(r),
            Event::Usage(u) => Event::Usage(u),
            Event::Error {
                status,
                kind,
                message,
                code,
            } => Event::Error {
                status,
                kind: own(kind),
                message: own(message),
                code: code.map(own),
            },
            Event::Done => Event::Done,
        }
    }
}

/// A stream failure: the upstream sent something unparseable or out of bounds, ended before
/// its terminal event, or (from [`Aggregator`](super::Aggregator)) reported an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// HTTP-like status to report (502 for broken upstream streams).
    pub status: u16,
    /// Error type in OpenAI vocabulary.
    pub kind: String,
    /// What went wrong.
    pub message: String,
    /// Upstream's own error code, when it gave one.
    pub code: Option<String>,
}

impl StreamError {
    /// A broken-upstream error (status 502, type `api_error`).
    pub fn upstream(message: impl Into<String>) -> Self {
        StreamError {
            status: 502,
            kind: "api_error".to_string(),
            message: message.into(),
            code: None,
        }
    }

    /// The error as an [`Event::Error`], for an encoder to write.
    pub fn to_event(&self) -> Event<'_> {
        Event::Error {
            status: self.status,
            kind: Cow::Borrowed(&self.kind),
            message: Cow::Borrowed(&self.message),
            code: self.code.as_deref().map(Cow::Borrowed),
        }
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.kind, self.message)
    }
}

impl std::error::Error for StreamError {}
