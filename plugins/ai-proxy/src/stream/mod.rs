//! Streaming translators: incremental state machines fed one upstream event at a time, each
//! writing zero or more client events as SSE text into a caller-owned buffer.
//!
//! Input is independent of framing: callers pass the SSE event's `data` (and `event` name), or
//! for Bedrock the event-stream message's `:event-type` and payload. Nothing is buffered across
//! events except small per-stream state (ids, block/tool index tables, stop reason, usage
//! counters). Upstream events are parsed into borrowed views ([`BStr`]) so that text deltas
//! without JSON escapes are not copied.
//!
//! | machine | upstream | client |
//! |---|---|---|
//! | [`AnthropicToOpenAi`] | Anthropic Messages SSE | OpenAI chat.completion.chunk SSE |
//! | [`GeminiToOpenAi`] | Gemini `streamGenerateContent?alt=sse` | OpenAI chunks |
//! | [`BedrockToOpenAi`] | Bedrock ConverseStream event-stream | OpenAI chunks |
//! | [`DashScopeToOpenAi`] | DashScope native SSE (`X-DashScope-SSE`) | OpenAI chunks |
//! | [`OpenAiToAnthropic`] | OpenAI chunks | Anthropic Messages SSE |

mod anthropic_to_openai;
mod bedrock_to_openai;
mod chunk_writer;
mod dashscope_to_openai;
mod gemini_to_openai;
mod openai_to_anthropic;

pub use anthropic_to_openai::AnthropicToOpenAi;
pub use bedrock_to_openai::BedrockToOpenAi;
pub use chunk_writer::ChunkWriter;
pub use dashscope_to_openai::DashScopeToOpenAi;
pub use gemini_to_openai::GeminiToOpenAi;
pub use openai_to_anthropic::OpenAiToAnthropic;

use crate::error::TranslateError;
use aigw::llm::Usage;
use serde::de::{Deserialize, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;

/// A translator from one upstream stream protocol to one client stream protocol.
pub trait StreamTranslator {
    /// Feeds one upstream event: `event` is the SSE `event:` name (or Bedrock `:event-type`),
    /// `data` the SSE `data` (or event payload). Client events are appended to `out`.
    ///
    /// Errors mean the upstream sent something unparseable; a client-protocol error event has
    /// then already been written to `out` and the stream should be ended.
    fn on_event(
        &mut self,
        event: Option<&str>,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TranslateError>;

    /// The upstream stream ended. Writes whatever the client still needs (closing events,
    /// `[DONE]`). If the upstream ended before its final event, writes a client-protocol error
    /// event and returns an error.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), TranslateError>;

    /// Token usage seen so far.
    fn usage(&self) -> Option<Usage>;

    /// True once the client stream is complete (nothing more will be written).
    fn is_done(&self) -> bool;
}

/// A string borrowed from the input when it has no JSON escapes, owned otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BStr<'a>(pub Cow<'a, str>);

impl BStr<'_> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for BStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(BStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Keeps only the first element of a JSON array (the rest is skipped without allocating);
/// `null` or `[]` give `None`.
#[derive(Debug)]
pub struct FirstOnly<T>(pub Option<T>);

impl<T> Default for FirstOnly<T> {
    fn default() -> Self {
        FirstOnly(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for FirstOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = FirstOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(FirstOnly(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<T>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstOnly(first))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Appends `data: <json>\n\n`.
pub fn write_data<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    out.extend_from_slice(b"data: ");
    // Serializing our own plain structs into a Vec cannot fail (no maps with non-string keys,
    // no failing Serialize impls); if it ever did, the event would just be empty JSON-wise.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

/// Appends `event: <name>\ndata: <json>\n\n`.
pub fn write_event<T: Serialize>(out: &mut Vec<u8>, name: &str, value: &T) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    write_data(out, value);
}

/// Appends `data: [DONE]\n\n`.
pub fn write_done(out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: [DONE]\n\n");
}

/// Grows a block-index table to hold `index`, refusing absurd indexes from a broken upstream.
pub(crate) fn slot<T: Default + Clone>(
    table: &mut Vec<T>,
    index: usize,
) -> Result<&mut T, TranslateError> {
    const MAX_BLOCKS: usize = 4096;
    if index >= MAX_BLOCKS {
        return Err(TranslateError::upstream(format!(
            "content block index {index} is out of range"
        )));
    }
    if table.len() <= index {
        table.resize(index + 1, T::default());
    }
    table
        .get_mut(index)
        .ok_or_else(|| TranslateError::upstream("content block index out of range"))
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers to read back SSE output in tests.

    /// Splits SSE text into (event name, data) pairs.
    pub fn events(out: &[u8]) -> Vec<(Option<String>, String)> {
        let text = std::str::from_utf8(out).unwrap();
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let mut name = None;
                let mut data = String::new();
                for line in e.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = Some(n.to_string());
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                (name, data)
            })
            .collect()
    }

    /// Data of every event parsed as JSON (`[DONE]` becomes the string "[DONE]").
    pub fn json(out: &[u8]) -> Vec<serde_json::Value> {
        events(out)
            .into_iter()
            .map(|(_, d)| serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bstr_borrows_unescaped_text() {
        #[derive(serde::Deserialize)]
        struct T<'a> {
            #[serde(borrow)]
            a: BStr<'a>,
            #[serde(borrow)]
            b: Option<BStr<'a>>,
            #[serde(default)]
            c: FirstOnly<u32>,
        }
        let t: T =
            serde_json::from_slice(br#"{"a":"plain","b":"esc\naped","c":[7,{"x":[1]},"y"]}"#)
                .unwrap();
        assert!(matches!(t.a.0, Cow::Borrowed("plain")));
        assert_eq!(t.b.unwrap().as_str(), "esc\naped");
        assert_eq!(t.c.0, Some(7));
        let t: T = serde_json::from_slice(br#"{"a":"x","c":null}"#).unwrap();
        assert!(t.c.0.is_none());
    }
}
