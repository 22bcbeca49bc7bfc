//! Incremental translation of one streamed answer on the SDK's neutral stream model
//! ([`aigw::llm::stream`]):
//!
//! framing (SSE parser, or the AWS event-stream decoder for Bedrock) → the upstream dialect's
//! [`Decoder`] → the client dialect's [`Encoder`] (or, for a client that did not ask for a
//! stream, an [`Aggregator`] that builds one answer at the end).
//!
//! When both sides speak the same dialect the upstream bytes are forwarded as they arrive
//! ([`Pass`]): the SSE parser only reads usage and finds the few events that change (the
//! OpenAI usage-only chunk the client did not ask for, the reported model name), and a chunk
//! in which nothing changes reaches the client as it came ([`Output::Unchanged`]).

use crate::providers::bedrock::eventstream::Decoder as EventStreamFrames;
use crate::providers::{upstream, Protocol as Wire};
use crate::request::ProxyApi;
use crate::response::{find_model_value, Exchange, ModelPin, ModelValue};
use aigw::llm::stream::{
    Aggregator, AnthropicEncoder, BedrockDecoder, Decoder, Encoder, Event, OpenAiEncoder,
    ResponsesEncoder, StreamError,
};
use aigw::llm::Api;
use aigw::llm::{Usage, UsageAccumulator, UsageProtocol};
use aigw::sse::Parser;
use serde_json::json;

mod pass;
mod scan;
use pass::*;
use scan::*;

/// How upstream bytes are framed.
enum Framing {
    Sse(Parser),
    EventStream(EventStreamFrames),
}

/// Where neutral events go.
enum Sink {
    /// The client's stream encoder.
    Encode(Box<dyn Encoder>),
    /// One answer assembled at the end (`None` once taken).
    Aggregate(Option<Box<Aggregator>>),
}

/// The upstream decoder (Bedrock's also decodes exception frames, outside the trait).
enum Dec {
    Bedrock(BedrockDecoder),
    Other(Box<dyn Decoder>),
}

impl Dec {
    fn get(&mut self) -> &mut dyn Decoder {
        match self {
            Dec::Bedrock(b) => b,
            Dec::Other(d) => d.as_mut(),
        }
    }

    fn usage(&self) -> Option<Usage> {
        match self {
            Dec::Bedrock(b) => b.usage(),
            Dec::Other(d) => d.usage(),
        }
    }
}

/// What happens to each upstream event.
enum Stage {
    /// Same dialect on both sides: bytes forwarded (usage read, model rewritten).
    Pass(Box<Pass>),
    /// Decode → encode.
    Translate {
        framing: Box<Framing>,
        decoder: Dec,
        sink: Sink,
    },
}

/// What the client gets for one upstream chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The chunk exactly as it arrived (nothing was written to `out`): leave the body alone.
    Unchanged,
    /// What was written to `out`, in place of the chunk.
    Replaced,
}

/// Incremental translation of one streamed response.
pub struct StreamPipeline {
    ex: Exchange,
    stage: Stage,
    failed: bool,
    finished: bool,
}

/// The decoder for an upstream dialect (Bedrock's is kept concrete for its exception frames).
fn decoder(wire: Wire) -> Dec {
    match wire {
        Wire::BedrockConverse => Dec::Bedrock(BedrockDecoder::new()),
        other => Dec::Other(upstream(other).stream_decoder()),
    }
}

impl StreamPipeline {
    /// A pipeline for `ex`; `max_event` bounds one event (SSE) or frame (event-stream).
    pub fn new(ex: Exchange, max_event: usize) -> StreamPipeline {
        let framing = if ex.wire == Wire::BedrockConverse {
            Framing::EventStream(EventStreamFrames::new(max_event))
        } else {
            Framing::Sse(Parser::new(max_event))
        };
        let model = ex
            .report_model
            .as_deref()
            .unwrap_or(ex.upstream_model.as_str());
        let stage = match ex.api.spoken_by(ex.wire) {
            Some(protocol) => Stage::Pass(Box::new(Pass::new(&ex, protocol, max_event))),
            None => {
                let sink = if !ex.client_stream {
                    Sink::Aggregate(Some(Box::new(Aggregator::new(&ex.id, model, ex.created))))
                } else {
                    let encoder: Box<dyn Encoder> = match ex.api {
                        Api::AnthropicMessages => Box::new(AnthropicEncoder::new(&ex.id, model)),
                        Api::Responses => {
                            Box::new(ResponsesEncoder::new(&ex.id, model, ex.created))
                        }
                        _ => Box::new(OpenAiEncoder::new(
                            &ex.id,
                            model,
                            ex.created,
                            ex.include_usage,
                        )),
                    };
                    Sink::Encode(encoder)
                };
                Stage::Translate {
                    framing: Box::new(framing),
                    decoder: decoder(ex.wire),
                    sink,
                }
            }
        };
        StreamPipeline {
            ex,
            stage,
            failed: false,
            finished: false,
        }
    }

    /// Whether the client gets a stream (else one JSON body at the end).
    pub fn client_stream(&self) -> bool {
        !matches!(
            self.stage,
            Stage::Translate {
                sink: Sink::Aggregate(_),
                ..
            }
        )
    }

    /// Token usage seen so far.
    pub fn usage(&self) -> Option<Usage> {
        match &self.stage {
            Stage::Pass(pass) => pass.acc.usage(),
            Stage::Translate { decoder, .. } => decoder.usage(),
        }
    }

    /// Feeds upstream bytes; appends client bytes to `out`. At `end` the stream is closed
    /// (closing events, or the assembled answer for non-stream clients).
    #[cfg(test)]
    pub fn push(&mut self, chunk: &[u8], end: bool, out: &mut Vec<u8>) {
        if self.push_chunk(chunk, end, out) == Output::Unchanged {
            out.extend_from_slice(chunk);
        }
    }

    /// Feeds one upstream chunk and says what the client gets for it: the chunk itself
    /// ([`Output::Unchanged`], `out` untouched), or the bytes appended to `out`. At `end` the
    /// stream is closed (closing events, or the assembled answer for non-stream clients).
    pub fn push_chunk(&mut self, chunk: &[u8], end: bool, out: &mut Vec<u8>) -> Output {
        if self.finished {
            return Output::Replaced;
        }
        if let Stage::Pass(pass) = &mut self.stage {
            let mut emit = Emit::new(chunk, out);
            if !self.failed {
                if let Err(e) = pass.feed(chunk, &mut emit) {
                    self.failed = true;
                    pass.abort(&mut emit);
                    let mut err = Vec::new();
                    write_pass_error(self.ex.api, &StreamError::upstream(e.to_string()), &mut err);
                    emit.bytes(&err);
                } else if end {
                    pass.close(&mut emit);
                }
            }
            if end {
                self.finished = true;
            }
            return emit.finish();
        }
        self.frame(chunk, out);
        if end {
            self.close(out);
            self.finished = true;
        }
        Output::Replaced
    }

    /// Splits upstream bytes into events and runs each through the translation.
    fn frame(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        let ex = &self.ex;
        let failed = &mut self.failed;
        let Stage::Translate {
            framing,
            decoder,
            sink,
        } = &mut self.stage
        else {
            return;
        };
        let framing_error = match &mut **framing {
            Framing::Sse(parser) => parser
                .feed(chunk, |ev| {
                    if *failed {
                        return;
                    }
                    let Some(data) = ev.data() else { return };
                    let name = ev.is_event().then(|| ev.event_type());
                    let name = name.filter(|n| *n != "message");
                    translate_event(ex, decoder, sink, failed, name, data, out);
                })
                .err()
                .map(|e| StreamError::upstream(e.to_string())),
            Framing::EventStream(frames) => frames
                .push_with(chunk, |msg| {
                    if *failed {
                        return;
                    }
                    if msg.is_error() {
                        let ty = msg.exception_type().or_else(|| msg.header(":error-code"));
                        if let Dec::Bedrock(b) = decoder {
                            let mut events = Vec::new();
                            b.decode_exception(ty, &msg.payload, &mut events);
                            deliver(ex, sink, &events, out);
                        }
                        *failed = true;
                        return;
                    }
                    translate_event(
                        ex,
                        decoder,
                        sink,
                        failed,
                        msg.event_type(),
                        &msg.payload,
                        out,
                    );
                })
                .err()
                .map(|e| StreamError::upstream(format!("bad event-stream: {e}"))),
        };
        if let Some(e) = framing_error {
            self.fail_with(&e, out);
        }
    }

    /// Ends the client stream with an error in the client's protocol (translated streams;
    /// a pass-through stream writes its own in [`StreamPipeline::push_chunk`]).
    fn fail_with(&mut self, e: &StreamError, out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        self.failed = true;
        if let Stage::Translate { sink, .. } = &mut self.stage {
            match sink {
                Sink::Encode(enc) => enc.fail(e, out),
                Sink::Aggregate(agg) => {
                    if let Some(a) = agg.as_mut() {
                        a.push(&e.to_event());
                    }
                }
            }
        }
    }

    /// The upstream ended: flush the framing, then close the client side.
    fn close(&mut self, out: &mut Vec<u8>) {
        let ex = &self.ex;
        let failed = &mut self.failed;
        let mut unfinished_frame = false;
        if let Stage::Translate {
            framing,
            decoder,
            sink,
        } = &mut self.stage
        {
            match &mut **framing {
                Framing::Sse(p) => {
                    let _ = p.finish(|ev| {
                        if *failed {
                            return;
                        }
                        if let Some(data) = ev.data() {
                            let name = ev
                                .is_event()
                                .then(|| ev.event_type())
                                .filter(|n| *n != "message");
                            translate_event(ex, decoder, sink, failed, name, data, out);
                        }
                    });
                }
                Framing::EventStream(d) => unfinished_frame = d.buffered() > 0,
            }
        }
        if unfinished_frame {
            self.fail_with(
                &StreamError::upstream("event-stream ended inside a frame"),
                out,
            );
        }
        let truncated = match &mut self.stage {
            Stage::Translate { decoder, .. } if !self.failed => decoder.get().finish().err(),
            _ => None,
        };
        if let Some(e) = truncated {
            self.fail_with(&e, out);
        }
        if let Stage::Translate { sink, .. } = &mut self.stage {
            match sink {
                Sink::Encode(enc) => {
                    if !enc.is_done() {
                        enc.finish(out);
                    }
                }
                Sink::Aggregate(agg) => {
                    let Some(agg) = agg.take() else { return };
                    match (*agg).finish() {
                        Ok(chat) => match self.ex.render_chat(chat) {
                            Ok(body) => out.extend_from_slice(&body),
                            Err(e) => out.extend_from_slice(&self.ex.error_body(
                                e.status,
                                e.kind,
                                &e.message,
                                e.code.as_deref(),
                            )),
                        },
                        Err(e) => out.extend_from_slice(&self.ex.error_body(
                            e.status,
                            &e.kind,
                            &e.message,
                            e.code.as_deref(),
                        )),
                    }
                }
            }
        }
    }
}

/// Runs one upstream event through the decoder and the sink.
fn translate_event(
    ex: &Exchange,
    decoder: &mut Dec,
    sink: &mut Sink,
    failed: &mut bool,
    name: Option<&str>,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    let mut events = Vec::new();
    let decoded = decoder.get().decode(name, data, &mut events);
    deliver(ex, sink, &events, out);
    if let Err(e) = decoded {
        match sink {
            Sink::Encode(enc) => enc.fail(&e, out),
            Sink::Aggregate(Some(a)) => a.push(&e.to_event()),
            Sink::Aggregate(None) => {}
        }
        *failed = true;
    }
}

/// Hands decoded events to the sink, with the reported model pinned in `Start`.
fn deliver(ex: &Exchange, sink: &mut Sink, events: &[Event<'_>], out: &mut Vec<u8>) {
    for e in events {
        let pinned;
        let e = match (e, &ex.report_model) {
            (Event::Start { id, .. }, Some(m)) => {
                pinned = Event::Start {
                    id: id.clone(),
                    model: Some(m.as_str().into()),
                };
                &pinned
            }
            _ => e,
        };
        match sink {
            Sink::Encode(enc) => enc.encode(e, out),
            Sink::Aggregate(Some(a)) => a.push(e),
            Sink::Aggregate(None) => {}
        }
    }
}

/// An in-stream error for a pass-through client, in its protocol.
fn write_pass_error(api: Api, e: &StreamError, out: &mut Vec<u8>) {
    let (name, v) = match api {
        Api::AnthropicMessages => (
            Some("error"),
            json!({"type": "error", "error": {"type": aigw::llm::stream::anthropic_error_type(e.status), "message": e.message}}),
        ),
        Api::Responses => (
            Some("error"),
            json!({"type": "error", "code": e.code, "message": e.message, "param": null}),
        ),
        _ => (
            None,
            json!({"error": {"message": e.message, "type": e.kind, "param": null, "code": e.code}}),
        ),
    };
    if let Some(n) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(n.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    let _ = serde_json::to_writer(&mut *out, &v);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(api: Api, wire: Wire, client_stream: bool) -> Exchange {
        Exchange {
            api,
            wire,
            client_stream,
            upstream_stream: true,
            include_usage: false,
            report_model: Some("alias".into()),
            upstream_model: "real".into(),
            id: "chatcmpl-1".into(),
            created: 1,
        }
    }

    const OPENAI_STREAM: &str = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"real-2024\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n",
        "data: [DONE]\n\n"
    );

    #[test]
    fn openai_pass_through_strips_usage_chunk_at_every_split() {
        let bytes = OPENAI_STREAM.as_bytes();
        for k in 1..=bytes.len() {
            let mut p =
                StreamPipeline::new(ex(Api::ChatCompletions, Wire::ChatCompletions, true), 4096);
            let mut out = Vec::new();
            let chunks: Vec<&[u8]> = bytes.chunks(k).collect();
            for (i, c) in chunks.iter().enumerate() {
                p.push(c, i + 1 == chunks.len(), &mut out);
            }
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.matches("data: ").count(), 3, "k={k}: {text}");
            assert!(!text.contains("prompt_tokens"));
            assert!(!text.contains("real-2024") && text.contains("\"model\":\"alias\""));
            assert_eq!(p.usage().unwrap().total, 6);
        }
    }

    /// An OpenAI stream with what a pass-through keeps byte for byte: a byte order mark, a
    /// comment, `id:` and `event:` lines, CRLF and CR line ends, an event whose data spans two
    /// lines (its model value on the first, with spaces around the colon); then the finishing
    /// chunk, the usage-only chunk and `[DONE]`.
    const FRAMED: &str = concat!(
        "\u{feff}: keep-alive\r\n",
        "id: 1\r\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\r\n\r\n",
        ": ping\n\n",
        "event: message\nid: 2\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\" : \"real-2024\",\n",
        "data: \"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\r\r",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );

    /// LF framing with one data line per event (the fast scan's case): comments, `id:` and
    /// `event:` lines, spaces around a colon, `"model"` quoted inside a text.
    const LF_ONLY: &str = concat!(
        ": keep-alive\n",
        "id: 1\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        ": ping\n\n",
        "event: message\nid: 2\ndata: {\"id\":\"c\",\"model\" : \"real-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \\\"model\\\": \\\"x\\\", \\\"usage\\\": {}\"},\"finish_reason\": null}],\"usage\" : null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );

    /// LF framing, then an event with two data lines (the fast scan hands over mid-stream).
    const SWITCHES: &str = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" the\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "event: message\nid: 2\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\" : \"real-2024\",\n",
        "data: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"re\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );

    /// Streams for the split tests: exact path throughout, fast scan throughout, both.
    const STREAMS: [&str; 3] = [FRAMED, LF_ONLY, SWITCHES];

    /// The usage-only chunk of [`FRAMED`].
    const USAGE_ONLY: &str = "data: {\"id\":\"c\",\"model\":\"real-2024\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n";

    fn pass_ex(include_usage: bool, pin: Option<&str>) -> Exchange {
        Exchange {
            include_usage,
            report_model: pin.map(String::from),
            ..ex(Api::ChatCompletions, Wire::ChatCompletions, true)
        }
    }

    /// Feeds `input` in chunks of `k`: what the client got, and each chunk's [`Output`].
    fn pass_at(ex: Exchange, input: &[u8], k: usize) -> (Vec<u8>, Vec<Output>, Option<Usage>) {
        let mut p = StreamPipeline::new(ex, 4096);
        let mut client = Vec::new();
        let mut outputs = Vec::new();
        let chunks: Vec<&[u8]> = input.chunks(k).collect();
        for (i, c) in chunks.iter().enumerate() {
            let mut out = Vec::new();
            let o = p.push_chunk(c, i + 1 == chunks.len(), &mut out);
            match o {
                Output::Unchanged => {
                    assert!(out.is_empty(), "k={k}: Unchanged with bytes written");
                    client.extend_from_slice(c);
                }
                Output::Replaced => client.extend_from_slice(&out),
            }
            outputs.push(o);
        }
        (client, outputs, p.usage())
    }

    #[test]
    fn pass_through_forwards_the_upstream_bytes_at_every_split() {
        for stream in STREAMS {
            let input = stream.as_bytes();
            assert!(stream.contains(USAGE_ONLY));
            let stripped = stream.replace(USAGE_ONLY, "");
            let aliased = stripped.replace("\"real-2024\"", "\"alias\"");
            assert!(aliased.contains("\"alias\"") && !aliased.contains("real-2024"));
            // Pinned to a prefix of the upstream's name, or to a name it is a prefix of: the
            // value agrees with the name for a while, then is rewritten.
            let shorter = stripped.replace("\"real-2024\"", "\"real-20\"");
            let longer = stripped.replace("\"real-2024\"", "\"real-2024-long\"");
            let cases = [
                (
                    "usage not asked, no pin",
                    pass_ex(false, None),
                    stripped.clone(),
                ),
                (
                    "usage asked, no pin",
                    pass_ex(true, None),
                    stream.to_string(),
                ),
                (
                    "usage not asked, pinned",
                    pass_ex(false, Some("alias")),
                    aliased,
                ),
                (
                    "pinned to a shorter name",
                    pass_ex(false, Some("real-20")),
                    shorter,
                ),
                (
                    "pinned to a longer name",
                    pass_ex(false, Some("real-2024-long")),
                    longer,
                ),
                (
                    "pinned to the upstream's name",
                    pass_ex(false, Some("real-2024")),
                    stripped,
                ),
            ];
            for (name, ex, want) in cases {
                for k in 1..=input.len() {
                    let (got, _, usage) = pass_at(ex.clone(), input, k);
                    assert_eq!(String::from_utf8_lossy(&got), want, "{name}, chunks of {k}");
                    let u = usage.unwrap_or_else(|| panic!("{name}, k={k}: no usage"));
                    assert_eq!((u.input, u.output, u.total), (5, 2, 7), "{name}, k={k}");
                }
            }
        }
    }

    #[test]
    fn pass_through_leaves_chunks_alone_until_something_changes() {
        for stream in STREAMS {
            let input = stream.as_bytes();
            let usage_start = stream.find(USAGE_ONLY).unwrap();
            let usage_end = usage_start + USAGE_ONLY.len();
            // A chunk left alone: before the usage-only chunk, or `[DONE]` whole right after it.
            let clear = |start: usize, end: usize| {
                end <= usage_start || (start == usage_end && end == input.len())
            };
            for k in 1..=input.len() {
                // Nothing changes: every chunk is left as it came.
                let (_, outputs, _) = pass_at(pass_ex(true, None), input, k);
                assert!(
                    outputs.iter().all(|o| *o == Output::Unchanged),
                    "k={k}: {outputs:?}"
                );
                // The usage-only chunk is dropped: the chunks around it are replaced.
                let (_, outputs, _) = pass_at(pass_ex(false, None), input, k);
                for (i, o) in outputs.iter().enumerate() {
                    let (start, end) = (i * k, ((i + 1) * k).min(input.len()));
                    assert_eq!(
                        *o == Output::Unchanged,
                        clear(start, end),
                        "k={k}, chunk {i}"
                    );
                }
                // Pinned to the name the upstream reports: a model value cut by a chunk boundary
                // agrees with the name so far and is not held back either.
                let (_, outputs, _) = pass_at(pass_ex(false, Some("real-2024")), input, k);
                for (i, o) in outputs.iter().enumerate() {
                    let (start, end) = (i * k, ((i + 1) * k).min(input.len()));
                    assert_eq!(
                        *o == Output::Unchanged,
                        clear(start, end),
                        "k={k}, chunk {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn pass_through_block_without_its_blank_line_at_the_end() {
        let head = "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
        // The usage-only chunk cut off at the end is still left out; `[DONE]` cut off passes.
        for (tail, kept) in [
            (
                "data: {\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n",
                false,
            ),
            ("data: [DONE]", true),
        ] {
            let input = format!("{head}{tail}");
            for k in 1..=input.len() {
                let (got, _, _) = pass_at(pass_ex(false, None), input.as_bytes(), k);
                let want = if kept { input.clone() } else { head.to_string() };
                assert_eq!(String::from_utf8_lossy(&got), want, "k={k}");
            }
        }
    }

    #[test]
    fn pass_through_event_over_the_limit_ends_with_an_error_event() {
        let big = format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
            "x".repeat(200)
        );
        let input = format!("data: {{\"choices\":[{{\"index\":0}}]}}\n\n{big}data: [DONE]\n\n");
        // (The limit is on bytes held across chunks: a big event inside one chunk passes.)
        for k in [1, 7, 64] {
            let mut p = StreamPipeline::new(pass_ex(true, None), 64);
            let mut client = Vec::new();
            let chunks: Vec<&[u8]> = input.as_bytes().chunks(k).collect();
            for (i, c) in chunks.iter().enumerate() {
                p.push(c, i + 1 == chunks.len(), &mut client);
            }
            let mut parser = Parser::new(1 << 20);
            let mut data = Vec::new();
            parser
                .feed(&client, |ev| {
                    if let Some(d) = ev.data() {
                        data.push(String::from_utf8_lossy(d).into_owned());
                    }
                })
                .unwrap();
            assert_eq!(
                data.first().map(String::as_str),
                Some("{\"choices\":[{\"index\":0}]}"),
                "k={k}"
            );
            let last: serde_json::Value = serde_json::from_str(data.last().unwrap()).unwrap();
            assert!(
                last["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("64 bytes"),
                "k={k}: {last}"
            );
            assert!(!data.iter().any(|d| d == "[DONE]"), "k={k}");
        }
    }

    const GEMINI_STREAM: &str = concat!(
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}],\"role\": \"model\"}}],\"usageMetadata\": {\"promptTokenCount\": 4,\"totalTokenCount\": 4},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"lo\"}],\"role\": \"model\"},\"finishReason\": \"STOP\"}],\"usageMetadata\": {\"promptTokenCount\": 4,\"candidatesTokenCount\": 2,\"totalTokenCount\": 6},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n"
    );

    #[test]
    fn gemini_stream_aggregated_for_a_non_stream_anthropic_client() {
        let mut p = StreamPipeline::new(
            ex(Api::AnthropicMessages, Wire::GeminiGenerateContent, false),
            4096,
        );
        let mut out = Vec::new();
        p.push(GEMINI_STREAM.as_bytes(), true, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["content"][0]["text"], "Hello");
        assert_eq!(v["model"], "alias");
        assert_eq!(v["usage"]["output_tokens"], 2);
        assert_eq!(v["stop_reason"], "end_turn");
    }

    #[test]
    fn gemini_stream_to_anthropic_stream() {
        let mut p = StreamPipeline::new(
            ex(Api::AnthropicMessages, Wire::GeminiGenerateContent, true),
            4096,
        );
        let mut out = Vec::new();
        for b in GEMINI_STREAM.as_bytes() {
            p.push(std::slice::from_ref(b), false, &mut out);
        }
        p.push(b"", true, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("event: message_start"), "{text}");
        assert!(
            text.contains("\"text\":\"Hel\"") && text.contains("\"text\":\"lo\""),
            "{text}"
        );
        assert!(
            text.trim_end().ends_with("{\"type\":\"message_stop\"}"),
            "{text}"
        );
        assert!(text.contains("\"model\":\"alias\""), "{text}");
    }
}
