//! The Higress `ai-token-ratelimit` form: `rule_name` plus `rule_items`, each with exactly
//! one `limit_by_*` field and its `limit_keys`. It compiles into one group of limits where
//! only the first matching key applies (Higress semantics); counter names are
//! `<rule_name>:<kind>:<key>`.

use serde::{Deserialize, Deserializer};

use super::compile::{check_name, slots_for, windows};
use super::{Count, Dim, Group, Limit, Source};
use crate::pattern::Pattern;
use aigw::config::ConfigError;

/// Higress form: one rule item (exactly one `limit_by_*` field).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleItem {
    /// Header whose value is the key (one counter per configured key).
    #[serde(default)]
    pub(super) limit_by_header: Option<String>,
    /// Query parameter whose value is the key.
    #[serde(default)]
    pub(super) limit_by_param: Option<String>,
    /// The consumer is the key (the value, usually `""`, is not used).
    #[serde(default)]
    pub(super) limit_by_consumer: Option<String>,
    /// Cookie whose value is the key.
    #[serde(default)]
    pub(super) limit_by_cookie: Option<String>,
    /// Header whose value is the key, one counter per value (`*`, `regexp:` keys).
    #[serde(default)]
    pub(super) limit_by_per_header: Option<String>,
    /// Query parameter, one counter per value.
    #[serde(default)]
    pub(super) limit_by_per_param: Option<String>,
    /// The consumer, one counter per consumer (the value, usually `""`, is not used).
    #[serde(default)]
    pub(super) limit_by_per_consumer: Option<String>,
    /// Cookie, one counter per value.
    #[serde(default)]
    pub(super) limit_by_per_cookie: Option<String>,
    /// The client IP, one counter per address: `from-remote-addr` or `from-header-<name>`.
    #[serde(default)]
    pub(super) limit_by_per_ip: Option<String>,
    /// The keys and their limits; the first that matches applies.
    pub(super) limit_keys: Vec<LimitKey>,
}

/// Higress form: one key of an item.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LimitKey {
    /// The value to match: exact, `*`, `regexp:<re>`, or for IPs an address or CIDR range.
    #[cfg_attr(feature = "schema", schemars(schema_with = "string_or_number_schema"))]
    #[serde(deserialize_with = "string_or_number")]
    pub(super) key: String,
    /// What is counted: `token` (default) or `request`.
    #[serde(default)]
    pub(super) limit_type: LimitType,
    /// Limit per second.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub(super) token_per_second: Option<u64>,
    /// Limit per minute.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub(super) token_per_minute: Option<u64>,
    /// Limit per hour.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub(super) token_per_hour: Option<u64>,
    /// Limit per day (UTC days).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub(super) token_per_day: Option<u64>,
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

pub(super) fn compile_higress(
    rule_name: &str,
    items: &[RuleItem],
    slots: u32,
) -> Result<Group, ConfigError> {
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
