//! Grok names (`%{MOBILE}`, `%{IP:addr}`...) in regexes, as Higress
//! `replace_roles` writes them; also accepted in `patterns[].regex`.

use super::{err, ConfigError};
use crate::patterns::Builtin;

/// Grok names understood in regexes (`%{NAME}` or `%{NAME:group}`).
fn grok(name: &str) -> Option<&'static str> {
    Some(match name {
        "MOBILE" => r"1[3-9][0-9]{9}",
        "IDCARD" => r"[1-9][0-9]{16}[0-9Xx]",
        "IP" | "IPV4" => {
            r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
        }
        "EMAILLOCALPART" => r"[A-Za-z0-9._%+-]{1,64}",
        "HOSTNAME" => {
            r"[0-9A-Za-z](?:[0-9A-Za-z-]{0,62})(?:\.[0-9A-Za-z](?:[0-9A-Za-z-]{0,62})){0,8}"
        }
        "EMAILADDRESS" => {
            r"[A-Za-z0-9._%+-]{1,64}@[0-9A-Za-z](?:[0-9A-Za-z-]{0,62})(?:\.[0-9A-Za-z](?:[0-9A-Za-z-]{0,62})){0,8}"
        }
        "INT" => r"[+-]?[0-9]{1,20}",
        "NUMBER" => r"[+-]?[0-9]{1,20}(?:\.[0-9]{1,20})?",
        "WORD" => r"\b\w{1,64}\b",
        "NOTSPACE" => r"\S{1,128}",
        "UUID" => r"[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}",
        _ => return None,
    })
}

/// Whole-regex grok names that map to a validated built-in.
pub(super) fn grok_builtin(src: &str) -> Option<Builtin> {
    match src.trim() {
        "%{MOBILE}" => Some(Builtin::PhoneCn),
        "%{IDCARD}" => Some(Builtin::CnId),
        "%{IP}" | "%{IPV4}" => Some(Builtin::Ipv4),
        "%{IPV6}" => Some(Builtin::Ipv6),
        "%{EMAILADDRESS}" => Some(Builtin::Email),
        _ => None,
    }
}

/// Expands `%{NAME}` / `%{NAME:group}` in a regex.
pub(super) fn expand_grok(field: &str, src: &str) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(i) = rest.find("%{") {
        out.push_str(rest.get(..i).unwrap_or(""));
        let after = rest.get(i + 2..).unwrap_or("");
        let Some(close) = after.find('}') else {
            return err(field, "unclosed %{ in grok pattern");
        };
        let inner = after.get(..close).unwrap_or("");
        let (name, group) = match inner.split_once(':') {
            Some((n, g)) => (n, Some(g)),
            None => (inner, None),
        };
        let Some(body) = grok(name) else {
            return err(field, format!("unknown grok pattern %{{{name}}}"));
        };
        match group {
            Some(g) => {
                if g.is_empty() || !g.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return err(field, format!("bad grok group name \"{g}\""));
                }
                out.push_str(&format!("(?P<{g}>{body})"));
            }
            None => {
                out.push_str("(?:");
                out.push_str(body);
                out.push(')');
            }
        }
        rest = after.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(out)
}
