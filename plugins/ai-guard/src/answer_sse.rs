//! Guarding a streamed answer (Server-Sent Events) on the SDK's text lanes.
//!
//! The body is parsed into events however it is split into chunks. The SDK
//! ([`aigw::llm::stream::lanes`]) finds each event's text increments and the
//! lane each belongs to (a choice's content, reasoning or refusal, a tool
//! call's arguments, an Anthropic content block, a Responses output item), in
//! OpenAI chat and legacy completion chunks, Anthropic Messages events and
//! OpenAI Responses events alike. Each lane's text goes through its own
//! [`AnswerStream`] (moderation, then restoring the request's placeholders),
//! which holds back only what a match could still need; the rest is released
//! in the same event. A word or number split across chunks or events is
//! therefore caught exactly as in one piece of text.
//!
//! An event whose text passes unchanged is forwarded byte for byte. Otherwise
//! only the changed strings are spliced into it; every other byte stays as the
//! upstream sent it. Text still held back when its lane ends (a
//! `finish_reason`, `content_block_stop`, a Responses `.done`, `[DONE]`, the
//! end of the body) goes into that event's own field for the lane, or into one
//! extra increment written just before it in the same dialect.
//!
//! Complete texts that Responses summary events repeat (`.done`,
//! `content_part.done`, `output_item.done`, `response.completed`) are checked
//! in one piece, which gives the same result as the increments. Configured JSON
//! paths are checked in each event on its own. Data that is not JSON of a known
//! shape is checked as plain text.
//!
//! On a block the offending event is not sent and the stream ends in its own
//! dialect ([`aigw::llm::stream::lanes::write_cut`]): the text checked before
//! the match is delivered in the last event, everything after is dropped.
//!
//! Memory per stream: one pending event (at most `max_event_bytes`) plus one
//! hold-back buffer per open lane (at most [`MAX_CHANNELS`]); never the body.

use std::rc::Rc;

use aigw::llm::stream::lanes::{
    splice, write_cut, write_delta, Cut, End, Lane, Located, Locator, Part, StreamMeta,
};
use aigw::llm::stream::Channel;
use aigw::llm::Api;
use aigw::sse::{write_event, Event, Parser, SseError};

use crate::config::OverLimit;
use crate::engine::{Engine, Report, Verdict};
use crate::published::LogText;
use crate::scope::{self, Edit, Selection};
use crate::stream::{AnswerStream, RestoreStream, StreamScanner};
use crate::vault::{Escape, Vault};

/// Most lanes open at once; text of further lanes is checked piece by piece
/// without a hold-back.
pub const MAX_CHANNELS: usize = 16;

/// Most Anthropic content blocks remembered as open (for the closing events of
/// a cut).
const MAX_OPEN_BLOCKS: usize = 64;

#[derive(Debug)]
struct OpenLane {
    lane: Lane,
    stream: AnswerStream,
    /// Responses `item_id` of the lane's events.
    item_id: Option<String>,
}

/// Why and where the stream stops.
#[derive(Debug)]
struct Stop {
    lane: Option<Lane>,
    /// Checked text of the lane before the match.
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
    /// Finds each event's text fields (quickly for chunks shaped like the last).
    locator: Locator,
    lanes: Vec<OpenLane>,
    /// The dialect the stream speaks, learnt from its events.
    api: Option<Api>,
    meta: StreamMeta,
    item_id: Option<String>,
    open_blocks: Vec<u32>,
    ended: bool,
    passthrough: bool,
    blocked: Option<String>,
    over_limit: bool,
    report: Report,
    /// The answer text as checked, before restore (when `log_limit` > 0).
    log: Option<LogText>,
    /// Scratch: edits of the current event and extra events before it.
    edits: Vec<(std::ops::Range<usize>, String)>,
    before: Vec<u8>,
    /// Scratch reused across events (no allocation per event once grown): the
    /// strings of the last event's edits, the last field of each lane in an
    /// event, the rewritten event.
    spare: Vec<String>,
    last: Vec<(Lane, usize)>,
    rewritten: Vec<u8>,
}

impl SseGuard {
    /// A guard for one stream.
    pub fn new(s: SseSettings) -> SseGuard {
        let parser = Parser::new(s.max_event_bytes.max(1));
        let log = (s.log_limit > 0).then(|| LogText::new(s.log_limit));
        SseGuard {
            s,
            parser,
            locator: Locator::new(),
            lanes: Vec::new(),
            api: None,
            meta: StreamMeta::default(),
            item_id: None,
            open_blocks: Vec::new(),
            ended: false,
            passthrough: false,
            blocked: None,
            over_limit: false,
            report: Report::default(),
            log,
            edits: Vec::new(),
            before: Vec::new(),
            spare: Vec::new(),
            last: Vec::new(),
            rewritten: Vec::new(),
        }
    }

    /// The answer text so far as checked but not restored (the first
    /// choice's content, Anthropic text blocks, Responses output text), when
    /// `log_limit` is set.
    pub fn logged(&self) -> Option<&LogText> {
        self.log.as_ref()
    }

    /// Whether a lane's text goes into [`Self::logged`]: the texts
    /// ai-statistics logs as the answer.
    fn logs(&self, lane: &Lane) -> bool {
        self.log.is_some()
            && matches!(lane.part, Part::Text(Channel::Content) | Part::Legacy)
            && (lane.api != Api::ChatCompletions || lane.choice == 0)
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

    /// Hits so far (closed lanes and per-event checks) plus open lanes.
    pub fn report(&self) -> Report {
        let mut r = self.report.clone();
        for l in &self.lanes {
            if let Some(lr) = l.stream.report() {
                r.merge(lr);
            }
        }
        r
    }

    /// Open lanes (for tests of the memory bound).
    pub fn open_channels(&self) -> usize {
        self.lanes.len()
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
                        let stop = self.stop_without_text("body.max_bytes".to_string());
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
        let Ok(found) = self.locator.locate(data) else {
            self.plain_event(ev, out);
            return;
        };
        self.recycle_edits();
        self.before.clear();
        if let Err(stop) = self.lanes_of(&found) {
            self.stop(stop, out);
            return;
        }
        let mut rewritten: Option<Vec<u8>> = None;
        if !self.edits.is_empty() {
            self.edits.sort_by_key(|(span, _)| span.start);
            let mut new = std::mem::take(&mut self.rewritten);
            new.clear();
            splice(data, &self.edits, &mut new);
            rewritten = Some(new);
        }
        // Configured paths, event by event.
        if let Some(sel) = self.s.paths.take() {
            let src = rewritten.as_deref().unwrap_or(data);
            let result = self.check_paths(std::str::from_utf8(src).unwrap_or(""), &sel);
            self.s.paths = Some(sel);
            match result {
                Ok(Some(new)) => rewritten = Some(new.into_bytes()),
                Ok(None) => {}
                Err(rule) => {
                    let stop = self.stop_without_text(rule);
                    self.stop(stop, out);
                    return;
                }
            }
        }
        out.extend_from_slice(&self.before);
        match rewritten {
            Some(text) => {
                self.write(out, ev, &text);
                self.rewritten = text;
            }
            None => out.extend_from_slice(ev.raw()),
        }
        self.locator.recycle(found);
    }

    /// Empties `edits`, keeping their strings for the next event's edits.
    fn recycle_edits(&mut self) {
        for (_, mut text) in self.edits.drain(..) {
            if self.spare.len() < MAX_CHANNELS {
                text.clear();
                self.spare.push(text);
            }
        }
    }

    /// Checks the texts of one event (increments through their lanes, whole
    /// texts in one piece), ends the lanes the event ends, and records the
    /// edits to make in `self.edits` and extra events in `self.before`.
    fn lanes_of(&mut self, found: &Located<'_>) -> Result<(), Stop> {
        if let Some(api) = found.api {
            self.api = Some(api);
        }
        found.fill_meta(&mut self.meta);
        if let Some(id) = &found.item_id {
            if self.item_id.as_deref() != Some(id.as_ref()) {
                self.item_id = Some(id.to_string());
            }
        }
        if let Some(b) = found.opens {
            if !self.open_blocks.contains(&b) && self.open_blocks.len() < MAX_OPEN_BLOCKS {
                self.open_blocks.push(b);
            }
        }
        // `(lane, edit index)` of the last field of each lane in this event,
        // where a lane's held-back tail goes when the event ends the lane.
        let mut last = std::mem::take(&mut self.last);
        last.clear();
        let result = self.fields_of(found, &mut last);
        self.last = last;
        result
    }

    /// [`Self::lanes_of`] with its scratch list of last fields.
    fn fields_of(
        &mut self,
        found: &Located<'_>,
        last: &mut Vec<(Lane, usize)>,
    ) -> Result<(), Stop> {
        for f in &found.fields {
            let mut o = self.spare.pop().unwrap_or_default();
            self.push(&f.lane, &f.text, &mut o)?;
            self.edits.push((f.span.clone(), o));
            let at = self.edits.len() - 1;
            match last.iter_mut().find(|(l, _)| *l == f.lane) {
                Some(entry) => entry.1 = at,
                None => last.push((f.lane, at)),
            }
        }
        for f in &found.whole {
            let mut o = String::new();
            let escape = escape_for(&f.lane);
            self.oneshot_escaped(&f.text, &mut o, escape, false)
                .map_err(|rule| Stop {
                    lane: Some(f.lane),
                    safe: String::new(),
                    rule,
                })?;
            self.edits.push((f.span.clone(), o));
        }
        for end in &found.ends {
            while let Some(at) = self.lanes.iter().position(|l| end.covers(&l.lane)) {
                let lane = self.lanes.swap_remove(at);
                let mut tail = String::new();
                let (key, item) = (lane.lane, lane.item_id.clone());
                self.finish_lane(lane, &mut tail)?;
                if tail.is_empty() {
                    continue;
                }
                match last.iter().find(|(l, _)| *l == key) {
                    Some(&(_, i)) => {
                        if let Some((_, text)) = self.edits.get_mut(i) {
                            text.push_str(&tail);
                        }
                    }
                    None => {
                        write_delta(&key, &self.meta, item.as_deref(), &tail, &mut self.before);
                    }
                }
            }
            if let End::Block(b) = end {
                self.open_blocks.retain(|x| x != b);
            }
        }
        // Unchanged texts need no edit (their strings are kept for reuse).
        let mut i = 0;
        while let Some((span, text)) = self.edits.get(i) {
            let unchanged = found
                .fields
                .iter()
                .chain(&found.whole)
                .any(|f| f.span == *span && f.text == *text);
            if !unchanged {
                i += 1;
                continue;
            }
            let (_, mut text) = self.edits.swap_remove(i);
            if self.spare.len() < MAX_CHANNELS {
                text.clear();
                self.spare.push(text);
            }
        }
        Ok(())
    }

    /// An event whose data is not JSON of a known shape: checked as plain text
    /// on its own.
    fn plain_event(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) {
        let Some(text) = ev.data_str() else {
            out.extend_from_slice(ev.raw());
            return;
        };
        let mut checked = String::new();
        match self.oneshot_escaped(text, &mut checked, Escape::None, false) {
            Ok(()) if checked == text => out.extend_from_slice(ev.raw()),
            Ok(()) => self.write(out, ev, checked.as_bytes()),
            Err(rule) => {
                let stop = self.stop_without_text(rule);
                self.stop(stop, out);
            }
        }
    }

    fn write(&self, out: &mut Vec<u8>, ev: &Event<'_>, data: &[u8]) {
        let name = ev.event_type();
        let name = (name != "message").then_some(name);
        let id = has_id_field(ev.raw())
            .then(|| std::str::from_utf8(ev.id()).ok())
            .flatten();
        write_event(out, name, id, data);
    }

    fn stop_without_text(&self, rule: String) -> Stop {
        Stop {
            lane: self.lanes.first().map(|l| l.lane),
            safe: String::new(),
            rule,
        }
    }

    /// Feeds text of one lane; `o` gets the final text.
    fn push(&mut self, lane: &Lane, text: &str, o: &mut String) -> Result<(), Stop> {
        let log = self.logs(lane);
        let verdict = match self.open(lane) {
            Some(l) => l.stream.push(text, o),
            None => {
                return self
                    .oneshot_escaped(text, o, escape_for(lane), log)
                    .map_err(|rule| Stop {
                        lane: Some(*lane),
                        safe: std::mem::take(o),
                        rule,
                    });
            }
        };
        if log {
            if let (Some(l), Some(open)) = (
                self.log.as_mut(),
                self.lanes.iter().find(|l| l.lane == *lane),
            ) {
                l.push(open.stream.last_checked());
            }
        }
        match verdict {
            Verdict::Pass => Ok(()),
            Verdict::Block { rule } => Err(Stop {
                lane: Some(*lane),
                safe: std::mem::take(o),
                rule,
            }),
        }
    }

    /// Ends one lane; `o` gets its held-back text.
    fn finish_lane(&mut self, mut lane: OpenLane, o: &mut String) -> Result<(), Stop> {
        let verdict = lane.stream.finish(o);
        if self.logs(&lane.lane) {
            if let Some(l) = self.log.as_mut() {
                l.push(lane.stream.last_checked());
            }
        }
        if let Some(r) = lane.stream.report() {
            self.report.merge(r);
        }
        match verdict {
            Verdict::Pass => Ok(()),
            Verdict::Block { rule } => Err(Stop {
                lane: Some(lane.lane),
                safe: std::mem::take(o),
                rule,
            }),
        }
    }

    /// Sends every held-back text in extra events (end of stream, `[DONE]`).
    fn flush_all(&mut self, out: &mut Vec<u8>) {
        while let Some(lane) = self.lanes.pop() {
            let mut tail = String::new();
            let key = lane.lane;
            let item = lane.item_id.clone();
            if let Err(stop) = self.finish_lane(lane, &mut tail) {
                self.stop(stop, out);
                return;
            }
            write_delta(&key, &self.meta, item.as_deref(), &tail, out);
        }
    }

    /// Ends the stream after a block, in the stream's own dialect.
    fn stop(&mut self, stop: Stop, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.blocked = Some(stop.rule);
        for l in self.lanes.drain(..) {
            if let Some(r) = l.stream.report() {
                self.report.merge(r);
            }
        }
        let api = self.api.unwrap_or(Api::ChatCompletions);
        let is_json = stop.lane.is_some_and(|l| l.part.is_json());
        // Checked tool-argument text is delivered as such; the `answer`
        // message never goes into JSON arguments (nor, for Anthropic, into a
        // tool-use block).
        let (mut text, args) = if is_json {
            (String::new(), stop.safe)
        } else {
            (stop.safe, String::new())
        };
        if let Some(m) = &self.s.message {
            if !(is_json && api == Api::AnthropicMessages) {
                text.push_str(m);
            }
        }
        let cut = Cut {
            api,
            lane: stop.lane,
            text: &text,
            args: &args,
            open_blocks: &self.open_blocks,
        };
        write_cut(&cut, &self.meta, self.item_id.as_deref(), out);
        self.open_blocks.clear();
    }

    /// The open lane for `lane`, created when there is room.
    fn open(&mut self, lane: &Lane) -> Option<&mut OpenLane> {
        if let Some(at) = self.lanes.iter().position(|l| l.lane == *lane) {
            return self.lanes.get_mut(at);
        }
        if self.lanes.len() >= MAX_CHANNELS {
            return None;
        }
        let scan = self
            .s
            .engine
            .as_ref()
            .map(|e| StreamScanner::new(Rc::clone(e)));
        let restore = self
            .s
            .vault
            .as_ref()
            .map(|v| RestoreStream::new(v.clone(), escape_for(lane)));
        self.lanes.push(OpenLane {
            lane: *lane,
            stream: AnswerStream::new(scan, restore),
            item_id: self.item_id.clone(),
        });
        self.lanes.last_mut()
    }

    /// Checks a whole text at once (moderation, then restore with values
    /// escaped for `escape`); `Err` names the blocking rule. `log`: keep the
    /// checked text for access logs.
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
            self.oneshot_escaped(&span.text, &mut o, Escape::None, false)?;
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

/// How restored values are escaped in a lane: JSON-escaped in tool
/// arguments (JSON text), plain elsewhere.
fn escape_for(lane: &Lane) -> Escape {
    if lane.part.is_json() {
        Escape::Json
    } else {
        Escape::None
    }
}

/// Whether a raw block sets an `id` field (a line `id` or `id:…`), looking only at the
/// start of each line.
fn has_id_field(raw: &[u8]) -> bool {
    let mut rest = raw;
    loop {
        let end = memchr::memchr2(b'\n', b'\r', rest);
        let line = match end {
            Some(i) => rest.get(..i).unwrap_or_default(),
            None => rest,
        };
        if line == b"id" || line.starts_with(b"id:") {
            return true;
        }
        match end.and_then(|i| rest.get(i + 1..)) {
            Some(next) => rest = next,
            None => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Guard;
    use serde_json::{json, Value};

    #[test]
    fn id_fields_are_found_at_line_starts_only() {
        for (raw, want) in [
            (&b"id: 7\ndata: x\n\n"[..], true),
            (b"data: x\nid\n\n", true),
            (b"event: e\r\nid:\r\ndata: x\r\n\r\n", true),
            (b"data: {\"id\":\"c\"}\n\n", false),
            (b"data: x\nidx: 1\n\n", false),
            (b"data: id: 1\n\n", false),
            (b"", false),
        ] {
            assert_eq!(has_id_field(raw), want, "{}", String::from_utf8_lossy(raw));
        }
    }

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

    /// Every text of every dialect's events, joined (to look for leaks).
    fn all_text(body: &[u8]) -> String {
        let mut t = String::new();
        for (_, v) in events(body) {
            collect_strings(&v, &mut t);
        }
        t
    }

    fn collect_strings(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => out.push_str(s),
            Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
            Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
            _ => {}
        }
    }

    fn responses(pieces: &[&str]) -> String {
        let mut s = String::from("event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"model\":\"gpt\"}}\n\n");
        for p in pieces {
            let ev = json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":p});
            s.push_str(&format!(
                "event: response.output_text.delta\ndata: {ev}\n\n"
            ));
        }
        let full: String = pieces.concat();
        let done = json!({"type":"response.output_text.done","item_id":"msg_1","output_index":0,"content_index":0,"text":full});
        s.push_str(&format!(
            "event: response.output_text.done\ndata: {done}\n\n"
        ));
        let completed = json!({"type":"response.completed","response":{"id":"resp_1","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":full}]}]}});
        s.push_str(&format!("event: response.completed\ndata: {completed}\n\n"));
        s
    }

    #[test]
    fn no_pii_reaches_the_client_in_any_dialect_at_any_split() {
        let g = guard();
        let pieces = [
            "mail a",
            "@b.c",
            "o or call 1",
            "38123",
            "45678, then 敏",
            "感词.",
        ];
        for (name, body) in [
            ("openai", openai(&pieces)),
            ("anthropic", anthropic(&pieces)),
            ("responses", responses(&pieces)),
        ] {
            for n in 1..=body.len() {
                let (out, blocked) = run(settings(&g, None), &body, n);
                assert_eq!(blocked, None);
                let all = all_text(&out);
                for secret in ["a@b.co", "13812345678", "敏感词", "38123"] {
                    assert!(
                        !all.contains(secret),
                        "{name} split {n} leaks {secret}: {all}"
                    );
                }
                if name != "responses" {
                    assert_eq!(
                        text(&out),
                        "mail [EMAIL] or call [PHONE], then [CN].",
                        "{name} split {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_choice_and_the_refusal_channel_are_guarded() {
        let g = guard();
        let mut body = String::new();
        for (i, p) in [(1, "call 1381234"), (0, "fine"), (1, "5678 now")] {
            let ev = json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":i,"delta":{"content":p},"finish_reason":null}]});
            body.push_str(&format!("data: {ev}\n\n"));
        }
        let refusal = json!({"id":"c","choices":[{"index":0,"delta":{"refusal":"no, a@b.co"},"finish_reason":null}]});
        body.push_str(&format!("data: {refusal}\n\n"));
        body.push_str("data: [DONE]\n\n");
        let (out, _) = run(settings(&g, None), &body, 7);
        let mut choice1 = String::new();
        let mut refusals = String::new();
        for (_, v) in events(&out) {
            if v["choices"][0]["index"] == 1 {
                choice1.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
            }
            refusals.push_str(v["choices"][0]["delta"]["refusal"].as_str().unwrap_or(""));
        }
        assert_eq!(choice1, "call [PHONE] now");
        assert_eq!(refusals, "no, [EMAIL]");
    }

    #[test]
    fn unchanged_events_pass_as_sent_and_changed_ones_keep_unknown_fields() {
        // Restore only: text without a placeholder is released at once.
        let mut vault = Vault::new(16, 4096);
        let placeholder = vault.placeholder_for("PHONE", None, "138 1234").unwrap();
        let s = SseSettings {
            engine: None,
            ..settings(&guard(), Some(vault))
        };
        let clean = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello there. \"},\"logprobs\":{\"content\":[]},\"finish_reason\":null}],\"system_fingerprint\":\"fp_1\"}\n\n";
        let dirty = format!("data: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"call {placeholder} now. \"}},\"logprobs\":{{\"content\":[]}},\"finish_reason\":null}}],\"system_fingerprint\":\"fp_1\"}}\n\n");
        let body = format!("{clean}{dirty}data: [DONE]\n\n");
        let (out, _) = run(s, &body, body.len());
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with(clean), "{out}");
        assert!(out.contains("{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"call 138 1234 now. \"},\"logprobs\":{\"content\":[]},\"finish_reason\":null}],\"system_fingerprint\":\"fp_1\"}"), "{out}");
    }

    #[test]
    fn the_last_held_text_is_delivered_before_the_finish_chunk() {
        // Higress ai-data-masking's configuration, as in `make bench`.
        let g = Guard::from_json(
            br#"{"deny_openai": true, "deny_words": ["forbiddenword"],
                "replace_roles": [{"regex": "%{MOBILE}", "type": "replace", "value": "****"}]}"#,
        )
        .unwrap();
        let mut body = String::new();
        let mut expected = String::new();
        for i in 0..40 {
            let ev = json!({"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":format!("tok{i} ")},"finish_reason":null}]});
            body.push_str(&format!("data: {ev}\n\n"));
            expected.push_str(&format!("tok{i} "));
        }
        body.push_str("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
        body.push_str("data: [DONE]\n\n");
        for n in [1, 7, 512, body.len()] {
            let (out, _) = run(settings(&g, None), &body, n);
            assert_eq!(text(&out), expected, "chunk size {n}");
            let raw = String::from_utf8(out).unwrap();
            assert!(raw.contains("\"tok39 \""), "chunk size {n}: {raw}");
        }
    }

    #[test]
    fn clean_events_pass_as_sent_while_rules_are_on() {
        let g = guard();
        let clean = [
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello there. \"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"It is fine, \"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        ];
        let mut sse = SseGuard::new(settings(&g, None));
        for ev in clean {
            let mut out = Vec::new();
            sse.feed(ev.as_bytes(), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), ev);
        }
        let mut out = Vec::new();
        sse.finish(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn responses_function_arguments_are_masked_and_restored_json_escaped() {
        let g = guard();
        let mut vault = Vault::new(16, 4096);
        let placeholder = vault
            .placeholder_for("PHONE", None, "138\"1234\"5678")
            .unwrap();
        let body_for = |args: &[&str]| {
            let mut s = String::new();
            for a in args {
                let ev = json!({"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":1,"delta":a});
                s.push_str(&format!(
                    "event: response.function_call_arguments.delta\ndata: {ev}\n\n"
                ));
            }
            let full: String = args.concat();
            let done = json!({"type":"response.function_call_arguments.done","item_id":"fc_1","output_index":1,"arguments":full});
            s.push_str(&format!(
                "event: response.function_call_arguments.done\ndata: {done}\n\n"
            ));
            s
        };
        let (p1, p2) = placeholder.split_at(3);
        let body = body_for(&["{\"to\":\"", p1, p2, "\",\"cc\":\"x@y.io\"}"]);
        for n in [1, 3, 17, body.len()] {
            let (out, _) = run(settings(&g, Some(vault.clone())), &body, n);
            let evs = events(&out);
            let args: String = evs
                .iter()
                .filter(|(n, _)| n == "response.function_call_arguments.delta")
                .filter_map(|(_, v)| v["delta"].as_str())
                .collect();
            let parsed: Value = serde_json::from_str(&args).unwrap();
            assert_eq!(parsed["to"], "138\"1234\"5678", "split {n}");
            assert_eq!(parsed["cc"], "[EMAIL]", "split {n}");
            let done = evs
                .iter()
                .find(|(n, _)| n == "response.function_call_arguments.done")
                .unwrap();
            assert_eq!(done.1["arguments"].as_str(), Some(args.as_str()));
        }
    }
}
