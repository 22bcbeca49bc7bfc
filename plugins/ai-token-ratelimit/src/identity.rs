//! Which limits apply to a request and under which identity: key values from headers, query
//! parameters, cookies, client IP, model and route, and the stable hash that names a counter.
//!
//! Identities are hashed (FNV-1a, 64 bit) before they reach shared data or Redis, so API keys,
//! cookies and other secrets never appear in counter names.

use crate::config::{Group, Source};
use aigw::llm::Api;

/// A limit that applies to a request: where it is in the configuration and the identity
/// (hash of its key values) whose counter it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Index of the group.
    pub group: usize,
    /// Index of the limit in its group.
    pub limit: usize,
    /// The identity hash (never 0).
    pub id: u64,
}

/// The limits that apply, given a lookup of key values. In a first-match group only the
/// first limit whose key parts all have matching values applies; in other groups each
/// limit applies on its own. A limit whose key part has no value does not apply.
pub fn select<'a>(groups: &[Group], lookup: impl Fn(&Source) -> Option<&'a str>) -> Vec<Applied> {
    let mut out = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for (l, limit) in group.limits.iter().enumerate() {
            let mut hash = aigw::hash::Fnv1a::new();
            let mut all = true;
            for dim in &limit.dims {
                match lookup(&dim.source) {
                    Some(v) if dim.pattern.matches(v) => {
                        hash.write(v.as_bytes());
                        hash.write(&[0x1f]);
                    }
                    _ => {
                        all = false;
                        break;
                    }
                }
            }
            if all {
                out.push(Applied {
                    group: g,
                    limit: l,
                    // Never 0: 0 marks an empty counter slot.
                    id: hash.finish().max(1),
                });
                if group.first_match {
                    break;
                }
            }
        }
    }
    out
}

/// The API key of a request: `Authorization: Bearer <key>`, else `x-api-key`, else `api-key`.
pub fn api_key(header: impl Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(auth) = header("authorization") {
        let auth = auth.trim();
        let key = match auth.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => auth,
        };
        if !key.is_empty() {
            return Some(key.to_string());
        }
    }
    ["x-api-key", "api-key"]
        .iter()
        .filter_map(|h| header(h))
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
}

/// The first value of query parameter `name` in a `:path`, percent-decoded (`+` is a space).
pub fn query_param(path: &str, name: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of cookie `name` in a `cookie` header.
pub fn cookie(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The address part of `source.address` (`1.2.3.4:5678` → `1.2.3.4`, `[::1]:80` → `::1`).
pub fn strip_port(addr: &str) -> &str {
    let addr = addr.trim();
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.matches(':').count() {
        1 => addr.split(':').next().unwrap_or(addr),
        _ => addr,
    }
}

/// The client IP: with `hops` > 0 the `hops`-th address from the right of `x-forwarded-for`
/// (each trusted proxy appended one), else (or when the header is shorter) the peer.
pub fn client_ip(xff: Option<&str>, peer: &str, hops: u32) -> String {
    if hops > 0 {
        if let Some(xff) = xff {
            let parts: Vec<&str> = xff
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            let n = hops as usize;
            if parts.len() >= n {
                if let Some(ip) = parts.get(parts.len() - n) {
                    return strip_port(ip).to_string();
                }
            }
        }
    }
    strip_port(peer).to_string()
}

/// The first address of a header such as `x-forwarded-for` (Higress `from-header-<name>`; the
/// client controls it unless a trusted proxy rewrites the header).
pub fn leftmost_ip(value: &str) -> Option<String> {
    value
        .split(',')
        .map(str::trim)
        .find(|p| !p.is_empty())
        .map(|p| strip_port(p).to_string())
}

/// The model named in a Gemini or Bedrock path (`/v1beta/models/<model>:generateContent`),
/// compared in its normalised spelling (`claud%65` is `claude`).
pub fn model_from_path(api: Option<Api>, path: &str) -> Option<String> {
    api.and_then(|a| a.model_in_path(path))
}

/// The identity of a `by: api_key` limit: the fingerprint ([`aigw::contract::key_id`]) of
/// the key in the request, else the fingerprint an authenticating plugin (ai-auth, which
/// removes the key) published. Both are the same for one key, so a key counts in one bucket
/// whichever way the limiter learns it.
pub fn api_key_id(
    header: impl Fn(&str) -> Option<String>,
    published: impl FnOnce() -> Option<String>,
) -> Option<String> {
    match api_key(header) {
        Some(key) => Some(aigw::contract::key_id(&key)),
        None => published(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Source};
    use aigw::config::parse;

    #[test]
    fn api_key_sources() {
        let h = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            api_key(h(&[("authorization", "Bearer sk-1")])),
            Some("sk-1".into())
        );
        assert_eq!(
            api_key(h(&[("authorization", "bearer  sk-2 ")])),
            Some("sk-2".into())
        );
        assert_eq!(api_key(h(&[("x-api-key", "ak")])), Some("ak".into()));
        assert_eq!(api_key(h(&[("api-key", "az")])), Some("az".into()));
        assert_eq!(api_key(h(&[])), None);
    }

    #[test]
    fn query_and_cookie() {
        assert_eq!(
            query_param("/v1/x?a=1&apikey=k%2F1+2", "apikey"),
            Some("k/1 2".into())
        );
        assert_eq!(query_param("/v1/x?apikey", "apikey"), Some(String::new()));
        assert_eq!(query_param("/v1/x?a=1", "apikey"), None);
        assert_eq!(query_param("/v1/x", "a"), None);
        assert_eq!(query_param("/v1/x?a=%zz", "a"), Some("%zz".into()));
        assert_eq!(
            cookie("a=1; session=\"abc\"; b=2", "session"),
            Some("abc".into())
        );
        assert_eq!(cookie("a=1", "session"), None);
    }

    #[test]
    fn ip_sources() {
        assert_eq!(strip_port("10.0.0.1:5555"), "10.0.0.1");
        assert_eq!(strip_port("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(strip_port("2001:db8::1"), "2001:db8::1");
        let xff = Some("6.6.6.6, 1.2.3.4, 10.0.0.2");
        assert_eq!(client_ip(xff, "10.0.0.3:1", 0), "10.0.0.3");
        assert_eq!(client_ip(xff, "10.0.0.3:1", 1), "10.0.0.2");
        assert_eq!(client_ip(xff, "10.0.0.3:1", 2), "1.2.3.4");
        assert_eq!(
            client_ip(xff, "10.0.0.3:1", 4),
            "10.0.0.3",
            "short header: the peer"
        );
        assert_eq!(client_ip(None, "10.0.0.3:1", 2), "10.0.0.3");
        assert_eq!(leftmost_ip(" 6.6.6.6 , 1.2.3.4"), Some("6.6.6.6".into()));
        assert_eq!(leftmost_ip(""), None);
    }

    #[test]
    fn gemini_model_in_path() {
        let m = |path: &str| model_from_path(Api::classify("POST", path, None), path);
        assert_eq!(
            m("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"),
            Some("gemini-2.0-flash".into())
        );
        assert_eq!(m("/v1/chat/completions"), None);
        // A limit on `gemini-2.0-flash` holds however the client spells the path.
        assert_eq!(
            m("/v1beta/models/g%65mini-2.0-flash:generateContent"),
            Some("gemini-2.0-flash".into())
        );
    }

    #[test]
    fn api_key_ids_are_one_bucket_with_or_without_ai_auth() {
        let direct = api_key_id(
            |h: &str| (h == "authorization").then(|| "Bearer sk-web-1".to_string()),
            || panic!("not read when the key is there"),
        );
        // Behind ai-auth: no key header, ai-auth's fingerprint of the same key.
        let behind_auth = api_key_id(|_: &str| None, || Some(aigw::contract::key_id("sk-web-1")));
        assert_eq!(direct, behind_auth);
        assert_eq!(direct, Some(aigw::contract::key_id("sk-web-1")));
        assert_ne!(direct.as_deref(), Some("sk-web-1"), "never the key itself");
        assert_eq!(api_key_id(|_: &str| None, || None), None);
    }

    #[test]
    fn selection_first_match_and_independent() {
        let c: Config = parse(
            br#"{"rule_name":"r","rule_items":[
                {"limit_by_header":"x-k","limit_keys":[{"key":"vip","token_per_minute":100}]},
                {"limit_by_per_header":"x-k","limit_keys":[{"key":"regexp:^a","token_per_minute":10},{"key":"*","token_per_minute":1}]}
            ]}"#,
        )
        .unwrap();
        let groups = &c.groups;
        let run = |v: Option<&'static str>| {
            select(groups, |s| match s {
                Source::Header(h) if h == "x-k" => v,
                _ => None,
            })
        };
        assert_eq!(
            run(Some("vip")).iter().map(|a| a.limit).collect::<Vec<_>>(),
            vec![0]
        );
        assert_eq!(
            run(Some("abc")).iter().map(|a| a.limit).collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(
            run(Some("zzz")).iter().map(|a| a.limit).collect::<Vec<_>>(),
            vec![2]
        );
        assert!(run(None).is_empty());
        // Distinct values, distinct identities; same value, same identity.
        assert_ne!(run(Some("abc"))[0].id, run(Some("abd"))[0].id);
        assert_eq!(run(Some("zzz"))[0].id, run(Some("zzz"))[0].id);

        let c: Config = parse(
            br#"{"limits":[
                {"name":"a","key":[{"by":"consumer"},{"by":"model"}],"per_minute":10},
                {"name":"b","key":[{"by":"consumer","match":"bob"}],"per_minute":10},
                {"name":"c","per_minute":10}
            ]}"#,
        )
        .unwrap();
        let picked = select(&c.groups, |s| match s {
            Source::Consumer => Some("alice"),
            Source::Model => Some("gpt-4o"),
            _ => None,
        });
        assert_eq!(
            picked.iter().map(|a| a.group).collect::<Vec<_>>(),
            vec![0, 2]
        );
    }
}
