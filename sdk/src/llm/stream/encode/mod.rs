//! Encoders: neutral [`Event`](super::Event)s → one client dialect's SSE text.

mod anthropic;
mod openai;
mod responses;
mod responses_items;

pub use anthropic::AnthropicEncoder;
pub use openai::OpenAiEncoder;
pub use responses::ResponsesEncoder;

use serde::Serialize;

/// Appends `event: <name>\n` (when named) and `data: <json>\n\n`.
fn write_json<T: Serialize>(out: &mut Vec<u8>, name: Option<&str>, value: &T) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    // Serializing our own plain structs into a Vec cannot fail (string keys only, no failing
    // Serialize impls); if it ever did, the event would carry truncated JSON.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

/// An id in a client dialect's own shape (`msg_…`, `toolu_…`, `resp_…`, `chatcmpl-…`): `raw`
/// when it already starts with `prefix`, else `prefix` + its ASCII alphanumerics (and `_`/`-`),
/// so one upstream id always maps to one client id; `prefix` + `fallback` when nothing is left.
/// Streams and whole answers use it alike.
///
/// ```
/// use aigw::llm::stream::prefixed_id;
/// assert_eq!(prefixed_id("msg_", "chatcmpl-9/x", "a"), "msg_chatcmpl-9x");
/// assert_eq!(prefixed_id("toolu_", "toolu_01", "a"), "toolu_01");
/// assert_eq!(prefixed_id("msg_", "", "a"), "msg_a");
/// ```
pub fn prefixed_id(prefix: &str, raw: &str, fallback: &str) -> String {
    if raw.starts_with(prefix) && raw.len() > prefix.len() {
        return raw.to_string();
    }
    let keep = |c: &char| c.is_ascii_alphanumeric() || *c == '_' || *c == '-';
    let mut id = String::with_capacity(prefix.len() + raw.len());
    id.push_str(prefix);
    id.extend(raw.chars().filter(keep));
    if id.len() == prefix.len() {
        id.extend(fallback.chars().filter(keep));
    }
    id
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefixed_ids() {
        assert_eq!(super::prefixed_id("msg_", "msg_01", "x"), "msg_01");
        assert_eq!(
            super::prefixed_id("msg_", "chatcmpl-9/x", "x"),
            "msg_chatcmpl-9x"
        );
        assert_eq!(super::prefixed_id("toolu_", "", "7"), "toolu_7");
        assert_eq!(super::prefixed_id("toolu_", "toolu_", "7"), "toolu_toolu_");
    }
}
