//! ai-token-ratelimit: token and request rate limits for AI traffic that hold across worker
//! threads (local mode, shared data) and across gateway replicas (cluster mode, Redis, with
//! the `higress` feature; or rls mode, an Envoy global rate limit service over gRPC, in the
//! default build).
//!
//! A request is admitted on an estimate before the upstream is called and charged its real
//! usage when the response ends (streams included); see the README for the configuration,
//! the guarantees of each mode and the overshoot bound.
//!
//! The logic is split so that most of it is tested natively: [`config`] parses and checks the
//! configuration (Higress-compatible and clear forms), [`pattern`] matches key values,
//! [`identity`] picks the limits that apply and names their counters, [`estimate`] prices a
//! request before it runs, [`usage`] reads usage from responses and computes the charge,
//! the SDK's [`aigw::shared::SlotTable`] keeps local counters in shared data and [`cluster`]
//! keeps them in Redis, [`rls`] speaks to an Envoy rate limit service; [`plugin`] is the
//! proxy-wasm plugin that ties them together.

// The Redis script calls run only in the `higress` build (cluster mode); the other builds use
// the module for the configuration's script names alone.
#[cfg_attr(not(feature = "higress"), allow(dead_code))]
pub(crate) mod cluster;
pub mod config;
pub(crate) mod estimate;
pub(crate) mod identity;
pub(crate) mod pattern;
pub mod plugin;
pub mod rls;
pub(crate) mod usage;

/// The JSON Schema (draft 2020-12) of this plugin's configuration document, Higress `_rules_`
/// included; `tools/config-schema` writes it to `dist/ai-token-ratelimit.schema.json` (feature `schema`,
/// native builds only).
#[cfg(feature = "schema")]
pub fn config_schema() -> serde_json::Value {
    aigw::config::schema::for_config::<config::Config>("ai-token-ratelimit")
}

pub use plugin::TokenRateLimit;

aigw::export_plugin!(plugin::TokenRateLimit);
