//! Per-request behaviour controls: `x-mock-*` request headers, falling back to the server's
//! defaults ([`Controls`] in `MockOptions`).

use hyper::HeaderMap;

/// How a request should fail, if at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorMode {
    /// Answer with this HTTP status and an error body in the provider's shape (429 adds
    /// `retry-after`).
    Status(u16),
    /// Close the connection (TCP reset) without sending a response.
    Reset,
    /// Never answer (the request stays in flight until the client gives up).
    Hang,
    /// Send the response head and about half of the body, then abort the connection.
    Cut,
}

impl ErrorMode {
    /// Parses `429`, `500`, `503` (any 400..=599), `reset`, `hang` or `cut`.
    pub fn parse(s: &str) -> Result<ErrorMode, String> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "reset" => Ok(ErrorMode::Reset),
            "hang" => Ok(ErrorMode::Hang),
            "cut" => Ok(ErrorMode::Cut),
            other => match other.parse::<u16>() {
                Ok(code) if (400..=599).contains(&code) => Ok(ErrorMode::Status(code)),
                _ => Err(format!(
                    "expected an HTTP status 400-599, reset, hang or cut, got {s:?}"
                )),
            },
        }
    }
}

/// Whether a request with tools gets a tool call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ToolMode {
    /// A tool call when the last user message mentions "weather" (case-insensitive).
    #[default]
    Auto,
    /// Always call the first tool when the request has tools and the last turn is the user's.
    Force,
    /// Never call tools.
    Off,
}

/// The behaviour knobs of one request. Header names are given on each field.
#[derive(Clone, Debug, PartialEq)]
pub struct Controls {
    /// `x-mock-latency-ms`: delay before the response head.
    pub latency_ms: u64,
    /// `x-mock-ttft-ms`: delay between the response head and the first token.
    pub ttft_ms: u64,
    /// `x-mock-tokens-per-sec`: pacing of output tokens after the first (0 = as fast as possible).
    pub tokens_per_sec: f64,
    /// `x-mock-chunk-size`: output tokens per streamed event (at least 1).
    pub chunk_size: usize,
    /// `x-mock-error`: `429|500|503|…|reset|hang|cut`.
    pub error: Option<ErrorMode>,
    /// `x-mock-error-times`: apply `error` only to the first N requests of the same scenario
    /// (`x-mock-scenario`, default: the error value); later ones succeed. Lets tests exercise
    /// retries against a single mock.
    pub error_times: Option<u64>,
    /// `x-mock-scenario`: the key `error_times` counts under.
    pub scenario: Option<String>,
    /// `x-mock-retry-after`: seconds in the `retry-after` header of a 429 (default 1).
    pub retry_after: u64,
    /// `x-mock-answer`: the exact answer text (default `Echo: <last user message>`).
    pub answer: Option<String>,
    /// `x-mock-tool-call: auto|force|off`.
    pub tool: ToolMode,
    /// `x-mock-tool-args`: the exact JSON arguments of a tool call.
    pub tool_args: Option<String>,
    /// `x-mock-max-tokens-honoured: false` ignores the request's max-token limit.
    pub honour_max_tokens: bool,
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            latency_ms: 0,
            ttft_ms: 0,
            tokens_per_sec: 0.0,
            chunk_size: 1,
            error: None,
            error_times: None,
            scenario: None,
            retry_after: 1,
            answer: None,
            tool: ToolMode::Auto,
            tool_args: None,
            honour_max_tokens: true,
        }
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v.as_bytes())
            .map(|s| Some(s.trim()))
            .map_err(|_| format!("header {name} is not UTF-8")),
    }
}

fn num<T: std::str::FromStr>(h: &HeaderMap, name: &str) -> Result<Option<T>, String> {
    match header(h, name)? {
        None => Ok(None),
        Some(s) => s
            .parse::<T>()
            .map(Some)
            .map_err(|_| format!("header {name}: expected a number, got {s:?}")),
    }
}

/// Parses a boolean control value.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("expected true or false, got {s:?}")),
    }
}

/// Parses a tool mode value.
pub fn parse_tool_mode(s: &str) -> Result<ToolMode, String> {
    match s.to_ascii_lowercase().as_str() {
        "auto" => Ok(ToolMode::Auto),
        "force" | "always" => Ok(ToolMode::Force),
        "off" | "never" => Ok(ToolMode::Off),
        _ => Err(format!("expected auto, force or off, got {s:?}")),
    }
}

impl Controls {
    /// These defaults overridden by the request's `x-mock-*` headers. The error names the
    /// header and why its value is wrong.
    pub fn with_headers(&self, h: &HeaderMap) -> Result<Controls, String> {
        let mut c = self.clone();
        if let Some(v) = num::<u64>(h, "x-mock-latency-ms")? {
            c.latency_ms = v;
        }
        if let Some(v) = num::<u64>(h, "x-mock-ttft-ms")? {
            c.ttft_ms = v;
        }
        if let Some(v) = num::<f64>(h, "x-mock-tokens-per-sec")? {
            if !v.is_finite() || v < 0.0 {
                return Err(format!(
                    "header x-mock-tokens-per-sec: must be 0 or positive, got {v}"
                ));
            }
            c.tokens_per_sec = v;
        }
        if let Some(v) = num::<usize>(h, "x-mock-chunk-size")? {
            if v == 0 {
                return Err("header x-mock-chunk-size: must be at least 1".into());
            }
            c.chunk_size = v;
        }
        if let Some(v) = header(h, "x-mock-error")? {
            c.error = Some(ErrorMode::parse(v).map_err(|e| format!("header x-mock-error: {e}"))?);
        }
        if let Some(v) = num::<u64>(h, "x-mock-error-times")? {
            c.error_times = Some(v);
        }
        if let Some(v) = header(h, "x-mock-scenario")? {
            c.scenario = Some(v.to_string());
        }
        if let Some(v) = num::<u64>(h, "x-mock-retry-after")? {
            c.retry_after = v;
        }
        if let Some(v) = header(h, "x-mock-answer")? {
            c.answer = Some(v.to_string());
        }
        if let Some(v) = header(h, "x-mock-tool-call")? {
            c.tool = parse_tool_mode(v).map_err(|e| format!("header x-mock-tool-call: {e}"))?;
        }
        if let Some(v) = header(h, "x-mock-tool-args")? {
            let parsed: Result<serde_json::Value, _> = serde_json::from_str(v);
            match parsed {
                Ok(serde_json::Value::Object(_)) => c.tool_args = Some(v.to_string()),
                _ => return Err("header x-mock-tool-args: must be a JSON object".into()),
            }
        }
        if let Some(v) = header(h, "x-mock-max-tokens-honoured")? {
            c.honour_max_tokens =
                parse_bool(v).map_err(|e| format!("header x-mock-max-tokens-honoured: {e}"))?;
        }
        Ok(c)
    }
}
