//! Unary gRPC call-outs (`proxy_grpc_call`), in the same style as HTTP call-outs: the
//! outcome is handed to a closure.
//!
//! * [`Ctx::grpc_call`]: the closure runs with the stream's plugin and context; it is dropped
//!   when the stream is gone before the answer.
//! * [`Ctx::grpc_call_detached`]: the call is made on behalf of the root context (the host
//!   keeps it when the stream ends, where a stream's own calls are cancelled), for work at the
//!   end of a stream whose request must still reach the service (usage reports). Its closure
//!   gets the outcome when the host delivers it while this VM still knows where to send it;
//!   proxy-wasm routes answers by the context that was running, so an answer arriving after
//!   that stream was destroyed is not seen by the module. The call itself is not affected.

use super::{Ctx, Plugin};
use crate::host::{self, BufferType, HostError};
use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

/// One unary gRPC call: the cluster, the fully qualified service and method, initial
/// metadata and the serialized request message.
#[derive(Debug, Clone, Copy)]
pub struct GrpcCall<'a> {
    /// The gateway's cluster name (Envoy: a cluster with HTTP/2 to the service).
    pub cluster: &'a str,
    /// The service, e.g. `envoy.service.ratelimit.v3.RateLimitService`.
    pub service: &'a str,
    /// The method, e.g. `ShouldRateLimit`.
    pub method: &'a str,
    /// Initial metadata (request headers) to add.
    pub metadata: &'a [(&'a str, &'a [u8])],
    /// The serialized request message (without gRPC framing).
    pub message: &'a [u8],
    /// How long the host waits for the answer.
    pub timeout: Duration,
}

/// Well-known gRPC status codes.
pub mod code {
    /// The deadline (call timeout) passed.
    pub const DEADLINE_EXCEEDED: u32 = 4;
    /// The service could not be reached (connect failure, reset, no healthy host).
    pub const UNAVAILABLE: u32 = 14;
}

/// Why a gRPC call did not produce a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcError {
    /// The call ended with a non-OK gRPC status.
    Status {
        /// The gRPC status code.
        code: u32,
        /// The status message the host reported (may be empty).
        message: String,
    },
    /// The host refused to start the call or to hand over the answer.
    Host(HostError),
}

impl GrpcError {
    /// A short label for metrics: `deadline_exceeded`, `unavailable`, `status` (another
    /// gRPC status) or `host` (the host refused the call).
    pub fn reason(&self) -> &'static str {
        match self {
            GrpcError::Status {
                code: code::DEADLINE_EXCEEDED,
                ..
            } => "deadline_exceeded",
            GrpcError::Status {
                code: code::UNAVAILABLE,
                ..
            } => "unavailable",
            GrpcError::Status { .. } => "status",
            GrpcError::Host(_) => "host",
        }
    }
}

impl fmt::Display for GrpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrpcError::Status { code, message } if message.is_empty() => {
                write!(f, "gRPC status {code}")
            }
            GrpcError::Status { code, message } => write!(f, "gRPC status {code}: {message}"),
            GrpcError::Host(e) => write!(f, "gRPC call failed: {e}"),
        }
    }
}

impl std::error::Error for GrpcError {}

/// The outcome handed to a gRPC callback: the response message, or why there is none.
pub type GrpcResult = Result<Vec<u8>, GrpcError>;

pub(crate) type StreamGrpcCallback<P> = Box<dyn FnOnce(&mut P, &mut Ctx<P>, GrpcResult)>;

type DetachedCallback = Box<dyn FnOnce(GrpcResult)>;

/// Most detached calls waiting at once; the oldest is forgotten beyond it.
const MAX_DETACHED: usize = 1024;

thread_local! {
    /// Detached calls: token, when to forget it (ms since the epoch), closure.
    static DETACHED: RefCell<Vec<(u32, u64, DetachedCallback)>> = const { RefCell::new(Vec::new()) };
}

fn dispatch(call: &GrpcCall<'_>) -> Result<u32, HostError> {
    host::dispatch_grpc_call(
        call.cluster,
        call.service,
        call.method,
        call.metadata,
        call.message,
        call.timeout,
    )
}

/// Reads the outcome of the call whose callback is running (`status_code` 0: a message of
/// `size` bytes is in the gRPC receive buffer).
pub(crate) fn read_result(status_code: u32, size: usize) -> GrpcResult {
    if status_code != 0 {
        let message = host::grpc_status().map(|(_, m)| m).unwrap_or_default();
        return Err(GrpcError::Status {
            code: status_code,
            message,
        });
    }
    if size == 0 {
        return Ok(Vec::new());
    }
    host::get_buffer(BufferType::GrpcMessage, 0, size).map_err(GrpcError::Host)
}

/// Runs the detached callback of `token`, if there is one; returns whether there was.
pub(crate) fn deliver_detached(token: u32, status_code: u32, size: usize) -> bool {
    let found = DETACHED.with(|d| {
        let mut d = d.try_borrow_mut().ok()?;
        let at = d.iter().position(|(t, _, _)| *t == token)?;
        Some(d.remove(at).2)
    });
    match found {
        Some(callback) => {
            callback(read_result(status_code, size));
            true
        }
        None => false,
    }
}

fn remember_detached(token: u32, timeout: Duration, callback: DetachedCallback) {
    let now = host::now_millis().unwrap_or(0);
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    // Kept a minute past the call's timeout: an answer later than that will not come.
    let forget_at = now.saturating_add(ms).saturating_add(60_000);
    DETACHED.with(|d| {
        if let Ok(mut d) = d.try_borrow_mut() {
            d.retain(|(_, at, _)| *at > now);
            if d.len() >= MAX_DETACHED {
                drop(d.remove(0));
            }
            d.push((token, forget_at, callback));
        }
    });
}

impl<P: Plugin> Ctx<P> {
    /// Sends a unary gRPC call; `callback` runs with this stream's plugin and context when
    /// the answer (or a failure status, e.g. DEADLINE_EXCEEDED after `timeout`) arrives.
    /// Typically the handler returns [`Flow::Pause`](super::Flow::Pause) and the callback
    /// resumes the stream or answers it.
    pub fn grpc_call<F>(&mut self, call: &GrpcCall<'_>, callback: F) -> Result<(), HostError>
    where
        F: FnOnce(&mut P, &mut Ctx<P>, GrpcResult) + 'static,
    {
        let token = dispatch(call)?;
        self.grpc_callouts.push((token, Box::new(callback)));
        Ok(())
    }

    /// Sends a unary gRPC call on behalf of the root context, so that the call outlives this
    /// stream (see the module documentation for when `callback` can run).
    pub fn grpc_call_detached<F>(
        &mut self,
        call: &GrpcCall<'_>,
        callback: F,
    ) -> Result<(), HostError>
    where
        F: FnOnce(GrpcResult) + 'static,
    {
        host::set_effective_context(self.root_id)?;
        let sent = dispatch(call);
        // Back to this stream for whatever the handler does next.
        let restored = host::set_effective_context(self.context_id());
        let token = sent?;
        remember_detached(token, call.timeout, Box::new(callback));
        restored
    }

    pub(crate) fn take_grpc_callout(&mut self, token: u32) -> Option<StreamGrpcCallback<P>> {
        let at = self.grpc_callouts.iter().position(|(t, _)| *t == token)?;
        Some(self.grpc_callouts.swap_remove(at).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_usual_failures() {
        let s = |code| GrpcError::Status {
            code,
            message: String::new(),
        };
        assert_eq!(s(4).reason(), "deadline_exceeded");
        assert_eq!(s(14).reason(), "unavailable");
        assert_eq!(s(13).reason(), "status");
        assert_eq!(GrpcError::Host(HostError::ParseFailure).reason(), "host");
        assert_eq!(s(14).to_string(), "gRPC status 14");
        let m = GrpcError::Status {
            code: 4,
            message: "timeout".into(),
        };
        assert_eq!(m.to_string(), "gRPC status 4: timeout");
    }

    #[test]
    fn native_reads_fail_cleanly() {
        // No host natively: a failure status still yields the code, a message read an error.
        assert!(matches!(
            read_result(14, 0),
            Err(GrpcError::Status { code: 14, .. })
        ));
        assert_eq!(read_result(0, 0), Ok(Vec::new()));
        assert_eq!(
            read_result(0, 3),
            Err(GrpcError::Host(HostError::Unimplemented))
        );
        assert!(!deliver_detached(7, 0, 0));
    }
}
