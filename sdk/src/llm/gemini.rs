//! Google Gemini `generateContent` / `streamGenerateContent` wire types (camelCase JSON).
//!
//! A streamed response (`:streamGenerateContent?alt=sse`) is a sequence of
//! [`GenerateContentResponse`] objects; each carries the *cumulative* `usageMetadata`.

use super::open_struct::open_struct;
use super::Extra;
use serde::Serialize;
use serde_json::Value;

/// `POST /v1beta/models/{model}:generateContent` request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    /// Conversation turns.
    pub contents: Vec<Content>,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content>,
    /// Tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// Tool calling mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    /// Sampling and output configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
    /// Safety settings, raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_settings: Option<Value>,
    /// Name of a cached content resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_content: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(GenerateContentRequest {
    contents: req "contents",
    system_instruction: def "systemInstruction",
    tools: def "tools",
    tool_config: def "toolConfig",
    generation_config: def "generationConfig",
    safety_settings: def "safetySettings",
    cached_content: def "cachedContent",
});

/// One turn (or the system instruction).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Content {
    /// `user` or `model` (absent on system instructions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Parts.
    #[serde(default)]
    pub parts: Vec<Part>,
}

open_struct!(closed Content {
    role: def "role",
    parts: def "parts",
});

/// One part: exactly one of the data fields is set; `thought` marks reasoning text.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The text is a thought summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    /// Opaque signature of the thought, to send back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
    /// Inline bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<Blob>,
    /// A file by URI (Files API or `gs://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData>,
    /// A function call by the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall>,
    /// A function result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_response: Option<FunctionResponse>,
    /// Other part kinds (`executableCode`...), raw.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(Part {
    text: def "text",
    thought: def "thought",
    thought_signature: def "thoughtSignature",
    inline_data: def "inlineData",
    file_data: def "fileData",
    function_call: def "functionCall",
    function_response: def "functionResponse",
});

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Part {
            text: Some(text.into()),
            ..Part::default()
        }
    }
}

/// Inline data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    /// MIME type.
    pub mime_type: String,
    /// Base64 bytes.
    pub data: String,
}

open_struct!(closed Blob {
    mime_type: req "mimeType",
    data: req "data",
});

/// A file reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    /// MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// File URI.
    pub file_uri: String,
}

open_struct!(closed FileData {
    mime_type: def "mimeType",
    file_uri: req "fileUri",
});

/// A function call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionCall {
    /// Call id (newer models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Function name.
    pub name: String,
    /// Arguments object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
}

open_struct!(closed FunctionCall {
    id: def "id",
    name: req "name",
    args: def "args",
});

/// A function result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionResponse {
    /// Call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Function name.
    pub name: String,
    /// Result object.
    #[serde(default)]
    pub response: Value,
}

open_struct!(closed FunctionResponse {
    id: def "id",
    name: req "name",
    response: def "response",
});

/// A tool entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// Function declarations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_declarations: Option<Vec<FunctionDeclaration>>,
    /// Built-in tools (`googleSearch`, `codeExecution`...), raw.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(Tool {
    function_declarations: def "functionDeclarations",
});

/// A function declaration.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDeclaration {
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// OpenAPI-subset schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Full JSON schema (alternative to `parameters`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters_json_schema: Option<Value>,
}

open_struct!(closed FunctionDeclaration {
    name: req "name",
    description: def "description",
    parameters: def "parameters",
    parameters_json_schema: def "parametersJsonSchema",
});

/// `toolConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    /// Function calling mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_calling_config: Option<FunctionCallingConfig>,
}

open_struct!(closed ToolConfig {
    function_calling_config: def "functionCallingConfig",
});

/// `functionCallingConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    /// `AUTO`, `ANY`, `NONE`, `VALIDATED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Restricts `ANY` to these functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_function_names: Option<Vec<String>>,
}

open_struct!(closed FunctionCallingConfig {
    mode: def "mode",
    allowed_function_names: def "allowedFunctionNames",
});

/// `generationConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    /// Temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Output token limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Number of candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_count: Option<u32>,
    /// `application/json` for JSON mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<String>,
    /// Output schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<Value>,
    /// Thinking configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(GenerationConfig {
    temperature: def "temperature",
    top_p: def "topP",
    top_k: def "topK",
    max_output_tokens: def "maxOutputTokens",
    stop_sequences: def "stopSequences",
    candidate_count: def "candidateCount",
    response_mime_type: def "responseMimeType",
    response_schema: def "responseSchema",
    thinking_config: def "thinkingConfig",
});

/// `thinkingConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    /// Return thought summaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_thoughts: Option<bool>,
    /// Token budget (`-1` dynamic, `0` off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<i64>,
    /// Newer models: `low` / `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_level: Option<String>,
}

open_struct!(closed ThinkingConfig {
    include_thoughts: def "includeThoughts",
    thinking_budget: def "thinkingBudget",
    thinking_level: def "thinkingLevel",
});

/// Response of `generateContent`, and each chunk of `streamGenerateContent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    /// Candidates (empty when the prompt was blocked).
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    /// Cumulative usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<UsageMetadata>,
    /// Model version that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// Response id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// Set when the prompt was blocked (`blockReason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_feedback: Option<Value>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(GenerateContentResponse {
    candidates: def "candidates",
    usage_metadata: def "usageMetadata",
    model_version: def "modelVersion",
    response_id: def "responseId",
    prompt_feedback: def "promptFeedback",
});

/// One candidate.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// Content (may be missing when blocked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// `STOP`, `MAX_TOKENS`, `SAFETY`, `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`,
    /// `MALFORMED_FUNCTION_CALL`, `OTHER`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Candidate index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Fields not modelled here (`safetyRatings`...).
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(Candidate {
    content: def "content",
    finish_reason: def "finishReason",
    index: def "index",
});

/// `usageMetadata`. `promptTokenCount` includes cached tokens; `candidatesTokenCount` excludes
/// thoughts; `totalTokenCount` includes everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_token_count: u64,
    /// Output tokens without thoughts.
    #[serde(default)]
    pub candidates_token_count: u64,
    /// Everything.
    #[serde(default)]
    pub total_token_count: u64,
    /// Prompt tokens served from cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_content_token_count: Option<u64>,
    /// Thinking tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thoughts_token_count: Option<u64>,
    /// Tokens of tool-use prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_prompt_token_count: Option<u64>,
}

open_struct!(closed UsageMetadata {
    prompt_token_count: def "promptTokenCount",
    candidates_token_count: def "candidatesTokenCount",
    total_token_count: def "totalTokenCount",
    cached_content_token_count: def "cachedContentTokenCount",
    thoughts_token_count: def "thoughtsTokenCount",
    tool_use_prompt_token_count: def "toolUsePromptTokenCount",
});

/// Error body `{"error":{"code","message","status"}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

open_struct!(closed ErrorResponse {
    error: req "error",
});

/// Google RPC status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorDetail {
    /// HTTP status code.
    #[serde(default)]
    pub code: u16,
    /// Message.
    #[serde(default)]
    pub message: String,
    /// `INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`, `PERMISSION_DENIED`...
    #[serde(default)]
    pub status: String,
}

open_struct!(closed ErrorDetail {
    code: def "code",
    message: def "message",
    status: def "status",
});

/// The model named in a Gemini REST path (`/v1beta/models/<model>:generateContent`, with or
/// without a query string); `None` for any other path. Not normalised: plugins use
/// [`crate::llm::Api::model_in_path`] (or [`crate::llm::Api::any_model_in_path`]), which
/// compare the spelling the upstream reads.
///
/// ```
/// # #![allow(deprecated)]
/// use aigw::llm::gemini::model_in_path;
///
/// assert_eq!(
///     model_in_path("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
///     Some("gemini-2.5-flash")
/// );
/// assert_eq!(model_in_path("/v1/models/gpt-4o"), None);
/// ```
#[deprecated(note = "use aigw::llm::Api::model_in_path or Api::any_model_in_path")]
pub fn model_in_path(path: &str) -> Option<&str> {
    let path = path.split('?').next().unwrap_or(path);
    let at = path.find("/models/")?;
    let rest = path.get(at + "/models/".len()..)?;
    let (model, _) = rest.split_once(':')?;
    (!model.is_empty() && !model.contains('/')).then_some(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(deprecated)]
    fn models_in_paths() {
        assert_eq!(
            model_in_path("/v1beta/models/gemini-2.5-pro:generateContent?alt=sse"),
            Some("gemini-2.5-pro")
        );
        assert_eq!(model_in_path("/v1/models"), None);
        assert_eq!(model_in_path("/v1/chat/completions"), None);
        assert_eq!(model_in_path("/v1beta/models/:generateContent"), None);
        assert_eq!(model_in_path("/v1beta/models/a/b:x"), None);
    }

    #[test]
    fn parses_request_and_streamed_chunk() {
        let req: GenerateContentRequest = serde_json::from_str(
            r#"{"systemInstruction":{"parts":[{"text":"be brief"}]},
                "contents":[{"role":"user","parts":[{"text":"hi"},{"inlineData":{"mimeType":"image/png","data":"iVBO"}}]},
                            {"role":"model","parts":[{"functionCall":{"name":"f","args":{"a":1}}}]},
                            {"role":"user","parts":[{"functionResponse":{"name":"f","response":{"ok":true}}}]}],
                "tools":[{"functionDeclarations":[{"name":"f","parameters":{"type":"object"}}]},{"googleSearch":{}}],
                "generationConfig":{"maxOutputTokens":100,"thinkingConfig":{"includeThoughts":true,"thinkingBudget":-1},"seed":3}}"#,
        )
        .unwrap();
        assert_eq!(
            req.contents[0].parts[1]
                .inline_data
                .as_ref()
                .unwrap()
                .mime_type,
            "image/png"
        );
        assert_eq!(
            req.contents[1].parts[0]
                .function_call
                .as_ref()
                .unwrap()
                .name,
            "f"
        );
        let tools = req.tools.as_ref().unwrap();
        assert!(tools[1].extra.contains_key("googleSearch"));
        let gc = req.generation_config.as_ref().unwrap();
        assert_eq!(
            gc.thinking_config.as_ref().unwrap().thinking_budget,
            Some(-1)
        );
        assert_eq!(gc.extra.get("seed"), Some(&serde_json::json!(3)));

        let chunk: GenerateContentResponse = serde_json::from_str(
            r#"{"candidates":[{"content":{"parts":[{"text":"plan","thought":true},{"text":"Hello"}],"role":"model"},"finishReason":"STOP","index":0,"safetyRatings":[]}],
                "usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"totalTokenCount":27,"cachedContentTokenCount":4,"thoughtsTokenCount":12,"promptTokensDetails":[{"modality":"TEXT","tokenCount":10}]},
                "modelVersion":"gemini-2.5-flash","responseId":"abc"}"#,
        )
        .unwrap();
        let c = &chunk.candidates[0];
        assert_eq!(c.content.as_ref().unwrap().parts[0].thought, Some(true));
        assert_eq!(
            chunk.usage_metadata.as_ref().unwrap().thoughts_token_count,
            Some(12)
        );
    }
}
