//! `host-sim serve` reload and local-reply edge cases:
//! - a new config that changes several plugins, one of them rejected, changes nothing (no
//!   plugin is half-applied) and is reported once, not on every poll;
//! - a request a filter blocks after its headers went upstream never reaches the upstream as
//!   a complete request (the upstream request is aborted, as Envoy resets it).

use aigw_tests::{free_port, http, module_path, ServeProcess};
use host_sim::mock_llm::{self, MockOptions};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

fn config(port: u16, upstream: &str, auth: Value, guard: Value) -> Value {
    json!({
        "listen": format!("127.0.0.1:{port}"),
        "access_log": "off",
        "clusters": { "llm": { "endpoints": [upstream] } },
        "routes": [{ "name": "llm", "cluster": "llm", "plugins": [
            { "name": "ai-auth", "wasm": module_path("ai-auth"), "config": auth },
            { "name": "ai-guard", "wasm": module_path("ai-guard"), "config": guard },
            { "name": "ai-proxy", "wasm": module_path("ai-proxy"),
              "config": {"providers":[{"type":"openai-compatible","host":"llm","api_keys":["sk-up"]}]} }
        ]}]
    })
}

fn write_atomically(path: &Path, v: &Value) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// POSTs a chat request with `key`; returns the status.
fn chat(port: u16, key: &str, prompt: &str) -> u16 {
    let body =
        json!({"model":"gpt-4o-mini","messages":[{"role":"user","content":prompt}]}).to_string();
    let auth = format!("Bearer {key}");
    http::exchange(
        ("127.0.0.1", port),
        "gw",
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
    .map_or(0, |r| r.0)
}

#[test]
fn rejected_reload_changes_nothing_and_blocked_requests_never_reach_the_upstream() {
    let mock = mock_llm::spawn(MockOptions::default()).unwrap();
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("aigw-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("gateway.json");
    let auth_a = json!({"consumers":[{"name":"a","credential":"key-a-0123456789"}]});
    let guard = json!({"keywords":{"lists":[{"name":"banned","words":["forbiddenword"],"action":"block"}]}});
    write_atomically(
        &cfg,
        &config(port, &mock.addr.to_string(), auth_a.clone(), guard.clone()),
    );
    let gw = ServeProcess::start(&cfg, &dir.join("gateway.err"), port);
    assert_eq!(chat(port, "key-a-0123456789", "hello"), 200);
    assert_eq!(chat(port, "key-b-0123456789", "hello"), 401);
    assert_eq!(mock.requests().len(), 1);

    // Blocked by ai-guard after the headers went on: nothing reaches the mock.
    for _ in 0..5 {
        assert_eq!(chat(port, "key-a-0123456789", "say forbiddenword"), 400);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        mock.requests().len(),
        1,
        "{:?}",
        mock.requests()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    );

    // ai-auth gains consumer b, but ai-guard's new config is invalid: the whole file is
    // rejected, so b stays unknown.
    let auth_ab = json!({"consumers":[{"name":"a","credential":"key-a-0123456789"},{"name":"b","credential":"key-b-0123456789"}]});
    let bad_guard =
        json!({"keywords":{"lists":[{"name":"banned","words":["x"],"action":"explode"}]}});
    write_atomically(
        &cfg,
        &config(port, &mock.addr.to_string(), auth_ab.clone(), bad_guard),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !gw.stderr_text().contains("reload rejected") {
        assert!(Instant::now() < deadline, "no rejection reported");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let log = gw.stderr_text();
    assert_eq!(log.matches("reload rejected").count(), 1, "{log}");
    assert!(log.contains("action"), "{log}");
    assert_eq!(chat(port, "key-b-0123456789", "hello"), 401);
    assert_eq!(chat(port, "key-a-0123456789", "say forbiddenword"), 400);

    // Fixed: both changes apply together.
    write_atomically(&cfg, &config(port, &mock.addr.to_string(), auth_ab, guard));
    let deadline = Instant::now() + Duration::from_secs(60);
    while chat(port, "key-b-0123456789", "hello") != 200 {
        assert!(
            Instant::now() < deadline,
            "the fixed config was not applied"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
