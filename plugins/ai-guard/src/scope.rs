//! Which text of a body is scanned, and rewriting it in place.
//!
//! For JSON chat bodies only the message text is scanned, never JSON syntax:
//! OpenAI chat/completions/Responses and Anthropic messages text (string
//! content, text content parts, Anthropic `system`, tool results), filtered by
//! role on requests, plus configured JSON paths. [`extract`] walks the raw
//! body once and returns every selected string value with its byte span in
//! the body; [`splice`] replaces some of those string literals and leaves
//! every other byte of the body untouched. Other content types are scanned as
//! raw text.
//!
//! JSON paths: `$`, then `.key`, `['key']` / `["key"]`, `[n]`, `[*]` or `.*`.
//! A configured path selects every string at or below it
//! (`$.messages` selects all strings of all messages).

use std::borrow::Cow;
use std::collections::HashMap;

use crate::engine::{Engine, Report, Verdict};
use crate::vault::Vault;

/// Deepest JSON nesting accepted (deeper bodies are rejected, not walked).
pub const MAX_DEPTH: usize = 128;

/// One path segment of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sel {
    Key(String),
    Index(usize),
    Any,
}

/// A parsed JSON path (see the module docs for the syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    segs: Vec<Sel>,
}

impl JsonPath {
    /// Parses a path; the error says what is wrong.
    pub fn parse(src: &str) -> Result<JsonPath, String> {
        let rest = src.trim();
        let mut rest = rest.strip_prefix('$').ok_or("must start with `$`")?;
        let mut segs = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix(".*") {
                segs.push(Sel::Any);
                rest = r;
            } else if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let (key, r2) = r.split_at(end);
                if key.is_empty() {
                    return Err("empty key after `.`".into());
                }
                segs.push(Sel::Key(key.to_string()));
                rest = r2;
            } else if let Some(r) = rest.strip_prefix('[') {
                let close = r.find(']').ok_or("unclosed `[`")?;
                let (inner, r2) = r.split_at(close);
                rest = r2.get(1..).unwrap_or("");
                let inner = inner.trim();
                if inner == "*" {
                    segs.push(Sel::Any);
                } else if let Some(q) = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                {
                    segs.push(Sel::Key(q.to_string()));
                } else {
                    let n = inner.parse::<usize>().map_err(|_| {
                        format!("bad index `[{inner}]` (use a number, `*` or a quoted key)")
                    })?;
                    segs.push(Sel::Index(n));
                }
            } else {
                return Err(format!(
                    "unexpected `{}`",
                    rest.chars().next().unwrap_or(' ')
                ));
            }
        }
        Ok(JsonPath { segs })
    }

    fn matches(&self, path: &[Seg<'_>], prefix: bool) -> bool {
        if prefix {
            if path.len() < self.segs.len() {
                return false;
            }
        } else if path.len() != self.segs.len() {
            return false;
        }
        self.segs.iter().zip(path).all(|(s, p)| match (s, p) {
            (Sel::Any, _) => true,
            (Sel::Key(k), Seg::Key(pk)) => k == pk,
            (Sel::Index(i), Seg::Index(pi)) => i == pi,
            _ => false,
        })
    }
}

/// Which side of the exchange a body belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A request (prompt) body.
    Request,
    /// A response (answer) body, or one SSE event's JSON data.
    Response,
}

/// What to scan in bodies of one direction.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Request or response presets.
    pub direction: Direction,
    /// OpenAI-shaped text (chat messages, prompt, input, choices...).
    pub openai: bool,
    /// Anthropic-shaped text (system, content blocks...).
    pub anthropic: bool,
    /// Request only: roles whose messages are scanned (empty: all).
    pub roles: Vec<String>,
    /// Extra JSON paths (every string at or below each path).
    pub paths: Vec<JsonPath>,
    /// Scan non-JSON bodies as raw text.
    pub raw: bool,
}

impl Selection {
    /// Scan OpenAI and Anthropic text of `direction`, all roles, no raw.
    pub fn chat(direction: Direction) -> Selection {
        Selection {
            direction,
            openai: true,
            anthropic: true,
            roles: Vec::new(),
            paths: Vec::new(),
            raw: false,
        }
    }
}

/// Preset paths: (path, applies to openai, applies to anthropic).
fn presets(direction: Direction) -> &'static [(&'static [&'static str], bool, bool)] {
    // "*" stands for any index.
    match direction {
        Direction::Request => &[
            (&["messages", "*", "content"], true, true),
            (&["messages", "*", "content", "*", "text"], true, true),
            (&["messages", "*", "content", "*", "content"], false, true),
            (
                &["messages", "*", "content", "*", "content", "*", "text"],
                false,
                true,
            ),
            (&["system"], false, true),
            (&["system", "*", "text"], false, true),
            (&["prompt"], true, false),
            (&["prompt", "*"], true, false),
            (&["input"], true, false),
            (&["input", "*"], true, false),
            (&["input", "*", "content"], true, false),
            (&["input", "*", "content", "*", "text"], true, false),
            (&["instructions"], true, false),
        ],
        Direction::Response => &[
            (&["choices", "*", "message", "content"], true, false),
            (
                &["choices", "*", "message", "reasoning_content"],
                true,
                false,
            ),
            (&["choices", "*", "delta", "content"], true, false),
            (&["choices", "*", "delta", "reasoning_content"], true, false),
            (&["choices", "*", "text"], true, false),
            (&["output", "*", "content", "*", "text"], true, false),
            (&["delta"], true, false),
            (&["content", "*", "text"], false, true),
            (&["delta", "text"], false, true),
        ],
    }
}

fn preset_matches(p: &[&str], path: &[Seg<'_>]) -> bool {
    p.len() == path.len()
        && p.iter().zip(path).all(|(s, seg)| match seg {
            Seg::Index(_) => *s == "*",
            Seg::Key(k) => *s != "*" && k == s,
        })
}

/// Why a body could not be scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    /// The body is not UTF-8.
    NotUtf8,
    /// The body is not valid JSON (byte offset of the problem).
    InvalidJson(usize),
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl std::fmt::Display for ScopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScopeError::NotUtf8 => write!(f, "body is not UTF-8"),
            ScopeError::InvalidJson(at) => write!(f, "invalid JSON at byte {at}"),
            ScopeError::TooDeep => write!(f, "JSON nested deeper than {MAX_DEPTH}"),
        }
    }
}

impl std::error::Error for ScopeError {}

/// A selected JSON string value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSpan {
    /// Start of the string literal (its opening quote) in the body.
    pub start: usize,
    /// End of the literal (after its closing quote).
    pub end: usize,
    /// The decoded string.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg<'a> {
    Key(Cow<'a, str>),
    Index(usize),
}

struct Walker<'a, 's> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    path: Vec<Seg<'a>>,
    sel: &'s Selection,
    spans: Vec<(TextSpan, Tag)>,
    roles: Vec<(u8, usize, String)>,
}

impl<'a> Walker<'a, '_> {
    fn err<T>(&self) -> Result<T, ScopeError> {
        Err(ScopeError::InvalidJson(self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), ScopeError> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.err()
        }
    }

    /// Parses a string literal at `pos`; returns (start, end, has_escapes).
    fn string_raw(&mut self) -> Result<(usize, usize, bool), ScopeError> {
        let start = self.pos;
        if self.peek() != Some(b'"') {
            return self.err();
        }
        self.pos += 1;
        let mut escapes = false;
        loop {
            match self.peek() {
                None => return self.err(),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok((start, self.pos, escapes));
                }
                Some(b'\\') => {
                    escapes = true;
                    self.pos += 2;
                }
                Some(c) if c < 0x20 => return self.err(),
                Some(_) => self.pos += 1,
            }
        }
    }

    fn decode(&self, start: usize, end: usize, escapes: bool) -> Result<Cow<'a, str>, ScopeError> {
        let inner = self
            .s
            .get(start + 1..end - 1)
            .ok_or(ScopeError::InvalidJson(start))?;
        if !escapes {
            return Ok(Cow::Borrowed(inner));
        }
        decode_escapes(inner)
            .map(Cow::Owned)
            .ok_or(ScopeError::InvalidJson(start))
    }

    fn value(&mut self) -> Result<(), ScopeError> {
        if self.path.len() > MAX_DEPTH {
            return Err(ScopeError::TooDeep);
        }
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                self.ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    let (ks, ke, kesc) = self.string_raw()?;
                    let key = self.decode(ks, ke, kesc)?;
                    self.expect(b':')?;
                    self.path.push(Seg::Key(key));
                    self.value()?;
                    self.path.pop();
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return self.err(),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(());
                }
                let mut i = 0usize;
                loop {
                    self.path.push(Seg::Index(i));
                    self.value()?;
                    self.path.pop();
                    i += 1;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return self.err(),
                    }
                }
            }
            Some(b'"') => {
                let (s, e, esc) = self.string_raw()?;
                self.on_string(s, e, esc)
            }
            Some(c) if c == b'-' || c.is_ascii_digit() || c.is_ascii_alphabetic() => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_alphanumeric())
                {
                    self.pos += 1;
                }
                let tok = self.s.get(start..self.pos).unwrap_or("");
                let ok = matches!(tok, "true" | "false" | "null")
                    || (tok.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
                        && is_float_literal(tok));
                if ok {
                    Ok(())
                } else {
                    Err(ScopeError::InvalidJson(start))
                }
            }
            _ => self.err(),
        }
    }

    fn on_string(&mut self, s: usize, e: usize, esc: bool) -> Result<(), ScopeError> {
        // Role of a message / input item.
        let role_of = match self.path.as_slice() {
            [Seg::Key(arr), Seg::Index(i), Seg::Key(k)] if k == "role" => {
                item_array(arr).map(|w| (w, *i))
            }
            _ => None,
        };
        if let Some((which, i)) = role_of {
            let role = self.decode(s, e, esc)?.into_owned();
            self.roles.push((which, i, role));
            return Ok(());
        }
        let sel = self.sel;
        let path = self.path.as_slice();
        let preset = presets(sel.direction).iter().any(|(p, o, a)| {
            ((sel.openai && *o) || (sel.anthropic && *a)) && preset_matches(p, path)
        });
        let custom = sel.paths.iter().any(|jp| jp.matches(path, true));
        if !preset && !custom {
            return Ok(());
        }
        let tag = if !preset {
            // Configured paths are scanned whatever the role.
            Tag::Always
        } else {
            match path {
                [Seg::Key(arr), Seg::Index(i), ..] if item_array(arr).is_some() => {
                    Tag::Item(item_array(arr).unwrap_or(0), *i)
                }
                [Seg::Key(k), ..] if k == "system" || k == "instructions" => Tag::Fixed("system"),
                _ => Tag::Fixed("user"),
            }
        };
        let text = self.decode(s, e, esc)?.into_owned();
        self.spans.push((
            TextSpan {
                start: s,
                end: e,
                text,
            },
            tag,
        ));
        Ok(())
    }
}

/// Whose text a span is, for role filtering.
#[derive(Debug, Clone, Copy)]
enum Tag {
    /// Item `.1` of array `.0` (messages / input); role looked up at the end.
    Item(u8, usize),
    /// A fixed role (Anthropic `system`, `instructions`, `prompt`).
    Fixed(&'static str),
    /// Not filtered by role.
    Always,
}

/// Arrays whose items carry a `role`: 0 = messages, 1 = input.
/// Whether `tok` is what `str::parse::<f64>` accepts (an optional sign, then
/// `inf`, `infinity` or `nan` in any case, or digits with an optional
/// fraction and exponent), checked without the float parser: this check was
/// the module's only use of it (about 16 KB of code and tables).
fn is_float_literal(tok: &str) -> bool {
    let t = tok.strip_prefix(['+', '-']).unwrap_or(tok);
    if ["inf", "infinity", "nan"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
    {
        return true;
    }
    let b = t.as_bytes();
    let digits = |mut i: usize| {
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i, i - start)
    };
    let (mut i, int) = digits(0);
    let mut frac = 0;
    if b.get(i) == Some(&b'.') {
        (i, frac) = digits(i + 1);
    }
    if int + frac == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let (end, exp) = digits(i);
        if exp == 0 {
            return false;
        }
        i = end;
    }
    i == b.len()
}

fn item_array(key: &str) -> Option<u8> {
    match key {
        "messages" => Some(0),
        "input" => Some(1),
        _ => None,
    }
}

/// Decodes the inside of a JSON string literal; `None` on a bad escape.
/// Lone surrogates become U+FFFD.
pub fn decode_escapes(inner: &str) -> Option<String> {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    let hex4 = |it: &mut std::str::Chars<'_>| -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            v = v * 16 + it.next()?.to_digit(16)?;
        }
        Some(v)
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let u = hex4(&mut chars)?;
                if (0xD800..0xDC00).contains(&u) {
                    let mut look = chars.clone();
                    let low = if look.next() == Some('\\') && look.next() == Some('u') {
                        hex4(&mut look).filter(|l| (0xDC00..0xE000).contains(l))
                    } else {
                        None
                    };
                    match low {
                        Some(l) => {
                            chars = look;
                            let cp = 0x10000 + ((u - 0xD800) << 10) + (l - 0xDC00);
                            out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                        }
                        None => out.push('\u{FFFD}'),
                    }
                } else {
                    out.push(char::from_u32(u).unwrap_or('\u{FFFD}'));
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The selected string values of a JSON `body`, in body order.
pub fn extract(body: &str, sel: &Selection) -> Result<Vec<TextSpan>, ScopeError> {
    let mut w = Walker {
        s: body,
        b: body.as_bytes(),
        pos: 0,
        path: Vec::new(),
        sel,
        spans: Vec::new(),
        roles: Vec::new(),
    };
    w.value()?;
    w.ws();
    if w.pos != body.len() {
        return w.err();
    }
    let Walker { spans, roles, .. } = w;
    let filter_roles = sel.direction == Direction::Request && !sel.roles.is_empty();
    // The last `role` given for an item wins. One pass over the roles into a
    // map keeps the filter linear in messages (a search per span was
    // quadratic on bodies of many messages).
    let mut item_roles: HashMap<(u8, usize), &str> = HashMap::new();
    if filter_roles {
        for (w, i, r) in &roles {
            count_role_step();
            item_roles.insert((*w, *i), r.as_str());
        }
    }
    Ok(spans
        .into_iter()
        .filter(|(_, tag)| {
            let role = match *tag {
                _ if !filter_roles => return true,
                Tag::Always => return true,
                Tag::Fixed(r) => r,
                // None counts as user.
                Tag::Item(w, i) => {
                    count_role_step();
                    item_roles.get(&(w, i)).copied().unwrap_or("user")
                }
            };
            role_selected(&sel.roles, role)
        })
        .map(|(s, _)| s)
        .collect())
}

#[cfg(test)]
thread_local! {
    /// Role look-ups done by [`extract`] on this thread (tests count work).
    static ROLE_STEPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts one role look-up step (tests only; nothing in the module).
#[inline]
fn count_role_step() {
    #[cfg(test)]
    ROLE_STEPS.with(|c| c.set(c.get() + 1));
}

/// Whether a message of `role` is scanned when `roles` are configured: names
/// compare case-insensitively, and `developer` (OpenAI's newer name for the
/// system prompt) is scanned wherever `system` is.
pub fn role_selected(roles: &[String], role: &str) -> bool {
    roles.iter().any(|r| {
        r.eq_ignore_ascii_case(role)
            || (r.eq_ignore_ascii_case("system") && role.eq_ignore_ascii_case("developer"))
    })
}

/// One replacement of a JSON string literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// Start of the literal (opening quote).
    pub start: usize,
    /// End of the literal (after the closing quote).
    pub end: usize,
    /// The new decoded string (encoded by [`splice`]).
    pub text: String,
}

/// Replaces the given string literals (sorted, non-overlapping) and keeps
/// every other byte of `body`.
pub fn splice(body: &str, edits: &[Edit]) -> String {
    let mut out = String::with_capacity(body.len() + 64);
    let mut last = 0;
    for e in edits {
        if e.start < last || e.end > body.len() {
            continue;
        }
        out.push_str(body.get(last..e.start).unwrap_or(""));
        out.push('"');
        crate::vault::push_escaped(&mut out, &e.text, crate::vault::Escape::Json);
        out.push('"');
        last = e.end;
    }
    out.push_str(body.get(last..).unwrap_or(""));
    out
}

/// Result of moderating a whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyOutcome {
    /// Nothing to change: forward the body as is.
    Unchanged,
    /// Forward this body instead.
    Rewritten(String),
    /// A block rule matched.
    Blocked {
        /// The rule's name.
        rule: String,
    },
}

/// Moderates a whole body: JSON bodies (`is_json`) by their selected text,
/// other bodies as raw text when `sel.raw` (otherwise unchanged).
pub fn redact_body(
    engine: &Engine,
    body: &[u8],
    is_json: bool,
    sel: &Selection,
    mut vault: Option<&mut Vault>,
    report: &mut Report,
) -> Result<BodyOutcome, ScopeError> {
    let text = std::str::from_utf8(body).map_err(|_| ScopeError::NotUtf8)?;
    if !is_json {
        if !sel.raw {
            return Ok(BodyOutcome::Unchanged);
        }
        let mut out = String::with_capacity(text.len());
        return Ok(match engine.redact(text, vault, &mut out, report) {
            Verdict::Block { rule } => BodyOutcome::Blocked { rule },
            Verdict::Pass if out == text => BodyOutcome::Unchanged,
            Verdict::Pass => BodyOutcome::Rewritten(out),
        });
    }
    let spans = extract(text, sel)?;
    let mut edits = Vec::new();
    let mut out = String::new();
    for span in spans {
        out.clear();
        if let Verdict::Block { rule } =
            engine.redact(&span.text, vault.as_deref_mut(), &mut out, report)
        {
            return Ok(BodyOutcome::Blocked { rule });
        }
        if out != span.text {
            edits.push(Edit {
                start: span.start,
                end: span.end,
                text: std::mem::take(&mut out),
            });
        }
    }
    Ok(if edits.is_empty() {
        BodyOutcome::Unchanged
    } else {
        BodyOutcome::Rewritten(splice(text, &edits))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_literal_check_agrees_with_the_float_parser() {
        let toks = [
            "0",
            "1",
            "-1",
            "01",
            "1.",
            ".5",
            "1.5",
            "-0.25",
            "1e5",
            "1E+5",
            "1e-05",
            "1.e3",
            "-.5e2",
            "inf",
            "-inf",
            "+Infinity",
            "NaN",
            "-nan",
            "1e",
            "1e+",
            "-",
            "+",
            ".",
            "-.",
            "e5",
            "1.2.3",
            "1-2",
            "12a",
            "0x10",
            "1_000",
            "--1",
            "+-1",
            "infinit",
            "nana",
            "",
            "9999999999999999999999999999",
            "1e400",
            "2.5E-3",
            "7.e",
            "3..4",
        ];
        for tok in toks {
            assert_eq!(is_float_literal(tok), tok.parse::<f64>().is_ok(), "{tok:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn random_tokens_agree_with_the_float_parser(
            picks in proptest::collection::vec(0usize..12, 0..10),
        ) {
            const ALPHABET: [&str; 12] = ["0", "7", ".", "-", "+", "e", "E", "inf", "inity", "nan", "N", "x"];
            let tok: String = picks.iter().filter_map(|&i| ALPHABET.get(i).copied()).collect();
            proptest::prop_assert_eq!(is_float_literal(&tok), tok.parse::<f64>().is_ok(), "{:?}", tok);
        }
    }
    use crate::engine::{rule, Action, EngineBuilder, Rule, RuleKind};
    use crate::normalize::Folder;
    use crate::patterns::Builtin;

    fn texts(body: &str, sel: &Selection) -> Vec<String> {
        extract(body, sel)
            .unwrap()
            .into_iter()
            .map(|s| s.text)
            .collect()
    }

    #[test]
    fn roles_match_case_insensitively_and_developer_counts_as_system() {
        let body = r#"{"messages":[
            {"role":"SYSTEM","content":"upper system"},
            {"role":"developer","content":"dev prompt"},
            {"role":"Developer","content":"dev two"},
            {"role":"User","content":"user text"},
            {"role":"assistant","content":"answer"}]}"#;
        let mut sys = Selection::chat(Direction::Request);
        sys.roles = vec!["system".into()];
        assert_eq!(texts(body, &sys), ["upper system", "dev prompt", "dev two"]);
        let mut user = Selection::chat(Direction::Request);
        user.roles = vec!["USER".into()];
        assert_eq!(texts(body, &user), ["user text"]);
        // `developer` alone does not select `system`.
        let mut dev = Selection::chat(Direction::Request);
        dev.roles = vec!["developer".into()];
        assert_eq!(texts(body, &dev), ["dev prompt", "dev two"]);
        assert!(role_selected(&["System".into()], "DEVELOPER"));
        assert!(!role_selected(&["user".into()], "developer"));
    }

    #[test]
    fn role_filter_work_is_linear_in_messages() {
        // About 1 MiB of messages, each with a text part: with a search per
        // span this took n * n / 2 steps (over a second natively).
        let n = 20_000usize;
        let mut body = String::from(r#"{"messages":["#);
        for i in 0..n {
            if i > 0 {
                body.push(',');
            }
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            body.push_str(&format!(
                r#"{{"role":"{role}","content":[{{"type":"text","text":"message number {i} with some text"}}]}}"#
            ));
        }
        body.push_str("]}");
        assert!(body.len() > 900_000);
        let mut sel = Selection::chat(Direction::Request);
        sel.roles = vec!["user".into()];
        ROLE_STEPS.with(|c| c.set(0));
        let got = extract(&body, &sel).unwrap();
        let steps = ROLE_STEPS.with(|c| c.get());
        assert_eq!(got.len(), n / 2);
        // One insert per role and one look-up per text span.
        assert!(steps <= 2 * n + 8, "{steps} steps for {n} messages");
    }

    #[test]
    fn openai_chat_text_only() {
        let body = r#"{"model":"gpt-4o","messages":[
            {"role":"system","content":"be nice"},
            {"role":"user","content":[{"type":"text","text":"hi \"there\" \u4f60\u597d \ud83d\ude00"},{"type":"image_url","image_url":{"url":"http://x/y.png"}}]},
            {"content":"late role","role":"assistant"}],
            "temperature":0.5,"stream":true,"user":"u@x.com"}"#;
        let sel = Selection::chat(Direction::Request);
        assert_eq!(
            texts(body, &sel),
            ["be nice", "hi \"there\" 你好 😀", "late role"]
        );
        let mut only_user = sel.clone();
        only_user.roles = vec!["user".into()];
        assert_eq!(texts(body, &only_user), ["hi \"there\" 你好 😀"]);
        let mut only_asst = sel.clone();
        only_asst.roles = vec!["assistant".into(), "system".into()];
        assert_eq!(texts(body, &only_asst), ["be nice", "late role"]);
    }

    #[test]
    fn anthropic_messages() {
        let body = r#"{"model":"claude","system":[{"type":"text","text":"sys"}],"max_tokens":10,
            "messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"tool out"},{"type":"text","text":"q"}]}]}"#;
        let sel = Selection::chat(Direction::Request);
        assert_eq!(texts(body, &sel), ["sys", "tool out", "q"]);
        let mut openai_only = sel.clone();
        openai_only.anthropic = false;
        assert_eq!(texts(body, &openai_only), ["q"]);
    }

    #[test]
    fn responses_and_custom_paths() {
        let sel = Selection::chat(Direction::Response);
        assert_eq!(
            texts(
                r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"answer"}}]}"#,
                &sel
            ),
            ["answer"]
        );
        assert_eq!(
            texts(r#"{"choices":[{"delta":{"content":"tok"}}]}"#, &sel),
            ["tok"]
        );
        assert_eq!(
            texts(
                r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"t"}}"#,
                &sel
            ),
            ["t"]
        );
        let mut custom = Selection::chat(Direction::Request);
        custom.openai = false;
        custom.anthropic = false;
        custom.paths = vec![
            JsonPath::parse("$.data['q']").unwrap(),
            JsonPath::parse("$.list[1]").unwrap(),
        ];
        assert_eq!(
            texts(
                r#"{"data":{"q":"a","r":"b"},"list":["x",{"deep":["y","z"]}],"q":"no"}"#,
                &custom
            ),
            ["a", "y", "z"]
        );
    }

    #[test]
    fn escaped_keys_are_decoded() {
        let body = r#"{"\u006dessages":[{"role":"user","content":"hidden"}]}"#;
        assert_eq!(
            texts(body, &Selection::chat(Direction::Request)),
            ["hidden"]
        );
    }

    #[test]
    fn json_path_errors() {
        assert!(JsonPath::parse("messages").is_err());
        assert!(JsonPath::parse("$.a[").is_err());
        assert!(JsonPath::parse("$.a[x]").is_err());
        assert!(JsonPath::parse("$..a").is_err());
        assert_eq!(
            JsonPath::parse("$.messages[*].content").unwrap().segs.len(),
            3
        );
    }

    #[test]
    fn invalid_json_is_reported() {
        let sel = Selection::chat(Direction::Request);
        assert!(matches!(
            extract("{\"a\":}", &sel),
            Err(ScopeError::InvalidJson(_))
        ));
        assert!(matches!(
            extract("{\"a\":tru}", &sel),
            Err(ScopeError::InvalidJson(_))
        ));
        assert!(matches!(
            extract("{\"a\":1} x", &sel),
            Err(ScopeError::InvalidJson(_))
        ));
        assert!(extract("{\"a\":\"\\x\"}", &sel).is_ok());
        let deep = "[".repeat(500) + &"]".repeat(500);
        assert_eq!(extract(&deep, &sel), Err(ScopeError::TooDeep));
    }

    fn engine() -> Engine {
        let mut b = EngineBuilder::new(Folder::default(), b"", 128);
        let bad = b.add_rule(rule("bad", RuleKind::Keywords, Action::Block));
        b.add_word(bad, "forbidden", false, false).unwrap();
        let ph = b.add_rule(Rule {
            restore: true,
            ..rule("phone", RuleKind::Builtin(Builtin::PhoneCn), Action::Mask)
        });
        b.add_builtin(ph, Builtin::PhoneCn).unwrap();
        b.build().unwrap()
    }

    #[test]
    fn rewrites_only_changed_strings() {
        let e = engine();
        let body = "{ \"model\" : \"m\",\n \"messages\":[{\"role\":\"user\",\"content\":\"call 13812345678 \\\"now\\\"\"},{\"role\":\"user\",\"content\":\"13812345678\"}], \"n\":1 }";
        let mut vault = Vault::default();
        let mut report = Report::default();
        let sel = Selection::chat(Direction::Request);
        let out = redact_body(
            &e,
            body.as_bytes(),
            true,
            &sel,
            Some(&mut vault),
            &mut report,
        )
        .unwrap();
        let BodyOutcome::Rewritten(new) = out else {
            panic!("expected rewrite")
        };
        assert_eq!(
            new,
            "{ \"model\" : \"m\",\n \"messages\":[{\"role\":\"user\",\"content\":\"call [PHONE_1] \\\"now\\\"\"},{\"role\":\"user\",\"content\":\"[PHONE_1]\"}], \"n\":1 }"
        );
        assert_eq!(report.total(), 2);
        let unchanged = r#"{"messages":[{"role":"user","content":"hello"}]}"#;
        assert_eq!(
            redact_body(&e, unchanged.as_bytes(), true, &sel, None, &mut report).unwrap(),
            BodyOutcome::Unchanged
        );
        let blocked = r#"{"messages":[{"role":"user","content":"so forbidden"}]}"#;
        assert_eq!(
            redact_body(&e, blocked.as_bytes(), true, &sel, None, &mut report).unwrap(),
            BodyOutcome::Blocked { rule: "bad".into() }
        );
        // The word in a non-text field is not scanned.
        let other = r#"{"model":"forbidden","messages":[]}"#;
        assert_eq!(
            redact_body(&e, other.as_bytes(), true, &sel, None, &mut report).unwrap(),
            BodyOutcome::Unchanged
        );
    }

    #[test]
    fn raw_bodies() {
        let e = engine();
        let mut sel = Selection::chat(Direction::Request);
        let mut report = Report::default();
        assert_eq!(
            redact_body(&e, b"tel 13812345678", false, &sel, None, &mut report).unwrap(),
            BodyOutcome::Unchanged
        );
        sel.raw = true;
        assert_eq!(
            redact_body(&e, b"tel 13812345678", false, &sel, None, &mut report).unwrap(),
            BodyOutcome::Rewritten("tel [PHONE]".into())
        );
        assert_eq!(
            redact_body(&e, b"\xff\xfe", false, &sel, None, &mut report),
            Err(ScopeError::NotUtf8)
        );
    }
}
