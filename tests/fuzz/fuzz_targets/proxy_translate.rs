//! ai-proxy translators. The first byte picks the translator; the rest is its input:
//! a JSON request or response body for the one-shot translators, an SSE stream for the
//! streamed answers (Bedrock's decoder takes the SSE `event:` name as `:event-type`).
//!
//! Streams run the way ai-proxy runs them: an SDK decoder for the upstream dialect into the
//! neutral events, then an encoder for the client dialect (`aigw::llm::stream`). Every
//! (upstream, client) pair is reachable: a first byte `b` with `b % 16 >= 11` picks the
//! upstream from `b % 16` (anthropic, gemini, dashscope, openai, bedrock) or Responses when
//! `b / 16 >= 12`, and the client from `b / 16 % 4` (OpenAI chunks, Anthropic, Responses, one
//! aggregated chat completion).
//!
//! Properties: no panic; every translated body serializes to JSON and, for requests, goes
//! through the reverse translator without panic; every streamed client event's data is JSON
//! or `[DONE]` and the client text ends on an event boundary; after `finish` the encoder is
//! done, and a done encoder writes nothing more; when the upstream stream decoded cleanly
//! (no decode error, `finish` accepted it), the client stream ends with its dialect's closing
//! event (`[DONE]`, `message_stop`, `response.completed`/`incomplete`/`failed`) or an error
//! event.
#![no_main]

use ai_proxy::providers::bedrock::converse::{chat_request_to_converse, converse_response_to_chat};
use ai_proxy::options::TranslateOptions;
use ai_proxy::clients::anthropic as anthropic_to_openai;
use ai_proxy::providers::{anthropic as openai_to_anthropic, dashscope, gemini};
use aigw::llm::stream::{
    Aggregator, AnthropicDecoder, AnthropicEncoder, BedrockDecoder, DashScopeDecoder, Decoder,
    Encoder, GeminiDecoder, OpenAiDecoder, OpenAiEncoder, ResponsesDecoder, ResponsesEncoder,
};
use aigw::llm::{anthropic as an, gemini as gm, openai as oa};
use aigw::sse::Parser;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde_json::Value;

fn json_ok<T: Serialize>(v: &T) {
    let bytes = serde_json::to_vec(v).expect("a translated body serializes");
    serde_json::from_slice::<serde_json::Value>(&bytes).expect("and parses back as JSON");
}

/// The client dialects a stream can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    OpenAi,
    Anthropic,
    Responses,
}

/// Every event the encoder wrote must be SSE with JSON (or `[DONE]`) data, and the text must
/// end on an event boundary. Returns the last event's name and data.
fn check_client_stream(out: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut parser = Parser::new(usize::MAX);
    let mut ok = true;
    let mut last = None;
    let fed = parser.feed(out, |ev| {
        if let Some(d) = ev.data() {
            ok &= d == b"[DONE]" || serde_json::from_slice::<Value>(d).is_ok();
            last = Some((ev.event_type().to_string(), d.to_vec()));
        }
    });
    assert!(fed.is_ok());
    assert!(
        ok,
        "client event data is not JSON: {}",
        String::from_utf8_lossy(out)
    );
    assert!(
        parser.finish(|_| {}).is_empty(),
        "client stream ends inside an event: {}",
        String::from_utf8_lossy(out)
    );
    last
}

/// Whether `last` closes a `client` stream: its closing event, or an error event.
fn closes(client: Client, last: &(String, Vec<u8>)) -> bool {
    let (name, data) = last;
    let json: Value = serde_json::from_slice(data).unwrap_or(Value::Null);
    match client {
        Client::OpenAi => data.as_slice() == b"[DONE]" || json.get("error").is_some(),
        Client::Anthropic => name == "message_stop" || name == "error",
        Client::Responses => {
            matches!(
                name.as_str(),
                "response.completed" | "response.incomplete" | "response.failed" | "error"
            ) && json["type"] == name.as_str()
        }
    }
}

/// Splits an SSE body into (event name, data) pairs.
fn upstream_events(body: &[u8]) -> Vec<(Option<String>, Vec<u8>)> {
    let mut events = Vec::new();
    let mut parser = Parser::new(1 << 20);
    let _ = parser.feed(body, |ev| {
        let name = (!ev.event_type().is_empty()).then(|| ev.event_type().to_string());
        events.push((name, ev.data().unwrap_or_default().to_vec()));
    });
    events
}

/// Decodes every upstream event; each batch of neutral events goes to `sink`. `Ok` when
/// the upstream stream was clean (every event decoded and `finish` accepted the end).
fn decode_all(
    dec: &mut dyn Decoder,
    body: &[u8],
    mut sink: impl FnMut(&[aigw::llm::stream::Event<'_>]),
) -> Result<(), aigw::llm::stream::StreamError> {
    let events = upstream_events(body);
    let mut batch = Vec::new();
    for (name, data) in &events {
        batch.clear();
        let r = dec.decode(name.as_deref(), data, &mut batch);
        sink(&batch);
        r?;
    }
    let _ = dec.usage();
    dec.finish()
}

fn run_stream(dec: &mut dyn Decoder, mut enc: Box<dyn Encoder>, client: Client, body: &[u8]) {
    let mut out = Vec::new();
    let r = decode_all(dec, body, |batch| {
        for e in batch {
            let was_done = enc.is_done();
            let before = out.len();
            enc.encode(e, &mut out);
            if was_done {
                assert_eq!(out.len(), before, "a done encoder wrote more");
            }
        }
    });
    let clean = r.is_ok();
    match &r {
        Ok(()) => enc.finish(&mut out),
        Err(e) => {
            let was_done = enc.is_done();
            let before = out.len();
            enc.fail(e, &mut out);
            if was_done {
                assert_eq!(out.len(), before, "fail wrote after the stream was done");
            }
        }
    }
    assert!(enc.is_done(), "not done after finish");
    let before = out.len();
    enc.finish(&mut out);
    assert_eq!(out.len(), before, "finish wrote after the stream was done");
    let last = check_client_stream(&out);
    if clean {
        let closed = last.as_ref().is_some_and(|l| closes(client, l));
        assert!(
            closed,
            "{client:?} stream of a clean upstream does not close: {}",
            String::from_utf8_lossy(&out)
        );
    }
}

fn run_aggregate(dec: &mut dyn Decoder, body: &[u8]) {
    let mut agg = Aggregator::new("id", "m", 1_700_000_000);
    let r = decode_all(dec, body, |batch| {
        for e in batch {
            agg.push(e);
        }
    });
    let _ = agg.usage();
    if let (Ok(()), Ok(chat)) = (r, agg.finish()) {
        json_ok(&chat);
    }
}

fn stream(which: u8, body: &[u8]) {
    let mut dec: Box<dyn Decoder> = if which / 16 >= 12 {
        Box::new(ResponsesDecoder::new())
    } else {
        match which % 16 {
            11 => Box::new(AnthropicDecoder::new()),
            12 => Box::new(GeminiDecoder::new()),
            13 => Box::new(DashScopeDecoder::new()),
            14 => Box::new(OpenAiDecoder::new()),
            _ => Box::new(BedrockDecoder::new()),
        }
    };
    let created = 1_700_000_000;
    match which / 16 % 4 {
        0 => run_stream(
            dec.as_mut(),
            Box::new(OpenAiEncoder::new("id", "m", created, true)),
            Client::OpenAi,
            body,
        ),
        1 => run_stream(
            dec.as_mut(),
            Box::new(AnthropicEncoder::new("id", "m")),
            Client::Anthropic,
            body,
        ),
        2 => run_stream(
            dec.as_mut(),
            Box::new(ResponsesEncoder::new("id", "m", created)),
            Client::Responses,
            body,
        ),
        _ => run_aggregate(dec.as_mut(), body),
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&which, body)) = input.split_first() else {
        return;
    };
    let opts = TranslateOptions::default();
    let created = 1_700_000_000;
    match which % 16 {
        0 => {
            if let Ok(req) = serde_json::from_slice::<oa::ChatCompletionRequest>(body) {
                if let Ok(out) = openai_to_anthropic::chat_request_to_anthropic(&req, &opts) {
                    json_ok(&out);
                    if let Ok(back) = anthropic_to_openai::anthropic_request_to_chat(&out, &opts) {
                        json_ok(&back);
                    }
                }
            }
        }
        1 => {
            if let Ok(req) = serde_json::from_slice::<an::MessagesRequest>(body) {
                if let Ok(out) = anthropic_to_openai::anthropic_request_to_chat(&req, &opts) {
                    json_ok(&out);
                    if let Ok(back) = openai_to_anthropic::chat_request_to_anthropic(&out, &opts) {
                        json_ok(&back);
                    }
                }
            }
        }
        2 => {
            if let Ok(req) = serde_json::from_slice::<oa::ChatCompletionRequest>(body) {
                if let Ok(out) = gemini::chat_request_to_gemini(&req, &opts) {
                    json_ok(&out);
                    if let Ok(back) = gemini::gemini_request_to_chat(&out, "m") {
                        json_ok(&back);
                    }
                }
            }
        }
        3 => {
            if let Ok(req) = serde_json::from_slice::<gm::GenerateContentRequest>(body) {
                if let Ok(out) = gemini::gemini_request_to_chat(&req, "m") {
                    json_ok(&out);
                    if let Ok(back) = gemini::chat_request_to_gemini(&out, &opts) {
                        json_ok(&back);
                    }
                }
            }
        }
        4 => {
            if let Ok(req) = serde_json::from_slice::<oa::ChatCompletionRequest>(body) {
                if let Ok(out) = dashscope::chat_request_to_dashscope(&req, &opts) {
                    json_ok(&out);
                }
            }
        }
        5 => {
            if let Ok(req) = serde_json::from_slice::<oa::ChatCompletionRequest>(body) {
                if let Ok(out) = chat_request_to_converse(&req, &opts) {
                    json_ok(&out);
                }
            }
        }
        6 => {
            if let Ok(resp) = serde_json::from_slice::<an::MessagesResponse>(body) {
                if let Ok(out) = openai_to_anthropic::anthropic_response_to_chat(&resp, created) {
                    json_ok(&out);
                }
            }
        }
        7 => {
            if let Ok(resp) = serde_json::from_slice::<oa::ChatCompletion>(body) {
                if let Ok(out) = anthropic_to_openai::chat_response_to_anthropic(&resp) {
                    json_ok(&out);
                }
            }
        }
        8 => {
            if let Ok(resp) = serde_json::from_slice::<gm::GenerateContentResponse>(body) {
                if let Ok(out) = gemini::gemini_response_to_chat(&resp, "id", "m", created) {
                    json_ok(&out);
                }
            }
        }
        9 => {
            if let Ok((out, _usage)) =
                dashscope::dashscope_response_to_chat(body, "id", "m", created)
            {
                json_ok(&out);
            }
            let _ = dashscope::unframe(body);
        }
        10 => {
            if let Ok(resp) = serde_json::from_slice(body) {
                if let Ok(out) = converse_response_to_chat(&resp, "id", "m", created) {
                    json_ok(&out);
                }
            }
        }
        _ => stream(which, body),
    }
});
