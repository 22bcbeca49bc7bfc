//! Guarding a streamed answer (Server-Sent Events) event by event.
//!
//! The body is parsed into events however it is split into chunks. The
//! answer text of each event is fed to a per-channel [`AnswerStream`]
//! (moderation with the hold-back window, then restoring the request's
//! placeholders); the event is re-emitted carrying the text that became final,
//! so text lags behind by at most the window and is flushed into the event that
//! ends the channel. A word or number split across chunks or across events is
//! therefore caught exactly as in one piece of text.
//!
//! Channels (one per choice and field, or per content block):
//! - OpenAI chat chunks: `choices[i].delta.content`,
//!   `choices[i].delta.reasoning_content`, legacy `choices[i].text`, and
//!   `choices[i].delta.tool_calls[k].function.arguments` per tool call index
//!   `k`; flushed into the chunk carrying `finish_reason` (or before `[DONE]`,
//!   or at the end);
//! - Anthropic: `content_block_delta` `text_delta.text` / `thinking_delta.thinking`
//!   / `input_json_delta.partial_json` per block index; flushed as an extra
//!   `content_block_delta` before `content_block_stop`;
//!
//! Tool arguments are JSON text: restored values are JSON-escaped there.
//! - OpenAI Responses: `response.output_text.delta` per output and content
//!   index; flushed before `response.output_text.done`, whose full `text` (and
//!   the full texts of `response.content_part.done`, `response.output_item.done`,
//!   `response.completed`) are checked in one piece, which gives the same
//!   result as the deltas.
//!
//! Configured JSON paths are checked in each event on its own (no window).
//! Events without text pass through byte for byte.
//!
//! On a block the offending event is not sent; the stream ends cleanly in the
//! dialect it speaks: OpenAI, a last chunk with `finish_reason:
//! "content_filter"` then `data: [DONE]`; Anthropic, `content_block_stop` for
//! the open blocks, `message_delta` with `stop_reason: "refusal"`, then
//! `message_stop`; Responses, `response.incomplete` with
//! `incomplete_details.reason: "content_filter"`. The text already checked
//! (before the match) is delivered in that last event; everything after is
//! dropped.
//!
//! Memory per stream: one pending event (at most `max_event_bytes`) plus one
//! window per open channel (at most [`MAX_CHANNELS`]); never the body.

use std::rc::Rc;

use aigw::llm::Api;
use aigw::sse::{write_data, write_done, write_event, Event, Parser, SseError};
use serde_json::{json, Map, Value};

use crate::answer::AnswerMeta;
use crate::config::OverLimit;
use crate::engine::{Engine, Report, Verdict};
use crate::published::LogText;
use crate::scope::{self, Edit, Selection};
use crate::stream::{AnswerStream, RestoreStream, StreamScanner};
use crate::vault::{Escape, Vault};

/// Most text channels open at once; text of further channels is checked
/// piece by piece without a window.
pub const MAX_CHANNELS: usize = 16;

/// Which text of an event a channel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// OpenAI `delta.content`.
    Content,
    /// OpenAI `delta.reasoning_content`.
    Reasoning,
    /// OpenAI legacy `choices[i].text`, Anthropic `text_delta`, Responses
    /// `output_text.delta`.
    Text,
    /// Anthropic `thinking_delta`.
    Thinking,
    /// OpenAI `delta.tool_calls[k].function.arguments` (`sub` = the tool
    /// call's `index`): JSON text, so restored values are JSON-escaped.
    ToolArgs,
    /// Anthropic `input_json_delta.partial_json` (JSON text).
    InputJson,
}

impl Field {
    /// Whether the channel carries JSON text (tool arguments) rather than
    /// prose.
    fn is_json(self) -> bool {
        matches!(self, Field::ToolArgs | Field::InputJson)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    index: u64,
    sub: u64,
    field: Field,
}

#[derive(Debug)]
struct Channel {
    key: Key,
    stream: AnswerStream,
}

/// Why and where the stream stops.
#[derive(Debug)]
struct Stop {
    key: Key,
    /// Checked text of the channel before the match.
    safe: String,
    rule: String,
}

/// Settings of one guarded stream.
#[derive(Debug, Clone)]
pub struct SseSettings {
    /// Moderation rules (`None`: only restore).
    pub engine: Option<Rc<Engine>>,
    /// The request's masked values to put back (`None`: nothing to restore).
    pub vault: Option<Vault>,
    /// Configured JSON paths, checked per event.
    pub paths: Option<Selection>,
    /// Largest event held while incomplete.
    pub max_event_bytes: usize,
    /// What to do with a larger event.
    pub over_limit: OverLimit,
    /// Text added to the last event on a block (the `answer` block style).
    pub message: Option<String>,
    /// Keep up to this many bytes of the answer text before restore, for
    /// access logs (0: none; see [`crate::published`]).
    pub log_limit: usize,
}

/// The guard of one streamed answer. Feed it the body chunks; it writes the
/// bytes to send instead.
#[derive(Debug)]
pub struct SseGuard {
    s: SseSettings,
    parser: Parser,
    channels: Vec<Channel>,
    /// The API the stream speaks, learnt from its events (`None` until one tells):
    /// OpenAI-shaped chunks (`choices`, chat or legacy completions) are recorded as
    /// [`Api::ChatCompletions`], `message_*`/`content_block_*` events as
    /// [`Api::AnthropicMessages`], `response.*` events as [`Api::Responses`].
    api: Option<Api>,
    meta: AnswerMeta,
    open_blocks: Vec<u64>,
    ended: bool,
    passthrough: bool,
    blocked: Option<String>,
    over_limit: bool,
    report: Report,
    /// The answer text as checked, before restore (when `log_limit` > 0).
    log: Option<LogText>,
}

/// The Responses API texts checked in one piece (array indices are `*`).
const RESPONSES_FULL_TEXTS: [&[&str]; 4] = [
    &["text"],
    &["part", "text"],
    &["item", "content", "*", "text"],
    &["response", "output", "*", "content", "*", "text"],
];

impl SseGuard {
    /// A guard for one stream.
    pub fn new(s: SseSettings) -> SseGuard {
        let parser = Parser::new(s.max_event_bytes.max(1));
        let log = (s.log_limit > 0).then(|| LogText::new(s.log_limit));
        SseGuard {
            s,
            parser,
            channels: Vec::new(),
            api: None,
            meta: AnswerMeta::default(),
            open_blocks: Vec::new(),
            ended: false,
            passthrough: false,
            blocked: None,
            over_limit: false,
            report: Report::default(),
            log,
        }
    }

    /// The answer text so far as checked but not restored (first OpenAI
    /// choice's content or text, Anthropic text blocks, Responses output
    /// text), when `log_limit` is set.
    pub fn logged(&self) -> Option<&LogText> {
        self.log.as_ref()
    }

    /// Whether a channel's text goes into [`Self::logged`]: the texts
    /// ai-statistics logs as the answer.
    fn logs(&self, key: Key) -> bool {
        self.log.is_some()
            && matches!(key.field, Field::Content | Field::Text)
            && (self.api != Some(Api::ChatCompletions) || key.index == 0)
    }

    /// The rule that stopped the stream (`body.max_bytes` for an oversized
    /// event under the `block` policy).
    pub fn blocked(&self) -> Option<&str> {
        self.blocked.as_deref()
    }

    /// Whether an event was larger than `max_event_bytes`.
    pub fn over_limit(&self) -> bool {
        self.over_limit
    }

    /// Hits so far (closed channels and per-event checks) plus open channels.
    pub fn report(&self) -> Report {
        let mut r = self.report.clone();
        for ch in &self.channels {
            if let Some(cr) = ch.stream.report() {
                r.merge(cr);
            }
        }
        r
    }

    /// Open channels (for tests of the memory bound).
    pub fn open_channels(&self) -> usize {
        self.channels.len()
    }

    /// Feeds one body chunk; appends what to send to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if self.passthrough {
            out.extend_from_slice(chunk);
            return;
        }
        let mut parser = std::mem::replace(&mut self.parser, Parser::new(0));
        let result = parser.feed(chunk, |ev| self.on_event(&ev, out));
        if let Err(SseError::PendingTooLarge { .. }) = result {
            self.over_limit = true;
            let pending = parser.take_pending();
            if !self.ended {
                match self.s.over_limit {
                    OverLimit::Pass => {
                        self.flush_all(out);
                        if !self.ended {
                            out.extend_from_slice(&pending);
                            self.passthrough = true;
                            // The rest is neither checked nor logged.
                            if let Some(l) = self.log.as_mut() {
                                l.mark_truncated();
                            }
                        }
                    }
                    OverLimit::Block => {
                        let stop = Stop {
                            key: Key {
                                index: 0,
                                sub: 0,
                                field: Field::Content,
                            },
                            safe: String::new(),
                            rule: "body.max_bytes".to_string(),
                        };
                        self.stop(stop, out);
                    }
                }
            }
        }
        self.parser = parser;
    }

    /// Ends the stream: an incomplete last block passes as is, text still held
    /// back is sent in extra events.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.ended || self.passthrough {
            return;
        }
        let mut parser = std::mem::replace(&mut self.parser, Parser::new(0));
        let leftover = parser.finish(|ev| self.on_event(&ev, out));
        self.parser = parser;
        if self.ended {
            return;
        }
        self.flush_all(out);
        if !self.ended {
            out.extend_from_slice(&leftover);
        }
    }

    fn on_event(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let Some(data) = ev.data() else {
            out.extend_from_slice(ev.raw());
            return;
        };
        if ev.is_done() {
            self.flush_all(out);
            if !self.ended {
                out.extend_from_slice(ev.raw());
            }
            return;
        }
        let name = ev.event_type();
        let Ok(mut v) = serde_json::from_slice::<Value>(data) else {
            self.plain_event(ev, out);
            return;
        };
        let changed = match self.json_event(&mut v, out) {
            Ok(changed) => changed,
            Err(stop) => {
                self.stop(stop, out);
                return;
            }
        };
        if self.ended {
            return;
        }
        // Configured paths, event by event.
        let mut text = if changed {
            serde_json::to_string(&v).unwrap_or_default()
        } else {
            String::new()
        };
        let mut rewritten = changed;
        if let Some(sel) = self.s.paths.take() {
            let src: &str = if changed {
                &text
            } else {
                std::str::from_utf8(data).unwrap_or("")
            };
            let result = self.check_paths(src, &sel);
            self.s.paths = Some(sel);
            match result {
                Ok(Some(new)) => {
                    text = new;
                    rewritten = true;
                }
                Ok(None) => {}
                Err(rule) => {
                    let stop = self.stop_without_text(rule);
                    self.stop(stop, out);
                    return;
                }
            }
        }
        if rewritten {
            self.write(out, name, ev, &text);
        } else {
            out.extend_from_slice(ev.raw());
        }
    }

    /// An event whose data is not JSON: checked as plain text on its own.
    fn plain_event(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) {
        let Some(text) = ev.data_str() else {
            out.extend_from_slice(ev.raw());
            return;
        };
        let mut checked = String::new();
        match self.oneshot(text, &mut checked) {
            Ok(()) if checked == text => out.extend_from_slice(ev.raw()),
            Ok(()) => self.write(out, ev.event_type(), ev, &checked),
            Err(rule) => {
                let stop = self.stop_without_text(rule);
                self.stop(stop, out);
            }
        }
    }

    fn write(&self, out: &mut Vec<u8>, name: &str, ev: &Event<'_>, data: &str) {
        let name = (name != "message").then_some(name);
        let id = has_id_field(ev.raw())
            .then(|| std::str::from_utf8(ev.id()).ok())
            .flatten();
        write_event(out, name, id, data);
    }

    fn stop_without_text(&self, rule: String) -> Stop {
        let key = self.channels.first().map_or(
            Key {
                index: 0,
                sub: 0,
                field: Field::Content,
            },
            |c| c.key,
        );
        Stop {
            key,
            safe: String::new(),
            rule,
        }
    }

    /// Handles a JSON event; `Ok(true)` when `v` was changed.
    fn json_event(&mut self, v: &mut Value, out: &mut Vec<u8>) -> Result<bool, Stop> {
        let kind = v.get("type").and_then(Value::as_str).map(str::to_string);
        if v.get("choices").is_some_and(Value::is_array) {
            self.api = Some(Api::ChatCompletions);
            self.meta.observe(v);
            return self.openai_chunk(v);
        }
        let Some(kind) = kind else {
            return Ok(false);
        };
        if kind.starts_with("response.") {
            self.api = Some(Api::Responses);
            return self.responses_event(&kind, v, out);
        }
        if kind.starts_with("message_") || kind.starts_with("content_block_") {
            self.api = Some(Api::AnthropicMessages);
            return self.anthropic_event(&kind, v, out);
        }
        Ok(false)
    }

    fn openai_chunk(&mut self, v: &mut Value) -> Result<bool, Stop> {
        let mut changed = false;
        let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) else {
            return Ok(false);
        };
        for (pos, choice) in choices.iter_mut().enumerate() {
            let index = choice
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(pos as u64);
            for (field, path) in [
                (Field::Content, &["delta", "content"][..]),
                (Field::Reasoning, &["delta", "reasoning_content"][..]),
                (Field::Text, &["text"][..]),
            ] {
                let key = Key {
                    index,
                    sub: 0,
                    field,
                };
                if let Some(Value::String(s)) = pointer_mut(choice, path) {
                    let mut o = String::new();
                    self.push(key, s, &mut o)?;
                    if o != *s {
                        *s = o;
                        changed = true;
                    }
                }
            }
            changed |= self.openai_tool_calls(index, choice)?;
            let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            if finished {
                let tools: Vec<Key> = self
                    .channels
                    .iter()
                    .map(|c| c.key)
                    .filter(|k| k.index == index && k.field == Field::ToolArgs)
                    .collect();
                for key in tools {
                    let mut tail = String::new();
                    self.flush(key, &mut tail)?;
                    if !tail.is_empty() {
                        append_tool_args(choice, key.sub, &tail);
                        changed = true;
                    }
                }
                for (field, path) in [
                    (Field::Content, &["delta", "content"][..]),
                    (Field::Reasoning, &["delta", "reasoning_content"][..]),
                    (Field::Text, &["text"][..]),
                ] {
                    let key = Key {
                        index,
                        sub: 0,
                        field,
                    };
                    let mut tail = String::new();
                    self.flush(key, &mut tail)?;
                    if !tail.is_empty() {
                        append_at(choice, path, &tail);
                        changed = true;
                    }
                }
            }
        }
        Ok(changed)
    }

    /// Feeds the argument fragments of `delta.tool_calls` (one channel per
    /// tool call index); `Ok(true)` when a fragment changed.
    fn openai_tool_calls(&mut self, index: u64, choice: &mut Value) -> Result<bool, Stop> {
        let mut changed = false;
        let Some(calls) =
            pointer_mut(choice, &["delta", "tool_calls"]).and_then(Value::as_array_mut)
        else {
            return Ok(false);
        };
        for (pos, call) in calls.iter_mut().enumerate() {
            let sub = call
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(pos as u64);
            let Some(Value::String(s)) = pointer_mut(call, &["function", "arguments"]) else {
                continue;
            };
            let key = Key {
                index,
                sub,
                field: Field::ToolArgs,
            };
            let mut o = String::new();
            self.push(key, s, &mut o)?;
            if o != *s {
                *s = o;
                changed = true;
            }
        }
        Ok(changed)
    }

    fn anthropic_event(
        &mut self,
        kind: &str,
        v: &mut Value,
        out: &mut Vec<u8>,
    ) -> Result<bool, Stop> {
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "message_start" => {
                self.meta.observe(v);
                Ok(false)
            }
            "content_block_start" => {
                if !self.open_blocks.contains(&index) && self.open_blocks.len() < 64 {
                    self.open_blocks.push(index);
                }
                let mut changed = false;
                for (field, path) in [
                    (Field::Text, &["content_block", "text"][..]),
                    (Field::Thinking, &["content_block", "thinking"][..]),
                ] {
                    if let Some(Value::String(s)) = pointer_mut(v, path) {
                        if s.is_empty() {
                            continue;
                        }
                        let key = Key {
                            index,
                            sub: 0,
                            field,
                        };
                        let mut o = String::new();
                        self.push(key, s, &mut o)?;
                        if o != *s {
                            *s = o;
                            changed = true;
                        }
                    }
                }
                Ok(changed)
            }
            "content_block_delta" => {
                let (field, path) = match v.pointer("/delta/type").and_then(Value::as_str) {
                    Some("text_delta") => (Field::Text, &["delta", "text"][..]),
                    Some("thinking_delta") => (Field::Thinking, &["delta", "thinking"][..]),
                    Some("input_json_delta") => (Field::InputJson, &["delta", "partial_json"][..]),
                    _ => return Ok(false),
                };
                let key = Key {
                    index,
                    sub: 0,
                    field,
                };
                let Some(Value::String(s)) = pointer_mut(v, path) else {
                    return Ok(false);
                };
                let mut o = String::new();
                self.push(key, s, &mut o)?;
                if o != *s {
                    *s = o;
                    return Ok(true);
                }
                Ok(false)
            }
            "content_block_stop" => {
                self.flush_index(index, out)?;
                self.open_blocks.retain(|&i| i != index);
                Ok(false)
            }
            _ => {
                // message_delta / message_stop: nothing may stay held back.
                let indices: Vec<u64> = self.channels.iter().map(|c| c.key.index).collect();
                for i in indices {
                    self.flush_index(i, out)?;
                }
                Ok(false)
            }
        }
    }

    fn responses_event(
        &mut self,
        kind: &str,
        v: &mut Value,
        out: &mut Vec<u8>,
    ) -> Result<bool, Stop> {
        let index = v.get("output_index").and_then(Value::as_u64).unwrap_or(0);
        let sub = v.get("content_index").and_then(Value::as_u64).unwrap_or(0);
        let key = Key {
            index,
            sub,
            field: Field::Text,
        };
        match kind {
            "response.created" | "response.in_progress" => {
                self.meta.observe(v);
                Ok(false)
            }
            "response.output_text.delta" => {
                let Some(Value::String(s)) = v.get_mut("delta") else {
                    return Ok(false);
                };
                let mut o = String::new();
                self.push(key, s, &mut o)?;
                if o != *s {
                    *s = o;
                    return Ok(true);
                }
                Ok(false)
            }
            _ => {
                if kind == "response.output_text.done" {
                    let mut tail = String::new();
                    self.flush(key, &mut tail)?;
                    if !tail.is_empty() {
                        let delta = json!({"type": "response.output_text.delta", "output_index": index, "content_index": sub, "delta": tail});
                        write_event(
                            out,
                            Some("response.output_text.delta"),
                            None,
                            delta.to_string(),
                        );
                    }
                }
                let mut changed = false;
                for path in RESPONSES_FULL_TEXTS {
                    let mut failed = None;
                    for_each_string(v, path, &mut |s: &mut String| {
                        if failed.is_some() {
                            return;
                        }
                        let mut o = String::new();
                        match self.oneshot(s, &mut o) {
                            Ok(()) if o != *s => {
                                *s = o;
                                changed = true;
                            }
                            Ok(()) => {}
                            Err(rule) => failed = Some(rule),
                        }
                    });
                    if let Some(rule) = failed {
                        return Err(Stop {
                            key,
                            safe: String::new(),
                            rule,
                        });
                    }
                }
                Ok(changed)
            }
        }
    }

    /// Feeds text of one channel; `o` gets the final text.
    fn push(&mut self, key: Key, text: &str, o: &mut String) -> Result<(), Stop> {
        let log = self.logs(key);
        let verdict = match self.channel(key) {
            Some(ch) => ch.stream.push(text, o),
            None => {
                let escape = if key.field.is_json() {
                    Escape::Json
                } else {
                    Escape::None
                };
                return self
                    .oneshot_escaped(text, o, escape, log)
                    .map_err(|rule| Stop {
                        key,
                        safe: std::mem::take(o),
                        rule,
                    });
            }
        };
        if log {
            if let (Some(l), Some(ch)) = (
                self.log.as_mut(),
                self.channels.iter().find(|c| c.key == key),
            ) {
                l.push(ch.stream.last_checked());
            }
        }
        match verdict {
            Verdict::Pass => Ok(()),
            Verdict::Block { rule } => Err(Stop {
                key,
                safe: std::mem::take(o),
                rule,
            }),
        }
    }

    /// Ends one channel; `o` gets its held-back text.
    fn flush(&mut self, key: Key, o: &mut String) -> Result<(), Stop> {
        let Some(at) = self.channels.iter().position(|c| c.key == key) else {
            return Ok(());
        };
        let mut ch = self.channels.swap_remove(at);
        let verdict = ch.stream.finish(o);
        if self.logs(key) {
            if let Some(l) = self.log.as_mut() {
                l.push(ch.stream.last_checked());
            }
        }
        if let Some(r) = ch.stream.report() {
            self.report.merge(r);
        }
        match verdict {
            Verdict::Pass => Ok(()),
            Verdict::Block { rule } => Err(Stop {
                key,
                safe: std::mem::take(o),
                rule,
            }),
        }
    }

    /// Ends the channels of one Anthropic content block, sending their tails
    /// in an extra `content_block_delta`.
    fn flush_index(&mut self, index: u64, out: &mut Vec<u8>) -> Result<(), Stop> {
        for field in [Field::Text, Field::Thinking, Field::InputJson] {
            let key = Key {
                index,
                sub: 0,
                field,
            };
            let mut tail = String::new();
            self.flush(key, &mut tail)?;
            if !tail.is_empty() {
                let delta = anthropic_delta(index, field, &tail);
                write_event(out, Some("content_block_delta"), None, delta.to_string());
            }
        }
        Ok(())
    }

    /// Sends every held-back text in extra events (end of stream, `[DONE]`).
    fn flush_all(&mut self, out: &mut Vec<u8>) {
        while let Some(key) = self.channels.first().map(|c| c.key) {
            let mut tail = String::new();
            if let Err(stop) = self.flush(key, &mut tail) {
                self.stop(stop, out);
                return;
            }
            if tail.is_empty() {
                continue;
            }
            match self.api {
                Some(Api::AnthropicMessages) => {
                    let delta = anthropic_delta(key.index, key.field, &tail);
                    write_event(out, Some("content_block_delta"), None, delta.to_string());
                }
                Some(Api::Responses) => {
                    let delta = json!({"type": "response.output_text.delta", "output_index": key.index, "content_index": key.sub, "delta": tail});
                    write_event(
                        out,
                        Some("response.output_text.delta"),
                        None,
                        delta.to_string(),
                    );
                }
                _ if key.field == Field::ToolArgs => {
                    let choice = json!({"index": key.index, "delta": {"tool_calls": [tool_args_delta(key.sub, &tail)]}, "finish_reason": null});
                    write_data(out, self.openai_chunk_json(choice).to_string());
                }
                _ => {
                    let mut delta = Map::new();
                    let name = match key.field {
                        Field::Reasoning => "reasoning_content",
                        _ => "content",
                    };
                    delta.insert(name.to_string(), Value::String(tail));
                    let choice = if key.field == Field::Text {
                        json!({"index": key.index, "text": delta.remove("content").unwrap_or_default(), "finish_reason": null})
                    } else {
                        json!({"index": key.index, "delta": delta, "finish_reason": null})
                    };
                    write_data(out, self.openai_chunk_json(choice).to_string());
                }
            }
        }
    }

    fn openai_chunk_json(&self, choice: Value) -> Value {
        json!({
            "id": self.meta.id.clone().unwrap_or(json!("chatcmpl-guard")),
            "object": "chat.completion.chunk",
            "created": self.meta.created.clone().unwrap_or(json!(0)),
            "model": self.meta.model.clone().unwrap_or(json!("ai-guard")),
            "choices": [choice]
        })
    }

    /// Ends the stream after a block (see the module docs for the forms).
    fn stop(&mut self, stop: Stop, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.blocked = Some(stop.rule);
        for ch in self.channels.drain(..) {
            if let Some(r) = ch.stream.report() {
                self.report.merge(r);
            }
        }
        let key = stop.key;
        // Checked tool-argument text is delivered as such; the `answer`
        // message never goes into JSON arguments.
        let (mut text, args) = if key.field.is_json() {
            (String::new(), stop.safe)
        } else {
            (stop.safe, String::new())
        };
        if let Some(m) = &self.s.message {
            if !(key.field == Field::InputJson && self.api == Some(Api::AnthropicMessages)) {
                text.push_str(m);
            }
        }
        match self.api {
            Some(Api::AnthropicMessages) => {
                if !args.is_empty() {
                    let delta = anthropic_delta(key.index, Field::InputJson, &args);
                    write_event(out, Some("content_block_delta"), None, delta.to_string());
                }
                if !text.is_empty() {
                    let delta = anthropic_delta(key.index, key.field, &text);
                    write_event(out, Some("content_block_delta"), None, delta.to_string());
                }
                for i in std::mem::take(&mut self.open_blocks) {
                    let stop = json!({"type": "content_block_stop", "index": i});
                    write_event(out, Some("content_block_stop"), None, stop.to_string());
                }
                let delta = json!({"type": "message_delta", "delta": {"stop_reason": "refusal", "stop_sequence": null}, "usage": {"output_tokens": 0}});
                write_event(out, Some("message_delta"), None, delta.to_string());
                write_event(
                    out,
                    Some("message_stop"),
                    None,
                    json!({"type": "message_stop"}).to_string(),
                );
            }
            Some(Api::Responses) => {
                if !text.is_empty() {
                    let delta = json!({"type": "response.output_text.delta", "output_index": key.index, "content_index": key.sub, "delta": text});
                    write_event(
                        out,
                        Some("response.output_text.delta"),
                        None,
                        delta.to_string(),
                    );
                }
                let done = json!({"type": "response.incomplete", "response": {
                    "id": self.meta.id.clone().unwrap_or(json!("resp_guard")),
                    "object": "response",
                    "model": self.meta.model.clone().unwrap_or(json!("ai-guard")),
                    "status": "incomplete",
                    "incomplete_details": {"reason": "content_filter"}
                }});
                write_event(out, Some("response.incomplete"), None, done.to_string());
            }
            _ => {
                let mut delta = Map::new();
                if !text.is_empty() {
                    let name = match key.field {
                        Field::Reasoning => "reasoning_content",
                        _ => "content",
                    };
                    delta.insert(name.to_string(), Value::String(text));
                }
                if !args.is_empty() {
                    delta.insert(
                        "tool_calls".to_string(),
                        json!([tool_args_delta(key.sub, &args)]),
                    );
                }
                let choice =
                    json!({"index": key.index, "delta": delta, "finish_reason": "content_filter"});
                write_data(out, self.openai_chunk_json(choice).to_string());
                write_done(out);
            }
        }
    }

    /// The open channel for `key`, created when there is room.
    fn channel(&mut self, key: Key) -> Option<&mut Channel> {
        if let Some(at) = self.channels.iter().position(|c| c.key == key) {
            return self.channels.get_mut(at);
        }
        if self.channels.len() >= MAX_CHANNELS {
            return None;
        }
        let scan = self
            .s
            .engine
            .as_ref()
            .map(|e| StreamScanner::new(Rc::clone(e)));
        let restore = self.s.vault.as_ref().map(|v| {
            let escape = if key.field.is_json() {
                Escape::Json
            } else {
                Escape::None
            };
            RestoreStream::new(v.clone(), escape)
        });
        self.channels.push(Channel {
            key,
            stream: AnswerStream::new(scan, restore),
        });
        self.channels.last_mut()
    }

    /// Checks a whole text at once (moderation, then restore); `Err` names the
    /// blocking rule.
    fn oneshot(&mut self, text: &str, o: &mut String) -> Result<(), String> {
        self.oneshot_escaped(text, o, Escape::None, false)
    }

    /// [`Self::oneshot`] with restored values escaped for `escape`; `log`:
    /// keep the checked text for access logs.
    fn oneshot_escaped(
        &mut self,
        text: &str,
        o: &mut String,
        escape: Escape,
        log: bool,
    ) -> Result<(), String> {
        let mut checked = String::new();
        let src: &str = match &self.s.engine {
            Some(engine) => {
                if let Verdict::Block { rule } =
                    engine.redact(text, None, &mut checked, &mut self.report)
                {
                    return Err(rule);
                }
                &checked
            }
            None => text,
        };
        if log {
            if let Some(l) = self.log.as_mut() {
                l.push(src);
            }
        }
        match &self.s.vault {
            Some(v) => v.restore_into(src, escape, o),
            None => o.push_str(src),
        }
        Ok(())
    }

    /// Checks the configured paths of one event; `Ok(Some)` is the rewritten
    /// event data.
    fn check_paths(&mut self, data: &str, sel: &Selection) -> Result<Option<String>, String> {
        let Ok(spans) = scope::extract(data, sel) else {
            return Ok(None);
        };
        let mut edits = Vec::new();
        for span in spans {
            let mut o = String::new();
            self.oneshot(&span.text, &mut o)?;
            if o != span.text {
                edits.push(Edit {
                    start: span.start,
                    end: span.end,
                    text: o,
                });
            }
        }
        if edits.is_empty() {
            return Ok(None);
        }
        Ok(Some(scope::splice(data, &edits)))
    }
}

/// One `tool_calls` entry of an OpenAI delta carrying argument text.
fn tool_args_delta(index: u64, args: &str) -> Value {
    json!({"index": index, "function": {"arguments": args}})
}

/// Appends argument text for tool call `index` to a choice's
/// `delta.tool_calls`, adding the entry (or the array) when missing.
fn append_tool_args(choice: &mut Value, index: u64, tail: &str) {
    let Some(obj) = choice.as_object_mut() else {
        return;
    };
    let delta = obj
        .entry("delta".to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !delta.is_object() {
        *delta = Value::Object(Map::new());
    }
    let Some(delta) = delta.as_object_mut() else {
        return;
    };
    let calls = delta
        .entry("tool_calls".to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !calls.is_array() {
        *calls = Value::Array(Vec::new());
    }
    let Some(calls) = calls.as_array_mut() else {
        return;
    };
    let existing = calls
        .iter_mut()
        .find(|c| c.get("index").and_then(Value::as_u64) == Some(index));
    match existing {
        Some(call) => append_at(call, &["function", "arguments"], tail),
        None => calls.push(tool_args_delta(index, tail)),
    }
}

fn anthropic_delta(index: u64, field: Field, text: &str) -> Value {
    match field {
        Field::InputJson => {
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": text}})
        }
        Field::Thinking => {
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": text}})
        }
        _ => {
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})
        }
    }
}

/// Whether a raw block sets an `id` field.
fn has_id_field(raw: &[u8]) -> bool {
    raw.split(|&b| b == b'\n' || b == b'\r')
        .any(|line| line == b"id" || line.starts_with(b"id:"))
}

/// The value at an object key path.
fn pointer_mut<'v>(v: &'v mut Value, path: &[&str]) -> Option<&'v mut Value> {
    let mut cur = v;
    for key in path {
        cur = cur.as_object_mut()?.get_mut(*key)?;
    }
    Some(cur)
}

/// Appends `tail` to the string at `path`, creating objects and the string as
/// needed (a `null` becomes the tail).
fn append_at(v: &mut Value, path: &[&str], tail: &str) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for key in parents {
        let Some(obj) = cur.as_object_mut() else {
            return;
        };
        let next = obj
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if next.is_null() {
            *next = Value::Object(Map::new());
        }
        cur = next;
    }
    let Some(obj) = cur.as_object_mut() else {
        return;
    };
    match obj.get_mut(*last) {
        Some(Value::String(s)) => s.push_str(tail),
        _ => {
            obj.insert(last.to_string(), Value::String(tail.to_string()));
        }
    }
}

/// Calls `f` on every string at `path` (`*`: every array item).
fn for_each_string(v: &mut Value, path: &[&str], f: &mut dyn FnMut(&mut String)) {
    let Some((first, rest)) = path.split_first() else {
        if let Value::String(s) = v {
            f(s);
        }
        return;
    };
    if *first == "*" {
        if let Some(items) = v.as_array_mut() {
            for item in items {
                for_each_string(item, rest, f);
            }
        }
    } else if let Some(next) = v.as_object_mut().and_then(|o| o.get_mut(*first)) {
        for_each_string(next, rest, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Guard;

    fn guard() -> Guard {
        Guard::from_json(
            r#"{
            "keywords": {"lists": [
                {"name": "cn", "words": ["敏感词"], "action": "mask"},
                {"name": "en", "words": ["persimmon"], "action": "block"}
            ]},
            "patterns": [{"builtin": "phone_cn", "restore": true}, {"builtin": "email", "restore": true}]
        }"#
            .as_bytes(),
        )
        .unwrap()
    }

    fn settings(g: &Guard, vault: Option<Vault>) -> SseSettings {
        SseSettings {
            engine: Some(Rc::clone(&g.engine)),
            vault,
            paths: None,
            max_event_bytes: 1 << 16,
            over_limit: OverLimit::Pass,
            message: None,
            log_limit: 0,
        }
    }

    fn openai(pieces: &[&str]) -> String {
        let mut s = String::new();
        s.push_str("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n");
        for p in pieces {
            let ev = json!({"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":p},"finish_reason":null}]});
            s.push_str(&format!("data: {ev}\n\n"));
        }
        s.push_str("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
        s.push_str("data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"total_tokens\":9}}\n\n");
        s.push_str("data: [DONE]\n\n");
        s
    }

    fn anthropic(pieces: &[&str]) -> String {
        let mut s = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":3}}}\n\n");
        s.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
        for p in pieces {
            let ev = json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":p}});
            s.push_str(&format!("event: content_block_delta\ndata: {ev}\n\n"));
        }
        s.push_str(
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        );
        s.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n");
        s.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        s
    }

    /// Runs `body` split into `n`-byte chunks.
    fn run(s: SseSettings, body: &str, n: usize) -> (Vec<u8>, Option<String>) {
        let mut g = SseGuard::new(s);
        let mut out = Vec::new();
        for c in body.as_bytes().chunks(n.max(1)) {
            g.feed(c, &mut out);
        }
        g.finish(&mut out);
        (out, g.blocked().map(str::to_string))
    }

    /// The events of an SSE body: (event name, JSON data or the raw data).
    fn events(body: &[u8]) -> Vec<(String, Value)> {
        let mut p = Parser::new(1 << 20);
        let mut evs = Vec::new();
        p.feed(body, |ev| {
            if let Some(d) = ev.data() {
                let v = serde_json::from_slice(d)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(d).into_owned()));
                evs.push((ev.event_type().to_string(), v));
            }
        })
        .unwrap();
        assert!(p.finish(|_| {}).is_empty(), "no incomplete block");
        evs
    }

    /// The answer text a client shows.
    fn text(body: &[u8]) -> String {
        let mut t = String::new();
        for (_, v) in events(body) {
            for p in ["/choices/0/delta/content", "/delta/text"] {
                if let Some(s) = v.pointer(p).and_then(Value::as_str) {
                    t.push_str(s);
                }
            }
        }
        t
    }

    #[test]
    fn masks_split_across_events_and_chunks_at_every_boundary() {
        let g = guard();
        let body = openai(&[
            "call 138",
            "1234",
            "5678 or a",
            "@b.c",
            "o now, 敏",
            "感",
            "词 ok",
        ]);
        let expected = "call [PHONE] or [EMAIL] now, [CN] ok";
        for n in 1..=body.len() {
            let (out, blocked) = run(settings(&g, None), &body, n);
            assert_eq!(blocked, None);
            assert_eq!(text(&out), expected, "chunk size {n}");
            let evs = events(&out);
            assert_eq!(evs.last().unwrap().1, Value::String("[DONE]".into()));
            // The usage chunk is untouched and the finish chunk keeps its reason.
            assert!(evs.iter().any(|(_, v)| v["usage"]["total_tokens"] == 9));
            assert!(evs
                .iter()
                .any(|(_, v)| v["choices"][0]["finish_reason"] == "stop"));
        }
    }

    #[test]
    fn block_ends_the_stream_with_content_filter() {
        let g = guard();
        let body = openai(&["I like pers", "im", "mon pie and more"]);
        for n in 1..=body.len() {
            let (out, blocked) = run(settings(&g, None), &body, n);
            assert_eq!(blocked.as_deref(), Some("en"), "chunk size {n}");
            let s = String::from_utf8(out.clone()).unwrap();
            assert!(!s.contains("imm") && !s.contains("pie"), "{s}");
            assert_eq!(text(&out), "I like ");
            let evs = events(&out);
            let n_ev = evs.len();
            assert_eq!(evs[n_ev - 1].1, Value::String("[DONE]".into()));
            let last = &evs[n_ev - 2].1;
            assert_eq!(last["choices"][0]["finish_reason"], "content_filter");
            assert_eq!(last["id"], "c1");
            assert_eq!(last["model"], "m");
        }
    }

    #[test]
    fn restores_placeholders_split_across_events() {
        let g = guard();
        let mut vault = g.new_vault();
        let mut masked = String::new();
        g.engine.redact(
            "me: 13812345678, a@b.co",
            Some(&mut vault),
            &mut masked,
            &mut Report::default(),
        );
        assert_eq!(masked, "me: [PHONE_1], [EMAIL_1]");
        let body = anthropic(&["Call [PH", "ONE_1] or write to [EMA", "IL_1]", "."]);
        for n in 1..=body.len() {
            let (out, _) = run(settings(&g, Some(vault.clone())), &body, n);
            assert_eq!(
                text(&out),
                "Call 13812345678 or write to a@b.co.",
                "chunk size {n}"
            );
            let evs = events(&out);
            let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names.first(), Some(&"message_start"));
            assert_eq!(
                &names[names.len() - 3..],
                ["content_block_stop", "message_delta", "message_stop"]
            );
        }
    }

    /// Runs `body` in `n`-byte chunks keeping up to `limit` bytes of the
    /// checked answer; returns the client's bytes and the kept text.
    fn run_logged(
        g: &Guard,
        vault: Option<Vault>,
        body: &str,
        n: usize,
        limit: usize,
    ) -> (Vec<u8>, String, bool) {
        let mut sse = SseGuard::new(SseSettings {
            log_limit: limit,
            ..settings(g, vault)
        });
        let mut out = Vec::new();
        for c in body.as_bytes().chunks(n.max(1)) {
            sse.feed(c, &mut out);
        }
        sse.finish(&mut out);
        let log = sse.logged().unwrap();
        (out, log.as_str().to_string(), log.truncated())
    }

    #[test]
    fn logged_answer_is_the_checked_text_before_restore() {
        let g = guard();
        let mut vault = g.new_vault();
        g.engine.redact(
            "me: a@b.co",
            Some(&mut vault),
            &mut String::new(),
            &mut Report::default(),
        );
        // A placeholder to restore, a new phone number and a masked word,
        // split across events; a second choice is not logged.
        let mut body = openai(&["Write [EMA", "IL_1] or 1381234", "5678 敏感", "词."]);
        body = body.replace(
            "data: [DONE]",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other\"}}]}\n\ndata: [DONE]",
        );
        for n in 1..=body.len() {
            let (out, logged, cut) = run_logged(&g, Some(vault.clone()), &body, n, 4096);
            assert_eq!(
                text(&out),
                "Write a@b.co or [PHONE] [CN].other",
                "chunk size {n}"
            );
            assert_eq!(logged, "Write [EMAIL_1] or [PHONE] [CN].", "chunk size {n}");
            assert!(!cut);
        }
        // Bounded: cut at the limit, at a character boundary.
        let (_, logged, cut) = run_logged(&g, Some(vault.clone()), &body, 3, 10);
        assert_eq!((logged.as_str(), cut), ("Write [EMA", true));
        // Anthropic text blocks.
        let body = anthropic(&["Hi [EMA", "IL_1]"]);
        let (out, logged, _) = run_logged(&g, Some(vault), &body, 4, 4096);
        assert_eq!(text(&out), "Hi a@b.co");
        assert_eq!(logged, "Hi [EMAIL_1]");
    }

    #[test]
    fn anthropic_block_form() {
        let g = guard();
        let body = anthropic(&["safe text, 敏", "感词 hidden"]);
        for n in [1, 7, 1000] {
            let (out, blocked) = run(
                SseSettings {
                    message: Some(" [blocked]".into()),
                    ..settings(&g, None)
                },
                &body
                    .replace("敏感词", "persimmon")
                    .replace("敏", "persim")
                    .replace("感词", "mon"),
                n,
            );
            assert_eq!(blocked.as_deref(), Some("en"));
            assert_eq!(text(&out), "safe text,  [blocked]");
            let evs = events(&out);
            let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                &names[names.len() - 3..],
                ["content_block_stop", "message_delta", "message_stop"]
            );
            assert_eq!(evs[evs.len() - 2].1["delta"]["stop_reason"], "refusal");
            assert!(!String::from_utf8_lossy(&out).contains("hidden"));
        }
    }

    #[test]
    fn chinese_word_split_inside_a_code_point_is_masked() {
        let g = guard();
        let body = openai(&["这是敏", "感词。"]);
        for n in 1..=body.len() {
            let (out, _) = run(settings(&g, None), &body, n);
            assert_eq!(text(&out), "这是[CN]。", "chunk size {n}");
        }
    }

    #[test]
    fn responses_api_deltas_and_full_text() {
        let g = guard();
        let mut body = String::from("event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"model\":\"gpt\"}}\n\n");
        for p in ["call 1381", "2345678 ok"] {
            let ev = json!({"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":p});
            body.push_str(&format!(
                "event: response.output_text.delta\ndata: {ev}\n\n"
            ));
        }
        body.push_str("event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\",\"output_index\":0,\"content_index\":0,\"text\":\"call 13812345678 ok\"}\n\n");
        let (out, _) = run(settings(&g, None), &body, 5);
        let evs = events(&out);
        let deltas: String = evs
            .iter()
            .filter(|(n, _)| n == "response.output_text.delta")
            .filter_map(|(_, v)| v["delta"].as_str())
            .collect();
        assert_eq!(deltas, "call [PHONE] ok");
        let done = evs
            .iter()
            .find(|(n, _)| n == "response.output_text.done")
            .unwrap();
        assert_eq!(done.1["text"], "call [PHONE] ok");
    }

    #[test]
    fn oversized_event_policy() {
        let g = guard();
        let big = "x".repeat(300);
        let body = openai(&[&big, "13812345678"]);
        let (out, blocked) = run(
            SseSettings {
                max_event_bytes: 200,
                ..settings(&g, None)
            },
            &body,
            64,
        );
        assert_eq!(blocked, None);
        // Passed through from the oversized event on.
        assert!(String::from_utf8_lossy(&out).contains("13812345678"));
        let (out, blocked) = run(
            SseSettings {
                max_event_bytes: 200,
                over_limit: OverLimit::Block,
                ..settings(&g, None)
            },
            &body,
            64,
        );
        assert_eq!(blocked.as_deref(), Some("body.max_bytes"));
        assert!(!String::from_utf8_lossy(&out).contains(&big));
    }

    #[test]
    fn comments_and_unknown_events_pass_byte_for_byte() {
        let g = guard();
        let body = ": keep-alive\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\ndata: not json 13812345678\n\n";
        let (out, _) = run(settings(&g, None), body, 3);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            ": keep-alive\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\ndata: not json [PHONE]\n\n"
        );
    }

    /// An OpenAI stream of tool-call argument fragments: (tool call index, fragment).
    fn openai_tools(pieces: &[(u64, &str)]) -> String {
        let mut s = String::from("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null},\"finish_reason\":null}]}\n\n");
        let mut started = Vec::new();
        for (i, p) in pieces {
            let call = if started.contains(i) {
                json!({"index": i, "function": {"arguments": p}})
            } else {
                started.push(*i);
                json!({"index": i, "id": format!("call_{i}"), "type": "function", "function": {"name": "send", "arguments": p}})
            };
            let ev = json!({"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[call]},"finish_reason":null}]});
            s.push_str(&format!("data: {ev}\n\n"));
        }
        s.push_str("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n");
        s.push_str("data: [DONE]\n\n");
        s
    }

    /// The arguments a client assembles per tool call index.
    fn tool_args(body: &[u8]) -> Vec<(u64, String)> {
        let mut args: Vec<(u64, String)> = Vec::new();
        for (_, v) in events(body) {
            let Some(calls) = v
                .pointer("/choices/0/delta/tool_calls")
                .and_then(Value::as_array)
            else {
                continue;
            };
            for c in calls {
                let i = c["index"].as_u64().unwrap();
                let a = c["function"]["arguments"].as_str().unwrap_or("");
                match args.iter_mut().find(|(k, _)| *k == i) {
                    Some((_, s)) => s.push_str(a),
                    None => args.push((i, a.to_string())),
                }
            }
        }
        args
    }

    #[test]
    fn tool_call_arguments_are_masked_per_call_at_every_boundary() {
        let g = guard();
        let body = openai_tools(&[
            (0, "{\"to\":\"bob@exa"),
            (1, "{\"phone\":\"1381"),
            (0, "mple.com\",\"text\":\"敏"),
            (1, "2345678\"}"),
            (0, "感词\"}"),
        ]);
        for n in 1..=body.len() {
            let (out, blocked) = run(settings(&g, None), &body, n);
            assert_eq!(blocked, None, "chunk size {n}");
            let args = tool_args(&out);
            assert_eq!(
                args,
                vec![
                    (0, "{\"to\":\"[EMAIL]\",\"text\":\"[CN]\"}".to_string()),
                    (1, "{\"phone\":\"[PHONE]\"}".to_string())
                ],
                "chunk size {n}"
            );
            let evs = events(&out);
            assert!(evs
                .iter()
                .any(|(_, v)| v["choices"][0]["finish_reason"] == "tool_calls"));
            assert_eq!(evs.last().unwrap().1, Value::String("[DONE]".into()));
            // Names and ids pass untouched.
            assert!(evs
                .iter()
                .any(|(_, v)| v["choices"][0]["delta"]["tool_calls"][0]["id"] == "call_1"));
        }
    }

    #[test]
    fn block_in_tool_call_arguments_ends_the_stream() {
        let g = guard();
        let body = openai_tools(&[(0, "{\"q\":\"ripe pers"), (0, "immon please\"}")]);
        for n in 1..=body.len() {
            let (out, blocked) = run(settings(&g, None), &body, n);
            assert_eq!(blocked.as_deref(), Some("en"), "chunk size {n}");
            let s = String::from_utf8(out.clone()).unwrap();
            assert!(!s.contains("immon") && !s.contains("please"), "{s}");
            assert_eq!(tool_args(&out), vec![(0, "{\"q\":\"ripe ".to_string())]);
            let evs = events(&out);
            assert_eq!(
                evs[evs.len() - 2].1["choices"][0]["finish_reason"],
                "content_filter"
            );
        }
    }

    #[test]
    fn anthropic_input_json_is_masked_and_restored_json_escaped() {
        let g = Guard::from_json(
            br#"{"patterns": [{"name": "quote", "regex": "Q\"[0-9]{3}", "restore": true}, {"builtin": "email"}]}"#,
        )
        .unwrap();
        let mut vault = g.new_vault();
        let mut masked = String::new();
        g.engine.redact(
            "id Q\"123",
            Some(&mut vault),
            &mut masked,
            &mut Report::default(),
        );
        assert_eq!(masked, "id [QUOTE_1]");
        let mut body = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\"}}\n\n");
        body.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"send\",\"input\":{}}}\n\n");
        for p in [
            "{\"to\": \"x@ex",
            "ample.org\", \"ref\": \"[QUO",
            "TE_1]\"}",
        ] {
            let ev = json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":p}});
            body.push_str(&format!("event: content_block_delta\ndata: {ev}\n\n"));
        }
        body.push_str(
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        );
        body.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        for n in 1..=body.len() {
            let mut s = settings(&g, Some(vault.clone()));
            s.engine = Some(Rc::clone(&g.engine));
            let (out, _) = run(s, &body, n);
            let evs = events(&out);
            let json: String = evs
                .iter()
                .filter_map(|(_, v)| v.pointer("/delta/partial_json").and_then(Value::as_str))
                .collect();
            let input: Value = serde_json::from_str(&json).unwrap();
            assert_eq!(
                input,
                json!({"to": "[EMAIL]", "ref": "Q\"123"}),
                "chunk size {n}"
            );
            let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                &names[names.len() - 2..],
                ["content_block_stop", "message_stop"]
            );
        }
    }

    #[test]
    fn channels_are_bounded() {
        let g = guard();
        let mut s = String::new();
        for i in 0..100 {
            let ev = json!({"id":"c","choices":[{"index":i,"delta":{"content":"hi 138"}}]});
            s.push_str(&format!("data: {ev}\n\n"));
        }
        let mut guard = SseGuard::new(settings(&g, None));
        let mut out = Vec::new();
        guard.feed(s.as_bytes(), &mut out);
        assert_eq!(guard.open_channels(), MAX_CHANNELS);
    }
}
