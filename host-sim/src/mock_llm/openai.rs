//! OpenAI wire format: chat completions, legacy completions, embeddings and the model list
//! (also used for every OpenAI-compatible path such as Azure deployments).

use super::embed;
use super::plan::{
    model_of, required_list, text_of, tools_at, wants_stream, Finish, Output, Plan, Turn,
};
use super::tokens;
use super::wire::{sse_data, Frame, Reply};
use serde_json::{json, Value};

/// Response identity shared by all frames of one answer.
pub struct Ctx {
    /// Request sequence number (ids are derived from it).
    pub seq: u64,
    /// Unix seconds.
    pub created: u64,
}

/// OpenAI `stream_options.include_usage`.
fn include_usage(body: &Value) -> bool {
    body.pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn max_tokens(body: &Value, keys: &[&str]) -> Option<u64> {
    keys.iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
}

/// Reads a chat-completions request.
pub fn parse_chat(body: &Value) -> Result<Turn, String> {
    let messages = required_list(
        body,
        "messages",
        "'messages' is a required property",
        "'messages' must contain at least one message",
    )?;
    let mut prompt_tokens = 0;
    for m in messages {
        prompt_tokens += tokens::count(&text_of(m.get("content").unwrap_or(&Value::Null)));
        if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
            for c in calls {
                let args = c.pointer("/function/arguments").and_then(Value::as_str);
                prompt_tokens += tokens::count(args.unwrap_or(""));
            }
        }
    }
    let last = messages.last().unwrap_or(&Value::Null);
    let role = last.get("role").and_then(Value::as_str).unwrap_or("user");
    let tools = tools_at(body, "/tools", "/function", "/parameters");
    Ok(Turn {
        model: model_of(body),
        stream: wants_stream(body),
        include_usage: include_usage(body),
        max_tokens: max_tokens(body, &["max_completion_tokens", "max_tokens"]),
        prompt_tokens,
        last_text: text_of(last.get("content").unwrap_or(&Value::Null)),
        last_from_user: role == "user",
        tools,
    })
}

fn finish_reason(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolUse => "tool_calls",
    }
}

fn usage(p: &Plan) -> Value {
    json!({
        "prompt_tokens": p.prompt_tokens,
        "completion_tokens": p.completion_tokens,
        "total_tokens": p.prompt_tokens + p.completion_tokens,
    })
}

/// A non-streamed chat completion.
pub fn chat_full(p: &Plan, model: &str, ctx: &Ctx) -> Reply {
    let message = match &p.output {
        Output::Text(_) => json!({"role": "assistant", "content": p.text(), "refusal": null}),
        Output::ToolCall {
            id,
            name,
            arguments,
        } => json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "tool_calls": [{
                "id": format!("call_{id}"),
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }],
        }),
    };
    Reply::json(
        200,
        &json!({
            "id": format!("chatcmpl-mock{}", ctx.seq),
            "object": "chat.completion",
            "created": ctx.created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish_reason(p.finish),
            }],
            "usage": usage(p),
            "system_fingerprint": "fp_mock",
        }),
    )
}

/// A streamed chat completion: a role chunk, content (or tool-argument) chunks, a chunk with
/// the finish reason, with `include_usage` a final chunk with empty `choices` and the usage,
/// then `data: [DONE]`.
pub fn chat_stream(p: &Plan, model: &str, ctx: &Ctx, include_usage: bool, chunk: usize) -> Reply {
    let id = format!("chatcmpl-mock{}", ctx.seq);
    let frame = |choices: Value| {
        let mut v = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": model,
            "system_fingerprint": "fp_mock",
            "choices": choices,
        });
        if include_usage {
            v["usage"] = Value::Null;
        }
        v
    };
    let mut frames = Vec::new();
    let first_delta = match &p.output {
        Output::Text(_) => json!({"role": "assistant", "content": "", "refusal": null}),
        Output::ToolCall { id, name, .. } => json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "index": 0,
                "id": format!("call_{id}"),
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }],
        }),
    };
    frames.push(Frame::new(
        sse_data(&frame(
            json!([{"index": 0, "delta": first_delta, "logprobs": null, "finish_reason": null}]),
        )),
        0,
    ));
    for (text, n) in p.chunks(chunk) {
        let delta = match &p.output {
            Output::Text(_) => json!({"content": text}),
            Output::ToolCall { .. } => {
                json!({"tool_calls": [{"index": 0, "function": {"arguments": text}}]})
            }
        };
        frames.push(Frame::new(
            sse_data(&frame(
                json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]),
            )),
            n,
        ));
    }
    frames.push(Frame::new(
        sse_data(&frame(json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish_reason(p.finish)}]))),
        0,
    ));
    if include_usage {
        let mut last = frame(json!([]));
        last["usage"] = usage(p);
        frames.push(Frame::new(sse_data(&last), 0));
    }
    frames.push(Frame::new(&b"data: [DONE]\n\n"[..], 0));
    Reply::stream("text/event-stream", frames)
}

/// Reads a legacy completions request (`prompt` a string or an array of strings).
pub fn parse_completion(body: &Value) -> Result<Turn, String> {
    let prompt = match body.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => other.to_string(),
        None => return Err("'prompt' is a required property".into()),
    };
    Ok(Turn {
        model: model_of(body),
        stream: wants_stream(body),
        include_usage: include_usage(body),
        max_tokens: max_tokens(body, &["max_tokens"]),
        prompt_tokens: tokens::count(&prompt),
        last_text: prompt,
        last_from_user: true,
        tools: Vec::new(),
    })
}

/// A non-streamed text completion.
pub fn completion_full(p: &Plan, model: &str, ctx: &Ctx) -> Reply {
    Reply::json(
        200,
        &json!({
            "id": format!("cmpl-mock{}", ctx.seq),
            "object": "text_completion",
            "created": ctx.created,
            "model": model,
            "choices": [{"text": p.text(), "index": 0, "logprobs": null, "finish_reason": finish_reason(p.finish)}],
            "usage": usage(p),
        }),
    )
}

/// A streamed text completion (same framing as chat, `text_completion` objects).
pub fn completion_stream(
    p: &Plan,
    model: &str,
    ctx: &Ctx,
    include_usage: bool,
    chunk: usize,
) -> Reply {
    let id = format!("cmpl-mock{}", ctx.seq);
    let frame = |text: &str, finish: Value| {
        let mut v = json!({
            "id": id,
            "object": "text_completion",
            "created": ctx.created,
            "model": model,
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}],
        });
        if include_usage {
            v["usage"] = Value::Null;
        }
        v
    };
    let mut frames: Vec<Frame> = p
        .chunks(chunk)
        .into_iter()
        .map(|(t, n)| Frame::new(sse_data(&frame(&t, Value::Null)), n))
        .collect();
    frames.push(Frame::new(
        sse_data(&frame("", json!(finish_reason(p.finish)))),
        0,
    ));
    if include_usage {
        let mut last = frame("", Value::Null);
        last["choices"] = json!([]);
        last["usage"] = usage(p);
        frames.push(Frame::new(sse_data(&last), 0));
    }
    frames.push(Frame::new(&b"data: [DONE]\n\n"[..], 0));
    Reply::stream("text/event-stream", frames)
}

/// Answers an embeddings request: one vector per input (string, array of strings, or token
/// arrays, which are embedded as their number text). Honours `dimensions` and
/// `encoding_format: "base64"`. Returns the reply and the prompt tokens.
pub fn embeddings(body: &Value, default_dims: usize) -> Result<(Reply, u64), String> {
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
            vec![items
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")]
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                Value::Array(toks) => toks
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.to_string(),
            })
            .collect(),
        _ => return Err("'input' is a required property (a string or an array)".into()),
    };
    if inputs.is_empty() {
        return Err("'input' must not be empty".into());
    }
    let dims = match body.get("dimensions") {
        None | Some(Value::Null) => default_dims,
        Some(v) => match v.as_u64() {
            Some(d) if d >= 1 && d <= embed::MAX_DIMS as u64 => d as usize,
            _ => {
                return Err(format!(
                    "'dimensions' must be an integer from 1 to {}",
                    embed::MAX_DIMS
                ))
            }
        },
    };
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let mut prompt_tokens = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            prompt_tokens += tokens::count(text);
            let v = embed::embed(text, dims);
            let emb = if base64 {
                json!(embed::to_base64(&v))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": emb})
        })
        .collect();
    let model = body.get("model").and_then(Value::as_str).unwrap_or("");
    Ok((
        Reply::json(
            200,
            &json!({
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
            }),
        ),
        prompt_tokens,
    ))
}

/// The moderation categories of OpenAI's `omni-moderation` models.
pub const MODERATION_CATEGORIES: [&str; 13] = [
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
];

/// Answers a moderations request: one result per input (a string, an array of strings, or
/// an array of `{"type":"text","text":..}` parts). An input containing one of `flag_words`
/// (case-insensitive) is flagged as `violence` (score 0.93); every other score is 0.0001.
/// Returns the reply and the prompt tokens.
pub fn moderations(body: &Value, flag_words: &[String]) -> Result<(Reply, u64), String> {
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            })
            .collect(),
        _ => return Err("'input' is a required property (a string or an array)".into()),
    };
    let mut prompt_tokens = 0;
    let results: Vec<Value> = inputs
        .iter()
        .map(|text| {
            prompt_tokens += tokens::count(text);
            let lower = text.to_lowercase();
            let flagged = flag_words
                .iter()
                .any(|w| !w.is_empty() && lower.contains(&w.to_lowercase()));
            let mut categories = serde_json::Map::new();
            let mut scores = serde_json::Map::new();
            let mut applied = serde_json::Map::new();
            for c in MODERATION_CATEGORIES {
                let hit = flagged && c == "violence";
                categories.insert(c.into(), json!(hit));
                scores.insert(c.into(), json!(if hit { 0.93 } else { 0.0001 }));
                applied.insert(c.into(), json!(["text"]));
            }
            json!({
                "flagged": flagged,
                "categories": categories,
                "category_scores": scores,
                "category_applied_input_types": applied,
            })
        })
        .collect();
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("omni-moderation-latest");
    Ok((
        Reply::json(
            200,
            &json!({"id": "modr-mock", "model": model, "results": results}),
        ),
        prompt_tokens,
    ))
}

/// The model list in OpenAI's shape, or Anthropic's when `anthropic` is set.
pub fn models(names: &[String], created: u64, anthropic: bool) -> Reply {
    if anthropic {
        let data: Vec<Value> = names
            .iter()
            .map(|m| json!({"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}))
            .collect();
        return Reply::json(
            200,
            &json!({
                "data": data,
                "has_more": false,
                "first_id": names.first(),
                "last_id": names.last(),
            }),
        );
    }
    let data: Vec<Value> = names
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": created, "owned_by": "host-sim-mock"}))
        .collect();
    Reply::json(200, &json!({"object": "list", "data": data}))
}
