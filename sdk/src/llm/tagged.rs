//! Decoding of the wire models' tagged and untagged enums through one parsed [`Value`].
//!
//! serde's derived `#[serde(tag = "type")]` enums with an `#[serde(untagged)] Other(Value)`
//! fallback, and `#[serde(untagged)]` string-or-array enums, buffer their input in serde's
//! private `Content` tree and carry a full copy of every variant's decoder per deserializer: about
//! a tenth of ai-proxy's module was that code. The enums of [`super::openai`],
//! [`super::anthropic`] and [`super::responses`] instead parse a [`Value`] (one shared decoder)
//! and pick their variant from it by hand with the helpers here, with the same outcome as the
//! derived code: a known tag whose fields fit gives that variant, anything else the raw `Other`.

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Parses a [`Value`] from `d` and maps it with `f`: a [`Deserialize`] impl in one line, with the
/// generic part limited to the parse (shared by every caller using the same deserializer).
pub(crate) fn via_value<'de, D, T>(d: D, f: fn(Value) -> T) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    Value::deserialize(d).map(f)
}

/// Like [`via_value`] for a conversion that can fail: `Err` carries serde's message.
pub(crate) fn try_via_value<'de, D, T>(
    d: D,
    f: fn(Value) -> Result<T, &'static str>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    Value::deserialize(d).and_then(|v| f(v).map_err(D::Error::custom))
}

/// A string-or-array enum (`Text(String) | Parts(Vec<P>)`): `Ok(Ok(text))` for a string,
/// `Ok(Err(parts))` for an array (each element mapped with `part`), and `err` (serde's
/// untagged-enum message) for anything else.
pub(crate) fn text_or_parts<P>(
    v: Value,
    part: fn(Value) -> P,
    err: &'static str,
) -> Result<Result<String, Vec<P>>, &'static str> {
    match v {
        Value::String(s) => Ok(Ok(s)),
        Value::Array(a) => Ok(Err(a.into_iter().map(part).collect())),
        _ => Err(err),
    }
}

/// The `type` of an object, when it is one with a string `type`.
pub(crate) fn tag(v: &Value) -> Option<(&str, &Map<String, Value>)> {
    let m = v.as_object()?;
    Some((m.get("type")?.as_str()?, m))
}

/// A required string field (`None` when missing or not a string).
pub(crate) fn req_str(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k)?.as_str().map(str::to_owned)
}

/// An optional string field as serde reads `Option<String>` with `#[serde(default)]`: missing or
/// null is `Some(None)`, a string `Some(Some(s))`, any other type `None` (the variant fails).
pub(crate) fn opt_str(m: &Map<String, Value>, k: &str) -> Option<Option<String>> {
    match m.get(k) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    }
}

/// An optional bool field as serde reads `Option<bool>` with `#[serde(default)]` (see [`opt_str`]).
pub(crate) fn opt_bool(m: &Map<String, Value>, k: &str) -> Option<Option<bool>> {
    match m.get(k) {
        None | Some(Value::Null) => Some(None),
        Some(Value::Bool(b)) => Some(Some(*b)),
        Some(_) => None,
    }
}

/// An optional raw field (`Option<Value>` with `#[serde(default)]`): missing or null is `None`.
pub(crate) fn opt_raw(m: &Map<String, Value>, k: &str) -> Option<Value> {
    m.get(k).filter(|v| !v.is_null()).cloned()
}

/// A field decoded with `T`'s own [`Deserialize`] (`None` when missing or not decodable).
pub(crate) fn req<T: DeserializeOwned>(m: &Map<String, Value>, k: &str) -> Option<T> {
    T::deserialize(m.get(k)?).ok()
}

/// Implements `from_value` and `Deserialize` for a tagged enum with an `Other(Value)` fallback:
/// the type's own `known(&Value) -> Option<Self>` picks a known `type` whose fields fit; with
/// `else path`, `path(&Value) -> Option<Self>` is tried next (an untagged variant); anything
/// else is kept raw as `Other`.
macro_rules! known_or_other {
    ($ty:ident) => {
        impl $ty {
            /// The value a parsed JSON value is: a known `type` whose fields fit, else `Other`.
            pub fn from_value(v: serde_json::Value) -> Self {
                Self::known(&v).unwrap_or(Self::Other(v))
            }
        }
        $crate::llm::tagged::known_or_other!(@de $ty);
    };
    ($ty:ident else $fallback:path) => {
        impl $ty {
            /// The value a parsed JSON value is: a known `type` whose fields fit, else the
            /// untagged variant when its fields fit, else `Other`.
            pub fn from_value(v: serde_json::Value) -> Self {
                Self::known(&v)
                    .or_else(|| $fallback(&v))
                    .unwrap_or(Self::Other(v))
            }
        }
        $crate::llm::tagged::known_or_other!(@de $ty);
    };
    (@de $ty:ident) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::llm::tagged::via_value(d, Self::from_value)
            }
        }
    };
}
pub(crate) use known_or_other;

/// Implements a private `from_value` and `Deserialize` for a string-or-array enum
/// `Ty { Text(String), Parts(Vec<P>) }` written `text_or_parts_enum!(Ty { Text, Parts: P::from_value })`:
/// a string gives `Text`, an array `Parts` (each element mapped), anything else serde's
/// untagged-enum error naming `Ty`.
macro_rules! text_or_parts_enum {
    ($ty:ident { $text:ident, $parts:ident: $part:path }) => {
        impl $ty {
            fn from_value(v: serde_json::Value) -> Result<Self, &'static str> {
                $crate::llm::tagged::text_or_parts(
                    v,
                    $part,
                    concat!(
                        "data did not match any variant of untagged enum ",
                        stringify!($ty)
                    ),
                )
                .map(|c| c.map_or_else(Self::$parts, Self::$text))
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::llm::tagged::try_via_value(d, Self::from_value)
            }
        }
    };
}
pub(crate) use text_or_parts_enum;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn optional_fields_follow_serde_defaults() {
        let v = json!({"a": null, "b": "x", "c": 1, "t": true});
        let m = v.as_object().unwrap();
        assert_eq!(opt_str(m, "a"), Some(None));
        assert_eq!(opt_str(m, "missing"), Some(None));
        assert_eq!(opt_str(m, "b"), Some(Some("x".into())));
        assert_eq!(opt_str(m, "c"), None);
        assert_eq!(opt_bool(m, "t"), Some(Some(true)));
        assert_eq!(opt_bool(m, "b"), None);
        assert_eq!(opt_raw(m, "a"), None);
        assert_eq!(opt_raw(m, "c"), Some(json!(1)));
        assert_eq!(req_str(m, "c"), None);
        assert_eq!(tag(&json!({"type": 1})), None);
        assert_eq!(tag(&json!({"type": "x"})).map(|t| t.0), Some("x"));
    }

    #[test]
    fn text_or_parts_rejects_other_shapes() {
        let id = |v: Value| v;
        assert_eq!(text_or_parts(json!("hi"), id, "E"), Ok(Ok("hi".into())));
        assert_eq!(text_or_parts(json!([1]), id, "E"), Ok(Err(vec![json!(1)])));
        assert_eq!(text_or_parts(json!(1), id, "E"), Err("E"));
    }
}
