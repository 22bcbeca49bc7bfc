//! Checks a plugin configuration against a JSON Schema (the `dist/<plugin>.schema.json` files
//! generated from the plugins' Rust config types) and reports each problem with the JSON
//! pointer of the field: `/limits/0/per_minute: -1 is less than the minimum of 1`.
//!
//! Secret values never appear in a report. A field is secret when the schema marks it
//! `"writeOnly": true` (the generated schemas do so for API keys, tokens, passwords and salts)
//! or when its name says so (`api_key`, `session_token`, `secret`, `password`, `credential`,
//! `salt`..., and a string under a plain `key`); a
//! problem inside such a field, or whose value contains one, is reported with its path and
//! reason only. Objects and arrays are never printed whole either.
//!
//! ```
//! use serde_json::json;
//! let schema = json!({"type": "object", "properties": {
//!     "api_key": {"type": "array", "writeOnly": true},
//!     "n": {"type": "integer", "minimum": 1}}});
//! let problems = host_sim::config_schema::check(&schema, &json!({"api_key": "sk-live-1", "n": -1})).unwrap();
//! let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
//! assert!(text.contains(&"/n: -1 is less than the minimum of 1".to_string()));
//! assert!(text.iter().all(|t| !t.contains("sk-live-1")));
//! ```

use jsonschema::error::ValidationErrorKind;
use jsonschema::ValidationError;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

/// The most problems reported for one configuration.
pub const MAX_PROBLEMS: usize = 20;

/// Parts of field names that mark a secret wherever they appear, whatever the schema says.
const SECRET_WORDS: [&str; 5] = ["apikey", "secret", "password", "credential", "salt"];

/// One way the configuration does not match the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON pointer of the offending value (`/providers/0/type`); empty for the document.
    pub path: String,
    /// What is wrong; never contains a secret value.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

/// Validates `config` against `schema`. `Ok` holds the problems (empty: the configuration
/// matches), at most [`MAX_PROBLEMS`]; `Err` says why `schema` is not a usable JSON Schema.
pub fn check(schema: &Value, config: &Value) -> Result<Vec<Problem>, String> {
    let validator = jsonschema::validator_for(schema).map_err(|e| e.masked().to_string())?;
    let mut secret_names = BTreeSet::new();
    write_only_names(schema, &mut secret_names);
    let is_secret = |name: &str| secret_names.contains(name) || secret_word(name);
    let mut problems: Vec<Problem> = Vec::new();
    for error in validator.iter_errors(config) {
        report(&error, &is_secret, &mut problems);
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
    }
    problems.truncate(MAX_PROBLEMS);
    Ok(problems)
}

/// Adds the problem(s) of one validation error. An `anyOf`/`oneOf` where all branches but one
/// fail only on the value's type (`Option<T>` is "T or null") is reported through that
/// branch's own errors, which name the inner field: `/redis/timeout`, not `/redis`.
fn report(error: &ValidationError<'_>, is_secret: &impl Fn(&str) -> bool, out: &mut Vec<Problem>) {
    if let ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } =
        error.kind()
    {
        let here = error.instance_path().to_string();
        let live: Vec<&Vec<ValidationError<'static>>> = context
            .iter()
            .filter(|branch| !type_mismatch_only(branch, &here))
            .collect();
        if let [branch] = live.as_slice() {
            if !branch.is_empty() {
                for e in branch.iter() {
                    report(e, is_secret, out);
                }
                return;
            }
        }
        // A documented enum is a `oneOf` of `const`s: say which values are allowed.
        let allowed: Option<Vec<String>> = context
            .iter()
            .map(|branch| match branch.as_slice() {
                [e] => match e.kind() {
                    ValidationErrorKind::Constant { expected_value } => {
                        Some(expected_value.to_string())
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect();
        if let Some(allowed) = allowed.filter(|a| !a.is_empty()) {
            let value = if secret_path(&here, is_secret) || !is_scalar(error.instance()) {
                "the value".to_string()
            } else {
                error.instance().to_string()
            };
            push(
                out,
                Problem {
                    path: here,
                    message: format!("{value} is not one of {}", allowed.join(", ")),
                },
            );
            return;
        }
    }
    let path = error.instance_path().to_string();
    let message = if secret_path(&path, is_secret)
        || !is_scalar(error.instance())
        || holds_secret(error.instance(), is_secret)
    {
        error.masked_with("the value").to_string()
    } else {
        error.to_string()
    };
    push(out, Problem { path, message });
}

fn push(out: &mut Vec<Problem>, problem: Problem) {
    if !out.contains(&problem) {
        out.push(problem);
    }
}

/// Whether a JSON pointer goes through a secret field, or ends at a plain `key` (a key
/// value, such as a rate-limit key that may be an API key; `key` lists of other things are
/// not secret).
fn secret_path(pointer: &str, is_secret: &impl Fn(&str) -> bool) -> bool {
    pointer.rsplit('/').next() == Some("key")
        || pointer
            .split('/')
            .map(|seg| seg.replace("~1", "/").replace("~0", "~"))
            .any(|seg| is_secret(&seg))
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Object(_) | Value::Array(_))
}

/// Whether a branch's only error is the value's type at `here`.
fn type_mismatch_only(branch: &[ValidationError<'static>], here: &str) -> bool {
    matches!(branch, [e] if matches!(e.kind(), ValidationErrorKind::Type { .. })
        && e.instance_path().to_string() == here)
}

/// Whether a field name says it holds a secret: `*_key(s)` (`api_key`), `*token`
/// (`bedrock_session_token`), or one of [`SECRET_WORDS`] anywhere (`hash_salt`). Settings
/// about keys or tokens (`key_selection`, `max_tokens`) are not secrets.
fn secret_word(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with("_key")
        || lower.ends_with("_keys")
        || lower.ends_with("token")
        || SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// Collects the names of properties whose schema says `"writeOnly": true`, anywhere in the
/// schema document.
fn write_only_names(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, sub) in props {
                    if sub.get("writeOnly") == Some(&Value::Bool(true)) {
                        out.insert(name.clone());
                    }
                }
            }
            for v in map.values() {
                write_only_names(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| write_only_names(v, out)),
        _ => {}
    }
}

/// Whether a value has a member, at any depth, whose name is secret.
fn holds_secret(value: &Value, is_secret: &impl Fn(&str) -> bool) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| {
            is_secret(k) || (k == "key" && v.is_string()) || holds_secret(v, is_secret)
        }),
        Value::Array(items) => items.iter().any(|v| holds_secret(v, is_secret)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["providers"],
            "properties": {
                "providers": {"type": "array", "items": {"$ref": "#/$defs/P"}},
                "limit": {"type": "integer", "minimum": 1},
                "mode": {"enum": ["a", "b"]}
            },
            "$defs": {"P": {"type": "object", "properties": {
                "type": {"type": "string"},
                "creds": {"type": "array", "items": {"type": "string"}, "writeOnly": true}
            }, "additionalProperties": false}}
        })
    }

    #[test]
    fn problems_name_the_path() {
        let p = check(
            &schema(),
            &json!({"providers": [], "limit": 0, "mode": "c"}),
        )
        .unwrap();
        let text: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert!(
            text.contains(&"/limit: 0 is less than the minimum of 1".to_string()),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("/mode: ")), "{text:?}");
        let p = check(&schema(), &json!({})).unwrap();
        assert_eq!(
            p[0].to_string(),
            "(document): \"providers\" is a required property"
        );
        assert!(check(&schema(), &json!({"providers": []}))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn secrets_are_never_printed() {
        let cfg = json!({"providers": [{"type": 1, "creds": "sk-live-abcdef"}],
                         "mode": "sk-live-abcdef"});
        let p = check(&schema(), &cfg).unwrap();
        let text: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|t| t.starts_with("/providers/0/creds: ")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("/providers/0/type: 1 ")));
        // `mode` is not a secret field: its (short) value is shown, as serde would.
        assert!(text.iter().any(|t| t.starts_with("/mode: ")));
        let creds: Vec<&String> = text.iter().filter(|t| t.contains("creds")).collect();
        assert!(creds.iter().all(|t| !t.contains("sk-live")), "{creds:?}");
        // A name that says "key" is secret even without writeOnly.
        let s = json!({"properties": {"api_key": {"type": "integer"}}});
        let p = check(&s, &json!({"api_key": "sk-xyz-123"})).unwrap();
        assert_eq!(p.len(), 1);
        assert!(!p[0].to_string().contains("sk-xyz"), "{}", p[0]);
    }

    #[test]
    fn a_bad_schema_is_an_error() {
        assert!(check(&json!({"type": 12}), &json!({})).is_err());
    }
}
