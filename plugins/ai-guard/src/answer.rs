//! Replacement answers for responses the guard blocked.
//!
//! A blocked non-streamed answer is replaced by a complete answer in the
//! client's protocol that says why it stopped, the provider convention for
//! filtered output: OpenAI `finish_reason: "content_filter"`, Anthropic
//! `stop_reason: "refusal"`. The upstream's `id`, `model`, `created` and
//! `usage` are kept when they can be read, so token accounting still works.

use serde_json::{json, Map, Value};

use aigw::reply::Protocol;

/// Fields of the upstream answer carried over into a replacement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerMeta {
    /// `id` of the answer (OpenAI chunk / completion, Anthropic message,
    /// Responses API response).
    pub id: Option<Value>,
    /// `model`.
    pub model: Option<Value>,
    /// `created` (OpenAI).
    pub created: Option<Value>,
    /// `usage`.
    pub usage: Option<Value>,
}

impl AnswerMeta {
    /// Reads the fields of a whole answer body; missing or unparsable fields
    /// stay `None`.
    pub fn from_body(body: &[u8]) -> AnswerMeta {
        let mut meta = AnswerMeta::default();
        if let Ok(Value::Object(map)) = aigw::json::parse_value(body) {
            meta.take_from(&map);
        }
        meta
    }

    /// Remembers the fields of one streamed event (OpenAI chunk, Anthropic
    /// `message_start`, Responses `response.*` event).
    #[cfg(test)]
    pub fn observe(&mut self, event: &Value) {
        let Some(map) = event.as_object() else {
            return;
        };
        if let Some(Value::Object(inner)) = map.get("message").or_else(|| map.get("response")) {
            if map.contains_key("type") {
                self.take_from(inner);
                return;
            }
        }
        if map.contains_key("choices") {
            self.take_from(map);
        }
    }

    fn take_from(&mut self, map: &Map<String, Value>) {
        for (key, slot) in [
            ("id", &mut self.id),
            ("model", &mut self.model),
            ("created", &mut self.created),
            ("usage", &mut self.usage),
        ] {
            if let Some(v) = map.get(key) {
                if !v.is_null() {
                    *slot = Some(v.clone());
                }
            }
        }
    }
}

/// `v`, or `default` when it is unknown.
fn or(v: &Option<Value>, default: Value) -> Value {
    v.clone().unwrap_or(default)
}

/// The body replacing a blocked non-streamed answer: a complete answer whose
/// text is `message` (OpenAI `finish_reason: "content_filter"`, Anthropic
/// `stop_reason: "refusal"`), or `raw_message` for non-chat APIs.
pub fn blocked_answer(
    shape: Option<Protocol>,
    meta: &AnswerMeta,
    message: &str,
    raw_message: &str,
) -> Vec<u8> {
    let body = match shape {
        None => return raw_message.as_bytes().to_vec(),
        Some(Protocol::OpenAi) => {
            let mut v = json!({
                "id": or(&meta.id, json!("chatcmpl-blocked")),
                "object": "chat.completion",
                "created": or(&meta.created, json!(0)),
                "model": or(&meta.model, json!("ai-guard")),
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": message},
                    "finish_reason": "content_filter"
                }]
            });
            if let (Some(usage), Some(obj)) = (&meta.usage, v.as_object_mut()) {
                obj.insert("usage".to_string(), usage.clone());
            }
            v
        }
        Some(Protocol::Anthropic) => {
            let mut v = json!({
                "id": or(&meta.id, json!("msg_blocked")),
                "type": "message",
                "role": "assistant",
                "model": or(&meta.model, json!("ai-guard")),
                "content": [{"type": "text", "text": message}],
                "stop_reason": "refusal",
                "stop_sequence": null
            });
            if let (Some(usage), Some(obj)) = (&meta.usage, v.as_object_mut()) {
                obj.insert("usage".to_string(), usage.clone());
            }
            v
        }
    };
    // Serializing a `Value` cannot fail (all keys are strings).
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_keeps_id_model_usage() {
        let body = br#"{"id":"chatcmpl-9","object":"chat.completion","created":7,"model":"gpt-4o",
            "choices":[{"index":0,"message":{"role":"assistant","content":"bad"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
        let meta = AnswerMeta::from_body(body);
        let out = blocked_answer(Some(Protocol::OpenAi), &meta, "blocked", "raw");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], "chatcmpl-9");
        assert_eq!(v["created"], 7);
        assert_eq!(v["model"], "gpt-4o");
        assert_eq!(v["usage"]["total_tokens"], 4);
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(v["choices"][0]["message"]["content"], "blocked");
    }

    #[test]
    fn anthropic_and_raw_and_unparsable() {
        let meta = AnswerMeta::from_body(b"not json");
        assert_eq!(meta, AnswerMeta::default());
        let v: Value =
            serde_json::from_slice(&blocked_answer(Some(Protocol::Anthropic), &meta, "no", ""))
                .unwrap();
        assert_eq!(v["stop_reason"], "refusal");
        assert_eq!(v["content"][0]["text"], "no");
        assert_eq!(v["id"], "msg_blocked");
        assert!(v.get("usage").is_none());
        assert_eq!(blocked_answer(None, &meta, "no", "{\"e\":1}"), b"{\"e\":1}");
    }

    #[test]
    fn observes_stream_events() {
        let mut meta = AnswerMeta::default();
        meta.observe(&json!({"type":"message_start","message":{"id":"msg_1","model":"claude","usage":{"input_tokens":5}}}));
        assert_eq!(meta.id, Some(json!("msg_1")));
        assert_eq!(meta.model, Some(json!("claude")));
        let mut meta = AnswerMeta::default();
        meta.observe(&json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[]}));
        assert_eq!(meta.id, Some(json!("c1")));
        assert_eq!(meta.created, Some(json!(1)));
    }
}
