//! How streams end: stream actions from plugins, local replies, resets, and the
//! on_log / on_done / on_delete finale.

use super::*;

impl Sim {
    /// A plugin's local reply as Envoy sends it on this stream (gRPC requests get a
    /// trailers-only gRPC answer, see [`crate::grpc::local_reply`]).
    pub(super) fn grpc_local_reply(
        &self,
        sid: u64,
        status: u16,
        body: Vec<u8>,
        headers: Headers,
        grpc_status: i32,
    ) -> (u16, Vec<u8>, Headers) {
        let is_grpc = self.streams.get(sid).is_some_and(|s| {
            s.data.lock().is_ok_and(|d| {
                crate::stream_data::hmap::get(&d.req_headers, "content-type")
                    .is_some_and(|v| v.starts_with(b"application/grpc"))
            })
        });
        crate::grpc::local_reply(is_grpc, status, body, headers, grpc_status)
    }

    /// Carries out a deferred action a plugin asked for on a stream.
    pub(crate) fn stream_action(&mut self, sid: u64, fi: usize, d: Deferred) {
        match d {
            Deferred::Continue { response, .. } => {
                let dir = if response {
                    Dir::Response
                } else {
                    Dir::Request
                };
                self.resume(sid, fi, dir);
            }
            Deferred::Close { .. } => self.reset_stream_for(sid, "filter_closed_stream"),
            reply @ Deferred::LocalReply { .. } => self.filter_local_reply(sid, fi, reply),
            _ => {}
        }
    }

    /// A local reply: through the response callbacks of filters that have a context, unless
    /// the response is already being processed (then straight to the client), or the client
    /// already has headers (then a reset).
    pub(crate) fn local_reply(
        &mut self,
        sid: u64,
        filter: Option<usize>,
        status: u16,
        details: String,
        body: Vec<u8>,
        headers: Headers,
    ) {
        let Some(s) = self.streams.get_mut(sid) else {
            return;
        };
        if s.finished {
            return;
        }
        if s.record.response.status != 0 {
            self.reset_stream_for(sid, &details);
            return;
        }
        s.record.local_reply = Some(LocalReply {
            status,
            details: details.clone(),
            body: body.clone(),
            headers: headers.clone(),
            filter,
        });
        s.decoding_aborted = true;
        let encoding_started = s
            .data
            .lock()
            .map(|d| {
                d.filters
                    .iter()
                    .any(|f| f.resp.headers_passed || f.resp.headers_paused || f.resp.header_window)
            })
            .unwrap_or(false);
        if encoding_started {
            self.direct_reply(sid, status, details, body, headers);
            return;
        }
        let h = reply_headers(status, &body, headers);
        if let Ok(mut d) = s.data.lock() {
            d.resp_headers = h;
            d.response_code = Some(status);
            d.code_details = details;
            let end = body.is_empty();
            for f in d.filters.iter_mut() {
                f.resp = Default::default();
                f.resp.headers_end = end;
            }
        }
        if s.filters.is_empty() {
            let resp = &mut s.record.response;
            resp.status = status;
            resp.headers = reply_headers(status, &body, vec![])
                .into_iter()
                .filter(|(k, _)| !k.starts_with(':'))
                .collect();
        }
        let empty = body.is_empty();
        self.headers_from(sid, Dir::Response, 0);
        if !empty {
            self.data_from(sid, Dir::Response, 0, body, true);
        } else if self.n_filters(sid) == 0 {
            if let Some(s) = self.streams.get_mut(sid) {
                s.record.response.complete = true;
            }
            self.finalize(sid);
        }
    }

    /// Filter `fi`'s local reply (`send_local_response`; gRPC-shaped on a gRPC stream). Any
    /// other deferred action is ignored.
    pub(super) fn filter_local_reply(&mut self, sid: u64, fi: usize, reply: Deferred) {
        if let Deferred::LocalReply {
            status,
            details,
            body,
            headers,
            grpc_status,
            ..
        } = reply
        {
            let (status, body, headers) =
                self.grpc_local_reply(sid, status, body, headers, grpc_status);
            self.local_reply(sid, Some(fi), status, details, body, headers);
        }
    }

    /// A reply that goes straight to the client (Envoy's direct local reply during encoding).
    pub(super) fn direct_reply(
        &mut self,
        sid: u64,
        status: u16,
        details: String,
        body: Vec<u8>,
        headers: Headers,
    ) {
        let Some(s) = self.streams.get_mut(sid) else {
            return;
        };
        if s.record.response.status != 0 {
            self.reset_stream_for(sid, &details);
            return;
        }
        if s.record.local_reply.is_none() {
            s.record.local_reply = Some(LocalReply {
                status,
                details: details.clone(),
                body: body.clone(),
                headers: headers.clone(),
                filter: None,
            });
        }
        if let Ok(mut d) = s.data.lock() {
            d.response_code = Some(status);
            d.code_details = details;
        }
        let resp = &mut s.record.response;
        resp.status = status;
        resp.headers = reply_headers(status, &body, headers)
            .into_iter()
            .filter(|(k, _)| !k.starts_with(':'))
            .collect();
        if !body.is_empty() {
            resp.chunks.push(body.clone());
        }
        resp.body_bytes += body.len() as u64;
        resp.body = body;
        resp.complete = true;
        self.finalize(sid);
    }

    /// Resets the stream: the client sees a reset, plugins get on_log/on_done/on_delete.
    /// `reason` is kept in the record (`response.reset_reason`).
    pub(crate) fn reset_stream_for(&mut self, sid: u64, reason: &str) {
        if let Some(s) = self.streams.get_mut(sid) {
            if s.finished {
                return;
            }
            s.record.response.reset = true;
            s.record.response.reset_reason = Some(reason.to_string());
            s.decoding_aborted = true;
            if let Ok(mut d) = s.data.lock() {
                if d.code_details.is_empty() || d.code_details == "via_upstream" {
                    d.code_details = reason.to_string();
                }
            }
        }
        self.finalize(sid);
    }

    /// Ends a stream: on_log for every filter with a context, then on_done and on_delete.
    pub(crate) fn finalize(&mut self, sid: u64) {
        let (filters, data) = match self.streams.get_mut(sid) {
            Some(s) if !s.finished => {
                s.finished = true;
                s.record.finished = true;
                (s.filters.clone(), s.data.clone())
            }
            _ => return,
        };
        if let Ok(mut d) = data.lock() {
            d.in_log = true;
        }
        let live: Vec<_> = filters.iter().filter(|f| f.ctx != 0).copied().collect();
        for f in &live {
            if let Some(vm) = self.chain.vm_mut(f.vm) {
                if !vm.failed {
                    let _ = vm.on_log(f.ctx);
                    let eff = vm.take_effects();
                    self.apply_stream_free(f.vm, eff);
                }
            }
        }
        if let Ok(mut d) = data.lock() {
            d.in_log = false;
        }
        for f in &live {
            if let Some(vm) = self.chain.vm_mut(f.vm) {
                if !vm.failed {
                    let _ = vm.on_done(f.ctx);
                    let _ = vm.on_delete(f.ctx);
                    let eff = vm.take_effects();
                    self.apply_stream_free(f.vm, eff);
                } else {
                    vm.store.data_mut().contexts.remove(&f.ctx);
                }
            }
            self.streams.unlink_ctx(f.vm, f.ctx);
        }
        let mut plugins = Vec::new();
        for f in &filters {
            if let Some(g) = self.chain.generation_mut(f.plugin, f.gen) {
                g.live = g.live.saturating_sub(1);
            }
            plugins.push(f.plugin);
        }
        for p in plugins {
            self.retire_idle(p);
        }
    }

    /// Effects of callbacks on a finished stream: call-outs still count, stream actions on the
    /// dead stream are dropped.
    pub(super) fn apply_stream_free(&mut self, vm: usize, mut eff: Effects) {
        eff.deferred.retain(|d| {
            !matches!(
                d,
                Deferred::Continue { .. } | Deferred::Close { .. } | Deferred::LocalReply { .. }
            )
        });
        self.apply_effects(vm, eff);
    }

    /// A VM trapped: every open stream with a context on it fails (503 `wasm_fail_stream`
    /// before response headers, a reset after).
    pub(crate) fn fail_vm_streams(&mut self, vm_key: usize) {
        let now = self.mono_ns();
        self.chain.mark_failed(vm_key, now);
        let victims = self.streams.open_on_vm(vm_key);
        for sid in victims {
            if self.response_started(sid) {
                self.reset_stream_for(sid, "wasm_fail_stream");
            } else {
                self.local_reply(sid, None, 503, "wasm_fail_stream".into(), vec![], vec![]);
            }
        }
        if let Ok(mut h) = self.host.lock() {
            h.push_log(crate::shared::LogEntry {
                plugin: "host-sim".into(),
                worker: 0,
                level: LogLevel::Error,
                message: format!("VM {vm_key} failed; its streams were failed"),
            });
        }
    }

    // ---- Public stream API ----
}
