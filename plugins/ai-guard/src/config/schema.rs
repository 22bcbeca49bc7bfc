//! The configuration as users write it: serde types with defaults, read
//! with unknown fields rejected. Checked and compiled by [`super::compile`].

use serde::Deserialize;

use super::{BlockStyle, OverLimit, ParseErrorPolicy, ReplaceRole};
use crate::engine::Action;
use crate::normalize::{DEFAULT_MAX_SEPARATOR_RUN, DEFAULT_SEPARATORS};

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
    /// `block` (default), `mask` (or `replace`) or `log`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("enum" = ["block", "mask", "replace", "log", null])))]
    pub action: Option<Action>,
    /// The words.
    pub words: Vec<String>,
    /// More words, one per line (blank lines skipped): compact for big lists.
    pub words_text: Option<String>,
    /// Only match whole ASCII words.
    pub whole_word: bool,
    /// Match with short separator runs inside words (`b.a.d`).
    pub ignore_separators: bool,
    /// Mask style: `replace` (default) or `hash`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("enum" = ["replace", "hash", null])))]
    #[serde(rename = "type")]
    pub kind: Option<MaskKind>,
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
    /// `mask` (default; also `replace`), `block` or `log`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("enum" = ["block", "mask", "replace", "log", null])))]
    pub action: Option<Action>,
    /// Mask style: `replace` (default) or `hash`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("enum" = ["replace", "hash", null])))]
    #[serde(rename = "type")]
    pub kind: Option<MaskKind>,
    /// Replacement value; may use `$1` / `$name` capture groups.
    pub value: Option<String>,
    /// Record masked values for restoring in the answer.
    pub restore: bool,
    /// Placeholder label; default from the built-in (`PHONE`, `EMAIL`...).
    pub label: Option<String>,
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
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("enum" = ["error", "answer", null])))]
    pub style: Option<BlockStyle>,
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
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("enum" = ["pass", "block"])))]
    pub over_limit: OverLimit,
    /// A request body that should be scanned but cannot be (invalid JSON,
    /// not UTF-8, nested too deep): `reject` (400 in the client's protocol)
    /// or `pass` (forward unscanned).
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("enum" = ["reject", "pass"])))]
    pub on_parse_error: ParseErrorPolicy,
}

impl Default for BodyConfig {
    fn default() -> Self {
        BodyConfig {
            max_bytes: 1 << 20,
            over_limit: OverLimit::Pass,
            on_parse_error: ParseErrorPolicy::Reject,
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

/// Mask style of a rule (`type`): a replacement value or a keyed hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskKind {
    /// `value`, or `[LABEL]` without one.
    #[default]
    Replace,
    /// `[LABEL:xxxxxxxx]`, an HMAC of the match keyed by `mask.hash_salt`.
    Hash,
}
