//! host-sim: a proxy-wasm host on wasmtime that behaves like Envoy, for testing gateway
//! plugins before they meet a real gateway.
//!
//! Tests are state-based: feed a request (and an upstream response), then look at what reached
//! the upstream, what the client got, the local reply, logs, metrics and shared data, and answer
//! pending call-outs.
//!
//! ```no_run
//! use host_sim::{PluginSpec, Request, Sim, UpstreamResponse};
//! let mut sim = Sim::new(Default::default());
//! sim.add_plugin(PluginSpec::from_file("dist/noop.wasm")?)?;
//! let rec = sim.run(Request::get("/v1/models"), UpstreamResponse::json(200, "{}"))?;
//! assert_eq!(rec.response.status, 200);
//! # Ok::<(), anyhow::Error>(())
//! ```

//!
//! The public API is the items re-exported here: [`Sim`] and its options, [`PluginSpec`],
//! [`Request`], [`UpstreamResponse`], the records ([`StreamRecord`], [`UpstreamRequest`],
//! [`ClientResponse`], [`LocalReply`]), call-outs ([`Cluster`], [`CallReply`],
//! [`PendingHttpCall`]), logs and metrics, the [`Clock`], module inspection, [`router`]
//! (retries and failover over endpoints) and [`http1`] (requests and responses as files).
//! Features add the servers: `gateway` ([`gateway`], `host-sim serve`), `mock-llm`
//! ([`mock_llm`]), `schema` ([`config_schema`]), `grpc` (real gRPC call-outs) and `cli` (all of
//! them and the `host-sim` binary, the default). With `default-features = false` the library
//! needs neither tokio nor hyper.

mod abi;
mod callout;
#[cfg(feature = "schema")]
pub mod config_schema;
mod driver;
mod foreign;
#[cfg(feature = "gateway")]
pub mod gateway;
mod grpc;
mod hostcalls;
pub mod http1;
mod linker_fallback;
mod memory;
#[cfg(feature = "mock-llm")]
pub mod mock_llm;
mod module;
mod properties;
mod report;
mod request;
pub mod router;
mod shared;
mod sim;
mod stall;
mod stream_data;
mod vm;
mod wasi;

pub use abi::{AbiVersion, LogLevel};
pub use module::{
    inspect, is_envoy_import, portability_violations, FilterKind, Loader, ModuleInfo, PluginModule,
};
pub use report::{ClientResponse, LocalReply, StreamRecord, UpstreamRequest};
pub use request::{Request, UpstreamResponse};
pub use shared::{Clock, LogEntry, Metric, MetricKind};
pub use sim::{
    global_loader, CallReply, Cluster, FailPolicy, PendingGrpcCall, PendingHttpCall, PluginSpec,
    Sim, SimOptions, StreamOptions,
};
pub use stream_data::StreamProps;
pub use vm::{GrpcCallRecord, HttpCallRecord};
