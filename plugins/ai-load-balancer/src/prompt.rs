//! Prefix material from a request body: the parts of a chat request that a model server's
//! prefix cache keys on, in prompt order (model, tools, system prompt, then each message's role
//! and content), as bytes. Two requests of one conversation share the material of the earlier
//! turns, so their hash chains ([`crate::hash::prefix_chain`]) share those blocks.
//!
//! JSON syntax (key order, whitespace) does not change the material: only values are used.
//! Shapes: OpenAI chat (`messages`), Anthropic messages (`system` + `messages`), Gemini
//! (`systemInstruction` + `contents[].parts`), Responses (`instructions` + `input`).

use serde_json::Value;

/// Separates a field name from its value.
const UNIT: u8 = 0x1f;
/// Ends a field.
const RECORD: u8 = 0x1e;

/// The prefix material of a JSON request body; `None` when it is not JSON or has no prompt.
pub fn material(body: &[u8]) -> Option<Vec<u8>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    let mut out = Vec::with_capacity(body.len() / 2);
    if let Some(m) = obj.get("model").and_then(Value::as_str) {
        field(&mut out, "model", m.as_bytes());
    }
    if let Some(tools) = obj.get("tools").filter(|t| !t.is_null()) {
        field(&mut out, "tools", tools.to_string().as_bytes());
    }
    let mut prompt = false;
    for key in ["system", "instructions"] {
        if let Some(sys) = obj.get(key) {
            let mut text = Vec::new();
            content(sys, &mut text);
            field(&mut out, "system", &text);
            prompt = true;
        }
    }
    if let Some(sys) = obj.get("systemInstruction") {
        let mut text = Vec::new();
        content(sys.get("parts").unwrap_or(sys), &mut text);
        field(&mut out, "system", &text);
        prompt = true;
    }
    let turns = obj
        .get("messages")
        .or_else(|| obj.get("contents"))
        .or_else(|| obj.get("input"));
    match turns {
        Some(Value::Array(items)) => {
            for item in items {
                let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
                let mut text = Vec::new();
                match item.get("content").or_else(|| item.get("parts")) {
                    Some(c) => content(c, &mut text),
                    None => content(item, &mut text),
                }
                field(&mut out, role, &text);
                prompt = true;
            }
        }
        Some(Value::String(s)) => {
            field(&mut out, "user", s.as_bytes());
            prompt = true;
        }
        _ => {}
    }
    prompt.then_some(out)
}

fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.push(UNIT);
    out.extend_from_slice(value);
    out.push(RECORD);
}

/// The text of a content value: a string, or the parts of an array (`text`, image URLs,
/// anything else as compact JSON), in order.
fn content(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::String(s) => out.extend_from_slice(s.as_bytes()),
        Value::Array(parts) => {
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    out.extend_from_slice(t.as_bytes());
                } else if let Some(u) = p
                    .get("image_url")
                    .and_then(|i| i.get("url").or(Some(i)))
                    .and_then(Value::as_str)
                {
                    out.extend_from_slice(u.as_bytes());
                } else {
                    out.extend_from_slice(p.to_string().as_bytes());
                }
                out.push(UNIT);
            }
        }
        Value::Null => {}
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::prefix_chain;

    fn m(json: &str) -> Vec<u8> {
        material(json.as_bytes()).expect("material")
    }

    #[test]
    fn json_syntax_does_not_matter() {
        let a = m(r#"{"model":"x","messages":[{"role":"user","content":"hi"}]}"#);
        let b = m(
            r#"{ "messages" : [ { "content":"hi", "role":"user" } ], "model":"x", "stream":true }"#,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn a_later_turn_extends_the_earlier_material() {
        let sys = "You are a careful assistant who answers in detail. ".repeat(4);
        let first = m(&format!(
            r#"{{"model":"x","messages":[{{"role":"system","content":"{sys}"}},{{"role":"user","content":"first question"}}]}}"#
        ));
        let second = m(&format!(
            r#"{{"model":"x","messages":[{{"role":"system","content":"{sys}"}},{{"role":"user","content":"first question"}},{{"role":"assistant","content":"an answer"}},{{"role":"user","content":[{{"type":"text","text":"and then?"}}]}}]}}"#
        ));
        assert!(second.starts_with(&first));
        let (a, b) = (prefix_chain(&first, 16, 64), prefix_chain(&second, 16, 64));
        assert_eq!(a, b[..a.len()]);
        let other = m(r#"{"model":"x","messages":[{"role":"system","content":"different"}]}"#);
        assert_ne!(prefix_chain(&other, 16, 64).first(), a.first());
    }

    #[test]
    fn anthropic_gemini_and_responses_shapes() {
        let a = m(
            r#"{"model":"c","system":[{"type":"text","text":"S"}],"messages":[{"role":"user","content":"q"}]}"#,
        );
        assert!(a.windows(1).any(|w| w == b"S"));
        let g = m(
            r#"{"systemInstruction":{"parts":[{"text":"S"}]},"contents":[{"role":"user","parts":[{"text":"q"}]}]}"#,
        );
        assert!(g.ends_with(b"user\x1fq\x1f\x1e"));
        let r = m(r#"{"model":"o","instructions":"S","input":"q"}"#);
        assert!(r.ends_with(b"user\x1fq\x1e"));
        assert_eq!(material(b"not json"), None);
        assert_eq!(material(br#"{"model":"x"}"#), None);
    }
}
