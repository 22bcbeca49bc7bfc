//! DashScope native SSE (`X-DashScope-SSE: enable`, `incremental_output: true`) → neutral
//! events.
//!
//! Events look like `id:1` / `event:result` / `:HTTP_STATUS/200` /
//! `data:{"output":{"choices":[{"message":{...},"finish_reason":"null"}]},"usage":{...},"request_id":"..."}`.
//! The first event gives [`Event::Start`] with id `chatcmpl-<request_id>`. Each `message`
//! carries increments of `content` (a string or a list of `{"text"}` parts) →
//! content, `reasoning_content` → reasoning, and `tool_calls` (the first increment of a call
//! has its id and name, later ones argument fragments; when the id comes before the name, id
//! and fragments are held until the name arrives). `usage` is cumulative →
//! [`Event::Usage`] (before the event's text). A `finish_reason` other than `null` / `"null"`
//! gives [`Event::Stop`] and [`Event::Done`]. `event:error` (or a body with `code` and no
//! `output`) → [`Event::Error`] with the status for the code. Only the first choice is
//! decoded; `result_format: "text"` answers (`output.text`) are decoded as content.

use super::super::{next_index, slot, BStr, Channel, Decoder, Event, FirstOnly, StopReason};
use super::{decoder_impl, error_event, parse, text, Step, StreamError, ToolIn};
use crate::llm::stream::dashscope_error_status;
use crate::llm::usage::DashScopeUsage;
use crate::llm::Usage;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A tool call slot, keyed by DashScope's `index`.
#[derive(Debug, Clone, Default)]
struct Slot {
    /// Neutral index once [`Event::ToolStart`] was emitted.
    index: Option<u32>,
    /// Id seen before the name.
    id: String,
    /// Argument fragments seen before the name.
    pending: String,
    /// Anything seen at all.
    seen: bool,
}

/// Decoder state for one DashScope stream.
#[derive(Debug, Default)]
pub struct DashScopeDecoder {
    usage: Option<Usage>,
    slots: Vec<Slot>,
    next_tool: u32,
    started: bool,
    done: bool,
    lenient: bool,
    /// The final `finish_reason`, verbatim.
    stop_word: Option<String>,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    output: Option<Output<'a>>,
    #[serde(default)]
    usage: Option<DashScopeUsage>,
    #[serde(default, borrow)]
    request_id: Option<BStr<'a>>,
    #[serde(default, borrow)]
    code: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct Output<'a> {
    #[serde(default, borrow)]
    choices: FirstOnly<Choice<'a>>,
    #[serde(default, borrow)]
    text: Option<BStr<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    finish_reason: Option<BStr<'a>>,
    #[serde(default, borrow)]
    message: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    reasoning_content: Option<BStr<'a>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolIn<'a>>>,
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

/// The text of a `content` value: a string, or the `text` of each part of a list.
fn content_text(raw: &RawValue) -> Result<Option<Cow<'_, str>>, StreamError> {
    let s = raw.get();
    let bad = |e: serde_json::Error| {
        StreamError::upstream(format!("unparseable dashscope message content: {e}"))
    };
    match s.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<BStr>(s)
            .map(|b| Some(b.into_cow()))
            .map_err(bad),
        Some(b'[') => {
            let parts: Vec<Part> = serde_json::from_str(s).map_err(bad)?;
            Ok(Some(Cow::Owned(
                parts.into_iter().filter_map(|p| p.text).collect(),
            )))
        }
        Some(b'n') => Ok(None),
        _ => Err(StreamError::upstream(
            "dashscope message content is neither text nor a list of parts",
        )),
    }
}

impl DashScopeDecoder {
    /// A decoder for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn error<'a>(&mut self, data: &'a [u8], out: &mut Vec<Event<'a>>) {
        #[derive(Deserialize)]
        struct E<'a> {
            #[serde(default, borrow)]
            code: Option<BStr<'a>>,
            #[serde(default, borrow)]
            message: Option<BStr<'a>>,
        }
        let e = serde_json::from_slice::<E>(data).ok();
        let (code, message) = e.map_or((None, None), |e| (e.code, e.message));
        let code = code.filter(|c| !c.as_str().is_empty());
        let status = code
            .as_ref()
            .and_then(|c| dashscope_error_status(c.as_str()))
            .unwrap_or(500);
        out.push(error_event(
            status,
            message.map(BStr::into_cow),
            code.map(BStr::into_cow),
        ));
        self.done = true;
    }

    fn tool<'a>(&mut self, pos: usize, tc: ToolIn<'a>, out: &mut Vec<Event<'a>>) -> Step {
        let at = tc.slot(pos);
        let (name, args) = match tc.function {
            Some(f) => (f.name.filter(|n| !n.as_str().is_empty()), f.arguments),
            None => (None, None),
        };
        let args = args.map(BStr::into_cow).filter(|a| !a.is_empty());
        let s = slot(&mut self.slots, at)?;
        s.seen = true;
        if let Some(index) = s.index {
            if let Some(a) = args {
                out.push(Event::ToolArgs { index, fragment: a });
            }
            return Ok(());
        }
        if let Some(id) = tc.id.filter(|i| !i.as_str().is_empty()) {
            id.as_str().clone_into(&mut s.id);
        }
        let Some(name) = name else {
            if let Some(a) = args {
                s.pending.push_str(&a);
            }
            return Ok(());
        };
        let index = next_index(&mut self.next_tool)?;
        let s = slot(&mut self.slots, at)?;
        s.index = Some(index);
        let id = match std::mem::take(&mut s.id) {
            id if id.is_empty() => format!("call_{index}"),
            id => id,
        };
        let pending = std::mem::take(&mut s.pending);
        out.push(Event::ToolStart {
            index,
            id: Cow::Owned(id),
            name: name.into_cow(),
        });
        let fragment = match (pending.is_empty(), args) {
            (true, a) => a,
            (false, None) => Some(Cow::Owned(pending)),
            (false, Some(a)) => Some(Cow::Owned(pending + &a)),
        };
        if let Some(fragment) = fragment {
            out.push(Event::ToolArgs { index, fragment });
        }
        Ok(())
    }

    /// Starts the calls whose name never came, so that their id and arguments are not lost.
    fn flush_pending(&mut self, out: &mut Vec<Event<'_>>) -> Result<(), StreamError> {
        for s in self
            .slots
            .iter_mut()
            .filter(|s| s.seen && s.index.is_none())
        {
            let index = next_index(&mut self.next_tool)?;
            s.index = Some(index);
            let id = match std::mem::take(&mut s.id) {
                id if id.is_empty() => format!("call_{index}"),
                id => id,
            };
            out.push(Event::ToolStart {
                index,
                id: Cow::Owned(id),
                name: Cow::Borrowed(""),
            });
            let pending = std::mem::take(&mut s.pending);
            if !pending.is_empty() {
                out.push(Event::ToolArgs {
                    index,
                    fragment: Cow::Owned(pending),
                });
            }
        }
        Ok(())
    }

    /// One SSE event: an `error` event, or a result chunk.
    fn step<'a>(&mut self, event: Option<&str>, data: &'a [u8], out: &mut Vec<Event<'a>>) -> Step {
        if event == Some("error") {
            self.error(data, out);
            return Ok(());
        }
        self.chunk(data, out)
    }

    fn chunk<'a>(&mut self, data: &'a [u8], out: &mut Vec<Event<'a>>) -> Result<(), StreamError> {
        let chunk: Chunk = parse(data, "dashscope")?;
        let Some(output) = chunk.output else {
            if chunk.code.is_some_and(|c| !c.as_str().is_empty()) {
                self.error(data, out);
            }
            return Ok(());
        };
        if !self.started {
            self.started = true;
            let id = chunk
                .request_id
                .filter(|r| !r.as_str().is_empty())
                .map(|r| Cow::Owned(format!("chatcmpl-{}", r.as_str())));
            out.push(Event::Start { id, model: None });
        }
        if let Some(u) = chunk.usage {
            let u = u.to_usage();
            self.usage = Some(u);
            out.push(Event::Usage(u));
        }
        let mut finish = output.finish_reason;
        if let Some(t) = output.text {
            text(out, Channel::Content, Some(t.into_cow()));
        }
        if let Some(choice) = output.choices.0 {
            finish = choice.finish_reason.or(finish);
            if let Some(msg) = choice.message {
                text(
                    out,
                    Channel::Reasoning,
                    msg.reasoning_content.map(BStr::into_cow),
                );
                if let Some(raw) = msg.content {
                    text(out, Channel::Content, content_text(raw)?);
                }
                for (pos, tc) in msg.tool_calls.into_iter().flatten().enumerate() {
                    self.tool(pos, tc, out)?;
                }
            }
        }
        let has_tools = self.slots.iter().any(|s| s.seen);
        let finish = finish.as_ref().map(BStr::as_str);
        if let Some(stop) = StopReason::from_dashscope(finish, has_tools) {
            self.stop_word = finish.map(str::to_string);
            self.flush_pending(out)?;
            out.push(Event::Stop(stop));
            out.push(Event::Done);
            self.done = true;
        }
        Ok(())
    }
}

decoder_impl!(DashScopeDecoder, "dashscope stream ended without a finish_reason";
    fn usage(&self) -> Option<Usage> {
        self.usage
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::stream::tests::util::{decode_all, decode_sse};

    /// A real-shaped DashScope stream: thinking, text, a tool call in fragments, usage.
    const STREAM: &str = concat!(
        "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"reasoning_content\":\"Let me \",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":21,\"output_tokens\":2,\"input_tokens\":19,\"output_tokens_details\":{\"reasoning_tokens\":2}},\"request_id\":\"req-7\"}\n\n",
        "id:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"Checking \\\"now\\\".\",\"reasoning_content\":\"\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":24,\"output_tokens\":5,\"input_tokens\":19,\"output_tokens_details\":{\"reasoning_tokens\":2}},\"request_id\":\"req-7\"}\n\n",
        "id:3\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_ab\",\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\"}}]},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":27,\"output_tokens\":8,\"input_tokens\":19},\"request_id\":\"req-7\"}\n\n",
        "id:4\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"\",\"type\":\"function\",\"function\":{\"arguments\":\"\\\"Hangzhou\\\"}\"}}]},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":30,\"output_tokens\":11,\"input_tokens\":19},\"request_id\":\"req-7\"}\n\n",
        "id:5\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"role\":\"assistant\"},\"finish_reason\":\"tool_calls\"}]},\"usage\":{\"total_tokens\":31,\"output_tokens\":12,\"input_tokens\":19,\"prompt_tokens_details\":{\"cached_tokens\":8},\"output_tokens_details\":{\"reasoning_tokens\":2}},\"request_id\":\"req-7\"}\n\n",
    );

    #[test]
    fn decodes_at_every_split() {
        let whole = decode_sse(&mut DashScopeDecoder::new(), STREAM.as_bytes(), &[]).unwrap();
        for cut in 1..STREAM.len() {
            let ev = decode_sse(&mut DashScopeDecoder::new(), STREAM.as_bytes(), &[cut]).unwrap();
            assert_eq!(ev, whole, "cut at {cut}");
        }
        let ev = whole;
        assert!(matches!(&ev[0], Event::Start { id: Some(id), .. } if id == "chatcmpl-req-7"));
        assert!(matches!(ev[1], Event::Usage(_)));
        assert!(
            matches!(&ev[2], Event::Text { channel: Channel::Reasoning, text } if text == "Let me ")
        );
        assert!(
            matches!(&ev[4], Event::Text { channel: Channel::Content, text } if text == "Checking \"now\".")
        );
        assert!(
            matches!(&ev[6], Event::ToolStart { index: 0, id, name } if id == "call_ab" && name == "weather")
        );
        assert!(
            matches!(&ev[7], Event::ToolArgs { index: 0, fragment } if fragment == "{\"city\":")
        );
        assert!(
            matches!(&ev[9], Event::ToolArgs { index: 0, fragment } if fragment == "\"Hangzhou\"}")
        );
        let Event::Usage(u) = ev[10] else {
            panic!("{:?}", ev[10])
        };
        assert_eq!(
            (u.input, u.output, u.total, u.cached_input, u.reasoning),
            (19, 12, 31, 8, 2)
        );
        assert_eq!(ev[11], Event::Stop(StopReason::ToolCalls));
        assert_eq!(ev[12], Event::Done);
    }

    #[test]
    fn errors_truncation_and_late_names() {
        let err = "id:1\nevent:error\n:HTTP_STATUS/429\ndata:{\"code\":\"Throttling.RateQuota\",\"message\":\"Requests rate limit exceeded, please try again later.\",\"request_id\":\"r\"}\n\n";
        let ev = decode_sse(&mut DashScopeDecoder::new(), err.as_bytes(), &[5]).unwrap();
        assert!(
            matches!(&ev[0], Event::Error { status: 429, kind, code: Some(c), .. } if kind == "rate_limit_exceeded" && c == "Throttling.RateQuota")
        );

        let truncated = STREAM.split("id:3").next().unwrap_or_default();
        let mut d = DashScopeDecoder::new();
        decode_sse(&mut d, truncated.as_bytes(), &[]).unwrap();
        assert!(d.finish().is_err());

        let mut d = DashScopeDecoder::new();
        assert!(d
            .decode(Some("result"), b"{not json", &mut Vec::new())
            .is_err());
        assert!(d.is_done());

        let mut d = DashScopeDecoder::new();
        let ev = decode_all(&mut d, [
            r#"{"output":{"choices":[{"message":{"tool_calls":[{"index":0,"id":"c1","function":{"arguments":"{\"a\""}}]},"finish_reason":null}]}}"#,
            r#"{"output":{"choices":[{"message":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":":1}"}}]},"finish_reason":"null"}]}}"#,
            r#"{"output":{"choices":[{"message":{"tool_calls":[{"index":1,"id":"c2","function":{"arguments":"{}"}}]},"finish_reason":"null"}]}}"#,
            r#"{"output":{"choices":[{"message":{"content":""},"finish_reason":"stop"}]},"usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}}"#,
        ].iter().map(|s| (Some("result"), s.as_bytes())));
        assert!(
            matches!(&ev[1], Event::ToolStart { index: 0, id, name } if id == "c1" && name == "f")
        );
        assert!(
            matches!(&ev[2], Event::ToolArgs { index: 0, fragment } if fragment == "{\"a\":1}")
        );
        assert!(
            matches!(&ev[4], Event::ToolStart { index: 1, id, name } if id == "c2" && name.is_empty()),
            "{ev:?}"
        );
        assert!(matches!(&ev[5], Event::ToolArgs { index: 1, fragment } if fragment == "{}"));
        assert_eq!(ev[6], Event::Stop(StopReason::ToolCalls));
        assert_eq!(d.usage().map(|u| u.total), Some(2));
    }
}
