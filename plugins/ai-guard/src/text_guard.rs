//! Guarding a response body that is plain text (not JSON, not SSE), chunk by
//! chunk with the hold-back window.
//!
//! Bytes are decoded as UTF-8 across chunk boundaries; invalid sequences reach
//! the client as U+FFFD (the guarded text is always valid UTF-8). On a block,
//! the text before the match is sent and the rest of the body is dropped.

use crate::engine::{Report, Verdict};
use crate::stream::{AnswerStream, Utf8Carry};

/// The guard of one plain-text body.
#[derive(Debug)]
pub struct TextGuard {
    answer: AnswerStream,
    carry: Utf8Carry,
    blocked: Option<String>,
    text: String,
}

impl TextGuard {
    /// A guard over `answer` (moderation and/or restore stages).
    pub fn new(answer: AnswerStream) -> TextGuard {
        TextGuard {
            answer,
            carry: Utf8Carry::default(),
            blocked: None,
            text: String::new(),
        }
    }

    /// The rule that stopped the body.
    pub fn blocked(&self) -> Option<&str> {
        self.blocked.as_deref()
    }

    /// Hits so far.
    pub fn report(&self) -> Option<&Report> {
        self.answer.report()
    }

    /// Feeds one chunk; appends what to send to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.blocked.is_some() {
            return;
        }
        let mut carry = std::mem::take(&mut self.carry);
        carry.feed(chunk, |piece| {
            if self.blocked.is_some() {
                return;
            }
            self.text.clear();
            if let Verdict::Block { rule } = self.answer.push(piece, &mut self.text) {
                self.blocked = Some(rule);
            }
            out.extend_from_slice(self.text.as_bytes());
        });
        self.carry = carry;
    }

    /// Ends the body: sends what was held back.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.blocked.is_some() {
            return;
        }
        let mut carry = std::mem::take(&mut self.carry);
        carry.finish(|piece| {
            self.text.clear();
            if let Verdict::Block { rule } = self.answer.push(piece, &mut self.text) {
                self.blocked = Some(rule);
            }
            out.extend_from_slice(self.text.as_bytes());
        });
        self.carry = carry;
        if self.blocked.is_some() {
            return;
        }
        self.text.clear();
        if let Verdict::Block { rule } = self.answer.finish(&mut self.text) {
            self.blocked = Some(rule);
        }
        out.extend_from_slice(self.text.as_bytes());
    }
}
