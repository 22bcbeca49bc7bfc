//! Neutral events → one OpenAI `chat.completion`, for clients that did not ask for a stream
//! when the upstream is called in streaming mode. Memory is bounded by the answer itself: text
//! is appended, tool calls are kept by index (at most [`MAX_BLOCKS`](super::MAX_BLOCKS)).

use super::{Channel, Event, StopReason, StreamError, MAX_BLOCKS};
use crate::llm::openai as oa;
use crate::llm::{Extra, Usage};

/// A tool call being assembled.
#[derive(Debug, Default, Clone)]
struct ToolAcc {
    id: String,
    name: String,
    arguments: String,
}

/// Collects one streamed answer into a `chat.completion`.
#[derive(Debug, Default)]
pub struct Aggregator {
    id: String,
    model: String,
    created: u64,
    content: Option<String>,
    reasoning: String,
    refusal: String,
    tools: Vec<ToolAcc>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
    error: Option<StreamError>,
}

impl Aggregator {
    /// An aggregator: `id`/`model` are used unless [`Event::Start`] names the upstream's;
    /// `created` is Unix seconds.
    pub fn new(id: &str, model: &str, created: u64) -> Self {
        Aggregator {
            id: id.to_string(),
            model: model.to_string(),
            created,
            ..Aggregator::default()
        }
    }

    /// Takes in one event. An [`Event::Error`] is remembered and returned by
    /// [`finish`](Self::finish); events after it are ignored.
    pub fn push(&mut self, event: &Event<'_>) {
        if self.error.is_some() {
            return;
        }
        match event {
            Event::Start { id, model } => {
                if let Some(id) = id.as_deref().filter(|i| !i.is_empty()) {
                    id.clone_into(&mut self.id);
                }
                if let Some(m) = model.as_deref().filter(|m| !m.is_empty()) {
                    m.clone_into(&mut self.model);
                }
            }
            Event::Text { channel, text } => match channel {
                Channel::Content => self.content.get_or_insert_with(String::new).push_str(text),
                Channel::Reasoning => self.reasoning.push_str(text),
                Channel::Refusal => self.refusal.push_str(text),
            },
            Event::ToolStart { index, id, name } => {
                if let Some(t) = self.tool(*index) {
                    id.as_ref().clone_into(&mut t.id);
                    name.as_ref().clone_into(&mut t.name);
                }
            }
            Event::ToolArgs { index, fragment } => {
                if let Some(t) = self.tool(*index) {
                    t.arguments.push_str(fragment);
                }
            }
            Event::Stop(r) => self.stop = Some(*r),
            Event::Usage(u) => self.usage = Some(*u),
            Event::Error {
                status,
                kind,
                message,
                code,
            } => {
                self.error = Some(StreamError {
                    status: *status,
                    kind: kind.to_string(),
                    message: message.to_string(),
                    code: code.as_deref().map(str::to_string),
                })
            }
            Event::Done => {}
        }
    }

    fn tool(&mut self, index: u32) -> Option<&mut ToolAcc> {
        let i = usize::try_from(index).ok().filter(|i| *i < MAX_BLOCKS)?;
        if self.tools.len() <= i {
            self.tools.resize(i + 1, ToolAcc::default());
        }
        self.tools.get_mut(i)
    }

    /// The usage seen so far.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The assembled completion (with `usage` when the upstream reported it), or the
    /// in-stream error.
    pub fn finish(self) -> Result<oa::ChatCompletion, StreamError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let calls: Vec<oa::ToolCall> = self
            .tools
            .into_iter()
            .enumerate()
            .filter(|(_, t)| !t.name.is_empty() || !t.id.is_empty())
            .map(|(i, t)| {
                oa::ToolCall::function(
                    if t.id.is_empty() {
                        format!("call_{i}")
                    } else {
                        t.id
                    },
                    t.name,
                    t.arguments,
                )
            })
            .collect();
        let content = match self.content {
            Some(t) => Some(oa::MessageContent::Text(t)),
            None if calls.is_empty() && self.refusal.is_empty() => {
                Some(oa::MessageContent::Text(String::new()))
            }
            None => None,
        };
        let message = oa::ChatMessage {
            role: oa::Role::Assistant,
            content,
            name: None,
            tool_calls: (!calls.is_empty()).then_some(calls),
            tool_call_id: None,
            reasoning_content: (!self.reasoning.is_empty()).then_some(self.reasoning),
            refusal: (!self.refusal.is_empty()).then_some(self.refusal),
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
                finish_reason: Some(self.stop.unwrap_or(StopReason::End).to_openai().into()),
                logprobs: None,
            }],
            usage: self.usage.map(|u| u.to_openai()),
            system_fingerprint: None,
            extra: Extra::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_text_tools_and_usage() {
        let mut a = Aggregator::new("fallback", "m", 5);
        for ev in [
            Event::Start {
                id: Some("c1".into()),
                model: None,
            },
            Event::Text {
                channel: Channel::Content,
                text: "Hel".into(),
            },
            Event::Text {
                channel: Channel::Reasoning,
                text: "hm".into(),
            },
            Event::Text {
                channel: Channel::Content,
                text: "lo".into(),
            },
            Event::ToolStart {
                index: 0,
                id: "t1".into(),
                name: "f".into(),
            },
            Event::ToolArgs {
                index: 0,
                fragment: "{\"a\"".into(),
            },
            Event::ToolArgs {
                index: 0,
                fragment: ":1}".into(),
            },
            Event::Stop(StopReason::ToolCalls),
            Event::Usage(Usage {
                input: 3,
                output: 4,
                total: 7,
                ..Usage::default()
            }),
            Event::Done,
        ] {
            a.push(&ev);
        }
        let v = serde_json::to_value(a.finish().unwrap()).unwrap();
        assert_eq!(v["id"], "c1");
        assert_eq!(v["model"], "m");
        assert_eq!(v["choices"][0]["message"]["content"], "Hello");
        assert_eq!(v["choices"][0]["message"]["reasoning_content"], "hm");
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["usage"]["total_tokens"], 7);
    }

    #[test]
    fn in_stream_error_is_reported() {
        let mut a = Aggregator::new("i", "m", 0);
        a.push(
            &StreamError {
                status: 429,
                kind: "rate_limit_exceeded".into(),
                message: "quota".into(),
                code: Some("RESOURCE_EXHAUSTED".into()),
            }
            .to_event(),
        );
        let e = a.finish().unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (429, "quota"));
    }
}
