//! Rendering a cached answer for the client: the stored JSON for non-stream requests, or a
//! stream in the client's dialect. A streamed hit is the stored answer as neutral
//! [`Event`]s (start, usage, the text in `replay_chunk_chars` pieces, stop reason, end)
//! written by the SDK's client encoders ([`OpenAiEncoder`], [`AnthropicEncoder`],
//! [`ResponsesEncoder`]), so a replay has exactly the event shapes of a translated live
//! stream.

use crate::entry::Entry;
use aigw::llm::stream::{
    prefixed_id, AnthropicEncoder, Channel, Encoder, Event, OpenAiEncoder, ResponsesEncoder,
    StopReason,
};
use aigw::llm::Api;
use aigw::llm::Usage;
use serde_json::{json, Value};
use std::borrow::Cow;

/// Splits `text` into pieces of at most `chars` characters (on char boundaries).
pub fn pieces(text: &str, chars: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut count = 0;
    for (i, _) in text.char_indices() {
        if count == chars {
            out.push(text.get(start..i).unwrap_or(""));
            start = i;
            count = 0;
        }
        count += 1;
    }
    if start < text.len() {
        out.push(text.get(start..).unwrap_or(""));
    }
    out
}

/// The usage reported for a hit: the original answer's counts, the whole prompt reported as
/// cached (`cached_tokens` for OpenAI, `cache_read_input_tokens` for Anthropic).
pub fn hit_usage(e: &Entry) -> Usage {
    Usage {
        input: e.input_tokens,
        output: e.output_tokens,
        total: e.input_tokens.saturating_add(e.output_tokens),
        cached_input: e.input_tokens,
        ..Usage::default()
    }
}

/// The stored finish reason in neutral terms.
pub fn stop_reason(e: &Entry) -> StopReason {
    match e.dialect {
        Api::AnthropicMessages => StopReason::from_anthropic(&e.finish_reason),
        Api::Responses => match e.finish_reason.as_str() {
            "completed" => StopReason::from_responses("completed", None, false),
            reason => StopReason::from_responses("incomplete", Some(reason), false),
        },
        _ => StopReason::from_openai(&e.finish_reason),
    }
}

/// The stored answer as neutral stream events: usage first (so an Anthropic `message_start`
/// carries the input tokens), the text in pieces of at most `chars` characters, the stop
/// reason, the end.
pub fn events(e: &Entry, chars: usize) -> Vec<Event<'_>> {
    let parts = pieces(&e.content, chars);
    let mut out = Vec::with_capacity(parts.len() + 4);
    out.push(Event::Start {
        id: None,
        model: None,
    });
    out.push(Event::Usage(hit_usage(e)));
    out.extend(parts.into_iter().map(|p| Event::Text {
        channel: Channel::Content,
        text: Cow::Borrowed(p),
    }));
    out.push(Event::Stop(stop_reason(e)));
    out.push(Event::Done);
    out
}

/// The non-stream body for a hit: the stored JSON when there is one, else one built from
/// the assembled answer.
pub fn json_body(e: &Entry, id: &str, now_s: u64) -> Vec<u8> {
    if let Some(j) = &e.json {
        return j.as_bytes().to_vec();
    }
    let usage = hit_usage(e);
    let v = match e.dialect {
        Api::AnthropicMessages => json!({
            "id": prefixed_id("msg_", id, "hit"),
            "type": "message",
            "role": "assistant",
            "model": e.model,
            "content": [{"type": "text", "text": e.content}],
            "stop_reason": e.finish_reason,
            "stop_sequence": null,
            "usage": usage.to_anthropic()
        }),
        Api::Responses => responses_object(e, id, now_s),
        _ => json!({
            "id": id,
            "object": "chat.completion",
            "created": now_s,
            "model": e.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": e.content},
                "finish_reason": e.finish_reason
            }],
            "usage": usage.to_openai()
        }),
    };
    v.to_string().into_bytes()
}

/// A Responses API `response` object for the entry: the final `response` of its replayed
/// stream, so the JSON and the stream describe the answer identically.
fn responses_object(e: &Entry, id: &str, now_s: u64) -> Value {
    let mut out = Vec::with_capacity(e.content.len() * 2 + 2048);
    let enc = ResponsesEncoder::new(id, &e.model, now_s);
    encode(enc, &events(e, usize::MAX), &mut out);
    // The last event (`response.completed` / `response.incomplete`) carries the whole final
    // response; the encoder writes one `data:` line per event.
    let last = out
        .strip_suffix(b"\n\n")
        .and_then(|body| body.split(|b| *b == b'\n').next_back())
        .and_then(|line| line.strip_prefix(b"data: "));
    last.and_then(|data| serde_json::from_slice::<Value>(data).ok())
        .and_then(|mut v| v.get_mut("response").map(Value::take))
        .unwrap_or(Value::Null)
}

/// Options of a streamed replay.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions<'a> {
    /// The response id (Anthropic ids get the `msg_` prefix, Responses ids `resp_`).
    pub id: &'a str,
    /// Unix seconds stamped on OpenAI chunks.
    pub now_s: u64,
    /// Characters of answer per text event.
    pub chars: usize,
    /// Whether an OpenAI client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
}

/// The SSE body for a hit, in the entry's dialect.
pub fn sse_body(e: &Entry, opts: &StreamOptions<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(e.content.len() * 3 + 1024);
    let events = events(e, opts.chars);
    match e.dialect {
        Api::AnthropicMessages => {
            encode(AnthropicEncoder::new(opts.id, &e.model), &events, &mut out)
        }
        Api::Responses => encode(
            ResponsesEncoder::new(opts.id, &e.model, opts.now_s),
            &events,
            &mut out,
        ),
        _ => encode(
            OpenAiEncoder::new(opts.id, e.model.as_str(), opts.now_s, opts.include_usage),
            &events,
            &mut out,
        ),
    }
    out
}

fn encode<E: Encoder>(mut enc: E, events: &[Event<'_>], out: &mut Vec<u8>) {
    for ev in events {
        enc.encode(ev, out);
    }
    enc.finish(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::StreamAssembler;
    use serde_json::Value;

    fn entry(d: Api) -> Entry {
        Entry {
            created_ms: 0,
            dialect: d,
            model: "m".into(),
            content: "The quick brown fox jumps over the lazy dog — ünïcode".into(),
            finish_reason: match d {
                Api::AnthropicMessages => "end_turn",
                Api::Responses => "completed",
                _ => "stop",
            }
            .into(),
            input_tokens: 7,
            output_tokens: 12,
            json: None,
        }
    }

    fn opts(include_usage: bool) -> StreamOptions<'static> {
        StreamOptions {
            id: "cache-1",
            now_s: 1,
            chars: 8,
            include_usage,
        }
    }

    /// `(event name, data)` of every SSE event; data is JSON or `[DONE]`.
    fn sse(body: &[u8]) -> Vec<(String, Value)> {
        let text = std::str::from_utf8(body).unwrap();
        assert!(text.ends_with("\n\n"));
        text.split_terminator("\n\n")
            .map(|block| {
                let mut name = String::new();
                let mut data = None;
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = n.to_string();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        assert!(data.is_none(), "one data line per event");
                        data = Some(if d == "[DONE]" {
                            Value::String(d.into())
                        } else {
                            serde_json::from_str(d).unwrap()
                        });
                    } else {
                        panic!("unexpected line {line:?}");
                    }
                }
                (name, data.unwrap())
            })
            .collect()
    }

    #[test]
    fn pieces_cover_text_on_char_boundaries() {
        let t = "aé€😀b";
        let p = pieces(t, 2);
        assert_eq!(p, vec!["aé", "€😀", "b"]);
        assert_eq!(pieces("", 3), Vec::<&str>::new());
    }

    #[test]
    fn replay_round_trips_through_the_assembler() {
        for d in [Api::ChatCompletions, Api::AnthropicMessages, Api::Responses] {
            let e = entry(d);
            let body = sse_body(&e, &opts(true));
            let mut a = StreamAssembler::new(d, 10_000);
            a.feed(&body);
            let back = a.finish(0).unwrap();
            assert_eq!(back.content, e.content);
            assert_eq!(back.finish_reason, e.finish_reason);
            assert_eq!((back.input_tokens, back.output_tokens), (7, 12));
        }
    }

    #[test]
    fn openai_replay_keeps_the_clients_usage_choice() {
        let e = entry(Api::ChatCompletions);
        let with = sse(&sse_body(&e, &opts(true)));
        let without = sse(&sse_body(&e, &opts(false)));
        assert_eq!(with.len(), without.len() + 1);
        for events in [&with, &without] {
            assert_eq!(events[0].1["choices"][0]["delta"]["role"], "assistant");
            assert_eq!(events.last().unwrap().1, "[DONE]");
            let finish: Vec<_> = events
                .iter()
                .filter(|(_, v)| v["choices"][0]["finish_reason"].is_string())
                .collect();
            assert_eq!(finish.len(), 1);
            assert_eq!(finish[0].1["choices"][0]["finish_reason"], "stop");
            for (name, v) in &events[..events.len() - 1] {
                assert!(name.is_empty());
                assert_eq!(v["object"], "chat.completion.chunk");
                assert_eq!(v["id"], "cache-1");
                assert_eq!(v["model"], "m");
            }
        }
        let usage = &with[with.len() - 2].1;
        assert_eq!(usage["choices"], serde_json::json!([]));
        assert_eq!(usage["usage"]["prompt_tokens"], 7);
        assert_eq!(usage["usage"]["completion_tokens"], 12);
        assert_eq!(usage["usage"]["prompt_tokens_details"]["cached_tokens"], 7);
        assert!(without.iter().all(|(_, v)| v.get("usage").is_none()));
    }

    #[test]
    fn anthropic_replay_has_the_official_event_order() {
        let mut e = entry(Api::AnthropicMessages);
        e.finish_reason = "max_tokens".into();
        let events = sse(&sse_body(&e, &opts(true)));
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        let deltas = pieces(&e.content, 8).len();
        let mut want = vec!["message_start", "content_block_start"];
        want.extend(std::iter::repeat_n("content_block_delta", deltas));
        want.extend(["content_block_stop", "message_delta", "message_stop"]);
        assert_eq!(names, want);
        for (name, v) in &events {
            assert_eq!(v["type"], name.as_str());
        }
        let msg = &events[0].1["message"];
        assert_eq!(msg["id"], "msg_cache-1");
        assert_eq!(msg["model"], "m");
        assert_eq!(msg["usage"]["cache_read_input_tokens"], 7);
        assert_eq!(msg["usage"]["input_tokens"], 0);
        let md = &events[events.len() - 2].1;
        assert_eq!(md["delta"]["stop_reason"], "max_tokens");
        assert_eq!(md["usage"]["output_tokens"], 12);
    }

    #[test]
    fn an_empty_answer_still_ends_properly() {
        for d in [Api::ChatCompletions, Api::AnthropicMessages, Api::Responses] {
            let mut e = entry(d);
            e.content.clear();
            let events = sse(&sse_body(&e, &opts(false)));
            let last = &events.last().unwrap().1;
            assert!(
                last == "[DONE]"
                    || last["type"] == "message_stop"
                    || last["type"] == "response.completed"
            );
        }
    }

    #[test]
    fn responses_replay_and_json_describe_the_same_answer() {
        let mut e = entry(Api::Responses);
        let events = sse(&sse_body(&e, &opts(false)));
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        let deltas = pieces(&e.content, 8).len();
        assert_eq!(
            names,
            aigw_test_kit::sse::responses_text_event_types(deltas)
        );
        for (i, (name, v)) in events.iter().enumerate() {
            assert_eq!(v["type"], name.as_str());
            assert_eq!(v["sequence_number"], i);
        }
        let done = &events[events.len() - 1].1["response"];
        assert!(done["id"].as_str().unwrap().starts_with("resp_"));
        assert_eq!(done["status"], "completed");
        assert_eq!(done["usage"]["input_tokens"], 7);
        assert_eq!(done["usage"]["output_tokens"], 12);
        let json: Value = serde_json::from_slice(&json_body(&e, "cache-1", 1)).unwrap();
        assert_eq!(json["object"], "response");
        assert_eq!(json["output"], done["output"]);
        assert_eq!(json["output"][0]["content"][0]["text"], e.content.as_str());
        assert_eq!(json["usage"], done["usage"]);

        e.finish_reason = "max_output_tokens".into();
        let events = sse(&sse_body(&e, &opts(false)));
        let (name, last) = events.last().unwrap();
        assert_eq!(name, "response.incomplete");
        assert_eq!(
            last["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
    }

    #[test]
    fn json_body_without_stored_json_is_built_per_dialect() {
        let o: Value =
            serde_json::from_slice(&json_body(&entry(Api::ChatCompletions), "c", 1)).unwrap();
        assert_eq!(
            o["choices"][0]["message"]["content"],
            entry(Api::ChatCompletions).content
        );
        assert_eq!(o["usage"]["prompt_tokens_details"]["cached_tokens"], 7);
        let a: Value =
            serde_json::from_slice(&json_body(&entry(Api::AnthropicMessages), "c", 1)).unwrap();
        assert_eq!(a["id"], "msg_c");
        assert_eq!(a["stop_reason"], "end_turn");
        assert_eq!(a["usage"]["cache_read_input_tokens"], 7);
        assert_eq!(a["usage"]["output_tokens"], 12);
    }
}
