//! Finding the client's credential in headers or the query string, matching it against the
//! configured digests in constant time, and removing it before the request goes upstream.

use crate::config::Consumer;
use aigw::hash::{digest_eq, sha256};

/// Where a credential was found (so it can be removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A request header (lowercase name).
    Header(String),
    /// A query parameter.
    Query(String),
}

/// The credential value in a header: `Authorization` takes the `Bearer` scheme (any case);
/// other headers are taken as they are. Surrounding whitespace is ignored.
pub fn from_header(name: &str, value: &str) -> Option<String> {
    let value = value.trim();
    let value = if name == "authorization" {
        let (scheme, rest) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        rest.trim()
    } else {
        value
    };
    (!value.is_empty()).then(|| value.to_string())
}

/// The decoded values of query parameter `name` in `path` (`/x?a=1&b=2`).
pub fn from_query(path: &str, name: &str) -> Vec<String> {
    let Some((_, query)) = path.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k).eq_ignore_ascii_case(name)).then(|| percent_decode(v))
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// `path` without the query parameters named in `names` (case-insensitive).
pub fn strip_query(path: &str, names: &[String]) -> String {
    let Some((base, query)) = path.split_once('?') else {
        return path.to_string();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let k = pair.split_once('=').map_or(*pair, |(k, _)| k);
            let k = percent_decode(k);
            !pair.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(&k))
        })
        .collect();
    let mut out = base.to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The consumer owning `credential`, if any.
///
/// The credential is hashed once and compared with every configured digest of every
/// consumer, without stopping at the first match, so the time taken does not depend on the
/// credential's content nor on which consumer (if any) it belongs to.
pub fn find_consumer<'a>(consumers: &'a [Consumer], credential: &str) -> Option<&'a Consumer> {
    let digest = sha256(credential.as_bytes());
    let mut found: Option<&Consumer> = None;
    for consumer in consumers {
        let mut hit = false;
        for d in &consumer.digests {
            hit |= digest_eq(d, &digest);
        }
        // Credentials are unique across consumers (checked at configure time), so at most
        // one consumer hits; the loop still runs to the end.
        if hit {
            found = Some(consumer);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw::llm::access::ModelPolicy;

    #[test]
    fn header_forms() {
        assert_eq!(
            from_header("authorization", "Bearer sk-1"),
            Some("sk-1".into())
        );
        assert_eq!(
            from_header("authorization", "bearer   sk-1 "),
            Some("sk-1".into())
        );
        assert_eq!(from_header("authorization", "Basic Zm9vOmJhcg=="), None);
        assert_eq!(from_header("authorization", "sk-1"), None);
        assert_eq!(from_header("x-api-key", " sk-2 "), Some("sk-2".into()));
        assert_eq!(from_header("x-api-key", "  "), None);
    }

    #[test]
    fn query_read_and_strip() {
        let p = "/v1/chat?x=1&api-key=sk%2D9&y=2";
        assert_eq!(from_query(p, "api-key"), vec!["sk-9".to_string()]);
        assert!(from_query("/v1/chat", "api-key").is_empty());
        let names = vec!["api-key".to_string()];
        assert_eq!(strip_query(p, &names), "/v1/chat?x=1&y=2");
        assert_eq!(strip_query("/a?api-key=1", &names), "/a");
        assert_eq!(strip_query("/a?API-KEY=1#f", &names), "/a#f");
        assert_eq!(strip_query("/a", &names), "/a");
    }

    #[test]
    fn finds_by_digest() {
        let consumers = vec![
            Consumer {
                name: "a".into(),
                digests: vec![sha256(b"k1"), sha256(b"k2")],
                models: ModelPolicy::default(),
            },
            Consumer {
                name: "b".into(),
                digests: vec![sha256(b"k3")],
                models: ModelPolicy::default(),
            },
        ];
        assert_eq!(
            find_consumer(&consumers, "k2").map(|c| c.name.as_str()),
            Some("a")
        );
        assert_eq!(
            find_consumer(&consumers, "k3").map(|c| c.name.as_str()),
            Some("b")
        );
        assert!(find_consumer(&consumers, "k4").is_none());
    }
}
