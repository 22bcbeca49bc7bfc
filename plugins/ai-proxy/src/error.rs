//! Translation errors and translation of provider error bodies into the client's protocol.
//!
//! A [`TranslateError`] carries the HTTP status to answer with and renders itself as an OpenAI
//! error body (`{"error":{"message","type","param","code"}}`) or an Anthropic one
//! (`{"type":"error","error":{"type","message"}}`).

use crate::providers::Protocol;
use aigw::llm::stream::{anthropic_error_type, openai_error_type};
use serde_json::{json, Map, Value};

/// Why a request or response could not be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    /// HTTP status to answer the client with.
    pub status: u16,
    /// OpenAI error `type` (`invalid_request_error`, `api_error`...).
    pub kind: &'static str,
    /// Human-readable reason.
    pub message: String,
    /// The request field at fault, e.g. `messages[2].content[1]`.
    pub param: Option<String>,
    /// Machine-readable code.
    pub code: Option<String>,
}

impl TranslateError {
    /// A 400 for a request field that cannot be mapped to the upstream protocol.
    pub fn unsupported(param: impl Into<String>, message: impl Into<String>) -> Self {
        TranslateError {
            status: 400,
            kind: "invalid_request_error",
            message: message.into(),
            param: Some(param.into()),
            code: Some("unsupported_parameter".to_string()),
        }
    }

    /// A 400 for a malformed request field.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        TranslateError {
            status: 400,
            kind: "invalid_request_error",
            message: message.into(),
            param: Some(param.into()),
            code: Some("invalid_value".to_string()),
        }
    }

    /// A 400 for a body that is not strict JSON (a repeated key, a byte order mark):
    /// parsers disagree on such bodies, so the gateway does not guess.
    pub fn not_strict(problem: &aigw::json::JsonProblem) -> Self {
        let param = match problem {
            aigw::json::JsonProblem::DuplicateKey { key, depth: 0 } => {
                Some(aigw::log::untrusted(key).to_string())
            }
            _ => None,
        };
        TranslateError {
            status: 400,
            kind: "invalid_request_error",
            message: problem.to_string(),
            param,
            code: Some("invalid_json".to_string()),
        }
    }

    /// A 502 for an upstream answer that cannot be understood or mapped.
    pub fn upstream(message: impl Into<String>) -> Self {
        TranslateError {
            status: 502,
            kind: "api_error",
            message: message.into(),
            param: None,
            code: Some("bad_upstream_response".to_string()),
        }
    }

    /// A 400 for a body that is not valid JSON of the expected shape.
    pub fn bad_json(err: &serde_json::Error) -> Self {
        TranslateError {
            status: 400,
            kind: "invalid_request_error",
            message: format!("request body is not a valid request: {err}"),
            param: None,
            code: Some("invalid_json".to_string()),
        }
    }

    /// The error as an OpenAI error body.
    pub fn to_openai_body(&self) -> String {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
        .to_string()
    }

    /// The error as an Anthropic error body.
    pub fn to_anthropic_body(&self) -> String {
        json!({"type": "error", "error": {
            "type": anthropic_error_type(self.status),
            "message": match &self.param {
                Some(p) => format!("{}: {}", p, self.message),
                None => self.message.clone(),
            },
        }})
        .to_string()
    }
}

impl std::fmt::Display for TranslateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.param {
            Some(p) => write!(f, "{} ({}): {}", self.status, p, self.message),
            None => write!(f, "{}: {}", self.status, self.message),
        }
    }
}

impl std::error::Error for TranslateError {}

/// A provider error normalized to status, OpenAI type and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// Status to answer the client with.
    pub status: u16,
    /// OpenAI error `type`.
    pub kind: &'static str,
    /// Provider's message (or a generic one when the body says nothing).
    pub message: String,
    /// Provider's own error code/type, kept for the `code` field.
    pub code: Option<String>,
}

impl UpstreamError {
    /// As an OpenAI error body.
    pub fn to_openai_body(&self) -> String {
        json!({"error": {"message": self.message, "type": self.kind, "param": null, "code": self.code}})
            .to_string()
    }

    /// As an Anthropic error body.
    pub fn to_anthropic_body(&self) -> String {
        json!({"type": "error", "error": {"type": anthropic_error_type(self.status), "message": self.message}})
            .to_string()
    }
}

/// `body` parsed as a JSON object; `None` when it is not one.
fn object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// The object under `error` in `body` (`{"error": {...}}`); `None` when there is none.
fn error_object(body: &[u8]) -> Option<Map<String, Value>> {
    match object(body)?.remove("error")? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// A string value, owned.
fn string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// An optional field read as serde reads `Option<T>` with `#[serde(default)]`: `Some(None)`
/// when missing or null, `Some(Some(x))` when `get` accepts it, and `None` (the whole body
/// does not have the expected shape) otherwise.
fn field<'a, T>(
    m: &'a Map<String, Value>,
    k: &str,
    get: impl Fn(&'a Value) -> Option<T>,
) -> Option<Option<T>> {
    match m.get(k) {
        None | Some(Value::Null) => Some(None),
        Some(v) => get(v).map(Some),
    }
}

/// Parses a provider error body written in `dialect`'s shape: OpenAI
/// `{"error":{"message","type","param","code"}}` (and every OpenAI-compatible provider),
/// Anthropic `{"type":"error","error":{"type","message"}}`, Gemini
/// `{"error":{"code","message","status"}}`, Bedrock `{"message"}` plus the `x-amzn-errortype`
/// header (or event-stream `:exception-type`), DashScope `{"code","message","request_id"}`
/// (possibly framed as an SSE event). `status` is the upstream HTTP status (for Bedrock event-stream
/// exceptions pass 0 and the exception type); `aws_error_type` is Bedrock's `x-amzn-errortype`
/// header or `:exception-type`. Unparseable bodies still yield an error with the upstream status.
pub fn parse_upstream_error(
    dialect: Protocol,
    status: u16,
    body: &[u8],
    aws_error_type: Option<&str>,
) -> UpstreamError {
    let (mut status, message, code) = match dialect {
        Protocol::AnthropicMessages => {
            let d = error_object(body)
                .and_then(|e| Some((field(&e, "type", string)?, field(&e, "message", string)?)));
            let (code, message) = d.unwrap_or_default();
            // Anthropic's 529 "overloaded" is a 503 to OpenAI clients.
            let st = match code.as_deref() {
                Some("overloaded_error") => 503,
                _ if status == 529 => 503,
                _ => status,
            };
            (st, message, code)
        }
        Protocol::GeminiGenerateContent => {
            let as_u16 = |v: &Value| v.as_u64().and_then(|n| u16::try_from(n).ok());
            let d = error_object(body).and_then(|e| {
                Some((
                    field(&e, "code", as_u16)?,
                    field(&e, "message", string)?,
                    field(&e, "status", string)?,
                ))
            });
            let (code, message, kind) = d.unwrap_or_default();
            let st = code.filter(|c| *c >= 400).unwrap_or(status);
            (st, message, kind)
        }
        Protocol::BedrockConverse => {
            // `message`, or `Message` (never both).
            let msg = object(body).and_then(|b| match (b.get("message"), b.get("Message")) {
                (Some(_), Some(_)) => None,
                _ => field(&b, "message", string)?.or(field(&b, "Message", string)?),
            });
            // The header looks like `ValidationException:http://internal.amazon.com/...`.
            let ty = aws_error_type.map(|t| t.split(':').next().unwrap_or(t).to_string());
            // Event-stream exception names are lower camel case: compare case-insensitively.
            let lower = ty.as_deref().map(str::to_ascii_lowercase);
            let st = match lower.as_deref() {
                Some("validationexception") => 400,
                Some("accessdeniedexception") | Some("unrecognizedclientexception") => 403,
                Some("resourcenotfoundexception") => 404,
                Some("modeltimeoutexception") => 408,
                Some("throttlingexception")
                | Some("servicequotaexceededexception")
                | Some("modelnotreadyexception") => 429,
                Some("serviceunavailableexception") => 503,
                Some("internalserverexception") => 500,
                Some("modelerrorexception") | Some("modelstreamerrorexception") => 502,
                _ => status,
            };
            (st, msg, ty)
        }
        Protocol::DashScopeText => {
            let b = object(crate::providers::dashscope::unframe(body))
                .and_then(|b| Some((field(&b, "code", string)?, field(&b, "message", string)?)));
            let (code, message) = b.unwrap_or_default();
            let code = code.filter(|c| !c.is_empty());
            // The HTTP status wins when it is an error; in-stream errors (status 0 or 200)
            // take it from the code.
            let st = if status >= 400 {
                status
            } else {
                code.as_deref()
                    .and_then(crate::providers::dashscope::dashscope_error_status)
                    .unwrap_or(status)
            };
            (st, message, code)
        }
        // OpenAI and every OpenAI-compatible provider (chat, Responses).
        _ => {
            let d = error_object(body).and_then(|e| {
                Some((
                    field(&e, "message", string)?,
                    field(&e, "code", |v| Some(v.clone()))?,
                    field(&e, "type", string)?,
                ))
            });
            let (message, code, kind) = d.unwrap_or_default();
            let code = match code {
                Some(Value::String(s)) => Some(s),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => kind,
            };
            (status, message, code)
        }
    };
    if status < 400 {
        status = 502;
    }
    UpstreamError {
        status,
        kind: openai_error_type(status),
        message: message.unwrap_or_else(|| format!("upstream returned HTTP {status}")),
        code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_overloaded_becomes_503_openai_error() {
        let e = parse_upstream_error(
            Protocol::AnthropicMessages,
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#,
            None,
        );
        assert_eq!(e.status, 503);
        let v: serde_json::Value = serde_json::from_str(&e.to_openai_body()).unwrap();
        assert_eq!(v["error"]["message"], "Overloaded");
        assert_eq!(v["error"]["code"], "overloaded_error");
        assert_eq!(v["error"]["type"], "service_unavailable");
    }

    #[test]
    fn gemini_and_bedrock_errors() {
        let e = parse_upstream_error(
            Protocol::GeminiGenerateContent,
            429,
            br#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#,
            None,
        );
        assert_eq!(
            (e.status, e.kind, e.code.as_deref()),
            (429, "rate_limit_exceeded", Some("RESOURCE_EXHAUSTED"))
        );
        let e = parse_upstream_error(
            Protocol::BedrockConverse,
            400,
            br#"{"message":"The provided model identifier is invalid."}"#,
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        );
        assert_eq!(
            (e.status, e.code.as_deref()),
            (400, Some("ValidationException"))
        );
        let a: serde_json::Value = serde_json::from_str(&e.to_anthropic_body()).unwrap();
        assert_eq!(a["error"]["type"], "invalid_request_error");
        let e = parse_upstream_error(
            Protocol::BedrockConverse,
            0,
            br#"{"message":"slow down"}"#,
            Some("throttlingException"),
        );
        assert_eq!(e.status, 429);
        let e = parse_upstream_error(
            Protocol::BedrockConverse,
            0,
            b"{}",
            Some("somethingNewException"),
        );
        assert_eq!(
            e.status, 502,
            "unknown exception without a status is a bad gateway"
        );
        let e = parse_upstream_error(Protocol::ChatCompletions, 401, b"<html>nope</html>", None);
        assert_eq!((e.status, e.kind), (401, "authentication_error"));
        assert!(e.message.contains("401"));
    }

    #[test]
    fn mistyped_or_doubled_fields_reject_the_body() {
        // A field of another type rejects the whole error object (as serde's structs did).
        let e = parse_upstream_error(
            Protocol::AnthropicMessages,
            400,
            br#"{"error":{"type":"invalid_request_error","message":5}}"#,
            None,
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (None, "upstream returned HTTP 400")
        );
        let e = parse_upstream_error(
            Protocol::ChatCompletions,
            429,
            br#"{"error":{"message":"slow down","code":42,"type":"rate"}}"#,
            None,
        );
        assert_eq!(
            (e.code.as_deref(), e.message.as_str()),
            (Some("42"), "slow down")
        );
        // Bedrock's `message` and `Message` name one field: both at once is no message.
        let body = br#"{"message":"a","Message":"b"}"#;
        let e = parse_upstream_error(Protocol::BedrockConverse, 400, body, None);
        assert_eq!(e.message, "upstream returned HTTP 400");
        let e = parse_upstream_error(Protocol::BedrockConverse, 400, br#"{"Message":"b"}"#, None);
        assert_eq!(e.message, "b");
    }

    #[test]
    fn dashscope_errors() {
        let e = parse_upstream_error(
            Protocol::DashScopeText,
            401,
            br#"{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"r-1"}"#,
            None,
        );
        assert_eq!(
            (e.status, e.kind, e.code.as_deref(), e.message.as_str()),
            (
                401,
                "authentication_error",
                Some("InvalidApiKey"),
                "Invalid API-key provided."
            )
        );
        let e = parse_upstream_error(
            Protocol::DashScopeText,
            0,
            b"id:1\nevent:error\n:HTTP_STATUS/429\ndata:{\"code\":\"Throttling.RateQuota\",\"message\":\"Requests rate limit exceeded\"}\n\n",
            None,
        );
        assert_eq!((e.status, e.kind), (429, "rate_limit_exceeded"));
        let e = parse_upstream_error(Protocol::DashScopeText, 0, b"{}", None);
        assert_eq!(e.status, 502);
    }

    #[test]
    fn translate_error_bodies() {
        let e = TranslateError::unsupported(
            "messages[1].content[0]",
            "audio is not supported by anthropic",
        );
        let v: serde_json::Value = serde_json::from_str(&e.to_openai_body()).unwrap();
        assert_eq!(v["error"]["param"], "messages[1].content[0]");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let a: serde_json::Value = serde_json::from_str(&e.to_anthropic_body()).unwrap();
        assert_eq!(a["type"], "error");
        assert!(a["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("messages[1].content[0]"));
    }
}
