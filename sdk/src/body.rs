//! Body handling helpers: whole-body reads with a limit, a streaming chunk rewriter that can
//! hold back a tail, and the chunk descriptor body callbacks receive.
//!
//! The host-facing halves are methods of [`crate::plugin::Ctx`]
//! (`whole_request_body`, `whole_response_body`, `rewrite_response_body`,
//! `replace_request_body`, ...). This module holds the pure logic.

use crate::host::HostError;
use crate::plugin::Flow;

/// What a body callback was told: the bytes available now and whether the body ends here.
///
/// After a callback returned [`Flow::Pause`], the next `size` covers the whole body buffered
/// so far; after [`Flow::Continue`], only the new chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyChunk {
    /// Bytes readable from the body buffer in this callback.
    pub size: usize,
    /// Whether this is the last chunk.
    pub end_of_stream: bool,
}

/// Outcome of a whole-body read (`Ctx::whole_request_body` / `whole_response_body`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whole {
    /// More body is coming: return [`Whole::flow`] (`Pause`), the host keeps buffering.
    Pending,
    /// The complete body.
    Ready(Vec<u8>),
    /// The body exceeds the limit. For a request a 413 error reply in the client's protocol
    /// was sent (`replied == true`, flow `Pause`); for a response nothing was sent and the body
    /// passes through unmodified (flow `Continue`). Later chunks keep reporting `TooLarge`.
    TooLarge {
        /// Whether the SDK sent a local reply.
        replied: bool,
    },
    /// The host refused the read; the body passes through (flow `Continue`).
    Failed(HostError),
}

impl Whole {
    /// What the body callback should return for this outcome (`Ready` gives `Continue`).
    pub fn flow(&self) -> Flow {
        match self {
            Whole::Pending | Whole::TooLarge { replied: true } => Flow::Pause,
            Whole::Ready(_) | Whole::TooLarge { replied: false } | Whole::Failed(_) => {
                Flow::Continue
            }
        }
    }
}

/// What a whole-request-body read does when the body is larger than its limit
/// (see `Ctx::whole_request_body_or`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverLimit {
    /// Answer 413 in the client's protocol; the body never reaches the upstream.
    #[default]
    Reject,
    /// Send nothing: the plugin decides (let the body through unread, or reply itself).
    Pass,
}

/// The pure decision behind a whole-body read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WholeStep {
    /// Keep buffering.
    Wait,
    /// Read `size` bytes now.
    Read,
    /// Over the limit.
    Overflow,
}

/// Decides what to do with a body chunk when collecting at most `limit` bytes. `size` is the
/// accumulated size (the host re-presents everything buffered after a pause).
pub(crate) fn whole_step(chunk: BodyChunk, limit: usize) -> WholeStep {
    if chunk.size > limit {
        WholeStep::Overflow
    } else if chunk.end_of_stream {
        WholeStep::Read
    } else {
        WholeStep::Wait
    }
}

/// A streaming body rewriter that can hold back a tail of each chunk for the next one (for
/// example an incomplete SSE event or a possible match that straddles chunks).
///
/// Each call sees the held bytes followed by the new chunk. The callback writes the
/// replacement for the bytes it consumes into `out` and returns how many trailing input bytes
/// to hold back (unprocessed). Held bytes are at most `max_hold`: anything beyond is released
/// unchanged, so memory stays bounded and no byte is lost. At end of stream the held bytes are
/// released unchanged after the callback's output.
///
/// ```
/// use aigw::body::Rewriter;
///
/// // Upper-case complete lines; hold back an unfinished line.
/// let mut rw = Rewriter::new(1024);
/// let mut upper = |input: &[u8], _eos: bool, out: &mut Vec<u8>| {
///     let done = input.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
///     out.extend(input[..done].iter().map(u8::to_ascii_uppercase));
///     input.len() - done
/// };
/// assert_eq!(rw.process(b"ab\ncd", false, &mut upper), b"AB\n");
/// assert_eq!(rw.process(b"e\nf", false, &mut upper), b"CDE\n");
/// assert_eq!(rw.process(b"", true, &mut upper), b"f");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Rewriter {
    input: Vec<u8>,
    out: Vec<u8>,
    max_hold: usize,
}

impl Rewriter {
    /// A rewriter that holds back at most `max_hold` bytes between chunks.
    pub fn new(max_hold: usize) -> Rewriter {
        Rewriter {
            input: Vec::new(),
            out: Vec::new(),
            max_hold,
        }
    }

    /// Bytes currently held back.
    pub fn held(&self) -> usize {
        self.input.len()
    }

    /// Processes one chunk and returns the bytes to emit in its place.
    pub fn process<F>(&mut self, chunk: &[u8], end_of_stream: bool, f: F) -> &[u8]
    where
        F: FnOnce(&[u8], bool, &mut Vec<u8>) -> usize,
    {
        self.input.extend_from_slice(chunk);
        self.out.clear();
        let len = self.input.len();
        let unconsumed = f(&self.input, end_of_stream, &mut self.out).min(len);
        let keep = if end_of_stream {
            0
        } else {
            unconsumed.min(self.max_hold)
        };
        // Unconsumed bytes that are not held (end of stream, or over `max_hold`) are released
        // unchanged, in order. `keep <= unconsumed <= len`, so both ranges are in bounds.
        let released = self
            .input
            .get(len - unconsumed..len - keep)
            .unwrap_or_default();
        self.out.extend_from_slice(released);
        self.input.drain(..len - keep);
        &self.out
    }

    /// Releases the held bytes (for a stream that ends without an end-of-stream body chunk,
    /// such as one with trailers).
    pub fn flush(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_steps() {
        let c = |size, end_of_stream| BodyChunk {
            size,
            end_of_stream,
        };
        assert_eq!(whole_step(c(10, false), 100), WholeStep::Wait);
        assert_eq!(whole_step(c(100, true), 100), WholeStep::Read);
        assert_eq!(whole_step(c(0, true), 100), WholeStep::Read);
        assert_eq!(whole_step(c(101, false), 100), WholeStep::Overflow);
        assert_eq!(whole_step(c(101, true), 100), WholeStep::Overflow);
    }

    #[test]
    fn whole_flows() {
        assert_eq!(Whole::Pending.flow(), Flow::Pause);
        assert_eq!(Whole::Ready(vec![]).flow(), Flow::Continue);
        assert_eq!(Whole::TooLarge { replied: true }.flow(), Flow::Pause);
        assert_eq!(Whole::TooLarge { replied: false }.flow(), Flow::Continue);
        assert_eq!(Whole::Failed(HostError::BadArgument).flow(), Flow::Continue);
    }

    #[test]
    fn hold_back_and_release_at_end() {
        let mut rw = Rewriter::new(8);
        // Consume everything except the last 2 bytes; replace consumed bytes by their count.
        let f = |input: &[u8], _eos: bool, out: &mut Vec<u8>| {
            let n = input.len().saturating_sub(2);
            out.extend_from_slice(format!("[{n}]").as_bytes());
            2
        };
        assert_eq!(rw.process(b"abcd", false, f), b"[2]");
        assert_eq!(rw.held(), 2);
        assert_eq!(rw.process(b"ef", false, f), b"[2]");
        // At end of stream the held tail is released unchanged.
        assert_eq!(rw.process(b"g", true, f), b"[1]fg");
        assert_eq!(rw.held(), 0);
    }

    #[test]
    fn hold_is_bounded_and_loses_nothing() {
        let mut rw = Rewriter::new(3);
        let identity_hold_all = |input: &[u8], _eos: bool, _out: &mut Vec<u8>| input.len();
        assert_eq!(rw.process(b"abcdef", false, identity_hold_all), b"abc");
        assert_eq!(rw.held(), 3);
        assert_eq!(rw.process(b"gh", false, identity_hold_all), b"de");
        assert_eq!(rw.flush(), b"fgh");
        assert_eq!(rw.held(), 0);
    }

    #[test]
    fn oversized_keep_request_is_clamped_to_input() {
        let mut rw = Rewriter::new(100);
        let out = rw.process(b"xy", false, |_, _, _| 1000).to_vec();
        assert!(out.is_empty());
        assert_eq!(rw.held(), 2);
        // At end of stream, whatever the callback leaves unconsumed is released unchanged.
        assert_eq!(rw.process(b"", true, |i, _, _| i.len()), b"xy");
        assert_eq!(rw.held(), 0);
    }
}
