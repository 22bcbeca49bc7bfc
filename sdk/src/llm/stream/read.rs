//! Reading a streamed answer as it passes through a filter, on the neutral model: SSE framing
//! → the dialect's [`Decoder`] → neutral [`Event`]s, with the usage the decoder keeps.
//!
//! This is the one path by which plugins that only observe a stream (statistics, token
//! limits) take usage, the model, the stop reason and the answer text from it; they do not
//! parse events themselves. Memory is bounded by the largest event (`max_event_bytes`);
//! nothing of the stream is kept besides the decoder's small state.
//!
//! ```
//! use aigw::llm::stream::{Channel, Dialect, Event, StreamReader};
//!
//! let body = concat!(
//!     "data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
//!     "data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
//!     "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n",
//!     "data: [DONE]\n\n",
//! );
//! let mut reader = StreamReader::new(Dialect::OpenAi, 1 << 20);
//! let mut text = String::new();
//! for chunk in body.as_bytes().chunks(7) {
//!     reader.feed(chunk, |e| {
//!         if let Event::Text { channel: Channel::Content, text: t } = e {
//!             text.push_str(t);
//!         }
//!     });
//! }
//! reader.finish(|_| {});
//! assert_eq!(text, "Hi");
//! assert_eq!(reader.usage().map(|u| u.total), Some(6));
//! assert_eq!(reader.raw_stop_reason(), Some("stop"));
//! ```

use super::{
    AnthropicDecoder, BedrockDecoder, DashScopeDecoder, Decoder, Event, GeminiDecoder,
    OpenAiDecoder, ResponsesDecoder,
};
use crate::llm::usage::find_key;
use crate::llm::{Api, Usage};
use crate::sse::Parser;

/// The wire dialect of a streamed answer (which [`Decoder`] reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI chat (and legacy) completion chunks; every OpenAI-compatible server.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini `streamGenerateContent?alt=sse`.
    Gemini,
    /// OpenAI Responses.
    Responses,
    /// Bedrock ConverseStream payloads (given SSE framing with the event type as `event:`; the
    /// AWS binary event stream itself is not SSE).
    Bedrock,
    /// DashScope native text/multimodal generation.
    DashScope,
}

impl Dialect {
    /// The dialect in which answers to a request of `api` stream back to its client (OpenAI's
    /// for requests the classifier does not know: OpenAI-compatible APIs are the common case).
    pub fn of(api: Option<Api>) -> Dialect {
        match api {
            Some(Api::AnthropicMessages) => Dialect::Anthropic,
            Some(Api::Responses) => Dialect::Responses,
            Some(Api::GeminiGenerateContent | Api::GeminiStreamGenerateContent) => Dialect::Gemini,
            Some(Api::BedrockConverse | Api::BedrockConverseStream) => Dialect::Bedrock,
            Some(Api::DashScopeText | Api::DashScopeMultimodal) => Dialect::DashScope,
            _ => Dialect::OpenAi,
        }
    }

    /// A lenient decoder for this dialect (an event it cannot decode is skipped, not the end).
    fn decoder(self) -> Box<dyn Decoder> {
        match self {
            Dialect::OpenAi => Box::new(OpenAiDecoder::new().lenient()),
            Dialect::Anthropic => Box::new(AnthropicDecoder::new().lenient()),
            Dialect::Gemini => Box::new(GeminiDecoder::new().lenient()),
            Dialect::Responses => Box::new(ResponsesDecoder::new().lenient()),
            Dialect::Bedrock => Box::new(BedrockDecoder::new().lenient()),
            Dialect::DashScope => Box::new(DashScopeDecoder::new().lenient()),
        }
    }

    /// The key of the usage object (`"usage":null` carries none).
    fn usage_key(self) -> &'static [u8] {
        match self {
            Dialect::Gemini => b"\"usageMetadata\"",
            _ => b"\"usage\"",
        }
    }
}

/// Whether `key` (ending in its closing quote) occurs in a JSON text followed by a value
/// that starts with `first` (`{` for an object, `"` for a string). A byte test, not a parse:
/// it may say yes for text that only looks like it, never no for a real one.
fn has_value(data: &[u8], key: &[u8], first: u8) -> bool {
    let mut from = 0;
    while let Some(at) = data.get(from..).and_then(|d| find_key(d, key)) {
        let after = from + at + key.len();
        let value = data
            .get(after..)
            .unwrap_or_default()
            .iter()
            .find(|b| !(b.is_ascii_whitespace() || **b == b':'));
        if value == Some(&first) {
            return true;
        }
        from = after;
    }
    false
}

/// Whether a JSON text has a key ending in `reason` or `Reason` (`finish_reason`,
/// `stop_reason`, `reason`, `finishReason`, `blockReason`, `stopReason`) with a string value:
/// the only events that can stop an answer, besides those carrying usage.
fn has_reason_value(data: &[u8]) -> bool {
    has_value(data, b"reason\"", b'"') || has_value(data, b"Reason\"", b'"')
}

/// Gives a vector's allocation to a vector of events of another lifetime (same layout, so the
/// standard library reuses the buffer in place); it is empty either way.
// `filter_map` (not `filter`) changes the element type, and the standard library collects
// it in place.
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'b>(mut v: Vec<Event<'_>>) -> Vec<Event<'b>> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// Reads one streamed (SSE) answer chunk by chunk: usage, the model, the stop reason and, when
/// wanted, the text, from the dialect's [`Decoder`].
///
/// Events split anywhere across chunks are reassembled by the SSE parser. An event larger than
/// `max_event_bytes` is skipped (the reader resynchronises on the next one), and so is an
/// event the decoder cannot read: an observer must not lose the rest of the answer's usage to
/// one odd event.
///
/// While text is not wanted ([`set_text`](Self::set_text)), events that cannot carry usage, a
/// stop reason or the start of the answer are not parsed at all (a byte search decides).
pub struct StreamReader {
    parser: Parser,
    decoder: Box<dyn Decoder>,
    dialect: Dialect,
    text: bool,
    stop: bool,
    started: bool,
    events: u64,
    skipped: u64,
    spare: Vec<Event<'static>>,
}

impl std::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader")
            .field("dialect", &self.dialect)
            .field("text", &self.text)
            .field("events", &self.events)
            .field("usage", &self.decoder.usage())
            .finish_non_exhaustive()
    }
}

impl StreamReader {
    /// A reader for one answer in `dialect`, holding at most `max_event_bytes` of an incomplete
    /// event. Text is wanted until [`set_text`](Self::set_text) says otherwise.
    pub fn new(dialect: Dialect, max_event_bytes: usize) -> StreamReader {
        StreamReader {
            parser: Parser::new(max_event_bytes),
            decoder: dialect.decoder(),
            dialect,
            text: true,
            stop: true,
            started: false,
            events: 0,
            skipped: 0,
            spare: Vec::new(),
        }
    }

    /// The dialect read.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Whether the caller wants every event (text, tool calls). Off, only events that may carry
    /// usage, a stop reason or the answer's start are decoded; the rest are counted and skipped.
    pub fn set_text(&mut self, on: bool) {
        self.text = on;
    }

    /// Whether the caller wants the stop reason and the answer's start (default true). Off
    /// while text is off too, only events that may carry usage are decoded: one byte search
    /// an event.
    pub fn set_stop_reason(&mut self, on: bool) {
        self.stop = on;
    }

    /// Feeds the next body chunk; `on_event` sees every neutral event decoded from it.
    pub fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(&Event<'_>)) {
        let StreamReader {
            parser,
            decoder,
            dialect,
            text,
            stop,
            started,
            events,
            skipped,
            spare,
        } = self;
        let mut each = |ev: crate::sse::Event<'_>| {
            read_event(
                ev,
                decoder.as_mut(),
                *dialect,
                *text,
                *stop,
                started,
                events,
                spare,
                &mut on_event,
            )
        };
        if parser.feed(chunk, &mut each).is_err() {
            // An event larger than the limit: drop it and go on with the next one.
            *skipped += 1;
            crate::debug!("oversized SSE event skipped");
            parser.reset();
        }
    }

    /// The body ended (or was cut short): decodes an event still pending at the very end.
    /// Whether the answer was complete is the caller's to judge (end of stream, status).
    pub fn finish(&mut self, mut on_event: impl FnMut(&Event<'_>)) {
        let StreamReader {
            parser,
            decoder,
            dialect,
            text,
            stop,
            started,
            events,
            spare,
            ..
        } = self;
        let _ = parser.finish(|ev| {
            read_event(
                ev,
                decoder.as_mut(),
                *dialect,
                *text,
                *stop,
                started,
                events,
                spare,
                &mut on_event,
            )
        });
        let _ = decoder.finish();
    }

    /// The usage seen so far (cumulative, following the dialect's rules).
    pub fn usage(&self) -> Option<Usage> {
        self.decoder.usage()
    }

    /// The stop reason in the dialect's own words (`stop`, `end_turn`, `STOP`, ...), once seen.
    pub fn raw_stop_reason(&self) -> Option<&str> {
        self.decoder.raw_stop_reason()
    }

    /// Events with data seen so far (`[DONE]` and empty ones not counted), decoded or not: a
    /// rough output measure for an answer cut short.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// How often an event outgrew `max_event_bytes` (its bytes were dropped up to the next
    /// event boundary).
    pub fn oversized(&self) -> u64 {
        self.skipped
    }
}

/// One SSE block: counted, filtered, decoded, its neutral events handed on.
#[allow(clippy::too_many_arguments)]
fn read_event(
    ev: crate::sse::Event<'_>,
    decoder: &mut dyn Decoder,
    dialect: Dialect,
    text: bool,
    stop: bool,
    started: &mut bool,
    events: &mut u64,
    spare: &mut Vec<Event<'static>>,
    on_event: &mut impl FnMut(&Event<'_>),
) {
    let Some(data) = ev.data() else { return };
    if data.is_empty() {
        return;
    }
    if !ev.is_done() {
        *events += 1;
    }
    // Without text, an event the decoder would read as only a text increment is skipped
    // before the byte searches (one comparison instead of three scans).
    let wanted = text
        || (!decoder.only_text(data)
            && (has_value(data, dialect.usage_key(), b'{')
                || (stop && (!*started || has_reason_value(data)))));
    if !wanted {
        return;
    }
    let name = match ev.event_type() {
        "message" => None,
        other => Some(other),
    };
    let mut out = recycle(std::mem::take(spare));
    // An event the decoder cannot read is skipped (lenient decoders go on with the next).
    let _ = decoder.decode(name, data, &mut out);
    for e in &out {
        if matches!(e, Event::Start { .. }) {
            *started = true;
        }
        on_event(e);
    }
    *spare = recycle(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::stream::Channel;

    /// Reads `body` split at `cut`, returning the content text, the model and the reader.
    fn read(
        dialect: Dialect,
        body: &[u8],
        cut: usize,
        text: bool,
    ) -> (String, Option<String>, StreamReader) {
        let mut r = StreamReader::new(dialect, 1 << 16);
        r.set_text(text);
        let (mut answer, mut model) = (String::new(), None);
        let mut on = |e: &Event<'_>| match e {
            Event::Text {
                channel: Channel::Content,
                text,
            } => answer.push_str(text),
            Event::Start { model: m, .. } => model = m.as_ref().map(|m| m.to_string()),
            _ => {}
        };
        let (a, b) = body.split_at(cut.min(body.len()));
        r.feed(a, &mut on);
        r.feed(b, &mut on);
        r.finish(&mut on);
        (answer, model, r)
    }

    fn sse(events: &[(Option<&str>, &str)]) -> Vec<u8> {
        let mut s = String::new();
        for (name, data) in events {
            if let Some(n) = name {
                s.push_str(&format!("event: {n}\n"));
            }
            s.push_str(&format!("data: {data}\n\n"));
        }
        s.into_bytes()
    }

    /// One answer per dialect: (dialect, body, text, model, input, output, total, cached,
    /// reasoning, stop reason).
    #[allow(clippy::type_complexity)]
    fn answers() -> Vec<(
        Dialect,
        Vec<u8>,
        &'static str,
        Option<&'static str>,
        [u64; 5],
        &'static str,
    )> {
        vec![
            (
                Dialect::OpenAi,
                sse(&[
                    (None, r#"{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#),
                    (None, r#"{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],"usage":null}"#),
                    (None, r#"{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"lo \"you\""},"finish_reason":null}],"usage":null}"#),
                    (None, r#"{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":null}"#),
                    (None, r#"{"id":"c","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}}"#),
                    (None, "[DONE]"),
                ]),
                "Hello \"you\"",
                Some("gpt-4o"),
                [9, 4, 13, 2, 1],
                "length",
            ),
            (
                Dialect::Anthropic,
                sse(&[
                    (Some("message_start"), r#"{"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":40,"cache_creation_input_tokens":10,"cache_read_input_tokens":50,"output_tokens":1}}}"#),
                    (Some("content_block_start"), r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
                    (Some("ping"), r#"{"type":"ping"}"#),
                    (Some("content_block_delta"), r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi "}}"#),
                    (Some("content_block_delta"), r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"there"}}"#),
                    (Some("content_block_stop"), r#"{"type":"content_block_stop","index":0}"#),
                    (Some("message_delta"), r#"{"type":"message_delta","delta":{"stop_reason":"pause_turn"},"usage":{"output_tokens":12}}"#),
                    (Some("message_stop"), r#"{"type":"message_stop"}"#),
                ]),
                "Hi there",
                Some("claude-x"),
                [100, 12, 112, 50, 0],
                "pause_turn",
            ),
            (
                Dialect::Gemini,
                sse(&[
                    (None, r#"{"candidates":[{"content":{"parts":[{"text":"hmm","thought":true}],"role":"model"}}],"usageMetadata":{"promptTokenCount":7,"totalTokenCount":10,"thoughtsTokenCount":3},"modelVersion":"gemini-2.5-flash"}"#),
                    (None, r#"{"candidates":[{"content":{"parts":[{"text":"Sun"}],"role":"model"}}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":1,"totalTokenCount":11,"thoughtsTokenCount":3},"modelVersion":"gemini-2.5-flash"}"#),
                    (None, r#"{"candidates":[{"content":{"parts":[{"text":"ny."}],"role":"model"},"finishReason":"RECITATION"}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":2,"totalTokenCount":12,"cachedContentTokenCount":4,"thoughtsTokenCount":3},"modelVersion":"gemini-2.5-flash"}"#),
                ]),
                "Sunny.",
                Some("gemini-2.5-flash"),
                [7, 5, 12, 4, 3],
                "RECITATION",
            ),
            (
                Dialect::Responses,
                sse(&[
                    (Some("response.created"), r#"{"type":"response.created","response":{"id":"resp_1","model":"gpt-5","status":"in_progress","usage":null}}"#),
                    (Some("response.output_text.delta"), r#"{"type":"response.output_text.delta","output_index":0,"delta":"Yes"}"#),
                    (Some("response.output_text.done"), r#"{"type":"response.output_text.done","output_index":0,"text":"Yes"}"#),
                    (Some("response.incomplete"), r#"{"type":"response.incomplete","response":{"id":"resp_1","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":5,"input_tokens_details":{"cached_tokens":1},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":8}}}"#),
                ]),
                "Yes",
                Some("gpt-5"),
                [5, 3, 8, 1, 2],
                "max_output_tokens",
            ),
            (
                Dialect::DashScope,
                b"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"Ni\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":4,\"output_tokens\":1,\"input_tokens\":3},\"request_id\":\"r\"}\n\nid:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\" hao\",\"role\":\"assistant\"},\"finish_reason\":\"stop\"}]},\"usage\":{\"total_tokens\":5,\"output_tokens\":2,\"input_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":1}},\"request_id\":\"r\"}\n\n".to_vec(),
                "Ni hao",
                None,
                [3, 2, 5, 1, 0],
                "stop",
            ),
            (
                Dialect::Bedrock,
                sse(&[
                    (Some("messageStart"), r#"{"role":"assistant"}"#),
                    (Some("contentBlockDelta"), r#"{"contentBlockIndex":0,"delta":{"text":"Ok"}}"#),
                    (Some("messageStop"), r#"{"stopReason":"max_tokens"}"#),
                    (Some("metadata"), r#"{"usage":{"inputTokens":3,"outputTokens":1,"totalTokens":10,"cacheReadInputTokens":6},"metrics":{"latencyMs":5}}"#),
                ]),
                "Ok",
                None,
                [9, 1, 10, 6, 0],
                "max_tokens",
            ),
        ]
    }

    #[test]
    fn every_dialect_at_every_split_with_and_without_text() {
        for (dialect, body, text, model, [input, output, total, cached, reasoning], stop) in
            answers()
        {
            for cut in 0..=body.len() {
                for want_text in [true, false] {
                    let (answer, seen_model, r) = read(dialect, &body, cut, want_text);
                    let u = r.usage().unwrap_or_else(|| panic!("{dialect:?} at {cut}"));
                    assert_eq!(
                        (u.input, u.output, u.total, u.cached_input, u.reasoning),
                        (input, output, total, cached, reasoning),
                        "{dialect:?} split at {cut}"
                    );
                    assert_eq!(r.raw_stop_reason(), Some(stop), "{dialect:?} at {cut}");
                    assert_eq!(seen_model.as_deref(), model, "{dialect:?} at {cut}");
                    if want_text {
                        assert_eq!(answer, text, "{dialect:?} split at {cut}");
                    }
                }
            }
        }
    }

    #[test]
    fn without_text_only_events_that_matter_are_decoded() {
        let (_, body, ..) = answers().swap_remove(0);
        let (answer, model, r) = read(Dialect::OpenAi, &body, 0, false);
        // The first event starts the answer; the content events after it are not decoded.
        assert_eq!(answer, "");
        assert_eq!(model.as_deref(), Some("gpt-4o"));
        assert_eq!(r.events(), 5, "[DONE] is not counted");
        assert!(has_reason_value(br#"{"finish_reason" : "stop"}"#));
        assert!(!has_reason_value(
            br#"{"finish_reason":null,"text":"reason\"x"}"#
        ));
        assert!(has_reason_value(
            br#"{"stop_reason":null,"incomplete_details":{"reason":"x"}}"#
        ));
        assert!(has_reason_value(br#"{"finishReason":"STOP"}"#));
        assert!(has_value(
            br#"{"usage":null,"x":{"usage": {"a":1}}}"#,
            b"\"usage\"",
            b'{'
        ));
        assert!(!has_value(
            br#"{"usage":null,"text":"\"usage\" {"}"#,
            b"\"usage\"",
            b'{'
        ));
        assert!(!has_reason_value(br#"{"finishReason":null,"reason":1}"#));
    }

    #[test]
    fn text_turned_off_midway_skips_only_repeated_text_chunks() {
        let chunk = |t: &str| {
            format!(
                r#"{{"id":"c","model":"m","choices":[{{"index":0,"delta":{{"content":"{t}"}},"finish_reason":null}}]}}"#
            )
        };
        let mut events = vec![chunk("a"), chunk("b"), chunk("c"), chunk("d")];
        events.push(
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#
                .into(),
        );
        events.push(r#"{"id":"c","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":4,"total_tokens":6}}"#.into());
        events.push("[DONE]".into());
        let body = sse(&events
            .iter()
            .map(|e| (None, e.as_str()))
            .collect::<Vec<_>>());
        for cut in 0..=body.len() {
            let mut r = StreamReader::new(Dialect::OpenAi, 1 << 16);
            let mut answer = String::new();
            let mut on = |e: &Event<'_>| {
                if let Event::Text { text, .. } = e {
                    answer.push_str(text);
                }
            };
            let (a, b) = body.split_at(cut);
            r.feed(a, &mut on);
            r.set_text(false);
            r.feed(b, &mut on);
            r.finish(&mut on);
            assert_eq!(r.usage().map(|u| u.total), Some(6), "split at {cut}");
            assert_eq!(r.raw_stop_reason(), Some("stop"), "split at {cut}");
            assert!("abcd".starts_with(&answer), "split at {cut}: {answer}");
            assert_eq!(r.events(), 6, "split at {cut}");
        }
        // The decoder knows a repeated plain chunk, and only that.
        let mut d = OpenAiDecoder::new();
        let mut out = Vec::new();
        for e in &events[..2] {
            let _ = d.decode(None, e.as_bytes(), &mut out);
        }
        assert!(d.only_text(chunk("zz").as_bytes()));
        assert!(!d.only_text(chunk("z\"z").as_bytes()));
        for e in &events[4..] {
            assert!(!d.only_text(e.as_bytes()), "{e}");
        }
        assert!(!AnthropicDecoder::new().only_text(chunk("a").as_bytes()));
    }

    #[test]
    fn usage_only_reads_the_usage() {
        for (dialect, body, _, _, [input, output, ..], _) in answers() {
            for cut in [0, body.len() / 2] {
                let mut r = StreamReader::new(dialect, 1 << 16);
                r.set_text(false);
                r.set_stop_reason(false);
                let (a, b) = body.split_at(cut);
                r.feed(a, |_| {});
                r.feed(b, |_| {});
                r.finish(|_| {});
                let u = r.usage().unwrap_or_else(|| panic!("{dialect:?}"));
                assert_eq!((u.input, u.output), (input, output), "{dialect:?}");
            }
        }
        // Of an OpenAI stream only the usage chunk is decoded: no stop reason is seen.
        let (_, body, ..) = answers().swap_remove(0);
        let mut r = StreamReader::new(Dialect::OpenAi, 1 << 16);
        r.set_text(false);
        r.set_stop_reason(false);
        let mut usage_events = 0;
        r.feed(&body, |e| {
            usage_events += usize::from(matches!(e, Event::Usage(_)))
        });
        assert_eq!(usage_events, 1);
        assert_eq!(r.raw_stop_reason(), None);
        assert_eq!(r.events(), 5);
    }

    #[test]
    fn odd_and_oversized_events_do_not_end_the_reading() {
        let big = format!(r#"{{"x":"{}"}}"#, "z".repeat(5000));
        let body = sse(&[
            (
                Some("message_start"),
                r#"{"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":3,"output_tokens":1}}}"#,
            ),
            // A server-tool block no translator could carry, and a non-JSON event.
            (
                Some("content_block_start"),
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"s","name":"web_search"}}"#,
            ),
            (
                Some("content_block_delta"),
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
            ),
            (None, "not json"),
            (None, big.as_str()),
            (
                Some("content_block_start"),
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            ),
            (
                Some("content_block_delta"),
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Found it"}}"#,
            ),
            (
                Some("message_delta"),
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#,
            ),
            (Some("message_stop"), r#"{"type":"message_stop"}"#),
        ]);
        let mut r = StreamReader::new(Dialect::Anthropic, 1024);
        let mut answer = String::new();
        for c in body.chunks(100) {
            r.feed(c, |e| {
                if let Event::Text { text, .. } = e {
                    answer.push_str(text);
                }
            });
        }
        r.finish(|_| {});
        assert_eq!(answer, "Found it");
        assert_eq!(r.usage().map(|u| (u.input, u.output)), Some((3, 9)));
        assert_eq!(r.raw_stop_reason(), Some("end_turn"));
        assert!(r.oversized() > 0);
    }

    #[test]
    fn recycled_event_vectors_keep_their_allocation() {
        let data = String::from("x");
        let mut v = vec![Event::Text {
            channel: Channel::Content,
            text: data.as_str().into(),
        }];
        v.reserve(7);
        let cap = v.capacity();
        let back: Vec<Event<'static>> = recycle(v);
        assert!(back.is_empty());
        assert_eq!(back.capacity(), cap);
    }

    #[test]
    fn dialect_of_api() {
        let d = |path: &str| Dialect::of(Api::classify("POST", path, None));
        assert_eq!(d("/v1/chat/completions"), Dialect::OpenAi);
        assert_eq!(d("/v1/completions"), Dialect::OpenAi);
        assert_eq!(d("/v1/messages"), Dialect::Anthropic);
        assert_eq!(d("/v1/responses"), Dialect::Responses);
        assert_eq!(
            d("/v1beta/models/g:streamGenerateContent?alt=sse"),
            Dialect::Gemini
        );
        assert_eq!(
            d("/api/v1/services/aigc/text-generation/generation"),
            Dialect::DashScope
        );
        assert_eq!(d("/model/m/converse-stream"), Dialect::Bedrock);
        assert_eq!(d("/elsewhere"), Dialect::OpenAi);
    }

    #[test]
    fn legacy_completions_text_is_content() {
        let body = sse(&[
            (
                None,
                r#"{"id":"cmpl-1","object":"text_completion","model":"gpt-3.5-turbo-instruct","choices":[{"text":"Once","index":0,"finish_reason":null}]}"#,
            ),
            (
                None,
                r#"{"id":"cmpl-1","object":"text_completion","model":"gpt-3.5-turbo-instruct","choices":[{"text":" upon","index":0,"finish_reason":"length"}]}"#,
            ),
            (None, "[DONE]"),
        ]);
        let (answer, _, r) = read(Dialect::OpenAi, &body, 3, true);
        assert_eq!(answer, "Once upon");
        assert_eq!(r.raw_stop_reason(), Some("length"));
    }
}
