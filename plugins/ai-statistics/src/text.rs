//! Small text helpers: bounded text accumulation and byte searches.

/// Text kept up to a byte limit, cut at a character boundary; remembers that it was cut.
#[derive(Debug, Default, Clone)]
pub struct Bounded {
    text: String,
    truncated: bool,
}

impl Bounded {
    /// Appends as much of `s` as fits in `limit` bytes in total.
    pub fn push(&mut self, s: &str, limit: usize) {
        if self.truncated {
            return;
        }
        let room = limit.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
            return;
        }
        let mut cut = room;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(s.get(..cut).unwrap_or_default());
        self.truncated = true;
    }

    /// Marks the text as cut (text was dropped elsewhere).
    pub fn mark_truncated(&mut self) {
        self.truncated = true;
    }

    /// Whether more text would be kept.
    pub fn full(&self) -> bool {
        self.truncated
    }

    /// The kept text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether text was dropped.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle, 0).is_some()
}

/// The first position of `needle` in `haystack` at or after `from`.
pub fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(from);
    }
    let hay = haystack.get(from..)?;
    hay.windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The last position of `needle` in `haystack`.
pub fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Whether a JSON text has `"<...>_reason"` followed by a string value (not `null`): a
/// cheap test before parsing an event for its finish reason.
pub fn has_reason_string(data: &[u8]) -> bool {
    let mut from = 0;
    while let Some(at) = find(data, b"_reason\"", from) {
        let mut i = at + b"_reason\"".len();
        while data
            .get(i)
            .is_some_and(|b| b.is_ascii_whitespace() || *b == b':')
        {
            i += 1;
        }
        if data.get(i) == Some(&b'"') {
            return true;
        }
        from = at + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_cuts_at_char_boundary() {
        let mut b = Bounded::default();
        b.push("héllo", 3);
        assert_eq!(b.as_str(), "h\u{e9}");
        assert!(b.truncated() && b.full());
        b.push("more", 100);
        assert_eq!(b.as_str(), "h\u{e9}");
        let mut b = Bounded::default();
        b.push("ab", 4);
        b.push("cd", 4);
        assert_eq!(b.as_str(), "abcd");
        assert!(!b.truncated());
    }

    #[test]
    fn searches() {
        assert_eq!(find(b"abcabc", b"bc", 2), Some(4));
        assert_eq!(rfind(b"abcabc", b"bc"), Some(4));
        assert!(contains(b"xyz", b"y"));
        assert!(has_reason_string(br#"{"finish_reason": "stop"}"#));
        assert!(!has_reason_string(br#"{"finish_reason":null}"#));
        assert!(has_reason_string(
            br#"{"a_reason":null,"stop_reason":"end_turn"}"#
        ));
    }
}
