//! Guarding a whole (non-streamed) JSON response body.
//!
//! The selected answer text is moderated like a request (see
//! [`crate::scope`]); then the request's masked values are put back anywhere
//! in the body. A body that is not valid JSON or not UTF-8 is never passed
//! unchecked: it is moderated as plain text (invalid UTF-8 read as U+FFFD),
//! and only rewritten when a rule changed something.

use std::borrow::Cow;

use crate::answer::{blocked_answer, AnswerMeta};
use crate::config::Guard;
use crate::engine::{Report, Verdict};
use crate::published::{self, LogText};
use crate::scope::{redact_body, BodyOutcome};
use crate::vault::{Escape, Vault};
use aigw::reply::Protocol;

/// What to send instead of the upstream's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WholeOutcome {
    /// Send the body as it is.
    Unchanged,
    /// Send this body instead (masked and/or restored).
    Replace(Vec<u8>),
    /// A block rule matched: send this answer instead.
    Blocked {
        /// The rule's name.
        rule: String,
        /// The replacement answer.
        body: Vec<u8>,
    },
}

/// Guards a whole response `body` for a client speaking `shape`.
/// `moderate`: apply the response rules; `vault`: values to restore;
/// `log`: gets the answer text as checked, before restore (see
/// [`crate::published`]), unless the answer is blocked.
pub fn guard_response_body(
    guard: &Guard,
    body: &[u8],
    shape: Option<Protocol>,
    moderate: bool,
    vault: Option<&Vault>,
    report: &mut Report,
    log: Option<&mut LogText>,
) -> WholeOutcome {
    let text = String::from_utf8_lossy(body);
    let lossy = matches!(text, Cow::Owned(_));
    let mut current: Option<String> = None;
    if let (true, Some(sel)) = (moderate, &guard.response) {
        let outcome = if lossy {
            None
        } else {
            redact_body(&guard.engine, body, true, sel, None, report).ok()
        };
        let outcome = match outcome {
            Some(o) => o,
            None => {
                // Not JSON (or not UTF-8): check it as plain text.
                let mut out = String::with_capacity(text.len());
                match guard.engine.redact(&text, None, &mut out, report) {
                    Verdict::Block { rule } => BodyOutcome::Blocked { rule },
                    Verdict::Pass if out == text => BodyOutcome::Unchanged,
                    Verdict::Pass => BodyOutcome::Rewritten(out),
                }
            }
        };
        match outcome {
            BodyOutcome::Unchanged => {}
            BodyOutcome::Rewritten(s) => current = Some(s),
            BodyOutcome::Blocked { rule } => {
                let meta = AnswerMeta::from_body(body);
                let body =
                    blocked_answer(shape, &meta, &guard.block.message, &guard.block.raw_message);
                return WholeOutcome::Blocked { rule, body };
            }
        }
    }
    if let Some(l) = log {
        published::answer(current.as_deref().unwrap_or(&text), l);
    }
    if let Some(v) = vault.filter(|v| !v.is_empty()) {
        let src: &str = current.as_deref().unwrap_or(&text);
        let mut out = String::with_capacity(src.len() + 64);
        v.restore_into(src, Escape::Json, &mut out);
        if out != src {
            current = Some(out);
        }
    }
    match current {
        Some(s) => WholeOutcome::Replace(s.into_bytes()),
        None => WholeOutcome::Unchanged,
    }
}
