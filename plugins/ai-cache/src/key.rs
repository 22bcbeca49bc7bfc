//! The cache key: a canonical form of the request (sorted JSON keys, no insignificant
//! whitespace, fields that do not change the answer removed), scoped and hashed.

use crate::config::{Config, KeyMessages};
use serde_json::Value;

/// A 128-bit digest (the first half of a SHA-256).
pub type Digest = [u8; 16];

/// What the key derivation found in a request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestKey {
    /// The exact key: scope + protocol + every answer-changing field.
    pub exact: Digest,
    /// The semantic context: like `exact` but without the conversation, so only questions
    /// asked under the same model and parameters are compared.
    pub context: Digest,
    /// The text of the last user message (what the semantic lookup embeds).
    pub question: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether the client asked for the usage chunk of an OpenAI stream
    /// (`stream_options.include_usage`); not part of the key.
    pub include_usage: bool,
}

/// Why a request cannot be cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uncacheable {
    /// The body is not a JSON object.
    NotJson,
    /// The body is not strict JSON (a repeated key, a byte order mark): the upstream may read
    /// it differently from the key, so its answer must not be stored under that key.
    NotStrict,
    /// More than one answer asked for (`n` > 1).
    Multiple,
}

/// Derives the key of a request body for `protocol` (`"openai"`/`"anthropic"`/`"responses"`)
/// and the scope values (consumer, route, as configured). The conversation is `messages` and
/// `system`, or for the Responses API `input` and `instructions`; every other field (model,
/// tools, `previous_response_id`, ...) is part of the semantic context.
pub fn derive(
    cfg: &Config,
    protocol: &str,
    scope: &[(&str, &str)],
    body: &[u8],
) -> Result<RequestKey, Uncacheable> {
    if aigw::json::ambiguity(body).is_some() {
        return Err(Uncacheable::NotStrict);
    }
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
        return Err(Uncacheable::NotJson);
    };
    if map.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(Uncacheable::Multiple);
    }
    let stream = map.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = map
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (messages_field, system_field) = if protocol == "responses" {
        ("input", "instructions")
    } else {
        ("messages", "system")
    };
    let question = map
        .get(messages_field)
        .map(last_user_text)
        .unwrap_or_default();
    for f in &cfg.ignored_fields {
        map.remove(f);
    }
    let messages = map.remove(messages_field);
    let system = map.remove(system_field);

    let mut head = String::new();
    for (name, value) in scope {
        push_field(&mut head, name, value);
    }
    push_field(&mut head, "protocol", protocol);

    let mut ctx_text = head.clone();
    canonical(&Value::Object(map.clone()), &mut ctx_text);

    let mut exact_text = ctx_text.clone();
    match cfg.key_messages {
        KeyMessages::All => {
            exact_text.push_str("\u{1e}messages=");
            canonical(messages.as_ref().unwrap_or(&Value::Null), &mut exact_text);
            exact_text.push_str("\u{1e}system=");
            canonical(system.as_ref().unwrap_or(&Value::Null), &mut exact_text);
        }
        KeyMessages::LastUser => {
            exact_text.push_str("\u{1e}question=");
            exact_text.push_str(&question);
        }
    }
    Ok(RequestKey {
        exact: digest(exact_text.as_bytes()),
        context: digest(ctx_text.as_bytes()),
        question,
        stream,
        include_usage,
    })
}

fn push_field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push('=');
    out.push_str(&value.len().to_string());
    out.push(':');
    out.push_str(value);
    out.push('\u{1e}');
}

/// The first 16 bytes of SHA-256 over `bytes`.
pub fn digest(bytes: &[u8]) -> Digest {
    let full = aigw::hash::sha256(bytes);
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(full.iter()) {
        *o = *b;
    }
    out
}

/// Lower-case hex of a digest (the `x-cache-key` header value).
pub fn hex(d: &Digest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(32);
    for b in d {
        // `b >> 4` and `b & 15` are below 16, the length of HEX.
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// Writes `v` as JSON with object keys sorted and no whitespace.
pub fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(inner) = map.get(*k) {
                    canonical(inner, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The text of the last user message: a string content, or the text parts joined by newlines
/// (OpenAI `{"type":"text","text"}`, Responses `input_text` and Anthropic text blocks alike).
/// A plain string (a Responses `input`) is the question itself.
pub fn last_user_text(messages: &Value) -> String {
    if let Value::String(s) = messages {
        return s.clone();
    }
    let Some(list) = messages.as_array() else {
        return String::new();
    };
    let Some(last) = list
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return String::new();
    };
    match last.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn uncacheable_reasons_tell_bad_json_from_ambiguous_json() {
        let c = cfg("{}");
        assert_eq!(
            derive(&c, "openai", &[], b"not json").err(),
            Some(Uncacheable::NotJson)
        );
        assert_eq!(
            derive(
                &c,
                "openai",
                &[],
                br#"{"model":"a","model":"b","messages":[]}"#
            )
            .err(),
            Some(Uncacheable::NotStrict)
        );
    }

    #[test]
    fn key_ignores_order_whitespace_and_stream() {
        let c = cfg("{}");
        let a = derive(
            &c,
            "openai",
            &[],
            br#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        let b = derive(
            &c,
            "openai",
            &[],
            br#"{ "messages" : [ {"content":"hi", "role":"user"} ],
                 "temperature":0, "model":"m", "stream": true, "user":"u1" }"#,
        )
        .unwrap();
        assert_eq!(a.exact, b.exact);
        assert!(b.stream && !a.stream);
        let u = derive(
            &c,
            "openai",
            &[],
            br#"{"model":"m","temperature":0,"stream":true,"stream_options":{"include_usage":true},
                 "messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        assert_eq!(u.exact, a.exact, "stream_options is not part of the key");
        assert!(u.include_usage && !b.include_usage);
        assert_eq!(a.question, "hi");
        let t = derive(
            &c,
            "openai",
            &[],
            br#"{"model":"m","temperature":1,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        assert_ne!(a.exact, t.exact, "temperature changes the key");
        assert_ne!(a.context, t.context);
        let other = derive(
            &c,
            "anthropic",
            &[],
            br#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        assert_ne!(a.exact, other.exact, "protocol is part of the key");
        let scoped = derive(
            &c,
            "openai",
            &[("consumer", "alice")],
            br#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        assert_ne!(a.exact, scoped.exact);
    }

    #[test]
    fn last_user_mode_and_errors() {
        let c = cfg(r#"{"key_messages":"last_user"}"#);
        let a = derive(&c, "openai", &[], br#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"q"}]}]}"#).unwrap();
        let b = derive(
            &c,
            "openai",
            &[],
            br#"{"model":"m","messages":[{"role":"user","content":"q"}]}"#,
        )
        .unwrap();
        assert_eq!(a.exact, b.exact);
        let all = cfg("{}");
        let a2 = derive(&all, "openai", &[], br#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"q"}]}"#).unwrap();
        let b2 = derive(
            &all,
            "openai",
            &[],
            br#"{"model":"m","messages":[{"role":"user","content":"q"}]}"#,
        )
        .unwrap();
        assert_ne!(a2.exact, b2.exact);
        assert_eq!(derive(&c, "openai", &[], b"[1]"), Err(Uncacheable::NotJson));
        assert_eq!(
            derive(&c, "openai", &[], br#"{"n":2,"messages":[]}"#),
            Err(Uncacheable::Multiple)
        );
        assert_eq!(hex(&[0xab; 16]).len(), 32);
    }

    #[test]
    fn responses_keys_input_instructions_and_tools() {
        let c = cfg("{}");
        let k = |body: &str| derive(&c, "responses", &[], body.as_bytes()).unwrap();
        let plain = k(r#"{"model":"gpt-5","input":"What is Rust?"}"#);
        assert_eq!(plain.question, "What is Rust?");
        let items = k(
            r#"{"model":"gpt-5","stream":true,"store":false,"input":[{"role":"user","content":[{"type":"input_text","text":"What is Rust?"}]}]}"#,
        );
        assert_eq!(items.question, "What is Rust?");
        assert!(items.stream);
        assert_ne!(plain.exact, items.exact, "the input shape is in the key");
        assert_eq!(plain.context, items.context, "but not in the context");
        let instr = k(r#"{"model":"gpt-5","instructions":"Be brief.","input":"What is Rust?"}"#);
        assert_ne!(plain.exact, instr.exact, "instructions change the answer");
        assert_eq!(plain.context, instr.context);
        for other in [
            r#"{"model":"gpt-4o","input":"What is Rust?"}"#,
            r#"{"model":"gpt-5","input":"What is Go?"}"#,
            r#"{"model":"gpt-5","tools":[{"type":"web_search"}],"input":"What is Rust?"}"#,
            r#"{"model":"gpt-5","previous_response_id":"resp_1","input":"What is Rust?"}"#,
            r#"{"model":"gpt-5","reasoning":{"effort":"high"},"input":"What is Rust?"}"#,
        ] {
            assert_ne!(k(other).exact, plain.exact, "{other}");
        }
        let chat = derive(
            &c,
            "openai",
            &[],
            br#"{"model":"gpt-5","input":"What is Rust?"}"#,
        )
        .unwrap();
        assert_ne!(chat.exact, plain.exact, "protocol is part of the key");
    }
}
