//! ai-statistics: metrics and access-log attributes for AI traffic.
//!
//! Per request, labelled by route, upstream cluster, model and consumer:
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `gen_ai_client_token_usage` (+ `token_type` = `input`/`output`/`cached_input`/`reasoning`) | counter | tokens |
//! | `gen_ai_client_requests` (+ `status_class` = `2xx`/`4xx`/`5xx`/…) | counter | requests |
//! | `gen_ai_server_request_duration` | histogram | ms from request headers to the response's end |
//! | `gen_ai_server_time_to_first_token` | histogram | ms to the first streamed body byte |
//! | `gen_ai_server_time_per_output_token` | histogram | ms per output token after the first (streams) |
//! | `gen_ai_client_cost_micro_usd` | counter | cost, when the model has a price |
//!
//! Usage comes from the `aigw.usage` property when ai-proxy published it, else from the
//! response (SSE parsed incrementally, so events split across chunks count exactly). Memory
//! per stream is bounded: the largest SSE event, a bounded prefix of the request body, and
//! (when answer logging is on) a bounded prefix of the answer. With ai-guard later in the
//! chain, the question and answer logged are the masked ones it publishes ([`guarded`]).

pub mod config;
pub(crate) mod guarded;
pub mod plugin;
pub(crate) mod request;
pub mod scan;
pub(crate) mod text;

/// The JSON Schema (draft 2020-12) of this plugin's configuration document, Higress `_rules_`
/// included; `tools/config-schema` writes it to `dist/ai-statistics.schema.json` (feature `schema`,
/// native builds only).
#[cfg(feature = "schema")]
pub fn config_schema() -> serde_json::Value {
    aigw::config::schema::for_plugin::<config::Config>("ai-statistics")
}

aigw::export_plugin!(plugin::AiStatistics);
