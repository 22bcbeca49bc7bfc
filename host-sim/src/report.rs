//! What a test or the command line sees of a stream: the upstream request, the client's
//! response, the local reply; plus serde helpers for byte fields.

use crate::abi::Headers;

/// Serializes bytes as a (lossy) UTF-8 string, for JSON reports.
pub mod lossy {
    /// serde `serialize_with` for `Vec<u8>`.
    pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(b))
    }
}

fn headers_json<S: serde::Serializer>(h: &Headers, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(h.len()))?;
    for (k, v) in h {
        seq.serialize_element(&(k, String::from_utf8_lossy(v)))?;
    }
    seq.end()
}

/// Looks up the first value of a header (case-insensitive) as a string.
pub fn header<'a>(h: &'a Headers, key: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// Checks a message's `content-length` (if any) against the body bytes sent. Returns the
/// error to record on a mismatch or an unreadable value.
pub fn framing_error(h: &Headers, sent: u64) -> Option<String> {
    let values: Vec<&[u8]> = h
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.as_slice())
        .collect();
    let first = *values.first()?;
    let text = String::from_utf8_lossy(first);
    let Ok(declared) = text.trim().parse::<u64>() else {
        return Some(format!("invalid content-length {text:?}"));
    };
    if values.iter().any(|v| *v != first) {
        return Some("several different content-length values".into());
    }
    (declared != sent)
        .then(|| format!("content-length is {declared} but {sent} body bytes were sent"))
}

/// What reached the upstream.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UpstreamRequest {
    /// Headers as the upstream got them (pseudo-headers included).
    #[serde(serialize_with = "headers_json")]
    pub headers: Headers,
    /// The body bytes.
    #[serde(with = "lossy")]
    pub body: Vec<u8>,
    /// Trailers.
    #[serde(serialize_with = "headers_json")]
    pub trailers: Headers,
    /// The whole request arrived (end of stream).
    pub complete: bool,
    /// Body pieces as they arrived.
    #[serde(skip)]
    pub chunks: Vec<Vec<u8>>,
    /// Body bytes sent to the upstream in all (`body` may have been drained by the gateway).
    #[serde(skip)]
    pub body_bytes: u64,
    /// The request went out with a `content-length` that does not match the body bytes sent
    /// (a filter changed the body and left the header): what Envoy's codec or the upstream
    /// treats as a protocol error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framing_error: Option<String>,
}

/// `header`, `body_str` and `json` of a recorded message (a type with `headers` and `body`).
macro_rules! message_accessors {
    ($($message:ty),*) => {$(
        impl $message {
            /// First value of a header.
            pub fn header(&self, key: &str) -> Option<&str> {
                header(&self.headers, key)
            }

            /// The body as text (lossy).
            pub fn body_str(&self) -> String {
                String::from_utf8_lossy(&self.body).into_owned()
            }

            /// The body parsed as JSON (Null when it is not JSON).
            pub fn json(&self) -> serde_json::Value {
                serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
            }
        }
    )*};
}

message_accessors!(UpstreamRequest, ClientResponse);

/// What the client received.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClientResponse {
    /// The HTTP status (0 until headers arrived).
    pub status: u16,
    /// Response headers (without `:status`).
    #[serde(serialize_with = "headers_json")]
    pub headers: Headers,
    /// The body bytes.
    #[serde(with = "lossy")]
    pub body: Vec<u8>,
    /// Body pieces in the order they reached the client.
    #[serde(skip)]
    pub chunks: Vec<Vec<u8>>,
    /// Trailers.
    #[serde(serialize_with = "headers_json")]
    pub trailers: Headers,
    /// End of stream reached the client.
    pub complete: bool,
    /// The stream was reset.
    pub reset: bool,
    /// Why it was reset, in Envoy's response-code-details words where Envoy has them
    /// (`upstream_reset_after_response_started{connection_termination}`,
    /// `upstream_response_timeout`, `stream_idle_timeout`, `downstream_remote_disconnect`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_reason: Option<String>,
    /// Body bytes sent to the client in all (`body` may have been drained by the gateway).
    #[serde(skip)]
    pub body_bytes: u64,
    /// The response went out with a `content-length` that does not match the body bytes sent
    /// (a filter changed the body and left the header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framing_error: Option<String>,
}

/// A local reply a plugin (or the host) sent instead of the upstream's answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u16,
    /// Response code details (for example `wasm_fail_stream`).
    pub details: String,
    /// Body as sent.
    #[serde(with = "lossy")]
    pub body: Vec<u8>,
    /// Headers the plugin added.
    #[serde(serialize_with = "headers_json")]
    pub headers: Headers,
    /// Index of the filter that sent it (None: the host itself).
    pub filter: Option<usize>,
}

/// Everything observable about one stream.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StreamRecord {
    /// The stream's id (to keep driving a stream that is still open).
    pub stream_id: u64,
    /// The worker that served it.
    pub worker: usize,
    /// What reached the upstream (None when nothing did).
    pub upstream_request: Option<UpstreamRequest>,
    /// What the client got.
    pub response: ClientResponse,
    /// The local reply, if one was sent.
    pub local_reply: Option<LocalReply>,
    /// The stream has ended (logged and deleted).
    pub finished: bool,
    /// Why the stream had not ended when this record was taken (None once it has): which
    /// filter holds which part of it, or what it waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
    /// Filter state properties the plugins set (`set_property`).
    #[serde(skip)]
    pub filter_state: std::collections::HashMap<String, Vec<u8>>,
    /// The upstream host a plugin chose with Higress's `proxy_set_upstream_override_host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_override_host: Option<String>,
}
