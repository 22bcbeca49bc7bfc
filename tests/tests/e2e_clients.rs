//! End to end with real clients: the official `openai` and `anthropic` Python packages call
//! the local gateway (`host-sim serve`, a real HTTP server) running ai-guard,
//! ai-token-ratelimit and ai-proxy from dist/ in front of real mock LLM servers on loopback.

use aigw_tests::{free_port, module_path, root, ServeProcess};
use host_sim::mock_llm::{self, Controls, ErrorMode, MockOptions};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

/// A venv with the official clients, created once under target/.
fn python() -> PathBuf {
    let venv = root().join("target").join("venv-clients");
    let py = venv.join("bin").join("python");
    let marker = venv.join(".ready");
    if !marker.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "openai==3.57.0",
                    "anthropic==2.14.0",
                    "httpx",
                ])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok,
            "could not install the openai/anthropic clients (needs PyPI)"
        );
        std::fs::write(&marker, b"ok").unwrap();
    }
    py
}

fn plugin(name: &str, config: Value) -> Value {
    json!({ "name": name, "wasm": module_path(name), "config": config })
}

fn example(name: &str) -> Value {
    let text = aigw_tests::read_example_config(name);
    serde_json::from_str(&text).unwrap()
}

/// Paths of the requests `mock` saw that end with `suffix`.
fn seen_paths(mock: &mock_llm::MockHandle, suffix: &str) -> Vec<String> {
    mock.requests()
        .into_iter()
        .filter(|q| q.path.ends_with(suffix))
        .map(|q| q.path)
        .collect()
}

#[test]
fn official_clients_through_the_local_gateway() {
    let py = python();
    let healthy = mock_llm::spawn(MockOptions::default()).unwrap();
    let failing = mock_llm::spawn(MockOptions {
        defaults: Controls {
            error: Some(ErrorMode::Status(503)),
            ..Controls::default()
        },
        ..MockOptions::default()
    })
    .unwrap();
    let port = free_port();
    let chain = json!([
        plugin("ai-guard", example("ai-guard")),
        plugin("ai-token-ratelimit", example("ai-token-ratelimit")),
        plugin("ai-proxy", example("ai-proxy")),
    ]);
    let config = json!({
        "listen": format!("127.0.0.1:{port}"),
        "workers": 2,
        "access_log": "off",
        "clusters": {
            "mock": { "endpoints": [healthy.addr.to_string()] },
            "pair": { "endpoints": [
                { "address": failing.addr.to_string(), "priority": 0 },
                { "address": healthy.addr.to_string(), "priority": 1 } ] }
        },
        "routes": [
            { "name": "limited", "host": "limited.local", "cluster": "mock", "plugins": [
                plugin("ai-token-ratelimit", json!({"limits":[{"name":"ip","key":[{"by":"ip"}],"count":"requests","per_minute":2}]})),
                plugin("ai-proxy", example("ai-proxy")) ] },
            { "name": "failover", "host": "failover.local", "cluster": "pair",
              "retry": { "retry_on": ["5xx"], "num_retries": 1 }, "plugins": [ plugin("ai-proxy", example("ai-proxy")) ] },
            { "name": "claude", "host": "claude.local", "cluster": "mock", "plugins": [
                plugin("ai-proxy", json!({"providers": [{
                    "id": "claude", "type": "anthropic", "host": "mock", "api_keys": ["sk-ant-gw"],
                    "model_mapping": {"*": "claude-3-5-haiku-latest"} }]})) ] },
            { "name": "llm", "cluster": "mock", "plugins": chain }
        ]
    });
    let dir = std::env::temp_dir().join(format!("aigw-e2e-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg_path = dir.join("gateway.json");
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let _gw = ServeProcess::start(&cfg_path, &dir.join("gateway.err"), port);
    let out = Command::new(&py)
        .arg(root().join("tests/e2e/clients.py"))
        .env("GATEWAY", format!("http://127.0.0.1:{port}"))
        .output()
        .expect("run clients.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let show = serde_json::to_string_pretty(&r).unwrap();

    assert_eq!(r["chat"]["content"], "Echo: hello gateway", "{show}");
    assert!(r["chat"]["usage"].as_u64().unwrap_or(0) > 0, "{show}");
    assert_eq!(r["chat_stream"]["content"], "Echo: stream please", "{show}");
    assert_eq!(r["chat_stream"]["finish"], "stop", "{show}");
    assert!(
        r["chat_stream"]["usage"].as_u64().unwrap_or(0) > 0,
        "{show}"
    );
    assert_eq!(r["tools"]["name"], "get_weather", "{show}");
    assert_eq!(r["tools"]["arguments"]["location"], "Paris", "{show}");
    assert_eq!(r["tools"]["finish"], "tool_calls", "{show}");
    assert_eq!(r["embeddings"]["count"], 2, "{show}");
    assert!(r["embeddings"]["dims"].as_u64().unwrap_or(0) > 0, "{show}");
    assert_eq!(r["messages"]["content"], "Echo: hi claude", "{show}");
    assert_eq!(r["messages"]["stop"], "end_turn", "{show}");
    assert_eq!(
        r["messages_stream"]["content"], "Echo: stream claude",
        "{show}"
    );
    assert!(
        r["messages_stream"]["output_tokens"].as_u64().unwrap_or(0) > 0,
        "{show}"
    );
    assert_eq!(r["rate_limited"]["codes"], json!([200, 200, 429]), "{show}");
    assert!(
        r["rate_limited"]["retry_after"]
            .as_str()
            .is_some_and(|s| s.parse::<u64>().is_ok()),
        "{show}"
    );
    assert_eq!(r["blocked_prompt"]["status"], 400, "{show}");
    assert_eq!(r["blocked_prompt"]["code"], "content_filter", "{show}");
    assert_eq!(r["blocked_stream"]["finish"], "content_filter", "{show}");
    let text = r["blocked_stream"]["content"].as_str().unwrap_or("");
    assert!(!text.contains("stolen credit cards"), "{show}");
    assert!(text.starts_with("Once upon a time"), "{show}");
    assert_eq!(r["failover"]["content"], "Echo: failover", "{show}");
    assert!(
        failing
            .requests()
            .iter()
            .any(|q| q.path.ends_with("/chat/completions")),
        "priority 0 was tried first"
    );
    assert_eq!(r["headers"]["status"], 200, "{show}");
    assert_eq!(r["headers"]["provider"], "llm", "{show}");
    assert!(r["headers"]["limit_tokens"].as_str().is_some(), "{show}");

    // The Responses API through an Anthropic upstream (host claude.local).
    // Every object and event also validates strictly against the client's own types.
    for step in [
        "responses",
        "responses_tools",
        "responses_stream",
        "responses_stream_tools",
    ] {
        assert_eq!(r[step]["strict"], json!([]), "{step}: {show}");
    }
    let rs = &r["responses"];
    assert_eq!(rs["content"], "Echo: hello responses", "{show}");
    assert_eq!(rs["status"], "completed", "{show}");
    assert_eq!(rs["model"], "gpt-4.1", "{show}");
    assert_eq!(rs["types"], json!(["message"]), "{show}");
    assert!(rs["input_tokens"].as_u64().unwrap_or(0) > 0, "{show}");
    assert!(rs["output_tokens"].as_u64().unwrap_or(0) > 0, "{show}");
    let rt = &r["responses_tools"];
    assert_eq!(rt["status"], "completed", "{show}");
    assert_eq!(rt["name"], "get_weather", "{show}");
    assert_eq!(rt["arguments"], json!({"location": "Paris"}), "{show}");
    assert!(rt["output_tokens"].as_u64().unwrap_or(0) > 0, "{show}");
    let st = &r["responses_stream"];
    assert_eq!(st["content"], "Echo: stream responses", "{show}");
    assert_eq!(st["content"], st["final_text"], "{show}");
    assert_eq!(st["status"], "completed", "{show}");
    assert_eq!(st["first"], "response.created", "{show}");
    assert_eq!(st["last"], "response.completed", "{show}");
    assert!(st["deltas"].as_u64().unwrap_or(0) > 1, "{show}");
    assert!(st["input_tokens"].as_u64().unwrap_or(0) > 0, "{show}");
    assert!(st["output_tokens"].as_u64().unwrap_or(0) > 0, "{show}");
    let sc = &r["responses_stream_tools"];
    assert_eq!(sc["status"], "completed", "{show}");
    assert_eq!(sc["name"], "get_weather", "{show}");
    assert_eq!(sc["arguments"], json!({"location": "Paris"}), "{show}");
    assert_eq!(sc["streamed_arguments"], sc["arguments"], "{show}");
    assert_eq!(sc["last"], "response.completed", "{show}");
    assert!(sc["output_tokens"].as_u64().unwrap_or(0) > 0, "{show}");
    let to_claude = seen_paths(&healthy, "/v1/messages");
    assert_eq!(
        to_claude.len(),
        4,
        "the Responses calls reached the mock's Messages API: {to_claude:?}"
    );

    // The upstream saw the provider's key, never the client's.
    let seen = healthy.requests();
    assert!(seen
        .iter()
        .all(|q| q.header("authorization") != Some("Bearer sk-client")));
}
