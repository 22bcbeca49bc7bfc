//! Keyword matching over large word lists (Chinese and English) in one pass.
//!
//! Words are folded with [`Folder::fold_word`] at build time and matched by an
//! Aho-Corasick automaton (leftmost-longest) over folded text. Lists that
//! ignore separators inside words share one automaton, the others another, so
//! at most two automatons exist whatever the number of lists.
//!
//! The automaton is aho-corasick's contiguous NFA used through its
//! [`Automaton`] trait: the same automaton searches (unanchored) and tells the
//! stream scanner whether the end of a streamed text could still be the start
//! of a word (anchored runs, `KeywordSet::live_start`).

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::nfa::contiguous;
use aho_corasick::{Anchored, Input, MatchKind};

use crate::normalize::{Folded, Folder, OpenLetter};

/// One keyword hit, in original text offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeywordHit {
    /// Start byte in the original text.
    pub start: usize,
    /// End byte (exclusive) in the original text.
    pub end: usize,
    /// The rule (list) the word belongs to.
    pub rule: u32,
}

/// Why a word was rejected at build time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordError {
    /// The word folds to nothing (empty, or only separators / invisible chars).
    Empty,
    /// The folded word is longer than [`MAX_WORD_CHARS`] characters (it would
    /// make the stream hold-back window needlessly large).
    TooLong,
}

/// Longest keyword accepted, in folded characters.
pub const MAX_WORD_CHARS: usize = 256;

/// Collects word lists, then builds a [`KeywordSet`].
#[derive(Debug, Default)]
pub struct KeywordSetBuilder {
    groups: [GroupBuilder; 2],
}

#[derive(Debug, Default)]
struct GroupBuilder {
    words: Vec<String>,
    /// Per word: rule index << 1 | whole_word.
    meta: Vec<u32>,
    longest_chars: usize,
}

impl KeywordSetBuilder {
    /// An empty builder.
    pub fn new() -> KeywordSetBuilder {
        KeywordSetBuilder::default()
    }

    /// Adds one word for `rule`. `whole_word` requires the match not to touch
    /// an ASCII letter, digit or underscore on either side (useful for English
    /// words inside longer words); `ignore_separators` lets the word match with
    /// short separator runs inside it.
    pub fn add(
        &mut self,
        folder: &Folder,
        word: &str,
        rule: u32,
        whole_word: bool,
        ignore_separators: bool,
    ) -> Result<(), WordError> {
        let folded = folder.fold_word(word.trim(), ignore_separators, true);
        if folded.is_empty() {
            return Err(WordError::Empty);
        }
        // A keyword written in Cyrillic or Greek look-alikes only (`сор`)
        // folds to Latin like such a word in text would; its unfolded form is
        // kept too, so it still matches inside a real Russian or Greek word
        // (where look-alikes are left as they are).
        let kept = folder.fold_word(word.trim(), ignore_separators, false);
        let chars = folded.chars().count().max(kept.chars().count());
        if chars > MAX_WORD_CHARS {
            return Err(WordError::TooLong);
        }
        // Index 0 or 1: `usize::from(bool)`.
        let g = &mut self.groups[usize::from(ignore_separators)];
        g.longest_chars = g.longest_chars.max(chars);
        let meta = (rule << 1) | u32::from(whole_word);
        if kept != folded {
            g.words.push(kept);
            g.meta.push(meta);
        }
        g.words.push(folded);
        g.meta.push(meta);
        Ok(())
    }

    /// Builds the automatons. Fails only if the automaton cannot be built
    /// (e.g. it would exceed aho-corasick's size limits).
    pub fn build(self, folder: &Folder) -> Result<KeywordSet, String> {
        let mut groups = Vec::new();
        for (i, g) in self.groups.into_iter().enumerate() {
            if g.words.is_empty() {
                continue;
            }
            let ac = contiguous::Builder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&g.words)
                .map_err(|e| e.to_string())?;
            let drop_separators = i == 1;
            let gap = folder.max_gap(drop_separators);
            // A folded char comes from at most one original char (<= 4
            // bytes); each gap between two of them may hold up to `gap`
            // dropped chars (separators, invisible chars, diacritics).
            let n = g.longest_chars;
            let max_span = 4 * n + 4 * gap * n.saturating_sub(1);
            let first = first_bytes(&ac);
            groups.push(Group {
                ac,
                meta: g.meta,
                drop_separators,
                max_span,
                first,
            });
        }
        Ok(KeywordSet { groups })
    }
}

/// One automaton and the per-word data it needs.
#[derive(Debug)]
pub(crate) struct Group {
    ac: contiguous::NFA,
    meta: Vec<u32>,
    pub(crate) drop_separators: bool,
    max_span: usize,
    /// Folded bytes some word starts with, one bit each: an anchored run from a position
    /// starting with another byte dies at once.
    first: [u64; 4],
}

/// The bytes on which the anchored automaton does not die at once, as a 256-bit set.
fn first_bytes(ac: &contiguous::NFA) -> [u64; 4] {
    let mut set = [0u64; 4];
    let Ok(start) = ac.start_state(Anchored::Yes) else {
        // Cannot tell: every byte may start a word.
        return [u64::MAX; 4];
    };
    for b in 0..=255u8 {
        if !ac.is_dead(ac.next_state(Anchored::Yes, start, b)) {
            if let Some(w) = set.get_mut(usize::from(b >> 6)) {
                *w |= 1u64 << (b & 63);
            }
        }
    }
    set
}

/// The compiled keyword lists.
#[derive(Debug, Default)]
pub struct KeywordSet {
    pub(crate) groups: Vec<Group>,
}

use crate::normalize::is_word_char;

impl KeywordSet {
    /// The longest original-text span a keyword match can cover, in bytes.
    pub fn max_span(&self) -> usize {
        self.groups.iter().map(|g| g.max_span).max().unwrap_or(0)
    }

    /// Heap bytes used by the automatons (for reporting).
    pub fn memory_usage(&self) -> usize {
        self.groups
            .iter()
            .map(|g| g.ac.memory_usage() + g.meta.len() * 4)
            .sum()
    }

    /// Number of automatons (0, 1 or 2).
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// All non-overlapping hits in `text`, leftmost-longest, per automaton
    /// merged by start (a convenience for tests and one-off checks; the engine
    /// uses `KeywordSet::find_in_group`).
    #[cfg(test)]
    pub fn find_all(&self, folder: &Folder, text: &str) -> Vec<KeywordHit> {
        let mut hits = Vec::new();
        let mut folded = Folded::new();
        for gi in 0..self.groups.len() {
            let drop = self.groups.get(gi).is_some_and(|g| g.drop_separators);
            folder.fold_into(text, 0, drop, &mut folded);
            let mut pos = 0;
            while let Some(h) = self.find_in_group(gi, text, &folded, pos) {
                hits.push(h);
                pos = h.end;
            }
        }
        hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
        hits
    }

    /// The leftmost-longest hit of group `gi` starting at original offset
    /// `>= from`, in `text` folded into `folded` (folding must have started at
    /// or before `from`).
    pub(crate) fn find_in_group(
        &self,
        gi: usize,
        text: &str,
        folded: &Folded,
        from: usize,
    ) -> Option<KeywordHit> {
        let g = self.groups.get(gi)?;
        let hay = folded.text.as_bytes();
        let mut fpos = folded.folded_pos(from);
        while fpos < hay.len() {
            // Every word starts with a byte of `first`: skip to the first such byte, or stop
            // when there is none (no automaton run at all).
            fpos += hay.get(fpos..)?.iter().position(|&b| g.starts_with(b))?;
            let m =
                g.ac.try_find(&Input::new(hay).span(fpos..hay.len()))
                    .ok()??;
            let (start, end) = folded.orig_range(text, m.start(), m.end())?;
            let meta = g.meta.get(m.pattern().as_usize()).copied().unwrap_or(0);
            let whole_word = meta & 1 == 1;
            let ok = !whole_word
                || (!text
                    .get(..start)
                    .and_then(|s| s.chars().next_back())
                    .is_some_and(is_word_char)
                    && !text
                        .get(end..)
                        .and_then(|s| s.chars().next())
                        .is_some_and(is_word_char));
            if ok && start >= from {
                return Some(KeywordHit {
                    start,
                    end,
                    rule: meta >> 1,
                });
            }
            // Retry from the next folded character.
            let step = folded
                .text
                .get(m.start()..)
                .and_then(|s| s.chars().next())
                .map_or(1, char::len_utf8);
            fpos = m.start() + step;
        }
        None
    }

    /// The earliest original offset `>= from` where a word of group `gi`
    /// could still start and need text not yet seen: a prefix of a word that
    /// runs into the end of `folded` (characters that fold to nothing after it
    /// keep it open), a match at the very end that a longer word could extend
    /// or whose `whole_word` check needs the next character, or a match that
    /// depends on a look-alike letter whose folding is still open (`open`,
    /// both spellings are tried). `None`: every start is settled and the
    /// matches found in `folded` are final. Only the last
    /// `longest word + open letters` folded bytes are examined (earlier
    /// starts cannot reach the end).
    pub(crate) fn live_start(
        &self,
        gi: usize,
        text: &str,
        folded: &Folded,
        open: &[OpenLetter],
        from: usize,
        stack: &mut Vec<(usize, StateID, bool)>,
    ) -> Option<usize> {
        let g = self.groups.get(gi)?;
        let n = folded.text.len();
        let reach = g.ac.max_pattern_len() + open.len();
        let mut lower = n.saturating_sub(reach);
        if let Some(first) = open.first() {
            lower = lower.min(first.fs.saturating_sub(reach));
        }
        lower = lower.max(folded.folded_pos(from));
        let ends_text = folded.orig_end(text) == Some(text.len());
        let hay = folded.text.as_bytes();
        for fs in lower..n {
            if !folded.text.is_char_boundary(fs) {
                continue;
            }
            // A byte no word starts with, and no open letter to spell it another way: the
            // anchored run dies at once.
            let starts = hay.get(fs).is_some_and(|&b| g.starts_with(b));
            if !starts && open.binary_search_by_key(&fs, |o| o.fs).is_err() {
                continue;
            }
            if g.unsettled(folded.text.as_bytes(), fs, open, ends_text, stack) {
                return folded.orig_at(fs);
            }
        }
        None
    }
}

impl Group {
    /// Whether it is known without folding `text` that no word of this group can start
    /// anywhere in its folding (nor be live there): `text` is ASCII, so its folding is its
    /// lower-cased bytes (some dropped) with no look-alike letter, and none of those bytes
    /// starts a word.
    pub(crate) fn quiet_in(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        bytes.is_ascii()
            && !bytes
                .iter()
                .any(|&b| self.starts_with(b.to_ascii_lowercase()))
    }

    /// Whether some word starts with folded byte `b`.
    #[inline]
    pub(crate) fn starts_with(&self, b: u8) -> bool {
        self.first
            .get(usize::from(b >> 6))
            .is_some_and(|w| w & (1u64 << (b & 63)) != 0)
    }

    /// Whether the outcome of an anchored search at folded byte `fs` of
    /// `hay` can still change with more text (see
    /// [`KeywordSet::live_start`]). `ends_text`: the last folded byte comes
    /// from the last character of the text (nothing after it yet).
    fn unsettled(
        &self,
        hay: &[u8],
        fs: usize,
        open: &[OpenLetter],
        ends_text: bool,
        stack: &mut Vec<(usize, StateID, bool)>,
    ) -> bool {
        let a = &self.ac;
        let Ok(start) = a.start_state(Anchored::Yes) else {
            return true;
        };
        stack.clear();
        stack.push((fs, start, false));
        while let Some((mut pos, mut sid, mut passed)) = stack.pop() {
            loop {
                let Some(&byte) = hay.get(pos) else {
                    // Alive at the end: a prefix of a word, or a match a
                    // longer word could extend, or a whole-word match whose
                    // next character is not there yet.
                    if !a.is_match(sid) || !self.is_final_state(sid) {
                        return true;
                    }
                    if ends_text && self.any_whole_word(sid) {
                        return true;
                    }
                    break;
                };
                if let Ok(i) = open.binary_search_by_key(&pos, |o| o.fs) {
                    if let Some(o) = open.get(i) {
                        let mut alt = sid;
                        for &b in o.alt.as_bytes() {
                            alt = a.next_state(Anchored::Yes, alt, b);
                            if a.is_dead(alt) {
                                break;
                            }
                        }
                        if !a.is_dead(alt) {
                            if a.is_match(alt) {
                                return true;
                            }
                            stack.push((o.fe, alt, true));
                        }
                    }
                    passed = true;
                }
                sid = a.next_state(Anchored::Yes, sid, byte);
                pos += 1;
                if a.is_dead(sid) {
                    break;
                }
                if passed && a.is_match(sid) {
                    // The match depends on how an open letter folds.
                    return true;
                }
            }
        }
        false
    }

    /// Whether no byte leads anywhere from `sid` (a match no longer word
    /// extends).
    fn is_final_state(&self, sid: StateID) -> bool {
        (0..=255u8).all(|b| self.ac.is_dead(self.ac.next_state(Anchored::Yes, sid, b)))
    }

    /// Whether a word matching at `sid` asks for whole-word matching.
    fn any_whole_word(&self, sid: StateID) -> bool {
        (0..self.ac.match_len(sid)).any(|i| {
            self.meta
                .get(self.ac.match_pattern(sid, i).as_usize())
                .is_some_and(|m| m & 1 == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(words: &[(&str, u32, bool, bool)]) -> (Folder, KeywordSet) {
        let folder = Folder::default();
        let mut b = KeywordSetBuilder::new();
        for &(w, r, ww, sep) in words {
            b.add(&folder, w, r, ww, sep).unwrap();
        }
        let s = b.build(&folder).unwrap();
        (folder, s)
    }

    fn found<'a>(f: &Folder, s: &KeywordSet, text: &'a str) -> Vec<(&'a str, u32)> {
        s.find_all(f, text)
            .into_iter()
            .map(|h| (&text[h.start..h.end], h.rule))
            .collect()
    }

    #[test]
    fn chinese_and_english_with_width_and_case() {
        let (f, s) = set(&[("敏感词", 0, false, false), ("Persimmon", 1, false, false)]);
        assert_eq!(
            found(&f, &s, "这里有敏感词和PERSIMMON。"),
            vec![("敏感词", 0), ("PERSIMMON", 1)]
        );
        assert_eq!(
            found(&f, &s, "ｐｅｒｓｉｍｍｏｎ"),
            vec![("ｐｅｒｓｉｍｍｏｎ", 1)]
        );
        assert!(found(&f, &s, "敏感 词 persimon").is_empty());
    }

    #[test]
    fn separators_only_for_lists_that_ask() {
        let (f, s) = set(&[
            ("bad", 0, false, true),
            ("敏感词", 1, false, true),
            ("evil", 2, false, false),
        ]);
        assert_eq!(found(&f, &s, "so b.a.d"), vec![("b.a.d", 0)]);
        assert_eq!(found(&f, &s, "B A D!"), vec![("B A D", 0)]);
        assert_eq!(found(&f, &s, "敏 感 词"), vec![("敏 感 词", 1)]);
        assert!(found(&f, &s, "e.v.i.l").is_empty());
        // A long gap separates words.
        assert!(found(&f, &s, "b     ad").is_empty());
    }

    #[test]
    fn leftmost_longest_and_whole_word() {
        let (f, s) = set(&[
            ("ass", 0, true, false),
            ("assassin", 1, false, false),
            ("中国", 2, false, false),
            ("中国人", 3, false, false),
        ]);
        assert_eq!(found(&f, &s, "an assassin"), vec![("assassin", 1)]);
        assert!(found(&f, &s, "classic").is_empty());
        assert_eq!(found(&f, &s, "you ass!"), vec![("ass", 0)]);
        assert_eq!(found(&f, &s, "我是中国人"), vec![("中国人", 3)]);
    }

    #[test]
    fn evasions_match_and_map_to_the_original_span() {
        let (f, s) = set(&[("cocaine", 0, false, false), ("bomb", 1, true, true)]);
        for (text, want) in [
            ("buy ｃｏｃａｉｎｅ now", "ｃｏｃａｉｎｅ"),
            ("buy 𝖈𝖔𝖈𝖆𝖎𝖓𝖊 now", "𝖈𝖔𝖈𝖆𝖎𝖓𝖊"),
            ("buy ⓒⓞⓒⓐⓘⓝⓔ now", "ⓒⓞⓒⓐⓘⓝⓔ"),
            ("buy c\u{0327}o\u{0301}caine now", "c\u{0327}o\u{0301}caine"),
            ("buy co\u{200D}ca\u{200F}ine now", "co\u{200D}ca\u{200F}ine"),
            (
                "buy \u{0441}\u{043E}\u{0441}\u{0430}\u{0456}ne now",
                "\u{0441}\u{043E}\u{0441}\u{0430}\u{0456}ne",
            ),
            ("a b\no\nm\nb here", "b\no\nm\nb"),
            (
                "a \u{0392}\u{039F}\u{039C}\u{0392}!",
                "\u{0392}\u{039F}\u{039C}\u{0392}",
            ),
        ] {
            let hits = s.find_all(&f, text);
            assert_eq!(hits.len(), 1, "{text:?}");
            assert_eq!(&text[hits[0].start..hits[0].end], want);
        }
    }

    #[test]
    fn ordinary_text_gets_no_new_matches() {
        // English words whose look-alike spellings occur in Russian or Greek.
        let words = [
            "cop", "pop", "ok", "to", "kai", "ax", "pax", "hot", "tax", "ban",
        ];
        let mut list = Vec::new();
        for (i, w) in words.iter().enumerate() {
            list.push((*w, i as u32, true, false));
        }
        let (f, s) = set(&list);
        for text in [
            "Сорока охраняет пароль, а сосиска — на тарелке. Ох, опять рокот!",
            "Καλημέρα, το κρασί και το ψωμί είναι στο τραπέζι της Αθήνας.",
            "Le café est à côté de l'hôtel; ça coûte trop cher.",
            "我们今天去北京，咖啡很好喝。",
            "日本語のテキストです。한국어 문장입니다.",
        ] {
            let hits = found(&f, &s, text);
            // Only whole Greek words made of look-alikes only (το, και) fold.
            assert!(
                hits.iter().all(|(t, _)| ["το", "και"].contains(t)),
                "{text}: {hits:?}"
            );
        }
        // Accents are dropped from Latin letters: a keyword matches its
        // accented spellings (the point), not other words.
        let (f, s) = set(&[("cafe", 0, true, false)]);
        assert_eq!(found(&f, &s, "un café"), vec![("café", 0)]);
        assert!(found(&f, &s, "cafés à côté").is_empty());
        // A Russian keyword made of look-alikes still matches inside Russian
        // words, and in Latin spelling.
        let (f, s) = set(&[("сор", 0, false, false)]);
        assert_eq!(found(&f, &s, "сорока"), vec![("сор", 0)]);
        assert_eq!(found(&f, &s, "a cop"), vec![("cop", 0)]);
        // A Russian keyword with real Cyrillic letters stays Cyrillic.
        let (f, s) = set(&[("пароль", 0, false, false)]);
        assert_eq!(found(&f, &s, "мой ПАРОЛЬ"), vec![("ПАРОЛЬ", 0)]);
        assert!(found(&f, &s, "napoль").is_empty());
    }

    #[test]
    fn empty_word_is_rejected() {
        let f = Folder::default();
        let mut b = KeywordSetBuilder::new();
        assert_eq!(b.add(&f, "  ", 0, false, false), Err(WordError::Empty));
        assert_eq!(b.add(&f, ". -", 0, false, true), Err(WordError::Empty));
        assert_eq!(
            b.add(&f, "\u{200B}", 0, false, false),
            Err(WordError::Empty)
        );
    }

    #[test]
    fn hundred_thousand_words_build_and_scan() {
        let f = Folder::default();
        let mut b = KeywordSetBuilder::new();
        for i in 0..100_000u32 {
            let w = if i % 2 == 0 {
                format!("word{i:06}x")
            } else {
                // Chinese words: CJK chars derived from the index.
                let mut s = String::new();
                for k in 0..4 {
                    let c = char::from_u32(0x4E00 + ((i >> (k * 4)) & 0xFFF) + k * 7).unwrap();
                    s.push(c);
                }
                s
            };
            b.add(&f, &w, i % 7, false, i % 3 == 0).unwrap();
        }
        let s = b.build(&f).unwrap();
        assert_eq!(s.group_count(), 2);
        let text = "hello WORD012344X and word099998x but not word12";
        let hits = found(&f, &s, text);
        assert_eq!(
            hits,
            vec![("WORD012344X", 12344 % 7), ("word099998x", 99998 % 7)]
        );
    }

    proptest::proptest! {
        /// Skipping to the first byte a word starts with finds the same hits as running the
        /// automaton from every position.
        #[test]
        fn first_byte_skip_finds_what_a_plain_search_finds(
            picks in proptest::collection::vec(0usize..10, 0..60),
            from in 0usize..8,
        ) {
            const ALPHABET: [&str; 10] = ["b", "a", "d", " ", ".", "x", "Ｂ", "敏", "感", "\u{200B}"];
            let text: String = picks.iter().filter_map(|&i| ALPHABET.get(i).copied()).collect();
            let (folder, s) = set(&[("bad", 0, true, false), ("b a", 1, false, true), ("敏感", 2, false, true)]);
            let mut folded = Folded::new();
            let mut from = from.min(text.len());
            while !text.is_char_boundary(from) {
                from -= 1;
            }
            for (gi, g) in s.groups.iter().enumerate() {
                folder.fold_into(&text, 0, g.drop_separators, &mut folded);
                // The same loop as `find_in_group`, without the skip.
                let plain = || {
                    let hay = folded.text.as_bytes();
                    let mut fpos = folded.folded_pos(from);
                    while fpos < hay.len() {
                        let m = g.ac.try_find(&Input::new(hay).span(fpos..hay.len())).ok()??;
                        let (start, end) = folded.orig_range(&text, m.start(), m.end())?;
                        let meta = g.meta[m.pattern().as_usize()];
                        let ok = meta & 1 == 0
                            || (!text[..start].chars().next_back().is_some_and(is_word_char)
                                && !text[end..].chars().next().is_some_and(is_word_char));
                        if ok && start >= from {
                            return Some((start, end, meta >> 1));
                        }
                        fpos = m.start() + folded.text[m.start()..].chars().next().map_or(1, char::len_utf8);
                    }
                    None
                };
                let got = s.find_in_group(gi, &text, &folded, from).map(|h| (h.start, h.end, h.rule));
                proptest::prop_assert_eq!(got, plain(), "group {} in {:?}", gi, text);
            }
        }
    }
}
