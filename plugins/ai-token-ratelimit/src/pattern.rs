//! Value patterns of limit keys: exact, `regexp:<re>`, `*`, and IP addresses or CIDR ranges.

use regex_lite::Regex;
use std::net::IpAddr;

/// How a limit key's value is matched. Every distinct value that matches gets its own
/// counter, whatever the pattern.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// `*`: any value.
    Any,
    /// The value must be exactly this string.
    Exact(String),
    /// `regexp:<re>`: the value must match the regular expression (unanchored, as in Higress;
    /// use `^...$` to anchor).
    Regex(Regex),
    /// An IP address or CIDR range (`10.0.0.0/8`, `2001:db8::/32`); the value must be an IP
    /// address inside it.
    Cidr(Cidr),
}

impl Pattern {
    /// Parses a pattern for string values: `*`, `regexp:<re>`, or an exact value.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text == "*" {
            return Ok(Pattern::Any);
        }
        if let Some(re) = text.strip_prefix("regexp:") {
            if re.is_empty() {
                return Err("empty regular expression after `regexp:`".to_string());
            }
            return Regex::new(re)
                .map(Pattern::Regex)
                .map_err(|e| format!("invalid regular expression: {e}"));
        }
        if text.is_empty() {
            return Err("must not be empty (use \"*\" to match any value)".to_string());
        }
        Ok(Pattern::Exact(text.to_string()))
    }

    /// Parses a pattern for IP values: `*`, an IP address, or a CIDR range.
    pub fn parse_ip(text: &str) -> Result<Pattern, String> {
        if text == "*" {
            return Ok(Pattern::Any);
        }
        Cidr::parse(text).map(Pattern::Cidr)
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(e) => e == value,
            Pattern::Regex(re) => re.is_match(value),
            Pattern::Cidr(c) => value.parse::<IpAddr>().is_ok_and(|ip| c.contains(ip)),
        }
    }
}

/// An IP network: address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `1.2.3.4`, `1.2.3.0/24`, `::1`, `2001:db8::/32`.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (ip, prefix) = match text.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("`{text}`: prefix length must be 0..={max}")),
            },
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside the network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the top `prefix` bits of two `width`-bit numbers are equal.
fn prefix_eq(a: u128, b: u128, width: u32, prefix: u8) -> bool {
    let prefix = u32::from(prefix).min(width);
    if prefix == 0 {
        return true;
    }
    let shift = width - prefix;
    (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_patterns() {
        assert!(Pattern::parse("*").unwrap().matches("anything"));
        let exact = Pattern::parse("alice").unwrap();
        assert!(exact.matches("alice") && !exact.matches("alice2"));
        let re = Pattern::parse("regexp:^a.*").unwrap();
        assert!(re.matches("abc") && !re.matches("bac"));
        assert!(Pattern::parse("regexp:(")
            .unwrap_err()
            .contains("invalid regular expression"));
        assert!(Pattern::parse("regexp:").is_err());
        assert!(Pattern::parse("").is_err());
    }

    #[test]
    fn cidr_matching() {
        let net = Pattern::parse_ip("10.1.0.0/16").unwrap();
        assert!(net.matches("10.1.200.3"));
        assert!(!net.matches("10.2.0.1"));
        assert!(!net.matches("not-an-ip"));
        assert!(net.matches("::ffff:10.1.0.9"), "mapped IPv4");
        let all = Pattern::parse_ip("0.0.0.0/0").unwrap();
        assert!(all.matches("8.8.8.8") && !all.matches("::1"));
        let one = Pattern::parse_ip("1.1.1.1").unwrap();
        assert!(one.matches("1.1.1.1") && !one.matches("1.1.1.2"));
        let v6 = Pattern::parse_ip("2001:db8::/32").unwrap();
        assert!(v6.matches("2001:db8::7") && !v6.matches("2001:db9::7"));
        assert!(Pattern::parse_ip("10.0.0.0/33").is_err());
        assert!(Pattern::parse_ip("10.0.0/8").is_err());
        assert!(Pattern::parse_ip("*").unwrap().matches("x"));
    }
}
