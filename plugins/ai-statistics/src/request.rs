//! What ai-statistics takes from the request: the protocol (from the path), the model and,
//! when asked, the last user message — from a bounded prefix of the body.

use crate::scan::quick_model;
use crate::text::Bounded;
use aigw::llm::usage::UsageProtocol;
use aigw::llm::Api;
use serde::Deserialize;

/// Which usage rules a request implies: its API's ([`Api::usage_protocol`]), OpenAI's for
/// requests the classifier does not know (OpenAI-compatible APIs are the common case).
pub fn protocol_for(api: Option<Api>) -> UsageProtocol {
    api.and_then(Api::usage_protocol)
        .unwrap_or(UsageProtocol::OpenAi)
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    messages: Vec<Msg>,
    #[serde(default)]
    prompt: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Msg {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: Option<serde_json::Value>,
}

fn text_of(v: &serde_json::Value, out: &mut Bounded, limit: usize) {
    match v {
        serde_json::Value::String(s) => out.push(s, limit),
        serde_json::Value::Array(parts) => {
            for p in parts {
                match p {
                    serde_json::Value::String(s) => out.push(s, limit),
                    other => {
                        if let Some(t) = other.get("text").and_then(|t| t.as_str()) {
                            out.push(t, limit);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// The model and (when `question_limit` is set) the last user message of a request body.
/// `complete` says whether `body` is the whole body or only a prefix of it.
pub fn inspect(
    body: &[u8],
    complete: bool,
    question_limit: Option<usize>,
) -> (Option<String>, Option<Bounded>) {
    if complete {
        if let Ok(b) = serde_json::from_slice::<Body>(body) {
            let question = question_limit.map(|limit| {
                let mut q = Bounded::default();
                if let Some(m) = b.messages.iter().rev().find(|m| m.role == "user") {
                    if let Some(c) = &m.content {
                        text_of(c, &mut q, limit);
                    }
                } else if let Some(p) = &b.prompt {
                    text_of(p, &mut q, limit);
                }
                q
            });
            return (b.model.filter(|m| !m.is_empty()), question);
        }
    }
    (quick_model(body), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols() {
        let p = |path: &str| protocol_for(Api::classify("POST", path, None));
        assert_eq!(p("/v1/messages"), UsageProtocol::Anthropic);
        assert_eq!(p("/v1/chat/completions"), UsageProtocol::OpenAi);
        assert_eq!(
            p("/v1beta/models/g:streamGenerateContent?alt=sse"),
            UsageProtocol::Gemini
        );
        assert_eq!(p("/v1/responses"), UsageProtocol::Responses);
        assert_eq!(p("/model/m/converse-stream"), UsageProtocol::Bedrock);
        assert_eq!(p("/somewhere/else"), UsageProtocol::OpenAi);
    }

    #[test]
    fn model_and_question() {
        let body = br#"{"model":"gpt-4o","messages":[{"role":"system","content":"s"},{"role":"user","content":"first"},{"role":"assistant","content":"a"},{"role":"user","content":[{"type":"text","text":"second question"}]}]}"#;
        let (m, q) = inspect(body, true, Some(6));
        assert_eq!(m.as_deref(), Some("gpt-4o"));
        let q = q.unwrap();
        assert_eq!((q.as_str(), q.truncated()), ("second", true));
        let (m, q) = inspect(&body[..30], false, Some(6));
        assert_eq!(m.as_deref(), Some("gpt-4o"));
        assert!(q.is_none());
    }
}
