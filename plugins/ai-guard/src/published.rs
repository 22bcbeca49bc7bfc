//! The masked question and answer ai-guard publishes for access logs.
//!
//! An access-log plugin earlier in the chain (ai-statistics) sees the
//! client's own request and, on the way back, the answer after ai-guard put
//! the client's masked values back. So that it never logs those values,
//! ai-guard publishes in filter state the texts as they were sent to and
//! produced by the upstream:
//!
//! - [`aigw::contract::GUARD_QUESTION_PROPERTY`]: the last user message (else the `prompt`) of a
//!   request body ai-guard masked, taken from the rewritten body;
//! - [`aigw::contract::GUARD_ANSWER_PROPERTY`]: the answer text (OpenAI first choice's content,
//!   Anthropic text blocks, Gemini first candidate's parts, Responses output
//!   text) before masked values were restored, response masks applied.
//!
//! Each value is one JSON object: `{"text": "...", "truncated": bool,
//! "complete": bool}` (text cut at `log.max_bytes` at a character boundary;
//! `complete` is false while a streamed answer is still running), or
//! `{"withheld": "blocked" | "unchecked"}` when there is no masked text to
//! show (the request was blocked, or could not be checked): the SDK's
//! [`aigw::contract::GuardRecord`].
//!
//! Publishing is limited to when it changes what a logger would see: the
//! question only when ai-guard rewrote (masked) the request or could not
//! check it, the answer only when masked values are restored into it.
//! Otherwise the text a logger reads itself already is the guarded text.

use aigw::contract::GuardRecord;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Default `log.max_bytes`.
pub const DEFAULT_MAX_BYTES: usize = 4096;
/// Largest accepted `log.max_bytes`.
pub const MAX_MAX_BYTES: usize = 1 << 20;
/// A streamed answer's property is rewritten each time its text grew by this
/// many bytes, so a stream cut short still left its masked beginning.
pub const CHECKPOINT_BYTES: usize = 1024;

/// Why no text is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withheld {
    /// The request was blocked before its text was fully masked.
    Blocked,
    /// The body was not checked (over `body.max_bytes`, unreadable or not
    /// parsable).
    Unchecked,
}

impl Withheld {
    fn label(self) -> &'static str {
        match self {
            Withheld::Blocked => "blocked",
            Withheld::Unchecked => "unchecked",
        }
    }

    /// The property value.
    pub fn record(self) -> String {
        GuardRecord::Withheld(self.label().to_string()).to_json()
    }
}

/// Text kept up to a byte limit, cut at a character boundary.
#[derive(Debug, Clone, Default)]
pub struct LogText {
    text: String,
    limit: usize,
    truncated: bool,
}

impl LogText {
    /// An empty text holding at most `limit` bytes.
    pub fn new(limit: usize) -> LogText {
        LogText {
            text: String::new(),
            limit,
            truncated: false,
        }
    }

    /// Appends as much of `s` as fits.
    pub fn push(&mut self, s: &str) {
        if self.truncated || s.is_empty() {
            return;
        }
        let room = self.limit.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
            return;
        }
        let mut cut = room;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(s.get(..cut).unwrap_or_default());
        self.truncated = true;
    }

    /// Marks the text as cut (text was dropped for another reason).
    pub fn mark_truncated(&mut self) {
        self.truncated = true;
    }

    /// The kept text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Bytes kept.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Whether text was dropped.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The property value; `complete`: the text will not grow any more.
    pub fn record(&self, complete: bool) -> String {
        GuardRecord::Text {
            text: self.text.clone(),
            truncated: self.truncated,
            complete,
        }
        .to_json()
    }
}

/// Where a value read for its text sits, which decides what text it has.
#[derive(Clone, Copy)]
enum Level {
    /// A `content` (or Gemini `parts`) value: a string, or a list of parts.
    Content,
    /// One part of a list: a string, or an object's string `text` field.
    Part,
    /// A part's `text` field: only a string counts.
    Leaf,
}

/// The text of a `content` value, read without building the value: the
/// string itself, or the strings and string `text` fields of its parts, in
/// order (the rules ai-statistics reads questions with). Any other shape
/// holds no text.
#[derive(Default)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Level::Content.deserialize(d)
    }
}

impl<'de> DeserializeSeed<'de> for Level {
    type Value = Text;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Text, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level {
    type Value = Text;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a content value")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Text, E> {
        Ok(Text(s.to_string()))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Text, E> {
        Ok(Text::default())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Text, E> {
        Ok(Text::default())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Text, E> {
        Ok(Text::default())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Text, E> {
        Ok(Text::default())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Text, E> {
        Ok(Text::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text, A::Error> {
        let mut text = String::new();
        if let Level::Content = self {
            while let Some(part) = seq.next_element_seed(Level::Part)? {
                text.push_str(&part.0);
            }
        } else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
        }
        Ok(Text(text))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
        let mut text = Text::default();
        while let Some(key) = map.next_key::<String>()? {
            if matches!(self, Level::Part) && key == "text" {
                text = map.next_value_seed(Level::Leaf)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(text)
    }
}

#[derive(Deserialize)]
struct Msg {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: Text,
}

/// Reads a `messages` array keeping only the last user message's text
/// (`None`: no user message), so memory is one message at a time, not the
/// whole conversation.
struct LastUser;

impl<'de> Visitor<'de> for LastUser {
    type Value = Option<Text>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut last = None;
        while let Some(m) = seq.next_element::<Msg>()? {
            if m.role == "user" {
                last = Some(m.content);
            }
        }
        Ok(last)
    }
}

/// `messages`, reduced to the last user message (see [`LastUser`]).
struct LastUserContent(Option<Text>);

impl<'de> Deserialize<'de> for LastUserContent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(LastUser).map(LastUserContent)
    }
}

#[derive(Deserialize)]
struct QuestionBody {
    #[serde(default)]
    messages: Option<LastUserContent>,
    #[serde(default)]
    prompt: Text,
}

/// The last user message of a JSON request body (the `prompt` when there is
/// no user message), cut at `limit` bytes; `None` when the body is not a
/// JSON object.
pub fn question(body: &[u8], limit: usize) -> Option<LogText> {
    let b: QuestionBody = serde_json::from_slice(body).ok()?;
    let mut out = LogText::new(limit);
    match b.messages.and_then(|m| m.0) {
        Some(content) => out.push(&content.0),
        None => out.push(&b.prompt.0),
    }
    Some(out)
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Text,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Candidate {
    #[serde(default)]
    content: Option<GeminiContent>,
}

#[derive(Deserialize)]
struct GeminiContent {
    #[serde(default)]
    parts: Text,
}

#[derive(Deserialize)]
struct AnswerBody {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    content: Text,
    #[serde(default)]
    candidates: Vec<Candidate>,
}

/// Appends the answer text of a whole JSON response body: the first choice's
/// message content and `text` (OpenAI), the `content` blocks (Anthropic), the
/// first candidate's parts (Gemini). Not JSON: nothing.
pub fn answer(body: &str, out: &mut LogText) {
    // From the bytes: one JSON reader (the slice one) serves both directions.
    let Ok(b) = serde_json::from_slice::<AnswerBody>(body.as_bytes()) else {
        return;
    };
    if let Some(c) = b.choices.first() {
        if let Some(m) = &c.message {
            out.push(&m.content.0);
        }
        if let Some(t) = &c.text {
            out.push(t);
        }
    }
    out.push(&b.content.0);
    if let Some(c) = b.candidates.first().and_then(|c| c.content.as_ref()) {
        out.push(&c.parts.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn bounded_at_a_char_boundary() {
        let mut t = LogText::new(4);
        t.push("ab");
        t.push("cé");
        assert_eq!((t.as_str(), t.truncated()), ("abc", true));
        t.push("more");
        assert_eq!(t.as_str(), "abc");
        let mut t = LogText::new(0);
        t.push("x");
        assert!(t.is_empty() && t.truncated());
    }

    #[test]
    fn question_is_the_last_user_message() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"first"},{"content":"a","role":"assistant"},{"role":"user","content":[{"type":"text","text":"second "},"part"]},{"role":"assistant","content":"b"}],"stream":true}"#;
        let q = question(body, 100).unwrap();
        assert_eq!((q.as_str(), q.truncated()), ("second part", false));
        let q = question(body, 6).unwrap();
        assert_eq!((q.as_str(), q.truncated()), ("second", true));
        let q = question(br#"{"prompt":"complete me"}"#, 100).unwrap();
        assert_eq!(q.as_str(), "complete me");
        let q = question(br#"{"messages":[{"role":"system","content":"s"}]}"#, 100).unwrap();
        assert_eq!(q.as_str(), "");
        assert!(question(b"not json", 100).is_none());
        assert!(question(br#"{"messages":"x"}"#, 100).is_none());
    }

    #[test]
    fn answers_of_each_shape() {
        let mut t = LogText::new(100);
        answer(
            r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi [EMAIL_1]"}},{"index":1,"message":{"content":"other"}}]}"#,
            &mut t,
        );
        assert_eq!(t.as_str(), "Hi [EMAIL_1]");
        let mut t = LogText::new(100);
        answer(
            r#"{"type":"message","content":[{"type":"text","text":"a"},{"type":"tool_use","input":{}},{"type":"text","text":"b"}]}"#,
            &mut t,
        );
        assert_eq!(t.as_str(), "ab");
        let mut t = LogText::new(100);
        answer(
            r#"{"candidates":[{"content":{"parts":[{"text":"g1"},{"text":"g2"}]}}]}"#,
            &mut t,
        );
        assert_eq!(t.as_str(), "g1g2");
        let mut t = LogText::new(100);
        answer("plain", &mut t);
        assert!(t.is_empty());
    }

    #[test]
    fn records() {
        let mut t = LogText::new(3);
        t.push("a\"bcd");
        let v: Value = serde_json::from_str(&t.record(false)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"text": "a\"b", "truncated": true, "complete": false})
        );
        assert_eq!(Withheld::Blocked.record(), r#"{"withheld":"blocked"}"#);
    }
}
