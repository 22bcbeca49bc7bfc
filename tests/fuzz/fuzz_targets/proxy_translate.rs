//! ai-proxy translators. The first byte picks the translator; the rest is its input:
//! a JSON request or response body for the one-shot translators, an SSE stream for the
//! streaming state machines (Bedrock's takes the SSE `event:` name as `:event-type`).
//!
//! Properties: no panic; every translated body serializes to JSON and, for requests, goes
//! through the reverse translator without panic; every streamed client event's data is JSON
//! or `[DONE]`; after `finish` the stream is done, and a done stream writes nothing more.
#![no_main]

use ai_proxy::bedrock::converse::{chat_request_to_converse, converse_response_to_chat};
use ai_proxy::options::TranslateOptions;
use ai_proxy::stream::{
    AnthropicToOpenAi, BedrockToOpenAi, DashScopeToOpenAi, GeminiToOpenAi, OpenAiToAnthropic,
    StreamTranslator,
};
use ai_proxy::{anthropic_to_openai, dashscope, gemini, openai_to_anthropic};
use aigw::llm::{anthropic as an, gemini as gm, openai as oa};
use aigw::sse::Parser;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;

fn json_ok<T: Serialize>(v: &T) {
    let bytes = serde_json::to_vec(v).expect("a translated body serializes");
    serde_json::from_slice::<serde_json::Value>(&bytes).expect("and parses back as JSON");
}

/// Every event the translator wrote must be SSE with JSON (or `[DONE]`) data.
fn check_client_stream(out: &[u8]) {
    let mut parser = Parser::new(usize::MAX);
    let mut ok = true;
    let fed = parser.feed(out, |ev| {
        if let Some(d) = ev.data() {
            ok &= d == b"[DONE]" || serde_json::from_slice::<serde_json::Value>(d).is_ok();
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
}

fn run_stream(mut t: impl StreamTranslator, body: &[u8]) {
    let mut events: Vec<(Option<String>, Vec<u8>)> = Vec::new();
    let mut parser = Parser::new(1 << 20);
    let _ = parser.feed(body, |ev| {
        let name = (!ev.event_type().is_empty()).then(|| ev.event_type().to_string());
        events.push((name, ev.data().unwrap_or_default().to_vec()));
    });
    let mut out = Vec::new();
    for (name, data) in &events {
        let was_done = t.is_done();
        let before = out.len();
        let r = t.on_event(name.as_deref(), data, &mut out);
        if was_done {
            assert_eq!(out.len(), before, "a done stream wrote more");
        }
        if r.is_err() {
            break;
        }
    }
    let was_done = t.is_done();
    let before = out.len();
    let _ = t.finish(&mut out);
    if was_done {
        assert_eq!(out.len(), before, "finish wrote after the stream was done");
    }
    assert!(t.is_done(), "not done after finish");
    let _ = t.usage();
    check_client_stream(&out);
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
        11 => run_stream(AnthropicToOpenAi::new("id", "m", created, true), body),
        12 => run_stream(GeminiToOpenAi::new("id", "m", created, true), body),
        13 => run_stream(DashScopeToOpenAi::new("id", "m", created, true), body),
        14 => run_stream(OpenAiToAnthropic::new("id", "m"), body),
        _ => run_stream(BedrockToOpenAi::new("id", "m", created, true), body),
    }
});
