//! A small strict JSON walker for the lane finder ([`super::locate`]): one pass over an
//! event's bytes that checks the grammar as serde_json reads it (string escapes, no control
//! characters in strings, numbers, literals, nesting at most 128 deep, nothing after the
//! value), decodes only the keys and strings asked for, and skips every other value without
//! decoding or copying it.

use std::borrow::Cow;

/// The walker's error (a `serde_json` error, so callers see one error type).
pub(super) type Error = serde_json::Error;

pub(super) fn fail(msg: &'static str) -> Error {
    <Error as serde::de::Error>::custom(msg)
}

/// Deepest nesting of arrays and objects accepted (serde_json's limit).
pub(super) const MAX_DEPTH: u32 = 128;

/// A JSON value's byte span in the event data (never `null`: a `null` field is absent, as
/// serde reads `Option` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Raw {
    pub(super) start: u32,
    pub(super) end: u32,
}

impl Raw {
    pub(super) fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// An offset in data no longer than `u32::MAX` (checked by [`locate`]).
pub(super) fn off(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// A cursor over the event data.
pub(super) struct Cur<'a> {
    pub(super) b: &'a [u8],
    pub(super) i: usize,
    pub(super) depth: u32,
}

/// Known keys already read in one object (a repeated one is an error).
#[derive(Default)]
pub(super) struct Seen(u32);

impl Seen {
    pub(super) fn once(&mut self, bit: u32) -> Result<(), Error> {
        let m = 1u32 << bit;
        if self.0 & m != 0 {
            return Err(fail("duplicate field"));
        }
        self.0 |= m;
        Ok(())
    }
}

impl<'a> Cur<'a> {
    pub(super) fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    pub(super) fn lit(&mut self, word: &[u8]) -> Result<(), Error> {
        if self.b.get(self.i..).is_some_and(|r| r.starts_with(word)) {
            self.i += word.len();
            Ok(())
        } else {
            Err(fail("invalid literal"))
        }
    }

    /// Skips a run of digits; returns how many.
    pub(super) fn digits(&mut self) -> usize {
        let from = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - from
    }

    pub(super) fn number(&mut self) -> Result<(), Error> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(fail("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(fail("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(fail("invalid number"));
            }
        }
        Ok(())
    }

    /// Skips the string at the cursor (escapes and control characters checked as serde_json
    /// does; UTF-8 is checked only where the text is decoded); returns whether it has escapes.
    pub(super) fn string(&mut self) -> Result<bool, Error> {
        if self.peek() != Some(b'"') {
            return Err(fail("expected a string"));
        }
        self.i += 1;
        let mut escaped = false;
        loop {
            self.plain_run();
            let Some(&c) = self.b.get(self.i) else {
                return Err(fail("unterminated string"));
            };
            self.i += 1;
            match c {
                b'"' => return Ok(escaped),
                b'\\' => {
                    escaped = true;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            let hex = self.b.get(self.i + 1..self.i + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(fail("invalid escape"));
                            }
                            self.i += 5;
                        }
                        _ => return Err(fail("invalid escape")),
                    }
                }
                0..=0x1F => return Err(fail("control character in a string")),
                _ => {}
            }
        }
    }

    /// Moves to the next string byte that needs attention (`"`, `\\`, a control character) or
    /// to the end, eight bytes at a time.
    pub(super) fn plain_run(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        // High bit set in the lowest byte of `x` that is zero (higher bytes may be flagged
        // wrongly: only the lowest flag is used).
        let zero = |x: u64| x.wrapping_sub(ONES) & !x;
        loop {
            let rest = self.b.get(self.i..).unwrap_or(&[]);
            let mut w = [0u8; 8];
            match rest.get(..8) {
                Some(head) => w.copy_from_slice(head),
                // Zero padding past the end reads as a control character: the run stops at
                // the end.
                None => {
                    for (d, s) in w.iter_mut().zip(rest) {
                        *d = *s;
                    }
                }
            }
            let x = u64::from_le_bytes(w);
            // Bytes below 0x20 (subtracting 0x20 borrows and the high bit was clear), `"`, `\\`.
            let flags = (x.wrapping_sub(ONES * 0x20) & !x)
                | zero(x ^ (ONES * u64::from(b'"')))
                | zero(x ^ (ONES * u64::from(b'\\')));
            let flags = flags & HIGH;
            if flags != 0 {
                self.i += (flags.trailing_zeros() / 8) as usize;
                return;
            }
            self.i += 8;
        }
    }

    pub(super) fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(fail("nested too deep"));
        }
        Ok(())
    }

    /// Walks the object at the cursor (after whitespace): `f` gets each key, unescaped, and
    /// must read its value.
    pub(super) fn object(
        &mut self,
        mut f: impl FnMut(&mut Cur<'a>, &[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.ws();
        if self.peek() != Some(b'{') {
            return Err(fail("expected an object"));
        }
        self.i += 1;
        self.enter()?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(());
        }
        let b = self.b;
        loop {
            self.ws();
            let start = self.i;
            let escaped = self.string()?;
            let lit = b.get(start..self.i).unwrap_or(&[]);
            let decoded;
            let key: &[u8] = if escaped {
                decoded = serde_json::from_slice::<String>(lit)?;
                decoded.as_bytes()
            } else {
                lit.get(1..lit.len().saturating_sub(1)).unwrap_or(&[])
            };
            self.ws();
            if self.peek() != Some(b':') {
                return Err(fail("expected `:`"));
            }
            self.i += 1;
            f(self, key)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(fail("expected `,` or `}`")),
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Walks the array at the cursor (after whitespace): `f` gets each element's position and
    /// must read the element.
    pub(super) fn array(
        &mut self,
        mut f: impl FnMut(&mut Cur<'a>, usize) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.ws();
        if self.peek() != Some(b'[') {
            return Err(fail("expected an array"));
        }
        self.i += 1;
        self.enter()?;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            self.depth -= 1;
            return Ok(());
        }
        let mut pos = 0;
        loop {
            f(self, pos)?;
            pos += 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(fail("expected `,` or `]`")),
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Skips one value; returns its span.
    pub(super) fn value(&mut self) -> Result<Raw, Error> {
        self.ws();
        let start = self.i;
        match self.peek() {
            Some(b'"') => {
                self.string()?;
            }
            Some(b'{') => self.object(|c, _| c.value().map(drop))?,
            Some(b'[') => self.array(|c, _| c.value().map(drop))?,
            Some(b't') => self.lit(b"true")?,
            Some(b'f') => self.lit(b"false")?,
            Some(b'n') => self.lit(b"null")?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(fail("expected a value")),
        }
        Ok(Raw {
            start: off(start),
            end: off(self.i),
        })
    }

    /// Reads `null` if it is next.
    pub(super) fn null(&mut self) -> bool {
        self.ws();
        if self.b.get(self.i..).is_some_and(|r| r.starts_with(b"null")) {
            self.i += 4;
            true
        } else {
            false
        }
    }

    /// Any value, `None` for `null`.
    /// A known field's raw value; the field a second time in the same object (bit `bit` of
    /// `seen`) is an error.
    pub(super) fn raw_field(&mut self, seen: &mut Seen, bit: u32) -> Result<Option<Raw>, Error> {
        seen.once(bit)?;
        self.raw()
    }

    pub(super) fn raw(&mut self) -> Result<Option<Raw>, Error> {
        let r = self.value()?;
        Ok((self.b.get(r.range()) != Some(b"null")).then_some(r))
    }

    /// A string (decoded) or `null`; other types are an error.
    pub(super) fn text(&mut self) -> Result<Option<Cow<'a, str>>, Error> {
        if self.null() {
            return Ok(None);
        }
        let start = self.i;
        let escaped = self.string()?;
        let lit = self.b.get(start..self.i).unwrap_or(&[]);
        decode(lit, escaped).map(Some)
    }

    /// An optional object read by `f`.
    pub(super) fn opt<T>(
        &mut self,
        f: impl FnOnce(&mut Cur<'a>) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        if self.null() {
            Ok(None)
        } else {
            f(self).map(Some)
        }
    }

    /// An optional array of objects read by `f`.
    pub(super) fn list<T>(
        &mut self,
        mut f: impl FnMut(&mut Cur<'a>) -> Result<T, Error>,
    ) -> Result<Option<Vec<T>>, Error> {
        if self.null() {
            return Ok(None);
        }
        let mut v = Vec::new();
        self.array(|c, _| {
            v.push(f(c)?);
            Ok(())
        })?;
        Ok(Some(v))
    }
}

/// The text of a JSON string literal (quotes included): borrowed when it has no escapes.
pub(super) fn decode(lit: &[u8], escaped: bool) -> Result<Cow<'_, str>, Error> {
    if escaped {
        return serde_json::from_slice::<String>(lit).map(Cow::Owned);
    }
    let inner = lit.get(1..lit.len().saturating_sub(1)).unwrap_or(&[]);
    std::str::from_utf8(inner)
        .map(Cow::Borrowed)
        .map_err(|_| fail("invalid UTF-8 in a string"))
}
