//! Deserializing a raw configuration from a JSON value while remembering where an error
//! happened: the field path of [`super::raw_from_value`]'s errors.
//!
//! The deserializer walks the [`Value`] itself, so it knows the key or index of every value it
//! hands to a visitor; the first (deepest) failing value records its path. Visitors are not
//! wrapped: each raw type's deserialization is instantiated once, for this deserializer, which
//! keeps modules smaller than wrapping a value deserializer and its visitors.
//!
//! Paths read `a.b[2].c` (an enum variant's content adds the variant's name), the same form
//! as `serde_path_to_error`'s, which this replaced.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde_json::{Error, Map, Value};
use std::cell::RefCell;

/// Deserializes `T` from `value`; an error comes with the path of the value that failed
/// (empty for the whole document).
pub(crate) fn deserialize<T: de::DeserializeOwned>(value: Value) -> Result<T, (String, Error)> {
    let track = Track::default();
    T::deserialize(At {
        value,
        chain: &Chain::Root,
        track: &track,
    })
    .map_err(|e| (track.path.into_inner().unwrap_or_default(), e))
}

/// Where a value sits, as a chain of links to its parent.
enum Chain<'a> {
    /// The document.
    Root,
    /// Element `index` of a list.
    Seq { parent: &'a Chain<'a>, index: usize },
    /// The value of `key` in an object (or the content of enum variant `key`).
    Map { parent: &'a Chain<'a>, key: &'a str },
}

/// The path of the first value that failed.
#[derive(Default)]
struct Track {
    path: RefCell<Option<String>>,
}

impl Track {
    /// Records `chain` as the error's place unless a deeper value already did.
    fn fail(&self, chain: &Chain) {
        let mut path = self.path.borrow_mut();
        if path.is_none() {
            let mut out = String::new();
            write_chain(chain, &mut out);
            *path = Some(out);
        }
    }
}

/// Writes the path of `chain`: keys joined by `.`, indexes as `[i]`.
fn write_chain(chain: &Chain, out: &mut String) {
    match chain {
        Chain::Root => {}
        Chain::Seq { parent, index } => {
            write_chain(parent, out);
            out.push('[');
            out.push_str(&index.to_string());
            out.push(']');
        }
        Chain::Map { parent, key } => {
            write_chain(parent, out);
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(key);
        }
    }
}

/// One value to deserialize, with its place.
struct At<'a> {
    value: Value,
    chain: &'a Chain<'a>,
    track: &'a Track,
}

/// Deserializes `value` at `chain` with `seed`, recording the place on failure.
fn seed_at<'de, S: DeserializeSeed<'de>>(
    seed: S,
    value: Value,
    chain: &Chain,
    track: &Track,
) -> Result<S::Value, Error> {
    seed.deserialize(At {
        value,
        chain,
        track,
    })
    .inspect_err(|_| track.fail(chain))
}

impl<'de> Deserializer<'de> for At<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => {
                let len = items.len();
                let mut seq = Items {
                    items: items.into_iter(),
                    index: 0,
                    chain: self.chain,
                    track: self.track,
                };
                let out = visitor.visit_seq(&mut seq)?;
                if seq.items.len() == 0 {
                    Ok(out)
                } else {
                    Err(de::Error::invalid_length(len, &"fewer elements in array"))
                }
            }
            Value::Object(map) => {
                let len = map.len();
                let mut entries = Entries {
                    entries: map.into_iter(),
                    pending: None,
                    chain: self.chain,
                    track: self.track,
                };
                let out = visitor.visit_map(&mut entries)?;
                if entries.entries.len() == 0 {
                    Ok(out)
                } else {
                    Err(de::Error::invalid_length(len, &"fewer elements in map"))
                }
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Value::String(variant) => visitor.visit_enum(Variant {
                variant,
                value: None,
                chain: self.chain,
                track: self.track,
            }),
            Value::Object(map) if map.len() == 1 => {
                let Some((variant, value)) = map.into_iter().next() else {
                    return Err(de::Error::invalid_length(0, &"map with a single key"));
                };
                visitor.visit_enum(Variant {
                    variant,
                    value: Some(value),
                    chain: self.chain,
                    track: self.track,
                })
            }
            Value::Object(_) => Err(de::Error::invalid_value(
                de::Unexpected::Map,
                &"map with a single key",
            )),
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"string or map",
            )),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// How a value that is not an enum is named in an error.
fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => de::Unexpected::Unsigned(u),
            (None, Some(i)) => de::Unexpected::Signed(i),
            _ => de::Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

/// The elements of a list, each deserialized at its index.
struct Items<'a> {
    items: std::vec::IntoIter<Value>,
    index: usize,
    chain: &'a Chain<'a>,
    track: &'a Track,
}

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        let Some(value) = self.items.next() else {
            return Ok(None);
        };
        let chain = Chain::Seq {
            parent: self.chain,
            index: self.index,
        };
        self.index += 1;
        seed_at(seed, value, &chain, self.track).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of an object, each value deserialized at its key.
struct Entries<'a> {
    entries: <Map<String, Value> as IntoIterator>::IntoIter,
    pending: Option<(String, Value)>,
    chain: &'a Chain<'a>,
    track: &'a Track,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let out = seed.deserialize(key.as_str().into_deserializer());
        if out.is_err() {
            // An unknown field: its place is the key itself.
            self.track.fail(&Chain::Map {
                parent: self.chain,
                key: &key,
            });
        }
        self.pending = Some((key, value));
        out.map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        let Some((key, value)) = self.pending.take() else {
            return Err(de::Error::custom("value is missing"));
        };
        let chain = Chain::Map {
            parent: self.chain,
            key: &key,
        };
        seed_at(seed, value, &chain, self.track)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum written as `"variant"` or `{"variant": content}`; the content is deserialized at
/// the variant.
struct Variant<'a> {
    variant: String,
    /// The content; `None` for the string form.
    value: Option<Value>,
    chain: &'a Chain<'a>,
    track: &'a Track,
}

impl<'de, 'a> EnumAccess<'de> for Variant<'a> {
    type Error = Error;
    type Variant = Variant<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        let tag = seed.deserialize(self.variant.as_str().into_deserializer())?;
        Ok((tag, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        let chain = Chain::Map {
            parent: self.chain,
            key: &self.variant,
        };
        match self.value {
            None => Ok(()),
            Some(value) => seed_at(std::marker::PhantomData::<()>, value, &chain, self.track),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        let chain = Chain::Map {
            parent: self.chain,
            key: &self.variant,
        };
        match self.value {
            Some(value) => seed_at(seed, value, &chain, self.track),
            None => Err(wrong_shape(self.track, &chain, None, "newtype variant")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        let chain = Chain::Map {
            parent: self.chain,
            key: &self.variant,
        };
        match self.value {
            Some(Value::Array(items)) if items.is_empty() => visitor
                .visit_unit()
                .inspect_err(|_| self.track.fail(&chain)),
            Some(value @ Value::Array(_)) => visit_at(value, &chain, self.track, visitor),
            other => Err(wrong_shape(
                self.track,
                &chain,
                other.as_ref(),
                "tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let chain = Chain::Map {
            parent: self.chain,
            key: &self.variant,
        };
        match self.value {
            Some(value @ Value::Object(_)) => visit_at(value, &chain, self.track, visitor),
            other => Err(wrong_shape(
                self.track,
                &chain,
                other.as_ref(),
                "struct variant",
            )),
        }
    }
}

/// Deserializes a variant's content `value` at `chain` with `visitor`, recording the place on
/// failure.
fn visit_at<'de, V: Visitor<'de>>(
    value: Value,
    chain: &Chain,
    track: &Track,
    visitor: V,
) -> Result<V::Value, Error> {
    At {
        value,
        chain,
        track,
    }
    .deserialize_any(visitor)
    .inspect_err(|_| track.fail(chain))
}

/// The error for a variant's content of the wrong shape (`None`: no content, the string
/// form), recorded at `chain`.
fn wrong_shape(track: &Track, chain: &Chain, content: Option<&Value>, expected: &str) -> Error {
    track.fail(chain);
    let found = content.map_or(de::Unexpected::UnitVariant, unexpected);
    de::Error::invalid_type(found, &expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        #[serde(default)]
        name: String,
        #[serde(default)]
        port: Option<u16>,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        mode: Option<Mode>,
        #[serde(default)]
        shape: Option<Shape>,
        #[serde(default)]
        tags: BTreeMap<String, Vec<u8>>,
        #[serde(default)]
        pair: Option<(u8, String)>,
        #[serde(default)]
        either: Option<Either>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        id: u32,
        #[serde(default)]
        weight: f64,
        #[serde(default)]
        on: bool,
    }

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Mode {
        Fast,
        Slow,
    }

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Shape {
        Dot,
        Circle { r: u32 },
        Label(String),
        Pair(u8, u8),
    }

    #[derive(Deserialize, Debug)]
    #[serde(untagged)]
    #[allow(dead_code)]
    enum Either {
        Num(u64),
        Words(Vec<String>),
    }

    /// The path and message of both trackers for `json`.
    fn both(json: &str) -> ((String, String), (String, String)) {
        let value: Value = serde_json::from_str(json).unwrap();
        let ours = match deserialize::<Doc>(value.clone()) {
            Ok(d) => panic!("{json} decoded: {d:?}"),
            Err((path, e)) => (path, e.to_string()),
        };
        let theirs = match serde_path_to_error::deserialize::<_, Doc>(value) {
            Ok(d) => panic!("{json} decoded: {d:?}"),
            Err(e) => {
                let path = e.path().to_string();
                let path = if path == "." { String::new() } else { path };
                (path, e.into_inner().to_string())
            }
        };
        (ours, theirs)
    }

    #[test]
    fn errors_name_the_same_place_as_serde_path_to_error() {
        for json in [
            r#"["n", "80"]"#,
            r#""x""#,
            r#"{"nope": 1}"#,
            r#"{"name": 5}"#,
            r#"{"port": "80"}"#,
            r#"{"port": 70000}"#,
            r#"{"port": -1}"#,
            r#"{"port": 1.5}"#,
            r#"{"items": {}}"#,
            r#"{"items": [{"id": 1}, {"id": "2"}]}"#,
            r#"{"items": [{"id": 1}, {"weight": 2}]}"#,
            r#"{"items": [{"id": 1, "extra": true}]}"#,
            r#"{"items": [{"id": 1, "on": "yes"}]}"#,
            r#"{"items": [{"id": 1, "weight": "heavy"}]}"#,
            r#"{"mode": "medium"}"#,
            r#"{"mode": 3}"#,
            r#"{"mode": {"fast": 1}}"#,
            r#"{"mode": {"fast": null, "slow": null}}"#,
            r#"{"shape": {"circle": {"r": "big"}}}"#,
            r#"{"shape": {"circle": {}}}"#,
            r#"{"shape": {"label": 7}}"#,
            r#"{"shape": {"pair": [1, "b"]}}"#,
            r#"{"shape": {"pair": [1, 2, 3]}}"#,
            r#"{"shape": "circle"}"#,
            r#"{"shape": "label"}"#,
            r#"{"shape": "pair"}"#,
            r#"{"shape": {"pair": "x"}}"#,
            r#"{"shape": {"pair": []}}"#,
            r#"{"shape": {"circle": 5}}"#,
            r#"{"shape": {"dot": 5}}"#,
            r#"{"shape": {"square": 5}}"#,
            r#"{"shape": ["dot"]}"#,
            r#"{"tags": {"a": [1, 2], "b": [1, 300]}}"#,
            r#"{"tags": []}"#,
            r#"{"pair": [1]}"#,
            r#"{"pair": [1, "a", 2]}"#,
            r#"{"pair": [1, 2]}"#,
            r#"{"either": {"x": 1}}"#,
            r#"{"either": [1]}"#,
        ] {
            let (ours, theirs) = both(json);
            assert_eq!(ours, theirs, "{json}");
        }
    }

    #[test]
    fn paths_read_keys_and_indexes() {
        let value: Value =
            serde_json::from_str(r#"{"items": [{"id": 1}, {"id": 2}, {"id": true}]}"#).unwrap();
        let (path, _) = deserialize::<Doc>(value).unwrap_err();
        assert_eq!(path, "items[2].id");
        let value: Value = serde_json::from_str(r#"[[1], [2, "x"]]"#).unwrap();
        let (path, e) = deserialize::<Vec<Vec<u8>>>(value).unwrap_err();
        assert_eq!(path, "[1][1]");
        assert_eq!(e.to_string(), r#"invalid type: string "x", expected u8"#);
        let value: Value = serde_json::from_str(r#"{"name": "n", "port": 8}"#).unwrap();
        let doc = deserialize::<Doc>(value).unwrap();
        assert_eq!((doc.name.as_str(), doc.port), ("n", Some(8)));
    }
}
