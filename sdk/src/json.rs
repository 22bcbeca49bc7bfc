//! Strict reading of JSON request bodies that a plugin decides on.
//!
//! JSON parsers disagree on inputs the RFC leaves open. serde_json keeps the last of two equal
//! keys in a map and refuses a typed struct with a repeated field; other parsers keep the
//! first. A body with `{"model":"a","model":"b"}` can therefore be checked as one model and
//! served as the other. A plugin that decides on a body field (access policy, cache key, rate
//! estimate, content checks) runs [`check_strict`] first and refuses what it rejects.
//!
//! ```
//! use aigw::json::{check_strict, JsonProblem};
//!
//! assert!(check_strict(br#"{"model":"gpt-4o","messages":[{"role":"user"}]}"#).is_ok());
//! assert!(matches!(
//!     check_strict(br#"{"model":"a","messages":[],"model":"b"}"#),
//!     Err(JsonProblem::DuplicateKey { .. })
//! ));
//! assert!(matches!(check_strict(b"\xEF\xBB\xBF{}"), Err(JsonProblem::ByteOrderMark)));
//! ```

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// Why a body is not strict JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonProblem {
    /// The body starts with a UTF-8 byte order mark (RFC 8259 §8.1 forbids sending one).
    ByteOrderMark,
    /// The body is not one JSON value (the parser's message, bounded).
    NotJson(String),
    /// An object has the same key twice (after unescaping).
    DuplicateKey {
        /// The repeated key, as sent (display it through [`crate::log::untrusted`]).
        key: String,
        /// How deep the object is: 0 for the top-level object.
        depth: usize,
    },
}

impl fmt::Display for JsonProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonProblem::ByteOrderMark => {
                f.write_str("the JSON body starts with a byte order mark; send plain UTF-8")
            }
            JsonProblem::NotJson(m) => write!(f, "the body is not valid JSON: {m}"),
            JsonProblem::DuplicateKey { key, depth: 0 } => write!(
                f,
                "the JSON body has the key `{}` more than once",
                crate::log::untrusted(key)
            ),
            JsonProblem::DuplicateKey { key, .. } => write!(
                f,
                "an object in the JSON body has the key `{}` more than once",
                crate::log::untrusted(key)
            ),
        }
    }
}

impl std::error::Error for JsonProblem {}

/// Checks that `body` is exactly one JSON value with no repeated key in any object and no
/// byte order mark. Linear in the body's size; allocates only for escaped keys and for the
/// key sets of objects with many keys.
pub fn check_strict(body: &[u8]) -> Result<(), JsonProblem> {
    if body.starts_with(b"\xEF\xBB\xBF") {
        return Err(JsonProblem::ByteOrderMark);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let outcome = Walk { depth: 0 }.deserialize(&mut de).and_then(|found| {
        de.end()?;
        Ok(found)
    });
    match outcome {
        Ok(None) => Ok(()),
        Ok(Some(dup)) => Err(dup),
        Err(e) => Err(JsonProblem::NotJson(crate::log::bounded_message(
            e.to_string(),
            200,
        ))),
    }
}

/// Parses `bytes` as one JSON value. Plugins that read a body (or a configuration) as a
/// [`serde_json::Value`] call this instead of `serde_json::from_slice`, so a module links one
/// copy of the value parser (the SDK's) rather than one per crate that instantiates it.
pub fn parse_value(bytes: &[u8]) -> serde_json::Result<serde_json::Value> {
    serde_json::from_slice(bytes)
}

/// The problem of `body` when parsers could read it differently (a repeated key, a byte order
/// mark); `None` for strict JSON and for plain syntax errors, which a plugin reports in its own
/// words after its own parse.
///
/// ```
/// use aigw::json::ambiguity;
///
/// assert!(ambiguity(br#"{"n":1,"n":128}"#).is_some());
/// assert!(ambiguity(b"not json").is_none());
/// ```
pub fn ambiguity(body: &[u8]) -> Option<JsonProblem> {
    match check_strict(body) {
        Err(p @ (JsonProblem::DuplicateKey { .. } | JsonProblem::ByteOrderMark)) => Some(p),
        _ => None,
    }
}

/// One value, walked; yields the first duplicate key found below it.
struct Walk {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = Option<JsonProblem>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = Option<JsonProblem>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(inner) = seq.next_element_seed(Walk {
            depth: self.depth + 1,
        })? {
            found = found.or(inner);
        }
        Ok(found)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let mut keys = Keys::default();
        while let Some(key) = map.next_key_seed(Key)? {
            if found.is_none() && !keys.insert(key.clone()) {
                found = Some(JsonProblem::DuplicateKey {
                    key: key.into_owned(),
                    depth: self.depth,
                });
            }
            let inner = map.next_value_seed(Walk {
                depth: self.depth + 1,
            })?;
            found = found.or(inner);
        }
        Ok(found)
    }
}

/// The keys seen in one object: a short list, then a hash set once it grows.
#[derive(Default)]
struct Keys<'de> {
    few: Vec<Cow<'de, str>>,
    many: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> Keys<'de> {
    /// Adds `key`; false when it was already there.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        if let Some(set) = &mut self.many {
            return set.insert(key);
        }
        if self.few.contains(&key) {
            return false;
        }
        self.few.push(key);
        if self.few.len() > 16 {
            self.many = Some(self.few.drain(..).collect());
        }
        true
    }
}

/// An object key, borrowed from the body unless it had escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(body: &str) -> Option<(String, usize)> {
        match check_strict(body.as_bytes()) {
            Err(JsonProblem::DuplicateKey { key, depth }) => Some((key, depth)),
            _ => None,
        }
    }

    #[test]
    fn accepts_ordinary_bodies() {
        for body in [
            r#"{}"#,
            r#"[]"#,
            r#""text""#,
            r#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#,
            r#"  {"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true}  "#,
        ] {
            assert_eq!(check_strict(body.as_bytes()), Ok(()), "{body}");
        }
    }

    #[test]
    fn finds_duplicates_at_any_depth_and_after_unescaping() {
        assert_eq!(
            dup(r#"{"model":"a","model":"b"}"#),
            Some(("model".into(), 0))
        );
        assert_eq!(
            dup(r#"{"mod\u0065l":"a","model":"b"}"#),
            Some(("model".into(), 0))
        );
        assert_eq!(
            dup(r#"{"messages":[{"role":"user","role":"system"}]}"#),
            Some(("role".into(), 2))
        );
        // Many keys: the hash set takes over and still finds the repeat.
        let mut body = String::from("{");
        for i in 0..40 {
            body.push_str(&format!("\"k{i}\":{i},"));
        }
        body.push_str("\"k3\":0}");
        assert_eq!(dup(&body), Some(("k3".into(), 0)));
    }

    #[test]
    fn refuses_bom_trailing_data_and_garbage() {
        assert_eq!(
            check_strict(b"\xEF\xBB\xBF{}"),
            Err(JsonProblem::ByteOrderMark)
        );
        assert!(matches!(
            check_strict(b"{} {}"),
            Err(JsonProblem::NotJson(_))
        ));
        assert!(matches!(
            check_strict(b"{\"a\":"),
            Err(JsonProblem::NotJson(_))
        ));
        assert!(matches!(check_strict(b""), Err(JsonProblem::NotJson(_))));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            check_strict(body.as_bytes()),
            Err(JsonProblem::NotJson(_))
        ));
    }
}
