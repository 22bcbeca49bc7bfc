//! `host-sim check PLUGIN.wasm CONFIG.json` through the real binary: exit 0 when the plugin
//! accepts the configuration, exit 2 with the plugin's own error line (naming the field) when
//! it rejects it; SDK plugins and plain proxy-wasm modules alike. The schema half: the JSON
//! Schema next to the module (or `--schema`), its problems named by JSON pointer, no secret
//! ever printed.

use aigw_tests::cli::{assert_run, host_sim, scratch, stderr, stdout, write};
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
    assert_run(&out, 0, "ok: ai-proxy accepts the configuration");
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
    // The accepted types are listed; the rejected value is not echoed (it could be a secret
    // put in the wrong field).
    assert!(err.contains("use one of openai, azure"), "{err}");
    assert!(!err.contains("nope"), "{err}");
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
        "--no-schema",
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

/// A scratch copy of a built plugin with (or without) its generated schema beside it, as
/// `make build` + `make schema` lay them out in dist/.
fn module_copy(dir: &std::path::Path, plugin: &str, with_schema: bool) -> String {
    let to = dir.join(format!("{plugin}.wasm"));
    std::fs::copy(module(plugin), &to).expect("copy module");
    if with_schema {
        let schema = config_schema::schema(plugin).expect("schema");
        write(
            dir,
            &config_schema::file_name(plugin),
            &config_schema::render(&schema),
        );
    }
    to.display().to_string()
}

#[test]
fn the_schema_beside_the_module_is_found_and_its_problems_name_the_field() {
    let dir = scratch("check", "schema_found");
    let m = module_copy(&dir, "ai-token-ratelimit", true);
    let schema = dir.join("ai-token-ratelimit.schema.json");
    let out = host_sim(&["check", &m, r#"{"limits":[{"per_minute":-1}]}"#]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "schema {}: /limits/0/per_minute: -1 is less than the minimum of 1",
            schema.display()
        )),
        "{err}"
    );
    // The plugin's own verdict is still given.
    assert!(err.contains("limits[0].per_minute"), "{err}");
    assert!(stdout(&out).is_empty());

    let good = r#"{"limits":[{"key":[{"by":"api_key"}],"per_minute":100}]}"#;
    let out = host_sim(&["check", &m, good]);
    assert_run(
        &out,
        0,
        &format!(
            "ok: ai-token-ratelimit accepts the configuration; it matches the schema {}",
            schema.display()
        ),
    );
    // --quiet: one line per failed check.
    let out = host_sim(&["check", "--quiet", &m, r#"{"limits":"x"}"#]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.lines().any(|l| l.contains(": /limits: ")), "{err}");
    // A Higress build in `higress/` finds the schema one directory up.
    std::fs::create_dir_all(dir.join("higress")).expect("mkdir");
    let h = dir.join("higress").join("ai-token-ratelimit.wasm");
    std::fs::copy(&m, &h).expect("copy module");
    let out = host_sim(&["check", &h.display().to_string(), good]);
    assert_run(
        &out,
        0,
        &format!("it matches the schema {}", schema.display()),
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn without_a_schema_the_verdict_says_none_was_found() {
    let dir = scratch("check", "schema_none");
    let m = module_copy(&dir, "ai-statistics", false);
    let out = host_sim(&["check", &m, "{}"]);
    assert_run(
        &out,
        0,
        &format!(
            "no schema found: looked for {}",
            dir.join("ai-statistics.schema.json").display()
        ),
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_explicit_schema_is_used_even_when_the_plugin_accepts() {
    let dir = scratch("check", "schema_explicit");
    let m = module_copy(&dir, "ai-statistics", true);
    // A house rule stricter than the plugin: question logging must be configured.
    let strict = write(
        &dir,
        "strict.json",
        r#"{"type":"object","required":["log_question"]}"#,
    );
    let strict = strict.display().to_string();
    let out = host_sim(&["check", &m, "{}", "--schema", &strict]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "schema {strict}: (document): \"log_question\" is a required property"
        )),
        "{err}"
    );
    assert!(
        err.contains("ai-statistics accepts the configuration, but it does not match the schema"),
        "{err}"
    );
    let out = host_sim(&["check", &m, r#"{"log_question":true}"#, "--schema", &strict]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = host_sim(&["check", &m, "{}", "--schema", "/nonexistent/s.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
    // --no-schema skips even the schema beside the module.
    let out = host_sim(&["check", &m, r#"{"log_question":"yes"}"#, "--no-schema"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("schema"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn schema_problems_in_secret_fields_never_print_the_secret() {
    let dir = scratch("check", "schema_secret");
    let m = module_copy(&dir, "ai-proxy", true);
    let bad = [
        r#"{"providers":[{"type":"openai","api_keys":"sk-live-0123456789abcdef"}]}"#,
        r#"{"providers":[{"type":"bedrock","bedrock_region":"us-east-1","bedrock_access_key_id":"AKIA","bedrock_secret_access_key":["sk-live-0123456789abcdef"]}]}"#,
        r#"{"providers":[{"type":7,"api_keys":["sk-live-0123456789abcdef"]}]}"#,
    ];
    for cfg in bad {
        let out = host_sim(&["check", &m, cfg]);
        assert_eq!(out.status.code(), Some(2), "{cfg}");
        let (o, e) = (stdout(&out), stderr(&out));
        assert!(e.contains("schema "), "{e}");
        assert!(e.contains(": /providers/0"), "{e}");
        assert!(!o.contains("sk-live") && !e.contains("sk-live"), "{o}{e}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
