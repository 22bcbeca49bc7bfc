//! The shared SDK for AI gateway proxy-wasm plugins.
//!
//! A plugin is a type implementing [`plugin::Plugin`], registered with
//! [`export_plugin!`]. The SDK stands on the `proxy-wasm` crate's dispatcher but declares its
//! own host imports so that no host status can panic the VM: every host-facing call returns
//! `Result<_, HostError>`.
//!
//! | module | what it is for |
//! | --- | --- |
//! | [`plugin`] | the `Plugin` trait, per-stream `Ctx`, root `RootCtx`, HTTP and gRPC call-outs, `Flow` |
//! | [`config`] | typed configuration, field-path errors, Higress `_rules_` |
//! | [`contract`] | header and filter-state names the plugins share, the usage and guard records, key fingerprints |
//! | [`hash`] | SHA-256, HMAC-SHA-256, FNV-1a, hex and constant-time digest comparison |
//! | [`host`] | safe wrappers over every proxy-wasm host function |
//! | [`json`] | strict checks (no repeated keys, no BOM) for bodies a plugin decides on |
//! | [`body`] | whole-body reads with a limit, streaming rewrite with hold-back |
//! | [`reply`] | OpenAI/Anthropic-shaped error replies |
//! | [`sse`] | incremental Server-Sent Events parser and writer |
//! | [`shared`] | counters, rate-limit windows and bounded multi-window slot tables over shared data (CAS) |
//! | [`metrics`] | counters, gauges, histograms with labels |
//! | [`log`] | leveled logging macros and secret redaction |
//! | [`proto`] | minimal protobuf wire-format writer and reader (gRPC call-out messages) |
//! | [`resp`] | RESP2 (Redis protocol) encoder/decoder |
//! | `redis` | Redis calls on Higress (feature `higress`) |
//! | [`llm`] | LLM API classification ([`llm::Api`]), message types and usage extraction |

#![warn(missing_docs)]

pub mod body;
pub mod config;
pub mod contract;
pub mod hash;
pub mod host;
pub mod json;
pub mod llm;
pub mod log;
pub mod metrics;
pub mod plugin;
pub mod prelude;
pub mod proto;
#[cfg(feature = "higress")]
pub mod redis;
pub mod reply;
pub mod resp;
pub mod shared;
pub mod sse;

/// Re-export of the `proxy-wasm` crate the SDK is built on (used by [`export_plugin!`]).
pub use proxy_wasm;
