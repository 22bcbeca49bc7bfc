//! Same-dialect pass-through of a streamed answer: the upstream's bytes are forwarded as they
//! arrive, while a fast scan (or, for unusual framing, the SDK's SSE parser) reads usage and
//! finds the few events that change: the OpenAI usage-only chunk the client did not ask for,
//! and the reported model name.

use super::*;

/// The client's bytes for one upstream chunk, built lazily: as long as they are the chunk's
/// own bytes from its start, nothing is copied.
pub(super) struct Emit<'a> {
    chunk: &'a [u8],
    out: &'a mut Vec<u8>,
    /// Everything emitted so far is `chunk[..upto]`.
    same: bool,
    upto: usize,
}

impl<'a> Emit<'a> {
    pub(super) fn new(chunk: &'a [u8], out: &'a mut Vec<u8>) -> Emit<'a> {
        Emit {
            chunk,
            out,
            same: true,
            upto: 0,
        }
    }

    /// Emits `chunk[from..to]`.
    pub(super) fn chunk(&mut self, from: usize, to: usize) {
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
    pub(super) fn bytes(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        self.diverge();
        self.out.extend_from_slice(b);
    }

    pub(super) fn diverge(&mut self) {
        if self.same {
            self.same = false;
            self.out
                .extend_from_slice(self.chunk.get(..self.upto).unwrap_or_default());
        }
    }

    pub(super) fn finish(mut self) -> Output {
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
pub(super) struct Pass {
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
    pub(super) acc: UsageAccumulator,
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
pub(super) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What happens to a complete event.
pub(super) enum Fate<'a> {
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
    pub(super) fn new(ex: &Exchange, protocol: UsageProtocol, max_event: usize) -> Pass {
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
    pub(super) fn feed(
        &mut self,
        chunk: &[u8],
        emit: &mut Emit<'_>,
    ) -> Result<(), aigw::sse::SseError> {
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
    pub(super) fn feed_fast(
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
    pub(super) fn feed_exact(
        &mut self,
        chunk: &[u8],
        emit: &mut Emit<'_>,
    ) -> Result<(), aigw::sse::SseError> {
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
    pub(super) fn decided_prefix(&mut self) -> usize {
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
    pub(super) fn close(&mut self, emit: &mut Emit<'_>) {
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
    pub(super) fn abort(&mut self, emit: &mut Emit<'_>) {
        if self.sent > 0 {
            emit.bytes(b"\n\n");
        }
        self.cur.clear();
        self.sent = 0;
    }
}

/// Emits `buf[from..to]` of the fast path's buffer (`cur` with the chunk appended at `old`)
/// with `fate` applied to the event it ends (offsets in `fate` are into `buf`).
pub(super) fn emit_buffered(
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
pub(super) fn agreed(bytes: &[u8], name: &[u8]) -> usize {
    bytes.iter().zip(name).take_while(|(a, b)| a == b).count()
}

/// Decides a complete event's fate from its data (`usage_only_candidate`: it carried usage and
/// the usage-only chunk is to be dropped).
pub(super) fn event_fate<'m>(
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
pub(super) fn model_fate<'m>(
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
pub(super) fn emit_event(
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
pub(super) fn data_spans(raw: &[u8], first: bool, partial: bool, spans: &mut Vec<(usize, usize)>) {
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
pub(super) fn joined_data<'r>(
    raw: &'r [u8],
    spans: &[(usize, usize)],
) -> std::borrow::Cow<'r, [u8]> {
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
pub(super) fn raw_offset(spans: &[(usize, usize)], at: usize) -> Option<usize> {
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
pub(super) fn key_then(json: &[u8], finder: &memchr::memmem::Finder<'_>, next: &[u8]) -> bool {
    crate::response::key_values(json, finder).any(|mut j| {
        next.iter().all(|want| {
            while json.get(j).is_some_and(u8::is_ascii_whitespace) {
                j += 1;
            }
            let hit = json.get(j) == Some(want);
            j += 1;
            hit
        })
    })
}

/// Whether an OpenAI chunk (or the beginning of one) shows a choice: `"choices": [ {`.
pub(super) fn has_a_choice(data: &[u8]) -> bool {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    let finder = FINDER.get_or_init(|| memchr::memmem::Finder::new(b"\"choices\""));
    key_then(data, finder, b"[{")
}

/// Whether an OpenAI chunk finishes a choice (`"finish_reason"` with a string value).
pub(super) fn finishes_a_choice(data: &[u8]) -> bool {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    let finder = FINDER.get_or_init(|| memchr::memmem::Finder::new(b"\"finish_reason\""));
    key_then(data, finder, b"\"")
}

/// An OpenAI chunk whose `choices` is empty (the usage chunk).
pub(super) fn is_usage_only_chunk(data: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct C {
        #[serde(default)]
        choices: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<C>(data).is_ok_and(|c| c.choices.is_empty())
}
