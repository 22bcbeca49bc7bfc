//! The incremental event-stream parser.

use std::fmt;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One block of the stream, ended by a blank line. Borrowed from the parser (and the chunk)
/// for the duration of the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    raw: &'a [u8],
    data: Option<&'a [u8]>,
    event_type: &'a [u8],
    id: &'a [u8],
    retry: Option<u64>,
}

impl<'a> Event<'a> {
    /// The exact input bytes of this block, from the end of the previous block through the
    /// blank line that ended this one (comments, BOM and line endings included). The raw
    /// bytes of all blocks plus [`Parser::finish`]'s leftover are exactly the input.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The data (lines joined with `\n`), or `None` when the block had no `data` field; such
    /// blocks (keep-alive comments, id-only blocks) are not events in the WHATWG sense and are
    /// reported only so their raw bytes are not lost.
    pub fn data(&self) -> Option<&'a [u8]> {
        self.data
    }

    /// The data as UTF-8, `None` when absent or not valid UTF-8.
    pub fn data_str(&self) -> Option<&'a str> {
        self.data.and_then(|d| std::str::from_utf8(d).ok())
    }

    /// Whether the block is an event the WHATWG algorithm would dispatch (it has data).
    pub fn is_event(&self) -> bool {
        self.data.is_some()
    }

    /// The `event` field, `"message"` when the block set none (or set it empty).
    pub fn event_type(&self) -> &'a str {
        if self.event_type.is_empty() {
            "message"
        } else {
            std::str::from_utf8(self.event_type).unwrap_or("message")
        }
    }

    /// The last event ID (the WHATWG "last event ID buffer": it persists across blocks until
    /// an `id` field changes it; empty when never set).
    pub fn id(&self) -> &'a [u8] {
        self.id
    }

    /// The `retry` value given in this block, if any (only all-digit values count).
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Whether this is the OpenAI end-of-stream marker `data: [DONE]`.
    pub fn is_done(&self) -> bool {
        self.data == Some(b"[DONE]")
    }
}

/// Parser errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseError {
    /// The pending (not yet complete) block grew past the configured limit. The parser stops;
    /// [`Parser::take_pending`] returns the bytes it was holding so nothing is lost.
    PendingTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::PendingTooLarge { limit } => {
                write!(f, "server-sent event larger than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for SseError {}

/// Incremental Server-Sent Events parser. See the [module docs](crate::sse).
#[derive(Debug, Clone)]
pub struct Parser {
    max_pending: usize,
    /// Raw bytes of the current block that arrived in earlier chunks.
    raw: Vec<u8>,
    /// A line that started in an earlier chunk.
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    event_type: Vec<u8>,
    last_id: Vec<u8>,
    retry: Option<u64>,
    /// The previous chunk ended with CR: a leading LF belongs to that line break.
    skip_lf: bool,
    /// The previous chunk ended with the CR of a blank line: dispatch once we know whether an
    /// LF follows, so the raw bytes do not depend on where the input was split.
    dispatch_pending: bool,
    /// Bytes seen at the very start that may be a BOM (0..=2 bytes while undecided).
    bom: Vec<u8>,
    started: bool,
    failed: bool,
}

impl Parser {
    /// A parser that holds at most `max_pending` bytes of an incomplete block.
    pub fn new(max_pending: usize) -> Parser {
        Parser {
            max_pending,
            raw: Vec::new(),
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            event_type: Vec::new(),
            last_id: Vec::new(),
            retry: None,
            skip_lf: false,
            dispatch_pending: false,
            bom: Vec::new(),
            started: false,
            failed: false,
        }
    }

    /// Feeds the next chunk, calling `on_event` for every block it completes.
    ///
    /// After an error the parser refuses further input until [`Parser::reset`].
    pub fn feed<F: FnMut(Event<'_>)>(
        &mut self,
        chunk: &[u8],
        mut on_event: F,
    ) -> Result<(), SseError> {
        if self.failed {
            return Err(SseError::PendingTooLarge {
                limit: self.max_pending,
            });
        }
        if !self.started {
            // Decide on the BOM, possibly across chunks.
            let mut probe = std::mem::take(&mut self.bom);
            probe.extend_from_slice(chunk);
            if probe.len() < BOM.len() && BOM.starts_with(&probe) {
                self.bom = probe;
                return Ok(());
            }
            self.started = true;
            let body = probe.strip_prefix(BOM).unwrap_or(&probe);
            let bom_len = probe.len() - body.len();
            // The BOM bytes are part of the first block's raw bytes but not of any line.
            self.raw
                .extend_from_slice(probe.get(..bom_len).unwrap_or_default());
            let body = body.to_vec();
            return self.feed_body(&body, &mut on_event);
        }
        self.feed_body(chunk, &mut on_event)
    }

    fn feed_body<F: FnMut(Event<'_>)>(
        &mut self,
        chunk: &[u8],
        on_event: &mut F,
    ) -> Result<(), SseError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let mut pos = 0usize;
        let mut raw_start = 0usize;
        if self.skip_lf {
            self.skip_lf = false;
            if chunk.first() == Some(&b'\n') {
                pos = 1;
            }
        }
        if self.dispatch_pending {
            self.dispatch_pending = false;
            self.dispatch(chunk.get(..pos).unwrap_or_default(), on_event);
            raw_start = pos;
        }
        while pos < chunk.len() {
            let rest = chunk.get(pos..).unwrap_or_default();
            let Some(offset) = memchr::memchr2(b'\n', b'\r', rest) else {
                self.line.extend_from_slice(rest);
                break;
            };
            let line_end = pos + offset;
            let is_cr = chunk.get(line_end) == Some(&b'\r');
            let (next, cr_at_end) = if is_cr {
                match chunk.get(line_end + 1) {
                    Some(b'\n') => (line_end + 2, false),
                    Some(_) => (line_end + 1, false),
                    None => (line_end + 1, true),
                }
            } else {
                (line_end + 1, false)
            };
            let segment = chunk.get(pos..line_end).unwrap_or_default();
            let blank = if self.line.is_empty() {
                self.process_line(segment)
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(segment);
                let blank = self.process_line(&line);
                line.clear();
                self.line = line;
                blank
            };
            pos = next;
            if cr_at_end {
                self.skip_lf = true;
            }
            if blank {
                if cr_at_end {
                    self.dispatch_pending = true;
                } else {
                    self.dispatch(chunk.get(raw_start..pos).unwrap_or_default(), on_event);
                    raw_start = pos;
                }
            }
        }
        self.raw
            .extend_from_slice(chunk.get(raw_start..).unwrap_or_default());
        if self.raw.len() > self.max_pending {
            self.failed = true;
            return Err(SseError::PendingTooLarge {
                limit: self.max_pending,
            });
        }
        Ok(())
    }

    /// Applies one complete line; returns true for a blank line.
    fn process_line(&mut self, line: &[u8]) -> bool {
        if line.is_empty() {
            return true;
        }
        if line.first() == Some(&b':') {
            return false;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = line.get(colon + 1..).unwrap_or_default();
                (
                    line.get(..colon).unwrap_or_default(),
                    value.strip_prefix(b" ").unwrap_or(value),
                )
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
                self.has_data = true;
            }
            b"event" => {
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            b"id" if !value.contains(&0) => {
                self.last_id.clear();
                self.last_id.extend_from_slice(value);
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.retry = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            }
            _ => {}
        }
        false
    }

    /// Reports the current block (its raw bytes are `self.raw` + `tail`) and resets it.
    fn dispatch<F: FnMut(Event<'_>)>(&mut self, tail: &[u8], on_event: &mut F) {
        let raw: &[u8] = if self.raw.is_empty() {
            tail
        } else {
            self.raw.extend_from_slice(tail);
            &self.raw
        };
        let data = if self.has_data {
            // `has_data` means at least one "value\n" was appended.
            Some(
                self.data
                    .get(..self.data.len().saturating_sub(1))
                    .unwrap_or_default(),
            )
        } else {
            None
        };
        on_event(Event {
            raw,
            data,
            event_type: &self.event_type,
            id: &self.last_id,
            retry: self.retry,
        });
        self.raw.clear();
        self.data.clear();
        self.has_data = false;
        self.event_type.clear();
        self.retry = None;
    }

    /// Ends the stream: reports a block whose blank line was the final CR, and returns the
    /// raw bytes of an incomplete trailing block (which, per WHATWG, is not an event). The
    /// parser is then ready for a new stream.
    pub fn finish<F: FnMut(Event<'_>)>(&mut self, mut on_event: F) -> Vec<u8> {
        if !self.started {
            // Only a BOM prefix was seen.
            self.raw.append(&mut self.bom);
        }
        if self.dispatch_pending && !self.failed {
            self.dispatch(&[], &mut on_event);
        }
        let leftover = std::mem::take(&mut self.raw);
        self.reset();
        leftover
    }

    /// Takes the raw bytes the parser holds for the incomplete block (use after an error to
    /// pass them on unchanged).
    pub fn take_pending(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.bom);
        out.append(&mut self.raw);
        out
    }

    /// Whether the parser stopped after [`SseError::PendingTooLarge`].
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// Forgets all state (including the last event ID) and starts a new stream; buffers keep
    /// their capacity.
    pub fn reset(&mut self) {
        self.raw.clear();
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        self.event_type.clear();
        self.last_id.clear();
        self.retry = None;
        self.skip_lf = false;
        self.dispatch_pending = false;
        self.bom.clear();
        self.started = false;
        self.failed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Owned {
        raw: Vec<u8>,
        data: Option<Vec<u8>>,
        event_type: String,
        id: Vec<u8>,
        retry: Option<u64>,
    }

    fn parse_chunks(chunks: &[&[u8]], limit: usize) -> (Vec<Owned>, Vec<u8>) {
        let mut p = Parser::new(limit);
        let mut out = Vec::new();
        let mut push = |e: Event<'_>| {
            out.push(Owned {
                raw: e.raw().to_vec(),
                data: e.data().map(<[u8]>::to_vec),
                event_type: e.event_type().to_string(),
                id: e.id().to_vec(),
                retry: e.retry(),
            })
        };
        for c in chunks {
            p.feed(c, &mut push).unwrap();
        }
        let leftover = p.finish(&mut push);
        (out, leftover)
    }

    fn events(input: &[u8]) -> Vec<Owned> {
        parse_chunks(&[input], 1 << 20)
            .0
            .into_iter()
            .filter(|e| e.data.is_some())
            .collect()
    }

    #[test]
    fn basic_fields() {
        let ev = events(b"event: delta\nid: 7\nretry: 1500\ndata: a\ndata:b\ndata\n\n");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data.as_deref(), Some(&b"a\nb\n"[..]));
        assert_eq!(ev[0].event_type, "delta");
        assert_eq!(ev[0].id, b"7");
        assert_eq!(ev[0].retry, Some(1500));
    }

    #[test]
    fn only_one_space_is_stripped() {
        let ev = events(b"data:  two\n\n");
        assert_eq!(ev[0].data.as_deref(), Some(&b" two"[..]));
    }

    #[test]
    fn line_endings() {
        for input in [
            &b"data: x\r\n\r\n"[..],
            b"data: x\r\r",
            b"data: x\n\n",
            b"data: x\r\n\n",
        ] {
            let ev = events(input);
            assert_eq!(ev.len(), 1, "{input:?}");
            assert_eq!(ev[0].data.as_deref(), Some(&b"x"[..]));
        }
    }

    #[test]
    fn comments_and_empty_blocks_are_not_events_but_keep_raw() {
        let (all, leftover) = parse_chunks(&[b": ping\n\ndata: a\n\n"], 1024);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].data, None);
        assert_eq!(all[0].raw, b": ping\n\n");
        assert_eq!(all[1].raw, b"data: a\n\n");
        assert!(leftover.is_empty());
    }

    #[test]
    fn default_type_id_persistence_and_bad_retry() {
        let ev = events(b"id: 1\ndata: a\n\ndata: b\nretry: 12x\n\nid: bad\0\nevent:\ndata: c\n\n");
        assert_eq!(ev[0].event_type, "message");
        assert_eq!(ev[1].id, b"1");
        assert_eq!(ev[1].retry, None);
        assert_eq!(ev[2].id, b"1");
        assert_eq!(ev[2].event_type, "message");
    }

    #[test]
    fn bom_only_at_start() {
        let ev = events(b"\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n");
        assert_eq!(ev.len(), 1, "the second BOM makes the field name unknown");
        assert_eq!(ev[0].data.as_deref(), Some(&b"a"[..]));
        let (all, _) = parse_chunks(&[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"], 1024);
        assert_eq!(all[0].raw, b"\xEF\xBB\xBFdata: a\n\n");
        assert_eq!(all[0].data.as_deref(), Some(&b"a"[..]));
    }

    #[test]
    fn incomplete_tail_is_leftover() {
        let (all, leftover) = parse_chunks(&[b"data: a\n\ndata: partial\n"], 1024);
        assert_eq!(all.len(), 1);
        assert_eq!(leftover, b"data: partial\n");
    }

    #[test]
    fn cr_blank_line_at_end_of_stream_dispatches() {
        let (all, leftover) = parse_chunks(&[b"data: a\r", b"\r"], 1024);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].raw, b"data: a\r\r");
        assert!(leftover.is_empty());
    }

    #[test]
    fn pending_limit() {
        let mut p = Parser::new(16);
        let err = p
            .feed(b"data: this line is way too long", |_| {})
            .unwrap_err();
        assert_eq!(err, SseError::PendingTooLarge { limit: 16 });
        assert!(p.has_failed());
        assert_eq!(p.take_pending(), b"data: this line is way too long");
        assert!(p.feed(b"\n\n", |_| {}).is_err());
        p.reset();
        let mut n = 0;
        p.feed(b"data: ok\n\n", |_| n += 1).unwrap();
        assert_eq!(n, 1);
        // A large complete event inside one chunk needs no pending storage.
        let mut big = b"data: ".to_vec();
        big.extend(std::iter::repeat_n(b'x', 100));
        big.extend_from_slice(b"\n\n");
        p.feed(&big, |_| n += 1).unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn buffers_are_reused() {
        let mut p = Parser::new(1024);
        p.feed(b"data: aaaaaaaa", |_| {}).unwrap();
        p.feed(b"aaaa\n\n", |_| {}).unwrap();
        let cap = p.data.capacity();
        p.feed(b"data: bb", |_| {}).unwrap();
        p.feed(b"b\n\n", |_| {}).unwrap();
        assert_eq!(p.data.capacity(), cap);
    }

    fn arb_line_ending() -> impl Strategy<Value = &'static [u8]> {
        prop_oneof![Just(&b"\n"[..]), Just(&b"\r"[..]), Just(&b"\r\n"[..])]
    }

    fn arb_value() -> impl Strategy<Value = String> {
        "[a-z0-9 :{}\"\u{e9}\u{4e2d}\u{1F600}]{0,12}"
    }

    #[derive(Debug, Clone)]
    enum Line {
        Data(String),
        Event(String),
        Id(String),
        Retry(u32),
        Comment(String),
        Unknown(String),
    }

    fn arb_line() -> impl Strategy<Value = Line> {
        prop_oneof![
            4 => arb_value().prop_map(Line::Data),
            1 => "[a-z]{0,6}".prop_map(Line::Event),
            1 => "[0-9a-z]{0,4}".prop_map(Line::Id),
            1 => any::<u32>().prop_map(Line::Retry),
            1 => arb_value().prop_map(Line::Comment),
            1 => "[a-z]{1,5}".prop_map(Line::Unknown),
        ]
    }

    fn arb_stream() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<bool>(),
            proptest::collection::vec(
                (
                    proptest::collection::vec((arb_line(), any::<bool>(), arb_line_ending()), 0..5),
                    arb_line_ending(),
                ),
                0..6,
            ),
            proptest::option::of("data: [a-z]{0,5}"),
        )
            .prop_map(|(bom, blocks, tail)| {
                let mut out = Vec::new();
                if bom {
                    out.extend_from_slice(BOM);
                }
                for (lines, blank_end) in blocks {
                    for (line, space, end) in lines {
                        let sp = if space { " " } else { "" };
                        let text = match line {
                            Line::Data(v) => format!("data:{sp}{v}"),
                            Line::Event(v) => format!("event:{sp}{v}"),
                            Line::Id(v) => format!("id:{sp}{v}"),
                            Line::Retry(v) => format!("retry:{sp}{v}"),
                            Line::Comment(v) => format!(":{v}"),
                            Line::Unknown(v) => format!("{v}:{sp}x"),
                        };
                        out.extend_from_slice(text.as_bytes());
                        out.extend_from_slice(end);
                    }
                    out.extend_from_slice(blank_end);
                }
                if let Some(t) = tail {
                    out.extend_from_slice(t.as_bytes());
                }
                out
            })
    }

    proptest! {
        #[test]
        fn same_events_for_any_split(input in arb_stream(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8)) {
            let whole = parse_chunks(&[&input], 1 << 20);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut prev = 0;
            for p in points {
                chunks.push(&input[prev..p]);
                prev = p;
            }
            chunks.push(&input[prev..]);
            let split = parse_chunks(&chunks, 1 << 20);
            prop_assert_eq!(&whole, &split);
            // Raw bytes of all blocks plus the leftover reproduce the input exactly.
            let mut joined: Vec<u8> = whole.0.iter().flat_map(|e| e.raw.clone()).collect();
            joined.extend_from_slice(&whole.1);
            prop_assert_eq!(joined, input);
        }

        #[test]
        fn byte_by_byte_equals_whole(input in arb_stream()) {
            let whole = parse_chunks(&[&input], 1 << 20);
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            prop_assert_eq!(whole, parse_chunks(&bytes, 1 << 20));
        }
    }

    #[test]
    fn matches_reference_algorithm_on_known_stream() {
        // Data lines join with LF; the final LF is removed; event type resets per block.
        let input = b"event: a\ndata: 1\n\ndata: 2\ndata:\n\n";
        let ev = events(input);
        assert_eq!(ev[0].event_type, "a");
        assert_eq!(ev[0].data.as_deref(), Some(&b"1"[..]));
        assert_eq!(ev[1].event_type, "message");
        assert_eq!(ev[1].data.as_deref(), Some(&b"2\n"[..]));
    }
}
