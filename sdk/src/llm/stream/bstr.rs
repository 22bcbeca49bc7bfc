//! Zero-copy string views for serde: [`BStr`] borrows from the input when the JSON string has no
//! escapes, and [`FirstOnly`] keeps only the first element of an array.

use serde::de::{Deserialize, Deserializer, IgnoredAny, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A string borrowed from the input when it has no JSON escapes, owned otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BStr<'a>(pub Cow<'a, str>);

impl<'a> BStr<'a> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text as a `Cow`, still borrowed when it was.
    pub fn into_cow(self) -> Cow<'a, str> {
        self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for BStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(BStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Keeps only the first element of a JSON array (the rest is skipped without allocating);
/// `null` or `[]` give `None`.
#[derive(Debug)]
pub struct FirstOnly<T>(pub Option<T>);

impl<T> Default for FirstOnly<T> {
    fn default() -> Self {
        FirstOnly(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for FirstOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = FirstOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(FirstOnly(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<T>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstOnly(first))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bstr_borrows_unescaped_text() {
        #[derive(serde::Deserialize)]
        struct T<'a> {
            #[serde(borrow)]
            a: BStr<'a>,
            #[serde(borrow)]
            b: Option<BStr<'a>>,
            #[serde(default)]
            c: FirstOnly<u32>,
        }
        let t: T =
            serde_json::from_slice(br#"{"a":"plain","b":"esc\naped","c":[7,{"x":[1]},"y"]}"#)
                .unwrap();
        assert!(matches!(t.a.0, Cow::Borrowed("plain")));
        assert_eq!(t.b.unwrap().as_str(), "esc\naped");
        assert_eq!(t.c.0, Some(7));
        let t: T = serde_json::from_slice(br#"{"a":"x","c":null}"#).unwrap();
        assert!(t.c.0.is_none());
    }
}
