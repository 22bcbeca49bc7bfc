//! Incremental translation of one streamed answer on the SDK's neutral stream model
//! ([`aigw::llm::stream`]):
//!
//! framing (SSE parser, or the AWS event-stream decoder for Bedrock) → the upstream dialect's
//! [`Decoder`] → the client dialect's [`Encoder`] (or, for a client that did not ask for a
//! stream, an [`Aggregator`] that builds one answer at the end).
//!
//! When both sides speak the same dialect the events pass untouched except for the usage read
//! and the reported model name.

use crate::providers::bedrock::eventstream::Decoder as EventStreamFrames;
use crate::providers::{upstream, Protocol as Wire};
use crate::request::ProxyApi;
use crate::response::{rewrite_model, Exchange};
use aigw::llm::stream::{
    Aggregator, AnthropicEncoder, BedrockDecoder, Decoder, Encoder, Event, OpenAiEncoder,
    ResponsesEncoder, StreamError,
};
use aigw::llm::Api;
use aigw::llm::{Usage, UsageAccumulator, UsageProtocol};
use aigw::sse::Parser;
use serde_json::json;

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
    /// Same dialect on both sides: events pass (usage read, model rewritten).
    Pass(Box<UsageAccumulator>),
    /// Decode → encode.
    Translate { decoder: Dec, sink: Sink },
}

/// Incremental translation of one streamed response.
pub struct StreamPipeline {
    ex: Exchange,
    framing: Framing,
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
            Some(protocol) => Stage::Pass(Box::new(UsageAccumulator::new(protocol))),
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
                    decoder: decoder(ex.wire),
                    sink,
                }
            }
        };
        StreamPipeline {
            ex,
            framing,
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
            Stage::Pass(acc) => acc.usage(),
            Stage::Translate { decoder, .. } => decoder.usage(),
        }
    }

    /// Feeds upstream bytes; appends client bytes to `out`. At `end` the stream is closed
    /// (closing events, or the assembled answer for non-stream clients).
    pub fn push(&mut self, chunk: &[u8], end: bool, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.frame(chunk, out);
        if end {
            self.close(out);
            self.finished = true;
        }
    }

    /// Splits upstream bytes into events and runs each through the stage.
    fn frame(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        let ex = &self.ex;
        let stage = &mut self.stage;
        let failed = &mut self.failed;
        let framing_error = match &mut self.framing {
            Framing::Sse(parser) => parser
                .feed(chunk, |ev| {
                    if *failed {
                        return;
                    }
                    let Some(data) = ev.data() else { return };
                    let name = ev.is_event().then(|| ev.event_type());
                    let name = name.filter(|n| *n != "message");
                    on_event(ex, stage, failed, name, data, out);
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
                        if let Stage::Translate {
                            decoder: Dec::Bedrock(b),
                            sink,
                        } = stage
                        {
                            let mut events = Vec::new();
                            b.decode_exception(ty, &msg.payload, &mut events);
                            deliver(ex, sink, &events, out);
                        }
                        *failed = true;
                        return;
                    }
                    on_event(ex, stage, failed, msg.event_type(), &msg.payload, out);
                })
                .err()
                .map(|e| StreamError::upstream(format!("bad event-stream: {e}"))),
        };
        if let Some(e) = framing_error {
            self.fail_with(&e, out);
        }
    }

    /// Ends the client stream with an error in the client's protocol.
    fn fail_with(&mut self, e: &StreamError, out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        self.failed = true;
        match &mut self.stage {
            Stage::Translate { sink, .. } => match sink {
                Sink::Encode(enc) => enc.fail(e, out),
                Sink::Aggregate(agg) => {
                    if let Some(a) = agg.as_mut() {
                        a.push(&e.to_event());
                    }
                }
            },
            Stage::Pass(_) => write_pass_error(self.ex.api, e, out),
        }
    }

    /// The upstream ended: flush the framing, then close the client side.
    fn close(&mut self, out: &mut Vec<u8>) {
        if let Framing::Sse(p) = &mut self.framing {
            let ex = &self.ex;
            let stage = &mut self.stage;
            let failed = &mut self.failed;
            let _ = p.finish(|ev| {
                if *failed {
                    return;
                }
                if let Some(data) = ev.data() {
                    let name = ev
                        .is_event()
                        .then(|| ev.event_type())
                        .filter(|n| *n != "message");
                    on_event(ex, stage, failed, name, data, out);
                }
            });
        }
        if let Framing::EventStream(d) = &self.framing {
            if d.buffered() > 0 {
                self.fail_with(
                    &StreamError::upstream("event-stream ended inside a frame"),
                    out,
                );
            }
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

/// Runs one upstream event through the stage.
fn on_event(
    ex: &Exchange,
    stage: &mut Stage,
    failed: &mut bool,
    name: Option<&str>,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    match stage {
        Stage::Pass(acc) => pass_event(ex, acc, name, data, out),
        Stage::Translate { decoder, sink } => {
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

/// Pass-through of one event: usage read, the OpenAI usage-only chunk dropped when the client
/// did not ask for it, the model name rewritten when pinned.
fn pass_event(
    ex: &Exchange,
    acc: &mut UsageAccumulator,
    name: Option<&str>,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    let had_usage = acc.feed(data);
    if had_usage
        && acc.protocol() == UsageProtocol::OpenAi
        && !ex.include_usage
        && is_usage_only_chunk(data)
    {
        return;
    }
    let rewritten = ex
        .report_model
        .as_deref()
        .and_then(|m| rewrite_model(data, m));
    let data = rewritten.as_deref().unwrap_or(data);
    if let Some(n) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(n.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

/// An OpenAI chunk whose `choices` is empty (the usage chunk).
fn is_usage_only_chunk(data: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct C {
        #[serde(default)]
        choices: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<C>(data).is_ok_and(|c| c.choices.is_empty())
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
