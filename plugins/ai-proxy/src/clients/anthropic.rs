//! Anthropic clients in front of an OpenAI-style upstream: the request goes Anthropic Messages →
//! OpenAI chat, the (non-streamed) answer comes back OpenAI chat completion → Anthropic message.
//!
//! Mapping notes:
//! - `system` (string or text blocks) becomes leading system messages (one per block);
//!   `cache_control` markers are hints without OpenAI equivalent (OpenAI caches automatically).
//! - A user message's `tool_result` blocks become `tool` messages, its other blocks a user
//!   message, in block order. `is_error: true` results are prefixed with `Error: `.
//! - Images become `image_url` parts (base64 → `data:` URL); base64 PDF `document` blocks
//!   become `file` parts.
//! - `thinking` / `redacted_thinking` blocks of earlier assistant turns are not forwarded
//!   (OpenAI-style APIs do not accept reasoning as input; DeepSeek rejects it).
//! - `thinking.budget_tokens` becomes `reasoning_effort` (closest level, see
//!   [`TranslateOptions::effort_for_budget`]); `top_k` is passed as the `top_k` extension field
//!   that vLLM, Ollama and others accept; `metadata.user_id` becomes `user`.
//! - Streams always ask for `stream_options.include_usage` so usage arrives.
//!
//! Rejected with a 400: server tools (`type` set, e.g. web search), unknown block types
//! (e.g. `search_result`, non-PDF documents), images inside tool results (OpenAI tool messages
//! are text only), unknown request fields other than `service_tier`.
//!
//! Response side: `reasoning_content` → a `thinking` block (without signature);
//! tool-call arguments that are not a JSON object are a 502.

use crate::common::{
    first_choice, map_indexed, openai_finish_to_anthropic, reject_unmapped, tool_use_call,
};
use crate::error::TranslateError;
use crate::media::data_url;
use crate::options::TranslateOptions;
use crate::providers::anthropic::block_type;
use aigw::llm::anthropic as an;
use aigw::llm::openai as oa;
use aigw::llm::{Extra, Usage};
use serde_json::Value;

/// Translates an Anthropic Messages request into an OpenAI chat request.
pub fn anthropic_request_to_chat(
    req: &an::MessagesRequest,
    opts: &TranslateOptions,
) -> Result<oa::ChatCompletionRequest, TranslateError> {
    reject_unmapped(&req.extra, &[], &["service_tier"], "OpenAI-compatible")?;
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    match &req.system {
        Some(an::SystemPrompt::Text(s)) => {
            messages.push(oa::ChatMessage::text(oa::Role::System, s.clone()))
        }
        Some(an::SystemPrompt::Blocks(blocks)) => {
            for (j, b) in blocks.iter().enumerate() {
                match b {
                    an::ContentBlock::Text { text, .. } => {
                        messages.push(oa::ChatMessage::text(oa::Role::System, text.clone()))
                    }
                    other => {
                        return Err(TranslateError::unsupported(
                            format!("system[{j}]"),
                            format!("system block `{}` is not text", block_type(other)),
                        ))
                    }
                }
            }
        }
        None => {}
    }
    for (i, m) in req.messages.iter().enumerate() {
        match (m.role, &m.content) {
            (an::Role::User, an::Content::Text(s)) => {
                messages.push(oa::ChatMessage::text(oa::Role::User, s.clone()))
            }
            (an::Role::Assistant, an::Content::Text(s)) => {
                messages.push(oa::ChatMessage::text(oa::Role::Assistant, s.clone()))
            }
            (an::Role::User, an::Content::Blocks(blocks)) => user_blocks(blocks, i, &mut messages)?,
            (an::Role::Assistant, an::Content::Blocks(blocks)) => {
                messages.push(assistant_blocks(blocks, i)?)
            }
        }
    }

    let tools = map_indexed(req.tools.as_deref(), |(i, t)| {
        if let Some(kind) = &t.kind {
            if kind != "custom" {
                return Err(TranslateError::unsupported(
                    format!("tools[{i}]"),
                    format!("server tool `{kind}` cannot be run by an OpenAI-compatible upstream"),
                ));
            }
        }
        Ok(oa::Tool {
            kind: "function".into(),
            function: oa::FunctionDef {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: t.input_schema.clone(),
                strict: None,
            },
        })
    })?;
    let (tool_choice, parallel) = match &req.tool_choice {
        None => (None, None),
        Some(an::ToolChoice::Auto {
            disable_parallel_tool_use: d,
        }) => (Some(oa::ToolChoice::Mode("auto".into())), *d),
        Some(an::ToolChoice::Any {
            disable_parallel_tool_use: d,
        }) => (Some(oa::ToolChoice::Mode("required".into())), *d),
        Some(an::ToolChoice::None {}) => (Some(oa::ToolChoice::Mode("none".into())), None),
        Some(an::ToolChoice::Tool {
            name,
            disable_parallel_tool_use: d,
        }) => (
            Some(oa::ToolChoice::Named(oa::NamedToolChoice {
                kind: "function".into(),
                function: oa::FunctionName { name: name.clone() },
            })),
            *d,
        ),
    };
    let reasoning_effort = match &req.thinking {
        Some(t) if t.kind == "enabled" => Some(
            opts.effort_for_budget(t.budget_tokens.unwrap_or(0))
                .to_string(),
        ),
        _ => None,
    };
    let mut extra = Extra::new();
    if let Some(k) = req.top_k {
        extra.insert("top_k".into(), k.into());
    }
    let stream = req.stream == Some(true);
    let (max_tokens, max_completion_tokens) = if opts.use_max_completion_tokens {
        (None, req.max_tokens)
    } else {
        (req.max_tokens, None)
    };
    Ok(oa::ChatCompletionRequest {
        model: req.model.clone(),
        messages,
        stream: req.stream,
        stream_options: stream.then(|| oa::StreamOptions {
            include_usage: Some(true),
            extra: Extra::new(),
        }),
        max_tokens,
        max_completion_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        n: None,
        stop: req.stop_sequences.clone().map(oa::Stop::Many),
        tools,
        tool_choice,
        parallel_tool_calls: parallel.filter(|d| *d).map(|_| false),
        reasoning_effort,
        response_format: None,
        user: req
            .metadata
            .as_ref()
            .and_then(|m| m.get("user_id"))
            .and_then(Value::as_str)
            .map(str::to_string),
        extra,
    })
}

fn user_blocks(
    blocks: &[an::ContentBlock],
    i: usize,
    out: &mut Vec<oa::ChatMessage>,
) -> Result<(), TranslateError> {
    let mut parts: Vec<oa::ContentPart> = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        match b {
            an::ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
                ..
            } => {
                if !parts.is_empty() {
                    out.push(user_parts(std::mem::take(&mut parts)));
                }
                let mut content = match content {
                    None => oa::MessageContent::Text(String::new()),
                    Some(an::Content::Text(s)) => oa::MessageContent::Text(s.clone()),
                    Some(an::Content::Blocks(inner)) => oa::MessageContent::Parts(
                        inner
                            .iter()
                            .map(|b| match b {
                                an::ContentBlock::Text { text, .. } => Ok(oa::ContentPart::Text { text: text.clone() }),
                                other => Err(TranslateError::unsupported(
                                    param(),
                                    format!("tool results with `{}` blocks cannot be sent to an OpenAI-compatible upstream", block_type(other)),
                                )),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                };
                if *is_error == Some(true) {
                    content = match content {
                        oa::MessageContent::Text(s) => {
                            oa::MessageContent::Text(format!("Error: {s}"))
                        }
                        oa::MessageContent::Parts(mut p) => {
                            p.insert(
                                0,
                                oa::ContentPart::Text {
                                    text: "Error: ".into(),
                                },
                            );
                            oa::MessageContent::Parts(p)
                        }
                    };
                }
                let mut m = oa::ChatMessage::text(oa::Role::Tool, String::new());
                m.content = Some(content);
                m.tool_call_id = Some(tool_use_id.clone());
                out.push(m);
            }
            an::ContentBlock::Text { text, .. } => {
                parts.push(oa::ContentPart::Text { text: text.clone() })
            }
            an::ContentBlock::Image { source, .. } => {
                let url = match source {
                    an::ImageSource::Base64 { media_type, data } => data_url(media_type, data),
                    an::ImageSource::Url { url } => url.clone(),
                    an::ImageSource::Other(_) => {
                        return Err(TranslateError::unsupported(
                            param(),
                            "only base64 and url image sources can be translated",
                        ))
                    }
                };
                parts.push(oa::ContentPart::ImageUrl {
                    image_url: oa::ImageUrl { url, detail: None },
                });
            }
            an::ContentBlock::Other(v) if is_base64_pdf(v) => {
                let data = v["source"]["data"].as_str().unwrap_or_default();
                parts.push(oa::ContentPart::File {
                    file: serde_json::json!({"file_data": data_url("application/pdf", data), "filename": "document.pdf"}),
                });
            }
            other => {
                return Err(TranslateError::unsupported(
                    param(),
                    format!(
                        "`{}` blocks cannot be sent to an OpenAI-compatible upstream",
                        block_type(other)
                    ),
                ))
            }
        }
    }
    if !parts.is_empty() {
        out.push(user_parts(parts));
    }
    Ok(())
}

fn is_base64_pdf(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("document")
        && v["source"]["type"] == "base64"
        && v["source"]["media_type"] == "application/pdf"
}

fn user_parts(parts: Vec<oa::ContentPart>) -> oa::ChatMessage {
    let mut m = oa::ChatMessage::text(oa::Role::User, String::new());
    m.content = Some(oa::MessageContent::Parts(parts));
    m
}

fn assistant_blocks(
    blocks: &[an::ContentBlock],
    i: usize,
) -> Result<oa::ChatMessage, TranslateError> {
    let mut text: Option<String> = None;
    let mut calls = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        match b {
            an::ContentBlock::Text { text: t, .. } => {
                text.get_or_insert_with(String::new).push_str(t)
            }
            an::ContentBlock::ToolUse {
                id, name, input, ..
            } => calls.push(tool_use_call(id, name, input)),
            an::ContentBlock::Thinking { .. } | an::ContentBlock::RedactedThinking { .. } => {}
            other => {
                return Err(TranslateError::unsupported(
                    format!("messages[{i}].content[{j}]"),
                    format!(
                        "`{}` blocks cannot be sent to an OpenAI-compatible upstream",
                        block_type(other)
                    ),
                ))
            }
        }
    }
    let mut m = oa::ChatMessage::text(oa::Role::Assistant, String::new());
    m.content = text.map(oa::MessageContent::Text);
    m.tool_calls = (!calls.is_empty()).then_some(calls);
    Ok(m)
}

/// Translates a non-streamed OpenAI chat completion into an Anthropic message (first choice).
pub fn chat_response_to_anthropic(
    resp: &oa::ChatCompletion,
) -> Result<an::MessagesResponse, TranslateError> {
    let choice = first_choice(resp)?;
    let m = &choice.message;
    let mut content = Vec::new();
    if let Some(r) = m.reasoning_content.as_ref().filter(|r| !r.is_empty()) {
        content.push(an::ContentBlock::Thinking {
            thinking: r.clone(),
            signature: None,
        });
    }
    let text = m.joined_text();
    if !text.is_empty() {
        content.push(an::ContentBlock::Text {
            text,
            cache_control: None,
        });
    }
    if let Some(refusal) = m.refusal.as_ref().filter(|r| !r.is_empty()) {
        content.push(an::ContentBlock::Text {
            text: refusal.clone(),
            cache_control: None,
        });
    }
    for c in m.tool_calls.as_deref().unwrap_or_default() {
        let input =
            crate::common::parse_arguments(&c.function.arguments, String::new).map_err(|e| {
                TranslateError::upstream(format!(
                    "upstream tool call `{}`: {}",
                    c.function.name, e.message
                ))
            })?;
        content.push(an::ContentBlock::ToolUse {
            id: aigw::llm::stream::prefixed_id("toolu_", &c.id, "call"),
            name: c.function.name.clone(),
            input,
            cache_control: None,
        });
    }
    let stop = if m.refusal.as_ref().is_some_and(|r| !r.is_empty()) {
        "refusal"
    } else {
        openai_finish_to_anthropic(choice.finish_reason.as_deref().unwrap_or("stop"))
    };
    Ok(an::MessagesResponse {
        id: aigw::llm::stream::prefixed_id("msg_", &resp.id, "answer"),
        kind: "message".into(),
        role: an::Role::Assistant,
        content,
        model: resp.model.clone(),
        stop_reason: Some(stop.to_string()),
        stop_sequence: None,
        usage: resp
            .usage
            .as_ref()
            .map(|u| Usage::from_openai(u).to_anthropic())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn anthropic_request_maps_to_chat() {
        let r: an::MessagesRequest = serde_json::from_value(json!({
            "model": "gpt-4o",
            "max_tokens": 800,
            "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Look:"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "Calling."},
                    {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "found"}]},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": true},
                    {"type": "text", "text": "and now?"}]}
            ],
            "tools": [{"name": "lookup", "description": "Look up", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "lookup", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 6000},
            "stop_sequences": ["###"],
            "top_k": 40,
            "stream": true,
            "metadata": {"user_id": "u1"}
        }))
        .unwrap();
        let c = anthropic_request_to_chat(&r, &TranslateOptions::default()).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        let msgs = v["messages"].as_array().unwrap();
        assert_eq!(msgs[0], json!({"role": "system", "content": "Be terse."}));
        assert_eq!(
            msgs[1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,iVBO"
        );
        assert_eq!(msgs[2]["content"], "Calling.");
        assert!(msgs[2].get("reasoning_content").is_none());
        assert_eq!(
            msgs[2]["tool_calls"][0]["function"]["arguments"],
            "{\"q\":\"x\"}"
        );
        assert_eq!(
            msgs[3],
            json!({"role": "tool", "tool_call_id": "toolu_1", "content": [{"type": "text", "text": "found"}]})
        );
        assert_eq!(msgs[4]["content"], "Error: boom");
        assert_eq!(
            msgs[5],
            json!({"role": "user", "content": [{"type": "text", "text": "and now?"}]})
        );
        assert_eq!(
            v["tool_choice"],
            json!({"type": "function", "function": {"name": "lookup"}})
        );
        assert_eq!(v["parallel_tool_calls"], false);
        assert_eq!(v["reasoning_effort"], "medium");
        assert_eq!(v["stop"], json!(["###"]));
        assert_eq!(v["top_k"], 40);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["user"], "u1");
        assert_eq!(v["max_tokens"], 800);
    }

    #[test]
    fn server_tools_and_unknown_blocks_are_rejected() {
        // Each body with the `param` its error names (`None`: any error).
        let cases = [
            (
                json!({
                    "model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
                    "tools": [{"type": "web_search_20250305", "name": "web_search"}]
                }),
                Some("tools[0]"),
            ),
            (
                json!({
                    "model": "m", "max_tokens": 10,
                    "messages": [{"role": "user", "content": [{"type": "search_result", "source": "x", "title": "t", "content": []}]}]
                }),
                Some("messages[0].content[0]"),
            ),
            (
                json!({
                    "model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "mcp_servers": [{"url": "x"}]
                }),
                None,
            ),
        ];
        for (body, param) in cases {
            let r: an::MessagesRequest = serde_json::from_value(body).unwrap();
            let e = anthropic_request_to_chat(&r, &TranslateOptions::default()).unwrap_err();
            if param.is_some() {
                assert_eq!(e.param.as_deref(), param);
            }
        }
    }

    #[test]
    fn chat_response_maps_to_anthropic() {
        let body = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"deepseek-reasoner",
          "choices":[{"index":0,"message":{"role":"assistant","content":"Sure.","reasoning_content":"think",
             "tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":"tool_calls"}],
          "usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":60}}}"#;
        let resp: oa::ChatCompletion = serde_json::from_str(body).unwrap();
        let a = chat_response_to_anthropic(&resp).unwrap();
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(
            v["content"][0],
            json!({"type": "thinking", "thinking": "think"})
        );
        assert_eq!(v["content"][1], json!({"type": "text", "text": "Sure."}));
        assert_eq!(
            v["content"][2],
            json!({"type": "tool_use", "id": "toolu_call_1", "name": "f", "input": {"a": 1}})
        );
        assert_eq!(
            v["id"], "msg_chatcmpl-1",
            "Anthropic clients get message ids in their shape, as in streams"
        );
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!(v["usage"]["input_tokens"], 40);
        assert_eq!(v["usage"]["cache_read_input_tokens"], 60);
        assert_eq!(v["usage"]["output_tokens"], 20);
        for (finish, stop) in [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("content_filter", "refusal"),
        ] {
            let mut r = resp.clone();
            r.choices[0].finish_reason = Some(finish.into());
            r.choices[0].message.tool_calls = None;
            assert_eq!(
                chat_response_to_anthropic(&r)
                    .unwrap()
                    .stop_reason
                    .as_deref(),
                Some(stop)
            );
        }
        let mut bad = resp;
        if let Some(calls) = bad.choices[0].message.tool_calls.as_mut() {
            calls[0].function.arguments = "not json".into();
        }
        assert_eq!(chat_response_to_anthropic(&bad).unwrap_err().status, 502);
    }
}
