//! Reading what a client got as server-sent events.

use serde_json::Value;

/// One event: its name (`None` without an `event:` line) and its data lines joined by `\n`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The `event:` name.
    pub name: Option<String>,
    /// The data.
    pub data: String,
}

impl Event {
    /// The name, `message` when the event has none (what a browser's EventSource reports).
    pub fn kind(&self) -> &str {
        self.name.as_deref().unwrap_or("message")
    }

    /// The data as JSON; a data that is not JSON (`[DONE]`) as a JSON string.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|_| Value::String(self.data.clone()))
    }
}

/// The OpenAI chat stream `make bench` sends (`sse_stream` in `tests/src/bin/bench/main.rs`):
/// `n` content events (`tok0 `, `tok1 `, ...), the finish event, a usage chunk (20 prompt, 200
/// completion tokens) and `[DONE]`. The plugins' native `stream_cost` examples replay the same
/// bytes, so their instruction counts match the bench's stream.
pub fn bench_stream(n: usize) -> Vec<u8> {
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    body.push_str("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    body.push_str("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":200,\"total_tokens\":220}}\n\n");
    body.push_str("data: [DONE]\n\n");
    body.into_bytes()
}

/// The `main` of a plugin's native `stream_cost` example: runs `run(N)`, N from the first
/// argument (default 1), and prints the checksum it returns (so the work is not optimised away).
pub fn stream_cost_main(run: impl FnOnce(u32) -> u64) {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    println!("{n} streams, check {}", run(n));
}

/// The events of an SSE body, in order (blocks with neither name nor data skipped).
pub fn events(body: impl AsRef<[u8]>) -> Vec<Event> {
    String::from_utf8_lossy(body.as_ref())
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data: Vec<&str> = Vec::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                }
            }
            Event {
                name,
                data: data.join("\n"),
            }
        })
        .collect()
}

/// The `data` of every event, in order.
pub fn data(body: impl AsRef<[u8]>) -> Vec<String> {
    events(body).into_iter().map(|e| e.data).collect()
}

/// Every event's data as JSON, `[DONE]` left out; panics on data that is not JSON.
pub fn json(body: impl AsRef<[u8]>) -> Vec<Value> {
    events(body)
        .into_iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| {
            serde_json::from_str(&e.data)
                .unwrap_or_else(|err| panic!("data is not JSON ({err}): {}", e.data))
        })
        .collect()
}

/// The text a client assembles from an OpenAI stream (the content deltas, concatenated).
pub fn openai_text(body: impl AsRef<[u8]>) -> String {
    events(body)
        .iter()
        .filter_map(|e| {
            e.json()
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

/// The event types of a Responses API text answer streamed with `deltas` text deltas, in order:
/// created, in progress, the output item and content part opened, the deltas, then the text,
/// part and item closed and `response.completed`.
pub fn responses_text_event_types(deltas: usize) -> Vec<&'static str> {
    let mut want = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    want.extend(std::iter::repeat_n("response.output_text.delta", deltas));
    want.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    want
}
