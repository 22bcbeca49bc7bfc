//! Scanning streamed text, holding back only what a match could still need.
//!
//! Text arrives in pieces (the `delta.content` of each SSE event, or raw body
//! chunks). A match split across pieces (`"pers"` + `"immon"`, a phone number
//! cut in the middle) must still be caught, so after each piece the scanner
//! finds the earliest position at which some rule could still produce a match
//! that needs text not yet seen — a *live* partial match: a prefix of a
//! keyword (after folding) running into the end, a regex whose lazy DFA,
//! anchored there, is not dead at the end, a built-in candidate whose
//! validator has not seen the two characters after it yet
//! (`Searcher::live_from` in the engine). Everything before that position
//! is final and released at once, masked; findings starting before it are
//! applied. Nothing waits for more input when nothing live is pending: a
//! clean answer comes out as it arrives, minus at most its live tail (for
//! most rule sets, the current word or number).
//!
//! The live tail is never longer than [`Engine::lookahead`] (the longest
//! keyword span, or the longest regex match — capped by
//! `stream.max_match_len` for unbounded regexes — plus context): starts
//! further back count as settled, as the fixed window did before.
//!
//! The output of a stream, whatever the split, is exactly the output of
//! [`Engine::redact`] on the whole text (see the tests). The buffer never
//! holds more than [`StreamScanner::window`] bytes: long pieces are consumed
//! in slices, and released text is kept only as look-behind context
//! (a few dozen bytes). Each piece costs a scan of the live tail plus the
//! piece (no rescans of a growing buffer). Pieces are `&str`, so UTF-8 code
//! points are never split; the hold-back point is always a character
//! boundary.
//!
//! [`RestoreStream`] does the reverse direction: placeholders such as
//! `[EMAIL_1]` split across pieces are put back, holding back only an
//! unclosed tail that starts a recorded placeholder (`[EMA`).

use std::rc::Rc;

use crate::engine::{Engine, LiveScratch, Report, SearchBuffers, Verdict, CONTEXT};
use crate::vault::{Escape, Vault};

/// Largest slice of a piece appended at once.
const SLICE: usize = 1024;

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Splits off the first at most `n` bytes of `s` at a char boundary (at least
/// one char when `s` is not empty).
fn take_prefix(s: &str, n: usize) -> (&str, &str) {
    let mut i = floor_boundary(s, n);
    if i == 0 {
        i = s.chars().next().map_or(0, char::len_utf8);
    }
    s.split_at_checked(i).unwrap_or((s, ""))
}

/// Reassembles text from byte chunks that may end inside a UTF-8 code point
/// (raw body chunks). Holds at most 3 bytes. Invalid sequences become U+FFFD.
#[derive(Debug, Default, Clone)]
pub struct Utf8Carry {
    pending: Vec<u8>,
}

fn utf8_width(first: u8) -> usize {
    match first {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

impl Utf8Carry {
    /// Decodes `chunk`, calling `f` with each complete piece of text.
    pub fn feed(&mut self, mut chunk: &[u8], mut f: impl FnMut(&str)) {
        if let Some(&first) = self.pending.first() {
            let need = utf8_width(first).saturating_sub(self.pending.len());
            // Only continuation bytes can complete the pending code point.
            let take = chunk
                .iter()
                .take(need)
                .take_while(|&&b| (0x80..0xC0).contains(&b))
                .count();
            let (head, rest) = chunk.split_at(take);
            self.pending.extend_from_slice(head);
            chunk = rest;
            if take < need && chunk.is_empty() {
                return;
            }
            match std::str::from_utf8(&self.pending) {
                Ok(s) => f(s),
                Err(_) => f("\u{FFFD}"),
            }
            self.pending.clear();
        }
        loop {
            match std::str::from_utf8(chunk) {
                Ok(s) => {
                    if !s.is_empty() {
                        f(s);
                    }
                    return;
                }
                Err(e) => {
                    let (valid, rest) = chunk.split_at(e.valid_up_to());
                    // `valid` is valid UTF-8 by `valid_up_to`.
                    if let Ok(s) = std::str::from_utf8(valid) {
                        if !s.is_empty() {
                            f(s);
                        }
                    }
                    match e.error_len() {
                        None => {
                            // An incomplete code point at the end: keep it.
                            self.pending.extend_from_slice(rest);
                            return;
                        }
                        Some(n) => {
                            f("\u{FFFD}");
                            chunk = rest.get(n..).unwrap_or(&[]);
                        }
                    }
                }
            }
        }
    }

    /// Ends the input: an incomplete code point left over becomes U+FFFD.
    pub fn finish(&mut self, mut f: impl FnMut(&str)) {
        if !self.pending.is_empty() {
            self.pending.clear();
            f("\u{FFFD}");
        }
    }
}

/// Moderates one streamed text (request or answer).
#[derive(Debug)]
pub struct StreamScanner {
    engine: Rc<Engine>,
    buf: String,
    /// Bytes of `buf` before this were emitted (kept only as context).
    cursor: usize,
    blocked: Option<String>,
    vault: Option<Vault>,
    report: Report,
    buffers: SearchBuffers,
    scratch: LiveScratch,
    peak: usize,
    carry: Utf8Carry,
}

impl StreamScanner {
    /// A scanner without a vault: restorable rules mask like plain ones
    /// (what you want on answers).
    pub fn new(engine: Rc<Engine>) -> StreamScanner {
        StreamScanner {
            engine,
            buf: String::new(),
            cursor: 0,
            blocked: None,
            vault: None,
            report: Report::default(),
            buffers: SearchBuffers::default(),
            scratch: LiveScratch::default(),
            peak: 0,
            carry: Utf8Carry::default(),
        }
    }

    /// A scanner recording restorable masks into `vault` (streamed requests).
    pub fn with_vault(engine: Rc<Engine>, vault: Vault) -> StreamScanner {
        StreamScanner {
            vault: Some(vault),
            ..StreamScanner::new(engine)
        }
    }

    /// The most bytes the internal buffer can ever hold.
    pub fn window(&self) -> usize {
        CONTEXT + self.engine.lookahead() + SLICE + 8
    }

    /// Bytes currently buffered.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The most bytes ever buffered by this scanner.
    pub fn peak_buffered(&self) -> usize {
        self.peak
    }

    /// Bytes received but not released yet: the live tail (text a match
    /// could still need), plus an incomplete UTF-8 sequence of raw chunks.
    pub fn held(&self) -> usize {
        self.buf.len() - self.cursor + self.carry.pending.len()
    }

    /// Hit counts so far.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The vault (with what this stream recorded), if any.
    pub fn into_vault(self) -> Option<Vault> {
        self.vault
    }

    /// Feeds a piece; appends the text that is now final (masked) to `out`.
    /// After a block, nothing more is emitted and every call returns the same
    /// block verdict.
    pub fn push(&mut self, piece: &str, out: &mut String) -> Verdict {
        if let Some(rule) = &self.blocked {
            return Verdict::Block { rule: rule.clone() };
        }
        if self.engine.is_empty() {
            out.push_str(piece);
            return Verdict::Pass;
        }
        let mut rest = piece;
        while !rest.is_empty() {
            let (head, tail) = take_prefix(rest, SLICE);
            rest = tail;
            self.buf.push_str(head);
            self.peak = self.peak.max(self.buf.len());
            let v = self.drain(false, out);
            if v.is_block() {
                return v;
            }
        }
        Verdict::Pass
    }

    /// Feeds a raw byte chunk that may end inside a code point (the partial
    /// code point is kept for the next chunk; invalid UTF-8 becomes U+FFFD).
    pub fn push_bytes(&mut self, chunk: &[u8], out: &mut String) -> Verdict {
        let mut carry = std::mem::take(&mut self.carry);
        let mut verdict = Verdict::Pass;
        carry.feed(chunk, |s| {
            if !verdict.is_block() {
                verdict = self.push(s, out);
            }
        });
        self.carry = carry;
        verdict
    }

    /// Ends the stream: emits the held-back tail (masked).
    pub fn finish(&mut self, out: &mut String) -> Verdict {
        if let Some(rule) = &self.blocked {
            return Verdict::Block { rule: rule.clone() };
        }
        let mut carry = std::mem::take(&mut self.carry);
        let mut verdict = Verdict::Pass;
        carry.finish(|s| verdict = self.push(s, out));
        if verdict.is_block() {
            return verdict;
        }
        let v = self.drain(true, out);
        self.buf.clear();
        self.cursor = 0;
        v
    }

    fn drain(&mut self, final_: bool, out: &mut String) -> Verdict {
        let engine: &Engine = &self.engine;
        let len = self.buf.len();
        let mut verdict = Verdict::Pass;
        let rest = self.buf.get(self.cursor..).unwrap_or("");
        if engine.is_empty() || engine.quiet(rest) {
            // No rule can start a match in the new text: all of it is final as it is.
            out.push_str(rest);
            self.cursor = len;
        } else {
            let buffers = std::mem::take(&mut self.buffers);
            let mut s =
                crate::engine::Searcher::with_buffers(engine, &self.buf, self.cursor, buffers);
            // Everything before `hold` is final: no rule can still produce a
            // match starting there that needs more text.
            let mut hold = if final_ {
                len
            } else {
                s.live_from(self.cursor, &mut self.scratch)
            };
            loop {
                match s.next(self.cursor) {
                    Some(f) if f.start < hold => {
                        out.push_str(self.buf.get(self.cursor..f.start).unwrap_or(""));
                        self.report.record(f.rule);
                        if let Some(v) = engine.apply(&self.buf, &f, self.vault.as_mut(), out) {
                            if let Verdict::Block { rule } = &v {
                                self.blocked = Some(rule.clone());
                            }
                            verdict = v;
                            break;
                        }
                        self.cursor = f.end;
                        if self.cursor > hold {
                            hold = s.live_from(self.cursor, &mut self.scratch);
                        }
                    }
                    _ => {
                        if hold > self.cursor {
                            out.push_str(self.buf.get(self.cursor..hold).unwrap_or(""));
                            self.cursor = hold;
                        }
                        break;
                    }
                }
            }
            self.buffers = s.into_buffers();
        }
        if verdict.is_block() {
            self.buf.clear();
            self.cursor = 0;
            return verdict;
        }
        // Keep a little emitted text as context for boundary checks.
        let keep_from = floor_boundary(&self.buf, self.cursor.saturating_sub(CONTEXT));
        self.buf.drain(..keep_from);
        self.cursor -= keep_from;
        verdict
    }
}

/// Puts masked values back into a streamed answer.
#[derive(Debug)]
pub struct RestoreStream {
    vault: Vault,
    escape: Escape,
    buf: String,
    peak: usize,
    carry: Utf8Carry,
}

impl RestoreStream {
    /// Restores placeholders recorded in `vault`; `escape` says whether the
    /// text is plain (extracted content) or inside JSON strings (raw body).
    pub fn new(vault: Vault, escape: Escape) -> RestoreStream {
        RestoreStream {
            vault,
            escape,
            buf: String::new(),
            peak: 0,
            carry: Utf8Carry::default(),
        }
    }

    /// The vault in use.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The most bytes the internal buffer can ever hold.
    pub fn window(&self) -> usize {
        self.vault.longest_placeholder() + SLICE
    }

    /// The most bytes ever buffered.
    pub fn peak_buffered(&self) -> usize {
        self.peak
    }

    /// Feeds a piece; appends the restored text that is final to `out`.
    pub fn push(&mut self, piece: &str, out: &mut String) {
        if self.vault.is_empty() {
            out.push_str(piece);
            return;
        }
        let mut rest = piece;
        while !rest.is_empty() {
            let (head, tail) = take_prefix(rest, SLICE);
            rest = tail;
            self.buf.push_str(head);
            self.peak = self.peak.max(self.buf.len());
            let mut cursor = 0;
            self.vault
                .restore_step(&self.buf, &mut cursor, false, self.escape, out);
            self.buf.drain(..cursor);
        }
    }

    /// Feeds a raw byte chunk that may end inside a code point.
    pub fn push_bytes(&mut self, chunk: &[u8], out: &mut String) {
        let mut carry = std::mem::take(&mut self.carry);
        carry.feed(chunk, |s| self.push(s, out));
        self.carry = carry;
    }

    /// Ends the stream: emits what was held back.
    pub fn finish(&mut self, out: &mut String) {
        let mut carry = std::mem::take(&mut self.carry);
        carry.finish(|s| self.push(s, out));
        let mut cursor = 0;
        self.vault
            .restore_step(&self.buf, &mut cursor, true, self.escape, out);
        self.buf.clear();
    }
}

/// An answer stream: moderation (mask/block) first, then restoring the
/// request's placeholders, so restored user values are not masked again.
#[derive(Debug)]
pub struct AnswerStream {
    scan: Option<StreamScanner>,
    restore: Option<RestoreStream>,
    tmp: String,
}

impl AnswerStream {
    /// Either stage may be absent (no response rules / nothing to restore).
    pub fn new(scan: Option<StreamScanner>, restore: Option<RestoreStream>) -> AnswerStream {
        AnswerStream {
            scan,
            restore,
            tmp: String::new(),
        }
    }

    /// Feeds a piece of answer text; appends the final text to `out`.
    pub fn push(&mut self, piece: &str, out: &mut String) -> Verdict {
        self.tmp.clear();
        let v = match &mut self.scan {
            Some(s) => s.push(piece, &mut self.tmp),
            None => {
                self.tmp.push_str(piece);
                Verdict::Pass
            }
        };
        self.forward(out);
        v
    }

    /// Ends the stream.
    pub fn finish(&mut self, out: &mut String) -> Verdict {
        self.tmp.clear();
        let v = match &mut self.scan {
            Some(s) => s.finish(&mut self.tmp),
            None => Verdict::Pass,
        };
        self.forward(out);
        if let Some(r) = &mut self.restore {
            r.finish(out);
        }
        v
    }

    fn forward(&mut self, out: &mut String) {
        match &mut self.restore {
            Some(r) => r.push(&self.tmp, out),
            None => out.push_str(&self.tmp),
        }
    }

    /// Hit counts of the moderation stage.
    pub fn report(&self) -> Option<&Report> {
        self.scan.as_ref().map(StreamScanner::report)
    }

    /// The text the last [`Self::push`] or [`Self::finish`] made final, as
    /// moderated but before restoring (for access logs).
    pub fn last_checked(&self) -> &str {
        &self.tmp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{rule, Action, EngineBuilder, MaskStyle, Rule, RuleKind};
    use crate::normalize::Folder;
    use crate::patterns::Builtin;
    use proptest::prelude::*;

    fn engine() -> Rc<Engine> {
        let mut b = EngineBuilder::new(Folder::default(), b"k", 128);
        let bad = b.add_rule(rule("fruit", RuleKind::Keywords, Action::Mask));
        for w in ["persimmon", "敏感词", "坏人", "bad word"] {
            b.add_word(bad, w, false, true).unwrap();
        }
        let evil = b.add_rule(rule("evil", RuleKind::Keywords, Action::Block));
        b.add_word(evil, "forbidden", true, false).unwrap();
        let log = b.add_rule(rule("note", RuleKind::Keywords, Action::Log));
        b.add_word(log, "note", false, false).unwrap();
        for (i, bi) in crate::patterns::ALL_BUILTINS.iter().enumerate() {
            let r = b.add_rule(Rule {
                restore: i % 2 == 0,
                mask: if i % 3 == 1 {
                    MaskStyle::Hash
                } else {
                    MaskStyle::Replace(None)
                },
                ..rule(bi.name(), RuleKind::Builtin(*bi), Action::Mask)
            });
            b.add_builtin(r, *bi).unwrap();
        }
        let c = b.add_rule(Rule {
            mask: MaskStyle::Replace(Some("<$1>".into())),
            ..rule("custom", RuleKind::Regex, Action::Mask)
        });
        b.add_regex(c, r"tok-([a-z]+)").unwrap();
        Rc::new(b.build().unwrap())
    }

    const SAMPLE: &str = "Hi, note: P e r s i m m o n and 敏 感 词 here; call 13812345678 or \
        +1 415-555-2671, mail Bob.Smith@example.com, id 11010519491231002X, card \
        4111 1111 1111 1111, ip 192.168.1.20 / 2001:db8::7, key sk-proj-abcdefghijklmnopqrstuvwxyz12 \
        and AKIAIOSFODNN7EXAMPLE; ＢＡＤ　ＷＯＲＤ 坏人 tok-abc tok-q 13812345678";

    fn one_shot(e: &Engine, text: &str) -> (String, Verdict, Vault) {
        let mut out = String::new();
        let mut vault = Vault::default();
        let v = e.redact(text, Some(&mut vault), &mut out, &mut Report::default());
        (out, v, vault)
    }

    fn streamed(e: &Rc<Engine>, pieces: &[&str]) -> (String, Verdict, Vault) {
        let mut s = StreamScanner::with_vault(Rc::clone(e), Vault::default());
        let mut out = String::new();
        let mut v = Verdict::Pass;
        for p in pieces {
            v = s.push(p, &mut out);
            if v.is_block() {
                break;
            }
        }
        if !v.is_block() {
            v = s.finish(&mut out);
        }
        assert!(s.peak_buffered() <= s.window());
        (out, v, s.into_vault().unwrap_or_default())
    }

    #[test]
    fn sample_is_masked_as_expected() {
        let e = engine();
        let (out, v, vault) = one_shot(&e, SAMPLE);
        assert_eq!(v, Verdict::Pass);
        for secret in [
            "13812345678",
            "Bob.Smith",
            "11010519491231002X",
            "4111 1111",
            "192.168.1.20",
            "2001:db8::7",
            "sk-proj",
            "AKIA",
            "敏 感 词",
            "P e r s",
            "ＢＡＤ",
            "坏人",
            "415-555",
        ] {
            assert!(!out.contains(secret), "{secret} leaked in {out}");
        }
        assert!(out.contains("note:"));
        assert!(out.contains("<abc> <q>"));
        let mut back = String::new();
        vault.restore_into(&out, Escape::None, &mut back);
        assert!(back.contains("call 13812345678 or"));
    }

    #[test]
    fn every_two_way_split_matches_one_shot() {
        let e = engine();
        let expected = one_shot(&e, SAMPLE);
        for i in 0..=SAMPLE.len() {
            if !SAMPLE.is_char_boundary(i) {
                continue;
            }
            let (a, b) = SAMPLE.split_at(i);
            let got = streamed(&e, &[a, b]);
            assert_eq!((&got.0, &got.1), (&expected.0, &expected.1), "split at {i}");
        }
    }

    /// Rules that start with few ASCII bytes (a word, a phone number, a `\b` regex or not),
    /// so that most pieces skip the search (`Engine::quiet`).
    fn sparse_engine(look_around: bool) -> Rc<Engine> {
        let mut b = EngineBuilder::new(Folder::default(), b"k", 128);
        let word = b.add_rule(rule("word", RuleKind::Keywords, Action::Mask));
        b.add_word(word, "forbidden word", false, true).unwrap();
        let whole = b.add_rule(rule("whole", RuleKind::Keywords, Action::Log));
        b.add_word(whole, "zap", true, false).unwrap();
        let phone = b.add_rule(rule(
            "phone",
            RuleKind::Builtin(Builtin::PhoneCn),
            Action::Mask,
        ));
        b.add_builtin(phone, Builtin::PhoneCn).unwrap();
        if look_around {
            let r = b.add_rule(rule("qq", RuleKind::Regex, Action::Mask));
            b.add_regex(r, r"\bqq\d+").unwrap();
        }
        Rc::new(b.build().unwrap())
    }

    #[test]
    fn pieces_no_rule_can_start_in_skip_the_search_with_the_same_output() {
        let e = sparse_engine(false);
        assert!(e.quiet("tok02 tok3 "));
        assert!(!e.quiet("tok1"));
        assert!(
            e.quiet("tok1 tok12 tok10 "),
            "a 1 no phone number goes on from"
        );
        assert!(!e.quiet("tok13 "), "13 may start a phone number");
        assert!(!e.quiet("tok 1"), "what follows the 1 is not known yet");
        assert!(
            !e.quiet("tok F"),
            "upper case folds to a word's first letter"
        );
        assert!(!e.quiet("tok \u{0455}"), "not ASCII");
        assert!(
            !sparse_engine(true).quiet("tok"),
            "look-around: cannot tell"
        );
        let text = "tok0 tok1 tok13 tok139 call 138 1234 5678 now; FORBIDDEN-WORD, forbidden \
            word tok zap tokzap zap";
        for look_around in [false, true] {
            let e = sparse_engine(look_around);
            let expected = one_shot(&e, text);
            assert!(!expected.0.contains("5678") && !expected.0.contains("FORBIDDEN"));
            let expected = (expected.0, expected.1);
            let chars: Vec<String> = text.chars().map(String::from).collect();
            let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
            let got = streamed(&e, &pieces);
            assert_eq!((got.0, got.1), expected);
            for i in 0..=text.len() {
                for j in i..=text.len() {
                    let (Some(a), Some(b), Some(c)) =
                        (text.get(..i), text.get(i..j), text.get(j..))
                    else {
                        continue;
                    };
                    let got = streamed(&e, &[a, b, c]);
                    assert_eq!((got.0, got.1), expected, "split at {i}, {j}");
                }
            }
        }
    }

    #[test]
    fn quiet_text_has_no_finding_and_nothing_live() {
        // Every text of up to five bytes over an alphabet of starts, follow-ups and others.
        let alphabet = ["1", "3", "0", "8", "-", " ", "f", "F", "z", "t"];
        let e = sparse_engine(false);
        let mut texts = vec![String::new()];
        let mut quiet = 0;
        for _ in 0..5 {
            texts = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |a| format!("{t}{a}")))
                .collect();
            for t in &texts {
                if !e.quiet(t) {
                    continue;
                }
                quiet += 1;
                assert!(e.scan(t).is_empty(), "{t:?}");
                let s = crate::engine::Searcher::new(&e, t, 0);
                let live = s.live_from(0, &mut crate::engine::LiveScratch::default());
                assert_eq!(live, t.len(), "{t:?}");
            }
        }
        assert!(quiet > 1000, "{quiet}");
    }

    #[test]
    fn char_by_char_and_byte_sized_pieces_match_one_shot() {
        let e = engine();
        let expected = one_shot(&e, SAMPLE);
        let chars: Vec<String> = SAMPLE.chars().map(String::from).collect();
        let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
        let got = streamed(&e, &pieces);
        assert_eq!((&got.0, &got.1), (&expected.0, &expected.1));
    }

    #[test]
    fn every_byte_split_of_raw_chunks_matches_one_shot() {
        let e = engine();
        let expected = one_shot(&e, SAMPLE);
        let bytes = SAMPLE.as_bytes();
        for i in 0..=bytes.len() {
            let (a, b) = bytes.split_at(i);
            let mut s = StreamScanner::with_vault(Rc::clone(&e), Vault::default());
            let mut out = String::new();
            assert_eq!(s.push_bytes(a, &mut out), Verdict::Pass);
            assert_eq!(s.push_bytes(b, &mut out), Verdict::Pass);
            assert_eq!(s.finish(&mut out), Verdict::Pass);
            assert_eq!(out, expected.0, "byte split at {i}");
        }
        // Byte by byte.
        let mut s = StreamScanner::with_vault(Rc::clone(&e), Vault::default());
        let mut out = String::new();
        for b in bytes {
            s.push_bytes(std::slice::from_ref(b), &mut out);
        }
        s.finish(&mut out);
        assert_eq!(out, expected.0);
    }

    /// Mask lists for the evasion tests: `bomb` ignoring separators, the
    /// others not.
    fn evasion_engine() -> Rc<Engine> {
        let mut b = EngineBuilder::new(Folder::default(), b"k", 128);
        let r = b.add_rule(Rule {
            mask: MaskStyle::Replace(Some("***".into())),
            ..rule("bad", RuleKind::Keywords, Action::Mask)
        });
        b.add_word(r, "bomb", false, true).unwrap();
        for w in ["cocaine", "password", "cop"] {
            b.add_word(r, w, false, false).unwrap();
        }
        Rc::new(b.build().unwrap())
    }

    /// Every evasion once, with ordinary Russian, Greek, French and Chinese
    /// text around that must stay as it is.
    const EVASIONS: &str = "a ｃｏｃａｉｎｅ, 𝐜𝐨𝐜𝐚𝐢𝐧𝐞 and ⓒⓞⓒⓐⓘⓝⓔ; c\u{0301}o\u{0308}caine, \
        coc\u{200B}a\u{200E}ine\u{2060}, pass\u{FEFF}w\u{180E}o\u{034F}rd; \u{0441}\u{043E}\u{0441}\u{0430}\u{0456}ne \
        b\no\r\nm\tb, PAS\u{0405}WORD. Сорока охраняет пароль, καλημέρα, \
        un café à côté, 炸弹 密码; cop.";

    #[test]
    fn evasions_are_masked_in_one_piece_and_split_anywhere() {
        let e = evasion_engine();
        let (out, v, _) = one_shot(&e, EVASIONS);
        assert_eq!(v, Verdict::Pass);
        assert_eq!(
            out,
            "a ***, *** and ***; ***, ***\u{2060}, ***; *** ***, ***. Сорока охраняет \
             пароль, καλημέρα, un café à côté, 炸弹 密码; ***."
        );
        for i in 0..=EVASIONS.len() {
            if !EVASIONS.is_char_boundary(i) {
                continue;
            }
            let (a, b) = EVASIONS.split_at(i);
            assert_eq!(streamed(&e, &[a, b]).0, out, "split at {i}");
        }
        let chars: Vec<String> = EVASIONS.chars().map(String::from).collect();
        let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(streamed(&e, &pieces).0, out);
    }

    #[test]
    fn utf8_carry_handles_invalid_and_truncated_input() {
        let mut c = Utf8Carry::default();
        let mut got = String::new();
        c.feed(b"a\xffb\xe6\x95", |s| got.push_str(s));
        assert_eq!(got, "a\u{FFFD}b");
        c.feed(b"\x8f!", |s| got.push_str(s));
        assert_eq!(got, "a\u{FFFD}b敏!");
        c.feed(b"\xe6", |s| got.push_str(s));
        c.finish(|s| got.push_str(s));
        assert_eq!(got, "a\u{FFFD}b敏!\u{FFFD}");
        // A bad continuation byte after a lead byte.
        let mut got = String::new();
        c.feed(b"\xe6", |s| got.push_str(s));
        c.feed(b"x\xe6\x95\x8f", |s| got.push_str(s));
        assert_eq!(got, "\u{FFFD}x敏");
    }

    #[test]
    fn block_is_found_across_pieces() {
        let e = engine();
        let text = "this is forbidden text";
        let expected = one_shot(&e, text);
        assert_eq!(
            expected.1,
            Verdict::Block {
                rule: "evil".into()
            }
        );
        for i in 1..text.len() {
            let (a, b) = text.split_at(i);
            let got = streamed(&e, &[a, b]);
            assert_eq!(got.1, expected.1, "split at {i}");
            // Nothing of the blocked word was emitted.
            assert!(!got.0.contains("forb"));
        }
        // After a block every call returns the block.
        let mut s = StreamScanner::new(Rc::clone(&e));
        let mut out = String::new();
        assert!(s.push(text, &mut out).is_block() || s.finish(&mut out).is_block());
        assert!(s.push("more", &mut out).is_block());
        assert!(s.finish(&mut out).is_block());
    }

    #[test]
    fn memory_is_bounded_by_the_window() {
        let e = engine();
        let mut s = StreamScanner::new(Rc::clone(&e));
        let unit = "lorem ipsum 敏感词 dolor 13812345678 sit amet, consectetur persimmon ";
        let piece: String = unit.repeat(200);
        let mut out = String::new();
        let mut total_in = 0;
        let mut total_out = 0;
        while total_in < 10 * 1024 * 1024 {
            assert_eq!(s.push(&piece, &mut out), Verdict::Pass);
            assert!(s.buffered() <= s.window());
            total_in += piece.len();
            total_out += out.len();
            out.clear();
        }
        s.finish(&mut out);
        total_out += out.len();
        assert!(s.peak_buffered() <= s.window());
        assert!(s.window() < 4096, "window {}", s.window());
        // Every unit lost its three sensitive items.
        let masked_unit = "lorem ipsum [FRUIT] dolor [PHONE] sit amet, consectetur [FRUIT] ";
        assert_eq!(total_out, total_in / unit.len() * masked_unit.len());
    }

    #[test]
    fn restore_stream_every_split() {
        let mut vault = Vault::default();
        let e1 = vault.placeholder_for("EMAIL", None, "me@x.org").unwrap();
        let p1 = vault.placeholder_for("PHONE", None, "13812345678").unwrap();
        let text = format!("Write to {e1} or [{p1}], [[EMAIL_1] [EMAIL_12] {p1}{e1}");
        let mut expected = String::new();
        vault.restore_into(&text, Escape::None, &mut expected);
        assert_eq!(
            expected,
            "Write to me@x.org or [13812345678], [me@x.org [EMAIL_12] 13812345678me@x.org"
        );
        for i in 0..=text.len() {
            let (a, b) = text.as_bytes().split_at(i);
            let mut r = RestoreStream::new(vault.clone(), Escape::None);
            let mut out = String::new();
            r.push_bytes(a, &mut out);
            r.push_bytes(b, &mut out);
            r.finish(&mut out);
            assert_eq!(out, expected, "split at {i}");
        }
        // Bounded: a long answer never grows the buffer past the window.
        let mut r = RestoreStream::new(vault.clone(), Escape::None);
        let mut out = String::new();
        let long = format!("{text} [unclosed ").repeat(10_000);
        r.push(&long, &mut out);
        r.finish(&mut out);
        assert!(r.peak_buffered() <= r.window());
        assert_eq!(out.len(), {
            let mut e = String::new();
            vault.restore_into(&long, Escape::None, &mut e);
            e.len()
        });
    }

    #[test]
    fn restore_stream_holds_back_only_placeholder_prefixes() {
        let mut vault = Vault::default();
        let p = vault.placeholder_for("EMAIL", None, "me@x.org").unwrap();
        assert_eq!(p, "[EMAIL_1]");
        let mut r = RestoreStream::new(vault, Escape::None);
        let mut out = String::new();
        // `[` alone, then `[EM`, could still become the placeholder.
        r.push("see [", &mut out);
        assert_eq!(out, "see ");
        r.push("EM", &mut out);
        assert_eq!(out, "see ");
        r.push("AIL_1] and [1]", &mut out);
        assert_eq!(out, "see me@x.org and [1]");
        // `[x` cannot: out at once, like a `[` followed by a space.
        r.push(" [x", &mut out);
        assert_eq!(out, "see me@x.org and [1] [x");
        r.push(" [EMAIL_2", &mut out);
        assert_eq!(out, "see me@x.org and [1] [x [EMAIL_2");
        r.finish(&mut out);
        assert_eq!(out, "see me@x.org and [1] [x [EMAIL_2");
    }

    #[test]
    fn answer_stream_masks_then_restores() {
        let e = engine();
        let (masked, _, vault) = one_shot(&e, "my phone 13812345678");
        let ph = masked.trim_start_matches("my phone ").to_string();
        let answer = format!("Your phone is {ph}; mine is 13900001111.");
        let mut a = AnswerStream::new(
            Some(StreamScanner::new(Rc::clone(&e))),
            Some(RestoreStream::new(vault, Escape::None)),
        );
        let mut out = String::new();
        for c in answer.chars() {
            a.push(&c.to_string(), &mut out);
        }
        a.finish(&mut out);
        assert_eq!(out, "Your phone is 13812345678; mine is [PHONE].");
    }

    /// `persimmon` (keywords, no separators) and the mainland phone detector.
    fn small_engine() -> Rc<Engine> {
        let mut b = EngineBuilder::new(Folder::default(), b"k", 128);
        let fruit = b.add_rule(rule("fruit", RuleKind::Keywords, Action::Mask));
        b.add_word(fruit, "persimmon", false, false).unwrap();
        let phone = b.add_rule(rule(
            "phone",
            RuleKind::Builtin(crate::patterns::Builtin::PhoneCn),
            Action::Mask,
        ));
        b.add_builtin(phone, crate::patterns::Builtin::PhoneCn)
            .unwrap();
        Rc::new(b.build().unwrap())
    }

    /// Feeds `piece`, returns what came out.
    fn feed(s: &mut StreamScanner, piece: &str) -> String {
        let mut out = String::new();
        assert_eq!(s.push(piece, &mut out), Verdict::Pass);
        out
    }

    #[test]
    fn only_the_live_tail_is_held_back() {
        let e = small_engine();
        let mut s = StreamScanner::new(Rc::clone(&e));
        // Nothing here can start a match: all of it goes out at once.
        assert_eq!(feed(&mut s, "Hello there, I"), "Hello there, I");
        assert_eq!(s.held(), 0);
        // `pers` may become `persimmon`: held; the rest is out.
        assert_eq!(feed(&mut s, " like pers"), " like ");
        assert_eq!(s.held(), 4);
        // `persu` cannot: released with the next char.
        assert_eq!(feed(&mut s, "u"), "persu");
        assert_eq!(s.held(), 0);
        // A phone number in the making, then not one.
        assert_eq!(feed(&mut s, "asion, call 138"), "asion, call ");
        assert_eq!(s.held(), 3);
        assert_eq!(feed(&mut s, "1234"), "");
        assert_eq!(s.held(), 7);
        assert_eq!(feed(&mut s, "x"), "1381234x");
        assert_eq!(s.held(), 0);
        // A complete number is held until the characters its boundary check
        // reads are there (a 12th digit would make it no phone number).
        assert_eq!(feed(&mut s, " 13812345678"), " ");
        assert_eq!(feed(&mut s, "!"), "");
        assert_eq!(feed(&mut s, "!"), "[PHONE]!!");
        assert_eq!(s.held(), 0);
        // A found keyword with nothing longer possible goes out masked at once.
        assert_eq!(feed(&mut s, " persimmon"), " [FRUIT]");
        let mut out = String::new();
        assert_eq!(s.finish(&mut out), Verdict::Pass);
        assert_eq!(out, "");
    }

    #[test]
    fn live_prefixes_survive_dropped_characters_and_open_look_alikes() {
        let mut b = EngineBuilder::new(Folder::default(), b"k", 128);
        let r = b.add_rule(rule("bad", RuleKind::Keywords, Action::Mask));
        b.add_word(r, "bomb", false, true).unwrap();
        b.add_word(r, "cop", true, false).unwrap();
        let e = Rc::new(b.build().unwrap());
        let mut s = StreamScanner::new(Rc::clone(&e));
        // Separators, zero-width characters and diacritics after a live
        // prefix fold to nothing: the prefix stays live.
        assert_eq!(feed(&mut s, "a b o"), "a ");
        assert_eq!(feed(&mut s, " \u{200B}\u{0301}"), "");
        assert_eq!(s.held(), "b o \u{200B}\u{0301}".len());
        assert_eq!(feed(&mut s, "m"), "");
        assert_eq!(feed(&mut s, "x"), "b o \u{200B}\u{0301}mx");
        // Cyrillic `со` may still turn out Latin (`cop`), or Russian
        // (`сок`): held while the word is open, released when it reads as
        // Russian... once a letter without a Latin twin makes it so and the
        // Latin reading can no longer match.
        assert_eq!(feed(&mut s, " \u{0441}\u{043E}"), " ");
        assert_eq!(s.held(), 4);
        assert_eq!(feed(&mut s, "\u{043A}"), "\u{0441}\u{043E}\u{043A}");
        assert_eq!(s.held(), 0);
        // A Russian word without look-alike keywords passes at once.
        assert_eq!(
            feed(&mut s, " \u{043C}\u{0438}\u{0440}"),
            " \u{043C}\u{0438}\u{0440}"
        );
    }

    #[test]
    fn unicode_word_boundaries_and_case_folding_split_anywhere() {
        // A Unicode `\b` next to non-ASCII text stops the lazy DFA (counted
        // as live, bounded by the match length); results stay exact.
        let mut b = EngineBuilder::new(Folder::default(), b"k", 128);
        let r = b.add_rule(Rule {
            mask: MaskStyle::Replace(Some("<$1>".into())),
            ..rule("re", RuleKind::Regex, Action::Mask)
        });
        b.add_regex(r, r"\b(cat|кот)\b").unwrap();
        b.add_regex(r, r"(?i)(straße)").unwrap();
        let e = Rc::new(b.build().unwrap());
        let text = "кот, котенок, cat; scat 猫cat猫 STRASSE Straße STRAẞE кот";
        let (whole, _, _) = one_shot(&e, text);
        assert_eq!(
            whole,
            "<кот>, котенок, <cat>; scat 猫cat猫 STRASSE <Straße> <STRAẞE> <кот>"
        );
        for i in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
            let (a, z) = text.split_at(i);
            assert_eq!(streamed(&e, &[a, z]).0, whole, "split at {i}");
        }
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(streamed(&e, &pieces).0, whole);
    }

    #[test]
    fn a_clean_answer_under_the_shipped_example_is_not_delayed() {
        let guard = crate::config::Guard::from_json(include_bytes!("../example.json")).unwrap();
        let answer = "Sure. Persimmons grow best in full sun with well drained soil. Plant \
            young trees in early spring, water them deeply once a week during the first \
            summer, and mulch around the base to keep the roots cool. Prune lightly in late \
            winter to remove crossing branches. Most varieties fruit after three to five years; \
            pick the fruit when it is fully coloured and soft.";
        assert_eq!(answer.chars().count(), 359);
        let mut s = StreamScanner::new(Rc::clone(&guard.engine));
        let mut out = String::new();
        // Token-sized pieces, as a model streams them.
        let mut rest = answer;
        while !rest.is_empty() {
            let (piece, tail) = take_prefix(rest, 4);
            rest = tail;
            assert_eq!(s.push(piece, &mut out), Verdict::Pass);
            let seen = answer.len() - rest.len();
            assert_eq!(&answer[..out.len()], out);
            let held = &answer[out.len()..seen];
            // What waits is the word being written (an e-mail address could
            // still grow out of it) or a keyword's start (`h` + separators
            // of `how to make a bomb`), never a sentence.
            assert!(held.len() <= 16, "held {held:?}");
        }
        assert!(guard.engine.lookahead() > 300);
        s.finish(&mut out);
        assert_eq!(out, answer);
    }

    /// Whether `t` is a prefix of a mainland phone number (the regex's
    /// language), written out by hand.
    fn phone_prefix(t: &str) -> bool {
        const DIGIT: &str = "0123456789";
        const SEP: &str = "- ";
        let plain: Vec<&str> = ["1", "3456789"]
            .into_iter()
            .chain(std::iter::repeat_n(DIGIT, 9))
            .collect();
        let grouped: Vec<&str> = ["1", "3456789", DIGIT, SEP]
            .into_iter()
            .chain(std::iter::repeat_n(DIGIT, 4))
            .chain([SEP])
            .chain(std::iter::repeat_n(DIGIT, 4))
            .collect();
        [plain, grouped].iter().any(|form| {
            t.chars().count() <= form.len()
                && t.chars().zip(form).all(|(c, class)| class.contains(c))
        })
    }

    /// The longest suffix of `text` a match of [`small_engine`] could still
    /// need: a prefix of `persimmon`, a prefix of a phone number, or a phone
    /// number plus the one character after it (its boundary check reads two).
    fn longest_live_suffix(text: &str) -> usize {
        let mut best = 0;
        for (i, _) in text.char_indices() {
            let t = &text[i..];
            let lower = t.to_ascii_lowercase();
            let mut chars = t.char_indices();
            let phone_plus_one = chars
                .next_back()
                .is_some_and(|(j, _)| phone_prefix(&t[..j]) && t[..j].len() >= 11);
            if "persimmon".starts_with(&lower) || phone_prefix(t) || phone_plus_one {
                best = best.max(t.len());
            }
        }
        best
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// A clean text (nothing to mask) streamed in any split: at every
        /// step all of it is out except at most the longest suffix a match
        /// could still need, and at the end all of it.
        #[test]
        fn clean_text_is_held_back_only_as_far_as_a_match_could_need(
            words in proptest::collection::vec(prop_oneof![
                Just("p"), Just("e"), Just("r"), Just("s"), Just("i"), Just("m"), Just("o"),
                Just("n"), Just("P"), Just("1"), Just("3"), Just("8"), Just("0"), Just(" "),
                Just("-"), Just("x"), Just("pers"), Just("immon"), Just("138"), Just("1234"),
            ], 0..60),
            cuts in proptest::collection::vec(0usize..200, 0..20),
        ) {
            let e = small_engine();
            let text: String = words.concat();
            let (whole, _, _) = one_shot(&e, &text);
            prop_assume!(whole == text);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            cuts.sort_unstable();
            cuts.push(text.len());
            let mut s = StreamScanner::new(Rc::clone(&e));
            let mut out = String::new();
            let mut last = 0;
            for c in cuts {
                prop_assert_eq!(s.push(&text[last..c], &mut out), Verdict::Pass);
                last = c;
                let seen = &text[..c];
                prop_assert!(seen.starts_with(out.as_str()));
                let held = seen.len() - out.len();
                prop_assert_eq!(held, s.held());
                prop_assert!(
                    held <= longest_live_suffix(seen),
                    "held {:?} of {:?}", &seen[out.len()..], seen
                );
            }
            prop_assert_eq!(s.finish(&mut out), Verdict::Pass);
            prop_assert_eq!(out, text);
        }

        /// Whatever the split, no banned word or phone number reaches the
        /// output at any step, and the final output is the whole-text one.
        #[test]
        fn nothing_sensitive_leaks_at_any_step(
            words in proptest::collection::vec(prop_oneof![
                Just("persimmon"), Just("pers"), Just("immon"), Just("PERSIMMON"), Just(" "),
                Just("13812345678"), Just("138"), Just("1234"), Just("5678"), Just("x"),
                Just("-"), Just("9"),
            ], 0..30),
            cuts in proptest::collection::vec(0usize..300, 0..12),
        ) {
            let e = small_engine();
            let text: String = words.concat();
            let (whole, _, _) = one_shot(&e, &text);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            cuts.sort_unstable();
            cuts.push(text.len());
            let mut s = StreamScanner::new(Rc::clone(&e));
            let mut out = String::new();
            let mut last = 0;
            for c in cuts {
                s.push(&text[last..c], &mut out);
                last = c;
                // What is out is final: the start of the whole-text result.
                prop_assert!(whole.starts_with(out.as_str()), "{:?} vs {:?}", out, whole);
            }
            s.finish(&mut out);
            prop_assert_eq!(&out, &whole);
            prop_assert!(!out.to_ascii_lowercase().contains("persimmon"));
        }

        #[test]
        fn random_splits_match_one_shot(cuts in proptest::collection::vec(0usize..SAMPLE.len(), 0..12)) {
            let e = engine();
            let expected = one_shot(&e, SAMPLE);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| floor_boundary(SAMPLE, c)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts {
                pieces.push(&SAMPLE[last..c]);
                last = c;
            }
            pieces.push(&SAMPLE[last..]);
            let got = streamed(&e, &pieces);
            prop_assert_eq!(got.0, expected.0);
            prop_assert_eq!(got.1, expected.1);
        }

        #[test]
        fn random_text_random_splits(
            words in proptest::collection::vec(prop_oneof![
                Just("persimmon"), Just("pers"), Just("immon"), Just("敏"), Just("感词"), Just(" "),
                Just("."), Just("13812345678"), Just("1381234"), Just("5678"), Just("a@b.cn"),
                Just("x"), Just("Ｐ"), Just("ＥＲＳＩＭＭＯＮ"), Just("192.168.0."), Just("1"),
                Just("forbidden"), Just("tok-"), Just("ab"), Just("[EMAIL_1]"), Just("4111111111111111"),
                Just("\u{0441}"), Just("\u{0440}"), Just("к"), Just("\u{200B}"), Just("\u{0301}"),
                Just("\n"), Just("𝐩"), Just("é"), Just("ο"), Just("λ"),
            ], 0..40),
            cuts in proptest::collection::vec(0usize..400, 0..8),
        ) {
            let e = engine();
            let text: String = words.concat();
            let expected = one_shot(&e, &text);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| floor_boundary(&text, c)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts {
                pieces.push(&text[last..c]);
                last = c;
            }
            pieces.push(&text[last..]);
            let got = streamed(&e, &pieces);
            prop_assert_eq!(&got.1, &expected.1);
            if !expected.1.is_block() {
                prop_assert_eq!(got.0, expected.0);
            }
        }
    }
}
