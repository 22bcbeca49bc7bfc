//! The simulated gateway: a chain of plugins, each with one VM per worker, the shared host
//! state, clusters for call-outs, the clock, and the streams in flight.
//!
//! ```no_run
//! use host_sim::{Sim, PluginSpec, Request, UpstreamResponse};
//! let mut sim = Sim::new(Default::default());
//! sim.add_plugin(PluginSpec::from_file("dist/hello.wasm").unwrap().config_json(r#"{}"#)).unwrap();
//! let rec = sim.run(Request::post("/v1/chat/completions", "{}"), UpstreamResponse::json(200, "{}")).unwrap();
//! assert_eq!(rec.response.status, 200);
//! ```
//!
//! `Sim` is a facade over components that own their state: [`callouts::CallOuts`] owns
//! clusters and pending calls, [`chain::VmChain`] the plugins, their generations and the VMs,
//! [`streams::StreamTable`] the streams in flight and which context belongs to which stream;
//! `plugins.rs` adds and reloads plugins, `timers.rs` fires the clock's events, `pump.rs`
//! runs what callbacks leave behind, and `crate::driver` moves streams through the chain
//! through the components' methods.

mod callouts;
mod chain;
mod plugins;
mod pump;
mod spec;
mod streams;
mod timers;

pub use callouts::{CallReply, Cluster, PendingGrpcCall, PendingHttpCall};
pub(crate) use chain::VmChain;
pub(crate) use plugins::PluginSlot;
pub use spec::{global_loader, FailPolicy, PluginSpec, SimOptions, StreamOptions};
pub(crate) use streams::StreamTable;

use crate::abi::LogLevel;
use crate::module::Loader;
use crate::report::{StreamRecord, UpstreamRequest};
use crate::shared::{HostShared, LogEntry, Metric};
use crate::stream_data::{FilterSlot, StreamData};
use crate::vm::{CtxKind, Deferred, Effects, HttpCallRecord, RootInfo, Vm, VmCtx};
use anyhow::{anyhow, bail, Result};
use callouts::CallOuts;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Work to do outside any VM callback.
#[derive(Debug)]
pub(crate) enum Work {
    Deferred { vm: usize, d: Deferred },
}

/// The simulated gateway.
pub struct Sim {
    pub(crate) loader: Loader,
    pub(crate) host: Arc<Mutex<HostShared>>,
    pub(crate) opts: SimOptions,
    /// The plugins, their generations and the VMs.
    pub(crate) chain: VmChain,
    /// The streams in flight.
    pub(crate) streams: StreamTable,
    rr: usize,
    calls: CallOuts,
    work: VecDeque<Work>,
}

impl Sim {
    /// A gateway with no plugins yet.
    pub fn new(opts: SimOptions) -> Sim {
        Sim::with_loader(global_loader().clone(), opts)
    }

    /// A gateway that compiles modules with the given loader.
    pub fn with_loader(loader: Loader, opts: SimOptions) -> Sim {
        let mut host = HostShared::new(opts.clock.clone());
        host.log_level = opts.log_level;
        Sim::with_host(loader, opts, Arc::new(Mutex::new(host)))
    }

    /// A gateway (for example one route's chain) that shares process-wide state (shared data,
    /// queues, metrics, logs, clock) with others, as the routes of one Envoy process do.
    pub(crate) fn with_host(loader: Loader, opts: SimOptions, host: Arc<Mutex<HostShared>>) -> Sim {
        Sim {
            loader,
            host,
            opts,
            chain: VmChain::default(),
            streams: StreamTable::new(),
            rr: 0,
            calls: CallOuts::new(),
            work: VecDeque::new(),
        }
    }

    /// The process-wide state this gateway uses.
    pub(crate) fn host(&self) -> Arc<Mutex<HostShared>> {
        self.host.clone()
    }

    /// The module loader.
    pub fn loader(&self) -> &Loader {
        &self.loader
    }

    /// Registers a cluster for call-outs. Calls to unknown clusters get BAD_ARGUMENT.
    pub fn add_cluster(&mut self, name: impl Into<String>, target: Cluster) {
        self.calls.add_cluster(name.into(), target);
        self.refresh_cluster_names();
    }

    /// Maps a Redis cluster name (Higress calls) to a real Redis server.
    pub fn add_redis(&mut self, name: impl Into<String>, addr: SocketAddr) {
        self.calls.add_redis(name.into(), addr);
        self.refresh_cluster_names();
    }

    fn refresh_cluster_names(&mut self) {
        let names = self.calls.cluster_names();
        let redis = self.calls.redis_names();
        for vm in self.chain.vms_mut() {
            vm.store.data_mut().clusters = names.clone();
            vm.store.data_mut().redis_clusters = redis.clone();
        }
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<LogEntry> {
        self.host.lock().map(|h| h.logs.clone()).unwrap_or_default()
    }

    /// Forgets the log lines so far.
    pub fn clear_logs(&self) {
        if let Ok(mut h) = self.host.lock() {
            h.logs.clear();
        }
    }

    /// Whether any log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.logs().iter().any(|l| l.message.contains(needle))
    }

    /// All metrics by name.
    pub fn metrics(&self) -> BTreeMap<String, Metric> {
        self.host.lock().map(|h| h.metrics()).unwrap_or_default()
    }

    /// A counter's or gauge's value (histograms: the sum of samples).
    pub fn metric(&self, name: &str) -> Option<i64> {
        self.metrics().get(name).map(|m| m.value)
    }

    /// A shared-data value of a vm_id.
    pub fn shared_data(&self, vm_id: &str, key: &str) -> Option<Vec<u8>> {
        self.host
            .lock()
            .ok()
            .and_then(|h| h.get_shared(vm_id, key).ok().map(|(v, _)| v))
    }

    /// Shared-data keys of a vm_id.
    pub fn shared_keys(&self, vm_id: &str) -> Vec<String> {
        self.host
            .lock()
            .map(|h| h.shared_keys(vm_id))
            .unwrap_or_default()
    }

    /// Sets shared data from the test (as another process would).
    pub fn set_shared_data(&self, vm_id: &str, key: &str, value: &[u8]) {
        if let Ok(mut h) = self.host.lock() {
            h.set_shared(vm_id, key, value, 0);
        }
    }

    /// Current simulated time (ns since the epoch).
    pub fn now_ns(&self) -> u64 {
        self.host.lock().map(|h| h.clock.now_ns()).unwrap_or(0)
    }

    /// Queues a deferred action of VM `vm` for [`Sim::pump`].
    pub(crate) fn defer(&mut self, vm: usize, d: Deferred) {
        self.work.push_back(Work::Deferred { vm, d });
    }

    pub(crate) fn mono_ns(&self) -> u64 {
        self.host.lock().map(|h| h.clock.mono_ns()).unwrap_or(0)
    }
}
