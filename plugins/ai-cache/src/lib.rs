//! ai-cache: exact and semantic answer caching for LLM requests, streams included.
//!
//! | module | what it is for |
//! | --- | --- |
//! | [`config`] | configuration and validation |
//! | [`key`] | canonical request form and the cache key |
//! | [`entry`] | cached answers, assembled from JSON or SSE responses |
//! | [`replay`] | rendering a hit as JSON or as an SSE stream |
//! | [`store`] | the local slot store in shared data |
//! | [`semantic`] | embeddings, cosine similarity, the vector index trait and local index |
//! | [`plugin`] | the plugin type and its phase handlers |

pub mod config;
pub(crate) mod entry;
pub(crate) mod key;
pub mod plugin;
pub(crate) mod replay;
pub(crate) mod semantic;
pub(crate) mod store;
pub(crate) mod vector_service;

/// The JSON Schema (draft 2020-12) of this plugin's configuration document, Higress `_rules_`
/// included; `tools/config-schema` writes it to `dist/ai-cache.schema.json` (feature `schema`,
/// native builds only).
#[cfg(feature = "schema")]
pub fn config_schema() -> serde_json::Value {
    aigw::config::schema::for_plugin::<config::Config>("ai-cache")
}

pub use plugin::AiCache;

aigw::export_plugin!(plugin::AiCache);
