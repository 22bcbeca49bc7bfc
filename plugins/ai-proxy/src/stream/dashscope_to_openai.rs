//! DashScope native SSE (`X-DashScope-SSE: enable`, `incremental_output: true`) → OpenAI
//! chat.completion.chunk SSE.
//!
//! DashScope events look like `id:1` / `event:result` / `:HTTP_STATUS/200` /
//! `data:{"output":{"choices":[{"message":{...},"finish_reason":"null"}]},"usage":{...},"request_id":"..."}`.
//! Each `data` carries increments of `content`, `reasoning_content` and `tool_calls` (the first
//! increment of a call has its id and name, later ones argument fragments); `usage` is
//! cumulative (the latest wins). The event whose `finish_reason` is neither `null` nor the
//! string `"null"` ends the stream: finish chunk, usage chunk (if asked), `[DONE]`. An
//! `event:error` (or a body with `code` and no `output`) becomes an OpenAI error event with
//! the status derived from the code. Only the first choice is streamed.

use super::{slot, ChunkWriter, StreamTranslator};
use crate::dashscope::{content_text, finish_to_openai, GenerationResponse};
use crate::error::{parse_upstream_error, ErrorDialect, TranslateError};
use aigw::llm::Usage;

/// A tool call of the stream.
#[derive(Debug, Clone, Default)]
struct ToolSlot {
    /// Its first chunk (id and name) was written.
    started: bool,
    /// Id seen before the name.
    id: String,
    /// Argument fragments seen before the name.
    pending: String,
}

/// State machine translating one DashScope stream.
#[derive(Debug)]
pub struct DashScopeToOpenAi {
    writer: ChunkWriter,
    usage: Option<Usage>,
    tools: Vec<ToolSlot>,
    started: bool,
    done: bool,
}

impl DashScopeToOpenAi {
    /// A translator for one stream. `id` is used until DashScope supplies a `request_id`;
    /// `include_usage` adds the usage chunk.
    pub fn new(id: &str, model: &str, created: u64, include_usage: bool) -> Self {
        DashScopeToOpenAi {
            writer: ChunkWriter::new(id, model, created, include_usage),
            usage: None,
            tools: Vec::new(),
            started: false,
            done: false,
        }
    }

    fn fail(&mut self, out: &mut Vec<u8>, e: TranslateError) -> Result<(), TranslateError> {
        self.writer
            .error(out, e.kind, &e.message, e.code.as_deref());
        self.done = true;
        Err(e)
    }

    fn error_event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let e = parse_upstream_error(ErrorDialect::DashScope, 0, data, None);
        self.writer
            .error(out, e.kind, &e.message, e.code.as_deref());
        self.done = true;
    }

    /// Writes the first chunk of calls whose name never came (so the client sees them).
    fn flush_pending(&mut self, out: &mut Vec<u8>) {
        for (i, t) in self.tools.iter_mut().enumerate() {
            let seen = !t.id.is_empty() || !t.pending.is_empty();
            if !t.started && seen {
                t.started = true;
                let index = u32::try_from(i).unwrap_or(u32::MAX);
                let id = if t.id.is_empty() {
                    format!("call_{i}")
                } else {
                    std::mem::take(&mut t.id)
                };
                self.writer.tool_start(out, index, &id, "", &t.pending);
                t.pending = String::new();
            }
        }
    }
}

impl StreamTranslator for DashScopeToOpenAi {
    fn on_event(
        &mut self,
        event: Option<&str>,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        if event == Some("error") {
            self.error_event(data, out);
            return Ok(());
        }
        let chunk: GenerationResponse = match serde_json::from_slice(data) {
            Ok(c) => c,
            Err(e) => {
                return self.fail(
                    out,
                    TranslateError::upstream(format!("unparseable dashscope stream event: {e}")),
                )
            }
        };
        if chunk.output.is_none() && chunk.code.as_ref().is_some_and(|c| !c.as_str().is_empty()) {
            self.error_event(data, out);
            return Ok(());
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.to_usage());
        }
        if !self.started {
            self.started = true;
            if let Some(rid) = chunk.request_id.as_ref().filter(|r| !r.as_str().is_empty()) {
                self.writer.set_id(&format!("chatcmpl-{}", rid.as_str()));
            }
            self.writer.role(out);
        }
        let Some(choice) = chunk.output.as_ref().and_then(|o| o.choices.first()) else {
            return Ok(());
        };
        if let Some(msg) = &choice.message {
            if let Some(r) = msg
                .reasoning_content
                .as_ref()
                .filter(|r| !r.as_str().is_empty())
            {
                self.writer.reasoning(out, r.as_str());
            }
            if let Some(raw) = msg.content {
                match content_text(raw) {
                    Ok(Some(t)) if !t.as_str().is_empty() => self.writer.text(out, t.as_str()),
                    Ok(_) => {}
                    Err(e) => return self.fail(out, e),
                }
            }
            for (pos, tc) in msg.tool_calls.iter().flatten().enumerate() {
                let index = tc
                    .index
                    .unwrap_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX));
                let at = usize::try_from(index).unwrap_or(usize::MAX);
                let t = match slot(&mut self.tools, at) {
                    Ok(t) => t,
                    Err(e) => return self.fail(out, e),
                };
                let f = tc.function.as_ref();
                let args = f
                    .and_then(|f| f.arguments.as_ref())
                    .map(|a| a.as_str())
                    .unwrap_or("");
                let name = f
                    .and_then(|f| f.name.as_ref())
                    .map(|n| n.as_str())
                    .filter(|n| !n.is_empty());
                if t.started {
                    if !args.is_empty() {
                        self.writer.tool_args(out, index, args);
                    }
                    continue;
                }
                if let Some(id) = tc.id.as_ref().filter(|i| !i.as_str().is_empty()) {
                    id.as_str().clone_into(&mut t.id);
                }
                match name {
                    Some(name) => {
                        t.started = true;
                        let id = if t.id.is_empty() {
                            format!("call_{index}")
                        } else {
                            std::mem::take(&mut t.id)
                        };
                        let mut all = std::mem::take(&mut t.pending);
                        all.push_str(args);
                        self.writer.tool_start(out, index, &id, name, &all);
                    }
                    None => t.pending.push_str(args),
                }
            }
        }
        let has_tools = self.tools.iter().any(|t| t.started || !t.id.is_empty());
        if let Some(f) =
            finish_to_openai(choice.finish_reason.as_ref().map(|r| r.as_str()), has_tools)
        {
            self.flush_pending(out);
            self.writer.finish(out, f);
            self.writer.usage_and_done(out, self.usage);
            self.done = true;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        self.fail(
            out,
            TranslateError::upstream("dashscope stream ended without a finish_reason"),
        )
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::json;
    use super::*;
    use aigw::sse::Parser;

    /// A real-shaped DashScope stream: thinking, text, a tool call in fragments, usage.
    pub(crate) const STREAM: &str = concat!(
        "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"reasoning_content\":\"Let me \",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":21,\"output_tokens\":2,\"input_tokens\":19,\"output_tokens_details\":{\"reasoning_tokens\":2}},\"request_id\":\"req-7\"}\n\n",
        "id:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"Checking \\\"now\\\".\",\"reasoning_content\":\"\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":24,\"output_tokens\":5,\"input_tokens\":19,\"output_tokens_details\":{\"reasoning_tokens\":2}},\"request_id\":\"req-7\"}\n\n",
        "id:3\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_ab\",\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\"}}]},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":27,\"output_tokens\":8,\"input_tokens\":19},\"request_id\":\"req-7\"}\n\n",
        "id:4\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"\",\"type\":\"function\",\"function\":{\"arguments\":\"\\\"Hangzhou\\\"}\"}}]},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":30,\"output_tokens\":11,\"input_tokens\":19},\"request_id\":\"req-7\"}\n\n",
        "id:5\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"role\":\"assistant\"},\"finish_reason\":\"tool_calls\"}]},\"usage\":{\"total_tokens\":31,\"output_tokens\":12,\"input_tokens\":19,\"prompt_tokens_details\":{\"cached_tokens\":8},\"output_tokens_details\":{\"reasoning_tokens\":2}},\"request_id\":\"req-7\"}\n\n",
    );

    fn run(bytes: &[u8], step: usize, include_usage: bool) -> (Vec<u8>, Option<Usage>) {
        let mut t = DashScopeToOpenAi::new("fallback", "qwen-plus", 3, include_usage);
        let mut parser = Parser::new(1 << 16);
        let mut out = Vec::new();
        for c in bytes.chunks(step) {
            parser
                .feed(c, |ev| {
                    if let Some(d) = ev.data() {
                        let name = ev.is_event().then(|| ev.event_type());
                        let _ = t.on_event(name, d, &mut out);
                    }
                })
                .unwrap();
        }
        let _ = t.finish(&mut out);
        (out, t.usage())
    }

    #[test]
    fn translates_at_every_split() {
        let bytes = STREAM.as_bytes();
        let (whole, _) = run(bytes, bytes.len(), true);
        for step in 1..bytes.len() {
            assert_eq!(run(bytes, step, true).0, whole, "step {step}");
        }
        let ev = json(&whole);
        assert_eq!(ev[0]["id"], "chatcmpl-req-7");
        assert_eq!(ev[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(ev[1]["choices"][0]["delta"]["reasoning_content"], "Let me ");
        assert_eq!(ev[2]["choices"][0]["delta"]["content"], "Checking \"now\".");
        let call = &ev[3]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(
            (call["id"].as_str(), call["function"]["name"].as_str()),
            (Some("call_ab"), Some("weather"))
        );
        assert_eq!(call["function"]["arguments"], "{\"city\":");
        let more = &ev[4]["choices"][0]["delta"]["tool_calls"][0];
        assert!(more.get("id").is_none());
        assert_eq!(more["function"]["arguments"], "\"Hangzhou\"}");
        assert_eq!(ev[5]["choices"][0]["finish_reason"], "tool_calls");
        let u = &ev[6]["usage"];
        assert_eq!(
            (
                u["prompt_tokens"].as_u64(),
                u["completion_tokens"].as_u64(),
                u["total_tokens"].as_u64()
            ),
            (Some(19), Some(12), Some(31)),
            "cumulative usage: the last event wins"
        );
        assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 8);
        assert_eq!(ev[7], "[DONE]");
        assert_eq!(ev.len(), 8);
        let (no_usage, usage) = run(bytes, 7, false);
        let ev = json(&no_usage);
        assert!(ev.iter().all(|e| e.get("usage").is_none()));
        assert_eq!(ev.last().unwrap(), "[DONE]");
        assert_eq!(usage.unwrap().reasoning, 2);
    }

    #[test]
    fn errors_and_truncation() {
        let err = "id:1\nevent:error\n:HTTP_STATUS/429\ndata:{\"code\":\"Throttling.RateQuota\",\"message\":\"Requests rate limit exceeded, please try again later.\",\"request_id\":\"r\"}\n\n";
        let (out, _) = run(err.as_bytes(), 5, false);
        let ev = json(&out);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0]["error"]["type"], "rate_limit_exceeded");
        assert_eq!(ev[0]["error"]["code"], "Throttling.RateQuota");

        let truncated = STREAM.split("id:3").next().unwrap();
        let (out, _) = run(truncated.as_bytes(), 3, false);
        let ev = json(&out);
        assert!(ev.last().unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("without a finish_reason"));

        let mut t = DashScopeToOpenAi::new("id", "m", 0, false);
        let mut out = Vec::new();
        assert!(t.on_event(Some("result"), b"{not json", &mut out).is_err());
        assert!(t.is_done());
    }

    #[test]
    fn name_after_id_is_joined() {
        let mut t = DashScopeToOpenAi::new("id", "m", 0, false);
        let mut out = Vec::new();
        for d in [
            r#"{"output":{"choices":[{"message":{"tool_calls":[{"index":0,"id":"c1","function":{"arguments":"{\"a\""}}]},"finish_reason":null}]}}"#,
            r#"{"output":{"choices":[{"message":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":":1}"}}]},"finish_reason":"null"}]}}"#,
            r#"{"output":{"choices":[{"message":{"content":""},"finish_reason":"stop"}]},"usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}}"#,
        ] {
            t.on_event(Some("result"), d.as_bytes(), &mut out).unwrap();
        }
        let ev = json(&out);
        let call = &ev[1]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["id"], "c1");
        assert_eq!(call["function"]["name"], "f");
        assert_eq!(call["function"]["arguments"], "{\"a\":1}");
        assert_eq!(ev[2]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(t.usage().unwrap().total, 2);
    }
}
