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

pub mod abi;
pub mod callout;
pub mod config_schema;
pub mod driver;
pub mod foreign;
pub mod gateway;
pub mod grpc;
pub mod hostcalls;
pub mod http1;
pub mod linker_fallback;
pub mod memory;
pub mod mock_llm;
pub mod module;
pub mod properties;
pub mod report;
mod request;
pub mod router;
pub mod shared;
pub mod sim;
pub mod stall;
pub mod stream_data;
pub mod vm;
pub mod wasi;

pub use abi::{AbiVersion, LogLevel};
pub use module::{
    inspect, is_envoy_import, portability_violations, FilterKind, Loader, ModuleInfo, PluginModule,
};
pub use report::{ClientResponse, LocalReply, StreamRecord, UpstreamRequest};
pub use request::{Request, UpstreamResponse};
pub use shared::{Clock, LogEntry, Metric, MetricKind};
pub use sim::{
    global_loader, CallReply, Cluster, FailPolicy, PendingHttpCall, PluginSpec, Sim, SimOptions,
    StreamOptions,
};
pub use stream_data::StreamProps;
