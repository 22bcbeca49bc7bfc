//! Response side: translation of provider answers back into the client's protocol — whole
//! bodies (non-streamed answers and errors) and streams, event by event — plus usage
//! collection and the reported model name.
//!
//! A stream runs through up to four steps, each incremental:
//! framing (SSE parser, or the AWS event-stream decoder for Bedrock) → a translator to OpenAI
//! chunks or to Anthropic events (or pass-through) → for Anthropic clients of
//! Gemini/Bedrock/DashScope a
//! second translator OpenAI → Anthropic → for clients that did not ask for a stream, an
//! [`Aggregator`] that builds one JSON answer at the end.

use crate::aggregate::Aggregator;
use crate::anthropic_to_openai::chat_response_to_anthropic;
use crate::bedrock::converse::{converse_response_to_chat, ConverseResponse};
use crate::bedrock::eventstream::Decoder;
use crate::dashscope::dashscope_response_to_chat;
use crate::error::{parse_upstream_error, ErrorDialect, TranslateError};
use crate::gemini::gemini_response_to_chat;
use crate::openai_to_anthropic::anthropic_response_to_chat;
use crate::providers::Protocol as Wire;
use crate::request::ClientApi;
use crate::stream::{
    AnthropicToOpenAi, BedrockToOpenAi, DashScopeToOpenAi, GeminiToOpenAi, OpenAiToAnthropic,
    StreamTranslator,
};
use crate::responses_api::{chat_response_to_responses, responses_response_to_chat};
use aigw::llm::anthropic as an;
use aigw::llm::openai as oa;
use aigw::llm::responses as rs;
use aigw::llm::{Usage, UsageAccumulator, UsageProtocol};
use aigw::sse::Parser;

/// What the response side needs to know about the exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The API the client called.
    pub api: ClientApi,
    /// The provider's protocol.
    pub wire: Wire,
    /// The client asked for a stream.
    pub client_stream: bool,
    /// The upstream was asked for a stream.
    pub upstream_stream: bool,
    /// The client asked for the OpenAI usage chunk.
    pub include_usage: bool,
    /// The model name to report (`None`: whatever the upstream says).
    pub report_model: Option<String>,
    /// The upstream model (fallback name for translators).
    pub upstream_model: String,
    /// Response id to use when the upstream gives none.
    pub id: String,
    /// Unix seconds for `created`.
    pub created: u64,
}

impl Exchange {
    /// The dialect of the provider's error bodies.
    pub fn error_dialect(&self) -> ErrorDialect {
        match self.wire {
            Wire::Anthropic => ErrorDialect::Anthropic,
            Wire::Gemini => ErrorDialect::Gemini,
            Wire::BedrockConverse => ErrorDialect::Bedrock,
            Wire::DashScope => ErrorDialect::DashScope,
            Wire::OpenAi | Wire::Responses => ErrorDialect::OpenAi,
        }
    }

    fn usage_protocol(&self) -> UsageProtocol {
        match self.wire {
            Wire::Anthropic => UsageProtocol::Anthropic,
            Wire::Gemini => UsageProtocol::Gemini,
            Wire::BedrockConverse => UsageProtocol::Bedrock,
            Wire::Responses => UsageProtocol::Responses,
            Wire::OpenAi | Wire::DashScope => UsageProtocol::OpenAi,
        }
    }

    /// Renders an error in the client's protocol.
    pub fn error_body(
        &self,
        status: u16,
        kind: &str,
        message: &str,
        code: Option<&str>,
    ) -> Vec<u8> {
        let v = if self.api.is_anthropic() {
            serde_json::json!({"type":"error","error":{"type": crate::error::anthropic_type_for_status(status), "message": message}})
        } else {
            serde_json::json!({"error":{"message": message, "type": kind, "param": null, "code": code}})
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// The client status and body for a provider error (`aws_error_type`: Bedrock's
    /// `x-amzn-errortype`).
    pub fn translate_error(
        &self,
        status: u16,
        body: &[u8],
        aws_error_type: Option<&str>,
    ) -> (u16, Vec<u8>) {
        let e = parse_upstream_error(self.error_dialect(), status, body, aws_error_type);
        let body = if self.api.is_anthropic() {
            e.to_anthropic_body().into_bytes()
        } else {
            e.to_openai_body().into_bytes()
        };
        (e.status, body)
    }

    /// The client status for a provider error status, known at response headers.
    pub fn error_status(&self, status: u16, aws_error_type: Option<&str>) -> u16 {
        parse_upstream_error(self.error_dialect(), status, b"", aws_error_type).status
    }

    /// Translates a whole (non-streamed, successful) upstream body. Returns the client body and
    /// the usage.
    pub fn translate_whole(&self, body: &[u8]) -> Result<(Vec<u8>, Option<Usage>), TranslateError> {
        let bad = |e: serde_json::Error| {
            TranslateError::upstream(format!("unparseable upstream response: {e}"))
        };
        if self.wire == Wire::DashScope {
            let (chat, usage) =
                dashscope_response_to_chat(body, &self.id, &self.upstream_model, self.created)?;
            return Ok((self.render_chat(chat)?, usage));
        }
        let usage = aigw::llm::usage::extract(self.usage_protocol(), body);
        let chat: oa::ChatCompletion = match (self.wire, self.api) {
            (Wire::OpenAi, ClientApi::Messages | ClientApi::Responses) => {
                serde_json::from_slice(body).map_err(bad)?
            }
            (Wire::OpenAi, _)
            | (Wire::Anthropic, ClientApi::Messages)
            | (Wire::Responses, ClientApi::Responses) => {
                let out = match &self.report_model {
                    Some(m) => rewrite_model(body, m).unwrap_or_else(|| body.to_vec()),
                    None => body.to_vec(),
                };
                return Ok((out, usage));
            }
            (Wire::Anthropic, _) => {
                let r: an::MessagesResponse = serde_json::from_slice(body).map_err(bad)?;
                anthropic_response_to_chat(&r, self.created)?
            }
            (Wire::Gemini, _) => {
                let r = serde_json::from_slice(body).map_err(bad)?;
                gemini_response_to_chat(&r, &self.id, &self.upstream_model, self.created)?
            }
            (Wire::BedrockConverse, _) => {
                let r: ConverseResponse = serde_json::from_slice(body).map_err(bad)?;
                converse_response_to_chat(&r, &self.id, &self.upstream_model, self.created)?
            }
            (Wire::Responses, _) => {
                let r: rs::Response = serde_json::from_slice(body).map_err(bad)?;
                responses_response_to_chat(&r, self.created)?
            }
            (Wire::DashScope, _) => {
                return Err(TranslateError::upstream(
                    "dashscope answers are translated above",
                ))
            }
        };
        Ok((self.render_chat(chat)?, usage))
    }

    /// Serializes a chat completion for the client (Anthropic clients get a message).
    fn render_chat(&self, mut chat: oa::ChatCompletion) -> Result<Vec<u8>, TranslateError> {
        if let Some(m) = &self.report_model {
            chat.model.clone_from(m);
        }
        let ser = |e: serde_json::Error| TranslateError::upstream(format!("cannot serialize: {e}"));
        if self.api.is_anthropic() {
            let mut msg = chat_response_to_anthropic(&chat)?;
            if let Some(m) = &self.report_model {
                msg.model.clone_from(m);
            }
            serde_json::to_vec(&msg).map_err(ser)
        } else if self.api == ClientApi::Responses {
            serde_json::to_vec(&chat_response_to_responses(&chat)?).map_err(ser)
        } else {
            serde_json::to_vec(&chat).map_err(ser)
        }
    }
}

/// How upstream bytes are framed.
enum Framing {
    Sse(Parser),
    EventStream(Decoder),
}

/// The first translation step.
enum Stage {
    /// OpenAI → OpenAI or Anthropic → Anthropic: events pass (model rewritten, usage read).
    Pass(UsageAccumulator),
    /// A translator.
    Translate(Box<dyn StreamTranslator>),
}

/// Incremental translation of one streamed response.
pub struct StreamPipeline {
    ex: Exchange,
    framing: Framing,
    stage: Stage,
    /// OpenAI → Anthropic after `stage` (Anthropic clients of Gemini/Bedrock/DashScope).
    second: Option<(Parser, OpenAiToAnthropic)>,
    /// Non-stream clients: the answer is assembled here.
    aggregate: Option<(Parser, Aggregator)>,
    scratch: Vec<u8>,
    failed: bool,
    finished: bool,
}

impl StreamPipeline {
    /// A pipeline for `ex`; `max_event` bounds one event (SSE) or frame (event-stream).
    pub fn new(ex: Exchange, max_event: usize) -> StreamPipeline {
        let framing = if ex.wire == Wire::BedrockConverse {
            Framing::EventStream(Decoder::new(max_event))
        } else {
            Framing::Sse(Parser::new(max_event))
        };
        // Translators emit the upstream's model unless a name is pinned by rewrite below.
        let model = ex.upstream_model.as_str();
        let include_usage = ex.include_usage;
        let stage = match (ex.wire, ex.api.is_anthropic()) {
            (Wire::OpenAi, false) => Stage::Pass(UsageAccumulator::new(UsageProtocol::OpenAi)),
            (Wire::Anthropic, true) => Stage::Pass(UsageAccumulator::new(UsageProtocol::Anthropic)),
            // Replaced by the neutral stream layer (decode → encode) in the next step.
            (Wire::Responses, _) => Stage::Pass(UsageAccumulator::new(UsageProtocol::Responses)),
            (Wire::OpenAi, true) => {
                Stage::Translate(Box::new(OpenAiToAnthropic::new(&ex.id, model)))
            }
            (Wire::Anthropic, false) => Stage::Translate(Box::new(AnthropicToOpenAi::new(
                &ex.id,
                model,
                ex.created,
                include_usage,
            ))),
            (Wire::Gemini, _) => Stage::Translate(Box::new(GeminiToOpenAi::new(
                &ex.id,
                model,
                ex.created,
                include_usage,
            ))),
            (Wire::BedrockConverse, _) => Stage::Translate(Box::new(BedrockToOpenAi::new(
                &ex.id,
                model,
                ex.created,
                include_usage,
            ))),
            (Wire::DashScope, _) => Stage::Translate(Box::new(DashScopeToOpenAi::new(
                &ex.id,
                model,
                ex.created,
                include_usage,
            ))),
        };
        // Non-stream clients aggregate the OpenAI chunks of the first stage instead.
        let needs_second = ex.client_stream
            && ex.api.is_anthropic()
            && matches!(
                ex.wire,
                Wire::Gemini | Wire::BedrockConverse | Wire::DashScope
            );
        let second = needs_second.then(|| {
            (
                Parser::new(max_event),
                OpenAiToAnthropic::new(&ex.id, model),
            )
        });
        let aggregate = (!ex.client_stream).then(|| (Parser::new(max_event), Aggregator::new()));
        StreamPipeline {
            ex,
            framing,
            stage,
            second,
            aggregate,
            scratch: Vec::new(),
            failed: false,
            finished: false,
        }
    }

    /// Whether the client gets a stream (else one JSON body at the end).
    pub fn client_stream(&self) -> bool {
        self.aggregate.is_none()
    }

    /// Token usage seen so far.
    pub fn usage(&self) -> Option<Usage> {
        match &self.stage {
            Stage::Pass(acc) => acc.usage(),
            Stage::Translate(t) => t.usage(),
        }
    }

    /// Feeds upstream bytes; appends client bytes to `out`. At `end` the stream is closed
    /// (closing events, or the assembled answer for non-stream clients).
    pub fn push(&mut self, chunk: &[u8], end: bool, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        let mut step = std::mem::take(&mut self.scratch);
        step.clear();
        self.frame(chunk, &mut step);
        if end {
            self.close(&mut step);
        }
        self.deliver(&step, end, out);
        self.scratch = step;
        if end {
            self.finished = true;
        }
    }

    /// Splits upstream bytes into events and runs the first stage.
    fn frame(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        let ex = &self.ex;
        let stage = &mut self.stage;
        let failed = &mut self.failed;
        match &mut self.framing {
            Framing::Sse(parser) => {
                let r = parser.feed(chunk, |ev| {
                    if *failed {
                        return;
                    }
                    let Some(data) = ev.data() else { return };
                    let name = ev.is_event().then(|| ev.event_type());
                    let name = name.filter(|n| *n != "message");
                    match stage {
                        Stage::Pass(acc) => pass_event(ex, acc, name, data, out),
                        Stage::Translate(t) => {
                            if t.on_event(name, data, out).is_err() {
                                *failed = true;
                            }
                        }
                    }
                });
                if let Err(e) = r {
                    self.fail_with(&TranslateError::upstream(e.to_string()), out);
                }
            }
            Framing::EventStream(dec) => {
                let mut bedrock_err = None;
                let r = dec.push_with(chunk, |msg| {
                    if *failed {
                        return;
                    }
                    if let Stage::Translate(t) = stage {
                        // Only a BedrockToOpenAi is built for event-stream framing; feed it
                        // through the trait with the event type; exceptions are handled by
                        // `on_message`, which the trait cannot reach, so map them here.
                        if msg.is_error() {
                            let ty = msg.exception_type().or_else(|| msg.header(":error-code"));
                            let e =
                                parse_upstream_error(ErrorDialect::Bedrock, 500, &msg.payload, ty);
                            bedrock_err = Some(TranslateError {
                                status: e.status,
                                kind: e.kind,
                                message: e.message,
                                param: None,
                                code: e.code,
                            });
                            *failed = true;
                            return;
                        }
                        if t.on_event(msg.event_type(), &msg.payload, out).is_err() {
                            *failed = true;
                        }
                    }
                });
                if let Some(e) = bedrock_err {
                    self.failed = false;
                    self.fail_with(&e, out);
                }
                if let Err(e) = r {
                    self.fail_with(
                        &TranslateError::upstream(format!("bad event-stream: {e}")),
                        out,
                    );
                }
            }
        }
    }

    /// Writes an error event in the first stage's output protocol and stops.
    fn fail_with(&mut self, e: &TranslateError, out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        self.failed = true;
        let anthropic_out = matches!(self.stage, Stage::Pass(_)) && self.ex.api.is_anthropic()
            || matches!(self.stage, Stage::Translate(_))
                && self.ex.api.is_anthropic()
                && self.second.is_none();
        if anthropic_out {
            let v = serde_json::json!({"type":"error","error":{"type": crate::error::anthropic_type_for_status(e.status),"message": e.message}});
            crate::stream::write_event(out, "error", &v);
        } else {
            let v = serde_json::json!({"error":{"message": e.message,"type": e.kind,"param": null,"code": e.code}});
            crate::stream::write_data(out, &v);
        }
    }

    /// Ends the first stage.
    fn close(&mut self, out: &mut Vec<u8>) {
        if let Framing::Sse(p) = &mut self.framing {
            let ex = &self.ex;
            let stage = &mut self.stage;
            let failed = self.failed;
            let _ = p.finish(|ev| {
                if failed {
                    return;
                }
                if let Some(data) = ev.data() {
                    let name = ev
                        .is_event()
                        .then(|| ev.event_type())
                        .filter(|n| *n != "message");
                    match stage {
                        Stage::Pass(acc) => pass_event(ex, acc, name, data, out),
                        Stage::Translate(t) => {
                            let _ = t.on_event(name, data, out);
                        }
                    }
                }
            });
        }
        if let Framing::EventStream(d) = &self.framing {
            if d.buffered() > 0 && !self.failed {
                self.fail_with(
                    &TranslateError::upstream("event-stream ended inside a frame"),
                    out,
                );
            }
        }
        if let Stage::Translate(t) = &mut self.stage {
            if !self.failed {
                let _ = t.finish(out);
            }
        }
    }

    /// Runs the later stages over the first stage's output and writes the client bytes.
    fn deliver(&mut self, step: &[u8], end: bool, out: &mut Vec<u8>) {
        let mut buf;
        let mut data: &[u8] = step;
        if let Some((parser, t)) = &mut self.second {
            buf = Vec::new();
            let _ = parser.feed(data, |ev| {
                if let Some(d) = ev.data() {
                    let name = ev.is_event().then(|| ev.event_type());
                    let _ = t.on_event(name, d, &mut buf);
                }
            });
            if end && !t.is_done() {
                let _ = t.finish(&mut buf);
            }
            data = &buf;
        }
        match &mut self.aggregate {
            None => {
                // Pin the reported model in translated output (pass-through events were
                // rewritten one by one already).
                match (&self.ex.report_model, &self.stage) {
                    (Some(m), Stage::Translate(_)) => rewrite_sse_models(data, m, out),
                    _ => out.extend_from_slice(data),
                }
            }
            Some((parser, agg)) => {
                // Only Gemini/Bedrock/DashScope streams are aggregated: their first stage writes OpenAI
                // chunks whatever the client speaks; `render_chat` converts at the end.
                let _ = parser.feed(data, |ev| {
                    if let Some(d) = ev.data() {
                        agg.feed(d);
                    }
                });
                if end {
                    let usage = match &self.stage {
                        Stage::Pass(acc) => acc.usage(),
                        Stage::Translate(t) => t.usage(),
                    };
                    let agg = std::mem::take(agg);
                    match agg.finish(usage).and_then(|c| self.ex.render_chat(c)) {
                        Ok(body) => out.extend_from_slice(&body),
                        Err(e) => out.extend_from_slice(&self.ex.error_body(
                            e.status,
                            e.kind,
                            &e.message,
                            e.code.as_deref(),
                        )),
                    }
                }
            }
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
    if had_usage && !ex.api.is_anthropic() && !ex.include_usage && is_usage_only_chunk(data) {
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

/// Rewrites the `model` of every SSE event in `data` (complete events only, as translators
/// write them).
fn rewrite_sse_models(data: &[u8], model: &str, out: &mut Vec<u8>) {
    let mut rest = data;
    while let Some(at) = find(rest, b"data: ") {
        let (head, tail) = rest.split_at(at + 6);
        out.extend_from_slice(head);
        let line_end = tail.iter().position(|&b| b == b'\n').unwrap_or(tail.len());
        let (line, after) = tail.split_at(line_end);
        match rewrite_model(line, model) {
            Some(r) => out.extend_from_slice(&r),
            None => out.extend_from_slice(line),
        }
        rest = after;
    }
    out.extend_from_slice(rest);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Replaces the value of the first `"model"` key of a JSON text with `model`; `None` when
/// there is no such key with a string value (or it already says `model`).
pub fn rewrite_model(json: &[u8], model: &str) -> Option<Vec<u8>> {
    let mut i = 0;
    let n = json.len();
    while i < n {
        if json.get(i) != Some(&b'"') {
            i += 1;
            continue;
        }
        // A string starts at i; find its end.
        let start = i;
        let end = string_end(json, i)?;
        let is_model_key = json.get(start + 1..end) == Some(b"model".as_slice());
        i = end + 1;
        if !is_model_key {
            continue;
        }
        let mut j = i;
        while json.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if json.get(j) != Some(&b':') {
            continue;
        }
        j += 1;
        while json.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if json.get(j) != Some(&b'"') {
            continue;
        }
        let vend = string_end(json, j)?;
        let escaped = serde_json::to_string(model).ok()?;
        if json.get(j..=vend) == Some(escaped.as_bytes()) {
            return None;
        }
        let mut out = Vec::with_capacity(n + escaped.len());
        out.extend_from_slice(json.get(..j)?);
        out.extend_from_slice(escaped.as_bytes());
        out.extend_from_slice(json.get(vend + 1..)?);
        return Some(out);
    }
    None
}

/// Index of the closing quote of the string opening at `open`.
fn string_end(json: &[u8], open: usize) -> Option<usize> {
    let mut k = open + 1;
    while let Some(&b) = json.get(k) {
        match b {
            b'\\' => k += 2,
            b'"' => return Some(k),
            _ => k += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_rewrite() {
        let j =
            br#"{"id":"x","content":"say \"model\": \"no\"","model" : "gpt-4o-2024","choices":[]}"#;
        let r = rewrite_model(j, "gpt-4o").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r).unwrap();
        assert_eq!(v["model"], "gpt-4o");
        assert_eq!(v["content"], "say \"model\": \"no\"");
        assert!(rewrite_model(br#"{"model":"a"}"#, "a").is_none());
        assert!(rewrite_model(br#"{"x":1}"#, "a").is_none());
        assert!(rewrite_model(br#"{"model":"unterminated"#, "a").is_none());
    }

    fn ex(api: ClientApi, wire: Wire, client_stream: bool) -> Exchange {
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
            let mut p = StreamPipeline::new(ex(ClientApi::Chat, Wire::OpenAi, true), 4096);
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
        let mut p = StreamPipeline::new(ex(ClientApi::Messages, Wire::Gemini, false), 4096);
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
        let mut p = StreamPipeline::new(ex(ClientApi::Messages, Wire::Gemini, true), 4096);
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
