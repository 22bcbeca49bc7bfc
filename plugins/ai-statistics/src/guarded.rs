//! The masked question and answer ai-guard publishes, logged instead of the
//! text this plugin read itself.
//!
//! ai-statistics runs first in the chain: it reads the client's own request
//! and, on the way back, the answer after ai-guard put the client's masked
//! values back. When ai-guard (later in the chain) masked something, it
//! publishes the texts as the upstream saw and produced them in filter state
//! (set before this plugin's log phase, read here at log time):
//! `{"text": "...", "truncated": bool, "complete": bool}`, or
//! `{"withheld": "blocked" | "unchecked"}` when it has no masked text to show
//! ([`aigw::contract::GuardRecord`], under [`aigw::contract::GUARD_QUESTION_PROPERTY`] and
//! [`aigw::contract::GUARD_ANSWER_PROPERTY`]).

use crate::text::Bounded;
use aigw::contract::GuardRecord;

/// What ai-guard published for one text.
#[derive(Debug)]
pub enum Guarded {
    /// The masked text, cut to this plugin's limit.
    Text(Bounded),
    /// No text may be logged; the reason (`blocked`, `unchecked`, `unreadable`).
    Withheld(String),
}

/// A published record ([`GuardRecord`]), its text cut at `limit` bytes. A streamed answer
/// not yet complete counts as cut (only its beginning was published).
pub fn bound(record: GuardRecord, limit: usize) -> Guarded {
    match record {
        GuardRecord::Withheld(why) => Guarded::Withheld(why),
        GuardRecord::Text {
            text,
            truncated,
            complete,
        } => {
            let mut b = Bounded::default();
            b.push(&text, limit);
            if truncated || !complete {
                b.mark_truncated();
            }
            Guarded::Text(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A published value as the plugin reads it (`GuardRecord::parse`, then [`bound`]). A value
    /// that is neither form withholds the text (`unreadable`).
    fn parse(raw: &[u8], limit: usize) -> Guarded {
        bound(GuardRecord::parse(raw), limit)
    }

    fn text(g: &Guarded) -> Option<(&str, bool)> {
        match g {
            Guarded::Text(b) => Some((b.as_str(), b.truncated())),
            Guarded::Withheld(_) => None,
        }
    }

    #[test]
    fn forms() {
        let g = parse(
            br#"{"text":"Hi [EMAIL_1]","truncated":false,"complete":true}"#,
            100,
        );
        assert_eq!(text(&g), Some(("Hi [EMAIL_1]", false)));
        let g = parse(
            br#"{"text":"Hi [EMAIL_1]","truncated":false,"complete":true}"#,
            4,
        );
        assert_eq!(text(&g), Some(("Hi [", true)));
        let g = parse(br#"{"text":"Hi","truncated":false,"complete":false}"#, 100);
        assert_eq!(text(&g), Some(("Hi", true)));
        let g = parse(br#"{"text":"Hi","truncated":true,"complete":true}"#, 100);
        assert_eq!(text(&g), Some(("Hi", true)));
        match parse(br#"{"withheld":"blocked"}"#, 100) {
            Guarded::Withheld(w) => assert_eq!(w, "blocked"),
            other => panic!("{other:?}"),
        }
        match parse(b"bob@corp.example", 100) {
            Guarded::Withheld(w) => assert_eq!(w, "unreadable"),
            other => panic!("{other:?}"),
        }
    }
}
