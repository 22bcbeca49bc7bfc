//! One Redis section for every plugin that talks to Redis through Higress's Redis calls
//! (ai-token-ratelimit's cluster mode, ai-cache's `redis` store). Field names follow Higress's
//! plugins (`service_name`, `service_port`, `username`, `password`, `timeout`, `database`).

use super::ConfigError;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// Where the Redis server is and how to call it. The password never appears in `Debug`
/// output or in errors.
///
/// ```
/// use aigw::config::redis::RedisSpec;
///
/// let r: RedisSpec = serde_json::from_str(
///     r#"{"service_name":"redis.static","password":"s3cret","timeout":500}"#).unwrap();
/// r.validate("redis").unwrap();
/// assert_eq!(r.cluster_name(), "outbound|80||redis.static");
/// assert!(!format!("{r:?}").contains("s3cret"));
/// ```
#[derive(Clone, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(transform = timeout_alias)
)]
#[serde(deny_unknown_fields)]
pub struct RedisSpec {
    /// The Redis service FQDN (`redis.static`, `redis.default.svc.cluster.local`).
    #[serde(default)]
    pub service_name: Option<String>,
    /// The service port (default 80 for `*.static`, else 6379).
    #[serde(default)]
    pub service_port: Option<u16>,
    /// The gateway cluster name, when it is not `outbound|<port>||<service_name>`.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Redis user.
    #[serde(default)]
    pub username: Option<String>,
    /// Redis password (never logged).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("writeOnly" = true)))]
    pub password: Option<String>,
    /// Call timeout in milliseconds (default 1000; `timeout_ms` is accepted too).
    #[serde(default = "default_timeout", alias = "timeout_ms")]
    pub timeout: u64,
    /// Database number (default 0). Each plugin says whether it can select another one.
    #[serde(default)]
    pub database: u32,
    /// Prefix of every key the plugin writes (each plugin has its own default).
    #[serde(default)]
    pub key_prefix: Option<String>,
}

fn default_timeout() -> u64 {
    1000
}

/// The schema also accepts `timeout_ms`, the serde alias of `timeout`.
#[cfg(feature = "schema")]
fn timeout_alias(schema: &mut schemars::Schema) {
    super::schema::add_alias(schema, "timeout", "timeout_ms");
}

impl fmt::Debug for RedisSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSpec")
            .field("service_name", &self.service_name)
            .field("service_port", &self.service_port)
            .field("cluster", &self.cluster)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("database", &self.database)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl RedisSpec {
    /// The gateway cluster to call: `cluster`, or Higress's `outbound|<port>||<service_name>`.
    pub fn cluster_name(&self) -> String {
        if let Some(c) = &self.cluster {
            return c.clone();
        }
        let name = self.service_name.as_deref().unwrap_or_default();
        let port = self
            .service_port
            .unwrap_or(if name.ends_with(".static") { 80 } else { 6379 });
        format!("outbound|{port}||{name}")
    }

    /// The call timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout)
    }

    /// The key prefix, or the plugin's `default`.
    pub fn key_prefix<'a>(&'a self, default: &'a str) -> &'a str {
        self.key_prefix.as_deref().unwrap_or(default)
    }

    /// Checks the section found at `at` (for error paths, e.g. `redis`).
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let field = |name: &str| format!("{at}.{name}");
        let has_service = self
            .service_name
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty());
        let has_cluster = self
            .cluster
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty());
        if self.service_name.is_some() && !has_service {
            return Err(ConfigError::new(field("service_name"), "must not be empty"));
        }
        if self.cluster.is_some() && !has_cluster {
            return Err(ConfigError::new(field("cluster"), "must not be empty"));
        }
        if !has_service && !has_cluster {
            return Err(ConfigError::new(
                field("service_name"),
                "required (or cluster with the gateway's cluster name)",
            ));
        }
        if self.service_port == Some(0) {
            return Err(ConfigError::new(
                field("service_port"),
                "must be between 1 and 65535",
            ));
        }
        if self.timeout == 0 || self.timeout > 60_000 {
            return Err(ConfigError::new(
                field("timeout"),
                "must be between 1 and 60000 milliseconds",
            ));
        }
        if let Some(p) = &self.key_prefix {
            if p.is_empty() || p.chars().any(char::is_whitespace) {
                return Err(ConfigError::new(
                    field("key_prefix"),
                    "must be non-empty and without whitespace",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> RedisSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn both_timeout_spellings_and_checks() {
        assert_eq!(spec(r#"{"cluster":"c","timeout_ms":250}"#).timeout, 250);
        assert_eq!(spec(r#"{"cluster":"c","timeout":250}"#).timeout, 250);
        assert_eq!(spec(r#"{"cluster":"c"}"#).timeout, 1000);
        let e = spec(r#"{"cluster":"c","timeout":0}"#)
            .validate("redis")
            .unwrap_err();
        assert_eq!(e.path(), "redis.timeout");
        let e = spec(r#"{}"#).validate("store.redis").unwrap_err();
        assert_eq!(e.path(), "store.redis.service_name");
        let e = spec(r#"{"cluster":"c","key_prefix":"a b"}"#)
            .validate("redis")
            .unwrap_err();
        assert_eq!(e.path(), "redis.key_prefix");
        assert_eq!(
            spec(r#"{"service_name":"r.default.svc"}"#).cluster_name(),
            "outbound|6379||r.default.svc"
        );
        assert!(serde_json::from_str::<RedisSpec>(r#"{"cluster":"c","nope":1}"#).is_err());
    }
}
