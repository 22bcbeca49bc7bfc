//! OpenAI chat.completion.chunk SSE → Anthropic Messages SSE.
//!
//! The first chunk opens `message_start`; `reasoning_content` (or `reasoning`, as some
//! OpenAI-compatible servers name it) opens a `thinking` block; `content` and `refusal` a `text`
//! block; each new tool call (new `index` or an `id`) a `tool_use` block whose
//! `arguments` fragments become `input_json_delta`s. A block is closed when another kind
//! starts. `finish_reason` is remembered; `message_delta` (stop reason and usage, input fields
//! included since OpenAI reports them only at the end) and `message_stop` are written once the
//! usage chunk, `[DONE]` or the end of the stream arrives.

use super::{write_event, BStr, FirstOnly, StreamTranslator};
use crate::common::openai_finish_to_anthropic;
use crate::error::TranslateError;
use aigw::llm::{Usage, UsageAccumulator, UsageProtocol};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    Thinking,
    Tool(u32),
}

/// State machine translating one OpenAI stream into Anthropic events.
#[derive(Debug)]
pub struct OpenAiToAnthropic {
    id: String,
    model: String,
    usage: UsageAccumulator,
    open: Open,
    block: u32,
    tools_seen: u32,
    stop_reason: Option<&'static str>,
    started: bool,
    done: bool,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    id: Option<BStr<'a>>,
    #[serde(default, borrow)]
    model: Option<BStr<'a>>,
    #[serde(default, borrow)]
    choices: FirstOnly<ChoiceIn<'a>>,
    #[serde(default, borrow)]
    error: Option<ErrorIn<'a>>,
}

#[derive(Deserialize)]
struct ErrorIn<'a> {
    #[serde(default, borrow)]
    message: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct ChoiceIn<'a> {
    #[serde(default, borrow)]
    delta: Option<DeltaIn<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct DeltaIn<'a> {
    #[serde(default, borrow)]
    content: Option<BStr<'a>>,
    #[serde(default, borrow)]
    reasoning_content: Option<BStr<'a>>,
    #[serde(default, borrow)]
    reasoning: Option<BStr<'a>>,
    #[serde(default, borrow)]
    refusal: Option<BStr<'a>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolIn<'a>>>,
}

#[derive(Deserialize)]
struct ToolIn<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default, borrow)]
    id: Option<BStr<'a>>,
    #[serde(default, borrow)]
    function: Option<FnIn<'a>>,
}

#[derive(Deserialize)]
struct FnIn<'a> {
    #[serde(default, borrow)]
    name: Option<BStr<'a>>,
    #[serde(default, borrow)]
    arguments: Option<BStr<'a>>,
}

#[derive(Serialize)]
struct DeltaEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: DeltaBody<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum DeltaBody<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

impl OpenAiToAnthropic {
    /// A translator for one stream; `id`/`model` are used until the first chunk supplies them.
    pub fn new(id: &str, model: &str) -> Self {
        OpenAiToAnthropic {
            id: id.to_string(),
            model: model.to_string(),
            usage: UsageAccumulator::new(UsageProtocol::OpenAi),
            open: Open::None,
            block: 0,
            tools_seen: 0,
            stop_reason: None,
            started: false,
            done: false,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        write_event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "content": [], "model": self.model,
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        );
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open != Open::None {
            write_event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.block}),
            );
            self.block += 1;
            self.open = Open::None;
        }
    }

    fn open_block(&mut self, out: &mut Vec<u8>, kind: Open, block: serde_json::Value) {
        self.close(out);
        write_event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.block, "content_block": block}),
        );
        self.open = kind;
    }

    fn delta(&self, out: &mut Vec<u8>, delta: DeltaBody<'_>) {
        write_event(
            out,
            "content_block_delta",
            &DeltaEvent {
                kind: "content_block_delta",
                index: self.block,
                delta,
            },
        );
    }

    fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        if self.open != Open::Text {
            self.open_block(out, Open::Text, json!({"type": "text", "text": ""}));
        }
        self.delta(out, DeltaBody::Text { text });
    }

    fn complete(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        let mut usage = serde_json::Map::new();
        if let Some(u) = self.usage.usage() {
            let a = u.to_anthropic();
            usage.insert("input_tokens".into(), a.input_tokens.into());
            usage.insert(
                "cache_creation_input_tokens".into(),
                a.cache_creation_input_tokens.unwrap_or(0).into(),
            );
            usage.insert(
                "cache_read_input_tokens".into(),
                a.cache_read_input_tokens.unwrap_or(0).into(),
            );
            usage.insert("output_tokens".into(), a.output_tokens.into());
        } else {
            usage.insert("output_tokens".into(), 0.into());
        }
        write_event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null},
                    "usage": usage}),
        );
        write_event(out, "message_stop", &json!({"type": "message_stop"}));
        self.done = true;
    }

    fn error(&mut self, out: &mut Vec<u8>, message: &str) {
        write_event(
            out,
            "error",
            &json!({"type": "error", "error": {"type": "api_error", "message": message}}),
        );
        self.done = true;
    }
}

impl StreamTranslator for OpenAiToAnthropic {
    fn on_event(
        &mut self,
        _event: Option<&str>,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        if data.trim_ascii() == b"[DONE]" {
            self.complete(out);
            return Ok(());
        }
        let chunk: Chunk = match serde_json::from_slice(data) {
            Ok(c) => c,
            Err(e) => {
                let err = TranslateError::upstream(format!("unparseable OpenAI stream chunk: {e}"));
                self.error(out, &err.message);
                return Err(err);
            }
        };
        if let Some(err) = chunk.error {
            let msg = err
                .message
                .map(|m| m.0.into_owned())
                .unwrap_or_else(|| "upstream error".to_string());
            self.error(out, &msg);
            return Ok(());
        }
        if !self.started {
            if let Some(id) = &chunk.id {
                id.as_str().clone_into(&mut self.id);
            }
            if let Some(m) = &chunk.model {
                m.as_str().clone_into(&mut self.model);
            }
            self.start(out);
        }
        let has_usage = self.usage.feed(data);
        if let Some(choice) = chunk.choices.0 {
            if let Some(d) = choice.delta {
                if let Some(r) = d
                    .reasoning_content
                    .as_ref()
                    .or(d.reasoning.as_ref())
                    .filter(|r| !r.as_str().is_empty())
                {
                    if self.open != Open::Thinking {
                        self.open_block(
                            out,
                            Open::Thinking,
                            json!({"type": "thinking", "thinking": ""}),
                        );
                    }
                    self.delta(
                        out,
                        DeltaBody::Thinking {
                            thinking: r.as_str(),
                        },
                    );
                }
                if let Some(t) = d.content.as_ref().filter(|t| !t.as_str().is_empty()) {
                    self.text(out, t.as_str());
                }
                if let Some(t) = d.refusal.as_ref().filter(|t| !t.as_str().is_empty()) {
                    self.text(out, t.as_str());
                    self.stop_reason = Some("refusal");
                }
                for (pos, tc) in d.tool_calls.iter().flatten().enumerate() {
                    let index = tc.index.unwrap_or(pos as u32);
                    let same = self.open == Open::Tool(index);
                    if !same {
                        let id = tc
                            .id
                            .as_ref()
                            .map(|i| i.as_str().to_string())
                            .unwrap_or_else(|| format!("toolu_{}_{}", self.id, self.tools_seen));
                        let name = tc
                            .function
                            .as_ref()
                            .and_then(|f| f.name.as_ref())
                            .map(BStr::as_str)
                            .unwrap_or("");
                        let block =
                            json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                        self.open_block(out, Open::Tool(index), block);
                        self.tools_seen += 1;
                    }
                    if let Some(a) = tc
                        .function
                        .as_ref()
                        .and_then(|f| f.arguments.as_ref())
                        .filter(|a| !a.as_str().is_empty())
                    {
                        self.delta(
                            out,
                            DeltaBody::InputJson {
                                partial_json: a.as_str(),
                            },
                        );
                    }
                }
            }
            if let Some(f) = &choice.finish_reason {
                if self.stop_reason != Some("refusal") {
                    self.stop_reason = Some(openai_finish_to_anthropic(f.as_str()));
                }
                self.close(out);
            }
        }
        if has_usage && self.stop_reason.is_some() {
            self.complete(out);
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        if self.stop_reason.is_some() {
            // Some compatible servers end without `[DONE]`.
            self.complete(out);
            return Ok(());
        }
        let msg = "OpenAI stream ended before a finish_reason";
        self.error(out, msg);
        Err(TranslateError::upstream(msg))
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.usage()
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::events;
    use super::*;
    use serde_json::Value;

    fn run(chunks: &[&str]) -> Vec<(String, Value)> {
        let mut t = OpenAiToAnthropic::new("fallback", "m");
        let mut out = Vec::new();
        for c in chunks {
            t.on_event(None, c.as_bytes(), &mut out).unwrap();
        }
        t.finish(&mut out).unwrap();
        events(&out)
            .into_iter()
            .map(|(n, d)| (n.unwrap(), serde_json::from_str(&d).unwrap()))
            .collect()
    }

    #[test]
    fn reasoning_text_and_tool_calls() {
        let ev = run(&[
            r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":"Think"},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":10}}}"#,
            "[DONE]",
        ]);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(ev[0].1["message"]["id"], "chatcmpl-9");
        assert_eq!(ev[1].1["content_block"]["type"], "thinking");
        assert_eq!(
            ev[2].1["delta"],
            serde_json::json!({"type": "thinking_delta", "thinking": "Think"})
        );
        assert_eq!(
            ev[5].1["delta"],
            serde_json::json!({"type": "text_delta", "text": "Hi"})
        );
        assert_eq!(ev[5].1["index"], 1);
        assert_eq!(
            ev[7].1["content_block"],
            serde_json::json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {}})
        );
        assert_eq!(ev[8].1["delta"]["partial_json"], "{\"a\":");
        assert_eq!(ev[9].1["delta"]["partial_json"], "1}");
        assert_eq!(ev[11].1["content_block"]["id"], "call_2");
        assert_eq!(ev[11].1["index"], 3);
        assert_eq!(ev[14].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(
            ev[14].1["usage"],
            serde_json::json!({"input_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10, "output_tokens": 12})
        );
    }

    #[test]
    fn ends_without_done_and_errors() {
        let ev = run(&[
            r#"{"id":"x","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"length"}]}"#,
        ]);
        assert_eq!(ev.last().unwrap().0, "message_stop");
        assert_eq!(ev[ev.len() - 2].1["delta"]["stop_reason"], "max_tokens");

        let mut t = OpenAiToAnthropic::new("x", "m");
        let mut out = Vec::new();
        t.on_event(
            None,
            br#"{"id":"x","choices":[{"index":0,"delta":{"content":"par"}}]}"#,
            &mut out,
        )
        .unwrap();
        assert!(t.finish(&mut out).is_err());
        let ev = events(&out);
        assert_eq!(ev.last().unwrap().0.as_deref(), Some("error"));

        let mut t = OpenAiToAnthropic::new("x", "m");
        let mut out = Vec::new();
        t.on_event(
            None,
            br#"{"error":{"message":"rate limited","type":"rate_limit_exceeded"}}"#,
            &mut out,
        )
        .unwrap();
        assert!(t.is_done());
        assert!(String::from_utf8(out).unwrap().contains("rate limited"));
    }
}
