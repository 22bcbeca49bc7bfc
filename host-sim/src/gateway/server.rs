//! The local gateway: a real HTTP/1.1 server on loopback that runs each route's plugin chain in
//! the simulator and forwards to real upstreams, streaming bodies chunk by chunk. Config changes
//! (the file or a module) are picked up while it runs: new requests use the new chain, open
//! streams finish on the old one.

use super::config::{Endpoint, GatewaySpec, RouteSpec};
pub use super::generation::{Gateway, Generation};
use super::upstream::{attempt_upstream, pick_cluster, retry_status, Failure, StreamClock};
use crate::sim::{Sim, StreamOptions};
use crate::stream_data::StreamProps;
use anyhow::{anyhow, Result};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request as HRequest, Response as HResponse};
use hyper_util::rt::TokioIo;
use std::future::Future as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

type Body = BoxBody<Bytes, std::io::Error>;

/// Errors a response body stream can end with: the connection is then closed before the
/// message is complete, which is how an HTTP/1.1 client sees a reset stream.
type BodyError = std::io::Error;

fn full(status: u16, body: &str) -> HResponse<Body> {
    let mut r = HResponse::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
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
        // hyper's own limits sit above the configured ones, so that the gateway answers as
        // Envoy does (431 with a body) rather than hyper (431 without one).
        let (bytes, count) = gw.current().spec.header_limits();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let gw = gw.clone();
                async move { handle(gw, req, remote).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .max_buf_size((bytes + 64 * 1024).max(8192))
                .max_headers(count.saturating_mul(2).max(count + 100))
                .serve_connection(TokioIo::new(sock), svc)
                .await;
        });
    }
}

/// What the stream produced for the client.
enum Out {
    Head(u16, Vec<(String, Vec<u8>)>),
    Data(Bytes),
    /// The stream was reset: the client's connection is closed mid-message.
    Reset(String),
}

fn lock(sim: &Arc<Mutex<Sim>>) -> std::sync::MutexGuard<'_, Sim> {
    sim.lock().unwrap_or_else(|p| p.into_inner())
}

/// Envoy's HTTP/1 codec limits on request headers: the size (request line URL plus names and
/// values) and the count. Over either, the answer is 431 `Request Header Fields Too Large`
/// and the connection closes; no filter sees the request.
fn over_header_limits(req: &HRequest<Incoming>, spec: &GatewaySpec) -> Option<&'static str> {
    let (max_bytes, max_count) = spec.header_limits();
    let url = req.uri().path_and_query().map_or(1, |p| p.as_str().len());
    let size: usize = url
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum::<usize>();
    if req.headers().len() > max_count {
        Some("http1.too_many_headers")
    } else if size > max_bytes {
        Some("http1.headers_too_large")
    } else {
        None
    }
}

async fn handle(
    gw: Arc<Gateway>,
    req: HRequest<Incoming>,
    remote: SocketAddr,
) -> Result<HResponse<Body>, BodyError> {
    let started = Instant::now();
    let gen = gw.current();
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/".into());
    if let Some(details) = over_header_limits(&req, &gen.spec) {
        gw.access_log(format!(
            "{remote} \"{method} {}\" 431 details={details}",
            super::redact::redact_query(&path)
        ));
        let mut r = full(431, "Request Header Fields Too Large");
        let h = r.headers_mut();
        h.insert(
            "content-type",
            hyper::header::HeaderValue::from_static("text/plain"),
        );
        h.insert(
            "connection",
            hyper::header::HeaderValue::from_static("close"),
        );
        return Ok(r);
    }
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let Some(ri) = gen.spec.route_for(&path, &host) else {
        let logged = super::redact::redact_query(&path);
        gw.access_log(format!("\"{method} {logged}\" 404 no_route"));
        return Ok(full(404, "no route"));
    };
    let route = gen.spec.routes[ri].clone();
    let sim = gen.sims[ri].clone();
    let head_request = method == "HEAD";
    let mut headers = vec![
        (":method".to_string(), method.clone()),
        (":path".to_string(), path.clone()),
        (":authority".to_string(), host.clone()),
        (":scheme".to_string(), "http".to_string()),
    ];
    for (k, v) in req.headers() {
        // Envoy's connection manager drops transfer-encoding and the connection's own headers
        // before the filters; content-length stays.
        if k == "host" || k == "connection" || k == "transfer-encoding" {
            continue;
        }
        headers.push((
            k.as_str().to_string(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        ));
    }
    let clock = StreamClock::new(&gen.spec, &route);
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
    let client_done = Arc::new(AtomicBool::new(no_body));
    if !no_body {
        let (sim2, n2, c2, d2) = (
            sim.clone(),
            notify.clone(),
            clock.clone(),
            client_done.clone(),
        );
        tokio::spawn(feed_request(sim2, sid, body, n2, c2, d2));
    }
    let (tx, mut rx) = mpsc::channel::<Out>(64);
    let (sim3, n3, gw3, route3) = (sim.clone(), notify.clone(), gw.clone(), route.clone());
    let spec3 = gen.spec.clone();
    tokio::spawn(async move {
        let stream = Stream {
            sim: &sim3,
            sid,
            route: &route3,
            spec: &spec3,
            notify: n3,
            clock,
            client_done,
        };
        let end = drive(stream, tx).await;
        let details = end
            .details
            .map(|d| format!(" details={d}"))
            .unwrap_or_default();
        gw3.access_log(format!(
            "{} \"{method} {}\" {} {} {}ms route={} upstream={}{details}",
            remote,
            super::redact::redact_query(&path),
            end.status,
            end.bytes,
            started.elapsed().as_millis(),
            route3.name,
            end.upstream
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
        ));
    });
    match rx.recv().await {
        Some(Out::Head(status, hs)) => {
            let no_body = head_request || status < 200 || status == 204 || status == 304;
            let declared = hs
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok())
                .filter(|_| !no_body);
            let stream = async_stream(rx, declared);
            let mut resp = HResponse::new(StreamBody::new(stream).boxed());
            *resp.status_mut() =
                hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
            for (k, v) in hs {
                // Hop-by-hop headers go only now (Envoy drops them after the filters);
                // content-length stays and frames the message.
                if matches!(
                    k.as_str(),
                    "transfer-encoding" | "connection" | "keep-alive" | "proxy-connection"
                ) {
                    continue;
                }
                if let (Ok(k), Ok(v)) = (
                    hyper::header::HeaderName::from_bytes(k.as_bytes()),
                    hyper::header::HeaderValue::from_bytes(&v),
                ) {
                    resp.headers_mut().append(k, v);
                }
            }
            Ok(resp)
        }
        // Reset before any response: the connection closes without one, as Envoy resets an
        // HTTP/1.1 downstream.
        Some(Out::Reset(reason)) => Err(BodyError::other(reason)),
        _ => Err(BodyError::other("stream ended without a response")),
    }
}

/// The client's body: data as the chain releases it; a reset, or bytes that break the
/// `content-length` the chain left, end it with an error (hyper then closes the connection
/// before the message is complete, so the client sees it broken, not complete). The error
/// comes a moment after the last data, so that hyper has flushed what went before.
fn async_stream(
    mut rx: mpsc::Receiver<Out>,
    declared: Option<u64>,
) -> impl futures_like::Stream<Item = Result<Frame<Bytes>, BodyError>> {
    use std::task::Poll;
    let mut sent = 0u64;
    let mut done = false;
    let mut failing: Option<(String, std::pin::Pin<Box<tokio::time::Sleep>>)> = None;
    futures_like::from_fn(move |cx| loop {
        if let Some((why, delay)) = failing.as_mut() {
            return match delay.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let e = BodyError::other(std::mem::take(why));
                    failing = None;
                    done = true;
                    Poll::Ready(Some(Err(e)))
                }
                Poll::Pending => Poll::Pending,
            };
        }
        if done {
            return Poll::Ready(None);
        }
        let why = match rx.poll_recv(cx) {
            Poll::Ready(Some(Out::Data(b))) => {
                sent += b.len() as u64;
                if declared.is_none_or(|d| sent <= d) {
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                "response body longer than its content-length".to_string()
            }
            Poll::Ready(Some(Out::Reset(reason))) => reason,
            Poll::Ready(Some(Out::Head(..))) | Poll::Ready(None) => {
                if declared.is_none_or(|d| sent >= d) {
                    done = true;
                    return Poll::Ready(None);
                }
                "response body shorter than its content-length".to_string()
            }
            Poll::Pending => return Poll::Pending,
        };
        let delay = Box::pin(tokio::time::sleep(Duration::from_millis(20)));
        failing = Some((why, delay));
    })
}

/// A minimal `Stream` implementation from a poll function (avoids a futures dependency).
pub(crate) mod futures_like {
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

async fn feed_request(
    sim: Arc<Mutex<Sim>>,
    sid: u64,
    mut body: Incoming,
    notify: Arc<Notify>,
    clock: StreamClock,
    client_done: Arc<AtomicBool>,
) {
    loop {
        let frame = body.frame().await;
        clock.touch();
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let end = hyper::body::Body::is_end_stream(&body);
                    if end {
                        client_done.store(true, Ordering::SeqCst);
                    }
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
                client_done.store(true, Ordering::SeqCst);
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
    })
}

/// One stream being driven, and what it needs.
struct Stream<'a> {
    sim: &'a Arc<Mutex<Sim>>,
    sid: u64,
    route: &'a RouteSpec,
    spec: &'a GatewaySpec,
    notify: Arc<Notify>,
    clock: StreamClock,
    /// The whole request arrived from the client.
    client_done: Arc<AtomicBool>,
}

/// How a stream ended, for the access log.
struct End {
    status: u16,
    bytes: u64,
    upstream: Option<SocketAddr>,
    details: Option<String>,
}

/// What the client has been sent so far.
#[derive(Default)]
struct Sent {
    head: bool,
    bytes: u64,
}

/// Sends newly produced client output; returns false when the client is gone.
async fn flush_client(
    sim: &Arc<Mutex<Sim>>,
    sid: u64,
    sent: &mut Sent,
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
    if p.client_status != 0 && !sent.head {
        sent.head = true;
        if tx
            .send(Out::Head(p.client_status, p.client_headers.clone()))
            .await
            .is_err()
        {
            return false;
        }
    }
    if !data.is_empty() {
        sent.bytes += data.len() as u64;
        if tx.send(Out::Data(Bytes::from(data))).await.is_err() {
            return false;
        }
    }
    true
}

impl Stream<'_> {
    /// The router's answer to a timer that fired: a local reply before the client has
    /// response headers, a reset after (the library decides which, as Envoy's filter manager).
    fn timed_out(&self, f: Failure) {
        let mut s = lock(self.sim);
        match f {
            Failure::IdleTimeout => {
                // Envoy: 408 while the request is still arriving, 504 once it is complete.
                let status = if self.client_done.load(Ordering::SeqCst) {
                    504
                } else {
                    408
                };
                s.router_reply(self.sid, status, "stream_idle_timeout", b"stream timeout");
            }
            Failure::PerTryTimeout => s.router_reply(
                self.sid,
                504,
                "upstream_per_try_timeout",
                b"upstream request timeout",
            ),
            _ => s.router_reply(
                self.sid,
                504,
                "upstream_response_timeout",
                b"upstream request timeout",
            ),
        }
    }

    /// Streams the chosen try's response through the chain to the client, under the route
    /// and idle timers (the per-try timeout no longer applies once the response started).
    async fn stream_response(
        &self,
        status: u16,
        hs: Vec<(String, String)>,
        mut body: Incoming,
        sent: &mut Sent,
        tx: &mpsc::Sender<Out>,
    ) {
        let (sim, sid) = (self.sim, self.sid);
        let end = hyper::body::Body::is_end_stream(&body);
        let _ = lock(sim).send_response_headers(sid, status, &hs, end);
        if !flush_client(sim, sid, sent, tx).await {
            lock(sim).client_abort(sid);
            return;
        }
        if end {
            return;
        }
        loop {
            let frame = match self.clock.race(body.frame(), None).await {
                Ok(f) => f,
                Err(f) => {
                    self.timed_out(f);
                    return;
                }
            };
            self.clock.touch();
            match frame {
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        let end = hyper::body::Body::is_end_stream(&body);
                        let _ = lock(sim).send_response_body(sid, &d, end);
                        if !flush_client(sim, sid, sent, tx).await {
                            lock(sim).client_abort(sid);
                            return;
                        }
                        if end {
                            return;
                        }
                    }
                }
                // The upstream cut the response: Envoy resets the downstream stream.
                Some(Err(_)) => {
                    lock(sim).upstream_reset(sid);
                    return;
                }
                None => {
                    let _ = lock(sim).send_response_body(sid, &[], true);
                    return;
                }
            }
        }
    }
}

/// Drives one stream to its end: waits for the request to reach the upstream side, tries the
/// cluster's endpoints (retry policy, priorities, timeouts), streams the response through the
/// chain.
async fn drive(st: Stream<'_>, tx: mpsc::Sender<Out>) -> End {
    let (sim, sid) = (st.sim, st.sid);
    let mut sent = Sent::default();
    // 1. Wait until the chain lets the request through, or answers it locally.
    loop {
        let p = { progress(&lock(sim), sid) };
        let Some(p) = p else {
            return End {
                status: 0,
                bytes: 0,
                upstream: None,
                details: None,
            };
        };
        if p.client_status != 0 || p.reset || p.upstream_headers.is_some() {
            break;
        }
        match st.clock.check(None) {
            Ok(wait) => {
                let _ = tokio::time::timeout(wait, st.notify.notified()).await;
            }
            Err(f) => {
                st.timed_out(f);
                break;
            }
        }
    }
    let p = { progress(&lock(sim), sid) };
    let mut used = None;
    if let Some(p) = p.filter(|p| p.client_status == 0 && !p.reset) {
        if p.upstream_complete {
            st.clock.request_done();
        }
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
            _ => pick_cluster(st.route, &headers, st.spec),
        };
        let endpoints = cluster.unwrap_or_default();
        let retry = &st.route.retry;
        let tries = 1 + retry.num_retries as usize;
        let mut outcome = None;
        for attempt in 0..tries {
            let Some(ep) = endpoints.get(attempt % endpoints.len().max(1)).cloned() else {
                break;
            };
            used = Some(ep.addr);
            let result = attempt_upstream(
                sim,
                sid,
                &headers,
                &mut sent_body,
                &ep,
                &st.notify,
                &st.clock,
            )
            .await;
            if answered_locally(sim, sid) {
                // A filter answered while the request was going up: no retry, and the
                // upstream's answer (if any) is dropped.
                outcome = Some(Err(None));
                break;
            }
            let last = attempt + 1 == tries;
            match result {
                Ok((status, ..)) if !last && retry_status(&retry.retry_on, status) => continue,
                Ok(head) => {
                    outcome = Some(Ok(head));
                    break;
                }
                Err(f) if !last && f.retriable(&retry.retry_on) => continue,
                Err(f) => {
                    outcome = Some(Err(Some(f)));
                    break;
                }
            }
        }
        match outcome {
            Some(Err(None)) => {}
            Some(Ok((status, rh, body))) => {
                st.stream_response(status, rh, body, &mut sent, &tx).await;
            }
            Some(Err(Some(f))) => match f {
                Failure::Connect | Failure::Reset => lock(sim).upstream_reset(sid),
                timer => st.timed_out(timer),
            },
            None => {
                lock(sim).router_reply(sid, 503, "no_healthy_upstream", b"no healthy upstream");
            }
        }
    }
    let _ = flush_client(sim, sid, &mut sent, &tx).await;
    let (status, details, reset) = {
        let mut s = lock(sim);
        let rec = s.record(sid);
        if rec.as_ref().is_some_and(|r| !r.finished) {
            s.client_abort(sid);
        }
        let rec = s.record(sid);
        s.forget(sid);
        let status = rec.as_ref().map(|r| r.response.status).unwrap_or(0);
        let reset = rec
            .as_ref()
            .filter(|r| r.response.reset)
            .map(|r| r.response.reset_reason.clone().unwrap_or_default());
        let framing = rec.as_ref().and_then(|r| {
            r.upstream_request
                .as_ref()
                .and_then(|u| u.framing_error.clone())
                .map(|e| format!("request {e}"))
                .or_else(|| {
                    r.response
                        .framing_error
                        .clone()
                        .map(|e| format!("response {e}"))
                })
        });
        if let Some(f) = &framing {
            eprintln!(
                "host-sim: stream {sid}: {f} (a filter changed the body and left content-length)"
            );
        }
        (status, reset.clone().or(framing), reset)
    };
    if let Some(reason) = reset {
        let _ = tx.send(Out::Reset(reason)).await;
    }
    End {
        status,
        bytes: sent.bytes,
        upstream: used,
        details,
    }
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
