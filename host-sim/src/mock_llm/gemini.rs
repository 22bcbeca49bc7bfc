//! Gemini wire format: `models/{model}:generateContent`, `:streamGenerateContent` (SSE with
//! `alt=sse`, otherwise a streamed JSON array), `:countTokens`, `:embedContent` and
//! `:batchEmbedContents`.

use super::embed;
use super::plan::{required_list, Finish, Output, Plan, Tool, Turn};
use super::tokens;
use super::wire::{Frame, Reply};
use bytes::Bytes;
use serde_json::{json, Value};

fn parts_text(content: &Value) -> String {
    let mut out = Vec::new();
    if let Some(parts) = content.get("parts").and_then(Value::as_array) {
        for p in parts {
            if let Some(t) = p.get("text").and_then(Value::as_str) {
                out.push(t.to_string());
            } else if let Some(fc) = p.get("functionCall") {
                out.push(fc.get("args").map(Value::to_string).unwrap_or_default());
            } else if let Some(fr) = p.get("functionResponse") {
                out.push(fr.get("response").map(Value::to_string).unwrap_or_default());
            }
        }
    }
    out.join("\n")
}

/// Reads a generateContent request; `model` comes from the path.
pub fn parse(body: &Value, model: &str, stream: bool) -> Result<Turn, String> {
    let missing = "* GenerateContentRequest.contents: contents is not specified";
    let contents = required_list(body, "contents", missing, missing)?;
    let mut prompt_tokens = tokens::count(&parts_text(
        body.get("systemInstruction")
            .or_else(|| body.get("system_instruction"))
            .unwrap_or(&Value::Null),
    ));
    for c in contents {
        prompt_tokens += tokens::count(&parts_text(c));
    }
    let last = contents.last().unwrap_or(&Value::Null);
    let has_fn_response = last
        .get("parts")
        .and_then(Value::as_array)
        .is_some_and(|ps| ps.iter().any(|p| p.get("functionResponse").is_some()));
    let role = last.get("role").and_then(Value::as_str).unwrap_or("user");
    let mut tools = Vec::new();
    for t in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let decls = t
            .get("functionDeclarations")
            .or_else(|| t.get("function_declarations"))
            .and_then(Value::as_array);
        for d in decls.into_iter().flatten() {
            if let Some(name) = d.get("name").and_then(Value::as_str) {
                tools.push(Tool {
                    name: name.to_string(),
                    schema: d
                        .get("parameters")
                        .or_else(|| d.get("parametersJsonSchema"))
                        .cloned()
                        .unwrap_or(Value::Null),
                });
            }
        }
    }
    let gen = body
        .get("generationConfig")
        .or_else(|| body.get("generation_config"));
    let max_tokens = gen
        .and_then(|g| {
            g.get("maxOutputTokens")
                .or_else(|| g.get("max_output_tokens"))
        })
        .and_then(Value::as_u64);
    Ok(Turn {
        model: model.to_string(),
        stream,
        include_usage: true,
        max_tokens,
        prompt_tokens,
        last_text: parts_text(last),
        last_from_user: role == "user" && !has_fn_response,
        tools,
    })
}

fn finish_reason(f: Finish) -> &'static str {
    match f {
        Finish::Stop | Finish::ToolUse => "STOP",
        Finish::Length => "MAX_TOKENS",
    }
}

fn usage(prompt: u64, candidates: u64) -> Value {
    json!({
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates,
    })
}

fn chunk(parts: Value, finish: Option<Finish>, usage_v: Value, model: &str, seq: u64) -> Value {
    let mut cand = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(f) = finish {
        cand["finishReason"] = json!(finish_reason(f));
    }
    json!({
        "candidates": [cand],
        "usageMetadata": usage_v,
        "modelVersion": model,
        "responseId": format!("mock{seq}"),
    })
}

fn call_part(p: &Plan) -> Value {
    match &p.output {
        Output::ToolCall { name, .. } => {
            json!([{"functionCall": {"name": name, "args": p.arguments_json()}}])
        }
        Output::Text(_) => json!([{"text": p.text()}]),
    }
}

/// A non-streamed response.
pub fn full(p: &Plan, model: &str, seq: u64) -> Reply {
    Reply::json(
        200,
        &chunk(
            call_part(p),
            Some(p.finish),
            usage(p.prompt_tokens, p.completion_tokens),
            model,
            seq,
        ),
    )
}

/// A streamed response. Every chunk carries `usageMetadata` with running totals (as Gemini
/// does); the last carries `finishReason`. Function calls arrive whole in one chunk. SSE events
/// end with `\r\n\r\n` like Google's servers; without `sse` the chunks form a JSON array.
pub fn stream(p: &Plan, model: &str, seq: u64, size: usize, sse: bool) -> Reply {
    let mut values = Vec::new();
    match &p.output {
        Output::ToolCall { .. } => {
            values.push((
                chunk(
                    call_part(p),
                    Some(p.finish),
                    usage(p.prompt_tokens, p.completion_tokens),
                    model,
                    seq,
                ),
                p.completion_tokens,
            ));
        }
        Output::Text(_) => {
            let chunks = p.chunks(size);
            let n = chunks.len();
            let mut so_far = 0;
            for (i, (text, k)) in chunks.into_iter().enumerate() {
                so_far += k;
                let fin = (i + 1 == n).then_some(p.finish);
                values.push((
                    chunk(
                        json!([{"text": text}]),
                        fin,
                        usage(p.prompt_tokens, so_far),
                        model,
                        seq,
                    ),
                    k,
                ));
            }
            if n == 0 {
                values.push((
                    chunk(
                        json!([{"text": ""}]),
                        Some(p.finish),
                        usage(p.prompt_tokens, 0),
                        model,
                        seq,
                    ),
                    0,
                ));
            }
        }
    }
    if sse {
        let frames = values
            .into_iter()
            .map(|(v, k)| Frame::new(Bytes::from(format!("data: {v}\r\n\r\n")), k))
            .collect();
        return Reply::stream("text/event-stream", frames);
    }
    let count = values.len();
    let mut frames: Vec<Frame> = values
        .into_iter()
        .enumerate()
        .map(|(i, (v, k))| {
            let lead = if i == 0 { "[" } else { "\r\n," };
            Frame::new(Bytes::from(format!("{lead}{v}")), k)
        })
        .collect();
    frames.push(Frame::new(
        if count == 0 { &b"[]"[..] } else { &b"]"[..] },
        0,
    ));
    Reply::stream("application/json", frames)
}

/// Answers `countTokens` (`contents` or a wrapped `generateContentRequest`).
pub fn count_tokens(body: &Value, model: &str) -> Result<(Reply, u64), String> {
    let inner = body.get("generateContentRequest").unwrap_or(body);
    let t = parse(inner, model, false)?;
    Ok((
        Reply::json(200, &json!({"totalTokens": t.prompt_tokens})),
        t.prompt_tokens,
    ))
}

fn embed_one(req: &Value, default_dims: usize) -> (Value, u64) {
    let text = parts_text(req.get("content").unwrap_or(&Value::Null));
    let dims = req
        .get("outputDimensionality")
        .and_then(Value::as_u64)
        .map(|d| d as usize)
        .unwrap_or(default_dims);
    (
        json!({"values": embed::embed(&text, dims)}),
        tokens::count(&text),
    )
}

/// Answers `embedContent`.
pub fn embed_content(body: &Value, default_dims: usize) -> Result<(Reply, u64), String> {
    if body.get("content").is_none() {
        return Err("* EmbedContentRequest.content: content is not specified".into());
    }
    let (v, n) = embed_one(body, default_dims);
    Ok((Reply::json(200, &json!({"embedding": v})), n))
}

/// Answers `batchEmbedContents`.
pub fn batch_embed(body: &Value, default_dims: usize) -> Result<(Reply, u64), String> {
    let reqs = body
        .get("requests")
        .and_then(Value::as_array)
        .ok_or("* BatchEmbedContentsRequest.requests: requests is not specified")?;
    let mut total = 0;
    let embeddings: Vec<Value> = reqs
        .iter()
        .map(|r| {
            let (v, n) = embed_one(r, default_dims);
            total += n;
            v
        })
        .collect();
    Ok((Reply::json(200, &json!({"embeddings": embeddings})), total))
}
