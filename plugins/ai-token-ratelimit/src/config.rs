//! The plugin configuration: the Higress-compatible form (`rule_name` + `rule_items`) and the
//! clearer `limits` form, both compiled into one list of [`Group`]s of [`Limit`]s.
//!
//! Every field is checked at configure time; an error names the field path, for example
//! `limits[1].key[0].match: invalid regular expression: ...`.

use crate::pattern::Pattern;
use aigw::config::{ConfigError, PluginConfig};
use serde::{Deserialize, Deserializer};
use std::collections::HashSet;

/// The header carrying the caller identity after an auth plugin (Higress convention).
pub const DEFAULT_CONSUMER_HEADER: &str = aigw::contract::CONSUMER_HEADER;

/// Upper bound of `local.slots`.
pub const MAX_SLOTS: u32 = 1 << 20;

/// The whole plugin configuration (one per rule after Higress `_rules_` merging).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Config {
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
    /// The compiled limits (filled by `validate`).
    #[serde(skip)]
    pub compiled: Compiled,
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

/// The rate limit service of rls mode (defined with the rls code).
pub use crate::rls::RlsSpec;

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
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = MAX_SLOTS)))]
    pub slots: u32,
}

impl Default for LocalSpec {
    fn default() -> Self {
        LocalSpec { slots: 4096 }
    }
}

/// Redis settings: the SDK's one Redis section (field names as in Higress).
pub use aigw::config::redis::RedisSpec;

/// The key prefix when `redis.key_prefix` is not set.
pub const DEFAULT_KEY_PREFIX: &str = "aigw-trl";

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

/// Higress form: one rule item (exactly one `limit_by_*` field).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleItem {
    /// Header whose value is the key (one counter per configured key).
    #[serde(default)]
    limit_by_header: Option<String>,
    /// Query parameter whose value is the key.
    #[serde(default)]
    limit_by_param: Option<String>,
    /// The consumer is the key (the value, usually `""`, is not used).
    #[serde(default)]
    limit_by_consumer: Option<String>,
    /// Cookie whose value is the key.
    #[serde(default)]
    limit_by_cookie: Option<String>,
    /// Header whose value is the key, one counter per value (`*`, `regexp:` keys).
    #[serde(default)]
    limit_by_per_header: Option<String>,
    /// Query parameter, one counter per value.
    #[serde(default)]
    limit_by_per_param: Option<String>,
    /// The consumer, one counter per consumer (the value, usually `""`, is not used).
    #[serde(default)]
    limit_by_per_consumer: Option<String>,
    /// Cookie, one counter per value.
    #[serde(default)]
    limit_by_per_cookie: Option<String>,
    /// The client IP, one counter per address: `from-remote-addr` or `from-header-<name>`.
    #[serde(default)]
    limit_by_per_ip: Option<String>,
    /// The keys and their limits; the first that matches applies.
    limit_keys: Vec<LimitKey>,
}

/// Higress form: one key of an item.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LimitKey {
    /// The value to match: exact, `*`, `regexp:<re>`, or for IPs an address or CIDR range.
    #[cfg_attr(feature = "schema", schemars(schema_with = "string_or_number_schema"))]
    #[serde(deserialize_with = "string_or_number")]
    key: String,
    /// What is counted: `token` (default) or `request`.
    #[serde(default)]
    limit_type: LimitType,
    /// Limit per second.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    token_per_second: Option<u64>,
    /// Limit per minute.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    token_per_minute: Option<u64>,
    /// Limit per hour.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    token_per_hour: Option<u64>,
    /// Limit per day (UTC days).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    token_per_day: Option<u64>,
}

/// Higress `limit_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum LimitType {
    /// Tokens (total).
    #[default]
    Token,
    /// Requests.
    Request,
}

/// The schema of a field read by [`string_or_number`].
#[cfg(feature = "schema")]
fn string_or_number_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A value: a string, or a number (read as its decimal text).",
        "type": ["string", "number"]
    })
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or a number, got {other}"
        ))),
    }
}

// ---- compiled form ------------------------------------------------------------------------

/// The limits in effect, ready for requests.
#[derive(Debug, Default)]
pub struct Compiled {
    /// Limit groups; every group is evaluated for every request.
    pub groups: Vec<Group>,
    /// Whether counters live in Redis.
    pub cluster: bool,
    /// Whether counters live in an Envoy rate limit service.
    pub rls: bool,
    /// A `redis` section was given but this build has no Redis support (local mode is used).
    pub redis_ignored: bool,
    /// Whether admission waits for the request body (token estimate or model keys).
    pub needs_body: bool,
    /// Cluster mode: the Redis scripts and their SHA-1s.
    pub scripts: Option<crate::cluster::Scripts>,
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

impl PlainConfig for Config {
    fn validate(&mut self) -> Result<(), ConfigError> {
        if !(200..=599).contains(&self.rejected_code) {
            return Err(ConfigError::new(
                "rejected_code",
                "must be an HTTP status between 200 and 599",
            ));
        }
        if self.consumer_header.trim().is_empty() {
            return Err(ConfigError::new("consumer_header", "must not be empty"));
        }
        self.consumer_header = self.consumer_header.trim().to_ascii_lowercase();
        if self.client_ip.xff_trusted_hops > 32 {
            return Err(ConfigError::new(
                "client_ip.xff_trusted_hops",
                "must be at most 32",
            ));
        }
        validate_admission(&self.admission)?;
        if self.response.max_body_bytes == 0 {
            return Err(ConfigError::new(
                "response.max_body_bytes",
                "must be greater than 0",
            ));
        }
        if self.response.max_event_bytes < 1024 {
            return Err(ConfigError::new(
                "response.max_event_bytes",
                "must be at least 1024",
            ));
        }
        if self.local.slots == 0 || self.local.slots > MAX_SLOTS {
            return Err(ConfigError::new(
                "local.slots",
                format!("must be between 1 and {MAX_SLOTS}"),
            ));
        }
        if let Some(redis) = &self.redis {
            validate_redis(redis)?;
        }
        let rls = self.mode == Some(Mode::Rls);
        match (rls, self.rls.as_mut(), &self.redis) {
            (true, None, _) => {
                return Err(ConfigError::new("rls", "required when mode is \"rls\""))
            }
            (true, Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "redis",
                    "not used when mode is \"rls\" (the service keeps the counters)",
                ))
            }
            (true, Some(spec), None) => spec.validate()?,
            (false, Some(_), _) => {
                return Err(ConfigError::new("rls", "only used when mode is \"rls\""))
            }
            (false, None, _) => {}
        }
        let (cluster, redis_ignored) = match (self.mode, &self.redis) {
            (Some(Mode::Cluster), None) => {
                return Err(ConfigError::new(
                    "redis",
                    "required when mode is \"cluster\"",
                ))
            }
            (Some(Mode::Cluster), Some(_)) if !cfg!(feature = "higress") => {
                return Err(ConfigError::new(
                    "mode",
                    "\"cluster\" needs the module built with the `higress` feature (Redis host \
                     calls); this module only supports \"local\"",
                ))
            }
            (Some(Mode::Cluster), Some(_)) => (true, false),
            (None, Some(_)) => (cfg!(feature = "higress"), !cfg!(feature = "higress")),
            (Some(Mode::Local | Mode::Rls), _) | (None, None) => (false, false),
        };

        let groups = match (&self.rule_items, &self.limits) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "limits",
                    "cannot be combined with rule_items (use one form)",
                ))
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "limits",
                    "required: a list of limits (or rule_name + rule_items in the Higress form)",
                ))
            }
            (Some(items), None) => {
                let rule_name = match self.rule_name.as_deref().map(str::trim) {
                    Some(n) if !n.is_empty() => n.to_string(),
                    Some(_) => return Err(ConfigError::new("rule_name", "must not be empty")),
                    None => return Err(ConfigError::new("rule_name", "required with rule_items")),
                };
                check_name("rule_name", &rule_name)?;
                vec![compile_higress(&rule_name, items, self.local.slots)?]
            }
            (None, Some(limits)) => {
                if self.rule_name.is_some() {
                    return Err(ConfigError::new(
                        "rule_name",
                        "only used with rule_items (in the limits form give each limit a name)",
                    ));
                }
                compile_limits(limits, self.local.slots)?
            }
        };
        let needs_body = groups.iter().flat_map(|g| &g.limits).any(|l| {
            l.dims.iter().any(|d| d.source.needs_body())
                || (self.admission.estimate && !l.is_requests())
        });
        let scripts = match &self.redis {
            Some(r) if cluster => Some(crate::cluster::Scripts::new(r.database)),
            _ => None,
        };
        self.compiled = Compiled {
            groups,
            cluster,
            rls,
            redis_ignored,
            needs_body,
            scripts,
        };
        Ok(())
    }
}

fn validate_admission(a: &Admission) -> Result<(), ConfigError> {
    if a.bytes_per_token == 0 {
        return Err(ConfigError::new(
            "admission.bytes_per_token",
            "must be greater than 0",
        ));
    }
    if a.max_completion_estimate == 0 {
        return Err(ConfigError::new(
            "admission.max_completion_estimate",
            "must be greater than 0",
        ));
    }
    if a.max_body_bytes == 0 {
        return Err(ConfigError::new(
            "admission.max_body_bytes",
            "must be greater than 0",
        ));
    }
    Ok(())
}

fn validate_redis(r: &RedisSpec) -> Result<(), ConfigError> {
    r.validate("redis")
}

/// Counter names end up in shared-data keys, Redis keys and metric labels.
fn check_name(path: &str, name: &str) -> Result<(), ConfigError> {
    if name.len() > 200 {
        return Err(ConfigError::new(path, "must be at most 200 bytes"));
    }
    if name.chars().any(|c| c.is_control() || c == '|') {
        return Err(ConfigError::new(
            path,
            "must not contain control characters or `|`",
        ));
    }
    Ok(())
}

/// Windows from (seconds, value, field name) triples; at least one, each above zero.
fn windows(
    at: &str,
    given: &[(u64, Option<u64>, &str)],
    what: &str,
) -> Result<Vec<Window>, ConfigError> {
    let mut out = Vec::new();
    for (secs, value, field) in given {
        match value {
            None => {}
            Some(0) => {
                return Err(ConfigError::new(
                    format!("{at}.{field}"),
                    "must be greater than 0",
                ))
            }
            Some(limit) => out.push(Window {
                secs: *secs,
                limit: *limit,
            }),
        }
    }
    if out.is_empty() {
        return Err(ConfigError::new(
            at,
            format!("needs at least one of {what}"),
        ));
    }
    Ok(out)
}

fn compile_limits(specs: &[LimitSpec], slots: u32) -> Result<Vec<Group>, ConfigError> {
    if specs.is_empty() {
        return Err(ConfigError::new("limits", "must list at least one limit"));
    }
    let mut names = HashSet::new();
    let mut groups = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let at = format!("limits[{i}]");
        let name = match &spec.name {
            Some(n) if n.trim().is_empty() => {
                return Err(ConfigError::new(format!("{at}.name"), "must not be empty"))
            }
            Some(n) => n.trim().to_string(),
            None => format!("limit-{i}"),
        };
        check_name(&format!("{at}.name"), &name)?;
        if !names.insert(name.clone()) {
            return Err(ConfigError::new(
                format!("{at}.name"),
                format!("duplicate limit name {name:?}"),
            ));
        }
        let cached_weight = match spec.cached_input_weight {
            None => 1.0,
            Some(_) if matches!(spec.count, Count::Completion | Count::Requests) => {
                return Err(ConfigError::new(
                    format!("{at}.cached_input_weight"),
                    "only applies when count is \"total\" or \"prompt\"",
                ))
            }
            Some(w) if (0.0..=1.0).contains(&w) => w,
            Some(_) => {
                return Err(ConfigError::new(
                    format!("{at}.cached_input_weight"),
                    "must be between 0 and 1",
                ))
            }
        };
        let windows = windows(
            &at,
            &[
                (1, spec.per_second, "per_second"),
                (60, spec.per_minute, "per_minute"),
                (3600, spec.per_hour, "per_hour"),
                (86_400, spec.per_day, "per_day"),
            ],
            "per_second, per_minute, per_hour, per_day",
        )?;
        let mut dims = Vec::with_capacity(spec.key.len());
        for (j, d) in spec.key.iter().enumerate() {
            dims.push(compile_dim(&format!("{at}.key[{j}]"), d)?);
        }
        let slots = slots_for(&dims, slots);
        groups.push(Group {
            first_match: false,
            limits: vec![Limit {
                name,
                dims,
                count: spec.count,
                cached_weight,
                windows,
                slots,
            }],
        });
    }
    Ok(groups)
}

/// One slot when every key part has exactly one possible value; the table size otherwise.
fn slots_for(dims: &[Dim], slots: u32) -> u32 {
    if dims.iter().all(|d| matches!(d.pattern, Pattern::Exact(_))) {
        1
    } else {
        slots
    }
}

fn compile_dim(at: &str, d: &DimSpec) -> Result<Dim, ConfigError> {
    let named = |kind: &str| -> Result<String, ConfigError> {
        match d.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => Ok(n.to_string()),
            _ => Err(ConfigError::new(
                format!("{at}.name"),
                format!("required when by is \"{kind}\""),
            )),
        }
    };
    let unnamed = |kind: &str| -> Result<(), ConfigError> {
        if d.name.is_some() {
            return Err(ConfigError::new(
                format!("{at}.name"),
                format!("not used when by is \"{kind}\""),
            ));
        }
        Ok(())
    };
    let source = match d.by {
        DimKind::Consumer => unnamed("consumer").map(|_| Source::Consumer)?,
        DimKind::ApiKey => unnamed("api_key").map(|_| Source::ApiKey)?,
        DimKind::Ip => unnamed("ip").map(|_| Source::ClientIp)?,
        DimKind::Model => unnamed("model").map(|_| Source::Model)?,
        DimKind::Route => unnamed("route").map(|_| Source::Route)?,
        DimKind::Header => Source::Header(named("header")?.to_ascii_lowercase()),
        DimKind::Param => Source::Param(named("param")?),
        DimKind::Cookie => Source::Cookie(named("cookie")?),
    };
    let text = d.pattern.as_deref().unwrap_or("*");
    let pattern = if source == Source::ClientIp {
        Pattern::parse_ip(text)
    } else if source == Source::ApiKey {
        api_key_pattern(text)
    } else {
        Pattern::parse(text)
    }
    .map_err(|e| ConfigError::new(format!("{at}.match"), e))?;
    Ok(Dim { source, pattern })
}

/// An API key is known to the limiter only as its fingerprint (behind ai-auth the key itself
/// never arrives), so a `match` naming one key is compared as that key's fingerprint, and a
/// regular expression, which could only ever see fingerprints, is refused.
fn api_key_pattern(text: &str) -> Result<Pattern, String> {
    match Pattern::parse(text)? {
        Pattern::Exact(key) => Ok(Pattern::Exact(aigw::contract::key_id(&key))),
        Pattern::Regex(_) => Err(
            "API keys are compared by fingerprint: use `*` or one exact key, not `regexp:`"
                .to_string(),
        ),
        other => Ok(other),
    }
}

fn compile_higress(rule_name: &str, items: &[RuleItem], slots: u32) -> Result<Group, ConfigError> {
    if items.is_empty() {
        return Err(ConfigError::new(
            "rule_items",
            "must list at least one item",
        ));
    }
    let mut limits = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("rule_items[{i}]");
        let (kind, source, per) = item_source(&at, item)?;
        if item.limit_keys.is_empty() {
            return Err(ConfigError::new(
                format!("{at}.limit_keys"),
                "must list at least one key",
            ));
        }
        for (j, key) in item.limit_keys.iter().enumerate() {
            let kat = format!("{at}.limit_keys[{j}]");
            let pattern = match (&source, per) {
                (Source::ClientIp | Source::IpHeader(_), _) => Pattern::parse_ip(key.key.trim()),
                (_, true) => Pattern::parse(&key.key),
                (_, false) if key.key.is_empty() => Err("must not be empty".to_string()),
                (_, false) => Ok(Pattern::Exact(key.key.clone())),
            }
            .map_err(|e| ConfigError::new(format!("{kat}.key"), e))?;
            let windows = windows(
                &kat,
                &[
                    (1, key.token_per_second, "token_per_second"),
                    (60, key.token_per_minute, "token_per_minute"),
                    (3600, key.token_per_hour, "token_per_hour"),
                    (86_400, key.token_per_day, "token_per_day"),
                ],
                "token_per_second, token_per_minute, token_per_hour, token_per_day",
            )?;
            let dims = vec![Dim {
                source: source.clone(),
                pattern,
            }];
            let slots = slots_for(&dims, slots);
            let name = format!("{rule_name}:{kind}:{}", key.key);
            check_name(&format!("{kat}.key"), &name)?;
            limits.push(Limit {
                name,
                dims,
                count: match key.limit_type {
                    LimitType::Token => Count::Total,
                    LimitType::Request => Count::Requests,
                },
                cached_weight: 1.0,
                windows,
                slots,
            });
        }
    }
    Ok(Group {
        first_match: true,
        limits,
    })
}

/// The one `limit_by_*` field of an item: (kind for counter names, source, per-value).
fn item_source(at: &str, item: &RuleItem) -> Result<(String, Source, bool), ConfigError> {
    let fields: [(&str, &Option<String>); 9] = [
        ("limit_by_header", &item.limit_by_header),
        ("limit_by_param", &item.limit_by_param),
        ("limit_by_consumer", &item.limit_by_consumer),
        ("limit_by_cookie", &item.limit_by_cookie),
        ("limit_by_per_header", &item.limit_by_per_header),
        ("limit_by_per_param", &item.limit_by_per_param),
        ("limit_by_per_consumer", &item.limit_by_per_consumer),
        ("limit_by_per_cookie", &item.limit_by_per_cookie),
        ("limit_by_per_ip", &item.limit_by_per_ip),
    ];
    let set: Vec<(&str, &String)> = fields
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v)))
        .collect();
    let (field, value) = match set.as_slice() {
        [one] => *one,
        [] => {
            return Err(ConfigError::new(
                at,
                "needs exactly one limit_by_* field (limit_by_header, limit_by_param, \
                 limit_by_consumer, limit_by_cookie, or their limit_by_per_* forms, or \
                 limit_by_per_ip)",
            ))
        }
        [_, second, ..] => {
            return Err(ConfigError::new(
                format!("{at}.{}", second.0),
                "only one limit_by_* field is allowed per item",
            ))
        }
    };
    let fat = format!("{at}.{field}");
    let name = value.trim();
    let needs_name = |n: &str| -> Result<String, ConfigError> {
        if n.is_empty() {
            Err(ConfigError::new(
                fat.clone(),
                "must name the header, parameter or cookie",
            ))
        } else {
            Ok(n.to_string())
        }
    };
    let per = field.starts_with("limit_by_per_");
    let source = match field {
        "limit_by_header" | "limit_by_per_header" => {
            Source::Header(needs_name(name)?.to_ascii_lowercase())
        }
        "limit_by_param" | "limit_by_per_param" => Source::Param(needs_name(name)?),
        "limit_by_cookie" | "limit_by_per_cookie" => Source::Cookie(needs_name(name)?),
        "limit_by_consumer" | "limit_by_per_consumer" => Source::Consumer,
        _ => {
            if name == "from-remote-addr" {
                Source::ClientIp
            } else if let Some(h) = name.strip_prefix("from-header-").filter(|h| !h.is_empty()) {
                Source::IpHeader(h.to_ascii_lowercase())
            } else {
                return Err(ConfigError::new(
                    fat,
                    "must be \"from-remote-addr\" or \"from-header-<header name>\"",
                ));
            }
        }
    };
    let kind = field.trim_start_matches("limit_by_").to_string();
    let kind = match &source {
        Source::Header(n) | Source::Param(n) | Source::Cookie(n) | Source::IpHeader(n) => {
            format!("{kind}:{n}")
        }
        _ => kind,
    };
    Ok((kind, source, per))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw::config;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        config::parse::<Config>(json.as_bytes())
    }

    fn err(json: &str) -> String {
        match parse(json) {
            Ok(_) => panic!("accepted: {json}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn clear_form_compiles() {
        let c = parse(
            r#"{"limits":[
                {"name":"team-model","key":[{"by":"consumer"},{"by":"model","match":"regexp:^gpt-4"}],
                 "per_minute":1000,"per_day":50000,"cached_input_weight":0.25},
                {"name":"ip","key":[{"by":"ip","match":"10.0.0.0/8"}],"count":"requests","per_second":5},
                {"key":[{"by":"header","name":"X-Team","match":"blue"}],"count":"completion","per_hour":9}
            ]}"#,
        )
        .unwrap();
        let g = &c.compiled.groups;
        assert_eq!(g.len(), 3);
        assert!(!g[0].first_match);
        let l = &g[0].limits[0];
        assert_eq!(l.name, "team-model");
        assert_eq!(
            l.windows,
            vec![
                Window {
                    secs: 60,
                    limit: 1000
                },
                Window {
                    secs: 86_400,
                    limit: 50_000
                }
            ]
        );
        assert_eq!(l.cached_weight, 0.25);
        assert_eq!(l.slots, 4096);
        assert_eq!(g[1].limits[0].count, Count::Requests);
        assert_eq!(g[2].limits[0].name, "limit-2");
        assert_eq!(
            g[2].limits[0].dims[0].source,
            Source::Header("x-team".into())
        );
        assert_eq!(g[2].limits[0].slots, 1, "exact keys need one slot");
        assert!(c.compiled.needs_body);
        assert!(!c.compiled.cluster);
    }

    #[test]
    fn higress_form_compiles() {
        let c = parse(
            r#"{"rule_name":"default_rule","rule_items":[
                {"limit_by_param":"apikey","limit_keys":[{"key":"k1","token_per_minute":10},{"key":123,"token_per_hour":100}]},
                {"limit_by_per_header":"x-ca-key","limit_keys":[{"key":"regexp:^a.*","token_per_second":10,"limit_type":"request"},{"key":"*","token_per_hour":1000}]},
                {"limit_by_per_ip":"from-header-x-forwarded-for","limit_keys":[{"key":"1.1.1.0/24","token_per_day":100}]},
                {"limit_by_consumer":"","limit_keys":[{"key":"alice","token_per_day":5}]}
            ],"redis":{"service_name":"redis.static"},"rejected_code":200}"#,
        )
        .unwrap();
        let g = &c.compiled.groups;
        assert_eq!(g.len(), 1);
        assert!(g[0].first_match);
        let names: Vec<&str> = g[0].limits.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "default_rule:param:apikey:k1",
                "default_rule:param:apikey:123",
                "default_rule:per_header:x-ca-key:regexp:^a.*",
                "default_rule:per_header:x-ca-key:*",
                "default_rule:per_ip:x-forwarded-for:1.1.1.0/24",
                "default_rule:consumer:alice",
            ]
        );
        assert_eq!(g[0].limits[2].count, Count::Requests);
        assert_eq!(
            g[0].limits[4].dims[0].source,
            Source::IpHeader("x-forwarded-for".into())
        );
        // Without the higress feature a redis section falls back to local mode.
        assert_eq!(c.compiled.cluster, cfg!(feature = "higress"));
        assert_eq!(c.compiled.redis_ignored, !cfg!(feature = "higress"));
        assert_eq!(c.redis.unwrap().cluster_name(), "outbound|80||redis.static");
    }

    #[test]
    fn redis_cluster_names() {
        let r = |json: &str| {
            serde_json::from_str::<RedisSpec>(json)
                .unwrap()
                .cluster_name()
        };
        assert_eq!(
            r(r#"{"service_name":"redis.ns.svc.cluster.local"}"#),
            "outbound|6379||redis.ns.svc.cluster.local"
        );
        assert_eq!(
            r(r#"{"service_name":"r.dns","service_port":7000}"#),
            "outbound|7000||r.dns"
        );
        assert_eq!(r(r#"{"cluster":"my-redis"}"#), "my-redis");
        let dbg = format!(
            "{:?}",
            serde_json::from_str::<RedisSpec>(r#"{"cluster":"c","password":"hunter2"}"#).unwrap()
        );
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases: &[(&str, &str)] = &[
            (r#"{}"#, "limits: required"),
            (r#"{"limits":[]}"#, "limits: must list at least one limit"),
            (
                r#"{"limits":[{"per_minute":1}],"rule_items":[]}"#,
                "limits: cannot be combined",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"rule_name":"x"}"#,
                "rule_name: only used with rule_items",
            ),
            (
                r#"{"limits":[{}]}"#,
                "limits[0]: needs at least one of per_second",
            ),
            (
                r#"{"limits":[{"per_minute":0}]}"#,
                "limits[0].per_minute: must be greater than 0",
            ),
            (
                r#"{"limits":[{"per_minute":-1}]}"#,
                "limits[0].per_minute: invalid value",
            ),
            (
                r#"{"limits":[{"per_minute":"ten"}]}"#,
                "limits[0].per_minute: invalid type",
            ),
            (
                r#"{"limits":[{"per_minut":1}]}"#,
                "limits[0].per_minut: unknown field",
            ),
            (
                r#"{"limits":[{"name":"a","per_minute":1},{"name":"a","per_hour":1}]}"#,
                "limits[1].name: duplicate limit name",
            ),
            (
                r#"{"limits":[{"name":" ","per_minute":1}]}"#,
                "limits[0].name: must not be empty",
            ),
            (
                r#"{"limits":[{"name":"a|b","per_minute":1}]}"#,
                "limits[0].name: must not contain",
            ),
            (
                r#"{"limits":[{"count":"tokens","per_minute":1}]}"#,
                "limits[0].count: unknown variant `tokens`",
            ),
            (
                r#"{"limits":[{"count":"requests","cached_input_weight":0.5,"per_minute":1}]}"#,
                "limits[0].cached_input_weight: only applies",
            ),
            (
                r#"{"limits":[{"cached_input_weight":1.5,"per_minute":1}]}"#,
                "limits[0].cached_input_weight: must be between 0 and 1",
            ),
            (
                r#"{"limits":[{"key":[{"by":"user"}],"per_minute":1}]}"#,
                "limits[0].key[0].by: unknown variant `user`",
            ),
            (
                r#"{"limits":[{"key":[{"name":"x"}],"per_minute":1}]}"#,
                "limits[0].key[0].by: required field is missing",
            ),
            (
                r#"{"limits":[{"key":[{"by":"header"}],"per_minute":1}]}"#,
                "limits[0].key[0].name: required when by is \"header\"",
            ),
            (
                r#"{"limits":[{"key":[{"by":"consumer","name":"x"}],"per_minute":1}]}"#,
                "limits[0].key[0].name: not used when by is \"consumer\"",
            ),
            (
                r#"{"limits":[{"key":[{"by":"model","match":"regexp:(("}],"per_minute":1}]}"#,
                "limits[0].key[0].match: invalid regular expression",
            ),
            (
                r#"{"limits":[{"key":[{"by":"ip","match":"10.0.0.0/40"}],"per_minute":1}]}"#,
                "limits[0].key[0].match: `10.0.0.0/40`: prefix length",
            ),
            (
                r#"{"limits":[{"key":[{"by":"ip","match":"nope"}],"per_minute":1}]}"#,
                "limits[0].key[0].match: `nope` is not an IP",
            ),
            (
                r#"{"limits":[{"key":[{"by":"param","name":"k","match":""}],"per_minute":1}]}"#,
                "limits[0].key[0].match: must not be empty",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"rejected_code":99}"#,
                "rejected_code: must be an HTTP status",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"rejected_code":"x"}"#,
                "rejected_code: invalid type",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"mode":"global"}"#,
                "mode: unknown variant `global`",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"mode":"cluster"}"#,
                "redis: required when mode is \"cluster\"",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"mode":"rls"}"#,
                "rls: required when mode is \"rls\"",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"domain":"d"}}"#,
                "rls.cluster: required in rls mode",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"cluster":"c"}}"#,
                "rls.domain: required in rls mode",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"cluster":" ","domain":"d"}}"#,
                "rls.cluster: must not be empty",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"cluster":"c","domain":"d","timeout_ms":0}}"#,
                "rls.timeout_ms: must be between 1 and 60000",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"cluster":"c","domain":"d","timeout_ms":"fast"}}"#,
                "rls.timeout_ms: invalid type",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"cluster":"c","domain":"d","timeout":5}}"#,
                "rls.timeout: unknown field",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"cluster":"c","domain":"d"},"redis":{"cluster":"r"}}"#,
                "redis: not used when mode is \"rls\"",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"rls":{"cluster":"c","domain":"d"}}"#,
                "rls: only used when mode is \"rls\"",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"failure_mode":"maybe"}"#,
                "failure_mode: unknown variant",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"consumer_header":""}"#,
                "consumer_header: must not be empty",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"client_ip":{"xff_trusted_hops":99}}"#,
                "client_ip.xff_trusted_hops: must be at most 32",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"client_ip":{"hops":1}}"#,
                "client_ip.hops: unknown field",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"admission":{"bytes_per_token":0}}"#,
                "admission.bytes_per_token: must be greater than 0",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"admission":{"max_completion_estimate":0}}"#,
                "admission.max_completion_estimate: must be greater than 0",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"admission":{"max_body_bytes":0}}"#,
                "admission.max_body_bytes: must be greater than 0",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"admission":{"estimate":"yes"}}"#,
                "admission.estimate: invalid type",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"response":{"max_body_bytes":0}}"#,
                "response.max_body_bytes: must be greater than 0",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"response":{"max_event_bytes":10}}"#,
                "response.max_event_bytes: must be at least 1024",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"local":{"slots":0}}"#,
                "local.slots: must be between 1 and",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"redis":{}}"#,
                "redis.service_name: required",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"redis":{"service_name":""}}"#,
                "redis.service_name: must not be empty",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"redis":{"cluster":"r","timeout":0}}"#,
                "redis.timeout: must be between 1 and 60000",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"redis":{"cluster":"r","service_port":0}}"#,
                "redis.service_port: must be between 1 and 65535",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"redis":{"cluster":"r","key_prefix":""}}"#,
                "redis.key_prefix: must be non-empty",
            ),
            (
                r#"{"limits":[{"per_minute":1}],"redis":{"cluster":"r","pasword":"x"}}"#,
                "redis.pasword: unknown field",
            ),
            (
                r#"{"rule_items":[]}"#,
                "rule_name: required with rule_items",
            ),
            (
                r#"{"rule_name":"","rule_items":[]}"#,
                "rule_name: must not be empty",
            ),
            (
                r#"{"rule_name":"r","rule_items":[]}"#,
                "rule_items: must list at least one item",
            ),
            (
                r#"{"rule_name":"r","rule_items":[{"limit_keys":[]}]}"#,
                "rule_items[0]: needs exactly one limit_by_* field",
            ),
            (
                r#"{"rule_name":"r","rule_items":[{"limit_by_header":"a","limit_by_param":"b","limit_keys":[]}]}"#,
                "rule_items[0].limit_by_param: only one limit_by_* field",
            ),
            (
                r#"{"rule_name":"r","rule_items":[{"limit_by_header":"a"}]}"#,
                "rule_items[0].limit_keys: required field is missing",
            ),
            (
                r#"{"rule_name":"r","rule_items":[{"limit_by_header":"a","limit_keys":[]}]}"#,
                "rule_items[0].limit_keys: must list at least one key",
            ),
            (
                r#"{"rule_name":"r","rule_items":[{"limit_by_header":"","limit_keys":[{"key":"a","token_per_minute":1}]}]}"#,
                "rule_items[0].limit_by_header: must name the header",
            ),
            (
                r#"{"rule_name":"r","rule_items":[{"limit_by_per_ip":"from-socket","limit_keys":[{"key":"*","token_per_minute":1}]}]}"#,
                "rule_items[0].limit_by_per_ip: must be \"from-remote-addr\"",
            ),
            (
                r#"{"rule_name":"r","rule_items":[{"limit_by_per_ip":"from-remote-addr","limit_keys":[{"key":"1.2.3.4/99","token_per_minute":1}]}]}"#,
                "rule_items[0].limit_keys[0].key: `1.2.3.4/99`",
            ),
            (
                r#"{"rule_name":"r","rule_items":[{"limit_by_per_param":"k","limit_keys":[{"key":"regexp:[","token_per_minute":1}]}]}"#,
                "rule_items[0].limit_keys[0].key: invalid regular expression",
            ),
            (
                r#"{"rule_name":"r","rule_items":[{"limit_by_param":"k","limit_keys":[{"key":true,"token_per_minute":1}]}]}"#,
                "rule_items[0].limit_keys[0].key: expected a string or a number",
            ),
            (
                r#"{"rule_name":"r","rule_items":[{"limit_by_param":"k","limit_keys":[{"key":"a"}]}]}"#,
                "rule_items[0].limit_keys[0]: needs at least one of token_per_second",
            ),
            (
                r#"{"rule_name":"r","rule_items":[{"limit_by_param":"k","limit_keys":[{"key":"a","token_per_day":0}]}]}"#,
                "rule_items[0].limit_keys[0].token_per_day: must be greater than 0",
            ),
            (
                r#"{"rule_name":"r","rule_items":[{"limit_by_param":"k","limit_keys":[{"key":"a","token_per_day":1,"limit_type":"tokens"}]}]}"#,
                "rule_items[0].limit_keys[0].limit_type: unknown variant `tokens`",
            ),
        ];
        for (json, want) in cases {
            let got = err(json);
            assert!(
                got.starts_with(want),
                "config {json}\n  want prefix: {want}\n  got: {got}"
            );
        }
    }

    #[test]
    fn cluster_mode_needs_the_feature() {
        let r = parse(r#"{"limits":[{"per_minute":1}],"mode":"cluster","redis":{"cluster":"r"}}"#);
        if cfg!(feature = "higress") {
            assert!(r.unwrap().compiled.cluster);
        } else {
            assert!(r
                .unwrap_err()
                .to_string()
                .starts_with("mode: \"cluster\" needs"));
        }
        let local =
            parse(r#"{"limits":[{"per_minute":1}],"mode":"local","redis":{"cluster":"r"}}"#)
                .unwrap();
        assert!(!local.compiled.cluster && !local.compiled.redis_ignored);
    }

    #[test]
    fn request_only_limits_do_not_wait_for_the_body() {
        let c = parse(r#"{"limits":[{"key":[{"by":"ip"}],"count":"requests","per_second":1}]}"#)
            .unwrap();
        assert!(!c.compiled.needs_body);
        let c = parse(r#"{"limits":[{"per_minute":100}],"admission":{"estimate":false}}"#).unwrap();
        assert!(!c.compiled.needs_body);
        let c = parse(r#"{"limits":[{"key":[{"by":"model"}],"count":"requests","per_second":1}]}"#)
            .unwrap();
        assert!(c.compiled.needs_body);
    }

    #[test]
    fn api_key_matches_compare_fingerprints() {
        let c = parse(r#"{"limits":[{"key":[{"by":"api_key","match":"sk-vip"}],"per_minute":1}]}"#)
            .unwrap();
        let dim = &c.compiled.groups[0].limits[0].dims[0];
        assert!(dim.pattern.matches(&aigw::contract::key_id("sk-vip")));
        assert!(!dim.pattern.matches("sk-vip"));
        let err = parse(
            r#"{"limits":[{"key":[{"by":"api_key","match":"regexp:^sk-"}],"per_minute":1}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("fingerprint"), "{err}");
    }
}
