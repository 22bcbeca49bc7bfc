//! Typed plugin configuration: parse, then compile, and report the offending field.
//!
//! A plugin's configuration has two forms. The raw form ([`PluginConfig::Raw`]) is what users
//! write: serde types, deserialized from JSON. The compiled form (the type implementing
//! [`PluginConfig`]) is what handlers use: [`PluginConfig::compile`] checks the raw form and
//! builds it, so a handler never sees a half-valid configuration. Errors name the field path
//! and the reason, for example `providers[1].timeout_ms: invalid type: string "x", expected
//! u64`.
//!
//! ```
//! use aigw::config::{self, ConfigError, PluginConfig};
//!
//! #[derive(serde::Deserialize)]
//! struct RawCfg {
//!     #[serde(default)]
//!     max_body_bytes: usize,
//! }
//!
//! struct Cfg {
//!     max_body_bytes: std::num::NonZeroUsize,
//! }
//!
//! impl PluginConfig for Cfg {
//!     type Raw = RawCfg;
//!     fn compile(raw: RawCfg) -> Result<Cfg, ConfigError> {
//!         let max_body_bytes = std::num::NonZeroUsize::new(raw.max_body_bytes)
//!             .ok_or_else(|| ConfigError::new("max_body_bytes", "must be greater than 0"))?;
//!         Ok(Cfg { max_body_bytes })
//!     }
//! }
//!
//! let err = config::parse::<Cfg>(br#"{"max_body_bytes": "big"}"#).err().unwrap();
//! assert_eq!(err.path(), "max_body_bytes");
//! let err = config::parse::<Cfg>(b"{}").err().unwrap();
//! assert_eq!(err.to_string(), "max_body_bytes: must be greater than 0");
//! assert_eq!(config::parse::<Cfg>(br#"{"max_body_bytes": 9}"#).unwrap().max_body_bytes.get(), 9);
//! ```
//!
//! A configuration without a separate compiled form implements [`PlainConfig`] instead (its
//! raw form is itself, with an optional in-place [`PlainConfig::validate`]).
//!
//! Per-route rules in the Higress format live in [`rules`]; with feature `schema`, [`schema`]
//! generates the JSON Schema of a plugin's configuration document.

mod pathed;
pub mod redis;
pub mod rules;
#[cfg(feature = "schema")]
pub mod schema;

use serde::de::DeserializeOwned;
use std::fmt;

pub use rules::{Fact, Rules};

/// A plugin configuration: the compiled form handlers use, built from the raw form users
/// write. [`parse`] deserializes [`Self::Raw`](PluginConfig::Raw) (errors carry the field
/// path) and then calls [`compile`](PluginConfig::compile).
pub trait PluginConfig: Sized + 'static {
    /// The configuration as written: serde types (and, with feature `schema`, the source of
    /// the JSON Schema).
    type Raw: DeserializeOwned;

    /// Checks the raw form and builds the compiled one. An error names the field path (as
    /// written in the raw form) and the reason; it never quotes a secret value.
    fn compile(raw: Self::Raw) -> Result<Self, ConfigError>;
}

/// A configuration that is its own raw form: deserialized as is, then checked (and possibly
/// normalised) in place by [`validate`](PlainConfig::validate). Every `PlainConfig` is a
/// [`PluginConfig`] with `Raw = Self`.
pub trait PlainConfig: DeserializeOwned + 'static {
    /// Checks (and may normalise) the configuration after deserialization. The default
    /// accepts everything.
    fn validate(&mut self) -> Result<(), ConfigError> {
        Ok(())
    }
}

impl<T: PlainConfig> PluginConfig for T {
    type Raw = T;

    fn compile(mut raw: T) -> Result<T, ConfigError> {
        raw.validate()?;
        Ok(raw)
    }
}

/// A configuration error: the dotted field path (may be empty for the whole document) and
/// the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    path: String,
    reason: String,
}

impl ConfigError {
    /// An error for field `path` (dotted, with `[i]` for array elements) and a reason.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The field path, empty when the error concerns the whole document.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Why the value was rejected.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Prefixes the path with `prefix` (for errors inside a nested value or a rule).
    pub fn within(mut self, prefix: &str) -> ConfigError {
        self.path = join_path(prefix, &self.path);
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Joins two path fragments: `a` + `b` → `a.b`, `a` + `[0].b` → `a[0].b`.
pub(crate) fn join_path(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else if rest.is_empty() {
        prefix.to_string()
    } else if rest.starts_with('[') {
        format!("{prefix}{rest}")
    } else {
        format!("{prefix}.{rest}")
    }
}

/// Parses a configuration from JSON bytes and compiles it. Empty (or all-whitespace) input
/// is treated as `{}`.
pub fn parse<C: PluginConfig>(json: &[u8]) -> Result<C, ConfigError> {
    let value = parse_json(json)?;
    from_value(value)
}

/// Parses JSON bytes into a value, treating empty input as `{}`.
pub(crate) fn parse_json(json: &[u8]) -> Result<serde_json::Value, ConfigError> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    crate::json::parse_value(json).map_err(|e| ConfigError::new("", format!("not valid JSON: {e}")))
}

/// Deserializes the raw form of a configuration from a JSON value and compiles it.
pub fn from_value<C: PluginConfig>(value: serde_json::Value) -> Result<C, ConfigError> {
    C::compile(raw_from_value::<C::Raw>(value)?)
}

/// Deserializes a raw configuration (or a part of one) from a JSON value; an error names the
/// field path and never quotes a string value.
pub fn raw_from_value<R: DeserializeOwned>(value: serde_json::Value) -> Result<R, ConfigError> {
    pathed::deserialize(value)
        .map_err(|(path, e)| from_serde_message(&path, &without_values(&e.to_string())))
}

/// A serde message with the offending values left out: `invalid type: string "sk-…"` becomes
/// `invalid type: a string of 7 characters`, and an unknown variant longer than 32 characters
/// is not quoted. A secret put in the wrong field (a key where a list is expected) must not
/// reach the gateway's log through the error that reports it.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("string \"") {
        out.push_str(rest.get(..at).unwrap_or(""));
        let value = rest.get(at + "string \"".len()..).unwrap_or("");
        // The value is written with Rust's `{:?}`-like escaping: find the closing quote.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in value.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else {
            out.push_str("a string");
            return out;
        };
        let shown = value.get(..end).unwrap_or("");
        out.push_str(&format!("a string of {} characters", shown.chars().count()));
        rest = value.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    if let Some(tail) = out.strip_prefix("unknown variant `") {
        if let Some((variant, after)) = tail.split_once('`') {
            if variant.chars().count() > 32 {
                return format!(
                    "unknown variant of {} characters{after}",
                    variant.chars().count()
                );
            }
        }
    }
    out
}

/// Turns a serde message into a field error. "missing field `x`" and "unknown field `x`"
/// are reported on the field itself rather than on the enclosing object.
fn from_serde_message(path: &str, message: &str) -> ConfigError {
    for (prefix, reason) in [
        ("missing field `", "required field is missing"),
        ("unknown field `", "unknown field"),
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((name, tail)) = rest.split_once('`') {
                let tail = tail.trim_start_matches(',').trim();
                let reason = if tail.is_empty() {
                    reason.to_string()
                } else {
                    format!("{reason} ({tail})")
                };
                // The path already ends with an unknown field's name.
                let already = path == name || path.ends_with(&format!(".{name}"));
                let path = if already {
                    path.to_string()
                } else {
                    join_path(path, name)
                };
                return ConfigError::new(path, reason);
            }
        }
    }
    ConfigError::new(path, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn errors_do_not_echo_values() {
        #[derive(Deserialize, Debug)]
        struct C {
            #[allow(dead_code)]
            credentials: Vec<String>,
            #[allow(dead_code)]
            #[serde(default)]
            mode: Option<Mode>,
        }
        #[derive(Deserialize, Debug)]
        #[serde(rename_all = "lowercase")]
        enum Mode {
            Local,
        }
        impl PlainConfig for C {}
        let err = parse::<C>(br#"{"credentials":"sk-live-0123456789abcdef"}"#).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("sk-live"), "{text}");
        assert!(
            text.starts_with("credentials: invalid type: a string of 24 characters"),
            "{text}"
        );
        let err = parse::<C>(
            br#"{"credentials":["a"],"mode":"sk-live-0123456789abcdef0123456789abcdef"}"#,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("sk-live"), "{err}");
        let err = parse::<C>(br#"{"credentials":["a"],"mode":"redis"}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `redis`"),
            "short names still help: {err}"
        );
        assert_eq!(
            without_values(r#"invalid value: string "a\"b", expected x"#),
            "invalid value: a string of 4 characters, expected x"
        );
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Provider {
        name: String,
        #[serde(default)]
        #[allow(dead_code)]
        timeout_ms: u64,
    }

    #[derive(Deserialize, Debug)]
    struct Cfg {
        providers: Vec<Provider>,
        #[serde(default)]
        limit: u32,
    }

    impl PlainConfig for Cfg {
        fn validate(&mut self) -> Result<(), ConfigError> {
            for (i, p) in self.providers.iter().enumerate() {
                if p.name.is_empty() {
                    return Err(ConfigError::new(
                        format!("providers[{i}].name"),
                        "must not be empty",
                    ));
                }
            }
            if self.limit == 0 {
                self.limit = 10;
            }
            Ok(())
        }
    }

    #[test]
    fn wrong_type_names_nested_field() {
        let err = parse::<Cfg>(br#"{"providers":[{"name":"a"},{"name":"b","timeout_ms":"x"}]}"#)
            .unwrap_err();
        assert_eq!(err.path(), "providers[1].timeout_ms");
        assert!(err.reason().contains("invalid type"), "{err}");
    }

    #[test]
    fn missing_field_names_the_field() {
        let err = parse::<Cfg>(br#"{"providers":[{"timeout_ms":1}]}"#).unwrap_err();
        assert_eq!(err.path(), "providers[0].name");
        assert_eq!(err.reason(), "required field is missing");
        let err = parse::<Cfg>(b"{}").unwrap_err();
        assert_eq!(err.to_string(), "providers: required field is missing");
    }

    #[test]
    fn unknown_field_names_the_field() {
        let err = parse::<Cfg>(br#"{"providers":[{"name":"a","nmae":"b"}]}"#).unwrap_err();
        assert_eq!(err.path(), "providers[0].nmae");
        assert!(err.reason().starts_with("unknown field"), "{err}");
    }

    #[test]
    fn validate_runs_and_can_normalise() {
        let err = parse::<Cfg>(br#"{"providers":[{"name":""}]}"#).unwrap_err();
        assert_eq!(err.to_string(), "providers[0].name: must not be empty");
        let cfg = parse::<Cfg>(br#"{"providers":[]}"#).unwrap();
        assert_eq!(cfg.limit, 10);
    }

    #[test]
    fn bad_json_and_empty_input() {
        let err = parse::<Cfg>(b"{not json").unwrap_err();
        assert_eq!(err.path(), "");
        assert!(err.reason().starts_with("not valid JSON"), "{err}");
        // Empty input is `{}`: here that misses the required field.
        let err = parse::<Cfg>(b"  ").unwrap_err();
        assert_eq!(err.path(), "providers");
    }

    #[test]
    fn within_prefixes_paths() {
        assert_eq!(
            ConfigError::new("a", "r").within("_rules_[2]").path(),
            "_rules_[2].a"
        );
        assert_eq!(ConfigError::new("[0].a", "r").within("x").path(), "x[0].a");
        assert_eq!(ConfigError::new("", "r").within("x").path(), "x");
    }
}
