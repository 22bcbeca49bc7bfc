//! Neutral events → OpenAI `chat.completion.chunk` SSE.
//!
//! The first event writes the role chunk `{"role":"assistant","content":""}` (with the
//! upstream id and model when [`Event::Start`] named them); text goes to `content`,
//! `reasoning_content` or `refusal`; a tool call's first chunk carries `id`, `type` and
//! `name` with empty `arguments`, later chunks argument fragments; [`Event::Stop`] writes the
//! `finish_reason` chunk; [`Event::Done`] (or [`Encoder::finish`]) writes the usage chunk
//! with `choices: []` when the client asked for `stream_options.include_usage`, then
//! `data: [DONE]`. An [`Event::Error`] becomes `data: {"error":{...}}` and ends the stream.

use super::super::{Channel, Encoder, Event, StopReason};
use super::write_json;
use crate::llm::openai::OpenAiUsage;
use crate::llm::Usage;
use serde::Serialize;

/// Encoder state for one OpenAI chunk stream.
#[derive(Debug, Clone)]
pub struct OpenAiEncoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    usage: Option<Usage>,
    started: bool,
    stopped: bool,
    done: bool,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChoiceOut<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<OpenAiUsage>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    delta: DeltaOut<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize, Default)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolOut<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolOut<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FnOut<'a>,
}

#[derive(Serialize)]
struct FnOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl OpenAiEncoder {
    /// An encoder for one stream: `id`/`model` are used unless [`Event::Start`] names the
    /// upstream's; `created` stamps every chunk; `include_usage` adds the usage chunk.
    pub fn new(
        id: impl Into<String>,
        model: impl Into<String>,
        created: u64,
        include_usage: bool,
    ) -> Self {
        OpenAiEncoder {
            id: id.into(),
            model: model.into(),
            created,
            include_usage,
            usage: None,
            started: false,
            stopped: false,
            done: false,
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: DeltaOut<'_>, finish: Option<&str>) {
        let choices = [ChoiceOut {
            index: 0,
            delta,
            finish_reason: finish,
        }];
        self.write_chunk(out, &choices, None);
    }

    /// Writes one `chat.completion.chunk` event of this stream.
    fn write_chunk(
        &self,
        out: &mut Vec<u8>,
        choices: &[ChoiceOut<'_>],
        usage: Option<OpenAiUsage>,
    ) {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        write_json(out, None, &chunk);
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            let role = DeltaOut {
                role: Some("assistant"),
                content: Some(""),
                ..DeltaOut::default()
            };
            self.chunk(out, role, None);
        }
    }

    fn tool(&self, out: &mut Vec<u8>, call: ToolOut<'_>) {
        let delta = DeltaOut {
            tool_calls: Some([call]),
            ..DeltaOut::default()
        };
        self.chunk(out, delta, None);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        self.ensure_started(out);
        if !self.stopped {
            self.stopped = true;
            self.chunk(out, DeltaOut::default(), Some(StopReason::End.to_openai()));
        }
        if self.include_usage {
            let usage = Some(self.usage.unwrap_or_default().to_openai());
            self.write_chunk(out, &[], usage);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.done = true;
    }
}

impl Encoder for OpenAiEncoder {
    fn encode(&mut self, event: &Event<'_>, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            Event::Start { id, model } => {
                if !self.started {
                    if let Some(id) = id.as_deref().filter(|i| !i.is_empty()) {
                        id.clone_into(&mut self.id);
                    }
                    if let Some(m) = model.as_deref().filter(|m| !m.is_empty()) {
                        m.clone_into(&mut self.model);
                    }
                }
                self.ensure_started(out);
            }
            Event::Text { channel, text } => {
                self.ensure_started(out);
                let mut delta = DeltaOut::default();
                match channel {
                    Channel::Content => delta.content = Some(text),
                    Channel::Reasoning => delta.reasoning_content = Some(text),
                    Channel::Refusal => delta.refusal = Some(text),
                }
                self.chunk(out, delta, None);
            }
            Event::ToolStart { index, id, name } => {
                self.ensure_started(out);
                let generated;
                let id = if id.is_empty() {
                    generated = format!("call_{index}");
                    &generated
                } else {
                    id.as_ref()
                };
                let call = ToolOut {
                    index: *index,
                    id: Some(id),
                    kind: Some("function"),
                    function: FnOut {
                        name: Some(name),
                        arguments: "",
                    },
                };
                self.tool(out, call);
            }
            Event::ToolArgs { index, fragment } => {
                self.ensure_started(out);
                let call = ToolOut {
                    index: *index,
                    id: None,
                    kind: None,
                    function: FnOut {
                        name: None,
                        arguments: fragment,
                    },
                };
                self.tool(out, call);
            }
            Event::Stop(reason) => {
                self.ensure_started(out);
                if !self.stopped {
                    self.stopped = true;
                    self.chunk(out, DeltaOut::default(), Some(reason.to_openai()));
                }
            }
            Event::Usage(u) => self.usage = Some(*u),
            Event::Error {
                kind,
                message,
                code,
                ..
            } => {
                let body = ErrorBody {
                    message,
                    kind,
                    param: None,
                    code: code.as_deref(),
                };
                write_json(out, None, &ErrorOut { error: body });
                self.done = true;
            }
            Event::Done => self.close(out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.done {
            self.close(out);
        }
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::stream::tests::util::json_events;

    #[test]
    fn writes_chunks_like_the_chunk_writer() {
        let mut e = OpenAiEncoder::new("fallback", "client-model", 1700000000, true);
        let mut out = Vec::new();
        let events = [
            Event::Start {
                id: Some("msg_01".into()),
                model: Some("claude".into()),
            },
            Event::Usage(Usage {
                input: 70,
                output: 1,
                total: 71,
                cached_input: 20,
                ..Usage::default()
            }),
            Event::Text {
                channel: Channel::Reasoning,
                text: "Need".into(),
            },
            Event::Text {
                channel: Channel::Content,
                text: "Hi\n".into(),
            },
            Event::Text {
                channel: Channel::Refusal,
                text: "No.".into(),
            },
            Event::ToolStart {
                index: 0,
                id: "toolu_A".into(),
                name: "weather".into(),
            },
            Event::ToolArgs {
                index: 0,
                fragment: "{\"city\":".into(),
            },
            Event::Stop(StopReason::ToolCalls),
            Event::Usage(Usage {
                input: 70,
                output: 77,
                total: 147,
                cached_input: 20,
                ..Usage::default()
            }),
            Event::Done,
        ];
        for ev in &events {
            e.encode(ev, &mut out);
        }
        assert!(e.is_done());
        e.finish(&mut out);
        let ev = json_events(&out);
        assert_eq!(
            ev[0].1["choices"][0]["delta"],
            serde_json::json!({"role": "assistant", "content": ""})
        );
        assert_eq!(
            (ev[0].1["id"].as_str(), ev[0].1["model"].as_str()),
            (Some("msg_01"), Some("claude"))
        );
        assert_eq!(ev[0].1["object"], "chat.completion.chunk");
        assert_eq!(ev[0].1["created"], 1700000000);
        assert_eq!(ev[1].1["choices"][0]["delta"]["reasoning_content"], "Need");
        assert_eq!(ev[2].1["choices"][0]["delta"]["content"], "Hi\n");
        assert_eq!(ev[3].1["choices"][0]["delta"]["refusal"], "No.");
        assert_eq!(
            ev[4].1["choices"][0]["delta"]["tool_calls"][0],
            serde_json::json!({"index": 0, "id": "toolu_A", "type": "function", "function": {"name": "weather", "arguments": ""}})
        );
        assert_eq!(
            ev[5].1["choices"][0]["delta"]["tool_calls"][0],
            serde_json::json!({"index": 0, "function": {"arguments": "{\"city\":"}})
        );
        assert_eq!(ev[6].1["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(ev[7].1["choices"], serde_json::json!([]));
        assert_eq!(ev[7].1["usage"]["prompt_tokens"], 70);
        assert_eq!(ev[7].1["usage"]["completion_tokens"], 77);
        assert_eq!(
            ev[7].1["usage"]["prompt_tokens_details"]["cached_tokens"],
            20
        );
        assert_eq!(ev[8].1, "[DONE]");
        assert_eq!(ev.len(), 9);
    }

    #[test]
    fn closes_without_usage_and_writes_errors() {
        let mut e = OpenAiEncoder::new("id", "m", 0, false);
        let mut out = Vec::new();
        e.encode(
            &Event::Text {
                channel: Channel::Content,
                text: "x".into(),
            },
            &mut out,
        );
        e.finish(&mut out);
        let ev = json_events(&out);
        assert_eq!(ev[2].1["choices"][0]["finish_reason"], "stop");
        assert_eq!(ev[3].1, "[DONE]");
        assert_eq!(ev.len(), 4);

        let mut e = OpenAiEncoder::new("id", "m", 0, true);
        let mut out = Vec::new();
        e.fail(&crate::llm::stream::StreamError::upstream("cut"), &mut out);
        e.finish(&mut out);
        let ev = json_events(&out);
        assert_eq!(ev.len(), 1);
        assert_eq!(
            ev[0].1["error"],
            serde_json::json!({"message": "cut", "type": "api_error", "param": null, "code": null})
        );
    }
}
