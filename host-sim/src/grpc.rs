//! Real gRPC call-outs for clusters mapped to addresses: one unary call over plain-text HTTP/2
//! (h2c), with gRPC's length-prefixed framing, and failures mapped to gRPC statuses the way
//! Envoy's async client reports them: the call's timeout → DEADLINE_EXCEEDED (4), connect
//! failure or reset → UNAVAILABLE (14), a non-200 HTTP answer → the status Envoy derives from it.

// Without the `grpc` feature the HTTP/2 client is left out, and with it the only users of
// the framing helpers, some status codes and the message outcome.
#![cfg_attr(not(feature = "grpc"), allow(dead_code))]

use crate::vm::GrpcCallRecord;
#[cfg(feature = "grpc")]
use bytes::Bytes;
#[cfg(feature = "grpc")]
use http_body_util::{BodyExt, Full};
#[cfg(feature = "grpc")]
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
#[cfg(feature = "grpc")]
use std::time::Duration;

/// gRPC status codes used here.
pub mod code {
    /// Success.
    pub const OK: u32 = 0;
    /// Unknown error.
    pub const UNKNOWN: u32 = 2;
    /// The call's deadline passed.
    pub const DEADLINE_EXCEEDED: u32 = 4;
    /// Permission denied (HTTP 403).
    pub const PERMISSION_DENIED: u32 = 7;
    /// Unimplemented (HTTP 404).
    pub const UNIMPLEMENTED: u32 = 12;
    /// Internal error (HTTP 400, malformed answers).
    pub const INTERNAL: u32 = 13;
    /// The service is unavailable (connect failure, reset, HTTP 429/502/503/504).
    pub const UNAVAILABLE: u32 = 14;
    /// Unauthenticated (HTTP 401).
    pub const UNAUTHENTICATED: u32 = 16;
}

/// How a unary gRPC call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcOutcome {
    /// grpc-status 0 with the response message.
    Message(Vec<u8>),
    /// A failure: gRPC status code and message.
    Status(u32, String),
}

/// Envoy's mapping of an HTTP status to a gRPC status (`Grpc::Utility::httpToGrpcStatus`).
pub fn http_to_grpc_status(http: u16) -> u32 {
    match http {
        400 => code::INTERNAL,
        401 => code::UNAUTHENTICATED,
        403 => code::PERMISSION_DENIED,
        404 => code::UNIMPLEMENTED,
        429 | 502 | 503 | 504 => code::UNAVAILABLE,
        _ => code::UNKNOWN,
    }
}

/// Without the `grpc` feature there is no HTTP/2 client: the call fails as a connect failure
/// would, naming the missing feature.
#[cfg(not(feature = "grpc"))]
pub fn unary(_addr: SocketAddr, _authority: &str, _call: &GrpcCallRecord) -> GrpcOutcome {
    unavailable("host-sim built without the `grpc` feature")
}

/// Makes the call on a thread of its own (callers may be inside an async runtime) and waits.
#[cfg(feature = "grpc")]
pub fn unary(addr: SocketAddr, authority: &str, call: &GrpcCallRecord) -> GrpcOutcome {
    let (authority, call) = (authority.to_string(), call.clone());
    let worker = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return GrpcOutcome::Status(code::INTERNAL, format!("runtime: {e}")),
        };
        rt.block_on(async {
            let fut = call_h2c(addr, &authority, &call);
            if call.timeout_ms == 0 {
                return fut.await;
            }
            match tokio::time::timeout(Duration::from_millis(call.timeout_ms as u64), fut).await {
                Ok(o) => o,
                Err(_) => {
                    GrpcOutcome::Status(code::DEADLINE_EXCEEDED, "upstream request timeout".into())
                }
            }
        })
    });
    worker.join().unwrap_or_else(|_| {
        GrpcOutcome::Status(code::INTERNAL, "gRPC call-out thread failed".into())
    })
}

fn unavailable(reason: &str) -> GrpcOutcome {
    GrpcOutcome::Status(
        code::UNAVAILABLE,
        format!(
            "upstream connect error or disconnect/reset before headers. reset reason: {reason}"
        ),
    )
}

/// One length-prefixed gRPC message: compression flag 0, 4-byte big-endian length, bytes.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The first message of a gRPC body (None when the body is not well framed).
pub fn unframe(body: &[u8]) -> Option<Vec<u8>> {
    let len = u32::from_be_bytes(body.get(1..5)?.try_into().ok()?) as usize;
    body.get(5..5 + len).map(|m| m.to_vec())
}

#[cfg(feature = "grpc")]
async fn call_h2c(addr: SocketAddr, authority: &str, call: &GrpcCallRecord) -> GrpcOutcome {
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
        return unavailable("connection failure");
    };
    let Ok((mut sender, conn)) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await
    else {
        return unavailable("protocol error");
    };
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{authority}/{}/{}",
            call.service_name, call.method
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in &call.initial_metadata {
        req = req.header(k.as_str(), v.as_str());
    }
    if call.timeout_ms > 0 {
        req = req.header("grpc-timeout", format!("{}m", call.timeout_ms));
    }
    let Ok(req) = req.body(Full::new(Bytes::from(frame(&call.message)))) else {
        return GrpcOutcome::Status(code::INTERNAL, "bad request metadata".into());
    };
    let Ok(resp) = sender.send_request(req).await else {
        return unavailable("connection termination");
    };
    let (parts, body) = resp.into_parts();
    if parts.status != hyper::StatusCode::OK {
        let s = parts.status.as_u16();
        return GrpcOutcome::Status(http_to_grpc_status(s), format!("HTTP status {s}"));
    }
    let Ok(collected) = body.collect().await else {
        return unavailable("connection termination");
    };
    let trailers = collected.trailers().cloned();
    let bytes = collected.to_bytes();
    // grpc-status comes in the trailers, or in the headers of a trailers-only answer.
    let status_of = |h: &hyper::HeaderMap| {
        h.get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
    };
    let message_of = |h: &hyper::HeaderMap| {
        h.get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (status, message) = match trailers.as_ref().and_then(|t| status_of(t).map(|s| (s, t))) {
        Some((s, t)) => (s, message_of(t)),
        None => match status_of(&parts.headers) {
            Some(s) => (s, message_of(&parts.headers)),
            None => return GrpcOutcome::Status(code::UNKNOWN, "no grpc-status".into()),
        },
    };
    if status != code::OK {
        return GrpcOutcome::Status(status, message);
    }
    match unframe(&bytes) {
        Some(m) => GrpcOutcome::Message(m),
        None if bytes.is_empty() => GrpcOutcome::Message(Vec::new()),
        None => GrpcOutcome::Status(code::INTERNAL, "malformed gRPC message".into()),
    }
}

/// A local reply on a gRPC request, as Envoy sends it: a trailers-only answer (HTTP 200,
/// `content-type: application/grpc`, `grpc-status` = the plugin's gRPC status, or the one
/// Envoy derives from the HTTP status, `grpc-message` = the body) with no body. Other requests
/// keep the reply as it is. Returns (status, body, headers).
pub fn local_reply(
    request_is_grpc: bool,
    status: u16,
    body: Vec<u8>,
    mut headers: crate::abi::Headers,
    grpc_status: i32,
) -> (u16, Vec<u8>, crate::abi::Headers) {
    if !request_is_grpc {
        return (status, body, headers);
    }
    let code = u32::try_from(grpc_status).unwrap_or_else(|_| http_to_grpc_status(status));
    headers.retain(|(k, _)| k != "content-type" && k != "grpc-status" && k != "grpc-message");
    headers.push(("content-type".into(), b"application/grpc".to_vec()));
    headers.push(("grpc-status".into(), code.to_string().into_bytes()));
    if !body.is_empty() {
        headers.push(("grpc-message".into(), percent_encode(&body).into_bytes()));
    }
    (200, Vec::new(), headers)
}

/// gRPC's percent-encoding of `grpc-message`: printable ASCII except '%' stays.
fn percent_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for &c in b {
        if (0x20..0x7f).contains(&c) && c != b'%' {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}
