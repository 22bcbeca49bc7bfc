//! Test-only upstream writers: an [`Answer`] written as each upstream dialect's SSE bytes.
//! OpenAI, Anthropic and Responses upstreams reuse the encoders; Gemini, Bedrock (framed as
//! SSE with the `:event-type` as event name) and DashScope have small writers here.

use crate::llm::stream::{
    AnthropicEncoder, Encoder, Event, OpenAiEncoder, ResponsesEncoder, StopReason,
};
use crate::llm::Usage;
use serde_json::{json, Value};

/// A generated answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Reasoning fragments, in order.
    pub reasoning: Vec<String>,
    /// Content fragments, in order.
    pub content: Vec<String>,
    /// Tool calls: name and argument fragments (whose concatenation is a JSON object).
    pub tools: Vec<(String, Vec<String>)>,
    /// Why it stopped (`ToolCalls` exactly when there are tools).
    pub stop: StopReason,
    /// Final usage.
    pub usage: Usage,
}

/// The upstream dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
    DashScope,
    Responses,
}

pub const UPSTREAMS: [Upstream; 6] = [
    Upstream::OpenAi,
    Upstream::Anthropic,
    Upstream::Gemini,
    Upstream::Bedrock,
    Upstream::DashScope,
    Upstream::Responses,
];

impl Answer {
    /// The answer as neutral events (what an upstream encoder is fed).
    pub fn events(&self) -> Vec<Event<'static>> {
        let mut ev = vec![
            Event::Start {
                id: Some("up-1".into()),
                model: Some("up-model".into()),
            },
            Event::Usage(self.usage),
        ];
        for t in &self.reasoning {
            ev.push(Event::Text {
                channel: crate::llm::stream::Channel::Reasoning,
                text: t.clone().into(),
            });
        }
        for t in &self.content {
            ev.push(Event::Text {
                channel: crate::llm::stream::Channel::Content,
                text: t.clone().into(),
            });
        }
        for (i, (name, frags)) in self.tools.iter().enumerate() {
            let index = i as u32;
            ev.push(Event::ToolStart {
                index,
                id: format!("call_up{i}").into(),
                name: name.clone().into(),
            });
            for f in frags {
                ev.push(Event::ToolArgs {
                    index,
                    fragment: f.clone().into(),
                });
            }
        }
        ev.push(Event::Stop(self.stop));
        ev.push(Event::Usage(self.usage));
        ev.push(Event::Done);
        ev
    }

    /// The answer as `upstream`'s wire bytes.
    pub fn write(&self, upstream: Upstream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut run = |enc: &mut dyn Encoder| {
            for e in self.events() {
                enc.encode(&e, &mut out);
            }
            enc.finish(&mut out);
        };
        match upstream {
            Upstream::OpenAi => run(&mut OpenAiEncoder::new("x", "m", 1, true)),
            Upstream::Anthropic => run(&mut AnthropicEncoder::new("x", "m")),
            Upstream::Responses => run(&mut ResponsesEncoder::new("x", "m", 1)),
            Upstream::Gemini => self.gemini(&mut out),
            Upstream::Bedrock => self.bedrock(&mut out),
            Upstream::DashScope => self.dashscope(&mut out),
        }
        out
    }

    fn gemini(&self, out: &mut Vec<u8>) {
        let u = &self.usage;
        let usage = json!({"promptTokenCount": u.input, "candidatesTokenCount": u.output - u.reasoning,
            "thoughtsTokenCount": u.reasoning, "cachedContentTokenCount": u.cached_input,
            "totalTokenCount": u.total});
        let chunk = |parts: Value, finish: Option<&str>| {
            let mut c = json!({"candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0}],
                "usageMetadata": usage, "modelVersion": "up-model", "responseId": "up-1"});
            if let Some(f) = finish {
                c["candidates"][0]["finishReason"] = f.into();
            }
            format!("data: {c}\r\n\r\n")
        };
        for t in &self.reasoning {
            out.extend(chunk(json!([{"text": t, "thought": true}]), None).bytes());
        }
        for t in &self.content {
            out.extend(chunk(json!([{"text": t}]), None).bytes());
        }
        for (i, (name, frags)) in self.tools.iter().enumerate() {
            // args are written raw so the decoder sees the exact text.
            let args: String = frags.concat();
            let part = format!(
                r#"{{"functionCall":{{"id":"call_up{i}","name":{},"args":{args}}}}}"#,
                json!(name)
            );
            let c = format!(
                r#"{{"candidates":[{{"content":{{"parts":[{part}],"role":"model"}},"index":0}}]}}"#
            );
            out.extend(format!("data: {c}\r\n\r\n").bytes());
        }
        out.extend(chunk(json!([]), Some(self.stop.to_gemini())).bytes());
    }

    fn bedrock(&self, out: &mut Vec<u8>) {
        let mut ev = |name: &str, payload: Value| {
            out.extend(format!("event: {name}\ndata: {payload}\n\n").bytes());
        };
        ev("messageStart", json!({"role": "assistant"}));
        for t in &self.reasoning {
            ev(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": t}}}),
            );
        }
        ev("contentBlockStop", json!({"contentBlockIndex": 0}));
        for t in &self.content {
            ev(
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"text": t}}),
            );
        }
        for (i, (name, frags)) in self.tools.iter().enumerate() {
            let block = i + 2;
            ev(
                "contentBlockStart",
                json!({"contentBlockIndex": block, "start": {"toolUse": {"toolUseId": format!("tooluse_up{i}"), "name": name}}}),
            );
            for f in frags {
                ev(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": block, "delta": {"toolUse": {"input": f}}}),
                );
            }
            ev("contentBlockStop", json!({"contentBlockIndex": block}));
        }
        ev("messageStop", json!({"stopReason": self.stop.to_bedrock()}));
        let u = &self.usage;
        ev(
            "metadata",
            json!({"usage": {"inputTokens": u.input - u.cached_input, "outputTokens": u.output,
            "totalTokens": u.total, "cacheReadInputTokens": u.cached_input}, "metrics": {"latencyMs": 5}}),
        );
    }

    fn dashscope(&self, out: &mut Vec<u8>) {
        let mut n = 0;
        let mut ev = |message: Value, finish: &str, usage: Option<Value>| {
            n += 1;
            let mut d = json!({"output": {"choices": [{"message": message, "finish_reason": finish}]}, "request_id": "up-1"});
            if let Some(u) = usage {
                d["usage"] = u;
            }
            out.extend(format!("id:{n}\nevent:result\n:HTTP_STATUS/200\ndata:{d}\n\n").bytes());
        };
        for t in &self.reasoning {
            ev(
                json!({"content": "", "reasoning_content": t, "role": "assistant"}),
                "null",
                None,
            );
        }
        for t in &self.content {
            ev(json!({"content": t, "role": "assistant"}), "null", None);
        }
        for (i, (name, frags)) in self.tools.iter().enumerate() {
            for (j, f) in frags.iter().enumerate() {
                let call = if j == 0 {
                    json!({"index": i, "id": format!("call_up{i}"), "type": "function", "function": {"name": name, "arguments": f}})
                } else {
                    json!({"index": i, "id": "", "type": "function", "function": {"arguments": f}})
                };
                ev(
                    json!({"content": "", "role": "assistant", "tool_calls": [call]}),
                    "null",
                    None,
                );
            }
        }
        let u = &self.usage;
        let usage = json!({"input_tokens": u.input, "output_tokens": u.output, "total_tokens": u.total,
            "prompt_tokens_details": {"cached_tokens": u.cached_input},
            "output_tokens_details": {"reasoning_tokens": u.reasoning}});
        ev(
            json!({"content": "", "role": "assistant"}),
            self.stop.to_dashscope(),
            Some(usage),
        );
    }
}
