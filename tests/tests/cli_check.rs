//! `host-sim check PLUGIN.wasm CONFIG.json` through the real binary: exit 0 when the plugin
//! accepts the configuration, exit 2 with the plugin's own error line (naming the field) when
//! it rejects it; SDK plugins and plain proxy-wasm modules alike.

use aigw_tests::cli::{host_sim, scratch, stderr, stdout, write};
use aigw_tests::module_path;

fn module(name: &str) -> String {
    let p = module_path(name);
    assert!(p.exists(), "{} is missing: run `make build`", p.display());
    p.display().to_string()
}

#[test]
fn ai_proxy_accepts_a_good_config_from_a_file() {
    let dir = scratch("check", "proxy_good");
    let cfg = write(
        &dir,
        "proxy.json",
        r#"{"providers":[{"type":"openai","api_keys":["sk-test"]}]}"#,
    );
    let out = host_sim(&["check", &module("ai-proxy"), &cfg.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("ok: ai-proxy accepts the configuration"),
        "{}",
        stdout(&out)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ai_proxy_rejects_an_unknown_provider_type_naming_the_field() {
    let dir = scratch("check", "proxy_bad");
    let cfg = write(&dir, "proxy.json", r#"{"providers":[{"type":"nope"}]}"#);
    let out = host_sim(&["check", &module("ai-proxy"), &cfg.display().to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("providers[0].type"), "{err}");
    assert!(err.contains("nope"), "{err}");
    assert!(err.contains("rejected its configuration"), "{err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ai_token_ratelimit_accepts_and_rejects_inline_json() {
    let good = r#"{"limits":[{"name":"per-key","key":[{"by":"api_key"}],"per_minute":100000}]}"#;
    let out = host_sim(&["check", &module("ai-token-ratelimit"), good]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = host_sim(&["check", &module("ai-token-ratelimit"), r#"{"limits":"x"}"#]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("limits:"), "{err}");
    // --quiet keeps the verdict, which still carries the plugin's reason.
    let out = host_sim(&[
        "check",
        "--quiet",
        &module("ai-token-ratelimit"),
        r#"{"limits":"x"}"#,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("limits:"), "{err}");
}

#[test]
fn a_plain_proxy_wasm_module_is_judged_by_on_configure() {
    // Not built on the SDK: on_configure's return value is the verdict.
    let dir = scratch("check", "plain");
    let accepts = write(
        &dir,
        "accepts.wat",
        r#"(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1)))"#,
    );
    let rejects = write(
        &dir,
        "rejects.wat",
        r#"(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 0)))"#,
    );
    let out = host_sim(&["check", &accepts.display().to_string(), "{}"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = host_sim(&["check", &rejects.display().to_string(), "{}"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rejects rejected its configuration"),
        "{}",
        stderr(&out)
    );
    // A fixture with no configuration at all: Envoy passes an empty one.
    let out = host_sim(&["check", &module("ex-hello-world")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_missing_file_is_a_usage_error() {
    let out = host_sim(&["check", &module("ai-proxy"), "/nonexistent/config.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
}
