//! Text that came from a client, made safe to put into a log line or an error message.
//!
//! A client controls model names, paths, header values and JSON keys. Written verbatim they
//! can forge log lines (`\n`), recolour a terminal (ANSI escapes) or make a log line or an error
//! reply hundreds of kilobytes long. [`untrusted`] escapes every control character and bounds
//! the length; [`sanitize_line`] does the same to a whole line as a last line of defence.
//!
//! ```
//! use aigw::log::untrusted;
//!
//! assert_eq!(untrusted("gpt-4o\n\x1b[31mFAKE").to_string(), "gpt-4o\\n\\u{1b}[31mFAKE");
//! let long = "x".repeat(1000);
//! assert!(untrusted(&long).to_string().ends_with("…(1000 bytes)"));
//! ```

use std::borrow::Cow;
use std::fmt;

/// How many characters of a client value [`untrusted`] shows.
pub const UNTRUSTED_MAX_CHARS: usize = 128;

/// The longest log line, in bytes, that [`sanitize_line`] lets through.
pub const MAX_LINE_BYTES: usize = 4096;

/// A client value to display: control characters escaped, at most [`UNTRUSTED_MAX_CHARS`]
/// characters shown, then `…(N bytes)` giving the full length.
#[derive(Debug, Clone, Copy)]
pub struct Untrusted<'a> {
    text: &'a str,
    max_chars: usize,
}

/// Wraps a client value for display in a log line or an error message.
pub fn untrusted(text: &str) -> Untrusted<'_> {
    Untrusted {
        text,
        max_chars: UNTRUSTED_MAX_CHARS,
    }
}

impl Untrusted<'_> {
    /// Shows at most `max_chars` characters instead of the default.
    pub fn max_chars(mut self, max_chars: usize) -> Self {
        self.max_chars = max_chars;
        self
    }
}

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shown, c) in self.text.chars().enumerate() {
            if shown == self.max_chars {
                return write!(f, "…({} bytes)", self.text.len());
            }
            write_char(f, c)?;
        }
        Ok(())
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}' | '\u{feff}'
        )
}

fn write_char(f: &mut impl fmt::Write, c: char) -> fmt::Result {
    if !needs_escape(c) {
        return f.write_char(c);
    }
    match c {
        '\n' => f.write_str("\\n"),
        '\r' => f.write_str("\\r"),
        '\t' => f.write_str("\\t"),
        other => write!(f, "\\u{{{:x}}}", other as u32),
    }
}

/// `line` with control and bidirectional-override characters escaped and at most
/// [`MAX_LINE_BYTES`] bytes long (cut on a character boundary, then `…(cut)`). Every line the
/// SDK logs goes through this, so a value that reached a log line unwrapped still cannot
/// forge a line or flood the log.
pub fn sanitize_line(line: &str) -> Cow<'_, str> {
    let clean = !line.chars().any(needs_escape) && line.len() <= MAX_LINE_BYTES;
    if clean {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len().min(MAX_LINE_BYTES) + 16);
    for c in line.chars() {
        let before = out.len();
        if write_char(&mut out, c).is_err() {
            break;
        }
        if out.len() > MAX_LINE_BYTES {
            out.truncate(before);
            out.push_str("…(cut)");
            break;
        }
    }
    Cow::Owned(out)
}

/// `message` bounded for an error reply: at most `max_bytes` bytes including the `…` that
/// marks a cut (made on a character boundary), control characters escaped.
pub fn bounded_message(message: String, max_bytes: usize) -> String {
    if message.len() <= max_bytes && !message.chars().any(needs_escape) {
        return message;
    }
    let mut out = String::with_capacity(max_bytes.min(message.len()) + 4);
    for c in message.chars() {
        if write_char(&mut out, c).is_err() {
            break;
        }
    }
    if out.len() > max_bytes {
        let mut cut = max_bytes.saturating_sub('…'.len_utf8());
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi() {
        assert_eq!(untrusted("a\r\nb\tc").to_string(), "a\\r\\nb\\tc");
        assert_eq!(untrusted("\u{202e}x\u{0}").to_string(), "\\u{202e}x\\u{0}");
        assert_eq!(untrusted("模型-ok").to_string(), "模型-ok");
    }

    #[test]
    fn bounds_by_characters_not_bytes() {
        let s = "é".repeat(200);
        let shown = untrusted(&s).to_string();
        assert!(shown.starts_with(&"é".repeat(128)));
        assert!(shown.ends_with("…(400 bytes)"), "{shown}");
        assert_eq!(untrusted(&"a".repeat(128)).to_string(), "a".repeat(128));
        assert_eq!(
            untrusted("abcdef").max_chars(3).to_string(),
            "abc…(6 bytes)"
        );
    }

    #[test]
    fn lines_are_escaped_and_bounded() {
        assert_eq!(sanitize_line("plain line"), "plain line");
        assert_eq!(sanitize_line("a\nfake: line"), "a\\nfake: line");
        let long = format!("x{}", "\n".repeat(10_000));
        let out = sanitize_line(&long);
        assert!(out.len() <= MAX_LINE_BYTES + "…(cut)".len());
        assert!(out.ends_with("…(cut)") && !out.contains('\n'));
    }

    #[test]
    fn messages_are_bounded_on_char_boundaries() {
        assert_eq!(bounded_message("ok".into(), 10), "ok");
        let m = bounded_message("ü".repeat(100), 13);
        assert_eq!(m, format!("{}…", "ü".repeat(5)));
        assert!(bounded_message("x".repeat(50), 10).len() <= 10);
        assert_eq!(bounded_message("a\x1bb".into(), 100), "a\\u{1b}b");
    }
}
