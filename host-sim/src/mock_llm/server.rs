//! The HTTP side of the mock: accept loop, routing, controls, admission, pacing and the
//! request log.

use super::controls::{Controls, ErrorMode};
use super::plan::{self, Turn};
use super::routes::{detect_auth, query_param, route, Route};
use super::sched::{Sched, Slot};
use super::wire::{self, Family, Payload, Reply};
use super::{anthropic, bedrock, gemini, openai, AuthUsed, LoggedRequest, MockOptions};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame as HFrame, Incoming, SizeHint};
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Everything the connections share.
pub struct State {
    /// The options the server runs with.
    pub opts: MockOptions,
    /// Admission and KV accounting.
    pub sched: Arc<Sched>,
    /// Requests seen, oldest first (bounded by `opts.log_limit`).
    pub log: Mutex<VecDeque<LoggedRequest>>,
    seq: AtomicU64,
    scenarios: Mutex<HashMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the log inconsistent; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    /// Fresh state for these options.
    pub fn new(opts: MockOptions) -> Arc<State> {
        let sched = Sched::new(opts.max_running, opts.max_waiting, opts.kv_capacity_tokens);
        Arc::new(State {
            opts,
            sched,
            log: Mutex::new(VecDeque::new()),
            seq: AtomicU64::new(0),
            scenarios: Mutex::new(HashMap::new()),
        })
    }

    fn push_log(&self, r: LoggedRequest) {
        let mut log = lock(&self.log);
        if self.opts.log_limit > 0 && log.len() >= self.opts.log_limit {
            log.pop_front();
        }
        log.push_back(r);
    }

    fn update_log(&self, seq: u64, f: impl FnOnce(&mut LoggedRequest)) {
        let mut log = lock(&self.log);
        if let Some(r) = log.iter_mut().rev().find(|r| r.seq == seq) {
            f(r);
        }
    }
}

/// The response body: whole, or fed by a generator task (an `Err` aborts the connection).
pub enum MockBody {
    /// A complete body (taken on first poll).
    Full(Option<Bytes>),
    /// Frames from a channel.
    Chan(mpsc::Receiver<Result<Bytes, io::Error>>),
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<HFrame<Bytes>, io::Error>>> {
        match self.get_mut() {
            MockBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(HFrame::data(b)))),
            MockBody::Chan(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(HFrame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, MockBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Chan(_) => SizeHint::default(),
        }
    }
}

/// The connection, able to end with a TCP reset instead of a clean close.
struct Conn {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            // SO_LINGER 0: closing sends RST. Non-blocking because nothing is left to flush.
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Why a request gets no response at all.
#[derive(Debug)]
pub struct Aborted(&'static str);

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Aborted {}

/// Accepts connections until `stop` resolves.
pub async fn serve(
    state: Arc<State>,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let (sock, _) = tokio::select! {
            _ = &mut stop => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    // Out of descriptors or similar: back off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = sock.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let reset = Arc::new(AtomicBool::new(false));
            let conn = Conn {
                inner: sock,
                reset: reset.clone(),
            };
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                let reset = reset.clone();
                async move { handle(state, req, reset).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(conn), svc)
                .await;
        });
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A reply ready to send plus what streaming needs.
struct Prepared {
    reply: Reply,
    slot: Option<Slot>,
    ttft_ms: u64,
    tokens_per_sec: f64,
    cut: bool,
    prompt_tokens: u64,
    completion_tokens: u64,
}

impl Prepared {
    fn plain(reply: Reply) -> Prepared {
        Prepared {
            reply,
            slot: None,
            ttft_ms: 0,
            tokens_per_sec: 0.0,
            cut: false,
            prompt_tokens: 0,
            completion_tokens: 0,
        }
    }
}

fn sleep_ms(ms: f64) -> Option<tokio::time::Sleep> {
    (ms > 0.0 && ms.is_finite()).then(|| tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)))
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    reset: Arc<AtomicBool>,
) -> Result<Response<MockBody>, Aborted> {
    let started = Instant::now();
    let seq = state.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let route = route(&parts.method, &path);
    let family = route.family();
    let body = match Limited::new(body, state.opts.max_body_bytes)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(())
        }
        Err(_) => return Err(Aborted("client went away while sending the body")),
    };
    let auth = detect_auth(&parts.headers, &query);
    state.push_log(LoggedRequest {
        seq,
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.as_ref().map(|b| b.to_vec()).unwrap_or_default(),
        auth: auth.clone(),
        api: route.name(),
        model: None,
        stream: false,
        status: None,
        prompt_tokens: 0,
        completion_tokens: 0,
    });
    let prepared = match body {
        Err(()) => Prepared::plain(wire::error(
            family,
            413,
            &format!(
                "request body larger than {} bytes",
                state.opts.max_body_bytes
            ),
            1,
        )),
        Ok(body) => {
            let r = process(
                &state,
                seq,
                &route,
                &parts.headers,
                &query,
                &body,
                &auth,
                &reset,
                started,
            )
            .await;
            match r {
                Ok(p) => p,
                Err(a) => {
                    if state.opts.access_log {
                        use std::io::Write;
                        let _ = writeln!(
                            std::io::stdout().lock(),
                            "{} {} - reset api={}",
                            parts.method,
                            path,
                            route.name()
                        );
                    }
                    return Err(a);
                }
            }
        }
    };
    let status = prepared.reply.status;
    state.update_log(seq, |r| {
        r.status = Some(status);
        r.prompt_tokens = prepared.prompt_tokens;
        r.completion_tokens = prepared.completion_tokens;
    });
    if state.opts.access_log {
        let who = auth.first().map(|a| a.header.as_str()).unwrap_or("-");
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout().lock(),
            "{} {} {} api={} in={} out={} auth={}",
            parts.method,
            path,
            status,
            route.name(),
            prepared.prompt_tokens,
            prepared.completion_tokens,
            who
        );
    }
    Ok(respond(prepared, seq))
}

fn respond(p: Prepared, seq: u64) -> Response<MockBody> {
    let Prepared {
        reply,
        slot,
        ttft_ms,
        tokens_per_sec,
        cut,
        ..
    } = p;
    let mut builder = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder = builder.header("x-request-id", format!("mock-{seq}"));
    let body = match reply.payload {
        Payload::Full(bytes) if !cut => {
            if let Some(s) = slot {
                s.success();
            }
            MockBody::Full(Some(Bytes::from(bytes)))
        }
        Payload::Full(bytes) => {
            // Announce the whole length, send half, then abort the connection.
            builder = builder.header("content-length", bytes.len().to_string());
            let bytes = Bytes::from(bytes);
            let half = bytes.slice(..bytes.len() / 2);
            let (tx, rx) = mpsc::channel(2);
            tokio::spawn(async move {
                let _ = tx.send(Ok(half)).await;
                let _ = tx.send(Err(io::Error::other("x-mock-error: cut"))).await;
                drop(slot);
            });
            MockBody::Chan(rx)
        }
        Payload::Stream(frames) => {
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(pump(frames, tx, slot, ttft_ms, tokens_per_sec, cut));
            MockBody::Chan(rx)
        }
    };
    builder.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(MockBody::Full(Some(Bytes::from_static(
            b"bad mock response",
        ))));
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// Sends stream frames with the requested pacing, accounting generated tokens on the slot.
async fn pump(
    frames: Vec<wire::Frame>,
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    mut slot: Option<Slot>,
    ttft_ms: u64,
    tokens_per_sec: f64,
    cut: bool,
) {
    let stop_at = if cut { frames.len() / 2 } else { usize::MAX };
    let mut first = true;
    for (i, f) in frames.into_iter().enumerate() {
        if i == stop_at {
            let _ = tx.send(Err(io::Error::other("x-mock-error: cut"))).await;
            return;
        }
        if f.tokens > 0 {
            let wait = if first {
                first = false;
                ttft_ms as f64
            } else if tokens_per_sec > 0.0 {
                f.tokens as f64 * 1000.0 / tokens_per_sec
            } else {
                0.0
            };
            if let Some(s) = sleep_ms(wait) {
                s.await;
            }
            if let Some(s) = slot.as_mut() {
                s.generated(f.tokens);
            }
        }
        if tx.send(Ok(f.bytes)).await.is_err() {
            return; // the client went away
        }
    }
    if let Some(s) = slot {
        s.success();
    }
}

/// A parsed request body.
enum Parsed {
    /// A generation request.
    Turn(Turn),
    /// A request answered directly (embeddings, token counts) with its prompt tokens.
    Direct(Reply, u64),
}

fn parse_body(state: &State, route: &Route, body: &[u8]) -> Result<Parsed, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the request body is not valid JSON: {e}"))?;
    if !v.is_object() {
        return Err("the request body must be a JSON object".into());
    }
    let dims = state.opts.embedding_dims;
    let direct = |r: Result<(Reply, u64), String>| r.map(|(r, n)| Parsed::Direct(r, n));
    match route {
        Route::Chat => openai::parse_chat(&v).map(Parsed::Turn),
        Route::Completions => openai::parse_completion(&v).map(Parsed::Turn),
        Route::Embeddings => direct(openai::embeddings(&v, dims)),
        Route::Moderations => direct(openai::moderations(&v, &state.opts.moderation_flag_words)),
        Route::Messages => anthropic::parse(&v, true).map(Parsed::Turn),
        Route::CountTokens => direct(anthropic::count_tokens(&v)),
        Route::Gemini { model, method } => match method.as_str() {
            "generateContent" => gemini::parse(&v, model, false).map(Parsed::Turn),
            "streamGenerateContent" => gemini::parse(&v, model, true).map(Parsed::Turn),
            "countTokens" => direct(gemini::count_tokens(&v, model)),
            "embedContent" => direct(gemini::embed_content(&v, dims)),
            _ => direct(gemini::batch_embed(&v, dims)),
        },
        Route::Bedrock { model, stream } => bedrock::parse(&v, model, *stream).map(Parsed::Turn),
        _ => Err("no body expected".into()),
    }
}

/// The error applies unless `x-mock-error-times` says this scenario has failed enough.
fn error_applies(state: &State, c: &Controls) -> bool {
    let (Some(err), Some(times)) = (&c.error, c.error_times) else {
        return c.error.is_some();
    };
    let key = c.scenario.clone().unwrap_or_else(|| format!("{err:?}"));
    let mut m = lock(&state.scenarios);
    let n = m.entry(key).or_insert(0);
    *n += 1;
    *n <= times
}

#[allow(clippy::too_many_arguments)]
async fn process(
    state: &Arc<State>,
    seq: u64,
    route: &Route,
    headers: &HeaderMap,
    query: &str,
    body: &[u8],
    auth: &[AuthUsed],
    reset: &AtomicBool,
    started: Instant,
) -> Result<Prepared, Aborted> {
    let family = route.family();
    match route {
        Route::Metrics => {
            let text = state.sched.metrics_text(&state.opts.served_model_name);
            return Ok(Prepared::plain(Reply {
                status: 200,
                headers: vec![(
                    "content-type".into(),
                    "text/plain; version=0.0.4; charset=utf-8".into(),
                )],
                payload: Payload::Full(text.into_bytes()),
            }));
        }
        Route::Health => {
            return Ok(Prepared::plain(Reply {
                status: 200,
                headers: Vec::new(),
                payload: Payload::Full(Vec::new()),
            }));
        }
        Route::NotFound => {
            return Ok(Prepared::plain(wire::error(
                family,
                404,
                "Unknown request URL. Please check the URL and method.",
                1,
            )));
        }
        _ => {}
    }
    if let Some(want) = &state.opts.require_key {
        if !auth.iter().any(|a| &a.key == want) {
            let (status, msg) = match family {
                Family::OpenAi => (401, "Incorrect API key provided."),
                Family::Anthropic => (401, "invalid x-api-key"),
                Family::Gemini => (401, "API key not valid. Please pass a valid API key."),
                Family::Bedrock => (
                    403,
                    "The security token included in the request is invalid.",
                ),
            };
            return Ok(Prepared::plain(wire::error(family, status, msg, 1)));
        }
    }
    let mut controls = match state.opts.defaults.with_headers(headers) {
        Ok(c) => c,
        Err(e) => return Ok(Prepared::plain(wire::error(family, 400, &e, 1))),
    };
    if route == &Route::Models {
        let anthropic = headers.contains_key("anthropic-version");
        return Ok(Prepared::plain(openai::models(
            &state.opts.models,
            now_secs(),
            anthropic,
        )));
    }
    if !error_applies(state, &controls) {
        controls.error = None;
    }
    let Some(mut slot) = state.sched.admit().await else {
        return Ok(Prepared::plain(wire::error(
            family,
            429,
            "the mock server's queue is full",
            controls.retry_after,
        )));
    };
    if let Some(s) = sleep_ms(controls.latency_ms as f64) {
        s.await;
    }
    let parsed = parse_body(state, route, body);
    let prompt_tokens = match &parsed {
        Ok(Parsed::Turn(t)) => t.prompt_tokens,
        Ok(Parsed::Direct(_, n)) => *n,
        Err(_) => 0,
    };
    slot.prompt(prompt_tokens);
    let mut cut = false;
    match controls.error {
        Some(ErrorMode::Status(code)) => {
            let msg = format!("mock error {code} (x-mock-error)");
            let mut p = Prepared::plain(wire::error(family, code, &msg, controls.retry_after));
            p.prompt_tokens = prompt_tokens;
            return Ok(p);
        }
        Some(ErrorMode::Reset) => {
            reset.store(true, Ordering::SeqCst);
            return Err(Aborted("x-mock-error: reset"));
        }
        Some(ErrorMode::Hang) => {
            // Hold the slot forever; the future is dropped when the client disconnects or the
            // server stops.
            std::future::pending::<()>().await;
        }
        Some(ErrorMode::Cut) => cut = true,
        None => {}
    }
    let turn = match parsed {
        Err(e) => return Ok(Prepared::plain(wire::error(family, 400, &e, 1))),
        Ok(Parsed::Direct(reply, n)) => {
            let mut p = Prepared::plain(reply);
            p.prompt_tokens = n;
            p.cut = cut;
            p.slot = Some(slot);
            return Ok(p);
        }
        Ok(Parsed::Turn(t)) => t,
    };
    state.update_log(seq, |r| {
        r.model = Some(turn.model.clone());
        r.stream = turn.stream;
    });
    let plan = plan::plan(&turn, &controls, seq);
    let chunk = controls.chunk_size;
    let ctx = openai::Ctx {
        seq,
        created: now_secs(),
    };
    let model = turn.model.as_str();
    let latency = || started.elapsed().as_millis() as u64;
    let reply = match (route, turn.stream) {
        (Route::Chat, false) => openai::chat_full(&plan, model, &ctx),
        (Route::Chat, true) => openai::chat_stream(&plan, model, &ctx, turn.include_usage, chunk),
        (Route::Completions, false) => openai::completion_full(&plan, model, &ctx),
        (Route::Completions, true) => {
            openai::completion_stream(&plan, model, &ctx, turn.include_usage, chunk)
        }
        (Route::Messages, false) => anthropic::full(&plan, model, seq),
        (Route::Messages, true) => anthropic::stream(&plan, model, seq, chunk),
        (Route::Gemini { .. }, false) => gemini::full(&plan, model, seq),
        (Route::Gemini { .. }, true) => {
            let sse = query_param(query, "alt").as_deref() == Some("sse");
            gemini::stream(&plan, model, seq, chunk, sse)
        }
        (Route::Bedrock { .. }, false) => bedrock::full(&plan, latency()),
        (Route::Bedrock { .. }, true) => bedrock::stream(&plan, chunk, latency()),
        _ => wire::error(
            family,
            404,
            "Unknown request URL. Please check the URL and method.",
            1,
        ),
    };
    let reply = if family == Family::Anthropic {
        reply.header("request-id", format!("req_mock{seq}"))
    } else if family == Family::Bedrock {
        reply.header("x-amzn-requestid", format!("mock-{seq}"))
    } else {
        reply
    };
    if matches!(reply.payload, Payload::Full(_)) {
        // Whole answers arrive after the time to first token plus the generation time.
        let gen_ms = if controls.tokens_per_sec > 0.0 {
            plan.completion_tokens as f64 * 1000.0 / controls.tokens_per_sec
        } else {
            0.0
        };
        if let Some(s) = sleep_ms(controls.ttft_ms as f64 + gen_ms) {
            s.await;
        }
        slot.generated(plan.completion_tokens);
    }
    Ok(Prepared {
        reply,
        slot: Some(slot),
        ttft_ms: controls.ttft_ms,
        tokens_per_sec: controls.tokens_per_sec,
        cut,
        prompt_tokens: plan.prompt_tokens,
        completion_tokens: plan.completion_tokens,
    })
}
