//! Rendering a cached answer for the client: the stored JSON for non-stream requests, or a
//! proper SSE stream in the client's dialect (several events, usage, and the terminator).

use crate::entry::Entry;
use aigw::reply::Protocol;
use aigw::sse::{write_data, write_done, write_event};
use serde_json::json;

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

/// The usage object of a hit in OpenAI shape (the whole prompt reported as cached).
fn openai_usage(e: &Entry) -> serde_json::Value {
    json!({
        "prompt_tokens": e.input_tokens,
        "completion_tokens": e.output_tokens,
        "total_tokens": e.input_tokens.saturating_add(e.output_tokens),
        "prompt_tokens_details": {"cached_tokens": e.input_tokens}
    })
}

/// The non-stream body for a hit: the stored JSON when there is one, else one built from
/// the assembled answer.
pub fn json_body(e: &Entry, id: &str, now_s: u64) -> Vec<u8> {
    if let Some(j) = &e.json {
        return j.as_bytes().to_vec();
    }
    let v = match e.dialect {
        Protocol::OpenAi => json!({
            "id": id,
            "object": "chat.completion",
            "created": now_s,
            "model": e.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": e.content},
                "finish_reason": e.finish_reason
            }],
            "usage": openai_usage(e)
        }),
        Protocol::Anthropic => json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": e.model,
            "content": [{"type": "text", "text": e.content}],
            "stop_reason": e.finish_reason,
            "stop_sequence": null,
            "usage": {
                "input_tokens": e.input_tokens,
                "output_tokens": e.output_tokens,
                "cache_read_input_tokens": e.input_tokens
            }
        }),
    };
    v.to_string().into_bytes()
}

/// The SSE body for a hit, `chars` characters of answer per content event.
pub fn sse_body(e: &Entry, id: &str, now_s: u64, chars: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(e.content.len() * 3 + 512);
    let parts = pieces(&e.content, chars);
    match e.dialect {
        Protocol::OpenAi => {
            let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
                json!({
                    "id": id,
                    "object": "chat.completion.chunk",
                    "created": now_s,
                    "model": e.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
                })
                .to_string()
            };
            write_data(
                &mut out,
                chunk(json!({"role": "assistant", "content": ""}), json!(null)),
            );
            for p in parts {
                write_data(&mut out, chunk(json!({"content": p}), json!(null)));
            }
            write_data(&mut out, chunk(json!({}), json!(e.finish_reason)));
            let usage = json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": now_s,
                "model": e.model,
                "choices": [],
                "usage": openai_usage(e)
            });
            write_data(&mut out, usage.to_string());
            write_done(&mut out);
        }
        Protocol::Anthropic => {
            let start = json!({
                "type": "message_start",
                "message": {
                    "id": id, "type": "message", "role": "assistant", "model": e.model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": e.input_tokens, "output_tokens": 0,
                              "cache_read_input_tokens": e.input_tokens}
                }
            });
            write_event(&mut out, Some("message_start"), None, start.to_string());
            let block = json!({"type": "content_block_start", "index": 0,
                               "content_block": {"type": "text", "text": ""}});
            write_event(
                &mut out,
                Some("content_block_start"),
                None,
                block.to_string(),
            );
            for p in parts {
                let d = json!({"type": "content_block_delta", "index": 0,
                               "delta": {"type": "text_delta", "text": p}});
                write_event(&mut out, Some("content_block_delta"), None, d.to_string());
            }
            let stop = json!({"type": "content_block_stop", "index": 0});
            write_event(&mut out, Some("content_block_stop"), None, stop.to_string());
            let delta = json!({"type": "message_delta",
                               "delta": {"stop_reason": e.finish_reason, "stop_sequence": null},
                               "usage": {"output_tokens": e.output_tokens}});
            write_event(&mut out, Some("message_delta"), None, delta.to_string());
            write_event(
                &mut out,
                Some("message_stop"),
                None,
                json!({"type": "message_stop"}).to_string(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::StreamAssembler;

    fn entry(d: Protocol) -> Entry {
        Entry {
            created_ms: 0,
            dialect: d,
            model: "m".into(),
            content: "The quick brown fox jumps over the lazy dog — ünïcode".into(),
            finish_reason: if d == Protocol::OpenAi {
                "stop"
            } else {
                "end_turn"
            }
            .into(),
            input_tokens: 7,
            output_tokens: 12,
            json: None,
        }
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
        for d in [Protocol::OpenAi, Protocol::Anthropic] {
            let e = entry(d);
            let body = sse_body(&e, "id1", 1, 8);
            let mut a = StreamAssembler::new(d, 10_000);
            a.feed(&body);
            let back = a.finish(0).unwrap();
            assert_eq!(back.content, e.content);
            assert_eq!(back.finish_reason, e.finish_reason);
            assert_eq!((back.input_tokens, back.output_tokens), (7, 12));
        }
    }
}
