//! The scanner: keywords and patterns combined into one stream of
//! non-overlapping findings, and the actions applied to them.
//!
//! # Matching semantics
//! Scanning walks a cursor through the text. At each step every source (the
//! keyword automatons and each pattern) reports its leftmost match starting at
//! or after the cursor; the finding taken is the one that starts first; at
//! equal starts the stronger action wins (block > mask > log), then the
//! longer match, then the rule defined first. The cursor then moves to the
//! finding's end. Because each step depends only on the text from the cursor
//! up to the longest possible match (plus a few characters of context), the
//! streaming scanner can reproduce exactly the same findings while holding
//! back only the tail where a match could still start and need more text
//! (`Searcher::live_from`), never more than [`Engine::lookahead`] bytes.
//!
//! # Actions
//! `block` stops and reports the rule; `mask` replaces the match (a fixed
//! value or `[LABEL]`, a salted hash `[LABEL:8 hex]`, or a restorable
//! placeholder `[LABEL_n]` recorded in the request's [`Vault`]); `log` only
//! counts it.

use crate::keywords::{KeywordSet, KeywordSetBuilder, WordError};
use crate::normalize::{Folded, Folder, OpenLetter};
use crate::patterns::{Builtin, Pattern};
use crate::vault::Vault;
use aigw::hash::hmac_sha256;

/// What to do on a match (a rule's `action`: `block`, `mask` or its Higress
/// spelling `replace`, `log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Reject the request / stop the answer.
    Block,
    /// Rewrite the matched text.
    #[serde(alias = "replace")]
    Mask,
    /// Only report the match.
    Log,
}

impl Action {
    fn severity(self) -> u8 {
        match self {
            Action::Block => 2,
            Action::Mask => 1,
            Action::Log => 0,
        }
    }
}

/// How a masked match is rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskStyle {
    /// A fixed value; `None` means `[LABEL]`. For regex rules the value may
    /// refer to capture groups (`$1`, `$name`, `${name}`).
    Replace(Option<String>),
    /// `[LABEL:xxxxxxxx]`: the first 4 bytes of HMAC-SHA-256(salt, match).
    Hash,
}

/// Where a rule's matches come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// A keyword list.
    Keywords,
    /// A built-in detector.
    Builtin(Builtin),
    /// A custom regex.
    Regex,
}

/// One configured rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name used in logs and block responses.
    pub name: String,
    /// Where matches come from.
    pub kind: RuleKind,
    /// What to do on a match.
    pub action: Action,
    /// How masking rewrites (only for [`Action::Mask`]).
    pub mask: MaskStyle,
    /// Record masked values so the answer can have them restored.
    pub restore: bool,
    /// Placeholder label (`PHONE` gives `[PHONE]`, `[PHONE_1]`, ...).
    pub label: String,
}

/// One match, in original text byte offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// Index of the rule in [`Engine::rules`].
    pub rule: u32,
    /// Start byte.
    pub start: usize,
    /// End byte (exclusive).
    pub end: usize,
    /// Pattern index for regex findings (for capture replacement).
    source: Option<u32>,
    /// The pattern match was cut at its maximum length.
    capped: bool,
}

/// Result of scanning: pass, or blocked by a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing blocking was found.
    Pass,
    /// A `block` rule matched.
    Block {
        /// The rule's name.
        rule: String,
    },
}

impl Verdict {
    /// Whether this is a block.
    pub fn is_block(&self) -> bool {
        matches!(self, Verdict::Block { .. })
    }
}

/// Per-rule hit counts collected while scanning (for logs and metrics; the
/// matched text itself is never kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    counts: Vec<u32>,
}

impl Report {
    /// Counts one hit of `rule`.
    pub fn record(&mut self, rule: u32) {
        let i = rule as usize;
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        if let Some(c) = self.counts.get_mut(i) {
            *c = c.saturating_add(1);
        }
    }

    /// Adds every count of `other` to this report.
    pub fn merge(&mut self, other: &Report) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = mine.saturating_add(*theirs);
        }
    }

    /// Forgets every count (keeps the allocation).
    pub fn clear(&mut self) {
        self.counts.clear();
    }

    /// Total hits.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// Hits of one rule.
    pub fn count(&self, rule: u32) -> u32 {
        self.counts.get(rule as usize).copied().unwrap_or(0)
    }

    /// `(rule, count)` for every rule that matched.
    pub fn iter<'e>(&'e self, engine: &'e Engine) -> impl Iterator<Item = (&'e Rule, u32)> + 'e {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .filter_map(move |(i, &c)| engine.rules.get(i).map(|r| (r, c)))
    }
}

/// Builds an [`Engine`] rule by rule.
#[derive(Debug)]
pub struct EngineBuilder {
    folder: Folder,
    keywords: KeywordSetBuilder,
    patterns: Vec<Pattern>,
    rules: Vec<Rule>,
    salt: Vec<u8>,
    cap: usize,
}

impl EngineBuilder {
    /// A builder using `folder` for keywords, `salt` for hashes and `cap` as
    /// the longest regex match (bytes).
    pub fn new(folder: Folder, salt: &[u8], cap: usize) -> EngineBuilder {
        EngineBuilder {
            folder,
            keywords: KeywordSetBuilder::new(),
            patterns: Vec::new(),
            rules: Vec::new(),
            salt: salt.to_vec(),
            cap: cap.max(1),
        }
    }

    /// Adds a rule and returns its index.
    pub fn add_rule(&mut self, rule: Rule) -> u32 {
        self.rules.push(rule);
        u32::try_from(self.rules.len() - 1).unwrap_or(u32::MAX)
    }

    /// Adds a keyword to `rule`.
    pub fn add_word(
        &mut self,
        rule: u32,
        word: &str,
        whole_word: bool,
        ignore_separators: bool,
    ) -> Result<(), WordError> {
        self.keywords
            .add(&self.folder, word, rule, whole_word, ignore_separators)
    }

    /// Adds a built-in detector to `rule`.
    pub fn add_builtin(&mut self, rule: u32, b: Builtin) -> Result<(), String> {
        self.patterns.push(Pattern::builtin(b, rule, self.cap)?);
        Ok(())
    }

    /// Adds a custom regex to `rule`; the error says why it is invalid.
    pub fn add_regex(&mut self, rule: u32, source: &str) -> Result<(), String> {
        self.patterns.push(Pattern::custom(source, rule, self.cap)?);
        Ok(())
    }

    /// Builds the engine.
    pub fn build(self) -> Result<Engine, String> {
        let keywords = self.keywords.build(&self.folder)?;
        let longest = self
            .patterns
            .iter()
            .map(|p| p.max_len)
            .chain(std::iter::once(keywords.max_span()))
            .max()
            .unwrap_or(0);
        let lookahead = if longest == 0 {
            0
        } else {
            // Context after a match: boundary checks read two characters, the
            // separator-run decision reads max_separator_run + 1, the
            // look-alike decision SCRIPT_CONTEXT_CHARS.
            longest
                + 8
                + 4 * (self.folder.max_separator_run() + 1)
                + 4 * crate::normalize::SCRIPT_CONTEXT_CHARS
        };
        let ascii_starts = ascii_starts(&keywords, &self.patterns);
        let keyword_starts = (0u8..128)
            .filter(|b| {
                let folded = b.to_ascii_lowercase();
                keywords.groups.iter().any(|g| g.starts_with(folded))
            })
            .fold(0u128, |set, b| set | 1u128 << b);
        Ok(Engine {
            folder: self.folder,
            keywords,
            patterns: self.patterns,
            rules: self.rules,
            salt: self.salt,
            lookahead,
            ascii_starts,
            keyword_starts,
        })
    }
}

/// The compiled rule set; build once at configure time, share with `Rc`.
#[derive(Debug)]
pub struct Engine {
    folder: Folder,
    keywords: KeywordSet,
    patterns: Vec<Pattern>,
    rules: Vec<Rule>,
    salt: Vec<u8>,
    lookahead: usize,
    /// The ASCII bytes at which some rule could start a match, one bit each (for keywords:
    /// whose lower case starts a word); `None` when a pattern cannot tell (look-around).
    ascii_starts: Option<u128>,
    /// The ASCII bytes (either case) whose lower case starts a keyword, one bit each.
    keyword_starts: u128,
}

/// [`Engine::ascii_starts`] of these keywords and patterns.
fn ascii_starts(keywords: &KeywordSet, patterns: &[Pattern]) -> Option<u128> {
    let mut set = 0u128;
    for b in 0u8..128 {
        let folded = b.to_ascii_lowercase();
        let mut starts = keywords.groups.iter().any(|g| g.starts_with(folded));
        for p in patterns {
            starts |= p.may_start_with(b)?;
        }
        if starts {
            set |= 1u128 << b;
        }
    }
    Some(set)
}

/// Bytes of already-emitted text kept before the scan position so boundary
/// checks and look-behind assertions see the same context as a one-shot scan.
/// Covers the look-alike decision's look-back
/// ([`crate::normalize::SCRIPT_CONTEXT_CHARS`] characters of up to 4 bytes).
pub(crate) const CONTEXT: usize = 16 + 4 * crate::normalize::SCRIPT_CONTEXT_CHARS;

impl Engine {
    /// The rules, indexed by [`Finding::rule`].
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule with index `i`.
    pub fn rule(&self, i: u32) -> Option<&Rule> {
        self.rules.get(i as usize)
    }

    /// Bytes of look-ahead a finding needs to be final in the worst case: the
    /// longest possible match plus context. The stream scanner never holds
    /// back more than this (usually far less: only a live partial match).
    pub fn lookahead(&self) -> usize {
        self.lookahead
    }

    /// Whether there is no rule at all (scanning is a copy).
    pub fn is_empty(&self) -> bool {
        self.lookahead == 0
    }

    /// Whether no rule can start a match anywhere in `text`, known from its bytes alone:
    /// it is ASCII (so it folds to its lower-cased bytes, with no look-alike letter), none
    /// of its bytes starts a keyword, and every byte a pattern can start with is followed,
    /// within `text`, by a byte on which that pattern's match dies (`Pattern::may_continue`).
    /// A search from its start then finds nothing, and nothing in it is live.
    pub(crate) fn quiet(&self, text: &str) -> bool {
        let Some(set) = self.ascii_starts else {
            return false;
        };
        let bytes = text.as_bytes();
        bytes.is_ascii()
            && bytes.iter().enumerate().all(|(i, &b)| {
                set & (1u128 << b) == 0 || self.dead_start(b, bytes.get(i + 1).copied())
            })
    }

    /// Whether no rule's match can start with the ASCII byte `b` followed by `next` (`None`:
    /// the text ends after `b`, anything may follow).
    fn dead_start(&self, b: u8, next: Option<u8>) -> bool {
        let Some(next) = next else {
            return false;
        };
        self.keyword_starts & (1u128 << b) == 0
            && !self.patterns.iter().any(|p| p.may_continue(b, next))
    }

    /// Heap bytes used by the keyword automatons.
    pub fn keyword_memory(&self) -> usize {
        self.keywords.memory_usage()
    }

    /// All findings in `text`, in order, non-overlapping.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut s = Searcher::new(self, text, 0);
        let mut out = Vec::new();
        let mut cursor = 0;
        while let Some(f) = s.next(cursor) {
            cursor = f.end;
            out.push(f);
        }
        out
    }

    /// Scans `text` and writes it, masked, to `out`; counts hits in `report`.
    /// Stops at the first `block` finding (then `out` holds a partial copy
    /// that must not be used). `vault`: where restorable masks are recorded;
    /// without one, restorable rules mask like non-restorable ones.
    pub fn redact(
        &self,
        text: &str,
        mut vault: Option<&mut Vault>,
        out: &mut String,
        report: &mut Report,
    ) -> Verdict {
        if self.is_empty() {
            out.push_str(text);
            return Verdict::Pass;
        }
        let mut s = Searcher::new(self, text, 0);
        let mut cursor = 0;
        while let Some(f) = s.next(cursor) {
            out.push_str(text.get(cursor..f.start).unwrap_or(""));
            report.record(f.rule);
            if let Some(v) = self.apply(text, &f, vault.as_deref_mut(), out) {
                return v;
            }
            cursor = f.end;
        }
        out.push_str(text.get(cursor..).unwrap_or(""));
        Verdict::Pass
    }

    /// Applies one finding: writes its replacement (or the original text for
    /// `log`) to `out`, or returns the block verdict.
    pub(crate) fn apply(
        &self,
        text: &str,
        f: &Finding,
        vault: Option<&mut Vault>,
        out: &mut String,
    ) -> Option<Verdict> {
        let rule = self.rule(f.rule)?;
        let matched = text.get(f.start..f.end).unwrap_or("");
        match rule.action {
            Action::Block => {
                return Some(Verdict::Block {
                    rule: rule.name.clone(),
                })
            }
            Action::Log => out.push_str(matched),
            Action::Mask => {
                let digest = match rule.mask {
                    MaskStyle::Hash => Some(hmac_sha256(&self.salt, matched.as_bytes())),
                    MaskStyle::Replace(_) => None,
                };
                if rule.restore {
                    if let Some(v) = vault {
                        if let Some(p) =
                            v.placeholder_for(&rule.label, digest.as_ref().map(|d| &d[..]), matched)
                        {
                            out.push_str(&p);
                            return None;
                        }
                    }
                }
                match (&rule.mask, digest) {
                    (_, Some(d)) => {
                        out.push('[');
                        out.push_str(&rule.label);
                        out.push(':');
                        aigw::hash::push_hex(out, &d, 4);
                        out.push(']');
                    }
                    (MaskStyle::Replace(Some(value)), None) => self.push_value(text, f, value, out),
                    (_, None) => {
                        out.push('[');
                        out.push_str(&rule.label);
                        out.push(']');
                    }
                }
            }
        }
        None
    }

    /// Writes a replacement value, expanding capture groups for regex
    /// findings that were not cut short.
    fn push_value(&self, text: &str, f: &Finding, value: &str, out: &mut String) {
        if value.contains('$') && !f.capped {
            if let Some(p) = f.source.and_then(|i| self.patterns.get(i as usize)) {
                if p.expand(text, f.start, f.end, value, out) {
                    return;
                }
            }
        }
        out.push_str(value);
    }
}

/// A source's cached next candidate.
#[derive(Debug, Clone, Copy)]
enum Cached {
    Unknown,
    Exhausted,
    At(Finding),
}

/// Finds findings in one fixed text, caching each source's next candidate.
pub(crate) struct Searcher<'a> {
    engine: &'a Engine,
    text: &'a str,
    folded: Vec<Folded>,
    kw: Vec<Cached>,
    re: Vec<Cached>,
    /// Per keyword group: no word can start in the searched text (it was not folded; see
    /// `Group::quiet_in`).
    quiet: Vec<bool>,
}

/// The buffers of a [`Searcher`], kept between the pieces of a stream.
#[derive(Debug, Default)]
pub(crate) struct SearchBuffers {
    folded: Vec<Folded>,
    kw: Vec<Cached>,
    re: Vec<Cached>,
    quiet: Vec<bool>,
}

/// Folds `text[start..]` for keyword group `g` into `f`, unless no word of the group can
/// start there (then `f` is left empty and the answer is true).
fn fold_group(
    engine: &Engine,
    g: &crate::keywords::Group,
    text: &str,
    start: usize,
    f: &mut Folded,
) -> bool {
    let mut from = start.min(text.len());
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    if g.quiet_in(text.get(from..).unwrap_or("")) {
        f.clear_at(from);
        return true;
    }
    engine.folder.fold_into(text, from, g.drop_separators, f);
    false
}

/// Reusable scratch space for [`Searcher::live_from`].
#[derive(Debug, Default)]
pub(crate) struct LiveScratch {
    open: Vec<OpenLetter>,
    stack: Vec<(usize, aho_corasick::automaton::StateID, bool)>,
}

impl<'a> Searcher<'a> {
    /// Prepares to search `text` from `start` on (a char boundary).
    pub(crate) fn new(engine: &'a Engine, text: &'a str, start: usize) -> Searcher<'a> {
        Searcher::with_buffers(engine, text, start, SearchBuffers::default())
    }

    /// Gives the buffers back for the next text (stream scanner).
    pub(crate) fn into_buffers(self) -> SearchBuffers {
        SearchBuffers {
            folded: self.folded,
            kw: self.kw,
            re: self.re,
            quiet: self.quiet,
        }
    }

    /// Like [`Searcher::new`] but reusing buffers (no allocation once they are big enough).
    pub(crate) fn with_buffers(
        engine: &'a Engine,
        text: &'a str,
        start: usize,
        buffers: SearchBuffers,
    ) -> Searcher<'a> {
        let SearchBuffers {
            mut folded,
            mut kw,
            mut re,
            mut quiet,
        } = buffers;
        let groups = engine.keywords.group_count();
        folded.resize_with(groups, Folded::new);
        kw.clear();
        quiet.clear();
        for (f, g) in folded.iter_mut().zip(&engine.keywords.groups) {
            let q = fold_group(engine, g, text, start, f);
            quiet.push(q);
            kw.push(if q {
                Cached::Exhausted
            } else {
                Cached::Unknown
            });
        }
        re.clear();
        re.resize(engine.patterns.len(), Cached::Unknown);
        Searcher {
            engine,
            text,
            folded,
            kw,
            re,
            quiet,
        }
    }

    /// The earliest position `p >= from` (a char boundary) where some rule
    /// could still produce a match that needs text not yet seen (a *live*
    /// partial match, see [`crate::keywords::KeywordSet::live_start`] and
    /// [`crate::patterns::Pattern::live_start`]); the text length when there
    /// is none. Every finding starting before `p` is final. Starts more than
    /// [`Engine::lookahead`] bytes before the end count as settled whatever
    /// the rules say (the bound of a stream's hold-back).
    pub(crate) fn live_from(&self, from: usize, scratch: &mut LiveScratch) -> usize {
        let engine = self.engine;
        let text = self.text;
        let len = text.len();
        let mut floor = len.saturating_sub(engine.lookahead);
        while floor < len && !text.is_char_boundary(floor) {
            floor += 1;
        }
        let from = from.max(floor);
        let mut p = len;
        for (gi, folded) in self.folded.iter().enumerate() {
            if self.quiet.get(gi).copied().unwrap_or(false) {
                continue;
            }
            engine.folder.open_letters(text, folded, &mut scratch.open);
            if let Some(s) = engine.keywords.live_start(
                gi,
                text,
                folded,
                &scratch.open,
                from,
                &mut scratch.stack,
            ) {
                p = p.min(s);
            }
        }
        for pat in &engine.patterns {
            if let Some(s) = pat.live_start(text, from) {
                p = p.min(s);
            }
        }
        p.max(from.min(len))
    }

    /// The next finding starting at or after `cursor`.
    pub(crate) fn next(&mut self, cursor: usize) -> Option<Finding> {
        let engine = self.engine;
        let text = self.text;
        let mut best: Option<Finding> = None;
        for (gi, slot) in self.kw.iter_mut().enumerate() {
            let stale = match slot {
                Cached::Unknown => true,
                Cached::At(f) => f.start < cursor,
                Cached::Exhausted => false,
            };
            if stale {
                let found = self
                    .folded
                    .get(gi)
                    .and_then(|folded| engine.keywords.find_in_group(gi, text, folded, cursor));
                *slot = match found {
                    Some(h) => Cached::At(Finding {
                        rule: h.rule,
                        start: h.start,
                        end: h.end,
                        source: None,
                        capped: false,
                    }),
                    None => Cached::Exhausted,
                };
            }
            if let Cached::At(f) = slot {
                best = Some(pick(engine, best, *f));
            }
        }
        for (pi, (slot, p)) in self.re.iter_mut().zip(&engine.patterns).enumerate() {
            let stale = match slot {
                Cached::Unknown => true,
                Cached::At(f) => f.start < cursor,
                Cached::Exhausted => false,
            };
            if stale {
                *slot = match p.find_from(text, cursor) {
                    Some(h) => Cached::At(Finding {
                        rule: p.rule,
                        start: h.start,
                        end: h.end,
                        source: u32::try_from(pi).ok(),
                        capped: h.capped,
                    }),
                    None => Cached::Exhausted,
                };
            }
            if let Cached::At(f) = slot {
                best = Some(pick(engine, best, *f));
            }
        }
        best
    }
}

/// The preferred of two candidates (see the module docs for the order).
fn pick(engine: &Engine, best: Option<Finding>, f: Finding) -> Finding {
    let Some(b) = best else {
        return f;
    };
    let sev = |x: &Finding| engine.rule(x.rule).map_or(0, |r| r.action.severity());
    let key = |x: &Finding| {
        (
            x.start,
            std::cmp::Reverse(sev(x)),
            std::cmp::Reverse(x.end - x.start),
            x.rule,
        )
    };
    if key(&f) < key(&b) {
        f
    } else {
        b
    }
}

/// Convenience for tests and simple setups: a rule with defaults.
pub fn rule(name: &str, kind: RuleKind, action: Action) -> Rule {
    let label = match kind {
        RuleKind::Builtin(b) => b.label().to_string(),
        _ => name
            .to_ascii_uppercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
    };
    Rule {
        name: name.to_string(),
        kind,
        action,
        mask: MaskStyle::Replace(None),
        restore: false,
        label,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::Escape;

    fn engine() -> Engine {
        let mut b = EngineBuilder::new(Folder::default(), b"salt", 128);
        let bad = b.add_rule(rule("bad", RuleKind::Keywords, Action::Block));
        b.add_word(bad, "persimmon", false, true).unwrap();
        b.add_word(bad, "敏感词", false, true).unwrap();
        let soft = b.add_rule(Rule {
            mask: MaskStyle::Replace(Some("***".into())),
            ..rule("soft", RuleKind::Keywords, Action::Mask)
        });
        b.add_word(soft, "darn", true, false).unwrap();
        let phone = b.add_rule(Rule {
            restore: true,
            ..rule("phone", RuleKind::Builtin(Builtin::PhoneCn), Action::Mask)
        });
        b.add_builtin(phone, Builtin::PhoneCn).unwrap();
        let email = b.add_rule(Rule {
            restore: true,
            mask: MaskStyle::Hash,
            ..rule("email", RuleKind::Builtin(Builtin::Email), Action::Mask)
        });
        b.add_builtin(email, Builtin::Email).unwrap();
        let ip = b.add_rule(rule("ip", RuleKind::Builtin(Builtin::Ipv4), Action::Log));
        b.add_builtin(ip, Builtin::Ipv4).unwrap();
        let dom = b.add_rule(Rule {
            mask: MaskStyle::Replace(Some("user@$d".into())),
            ..rule("corp", RuleKind::Regex, Action::Mask)
        });
        b.add_regex(dom, r"ldap:[a-z]+@(?P<d>corp\.example)")
            .unwrap();
        b.build().unwrap()
    }

    fn redact(e: &Engine, text: &str, vault: Option<&mut Vault>) -> (String, Verdict, Report) {
        let mut out = String::new();
        let mut report = Report::default();
        let v = e.redact(text, vault, &mut out, &mut report);
        (out, v, report)
    }

    #[test]
    fn block_mask_log() {
        let e = engine();
        let (_, v, _) = redact(&e, "I like P.E.R.S.I.M.M.O.N", None);
        assert_eq!(v, Verdict::Block { rule: "bad".into() });
        let (_, v, _) = redact(&e, "这是敏　感　词", None);
        assert!(v.is_block());
        let (out, v, r) = redact(&e, "darn, darnit! call 13812345678 from 10.0.0.1", None);
        assert_eq!(v, Verdict::Pass);
        assert_eq!(out, "***, darnit! call [PHONE] from 10.0.0.1");
        assert_eq!((r.count(1), r.count(2), r.count(4)), (1, 1, 1));
        let names: Vec<_> = r
            .iter(&e)
            .map(|(rule, n)| (rule.name.as_str(), n))
            .collect();
        assert_eq!(names, [("soft", 1), ("phone", 1), ("ip", 1)]);
    }

    #[test]
    fn capture_replacement() {
        let e = engine();
        let (out, _, _) = redact(&e, "mail ldap:bob@corp.example now", None);
        assert_eq!(out, "mail user@corp.example now");
    }

    #[test]
    fn hash_is_salted_and_stable() {
        let e = engine();
        let (a, _, _) = redact(&e, "x a@b.com y a@b.com", None);
        let d = hmac_sha256(b"salt", b"a@b.com");
        let mut hex = String::new();
        aigw::hash::push_hex(&mut hex, &d, 4);
        assert_eq!(a, format!("x [EMAIL:{hex}] y [EMAIL:{hex}]"));
        let mut b = EngineBuilder::new(Folder::default(), b"other", 128);
        let r = b.add_rule(Rule {
            mask: MaskStyle::Hash,
            ..rule("email", RuleKind::Builtin(Builtin::Email), Action::Mask)
        });
        b.add_builtin(r, Builtin::Email).unwrap();
        let e2 = b.build().unwrap();
        let (a2, _, _) = redact(&e2, "x a@b.com y a@b.com", None);
        assert_ne!(a, a2);
    }

    #[test]
    fn mask_and_restore_round_trip() {
        let e = engine();
        let mut vault = Vault::default();
        let prompt = "我的手机13812345678, 邮箱 me@home.org, 备用13900001111, 再说一次13812345678";
        let (masked, v, _) = redact(&e, prompt, Some(&mut vault));
        assert_eq!(v, Verdict::Pass);
        assert!(!masked.contains("13812345678") && !masked.contains("me@home.org"));
        assert_eq!(masked.matches("[PHONE_1]").count(), 2);
        assert_eq!(masked.matches("[PHONE_2]").count(), 1);
        assert_eq!(vault.len(), 3);
        // The model answers with the placeholders; the user gets the values.
        let answer = masked.replace("我的", "你的");
        let mut restored = String::new();
        vault.restore_into(&answer, Escape::None, &mut restored);
        assert_eq!(restored, prompt.replace("我的", "你的"));
    }

    #[test]
    fn findings_do_not_overlap_and_prefer_stronger_actions() {
        let mut b = EngineBuilder::new(Folder::default(), b"", 128);
        let log = b.add_rule(rule("log", RuleKind::Keywords, Action::Log));
        b.add_word(log, "secret plan", false, false).unwrap();
        let block = b.add_rule(rule("block", RuleKind::Regex, Action::Block));
        b.add_regex(block, "secret").unwrap();
        let e = b.build().unwrap();
        let f = e.scan("a secret plan");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, block);
        let f = e.scan("x secret plan secret");
        assert_eq!(
            f.iter().map(|f| (f.start, f.end)).collect::<Vec<_>>(),
            [(2, 8), (14, 20)]
        );
    }

    #[test]
    fn keyword_groups_are_skipped_only_where_no_word_can_start() {
        let e = engine();
        let quiet = |text: &str, start: usize| Searcher::new(&e, text, start).quiet;
        // Words: persimmon and 敏感词 (separators dropped), darn (kept).
        assert_eq!(quiet("tok12 tok13 ", 0), [true, true]);
        assert_eq!(quiet("tok P", 0), [true, false]);
        assert_eq!(quiet("tok D", 0), [false, true]);
        // Only the searched part counts.
        assert_eq!(quiet("persimmon tok", 10), [true, true]);
        // Not ASCII: folded as usual (a look-alike or full-width letter can start a word).
        assert_eq!(quiet("tok \u{0440}", 0), [false, false]);
        assert_eq!(quiet("ｄarn", 0), [false, false]);
        // Findings and live starts are those of folding everything.
        for text in [
            "tok12 tok13 ",
            "a darn P.E.R.S",
            "x ｄarn",
            "persimmon tok",
            "tok pers",
        ] {
            let mut s = Searcher::new(&e, text, 0);
            let mut scratch = LiveScratch::default();
            let live = s.live_from(0, &mut scratch);
            let mut found = Vec::new();
            let mut cursor = 0;
            while let Some(f) = s.next(cursor) {
                cursor = f.end;
                found.push((f.start, f.end));
            }
            let mut full = Searcher::new(&e, text, 0);
            for (f, g) in full.folded.iter_mut().zip(&e.keywords.groups) {
                e.folder.fold_into(text, 0, g.drop_separators, f);
            }
            full.quiet.iter_mut().for_each(|q| *q = false);
            full.kw.iter_mut().for_each(|c| *c = Cached::Unknown);
            assert_eq!(live, full.live_from(0, &mut scratch), "{text}");
            let mut want = Vec::new();
            let mut cursor = 0;
            while let Some(f) = full.next(cursor) {
                cursor = f.end;
                want.push((f.start, f.end));
            }
            assert_eq!(found, want, "{text}");
        }
    }

    #[test]
    fn empty_engine_copies() {
        let e = EngineBuilder::new(Folder::default(), b"", 128)
            .build()
            .unwrap();
        assert!(e.is_empty());
        let (out, v, _) = redact(&e, "anything", None);
        assert_eq!((out.as_str(), v), ("anything", Verdict::Pass));
    }
}
