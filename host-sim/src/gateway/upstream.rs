//! One stream's way to the upstream in the local gateway: choosing the endpoints, one try
//! against one endpoint (the request body streamed as the chain releases it), Envoy's retry
//! conditions, and the stream's timers (route timeout, per-try timeout, stream idle timeout).

use super::config::{Endpoint, GatewaySpec, RouteSpec};
use crate::sim::Sim;
use anyhow::{anyhow, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::Request as HRequest;
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

/// How a try ended without response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made.
    Connect,
    /// The upstream reset or closed the connection (or the request was aborted).
    Reset,
    /// The per-try timeout fired (Envoy resets the try; retried like a reset).
    PerTryTimeout,
    /// The route timeout fired: no more tries.
    RouteTimeout,
    /// The stream idle timeout fired: no more tries.
    IdleTimeout,
}

impl Failure {
    /// Whether the route's `retry_on` retries this failure. Envoy retries any reset (a per-try
    /// timeout resets the try) under `reset`, `5xx` and `gateway-error`, and connection
    /// failures also under `connect-failure`. The route and idle timeouts end the stream.
    pub fn retriable(self, retry_on: &[String]) -> bool {
        if matches!(self, Failure::RouteTimeout | Failure::IdleTimeout) {
            return false;
        }
        retry_on.iter().any(|c| match c.as_str() {
            "5xx" | "gateway-error" | "reset" => true,
            "connect-failure" => self == Failure::Connect,
            _ => false,
        })
    }
}

/// Whether `retry_on` retries a response status.
pub fn retry_status(on: &[String], status: u16) -> bool {
    on.iter().any(|c| match c.as_str() {
        "5xx" => status >= 500,
        "gateway-error" => matches!(status, 502..=504),
        "retriable-4xx" => status == 409,
        "429" => status == 429,
        _ => false,
    })
}

/// The clock of a stream: when something last happened on it (for the idle timeout) and when
/// the request was complete at the router (the route and per-try timeouts start there).
#[derive(Clone)]
pub struct StreamClock {
    last: Arc<Mutex<Instant>>,
    request_done: Arc<Mutex<Option<Instant>>>,
    /// The route timeout (None: disabled).
    pub route: Option<Duration>,
    /// The per-try timeout (None: disabled).
    pub per_try: Option<Duration>,
    /// The stream idle timeout (None: disabled).
    pub idle: Option<Duration>,
}

impl StreamClock {
    /// A clock for a stream on `route`, starting now.
    pub fn new(spec: &GatewaySpec, route: &RouteSpec) -> StreamClock {
        StreamClock {
            last: Arc::new(Mutex::new(Instant::now())),
            request_done: Arc::new(Mutex::new(None)),
            route: route.route_timeout(),
            per_try: route.per_try_timeout(),
            idle: spec.idle_timeout(route),
        }
    }

    /// Something happened on the stream (headers or data, either way): the idle timer restarts.
    pub fn touch(&self) {
        if let Ok(mut l) = self.last.lock() {
            *l = Instant::now();
        }
    }

    /// The request is complete at the router (first call wins).
    pub fn request_done(&self) {
        if let Ok(mut d) = self.request_done.lock() {
            d.get_or_insert_with(Instant::now);
        }
    }

    fn done_at(&self) -> Option<Instant> {
        self.request_done.lock().ok().and_then(|d| *d)
    }

    fn last(&self) -> Instant {
        self.last
            .lock()
            .map(|l| *l)
            .unwrap_or_else(|_| Instant::now())
    }

    /// The timer that fired, if one did; otherwise how long to wait before checking again.
    /// `try_started`: the start of the current try while waiting for its response headers
    /// (the per-try timeout applies only then).
    pub fn check(&self, try_started: Option<Instant>) -> Result<Duration, Failure> {
        let now = Instant::now();
        let mut next = Duration::from_millis(50);
        let mut deadline = |at: Instant, f: Failure| -> Result<(), Failure> {
            if now >= at {
                return Err(f);
            }
            next = next.min(at - now);
            Ok(())
        };
        if let Some(idle) = self.idle {
            deadline(self.last() + idle, Failure::IdleTimeout)?;
        }
        if let Some(done) = self.done_at() {
            if let Some(route) = self.route {
                deadline(done + route, Failure::RouteTimeout)?;
            }
            if let (Some(per_try), Some(start)) = (self.per_try, try_started) {
                deadline(done.max(start) + per_try, Failure::PerTryTimeout)?;
            }
        }
        Ok(next)
    }

    /// Waits for `fut` while checking the timers.
    pub async fn race<F: std::future::Future>(
        &self,
        fut: F,
        try_started: Option<Instant>,
    ) -> Result<F::Output, Failure> {
        tokio::pin!(fut);
        loop {
            let wait = self.check(try_started)?;
            tokio::select! {
                out = &mut fut => return Ok(out),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// The endpoints a request goes to: the route's cluster (or the one named by its
/// `cluster_header`), or the `x-envoy-original-dst-host` of an `original_dst` cluster.
pub fn pick_cluster(
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

/// Response status, headers and body of a try.
pub type UpstreamHead = (u16, Vec<(String, String)>, Incoming);

fn lock(sim: &Arc<Mutex<Sim>>) -> std::sync::MutexGuard<'_, Sim> {
    sim.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `content-length` the chain left on the request, if any.
fn declared_length(headers: &[(String, Vec<u8>)]) -> Option<u64> {
    headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse().ok())
}

/// An HTTP/1.1 client connection over `io` (plain TCP or TLS), its connection task spawned.
async fn http1_client<T, B>(io: T) -> Result<hyper::client::conn::http1::SendRequest<B>, Failure>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|_| Failure::Connect)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One try against one endpoint: connects, streams the request body as the chain releases it
/// (a retry replays `kept` first), and waits for the response head under the stream's timers.
pub async fn attempt_upstream(
    sim: &Arc<Mutex<Sim>>,
    sid: u64,
    headers: &[(String, Vec<u8>)],
    kept: &mut Vec<u8>,
    ep: &Endpoint,
    notify: &Arc<Notify>,
    clock: &StreamClock,
) -> Result<UpstreamHead, Failure> {
    let started = Instant::now();
    let stream = clock
        .race(TcpStream::connect(ep.addr), None)
        .await?
        .map_err(|_| Failure::Connect)?;
    let mut sender = match &ep.tls {
        None => http1_client(stream).await?,
        Some(t) => {
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(t.server_name.clone())
                .map_err(|_| Failure::Connect)?;
            let tls = clock
                .race(
                    tokio_rustls::TlsConnector::from(t.config.clone()).connect(name, stream),
                    None,
                )
                .await?
                .map_err(|e| {
                    eprintln!(
                        "host-sim: TLS to {} ({}) failed: {e}",
                        ep.addr, t.server_name
                    );
                    Failure::Connect
                })?;
            http1_client(tls).await?
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
        // body size must remove it (the forwarder below aborts a body that does not match).
        if k.starts_with(':') {
            continue;
        }
        b = b.header(k.as_str(), v.as_slice());
    }
    b = b.header("host", get(":authority"));
    // Body pieces, or an error that aborts the upstream request (as Envoy resets it when a
    // filter answers locally after the headers went upstream).
    let (btx, brx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let body = StreamBody::new(super::server::futures_like::from_fn({
        let mut brx = brx;
        move |cx| match brx.poll_recv(cx) {
            std::task::Poll::Ready(Some(Ok(b))) => std::task::Poll::Ready(Some(Ok(Frame::data(b)))),
            std::task::Poll::Ready(Some(Err(e))) => std::task::Poll::Ready(Some(Err(e))),
            std::task::Poll::Ready(None) => std::task::Poll::Ready(None),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }))
    .boxed();
    let req = b.body(body).map_err(|_| Failure::Reset)?;
    // Forward what the chain has released so far (a retry replays the kept body first).
    let replay = kept.clone();
    let declared = declared_length(headers);
    let (sim2, notify2, clock2) = (sim.clone(), notify.clone(), clock.clone());
    let limit = 1024 * 1024;
    let forwarder = tokio::spawn(async move {
        let mut kept_more = Vec::new();
        let mut sent = replay.len() as u64;
        if !replay.is_empty() && btx.send(Ok(Bytes::from(replay))).await.is_err() {
            return kept_more;
        }
        loop {
            let (chunk, complete, cut) = {
                let mut s = lock(&sim2);
                let chunk = s.take_upstream_body(sid);
                let r = s.record(sid);
                let u = r.as_ref().and_then(|r| r.upstream_request.as_ref());
                let complete =
                    r.as_ref().is_none_or(|r| r.finished) || u.is_some_and(|u| u.complete);
                // The stream ended (a local reply, a reset) before its body did.
                let cut = r
                    .as_ref()
                    .is_none_or(|r| r.finished && !u.is_some_and(|u| u.complete));
                (chunk, complete, cut)
            };
            sent += chunk.len() as u64;
            // A body that does not match the content-length left in place: the request is
            // aborted rather than sent with broken framing (the record has the error).
            let overlong = declared.is_some_and(|d| sent > d);
            let short = complete && !cut && declared.is_some_and(|d| sent < d);
            if overlong || short {
                let _ = btx
                    .send(Err(std::io::Error::other(
                        "request body does not match its content-length",
                    )))
                    .await;
                return kept_more;
            }
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
                clock2.request_done();
                return kept_more;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), notify2.notified()).await;
        }
    });
    let resp = clock.race(sender.send_request(req), Some(started)).await;
    if forwarder.is_finished() || resp.is_ok() {
        if let Ok(more) = forwarder.await {
            kept.extend_from_slice(&more);
        }
    } else {
        forwarder.abort();
    }
    let resp = resp?.map_err(|_| Failure::Reset)?;
    clock.touch();
    let status = resp.status().as_u16();
    // Envoy's filters see the response headers as the upstream sent them, content-length and
    // transfer-encoding included; hop-by-hop headers are dropped only towards the client.
    let hs: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok((status, hs, resp.into_body()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_conditions_follow_envoy() {
        let on = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(Failure::PerTryTimeout.retriable(&on(&["5xx"])));
        assert!(Failure::PerTryTimeout.retriable(&on(&["gateway-error"])));
        assert!(Failure::PerTryTimeout.retriable(&on(&["reset"])));
        assert!(!Failure::PerTryTimeout.retriable(&on(&["connect-failure", "429"])));
        assert!(Failure::Reset.retriable(&on(&["gateway-error"])));
        assert!(Failure::Connect.retriable(&on(&["connect-failure"])));
        assert!(!Failure::RouteTimeout.retriable(&on(&["5xx", "reset"])));
        assert!(!Failure::IdleTimeout.retriable(&on(&["5xx", "reset"])));
    }
}
