//! JSON Schema (as `schemars` writes it, draft 2020-12) to the OpenAPI 3.0 Schema Object that
//! Higress's `spec.yaml` carries under `configSchema.openAPIV3Schema`.
//!
//! What the consumers read: Higress's spec format (higress.io "Wasm Plugin Image
//! Specification") says the schema is an OpenAPI 3.0.0 Schema Object; `hgctl` decodes it into
//! Kubernetes-style `JSONSchemaProps` (alibaba/higress `hgctl/pkg/plugin/types/schema.go`), where
//! `type` is one string, `exclusiveMinimum`/`exclusiveMaximum` are booleans, `nullable` marks
//! null, and `$schema`/`$defs` have no place. So:
//! * `$ref` to `#/$defs/…` (or `#/definitions/…`) is replaced by the definition (inlined; a
//!   definition that refers to itself becomes an open object the second time);
//! * `type: [T, "null"]` becomes `type: T` + `nullable: true`; a `null` branch of
//!   `anyOf`/`oneOf` becomes `nullable: true` (and a single remaining branch is merged in);
//! * `const: v` becomes `enum: [v]`; `examples: [v, …]` becomes `example: v`;
//! * numeric `exclusiveMinimum: n` becomes `minimum: n` + `exclusiveMinimum: true` (and max);
//! * `prefixItems` (tuples) become `items` accepting any of the listed schemas;
//! * keywords OpenAPI 3.0 does not have (`$schema`, `$id`, `$defs`, `$comment`, `if`/`then`/
//!   `else`, `patternProperties`, `propertyNames`, `dependent*`, `unevaluated*`, `contains`)
//!   are dropped; `x-…` extensions and Higress's `scope` are kept.

use serde_json::{Map, Value};

/// Keywords an OpenAPI 3.0 Schema Object has, copied after their values are converted.
const KEPT: &[&str] = &[
    "title",
    "description",
    "default",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "readOnly",
    "writeOnly",
    "deprecated",
    "example",
    "externalDocs",
    "discriminator",
    "nullable",
    "scope",
];

/// How deep `$ref`s may nest before conversion gives up (a guard against pathological input).
const MAX_DEPTH: usize = 64;

/// Converts a whole JSON Schema document. Errors name the JSON pointer of what is wrong.
pub fn convert(root: &Value) -> Result<Value, String> {
    let mut out = schema(root, root, &mut Vec::new(), "#")?;
    if let Value::Object(m) = &mut out {
        if !m.contains_key("type") {
            m.insert("type".into(), Value::String("object".into()));
        }
    }
    Ok(out)
}

fn schema(s: &Value, root: &Value, stack: &mut Vec<String>, at: &str) -> Result<Value, String> {
    let m = match s {
        Value::Bool(true) => return Ok(Value::Object(Map::new())),
        Value::Bool(false) => {
            let mut not = Map::new();
            not.insert("not".into(), Value::Object(Map::new()));
            return Ok(Value::Object(not));
        }
        Value::Object(m) => m,
        _ => return Err(format!("{at}: a schema must be an object or a boolean")),
    };
    let mut out = Map::new();
    if let Some(r) = m.get("$ref") {
        let r = r
            .as_str()
            .ok_or_else(|| format!("{at}/$ref: not a string"))?;
        if let Value::Object(inl) = reference(r, root, stack, at)? {
            out = inl;
        }
    }
    let mut nullable = false;
    for (k, v) in m {
        let here = format!("{at}/{k}");
        match k.as_str() {
            "$ref" | "$schema" | "$id" | "$defs" | "definitions" | "$comment" => {}
            "type" => match v {
                Value::String(t) if t == "null" => nullable = true,
                Value::String(_) => {
                    out.insert(k.clone(), v.clone());
                }
                Value::Array(ts) => {
                    let real: Vec<&Value> =
                        ts.iter().filter(|t| t.as_str() != Some("null")).collect();
                    nullable |= real.len() < ts.len();
                    if let [one] = real.as_slice() {
                        out.insert(k.clone(), (*one).clone());
                    }
                }
                _ => return Err(format!("{here}: not a string or an array")),
            },
            "const" => {
                out.insert("enum".into(), Value::Array(vec![v.clone()]));
            }
            "enum" => {
                let vs = v
                    .as_array()
                    .ok_or_else(|| format!("{here}: not an array"))?;
                let real: Vec<Value> = vs.iter().filter(|x| !x.is_null()).cloned().collect();
                nullable |= real.len() < vs.len();
                out.insert(k.clone(), Value::Array(real));
            }
            "examples" => {
                if let Some(first) = v.as_array().and_then(|a| a.first()) {
                    out.entry("example").or_insert_with(|| first.clone());
                }
            }
            "exclusiveMinimum" | "exclusiveMaximum" => {
                let bound = if k == "exclusiveMinimum" {
                    "minimum"
                } else {
                    "maximum"
                };
                match v {
                    Value::Number(_) => {
                        out.insert(bound.into(), v.clone());
                        out.insert(k.clone(), Value::Bool(true));
                    }
                    Value::Bool(_) => {
                        out.insert(k.clone(), v.clone());
                    }
                    _ => return Err(format!("{here}: not a number")),
                }
            }
            // An empty `required` is dropped (OpenAPI 3.0 wants at least one name).
            "required" if v.as_array().is_some_and(|a| !a.is_empty()) => {
                out.insert(k.clone(), v.clone());
            }
            "properties" => {
                let ps = v
                    .as_object()
                    .ok_or_else(|| format!("{here}: not an object"))?;
                let mut conv = Map::new();
                for (name, p) in ps {
                    conv.insert(
                        name.clone(),
                        schema(p, root, stack, &format!("{here}/{name}"))?,
                    );
                }
                out.insert(k.clone(), Value::Object(conv));
            }
            "additionalProperties" => {
                let a = match v {
                    Value::Bool(b) => Value::Bool(*b),
                    _ => schema(v, root, stack, &here)?,
                };
                out.insert(k.clone(), a);
            }
            "items" => match v {
                Value::Array(list) => {
                    out.insert(k.clone(), any_of(list, root, stack, &here)?);
                }
                Value::Bool(false) => {}
                _ => {
                    out.insert(k.clone(), schema(v, root, stack, &here)?);
                }
            },
            "prefixItems" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| format!("{here}: not an array"))?;
                out.insert("items".into(), any_of(list, root, stack, &here)?);
            }
            "not" => {
                out.insert(k.clone(), schema(v, root, stack, &here)?);
            }
            "allOf" | "anyOf" | "oneOf" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| format!("{here}: not an array"))?;
                let mut conv = Vec::new();
                for (i, b) in list.iter().enumerate() {
                    let is_null = b.get("type").and_then(Value::as_str) == Some("null")
                        && b.as_object().is_some_and(|o| o.len() == 1);
                    if is_null && k != "allOf" {
                        nullable = true;
                        continue;
                    }
                    conv.push(schema(b, root, stack, &format!("{here}/{i}"))?);
                }
                match conv.len() {
                    0 => {}
                    1 => {
                        if let Some(Value::Object(one)) = conv.pop() {
                            for (bk, bv) in one {
                                out.entry(bk).or_insert(bv);
                            }
                        }
                    }
                    _ => {
                        out.insert(k.clone(), Value::Array(conv));
                    }
                }
            }
            other if other.starts_with("x-") || KEPT.contains(&other) => {
                out.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
    }
    Ok(Value::Object(out))
}

/// `items` that accept any of `list` (one schema: that schema).
fn any_of(
    list: &[Value],
    root: &Value,
    stack: &mut Vec<String>,
    at: &str,
) -> Result<Value, String> {
    let mut conv = Vec::new();
    for (i, b) in list.iter().enumerate() {
        conv.push(schema(b, root, stack, &format!("{at}/{i}"))?);
    }
    Ok(match conv.len() {
        1 => conv.pop().unwrap_or_default(),
        _ => {
            let mut m = Map::new();
            m.insert("anyOf".into(), Value::Array(conv));
            Value::Object(m)
        }
    })
}

/// The converted target of a local `$ref`.
fn reference(r: &str, root: &Value, stack: &mut Vec<String>, at: &str) -> Result<Value, String> {
    let target = r
        .strip_prefix('#')
        .and_then(|p| root.pointer(p))
        .ok_or_else(|| format!("{at}/$ref: {r} does not point into this document"))?;
    if stack.iter().any(|s| s == r) || stack.len() >= MAX_DEPTH {
        // A recursive type: the second time round it is an object of any shape.
        let mut m = Map::new();
        m.insert("type".into(), Value::String("object".into()));
        m.insert(
            "x-kubernetes-preserve-unknown-fields".into(),
            Value::Bool(true),
        );
        return Ok(Value::Object(m));
    }
    stack.push(r.to_string());
    let out = schema(target, root, stack, r);
    stack.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refs_are_inlined_and_defs_dropped() {
        let s = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Config",
            "type": "object",
            "properties": {
                "redis": { "$ref": "#/$defs/Redis", "description": "where counters live" },
                "limits": { "type": "array", "items": { "$ref": "#/$defs/Limit" } }
            },
            "required": ["limits"],
            "$defs": {
                "Redis": { "type": "object", "properties": { "port": { "type": "integer", "format": "uint16", "minimum": 0, "maximum": 65535 } } },
                "Limit": { "type": "object", "properties": { "name": { "type": "string" } }, "additionalProperties": false }
            }
        });
        let o = convert(&s).unwrap();
        assert!(o.get("$schema").is_none() && o.get("$defs").is_none());
        assert_eq!(
            o["properties"]["redis"]["description"],
            "where counters live"
        );
        assert_eq!(
            o["properties"]["redis"]["properties"]["port"]["maximum"],
            65535
        );
        assert_eq!(
            o["properties"]["limits"]["items"]["additionalProperties"],
            false
        );
        assert_eq!(o["required"], json!(["limits"]));
        assert!(!o.to_string().contains("$ref"));
    }

    #[test]
    fn null_forms_become_nullable() {
        let s = json!({
            "type": "object",
            "properties": {
                "a": { "type": ["string", "null"], "default": null },
                "b": { "anyOf": [ { "$ref": "#/$defs/B" }, { "type": "null" } ] },
                "c": { "enum": ["x", "y", null] }
            },
            "$defs": { "B": { "type": "object", "properties": { "n": { "type": "number" } } } }
        });
        let o = convert(&s).unwrap();
        let p = &o["properties"];
        assert_eq!(
            p["a"],
            json!({"type": "string", "nullable": true, "default": null})
        );
        assert_eq!(p["b"]["type"], "object");
        assert_eq!(p["b"]["nullable"], true);
        assert!(p["b"].get("anyOf").is_none());
        assert_eq!(p["c"]["enum"], json!(["x", "y"]));
        assert_eq!(p["c"]["nullable"], true);
    }

    #[test]
    fn draft_2020_keywords_are_mapped_to_openapi_3_0() {
        let s = json!({
            "type": "object",
            "properties": {
                "t": { "type": "number", "exclusiveMinimum": 0, "maximum": 1 },
                "k": { "const": "fixed" },
                "e": { "type": "string", "examples": ["first", "second"] },
                "tuple": { "type": "array", "prefixItems": [ {"type": "string"}, {"type": "integer"} ] },
                "m": { "type": "object", "patternProperties": { "^x": {} }, "propertyNames": {"minLength": 1} },
                "oneOf": { "oneOf": [ {"type": "string"}, {"type": "integer"} ] }
            }
        });
        let o = convert(&s).unwrap();
        let p = &o["properties"];
        assert_eq!(
            p["t"],
            json!({"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1})
        );
        assert_eq!(p["k"], json!({"enum": ["fixed"]}));
        assert_eq!(p["e"]["example"], "first");
        assert_eq!(p["tuple"]["items"]["anyOf"].as_array().unwrap().len(), 2);
        assert_eq!(p["m"], json!({"type": "object"}));
        assert_eq!(p["oneOf"]["oneOf"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn recursive_definitions_stop_at_the_second_visit() {
        let s = json!({
            "$ref": "#/$defs/Node",
            "$defs": { "Node": { "type": "object", "properties": { "child": { "$ref": "#/$defs/Node" } } } }
        });
        let o = convert(&s).unwrap();
        assert_eq!(o["type"], "object");
        assert_eq!(
            o["properties"]["child"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
    }

    #[test]
    fn errors_name_the_place() {
        let e = convert(&json!({"properties": {"a": {"$ref": "#/$defs/Missing"}}})).unwrap_err();
        assert!(e.contains("#/properties/a/$ref"), "{e}");
        let e = convert(&json!({"properties": {"a": 3}})).unwrap_err();
        assert!(e.contains("#/properties/a"), "{e}");
        assert_eq!(convert(&json!(true)).unwrap(), json!({"type": "object"}));
    }
}
