//! OpenAI chat ↔ Bedrock Converse (`POST /model/{modelId}/converse`, and `converse-stream`,
//! whose events [`aigw::llm::stream::BedrockDecoder`] translates).
//!
//! Request mapping notes:
//! - `system`/`developer` messages → `system` text blocks (hoisted).
//! - Consecutive `tool` messages → one user message of `toolResult` blocks.
//! - `data:` images → `image` blocks (`png`/`jpeg`/`gif`/`webp`, bytes stay base64 in JSON);
//!   base64 PDF `file_data` → a `document` block.
//! - Tools → `toolConfig.tools[].toolSpec` (`inputSchema.json`); `tool_choice` `auto`/
//!   `required`/named → `auto`/`any`/`tool`.
//! - `max_tokens`, `temperature`, `top_p`, `stop` → `inferenceConfig`; `reasoning_effort` →
//!   `additionalModelRequestFields.thinking` (Anthropic models on Bedrock); `top_k` →
//!   `additionalModelRequestFields.top_k`.
//! - `reasoning_content` of earlier assistant turns is not forwarded (needs a signature).
//!
//! Rejected with a 400: `http(s)` image URLs (Bedrock only takes bytes or S3), audio, other
//! files, `tool_choice: "none"` while tools are given (Converse has no such mode), `n` > 1,
//! `response_format` other than text, message `name`, `parallel_tool_calls`, unknown fields
//! except ignorable hints.
//!
//! Response: `text` → `content`, `reasoningContent.reasoningText` → `reasoning_content`,
//! `toolUse` → `tool_calls`; `stopReason` end_turn/stop_sequence → `stop`, max_tokens →
//! `length`, tool_use → `tool_calls`, guardrail_intervened/content_filtered →
//! `content_filter`. Usage follows Bedrock's counting (see [`aigw::llm::usage`]).

use crate::common::{
    bedrock_stop_to_openai, function_tool, parse_arguments, reject_unmapped,
    IGNORABLE_OPENAI_FIELDS,
};
use crate::error::TranslateError;
use crate::media::{image_format, is_http_url, parse_data_url};
use crate::options::TranslateOptions;
use crate::providers::anthropic::system_texts;
use aigw::llm::openai as oa;
use aigw::llm::usage::{extract, UsageProtocol};
use aigw::llm::Extra;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Converse request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest {
    /// Conversation.
    pub messages: Vec<Message>,
    /// System prompt blocks (`{"text": ...}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<Value>,
    /// Sampling configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_config: Option<InferenceConfig>,
    /// Tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<Value>,
    /// Model-specific fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_model_request_fields: Option<Value>,
}

/// A Converse message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// Content blocks (`text`, `image`, `document`, `toolUse`, `toolResult`,
    /// `reasoningContent`), raw.
    pub content: Vec<Value>,
}

/// `inferenceConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig {
    /// Output token limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
}

/// Converse response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse {
    /// `{"message": {...}}`.
    pub output: ConverseOutput,
    /// Why generation stopped.
    #[serde(default)]
    pub stop_reason: String,
    /// Usage, raw.
    #[serde(default)]
    pub usage: Option<Value>,
    /// Fields not modelled (`metrics`...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `output` of a Converse response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseOutput {
    /// The assistant message.
    pub message: Message,
}

/// Translates an OpenAI chat request into a Converse request (the model id goes in the path).
pub fn chat_request_to_converse(
    req: &oa::ChatCompletionRequest,
    opts: &TranslateOptions,
) -> Result<ConverseRequest, TranslateError> {
    reject_unmapped(&req.extra, &["top_k"], IGNORABLE_OPENAI_FIELDS, "bedrock")?;
    if req.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::unsupported(
            "n",
            "bedrock converse returns a single choice",
        ));
    }
    if req.parallel_tool_calls.is_some() {
        return Err(TranslateError::unsupported(
            "parallel_tool_calls",
            "bedrock converse has no parallel tool call setting",
        ));
    }
    if let Some(rf) = &req.response_format {
        if rf.get("type").and_then(Value::as_str) != Some("text") {
            return Err(TranslateError::unsupported(
                "response_format",
                "structured output cannot be translated for bedrock converse",
            ));
        }
    }
    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::new();
    let mut last_was_tool = false;
    for (i, m) in req.messages.iter().enumerate() {
        if m.name.is_some() {
            return Err(TranslateError::unsupported(
                format!("messages[{i}].name"),
                "bedrock has no participant names",
            ));
        }
        let is_tool = m.role == oa::Role::Tool;
        match m.role {
            oa::Role::System | oa::Role::Developer => system.extend(
                system_texts(m, i)?
                    .into_iter()
                    .map(|t| json!({ "text": t })),
            ),
            oa::Role::User => {
                let content = match &m.content {
                    Some(oa::MessageContent::Text(s)) => vec![json!({ "text": s })],
                    Some(oa::MessageContent::Parts(parts)) => parts
                        .iter()
                        .enumerate()
                        .map(|(j, p)| part_to_block(p, j, || format!("messages[{i}].content[{j}]")))
                        .collect::<Result<_, _>>()?,
                    None => {
                        return Err(TranslateError::invalid(
                            format!("messages[{i}].content"),
                            "user message without content",
                        ))
                    }
                };
                messages.push(Message {
                    role: "user".into(),
                    content,
                });
            }
            oa::Role::Assistant => {
                let mut content = Vec::new();
                let text = m.joined_text();
                if !text.is_empty() {
                    content.push(json!({ "text": text }));
                }
                for (j, c) in m.tool_calls.iter().flatten().enumerate() {
                    let input = parse_arguments(&c.function.arguments, || {
                        format!("messages[{i}].tool_calls[{j}].function.arguments")
                    })?;
                    content.push(json!({"toolUse": {"toolUseId": c.id, "name": c.function.name, "input": input}}));
                }
                messages.push(Message {
                    role: "assistant".into(),
                    content,
                });
            }
            oa::Role::Tool => {
                let id = m.tool_call_id.as_deref().ok_or_else(|| {
                    TranslateError::invalid(
                        format!("messages[{i}].tool_call_id"),
                        "tool messages need tool_call_id",
                    )
                })?;
                let text = m.joined_text();
                let block = json!({"toolResult": {"toolUseId": id, "content": [{"text": text}]}});
                match messages.last_mut() {
                    Some(last) if last_was_tool => last.content.push(block),
                    _ => messages.push(Message {
                        role: "user".into(),
                        content: vec![block],
                    }),
                }
            }
            oa::Role::Function => {
                return Err(TranslateError::unsupported(
                    format!("messages[{i}].role"),
                    "the legacy `function` role is not supported",
                ))
            }
        }
        last_was_tool = is_tool;
    }

    let tool_config = match &req.tools {
        Some(tools) if !tools.is_empty() => {
            let specs = tools
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let f = function_tool(i, t)?;
                    let mut spec = json!({
                        "name": f.name,
                        "inputSchema": {"json": f.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}}))},
                    });
                    if let (Some(d), Some(obj)) = (&f.description, spec.as_object_mut()) {
                        obj.insert("description".into(), json!(d));
                    }
                    Ok(json!({ "toolSpec": spec }))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let choice = match &req.tool_choice {
                None => None,
                Some(oa::ToolChoice::Mode(m)) => match m.as_str() {
                    "auto" => Some(json!({"auto": {}})),
                    "required" => Some(json!({"any": {}})),
                    "none" => {
                        return Err(TranslateError::unsupported(
                            "tool_choice",
                            "bedrock converse has no `none` tool choice; omit the tools",
                        ))
                    }
                    other => {
                        return Err(TranslateError::invalid(
                            "tool_choice",
                            format!("unknown tool_choice `{other}`"),
                        ))
                    }
                },
                Some(oa::ToolChoice::Named(n)) => Some(json!({"tool": {"name": n.function.name}})),
                Some(oa::ToolChoice::Other(_)) => {
                    return Err(TranslateError::unsupported(
                        "tool_choice",
                        "this tool_choice shape cannot be translated for bedrock",
                    ))
                }
            };
            let mut tc = json!({ "tools": specs });
            if let (Some(c), Some(obj)) = (choice, tc.as_object_mut()) {
                obj.insert("toolChoice".into(), c);
            }
            Some(tc)
        }
        _ => None,
    };

    let mut additional = serde_json::Map::new();
    if let Some(effort) = &req.reasoning_effort {
        let budget = opts.budget_for_effort(effort).ok_or_else(|| {
            TranslateError::invalid(
                "reasoning_effort",
                format!("unknown reasoning_effort `{effort}`"),
            )
        })?;
        additional.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    if let Some(k) = req.extra.get("top_k").filter(|v| !v.is_null()) {
        additional.insert("top_k".into(), k.clone());
    }
    let mut max_tokens = req.output_limit();
    if let Some(budget) = additional
        .get("thinking")
        .and_then(|t| t.get("budget_tokens"))
        .and_then(Value::as_u64)
    {
        let budget = budget as u32;
        if max_tokens.is_some_and(|m| m <= budget) {
            return Err(TranslateError::invalid(
                "max_tokens",
                "max_tokens must exceed the thinking budget",
            ));
        }
        max_tokens.get_or_insert(budget.saturating_add(opts.default_max_tokens));
    }
    Ok(ConverseRequest {
        messages,
        system,
        inference_config: Some(InferenceConfig {
            max_tokens: Some(max_tokens.unwrap_or(opts.default_max_tokens)),
            temperature: req.temperature,
            top_p: req.top_p,
            stop_sequences: req.stop.as_ref().map(oa::Stop::to_vec),
        }),
        tool_config,
        additional_model_request_fields: (!additional.is_empty())
            .then_some(Value::Object(additional)),
    })
}

fn part_to_block(
    p: &oa::ContentPart,
    j: usize,
    param: impl Fn() -> String,
) -> Result<Value, TranslateError> {
    match p {
        oa::ContentPart::Text { text } => Ok(json!({ "text": text })),
        oa::ContentPart::ImageUrl { image_url } => match parse_data_url(&image_url.url) {
            Some(d) => {
                let format = image_format(d.mime).ok_or_else(|| {
                    TranslateError::unsupported(
                        param(),
                        format!("bedrock does not accept images of type {}", d.mime),
                    )
                })?;
                Ok(json!({"image": {"format": format, "source": {"bytes": d.data}}}))
            }
            None if is_http_url(&image_url.url) => Err(TranslateError::unsupported(
                param(),
                "bedrock cannot fetch http(s) image URLs; send the image as a base64 data URL",
            )),
            None => Err(TranslateError::invalid(
                param(),
                "image_url must be a base64 data URL",
            )),
        },
        oa::ContentPart::File { file } => match file
            .get("file_data")
            .and_then(Value::as_str)
            .and_then(parse_data_url)
        {
            Some(d) if d.mime == "application/pdf" => Ok(
                json!({"document": {"format": "pdf", "name": format!("document-{j}"), "source": {"bytes": d.data}}}),
            ),
            _ => Err(TranslateError::unsupported(
                param(),
                "only base64 PDF `file_data` can be sent to bedrock",
            )),
        },
        oa::ContentPart::InputAudio { .. } => Err(TranslateError::unsupported(
            param(),
            "bedrock converse does not accept audio input",
        )),
        oa::ContentPart::Refusal { .. } => Err(TranslateError::invalid(
            param(),
            "refusal parts are only valid in assistant messages",
        )),
        oa::ContentPart::Other(v) => Err(TranslateError::unsupported(
            param(),
            format!(
                "content part type `{}` cannot be translated for bedrock",
                v.get("type").and_then(Value::as_str).unwrap_or("?")
            ),
        )),
    }
}

/// Translates a Converse response into an OpenAI chat completion.
pub fn converse_response_to_chat(
    resp: &ConverseResponse,
    id: &str,
    model: &str,
    created: u64,
) -> Result<oa::ChatCompletion, TranslateError> {
    let mut text: Option<String> = None;
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for b in &resp.output.message.content {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(tu) = b.get("toolUse") {
            calls.push(oa::ToolCall::function(
                tu.get("toolUseId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                tu.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                tu.get("input")
                    .map(Value::to_string)
                    .unwrap_or_else(|| "{}".into()),
            ));
        } else if let Some(rc) = b.get("reasoningContent") {
            if let Some(t) = rc
                .get("reasoningText")
                .and_then(|r| r.get("text"))
                .and_then(Value::as_str)
            {
                reasoning.push_str(t);
            }
        } else {
            return Err(TranslateError::upstream(
                "bedrock returned a content block that chat completions cannot carry",
            ));
        }
    }
    let mut m = oa::ChatMessage::text(oa::Role::Assistant, String::new());
    m.content = match text {
        Some(t) => Some(oa::MessageContent::Text(t)),
        None if calls.is_empty() => Some(oa::MessageContent::Text(String::new())),
        None => None,
    };
    m.tool_calls = (!calls.is_empty()).then_some(calls);
    m.reasoning_content = (!reasoning.is_empty()).then_some(reasoning);
    let usage = resp
        .usage
        .as_ref()
        .and_then(|u| {
            extract(
                UsageProtocol::Bedrock,
                json!({ "usage": u }).to_string().as_bytes(),
            )
        })
        .map(|u| u.to_openai());
    Ok(oa::ChatCompletion {
        id: id.to_string(),
        object: "chat.completion".into(),
        created,
        model: model.to_string(),
        choices: vec![oa::Choice {
            index: 0,
            message: m,
            finish_reason: Some(bedrock_stop_to_openai(&resp.stop_reason).to_string()),
            logprobs: None,
        }],
        usage,
        system_fingerprint: None,
        extra: Extra::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_maps_to_converse() {
        let r: oa::ChatCompletionRequest = serde_json::from_value(json!({
            "model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklG"}}]},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "tooluse_1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
                {"role": "tool", "tool_call_id": "tooluse_1", "content": "42"},
                {"role": "user", "content": "ok"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "description": "F", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "max_tokens": 3000, "temperature": 0.5, "stop": ["x"], "reasoning_effort": "minimal"
        }))
        .unwrap();
        let c = chat_request_to_converse(&r, &TranslateOptions::default()).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["system"], json!([{"text": "Be brief."}]));
        assert_eq!(
            v["messages"][0]["content"][1],
            json!({"image": {"format": "webp", "source": {"bytes": "UklG"}}})
        );
        assert_eq!(
            v["messages"][1]["content"],
            json!([{"toolUse": {"toolUseId": "tooluse_1", "name": "f", "input": {"x": 1}}}])
        );
        assert_eq!(
            v["messages"][2]["content"][0],
            json!({"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "42"}]}})
        );
        assert_eq!(
            v["messages"][3],
            json!({"role": "user", "content": [{"text": "ok"}]})
        );
        assert_eq!(
            v["toolConfig"]["tools"][0],
            json!({"toolSpec": {"name": "f", "description": "F", "inputSchema": {"json": {"type": "object"}}}})
        );
        assert_eq!(v["toolConfig"]["toolChoice"], json!({"any": {}}));
        assert_eq!(
            v["inferenceConfig"],
            json!({"maxTokens": 3000, "temperature": 0.5, "stopSequences": ["x"]})
        );
        assert_eq!(
            v["additionalModelRequestFields"],
            json!({"thinking": {"type": "enabled", "budget_tokens": 1024}})
        );

        for (body, param) in [
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://a/b.png"}}]}]}),
                "messages[0].content[0]",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"}),
                "tool_choice",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 3}),
                "n",
            ),
        ] {
            let r: oa::ChatCompletionRequest = serde_json::from_value(body).unwrap();
            assert_eq!(
                chat_request_to_converse(&r, &TranslateOptions::default())
                    .unwrap_err()
                    .param
                    .as_deref(),
                Some(param)
            );
        }
    }

    #[test]
    fn response_maps_to_chat() {
        let resp: ConverseResponse = serde_json::from_str(
            r#"{"output":{"message":{"role":"assistant","content":[
                 {"reasoningContent":{"reasoningText":{"text":"Let me see.","signature":"sig"}}},
                 {"text":"Result:"},
                 {"toolUse":{"toolUseId":"tooluse_9","name":"calc","input":{"expr":"1+1"}}}]}},
               "stopReason":"tool_use",
               "usage":{"inputTokens":10,"outputTokens":5,"totalTokens":15},
               "metrics":{"latencyMs":300}}"#,
        )
        .unwrap();
        let c = converse_response_to_chat(&resp, "chatcmpl-b", "claude", 3).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "Result:");
        assert_eq!(
            v["choices"][0]["message"]["reasoning_content"],
            "Let me see."
        );
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["id"],
            "tooluse_9"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["usage"]["prompt_tokens"], 10);
        assert_eq!(v["usage"]["total_tokens"], 15);
        let mut r = resp;
        r.stop_reason = "guardrail_intervened".into();
        assert_eq!(
            converse_response_to_chat(&r, "i", "m", 0).unwrap().choices[0]
                .finish_reason
                .as_deref(),
            Some("content_filter")
        );
    }
}
