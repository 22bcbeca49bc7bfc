//! ai-auth: API-key authentication for AI traffic.
//!
//! * Credentials come from `Authorization: Bearer`, `x-api-key`, `api-key` (the configured
//!   `keys`) in headers, and optionally from query parameters. They are matched against
//!   SHA-256 digests of the configured credentials (plain ones are hashed at configure time)
//!   in constant time, and removed from the request before it goes upstream.
//! * On success the consumer's name is set in `x-mse-consumer` (a client-sent value is always
//!   overwritten or removed), its model policy in `x-aigw-allowed-models`
//!   ([`aigw::llm::access`] format: allow patterns, then `!`deny patterns), and the key's
//!   fingerprint ([`aigw::contract::key_id`], 16 hex digits of its SHA-256, never the key) in
//!   the filter-state property `aigw.auth.key_id`, so that later plugins can still tell keys
//!   apart once the key is removed (ai-token-ratelimit's `by: api_key`).
//! * Missing or wrong credentials get 401 with `www-authenticate`; a consumer not in the
//!   rule's `allow` list, or asking for a model it may not use, gets 403 — both in the
//!   client's protocol (OpenAI or Anthropic).
//!
//! The model lives in the JSON body: request headers return `Continue` after authentication,
//! and the body callbacks pause (the host buffers) until the body is complete, check the
//! model, then continue or answer 403. Credentials never appear in logs.

pub mod config;
pub(crate) mod credential;
pub mod model;
pub mod plugin;

/// The JSON Schema (draft 2020-12) of this plugin's configuration document, Higress `_rules_`
/// included; `tools/config-schema` writes it to `dist/ai-auth.schema.json` (feature `schema`,
/// native builds only).
#[cfg(feature = "schema")]
pub fn config_schema() -> serde_json::Value {
    aigw::config::schema::for_config::<config::Config>("ai-auth")
}

aigw::export_plugin!(plugin::AiAuth);
