//! Driving streams through the filter chain with Envoy's filter-manager semantics: request
//! path in declared order, response path in reverse; pause/continue of headers, bodies and
//! trailers; body accumulation after Pause; the per-stream buffer limit; local replies that pass
//! through the response callbacks; resets; and on_log / on_done / on_delete at the end.

mod api;
mod end;
mod flow;

use crate::abi::{action, AbiVersion, Headers, LogLevel};
use crate::report::{LocalReply, StreamRecord, UpstreamRequest};
use crate::request::{Request, UpstreamResponse};
use crate::sim::{FailPolicy, Sim};
use crate::stream_data::Dir;
use crate::vm::{CtxKind, Deferred, Effects, StreamLink};
use anyhow::{anyhow, bail, Result};

#[derive(Clone, Copy)]
enum Cb {
    Headers { n: usize, end: bool },
    Body { size: usize, end: bool },
    Trailers { n: usize },
}

fn to_headers(h: &[(String, String)]) -> Headers {
    h.iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect()
}

impl Sim {
    fn idx(&self, sid: u64, dir: Dir, pos: usize) -> usize {
        let n = self.streams.filter_count(sid);
        match dir {
            Dir::Request => pos,
            Dir::Response => n - 1 - pos,
        }
    }

    fn n_filters(&self, sid: u64) -> usize {
        self.streams.filter_count(sid)
    }

    /// The filter at chain position `pos` in direction `dir`, or `None` once that direction
    /// has stopped (stream gone, finished, reset, or decoding aborted).
    fn live_filter(&self, sid: u64, dir: Dir, pos: usize) -> Option<usize> {
        (!self.stopped(sid, dir)).then(|| self.idx(sid, dir, pos))
    }

    /// Whether the client already has response headers for stream `sid`.
    fn response_started(&self, sid: u64) -> bool {
        self.streams
            .get(sid)
            .is_some_and(|s| s.record.response.status != 0)
    }

    fn stopped(&self, sid: u64, dir: Dir) -> bool {
        match self.streams.get(sid) {
            None => true,
            Some(s) => {
                s.finished || s.record.response.reset || (dir == Dir::Request && s.decoding_aborted)
            }
        }
    }

    fn with_dir<R>(
        &self,
        sid: u64,
        fi: usize,
        dir: Dir,
        f: impl FnOnce(&mut crate::stream_data::DirState) -> R,
    ) -> Option<R> {
        let s = self.streams.get(sid)?;
        let mut d = s.data.lock().ok()?;
        let slot = d.filters.get_mut(fi)?;
        Some(f(slot.dir(dir)))
    }

    /// Whether the filter takes no part (FAIL_OPEN skip, or no context on the response path).
    fn skip(&self, sid: u64, fi: usize, dir: Dir) -> bool {
        let Some(s) = self.streams.get(sid) else {
            return true;
        };
        let Ok(d) = s.data.lock() else { return true };
        let Some(slot) = d.filters.get(fi) else {
            return true;
        };
        if slot.skipped {
            return true;
        }
        if dir == Dir::Response && !slot.created {
            return true;
        }
        let f = s.filters[fi];
        dir == Dir::Response && self.chain.vm_failed(f.vm)
    }

    /// Creates the filter's context at request headers. Returns false when the stream ended
    /// (FAIL_CLOSED reply); sets `skipped` under FAIL_OPEN.
    fn ensure_ctx(&mut self, sid: u64, fi: usize) -> bool {
        let Some(s) = self.streams.get(sid) else {
            return false;
        };
        let f = s.filters[fi];
        let data = s.data.clone();
        if data.lock().map(|d| d.filters[fi].created).unwrap_or(false) {
            return true;
        }
        if self.chain.vm_failed(f.vm) {
            let policy = self.chain[f.plugin].gens[f.gen].spec.fail_policy;
            if policy == FailPolicy::Open {
                if let Ok(mut d) = data.lock() {
                    d.filters[fi].skipped = true;
                }
                return true;
            }
            self.local_reply(
                sid,
                None,
                503,
                "wasm_fail_stream".into(),
                b"".to_vec(),
                vec![],
            );
            return false;
        }
        let Some(vm) = self.chain.vm_mut(f.vm) else {
            return false;
        };
        let ctx = vm.next_context_id();
        vm.store.data_mut().contexts.insert(
            ctx,
            CtxKind::Stream(StreamLink {
                root: f.root,
                data: data.clone(),
                filter: fi,
            }),
        );
        let r = vm.on_context_create(ctx, f.root);
        let eff = vm.take_effects();
        if let Ok(mut d) = data.lock() {
            d.filters[fi].created = true;
        }
        if let Some(s) = self.streams.get_mut(sid) {
            s.filters[fi].ctx = ctx;
        }
        self.streams.link_ctx(f.vm, ctx, sid, fi);
        self.apply_effects(f.vm, eff);
        if r.is_err() {
            self.fail_vm_streams(f.vm);
            return false;
        }
        true
    }

    /// Calls one filter callback and handles what it asked for. Returns the action, or None
    /// when the stream ended (local reply, reset, trap).
    fn call_filter(&mut self, sid: u64, fi: usize, dir: Dir, cb: Cb) -> Option<i32> {
        let f = self.streams.filter(sid, fi)?;
        let vm = self.chain.vm_mut(f.vm)?;
        let response = dir == Dir::Response;
        let r = match cb {
            Cb::Headers { n, end } => vm.on_headers(f.ctx, response, n, end),
            Cb::Body { size, end } => vm.on_body(f.ctx, response, size, end),
            Cb::Trailers { n } => vm.on_trailers(f.ctx, response, n),
        };
        let mut eff = vm.take_effects();
        let (mine, others): (Vec<Deferred>, Vec<Deferred>) =
            eff.deferred.drain(..).partition(|d| match d {
                Deferred::Continue { ctx, .. }
                | Deferred::Close { ctx }
                | Deferred::LocalReply { ctx, .. } => *ctx == f.ctx,
                _ => false,
            });
        eff.deferred = others;
        self.apply_effects(f.vm, eff);
        let act = match r {
            Ok(a) => a,
            Err(_) => {
                self.fail_vm_streams(f.vm);
                return None;
            }
        };
        let mut cont = false;
        for d in mine {
            match d {
                Deferred::Close { .. } => {
                    self.reset_stream_for(sid, "filter_closed_stream");
                    return None;
                }
                reply @ Deferred::LocalReply { .. } => {
                    self.filter_local_reply(sid, fi, reply);
                    return None;
                }
                Deferred::Continue { response: r, .. } if r == response => cont = true,
                other => self.defer(f.vm, other),
            }
        }
        Some(if cont { action::CONTINUE } else { act })
    }
}

/// The headers of a local reply: `:status`, the plugin's headers, `content-length`, and
/// `content-type: text/plain` when a body has none.
fn reply_headers(status: u16, body: &[u8], extra: Headers) -> Headers {
    let mut h: Headers = vec![(":status".into(), status.to_string().into_bytes())];
    let has_ct = extra.iter().any(|(k, _)| k == "content-type");
    for (k, v) in extra {
        if k != "content-length" && k != ":status" {
            h.push((k, v));
        }
    }
    if !body.is_empty() && !has_ct {
        h.push(("content-type".into(), b"text/plain".to_vec()));
    }
    h.push(("content-length".into(), body.len().to_string().into_bytes()));
    h
}
