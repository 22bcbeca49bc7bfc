//! A minimal Protocol Buffers wire-format writer and reader, for the few small messages a
//! plugin exchanges over gRPC call-outs (for example Envoy's rate limit service) without a
//! code generator or a protobuf runtime in the module.
//!
//! [`Writer`] appends fields in the order they are written (varints, length-delimited strings,
//! bytes and nested messages); [`Reader`] walks the fields of a message one by one and never
//! panics: truncated input, oversized varints and unknown wire types are errors.
//!
//! ```
//! use aigw::proto::{Field, Reader, Writer};
//!
//! let mut w = Writer::new();
//! w.string(1, "envoy");
//! w.message(2, |d| d.string(1, "k"));
//! w.varint(3, 5);
//! let bytes = w.finish();
//!
//! let mut r = Reader::new(&bytes);
//! assert_eq!(r.next_field().unwrap(), Some((1, Field::Bytes(b"envoy"))));
//! assert!(matches!(r.next_field().unwrap(), Some((2, Field::Bytes(_)))));
//! assert_eq!(r.next_field().unwrap(), Some((3, Field::Varint(5))));
//! assert_eq!(r.next_field().unwrap(), None);
//! ```

use std::fmt;

/// Wire type of varint fields (int32, int64, uint32, uint64, bool, enum).
const VARINT: u8 = 0;
/// Wire type of fixed 64-bit fields.
const FIXED64: u8 = 1;
/// Wire type of length-delimited fields (string, bytes, messages, packed repeated).
const LEN: u8 = 2;
/// Wire type of fixed 32-bit fields.
const FIXED32: u8 = 5;

/// Builds one message.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty message.
    pub fn new() -> Writer {
        Writer::default()
    }

    fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.raw_varint((u64::from(field) << 3) | u64::from(wire));
    }

    /// A varint field (uint32/uint64/enum/bool). Written even when 0; proto3 writers leave
    /// zero values out, so callers skip them when they want the canonical form.
    pub fn varint(&mut self, field: u32, value: u64) {
        self.tag(field, VARINT);
        self.raw_varint(value);
    }

    /// A length-delimited bytes field.
    pub fn bytes(&mut self, field: u32, value: &[u8]) {
        self.tag(field, LEN);
        self.raw_varint(value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    /// A string field.
    pub fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    /// A nested message field, built by `build`.
    pub fn message(&mut self, field: u32, build: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::new();
        build(&mut inner);
        self.bytes(field, &inner.buf);
    }

    /// The encoded message.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Why a message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    /// The input ends inside a field.
    Truncated,
    /// A varint is longer than 10 bytes.
    VarintTooLong,
    /// A wire type this reader does not know (groups, or garbage).
    WireType(u8),
    /// Field number 0.
    FieldZero,
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Truncated => f.write_str("protobuf message is truncated"),
            ProtoError::VarintTooLong => f.write_str("protobuf varint is too long"),
            ProtoError::WireType(w) => write!(f, "protobuf wire type {w} is not supported"),
            ProtoError::FieldZero => f.write_str("protobuf field number 0"),
        }
    }
}

impl std::error::Error for ProtoError {}

/// One field's value as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    /// A varint.
    Varint(u64),
    /// A fixed 64-bit value.
    Fixed64(u64),
    /// A length-delimited value (string, bytes or nested message).
    Bytes(&'a [u8]),
    /// A fixed 32-bit value.
    Fixed32(u32),
}

impl<'a> Field<'a> {
    /// The value of a varint field (`None` for another wire type).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Field::Varint(v) => Some(*v),
            _ => None,
        }
    }

    /// The bytes of a length-delimited field (`None` for another wire type).
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Field::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// Walks the fields of one message.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over an encoded message.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    fn raw_varint(&mut self) -> Result<u64, ProtoError> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(ProtoError::Truncated)?;
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtoError::VarintTooLong)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let end = self.pos.checked_add(n).ok_or(ProtoError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(ProtoError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    /// The next field (number and value), `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Field<'a>)>, ProtoError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.raw_varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| ProtoError::Truncated)?;
        if field == 0 {
            return Err(ProtoError::FieldZero);
        }
        let value = match (key & 7) as u8 {
            VARINT => Field::Varint(self.raw_varint()?),
            FIXED64 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Field::Fixed64(u64::from_le_bytes(a))
            }
            LEN => {
                let n = usize::try_from(self.raw_varint()?).map_err(|_| ProtoError::Truncated)?;
                Field::Bytes(self.take(n)?)
            }
            FIXED32 => {
                let b = self.take(4)?;
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                Field::Fixed32(u32::from_le_bytes(a))
            }
            other => return Err(ProtoError::WireType(other)),
        };
        Ok(Some((field, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut w = Writer::new();
            w.varint(3, v);
            let b = w.finish();
            let mut r = Reader::new(&b);
            assert_eq!(r.next_field().unwrap(), Some((3, Field::Varint(v))));
            assert_eq!(r.next_field().unwrap(), None);
        }
        // Known encoding: field 1, value 150 -> 08 96 01.
        let mut w = Writer::new();
        w.varint(1, 150);
        assert_eq!(w.finish(), vec![0x08, 0x96, 0x01]);
    }

    #[test]
    fn strings_and_nested_messages() {
        let mut w = Writer::new();
        w.string(2, "testing");
        w.message(5, |m| {
            m.string(1, "k");
            m.string(2, "");
        });
        let b = w.finish();
        assert_eq!(
            &b[..9],
            &[0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
        );
        let mut r = Reader::new(&b);
        assert_eq!(r.next_field().unwrap(), Some((2, Field::Bytes(b"testing"))));
        let (n, inner) = r.next_field().unwrap().unwrap();
        assert_eq!(n, 5);
        let mut r2 = Reader::new(inner.as_bytes().unwrap());
        assert_eq!(r2.next_field().unwrap(), Some((1, Field::Bytes(b"k"))));
        assert_eq!(r2.next_field().unwrap(), Some((2, Field::Bytes(b""))));
        assert_eq!(r2.next_field().unwrap(), None);
    }

    #[test]
    fn fixed_fields_are_read() {
        let b = [0x09, 1, 0, 0, 0, 0, 0, 0, 0, 0x15, 2, 0, 0, 0];
        let mut r = Reader::new(&b);
        assert_eq!(r.next_field().unwrap(), Some((1, Field::Fixed64(1))));
        assert_eq!(r.next_field().unwrap(), Some((2, Field::Fixed32(2))));
        assert_eq!(r.next_field().unwrap(), None);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(
            Reader::new(&[0x08]).next_field(),
            Err(ProtoError::Truncated)
        );
        assert_eq!(
            Reader::new(&[0x12, 0x05, b'a']).next_field(),
            Err(ProtoError::Truncated)
        );
        assert_eq!(
            Reader::new(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                .next_field(),
            Err(ProtoError::VarintTooLong)
        );
        assert_eq!(
            Reader::new(&[0x0b]).next_field(),
            Err(ProtoError::WireType(3))
        );
        assert_eq!(
            Reader::new(&[0x00, 0x00]).next_field(),
            Err(ProtoError::FieldZero)
        );
        // A length near usize::MAX must not overflow.
        let huge = [
            0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(Reader::new(&huge).next_field(), Err(ProtoError::Truncated));
        assert_eq!(
            Reader::new(&[0x09, 1, 2]).next_field(),
            Err(ProtoError::Truncated)
        );
    }
}
