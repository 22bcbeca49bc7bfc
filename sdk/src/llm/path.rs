//! Request paths as a provider reads them.
//!
//! A client can spell the same path many ways: `/v1beta/models/gpt-4o-realtim%65-preview:…`
//! is `gpt-4o-realtime-preview` to the upstream. A plugin that decides on a path segment
//! (a model policy, a rate limit by model) compares the normalised form and forwards that same
//! form, so the check and the upstream see one name.

use std::borrow::Cow;

/// `path` with percent-encoded *unreserved* characters (`A-Z a-z 0-9 - . _ ~`) decoded in the
/// path part (RFC 3986 §6.2.2.2; Envoy's `normalize_path` does the same). Other escapes and
/// the query string are left as they are. Borrowed when there is nothing to decode.
///
/// ```
/// use aigw::llm::path::normalize;
///
/// assert_eq!(normalize("/v1beta/models/g%65mini:generateContent?k=%41"),
///            "/v1beta/models/gemini:generateContent?k=%41");
/// assert_eq!(normalize("/a%2Fb"), "/a%2Fb");
/// ```
pub fn normalize(path: &str) -> Cow<'_, str> {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    let (head, tail) = path.split_at(end);
    if !head.contains('%') {
        return Cow::Borrowed(path);
    }
    let bytes = head.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = head
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex.filter(|b| b.is_ascii_alphanumeric() || b"-._~".contains(b)) {
                out.push(b as char);
                i += 3;
                continue;
            }
        }
        // A char boundary: '%' and ASCII are single bytes; copy whole UTF-8 sequences.
        let next = head[i..]
            .char_indices()
            .nth(1)
            .map_or(head.len(), |(n, _)| i + n);
        out.push_str(&head[i..next]);
        i = next;
    }
    out.push_str(tail);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_only_unreserved_in_the_path_part() {
        assert!(matches!(
            normalize("/v1/chat/completions"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            normalize("/v1beta/m%6Fdels/x%2D1:y"),
            "/v1beta/models/x-1:y"
        );
        assert_eq!(normalize("/a%2fb%3A%25"), "/a%2fb%3A%25");
        assert_eq!(normalize("/é%41%"), "/éA%");
        assert_eq!(normalize("/x%4"), "/x%4");
        assert_eq!(normalize("/x?q=%41#%42"), "/x?q=%41#%42");
    }
}
