//! The compile step: checks a [`RawConfig`] and builds the runtime [`Config`] (the limits
//! of the `limits` form here, those of the Higress form in [`super::higress`]).

use std::collections::HashSet;

use aigw::config::{ConfigError, PluginConfig};

use super::higress::compile_higress;
use super::{
    Admission, Config, Count, Dim, DimKind, DimSpec, Group, Limit, LimitSpec, Mode, RawConfig,
    RedisSpec, Source, Window, MAX_SLOTS,
};
use crate::pattern::Pattern;

impl PluginConfig for Config {
    type Raw = RawConfig;

    fn compile(mut raw: RawConfig) -> Result<Config, ConfigError> {
        if !(200..=599).contains(&raw.rejected_code) {
            return Err(ConfigError::new(
                "rejected_code",
                "must be an HTTP status between 200 and 599",
            ));
        }
        if raw.consumer_header.trim().is_empty() {
            return Err(ConfigError::new("consumer_header", "must not be empty"));
        }
        raw.consumer_header = raw.consumer_header.trim().to_ascii_lowercase();
        if raw.client_ip.xff_trusted_hops > 32 {
            return Err(ConfigError::new(
                "client_ip.xff_trusted_hops",
                "must be at most 32",
            ));
        }
        validate_admission(&raw.admission)?;
        if raw.response.max_body_bytes == 0 {
            return Err(ConfigError::new(
                "response.max_body_bytes",
                "must be greater than 0",
            ));
        }
        if raw.response.max_event_bytes < 1024 {
            return Err(ConfigError::new(
                "response.max_event_bytes",
                "must be at least 1024",
            ));
        }
        if raw.local.slots == 0 || raw.local.slots > MAX_SLOTS {
            return Err(ConfigError::new(
                "local.slots",
                format!("must be between 1 and {MAX_SLOTS}"),
            ));
        }
        if let Some(redis) = &raw.redis {
            validate_redis(redis)?;
        }
        let rls = raw.mode == Some(Mode::Rls);
        match (rls, raw.rls.as_mut(), &raw.redis) {
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
        let (cluster, redis_ignored) = match (raw.mode, &raw.redis) {
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

        let groups = match (&raw.rule_items, &raw.limits) {
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
                let rule_name = match raw.rule_name.as_deref().map(str::trim) {
                    Some(n) if !n.is_empty() => n.to_string(),
                    Some(_) => return Err(ConfigError::new("rule_name", "must not be empty")),
                    None => return Err(ConfigError::new("rule_name", "required with rule_items")),
                };
                check_name("rule_name", &rule_name)?;
                vec![compile_higress(&rule_name, items, raw.local.slots)?]
            }
            (None, Some(limits)) => {
                if raw.rule_name.is_some() {
                    return Err(ConfigError::new(
                        "rule_name",
                        "only used with rule_items (in the limits form give each limit a name)",
                    ));
                }
                compile_limits(limits, raw.local.slots)?
            }
        };
        let needs_body = groups.iter().flat_map(|g| &g.limits).any(|l| {
            l.dims.iter().any(|d| d.source.needs_body())
                || (raw.admission.estimate && !l.is_requests())
        });
        let scripts = match &raw.redis {
            Some(r) if cluster => Some(crate::cluster::Scripts::new(r.database)),
            _ => None,
        };
        Ok(Config {
            groups,
            cluster,
            redis_ignored,
            needs_body,
            scripts,
            rejected_code: raw.rejected_code,
            rejected_msg: raw.rejected_msg,
            failure_mode: raw.failure_mode,
            redis: raw.redis,
            rls: raw.rls,
            consumer_header: raw.consumer_header,
            client_ip: raw.client_ip,
            admission: raw.admission,
            response: raw.response,
            local: raw.local,
            response_headers: raw.response_headers,
        })
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
pub(super) fn check_name(path: &str, name: &str) -> Result<(), ConfigError> {
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
pub(super) fn windows(
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
pub(super) fn slots_for(dims: &[Dim], slots: u32) -> u32 {
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
