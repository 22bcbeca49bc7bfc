//! Clients of the OpenAI Responses API (`POST /v1/responses`) in front of providers that do
//! not serve it, through the chat types every dialect is translated to: a Responses request
//! becomes a chat request ([`responses_request_to_chat`]) and a chat answer becomes a Responses
//! object ([`chat_response_to_responses`]). Streams use the SDK's `ResponsesEncoder`.
//!
//! The gateway is stateless: `previous_response_id` and item references need the provider's
//! stored state, so they pass only to a Responses upstream and are refused elsewhere. Built-in
//! tools (web search, file search, computer use, ...) likewise exist only on OpenAI.

use crate::common::{chat_message, first_choice, reject_unmapped};
use crate::error::TranslateError;
use aigw::llm::openai as oa;
use aigw::llm::responses as rs;
use aigw::llm::stream::prefixed_id;
use aigw::llm::{Extra, Usage};
use serde_json::{json, Value};

/// Request fields of the Responses API that carry no meaning for another upstream: storage,
/// billing and tracing hints, and output decorations the gateway does not produce.
const IGNORABLE_RESPONSES_FIELDS: &[&str] = &[
    "store",
    "metadata",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "truncation",
    "include",
    "background",
    "user",
    "stream_options",
];

/// Responses fields this module maps to chat fields itself.
const MAPPED_RESPONSES_FIELDS: &[&str] = &["text", "parallel_tool_calls", "top_logprobs"];

fn role(name: &str, param: &str) -> Result<oa::Role, TranslateError> {
    match name {
        "user" => Ok(oa::Role::User),
        "assistant" => Ok(oa::Role::Assistant),
        "system" => Ok(oa::Role::System),
        "developer" => Ok(oa::Role::Developer),
        other => Err(TranslateError::invalid(
            format!("{param}.role"),
            format!("unknown message role `{}`", aigw::log::untrusted(other)),
        )),
    }
}

/// One Responses content part as a chat content part.
fn part(p: &rs::ContentPart, param: &str) -> Result<oa::ContentPart, TranslateError> {
    match p {
        rs::ContentPart::InputText { text } | rs::ContentPart::OutputText { text, .. } => {
            Ok(oa::ContentPart::Text { text: text.clone() })
        }
        rs::ContentPart::Refusal { refusal } => Ok(oa::ContentPart::Refusal {
            refusal: refusal.clone(),
        }),
        rs::ContentPart::InputImage {
            image_url: Some(url),
            detail,
            ..
        } => Ok(oa::ContentPart::ImageUrl {
            image_url: oa::ImageUrl {
                url: url.clone(),
                detail: detail.clone(),
            },
        }),
        rs::ContentPart::InputImage { .. } => Err(TranslateError::unsupported(
            param,
            "images by `file_id` need the provider's file store; send `image_url`",
        )),
        rs::ContentPart::Other(v) => {
            let kind = v.get("type").and_then(Value::as_str).unwrap_or("?");
            if kind == "input_file" {
                let mut file = serde_json::Map::new();
                for k in ["file_id", "file_data", "filename"] {
                    if let Some(x) = v.get(k) {
                        file.insert(k.to_string(), x.clone());
                    }
                }
                return Ok(oa::ContentPart::File {
                    file: Value::Object(file),
                });
            }
            Err(TranslateError::unsupported(
                param,
                format!(
                    "content part type `{}` cannot be translated",
                    aigw::log::untrusted(kind)
                ),
            ))
        }
    }
}

fn content(c: &rs::ItemContent, param: &str) -> Result<oa::MessageContent, TranslateError> {
    match c {
        rs::ItemContent::Text(t) => Ok(oa::MessageContent::Text(t.clone())),
        rs::ItemContent::Parts(parts) => parts
            .iter()
            .enumerate()
            .map(|(i, p)| part(p, &format!("{param}.content[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(oa::MessageContent::Parts),
    }
}

/// A function call output (a string, or a list of content parts) as tool message text.
fn output_text(output: &Value) -> String {
    match output {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        other => other.to_string(),
    }
}

/// Appends an assistant tool call, joining it to the previous assistant message when the
/// client listed the calls of one turn as consecutive items (as the API itself returns them).
fn push_call(messages: &mut Vec<oa::ChatMessage>, call: oa::ToolCall) {
    if let Some(last) = messages.last_mut() {
        if last.role == oa::Role::Assistant && (last.tool_calls.is_some() || last.content.is_some())
        {
            last.tool_calls.get_or_insert_with(Vec::new).push(call);
            return;
        }
    }
    let mut m = chat_message(oa::Role::Assistant, None);
    m.tool_calls = Some(vec![call]);
    messages.push(m);
}

fn tools(list: &[Value]) -> Result<Vec<oa::Tool>, TranslateError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let param = format!("tools[{i}]");
        let kind = t.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "function" {
            return Err(TranslateError::unsupported(
                param,
                format!(
                    "tool type `{}` is an OpenAI built-in tool and cannot be translated",
                    aigw::log::untrusted(kind)
                ),
            ));
        }
        let name = t.get("name").and_then(Value::as_str).ok_or_else(|| {
            TranslateError::invalid(format!("{param}.name"), "a function tool needs a `name`")
        })?;
        out.push(oa::Tool {
            kind: "function".into(),
            function: oa::FunctionDef {
                name: name.to_string(),
                description: t
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                parameters: t.get("parameters").filter(|p| !p.is_null()).cloned(),
                strict: t.get("strict").and_then(Value::as_bool),
            },
        });
    }
    Ok(out)
}

fn tool_choice(v: &Value) -> Result<oa::ToolChoice, TranslateError> {
    match v {
        Value::String(mode) => Ok(oa::ToolChoice::Mode(mode.clone())),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                TranslateError::invalid("tool_choice.name", "a function choice needs a `name`")
            })?;
            Ok(oa::ToolChoice::Named(oa::NamedToolChoice {
                kind: "function".into(),
                function: oa::FunctionName {
                    name: name.to_string(),
                },
            }))
        }
        _ => Err(TranslateError::unsupported(
            "tool_choice",
            "only `auto`, `none`, `required` and function choices can be translated",
        )),
    }
}

/// `text.format` as a chat `response_format`.
fn response_format(text: &Value) -> Result<Option<Value>, TranslateError> {
    let Some(format) = text.get("format") else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = serde_json::Map::new();
            for k in ["name", "schema", "strict", "description"] {
                if let Some(x) = format.get(k) {
                    schema.insert(k.to_string(), x.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        Some(other) => Err(TranslateError::unsupported(
            "text.format.type",
            format!(
                "output format `{}` cannot be translated",
                aigw::log::untrusted(other)
            ),
        )),
    }
}

/// Translates a Responses request into a chat request for a non-Responses upstream.
pub fn responses_request_to_chat(
    req: &rs::ResponsesRequest,
) -> Result<oa::ChatCompletionRequest, TranslateError> {
    if req.previous_response_id.is_some() {
        return Err(TranslateError::unsupported(
            "previous_response_id",
            "`previous_response_id` needs the provider's stored responses; the upstream of this route does not keep them, so send the whole conversation in `input`",
        ));
    }
    reject_unmapped(
        &req.extra,
        MAPPED_RESPONSES_FIELDS,
        IGNORABLE_RESPONSES_FIELDS,
        "non-Responses",
    )?;
    let mut messages = Vec::new();
    if let Some(i) = req.instructions.as_ref().filter(|i| !i.is_empty()) {
        messages.push(chat_message(
            oa::Role::System,
            Some(oa::MessageContent::Text(i.clone())),
        ));
    }
    match &req.input {
        rs::Input::Text(t) => messages.push(chat_message(
            oa::Role::User,
            Some(oa::MessageContent::Text(t.clone())),
        )),
        rs::Input::Items(items) => {
            for (i, item) in items.iter().enumerate() {
                let param = format!("input[{i}]");
                match item {
                    rs::Item::Message {
                        role: r,
                        content: c,
                        ..
                    }
                    | rs::Item::EasyMessage {
                        role: r,
                        content: c,
                    } => {
                        let role = role(r, &param)?;
                        let content = content(c, &param)?;
                        messages.push(chat_message(role, Some(content)));
                    }
                    rs::Item::FunctionCall {
                        call_id,
                        name,
                        arguments,
                        ..
                    } => push_call(
                        &mut messages,
                        oa::ToolCall::function(call_id.clone(), name.clone(), arguments.clone()),
                    ),
                    rs::Item::FunctionCallOutput { call_id, output } => {
                        let mut m = chat_message(
                            oa::Role::Tool,
                            Some(oa::MessageContent::Text(output_text(output))),
                        );
                        m.tool_call_id = Some(call_id.clone());
                        messages.push(m);
                    }
                    // Reasoning items carry the provider's own (often encrypted) state; other
                    // upstreams cannot use them, and dropping them keeps the conversation valid.
                    rs::Item::Reasoning { .. } => {}
                    rs::Item::Other(v) => {
                        let kind = v.get("type").and_then(Value::as_str).unwrap_or("?");
                        return Err(TranslateError::unsupported(
                            param,
                            format!(
                                "input item type `{}` cannot be translated",
                                aigw::log::untrusted(kind)
                            ),
                        ));
                    }
                }
            }
        }
    }
    let tools = match &req.tools {
        Some(list) if !list.is_empty() => Some(tools(list)?),
        _ => None,
    };
    let tool_choice = req.tool_choice.as_ref().map(tool_choice).transpose()?;
    let response_format = match req.extra.get("text") {
        Some(text) => response_format(text)?,
        None => None,
    };
    let stream = req.stream == Some(true);
    let mut extra = Extra::new();
    if let Some(n) = req.extra.get("top_logprobs").and_then(Value::as_u64) {
        if n > 0 {
            extra.insert("logprobs".into(), Value::Bool(true));
            extra.insert("top_logprobs".into(), Value::from(n));
        }
    }
    Ok(oa::ChatCompletionRequest {
        model: req.model.clone(),
        messages,
        stream: stream.then_some(true),
        stream_options: stream.then(|| oa::StreamOptions {
            include_usage: Some(true),
            extra: Extra::new(),
        }),
        max_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        tools,
        tool_choice,
        parallel_tool_calls: req
            .extra
            .get("parallel_tool_calls")
            .and_then(Value::as_bool),
        reasoning_effort: req.reasoning.as_ref().and_then(|r| r.effort.clone()),
        response_format,
        extra,
        ..Default::default()
    })
}

/// Translates a chat answer into a Responses object (`resp_…` id, reasoning, message and
/// function-call items, usage; `status: incomplete` when the answer hit the token limit).
pub fn chat_response_to_responses(
    chat: &oa::ChatCompletion,
) -> Result<rs::Response, TranslateError> {
    let choice = first_choice(chat)?;
    let m = &choice.message;
    let id = prefixed_id("resp_", &chat.id, "answer");
    let suffix = id.trim_start_matches("resp_");
    let mut output = Vec::new();
    if let Some(r) = m.reasoning_content.as_ref().filter(|r| !r.is_empty()) {
        output.push(rs::Item::Reasoning {
            id: Some(format!("rs_{suffix}")),
            summary: vec![json!({"type": "summary_text", "text": r})],
            encrypted_content: None,
        });
    }
    let text = m.joined_text();
    let mut parts = Vec::new();
    if !text.is_empty() {
        parts.push(rs::ContentPart::OutputText {
            text,
            annotations: Vec::new(),
        });
    }
    if let Some(refusal) = m.refusal.as_ref().filter(|r| !r.is_empty()) {
        parts.push(rs::ContentPart::Refusal {
            refusal: refusal.clone(),
        });
    }
    if !parts.is_empty() {
        output.push(rs::Item::Message {
            id: Some(format!("msg_{suffix}")),
            role: "assistant".into(),
            content: rs::ItemContent::Parts(parts),
            status: Some("completed".into()),
        });
    }
    for (i, c) in m.tool_calls.iter().flatten().enumerate() {
        output.push(rs::Item::FunctionCall {
            id: Some(format!("fc_{suffix}_{i}")),
            call_id: c.id.clone(),
            name: c.function.name.clone(),
            arguments: c.function.arguments.clone(),
            status: Some("completed".into()),
        });
    }
    let usage = chat.usage.as_ref().map(Usage::from_openai);
    let incomplete = match choice.finish_reason.as_deref() {
        Some("length") => Some(json!({"reason": "max_output_tokens"})),
        Some("content_filter") => Some(json!({"reason": "content_filter"})),
        _ => None,
    };
    let mut extra = Extra::new();
    for (k, v) in [
        ("error", Value::Null),
        ("instructions", Value::Null),
        ("metadata", json!({})),
        ("parallel_tool_calls", Value::Bool(true)),
        ("tool_choice", json!("auto")),
        ("tools", json!([])),
        ("text", json!({"format": {"type": "text"}})),
    ] {
        extra.insert(k.to_string(), v);
    }
    Ok(rs::Response {
        id,
        object: "response".into(),
        created_at: chat.created,
        status: if incomplete.is_some() {
            "incomplete".into()
        } else {
            "completed".into()
        },
        model: chat.model.clone(),
        output,
        usage: usage.as_ref().map(rs::ResponsesUsage::from_usage),
        error: None,
        incomplete_details: incomplete,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::responses::responses_response_to_chat;

    fn req(v: Value) -> rs::ResponsesRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn request_items_become_chat_messages() {
        let r = req(json!({
            "model": "m", "instructions": "be brief", "max_output_tokens": 50,
            "input": [
                {"role": "user", "content": "weather?"},
                {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{\"q\":1}"},
                {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and"}, {"type": "input_image", "image_url": "https://x/a.png"}]},
                {"type": "reasoning", "id": "rs_1", "summary": []}
            ],
            "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "w"},
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
            "reasoning": {"effort": "low"}, "store": true, "stream": true
        }));
        let c = responses_request_to_chat(&r).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v["messages"][0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(v["messages"][1]["content"], "weather?");
        assert_eq!(v["messages"][2]["tool_calls"].as_array().unwrap().len(), 2);
        assert_eq!(v["messages"][2]["tool_calls"][1]["id"], "c2");
        assert_eq!(
            v["messages"][3],
            json!({"role": "tool", "content": "sunny", "tool_call_id": "c1"})
        );
        assert_eq!(
            v["messages"][4]["content"][1]["image_url"]["url"],
            "https://x/a.png"
        );
        assert_eq!(v["messages"].as_array().unwrap().len(), 5);
        assert_eq!(v["max_tokens"], 50);
        assert_eq!(v["tools"][0]["function"]["name"], "w");
        assert_eq!(v["tool_choice"]["function"]["name"], "w");
        assert_eq!(v["response_format"]["json_schema"]["name"], "x");
        assert_eq!(v["reasoning_effort"], "low");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert!(v.get("store").is_none());
    }

    #[test]
    fn stateful_and_builtin_features_are_refused_by_name() {
        let e = responses_request_to_chat(&req(
            json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
        ))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("previous_response_id"));
        let e = responses_request_to_chat(&req(
            json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}),
        ))
        .unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("tools[0]")));
        let e = responses_request_to_chat(&req(
            json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}),
        ))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input[0]"));
        let e = responses_request_to_chat(&req(
            json!({"model": "m", "input": "x", "conversation": "c"}),
        ))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("conversation"));
    }

    #[test]
    fn chat_answers_become_response_objects_and_back() {
        let chat: oa::ChatCompletion = serde_json::from_value(json!({
            "id": "chatcmpl-abc", "object": "chat.completion", "created": 7, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Let me look.", "reasoning_content": "think",
              "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{\"q\":1}"}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "prompt_tokens_details": {"cached_tokens": 4}}
        })).unwrap();
        let r = chat_response_to_responses(&chat).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert!(v["id"].as_str().unwrap().starts_with("resp_"));
        assert_eq!(v["status"], "completed");
        assert_eq!(v["output"][0]["type"], "reasoning");
        assert_eq!(
            v["output"][1]["content"][0],
            json!({"type": "output_text", "text": "Let me look.", "annotations": []})
        );
        assert_eq!(v["output"][2]["call_id"], "call_1");
        assert_eq!(
            v["usage"]["input_tokens_details"],
            json!({"cached_tokens": 4, "cache_write_tokens": 0}),
            "current OpenAI clients require cache_write_tokens"
        );
        assert_eq!(v["usage"]["total_tokens"], 15);
        let back = responses_response_to_chat(&r, 0).unwrap();
        assert_eq!(back.choices[0].finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            back.choices[0].message.tool_calls.as_ref().unwrap()[0]
                .function
                .arguments,
            "{\"q\":1}"
        );
        assert_eq!(
            back.choices[0].message.reasoning_content.as_deref(),
            Some("think")
        );
        assert_eq!(back.usage.unwrap().prompt_tokens, 10);
    }

    #[test]
    fn usage_reports_cache_writes() {
        let u = Usage {
            input: 30,
            output: 2,
            total: 32,
            cached_input: 8,
            reasoning: 0,
            cache_creation_input: Some(6),
        };
        let v = serde_json::to_value(rs::ResponsesUsage::from_usage(&u)).unwrap();
        assert_eq!(
            v["input_tokens_details"],
            json!({"cached_tokens": 8, "cache_write_tokens": 6})
        );
    }

    #[test]
    fn length_is_incomplete() {
        let chat: oa::ChatCompletion = serde_json::from_value(json!({
            "id": "x", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "cut"}}]
        })).unwrap();
        let v = serde_json::to_value(chat_response_to_responses(&chat).unwrap()).unwrap();
        assert_eq!(v["status"], "incomplete");
        assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
        let back = responses_response_to_chat(&serde_json::from_value(v).unwrap(), 0).unwrap();
        assert_eq!(back.choices[0].finish_reason.as_deref(), Some("length"));
    }
}
