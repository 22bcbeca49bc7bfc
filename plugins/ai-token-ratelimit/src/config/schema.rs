//! The configuration as users write it: serde types with defaults, unknown fields rejected.
//! The Higress `rule_items` form is in [`super::higress`]; [`super::compile`] checks both and
//! builds the limits.

use serde::Deserialize;

use super::higress::RuleItem;
use super::{RedisSpec, RlsSpec, DEFAULT_CONSUMER_HEADER};

/// The whole plugin configuration as written (one per rule after Higress `_rules_` merging);
/// compiled into a [`super::Config`].
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Higress form: the rule name, part of every counter name.
    #[serde(default)]
    pub rule_name: Option<String>,
    /// Higress form: the items; the first item and key that match a request decide its limit.
    #[serde(default)]
    pub rule_items: Option<Vec<RuleItem>>,
    /// Clear form: independent limits; every limit that matches a request applies.
    #[serde(default)]
    pub limits: Option<Vec<LimitSpec>>,
    /// Status of a rejected request (default 429).
    #[serde(default = "default_rejected_code")]
    #[cfg_attr(feature = "schema", schemars(range(min = 200, max = 599)))]
    pub rejected_code: u16,
    /// Message of a rejected request (inside the client's error shape).
    #[serde(default)]
    pub rejected_msg: Option<String>,
    /// Where counters live: `local` (shared data), `cluster` (Redis) or `rls` (an Envoy rate
    /// limit service).
    #[serde(default)]
    pub mode: Option<Mode>,
    /// What happens when the counter store fails: `open` (admit) or `closed` (reject, 503).
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// Redis settings (cluster mode).
    #[serde(default)]
    pub redis: Option<RedisSpec>,
    /// Rate limit service settings (rls mode).
    #[serde(default)]
    pub rls: Option<RlsSpec>,
    /// The header naming the consumer (default `x-mse-consumer`).
    #[serde(default = "default_consumer_header")]
    pub consumer_header: String,
    /// How the client IP is found.
    #[serde(default)]
    pub client_ip: ClientIp,
    /// Admission before the upstream is called.
    #[serde(default)]
    pub admission: Admission,
    /// Bounds of the response scan for usage.
    #[serde(default)]
    pub response: ResponseScan,
    /// Local (shared data) mode settings.
    #[serde(default)]
    pub local: LocalSpec,
    /// Whether allowed responses carry the `x-ratelimit-*` headers (default true).
    #[serde(default = "yes")]
    pub response_headers: bool,
}

fn default_rejected_code() -> u16 {
    429
}

fn default_consumer_header() -> String {
    DEFAULT_CONSUMER_HEADER.to_string()
}

fn yes() -> bool {
    true
}

/// Where counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Shared data of one gateway process (all its workers).
    Local,
    /// Redis, shared by every gateway replica (needs the `higress` build).
    Cluster,
    /// An Envoy global rate limit service (`ShouldRateLimit` over gRPC), shared by every
    /// gateway replica; works in the default build.
    Rls,
}

/// Behaviour when the counter store cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Admit the request without counting it (the default, as Higress does).
    #[default]
    Open,
    /// Reject the request with 503.
    Closed,
}

/// Client IP source.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ClientIp {
    /// 0: the connection's peer (`source.address`). N > 0: the N-th address from the right of
    /// `x-forwarded-for` (N trusted proxies each appended one); when the header has fewer
    /// than N addresses the peer address is used.
    #[cfg_attr(feature = "schema", schemars(range(max = 32)))]
    pub xff_trusted_hops: u32,
}

/// Admission settings.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Admission {
    /// Reserve an estimate before the upstream is called (default true). When false, token
    /// limits only reject once a window is used up, and usage is charged after the response.
    pub estimate: bool,
    /// Prompt bytes per token for the prompt estimate (default 4).
    pub bytes_per_token: u32,
    /// Completion estimate when the request sets no `max_tokens` (default 1024).
    pub default_max_tokens: u64,
    /// Cap of the completion estimate per choice (default 4096); see the README's overshoot
    /// bound.
    pub max_completion_estimate: u64,
    /// Tokens counted for each inline (data URL) image (default 1000).
    pub image_tokens: u64,
    /// Bodies larger than this are not parsed; their prompt estimate comes from the size
    /// alone (default 4 MiB).
    pub max_body_bytes: usize,
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            estimate: true,
            bytes_per_token: 4,
            default_max_tokens: 1024,
            max_completion_estimate: 4096,
            image_tokens: 1000,
            max_body_bytes: 4 << 20,
        }
    }
}

/// Bounds of the response scan.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ResponseScan {
    /// How much of a non-streamed body is kept to find usage: the whole body when it fits,
    /// otherwise its tail of this size (default 64 KiB).
    pub max_body_bytes: usize,
    /// The largest server-sent event the parser holds (default 256 KiB).
    pub max_event_bytes: usize,
}

impl Default for ResponseScan {
    fn default() -> Self {
        ResponseScan {
            max_body_bytes: 64 << 10,
            max_event_bytes: 256 << 10,
        }
    }
}

/// Local mode settings.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct LocalSpec {
    /// Counter slots per limit whose key has a `*` or regex part (default 4096): the most
    /// identities with a live window at once.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = super::MAX_SLOTS)))]
    pub slots: u32,
}

impl Default for LocalSpec {
    fn default() -> Self {
        LocalSpec { slots: 4096 }
    }
}

/// Clear form: one limit.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    /// The counter name (default `limit-<index>`); keep it stable across changes.
    #[serde(default)]
    pub name: Option<String>,
    /// The key parts; empty means one counter for every request.
    #[serde(default)]
    pub key: Vec<DimSpec>,
    /// What is counted.
    #[serde(default)]
    pub count: Count,
    /// Weight of cached prompt tokens, 0..=1 (default 1: counted like other tokens).
    #[serde(default)]
    pub cached_input_weight: Option<f64>,
    /// Limit per second.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub per_second: Option<u64>,
    /// Limit per minute.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub per_minute: Option<u64>,
    /// Limit per hour.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub per_hour: Option<u64>,
    /// Limit per day (UTC days).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub per_day: Option<u64>,
}

/// Clear form: one key part.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DimSpec {
    /// Where the value comes from.
    pub by: DimKind,
    /// Header, query parameter or cookie name (for `header`, `param`, `cookie`).
    #[serde(default)]
    pub name: Option<String>,
    /// `*` (default), `regexp:<re>`, an exact value, or for `ip` an address or CIDR range.
    #[serde(default, rename = "match")]
    pub pattern: Option<String>,
}

/// Key part sources of the clear form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DimKind {
    /// The consumer header.
    Consumer,
    /// The API key (`Authorization: Bearer`, `x-api-key`, `api-key`), or behind ai-auth the
    /// fingerprint ai-auth published; compared and counted as its fingerprint
    /// ([`aigw::contract::key_id`]).
    ApiKey,
    /// A request header.
    Header,
    /// A query parameter.
    Param,
    /// A cookie.
    Cookie,
    /// The client IP.
    Ip,
    /// The requested model.
    Model,
    /// The route name.
    Route,
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Count {
    /// Prompt plus completion tokens.
    #[default]
    Total,
    /// Prompt tokens.
    Prompt,
    /// Completion tokens (reasoning included).
    Completion,
    /// Requests.
    Requests,
}
