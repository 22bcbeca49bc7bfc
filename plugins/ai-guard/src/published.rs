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
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

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

/// Appends the text of a `content` value (a string, or parts that are
/// strings or carry `text`) — the rules ai-statistics reads questions with.
fn push_content(v: &Value, out: &mut LogText) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(parts) => {
            for p in parts {
                match p {
                    Value::String(s) => out.push(s),
                    other => {
                        if let Some(t) = other.get("text").and_then(Value::as_str) {
                            out.push(t);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

#[derive(Deserialize)]
struct Msg {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: Option<Value>,
}

/// Reads a `messages` array keeping only the last user message's content
/// (`Some(None)`: a user message without content; `None`: no user message),
/// so memory is one message at a time, not the whole conversation.
struct LastUser;

impl<'de> Visitor<'de> for LastUser {
    type Value = Option<Option<Value>>;

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
struct LastUserContent(Option<Option<Value>>);

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
    prompt: Option<Value>,
}

/// The last user message of a JSON request body (the `prompt` when there is
/// no user message), cut at `limit` bytes; `None` when the body is not a
/// JSON object.
pub fn question(body: &[u8], limit: usize) -> Option<LogText> {
    let b: QuestionBody = serde_json::from_slice(body).ok()?;
    let mut out = LogText::new(limit);
    match b.messages.and_then(|m| m.0) {
        Some(content) => {
            if let Some(c) = content {
                push_content(&c, &mut out);
            }
        }
        None => {
            if let Some(p) = &b.prompt {
                push_content(p, &mut out);
            }
        }
    }
    Some(out)
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
    Other(IgnoredAny),
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<Content>,
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
    parts: Vec<Part>,
}

#[derive(Deserialize)]
struct AnswerBody {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    candidates: Vec<Candidate>,
}

fn push_parts(c: &Option<Content>, out: &mut LogText) {
    match c {
        Some(Content::Text(t)) => out.push(t),
        Some(Content::Parts(parts)) => {
            for p in parts {
                if let Some(t) = &p.text {
                    out.push(t);
                }
            }
        }
        Some(Content::Other(_)) | None => {}
    }
}

/// Appends the answer text of a whole JSON response body: the first choice's
/// message content and `text` (OpenAI), the `content` blocks (Anthropic), the
/// first candidate's parts (Gemini). Not JSON: nothing.
pub fn answer(body: &str, out: &mut LogText) {
    let Ok(b) = serde_json::from_str::<AnswerBody>(body) else {
        return;
    };
    if let Some(c) = b.choices.first() {
        if let Some(m) = &c.message {
            push_parts(&m.content, out);
        }
        if let Some(t) = &c.text {
            out.push(t);
        }
    }
    push_parts(&b.content, out);
    if let Some(c) = b.candidates.first().and_then(|c| c.content.as_ref()) {
        for p in &c.parts {
            if let Some(t) = &p.text {
                out.push(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
