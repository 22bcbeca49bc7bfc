//! Load through the local gateway from a second process. `host-sim serve` (two worker VMs per
//! plugin) runs the full chain ai-statistics → ai-auth → ai-guard → ai-cache →
//! ai-token-ratelimit → ai-proxy in front of an in-process mock LLM; this process is the load
//! generator, speaking raw HTTP/1.1 over TCP from many threads.
//!
//! 1. **Load**: [`STREAMS`] streamed chat requests, [`CONCURRENCY`] at a time, each with its own
//!    prompt (so ai-cache never answers and every request reaches the upstream). Every answer is
//!    a complete SSE stream: the whole echoed prompt, `finish_reason: stop`, the usage with the
//!    mock's token count, `[DONE]` last. The mock saw exactly [`STREAMS`] requests, none with
//!    the client's key. The request limit is exactly [`STREAMS`] per day: all were admitted,
//!    each saw a different `x-ratelimit-remaining-requests` (the counter shared by the two worker
//!    VMs moved once per request, no update lost or doubled), and the next request gets 429.
//!    The access log has one line per request, with the status and byte count the client got.
//! 2. **Hot reload during load**: slow streams are open and background load is running while
//!    the config file is rewritten with a new ai-guard block word. New requests see the new word;
//!    the open streams finish intact on the old configuration (the word is in their answers,
//!    which the new one would have cut); the background requests all got complete answers. Then
//!    a bad plugin configuration is written: the gateway says on stderr which field is wrong and
//!    the last good configuration keeps serving. The rate-limit counter survives the reloads.
//! 3. **Nothing lost, nothing extra**: the mock received exactly the requests the client got a
//!    200 for (compared prompt by prompt), and the access log has exactly one line per reply.
//!
//! Bounded: a fixed number of requests and one overall deadline ([`DEADLINE`]); no timing is
//! asserted.

use aigw_tests::{free_port, module_path};
use host_sim::mock_llm::{self, tokens, MockHandle, MockOptions};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Streamed requests of the load phase (and the request limit of the load consumer).
const STREAMS: usize = 240;
/// Client threads of the load phase, each with one request open at a time.
const CONCURRENCY: usize = 48;
/// Streams held open across the reload.
const SLOW_STREAMS: usize = 6;
/// Background threads sending requests while the configuration changes.
const BACKGROUND: usize = 6;
/// Upper bound of background requests, whatever happens.
const BACKGROUND_BUDGET: usize = 600;
/// Everything after the gateway is up must finish within this.
const DEADLINE: Duration = Duration::from_secs(150);
/// The load consumer's key (limited to [`STREAMS`] requests a day).
const LOAD_KEY: &str = "sk-load-5d41402abc4b2a76";
/// The other consumer's key (not limited).
const STEADY_KEY: &str = "sk-steady-7d793037a0760186";
/// The word the new configuration blocks.
const MARKER: &str = "zebracorn";

/// The slow streams' answer: long enough at [`SLOW_TOKENS_PER_SEC`] to stay open while the
/// gateway reloads, with the marker near the end.
fn slow_answer() -> String {
    let mut s = "tick ".repeat(80);
    s.push_str(MARKER);
    s.push_str(" done");
    s
}

/// Pace of the slow streams (about 12 s for [`slow_answer`]).
const SLOW_TOKENS_PER_SEC: &str = "7";

// ---------------------------------------------------------------------------------------------
// A small HTTP/1.1 client: one connection per request, `Connection: close`.

/// One answer as the client saw it.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The client's local port: identifies the request in the access log.
    port: u16,
    /// The prompt sent.
    prompt: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("the overall deadline of {DEADLINE:?} passed"))
}

/// An open request whose response has not been read yet.
struct Conn {
    r: BufReader<TcpStream>,
    port: u16,
    prompt: String,
}

impl Conn {
    fn arm(&self, deadline: Instant) -> Result<(), String> {
        self.r
            .get_ref()
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(|e| e.to_string())
    }

    fn line(&mut self, deadline: Instant) -> Result<String, String> {
        self.arm(deadline)?;
        let mut l = String::new();
        let n = self.r.read_line(&mut l).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed in the middle of the response".into());
        }
        Ok(l.trim_end_matches(['\r', '\n']).to_string())
    }

    fn exact(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>, String> {
        self.arm(deadline)?;
        let mut b = vec![0u8; n];
        self.r
            .read_exact(&mut b)
            .map_err(|e| format!("read {n} body bytes: {e}"))?;
        Ok(b)
    }
}

/// Sends `POST /v1/chat/completions` with `body`, the key and extra headers.
fn send(
    gw: u16,
    key: &str,
    extra: &[(&str, &str)],
    body: &Value,
    deadline: Instant,
) -> Result<Conn, String> {
    let s = TcpStream::connect(("127.0.0.1", gw)).map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(remaining(deadline)?))
        .map_err(|e| e.to_string())?;
    let port = s.local_addr().map_err(|e| e.to_string())?.port();
    let text = body.to_string();
    let mut head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{gw}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\
         authorization: Bearer {key}\r\n",
        text.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut w = &s;
    w.write_all(head.as_bytes())
        .and_then(|_| w.write_all(text.as_bytes()))
        .map_err(|e| format!("send: {e}"))?;
    Ok(Conn {
        r: BufReader::new(s),
        port,
        prompt: body_prompt(body),
    })
}

/// Reads the response: head, then the body (chunked, sized or until close), calling `on_data`
/// with each piece as it arrives.
fn read_reply(
    mut c: Conn,
    deadline: Instant,
    mut on_data: impl FnMut(&[u8]),
) -> Result<Reply, String> {
    let status_line = c.line(deadline)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let l = c.line(deadline)?;
        if l.is_empty() {
            break;
        }
        let (k, v) = l
            .split_once(':')
            .ok_or_else(|| format!("bad header line {l:?}"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let size_line = c.line(deadline)?;
            let size_hex = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| format!("bad chunk size line {size_line:?}"))?;
            if size == 0 {
                // Trailers, then the empty line.
                while !c.line(deadline)?.is_empty() {}
                break;
            }
            let data = c.exact(size, deadline)?;
            on_data(&data);
            body.extend_from_slice(&data);
            if !c.line(deadline)?.is_empty() {
                return Err("chunk not followed by CRLF".into());
            }
        }
    } else if let Some(n) = get("content-length") {
        let n: usize = n.parse().map_err(|_| format!("bad content-length {n:?}"))?;
        body = c.exact(n, deadline)?;
        on_data(&body);
    } else {
        c.arm(deadline)?;
        c.r.read_to_end(&mut body)
            .map_err(|e| format!("read body: {e}"))?;
        on_data(&body);
    }
    Ok(Reply {
        status,
        headers,
        body,
        port: c.port,
        prompt: c.prompt,
    })
}

fn request(
    gw: u16,
    key: &str,
    extra: &[(&str, &str)],
    body: &Value,
    deadline: Instant,
) -> Result<Reply, String> {
    read_reply(send(gw, key, extra, body, deadline)?, deadline, |_| {})
}

/// The text of the last message of a chat request.
fn body_prompt(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A streamed chat request (usage asked for) with one user message.
fn chat(prompt: &str) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "stream": true,
        "stream_options": { "include_usage": true },
        "messages": [{ "role": "user", "content": prompt }],
    })
}

// ---------------------------------------------------------------------------------------------
// What a streamed answer must look like.

/// The parts of a streamed chat answer.
#[derive(Debug, Default)]
struct Sse {
    content: String,
    finish: Option<String>,
    usage: Option<Value>,
}

/// Parses an OpenAI SSE body; it must end with `data: [DONE]` and nothing after it.
fn parse_sse(body: &[u8]) -> Result<Sse, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the stream is not UTF-8".to_string())?;
    if !text.ends_with("\n\n") {
        return Err(format!(
            "the stream does not end with a complete event: ...{:?}",
            tail(text)
        ));
    }
    let mut sse = Sse::default();
    let mut done = false;
    for event in text.split("\n\n").filter(|e| !e.trim().is_empty()) {
        if done {
            return Err(format!("an event after [DONE]: {event:?}"));
        }
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim_start)
            .collect();
        let data = data.join("\n");
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value =
            serde_json::from_str(&data).map_err(|e| format!("event {data:?} is not JSON: {e}"))?;
        if v.get("error").is_some() {
            return Err(format!("error event in the stream: {data}"));
        }
        for c in v["choices"].as_array().into_iter().flatten() {
            if let Some(t) = c["delta"]["content"].as_str() {
                sse.content.push_str(t);
            }
            if let Some(f) = c["finish_reason"].as_str() {
                if let Some(old) = &sse.finish {
                    return Err(format!("two finish reasons: {old} and {f}"));
                }
                sse.finish = Some(f.to_string());
            }
        }
        if v["usage"].is_object() {
            sse.usage = Some(v["usage"].clone());
        }
    }
    if !done {
        return Err(format!("no [DONE]: ...{:?}", tail(text)));
    }
    Ok(sse)
}

fn tail(s: &str) -> &str {
    let mut i = s.len().saturating_sub(300);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// Checks a complete, successful stream whose content is `expected`, with the mock's usage.
fn check_stream(r: &Reply, expected: &str) -> Result<Sse, String> {
    if r.status != 200 {
        return Err(format!("status {} (body {:?})", r.status, r.text()));
    }
    if !r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream"))
    {
        return Err(format!(
            "content-type {:?} is not text/event-stream",
            r.header("content-type")
        ));
    }
    let sse = parse_sse(&r.body)?;
    if sse.content != expected {
        return Err(format!("content {:?}, expected {expected:?}", sse.content));
    }
    if sse.finish.as_deref() != Some("stop") {
        return Err(format!("finish_reason {:?}, expected stop", sse.finish));
    }
    let usage = sse.usage.as_ref().ok_or("no usage chunk")?;
    let want = tokens::count(expected);
    if usage["completion_tokens"].as_u64() != Some(want)
        || usage["prompt_tokens"].as_u64().unwrap_or(0) == 0
    {
        return Err(format!("usage {usage}, expected {want} completion tokens"));
    }
    Ok(sse)
}

/// Checks an OpenAI-shaped error reply.
fn check_error(r: &Reply, status: u16, code: &str) -> Result<(), String> {
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    if r.status != status || v["error"]["code"] != code {
        return Err(format!(
            "expected {status} with error code {code}, got {} {}",
            r.status,
            r.text()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The gateway process.

type Gateway = aigw_tests::ServeProcess;

fn example(name: &str) -> Value {
    let p = aigw_tests::example_config(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn plugin(name: &str, config: Value) -> Value {
    let wasm = module_path(name);
    assert!(
        wasm.exists(),
        "{} is missing: run `make build` first",
        wasm.display()
    );
    json!({ "name": name, "wasm": wasm, "config": config })
}

/// ai-guard's example configuration plus one more keyword list.
fn guard_with(list: Option<Value>) -> Value {
    let mut g = example("ai-guard");
    if let (Some(list), Some(lists)) = (list, g["keywords"]["lists"].as_array_mut()) {
        lists.push(list);
    }
    g
}

/// The gateway file: one route, the full chain, the mock as the `llm` cluster.
fn gateway_config(port: u16, mock: &MockHandle, access_log: &Path, guard: Value) -> Value {
    let auth = json!({
        "consumers": [
            { "name": "load", "credential": LOAD_KEY },
            { "name": "steady", "credential": STEADY_KEY },
        ],
        "global_auth": true,
    });
    let limit = json!({
        "limits": [{
            "name": "load-requests",
            "key": [{ "by": "consumer", "match": "load" }],
            "count": "requests",
            "per_day": STREAMS,
        }],
    });
    json!({
        "listen": format!("127.0.0.1:{port}"),
        "workers": 2,
        "access_log": access_log,
        "clusters": { "llm": { "endpoints": [mock.addr.to_string()] } },
        "routes": [{
            "name": "llm",
            "cluster": "llm",
            "plugins": [
                plugin("ai-statistics", example("ai-statistics")),
                plugin("ai-auth", auth),
                plugin("ai-guard", guard),
                plugin("ai-cache", example("ai-cache")),
                plugin("ai-token-ratelimit", limit),
                plugin("ai-proxy", example("ai-proxy")),
            ],
        }],
    })
}

/// Replaces the file in one step (the gateway never reads half a file).
fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).expect("write config");
    std::fs::rename(&tmp, path).expect("rename config");
}

fn pretty(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("json")
}

/// The request limit counts in UTC days: do not start in the last minutes of one.
fn avoid_day_boundary() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let left = 86_400 - now % 86_400;
    let needed = DEADLINE.as_secs() + 60;
    if left < needed {
        eprintln!(
            "gateway_load: waiting {left} s for the next UTC day (the request limit is per day)"
        );
        std::thread::sleep(Duration::from_secs(left + 1));
    }
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping of every request sent, for the mock count and the access log.

/// How a reply appears in the access log: (client port, status, body bytes).
type LogKey = (u16, u16, usize);

/// Every reply received, with the prompt sent.
#[derive(Default)]
struct Ledger(Mutex<Vec<(LogKey, String)>>);

impl Ledger {
    fn note(&self, r: &Reply) {
        if let Ok(mut l) = self.0.lock() {
            l.push(((r.port, r.status, r.body.len()), r.prompt.clone()));
        }
    }

    /// (client port, status, body bytes) of every reply.
    fn all(&self) -> Vec<LogKey> {
        self.0
            .lock()
            .map(|l| l.iter().map(|e| e.0).collect())
            .unwrap_or_default()
    }

    /// Prompts of the replies that came from the upstream (every 200 here: the local replies
    /// are 4xx), sorted.
    fn upstream_prompts(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .lock()
            .map(|l| {
                l.iter()
                    .filter(|e| e.0 .1 == 200)
                    .map(|e| e.1.clone())
                    .collect()
            })
            .unwrap_or_default();
        v.sort_unstable();
        v
    }
}

/// Prompts of the requests the mock received, sorted.
fn mock_prompts(mock: &MockHandle) -> Vec<String> {
    let mut v: Vec<String> = mock
        .requests()
        .iter()
        .map(|q| q.json().map(|b| body_prompt(&b)).unwrap_or_default())
        .collect();
    v.sort_unstable();
    v
}

/// The first differences between two sorted lists.
fn diff(got: &[String], want: &[String]) -> String {
    let count = |v: &[String]| {
        let mut m: BTreeMap<String, i64> = BTreeMap::new();
        for e in v {
            *m.entry(e.clone()).or_default() += 1;
        }
        m
    };
    let (g, w) = (count(got), count(want));
    let extra: Vec<_> = g
        .iter()
        .filter(|(k, n)| w.get(*k).copied().unwrap_or(0) < **n)
        .take(5)
        .collect();
    let missing: Vec<_> = w
        .iter()
        .filter(|(k, n)| g.get(*k).copied().unwrap_or(0) < **n)
        .take(5)
        .collect();
    format!("unexpected {extra:?}, missing {missing:?}")
}

/// Access-log lines as (client port, status, bytes).
fn access_entries(log: &Path) -> Result<Vec<LogKey>, String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(|line| {
            // 127.0.0.1:PORT "POST /v1/chat/completions" STATUS BYTES MSms route=llm upstream=...
            let bad = || format!("unexpected access-log line {line:?}");
            let (remote, rest) = line.split_once(' ').ok_or_else(bad)?;
            let port = remote
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(bad)?;
            let rest = rest
                .strip_prefix("\"POST /v1/chat/completions\" ")
                .ok_or_else(bad)?;
            let mut f = rest.split(' ');
            let status = f.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
            let bytes = f.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
            if !rest.contains(" route=llm ") {
                return Err(bad());
            }
            Ok((port, status, bytes))
        })
        .collect()
}

/// Waits until the access log holds exactly one line per reply, with its status and size.
fn check_access_log(log: &Path, ledger: &Ledger, deadline: Instant) {
    let mut want = ledger.all();
    want.sort_unstable();
    loop {
        let mut got = access_entries(log).unwrap_or_else(|e| panic!("{e}"));
        got.sort_unstable();
        if got == want {
            return;
        }
        if Instant::now() >= deadline || got.len() > want.len() {
            let index = |v: &[LogKey]| {
                let mut m: BTreeMap<LogKey, i64> = BTreeMap::new();
                for e in v {
                    *m.entry(*e).or_default() += 1;
                }
                m
            };
            let (g, w) = (index(&got), index(&want));
            let missing: Vec<_> = w
                .iter()
                .filter(|(k, n)| g.get(*k).copied().unwrap_or(0) < **n)
                .take(5)
                .collect();
            let extra: Vec<_> = g
                .iter()
                .filter(|(k, n)| w.get(*k).copied().unwrap_or(0) < **n)
                .take(5)
                .collect();
            panic!(
                "the access log does not match the {} replies ({} lines): \
                 missing (port, status, bytes) {missing:?}, unexpected {extra:?}",
                want.len(),
                got.len()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A probe's answer: ends with the marker the new configuration blocks.
fn probe_answer(n: usize) -> String {
    format!("probe {n} answers {MARKER} now")
}

/// Whether a probe's stream was cut at the marker (the new configuration) or delivered whole
/// (the old one); anything else is an error.
fn probe_saw_new_config(r: &Reply, answer: &str) -> Result<bool, String> {
    if check_stream(r, answer).is_ok() {
        return Ok(false);
    }
    let sse = parse_sse(&r.body)?;
    let before = &answer[..answer.find(MARKER).unwrap_or(answer.len())];
    if r.status != 200
        || sse.finish.as_deref() != Some("content_filter")
        || sse.content.trim_end() != before.trim_end()
    {
        return Err(format!(
            "neither the whole answer nor the text before {MARKER:?} with content_filter: \
             status {}, {sse:?}",
            r.status
        ));
    }
    Ok(true)
}

fn assert_no_failures(what: &str, failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{what}: {} of {total} failed; first ones:\n  {}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// The test.

/// The gateway under test, its mock upstream and what the client has seen.
struct Rig {
    port: u16,
    mock: MockHandle,
    dir: PathBuf,
    cfg: PathBuf,
    log: PathBuf,
    gw: Gateway,
    ledger: Arc<Ledger>,
    deadline: Instant,
}

impl Rig {
    fn start() -> Rig {
        let mock = mock_llm::spawn(MockOptions {
            max_running: 512,
            ..MockOptions::default()
        })
        .expect("start the mock LLM");
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("aigw-load-{port}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cfg = dir.join("gateway.json");
        let log = dir.join("access.log");
        let first = gateway_config(port, &mock, &log, guard_with(None));
        write_atomically(&cfg, &pretty(&first));
        let gw = Gateway::start(&cfg, &dir.join("stderr.log"), port);
        Rig {
            port,
            mock,
            cfg,
            log,
            gw,
            ledger: Arc::default(),
            deadline: Instant::now() + DEADLINE,
            dir,
        }
    }

    /// Rewrites the gateway file with another ai-guard configuration.
    fn write_guard(&self, guard: Value) {
        let v = gateway_config(self.port, &self.mock, &self.log, guard);
        write_atomically(&self.cfg, &pretty(&v));
    }

    /// A request whose reply goes into the ledger.
    fn request(&self, key: &str, extra: &[(&str, &str)], prompt: &str) -> Reply {
        let r = request(self.port, key, extra, &chat(prompt), self.deadline)
            .unwrap_or_else(|e| panic!("request {prompt:?}: {e}"));
        self.ledger.note(&r);
        r
    }

    /// Probe `n`: whether its answer was cut at the marker (the new configuration).
    fn probe(&self, n: usize) -> bool {
        let answer = probe_answer(n);
        let r = self.request(
            STEADY_KEY,
            &[("x-mock-answer", &answer)],
            &format!("probe {n}"),
        );
        probe_saw_new_config(&r, &answer).unwrap_or_else(|e| panic!("probe {n}: {e}"))
    }

    /// Polls stderr until a line contains every one of `needles`.
    fn stderr_line(&self, needles: &[&str]) -> String {
        loop {
            let text = self.gw.stderr_text();
            if let Some(l) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return l.to_string();
            }
            assert!(
                Instant::now() < self.deadline,
                "no line with {needles:?} on the gateway's stderr before the deadline:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Phase 1: [`STREAMS`] streams from [`CONCURRENCY`] threads; then the limit is used up.
fn load(rig: &Rig) {
    let next = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(CONCURRENCY));
    let threads: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (next, barrier, ledger) = (next.clone(), barrier.clone(), rig.ledger.clone());
            let (port, deadline) = (rig.port, rig.deadline);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                barrier.wait();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= STREAMS {
                        return mine;
                    }
                    let prompt = format!("load request {i}");
                    let r = request(port, LOAD_KEY, &[], &chat(&prompt), deadline);
                    if let Ok(r) = &r {
                        ledger.note(r);
                    }
                    mine.push((i, r));
                }
            })
        })
        .collect();
    let results: Vec<(usize, Result<Reply, String>)> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("load thread"))
        .collect();
    assert_eq!(results.len(), STREAMS, "every request was sent once");
    let mut failures = Vec::new();
    let mut remaining_seen = Vec::new();
    for (i, r) in &results {
        let checked = r.as_ref().map_err(Clone::clone).and_then(|r| {
            check_stream(r, &format!("Echo: load request {i}"))?;
            r.header("x-ratelimit-remaining-requests")
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| format!("no x-ratelimit-remaining-requests in {:?}", r.headers))
        });
        match checked {
            Ok(left) => remaining_seen.push(left),
            Err(e) => failures.push(format!("request {i}: {e}")),
        }
    }
    assert_no_failures("load streams", &failures, STREAMS);
    // Each admission moved the counter shared by both worker VMs by exactly one: the remaining
    // counts the requests saw are all different.
    remaining_seen.sort_unstable();
    assert_eq!(
        remaining_seen,
        (0..STREAMS).collect::<Vec<_>>(),
        "x-ratelimit-remaining-requests over the {STREAMS} admitted requests"
    );
    // The limit is used up exactly: the next request of the same consumer is refused.
    let over = rig.request(LOAD_KEY, &[], "one too many");
    check_error(&over, 429, "rate_limit_exceeded").unwrap_or_else(|e| panic!("{e}"));
    let seen = rig.mock.requests();
    assert_eq!(
        seen.len(),
        STREAMS,
        "the mock saw one request per admitted stream"
    );
    assert!(
        seen.iter()
            .all(|q| q.stream && q.status == Some(200) && q.auth.iter().all(|a| a.key != LOAD_KEY)),
        "upstream requests are streamed, answered 200, and never carry the client's key"
    );
    check_access_log(&rig.log, &rig.ledger, rig.deadline);
}

/// Opens [`SLOW_STREAMS`] slow streams answered with [`slow_answer`]; returns once each has
/// delivered its first bytes. Each thread returns the reply and when it ended.
fn open_slow_streams(rig: &Rig) -> Vec<JoinHandle<Result<(Reply, Instant), String>>> {
    let (started_tx, started_rx) = mpsc::channel::<usize>();
    let slow: Vec<_> = (0..SLOW_STREAMS)
        .map(|i| {
            let (started_tx, ledger) = (started_tx.clone(), rig.ledger.clone());
            let (port, deadline) = (rig.port, rig.deadline);
            std::thread::spawn(move || {
                let answer = slow_answer();
                let conn = send(
                    port,
                    STEADY_KEY,
                    &[
                        ("x-mock-answer", answer.as_str()),
                        ("x-mock-tokens-per-sec", SLOW_TOKENS_PER_SEC),
                    ],
                    &chat(&format!("slow stream {i}")),
                    deadline,
                )?;
                let mut signalled = false;
                let r = read_reply(conn, deadline, |_| {
                    if !signalled {
                        signalled = true;
                        let _ = started_tx.send(i);
                    }
                })?;
                ledger.note(&r);
                Ok((r, Instant::now()))
            })
        })
        .collect();
    drop(started_tx);
    for _ in 0..SLOW_STREAMS {
        started_rx
            .recv_timeout(remaining(rig.deadline).unwrap_or_default())
            .expect("every slow stream delivered its first bytes");
    }
    slow
}

/// Starts [`BACKGROUND`] threads sending streams until `stop` (at most [`BACKGROUND_BUDGET`]
/// in all). Each returns how many it sent and what went wrong.
fn start_background(rig: &Rig, stop: &Arc<AtomicBool>) -> Vec<JoinHandle<(usize, Vec<String>)>> {
    let budget = Arc::new(AtomicUsize::new(0));
    (0..BACKGROUND)
        .map(|t| {
            let (stop, budget, ledger) = (stop.clone(), budget.clone(), rig.ledger.clone());
            let (port, deadline) = (rig.port, rig.deadline);
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut sent = 0usize;
                while !stop.load(Ordering::SeqCst)
                    && budget.fetch_add(1, Ordering::SeqCst) < BACKGROUND_BUDGET
                {
                    let prompt = format!("steady {t} {sent}");
                    let r = request(
                        port,
                        STEADY_KEY,
                        &[("x-mock-tokens-per-sec", "40")],
                        &chat(&prompt),
                        deadline,
                    );
                    sent += 1;
                    let checked = r.and_then(|r| {
                        ledger.note(&r);
                        check_stream(&r, &format!("Echo: {prompt}")).map(|_| ())
                    });
                    if let Err(e) = checked {
                        failures.push(format!("background {t}/{sent}: {e}"));
                    }
                }
                (sent, failures)
            })
        })
        .collect()
}

/// Phase 2: a new configuration while slow streams are open and background load runs, then a
/// bad one. Returns the number of background requests.
fn reload_under_load(rig: &Rig) -> usize {
    let slow = open_slow_streams(rig);
    let stop = Arc::new(AtomicBool::new(false));
    let background = start_background(rig, &stop);

    // The new configuration blocks the marker (in prompts and answers). Poll until a new
    // request sees it. The probes look at the answer side (a stream ending with
    // `content_filter`), so every probe reaches the upstream and the upstream count stays exact.
    rig.write_guard(guard_with(Some(json!({
        "name": "reload-marker", "action": "block", "words": [MARKER]
    }))));
    let mut n = 0;
    let reloaded_at = loop {
        n += 1;
        if rig.probe(n) {
            break Instant::now();
        }
        assert!(
            Instant::now() < rig.deadline,
            "the new configuration was not in use before the deadline; gateway stderr:\n{}",
            rig.gw.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    rig.stderr_line(&["configuration reloaded"]);

    // A bad plugin configuration is rejected with a line naming the field; the last good
    // configuration keeps serving.
    rig.write_guard(guard_with(Some(json!({
        "name": "broken", "action": "explode", "words": ["anything"]
    }))));
    rig.stderr_line(&[
        "reload rejected, old configuration keeps serving",
        "ai-guard",
        "keywords.lists[3].action",
        "explode",
    ]);
    n += 1;
    assert!(
        rig.probe(n),
        "after the rejected plugin configuration the last good one still serves"
    );
    // So is a file that is not JSON (here cut in half); the error gives the place.
    let good = serde_json::to_vec(&gateway_config(
        rig.port,
        &rig.mock,
        &rig.log,
        guard_with(None),
    ))
    .expect("json");
    write_atomically(&rig.cfg, &good[..good.len() / 2]);
    rig.stderr_line(&[
        "reload rejected, old configuration keeps serving",
        "gateway.json:1:",
        "EOF while parsing",
    ]);
    n += 1;
    assert!(
        rig.probe(n),
        "after the rejected file the last good configuration still serves"
    );

    stop.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    let mut background_sent = 0;
    for t in background {
        let (sent, f) = t.join().expect("background thread");
        background_sent += sent;
        failures.extend(f);
    }
    assert_no_failures(
        "background requests during the reloads",
        &failures,
        background_sent,
    );
    assert!(
        background_sent > 0,
        "background load ran during the reloads"
    );

    // The open streams finished intact on the old configuration: the marker is in them.
    let answer = slow_answer();
    for (i, t) in slow.into_iter().enumerate() {
        let (r, ended) = t
            .join()
            .expect("slow stream thread")
            .unwrap_or_else(|e| panic!("slow stream {i}: {e}"));
        check_stream(&r, &answer).unwrap_or_else(|e| {
            panic!("slow stream {i}, open across the reload, was changed: {e}")
        });
        assert!(
            ended > reloaded_at,
            "slow stream {i} ended before the new configuration was in use, so it does not test \
             a reload under open streams: make slow_answer longer"
        );
    }
    // A new stream with the slow streams' answer is cut where the marker starts.
    let cut = rig.request(
        STEADY_KEY,
        &[("x-mock-answer", answer.as_str())],
        "the slow answer, after the reload",
    );
    assert!(
        probe_saw_new_config(&cut, &answer).unwrap_or_else(|e| panic!("{e}")),
        "a new stream with the slow streams' answer is cut by the new configuration"
    );
    background_sent
}

#[test]
fn load_and_hot_reload_through_the_full_chain() {
    avoid_day_boundary();
    let rig = Rig::start();
    let started = Instant::now();
    load(&rig);
    let background = reload_under_load(&rig);
    // The request counter survived the reloads: the load consumer is still refused.
    let again = rig.request(LOAD_KEY, &[], "still too many");
    check_error(&again, 429, "rate_limit_exceeded").unwrap_or_else(|e| panic!("{e}"));

    // Nothing lost, nothing extra: one upstream request per 200, one log line per reply.
    let (got, want) = (mock_prompts(&rig.mock), rig.ledger.upstream_prompts());
    assert!(
        got == want,
        "the mock saw {} requests, the client got {} answers from upstream: {}",
        got.len(),
        want.len(),
        diff(&got, &want)
    );
    check_access_log(&rig.log, &rig.ledger, rig.deadline);
    eprintln!(
        "gateway_load: {} replies ({STREAMS} load streams, {background} background, \
         {SLOW_STREAMS} slow streams across the reload) in {:.1} s",
        rig.ledger.all().len(),
        started.elapsed().as_secs_f64()
    );
    let dir = rig.dir.clone();
    drop(rig);
    let _ = std::fs::remove_dir_all(&dir);
}
