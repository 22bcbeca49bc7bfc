//! Plugin configuration: the raw serde types ([`schema`]), the Higress
//! `ai-data-masking` fields ([`higress`]), and the compile step
//! ([`compile`]) that checks them and builds a ready [`Guard`].
//!
//! Our own structure (all sections optional):
//! ```json
//! {
//!   "scope": {
//!     "request":  {"enabled": true, "openai": true, "anthropic": true,
//!                  "roles": ["user"], "json_paths": ["$.prompt"], "raw": false},
//!     "response": {"enabled": true, "openai": true, "anthropic": true,
//!                  "json_paths": [], "raw": false}
//!   },
//!   "normalize": {"separators": " .-_*", "max_separator_run": 3},
//!   "keywords": {"lists": [
//!     {"name": "politics", "action": "block", "words": ["..."], "words_text": "a\nb",
//!      "whole_word": false, "ignore_separators": true}
//!   ]},
//!   "patterns": [
//!     {"builtin": "phone_cn", "action": "mask", "restore": true},
//!     {"builtin": "secrets", "action": "block"},
//!     {"name": "ticket", "regex": "TCK-[0-9]{6}", "action": "mask", "type": "hash"}
//!   ],
//!   "mask": {"hash_salt": "..."},
//!   "block": {"style": "error", "status": 400, "message": "..."},
//!   "stream": {"enabled": true, "max_match_len": 128},
//!   "body": {"max_bytes": 1048576, "over_limit": "pass", "on_parse_error": "reject"},
//!   "restore": {"max_entries": 256, "max_bytes": 65536},
//!   "moderation": {"cluster": "moderation", "timeout_ms": 2000, "on_error": "allow"}
//! }
//! ```
//! Higress `ai-data-masking` fields are accepted too and mapped onto this
//! structure: `deny_openai`, `deny_raw`, `deny_jsonpath`, `deny_words`,
//! `deny_code`, `deny_message`, `deny_raw_message`, `deny_content_type`,
//! `replace_roles` (`regex` with `%{GROK}` names, `type` replace|hash,
//! `restore`, `value`) and `system_deny` (accepted with a warning: no word
//! dictionary is bundled).
//!
//! Errors name the field and the reason, e.g.
//! `keywords.lists[2].words[5]: empty word`.

use std::rc::Rc;

use aigw::reply::Protocol;
use serde::Deserialize;

use crate::engine::Engine;
use crate::scope::Selection;
use crate::vault::Vault;

pub use aigw::config::ConfigError;

pub mod compile;
mod grok;
pub mod higress;
pub mod schema;
#[cfg(test)]
mod tests;

pub use higress::ReplaceRole;
pub use schema::*;

/// An error for `field` (dotted path) with `reason`.
fn err<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError::new(field, reason))
}

/// How a block is answered (`block.style`: `error` or `answer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockStyle {
    /// An API error: OpenAI `{"error":{...,"code":"content_filter"}}` or the
    /// Anthropic error shape.
    Error,
    /// A normal-looking answer carrying the message (Higress style).
    Answer,
}

/// A ready-made block response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockResponse {
    /// HTTP status.
    pub status: u16,
    /// Content-Type header.
    pub content_type: String,
    /// Body.
    pub body: String,
}

/// Validated block settings.
#[derive(Debug, Clone)]
pub struct BlockSettings {
    /// Error or canned answer.
    pub style: BlockStyle,
    /// HTTP status.
    pub status: u16,
    /// Message text.
    pub message: String,
    /// Raw body for non-chat requests.
    pub raw_message: String,
    /// Content type of the raw body.
    pub content_type: String,
}

/// Default block message.
pub const DEFAULT_BLOCK_MESSAGE: &str = "The content was blocked by the content policy.";

impl BlockSettings {
    /// The response for a blocked request of a client speaking `api` (`None`:
    /// not a JSON API, the raw message); `stream`: the client asked for SSE
    /// (only changes the `answer` style).
    pub fn render(&self, api: Option<Protocol>, stream: bool) -> BlockResponse {
        // The bodies are templates with the message quoted by serde_json: the
        // same bytes `serde_json::json!(..).to_string()` wrote (keys sorted,
        // compact), without building a `Value` per block (that code was about
        // 17 KB of the module). `render_is_what_json_values_wrote` checks it.
        let msg = serde_json::to_string(&self.message).unwrap_or_else(|_| "\"\"".to_string());
        let json = "application/json".to_string();
        let (content_type, body) = match (self.style, api) {
            (_, None) => (self.content_type.clone(), self.raw_message.clone()),
            (BlockStyle::Error, Some(Protocol::OpenAi)) => (
                json,
                format!(
                    r#"{{"error":{{"code":"content_filter","message":{msg},"param":null,"type":"invalid_request_error"}}}}"#
                ),
            ),
            (BlockStyle::Error, Some(Protocol::Anthropic)) => (
                json,
                format!(
                    r#"{{"error":{{"message":{msg},"type":"invalid_request_error"}},"type":"error"}}"#
                ),
            ),
            (BlockStyle::Answer, Some(Protocol::OpenAi)) if stream => (
                "text/event-stream".to_string(),
                format!(
                    r#"data: {{"choices":[{{"delta":{{"content":{msg},"role":"assistant"}},"finish_reason":"content_filter","index":0}}],"created":0,"id":"chatcmpl-blocked","model":"ai-guard","object":"chat.completion.chunk"}}"#
                ) + "\n\ndata: [DONE]\n\n",
            ),
            (BlockStyle::Answer, Some(Protocol::OpenAi)) => (
                json,
                format!(
                    r#"{{"choices":[{{"finish_reason":"content_filter","index":0,"message":{{"content":{msg},"role":"assistant"}}}}],"created":0,"id":"chatcmpl-blocked","model":"ai-guard","object":"chat.completion","usage":{{"completion_tokens":0,"prompt_tokens":0,"total_tokens":0}}}}"#
                ),
            ),
            (BlockStyle::Answer, Some(Protocol::Anthropic)) if stream => {
                let delta = format!(
                    r#"{{"delta":{{"text":{msg},"type":"text_delta"}},"index":0,"type":"content_block_delta"}}"#
                );
                let events: [(&str, &str); 6] = [
                    (
                        "message_start",
                        r#"{"message":{"content":[],"id":"msg_blocked","model":"ai-guard","role":"assistant","stop_reason":null,"type":"message","usage":{"input_tokens":0,"output_tokens":0}},"type":"message_start"}"#,
                    ),
                    (
                        "content_block_start",
                        r#"{"content_block":{"text":"","type":"text"},"index":0,"type":"content_block_start"}"#,
                    ),
                    ("content_block_delta", &delta),
                    (
                        "content_block_stop",
                        r#"{"index":0,"type":"content_block_stop"}"#,
                    ),
                    (
                        "message_delta",
                        r#"{"delta":{"stop_reason":"refusal"},"type":"message_delta","usage":{"output_tokens":0}}"#,
                    ),
                    ("message_stop", r#"{"type":"message_stop"}"#),
                ];
                let mut body = String::new();
                for (name, data) in events {
                    body.push_str("event: ");
                    body.push_str(name);
                    body.push_str("\ndata: ");
                    body.push_str(data);
                    body.push_str("\n\n");
                }
                ("text/event-stream".to_string(), body)
            }
            (BlockStyle::Answer, Some(Protocol::Anthropic)) => (
                json,
                format!(
                    r#"{{"content":[{{"text":{msg},"type":"text"}}],"id":"msg_blocked","model":"ai-guard","role":"assistant","stop_reason":"refusal","type":"message","usage":{{"input_tokens":0,"output_tokens":0}}}}"#
                ),
            ),
        };
        BlockResponse {
            status: self.status,
            content_type,
            body,
        }
    }
}

/// What to do with a non-streamed body larger than `body.max_bytes`
/// (`body.over_limit`: `pass` or `block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverLimit {
    /// Forward it unscanned.
    #[default]
    Pass,
    /// Reject it.
    Block,
}

/// What to do with a request body that cannot be parsed
/// (`body.on_parse_error`: `reject` or `pass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParseErrorPolicy {
    /// Answer 400 in the client's protocol.
    #[default]
    Reject,
    /// Forward it unscanned.
    Pass,
}

/// The compiled configuration: everything the plugin needs at run time.
#[derive(Debug, Clone)]
pub struct Guard {
    /// The rules (shared by all requests of this plugin instance).
    pub engine: Rc<Engine>,
    /// What to scan in requests (`None`: requests are not scanned).
    pub request: Option<Selection>,
    /// What to scan in responses (`None`: responses are not scanned).
    pub response: Option<Selection>,
    /// Scan streamed answers.
    pub stream: bool,
    /// Block response settings.
    pub block: BlockSettings,
    /// Largest non-streamed body scanned.
    pub max_body_bytes: usize,
    /// Policy beyond `max_body_bytes`.
    pub over_limit: OverLimit,
    /// Policy for request bodies that cannot be parsed.
    pub on_parse_error: ParseErrorPolicy,
    /// Vault bounds.
    pub restore: (usize, usize),
    /// Whether any rule records restorable masks.
    pub has_restore: bool,
    /// External moderation of requests (`None`: off).
    pub moderation: Option<crate::moderation::Moderation>,
    /// Longest masked question/answer published for access logs (0: off).
    pub log_max_bytes: usize,
    /// Non-fatal remarks to log once at configure time.
    pub warnings: Vec<String>,
}

impl Guard {
    /// Parses and compiles a JSON configuration as the plugin does (empty
    /// input: defaults, no rules); errors name the field path.
    pub fn from_json(bytes: &[u8]) -> Result<Guard, ConfigError> {
        aigw::config::parse::<crate::settings::Config>(bytes).map(|c| c.guard)
    }

    /// Validates and compiles a parsed configuration.
    pub fn from_config(cfg: &GuardConfig) -> Result<Guard, ConfigError> {
        compile::compile(cfg)
    }

    /// A fresh vault for one request.
    pub fn new_vault(&self) -> Vault {
        Vault::new(self.restore.0, self.restore.1)
    }
}
