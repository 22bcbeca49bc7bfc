//! The generic root context: configuration, ticks, root call-outs.

use super::callout::{read_call_result, CallRequest, CallResult};
use super::stream::HttpStream;
use super::Plugin;
use crate::config::Rules;
use crate::host::{self, BufferType, HostError};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;
use std::time::Duration;

type RootCallback<P> = Box<dyn FnOnce(&mut RootCtx<P>, CallResult)>;

/// The root-side context: one per plugin configuration per VM. Handed to
/// [`Plugin::on_configure`], [`Plugin::on_tick`] and root call-out callbacks.
pub struct RootCtx<P: Plugin> {
    id: u32,
    state: Rc<P::Root>,
    rules: Option<Rc<Rules<P::Config>>>,
    callouts: Vec<(u32, RootCallback<P>)>,
}

impl<P: Plugin> RootCtx<P> {
    /// The host's id of this root context.
    pub fn context_id(&self) -> u32 {
        self.id
    }

    /// The root state shared with this root's streams.
    pub fn state(&self) -> &P::Root {
        &self.state
    }

    /// The parsed configuration (global and rules); `None` before `on_configure`.
    pub fn rules(&self) -> Option<&Rules<P::Config>> {
        self.rules.as_deref()
    }

    /// The global configuration, if there is one.
    pub fn global_config(&self) -> Option<&P::Config> {
        self.rules.as_ref().and_then(|r| r.global()).map(|c| &**c)
    }

    /// Every configuration in effect (global first, then each rule's merged configuration).
    pub fn configs(&self) -> Vec<&P::Config> {
        self.rules
            .as_ref()
            .map(|r| r.configs().collect())
            .unwrap_or_default()
    }

    /// Sets how often [`Plugin::on_tick`] runs; zero disables ticks.
    pub fn set_tick_period(&self, period: Duration) -> Result<(), HostError> {
        host::set_tick_period(period)
    }

    /// Sends an HTTP request from the root context (for periodic work on ticks); `callback`
    /// runs with this root context when the response arrives.
    pub fn http_call<F>(
        &mut self,
        cluster: &str,
        request: CallRequest,
        timeout: Duration,
        callback: F,
    ) -> Result<(), HostError>
    where
        F: FnOnce(&mut RootCtx<P>, CallResult) + 'static,
    {
        let headers = request.header_pairs();
        let token = host::dispatch_http_call(cluster, &headers, request.body_bytes(), timeout)?;
        self.callouts.push((token, Box::new(callback)));
        Ok(())
    }

    /// Number of root call-outs still waiting for a response.
    pub fn pending_calls(&self) -> usize {
        self.callouts.len()
    }
}

/// The proxy-wasm root context behind every plugin.
pub(crate) struct PluginRoot<P: Plugin> {
    ctx: RootCtx<P>,
}

impl<P: Plugin> PluginRoot<P> {
    pub(crate) fn new(id: u32) -> PluginRoot<P> {
        PluginRoot {
            ctx: RootCtx {
                id,
                state: Rc::new(P::Root::default()),
                rules: None,
                callouts: Vec::new(),
            },
        }
    }

    fn configure(&mut self) -> Result<(), String> {
        let raw = host::get_buffer_all(BufferType::PluginConfiguration)
            .map_err(|e| format!("cannot read the plugin configuration: {e}"))?;
        let rules = Rules::<P::Config>::parse(&raw).map_err(|e| e.to_string())?;
        if let Some(e) = rules.global_error() {
            crate::warn!("global config is not complete on its own ({e}); requests no rule matches pass through");
        }
        let previous = self.ctx.rules.replace(Rc::new(rules));
        if let Err(e) = P::on_configure(&mut self.ctx) {
            self.ctx.rules = previous;
            return Err(e.to_string());
        }
        Ok(())
    }
}

impl<P: Plugin> Context for PluginRoot<P> {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(at) = self.ctx.callouts.iter().position(|(t, _)| *t == token_id) else {
            return;
        };
        let (_, callback) = self.ctx.callouts.swap_remove(at);
        let result = read_call_result(num_headers, body_size);
        callback(&mut self.ctx, result);
    }

    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        // Only detached calls (see `super::grpc`) are made on behalf of the root context.
        super::grpc::deliver_detached(token_id, status_code, response_size);
    }
}

impl<P: Plugin> RootContext for PluginRoot<P> {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        match self.configure() {
            Ok(()) => true,
            Err(reason) => {
                crate::error!("invalid config: {reason}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        P::on_tick(&mut self.ctx);
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        P::on_queue_ready(&mut self.ctx, queue_id);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HttpStream::<P>::new(
            context_id,
            self.ctx.id,
            self.ctx.rules.clone(),
            Rc::clone(&self.ctx.state),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
