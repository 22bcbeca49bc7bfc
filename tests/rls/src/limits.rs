//! The limits this service holds, read from an ai-token-ratelimit plugin configuration (the
//! same JSON the gateways load, `_rules_` included): every window of every limit of every
//! configuration in rls mode, under the configuration's `rls.domain`.

use ai_token_ratelimit::config::Config;
use ai_token_ratelimit::rls::{self, ServiceLimit};
use aigw::config::Rules;
use limitador::limit::Limit;
use std::collections::HashMap;

/// One limit known to the service: the plugin's view and Limitador's.
#[derive(Debug, Clone)]
pub struct Known {
    /// The plugin's description (name, key entry keys, window, limit).
    pub spec: ServiceLimit,
    /// The Limitador limit counting it.
    pub limit: Limit,
    /// Its index (the `lim` value of its counters).
    pub index: usize,
}

/// Every limit, by (domain, limit name, window).
#[derive(Debug, Default)]
pub struct Table {
    by_key: HashMap<(String, String, String), Known>,
}

impl Table {
    /// Reads a plugin configuration. Errors name the problem.
    pub fn from_plugin_config(json: &[u8]) -> Result<Table, String> {
        let rules = Rules::<Config>::parse(json).map_err(|e| format!("invalid config: {e}"))?;
        let mut table = Table::default();
        for cfg in rules.configs() {
            let Some(spec) = cfg.rls.as_ref() else {
                return Err(
                    "the configuration is not in rls mode (mode \"rls\" with an rls section)"
                        .into(),
                );
            };
            let domain = spec.domain().to_string();
            let limits = rls::service_limits(cfg.groups.iter().flat_map(|g| &g.limits));
            for s in limits {
                let index = table.by_key.len();
                let variables: Vec<String> = (0..s.keys.len()).map(|j| format!("k{j}")).collect();
                let mut limit = Limit::new(
                    domain.as_str(),
                    i64::try_from(s.limit).unwrap_or(i64::MAX),
                    s.secs,
                    vec![
                        format!("lim == \"{index}\""),
                        format!("window == \"{}\"", s.window),
                    ],
                    variables,
                );
                limit.set_name(s.name.clone());
                table.by_key.insert(
                    (domain.clone(), s.name.clone(), s.window.to_string()),
                    Known {
                        spec: s,
                        limit,
                        index,
                    },
                );
            }
        }
        if table.by_key.is_empty() {
            return Err("the configuration defines no limits".into());
        }
        Ok(table)
    }

    /// Every Limitador limit.
    pub fn limits(&self) -> impl Iterator<Item = &Limit> {
        self.by_key.values().map(|k| &k.limit)
    }

    /// The limit a descriptor names and the counter values for it: entries must be
    /// `limit`, the limit's key parts in order, then `window`. `None` for a descriptor no
    /// limit has (the service then does not limit it, as envoyproxy/ratelimit does).
    pub fn lookup(
        &self,
        domain: &str,
        entries: &[(String, String)],
    ) -> Option<(&Known, HashMap<String, String>)> {
        let (first, rest) = entries.split_first()?;
        let (last, middle) = rest.split_last()?;
        if first.0 != rls::LIMIT_KEY || last.0 != rls::WINDOW_KEY {
            return None;
        }
        let known = self
            .by_key
            .get(&(domain.to_string(), first.1.clone(), last.1.clone()))?;
        if middle.len() != known.spec.keys.len()
            || middle
                .iter()
                .zip(&known.spec.keys)
                .any(|((k, _), want)| k != want)
        {
            return None;
        }
        let mut values = HashMap::new();
        values.insert("lim".to_string(), known.index.to_string());
        values.insert("window".to_string(), last.1.clone());
        for (j, (_, v)) in middle.iter().enumerate() {
            values.insert(format!("k{j}"), v.clone());
        }
        Some((known, values))
    }
}

/// The envoyproxy/ratelimit configuration (YAML) for the limits of a plugin configuration:
/// one document per rls-mode configuration (domain).
pub fn envoy_ratelimit_config(json: &[u8]) -> Result<String, String> {
    let rules = Rules::<Config>::parse(json).map_err(|e| format!("invalid config: {e}"))?;
    let mut docs = Vec::new();
    for cfg in rules.configs() {
        let Some(spec) = cfg.rls.as_ref() else {
            return Err(
                "the configuration is not in rls mode (mode \"rls\" with an rls section)".into(),
            );
        };
        let limits = rls::service_limits(cfg.groups.iter().flat_map(|g| &g.limits));
        docs.push(rls::envoy_ratelimit_yaml(spec.domain(), &limits));
    }
    Ok(docs.join("---\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_plugin_config() {
        let t = Table::from_plugin_config(
            br#"{"mode":"rls","rls":{"cluster":"c","domain":"ai"},"limits":[
                {"name":"tok","key":[{"by":"consumer"}],"per_minute":100,"per_hour":1000},
                {"name":"req","count":"requests","per_second":2}]}"#,
        )
        .unwrap();
        assert_eq!(t.limits().count(), 3);
        let e = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let (k, values) = t
            .lookup(
                "ai",
                &e(&[("limit", "tok"), ("consumer", "alice"), ("window", "hour")]),
            )
            .unwrap();
        assert_eq!((k.spec.limit, k.spec.secs), (1000, 3600));
        assert_eq!(values.get("k0").map(String::as_str), Some("alice"));
        assert!(t
            .lookup(
                "other",
                &e(&[("limit", "tok"), ("consumer", "a"), ("window", "hour")])
            )
            .is_none());
        assert!(t
            .lookup("ai", &e(&[("limit", "tok"), ("window", "hour")]))
            .is_none());
        assert!(t
            .lookup("ai", &e(&[("limit", "req"), ("window", "second")]))
            .is_some());
        let err = Table::from_plugin_config(br#"{"limits":[{"per_minute":1}]}"#).unwrap_err();
        assert!(err.contains("not in rls mode"), "{err}");
    }
}
