//! The gRPC front: HTTP/2 without TLS, one unary method, gRPC framing and trailers.

use crate::messages::RateLimitRequest;
use crate::service::Service;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpListener;

/// The one method this service answers.
pub const PATH: &str = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

/// A gRPC answer body: at most one message, then the trailers.
pub struct GrpcBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(d) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }
}

fn answer(message: Option<Vec<u8>>, status: u32, detail: &str) -> Response<GrpcBody> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(status));
    if let Ok(v) = HeaderValue::from_str(detail) {
        if !detail.is_empty() {
            trailers.insert("grpc-message", v);
        }
    }
    let data = message.map(|m| {
        let mut framed = Vec::with_capacity(m.len() + 5);
        framed.push(0);
        framed.extend_from_slice(&(m.len() as u32).to_be_bytes());
        framed.extend_from_slice(&m);
        Bytes::from(framed)
    });
    let mut resp = Response::new(GrpcBody {
        data,
        trailers: Some(trailers),
    });
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    resp
}

/// The first gRPC message of a request body.
fn unframe(body: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(body.get(1..5)?.try_into().ok()?) as usize;
    if body.first() != Some(&0) {
        return None;
    }
    body.get(5..5 + len)
}

fn log_line(req: &RateLimitRequest, hits: u64, codes: &[i32]) {
    let descriptors: Vec<Vec<[&str; 2]>> = req
        .descriptors
        .iter()
        .map(|d| {
            d.entries
                .iter()
                .map(|e| [e.key.as_str(), e.value.as_str()])
                .collect()
        })
        .collect();
    let line = serde_json::json!({
        "domain": req.domain,
        "hits_addend": req.hits_addend,
        "hits": hits,
        "descriptors": descriptors,
        "codes": codes,
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn handle(service: Arc<Service>, req: Request<Incoming>) -> Response<GrpcBody> {
    if req.uri().path() != PATH {
        return answer(None, 12, "unknown method");
    }
    let Ok(body) = req.into_body().collect().await else {
        return answer(None, 13, "cannot read the request");
    };
    let body = body.to_bytes();
    let Some(msg) = unframe(&body) else {
        return answer(None, 13, "malformed gRPC frame");
    };
    let Ok(request) = RateLimitRequest::decode(msg) else {
        return answer(None, 13, "cannot decode RateLimitRequest");
    };
    match service.should_rate_limit(&request).await {
        Ok(outcome) => {
            let codes: Vec<i32> = outcome.response.statuses.iter().map(|s| s.code).collect();
            log_line(&request, outcome.hits, &codes);
            answer(Some(outcome.response.encode_to_vec()), 0, "")
        }
        Err(e) => {
            eprintln!("aigw-rls: {e}");
            answer(None, 14, "rate limit storage unavailable")
        }
    }
}

/// Serves connections on `listener` until the process ends.
pub async fn serve(listener: TcpListener, service: Arc<Service>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let service = Arc::clone(&service);
                async move { Ok::<_, Infallible>(handle(service, req).await) }
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}
