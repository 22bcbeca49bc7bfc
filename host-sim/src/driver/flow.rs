//! Headers, bodies and trailers through the chain: pause, resume, buffering and the
//! buffer limit.

use super::*;

impl Sim {
    pub(super) fn headers_from(&mut self, sid: u64, dir: Dir, start: usize) {
        let n = self.n_filters(sid);
        for pos in start..n {
            let Some(fi) = self.live_filter(sid, dir, pos) else {
                return;
            };
            if dir == Dir::Request && !self.ensure_ctx(sid, fi) {
                return;
            }
            if self.skip(sid, fi, dir) {
                self.with_dir(sid, fi, dir, |d| d.headers_passed = true);
                continue;
            }
            let (nh, end) = {
                let Some(s) = self.streams.get(sid) else {
                    return;
                };
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

    pub(super) fn headers_sink(&mut self, sid: u64, dir: Dir) {
        let Some(s) = self.streams.get_mut(sid) else {
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
    pub(super) fn check_framing(&mut self, sid: u64, dir: Dir) {
        let Some(s) = self.streams.get_mut(sid) else {
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

    pub(super) fn data_from(
        &mut self,
        sid: u64,
        dir: Dir,
        start: usize,
        chunk: Vec<u8>,
        end: bool,
    ) {
        let n = self.n_filters(sid);
        let mut chunk = chunk;
        for pos in start..n {
            let Some(fi) = self.live_filter(sid, dir, pos) else {
                return;
            };
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

    pub(super) fn data_sink(&mut self, sid: u64, dir: Dir, chunk: Vec<u8>, end: bool) {
        let Some(s) = self.streams.get_mut(sid) else {
            return;
        };
        match dir {
            Dir::Request => {
                if let Some(u) = s.record.upstream_request.as_mut() {
                    keep_piece(&mut u.body_bytes, &mut u.body, &mut u.chunks, chunk);
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
                keep_piece(
                    &mut resp.body_bytes,
                    &mut resp.body,
                    &mut resp.chunks,
                    chunk,
                );
                if end {
                    resp.complete = true;
                    self.check_framing(sid, Dir::Response);
                    self.finalize(sid);
                }
            }
        }
    }

    pub(super) fn trailers_from(&mut self, sid: u64, dir: Dir, start: usize) {
        let n = self.n_filters(sid);
        for pos in start..n {
            let Some(fi) = self.live_filter(sid, dir, pos) else {
                return;
            };
            if self.skip(sid, fi, dir) {
                continue;
            }
            let (nt, single) = {
                let Some(s) = self.streams.get(sid) else {
                    return;
                };
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
        let Some(s) = self.streams.get_mut(sid) else {
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
    pub(super) fn overflow(&mut self, sid: u64, dir: Dir) {
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
                if self.response_started(sid) {
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
    pub(super) fn resume(&mut self, sid: u64, fi: usize, dir: Dir) {
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
    pub(super) fn buffer_limit(&self, sid: u64, dir: Dir) -> usize {
        let key = match dir {
            Dir::Request => "set_decoder_buffer_limit",
            Dir::Response => "set_encoder_buffer_limit",
        };
        self.streams
            .get(sid)
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
    pub(super) fn headers_stop_iteration_kept(&self, sid: u64, fi: usize) -> bool {
        let Some(f) = self.streams.filter(sid, fi) else {
            return false;
        };
        let allowed = self
            .chain
            .generation(f.plugin, f.gen)
            .is_some_and(|g| g.spec.allow_on_headers_stop_iteration);
        allowed
            || self
                .chain
                .vm(f.vm)
                .is_some_and(|vm| vm.module.abi == AbiVersion::V0_2_100)
    }

    /// Sends on the headers a filter held with plain StopIteration (`headers_stop_single`),
    /// as Envoy's `commonContinue` does before the buffered body and trailers, which the
    /// caller passes on from `pos + 1`. The header window of this filter closes.
    pub(super) fn release_single_headers(&mut self, sid: u64, fi: usize, dir: Dir, pos: usize) {
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
}

/// Counts a body piece that went out and keeps it (whole body and pieces) for the report.
fn keep_piece(body_bytes: &mut u64, body: &mut Vec<u8>, chunks: &mut Vec<Vec<u8>>, chunk: Vec<u8>) {
    *body_bytes += chunk.len() as u64;
    if !chunk.is_empty() {
        body.extend_from_slice(&chunk);
        chunks.push(chunk);
    }
}
