//! The local gateway: a real HTTP/1.1 server on loopback that runs each route's plugin chain in
//! the simulator and forwards to real upstreams, streaming bodies chunk by chunk. Config changes
//! (the file or a module) are picked up while it runs: new requests use the new chain, open
//! streams finish on the old one.

use super::config::{Endpoint, GatewaySpec, RouteSpec};
use crate::sim::{FailPolicy, PluginSpec, Sim, SimOptions, StreamOptions};
use crate::stream_data::StreamProps;
use anyhow::{anyhow, Result};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request as HRequest, Response as HResponse};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

type Body = BoxBody<Bytes, Infallible>;

/// One loaded configuration: the spec and one simulator per route.
pub struct Generation {
    /// The parsed file.
    pub spec: GatewaySpec,
    /// One chain per route (sharing process-wide state).
    pub sims: Vec<Arc<Mutex<Sim>>>,
    /// Module files and their modification times (for hot reload).
    stamps: Vec<(PathBuf, Option<SystemTime>)>,
}

/// The running gateway.
pub struct Gateway {
    path: PathBuf,
    current: Mutex<Arc<Generation>>,
    log: Mutex<Option<Box<dyn std::io::Write + Send>>>,
    /// File times of the last rejected attempt (not retried until one changes).
    rejected: Mutex<Option<Vec<Option<SystemTime>>>>,
}

fn stamp(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn fail_policy(s: Option<&str>) -> FailPolicy {
    match s {
        Some("open") => FailPolicy::Open,
        Some("reload") => FailPolicy::Reload,
        _ => FailPolicy::Closed,
    }
}

fn plugin_spec(base: &Path, p: &crate::gateway::config::PluginEntry) -> Result<PluginSpec> {
    let path = base.join(&p.wasm);
    let config = match (&p.config_file, &p.config) {
        (Some(file), _) => std::fs::read_to_string(base.join(file))
            .map_err(|e| anyhow!("plugin {}: config_file {}: {e}", p.name, file.display()))?,
        (None, serde_json::Value::String(s)) => s.clone(),
        (None, serde_json::Value::Null) => String::new(),
        (None, v) => v.to_string(),
    };
    Ok(PluginSpec::from_file(&path)
        .map_err(|e| anyhow!("plugin {}: {e:#}", p.name))?
        .name(p.name.clone())
        .vm_id(p.vm_id.clone())
        .root_id(p.root_id.clone())
        .fail_policy(fail_policy(p.fail.as_deref()))
        .allow_on_headers_stop_iteration(p.allow_on_headers_stop_iteration)
        .config_json(config))
}

impl Gateway {
    /// Loads the file and builds every route's chain.
    pub fn load(path: &Path) -> Result<Gateway> {
        let gen = build(path, None)?;
        let log: Option<Box<dyn std::io::Write + Send>> = match gen.spec.access_log.as_deref() {
            Some("off") => None,
            None | Some("stdout") => Some(Box::new(std::io::stdout())),
            Some(file) => Some(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(file)
                    .map_err(|e| anyhow!("access_log {file}: {e}"))?,
            )),
        };
        Ok(Gateway {
            path: path.to_path_buf(),
            current: Mutex::new(Arc::new(gen)),
            log: Mutex::new(log),
            rejected: Mutex::new(None),
        })
    }

    /// The configuration in use.
    pub fn current(&self) -> Arc<Generation> {
        self.current
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reloads when the file or a module changed. A bad new config is reported and the old
    /// one keeps serving.
    pub fn maybe_reload(&self) -> Option<Result<()>> {
        let cur = self.current();
        let now: Vec<Option<SystemTime>> = cur.stamps.iter().map(|(p, _)| stamp(p)).collect();
        let changed = cur.stamps.iter().zip(&now).any(|((_, was), is)| was != is);
        if !changed {
            return None;
        }
        // A rejected file is tried again only once something changed since.
        if let Ok(mut rejected) = self.rejected.lock() {
            if rejected.as_ref() == Some(&now) {
                return None;
            }
            *rejected = None;
        }
        let r = build(&self.path, Some(&cur)).map(|g| {
            if let Ok(mut c) = self.current.lock() {
                *c = Arc::new(g);
            }
        });
        if r.is_err() {
            if let Ok(mut rejected) = self.rejected.lock() {
                *rejected = Some(now);
            }
        }
        Some(r)
    }

    fn access_log(&self, line: String) {
        if let Ok(mut l) = self.log.lock() {
            if let Some(w) = l.as_mut() {
                let _ = writeln!(w, "{line}");
                let _ = w.flush();
            }
        }
    }
}

use std::io::Write as _;

/// Builds a generation. With `prev`, routes whose chain has the same shape are hot-reloaded in
/// place (streams in flight finish on the old plugin instances); other routes get new chains.
fn build(path: &Path, prev: Option<&Generation>) -> Result<Generation> {
    let spec = GatewaySpec::load(path)?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut stamps = vec![(path.to_path_buf(), stamp(path))];
    // One host for every route, as one Envoy process: shared data, queues, metrics and logs
    // are process-wide (kept across reloads too).
    let mut host = prev
        .and_then(|p| p.sims.first())
        .and_then(|s| s.lock().ok().map(|s| s.host()));
    let opts = SimOptions {
        workers: spec.workers.max(1),
        clock: crate::shared::Clock::real(),
        buffer_limit: spec.buffer_limit.unwrap_or(1024 * 1024),
        ..Default::default()
    };
    let mut sims = Vec::new();
    let mut reloads = Vec::new();
    for (i, r) in spec.routes.iter().enumerate() {
        let mut specs = Vec::new();
        for (j, p) in r.plugins.iter().enumerate() {
            stamps.push((base.join(&p.wasm), stamp(&base.join(&p.wasm))));
            if let Some(f) = &p.config_file {
                stamps.push((base.join(f), stamp(&base.join(f))));
            }
            specs.push(
                plugin_spec(&base, p).map_err(|e| anyhow!("routes[{i}].plugins[{j}]: {e:#}"))?,
            );
        }
        let reuse = prev.and_then(|p| {
            let (old_route, old_sim) = p.spec.routes.get(i).zip(p.sims.get(i))?;
            (old_route.name == r.name
                && old_route.plugins.len() == r.plugins.len()
                && old_route
                    .plugins
                    .iter()
                    .zip(&r.plugins)
                    .all(|(a, b)| a.name == b.name)
                && p.spec.workers == spec.workers)
                .then(|| old_sim.clone())
        });
        let sim = match reuse {
            Some(sim) => {
                // Checked now, applied only when every route's new plugins passed: a rejected
                // file changes nothing.
                let mut changed = Vec::new();
                {
                    let mut s = sim.lock().map_err(|_| anyhow!("poisoned"))?;
                    for (k, ps) in specs.into_iter().enumerate() {
                        let same = s.plugin_spec(k).is_some_and(|old| {
                            old.config == ps.config && old.module.hash == ps.module.hash
                        });
                        if !same {
                            s.check_plugin(&ps)
                                .map_err(|e| anyhow!("routes[{i}].plugins[{k}]: {e:#}"))?;
                            changed.push((k, ps));
                        }
                    }
                }
                reloads.push((i, sim.clone(), changed));
                sim
            }
            None => {
                let mut s = match &host {
                    Some(h) => {
                        Sim::with_host(crate::sim::global_loader().clone(), opts.clone(), h.clone())
                    }
                    None => {
                        let s = Sim::new(opts.clone());
                        host = Some(s.host());
                        s
                    }
                };
                for (k, ps) in specs.into_iter().enumerate() {
                    s.add_plugin(ps)
                        .map_err(|e| anyhow!("routes[{i}].plugins[{k}]: {e:#}"))?;
                }
                Arc::new(Mutex::new(s))
            }
        };
        if let Ok(mut s) = sim.lock() {
            for (name, c) in &spec.clusters {
                if let Some(e) = spec.endpoints(name).first() {
                    if c.kind.is_none() {
                        s.add_cluster(name.clone(), crate::sim::Cluster::Addr(e.addr));
                    }
                }
            }
        }
        sims.push(sim);
    }
    for (i, sim, changed) in reloads {
        let mut s = sim.lock().map_err(|_| anyhow!("poisoned"))?;
        for (k, ps) in changed {
            // Checked above; a failure here (a VM that cannot be built) is reported, and the
            // plugins reloaded before it stay reloaded.
            s.reload(k, ps)
                .map_err(|e| anyhow!("routes[{i}].plugins[{k}]: {e:#}"))?;
        }
    }
    Ok(Generation { spec, sims, stamps })
}

fn full(status: u16, body: &str) -> HResponse<Body> {
    let mut r = HResponse::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    r
}

/// Runs the gateway until the process ends.
pub async fn serve(gw: Arc<Gateway>) -> Result<()> {
    let listen = gw.current().spec.listen.clone();
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|e| anyhow!("cannot listen on {listen}: {e}"))?;
    eprintln!(
        "host-sim gateway listening on http://{}",
        listener.local_addr()?
    );
    let watcher = gw.clone();
    tokio::spawn(async move {
        let mut printed = 0u64;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            print_plugin_logs(&watcher.current(), &mut printed);
            match watcher.maybe_reload() {
                Some(Ok(())) => eprintln!("host-sim: configuration reloaded"),
                Some(Err(e)) => {
                    eprintln!("host-sim: reload rejected, old configuration keeps serving: {e:#}")
                }
                None => {}
            }
            for s in &watcher.current().sims {
                if let Ok(mut s) = s.lock() {
                    s.poll_timers();
                }
            }
        }
    });
    loop {
        let (sock, remote) = listener.accept().await?;
        let gw = gw.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let gw = gw.clone();
                async move { Ok::<_, Infallible>(handle(gw, req, remote).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(sock), svc)
                .await;
        });
    }
}

/// What the stream produced for the client.
enum Out {
    Head(u16, Vec<(String, Vec<u8>)>),
    Data(Bytes),
}

fn lock(sim: &Arc<Mutex<Sim>>) -> std::sync::MutexGuard<'_, Sim> {
    sim.lock().unwrap_or_else(|p| p.into_inner())
}

async fn handle(gw: Arc<Gateway>, req: HRequest<Incoming>, remote: SocketAddr) -> HResponse<Body> {
    let started = Instant::now();
    let gen = gw.current();
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/".into());
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let Some(ri) = gen.spec.route_for(&path, &host) else {
        gw.access_log(format!("\"{method} {path}\" 404 no_route"));
        return full(404, "no route");
    };
    let route = gen.spec.routes[ri].clone();
    let sim = gen.sims[ri].clone();
    let mut headers = vec![
        (":method".to_string(), method.clone()),
        (":path".to_string(), path.clone()),
        (":authority".to_string(), host.clone()),
        (":scheme".to_string(), "http".to_string()),
    ];
    for (k, v) in req.headers() {
        if k == "host" || k == "connection" || k == "transfer-encoding" {
            continue;
        }
        headers.push((
            k.as_str().to_string(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        ));
    }
    let body = req.into_body();
    let no_body = hyper::body::Body::is_end_stream(&body);
    let sid = {
        let mut s = lock(&sim);
        let sid = s.start_stream(StreamOptions {
            worker: None,
            props: StreamProps {
                route_name: route.name.clone(),
                cluster_name: route.cluster.clone(),
                source_address: remote.to_string(),
                ..Default::default()
            },
        });
        let _ = s.send_request_headers(sid, &headers, no_body);
        sid
    };
    let notify = Arc::new(Notify::new());
    if !no_body {
        let (sim2, n2) = (sim.clone(), notify.clone());
        tokio::spawn(feed_request(sim2, sid, body, n2));
    }
    let (tx, mut rx) = mpsc::channel::<Out>(64);
    let (sim3, n3, gw3, route3) = (sim.clone(), notify.clone(), gw.clone(), route.clone());
    let spec3 = gen.spec.clone();
    tokio::spawn(async move {
        let (status, bytes, upstream) = drive(&sim3, sid, &route3, &spec3, n3, tx).await;
        gw3.access_log(format!(
            "{} \"{method} {path}\" {status} {bytes} {}ms route={} upstream={}",
            remote,
            started.elapsed().as_millis(),
            route3.name,
            upstream
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
        ));
    });
    match rx.recv().await {
        Some(Out::Head(status, hs)) => {
            let stream = async_stream(rx);
            let mut resp = HResponse::new(StreamBody::new(stream).boxed());
            *resp.status_mut() =
                hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
            for (k, v) in hs {
                if k == "content-length" || k == "transfer-encoding" || k == "connection" {
                    continue;
                }
                if let (Ok(k), Ok(v)) = (
                    hyper::header::HeaderName::from_bytes(k.as_bytes()),
                    hyper::header::HeaderValue::from_bytes(&v),
                ) {
                    resp.headers_mut().append(k, v);
                }
            }
            resp
        }
        _ => full(502, "upstream reset"),
    }
}

fn async_stream(
    mut rx: mpsc::Receiver<Out>,
) -> impl futures_like::Stream<Item = Result<Frame<Bytes>, Infallible>> {
    futures_like::from_fn(move |cx| match rx.poll_recv(cx) {
        std::task::Poll::Ready(Some(Out::Data(b))) => {
            std::task::Poll::Ready(Some(Ok(Frame::data(b))))
        }
        std::task::Poll::Ready(Some(Out::Head(..))) => std::task::Poll::Ready(None),
        std::task::Poll::Ready(None) => std::task::Poll::Ready(None),
        std::task::Poll::Pending => std::task::Poll::Pending,
    })
}

/// A minimal `Stream` implementation from a poll function (avoids a futures dependency).
mod futures_like {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub use futures_core::Stream;

    /// A stream driven by a closure.
    pub struct FromFn<F>(F);

    /// Creates a stream from a poll function.
    pub fn from_fn<T, F: FnMut(&mut Context<'_>) -> Poll<Option<T>> + Unpin>(f: F) -> FromFn<F> {
        FromFn(f)
    }

    impl<T, F: FnMut(&mut Context<'_>) -> Poll<Option<T>> + Unpin> Stream for FromFn<F> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            (self.0)(cx)
        }
    }
}

async fn feed_request(sim: Arc<Mutex<Sim>>, sid: u64, mut body: Incoming, notify: Arc<Notify>) {
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let end = hyper::body::Body::is_end_stream(&body);
                    let _ = lock(&sim).send_request_body(sid, &data, end);
                    notify.notify_waiters();
                    if end {
                        return;
                    }
                }
            }
            Some(Err(_)) => {
                lock(&sim).client_abort(sid);
                notify.notify_waiters();
                return;
            }
            None => {
                let _ = lock(&sim).send_request_body(sid, &[], true);
                notify.notify_waiters();
                return;
            }
        }
    }
}

/// Snapshot of a stream's progress.
struct Progress {
    upstream_headers: Option<Vec<(String, Vec<u8>)>>,
    override_host: Option<String>,
    upstream_complete: bool,
    client_status: u16,
    client_headers: Vec<(String, Vec<u8>)>,
    reset: bool,
    finished: bool,
}

fn progress(s: &Sim, sid: u64) -> Option<Progress> {
    let r = s.record(sid)?;
    Some(Progress {
        upstream_headers: r.upstream_request.as_ref().map(|u| u.headers.clone()),
        override_host: r.upstream_override_host.clone(),
        upstream_complete: r.upstream_request.as_ref().is_some_and(|u| u.complete),
        client_status: r.response.status,
        client_headers: r.response.headers.clone(),
        reset: r.response.reset,
        finished: r.finished,
    })
}

/// Sends newly produced client output; returns false when the client is gone.
async fn flush_client(
    sim: &Arc<Mutex<Sim>>,
    sid: u64,
    sent_head: &mut bool,
    bytes: &mut u64,
    tx: &mpsc::Sender<Out>,
) -> bool {
    let (p, data) = {
        let mut s = lock(sim);
        let p = progress(&s, sid);
        let data = if p.as_ref().is_some_and(|p| p.client_status != 0) {
            s.take_client_body(sid)
        } else {
            Vec::new()
        };
        (p, data)
    };
    let Some(p) = p else { return false };
    if p.client_status != 0 && !*sent_head {
        *sent_head = true;
        if tx
            .send(Out::Head(p.client_status, p.client_headers.clone()))
            .await
            .is_err()
        {
            return false;
        }
    }
    if !data.is_empty() {
        *bytes += data.len() as u64;
        if tx.send(Out::Data(Bytes::from(data))).await.is_err() {
            return false;
        }
    }
    true
}

/// Drives one stream to its end: waits for the request to reach the upstream side, tries the
/// cluster's endpoints (retry policy, priorities), streams the response through the chain.
/// Returns (status, bytes sent to the client, upstream used).
async fn drive(
    sim: &Arc<Mutex<Sim>>,
    sid: u64,
    route: &RouteSpec,
    spec: &GatewaySpec,
    notify: Arc<Notify>,
    tx: mpsc::Sender<Out>,
) -> (u16, u64, Option<SocketAddr>) {
    let mut sent_head = false;
    let mut bytes = 0u64;
    // 1. Wait until the chain lets the request through, or answers it locally.
    loop {
        let p = { progress(&lock(sim), sid) };
        let Some(p) = p else { return (0, 0, None) };
        if p.client_status != 0 || p.reset {
            break;
        }
        if p.upstream_headers.is_some() {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), notify.notified()).await;
    }
    let p = { progress(&lock(sim), sid) };
    let mut used = None;
    if let Some(p) = p.filter(|p| p.client_status == 0 && !p.reset) {
        let headers = p.upstream_headers.unwrap_or_default();
        // The request body, kept for retries while it fits the buffer limit.
        let mut sent_body: Vec<u8> = Vec::new();
        let cluster = match p.override_host.as_deref().map(super::config::resolve) {
            // Higress's override host: this endpoint, whatever the cluster's balancing says.
            Some(Ok(addr)) => Ok(vec![Endpoint {
                addr,
                priority: 0,
                tls: None,
            }]),
            _ => pick_cluster(route, &headers, spec),
        };
        let endpoints = match &cluster {
            Ok(e) => e.clone(),
            Err(_) => vec![],
        };
        let tries = 1 + route.retry.num_retries as usize;
        let mut outcome = None;
        for attempt in 0..tries.max(1) {
            let Some(ep) = endpoints.get(attempt % endpoints.len().max(1)).cloned() else {
                break;
            };
            used = Some(ep.addr);
            let result = attempt_upstream(sim, sid, &headers, &mut sent_body, &ep, &notify).await;
            if answered_locally(sim, sid) {
                // A filter answered while the request was going up: no retry, and the
                // upstream's answer (if any) is dropped.
                outcome = Some(Err("local"));
                break;
            }
            match result {
                Ok((status, rh, body)) => {
                    let retriable =
                        attempt + 1 < tries && retry_status(&route.retry.retry_on, status);
                    if retriable {
                        continue;
                    }
                    outcome = Some(Ok((status, rh, body)));
                    break;
                }
                Err(kind) => {
                    let retriable = attempt + 1 < tries
                        && route
                            .retry
                            .retry_on
                            .iter()
                            .any(|c| c == kind || c == "gateway-error" || (c == "5xx"));
                    if retriable {
                        continue;
                    }
                    outcome = Some(Err(kind));
                    break;
                }
            }
        }
        match outcome {
            Some(Err("local")) => {}
            Some(Ok((status, rh, mut body))) => {
                let hs: Vec<(String, String)> = rh;
                let end = hyper::body::Body::is_end_stream(&body);
                let _ = lock(sim).send_response_headers(sid, status, &hs, end);
                if !flush_client(sim, sid, &mut sent_head, &mut bytes, &tx).await {
                    lock(sim).client_abort(sid);
                    return (status, bytes, used);
                }
                if !end {
                    loop {
                        match body.frame().await {
                            Some(Ok(f)) => {
                                if let Ok(d) = f.into_data() {
                                    let end = hyper::body::Body::is_end_stream(&body);
                                    let _ = lock(sim).send_response_body(sid, &d, end);
                                    if !flush_client(sim, sid, &mut sent_head, &mut bytes, &tx)
                                        .await
                                    {
                                        lock(sim).client_abort(sid);
                                        break;
                                    }
                                    if end {
                                        break;
                                    }
                                }
                            }
                            Some(Err(_)) => {
                                lock(sim).upstream_reset(sid);
                                break;
                            }
                            None => {
                                let _ = lock(sim).send_response_body(sid, &[], true);
                                break;
                            }
                        }
                    }
                }
            }
            Some(Err(kind)) => {
                let mut s = lock(sim);
                if kind == "timeout" {
                    s.router_reply(
                        sid,
                        504,
                        "upstream_response_timeout",
                        b"upstream request timeout",
                    );
                } else {
                    s.upstream_reset(sid);
                }
            }
            None => {
                lock(sim).router_reply(sid, 503, "no_healthy_upstream", b"no healthy upstream");
            }
        }
    }
    let _ = flush_client(sim, sid, &mut sent_head, &mut bytes, &tx).await;
    let status = {
        let mut s = lock(sim);
        let st = s.record(sid).map(|r| r.response.status).unwrap_or(0);
        if s.record(sid).is_some_and(|r| !r.finished) {
            s.client_abort(sid);
        }
        s.forget(sid);
        st
    };
    (status, bytes, used)
}

/// Writes the plugins' log lines recorded since `printed` (info and above) to stderr, as
/// Envoy writes wasm logs to its own log: `[level] plugin: message`.
fn print_plugin_logs(gen: &Generation, printed: &mut u64) {
    let Some(sim) = gen.sims.first() else {
        return;
    };
    let host = match sim.lock() {
        Ok(s) => s.host(),
        Err(_) => return,
    };
    let Ok(h) = host.lock() else {
        return;
    };
    let new = usize::try_from(h.logs_pushed.saturating_sub(*printed)).unwrap_or(usize::MAX);
    *printed = h.logs_pushed;
    let start = h.logs.len().saturating_sub(new);
    let mut err = std::io::stderr().lock();
    for l in h.logs.iter().skip(start) {
        if l.level < crate::abi::LogLevel::Info {
            continue;
        }
        // Plugin lines carry their plugin's name already (the SDK prefixes it).
        let _ = if l.plugin == "host-sim" {
            writeln!(err, "[{:?}] host-sim: {}", l.level, l.message)
        } else {
            writeln!(err, "[{:?}] {}", l.level, l.message)
        };
    }
}

/// Whether the stream was answered by a filter (or ended) rather than by the upstream.
fn answered_locally(sim: &Arc<Mutex<Sim>>, sid: u64) -> bool {
    let s = lock(sim);
    s.record(sid)
        .is_none_or(|r| r.local_reply.is_some() || r.finished)
}

fn retry_status(on: &[String], status: u16) -> bool {
    on.iter().any(|c| match c.as_str() {
        "5xx" => status >= 500,
        "gateway-error" => matches!(status, 502..=504),
        "retriable-4xx" => status == 409,
        "429" => status == 429,
        _ => false,
    })
}

fn pick_cluster(
    route: &RouteSpec,
    headers: &[(String, Vec<u8>)],
    spec: &GatewaySpec,
) -> Result<Vec<Endpoint>> {
    let h = |k: &str| {
        headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let mut cluster = route.cluster.clone();
    if let Some(name) = route.cluster_header.as_deref().and_then(h) {
        if spec.clusters.contains_key(&name) {
            cluster = name;
        }
    }
    if spec.clusters.get(&cluster).and_then(|c| c.kind.as_deref()) == Some("original_dst") {
        let dst = h("x-envoy-original-dst-host")
            .ok_or_else(|| anyhow!("no x-envoy-original-dst-host"))?;
        let addr = super::config::resolve(&dst)?;
        return Ok(vec![Endpoint {
            addr,
            priority: 0,
            tls: None,
        }]);
    }
    Ok(spec.endpoints(&cluster))
}

type UpstreamHead = (u16, Vec<(String, String)>, Incoming);

/// One try against one endpoint: connects, streams the request body as the chain releases it,
/// and returns the response head. Errors: "connect-failure", "reset", "timeout".
async fn attempt_upstream(
    sim: &Arc<Mutex<Sim>>,
    sid: u64,
    headers: &[(String, Vec<u8>)],
    kept: &mut Vec<u8>,
    ep: &Endpoint,
    notify: &Arc<Notify>,
) -> Result<UpstreamHead, &'static str> {
    let stream = TcpStream::connect(ep.addr)
        .await
        .map_err(|_| "connect-failure")?;
    let mut sender = match &ep.tls {
        None => {
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| "connect-failure")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            sender
        }
        Some(t) => {
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(t.server_name.clone())
                .map_err(|_| "connect-failure")?;
            let tls = tokio_rustls::TlsConnector::from(t.config.clone())
                .connect(name, stream)
                .await
                .map_err(|e| {
                    eprintln!(
                        "host-sim: TLS to {} ({}) failed: {e}",
                        ep.addr, t.server_name
                    );
                    "connect-failure"
                })?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|_| "connect-failure")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            sender
        }
    };
    let get = |k: &str| {
        headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    let mut b = HRequest::builder()
        .method(get(":method").as_str())
        .uri(get(":path"));
    for (k, v) in headers {
        // content-length passes as the chain left it, as in Envoy: a plugin that changes the
        // body size must remove it.
        if k.starts_with(':') {
            continue;
        }
        b = b.header(k.as_str(), v.as_slice());
    }
    b = b.header("host", get(":authority"));
    // Body pieces, or an error that aborts the upstream request (as Envoy resets it when a
    // filter answers locally after the headers went upstream).
    let (btx, brx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let body = StreamBody::new(futures_like::from_fn({
        let mut brx = brx;
        move |cx| match brx.poll_recv(cx) {
            std::task::Poll::Ready(Some(Ok(b))) => std::task::Poll::Ready(Some(Ok(Frame::data(b)))),
            std::task::Poll::Ready(Some(Err(e))) => std::task::Poll::Ready(Some(Err(e))),
            std::task::Poll::Ready(None) => std::task::Poll::Ready(None),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }))
    .boxed();
    let req = b.body(body).map_err(|_| "reset")?;
    // Forward what the chain has released so far (a retry replays the kept body first).
    let replay = kept.clone();
    let (sim2, notify2) = (sim.clone(), notify.clone());
    let limit = 1024 * 1024;
    let forwarder = tokio::spawn(async move {
        let mut kept_more = Vec::new();
        if !replay.is_empty() && btx.send(Ok(Bytes::from(replay))).await.is_err() {
            return kept_more;
        }
        loop {
            let (chunk, complete, cut) = {
                let mut s = lock(&sim2);
                let chunk = s.take_upstream_body(sid);
                let p = progress(&s, sid);
                let complete = p.as_ref().is_none_or(|p| p.upstream_complete || p.finished);
                // The stream ended (a local reply, a reset) before its body did.
                let cut = p
                    .as_ref()
                    .is_none_or(|p| !p.upstream_complete && p.finished);
                (chunk, complete, cut)
            };
            if !chunk.is_empty() {
                if kept_more.len() + chunk.len() <= limit {
                    kept_more.extend_from_slice(&chunk);
                }
                if btx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return kept_more;
                }
            }
            if cut {
                let _ = btx
                    .send(Err(std::io::Error::other("downstream stream ended")))
                    .await;
                return kept_more;
            }
            if complete {
                return kept_more;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), notify2.notified()).await;
        }
    });
    let resp = tokio::time::timeout(Duration::from_secs(60), sender.send_request(req)).await;
    if let Ok(more) = forwarder.await {
        kept.extend_from_slice(&more);
    }
    let resp = match resp {
        Err(_) => return Err("timeout"),
        Ok(Err(_)) => return Err("reset"),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    let hs: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| *k != "content-length" && *k != "transfer-encoding" && *k != "connection")
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok((status, hs, resp.into_body()))
}
