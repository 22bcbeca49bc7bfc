//! The proxy-wasm Rust SDK's examples, rewritten as small fixtures on the `proxy-wasm` crate
//! (tests/fixtures/ex-*), each run through `host-sim run` to the outcome Envoy documents for
//! it: HTTP and gRPC call-outs to real local servers, configuration, body rewrite, metadata
//! set from the command line, header logging, and ticks.

use aigw_tests::cli::{host_sim, run_request, stderr as err, stdout as out, write};
use aigw_tests::{grpc_stub, module_path};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

fn scratch(test: &str) -> PathBuf {
    aigw_tests::cli::scratch("rsdk", test)
}

fn module(name: &str) -> String {
    let p = module_path(name);
    assert!(p.exists(), "{} is missing: run `make build`", p.display());
    p.to_string_lossy().into_owned()
}

/// `host-sim run <module> --request <req> --upstream <up> <extra...>`.
fn run_exchange(module: &str, req: &Path, up: &Path, extra: &[&str]) -> Output {
    let (req, up) = (req.to_string_lossy(), up.to_string_lossy());
    let mut args = vec!["run", module, "--request", &req, "--upstream", &up];
    args.extend_from_slice(extra);
    host_sim(&args)
}

const GET: &str = "GET /anything HTTP/1.1\r\nhost: example.com\r\nx-custom: one\r\n\r\n";
const ANSWER: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 23\r\n\r\nthe secret is 42, shh!\n";

/// A one-connection-at-a-time HTTP/1.1 server answering every request with `body`.
fn http_server(body: &'static [u8]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    addr
}

#[test]
fn http_auth_random_passes_on_an_even_byte_and_forbids_an_odd_one() {
    let dir = scratch("auth");
    let req = write(&dir, "req.http", GET);
    let up = write(&dir, "up.http", ANSWER);
    let m = module("ex-http-auth-random");
    for (byte, status) in [(b"\x02" as &'static [u8], "200"), (b"\x03", "403")] {
        let httpbin = http_server(byte);
        let cluster = format!("httpbin={httpbin}");
        let o = run_exchange(&m, &req, &up, &["--cluster", &cluster]);
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
        let text = out(&o);
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{text}");
        assert!(text.contains("powered-by: proxy-wasm"), "{text}");
        if status == "403" {
            assert!(text.ends_with("Access forbidden.\n"), "{text}");
            assert!(err(&o).contains("Access forbidden."), "{}", err(&o));
        } else {
            assert!(text.contains("the secret is 42"), "{text}");
            assert!(err(&o).contains("Access granted."), "{}", err(&o));
        }
    }
}

const GRPC_REQUEST: &str = "POST /grpcbin.GRPCBin/Index HTTP/1.1\r\nhost: grpc.example\r\ncontent-type: application/grpc\r\nte: trailers\r\ncontent-length: 5\r\n\r\n\0\0\0\0\0";

fn grpc_run(cluster: &str) -> Output {
    let dir = scratch(&format!("grpc-{}", cluster.len()));
    let req = write(&dir, "req.http", GRPC_REQUEST);
    let cluster = format!("grpcbin={cluster}");
    run_request(
        module("ex-grpc-auth-random"),
        &req,
        &["--cluster", &cluster],
    )
}

#[test]
fn grpc_auth_random_follows_the_grpc_call_out() {
    // Even status (OK): the call goes on to the upstream.
    let o = grpc_run(&grpc_stub(0, Duration::ZERO).to_string());
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        err(&o).contains("grpc status 0") && err(&o).contains("Access granted."),
        "{}",
        err(&o)
    );
    assert!(out(&o).starts_with("HTTP/1.1 200"), "{}", out(&o));

    // Odd status (INVALID_ARGUMENT = 3): a trailers-only gRPC answer with ABORTED (10).
    let o = grpc_run(&grpc_stub(3, Duration::ZERO).to_string());
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        err(&o).contains("grpc status 3") && err(&o).contains("Access forbidden."),
        "{}",
        err(&o)
    );
    let text = out(&o);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("grpc-status: 10"), "{text}");
    assert!(
        text.contains("grpc-message: Aborted by Proxy-Wasm!"),
        "{text}"
    );
    assert!(text.contains("content-type: application/grpc"), "{text}");
}

#[test]
fn grpc_call_out_timeout_and_connect_failure_are_grpc_statuses() {
    // The server answers after 3 s; the call's 1 s timeout fires first: DEADLINE_EXCEEDED.
    let o = grpc_run(&grpc_stub(0, Duration::from_secs(3)).to_string());
    assert!(err(&o).contains("grpc status 4"), "{}", err(&o));
    // Nothing listens: UNAVAILABLE.
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let o = grpc_run(&closed.to_string());
    assert!(err(&o).contains("grpc status 14"), "{}", err(&o));
}

#[test]
fn http_config_puts_the_configuration_in_a_header() {
    let dir = scratch("config");
    let req = write(&dir, "req.http", GET);
    let o = run_request(
        module("ex-http-config"),
        &req,
        &["--config", "{\"from\":\"config\"}"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        out(&o).contains("custom-header: {\"from\":\"config\"}"),
        "{}",
        out(&o)
    );
}

#[test]
fn http_body_redacts_a_secret_answer_even_in_pieces() {
    let dir = scratch("body");
    let req = write(&dir, "req.http", GET);
    let up = write(&dir, "up.http", ANSWER);
    let o = run_exchange(&module("ex-http-body"), &req, &up, &["--chunk-size", "5"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.ends_with("Redacted: the answer had 23 bytes.\n"),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
}

#[test]
fn envoy_filter_metadata_answers_with_metadata_set_from_the_command_line() {
    let dir = scratch("metadata");
    let req = write(&dir, "req.http", GET);
    let m = module("ex-envoy-filter-metadata");
    let md = r#"{"filter_metadata":{"envoy.filters.http.lua":{"uppercased-custom-metadata":"SOME-VALUE"}}}"#;
    let o = run_request(&m, &req, &["--metadata", md]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(text.contains("uppercased-metadata: SOME-VALUE"), "{text}");
    assert!(
        text.ends_with("Custom response with Envoy metadata: \"SOME-VALUE\"\n"),
        "{text}"
    );
    // Without metadata the request goes to the upstream.
    let o = run_request(&m, &req, &[]);
    assert!(!out(&o).contains("uppercased-metadata"), "{}", out(&o));
}

#[test]
fn http_headers_logs_both_header_maps_and_answers_hello() {
    let dir = scratch("headers");
    let req = write(&dir, "req.http", GET);
    let up = write(&dir, "up.http", ANSWER);
    let m = module("ex-http-headers");
    let o = run_exchange(&m, &req, &up, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let logs = err(&o);
    for want in [
        "request :path: /anything",
        "request x-custom: one",
        "response :status: 200",
        "response content-type: text/plain",
        "done",
    ] {
        assert!(logs.contains(want), "missing {want:?} in {logs}");
    }
    let hello = write(
        &dir,
        "hello.http",
        "GET /hello HTTP/1.1\r\nhost: example.com\r\n\r\n",
    );
    let o = run_request(&m, &hello, &[]);
    assert!(
        out(&o).starts_with("HTTP/1.1 200") && out(&o).ends_with("Hello, World!\n"),
        "{}",
        out(&o)
    );
    assert!(out(&o).contains("hello: world"), "{}", out(&o));
}

#[test]
fn hello_world_greets_at_start_and_logs_each_tick() {
    // A background service in Envoy (bootstrap WasmService): no stream, 11 simulated seconds,
    // so the 5 s tick fires twice.
    let o = host_sim(&[
        "run",
        &module("ex-hello-world"),
        "--service",
        "--advance-ms",
        "11000",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let logs = err(&o);
    assert!(logs.contains("Hello, World!"), "{logs}");
    assert!(logs.contains("tick 1: the host clock says"), "{logs}");
    assert!(logs.contains("tick 2: the host clock says"), "{logs}");
    assert!(!logs.contains("tick 3"), "{logs}");
    // Without --service or --request, `run` says what it needs.
    let o = host_sim(&["run", &module("ex-hello-world")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("--request"), "{}", err(&o));
}

#[test]
fn grpc_call_outs_are_answered_in_serve_too() {
    use aigw_tests::{free_port, http, ServeProcess};
    let upstream = http_server(b"from the upstream");
    let run = |grpc: SocketAddr, test: &str, expect_log: &str| {
        let dir = scratch(test);
        let port = free_port();
        let cfg = serde_json::json!({
            "listen": format!("127.0.0.1:{port}"),
            "workers": 1,
            "access_log": "off",
            "clusters": {
                "web": { "endpoints": [upstream.to_string()] },
                "grpcbin": { "endpoints": [grpc.to_string()] },
            },
            "routes": [{
                "name": "web",
                "cluster": "web",
                "plugins": [{ "name": "grpc-auth", "wasm": module("ex-grpc-auth-random") }],
            }],
        });
        let path = write(&dir, "gateway.json", &cfg.to_string());
        let gw = ServeProcess::start(&path, &dir.join("stderr.log"), port);
        let r = http::exchange(
            ("127.0.0.1", port),
            "grpc.example",
            "POST",
            "/grpcbin.GRPCBin/Index",
            &[("content-type", "application/grpc"), ("te", "trailers")],
            b"\0\0\0\0\0",
        )
        .expect("exchange");
        // Plugin log lines reach the gateway's stderr on its next log flush.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !gw.stderr_text().contains(expect_log) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        (r, gw.stderr_text())
    };
    // OK from the gRPC service: the request goes on to the upstream.
    let ((status, _, body), log) = run(
        grpc_stub(0, Duration::ZERO),
        "serve-grpc-ok",
        "Access granted.",
    );
    assert_eq!(status, 200, "{log}");
    assert_eq!(body, b"from the upstream", "{log}");
    assert!(log.contains("Access granted."), "{log}");
    // INVALID_ARGUMENT: the plugin's own gRPC answer, never the upstream.
    let ((status, headers, body), log) = run(
        grpc_stub(3, Duration::ZERO),
        "serve-grpc-odd",
        "Access forbidden.",
    );
    assert_eq!(status, 200, "{log}");
    assert!(
        headers.iter().any(|(k, v)| k == "grpc-status" && v == "10"),
        "{headers:?}"
    );
    assert_ne!(body, b"from the upstream");
    assert!(log.contains("Access forbidden."), "{log}");
}
