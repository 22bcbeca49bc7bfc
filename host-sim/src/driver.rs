//! Driving streams through the filter chain with Envoy's filter-manager semantics: request
//! path in declared order, response path in reverse; pause/continue of headers, bodies and
//! trailers; body accumulation after Pause; the per-stream buffer limit; local replies that pass
//! through the response callbacks; resets; and on_log / on_done / on_delete at the end.

use crate::abi::{action, AbiVersion, Headers, LogLevel};
use crate::report::{LocalReply, StreamRecord, UpstreamRequest};
use crate::sim::{FailPolicy, Sim, StreamOptions};
use crate::stream_data::Dir;
use crate::vm::{CtxKind, Deferred, Effects, StreamLink};
use anyhow::{anyhow, bail, Result};

/// A client request for [`Sim::run`].
#[derive(Debug, Clone)]
pub struct Request {
    /// `:method`.
    pub method: String,
    /// `:path`.
    pub path: String,
    /// `:authority`.
    pub authority: String,
    /// Other headers.
    pub headers: Vec<(String, String)>,
    /// The body (empty: headers carry end of stream).
    pub body: Vec<u8>,
    /// Deliver the body in pieces of this size (0: one piece).
    pub chunk_size: usize,
    /// Trailers (sent after the body).
    pub trailers: Vec<(String, String)>,
    /// Stream options (worker, properties).
    pub opts: StreamOptions,
}

impl Request {
    /// A request with no body.
    pub fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            authority: "gateway.local".into(),
            headers: vec![],
            body: vec![],
            chunk_size: 0,
            trailers: vec![],
            opts: StreamOptions::default(),
        }
    }

    /// A POST with a JSON body.
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Request {
        Request {
            method: "POST".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            ..Request::get(path)
        }
    }

    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> Request {
        self.headers.push((k.into(), v.into()));
        self
    }

    /// Sets `:authority`.
    pub fn authority(mut self, a: &str) -> Request {
        self.authority = a.into();
        self
    }

    /// Delivers the body in pieces of `n` bytes.
    pub fn chunked(mut self, n: usize) -> Request {
        self.chunk_size = n;
        self
    }

    /// Serves the stream on this worker.
    pub fn worker(mut self, w: usize) -> Request {
        self.opts.worker = Some(w);
        self
    }

    /// Sets the route name plugins see.
    pub fn route(mut self, r: &str) -> Request {
        self.opts.props.route_name = r.into();
        self
    }

    /// Sets the upstream cluster name plugins see (`cluster_name`).
    pub fn cluster(mut self, c: &str) -> Request {
        self.opts.props.cluster_name = c.into();
        self
    }

    /// Sets the client address plugins see (`source.address`, `host:port`).
    pub fn source_address(mut self, a: &str) -> Request {
        self.opts.props.source_address = a.into();
        self
    }

    /// Sets one of Envoy's metadata properties (`metadata`, `route_metadata`,
    /// `listener_metadata`, `cluster_metadata`, `upstream_host_metadata`) to a `Metadata`
    /// message in JSON form, e.g. `{"filter_metadata": {"ns": {"key": "value"}}}`.
    pub fn metadata(mut self, property: &str, value: serde_json::Value) -> Request {
        self.opts.props.metadata.insert(property.into(), value);
        self
    }

    /// The header list as the plugin sees it (pseudo-headers first). A request with a body
    /// and neither `content-length` nor `transfer-encoding` gets the `content-length` an
    /// HTTP/1.1 client sends, which Envoy passes on to the filters.
    pub fn header_list(&self, request_id: &str) -> Vec<(String, String)> {
        let mut h = vec![
            (":method".to_string(), self.method.clone()),
            (":path".to_string(), self.path.clone()),
            (":authority".to_string(), self.authority.clone()),
            (":scheme".to_string(), "http".to_string()),
        ];
        for (k, v) in &self.headers {
            h.push((k.to_ascii_lowercase(), v.clone()));
        }
        let framed = h
            .iter()
            .any(|(k, _)| k == "content-length" || k == "transfer-encoding");
        if !self.body.is_empty() && !framed {
            h.push(("content-length".into(), self.body.len().to_string()));
        }
        if !h.iter().any(|(k, _)| k == "x-request-id") {
            h.push(("x-request-id".into(), request_id.into()));
        }
        h
    }
}

/// An upstream response for [`Sim::run`].
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body pieces, delivered in order.
    pub chunks: Vec<Vec<u8>>,
    /// Trailers.
    pub trailers: Vec<(String, String)>,
}

impl UpstreamResponse {
    /// A JSON response in one piece.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> UpstreamResponse {
        UpstreamResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks: vec![body.into()],
            trailers: vec![],
        }
    }

    /// A `text/event-stream` response in one piece.
    pub fn sse(body: impl Into<Vec<u8>>) -> UpstreamResponse {
        UpstreamResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            chunks: vec![body.into()],
            trailers: vec![],
        }
    }

    /// Re-splits the body into pieces of `n` bytes.
    pub fn chunked(mut self, n: usize) -> UpstreamResponse {
        let all: Vec<u8> = self.chunks.concat();
        self.chunks = if n == 0 {
            vec![all]
        } else {
            all.chunks(n).map(|c| c.to_vec()).collect()
        };
        self
    }

    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> UpstreamResponse {
        self.headers.push((k.into(), v.into()));
        self
    }

    /// The headers as an HTTP/1.1 upstream sends them: a body that is not an event stream
    /// and has neither `content-length` nor `transfer-encoding` gets its `content-length`
    /// (Envoy's filters see it).
    pub fn wire_headers(&self) -> Vec<(String, String)> {
        let mut h = self.headers.clone();
        let framed = h.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
        });
        let sse = h.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("content-type") && v.starts_with("text/event-stream")
        });
        let len: usize = self.chunks.iter().map(Vec::len).sum();
        if len > 0 && !sse && !framed {
            h.push(("content-length".into(), len.to_string()));
        }
        h
    }
}

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
        let n = self.streams.get(&sid).map(|s| s.filters.len()).unwrap_or(0);
        match dir {
            Dir::Request => pos,
            Dir::Response => n - 1 - pos,
        }
    }

    fn n_filters(&self, sid: u64) -> usize {
        self.streams.get(&sid).map(|s| s.filters.len()).unwrap_or(0)
    }

    fn stopped(&self, sid: u64, dir: Dir) -> bool {
        match self.streams.get(&sid) {
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
        let s = self.streams.get(&sid)?;
        let mut d = s.data.lock().ok()?;
        let slot = d.filters.get_mut(fi)?;
        Some(f(slot.dir(dir)))
    }

    /// Whether the filter takes no part (FAIL_OPEN skip, or no context on the response path).
    fn skip(&self, sid: u64, fi: usize, dir: Dir) -> bool {
        let Some(s) = self.streams.get(&sid) else {
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
        dir == Dir::Response && self.vms[f.vm].as_ref().map(|v| v.failed).unwrap_or(true)
    }

    /// Creates the filter's context at request headers. Returns false when the stream ended
    /// (FAIL_CLOSED reply); sets `skipped` under FAIL_OPEN.
    fn ensure_ctx(&mut self, sid: u64, fi: usize) -> bool {
        let Some(s) = self.streams.get(&sid) else {
            return false;
        };
        let f = s.filters[fi];
        let data = s.data.clone();
        if data.lock().map(|d| d.filters[fi].created).unwrap_or(false) {
            return true;
        }
        let failed = self.vms[f.vm].as_ref().map(|v| v.failed).unwrap_or(true);
        if failed {
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
        let Some(vm) = self.vms[f.vm].as_mut() else {
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
        if let Some(s) = self.streams.get_mut(&sid) {
            s.filters[fi].ctx = ctx;
        }
        self.ctx_index.insert((f.vm, ctx), (sid, fi));
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
        let f = self.streams.get(&sid)?.filters[fi];
        let vm = self.vms[f.vm].as_mut()?;
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
                Deferred::LocalReply {
                    status,
                    details,
                    body,
                    headers,
                    grpc_status,
                    ..
                } => {
                    let (status, body, headers) =
                        self.grpc_local_reply(sid, status, body, headers, grpc_status);
                    self.local_reply(sid, Some(fi), status, details, body, headers);
                    return None;
                }
                Deferred::Continue { response: r, .. } if r == response => cont = true,
                other => self
                    .work
                    .push_back(crate::sim::Work::Deferred { vm: f.vm, d: other }),
            }
        }
        Some(if cont { action::CONTINUE } else { act })
    }

    fn headers_from(&mut self, sid: u64, dir: Dir, start: usize) {
        let n = self.n_filters(sid);
        for pos in start..n {
            if self.stopped(sid, dir) {
                return;
            }
            let fi = self.idx(sid, dir, pos);
            if dir == Dir::Request && !self.ensure_ctx(sid, fi) {
                return;
            }
            if self.skip(sid, fi, dir) {
                self.with_dir(sid, fi, dir, |d| d.headers_passed = true);
                continue;
            }
            let (nh, end) = {
                let s = &self.streams[&sid];
                let mut d = match s.data.lock() {
                    Ok(d) => d,
                    Err(_) => return,
                };
                let nh = d.headers(dir).len();
                let end = d.filters[fi].dir(dir).headers_end;
                d.filters[fi].dir(dir).header_window = true;
                (nh, end)
            };
            let r = self.call_filter(sid, fi, dir, Cb::Headers { n: nh, end });
            match r {
                Some(action::CONTINUE) => {
                    self.with_dir(sid, fi, dir, |d| {
                        d.header_window = false;
                        d.headers_passed = true;
                        if end {
                            d.end_passed = true;
                        }
                    });
                    let next = pos + 1;
                    if next < n {
                        let nfi = self.idx(sid, dir, next);
                        self.with_dir(sid, nfi, dir, |d| d.headers_end = end);
                    }
                }
                Some(a) => {
                    // Higress (ABI 0_2_100), and Envoy with `allow_on_headers_stop_iteration`,
                    // keep a headers StopIteration (request or response) as it is; otherwise
                    // Envoy turns it into "stop all" (see `headers_stop_single`).
                    let single = a == action::PAUSE && self.headers_stop_iteration_kept(sid, fi);
                    self.with_dir(sid, fi, dir, |d| {
                        d.headers_paused = true;
                        d.headers_stop_single = single;
                    });
                    return;
                }
                None => {
                    self.with_dir(sid, fi, dir, |d| d.header_window = false);
                    return;
                }
            }
        }
        self.headers_sink(sid, dir);
    }

    fn headers_sink(&mut self, sid: u64, dir: Dir) {
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        let Ok(mut d) = s.data.lock() else { return };
        match dir {
            Dir::Request => {
                // The router picks the host now: `upstream.address` exists from here on.
                if d.props.upstream_address.is_empty() {
                    d.props.upstream_address = d.props.upstream_host.clone();
                }
                let end = s.req_headers_end;
                s.upstream_started = true;
                s.record.upstream_request = Some(UpstreamRequest {
                    headers: d.req_headers.clone(),
                    complete: end,
                    ..Default::default()
                });
                drop(d);
                if end {
                    self.check_framing(sid, Dir::Request);
                }
            }
            Dir::Response => {
                let status = d
                    .resp_headers
                    .iter()
                    .find(|(k, _)| k == ":status")
                    .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
                    .unwrap_or(200);
                let end = d
                    .filters
                    .first()
                    .map(|f| f.resp.headers_end)
                    .unwrap_or(false)
                    || (d.filters.is_empty() && s.record.response.complete);
                let resp = &mut s.record.response;
                resp.status = status;
                resp.headers = d
                    .resp_headers
                    .iter()
                    .filter(|(k, _)| !k.starts_with(':'))
                    .cloned()
                    .collect();
                drop(d);
                if end {
                    resp.complete = true;
                    self.check_framing(sid, Dir::Response);
                    self.finalize(sid);
                }
            }
        }
    }

    /// Records a framing error when a completed message's `content-length` does not match the
    /// body bytes that went out (responses to HEAD and 1xx/204/304 carry no body).
    fn check_framing(&mut self, sid: u64, dir: Dir) {
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        match dir {
            Dir::Request => {
                if let Some(u) = s.record.upstream_request.as_mut() {
                    u.framing_error = crate::report::framing_error(&u.headers, u.body_bytes);
                }
            }
            Dir::Response => {
                let head = s.data.lock().is_ok_and(|d| {
                    d.req_headers
                        .iter()
                        .any(|(k, v)| k == ":method" && v.as_slice() == b"HEAD")
                });
                let r = &mut s.record.response;
                if head || r.status < 200 || r.status == 204 || r.status == 304 {
                    return;
                }
                r.framing_error = crate::report::framing_error(&r.headers, r.body_bytes);
            }
        }
    }

    fn data_from(&mut self, sid: u64, dir: Dir, start: usize, chunk: Vec<u8>, end: bool) {
        let n = self.n_filters(sid);
        let mut chunk = chunk;
        for pos in start..n {
            if self.stopped(sid, dir) {
                return;
            }
            let fi = self.idx(sid, dir, pos);
            if self.skip(sid, fi, dir) {
                continue;
            }
            let ready = self.with_dir(sid, fi, dir, |d| {
                d.body.extend_from_slice(&chunk);
                d.end_seen |= end;
                if !d.headers_passed && !d.headers_stop_single {
                    return None;
                }
                d.in_body_callback = true;
                Some((d.body.len(), d.headers_stop_single))
            });
            let Some(Some((size, single))) = ready else {
                return;
            };
            let r = self.call_filter(sid, fi, dir, Cb::Body { size, end });
            let after = self.with_dir(sid, fi, dir, |d| {
                d.in_body_callback = false;
                match r {
                    Some(action::CONTINUE) => {
                        d.buffering = false;
                        if end {
                            d.end_passed = true;
                        }
                        Some(Ok(std::mem::take(&mut d.body)))
                    }
                    Some(_) => {
                        d.buffering = true;
                        Some(Err(d.body.len()))
                    }
                    None => None,
                }
            });
            match after.flatten() {
                Some(Ok(b)) => {
                    // Continue from the body callback of a filter that held its headers with
                    // plain StopIteration: Envoy sends the headers on first, then the body.
                    if single {
                        self.release_single_headers(sid, fi, dir, pos);
                    }
                    chunk = b;
                }
                Some(Err(len)) => {
                    if len > self.buffer_limit(sid, dir) {
                        self.overflow(sid, dir);
                    }
                    return;
                }
                None => return,
            }
        }
        self.data_sink(sid, dir, chunk, end);
    }

    fn data_sink(&mut self, sid: u64, dir: Dir, chunk: Vec<u8>, end: bool) {
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        match dir {
            Dir::Request => {
                if let Some(u) = s.record.upstream_request.as_mut() {
                    u.body_bytes += chunk.len() as u64;
                    if !chunk.is_empty() {
                        u.body.extend_from_slice(&chunk);
                        u.chunks.push(chunk);
                    }
                    if end {
                        u.complete = true;
                        self.check_framing(sid, Dir::Request);
                    }
                }
            }
            Dir::Response => {
                if let Ok(mut d) = s.data.lock() {
                    d.resp_body_size += chunk.len() as u64;
                }
                let resp = &mut s.record.response;
                resp.body_bytes += chunk.len() as u64;
                if !chunk.is_empty() {
                    resp.body.extend_from_slice(&chunk);
                    resp.chunks.push(chunk);
                }
                if end {
                    resp.complete = true;
                    self.check_framing(sid, Dir::Response);
                    self.finalize(sid);
                }
            }
        }
    }

    fn trailers_from(&mut self, sid: u64, dir: Dir, start: usize) {
        let n = self.n_filters(sid);
        for pos in start..n {
            if self.stopped(sid, dir) {
                return;
            }
            let fi = self.idx(sid, dir, pos);
            if self.skip(sid, fi, dir) {
                continue;
            }
            let (nt, single) = {
                let s = &self.streams[&sid];
                let Ok(mut d) = s.data.lock() else { return };
                let nt = d.trailers(dir).len();
                let ds = d.filters[fi].dir(dir);
                if !ds.headers_passed && !ds.headers_stop_single {
                    ds.held_trailers = Some(vec![]);
                    return;
                }
                ds.trailer_window = true;
                (nt, ds.headers_stop_single)
            };
            let r = self.call_filter(sid, fi, dir, Cb::Trailers { n: nt });
            let flushed = self.with_dir(sid, fi, dir, |d| match r {
                Some(action::CONTINUE) => {
                    d.trailer_window = false;
                    d.buffering = false;
                    Some(Some(std::mem::take(&mut d.body)))
                }
                Some(_) => {
                    d.trailers_paused = true;
                    Some(None)
                }
                None => {
                    d.trailer_window = false;
                    None
                }
            });
            match flushed.flatten() {
                Some(Some(body)) => {
                    if single {
                        self.release_single_headers(sid, fi, dir, pos);
                    }
                    if !body.is_empty() {
                        self.data_from(sid, dir, pos + 1, body, false);
                    }
                }
                _ => return,
            }
        }
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        let trailers = s
            .data
            .lock()
            .map(|mut d| d.trailers(dir).clone())
            .unwrap_or_default();
        match dir {
            Dir::Request => {
                if let Some(u) = s.record.upstream_request.as_mut() {
                    u.trailers = trailers;
                    u.complete = true;
                }
                self.check_framing(sid, Dir::Request);
            }
            Dir::Response => {
                s.record.response.trailers = trailers;
                s.record.response.complete = true;
                self.check_framing(sid, Dir::Response);
                self.finalize(sid);
            }
        }
    }

    /// Buffer limit exceeded at a filter that returned Pause from a body callback.
    fn overflow(&mut self, sid: u64, dir: Dir) {
        match dir {
            Dir::Request => self.local_reply(
                sid,
                None,
                413,
                "request_payload_too_large".into(),
                b"Payload Too Large".to_vec(),
                vec![],
            ),
            Dir::Response => {
                let started = self
                    .streams
                    .get(&sid)
                    .is_some_and(|s| s.record.response.status != 0);
                if started {
                    self.reset_stream_for(sid, "response_payload_too_large");
                } else {
                    self.direct_reply(
                        sid,
                        500,
                        "response_payload_too_large".into(),
                        b"Internal Server Error".to_vec(),
                        vec![],
                    );
                }
            }
        }
    }

    /// Resumes a direction at filter `fi` (after `proxy_continue_stream`).
    fn resume(&mut self, sid: u64, fi: usize, dir: Dir) {
        if self.stopped(sid, dir) {
            return;
        }
        let n = self.n_filters(sid);
        let pos = match dir {
            Dir::Request => fi,
            Dir::Response => n - 1 - fi,
        };
        enum Kind {
            Headers {
                end: bool,
            },
            SingleHeaders {
                body: Vec<u8>,
                end: bool,
                trailers: bool,
            },
            Body {
                body: Vec<u8>,
                end: bool,
                trailers: bool,
            },
            Trailers {
                body: Vec<u8>,
            },
            Nothing,
        }
        let kind = self
            .with_dir(sid, fi, dir, |d| {
                if d.headers_paused && d.headers_stop_single {
                    // Plain StopIteration: the filter has already seen the body (and trailers)
                    // that arrived; they follow the headers to the next filters.
                    d.buffering = false;
                    let trailers = std::mem::take(&mut d.trailers_paused);
                    if trailers {
                        d.trailer_window = false;
                    }
                    Kind::SingleHeaders {
                        body: std::mem::take(&mut d.body),
                        end: d.end_seen,
                        trailers,
                    }
                } else if d.headers_paused {
                    d.headers_paused = false;
                    d.header_window = false;
                    d.headers_passed = true;
                    if d.headers_end {
                        d.end_passed = true;
                    }
                    Kind::Headers { end: d.headers_end }
                } else if d.buffering {
                    d.buffering = false;
                    Kind::Body {
                        body: std::mem::take(&mut d.body),
                        end: d.end_seen,
                        trailers: d.held_trailers.take().is_some(),
                    }
                } else if d.trailers_paused {
                    d.trailers_paused = false;
                    d.trailer_window = false;
                    Kind::Trailers {
                        body: std::mem::take(&mut d.body),
                    }
                } else {
                    Kind::Nothing
                }
            })
            .unwrap_or(Kind::Nothing);
        match kind {
            Kind::Headers { end } => {
                if pos + 1 < n {
                    let nfi = self.idx(sid, dir, pos + 1);
                    self.with_dir(sid, nfi, dir, |d| d.headers_end = end);
                }
                self.headers_from(sid, dir, pos + 1);
                // Data that arrived while the headers were stopped goes to this same filter.
                let held = self.with_dir(sid, fi, dir, |d| {
                    let has = !d.body.is_empty() || (d.end_seen && !d.headers_end);
                    let t = d.held_trailers.take().is_some();
                    (has.then(|| (std::mem::take(&mut d.body), d.end_seen)), t)
                });
                if let Some((body, trailers)) = held {
                    if let Some((b, e)) = body {
                        self.with_dir(sid, fi, dir, |d| d.end_seen = false);
                        self.data_from(sid, dir, pos, b, e);
                    }
                    if trailers {
                        self.trailers_from(sid, dir, pos);
                    }
                }
            }
            Kind::SingleHeaders {
                body,
                end,
                trailers,
            } => {
                self.release_single_headers(sid, fi, dir, pos);
                let end = end && !trailers;
                if end {
                    self.with_dir(sid, fi, dir, |d| d.end_passed = true);
                }
                if !body.is_empty() || end {
                    self.data_from(sid, dir, pos + 1, body, end);
                }
                if trailers {
                    self.trailers_from(sid, dir, pos + 1);
                }
            }
            Kind::Body {
                body,
                end,
                trailers,
            } => {
                if end {
                    self.with_dir(sid, fi, dir, |d| d.end_passed = true);
                }
                if !body.is_empty() || end {
                    self.data_from(sid, dir, pos + 1, body, end && !trailers);
                }
                if trailers {
                    self.trailers_from(sid, dir, pos + 1);
                }
            }
            Kind::Trailers { body } => {
                if !body.is_empty() {
                    self.data_from(sid, dir, pos + 1, body, false);
                }
                self.trailers_from(sid, dir, pos + 1);
            }
            Kind::Nothing => {}
        }
    }

    /// The stream's buffer limit in one direction: the gateway's, unless a plugin set the
    /// Higress properties `set_decoder_buffer_limit` / `set_encoder_buffer_limit` (a decimal
    /// byte count), which Higress's Envoy applies to that stream's decoder / encoder buffer.
    /// Stock Envoy only keeps them as filter state.
    fn buffer_limit(&self, sid: u64, dir: Dir) -> usize {
        let key = match dir {
            Dir::Request => "set_decoder_buffer_limit",
            Dir::Response => "set_encoder_buffer_limit",
        };
        self.streams
            .get(&sid)
            .and_then(|s| {
                let d = s.data.lock().ok()?;
                std::str::from_utf8(d.filter_state.get(key)?)
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(self.opts.buffer_limit)
    }

    /// Whether a headers StopIteration of this filter (request or response) holds only the
    /// headers: its module declares Higress's ABI (`proxy_abi_version_0_2_100`), or its plugin
    /// has Envoy's `allow_on_headers_stop_iteration`. Both hosts decide it in one place for
    /// both directions (proxy-wasm-cpp-host's `convertVmCallResultToFilterHeadersStatus`;
    /// Higress's copy converts only for modules bound with the 0.1/0.2 request-headers ABI).
    fn headers_stop_iteration_kept(&self, sid: u64, fi: usize) -> bool {
        let Some(f) = self.streams.get(&sid).and_then(|s| s.filters.get(fi)) else {
            return false;
        };
        let allowed = self
            .chain
            .get(f.plugin)
            .and_then(|p| p.gens.get(f.gen))
            .is_some_and(|g| g.spec.allow_on_headers_stop_iteration);
        allowed
            || self
                .vms
                .get(f.vm)
                .and_then(|v| v.as_ref())
                .is_some_and(|vm| vm.module.abi == AbiVersion::V0_2_100)
    }

    /// Sends on the headers a filter held with plain StopIteration (`headers_stop_single`),
    /// as Envoy's `commonContinue` does before the buffered body and trailers, which the
    /// caller passes on from `pos + 1`. The header window of this filter closes.
    fn release_single_headers(&mut self, sid: u64, fi: usize, dir: Dir, pos: usize) {
        let end = self
            .with_dir(sid, fi, dir, |d| {
                d.headers_paused = false;
                d.headers_stop_single = false;
                d.header_window = false;
                d.headers_passed = true;
                d.headers_end
            })
            .unwrap_or(false);
        if pos + 1 < self.n_filters(sid) {
            let nfi = self.idx(sid, dir, pos + 1);
            self.with_dir(sid, nfi, dir, |d| d.headers_end = end);
        }
        self.headers_from(sid, dir, pos + 1);
    }

    /// A plugin's local reply as Envoy sends it on this stream (gRPC requests get a
    /// trailers-only gRPC answer, see [`crate::grpc::local_reply`]).
    fn grpc_local_reply(
        &self,
        sid: u64,
        status: u16,
        body: Vec<u8>,
        headers: Headers,
        grpc_status: i32,
    ) -> (u16, Vec<u8>, Headers) {
        let is_grpc = self.streams.get(&sid).is_some_and(|s| {
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
            Deferred::LocalReply {
                status,
                details,
                body,
                headers,
                grpc_status,
                ..
            } => {
                let (status, body, headers) =
                    self.grpc_local_reply(sid, status, body, headers, grpc_status);
                self.local_reply(sid, Some(fi), status, details, body, headers)
            }
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
        let Some(s) = self.streams.get_mut(&sid) else {
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
            if let Some(s) = self.streams.get_mut(&sid) {
                s.record.response.complete = true;
            }
            self.finalize(sid);
        }
    }

    /// A reply that goes straight to the client (Envoy's direct local reply during encoding).
    fn direct_reply(
        &mut self,
        sid: u64,
        status: u16,
        details: String,
        body: Vec<u8>,
        headers: Headers,
    ) {
        let Some(s) = self.streams.get_mut(&sid) else {
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
        if let Some(s) = self.streams.get_mut(&sid) {
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
        let (filters, data) = match self.streams.get_mut(&sid) {
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
            if let Some(vm) = self.vms[f.vm].as_mut() {
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
            if let Some(vm) = self.vms[f.vm].as_mut() {
                if !vm.failed {
                    let _ = vm.on_done(f.ctx);
                    let _ = vm.on_delete(f.ctx);
                    let eff = vm.take_effects();
                    self.apply_stream_free(f.vm, eff);
                } else {
                    vm.store.data_mut().contexts.remove(&f.ctx);
                }
            }
            self.ctx_index.remove(&(f.vm, f.ctx));
        }
        let mut plugins = Vec::new();
        for f in &filters {
            if let Some(g) = self
                .chain
                .get_mut(f.plugin)
                .and_then(|s| s.gens.get_mut(f.gen))
            {
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
    fn apply_stream_free(&mut self, vm: usize, mut eff: Effects) {
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
        for slot in self.chain.iter_mut() {
            for g in slot.gens.iter_mut() {
                if let Some(w) = g.vms.iter().position(|k| *k == vm_key) {
                    g.failed_at[w].get_or_insert(now);
                }
            }
        }
        let victims: Vec<u64> = self
            .streams
            .iter()
            .filter(|(_, s)| !s.finished && s.filters.iter().any(|f| f.vm == vm_key && f.ctx != 0))
            .map(|(id, _)| *id)
            .collect();
        for sid in victims {
            let started = self
                .streams
                .get(&sid)
                .is_some_and(|s| s.record.response.status != 0);
            if started {
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

    /// Sends request headers from the client.
    pub fn send_request_headers(
        &mut self,
        sid: u64,
        headers: &[(String, String)],
        end: bool,
    ) -> Result<()> {
        let s = self
            .streams
            .get_mut(&sid)
            .ok_or_else(|| anyhow!("no stream {sid}"))?;
        s.req_headers_end = end;
        if let Ok(mut d) = s.data.lock() {
            // Envoy's connection manager drops these hop-by-hop headers before the filters
            // run; `content-length` stays.
            d.req_headers = to_headers(headers)
                .into_iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "transfer-encoding" | "keep-alive" | "proxy-connection"
                    )
                })
                .collect();
            for f in d.filters.iter_mut() {
                f.req.headers_end = end;
            }
        }
        self.headers_from(sid, Dir::Request, 0);
        self.pump();
        Ok(())
    }

    /// Sends a piece of the request body.
    pub fn send_request_body(&mut self, sid: u64, chunk: &[u8], end: bool) -> Result<()> {
        let s = self
            .streams
            .get(&sid)
            .ok_or_else(|| anyhow!("no stream {sid}"))?;
        if let Ok(mut d) = s.data.lock() {
            d.req_body_size += chunk.len() as u64;
        }
        self.data_from(sid, Dir::Request, 0, chunk.to_vec(), end);
        self.pump();
        Ok(())
    }

    /// Sends request trailers (end of the request).
    pub fn send_request_trailers(&mut self, sid: u64, trailers: &[(String, String)]) -> Result<()> {
        let s = self
            .streams
            .get(&sid)
            .ok_or_else(|| anyhow!("no stream {sid}"))?;
        if let Ok(mut d) = s.data.lock() {
            d.req_trailers = to_headers(trailers);
        }
        self.trailers_from(sid, Dir::Request, 0);
        self.pump();
        Ok(())
    }

    /// Sends response headers from the upstream. Fails if the request never reached it.
    pub fn send_response_headers(
        &mut self,
        sid: u64,
        status: u16,
        headers: &[(String, String)],
        end: bool,
    ) -> Result<()> {
        let s = self
            .streams
            .get_mut(&sid)
            .ok_or_else(|| anyhow!("no stream {sid}"))?;
        if !s.upstream_started {
            bail!("the request never reached the upstream");
        }
        if s.finished {
            return Ok(());
        }
        if let Ok(mut d) = s.data.lock() {
            let mut h: Headers = vec![(":status".into(), status.to_string().into_bytes())];
            h.extend(to_headers(headers));
            d.resp_headers = h;
            d.response_code = Some(status);
            d.code_details = "via_upstream".into();
            for f in d.filters.iter_mut() {
                f.resp.headers_end = end;
            }
        }
        if s.filters.is_empty() && end {
            s.record.response.complete = true;
        }
        self.headers_from(sid, Dir::Response, 0);
        self.pump();
        Ok(())
    }

    /// Sends a piece of the response body from the upstream.
    pub fn send_response_body(&mut self, sid: u64, chunk: &[u8], end: bool) -> Result<()> {
        if !self.streams.contains_key(&sid) {
            bail!("no stream {sid}");
        }
        self.data_from(sid, Dir::Response, 0, chunk.to_vec(), end);
        self.pump();
        Ok(())
    }

    /// Sends response trailers from the upstream (end of the response).
    pub fn send_response_trailers(
        &mut self,
        sid: u64,
        trailers: &[(String, String)],
    ) -> Result<()> {
        let s = self
            .streams
            .get(&sid)
            .ok_or_else(|| anyhow!("no stream {sid}"))?;
        if let Ok(mut d) = s.data.lock() {
            d.resp_trailers = to_headers(trailers);
        }
        self.trailers_from(sid, Dir::Response, 0);
        self.pump();
        Ok(())
    }

    /// The client goes away: the stream is reset and plugins see on_log/on_done/on_delete.
    pub fn client_abort(&mut self, sid: u64) {
        if let Some(s) = self.streams.get(&sid) {
            if let Ok(mut d) = s.data.lock() {
                if d.code_details.is_empty() || d.code_details == "via_upstream" {
                    d.code_details = "downstream_remote_disconnect".into();
                }
            }
        }
        self.reset_stream_for(sid, "downstream_remote_disconnect");
        self.pump();
    }

    /// The upstream resets the connection: before response headers the router answers 503
    /// (through the response callbacks), after them the client sees a reset.
    pub fn upstream_reset(&mut self, sid: u64) {
        let started = self.streams.get(&sid).is_some_and(|s| {
            s.data
                .lock()
                .map(|d| {
                    d.filters
                        .iter()
                        .any(|f| f.resp.headers_passed || f.resp.headers_paused)
                })
                .unwrap_or(false)
                || s.record.response.status != 0
        });
        if started {
            self.reset_stream_for(
                sid,
                "upstream_reset_after_response_started{connection_termination}",
            );
        } else {
            self.local_reply(
                sid,
                None,
                503,
                "upstream_reset_before_response_started{connection_termination}".into(),
                b"upstream connect error or disconnect/reset before headers. reset reason: connection termination".to_vec(),
                vec![],
            );
        }
        self.pump();
    }

    /// Sends a whole request from the client.
    pub fn send_request(&mut self, sid: u64, req: &Request) -> Result<()> {
        let rid = self
            .streams
            .get(&sid)
            .and_then(|s| s.data.lock().ok().map(|d| d.props.request_id.clone()))
            .unwrap_or_default();
        let headers = req.header_list(&rid);
        let no_body = req.body.is_empty() && req.trailers.is_empty();
        self.send_request_headers(sid, &headers, no_body)?;
        if !req.body.is_empty() {
            let n = if req.chunk_size == 0 {
                req.body.len()
            } else {
                req.chunk_size
            };
            let pieces: Vec<&[u8]> = req.body.chunks(n).collect();
            let last = pieces.len() - 1;
            for (i, p) in pieces.iter().enumerate() {
                self.send_request_body(sid, p, i == last && req.trailers.is_empty())?;
            }
        }
        if !req.trailers.is_empty() {
            self.send_request_trailers(sid, &req.trailers)?;
        }
        Ok(())
    }

    /// Sends a whole upstream response, if the stream is still waiting for one.
    pub fn respond(&mut self, sid: u64, resp: &UpstreamResponse) -> Result<()> {
        let s = self
            .streams
            .get(&sid)
            .ok_or_else(|| anyhow!("no stream {sid}"))?;
        if s.finished || !s.upstream_started {
            return Ok(());
        }
        let body_pieces: Vec<&Vec<u8>> = resp.chunks.iter().filter(|c| !c.is_empty()).collect();
        let no_body = body_pieces.is_empty() && resp.trailers.is_empty();
        self.send_response_headers(sid, resp.status, &resp.wire_headers(), no_body)?;
        let n = body_pieces.len();
        for (i, c) in body_pieces.into_iter().enumerate() {
            self.send_response_body(sid, c, i + 1 == n && resp.trailers.is_empty())?;
        }
        if !resp.trailers.is_empty() {
            self.send_response_trailers(sid, &resp.trailers)?;
        }
        Ok(())
    }

    /// Runs one exchange: the request goes through the chain; if it reaches the upstream
    /// complete, `resp` is sent back. Returns what happened. A stream still waiting (for
    /// example on a call-out) stays open: answer the call, then call [`Sim::respond`].
    pub fn run(&mut self, req: Request, resp: UpstreamResponse) -> Result<StreamRecord> {
        let sid = self.start_stream(req.opts.clone());
        self.send_request(sid, &req)?;
        let complete = self
            .streams
            .get(&sid)
            .and_then(|s| s.record.upstream_request.as_ref())
            .is_some_and(|u| u.complete);
        if complete {
            self.respond(sid, &resp)?;
        }
        self.take_record(sid)
            .ok_or_else(|| anyhow!("stream {sid} vanished"))
    }

    /// Starts an exchange and returns the stream id without answering (for tests that drive
    /// the upstream side step by step).
    pub fn begin(&mut self, req: Request) -> Result<u64> {
        let sid = self.start_stream(req.opts.clone());
        self.send_request(sid, &req)?;
        Ok(sid)
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
