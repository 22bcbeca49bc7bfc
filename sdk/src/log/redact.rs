//! Masking secrets before they reach a log line.

use std::borrow::Cow;

/// What a masked value is replaced with.
pub const REDACTED: &str = "[redacted]";

const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "cookie",
    "set-cookie",
];

const SECRET_FIELDS: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "x-api-key",
    "authorization",
    "password",
    "secret",
    "access_token",
    "token",
];

/// Masks secrets in header values and free text.
///
/// Always masked: the headers `authorization`, `proxy-authorization`, `api-key`, `x-api-key`,
/// `x-goog-api-key`, `cookie`, `set-cookie`; in text, `Bearer <token>`, `sk-...` style keys
/// and the values of fields named `api_key`, `apikey`, `api-key`, `x-api-key`,
/// `authorization`, `password`, `secret`, `access_token`, `token` (as `"name": "value"` or
/// `name=value`). More header/field names can be added.
///
/// ```
/// use aigw::log::Redactor;
///
/// let r = Redactor::new(&["x-tenant-secret"]);
/// assert_eq!(r.header("Authorization", "Bearer abc"), "[redacted]");
/// assert_eq!(r.header("x-tenant-secret", "t"), "[redacted]");
/// assert_eq!(r.header("content-type", "text/plain"), "text/plain");
/// assert_eq!(
///     r.text(r#"key sk-proj-0123456789abcdefXYZ in {"api_key": "k1"}"#),
///     r#"key [redacted] in {"api_key": "[redacted]"}"#
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    extra: Vec<String>,
}

impl Redactor {
    /// A redactor that also masks the given header/field names (case-insensitive).
    pub fn new(extra_names: &[&str]) -> Redactor {
        Redactor {
            extra: extra_names.iter().map(|n| n.to_ascii_lowercase()).collect(),
        }
    }

    fn is_extra(&self, name: &str) -> bool {
        self.extra.iter().any(|e| e.eq_ignore_ascii_case(name))
    }

    /// Whether a header carries a secret.
    pub fn is_secret_header(&self, name: &str) -> bool {
        SECRET_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) || self.is_extra(name)
    }

    /// A header value safe to log: masked for secret headers, otherwise text-redacted.
    pub fn header<'a>(&self, name: &str, value: &'a str) -> Cow<'a, str> {
        if self.is_secret_header(name) {
            Cow::Borrowed(REDACTED)
        } else {
            self.text(value)
        }
    }

    /// Free text with bearer tokens, `sk-` keys and secret field values masked.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        find_prefixed_tokens(bytes, b"bearer ", 1, &mut spans);
        find_prefixed_tokens(bytes, b"sk-", 16, &mut spans);
        for name in SECRET_FIELDS
            .iter()
            .copied()
            .chain(self.extra.iter().map(String::as_str))
        {
            find_field_values(bytes, name.as_bytes(), &mut spans);
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0usize;
        for (start, end) in spans {
            let start = start.max(at);
            if end <= start {
                continue;
            }
            out.push_str(text.get(at..start).unwrap_or_default());
            out.push_str(REDACTED);
            at = end;
        }
        out.push_str(text.get(at..).unwrap_or_default());
        Cow::Owned(out)
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'=')
}

fn find_ci(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| {
        hay.get(i..i + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
    })
}

/// Masks the token after `prefix` (for `sk-` the prefix itself too) when it is at least
/// `min_len` token bytes long and starts at a word boundary.
fn find_prefixed_tokens(
    bytes: &[u8],
    prefix: &[u8],
    min_len: usize,
    spans: &mut Vec<(usize, usize)>,
) {
    let mut from = 0;
    while let Some(i) = find_ci(bytes, prefix, from) {
        from = i + 1;
        if i > 0 && bytes.get(i - 1).is_some_and(|&b| b.is_ascii_alphanumeric()) {
            continue;
        }
        let value_start = i + prefix.len();
        let len = bytes
            .get(value_start..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&b| is_token_byte(b))
            .count();
        if len >= min_len {
            // `sk-` keys are masked whole; for "Bearer " only the token.
            let start = if prefix == b"sk-" { i } else { value_start };
            spans.push((start, value_start + len));
            from = value_start + len;
        }
    }
}

/// Masks the value of `name` in `"name": "value"`, `name=value` and `name: value` forms.
fn find_field_values(bytes: &[u8], name: &[u8], spans: &mut Vec<(usize, usize)>) {
    let mut from = 0;
    while let Some(i) = find_ci(bytes, name, from) {
        from = i + 1;
        let before = if i > 0 {
            bytes.get(i - 1).copied()
        } else {
            None
        };
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            continue;
        }
        let mut j = i + name.len();
        let after = bytes.get(j).copied();
        if after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            continue;
        }
        if after == Some(b'"') || after == Some(b'\'') {
            j += 1;
        }
        while bytes.get(j).is_some_and(|b| *b == b' ') {
            j += 1;
        }
        if !matches!(bytes.get(j), Some(b':') | Some(b'=')) {
            continue;
        }
        j += 1;
        while bytes.get(j).is_some_and(|b| *b == b' ') {
            j += 1;
        }
        let quote = match bytes.get(j) {
            Some(&q @ (b'"' | b'\'')) => {
                j += 1;
                Some(q)
            }
            _ => None,
        };
        let start = j;
        // `Authorization: Bearer <token>`: the scheme and the token are one value.
        if quote.is_none()
            && bytes
                .get(j..j + 7)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"bearer "))
        {
            j += 7;
        }
        while let Some(&b) = bytes.get(j) {
            let stop = match quote {
                Some(q) => b == q,
                None => b.is_ascii_whitespace() || matches!(b, b',' | b'&' | b';' | b'}' | b'"'),
            };
            if stop {
                break;
            }
            // Skip escaped characters inside quoted JSON strings.
            j += if quote.is_some() && b == b'\\' { 2 } else { 1 };
        }
        let end = j.min(bytes.len());
        if end > start {
            spans.push((start, end));
        }
        from = end.max(from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let r = Redactor::default();
        for h in [
            "authorization",
            "Proxy-Authorization",
            "api-key",
            "X-API-KEY",
            "cookie",
            "set-cookie",
        ] {
            assert_eq!(r.header(h, "secret-value"), REDACTED, "{h}");
        }
        assert_eq!(r.header("x-request-id", "abc"), "abc");
        // A secret inside a non-secret header is still masked.
        assert_eq!(
            r.header("x-debug", "used Bearer abc.def"),
            "used Bearer [redacted]"
        );
    }

    #[test]
    fn keys_in_text() {
        let r = Redactor::default();
        assert_eq!(
            r.text("sk-ant-api03-abcdefghijklmnop done"),
            "[redacted] done"
        );
        assert_eq!(
            r.text("task-abcdefghijklmnopqrstu"),
            "task-abcdefghijklmnopqrstu"
        );
        assert_eq!(r.text("sk-short"), "sk-short");
        assert_eq!(
            r.text("authorization: Bearer tok_123"),
            "authorization: [redacted]"
        );
        assert_eq!(r.text("nothing here"), "nothing here");
        assert!(matches!(r.text("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn fields_in_text() {
        let r = Redactor::new(&["tenant_key"]);
        assert_eq!(
            r.text(r#"{"api_key":"a\"b","x":1}"#),
            r#"{"api_key":"[redacted]","x":1}"#
        );
        assert_eq!(r.text("url?api_key=abc&b=2"), "url?api_key=[redacted]&b=2");
        assert_eq!(r.text("password: hunter2 ok"), "password: [redacted] ok");
        assert_eq!(
            r.text(r#"{"tenant_key": 'x y'}"#),
            r#"{"tenant_key": '[redacted]'}"#
        );
        assert_eq!(r.text("tokens=5"), "tokens=5");
        assert_eq!(r.text("max_token=5"), "max_token=5");
        assert_eq!(r.text("token"), "token");
    }
}
