//! OpenAI `chat.completion.chunk` SSE → neutral events.
//!
//! The first chunk gives [`Event::Start`] (id, model). `delta.content` → content text,
//! `reasoning_content` (or `reasoning`, as some compatible servers name it) → reasoning,
//! `refusal` → refusal text. A tool-call delta with a new `index` (or a new id and name on a
//! known index, as some compatible servers send parallel calls) starts a call; its `arguments`
//! are argument fragments. `finish_reason` → [`Event::Stop`]; a chunk with `usage` →
//! [`Event::Usage`] (before the chunk's text); `data: [DONE]` → [`Event::Done`]. An
//! `{"error":{...}}` chunk → [`Event::Error`]. Only the first choice is decoded. A stream that
//! ends after a `finish_reason` without `[DONE]` is accepted (some servers omit it). Legacy
//! completions chunks (`choices[0].text`) give content text.

use super::super::{next_index, slot, BStr, Channel, Decoder, Event, FirstOnly, StopReason};
use super::openai_fast::FastChoice;
use super::{byte_keyed, decoder_impl, error_event, parse, text, Step, StreamError, ToolIn};
use crate::llm::stream::same_shape::SameShape;
use crate::llm::{Usage, UsageAccumulator, UsageProtocol};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A tool call slot, keyed by the upstream's `index`.
#[derive(Debug, Clone, Default)]
struct Slot {
    /// Neutral index once started.
    index: Option<u32>,
    /// The upstream id of the call in this slot.
    id: String,
}

/// Decoder state for one OpenAI chat completion stream.
#[derive(Debug)]
pub struct OpenAiDecoder {
    usage: UsageAccumulator,
    slots: Vec<Slot>,
    next_tool: u32,
    started: bool,
    stopped: bool,
    done: bool,
    lenient: bool,
    /// The last `finish_reason`, verbatim.
    stop_word: Option<String>,
    /// Chunks after the first are tried with the fast reader first (off only in tests that
    /// compare it with serde).
    fast: bool,
    /// The last chunk the fast reader read whose only text was a plain `content` string: a
    /// chunk with the same bytes around another plain string is not parsed again.
    shape: SameShape,
}

/// The first chunk: the start event's id and model, and the rest of a chunk.
struct FirstChunk<'a> {
    id: Option<BStr<'a>>,
    model: Option<BStr<'a>>,
    choices: FirstOnly<ChoiceIn<'a>>,
    error: Option<Box<ErrorIn<'a>>>,
    usage: Option<&'a RawValue>,
}

/// Every later chunk: id and model are not read again (the parser skips them unchecked), the
/// usage object is kept raw for the accumulator (one parse an event, no second search), and
/// the rare error object is boxed so the common chunk stays small to move.
struct Chunk<'a> {
    choices: FirstOnly<ChoiceIn<'a>>,
    error: Option<Box<ErrorIn<'a>>>,
    usage: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ErrorIn<'a> {
    #[serde(default, borrow)]
    message: Option<BStr<'a>>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<BStr<'a>>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

struct ChoiceIn<'a> {
    delta: Option<DeltaIn<'a>>,
    finish_reason: Option<BStr<'a>>,
    /// Legacy completions (`/v1/completions`) stream their text here.
    text: Option<BStr<'a>>,
}

struct DeltaIn<'a> {
    content: Option<BStr<'a>>,
    reasoning_content: Option<BStr<'a>>,
    reasoning: Option<BStr<'a>>,
    refusal: Option<BStr<'a>>,
    tool_calls: Option<Vec<ToolIn<'a>>>,
}

byte_keyed!(FirstChunk {
    id: "id",
    model: "model",
    choices: "choices",
    error: "error",
    usage: "usage",
});
byte_keyed!(Chunk {
    choices: "choices",
    error: "error",
    usage: "usage",
});
byte_keyed!(ChoiceIn {
    delta: "delta",
    finish_reason: "finish_reason",
    text: "text",
});
byte_keyed!(DeltaIn {
    content: "content",
    reasoning_content: "reasoning_content",
    reasoning: "reasoning",
    refusal: "refusal",
    tool_calls: "tool_calls",
});

impl Default for OpenAiDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenAiDecoder {
    /// A decoder for one stream.
    pub fn new() -> Self {
        OpenAiDecoder {
            usage: UsageAccumulator::new(UsageProtocol::OpenAi),
            slots: Vec::new(),
            next_tool: 0,
            started: false,
            stopped: false,
            done: false,
            lenient: false,
            stop_word: None,
            fast: true,
            shape: SameShape::default(),
        }
    }

    /// The same decoder reading every chunk with serde: the reference the fast reader is
    /// tested against.
    #[cfg(test)]
    pub(super) fn serde_only(mut self) -> Self {
        self.fast = false;
        self
    }

    fn tool<'a>(&mut self, pos: usize, tc: ToolIn<'a>, out: &mut Vec<Event<'a>>) -> Step {
        let at = tc.slot(pos);
        let (name, args) = match tc.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let id = tc.id.filter(|i| !i.as_str().is_empty());
        let slot = slot(&mut self.slots, at)?;
        // A known slot restarts only for a different call (new id and a name).
        let fresh = match (slot.index, &id) {
            (None, _) => true,
            (Some(_), Some(id)) => name.is_some() && id.as_str() != slot.id,
            (Some(_), None) => false,
        };
        let index = if fresh {
            let index = next_index(&mut self.next_tool)?;
            slot.index = Some(index);
            slot.id = id
                .as_ref()
                .map(|i| i.as_str().to_string())
                .unwrap_or_default();
            let id = match id {
                Some(id) => id.into_cow(),
                None => Cow::Owned(format!("call_{index}")),
            };
            out.push(Event::ToolStart {
                index,
                id,
                name: name.map(BStr::into_cow).unwrap_or_default(),
            });
            index
        } else {
            slot.index.unwrap_or_default()
        };
        if let Some(a) = args.filter(|a| !a.as_str().is_empty()) {
            out.push(Event::ToolArgs {
                index,
                fragment: a.into_cow(),
            });
        }
        Ok(())
    }

    /// One SSE data payload: the `[DONE]` sentinel, or a chunk.
    fn step<'a>(&mut self, _event: Option<&str>, data: &'a [u8], out: &mut Vec<Event<'a>>) -> Step {
        if data.trim_ascii() == b"[DONE]" {
            self.done = true;
            out.push(Event::Done);
            return Ok(());
        }
        self.chunk(data, out)
    }

    fn chunk<'a>(&mut self, data: &'a [u8], out: &mut Vec<Event<'a>>) -> Result<(), StreamError> {
        if self.started && self.fast {
            // The last plain chunk again with another text: nothing else to read.
            if let Some((_, t)) = self.shape.text(data) {
                text(out, Channel::Content, Some(Cow::Borrowed(t)));
                return Ok(());
            }
            // The common chunk, read without serde; anything unusual falls through.
            if let Some(choice) = super::openai_fast::read_chunk(data) {
                if let Some(c) = choice {
                    self.learn_shape(data, &c);
                    self.fast_choice(c, out);
                }
                return Ok(());
            }
        }
        let chunk = if self.started {
            parse::<Chunk>(data, "OpenAI")?
        } else {
            let first: FirstChunk = parse(data, "OpenAI")?;
            if first.error.is_none() {
                self.started = true;
                out.push(Event::Start {
                    id: first.id.map(BStr::into_cow),
                    model: first.model.map(BStr::into_cow),
                });
            }
            Chunk {
                choices: first.choices,
                error: first.error,
                usage: first.usage,
            }
        };
        if let Some(err) = chunk.error {
            let err = *err;
            let code = match err.code {
                Some(serde_json::Value::String(s)) => Some(Cow::Owned(s)),
                Some(serde_json::Value::Number(n)) => Some(Cow::Owned(n.to_string())),
                _ => None,
            };
            let status = match err.kind.as_ref().map(BStr::as_str) {
                Some("invalid_request_error") => 400,
                Some("authentication_error") => 401,
                Some("permission_error") => 403,
                Some("rate_limit_exceeded") | Some("rate_limit_error") => 429,
                Some("service_unavailable") | Some("overloaded_error") => 503,
                _ => 502,
            };
            let mut ev = error_event(status, err.message.map(BStr::into_cow), code);
            if let (Event::Error { kind, .. }, Some(k)) = (&mut ev, err.kind) {
                *kind = k.into_cow();
            }
            out.push(ev);
            self.done = true;
            return Ok(());
        }
        if let Some(u) = chunk.usage {
            if self.usage.feed_usage_value(u.get().as_bytes()) {
                if let Some(u) = self.usage.usage() {
                    out.push(Event::Usage(u));
                }
            }
        }
        let Some(choice) = chunk.choices.0 else {
            return Ok(());
        };
        if let Some(d) = choice.delta {
            delta_texts(out, d.reasoning_content, d.reasoning, d.content, d.refusal);
            for (pos, tc) in d.tool_calls.into_iter().flatten().enumerate() {
                self.tool(pos, tc, out)?;
            }
        }
        self.choice_end(choice.text, choice.finish_reason, out);
        Ok(())
    }

    /// Remembers `data` when its first choice is only a plain, non-empty `content` string.
    fn learn_shape(&mut self, data: &[u8], c: &FastChoice<'_>) {
        let Some(d) = &c.delta else { return };
        let Some(BStr(Cow::Borrowed(t))) = &d.content else {
            return;
        };
        let plain = c.text.is_none()
            && c.finish_reason.is_none()
            && d.reasoning_content.is_none()
            && d.reasoning.is_none()
            && d.refusal.is_none()
            && !t.is_empty();
        let Some(start) = (t.as_ptr() as usize).checked_sub(data.as_ptr() as usize) else {
            return;
        };
        let literal = start.saturating_sub(1)..start + t.len() + 1;
        let quoted = data.get(literal.clone()).is_some_and(|l| {
            l.len() == t.len() + 2 && l.first() == Some(&b'"') && l.last() == Some(&b'"')
        });
        if plain && start > 0 && quoted {
            self.shape.learn(data, literal);
        }
    }

    /// The events of a first choice read by the fast reader: the same as [`Self::chunk`]
    /// gives for it (a fast choice has no tool calls).
    fn fast_choice<'a>(&mut self, c: FastChoice<'a>, out: &mut Vec<Event<'a>>) {
        if let Some(d) = c.delta {
            delta_texts(out, d.reasoning_content, d.reasoning, d.content, d.refusal);
        }
        self.choice_end(c.text, c.finish_reason, out);
    }

    /// A choice's legacy text, then its finish reason.
    fn choice_end<'a>(
        &mut self,
        legacy: Option<BStr<'a>>,
        finish: Option<BStr<'a>>,
        out: &mut Vec<Event<'a>>,
    ) {
        text(out, Channel::Content, legacy.map(BStr::into_cow));
        if let Some(f) = finish {
            self.stopped = true;
            self.stop_word = Some(f.as_str().to_string());
            out.push(Event::Stop(StopReason::from_openai(f.as_str())));
        }
    }
}

/// A delta's texts in order: reasoning (`reasoning_content`, else `reasoning`), content,
/// refusal.
fn delta_texts<'a>(
    out: &mut Vec<Event<'a>>,
    reasoning_content: Option<BStr<'a>>,
    reasoning: Option<BStr<'a>>,
    content: Option<BStr<'a>>,
    refusal: Option<BStr<'a>>,
) {
    let reasoning = reasoning_content.or(reasoning).map(BStr::into_cow);
    text(out, Channel::Reasoning, reasoning);
    text(out, Channel::Content, content.map(BStr::into_cow));
    text(out, Channel::Refusal, refusal.map(BStr::into_cow));
}

decoder_impl!(OpenAiDecoder, "OpenAI stream ended before a finish_reason", stopped: stopped;
    fn usage(&self) -> Option<Usage> {
        self.usage.usage()
    }

    fn only_text(&self, data: &[u8]) -> bool {
        // The check `chunk` makes first, and there it yields one text event and nothing else.
        !self.done && self.started && self.fast && self.shape.text(data).is_some()
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::stream::tests::util::{decode_all, decode_stream};

    const DEEPSEEK: &[&str] = &[
        r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":"Think"},"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]},"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":10}}}"#,
        "[DONE]",
    ];

    #[test]
    fn decodes_reasoning_text_tools_usage() {
        let mut d = OpenAiDecoder::new();
        let ev = decode_stream(&mut d, DEEPSEEK);
        assert_eq!(
            ev[0],
            Event::Start {
                id: Some("chatcmpl-9".into()),
                model: Some("deepseek-reasoner".into())
            }
        );
        assert_eq!(
            ev[1],
            Event::Text {
                channel: Channel::Reasoning,
                text: "Think".into()
            }
        );
        assert!(matches!(&ev[2], Event::Text { channel: Channel::Content, text } if text == "Hi"));
        assert_eq!(
            ev[3],
            Event::ToolStart {
                index: 0,
                id: "call_1".into(),
                name: "f".into()
            }
        );
        assert!(matches!(&ev[4], Event::ToolArgs { index: 0, fragment } if fragment == "{\"a\":"));
        assert!(matches!(&ev[5], Event::ToolArgs { index: 0, fragment } if fragment == "1}"));
        assert!(matches!(&ev[6], Event::ToolStart { index: 1, .. }));
        assert!(matches!(&ev[7], Event::ToolArgs { index: 1, fragment } if fragment == "{}"));
        assert_eq!(ev[8], Event::Stop(StopReason::ToolCalls));
        let Event::Usage(u) = ev[9] else {
            panic!("{:?}", ev[9])
        };
        assert_eq!((u.input, u.output, u.cached_input), (30, 12, 10));
        assert_eq!(ev[10], Event::Done);
        assert_eq!(ev.len(), 11);
    }

    #[test]
    fn byte_keyed_chunks_read_as_the_derived_ones_did() {
        // Escaped keys, unknown keys, id and model after the start, usage in the same parse.
        let mut d = OpenAiDecoder::new();
        let ev = decode_all(
            &mut d,
            [
                r#"{"id":"a","model":"m","choices":[{"delta":{"\u0063ontent":"x"}}]}"#,
                r#"{"id":"a","model":7,"extra":{"content":"no"},"choices":[{"delta":{"content":"y","role":"assistant"},"finish_reason":null},{"delta":{"content":"second"}}]}"#,
                r#"{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
            ]
            .iter()
            .map(|s| (None, s.as_bytes())),
        );
        let texts: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Text { text, .. } => Some(text.as_ref()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["x", "y"]);
        assert!(matches!(&ev[0], Event::Start { model: Some(m), .. } if m == "m"));
        assert!(ev.contains(&Event::Stop(StopReason::End)));
        assert_eq!(
            d.usage().map(|u| (u.input, u.output, u.total)),
            Some((3, 2, 5))
        );
        // A repeated key is refused, as derived structs refuse it; the array form is accepted.
        let mut out = Vec::new();
        let mut d = OpenAiDecoder::new();
        assert!(d
            .decode(
                None,
                br#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
                &mut out
            )
            .is_err());
        let mut d = OpenAiDecoder::new();
        let mut out = Vec::new();
        d.decode(
            None,
            br#"{"choices":[[{"content":"arr"},"length"]]}"#,
            &mut out,
        )
        .unwrap();
        assert!(out.contains(&Event::Text {
            channel: Channel::Content,
            text: "arr".into()
        }));
        assert_eq!(d.raw_stop_reason(), Some("length"));
    }

    #[test]
    fn same_index_new_id_is_a_new_call_and_errors_and_truncation() {
        let mut d = OpenAiDecoder::new();
        let ev = decode_all(
            &mut d,
            [
                r#"{"id":"x","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{}"}}]}}]}"#,
                r#"{"id":"x","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"b","function":{"name":"g","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#,
            ]
            .iter()
            .map(|s| (None, s.as_bytes())),
        );
        assert!(matches!(&ev[3], Event::ToolStart { index: 1, id, .. } if id == "b"));
        assert!(
            d.finish().is_ok(),
            "finish_reason without [DONE] is accepted"
        );

        let mut d = OpenAiDecoder::new();
        let ev = decode_all(
            &mut d,
            [(
                None,
                &br#"{"error":{"message":"rate limited","type":"rate_limit_exceeded","code":"x"}}"#
                    [..],
            )],
        );
        assert!(
            matches!(&ev[0], Event::Error { status: 429, message, code: Some(c), .. } if message == "rate limited" && c == "x")
        );
        assert!(d.is_done());

        let mut d = OpenAiDecoder::new();
        let mut out = Vec::new();
        d.decode(
            None,
            br#"{"choices":[{"delta":{"content":"par"}}]}"#,
            &mut out,
        )
        .unwrap();
        assert!(d.finish().is_err());
        let mut d = OpenAiDecoder::new();
        assert!(d.decode(None, b"{nope", &mut out).is_err());
        let big = br#"{"choices":[{"delta":{"tool_calls":[{"index":99999,"id":"a","function":{"name":"f"}}]}}]}"#;
        let mut d = OpenAiDecoder::new();
        assert!(d.decode(None, big, &mut out).is_err());
    }
}
