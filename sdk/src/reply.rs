//! Error replies in the client's protocol.
//!
//! A client speaking the OpenAI API gets `{"error":{"message","type","param","code"}}`; a
//! client speaking the Anthropic Messages API (`/v1/messages`) gets
//! `{"type":"error","error":{"type","message"}}`. Both carry `content-type: application/json`
//! and, for 429, `retry-after` plus `x-ratelimit-{limit,remaining,reset}-{tokens|requests}`.
//!
//! ```
//! use aigw::reply::{ErrorReply, Protocol, RateLimit};
//!
//! let reply = ErrorReply::new(429, "token budget exhausted")
//!     .rate_limit(RateLimit::tokens(1000, 0, 30))
//!     .render(Protocol::from_path("/v1/chat/completions"));
//! assert_eq!(reply.status, 429);
//! assert!(reply.headers.contains(&("retry-after".into(), "30".into())));
//! let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
//! assert_eq!(body["error"]["code"], "rate_limit_exceeded");
//! ```

use crate::llm::api::Api;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The API dialect a client speaks, which decides the error shape. Serialized as `openai` /
/// `anthropic` (ai-cache stores it with each answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OpenAI-compatible APIs (the default).
    #[default]
    OpenAi,
    /// The Anthropic Messages API.
    Anthropic,
}

impl Protocol {
    /// Detects the protocol from a request path through [`Api::classify`]: the Anthropic
    /// Messages APIs (`…/v1/messages`, `…/v1/messages/count_tokens`) mean Anthropic,
    /// anything else OpenAI. The query string is ignored.
    pub fn from_path(path: &str) -> Protocol {
        Api::classify("", path, None).map_or(Protocol::OpenAi, Api::error_protocol)
    }
}

/// What a rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitUnit {
    /// Tokens (headers `x-ratelimit-*-tokens`).
    Tokens,
    /// Requests (headers `x-ratelimit-*-requests`).
    Requests,
}

/// The state of the limit that was hit, reported in 429 headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// What is counted.
    pub unit: RateLimitUnit,
    /// The limit per window.
    pub limit: u64,
    /// What is left in the current window.
    pub remaining: u64,
    /// Seconds until the window resets (also the `retry-after` value).
    pub reset_secs: u64,
}

impl RateLimit {
    /// A token limit.
    pub fn tokens(limit: u64, remaining: u64, reset_secs: u64) -> RateLimit {
        RateLimit {
            unit: RateLimitUnit::Tokens,
            limit,
            remaining,
            reset_secs,
        }
    }

    /// A request limit.
    pub fn requests(limit: u64, remaining: u64, reset_secs: u64) -> RateLimit {
        RateLimit {
            unit: RateLimitUnit::Requests,
            limit,
            remaining,
            reset_secs,
        }
    }
}

/// A rendered local reply: status, headers and body, ready for `send_local_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status code.
    pub status: u32,
    /// Response headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

/// The longest error message a reply carries, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// An error to send to the client; rendered per [`Protocol`] by [`ErrorReply::render`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    status: u16,
    message: String,
    kind: Option<String>,
    param: Option<String>,
    code: Option<String>,
    rate_limit: Option<RateLimit>,
    retry_after: Option<u64>,
    headers: Vec<(String, String)>,
}

impl ErrorReply {
    /// An error with an HTTP status and a human-readable message. Type and code follow from
    /// the status unless overridden. The message is bounded to [`MAX_MESSAGE_BYTES`] with
    /// control characters escaped, so a client value in it cannot flood or forge anything.
    pub fn new(status: u16, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            status,
            message: crate::log::bounded_message(message.into(), MAX_MESSAGE_BYTES),
            kind: None,
            param: None,
            code: None,
            rate_limit: None,
            retry_after: None,
            headers: Vec::new(),
        }
    }

    /// 400 with OpenAI `param` naming the offending request field.
    pub fn bad_request(message: impl Into<String>, param: Option<&str>) -> ErrorReply {
        let mut e = ErrorReply::new(400, message);
        e.param = param.map(String::from);
        e
    }

    /// Sets the OpenAI `param` field (the request field at fault).
    pub fn param(mut self, param: impl Into<String>) -> ErrorReply {
        self.param = Some(param.into());
        self
    }

    /// Overrides the OpenAI `code`.
    pub fn code(mut self, code: impl Into<String>) -> ErrorReply {
        self.code = Some(code.into());
        self
    }

    /// Overrides the error `type` (both protocols).
    pub fn kind(mut self, kind: impl Into<String>) -> ErrorReply {
        self.kind = Some(kind.into());
        self
    }

    /// Attaches rate-limit state: adds the `x-ratelimit-*` headers and `retry-after`.
    pub fn rate_limit(mut self, limit: RateLimit) -> ErrorReply {
        self.rate_limit = Some(limit);
        self
    }

    /// Sets `retry-after` in seconds (defaults to the rate limit's reset when one is set).
    pub fn retry_after(mut self, secs: u64) -> ErrorReply {
        self.retry_after = Some(secs);
        self
    }

    /// Adds a response header (for example `www-authenticate` on a 401). Header names are
    /// sent lower-case; `content-type` and the rate-limit headers are set by the SDK and
    /// cannot be overridden here.
    ///
    /// ```
    /// use aigw::reply::{ErrorReply, Protocol};
    ///
    /// let reply = ErrorReply::new(401, "missing API key")
    ///     .header("WWW-Authenticate", "Bearer realm=\"gateway\"")
    ///     .render(Protocol::OpenAi);
    /// assert!(reply.headers.contains(&(
    ///     "www-authenticate".to_string(),
    ///     "Bearer realm=\"gateway\"".to_string()
    /// )));
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> ErrorReply {
        self.headers
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Renders status, headers and JSON body for `protocol`.
    pub fn render(&self, protocol: Protocol) -> LocalReply {
        let body = match protocol {
            Protocol::OpenAi => {
                let (kind, code) = openai_type_code(self.status, self.rate_limit.map(|r| r.unit));
                json!({
                    "error": {
                        "message": self.message,
                        "type": self.kind.as_deref().unwrap_or(kind),
                        "param": self.param,
                        "code": self.code.as_deref().or(code),
                    }
                })
            }
            Protocol::Anthropic => json!({
                "type": "error",
                "error": {
                    "type": self.kind.as_deref().unwrap_or(anthropic_type(self.status)),
                    "message": self.message,
                }
            }),
        };
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        let retry_after = self.retry_after.or(self.rate_limit.map(|r| r.reset_secs));
        if let Some(secs) = retry_after {
            headers.push(("retry-after".to_string(), secs.to_string()));
        }
        if let Some(rl) = self.rate_limit {
            let unit = match rl.unit {
                RateLimitUnit::Tokens => "tokens",
                RateLimitUnit::Requests => "requests",
            };
            headers.push((format!("x-ratelimit-limit-{unit}"), rl.limit.to_string()));
            headers.push((
                format!("x-ratelimit-remaining-{unit}"),
                rl.remaining.to_string(),
            ));
            headers.push((
                format!("x-ratelimit-reset-{unit}"),
                format!("{}s", rl.reset_secs),
            ));
        }
        for (name, value) in &self.headers {
            if !headers.iter().any(|(n, _)| n == name) {
                headers.push((name.clone(), value.clone()));
            }
        }
        LocalReply {
            status: u32::from(self.status),
            headers,
            // Serializing a `serde_json::Value` built from strings cannot fail.
            body: serde_json::to_vec(&body).unwrap_or_default(),
        }
    }
}

/// OpenAI `type` and default `code` for a status.
fn openai_type_code(
    status: u16,
    unit: Option<RateLimitUnit>,
) -> (&'static str, Option<&'static str>) {
    match status {
        401 => ("authentication_error", Some("invalid_api_key")),
        403 => ("permission_error", Some("permission_denied")),
        404 => ("invalid_request_error", Some("not_found")),
        413 => ("invalid_request_error", Some("request_too_large")),
        429 => match unit {
            Some(RateLimitUnit::Tokens) => ("tokens", Some("rate_limit_exceeded")),
            Some(RateLimitUnit::Requests) => ("requests", Some("rate_limit_exceeded")),
            None => ("rate_limit_error", Some("rate_limit_exceeded")),
        },
        500 => ("server_error", Some("internal_error")),
        502 => ("server_error", Some("bad_gateway")),
        503 => ("server_error", Some("service_unavailable")),
        504 => ("server_error", Some("gateway_timeout")),
        s if s >= 500 => ("server_error", None),
        _ => ("invalid_request_error", None),
    }
}

/// Anthropic error `type` for a status: the stream table's, except that a 4xx it does not name
/// is a bad request here (not `api_error`).
fn anthropic_type(status: u16) -> &'static str {
    match crate::llm::stream::anthropic_error_type(status) {
        "api_error" if status < 500 => "invalid_request_error",
        kind => kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn body(r: &LocalReply) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    fn header<'a>(r: &'a LocalReply, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn protocol_detection() {
        let cases = [
            ("/v1/messages", Protocol::Anthropic),
            ("/v1/messages?beta=true", Protocol::Anthropic),
            ("/v1/messages/count_tokens", Protocol::Anthropic),
            ("/anthropic/v1/messages", Protocol::Anthropic),
            ("/v1/messagesx", Protocol::OpenAi),
            ("/v1/chat/completions", Protocol::OpenAi),
            ("/x?next=/v1/messages", Protocol::OpenAi),
            ("", Protocol::OpenAi),
        ];
        for (path, protocol) in cases {
            assert_eq!(Protocol::from_path(path), protocol, "{path}");
        }
    }

    #[test]
    fn openai_shape() {
        let r = ErrorReply::bad_request("messages is required", Some("messages"))
            .render(Protocol::OpenAi);
        assert_eq!(r.status, 400);
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        assert_eq!(
            body(&r),
            json!({"error":{"message":"messages is required","type":"invalid_request_error","param":"messages","code":null}})
        );
    }

    #[test]
    fn openai_status_table() {
        for (status, kind, code) in [
            (401, "authentication_error", Value::from("invalid_api_key")),
            (403, "permission_error", Value::from("permission_denied")),
            (404, "invalid_request_error", Value::from("not_found")),
            (
                413,
                "invalid_request_error",
                Value::from("request_too_large"),
            ),
            (429, "rate_limit_error", Value::from("rate_limit_exceeded")),
            (500, "server_error", Value::from("internal_error")),
            (502, "server_error", Value::from("bad_gateway")),
            (503, "server_error", Value::from("service_unavailable")),
            (504, "server_error", Value::from("gateway_timeout")),
            (418, "invalid_request_error", Value::Null),
        ] {
            let b = body(&ErrorReply::new(status, "m").render(Protocol::OpenAi));
            assert_eq!(b["error"]["type"], kind, "status {status}");
            assert_eq!(b["error"]["code"], code, "status {status}");
            assert_eq!(b["error"]["param"], Value::Null);
        }
    }

    #[test]
    fn anthropic_shape_and_table() {
        let r = ErrorReply::new(400, "bad")
            .param("x")
            .render(Protocol::Anthropic);
        assert_eq!(
            body(&r),
            json!({"type":"error","error":{"type":"invalid_request_error","message":"bad"}})
        );
        for (status, kind) in [
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (504, "api_error"),
        ] {
            assert_eq!(
                body(&ErrorReply::new(status, "m").render(Protocol::Anthropic))["error"]["type"],
                kind
            );
        }
    }

    #[test]
    fn rate_limit_headers() {
        let r = ErrorReply::new(429, "slow down")
            .rate_limit(RateLimit::requests(10, 0, 7))
            .render(Protocol::Anthropic);
        assert_eq!(header(&r, "retry-after"), Some("7"));
        assert_eq!(header(&r, "x-ratelimit-limit-requests"), Some("10"));
        assert_eq!(header(&r, "x-ratelimit-remaining-requests"), Some("0"));
        assert_eq!(header(&r, "x-ratelimit-reset-requests"), Some("7s"));
        let r = ErrorReply::new(429, "m")
            .rate_limit(RateLimit::tokens(5, 1, 2))
            .render(Protocol::OpenAi);
        assert_eq!(body(&r)["error"]["type"], "tokens");
        assert_eq!(header(&r, "x-ratelimit-limit-tokens"), Some("5"));
        let r = ErrorReply::new(503, "m")
            .retry_after(3)
            .render(Protocol::OpenAi);
        assert_eq!(header(&r, "retry-after"), Some("3"));
        assert_eq!(header(&r, "x-ratelimit-limit-tokens"), None);
    }

    #[test]
    fn overrides_and_escaping() {
        let r = ErrorReply::new(429, "quota \"done\"\n")
            .kind("insufficient_quota")
            .code("insufficient_quota");
        let b = body(&r.render(Protocol::OpenAi));
        assert_eq!(b["error"]["type"], "insufficient_quota");
        assert_eq!(b["error"]["code"], "insufficient_quota");
        // Quotes are JSON-escaped; control characters are shown escaped, never raw.
        assert_eq!(b["error"]["message"], "quota \"done\"\\n");
    }

    #[test]
    fn messages_are_bounded() {
        let r = ErrorReply::new(403, format!("model `{}`", "é".repeat(100_000)));
        let b = body(&r.render(Protocol::Anthropic));
        let m = b["error"]["message"].as_str().unwrap();
        assert!(
            m.len() <= MAX_MESSAGE_BYTES && m.ends_with('…'),
            "{}",
            m.len()
        );
    }

    #[test]
    fn extra_headers_are_added_but_never_replace_the_sdks() {
        let r = ErrorReply::new(401, "no key")
            .header("WWW-Authenticate", "Bearer realm=\"x\"")
            .header("content-type", "text/plain")
            .render(Protocol::Anthropic);
        assert_eq!(header(&r, "www-authenticate"), Some("Bearer realm=\"x\""));
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        assert_eq!(
            r.headers
                .iter()
                .filter(|(n, _)| n == "content-type")
                .count(),
            1
        );
        assert_eq!(body(&r)["error"]["type"], "authentication_error");
    }
}
