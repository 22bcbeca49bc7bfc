//! Time to first token (TTFT) through the shipped plugin chain and directly against the mock
//! LLM, measured in the same run. The gateway test `tests/tests/gateway_ttft.rs` and the
//! `BENCH_ONLY=ttft` section of `make bench` both use it.
//!
//! [`Rig::start`] starts, all on loopback:
//! - the mock LLM (`host_sim::mock_llm`, in this process);
//! - two [`Tap`]s: byte-for-byte TCP relays in front of the mock that timestamp every
//!   server-sent event the mock sends, one for the direct path and one for the gateway's;
//! - `host-sim serve` (a child process) with the main route of `envoy/gateway.json`, i.e. the
//!   whole shipped chain in the order `make run` deploys it (ai-statistics, ai-auth, ai-guard,
//!   ai-cache, ai-token-ratelimit, ai-proxy), each plugin with its configuration from
//!   `plugins/<name>/example.json`. Only the listener and the route's cluster are changed: the cluster points at
//!   the gateway's tap.
//!
//! [`Rig::measure`] streams one answer over one [`Route`] at the pace of a [`Scenario`] and
//! returns a [`Measurement`]: every event the client got and every event the upstream sent,
//! with times counted from the moment the request was written. Both paths go through a tap,
//! so the relay's cost (microseconds) is on both sides of the comparison.
//!
//! The answer is made of short everyday words that no rule of `plugins/ai-guard/example.json`
//! matches, one token (one event) per word; every request has its own prompt, so ai-cache
//! always misses and the answer really comes from the upstream.

use crate::{free_port, root, ServeProcess};
use host_sim::mock_llm::{self, MockHandle, MockOptions};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The API key `plugins/ai-auth/example.json` gives consumer `team-web` (allowed `gpt-4o*` and
/// `claude-*`).
pub const CLIENT_KEY: &str = "sk-web-3f9a1c7e5b2d4068";

/// Which way a request goes to the mock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Straight to the mock LLM (through its tap only).
    Direct,
    /// Through the gateway running the full shipped chain.
    Chain,
}

impl Route {
    /// `direct` or `chain`.
    pub fn label(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Chain => "chain",
        }
    }
}

/// The client's dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// OpenAI chat completions (`/v1/chat/completions`).
    OpenAi,
    /// Anthropic messages (`/v1/messages`); through the chain ai-proxy translates it to the
    /// OpenAI-compatible upstream, directly the mock answers in Anthropic's own shape.
    Anthropic,
}

impl Client {
    /// `openai` or `anthropic`.
    pub fn label(self) -> &'static str {
        match self {
            Client::OpenAi => "openai /v1/chat/completions",
            Client::Anthropic => "anthropic /v1/messages",
        }
    }
}

/// What the answer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// Plain text content.
    Text,
    /// A call of the request's one tool (`get_weather`), its arguments streamed.
    ToolCall,
}

/// One streamed request: dialect, kind of answer, its length and the mock's pace.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The client's dialect.
    pub client: Client,
    /// Text or tool call.
    pub ask: Ask,
    /// Tokens (= upstream content events) in the answer; for tool calls, roughly the pieces
    /// of the arguments.
    pub tokens: usize,
    /// The mock's pace (`x-mock-tokens-per-sec`), one token per event.
    pub tokens_per_sec: f64,
}

impl Scenario {
    /// A text answer of `tokens` tokens at `tokens_per_sec`.
    pub fn text(client: Client, tokens: usize, tokens_per_sec: f64) -> Scenario {
        Scenario {
            client,
            ask: Ask::Text,
            tokens,
            tokens_per_sec,
        }
    }

    /// A tool call whose arguments take about `tokens` tokens, at `tokens_per_sec`.
    pub fn tool_call(client: Client, tokens: usize, tokens_per_sec: f64) -> Scenario {
        Scenario {
            client,
            ask: Ask::ToolCall,
            tokens,
            tokens_per_sec,
        }
    }

    /// The exact answer text the mock is told to send (for tool calls: the arguments JSON).
    pub fn expected(&self) -> String {
        match self.ask {
            Ask::Text => answer_text(self.tokens),
            Ask::ToolCall => tool_arguments(self.tokens),
        }
    }
}

/// Short words (at most four letters, so each is one mock token) that match no keyword,
/// pattern or secret rule of `plugins/ai-guard/example.json`.
const WORDS: [&str; 24] = [
    "the", "calm", "blue", "bay", "lay", "so", "soft", "wind", "came", "over", "hill", "and", "we",
    "saw", "gull", "fly", "high", "past", "old", "mill", "near", "town", "at", "dusk",
];

/// An answer of exactly `tokens` mock tokens (words separated by single spaces).
pub fn answer_text(tokens: usize) -> String {
    (0..tokens)
        .map(|i| WORDS[i % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Tool-call arguments (a JSON object) of about `tokens` mock tokens: a location and a
/// free-text note made of [`answer_text`] words.
pub fn tool_arguments(tokens: usize) -> String {
    // `{"location":"Paris","note":"` is seven 4-character pieces.
    let note = answer_text(tokens.saturating_sub(8).max(1));
    json!({"location": "Paris", "note": note}).to_string()
}

/// One server-sent event as a client (or the tap) saw it.
#[derive(Clone, Debug, Default)]
pub struct Event {
    /// When it was read, from the moment the request was written.
    pub at: Duration,
    /// Answer text it carries (OpenAI `delta.content`, Anthropic `text_delta`).
    pub text: String,
    /// Tool-call argument text it carries (OpenAI `delta.tool_calls[].function.arguments`,
    /// Anthropic `input_json_delta`).
    pub tool_args: String,
}

impl Event {
    /// Whether the event carries what `ask` asks for: text, or tool-call arguments.
    pub fn carries(&self, ask: Ask) -> bool {
        match ask {
            Ask::Text => !self.text.is_empty(),
            Ask::ToolCall => !self.tool_args.is_empty(),
        }
    }
}

/// What one streamed request looked like on one route.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// The route it took.
    pub route: Route,
    /// The scenario it ran.
    pub scenario: Scenario,
    /// The response status the client got.
    pub status: u16,
    /// Every data event the client got, in order.
    pub client_events: Vec<Event>,
    /// Every data event the mock sent for this request (seen by the tap), in order.
    pub upstream_events: Vec<Event>,
    /// From writing the request to the end of the response.
    pub total: Duration,
    /// The response body, kept when the status is not 200 (for diagnostics).
    pub error_body: String,
}

/// The median of `v` (`None` when empty).
pub fn median(mut v: Vec<Duration>) -> Option<Duration> {
    v.sort();
    v.get(v.len() / 2).copied()
}

impl Measurement {
    fn ask(&self) -> Ask {
        self.scenario.ask
    }

    /// When the first client event with content (text, or tool-call arguments for a tool
    /// call) arrived.
    pub fn first_content(&self) -> Option<Duration> {
        self.client_events
            .iter()
            .find(|e| e.carries(self.ask()))
            .map(|e| e.at)
    }

    /// When the upstream sent its first content event.
    pub fn upstream_first_content(&self) -> Option<Duration> {
        self.upstream_events
            .iter()
            .find(|e| e.carries(self.ask()))
            .map(|e| e.at)
    }

    /// When the upstream sent its last content event.
    pub fn upstream_last_content(&self) -> Option<Duration> {
        self.upstream_events
            .iter()
            .rev()
            .find(|e| e.carries(self.ask()))
            .map(|e| e.at)
    }

    /// Upstream events with content.
    pub fn upstream_content_events(&self) -> usize {
        self.upstream_events
            .iter()
            .filter(|e| e.carries(self.ask()))
            .count()
    }

    /// Client events with content (for tool calls: the argument deltas).
    pub fn client_content_events(&self) -> usize {
        self.client_events
            .iter()
            .filter(|e| e.carries(self.ask()))
            .count()
    }

    /// Upstream content events sent by the time the client got its first content (all of
    /// them when the client got none).
    pub fn upstream_sent_before_first_content(&self) -> usize {
        let Some(first) = self.first_content() else {
            return self.upstream_content_events();
        };
        self.upstream_events
            .iter()
            .filter(|e| e.carries(self.ask()) && e.at <= first)
            .count()
    }

    /// Client content events that arrived before the upstream sent its last content event:
    /// content spread over the stream rather than released at its end.
    pub fn client_content_before_upstream_end(&self) -> usize {
        let Some(last) = self.upstream_last_content() else {
            return 0;
        };
        self.client_events
            .iter()
            .filter(|e| e.carries(self.ask()) && e.at < last)
            .count()
    }

    /// The median time between two consecutive upstream content events: one upstream
    /// event's time at the mock's pace.
    pub fn upstream_interval(&self) -> Option<Duration> {
        let times: Vec<Duration> = self
            .upstream_events
            .iter()
            .filter(|e| e.carries(self.ask()))
            .map(|e| e.at)
            .collect();
        median(
            times
                .windows(2)
                .map(|w| w[1].saturating_sub(w[0]))
                .collect(),
        )
    }

    /// The client's first content minus the upstream's first content event, both in this
    /// run: what the route itself added to the first token.
    pub fn added_to_first_content(&self) -> Option<Duration> {
        Some(
            self.first_content()?
                .saturating_sub(self.upstream_first_content()?),
        )
    }

    /// All the text the client got, joined.
    pub fn text(&self) -> String {
        self.client_events.iter().map(|e| e.text.as_str()).collect()
    }

    /// All the tool-call argument text the client got, joined.
    pub fn tool_args(&self) -> String {
        self.client_events
            .iter()
            .map(|e| e.tool_args.as_str())
            .collect()
    }

    /// One line with the figures, for test output and the bench.
    pub fn summary(&self) -> String {
        let ms = |d: Option<Duration>| {
            d.map(|d| format!("{:.1} ms", d.as_secs_f64() * 1e3))
                .unwrap_or_else(|| "none".into())
        };
        format!(
            "{} {:?} {}: status {}, first content {} (upstream's first {}, added {}), \
             {} of {} upstream content events sent before it, {} client content events \
             ({} before the upstream's last), upstream interval {}, total {}",
            self.scenario.client.label(),
            self.scenario.ask,
            self.route.label(),
            self.status,
            ms(self.first_content()),
            ms(self.upstream_first_content()),
            ms(self.added_to_first_content()),
            self.upstream_sent_before_first_content(),
            self.upstream_content_events(),
            self.client_content_events(),
            self.client_content_before_upstream_end(),
            ms(self.upstream_interval()),
            ms(Some(self.total)),
        )
    }
}

/// The mock LLM, its taps and the gateway with the full shipped chain.
pub struct Rig {
    mock: MockHandle,
    direct_tap: Tap,
    chain_tap: Tap,
    gateway: ServeProcess,
    gateway_port: u16,
    seq: AtomicU64,
    /// The scratch folder holding the gateway's configuration and stderr.
    pub dir: PathBuf,
}

/// The gateway configuration: the main route (`llm`) of `envoy/gateway.json` with its whole
/// plugin chain, paths made absolute, listening on `port`, its cluster at `upstream`.
pub fn chain_config(port: u16, upstream: SocketAddr) -> Result<Value, String> {
    let envoy = root().join("envoy");
    let path = envoy.join("gateway.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let shipped: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut route = shipped["routes"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "llm"))
        .cloned()
        .ok_or("envoy/gateway.json has no route named llm")?;
    let cluster = route["cluster"]
        .as_str()
        .ok_or("route llm has no cluster")?
        .to_string();
    let plugins = route["plugins"]
        .as_array_mut()
        .ok_or("route llm has no plugins")?;
    for p in plugins.iter_mut() {
        for key in ["wasm", "config_file"] {
            if let Some(rel) = p[key].as_str() {
                p[key] = json!(envoy.join(rel));
            }
        }
    }
    let mut config = json!({
        "listen": format!("127.0.0.1:{port}"),
        "clusters": { cluster: { "endpoints": [upstream.to_string()] } },
        "routes": [route],
    });
    for key in [
        "workers",
        "stream_idle_timeout",
        "buffer_limit",
        "access_log",
    ] {
        if let Some(v) = shipped.get(key) {
            config[key] = v.clone();
        }
    }
    Ok(config)
}

/// The names of the plugins of a gateway configuration's first route, in request order.
pub fn chain_names(config: &Value) -> Vec<String> {
    config["routes"][0]["plugins"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Rig {
    /// Starts the mock, the taps and the gateway; `label` names the scratch folder.
    pub fn start(label: &str) -> Result<Rig, String> {
        Rig::start_without(label, &[])
    }

    /// The same with the plugins named in `without` left out of the chain (to see what the
    /// rest of the chain costs).
    pub fn start_without(label: &str, without: &[&str]) -> Result<Rig, String> {
        let mock = mock_llm::spawn(MockOptions::default()).map_err(|e| format!("mock: {e:#}"))?;
        let direct_tap = Tap::start(mock.addr)?;
        let chain_tap = Tap::start(mock.addr)?;
        let gateway_port = free_port();
        let mut config = chain_config(gateway_port, chain_tap.addr)?;
        if let Some(plugins) = config["routes"][0]["plugins"].as_array_mut() {
            plugins.retain(|p| !without.iter().any(|w| p["name"] == *w));
        }
        let dir = std::env::temp_dir().join(format!("aigw-ttft-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cfg_path = dir.join("gateway.json");
        let bytes = serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?;
        std::fs::write(&cfg_path, bytes).map_err(|e| format!("{}: {e}", cfg_path.display()))?;
        let gateway = ServeProcess::start(&cfg_path, &dir.join("gateway.err"), gateway_port);
        Ok(Rig {
            mock,
            direct_tap,
            chain_tap,
            gateway,
            gateway_port,
            seq: AtomicU64::new(0),
            dir,
        })
    }

    /// The plugins the gateway runs, in request order.
    pub fn chain(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("gateway.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .map(|c| chain_names(&c))
            .unwrap_or_default()
    }

    /// What the gateway wrote to stderr so far.
    pub fn gateway_stderr(&self) -> String {
        self.gateway.stderr_text()
    }

    /// A few short streams on both routes and in both dialects at full speed, so the
    /// measured ones do not pay for first-use work (connections, VM memory growth).
    pub fn warm_up(&self) -> Result<(), String> {
        for _ in 0..2 {
            for client in [Client::OpenAi, Client::Anthropic] {
                for route in [Route::Direct, Route::Chain] {
                    let m = self.measure(route, &Scenario::text(client, 8, 0.0))?;
                    if m.status != 200 {
                        return Err(format!(
                            "warm-up on {} got {}: {}",
                            route.label(),
                            m.status,
                            m.error_body
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Streams the scenario's answer over `route` and records both sides.
    pub fn measure(&self, route: Route, s: &Scenario) -> Result<Measurement, String> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let (path, body, mut headers) = request(s, &nonce(n));
        headers.push(("x-mock-answer".into(), answer_text(s.tokens)));
        if s.ask == Ask::ToolCall {
            headers.push(("x-mock-tool-call".into(), "force".into()));
            headers.push(("x-mock-tool-args".into(), tool_arguments(s.tokens)));
        }
        headers.push((
            "x-mock-tokens-per-sec".into(),
            format!("{}", s.tokens_per_sec),
        ));
        headers.push(("x-mock-chunk-size".into(), "1".into()));
        let (tap, addr) = match route {
            Route::Direct => (&self.direct_tap, self.mock_tap_addr()),
            Route::Chain => (
                &self.chain_tap,
                SocketAddr::from(([127, 0, 0, 1], self.gateway_port)),
            ),
        };
        tap.clear();
        let (status, client_events, total, error_body, t0) =
            stream_request(addr, path, &body, &headers)?;
        let upstream_events = tap
            .take()
            .into_iter()
            .map(|(at, mut e)| {
                e.at = at.saturating_duration_since(t0);
                e
            })
            .collect();
        Ok(Measurement {
            route,
            scenario: s.clone(),
            status,
            client_events,
            upstream_events,
            total,
            error_body,
        })
    }

    fn mock_tap_addr(&self) -> SocketAddr {
        self.direct_tap.addr
    }

    /// The mock LLM (its request log says what the gateway sent).
    pub fn mock(&self) -> &MockHandle {
        &self.mock
    }
}

/// A prompt suffix that makes every request distinct (letters only, so no digit pattern of
/// ai-guard can match it), so that ai-cache never answers from its cache.
fn nonce(n: u64) -> String {
    let mut v = u64::from(std::process::id()) * 1_000_003 + n;
    let mut s = String::new();
    for _ in 0..10 {
        s.push(char::from(b'a' + (v % 26) as u8));
        v /= 26;
    }
    s
}

/// Path, body and headers of the scenario's request in its client's dialect.
fn request(s: &Scenario, nonce: &str) -> (&'static str, Vec<u8>, Vec<(String, String)>) {
    let prompt = match s.ask {
        Ask::Text => format!("Tell me about a calm bay, story {nonce}."),
        Ask::ToolCall => format!("What is the weather in Paris? Ask {nonce}."),
    };
    let schema = json!({"type": "object", "properties": {
        "location": {"type": "string"}, "note": {"type": "string"}}, "required": ["location"]});
    let content_type = ("content-type".to_string(), "application/json".to_string());
    match s.client {
        Client::OpenAi => {
            let mut body = json!({
                "model": "gpt-4o-mini",
                "stream": true,
                "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": prompt}],
            });
            if s.ask == Ask::ToolCall {
                body["tools"] = json!([{"type": "function", "function": {
                    "name": "get_weather", "description": "The weather at a place",
                    "parameters": schema}}]);
            }
            (
                "/v1/chat/completions",
                body.to_string().into_bytes(),
                vec![
                    content_type,
                    ("authorization".into(), format!("Bearer {CLIENT_KEY}")),
                ],
            )
        }
        Client::Anthropic => {
            let mut body = json!({
                "model": "claude-3-5-haiku-latest",
                "max_tokens": 1024,
                "stream": true,
                "messages": [{"role": "user", "content": prompt}],
            });
            if s.ask == Ask::ToolCall {
                body["tools"] = json!([{"name": "get_weather",
                    "description": "The weather at a place", "input_schema": schema}]);
            }
            (
                "/v1/messages",
                body.to_string().into_bytes(),
                vec![
                    content_type,
                    ("x-api-key".into(), CLIENT_KEY.into()),
                    ("anthropic-version".into(), "2023-06-01".into()),
                ],
            )
        }
    }
}

/// What [`stream_request`] returns: status, the client's events, total time, the body when
/// the status is not 200, and the moment the request was written.
type Streamed = (u16, Vec<Event>, Duration, String, Instant);

/// Sends one request (`connection: close`) and reads the response as it streams, stamping
/// every event with the time it was read.
fn stream_request(
    addr: SocketAddr,
    path: &str,
    body: &[u8],
    headers: &[(String, String)],
) -> Result<Streamed, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let head = crate::http::request_head("POST", "llm", path, headers, body.len());
    let mut req = head.into_bytes();
    req.extend_from_slice(body);
    let t0 = Instant::now();
    s.write_all(&req).map_err(|e| format!("write: {e}"))?;
    let mut reader = ResponseReader::default();
    let mut sse = SseSplitter::default();
    let mut events = Vec::new();
    let mut status = 0u16;
    let mut raw_body = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut done = false;
    while !done {
        let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        let at = t0.elapsed();
        let mut items = Vec::new();
        if n == 0 {
            reader.finish(&mut items);
            done = true;
        } else {
            reader.push(&buf[..n], &mut items);
        }
        for item in items {
            match item {
                Item::Head(st) => status = st,
                Item::Body(b) => {
                    if status != 200 {
                        raw_body.extend_from_slice(&b);
                    }
                    for e in sse.push(&b) {
                        events.push(Event { at, ..e });
                    }
                }
                Item::End => done = true,
            }
        }
    }
    let total = t0.elapsed();
    Ok((
        status,
        events,
        total,
        String::from_utf8_lossy(&raw_body).into_owned(),
        t0,
    ))
}

/// A piece of an HTTP/1.1 response read incrementally.
#[derive(Debug)]
enum Item {
    /// The head was read: the status.
    Head(u16),
    /// Body bytes (de-chunked).
    Body(Vec<u8>),
    /// The response ended.
    End,
}

/// Where an incremental response reader is.
#[derive(Debug, Default)]
enum ReadState {
    /// Reading a response head.
    #[default]
    Head,
    /// Reading a chunk-size line.
    Size,
    /// Reading chunk data (bytes left).
    Data(usize),
    /// Reading the CRLF after chunk data.
    DataEnd,
    /// Reading trailer lines up to the empty one.
    Trailers,
    /// A body with a content-length (bytes left).
    Length(usize),
    /// A body that ends with the connection.
    Close,
}

/// An incremental HTTP/1.1 response reader: one response after another on a connection, the
/// body chunked, sized by content-length, or ending with the connection.
#[derive(Debug, Default)]
struct ResponseReader {
    buf: Vec<u8>,
    state: ReadState,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl ResponseReader {
    /// Feeds bytes; what they complete is appended to `out`.
    fn push(&mut self, data: &[u8], out: &mut Vec<Item>) {
        self.buf.extend_from_slice(data);
        loop {
            match self.state {
                ReadState::Head => {
                    let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                        return;
                    };
                    let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let mut lines = text.split("\r\n");
                    let status = lines
                        .next()
                        .and_then(|l| l.split(' ').nth(1))
                        .and_then(|s| s.parse::<u16>().ok())
                        .unwrap_or(0);
                    let mut chunked = false;
                    let mut length = None;
                    for l in lines {
                        if let Some((k, v)) = l.split_once(':') {
                            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                                chunked = true;
                            } else if k == "content-length" {
                                length = v.parse::<usize>().ok();
                            }
                        }
                    }
                    if (100..200).contains(&status) {
                        continue;
                    }
                    out.push(Item::Head(status));
                    self.state = if chunked {
                        ReadState::Size
                    } else {
                        match length {
                            Some(0) => {
                                out.push(Item::End);
                                ReadState::Head
                            }
                            Some(n) => ReadState::Length(n),
                            None => ReadState::Close,
                        }
                    };
                }
                ReadState::Size => {
                    let Some(eol) = find(&self.buf, b"\r\n") else {
                        return;
                    };
                    let line: Vec<u8> = self.buf.drain(..eol + 2).collect();
                    let text = String::from_utf8_lossy(&line[..eol]).into_owned();
                    let size =
                        usize::from_str_radix(text.split(';').next().unwrap_or("").trim(), 16)
                            .unwrap_or(0);
                    self.state = if size == 0 {
                        ReadState::Trailers
                    } else {
                        ReadState::Data(size)
                    };
                }
                ReadState::Data(left) | ReadState::Length(left) => {
                    if self.buf.is_empty() {
                        return;
                    }
                    let take = left.min(self.buf.len());
                    out.push(Item::Body(self.buf.drain(..take).collect()));
                    let rest = left - take;
                    self.state = match (&self.state, rest) {
                        (ReadState::Data(_), 0) => ReadState::DataEnd,
                        (ReadState::Data(_), r) => ReadState::Data(r),
                        (_, 0) => {
                            out.push(Item::End);
                            ReadState::Head
                        }
                        (_, r) => ReadState::Length(r),
                    };
                }
                ReadState::DataEnd => {
                    if self.buf.len() < 2 {
                        return;
                    }
                    self.buf.drain(..2);
                    self.state = ReadState::Size;
                }
                ReadState::Trailers => {
                    let Some(eol) = find(&self.buf, b"\r\n") else {
                        return;
                    };
                    self.buf.drain(..eol + 2);
                    if eol == 0 {
                        out.push(Item::End);
                        self.state = ReadState::Head;
                    }
                }
                ReadState::Close => {
                    if !self.buf.is_empty() {
                        out.push(Item::Body(std::mem::take(&mut self.buf)));
                    }
                    return;
                }
            }
        }
    }

    /// The connection closed: a body that ends with it ends here.
    fn finish(&mut self, out: &mut Vec<Item>) {
        if matches!(self.state, ReadState::Close) {
            out.push(Item::End);
        }
    }
}

/// Splits a server-sent event stream into events and reads the content they carry.
#[derive(Debug, Default)]
struct SseSplitter {
    buf: Vec<u8>,
}

impl SseSplitter {
    /// Feeds body bytes; returns the events they complete (those with a `data` field).
    fn push(&mut self, data: &[u8]) -> Vec<Event> {
        // Line ends may be CRLF; a CR never appears inside an event's JSON unescaped.
        self.buf
            .extend(data.iter().copied().filter(|&b| b != b'\r'));
        let mut out = Vec::new();
        while let Some(end) = find(&self.buf, b"\n\n") {
            let block: Vec<u8> = self.buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block).into_owned();
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if data.is_empty() {
                continue; // a comment or keep-alive
            }
            out.push(event_content(&data.join("\n")));
        }
        out
    }
}

/// The text and tool-call arguments an event's data carries, in OpenAI chat or Anthropic
/// messages shape.
fn event_content(data: &str) -> Event {
    let mut e = Event::default();
    let Ok(v) = serde_json::from_str::<Value>(data) else {
        return e; // `[DONE]`
    };
    if let Some(choices) = v["choices"].as_array() {
        for c in choices {
            if let Some(t) = c["delta"]["content"].as_str() {
                e.text.push_str(t);
            }
            if let Some(calls) = c["delta"]["tool_calls"].as_array() {
                for call in calls {
                    if let Some(a) = call["function"]["arguments"].as_str() {
                        e.tool_args.push_str(a);
                    }
                }
            }
        }
    }
    if v["type"] == "content_block_delta" {
        if let Some(t) = v["delta"]["text"].as_str() {
            e.text.push_str(t);
        }
        if let Some(a) = v["delta"]["partial_json"].as_str() {
            e.tool_args.push_str(a);
        }
    }
    e
}

/// A byte-for-byte TCP relay in front of an upstream that timestamps every server-sent event
/// of the responses passing through it (the moment it read them from the upstream, before
/// passing them on). Stops accepting when dropped.
pub struct Tap {
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    events: Arc<Mutex<Vec<(Instant, Event)>>>,
    stop: Arc<AtomicBool>,
}

impl Tap {
    /// Starts a relay to `upstream` on a free loopback port.
    pub fn start(upstream: SocketAddr) -> Result<Tap, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("tap: {e}"))?;
        let addr = listener.local_addr().map_err(|e| format!("tap: {e}"))?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ev, st) = (events.clone(), stop.clone());
        std::thread::Builder::new()
            .name("ttft-tap".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if st.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(down) = conn else { continue };
                    let ev = ev.clone();
                    let _ = std::thread::Builder::new()
                        .name("ttft-tap-conn".into())
                        .spawn(move || relay(down, upstream, ev));
                }
            })
            .map_err(|e| format!("tap thread: {e}"))?;
        Ok(Tap { addr, events, stop })
    }

    /// Forgets the events recorded so far.
    pub fn clear(&self) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The events recorded since the last [`Tap::clear`] or `take`, with the moment each was
    /// read from the upstream.
    pub fn take(&self) -> Vec<(Instant, Event)> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Relays one connection: requests as they come, responses while recording their events.
fn relay(down: TcpStream, upstream: SocketAddr, events: Arc<Mutex<Vec<(Instant, Event)>>>) {
    let Ok(up) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = up.set_nodelay(true);
    let _ = down.set_nodelay(true);
    let (Ok(mut down_r), Ok(mut up_w)) = (down.try_clone(), up.try_clone()) else {
        return;
    };
    let requests = std::thread::spawn(move || {
        let _ = std::io::copy(&mut down_r, &mut up_w);
        let _ = up_w.shutdown(Shutdown::Write);
    });
    let (mut up_r, mut down_w) = (up, down);
    let mut reader = ResponseReader::default();
    let mut sse = SseSplitter::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match up_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let at = Instant::now();
        let mut items = Vec::new();
        reader.push(&buf[..n], &mut items);
        let mut seen = Vec::new();
        for item in items {
            match item {
                Item::Body(b) => seen.extend(sse.push(&b).into_iter().map(|e| (at, e))),
                // A new response on a reused connection starts a fresh event stream.
                Item::Head(_) | Item::End => sse = SseSplitter::default(),
            }
        }
        if !seen.is_empty() {
            events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(seen);
        }
        if down_w.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = down_w.shutdown(Shutdown::Write);
    let _ = requests.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_responses_one_after_another_are_read_in_pieces() {
        let wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nHTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\nnopHTTP/1.1 200 OK\r\n\r\nrest";
        // Byte by byte: every state must wait for more input correctly.
        let mut r = ResponseReader::default();
        let mut items = Vec::new();
        for b in wire.iter() {
            r.push(std::slice::from_ref(b), &mut items);
        }
        r.finish(&mut items);
        let mut responses: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut ends = 0;
        for i in items {
            match i {
                Item::Head(s) => responses.push((s, Vec::new())),
                Item::Body(b) => responses.last_mut().map(|r| r.1.extend(b)).unwrap_or(()),
                Item::End => ends += 1,
            }
        }
        assert_eq!(
            responses,
            vec![
                (200, b"hello world".to_vec()),
                (404, b"nop".to_vec()),
                (200, b"rest".to_vec())
            ]
        );
        assert_eq!(ends, 3);
    }

    #[test]
    fn events_of_both_dialects_give_their_text_and_tool_arguments() {
        let mut s = SseSplitter::default();
        let mut got = s.push(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n: keep-alive\n\n",
        );
        got.extend(s.push(b"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\"}}]}}]}\n"));
        got.extend(s.push(b"\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n"));
        got.extend(s.push(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\":1}\"}}\n\ndata: [DONE]\n\n"));
        let texts: Vec<&str> = got.iter().map(|e| e.text.as_str()).collect();
        let args: Vec<&str> = got.iter().map(|e| e.tool_args.as_str()).collect();
        assert_eq!(texts, vec!["Hel", "", "lo", "", ""]);
        assert_eq!(args, vec!["", "{\"a", "", "\":1}", ""]);
    }

    #[test]
    fn the_answer_has_one_token_per_word_and_the_arguments_are_json() {
        let a = answer_text(30);
        assert_eq!(host_sim::mock_llm::tokens::count(&a), 30);
        let args: Value = serde_json::from_str(&tool_arguments(30)).unwrap_or(Value::Null);
        assert_eq!(args["location"], "Paris");
        let n = host_sim::mock_llm::tokens::count(&tool_arguments(30));
        assert!((25..=35).contains(&n), "{n} tokens");
    }
}
