//! One worker VM: a wasmtime store and instance of a plugin module, its context table, and the
//! calls into the module's `proxy_on_*` exports.

use crate::abi::{Headers, LogLevel};
use crate::module::PluginModule;
use crate::shared::{HostShared, LogEntry};
use crate::stream_data::StreamData;
use anyhow::{anyhow, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wasmtime::{InstancePre, Memory, Store, TypedFunc, Val};

/// What a context id stands for inside one VM.
#[derive(Debug, Clone)]
pub enum CtxKind {
    /// A root context (one per plugin configuration loaded on the VM).
    Root(RootInfo),
    /// An HTTP stream context.
    Stream(StreamLink),
}

/// A root context's configuration and settings.
#[derive(Debug, Clone, Default)]
pub struct RootInfo {
    /// The plugin configuration bytes (buffer type 7).
    pub plugin_config: Vec<u8>,
    /// The VM configuration bytes (buffer type 6).
    pub vm_config: Vec<u8>,
    /// Envoy's `root_id`.
    pub root_id: String,
    /// Tick period set by the plugin (0 = off).
    pub tick_ms: u32,
    /// When the next tick fires (monotonic ns).
    pub next_tick_ns: u64,
}

/// Links a stream context to the stream's shared data and its place in the chain.
#[derive(Debug, Clone)]
pub struct StreamLink {
    /// The root context the stream belongs to.
    pub root: u32,
    /// The stream's hostcall-visible state.
    pub data: Arc<Mutex<StreamData>>,
    /// The filter's index in the chain.
    pub filter: usize,
}

/// An action a hostcall asked for, carried out after the current callback returns (Envoy never
/// re-enters the VM from inside a hostcall).
#[derive(Debug, Clone)]
pub enum Deferred {
    /// `proxy_continue_stream`.
    Continue { ctx: u32, response: bool },
    /// `proxy_close_stream`: reset.
    Close { ctx: u32 },
    /// `proxy_send_local_response`.
    LocalReply {
        /// The stream context that sent it.
        ctx: u32,
        /// HTTP status.
        status: u16,
        /// Response code details.
        details: String,
        /// Body.
        body: Vec<u8>,
        /// Extra headers.
        headers: Headers,
        /// gRPC status (-1 for plain HTTP).
        grpc_status: i32,
    },
    /// `proxy_done` from a root context.
    Done { ctx: u32 },
    /// `proxy_grpc_cancel` / `proxy_grpc_close` of a pending call.
    CancelGrpc { token: u32 },
}

/// A call-out made by a plugin, waiting for its answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HttpCallRecord {
    /// The token the plugin got.
    pub token: u32,
    /// The target cluster.
    pub cluster: String,
    /// Request headers (including `:method`, `:path`, `:authority`).
    pub headers: Vec<(String, String)>,
    /// Request body.
    #[serde(with = "crate::report::lossy")]
    pub body: Vec<u8>,
    /// Timeout in ms (0 = none).
    pub timeout_ms: u32,
}

/// A gRPC call-out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GrpcCallRecord {
    /// The token.
    pub token: u32,
    /// The upstream (cluster name or serialized GrpcService).
    #[serde(with = "crate::report::lossy")]
    pub service: Vec<u8>,
    /// Service name.
    pub service_name: String,
    /// Method name.
    pub method: String,
    /// The request message.
    #[serde(with = "crate::report::lossy")]
    pub message: Vec<u8>,
    /// Initial metadata (request headers) the plugin added.
    pub initial_metadata: Vec<(String, String)>,
    /// Timeout in ms.
    pub timeout_ms: u32,
}

/// A Redis call-out (Higress ABI).
#[derive(Debug, Clone)]
pub struct RedisCallRecord {
    /// The token.
    pub token: u32,
    /// The Redis cluster name.
    pub cluster: String,
    /// The RESP-encoded query.
    pub query: Vec<u8>,
}

/// Data readable during a call-out response callback.
#[derive(Debug, Clone, Default)]
pub struct CallResponseData {
    /// Response headers (map type 6).
    pub headers: Headers,
    /// Body (buffer type 4 / 5 / 9).
    pub body: Vec<u8>,
    /// Trailers (map type 7).
    pub trailers: Headers,
}

/// The store data of one VM: everything hostcalls need.
pub struct VmCtx {
    /// Process-wide state.
    pub host: Arc<Mutex<HostShared>>,
    /// Arena key of this VM in the simulator.
    pub key: usize,
    /// The worker index.
    pub worker: usize,
    /// The plugin's name (for logs).
    pub plugin_name: String,
    /// Envoy's vm_id (namespace of shared data and queues).
    pub vm_id: String,
    /// Environment variables exposed through WASI.
    pub env: Vec<(String, String)>,
    /// The module's memory.
    pub memory: Option<Memory>,
    /// The module's allocator.
    pub malloc: Option<TypedFunc<i32, i32>>,
    /// Contexts alive in this VM.
    pub contexts: HashMap<u32, CtxKind>,
    /// The context hostcalls act on.
    pub effective: u32,
    /// Actions to run after the callback.
    pub deferred: Vec<Deferred>,
    /// HTTP call-outs made during the callback.
    pub http_calls: Vec<(u32, HttpCallRecord)>,
    /// gRPC call-outs made during the callback: (root ctx, record).
    pub grpc_calls: Vec<(u32, GrpcCallRecord)>,
    /// Redis call-outs made during the callback: (root ctx, record).
    pub redis_calls: Vec<(u32, RedisCallRecord)>,
    /// Redis clusters initialised by the plugin: name → timeout ms.
    pub redis_inited: HashMap<String, u32>,
    /// Known Redis cluster names (from the simulator's configuration).
    pub redis_clusters: Vec<String>,
    /// Known HTTP cluster names.
    pub clusters: Vec<String>,
    /// Call-out response data during `on_http_call_response` / gRPC / Redis callbacks.
    pub call_response: Option<CallResponseData>,
    /// `proxy_get_status` result: (code, message).
    pub last_status: (u32, String),
    /// Next call-out token.
    pub next_token: u32,
    /// The plugin's name as `plugin_name` property.
    pub plugin_root_id: String,
    /// Root-context properties set with `set_property` outside a stream.
    pub root_props: HashMap<String, Vec<u8>>,
    /// The module is still starting (`_initialize`/`main`).
    pub starting: bool,
    /// The log level the plugin reads with `proxy_get_log_level`.
    pub log_level: LogLevel,
}

impl VmCtx {
    /// Records a log line from the plugin.
    pub fn log(&self, level: LogLevel, message: String) {
        if let Ok(mut h) = self.host.lock() {
            if level >= h.log_level {
                h.push_log(LogEntry {
                    plugin: self.plugin_name.clone(),
                    worker: self.worker,
                    level,
                    message,
                });
            }
        }
    }

    /// The stream link of the effective context, if it is a stream.
    pub fn stream_link(&self) -> Option<&StreamLink> {
        match self.contexts.get(&self.effective) {
            Some(CtxKind::Stream(l)) => Some(l),
            _ => None,
        }
    }

    /// The root context id the effective context belongs to.
    pub fn root_of_effective(&self) -> Option<u32> {
        match self.contexts.get(&self.effective)? {
            CtxKind::Root(_) => Some(self.effective),
            CtxKind::Stream(l) => Some(l.root),
        }
    }
}

/// `proxy_on_http_call_response(root, token, headers, body_size, trailers)`.
type CallResponseFn = TypedFunc<(i32, i32, i32, i32, i32), ()>;

/// Cached typed exports of a module.
#[derive(Default)]
struct Exports {
    on_context_create: Option<TypedFunc<(i32, i32), ()>>,
    on_vm_start: Option<TypedFunc<(i32, i32), i32>>,
    on_configure: Option<TypedFunc<(i32, i32), i32>>,
    on_request_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    on_request_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    on_request_trailers: Option<TypedFunc<(i32, i32), i32>>,
    on_response_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    on_response_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    on_response_trailers: Option<TypedFunc<(i32, i32), i32>>,
    on_log: Option<TypedFunc<i32, ()>>,
    on_done: Option<TypedFunc<i32, i32>>,
    on_delete: Option<TypedFunc<i32, ()>>,
    on_tick: Option<TypedFunc<i32, ()>>,
    on_queue_ready: Option<TypedFunc<(i32, i32), ()>>,
    on_http_call_response: Option<CallResponseFn>,
    on_grpc_receive: Option<TypedFunc<(i32, i32, i32), ()>>,
    on_grpc_close: Option<TypedFunc<(i32, i32, i32), ()>>,
    on_redis_call_response: Option<TypedFunc<(i32, i32, i32, i32), ()>>,
}

/// Why a call into the VM failed.
#[derive(Debug, Clone)]
pub struct VmTrap(pub String);

/// One instantiated worker VM.
pub struct Vm {
    /// The wasmtime store.
    pub store: Store<VmCtx>,
    exports: Exports,
    /// The VM trapped: it is dead until replaced.
    pub failed: bool,
    next_ctx: u32,
    /// The module it runs.
    pub module: PluginModule,
}

macro_rules! typed {
    ($inst:expr, $store:expr, $name:literal) => {
        $inst.get_typed_func(&mut $store, $name).ok()
    };
}

impl Vm {
    /// Instantiates the module and runs its start-up (`_initialize`, then `main` if exported;
    /// `_start` only without `_initialize`).
    pub fn new(module: PluginModule, pre: &InstancePre<VmCtx>, ctx: VmCtx) -> Result<Vm> {
        let mut store = Store::new(module.module.engine(), ctx);
        let inst = pre
            .instantiate(&mut store)
            .map_err(|e| anyhow!("instantiation failed: {e}"))?;
        let memory = inst
            .get_memory(&mut store, "memory")
            .ok_or_else(|| anyhow!("module exports no memory"))?;
        store.data_mut().memory = Some(memory);
        let malloc: Option<TypedFunc<i32, i32>> =
            inst.get_typed_func(&mut store, "malloc").ok().or_else(|| {
                inst.get_typed_func(&mut store, "proxy_on_memory_allocate")
                    .ok()
            });
        if malloc.is_none() {
            return Err(anyhow!(
                "module exports neither malloc nor proxy_on_memory_allocate"
            ));
        }
        store.data_mut().malloc = malloc;
        let exports = Exports {
            on_context_create: typed!(inst, store, "proxy_on_context_create"),
            on_vm_start: typed!(inst, store, "proxy_on_vm_start"),
            on_configure: typed!(inst, store, "proxy_on_configure"),
            on_request_headers: typed!(inst, store, "proxy_on_request_headers"),
            on_request_body: typed!(inst, store, "proxy_on_request_body"),
            on_request_trailers: typed!(inst, store, "proxy_on_request_trailers"),
            on_response_headers: typed!(inst, store, "proxy_on_response_headers"),
            on_response_body: typed!(inst, store, "proxy_on_response_body"),
            on_response_trailers: typed!(inst, store, "proxy_on_response_trailers"),
            on_log: typed!(inst, store, "proxy_on_log"),
            on_done: typed!(inst, store, "proxy_on_done"),
            on_delete: typed!(inst, store, "proxy_on_delete"),
            on_tick: typed!(inst, store, "proxy_on_tick"),
            on_queue_ready: typed!(inst, store, "proxy_on_queue_ready"),
            on_http_call_response: typed!(inst, store, "proxy_on_http_call_response"),
            on_grpc_receive: typed!(inst, store, "proxy_on_grpc_receive"),
            on_grpc_close: typed!(inst, store, "proxy_on_grpc_close"),
            on_redis_call_response: typed!(inst, store, "proxy_on_redis_call_response"),
        };
        store.data_mut().starting = true;
        let start = |name: &str, store: &mut Store<VmCtx>| -> Result<bool> {
            match inst.get_func(&mut *store, name) {
                Some(f) => {
                    let ty = f.ty(&*store);
                    let params: Vec<Val> = ty.params().map(|_| Val::I32(0)).collect();
                    let mut results: Vec<Val> = ty.results().map(|_| Val::I32(0)).collect();
                    f.call(&mut *store, &params, &mut results)
                        .map_err(|e| anyhow!("{name} failed: {e}"))?;
                    Ok(true)
                }
                None => Ok(false),
            }
        };
        if start("_initialize", &mut store)? {
            if !start("main", &mut store)? {
                start("__main_void", &mut store)?;
            }
        } else {
            start("_start", &mut store)?;
        }
        store.data_mut().starting = false;
        Ok(Vm {
            store,
            exports,
            failed: false,
            next_ctx: 1,
            module,
        })
    }

    /// Allocates the next context id of this VM.
    pub fn next_context_id(&mut self) -> u32 {
        let id = self.next_ctx;
        self.next_ctx += 1;
        id
    }

    /// Bytes of linear memory the VM uses now.
    pub fn memory_size(&self) -> usize {
        self.store
            .data()
            .memory
            .map(|m| m.data_size(&self.store))
            .unwrap_or(0)
    }

    fn enter(&mut self, ctx: u32) -> Result<(), VmTrap> {
        if self.failed {
            return Err(VmTrap("VM already failed".into()));
        }
        self.store.data_mut().effective = ctx;
        Ok(())
    }

    fn fail(&mut self, e: wasmtime::Error) -> VmTrap {
        self.failed = true;
        let msg = format!("{e:#}");
        self.store
            .data()
            .log(LogLevel::Critical, format!("wasm trap: {msg}"));
        VmTrap(msg)
    }

    /// Calls an export taking a context id and returning an i32 (missing export → `default`).
    fn call_i32<P: wasmtime::WasmParams>(
        &mut self,
        ctx: u32,
        f: Option<TypedFunc<P, i32>>,
        params: P,
        default: i32,
    ) -> Result<i32, VmTrap> {
        self.enter(ctx)?;
        match f {
            Some(f) => f.call(&mut self.store, params).map_err(|e| self.fail(e)),
            None => Ok(default),
        }
    }

    fn call_unit<P: wasmtime::WasmParams>(
        &mut self,
        ctx: u32,
        f: Option<TypedFunc<P, ()>>,
        params: P,
    ) -> Result<(), VmTrap> {
        self.enter(ctx)?;
        match f {
            Some(f) => f.call(&mut self.store, params).map_err(|e| self.fail(e)),
            None => Ok(()),
        }
    }

    /// `proxy_on_context_create(ctx, parent)`.
    pub fn on_context_create(&mut self, ctx: u32, parent: u32) -> Result<(), VmTrap> {
        let f = self.exports.on_context_create.clone();
        self.call_unit(ctx, f, (ctx as i32, parent as i32))
    }

    /// `proxy_on_vm_start(root, vm_config_size)`.
    pub fn on_vm_start(&mut self, ctx: u32, size: usize) -> Result<bool, VmTrap> {
        let f = self.exports.on_vm_start.clone();
        Ok(self.call_i32(ctx, f, (ctx as i32, size as i32), 1)? != 0)
    }

    /// `proxy_on_configure(root, plugin_config_size)`.
    pub fn on_configure(&mut self, ctx: u32, size: usize) -> Result<bool, VmTrap> {
        let f = self.exports.on_configure.clone();
        Ok(self.call_i32(ctx, f, (ctx as i32, size as i32), 1)? != 0)
    }

    /// Request or response headers callback; returns the action.
    pub fn on_headers(
        &mut self,
        ctx: u32,
        response: bool,
        n: usize,
        end: bool,
    ) -> Result<i32, VmTrap> {
        let f = if response {
            self.exports.on_response_headers.clone()
        } else {
            self.exports.on_request_headers.clone()
        };
        self.call_i32(ctx, f, (ctx as i32, n as i32, end as i32), 0)
    }

    /// Request or response body callback; returns the action.
    pub fn on_body(
        &mut self,
        ctx: u32,
        response: bool,
        size: usize,
        end: bool,
    ) -> Result<i32, VmTrap> {
        let f = if response {
            self.exports.on_response_body.clone()
        } else {
            self.exports.on_request_body.clone()
        };
        self.call_i32(ctx, f, (ctx as i32, size as i32, end as i32), 0)
    }

    /// Request or response trailers callback; returns the action.
    pub fn on_trailers(&mut self, ctx: u32, response: bool, n: usize) -> Result<i32, VmTrap> {
        let f = if response {
            self.exports.on_response_trailers.clone()
        } else {
            self.exports.on_request_trailers.clone()
        };
        self.call_i32(ctx, f, (ctx as i32, n as i32), 0)
    }

    /// `proxy_on_log`.
    pub fn on_log(&mut self, ctx: u32) -> Result<(), VmTrap> {
        let f = self.exports.on_log.clone();
        self.call_unit(ctx, f, ctx as i32)
    }

    /// `proxy_on_done`: whether the context is done now.
    pub fn on_done(&mut self, ctx: u32) -> Result<bool, VmTrap> {
        let f = self.exports.on_done.clone();
        Ok(self.call_i32(ctx, f, ctx as i32, 1)? != 0)
    }

    /// `proxy_on_delete`; the context is forgotten afterwards.
    pub fn on_delete(&mut self, ctx: u32) -> Result<(), VmTrap> {
        let f = self.exports.on_delete.clone();
        let r = self.call_unit(ctx, f, ctx as i32);
        self.store.data_mut().contexts.remove(&ctx);
        r
    }

    /// `proxy_on_tick`.
    pub fn on_tick(&mut self, ctx: u32) -> Result<(), VmTrap> {
        let f = self.exports.on_tick.clone();
        self.call_unit(ctx, f, ctx as i32)
    }

    /// `proxy_on_queue_ready`.
    pub fn on_queue_ready(&mut self, ctx: u32, queue: u32) -> Result<(), VmTrap> {
        let f = self.exports.on_queue_ready.clone();
        self.call_unit(ctx, f, (ctx as i32, queue as i32))
    }

    /// `proxy_on_http_call_response` on the root context, with the response readable.
    pub fn on_http_call_response(
        &mut self,
        root: u32,
        token: u32,
        data: CallResponseData,
    ) -> Result<(), VmTrap> {
        let (nh, nb, nt) = (data.headers.len(), data.body.len(), data.trailers.len());
        self.store.data_mut().call_response = Some(data);
        let f = self.exports.on_http_call_response.clone();
        let r = self.call_unit(
            root,
            f,
            (root as i32, token as i32, nh as i32, nb as i32, nt as i32),
        );
        self.store.data_mut().call_response = None;
        r
    }

    /// `proxy_on_grpc_receive` (success) on the root context.
    pub fn on_grpc_receive(&mut self, root: u32, token: u32, msg: Vec<u8>) -> Result<(), VmTrap> {
        let n = msg.len();
        self.store.data_mut().call_response = Some(CallResponseData {
            body: msg,
            ..Default::default()
        });
        self.store.data_mut().last_status = (0, String::new());
        let f = self.exports.on_grpc_receive.clone();
        let r = self.call_unit(root, f, (root as i32, token as i32, n as i32));
        self.store.data_mut().call_response = None;
        r
    }

    /// `proxy_on_grpc_close` (failure) on the root context.
    pub fn on_grpc_close(
        &mut self,
        root: u32,
        token: u32,
        status: u32,
        message: String,
    ) -> Result<(), VmTrap> {
        self.store.data_mut().last_status = (status, message);
        let f = self.exports.on_grpc_close.clone();
        self.call_unit(root, f, (root as i32, token as i32, status as i32))
    }

    /// Higress `proxy_on_redis_call_response` on the root context; the reply is buffer 9.
    pub fn on_redis_call_response(
        &mut self,
        root: u32,
        token: u32,
        status: i32,
        reply: Vec<u8>,
    ) -> Result<(), VmTrap> {
        let n = reply.len();
        self.store.data_mut().call_response = Some(CallResponseData {
            body: reply,
            ..Default::default()
        });
        let f = self.exports.on_redis_call_response.clone();
        let r = self.call_unit(root, f, (root as i32, token as i32, status, n as i32));
        self.store.data_mut().call_response = None;
        r
    }

    /// Takes the actions and call-outs the last callback asked for.
    pub fn take_effects(&mut self) -> Effects {
        let d = self.store.data_mut();
        Effects {
            deferred: std::mem::take(&mut d.deferred),
            http_calls: std::mem::take(&mut d.http_calls),
            grpc_calls: std::mem::take(&mut d.grpc_calls),
            redis_calls: std::mem::take(&mut d.redis_calls),
        }
    }
}

/// What a callback asked the host to do once it returned.
#[derive(Debug, Default)]
pub struct Effects {
    /// Deferred stream actions.
    pub deferred: Vec<Deferred>,
    /// New HTTP call-outs: (root ctx, record).
    pub http_calls: Vec<(u32, HttpCallRecord)>,
    /// New gRPC call-outs.
    pub grpc_calls: Vec<(u32, GrpcCallRecord)>,
    /// New Redis call-outs.
    pub redis_calls: Vec<(u32, RedisCallRecord)>,
}
