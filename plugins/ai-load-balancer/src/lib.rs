//! ai-load-balancer: picks the LLM backend of each request by real load, on stock Envoy.
//!
//! The choice is written to a request header (`x-envoy-original-dst-host` for an
//! `ORIGINAL_DST` cluster with `use_http_header: true`, or any header a route's
//! `cluster_header` reads). Policies: weighted round robin, least in-flight (counted across
//! worker VMs in shared data), latency (decayed EWMA of time to first token or per output
//! token), prefix affinity (hash chain with bounded load) and vLLM-metrics scoring (scraped
//! from the root context on ticks). Passive health ejects backends after consecutive
//! failures for a doubling period; with no backend available the client gets a 503 in its
//! protocol. See README.md.

#![warn(missing_docs)]

pub mod config;
pub mod hash;
pub(crate) mod pick;
pub mod plugin;
pub mod prom;
pub mod prompt;
pub(crate) mod scrape;
pub mod sse_count;
pub(crate) mod state;

/// The JSON Schema (draft 2020-12) of this plugin's configuration document, Higress `_rules_`
/// included; `tools/config-schema` writes it to `dist/ai-load-balancer.schema.json` (feature `schema`,
/// native builds only).
#[cfg(feature = "schema")]
pub fn config_schema() -> serde_json::Value {
    aigw::config::schema::for_config::<config::Config>("ai-load-balancer")
}

aigw::export_plugin!(plugin::LoadBalancer);
