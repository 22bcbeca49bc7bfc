//! `host-sim serve`'s access log never keeps a credential the client put in the query string,
//! whether ai-auth stripped it before the upstream or no route matched.

use aigw_tests::{free_port, http, module_path, ServeProcess};
use host_sim::mock_llm::{self, MockOptions};
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn query_credentials_are_redacted_in_the_access_log() {
    let mock = mock_llm::spawn(MockOptions::default()).expect("start the mock LLM");
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("aigw-accesslog-{port}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let log = dir.join("access.log");
    let secret = "sk-query-secret-0123456789";
    let auth = json!({
        "consumers": [{ "name": "q", "credential": secret }],
        "keys": ["key", "api_key"],
        "in_query": true,
        "global_auth": true,
    });
    let cfg = json!({
        "listen": format!("127.0.0.1:{port}"),
        "workers": 1,
        "access_log": log,
        "clusters": { "llm": { "endpoints": [mock.addr.to_string()] } },
        "routes": [{
            "name": "llm",
            "prefix": "/v1/",
            "cluster": "llm",
            "plugins": [{ "name": "ai-auth", "wasm": module_path("ai-auth"), "config": auth }],
        }],
    });
    let cfg_path = dir.join("gateway.json");
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    let _gw = ServeProcess::start(&cfg_path, &dir.join("stderr.log"), port);

    let body = br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let (status, _, answer) = http::exchange(
        ("127.0.0.1", port),
        "localhost",
        "POST",
        &format!("/v1/chat/completions?api_key={secret}&trace=1"),
        &[("content-type", "application/json")],
        body,
    )
    .expect("exchange");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let (status, _, _) = http::exchange(
        ("127.0.0.1", port),
        "localhost",
        "GET",
        &format!("/no-route?key={secret}"),
        &[],
        b"",
    )
    .expect("exchange");
    assert_eq!(status, 404);

    // Both lines are written once the streams end.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 2 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!text.contains(secret), "secret in the access log:\n{text}");
    assert!(
        text.contains("/v1/chat/completions?api_key=REDACTED&trace=1"),
        "{text}"
    );
    assert!(text.contains("/no-route?key=REDACTED"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
