//! `host-sim serve` on failure paths, answered as Envoy answers them:
//! - an upstream that cuts its response mid-stream: the client's connection closes before the
//!   message is complete (Envoy resets the downstream stream), not a clean end;
//! - the route timeout (504 `upstream request timeout` before response headers, a reset
//!   after), the per-try timeout (retried under `5xx`/`gateway-error`/`reset`, else 504), and
//!   the stream idle timeout (408/504 `stream timeout` before response headers, a reset after);
//! - request header limits (`max_request_headers_kb`, `max_headers_count`): 431 with Envoy's
//!   body;
//! - a filter that rewrites a body and leaves `content-length`: the message is not delivered
//!   as if it were whole.
//!
//! Upstreams are real loopback servers: the mock LLM, one that never answers, and one that
//! sends response headers and a first chunk, then stalls. Timeouts are a few hundred ms;
//! the tests assert statuses, bodies and broken messages, never durations.

use aigw_tests::{free_port, http, module_path, ServeProcess};
use host_sim::mock_llm::{self, MockOptions};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

/// A loopback server that accepts connections and never answers (keeps them open).
fn silent_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    addr
}

/// A loopback server that answers every request with the head of a chunked event stream and
/// one chunk, then stalls with the connection open.
fn stalling_stream_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 65536];
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                  transfer-encoding: chunked\r\n\r\n6\r\ndata:1\r\n",
            );
            held.push(s);
        }
    });
    addr
}

fn start(name: &str, config: &Value, port: u16) -> ServeProcess {
    let dir = std::env::temp_dir().join(format!("aigw-fail-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg: PathBuf = dir.join("gateway.json");
    std::fs::write(&cfg, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    ServeProcess::start(&cfg, &dir.join("gateway.err"), port)
}

/// Sends raw bytes and reads until the gateway closes the connection.
fn raw(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// Splits a raw response into (status, lower-case headers, body bytes as received).
fn split(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..at]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[at + 4..].to_vec())
}

fn get<'a>(h: &'a [(String, String)], k: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// Whether the body is a complete HTTP/1.1 message body (chunked with its terminating chunk,
/// or exactly content-length bytes).
fn complete(h: &[(String, String)], body: &[u8]) -> bool {
    if get(h, "transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        return http::dechunk(body).is_ok();
    }
    match get(h, "content-length").and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => body.len() == n,
        None => true,
    }
}

fn post(host: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn chat(stream: bool) -> String {
    json!({"model":"gpt-4o-mini","stream":stream,"messages":[{"role":"user","content":"hello there"}]})
        .to_string()
}

fn noop() -> Value {
    json!([{ "name": "noop", "wasm": module_path("noop") }])
}

#[test]
fn an_upstream_cut_mid_stream_reaches_the_client_as_a_broken_message() {
    let mock = mock_llm::spawn(MockOptions::default()).unwrap();
    let port = free_port();
    let config = json!({
        "listen": format!("127.0.0.1:{port}"), "access_log": "off",
        "clusters": { "llm": { "endpoints": [mock.addr.to_string()] } },
        "routes": [{ "name": "llm", "cluster": "llm", "plugins": noop() }]
    });
    let _gw = start("cut", &config, port);
    // Directly, the mock's cut stream is a broken message.
    let direct = raw(
        mock.addr.port(),
        &post("mock", &chat(true), "x-mock-error: cut\r\n"),
    );
    let (status, h, body) = split(&direct);
    assert_eq!(status, 200);
    assert!(!complete(&h, &body), "{}", String::from_utf8_lossy(&body));
    // Through the gateway it stays broken: headers and what came, then the connection closes.
    let out = raw(port, &post("gw", &chat(true), "x-mock-error: cut\r\n"));
    let (status, h, body) = split(&out);
    assert_eq!(status, 200);
    assert!(
        !complete(&h, &body),
        "the gateway ended a cut stream cleanly: {:?}",
        String::from_utf8_lossy(&body)
    );
    // An uncut stream still ends cleanly.
    let out = raw(port, &post("gw", &chat(true), ""));
    let (status, h, body) = split(&out);
    assert_eq!(status, 200);
    assert!(complete(&h, &body), "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&http::dechunk(&body).unwrap()).contains("[DONE]"));
}

#[test]
fn request_header_limits_answer_431_with_envoys_body() {
    let mock = mock_llm::spawn(MockOptions::default()).unwrap();
    let (port, small) = (free_port(), free_port());
    let config = |port: u16, limits: Value| {
        let mut c = json!({
            "listen": format!("127.0.0.1:{port}"), "access_log": "off",
            "clusters": { "llm": { "endpoints": [mock.addr.to_string()] } },
            "routes": [{ "name": "llm", "cluster": "llm", "plugins": noop() }]
        });
        if let (Some(c), Some(l)) = (c.as_object_mut(), limits.as_object()) {
            c.extend(l.clone());
        }
        c
    };
    let _gw = start("limits", &config(port, json!({})), port);
    let _gw2 = start(
        "limits-small",
        &config(
            small,
            json!({"max_request_headers_kb": 8, "max_headers_count": 20}),
        ),
        small,
    );
    let body = chat(false);
    let send = |port: u16, extra: &str| split(&raw(port, &post("gw", &body, extra)));
    let too_large = |r: &(u16, Vec<(String, String)>, Vec<u8>)| {
        r.0 == 431 && r.2 == b"Request Header Fields Too Large"
    };

    // Defaults: 60 KiB of headers and 100 headers.
    let big = format!("x-big: {}\r\n", "a".repeat(70 * 1024));
    let r = send(port, &big);
    assert!(too_large(&r), "{} {:?}", r.0, String::from_utf8_lossy(&r.2));
    assert_eq!(get(&r.1, "content-type"), Some("text/plain"));
    let fine = format!("x-big: {}\r\n", "a".repeat(50 * 1024));
    assert_eq!(send(port, &fine).0, 200);
    // host, connection, content-type, content-length + 97 = 101 headers.
    let many: String = (0..97).map(|i| format!("x-h{i}: v\r\n")).collect();
    let r = send(port, &many);
    assert!(too_large(&r), "{} {:?}", r.0, String::from_utf8_lossy(&r.2));
    let fewer: String = (0..96).map(|i| format!("x-h{i}: v\r\n")).collect();
    assert_eq!(send(port, &fewer).0, 200);

    // Configured limits.
    let r = send(small, &format!("x-big: {}\r\n", "a".repeat(10 * 1024)));
    assert!(too_large(&r), "{} {:?}", r.0, String::from_utf8_lossy(&r.2));
    let r = send(
        small,
        &(0..17)
            .map(|i| format!("x-h{i}: v\r\n"))
            .collect::<String>(),
    );
    assert!(too_large(&r), "{} {:?}", r.0, String::from_utf8_lossy(&r.2));
    assert_eq!(send(small, "x-small: 1\r\n").0, 200);
    // No rejected request reached the upstream.
    assert_eq!(mock.requests().len(), 3);
}

#[test]
fn route_per_try_and_idle_timeouts_answer_as_envoy() {
    let mock = mock_llm::spawn(MockOptions::default()).unwrap();
    let silent = silent_upstream().to_string();
    let stalling = stalling_stream_upstream().to_string();
    let port = free_port();
    let route = |host: &str, cluster: &str, extra: Value| {
        let mut r = json!({ "name": host, "host": host, "cluster": cluster, "plugins": noop() });
        if let (Some(r), Some(e)) = (r.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
        r
    };
    let config = json!({
        "listen": format!("127.0.0.1:{port}"), "access_log": "off",
        "clusters": {
            "silent": { "endpoints": [silent] },
            "stalling": { "endpoints": [stalling] },
            "failover": { "endpoints": [
                { "address": silent, "priority": 0 },
                { "address": mock.addr.to_string(), "priority": 1 } ] }
        },
        "routes": [
            route("route.local", "silent", json!({"timeout": "0.3s"})),
            route("started.local", "stalling", json!({"timeout": "0.5s"})),
            route("retry.local", "failover", json!({"timeout": "30s",
                "retry": {"retry_on": ["5xx"], "num_retries": 1, "per_try_timeout": "0.3s"}})),
            route("noretry.local", "failover", json!({"timeout": "30s",
                "retry": {"retry_on": ["connect-failure"], "num_retries": 1, "per_try_timeout": "300ms"}})),
            route("idle.local", "silent", json!({"timeout": "0s", "idle_timeout": "0.3s"})),
            route("idlestream.local", "stalling", json!({"timeout": "0s", "idle_timeout": "0.3s"}))
        ]
    });
    let _gw = start("timeouts", &config, port);
    let body = chat(true);
    let send = |host: &str| split(&raw(port, &post(host, &body, "")));

    // Route timeout before response headers: 504 with Envoy's body.
    let (status, h, b) = send("route.local");
    assert_eq!(
        (status, b.as_slice()),
        (504, &b"upstream request timeout"[..])
    );
    assert_eq!(get(&h, "content-type"), Some("text/plain"));
    // After response headers: the stream is reset (the body never completes).
    let (status, h, b) = send("started.local");
    assert_eq!(status, 200);
    assert!(!complete(&h, &b), "{:?}", String::from_utf8_lossy(&b));
    assert!(String::from_utf8_lossy(&b).contains("data:1"));

    // Per-try timeout: retried under 5xx (the next priority answers) ...
    let (status, _, b) = send("retry.local");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&b));
    // ... but not under connect-failure alone: 504.
    let (status, _, b) = send("noretry.local");
    assert_eq!(
        (status, b.as_slice()),
        (504, &b"upstream request timeout"[..])
    );

    // Stream idle timeout: 504 `stream timeout` once the request is complete ...
    let (status, _, b) = send("idle.local");
    assert_eq!((status, b.as_slice()), (504, &b"stream timeout"[..]));
    // ... 408 while the request body is still awaited ...
    let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: idle.local\r\nconnection: close\r\n\
                content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\":";
    let (status, _, b) = split(&raw(port, head.as_bytes()));
    assert_eq!((status, b.as_slice()), (408, &b"stream timeout"[..]));
    // ... and a reset once the response started.
    let (status, h, b) = send("idlestream.local");
    assert_eq!(status, 200);
    assert!(!complete(&h, &b), "{:?}", String::from_utf8_lossy(&b));
}

#[test]
fn a_body_rewritten_under_a_stale_content_length_is_not_delivered_whole() {
    let mock = mock_llm::spawn(MockOptions::default()).unwrap();
    let port = free_port();
    let config = json!({
        "listen": format!("127.0.0.1:{port}"), "access_log": "off",
        "clusters": { "llm": { "endpoints": [mock.addr.to_string()] } },
        "routes": [{ "name": "llm", "cluster": "llm", "plugins": [
            { "name": "conformance", "wasm": module_path("conformance"), "config": {} } ] }]
    });
    let _gw = start("framing", &config, port);
    let body = chat(false);

    // The plugin replaces the answer with 11 bytes and keeps the mock's content-length: the
    // client gets that content-length and a connection closed short of it.
    let (status, h, b) = split(&raw(port, &post("gw", &body, "x-conf: resp_rewrite\r\n")));
    assert_eq!(status, 200);
    let declared: usize = get(&h, "content-length").unwrap().parse().unwrap();
    assert!(
        declared > b.len(),
        "{declared} {:?}",
        String::from_utf8_lossy(&b)
    );
    // The same rewrite with content-length removed is a whole message.
    let (status, h, b) = split(&raw(
        port,
        &post("gw", &body, "x-conf: resp_rewrite\r\nx-conf-drop-cl: 1\r\n"),
    ));
    assert_eq!(status, 200);
    assert!(complete(&h, &b));
    let b = if get(&h, "transfer-encoding").is_some() {
        http::dechunk(&b).unwrap()
    } else {
        b
    };
    assert_eq!(b, b"[rewritten]");

    // Request side: the plugin grows the body by 2 bytes and keeps the client's
    // content-length: the request never reaches the upstream whole.
    let before = mock.requests().len();
    let (status, ..) = split(&raw(port, &post("gw", &body, "x-conf: shapes\r\n")));
    assert_eq!(status, 503);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(mock.requests().len(), before);
    // With content-length removed, the grown body reaches it.
    let (status, ..) = split(&raw(
        port,
        &post("gw", &body, "x-conf: shapes\r\nx-conf-drop-cl: 1\r\n"),
    ));
    assert_ne!(status, 503);
    let seen = mock.requests();
    let last = seen.last().expect("the request reached the mock");
    assert_eq!(last.body.len(), body.len() + 2);
    assert_eq!(last.header("content-length"), None);
}
