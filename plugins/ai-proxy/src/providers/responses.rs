//! OpenAI upstreams called through the Responses API (`api: responses`): a chat request
//! becomes a Responses request ([`chat_request_to_responses`]) and the Responses object a chat
//! answer ([`responses_response_to_chat`]); streams use the SDK's `ResponsesDecoder`. The
//! gateway keeps no state upstream (`store: false`).

use super::{bad_answer, to_body, Answer, AnswerContext, Body, PathArgs, Protocol, Upstream};
use crate::common::chat_message;
use crate::error::TranslateError;
use crate::options::TranslateOptions;
use aigw::llm::openai as oa;
use aigw::llm::responses as rs;
use aigw::llm::stream::prefixed_id;
use aigw::llm::stream::{Decoder, ResponsesDecoder};
use aigw::llm::{Extra, Usage};
use serde_json::{json, Value};

/// Translates a chat request into a Responses request, for OpenAI upstreams configured to
/// speak the Responses API. Stateless: `store` is off, so nothing is kept upstream.
pub fn chat_request_to_responses(
    req: &oa::ChatCompletionRequest,
) -> Result<rs::ResponsesRequest, TranslateError> {
    let mut instructions: Vec<String> = Vec::new();
    let mut items = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let text_parts =
            |c: &oa::MessageContent, output: bool| -> Result<rs::ItemContent, TranslateError> {
                Ok(match c {
                    oa::MessageContent::Text(t) if output => {
                        rs::ItemContent::Parts(vec![rs::ContentPart::OutputText {
                            text: t.clone(),
                            annotations: Vec::new(),
                        }])
                    }
                    oa::MessageContent::Text(t) => rs::ItemContent::Text(t.clone()),
                    oa::MessageContent::Parts(parts) => {
                        let mut out = Vec::with_capacity(parts.len());
                        for (j, p) in parts.iter().enumerate() {
                            out.push(match p {
                                oa::ContentPart::Text { text } if output => {
                                    rs::ContentPart::OutputText {
                                        text: text.clone(),
                                        annotations: Vec::new(),
                                    }
                                }
                                oa::ContentPart::Text { text } => {
                                    rs::ContentPart::InputText { text: text.clone() }
                                }
                                oa::ContentPart::Refusal { refusal } => rs::ContentPart::Refusal {
                                    refusal: refusal.clone(),
                                },
                                oa::ContentPart::ImageUrl { image_url } => {
                                    rs::ContentPart::InputImage {
                                        image_url: Some(image_url.url.clone()),
                                        file_id: None,
                                        detail: image_url.detail.clone(),
                                    }
                                }
                                oa::ContentPart::File { file } => {
                                    let mut f = file.as_object().cloned().unwrap_or_default();
                                    f.insert("type".into(), json!("input_file"));
                                    rs::ContentPart::Other(Value::Object(f))
                                }
                                _ => {
                                    return Err(TranslateError::unsupported(
                                        format!("{param}.content[{j}]"),
                                        "this content part cannot be sent to a Responses upstream",
                                    ))
                                }
                            });
                        }
                        rs::ItemContent::Parts(out)
                    }
                })
            };
        match m.role {
            oa::Role::System | oa::Role::Developer if items.is_empty() => {
                if let Some(c) = &m.content {
                    instructions.push(c.joined_text());
                }
            }
            oa::Role::System | oa::Role::Developer | oa::Role::User => {
                let role = match m.role {
                    oa::Role::User => "user",
                    oa::Role::System => "system",
                    _ => "developer",
                };
                if let Some(c) = &m.content {
                    items.push(rs::Item::EasyMessage {
                        role: role.into(),
                        content: text_parts(c, false)?,
                    });
                }
            }
            oa::Role::Assistant => {
                if let Some(c) = m.content.as_ref().filter(|c| !c.joined_text().is_empty()) {
                    items.push(rs::Item::Message {
                        id: None,
                        role: "assistant".into(),
                        content: text_parts(c, true)?,
                        status: None,
                    });
                }
                for c in m.tool_calls.iter().flatten() {
                    items.push(rs::Item::FunctionCall {
                        id: None,
                        call_id: c.id.clone(),
                        name: c.function.name.clone(),
                        arguments: c.function.arguments.clone(),
                        status: None,
                    });
                }
            }
            oa::Role::Tool | oa::Role::Function => {
                let call_id = m.tool_call_id.clone().ok_or_else(|| {
                    TranslateError::invalid(
                        format!("{param}.tool_call_id"),
                        "a tool message needs `tool_call_id`",
                    )
                })?;
                let output = m.joined_text();
                items.push(rs::Item::FunctionCallOutput {
                    call_id,
                    output: Value::String(output),
                });
            }
        }
    }
    let tools = req.tools.as_ref().map(|list| {
        list.iter()
            .map(|t| {
                let mut o = serde_json::Map::new();
                o.insert("type".into(), json!("function"));
                o.insert("name".into(), json!(t.function.name));
                if let Some(d) = &t.function.description {
                    o.insert("description".into(), json!(d));
                }
                if let Some(p) = &t.function.parameters {
                    o.insert("parameters".into(), p.clone());
                }
                if let Some(s) = t.function.strict {
                    o.insert("strict".into(), json!(s));
                }
                Value::Object(o)
            })
            .collect()
    });
    let tool_choice = match &req.tool_choice {
        None => None,
        Some(oa::ToolChoice::Mode(m)) => Some(json!(m)),
        Some(oa::ToolChoice::Named(n)) => {
            Some(json!({"type": "function", "name": n.function.name}))
        }
        Some(oa::ToolChoice::Other(_)) => {
            return Err(TranslateError::unsupported(
                "tool_choice",
                "this tool_choice cannot be sent to a Responses upstream",
            ))
        }
    };
    let mut extra = Extra::new();
    extra.insert("store".into(), Value::Bool(false));
    if let Some(p) = req.parallel_tool_calls {
        extra.insert("parallel_tool_calls".into(), Value::Bool(p));
    }
    if let Some(f) = &req.response_format {
        let format = match f.get("type").and_then(Value::as_str) {
            Some("json_schema") => {
                let mut o = f
                    .get("json_schema")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                o.insert("type".into(), json!("json_schema"));
                Value::Object(o)
            }
            Some(t) => json!({"type": t}),
            None => json!({"type": "text"}),
        };
        extra.insert("text".into(), json!({"format": format}));
    }
    if req.stop.is_some() {
        return Err(TranslateError::unsupported(
            "stop",
            "stop sequences cannot be sent to a Responses upstream",
        ));
    }
    if req.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::unsupported(
            "n",
            "a Responses upstream returns one answer per request",
        ));
    }
    Ok(rs::ResponsesRequest {
        model: req.model.clone(),
        input: rs::Input::Items(items),
        instructions: (!instructions.is_empty()).then(|| instructions.join("\n\n")),
        tools,
        tool_choice,
        stream: (req.stream == Some(true)).then_some(true),
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        reasoning: req.reasoning_effort.as_ref().map(|e| rs::Reasoning {
            effort: Some(e.clone()),
            summary: None,
        }),
        previous_response_id: None,
        extra,
    })
}

/// Translates a Responses object from the upstream into a chat answer.
pub fn responses_response_to_chat(
    r: &rs::Response,
    created: u64,
) -> Result<oa::ChatCompletion, TranslateError> {
    if r.status == "failed" {
        let message = r
            .error
            .as_ref()
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("the upstream response failed");
        return Err(TranslateError::upstream(message.to_string()));
    }
    let mut text = String::new();
    let mut refusal = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for item in &r.output {
        match item {
            rs::Item::Message { content, .. } => match content {
                rs::ItemContent::Text(t) => text.push_str(t),
                rs::ItemContent::Parts(parts) => {
                    for p in parts {
                        match p {
                            rs::ContentPart::OutputText { text: t, .. } => text.push_str(t),
                            rs::ContentPart::Refusal { refusal: t } => refusal.push_str(t),
                            _ => {}
                        }
                    }
                }
            },
            rs::Item::FunctionCall {
                call_id,
                name,
                arguments,
                ..
            } => calls.push(oa::ToolCall::function(
                call_id.clone(),
                name.clone(),
                arguments.clone(),
            )),
            rs::Item::Reasoning { summary, .. } => {
                for s in summary {
                    if let Some(t) = s.get("text").and_then(Value::as_str) {
                        reasoning.push_str(t);
                    }
                }
            }
            _ => {}
        }
    }
    let reason = r
        .incomplete_details
        .as_ref()
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str);
    let finish = if !calls.is_empty() {
        "tool_calls"
    } else {
        match reason {
            Some("max_output_tokens") => "length",
            Some("content_filter") => "content_filter",
            _ => "stop",
        }
    };
    let mut message = chat_message(
        oa::Role::Assistant,
        (!text.is_empty() || calls.is_empty()).then_some(oa::MessageContent::Text(text)),
    );
    message.tool_calls = (!calls.is_empty()).then_some(calls);
    message.refusal = (!refusal.is_empty()).then_some(refusal);
    message.reasoning_content = (!reasoning.is_empty()).then_some(reasoning);
    let usage = r.usage.as_ref().map(|u| u.to_usage().to_openai());
    Ok(oa::ChatCompletion {
        id: prefixed_id("chatcmpl-", &r.id, "response"),
        object: "chat.completion".into(),
        created: if r.created_at > 0 {
            r.created_at
        } else {
            created
        },
        model: r.model.clone(),
        choices: vec![oa::Choice {
            index: 0,
            message,
            finish_reason: Some(finish.into()),
            logprobs: None,
        }],
        usage,
        system_fingerprint: None,
        extra: Extra::new(),
    })
}

/// OpenAI upstreams on the Responses API.
pub struct Responses;

impl Upstream for Responses {
    fn protocol(&self) -> Protocol {
        Protocol::Responses
    }

    fn path(&self, p: &PathArgs<'_>) -> String {
        super::openai::path(p, true)
    }

    fn chat_request(&self, req: &mut oa::ChatCompletionRequest, opts: &TranslateOptions) -> Body {
        if opts.use_max_completion_tokens && req.max_completion_tokens.is_none() {
            req.max_completion_tokens = req.max_tokens.take();
        }
        to_body(&chat_request_to_responses(req)?)
    }

    fn chat_response(&self, body: &[u8], cx: AnswerContext<'_>) -> Answer {
        let r: rs::Response = serde_json::from_slice(body).map_err(bad_answer)?;
        let chat = responses_response_to_chat(&r, cx.created)?;
        let usage = chat.usage.as_ref().map(Usage::from_openai);
        Ok((chat, usage))
    }

    fn stream_decoder(&self) -> Box<dyn Decoder> {
        Box::new(ResponsesDecoder::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::responses::responses_request_to_chat;

    #[test]
    fn chat_requests_become_responses_requests() {
        let c: oa::ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m", "max_tokens": 9, "stream": true,
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "ok"}
            ],
            "tools": [{"type": "function", "function": {"name": "w"}}],
            "response_format": {"type": "json_object"}
        })).unwrap();
        let r = chat_request_to_responses(&c).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["instructions"], "sys");
        assert_eq!(v["input"][0], json!({"role": "user", "content": "hi"}));
        assert_eq!(v["input"][1]["type"], "function_call");
        assert_eq!(
            v["input"][2],
            json!({"type": "function_call_output", "call_id": "c1", "output": "ok"})
        );
        assert_eq!(v["tools"][0], json!({"type": "function", "name": "w"}));
        assert_eq!(v["max_output_tokens"], 9);
        assert_eq!(v["store"], false);
        assert_eq!(v["text"]["format"]["type"], "json_object");
        // And the request read back by the client-side translation keeps the conversation.
        let again = responses_request_to_chat(&r).unwrap();
        assert_eq!(again.messages.len(), 4);
    }
}
