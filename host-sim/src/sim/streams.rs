//! The streams in flight: their filters, records and bodies, in the [`StreamTable`]
//! component, and the stream API of `Sim` over it.

use super::*;

/// The streams in flight by id, and which stream context (VM key, context id) belongs to
/// which stream and filter.
pub(crate) struct StreamTable {
    streams: HashMap<u64, Stream>,
    by_ctx: HashMap<(usize, u32), (u64, usize)>,
    next_id: u64,
}

impl StreamTable {
    /// An empty table; the first stream gets id 1.
    pub fn new() -> StreamTable {
        StreamTable {
            streams: HashMap::new(),
            by_ctx: HashMap::new(),
            next_id: 1,
        }
    }

    /// Hands out the id of the next stream.
    pub fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Adds stream `id` (from [`allocate_id`](Self::allocate_id)).
    pub fn insert(&mut self, id: u64, stream: Stream) {
        self.streams.insert(id, stream);
    }

    /// Stream `sid`, when known.
    pub fn get(&self, sid: u64) -> Option<&Stream> {
        self.streams.get(&sid)
    }

    /// Stream `sid`, when known, to update.
    pub fn get_mut(&mut self, sid: u64) -> Option<&mut Stream> {
        self.streams.get_mut(&sid)
    }

    /// Stream `sid`, or an error naming it when it is unknown.
    pub fn require(&self, sid: u64) -> Result<&Stream> {
        self.streams
            .get(&sid)
            .ok_or_else(|| anyhow!("no stream {sid}"))
    }

    /// Stream `sid` to update, or an error naming it when it is unknown.
    pub fn require_mut(&mut self, sid: u64) -> Result<&mut Stream> {
        self.streams
            .get_mut(&sid)
            .ok_or_else(|| anyhow!("no stream {sid}"))
    }

    /// Updates the shared data of stream `sid` (an error when the stream is unknown; nothing
    /// happens when its lock is poisoned).
    pub fn update_data(&self, sid: u64, f: impl FnOnce(&mut StreamData)) -> Result<()> {
        if let Ok(mut d) = self.require(sid)?.data.lock() {
            f(&mut d);
        }
        Ok(())
    }

    /// Whether stream `sid` is known.
    pub fn contains(&self, sid: u64) -> bool {
        self.streams.contains_key(&sid)
    }

    /// Removes stream `sid` if it is finished; returns whether it did.
    pub fn remove_finished(&mut self, sid: u64) -> bool {
        let finished = self.streams.get(&sid).is_some_and(|s| s.finished);
        if finished {
            self.streams.remove(&sid);
        }
        finished
    }

    /// Number of streams not yet finished.
    pub fn open_count(&self) -> usize {
        self.streams.values().filter(|s| !s.finished).count()
    }

    /// Number of filters of stream `sid` (0 for an unknown stream).
    pub fn filter_count(&self, sid: u64) -> usize {
        self.streams.get(&sid).map(|s| s.filters.len()).unwrap_or(0)
    }

    /// Filter `fi` of stream `sid`.
    pub fn filter(&self, sid: u64, fi: usize) -> Option<FilterRef> {
        self.streams.get(&sid)?.filters.get(fi).copied()
    }

    /// The open streams with a context on VM `vm`.
    pub fn open_on_vm(&self, vm: usize) -> Vec<u64> {
        self.streams
            .iter()
            .filter(|(_, s)| !s.finished && s.filters.iter().any(|f| f.vm == vm && f.ctx != 0))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Records that context `ctx` on VM `vm` is filter `fi` of stream `sid`.
    pub fn link_ctx(&mut self, vm: usize, ctx: u32, sid: u64, fi: usize) {
        self.by_ctx.insert((vm, ctx), (sid, fi));
    }

    /// Forgets context `ctx` on VM `vm`.
    pub fn unlink_ctx(&mut self, vm: usize, ctx: u32) {
        self.by_ctx.remove(&(vm, ctx));
    }

    /// The stream and filter of context `ctx` on VM `vm`.
    pub fn by_ctx(&self, vm: usize, ctx: u32) -> Option<(u64, usize)> {
        self.by_ctx.get(&(vm, ctx)).copied()
    }
}

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
        for p in 0..self.chain.len() {
            let slot = &mut self.chain[p];
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
        let id = self.streams.allocate_id();
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
        self.streams.get(sid).map(|s| {
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
            self.streams.remove_finished(sid);
        }
        r
    }

    /// Takes the request body bytes that reached the upstream since the last call (the gateway
    /// mode forwards them and keeps nothing).
    pub fn take_upstream_body(&mut self, sid: u64) -> Vec<u8> {
        self.streams
            .get_mut(sid)
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
            .get_mut(sid)
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
        self.streams.remove_finished(sid);
    }

    /// What reached the upstream on a stream so far.
    pub fn upstream_request(&self, sid: u64) -> Option<UpstreamRequest> {
        self.streams
            .get(sid)
            .and_then(|s| s.record.upstream_request.clone())
    }

    /// Number of streams not yet finished.
    pub fn open_streams(&self) -> usize {
        self.streams.open_count()
    }
}
