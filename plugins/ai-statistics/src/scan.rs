//! Reading a response as it passes: usage (through the SDK's [`UsageAccumulator`]), the model,
//! the finish reason and, when asked, a bounded prefix of the answer text.
//!
//! Streams go through the SDK's incremental SSE parser, so events split anywhere across
//! chunks are reassembled; memory is bounded by the largest event (`max_event_bytes`).
//! Non-streamed bodies are kept up to `max_response_bytes`; past that only a 16 KiB tail is
//! kept, where the usage object of every supported provider sits.

use crate::text::{contains, find, has_reason_string, rfind, Bounded};
use aigw::llm::usage::{Usage, UsageAccumulator, UsageProtocol};
use aigw::sse::Parser;
use serde::Deserialize;

const TAIL: usize = 16 << 10;

/// Text of a `content` field: a string, or a list of parts/blocks with `text`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize, Default)]
struct Message {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Message>,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Candidate {
    #[serde(default)]
    content: Option<GeminiContent>,
    #[serde(default, rename = "finishReason")]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct GeminiContent {
    #[serde(default)]
    parts: Vec<Part>,
}

/// Every field ai-statistics wants from one event or body, across OpenAI chat/completions,
/// Anthropic Messages and Gemini shapes. Unknown fields are skipped by the parser.
#[derive(Deserialize, Default)]
struct Probe {
    #[serde(default)]
    model: Option<String>,
    #[serde(default, rename = "modelVersion")]
    model_version: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    delta: Option<Message>,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    candidates: Vec<Candidate>,
}

/// The state of one response being read.
pub struct Scan {
    stream: bool,
    parser: Parser,
    usage: UsageAccumulator,
    /// The model the response names.
    pub model: Option<String>,
    /// The last finish/stop reason seen.
    pub finish_reason: Option<String>,
    answer: Option<Bounded>,
    answer_limit: usize,
    head: Vec<u8>,
    tail: Vec<u8>,
    overflow: bool,
    limit: usize,
    /// SSE events seen.
    pub events: u64,
}

impl Scan {
    /// A scanner for a streamed (`text/event-stream`) or whole response.
    pub fn new(
        protocol: UsageProtocol,
        stream: bool,
        max_event_bytes: usize,
        max_response_bytes: usize,
        answer_limit: Option<usize>,
    ) -> Scan {
        Scan {
            stream,
            parser: Parser::new(max_event_bytes),
            usage: UsageAccumulator::new(protocol),
            model: None,
            finish_reason: None,
            answer: answer_limit.map(|_| Bounded::default()),
            answer_limit: answer_limit.unwrap_or(0),
            head: Vec::new(),
            tail: Vec::new(),
            overflow: false,
            limit: max_response_bytes,
            events: 0,
        }
    }

    /// Whether the response is an SSE stream.
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// Feeds the next body chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.stream {
            let Scan {
                parser,
                usage,
                model,
                finish_reason,
                answer,
                answer_limit,
                events,
                ..
            } = self;
            let result = parser.feed(chunk, |event| {
                *events += 1;
                if let Some(data) = event.data() {
                    on_data(data, usage, model, finish_reason, answer, *answer_limit);
                }
            });
            if result.is_err() {
                // An event larger than the limit: drop it and go on with the next one.
                aigw::debug!("oversized SSE event skipped");
                self.parser.reset();
            }
            return;
        }
        if !self.overflow && self.head.len() + chunk.len() <= self.limit {
            self.head.extend_from_slice(chunk);
            return;
        }
        if !self.overflow {
            self.overflow = true;
            let head = std::mem::take(&mut self.head);
            // Keep the beginning's model before dropping it.
            self.model = self.model.take().or_else(|| quick_model(&head));
            self.tail = head;
        }
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > 2 * TAIL {
            let cut = self.tail.len() - TAIL;
            self.tail.drain(..cut);
        }
    }

    /// Ends the response (also called when it was cut short); returns the usage found.
    pub fn finish(&mut self) -> Option<Usage> {
        if self.stream {
            let Scan {
                parser,
                usage,
                model,
                finish_reason,
                answer,
                answer_limit,
                ..
            } = self;
            let _ = parser.finish(|event| {
                if let Some(data) = event.data() {
                    on_data(data, usage, model, finish_reason, answer, *answer_limit);
                }
            });
        } else if !self.overflow {
            let body = std::mem::take(&mut self.head);
            on_data(
                &body,
                &mut self.usage,
                &mut self.model,
                &mut self.finish_reason,
                &mut self.answer,
                self.answer_limit,
            );
        } else {
            let tail = std::mem::take(&mut self.tail);
            let key: &[u8] = if self.usage.protocol() == UsageProtocol::Gemini {
                b"\"usageMetadata\""
            } else {
                b"\"usage\""
            };
            if let Some(obj) = value_after(&tail, key) {
                let mut wrapped = Vec::with_capacity(obj.len() + key.len() + 3);
                wrapped.push(b'{');
                wrapped.extend_from_slice(key);
                wrapped.push(b':');
                wrapped.extend_from_slice(obj);
                wrapped.push(b'}');
                self.usage.feed(&wrapped);
            }
        }
        self.usage.usage()
    }

    /// The kept answer text and whether it was cut.
    pub fn answer(&self) -> Option<(&str, bool)> {
        self.answer.as_ref().map(|a| (a.as_str(), a.truncated()))
    }
}

fn on_data(
    data: &[u8],
    usage: &mut UsageAccumulator,
    model: &mut Option<String>,
    finish_reason: &mut Option<String>,
    answer: &mut Option<Bounded>,
    answer_limit: usize,
) {
    usage.feed(data);
    let want_model =
        model.is_none() && (contains(data, b"\"model") || contains(data, b"modelVersion"));
    let want_answer = answer.as_ref().is_some_and(|a| !a.full());
    let want_reason = has_reason_string(data) || contains(data, b"finishReason");
    if !(want_model || want_answer || want_reason) {
        return;
    }
    let Ok(probe) = serde_json::from_slice::<Probe>(data) else {
        return;
    };
    if model.is_none() {
        *model = probe
            .model
            .clone()
            .or_else(|| probe.message.as_ref().and_then(|m| m.model.clone()))
            .or(probe.model_version.clone())
            .filter(|m| !m.is_empty());
    }
    let mut reason = probe
        .stop_reason
        .clone()
        .or_else(|| probe.delta.as_ref().and_then(|d| d.stop_reason.clone()))
        .or_else(|| probe.message.as_ref().and_then(|m| m.stop_reason.clone()));
    for c in &probe.choices {
        if c.finish_reason.is_some() {
            reason = c.finish_reason.clone();
        }
    }
    for c in &probe.candidates {
        if c.finish_reason.is_some() {
            reason = c.finish_reason.clone();
        }
    }
    if reason.is_some() {
        *finish_reason = reason;
    }
    let Some(answer) = answer.as_mut().filter(|a| !a.full()) else {
        return;
    };
    let mut push = |s: &str| answer.push(s, answer_limit);
    // OpenAI: first choice only (n > 1 answers are not concatenated).
    if let Some(c) = probe.choices.first() {
        for m in [&c.delta, &c.message].into_iter().flatten() {
            push_content(&m.content, &mut push);
        }
        if let Some(t) = &c.text {
            push(t);
        }
    }
    // Anthropic: content_block_delta text, or the whole message's content blocks.
    if let Some(d) = &probe.delta {
        if let Some(t) = &d.text {
            push(t);
        }
    }
    push_content(&probe.content, &mut push);
    if let Some(c) = probe.candidates.first().and_then(|c| c.content.as_ref()) {
        for p in &c.parts {
            if let Some(t) = &p.text {
                push(t);
            }
        }
    }
}

fn push_content(content: &Option<Content>, push: &mut impl FnMut(&str)) {
    match content {
        Some(Content::Text(t)) => push(t),
        Some(Content::Parts(parts)) => {
            for p in parts {
                if let Some(t) = &p.text {
                    push(t);
                }
            }
        }
        None => {}
    }
}

/// The JSON value following the last `key` (`"usage"`) in `buf`, as raw bytes.
fn value_after<'a>(buf: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = rfind(buf, key)?;
    let rest = buf.get(at + key.len()..)?;
    let colon = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    if rest.get(colon) != Some(&b':') {
        return None;
    }
    let value = rest.get(colon + 1..)?;
    let mut it = serde_json::Deserializer::from_slice(value).into_iter::<serde::de::IgnoredAny>();
    match it.next() {
        Some(Ok(_)) => value.get(..it.byte_offset()),
        _ => None,
    }
}

/// The first `"model":"..."` string in a (possibly cut) JSON text.
pub fn quick_model(buf: &[u8]) -> Option<String> {
    let mut from = 0;
    while let Some(at) = find(buf, b"\"model\"", from) {
        from = at + 1;
        let mut i = at + b"\"model\"".len();
        while buf.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        if buf.get(i) != Some(&b':') {
            continue;
        }
        i += 1;
        while buf.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        if buf.get(i) != Some(&b'"') {
            continue;
        }
        let start = i + 1;
        let len = buf
            .get(start..)?
            .iter()
            .position(|&b| b == b'"' || b == b'\\')?;
        let s = std::str::from_utf8(buf.get(start..start + len)?).ok()?;
        return (!s.is_empty()).then(|| s.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAI_STREAM: &str = concat!(
        "data: {\"id\":\"c\",\"model\":\"gpt-4o-2024\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"gpt-4o-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"gpt-4o-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"gpt-4o-2024\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n",
        "data: [DONE]\n\n"
    );

    #[test]
    fn openai_stream_every_split() {
        let bytes = OPENAI_STREAM.as_bytes();
        for at in 0..=bytes.len() {
            let mut s = Scan::new(UsageProtocol::OpenAi, true, 4096, 4096, Some(64));
            s.feed(&bytes[..at]);
            s.feed(&bytes[at..]);
            let u = s.finish().unwrap();
            assert_eq!((u.input, u.output), (9, 2), "split at {at}");
            assert_eq!(s.model.as_deref(), Some("gpt-4o-2024"));
            assert_eq!(s.finish_reason.as_deref(), Some("stop"));
            assert_eq!(s.answer(), Some(("Hello", false)));
        }
    }

    #[test]
    fn big_non_stream_body_keeps_a_tail() {
        let filler = "x".repeat(100_000);
        let body = format!(
            r#"{{"id":"c","model":"gpt-4o","choices":[{{"index":0,"message":{{"role":"assistant","content":"{filler}"}},"finish_reason":"length"}}],"usage":{{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}}}"#
        );
        let mut s = Scan::new(UsageProtocol::OpenAi, false, 4096, 2048, None);
        for c in body.as_bytes().chunks(1000) {
            s.feed(c);
        }
        let u = s.finish().unwrap();
        assert_eq!((u.input, u.output, u.total), (5, 7, 12));
        assert_eq!(s.model.as_deref(), Some("gpt-4o"));
        assert!(s.tail.capacity() < 64 << 10);
    }

    #[test]
    fn anthropic_body() {
        let body = br#"{"id":"m","type":"message","model":"claude-x","content":[{"type":"text","text":"Hi there"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":6}}"#;
        let mut s = Scan::new(UsageProtocol::Anthropic, false, 4096, 4096, Some(4));
        s.feed(body);
        let u = s.finish().unwrap();
        assert_eq!((u.input, u.output), (12, 6));
        assert_eq!(s.finish_reason.as_deref(), Some("end_turn"));
        assert_eq!(s.model.as_deref(), Some("claude-x"));
        assert_eq!(s.answer(), Some(("Hi t", true)));
    }

    #[test]
    fn quick_model_scan() {
        assert_eq!(
            quick_model(br#"{"a":1, "model" : "m1","#),
            Some("m1".into())
        );
        assert_eq!(
            quick_model(br#"{"model":1,"x":{"model":"m2"}}"#),
            Some("m2".into())
        );
        assert_eq!(quick_model(br#"{"model":"unterminated"#), None);
    }
}
