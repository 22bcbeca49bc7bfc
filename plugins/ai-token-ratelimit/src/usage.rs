//! What a response used: usage found in the body as it streams past (never buffering a whole
//! stream), the `aigw.usage` property published by ai-proxy, and the amount each limit is
//! finally charged.

use crate::config::{Count, ResponseScan};
use crate::estimate::Estimate;
use aigw::llm::stream::{Dialect, StreamReader};
use aigw::llm::{Api, Usage, UsageAccumulator, UsageProtocol};

/// The usage rules that apply to a request of `api` (the client's protocol: responses reach
/// this plugin in it, whatever provider answered); OpenAI's for requests the classifier does
/// not know.
pub fn usage_protocol(api: Option<Api>) -> UsageProtocol {
    api.and_then(Api::usage_protocol)
        .unwrap_or(UsageProtocol::OpenAi)
}

/// Finds usage in a response body as it passes, chunk by chunk.
///
/// Streams (`text/event-stream`) go through the SDK's [`StreamReader`]: the usage is the
/// neutral decoder's of the client dialect (each protocol's cumulative rules, so an Anthropic
/// `message_start` and later `message_delta`s are not double counted), and events that cannot
/// carry usage are counted without being parsed. Other bodies are kept whole up to
/// `max_body_bytes`; beyond that only the tail is kept and the last `"usage"` object in it is
/// read (through the SDK's [`UsageAccumulator`]).
#[derive(Debug)]
pub struct Tracker {
    protocol: UsageProtocol,
    acc: UsageAccumulator,
    sse: Option<StreamReader>,
    body: Vec<u8>,
    seen: usize,
    max_body: usize,
    finished: bool,
}

impl Tracker {
    /// A tracker for one response to a request of `api`.
    pub fn new(api: Option<Api>, sse: bool, scan: &ResponseScan) -> Tracker {
        let protocol = usage_protocol(api);
        Tracker {
            protocol,
            acc: UsageAccumulator::new(protocol),
            sse: sse.then(|| {
                let mut reader = StreamReader::new(Dialect::of(api), scan.max_event_bytes);
                reader.set_text(false);
                reader.set_stop_reason(false);
                reader
            }),
            body: Vec::new(),
            seen: 0,
            max_body: scan.max_body_bytes,
            finished: false,
        }
    }

    /// Feeds the next body chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.finished {
            return;
        }
        if let Some(reader) = self.sse.as_mut() {
            reader.feed(chunk, |_| {});
            return;
        }
        self.seen = self.seen.saturating_add(chunk.len());
        self.body.extend_from_slice(chunk);
        if self.body.len() > self.max_body {
            let excess = self.body.len() - self.max_body;
            self.body.drain(..excess);
        }
    }

    /// The body ended (or the stream is being settled): reads what is left.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(reader) = self.sse.as_mut() {
            reader.finish(|_| {});
            return;
        }
        if self.seen <= self.max_body {
            self.acc.feed(&self.body);
        } else {
            tail_usage(self.protocol, &self.body, &mut self.acc);
        }
        self.body = Vec::new();
    }

    /// The usage seen so far.
    pub fn usage(&self) -> Option<Usage> {
        match &self.sse {
            Some(reader) => reader.usage(),
            None => self.acc.usage(),
        }
    }

    /// Streamed events with data seen so far (a rough output measure for a cut stream).
    pub fn events(&self) -> u64 {
        self.sse.as_ref().map_or(0, StreamReader::events)
    }
}

/// Reads the last `"usage"` (Gemini: `"usageMetadata"`) object of a body tail.
fn tail_usage(protocol: UsageProtocol, tail: &[u8], acc: &mut UsageAccumulator) {
    let key: &[u8] = match protocol {
        UsageProtocol::Gemini => b"\"usageMetadata\"",
        _ => b"\"usage\"",
    };
    let mut end = tail.len();
    for _ in 0..8 {
        let Some(at) = rfind(tail.get(..end).unwrap_or_default(), key) else {
            return;
        };
        end = at;
        let rest = tail.get(at + key.len()..).unwrap_or_default();
        let rest = skip_ws(rest);
        let Some(rest) = rest.strip_prefix(b":") else {
            continue;
        };
        let rest = skip_ws(rest);
        let mut values =
            serde_json::Deserializer::from_slice(rest).into_iter::<serde::de::IgnoredAny>();
        if !matches!(values.next(), Some(Ok(_))) {
            continue;
        }
        let len = values.byte_offset();
        let Some(value) = rest.get(..len) else {
            continue;
        };
        let mut doc = Vec::with_capacity(len + key.len() + 3);
        doc.push(b'{');
        doc.extend_from_slice(key);
        doc.push(b':');
        doc.extend_from_slice(value);
        doc.push(b'}');
        if acc.feed(&doc) {
            return;
        }
    }
}

fn skip_ws(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    b.get(n..).unwrap_or_default()
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| hay.get(i..i + needle.len()) == Some(needle))
}

/// How a response ended, as far as the plugin saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The response status, `None` when no response reached this filter.
    pub status: Option<u16>,
    /// Whether the response body ended normally.
    pub complete: bool,
    /// Whether the answer came from a cache (`x-cache-status: hit`).
    pub cache_hit: bool,
    /// The usage (published property, or found in the body).
    pub usage: Option<Usage>,
    /// Streamed events seen.
    pub events: u64,
}

/// The amount a limit is charged for a finished request.
///
/// * requests: always 1;
/// * a cache hit: 0 tokens;
/// * usage known and the response complete: the usage;
/// * the response cut off (client gone, upstream reset): known usage, with the prompt
///   estimate standing in for an unknown prompt count and the number of streamed events
///   (about one token each) as a floor for the output;
/// * no usage: nothing for an error status, the prompt estimate when no response came, the
///   full estimate for a complete success without usage, and prompt estimate plus streamed
///   events for a cut-off success.
pub fn charge(count: Count, cached_weight: f64, est: &Estimate, o: &Outcome) -> u64 {
    if count == Count::Requests {
        return 1;
    }
    if o.cache_hit {
        return 0;
    }
    let success = o.status.is_some_and(|s| (200..300).contains(&s));
    let (input, cached, output) = match (o.usage, o.complete) {
        (Some(u), true) => (u.input, u.cached_input, u.output),
        (Some(u), false) => {
            let input = if u.input > 0 { u.input } else { est.prompt };
            (input, u.cached_input, u.output.max(o.events))
        }
        (None, _) if o.status.is_none() => (est.prompt, 0, 0),
        (None, _) if !success => (0, 0, 0),
        (None, true) => return est.amount(count),
        (None, false) => (est.prompt, 0, o.events),
    };
    let cached = cached.min(input);
    let weighted_cached = (cached as f64 * cached_weight).ceil() as u64;
    let prompt = (input - cached).saturating_add(weighted_cached);
    match count {
        Count::Total => prompt.saturating_add(output),
        Count::Prompt => prompt,
        Count::Completion => output,
        Count::Requests => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan() -> ResponseScan {
        ResponseScan::default()
    }

    fn feed_all(t: &mut Tracker, body: &[u8], piece: usize) {
        for c in body.chunks(piece.max(1)) {
            t.feed(c);
        }
        t.finish();
    }

    #[test]
    fn protocols_from_paths() {
        let p = |path: &str| usage_protocol(Api::classify("POST", path, None));
        assert_eq!(p("/v1/chat/completions"), UsageProtocol::OpenAi);
        assert_eq!(p("/v1/messages?beta=1"), UsageProtocol::Anthropic);
        assert_eq!(
            p("/v1beta/models/g:streamGenerateContent?alt=sse"),
            UsageProtocol::Gemini
        );
        assert_eq!(p("/v1/responses"), UsageProtocol::Responses);
        assert_eq!(p("/unknown"), UsageProtocol::OpenAi);
    }

    #[test]
    fn openai_stream_split_anywhere() {
        let body = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":30,\"total_tokens\":42}}\n\n\
data: [DONE]\n\n";
        for piece in [1, 3, 7, 64, 4096] {
            let mut t = Tracker::new(Some(Api::ChatCompletions), true, &scan());
            feed_all(&mut t, body, piece);
            let u = t.usage().unwrap();
            assert_eq!((u.input, u.output, u.total), (12, 30, 42), "piece {piece}");
            assert_eq!(t.events(), 2);
        }
    }

    #[test]
    fn anthropic_stream_is_cumulative_not_summed() {
        let body = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"output_tokens\":1,\"cache_read_input_tokens\":4}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":25}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let mut t = Tracker::new(Some(Api::AnthropicMessages), true, &scan());
        feed_all(&mut t, body, 5);
        let u = t.usage().unwrap();
        assert_eq!((u.input, u.cached_input, u.output), (14, 4, 25));
    }

    #[test]
    fn json_body_whole_and_tail() {
        let small =
            br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        let mut t = Tracker::new(Some(Api::ChatCompletions), false, &scan());
        feed_all(&mut t, small, 10);
        assert_eq!(t.usage().unwrap().total, 7);

        // A body far beyond the kept size: only the tail is held, usage still found; a
        // "usage" inside the content does not confuse it.
        let big = format!(
            r#"{{"choices":[{{"message":{{"content":"{} \"usage\": {{}} "}}}}],"usage":{{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}}}"#,
            "x".repeat(300_000)
        );
        let cfg = ResponseScan {
            max_body_bytes: 1024,
            max_event_bytes: 4096,
        };
        let mut t = Tracker::new(Some(Api::ChatCompletions), false, &cfg);
        feed_all(&mut t, big.as_bytes(), 4000);
        assert_eq!(t.usage().unwrap().total, 11);
        assert!(t.body.capacity() < 20_000, "bounded copy");

        let gemini = format!(
            r#"{{"candidates":[{{"t":"{}"}}],"usageMetadata":{{"promptTokenCount":2,"candidatesTokenCount":3,"totalTokenCount":5}}}}"#,
            "y".repeat(5000)
        );
        let mut t = Tracker::new(Some(Api::GeminiGenerateContent), false, &cfg);
        feed_all(&mut t, gemini.as_bytes(), 999);
        assert_eq!(t.usage().unwrap().total, 5);
    }

    #[test]
    fn every_client_dialect_at_every_split() {
        let gemini = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":1,\"totalTokenCount\":5}}\n\n\
data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"b\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":2,\"totalTokenCount\":6}}\n\n";
        let responses = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"usage\":null}}\n\n\
event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"output_index\":0,\"delta\":\"x\"}\n\n\
event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":7,\"output_tokens\":3,\"total_tokens\":10}}}\n\n";
        let dashscope = "id:1\nevent:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"null\"}]},\"usage\":{\"input_tokens\":8,\"output_tokens\":1,\"total_tokens\":9}}\n\n\
id:2\nevent:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"y\"},\"finish_reason\":\"stop\"}]},\"usage\":{\"input_tokens\":8,\"output_tokens\":2,\"total_tokens\":10}}\n\n";
        let cases = [
            (Api::GeminiStreamGenerateContent, gemini, (4, 2), 2),
            (Api::Responses, responses, (7, 3), 3),
            (Api::DashScopeText, dashscope, (8, 2), 2),
        ];
        for (api, body, tokens, events) in cases {
            let bytes = body.as_bytes();
            for at in 0..=bytes.len() {
                let mut t = Tracker::new(Some(api), true, &scan());
                t.feed(&bytes[..at]);
                t.feed(&bytes[at..]);
                t.finish();
                let u = t.usage().unwrap_or_else(|| panic!("{api:?} split at {at}"));
                assert_eq!((u.input, u.output), tokens, "{api:?} split at {at}");
                assert_eq!(t.events(), events, "{api:?} split at {at}");
            }
        }
    }

    #[test]
    fn oversized_event_is_skipped_and_parsing_resumes() {
        let cfg = ResponseScan {
            max_body_bytes: 1024,
            max_event_bytes: 1024,
        };
        let body = format!(
            "data: {{\"x\":\"{}\"}}\n\ndata: {{\"usage\":{{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}}}\n\n",
            "z".repeat(5000)
        );
        let mut t = Tracker::new(Some(Api::ChatCompletions), true, &cfg);
        feed_all(&mut t, body.as_bytes(), 700);
        assert_eq!(t.usage().unwrap().total, 3);
    }

    #[test]
    fn charges() {
        let est = Estimate {
            model: None,
            prompt: 100,
            completion: 50,
        };
        let usage = Usage {
            input: 80,
            output: 20,
            total: 100,
            cached_input: 40,
            reasoning: 0,
            cache_creation_input: None,
        };
        let done = Outcome {
            status: Some(200),
            complete: true,
            cache_hit: false,
            usage: Some(usage),
            events: 0,
        };
        assert_eq!(charge(Count::Total, 1.0, &est, &done), 100);
        assert_eq!(charge(Count::Total, 0.0, &est, &done), 60);
        assert_eq!(charge(Count::Total, 0.25, &est, &done), 70);
        assert_eq!(charge(Count::Prompt, 0.5, &est, &done), 60);
        assert_eq!(charge(Count::Completion, 1.0, &est, &done), 20);
        assert_eq!(charge(Count::Requests, 1.0, &est, &done), 1);
        let hit = Outcome {
            cache_hit: true,
            ..done
        };
        assert_eq!(charge(Count::Total, 1.0, &est, &hit), 0);
        assert_eq!(charge(Count::Requests, 1.0, &est, &hit), 1);
        let no_usage = Outcome {
            usage: None,
            ..done
        };
        assert_eq!(charge(Count::Total, 1.0, &est, &no_usage), 150);
        let error = Outcome {
            status: Some(500),
            ..no_usage
        };
        assert_eq!(charge(Count::Total, 1.0, &est, &error), 0);
        let never = Outcome {
            status: None,
            complete: false,
            ..no_usage
        };
        assert_eq!(charge(Count::Total, 1.0, &est, &never), 100);
        let cut = Outcome {
            complete: false,
            events: 7,
            ..no_usage
        };
        assert_eq!(charge(Count::Total, 1.0, &est, &cut), 107);
        // Cut off with partial usage (Anthropic message_start only): known input, output at
        // least the streamed events.
        let partial = Usage {
            input: 30,
            output: 1,
            total: 31,
            cached_input: 0,
            reasoning: 0,
            cache_creation_input: None,
        };
        let cut = Outcome {
            complete: false,
            events: 9,
            usage: Some(partial),
            ..done
        };
        assert_eq!(charge(Count::Total, 1.0, &est, &cut), 39);
    }
}
