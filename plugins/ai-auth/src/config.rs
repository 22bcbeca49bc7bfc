//! ai-auth configuration (field names follow Higress's key-auth where they overlap).

use aigw::hash::{parse_hex, sha256};
use aigw::llm::access::{pattern_problem, ModelPattern as Pattern, ModelPolicy};

/// A SHA-256 digest.
pub type Digest = [u8; 32];
use aigw::config::{ConfigError, PluginConfig};
use serde::Deserialize;

/// Default header/query names a credential is read from.
pub const DEFAULT_KEYS: [&str; 3] = ["authorization", "x-api-key", "api-key"];
/// Default identity header (Higress's convention).
pub const DEFAULT_CONSUMER_HEADER: &str = aigw::contract::CONSUMER_HEADER;
/// Default header carrying the consumer's allowed model patterns to ai-proxy.
pub const DEFAULT_ALLOWED_MODELS_HEADER: &str = aigw::contract::ALLOWED_MODELS_HEADER;
/// Prefix marking a credential stored as a SHA-256 digest.
pub const HASH_PREFIX: &str = "sha256:";

/// One configured consumer as written in the JSON.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawConsumer {
    /// The consumer's name (sent upstream in the identity header).
    pub name: String,
    /// One credential (Higress's field); plain text or `sha256:<64 hex>`.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("writeOnly" = true)))]
    pub credential: Option<String>,
    /// More credentials (plain or hashed).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("writeOnly" = true)))]
    pub credentials: Vec<String>,
    /// Model patterns this consumer may use (absent: all not denied).
    #[serde(default)]
    pub allowed_models: Option<Vec<String>>,
    /// Model patterns this consumer may not use.
    #[serde(default)]
    pub denied_models: Vec<String>,
}

/// A consumer ready for matching: credential digests only (plain keys are hashed at
/// configure time and not kept).
#[derive(Debug, Clone)]
pub struct Consumer {
    /// Its name.
    pub name: String,
    /// SHA-256 digests of its credentials.
    pub digests: Vec<Digest>,
    /// Its model policy.
    pub models: ModelPolicy,
}

/// The plugin configuration as written (global, or a rule merged over it); compiled into a
/// [`Config`].
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Consumers and their credentials.
    #[serde(default)]
    pub consumers: Vec<RawConsumer>,
    /// Header and query parameter names a credential is read from.
    #[serde(default = "default_keys")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub keys: Vec<String>,
    /// Read credentials from request headers.
    #[serde(default = "yes")]
    pub in_header: bool,
    /// Read credentials from query parameters (off by default: URLs end up in access logs).
    #[serde(default)]
    pub in_query: bool,
    /// Higress semantics: true = authenticate every request; false = only requests matched
    /// by a `_rules_` entry; absent = every request when there are no rules.
    #[serde(default)]
    pub global_auth: Option<bool>,
    /// Consumer names allowed on this rule/route (absent: every authenticated consumer).
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Identity header set on success.
    #[serde(default = "default_consumer_header")]
    pub consumer_header: String,
    /// Header listing the consumer's allowed model patterns (comma separated) for ai-proxy.
    #[serde(default = "default_allowed_models_header")]
    pub allowed_models_header: String,
    /// `realm` of the `www-authenticate` challenge.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Largest request body read to find the model (larger bodies get 413).
    #[serde(default = "default_max_body")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub max_body_bytes: usize,
}

/// The compiled plugin configuration: names lowercased, consumers with credential digests
/// only (plain keys are hashed at configure time and not kept).
#[derive(Debug)]
pub struct Config {
    /// Header and query parameter names a credential is read from (lowercase).
    pub keys: Vec<String>,
    /// Read credentials from request headers.
    pub in_header: bool,
    /// Read credentials from query parameters.
    pub in_query: bool,
    /// Higress `global_auth` (see [`RawConfig::global_auth`]).
    pub global_auth: Option<bool>,
    /// Consumer names allowed on this rule/route (absent: every authenticated consumer).
    pub allow: Option<Vec<String>>,
    /// Identity header set on success (lowercase).
    pub consumer_header: String,
    /// Header listing the consumer's allowed model patterns for ai-proxy (lowercase).
    pub allowed_models_header: String,
    /// `realm` of the `www-authenticate` challenge.
    pub realm: String,
    /// Largest request body read to find the model.
    pub max_body_bytes: usize,
    /// The consumers.
    pub consumers: Vec<Consumer>,
}

fn yes() -> bool {
    true
}
fn default_keys() -> Vec<String> {
    DEFAULT_KEYS.iter().map(|s| s.to_string()).collect()
}
fn default_consumer_header() -> String {
    DEFAULT_CONSUMER_HEADER.into()
}
fn default_allowed_models_header() -> String {
    DEFAULT_ALLOWED_MODELS_HEADER.into()
}
fn default_realm() -> String {
    "aigw".into()
}
fn default_max_body() -> usize {
    4 << 20
}

/// Turns one configured credential into its digest.
fn digest_of(credential: &str, field: &str) -> Result<Digest, ConfigError> {
    if let Some(hex) = credential.strip_prefix(HASH_PREFIX) {
        return parse_hex(hex).ok_or_else(|| {
            ConfigError::new(field, "a sha256: credential needs exactly 64 hex digits")
        });
    }
    if credential.is_empty() {
        return Err(ConfigError::new(field, "must not be empty"));
    }
    if credential
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ')
    {
        return Err(ConfigError::new(
            field,
            "must not contain spaces or control characters",
        ));
    }
    Ok(sha256(credential.as_bytes()))
}

fn patterns(list: &[String], field: &str) -> Result<Vec<Pattern>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, p)| match pattern_problem(p) {
            Some(why) => Err(ConfigError::new(format!("{field}[{i}]"), why)),
            None => Ok(Pattern::new(p.trim())),
        })
        .collect()
}

impl PluginConfig for Config {
    type Raw = RawConfig;

    fn compile(mut raw: RawConfig) -> Result<Config, ConfigError> {
        if !raw.in_header && !raw.in_query {
            return Err(ConfigError::new(
                "in_header",
                "at least one of in_header and in_query must be true",
            ));
        }
        if raw.keys.is_empty() {
            return Err(ConfigError::new("keys", "needs at least one name"));
        }
        for (i, k) in raw.keys.iter_mut().enumerate() {
            if k.is_empty() || k.bytes().any(|b| b.is_ascii_whitespace() || b == b':') {
                return Err(ConfigError::new(
                    format!("keys[{i}]"),
                    "must be a header or query parameter name",
                ));
            }
            k.make_ascii_lowercase();
        }
        if raw.consumer_header.is_empty() {
            return Err(ConfigError::new("consumer_header", "must not be empty"));
        }
        raw.consumer_header.make_ascii_lowercase();
        raw.allowed_models_header.make_ascii_lowercase();
        if raw.max_body_bytes == 0 {
            return Err(ConfigError::new("max_body_bytes", "must be positive"));
        }
        let mut consumers = Vec::with_capacity(raw.consumers.len());
        let mut seen_digests: Vec<Digest> = Vec::new();
        for (i, spec) in raw.consumers.iter().enumerate() {
            let at = format!("consumers[{i}]");
            if spec.name.is_empty()
                || spec
                    .name
                    .bytes()
                    .any(|b| b.is_ascii_control() || b == b',' || b == b';')
            {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    "must be a non-empty name without control characters, ',' or ';'",
                ));
            }
            if consumers.iter().any(|c: &Consumer| c.name == spec.name) {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    "duplicate consumer name",
                ));
            }
            let mut digests = Vec::new();
            if let Some(c) = &spec.credential {
                digests.push(digest_of(c, &format!("{at}.credential"))?);
            }
            for (j, c) in spec.credentials.iter().enumerate() {
                digests.push(digest_of(c, &format!("{at}.credentials[{j}]"))?);
            }
            if digests.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.credential"),
                    "a consumer needs `credential` or `credentials`",
                ));
            }
            for d in &digests {
                if seen_digests.contains(d) {
                    return Err(ConfigError::new(
                        format!("{at}.credential"),
                        "the same credential is configured twice",
                    ));
                }
                seen_digests.push(*d);
            }
            let models = ModelPolicy {
                allow: spec
                    .allowed_models
                    .as_deref()
                    .map(|l| patterns(l, &format!("{at}.allowed_models")))
                    .transpose()?,
                deny: patterns(&spec.denied_models, &format!("{at}.denied_models"))?,
            };
            consumers.push(Consumer {
                name: spec.name.clone(),
                digests,
                models,
            });
        }
        if let Some(allow) = &raw.allow {
            for (i, name) in allow.iter().enumerate() {
                if !consumers.iter().any(|c| &c.name == name) {
                    return Err(ConfigError::new(
                        format!("allow[{i}]"),
                        format!("no consumer named {name:?}"),
                    ));
                }
            }
        }
        // Plain credentials are not kept once hashed: `raw` is dropped here.
        Ok(Config {
            keys: raw.keys,
            in_header: raw.in_header,
            in_query: raw.in_query,
            global_auth: raw.global_auth,
            allow: raw.allow,
            consumer_header: raw.consumer_header,
            allowed_models_header: raw.allowed_models_header,
            realm: raw.realm,
            max_body_bytes: raw.max_body_bytes,
            consumers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        aigw::config::parse::<Config>(json.as_bytes())
    }

    #[test]
    fn defaults_and_hashing() {
        let c = parse(r#"{"consumers":[{"name":"a","credential":"k1","credentials":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}]}"#).unwrap();
        assert_eq!(c.keys, DEFAULT_KEYS);
        assert!(c.in_header && !c.in_query);
        assert_eq!(c.consumers[0].digests[0], sha256(b"k1"));
        assert_eq!(c.consumers[0].digests[1], sha256(b""));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"consumers":[{"name":"a"}]}"#, "consumers[0].credential"),
            (
                r#"{"consumers":[{"name":"a","credential":"sha256:12"}]}"#,
                "consumers[0].credential",
            ),
            (
                r#"{"consumers":[{"name":"a","credential":"x"},{"name":"a","credential":"y"}]}"#,
                "consumers[1].name",
            ),
            (
                r#"{"consumers":[{"name":"a","credential":"x"},{"name":"b","credential":"x"}]}"#,
                "consumers[1].credential",
            ),
            (
                r#"{"consumers":[{"name":"a","credential":"x"}],"allow":["b"]}"#,
                "allow[0]",
            ),
            (
                r#"{"consumers":[{"name":"a","credential":"x"}],"in_header":false}"#,
                "in_header",
            ),
            (
                r#"{"consumers":[{"name":"a","credential":"x","allowed_models":[""]}]}"#,
                "consumers[0].allowed_models[0]",
            ),
            (r#"{"keys":[]}"#, "keys"),
        ];
        for (json, field) in cases {
            let e = parse(json).unwrap_err();
            assert_eq!(e.path(), field, "{json}: {e}");
        }
    }
}
