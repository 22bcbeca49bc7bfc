//! The streams in flight: their filters, records and bodies.

use super::*;

#[derive(Debug, Clone, Copy)]
pub(crate) struct FilterRef {
    pub plugin: usize,
    pub gen: usize,
    pub vm: usize,
    pub root: u32,
    /// 0 until created at request headers.
    pub ctx: u32,
}

/// Per-stream bookkeeping outside what hostcalls see.
pub(crate) struct Stream {
    pub data: Arc<Mutex<StreamData>>,
    pub filters: Vec<FilterRef>,
    pub worker: usize,
    pub record: StreamRecord,
    /// Request headers carried end of stream.
    pub req_headers_end: bool,
    /// The request path was cut short (local reply or reset).
    pub decoding_aborted: bool,
    /// Request headers reached the upstream.
    pub upstream_started: bool,
    /// The stream is over.
    pub finished: bool,
}

impl Sim {
    /// Starts a stream. Plugin contexts are created when request headers arrive.
    pub fn start_stream(&mut self, opts: StreamOptions) -> u64 {
        let workers = self.opts.workers.max(1);
        let worker = opts.worker.unwrap_or_else(|| {
            self.rr = self.rr.wrapping_add(1);
            (self.rr - 1) % workers
        }) % workers;
        self.reload_failed_vms(worker);
        let mut filters = Vec::new();
        for (p, slot) in self.chain.iter_mut().enumerate() {
            let g = slot.gens.len() - 1;
            let gen = &mut slot.gens[g];
            gen.live += 1;
            filters.push(FilterRef {
                plugin: p,
                gen: g,
                vm: gen.vms[worker],
                root: gen.roots[worker],
                ctx: 0,
            });
        }
        let start_ns = self.now_ns();
        let mut props = opts.props;
        let id = self.next_stream;
        self.next_stream += 1;
        if props.request_id.is_empty() {
            props.request_id = format!("req-{id}");
        }
        let data = StreamData {
            filters: (0..filters.len()).map(|_| FilterSlot::default()).collect(),
            props,
            start_ns,
            ..Default::default()
        };
        self.streams.insert(
            id,
            Stream {
                data: Arc::new(Mutex::new(data)),
                filters,
                worker,
                record: StreamRecord::default(),
                req_headers_end: false,
                decoding_aborted: false,
                upstream_started: false,
                finished: false,
            },
        );
        id
    }

    /// The record of a stream (None for an unknown id).
    pub fn record(&self, sid: u64) -> Option<StreamRecord> {
        self.streams.get(&sid).map(|s| {
            let mut r = s.record.clone();
            r.stream_id = sid;
            r.worker = s.worker;
            if let Ok(d) = s.data.lock() {
                r.filter_state = d.filter_state.clone();
                r.upstream_override_host = d.upstream_override_host.clone();
            }
            if !r.finished {
                r.incomplete = Some(self.stall_reason(sid));
            }
            r
        })
    }

    /// Removes a finished stream and returns its record.
    pub fn take_record(&mut self, sid: u64) -> Option<StreamRecord> {
        let r = self.record(sid);
        if r.as_ref().is_some_and(|r| r.finished) {
            self.streams.remove(&sid);
        }
        r
    }

    /// Takes the request body bytes that reached the upstream since the last call (the gateway
    /// mode forwards them and keeps nothing).
    pub fn take_upstream_body(&mut self, sid: u64) -> Vec<u8> {
        self.streams
            .get_mut(&sid)
            .and_then(|s| s.record.upstream_request.as_mut())
            .map(|u| {
                u.chunks.clear();
                std::mem::take(&mut u.body)
            })
            .unwrap_or_default()
    }

    /// Takes the response body bytes that reached the client since the last call.
    pub fn take_client_body(&mut self, sid: u64) -> Vec<u8> {
        self.streams
            .get_mut(&sid)
            .map(|s| {
                s.record.response.chunks.clear();
                std::mem::take(&mut s.record.response.body)
            })
            .unwrap_or_default()
    }

    /// A reply made by the router itself (no healthy upstream, timeout): it passes through the
    /// response callbacks of the chain like any local reply.
    pub fn router_reply(&mut self, sid: u64, status: u16, details: &str, body: &[u8]) {
        self.local_reply(sid, None, status, details.into(), body.to_vec(), vec![]);
        self.pump();
    }

    /// Forgets a finished stream.
    pub fn forget(&mut self, sid: u64) {
        if self.streams.get(&sid).is_some_and(|s| s.finished) {
            self.streams.remove(&sid);
        }
    }

    /// What reached the upstream on a stream so far.
    pub fn upstream_request(&self, sid: u64) -> Option<UpstreamRequest> {
        self.streams
            .get(&sid)
            .and_then(|s| s.record.upstream_request.clone())
    }

    /// Number of streams not yet finished.
    pub fn open_streams(&self) -> usize {
        self.streams.values().filter(|s| !s.finished).count()
    }
}
