//! Call-outs: where each cluster's calls go, the calls waiting for an answer, and the calls
//! made to real servers. [`CallOuts`] owns that state; the simulator hands it the calls a
//! callback made and delivers the answers it gives back.

use crate::abi::Headers;
use crate::callout;
use crate::vm::{CallResponseData, GrpcCallRecord, HttpCallRecord, RedisCallRecord};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Where a cluster's call-outs go.
#[derive(Debug, Clone)]
pub enum Cluster {
    /// Calls wait until the test answers them (`answer_http`, `answer_grpc`).
    Manual,
    /// HTTP call-outs are sent over real HTTP/1.1, gRPC calls over plain-text HTTP/2 (h2c),
    /// to this address.
    Addr(SocketAddr),
}

/// The answer to an HTTP call-out.
#[derive(Debug, Clone)]
pub enum CallReply {
    /// A response (status, headers, body).
    Response {
        /// HTTP status.
        status: u16,
        /// Headers.
        headers: Vec<(String, String)>,
        /// Body.
        body: Vec<u8>,
    },
    /// The connection was reset: the plugin sees 0 headers and 0 body bytes.
    Reset,
    /// Connect failure: Envoy's router answers 503.
    ConnectFailure,
    /// The timeout fired: Envoy answers 504.
    Timeout,
}

impl CallReply {
    /// A JSON response.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> CallReply {
        CallReply::Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    pub(super) fn into_data(self) -> CallResponseData {
        let text = |status: u16, body: &str| CallResponseData {
            headers: vec![
                (":status".into(), status.to_string().into_bytes()),
                ("content-length".into(), body.len().to_string().into_bytes()),
                ("content-type".into(), b"text/plain".to_vec()),
            ],
            body: body.as_bytes().to_vec(),
            trailers: vec![],
        };
        match self {
            CallReply::Response {
                status,
                headers,
                body,
            } => {
                let mut h: Headers = vec![(":status".into(), status.to_string().into_bytes())];
                for (k, v) in headers {
                    h.push((k.to_ascii_lowercase(), v.into_bytes()));
                }
                CallResponseData {
                    headers: h,
                    body,
                    trailers: vec![],
                }
            }
            CallReply::Reset => CallResponseData::default(),
            CallReply::ConnectFailure => text(
                503,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            ),
            CallReply::Timeout => text(504, "upstream request timeout"),
        }
    }
}

/// A call-out waiting for its answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PendingHttpCall {
    /// Simulator-wide id to answer it with.
    pub id: u64,
    /// The plugin (chain index) that made it.
    pub plugin: usize,
    /// The worker whose VM made it.
    pub worker: usize,
    /// The call as the plugin made it.
    pub call: HttpCallRecord,
    #[serde(skip)]
    pub(super) vm: usize,
    #[serde(skip)]
    pub(super) root: u32,
    #[serde(skip)]
    deadline_ns: Option<u64>,
}

/// A gRPC call-out waiting for its answer.
#[derive(Debug, Clone)]
pub struct PendingGrpcCall {
    /// Simulator-wide id.
    pub id: u64,
    /// The call.
    pub call: GrpcCallRecord,
    pub(super) vm: usize,
    pub(super) root: u32,
}

/// A Higress Redis call waiting to be sent.
#[derive(Debug, Clone)]
pub(super) struct PendingRedisCall {
    pub(super) vm: usize,
    pub(super) root: u32,
    pub(super) call: RedisCallRecord,
    timeout_ms: u32,
}

/// How many call-out records [`CallOuts`] keeps (the oldest half goes at the limit).
const MAX_CALL_LOG: usize = 10_000;

/// A call made to a real server, with its answer, ready to be delivered to its plugin.
pub(super) enum Answered {
    /// An HTTP call-out and the response (or failure).
    Http(PendingHttpCall, CallReply),
    /// A unary gRPC call: the message, or the status code and message.
    Grpc(PendingGrpcCall, Result<Vec<u8>, (u32, String)>),
    /// A Redis call: the status (0: ok) and the RESP reply.
    Redis(PendingRedisCall, i32, Vec<u8>),
}

/// The call-out state of one simulated gateway: clusters, Redis servers and pending calls.
#[derive(Default)]
pub(super) struct CallOuts {
    clusters: BTreeMap<String, Cluster>,
    redis: BTreeMap<String, SocketAddr>,
    http: Vec<PendingHttpCall>,
    grpc: Vec<PendingGrpcCall>,
    redis_calls: Vec<PendingRedisCall>,
    /// Redis calls wait in `redis_calls` until released (see [`super::Sim::hold_redis`]).
    redis_held: bool,
    /// The id the next call gets (simulator-wide, starting at 1).
    next_id: u64,
    /// The HTTP call-outs made, in order (the most recent [`MAX_CALL_LOG`] at most).
    log: Vec<HttpCallRecord>,
}

impl CallOuts {
    /// No clusters and no calls.
    pub(super) fn new() -> CallOuts {
        CallOuts {
            next_id: 1,
            ..CallOuts::default()
        }
    }

    /// Registers (or replaces) a cluster.
    pub(super) fn add_cluster(&mut self, name: String, target: Cluster) {
        self.clusters.insert(name, target);
    }

    /// Maps a Redis cluster name to a server.
    pub(super) fn add_redis(&mut self, name: String, addr: SocketAddr) {
        self.redis.insert(name, addr);
    }

    /// The names of the clusters the plugins may call.
    pub(super) fn cluster_names(&self) -> Vec<String> {
        self.clusters.keys().cloned().collect()
    }

    /// The names of the Redis clusters.
    pub(super) fn redis_names(&self) -> Vec<String> {
        self.redis.keys().cloned().collect()
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Queues an HTTP call-out made by root context `root` of VM `vm` (chain index `plugin`,
    /// worker `worker`) at monotonic time `now_ns`; its timeout, if any, counts from then.
    pub(super) fn push_http(
        &mut self,
        vm: usize,
        (plugin, worker): (usize, usize),
        root: u32,
        call: HttpCallRecord,
        now_ns: u64,
    ) {
        if self.log.len() >= MAX_CALL_LOG {
            self.log.drain(..MAX_CALL_LOG / 2);
        }
        self.log.push(call.clone());
        let id = self.next_id();
        let deadline_ns =
            (call.timeout_ms > 0).then(|| now_ns + call.timeout_ms as u64 * 1_000_000);
        self.http.push(PendingHttpCall {
            id,
            plugin,
            worker,
            call,
            vm,
            root,
            deadline_ns,
        });
    }

    /// Queues a gRPC call.
    pub(super) fn push_grpc(&mut self, vm: usize, root: u32, call: GrpcCallRecord) {
        let id = self.next_id();
        self.grpc.push(PendingGrpcCall { id, call, vm, root });
    }

    /// Queues a Redis call with the timeout its cluster was initialised with.
    pub(super) fn push_redis(
        &mut self,
        vm: usize,
        root: u32,
        call: RedisCallRecord,
        timeout_ms: u32,
    ) {
        self.redis_calls.push(PendingRedisCall {
            vm,
            root,
            call,
            timeout_ms,
        });
    }

    /// Drops a pending gRPC call the plugin cancelled.
    pub(super) fn cancel_grpc(&mut self, vm: usize, token: u32) {
        self.grpc.retain(|p| !(p.vm == vm && p.call.token == token));
    }

    /// The earliest call-out deadline (monotonic ns).
    pub(super) fn next_deadline(&self) -> Option<u64> {
        self.http.iter().filter_map(|p| p.deadline_ns).min()
    }

    /// The ids of the HTTP calls whose timeout is due at `now_ns`.
    pub(super) fn due(&self, now_ns: u64) -> Vec<u64> {
        self.http
            .iter()
            .filter(|p| p.deadline_ns.is_some_and(|d| d <= now_ns))
            .map(|p| p.id)
            .collect()
    }

    /// Removes a pending HTTP call.
    pub(super) fn take_http(&mut self, id: u64) -> Option<PendingHttpCall> {
        let i = self.http.iter().position(|p| p.id == id)?;
        Some(self.http.remove(i))
    }

    /// Removes a pending gRPC call.
    pub(super) fn take_grpc(&mut self, id: u64) -> Option<PendingGrpcCall> {
        let i = self.grpc.iter().position(|p| p.id == id)?;
        Some(self.grpc.remove(i))
    }

    /// The HTTP call-outs made so far, oldest first.
    pub(super) fn log(&self) -> &[HttpCallRecord] {
        &self.log
    }

    /// The HTTP calls waiting for an answer.
    pub(super) fn pending_http(&self) -> &[PendingHttpCall] {
        &self.http
    }

    /// The gRPC calls waiting for an answer.
    pub(super) fn pending_grpc(&self) -> &[PendingGrpcCall] {
        &self.grpc
    }

    /// How many Redis calls wait to be sent.
    pub(super) fn pending_redis(&self) -> usize {
        self.redis_calls.len()
    }

    /// Holds Redis calls (true) or lets them go (false).
    pub(super) fn hold_redis(&mut self, hold: bool) {
        self.redis_held = hold;
    }

    /// The calls made by these VMs that wait for an answer, described for a stall report
    /// (HTTP first, then gRPC, then Redis).
    pub(super) fn waiting_for(&self, vms: &[usize]) -> Vec<String> {
        let http = self
            .http
            .iter()
            .filter(|p| vms.contains(&p.vm))
            .map(|p| format!("an HTTP call-out to cluster {:?}", p.call.cluster));
        let grpc = self
            .grpc
            .iter()
            .filter(|p| vms.contains(&p.vm))
            .map(|p| format!("a gRPC call to {:?}", p.call.service_name));
        let redis = self
            .redis_calls
            .iter()
            .filter(|p| vms.contains(&p.vm))
            .map(|_| "a Redis call".to_string());
        http.chain(grpc).chain(redis).collect()
    }

    fn addr_of(&self, cluster: &str) -> Option<SocketAddr> {
        match self.clusters.get(cluster) {
            Some(Cluster::Addr(a)) => Some(*a),
            _ => None,
        }
    }

    /// Makes the next call bound for a real server (HTTP first, then gRPC, then Redis unless
    /// held), blocking until it is answered. None when no such call waits.
    pub(super) fn call_next_real(&mut self) -> Option<Answered> {
        if let Some(i) = self
            .http
            .iter()
            .position(|p| self.addr_of(&p.call.cluster).is_some())
        {
            let p = self.http.remove(i);
            let addr = self.addr_of(&p.call.cluster)?;
            let reply = callout::http_request(addr, &p.call);
            return Some(Answered::Http(p, reply));
        }
        if let Some(i) = self.grpc.iter().position(|p| {
            self.addr_of(&String::from_utf8_lossy(&p.call.service))
                .is_some()
        }) {
            let p = self.grpc.remove(i);
            let cluster = String::from_utf8_lossy(&p.call.service).into_owned();
            let addr = self.addr_of(&cluster)?;
            let reply = match crate::grpc::unary(addr, &cluster, &p.call) {
                crate::grpc::GrpcOutcome::Message(m) => Ok(m),
                crate::grpc::GrpcOutcome::Status(code, msg) => Err((code, msg)),
            };
            return Some(Answered::Grpc(p, reply));
        }
        if !self.redis_held && !self.redis_calls.is_empty() {
            let p = self.redis_calls.remove(0);
            let (status, reply) = match self.redis.get(&p.call.cluster) {
                Some(addr) => callout::redis_request(*addr, &p.call.query, p.timeout_ms),
                None => (1, Vec::new()),
            };
            return Some(Answered::Redis(p, status, reply));
        }
        None
    }
}
