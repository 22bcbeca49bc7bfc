//! The JSON Schema of every plugin's configuration, generated from the plugins' Rust
//! configuration types (each plugin's `config_schema()`, feature `schema`).
//!
//! `config-schema [DIR]` (the binary; `scripts/config-schemas.sh`, `make schema`) writes them
//! to `DIR/<plugin>.schema.json` (default `dist/`), where `host-sim check` finds the schema
//! of `dist/<plugin>.wasm` and the packaging step reads it.

use serde_json::Value;

/// The plugins that ship a configuration schema, in build order.
pub const PLUGINS: [&str; 7] = [
    "ai-auth",
    "ai-cache",
    "ai-guard",
    "ai-load-balancer",
    "ai-proxy",
    "ai-statistics",
    "ai-token-ratelimit",
];

/// The schema of plugin `name` (one of [`PLUGINS`]), or `None` for another name.
pub fn schema(name: &str) -> Option<Value> {
    Some(match name {
        "ai-auth" => ai_auth::config_schema(),
        "ai-cache" => ai_cache::config_schema(),
        "ai-guard" => ai_guard::config_schema(),
        "ai-load-balancer" => ai_load_balancer::config_schema(),
        "ai-proxy" => ai_proxy::config_schema(),
        "ai-statistics" => ai_statistics::config_schema(),
        "ai-token-ratelimit" => ai_token_ratelimit::config_schema(),
        _ => return None,
    })
}

/// The file name of a plugin's schema: `<plugin>.schema.json`.
pub fn file_name(plugin: &str) -> String {
    format!("{plugin}.schema.json")
}

/// The text written to a schema file: pretty JSON with a final newline.
pub fn render(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plugin_has_a_titled_object_schema() {
        for p in PLUGINS {
            let s = schema(p).unwrap();
            assert_eq!(s["title"], format!("{p} configuration"), "{p}");
            assert_eq!(s["type"], "object", "{p}");
            assert!(s["properties"]["_rules_"].is_object(), "{p}");
            assert!(render(&s).ends_with("}\n"));
        }
        assert!(schema("hello").is_none());
    }
}
