//! Provider-neutral pieces of a response: frames of a stream, whole bodies, error shapes.

use bytes::Bytes;
use serde_json::{json, Value};

/// One piece of a streamed body and how many output tokens it carries (for pacing and KV
/// accounting).
#[derive(Clone, Debug)]
pub struct Frame {
    /// Bytes as written to the wire.
    pub bytes: Bytes,
    /// Output tokens in this piece (0 for framing events).
    pub tokens: u64,
}

impl Frame {
    /// A frame from anything byte-like.
    pub fn new(bytes: impl Into<Bytes>, tokens: u64) -> Frame {
        Frame {
            bytes: bytes.into(),
            tokens,
        }
    }
}

/// A response body: all at once or as a paced stream.
#[derive(Debug)]
pub enum Payload {
    /// A complete body.
    Full(Vec<u8>),
    /// Frames sent one by one.
    Stream(Vec<Frame>),
}

/// A response before it goes on the wire.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers (content-type included).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub payload: Payload,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            payload: Payload::Full(v.to_string().into_bytes()),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// A streamed reply with this content type.
    pub fn stream(content_type: &str, frames: Vec<Frame>) -> Reply {
        Reply {
            status: 200,
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("cache-control".into(), "no-cache".into()),
            ],
            payload: Payload::Stream(frames),
        }
    }
}

/// Which provider's conventions a route follows (error shapes, auth failure status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// OpenAI and OpenAI-compatible (Azure, vLLM, DashScope compatible mode …).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini / Vertex generateContent.
    Gemini,
    /// AWS Bedrock Converse.
    Bedrock,
}

/// One SSE `data:` event (`\n\n` terminated).
pub fn sse_data(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// One SSE event with an `event:` line.
pub fn sse_event(name: &str, v: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {v}\n\n"))
}

/// An error reply in `family`'s shape. 429 replies carry `retry-after`.
pub fn error(family: Family, status: u16, message: &str, retry_after: u64) -> Reply {
    let r = match family {
        Family::OpenAi => {
            let (ty, code) = match status {
                401 => ("invalid_request_error", json!("invalid_api_key")),
                403 => ("invalid_request_error", json!("permission_denied")),
                404 => ("invalid_request_error", json!("model_not_found")),
                429 => ("requests", json!("rate_limit_exceeded")),
                400..=499 => ("invalid_request_error", Value::Null),
                _ => ("server_error", Value::Null),
            };
            Reply::json(
                status,
                &json!({"error": {"message": message, "type": ty, "param": null, "code": code}}),
            )
        }
        Family::Anthropic => {
            let ty = match status {
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                503 | 529 => "overloaded_error",
                400..=499 => "invalid_request_error",
                _ => "api_error",
            };
            Reply::json(
                status,
                &json!({"type": "error", "error": {"type": ty, "message": message}}),
            )
        }
        Family::Gemini => {
            let st = match status {
                400 => "INVALID_ARGUMENT",
                401 => "UNAUTHENTICATED",
                403 => "PERMISSION_DENIED",
                404 => "NOT_FOUND",
                409 => "ABORTED",
                429 => "RESOURCE_EXHAUSTED",
                499 => "CANCELLED",
                501 => "UNIMPLEMENTED",
                503 => "UNAVAILABLE",
                504 => "DEADLINE_EXCEEDED",
                _ if status < 500 => "FAILED_PRECONDITION",
                _ => "INTERNAL",
            };
            Reply::json(
                status,
                &json!({"error": {"code": status, "message": message, "status": st}}),
            )
        }
        Family::Bedrock => {
            let ty = bedrock_exception(status);
            Reply::json(status, &json!({"message": message})).header(
                "x-amzn-errortype",
                format!("{ty}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            )
        }
    };
    if status == 429 {
        r.header("retry-after", retry_after.to_string())
    } else {
        r
    }
}

/// The Bedrock exception name for a status.
pub fn bedrock_exception(status: u16) -> &'static str {
    match status {
        400 => "ValidationException",
        401 | 403 => "UnrecognizedClientException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ if status < 500 => "ValidationException",
        _ => "InternalServerException",
    }
}

/// Formats a gauge or counter value the way Prometheus clients do (`1.0`, `0.25`).
pub fn prom_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}
