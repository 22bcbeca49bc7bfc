//! HTTP call-out requests, responses and errors.

use crate::host::HostError;
use std::fmt;

/// An HTTP request to send to a cluster with `Ctx::http_call` / `RootCtx::http_call`.
///
/// ```
/// use aigw::plugin::CallRequest;
///
/// let req = CallRequest::post("moderation.internal", "/v1/check", br#"{"text":"hi"}"#.to_vec())
///     .header("content-type", "application/json");
/// assert_eq!(req.method(), "POST");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    method: String,
    path: String,
    authority: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl CallRequest {
    /// A request with any method.
    pub fn new(method: &str, authority: &str, path: &str) -> CallRequest {
        CallRequest {
            method: method.to_string(),
            path: path.to_string(),
            authority: authority.to_string(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// A GET request.
    pub fn get(authority: &str, path: &str) -> CallRequest {
        CallRequest::new("GET", authority, path)
    }

    /// A POST request with a body.
    pub fn post(authority: &str, path: &str, body: Vec<u8>) -> CallRequest {
        CallRequest::new("POST", authority, path).body(body)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> CallRequest {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Vec<u8>) -> CallRequest {
        self.body = Some(body);
        self
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The pseudo-headers followed by the extra headers, as the host expects them.
    pub(crate) fn header_pairs(&self) -> Vec<(&str, &str)> {
        let mut pairs = Vec::with_capacity(3 + self.headers.len());
        pairs.push((":method", self.method.as_str()));
        pairs.push((":path", self.path.as_str()));
        pairs.push((":authority", self.authority.as_str()));
        pairs.extend(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        pairs
    }

    /// The body, if any.
    pub(crate) fn body_bytes(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }
}

/// A call-out response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResponse {
    /// HTTP status (from `:status`).
    pub status: u16,
    /// Response headers, in order (including `:status`).
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl CallResponse {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (invalid sequences replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a call-out did not produce a successful (2xx) response. Variants that come from a
/// response keep it, so its status and body stay available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The call was reset: no headers and no body arrived.
    Reset,
    /// The gateway timed out waiting (a 504, typically the router's "upstream request timeout").
    Timeout(CallResponse),
    /// The gateway could not reach the cluster (a router-made 503 such as "upstream connect
    /// error ..." or "no healthy upstream").
    Unreachable(CallResponse),
    /// Any other non-2xx status.
    Status(CallResponse),
    /// The host refused to start the call or to hand over the response.
    Host(HostError),
}

impl CallError {
    /// The response behind the error, if one arrived.
    pub fn response(&self) -> Option<&CallResponse> {
        match self {
            CallError::Timeout(r) | CallError::Unreachable(r) | CallError::Status(r) => Some(r),
            CallError::Reset | CallError::Host(_) => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Reset => f.write_str("call-out reset"),
            CallError::Timeout(_) => f.write_str("call-out timed out"),
            CallError::Unreachable(r) => write!(f, "call-out target unreachable ({})", r.status),
            CallError::Status(r) => write!(f, "call-out returned status {}", r.status),
            CallError::Host(e) => write!(f, "call-out failed: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

/// The result handed to a call-out callback.
pub type CallResult = Result<CallResponse, CallError>;

/// Classifies a call-out response from its headers and body (`None` headers = reset).
pub(crate) fn classify(headers: Vec<(String, String)>, body: Vec<u8>) -> CallResult {
    if headers.is_empty() && body.is_empty() {
        return Err(CallError::Reset);
    }
    let status = headers
        .iter()
        .find(|(k, _)| k == ":status")
        .and_then(|(_, v)| v.trim().parse::<u16>().ok());
    let Some(status) = status else {
        return Err(CallError::Reset);
    };
    let resp = CallResponse {
        status,
        headers,
        body,
    };
    match status {
        200..=299 => Ok(resp),
        504 => Err(CallError::Timeout(resp)),
        503 if is_router_unreachable(&resp.body) => Err(CallError::Unreachable(resp)),
        _ => Err(CallError::Status(resp)),
    }
}

fn is_router_unreachable(body: &[u8]) -> bool {
    body.starts_with(b"upstream connect error")
        || body.starts_with(b"no healthy upstream")
        || body.starts_with(b"no cluster")
}

/// Reads the response of the call-out whose callback is running and classifies it.
pub(crate) fn read_call_result(num_headers: usize, body_size: usize) -> CallResult {
    use crate::host::{self, BufferType, MapType};
    if num_headers == 0 && body_size == 0 {
        return Err(CallError::Reset);
    }
    let headers = host::get_headers(MapType::CallResponseHeaders).map_err(CallError::Host)?;
    let body = if body_size == 0 {
        Vec::new()
    } else {
        host::get_buffer(BufferType::CallResponseBody, 0, body_size).map_err(CallError::Host)?
    };
    classify(headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(status: &str) -> Vec<(String, String)> {
        vec![
            (":status".into(), status.into()),
            ("Content-Type".into(), "text/plain".into()),
        ]
    }

    #[test]
    fn classification() {
        assert_eq!(classify(vec![], vec![]), Err(CallError::Reset));
        let ok = classify(h("200"), b"{}".to_vec()).unwrap();
        assert_eq!(ok.status, 200);
        assert_eq!(ok.header("content-type"), Some("text/plain"));
        match classify(h("504"), b"upstream request timeout".to_vec()) {
            Err(CallError::Timeout(r)) => assert_eq!(r.text(), "upstream request timeout"),
            other => panic!("{other:?}"),
        }
        let connect = b"upstream connect error or disconnect/reset before headers".to_vec();
        assert!(
            matches!(classify(h("503"), connect), Err(CallError::Unreachable(r)) if r.status == 503)
        );
        assert!(
            matches!(classify(h("503"), b"{\"busy\":1}".to_vec()), Err(CallError::Status(r)) if r.status == 503)
        );
        let e = classify(h("429"), b"slow".to_vec()).unwrap_err();
        assert_eq!(e.response().map(|r| r.status), Some(429));
        assert_eq!(e.to_string(), "call-out returned status 429");
        assert_eq!(classify(h("abc"), vec![1]), Err(CallError::Reset));
    }

    #[test]
    fn request_pairs() {
        let r = CallRequest::get("svc", "/p").header("x", "y");
        assert_eq!(
            r.header_pairs(),
            vec![
                (":method", "GET"),
                (":path", "/p"),
                (":authority", "svc"),
                ("x", "y")
            ]
        );
        assert_eq!(r.body_bytes(), None);
    }
}
