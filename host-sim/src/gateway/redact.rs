//! Credentials kept out of the gateway's access log.
//!
//! Clients put API keys in query strings (`?key=` for Gemini, `?api_key=`, `?access_token=`).
//! ai-auth strips them before the request goes upstream, but the access log records the path
//! the client sent, so the log would keep the key. Envoy users redact such parameters with
//! access-log formatters; the local gateway does it for the well-known names.

use std::borrow::Cow;

/// Query parameters whose values never reach the access log (compared case-insensitively,
/// after percent-decoding the name).
pub const CREDENTIAL_PARAMS: &[&str] = &[
    "key",
    "api_key",
    "api-key",
    "apikey",
    "x-api-key",
    "access_token",
    "token",
    "auth",
    "authorization",
    "password",
    "secret",
    "client_secret",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-security-token",
    "x-goog-api-key",
];

/// `path` with the value of every credential query parameter replaced by `REDACTED`.
pub fn redact_query(path: &str) -> Cow<'_, str> {
    let Some((base, query)) = path.split_once('?') else {
        return Cow::Borrowed(path);
    };
    let mut changed = false;
    let parts: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !value.is_empty() && is_credential(name) {
                changed = true;
                Cow::Owned(format!("{name}=REDACTED"))
            } else {
                Cow::Borrowed(pair)
            }
        })
        .collect();
    if !changed {
        return Cow::Borrowed(path);
    }
    Cow::Owned(format!("{base}?{}", parts.join("&")))
}

fn is_credential(name: &str) -> bool {
    let decoded = percent_decode(name);
    CREDENTIAL_PARAMS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(decoded.trim()))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(if b[i] == b'+' { b' ' } else { b[i] });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credential_values_only() {
        assert_eq!(redact_query("/v1/models"), "/v1/models");
        assert_eq!(
            redact_query("/v1beta/models/g:generateContent?alt=sse&key=AIzaSECRET"),
            "/v1beta/models/g:generateContent?alt=sse&key=REDACTED"
        );
        assert_eq!(
            redact_query("/x?API_KEY=s1&%6Bey=s2&keys=kept&token="),
            "/x?API_KEY=REDACTED&%6Bey=REDACTED&keys=kept&token="
        );
    }
}
