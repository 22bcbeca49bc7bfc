//! Decoders: one upstream dialect's wire events → neutral [`Event`](super::Event)s.

mod anthropic;
mod bedrock;
mod dashscope;
mod gemini;
mod openai;
mod openai_fast;
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

/// A JSON object key as raw bytes: compared, never used as text, so the parser skips its UTF-8
/// check (a fifth of the cost of parsing a small stream event, where keys are most strings).
struct RawKey<'de>(Cow<'de, [u8]>);

impl<'de> Deserialize<'de> for RawKey<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawKey<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(RawKey(Cow::Borrowed(v)))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(RawKey(Cow::Owned(v.to_vec())))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RawKey(Cow::Borrowed(v.as_bytes())))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawKey(Cow::Owned(v.as_bytes().to_vec())))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// `Deserialize` for a struct of defaulted fields, as `#[derive(Deserialize)]` with
/// `#[serde(default, borrow)]` on every field would write it (same fields, defaults, unknown
/// keys skipped, duplicate keys refused, array form accepted), except that keys are matched
/// as bytes ([`RawKey`]). For the hot structs of stream events.
macro_rules! byte_keyed {
    ($name:ident { $($field:ident: $key:literal),+ $(,)? }) => {
        impl<'de: 'a, 'a> serde::Deserialize<'de> for $name<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<'a>(std::marker::PhantomData<&'a ()>);
                impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
                    type Value = $name<'a>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("struct ", stringify!($name)))
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Self::Value, A::Error> {
                        $(let $field = seq.next_element()?.unwrap_or_default();)+
                        Ok($name { $($field),+ })
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Self::Value, A::Error> {
                        $(let mut $field = None;)+
                        while let Some(key) = map.next_key::<$crate::llm::stream::decode::RawKey<'de>>()? {
                            let key: &[u8] = &key.0;
                            $(
                                if key == $key.as_bytes() {
                                    if $field.is_some() {
                                        return Err(<A::Error as serde::de::Error>::duplicate_field($key));
                                    }
                                    $field = Some(map.next_value()?);
                                    continue;
                                }
                            )+
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                        Ok($name { $($field: $field.unwrap_or_default()),+ })
                    }
                }
                const FIELDS: &[&str] = &[$($key),+];
                d.deserialize_struct(stringify!($name), FIELDS, V(std::marker::PhantomData))
            }
        }
    };
}
pub(crate) use byte_keyed;

/// What decoding one event gives: `Ok`, or why the stream cannot go on.
type Step = Result<(), StreamError>;

/// Writes the [`Decoder`](super::Decoder) impl the dialect decoders share. The decoder struct
/// has `done: bool`, `lenient: bool` and `stop_word: Option<String>` fields and a method
/// `step(&mut self, event, data, out) -> Step` that decodes one event.
/// `decode` ignores events once done, runs `step`, and (unless lenient) ends the stream at the
/// first error; the decoder's `lenient` builder sets the flag. `finish` is fine once done (or, with `stopped: field`, once that flag is set:
/// a stop seen before the trailing usage) and otherwise reports the truncation `$truncated`.
/// The items after `;` (at least `usage`) go into the impl as written. The calling module
/// imports `Decoder`, `Event`, `Step` and `StreamError`.
macro_rules! decoder_impl {
    ($ty:ty, $truncated:literal $(, stopped: $stopped:ident)?; $($item:item)*) => {
        impl $ty {
            /// Keeps decoding after an event it cannot decode (the error is still returned for
            /// that event): for readers that only observe a stream (usage, logs), which must not
            /// lose the rest of it to one odd event (a server-tool block or binary output, say).
            /// Translators keep the default, where the first error ends the stream.
            pub fn lenient(mut self) -> Self {
                self.lenient = true;
                self
            }
        }

        impl Decoder for $ty {
            fn decode<'a>(&mut self, event: Option<&str>, data: &'a [u8], out: &mut Vec<Event<'a>>) -> Step {
                if self.done {
                    return Ok(());
                }
                let r = self.step(event, data, out);
                if r.is_err() && !self.lenient {
                    self.done = true;
                }
                r
            }

            fn finish(&mut self) -> Result<(), StreamError> {
                let ended = self.done $(|| self.$stopped)?;
                self.done = true;
                if ended {
                    Ok(())
                } else {
                    Err(StreamError::upstream($truncated))
                }
            }

            fn is_done(&self) -> bool {
                self.done
            }

            fn raw_stop_reason(&self) -> Option<&str> {
                self.stop_word.as_deref()
            }

            $($item)*
        }
    };
}
pub(crate) use decoder_impl;

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

impl ToolIn<'_> {
    /// The slot this delta extends: its `index`, else its position in the list.
    fn slot(&self, pos: usize) -> usize {
        self.index
            .map_or(pos, |i| usize::try_from(i).unwrap_or(usize::MAX))
    }
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
