//! ai-guard: content moderation and data masking for prompts and streamed answers.
//!
//! The detection and rewriting engine is plain Rust, testable natively:
//! [`normalize`] folds text for matching, [`keywords`] and [`patterns`] find
//! candidates, [`engine`] merges them into non-overlapping findings and applies
//! block / mask / log actions, [`vault`] records masked values so answers can
//! have them restored, [`stream`] does both directions over streamed text with a
//! bounded hold-back window, [`scope`] picks the text to scan out of request and
//! response bodies, and [`config`] parses and validates the plugin
//! configuration.
//!
//! The plugin around it: [`settings`] compiles the configuration once,
//! [`answer_sse`] guards streamed answers event by event, [`whole`] guards
//! non-streamed JSON answers, [`text_guard`] plain-text answers, and
//! [`answer`] builds the answers that replace blocked ones. The phase
//! handlers ([`plugin`]) only move bytes between the host and those parts.
//!
//! Requests: the headers go on, the body is held (up to `body.max_bytes`) and
//! its selected text checked; a block answers in the client's protocol and no
//! body byte reaches the upstream; masks rewrite the body. With a `moderation`
//! section the checked (masked) text then goes to an external moderation API
//! ([`moderation`]) while the request is held. Responses: SSE answers are
//! guarded chunk by chunk, JSON answers as a whole, plain text chunk by chunk
//! when `raw` is on. Hits are counted in
//! `aigw_guard_hits_total;rule=..;action=..;direction=..`. The masked
//! question and the answer before restore are published for access logs
//! ([`published`]).

pub(crate) mod answer;
pub mod answer_sse;
pub mod config;
pub mod engine;
pub(crate) mod fold_table;
mod fold_table_data;
pub(crate) mod hanzi;
pub(crate) mod keywords;
pub(crate) mod moderation;
pub mod normalize;
pub(crate) mod patterns;
pub mod plugin;
pub(crate) mod published;
pub mod scope;
pub mod settings;
pub mod stream;
pub(crate) mod text_guard;
pub(crate) mod vault;
pub(crate) mod whole;

/// The JSON Schema (draft 2020-12) of this plugin's configuration document, Higress `_rules_`
/// included; `tools/config-schema` writes it to `dist/ai-guard.schema.json` (feature `schema`,
/// native builds only).
#[cfg(feature = "schema")]
pub fn config_schema() -> serde_json::Value {
    aigw::config::schema::for_config::<settings::Config>("ai-guard")
}

aigw::export_plugin!(plugin::AiGuard);
