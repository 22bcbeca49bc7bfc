//! Plugin configuration: serde types, validation, and compilation into a
//! ready [`Guard`].
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

use crate::engine::{Action, Engine, EngineBuilder, MaskStyle, Rule, RuleKind};
use crate::normalize::{Folder, DEFAULT_MAX_SEPARATOR_RUN, DEFAULT_SEPARATORS};
use crate::patterns::Builtin;
use crate::scope::{Direction, JsonPath, Selection};
use crate::vault::Vault;

/// A configuration error: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the offending field (`patterns[1].regex`), empty for syntax
    /// errors of the whole document.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        field: field.into(),
        reason: reason.into(),
    })
}

/// The whole plugin configuration, as written by users.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// What to scan in requests and responses.
    pub scope: ScopeConfig,
    /// Text folding for keyword matching.
    pub normalize: NormalizeConfig,
    /// Keyword lists.
    pub keywords: KeywordsConfig,
    /// Regex rules (built-in or custom).
    pub patterns: Vec<PatternConfig>,
    /// Masking settings.
    pub mask: MaskConfig,
    /// What a block looks like to the client.
    pub block: BlockConfig,
    /// Streaming settings.
    pub stream: StreamConfig,
    /// Non-streamed body handling.
    pub body: BodyConfig,
    /// Restore vault bounds.
    pub restore: RestoreConfig,
    /// External moderation call-out (off unless present).
    pub moderation: Option<crate::moderation::ModerationConfig>,
    /// Masked question/answer published for access logs (ai-statistics).
    pub log: LogConfig,

    /// Higress: scan OpenAI-protocol text (requests and responses).
    pub deny_openai: Option<bool>,
    /// Higress: scan raw (non-JSON) bodies.
    pub deny_raw: Option<bool>,
    /// Higress: extra JSON paths to scan.
    pub deny_jsonpath: Option<Vec<String>>,
    /// Higress: a built-in dictionary switch (not bundled here; warning).
    pub system_deny: Option<bool>,
    /// Higress: words that block.
    pub deny_words: Option<Vec<String>>,
    /// Higress: HTTP status of a block (implies the canned-answer style).
    pub deny_code: Option<u16>,
    /// Higress: canned answer text on a block.
    pub deny_message: Option<String>,
    /// Higress: body returned on a block of a non-chat request.
    pub deny_raw_message: Option<String>,
    /// Higress: content type of `deny_raw_message`.
    pub deny_content_type: Option<String>,
    /// Higress: regex replacement rules.
    pub replace_roles: Option<Vec<ReplaceRole>>,
}

/// `scope` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ScopeConfig {
    /// Request side.
    pub request: DirectionScope,
    /// Response side.
    pub response: DirectionScope,
}

/// `scope.request` / `scope.response`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct DirectionScope {
    /// Scan this direction at all.
    pub enabled: bool,
    /// OpenAI-shaped text.
    pub openai: bool,
    /// Anthropic-shaped text.
    pub anthropic: bool,
    /// Request only: roles to scan (empty: all).
    pub roles: Vec<String>,
    /// Extra JSON paths.
    pub json_paths: Vec<String>,
    /// Scan non-JSON bodies as text.
    pub raw: bool,
}

impl Default for DirectionScope {
    fn default() -> Self {
        DirectionScope {
            enabled: true,
            openai: true,
            anthropic: true,
            roles: Vec::new(),
            json_paths: Vec::new(),
            raw: false,
        }
    }
}

/// `normalize` section.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct NormalizeConfig {
    /// Characters ignored inside words by lists with `ignore_separators`.
    pub separators: String,
    /// Longest separator run still "inside a word" (0..=8).
    pub max_separator_run: usize,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        NormalizeConfig {
            separators: DEFAULT_SEPARATORS.to_string(),
            max_separator_run: DEFAULT_MAX_SEPARATOR_RUN,
        }
    }
}

/// `keywords` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct KeywordsConfig {
    /// The lists.
    pub lists: Vec<KeywordList>,
}

/// One keyword list (one rule).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct KeywordList {
    /// Rule name (logs, block reports). Required.
    pub name: String,
    /// `block` (default), `mask` or `log`.
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["block", "mask", "replace", "log", null])))]
    pub action: Option<String>,
    /// The words.
    pub words: Vec<String>,
    /// More words, one per line (blank lines skipped): compact for big lists.
    pub words_text: Option<String>,
    /// Only match whole ASCII words.
    pub whole_word: bool,
    /// Match with short separator runs inside words (`b.a.d`).
    pub ignore_separators: bool,
    /// Mask style: `replace` (default) or `hash`.
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["replace", "hash", null])))]
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Replacement value (default `[LABEL]`).
    pub value: Option<String>,
    /// Record masked words for restoring in the answer.
    pub restore: bool,
    /// Placeholder label (A-Z, 0-9, _); default: the name upper-cased.
    pub label: Option<String>,
}

/// One pattern rule: exactly one of `builtin` and `regex`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct PatternConfig {
    /// Rule name; default: the built-in's name, or `patterns[i]`.
    pub name: Option<String>,
    /// A built-in name, or a group: `pii`, `secrets`, `all`.
    pub builtin: Option<String>,
    /// A custom regex (Rust `regex` syntax; `%{GROK}` names allowed).
    pub regex: Option<String>,
    /// `mask` (default), `block` or `log`.
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["block", "mask", "replace", "log", null])))]
    pub action: Option<String>,
    /// Mask style: `replace` (default) or `hash`.
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["replace", "hash", null])))]
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Replacement value; may use `$1` / `$name` capture groups.
    pub value: Option<String>,
    /// Record masked values for restoring in the answer.
    pub restore: bool,
    /// Placeholder label; default from the built-in (`PHONE`, `EMAIL`...).
    pub label: Option<String>,
}

/// Higress `replace_roles` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ReplaceRole {
    /// Regex, may contain `%{GROK}` names.
    pub regex: String,
    /// `replace` or `hash`.
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["replace", "hash", null])))]
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Restore in the answer.
    pub restore: bool,
    /// Replacement value.
    pub value: Option<String>,
}

/// `mask` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct MaskConfig {
    /// Key of the HMAC used by `hash` masks. Set it: without a secret salt,
    /// hashes of low-entropy values (phone numbers) can be brute-forced.
    #[cfg_attr(feature = "schema", schemars(extend("writeOnly" = true)))]
    pub hash_salt: String,
}

/// `block` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct BlockConfig {
    /// `error` (default: OpenAI/Anthropic error, code `content_filter`) or
    /// `answer` (Higress style: a normal-looking answer with `message`).
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["error", "answer", null])))]
    pub style: Option<String>,
    /// HTTP status; default 400 for `error`, 200 for `answer`.
    pub status: Option<u16>,
    /// Message text.
    pub message: Option<String>,
    /// Body for non-chat (raw) requests.
    pub raw_message: Option<String>,
    /// Content type of `raw_message`.
    pub content_type: Option<String>,
}

/// `stream` section.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Scan streamed answers.
    pub enabled: bool,
    /// Longest regex match in bytes (16..=4096). Sizes the hold-back window
    /// for regexes without a bound; longer matches are cut here.
    pub max_match_len: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            enabled: true,
            max_match_len: 128,
        }
    }
}

/// `body` section.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct BodyConfig {
    /// Largest non-streamed body scanned (1 byte..=256 MiB).
    pub max_bytes: usize,
    /// Beyond `max_bytes`: `pass` (forward unscanned) or `block`.
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["pass", "block"])))]
    pub over_limit: String,
    /// A request body that should be scanned but cannot be (invalid JSON,
    /// not UTF-8, nested too deep): `reject` (400 in the client's protocol)
    /// or `pass` (forward unscanned).
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["reject", "pass"])))]
    pub on_parse_error: String,
}

impl Default for BodyConfig {
    fn default() -> Self {
        BodyConfig {
            max_bytes: 1 << 20,
            over_limit: "pass".to_string(),
            on_parse_error: "reject".to_string(),
        }
    }
}

/// `restore` section.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct RestoreConfig {
    /// Most values restorable per request.
    pub max_entries: usize,
    /// Most bytes the vault holds per request.
    pub max_bytes: usize,
}

impl Default for RestoreConfig {
    fn default() -> Self {
        RestoreConfig {
            max_entries: crate::vault::DEFAULT_MAX_ENTRIES,
            max_bytes: crate::vault::DEFAULT_MAX_BYTES,
        }
    }
}

/// `log` section: the masked texts published in filter state for access
/// logs (see [`crate::published`]).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Longest text published, in bytes (cut at a character boundary);
    /// 0 publishes nothing.
    pub max_bytes: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_bytes: crate::published::DEFAULT_MAX_BYTES,
        }
    }
}

/// How a block is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        use serde_json::json;
        let msg = self.message.as_str();
        let (content_type, body) = match (self.style, api) {
            (_, None) => (self.content_type.clone(), self.raw_message.clone()),
            (BlockStyle::Error, Some(Protocol::OpenAi)) => (
                "application/json".to_string(),
                json!({"error": {"message": msg, "type": "invalid_request_error", "param": null, "code": "content_filter"}})
                    .to_string(),
            ),
            (BlockStyle::Error, Some(Protocol::Anthropic)) => (
                "application/json".to_string(),
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": msg}}).to_string(),
            ),
            (BlockStyle::Answer, Some(Protocol::OpenAi)) if stream => {
                let chunk = json!({"id": "chatcmpl-blocked", "object": "chat.completion.chunk", "created": 0, "model": "ai-guard",
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": msg}, "finish_reason": "content_filter"}]});
                ("text/event-stream".to_string(), format!("data: {chunk}\n\ndata: [DONE]\n\n"))
            }
            (BlockStyle::Answer, Some(Protocol::OpenAi)) => (
                "application/json".to_string(),
                json!({"id": "chatcmpl-blocked", "object": "chat.completion", "created": 0, "model": "ai-guard",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": msg}, "finish_reason": "content_filter"}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}})
                .to_string(),
            ),
            (BlockStyle::Answer, Some(Protocol::Anthropic)) if stream => {
                let events = [
                    ("message_start", json!({"type": "message_start", "message": {"id": "msg_blocked", "type": "message", "role": "assistant", "model": "ai-guard", "content": [], "stop_reason": null, "usage": {"input_tokens": 0, "output_tokens": 0}}})),
                    ("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
                    ("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": msg}})),
                    ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                    ("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "refusal"}, "usage": {"output_tokens": 0}})),
                    ("message_stop", json!({"type": "message_stop"})),
                ];
                let mut body = String::new();
                for (name, data) in events {
                    body.push_str(&format!("event: {name}\ndata: {data}\n\n"));
                }
                ("text/event-stream".to_string(), body)
            }
            (BlockStyle::Answer, Some(Protocol::Anthropic)) => (
                "application/json".to_string(),
                json!({"id": "msg_blocked", "type": "message", "role": "assistant", "model": "ai-guard",
                    "content": [{"type": "text", "text": msg}], "stop_reason": "refusal",
                    "usage": {"input_tokens": 0, "output_tokens": 0}})
                .to_string(),
            ),
        };
        BlockResponse {
            status: self.status,
            content_type,
            body,
        }
    }
}

/// What to do with a non-streamed body larger than `body.max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// Forward it unscanned.
    Pass,
    /// Reject it.
    Block,
}

/// What to do with a request body that cannot be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorPolicy {
    /// Answer 400 in the client's protocol.
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
    /// Parses and compiles a JSON configuration (empty input: defaults, no
    /// rules).
    pub fn from_json(bytes: &[u8]) -> Result<Guard, ConfigError> {
        let trimmed = bytes.trim_ascii();
        let cfg: GuardConfig = if trimmed.is_empty() {
            GuardConfig::default()
        } else {
            serde_json::from_slice(trimmed).map_err(|e| ConfigError {
                field: String::new(),
                reason: format!("invalid configuration: {e}"),
            })?
        };
        Guard::from_config(&cfg)
    }

    /// Validates and compiles a parsed configuration.
    pub fn from_config(cfg: &GuardConfig) -> Result<Guard, ConfigError> {
        compile(cfg)
    }

    /// A fresh vault for one request.
    pub fn new_vault(&self) -> Vault {
        Vault::new(self.restore.0, self.restore.1)
    }
}

fn word_error(e: crate::keywords::WordError) -> String {
    match e {
        crate::keywords::WordError::Empty => "empty word".to_string(),
        crate::keywords::WordError::TooLong => {
            format!("longer than {} characters", crate::keywords::MAX_WORD_CHARS)
        }
    }
}

fn parse_action(field: &str, v: Option<&str>, default: Action) -> Result<Action, ConfigError> {
    match v {
        None => Ok(default),
        Some("block") => Ok(Action::Block),
        Some("mask") | Some("replace") => Ok(Action::Mask),
        Some("log") => Ok(Action::Log),
        Some(other) => err(
            field,
            format!("unknown action \"{other}\" (expected block, mask or log)"),
        ),
    }
}

fn parse_style(
    field: &str,
    kind: Option<&str>,
    value: Option<&str>,
) -> Result<MaskStyle, ConfigError> {
    match kind {
        None | Some("replace") => Ok(MaskStyle::Replace(value.map(str::to_string))),
        Some("hash") => Ok(MaskStyle::Hash),
        Some(other) => err(
            field,
            format!("unknown type \"{other}\" (expected replace or hash)"),
        ),
    }
}

fn check_label(field: &str, label: &str) -> Result<(), ConfigError> {
    if label.is_empty()
        || label.len() > 32
        || !label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return err(field, "use 1 to 32 characters among A-Z, 0-9 and _");
    }
    Ok(())
}

fn default_label(name: &str) -> String {
    let mut l: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    if l.trim_matches('_').is_empty() {
        l = "MASKED".to_string();
    }
    l
}

/// Grok names understood in regexes (`%{NAME}` or `%{NAME:group}`).
fn grok(name: &str) -> Option<&'static str> {
    Some(match name {
        "MOBILE" => r"1[3-9][0-9]{9}",
        "IDCARD" => r"[1-9][0-9]{16}[0-9Xx]",
        "IP" | "IPV4" => {
            r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
        }
        "EMAILLOCALPART" => r"[A-Za-z0-9._%+-]{1,64}",
        "HOSTNAME" => {
            r"[0-9A-Za-z](?:[0-9A-Za-z-]{0,62})(?:\.[0-9A-Za-z](?:[0-9A-Za-z-]{0,62})){0,8}"
        }
        "EMAILADDRESS" => {
            r"[A-Za-z0-9._%+-]{1,64}@[0-9A-Za-z](?:[0-9A-Za-z-]{0,62})(?:\.[0-9A-Za-z](?:[0-9A-Za-z-]{0,62})){0,8}"
        }
        "INT" => r"[+-]?[0-9]{1,20}",
        "NUMBER" => r"[+-]?[0-9]{1,20}(?:\.[0-9]{1,20})?",
        "WORD" => r"\b\w{1,64}\b",
        "NOTSPACE" => r"\S{1,128}",
        "UUID" => r"[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}",
        _ => return None,
    })
}

/// Whole-regex grok names that map to a validated built-in.
fn grok_builtin(src: &str) -> Option<Builtin> {
    match src.trim() {
        "%{MOBILE}" => Some(Builtin::PhoneCn),
        "%{IDCARD}" => Some(Builtin::CnId),
        "%{IP}" | "%{IPV4}" => Some(Builtin::Ipv4),
        "%{IPV6}" => Some(Builtin::Ipv6),
        "%{EMAILADDRESS}" => Some(Builtin::Email),
        _ => None,
    }
}

/// Expands `%{NAME}` / `%{NAME:group}` in a regex.
fn expand_grok(field: &str, src: &str) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(i) = rest.find("%{") {
        out.push_str(rest.get(..i).unwrap_or(""));
        let after = rest.get(i + 2..).unwrap_or("");
        let Some(close) = after.find('}') else {
            return err(field, "unclosed %{ in grok pattern");
        };
        let inner = after.get(..close).unwrap_or("");
        let (name, group) = match inner.split_once(':') {
            Some((n, g)) => (n, Some(g)),
            None => (inner, None),
        };
        let Some(body) = grok(name) else {
            return err(field, format!("unknown grok pattern %{{{name}}}"));
        };
        match group {
            Some(g) => {
                if g.is_empty() || !g.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return err(field, format!("bad grok group name \"{g}\""));
                }
                out.push_str(&format!("(?P<{g}>{body})"));
            }
            None => {
                out.push_str("(?:");
                out.push_str(body);
                out.push(')');
            }
        }
        rest = after.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(out)
}

fn selection(
    field: &str,
    d: &DirectionScope,
    direction: Direction,
) -> Result<Option<Selection>, ConfigError> {
    if !d.enabled {
        return Ok(None);
    }
    let mut paths = Vec::new();
    for (i, p) in d.json_paths.iter().enumerate() {
        match JsonPath::parse(p) {
            Ok(jp) => paths.push(jp),
            Err(e) => {
                return err(
                    format!("{field}.json_paths[{i}]"),
                    format!("invalid JSON path: {e}"),
                )
            }
        }
    }
    for (i, r) in d.roles.iter().enumerate() {
        if r.trim().is_empty() {
            return err(format!("{field}.roles[{i}]"), "empty role");
        }
    }
    Ok(Some(Selection {
        direction,
        openai: d.openai,
        anthropic: d.anthropic,
        roles: d.roles.clone(),
        paths,
        raw: d.raw,
    }))
}

fn compile(cfg: &GuardConfig) -> Result<Guard, ConfigError> {
    let mut warnings = Vec::new();
    let n = &cfg.normalize;
    if n.max_separator_run > 8 {
        return err("normalize.max_separator_run", "must be at most 8");
    }
    let s = &cfg.stream;
    if !(16..=4096).contains(&s.max_match_len) {
        return err("stream.max_match_len", "must be between 16 and 4096");
    }
    if cfg.body.max_bytes == 0 || cfg.body.max_bytes > 256 << 20 {
        return err("body.max_bytes", "must be between 1 and 268435456");
    }
    let over_limit = match cfg.body.over_limit.as_str() {
        "pass" => OverLimit::Pass,
        "block" => OverLimit::Block,
        other => {
            return err(
                "body.over_limit",
                format!("unknown policy \"{other}\" (expected pass or block)"),
            )
        }
    };
    let on_parse_error = match cfg.body.on_parse_error.as_str() {
        "reject" => ParseErrorPolicy::Reject,
        "pass" => ParseErrorPolicy::Pass,
        other => {
            return err(
                "body.on_parse_error",
                format!("unknown policy \"{other}\" (expected reject or pass)"),
            )
        }
    };
    if cfg.restore.max_entries == 0 || cfg.restore.max_entries > 100_000 {
        return err("restore.max_entries", "must be between 1 and 100000");
    }
    if cfg.restore.max_bytes < 64 || cfg.restore.max_bytes > 64 << 20 {
        return err("restore.max_bytes", "must be between 64 and 67108864");
    }
    if cfg.log.max_bytes > crate::published::MAX_MAX_BYTES {
        return err(
            "log.max_bytes",
            format!(
                "must be at most {} (0 turns publishing off)",
                crate::published::MAX_MAX_BYTES
            ),
        );
    }

    // Scope, with Higress switches applied on top.
    let mut req = cfg.scope.request.clone();
    let mut resp = cfg.scope.response.clone();
    if let Some(v) = cfg.deny_openai {
        for d in [&mut req, &mut resp] {
            d.openai = v;
            d.anthropic = v;
        }
    }
    if let Some(v) = cfg.deny_raw {
        req.raw = v;
        resp.raw = v;
    }
    let mut request = selection("scope.request", &req, Direction::Request)?;
    let mut response = selection("scope.response", &resp, Direction::Response)?;
    if let Some(paths) = &cfg.deny_jsonpath {
        for (i, p) in paths.iter().enumerate() {
            let jp = JsonPath::parse(p).or_else(|e| {
                err(
                    format!("deny_jsonpath[{i}]"),
                    format!("invalid JSON path: {e}"),
                )
            })?;
            for sel in [&mut request, &mut response].into_iter().flatten() {
                sel.paths.push(jp.clone());
            }
        }
    }
    if cfg.system_deny == Some(true) {
        warnings.push(
            "system_deny: no built-in word dictionary is bundled; put your words in keywords.lists"
                .to_string(),
        );
    }
    if cfg.mask.hash_salt.is_empty() {
        warnings.push("mask.hash_salt is empty: hash masks of low-entropy values can be reversed by brute force".to_string());
    }

    // Block settings.
    let b = &cfg.block;
    let higress_block = cfg.deny_code.is_some() || cfg.deny_message.is_some();
    let style = match b.style.as_deref() {
        None if higress_block => BlockStyle::Answer,
        None | Some("error") => BlockStyle::Error,
        Some("answer") => BlockStyle::Answer,
        Some(other) => {
            return err(
                "block.style",
                format!("unknown style \"{other}\" (expected error or answer)"),
            )
        }
    };
    let status = b.status.or(cfg.deny_code).unwrap_or(match style {
        BlockStyle::Error => 400,
        BlockStyle::Answer => 200,
    });
    if !(200..=599).contains(&status) {
        return err(
            if b.status.is_some() {
                "block.status"
            } else {
                "deny_code"
            },
            "must be an HTTP status between 200 and 599",
        );
    }
    let message = b
        .message
        .clone()
        .or_else(|| cfg.deny_message.clone())
        .unwrap_or_else(|| DEFAULT_BLOCK_MESSAGE.to_string());
    let raw_message = b
        .raw_message
        .clone()
        .or_else(|| cfg.deny_raw_message.clone())
        .unwrap_or_else(|| serde_json::json!({"errmsg": message}).to_string());
    let content_type = b
        .content_type
        .clone()
        .or_else(|| cfg.deny_content_type.clone())
        .unwrap_or_else(|| "application/json".to_string());
    let block = BlockSettings {
        style,
        status,
        message,
        raw_message,
        content_type,
    };

    // Rules.
    let folder = Folder::new(&n.separators, n.max_separator_run);
    let mut eb = EngineBuilder::new(folder, cfg.mask.hash_salt.as_bytes(), s.max_match_len);
    let mut has_restore = false;
    let mut hash_without_salt = false;

    for (li, list) in cfg.keywords.lists.iter().enumerate() {
        let f = format!("keywords.lists[{li}]");
        if list.name.trim().is_empty() {
            return err(format!("{f}.name"), "a list needs a name");
        }
        let action = parse_action(
            &format!("{f}.action"),
            list.action.as_deref(),
            Action::Block,
        )?;
        let mask = parse_style(
            &format!("{f}.type"),
            list.kind.as_deref(),
            list.value.as_deref(),
        )?;
        let label = match &list.label {
            Some(l) => {
                check_label(&format!("{f}.label"), l)?;
                l.clone()
            }
            None => default_label(&list.name),
        };
        if list.words.is_empty()
            && list
                .words_text
                .as_deref()
                .is_none_or(|t| t.trim().is_empty())
        {
            return err(format!("{f}.words"), "the list has no words");
        }
        has_restore |= action == Action::Mask && list.restore;
        hash_without_salt |= mask == MaskStyle::Hash;
        let rule = eb.add_rule(Rule {
            name: list.name.clone(),
            kind: RuleKind::Keywords,
            action,
            mask,
            restore: list.restore,
            label,
        });
        for (wi, w) in list.words.iter().enumerate() {
            if let Err(e) = eb.add_word(rule, w, list.whole_word, list.ignore_separators) {
                return err(format!("{f}.words[{wi}]"), word_error(e));
            }
        }
        if let Some(t) = &list.words_text {
            for (ln, line) in t.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                if let Err(e) = eb.add_word(rule, line, list.whole_word, list.ignore_separators) {
                    return err(format!("{f}.words_text line {}", ln + 1), word_error(e));
                }
            }
        }
    }
    if let Some(words) = &cfg.deny_words {
        if !words.is_empty() {
            let rule = eb.add_rule(Rule {
                name: "deny_words".to_string(),
                kind: RuleKind::Keywords,
                action: Action::Block,
                mask: MaskStyle::Replace(None),
                restore: false,
                label: "DENY_WORDS".to_string(),
            });
            for (wi, w) in words.iter().enumerate() {
                if let Err(e) = eb.add_word(rule, w, false, false) {
                    return err(format!("deny_words[{wi}]"), word_error(e));
                }
            }
        }
    }

    for (pi, p) in cfg.patterns.iter().enumerate() {
        let f = format!("patterns[{pi}]");
        let action = parse_action(&format!("{f}.action"), p.action.as_deref(), Action::Mask)?;
        let mask = parse_style(&format!("{f}.type"), p.kind.as_deref(), p.value.as_deref())?;
        if let Some(l) = &p.label {
            check_label(&format!("{f}.label"), l)?;
        }
        has_restore |= action == Action::Mask && p.restore;
        hash_without_salt |= mask == MaskStyle::Hash;
        match (&p.builtin, &p.regex) {
            (Some(name), None) => {
                let Some(list) = Builtin::expand(name) else {
                    let known: Vec<&str> = crate::patterns::ALL_BUILTINS
                        .iter()
                        .map(|b| b.name())
                        .collect();
                    return err(
                        format!("{f}.builtin"),
                        format!("unknown built-in pattern \"{name}\" (known: {}, or the groups pii, secrets, all)", known.join(", ")),
                    );
                };
                let group = list.len() > 1;
                for b in list {
                    let name = match (&p.name, group) {
                        (Some(n), false) => n.clone(),
                        _ => b.name().to_string(),
                    };
                    let rule = eb.add_rule(Rule {
                        name,
                        kind: RuleKind::Builtin(b),
                        action,
                        mask: mask.clone(),
                        restore: p.restore,
                        label: p.label.clone().unwrap_or_else(|| b.label().to_string()),
                    });
                    eb.add_builtin(rule, b)
                        .or_else(|e| err(format!("{f}.builtin"), e))?;
                }
            }
            (None, Some(src)) => {
                let name = p.name.clone().unwrap_or_else(|| f.clone());
                let label = p.label.clone().unwrap_or_else(|| match &p.name {
                    Some(n) => default_label(n),
                    None => "MASKED".to_string(),
                });
                add_regex_rule(
                    &mut eb,
                    &format!("{f}.regex"),
                    src,
                    name,
                    action,
                    mask,
                    p.restore,
                    label,
                )?;
            }
            _ => return err(f, "set exactly one of builtin and regex"),
        }
    }

    if let Some(roles) = &cfg.replace_roles {
        for (ri, r) in roles.iter().enumerate() {
            let f = format!("replace_roles[{ri}]");
            let mask = parse_style(&format!("{f}.type"), r.kind.as_deref(), r.value.as_deref())?;
            has_restore |= r.restore;
            hash_without_salt |= mask == MaskStyle::Hash;
            if r.regex.trim().is_empty() {
                return err(format!("{f}.regex"), "empty regex");
            }
            add_regex_rule(
                &mut eb,
                &format!("{f}.regex"),
                &r.regex,
                f.clone(),
                Action::Mask,
                mask,
                r.restore,
                "MASKED".to_string(),
            )?;
        }
    }
    if !hash_without_salt {
        warnings.retain(|w| !w.starts_with("mask.hash_salt"));
    }

    let moderation = match &cfg.moderation {
        Some(m) => crate::moderation::Moderation::from_config(m)?,
        None => None,
    };
    if moderation.is_some() && request.is_none() {
        warnings.push(
            "moderation: scope.request is disabled, so no text is sent for moderation".to_string(),
        );
    }

    let engine = eb.build().map_err(|e| ConfigError {
        field: "keywords".to_string(),
        reason: format!("cannot build the keyword automaton: {e}"),
    })?;
    Ok(Guard {
        engine: Rc::new(engine),
        request,
        response,
        stream: s.enabled,
        block,
        max_body_bytes: cfg.body.max_bytes,
        over_limit,
        on_parse_error,
        restore: (cfg.restore.max_entries, cfg.restore.max_bytes),
        has_restore,
        moderation,
        log_max_bytes: cfg.log.max_bytes,
        warnings,
    })
}

#[allow(clippy::too_many_arguments)]
fn add_regex_rule(
    eb: &mut EngineBuilder,
    field: &str,
    src: &str,
    name: String,
    action: Action,
    mask: MaskStyle,
    restore: bool,
    label: String,
) -> Result<(), ConfigError> {
    if let Some(b) = grok_builtin(src) {
        let label = if label == "MASKED" {
            b.label().to_string()
        } else {
            label
        };
        let rule = eb.add_rule(Rule {
            name,
            kind: RuleKind::Builtin(b),
            action,
            mask,
            restore,
            label,
        });
        return eb.add_builtin(rule, b).or_else(|e| err(field, e));
    }
    let expanded = expand_grok(field, src)?;
    let rule = eb.add_rule(Rule {
        name,
        kind: RuleKind::Regex,
        action,
        mask,
        restore,
        label,
    });
    eb.add_regex(rule, &expanded).or_else(|e| err(field, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Report, Verdict};

    fn guard(json: &str) -> Result<Guard, ConfigError> {
        Guard::from_json(json.as_bytes())
    }

    fn error(json: &str) -> String {
        guard(json).map(|_| ()).unwrap_err().to_string()
    }

    fn redact(g: &Guard, text: &str) -> (String, Verdict) {
        let mut out = String::new();
        let v = g
            .engine
            .redact(text, None, &mut out, &mut Report::default());
        (out, v)
    }

    #[test]
    fn defaults() {
        let g = guard("").unwrap();
        assert!(g.engine.is_empty());
        assert_eq!(g.block.status, 400);
        assert_eq!(g.block.style, BlockStyle::Error);
        assert!(g.request.is_some() && g.response.is_some());
        assert_eq!(g.over_limit, OverLimit::Pass);
        assert_eq!(g.on_parse_error, ParseErrorPolicy::Reject);
    }

    #[test]
    fn full_config_compiles_and_works() {
        let g = guard(
            r#"{
            "scope": {"request": {"roles": ["user"], "json_paths": ["$.prompt"]}, "response": {"enabled": false}},
            "keywords": {"lists": [
                {"name": "politics", "words": ["敏感词"], "words_text": "foo\n\n bar \n", "ignore_separators": true},
                {"name": "soft", "action": "mask", "value": "***", "words": ["darn"], "whole_word": true}
            ]},
            "patterns": [
                {"builtin": "phone_cn", "restore": true},
                {"builtin": "secrets", "action": "block"},
                {"name": "ticket", "regex": "TCK-[0-9]{6}", "type": "hash", "label": "TICKET"}
            ],
            "mask": {"hash_salt": "s3cret"},
            "body": {"max_bytes": 1000, "over_limit": "block"}
        }"#,
        )
        .unwrap();
        assert!(g.warnings.is_empty(), "{:?}", g.warnings);
        assert!(g.has_restore);
        assert!(g.response.is_none());
        assert_eq!(g.over_limit, OverLimit::Block);
        assert_eq!(
            redact(&g, "a b.a.r here").1,
            Verdict::Block {
                rule: "politics".into()
            }
        );
        assert_eq!(
            redact(&g, "key AKIAIOSFODNN7EXAMPLE").1,
            Verdict::Block {
                rule: "aws_access_key".into()
            }
        );
        let (out, _) = redact(&g, "darn 13812345678 TCK-123456");
        assert!(out.starts_with("*** [PHONE] [TICKET:"), "{out}");
    }

    #[test]
    fn higress_fields() {
        let g = guard(
            r#"{
            "system_deny": true, "deny_openai": true, "deny_raw": true,
            "deny_jsonpath": ["$.messages[*].content"],
            "deny_code": 200, "deny_message": "blocked!",
            "deny_raw_message": "{\"errmsg\":\"blocked!\"}", "deny_content_type": "application/json",
            "deny_words": ["坏词", "badword"],
            "replace_roles": [
                {"regex": "%{MOBILE}", "type": "replace", "value": "****"},
                {"regex": "%{EMAILLOCALPART}@%{HOSTNAME:domain}", "type": "replace", "value": "****@$domain"},
                {"regex": "%{IP}", "type": "replace", "restore": true},
                {"regex": "sk-[0-9a-zA-Z]*", "type": "hash", "restore": true}
            ]
        }"#,
        )
        .unwrap();
        assert!(g.warnings.iter().any(|w| w.starts_with("system_deny")));
        assert!(g.warnings.iter().any(|w| w.starts_with("mask.hash_salt")));
        assert_eq!((g.block.style, g.block.status), (BlockStyle::Answer, 200));
        assert!(g
            .request
            .as_ref()
            .is_some_and(|s| s.raw && s.paths.len() == 1));
        assert_eq!(
            redact(&g, "含有坏词").1,
            Verdict::Block {
                rule: "deny_words".into()
            }
        );
        let (out, v) = redact(
            &g,
            "call 13812345678 or mail admin@gmail.com from 172.20.5.14",
        );
        assert_eq!(v, Verdict::Pass);
        assert_eq!(out, "call **** or mail ****@gmail.com from [IP]");
        let mut vault = g.new_vault();
        let mut out = String::new();
        g.engine.redact(
            "Authorization: sk-12345 at 10.1.2.3",
            Some(&mut vault),
            &mut out,
            &mut Report::default(),
        );
        assert!(out.starts_with("Authorization: [MASKED:"), "{out}");
        assert!(out.ends_with(" at [IP_1]"), "{out}");
        let mut back = String::new();
        vault.restore_into(&out, crate::vault::Escape::None, &mut back);
        assert_eq!(back, "Authorization: sk-12345 at 10.1.2.3");
        let r = g.block.render(Some(Protocol::OpenAi), false);
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "blocked!");
        assert_eq!(
            g.block.render(None, false).body,
            "{\"errmsg\":\"blocked!\"}"
        );
    }

    #[test]
    fn block_renderings() {
        let g = guard(r#"{"block": {"message": "no"}}"#).unwrap();
        let r = g.block.render(Some(Protocol::OpenAi), true);
        assert_eq!(r.status, 400);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["error"]["code"], "content_filter");
        assert_eq!(v["error"]["message"], "no");
        let v: serde_json::Value =
            serde_json::from_str(&g.block.render(Some(Protocol::Anthropic), false).body).unwrap();
        assert_eq!(v["type"], "error");
        let g = guard(r#"{"block": {"style": "answer"}}"#).unwrap();
        let sse = g.block.render(Some(Protocol::OpenAi), true);
        assert_eq!(sse.content_type, "text/event-stream");
        assert!(
            sse.body.contains("\"finish_reason\":\"content_filter\"")
                && sse.body.ends_with("data: [DONE]\n\n")
        );
        let sse = g.block.render(Some(Protocol::Anthropic), true);
        assert!(
            sse.body.starts_with("event: message_start\n") && sse.body.contains("message_stop")
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            error(
                r#"{"keywords": {"lists": [{"name": "a", "words": ["x"]}, {"name": "b", "words": ["x"]}, {"name": "c", "words": ["a", "b", "c", "d", "e", "  "]}]}}"#
            ),
            "keywords.lists[2].words[5]: empty word"
        );
        let long = "x".repeat(300);
        assert_eq!(
            error(&format!(
                r#"{{"keywords": {{"lists": [{{"name": "a", "words_text": "ok\n\n{long}"}}]}}}}"#
            )),
            "keywords.lists[0].words_text line 3: longer than 256 characters"
        );
        let e = error(r#"{"patterns": [{"builtin": "email"}, {"regex": "("}]}"#);
        assert!(e.starts_with("patterns[1].regex: invalid regex: "), "{e}");
        let e = error(r#"{"patterns": [{"builtin": "phone"}]}"#);
        assert!(
            e.starts_with("patterns[0].builtin: unknown built-in pattern \"phone\""),
            "{e}"
        );
        assert_eq!(
            error(r#"{"patterns": [{"builtin": "email", "action": "blok"}]}"#),
            "patterns[0].action: unknown action \"blok\" (expected block, mask or log)"
        );
        assert_eq!(
            error(r#"{"patterns": [{"builtin": "email", "regex": "x"}]}"#),
            "patterns[0]: set exactly one of builtin and regex"
        );
        assert_eq!(
            error(r#"{"patterns": [{"regex": "a*"}]}"#),
            "patterns[0].regex: regex matches the empty string"
        );
        assert_eq!(
            error(r#"{"patterns": [{"builtin": "email", "type": "md5"}]}"#),
            "patterns[0].type: unknown type \"md5\" (expected replace or hash)"
        );
        assert_eq!(
            error(
                r#"{"keywords": {"lists": [{"name": "x", "words": ["a"], "label": "bad label"}]}}"#
            ),
            "keywords.lists[0].label: use 1 to 32 characters among A-Z, 0-9 and _"
        );
        assert_eq!(
            error(r#"{"keywords": {"lists": [{"words": ["a"]}]}}"#),
            "keywords.lists[0].name: a list needs a name"
        );
        assert_eq!(
            error(r#"{"scope": {"request": {"json_paths": ["$.ok", "messages"]}}}"#),
            "scope.request.json_paths[1]: invalid JSON path: must start with `$`"
        );
        assert_eq!(
            error(r#"{"replace_roles": [{"regex": "%{NOPE}"}]}"#),
            "replace_roles[0].regex: unknown grok pattern %{NOPE}"
        );
        assert_eq!(
            error(r#"{"body": {"over_limit": "drop"}}"#),
            "body.over_limit: unknown policy \"drop\" (expected pass or block)"
        );
        assert_eq!(
            error(r#"{"body": {"on_parse_error": "drop"}}"#),
            "body.on_parse_error: unknown policy \"drop\" (expected reject or pass)"
        );
        assert_eq!(
            error(r#"{"stream": {"max_match_len": 5}}"#),
            "stream.max_match_len: must be between 16 and 4096"
        );
        assert_eq!(
            error(r#"{"deny_code": 99}"#),
            "deny_code: must be an HTTP status between 200 and 599"
        );
        let e = error(r#"{"keywords": {"lists": [], "extra": 1}}"#);
        assert!(e.contains("unknown field `extra`"), "{e}");
        let e = error(r#"{"patterns": [{"builtin": 5}]}"#);
        assert!(e.starts_with("invalid configuration: invalid type"), "{e}");
    }
}
