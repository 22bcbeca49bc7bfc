//! Loading and checking proxy-wasm modules: the wasm magic, the ABI marker, the imports.
//!
//! A [`Loader`] compiles each distinct module once (keyed by a hash of its bytes) and hands out
//! cheap clones of the compiled [`PluginModule`], so tests can create many VMs quickly.

use crate::abi::AbiVersion;
use crate::vm::VmCtx;
use anyhow::{anyhow, bail, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use wasmtime::{Engine, ExternType, InstancePre, Linker, Module};

/// The imports stock Envoy provides to every module (standard ABI and Envoy's WASI subset).
/// The WASI functions are also provided under the older module name `wasi_unstable` (see
/// [`is_envoy_import`]). Anything else is Higress-only or unknown, and makes a module
/// unloadable on stock Envoy.
pub const ENVOY_IMPORTS: &[&str] = &[
    "env.proxy_log",
    "env.proxy_get_log_level",
    "env.proxy_get_status",
    "env.proxy_set_effective_context",
    "env.proxy_done",
    "env.proxy_call_foreign_function",
    "env.proxy_get_current_time_nanoseconds",
    "env.proxy_set_tick_period_milliseconds",
    "env.proxy_get_configuration",
    "env.proxy_get_buffer_bytes",
    "env.proxy_set_buffer_bytes",
    "env.proxy_get_buffer_status",
    "env.proxy_get_header_map_pairs",
    "env.proxy_set_header_map_pairs",
    "env.proxy_get_header_map_value",
    "env.proxy_replace_header_map_value",
    "env.proxy_remove_header_map_value",
    "env.proxy_add_header_map_value",
    "env.proxy_get_header_map_size",
    "env.proxy_get_property",
    "env.proxy_set_property",
    "env.proxy_get_shared_data",
    "env.proxy_set_shared_data",
    "env.proxy_register_shared_queue",
    "env.proxy_resolve_shared_queue",
    "env.proxy_dequeue_shared_queue",
    "env.proxy_enqueue_shared_queue",
    "env.proxy_continue_stream",
    "env.proxy_close_stream",
    "env.proxy_continue_request",
    "env.proxy_continue_response",
    "env.proxy_clear_route_cache",
    "env.proxy_send_local_response",
    "env.proxy_http_call",
    "env.proxy_grpc_call",
    "env.proxy_grpc_stream",
    "env.proxy_grpc_send",
    "env.proxy_grpc_cancel",
    "env.proxy_grpc_close",
    "env.proxy_define_metric",
    "env.proxy_increment_metric",
    "env.proxy_record_metric",
    "env.proxy_get_metric",
    "wasi_snapshot_preview1.fd_write",
    "wasi_snapshot_preview1.fd_read",
    "wasi_snapshot_preview1.fd_seek",
    "wasi_snapshot_preview1.fd_close",
    "wasi_snapshot_preview1.fd_fdstat_get",
    "wasi_snapshot_preview1.fd_fdstat_set_flags",
    "wasi_snapshot_preview1.fd_prestat_get",
    "wasi_snapshot_preview1.fd_prestat_dir_name",
    "wasi_snapshot_preview1.fd_filestat_get",
    "wasi_snapshot_preview1.fd_readdir",
    "wasi_snapshot_preview1.path_open",
    "wasi_snapshot_preview1.path_filestat_get",
    "wasi_snapshot_preview1.environ_get",
    "wasi_snapshot_preview1.environ_sizes_get",
    "wasi_snapshot_preview1.args_get",
    "wasi_snapshot_preview1.args_sizes_get",
    "wasi_snapshot_preview1.clock_time_get",
    "wasi_snapshot_preview1.clock_res_get",
    "wasi_snapshot_preview1.random_get",
    "wasi_snapshot_preview1.sched_yield",
    "wasi_snapshot_preview1.poll_oneoff",
    "wasi_snapshot_preview1.proc_exit",
];

/// A compiled, checked proxy-wasm module.
#[derive(Clone)]
pub struct PluginModule {
    /// The compiled module.
    pub module: Module,
    /// The ABI version its marker export declares.
    pub abi: AbiVersion,
    /// Size of the module file in bytes.
    pub size: usize,
    /// A hash of the module bytes (identifies "the same code" for hot reload).
    pub hash: u64,
}

impl std::fmt::Debug for PluginModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginModule")
            .field("abi", &self.abi)
            .field("size", &self.size)
            .field("hash", &self.hash)
            .finish()
    }
}

/// Whether stock Envoy provides an import (`module.name`): the standard ABI, and its WASI
/// subset under either `wasi_snapshot_preview1` or `wasi_unstable`.
pub fn is_envoy_import(name: &str) -> bool {
    if ENVOY_IMPORTS.contains(&name) {
        return true;
    }
    name.strip_prefix("wasi_unstable.")
        .is_some_and(|f| ENVOY_IMPORTS.contains(&format!("wasi_snapshot_preview1.{f}").as_str()))
}

/// What a module is for, from the callbacks it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterKind {
    /// HTTP filter callbacks only (`proxy_on_request_headers` and the like).
    Http,
    /// Network (TCP) filter callbacks only (`proxy_on_new_connection`,
    /// `proxy_on_downstream_data`, `proxy_on_upstream_data`).
    Network,
    /// Both sets.
    HttpAndNetwork,
    /// Neither (a root-only module: ticks, queues, call-outs).
    RootOnly,
}

impl FilterKind {
    /// Classifies a module from its export names.
    pub fn from_exports<'a>(exports: impl IntoIterator<Item = &'a str>) -> FilterKind {
        const HTTP: &[&str] = &[
            "proxy_on_request_headers",
            "proxy_on_request_body",
            "proxy_on_request_trailers",
            "proxy_on_response_headers",
            "proxy_on_response_body",
            "proxy_on_response_trailers",
        ];
        const NETWORK: &[&str] = &[
            "proxy_on_new_connection",
            "proxy_on_downstream_data",
            "proxy_on_upstream_data",
            "proxy_on_downstream_connection_close",
            "proxy_on_upstream_connection_close",
        ];
        let (mut http, mut net) = (false, false);
        for e in exports {
            http |= HTTP.contains(&e);
            net |= NETWORK.contains(&e);
        }
        match (http, net) {
            (true, true) => FilterKind::HttpAndNetwork,
            (true, false) => FilterKind::Http,
            (false, true) => FilterKind::Network,
            (false, false) => FilterKind::RootOnly,
        }
    }

    /// How `host-sim inspect` names it.
    pub fn describe(self) -> &'static str {
        match self {
            FilterKind::Http => "HTTP filter",
            FilterKind::Network => "network (TCP) filter",
            FilterKind::HttpAndNetwork => "HTTP and network (TCP) filter",
            FilterKind::RootOnly => "no filter callbacks (root context only)",
        }
    }
}

/// What `host-sim inspect` reports about a module.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModuleInfo {
    /// The ABI version from the marker export.
    pub abi: AbiVersion,
    /// HTTP filter, network (TCP) filter, both, or neither.
    pub kind: FilterKind,
    /// Module size in bytes.
    pub size: usize,
    /// Every import as `module.name`.
    pub imports: Vec<String>,
    /// Imports stock Envoy does not provide.
    pub non_envoy_imports: Vec<String>,
    /// Every export name.
    pub exports: Vec<String>,
}

/// Compiles modules once per engine and caches them by content hash, together with their
/// linked import set, so creating a VM is only an instantiation.
#[derive(Clone)]
pub struct Loader {
    engine: Engine,
    cache: Arc<Mutex<HashMap<u64, PluginModule>>>,
    linked: Arc<Mutex<HashMap<u64, InstancePre<VmCtx>>>>,
}

impl Default for Loader {
    fn default() -> Self {
        Self::new()
    }
}

impl Loader {
    /// A loader with its own engine.
    pub fn new() -> Loader {
        let mut config = wasmtime::Config::new();
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        // `Config::new` only fails on invalid settings; the defaults are valid.
        let engine = Engine::new(&config).unwrap_or_else(|_| Engine::default());
        Loader {
            engine,
            cache: Arc::new(Mutex::new(HashMap::new())),
            linked: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The module linked against every hostcall (cached per module).
    pub fn instance_pre(&self, m: &PluginModule) -> Result<InstancePre<VmCtx>> {
        if let Some(p) = self
            .linked
            .lock()
            .map_err(|_| anyhow!("poisoned"))?
            .get(&m.hash)
        {
            return Ok(p.clone());
        }
        let mut linker: Linker<VmCtx> = Linker::new(&self.engine);
        crate::hostcalls::add_to_linker(&mut linker)?;
        crate::wasi::add_to_linker(&mut linker)?;
        crate::linker_fallback::add_missing(&mut linker, &m.module)?;
        let pre = linker
            .instantiate_pre(&m.module)
            .map_err(|e| anyhow!("cannot link module: {e}"))?;
        self.linked
            .lock()
            .map_err(|_| anyhow!("poisoned"))?
            .insert(m.hash, pre.clone());
        Ok(pre)
    }

    /// The wasmtime engine modules are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Reads, checks and compiles a module file.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<PluginModule> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
        self.load_bytes(&bytes)
            .map_err(|e| anyhow!("{}: {e}", path.display()))
    }

    /// Checks and compiles module bytes (binary wasm; WAT text is accepted for tests).
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<PluginModule> {
        let hash = fnv1a(bytes);
        if let Some(m) = self
            .cache
            .lock()
            .map_err(|_| anyhow!("poisoned"))?
            .get(&hash)
        {
            return Ok(m.clone());
        }
        let is_binary = bytes.starts_with(b"\0asm");
        let looks_like_wat = !is_binary
            && std::str::from_utf8(bytes)
                .map(|s| s.trim_start().starts_with("(module"))
                .unwrap_or(false);
        if !is_binary && !looks_like_wat {
            bail!("not a WebAssembly module (missing \\0asm magic)");
        }
        let module =
            Module::new(&self.engine, bytes).map_err(|e| anyhow!("invalid module: {e}"))?;
        let abi = detect_abi(&module)?;
        if module.get_export("memory").is_none() {
            bail!("module does not export its memory");
        }
        let pm = PluginModule {
            module,
            abi,
            size: bytes.len(),
            hash,
        };
        self.cache
            .lock()
            .map_err(|_| anyhow!("poisoned"))?
            .insert(hash, pm.clone());
        Ok(pm)
    }
}

/// Finds the ABI marker export. Higress's 0_2_100 wins when several are present.
pub fn detect_abi(module: &Module) -> Result<AbiVersion> {
    let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
    for v in [AbiVersion::V0_2_100, AbiVersion::V0_2_1, AbiVersion::V0_2_0] {
        if exports.contains(&v.marker()) {
            return Ok(v);
        }
    }
    if let Some(other) = exports.iter().find(|e| e.starts_with("proxy_abi_version_")) {
        bail!("unknown Proxy-Wasm ABI version: {other}");
    }
    bail!("missing Proxy-Wasm ABI version (no proxy_abi_version_* export)")
}

/// Describes a module: ABI, imports (flagging those stock Envoy lacks), exports and size.
pub fn inspect(pm: &PluginModule) -> ModuleInfo {
    let mut imports = Vec::new();
    let mut non_envoy = Vec::new();
    for imp in pm.module.imports() {
        if !matches!(imp.ty(), ExternType::Func(_)) {
            imports.push(format!("{}.{} (non-function)", imp.module(), imp.name()));
            continue;
        }
        let name = format!("{}.{}", imp.module(), imp.name());
        if !is_envoy_import(&name) {
            non_envoy.push(name.clone());
        }
        imports.push(name);
    }
    ModuleInfo {
        abi: pm.abi,
        kind: FilterKind::from_exports(pm.module.exports().map(|e| e.name())),
        size: pm.size,
        imports,
        non_envoy_imports: non_envoy,
        exports: pm.module.exports().map(|e| e.name().to_string()).collect(),
    }
}

/// The imports of a module that make it unloadable on stock Envoy (empty: portable).
pub fn portability_violations(info: &ModuleInfo) -> Vec<String> {
    info.non_envoy_imports.clone()
}

/// 64-bit FNV-1a, used to identify module contents.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}
