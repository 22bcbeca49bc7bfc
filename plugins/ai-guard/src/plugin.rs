//! The plugin type ([`AiGuard`]) and its phase handlers: collect and check the request body,
//! guard the answer (whole, streamed or plain text), publish what was withheld.

// The whole-body checks behind the handlers (an `impl AiGuard` block) are in src/checks.rs.
#[path = "checks.rs"]
mod checks;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::{answer, config, moderation, published, scope, whole};
use aigw::body::OverLimit as SdkOverLimit;
use aigw::prelude::*;

use crate::answer_sse::{SseGuard, SseSettings};
use crate::config::{Guard, OverLimit, ParseErrorPolicy};
use crate::engine::{Action, Engine, Report};
use crate::moderation::{
    categories_for_log, Moderation, OnError, VerdictCache, MODERATION_ERRORS_METRIC,
    MODERATION_METRIC,
};
use crate::published::{LogText, Withheld};
use crate::scope::{BodyOutcome, ScopeError, Selection};
use crate::settings::Config;
use crate::stream::{AnswerStream, RestoreStream, StreamScanner};
use crate::text_guard::TextGuard;
use crate::vault::{Escape, Vault};
use crate::whole::WholeOutcome;
use aigw::contract;

/// Counter of rule hits; labels `rule`, `action`, `direction`.
pub const HITS_METRIC: &str = "aigw_guard_hits_total";
/// Counter of bodies forwarded without a check; labels `direction`, `reason`
/// (`over_limit`, `parse_error`).
pub const UNCHECKED_METRIC: &str = "aigw_guard_unchecked_total";

/// Request-side state.
#[derive(Debug, Default)]
enum RequestState {
    /// Nothing to check.
    #[default]
    Skip,
    /// Collecting the body; `json_type`: the content type says JSON.
    Collect { json_type: bool, size: usize },
}

/// Response-side state.
#[derive(Debug, Default)]
enum ResponseState {
    /// Nothing to do.
    #[default]
    Skip,
    /// Collecting a JSON body (`size`: bytes buffered so far).
    Whole { moderate: bool, size: usize },
    /// Forwarding the rest unchecked (over the limit).
    Pass,
    /// A streamed answer.
    Sse(Box<SseGuard>),
    /// A plain-text answer.
    Text(Box<TextGuard>),
    /// Blocked: every further byte is dropped.
    Drop,
}

/// Per-VM state: recent moderation verdicts (see [`crate::moderation::VerdictCache`]).
#[derive(Debug, Default)]
pub struct GuardRoot {
    verdicts: RefCell<VerdictCache>,
}

/// A request waiting for the moderation call-out.
#[derive(Debug)]
struct PendingModeration {
    shape: Option<Protocol>,
    stream: bool,
    key: [u8; 32],
}

/// The per-stream plugin state.
#[derive(Debug, Default)]
pub struct AiGuard {
    /// The moderation call-out in flight, if any.
    pending: Option<PendingModeration>,
    request: RequestState,
    response: ResponseState,
    /// Masked request values to restore in the answer.
    vault: Option<Vault>,
    request_hits: Report,
    response_hits: Report,
    /// An oversized streamed event was already counted.
    over_limit_counted: bool,
    /// Scratch output of the body callbacks (kept for its capacity).
    out: Vec<u8>,
    /// Length and truncation of the streamed answer text last published in
    /// [`contract::GUARD_ANSWER_PROPERTY`].
    answer_mark: (usize, bool),
}

impl Plugin for AiGuard {
    const NAME: &'static str = "ai-guard";
    type Config = Config;
    type Root = GuardRoot;

    fn on_configure(root: &mut RootCtx<Self>) -> Result<(), ConfigError> {
        for cfg in root.configs() {
            for w in &cfg.guard.warnings {
                aigw::warn!("{w}");
            }
        }
        Ok(())
    }

    fn on_request_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        let cfg = ctx.config_rc();
        let c: &Config = &cfg;
        let nothing_to_do = c.guard.engine.is_empty() && c.guard.moderation.is_none();
        if end_of_stream || c.guard.request.is_none() || nothing_to_do {
            return Flow::Continue;
        }
        let content_type = ctx
            .request_header("content-type")
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let json_type = content_type.contains("json");
        let raw = c.guard.request.as_ref().is_some_and(|s| s.raw);
        // Bodies that may still be JSON: no type, form data (curl's default)
        // or plain text. Binary types are never scanned.
        let sniff = content_type.is_empty()
            || content_type.starts_with("application/x-www-form-urlencoded")
            || content_type.starts_with("text/plain");
        let scan_raw = raw && !is_binary_type(&content_type);
        if !(json_type || sniff || scan_raw) {
            return Flow::Continue;
        }
        self.request = RequestState::Collect { json_type, size: 0 };
        // The body may be rewritten: its length is not known yet.
        if let Err(e) = ctx.remove_request_header("content-length") {
            aigw::warn!("cannot remove content-length: {e}");
        }
        // The headers go on (stock Envoy would not hand over the body of a
        // request whose headers are held); the body is held until checked,
        // so a blocked request's body never reaches the upstream.
        Flow::Continue
    }

    fn on_request_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        let RequestState::Collect { json_type, size } = &mut self.request else {
            return Flow::Continue;
        };
        let json_type = *json_type;
        *size = chunk.size;
        let cfg = ctx.config_rc();
        let c: &Config = &cfg;
        let guard = &c.guard;
        // Over the limit the SDK sends nothing: `over_limit` decides here.
        let body = match ctx.whole_request_body_or(chunk, guard.max_body_bytes, SdkOverLimit::Pass)
        {
            Whole::Ready(body) => body,
            Whole::Pending => return Flow::Pause,
            Whole::TooLarge { .. } => {
                self.request = RequestState::Skip;
                count_unchecked("request", "over_limit");
                withhold_question(ctx, guard, Withheld::Unchecked);
                return match guard.over_limit {
                    OverLimit::Pass => Flow::Continue,
                    OverLimit::Block => {
                        let shape = api_shape(ctx.protocol(), json_type);
                        self.block_request(ctx, guard, shape, false, "body.max_bytes");
                        Flow::Pause
                    }
                };
            }
            Whole::Failed(e) => {
                self.request = RequestState::Skip;
                aigw::warn!("cannot read the request body: {e}");
                return self.unparsable_request(ctx, guard, "the request body cannot be read");
            }
        };
        self.check_request(ctx, guard, json_type, body)
    }

    fn on_request_trailers(&mut self, ctx: &mut Ctx<Self>) -> Flow {
        // A body ended by trailers: check what was collected.
        let RequestState::Collect { json_type, size } = self.request else {
            return Flow::Continue;
        };
        let cfg = ctx.config_rc();
        let c: &Config = &cfg;
        let chunk = BodyChunk {
            size,
            end_of_stream: true,
        };
        let body = match ctx.request_body(chunk) {
            Ok(b) => b,
            Err(e) => {
                self.request = RequestState::Skip;
                aigw::warn!("cannot read the request body: {e}");
                return self.unparsable_request(ctx, &c.guard, "the request body cannot be read");
            }
        };
        self.check_request(ctx, &c.guard, json_type, body)
    }

    fn on_response_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        let cfg = ctx.config_rc();
        let c: &Config = &cfg;
        let guard = &c.guard;
        let moderate = guard.response.is_some() && !guard.engine.is_empty();
        let restore = self.vault.is_some();
        if end_of_stream || (!moderate && !restore) {
            return Flow::Continue;
        }
        let content_type = ctx
            .response_header("content-type")
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_ascii_lowercase();
        self.response = if content_type.starts_with("text/event-stream") {
            let engine = (moderate && guard.stream).then(|| Rc::clone(&guard.engine));
            if engine.is_none() && !restore {
                return Flow::Continue;
            }
            let message = match guard.block.style {
                config::BlockStyle::Answer => Some(guard.block.message.clone()),
                config::BlockStyle::Error => None,
            };
            // Restored values reach loggers earlier in the chain: publish
            // the text before restore, from now on (a stream cut short still
            // leaves its masked beginning, never nothing).
            let log_limit = if restore { guard.log_max_bytes } else { 0 };
            if log_limit > 0 {
                publish(
                    ctx,
                    contract::GUARD_ANSWER_PROPERTY,
                    &LogText::new(log_limit).record(false),
                );
                self.answer_mark = (0, false);
            }
            ResponseState::Sse(Box::new(SseGuard::new(SseSettings {
                engine,
                vault: self.vault.clone(),
                paths: if moderate && guard.stream {
                    c.stream_paths.clone()
                } else {
                    None
                },
                max_event_bytes: guard.max_body_bytes,
                over_limit: guard.over_limit,
                message,
                log_limit,
            })))
        } else if content_type.contains("json") {
            ResponseState::Whole { moderate, size: 0 }
        } else {
            // Plain text answers: restored when it is text, scanned when
            // `raw` is on; binary answers (audio, images) are never touched.
            let text = content_type.starts_with("text/");
            let raw = moderate
                && guard.response.as_ref().is_some_and(|s| s.raw)
                && !is_binary_type(&content_type);
            if !(raw || (restore && text)) {
                return Flow::Continue;
            }
            let scan = raw.then(|| StreamScanner::new(Rc::clone(&guard.engine)));
            let back = self
                .vault
                .clone()
                .map(|v| RestoreStream::new(v, Escape::None));
            ResponseState::Text(Box::new(TextGuard::new(AnswerStream::new(scan, back))))
        };
        if let Err(e) = ctx.remove_response_header("content-length") {
            aigw::warn!("cannot remove content-length: {e}");
        }
        Flow::Continue
    }

    fn on_response_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        match &mut self.response {
            ResponseState::Skip | ResponseState::Pass => Flow::Continue,
            ResponseState::Drop => {
                replace_response(ctx, &[]);
                Flow::Continue
            }
            ResponseState::Whole { moderate, size } => {
                let moderate = *moderate;
                *size = chunk.size;
                let cfg = ctx.config_rc();
                let c: &Config = &cfg;
                self.whole_response(ctx, &c.guard, moderate, chunk)
            }
            ResponseState::Sse(sse) => {
                let data = match ctx.response_body(chunk) {
                    Ok(d) => d,
                    Err(e) => {
                        aigw::warn!("cannot read the response body: {e}");
                        return Flow::Continue;
                    }
                };
                self.out.clear();
                sse.feed(&data, &mut self.out);
                if chunk.end_of_stream {
                    sse.finish(&mut self.out);
                }
                if let Some(log) = sse.logged() {
                    let done = chunk.end_of_stream || sse.blocked().is_some();
                    let (len, cut) = (log.len(), log.truncated());
                    let (mark, mark_cut) = self.answer_mark;
                    if done || len >= mark + published::CHECKPOINT_BYTES || cut != mark_cut {
                        publish(ctx, contract::GUARD_ANSWER_PROPERTY, &log.record(done));
                        self.answer_mark = (len, cut);
                    }
                }
                if sse.over_limit() && !self.over_limit_counted {
                    self.over_limit_counted = true;
                    count_unchecked("response", "over_limit");
                }
                if let Some(rule) = sse.blocked() {
                    aigw::info!("stopped the streamed answer (rule {rule})");
                    self.finish_sse_hits();
                    self.response = ResponseState::Drop;
                }
                if self.out != data {
                    replace_response(ctx, &self.out);
                }
                Flow::Continue
            }
            ResponseState::Text(text) => {
                let data = match ctx.response_body(chunk) {
                    Ok(d) => d,
                    Err(e) => {
                        aigw::warn!("cannot read the response body: {e}");
                        return Flow::Continue;
                    }
                };
                self.out.clear();
                text.feed(&data, &mut self.out);
                if chunk.end_of_stream {
                    text.finish(&mut self.out);
                }
                if let Some(rule) = text.blocked() {
                    aigw::info!("stopped the answer (rule {rule})");
                    if let Some(r) = text.report() {
                        self.response_hits.merge(r);
                    }
                    self.response = ResponseState::Drop;
                }
                if self.out != data {
                    replace_response(ctx, &self.out);
                }
                Flow::Continue
            }
        }
    }

    fn on_response_trailers(&mut self, ctx: &mut Ctx<Self>) -> Flow {
        // A JSON body ended by trailers: check what was collected.
        if let ResponseState::Whole { moderate, size } = self.response {
            let cfg = ctx.config_rc();
            let chunk = BodyChunk {
                size,
                end_of_stream: true,
            };
            return self.whole_response(ctx, &cfg.guard, moderate, chunk);
        }
        Flow::Continue
    }

    fn on_log(&mut self, ctx: &mut Ctx<Self>) {
        let cfg = ctx.config_rc();
        let c: &Config = &cfg;
        match std::mem::take(&mut self.response) {
            ResponseState::Sse(sse) => self.response_hits.merge(&sse.report()),
            ResponseState::Text(text) => {
                if let Some(r) = text.report() {
                    self.response_hits.merge(r);
                }
            }
            _ => {}
        }
        count_hits(&c.guard.engine, &self.request_hits, "request");
        count_hits(&c.guard.engine, &self.response_hits, "response");
    }
}

/// Sets a filter-state property for access logs (see [`published`]).
fn publish(ctx: &Ctx<AiGuard>, name: &str, value: &str) {
    if let Err(e) = ctx.set_property(&[name], value.as_bytes()) {
        aigw::debug!("cannot set {name}: {e}");
    }
}

/// Publishes that the request has no masked text to log (when publishing is
/// on), so loggers do not fall back to the unmasked text they saw.
fn withhold_question(ctx: &Ctx<AiGuard>, guard: &Guard, why: Withheld) {
    if guard.log_max_bytes > 0 {
        publish(ctx, contract::GUARD_QUESTION_PROPERTY, &why.record());
    }
}

/// Resumes a request held for moderation.
fn resume(ctx: &Ctx<AiGuard>) {
    if let Err(e) = ctx.resume_request() {
        aigw::warn!("cannot resume the request: {e}");
    }
}

/// The text sent for moderation: the selected strings of a JSON body joined
/// by newlines, or the whole raw body; `None` when there is none.
fn moderation_text(body: &[u8], json: bool, sel: &Selection) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    if !json {
        return (!text.trim().is_empty()).then(|| text.to_string());
    }
    let spans = scope::extract(text, sel).ok()?;
    let mut out = String::new();
    for s in spans.iter().filter(|s| !s.text.trim().is_empty()) {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&s.text);
    }
    (!out.is_empty()).then_some(out)
}

fn count(name: &str, labels: &[(&str, &str)]) {
    if let Ok(c) = aigw::metrics::counter(name, labels) {
        let _ = c.increment(1);
    }
}

fn replace_response(ctx: &Ctx<AiGuard>, data: &[u8]) {
    if let Err(e) = ctx.replace_response_body(data) {
        aigw::error!("cannot replace the response body: {e}");
        let _ = ctx.reset_stream();
    }
}

/// The protocol of block replies: the client's ([`Ctx::protocol`], from the SDK's
/// API classifier) for JSON requests, none (the raw message) otherwise.
fn api_shape(protocol: Protocol, json: bool) -> Option<Protocol> {
    json.then_some(protocol)
}

/// Content types that are never scanned as text.
fn is_binary_type(content_type: &str) -> bool {
    [
        "multipart/",
        "audio/",
        "image/",
        "video/",
        "application/octet-stream",
        "application/pdf",
        "application/zip",
        "font/",
    ]
    .iter()
    .any(|p| content_type.starts_with(p))
}

/// Whether a body without a JSON content type still is a JSON object (curl
/// sends JSON as form data by default).
fn looks_like_json(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Whether a chat request asks for a streamed answer (`"stream": true`).
fn wants_stream(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct StreamFlag {
        #[serde(default)]
        stream: IsTrue,
    }
    serde_json::from_slice::<StreamFlag>(body).is_ok_and(|f| f.stream.0)
}

/// A JSON value read only for whether it is `true` (any other value, of
/// any type, is not).
#[derive(Default)]
struct IsTrue(bool);

impl<'de> serde::Deserialize<'de> for IsTrue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IsTrueVisitor)
    }
}

/// The visitor of [`IsTrue`]: `true` for the boolean `true`, every other
/// value read through and `false`.
struct IsTrueVisitor;

impl<'de> serde::de::Visitor<'de> for IsTrueVisitor {
    type Value = IsTrue;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<IsTrue, E> {
        Ok(IsTrue(v))
    }

    fn visit_i64<E>(self, _: i64) -> Result<IsTrue, E> {
        Ok(IsTrue(false))
    }

    fn visit_u64<E>(self, _: u64) -> Result<IsTrue, E> {
        Ok(IsTrue(false))
    }

    fn visit_f64<E>(self, _: f64) -> Result<IsTrue, E> {
        Ok(IsTrue(false))
    }

    fn visit_str<E>(self, _: &str) -> Result<IsTrue, E> {
        Ok(IsTrue(false))
    }

    fn visit_unit<E>(self) -> Result<IsTrue, E> {
        Ok(IsTrue(false))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<IsTrue, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(IsTrue(false))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<IsTrue, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(IsTrue(false))
    }
}

fn count_hits(engine: &Engine, report: &Report, direction: &str) {
    for (rule, n) in report.iter(engine) {
        let action = match rule.action {
            Action::Block => "block",
            Action::Mask => "mask",
            Action::Log => "log",
        };
        if let Ok(c) = aigw::metrics::counter(
            HITS_METRIC,
            &[
                ("rule", &rule.name),
                ("action", action),
                ("direction", direction),
            ],
        ) {
            let _ = c.increment(u64::from(n));
        }
        if rule.action == Action::Log {
            aigw::info!("rule {} matched {n} time(s) in the {direction}", rule.name);
        }
    }
}

fn count_unchecked(direction: &str, reason: &str) {
    if let Ok(c) = aigw::metrics::counter(
        UNCHECKED_METRIC,
        &[("direction", direction), ("reason", reason)],
    ) {
        let _ = c.increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_sniffing_and_stream_flag() {
        assert!(looks_like_json(b"  {\"a\":1}"));
        assert!(!looks_like_json(b"--boundary"));
        assert!(wants_stream(br#"{"stream":true,"messages":[]}"#));
        assert!(!wants_stream(br#"{"stream":"yes"}"#));
        assert!(!wants_stream(b"nope"));
        assert_eq!(
            api_shape(Protocol::Anthropic, true),
            Some(Protocol::Anthropic)
        );
        assert_eq!(api_shape(Protocol::Anthropic, false), None);
        assert!(is_binary_type("multipart/form-data; boundary=x"));
        assert!(is_binary_type("audio/mpeg"));
        assert!(!is_binary_type("text/plain"));
    }
}
