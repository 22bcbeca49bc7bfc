//! A small block-style YAML writer for JSON values (what `spec.yaml` needs).
//!
//! Mapping keys come out in a fixed order whatever order the map holds them in: schema
//! keywords a reader looks for first (`type`, `title`, `description`, …), then the rest
//! alphabetically. Strings are written plain when that cannot be misread (no YAML indicator,
//! not a number, boolean or null look-alike) and as JSON-style double-quoted scalars otherwise,
//! which YAML 1.1 and 1.2 parsers read the same way.

use serde_json::Value;

/// Keys written first, in this order.
const FIRST: &[&str] = &[
    "type",
    "title",
    "description",
    "nullable",
    "format",
    "default",
    "enum",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "required",
    "properties",
    "additionalProperties",
    "items",
];

/// What a mapping holds, which decides the order of its keys.
#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    /// A schema object: keywords a reader looks for first, then the rest alphabetically.
    Schema,
    /// `properties`: property names (alphabetical) to schemas.
    Names,
    /// Data (`example`, `default`, `enum`, metadata): alphabetical.
    Data,
}

impl Ctx {
    /// The context of the value under `key` in a mapping of this context.
    fn child(self, key: &str) -> Ctx {
        match (self, key) {
            (Ctx::Names, _) => Ctx::Schema,
            (Ctx::Schema, "properties") => Ctx::Names,
            (
                Ctx::Schema,
                "items" | "additionalProperties" | "not" | "allOf" | "anyOf" | "oneOf",
            ) => Ctx::Schema,
            _ => Ctx::Data,
        }
    }
}

/// `key: value` lines for a mapping entry at `indent` spaces; `value` is a JSON Schema
/// (OpenAPI form) when `schema` is true, data otherwise.
pub fn entry(out: &mut String, indent: usize, key: &str, value: &Value, schema: bool) {
    let ctx = if schema { Ctx::Schema } else { Ctx::Data };
    entry_in(out, indent, key, value, ctx);
}

fn entry_in(out: &mut String, indent: usize, key: &str, value: &Value, ctx: Ctx) {
    out.push_str(&" ".repeat(indent));
    out.push_str(&string(key));
    out.push(':');
    body(out, indent, value, ctx);
}

/// Writes what follows `key:` or `-`: a scalar or empty collection on the same line, a
/// collection on the next lines.
fn body(out: &mut String, indent: usize, value: &Value, ctx: Ctx) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, indent + 2, value, ctx);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            sequence(out, indent + 2, a, ctx);
        }
        _ => {
            out.push(' ');
            out.push_str(&inline(value));
            out.push('\n');
        }
    }
}

fn mapping(out: &mut String, indent: usize, value: &Value, ctx: Ctx) {
    if let Value::Object(m) = value {
        for k in ordered_keys(m, ctx) {
            if let Some(v) = m.get(k) {
                entry_in(out, indent, k, v, ctx.child(k));
            }
        }
    }
}

/// A sequence; `ctx` is the context of its items.
fn sequence(out: &mut String, indent: usize, items: &[Value], ctx: Ctx) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                // The first key on the dash's line, the others under it.
                let mut first = true;
                for k in ordered_keys(m, ctx) {
                    if let Some(v) = m.get(k) {
                        if first {
                            out.push(' ');
                            out.push_str(&string(k));
                            out.push(':');
                            body(out, indent + 2, v, ctx.child(k));
                            first = false;
                        } else {
                            entry_in(out, indent + 2, k, v, ctx.child(k));
                        }
                    }
                }
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                sequence(out, indent + 2, a, ctx);
            }
            _ => {
                out.push(' ');
                out.push_str(&inline(item));
                out.push('\n');
            }
        }
    }
}

fn ordered_keys(m: &serde_json::Map<String, Value>, ctx: Ctx) -> Vec<&String> {
    let mut keys: Vec<&String> = m.keys().collect();
    let rank = |k: &str| match ctx {
        Ctx::Schema => FIRST.iter().position(|f| *f == k).unwrap_or(FIRST.len()),
        _ => 0,
    };
    keys.sort_by(|a, b| (rank(a), a.as_str()).cmp(&(rank(b), b.as_str())));
    keys
}

/// A scalar or empty collection on one line.
fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string scalar: plain when safe, double-quoted (JSON escapes) otherwise.
pub fn string(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '_' || first == '/') {
        return false;
    }
    if s.ends_with(' ') || s.contains(": ") || s.contains(" #") {
        return false;
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || " _-./:()+,".contains(c);
    if !s.chars().all(allowed) {
        return false;
    }
    // Words YAML 1.1 reads as booleans or null.
    let lower = s.to_ascii_lowercase();
    !matches!(
        lower.as_str(),
        "y" | "n" | "yes" | "no" | "true" | "false" | "on" | "off" | "null"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: &Value) -> String {
        let mut out = String::new();
        mapping(&mut out, 0, v, Ctx::Schema);
        out
    }

    #[test]
    fn block_style_with_schema_keywords_first() {
        let v = json!({
            "properties": { "type": { "type": "integer" }, "a": { "type": "string", "enum": ["x", "on"] } },
            "type": "object",
            "required": ["a"],
            "example": { "list": [ { "type": 1, "j": "two" } ], "empty": [], "obj": {} }
        });
        let expected = "\
type: object
required:
  - a
properties:
  a:
    type: string
    enum:
      - x
      - \"on\"
  type:
    type: integer
example:
  empty: []
  list:
    - j: two
      type: 1
  obj: {}
";
        assert_eq!(doc(&v), expected);
    }

    #[test]
    fn strings_that_could_be_misread_are_quoted() {
        for s in [
            "",
            "123",
            "1.5",
            "true",
            "No",
            "null",
            "a: b",
            "x #c",
            "-lead",
            "*",
            "&a",
            "multi\nline",
            "trailing ",
            "中文",
        ] {
            assert!(string(s).starts_with('"'), "{s:?} should be quoted");
        }
        for s in ["ai-proxy", "UNSPECIFIED_PHASE", "sk-...", "outbound|443||x"] {
            let _ = string(s);
        }
        assert_eq!(string("ai-proxy"), "ai-proxy");
        assert_eq!(
            string("API-key authentication, per consumer"),
            "API-key authentication, per consumer"
        );
        assert_eq!(string("say \"hi\""), "\"say \\\"hi\\\"\"");
    }
}
