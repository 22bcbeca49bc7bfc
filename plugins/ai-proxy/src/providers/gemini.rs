//! OpenAI chat ↔ Gemini `generateContent`.
//!
//! Request (OpenAI → Gemini) mapping notes:
//! - `system`/`developer` messages → `systemInstruction` (text parts, hoisted).
//! - `assistant` → role `model`; tool calls → `functionCall` parts (with the call `id`).
//! - Consecutive `tool` messages → one `user` turn of `functionResponse` parts; the function
//!   name is looked up from the assistant tool call with the same id; the result text is sent
//!   as `{"content": <text>}` (Gemini wants an object).
//! - `data:` images and `input_audio` → `inlineData`; `gs://` URLs and Gemini Files API URLs
//!   → `fileData`; base64 `file_data` → `inlineData`.
//! - Tools → `functionDeclarations` (schema in `parametersJsonSchema` or `parameters`, see
//!   [`TranslateOptions::gemini_json_schema`]); `tool_choice` → `toolConfig.functionCallingConfig`
//!   (`auto`→AUTO, `none`→NONE, `required`→ANY, named → ANY + `allowedFunctionNames`).
//! - `max_tokens`/`max_completion_tokens` → `maxOutputTokens`, `stop` → `stopSequences`,
//!   `n` → `candidateCount`, `seed`, `presence_penalty`, `frequency_penalty`, `top_k` →
//!   their generationConfig fields; `response_format` `json_object` → JSON MIME type,
//!   `json_schema` → `responseJsonSchema`; `reasoning_effort` → `thinkingConfig`
//!   (budget from [`TranslateOptions`], thoughts included so they come back as
//!   `reasoning_content`).
//! - `reasoning_content` of earlier assistant turns is not sent (Gemini needs its own thought
//!   signatures).
//!
//! Rejected with a 400: plain `http(s)` image URLs (Gemini cannot fetch them; upload them or
//! send base64), file ids, unknown part types, message `name`, the `function` role,
//! `parallel_tool_calls: false` (no Gemini equivalent), `logprobs`, unknown tool types and
//! `tool_choice` shapes, other unmodelled fields except ignorable hints.
//!
//! Response (Gemini → OpenAI): text parts → `content`, `thought: true` parts →
//! `reasoning_content`, `functionCall` parts → `tool_calls`; `finishReason` STOP → `stop`
//! (`tool_calls` when calls were made), MAX_TOKENS → `length`, SAFETY/RECITATION/BLOCKLIST/
//! PROHIBITED_CONTENT/SPII → `content_filter`; a blocked prompt (`promptFeedback.blockReason`,
//! no candidates) → one empty choice with `content_filter`. Inline binary output is a 502.

use super::{
    bad_answer, to_body, Answer, AnswerContext, Body, Endpoint, PathArgs, Protocol, Upstream,
};
use crate::common::{
    function_tool, gemini_finish_to_openai, parse_arguments, reject_unmapped,
    IGNORABLE_OPENAI_FIELDS,
};
use crate::error::TranslateError;
use crate::media::{data_url, is_http_url, mime_from_extension, parse_data_url};
use crate::options::TranslateOptions;
use crate::providers::anthropic::system_texts;
use aigw::llm::gemini as gm;
use aigw::llm::openai as oa;
use aigw::llm::stream::{Decoder, GeminiDecoder};
use aigw::llm::UsageProtocol;
use aigw::llm::{Extra, Usage};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Translates an OpenAI chat request into a Gemini `generateContent` request. The model goes in
/// the URL (see [`crate::providers`]), not the body.
pub fn chat_request_to_gemini(
    req: &oa::ChatCompletionRequest,
    opts: &TranslateOptions,
) -> Result<gm::GenerateContentRequest, TranslateError> {
    reject_unmapped(
        &req.extra,
        &["top_k", "presence_penalty", "frequency_penalty", "seed"],
        IGNORABLE_OPENAI_FIELDS,
        "gemini",
    )?;
    if req.parallel_tool_calls == Some(false) {
        return Err(TranslateError::unsupported(
            "parallel_tool_calls",
            "gemini cannot be told to make one call at a time",
        ));
    }
    let mut system = Vec::new();
    let mut contents: Vec<gm::Content> = Vec::new();
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    let mut last_was_tool = false;
    for (i, m) in req.messages.iter().enumerate() {
        if m.name.is_some() {
            return Err(TranslateError::unsupported(
                format!("messages[{i}].name"),
                "gemini has no participant names",
            ));
        }
        let is_tool = m.role == oa::Role::Tool;
        match m.role {
            oa::Role::System | oa::Role::Developer => {
                system.extend(system_texts(m, i)?.into_iter().map(gm::Part::text))
            }
            oa::Role::User => {
                let parts = match &m.content {
                    Some(oa::MessageContent::Text(s)) => vec![gm::Part::text(s.clone())],
                    Some(oa::MessageContent::Parts(parts)) => parts
                        .iter()
                        .enumerate()
                        .map(|(j, p)| part_to_gemini(p, || format!("messages[{i}].content[{j}]")))
                        .collect::<Result<_, _>>()?,
                    None => {
                        return Err(TranslateError::invalid(
                            format!("messages[{i}].content"),
                            "user message without content",
                        ))
                    }
                };
                contents.push(gm::Content {
                    role: Some("user".into()),
                    parts,
                });
            }
            oa::Role::Assistant => {
                let mut parts = Vec::new();
                match &m.content {
                    Some(c) => {
                        let text = assistant_text(c, i)?;
                        if !text.is_empty() || m.tool_calls.is_none() {
                            parts.push(gm::Part::text(text));
                        }
                    }
                    None if m.tool_calls.is_none() => parts.push(gm::Part::text(String::new())),
                    None => {}
                }
                for (j, c) in m.tool_calls.iter().flatten().enumerate() {
                    call_names.insert(c.id.as_str(), c.function.name.as_str());
                    let args = parse_arguments(&c.function.arguments, || {
                        format!("messages[{i}].tool_calls[{j}].function.arguments")
                    })?;
                    parts.push(gm::Part {
                        function_call: Some(gm::FunctionCall {
                            id: Some(c.id.clone()),
                            name: c.function.name.clone(),
                            args: Some(args),
                        }),
                        ..gm::Part::default()
                    });
                }
                contents.push(gm::Content {
                    role: Some("model".into()),
                    parts,
                });
            }
            oa::Role::Tool => {
                let id = m.tool_call_id.as_deref().ok_or_else(|| {
                    TranslateError::invalid(
                        format!("messages[{i}].tool_call_id"),
                        "tool messages need tool_call_id",
                    )
                })?;
                let name = call_names.get(id).copied().ok_or_else(|| {
                    TranslateError::invalid(
                        format!("messages[{i}].tool_call_id"),
                        format!("no earlier tool call has id `{id}`"),
                    )
                })?;
                let text = match &m.content {
                    Some(c) => assistant_text(c, i)?,
                    None => String::new(),
                };
                let part = gm::Part {
                    function_response: Some(gm::FunctionResponse {
                        id: Some(id.to_string()),
                        name: name.to_string(),
                        response: json!({ "content": text }),
                    }),
                    ..gm::Part::default()
                };
                match contents.last_mut() {
                    Some(last) if last_was_tool => last.parts.push(part),
                    _ => contents.push(gm::Content {
                        role: Some("user".into()),
                        parts: vec![part],
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

    let tools = match &req.tools {
        Some(tools) if !tools.is_empty() => {
            let decls = tools
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let f = function_tool(i, t)?;
                    let (parameters, parameters_json_schema) = if opts.gemini_json_schema {
                        (None, f.parameters.clone())
                    } else {
                        (f.parameters.clone(), None)
                    };
                    Ok(gm::FunctionDeclaration {
                        name: f.name.clone(),
                        description: f.description.clone(),
                        parameters,
                        parameters_json_schema,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(vec![gm::Tool {
                function_declarations: Some(decls),
                extra: Extra::new(),
            }])
        }
        _ => None,
    };
    let tool_config = match &req.tool_choice {
        None => None,
        Some(oa::ToolChoice::Mode(m)) => {
            let mode = match m.as_str() {
                "auto" => "AUTO",
                "none" => "NONE",
                "required" => "ANY",
                other => {
                    return Err(TranslateError::invalid(
                        "tool_choice",
                        format!("unknown tool_choice `{other}`"),
                    ))
                }
            };
            Some(gm::ToolConfig {
                function_calling_config: Some(gm::FunctionCallingConfig {
                    mode: Some(mode.into()),
                    allowed_function_names: None,
                }),
            })
        }
        Some(oa::ToolChoice::Named(n)) => Some(gm::ToolConfig {
            function_calling_config: Some(gm::FunctionCallingConfig {
                mode: Some("ANY".into()),
                allowed_function_names: Some(vec![n.function.name.clone()]),
            }),
        }),
        Some(oa::ToolChoice::Other(_)) => {
            return Err(TranslateError::unsupported(
                "tool_choice",
                "this tool_choice shape cannot be translated for gemini",
            ))
        }
    };

    let mut gc = gm::GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        max_output_tokens: req.output_limit(),
        stop_sequences: req.stop.as_ref().map(oa::Stop::to_vec),
        candidate_count: req.n,
        ..gm::GenerationConfig::default()
    };
    if let Some(k) = req.extra.get("top_k").filter(|v| !v.is_null()) {
        gc.top_k = Some(
            k.as_u64()
                .and_then(|k| u32::try_from(k).ok())
                .ok_or_else(|| {
                    TranslateError::invalid("top_k", "top_k must be a positive integer")
                })?,
        );
    }
    for (from, to) in [
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = req.extra.get(from).filter(|v| !v.is_null()) {
            gc.extra.insert(to.into(), v.clone());
        }
    }
    if let Some(rf) = &req.response_format {
        match rf.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => gc.response_mime_type = Some("application/json".into()),
            Some("json_schema") => {
                let schema = rf
                    .get("json_schema")
                    .and_then(|s| s.get("schema"))
                    .ok_or_else(|| {
                        TranslateError::invalid(
                            "response_format.json_schema.schema",
                            "json_schema needs a schema",
                        )
                    })?;
                gc.response_mime_type = Some("application/json".into());
                gc.extra.insert("responseJsonSchema".into(), schema.clone());
            }
            _ => {
                return Err(TranslateError::unsupported(
                    "response_format",
                    "unknown response_format type",
                ))
            }
        }
    }
    if let Some(effort) = &req.reasoning_effort {
        let budget = opts.budget_for_effort(effort).ok_or_else(|| {
            TranslateError::invalid(
                "reasoning_effort",
                format!("unknown reasoning_effort `{effort}`"),
            )
        })?;
        gc.thinking_config = Some(gm::ThinkingConfig {
            include_thoughts: Some(true),
            thinking_budget: Some(i64::from(budget)),
            thinking_level: None,
        });
    }
    let generation_config = (gc != gm::GenerationConfig::default()).then_some(gc);

    Ok(gm::GenerateContentRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(gm::Content {
            role: None,
            parts: system,
        }),
        tools,
        tool_config,
        generation_config,
        safety_settings: None,
        cached_content: None,
        extra: Extra::new(),
    })
}

fn assistant_text(c: &oa::MessageContent, i: usize) -> Result<String, TranslateError> {
    match c {
        oa::MessageContent::Text(s) => Ok(s.clone()),
        oa::MessageContent::Parts(parts) => {
            let mut s = String::new();
            for (j, p) in parts.iter().enumerate() {
                match p {
                    oa::ContentPart::Text { text } => s.push_str(text),
                    oa::ContentPart::Refusal { refusal } => s.push_str(refusal),
                    _ => {
                        return Err(TranslateError::unsupported(
                            format!("messages[{i}].content[{j}]"),
                            "only text can be sent in assistant and tool messages to gemini",
                        ))
                    }
                }
            }
            Ok(s)
        }
    }
}

fn part_to_gemini(
    p: &oa::ContentPart,
    param: impl Fn() -> String,
) -> Result<gm::Part, TranslateError> {
    let inline = |mime: &str, data: &str| gm::Part {
        inline_data: Some(gm::Blob {
            mime_type: mime.to_string(),
            data: data.to_string(),
        }),
        ..gm::Part::default()
    };
    match p {
        oa::ContentPart::Text { text } => Ok(gm::Part::text(text.clone())),
        oa::ContentPart::ImageUrl { image_url } => {
            let url = image_url.url.as_str();
            if let Some(d) = parse_data_url(url) {
                Ok(inline(d.mime, d.data))
            } else if url.starts_with("gs://")
                || url.starts_with("https://generativelanguage.googleapis.com/")
            {
                Ok(gm::Part {
                    file_data: Some(gm::FileData {
                        mime_type: mime_from_extension(url).map(str::to_string),
                        file_uri: url.to_string(),
                    }),
                    ..gm::Part::default()
                })
            } else if is_http_url(url) {
                Err(TranslateError::unsupported(
                    param(),
                    "gemini cannot fetch http(s) image URLs; send the image as a base64 data URL",
                ))
            } else {
                Err(TranslateError::invalid(
                    param(),
                    "image_url must be a base64 data URL, gs:// or a Gemini file URL",
                ))
            }
        }
        oa::ContentPart::InputAudio { input_audio } => {
            let mime = match input_audio.format.as_str() {
                "mp3" => "audio/mp3",
                "wav" => "audio/wav",
                other => {
                    return Err(TranslateError::unsupported(
                        param(),
                        format!("audio format `{other}` is not supported"),
                    ));
                }
            };
            Ok(inline(mime, &input_audio.data))
        }
        oa::ContentPart::File { file } => match file
            .get("file_data")
            .and_then(Value::as_str)
            .and_then(parse_data_url)
        {
            Some(d) => Ok(inline(d.mime, d.data)),
            None => Err(TranslateError::unsupported(
                param(),
                "only base64 `file_data` files can be sent to gemini",
            )),
        },
        oa::ContentPart::Refusal { .. } => Err(TranslateError::invalid(
            param(),
            "refusal parts are only valid in assistant messages",
        )),
        oa::ContentPart::Other(v) => Err(TranslateError::unsupported(
            param(),
            format!(
                "content part type `{}` cannot be translated for gemini",
                v.get("type").and_then(Value::as_str).unwrap_or("?")
            ),
        )),
    }
}

/// A Gemini `functionCall` as an OpenAI tool call (arguments `{}` when it has none);
/// `fallback_id` names a call that carries no id.
fn tool_call(fc: &gm::FunctionCall, fallback_id: impl FnOnce() -> String) -> oa::ToolCall {
    oa::ToolCall::function(
        fc.id.clone().unwrap_or_else(fallback_id),
        fc.name.clone(),
        fc.args
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_else(|| "{}".into()),
    )
}

/// Translates a Gemini request back into an OpenAI chat request (for Gemini-native clients in
/// front of OpenAI-style upstreams, and to check that translations lose nothing). `model` is
/// taken from the URL.
pub fn gemini_request_to_chat(
    req: &gm::GenerateContentRequest,
    model: &str,
) -> Result<oa::ChatCompletionRequest, TranslateError> {
    let mut messages = Vec::new();
    if let Some(sys) = &req.system_instruction {
        for p in &sys.parts {
            messages.push(oa::ChatMessage::text(
                oa::Role::System,
                p.text.clone().unwrap_or_default(),
            ));
        }
    }
    for (i, c) in req.contents.iter().enumerate() {
        let role = c.role.as_deref().unwrap_or("user");
        if role == "model" {
            let mut m = oa::ChatMessage::text(oa::Role::Assistant, String::new());
            let mut text: Option<String> = None;
            let mut calls = Vec::new();
            for (j, p) in c.parts.iter().enumerate() {
                if let Some(t) = &p.text {
                    if p.thought != Some(true) {
                        text.get_or_insert_with(String::new).push_str(t);
                    }
                } else if let Some(fc) = &p.function_call {
                    calls.push(tool_call(fc, || format!("call_{i}_{j}")));
                } else {
                    return Err(TranslateError::unsupported(
                        format!("contents[{i}].parts[{j}]"),
                        "unsupported model part",
                    ));
                }
            }
            m.content = text.map(oa::MessageContent::Text);
            m.tool_calls = (!calls.is_empty()).then_some(calls);
            messages.push(m);
            continue;
        }
        let mut parts: Vec<oa::ContentPart> = Vec::new();
        let only_text = c.parts.len() == 1 && c.parts.first().is_some_and(|p| p.text.is_some());
        for (j, p) in c.parts.iter().enumerate() {
            if let Some(fr) = &p.function_response {
                let content = match fr.response.get("content") {
                    Some(Value::String(s))
                        if fr.response.as_object().is_some_and(|o| o.len() == 1) =>
                    {
                        s.clone()
                    }
                    _ => fr.response.to_string(),
                };
                let mut m = oa::ChatMessage::text(oa::Role::Tool, content);
                m.tool_call_id = Some(fr.id.clone().unwrap_or_else(|| fr.name.clone()));
                messages.push(m);
            } else if let Some(t) = &p.text {
                if only_text {
                    messages.push(oa::ChatMessage::text(oa::Role::User, t.clone()));
                } else {
                    parts.push(oa::ContentPart::Text { text: t.clone() });
                }
            } else if let Some(b) = &p.inline_data {
                if let Some(format) = b.mime_type.strip_prefix("audio/") {
                    parts.push(oa::ContentPart::InputAudio {
                        input_audio: oa::InputAudio {
                            data: b.data.clone(),
                            format: format.to_string(),
                        },
                    });
                } else {
                    parts.push(oa::ContentPart::ImageUrl {
                        image_url: oa::ImageUrl {
                            url: data_url(&b.mime_type, &b.data),
                            detail: None,
                        },
                    });
                }
            } else if let Some(f) = &p.file_data {
                parts.push(oa::ContentPart::ImageUrl {
                    image_url: oa::ImageUrl {
                        url: f.file_uri.clone(),
                        detail: None,
                    },
                });
            } else {
                return Err(TranslateError::unsupported(
                    format!("contents[{i}].parts[{j}]"),
                    "unsupported user part",
                ));
            }
        }
        if !parts.is_empty() {
            let mut m = oa::ChatMessage::text(oa::Role::User, String::new());
            m.content = Some(oa::MessageContent::Parts(parts));
            messages.push(m);
        }
    }
    let tools = req.tools.as_ref().map(|tools| {
        tools
            .iter()
            .flat_map(|t| t.function_declarations.iter().flatten())
            .map(|d| oa::Tool {
                kind: "function".into(),
                function: oa::FunctionDef {
                    name: d.name.clone(),
                    description: d.description.clone(),
                    parameters: d
                        .parameters_json_schema
                        .clone()
                        .or_else(|| d.parameters.clone()),
                    strict: None,
                },
            })
            .collect::<Vec<_>>()
    });
    let tool_choice = req
        .tool_config
        .as_ref()
        .and_then(|tc| tc.function_calling_config.as_ref())
        .and_then(
            |f| match (f.mode.as_deref(), f.allowed_function_names.as_deref()) {
                (Some("ANY"), Some([name])) => Some(oa::ToolChoice::Named(oa::NamedToolChoice {
                    kind: "function".into(),
                    function: oa::FunctionName { name: name.clone() },
                })),
                (Some("ANY"), _) => Some(oa::ToolChoice::Mode("required".into())),
                (Some("NONE"), _) => Some(oa::ToolChoice::Mode("none".into())),
                (Some("AUTO"), _) => Some(oa::ToolChoice::Mode("auto".into())),
                _ => None,
            },
        );
    let gc = req.generation_config.clone().unwrap_or_default();
    Ok(oa::ChatCompletionRequest {
        model: model.to_string(),
        messages,
        max_tokens: gc.max_output_tokens,
        temperature: gc.temperature,
        top_p: gc.top_p,
        n: gc.candidate_count,
        stop: gc.stop_sequences.map(oa::Stop::Many),
        tools,
        tool_choice,
        ..oa::ChatCompletionRequest::default()
    })
}

/// Translates a Gemini response into an OpenAI chat completion. `id` is used when Gemini gives
/// no `responseId`; `model` when it gives no `modelVersion`.
pub fn gemini_response_to_chat(
    resp: &gm::GenerateContentResponse,
    id: &str,
    model: &str,
    created: u64,
) -> Result<oa::ChatCompletion, TranslateError> {
    let mut choices = Vec::with_capacity(resp.candidates.len().max(1));
    for (ci, cand) in resp.candidates.iter().enumerate() {
        let mut text: Option<String> = None;
        let mut reasoning = String::new();
        let mut calls = Vec::new();
        for p in cand.content.iter().flat_map(|c| c.parts.iter()) {
            if let Some(t) = &p.text {
                if p.thought == Some(true) {
                    reasoning.push_str(t);
                } else {
                    text.get_or_insert_with(String::new).push_str(t);
                }
            } else if let Some(fc) = &p.function_call {
                calls.push(tool_call(fc, || format!("call_{}", calls.len())));
            } else if p.inline_data.is_some() || p.file_data.is_some() {
                return Err(TranslateError::upstream(
                    "gemini returned binary output that chat completions cannot carry",
                ));
            }
        }
        let finish = cand
            .finish_reason
            .as_deref()
            .map(|r| gemini_finish_to_openai(r, !calls.is_empty()).to_string());
        let mut m = oa::ChatMessage::text(oa::Role::Assistant, String::new());
        m.content = match text {
            Some(t) => Some(oa::MessageContent::Text(t)),
            None if calls.is_empty() => Some(oa::MessageContent::Text(String::new())),
            None => None,
        };
        m.tool_calls = (!calls.is_empty()).then_some(calls);
        m.reasoning_content = (!reasoning.is_empty()).then_some(reasoning);
        choices.push(oa::Choice {
            index: cand.index.unwrap_or(ci as u32),
            message: m,
            finish_reason: finish,
            logprobs: None,
        });
    }
    if choices.is_empty() {
        // Prompt blocked: no candidates, only promptFeedback.blockReason.
        choices.push(oa::Choice {
            index: 0,
            message: oa::ChatMessage::text(oa::Role::Assistant, String::new()),
            finish_reason: Some("content_filter".into()),
            logprobs: None,
        });
    }
    Ok(oa::ChatCompletion {
        id: resp.response_id.clone().unwrap_or_else(|| id.to_string()),
        object: "chat.completion".into(),
        created,
        model: resp
            .model_version
            .clone()
            .unwrap_or_else(|| model.to_string()),
        choices,
        usage: resp
            .usage_metadata
            .as_ref()
            .map(|u| Usage::from_gemini(u).to_openai()),
        system_fingerprint: None,
        extra: Extra::new(),
    })
}

/// The Gemini generateContent dialect.
pub struct Gemini;

impl Upstream for Gemini {
    fn protocol(&self) -> Protocol {
        Protocol::GeminiGenerateContent
    }

    fn path(&self, p: &PathArgs<'_>) -> String {
        let (base, model) = (p.base, p.model);
        match p.endpoint {
            Endpoint::Models => format!("{base}/models"),
            _ if p.stream => format!("{base}/models/{model}:streamGenerateContent?alt=sse"),
            _ => format!("{base}/models/{model}:generateContent"),
        }
    }

    fn chat_request(&self, req: &mut oa::ChatCompletionRequest, opts: &TranslateOptions) -> Body {
        to_body(&chat_request_to_gemini(req, opts)?)
    }

    fn chat_response(&self, body: &[u8], cx: AnswerContext<'_>) -> Answer {
        let r: gm::GenerateContentResponse = serde_json::from_slice(body).map_err(bad_answer)?;
        let usage = aigw::llm::usage::extract(UsageProtocol::Gemini, body);
        Ok((
            gemini_response_to_chat(&r, cx.id, cx.model, cx.created)?,
            usage,
        ))
    }

    fn stream_decoder(&self) -> Box<dyn Decoder> {
        Box::new(GeminiDecoder::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_maps_every_feature() {
        let r: oa::ChatCompletionRequest = serde_json::from_value(json!({
            "model": "gemini-2.5-flash",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What's this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                    {"type": "image_url", "image_url": {"url": "gs://bucket/cat.jpg"}},
                    {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "count", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
                {"role": "tool", "tool_call_id": "call_2", "content": "3"},
                {"role": "user", "content": "thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "additionalProperties": false}}},
                      {"type": "function", "function": {"name": "count", "description": "Counts"}}],
            "tool_choice": {"type": "function", "function": {"name": "lookup"}},
            "max_tokens": 256, "temperature": 0.2, "top_p": 0.9, "stop": ["\n\n"], "seed": 5,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
            "reasoning_effort": "low"
        }))
        .unwrap();
        let g = chat_request_to_gemini(&r, &TranslateOptions::default()).unwrap();
        let v = serde_json::to_value(&g).unwrap();
        assert_eq!(
            v["systemInstruction"],
            json!({"parts": [{"text": "Be brief."}]})
        );
        let c = v["contents"].as_array().unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(
            c[0]["parts"][1],
            json!({"inlineData": {"mimeType": "image/png", "data": "iVBO"}})
        );
        assert_eq!(
            c[0]["parts"][2],
            json!({"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/cat.jpg"}})
        );
        assert_eq!(c[0]["parts"][3]["inlineData"]["mimeType"], "audio/mp3");
        assert_eq!(c[1]["role"], "model");
        assert_eq!(
            c[1]["parts"][0],
            json!({"functionCall": {"id": "call_1", "name": "lookup", "args": {"q": "cat"}}})
        );
        assert_eq!(c[2]["role"], "user");
        assert_eq!(
            c[2]["parts"][1],
            json!({"functionResponse": {"id": "call_2", "name": "count", "response": {"content": "3"}}})
        );
        assert_eq!(c[3], json!({"role": "user", "parts": [{"text": "thanks"}]}));
        assert_eq!(
            v["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]
                ["additionalProperties"],
            false
        );
        assert_eq!(
            v["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}})
        );
        let gc = &v["generationConfig"];
        assert_eq!(gc["maxOutputTokens"], 256);
        assert_eq!(gc["stopSequences"], json!(["\n\n"]));
        assert_eq!(gc["seed"], 5);
        assert_eq!(gc["responseMimeType"], "application/json");
        assert_eq!(gc["responseJsonSchema"], json!({"type": "object"}));
        assert_eq!(
            gc["thinkingConfig"],
            json!({"includeThoughts": true, "thinkingBudget": 2048})
        );
    }

    #[test]
    fn rejects_what_gemini_cannot_take() {
        let opts = TranslateOptions::default();
        for (body, param) in [
            (
                json!({"model": "g", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.com/a.png"}}]}]}),
                "messages[0].content[0]",
            ),
            (
                json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "parallel_tool_calls": false}),
                "parallel_tool_calls",
            ),
            (
                json!({"model": "g", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
                "messages[0].tool_call_id",
            ),
            (
                json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "logprobs": true}),
                "logprobs",
            ),
        ] {
            let r: oa::ChatCompletionRequest = serde_json::from_value(body).unwrap();
            assert_eq!(
                chat_request_to_gemini(&r, &opts)
                    .unwrap_err()
                    .param
                    .as_deref(),
                Some(param)
            );
        }
    }

    #[test]
    fn response_maps_thoughts_calls_and_blocks() {
        let resp: gm::GenerateContentResponse = serde_json::from_str(
            r#"{"candidates":[{"content":{"role":"model","parts":[
                 {"text":"**Planning**","thought":true},
                 {"text":"Calling."},
                 {"functionCall":{"name":"lookup","args":{"q":"cat"}},"thoughtSignature":"c2ln"}]},
               "finishReason":"STOP","index":0}],
               "usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":10,"totalTokenCount":45,"thoughtsTokenCount":15,"cachedContentTokenCount":8},
               "modelVersion":"gemini-2.5-flash","responseId":"resp-1"}"#,
        )
        .unwrap();
        let c = gemini_response_to_chat(&resp, "fallback", "m", 7).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["id"], "resp-1");
        assert_eq!(v["model"], "gemini-2.5-flash");
        assert_eq!(v["choices"][0]["message"]["content"], "Calling.");
        assert_eq!(
            v["choices"][0]["message"]["reasoning_content"],
            "**Planning**"
        );
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"],
            json!({"name": "lookup", "arguments": "{\"q\":\"cat\"}"})
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["usage"]["prompt_tokens"], 20);
        assert_eq!(v["usage"]["completion_tokens"], 25);
        assert_eq!(v["usage"]["total_tokens"], 45);
        assert_eq!(
            v["usage"]["completion_tokens_details"]["reasoning_tokens"],
            15
        );
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 8);

        let blocked: gm::GenerateContentResponse = serde_json::from_str(
            r#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":5,"totalTokenCount":5}}"#,
        )
        .unwrap();
        let c = gemini_response_to_chat(&blocked, "id", "m", 0).unwrap();
        assert_eq!(
            c.choices[0].finish_reason.as_deref(),
            Some("content_filter")
        );
        for (reason, finish) in [
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
            ("STOP", "stop"),
        ] {
            let r: gm::GenerateContentResponse = serde_json::from_value(json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]})).unwrap();
            assert_eq!(
                gemini_response_to_chat(&r, "i", "m", 0).unwrap().choices[0]
                    .finish_reason
                    .as_deref(),
                Some(finish)
            );
        }
    }
}
