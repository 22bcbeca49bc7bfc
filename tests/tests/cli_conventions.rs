//! `host-sim` as a conventional command-line tool: `--help` on every subcommand, exit codes
//! that say how the stream ended (0 complete, 2 usage/config, 3 incomplete, 4 trap), errors
//! that name the flag that fixes them, and start-up logs that are shown.

use aigw_tests::cli::{host_sim, run_request, stderr, stdout, write};
use aigw_tests::gpustack_module;
use std::path::PathBuf;

fn scratch(test: &str) -> PathBuf {
    aigw_tests::cli::scratch("cliconv", test)
}

const REQUEST: &str = "POST /v1/chat/completions HTTP/1.1\r\nhost: api.example.com\r\ncontent-type: application/json\r\ncontent-length: 14\r\n\r\n{\"model\":\"m\"}\n";

/// A standard-ABI module whose `on_response_headers` pauses and never resumes: the stream can
/// never finish.
const HOLDS_RESPONSE: &str = concat!(
    r#"(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
"#,
    aigw_tests::wat_bump_alloc!(),
    r#"  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (i32.const 1)))"#
);

/// A module that traps in `on_request_headers`.
const TRAPS: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    unreachable))"#;

#[test]
fn every_subcommand_has_help_and_exits_zero() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["inspect", "--help"],
        vec!["check", "--help"],
        vec!["serve", "--help"],
        vec!["mock-llm", "--help"],
    ] {
        let out = host_sim(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(
            stdout(&out).to_lowercase().contains("usage"),
            "{args:?}: {}",
            stdout(&out)
        );
    }
    // The exit codes are documented where `run --help` shows them.
    let help = stdout(&host_sim(&["run", "--help"]));
    for needle in [
        "Exit codes:",
        "3  `run`: the stream did not complete",
        "--root-id",
    ] {
        assert!(help.contains(needle), "missing {needle:?} in:\n{help}");
    }
}

#[test]
fn a_stream_that_can_never_finish_is_an_error_not_http_0() {
    let dir = scratch("stall");
    let module = write(&dir, "hold.wat", HOLDS_RESPONSE);
    let req = write(&dir, "req.http", REQUEST);
    let args = [
        "run",
        module.to_str().unwrap(),
        "--request",
        req.to_str().unwrap(),
        "--settle-ms",
        "1000",
    ];
    let out = host_sim(&args);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(!stdout(&out).contains("HTTP/1.1 0"), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the stream did not complete") && err.contains("holds the response headers"),
        "{err}"
    );

    // The JSON report carries the same verdict.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = host_sim(&json_args);
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["finished"], false);
    assert_eq!(report["exit_code"], 3);
    assert!(
        report["incomplete"]
            .as_str()
            .is_some_and(|s| s.contains("filter 0 (hold) holds the response headers")),
        "{report}"
    );
}

#[test]
fn a_trap_while_serving_is_exit_code_4() {
    let dir = scratch("trap");
    let module = write(&dir, "trap.wat", TRAPS);
    let req = write(&dir, "req.http", REQUEST);
    let out = run_request(&module, &req, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    // The client got Envoy's answer to a failed VM.
    assert!(stdout(&out).starts_with("HTTP/1.1 503"), "{}", stdout(&out));
    assert!(stderr(&out).contains("trapped"), "{}", stderr(&out));
}

#[test]
fn errors_name_the_flag_that_fixes_them() {
    let dir = scratch("flags");
    let module = write(&dir, "hold.wat", HOLDS_RESPONSE);
    let req = write(&dir, "req.http", REQUEST);
    let m = module.to_str().unwrap();
    let r = req.to_str().unwrap();
    let out = host_sim(&["run", m, "--request", r, "--config", "{}", "--config", "{}"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("2 --config given for 1 plugin(s)"),
        "{}",
        stderr(&out)
    );
    let out = host_sim(&["run", m]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--request"), "{}", stderr(&out));
    let out = host_sim(&["run", m, "--request", r, "--cluster", "nohostport"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--cluster") && stderr(&out).contains("NAME=HOST:PORT"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cli_passes_a_429_through_a_higress_plugin_that_holds_response_headers() {
    let dir = scratch("429");
    let module = gpustack_module("gpustack-token-usage", "1.2.2");
    let req = write(&dir, "req.http", REQUEST);
    let busy = "{\"error\":{\"message\":\"rate limited\"}}";
    let up = write(
        &dir,
        "resp.http",
        &format!("HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\r\n{busy}"),
    );
    let out = host_sim(&[
        "run",
        module.to_str().unwrap(),
        "--config",
        "{}",
        "--request",
        req.to_str().unwrap(),
        "--upstream",
        up.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    assert!(
        text.ends_with(&format!("{busy}\n")) || text.ends_with(busy),
        "{text}"
    );
}
