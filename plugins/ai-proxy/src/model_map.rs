//! Model-name mapping: rewrites the model a client asked for into the upstream's name.
//!
//! Rules are tried in configuration order and the first match wins. Pattern syntax:
//! - `gpt-4o` — exact match;
//! - `gpt-4*` — prefix match;
//! - `*` — anything;
//! - `~<regex>` — a regular expression (unanchored unless it says `^`/`$`); the target may use
//!   capture groups as `$1` or `${1}` (write `${1}x` when a letter or digit follows), and
//!   named groups as `${name}`.
//!
//! An empty target keeps the client's model name unchanged.
//!
//! Regexes use `regex-lite` (linear time, ASCII-only `\d`/`\w`/`\s` classes; about 120 KB of
//! wasm against 400-1100 KB for the full `regex` crate).

use regex_lite::Regex;
use std::borrow::Cow;

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Prefix(String),
    Any,
    Regex(Regex),
}

/// One mapping rule.
#[derive(Debug, Clone)]
struct Rule {
    pattern: Pattern,
    target: String,
}

/// An ordered list of mapping rules.
#[derive(Debug, Clone, Default)]
pub struct ModelMap {
    rules: Vec<Rule>,
}

/// A rule that could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMapError {
    /// The offending pattern.
    pub pattern: String,
    /// Why it is invalid.
    pub reason: String,
}

impl std::fmt::Display for ModelMapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "modelMapping: invalid pattern `{}`: {}",
            self.pattern, self.reason
        )
    }
}

impl std::error::Error for ModelMapError {}

/// The largest compiled regex accepted per rule, to bound memory.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

impl ModelMap {
    /// Compiles `(pattern, target)` rules in order.
    pub fn new<P: AsRef<str>, T: AsRef<str>>(rules: &[(P, T)]) -> Result<Self, ModelMapError> {
        let mut out = Vec::with_capacity(rules.len());
        for (p, t) in rules {
            let (p, t) = (p.as_ref(), t.as_ref());
            let pattern = if let Some(re) = p.strip_prefix('~') {
                let compiled = regex_lite::RegexBuilder::new(re)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| ModelMapError {
                        pattern: p.to_string(),
                        reason: e.to_string(),
                    })?;
                Pattern::Regex(compiled)
            } else if p == "*" {
                Pattern::Any
            } else if let Some(prefix) = p.strip_suffix('*') {
                if prefix.contains('*') {
                    return Err(ModelMapError {
                        pattern: p.to_string(),
                        reason: "only a trailing `*` is supported; use `~regex` for more".into(),
                    });
                }
                Pattern::Prefix(prefix.to_string())
            } else if p.is_empty() {
                return Err(ModelMapError {
                    pattern: p.to_string(),
                    reason: "empty pattern".into(),
                });
            } else if p.contains('*') {
                return Err(ModelMapError {
                    pattern: p.to_string(),
                    reason: "only a trailing `*` is supported; use `~regex` for more".into(),
                });
            } else {
                Pattern::Exact(p.to_string())
            };
            out.push(Rule {
                pattern,
                target: t.to_string(),
            });
        }
        Ok(ModelMap { rules: out })
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The upstream model for `model`, or `None` when no rule matches (the caller then keeps
    /// the name or rejects the request, as configured).
    pub fn map<'a>(&'a self, model: &'a str) -> Option<Cow<'a, str>> {
        for r in &self.rules {
            let keep = r.target.is_empty();
            match &r.pattern {
                Pattern::Exact(e) if e == model => {}
                Pattern::Prefix(p) if model.starts_with(p.as_str()) => {}
                Pattern::Any => {}
                Pattern::Regex(re) => {
                    let Some(caps) = re.captures(model) else {
                        continue;
                    };
                    if keep {
                        return Some(Cow::Borrowed(model));
                    }
                    let mut dst = String::new();
                    caps.expand(&r.target, &mut dst);
                    return Some(Cow::Owned(dst));
                }
                _ => continue,
            }
            return Some(Cow::Borrowed(if keep { model } else { r.target.as_str() }));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_in_order() {
        let m = ModelMap::new(&[
            ("gpt-4o", "qwen-max"),
            ("~^claude-(\\d+)-(\\w+)$", "anthropic.claude-${1}-$2-v1:0"),
            ("gpt-4*", "qwen-plus"),
            ("keep-me", ""),
            ("*", "qwen-turbo"),
        ])
        .unwrap();
        assert_eq!(m.map("gpt-4o").as_deref(), Some("qwen-max"));
        assert_eq!(m.map("gpt-4o-mini").as_deref(), Some("qwen-plus"));
        assert_eq!(
            m.map("claude-3-haiku").as_deref(),
            Some("anthropic.claude-3-haiku-v1:0")
        );
        assert_eq!(m.map("keep-me").as_deref(), Some("keep-me"));
        assert_eq!(m.map("anything").as_deref(), Some("qwen-turbo"));
        let none = ModelMap::new(&[("a", "b")]).unwrap();
        assert_eq!(none.map("c"), None);
    }

    #[test]
    fn bad_patterns_name_the_rule() {
        let e = ModelMap::new(&[("~(", "x")]).unwrap_err();
        assert_eq!(e.pattern, "~(");
        assert!(e.to_string().contains("modelMapping"));
        assert!(ModelMap::new(&[("a*b", "x")]).is_err());
        assert!(ModelMap::new(&[("a**", "x")]).is_err());
        assert!(ModelMap::new(&[("", "x")]).is_err());
    }
}
