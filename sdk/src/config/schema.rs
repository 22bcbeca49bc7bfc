//! The JSON Schema (draft 2020-12) of a plugin's configuration document, generated from the
//! Rust configuration types with `schemars` (feature `schema`: native tools only, never a
//! wasm build).
//!
//! A plugin derives `schemars::JsonSchema` on its serde configuration types (through
//! `cfg_attr(feature = "schema", ...)`, so rustdoc comments become `description`s) and calls
//! [`for_plugin`], which adds what the SDK's loader accepts around the plugin's own type:
//! Higress `_rules_` (see [`super::rules`]). The result describes the whole document a gateway
//! passes as the plugin configuration.
//!
//! Conventions of the generated schemas:
//! * Secret fields (API keys, tokens, passwords, salts) are strings marked `"writeOnly": true`.
//!   Tools that report schema errors (`host-sim check`) never print the value of such a field.
//! * A top-level `"$schema"` string is allowed: editors read it, the SDK's loader drops it.
//! * With a non-empty `_rules_`, the global part may be incomplete (a rule can supply a
//!   required field), so the document's top-level `required` list applies only without rules;
//!   every field's type still applies everywhere. The merge is shallow, so nested objects keep
//!   all their constraints.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde_json::{json, Map, Value};

/// The JSON Schema dialect of every generated schema.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The `$defs` name of one `_rules_` entry.
const RULE_DEF: &str = "HigressRule";

/// The schema of the configuration document of plugin `plugin`, whose per-rule configuration
/// type is `C`: `C`'s schema plus the Higress `_rules_` array.
pub fn for_plugin<C: JsonSchema>(plugin: &str) -> Value {
    let generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let root = generator.into_root_schema_for::<C>();
    with_rules(plugin, root.to_value())
}

/// The schema of plugin `plugin` whose configuration is `C`: the schema of `C`'s raw form
/// (what users write), with `_rules_` as in [`for_plugin`].
pub fn for_config<C: super::PluginConfig>(plugin: &str) -> Value
where
    C::Raw: JsonSchema,
{
    for_plugin::<C::Raw>(plugin)
}

/// Adds `alias` (a serde `alias` of `field`) to an object schema: the same schema under the
/// other name, and not both at once (serde rejects a duplicate field). For
/// `#[schemars(transform = ...)]` on types whose fields have aliases.
pub fn add_alias(schema: &mut Schema, field: &str, alias: &str) {
    let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(mut aliased) = props.get(field).cloned() else {
        return;
    };
    if let Some(obj) = aliased.as_object_mut() {
        obj.insert(
            "description".into(),
            Value::String(format!("Another name of `{field}`.")),
        );
    }
    props.insert(alias.to_string(), aliased);
    let both = json!({"not": {"required": [field, alias]}});
    match schema.get_mut("allOf").and_then(Value::as_array_mut) {
        Some(all) => all.push(both),
        None => {
            schema.insert("allOf".into(), Value::Array(vec![both]));
        }
    }
}

/// The description of one `_match_*_` list.
fn matcher(what: &str) -> Value {
    json!({
        "description": what,
        "type": "array",
        "minItems": 1,
        "items": {"type": "string", "minLength": 1}
    })
}

/// Wraps the schema of one configuration (`root`, as generated) into the schema of the whole
/// document with `_rules_`.
fn with_rules(plugin: &str, root: Value) -> Value {
    let Value::Object(mut root) = root else {
        return root;
    };
    // A `#[serde(transparent)]` configuration is a `$ref` to the type it wraps: inline it.
    let target = root
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| root.get("$defs")?.get(name))
        .and_then(Value::as_object)
        .cloned();
    if let Some(def) = target {
        root.remove("$ref");
        root.remove("description");
        root.extend(def);
    }
    let props = root
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required = root.remove("required");
    let additional = root.get("additionalProperties").cloned();

    let mut rule_props = props;
    for (key, what) in [
        ("_match_route_", "Route names (`route_name`) this rule applies to."),
        (
            "_match_route_prefix_",
            "Route name prefixes this rule applies to.",
        ),
        (
            "_match_domain_",
            "Hosts (`:authority` without port) this rule applies to: exact, `*.example.com` or `example.*`.",
        ),
        (
            "_match_service_",
            "Upstream services (`cluster_name`: `fqdn`, `fqdn:port` or a leading part of the FQDN) this rule applies to.",
        ),
    ] {
        rule_props.insert(key.into(), matcher(what));
    }
    let mut rule = Map::new();
    rule.insert(
        "description".into(),
        json!("A Higress per-route rule: one or more `_match_*_` lists, and configuration fields merged over the global ones (a field the rule sets replaces the global value as a whole). The first rule whose matchers all match a request applies."),
    );
    rule.insert("type".into(), json!("object"));
    rule.insert("properties".into(), Value::Object(rule_props));
    if let Some(a) = additional {
        rule.insert("additionalProperties".into(), a);
    }
    rule.insert(
        "anyOf".into(),
        json!([
            {"required": ["_match_route_"]},
            {"required": ["_match_route_prefix_"]},
            {"required": ["_match_domain_"]},
            {"required": ["_match_service_"]}
        ]),
    );

    let defs = root
        .entry("$defs")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(defs) = defs.as_object_mut() {
        defs.insert(RULE_DEF.into(), Value::Object(rule));
    }
    if let Some(props) = root.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "$schema".into(),
            json!({
                "description": "The location of this JSON Schema, for editors (ignored by the plugin).",
                "type": "string"
            }),
        );
        props.insert(
            "_rules_".into(),
            json!({
                "description": "Higress per-route rules, tried in order; requests no rule matches use the global configuration (or pass through when there is none).",
                "type": ["array", "null"],
                "items": {"$ref": format!("#/$defs/{RULE_DEF}")}
            }),
        );
    }
    if let Some(required) = required {
        root.insert(
            "if".into(),
            json!({
                "required": ["_rules_"],
                "properties": {"_rules_": {"type": "array", "minItems": 1}}
            }),
        );
        root.insert("else".into(), json!({ "required": required }));
    }
    root.insert("$schema".into(), json!(DIALECT));
    root.insert("title".into(), json!(format!("{plugin} configuration")));
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    /// A test configuration.
    struct Cfg {
        /// Always needed.
        value: String,
        #[serde(default)]
        extra: u32,
    }

    #[test]
    fn rules_relax_only_the_top_level_required_list() {
        let s = for_plugin::<Cfg>("t");
        assert_eq!(s["$schema"], DIALECT);
        assert_eq!(s["title"], "t configuration");
        assert_eq!(s["description"], "A test configuration.");
        assert_eq!(s["else"]["required"], json!(["value"]));
        assert!(s.get("required").is_none());
        let rule = &s["$defs"][RULE_DEF];
        assert_eq!(rule["additionalProperties"], json!(false));
        assert_eq!(rule["properties"]["value"]["type"], "string");
        assert!(rule["properties"]["_match_route_"].is_object());
        assert_eq!(
            s["properties"]["_rules_"]["items"]["$ref"],
            "#/$defs/HigressRule"
        );
    }
}
