//! The plugin configuration: the Higress-compatible form (`rule_name` + `rule_items`) and the
//! clearer `limits` form, both compiled into one list of [`Group`]s of [`Limit`]s.
//!
//! [`schema`] holds the serde types as written ([`RawConfig`]), [`higress`] the Higress form
//! and its conversion, [`compile`] the checks and the building of the runtime [`Config`].
//! Every field is checked at configure time; an error names the field path, for example
//! `limits[1].key[0].match: invalid regular expression: ...`.

pub mod compile;
pub mod higress;
pub mod schema;
#[cfg(test)]
mod tests;

pub use higress::{LimitKey, LimitType, RuleItem};
pub use schema::*;

/// The rate limit service of rls mode (defined with the rls code).
pub use crate::rls::RlsSpec;

/// Redis settings: the SDK's one Redis section (field names as in Higress).
pub use aigw::config::redis::RedisSpec;

/// The key prefix when `redis.key_prefix` is not set.
pub const DEFAULT_KEY_PREFIX: &str = "aigw-trl";

/// The header carrying the caller identity after an auth plugin (Higress convention).
pub const DEFAULT_CONSUMER_HEADER: &str = aigw::contract::CONSUMER_HEADER;

/// Upper bound of `local.slots`.
pub const MAX_SLOTS: u32 = 1 << 20;

use crate::pattern::Pattern;

/// The compiled configuration the filter runs with: the limits, where counters live, and
/// the checked settings.
#[derive(Debug)]
pub struct Config {
    /// Limit groups; every group is evaluated for every request.
    pub groups: Vec<Group>,
    /// Whether counters live in Redis.
    pub cluster: bool,
    /// A `redis` section was given but this build has no Redis support (local mode is used).
    pub redis_ignored: bool,
    /// Whether admission waits for the request body (token estimate or model keys).
    pub needs_body: bool,
    /// Cluster mode: the Redis scripts and their SHA-1s.
    pub scripts: Option<crate::cluster::Scripts>,
    /// Status of a rejected request.
    pub rejected_code: u16,
    /// Message of a rejected request (inside the client's error shape).
    pub rejected_msg: Option<String>,
    /// What happens when the counter store fails.
    pub failure_mode: FailureMode,
    /// Redis settings (given in cluster mode, or ignored without the `higress` build).
    pub redis: Option<RedisSpec>,
    /// The rate limit service: present exactly in rls mode.
    pub rls: Option<RlsSpec>,
    /// The header naming the consumer (trimmed, lowercase).
    pub consumer_header: String,
    /// How the client IP is found.
    pub client_ip: ClientIp,
    /// Admission before the upstream is called.
    pub admission: Admission,
    /// Bounds of the response scan for usage.
    pub response: ResponseScan,
    /// Local (shared data) mode settings.
    pub local: LocalSpec,
    /// Whether allowed responses carry the `x-ratelimit-*` headers.
    pub response_headers: bool,
}

/// A set of limits. With `first_match` (the Higress form) only the first limit whose key
/// matches applies; otherwise every matching limit applies.
#[derive(Debug)]
pub struct Group {
    /// Only the first matching limit applies.
    pub first_match: bool,
    /// The limits in order.
    pub limits: Vec<Limit>,
}

/// One limit: key parts, what is counted, and one or more windows.
#[derive(Debug)]
pub struct Limit {
    /// The counter name.
    pub name: String,
    /// Key parts; all must have a matching value for the limit to apply.
    pub dims: Vec<Dim>,
    /// What is counted.
    pub count: Count,
    /// Weight of cached prompt tokens.
    pub cached_weight: f64,
    /// Windows (at least one), each with its own limit.
    pub windows: Vec<Window>,
    /// Local mode: number of counter slots (1 when the key has one possible value).
    pub slots: u32,
}

impl Limit {
    /// Whether this limit counts requests rather than tokens.
    pub fn is_requests(&self) -> bool {
        self.count == Count::Requests
    }
}

/// A window length and its limit (the SDK's slot-table window).
pub use aigw::shared::WindowLimit as Window;

/// One key part: a source and the pattern its value must match.
#[derive(Debug)]
pub struct Dim {
    /// Where the value comes from.
    pub source: Source,
    /// What values apply.
    pub pattern: Pattern,
}

/// Where a key part's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The consumer header.
    Consumer,
    /// The API key.
    ApiKey,
    /// A request header (lowercase name).
    Header(String),
    /// A query parameter.
    Param(String),
    /// A cookie.
    Cookie(String),
    /// The client IP per `client_ip`.
    ClientIp,
    /// The first address of a header (Higress `from-header-<name>`).
    IpHeader(String),
    /// The model of the request body (or Gemini path).
    Model,
    /// The `route_name` property.
    Route,
}

impl Source {
    /// Whether the value is only known once the request body was read.
    pub fn needs_body(&self) -> bool {
        matches!(self, Source::Model)
    }
}
