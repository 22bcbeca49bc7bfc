//! Per-route configuration in the Higress format, and request-time rule selection.
//!
//! The configuration document is the global configuration plus an optional `_rules_` array:
//!
//! ```json
//! {
//!   "header_value": "global",
//!   "_rules_": [
//!     { "_match_route_": ["route-a"], "header_value": "for route a" },
//!     { "_match_domain_": ["*.example.com", "api.*"], "header_value": "for those hosts" }
//!   ]
//! }
//! ```
//!
//! Each rule's keys (other than its `_match_*_` keys) are merged over the global object — a
//! shallow merge: a key the rule sets replaces the global value as a whole — and the result is
//! deserialized and validated at configure time, so a bad rule is reported before traffic.
//!
//! At request time the first rule whose matchers all match wins (a rule normally has one
//! `_match_*_` key; when it has several, all of them must match). Within one matcher list any
//! entry may match:
//!
//! * `_match_route_`: property `route_name` equals an entry.
//! * `_match_route_prefix_`: `route_name` starts with an entry.
//! * `_match_domain_`: `:authority` without its port, compared case-insensitively: exact,
//!   `*.example.com` (suffix `.example.com`), `example.*` (prefix `example.`), `*` (any).
//! * `_match_service_`: property `cluster_name`. Istio/Higress cluster names
//!   `outbound|<port>|<subset>|<fqdn>` match an entry `fqdn`, `fqdn:port`, or a leading part
//!   of the FQDN ending at a dot (`foo` and `foo.default` match `foo.default.svc.cluster.local`).
//!   Any other cluster name matches an entry that equals it or is a dot-delimited leading part
//!   of it.
//!
//! A top-level `"$schema"` string (the location of the configuration's JSON Schema, for
//! editors) is accepted and ignored.
//!
//! When no rule matches, the global configuration applies. When the global part is empty (or
//! is not a valid configuration on its own) and rules exist, unmatched requests pass through
//! the plugin untouched.

use super::{from_value, join_path, parse_json, ConfigError, PluginConfig};
use serde_json::{Map, Value};
use std::rc::Rc;

const RULES_KEY: &str = "_rules_";
const SCHEMA_KEY: &str = "$schema";
const MATCH_ROUTE: &str = "_match_route_";
const MATCH_ROUTE_PREFIX: &str = "_match_route_prefix_";
const MATCH_DOMAIN: &str = "_match_domain_";
const MATCH_SERVICE: &str = "_match_service_";

/// A request fact a rule may need; [`Rules::select`] asks for each at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// The `route_name` property.
    RouteName,
    /// The `:authority` request header.
    Authority,
    /// The `cluster_name` property.
    ClusterName,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DomainPattern {
    Exact(String),
    Suffix(String),
    Prefix(String),
}

#[derive(Debug, Clone, Default)]
struct Matcher {
    routes: Vec<String>,
    route_prefixes: Vec<String>,
    domains: Vec<DomainPattern>,
    services: Vec<String>,
}

#[derive(Debug)]
struct Rule<C> {
    matcher: Matcher,
    config: Rc<C>,
}

/// A parsed configuration: the optional global configuration and the ordered rules.
#[derive(Debug)]
pub struct Rules<C> {
    global: Option<Rc<C>>,
    rules: Vec<Rule<C>>,
    global_error: Option<ConfigError>,
}

impl<C: PluginConfig> Rules<C> {
    /// Parses a configuration document (see the module docs). Empty input means `{}`.
    pub fn parse(json: &[u8]) -> Result<Rules<C>, ConfigError> {
        let value = parse_json(json)?;
        let Value::Object(mut root) = value else {
            return Err(ConfigError::new("", "configuration must be a JSON object"));
        };
        // Editors find the configuration's JSON Schema through a top-level `$schema`; it is
        // not a setting.
        match root.remove(SCHEMA_KEY) {
            None | Some(Value::String(_)) => {}
            Some(_) => {
                return Err(ConfigError::new(
                    SCHEMA_KEY,
                    "must be a string (the location of the configuration's JSON Schema)",
                ))
            }
        }
        let rules_value = root.remove(RULES_KEY);
        let raw_rules = match rules_value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(ConfigError::new(
                    RULES_KEY,
                    "must be an array of rule objects",
                ))
            }
        };

        let mut rules = Vec::with_capacity(raw_rules.len());
        for (i, raw) in raw_rules.into_iter().enumerate() {
            let at = format!("{RULES_KEY}[{i}]");
            let Value::Object(mut obj) = raw else {
                return Err(ConfigError::new(at, "must be an object"));
            };
            let matcher = take_matcher(&mut obj).map_err(|e| e.within(&at))?;
            let mut merged = root.clone();
            for (k, v) in obj {
                merged.insert(k, v);
            }
            let config = from_value::<C>(Value::Object(merged)).map_err(|e| e.within(&at))?;
            rules.push(Rule {
                matcher,
                config: Rc::new(config),
            });
        }

        let (global, global_error) = if rules.is_empty() {
            (Some(Rc::new(from_value::<C>(Value::Object(root))?)), None)
        } else if root.is_empty() {
            (None, None)
        } else {
            match from_value::<C>(Value::Object(root)) {
                Ok(c) => (Some(Rc::new(c)), None),
                Err(e) => (None, Some(e)),
            }
        };
        Ok(Rules {
            global,
            rules,
            global_error,
        })
    }
}

impl<C> Rules<C> {
    /// Whether a global configuration applies to requests no rule matches.
    pub fn has_global(&self) -> bool {
        self.global.is_some()
    }

    /// The global configuration, if any.
    pub fn global(&self) -> Option<&Rc<C>> {
        self.global.as_ref()
    }

    /// Every configuration: the global one (if any) first, then each rule's.
    pub fn configs(&self) -> impl Iterator<Item = &C> {
        self.global
            .iter()
            .map(|c| &**c)
            .chain(self.rules.iter().map(|r| &*r.config))
    }

    /// Number of `_rules_` entries.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// When rules exist and the non-empty global part is not a valid configuration on its own,
    /// why (unmatched requests then pass through). Worth a warning at configure time.
    pub fn global_error(&self) -> Option<&ConfigError> {
        self.global_error.as_ref()
    }

    /// Whether any rule needs `fact`, so the caller can skip reading it.
    pub fn needs(&self, fact: Fact) -> bool {
        self.rules.iter().any(|r| match fact {
            Fact::RouteName => !r.matcher.routes.is_empty() || !r.matcher.route_prefixes.is_empty(),
            Fact::Authority => !r.matcher.domains.is_empty(),
            Fact::ClusterName => !r.matcher.services.is_empty(),
        })
    }

    /// Selects the configuration for a request: the first matching rule, else the global
    /// configuration, else `None` (pass through). `lookup` is called at most once per fact
    /// and only for facts some rule needs before a match is found.
    pub fn select(&self, mut lookup: impl FnMut(Fact) -> Option<String>) -> Option<&Rc<C>> {
        let mut cache: [Option<Option<String>>; 3] = [None, None, None];
        let mut get = |fact: Fact| -> Option<String> {
            let slot = match fact {
                Fact::RouteName => 0,
                Fact::Authority => 1,
                Fact::ClusterName => 2,
            };
            // The array has exactly three slots, one per `Fact` variant.
            if let Some(entry) = cache.get_mut(slot) {
                if entry.is_none() {
                    *entry = Some(lookup(fact));
                }
                entry.clone().flatten()
            } else {
                None
            }
        };
        for rule in &self.rules {
            if rule.matcher.matches(&mut get) {
                return Some(&rule.config);
            }
        }
        self.global.as_ref()
    }
}

impl Matcher {
    fn matches(&self, get: &mut impl FnMut(Fact) -> Option<String>) -> bool {
        if !self.routes.is_empty() || !self.route_prefixes.is_empty() {
            let Some(route) = get(Fact::RouteName) else {
                return false;
            };
            if !self.routes.is_empty() && !self.routes.contains(&route) {
                return false;
            }
            if !self.route_prefixes.is_empty()
                && !self
                    .route_prefixes
                    .iter()
                    .any(|p| route.starts_with(p.as_str()))
            {
                return false;
            }
        }
        if !self.domains.is_empty() {
            let Some(authority) = get(Fact::Authority) else {
                return false;
            };
            if !domain_matches(&self.domains, strip_port(&authority)) {
                return false;
            }
        }
        if !self.services.is_empty() {
            let Some(cluster) = get(Fact::ClusterName) else {
                return false;
            };
            if !self.services.iter().any(|s| service_matches(s, &cluster)) {
                return false;
            }
        }
        true
    }
}

fn take_matcher(obj: &mut Map<String, Value>) -> Result<Matcher, ConfigError> {
    let mut m = Matcher {
        routes: take_list(obj, MATCH_ROUTE)?,
        route_prefixes: take_list(obj, MATCH_ROUTE_PREFIX)?,
        domains: take_list(obj, MATCH_DOMAIN)?
            .into_iter()
            .map(|d| parse_domain(&d))
            .collect(),
        services: take_list(obj, MATCH_SERVICE)?,
    };
    m.routes.dedup();
    if m.routes.is_empty()
        && m.route_prefixes.is_empty()
        && m.domains.is_empty()
        && m.services.is_empty()
    {
        return Err(ConfigError::new(
            "",
            format!("a rule needs one of {MATCH_ROUTE}, {MATCH_ROUTE_PREFIX}, {MATCH_DOMAIN} or {MATCH_SERVICE}"),
        ));
    }
    Ok(m)
}

fn take_list(obj: &mut Map<String, Value>, key: &str) -> Result<Vec<String>, ConfigError> {
    let Some(value) = obj.remove(key) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(ConfigError::new(key, "must be an array of strings"));
    };
    if items.is_empty() {
        return Err(ConfigError::new(key, "must not be empty"));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Value::String(s) if !s.is_empty() => out.push(s),
            _ => {
                return Err(ConfigError::new(
                    join_path(key, &format!("[{i}]")),
                    "must be a non-empty string",
                ))
            }
        }
    }
    Ok(out)
}

fn parse_domain(pattern: &str) -> DomainPattern {
    let lower = pattern.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix('*') {
        DomainPattern::Suffix(rest.to_string())
    } else if let Some(rest) = lower.strip_suffix('*') {
        DomainPattern::Prefix(rest.to_string())
    } else {
        DomainPattern::Exact(lower)
    }
}

/// Removes a `:port` suffix from an authority, leaving IPv6 literals (`[::1]`) intact.
pub fn strip_port(authority: &str) -> &str {
    match authority.rfind(':') {
        Some(colon) => match authority.rfind(']') {
            Some(bracket) if bracket > colon => authority,
            _ => authority.get(..colon).unwrap_or(authority),
        },
        None => authority,
    }
}

fn domain_matches(patterns: &[DomainPattern], host: &str) -> bool {
    let host = host.as_bytes();
    patterns.iter().any(|p| match p {
        DomainPattern::Exact(d) => host.eq_ignore_ascii_case(d.as_bytes()),
        DomainPattern::Suffix(s) => {
            let tail = host
                .len()
                .checked_sub(s.len())
                .and_then(|start| host.get(start..));
            tail.is_some_and(|t| t.eq_ignore_ascii_case(s.as_bytes()))
        }
        DomainPattern::Prefix(s) => host
            .get(..s.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(s.as_bytes())),
    })
}

/// Whether `name` equals `full` or is a leading part of it that ends at a dot.
fn leading_part(name: &str, full: &str) -> bool {
    full == name
        || (full.len() > name.len()
            && full.starts_with(name)
            && full.as_bytes().get(name.len()) == Some(&b'.'))
}

fn service_matches(entry: &str, cluster: &str) -> bool {
    let parts: Vec<&str> = cluster.split('|').collect();
    if let [_, port, _, fqdn] = parts.as_slice() {
        if let Some((host, entry_port)) = entry.rsplit_once(':') {
            if entry_port == *port && leading_part(host, fqdn) {
                return true;
            }
        }
        return leading_part(entry, fqdn);
    }
    leading_part(entry, cluster)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PlainConfig;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Cfg {
        value: String,
        #[serde(default)]
        extra: u32,
    }

    impl PlainConfig for Cfg {
        fn validate(&mut self) -> Result<(), ConfigError> {
            if self.value == "bad" {
                return Err(ConfigError::new("value", "must not be bad"));
            }
            Ok(())
        }
    }

    fn facts(
        route: Option<&str>,
        authority: Option<&str>,
        cluster: Option<&str>,
    ) -> impl FnMut(Fact) -> Option<String> {
        let (r, a, c) = (
            route.map(String::from),
            authority.map(String::from),
            cluster.map(String::from),
        );
        move |f| match f {
            Fact::RouteName => r.clone(),
            Fact::Authority => a.clone(),
            Fact::ClusterName => c.clone(),
        }
    }

    fn value(
        rules: &Rules<Cfg>,
        route: Option<&str>,
        authority: Option<&str>,
        cluster: Option<&str>,
    ) -> Option<String> {
        rules
            .select(facts(route, authority, cluster))
            .map(|c| c.value.clone())
    }

    #[test]
    fn a_schema_reference_is_not_a_setting() {
        let rules = Rules::<Cfg>::parse(br#"{"$schema":"./cfg.schema.json","value":"g"}"#).unwrap();
        assert_eq!(value(&rules, None, None, None).as_deref(), Some("g"));
        let err = Rules::<Cfg>::parse(br#"{"$schema":1,"value":"g"}"#).unwrap_err();
        assert_eq!(err.path(), "$schema");
    }

    #[test]
    fn global_only() {
        let rules = Rules::<Cfg>::parse(br#"{"value":"g"}"#).unwrap();
        assert!(rules.has_global());
        assert_eq!(value(&rules, Some("r"), None, None).as_deref(), Some("g"));
    }

    #[test]
    fn rule_merges_over_global_and_first_match_wins() {
        let rules = Rules::<Cfg>::parse(
            br#"{"value":"g","extra":7,"_rules_":[
                {"_match_route_":["r1"],"value":"one"},
                {"_match_route_prefix_":["r"],"value":"prefix","extra":1},
                {"_match_route_":["r1"],"value":"never"}
            ]}"#,
        )
        .unwrap();
        let one = rules.select(facts(Some("r1"), None, None)).unwrap();
        assert_eq!(
            **one,
            Cfg {
                value: "one".into(),
                extra: 7
            }
        );
        let p = rules.select(facts(Some("r2"), None, None)).unwrap();
        assert_eq!(
            **p,
            Cfg {
                value: "prefix".into(),
                extra: 1
            }
        );
        assert_eq!(value(&rules, Some("x"), None, None).as_deref(), Some("g"));
        assert_eq!(value(&rules, None, None, None).as_deref(), Some("g"));
    }

    #[test]
    fn no_global_means_pass_through() {
        let rules =
            Rules::<Cfg>::parse(br#"{"_rules_":[{"_match_route_":["a"],"value":"a"}]}"#).unwrap();
        assert!(!rules.has_global());
        assert_eq!(value(&rules, Some("a"), None, None).as_deref(), Some("a"));
        assert_eq!(value(&rules, Some("b"), None, None), None);
    }

    #[test]
    fn incomplete_global_with_rules_is_a_warning_not_an_error() {
        let rules =
            Rules::<Cfg>::parse(br#"{"extra":3,"_rules_":[{"_match_route_":["a"],"value":"a"}]}"#)
                .unwrap();
        assert!(!rules.has_global());
        assert_eq!(rules.global_error().unwrap().path(), "value");
        assert_eq!(rules.select(facts(Some("a"), None, None)).unwrap().extra, 3);
    }

    #[test]
    fn domains() {
        let rules = Rules::<Cfg>::parse(
            br#"{"_rules_":[
                {"_match_domain_":["api.example.com"],"value":"exact"},
                {"_match_domain_":["*.example.com"],"value":"suffix"},
                {"_match_domain_":["example.*"],"value":"prefix"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(
            value(&rules, None, Some("API.example.com:8443"), None).as_deref(),
            Some("exact")
        );
        assert_eq!(
            value(&rules, None, Some("x.example.com"), None).as_deref(),
            Some("suffix")
        );
        // Not `*.example.com` (nothing before the dot), but `example.*` matches it.
        assert_eq!(
            value(&rules, None, Some("example.com"), None).as_deref(),
            Some("prefix")
        );
        assert_eq!(
            value(&rules, None, Some("example.org:80"), None).as_deref(),
            Some("prefix")
        );
        assert_eq!(value(&rules, None, Some("other.org"), None), None);
        assert_eq!(value(&rules, None, None, None), None);
    }

    #[test]
    fn strip_port_cases() {
        assert_eq!(strip_port("a.com:80"), "a.com");
        assert_eq!(strip_port("a.com"), "a.com");
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn services() {
        assert!(service_matches(
            "foo",
            "outbound|80||foo.default.svc.cluster.local"
        ));
        assert!(service_matches(
            "foo.default",
            "outbound|80||foo.default.svc.cluster.local"
        ));
        assert!(service_matches(
            "foo.default.svc.cluster.local:80",
            "outbound|80||foo.default.svc.cluster.local"
        ));
        assert!(!service_matches(
            "foo.default.svc.cluster.local:81",
            "outbound|80||foo.default.svc.cluster.local"
        ));
        assert!(!service_matches(
            "fo",
            "outbound|80||foo.default.svc.cluster.local"
        ));
        assert!(!service_matches(
            "bar",
            "outbound|80||foo.default.svc.cluster.local"
        ));
        assert!(service_matches("openai", "openai"));
        assert!(service_matches("llm", "llm.dns"));
        assert!(!service_matches("open", "openai"));
    }

    #[test]
    fn service_rule_and_and_semantics() {
        let rules = Rules::<Cfg>::parse(
            br#"{"_rules_":[{"_match_service_":["foo"],"_match_route_":["r"],"value":"both"}]}"#,
        )
        .unwrap();
        let c = "outbound|80||foo.ns.svc.cluster.local";
        assert_eq!(
            value(&rules, Some("r"), None, Some(c)).as_deref(),
            Some("both")
        );
        assert_eq!(value(&rules, Some("x"), None, Some(c)), None);
        assert_eq!(
            value(&rules, Some("r"), None, Some("outbound|80||bar.ns")),
            None
        );
    }

    #[test]
    fn lookups_are_lazy_and_cached() {
        let rules = Rules::<Cfg>::parse(
            br#"{"value":"g","_rules_":[{"_match_route_":["a"],"value":"a"},{"_match_route_":["b"],"value":"b"}]}"#,
        )
        .unwrap();
        let mut calls = Vec::new();
        let got = rules.select(|f| {
            calls.push(f);
            Some("c".to_string())
        });
        assert_eq!(got.unwrap().value, "g");
        assert_eq!(calls, vec![Fact::RouteName]);
        assert!(rules.needs(Fact::RouteName));
        assert!(!rules.needs(Fact::Authority));
        assert!(!rules.needs(Fact::ClusterName));
    }

    #[test]
    fn rule_errors_name_the_rule_and_field() {
        let err = Rules::<Cfg>::parse(br#"{"value":"g","_rules_":[{"_match_route_":["a"]},{"_match_route_":["b"],"value":"bad"}]}"#)
            .unwrap_err();
        assert_eq!(err.to_string(), "_rules_[1].value: must not be bad");
        let err = Rules::<Cfg>::parse(br#"{"value":"g","_rules_":[{"value":"x"}]}"#).unwrap_err();
        assert_eq!(err.path(), "_rules_[0]");
        let err =
            Rules::<Cfg>::parse(br#"{"value":"g","_rules_":[{"_match_route_":[]}]}"#).unwrap_err();
        assert_eq!(err.path(), "_rules_[0]._match_route_");
        let err = Rules::<Cfg>::parse(br#"{"value":"g","_rules_":[{"_match_domain_":["a",3]}]}"#)
            .unwrap_err();
        assert_eq!(err.path(), "_rules_[0]._match_domain_[1]");
        let err = Rules::<Cfg>::parse(br#"{"value":"g","_rules_":{}}"#).unwrap_err();
        assert_eq!(err.path(), "_rules_");
        let err = Rules::<Cfg>::parse(br#"[1]"#).unwrap_err();
        assert_eq!(err.path(), "");
        // Without rules, an invalid global configuration is an error.
        let err = Rules::<Cfg>::parse(br#"{"value":"bad"}"#).unwrap_err();
        assert_eq!(err.to_string(), "value: must not be bad");
    }
}
