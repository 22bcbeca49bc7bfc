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

use crate::abi::{Headers, LogLevel};
use crate::callout;
use crate::module::{Loader, PluginModule};
use crate::report::{StreamRecord, UpstreamRequest};
use crate::shared::{Clock, HostShared, LogEntry, Metric};
use crate::stream_data::{FilterSlot, StreamData, StreamProps};
use crate::vm::{
    CallResponseData, CtxKind, Deferred, Effects, GrpcCallRecord, HttpCallRecord, RedisCallRecord,
    RootInfo, Vm, VmCtx,
};
use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many call-out records [`Sim::http_call_log`] keeps (the oldest half goes at the limit).
const MAX_CALL_LOG: usize = 10_000;

/// What Envoy does with a stream when the plugin's VM has failed (trapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailPolicy {
    /// Every later request on that worker gets 503 (Envoy's default).
    #[default]
    Closed,
    /// The failed plugin is skipped.
    Open,
    /// A fresh VM is built for new requests after a backoff (Envoy >= 1.33).
    Reload,
}

/// One plugin of the chain: module, configuration and VM settings.
#[derive(Clone)]
pub struct PluginSpec {
    /// The plugin's name (`plugin_name` property, log prefix).
    pub name: String,
    /// The compiled module.
    pub module: PluginModule,
    /// The plugin configuration (buffer 7).
    pub config: Vec<u8>,
    /// The VM configuration (buffer 6).
    pub vm_config: Vec<u8>,
    /// Envoy's root_id.
    pub root_id: String,
    /// Envoy's vm_id: the namespace of shared data and queues.
    pub vm_id: String,
    /// Environment variables given to the VM.
    pub env: Vec<(String, String)>,
    /// What happens after a trap.
    pub fail_policy: FailPolicy,
    /// Envoy's `PluginConfig.allow_on_headers_stop_iteration` (Envoy 1.35+): a request-headers
    /// `StopIteration` holds the headers but still delivers the body, so the filter can change
    /// headers from its body callbacks. Without it (the default, as in Envoy) a headers pause
    /// stops everything until the filter resumes. Modules declaring Higress's ABI
    /// (`proxy_abi_version_0_2_100`) get this behaviour either way, as on Higress.
    pub allow_on_headers_stop_iteration: bool,
}

impl PluginSpec {
    /// A spec for a compiled module with an empty configuration.
    pub fn new(name: impl Into<String>, module: PluginModule) -> PluginSpec {
        PluginSpec {
            name: name.into(),
            module,
            config: Vec::new(),
            vm_config: Vec::new(),
            root_id: String::new(),
            vm_id: String::new(),
            env: Vec::new(),
            fail_policy: FailPolicy::Closed,
            allow_on_headers_stop_iteration: false,
        }
    }

    /// Loads a module file with a process-wide loader (compiled once per file content).
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<PluginSpec> {
        let path = path.as_ref();
        let module = global_loader().load_file(path)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into());
        Ok(PluginSpec::new(name, module))
    }

    /// Sets the plugin configuration from text (usually JSON).
    pub fn config_json(mut self, json: impl AsRef<str>) -> PluginSpec {
        self.config = json.as_ref().as_bytes().to_vec();
        self
    }

    /// Sets the plugin configuration bytes.
    pub fn config(mut self, bytes: impl Into<Vec<u8>>) -> PluginSpec {
        self.config = bytes.into();
        self
    }

    /// Sets the vm_id.
    pub fn vm_id(mut self, id: impl Into<String>) -> PluginSpec {
        self.vm_id = id.into();
        self
    }

    /// Sets the root_id.
    pub fn root_id(mut self, id: impl Into<String>) -> PluginSpec {
        self.root_id = id.into();
        self
    }

    /// Sets the plugin name.
    pub fn name(mut self, name: impl Into<String>) -> PluginSpec {
        self.name = name.into();
        self
    }

    /// Sets the failure policy.
    pub fn fail_policy(mut self, p: FailPolicy) -> PluginSpec {
        self.fail_policy = p;
        self
    }

    /// Sets Envoy's `allow_on_headers_stop_iteration` for this plugin (see the field).
    pub fn allow_on_headers_stop_iteration(mut self, on: bool) -> PluginSpec {
        self.allow_on_headers_stop_iteration = on;
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> PluginSpec {
        self.env.push((k.into(), v.into()));
        self
    }
}

/// The loader shared by `PluginSpec::from_file` (one engine, one compile per module).
pub fn global_loader() -> &'static Loader {
    static LOADER: std::sync::OnceLock<Loader> = std::sync::OnceLock::new();
    LOADER.get_or_init(Loader::new)
}

/// Settings of a simulated gateway.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Worker threads (one VM per plugin per worker).
    pub workers: usize,
    /// Simulated clock (default) or the real one.
    pub clock: Clock,
    /// Per-stream buffer limit (Envoy's default connection buffer limit is 1 MiB).
    pub buffer_limit: usize,
    /// Lowest log level recorded.
    pub log_level: LogLevel,
    /// Backoff before FAIL_RELOAD builds a new VM.
    pub reload_backoff: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            workers: 1,
            clock: Clock::simulated(),
            buffer_limit: 1024 * 1024,
            log_level: LogLevel::Trace,
            reload_backoff: Duration::from_secs(1),
        }
    }
}

/// Where a cluster's call-outs go.
#[derive(Debug, Clone)]
pub enum Cluster {
    /// Calls wait until the test answers them (`answer_http`, `answer_grpc`).
    Manual,
    /// HTTP call-outs are sent over real HTTP/1.1, gRPC calls over plain-text HTTP/2 (h2c),
    /// to this address.
    Addr(SocketAddr),
}

/// The answer to an HTTP call-out.
#[derive(Debug, Clone)]
pub enum CallReply {
    /// A response (status, headers, body).
    Response {
        /// HTTP status.
        status: u16,
        /// Headers.
        headers: Vec<(String, String)>,
        /// Body.
        body: Vec<u8>,
    },
    /// The connection was reset: the plugin sees 0 headers and 0 body bytes.
    Reset,
    /// Connect failure: Envoy's router answers 503.
    ConnectFailure,
    /// The timeout fired: Envoy answers 504.
    Timeout,
}

impl CallReply {
    /// A JSON response.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> CallReply {
        CallReply::Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    fn into_data(self) -> CallResponseData {
        let text = |status: u16, body: &str| CallResponseData {
            headers: vec![
                (":status".into(), status.to_string().into_bytes()),
                ("content-length".into(), body.len().to_string().into_bytes()),
                ("content-type".into(), b"text/plain".to_vec()),
            ],
            body: body.as_bytes().to_vec(),
            trailers: vec![],
        };
        match self {
            CallReply::Response {
                status,
                headers,
                body,
            } => {
                let mut h: Headers = vec![(":status".into(), status.to_string().into_bytes())];
                for (k, v) in headers {
                    h.push((k.to_ascii_lowercase(), v.into_bytes()));
                }
                CallResponseData {
                    headers: h,
                    body,
                    trailers: vec![],
                }
            }
            CallReply::Reset => CallResponseData::default(),
            CallReply::ConnectFailure => text(
                503,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            ),
            CallReply::Timeout => text(504, "upstream request timeout"),
        }
    }
}

/// A call-out waiting for its answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PendingHttpCall {
    /// Simulator-wide id to answer it with.
    pub id: u64,
    /// The plugin (chain index) that made it.
    pub plugin: usize,
    /// The worker whose VM made it.
    pub worker: usize,
    /// The call as the plugin made it.
    pub call: HttpCallRecord,
    #[serde(skip)]
    pub(crate) vm: usize,
    #[serde(skip)]
    root: u32,
    #[serde(skip)]
    deadline_ns: Option<u64>,
}

/// A gRPC call-out waiting for its answer.
#[derive(Debug, Clone)]
pub struct PendingGrpcCall {
    /// Simulator-wide id.
    pub id: u64,
    /// The call.
    pub call: GrpcCallRecord,
    pub(crate) vm: usize,
    root: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct PendingRedisCall {
    pub(crate) vm: usize,
    root: u32,
    call: RedisCallRecord,
    timeout_ms: u32,
}

/// One configuration generation of a plugin (hot reload adds generations).
pub(crate) struct Generation {
    pub spec: PluginSpec,
    /// VM arena key per worker.
    pub vms: Vec<usize>,
    /// Root context id per worker.
    pub roots: Vec<u32>,
    /// Streams that started on this generation and are still open.
    pub live: usize,
    /// A newer generation took over.
    pub retired: bool,
    /// Root contexts were finished (on_done/on_delete).
    pub closed: bool,
    /// When a worker's VM failed (for FAIL_RELOAD backoff).
    pub failed_at: Vec<Option<u64>>,
}

pub(crate) struct PluginSlot {
    pub gens: Vec<Generation>,
}

/// Where one filter of a stream runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FilterRef {
    pub plugin: usize,
    pub gen: usize,
    pub vm: usize,
    pub root: u32,
    /// 0 until created at request headers.
    pub ctx: u32,
}

/// Per-stream bookkeeping outside what hostcalls see.
pub(crate) struct Stream {
    pub data: Arc<Mutex<StreamData>>,
    pub filters: Vec<FilterRef>,
    pub worker: usize,
    pub record: StreamRecord,
    /// Request headers carried end of stream.
    pub req_headers_end: bool,
    /// The request path was cut short (local reply or reset).
    pub decoding_aborted: bool,
    /// Request headers reached the upstream.
    pub upstream_started: bool,
    /// The stream is over.
    pub finished: bool,
}

/// Stream options: which worker, and the properties the plugins read.
#[derive(Debug, Clone, Default)]
pub struct StreamOptions {
    /// The worker that serves the stream (default: round robin).
    pub worker: Option<usize>,
    /// Properties (route name, cluster name, addresses...).
    pub props: StreamProps,
}

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
    pub(crate) vms: Vec<Option<Vm>>,
    pub(crate) chain: Vec<PluginSlot>,
    clusters: BTreeMap<String, Cluster>,
    redis: BTreeMap<String, SocketAddr>,
    pub(crate) streams: HashMap<u64, Stream>,
    pub(crate) ctx_index: HashMap<(usize, u32), (u64, usize)>,
    next_stream: u64,
    rr: usize,
    pub(crate) pending_http: Vec<PendingHttpCall>,
    pub(crate) pending_grpc: Vec<PendingGrpcCall>,
    pub(crate) pending_redis: Vec<PendingRedisCall>,
    /// Redis calls wait in `pending_redis` until released (see [`Sim::hold_redis`]).
    redis_held: bool,
    next_call: u64,
    pub(crate) work: VecDeque<Work>,
    /// The HTTP call-outs made, in order (for reports; the most recent 10,000 at most).
    pub http_call_log: Vec<HttpCallRecord>,
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
    pub fn with_host(loader: Loader, opts: SimOptions, host: Arc<Mutex<HostShared>>) -> Sim {
        Sim {
            loader,
            host,
            opts,
            vms: Vec::new(),
            chain: Vec::new(),
            clusters: BTreeMap::new(),
            redis: BTreeMap::new(),
            streams: HashMap::new(),
            ctx_index: HashMap::new(),
            next_stream: 1,
            rr: 0,
            pending_http: Vec::new(),
            pending_grpc: Vec::new(),
            pending_redis: Vec::new(),
            redis_held: false,
            next_call: 1,
            work: VecDeque::new(),
            http_call_log: Vec::new(),
        }
    }

    /// The process-wide state this gateway uses.
    pub fn host(&self) -> Arc<Mutex<HostShared>> {
        self.host.clone()
    }

    /// The module loader.
    pub fn loader(&self) -> &Loader {
        &self.loader
    }

    /// Registers a cluster for call-outs. Calls to unknown clusters get BAD_ARGUMENT.
    pub fn add_cluster(&mut self, name: impl Into<String>, target: Cluster) {
        self.clusters.insert(name.into(), target);
        self.refresh_cluster_names();
    }

    /// Maps a Redis cluster name (Higress calls) to a real Redis server.
    pub fn add_redis(&mut self, name: impl Into<String>, addr: SocketAddr) {
        self.redis.insert(name.into(), addr);
        self.refresh_cluster_names();
    }

    fn refresh_cluster_names(&mut self) {
        let names: Vec<String> = self.clusters.keys().cloned().collect();
        let redis: Vec<String> = self.redis.keys().cloned().collect();
        for vm in self.vms.iter_mut().flatten() {
            vm.store.data_mut().clusters = names.clone();
            vm.store.data_mut().redis_clusters = redis.clone();
        }
    }

    fn new_vm(&mut self, spec: &PluginSpec, worker: usize) -> Result<Vm> {
        let pre = self.loader.instance_pre(&spec.module)?;
        let ctx = VmCtx {
            host: self.host.clone(),
            key: self.vms.len(),
            worker,
            plugin_name: spec.name.clone(),
            vm_id: spec.vm_id.clone(),
            env: spec.env.clone(),
            memory: None,
            malloc: None,
            contexts: HashMap::new(),
            effective: 0,
            deferred: Vec::new(),
            http_calls: Vec::new(),
            grpc_calls: Vec::new(),
            redis_calls: Vec::new(),
            redis_inited: HashMap::new(),
            redis_clusters: self.redis.keys().cloned().collect(),
            clusters: self.clusters.keys().cloned().collect(),
            call_response: None,
            last_status: (0, String::new()),
            next_token: 0,
            plugin_root_id: spec.root_id.clone(),
            root_props: HashMap::new(),
            starting: false,
            log_level: self.opts.log_level,
        };
        Vm::new(spec.module.clone(), &pre, ctx)
    }

    fn host_log(&self, level: LogLevel, message: String) {
        if let Ok(mut h) = self.host.lock() {
            h.push_log(LogEntry {
                plugin: "host-sim".into(),
                worker: 0,
                level,
                message,
            });
        }
    }

    /// Creates a root context on `vm`, starts and configures it. Returns its id.
    fn start_root(&mut self, vm: &mut Vm, spec: &PluginSpec) -> Result<u32> {
        let id = vm.next_context_id();
        vm.store.data_mut().contexts.insert(
            id,
            CtxKind::Root(RootInfo {
                plugin_config: spec.config.clone(),
                vm_config: spec.vm_config.clone(),
                root_id: spec.root_id.clone(),
                tick_ms: 0,
                next_tick_ns: 0,
            }),
        );
        let since = self.host.lock().map(|h| h.logs_pushed).unwrap_or(0);
        let trap = |e: crate::vm::VmTrap| anyhow!("plugin {} trapped: {}", spec.name, e.0);
        vm.on_context_create(id, 0).map_err(trap)?;
        if !vm.on_vm_start(id, spec.vm_config.len()).map_err(trap)? {
            bail!(
                "plugin {} failed to start (on_vm_start returned false)",
                spec.name
            );
        }
        if !vm.on_configure(id, spec.config.len()).map_err(trap)? {
            bail!(
                "plugin {} rejected its configuration{}",
                spec.name,
                self.recent_plugin_errors(&spec.name, since)
            );
        }
        Ok(id)
    }

    /// The plugin's warnings and errors logged since `since` (a `logs_pushed` count), at most
    /// three, for a rejected configuration's error message.
    fn recent_plugin_errors(&self, plugin: &str, since: u64) -> String {
        let Ok(h) = self.host.lock() else {
            return String::new();
        };
        let new = usize::try_from(h.logs_pushed.saturating_sub(since)).unwrap_or(usize::MAX);
        let lines: Vec<&str> = h
            .logs
            .iter()
            .rev()
            .take(new)
            .filter(|l| l.plugin == plugin && l.level >= LogLevel::Warn)
            .take(3)
            .map(|l| l.message.as_str())
            .collect();
        if lines.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )
        }
    }

    /// Checks that `spec` would be accepted (module loads, VM starts, `on_configure` returns
    /// true) on a throwaway VM, changing nothing: what a reload runs first. Lets a caller
    /// check every plugin of a multi-plugin change before applying any of it.
    pub fn check_plugin(&mut self, spec: &PluginSpec) -> Result<()> {
        self.canary(spec)
    }

    /// Validates a spec on a throwaway VM, as Envoy's canary does.
    fn canary(&mut self, spec: &PluginSpec) -> Result<()> {
        let mut vm = self.new_vm(spec, 0)?;
        let r = self.start_root(&mut vm, spec);
        // The canary's side effects (call-outs) are dropped with it.
        drop(vm);
        r.map(|_| ())
    }

    fn build_generation(
        &mut self,
        spec: PluginSpec,
        reuse: Option<&[usize]>,
    ) -> Result<Generation> {
        let mut vms = Vec::new();
        let mut roots = Vec::new();
        for w in 0..self.opts.workers {
            let (key, mut vm) = match reuse {
                Some(keys) => {
                    let key = keys[w];
                    let vm = self.vms[key]
                        .take()
                        .ok_or_else(|| anyhow!("VM {key} is gone"))?;
                    (key, vm)
                }
                None => {
                    let vm = self.new_vm(&spec, w)?;
                    self.vms.push(None);
                    (self.vms.len() - 1, vm)
                }
            };
            vm.store.data_mut().key = key;
            let r = self.start_root(&mut vm, &spec);
            let effects = vm.take_effects();
            self.vms[key] = Some(vm);
            roots.push(r?);
            vms.push(key);
            self.apply_effects(key, effects);
        }
        Ok(Generation {
            failed_at: vec![None; vms.len()],
            spec,
            vms,
            roots,
            live: 0,
            retired: false,
            closed: false,
        })
    }

    /// Adds a plugin at the end of the chain: canary configure, then one VM per worker.
    /// Returns its index in the chain.
    pub fn add_plugin(&mut self, spec: PluginSpec) -> Result<usize> {
        self.canary(&spec)?;
        let gen = self.build_generation(spec, None)?;
        self.chain.push(PluginSlot { gens: vec![gen] });
        self.pump();
        Ok(self.chain.len() - 1)
    }

    /// Hot reload: new streams use `spec`, streams in flight finish on the old instance.
    /// The same module code (and vm_id) adds a root context to the existing VMs; other code
    /// gets new VMs. A rejected configuration leaves the old one serving.
    pub fn reload(&mut self, plugin: usize, spec: PluginSpec) -> Result<()> {
        let slot = self
            .chain
            .get(plugin)
            .ok_or_else(|| anyhow!("no plugin {plugin}"))?;
        let cur = slot.gens.len() - 1;
        let old = &slot.gens[cur];
        let same_code = old.spec.module.hash == spec.module.hash && old.spec.vm_id == spec.vm_id;
        let reuse: Option<Vec<usize>> = same_code.then(|| old.vms.clone());
        self.canary(&spec)?;
        let gen = self.build_generation(spec, reuse.as_deref())?;
        let slot = &mut self.chain[plugin];
        slot.gens[cur].retired = true;
        slot.gens.push(gen);
        self.retire_idle(plugin);
        self.pump();
        Ok(())
    }

    /// Finishes root contexts of retired generations with no streams left.
    pub(crate) fn retire_idle(&mut self, plugin: usize) {
        let n = self.chain[plugin].gens.len();
        for g in 0..n {
            let gen = &self.chain[plugin].gens[g];
            if !gen.retired || gen.closed || gen.live > 0 {
                continue;
            }
            let pairs: Vec<(usize, u32)> = gen
                .vms
                .iter()
                .copied()
                .zip(gen.roots.iter().copied())
                .collect();
            self.chain[plugin].gens[g].closed = true;
            for (vm_key, root) in pairs {
                if let Some(vm) = self.vms.get_mut(vm_key).and_then(|v| v.as_mut()) {
                    if !vm.failed {
                        let _ = vm.on_done(root);
                        let _ = vm.on_delete(root);
                    }
                }
            }
            // Drop VMs no open generation uses any more.
            let in_use: Vec<usize> = self
                .chain
                .iter()
                .flat_map(|s| s.gens.iter().filter(|g| !g.closed))
                .flat_map(|g| g.vms.iter().copied())
                .collect();
            for k in &self.chain[plugin].gens[g].vms {
                if !in_use.contains(k) {
                    if let Some(slot) = self.vms.get_mut(*k) {
                        *slot = None;
                    }
                }
            }
        }
    }

    /// Number of plugins in the chain.
    pub fn chain_len(&self) -> usize {
        self.chain.len()
    }

    /// The current configuration of a plugin.
    pub fn plugin_spec(&self, plugin: usize) -> Option<&PluginSpec> {
        self.chain
            .get(plugin)
            .and_then(|s| s.gens.last())
            .map(|g| &g.spec)
    }

    /// Linear memory in bytes of the current VM of `plugin` on `worker`.
    pub fn vm_memory(&self, plugin: usize, worker: usize) -> Option<usize> {
        let g = self.chain.get(plugin)?.gens.last()?;
        let key = *g.vms.get(worker)?;
        self.vms.get(key)?.as_ref().map(|vm| vm.memory_size())
    }

    /// Whether the current VM of `plugin` on `worker` has failed.
    pub fn vm_failed(&self, plugin: usize, worker: usize) -> bool {
        self.chain
            .get(plugin)
            .and_then(|s| s.gens.last())
            .and_then(|g| g.vms.get(worker))
            .and_then(|k| self.vms.get(*k))
            .map(|v| v.as_ref().map(|vm| vm.failed).unwrap_or(true))
            .unwrap_or(true)
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

    pub(crate) fn mono_ns(&self) -> u64 {
        self.host.lock().map(|h| h.clock.mono_ns()).unwrap_or(0)
    }

    /// Advances the simulated clock, firing ticks and call-out timeouts in time order.
    pub fn advance(&mut self, d: Duration) {
        let target = self.mono_ns() + d.as_nanos() as u64;
        loop {
            let next = self.next_timer();
            match next {
                Some(t) if t <= target => {
                    let now = self.mono_ns();
                    if t > now {
                        if let Ok(mut h) = self.host.lock() {
                            h.clock.advance(Duration::from_nanos(t - now));
                        }
                    }
                    self.fire_timers(t);
                    self.pump();
                }
                _ => break,
            }
        }
        let now = self.mono_ns();
        if target > now {
            if let Ok(mut h) = self.host.lock() {
                h.clock.advance(Duration::from_nanos(target - now));
            }
        }
    }

    /// Fires whatever is due now on the real clock (for the gateway mode).
    pub fn poll_timers(&mut self) {
        let now = self.mono_ns();
        if self.next_timer().is_some_and(|t| t <= now) {
            self.fire_timers(now);
            self.pump();
        }
    }

    fn next_timer(&self) -> Option<u64> {
        let mut best: Option<u64> = None;
        let mut consider = |t: u64| best = Some(best.map_or(t, |b: u64| b.min(t)));
        for vm in self.vms.iter().flatten() {
            if vm.failed {
                continue;
            }
            for c in vm.store.data().contexts.values() {
                if let CtxKind::Root(info) = c {
                    if info.tick_ms > 0 {
                        consider(info.next_tick_ns);
                    }
                }
            }
        }
        for p in &self.pending_http {
            if let Some(d) = p.deadline_ns {
                consider(d);
            }
        }
        best
    }

    fn fire_timers(&mut self, now: u64) {
        // Call-out timeouts first: Envoy answers them with 504.
        let due: Vec<u64> = self
            .pending_http
            .iter()
            .filter(|p| p.deadline_ns.is_some_and(|d| d <= now))
            .map(|p| p.id)
            .collect();
        for id in due {
            let _ = self.answer_http(id, CallReply::Timeout);
        }
        for key in 0..self.vms.len() {
            let roots: Vec<(u32, u32)> = match self.vms[key].as_ref() {
                Some(vm) if !vm.failed => vm
                    .store
                    .data()
                    .contexts
                    .iter()
                    .filter_map(|(id, c)| match c {
                        CtxKind::Root(i) if i.tick_ms > 0 && i.next_tick_ns <= now => {
                            Some((*id, i.tick_ms))
                        }
                        _ => None,
                    })
                    .collect(),
                _ => continue,
            };
            for (root, ms) in roots {
                if let Some(vm) = self.vms[key].as_mut() {
                    if let Some(CtxKind::Root(info)) = vm.store.data_mut().contexts.get_mut(&root) {
                        info.next_tick_ns = now + ms as u64 * 1_000_000;
                    }
                    let _ = vm.on_tick(root);
                    let eff = vm.take_effects();
                    self.apply_effects(key, eff);
                }
            }
        }
    }

    /// Registers the call-outs and queues the deferred actions a callback produced.
    pub(crate) fn apply_effects(&mut self, vm_key: usize, e: Effects) {
        let (plugin, worker) = self.locate_vm(vm_key);
        let now = self.mono_ns();
        for (root, call) in e.http_calls {
            if self.http_call_log.len() >= MAX_CALL_LOG {
                self.http_call_log.drain(..MAX_CALL_LOG / 2);
            }
            self.http_call_log.push(call.clone());
            let id = self.next_call;
            self.next_call += 1;
            let deadline_ns =
                (call.timeout_ms > 0).then(|| now + call.timeout_ms as u64 * 1_000_000);
            self.pending_http.push(PendingHttpCall {
                id,
                plugin,
                worker,
                call,
                vm: vm_key,
                root,
                deadline_ns,
            });
        }
        for (root, call) in e.grpc_calls {
            let id = self.next_call;
            self.next_call += 1;
            self.pending_grpc.push(PendingGrpcCall {
                id,
                call,
                vm: vm_key,
                root,
            });
        }
        for (root, call) in e.redis_calls {
            let timeout_ms = self.vms[vm_key]
                .as_ref()
                .and_then(|vm| vm.store.data().redis_inited.get(&call.cluster).copied())
                .unwrap_or(1000);
            self.pending_redis.push(PendingRedisCall {
                vm: vm_key,
                root,
                call,
                timeout_ms,
            });
        }
        for d in e.deferred {
            if let Deferred::CancelGrpc { token } = d {
                self.pending_grpc
                    .retain(|p| !(p.vm == vm_key && p.call.token == token));
                continue;
            }
            self.work.push_back(Work::Deferred { vm: vm_key, d });
        }
    }

    fn locate_vm(&self, vm_key: usize) -> (usize, usize) {
        for (p, slot) in self.chain.iter().enumerate() {
            for g in &slot.gens {
                if let Some(w) = g.vms.iter().position(|k| *k == vm_key) {
                    return (p, w);
                }
            }
        }
        (self.chain.len(), 0)
    }

    /// While `hold` is true, Higress Redis calls are kept instead of sent, so a test can act
    /// while one is in flight (for example the client goes away); setting it back to false
    /// sends the held calls to their Redis servers in order and delivers the replies.
    pub fn hold_redis(&mut self, hold: bool) {
        self.redis_held = hold;
        if !hold {
            self.pump();
        }
    }

    /// Number of Redis calls waiting to be sent (held, see [`Sim::hold_redis`]).
    pub fn pending_redis_calls(&self) -> usize {
        self.pending_redis.len()
    }

    /// HTTP call-outs waiting for an answer (calls to `Cluster::Manual` clusters).
    pub fn pending_http_calls(&self) -> Vec<PendingHttpCall> {
        self.pending_http.clone()
    }

    /// gRPC call-outs waiting for an answer.
    pub fn pending_grpc_calls(&self) -> Vec<PendingGrpcCall> {
        self.pending_grpc.clone()
    }

    /// Answers a pending HTTP call-out; the plugin's root context gets
    /// `on_http_call_response` and whatever it does then runs.
    pub fn answer_http(&mut self, id: u64, reply: CallReply) -> Result<()> {
        let i = self
            .pending_http
            .iter()
            .position(|p| p.id == id)
            .ok_or_else(|| anyhow!("no pending call {id}"))?;
        let p = self.pending_http.remove(i);
        self.deliver_http(p, reply);
        self.pump();
        Ok(())
    }

    fn deliver_http(&mut self, p: PendingHttpCall, reply: CallReply) {
        let Some(vm) = self.vms.get_mut(p.vm).and_then(|v| v.as_mut()) else {
            return;
        };
        if vm.failed || !vm.store.data().contexts.contains_key(&p.root) {
            return;
        }
        let _ = vm.on_http_call_response(p.root, p.call.token, reply.into_data());
        let eff = vm.take_effects();
        self.after_vm_call(p.vm, eff);
    }

    /// Answers a pending gRPC call: `Ok(message)` calls `on_grpc_receive`, `Err((status,
    /// message))` calls `on_grpc_close`.
    pub fn answer_grpc(&mut self, id: u64, reply: Result<Vec<u8>, (u32, String)>) -> Result<()> {
        let i = self
            .pending_grpc
            .iter()
            .position(|p| p.id == id)
            .ok_or_else(|| anyhow!("no pending gRPC call {id}"))?;
        let p = self.pending_grpc.remove(i);
        self.deliver_grpc(p, reply);
        self.pump();
        Ok(())
    }

    fn deliver_grpc(&mut self, p: PendingGrpcCall, reply: Result<Vec<u8>, (u32, String)>) {
        if let Some(vm) = self.vms.get_mut(p.vm).and_then(|v| v.as_mut()) {
            if !vm.failed && vm.store.data().contexts.contains_key(&p.root) {
                let _ = match reply {
                    Ok(msg) => vm.on_grpc_receive(p.root, p.call.token, msg),
                    Err((code, msg)) => vm.on_grpc_close(p.root, p.call.token, code, msg),
                };
                let eff = vm.take_effects();
                self.after_vm_call(p.vm, eff);
            }
        }
    }

    /// Handles a VM's effects after a root-level callback (trap handling included).
    pub(crate) fn after_vm_call(&mut self, vm_key: usize, eff: Effects) {
        self.apply_effects(vm_key, eff);
        let failed = self.vms[vm_key].as_ref().map(|v| v.failed).unwrap_or(true);
        if failed {
            self.fail_vm_streams(vm_key);
        }
    }

    /// Runs queued work, real call-outs and queue notifications until nothing is left.
    pub fn pump(&mut self) {
        for _ in 0..100_000 {
            if let Some(w) = self.work.pop_front() {
                match w {
                    Work::Deferred { vm, d } => self.apply_deferred(vm, d),
                }
                continue;
            }
            if let Some(i) = self
                .pending_http
                .iter()
                .position(|p| matches!(self.clusters.get(&p.call.cluster), Some(Cluster::Addr(_))))
            {
                let p = self.pending_http.remove(i);
                let Some(Cluster::Addr(addr)) = self.clusters.get(&p.call.cluster).cloned() else {
                    continue;
                };
                let reply = callout::http_request(addr, &p.call);
                self.deliver_http(p, reply);
                continue;
            }
            if let Some(i) = self.pending_grpc.iter().position(|p| {
                matches!(
                    self.clusters
                        .get(&String::from_utf8_lossy(&p.call.service).into_owned()),
                    Some(Cluster::Addr(_))
                )
            }) {
                let p = self.pending_grpc.remove(i);
                let cluster = String::from_utf8_lossy(&p.call.service).into_owned();
                let Some(Cluster::Addr(addr)) = self.clusters.get(&cluster).cloned() else {
                    continue;
                };
                let reply = match crate::grpc::unary(addr, &cluster, &p.call) {
                    crate::grpc::GrpcOutcome::Message(m) => Ok(m),
                    crate::grpc::GrpcOutcome::Status(code, msg) => Err((code, msg)),
                };
                self.deliver_grpc(p, reply);
                continue;
            }
            if !self.redis_held && !self.pending_redis.is_empty() {
                let p = self.pending_redis.remove(0);
                let (status, reply) = match self.redis.get(&p.call.cluster) {
                    Some(addr) => callout::redis_request(*addr, &p.call.query, p.timeout_ms),
                    None => (1, Vec::new()),
                };
                if let Some(vm) = self.vms.get_mut(p.vm).and_then(|v| v.as_mut()) {
                    if !vm.failed && vm.store.data().contexts.contains_key(&p.root) {
                        let _ = vm.on_redis_call_response(p.root, p.call.token, status, reply);
                        let eff = vm.take_effects();
                        self.after_vm_call(p.vm, eff);
                    }
                }
                continue;
            }
            let ready = self
                .host
                .lock()
                .map(|mut h| std::mem::take(&mut h.queue_ready))
                .unwrap_or_default();
            if ready.is_empty() {
                break;
            }
            for (vm_key, root, q) in ready {
                if let Some(vm) = self.vms.get_mut(vm_key).and_then(|v| v.as_mut()) {
                    if !vm.failed && vm.store.data().contexts.contains_key(&root) {
                        let _ = vm.on_queue_ready(root, q);
                        let eff = vm.take_effects();
                        self.after_vm_call(vm_key, eff);
                    }
                }
            }
        }
    }

    fn apply_deferred(&mut self, vm: usize, d: Deferred) {
        match d {
            Deferred::Done { ctx } => {
                if let Some(v) = self.vms.get_mut(vm).and_then(|v| v.as_mut()) {
                    let _ = v.on_delete(ctx);
                }
            }
            Deferred::CancelGrpc { .. } => {}
            other => {
                let ctx = match &other {
                    Deferred::Continue { ctx, .. }
                    | Deferred::Close { ctx }
                    | Deferred::LocalReply { ctx, .. } => *ctx,
                    _ => return,
                };
                if let Some((sid, filter)) = self.ctx_index.get(&(vm, ctx)).copied() {
                    self.stream_action(sid, filter, other);
                }
            }
        }
    }

    /// Starts a stream. Plugin contexts are created when request headers arrive.
    pub fn start_stream(&mut self, opts: StreamOptions) -> u64 {
        let workers = self.opts.workers.max(1);
        let worker = opts.worker.unwrap_or_else(|| {
            self.rr = self.rr.wrapping_add(1);
            (self.rr - 1) % workers
        }) % workers;
        self.reload_failed_vms(worker);
        let mut filters = Vec::new();
        for (p, slot) in self.chain.iter_mut().enumerate() {
            let g = slot.gens.len() - 1;
            let gen = &mut slot.gens[g];
            gen.live += 1;
            filters.push(FilterRef {
                plugin: p,
                gen: g,
                vm: gen.vms[worker],
                root: gen.roots[worker],
                ctx: 0,
            });
        }
        let start_ns = self.now_ns();
        let mut props = opts.props;
        let id = self.next_stream;
        self.next_stream += 1;
        if props.request_id.is_empty() {
            props.request_id = format!("req-{id}");
        }
        let data = StreamData {
            filters: (0..filters.len()).map(|_| FilterSlot::default()).collect(),
            props,
            start_ns,
            ..Default::default()
        };
        self.streams.insert(
            id,
            Stream {
                data: Arc::new(Mutex::new(data)),
                filters,
                worker,
                record: StreamRecord::default(),
                req_headers_end: false,
                decoding_aborted: false,
                upstream_started: false,
                finished: false,
            },
        );
        id
    }

    fn reload_failed_vms(&mut self, worker: usize) {
        let now = self.mono_ns();
        let backoff = self.opts.reload_backoff.as_nanos() as u64;
        for p in 0..self.chain.len() {
            let g = self.chain[p].gens.len() - 1;
            let gen = &self.chain[p].gens[g];
            if gen.spec.fail_policy != FailPolicy::Reload {
                continue;
            }
            let key = gen.vms[worker];
            let failed = self.vms[key].as_ref().map(|v| v.failed).unwrap_or(true);
            if !failed {
                continue;
            }
            let spec = gen.spec.clone();
            let since = gen.failed_at[worker].unwrap_or(now);
            if gen.failed_at[worker].is_none() {
                self.chain[p].gens[g].failed_at[worker] = Some(now);
            }
            if now < since + backoff {
                continue;
            }
            let Ok(mut vm) = self.new_vm(&spec, worker) else {
                continue;
            };
            self.vms.push(None);
            let key = self.vms.len() - 1;
            vm.store.data_mut().key = key;
            match self.start_root(&mut vm, &spec) {
                Ok(root) => {
                    self.host_log(
                        LogLevel::Warn,
                        format!(
                            "FAIL_RELOAD: new VM for plugin {} on worker {worker}",
                            spec.name
                        ),
                    );
                    let eff = vm.take_effects();
                    self.vms[key] = Some(vm);
                    let gen = &mut self.chain[p].gens[g];
                    gen.vms[worker] = key;
                    gen.roots[worker] = root;
                    gen.failed_at[worker] = None;
                    self.apply_effects(key, eff);
                }
                Err(e) => self.host_log(LogLevel::Error, format!("FAIL_RELOAD failed: {e}")),
            }
        }
    }

    /// The record of a stream (None for an unknown id).
    pub fn record(&self, sid: u64) -> Option<StreamRecord> {
        self.streams.get(&sid).map(|s| {
            let mut r = s.record.clone();
            r.stream_id = sid;
            r.worker = s.worker;
            if let Ok(d) = s.data.lock() {
                r.filter_state = d.filter_state.clone();
                r.upstream_override_host = d.upstream_override_host.clone();
            }
            if !r.finished {
                r.incomplete = Some(self.stall_reason(sid));
            }
            r
        })
    }

    /// Removes a finished stream and returns its record.
    pub fn take_record(&mut self, sid: u64) -> Option<StreamRecord> {
        let r = self.record(sid);
        if r.as_ref().is_some_and(|r| r.finished) {
            self.streams.remove(&sid);
        }
        r
    }

    /// Takes the request body bytes that reached the upstream since the last call (the gateway
    /// mode forwards them and keeps nothing).
    pub fn take_upstream_body(&mut self, sid: u64) -> Vec<u8> {
        self.streams
            .get_mut(&sid)
            .and_then(|s| s.record.upstream_request.as_mut())
            .map(|u| {
                u.chunks.clear();
                std::mem::take(&mut u.body)
            })
            .unwrap_or_default()
    }

    /// Takes the response body bytes that reached the client since the last call.
    pub fn take_client_body(&mut self, sid: u64) -> Vec<u8> {
        self.streams
            .get_mut(&sid)
            .map(|s| {
                s.record.response.chunks.clear();
                std::mem::take(&mut s.record.response.body)
            })
            .unwrap_or_default()
    }

    /// A reply made by the router itself (no healthy upstream, timeout): it passes through the
    /// response callbacks of the chain like any local reply.
    pub fn router_reply(&mut self, sid: u64, status: u16, details: &str, body: &[u8]) {
        self.local_reply(sid, None, status, details.into(), body.to_vec(), vec![]);
        self.pump();
    }

    /// Forgets a finished stream.
    pub fn forget(&mut self, sid: u64) {
        if self.streams.get(&sid).is_some_and(|s| s.finished) {
            self.streams.remove(&sid);
        }
    }

    /// What reached the upstream on a stream so far.
    pub fn upstream_request(&self, sid: u64) -> Option<UpstreamRequest> {
        self.streams
            .get(&sid)
            .and_then(|s| s.record.upstream_request.clone())
    }

    /// Number of streams not yet finished.
    pub fn open_streams(&self) -> usize {
        self.streams.values().filter(|s| !s.finished).count()
    }
}
