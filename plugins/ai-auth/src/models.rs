//! Model allow/deny lists with `*` wildcards (`gpt-4*`, `*-mini`, `claude-*-sonnet*`, `*`).

/// A model pattern: literal text with `*` matching any run of characters (ASCII case is
/// ignored, as model names are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// A pattern from its text (lowercased once here).
    pub fn new(text: &str) -> Pattern {
        Pattern(text.to_ascii_lowercase())
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
    pub allow: Option<Vec<Pattern>>,
    /// Models refused even when the allow list matches.
    pub deny: Vec<Pattern>,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let p = Pattern::new("gpt-4*");
        assert!(p.matches("gpt-4"));
        assert!(p.matches("GPT-4o-mini"));
        assert!(!p.matches("gpt-3.5-turbo"));
        assert!(Pattern::new("*").matches(""));
        assert!(Pattern::new("*-mini").matches("o4-mini"));
        assert!(!Pattern::new("*-mini").matches("o4-mini-high"));
        assert!(Pattern::new("claude-*-sonnet*").matches("claude-3-7-sonnet-latest"));
        assert!(!Pattern::new("claude-*-sonnet*").matches("claude-3-haiku"));
        assert!(Pattern::new("a*b*c").matches("aXbYbZc"));
        assert!(!Pattern::new("exact").matches("exactly"));
    }

    #[test]
    fn deny_wins() {
        let policy = ModelPolicy {
            allow: Some(vec![Pattern::new("gpt-4*")]),
            deny: vec![Pattern::new("gpt-4-32k*")],
        };
        assert!(policy.permits("gpt-4o"));
        assert!(!policy.permits("gpt-4-32k-0613"));
        assert!(!policy.permits("claude-3"));
        assert!(!policy.permits(""));
        assert!(!ModelPolicy::default().restricts());
        assert!(ModelPolicy::default().permits("anything"));
    }
}
