//! Gemini `streamGenerateContent?alt=sse` chunks → OpenAI chat.completion.chunk SSE.
//!
//! Every Gemini chunk is a partial `GenerateContentResponse`: text parts become `content`,
//! `thought` parts `reasoning_content`, each `functionCall` part one complete tool call (id,
//! name and all arguments in one delta). `usageMetadata` is cumulative: the latest wins. The
//! chunk carrying `finishReason` (or a blocked prompt) ends the stream: finish chunk, usage
//! chunk (if asked), `[DONE]`. Only the first candidate is streamed (`n` > 1 is not streamed).

use super::{BStr, ChunkWriter, FirstOnly, StreamTranslator};
use crate::common::gemini_finish_to_openai;
use crate::error::{parse_upstream_error, ErrorDialect, TranslateError};
use aigw::llm::{Usage, UsageAccumulator, UsageProtocol};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

/// State machine translating one Gemini stream.
#[derive(Debug)]
pub struct GeminiToOpenAi {
    writer: ChunkWriter,
    usage: UsageAccumulator,
    next_tool: u32,
    started: bool,
    done: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk<'a> {
    #[serde(default, borrow)]
    candidates: FirstOnly<Candidate<'a>>,
    #[serde(default, borrow)]
    model_version: Option<BStr<'a>>,
    #[serde(default, borrow)]
    response_id: Option<BStr<'a>>,
    #[serde(default, borrow)]
    prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback<'a> {
    #[serde(default, borrow)]
    block_reason: Option<BStr<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(default, borrow)]
    content: Option<Content<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(default, borrow)]
    parts: Vec<Part<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(default, borrow)]
    text: Option<BStr<'a>>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default, borrow)]
    function_call: Option<FunctionCall<'a>>,
    #[serde(default)]
    inline_data: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct FunctionCall<'a> {
    #[serde(default, borrow)]
    id: Option<BStr<'a>>,
    #[serde(borrow)]
    name: BStr<'a>,
    #[serde(default, borrow)]
    args: Option<&'a RawValue>,
}

impl GeminiToOpenAi {
    /// A translator for one stream. `id`/`model` are used until Gemini supplies `responseId` /
    /// `modelVersion`; `include_usage` adds the usage chunk.
    pub fn new(id: &str, model: &str, created: u64, include_usage: bool) -> Self {
        GeminiToOpenAi {
            writer: ChunkWriter::new(id, model, created, include_usage),
            usage: UsageAccumulator::new(UsageProtocol::Gemini),
            next_tool: 0,
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
}

impl StreamTranslator for GeminiToOpenAi {
    fn on_event(
        &mut self,
        _event: Option<&str>,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        let chunk: Chunk = match serde_json::from_slice(data) {
            Ok(c) => c,
            Err(e) => {
                return self.fail(
                    out,
                    TranslateError::upstream(format!("unparseable gemini stream chunk: {e}")),
                )
            }
        };
        if chunk.error.is_some() {
            let e = parse_upstream_error(ErrorDialect::Gemini, 500, data, None);
            self.writer
                .error(out, e.kind, &e.message, e.code.as_deref());
            self.done = true;
            return Ok(());
        }
        self.usage.feed(data);
        if !self.started {
            self.started = true;
            if let Some(id) = &chunk.response_id {
                self.writer.set_id(id.as_str());
            }
            if let Some(m) = &chunk.model_version {
                self.writer.set_model(m.as_str());
            }
            self.writer.role(out);
        }
        let mut finish: Option<&'static str> = None;
        if let Some(cand) = &chunk.candidates.0 {
            for p in cand.content.iter().flat_map(|c| c.parts.iter()) {
                if let Some(t) = p.text.as_ref().filter(|t| !t.as_str().is_empty()) {
                    if p.thought == Some(true) {
                        self.writer.reasoning(out, t.as_str());
                    } else {
                        self.writer.text(out, t.as_str());
                    }
                } else if let Some(fc) = &p.function_call {
                    let index = self.next_tool;
                    self.next_tool += 1;
                    let generated;
                    let id = match &fc.id {
                        Some(id) => id.as_str(),
                        None => {
                            generated = format!("call_{index}");
                            &generated
                        }
                    };
                    let args = fc.args.map(RawValue::get).unwrap_or("{}");
                    self.writer
                        .tool_start(out, index, id, fc.name.as_str(), args);
                } else if p.inline_data.is_some() {
                    let e = TranslateError::upstream(
                        "gemini streamed binary output that chat completions cannot carry",
                    );
                    return self.fail(out, e);
                }
            }
            if let Some(r) = &cand.finish_reason {
                finish = Some(gemini_finish_to_openai(r.as_str(), self.next_tool > 0));
            }
        } else if chunk
            .prompt_feedback
            .as_ref()
            .is_some_and(|f| f.block_reason.is_some())
        {
            finish = Some("content_filter");
        }
        if let Some(f) = finish {
            self.writer.finish(out, f);
            self.writer.usage_and_done(out, self.usage.usage());
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
            TranslateError::upstream("gemini stream ended without a finishReason"),
        )
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
    use super::super::testutil::json;
    use super::*;

    #[test]
    fn translates_thoughts_text_calls_and_cumulative_usage() {
        let chunks = [
            r#"{"candidates":[{"content":{"parts":[{"text":"**Thinking** about it","thought":true}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":12,"totalTokenCount":40,"thoughtsTokenCount":28},"modelVersion":"gemini-2.5-flash","responseId":"r-1"}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"It is "}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":2,"totalTokenCount":42,"thoughtsTokenCount":28},"modelVersion":"gemini-2.5-flash","responseId":"r-1"}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"sunny.\n"},{"functionCall":{"name":"log","args":{"msg":"done","n":[1,2]}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":9,"totalTokenCount":49,"thoughtsTokenCount":28},"modelVersion":"gemini-2.5-flash","responseId":"r-1"}"#,
        ];
        let mut t = GeminiToOpenAi::new("fallback", "m", 5, true);
        let mut out = Vec::new();
        for c in chunks {
            t.on_event(None, c.as_bytes(), &mut out).unwrap();
        }
        t.finish(&mut out).unwrap();
        let ev = json(&out);
        assert_eq!(ev[0]["id"], "r-1");
        assert_eq!(ev[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(
            ev[1]["choices"][0]["delta"]["reasoning_content"],
            "**Thinking** about it"
        );
        assert_eq!(ev[2]["choices"][0]["delta"]["content"], "It is ");
        assert_eq!(ev[3]["choices"][0]["delta"]["content"], "sunny.\n");
        let call = &ev[4]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["id"], "call_0");
        assert_eq!(call["function"]["name"], "log");
        let args: serde_json::Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, serde_json::json!({"msg": "done", "n": [1, 2]}));
        assert_eq!(ev[5]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(ev[6]["usage"]["prompt_tokens"], 12);
        assert_eq!(
            ev[6]["usage"]["completion_tokens"], 37,
            "9 candidates + 28 thoughts, never summed across chunks"
        );
        assert_eq!(ev[6]["usage"]["total_tokens"], 49);
        assert_eq!(ev[7], "[DONE]");
    }

    #[test]
    fn blocked_prompt_and_truncation() {
        let mut t = GeminiToOpenAi::new("id", "m", 0, false);
        let mut out = Vec::new();
        t.on_event(None, br#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":4,"totalTokenCount":4}}"#, &mut out)
            .unwrap();
        let ev = json(&out);
        assert_eq!(ev[1]["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(ev[2], "[DONE]");

        let mut t = GeminiToOpenAi::new("id", "m", 0, false);
        let mut out = Vec::new();
        t.on_event(
            None,
            br#"{"candidates":[{"content":{"parts":[{"text":"par"}]}}]}"#,
            &mut out,
        )
        .unwrap();
        assert!(t.finish(&mut out).is_err());
    }
}
