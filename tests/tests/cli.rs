//! `host-sim run` from the command line on the Higress plugins of `gpustack-higress-plugins`
//! 0.5.1 (Go-built, ABI 0_2_100): the JSON report must say what the library says for the same
//! request and upstream files, and errors must be short and clear.

use aigw_tests::{gpustack_module, host_sim_bin};
use host_sim::{http1, PluginSpec, Sim, SimOptions, StreamRecord};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch directory for one test's input files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aigw-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Writes the request, upstream response and config files of one case.
struct Case {
    dir: PathBuf,
}

impl Case {
    fn new(test: &str) -> Case {
        Case { dir: scratch(test) }
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, bytes).expect("write input file");
        p
    }

    fn request(&self, body: &Value) -> PathBuf {
        let body = body.to_string();
        let text = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: api.example.com\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.file("req.http", text.as_bytes())
    }

    fn upstream(&self, content_type: &str, body: &str) -> PathBuf {
        let text = format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\n\r\n{body}");
        self.file("resp.http", text.as_bytes())
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run_cli(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(host_sim_bin())
        .args(args)
        .output()
        .expect("run host-sim")
}

/// `host-sim run MODULE --config C --request R --upstream U --json`, parsed; panics unless it
/// exits with 0.
fn run_json(module: &Path, config: &str, req: &Path, upstream: &Path) -> Value {
    let out = run_cli(&[
        "run".as_ref(),
        module.as_os_str(),
        "--config".as_ref(),
        config.as_ref(),
        "--request".as_ref(),
        req.as_os_str(),
        "--upstream".as_ref(),
        upstream.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "host-sim failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)))
}

/// The same exchange through the library, from the same files.
fn run_lib(module: &Path, config: &str, req: &Path, upstream: &Path) -> (Sim, StreamRecord) {
    let req = http1::parse_request(&std::fs::read(req).unwrap()).unwrap();
    let resp = http1::parse_response(&std::fs::read(upstream).unwrap()).unwrap();
    let mut sim = Sim::new(SimOptions::default());
    sim.add_plugin(PluginSpec::from_file(module).unwrap().config_json(config))
        .unwrap();
    let rec = sim.run(req, resp).unwrap();
    (sim, rec)
}

/// The metrics of a library run as the CLI reports them: name → value.
fn metrics_json(sim: &Sim) -> Value {
    Value::Object(
        sim.metrics()
            .into_iter()
            .map(|(k, m)| (k, json!(m.value)))
            .collect(),
    )
}

fn json_body(v: &Value) -> Value {
    serde_json::from_str(
        v.as_str()
            .unwrap_or_else(|| panic!("body is not text: {v}")),
    )
    .unwrap_or_else(|e| panic!("body is not JSON ({e}): {v}"))
}

const MASKING: &str = r#"{"system_deny":false,"deny_code":403,"deny_message":"blocked by policy","deny_words":["forbiddenword"],"replace_roles":[{"regex":"%{MOBILE}","type":"replace","value":"****"}]}"#;

fn user(content: &str) -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]})
}

const ANSWER: &str = r#"{"id":"c1","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"sure"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}"#;

#[test]
fn cli_masks_a_phone_number_like_the_library() {
    let case = Case::new("mask");
    let module = gpustack_module("ai-data-masking", "2.0.3");
    let req = case.request(&user("call me at 13800138000 please"));
    let up = case.upstream("application/json", ANSWER);
    let report = run_json(&module, MASKING, &req, &up);
    let sent = json_body(&report["upstream_request"]["body"]);
    assert_eq!(sent["messages"][0]["content"], "call me at **** please");
    assert_eq!(report["upstream_request"]["complete"], true);
    assert_eq!(report["response"]["status"], 200);
    assert_eq!(report["finished"], true);

    let (_, rec) = run_lib(&module, MASKING, &req, &up);
    let lib_up = rec.upstream_request.expect("library: upstream");
    assert_eq!(sent, lib_up.json());
    assert_eq!(json_body(&report["response"]["body"]), rec.response.json());
}

#[test]
fn cli_blocks_a_deny_word_like_the_library() {
    let case = Case::new("deny");
    let module = gpustack_module("ai-data-masking", "2.0.3");
    let req = case.request(&user("say forbiddenword"));
    let up = case.upstream("application/json", ANSWER);
    let report = run_json(&module, MASKING, &req, &up);
    assert_eq!(report["upstream_request"], Value::Null);
    assert_eq!(report["response"]["status"], 403);
    assert_eq!(report["local_reply"]["status"], 403);
    let body = json_body(&report["response"]["body"]);
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "blocked by policy"
    );
    let logs = report["logs"].as_array().expect("logs");
    assert!(
        logs.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("custom deny word forbiddenword matched"))),
        "{logs:?}"
    );

    let (_, rec) = run_lib(&module, MASKING, &req, &up);
    assert_eq!(rec.response.status, 403);
    assert_eq!(body, rec.response.json());
}

fn statistic(model: &str, metric: &str) -> String {
    format!("route.default.upstream.upstream.model.{model}.consumer.none.metric.{metric}")
}

#[test]
fn cli_reports_ai_statistics_metrics_like_the_library() {
    let module = gpustack_module("ai-statistics", "2.0.0");

    // Non-streaming.
    let case = Case::new("stats");
    let req = case.request(&user("hello"));
    let up = case.upstream("application/json", ANSWER);
    let report = run_json(&module, "{}", &req, &up);
    let metrics = &report["metrics"];
    assert_eq!(metrics[statistic("gpt-4o", "input_token")], 9);
    assert_eq!(metrics[statistic("gpt-4o", "output_token")], 4);
    assert_eq!(metrics[statistic("gpt-4o", "total_token")], 13);
    assert_eq!(metrics[statistic("gpt-4o", "llm_duration_count")], 1);
    let (sim, _) = run_lib(&module, "{}", &req, &up);
    assert_eq!(*metrics, metrics_json(&sim));

    // Streaming, usage in the last chunk (stream_options.include_usage).
    let case = Case::new("stats-stream");
    let mut body = user("count");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let req = case.request(&body);
    let sse = concat!(
        "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"one\"}}]}\n\n",
        "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" two\"}}]}\n\n",
        "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );
    let up = case.upstream("text/event-stream", sse);
    let report = run_json(&module, "{}", &req, &up);
    let metrics = &report["metrics"];
    assert_eq!(metrics[statistic("gpt-4o-mini", "input_token")], 5);
    assert_eq!(metrics[statistic("gpt-4o-mini", "output_token")], 2);
    assert_eq!(metrics[statistic("gpt-4o-mini", "total_token")], 7);
    assert_eq!(
        metrics[statistic("gpt-4o-mini", "llm_stream_duration_count")],
        1
    );
    assert_eq!(report["response"]["body"], sse);
    let (sim, _) = run_lib(&module, "{}", &req, &up);
    assert_eq!(*metrics, metrics_json(&sim));
}

#[test]
fn cli_refuses_a_file_that_is_not_wasm_in_one_line() {
    let case = Case::new("notwasm");
    let bogus = case.file("plugin.wasm", b"this is not a module\n");
    let req = case.request(&user("hi"));
    let out = run_cli(&[
        "run".as_ref(),
        bogus.as_os_str(),
        "--request".as_ref(),
        req.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("host-sim: "), "{err}");
    assert!(lines[0].contains("not a WebAssembly module"), "{err}");
    assert!(lines[0].contains(&bogus.display().to_string()), "{err}");
}

#[test]
fn cli_shows_the_plugin_log_when_it_rejects_its_config() {
    let case = Case::new("badconfig");
    let module = gpustack_module("transformer", "2.0.0");
    let req = case.request(&user("hi"));
    // transformer needs reqRules or respRules.
    let out = run_cli(&[
        "run".as_ref(),
        module.as_os_str(),
        "--config".as_ref(),
        "{}".as_ref(),
        "--request".as_ref(),
        req.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    // The plugin's own log lines, then the verdict.
    assert!(
        err.lines().any(|l| l.starts_with("[Warn]")
            && l.contains("parse rule config failed: transformer rule not exist in yaml")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("[Error]") && l.contains("plugin start failed")),
        "{err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("host-sim: ") && last.contains("rejected its configuration"),
        "{err}"
    );
}
