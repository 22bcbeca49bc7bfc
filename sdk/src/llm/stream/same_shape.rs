//! Recognising a stream event that differs from an earlier one only in one plain string.
//!
//! Most events of a streamed answer are the same bytes around a different text increment:
//! `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,
//! "delta":{"content":"` … `"},"finish_reason":null}]}`. A reader that has parsed one such event
//! remembers the bytes before and after its string literal; a later event with exactly those
//! bytes around a string literal without escapes or control characters parses the same way,
//! except for that string (a JSON parser reads left to right, so equal bytes before the
//! literal leave it in the same state, and one plain string literal in place of another leaves
//! it in the same state after). Checking that costs a comparison of the event's bytes instead
//! of a parse.

use std::ops::Range;

/// The bytes around the string literal of a learnt event.
#[derive(Debug, Default, Clone)]
pub(crate) struct SameShape {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    known: bool,
}

impl SameShape {
    /// Remembers `data` around the string literal at `literal` (quotes included), whose
    /// parse the caller keeps.
    pub(crate) fn learn(&mut self, data: &[u8], literal: Range<usize>) {
        match (data.get(..literal.start), data.get(literal.end..)) {
            (Some(before), Some(after)) if literal.start < literal.end => {
                self.prefix.clear();
                self.prefix.extend_from_slice(before);
                self.suffix.clear();
                self.suffix.extend_from_slice(after);
                self.known = true;
            }
            _ => self.known = false,
        }
    }

    /// When `data` is the learnt event with another plain string literal in its place: the
    /// literal's span in `data` (quotes included) and its text.
    pub(crate) fn text<'a>(&self, data: &'a [u8]) -> Option<(Range<usize>, &'a str)> {
        if !self.known {
            return None;
        }
        let end = data.len().checked_sub(self.suffix.len())?;
        let literal = data.get(self.prefix.len()..end)?;
        if !(data.starts_with(&self.prefix) && data.ends_with(&self.suffix)) {
            return None;
        }
        let inner = literal.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
        if inner.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) {
            return None;
        }
        let text = std::str::from_utf8(inner).ok()?;
        Some((self.prefix.len()..end, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_literal_between_the_same_bytes() {
        let mut s = SameShape::default();
        let first = br#"{"a":1,"t":"hello","z":[null]}"#;
        assert!(s.text(first).is_none(), "nothing learnt yet");
        s.learn(first, 11..18);
        let (span, text) = s.text(br#"{"a":1,"t":"other text","z":[null]}"#).unwrap();
        assert_eq!((span, text), (11..23, "other text"));
        assert_eq!(s.text(br#"{"a":1,"t":"","z":[null]}"#).unwrap().1, "");
        assert_eq!(
            s.text("{\"a\":1,\"t\":\"中文\",\"z\":[null]}".as_bytes())
                .unwrap()
                .1,
            "中文"
        );
        for other in [
            &br#"{"a":2,"t":"x","z":[null]}"#[..],
            br#"{"a":1,"t":"x","z":[nul]}"#,
            br#"{"a":1,"t":"x\"y","z":[null]}"#,
            br#"{"a":1,"t":"x","y":"z","z":[null]}"#,
            br#"{"a":1,"t":"a\nb","z":[null]}"#,
            b"{\"a\":1,\"t\":\"a\x01b\",\"z\":[null]}",
            b"{\"a\":1,\"t\":\"\xff\",\"z\":[null]}",
            br#"{"a":1,"t":7,"z":[null]}"#,
            br#"{"a":1,"t":"#,
        ] {
            assert!(
                s.text(other).is_none(),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        s.learn(first, 0..0);
        assert!(s.text(first).is_none(), "an empty span learns nothing");
    }
}
