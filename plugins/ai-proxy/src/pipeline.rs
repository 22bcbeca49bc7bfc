//! Incremental translation of one streamed answer on the SDK's neutral stream model
//! ([`aigw::llm::stream`]):
//!
//! framing (SSE parser, or the AWS event-stream decoder for Bedrock) → the upstream dialect's
//! [`Decoder`] → the client dialect's [`Encoder`] (or, for a client that did not ask for a
//! stream, an [`Aggregator`] that builds one answer at the end).
//!
//! When both sides speak the same dialect the upstream bytes are forwarded as they arrive
//! ([`Pass`]): the SSE parser only reads usage and finds the few events that change (the
//! OpenAI usage-only chunk the client did not ask for, the reported model name), and a chunk
//! in which nothing changes reaches the client as it came ([`Output::Unchanged`]).

use crate::providers::bedrock::eventstream::Decoder as EventStreamFrames;
use crate::providers::{upstream, Protocol as Wire};
use crate::request::ProxyApi;
use crate::response::{find_model_value, Exchange, ModelPin, ModelValue};
use aigw::llm::stream::{
    Aggregator, AnthropicEncoder, BedrockDecoder, Decoder, Encoder, Event, OpenAiEncoder,
    ResponsesEncoder, StreamError,
};
use aigw::llm::Api;
use aigw::llm::{Usage, UsageAccumulator, UsageProtocol};
use aigw::sse::Parser;
use serde_json::json;

/// How upstream bytes are framed.
enum Framing {
    Sse(Parser),
    EventStream(EventStreamFrames),
}

/// Where neutral events go.
enum Sink {
    /// The client's stream encoder.
    Encode(Box<dyn Encoder>),
    /// One answer assembled at the end (`None` once taken).
    Aggregate(Option<Box<Aggregator>>),
}

/// The upstream decoder (Bedrock's also decodes exception frames, outside the trait).
enum Dec {
    Bedrock(BedrockDecoder),
    Other(Box<dyn Decoder>),
}

impl Dec {
    fn get(&mut self) -> &mut dyn Decoder {
        match self {
            Dec::Bedrock(b) => b,
            Dec::Other(d) => d.as_mut(),
        }
    }

    fn usage(&self) -> Option<Usage> {
        match self {
            Dec::Bedrock(b) => b.usage(),
            Dec::Other(d) => d.usage(),
        }
    }
}

/// What happens to each upstream event.
enum Stage {
    /// Same dialect on both sides: bytes forwarded (usage read, model rewritten).
    Pass(Box<Pass>),
    /// Decode → encode.
    Translate {
        framing: Box<Framing>,
        decoder: Dec,
        sink: Sink,
    },
}

/// What the client gets for one upstream chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The chunk exactly as it arrived (nothing was written to `out`): leave the body alone.
    Unchanged,
    /// What was written to `out`, in place of the chunk.
    Replaced,
}

/// Incremental translation of one streamed response.
pub struct StreamPipeline {
    ex: Exchange,
    stage: Stage,
    failed: bool,
    finished: bool,
}

/// The decoder for an upstream dialect (Bedrock's is kept concrete for its exception frames).
fn decoder(wire: Wire) -> Dec {
    match wire {
        Wire::BedrockConverse => Dec::Bedrock(BedrockDecoder::new()),
        other => Dec::Other(upstream(other).stream_decoder()),
    }
}

impl StreamPipeline {
    /// A pipeline for `ex`; `max_event` bounds one event (SSE) or frame (event-stream).
    pub fn new(ex: Exchange, max_event: usize) -> StreamPipeline {
        let framing = if ex.wire == Wire::BedrockConverse {
            Framing::EventStream(EventStreamFrames::new(max_event))
        } else {
            Framing::Sse(Parser::new(max_event))
        };
        let model = ex
            .report_model
            .as_deref()
            .unwrap_or(ex.upstream_model.as_str());
        let stage = match ex.api.spoken_by(ex.wire) {
            Some(protocol) => Stage::Pass(Box::new(Pass::new(&ex, protocol, max_event))),
            None => {
                let sink = if !ex.client_stream {
                    Sink::Aggregate(Some(Box::new(Aggregator::new(&ex.id, model, ex.created))))
                } else {
                    let encoder: Box<dyn Encoder> = match ex.api {
                        Api::AnthropicMessages => Box::new(AnthropicEncoder::new(&ex.id, model)),
                        Api::Responses => {
                            Box::new(ResponsesEncoder::new(&ex.id, model, ex.created))
                        }
                        _ => Box::new(OpenAiEncoder::new(
                            &ex.id,
                            model,
                            ex.created,
                            ex.include_usage,
                        )),
                    };
                    Sink::Encode(encoder)
                };
                Stage::Translate {
                    framing: Box::new(framing),
                    decoder: decoder(ex.wire),
                    sink,
                }
            }
        };
        StreamPipeline {
            ex,
            stage,
            failed: false,
            finished: false,
        }
    }

    /// Whether the client gets a stream (else one JSON body at the end).
    pub fn client_stream(&self) -> bool {
        !matches!(
            self.stage,
            Stage::Translate {
                sink: Sink::Aggregate(_),
                ..
            }
        )
    }

    /// Token usage seen so far.
    pub fn usage(&self) -> Option<Usage> {
        match &self.stage {
            Stage::Pass(pass) => pass.acc.usage(),
            Stage::Translate { decoder, .. } => decoder.usage(),
        }
    }

    /// Feeds upstream bytes; appends client bytes to `out`. At `end` the stream is closed
    /// (closing events, or the assembled answer for non-stream clients).
    pub fn push(&mut self, chunk: &[u8], end: bool, out: &mut Vec<u8>) {
        if self.push_chunk(chunk, end, out) == Output::Unchanged {
            out.extend_from_slice(chunk);
        }
    }

    /// Feeds one upstream chunk and says what the client gets for it: the chunk itself
    /// ([`Output::Unchanged`], `out` untouched), or the bytes appended to `out`. At `end` the
    /// stream is closed (closing events, or the assembled answer for non-stream clients).
    pub fn push_chunk(&mut self, chunk: &[u8], end: bool, out: &mut Vec<u8>) -> Output {
        if self.finished {
            return Output::Replaced;
        }
        if let Stage::Pass(pass) = &mut self.stage {
            let mut emit = Emit::new(chunk, out);
            if !self.failed {
                if let Err(e) = pass.feed(chunk, &mut emit) {
                    self.failed = true;
                    pass.abort(&mut emit);
                    let mut err = Vec::new();
                    write_pass_error(self.ex.api, &StreamError::upstream(e.to_string()), &mut err);
                    emit.bytes(&err);
                } else if end {
                    pass.close(&mut emit);
                }
            }
            if end {
                self.finished = true;
            }
            return emit.finish();
        }
        self.frame(chunk, out);
        if end {
            self.close(out);
            self.finished = true;
        }
        Output::Replaced
    }

    /// Splits upstream bytes into events and runs each through the translation.
    fn frame(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        let ex = &self.ex;
        let failed = &mut self.failed;
        let Stage::Translate {
            framing,
            decoder,
            sink,
        } = &mut self.stage
        else {
            return;
        };
        let framing_error = match &mut **framing {
            Framing::Sse(parser) => parser
                .feed(chunk, |ev| {
                    if *failed {
                        return;
                    }
                    let Some(data) = ev.data() else { return };
                    let name = ev.is_event().then(|| ev.event_type());
                    let name = name.filter(|n| *n != "message");
                    translate_event(ex, decoder, sink, failed, name, data, out);
                })
                .err()
                .map(|e| StreamError::upstream(e.to_string())),
            Framing::EventStream(frames) => frames
                .push_with(chunk, |msg| {
                    if *failed {
                        return;
                    }
                    if msg.is_error() {
                        let ty = msg.exception_type().or_else(|| msg.header(":error-code"));
                        if let Dec::Bedrock(b) = decoder {
                            let mut events = Vec::new();
                            b.decode_exception(ty, &msg.payload, &mut events);
                            deliver(ex, sink, &events, out);
                        }
                        *failed = true;
                        return;
                    }
                    translate_event(
                        ex,
                        decoder,
                        sink,
                        failed,
                        msg.event_type(),
                        &msg.payload,
                        out,
                    );
                })
                .err()
                .map(|e| StreamError::upstream(format!("bad event-stream: {e}"))),
        };
        if let Some(e) = framing_error {
            self.fail_with(&e, out);
        }
    }

    /// Ends the client stream with an error in the client's protocol (translated streams;
    /// a pass-through stream writes its own in [`StreamPipeline::push_chunk`]).
    fn fail_with(&mut self, e: &StreamError, out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        self.failed = true;
        if let Stage::Translate { sink, .. } = &mut self.stage {
            match sink {
                Sink::Encode(enc) => enc.fail(e, out),
                Sink::Aggregate(agg) => {
                    if let Some(a) = agg.as_mut() {
                        a.push(&e.to_event());
                    }
                }
            }
        }
    }

    /// The upstream ended: flush the framing, then close the client side.
    fn close(&mut self, out: &mut Vec<u8>) {
        let ex = &self.ex;
        let failed = &mut self.failed;
        let mut unfinished_frame = false;
        if let Stage::Translate {
            framing,
            decoder,
            sink,
        } = &mut self.stage
        {
            match &mut **framing {
                Framing::Sse(p) => {
                    let _ = p.finish(|ev| {
                        if *failed {
                            return;
                        }
                        if let Some(data) = ev.data() {
                            let name = ev
                                .is_event()
                                .then(|| ev.event_type())
                                .filter(|n| *n != "message");
                            translate_event(ex, decoder, sink, failed, name, data, out);
                        }
                    });
                }
                Framing::EventStream(d) => unfinished_frame = d.buffered() > 0,
            }
        }
        if unfinished_frame {
            self.fail_with(
                &StreamError::upstream("event-stream ended inside a frame"),
                out,
            );
        }
        let truncated = match &mut self.stage {
            Stage::Translate { decoder, .. } if !self.failed => decoder.get().finish().err(),
            _ => None,
        };
        if let Some(e) = truncated {
            self.fail_with(&e, out);
        }
        if let Stage::Translate { sink, .. } = &mut self.stage {
            match sink {
                Sink::Encode(enc) => {
                    if !enc.is_done() {
                        enc.finish(out);
                    }
                }
                Sink::Aggregate(agg) => {
                    let Some(agg) = agg.take() else { return };
                    match (*agg).finish() {
                        Ok(chat) => match self.ex.render_chat(chat) {
                            Ok(body) => out.extend_from_slice(&body),
                            Err(e) => out.extend_from_slice(&self.ex.error_body(
                                e.status,
                                e.kind,
                                &e.message,
                                e.code.as_deref(),
                            )),
                        },
                        Err(e) => out.extend_from_slice(&self.ex.error_body(
                            e.status,
                            &e.kind,
                            &e.message,
                            e.code.as_deref(),
                        )),
                    }
                }
            }
        }
    }
}

/// Runs one upstream event through the decoder and the sink.
fn translate_event(
    ex: &Exchange,
    decoder: &mut Dec,
    sink: &mut Sink,
    failed: &mut bool,
    name: Option<&str>,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    let mut events = Vec::new();
    let decoded = decoder.get().decode(name, data, &mut events);
    deliver(ex, sink, &events, out);
    if let Err(e) = decoded {
        match sink {
            Sink::Encode(enc) => enc.fail(&e, out),
            Sink::Aggregate(Some(a)) => a.push(&e.to_event()),
            Sink::Aggregate(None) => {}
        }
        *failed = true;
    }
}

/// Hands decoded events to the sink, with the reported model pinned in `Start`.
fn deliver(ex: &Exchange, sink: &mut Sink, events: &[Event<'_>], out: &mut Vec<u8>) {
    for e in events {
        let pinned;
        let e = match (e, &ex.report_model) {
            (Event::Start { id, .. }, Some(m)) => {
                pinned = Event::Start {
                    id: id.clone(),
                    model: Some(m.as_str().into()),
                };
                &pinned
            }
            _ => e,
        };
        match sink {
            Sink::Encode(enc) => enc.encode(e, out),
            Sink::Aggregate(Some(a)) => a.push(e),
            Sink::Aggregate(None) => {}
        }
    }
}

/// The client's bytes for one upstream chunk, built lazily: as long as they are the chunk's
/// own bytes from its start, nothing is copied.
struct Emit<'a> {
    chunk: &'a [u8],
    out: &'a mut Vec<u8>,
    /// Everything emitted so far is `chunk[..upto]`.
    same: bool,
    upto: usize,
}

impl<'a> Emit<'a> {
    fn new(chunk: &'a [u8], out: &'a mut Vec<u8>) -> Emit<'a> {
        Emit {
            chunk,
            out,
            same: true,
            upto: 0,
        }
    }

    /// Emits `chunk[from..to]`.
    fn chunk(&mut self, from: usize, to: usize) {
        if from >= to {
            return;
        }
        if self.same && from == self.upto {
            self.upto = to;
            return;
        }
        self.diverge();
        self.out
            .extend_from_slice(self.chunk.get(from..to).unwrap_or_default());
    }

    /// Emits other bytes (held from earlier chunks, or written here).
    fn bytes(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        self.diverge();
        self.out.extend_from_slice(b);
    }

    fn diverge(&mut self) {
        if self.same {
            self.same = false;
            self.out
                .extend_from_slice(self.chunk.get(..self.upto).unwrap_or_default());
        }
    }

    fn finish(mut self) -> Output {
        if self.same && self.upto == self.chunk.len() {
            return Output::Unchanged;
        }
        self.diverge();
        Output::Replaced
    }
}

/// Same-dialect pass-through: upstream bytes are forwarded as they arrive, except the bytes
/// whose fate is not decided yet.
///
/// Every event is still parsed (usage is read from it), but what the client gets is the
/// upstream's own bytes (comments, `event:`/`id:` lines and line endings included), minus the
/// OpenAI usage-only chunk when the client did not ask for it, with the first `"model"` value
/// replaced when the reported model is pinned and differs. The event in progress at the end of
/// a chunk is forwarded as far as it is known not to change: its model value (when a model is
/// pinned) only as far as it agrees with the pinned name's JSON form (should it turn out to
/// differ, the rest of the name follows what the client has), and nothing of it while it may be
/// the usage-only chunk (OpenAI, after a choice finished, until its `choices` shows an element).
///
/// Two paths do this. The fast one scans each chunk once, eight bytes at a time, for line ends
/// and colons, and looks only at the keys that matter (`"usage"` with a value other than
/// `null`, `"finish_reason"` with a string, the first `"model"` string); it takes LF-framed
/// streams whose events have at most one `data` line. The first chunk it does not take (a CR,
/// a byte order mark, an event with two data lines, such a key outside the data line) goes,
/// with the rest of the stream, to the exact path: the SDK's SSE parser and each event's data
/// as the parser reads it.
struct Pass {
    /// The exact path's parser: fed from the first chunk the fast scan does not take (then
    /// seeded with the event in progress).
    parser: Parser,
    /// Chunks go through the fast scan ([`Pass::feed_fast`]) until one does not fit it.
    fast: bool,
    max_event: usize,
    /// Where the fast scan stands in `cur` (the event in progress and its line in progress).
    scan: Scan,
    /// Events completed in the chunk being scanned (scratch).
    recs: Vec<Rec>,
    acc: UsageAccumulator,
    /// Drop the OpenAI usage-only chunk (ai-proxy asked for it, the client did not).
    drop_usage_only: bool,
    /// A choice finished (`finish_reason` set): the usage-only chunk may come next. Before
    /// that, OpenAI-compatible upstreams send it only after the last `finish_reason`.
    choice_finished: bool,
    model: Option<ModelPin>,
    /// Raw bytes of the event in progress that arrived in earlier chunks.
    cur: Vec<u8>,
    /// How many of them the client already has.
    sent: usize,
    /// No event was completed yet (the first may begin with a byte order mark).
    first: bool,
    /// Value spans of the data lines of an event (scratch).
    spans: Vec<(usize, usize)>,
    /// Data of an event in progress with several data lines (scratch).
    joined: Vec<u8>,
}

/// The UTF-8 byte order mark a stream may begin with.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What happens to a complete event.
enum Fate<'a> {
    /// Forwarded as it is.
    Keep,
    /// Left out (the usage-only chunk).
    Drop,
    /// Forwarded with the raw bytes `from..=to` (the model value, quotes included) replaced
    /// by `with`.
    Rewrite {
        from: usize,
        to: usize,
        with: &'a [u8],
    },
}

impl Pass {
    fn new(ex: &Exchange, protocol: UsageProtocol, max_event: usize) -> Pass {
        Pass {
            parser: Parser::new(max_event),
            fast: true,
            max_event,
            scan: Scan::default(),
            recs: Vec::new(),
            acc: UsageAccumulator::new(protocol),
            drop_usage_only: protocol == UsageProtocol::OpenAi && !ex.include_usage,
            choice_finished: false,
            model: ex.report_model.as_deref().map(ModelPin::new),
            cur: Vec::new(),
            sent: 0,
            first: true,
            spans: Vec::new(),
            joined: Vec::new(),
        }
    }

    /// Runs one chunk: complete events get their fate, the event in progress is forwarded as
    /// far as it is decided.
    fn feed(&mut self, chunk: &[u8], emit: &mut Emit<'_>) -> Result<(), aigw::sse::SseError> {
        if self.fast {
            if self.feed_fast(chunk, emit)? {
                return Ok(());
            }
            // From here on every chunk takes the exact path, whose parser starts with the
            // event in progress (no blank line in it: no event comes out).
            self.fast = false;
            let _ = self.parser.feed(&self.cur, |_| {});
        }
        self.feed_exact(chunk, emit)
    }

    /// The fast path: one pass over the chunk for line ends and `:` (eight bytes at a time),
    /// looking only at the keys that matter (`"usage"`, `"finish_reason"`, `"model"`). It
    /// takes streams framed with LF whose events have at most one `data` line and no such key
    /// outside it; `Ok(false)` (nothing done, nothing emitted) when a chunk does not fit.
    fn feed_fast(
        &mut self,
        chunk: &[u8],
        emit: &mut Emit<'_>,
    ) -> Result<bool, aigw::sse::SseError> {
        // A byte order mark at the start: the exact path.
        if self.first && self.cur.is_empty() && chunk.first() == Some(&BOM[0]) {
            return Ok(false);
        }
        let old = self.cur.len();
        self.cur.extend_from_slice(chunk);
        self.recs.clear();
        let mut st = self.scan;
        let keys = Keys {
            finish: self.drop_usage_only && !self.choice_finished,
            model: self.model.as_ref(),
        };
        if !scan(&self.cur, &mut st, &mut self.recs, &keys) {
            self.cur.truncate(old);
            return Ok(false);
        }
        let Pass {
            acc,
            drop_usage_only,
            choice_finished,
            model,
            cur,
            sent,
            first,
            recs,
            spans,
            ..
        } = self;
        for rec in recs.iter() {
            let data = rec
                .value
                .and_then(|(s, e)| cur.get(s..e))
                .unwrap_or_default();
            let mut fate = Fate::Keep;
            if rec.usage && acc.feed(data) && *drop_usage_only && is_usage_only_chunk(data) {
                fate = Fate::Drop;
            } else if let (ModelState::Differs(from, to), Some(pin)) = (rec.model, model.as_ref()) {
                fate = Fate::Rewrite {
                    from,
                    to,
                    with: pin.escaped(),
                };
            }
            if rec.finish && *drop_usage_only {
                *choice_finished = true;
            }
            if matches!(fate, Fate::Drop) && *sent > rec.start {
                // Part of it is with the client already: it cannot be taken back.
                aigw::debug!("usage-only chunk partly forwarded before it was complete: kept");
                fate = Fate::Keep;
            }
            emit_buffered(cur, old, (*sent).max(rec.start), rec.end, fate, emit);
            *first = false;
        }
        // The event in progress: forwarded up to what is decided.
        let start = st.blk_start;
        let from = (*sent).max(start);
        // A model value that is incomplete or names another model: as far as it agrees with
        // the pinned name (the rest of the name can still follow it).
        let mut safe = match (st.hold_at, st.model, model.as_ref()) {
            (Some(open), _, Some(pin)) | (None, ModelState::Differs(open, _), Some(pin)) => {
                open + agreed(cur.get(open..).unwrap_or_default(), pin.escaped())
            }
            _ => cur.len(),
        };
        if *drop_usage_only && *choice_finished && from == start && safe > start {
            let block = cur.get(start..).unwrap_or_default();
            data_spans(block, *first, true, spans);
            if !has_a_choice(&joined_data(block, spans)) {
                safe = start;
            }
        }
        if safe > from {
            emit_buffered(cur, old, from, safe, Fate::Keep, emit);
        }
        *sent = safe.max(from) - start;
        cur.drain(..start);
        st.shift(start);
        self.scan = st;
        if self.cur.len() > self.max_event {
            return Err(aigw::sse::SseError::PendingTooLarge {
                limit: self.max_event,
            });
        }
        Ok(true)
    }

    /// The exact path: the SSE parser splits events, each one's data is read as the parser
    /// reads it.
    fn feed_exact(&mut self, chunk: &[u8], emit: &mut Emit<'_>) -> Result<(), aigw::sse::SseError> {
        let Pass {
            parser,
            acc,
            drop_usage_only,
            choice_finished,
            model,
            cur,
            sent,
            first,
            spans,
            ..
        } = self;
        // The first event completed here begins with `cur` (`carried` bytes), then the chunk.
        let mut carried = cur.len();
        let mut pos = 0usize;
        let mut completed = false;
        let fed = parser.feed(chunk, |ev| {
            let raw = ev.raw();
            let in_chunk = raw.len().saturating_sub(carried);
            let fate = match ev.data() {
                Some(data) => {
                    let had_usage = acc.feed(data);
                    let fate = event_fate(
                        data,
                        raw,
                        *first,
                        had_usage && *drop_usage_only,
                        model.as_ref(),
                        spans,
                    );
                    if *drop_usage_only && !*choice_finished && finishes_a_choice(data) {
                        *choice_finished = true;
                    }
                    fate
                }
                None => Fate::Keep,
            };
            emit_event(raw, *sent, carried, pos, fate, emit);
            pos += in_chunk;
            carried = 0;
            *sent = 0;
            *first = false;
            completed = true;
        });
        if completed {
            cur.clear();
        }
        let tail = chunk.get(pos..).unwrap_or_default();
        let before = cur.len();
        cur.extend_from_slice(tail);
        fed?;
        let safe = self.decided_prefix().max(self.sent);
        // cur[sent..safe]: the part held from earlier chunks, then the part of this chunk.
        if safe > self.sent {
            let held_end = safe.min(before);
            if self.sent < held_end {
                emit.bytes(self.cur.get(self.sent..held_end).unwrap_or_default());
            }
            if safe > before {
                let from = self.sent.max(before);
                emit.chunk(pos + (from - before), pos + (safe - before));
            }
            self.sent = safe;
        }
        Ok(())
    }

    /// How many bytes of the event in progress can be forwarded now: none while it may be the
    /// usage-only chunk to drop, else up to the opening quote of a model value that is not
    /// known to be the pinned one.
    fn decided_prefix(&mut self) -> usize {
        let Pass {
            cur,
            sent,
            first,
            spans,
            joined,
            model,
            drop_usage_only,
            choice_finished,
            ..
        } = self;
        let may_drop = *sent == 0 && *drop_usage_only && *choice_finished;
        if !may_drop && model.is_none() {
            return cur.len();
        }
        data_spans(cur, *first, true, spans);
        let data: &[u8] = match spans.as_slice() {
            [] => &[],
            [(s, e)] => cur.get(*s..*e).unwrap_or_default(),
            many => {
                joined.clear();
                for (i, (s, e)) in many.iter().enumerate() {
                    if i > 0 {
                        joined.push(b'\n');
                    }
                    joined.extend_from_slice(cur.get(*s..*e).unwrap_or_default());
                }
                joined
            }
        };
        if may_drop && !has_a_choice(data) {
            return 0;
        }
        let Some(pin) = model.as_ref() else {
            return cur.len();
        };
        match find_model_value(data) {
            ModelValue::Absent => cur.len(),
            ModelValue::Closed(open, close) if !pin.differs(data, open, close) => cur.len(),
            ModelValue::Open(open) | ModelValue::Closed(open, _) => {
                let at = raw_offset(spans, open).unwrap_or(0);
                at + agreed(cur.get(at..).unwrap_or_default(), pin.escaped())
            }
        }
    }

    /// The upstream ended: a block left without its blank line is not an event (its usage
    /// does not count) but its bytes still reach the client, with the same fate as an event.
    fn close(&mut self, emit: &mut Emit<'_>) {
        if self.fast {
            self.fast = false;
            let _ = self.parser.feed(&self.cur, |_| {});
        }
        let Pass {
            parser,
            acc,
            drop_usage_only,
            choice_finished,
            model,
            cur,
            sent,
            first,
            spans,
            ..
        } = self;
        // A block whose blank line was the final CR is dispatched now; its bytes are all in
        // `cur`.
        let mut done = 0usize;
        let leftover = parser.finish(|ev| {
            let raw = ev.raw();
            let fate = match ev.data() {
                Some(data) => {
                    let had_usage = acc.feed(data);
                    if *drop_usage_only && !*choice_finished && finishes_a_choice(data) {
                        *choice_finished = true;
                    }
                    event_fate(
                        data,
                        raw,
                        *first,
                        had_usage && *drop_usage_only,
                        model.as_ref(),
                        spans,
                    )
                }
                None => Fate::Keep,
            };
            emit_event(raw, *sent, raw.len(), 0, fate, emit);
            done += raw.len();
            *sent = 0;
            *first = false;
        });
        if done > 0 {
            cur.clear();
        }
        if leftover.is_empty() {
            return;
        }
        data_spans(&leftover, *first, true, spans);
        let data = joined_data(&leftover, spans);
        let usage_only = *drop_usage_only
            && aigw::llm::usage::extract(UsageProtocol::OpenAi, &data).is_some()
            && is_usage_only_chunk(&data);
        let fate = if usage_only {
            Fate::Drop
        } else {
            model_fate(&data, &leftover, model.as_ref(), spans)
        };
        emit_event(&leftover, *sent, leftover.len(), 0, fate, emit);
        cur.clear();
        *sent = 0;
    }

    /// The parser gave up (an event over the size limit): the rest of the stream is not
    /// forwarded. An event the client got part of is ended with a blank line (whatever line
    /// end it stopped in, `\n\n` ends the block), so the error event that follows is an event
    /// of its own.
    fn abort(&mut self, emit: &mut Emit<'_>) {
        if self.sent > 0 {
            emit.bytes(b"\n\n");
        }
        self.cur.clear();
        self.sent = 0;
    }
}

/// Emits `buf[from..to]` of the fast path's buffer (`cur` with the chunk appended at `old`)
/// with `fate` applied to the event it ends (offsets in `fate` are into `buf`).
fn emit_buffered(
    buf: &[u8],
    old: usize,
    from: usize,
    to: usize,
    fate: Fate<'_>,
    emit: &mut Emit<'_>,
) {
    let range = |emit: &mut Emit<'_>, a: usize, b: usize| {
        if a >= b {
            return;
        }
        if a < old {
            emit.bytes(buf.get(a..b.min(old)).unwrap_or_default());
        }
        if b > old {
            emit.chunk(a.max(old) - old, b - old);
        }
    };
    match fate {
        Fate::Keep => range(emit, from, to),
        Fate::Drop => {}
        Fate::Rewrite {
            from: open,
            to: close,
            with,
        } => match with.get(from.saturating_sub(open)..) {
            // The client may have the part of the value that agrees with the name already.
            Some(rest) => {
                range(emit, from, open);
                emit.bytes(rest);
                range(emit, close + 1, to);
            }
            None => range(emit, from, to),
        },
    }
}

/// How many leading bytes of `bytes` agree with `name`.
fn agreed(bytes: &[u8], name: &[u8]) -> usize {
    bytes.iter().zip(name).take_while(|(a, b)| a == b).count()
}

/// What the fast scan looks for.
struct Keys<'a> {
    /// `"finish_reason"` with a string value.
    finish: bool,
    /// The first `"model"` string value, compared with this pin.
    model: Option<&'a ModelPin>,
}

/// The kind of the line in progress (known from its first `:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum LineKind {
    /// No `:` seen yet.
    #[default]
    Unknown,
    /// A `data:` line.
    Data,
    /// A comment or another field (`event:`, `id:`, ...).
    Other,
}

/// The first `"model"` string value of an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ModelState {
    /// Not seen yet.
    #[default]
    Undecided,
    /// Seen: it names the pinned model (or is not a whole string).
    Same,
    /// Seen at these offsets (quotes), naming another model.
    Differs(usize, usize),
}

/// The fast scan's position in the buffer and what it knows of the event in progress.
#[derive(Debug, Clone, Copy, Default)]
struct Scan {
    /// Where scanning resumes.
    pos: usize,
    line_start: usize,
    line: LineKind,
    /// Where the data line's value begins.
    value_start: usize,
    blk_start: usize,
    value: Option<(usize, usize)>,
    usage: bool,
    finish: bool,
    model: ModelState,
    /// The opening quote of a model value whose end has not arrived.
    hold_at: Option<usize>,
}

impl Scan {
    /// Moves every offset back by `n` (the bytes before the event in progress were dropped).
    fn shift(&mut self, n: usize) {
        let back = |x: usize| x.saturating_sub(n);
        self.pos = back(self.pos);
        self.line_start = back(self.line_start);
        self.value_start = back(self.value_start);
        self.blk_start = back(self.blk_start);
        self.value = self.value.map(|(s, e)| (back(s), back(e)));
        if let ModelState::Differs(a, b) = self.model {
            self.model = ModelState::Differs(back(a), back(b));
        }
        self.hold_at = self.hold_at.map(back);
    }
}

/// An event the fast scan completed: its bytes and what it carries.
#[derive(Debug, Clone, Copy)]
struct Rec {
    start: usize,
    end: usize,
    value: Option<(usize, usize)>,
    usage: bool,
    finish: bool,
    model: ModelState,
}

/// The keys the fast scan recognizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Usage,
    Model,
    Finish,
}

/// A bit (the top bit of the byte) for every byte of `w` that is `\n`, `\r` or `:`, and for
/// the rare `\x1a` and `*` (which the scan skips): `\n` (0x0A) and `:` (0x3A) differ only
/// in the bits 0x30, so one comparison of `w | 0x30..` finds both.
#[inline]
fn stops_in(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const EACH: u64 = 0x0101_0101_0101_0101;
    #[inline]
    fn zero_bytes(v: u64) -> u64 {
        !((v & LOW7).wrapping_add(LOW7) | v | LOW7)
    }
    zero_bytes((w | (EACH * 0x30)) ^ (EACH * u64::from(b':')))
        | zero_bytes(w ^ (EACH * u64::from(b'\r')))
}

/// The next `\n`, `\r` or `:` at or after `i` (or a rare byte [`stops_in`] also reports),
/// eight bytes at a time.
fn next_stop(buf: &[u8], mut i: usize) -> Option<usize> {
    while let Some(word) = buf.get(i..i + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let m = stops_in(u64::from_le_bytes(bytes));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    while let Some(&b) = buf.get(i) {
        if matches!(b, b'\n' | b'\r' | b':' | b'\x1a' | b'*') {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The key whose closing quote (then whitespace) precedes the `:` at `colon`, within the
/// line beginning at `line_start`; `None` for any other key or none.
fn key_before(buf: &[u8], line_start: usize, colon: usize) -> Option<Key> {
    let mut j = colon;
    while j > line_start && buf.get(j - 1).is_some_and(u8::is_ascii_whitespace) {
        j -= 1;
    }
    if j <= line_start || buf.get(j - 1) != Some(&b'"') {
        return None;
    }
    let close = j - 1;
    // Most keys are rejected on their last letter.
    let (name, key) = match buf.get(close.checked_sub(1)?)? {
        b'e' => (&b"usage"[..], Key::Usage),
        b'l' => (&b"model"[..], Key::Model),
        b'n' => (&b"finish_reason"[..], Key::Finish),
        _ => return None,
    };
    let open = close.checked_sub(name.len() + 1)?;
    if open < line_start || buf.get(open) != Some(&b'"') || buf.get(open + 1..close) != Some(name) {
        return None;
    }
    let backslashes = buf
        .get(line_start..open)
        .unwrap_or_default()
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count();
    (backslashes % 2 == 0).then_some(key)
}

/// Where the JSON string opening at `open` closes, in the line: `Ok(Some(close))`,
/// `Ok(None)` when the line ends first (not a whole string), `Err(())` when the buffer ends
/// first.
fn string_close(buf: &[u8], open: usize) -> Result<Option<usize>, ()> {
    let mut k = open + 1;
    loop {
        match buf.get(k) {
            None => return Err(()),
            Some(b'\n' | b'\r') => return Ok(None),
            Some(b'"') => return Ok(Some(k)),
            Some(b'\\') => match buf.get(k + 1) {
                None => return Err(()),
                Some(b'\n' | b'\r') => return Ok(None),
                Some(_) => k += 2,
            },
            Some(_) => k += 1,
        }
    }
}

/// Scans `buf` from `st.pos`: completes events into `recs` and leaves `st` at the event in
/// progress. `false` when the stream does not fit the fast path (a `\r`, a second `data`
/// line in an event, a line without `:`, a key that matters outside the data line).
fn scan(buf: &[u8], st: &mut Scan, recs: &mut Vec<Rec>, keys: &Keys<'_>) -> bool {
    st.hold_at = None;
    let mut i = st.pos;
    while let Some(p) = next_stop(buf, i) {
        i = p + 1;
        match buf.get(p) {
            Some(b'\n') => {
                if p == st.line_start {
                    recs.push(Rec {
                        start: st.blk_start,
                        end: p + 1,
                        value: st.value,
                        usage: st.usage,
                        finish: st.finish,
                        model: st.model,
                    });
                    *st = Scan {
                        blk_start: p + 1,
                        ..Scan::default()
                    };
                } else {
                    match st.line {
                        LineKind::Data if st.value.is_none() => {
                            st.value = Some((st.value_start, p));
                        }
                        LineKind::Other => {}
                        // A second data line, or a line without `:`.
                        _ => return false,
                    }
                }
                st.line_start = p + 1;
                st.line = LineKind::Unknown;
            }
            Some(b':') => {
                if st.line == LineKind::Unknown {
                    if buf.get(st.line_start..p) == Some(&b"data"[..]) {
                        match buf.get(p + 1) {
                            None => {
                                st.pos = p;
                                return true;
                            }
                            Some(b' ') => st.value_start = p + 2,
                            Some(_) => st.value_start = p + 1,
                        }
                        st.line = LineKind::Data;
                        continue;
                    }
                    st.line = LineKind::Other;
                }
                let Some(key) = key_before(buf, st.line_start, p) else {
                    continue;
                };
                let wanted = match key {
                    Key::Usage => true,
                    Key::Finish => keys.finish,
                    Key::Model => keys.model.is_some() && st.model == ModelState::Undecided,
                };
                if !wanted {
                    continue;
                }
                if st.line != LineKind::Data {
                    return false;
                }
                let mut v = p + 1;
                while buf.get(v).is_some_and(|b| b == &b' ' || b == &b'\t') {
                    v += 1;
                }
                let Some(&first) = buf.get(v) else {
                    st.pos = p;
                    return true;
                };
                match key {
                    Key::Usage => st.usage |= first != b'n',
                    Key::Finish => st.finish |= first == b'"',
                    Key::Model if first == b'"' => match string_close(buf, v) {
                        Err(()) => {
                            st.hold_at = Some(v);
                            st.pos = p;
                            return true;
                        }
                        Ok(None) => st.model = ModelState::Same,
                        Ok(Some(close)) => {
                            let differs = keys.model.is_some_and(|pin| pin.differs(buf, v, close));
                            st.model = if differs {
                                ModelState::Differs(v, close)
                            } else {
                                ModelState::Same
                            };
                        }
                    },
                    Key::Model => {}
                }
            }
            Some(b'\r') => return false,
            // `\x1a` or `*`.
            _ => {}
        }
    }
    st.pos = buf.len();
    true
}

/// Decides a complete event's fate from its data (`usage_only_candidate`: it carried usage and
/// the usage-only chunk is to be dropped).
fn event_fate<'m>(
    data: &[u8],
    raw: &[u8],
    first: bool,
    usage_only_candidate: bool,
    model: Option<&'m ModelPin>,
    spans: &mut Vec<(usize, usize)>,
) -> Fate<'m> {
    if usage_only_candidate && is_usage_only_chunk(data) {
        return Fate::Drop;
    }
    if model.is_none() {
        return Fate::Keep;
    }
    data_spans(raw, first, false, spans);
    model_fate(data, raw, model, spans)
}

/// Whether the model value of `data` (whose lines are at `spans` of `raw`) must be rewritten.
fn model_fate<'m>(
    data: &[u8],
    raw: &[u8],
    model: Option<&'m ModelPin>,
    spans: &[(usize, usize)],
) -> Fate<'m> {
    let Some(pin) = model else {
        return Fate::Keep;
    };
    let ModelValue::Closed(open, close) = find_model_value(data) else {
        return Fate::Keep;
    };
    if !pin.differs(data, open, close) {
        return Fate::Keep;
    }
    let (Some(from), Some(to)) = (raw_offset(spans, open), raw_offset(spans, close)) else {
        return Fate::Keep;
    };
    // A value split over two data lines is not JSON: left as it is.
    let value = raw.get(from..=to).unwrap_or_default();
    if to < from || value.iter().any(|b| matches!(b, b'\n' | b'\r')) {
        return Fate::Keep;
    }
    Fate::Rewrite {
        from,
        to,
        with: pin.escaped(),
    }
}

/// Emits the rest of a complete event. `raw` is the event: its first `carried` bytes came in
/// earlier chunks (of which the client has `sent`), the rest is the chunk from `at`.
fn emit_event(
    raw: &[u8],
    sent: usize,
    carried: usize,
    at: usize,
    fate: Fate<'_>,
    emit: &mut Emit<'_>,
) {
    // Emits raw[from..to], from the held part or the chunk.
    let span = |emit: &mut Emit<'_>, from: usize, to: usize| {
        if from >= to {
            return;
        }
        if from < carried {
            emit.bytes(raw.get(from..to.min(carried)).unwrap_or_default());
        }
        if to > carried {
            let from = from.max(carried);
            emit.chunk(at + (from - carried), at + (to - carried));
        }
    };
    match fate {
        // Part of it is with the client already: it cannot be taken back.
        Fate::Drop if sent > 0 => {
            aigw::debug!("usage-only chunk partly forwarded before it was complete: kept");
            span(emit, sent, raw.len());
        }
        Fate::Drop => {}
        Fate::Keep => span(emit, sent, raw.len()),
        // The client may have the part of the value that agrees with the name already.
        Fate::Rewrite { from, to, with } => match with.get(sent.saturating_sub(from)..) {
            Some(rest) => {
                span(emit, sent, from);
                emit.bytes(rest);
                span(emit, to + 1, raw.len());
            }
            None => span(emit, sent, raw.len()),
        },
    }
}
/// Collects into `spans` the value spans (offsets into `raw`) of the `data` lines of one
/// block's raw bytes, by the parser's rules (CR, LF or CRLF line ends, `data:` with one
/// optional space, or a bare `data` line; `first`: the stream's first block, which may begin
/// with a byte order mark). With `partial`, `raw` is a block in progress and its last line,
/// unterminated, counts once it begins with `data:`.
fn data_spans(raw: &[u8], first: bool, partial: bool, spans: &mut Vec<(usize, usize)>) {
    spans.clear();
    let mut pos = if first && raw.starts_with(BOM) {
        BOM.len()
    } else {
        0
    };
    while pos < raw.len() {
        let rest = raw.get(pos..).unwrap_or_default();
        let (end, next, terminated) = match memchr::memchr2(b'\n', b'\r', rest) {
            Some(i) => {
                let end = pos + i;
                let next = if raw.get(end) == Some(&b'\r') && raw.get(end + 1) == Some(&b'\n') {
                    end + 2
                } else {
                    end + 1
                };
                (end, next, true)
            }
            None => (raw.len(), raw.len(), false),
        };
        let line = raw.get(pos..end).unwrap_or_default();
        if let Some(value) = line.strip_prefix(b"data:") {
            let skip = usize::from(value.first() == Some(&b' '));
            spans.push((pos + 5 + skip, end));
        } else if line == b"data" && (terminated || !partial) {
            spans.push((end, end));
        }
        pos = next;
    }
}

/// The data of a block whose data lines are at `spans` of `raw` (lines joined with `\n`).
fn joined_data<'r>(raw: &'r [u8], spans: &[(usize, usize)]) -> std::borrow::Cow<'r, [u8]> {
    match spans {
        [] => std::borrow::Cow::Borrowed(&[]),
        [(s, e)] => std::borrow::Cow::Borrowed(raw.get(*s..*e).unwrap_or_default()),
        many => {
            let mut joined = Vec::new();
            for (i, (s, e)) in many.iter().enumerate() {
                if i > 0 {
                    joined.push(b'\n');
                }
                joined.extend_from_slice(raw.get(*s..*e).unwrap_or_default());
            }
            std::borrow::Cow::Owned(joined)
        }
    }
}

/// The offset in the raw block of byte `at` of its data (lines at `spans`, joined with `\n`;
/// a joining `\n` maps to the end of its line).
fn raw_offset(spans: &[(usize, usize)], at: usize) -> Option<usize> {
    let mut base = 0usize;
    for (s, e) in spans {
        let len = e.saturating_sub(*s);
        if at <= base + len {
            return Some(s + (at - base));
        }
        base += len + 1;
    }
    None
}

/// Whether a JSON key (`"key"` not inside a string) is followed by `:` and then by `next`
/// (whitespace allowed between), somewhere in `json`.
fn key_then(json: &[u8], finder: &memchr::memmem::Finder<'_>, next: &[u8]) -> bool {
    let key_len = finder.needle().len();
    let mut from = 0;
    while let Some(found) = json.get(from..).and_then(|rest| finder.find(rest)) {
        let start = from + found;
        from = start + 1;
        let backslashes = json
            .get(..start)
            .unwrap_or_default()
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 1 {
            continue;
        }
        let mut j = start + key_len;
        let skip = |j: &mut usize| {
            while json.get(*j).is_some_and(u8::is_ascii_whitespace) {
                *j += 1;
            }
        };
        skip(&mut j);
        if json.get(j) != Some(&b':') {
            continue;
        }
        j += 1;
        let mut matched = true;
        for want in next {
            skip(&mut j);
            if json.get(j) != Some(want) {
                matched = false;
                break;
            }
            j += 1;
        }
        if matched {
            return true;
        }
    }
    false
}

/// Whether an OpenAI chunk (or the beginning of one) shows a choice: `"choices": [ {`.
fn has_a_choice(data: &[u8]) -> bool {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    let finder = FINDER.get_or_init(|| memchr::memmem::Finder::new(b"\"choices\""));
    key_then(data, finder, b"[{")
}

/// Whether an OpenAI chunk finishes a choice (`"finish_reason"` with a string value).
fn finishes_a_choice(data: &[u8]) -> bool {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    let finder = FINDER.get_or_init(|| memchr::memmem::Finder::new(b"\"finish_reason\""));
    key_then(data, finder, b"\"")
}

/// An OpenAI chunk whose `choices` is empty (the usage chunk).
fn is_usage_only_chunk(data: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct C {
        #[serde(default)]
        choices: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<C>(data).is_ok_and(|c| c.choices.is_empty())
}

/// An in-stream error for a pass-through client, in its protocol.
fn write_pass_error(api: Api, e: &StreamError, out: &mut Vec<u8>) {
    let (name, v) = match api {
        Api::AnthropicMessages => (
            Some("error"),
            json!({"type": "error", "error": {"type": aigw::llm::stream::anthropic_error_type(e.status), "message": e.message}}),
        ),
        Api::Responses => (
            Some("error"),
            json!({"type": "error", "code": e.code, "message": e.message, "param": null}),
        ),
        _ => (
            None,
            json!({"error": {"message": e.message, "type": e.kind, "param": null, "code": e.code}}),
        ),
    };
    if let Some(n) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(n.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    let _ = serde_json::to_writer(&mut *out, &v);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(api: Api, wire: Wire, client_stream: bool) -> Exchange {
        Exchange {
            api,
            wire,
            client_stream,
            upstream_stream: true,
            include_usage: false,
            report_model: Some("alias".into()),
            upstream_model: "real".into(),
            id: "chatcmpl-1".into(),
            created: 1,
        }
    }

    const OPENAI_STREAM: &str = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"real-2024\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n",
        "data: [DONE]\n\n"
    );

    #[test]
    fn openai_pass_through_strips_usage_chunk_at_every_split() {
        let bytes = OPENAI_STREAM.as_bytes();
        for k in 1..=bytes.len() {
            let mut p =
                StreamPipeline::new(ex(Api::ChatCompletions, Wire::ChatCompletions, true), 4096);
            let mut out = Vec::new();
            let chunks: Vec<&[u8]> = bytes.chunks(k).collect();
            for (i, c) in chunks.iter().enumerate() {
                p.push(c, i + 1 == chunks.len(), &mut out);
            }
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.matches("data: ").count(), 3, "k={k}: {text}");
            assert!(!text.contains("prompt_tokens"));
            assert!(!text.contains("real-2024") && text.contains("\"model\":\"alias\""));
            assert_eq!(p.usage().unwrap().total, 6);
        }
    }

    /// An OpenAI stream with what a pass-through keeps byte for byte: a byte order mark, a
    /// comment, `id:` and `event:` lines, CRLF and CR line ends, an event whose data spans two
    /// lines (its model value on the first, with spaces around the colon); then the finishing
    /// chunk, the usage-only chunk and `[DONE]`.
    const FRAMED: &str = concat!(
        "\u{feff}: keep-alive\r\n",
        "id: 1\r\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\r\n\r\n",
        ": ping\n\n",
        "event: message\nid: 2\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\" : \"real-2024\",\n",
        "data: \"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\r\r",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );

    /// LF framing with one data line per event (the fast scan's case): comments, `id:` and
    /// `event:` lines, spaces around a colon, `"model"` quoted inside a text.
    const LF_ONLY: &str = concat!(
        ": keep-alive\n",
        "id: 1\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        ": ping\n\n",
        "event: message\nid: 2\ndata: {\"id\":\"c\",\"model\" : \"real-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \\\"model\\\": \\\"x\\\", \\\"usage\\\": {}\"},\"finish_reason\": null}],\"usage\" : null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );

    /// LF framing, then an event with two data lines (the fast scan hands over mid-stream).
    const SWITCHES: &str = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" the\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "event: message\nid: 2\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\" : \"real-2024\",\n",
        "data: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"re\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );

    /// Streams for the split tests: exact path throughout, fast scan throughout, both.
    const STREAMS: [&str; 3] = [FRAMED, LF_ONLY, SWITCHES];

    /// The usage-only chunk of [`FRAMED`].
    const USAGE_ONLY: &str = "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n";

    fn pass_ex(include_usage: bool, pin: Option<&str>) -> Exchange {
        Exchange {
            include_usage,
            report_model: pin.map(String::from),
            ..ex(Api::ChatCompletions, Wire::ChatCompletions, true)
        }
    }

    /// Feeds `input` in chunks of `k`: what the client got, and each chunk's [`Output`].
    fn pass_at(ex: Exchange, input: &[u8], k: usize) -> (Vec<u8>, Vec<Output>, Option<Usage>) {
        let mut p = StreamPipeline::new(ex, 4096);
        let mut client = Vec::new();
        let mut outputs = Vec::new();
        let chunks: Vec<&[u8]> = input.chunks(k).collect();
        for (i, c) in chunks.iter().enumerate() {
            let mut out = Vec::new();
            let o = p.push_chunk(c, i + 1 == chunks.len(), &mut out);
            match o {
                Output::Unchanged => {
                    assert!(out.is_empty(), "k={k}: Unchanged with bytes written");
                    client.extend_from_slice(c);
                }
                Output::Replaced => client.extend_from_slice(&out),
            }
            outputs.push(o);
        }
        (client, outputs, p.usage())
    }

    #[test]
    fn pass_through_forwards_the_upstream_bytes_at_every_split() {
        for stream in STREAMS {
            let input = stream.as_bytes();
            assert!(stream.contains(USAGE_ONLY));
            let stripped = stream.replace(USAGE_ONLY, "");
            let aliased = stripped.replace("\"real-2024\"", "\"alias\"");
            assert!(aliased.contains("\"alias\"") && !aliased.contains("real-2024"));
            // Pinned to a prefix of the upstream's name, or to a name it is a prefix of: the
            // value agrees with the name for a while, then is rewritten.
            let shorter = stripped.replace("\"real-2024\"", "\"real-20\"");
            let longer = stripped.replace("\"real-2024\"", "\"real-2024-long\"");
            let cases = [
                (
                    "usage not asked, no pin",
                    pass_ex(false, None),
                    stripped.clone(),
                ),
                (
                    "usage asked, no pin",
                    pass_ex(true, None),
                    stream.to_string(),
                ),
                (
                    "usage not asked, pinned",
                    pass_ex(false, Some("alias")),
                    aliased,
                ),
                (
                    "pinned to a shorter name",
                    pass_ex(false, Some("real-20")),
                    shorter,
                ),
                (
                    "pinned to a longer name",
                    pass_ex(false, Some("real-2024-long")),
                    longer,
                ),
                (
                    "pinned to the upstream's name",
                    pass_ex(false, Some("real-2024")),
                    stripped,
                ),
            ];
            for (name, ex, want) in cases {
                for k in 1..=input.len() {
                    let (got, _, usage) = pass_at(ex.clone(), input, k);
                    assert_eq!(String::from_utf8_lossy(&got), want, "{name}, chunks of {k}");
                    let u = usage.unwrap_or_else(|| panic!("{name}, k={k}: no usage"));
                    assert_eq!((u.input, u.output, u.total), (5, 2, 7), "{name}, k={k}");
                }
            }
        }
    }

    #[test]
    fn pass_through_leaves_chunks_alone_until_something_changes() {
        for stream in STREAMS {
            let input = stream.as_bytes();
            let usage_start = stream.find(USAGE_ONLY).unwrap();
            let usage_end = usage_start + USAGE_ONLY.len();
            // A chunk left alone: before the usage-only chunk, or `[DONE]` whole right after it.
            let clear = |start: usize, end: usize| {
                end <= usage_start || (start == usage_end && end == input.len())
            };
            for k in 1..=input.len() {
                // Nothing changes: every chunk is left as it came.
                let (_, outputs, _) = pass_at(pass_ex(true, None), input, k);
                assert!(
                    outputs.iter().all(|o| *o == Output::Unchanged),
                    "k={k}: {outputs:?}"
                );
                // The usage-only chunk is dropped: the chunks around it are replaced.
                let (_, outputs, _) = pass_at(pass_ex(false, None), input, k);
                for (i, o) in outputs.iter().enumerate() {
                    let (start, end) = (i * k, ((i + 1) * k).min(input.len()));
                    assert_eq!(
                        *o == Output::Unchanged,
                        clear(start, end),
                        "k={k}, chunk {i}"
                    );
                }
                // Pinned to the name the upstream reports: a model value cut by a chunk boundary
                // agrees with the name so far and is not held back either.
                let (_, outputs, _) = pass_at(pass_ex(false, Some("real-2024")), input, k);
                for (i, o) in outputs.iter().enumerate() {
                    let (start, end) = (i * k, ((i + 1) * k).min(input.len()));
                    assert_eq!(
                        *o == Output::Unchanged,
                        clear(start, end),
                        "k={k}, chunk {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn pass_through_block_without_its_blank_line_at_the_end() {
        let head = "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
        // The usage-only chunk cut off at the end is still left out; `[DONE]` cut off passes.
        for (tail, kept) in [
            (
                "data: {\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n",
                false,
            ),
            ("data: [DONE]", true),
        ] {
            let input = format!("{head}{tail}");
            for k in 1..=input.len() {
                let (got, _, _) = pass_at(pass_ex(false, None), input.as_bytes(), k);
                let want = if kept { input.clone() } else { head.to_string() };
                assert_eq!(String::from_utf8_lossy(&got), want, "k={k}");
            }
        }
    }

    #[test]
    fn pass_through_event_over_the_limit_ends_with_an_error_event() {
        let big = format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
            "x".repeat(200)
        );
        let input = format!("data: {{\"choices\":[{{\"index\":0}}]}}\n\n{big}data: [DONE]\n\n");
        // (The limit is on bytes held across chunks: a big event inside one chunk passes.)
        for k in [1, 7, 64] {
            let mut p = StreamPipeline::new(pass_ex(true, None), 64);
            let mut client = Vec::new();
            let chunks: Vec<&[u8]> = input.as_bytes().chunks(k).collect();
            for (i, c) in chunks.iter().enumerate() {
                p.push(c, i + 1 == chunks.len(), &mut client);
            }
            let mut parser = Parser::new(1 << 20);
            let mut data = Vec::new();
            parser
                .feed(&client, |ev| {
                    if let Some(d) = ev.data() {
                        data.push(String::from_utf8_lossy(d).into_owned());
                    }
                })
                .unwrap();
            assert_eq!(
                data.first().map(String::as_str),
                Some("{\"choices\":[{\"index\":0}]}"),
                "k={k}"
            );
            let last: serde_json::Value = serde_json::from_str(data.last().unwrap()).unwrap();
            assert!(
                last["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("64 bytes"),
                "k={k}: {last}"
            );
            assert!(!data.iter().any(|d| d == "[DONE]"), "k={k}");
        }
    }

    const GEMINI_STREAM: &str = concat!(
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}],\"role\": \"model\"}}],\"usageMetadata\": {\"promptTokenCount\": 4,\"totalTokenCount\": 4},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"lo\"}],\"role\": \"model\"},\"finishReason\": \"STOP\"}],\"usageMetadata\": {\"promptTokenCount\": 4,\"candidatesTokenCount\": 2,\"totalTokenCount\": 6},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n"
    );

    #[test]
    fn gemini_stream_aggregated_for_a_non_stream_anthropic_client() {
        let mut p = StreamPipeline::new(
            ex(Api::AnthropicMessages, Wire::GeminiGenerateContent, false),
            4096,
        );
        let mut out = Vec::new();
        p.push(GEMINI_STREAM.as_bytes(), true, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["content"][0]["text"], "Hello");
        assert_eq!(v["model"], "alias");
        assert_eq!(v["usage"]["output_tokens"], 2);
        assert_eq!(v["stop_reason"], "end_turn");
    }

    #[test]
    fn gemini_stream_to_anthropic_stream() {
        let mut p = StreamPipeline::new(
            ex(Api::AnthropicMessages, Wire::GeminiGenerateContent, true),
            4096,
        );
        let mut out = Vec::new();
        for b in GEMINI_STREAM.as_bytes() {
            p.push(std::slice::from_ref(b), false, &mut out);
        }
        p.push(b"", true, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("event: message_start"), "{text}");
        assert!(
            text.contains("\"text\":\"Hel\"") && text.contains("\"text\":\"lo\""),
            "{text}"
        );
        assert!(
            text.trim_end().ends_with("{\"type\":\"message_stop\"}"),
            "{text}"
        );
        assert!(text.contains("\"model\":\"alias\""), "{text}");
    }
}
