//! Text folding for keyword matching, with a map back to the original bytes.
//!
//! Folding makes look-alike spellings compare equal. Character by character:
//! - invisible characters used to split words are dropped: zero-width space,
//!   non-joiner and joiner, the direction marks U+200E/U+200F, word joiner
//!   U+2060, Mongolian vowel separator U+180E, combining grapheme joiner
//!   U+034F, BOM U+FEFF and the soft hyphen;
//! - combining diacritics (U+0300..U+036F, U+1AB0..U+1AFF, U+1DC0..U+1DFF,
//!   U+20D0..U+20FF, U+FE20..U+FE2F) are dropped, and a precomposed letter
//!   whose canonical decomposition starts with an ASCII letter becomes that
//!   letter (`é` → `e`); marks of other scripts (kana voicing, Devanagari
//!   vowel signs, Cyrillic `й`) are kept, they change the letter;
//! - compatibility forms become their NFKC base (the compatibility
//!   decomposition, from [`crate::fold_table`]): full-width, mathematical and enclosed
//!   letters, ligatures, superscripts (`ＢＡＤ`, `𝐛𝐚𝐝`, `ⓑⓐⓓ` → `bad`);
//!   Hangul syllables and other canonical-only decompositions are kept whole;
//! - letters are lower-cased (ASCII and Unicode, char by char, so folding
//!   never depends on neighbouring characters except as below);
//! - Cyrillic and Greek letters that look identical to Latin ones
//!   ([`confusable`]) become the Latin letter when the word around them reads
//!   as Latin ([`latinize_at`]): it contains a Latin letter, or no letter of
//!   any other kind. Real Russian or Greek words (almost all contain a letter
//!   with no Latin twin: `к`, `и`, `λ`, `η`...) are left as they are;
//! - optionally, short runs of configured separator characters and of any
//!   whitespace (newlines included) are dropped, so `b.a.d`, `b a d` and
//!   `b\na\nd` fold to `bad`. Runs longer than [`Folder::max_separator_run`]
//!   are kept: they separate words.
//!
//! - Traditional Chinese characters become their Simplified form
//!   ([`crate::hanzi`]), so `賭博網站` and `赌博网站` compare equal.
//!
//! Other text is left as is.
//!
//! Every byte of folded text remembers the byte offset of the original
//! character that produced it ([`Folded::orig_range`]), so a match found in
//! folded text can be masked in the original text.

use crate::fold_table::decomposition;

/// Characters that are dropped by every fold: they are invisible and only ever
/// used inside words to dodge filters.
const INVISIBLE: [char; 10] = [
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{2060}', '\u{180E}', '\u{034F}',
    '\u{FEFF}', '\u{00AD}',
];

/// Whether `c` is one of the [`INVISIBLE`] characters.
#[inline]
fn is_invisible(c: char) -> bool {
    INVISIBLE.contains(&c)
}

/// Whether `c` is a combining diacritic of the general-purpose blocks (the
/// ones stacked on Latin letters to dodge filters). Marks that belong to a
/// script (kana, Indic, Hebrew, Arabic) are not in these blocks.
#[inline]
fn is_diacritic(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// Cyrillic and Greek letters that look like a Latin letter, and that letter
/// (lower case). Upper and lower case are listed separately because they do
/// not always look alike (Greek `Ν` looks like `N`, `ν` like `v`).
///
/// Cyrillic: `а е о р с х у і ј ѕ`, `А В Е Н І Ј К М О Р С Т Х У Ѕ`;
/// Greek: `α ε ι κ ν ο ρ τ υ χ`, `Α Β Ε Ζ Η Ι Κ Μ Ν Ο Ρ Τ Υ Χ`.
pub fn confusable(c: char) -> Option<char> {
    Some(match c {
        // Cyrillic lower case.
        '\u{0430}' => 'a',
        '\u{0435}' => 'e',
        '\u{043E}' => 'o',
        '\u{0440}' => 'p',
        '\u{0441}' => 'c',
        '\u{0445}' => 'x',
        '\u{0443}' => 'y',
        '\u{0456}' => 'i',
        '\u{0458}' => 'j',
        '\u{0455}' => 's',
        // Cyrillic upper case.
        '\u{0410}' => 'a',
        '\u{0412}' => 'b',
        '\u{0415}' => 'e',
        '\u{041D}' => 'h',
        '\u{0406}' => 'i',
        '\u{0408}' => 'j',
        '\u{041A}' => 'k',
        '\u{041C}' => 'm',
        '\u{041E}' => 'o',
        '\u{0420}' => 'p',
        '\u{0421}' => 'c',
        '\u{0422}' => 't',
        '\u{0425}' => 'x',
        '\u{0423}' => 'y',
        '\u{0405}' => 's',
        // Greek lower case.
        '\u{03B1}' => 'a',
        '\u{03B5}' => 'e',
        '\u{03B9}' => 'i',
        '\u{03BA}' => 'k',
        '\u{03BD}' => 'v',
        '\u{03BF}' => 'o',
        '\u{03C1}' => 'p',
        '\u{03C4}' => 't',
        '\u{03C5}' => 'u',
        '\u{03C7}' => 'x',
        // Greek upper case.
        '\u{0391}' => 'a',
        '\u{0392}' => 'b',
        '\u{0395}' => 'e',
        '\u{0396}' => 'z',
        '\u{0397}' => 'h',
        '\u{0399}' => 'i',
        '\u{039A}' => 'k',
        '\u{039C}' => 'm',
        '\u{039D}' => 'n',
        '\u{039F}' => 'o',
        '\u{03A1}' => 'p',
        '\u{03A4}' => 't',
        '\u{03A5}' => 'y',
        '\u{03A7}' => 'x',
        _ => return None,
    })
}

/// How far (in characters, each way) [`latinize_at`] looks for the word
/// around a confusable letter. The stream window and context grow by this
/// much so streamed and whole-text folding agree.
pub const SCRIPT_CONTEXT_CHARS: usize = 16;

/// Kinds of characters for the "does this word read as Latin" decision.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A Latin letter (ASCII, full-width, accented, mathematical...).
    Latin,
    /// A letter in the [`confusable`] table.
    Confusable,
    /// Any other letter (Cyrillic `к`, Greek `λ`, Chinese...).
    Other,
    /// Inside a word but not a letter: digits, marks, invisible characters.
    Neutral,
    /// Ends a word: whitespace, punctuation, symbols.
    Break,
}

fn kind(c: char) -> Kind {
    if c.is_ascii() {
        return if c.is_ascii_alphabetic() {
            Kind::Latin
        } else if c.is_ascii_digit() || c == '_' {
            Kind::Neutral
        } else {
            Kind::Break
        };
    }
    if confusable(c).is_some() {
        return Kind::Confusable;
    }
    if is_invisible(c) || is_diacritic(c) {
        return Kind::Neutral;
    }
    if c.is_alphabetic() {
        return if latin_base(c) {
            Kind::Latin
        } else {
            Kind::Other
        };
    }
    if c.is_numeric() {
        Kind::Neutral
    } else {
        Kind::Break
    }
}

/// Whether a non-ASCII `c` is a form of an ASCII letter or digit (its
/// compatibility decomposition starts with one: `é`, `Ｂ`, `𝐛`, `ⓑ`).
fn latin_base(c: char) -> bool {
    decomposition(c).latin_base
}

/// Whether the [`confusable`] letter at byte `at` (length `len`) of `text`
/// is folded to Latin: the word around it (up to [`SCRIPT_CONTEXT_CHARS`]
/// characters each way, not past whitespace or punctuation) contains a Latin
/// letter, or no letter other than confusable ones. Only `text` is read, so
/// the answer depends on the surroundings, never on where folding started.
pub fn latinize_at(text: &str, at: usize, len: usize) -> bool {
    latinize_scan(text, at, len).latinize()
}

/// What [`latinize_scan`] saw around a look-alike letter.
struct WordScan {
    /// A Latin letter in the window.
    latin: bool,
    /// A letter of another script in the window.
    other: bool,
    /// The byte range of the whole word when it is short enough (at most
    /// [`SCRIPT_CONTEXT_CHARS`] characters) that every letter in it sees all
    /// of it: the answer then holds for the whole word.
    whole: Option<(usize, usize)>,
    /// The forward window ran into the end of `text` (no word break, fewer
    /// than [`SCRIPT_CONTEXT_CHARS`] characters): text appended later can
    /// still change the answer.
    open_end: bool,
}

impl WordScan {
    fn latinize(&self) -> bool {
        self.latin || !self.other
    }
}

/// [`latinize_at`] with what it saw (see [`WordScan`]).
fn latinize_scan(text: &str, at: usize, len: usize) -> WordScan {
    let mut latin = false;
    let mut other = false;
    let before = text.get(..at).unwrap_or("");
    let after = text.get(at + len..).unwrap_or("");
    let mut word_start = at;
    let mut n = 1usize;
    let mut closed_back = true;
    for c in before.chars().rev() {
        if n > SCRIPT_CONTEXT_CHARS {
            closed_back = false;
            break;
        }
        match kind(c) {
            Kind::Break => break,
            Kind::Latin => latin = true,
            Kind::Other => other = true,
            Kind::Confusable | Kind::Neutral => {}
        }
        word_start -= c.len_utf8();
        n += 1;
    }
    let mut word_end = at + len;
    let mut seen_fwd = 0usize;
    let mut closed_fwd = true;
    let mut open_end = true;
    for c in after.chars() {
        if seen_fwd >= SCRIPT_CONTEXT_CHARS {
            closed_fwd = false;
            open_end = false;
            break;
        }
        match kind(c) {
            Kind::Break => {
                open_end = false;
                break;
            }
            Kind::Latin => latin = true,
            Kind::Other => other = true,
            Kind::Confusable | Kind::Neutral => {}
        }
        word_end += c.len_utf8();
        seen_fwd += 1;
    }
    if seen_fwd >= SCRIPT_CONTEXT_CHARS {
        open_end = false;
    }
    let whole = closed_back && closed_fwd && n + seen_fwd <= SCRIPT_CONTEXT_CHARS;
    WordScan {
        latin,
        other,
        whole: whole.then_some((word_start, word_end)),
        open_end,
    }
}

/// A look-alike letter near the end of a streamed text whose folding can
/// still change when more text arrives (its word is not finished and holds
/// no Latin letter yet), with the spelling it would get the other way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenLetter {
    /// First folded byte of the letter.
    pub fs: usize,
    /// End of its folded bytes.
    pub fe: usize,
    /// Its fold under the other look-alike decision.
    pub alt: String,
}

/// Whether `c` counts as part of a word for `whole_word` checks: ASCII
/// letters, digits and `_`, their full-width, accented or mathematical forms,
/// and the Latin look-alikes of [`confusable`].
pub fn is_word_char(c: char) -> bool {
    let w = fold_width(c);
    if w.is_ascii() {
        return w.is_ascii_alphanumeric() || w == '_';
    }
    confusable(c).is_some() || (c.is_alphanumeric() && latin_base(c))
}

/// Default separator characters (after width folding) ignored inside words by
/// lists that ask for it. Whitespace of any kind is always a separator too.
pub const DEFAULT_SEPARATORS: &str = " \t.-_*·|/\\,+~'\"";

/// Default longest run of separators that is still treated as "inside a word".
pub const DEFAULT_MAX_SEPARATOR_RUN: usize = 3;

/// Folds characters; built once from configuration.
#[derive(Debug, Clone)]
pub struct Folder {
    separators: Vec<char>,
    max_separator_run: usize,
    /// [`Folder::is_separator`] for the 128 ASCII characters, one bit each (the common
    /// case answered without the Unicode whitespace table or the list).
    ascii_separators: u128,
}

impl Default for Folder {
    fn default() -> Self {
        Folder::new(DEFAULT_SEPARATORS, DEFAULT_MAX_SEPARATOR_RUN)
    }
}

/// Folds one character into `push` (zero, one or several characters):
/// invisible characters and diacritics produce nothing, compatibility forms
/// their NFKC base, Latin letters with diacritics the bare letter, then
/// everything is lower-cased. With `latinize`, a [`confusable`] letter
/// becomes its Latin twin.
#[inline]
pub fn fold_char(c: char, latinize: bool, mut push: impl FnMut(char)) {
    if c.is_ascii() {
        push(c.to_ascii_lowercase());
        return;
    }
    let w = fold_width(c);
    if w.is_ascii() {
        push(w.to_ascii_lowercase());
        return;
    }
    if is_invisible(c) || is_diacritic(c) {
        return;
    }
    if latinize {
        if let Some(l) = confusable(c) {
            push(l);
            return;
        }
    }
    if let Some(s) = crate::hanzi::simplified(c) {
        push(s);
        return;
    }
    // The compatibility decomposition, when it differs from the canonical
    // one or is a Latin letter with marks.
    if let Some(parts) = decomposition(c).parts {
        for d in parts.chars() {
            if is_invisible(d) || is_diacritic(d) {
                continue;
            }
            if latinize {
                if let Some(l) = confusable(d) {
                    push(l);
                    continue;
                }
            }
            for l in d.to_lowercase() {
                push(l);
            }
        }
    } else {
        for l in c.to_lowercase() {
            push(l);
        }
    }
}

/// Full-width to half-width: U+FF01..U+FF5E to U+0021..U+007E, U+3000 to space.
#[inline]
pub fn fold_width(c: char) -> char {
    let u = c as u32;
    if (0xFF01..=0xFF5E).contains(&u) {
        // In range by the check above, so the subtraction lands in 0x21..=0x7E.
        char::from_u32(u - 0xFF01 + 0x21).unwrap_or(c)
    } else if u == 0x3000 {
        ' '
    } else {
        c
    }
}

impl Folder {
    /// A folder ignoring the characters of `separators` (width-folded and
    /// lower-cased first) in runs of at most `max_separator_run` characters.
    pub fn new(separators: &str, max_separator_run: usize) -> Folder {
        let mut seps: Vec<char> = Vec::new();
        for c in separators.chars() {
            fold_char(c, false, |f| {
                if !seps.contains(&f) {
                    seps.push(f)
                }
            });
        }
        let mut folder = Folder {
            separators: seps,
            max_separator_run,
            ascii_separators: 0,
        };
        folder.ascii_separators = (0u8..128)
            .filter(|&b| folder.is_separator_slow(char::from(b)))
            .fold(0u128, |set, b| set | 1u128 << b);
        folder
    }

    /// The longest separator run that is dropped.
    pub fn max_separator_run(&self) -> usize {
        self.max_separator_run
    }

    /// Whether `c` (an original character) is a separator after folding:
    /// any whitespace (newlines included), or a configured separator.
    #[inline]
    fn is_separator(&self, c: char) -> bool {
        if c.is_ascii() {
            return self.ascii_separators & (1u128 << (c as u32)) != 0;
        }
        self.is_separator_slow(c)
    }

    /// [`Folder::is_separator`] without the ASCII table.
    fn is_separator_slow(&self, c: char) -> bool {
        if c.is_whitespace() {
            return true;
        }
        let f = fold_width(c);
        let f = if f.is_ascii() {
            f.to_ascii_lowercase()
        } else {
            f
        };
        self.separators.contains(&f)
    }

    /// Folds a keyword at build time. With `drop_separators`, every separator
    /// is removed (a keyword never contains a word break). With `latinize`,
    /// confusable letters are folded by the same word rule as text
    /// ([`latinize_at`], applied to the keyword itself); without, they are
    /// kept (the keyword builder adds both forms when they differ).
    pub fn fold_word(&self, word: &str, drop_separators: bool, latinize: bool) -> String {
        let mut out = String::with_capacity(word.len());
        for (i, c) in word.char_indices() {
            if drop_separators && self.is_separator(c) {
                continue;
            }
            let lat = latinize && confusable(c).is_some() && latinize_at(word, i, c.len_utf8());
            fold_char(c, lat, |f| out.push(f));
        }
        out
    }

    /// Folds `text[start..]` into `out` (cleared first). Offsets recorded in
    /// the map are absolute offsets into `text`. `start` must be a char
    /// boundary (it is snapped down to one otherwise).
    ///
    /// Texts of 4 GiB or more are not supported (offsets are `u32`); the
    /// engine never calls this with such texts.
    pub fn fold_into(&self, text: &str, start: usize, drop_separators: bool, out: &mut Folded) {
        out.text.clear();
        out.map.clear();
        let mut start = start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        out.base = start;
        let Some(rest) = text.get(start..) else {
            return;
        };
        // Remaining separators of the current run, and whether the run is
        // dropped (decided once, when the run starts).
        let mut run_left = 0usize;
        let mut run_drop = false;
        // Characters dropped since the last kept one; past `max_gap` they are
        // kept (and break any keyword), so a match spans a bounded number of
        // original bytes (the stream window depends on it).
        let mut gap = 0usize;
        let max_gap = self.max_gap(drop_separators);
        // The last short word whose look-alike decision is known.
        let mut word: Option<(usize, usize, bool)> = None;
        let mut iter = rest.char_indices().peekable();
        while let Some((i, c)) = iter.next() {
            let at = start + i;
            if drop_separators {
                if run_left == 0 && self.is_separator(c) {
                    // Count the run (bounded look-ahead: max_separator_run + 1).
                    let mut n = 1usize;
                    let mut probe = iter.clone();
                    while n <= self.max_separator_run {
                        match probe.next() {
                            Some((_, d)) if self.is_separator(d) => n += 1,
                            _ => break,
                        }
                    }
                    run_drop = n <= self.max_separator_run;
                    run_left = n;
                }
                if run_left > 0 {
                    run_left -= 1;
                    if run_drop && gap < max_gap {
                        gap += 1;
                        continue;
                    }
                }
            }
            let pos = u32::try_from(at).unwrap_or(u32::MAX);
            let text_buf = &mut out.text;
            let map = &mut out.map;
            if c.is_ascii() {
                text_buf.push(c.to_ascii_lowercase());
                map.push(pos);
                gap = 0;
                continue;
            }
            let before = text_buf.len();
            let lat = confusable(c).is_some()
                && match word {
                    Some((ws, we, v)) if ws <= at && at < we => v,
                    _ => {
                        let scan = latinize_scan(text, at, c.len_utf8());
                        let v = scan.latinize();
                        word = scan.whole.map(|(ws, we)| (ws, we, v));
                        v
                    }
                };
            fold_char(c, lat, |f| text_buf.push(f));
            if text_buf.len() == before {
                if gap < max_gap {
                    gap += 1;
                    continue;
                }
                // Too many invisible characters or marks in a row: keep this
                // one as is (no keyword contains it).
                text_buf.push(c);
            }
            gap = 0;
            for _ in before..text_buf.len() {
                map.push(pos);
            }
        }
    }

    /// Most characters dropped in a row inside a word (separators with
    /// `drop_separators`, invisible characters, diacritics); further ones are
    /// kept and break the word.
    pub fn max_gap(&self, drop_separators: bool) -> usize {
        if drop_separators {
            self.max_separator_run + DROP_ALLOWANCE
        } else {
            DROP_ALLOWANCE
        }
    }

    /// The look-alike letters of `folded` (folded from `text`) whose folding
    /// is not final because `text` may go on: letters in the last
    /// [`SCRIPT_CONTEXT_CHARS`] characters, in a word not yet ended that holds
    /// no Latin letter. Sorted by folded position. The stream scanner treats
    /// both spellings of these letters as possible.
    pub(crate) fn open_letters(&self, text: &str, folded: &Folded, out: &mut Vec<OpenLetter>) {
        out.clear();
        // Look-alike letters are not ASCII: an ASCII tail has none.
        let tail = text.len().saturating_sub(SCRIPT_CONTEXT_CHARS);
        if text.as_bytes().get(tail..).is_some_and(<[u8]>::is_ascii) {
            return;
        }
        for (i, c) in text.char_indices().rev().take(SCRIPT_CONTEXT_CHARS) {
            if i < folded.base || kind(c) == Kind::Break {
                break;
            }
            if confusable(c).is_none() {
                continue;
            }
            let scan = latinize_scan(text, i, c.len_utf8());
            if !scan.open_end || scan.latin {
                continue;
            }
            let fs = folded.folded_pos(i);
            let fe = folded.folded_pos(i + c.len_utf8());
            if fe <= fs {
                continue;
            }
            let mut alt = String::new();
            fold_char(c, !scan.latinize(), |f| alt.push(f));
            out.push(OpenLetter { fs, fe, alt });
        }
        out.reverse();
    }
}

/// Invisible characters and diacritics dropped in a row between two letters
/// (on top of a separator run).
pub const DROP_ALLOWANCE: usize = 6;

/// Folded text plus, for each folded byte, the offset of the original
/// character it came from.
#[derive(Debug, Default, Clone)]
pub struct Folded {
    /// The folded text.
    pub text: String,
    map: Vec<u32>,
    base: usize,
}

impl Folded {
    /// An empty buffer, to be filled by [`Folder::fold_into`].
    pub fn new() -> Folded {
        Folded::default()
    }

    /// Empties the buffer as folding nothing from `base` would.
    pub(crate) fn clear_at(&mut self, base: usize) {
        self.text.clear();
        self.map.clear();
        self.base = base;
    }

    /// The original offset the folding started at.
    pub fn base(&self) -> usize {
        self.base
    }

    /// Maps the folded byte range `fs..fe` back to the original byte range in
    /// `original` (the text that was folded): from the start of the character
    /// that produced folded byte `fs` to the end of the character that produced
    /// folded byte `fe - 1`. `None` for an empty or out-of-range span.
    pub fn orig_range(&self, original: &str, fs: usize, fe: usize) -> Option<(usize, usize)> {
        if fe <= fs {
            return None;
        }
        let s = *self.map.get(fs)? as usize;
        let last = *self.map.get(fe - 1)? as usize;
        let last_len = original.get(last..)?.chars().next()?.len_utf8();
        Some((s, last + last_len))
    }

    /// The first folded byte produced by an original character at offset
    /// `>= orig` (the folded length when there is none).
    pub fn folded_pos(&self, orig: usize) -> usize {
        self.map.partition_point(|&o| (o as usize) < orig)
    }

    /// The original offset of the character that produced folded byte `fs`.
    pub fn orig_at(&self, fs: usize) -> Option<usize> {
        self.map.get(fs).map(|&o| o as usize)
    }

    /// The end (original offset) of the character that produced the last
    /// folded byte, if any.
    pub fn orig_end(&self, original: &str) -> Option<usize> {
        let last = *self.map.last()? as usize;
        Some(last + original.get(last..)?.chars().next()?.len_utf8())
    }

    /// Bytes held by this buffer (for memory accounting in tests).
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.map.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(f: &Folder, s: &str, seps: bool) -> Folded {
        let mut out = Folded::new();
        f.fold_into(s, 0, seps, &mut out);
        out
    }

    #[test]
    fn folds_case_and_width() {
        let f = Folder::default();
        assert_eq!(
            fold(&f, "ＨｅＬＬｏ　Ｗｏｒｌｄ！", false).text,
            "hello world!"
        );
        assert_eq!(fold(&f, "ÄÖÜ Straße ΣΑΣ", false).text, "aou straße σασ");
        assert_eq!(fold(&f, "敏感词", false).text, "敏感词");
    }

    #[test]
    fn drops_invisible_and_short_separator_runs() {
        let f = Folder::default();
        assert_eq!(fold(&f, "b\u{200B}a\u{FEFF}d", false).text, "bad");
        assert_eq!(fold(&f, "b.a.d", true).text, "bad");
        assert_eq!(fold(&f, "b a  d", true).text, "bad");
        assert_eq!(fold(&f, "b.a.d", false).text, "b.a.d");
        // A run longer than the limit separates words.
        assert_eq!(fold(&f, "b    ad", true).text, "b    ad");
        assert_eq!(fold(&f, "敏．感＿词", true).text, "敏感词");
    }

    #[test]
    fn compatibility_forms_marks_and_invisibles() {
        let f = Folder::default();
        assert_eq!(
            fold(&f, "𝐁𝐎𝐌𝐁 𝒃𝒐𝒎𝒃 ⓑⓞⓜⓑ ﬁne ²", false).text,
            "bomb bomb bomb fine 2"
        );
        assert_eq!(
            fold(&f, "b\u{0300}o\u{0301}\u{0302}m\u{20DD}b", false).text,
            "bomb"
        );
        assert_eq!(fold(&f, "Crème Brûlée ÇA", false).text, "creme brulee ca");
        for z in [
            '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{2060}', '\u{180E}',
            '\u{034F}', '\u{FEFF}',
        ] {
            assert_eq!(fold(&f, &format!("bo{z}mb"), false).text, "bomb", "{z:?}");
        }
        // Marks of other scripts and Hangul syllables are kept whole.
        assert_eq!(fold(&f, "がぎ 한국어 й ё", false).text, "がぎ 한국어 й ё");
        // Half-width katakana become full-width (NFKC).
        assert_eq!(fold(&f, "ｶﾀｶﾅ", false).text, "カタカナ");
    }

    #[test]
    fn look_alikes_fold_only_in_words_that_read_as_latin() {
        let f = Folder::default();
        // Cyrillic а е о р с х у і and Greek ο α ε ι κ ν ρ τ υ χ next to Latin.
        assert_eq!(
            fold(&f, "\u{0441}\u{043E}\u{0441}\u{0430}\u{0456}ne", false).text,
            "cocaine"
        );
        assert_eq!(
            fold(&f, "\u{0440}\u{0435}\u{0445}\u{0443}m", false).text,
            "pexym"
        );
        assert_eq!(
            fold(
                &f,
                "\u{03BF}\u{03B1}\u{03B5}\u{03B9}\u{03BA}\u{03BD}\u{03C1}\u{03C4}\u{03C5}\u{03C7}z",
                false
            )
            .text,
            "oaeikvptuxz"
        );
        // Upper case look-alikes: ΒΟΜΒ (Greek), ВОМВ (Cyrillic).
        assert_eq!(
            fold(&f, "\u{0392}\u{039F}\u{039C}\u{0392}", false).text,
            "bomb"
        );
        assert_eq!(
            fold(&f, "\u{0412}\u{041E}\u{041C}\u{0412}", false).text,
            "bomb"
        );
        // A word of look-alikes only reads as Latin.
        assert_eq!(fold(&f, "\u{0441}\u{043E}\u{0440}", false).text, "cop");
        // Real Russian and Greek words are left alone.
        for w in [
            "сорока",
            "охрана",
            "пароль",
            "Россия",
            "καλημέρα",
            "ελληνικά",
            "ΑΘΗΝΑ",
        ] {
            assert_eq!(fold(&f, w, false).text, w.to_lowercase(), "{w}");
        }
        // The decision is per word: punctuation ends it.
        assert_eq!(fold(&f, "сорока, cop", false).text, "сорока, cop");
    }

    proptest::proptest! {
        /// The per-word cache in `fold_into` gives the same look-alike
        /// decisions as asking [`latinize_at`] for every letter.
        #[test]
        fn cached_word_decisions_match_per_letter(
            picks in proptest::collection::vec(0usize..9, 0..80),
        ) {
            const ALPHABET: [char; 9] = ['с', 'о', 'к', 'a', 'b', ' ', 'λ', 'ο', 'Ν'];
            let text: String = picks.iter().filter_map(|&i| ALPHABET.get(i)).collect();
            let naive: String = text
                .char_indices()
                .flat_map(|(i, c)| match confusable(c) {
                    Some(l) if latinize_at(&text, i, c.len_utf8()) => vec![l],
                    _ => c.to_lowercase().collect(),
                })
                .collect();
            let f = Folder::default();
            proptest::prop_assert_eq!(fold(&f, &text, false).text, naive);
        }
    }

    #[test]
    fn ascii_separator_table_agrees_with_the_full_check() {
        for f in [
            Folder::default(),
            Folder::new(".", 3),
            Folder::new("ＡＢ_", 2),
        ] {
            for b in 0u8..128 {
                let c = char::from(b);
                assert_eq!(f.is_separator(c), f.is_separator_slow(c), "{c:?}");
            }
        }
        // Configured separators are width-folded and lower-cased first.
        assert!(Folder::new("Ａ", 3).is_separator('a'));
        assert!(!Folder::default().is_separator('a'));
        assert!(Folder::default().is_separator('\n'));
    }

    #[test]
    fn open_letters_of_an_ascii_tail_are_none() {
        let f = Folder::default();
        let mut open = Vec::new();
        // A look-alike word still open at the end is reported...
        let text = "word \u{0441}\u{043E}";
        f.open_letters(text, &fold(&f, text, false), &mut open);
        assert_eq!(open.len(), 2);
        // ... and no longer once 16 ASCII characters follow it.
        let text = "\u{0441}\u{043E}0123456789abcdef";
        f.open_letters(text, &fold(&f, text, false), &mut open);
        assert!(open.is_empty());
    }

    #[test]
    fn whitespace_is_a_separator() {
        let f = Folder::default();
        assert_eq!(fold(&f, "b\no\r\nm\u{00A0}b", true).text, "bomb");
        assert_eq!(fold(&f, "b\u{2003}o\u{3000}mb", true).text, "bomb");
        assert_eq!(fold(&f, "b\no", false).text, "b\no");
        // Even without whitespace in the configured separators.
        let only_dots = Folder::new(".", 3);
        assert_eq!(fold(&only_dots, "b.o\nm b", true).text, "bomb");
    }

    #[test]
    fn dropped_runs_are_bounded() {
        let f = Folder::default();
        let six = "\u{200B}".repeat(DROP_ALLOWANCE);
        assert_eq!(fold(&f, &format!("b{six}omb"), false).text, "bomb");
        let seven = "\u{200B}".repeat(DROP_ALLOWANCE + 1);
        assert_ne!(fold(&f, &format!("b{seven}omb"), false).text, "bomb");
        // Separators and invisible characters alternating count together.
        let mixed = ".\u{200B}".repeat(6);
        assert_ne!(fold(&f, &format!("b{mixed}omb"), true).text, "bomb");
        assert_eq!(fold(&f, "b.\u{200B}.\u{200B}omb", true).text, "bomb");
    }

    #[test]
    fn offsets_map_back_through_every_fold() {
        let f = Folder::default();
        let s = "x 𝐜\u{0301}\u{200B}\u{043E}\n\u{0441}ａine y";
        let out = fold(&f, s, true);
        let fs = out.text.find("cocaine").unwrap();
        let (os, oe) = out.orig_range(s, fs, fs + 7).unwrap();
        assert_eq!(&s[os..oe], "𝐜\u{0301}\u{200B}\u{043E}\n\u{0441}ａine");
    }

    #[test]
    fn maps_back_to_original_bytes() {
        let f = Folder::default();
        let s = "xx Ｂ.Ａ.Ｄ yy";
        let out = fold(&f, s, true);
        let fs = out.text.find("bad").unwrap();
        let (os, oe) = out.orig_range(s, fs, fs + 3).unwrap();
        assert_eq!(&s[os..oe], "Ｂ.Ａ.Ｄ");
        assert_eq!(out.folded_pos(os), fs);
    }

    #[test]
    fn folding_from_an_offset_keeps_absolute_offsets() {
        let f = Folder::default();
        let s = "héllo WORLD";
        let mut out = Folded::new();
        f.fold_into(s, 7, false, &mut out);
        assert_eq!(out.text, "world");
        assert_eq!(out.orig_range(s, 0, 5), Some((7, 12)));
        // A start inside a character is snapped down to its boundary.
        f.fold_into(s, 2, false, &mut out);
        assert_eq!(out.base(), 1);
    }

    #[test]
    fn multi_char_lowercase_maps_to_the_whole_source_char() {
        let f = Folder::default();
        let s = "aİb";
        let out = fold(&f, s, false);
        assert_eq!(out.text, "aib");
        // Folded 'i' (byte 1) comes from 'İ' at bytes 1..3.
        assert_eq!(out.orig_range(s, 1, 2), Some((1, 3)));
    }
}
