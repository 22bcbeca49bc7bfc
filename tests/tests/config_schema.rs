//! The JSON Schemas generated from the plugins' config types (tools/config-schema) against
//! real configurations: every example the repository ships matches its plugin's schema and
//! the plugin (the built module) accepts it; a set of bad configurations is rejected by both,
//! the schema naming the field by its JSON pointer and never printing a secret.

use aigw_tests::spec;
use host_sim::config_schema::{check, Problem};
use host_sim::Sim;
use serde_json::{json, Value};

fn schema(plugin: &str) -> Value {
    config_schema::schema(plugin).unwrap_or_else(|| panic!("no schema for {plugin}"))
}

fn problems(plugin: &str, config: &Value) -> Vec<Problem> {
    check(&schema(plugin), config).expect("the generated schema compiles")
}

/// The built module's own verdict (`on_configure`, as `host-sim check` runs it).
fn plugin_verdict(plugin: &str, config: &Value) -> Result<(), String> {
    let mut sim = Sim::new(Default::default());
    sim.check_plugin(&spec(plugin).config_json(config.to_string()))
        .map_err(|e| format!("{e:#}"))
}

fn accepted_by_both(plugin: &str, config: &Value, what: &str) {
    let p = problems(plugin, config);
    assert!(p.is_empty(), "{what}: schema of {plugin} rejects it: {p:?}");
    if let Err(e) = plugin_verdict(plugin, config) {
        panic!("{what}: {plugin} rejects it: {e}");
    }
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_example_config_matches_its_schema_and_the_plugin_accepts_it() {
    let mut seen = 0;
    for plugin in config_schema::PLUGINS {
        for name in [
            plugin.to_string(),
            format!("{plugin}-upstream"),
            format!("{plugin}-rls"),
        ] {
            let path = aigw_tests::example_config(&name);
            if !path.exists() {
                continue;
            }
            let shown = path.strip_prefix(aigw_tests::root()).unwrap_or(&path);
            accepted_by_both(plugin, &read_json(&path), &shown.display().to_string());
            seen += 1;
        }
    }
    // Seven plugins, ai-proxy's upstream-mode example and ai-token-ratelimit's rls example.
    assert_eq!(seen, 9);
}

#[test]
fn every_plugin_config_of_the_demo_gateway_matches_its_schema() {
    let envoy = aigw_tests::root().join("envoy");
    let gateway = read_json(&envoy.join("gateway.json"));
    let mut seen = 0;
    for route in gateway["routes"].as_array().expect("routes") {
        for p in route["plugins"].as_array().into_iter().flatten() {
            let Some(name) = p["name"].as_str() else {
                continue;
            };
            if !config_schema::PLUGINS.contains(&name) {
                continue;
            }
            let config = match (&p["config"], p["config_file"].as_str()) {
                (Value::Null, Some(file)) => read_json(&envoy.join(file)),
                (Value::Null, None) => json!({}),
                (inline, _) => inline.clone(),
            };
            accepted_by_both(name, &config, &format!("gateway.json {}", route["name"]));
            seen += 1;
        }
    }
    assert!(
        seen >= 7,
        "only {seen} plugin configs in envoy/gateway.json"
    );
}

#[test]
fn both_token_ratelimit_forms_and_higress_rules_are_accepted() {
    // The Higress form, a key given as a number, and an IP limit.
    let higress = json!({
        "rule_name": "demo",
        "rule_items": [
            {"limit_by_param": "apikey", "limit_keys": [
                {"key": "k1", "token_per_minute": 10}, {"key": 123, "token_per_hour": 100}]},
            {"limit_by_per_ip": "from-remote-addr", "limit_keys": [
                {"key": "10.0.0.0/8", "token_per_second": 5, "limit_type": "request"}]}
        ]
    });
    accepted_by_both("ai-token-ratelimit", &higress, "Higress form");
    // `_rules_`: the global part lacks the required `providers`, each rule supplies it.
    let rules = json!({
        "key_selection": "random",
        "_rules_": [
            {"_match_route_": ["a"], "providers": [{"type": "openai", "api_keys": ["sk-a"]}]},
            {"_match_domain_": ["*.example.com"], "_match_service_": ["llm"],
             "providers": [{"type": "anthropic", "api_keys": ["sk-b"]}]}
        ]
    });
    accepted_by_both("ai-proxy", &rules, "ai-proxy rules");
    // The Redis section's `timeout_ms` alias (the plugin reads it in the higress build; the
    // portable build rejects cluster mode, so only the schema is asked here).
    let cluster = json!({"mode": "cluster", "limits": [{"per_minute": 1}],
                         "redis": {"service_name": "redis.static", "timeout_ms": 200}});
    assert_eq!(problems("ai-token-ratelimit", &cluster), vec![]);
    let both = json!({"limits": [{"per_minute": 1}],
                      "redis": {"service_name": "r", "timeout": 1, "timeout_ms": 2}});
    assert_eq!(problems("ai-token-ratelimit", &both)[0].path, "/redis");
}

/// Bad configurations: (plugin, config, JSON pointer of the schema problem, text the
/// problem contains).
fn bad_configs() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    vec![
        // Wrong type.
        (
            "ai-token-ratelimit",
            json!({"limits": [{"per_minute": "ten"}]}),
            "/limits/0/per_minute",
            "is not of type",
        ),
        // Out of range.
        (
            "ai-token-ratelimit",
            json!({"limits": [{"per_minute": -1}]}),
            "/limits/0/per_minute",
            "-1 is less than the minimum of 1",
        ),
        // Unknown enum values.
        (
            "ai-proxy",
            json!({"providers": [{"type": "openai"}], "key_selection": "fastest"}),
            "/key_selection",
            "\"fastest\"",
        ),
        (
            "ai-load-balancer",
            json!({"backends": [{"host": "a:1"}], "policy": "fastest"}),
            "/policy",
            "\"fastest\"",
        ),
        (
            "ai-token-ratelimit",
            json!({"limits": [{"key": [{"by": "user"}], "per_minute": 1}]}),
            "/limits/0/key/0/by",
            "\"user\"",
        ),
        (
            "ai-guard",
            json!({"patterns": [{"builtin": "email", "action": "drop"}]}),
            "/patterns/0/action",
            "\"drop\"",
        ),
        // Unknown fields (every plugin denies them).
        (
            "ai-cache",
            json!({"ttl_secs": 5}),
            "",
            "'ttl_secs' was unexpected",
        ),
        (
            "ai-auth",
            json!({"consumers": [{"name": "a", "credential": "x", "nmae": "b"}]}),
            "/consumers/0",
            "'nmae' was unexpected",
        ),
        (
            "ai-guard",
            json!({"stream": {"enabled": true, "max_len": 10}}),
            "/stream",
            "'max_len' was unexpected",
        ),
        (
            "ai-statistics",
            json!({"log_questions": true}),
            "",
            "'log_questions' was unexpected",
        ),
        // Missing required fields.
        (
            "ai-load-balancer",
            json!({}),
            "",
            "\"backends\" is a required property",
        ),
        (
            "ai-proxy",
            json!({"providers": [{"api_keys": ["k"]}]}),
            "/providers/0",
            "\"type\" is a required property",
        ),
        (
            "ai-cache",
            json!({"semantic": {"cluster": "emb"}}),
            "/semantic",
            "\"model\" is a required property",
        ),
        // A rule without a matcher.
        (
            "ai-statistics",
            json!({"_rules_": [{"log_answer": true}]}),
            "/_rules_/0",
            "anyOf",
        ),
    ]
}

#[test]
fn bad_configs_are_rejected_by_the_schema_with_the_path_and_by_the_plugin() {
    for (plugin, config, path, text) in bad_configs() {
        let p = problems(plugin, &config);
        assert!(
            p.iter().any(|p| p.path == path && p.message.contains(text)),
            "{plugin} {config}: want {path:?} with {text:?}, got {p:?}"
        );
        assert!(
            plugin_verdict(plugin, &config).is_err(),
            "{plugin} accepts {config}"
        );
    }
}

#[test]
fn schema_problems_never_show_a_secret() {
    let cases = [
        (
            "ai-proxy",
            json!({"providers": [{"type": "openai", "api_keys": "sk-live-0123456789"}]}),
            "/providers/0/api_keys",
        ),
        (
            "ai-auth",
            json!({"consumers": [{"name": "a", "credentials": "sk-live-0123456789"}]}),
            "/consumers/0/credentials",
        ),
        (
            "ai-cache",
            json!({"semantic": {"cluster": "e", "model": "m", "api_key": ["sk-live-0123456789"]}}),
            "/semantic/api_key",
        ),
        (
            "ai-guard",
            json!({"mask": {"hash_salt": ["sk-live-0123456789"]}}),
            "/mask/hash_salt",
        ),
        (
            "ai-token-ratelimit",
            json!({"limits": [{"per_minute": 1}],
                   "redis": {"service_name": "r", "password": ["sk-live-0123456789"]}}),
            "/redis/password",
        ),
    ];
    for (plugin, config, path) in cases {
        let p = problems(plugin, &config);
        assert!(p.iter().any(|p| p.path == path), "{plugin}: {p:?}");
        for problem in &p {
            assert!(
                !problem.to_string().contains("sk-live"),
                "{plugin}: {problem}"
            );
        }
        assert!(
            plugin_verdict(plugin, &config).is_err(),
            "{plugin} {config}"
        );
    }
    // The schema marks secrets writeOnly, typed as strings.
    let proxy = schema("ai-proxy");
    let key = &proxy["$defs"]["ProviderConfig"]["properties"]["api_keys"];
    assert_eq!(key["writeOnly"], true);
    assert_eq!(key["items"]["type"], "string");
}
