//! Knobs of the request translators.

/// Options shared by the request translators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateOptions {
    /// `max_tokens` sent to Anthropic (which requires it) and Bedrock when the client sent none.
    pub default_max_tokens: u32,
    /// Thinking token budgets for `reasoning_effort` `minimal`, `low`, `medium`, `high`.
    pub thinking_budgets: [u32; 4],
    /// Send `max_completion_tokens` instead of `max_tokens` to OpenAI-style upstreams
    /// (needed by OpenAI reasoning models; some compatible servers only know `max_tokens`).
    pub use_max_completion_tokens: bool,
    /// Send tool schemas to Gemini as `parametersJsonSchema` (full JSON Schema) instead of
    /// `parameters` (OpenAPI subset that rejects e.g. `additionalProperties`).
    pub gemini_json_schema: bool,
}

impl Default for TranslateOptions {
    fn default() -> Self {
        TranslateOptions {
            default_max_tokens: 4096,
            thinking_budgets: [1024, 2048, 8192, 24576],
            use_max_completion_tokens: false,
            gemini_json_schema: true,
        }
    }
}

impl TranslateOptions {
    /// The thinking budget for an OpenAI `reasoning_effort`, or `None` for unknown efforts.
    pub fn budget_for_effort(&self, effort: &str) -> Option<u32> {
        let [minimal, low, medium, high] = self.thinking_budgets;
        match effort {
            "minimal" => Some(minimal),
            "low" => Some(low),
            "medium" => Some(medium),
            "high" => Some(high),
            _ => None,
        }
    }

    /// The `reasoning_effort` closest to a thinking budget.
    pub fn effort_for_budget(&self, budget: u32) -> &'static str {
        let [minimal, low, medium, _] = self.thinking_budgets;
        if budget <= minimal {
            "minimal"
        } else if budget <= low {
            "low"
        } else if budget <= medium {
            "medium"
        } else {
            "high"
        }
    }
}
