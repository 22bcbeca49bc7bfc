//! A hand-written reader for the common OpenAI chat chunk, tried before serde.
//!
//! Nearly every event of an OpenAI stream after the first is the same small shape:
//! `{"id":…,"object":…,"created":…,"model":…,"choices":[{"index":0,"delta":{"content":"…"},
//! "finish_reason":null}]}`. Reading it through serde costs about 4k instructions (struct
//! visitors, key matching, moves); this one-pass reader takes a few hundred.
//!
//! It reads exactly the fields [`Chunk`](super::openai) keeps (the first choice's delta texts,
//! `finish_reason` and legacy `text`) and gives up (`None`, and the caller parses with serde)
//! on anything it does not read the way serde would: an `error` or `usage` that is not
//! `null`, tool calls, a key or value it would have to unescape beyond the simple escapes, a
//! repeated known key, the array form of a struct, non-ASCII outside the strings it returns,
//! deep nesting, or anything that is not strict JSON. Whenever it answers, serde answers the
//! same (property test below).

use super::super::BStr;
use std::borrow::Cow;

/// What the reader takes from a chunk: the fields of `ChoiceIn` / `DeltaIn` it supports.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct FastChoice<'a> {
    /// `delta` was present and not `null`.
    pub delta: Option<FastDelta<'a>>,
    pub finish_reason: Option<BStr<'a>>,
    pub text: Option<BStr<'a>>,
}

/// The text fields of a delta (tool calls are never taken here).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct FastDelta<'a> {
    pub content: Option<BStr<'a>>,
    pub reasoning_content: Option<BStr<'a>>,
    pub reasoning: Option<BStr<'a>>,
    pub refusal: Option<BStr<'a>>,
}

/// Deepest nesting skipped (serde_json's own limit is 128).
const MAX_DEPTH: u32 = 32;

/// Reads a chunk after the first: `Some(first choice or None)` when the chunk has the common
/// shape, `None` when serde must read it.
pub(super) fn read_chunk(data: &[u8]) -> Option<Option<FastChoice<'_>>> {
    let mut r = Reader { s: data, i: 0 };
    r.ws();
    let mut choice = None;
    let (mut choices, mut error, mut usage) = (false, false, false);
    r.object(|r, key| match key {
        b"choices" => {
            once(&mut choices)?;
            choice = r.choices()?;
            Some(())
        }
        // Rare: serde reads them.
        b"error" => {
            once(&mut error)?;
            r.null()
        }
        b"usage" => {
            once(&mut usage)?;
            r.null()
        }
        _ => r.skip(0),
    })?;
    r.ws();
    (r.i == r.s.len()).then_some(choice)
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        if self.peek() == Some(b) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    fn lit(&mut self, word: &[u8]) -> Option<()> {
        if self.s.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// `null` (whitespace before it already skipped).
    fn null(&mut self) -> Option<()> {
        self.lit(b"null")
    }

    /// An object at the cursor; `each` reads the value of every key (the cursor on it) and
    /// leaves the cursor after it.
    fn object(&mut self, mut each: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.ws();
            let key = self.key()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            each(self, key)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A key without escapes (anything else goes to serde, which unescapes keys).
    fn key(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        if self.plain()? != b'"' {
            return None;
        }
        let key = self.s.get(start..self.i)?;
        self.i += 1;
        Some(key)
    }

    /// Moves past the plain bytes of a string (not `"`, `\\` or a control character), eight
    /// at a time; returns the byte it stopped at (`None` at the end of the data).
    fn plain(&mut self) -> Option<u8> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        // High bit set in the lowest zero byte of `x` (bits above it may be wrong; only the
        // lowest is used).
        let zero = |x: u64| x.wrapping_sub(ONES) & !x;
        while let Some(w) = self.s.get(self.i..self.i + 8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            let x = u64::from_le_bytes(b);
            let flags = ((x.wrapping_sub(ONES * 0x20) & !x)
                | zero(x ^ (ONES * u64::from(b'"')))
                | zero(x ^ (ONES * u64::from(b'\\'))))
                & HIGH;
            if flags != 0 {
                self.i += (flags.trailing_zeros() / 8) as usize;
                return self.peek();
            }
            self.i += 8;
        }
        let rest = self.s.get(self.i..)?;
        let n = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        self.i += n;
        rest.get(n).copied()
    }

    /// `null` or a string.
    fn opt_str(&mut self) -> Option<Option<BStr<'a>>> {
        if self.peek()? == b'n' {
            self.null()?;
            return Some(None);
        }
        self.string().map(Some)
    }

    /// A string value: borrowed when it has no escapes, unescaped when it has only simple ones
    /// (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u` outside the surrogates).
    fn string(&mut self) -> Option<BStr<'a>> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            match self.plain()? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.i += 2;
                }
                _ => return None,
            }
        }
        let raw = self.s.get(start..self.i)?;
        self.i += 1;
        if !escaped {
            return utf8(raw).map(|t| BStr(Cow::Borrowed(t)));
        }
        let text = utf8(raw)?;
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('\\') {
            out.push_str(rest.get(..at)?);
            let esc = rest.get(at + 1..)?;
            let mut chars = esc.chars();
            let c = match chars.next()? {
                '"' => '"',
                '\\' => '\\',
                '/' => '/',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'u' => {
                    let hex = esc.get(1..5)?;
                    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return None;
                    }
                    let code = u32::from_str_radix(hex, 16).ok()?;
                    // Surrogates (pairs or lone) are serde's.
                    let c = char::from_u32(code)?;
                    out.push(c);
                    rest = esc.get(5..)?;
                    continue;
                }
                _ => return None,
            };
            out.push(c);
            rest = esc.get(1..)?;
        }
        out.push_str(rest);
        Some(BStr(Cow::Owned(out)))
    }

    /// `choices`: `null`, or an array whose first element (an object) is read and the rest
    /// skipped.
    fn choices(&mut self) -> Option<Option<FastChoice<'a>>> {
        if self.peek()? == b'n' {
            self.null()?;
            return Some(None);
        }
        self.eat(b'[')?;
        self.ws();
        if self.eat(b']').is_some() {
            return Some(None);
        }
        let first = self.choice()?;
        loop {
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                    self.skip(1)?;
                }
                b']' => {
                    self.i += 1;
                    return Some(Some(first));
                }
                _ => return None,
            }
        }
    }

    fn choice(&mut self) -> Option<FastChoice<'a>> {
        let mut c = FastChoice::default();
        let (mut delta, mut finish, mut text) = (false, false, false);
        self.object(|r, key| {
            match key {
                b"delta" => {
                    once(&mut delta)?;
                    if r.peek()? == b'n' {
                        r.null()?;
                    } else {
                        c.delta = Some(r.delta()?);
                    }
                }
                b"finish_reason" => {
                    once(&mut finish)?;
                    c.finish_reason = r.opt_str()?;
                }
                b"text" => {
                    once(&mut text)?;
                    c.text = r.opt_str()?;
                }
                _ => r.skip(1)?,
            }
            Some(())
        })?;
        Some(c)
    }

    fn delta(&mut self) -> Option<FastDelta<'a>> {
        let mut d = FastDelta::default();
        let mut seen = [false; 4];
        let mut tools = false;
        self.object(|r, key| {
            let (slot, seen) = match key {
                b"content" => (&mut d.content, &mut seen[0]),
                b"reasoning_content" => (&mut d.reasoning_content, &mut seen[1]),
                b"reasoning" => (&mut d.reasoning, &mut seen[2]),
                b"refusal" => (&mut d.refusal, &mut seen[3]),
                b"tool_calls" => {
                    once(&mut tools)?;
                    return r.null();
                }
                _ => return r.skip(2),
            };
            once(seen)?;
            *slot = r.opt_str()?;
            Some(())
        })?;
        Some(d)
    }

    /// Skips any JSON value, checking it is strict JSON (strings printable, valid UTF-8 and
    /// with valid escapes; numbers in JSON's grammar).
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string_span().map(drop),
            b'{' => self.object(|r, _| r.skip(depth + 1)),
            b'[' => {
                self.i += 1;
                self.ws();
                if self.eat(b']').is_some() {
                    return Some(());
                }
                loop {
                    self.ws();
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.lit(b"true"),
            b'f' => self.lit(b"false"),
            b'n' => self.null(),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// A string's raw bytes between its quotes, escapes checked but not decoded, UTF-8
    /// checked.
    fn string_span(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match self.plain()? {
                b'"' => break,
                b'\\' => {
                    self.i += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = self.s.get(self.i + 1..self.i + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            // Surrogates need pairing rules: serde's.
                            if matches!(hex.first(), Some(b'd' | b'D'))
                                && matches!(
                                    hex.get(1),
                                    Some(b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
                                )
                            {
                                return None;
                            }
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
        let raw = self.s.get(start..self.i)?;
        self.i += 1;
        valid_utf8(raw).then_some(raw)
    }

    /// A number in JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
    }
}

/// Whether a skipped string's bytes are UTF-8 (ASCII checked first: most are).
fn valid_utf8(raw: &[u8]) -> bool {
    raw.is_ascii() || std::str::from_utf8(raw).is_ok()
}

/// The text of a string's bytes, when valid UTF-8.
fn utf8(raw: &[u8]) -> Option<&str> {
    std::str::from_utf8(raw).ok()
}

/// Marks a known key as seen; a second time gives up (serde refuses repeated fields).
fn once(seen: &mut bool) -> Option<()> {
    if std::mem::replace(seen, true) {
        None
    } else {
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::OpenAiDecoder;
    use super::*;
    use crate::llm::stream::{Decoder, Event};
    use proptest::prelude::*;

    const BENCH: &str = r#"{"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"tok7 "},"finish_reason":null}]}"#;

    #[test]
    fn the_common_chunk_is_read_without_copying() {
        let c = read_chunk(BENCH.as_bytes()).unwrap().unwrap();
        let content = c.delta.unwrap().content.unwrap();
        assert!(matches!(content.0, Cow::Borrowed("tok7 ")));
        assert_eq!(c.finish_reason, None);
        let c = read_chunk(
            br#" {"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":"a\nb\u00e9\"","refusal":null},"logprobs":null,"finish_reason":"stop"},{"index":1}],"usage":null,"system_fingerprint":"fp"} "#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.delta.unwrap().content.unwrap().as_str(), "a\nb\u{e9}\"");
        assert_eq!(c.finish_reason.unwrap().as_str(), "stop");
        assert_eq!(read_chunk(br#"{"choices":[]}"#), Some(None));
        assert_eq!(
            read_chunk(br#"{"choices":null,"x":[1,{"y":-0.5e+3}]}"#),
            Some(None)
        );
    }

    #[test]
    fn unusual_chunks_go_to_serde() {
        for data in [
            // Usage, errors and tool calls: serde reads them.
            r#"{"choices":[],"usage":{"prompt_tokens":1}}"#,
            r#"{"error":{"message":"x"}}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}"#,
            // Repeated known keys (serde refuses them).
            r#"{"choices":[],"choices":[]}"#,
            r#"{"usage":null,"usage":null}"#,
            r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
            r#"{"choices":[{"finish_reason":null,"finish_reason":"stop"}]}"#,
            // Escaped keys, surrogate escapes, the array form, bad JSON.
            r#"{"choices":[{"delta":{"\u0063ontent":"x"}}]}"#,
            r#"{"choices":[{"delta":{"content":"\ud83d\ude00"}}]}"#,
            r#"{"x":"\ud800","choices":[]}"#,
            r#"{"choices":[[{"content":"arr"},"length"]]}"#,
            r#"{"choices":[{"delta":{"content":"x"}}]} x"#,
            r#"{"choices":[{"delta":{"content":"x"}}],}"#,
            r#"{"n":01,"choices":[]}"#,
            "{\"choices\":[{\"delta\":{\"content\":\"a\u{1}\"}}]}",
            r#"{"choices":[{"delta":{"content":"\x"}}]}"#,
        ] {
            assert_eq!(read_chunk(data.as_bytes()), None, "{data}");
        }
        let deep = format!(
            "{{\"x\":{}{},\"choices\":[]}}",
            "[".repeat(40),
            "]".repeat(40)
        );
        assert_eq!(read_chunk(deep.as_bytes()), None);
    }

    /// Pieces a generated chunk is made of: ordinary and awkward values alike.
    const STRINGS: &[&str] = &[
        r#""""#,
        r#""tok1 ""#,
        r#""a\nb\t\"q\" \\ \/""#,
        r#""\u00e9\u4e2d""#,
        r#""é中""#,
        r#""\ud83d\ude00""#,
        r#""\ud800""#,
        r#""\x""#,
        "\"ctl\u{1}\"",
        r#""unterminated"#,
        "\"\u{7f}del\"",
    ];
    const VALUES: &[&str] = &[
        "null",
        "0",
        "-1.5e3",
        "01",
        "1.",
        "true",
        "fals",
        "[]",
        "{}",
        r#"[1,"a",{"b":null}]"#,
        r#"{"content":"no"}"#,
        "[1,]",
    ];
    const CHOICE_KEYS: &[&str] = &["index", "delta", "finish_reason", "text", "logprobs"];
    const DELTA_KEYS: &[&str] = &[
        "role",
        "content",
        "reasoning_content",
        "reasoning",
        "refusal",
        "tool_calls",
        "\\u0063ontent",
    ];
    const TOP_KEYS: &[&str] = &[
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "error",
        "system_fingerprint",
    ];

    /// Deterministic choices from a seed (xorshift).
    struct Pick(u64);

    impl Pick {
        fn next(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
        fn from<'s>(&mut self, xs: &[&'s str]) -> &'s str {
            xs[self.next(xs.len())]
        }
        fn ws(&mut self) -> &'static str {
            ["", "", "", " ", "\n "][self.next(5)]
        }
        /// A string most of the time, any value sometimes.
        fn text(&mut self) -> String {
            match self.next(10) {
                0 => self.from(VALUES).to_string(),
                1..=3 => "null".to_string(),
                _ => self.from(STRINGS).to_string(),
            }
        }
        fn object(
            &mut self,
            keys: &[&str],
            value: &mut dyn FnMut(&mut Pick, &str) -> String,
        ) -> String {
            if self.next(20) == 0 {
                return self.from(VALUES).to_string();
            }
            let n = self.next(keys.len() + 2);
            let mut parts = Vec::new();
            for _ in 0..n {
                let k = self.from(keys);
                let v = value(self, k);
                parts.push(format!(
                    "{}\"{k}\"{}:{}{v}",
                    self.ws(),
                    self.ws(),
                    self.ws()
                ));
            }
            format!("{{{}{}}}", parts.join(","), self.ws())
        }
        fn delta(&mut self) -> String {
            self.object(DELTA_KEYS, &mut |p, k| match k {
                "tool_calls" => [
                    "null",
                    "[]",
                    r#"[{"index":0,"function":{"arguments":"{}"}}]"#,
                ][p.next(3)]
                .to_string(),
                _ => p.text(),
            })
        }
        fn choice(&mut self) -> String {
            self.object(CHOICE_KEYS, &mut |p, k| match k {
                "delta" => {
                    if p.next(8) == 0 {
                        "null".to_string()
                    } else {
                        p.delta()
                    }
                }
                "index" => p.next(3).to_string(),
                "logprobs" => p.from(VALUES).to_string(),
                _ => p.text(),
            })
        }
        /// A chunk of the common shape with `"tok1 "` as some text, and optional extras.
        fn plain_chunk(&mut self) -> Vec<u8> {
            let opt = |p: &mut Pick, s: &str| {
                if p.next(3) == 0 {
                    s.to_string()
                } else {
                    String::new()
                }
            };
            let slot = self.next(4);
            let other = ["null", r#""r""#][self.next(2)];
            let text = |i: usize| if i == slot { r#""tok1 ""# } else { other };
            let delta = format!(
                r#"{{{}"content":{}{}{}}}"#,
                opt(self, r#""role":"assistant","#),
                text(0),
                opt(self, &format!(r#","refusal":{}"#, text(1))),
                opt(self, &format!(r#","reasoning_content":{}"#, text(2))),
            );
            let finish = ["null", "null", r#""stop""#][self.next(3)];
            let choice = format!(
                r#"{{"index":0,"delta":{delta}{},"finish_reason":{finish}{}}}"#,
                opt(self, r#","logprobs":null"#),
                opt(self, &format!(r#","text":{}"#, text(3))),
            );
            let second = opt(self, r#",{"index":1,"delta":{"content":"tok1 "}}"#);
            format!(
                r#"{{"id":"c","object":"chat.completion.chunk","created":1,"model":"m"{},"choices":[{choice}{second}]{}}}"#,
                opt(self, r#","system_fingerprint":"fp""#),
                opt(self, r#","usage":null"#),
            )
            .into_bytes()
        }

        /// A chunk's bytes (a cut may fall inside a character).
        fn chunk(&mut self) -> Vec<u8> {
            let s = self.object(TOP_KEYS, &mut |p, k| match k {
                "choices" => match p.next(8) {
                    0 => "null".to_string(),
                    1 => "[]".to_string(),
                    2 => p.from(VALUES).to_string(),
                    _ => {
                        let rest: Vec<String> = (0..p.next(3)).map(|_| p.choice()).collect();
                        let mut all = vec![p.choice()];
                        all.extend(rest);
                        format!("[{}]", all.join(","))
                    }
                },
                "usage" | "error" => match p.next(4) {
                    0 => r#"{"prompt_tokens":1,"completion_tokens":2}"#.to_string(),
                    1 => r#"{"message":"m","type":"rate_limit_error"}"#.to_string(),
                    _ => "null".to_string(),
                },
                "created" => p.from(VALUES).to_string(),
                _ => p.text(),
            });
            let mut s = s.into_bytes();
            if self.next(15) == 0 {
                let cut = self.next(s.len() + 1);
                s.truncate(cut);
            }
            if self.next(15) == 0 {
                s.extend_from_slice([" x", ",", "}", " \n"][self.next(4)].as_bytes());
            }
            s
        }
    }

    /// What a decoder makes of one chunk after a first one: (ok, events, stop word, usage).
    fn decode(mut d: OpenAiDecoder, data: &[u8]) -> (bool, Vec<String>, Option<String>, String) {
        let mut out = Vec::new();
        d.decode(None, br#"{"id":"x","model":"m","choices":[]}"#, &mut out)
            .unwrap();
        out.clear();
        let ok = d.decode(None, data, &mut out).is_ok();
        let events: Vec<String> = out.iter().map(|e: &Event<'_>| format!("{e:?}")).collect();
        let usage = format!("{:?}", d.usage());
        (ok, events, d.raw_stop_reason().map(str::to_string), usage)
    }

    #[test]
    fn the_generator_makes_mostly_fast_chunks() {
        let mut fast = 0;
        for seed in 1..2000u64 {
            let data = Pick(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1).chunk();
            fast += usize::from(read_chunk(&data).is_some());
        }
        // Both paths are exercised.
        assert!((200..1800).contains(&fast), "{fast} of 2000 read fast");
    }

    /// What a decoder makes of each chunk of a sequence after a first one.
    fn decode_all(mut d: OpenAiDecoder, chunks: &[Vec<u8>]) -> Vec<(bool, Vec<String>)> {
        let mut out = Vec::new();
        d.decode(None, br#"{"id":"x","model":"m","choices":[]}"#, &mut out)
            .unwrap();
        chunks
            .iter()
            .map(|data| {
                out.clear();
                let ok = d.decode(None, data, &mut out).is_ok();
                (ok, out.iter().map(|e| format!("{e:?}")).collect())
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// A generated chunk and copies of it with its first `"tok1 "` replaced by other
        /// strings (same bytes around another literal, or not quite): a decoder remembering
        /// the shape of plain chunks gives serde's events for each.
        #[test]
        fn repeated_shapes_agree_with_serde(seed in any::<u64>()) {
            let mut p = Pick(seed | 1);
            let base = if p.next(4) == 0 { p.chunk() } else { p.plain_chunk() };
            let text = String::from_utf8_lossy(&base).into_owned();
            let mut chunks = vec![base.clone()];
            for _ in 0..6 {
                let with = p.from(STRINGS);
                chunks.push(text.replacen(r#""tok1 ""#, with, 1).into_bytes());
                chunks.push(base.clone());
            }
            let fast = decode_all(OpenAiDecoder::new(), &chunks);
            let slow = decode_all(OpenAiDecoder::new().serde_only(), &chunks);
            prop_assert_eq!(fast, slow, "{}", text);
        }

        /// Whenever the fast reader answers, the decoder's events, stop reason and usage are
        /// those serde gives; and a decoder using it gives serde's result on every chunk.
        #[test]
        fn fast_reader_agrees_with_serde(seed in any::<u64>()) {
            let data = Pick(seed | 1).chunk();
            let fast = decode(OpenAiDecoder::new(), &data);
            let slow = decode(OpenAiDecoder::new().serde_only(), &data);
            let text = String::from_utf8_lossy(&data);
            prop_assert_eq!(&fast, &slow, "{}", text);
            if read_chunk(&data).is_some() {
                prop_assert!(slow.0, "fast read, serde refused: {}", text);
            }
        }
    }
}
