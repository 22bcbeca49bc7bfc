//! The plugin configuration: backends, policy, health, latency, prefix and metrics settings.

use aigw::config::{ConfigError, PluginConfig};
use serde::Deserialize;

/// The header an Envoy `ORIGINAL_DST` cluster with `use_http_header: true` reads.
pub const ORIGINAL_DST_HEADER: &str = "x-envoy-original-dst-host";

/// Upper bound on the sum of backend weights (the weighted round-robin sequence has one slot
/// per unit of weight).
pub const MAX_TOTAL_WEIGHT: u32 = 10_000;

/// Upper bound on the number of backends.
pub const MAX_BACKENDS: usize = 256;

/// How a backend is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Smooth weighted round robin over a sequence shared by all workers.
    RoundRobin,
    /// Fewest requests in flight (per unit of weight), counted across workers.
    LeastInFlight,
    /// Lowest decayed latency EWMA times (in-flight + 1).
    Latency,
    /// Same backend for requests sharing a prompt prefix, with a bounded-load fallback.
    PrefixAffinity,
    /// Lowest score from scraped vLLM metrics; in-flight when metrics are stale or missing.
    Metrics,
}

/// One upstream backend.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// The value written to the target header: `ip:port` for an ORIGINAL_DST cluster, or a
    /// cluster name for a route's `cluster_header`.
    pub host: String,
    /// Relative weight (1..), used by round robin, least in-flight and latency.
    #[serde(default = "one")]
    pub weight: u32,
    /// Cluster for this backend's metrics scrape (defaults to `metrics.cluster`).
    #[serde(default)]
    pub metrics_cluster: Option<String>,
}

/// Passive health checking (outlier ejection).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Health {
    /// Consecutive failures (5xx, resets, timeouts) that eject a backend.
    pub consecutive_failures: u32,
    /// First ejection period; each further ejection doubles it.
    pub base_ejection_ms: u64,
    /// Cap on the ejection period.
    pub max_ejection_ms: u64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            consecutive_failures: 3,
            base_ejection_ms: 10_000,
            max_ejection_ms: 300_000,
        }
    }
}

/// Which latency the `latency` policy tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Time to first token: request start to the first response body byte.
    Ttft,
    /// Time per output token: between streamed SSE events, averaged per response.
    Tpot,
}

/// Latency EWMA settings.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Latency {
    /// Which latency is tracked.
    pub signal: Signal,
    /// Weight of a new sample (0 < alpha <= 1).
    pub alpha: f64,
    /// An idle backend's EWMA halves every `half_life_ms`, so a recovered backend is tried again.
    pub half_life_ms: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            signal: Signal::Ttft,
            alpha: 0.3,
            half_life_ms: 30_000,
        }
    }
}

/// Where prefix affinity takes its material from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PrefixSource {
    /// A request header (works on every Envoy).
    Header,
    /// The request body's prompt (system, messages, tools): the request headers are held until
    /// the body is read, which needs Envoy 1.35+ with `allow_on_headers_stop_iteration` or
    /// Higress with the `higress` build.
    Body,
}

/// Prefix-affinity settings.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Prefix {
    /// Where the prefix material comes from.
    pub source: PrefixSource,
    /// Request header carrying the conversation's prefix material (`source: header`).
    pub header: String,
    /// Largest request body read for the material (`source: body`); larger bodies are routed
    /// by least in-flight.
    pub max_body_bytes: usize,
    /// Block size in bytes for hashing the prefix material into a chain.
    pub block_bytes: usize,
    /// Bounded load: the affine backend is skipped when its in-flight count exceeds
    /// `load_factor` × the average in-flight count (plus one).
    pub load_factor: f64,
    /// Number of prefix-index slots kept in shared data (older entries are overwritten).
    pub index_slots: u32,
}

impl Default for Prefix {
    fn default() -> Self {
        Prefix {
            source: PrefixSource::Header,
            header: "x-prompt-prefix".into(),
            max_body_bytes: 1 << 20,
            block_bytes: 64,
            load_factor: 1.25,
            index_slots: 4096,
        }
    }
}

/// Score weights for the `metrics` policy (lower score wins).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// Per waiting request (`vllm:num_requests_waiting`).
    pub waiting: f64,
    /// Per running request (`vllm:num_requests_running`).
    pub running: f64,
    /// Per unit of KV-cache usage, 0..1 (`vllm:kv_cache_usage_perc`).
    pub kv_cache: f64,
    /// Per request this gateway has in flight to the backend (metrics lag behind).
    pub in_flight: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            waiting: 1.0,
            running: 0.1,
            kv_cache: 4.0,
            in_flight: 1.0,
        }
    }
}

/// vLLM metrics scraping.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Cluster the scrape call-outs go to (an ORIGINAL_DST cluster gets the target header).
    pub cluster: String,
    /// Scrape path.
    pub path: String,
    /// Scrape period per backend (shared by all workers).
    pub interval_ms: u64,
    /// Call-out timeout.
    pub timeout_ms: u64,
    /// Metrics older than this are stale and the pick falls back to in-flight counts.
    pub stale_ms: u64,
    /// Score weights.
    pub weights: Weights,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            cluster: String::new(),
            path: "/metrics".into(),
            interval_ms: 1_000,
            timeout_ms: 500,
            stale_ms: 5_000,
            weights: Weights::default(),
        }
    }
}

/// The whole configuration as written; compiled into a [`Config`].
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The backends.
    pub backends: Vec<Backend>,
    /// The policy.
    #[serde(default = "default_policy")]
    pub policy: Policy,
    /// Header set to the chosen backend's `host`.
    #[serde(default = "default_header")]
    pub target_header: String,
    /// Passive health.
    #[serde(default)]
    pub health: Health,
    /// Latency policy settings.
    #[serde(default)]
    pub latency: Latency,
    /// Prefix-affinity settings.
    #[serde(default)]
    pub prefix: Prefix,
    /// Metrics scraping; required for the `metrics` policy.
    #[serde(default)]
    pub metrics: Option<Metrics>,
}

/// The checked configuration the plugin runs with: the settings (names lowercased) and what
/// is derived from them.
#[derive(Debug, Clone)]
pub struct Config {
    /// The backends (at least one, distinct hosts, weights of at least 1).
    pub backends: Vec<Backend>,
    /// The policy.
    pub policy: Policy,
    /// Header set to the chosen backend's `host` (lowercase).
    pub target_header: String,
    /// Passive health.
    pub health: Health,
    /// Latency policy settings.
    pub latency: Latency,
    /// Prefix-affinity settings (header lowercase).
    pub prefix: Prefix,
    /// Metrics scraping; present with the `metrics` policy.
    pub metrics: Option<Metrics>,
    /// Smooth weighted round-robin order (derived from the weights).
    pub sequence: Vec<usize>,
    /// Namespace of this backend set's shared keys (derived from the hosts).
    pub set_id: u64,
}

fn one() -> u32 {
    1
}

fn default_policy() -> Policy {
    Policy::LeastInFlight
}

fn default_header() -> String {
    ORIGINAL_DST_HEADER.to_string()
}

impl PluginConfig for Config {
    type Raw = RawConfig;

    fn compile(mut raw: RawConfig) -> Result<Config, ConfigError> {
        if raw.backends.is_empty() {
            return Err(ConfigError::new(
                "backends",
                "must list at least one backend",
            ));
        }
        if raw.backends.len() > MAX_BACKENDS {
            return Err(ConfigError::new(
                "backends",
                format!("at most {MAX_BACKENDS} backends"),
            ));
        }
        let mut total: u32 = 0;
        for (i, b) in raw.backends.iter().enumerate() {
            if b.host.trim().is_empty() || b.host.bytes().any(|c| c.is_ascii_control() || c == b' ')
            {
                return Err(ConfigError::new(
                    format!("backends[{i}].host"),
                    "must be a non-empty header value without spaces",
                ));
            }
            if raw.backends.iter().take(i).any(|o| o.host == b.host) {
                return Err(ConfigError::new(
                    format!("backends[{i}].host"),
                    "duplicate backend",
                ));
            }
            if b.weight == 0 {
                return Err(ConfigError::new(
                    format!("backends[{i}].weight"),
                    "must be at least 1",
                ));
            }
            total = total.saturating_add(b.weight);
        }
        if total > MAX_TOTAL_WEIGHT {
            return Err(ConfigError::new(
                "backends",
                format!("the weights add up to more than {MAX_TOTAL_WEIGHT}"),
            ));
        }
        let header = raw.target_header.trim().to_ascii_lowercase();
        if header.is_empty() || header.starts_with(':') || header.contains(' ') {
            return Err(ConfigError::new(
                "target_header",
                "must be a regular header name",
            ));
        }
        raw.target_header = header;
        let h = &raw.health;
        if h.consecutive_failures == 0 {
            return Err(ConfigError::new(
                "health.consecutive_failures",
                "must be at least 1",
            ));
        }
        if h.base_ejection_ms == 0 || h.max_ejection_ms < h.base_ejection_ms {
            return Err(ConfigError::new(
                "health.max_ejection_ms",
                "base_ejection_ms must be > 0 and max_ejection_ms >= base_ejection_ms",
            ));
        }
        let l = &raw.latency;
        if !(l.alpha > 0.0 && l.alpha <= 1.0) {
            return Err(ConfigError::new("latency.alpha", "must be in (0, 1]"));
        }
        if l.half_life_ms == 0 {
            return Err(ConfigError::new("latency.half_life_ms", "must be > 0"));
        }
        let p = &mut raw.prefix;
        p.header = p.header.trim().to_ascii_lowercase();
        if p.header.is_empty() {
            return Err(ConfigError::new("prefix.header", "must not be empty"));
        }
        if p.block_bytes == 0 {
            return Err(ConfigError::new("prefix.block_bytes", "must be > 0"));
        }
        if p.max_body_bytes == 0 {
            return Err(ConfigError::new("prefix.max_body_bytes", "must be > 0"));
        }
        if !(p.load_factor >= 1.0 && p.load_factor.is_finite()) {
            return Err(ConfigError::new("prefix.load_factor", "must be >= 1"));
        }
        if p.index_slots == 0 || p.index_slots > 1 << 20 {
            return Err(ConfigError::new(
                "prefix.index_slots",
                "must be in 1..=1048576",
            ));
        }
        match &raw.metrics {
            Some(m) => {
                let has_cluster = !m.cluster.is_empty()
                    || raw.backends.iter().all(|b| b.metrics_cluster.is_some());
                if !has_cluster {
                    return Err(ConfigError::new(
                        "metrics.cluster",
                        "required unless every backend sets metrics_cluster",
                    ));
                }
                if !m.path.starts_with('/') {
                    return Err(ConfigError::new("metrics.path", "must start with '/'"));
                }
                if m.interval_ms == 0 || m.timeout_ms == 0 || m.stale_ms == 0 {
                    return Err(ConfigError::new(
                        "metrics.interval_ms",
                        "interval_ms, timeout_ms and stale_ms must be > 0",
                    ));
                }
                let w = &m.weights;
                if [w.waiting, w.running, w.kv_cache, w.in_flight]
                    .iter()
                    .any(|v| !(v.is_finite() && *v >= 0.0))
                {
                    return Err(ConfigError::new(
                        "metrics.weights",
                        "weights must be finite and >= 0",
                    ));
                }
            }
            None if raw.policy == Policy::Metrics => {
                return Err(ConfigError::new(
                    "metrics",
                    "required by policy \"metrics\"",
                ));
            }
            None => {}
        }
        let weights: Vec<u32> = raw.backends.iter().map(|b| b.weight).collect();
        let mut set = aigw::hash::Fnv1a::new();
        for b in &raw.backends {
            set.write(b.host.as_bytes());
            set.write(b"\x1f");
        }
        Ok(Config {
            sequence: smooth_wrr(&weights),
            set_id: set.finish(),
            backends: raw.backends,
            policy: raw.policy,
            target_header: raw.target_header,
            health: raw.health,
            latency: raw.latency,
            prefix: raw.prefix,
            metrics: raw.metrics,
        })
    }
}

/// The smooth weighted round-robin order (nginx's algorithm) for `weights`: one entry per
/// unit of weight, interleaved so that no backend gets long runs.
pub fn smooth_wrr(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let mut pick = 0usize;
        let mut top = i64::MIN;
        for (i, (c, w)) in current.iter_mut().zip(weights).enumerate() {
            *c += i64::from(*w);
            // Highest current weight wins; the lowest index on ties.
            if *c > top {
                top = *c;
                pick = i;
            }
        }
        if let Some(c) = current.get_mut(pick) {
            *c -= total;
        }
        out.push(pick);
    }
    out
}
