//! ai-proxy plugin: one OpenAI-compatible (and Anthropic-compatible) front for many model
//! providers.
//!
//! The translation modules are pure (no host calls) so that they are tested natively:
//! [`providers`] holds one module per upstream dialect behind the [`providers::Upstream`] trait
//! (OpenAI, Responses, Anthropic, Gemini, Bedrock with its event-stream decoder and SigV4
//! signer, DashScope) and the provider catalogue; [`clients`] translates the Anthropic and
//! Responses client dialects; streams run decode → encode on the SDK's neutral model
//! ([`pipeline`]); [`model_map`] maps model names and [`error`] translates errors.
//!
//! The gateway side ([`plugin`]) wires them into the proxy-wasm phases: [`config`] (the
//! configuration), [`request`] (request translation), [`response`] (whole answers) and
//! [`keys`] (API-key choice and shared cooldown).

pub mod clients;
pub(crate) mod common;
pub mod config;
pub(crate) mod error;
pub(crate) mod keys;
pub(crate) mod media;
pub(crate) mod model_map;
pub mod options;
pub(crate) mod pipeline;
pub mod plugin;
pub mod providers;
pub(crate) mod request;
pub(crate) mod response;

/// The JSON Schema (draft 2020-12) of this plugin's configuration document, Higress `_rules_`
/// included; `tools/config-schema` writes it to `dist/ai-proxy.schema.json` (feature `schema`,
/// native builds only).
#[cfg(feature = "schema")]
pub fn config_schema() -> serde_json::Value {
    aigw::config::schema::for_config::<config::Config>("ai-proxy")
}

aigw::export_plugin!(plugin::AiProxy);
