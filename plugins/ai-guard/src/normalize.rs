//! Text folding for keyword matching, with a map back to the original bytes.
//!
//! Folding makes look-alike spellings compare equal:
//! - full-width ASCII (U+FF01..U+FF5E) becomes ASCII, the ideographic space
//!   U+3000 becomes a space;
//! - letters are lower-cased (ASCII and Unicode simple lowercase, char by char,
//!   so folding never depends on neighbouring characters);
//! - invisible characters used to split words (zero-width space/joiners, word
//!   joiner, BOM, soft hyphen) are always dropped;
//! - optionally, short runs of configured separator characters are dropped, so
//!   `b.a.d` and `b a d` fold to `bad`. Runs longer than
//!   [`Folder::max_separator_run`] are kept: they separate words.
//!
//! Chinese (and all other) text is otherwise left as is.
//!
//! Every byte of folded text remembers the byte offset of the original
//! character that produced it ([`Folded::orig_range`]), so a match found in
//! folded text can be masked in the original text.

/// Characters that are dropped by every fold: they are invisible and only ever
/// used inside words to dodge filters.
const INVISIBLE: [char; 6] = [
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}',
];

/// Default separator characters (after width folding) ignored inside words by
/// lists that ask for it.
pub const DEFAULT_SEPARATORS: &str = " \t.-_*·|/\\,+~'\"";

/// Default longest run of separators that is still treated as "inside a word".
pub const DEFAULT_MAX_SEPARATOR_RUN: usize = 3;

/// Folds characters; built once from configuration.
#[derive(Debug, Clone)]
pub struct Folder {
    separators: Vec<char>,
    max_separator_run: usize,
}

impl Default for Folder {
    fn default() -> Self {
        Folder::new(DEFAULT_SEPARATORS, DEFAULT_MAX_SEPARATOR_RUN)
    }
}

/// Folds one character into `push` (zero, one or several characters).
/// Width folding, then lowercase; invisible characters produce nothing.
#[inline]
pub fn fold_char(c: char, mut push: impl FnMut(char)) {
    if c.is_ascii() {
        push(c.to_ascii_lowercase());
        return;
    }
    let c = fold_width(c);
    if c.is_ascii() {
        push(c.to_ascii_lowercase());
    } else if INVISIBLE.contains(&c) {
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
            fold_char(c, |f| {
                if !seps.contains(&f) {
                    seps.push(f)
                }
            });
        }
        Folder {
            separators: seps,
            max_separator_run,
        }
    }

    /// The longest separator run that is dropped.
    pub fn max_separator_run(&self) -> usize {
        self.max_separator_run
    }

    /// Whether `c` (an original character) is a separator after folding.
    fn is_separator(&self, c: char) -> bool {
        let f = fold_width(c);
        let f = if f.is_ascii() {
            f.to_ascii_lowercase()
        } else {
            f
        };
        self.separators.contains(&f)
    }

    /// Folds a keyword at build time. With `drop_separators`, every separator
    /// is removed (a keyword never contains a word break).
    pub fn fold_word(&self, word: &str, drop_separators: bool) -> String {
        let mut out = String::with_capacity(word.len());
        for c in word.chars() {
            if drop_separators && self.is_separator(c) {
                continue;
            }
            fold_char(c, |f| out.push(f));
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
                    if run_drop {
                        continue;
                    }
                }
            }
            let pos = u32::try_from(at).unwrap_or(u32::MAX);
            let text_buf = &mut out.text;
            let map = &mut out.map;
            fold_char(c, |f| {
                let before = text_buf.len();
                text_buf.push(f);
                for _ in before..text_buf.len() {
                    map.push(pos);
                }
            });
        }
    }
}

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
        assert_eq!(fold(&f, "ÄÖÜ Straße ΣΑΣ", false).text, "äöü straße σασ");
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
        assert_eq!(out.text, "ai\u{307}b");
        // Folded 'i' (byte 1) comes from 'İ' at bytes 1..3.
        assert_eq!(out.orig_range(s, 1, 2), Some((1, 3)));
    }
}
