//! A mock LLM server for tests, demos and the compose setup. It speaks OpenAI (chat,
//! completions, embeddings, moderations, models), Anthropic Messages, Gemini generateContent and Bedrock
//! Converse, streamed and not, with deterministic answers and real token usage, plus a vLLM-style
//! `/metrics` that reflects the requests in flight.
//!
//! Behaviour is steered per request by `x-mock-*` headers (see [`Controls`]) with defaults from
//! [`MockOptions`]. Every request is recorded ([`LoggedRequest`]) so tests can check what a
//! gateway actually sent, including which credential ([`AuthUsed`]).
//!
//! ```no_run
//! let mock = host_sim::mock_llm::spawn(Default::default())?;
//! let url = format!("{}/v1/chat/completions", mock.url());
//! // ... send a request to `url` ...
//! assert_eq!(mock.requests().len(), 1);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! `POST /v1/moderations` answers in OpenAI's shape and flags inputs that contain one of
//! [`MockOptions::moderation_flag_words`] (category `violence`).
//!
//! Answers: `x-mock-answer` if given, otherwise `Echo: <text of the last message>`. A token is
//! a piece of at most four characters of a word (see [`tokens`]); output follows the request's
//! max-token limit. When the request offers tools and the last user message mentions "weather",
//! the answer is a call of the first tool with arguments built from its schema.

mod anthropic;
mod bedrock;
pub mod cli;
mod controls;
pub mod embed;
mod eventstream;
mod gemini;
mod openai;
mod plan;
mod routes;
mod sched;
mod server;
pub mod tokens;
mod wire;

pub use controls::{Controls, ErrorMode, ToolMode};
pub use sched::Load;

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::Arc;

/// How the mock server runs.
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// Behaviour for requests without `x-mock-*` headers.
    pub defaults: Controls,
    /// When set, requests must carry this key (in any provider's auth header, `?key=`, or as
    /// the SigV4 access key id) or get 401 (403 on Bedrock routes) in the provider's shape.
    pub require_key: Option<String>,
    /// Model ids listed by `GET /v1/models`.
    pub models: Vec<String>,
    /// The `model_name` label on `/metrics`.
    pub served_model_name: String,
    /// Requests that run at once; more wait in the queue (`vllm:num_requests_waiting`).
    pub max_running: usize,
    /// Queue bound; requests beyond it get 429. `None` = unbounded.
    pub max_waiting: Option<u64>,
    /// KV-cache size in tokens; `vllm:kv_cache_usage_perc` = tokens held by running requests
    /// (prompt + generated) / this.
    pub kv_capacity_tokens: u64,
    /// Embedding size when the request does not ask for one.
    pub embedding_dims: usize,
    /// `POST /v1/moderations` flags an input containing one of these words (case-insensitive)
    /// in the `violence` category.
    pub moderation_flag_words: Vec<String>,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Requests kept in the log (oldest dropped first; 0 = unbounded).
    pub log_limit: usize,
    /// Print one line per request (method, path, status, API, token counts, auth header name;
    /// never keys).
    pub access_log: bool,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            listen: "127.0.0.1:0".into(),
            defaults: Controls::default(),
            require_key: None,
            models: vec![
                "mock-llm".into(),
                "gpt-4o-mini".into(),
                "claude-3-5-haiku-latest".into(),
                "gemini-2.0-flash".into(),
            ],
            served_model_name: "mock-llm".into(),
            max_running: 16,
            max_waiting: None,
            kv_capacity_tokens: 16384,
            embedding_dims: embed::DEFAULT_DIMS,
            moderation_flag_words: vec!["kill".into()],
            max_body_bytes: 32 << 20,
            log_limit: 10_000,
            access_log: false,
        }
    }
}

/// A credential found on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthUsed {
    /// Where: `authorization`, `x-api-key`, `api-key`, `x-goog-api-key` or `?key` (query).
    pub header: String,
    /// The `authorization` scheme (`Bearer`, `AWS4-HMAC-SHA256`, …); empty for key headers.
    pub scheme: String,
    /// The key: bearer token, header value, or the SigV4 access key id.
    pub key: String,
}

/// One request as it arrived, and how it was answered.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    /// Arrival order, from 1.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Query string (without `?`).
    pub query: String,
    /// Headers, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Vec<u8>,
    /// Credentials found.
    pub auth: Vec<AuthUsed>,
    /// Which API the path selected (`openai.chat`, `anthropic.messages`, `gemini.stream`,
    /// `bedrock.converse_stream`, `metrics`, …).
    pub api: &'static str,
    /// The model named by the request, once parsed.
    pub model: Option<String>,
    /// Whether a stream was asked for.
    pub stream: bool,
    /// Response status, once decided (`None` while in flight, reset or hanging).
    pub status: Option<u16>,
    /// Prompt tokens counted.
    pub prompt_tokens: u64,
    /// Output tokens produced.
    pub completion_tokens: u64,
}

impl LoggedRequest {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A running mock server (own thread, own tokio runtime). Dropping it stops the server and
/// abandons requests still in flight.
pub struct MockHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    state: Arc<server::State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockHandle {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A copy of the request log, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.state
            .log
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        if let Ok(mut l) = self.state.log.lock() {
            l.clear();
        }
    }

    /// Requests running and waiting, and the KV usage, right now.
    pub fn load(&self) -> Load {
        self.state.sched.load()
    }

    /// Waits until at least `n` requests have been logged or `timeout` passes; returns whether
    /// they arrived. For tests that must wait for a request they cannot observe directly.
    pub fn wait_for_requests(&self, n: usize, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.state.log.lock().map(|l| l.len()).unwrap_or(0) >= n {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Stops the server (same as dropping it).
    pub fn stop(self) {}
}

impl Drop for MockHandle {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bind(listen: &str) -> Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Starts a mock server on its own thread and runtime and returns once it is listening.
pub fn spawn(opts: MockOptions) -> Result<MockHandle> {
    let listener = bind(&opts.listen)?;
    let addr = listener.local_addr()?;
    let state = server::State::new(opts);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mock-llm")
        .enable_all()
        .build()?;
    let st = state.clone();
    let thread = std::thread::Builder::new()
        .name("mock-llm".into())
        .spawn(move || {
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => {
                        server::serve(st, l, async {
                            let _ = rx.await;
                        })
                        .await
                    }
                    Err(e) => eprintln!("mock-llm: cannot use the listener: {e}"),
                }
            });
            // Hanging or streaming requests are dropped rather than waited for.
            rt.shutdown_background();
        })?;
    Ok(MockHandle {
        addr,
        state,
        stop: Some(tx),
        thread: Some(thread),
    })
}

/// Runs a mock server in the foreground until the process ends (the CLI).
pub fn run(opts: MockOptions) -> Result<()> {
    let listener = bind(&opts.listen)?;
    eprintln!(
        "host-sim mock-llm listening on http://{}",
        listener.local_addr()?
    );
    let state = server::State::new(opts);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let l = tokio::net::TcpListener::from_std(listener)?;
        server::serve(state, l, std::future::pending::<()>()).await;
        Ok::<(), anyhow::Error>(())
    })
}
