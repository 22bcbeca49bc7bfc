//! A cached answer and how it is assembled from an upstream response: a non-streamed JSON
//! body, or an SSE stream collected event by event (bounded) until it ends normally.

use aigw::llm::Api;
use aigw::sse::Parser;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The client API of a cached answer is the SDK's [`Api`] (chat completions, Anthropic
/// messages or Responses); requests are only answered from entries of their own API (the API
/// is part of the key, too). Entries keep the names they always had.
pub mod stored_api {
    use aigw::llm::Api;
    use serde::{Deserialize, Deserializer, Serializer};

    /// The name used in the cache key and the stored entry.
    pub fn name(api: Api) -> &'static str {
        match api {
            Api::AnthropicMessages => "anthropic",
            Api::Responses => "responses",
            _ => "openai",
        }
    }

    /// Writes the stored name.
    pub fn serialize<S: Serializer>(api: &Api, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(name(*api))
    }

    /// Reads a stored name.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Api, D::Error> {
        let n = <&str>::deserialize(d)?;
        match n {
            "openai" => Ok(Api::ChatCompletions),
            "anthropic" => Ok(Api::AnthropicMessages),
            "responses" => Ok(Api::Responses),
            other => Err(serde::de::Error::unknown_variant(
                other,
                &["openai", "anthropic", "responses"],
            )),
        }
    }
}

/// A cached answer, stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When the answer was stored (ms since the epoch).
    pub created_ms: u64,
    /// The client API the answer is in.
    #[serde(with = "stored_api")]
    pub dialect: Api,
    /// The model that answered.
    pub model: String,
    /// The answer text.
    pub content: String,
    /// Why generation stopped, in the dialect's words (`stop`, `length`, `end_turn`, ...; for
    /// the Responses API `completed` or the `incomplete_details.reason`).
    pub finish_reason: String,
    /// Prompt tokens of the original answer, all of them (for Anthropic: `input_tokens` plus
    /// cache reads and writes, the OpenAI meaning of `prompt_tokens`).
    pub input_tokens: u64,
    /// Output tokens of the original answer.
    pub output_tokens: u64,
    /// The original non-streamed body, returned as is to non-stream hits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
}

/// Why an answer is not cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not JSON / not the expected shape.
    Malformed,
    /// Tool calls, several choices or non-text blocks (not replayable).
    NotText,
    /// A content filter or refusal ended the answer.
    Filtered,
    /// An error event, or no normal ending.
    Incomplete,
    /// Larger than `max_entry_bytes`.
    TooLarge,
}

impl Skip {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Skip::Malformed => "malformed",
            Skip::NotText => "not_text",
            Skip::Filtered => "filtered",
            Skip::Incomplete => "incomplete",
            Skip::TooLarge => "too_large",
        }
    }
}

fn filtered(reason: &str) -> bool {
    matches!(
        reason,
        "content_filter" | "refusal" | "tool_calls" | "tool_use" | "function_call"
    )
}

/// Builds an entry from a complete non-streamed answer.
pub fn from_json(dialect: Api, body: &[u8], now_ms: u64) -> Result<Entry, Skip> {
    let v: Value = serde_json::from_slice(body).map_err(|_| Skip::Malformed)?;
    if v.get("error").is_some() {
        return Err(Skip::Incomplete);
    }
    let model = str_at(&v, "model");
    let (content, finish, input, output) = match dialect {
        Api::AnthropicMessages => {
            let blocks = v
                .get("content")
                .and_then(Value::as_array)
                .ok_or(Skip::Malformed)?;
            let mut text = String::new();
            for b in blocks {
                if b.get("type").and_then(Value::as_str) != Some("text") {
                    return Err(Skip::NotText);
                }
                text.push_str(b.get("text").and_then(Value::as_str).unwrap_or(""));
            }
            let u = v.get("usage");
            (
                text,
                str_at(&v, "stop_reason"),
                anthropic_input(u),
                u64_at(u, "output_tokens"),
            )
        }
        Api::Responses => {
            let content = responses_text(&v)?;
            let finish = match v.get("status").and_then(Value::as_str) {
                Some("completed") => "completed".to_string(),
                Some("incomplete") => v
                    .get("incomplete_details")
                    .map(|d| str_at(d, "reason"))
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "incomplete".to_string()),
                // queued, in_progress (background), failed, cancelled: no final answer.
                _ => String::new(),
            };
            let u = v.get("usage");
            (
                content,
                finish,
                u64_at(u, "input_tokens"),
                u64_at(u, "output_tokens"),
            )
        }
        _ => {
            let choices = v
                .get("choices")
                .and_then(Value::as_array)
                .ok_or(Skip::Malformed)?;
            let [choice] = choices.as_slice() else {
                return Err(Skip::NotText);
            };
            let msg = choice.get("message").ok_or(Skip::Malformed)?;
            if msg.get("tool_calls").is_some_and(|t| !t.is_null())
                || msg.get("function_call").is_some_and(|t| !t.is_null())
            {
                return Err(Skip::NotText);
            }
            let content = msg
                .get("content")
                .and_then(Value::as_str)
                .ok_or(Skip::NotText)?
                .to_string();
            let finish = str_at(choice, "finish_reason");
            let u = v.get("usage");
            (
                content,
                finish,
                u64_at(u, "prompt_tokens"),
                u64_at(u, "completion_tokens"),
            )
        }
    };
    if finish.is_empty() {
        return Err(Skip::Incomplete);
    }
    if filtered(&finish) {
        return Err(Skip::Filtered);
    }
    Ok(Entry {
        created_ms: now_ms,
        dialect,
        model,
        content,
        finish_reason: finish,
        input_tokens: input,
        output_tokens: output,
        json: Some(String::from_utf8_lossy(body).into_owned()),
    })
}

/// The answer text of a Responses API `response` object: the `output_text` parts of its
/// `message` items (reasoning items are left out; a refusal is filtered; tool calls and other
/// items, and annotated text, cannot be replayed).
fn responses_text(v: &Value) -> Result<String, Skip> {
    let items = v
        .get("output")
        .and_then(Value::as_array)
        .ok_or(Skip::Malformed)?;
    let mut text = String::new();
    for item in items {
        match item.get("type").and_then(Value::as_str) {
            Some("reasoning") => {}
            Some("message") => {
                let parts = item.get("content").and_then(Value::as_array);
                for part in parts.into_iter().flatten() {
                    match part.get("type").and_then(Value::as_str) {
                        Some("output_text") => {
                            if part
                                .get("annotations")
                                .and_then(Value::as_array)
                                .is_some_and(|a| !a.is_empty())
                            {
                                return Err(Skip::NotText);
                            }
                            text.push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
                        }
                        Some("refusal") => return Err(Skip::Filtered),
                        _ => return Err(Skip::NotText),
                    }
                }
            }
            _ => return Err(Skip::NotText),
        }
    }
    Ok(text)
}

fn str_at(v: &Value, field: &str) -> String {
    v.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn u64_at(v: Option<&Value>, field: &str) -> u64 {
    v.and_then(|u| u.get(field))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// All prompt tokens of an Anthropic `usage` object: uncached input plus cache reads and
/// writes.
fn anthropic_input(u: Option<&Value>) -> u64 {
    u64_at(u, "input_tokens")
        .saturating_add(u64_at(u, "cache_read_input_tokens"))
        .saturating_add(u64_at(u, "cache_creation_input_tokens"))
}

/// Collects a streamed answer as it passes, bounded by `limit` bytes of answer text.
#[derive(Debug)]
pub struct StreamAssembler {
    dialect: Api,
    parser: Parser,
    limit: usize,
    model: String,
    content: String,
    finish: String,
    input: u64,
    output: u64,
    done: bool,
    failed: Option<Skip>,
}

impl StreamAssembler {
    /// An assembler for `dialect` keeping at most `limit` bytes of answer text.
    pub fn new(dialect: Api, limit: usize) -> StreamAssembler {
        StreamAssembler {
            dialect,
            parser: Parser::new(limit.clamp(1024, 64 * 1024)),
            limit,
            model: String::new(),
            content: String::new(),
            finish: String::new(),
            input: 0,
            output: 0,
            done: false,
            failed: None,
        }
    }

    /// Whether the stream already proved uncacheable (later chunks need not be fed).
    pub fn failed(&self) -> Option<Skip> {
        self.failed
    }

    /// Feeds the next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        let mut events: Vec<(String, Option<Value>, bool)> = Vec::new();
        let fed = self.parser.feed(chunk, |e| {
            let done = e.is_done();
            let data = if done {
                None
            } else {
                e.data()
                    .and_then(|d| serde_json::from_slice::<Value>(d).ok())
            };
            events.push((e.event_type().to_string(), data, done));
        });
        if fed.is_err() {
            self.failed = Some(Skip::TooLarge);
            return;
        }
        for (kind, data, done) in events {
            self.event(&kind, data.as_ref(), done);
            if self.failed.is_some() {
                return;
            }
        }
        if self.content.len() > self.limit {
            self.failed = Some(Skip::TooLarge);
            self.content = String::new();
        }
    }

    fn event(&mut self, kind: &str, data: Option<&Value>, done: bool) {
        if done {
            self.done = true;
            return;
        }
        let Some(v) = data else { return };
        if v.get("error").is_some() || kind == "error" {
            self.failed = Some(Skip::Incomplete);
            return;
        }
        match self.dialect {
            Api::AnthropicMessages => self.anthropic(v),
            Api::Responses => self.responses(kind, v),
            _ => self.openai(v),
        }
    }

    fn responses(&mut self, kind: &str, v: &Value) {
        let kind = v.get("type").and_then(Value::as_str).unwrap_or(kind);
        match kind {
            "response.created" | "response.in_progress" => {
                if let Some(m) = v.get("response").map(|r| str_at(r, "model")) {
                    if !m.is_empty() {
                        self.model = m;
                    }
                }
            }
            "response.output_item.added" => {
                let item = v.get("item").and_then(|i| i.get("type"));
                if !matches!(item.and_then(Value::as_str), Some("message" | "reasoning")) {
                    self.failed = Some(Skip::NotText);
                }
            }
            "response.content_part.added" => {
                let part = v.get("part").and_then(|p| p.get("type"));
                match part.and_then(Value::as_str) {
                    Some("output_text") => {}
                    Some("refusal") => self.failed = Some(Skip::Filtered),
                    _ => self.failed = Some(Skip::NotText),
                }
            }
            "response.output_text.annotation.added" => self.failed = Some(Skip::NotText),
            "response.refusal.delta" => self.failed = Some(Skip::Filtered),
            "response.output_text.delta" => {
                if let Some(d) = v.get("delta").and_then(Value::as_str) {
                    self.content.push_str(d);
                }
            }
            "response.completed" | "response.incomplete" => {
                let r = v.get("response");
                if let Some(m) = r.map(|r| str_at(r, "model")).filter(|m| !m.is_empty()) {
                    self.model = m;
                }
                let u = r.and_then(|r| r.get("usage"));
                self.input = u64_at(u, "input_tokens");
                self.output = u64_at(u, "output_tokens");
                self.finish = if kind == "response.completed" {
                    "completed".to_string()
                } else {
                    r.and_then(|r| r.get("incomplete_details"))
                        .map(|d| str_at(d, "reason"))
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "incomplete".to_string())
                };
                self.done = true;
            }
            "response.failed" | "error" => self.failed = Some(Skip::Incomplete),
            _ => {}
        }
    }

    fn openai(&mut self, v: &Value) {
        if self.model.is_empty() {
            self.model = str_at(v, "model");
        }
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            self.input = u64_at(Some(u), "prompt_tokens");
            self.output = u64_at(Some(u), "completion_tokens");
        }
        let Some(choices) = v.get("choices").and_then(Value::as_array) else {
            return;
        };
        for c in choices {
            if c.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                self.failed = Some(Skip::NotText);
                return;
            }
            if let Some(d) = c.get("delta") {
                if d.get("tool_calls").is_some_and(|t| !t.is_null())
                    || d.get("function_call").is_some_and(|t| !t.is_null())
                {
                    self.failed = Some(Skip::NotText);
                    return;
                }
                if let Some(text) = d.get("content").and_then(Value::as_str) {
                    self.content.push_str(text);
                }
            }
            if let Some(f) = c.get("finish_reason").and_then(Value::as_str) {
                self.finish = f.to_string();
            }
        }
    }

    fn anthropic(&mut self, v: &Value) {
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let m = v.get("message");
                self.model = m.map(|m| str_at(m, "model")).unwrap_or_default();
                self.input = anthropic_input(m.and_then(|m| m.get("usage")));
            }
            "content_block_start" => {
                let kind = v
                    .get("content_block")
                    .and_then(|b| b.get("type"))
                    .and_then(Value::as_str);
                if kind != Some("text") {
                    self.failed = Some(Skip::NotText);
                }
            }
            "content_block_delta" => {
                if let Some(t) = v
                    .get("delta")
                    .filter(|d| d.get("type").and_then(Value::as_str) == Some("text_delta"))
                    .and_then(|d| d.get("text"))
                    .and_then(Value::as_str)
                {
                    self.content.push_str(t);
                }
            }
            "message_delta" => {
                if let Some(r) = v
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    self.finish = r.to_string();
                }
                if let Some(o) = v
                    .get("usage")
                    .and_then(|u| u.get("output_tokens"))
                    .and_then(Value::as_u64)
                {
                    self.output = o;
                }
            }
            "message_stop" => self.done = true,
            _ => {}
        }
    }

    /// Ends the stream: the entry when it completed normally.
    pub fn finish(self, now_ms: u64) -> Result<Entry, Skip> {
        if let Some(s) = self.failed {
            return Err(s);
        }
        let complete = match self.dialect {
            Api::AnthropicMessages | Api::Responses => self.done,
            // Some servers end without [DONE]: a finish reason is the normal ending then.
            _ => self.done || !self.finish.is_empty(),
        };
        if !complete || self.finish.is_empty() {
            return Err(Skip::Incomplete);
        }
        if filtered(&self.finish) {
            return Err(Skip::Filtered);
        }
        Ok(Entry {
            created_ms: now_ms,
            dialect: self.dialect,
            model: self.model,
            content: self.content,
            finish_reason: self.finish,
            input_tokens: self.input,
            output_tokens: self.output,
            json: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_json_and_skips() {
        let e = from_json(Api::ChatCompletions, br#"{"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#, 5).unwrap();
        assert_eq!(
            (e.content.as_str(), e.input_tokens, e.output_tokens),
            ("hi", 3, 1)
        );
        assert!(e.json.is_some());
        let f = from_json(Api::ChatCompletions, br#"{"choices":[{"index":0,"message":{"content":""},"finish_reason":"content_filter"}]}"#, 0);
        assert_eq!(f, Err(Skip::Filtered));
        let t = from_json(Api::ChatCompletions, br#"{"choices":[{"index":0,"message":{"content":null,"tool_calls":[{}]},"finish_reason":"tool_calls"}]}"#, 0);
        assert_eq!(t, Err(Skip::NotText));
        assert_eq!(
            from_json(Api::ChatCompletions, b"nope", 0),
            Err(Skip::Malformed)
        );
    }

    #[test]
    fn anthropic_json() {
        let body = br#"{"model":"c","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"stop_reason":"end_turn","usage":{"input_tokens":4,"output_tokens":2}}"#;
        let e = from_json(Api::AnthropicMessages, body, 0).unwrap();
        assert_eq!(
            (e.content.as_str(), e.input_tokens, e.output_tokens),
            ("ab", 4, 2)
        );
        let cached = br#"{"model":"c","content":[{"type":"text","text":"a"}],"stop_reason":"end_turn","usage":{"input_tokens":4,"cache_read_input_tokens":10,"cache_creation_input_tokens":3,"output_tokens":2}}"#;
        let e = from_json(Api::AnthropicMessages, cached, 0).unwrap();
        assert_eq!(
            e.input_tokens, 17,
            "cache reads and writes are prompt tokens"
        );
        let tool = br#"{"content":[{"type":"tool_use","id":"t"}],"stop_reason":"tool_use"}"#;
        assert_eq!(
            from_json(Api::AnthropicMessages, tool, 0),
            Err(Skip::NotText)
        );
        let cut = br#"{"content":[{"type":"text","text":"a"}],"stop_reason":null}"#;
        assert_eq!(
            from_json(Api::AnthropicMessages, cut, 0),
            Err(Skip::Incomplete)
        );
    }

    #[test]
    fn openai_stream_split_anywhere() {
        let s = "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
                 data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n\
                 data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n\
                 data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}\n\n\
                 data: [DONE]\n\n";
        for split in [1usize, 7, 50] {
            let mut a = StreamAssembler::new(Api::ChatCompletions, 1000);
            for c in s.as_bytes().chunks(split) {
                a.feed(c);
            }
            let e = a.finish(1).unwrap();
            assert_eq!(
                (e.content.as_str(), e.finish_reason.as_str()),
                ("Hello", "stop")
            );
            assert_eq!((e.input_tokens, e.output_tokens), (4, 2));
        }
        let mut cut = StreamAssembler::new(Api::ChatCompletions, 1000);
        cut.feed(&s.as_bytes()[..150]);
        assert_eq!(cut.finish(1), Err(Skip::Incomplete));
        let mut small = StreamAssembler::new(Api::ChatCompletions, 3);
        small.feed(s.as_bytes());
        assert_eq!(small.finish(1), Err(Skip::TooLarge));
    }

    #[test]
    fn responses_json() {
        let body = br#"{"id":"resp_1","object":"response","status":"completed","model":"gpt-5","output":[{"type":"reasoning","id":"rs_1","summary":[]},{"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"Hi ","annotations":[]},{"type":"output_text","text":"there"}]}],"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":3,"total_tokens":13}}"#;
        let e = from_json(Api::Responses, body, 0).unwrap();
        assert_eq!(
            (
                e.content.as_str(),
                e.finish_reason.as_str(),
                e.model.as_str()
            ),
            ("Hi there", "completed", "gpt-5")
        );
        assert_eq!((e.input_tokens, e.output_tokens), (10, 3));
        let cut = br#"{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[{"type":"message","content":[{"type":"output_text","text":"Hi"}]}]}"#;
        assert_eq!(
            from_json(Api::Responses, cut, 0).unwrap().finish_reason,
            "max_output_tokens"
        );
        for (body, skip) in [
            (&br#"{"status":"completed","output":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"}]}"#[..], Skip::NotText),
            (br#"{"status":"completed","output":[{"type":"web_search_call","id":"ws"},{"type":"message","content":[{"type":"output_text","text":"x"}]}]}"#, Skip::NotText),
            (br#"{"status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"x","annotations":[{"type":"url_citation"}]}]}]}"#, Skip::NotText),
            (br#"{"status":"completed","output":[{"type":"message","content":[{"type":"refusal","refusal":"no"}]}]}"#, Skip::Filtered),
            (br#"{"status":"incomplete","incomplete_details":{"reason":"content_filter"},"output":[]}"#, Skip::Filtered),
            (br#"{"status":"queued","output":[]}"#, Skip::Incomplete),
            (br#"{"status":"completed"}"#, Skip::Malformed),
        ] {
            assert_eq!(from_json(Api::Responses, body, 0), Err(skip));
        }
    }

    #[test]
    fn responses_stream() {
        let s = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-5\",\"status\":\"in_progress\",\"error\":null,\"output\":[]}}\n\n\
                 event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_1\",\"content\":[]}}\n\n\
                 event: response.content_part.added\ndata: {\"type\":\"response.content_part.added\",\"part\":{\"type\":\"output_text\",\"text\":\"\"}}\n\n\
                 event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Yo\"}\n\n\
                 event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"!\"}\n\n\
                 event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"model\":\"gpt-5\",\"usage\":{\"input_tokens\":9,\"output_tokens\":2}}}\n\n";
        for split in [1usize, 13, 1000] {
            let mut a = StreamAssembler::new(Api::Responses, 1000);
            for c in s.as_bytes().chunks(split) {
                a.feed(c);
            }
            let e = a.finish(0).unwrap();
            assert_eq!(
                (
                    e.content.as_str(),
                    e.finish_reason.as_str(),
                    e.model.as_str()
                ),
                ("Yo!", "completed", "gpt-5")
            );
            assert_eq!((e.input_tokens, e.output_tokens), (9, 2));
        }
        let cut = &s[..s.find("event: response.completed").unwrap()];
        let mut a = StreamAssembler::new(Api::Responses, 1000);
        a.feed(cut.as_bytes());
        assert_eq!(a.finish(0), Err(Skip::Incomplete));
        let mut t = StreamAssembler::new(Api::Responses, 1000);
        t.feed(
            s.replace(r#""type":"message""#, r#""type":"function_call""#)
                .as_bytes(),
        );
        assert_eq!(t.finish(0), Err(Skip::NotText));
        let mut f = StreamAssembler::new(Api::Responses, 1000);
        f.feed(
            s.replace("response.completed", "response.failed")
                .as_bytes(),
        );
        assert_eq!(f.finish(0), Err(Skip::Incomplete));
    }

    #[test]
    fn anthropic_stream() {
        let s = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"c\",\"usage\":{\"input_tokens\":9}}}\n\n\
                 event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
                 event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Yo\"}}\n\n\
                 event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}\n\n\
                 event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let mut a = StreamAssembler::new(Api::AnthropicMessages, 1000);
        a.feed(s.as_bytes());
        let e = a.finish(0).unwrap();
        assert_eq!(
            (e.content.as_str(), e.input_tokens, e.output_tokens),
            ("Yo", 9, 1)
        );
        let mut r = StreamAssembler::new(Api::AnthropicMessages, 1000);
        r.feed(s.replace("end_turn", "refusal").as_bytes());
        assert_eq!(r.finish(0), Err(Skip::Filtered));
    }
}
