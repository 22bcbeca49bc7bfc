//! RLS mode: limits kept by an Envoy global rate limit service
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`), reached with a gRPC
//! call-out of the standard proxy-wasm ABI. This module is the pure half: descriptors, the
//! request encoder and the response decoder (field numbers from envoyproxy/data-plane-api
//! `envoy/service/ratelimit/v3/rls.proto` and `envoy/extensions/common/ratelimit/v3/
//! ratelimit.proto`); the calls are made by the filter.
//!
//! Every window of every limit that applies is one descriptor, with the entries
//!
//! ```text
//! ("limit", <limit name>), (<key part>, <value>)..., ("window", "second"|"minute"|"hour"|"day")
//! ```
//!
//! where the key parts are named by [`entry_key`] (`consumer`, `api_key` (the key's
//! fingerprint, never the key), `header.<name>`, `param.<name>`, `cookie.<name>`, `ip`,
//! `model`, `route`). The service holds the numbers: [`service_limits`] lists them from the
//! same plugin configuration, so the service's configuration can be generated from it.

use crate::config::{Count, Limit, Source};
use aigw::config::ConfigError;
use aigw::proto::{Field, ProtoError, Reader, Writer};
use serde::Deserialize;

/// The rate limit service of rls mode.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RlsSpec {
    /// The gateway's cluster of the service (HTTP/2); required.
    #[serde(default)]
    pub cluster: Option<String>,
    /// The service's domain for these limits; required.
    #[serde(default)]
    pub domain: Option<String>,
    /// How long admission waits for the service, 1..=60000 ms (default 200).
    #[serde(default = "default_rls_timeout")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 60000)))]
    pub timeout_ms: u64,
}

fn default_rls_timeout() -> u64 {
    200
}

impl RlsSpec {
    /// The cluster (validated non-empty).
    pub fn cluster(&self) -> &str {
        self.cluster.as_deref().unwrap_or_default()
    }

    /// The domain (validated non-empty).
    pub fn domain(&self) -> &str {
        self.domain.as_deref().unwrap_or_default()
    }

    pub(crate) fn validate(&mut self) -> Result<(), ConfigError> {
        for (field, value) in [("cluster", &mut self.cluster), ("domain", &mut self.domain)] {
            match value.as_deref().map(str::trim) {
                None => {
                    return Err(ConfigError::new(
                        format!("rls.{field}"),
                        "required in rls mode",
                    ))
                }
                Some("") => {
                    return Err(ConfigError::new(
                        format!("rls.{field}"),
                        "must not be empty",
                    ))
                }
                Some(v) => *value = Some(v.to_string()),
            }
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(ConfigError::new(
                "rls.timeout_ms",
                "must be between 1 and 60000",
            ));
        }
        Ok(())
    }
}

/// The gRPC service of Envoy's rate limit service.
pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
/// Its method.
pub const METHOD: &str = "ShouldRateLimit";

/// The descriptor entry naming the limit.
pub const LIMIT_KEY: &str = "limit";
/// The descriptor entry naming the window.
pub const WINDOW_KEY: &str = "window";

/// The descriptor entry key of a key part.
pub fn entry_key(source: &Source) -> String {
    match source {
        Source::Consumer => "consumer".into(),
        Source::ApiKey => "api_key".into(),
        Source::Header(n) => format!("header.{n}"),
        Source::Param(n) => format!("param.{n}"),
        Source::Cookie(n) => format!("cookie.{n}"),
        Source::ClientIp | Source::IpHeader(_) => "ip".into(),
        Source::Model => "model".into(),
        Source::Route => "route".into(),
    }
}

/// The window entry value (and the unit of the service's limit) of a window length.
pub fn window_unit(secs: u64) -> &'static str {
    match secs {
        1 => "second",
        60 => "minute",
        3600 => "hour",
        _ => "day",
    }
}

/// One descriptor: its entries in order.
pub type Descriptor = Vec<(String, String)>;

/// The descriptor of window `secs` of `limit` for key values `values` (in the limit's key
/// order).
pub fn descriptor(limit: &Limit, values: &[&str], secs: u64) -> Descriptor {
    let mut out = Vec::with_capacity(limit.dims.len() + 2);
    out.push((LIMIT_KEY.to_string(), limit.name.clone()));
    for (dim, v) in limit.dims.iter().zip(values) {
        out.push((entry_key(&dim.source), (*v).to_string()));
    }
    out.push((WINDOW_KEY.to_string(), window_unit(secs).to_string()));
    out
}

/// Encodes a `RateLimitRequest`: domain (1), descriptors (2, each with entries (1) of key (1)
/// and value (2)), hits_addend (3). `hits` is clamped to 1..=u32::MAX: the service reads 0
/// as 1, so the plugin never asks for 0.
pub fn encode_request(domain: &str, descriptors: &[Descriptor], hits: u64) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(1, domain);
    for d in descriptors {
        w.message(2, |m| {
            for (k, v) in d {
                m.message(1, |e| {
                    e.string(1, k);
                    if !v.is_empty() {
                        e.string(2, v);
                    }
                });
            }
        });
    }
    w.varint(3, hits.clamp(1, u64::from(u32::MAX)));
    w.finish()
}

/// `RateLimitResponse.Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 0: the service did not say.
    Unknown,
    /// 1: under the limit.
    Ok,
    /// 2: over the limit.
    OverLimit,
}

impl Code {
    fn from_wire(v: u64) -> Code {
        match v {
            1 => Code::Ok,
            2 => Code::OverLimit,
            _ => Code::Unknown,
        }
    }
}

/// One `DescriptorStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// The descriptor's code (1).
    pub code: Option<Code>,
    /// `current_limit.requests_per_unit` (2.1), when the service sent its limit.
    pub limit: Option<u64>,
    /// `current_limit.unit` (2.2): 1 second, 2 minute, 3 hour, 4 day.
    pub unit: Option<u64>,
    /// `limit_remaining` (3).
    pub remaining: u64,
    /// `duration_until_reset` (4) in milliseconds, when sent.
    pub reset_ms: Option<u64>,
}

/// A decoded `RateLimitResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// `overall_code` (1).
    pub overall: Code,
    /// `statuses` (2), one per descriptor in request order.
    pub statuses: Vec<Status>,
}

/// Decodes a `RateLimitResponse`; unknown fields are skipped.
pub fn decode_response(bytes: &[u8]) -> Result<Response, ProtoError> {
    let mut r = Reader::new(bytes);
    let mut overall = Code::Unknown;
    let mut statuses = Vec::new();
    while let Some((n, f)) = r.next_field()? {
        match (n, f) {
            (1, Field::Varint(v)) => overall = Code::from_wire(v),
            (2, Field::Bytes(b)) => statuses.push(decode_status(b)?),
            _ => {}
        }
    }
    Ok(Response { overall, statuses })
}

fn decode_status(bytes: &[u8]) -> Result<Status, ProtoError> {
    let mut r = Reader::new(bytes);
    let mut s = Status::default();
    while let Some((n, f)) = r.next_field()? {
        match (n, f) {
            (1, Field::Varint(v)) => s.code = Some(Code::from_wire(v)),
            (2, Field::Bytes(b)) => {
                let mut lim = Reader::new(b);
                while let Some((m, g)) = lim.next_field()? {
                    match (m, g) {
                        (1, Field::Varint(v)) => s.limit = Some(v),
                        (2, Field::Varint(v)) => s.unit = Some(v),
                        _ => {}
                    }
                }
            }
            (3, Field::Varint(v)) => s.remaining = v,
            (4, Field::Bytes(b)) => {
                let (mut secs, mut nanos) = (0u64, 0u64);
                let mut d = Reader::new(b);
                while let Some((m, g)) = d.next_field()? {
                    match (m, g) {
                        (1, Field::Varint(v)) => secs = v,
                        (2, Field::Varint(v)) => nanos = v,
                        _ => {}
                    }
                }
                s.reset_ms = Some(secs.saturating_mul(1000).saturating_add(nanos / 1_000_000));
            }
            _ => {}
        }
    }
    Ok(s)
}

/// Milliseconds until the fixed window of `secs` containing `now_ms` ends (the service's
/// windows are aligned to the unit, as envoyproxy/ratelimit's are).
pub fn window_reset_ms(secs: u64, now_ms: u64) -> u64 {
    let len = secs.saturating_mul(1000).max(1);
    len - now_ms % len
}

/// One limit the service must hold, as the plugin configuration defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLimit {
    /// The `limit` entry value.
    pub name: String,
    /// The key part entry keys, in descriptor order (each value is counted on its own).
    pub keys: Vec<String>,
    /// The `window` entry value (`second`, `minute`, `hour`, `day`).
    pub window: &'static str,
    /// The window length in seconds.
    pub secs: u64,
    /// Hits allowed per window.
    pub limit: u64,
    /// What the hits are (`tokens` or `requests`), for documentation.
    pub unit: &'static str,
}

/// Every limit of a compiled configuration as the service must hold it: one per window.
pub fn service_limits<'a>(limits: impl IntoIterator<Item = &'a Limit>) -> Vec<ServiceLimit> {
    let mut out = Vec::new();
    for l in limits {
        for w in &l.windows {
            out.push(ServiceLimit {
                name: l.name.clone(),
                keys: l.dims.iter().map(|d| entry_key(&d.source)).collect(),
                window: window_unit(w.secs),
                secs: w.secs,
                limit: w.limit,
                unit: if l.count == Count::Requests {
                    "requests"
                } else {
                    "tokens"
                },
            });
        }
    }
    out
}

/// The envoyproxy/ratelimit configuration (YAML) holding `limits` under `domain`: one
/// descriptor tree per limit name, `limit` → key parts (no value: each value counted on its
/// own) → `window`, with the window's `rate_limit`.
pub fn envoy_ratelimit_yaml(domain: &str, limits: &[ServiceLimit]) -> String {
    let mut out = format!("domain: {}\ndescriptors:\n", yaml_str(domain));
    let mut names: Vec<&str> = Vec::new();
    for l in limits {
        if !names.contains(&l.name.as_str()) {
            names.push(&l.name);
        }
    }
    for name in names {
        let group: Vec<&ServiceLimit> = limits.iter().filter(|l| l.name == name).collect();
        out.push_str(&format!(
            "  - key: {LIMIT_KEY}\n    value: {}\n",
            yaml_str(name)
        ));
        let keys = group.first().map(|l| l.keys.clone()).unwrap_or_default();
        let mut indent = String::from("    ");
        for k in &keys {
            out.push_str(&format!(
                "{indent}descriptors:\n{indent}  - key: {}\n",
                yaml_str(k)
            ));
            indent.push_str("    ");
        }
        out.push_str(&format!("{indent}descriptors:\n"));
        for l in group {
            out.push_str(&format!(
                "{indent}  - key: {WINDOW_KEY}\n{indent}    value: {}\n{indent}    rate_limit:\n{indent}      unit: {}\n{indent}      requests_per_unit: {}\n",
                l.window, l.window, l.limit
            ));
        }
    }
    out
}

/// A YAML double-quoted scalar.
fn yaml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(json: &str) -> Config {
        aigw::config::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn descriptors_name_limit_key_parts_and_window() {
        let c = config(
            r#"{"mode":"rls","rls":{"cluster":"ratelimit","domain":"ai"},"limits":[
                {"name":"team","key":[{"by":"consumer"},{"by":"header","name":"X-Team"}],"per_minute":100,"per_day":1000}]}"#,
        );
        let limit = &c.groups[0].limits[0];
        let d = descriptor(limit, &["alice", "red"], 60);
        let pairs: Vec<(&str, &str)> = d.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ("limit", "team"),
                ("consumer", "alice"),
                ("header.x-team", "red"),
                ("window", "minute")
            ]
        );
        let s = service_limits(c.groups.iter().flat_map(|g| &g.limits));
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].window, s[0].limit), ("minute", 100));
        assert_eq!(
            (s[1].window, s[1].limit, s[1].unit),
            ("day", 1000, "tokens")
        );
        let yaml = envoy_ratelimit_yaml("ai", &s);
        assert!(
            yaml.starts_with("domain: \"ai\"\ndescriptors:\n  - key: limit\n    value: \"team\"\n"),
            "{yaml}"
        );
        assert!(yaml.contains("              - key: window\n                value: day\n                rate_limit:\n                  unit: day\n                  requests_per_unit: 1000\n"), "{yaml}");
    }

    #[test]
    fn request_encoding_has_the_rls_field_numbers() {
        let d = vec![
            ("limit".to_string(), "l".to_string()),
            ("window".to_string(), "second".to_string()),
        ];
        let b = encode_request("ai", &[d], 300);
        let mut r = Reader::new(&b);
        assert_eq!(r.next_field().unwrap(), Some((1, Field::Bytes(b"ai"))));
        let (n, desc) = r.next_field().unwrap().unwrap();
        assert_eq!(n, 2);
        let mut dr = Reader::new(desc.as_bytes().unwrap());
        let (n, entry) = dr.next_field().unwrap().unwrap();
        assert_eq!(n, 1);
        let mut er = Reader::new(entry.as_bytes().unwrap());
        assert_eq!(er.next_field().unwrap(), Some((1, Field::Bytes(b"limit"))));
        assert_eq!(er.next_field().unwrap(), Some((2, Field::Bytes(b"l"))));
        assert!(dr.next_field().unwrap().is_some());
        assert_eq!(r.next_field().unwrap(), Some((3, Field::Varint(300))));
        assert_eq!(r.next_field().unwrap(), None);
        // 0 hits would mean 1 to the service; huge amounts are clamped to the field.
        let zero = encode_request("ai", &[], 0);
        assert_eq!(zero.last(), Some(&1));
        let big = encode_request("ai", &[], u64::MAX);
        let mut r = Reader::new(&big);
        r.next_field().unwrap();
        assert_eq!(
            r.next_field().unwrap(),
            Some((3, Field::Varint(u64::from(u32::MAX))))
        );
    }

    #[test]
    fn responses_decode() {
        // overall OVER_LIMIT; one status OK (limit 100/minute, 40 left, 12.5 s to reset) and
        // one OVER_LIMIT without a limit; an unknown field 5 is skipped.
        let mut w = Writer::new();
        w.varint(1, 2);
        w.message(2, |s| {
            s.varint(1, 1);
            s.message(2, |l| {
                l.varint(1, 100);
                l.varint(2, 2);
                l.string(3, "n");
            });
            s.varint(3, 40);
            s.message(4, |d| {
                d.varint(1, 12);
                d.varint(2, 500_000_000);
            });
        });
        w.message(2, |s| s.varint(1, 2));
        w.bytes(5, b"raw");
        let r = decode_response(&w.finish()).unwrap();
        assert_eq!(r.overall, Code::OverLimit);
        assert_eq!(
            r.statuses[0],
            Status {
                code: Some(Code::Ok),
                limit: Some(100),
                unit: Some(2),
                remaining: 40,
                reset_ms: Some(12_500)
            }
        );
        assert_eq!(r.statuses[1].code, Some(Code::OverLimit));
        assert_eq!(decode_response(&[]).unwrap().overall, Code::Unknown);
        assert!(decode_response(&[0x12, 0x09, 0x08]).is_err());
    }

    #[test]
    fn window_resets_align_to_the_unit() {
        assert_eq!(window_reset_ms(60, 125_000), 55_000);
        assert_eq!(window_reset_ms(1, 2_000), 1_000);
    }
}
