//! The stream driver's public face: what the client and the upstream send.

use super::*;

impl Sim {
    /// Sends request headers from the client.
    pub fn send_request_headers(
        &mut self,
        sid: u64,
        headers: &[(String, String)],
        end: bool,
    ) -> Result<()> {
        let s = self.streams.require_mut(sid)?;
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
        self.streams
            .update_data(sid, |d| d.req_body_size += chunk.len() as u64)?;
        self.data_from(sid, Dir::Request, 0, chunk.to_vec(), end);
        self.pump();
        Ok(())
    }

    /// Sends request trailers (end of the request).
    pub fn send_request_trailers(&mut self, sid: u64, trailers: &[(String, String)]) -> Result<()> {
        self.streams
            .update_data(sid, |d| d.req_trailers = to_headers(trailers))?;
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
        let s = self.streams.require_mut(sid)?;
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
        if !self.streams.contains(sid) {
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
        self.streams
            .update_data(sid, |d| d.resp_trailers = to_headers(trailers))?;
        self.trailers_from(sid, Dir::Response, 0);
        self.pump();
        Ok(())
    }

    /// The client goes away: the stream is reset and plugins see on_log/on_done/on_delete.
    pub fn client_abort(&mut self, sid: u64) {
        if let Some(s) = self.streams.get(sid) {
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
        let started = self.streams.get(sid).is_some_and(|s| {
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
            .get(sid)
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
        let s = self.streams.require(sid)?;
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
            .get(sid)
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
