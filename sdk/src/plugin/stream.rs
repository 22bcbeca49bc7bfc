//! The generic HTTP stream context that drives a [`Plugin`].

use super::callout::read_call_result;
use super::{Ctx, Flow, Plugin};
use crate::body::BodyChunk;
use crate::config::{Fact, Rules};
use crate::host::{self, MapType};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::cell::RefCell;
use std::rc::Rc;

/// The plugin value and its context, once a configuration was selected.
pub(crate) struct Active<P: Plugin> {
    pub(crate) plugin: P,
    pub(crate) ctx: Ctx<P>,
}

pub(crate) struct StreamInner<P: Plugin> {
    id: u32,
    root_id: u32,
    rules: Option<Rc<Rules<P::Config>>>,
    root: Rc<P::Root>,
    pub(crate) active: Option<Active<P>>,
    /// `on_done` ran: late replies no longer reach the plugin (Redis replies go to their
    /// fallback instead).
    #[cfg_attr(not(feature = "higress"), allow(dead_code))]
    pub(crate) finished: bool,
}

/// The proxy-wasm HTTP context behind every plugin stream. The state sits behind
/// `Rc<RefCell<..>>` so Higress Redis callbacks, which arrive outside proxy-wasm's
/// dispatcher, can find the stream by id.
pub(crate) struct HttpStream<P: Plugin> {
    inner: Rc<RefCell<StreamInner<P>>>,
}

impl<P: Plugin> HttpStream<P> {
    pub(crate) fn new(
        id: u32,
        root_id: u32,
        rules: Option<Rc<Rules<P::Config>>>,
        root: Rc<P::Root>,
    ) -> HttpStream<P> {
        let inner = Rc::new(RefCell::new(StreamInner {
            id,
            root_id,
            rules,
            root,
            active: None,
            finished: false,
        }));
        #[cfg(feature = "higress")]
        crate::redis::register_stream::<P>(id, &inner);
        HttpStream { inner }
    }

    /// Runs a request-phase handler. A stream without a selected configuration (or a
    /// re-entrant call, which hosts do not make) passes through; once this plugin replied
    /// locally, handlers are skipped and the request stays paused.
    fn request_phase(&mut self, f: impl FnOnce(&mut Active<P>) -> Flow) -> Action {
        self.run(f, Flow::Pause)
    }

    /// Runs a response-phase handler; after a local reply (which passes through this filter's
    /// response path) handlers are skipped and the reply continues untouched.
    fn response_phase(&mut self, f: impl FnOnce(&mut Active<P>) -> Flow) -> Action {
        self.run(f, Flow::Continue)
    }

    fn run(&mut self, f: impl FnOnce(&mut Active<P>) -> Flow, after_reply: Flow) -> Action {
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            return Action::Continue;
        };
        match inner.active.as_mut() {
            Some(active) if active.ctx.replied() => after_reply.into(),
            Some(active) => settle(active, f).into(),
            None => Action::Continue,
        }
    }
}

/// Runs a handler; if it sent a local reply, the stream is paused whatever it returned.
fn settle<P: Plugin>(active: &mut Active<P>, f: impl FnOnce(&mut Active<P>) -> Flow) -> Flow {
    let flow = f(active);
    if active.ctx.replied() {
        Flow::Pause
    } else {
        flow
    }
}

impl<P: Plugin> StreamInner<P> {
    /// Selects the configuration for this request; `None` means pass through.
    fn activate(&mut self) -> Option<&mut Active<P>> {
        if self.active.is_none() {
            let rules = self.rules.as_ref()?;
            let config = rules.select(|fact| match fact {
                Fact::RouteName => host::get_property_string(&["route_name"]).ok().flatten(),
                Fact::Authority => host::get_header(MapType::RequestHeaders, ":authority")
                    .ok()
                    .flatten(),
                Fact::ClusterName => host::get_property_string(&["cluster_name"]).ok().flatten(),
            })?;
            let config = Rc::clone(config);
            let path = host::get_header(MapType::RequestHeaders, ":path")
                .ok()
                .flatten()
                .unwrap_or_default();
            let ctx = Ctx::new(self.id, self.root_id, config, Rc::clone(&self.root), path);
            self.active = Some(Active {
                plugin: P::default(),
                ctx,
            });
        }
        self.active.as_mut()
    }
}

impl<P: Plugin> Drop for HttpStream<P> {
    fn drop(&mut self) {
        #[cfg(feature = "higress")]
        if let Ok(inner) = self.inner.try_borrow() {
            crate::redis::unregister_stream(inner.id);
        }
    }
}

impl<P: Plugin> Context for HttpStream<P> {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            return;
        };
        let Some(Active { plugin, ctx }) = inner.active.as_mut() else {
            return;
        };
        let Some(callback) = ctx.take_callout(token_id) else {
            return;
        };
        let result = read_call_result(num_headers, body_size);
        callback(plugin, ctx, result);
    }

    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            return;
        };
        let callback = inner
            .active
            .as_mut()
            .and_then(|a| a.ctx.take_grpc_callout(token_id));
        match (callback, inner.active.as_mut()) {
            (Some(callback), Some(Active { plugin, ctx })) => {
                let result = super::grpc::read_result(status_code, response_size);
                callback(plugin, ctx, result);
            }
            _ => {
                drop(inner);
                super::grpc::deliver_detached(token_id, status_code, response_size);
            }
        }
    }

    fn on_done(&mut self) -> bool {
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            if let Some(Active { plugin, ctx }) = inner.active.as_mut() {
                plugin.on_done(ctx);
            }
            inner.finished = true;
        }
        true
    }
}

impl<P: Plugin> HttpContext for HttpStream<P> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            return Action::Continue;
        };
        match inner.activate() {
            Some(active) => settle(active, |a| {
                a.plugin.on_request_headers(&mut a.ctx, end_of_stream)
            })
            .into(),
            None => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let chunk = BodyChunk {
            size: body_size,
            end_of_stream,
        };
        self.request_phase(|a| a.plugin.on_request_body(&mut a.ctx, chunk))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.request_phase(|a| a.plugin.on_request_trailers(&mut a.ctx))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.response_phase(|a| a.plugin.on_response_headers(&mut a.ctx, end_of_stream))
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let chunk = BodyChunk {
            size: body_size,
            end_of_stream,
        };
        self.response_phase(|a| a.plugin.on_response_body(&mut a.ctx, chunk))
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.response_phase(|a| a.plugin.on_response_trailers(&mut a.ctx))
    }

    fn on_log(&mut self) {
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            if let Some(Active { plugin, ctx }) = inner.active.as_mut() {
                plugin.on_log(ctx);
            }
        }
    }
}
