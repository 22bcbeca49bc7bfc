//! Neutral events → OpenAI Responses API SSE.
//!
//! The first event writes `response.created` and `response.in_progress`. Content and refusal
//! text go into a `message` item (`response.output_item.added`, `response.content_part.added`
//! of an `output_text` or `refusal` part, `response.output_text.delta` /
//! `response.refusal.delta`); reasoning into a `reasoning` item
//! (`response.reasoning_summary_part.added`, `response.reasoning_summary_text.delta`); each
//! tool call into a `function_call` item (`call_id`, `name`,
//! `response.function_call_arguments.delta`). An item is closed (`….done` events, then
//! `response.output_item.done`) when another kind starts. [`Event::Done`] (or
//! [`Encoder::finish`]) writes `response.completed`, or `response.incomplete` with
//! `incomplete_details.reason` (`max_output_tokens` on [`StopReason::Length`],
//! `content_filter` on [`StopReason::ContentFilter`]), carrying the whole final `response`
//! object with `output` and `usage`. Every event has `type` and an increasing
//! `sequence_number`; ids are `resp_…`, `msg_…`, `rs_…`, `fc_…`. An [`Event::Error`] becomes
//! an `error` event.

use super::super::{Channel, Encoder, Event, StopReason, MAX_BLOCKS};
use super::responses_items::{item_json, part_json, usage_json, Item, Part};
use super::{prefixed_id, write_json};
use crate::llm::Usage;
use serde::Serialize;
use serde_json::{json, Value};

/// Encoder state for one Responses API stream.
#[derive(Debug, Clone)]
pub struct ResponsesEncoder {
    id: String,
    model: String,
    created_at: u64,
    seq: u64,
    items: Vec<Item>,
    /// The last item is still open.
    open: bool,
    usage: Option<Usage>,
    stop: Option<StopReason>,
    started: bool,
    done: bool,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary_index: Option<usize>,
    delta: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<[(); 0]>,
}

impl ResponsesEncoder {
    /// An encoder for one stream: `id`/`model` are used unless [`Event::Start`] names the
    /// upstream's (the id gets the `resp_` prefix either way); `created_at` is Unix seconds.
    pub fn new(id: &str, model: &str, created_at: u64) -> Self {
        ResponsesEncoder {
            id: prefixed_id("resp_", id, "stream"),
            model: model.to_string(),
            created_at,
            seq: 0,
            items: Vec::new(),
            open: false,
            usage: None,
            stop: None,
            started: false,
            done: false,
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>, kind: &'static str, mut body: Value) {
        if let Value::Object(m) = &mut body {
            m.insert("type".into(), kind.into());
            m.insert("sequence_number".into(), self.seq.into());
        }
        self.seq = self.seq.saturating_add(1);
        write_json(out, Some(kind), &body);
    }

    fn delta(&mut self, out: &mut Vec<u8>, mut d: Delta<'_>) {
        d.sequence_number = self.seq;
        self.seq = self.seq.saturating_add(1);
        write_json(out, Some(d.kind), &d);
    }

    fn response_json(&self, status: &str, incomplete: Option<&str>, final_: bool) -> Value {
        let output: Vec<Value> = if final_ {
            self.items.iter().map(|i| item_json(i, true)).collect()
        } else {
            Vec::new()
        };
        json!({
            "id": self.id, "object": "response", "created_at": self.created_at,
            "status": status, "error": null,
            "incomplete_details": incomplete.map(|r| json!({"reason": r})),
            "instructions": null, "max_output_tokens": null, "model": self.model,
            "output": output, "parallel_tool_calls": true, "previous_response_id": null,
            "reasoning": {"effort": null, "summary": null}, "store": false,
            "temperature": null, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
            "tools": [], "top_p": null, "truncation": "disabled",
            "usage": if final_ { self.usage.as_ref().map(usage_json) } else { None },
            "metadata": {},
        })
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            let r = self.response_json("in_progress", None, false);
            self.emit(out, "response.created", json!({"response": r}));
            let r = self.response_json("in_progress", None, false);
            self.emit(out, "response.in_progress", json!({"response": r}));
        }
    }

    fn close_part(&mut self, out: &mut Vec<u8>) {
        let output_index = self.items.len().saturating_sub(1);
        let Some(Item::Message { id, parts }) = self.items.last() else {
            return;
        };
        let Some(p) = parts.last() else { return };
        let content_index = parts.len().saturating_sub(1);
        let (id, part) = (id.clone(), part_json(p));
        let at =
            json!({"item_id": id, "output_index": output_index, "content_index": content_index});
        let mut done = at.clone();
        if let Value::Object(m) = &mut done {
            if p.refusal {
                m.insert("refusal".into(), p.text.as_str().into());
            } else {
                m.insert("text".into(), p.text.as_str().into());
                m.insert("logprobs".into(), json!([]));
            }
        }
        let name = if p.refusal {
            "response.refusal.done"
        } else {
            "response.output_text.done"
        };
        self.emit(out, name, done);
        let mut part_done = at;
        if let Value::Object(m) = &mut part_done {
            m.insert("part".into(), part);
        }
        self.emit(out, "response.content_part.done", part_done);
    }

    fn close_item(&mut self, out: &mut Vec<u8>) {
        if !self.open {
            return;
        }
        self.open = false;
        let output_index = self.items.len().saturating_sub(1);
        match self.items.last() {
            Some(Item::Message { .. }) => self.close_part(out),
            Some(Item::Reasoning { id, text }) => {
                let (id, text) = (id.clone(), text.clone());
                let at = json!({"item_id": id, "output_index": output_index, "summary_index": 0, "text": text});
                self.emit(out, "response.reasoning_summary_text.done", at);
                let part = json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                    "part": {"type": "summary_text", "text": text}});
                self.emit(out, "response.reasoning_summary_part.done", part);
            }
            Some(Item::Call { id, name, args, .. }) => {
                let done = json!({"item_id": id, "output_index": output_index, "name": name, "arguments": args});
                self.emit(out, "response.function_call_arguments.done", done);
            }
            None => return,
        }
        if let Some(item) = self.items.last().map(|i| item_json(i, true)) {
            self.emit(
                out,
                "response.output_item.done",
                json!({"output_index": output_index, "item": item}),
            );
        }
    }

    fn open_item(&mut self, out: &mut Vec<u8>, item: Item) {
        self.close_item(out);
        let output_index = self.items.len();
        let added = item_json(&item, false);
        let reasoning_id = match &item {
            Item::Reasoning { id, .. } => Some(id.clone()),
            _ => None,
        };
        self.items.push(item);
        self.open = true;
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": output_index, "item": added}),
        );
        if let Some(id) = reasoning_id {
            let part = json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}});
            self.emit(out, "response.reasoning_summary_part.added", part);
        }
    }

    fn item_id(&self, prefix: &str) -> String {
        format!(
            "{prefix}{}_{}",
            self.id.trim_start_matches("resp_"),
            self.items.len()
        )
    }

    fn text(&mut self, out: &mut Vec<u8>, channel: Channel, text: &str) {
        if self.items.len() >= MAX_BLOCKS && !self.open {
            return;
        }
        if channel == Channel::Reasoning {
            if !(self.open && matches!(self.items.last(), Some(Item::Reasoning { .. }))) {
                let id = self.item_id("rs_");
                self.open_item(
                    out,
                    Item::Reasoning {
                        id,
                        text: String::new(),
                    },
                );
            }
            let output_index = self.items.len().saturating_sub(1);
            let Some(Item::Reasoning { id, text: all }) = self.items.last_mut() else {
                return;
            };
            all.push_str(text);
            let id = id.clone();
            let d = Delta {
                kind: "response.reasoning_summary_text.delta",
                sequence_number: 0,
                item_id: &id,
                output_index,
                content_index: None,
                summary_index: Some(0),
                delta: text,
                logprobs: None,
            };
            self.delta(out, d);
            return;
        }
        let refusal = channel == Channel::Refusal;
        if !(self.open && matches!(self.items.last(), Some(Item::Message { .. }))) {
            let id = self.item_id("msg_");
            self.open_item(
                out,
                Item::Message {
                    id,
                    parts: Vec::new(),
                },
            );
        }
        let output_index = self.items.len().saturating_sub(1);
        let same = matches!(self.items.last(), Some(Item::Message { parts, .. }) if parts.last().is_some_and(|p| p.refusal == refusal));
        if !same {
            self.close_part(out);
            let Some(Item::Message { id, parts }) = self.items.last_mut() else {
                return;
            };
            parts.push(Part {
                refusal,
                text: String::new(),
            });
            let (id, content_index) = (id.clone(), parts.len().saturating_sub(1));
            let part = parts.last().map(part_json).unwrap_or(Value::Null);
            self.emit(out, "response.content_part.added", json!({"item_id": id, "output_index": output_index, "content_index": content_index, "part": part}));
        }
        let Some(Item::Message { id, parts }) = self.items.last_mut() else {
            return;
        };
        let content_index = parts.len().saturating_sub(1);
        if let Some(p) = parts.last_mut() {
            p.text.push_str(text);
        }
        let id = id.clone();
        let (kind, logprobs) = if refusal {
            ("response.refusal.delta", None)
        } else {
            ("response.output_text.delta", Some([]))
        };
        let d = Delta {
            kind,
            sequence_number: 0,
            item_id: &id,
            output_index,
            content_index: Some(content_index),
            summary_index: None,
            delta: text,
            logprobs,
        };
        self.delta(out, d);
    }

    fn complete(&mut self, out: &mut Vec<u8>) {
        self.ensure_started(out);
        self.close_item(out);
        let (status, reason) = self.stop.unwrap_or(StopReason::End).to_responses();
        let kind = if reason.is_some() {
            "response.incomplete"
        } else {
            "response.completed"
        };
        let r = self.response_json(status, reason, true);
        self.emit(out, kind, json!({"response": r}));
        self.done = true;
    }
}

impl Encoder for ResponsesEncoder {
    fn encode(&mut self, event: &Event<'_>, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            Event::Start { id, model } => {
                if !self.started {
                    if let Some(id) = id.as_deref().filter(|i| !i.is_empty()) {
                        self.id = prefixed_id("resp_", id, "stream");
                    }
                    if let Some(m) = model.as_deref().filter(|m| !m.is_empty()) {
                        m.clone_into(&mut self.model);
                    }
                }
                self.ensure_started(out);
            }
            Event::Usage(u) => self.usage = Some(*u),
            Event::Text { channel, text } => {
                self.ensure_started(out);
                self.text(out, *channel, text);
            }
            Event::ToolStart { index, id, name } => {
                self.ensure_started(out);
                if self.items.len() >= MAX_BLOCKS {
                    return;
                }
                let call_id = if id.is_empty() {
                    format!("call_{index}")
                } else {
                    id.to_string()
                };
                let item = Item::Call {
                    id: self.item_id("fc_"),
                    call_id,
                    name: name.to_string(),
                    args: String::new(),
                    tool: *index,
                };
                self.open_item(out, item);
            }
            Event::ToolArgs { index, fragment } => {
                self.ensure_started(out);
                let found = self
                    .items
                    .iter_mut()
                    .enumerate()
                    .rev()
                    .find_map(|(i, it)| match it {
                        Item::Call { id, args, tool, .. } if tool == index => {
                            args.push_str(fragment);
                            Some((i, id.clone()))
                        }
                        _ => None,
                    });
                if let Some((output_index, id)) = found {
                    let d = Delta {
                        kind: "response.function_call_arguments.delta",
                        sequence_number: 0,
                        item_id: &id,
                        output_index,
                        content_index: None,
                        summary_index: None,
                        delta: fragment,
                        logprobs: None,
                    };
                    self.delta(out, d);
                }
            }
            Event::Stop(reason) => {
                self.ensure_started(out);
                self.close_item(out);
                self.stop = Some(*reason);
            }
            Event::Error {
                kind,
                message,
                code,
                ..
            } => {
                let code = code.as_deref().unwrap_or(kind);
                self.emit(
                    out,
                    "error",
                    json!({"code": code, "message": message, "param": null}),
                );
                self.done = true;
            }
            Event::Done => self.complete(out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.done {
            self.complete(out);
        }
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::stream::tests::util::json_events;

    #[test]
    fn writes_items_in_sequence_with_a_final_response() {
        let mut e = ResponsesEncoder::new("chatcmpl-1", "m", 7);
        let mut out = Vec::new();
        for ev in [
            Event::Start {
                id: None,
                model: Some("gpt".into()),
            },
            Event::Text {
                channel: Channel::Reasoning,
                text: "Hm".into(),
            },
            Event::Text {
                channel: Channel::Content,
                text: "Hi ".into(),
            },
            Event::Text {
                channel: Channel::Content,
                text: "there".into(),
            },
            Event::ToolStart {
                index: 0,
                id: "toolu_1".into(),
                name: "f".into(),
            },
            Event::ToolArgs {
                index: 0,
                fragment: "{\"a\":".into(),
            },
            Event::ToolArgs {
                index: 0,
                fragment: "1}".into(),
            },
            Event::Stop(StopReason::ToolCalls),
            Event::Usage(Usage {
                input: 5,
                output: 9,
                total: 14,
                cached_input: 2,
                reasoning: 3,
                cache_creation_input: None,
            }),
            Event::Done,
        ] {
            e.encode(&ev, &mut out);
        }
        let ev = json_events(&out);
        for (i, (name, data)) in ev.iter().enumerate() {
            assert_eq!(data["sequence_number"], i, "{name:?}");
            assert_eq!(name.as_deref(), data["type"].as_str());
        }
        let names: Vec<&str> = ev.iter().filter_map(|(n, _)| n.as_deref()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert_eq!(ev[0].1["response"]["id"], "resp_chatcmpl-1");
        assert_eq!(ev[0].1["response"]["model"], "gpt");
        assert_eq!(ev[10].1["item_id"], "msg_chatcmpl-1_1");
        assert_eq!(ev[10].1["output_index"], 1);
        assert_eq!(ev[10].1["content_index"], 0);
        assert_eq!(ev[12].1["text"], "Hi there");
        assert_eq!(ev[15].1["item"]["call_id"], "toolu_1");
        assert_eq!(ev[18].1["arguments"], "{\"a\":1}");
        let r = &ev[20].1["response"];
        assert_eq!(r["status"], "completed");
        assert_eq!(r["output"][1]["content"][0]["text"], "Hi there");
        assert_eq!(r["output"][2]["arguments"], "{\"a\":1}");
        assert_eq!(r["output"][0]["summary"][0]["text"], "Hm");
        assert_eq!(
            r["usage"],
            json!({"input_tokens": 5, "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0}, "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 14})
        );
    }

    /// Current OpenAI clients (openai-python 3.x) require `cache_write_tokens` in
    /// `input_tokens_details`; Anthropic's cache writes fill it.
    #[test]
    fn usage_always_has_cache_write_tokens() {
        for (creation, expected) in [(Some(7), 7), (None, 0)] {
            let mut e = ResponsesEncoder::new("r", "m", 0);
            let mut out = Vec::new();
            for ev in [
                Event::Text {
                    channel: Channel::Content,
                    text: "a".into(),
                },
                Event::Stop(StopReason::End),
                Event::Usage(Usage {
                    input: 20,
                    output: 1,
                    total: 21,
                    cached_input: 3,
                    reasoning: 0,
                    cache_creation_input: creation,
                }),
                Event::Done,
            ] {
                e.encode(&ev, &mut out);
            }
            let ev = json_events(&out);
            let last = &ev[ev.len() - 1].1;
            assert_eq!(last["type"], "response.completed");
            assert_eq!(
                last["response"]["usage"]["input_tokens_details"],
                json!({"cached_tokens": 3, "cache_write_tokens": expected})
            );
        }
    }

    #[test]
    fn length_is_incomplete_and_refusal_is_a_part() {
        let mut e = ResponsesEncoder::new("resp_x", "m", 0);
        let mut out = Vec::new();
        e.encode(
            &Event::Text {
                channel: Channel::Content,
                text: "a".into(),
            },
            &mut out,
        );
        e.encode(
            &Event::Text {
                channel: Channel::Refusal,
                text: "no".into(),
            },
            &mut out,
        );
        e.encode(&Event::Stop(StopReason::Length), &mut out);
        e.finish(&mut out);
        let ev = json_events(&out);
        let last = &ev[ev.len() - 1].1;
        assert_eq!(last["type"], "response.incomplete");
        assert_eq!(
            last["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
        assert_eq!(
            last["response"]["output"][0]["content"][1],
            json!({"type": "refusal", "refusal": "no"})
        );
        assert!(ev.iter().any(
            |(n, d)| n.as_deref() == Some("response.refusal.delta") && d["content_index"] == 1
        ));

        let mut e = ResponsesEncoder::new("r", "m", 0);
        let mut out = Vec::new();
        e.fail(&crate::llm::stream::StreamError::upstream("cut"), &mut out);
        let ev = json_events(&out);
        assert_eq!(
            ev[0].1,
            json!({"type": "error", "sequence_number": 0, "code": "api_error", "message": "cut", "param": null})
        );
    }
}
