//! The neutral stop reason and its mapping to and from each dialect's vocabulary.

/// Why an answer stopped, in neutral terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// A natural end of the turn.
    End,
    /// The output token limit (or context window) was reached.
    Length,
    /// The model called tools and waits for their results.
    ToolCalls,
    /// A safety filter, guardrail or refusal stopped the answer.
    ContentFilter,
    /// A client-given stop sequence was produced.
    StopSequence,
}

impl StopReason {
    /// From an OpenAI chat `finish_reason` (also DeepSeek, Qwen-compatible servers).
    pub fn from_openai(finish: &str) -> Self {
        match finish {
            "length" => StopReason::Length,
            "tool_calls" | "function_call" => StopReason::ToolCalls,
            "content_filter" => StopReason::ContentFilter,
            _ => StopReason::End,
        }
    }

    /// As an OpenAI chat `finish_reason`.
    pub fn to_openai(self) -> &'static str {
        match self {
            StopReason::End | StopReason::StopSequence => "stop",
            StopReason::Length => "length",
            StopReason::ToolCalls => "tool_calls",
            StopReason::ContentFilter => "content_filter",
        }
    }

    /// From an Anthropic `stop_reason` (`pause_turn` and unknown reasons are [`End`](Self::End)).
    pub fn from_anthropic(stop: &str) -> Self {
        match stop {
            "max_tokens" | "model_context_window_exceeded" => StopReason::Length,
            "tool_use" => StopReason::ToolCalls,
            "refusal" => StopReason::ContentFilter,
            "stop_sequence" => StopReason::StopSequence,
            _ => StopReason::End,
        }
    }

    /// As an Anthropic `stop_reason`.
    pub fn to_anthropic(self) -> &'static str {
        match self {
            StopReason::End => "end_turn",
            StopReason::Length => "max_tokens",
            StopReason::ToolCalls => "tool_use",
            StopReason::ContentFilter => "refusal",
            StopReason::StopSequence => "stop_sequence",
        }
    }

    /// From a Gemini `finishReason`; a normal stop that produced function calls is
    /// [`ToolCalls`](Self::ToolCalls).
    pub fn from_gemini(reason: &str, has_tool_calls: bool) -> Self {
        match reason {
            "MAX_TOKENS" => StopReason::Length,
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII"
            | "IMAGE_SAFETY" | "LANGUAGE" => StopReason::ContentFilter,
            _ if has_tool_calls => StopReason::ToolCalls,
            _ => StopReason::End,
        }
    }

    /// As a Gemini `finishReason` (Gemini says `STOP` for tool calls and stop sequences).
    pub fn to_gemini(self) -> &'static str {
        match self {
            StopReason::Length => "MAX_TOKENS",
            StopReason::ContentFilter => "SAFETY",
            _ => "STOP",
        }
    }

    /// From a Bedrock Converse `stopReason`.
    pub fn from_bedrock(stop: &str) -> Self {
        match stop {
            "max_tokens" | "model_context_window_exceeded" => StopReason::Length,
            "tool_use" => StopReason::ToolCalls,
            "guardrail_intervened" | "content_filtered" => StopReason::ContentFilter,
            "stop_sequence" => StopReason::StopSequence,
            _ => StopReason::End,
        }
    }

    /// As a Bedrock Converse `stopReason`.
    pub fn to_bedrock(self) -> &'static str {
        match self {
            StopReason::End => "end_turn",
            StopReason::Length => "max_tokens",
            StopReason::ToolCalls => "tool_use",
            StopReason::ContentFilter => "content_filtered",
            StopReason::StopSequence => "stop_sequence",
        }
    }

    /// From a DashScope native `finish_reason`; `None` while still generating (`null`, the
    /// string `"null"` or empty). A normal stop that produced tool calls is
    /// [`ToolCalls`](Self::ToolCalls).
    pub fn from_dashscope(reason: Option<&str>, has_tool_calls: bool) -> Option<Self> {
        Some(match reason? {
            "" | "null" => return None,
            "length" => StopReason::Length,
            "tool_calls" => StopReason::ToolCalls,
            "content_filter" | "data_inspection_failed" => StopReason::ContentFilter,
            _ if has_tool_calls => StopReason::ToolCalls,
            _ => StopReason::End,
        })
    }

    /// As a DashScope `finish_reason`.
    pub fn to_dashscope(self) -> &'static str {
        self.to_openai()
    }

    /// From a Responses API final `status` and `incomplete_details.reason`; a completed
    /// response that called functions is [`ToolCalls`](Self::ToolCalls).
    pub fn from_responses(status: &str, incomplete_reason: Option<&str>, has_calls: bool) -> Self {
        match (status, incomplete_reason) {
            ("incomplete", Some("content_filter")) => StopReason::ContentFilter,
            ("incomplete", _) => StopReason::Length,
            _ if has_calls => StopReason::ToolCalls,
            _ => StopReason::End,
        }
    }

    /// As a Responses API final `status` and `incomplete_details.reason` (`None` when
    /// complete).
    pub fn to_responses(self) -> (&'static str, Option<&'static str>) {
        match self {
            StopReason::Length => ("incomplete", Some("max_output_tokens")),
            StopReason::ContentFilter => ("incomplete", Some("content_filter")),
            _ => ("completed", None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StopReason as S;

    #[test]
    fn tables_round_trip_where_the_dialect_can_say_it() {
        let all = [
            S::End,
            S::Length,
            S::ToolCalls,
            S::ContentFilter,
            S::StopSequence,
        ];
        for r in all {
            assert_eq!(S::from_anthropic(r.to_anthropic()), r);
            assert_eq!(S::from_bedrock(r.to_bedrock()), r);
            let (status, reason) = r.to_responses();
            let back = S::from_responses(status, reason, r == S::ToolCalls);
            let coarse = if r == S::StopSequence { S::End } else { r };
            assert_eq!(back, coarse);
            assert_eq!(S::from_openai(r.to_openai()), coarse);
            assert_eq!(S::from_gemini(r.to_gemini(), r == S::ToolCalls), coarse);
            assert_eq!(
                S::from_dashscope(Some(r.to_dashscope()), false),
                Some(coarse)
            );
        }
        assert_eq!(S::from_anthropic("pause_turn"), S::End);
        assert_eq!(
            S::from_anthropic("model_context_window_exceeded"),
            S::Length
        );
        assert_eq!(S::from_openai("function_call"), S::ToolCalls);
        assert_eq!(S::from_gemini("RECITATION", true), S::ContentFilter);
        assert_eq!(S::from_gemini("STOP", true), S::ToolCalls);
        assert_eq!(S::from_bedrock("guardrail_intervened"), S::ContentFilter);
        assert_eq!(S::from_dashscope(Some("null"), true), None);
        assert_eq!(S::from_dashscope(None, true), None);
        assert_eq!(S::from_dashscope(Some("stop"), true), Some(S::ToolCalls));
        assert_eq!(
            S::from_dashscope(Some("data_inspection_failed"), false),
            Some(S::ContentFilter)
        );
    }
}
