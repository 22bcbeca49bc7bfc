//! The plugin configuration: what goes into the cache key, where entries live, limits, and
//! the optional semantic (embeddings) lookup.

use aigw::config::{ConfigError, PlainConfig};
use serde::Deserialize;

/// Which part of the conversation goes into the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyMessages {
    /// Every message (and the Anthropic `system` field).
    #[default]
    All,
    /// Only the text of the last user message (system prompt and history are ignored).
    LastUser,
}

/// What scopes the key, besides the request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The consumer (`x-mse-consumer` request header).
    Consumer,
    /// The route (`route_name` property).
    Route,
}

/// Where entries are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// Proxy-wasm shared data: one cache per gateway process, shared by its workers.
    #[default]
    Local,
    /// Redis through Higress's Redis host calls (module built with the `higress` feature),
    /// shared by every gateway replica.
    Redis,
}

/// The Redis server (store `redis`): the SDK's one Redis section (field names as in Higress;
/// `timeout_ms` is accepted for `timeout`).
pub use aigw::config::redis::RedisSpec as Redis;

/// The semantic (embeddings) lookup.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Semantic {
    /// The cluster that serves an OpenAI-compatible embeddings API.
    pub cluster: String,
    /// `:authority` of the embeddings call.
    #[serde(default = "default_embed_authority")]
    pub authority: String,
    /// Path of the embeddings call.
    #[serde(default = "default_embed_path")]
    pub path: String,
    /// Embedding model name.
    pub model: String,
    /// Bearer token for the embeddings endpoint (never logged).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("writeOnly" = true)))]
    pub api_key: Option<String>,
    /// Call-out timeout in milliseconds.
    #[serde(default = "default_embed_timeout")]
    pub timeout_ms: u64,
    /// Cosine similarity at or above which a stored question counts as the same question.
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// Vectors kept in the local index (a ring: the oldest is replaced).
    #[serde(default = "default_vectors")]
    pub max_vectors: u32,
    /// Largest accepted vector dimension.
    #[serde(default = "default_max_dims")]
    pub max_dims: u32,
    /// Where the vectors live (local store only; the Redis store keeps its own).
    #[serde(default)]
    pub index: VectorIndexConfig,
}

/// The vector index of the semantic lookup.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum VectorIndexConfig {
    /// A ring in shared data, searched linearly (see the README's limits).
    #[default]
    Local,
    /// A Qdrant collection over its REST API.
    Qdrant {
        /// The gateway cluster that reaches Qdrant.
        cluster: String,
        /// `:authority` of the calls (default: the cluster name).
        #[serde(default)]
        authority: Option<String>,
        /// The collection (cosine distance, the embedding size).
        collection: String,
        /// Qdrant API key, sent as `api-key` (never logged).
        #[serde(default)]
        #[cfg_attr(feature = "schema", schemars(extend("writeOnly" = true)))]
        api_key: Option<String>,
        /// Call timeout in milliseconds.
        #[serde(default = "default_embed_timeout")]
        timeout_ms: u64,
    },
}

/// The per-rule configuration.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Entry lifetime in seconds.
    #[serde(default = "default_ttl")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub ttl_seconds: u64,
    /// What part of the conversation keys the cache.
    #[serde(default)]
    pub key_messages: KeyMessages,
    /// Extra key scoping.
    #[serde(default)]
    pub scope: Vec<Scope>,
    /// Request body fields left out of the key (they do not change the answer).
    #[serde(default = "default_ignored")]
    pub ignored_fields: Vec<String>,
    /// The store.
    #[serde(default)]
    pub store: StoreKind,
    /// The Redis server, for store `redis`.
    #[serde(default)]
    pub redis: Option<Redis>,
    /// Namespace of the shared-data keys (separate caches on one gateway).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Number of entry slots in the local store (memory bound: slots × max_entry_bytes).
    #[serde(default = "default_slots")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1_000_000)))]
    pub max_entries: u32,
    /// Largest answer cached, in bytes (the response body as received); larger answers are
    /// not cached.
    #[serde(default = "default_entry_bytes")]
    #[cfg_attr(feature = "schema", schemars(range(min = 64)))]
    pub max_entry_bytes: usize,
    /// Largest request body read for the key; larger requests pass through uncached.
    #[serde(default = "default_request_bytes")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub max_request_bytes: usize,
    /// Request header for per-request control: `bypass` or `refresh`.
    #[serde(default = "default_control_header")]
    pub control_header: String,
    /// Characters of answer per replayed stream event.
    #[serde(default = "default_replay_chunk")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub replay_chunk_chars: usize,
    /// Optional semantic lookup on exact misses.
    #[serde(default)]
    pub semantic: Option<Semantic>,
}

fn default_ttl() -> u64 {
    3600
}
fn default_ignored() -> Vec<String> {
    ["stream", "stream_options", "user", "metadata", "store"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
fn default_namespace() -> String {
    "default".into()
}
fn default_slots() -> u32 {
    1024
}
fn default_entry_bytes() -> usize {
    256 * 1024
}
fn default_request_bytes() -> usize {
    1024 * 1024
}
fn default_control_header() -> String {
    "x-ai-cache".into()
}
fn default_replay_chunk() -> usize {
    24
}
fn default_embed_authority() -> String {
    "embeddings".into()
}
fn default_embed_path() -> String {
    "/v1/embeddings".into()
}
fn default_embed_timeout() -> u64 {
    2000
}
fn default_threshold() -> f32 {
    0.9
}
fn default_vectors() -> u32 {
    2048
}
fn default_max_dims() -> u32 {
    4096
}

impl PlainConfig for Config {
    fn validate(&mut self) -> Result<(), ConfigError> {
        if self.ttl_seconds == 0 {
            return Err(ConfigError::new("ttl_seconds", "must be at least 1"));
        }
        if self.max_entries == 0 || self.max_entries > 1_000_000 {
            return Err(ConfigError::new(
                "max_entries",
                "must be between 1 and 1000000",
            ));
        }
        if self.max_entry_bytes < 64 {
            return Err(ConfigError::new("max_entry_bytes", "must be at least 64"));
        }
        if self.max_request_bytes == 0 {
            return Err(ConfigError::new("max_request_bytes", "must be at least 1"));
        }
        if self.replay_chunk_chars == 0 {
            return Err(ConfigError::new("replay_chunk_chars", "must be at least 1"));
        }
        if self.namespace.is_empty() || self.namespace.contains('|') {
            return Err(ConfigError::new(
                "namespace",
                "must be non-empty and must not contain '|'",
            ));
        }
        self.control_header = self.control_header.trim().to_ascii_lowercase();
        if self.control_header.is_empty() {
            return Err(ConfigError::new("control_header", "must not be empty"));
        }
        if self.store == StoreKind::Redis {
            if cfg!(not(feature = "higress")) {
                return Err(ConfigError::new(
                    "store",
                    "\"redis\" needs the module built with the `higress` feature",
                ));
            }
            let Some(r) = &self.redis else {
                return Err(ConfigError::new(
                    "redis",
                    "required when store is \"redis\"",
                ));
            };
            r.validate("redis")?;
            if r.database != 0 {
                return Err(ConfigError::new(
                    "redis.database",
                    "ai-cache uses database 0 (the calls carry no SELECT); use key namespaces instead",
                ));
            }
            if r.key_prefix.is_some() {
                return Err(ConfigError::new(
                    "redis.key_prefix",
                    "ai-cache names its keys by `namespace`; set that instead",
                ));
            }
        }
        if let Some(s) = &self.semantic {
            if s.cluster.is_empty() {
                return Err(ConfigError::new("semantic.cluster", "must not be empty"));
            }
            if s.model.is_empty() {
                return Err(ConfigError::new("semantic.model", "must not be empty"));
            }
            if !s.path.starts_with('/') {
                return Err(ConfigError::new("semantic.path", "must start with '/'"));
            }
            if !(s.threshold > 0.0 && s.threshold <= 1.0) {
                return Err(ConfigError::new("semantic.threshold", "must be in (0, 1]"));
            }
            if s.timeout_ms == 0 {
                return Err(ConfigError::new(
                    "semantic.timeout_ms",
                    "must be at least 1",
                ));
            }
            if s.max_vectors == 0 || s.max_vectors > 100_000 {
                return Err(ConfigError::new(
                    "semantic.max_vectors",
                    "must be between 1 and 100000",
                ));
            }
            if s.max_dims == 0 || s.max_dims > 16_384 {
                return Err(ConfigError::new(
                    "semantic.max_dims",
                    "must be between 1 and 16384",
                ));
            }
            if let VectorIndexConfig::Qdrant {
                cluster,
                collection,
                timeout_ms,
                ..
            } = &s.index
            {
                if cluster.is_empty() {
                    return Err(ConfigError::new(
                        "semantic.index.cluster",
                        "must not be empty",
                    ));
                }
                let safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
                if collection.is_empty() || !collection.chars().all(safe) {
                    return Err(ConfigError::new(
                        "semantic.index.collection",
                        "must be a non-empty name of letters, digits, '-' and '_'",
                    ));
                }
                if *timeout_ms == 0 {
                    return Err(ConfigError::new(
                        "semantic.index.timeout_ms",
                        "must be at least 1",
                    ));
                }
                if self.store == StoreKind::Redis {
                    return Err(ConfigError::new(
                        "semantic.index",
                        "the Redis store keeps its vectors in Redis; use `local` (or the local store)",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, String> {
        let mut c: Config = serde_json::from_str(json).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_and_errors() {
        let c = parse("{}").unwrap();
        assert_eq!(c.ttl_seconds, 3600);
        assert_eq!(c.key_messages, KeyMessages::All);
        assert_eq!(c.control_header, "x-ai-cache");
        assert!(parse(r#"{"ttl_seconds":0}"#)
            .unwrap_err()
            .contains("ttl_seconds"));
        assert!(parse(r#"{"namespace":"a|b"}"#)
            .unwrap_err()
            .contains("namespace"));
        assert!(parse(r#"{"store":"memcached"}"#).is_err());
        let e = parse(r#"{"store":"redis","redis":{"service_name":"r.static"}}"#);
        if cfg!(feature = "higress") {
            assert!(e.is_ok());
            assert!(parse(r#"{"store":"redis"}"#).unwrap_err().contains("redis"));
        } else {
            assert!(e.unwrap_err().contains("higress"));
        }
        let e = parse(r#"{"semantic":{"cluster":"e","model":"m","threshold":1.5}}"#).unwrap_err();
        assert!(e.contains("semantic.threshold"), "{e}");
        let c = parse(r#"{"scope":["consumer","route"],"key_messages":"last_user"}"#).unwrap();
        assert_eq!(c.scope, vec![Scope::Consumer, Scope::Route]);
    }
}
