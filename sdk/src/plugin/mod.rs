//! Declaring a plugin: the [`Plugin`] trait, the per-stream [`Ctx`], the per-root
//! [`RootCtx`], and [`export_plugin!`](crate::export_plugin).
//!
//! ```no_run
//! use aigw::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     header: String,
//! }
//! impl PlainConfig for Config {}
//!
//! #[derive(Default)]
//! struct Tagger;
//!
//! impl Plugin for Tagger {
//!     const NAME: &'static str = "tagger";
//!     type Config = Config;
//!     type Root = ();
//!
//!     fn on_request_headers(&mut self, ctx: &mut Ctx<Self>, _end_of_stream: bool) -> Flow {
//!         let name = ctx.config().header.clone();
//!         if let Err(e) = ctx.set_request_header(&name, "1") {
//!             aigw::warn!("cannot tag request: {e}");
//!         }
//!         Flow::Continue
//!     }
//! }
//!
//! aigw::export_plugin!(Tagger);
//! ```
//!
//! How a stream runs: at request headers the SDK selects the configuration (first matching
//! `_rules_` entry, else the global one — see [`crate::config::rules`]); when none applies the
//! stream passes through and no handler runs. One `Plugin` value (`Default`) is created per
//! stream. When the plugin sent a local reply, the SDK pauses the request and skips the
//! response handlers for that reply (its own error body passes through untouched); `on_log`
//! and `on_done` still run.

mod callout;
mod ctx;
pub mod grpc;
mod root;
pub(crate) mod stream;

pub use callout::{CallError, CallRequest, CallResponse, CallResult};
pub use ctx::Ctx;
pub use grpc::{GrpcCall, GrpcError, GrpcResult};
pub use root::RootCtx;

use crate::body::BodyChunk;
use crate::config::{ConfigError, PluginConfig};

/// What a stream callback tells the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Let the stream go on.
    Continue,
    /// Hold the stream: headers stop iteration, body chunks are buffered by the host (the next
    /// body callback then sees everything buffered). Resume later with
    /// [`Ctx::resume_request`]/[`Ctx::resume_response`], or answer with a local reply.
    Pause,
}

impl From<Flow> for proxy_wasm::types::Action {
    fn from(flow: Flow) -> Self {
        match flow {
            Flow::Continue => proxy_wasm::types::Action::Continue,
            Flow::Pause => proxy_wasm::types::Action::Pause,
        }
    }
}

/// A gateway plugin. Implement the handlers you need; every default continues.
///
/// One value is created (with `Default`) per HTTP stream; handlers get `&mut self` for
/// per-stream state and a [`Ctx`] for everything else. Root-side hooks (configure, tick,
/// queue) are associated functions over [`RootCtx`].
pub trait Plugin: Default + Sized + 'static {
    /// The plugin name, used in log lines (`"<name>: ..."`).
    const NAME: &'static str;

    /// The typed configuration (per rule; see [`crate::config`]).
    type Config: PluginConfig;

    /// State shared by the root context and all its streams in one VM (for example a
    /// round-robin counter or cached scrape results). Use interior mutability (`Cell`,
    /// `RefCell`) to change it; `()` when not needed.
    type Root: Default + 'static;

    /// Called after the configuration parsed and validated, before any stream. Set tick
    /// periods or start root call-outs here. An error rejects the configuration.
    fn on_configure(root: &mut RootCtx<Self>) -> Result<(), ConfigError> {
        let _ = root;
        Ok(())
    }

    /// Called every tick period (see [`RootCtx::set_tick_period`]).
    fn on_tick(root: &mut RootCtx<Self>) {
        let _ = root;
    }

    /// Called when a shared queue registered by this root context has data.
    fn on_queue_ready(root: &mut RootCtx<Self>, queue_id: u32) {
        let _ = (root, queue_id);
    }

    /// Request headers arrived (readable and writable only here, or while paused here).
    fn on_request_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        let _ = (ctx, end_of_stream);
        Flow::Continue
    }

    /// A request body chunk arrived.
    fn on_request_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        let _ = (ctx, chunk);
        Flow::Continue
    }

    /// Request trailers arrived.
    fn on_request_trailers(&mut self, ctx: &mut Ctx<Self>) -> Flow {
        let _ = ctx;
        Flow::Continue
    }

    /// Response headers arrived.
    fn on_response_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        let _ = (ctx, end_of_stream);
        Flow::Continue
    }

    /// A response body chunk arrived.
    fn on_response_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        let _ = (ctx, chunk);
        Flow::Continue
    }

    /// Response trailers arrived.
    fn on_response_trailers(&mut self, ctx: &mut Ctx<Self>) -> Flow {
        let _ = ctx;
        Flow::Continue
    }

    /// The stream is complete; request and response headers are readable (copies). The place
    /// for access logs and usage accounting.
    fn on_log(&mut self, ctx: &mut Ctx<Self>) {
        let _ = ctx;
    }

    /// The stream is being destroyed.
    fn on_done(&mut self, ctx: &mut Ctx<Self>) {
        let _ = ctx;
    }
}

/// Registers `P` as the module's plugin. Called by [`export_plugin!`](crate::export_plugin)
/// from the module's start-up function; not for direct use.
#[doc(hidden)]
pub fn __start<P: Plugin>() {
    crate::log::set_plugin_name(P::NAME);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::PluginRoot::<P>::new(context_id))
    });
}

/// Exports a [`Plugin`] as the module's proxy-wasm entry point: `aigw::export_plugin!(MyPlugin);`
///
/// It expands to `proxy_wasm::main!` with a generic root context that reads and validates the
/// configuration in `on_configure` (an invalid configuration is rejected with one error log
/// line `"<plugin>: invalid config: <field>: <reason>"`) and creates one stream context per
/// HTTP stream.
///
/// The entry point (`_initialize`) is exported only when building for wasm: a native build of
/// the plugin crate (its `rlib`, for tests, fuzzers, benches or tools) exports nothing, so any
/// number of plugins link into one native binary.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_family = "wasm")]
        #[doc(hidden)]
        mod __aigw_module_entry {
            #[allow(unused_imports)]
            use super::*;
            $crate::proxy_wasm::main! {{
                $crate::plugin::__start::<$plugin>();
            }}
        }
    };
}
