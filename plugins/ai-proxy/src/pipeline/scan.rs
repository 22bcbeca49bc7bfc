//! The pass-through's fast scan: one pass over a chunk, eight bytes at a time, finding line
//! ends and the `usage`, `finish_reason` and `model` keys of `data:` lines; anything unusual
//! sends the stream to the exact path (the SDK's SSE parser).

use super::*;

/// What the fast scan looks for.
pub(super) struct Keys<'a> {
    /// `"finish_reason"` with a string value.
    pub(super) finish: bool,
    /// The first `"model"` string value, compared with this pin.
    pub(super) model: Option<&'a ModelPin>,
}

/// The kind of the line in progress (known from its first `:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum LineKind {
    /// No `:` seen yet.
    #[default]
    Unknown,
    /// A `data:` line.
    Data,
    /// A comment or another field (`event:`, `id:`, ...).
    Other,
}

/// The first `"model"` string value of an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum ModelState {
    /// Not seen yet.
    #[default]
    Undecided,
    /// Seen: it names the pinned model (or is not a whole string).
    Same,
    /// Seen at these offsets (quotes), naming another model.
    Differs(usize, usize),
}

/// The fast scan's position in the buffer and what it knows of the event in progress.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Scan {
    /// Where scanning resumes.
    pub(super) pos: usize,
    pub(super) line_start: usize,
    pub(super) line: LineKind,
    /// Where the data line's value begins.
    pub(super) value_start: usize,
    pub(super) blk_start: usize,
    pub(super) value: Option<(usize, usize)>,
    pub(super) usage: bool,
    pub(super) finish: bool,
    pub(super) model: ModelState,
    /// The opening quote of a model value whose end has not arrived.
    pub(super) hold_at: Option<usize>,
}

impl Scan {
    /// Moves every offset back by `n` (the bytes before the event in progress were dropped).
    pub(super) fn shift(&mut self, n: usize) {
        let back = |x: usize| x.saturating_sub(n);
        self.pos = back(self.pos);
        self.line_start = back(self.line_start);
        self.value_start = back(self.value_start);
        self.blk_start = back(self.blk_start);
        self.value = self.value.map(|(s, e)| (back(s), back(e)));
        if let ModelState::Differs(a, b) = self.model {
            self.model = ModelState::Differs(back(a), back(b));
        }
        self.hold_at = self.hold_at.map(back);
    }
}

/// An event the fast scan completed: its bytes and what it carries.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rec {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) value: Option<(usize, usize)>,
    pub(super) usage: bool,
    pub(super) finish: bool,
    pub(super) model: ModelState,
}

/// The keys the fast scan recognizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    Usage,
    Model,
    Finish,
}

/// A bit (the top bit of the byte) for every byte of `w` that is `\n`, `\r` or `:`, and for
/// the rare `\x1a` and `*` (which the scan skips): `\n` (0x0A) and `:` (0x3A) differ only
/// in the bits 0x30, so one comparison of `w | 0x30..` finds both.
#[inline]
pub(super) fn stops_in(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const EACH: u64 = 0x0101_0101_0101_0101;
    #[inline]
    pub(super) fn zero_bytes(v: u64) -> u64 {
        !((v & LOW7).wrapping_add(LOW7) | v | LOW7)
    }
    zero_bytes((w | (EACH * 0x30)) ^ (EACH * u64::from(b':')))
        | zero_bytes(w ^ (EACH * u64::from(b'\r')))
}

/// The next `\n`, `\r` or `:` at or after `i` (or a rare byte [`stops_in`] also reports),
/// eight bytes at a time.
pub(super) fn next_stop(buf: &[u8], mut i: usize) -> Option<usize> {
    while let Some(word) = buf.get(i..i + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let m = stops_in(u64::from_le_bytes(bytes));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    while let Some(&b) = buf.get(i) {
        if matches!(b, b'\n' | b'\r' | b':' | b'\x1a' | b'*') {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The key whose closing quote (then whitespace) precedes the `:` at `colon`, within the
/// line beginning at `line_start`; `None` for any other key or none.
pub(super) fn key_before(buf: &[u8], line_start: usize, colon: usize) -> Option<Key> {
    let mut j = colon;
    while j > line_start && buf.get(j - 1).is_some_and(u8::is_ascii_whitespace) {
        j -= 1;
    }
    if j <= line_start || buf.get(j - 1) != Some(&b'"') {
        return None;
    }
    let close = j - 1;
    // Most keys are rejected on their last letter.
    let (name, key) = match buf.get(close.checked_sub(1)?)? {
        b'e' => (&b"usage"[..], Key::Usage),
        b'l' => (&b"model"[..], Key::Model),
        b'n' => (&b"finish_reason"[..], Key::Finish),
        _ => return None,
    };
    let open = close.checked_sub(name.len() + 1)?;
    if open < line_start || buf.get(open) != Some(&b'"') || buf.get(open + 1..close) != Some(name) {
        return None;
    }
    let backslashes = buf
        .get(line_start..open)
        .unwrap_or_default()
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count();
    (backslashes % 2 == 0).then_some(key)
}

/// Where the JSON string opening at `open` closes, in the line: `Ok(Some(close))`,
/// `Ok(None)` when the line ends first (not a whole string), `Err(())` when the buffer ends
/// first.
pub(super) fn string_close(buf: &[u8], open: usize) -> Result<Option<usize>, ()> {
    let mut k = open + 1;
    loop {
        match buf.get(k) {
            None => return Err(()),
            Some(b'\n' | b'\r') => return Ok(None),
            Some(b'"') => return Ok(Some(k)),
            Some(b'\\') => match buf.get(k + 1) {
                None => return Err(()),
                Some(b'\n' | b'\r') => return Ok(None),
                Some(_) => k += 2,
            },
            Some(_) => k += 1,
        }
    }
}

/// Scans `buf` from `st.pos`: completes events into `recs` and leaves `st` at the event in
/// progress. `false` when the stream does not fit the fast path (a `\r`, a second `data`
/// line in an event, a line without `:`, a key that matters outside the data line).
pub(super) fn scan(buf: &[u8], st: &mut Scan, recs: &mut Vec<Rec>, keys: &Keys<'_>) -> bool {
    st.hold_at = None;
    let mut i = st.pos;
    while let Some(p) = next_stop(buf, i) {
        i = p + 1;
        match buf.get(p) {
            Some(b'\n') => {
                if p == st.line_start {
                    recs.push(Rec {
                        start: st.blk_start,
                        end: p + 1,
                        value: st.value,
                        usage: st.usage,
                        finish: st.finish,
                        model: st.model,
                    });
                    *st = Scan {
                        blk_start: p + 1,
                        ..Scan::default()
                    };
                } else {
                    match st.line {
                        LineKind::Data if st.value.is_none() => {
                            st.value = Some((st.value_start, p));
                        }
                        LineKind::Other => {}
                        // A second data line, or a line without `:`.
                        _ => return false,
                    }
                }
                st.line_start = p + 1;
                st.line = LineKind::Unknown;
            }
            Some(b':') => {
                if st.line == LineKind::Unknown {
                    if buf.get(st.line_start..p) == Some(&b"data"[..]) {
                        match buf.get(p + 1) {
                            None => {
                                st.pos = p;
                                return true;
                            }
                            Some(b' ') => st.value_start = p + 2,
                            Some(_) => st.value_start = p + 1,
                        }
                        st.line = LineKind::Data;
                        continue;
                    }
                    st.line = LineKind::Other;
                }
                let Some(key) = key_before(buf, st.line_start, p) else {
                    continue;
                };
                let wanted = match key {
                    Key::Usage => true,
                    Key::Finish => keys.finish,
                    Key::Model => keys.model.is_some() && st.model == ModelState::Undecided,
                };
                if !wanted {
                    continue;
                }
                if st.line != LineKind::Data {
                    return false;
                }
                let mut v = p + 1;
                while buf.get(v).is_some_and(|b| b == &b' ' || b == &b'\t') {
                    v += 1;
                }
                let Some(&first) = buf.get(v) else {
                    st.pos = p;
                    return true;
                };
                match key {
                    Key::Usage => st.usage |= first != b'n',
                    Key::Finish => st.finish |= first == b'"',
                    Key::Model if first == b'"' => match string_close(buf, v) {
                        Err(()) => {
                            st.hold_at = Some(v);
                            st.pos = p;
                            return true;
                        }
                        Ok(None) => st.model = ModelState::Same,
                        Ok(Some(close)) => {
                            let differs = keys.model.is_some_and(|pin| pin.differs(buf, v, close));
                            st.model = if differs {
                                ModelState::Differs(v, close)
                            } else {
                                ModelState::Same
                            };
                        }
                    },
                    Key::Model => {}
                }
            }
            Some(b'\r') => return false,
            // `\x1a` or `*`.
            _ => {}
        }
    }
    st.pos = buf.len();
    true
}
