//! OpenAI wire types: chat completions (request, response, stream chunk), legacy completions,
//! embeddings, model lists and the error body.
//!
//! The same shapes are spoken by the many OpenAI-compatible providers (DeepSeek, Qwen compatible
//! mode, Moonshot, Groq, vLLM, Ollama...). Their extensions are tolerated: `reasoning_content` in
//! messages and deltas (DeepSeek, Qwen) is modelled, anything else lands in `extra`.

use super::open_struct::open_struct;
use super::{tagged, Extra};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The author of a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// System prompt.
    System,
    /// Developer instructions (the newer name for system on reasoning models).
    Developer,
    /// End user.
    User,
    /// Model output.
    Assistant,
    /// A tool result.
    Tool,
    /// A legacy function result.
    Function,
}

/// `POST /v1/chat/completions` request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChatCompletionRequest {
    /// Model name as the client sent it.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Stream the answer as server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Stream options (`include_usage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Legacy output token limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Output token limit including reasoning tokens (newer name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Number of choices to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model must use tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether several tool calls may be returned at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Reasoning effort for reasoning models (`minimal`, `low`, `medium`, `high`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// Structured output format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// End-user identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Fields not modelled here, passed through unchanged.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(ChatCompletionRequest {
    model: req "model",
    messages: req "messages",
    stream: def "stream",
    stream_options: def "stream_options",
    max_tokens: def "max_tokens",
    max_completion_tokens: def "max_completion_tokens",
    temperature: def "temperature",
    top_p: def "top_p",
    n: def "n",
    stop: def "stop",
    tools: def "tools",
    tool_choice: def "tool_choice",
    parallel_tool_calls: def "parallel_tool_calls",
    reasoning_effort: def "reasoning_effort",
    response_format: def "response_format",
    user: def "user",
});

impl ChatCompletionRequest {
    /// The effective output token limit: `max_completion_tokens`, else `max_tokens`.
    pub fn output_limit(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// True when the client asked for a streamed answer.
    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }
}

/// `stream_options` of a chat or completions request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamOptions {
    /// Send a final chunk carrying `usage` (chunks before it carry `usage: null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(StreamOptions {
    include_usage: def "include_usage",
});

/// `stop`: one sequence or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// A single stop sequence.
    One(String),
    /// Several stop sequences.
    Many(Vec<String>),
}

impl Stop {
    /// The stop sequences as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// Text or content parts; absent/null on assistant messages that only call tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent>,
    /// Optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The call a `tool` message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Reasoning text (DeepSeek / Qwen extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// A refusal message from the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(ChatMessage {
    role: req "role",
    content: def "content",
    name: def "name",
    tool_calls: def "tool_calls",
    tool_call_id: def "tool_call_id",
    reasoning_content: def "reasoning_content",
    refusal: def "refusal",
});

impl ChatMessage {
    /// A message with plain text content.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self::new(role, Some(MessageContent::Text(text.into())))
    }

    /// The text of the content joined ([`MessageContent::joined_text`]); empty without content.
    pub fn joined_text(&self) -> String {
        self.content
            .as_ref()
            .map(MessageContent::joined_text)
            .unwrap_or_default()
    }

    /// A message with only a role and content (no name, tool calls or reasoning).
    pub fn new(role: Role, content: Option<MessageContent>) -> Self {
        ChatMessage {
            role,
            content,
            name: None,
            tool_calls: None,
            tool_call_id: None,
            reasoning_content: None,
            refusal: None,
            extra: Extra::new(),
        }
    }
}

/// Message content: a plain string or an array of parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Multimodal parts.
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// Concatenates the text of all text parts (non-text parts are skipped).
    pub fn joined_text(&self) -> String {
        match self {
            MessageContent::Text(s) => s.clone(),
            MessageContent::Parts(parts) => {
                let mut out = String::new();
                for p in parts {
                    if let ContentPart::Text { text } = p {
                        out.push_str(text);
                    }
                }
                out
            }
        }
    }
}

/// One part of a multimodal message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image by URL or `data:` URL.
    ImageUrl {
        /// The image reference.
        image_url: ImageUrl,
    },
    /// Base64 audio input.
    InputAudio {
        /// The audio data.
        input_audio: InputAudio,
    },
    /// A file (`file_id` or `file_data`).
    File {
        /// The file reference, kept raw.
        file: Value,
    },
    /// A refusal (assistant content).
    Refusal {
        /// The refusal text.
        refusal: String,
    },
    /// Any part type not modelled here, kept raw.
    #[serde(untagged)]
    Other(Value),
}

tagged::text_or_parts_enum!(MessageContent {
    Text,
    Parts: ContentPart::from_value
});

tagged::known_or_other!(ContentPart);

impl ContentPart {
    fn known(v: &Value) -> Option<Self> {
        let (kind, m) = tagged::tag(v)?;
        Some(match kind {
            "text" => ContentPart::Text {
                text: tagged::req_str(m, "text")?,
            },
            "image_url" => ContentPart::ImageUrl {
                image_url: tagged::req(m, "image_url")?,
            },
            "input_audio" => ContentPart::InputAudio {
                input_audio: tagged::req(m, "input_audio")?,
            },
            "file" => ContentPart::File {
                file: m.get("file")?.clone(),
            },
            "refusal" => ContentPart::Refusal {
                refusal: tagged::req_str(m, "refusal")?,
            },
            _ => return None,
        })
    }
}

/// `image_url` of an image part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageUrl {
    /// `https://...` or `data:<mime>;base64,<data>`.
    pub url: String,
    /// `low`, `high` or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

open_struct!(closed ImageUrl {
    url: req "url",
    detail: def "detail",
});

/// `input_audio` of an audio part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputAudio {
    /// Base64 audio bytes.
    pub data: String,
    /// `wav`, `mp3`...
    pub format: String,
}

open_struct!(closed InputAudio {
    data: req "data",
    format: req "format",
});

/// A tool definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    /// Always `function` today.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The function.
    pub function: FunctionDef,
}

open_struct!(closed Tool {
    kind: or(function_type) "type",
    function: req "function",
});

fn function_type() -> String {
    "function".to_string()
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionDef {
    /// Function name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON schema of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Strict schema adherence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

open_struct!(closed FunctionDef {
    name: req "name",
    description: def "description",
    parameters: def "parameters",
    strict: def "strict",
});

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ToolChoice {
    /// `"none"`, `"auto"` or `"required"`.
    Mode(String),
    /// `{"type":"function","function":{"name":...}}`.
    Named(NamedToolChoice),
    /// Any other shape (e.g. `allowed_tools`), kept raw.
    Other(Value),
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        tagged::via_value(d, |v| match v {
            Value::String(s) => ToolChoice::Mode(s),
            v => match NamedToolChoice::deserialize(&v) {
                Ok(n) => ToolChoice::Named(n),
                Err(_) => ToolChoice::Other(v),
            },
        })
    }
}

/// A forced function choice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedToolChoice {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function to call.
    pub function: FunctionName,
}

open_struct!(closed NamedToolChoice {
    kind: req "type",
    function: req "function",
});

/// A function name reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionName {
    /// The function name.
    pub name: String,
}

open_struct!(closed FunctionName {
    name: req "name",
});

/// A tool call in an assistant message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    /// Call id, echoed by the tool result.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// Name and JSON-encoded arguments.
    pub function: FunctionCall,
}

open_struct!(closed ToolCall {
    id: req "id",
    kind: or(function_type) "type",
    function: req "function",
});

impl ToolCall {
    /// A `function` tool call.
    pub fn function(id: String, name: String, arguments: String) -> Self {
        ToolCall {
            id,
            kind: "function".into(),
            function: FunctionCall { name, arguments },
        }
    }
}

/// The function part of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionCall {
    /// Function name.
    pub name: String,
    /// Arguments as a JSON string.
    #[serde(default)]
    pub arguments: String,
}

open_struct!(closed FunctionCall {
    name: req "name",
    arguments: def "arguments",
});

/// Token usage as OpenAI reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OpenAiUsage {
    /// Prompt tokens, cached ones included.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Completion tokens, reasoning ones included.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Sum of both.
    #[serde(default)]
    pub total_tokens: u64,
    /// Prompt breakdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Completion breakdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

open_struct!(closed OpenAiUsage {
    prompt_tokens: def "prompt_tokens",
    completion_tokens: def "completion_tokens",
    total_tokens: def "total_tokens",
    prompt_tokens_details: def "prompt_tokens_details",
    completion_tokens_details: def "completion_tokens_details",
});

/// `prompt_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens served from the provider's cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Audio prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u64>,
}

open_struct!(closed PromptTokensDetails {
    cached_tokens: def "cached_tokens",
    audio_tokens: def "audio_tokens",
});

/// `completion_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompletionTokensDetails {
    /// Tokens spent reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Audio output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u64>,
}

open_struct!(closed CompletionTokensDetails {
    reasoning_tokens: def "reasoning_tokens",
    audio_tokens: def "audio_tokens",
});

/// Non-streamed chat completion response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletion {
    /// Response id.
    pub id: String,
    /// `chat.completion`.
    #[serde(default = "chat_completion_object")]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// Model that answered.
    #[serde(default)]
    pub model: String,
    /// Choices.
    pub choices: Vec<Choice>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<OpenAiUsage>,
    /// Backend fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(ChatCompletion {
    id: req "id",
    object: or(chat_completion_object) "object",
    created: def "created",
    model: def "model",
    choices: req "choices",
    usage: def "usage",
    system_fingerprint: def "system_fingerprint",
});

fn chat_completion_object() -> String {
    "chat.completion".to_string()
}

/// One choice of a chat completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// Choice index.
    #[serde(default)]
    pub index: u32,
    /// The assistant message.
    pub message: ChatMessage,
    /// `stop`, `length`, `tool_calls`, `content_filter`, `function_call`.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Log probabilities, raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
}

open_struct!(closed Choice {
    index: def "index",
    message: req "message",
    finish_reason: def "finish_reason",
    logprobs: def "logprobs",
});

/// One `chat.completion.chunk` of a streamed chat completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletionChunk {
    /// Response id (same in every chunk).
    #[serde(default)]
    pub id: String,
    /// `chat.completion.chunk`.
    #[serde(default)]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// Deltas; empty in the final usage chunk.
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Usage: `null` except in the final chunk when `include_usage` was set.
    #[serde(default)]
    pub usage: Option<OpenAiUsage>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(ChatCompletionChunk {
    id: def "id", object: def "object", created: def "created",
    model: def "model", choices: def "choices", usage: def "usage",
});

/// One choice delta of a chunk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkChoice {
    /// Choice index.
    #[serde(default)]
    pub index: u32,
    /// The increment.
    #[serde(default)]
    pub delta: ChunkDelta,
    /// Set on the last delta of the choice.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

open_struct!(closed ChunkChoice {
    index: def "index",
    delta: def "delta",
    finish_reason: def "finish_reason",
});

/// The increment carried by a chunk choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChunkDelta {
    /// Sent in the first delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Text increment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Reasoning increment (DeepSeek / Qwen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Tool call increments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    /// Refusal increment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

open_struct!(closed ChunkDelta {
    role: def "role",
    content: def "content",
    reasoning_content: def "reasoning_content",
    tool_calls: def "tool_calls",
    refusal: def "refusal",
});

/// A tool call increment: the first one for an index carries id and name, later ones append to
/// `arguments`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ToolCallDelta {
    /// Which tool call of the message this extends.
    #[serde(default)]
    pub index: u32,
    /// Call id (first increment only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `function` (first increment only).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name and/or arguments fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
}

open_struct!(closed ToolCallDelta {
    index: def "index",
    id: def "id",
    kind: def "type",
    function: def "function",
});

/// Function part of a tool call increment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FunctionCallDelta {
    /// Function name (first increment only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Arguments fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

open_struct!(closed FunctionCallDelta {
    name: def "name",
    arguments: def "arguments",
});

/// `POST /v1/completions` (legacy) request body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompletionRequest {
    /// Model name.
    pub model: String,
    /// String, array of strings, or token arrays; kept raw.
    pub prompt: Value,
    /// Output token limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Stream the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Stream options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(CompletionRequest {
    model: req "model",
    prompt: req "prompt",
    max_tokens: def "max_tokens",
    temperature: def "temperature",
    top_p: def "top_p",
    stream: def "stream",
    stream_options: def "stream_options",
    stop: def "stop",
});

/// Legacy completions response (and stream chunk: same shape with partial `text`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompletionResponse {
    /// Response id.
    #[serde(default)]
    pub id: String,
    /// `text_completion`.
    #[serde(default)]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// Choices.
    #[serde(default)]
    pub choices: Vec<CompletionChoice>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<OpenAiUsage>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(CompletionResponse {
    id: def "id", object: def "object", created: def "created",
    model: def "model", choices: def "choices", usage: def "usage",
});

/// One legacy completion choice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompletionChoice {
    /// Generated text.
    #[serde(default)]
    pub text: String,
    /// Choice index.
    #[serde(default)]
    pub index: u32,
    /// Why generation stopped.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Log probabilities, raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
}

open_struct!(closed CompletionChoice {
    text: def "text",
    index: def "index",
    finish_reason: def "finish_reason",
    logprobs: def "logprobs",
});

/// `POST /v1/embeddings` request body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbeddingRequest {
    /// Model name.
    pub model: String,
    /// Input text(s) or token arrays.
    pub input: EmbeddingInput,
    /// `float` or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    /// Output dimensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(EmbeddingRequest {
    model: req "model",
    input: req "input",
    encoding_format: def "encoding_format",
    dimensions: def "dimensions",
});

/// Embedding input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    Text(String),
    /// Several texts.
    Texts(Vec<String>),
    /// One token array.
    Tokens(Vec<u32>),
    /// Several token arrays.
    TokenBatches(Vec<Vec<u32>>),
}

/// `POST /v1/embeddings` response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbeddingResponse {
    /// `list`.
    #[serde(default)]
    pub object: String,
    /// One embedding per input.
    pub data: Vec<Embedding>,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// Usage (`prompt_tokens`, `total_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<OpenAiUsage>,
}

open_struct!(closed EmbeddingResponse {
    object: def "object",
    data: req "data",
    model: def "model",
    usage: def "usage",
});

/// One embedding vector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Embedding {
    /// `embedding`.
    #[serde(default)]
    pub object: String,
    /// Input index.
    #[serde(default)]
    pub index: u32,
    /// Float array, or a base64 string with `encoding_format: base64`; kept raw.
    pub embedding: Value,
}

open_struct!(closed Embedding {
    object: def "object",
    index: def "index",
    embedding: req "embedding",
});

/// `GET /v1/models` response.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelList {
    /// `list`.
    #[serde(default)]
    pub object: String,
    /// Models.
    #[serde(default)]
    pub data: Vec<Model>,
}

open_struct!(closed ModelList {
    object: def "object",
    data: def "data",
});

/// One model of a model list.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Model {
    /// Model id.
    pub id: String,
    /// `model`.
    #[serde(default)]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// Owner.
    #[serde(default)]
    pub owned_by: String,
}

open_struct!(closed Model {
    id: req "id",
    object: def "object",
    created: def "created",
    owned_by: def "owned_by",
});

/// OpenAI error body `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

open_struct!(closed ErrorResponse {
    error: req "error",
});

/// The inner error object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorDetail {
    /// Human-readable message.
    pub message: String,
    /// Error class, e.g. `invalid_request_error`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Offending parameter.
    #[serde(default)]
    pub param: Option<String>,
    /// Machine-readable code (string or number upstream).
    #[serde(default)]
    pub code: Option<Value>,
}

open_struct!(closed ErrorDetail {
    message: req "message",
    kind: def "type",
    param: def "param",
    code: def "code",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multimodal_tool_request_and_keeps_unknown_fields() {
        let body = r#"{
          "model": "gpt-4o",
          "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
              {"type": "text", "text": "what is this?"},
              {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
              {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
              {"type": "video_url", "video_url": {"url": "https://x/v.mp4"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
              {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
          ],
          "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
          "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
          "stream": true,
          "stream_options": {"include_usage": true},
          "max_completion_tokens": 300,
          "seed": 7,
          "metadata": {"a": "b"}
        }"#;
        let req: ChatCompletionRequest = serde_json::from_str(body).unwrap();
        assert_eq!(req.messages.len(), 4);
        assert!(req.is_stream());
        assert_eq!(req.output_limit(), Some(300));
        assert_eq!(req.extra.get("seed"), Some(&serde_json::json!(7)));
        let Some(MessageContent::Parts(parts)) = &req.messages[1].content else {
            panic!("parts expected")
        };
        assert!(
            matches!(&parts[1], ContentPart::ImageUrl { image_url } if image_url.detail.as_deref() == Some("high"))
        );
        assert!(
            matches!(&parts[2], ContentPart::InputAudio { input_audio } if input_audio.format == "wav")
        );
        assert!(matches!(&parts[3], ContentPart::Other(v) if v["type"] == "video_url"));
        assert!(
            matches!(req.tool_choice, Some(ToolChoice::Named(ref n)) if n.function.name == "get_weather")
        );
        // Round trip keeps unknown fields and unknown parts.
        let again = serde_json::to_value(&req).unwrap();
        assert_eq!(again["metadata"]["a"], "b");
        assert_eq!(
            again["messages"][1]["content"][3]["video_url"]["url"],
            "https://x/v.mp4"
        );
        assert_eq!(
            again["messages"][2]["tool_calls"][0]["function"]["name"],
            "get_weather"
        );
    }

    #[test]
    fn parses_reasoning_delta_and_null_usage_chunk() {
        let chunk = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner",
          "choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":"Let me think"},"logprobs":null,"finish_reason":null}],
          "usage":null}"#;
        let c: ChatCompletionChunk = serde_json::from_str(chunk).unwrap();
        assert_eq!(
            c.choices[0].delta.reasoning_content.as_deref(),
            Some("Let me think")
        );
        assert!(c.usage.is_none());
    }

    #[test]
    fn parses_embeddings_and_completions() {
        let e: EmbeddingRequest = serde_json::from_str(
            r#"{"model":"text-embedding-3-small","input":["a","b"],"dimensions":256}"#,
        )
        .unwrap();
        assert_eq!(e.input, EmbeddingInput::Texts(vec!["a".into(), "b".into()]));
        let r: EmbeddingResponse = serde_json::from_str(
            r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}"#,
        )
        .unwrap();
        assert_eq!(r.usage.unwrap().prompt_tokens, 2);
        let c: CompletionRequest = serde_json::from_str(
            r#"{"model":"gpt-3.5-turbo-instruct","prompt":"Say hi","max_tokens":5,"echo":false}"#,
        )
        .unwrap();
        assert_eq!(c.extra.get("echo"), Some(&serde_json::json!(false)));
    }
}
