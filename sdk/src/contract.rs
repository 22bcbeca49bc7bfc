//! What the plugins of the pack tell each other: header names, filter-state property names
//! and the records published under them.
//!
//! Plugins in one filter chain share a request through its headers and through filter state
//! (`proxy_set_property`, Envoy's `wasm.<name>` filter state). Each name and record shape is
//! declared here once, so the plugin that writes it and the plugins that read it cannot drift
//! apart. The wire formats are stable (access logs and Higress-compatible tooling read them).
//!
//! | name | kind | written by | read by |
//! | --- | --- | --- | --- |
//! | [`CONSUMER_HEADER`] | request header | ai-auth | ai-statistics, ai-token-ratelimit, ai-cache, ai-proxy |
//! | [`ALLOWED_MODELS_HEADER`] | request header | ai-auth | ai-proxy (`GET /v1/models`) |
//! | [`MODEL_HEADER`] | request header (client), response header (ai-proxy) | client, ai-proxy | ai-auth, ai-statistics |
//! | [`PROVIDER_HEADER`] | response header | ai-proxy | clients, logs |
//! | [`CLUSTER_HEADER`] | request header | ai-proxy | the router (`cluster_header`) |
//! | [`CACHE_STATUS_HEADER`] | response header | ai-cache | ai-token-ratelimit |
//! | [`USAGE_PROPERTY`] ([`UsageRecord`]) | filter state | ai-proxy, ai-cache | ai-statistics, ai-token-ratelimit |
//! | [`AUTH_KEY_ID_PROPERTY`] ([`key_id`]) | filter state | ai-auth | ai-token-ratelimit (`by: api_key`) |
//! | [`GUARD_QUESTION_PROPERTY`], [`GUARD_ANSWER_PROPERTY`] ([`GuardRecord`]) | filter state | ai-guard | ai-statistics |
//! | [`LOG_PROPERTY`] | filter state | ai-statistics | access logs |

use crate::host::{self, HostError};
use crate::llm::Usage;
use serde::{Deserialize, Serialize};

// ---- headers ------------------------------------------------------------------------------

/// The request header naming the authenticated consumer (Higress's name; ai-auth sets it and
/// removes a client-sent value).
pub const CONSUMER_HEADER: &str = "x-mse-consumer";

/// The request header carrying the consumer's model policy from ai-auth to later plugins
/// ([`crate::llm::access::ModelPolicy::to_header`] format).
pub const ALLOWED_MODELS_HEADER: &str = "x-aigw-allowed-models";

/// The model header: a client may name the model in it before the body (ai-auth checks it);
/// ai-proxy answers with the upstream model in it.
pub const MODEL_HEADER: &str = "x-aigw-model";

/// The response header naming the provider ai-proxy used.
pub const PROVIDER_HEADER: &str = "x-aigw-provider";

/// The request header ai-proxy sets to the upstream cluster (for Envoy's `cluster_header`).
pub const CLUSTER_HEADER: &str = "x-aigw-cluster";

/// The response header with ai-cache's verdict (`hit`, `miss`, `bypass`, `refresh`).
pub const CACHE_STATUS_HEADER: &str = "x-cache-status";

// ---- filter-state properties ----------------------------------------------------------------

/// The usage of a response ([`UsageRecord`]), `wasm.aigw.usage` in Envoy.
pub const USAGE_PROPERTY: &str = "aigw.usage";

/// ai-statistics' access-log record (one JSON object), `wasm.aigw.log` in Envoy.
pub const LOG_PROPERTY: &str = "aigw.log";

/// ai-guard's masked question ([`GuardRecord`]), `wasm.aigw.guard.question` in Envoy.
pub const GUARD_QUESTION_PROPERTY: &str = "aigw.guard.question";

/// ai-guard's answer before masked values were restored ([`GuardRecord`]),
/// `wasm.aigw.guard.answer` in Envoy.
pub const GUARD_ANSWER_PROPERTY: &str = "aigw.guard.answer";

/// The fingerprint ([`key_id`]) of the API key ai-auth authenticated the request with, never the
/// key itself; `wasm.aigw.auth.key_id` in Envoy.
pub const AUTH_KEY_ID_PROPERTY: &str = "aigw.auth.key_id";

fn read_property(name: &str) -> Option<Vec<u8>> {
    match host::get_property(&[name]) {
        Ok(v) => v,
        Err(e) => {
            crate::debug!("cannot read {name}: {e}");
            None
        }
    }
}

// ---- usage ----------------------------------------------------------------------------------

/// The usage of one response as published in [`USAGE_PROPERTY`]:
/// `{"input","output","total","cached_input","reasoning","model","provider"}` (token counts in
/// [`Usage`]'s normalised sense; `model` and `provider` only when known).
///
/// Reading is lenient: missing counters are 0, unknown fields are ignored.
///
/// ```
/// use aigw::contract::UsageRecord;
///
/// let r = UsageRecord::parse(br#"{"input":10,"output":5,"cached_input":20}"#).unwrap();
/// let u = r.usage();
/// assert_eq!((u.total, u.cached_input), (15, 10));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsageRecord {
    /// Prompt tokens, cached ones included.
    pub input: u64,
    /// Output tokens, reasoning included.
    pub output: u64,
    /// Total tokens (0 when unknown: read as `input + output`).
    pub total: u64,
    /// Prompt tokens read from a cache.
    pub cached_input: u64,
    /// Reasoning tokens.
    pub reasoning: u64,
    /// The model that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The provider that answered (ai-proxy's provider id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl UsageRecord {
    /// A record of `usage`, without model or provider.
    pub fn from_usage(usage: &Usage) -> UsageRecord {
        UsageRecord {
            input: usage.input,
            output: usage.output,
            total: usage.total,
            cached_input: usage.cached_input,
            reasoning: usage.reasoning,
            model: None,
            provider: None,
        }
    }

    /// The record as [`Usage`]: a 0 total is `input + output`, cached input at most input.
    pub fn usage(&self) -> Usage {
        Usage {
            input: self.input,
            output: self.output,
            total: if self.total > 0 {
                self.total
            } else {
                self.input.saturating_add(self.output)
            },
            cached_input: self.cached_input.min(self.input),
            reasoning: self.reasoning,
            cache_creation_input: None,
        }
    }

    /// The property value (JSON).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a property value; `None` when it is not a JSON object of this shape.
    pub fn parse(bytes: &[u8]) -> Option<UsageRecord> {
        // serde would also read the struct from an array; only an object is a record.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        serde_json::from_slice(bytes).ok()
    }

    /// Publishes the record in [`USAGE_PROPERTY`] (from a stream context).
    pub fn publish(&self) -> Result<(), HostError> {
        host::set_property(&[USAGE_PROPERTY], &self.to_json())
    }

    /// The record published for this stream, if any (and readable).
    pub fn read() -> Option<UsageRecord> {
        read_property(USAGE_PROPERTY).and_then(|b| UsageRecord::parse(&b))
    }
}

// ---- authenticated key ----------------------------------------------------------------------

/// The fingerprint of an API key: the first 16 hex digits (64 bits) of its SHA-256. It names
/// a key in counters and between plugins without revealing it; ai-auth publishes it in
/// [`AUTH_KEY_ID_PROPERTY`] and ai-token-ratelimit keys `by: api_key` limits on it, so a key
/// counts in one bucket whether the limiter sees the key itself or only ai-auth's fingerprint.
///
/// ```
/// assert_eq!(aigw::contract::key_id("sk-test").len(), 16);
/// assert_ne!(aigw::contract::key_id("sk-a"), aigw::contract::key_id("sk-b"));
/// ```
pub fn key_id(key: &str) -> String {
    let digest = crate::hash::sha256(key.as_bytes());
    let mut out = String::with_capacity(16);
    crate::hash::push_hex(&mut out, &digest, 8);
    out
}

/// Publishes the fingerprint of the key a request authenticated with (ai-auth).
pub fn publish_key_id(id: &str) -> Result<(), HostError> {
    host::set_property(&[AUTH_KEY_ID_PROPERTY], id.as_bytes())
}

/// The fingerprint an authenticating plugin published for this stream, if any.
pub fn read_key_id() -> Option<String> {
    let bytes = read_property(AUTH_KEY_ID_PROPERTY)?;
    let id = String::from_utf8(bytes).ok()?;
    (!id.is_empty()).then_some(id)
}

// ---- guarded texts --------------------------------------------------------------------------

/// Which text ai-guard published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardText {
    /// The masked question ([`GUARD_QUESTION_PROPERTY`]).
    Question,
    /// The answer before restore ([`GUARD_ANSWER_PROPERTY`]).
    Answer,
}

impl GuardText {
    /// The property name.
    pub fn property(self) -> &'static str {
        match self {
            GuardText::Question => GUARD_QUESTION_PROPERTY,
            GuardText::Answer => GUARD_ANSWER_PROPERTY,
        }
    }
}

/// What ai-guard publishes for a question or answer: the text as the upstream saw or produced
/// it, `{"text": "...", "truncated": bool, "complete": bool}`, or why no text may be logged,
/// `{"withheld": "blocked" | "unchecked"}`.
///
/// ```
/// use aigw::contract::GuardRecord;
///
/// let r = GuardRecord::Text { text: "Hi [EMAIL_1]".into(), truncated: false, complete: true };
/// assert_eq!(GuardRecord::parse(r.to_json().as_bytes()), r);
/// assert_eq!(GuardRecord::parse(b"bob@corp.example"), GuardRecord::Withheld("unreadable".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardRecord {
    /// The guarded text.
    Text {
        /// The text (cut at the publisher's limit).
        text: String,
        /// Whether text was cut.
        truncated: bool,
        /// False while a streamed answer is still running.
        complete: bool,
    },
    /// No text may be logged; the reason (`blocked`, `unchecked`, or `unreadable` for a value
    /// that is neither form).
    Withheld(String),
}

#[derive(Serialize, Deserialize)]
struct GuardWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    truncated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    complete: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    withheld: Option<String>,
}

impl GuardRecord {
    /// The property value (JSON).
    pub fn to_json(&self) -> String {
        let wire = match self {
            GuardRecord::Text {
                text,
                truncated,
                complete,
            } => GuardWire {
                text: Some(text.clone()),
                truncated: Some(*truncated),
                complete: Some(*complete),
                withheld: None,
            },
            GuardRecord::Withheld(why) => GuardWire {
                text: None,
                truncated: None,
                complete: None,
                withheld: Some(why.clone()),
            },
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Reads a published value. `withheld` wins over `text`; a missing `complete` is true; a
    /// value that is neither form is `Withheld("unreadable")` (it was published to keep the
    /// plain text out of logs, so it must not fall back to it).
    pub fn parse(bytes: &[u8]) -> GuardRecord {
        let unreadable = || GuardRecord::Withheld("unreadable".into());
        let Ok(w) = serde_json::from_slice::<GuardWire>(bytes) else {
            return unreadable();
        };
        match (w.text, w.withheld) {
            (_, Some(why)) => GuardRecord::Withheld(why),
            (Some(text), None) => GuardRecord::Text {
                text,
                truncated: w.truncated.unwrap_or(false),
                complete: w.complete.unwrap_or(true),
            },
            (None, None) => unreadable(),
        }
    }

    /// Publishes the record as `which` (from a stream context).
    pub fn publish(&self, which: GuardText) -> Result<(), HostError> {
        host::set_property(&[which.property()], self.to_json().as_bytes())
    }

    /// The record published as `which` for this stream, if any.
    pub fn read(which: GuardText) -> Option<GuardRecord> {
        read_property(which.property()).map(|b| GuardRecord::parse(&b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_record_wire_format() {
        let r = UsageRecord {
            input: 19,
            output: 3,
            total: 22,
            cached_input: 8,
            reasoning: 0,
            model: Some("gpt-4o".into()),
            provider: Some("oai".into()),
        };
        let v: serde_json::Value = serde_json::from_slice(&r.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"input":19,"output":3,"total":22,"cached_input":8,"reasoning":0,"model":"gpt-4o","provider":"oai"})
        );
        assert_eq!(UsageRecord::parse(&r.to_json()), Some(r));
        // ai-cache's form: no model or provider.
        let bare = UsageRecord::from_usage(&Usage {
            input: 11,
            output: 2,
            total: 13,
            cached_input: 11,
            ..Usage::default()
        });
        let v: serde_json::Value = serde_json::from_slice(&bare.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"input":11,"output":2,"total":13,"cached_input":11,"reasoning":0})
        );
        // Lenient reads.
        let u = UsageRecord::parse(br#"{"input":2,"extra":true}"#)
            .unwrap()
            .usage();
        assert_eq!((u.input, u.total), (2, 2));
        assert!(UsageRecord::parse(b"nope").is_none());
        assert!(UsageRecord::parse(b"[1]").is_none());
    }

    #[test]
    fn guard_record_forms() {
        let t = GuardRecord::Text {
            text: "Hi [EMAIL_1]".into(),
            truncated: false,
            complete: true,
        };
        assert_eq!(
            t.to_json(),
            r#"{"text":"Hi [EMAIL_1]","truncated":false,"complete":true}"#
        );
        assert_eq!(
            GuardRecord::Withheld("blocked".into()).to_json(),
            r#"{"withheld":"blocked"}"#
        );
        assert_eq!(
            GuardRecord::parse(br#"{"text":"x"}"#),
            GuardRecord::Text {
                text: "x".into(),
                truncated: false,
                complete: true
            }
        );
        assert_eq!(
            GuardRecord::parse(br#"{"text":"x","withheld":"unchecked"}"#),
            GuardRecord::Withheld("unchecked".into())
        );
        assert_eq!(
            GuardRecord::parse(b"{}"),
            GuardRecord::Withheld("unreadable".into())
        );
    }

    #[test]
    fn key_ids() {
        // The id is the first 16 hex digits of the key's SHA-256.
        let full = crate::hash::hex(&crate::hash::sha256(b"sk-test"));
        assert_eq!(key_id("sk-test"), full[..16]);
        assert_eq!(key_id("sk-test"), key_id("sk-test"));
        assert!(key_id("sk-test").bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
