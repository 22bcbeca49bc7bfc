//! Small pieces shared by the translators: unknown-field policy, finish/stop reason tables and
//! tool-argument parsing.

use crate::error::TranslateError;
use aigw::llm::openai as oa;
use aigw::llm::Extra;
use serde_json::Value;

/// Request fields that carry no meaning for the upstream and may be dropped: storage and
/// billing hints (`store`, `metadata`, `service_tier`, `prompt_cache_key`, `safety_identifier`)
/// and `seed` (best effort even on OpenAI).
pub const IGNORABLE_OPENAI_FIELDS: &[&str] = &[
    "store",
    "metadata",
    "service_tier",
    "seed",
    "prompt_cache_key",
    "safety_identifier",
];

/// Rejects any field of `extra` that is neither mapped by the caller (`mapped`) nor ignorable.
/// Fields whose value is `null`, `false` or `0` are treated as absent.
pub fn reject_unmapped(
    extra: &Extra,
    mapped: &[&str],
    ignorable: &[&str],
    upstream: &str,
) -> Result<(), TranslateError> {
    for (key, value) in extra {
        let k = key.as_str();
        if mapped.contains(&k) || ignorable.contains(&k) || is_falsy(value) {
            continue;
        }
        return Err(TranslateError::unsupported(
            k,
            format!("`{k}` cannot be translated for a {upstream} upstream"),
        ));
    }
    Ok(())
}

fn is_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// Parses OpenAI tool-call `arguments` (a JSON string) into the object Anthropic, Gemini and
/// Bedrock expect. An empty string means no arguments.
pub fn parse_arguments(
    arguments: &str,
    param: impl FnOnce() -> String,
) -> Result<Value, TranslateError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_slice::<Value>(arguments.as_bytes()) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(TranslateError::invalid(
            param(),
            "tool call arguments must be a JSON object",
        )),
        Err(e) => Err(TranslateError::invalid(
            param(),
            format!("tool call arguments are not valid JSON: {e}"),
        )),
    }
}

/// Translates each item of an optional list (`tools`, say) with its index; the first error
/// stops the translation, and no list stays `None`.
pub fn map_indexed<T, U>(
    list: Option<&[T]>,
    f: impl FnMut((usize, &T)) -> Result<U, TranslateError>,
) -> Result<Option<Vec<U>>, TranslateError> {
    list.map(|l| l.iter().enumerate().map(f).collect())
        .transpose()
}

/// The function of tool `i` of a chat request: only `function` tools can be translated.
pub fn function_tool(i: usize, t: &oa::Tool) -> Result<&oa::FunctionDef, TranslateError> {
    if t.kind != "function" {
        return Err(TranslateError::unsupported(
            format!("tools[{i}].type"),
            "only function tools can be translated",
        ));
    }
    Ok(&t.function)
}

/// An Anthropic `tool_use` block as an OpenAI tool call (the input object as JSON text).
pub fn tool_use_call(id: &str, name: &str, input: &Value) -> oa::ToolCall {
    oa::ToolCall::function(id.to_string(), name.to_string(), input.to_string())
}

/// The first choice of a chat answer (the one translated for other dialects); a 502 when the
/// upstream sent none.
pub fn first_choice(chat: &oa::ChatCompletion) -> Result<&oa::Choice, TranslateError> {
    chat.choices
        .first()
        .ok_or_else(|| TranslateError::upstream("upstream returned no choices"))
}

/// A chat message with only a role and content.
pub fn chat_message(role: oa::Role, content: Option<oa::MessageContent>) -> oa::ChatMessage {
    oa::ChatMessage::new(role, content)
}

/// Anthropic `stop_reason` → OpenAI `finish_reason`.
pub fn anthropic_stop_to_openai(stop: &str) -> &'static str {
    match stop {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything new.
        _ => "stop",
    }
}

/// OpenAI `finish_reason` → Anthropic `stop_reason`.
pub fn openai_finish_to_anthropic(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Gemini `finishReason` → OpenAI `finish_reason`. A normal stop that produced function calls is
/// `tool_calls`.
pub fn gemini_finish_to_openai(reason: &str, has_tool_calls: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => "content_filter",
        _ if has_tool_calls => "tool_calls",
        _ => "stop",
    }
}

/// Bedrock Converse `stopReason` → OpenAI `finish_reason`.
pub fn bedrock_stop_to_openai(stop: &str) -> &'static str {
    match stop {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_rejected_by_name() {
        let mut extra = Extra::new();
        extra.insert("seed".into(), 3.into());
        extra.insert("logprobs".into(), false.into());
        extra.insert("top_k".into(), 5.into());
        assert!(reject_unmapped(&extra, &["top_k"], IGNORABLE_OPENAI_FIELDS, "anthropic").is_ok());
        extra.insert("presence_penalty".into(), serde_json::json!(0.5));
        let e =
            reject_unmapped(&extra, &["top_k"], IGNORABLE_OPENAI_FIELDS, "anthropic").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("presence_penalty"));
        assert_eq!(e.status, 400);
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse_arguments("", String::new).unwrap(),
            serde_json::json!({})
        );
        assert_eq!(parse_arguments("{\"a\":1}", String::new).unwrap()["a"], 1);
        assert!(parse_arguments("[1]", String::new).is_err());
        assert!(
            parse_arguments("{", || "x".into())
                .unwrap_err()
                .param
                .as_deref()
                == Some("x")
        );
    }
}
