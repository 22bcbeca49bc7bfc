//! Anthropic Messages API wire types: request, response, stream events and error body.

use super::open_struct::open_struct;
use super::{tagged, Extra};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `POST /v1/messages` request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MessagesRequest {
    /// Model name.
    pub model: String,
    /// Alternating user/assistant turns.
    pub messages: Vec<Message>,
    /// System prompt (string or text blocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// Output token limit (required by the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Stream as server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Tool definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// Tool choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Extended thinking configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    /// Request metadata (`user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(MessagesRequest {
    model: req "model",
    messages: req "messages",
    system: def "system",
    max_tokens: def "max_tokens",
    stop_sequences: def "stop_sequences",
    stream: def "stream",
    temperature: def "temperature",
    top_p: def "top_p",
    top_k: def "top_k",
    tools: def "tools",
    tool_choice: def "tool_choice",
    thinking: def "thinking",
    metadata: def "metadata",
});

/// `system`: a string or an array of text blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SystemPrompt {
    /// Plain text.
    Text(String),
    /// Text blocks (may carry `cache_control`).
    Blocks(Vec<ContentBlock>),
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The user (tool results are user content).
    User,
    /// The model.
    Assistant,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// String shorthand or blocks.
    pub content: Content,
}

open_struct!(closed Message {
    role: req "role",
    content: req "content",
});

/// Message content.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Content {
    /// Shorthand for one text block.
    Text(String),
    /// Content blocks.
    Blocks(Vec<ContentBlock>),
}

/// A content block.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Prompt-cache marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    /// An image.
    Image {
        /// Where the image comes from.
        source: ImageSource,
        /// Prompt-cache marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    /// A tool call by the model.
    ToolUse {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments object.
        #[serde(default)]
        input: Value,
        /// Prompt-cache marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    /// The result of a tool call (user content).
    ToolResult {
        /// The call this answers.
        tool_use_id: String,
        /// Result text or blocks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Content>,
        /// The tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        /// Prompt-cache marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    /// Extended thinking output.
    Thinking {
        /// The reasoning text.
        thinking: String,
        /// Integrity signature to send back on the next turn.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// Encrypted thinking.
    RedactedThinking {
        /// Opaque data.
        data: String,
    },
    /// Any other block type (documents, server tools...), kept raw.
    #[serde(untagged)]
    Other(Value),
}

/// Image source.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// Inline base64 bytes.
    Base64 {
        /// `image/png`, `image/jpeg`, `image/gif`, `image/webp`.
        media_type: String,
        /// Base64 data.
        data: String,
    },
    /// A URL Anthropic fetches itself.
    Url {
        /// The image URL.
        url: String,
    },
    /// Other sources (`file`), kept raw.
    #[serde(untagged)]
    Other(Value),
}

tagged::text_or_parts_enum!(SystemPrompt {
    Text,
    Blocks: ContentBlock::from_value
});

tagged::text_or_parts_enum!(Content {
    Text,
    Blocks: ContentBlock::from_value
});

tagged::known_or_other!(ContentBlock);

impl ContentBlock {
    fn known(v: &Value) -> Option<Self> {
        let (kind, m) = tagged::tag(v)?;
        let cache_control = || tagged::opt_raw(m, "cache_control");
        Some(match kind {
            "text" => ContentBlock::Text {
                text: tagged::req_str(m, "text")?,
                cache_control: cache_control(),
            },
            "image" => ContentBlock::Image {
                source: ImageSource::from_value(m.get("source")?.clone()),
                cache_control: cache_control(),
            },
            "tool_use" => ContentBlock::ToolUse {
                id: tagged::req_str(m, "id")?,
                name: tagged::req_str(m, "name")?,
                input: m.get("input").cloned().unwrap_or_default(),
                cache_control: cache_control(),
            },
            "tool_result" => ContentBlock::ToolResult {
                tool_use_id: tagged::req_str(m, "tool_use_id")?,
                content: match m.get("content") {
                    None | Some(Value::Null) => None,
                    Some(c) => Some(Content::from_value(c.clone()).ok()?),
                },
                is_error: tagged::opt_bool(m, "is_error")?,
                cache_control: cache_control(),
            },
            "thinking" => ContentBlock::Thinking {
                thinking: tagged::req_str(m, "thinking")?,
                signature: tagged::opt_str(m, "signature")?,
            },
            "redacted_thinking" => ContentBlock::RedactedThinking {
                data: tagged::req_str(m, "data")?,
            },
            _ => return None,
        })
    }
}

tagged::known_or_other!(ImageSource);

impl ImageSource {
    fn known(v: &Value) -> Option<Self> {
        let (kind, m) = tagged::tag(v)?;
        Some(match kind {
            "base64" => ImageSource::Base64 {
                media_type: tagged::req_str(m, "media_type")?,
                data: tagged::req_str(m, "data")?,
            },
            "url" => ImageSource::Url {
                url: tagged::req_str(m, "url")?,
            },
            _ => return None,
        })
    }
}

/// A tool definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    /// Tool name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON schema of the input (absent on server tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// Set on server/built-in tools (`web_search_20250305`, `bash_20250124`...).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Prompt-cache marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(Tool {
    name: req "name",
    description: def "description",
    input_schema: def "input_schema",
    kind: def "type",
    cache_control: def "cache_control",
});

/// Tool choice.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto {
        /// At most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// Must use some tool.
    Any {
        /// At most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// Must use the named tool.
    Tool {
        /// Tool name.
        name: String,
        /// At most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// Must not use tools.
    None {},
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        ToolChoice::from_value(&v).map_err(serde::de::Error::custom)
    }
}

impl ToolChoice {
    /// Decodes `{"type": "auto" | "any" | "tool" | "none", ...}`; errors name what did not fit,
    /// as serde's derived decoder of the tagged enum did.
    fn from_value(v: &Value) -> Result<Self, String> {
        let m = v
            .as_object()
            .ok_or("invalid type, expected internally tagged enum ToolChoice")?;
        let kind = m.get("type").ok_or("missing field `type`")?;
        let kind = kind
            .as_str()
            .ok_or("invalid type for `type`, expected a string")?;
        let parallel = || {
            tagged::opt_bool(m, "disable_parallel_tool_use")
                .ok_or("invalid type for `disable_parallel_tool_use`, expected a boolean")
        };
        Ok(match kind {
            "auto" => ToolChoice::Auto {
                disable_parallel_tool_use: parallel()?,
            },
            "any" => ToolChoice::Any {
                disable_parallel_tool_use: parallel()?,
            },
            "tool" => ToolChoice::Tool {
                name: match m.get("name") {
                    None => return Err("missing field `name`".into()),
                    Some(n) => n
                        .as_str()
                        .ok_or("invalid type for `name`, expected a string")?
                        .to_owned(),
                },
                disable_parallel_tool_use: parallel()?,
            },
            "none" => ToolChoice::None {},
            other => {
                return Err(format!(
                    "unknown variant `{other}`, expected one of `auto`, `any`, `tool`, `none`"
                ))
            }
        })
    }
}

/// Extended thinking configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThinkingConfig {
    /// `enabled` or `disabled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Token budget for thinking (when enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u32>,
}

open_struct!(closed ThinkingConfig {
    kind: req "type",
    budget_tokens: def "budget_tokens",
});

/// Token usage as Anthropic reports it. `input_tokens` excludes cache reads and writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens (thinking included).
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Fields not modelled here (`service_tier`, `server_tool_use`...).
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(Usage {
    input_tokens: def "input_tokens",
    output_tokens: def "output_tokens",
    cache_creation_input_tokens: def "cache_creation_input_tokens",
    cache_read_input_tokens: def "cache_read_input_tokens",
});

/// Non-streamed `message` response (also the `message` of `message_start`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessagesResponse {
    /// Message id.
    pub id: String,
    /// `message`.
    #[serde(rename = "type", default = "message_type")]
    pub kind: String,
    /// Always `assistant`.
    pub role: Role,
    /// Output blocks (empty in `message_start`).
    #[serde(default)]
    pub content: Vec<ContentBlock>,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`, `refusal`.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence that matched.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Token usage.
    #[serde(default)]
    pub usage: Usage,
}

open_struct!(closed MessagesResponse {
    id: req "id",
    kind: or(message_type) "type",
    role: req "role",
    content: def "content",
    model: def "model",
    stop_reason: def "stop_reason",
    stop_sequence: def "stop_sequence",
    usage: def "usage",
});

fn message_type() -> String {
    "message".to_string()
}

/// One event of a streamed response (the SSE `data`, tagged by `type`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// First event: the message shell with input usage.
    MessageStart {
        /// Message with empty content.
        message: MessagesResponse,
    },
    /// A block opens.
    ContentBlockStart {
        /// Block index.
        index: u32,
        /// The block with empty text/input.
        content_block: ContentBlock,
    },
    /// A block grows.
    ContentBlockDelta {
        /// Block index.
        index: u32,
        /// The increment.
        delta: BlockDelta,
    },
    /// A block closes.
    ContentBlockStop {
        /// Block index.
        index: u32,
    },
    /// Stop reason and cumulative output usage.
    MessageDelta {
        /// Stop reason.
        delta: MessageDeltaBody,
        /// Cumulative usage.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<DeltaUsage>,
    },
    /// Last event.
    MessageStop {},
    /// Keep-alive.
    Ping {},
    /// An error in the middle of the stream.
    Error {
        /// The error.
        error: ErrorDetail,
    },
    /// Unknown event type, kept raw.
    #[serde(untagged)]
    Other(Value),
}

/// `delta` of `content_block_delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    /// Text increment.
    TextDelta {
        /// Text.
        text: String,
    },
    /// Tool input JSON fragment.
    InputJsonDelta {
        /// Fragment of the JSON arguments.
        partial_json: String,
    },
    /// Thinking increment.
    ThinkingDelta {
        /// Thinking text.
        thinking: String,
    },
    /// Thinking signature.
    SignatureDelta {
        /// Signature.
        signature: String,
    },
    /// Unknown delta (citations...), kept raw.
    #[serde(untagged)]
    Other(Value),
}

/// `delta` of `message_delta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MessageDeltaBody {
    /// Why the message ended.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence that matched.
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

open_struct!(closed MessageDeltaBody {
    stop_reason: def "stop_reason",
    stop_sequence: def "stop_sequence",
});

/// `usage` of `message_delta`: `output_tokens` is cumulative; newer API versions repeat the input
/// fields, which must replace rather than add to the `message_start` values.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeltaUsage {
    /// Cumulative output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Uncached input tokens (repeated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Cache writes (repeated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Cache reads (repeated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
}

open_struct!(closed DeltaUsage {
    output_tokens: def "output_tokens",
    input_tokens: def "input_tokens",
    cache_creation_input_tokens: def "cache_creation_input_tokens",
    cache_read_input_tokens: def "cache_read_input_tokens",
});

/// Error body `{"type":"error","error":{"type","message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorResponse {
    /// `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error.
    pub error: ErrorDetail,
}

open_struct!(closed ErrorResponse {
    kind: req "type",
    error: req "error",
});

/// Inner error: `invalid_request_error`, `authentication_error`, `permission_error`,
/// `not_found_error`, `request_too_large`, `rate_limit_error`, `api_error`, `overloaded_error`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorDetail {
    /// Error type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Message.
    pub message: String,
}

open_struct!(closed ErrorDetail {
    kind: req "type",
    message: req "message",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_with_blocks_tools_and_thinking() {
        let body = r#"{
          "model": "claude-sonnet-4-5",
          "max_tokens": 1024,
          "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
          "thinking": {"type": "enabled", "budget_tokens": 2048},
          "tools": [{"name": "get_weather", "description": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
                    {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
          "tool_choice": {"type": "auto"},
          "messages": [
            {"role": "user", "content": [
               {"type": "text", "text": "Weather in Paris?"},
               {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
               {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]},
            {"role": "assistant", "content": [
               {"type": "thinking", "thinking": "need tool", "signature": "sig=="},
               {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}
          ],
          "service_tier": "auto"
        }"#;
        let req: MessagesRequest = serde_json::from_str(body).unwrap();
        assert!(matches!(req.system, Some(SystemPrompt::Blocks(ref b)) if b.len() == 1));
        assert_eq!(
            req.thinking.as_ref().and_then(|t| t.budget_tokens),
            Some(2048)
        );
        let tools = req.tools.as_ref().unwrap();
        assert_eq!(tools[1].kind.as_deref(), Some("web_search_20250305"));
        assert_eq!(tools[1].extra.get("max_uses"), Some(&serde_json::json!(3)));
        let Content::Blocks(b) = &req.messages[0].content else {
            panic!()
        };
        assert!(matches!(&b[2], ContentBlock::Other(v) if v["type"] == "document"));
        let Content::Blocks(b) = &req.messages[1].content else {
            panic!()
        };
        assert!(matches!(&b[1], ContentBlock::ToolUse { input, .. } if input["city"] == "Paris"));
        assert_eq!(
            req.extra.get("service_tier"),
            Some(&serde_json::json!("auto"))
        );
    }

    #[test]
    fn parses_every_stream_event() {
        let events = [
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_read_input_tokens":100,"cache_creation_input_tokens":0,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Hi"}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}"#,
            r#"{"type":"message_stop"}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            r#"{"type":"brand_new_event","x":1}"#,
        ];
        let parsed: Vec<StreamEvent> = events
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        assert!(
            matches!(&parsed[0], StreamEvent::MessageStart { message } if message.usage.cache_read_input_tokens == Some(100))
        );
        assert!(
            matches!(&parsed[2], StreamEvent::ContentBlockDelta { delta: BlockDelta::ThinkingDelta { thinking }, .. } if thinking == "hmm")
        );
        assert!(matches!(
            &parsed[3],
            StreamEvent::ContentBlockDelta {
                delta: BlockDelta::SignatureDelta { .. },
                ..
            }
        ));
        assert!(
            matches!(&parsed[5], StreamEvent::ContentBlockDelta { delta: BlockDelta::InputJsonDelta { partial_json }, .. } if partial_json == "{\"a\":")
        );
        assert!(
            matches!(&parsed[8], StreamEvent::MessageDelta { usage: Some(u), .. } if u.output_tokens == 42)
        );
        assert!(matches!(parsed[9], StreamEvent::MessageStop {}));
        assert!(matches!(parsed[10], StreamEvent::Ping {}));
        assert!(
            matches!(&parsed[11], StreamEvent::Error { error } if error.kind == "overloaded_error")
        );
        assert!(matches!(&parsed[12], StreamEvent::Other(_)));
        assert_eq!(
            serde_json::to_string(&parsed[9]).unwrap(),
            r#"{"type":"message_stop"}"#
        );
    }

    #[test]
    fn blocks_whose_fields_do_not_fit_stay_raw() {
        let blocks: Vec<ContentBlock> = serde_json::from_str(
            r#"[{"type":"text"},{"type":"text","text":"a","cache_control":null},
                {"type":"tool_use","id":"i","name":"n"},{"type":"tool_result","tool_use_id":"i","content":5},
                {"type":"image","source":{"type":"url","url":7}},"x"]"#,
        )
        .unwrap();
        assert_eq!(
            blocks[0],
            ContentBlock::Other(serde_json::json!({"type":"text"}))
        );
        assert_eq!(
            blocks[1],
            ContentBlock::Text {
                text: "a".into(),
                cache_control: None
            }
        );
        assert!(matches!(
            &blocks[2],
            ContentBlock::ToolUse {
                input: Value::Null,
                ..
            }
        ));
        assert!(matches!(blocks[3], ContentBlock::Other(_)));
        assert!(matches!(
            &blocks[4],
            ContentBlock::Image {
                source: ImageSource::Other(_),
                ..
            }
        ));
        assert_eq!(blocks[5], ContentBlock::Other(Value::from("x")));
        assert!(serde_json::from_str::<Content>("5").is_err());
    }

    #[test]
    fn tool_choice_decodes_every_type_and_names_a_bad_one() {
        let tc: ToolChoice = serde_json::from_str(r#"{"type":"tool","name":"f"}"#).unwrap();
        assert_eq!(
            tc,
            ToolChoice::Tool {
                name: "f".into(),
                disable_parallel_tool_use: None
            }
        );
        let tc: ToolChoice =
            serde_json::from_str(r#"{"type":"any","disable_parallel_tool_use":true}"#).unwrap();
        assert_eq!(
            tc,
            ToolChoice::Any {
                disable_parallel_tool_use: Some(true)
            }
        );
        assert_eq!(
            serde_json::from_str::<ToolChoice>(r#"{"type":"none"}"#).unwrap(),
            ToolChoice::None {}
        );
        let err = serde_json::from_str::<ToolChoice>(r#"{"type":"some"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant `some`"), "{err}");
        let err = serde_json::from_str::<ToolChoice>(r#"{"type":"tool"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `name`"), "{err}");
        assert!(serde_json::from_str::<ToolChoice>(r#""auto""#).is_err());
    }
}
