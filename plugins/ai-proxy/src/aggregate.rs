//! Assembles OpenAI `chat.completion.chunk` events into one `chat.completion`, for clients that
//! did not ask for a stream when the upstream is called in streaming mode (Gemini and Bedrock
//! paths carry the stream choice, and on stock Envoy the path is fixed before the body is
//! read). Memory is bounded by the answer itself: text is appended, tool calls are kept by
//! index.

use crate::error::TranslateError;
use aigw::llm::openai as oa;
use aigw::llm::{Extra, Usage};

/// A tool call being assembled.
#[derive(Debug, Default, Clone)]
struct ToolAcc {
    id: String,
    name: String,
    arguments: String,
}

/// Collects one streamed answer.
#[derive(Debug, Default)]
pub struct Aggregator {
    id: String,
    model: String,
    created: u64,
    text: Option<String>,
    reasoning: String,
    tools: Vec<ToolAcc>,
    finish: Option<String>,
    error: Option<TranslateError>,
}

impl Aggregator {
    /// A fresh aggregator.
    pub fn new() -> Self {
        Aggregator::default()
    }

    /// Feeds one SSE `data` payload of the OpenAI stream (`[DONE]` is ignored). An in-stream
    /// error event is remembered and reported by [`finish`](Self::finish).
    pub fn feed(&mut self, data: &[u8]) {
        if data == b"[DONE]" {
            return;
        }
        if data.starts_with(b"{\"error\"") {
            let e = crate::error::parse_upstream_error(
                crate::error::ErrorDialect::OpenAi,
                502,
                data,
                None,
            );
            self.error = Some(TranslateError {
                status: e.status,
                kind: e.kind,
                message: e.message,
                param: None,
                code: e.code,
            });
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<oa::ChatCompletionChunk>(data) else {
            return;
        };
        if self.id.is_empty() {
            self.id = chunk.id;
        }
        if !chunk.model.is_empty() {
            self.model = chunk.model;
        }
        self.created = self.created.max(chunk.created);
        for c in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(t) = c.delta.content {
                self.text.get_or_insert_with(String::new).push_str(&t);
            }
            if let Some(r) = c.delta.reasoning_content {
                self.reasoning.push_str(&r);
            }
            for tc in c.delta.tool_calls.into_iter().flatten() {
                let i = usize::try_from(tc.index).unwrap_or(usize::MAX);
                if i >= 1024 {
                    continue;
                }
                if self.tools.len() <= i {
                    self.tools.resize(i + 1, ToolAcc::default());
                }
                if let Some(acc) = self.tools.get_mut(i) {
                    if let Some(id) = tc.id {
                        acc.id = id;
                    }
                    if let Some(f) = tc.function {
                        if let Some(n) = f.name {
                            acc.name.push_str(&n);
                        }
                        if let Some(a) = f.arguments {
                            acc.arguments.push_str(&a);
                        }
                    }
                }
            }
            if let Some(f) = c.finish_reason {
                self.finish = Some(f);
            }
        }
    }

    /// The assembled completion with `usage`, or the in-stream error.
    pub fn finish(self, usage: Option<Usage>) -> Result<oa::ChatCompletion, TranslateError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let calls: Vec<oa::ToolCall> = self
            .tools
            .into_iter()
            .filter(|t| !t.name.is_empty() || !t.id.is_empty())
            .map(|t| oa::ToolCall {
                id: t.id,
                kind: "function".into(),
                function: oa::FunctionCall {
                    name: t.name,
                    arguments: t.arguments,
                },
            })
            .collect();
        let content = match self.text {
            Some(t) => Some(oa::MessageContent::Text(t)),
            None if calls.is_empty() => Some(oa::MessageContent::Text(String::new())),
            None => None,
        };
        let message = oa::ChatMessage {
            role: oa::Role::Assistant,
            content,
            name: None,
            tool_calls: (!calls.is_empty()).then_some(calls),
            tool_call_id: None,
            reasoning_content: (!self.reasoning.is_empty()).then_some(self.reasoning),
            refusal: None,
            extra: Extra::new(),
        };
        Ok(oa::ChatCompletion {
            id: self.id,
            object: "chat.completion".into(),
            created: self.created,
            model: self.model,
            choices: vec![oa::Choice {
                index: 0,
                message,
                finish_reason: Some(self.finish.unwrap_or_else(|| "stop".into())),
                logprobs: None,
            }],
            usage: usage.map(|u| u.to_openai()),
            system_fingerprint: None,
            extra: Extra::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_text_and_tool_calls() {
        let mut a = Aggregator::new();
        a.feed(br#"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#);
        a.feed(br#"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}"#);
        a.feed(br#"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t1","type":"function","function":{"name":"f","arguments":"{\"a\""}}]},"finish_reason":null}]}"#);
        a.feed(br#"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]}"#);
        a.feed(b"[DONE]");
        let c = a.finish(None).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "Hello");
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["id"], "c1");
    }

    #[test]
    fn in_stream_error_is_reported() {
        let mut a = Aggregator::new();
        a.feed(br#"{"error":{"message":"quota","type":"rate_limit_exceeded","code":"RESOURCE_EXHAUSTED"}}"#);
        let e = a.finish(None).unwrap_err();
        assert_eq!(e.message, "quota");
    }
}
