//! Regex rules: built-in detectors for personal data and secrets, and custom
//! regexes from configuration.
//!
//! Patterns run on the ORIGINAL text (not folded: secrets are case
//! sensitive). Built-ins are written with ASCII classes and bounded
//! repetition, and most carry a validator that runs on each candidate:
//! boundary checks (the regex syntax has no look-around) and checksums (China
//! resident ID ISO 7064 MOD 11-2, bank card Luhn, IPv6 parse). A rejected
//! candidate is skipped and the search resumes one character later.
//!
//! Engine: `regex-automata` used directly, not the `regex` crate's meta
//! engine (whose extra engines and literal optimisations made most of the
//! module's size). A lazy DFA pair (forward for the end, reverse for the
//! start) finds leftmost-first matches — the `regex` crate's semantics; the
//! PikeVM runs only for capture groups on a span already found, and as the
//! fallback when the lazy DFA cannot continue (a Unicode `\b` next to a
//! non-ASCII character). The forward lazy DFA also answers, for the stream
//! scanner, whether a match could still start at a position near the end of
//! the text ([`Pattern::live_start`]).
//!
//! Every pattern has a maximum match length (computed from the regex, capped by
//! the configured `max_match_len`); it sizes the stream hold-back window. A
//! match longer than the cap is cut at the cap (documented limitation for
//! unbounded custom regexes such as `sk-[a-z]*`).

use std::cell::RefCell;

use regex_automata::hybrid;
use regex_automata::nfa::thompson::{self, pikevm, pikevm::PikeVM, WhichCaptures};
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input, MatchKind};

/// Characters a built-in validator reads after a candidate match.
const VALIDATOR_AFTER_CHARS: usize = 2;

/// The built-in detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// Mainland China mobile number: `1[3-9]` + 9 digits (optionally grouped
    /// 3-4-4 with spaces or dashes), not inside a longer digit run.
    PhoneCn,
    /// International number in E.164 style: `+`, country code, 7..15 digits
    /// in total, optional single spaces/dashes.
    PhoneIntl,
    /// E-mail address.
    Email,
    /// China resident identity card number (18 chars, checksum validated).
    CnId,
    /// Bank card number (13..19 digits, optionally grouped by 4, Luhn
    /// validated).
    BankCard,
    /// IPv4 address (octets <= 255), not part of a longer dotted number.
    Ipv4,
    /// IPv6 address (validated by parsing).
    Ipv6,
    /// OpenAI API key `sk-...`, `sk-proj-...`.
    OpenaiKey,
    /// Anthropic API key `sk-ant-...`.
    AnthropicKey,
    /// AWS access key id `AKIA...` / `ASIA...`.
    AwsAccessKey,
    /// GitHub token `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` or `github_pat_`.
    GithubToken,
    /// Google API key `AIza...`.
    GoogleApiKey,
    /// Slack token `xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxs-`.
    SlackToken,
    /// JSON Web Token `eyJ...`.`eyJ...`.`...`.
    Jwt,
    /// `Bearer <token>` as found in pasted headers.
    BearerToken,
}

/// Every built-in, in the order used for the `all`/`pii`/`secrets` groups.
pub const ALL_BUILTINS: [Builtin; 15] = [
    Builtin::PhoneCn,
    Builtin::PhoneIntl,
    Builtin::Email,
    Builtin::CnId,
    Builtin::BankCard,
    Builtin::Ipv4,
    Builtin::Ipv6,
    Builtin::OpenaiKey,
    Builtin::AnthropicKey,
    Builtin::AwsAccessKey,
    Builtin::GithubToken,
    Builtin::GoogleApiKey,
    Builtin::SlackToken,
    Builtin::Jwt,
    Builtin::BearerToken,
];

impl Builtin {
    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::PhoneCn => "phone_cn",
            Builtin::PhoneIntl => "phone_intl",
            Builtin::Email => "email",
            Builtin::CnId => "cn_id",
            Builtin::BankCard => "bank_card",
            Builtin::Ipv4 => "ipv4",
            Builtin::Ipv6 => "ipv6",
            Builtin::OpenaiKey => "openai_key",
            Builtin::AnthropicKey => "anthropic_key",
            Builtin::AwsAccessKey => "aws_access_key",
            Builtin::GithubToken => "github_token",
            Builtin::GoogleApiKey => "google_api_key",
            Builtin::SlackToken => "slack_token",
            Builtin::Jwt => "jwt",
            Builtin::BearerToken => "bearer_token",
        }
    }

    /// The default placeholder label (`[PHONE]`, `[EMAIL_1]`, ...).
    pub fn label(self) -> &'static str {
        match self {
            Builtin::PhoneCn | Builtin::PhoneIntl => "PHONE",
            Builtin::Email => "EMAIL",
            Builtin::CnId => "ID_CARD",
            Builtin::BankCard => "BANK_CARD",
            Builtin::Ipv4 | Builtin::Ipv6 => "IP",
            Builtin::OpenaiKey
            | Builtin::AnthropicKey
            | Builtin::AwsAccessKey
            | Builtin::GithubToken
            | Builtin::GoogleApiKey
            | Builtin::SlackToken => "API_KEY",
            Builtin::Jwt | Builtin::BearerToken => "TOKEN",
        }
    }

    /// Whether this detector finds credentials (the `secrets` group) rather
    /// than personal data (the `pii` group).
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            Builtin::OpenaiKey
                | Builtin::AnthropicKey
                | Builtin::AwsAccessKey
                | Builtin::GithubToken
                | Builtin::GoogleApiKey
                | Builtin::SlackToken
                | Builtin::Jwt
                | Builtin::BearerToken
        )
    }

    /// Looks a built-in up by configuration name.
    pub fn from_name(name: &str) -> Option<Builtin> {
        ALL_BUILTINS.iter().copied().find(|b| b.name() == name)
    }

    /// Expands a name that may be a group (`all`, `pii`, `secrets`) or a
    /// single built-in.
    pub fn expand(name: &str) -> Option<Vec<Builtin>> {
        match name {
            "all" => Some(ALL_BUILTINS.to_vec()),
            "pii" => Some(
                ALL_BUILTINS
                    .iter()
                    .copied()
                    .filter(|b| !b.is_secret())
                    .collect(),
            ),
            "secrets" => Some(
                ALL_BUILTINS
                    .iter()
                    .copied()
                    .filter(|b| b.is_secret())
                    .collect(),
            ),
            _ => Builtin::from_name(name).map(|b| vec![b]),
        }
    }

    fn regex_source(self) -> &'static str {
        match self {
            Builtin::PhoneCn => r"1[3-9][0-9](?:[0-9]{8}|[- ][0-9]{4}[- ][0-9]{4})",
            Builtin::PhoneIntl => r"\+[1-9][0-9]{0,2}(?:[- ]?[0-9]){6,13}",
            Builtin::Email => {
                r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?){0,6}\.[A-Za-z]{2,24}"
            }
            Builtin::CnId => r"[1-9][0-9]{16}[0-9Xx]",
            Builtin::BankCard => r"[0-9]{4}(?:[- ][0-9]{4}){2,3}(?:[- ]?[0-9]{1,3})?|[0-9]{13,19}",
            Builtin::Ipv4 => {
                r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
            }
            Builtin::Ipv6 => r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:]{0,35}",
            Builtin::OpenaiKey => r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,200}",
            Builtin::AnthropicKey => r"sk-ant-[a-z]{2,10}[0-9]{2}-[A-Za-z0-9_-]{20,200}",
            Builtin::AwsAccessKey => r"(?:AKIA|ASIA)[0-9A-Z]{16}",
            Builtin::GithubToken => {
                r"gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,245}"
            }
            Builtin::GoogleApiKey => r"AIza[0-9A-Za-z_-]{35}",
            Builtin::SlackToken => r"xox[bpars]-[A-Za-z0-9-]{10,200}",
            Builtin::Jwt => {
                r"eyJ[A-Za-z0-9_-]{5,2000}\.eyJ[A-Za-z0-9_-]{5,4000}\.[A-Za-z0-9_-]{0,1000}"
            }
            Builtin::BearerToken => r"[Bb]earer [A-Za-z0-9._~+/=-]{16,500}",
        }
    }

    /// Checks a candidate match `text[start..end]` (the whole text is given
    /// for boundary checks).
    fn validate(self, text: &str, start: usize, end: usize) -> bool {
        let Some(m) = text.get(start..end) else {
            return false;
        };
        let before = text.get(..start).and_then(|s| s.chars().next_back());
        let after = text.get(end..).and_then(|s| s.chars().next());
        let after2 = text.get(end..).and_then(|s| s.chars().nth(1));
        let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        let token =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        match self {
            Builtin::PhoneCn => !digit(before) && !digit(after),
            Builtin::PhoneIntl => {
                !alnum(before) && before != Some('+') && !digit(after) && digit_count(m) <= 15
            }
            Builtin::Email => {
                !before.is_some_and(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
                    && !alnum(after)
                    && (after != Some('.') || !alnum(after2))
                    && after != Some('-')
            }
            Builtin::CnId => !digit(before) && !alnum(after) && cn_id_valid(m),
            Builtin::BankCard => {
                !digit(before) && !digit(after) && {
                    let n = digit_count(m);
                    (13..=19).contains(&n) && luhn_valid(m)
                }
            }
            Builtin::Ipv4 => {
                !digit(before)
                    && before != Some('.')
                    && !digit(after)
                    && (after != Some('.') || !digit(after2))
            }
            Builtin::Ipv6 => {
                !(before.is_some_and(|c| c.is_ascii_alphanumeric() || c == ':' || c == '_'))
                    && !(after.is_some_and(|c| c.is_ascii_alphanumeric() || c == ':' || c == '_'))
                    && m.matches(':').count() >= 2
                    && m.parse::<std::net::Ipv6Addr>().is_ok()
            }
            Builtin::OpenaiKey => !token(before) && !token(after) && !m.starts_with("sk-ant-"),
            Builtin::AnthropicKey
            | Builtin::GithubToken
            | Builtin::GoogleApiKey
            | Builtin::SlackToken
            | Builtin::Jwt => !token(before) && !token(after),
            Builtin::AwsAccessKey => !alnum(before) && !alnum(after),
            Builtin::BearerToken => !alnum(before),
        }
    }
}

fn digit_count(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

/// Luhn checksum over the ASCII digits of `s` (other characters ignored).
pub fn luhn_valid(s: &str) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    let mut n = 0;
    for b in s.bytes().rev() {
        if !b.is_ascii_digit() {
            continue;
        }
        let mut d = u32::from(b - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
        n += 1;
    }
    n > 0 && sum % 10 == 0
}

/// China resident ID: 18 chars, plausible birth date (month 01-12, day
/// 01-31), and ISO 7064 MOD 11-2 check character.
pub fn cn_id_valid(s: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [u8; 11] = *b"10X98765432";
    let b = s.as_bytes();
    if b.len() != 18 {
        return false;
    }
    let mut sum = 0u32;
    for (d, w) in b.iter().zip(WEIGHTS) {
        if !d.is_ascii_digit() {
            return false;
        }
        sum += u32::from(d - b'0') * w;
    }
    let num = |r: std::ops::Range<usize>| -> u32 {
        b.get(r)
            .map(|x| {
                x.iter()
                    .fold(0u32, |a, d| a * 10 + u32::from(d.wrapping_sub(b'0')))
            })
            .unwrap_or(0)
    };
    let month = num(10..12);
    let day = num(12..14);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    let expected = CHECK.get((sum % 11) as usize).copied();
    b.get(17).map(u8::to_ascii_uppercase) == expected
}

/// The bytes on which the forward lazy DFA, anchored at the start of a text, does not die at
/// once (a quit counts as alive); `None` if the lazy DFA cannot tell.
fn first_bytes(dfa: &hybrid::regex::Regex, cache: &mut hybrid::regex::Cache) -> Option<[u64; 4]> {
    let fwd = dfa.forward();
    let cache = cache.as_parts_mut().0;
    let config = regex_automata::util::start::Config::new().anchored(Anchored::Yes);
    let mut set = [0u64; 4];
    for b in 0..=255u8 {
        // The start state again for every byte: a cache clear would invalidate it.
        let start = fwd.start_state(cache, &config).ok()?;
        let next = fwd.next_state(cache, start, b).ok()?;
        if !next.is_dead() {
            let w = set.get_mut(usize::from(b >> 6))?;
            *w |= 1u64 << (b & 63);
        }
    }
    Some(set)
}

/// For each ASCII byte of `first`, the ASCII bytes after which the forward lazy DFA, anchored,
/// is not dead (see [`Pattern::may_continue`]); `None` when the DFA cannot tell.
fn second_bytes(
    dfa: &hybrid::regex::Regex,
    cache: &mut hybrid::regex::Cache,
    first: &[u64; 4],
) -> Option<Vec<(u8, u128)>> {
    let fwd = dfa.forward();
    let cache = cache.as_parts_mut().0;
    let config = regex_automata::util::start::Config::new().anchored(Anchored::Yes);
    let mut out = Vec::new();
    for b in (0..128u8).filter(|&b| has_byte(first, b)) {
        let mut set = 0u128;
        for c in 0..128u8 {
            // States again for every pair: a cache clear would invalidate them.
            let start = fwd.start_state(cache, &config).ok()?;
            let one = fwd.next_state(cache, start, b).ok()?;
            let alive =
                one.is_quit() || one.is_match() || !fwd.next_state(cache, one, c).ok()?.is_dead();
            if alive {
                set |= 1u128 << c;
            }
        }
        out.push((b, set));
    }
    Some(out)
}

/// Scratch space of one pattern's engines (the lazy DFAs fill theirs as they
/// go).
#[derive(Debug, Clone)]
struct Caches {
    dfa: hybrid::regex::Cache,
    vm: pikevm::Cache,
}

/// What a compiled pattern detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternKind {
    /// A built-in detector (with its validator).
    Builtin(Builtin),
    /// A custom regex from configuration.
    Custom,
}

/// One compiled pattern rule.
#[derive(Debug)]
pub struct Pattern {
    dfa: hybrid::regex::Regex,
    vm: PikeVM,
    caches: RefCell<Caches>,
    kind: PatternKind,
    /// The rule this pattern belongs to.
    pub rule: u32,
    /// Longest accepted match in bytes (regex maximum, capped).
    pub max_len: usize,
    /// For a regex without look-around (its anchored start state is the same at every
    /// position): the bytes that do not kill an anchored match at once, one bit each. A
    /// position starting with another byte cannot be a live start.
    first: Option<[u64; 4]>,
    /// For each ASCII byte of `first`: the ASCII bytes that may follow it in a match, one
    /// bit each (an anchored match is dead after any other pair). Empty when unknown.
    second: Vec<(u8, u128)>,
}

/// Bit `b` of a 256-bit set.
fn has_byte(set: &[u64; 4], b: u8) -> bool {
    set.get(usize::from(b >> 6))
        .is_some_and(|w| w & (1u64 << (b & 63)) != 0)
}

/// The anchored start state of the forward lazy DFA at one position: computed once per
/// [`Pattern::live_start`] call for regexes without look-around (valid until the lazy DFA's
/// cache is cleared, which `clear_count` tells).
#[derive(Default)]
struct StartMemo {
    sid: Option<(hybrid::LazyStateID, usize)>,
}

/// One pattern hit, original text offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternHit {
    /// Start byte.
    pub start: usize,
    /// End byte (exclusive).
    pub end: usize,
    /// Whether the match was cut at the pattern's maximum length.
    pub capped: bool,
}

impl Pattern {
    /// Compiles a built-in for `rule`; `cap` bounds the match length.
    pub fn builtin(b: Builtin, rule: u32, cap: usize) -> Result<Pattern, String> {
        Pattern::compile(b.regex_source(), PatternKind::Builtin(b), rule, cap)
    }

    /// Compiles a custom regex for `rule`; `cap` bounds the match length.
    pub fn custom(source: &str, rule: u32, cap: usize) -> Result<Pattern, String> {
        Pattern::compile(source, PatternKind::Custom, rule, cap)
    }

    fn compile(source: &str, kind: PatternKind, rule: u32, cap: usize) -> Result<Pattern, String> {
        let invalid = |e: &dyn std::fmt::Display| format!("invalid regex: {e}");
        let hir = regex_syntax::Parser::new()
            .parse(source)
            .map_err(|e| invalid(&e))?;
        let limit = Some(1 << 20);
        let forward = thompson::Compiler::new()
            .configure(thompson::Config::new().nfa_size_limit(limit))
            .build_from_hir(&hir)
            .map_err(|e| invalid(&e))?;
        let reverse = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .nfa_size_limit(limit)
                    .reverse(true)
                    .which_captures(WhichCaptures::None),
            )
            .build_from_hir(&hir)
            .map_err(|e| invalid(&e))?;
        // A Unicode `\b` makes the lazy DFA stop at non-ASCII bytes (the
        // PikeVM takes over there) instead of refusing the pattern.
        let fwd = hybrid::dfa::Builder::new()
            .configure(hybrid::dfa::Config::new().unicode_word_boundary(true))
            .build_from_nfa(forward.clone())
            .map_err(|e| invalid(&e))?;
        let rev = hybrid::dfa::Builder::new()
            .configure(
                hybrid::dfa::Config::new()
                    .unicode_word_boundary(true)
                    .prefilter(None)
                    .specialize_start_states(false)
                    .match_kind(MatchKind::All),
            )
            .build_from_nfa(reverse)
            .map_err(|e| invalid(&e))?;
        let dfa = hybrid::regex::Builder::new().build_from_dfas(fwd, rev);
        let vm = PikeVM::new_from_nfa(forward).map_err(|e| invalid(&e))?;
        let mut caches = Caches {
            dfa: dfa.create_cache(),
            vm: vm.create_cache(),
        };
        if vm.is_match(&mut caches.vm, "") {
            return Err("regex matches the empty string".to_string());
        }
        let max_len = hir.properties().maximum_len().map_or(cap, |m| m.min(cap));
        let first = if hir.properties().look_set().is_empty() {
            first_bytes(&dfa, &mut caches.dfa)
        } else {
            None
        };
        let second = first
            .as_ref()
            .and_then(|f| second_bytes(&dfa, &mut caches.dfa, f))
            .unwrap_or_default();
        Ok(Pattern {
            dfa,
            vm,
            caches: RefCell::new(caches),
            kind,
            rule,
            max_len,
            first,
            second,
        })
    }

    /// The leftmost-first match starting at or after `from`, as
    /// `(start, end)`.
    fn find_at(&self, text: &str, from: usize) -> Option<(usize, usize)> {
        let input = Input::new(text).range(from..);
        let mut fresh;
        let mut guard = self.caches.try_borrow_mut();
        let caches = match guard.as_deref_mut() {
            Ok(c) => c,
            Err(_) => {
                fresh = self.new_caches();
                &mut fresh
            }
        };
        let m = match self.dfa.try_search(&mut caches.dfa, &input) {
            Ok(m) => m,
            // The lazy DFA gave up (a Unicode word boundary next to a
            // non-ASCII character): the PikeVM handles everything.
            Err(_) => self.vm.find(&mut caches.vm, input),
        };
        m.map(|m| (m.start(), m.end()))
    }

    fn new_caches(&self) -> Caches {
        Caches {
            dfa: self.dfa.create_cache(),
            vm: self.vm.create_cache(),
        }
    }

    /// Writes `value` with `$1`, `$name`, `${name}` replaced by the capture
    /// groups of the match `text[start..end]` (same syntax as the `regex`
    /// crate's `Captures::expand`). Returns false, writing nothing, when the
    /// match at `start` is not exactly that span.
    pub fn expand(
        &self,
        text: &str,
        start: usize,
        end: usize,
        value: &str,
        out: &mut String,
    ) -> bool {
        let mut caps: Captures = self.vm.create_captures();
        let input = Input::new(text).range(start..).anchored(Anchored::Yes);
        let mut fresh;
        let mut guard = self.caches.try_borrow_mut();
        let caches = match guard.as_deref_mut() {
            Ok(c) => c,
            Err(_) => {
                fresh = self.new_caches();
                &mut fresh
            }
        };
        self.vm.search(&mut caches.vm, &input, &mut caps);
        match caps.get_match() {
            Some(m) if m.start() == start && m.end() == end => {
                caps.interpolate_string_into(text, value, out);
                true
            }
            _ => false,
        }
    }

    /// The earliest char boundary `s >= from` among the last
    /// `max_len + 8` bytes of `text` where a match could start and still
    /// need text not yet seen: the forward lazy DFA, anchored at `s`, is not
    /// dead at the end of `text` (or had to stop, which counts as alive), or
    /// a built-in's candidate there ends less than two characters before the
    /// end (its validator reads them). Starts further back are settled by
    /// the length bound (a longer match is cut at `max_len`).
    pub fn live_start(&self, text: &str, from: usize) -> Option<usize> {
        let lower = text.len().saturating_sub(self.max_len + 8).max(from);
        if let Some(set) = &self.first {
            // No byte a match can start with: nothing is live (no lazy DFA run at all).
            let tail = text.as_bytes().get(lower..).unwrap_or(&[]);
            if !tail.iter().any(|&b| has_byte(set, b)) {
                return None;
            }
        }
        let mut fresh;
        let mut guard = self.caches.try_borrow_mut();
        let caches = match guard.as_deref_mut() {
            Ok(c) => c,
            Err(_) => {
                fresh = self.new_caches();
                &mut fresh
            }
        };
        let cache = caches.dfa.as_parts_mut().0;
        let bytes = text.as_bytes();
        let mut memo = StartMemo::default();
        (lower..text.len())
            .filter(|&s| text.is_char_boundary(s))
            .filter(|&s| match (&self.first, bytes.get(s)) {
                (Some(set), Some(&b)) => has_byte(set, b),
                _ => true,
            })
            .find(|&s| self.unsettled_at(cache, &mut memo, text, s))
    }

    fn unsettled_at(
        &self,
        cache: &mut hybrid::dfa::Cache,
        memo: &mut StartMemo,
        text: &str,
        s: usize,
    ) -> bool {
        let dfa = self.dfa.forward();
        let cached = match memo.sid {
            Some((sid, clears)) if self.first.is_some() && clears == cache.clear_count() => {
                Some(sid)
            }
            _ => None,
        };
        let mut sid = match cached {
            Some(sid) => sid,
            None => {
                let input = Input::new(text).range(s..).anchored(Anchored::Yes);
                let Ok(sid) = dfa.start_state_forward(cache, &input) else {
                    return true;
                };
                memo.sid = Some((sid, cache.clear_count()));
                sid
            }
        };
        if sid.is_dead() {
            return false;
        }
        let mut last_match = None;
        for (at, &b) in text.as_bytes().iter().enumerate().skip(s) {
            sid = match dfa.next_state(cache, sid, b) {
                Ok(next) => next,
                Err(_) => return true,
            };
            if sid.is_tagged() {
                if sid.is_match() {
                    last_match = Some(at);
                } else if sid.is_dead() {
                    return match (self.kind, last_match) {
                        (PatternKind::Builtin(_), Some(end)) => {
                            text.get(end..)
                                .map_or(0, |t| t.chars().take(VALIDATOR_AFTER_CHARS).count())
                                < VALIDATOR_AFTER_CHARS
                        }
                        _ => false,
                    };
                } else if sid.is_quit() {
                    return true;
                }
            }
        }
        true
    }

    /// Whether a match can start with byte `b`; `None` when the pattern cannot tell
    /// (look-around: the start depends on the text before).
    pub(crate) fn may_start_with(&self, b: u8) -> Option<bool> {
        self.first.as_ref().map(|set| has_byte(set, b))
    }

    /// Whether a match can start with the ASCII byte `b` followed by the ASCII byte `next`:
    /// false only when the pattern knows an anchored match dies on that pair.
    pub(crate) fn may_continue(&self, b: u8, next: u8) -> bool {
        if self.may_start_with(b) == Some(false) {
            return false;
        }
        match self.second.iter().find(|(x, _)| *x == b) {
            Some((_, set)) if next < 128 => set & (1u128 << next) != 0,
            _ => true,
        }
    }

    /// The leftmost valid match starting at or after `from` (a char
    /// boundary), cut at `max_len`.
    pub fn find_from(&self, text: &str, from: usize) -> Option<PatternHit> {
        let mut pos = from;
        while pos <= text.len() {
            // A match starts with a byte of `first` (it is never empty): skip to the first
            // such byte, or stop when there is none (no lazy DFA run at all).
            if let Some(set) = &self.first {
                let skip = text
                    .as_bytes()
                    .get(pos..)
                    .and_then(|rest| rest.iter().position(|&b| has_byte(set, b)))?;
                pos += skip;
            }
            let (start, mut end) = self.find_at(text, pos)?;
            let mut capped = false;
            if end - start > self.max_len {
                end = start + self.max_len;
                while end > start && !text.is_char_boundary(end) {
                    end -= 1;
                }
                capped = true;
            }
            let ok = end > start
                && match self.kind {
                    PatternKind::Builtin(b) => b.validate(text, start, end),
                    PatternKind::Custom => true,
                };
            if ok {
                return Some(PatternHit { start, end, capped });
            }
            let step = text
                .get(start..)
                .and_then(|s| s.chars().next())
                .map_or(1, char::len_utf8);
            pos = start + step;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(b: Builtin, text: &str) -> Vec<String> {
        let p = Pattern::builtin(b, 0, 4096).unwrap();
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(h) = p.find_from(text, pos) {
            out.push(text[h.start..h.end].to_string());
            pos = h.end;
        }
        out
    }

    /// Builds a valid resident ID from its first 17 digits.
    fn make_id(first17: &str) -> String {
        const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = first17
            .bytes()
            .zip(W)
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        let c = b"10X98765432"[(sum % 11) as usize] as char;
        format!("{first17}{c}")
    }

    #[test]
    fn live_starts_skip_only_bytes_no_match_can_start_with() {
        let bytes = |p: &Pattern| -> Vec<u8> {
            (0..=255u8)
                .filter(|&b| p.first.as_ref().is_some_and(|s| has_byte(s, b)))
                .collect()
        };
        let p = Pattern::custom("ab|c[0-9]", 0, 64).unwrap();
        assert_eq!(bytes(&p), b"ac");
        assert_eq!(p.live_start("xx a", 0), Some(3));
        assert_eq!(p.live_start("xx c", 0), Some(3));
        assert_eq!(p.live_start("xx b", 0), None);
        // Look-around: the start state depends on the byte before, no shortcut.
        let p = Pattern::custom(r"\bab", 0, 64).unwrap();
        assert!(p.first.is_none());
        assert_eq!(p.live_start("xx a", 0), Some(3));
        assert_eq!(p.live_start("xxa", 0), None);
        let p = Pattern::builtin(Builtin::PhoneCn, 0, 64).unwrap();
        assert_eq!(bytes(&p), b"1");
        // Many starts in one text: the start state is reused (the answers stay exact).
        assert_eq!(p.live_start("1 1 1 1 13 138 1", 0), Some(11));
    }

    #[test]
    fn phone_cn() {
        assert_eq!(
            hits(Builtin::PhoneCn, "call 13812345678 now"),
            ["13812345678"]
        );
        assert_eq!(
            hits(Builtin::PhoneCn, "手机:138-1234-5678。"),
            ["138-1234-5678"]
        );
        assert_eq!(hits(Builtin::PhoneCn, "电话13912345678"), ["13912345678"]);
        assert!(hits(Builtin::PhoneCn, "12812345678").is_empty()); // 2nd digit 2
        assert!(hits(Builtin::PhoneCn, "913812345678").is_empty()); // longer run
        assert!(hits(Builtin::PhoneCn, "138123456789").is_empty());
    }

    #[test]
    fn phone_intl() {
        assert_eq!(
            hits(Builtin::PhoneIntl, "tel +1 415-555-2671."),
            ["+1 415-555-2671"]
        );
        assert_eq!(hits(Builtin::PhoneIntl, "+447911123456"), ["+447911123456"]);
        assert!(hits(Builtin::PhoneIntl, "+12345").is_empty());
        assert!(hits(Builtin::PhoneIntl, "+1234567890123456789").is_empty());
    }

    #[test]
    fn email() {
        assert_eq!(
            hits(Builtin::Email, "mail Test.User+x@Example.co.uk, ok"),
            ["Test.User+x@Example.co.uk"]
        );
        assert!(hits(Builtin::Email, "user@localhost").is_empty());
        assert!(hits(Builtin::Email, "not an @ email.com").is_empty());
    }

    #[test]
    fn cn_id_checksum() {
        let id = make_id("11010519491231002");
        assert_eq!(id, "11010519491231002X");
        assert_eq!(hits(Builtin::CnId, &format!("身份证{id}。")), [id.as_str()]);
        assert_eq!(hits(Builtin::CnId, &id.to_lowercase()), [id.to_lowercase()]);
        let id2 = make_id("44030619900307123");
        assert_eq!(hits(Builtin::CnId, &id2), [id2.as_str()]);
        // Wrong check digit.
        let bad = format!(
            "{}{}",
            &id2[..17],
            if id2.ends_with('0') { '1' } else { '0' }
        );
        assert!(hits(Builtin::CnId, &bad).is_empty());
        // Valid checksum but month 13.
        let bad_month = make_id("11010519491331002");
        assert!(hits(Builtin::CnId, &bad_month).is_empty());
        // Inside a longer digit run.
        assert!(hits(Builtin::CnId, &format!("9{id2}")).is_empty());
    }

    #[test]
    fn bank_card_luhn() {
        assert_eq!(
            hits(Builtin::BankCard, "card 4111111111111111."),
            ["4111111111111111"]
        );
        assert_eq!(
            hits(Builtin::BankCard, "卡号6222 0200 0000 0000 000"),
            ["6222 0200 0000 0000 000"]
        );
        assert!(luhn_valid("6222020000000000000"));
        assert_eq!(
            hits(Builtin::BankCard, "4111-1111-1111-1111"),
            ["4111-1111-1111-1111"]
        );
        assert!(hits(Builtin::BankCard, "4111111111111112").is_empty());
        assert!(hits(Builtin::BankCard, "order 123456789012").is_empty());
        assert!(hits(Builtin::BankCard, "41111111111111110000000").is_empty());
    }

    #[test]
    fn ipv4() {
        assert_eq!(hits(Builtin::Ipv4, "host 192.168.0.1:80"), ["192.168.0.1"]);
        assert_eq!(hits(Builtin::Ipv4, "at 10.0.0.255."), ["10.0.0.255"]);
        assert!(hits(Builtin::Ipv4, "256.1.1.1").is_empty());
        assert!(hits(Builtin::Ipv4, "version 1.2.3.4.5").is_empty());
        assert!(hits(Builtin::Ipv4, "1.2.3").is_empty());
    }

    #[test]
    fn ipv6() {
        assert_eq!(hits(Builtin::Ipv6, "addr 2001:db8::1 up"), ["2001:db8::1"]);
        assert_eq!(
            hits(Builtin::Ipv6, "[fe80:0:0:0:202:b3ff:fe1e:8329]"),
            ["fe80:0:0:0:202:b3ff:fe1e:8329"]
        );
        assert!(hits(Builtin::Ipv6, "at 12:30:45").is_empty());
        assert!(hits(Builtin::Ipv6, "std::vec::Vec").is_empty());
        assert!(hits(Builtin::Ipv6, "1:2:3:4:5:6:7:8:9").is_empty());
    }

    #[test]
    fn secrets() {
        let oa = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";
        assert_eq!(hits(Builtin::OpenaiKey, &format!("key={oa} ")), [oa]);
        assert!(hits(Builtin::OpenaiKey, "sk-short").is_empty());
        assert!(hits(Builtin::OpenaiKey, "task-abcdefghijklmnopqrstuvwxyz").is_empty());
        let an = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789";
        assert_eq!(hits(Builtin::AnthropicKey, an), [an]);
        assert!(hits(Builtin::OpenaiKey, an).is_empty());
        assert_eq!(
            hits(Builtin::AwsAccessKey, "id AKIAIOSFODNN7EXAMPLE."),
            ["AKIAIOSFODNN7EXAMPLE"]
        );
        assert!(hits(Builtin::AwsAccessKey, "AKIAIOSFODNN7EXAMPLEX").is_empty());
        assert!(hits(Builtin::AwsAccessKey, "AKIAiosfodnn7example").is_empty());
        let gh = format!("ghp_{}", "a1B2".repeat(9));
        assert_eq!(hits(Builtin::GithubToken, &gh), [gh.as_str()]);
        assert!(hits(Builtin::GithubToken, "ghp_tooshort").is_empty());
        let pat = format!("github_pat_{}", "X".repeat(30));
        assert_eq!(hits(Builtin::GithubToken, &pat), [pat.as_str()]);
        let g = format!("AIza{}", "S".repeat(35));
        assert_eq!(hits(Builtin::GoogleApiKey, &g), [g.as_str()]);
        assert!(hits(Builtin::GoogleApiKey, &format!("AIza{}", "S".repeat(34))).is_empty());
        assert_eq!(
            hits(Builtin::SlackToken, "xoxb-1234567890-abc"),
            ["xoxb-1234567890-abc"]
        );
        assert!(hits(Builtin::SlackToken, "xoxz-1234567890-abc").is_empty());
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(hits(Builtin::Jwt, &format!("t: {jwt}")), [jwt]);
        assert!(hits(Builtin::Jwt, "eyJhbGciOi.notjwt.x").is_empty());
        assert_eq!(
            hits(
                Builtin::BearerToken,
                "Authorization: Bearer abcdef0123456789xyz"
            ),
            ["Bearer abcdef0123456789xyz"]
        );
        assert!(hits(Builtin::BearerToken, "Bearer short").is_empty());
    }

    /// Custom regexes exercising the semantics users rely on: leftmost-first
    /// alternation, lazy and greedy repetition, Unicode `\d \w \s`, `(?i)`
    /// with Unicode case folding, anchors, ASCII and Unicode `\b` (the latter
    /// next to non-ASCII text makes the lazy DFA hand over to the PikeVM).
    const SEMANTICS: [&str; 22] = [
        r"a|ab",
        r"ab|a",
        r"a+?b*",
        r"colou?r|col",
        r"(?i)straße|σ+",
        r"\d+",
        r"\w+",
        r"\s+",
        r"\W+",
        r"\bcat\b",
        r"(?-u:\b)cat(?-u:\b)",
        r"\b\w{3}\b",
        r"^foo|bar$",
        r"(?m)^x.$",
        r"(?s)x.",
        r"[^a-z ]+",
        r"[[:alpha:]]+\d",
        r"(?i)кот",
        r"\Bat",
        r"(?x) c a t  # spaced",
        r"x*y",
        r"(\w)(\d)?-(?P<tail>[a-z]+)",
    ];

    const HAYSTACKS: [&str; 8] = [
        "ab abab aab b",
        "Straße STRASSE straSSe ΣΣσς σ",
        "٣٤ 12 ３ x9 é_ü9 cat scat cat. cats",
        "кот котенок КОТ cat-кот cat",
        "foo\nxa\nbar\nx\nfoo bar",
        "  \u{3000}\t_ colour color col colr",
        "a-b 1-xyz é9-bc _-q 7x-y",
        "yy xxy éxy at bat",
    ];

    fn oracle_find(re: &regex::Regex, text: &str, pos: usize) -> Option<(usize, usize)> {
        re.find_at(text, pos).map(|m| (m.start(), m.end()))
    }

    #[test]
    fn matches_are_those_of_the_regex_crate() {
        for src in SEMANTICS {
            let p = Pattern::custom(src, 0, 4096).unwrap();
            let re = regex::Regex::new(src).unwrap();
            for hay in HAYSTACKS {
                for pos in (0..=hay.len()).filter(|&i| hay.is_char_boundary(i)) {
                    let got = p.find_from(hay, pos).map(|h| (h.start, h.end));
                    assert_eq!(
                        got,
                        oracle_find(&re, hay, pos),
                        "{src} in {hay:?} from {pos}"
                    );
                }
            }
        }
    }

    #[test]
    fn capture_replacements_are_those_of_the_regex_crate() {
        let src = r"(\w)(\d)?-(?P<tail>[a-z]+)";
        let p = Pattern::custom(src, 0, 4096).unwrap();
        let re = regex::Regex::new(src).unwrap();
        let hay = HAYSTACKS[6];
        for value in ["<$1|$2|$tail>", "${1}x$tailx${tail}", "$$ $9 $", "plain"] {
            let mut pos = 0;
            let mut n = 0;
            while let Some(h) = p.find_from(hay, pos) {
                let mut got = String::new();
                assert!(p.expand(hay, h.start, h.end, value, &mut got));
                let caps = re.captures_at(hay, h.start).unwrap();
                let mut want = String::new();
                caps.expand(value, &mut want);
                assert_eq!(got, want, "{value} at {}", h.start);
                pos = h.end;
                n += 1;
            }
            assert_eq!(n, 5);
        }
        // A span that is not the match at its start expands nothing.
        let mut out = String::new();
        assert!(!p.expand(hay, 0, 2, "$1", &mut out));
        assert!(out.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn random_text_matches_the_regex_crate(
            picks in proptest::collection::vec(0usize..16, 0..40),
            which in 0usize..SEMANTICS.len(),
        ) {
            const ALPHABET: [&str; 16] = [
                "a", "b", "c", "t", "x", "y", " ", "\n", "9", "-", "é", "кот", "σ", "ß", "\u{3000}", "٣",
            ];
            let hay: String = picks.iter().filter_map(|&i| ALPHABET.get(i).copied()).collect();
            let src = SEMANTICS[which];
            let p = Pattern::custom(src, 0, 4096).unwrap();
            let re = regex::Regex::new(src).unwrap();
            let mut pos = 0;
            loop {
                let got = p.find_from(&hay, pos).map(|h| (h.start, h.end));
                proptest::prop_assert_eq!(got, oracle_find(&re, &hay, pos));
                match got {
                    Some((s, e)) => pos = if e > s { e } else { e + 1 },
                    None => break,
                }
                if pos > hay.len() || !hay.is_char_boundary(pos) {
                    break;
                }
            }
        }
    }

    proptest::proptest! {
        /// Skipping to the first byte a match can start with finds the same built-in hits
        /// as running the lazy DFA from every position.
        #[test]
        fn first_byte_skip_finds_what_a_plain_search_finds(
            picks in proptest::collection::vec(0usize..12, 0..60),
            from in 0usize..8,
        ) {
            const ALPHABET: [&str; 12] =
                ["1", "3", "8", "0", " ", "-", "+", "a", "@", ".", "é", "x"];
            let hay: String = picks.iter().filter_map(|&i| ALPHABET.get(i).copied()).collect();
            for b in ALL_BUILTINS {
                let p = Pattern::builtin(b, 0, 64).unwrap();
                // The same loop as `find_from`, without the skip.
                let plain = |mut pos: usize| {
                    while pos <= hay.len() {
                        let (start, end) = p.find_at(&hay, pos)?;
                        let end = end.min(start + p.max_len);
                        if end > start && b.validate(&hay, start, end) {
                            return Some((start, end));
                        }
                        pos = start + hay[start..].chars().next().map_or(1, char::len_utf8);
                    }
                    None
                };
                let from = floor_char(&hay, from.min(hay.len()));
                let got = p.find_from(&hay, from).map(|h| (h.start, h.end));
                proptest::prop_assert_eq!(got, plain(from), "{:?} in {:?}", b, hay);
            }
        }
    }

    fn floor_char(s: &str, mut i: usize) -> usize {
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    }

    #[test]
    fn max_len_and_cap() {
        let p = Pattern::builtin(Builtin::PhoneCn, 0, 128).unwrap();
        assert_eq!(p.max_len, 13);
        let c = Pattern::custom("sk-[a-z]*", 0, 16).unwrap();
        assert_eq!(c.max_len, 16);
        let text = format!("{}!", "sk-".to_string() + &"a".repeat(40));
        let h = c.find_from(&text, 0).unwrap();
        assert_eq!((h.start, h.end, h.capped), (0, 16, true));
        assert!(Pattern::custom("a*", 0, 16).is_err());
        assert!(Pattern::custom("(", 0, 16)
            .unwrap_err()
            .starts_with("invalid regex"));
    }
}
