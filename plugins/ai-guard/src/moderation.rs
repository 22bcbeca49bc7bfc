//! External moderation: a call-out to an OpenAI-compatible moderation API
//! (`POST /v1/moderations`) or to any HTTP service that answers a JSON
//! verdict, run on a request's selected text after the local rules.
//!
//! This module holds the configuration (`moderation` section), the call-out
//! body, the reading of the answer into a [`Verdict`], and the per-VM
//! [`VerdictCache`]. The call-out itself is made by the phase handlers in
//! `lib.rs`. The text sent is what the local rules left: masked values are
//! sent masked, so they never leave the gateway.
//!
//! ```json
//! "moderation": {
//!   "cluster": "outbound|443||api.openai.com", "authority": "api.openai.com",
//!   "model": "omni-moderation-latest", "api_key": "sk-...",
//!   "timeout_ms": 2000, "on_error": "allow",
//!   "categories": ["violence", "self-harm"], "thresholds": {"harassment": 0.8},
//!   "cache": {"max_entries": 1024, "ttl_ms": 60000}
//! }
//! ```
//! Generic services: `"mode": "generic", "path": "/check", "text_field": "text",
//! "verdict_path": "$.flagged", "categories_path": "$.labels"`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Deserialize;
use serde_json::Value;

use crate::config::ConfigError;

/// Counter of moderation call-out outcomes; labels `result`
/// (`flagged`, `passed`, `error`) and `source` (`call`, `cache`).
pub const MODERATION_METRIC: &str = "aigw_guard_moderation_total";
/// Counter of failed moderation call-outs; labels `reason` (`timeout`,
/// `unreachable`, `status`, `malformed`, `dispatch`, `host`) and `policy`
/// (`allow`, `block`).
pub const MODERATION_ERRORS_METRIC: &str = "aigw_guard_moderation_errors_total";

/// Default call-out timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;

/// The `moderation` section as written by users.
#[derive(Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ModerationConfig {
    /// Off switch (default on when the section is present).
    pub enabled: Option<bool>,
    /// `openai` (default) or `generic`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("enum" = ["openai", "generic", null])))]
    pub mode: Option<ModeName>,
    /// Gateway cluster of the service. Required.
    pub cluster: String,
    /// `:authority` (host) of the call; default: the cluster name.
    pub authority: Option<String>,
    /// Path; default `/v1/moderations` (`openai`); required for `generic`.
    pub path: Option<String>,
    /// `model` field of an OpenAI call (omitted when unset).
    pub model: Option<String>,
    /// Sent as `Authorization: Bearer <key>`; never logged.
    #[cfg_attr(feature = "schema", schemars(extend("writeOnly" = true)))]
    pub api_key: Option<String>,
    /// Call-out timeout in ms (1..=60000, default 2000).
    pub timeout_ms: Option<u64>,
    /// Timeouts, errors, unparsable answers: `allow` (default) or `block`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("enum" = ["allow", "block", null])))]
    pub on_error: Option<OnError>,
    /// OpenAI: only these categories flag (empty: the service's `flagged`).
    pub categories: Vec<String>,
    /// OpenAI: a category whose score reaches its threshold flags.
    pub thresholds: BTreeMap<String, f64>,
    /// Generic: the request field that carries the text (default `text`).
    pub text_field: Option<String>,
    /// Generic: where the boolean verdict is (default `$.flagged`).
    pub verdict_path: Option<String>,
    /// Generic: where category names are (strings, or an object of booleans), for logs.
    pub categories_path: Option<String>,
    /// Verdict cache per VM.
    pub cache: CacheConfig,
}

impl std::fmt::Debug for ModerationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The API key is never printed.
        f.debug_struct("ModerationConfig")
            .field("cluster", &self.cluster)
            .field("mode", &self.mode)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// `moderation.cache`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Most verdicts kept per VM (0 disables the cache; at most 10000).
    pub max_entries: usize,
    /// How long a verdict is reused, in ms.
    pub ttl_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 1024,
            ttl_ms: 60_000,
        }
    }
}

/// How the service is spoken to.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// OpenAI moderations: `{"model","input"}` → `results[].flagged/categories/category_scores`.
    OpenAi {
        /// `model` field, if any.
        model: Option<String>,
        /// Categories that count (empty: `flagged` decides).
        categories: Vec<String>,
        /// Score thresholds per category.
        thresholds: Vec<(String, f64)>,
    },
    /// Any service: `{<text_field>: text}` → a boolean at `verdict_path`.
    Generic {
        /// Request field carrying the text.
        text_field: String,
        /// Path of the boolean verdict.
        verdict: Vec<PathSeg>,
        /// Path of category names, for logs.
        categories: Option<Vec<PathSeg>>,
    },
}

/// `moderation.mode` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    /// OpenAI moderations (the default).
    #[default]
    OpenAi,
    /// Any service answering a boolean verdict.
    Generic,
}

/// What to do when the service cannot give a verdict (`on_error`: `allow`
/// or `block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Forward the request (fail open).
    #[default]
    Allow,
    /// Block it (fail closed).
    Block,
}

impl OnError {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            OnError::Allow => "allow",
            OnError::Block => "block",
        }
    }
}

/// The compiled `moderation` section.
#[derive(Clone)]
pub struct Moderation {
    /// Gateway cluster.
    pub cluster: String,
    /// `:authority`.
    pub authority: String,
    /// `:path`.
    pub path: String,
    /// Bearer key (never logged).
    api_key: Option<String>,
    /// Call-out timeout.
    pub timeout_ms: u64,
    /// Failure policy.
    pub on_error: OnError,
    /// Protocol.
    pub mode: Mode,
    /// Cache bounds: entries, ttl ms.
    pub cache: (usize, u64),
    /// Cache key prefix: the endpoint and what decides a verdict.
    cache_scope: [u8; 32],
}

impl std::fmt::Debug for Moderation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Moderation")
            .field("cluster", &self.cluster)
            .field("authority", &self.authority)
            .field("path", &self.path)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .field("on_error", &self.on_error)
            .field("mode", &self.mode)
            .finish()
    }
}

/// One step of a verdict path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

fn err<T>(field: &str, reason: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError::new(format!("moderation.{field}"), reason))
}

/// Parses `$.a.b[0]` / `$['a']` into steps (no wildcards: one value).
pub fn parse_path(src: &str) -> Result<Vec<PathSeg>, String> {
    let mut rest = src.trim().strip_prefix('$').ok_or("must start with `$`")?;
    let mut segs = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let (key, r2) = r.split_at(end);
            if key.is_empty() || key == "*" {
                return Err("expected a key after `.`".into());
            }
            segs.push(PathSeg::Key(key.to_string()));
            rest = r2;
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']').ok_or("unclosed `[`")?;
            let (inner, r2) = r.split_at(close);
            rest = r2.get(1..).unwrap_or("");
            let inner = inner.trim();
            if let Some(q) = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
            {
                segs.push(PathSeg::Key(q.to_string()));
            } else {
                let n = inner
                    .parse::<usize>()
                    .map_err(|_| format!("bad index `[{inner}]` (use a number or a quoted key)"))?;
                segs.push(PathSeg::Index(n));
            }
        } else {
            return Err(format!(
                "unexpected `{}`",
                rest.chars().next().unwrap_or(' ')
            ));
        }
    }
    Ok(segs)
}

fn lookup<'v>(v: &'v Value, path: &[PathSeg]) -> Option<&'v Value> {
    let mut cur = v;
    for seg in path {
        cur = match seg {
            PathSeg::Key(k) => cur.get(k.as_str())?,
            PathSeg::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

impl Moderation {
    /// Validates the section; `Ok(None)` when it is switched off.
    pub fn from_config(c: &ModerationConfig) -> Result<Option<Moderation>, ConfigError> {
        if c.enabled == Some(false) {
            return Ok(None);
        }
        if c.cluster.trim().is_empty() {
            return err(
                "cluster",
                "required: the gateway cluster of the moderation service",
            );
        }
        let authority = c.authority.clone().unwrap_or_else(|| c.cluster.clone());
        if authority.trim().is_empty() {
            return err("authority", "must not be empty");
        }
        let timeout_ms = c.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(1..=60_000).contains(&timeout_ms) {
            return err("timeout_ms", "must be between 1 and 60000");
        }
        let on_error = c.on_error.unwrap_or_default();
        if let Some(k) = &c.api_key {
            if k.is_empty() || k.bytes().any(|b| b.is_ascii_control()) {
                return err("api_key", "must be non-empty, without control characters");
            }
        }
        if c.cache.max_entries > 10_000 {
            return err("cache.max_entries", "must be at most 10000");
        }
        let generic_only =
            c.text_field.is_some() || c.verdict_path.is_some() || c.categories_path.is_some();
        let openai_only = c.model.is_some() || !c.categories.is_empty() || !c.thresholds.is_empty();
        let mode = match c.mode.unwrap_or_default() {
            ModeName::OpenAi => {
                if generic_only {
                    return err(
                        "mode",
                        "text_field, verdict_path and categories_path need mode \"generic\"",
                    );
                }
                for (i, cat) in c.categories.iter().enumerate() {
                    if cat.trim().is_empty() {
                        return err(&format!("categories[{i}]"), "empty category");
                    }
                }
                for (cat, t) in &c.thresholds {
                    if !(0.0..=1.0).contains(t) {
                        return err(&format!("thresholds.{cat}"), "must be between 0 and 1");
                    }
                }
                Mode::OpenAi {
                    model: c.model.clone(),
                    categories: c.categories.clone(),
                    thresholds: c.thresholds.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                }
            }
            ModeName::Generic => {
                if openai_only {
                    return err(
                        "mode",
                        "model, categories and thresholds need mode \"openai\"",
                    );
                }
                if c.path.is_none() {
                    return err("path", "required with mode \"generic\"");
                }
                let text_field = c.text_field.clone().unwrap_or_else(|| "text".to_string());
                if text_field.is_empty() {
                    return err("text_field", "must not be empty");
                }
                let verdict = parse_path(c.verdict_path.as_deref().unwrap_or("$.flagged"))
                    .or_else(|e| err("verdict_path", format!("invalid JSON path: {e}")))?;
                let categories =
                    match &c.categories_path {
                        Some(p) => Some(parse_path(p).or_else(|e| {
                            err("categories_path", format!("invalid JSON path: {e}"))
                        })?),
                        None => None,
                    };
                Mode::Generic {
                    text_field,
                    verdict,
                    categories,
                }
            }
        };
        let path = c
            .path
            .clone()
            .unwrap_or_else(|| "/v1/moderations".to_string());
        if !path.starts_with('/') {
            return err("path", "must start with `/`");
        }
        let mut scope = aigw::hash::Sha256::new();
        for part in [c.cluster.as_str(), &authority, &path] {
            scope.update(part.as_bytes());
            scope.update(&[0]);
        }
        scope.update(format!("{mode:?}").as_bytes());
        Ok(Some(Moderation {
            cluster: c.cluster.clone(),
            authority,
            path,
            api_key: c.api_key.clone(),
            timeout_ms,
            on_error,
            mode,
            cache: (c.cache.max_entries, c.cache.ttl_ms),
            cache_scope: scope.finish(),
        }))
    }

    /// The call-out's headers besides the pseudo-headers (the key in
    /// `authorization`).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![("content-type", "application/json".to_string())];
        if let Some(k) = &self.api_key {
            h.push(("authorization", format!("Bearer {k}")));
        }
        h
    }

    /// The call-out body for `text`.
    pub fn request_body(&self, text: &str) -> Vec<u8> {
        let v = match &self.mode {
            Mode::OpenAi { model, .. } => {
                let mut m = serde_json::Map::new();
                if let Some(model) = model {
                    m.insert("model".into(), Value::String(model.clone()));
                }
                m.insert("input".into(), Value::String(text.to_string()));
                Value::Object(m)
            }
            Mode::Generic { text_field, .. } => {
                let mut m = serde_json::Map::new();
                m.insert(text_field.clone(), Value::String(text.to_string()));
                Value::Object(m)
            }
        };
        v.to_string().into_bytes()
    }

    /// Reads the service's answer; `None` when it is not a verdict.
    pub fn parse_verdict(&self, body: &[u8]) -> Option<Verdict> {
        let v = aigw::json::parse_value(body).ok()?;
        match &self.mode {
            Mode::OpenAi {
                categories,
                thresholds,
                ..
            } => {
                let results = v.get("results")?.as_array()?;
                if results.is_empty() {
                    return None;
                }
                let mut hit: Vec<String> = Vec::new();
                let mut flagged = false;
                for r in results {
                    let f = r.get("flagged")?.as_bool()?;
                    let cats = r.get("categories").and_then(Value::as_object);
                    let scores = r.get("category_scores").and_then(Value::as_object);
                    let mut add = |name: &str| {
                        if !hit.iter().any(|h| h == name) {
                            hit.push(name.to_string());
                        }
                    };
                    if let Some(cats) = cats {
                        for (name, on) in cats {
                            let counts = categories.is_empty() || categories.contains(name);
                            if counts && on.as_bool() == Some(true) {
                                add(name);
                            }
                        }
                    }
                    for (name, t) in thresholds {
                        let score = scores
                            .and_then(|s| s.get(name.as_str()))
                            .and_then(Value::as_f64);
                        if score.is_some_and(|s| s >= *t) {
                            add(name);
                        }
                    }
                    if categories.is_empty() && f {
                        flagged = true;
                    }
                }
                if !hit.is_empty() {
                    flagged = true;
                }
                Some(if flagged {
                    Verdict::Flagged(hit)
                } else {
                    Verdict::Passed
                })
            }
            Mode::Generic {
                verdict,
                categories,
                ..
            } => {
                let flagged = lookup(&v, verdict)?.as_bool()?;
                if !flagged {
                    return Some(Verdict::Passed);
                }
                let mut names = Vec::new();
                match categories.as_ref().and_then(|p| lookup(&v, p)) {
                    Some(Value::Array(items)) => {
                        names.extend(items.iter().filter_map(Value::as_str).map(str::to_string));
                    }
                    Some(Value::Object(m)) => names.extend(
                        m.iter()
                            .filter(|(_, on)| on.as_bool() == Some(true))
                            .map(|(k, _)| k.clone()),
                    ),
                    Some(Value::String(s)) => names.push(s.clone()),
                    _ => {}
                }
                Some(Verdict::Flagged(names))
            }
        }
    }

    /// The cache key of `text` for this endpoint.
    pub fn cache_key(&self, text: &str) -> [u8; 32] {
        let mut h = aigw::hash::Sha256::new();
        h.update(&self.cache_scope);
        h.update(text.as_bytes());
        h.finish()
    }
}

/// The service's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing objectionable.
    Passed,
    /// Flagged, with the categories that did it (may be empty).
    Flagged(Vec<String>),
}

/// Category names for a log line: safe characters only, bounded.
pub fn categories_for_log(cats: &[String]) -> String {
    if cats.is_empty() {
        return "unspecified".to_string();
    }
    let mut out = String::new();
    for c in cats.iter().take(16) {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.extend(
            c.chars()
                .filter(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '/' | '.'))
                .take(64),
        );
    }
    out
}

/// Recent verdicts of one VM, keyed by SHA-256 of endpoint and text, so the
/// same text (a retried prompt) is not sent twice within the TTL. Errors are
/// never cached.
#[derive(Debug, Default)]
pub struct VerdictCache {
    map: HashMap<[u8; 32], (u64, Verdict)>,
    order: VecDeque<[u8; 32]>,
}

impl VerdictCache {
    /// Verdicts held (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }

    /// The verdict for `key`, if still fresh at `now_ms`.
    pub fn get(&mut self, key: &[u8; 32], now_ms: u64) -> Option<Verdict> {
        match self.map.get(key) {
            Some((expires, v)) if *expires > now_ms => Some(v.clone()),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores a verdict, evicting the oldest beyond `max_entries`.
    pub fn put(
        &mut self,
        key: [u8; 32],
        v: Verdict,
        now_ms: u64,
        (max_entries, ttl_ms): (usize, u64),
    ) {
        if max_entries == 0 || ttl_ms == 0 {
            return;
        }
        if self
            .map
            .insert(key, (now_ms.saturating_add(ttl_ms), v))
            .is_none()
        {
            self.order.push_back(key);
        }
        while self.map.len() > max_entries || self.order.len() > max_entries.saturating_mul(2) {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if !self.order.contains(&old) {
                self.map.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(json: &str) -> Result<Option<Moderation>, ConfigError> {
        let value: Value = serde_json::from_str(json).unwrap();
        let c: ModerationConfig =
            aigw::config::raw_from_value(value).map_err(|e| e.within("moderation"))?;
        Moderation::from_config(&c)
    }

    #[test]
    fn openai_verdicts() {
        let md = m(r#"{"cluster":"mod","api_key":"sk-x"}"#).unwrap().unwrap();
        assert_eq!(md.path, "/v1/moderations");
        assert_eq!(md.authority, "mod");
        assert_eq!(md.on_error, OnError::Allow);
        let h = md.headers();
        assert!(h.contains(&("authorization", "Bearer sk-x".to_string())));
        assert!(!format!("{md:?}").contains("sk-x"));
        let body: Value = serde_json::from_slice(&md.request_body("hi")).unwrap();
        assert_eq!(body, serde_json::json!({"input": "hi"}));
        let flagged = br#"{"id":"m","results":[{"flagged":true,"categories":{"violence":true,"hate":false},"category_scores":{"violence":0.9,"hate":0.1}}]}"#;
        assert_eq!(
            md.parse_verdict(flagged),
            Some(Verdict::Flagged(vec!["violence".into()]))
        );
        let clean = br#"{"results":[{"flagged":false,"categories":{"violence":false},"category_scores":{"violence":0.01}}]}"#;
        assert_eq!(md.parse_verdict(clean), Some(Verdict::Passed));
        for bad in [
            &b"nope"[..],
            b"{}",
            br#"{"results":[]}"#,
            br#"{"results":[{"flagged":"yes"}]}"#,
        ] {
            assert_eq!(md.parse_verdict(bad), None);
        }
        // Only listed categories count; thresholds flag on their own.
        let md = m(r#"{"cluster":"mod","model":"omni","categories":["hate"],"thresholds":{"harassment":0.5}}"#)
            .unwrap()
            .unwrap();
        let body: Value = serde_json::from_slice(&md.request_body("hi")).unwrap();
        assert_eq!(body["model"], "omni");
        assert_eq!(md.parse_verdict(flagged), Some(Verdict::Passed));
        let scored = br#"{"results":[{"flagged":false,"categories":{"harassment":false},"category_scores":{"harassment":0.6}}]}"#;
        assert_eq!(
            md.parse_verdict(scored),
            Some(Verdict::Flagged(vec!["harassment".into()]))
        );
    }

    #[test]
    fn generic_verdicts() {
        let md = m(r#"{"cluster":"c","mode":"generic","path":"/check","text_field":"content","verdict_path":"$.result.block","categories_path":"$.result.labels"}"#)
            .unwrap()
            .unwrap();
        let body: Value = serde_json::from_slice(&md.request_body("x")).unwrap();
        assert_eq!(body, serde_json::json!({"content": "x"}));
        assert_eq!(
            md.parse_verdict(br#"{"result":{"block":true,"labels":["spam","abuse"]}}"#),
            Some(Verdict::Flagged(vec!["spam".into(), "abuse".into()]))
        );
        assert_eq!(
            md.parse_verdict(br#"{"result":{"block":false}}"#),
            Some(Verdict::Passed)
        );
        assert_eq!(md.parse_verdict(br#"{"result":{"block":"no"}}"#), None);
        assert_eq!(parse_path("$.a[2]['b c']").unwrap().len(), 3);
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = |j: &str| m(j).unwrap_err().to_string();
        assert_eq!(
            e(r#"{}"#),
            "moderation.cluster: required: the gateway cluster of the moderation service"
        );
        assert_eq!(
            e(r#"{"cluster":"c","timeout_ms":0}"#),
            "moderation.timeout_ms: must be between 1 and 60000"
        );
        assert_eq!(
            e(r#"{"cluster":"c","on_error":"open"}"#),
            "moderation.on_error: unknown variant `open`, expected `allow` or `block`"
        );
        assert_eq!(
            e(r#"{"cluster":"c","mode":"azure"}"#),
            "moderation.mode: unknown variant `azure`, expected `openai` or `generic`"
        );
        assert_eq!(
            e(r#"{"cluster":"c","mode":"generic"}"#),
            "moderation.path: required with mode \"generic\""
        );
        assert_eq!(
            e(r#"{"cluster":"c","mode":"generic","path":"/x","verdict_path":"flagged"}"#),
            "moderation.verdict_path: invalid JSON path: must start with `$`"
        );
        assert_eq!(
            e(r#"{"cluster":"c","thresholds":{"hate":2}}"#),
            "moderation.thresholds.hate: must be between 0 and 1"
        );
        assert!(m(r#"{"enabled":false}"#).unwrap().is_none());
    }

    #[test]
    fn cache_expires_and_is_bounded() {
        let mut c = VerdictCache::default();
        let k = |i: u8| [i; 32];
        c.put(k(1), Verdict::Passed, 0, (2, 100));
        assert_eq!(c.get(&k(1), 50), Some(Verdict::Passed));
        assert_eq!(c.get(&k(1), 100), None);
        for i in 0..10 {
            c.put(k(i), Verdict::Flagged(vec![]), 200, (2, 100));
        }
        assert_eq!(c.len(), 2);
        assert!(c.get(&k(9), 250).is_some() && c.get(&k(0), 250).is_none());
        c.put(k(1), Verdict::Passed, 0, (0, 100));
        assert!(c.get(&k(1), 1).is_none());
    }
}
