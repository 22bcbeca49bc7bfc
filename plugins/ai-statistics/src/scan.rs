//! Reading a response as it passes: usage, the model, the finish reason and, when asked, a
//! bounded prefix of the answer text.
//!
//! Streams go through the SDK's [`StreamReader`] (SSE framing → the client dialect's neutral
//! decoder): usage is the decoder's, the model comes from the start event, the answer from the
//! content text events, the finish reason is the decoder's raw one. Events split anywhere
//! across chunks are reassembled; memory is bounded by the largest event (`max_event_bytes`).
//! Once the answer prefix is full, events that cannot carry usage or a stop reason are not
//! parsed at all.
//!
//! Non-streamed bodies are kept up to `max_response_bytes` and read whole (usage through the
//! SDK's [`UsageAccumulator`]); past that only a 16 KiB tail is kept, where the usage object
//! of every supported provider sits.

use crate::request::protocol_for;
use crate::text::{contains, find, has_reason_string, rfind, Bounded};
use aigw::llm::stream::{Channel, Dialect, Event, StreamReader};
use aigw::llm::usage::{Usage, UsageAccumulator, UsageProtocol};
use aigw::llm::Api;
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
    /// The stream reader, for an SSE response.
    reader: Option<StreamReader>,
    usage: UsageAccumulator,
    /// The model the response names.
    pub model: Option<String>,
    /// The last finish/stop reason seen in a whole body.
    finish_reason: Option<String>,
    answer: Option<Bounded>,
    answer_limit: usize,
    head: Vec<u8>,
    tail: Vec<u8>,
    overflow: bool,
    limit: usize,
}

impl Scan {
    /// A scanner for a streamed (`text/event-stream`) or whole response to a request of `api`
    /// (the answer comes in that API's dialect).
    pub fn new(
        api: Option<Api>,
        stream: bool,
        max_event_bytes: usize,
        max_response_bytes: usize,
        answer_limit: Option<usize>,
    ) -> Scan {
        Scan {
            reader: stream.then(|| StreamReader::new(Dialect::of(api), max_event_bytes)),
            usage: UsageAccumulator::new(protocol_for(api)),
            model: None,
            finish_reason: None,
            answer: answer_limit.map(|_| Bounded::default()),
            answer_limit: answer_limit.unwrap_or(0),
            head: Vec::new(),
            tail: Vec::new(),
            overflow: false,
            limit: max_response_bytes,
        }
    }

    /// Whether the response is an SSE stream.
    pub fn is_stream(&self) -> bool {
        self.reader.is_some()
    }

    /// The finish/stop reason, in the provider's words, once seen.
    pub fn finish_reason(&self) -> Option<&str> {
        match &self.reader {
            Some(r) => r.raw_stop_reason(),
            None => self.finish_reason.as_deref(),
        }
    }

    /// Feeds the next body chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        if let Some(reader) = self.reader.as_mut() {
            let (model, answer, limit) = (&mut self.model, &mut self.answer, self.answer_limit);
            // Text is decoded only while the answer prefix has room.
            reader.set_text(answer.as_ref().is_some_and(|a| !a.full()));
            reader.feed(chunk, |e| on_event(e, model, answer, limit));
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
        if let Some(reader) = self.reader.as_mut() {
            let (model, answer, limit) = (&mut self.model, &mut self.answer, self.answer_limit);
            reader.finish(|e| on_event(e, model, answer, limit));
            return reader.usage();
        }
        if !self.overflow {
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

/// One neutral event of a stream: the model from its start, the answer from content text.
fn on_event(e: &Event<'_>, model: &mut Option<String>, answer: &mut Option<Bounded>, limit: usize) {
    match e {
        Event::Start { model: Some(m), .. } if model.is_none() && !m.is_empty() => {
            *model = Some(m.to_string());
        }
        Event::Text {
            channel: Channel::Content,
            text,
        } => {
            if let Some(a) = answer.as_mut() {
                a.push(text, limit);
            }
        }
        _ => {}
    }
}

/// A whole (non-streamed) body: usage, model, finish reason and answer text.
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
            let mut s = Scan::new(Some(Api::ChatCompletions), true, 4096, 4096, Some(64));
            s.feed(&bytes[..at]);
            s.feed(&bytes[at..]);
            let u = s.finish().unwrap();
            assert_eq!((u.input, u.output), (9, 2), "split at {at}");
            assert_eq!(s.model.as_deref(), Some("gpt-4o-2024"));
            assert_eq!(s.finish_reason(), Some("stop"));
            assert_eq!(s.answer(), Some(("Hello", false)));
        }
    }

    #[test]
    fn big_non_stream_body_keeps_a_tail() {
        let filler = "x".repeat(100_000);
        let body = format!(
            r#"{{"id":"c","model":"gpt-4o","choices":[{{"index":0,"message":{{"role":"assistant","content":"{filler}"}},"finish_reason":"length"}}],"usage":{{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}}}"#
        );
        let mut s = Scan::new(Some(Api::ChatCompletions), false, 4096, 2048, None);
        for c in body.as_bytes().chunks(1000) {
            s.feed(c);
        }
        let u = s.finish().unwrap();
        assert_eq!((u.input, u.output, u.total), (5, 7, 12));
        assert_eq!(s.model.as_deref(), Some("gpt-4o"));
        assert!(s.tail.capacity() < 64 << 10);
    }

    /// Reads `body` as an SSE answer to `api`, split at `at`.
    fn stream_at(api: Api, body: &str, at: usize, answer: usize) -> (Scan, Option<Usage>) {
        let mut s = Scan::new(Some(api), true, 4096, 4096, Some(answer));
        let bytes = body.as_bytes();
        s.feed(&bytes[..at]);
        s.feed(&bytes[at..]);
        let u = s.finish();
        (s, u)
    }

    #[test]
    fn every_client_dialect_through_the_neutral_decoders_at_every_split() {
        let anthropic = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude-x\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n",
            // A server-tool block no neutral event carries: skipped, the rest still read.
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"server_tool_use\",\"id\":\"s\",\"name\":\"web_search\"}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Found\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let responses = concat!(
            "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"model\":\"gpt-5\",\"usage\":null}}\n\n",
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"output_index\":0,\"delta\":\"Yes\"}\n\n",
            "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":4,\"output_tokens\":2,\"total_tokens\":6}}}\n\n",
        );
        let dashscope = concat!(
            "id:1\nevent:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"Ni\"},\"finish_reason\":\"null\"}]},\"usage\":{\"input_tokens\":3,\"output_tokens\":1,\"total_tokens\":4},\"request_id\":\"q\"}\n\n",
            "id:2\nevent:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\" hao\"},\"finish_reason\":\"stop\"}]},\"usage\":{\"input_tokens\":3,\"output_tokens\":2,\"total_tokens\":5},\"request_id\":\"q\"}\n\n",
        );
        let legacy = concat!(
            "data: {\"id\":\"cmpl\",\"model\":\"instruct\",\"choices\":[{\"text\":\"Once\",\"index\":0,\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"cmpl\",\"model\":\"instruct\",\"choices\":[{\"text\":\" upon\",\"index\":0,\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2,\"total_tokens\":4}}\n\n",
            "data: [DONE]\n\n",
        );
        let cases = [
            (
                Api::AnthropicMessages,
                anthropic,
                (15, 7),
                "Found",
                Some("claude-x"),
                "end_turn",
            ),
            (
                Api::Responses,
                responses,
                (4, 2),
                "Yes",
                Some("gpt-5"),
                "completed",
            ),
            (
                Api::DashScopeText,
                dashscope,
                (3, 2),
                "Ni hao",
                None,
                "stop",
            ),
            (
                Api::Completions,
                legacy,
                (2, 2),
                "Once upon",
                Some("instruct"),
                "length",
            ),
        ];
        for (api, body, tokens, text, model, reason) in cases {
            for at in 0..=body.len() {
                let (s, u) = stream_at(api, body, at, 64);
                let u = u.unwrap_or_else(|| panic!("{api:?} split at {at}: no usage"));
                assert_eq!((u.input, u.output), tokens, "{api:?} split at {at}");
                assert_eq!(s.answer(), Some((text, false)), "{api:?} split at {at}");
                assert_eq!(s.model.as_deref(), model, "{api:?} split at {at}");
                assert_eq!(s.finish_reason(), Some(reason), "{api:?} split at {at}");
            }
        }
    }

    #[test]
    fn a_full_answer_stops_text_decoding_but_not_usage_or_reason() {
        let (s, u) = stream_at(Api::ChatCompletions, OPENAI_STREAM, 0, 2);
        assert_eq!(s.answer(), Some(("He", true)));
        assert_eq!(u.map(|u| u.total), Some(11));
        assert_eq!(s.finish_reason(), Some("stop"));
    }

    #[test]
    fn anthropic_body() {
        let body = br#"{"id":"m","type":"message","model":"claude-x","content":[{"type":"text","text":"Hi there"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":6}}"#;
        let mut s = Scan::new(Some(Api::AnthropicMessages), false, 4096, 4096, Some(4));
        s.feed(body);
        let u = s.finish().unwrap();
        assert_eq!((u.input, u.output), (12, 6));
        assert_eq!(s.finish_reason(), Some("end_turn"));
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
