//! Decoding of the wire models' open structs (known fields plus a flattened `extra` map) through
//! one parsed object.
//!
//! serde's derived decoder for a struct with `#[serde(flatten)] extra` buffers every unknown
//! field in its private `Content` tree and carries a large visitor per struct and per
//! deserializer: the request and response models were about a tenth of ai-proxy's module. The
//! [`open_struct!`] impls instead parse the object into a [`Map`] (one shared decoder), take
//! each known field out of it and decode it from its [`Value`], and keep what is left as
//! `extra`: the same outcome as the derived code (missing required fields and mistyped fields
//! are errors with serde's messages, defaults apply to missing fields), minus the input position
//! in error messages.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Error, Map, Value};

/// The fields of one JSON object while an open struct is built from it.
pub(crate) struct Fields(Map<String, Value>);

impl Fields {
    /// A required field: an error naming it when missing.
    pub(crate) fn req<T: DeserializeOwned>(&mut self, k: &'static str) -> Result<T, Error> {
        match self.0.remove(k) {
            Some(v) => from_value(v),
            None => Err(Error::missing_field(k)),
        }
    }

    /// A field with `#[serde(default)]`: `T::default()` when missing.
    pub(crate) fn def<T: DeserializeOwned + Default>(&mut self, k: &str) -> Result<T, Error> {
        self.or(k, T::default)
    }

    /// A field with `#[serde(default = "...")]`: `default()` when missing.
    pub(crate) fn or<T: DeserializeOwned>(
        &mut self,
        k: &str,
        default: fn() -> T,
    ) -> Result<T, Error> {
        match self.0.remove(k) {
            Some(v) => from_value(v),
            None => Ok(default()),
        }
    }

    /// The fields not taken: the struct's `extra`.
    pub(crate) fn rest(&mut self) -> Map<String, Value> {
        std::mem::take(&mut self.0)
    }
}

/// Decodes one field's value: kept out of line so that every struct with a field of type `T`
/// calls the same copy of `T`'s decoder.
#[inline(never)]
fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, Error> {
    T::deserialize(v)
}

/// A struct built from [`Fields`]; [`open_struct!`] implements it with `Deserialize`.
pub(crate) trait OpenStruct: Sized {
    /// Takes the struct's fields out of `f`.
    fn from_fields(f: &mut Fields) -> Result<Self, Error>;
}

/// Parses an object from `d` and builds `T` from it: the generic part of every open struct's
/// `Deserialize` is the map parse, shared by every caller using the same deserializer.
pub(crate) fn decode<'de, D: Deserializer<'de>, T: OpenStruct>(d: D) -> Result<T, D::Error> {
    let map = Map::<String, Value>::deserialize(d)?;
    T::from_fields(&mut Fields(map)).map_err(D::Error::custom)
}

/// Implements `Deserialize` for an open struct: each field is `name: mode "key"`, with mode
/// `req` (required), `def` (`#[serde(default)]`) or `or(path)` (`#[serde(default = "path")]`);
/// the remaining fields go to `extra`. With `closed` before the type, the struct has no
/// `extra` and the remaining fields are ignored (serde's default for unknown fields).
macro_rules! open_struct {
    (closed $ty:ident { $($field:ident : $mode:ident $(($dflt:path))? $key:literal),* $(,)? }) => {
        $crate::llm::open_struct::open_struct!(@impl f $ty [$($field: f.$mode($key $(, $dflt)?)?,)*]);
    };
    ($ty:ident { $($field:ident : $mode:ident $(($dflt:path))? $key:literal),* $(,)? }) => {
        $crate::llm::open_struct::open_struct!(@impl f $ty [$($field: f.$mode($key $(, $dflt)?)?,)* extra: f.rest(),]);
    };
    (@impl $f:ident $ty:ident [$($body:tt)*]) => {
        impl $crate::llm::open_struct::OpenStruct for $ty {
            fn from_fields(
                $f: &mut $crate::llm::open_struct::Fields,
            ) -> Result<Self, serde_json::Error> {
                Ok($ty { $($body)* })
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::llm::open_struct::decode(d)
            }
        }
    };
}
pub(crate) use open_struct;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, PartialEq)]
    struct S {
        a: String,
        b: Option<u32>,
        c: u64,
        extra: Map<String, Value>,
    }

    fn seven() -> u64 {
        7
    }

    open_struct!(S { a: req "a", b: def "b", c: or(seven) "c" });

    #[test]
    fn known_fields_defaults_and_extra() {
        let s: S = serde_json::from_str(r#"{"z":1,"a":"x","b":null}"#).unwrap();
        let extra = json!({"z": 1}).as_object().cloned().unwrap();
        assert_eq!(
            s,
            S {
                a: "x".into(),
                b: None,
                c: 7,
                extra
            }
        );
        let s: S = serde_json::from_value(json!({"a": "", "b": 2, "c": 3})).unwrap();
        assert_eq!((s.b, s.c, s.extra.len()), (Some(2), 3, 0));
    }

    #[test]
    fn missing_and_mistyped_fields_fail() {
        let e = serde_json::from_str::<S>(r#"{"b":1}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `a`"), "{e}");
        let e = serde_json::from_str::<S>(r#"{"a":"x","b":"y"}"#).unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        assert!(serde_json::from_str::<S>("[1]").is_err());
    }
}
