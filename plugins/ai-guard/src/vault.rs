//! The restore vault: masked values sent upstream, so the answer can have them
//! put back.
//!
//! The model sees `[EMAIL_1]`, the user sees their own address again. One
//! vault lives for one request. Each distinct original value gets exactly one
//! placeholder, and each placeholder stands for exactly one value, so restoring
//! is unambiguous. The vault is bounded (entry count and bytes); once full,
//! further values are still masked, just not restorable.

use std::collections::HashMap;

use aigw::hash::push_hex;

/// How restored values are written into the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Escape {
    /// Plain text (e.g. an extracted `delta.content` string).
    #[default]
    None,
    /// Inside a JSON string literal (raw body bytes): the original is JSON
    /// string-escaped (without the surrounding quotes).
    Json,
}

/// Placeholder → original value map for one request.
#[derive(Debug, Clone)]
pub struct Vault {
    by_placeholder: HashMap<String, String>,
    by_original: HashMap<String, String>,
    counters: HashMap<String, u32>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    longest_placeholder: usize,
}

/// Default maximum number of vault entries per request.
pub const DEFAULT_MAX_ENTRIES: usize = 256;
/// Default maximum bytes (originals plus placeholders, counted twice for the
/// two maps) per request.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;

impl Default for Vault {
    fn default() -> Self {
        Vault::new(DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES)
    }
}

impl Vault {
    /// An empty vault holding at most `max_entries` values and `max_bytes`.
    pub fn new(max_entries: usize, max_bytes: usize) -> Vault {
        Vault {
            by_placeholder: HashMap::new(),
            by_original: HashMap::new(),
            counters: HashMap::new(),
            bytes: 0,
            max_entries,
            max_bytes,
            longest_placeholder: 0,
        }
    }

    /// Number of recorded values.
    pub fn len(&self) -> usize {
        self.by_placeholder.len()
    }

    /// Whether nothing was recorded (then restoring is a plain copy).
    pub fn is_empty(&self) -> bool {
        self.by_placeholder.is_empty()
    }

    /// Length in bytes of the longest placeholder recorded.
    pub fn longest_placeholder(&self) -> usize {
        self.longest_placeholder
    }

    /// The original value behind `placeholder`.
    pub fn lookup(&self, placeholder: &str) -> Option<&str> {
        self.by_placeholder.get(placeholder).map(String::as_str)
    }

    /// The placeholder for `original`, creating it when new: `[LABEL_n]`
    /// (numbered per label in order of first appearance) or, when
    /// `hash` is given, `[LABEL:hash]` (suffixed `_n` on a collision).
    /// `None` when the vault is full.
    pub fn placeholder_for(
        &mut self,
        label: &str,
        hash: Option<&[u8]>,
        original: &str,
    ) -> Option<String> {
        if let Some(p) = self.by_original.get(original) {
            return Some(p.clone());
        }
        if self.by_placeholder.len() >= self.max_entries {
            return None;
        }
        let mut p = String::with_capacity(label.len() + 12);
        p.push('[');
        p.push_str(label);
        match hash {
            Some(h) => {
                p.push(':');
                push_hex(&mut p, h, 4);
                let base = p.len();
                let mut n = 1u32;
                p.push(']');
                while self.by_placeholder.contains_key(&p) {
                    n += 1;
                    p.truncate(base);
                    p.push('_');
                    p.push_str(&n.to_string());
                    p.push(']');
                }
            }
            None => {
                let counter = self.counters.entry(label.to_string()).or_insert(0);
                *counter += 1;
                p.push('_');
                p.push_str(&counter.to_string());
                p.push(']');
            }
        }
        let cost = 2 * (p.len() + original.len());
        if self.bytes + cost > self.max_bytes {
            return None;
        }
        self.bytes += cost;
        self.longest_placeholder = self.longest_placeholder.max(p.len());
        self.by_placeholder.insert(p.clone(), original.to_string());
        self.by_original.insert(original.to_string(), p.clone());
        Some(p)
    }

    /// One-shot restore of every placeholder in `text` into `out`.
    pub fn restore_into(&self, text: &str, escape: Escape, out: &mut String) {
        let mut cursor = 0;
        // `true`: the whole text is here, nothing is held back.
        self.restore_step(text, &mut cursor, true, escape, out);
    }

    /// Whether `s` is the start of a recorded placeholder (or one whole).
    pub fn is_placeholder_prefix(&self, s: &str) -> bool {
        self.by_placeholder.keys().any(|p| p.starts_with(s))
    }

    /// Restores from `*cursor` as far as is safe; returns with `*cursor` at
    /// the first byte not yet emitted. Unless `final_`, only an unclosed tail
    /// that is the start of a recorded placeholder (`[EMA` of `[EMAIL_1]`)
    /// is held back.
    pub(crate) fn restore_step(
        &self,
        text: &str,
        cursor: &mut usize,
        final_: bool,
        escape: Escape,
        out: &mut String,
    ) {
        let maxlen = self.longest_placeholder;
        loop {
            let Some(rest) = text.get(*cursor..) else {
                return;
            };
            let p = match (maxlen, rest.find('[')) {
                (0, _) | (_, None) => {
                    out.push_str(rest);
                    *cursor = text.len();
                    return;
                }
                (_, Some(i)) => *cursor + i,
            };
            let window_end = (p + maxlen).min(text.len());
            let close = text
                .as_bytes()
                .get(p + 1..window_end)
                .and_then(|w| w.iter().position(|&b| b == b']'))
                .map(|i| p + 1 + i);
            match close {
                Some(q) => {
                    let cand = text.get(p..=q).unwrap_or("");
                    if let Some(orig) = self.lookup(cand) {
                        out.push_str(text.get(*cursor..p).unwrap_or(""));
                        push_escaped(out, orig, escape);
                        *cursor = q + 1;
                    } else {
                        out.push_str(text.get(*cursor..=p).unwrap_or(""));
                        *cursor = p + 1;
                    }
                }
                None if final_
                    || p + maxlen <= text.len()
                    || !self.is_placeholder_prefix(text.get(p..).unwrap_or("")) =>
                {
                    out.push_str(text.get(*cursor..=p).unwrap_or(""));
                    *cursor = p + 1;
                }
                None => {
                    out.push_str(text.get(*cursor..p).unwrap_or(""));
                    *cursor = p;
                    return;
                }
            }
        }
    }
}

/// Appends `s` to `out`, JSON-string-escaped when asked.
pub fn push_escaped(out: &mut String, s: &str, escape: Escape) {
    match escape {
        Escape::None => out.push_str(s),
        Escape::Json => {
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 => {
                        out.push_str("\\u00");
                        push_hex(out, &[c as u8], 1);
                    }
                    c => out.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_placeholder_per_value() {
        let mut v = Vault::default();
        let a = v.placeholder_for("EMAIL", None, "a@x.com").unwrap();
        let b = v.placeholder_for("EMAIL", None, "b@x.com").unwrap();
        let a2 = v.placeholder_for("EMAIL", None, "a@x.com").unwrap();
        let p = v.placeholder_for("PHONE", None, "13812345678").unwrap();
        assert_eq!(
            (a.as_str(), b.as_str(), p.as_str()),
            ("[EMAIL_1]", "[EMAIL_2]", "[PHONE_1]")
        );
        assert_eq!(a, a2);
        assert_eq!(v.len(), 3);
        assert_eq!(v.lookup("[EMAIL_2]"), Some("b@x.com"));
    }

    #[test]
    fn hash_placeholders_resolve_collisions() {
        let mut v = Vault::default();
        let h = [0xab, 0xcd, 0xef, 0x01, 0x99];
        let a = v.placeholder_for("KEY", Some(&h), "one").unwrap();
        let b = v.placeholder_for("KEY", Some(&h), "two").unwrap();
        assert_eq!(a, "[KEY:abcdef01]");
        assert_eq!(b, "[KEY:abcdef01_2]");
    }

    #[test]
    fn bounded_by_entries_and_bytes() {
        let mut v = Vault::new(2, 1 << 20);
        assert!(v.placeholder_for("X", None, "1").is_some());
        assert!(v.placeholder_for("X", None, "2").is_some());
        assert!(v.placeholder_for("X", None, "3").is_none());
        // Known values still resolve when full.
        assert_eq!(v.placeholder_for("X", None, "1").as_deref(), Some("[X_1]"));
        let mut v = Vault::new(100, 40);
        assert!(v.placeholder_for("X", None, "short").is_some());
        assert!(v.placeholder_for("X", None, &"y".repeat(30)).is_none());
    }

    #[test]
    fn restores_with_and_without_json_escaping() {
        let mut v = Vault::default();
        let p = v.placeholder_for("NAME", None, "a\"b\\c\n").unwrap();
        let text = format!("[x] [{p} and {p}] [NAME_2]");
        let mut out = String::new();
        v.restore_into(&text, Escape::None, &mut out);
        assert_eq!(out, "[x] [a\"b\\c\n and a\"b\\c\n] [NAME_2]");
        out.clear();
        v.restore_into(&text, Escape::Json, &mut out);
        assert_eq!(out, "[x] [a\\\"b\\\\c\\n and a\\\"b\\\\c\\n] [NAME_2]");
    }
}
