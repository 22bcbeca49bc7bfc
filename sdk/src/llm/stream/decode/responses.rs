//! OpenAI Responses API SSE → neutral events.
//!
//! `response.created` → [`Event::Start`] (response id and model);
//! `response.output_item.added` of a `function_call` item → [`Event::ToolStart`] (its `call_id`
//! and `name`); `response.output_text.delta` → content, `response.refusal.delta` → refusal,
//! `response.reasoning_summary_text.delta` and `response.reasoning_text.delta` → reasoning,
//! `response.function_call_arguments.delta` → argument fragments of the call at that
//! `output_index`. `response.completed` / `response.incomplete` → [`Event::Usage`],
//! [`Event::Stop`] (from `status` and `incomplete_details.reason`; a completed response that
//! called functions is `ToolCalls`) and [`Event::Done`]; `response.failed` and `error` →
//! [`Event::Error`]. Other events (`.done`, `content_part.*`, `in_progress`) carry nothing new.
//! The event kind is read from the data's `type`, else from the SSE `event:` name.

use super::super::{next_index, slot, BStr, Channel, Decoder, Event, StopReason};
use super::{decoder_impl, error_event, parse, push_usage, text, Step, StreamError};
use crate::llm::{Usage, UsageAccumulator, UsageProtocol};
use serde::Deserialize;
use std::borrow::Cow;

/// Decoder state for one Responses stream.
#[derive(Debug)]
pub struct ResponsesDecoder {
    usage: UsageAccumulator,
    /// Output index → tool index + 1 (0 = not a function call).
    items: Vec<u32>,
    next_tool: u32,
    started: bool,
    done: bool,
    lenient: bool,
    /// `incomplete_details.reason`, else the final `status`, verbatim.
    stop_word: Option<String>,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<BStr<'a>>,
    #[serde(default)]
    output_index: Option<usize>,
    #[serde(default, borrow)]
    delta: Option<BStr<'a>>,
    #[serde(default, borrow)]
    item: Option<Item<'a>>,
    #[serde(default, borrow)]
    response: Option<Response<'a>>,
    #[serde(default, borrow)]
    code: Option<BStr<'a>>,
    #[serde(default, borrow)]
    message: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(rename = "type", borrow)]
    kind: BStr<'a>,
    #[serde(default, borrow)]
    call_id: Option<BStr<'a>>,
    #[serde(default, borrow)]
    name: Option<BStr<'a>>,
    #[serde(default, borrow)]
    arguments: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(default, borrow)]
    id: Option<BStr<'a>>,
    #[serde(default, borrow)]
    model: Option<BStr<'a>>,
    #[serde(default, borrow)]
    status: Option<BStr<'a>>,
    #[serde(default, borrow)]
    incomplete_details: Option<Incomplete<'a>>,
    #[serde(default, borrow)]
    error: Option<ErrorIn<'a>>,
}

#[derive(Deserialize)]
struct Incomplete<'a> {
    #[serde(default, borrow)]
    reason: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct ErrorIn<'a> {
    #[serde(default, borrow)]
    code: Option<BStr<'a>>,
    #[serde(default, borrow)]
    message: Option<BStr<'a>>,
}

/// The status for a Responses error code.
fn code_status(code: Option<&str>) -> u16 {
    match code {
        Some("rate_limit_exceeded") => 429,
        Some("invalid_prompt") | Some("invalid_request_error") => 400,
        Some("vector_store_timeout") => 504,
        _ => 500,
    }
}

impl Default for ResponsesDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponsesDecoder {
    /// A decoder for one stream.
    pub fn new() -> Self {
        ResponsesDecoder {
            usage: UsageAccumulator::new(UsageProtocol::Responses),
            items: Vec::new(),
            next_tool: 0,
            started: false,
            done: false,
            lenient: false,
            stop_word: None,
        }
    }

    fn ensure_started<'a>(&mut self, response: Option<&Response<'a>>, out: &mut Vec<Event<'a>>) {
        if !self.started {
            self.started = true;
            let (id, model) = response.map_or((None, None), |r| {
                (
                    r.id.clone().map(BStr::into_cow),
                    r.model.clone().map(BStr::into_cow),
                )
            });
            out.push(Event::Start { id, model });
        }
    }

    fn step<'a>(&mut self, name: Option<&str>, data: &'a [u8], out: &mut Vec<Event<'a>>) -> Step {
        let ev: Wire = parse(data, "responses")?;
        let kind = ev.kind.as_ref().map(BStr::as_str).or(name).unwrap_or("");
        let delta = ev.delta.map(BStr::into_cow);
        match kind {
            "response.created" | "response.in_progress" => {
                self.ensure_started(ev.response.as_ref(), out)
            }
            "response.output_item.added" => {
                self.ensure_started(None, out);
                let Some(item) = ev.item.filter(|i| i.kind.as_str() == "function_call") else {
                    return Ok(());
                };
                let at = ev.output_index.unwrap_or(usize::MAX);
                let index = next_index(&mut self.next_tool)?;
                *slot(&mut self.items, at)? = index.saturating_add(1);
                let id = match item.call_id.filter(|c| !c.as_str().is_empty()) {
                    Some(c) => c.into_cow(),
                    None => Cow::Owned(format!("call_{index}")),
                };
                out.push(Event::ToolStart {
                    index,
                    id,
                    name: item.name.map(BStr::into_cow).unwrap_or_default(),
                });
                if let Some(a) = item.arguments.filter(|a| !a.as_str().is_empty()) {
                    out.push(Event::ToolArgs {
                        index,
                        fragment: a.into_cow(),
                    });
                }
            }
            "response.output_text.delta" => text(out, Channel::Content, delta),
            "response.refusal.delta" => text(out, Channel::Refusal, delta),
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                text(out, Channel::Reasoning, delta)
            }
            "response.function_call_arguments.delta" => {
                let tool = ev
                    .output_index
                    .and_then(|i| self.items.get(i).copied())
                    .unwrap_or(0);
                let Some(index) = tool.checked_sub(1) else {
                    return Err(StreamError::upstream(
                        "function_call_arguments.delta for an item that is not a function call",
                    ));
                };
                if let Some(fragment) = delta.filter(|d| !d.is_empty()) {
                    out.push(Event::ToolArgs { index, fragment });
                }
            }
            "response.completed" | "response.incomplete" => {
                self.ensure_started(ev.response.as_ref(), out);
                push_usage(&mut self.usage, data, out);
                let r = ev.response;
                let status = r.as_ref().and_then(|r| r.status.as_ref()).map_or(
                    if kind == "response.completed" {
                        "completed"
                    } else {
                        "incomplete"
                    },
                    BStr::as_str,
                );
                let reason = r
                    .as_ref()
                    .and_then(|r| r.incomplete_details.as_ref())
                    .and_then(|d| d.reason.as_ref())
                    .map(BStr::as_str);
                self.stop_word = Some(reason.unwrap_or(status).to_string());
                let stop = StopReason::from_responses(status, reason, self.next_tool > 0);
                out.push(Event::Stop(stop));
                out.push(Event::Done);
                self.done = true;
            }
            "response.failed" => {
                push_usage(&mut self.usage, data, out);
                let e = ev.response.and_then(|r| r.error);
                let (code, message) = e.map_or((None, None), |e| (e.code, e.message));
                let status = code_status(code.as_ref().map(BStr::as_str));
                out.push(error_event(
                    status,
                    message.map(BStr::into_cow),
                    code.map(BStr::into_cow),
                ));
                self.done = true;
            }
            "error" => {
                let status = code_status(ev.code.as_ref().map(BStr::as_str));
                out.push(error_event(
                    status,
                    ev.message.map(BStr::into_cow),
                    ev.code.map(BStr::into_cow),
                ));
                self.done = true;
            }
            _ => {}
        }
        Ok(())
    }
}

decoder_impl!(ResponsesDecoder, "responses stream ended before response.completed";
    fn usage(&self) -> Option<Usage> {
        self.usage.usage()
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::stream::tests::util::{decode_all, decode_stream};

    const STREAM: &[&str] = &[
        r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","created_at":1,"status":"in_progress","model":"gpt-5","output":[]}}"#,
        r#"{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}}"#,
        r#"{"type":"response.reasoning_summary_text.delta","sequence_number":2,"item_id":"rs_1","output_index":0,"summary_index":0,"delta":"Hmm."}"#,
        r#"{"type":"response.output_item.added","sequence_number":3,"output_index":1,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}}"#,
        r#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":1,"content_index":0,"delta":"Hi \"you\"","logprobs":[]}"#,
        r#"{"type":"response.output_item.added","sequence_number":5,"output_index":2,"item":{"id":"fc_1","type":"function_call","status":"in_progress","call_id":"call_9","name":"f","arguments":""}}"#,
        r#"{"type":"response.function_call_arguments.delta","sequence_number":6,"item_id":"fc_1","output_index":2,"delta":"{\"a\""}"#,
        r#"{"type":"response.function_call_arguments.delta","sequence_number":7,"item_id":"fc_1","output_index":2,"delta":":1}"}"#,
        r#"{"type":"response.completed","sequence_number":8,"response":{"id":"resp_1","status":"completed","output":[],"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,"output_tokens_details":{"reasoning_tokens":3},"total_tokens":17}}}"#,
    ];

    #[test]
    fn decodes_items_and_completion() {
        let mut d = ResponsesDecoder::new();
        let ev = decode_stream(&mut d, STREAM);
        assert!(
            matches!(&ev[0], Event::Start { id: Some(id), model: Some(m) } if id == "resp_1" && m == "gpt-5")
        );
        assert!(
            matches!(&ev[1], Event::Text { channel: Channel::Reasoning, text } if text == "Hmm.")
        );
        assert!(
            matches!(&ev[2], Event::Text { channel: Channel::Content, text } if text == "Hi \"you\"")
        );
        assert!(
            matches!(&ev[3], Event::ToolStart { index: 0, id, name } if id == "call_9" && name == "f")
        );
        assert!(matches!(&ev[5], Event::ToolArgs { index: 0, fragment } if fragment == ":1}"));
        let Event::Usage(u) = ev[6] else { panic!() };
        assert_eq!(
            (u.input, u.output, u.total, u.cached_input, u.reasoning),
            (10, 7, 17, 4, 3)
        );
        assert_eq!(ev[7], Event::Stop(StopReason::ToolCalls));
        assert_eq!(ev[8], Event::Done);
    }

    #[test]
    fn incomplete_failed_and_error() {
        let mut d = ResponsesDecoder::new();
        let ev = decode_all(&mut d, [(Some("response.incomplete"), &br#"{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"}}}"#[..])]);
        assert_eq!(ev[1], Event::Stop(StopReason::Length));

        let mut d = ResponsesDecoder::new();
        let ev = decode_all(&mut d, [(None, &br#"{"type":"response.failed","response":{"status":"failed","error":{"code":"rate_limit_exceeded","message":"slow down"}}}"#[..])]);
        assert!(
            matches!(&ev[0], Event::Error { status: 429, message, .. } if message == "slow down")
        );
        assert!(d.finish().is_ok());

        let mut d = ResponsesDecoder::new();
        let ev = decode_all(
            &mut d,
            [(
                Some("error"),
                &br#"{"type":"error","code":"server_error","message":"boom","param":null}"#[..],
            )],
        );
        assert!(
            matches!(&ev[0], Event::Error { status: 500, code: Some(c), .. } if c == "server_error")
        );

        let mut d = ResponsesDecoder::new();
        decode_all(&mut d, [(None, STREAM[0].as_bytes())]);
        assert!(d.finish().is_err());
    }
}
