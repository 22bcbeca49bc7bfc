//! Which models a consumer may use: allow/deny lists of `*` wildcard patterns (`gpt-4*`,
//! `*-mini`, `claude-*-sonnet*`, `*`), and the header that carries a consumer's policy from
//! the authenticating plugin (ai-auth) to later ones (ai-proxy lists only those models on
//! `GET /v1/models`).
//!
//! The header value is the allow patterns, then the deny patterns each prefixed with `!`,
//! comma separated; an absent allow list is `*`:
//!
//! ```
//! use aigw::llm::access::{ModelPattern, ModelPolicy};
//!
//! let policy = ModelPolicy {
//!     allow: Some(vec![ModelPattern::new("gpt-4*"), ModelPattern::new("claude-*")]),
//!     deny: vec![ModelPattern::new("gpt-4-32k*")],
//! };
//! let header = policy.to_header();
//! assert_eq!(header, "gpt-4*,claude-*,!gpt-4-32k*");
//! let back = ModelPolicy::from_header(&header);
//! assert!(back.permits("gpt-4o") && !back.permits("gpt-4-32k") && !back.permits("o3"));
//! ```

/// The default header carrying a consumer's model policy between plugins (declared in
/// [`crate::contract`]).
pub use crate::contract::ALLOWED_MODELS_HEADER;

/// A model pattern: literal text with `*` matching any run of characters (ASCII case is
/// ignored, as model names are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPattern(String);

impl ModelPattern {
    /// A pattern from its text (lowercased once here).
    pub fn new(text: &str) -> ModelPattern {
        ModelPattern(text.to_ascii_lowercase())
    }

    /// The pattern as configured (lowercased).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `model` matches.
    pub fn matches(&self, model: &str) -> bool {
        glob(self.0.as_bytes(), model.to_ascii_lowercase().as_bytes())
    }
}

/// Iterative glob with single-star backtracking: linear in practice, no recursion.
fn glob(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if Some(c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat.get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// A consumer's model policy: allowed unless denied; when an allow list is set, only models
/// it matches are allowed. Deny wins over allow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelPolicy {
    /// `None`: every model not denied is allowed.
    pub allow: Option<Vec<ModelPattern>>,
    /// Models refused even when the allow list matches.
    pub deny: Vec<ModelPattern>,
}

impl ModelPolicy {
    /// Whether the policy restricts anything (otherwise the body need not be read).
    pub fn restricts(&self) -> bool {
        self.allow.is_some() || !self.deny.is_empty()
    }

    /// Whether `model` may be used.
    pub fn permits(&self, model: &str) -> bool {
        if self.deny.iter().any(|p| p.matches(model)) {
            return false;
        }
        match &self.allow {
            Some(allow) => allow.iter().any(|p| p.matches(model)),
            None => true,
        }
    }

    /// The policy as a header value (see the module docs).
    pub fn to_header(&self) -> String {
        let mut out = String::new();
        match &self.allow {
            Some(list) => {
                for p in list {
                    push_item(&mut out, "", p.as_str());
                }
            }
            None => push_item(&mut out, "", "*"),
        }
        for p in &self.deny {
            push_item(&mut out, "!", p.as_str());
        }
        out
    }

    /// Reads a header value written by [`ModelPolicy::to_header`]. Empty items are skipped;
    /// a value with no allow pattern allows nothing (only what a writer could have meant by
    /// an empty allow list).
    pub fn from_header(value: &str) -> ModelPolicy {
        let mut allow = Vec::new();
        let mut deny = Vec::new();
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.strip_prefix('!') {
                Some(p) => deny.push(ModelPattern::new(p.trim())),
                None => allow.push(ModelPattern::new(item)),
            }
        }
        ModelPolicy {
            allow: Some(allow),
            deny,
        }
    }
}

/// Why a configured model pattern cannot be carried in the policy header.
pub fn pattern_problem(pattern: &str) -> Option<&'static str> {
    if pattern.trim().is_empty() {
        Some("a model pattern cannot be empty")
    } else if pattern.contains(',') {
        Some("a model pattern cannot contain ','")
    } else if pattern.trim_start().starts_with('!') {
        Some("a model pattern cannot start with '!'")
    } else {
        None
    }
}

fn push_item(out: &mut String, prefix: &str, pattern: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(prefix);
    out.push_str(pattern);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let p = ModelPattern::new("gpt-4*");
        assert!(p.matches("gpt-4"));
        assert!(p.matches("GPT-4o-mini"));
        assert!(!p.matches("gpt-3.5-turbo"));
        assert!(ModelPattern::new("*").matches(""));
        assert!(ModelPattern::new("*-mini").matches("o4-mini"));
        assert!(!ModelPattern::new("*-mini").matches("o4-mini-high"));
        assert!(ModelPattern::new("claude-*-sonnet*").matches("claude-3-7-sonnet-latest"));
        assert!(!ModelPattern::new("claude-*-sonnet*").matches("claude-3-haiku"));
        assert!(ModelPattern::new("a*b*c").matches("aXbYbZc"));
        assert!(!ModelPattern::new("exact").matches("exactly"));
    }

    #[test]
    fn deny_wins() {
        let policy = ModelPolicy {
            allow: Some(vec![ModelPattern::new("gpt-4*")]),
            deny: vec![ModelPattern::new("gpt-4-32k*")],
        };
        assert!(policy.permits("gpt-4o"));
        assert!(!policy.permits("gpt-4-32k-0613"));
        assert!(!policy.permits("claude-3"));
        assert!(!policy.permits(""));
        assert!(!ModelPolicy::default().restricts());
        assert!(ModelPolicy::default().permits("anything"));
    }

    #[test]
    fn header_round_trip() {
        let open = ModelPolicy::default();
        assert_eq!(open.to_header(), "*");
        assert!(ModelPolicy::from_header("*").permits("anything"));
        let denied = ModelPolicy {
            allow: None,
            deny: vec![ModelPattern::new("o1*")],
        };
        assert_eq!(denied.to_header(), "*,!o1*");
        let back = ModelPolicy::from_header(&denied.to_header());
        assert!(back.permits("gpt-4o") && !back.permits("o1-mini"));
        // Spaces and empty items are tolerated; nothing allowed means nothing.
        let odd = ModelPolicy::from_header(" gpt-4o , ,! gpt-4o-mini ");
        assert!(odd.permits("GPT-4o") && !odd.permits("gpt-4o-mini"));
        assert!(!ModelPolicy::from_header("").permits("gpt-4o"));
        assert!(!ModelPolicy::from_header("!x").permits("gpt-4o"));
    }

    #[test]
    fn patterns_that_cannot_travel() {
        assert_eq!(pattern_problem("gpt-4*"), None);
        assert!(pattern_problem("a,b").is_some());
        assert!(pattern_problem("!a").is_some());
        assert!(pattern_problem(" ").is_some());
    }
}
