//! OpenAI chat ↔ DashScope native text generation
//! (`POST /api/v1/services/aigc/text-generation/generation`).
//!
//! Request (OpenAI → DashScope): `{"model", "input": {"messages": [...]}, "parameters": {...}}`.
//! - Messages keep the OpenAI roles: `system`/`developer` → `system`, `user`, `assistant`
//!   (with `tool_calls` in the OpenAI shape), `tool` (with `tool_call_id`). Content is sent as
//!   one string; several text parts are joined with a newline.
//! - `parameters`: `result_format: "message"` always, `incremental_output: true` (the upstream
//!   is always called in streaming mode, see [`crate::plugin`]), `temperature`, `top_p`,
//!   `max_tokens` (from `max_completion_tokens` or `max_tokens`), `n`, `stop` (as a list),
//!   `tools`, `tool_choice` (`auto`, `none` or a named function), `parallel_tool_calls`,
//!   `response_format` (`text`, `json_object`), `reasoning_effort` → `enable_thinking` +
//!   `thinking_budget` (`none` → `enable_thinking: false`). DashScope's own fields sent by the
//!   client (`top_k`, `seed`, `presence_penalty`, `repetition_penalty`, `enable_thinking`,
//!   `thinking_budget`, `enable_search`) are passed on as they are.
//! - `reasoning_content` of earlier assistant turns is not sent.
//!
//! Rejected with a 400 naming the field: image, audio and file parts (the text-generation
//! endpoint takes text only; use provider type `qwen`, the compatible mode, for qwen-vl/audio
//! models), message `name`, the `function` role, `tool_choice: "required"`,
//! `response_format` `json_schema`, non-function tools, and any other unmodelled field
//! (`frequency_penalty`, `logprobs`, …) except ignorable hints.
//!
//! Response (DashScope → OpenAI): `output.choices[].message` (`content` — a string, or a list
//! of `{"text"}` parts —, `reasoning_content`, `tool_calls`) and `finish_reason` (`stop`,
//! `length`, `tool_calls`; the string `"null"` while generating); the legacy
//! `result_format: "text"` shape (`output.text`) is accepted too. `usage` (`input_tokens`,
//! `output_tokens`, `total_tokens`, `prompt_tokens_details.cached_tokens`,
//! `output_tokens_details.reasoning_tokens`) → [`Usage`]. Errors are
//! `{"code","message","request_id"}` (see [`dashscope_error_status`]).

use super::{Answer, AnswerContext, Body, PathArgs, Protocol, Upstream};
use crate::common::{reject_unmapped, IGNORABLE_OPENAI_FIELDS};
use crate::error::TranslateError;
use crate::options::TranslateOptions;
use aigw::llm::openai as oa;
use aigw::llm::stream::BStr;
use aigw::llm::stream::{DashScopeDecoder, Decoder};
use aigw::llm::{Extra, Usage};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// DashScope-specific request fields passed on unchanged inside `parameters`.
pub const PASSED_PARAMETERS: &[&str] = &[
    "top_k",
    "seed",
    "presence_penalty",
    "repetition_penalty",
    "enable_thinking",
    "thinking_budget",
    "enable_search",
];

/// A native text-generation request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerationRequest {
    /// Upstream model name.
    pub model: String,
    /// The conversation.
    pub input: Input,
    /// Sampling and tool settings.
    pub parameters: Parameters,
}

/// `input` of a generation request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Input {
    /// The messages, OpenAI roles.
    pub messages: Vec<Message>,
}

/// One request message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: &'static str,
    /// Text content.
    pub content: String,
    /// Tool calls of an assistant message (OpenAI shape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<oa::ToolCall>>,
    /// The call a tool message answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// `parameters` of a generation request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameters {
    /// Always `message` (OpenAI-like choices).
    pub result_format: &'static str,
    /// Stream deltas rather than the text so far.
    pub incremental_output: bool,
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Output token limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Number of answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Stop strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Function tools (OpenAI shape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<oa::Tool>>,
    /// `auto`, `none` or `{"type":"function","function":{"name"}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Whether several tool calls may come in one turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// `{"type":"text"}` or `{"type":"json_object"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// Qwen3 thinking switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_thinking: Option<bool>,
    /// Thinking token budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<u32>,
    /// DashScope fields passed through from the client ([`PASSED_PARAMETERS`]).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn text_of(
    c: &oa::MessageContent,
    i: usize,
    allow_refusal: bool,
) -> Result<String, TranslateError> {
    match c {
        oa::MessageContent::Text(s) => Ok(s.clone()),
        oa::MessageContent::Parts(parts) => {
            let mut s = String::new();
            for (j, p) in parts.iter().enumerate() {
                let piece = match p {
                    oa::ContentPart::Text { text } => text,
                    oa::ContentPart::Refusal { refusal } if allow_refusal => refusal,
                    oa::ContentPart::ImageUrl { .. }
                    | oa::ContentPart::InputAudio { .. }
                    | oa::ContentPart::File { .. } => {
                        return Err(TranslateError::unsupported(
                            format!("messages[{i}].content[{j}]"),
                            "the native DashScope text-generation endpoint takes text only; use provider type `qwen` (compatible mode) for images, audio and files",
                        ))
                    }
                    other => {
                        return Err(TranslateError::unsupported(
                            format!("messages[{i}].content[{j}]"),
                            format!(
                                "content part `{}` cannot be translated for dashscope",
                                serde_json::to_value(other)
                                    .ok()
                                    .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string))
                                    .unwrap_or_else(|| "?".into())
                            ),
                        ))
                    }
                };
                if !s.is_empty() {
                    s.push('\n');
                }
                s.push_str(piece);
            }
            Ok(s)
        }
    }
}

/// Translates an OpenAI chat request into a native DashScope generation request.
pub fn chat_request_to_dashscope(
    req: &oa::ChatCompletionRequest,
    opts: &TranslateOptions,
) -> Result<GenerationRequest, TranslateError> {
    reject_unmapped(
        &req.extra,
        PASSED_PARAMETERS,
        IGNORABLE_OPENAI_FIELDS,
        "dashscope",
    )?;
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        if m.name.is_some() {
            return Err(TranslateError::unsupported(
                format!("messages[{i}].name"),
                "dashscope has no participant names",
            ));
        }
        let role = match m.role {
            oa::Role::System | oa::Role::Developer => "system",
            oa::Role::User => "user",
            oa::Role::Assistant => "assistant",
            oa::Role::Tool => "tool",
            oa::Role::Function => {
                return Err(TranslateError::unsupported(
                    format!("messages[{i}].role"),
                    "the legacy `function` role is not supported",
                ))
            }
        };
        let content = match &m.content {
            Some(c) => text_of(c, i, m.role == oa::Role::Assistant)?,
            None if m.role == oa::Role::User => {
                return Err(TranslateError::invalid(
                    format!("messages[{i}].content"),
                    "user message without content",
                ))
            }
            None => String::new(),
        };
        let tool_call_id = if m.role == oa::Role::Tool {
            Some(m.tool_call_id.clone().ok_or_else(|| {
                TranslateError::invalid(
                    format!("messages[{i}].tool_call_id"),
                    "tool messages need tool_call_id",
                )
            })?)
        } else {
            None
        };
        let tool_calls = if m.role == oa::Role::Assistant {
            m.tool_calls.clone().filter(|c| !c.is_empty())
        } else {
            None
        };
        messages.push(Message {
            role,
            content,
            tool_calls,
            tool_call_id,
        });
    }
    let tools = match &req.tools {
        Some(tools) if !tools.is_empty() => {
            for (i, t) in tools.iter().enumerate() {
                if t.kind != "function" {
                    return Err(TranslateError::unsupported(
                        format!("tools[{i}].type"),
                        "only function tools can be translated",
                    ));
                }
            }
            Some(tools.clone())
        }
        _ => None,
    };
    let tool_choice =
        match &req.tool_choice {
            None => None,
            Some(oa::ToolChoice::Mode(m)) => match m.as_str() {
                "auto" | "none" => Some(Value::String(m.clone())),
                "required" => return Err(TranslateError::unsupported(
                    "tool_choice",
                    "dashscope cannot be told to call some tool: use `auto` or name the function",
                )),
                other => {
                    return Err(TranslateError::invalid(
                        "tool_choice",
                        format!("unknown tool_choice `{other}`"),
                    ))
                }
            },
            Some(oa::ToolChoice::Named(n)) => Some(serde_json::json!({
                "type": "function",
                "function": {"name": n.function.name},
            })),
            Some(oa::ToolChoice::Other(_)) => {
                return Err(TranslateError::unsupported(
                    "tool_choice",
                    "this tool_choice shape cannot be translated for dashscope",
                ))
            }
        };
    let response_format = match &req.response_format {
        None => None,
        Some(rf) => match rf.get("type").and_then(Value::as_str) {
            Some("text") => None,
            Some("json_object") => Some(serde_json::json!({"type": "json_object"})),
            Some("json_schema") => {
                return Err(TranslateError::unsupported(
                    "response_format",
                    "dashscope text generation takes `json_object`, not `json_schema`",
                ))
            }
            _ => {
                return Err(TranslateError::unsupported(
                    "response_format",
                    "unknown response_format type",
                ))
            }
        },
    };
    let (mut enable_thinking, mut thinking_budget) = (None, None);
    if let Some(effort) = &req.reasoning_effort {
        if effort == "none" {
            enable_thinking = Some(false);
        } else {
            let budget = opts.budget_for_effort(effort).ok_or_else(|| {
                TranslateError::invalid(
                    "reasoning_effort",
                    format!("unknown reasoning_effort `{effort}`"),
                )
            })?;
            enable_thinking = Some(true);
            thinking_budget = Some(budget);
        }
    }
    let mut extra = Map::new();
    for k in PASSED_PARAMETERS {
        if let Some(v) = req.extra.get(*k).filter(|v| !v.is_null()) {
            extra.insert((*k).to_string(), v.clone());
        }
    }
    // Explicit client values win over the ones derived from `reasoning_effort`.
    if extra.contains_key("enable_thinking") {
        enable_thinking = None;
    }
    if extra.contains_key("thinking_budget") {
        thinking_budget = None;
    }
    Ok(GenerationRequest {
        model: req.model.clone(),
        input: Input { messages },
        parameters: Parameters {
            result_format: "message",
            incremental_output: true,
            temperature: req.temperature,
            top_p: req.top_p,
            max_tokens: req.output_limit(),
            n: req.n.filter(|n| *n != 1),
            stop: req.stop.as_ref().map(oa::Stop::to_vec),
            tools,
            tool_choice,
            parallel_tool_calls: req.parallel_tool_calls,
            response_format,
            enable_thinking,
            thinking_budget,
            extra,
        },
    })
}

/// A DashScope answer or stream chunk, borrowed from the input where possible.
#[derive(Debug, Deserialize)]
pub struct GenerationResponse<'a> {
    /// The output (absent on errors).
    #[serde(default, borrow)]
    pub output: Option<Output<'a>>,
    /// Token usage (cumulative in streams).
    #[serde(default)]
    pub usage: Option<DashScopeUsage>,
    /// DashScope's request id.
    #[serde(default, borrow)]
    pub request_id: Option<BStr<'a>>,
    /// Error code (error bodies and error events).
    #[serde(default, borrow)]
    pub code: Option<BStr<'a>>,
    /// Error message.
    #[serde(default, borrow)]
    pub message: Option<BStr<'a>>,
}

/// `output` of an answer.
#[derive(Debug, Deserialize)]
pub struct Output<'a> {
    /// `result_format: "message"` choices.
    #[serde(default, borrow)]
    pub choices: Vec<Choice<'a>>,
    /// `result_format: "text"` answer.
    #[serde(default, borrow)]
    pub text: Option<BStr<'a>>,
    /// `result_format: "text"` finish reason.
    #[serde(default, borrow)]
    pub finish_reason: Option<BStr<'a>>,
}

/// One choice.
#[derive(Debug, Deserialize)]
pub struct Choice<'a> {
    /// `stop`, `length`, `tool_calls`, or `null`/`"null"` while generating.
    #[serde(default, borrow)]
    pub finish_reason: Option<BStr<'a>>,
    /// The message (or its increment).
    #[serde(default, borrow)]
    pub message: Option<OutMessage<'a>>,
}

/// An answer message.
#[derive(Debug, Deserialize)]
pub struct OutMessage<'a> {
    /// A string, or a list of `{"text"}` parts (qwen-vl style).
    #[serde(default, borrow)]
    pub content: Option<&'a RawValue>,
    /// Thinking text.
    #[serde(default, borrow)]
    pub reasoning_content: Option<BStr<'a>>,
    /// Tool calls (or their increments).
    #[serde(default, borrow)]
    pub tool_calls: Option<Vec<OutToolCall<'a>>>,
}

/// A tool call or its increment.
#[derive(Debug, Deserialize)]
pub struct OutToolCall<'a> {
    /// Position among the turn's calls.
    #[serde(default)]
    pub index: Option<u32>,
    /// Call id (first increment; may be empty later).
    #[serde(default, borrow)]
    pub id: Option<BStr<'a>>,
    /// Name and arguments (fragment).
    #[serde(default, borrow)]
    pub function: Option<OutFunction<'a>>,
}

/// Function of a tool call.
#[derive(Debug, Deserialize)]
pub struct OutFunction<'a> {
    /// Function name (first increment).
    #[serde(default, borrow)]
    pub name: Option<BStr<'a>>,
    /// JSON arguments (or a fragment of them).
    #[serde(default, borrow)]
    pub arguments: Option<BStr<'a>>,
}

pub use aigw::llm::usage::DashScopeUsage;

/// The text of a `content` value: a string, or the `text` of each part of a list. `None`
/// for `null`; an error for other shapes.
pub fn content_text(raw: &RawValue) -> Result<Option<BStr<'_>>, TranslateError> {
    let s = raw.get();
    let bad = |e: serde_json::Error| {
        TranslateError::upstream(format!("unparseable dashscope message content: {e}"))
    };
    match s.as_bytes().first() {
        Some(b'"') => serde_json::from_slice::<BStr>(s.as_bytes())
            .map(Some)
            .map_err(bad),
        Some(b'[') => {
            #[derive(Deserialize)]
            struct P {
                #[serde(default)]
                text: Option<String>,
            }
            let parts: Vec<P> = serde_json::from_slice(s.as_bytes()).map_err(bad)?;
            let text: String = parts.into_iter().filter_map(|p| p.text).collect();
            Ok(Some(BStr(text.into())))
        }
        Some(b'n') => Ok(None),
        _ => Err(TranslateError::upstream(
            "dashscope message content is neither text nor a list of parts",
        )),
    }
}

/// DashScope `finish_reason` → OpenAI `finish_reason`; `None` while generating (`null` or the
/// string `"null"`).
pub fn finish_to_openai(reason: Option<&str>, has_tool_calls: bool) -> Option<&'static str> {
    match reason? {
        "" | "null" => None,
        "length" => Some("length"),
        "tool_calls" => Some("tool_calls"),
        "content_filter" | "data_inspection_failed" => Some("content_filter"),
        _ if has_tool_calls => Some("tool_calls"),
        _ => Some("stop"),
    }
}

pub use aigw::llm::stream::dashscope_error_status;

/// The `data` of the last SSE `data:` line of `body`, or `body` itself when it is not SSE
/// (error answers to streamed requests may come framed as events).
pub fn unframe(body: &[u8]) -> &[u8] {
    let trimmed = body.trim_ascii_start();
    if trimmed.first() == Some(&b'{') {
        return body;
    }
    let mut found: Option<&[u8]> = None;
    for line in body.split(|&b| b == b'\n') {
        if let Some(d) = line.strip_prefix(b"data:") {
            found = Some(d.trim_ascii());
        }
    }
    found.unwrap_or(body)
}

/// Translates a whole DashScope answer into an OpenAI chat completion; returns it with the
/// usage. `id`/`model` are used where DashScope gives none.
pub fn dashscope_response_to_chat(
    body: &[u8],
    id: &str,
    model: &str,
    created: u64,
) -> Result<(oa::ChatCompletion, Option<Usage>), TranslateError> {
    let r: GenerationResponse = serde_json::from_slice(body)
        .map_err(|e| TranslateError::upstream(format!("unparseable dashscope answer: {e}")))?;
    let output = r.output.ok_or_else(|| {
        TranslateError::upstream(format!(
            "dashscope answer without output: {}",
            r.message.as_ref().map(BStr::as_str).unwrap_or("")
        ))
    })?;
    let mut choices = Vec::new();
    if output.choices.is_empty() {
        if let Some(t) = &output.text {
            let mut m = oa::ChatMessage::text(oa::Role::Assistant, t.as_str());
            m.extra = Extra::new();
            choices.push(oa::Choice {
                index: 0,
                message: m,
                finish_reason: finish_to_openai(
                    output.finish_reason.as_ref().map(BStr::as_str),
                    false,
                )
                .map(str::to_string),
                logprobs: None,
            });
        }
    }
    for (i, c) in output.choices.iter().enumerate() {
        let mut m = oa::ChatMessage::text(oa::Role::Assistant, String::new());
        m.content = None;
        let mut calls = Vec::new();
        if let Some(msg) = &c.message {
            if let Some(raw) = msg.content {
                m.content = content_text(raw)?.map(|t| oa::MessageContent::Text(t.0.into_owned()));
            }
            m.reasoning_content = msg
                .reasoning_content
                .as_ref()
                .filter(|r| !r.as_str().is_empty())
                .map(|r| r.as_str().to_string());
            for (j, tc) in msg.tool_calls.iter().flatten().enumerate() {
                let f = tc.function.as_ref();
                calls.push(oa::ToolCall::function(
                    tc.id
                        .as_ref()
                        .filter(|s| !s.as_str().is_empty())
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| format!("call_{i}_{j}")),
                    f.and_then(|f| f.name.as_ref())
                        .map(|n| n.as_str().to_string())
                        .unwrap_or_default(),
                    f.and_then(|f| f.arguments.as_ref())
                        .map(|a| a.as_str().to_string())
                        .unwrap_or_default(),
                ));
            }
        }
        let has_calls = !calls.is_empty();
        if m.content.is_none() && !has_calls {
            m.content = Some(oa::MessageContent::Text(String::new()));
        }
        m.tool_calls = has_calls.then_some(calls);
        choices.push(oa::Choice {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            message: m,
            finish_reason: finish_to_openai(c.finish_reason.as_ref().map(BStr::as_str), has_calls)
                .or(Some("stop"))
                .map(str::to_string),
            logprobs: None,
        });
    }
    let usage = r.usage.map(|u| u.to_usage());
    let chat = oa::ChatCompletion {
        id: r
            .request_id
            .as_ref()
            .filter(|s| !s.as_str().is_empty())
            .map(|s| format!("chatcmpl-{}", s.as_str()))
            .unwrap_or_else(|| id.to_string()),
        object: "chat.completion".into(),
        created,
        model: model.to_string(),
        choices,
        usage: usage.map(|u| u.to_openai()),
        system_fingerprint: None,
        extra: Extra::new(),
    };
    Ok((chat, usage))
}

/// The DashScope native dialect (`qwen-native`).
pub struct DashScope;

impl Upstream for DashScope {
    fn protocol(&self) -> Protocol {
        Protocol::DashScopeText
    }

    fn path(&self, p: &PathArgs<'_>) -> String {
        format!("{}/services/aigc/text-generation/generation", p.base)
    }

    fn request_headers(&self, _anthropic_version: Option<&str>) -> Vec<(&'static str, String)> {
        vec![
            ("x-dashscope-sse", "enable".to_string()),
            ("accept", "text/event-stream".to_string()),
        ]
    }

    fn chat_request(&self, req: &mut oa::ChatCompletionRequest, opts: &TranslateOptions) -> Body {
        super::to_body(&chat_request_to_dashscope(req, opts)?)
    }

    fn chat_response(&self, body: &[u8], cx: AnswerContext<'_>) -> Answer {
        dashscope_response_to_chat(body, cx.id, cx.model, cx.created)
    }

    fn stream_decoder(&self) -> Box<dyn Decoder> {
        Box::new(DashScopeDecoder::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: Value) -> oa::ChatCompletionRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn request_maps_messages_tools_and_parameters() {
        let r = req(json!({
            "model": "qwen-plus",
            "stream": true,
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather in"}, {"type": "text", "text": "Hangzhou?"}]},
                {"role": "assistant", "content": null, "reasoning_content": "hmm",
                 "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Hangzhou\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "temperature": 0.5, "top_p": 0.9, "max_completion_tokens": 200,
            "stop": "END", "seed": 7, "top_k": 20, "presence_penalty": 0.5,
            "repetition_penalty": 1.1, "reasoning_effort": "low", "store": true,
            "response_format": {"type": "json_object"}
        }));
        let d = chat_request_to_dashscope(&r, &TranslateOptions::default()).unwrap();
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["model"], "qwen-plus");
        let m = &v["input"]["messages"];
        assert_eq!(m[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(m[1]["content"], "Weather in\nHangzhou?");
        assert_eq!(m[2]["content"], "");
        assert!(m[2].get("reasoning_content").is_none());
        assert_eq!(m[2]["tool_calls"][0]["function"]["name"], "weather");
        assert_eq!(
            m[3],
            json!({"role": "tool", "content": "sunny", "tool_call_id": "call_1"})
        );
        let p = &v["parameters"];
        assert_eq!(p["result_format"], "message");
        assert_eq!(p["incremental_output"], true);
        assert_eq!(p["max_tokens"], 200);
        assert_eq!(p["stop"], json!(["END"]));
        assert_eq!(
            (p["seed"].clone(), p["top_k"].clone()),
            (json!(7), json!(20))
        );
        assert_eq!(p["repetition_penalty"], 1.1);
        assert_eq!(p["presence_penalty"], 0.5);
        assert_eq!(p["tool_choice"]["function"]["name"], "weather");
        assert_eq!(p["tools"][0]["function"]["name"], "weather");
        assert_eq!(p["enable_thinking"], true);
        assert_eq!(p["thinking_budget"], 2048);
        assert_eq!(p["response_format"], json!({"type": "json_object"}));
        assert!(p.get("store").is_none() && p.get("temperature") == Some(&json!(0.5)));
    }

    #[test]
    fn request_rejections_name_the_field() {
        let base = |extra: Value| {
            let mut v =
                json!({"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            chat_request_to_dashscope(&req(v), &TranslateOptions::default())
        };
        let e = base(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}))
        .unwrap_err();
        assert_eq!(
            (e.status, e.param.as_deref()),
            (400, Some("messages[0].content[1]"))
        );
        assert!(e.message.contains("text only"), "{}", e.message);
        let e = base(json!({"frequency_penalty": 0.3})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("frequency_penalty"));
        let e = base(json!({"tool_choice": "required"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
        let e = base(
            json!({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}),
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("response_format"));
        let e = base(json!({"messages": [{"role": "user", "name": "bob", "content": "x"}]}))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].name"));
        let e = base(json!({"messages": [{"role": "tool", "content": "x"}]})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].tool_call_id"));
        let ok = base(json!({"reasoning_effort": "none", "enable_search": true})).unwrap();
        assert_eq!(ok.parameters.enable_thinking, Some(false));
        assert_eq!(ok.parameters.extra.get("enable_search"), Some(&json!(true)));
    }

    #[test]
    fn response_with_reasoning_tool_calls_and_usage() {
        let body = br#"{"output":{"choices":[{"finish_reason":"tool_calls","message":{"role":"assistant","content":"","reasoning_content":"Need weather.","tool_calls":[{"function":{"name":"weather","arguments":"{\"city\":\"Hangzhou\"}"},"index":0,"id":"call_9f","type":"function"}]}}]},"usage":{"total_tokens":130,"output_tokens":30,"input_tokens":100,"prompt_tokens_details":{"cached_tokens":64},"output_tokens_details":{"reasoning_tokens":12}},"request_id":"5b3c-1"}"#;
        let (c, u) = dashscope_response_to_chat(body, "fallback", "qwen-plus", 9).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["id"], "chatcmpl-5b3c-1");
        assert_eq!(v["object"], "chat.completion");
        let ch = &v["choices"][0];
        assert_eq!(ch["finish_reason"], "tool_calls");
        assert_eq!(ch["message"]["reasoning_content"], "Need weather.");
        assert_eq!(ch["message"]["tool_calls"][0]["id"], "call_9f");
        assert_eq!(
            ch["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Hangzhou\"}"
        );
        let u = u.unwrap();
        assert_eq!(
            (u.input, u.output, u.total, u.cached_input, u.reasoning),
            (100, 30, 130, 64, 12)
        );
        assert_eq!(v["usage"]["prompt_tokens"], 100);
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 64);
        assert_eq!(
            v["usage"]["completion_tokens_details"]["reasoning_tokens"],
            12
        );
    }

    #[test]
    fn response_text_shapes_and_finish_reasons() {
        let (c, _) = dashscope_response_to_chat(
            br#"{"output":{"choices":[{"finish_reason":"length","message":{"role":"assistant","content":[{"text":"a "},{"text":"b"}]}}]},"usage":{"input_tokens":1,"output_tokens":2},"request_id":"r"}"#,
            "x", "m", 0,
        )
        .unwrap();
        assert_eq!(c.choices[0].finish_reason.as_deref(), Some("length"));
        assert_eq!(
            c.choices[0].message.content,
            Some(oa::MessageContent::Text("a b".into()))
        );
        assert_eq!(c.usage.unwrap().total_tokens, 3);
        let (c, _) = dashscope_response_to_chat(
            br#"{"output":{"text":"legacy","finish_reason":"stop"},"request_id":"r"}"#,
            "x",
            "m",
            0,
        )
        .unwrap();
        assert_eq!(c.choices[0].finish_reason.as_deref(), Some("stop"));
        assert!(dashscope_response_to_chat(
            br#"{"code":"InvalidParameter","message":"bad"}"#,
            "x",
            "m",
            0
        )
        .is_err());
        assert_eq!(finish_to_openai(Some("null"), false), None);
        assert_eq!(finish_to_openai(None, false), None);
        assert_eq!(finish_to_openai(Some("stop"), true), Some("tool_calls"));
    }

    #[test]
    fn error_codes_and_unframing() {
        assert_eq!(dashscope_error_status("InvalidApiKey"), Some(401));
        assert_eq!(dashscope_error_status("Throttling.RateQuota"), Some(429));
        assert_eq!(dashscope_error_status("InvalidParameter"), Some(400));
        assert_eq!(dashscope_error_status("Whatever"), None);
        let framed = b"id:1\nevent:error\n:HTTP_STATUS/429\ndata:{\"code\":\"Throttling\",\"message\":\"slow\"}\n\n";
        assert_eq!(
            unframe(framed),
            br#"{"code":"Throttling","message":"slow"}"#.as_slice()
        );
        assert_eq!(unframe(b" {\"a\":1}"), b" {\"a\":1}".as_slice());
    }
}
