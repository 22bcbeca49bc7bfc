//! OpenAI chat clients in front of an Anthropic upstream: the request goes OpenAI → Anthropic
//! Messages, the (non-streamed) answer comes back Anthropic → OpenAI chat completion.
//!
//! Mapping notes:
//! - `system`/`developer` messages are hoisted into Anthropic's top-level `system` (one text
//!   block each, in order), wherever they appear in the conversation.
//! - Consecutive `tool` messages become one user message of `tool_result` blocks.
//! - `data:` image URLs become base64 image sources; `http(s)` image URLs become `url` sources;
//!   image `detail` is a hint without equivalent and is not sent.
//! - PDF `file` parts given as `file_data` data URLs become `document` blocks.
//! - `reasoning_effort` becomes `thinking.budget_tokens` (see [`TranslateOptions`]); a
//!   `thinking` object sent as an extra field is passed through as is.
//! - `reasoning_content` of earlier assistant turns is not forwarded: Anthropic needs the
//!   original thinking signature, which OpenAI clients do not keep.
//! - `parallel_tool_calls: false` becomes `disable_parallel_tool_use: true`.
//! - `user` becomes `metadata.user_id`; `top_k` (extension) is mapped.
//!
//! Rejected with a 400 (never dropped):
//! - `n` > 1; `temperature` > 1 (Anthropic's range is 0..1); a temperature other than 1 with
//!   thinking; `max_tokens` too small for the thinking budget;
//! - `response_format` other than `text`; `logprobs`; penalties; any other unmodelled field
//!   except the ignorable hints in [`crate::common::IGNORABLE_OPENAI_FIELDS`];
//! - `input_audio` parts, `file` parts other than base64 PDF, images with a MIME type Anthropic
//!   does not take, unknown part types, message `name`, the legacy `function` role;
//! - tools whose `type` is not `function`, unknown `tool_choice` shapes, invalid tool-call
//!   arguments, `tool` messages without `tool_call_id`.
//!
//! Response side: `thinking` → `reasoning_content`; `redacted_thinking` blocks are encrypted
//! and have no OpenAI form, so they are omitted; unknown block types are a 502.

use super::{
    bad_answer, to_body, Answer, AnswerContext, Body, Endpoint, PathArgs, Protocol, Upstream,
};
use crate::common::{
    anthropic_stop_to_openai, function_tool, map_indexed, parse_arguments, reject_unmapped,
    tool_use_call, IGNORABLE_OPENAI_FIELDS,
};
use crate::error::TranslateError;
use crate::media::{image_format, is_http_url, parse_data_url};
use crate::options::TranslateOptions;
use aigw::llm::anthropic as an;
use aigw::llm::openai as oa;
use aigw::llm::stream::{AnthropicDecoder, Decoder};
use aigw::llm::UsageProtocol;
use aigw::llm::{Extra, Usage};
use serde_json::{json, Value};

/// Translates an OpenAI chat request into an Anthropic Messages request.
pub fn chat_request_to_anthropic(
    req: &oa::ChatCompletionRequest,
    opts: &TranslateOptions,
) -> Result<an::MessagesRequest, TranslateError> {
    reject_unmapped(
        &req.extra,
        &["top_k", "thinking"],
        IGNORABLE_OPENAI_FIELDS,
        "anthropic",
    )?;
    if req.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::unsupported(
            "n",
            "anthropic returns a single choice",
        ));
    }
    if let Some(rf) = &req.response_format {
        if rf.get("type").and_then(Value::as_str) != Some("text") {
            return Err(TranslateError::unsupported(
                "response_format",
                "structured output formats cannot be translated for an anthropic upstream",
            ));
        }
    }
    if let Some(t) = req.temperature {
        if t > 1.0 {
            return Err(TranslateError::invalid(
                "temperature",
                "anthropic accepts a temperature between 0 and 1",
            ));
        }
    }

    let mut system: Vec<an::ContentBlock> = Vec::new();
    let mut messages: Vec<an::Message> = Vec::new();
    let mut last_was_tool = false;
    for (i, m) in req.messages.iter().enumerate() {
        if m.name.is_some() {
            return Err(TranslateError::unsupported(
                format!("messages[{i}].name"),
                "anthropic has no participant names",
            ));
        }
        let is_tool = m.role == oa::Role::Tool;
        match m.role {
            oa::Role::System | oa::Role::Developer => {
                for text in system_texts(m, i)? {
                    system.push(an::ContentBlock::Text {
                        text,
                        cache_control: None,
                    });
                }
            }
            oa::Role::User => {
                let content = match &m.content {
                    Some(oa::MessageContent::Text(s)) => an::Content::Text(s.clone()),
                    Some(oa::MessageContent::Parts(parts)) => an::Content::Blocks(
                        parts
                            .iter()
                            .enumerate()
                            .map(|(j, p)| {
                                part_to_block(p, || format!("messages[{i}].content[{j}]"))
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    None => {
                        return Err(TranslateError::invalid(
                            format!("messages[{i}].content"),
                            "user message without content",
                        ))
                    }
                };
                messages.push(an::Message {
                    role: an::Role::User,
                    content,
                });
            }
            oa::Role::Assistant => messages.push(assistant_to_anthropic(m, i)?),
            oa::Role::Tool => {
                let block = tool_message_to_block(m, i)?;
                match messages.last_mut() {
                    Some(an::Message {
                        role: an::Role::User,
                        content: an::Content::Blocks(blocks),
                    }) if last_was_tool => blocks.push(block),
                    _ => messages.push(an::Message {
                        role: an::Role::User,
                        content: an::Content::Blocks(vec![block]),
                    }),
                }
            }
            oa::Role::Function => {
                return Err(TranslateError::unsupported(
                    format!("messages[{i}].role"),
                    "the legacy `function` role is not supported; use tools",
                ))
            }
        }
        last_was_tool = is_tool;
    }

    let tools = map_indexed(req.tools.as_deref(), |(i, t)| {
        let f = function_tool(i, t)?;
        Ok(an::Tool {
            name: f.name.clone(),
            description: f.description.clone(),
            input_schema: Some(
                f.parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            ),
            kind: None,
            cache_control: None,
            extra: Extra::new(),
        })
    })?;

    let disable_parallel = (req.parallel_tool_calls == Some(false)).then_some(true);
    let tool_choice = match &req.tool_choice {
        None => disable_parallel.map(|d| an::ToolChoice::Auto {
            disable_parallel_tool_use: Some(d),
        }),
        Some(oa::ToolChoice::Mode(m)) => Some(match m.as_str() {
            "auto" => an::ToolChoice::Auto {
                disable_parallel_tool_use: disable_parallel,
            },
            "required" => an::ToolChoice::Any {
                disable_parallel_tool_use: disable_parallel,
            },
            "none" => an::ToolChoice::None {},
            other => {
                return Err(TranslateError::invalid(
                    "tool_choice",
                    format!("unknown tool_choice `{other}`"),
                ));
            }
        }),
        Some(oa::ToolChoice::Named(n)) => Some(an::ToolChoice::Tool {
            name: n.function.name.clone(),
            disable_parallel_tool_use: disable_parallel,
        }),
        Some(oa::ToolChoice::Other(_)) => {
            return Err(TranslateError::unsupported(
                "tool_choice",
                "this tool_choice shape cannot be translated for anthropic",
            ))
        }
    };

    // Thinking: explicit Anthropic-style object wins, else reasoning_effort.
    let thinking = match (req.extra.get("thinking"), &req.reasoning_effort) {
        (Some(t), _) if !t.is_null() => Some(
            serde_json::from_value::<an::ThinkingConfig>(t.clone())
                .map_err(|e| TranslateError::invalid("thinking", e.to_string()))?,
        ),
        (_, Some(effort)) => {
            let budget = opts.budget_for_effort(effort).ok_or_else(|| {
                TranslateError::invalid(
                    "reasoning_effort",
                    format!("unknown reasoning_effort `{effort}`"),
                )
            })?;
            Some(an::ThinkingConfig {
                kind: "enabled".into(),
                budget_tokens: Some(budget),
            })
        }
        _ => None,
    };
    let mut max_tokens = req.output_limit();
    if let Some(budget) = thinking
        .as_ref()
        .filter(|t| t.kind == "enabled")
        .and_then(|t| t.budget_tokens)
    {
        if req.temperature.is_some_and(|t| t != 1.0) {
            return Err(TranslateError::invalid(
                "temperature",
                "anthropic requires temperature 1 when thinking is enabled",
            ));
        }
        match max_tokens {
            Some(m) if m <= budget => {
                return Err(TranslateError::invalid(
                    "max_tokens",
                    format!("max_tokens ({m}) must exceed the thinking budget ({budget})"),
                ))
            }
            Some(_) => {}
            None => {
                max_tokens = Some(
                    opts.default_max_tokens
                        .max(budget.saturating_add(opts.default_max_tokens)),
                )
            }
        }
    }

    let top_k = match req.extra.get("top_k") {
        Some(v) if !v.is_null() => Some(
            v.as_u64()
                .and_then(|k| u32::try_from(k).ok())
                .ok_or_else(|| {
                    TranslateError::invalid("top_k", "top_k must be a positive integer")
                })?,
        ),
        _ => None,
    };

    Ok(an::MessagesRequest {
        model: req.model.clone(),
        messages,
        system: (!system.is_empty()).then(|| match system.as_slice() {
            [an::ContentBlock::Text { text, .. }] => an::SystemPrompt::Text(text.clone()),
            _ => an::SystemPrompt::Blocks(system.clone()),
        }),
        max_tokens: Some(max_tokens.unwrap_or(opts.default_max_tokens)),
        stop_sequences: req.stop.as_ref().map(oa::Stop::to_vec),
        stream: req.stream,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k,
        tools,
        tool_choice,
        thinking,
        metadata: req.user.as_ref().map(|u| json!({ "user_id": u })),
        extra: Extra::new(),
    })
}

/// The texts of a system/developer message (text parts only).
pub(crate) fn system_texts(m: &oa::ChatMessage, i: usize) -> Result<Vec<String>, TranslateError> {
    match &m.content {
        Some(oa::MessageContent::Text(s)) => Ok(vec![s.clone()]),
        Some(oa::MessageContent::Parts(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| match p {
                oa::ContentPart::Text { text } => Ok(text.clone()),
                _ => Err(TranslateError::unsupported(
                    format!("messages[{i}].content[{j}]"),
                    "system messages may only contain text",
                )),
            })
            .collect(),
        None => Ok(Vec::new()),
    }
}

/// One user content part → Anthropic block.
fn part_to_block(
    p: &oa::ContentPart,
    param: impl Fn() -> String,
) -> Result<an::ContentBlock, TranslateError> {
    match p {
        oa::ContentPart::Text { text } => Ok(an::ContentBlock::Text {
            text: text.clone(),
            cache_control: None,
        }),
        oa::ContentPart::ImageUrl { image_url } => {
            let source = if let Some(d) = parse_data_url(&image_url.url) {
                if image_format(d.mime).is_none() {
                    return Err(TranslateError::unsupported(
                        param(),
                        format!("anthropic does not accept images of type {}", d.mime),
                    ));
                }
                an::ImageSource::Base64 {
                    media_type: d.mime.to_string(),
                    data: d.data.to_string(),
                }
            } else if is_http_url(&image_url.url) {
                an::ImageSource::Url {
                    url: image_url.url.clone(),
                }
            } else {
                return Err(TranslateError::invalid(
                    param(),
                    "image_url must be an http(s) URL or a base64 data URL",
                ));
            };
            Ok(an::ContentBlock::Image {
                source,
                cache_control: None,
            })
        }
        oa::ContentPart::File { file } => {
            let data = file
                .get("file_data")
                .and_then(Value::as_str)
                .and_then(parse_data_url);
            match data {
                Some(d) if d.mime == "application/pdf" => Ok(an::ContentBlock::Other(json!({
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": d.data},
                }))),
                _ => Err(TranslateError::unsupported(
                    param(),
                    "only base64 PDF `file_data` can be translated for anthropic (no file ids)",
                )),
            }
        }
        oa::ContentPart::InputAudio { .. } => Err(TranslateError::unsupported(
            param(),
            "anthropic does not accept audio input",
        )),
        oa::ContentPart::Refusal { .. } => Err(TranslateError::invalid(
            param(),
            "refusal parts are only valid in assistant messages",
        )),
        oa::ContentPart::Other(v) => Err(TranslateError::unsupported(
            param(),
            format!(
                "content part type `{}` cannot be translated for anthropic",
                v.get("type").and_then(Value::as_str).unwrap_or("?")
            ),
        )),
    }
}

fn assistant_to_anthropic(m: &oa::ChatMessage, i: usize) -> Result<an::Message, TranslateError> {
    let text = match &m.content {
        Some(oa::MessageContent::Text(s)) => Some(s.clone()),
        Some(oa::MessageContent::Parts(parts)) => {
            let mut s = String::new();
            for (j, p) in parts.iter().enumerate() {
                match p {
                    oa::ContentPart::Text { text } => s.push_str(text),
                    oa::ContentPart::Refusal { refusal } => s.push_str(refusal),
                    _ => {
                        return Err(TranslateError::unsupported(
                            format!("messages[{i}].content[{j}]"),
                            "assistant messages may only contain text",
                        ))
                    }
                }
            }
            Some(s)
        }
        None => None,
    };
    let calls = m.tool_calls.as_deref().unwrap_or_default();
    if calls.is_empty() {
        return Ok(an::Message {
            role: an::Role::Assistant,
            content: an::Content::Text(text.or_else(|| m.refusal.clone()).unwrap_or_default()),
        });
    }
    let mut blocks = Vec::with_capacity(calls.len() + 1);
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        blocks.push(an::ContentBlock::Text {
            text: t,
            cache_control: None,
        });
    }
    for (j, c) in calls.iter().enumerate() {
        let input = parse_arguments(&c.function.arguments, || {
            format!("messages[{i}].tool_calls[{j}].function.arguments")
        })?;
        blocks.push(an::ContentBlock::ToolUse {
            id: c.id.clone(),
            name: c.function.name.clone(),
            input,
            cache_control: None,
        });
    }
    Ok(an::Message {
        role: an::Role::Assistant,
        content: an::Content::Blocks(blocks),
    })
}

fn tool_message_to_block(
    m: &oa::ChatMessage,
    i: usize,
) -> Result<an::ContentBlock, TranslateError> {
    let id = m.tool_call_id.clone().ok_or_else(|| {
        TranslateError::invalid(
            format!("messages[{i}].tool_call_id"),
            "tool messages need tool_call_id",
        )
    })?;
    let content = match &m.content {
        Some(oa::MessageContent::Text(s)) => Some(an::Content::Text(s.clone())),
        Some(oa::MessageContent::Parts(parts)) => Some(an::Content::Blocks(
            parts
                .iter()
                .enumerate()
                .map(|(j, p)| part_to_block(p, || format!("messages[{i}].content[{j}]")))
                .collect::<Result<_, _>>()?,
        )),
        None => None,
    };
    Ok(an::ContentBlock::ToolResult {
        tool_use_id: id,
        content,
        is_error: None,
        cache_control: None,
    })
}

/// Translates a non-streamed Anthropic message into an OpenAI chat completion. `created` is the
/// Unix time to stamp it with.
pub fn anthropic_response_to_chat(
    resp: &an::MessagesResponse,
    created: u64,
) -> Result<oa::ChatCompletion, TranslateError> {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for b in &resp.content {
        match b {
            an::ContentBlock::Text { text: t, .. } => text.push_str(t),
            an::ContentBlock::Thinking { thinking, .. } => reasoning.push_str(thinking),
            an::ContentBlock::RedactedThinking { .. } => {}
            an::ContentBlock::ToolUse {
                id, name, input, ..
            } => calls.push(tool_use_call(id, name, input)),
            other => {
                return Err(TranslateError::upstream(format!(
                    "anthropic returned a `{}` block that has no OpenAI form",
                    block_type(other)
                )))
            }
        }
    }
    let message = oa::ChatMessage {
        role: oa::Role::Assistant,
        content: if text.is_empty() && !calls.is_empty() {
            None
        } else {
            Some(oa::MessageContent::Text(text))
        },
        name: None,
        tool_calls: (!calls.is_empty()).then_some(calls),
        tool_call_id: None,
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        refusal: None,
        extra: Extra::new(),
    };
    Ok(oa::ChatCompletion {
        id: resp.id.clone(),
        object: "chat.completion".into(),
        created,
        model: resp.model.clone(),
        choices: vec![oa::Choice {
            index: 0,
            message,
            finish_reason: Some(
                anthropic_stop_to_openai(resp.stop_reason.as_deref().unwrap_or("end_turn"))
                    .to_string(),
            ),
            logprobs: None,
        }],
        usage: Some(Usage::from_anthropic(&resp.usage).to_openai()),
        system_fingerprint: None,
        extra: Extra::new(),
    })
}

/// The `type` of a raw block, for messages.
pub(crate) fn block_type(b: &an::ContentBlock) -> String {
    match serde_json::to_value(b) {
        Ok(v) => v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        Err(_) => "?".to_string(),
    }
}

/// The Anthropic Messages dialect.
pub struct Anthropic;

impl Upstream for Anthropic {
    fn protocol(&self) -> Protocol {
        Protocol::AnthropicMessages
    }

    fn path(&self, p: &PathArgs<'_>) -> String {
        let base = p.base;
        match p.endpoint {
            Endpoint::Models => format!("{base}/models"),
            _ => format!("{base}/messages"),
        }
    }

    fn request_headers(&self, anthropic_version: Option<&str>) -> Vec<(&'static str, String)> {
        vec![(
            "anthropic-version",
            anthropic_version.unwrap_or("2023-06-01").to_string(),
        )]
    }

    fn chat_request(&self, req: &mut oa::ChatCompletionRequest, opts: &TranslateOptions) -> Body {
        to_body(&chat_request_to_anthropic(req, opts)?)
    }

    fn chat_response(&self, body: &[u8], cx: AnswerContext<'_>) -> Answer {
        let r: an::MessagesResponse = serde_json::from_slice(body).map_err(bad_answer)?;
        let usage = aigw::llm::usage::extract(UsageProtocol::Anthropic, body);
        Ok((anthropic_response_to_chat(&r, cx.created)?, usage))
    }

    fn stream_decoder(&self) -> Box<dyn Decoder> {
        Box::new(AnthropicDecoder::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: Value) -> oa::ChatCompletionRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn full_conversation_maps_faithfully() {
        let r = req(json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "system", "content": "You are a weather bot."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/sky.png"}}
                ]},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "time", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
                {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
                {"role": "developer", "content": "Answer in French."},
                {"role": "user", "content": "Merci"}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
                      {"type": "function", "function": {"name": "time"}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "stop": "END",
            "temperature": 0.3,
            "max_completion_tokens": 500,
            "user": "u-42",
            "stream": true,
            "stream_options": {"include_usage": true},
            "seed": 1
        }));
        let a = chat_request_to_anthropic(&r, &TranslateOptions::default()).unwrap();
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(
            v["system"],
            json!([{"type": "text", "text": "You are a weather bot."}, {"type": "text", "text": "Answer in French."}])
        );
        assert_eq!(v["max_tokens"], 500);
        assert_eq!(v["stop_sequences"], json!(["END"]));
        assert_eq!(
            v["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
        assert_eq!(v["metadata"]["user_id"], "u-42");
        assert_eq!(v["stream"], true);
        let msgs = v["messages"].as_array().unwrap();
        assert_eq!(
            msgs.len(),
            4,
            "system hoisted, tool results merged: {msgs:?}"
        );
        assert_eq!(
            msgs[0]["content"][1]["source"],
            json!({"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"})
        );
        assert_eq!(
            msgs[0]["content"][2]["source"],
            json!({"type": "url", "url": "https://example.com/sky.png"})
        );
        assert_eq!(
            msgs[1]["content"][0],
            json!({"type": "text", "text": "Checking."})
        );
        assert_eq!(
            msgs[1]["content"][1],
            json!({"type": "tool_use", "id": "call_a", "name": "weather", "input": {"city": "Paris"}})
        );
        assert_eq!(msgs[1]["content"][2]["input"], json!({}));
        assert_eq!(msgs[2]["role"], "user");
        assert_eq!(msgs[2]["content"].as_array().unwrap().len(), 2);
        assert_eq!(
            msgs[2]["content"][1],
            json!({"type": "tool_result", "tool_use_id": "call_b", "content": "noon"})
        );
        assert_eq!(msgs[3], json!({"role": "user", "content": "Merci"}));
        assert_eq!(
            v["tools"][1]["input_schema"],
            json!({"type": "object", "properties": {}})
        );
        assert!(v.get("seed").is_none());
    }

    #[test]
    fn unmappable_requests_are_rejected_with_the_field() {
        let opts = TranslateOptions::default();
        let cases = [
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]}),
                "messages[0].content[0]",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2}),
                "n",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 1.5}),
                "temperature",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}),
                "response_format",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "logit_bias": {"1": 2}}),
                "logit_bias",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi", "name": "bob"}]}),
                "messages[0].name",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AA"}}]}]}),
                "messages[0].content[0]",
            ),
            (
                json!({"model": "m", "messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}),
                "messages[0].tool_calls[0].function.arguments",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high", "max_tokens": 1000}),
                "max_tokens",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "x"}}]}]}),
                "messages[0].content[0]",
            ),
        ];
        for (body, param) in cases {
            let e = chat_request_to_anthropic(&req(body.clone()), &opts).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}");
            assert_eq!(e.status, 400);
        }
    }

    #[test]
    fn reasoning_effort_becomes_thinking_with_room_for_output() {
        let r = req(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "medium"}),
        );
        let a = chat_request_to_anthropic(&r, &TranslateOptions::default()).unwrap();
        assert_eq!(
            a.thinking,
            Some(an::ThinkingConfig {
                kind: "enabled".into(),
                budget_tokens: Some(8192)
            })
        );
        assert!(a.max_tokens.unwrap() > 8192);
        let r = req(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "enabled", "budget_tokens": 3000}, "max_tokens": 5000}),
        );
        let a = chat_request_to_anthropic(&r, &TranslateOptions::default()).unwrap();
        assert_eq!(a.thinking.unwrap().budget_tokens, Some(3000));
        assert_eq!(a.max_tokens, Some(5000));
    }

    #[test]
    fn response_with_thinking_and_tools() {
        let body = r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5",
          "content":[{"type":"thinking","thinking":"User wants weather.","signature":"EqQB"},
                     {"type":"redacted_thinking","data":"abc"},
                     {"type":"text","text":"Let me check."},
                     {"type":"tool_use","id":"toolu_01","name":"weather","input":{"city":"Paris"}}],
          "stop_reason":"tool_use","stop_sequence":null,
          "usage":{"input_tokens":100,"cache_read_input_tokens":50,"cache_creation_input_tokens":10,"output_tokens":30}}"#;
        let resp: an::MessagesResponse = serde_json::from_str(body).unwrap();
        let c = anthropic_response_to_chat(&resp, 1700000000).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["choices"][0]["message"]["content"], "Let me check.");
        assert_eq!(
            v["choices"][0]["message"]["reasoning_content"],
            "User wants weather."
        );
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(v["usage"]["prompt_tokens"], 160);
        assert_eq!(v["usage"]["completion_tokens"], 30);
        assert_eq!(v["usage"]["total_tokens"], 190);
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 50);
        assert_eq!(v["created"], 1700000000);

        for (stop, finish) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("stop_sequence", "stop"),
            ("refusal", "content_filter"),
        ] {
            let mut r = resp.clone();
            r.content = vec![an::ContentBlock::Text {
                text: "x".into(),
                cache_control: None,
            }];
            r.stop_reason = Some(stop.into());
            assert_eq!(
                anthropic_response_to_chat(&r, 0).unwrap().choices[0]
                    .finish_reason
                    .as_deref(),
                Some(finish)
            );
        }
        let mut r = resp;
        r.content = vec![an::ContentBlock::Other(
            json!({"type": "server_tool_use", "id": "s"}),
        )];
        assert_eq!(anthropic_response_to_chat(&r, 0).unwrap_err().status, 502);
    }
}
