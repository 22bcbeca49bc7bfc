//! Normalized token usage and cheap extraction from provider bodies and stream events.
//!
//! Every provider counts differently; [`Usage`] normalizes to OpenAI semantics:
//! `input` includes cached prompt tokens (and cache writes), `output` includes reasoning tokens,
//! `total` is what the provider reports as the total (or `input + output`).
//!
//! | protocol | where | rule |
//! |---|---|---|
//! | OpenAI chat/completions/embeddings | `usage` of the body, or of the final chunk when `stream_options.include_usage` is set (earlier chunks carry `usage: null`) | latest non-null wins |
//! | Anthropic | `message.usage` of `message_start` (input, cache read/write), `usage` of `message_delta` (cumulative `output_tokens`, sometimes repeated input fields) | each field: latest value wins, never summed |
//! | Gemini | `usageMetadata` of every chunk, cumulative | latest wins |
//! | Responses | `response.usage` of `response.completed` / `response.incomplete` / `response.failed`, or `usage` of the body | latest wins |
//! | Bedrock Converse | `usage` of the body or of the `metadata` stream event | latest wins |
//!
//! Extraction is cheap: a substring pre-check rejects events that cannot carry usage, and the
//! ones that can are parsed into small structs holding only the counters (everything else is
//! skipped by the parser without allocating).

use super::openai::{CompletionTokensDetails, OpenAiUsage, PromptTokensDetails};
use super::{anthropic, gemini};
use serde::Deserialize;

/// Token usage in one normalized shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All prompt tokens, cached ones and cache writes included.
    pub input: u64,
    /// All output tokens, reasoning included.
    pub output: u64,
    /// Total as reported (or `input + output`).
    pub total: u64,
    /// Prompt tokens read from the provider's cache (part of `input`).
    pub cached_input: u64,
    /// Reasoning/thinking tokens (part of `output`); 0 when the provider does not say.
    pub reasoning: u64,
    /// Prompt tokens written to the cache (Anthropic, Bedrock; part of `input`).
    pub cache_creation_input: Option<u64>,
}

impl Usage {
    /// Normalizes an OpenAI `usage` object.
    pub fn from_openai(u: &OpenAiUsage) -> Self {
        Raw {
            input: Some(u.prompt_tokens),
            output: Some(u.completion_tokens),
            total: Some(u.total_tokens).filter(|t| *t > 0),
            cached: u
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens),
            reasoning: u
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
            creation: None,
        }
        .normalize(UsageProtocol::OpenAi)
    }

    /// Normalizes an Anthropic `usage` object.
    pub fn from_anthropic(u: &anthropic::Usage) -> Self {
        Raw {
            input: Some(u.input_tokens),
            output: Some(u.output_tokens),
            total: None,
            cached: u.cache_read_input_tokens,
            reasoning: None,
            creation: u.cache_creation_input_tokens,
        }
        .normalize(UsageProtocol::Anthropic)
    }

    /// Normalizes Gemini `usageMetadata`.
    pub fn from_gemini(u: &gemini::UsageMetadata) -> Self {
        Raw {
            input: Some(u.prompt_token_count),
            output: Some(u.candidates_token_count),
            total: Some(u.total_token_count).filter(|t| *t > 0),
            cached: u.cached_content_token_count,
            reasoning: u.thoughts_token_count,
            creation: None,
        }
        .normalize(UsageProtocol::Gemini)
    }

    /// The usage as an OpenAI `usage` object.
    pub fn to_openai(&self) -> OpenAiUsage {
        OpenAiUsage {
            prompt_tokens: self.input,
            completion_tokens: self.output,
            total_tokens: self.total,
            prompt_tokens_details: Some(PromptTokensDetails {
                cached_tokens: Some(self.cached_input),
                audio_tokens: None,
            }),
            completion_tokens_details: Some(CompletionTokensDetails {
                reasoning_tokens: Some(self.reasoning),
                audio_tokens: None,
            }),
        }
    }

    /// The usage as an Anthropic `usage` object (`input_tokens` without cache reads/writes).
    pub fn to_anthropic(&self) -> anthropic::Usage {
        let creation = self.cache_creation_input.unwrap_or(0);
        anthropic::Usage {
            input_tokens: self
                .input
                .saturating_sub(self.cached_input)
                .saturating_sub(creation),
            output_tokens: self.output,
            cache_creation_input_tokens: Some(creation),
            cache_read_input_tokens: Some(self.cached_input),
            extra: Default::default(),
        }
    }
}

/// Which counting rules apply to the bytes fed to the extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageProtocol {
    /// OpenAI chat completions, completions, embeddings and every OpenAI-compatible provider.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini generateContent / streamGenerateContent.
    Gemini,
    /// OpenAI Responses API.
    Responses,
    /// AWS Bedrock Converse / ConverseStream (event payloads).
    Bedrock,
}

/// Provider counters as last seen; every field is replaced when a newer value arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Raw {
    input: Option<u64>,
    output: Option<u64>,
    total: Option<u64>,
    cached: Option<u64>,
    reasoning: Option<u64>,
    creation: Option<u64>,
}

impl Raw {
    fn merge(&mut self, newer: Raw) {
        fn set(slot: &mut Option<u64>, v: Option<u64>) {
            if v.is_some() {
                *slot = v;
            }
        }
        set(&mut self.input, newer.input);
        set(&mut self.output, newer.output);
        set(&mut self.total, newer.total);
        set(&mut self.cached, newer.cached);
        set(&mut self.reasoning, newer.reasoning);
        set(&mut self.creation, newer.creation);
    }

    fn normalize(&self, protocol: UsageProtocol) -> Usage {
        let v = |o: Option<u64>| o.unwrap_or(0);
        match protocol {
            UsageProtocol::OpenAi | UsageProtocol::Responses => {
                let (input, output) = (v(self.input), v(self.output));
                Usage {
                    input,
                    output,
                    total: self.total.unwrap_or(input.saturating_add(output)),
                    cached_input: v(self.cached),
                    reasoning: v(self.reasoning),
                    cache_creation_input: self.creation,
                }
            }
            UsageProtocol::Anthropic | UsageProtocol::Bedrock => {
                // input_tokens / inputTokens exclude cache reads and writes: add them back.
                let input = v(self.input)
                    .saturating_add(v(self.cached))
                    .saturating_add(v(self.creation));
                let output = v(self.output);
                let sum = input.saturating_add(output);
                Usage {
                    input,
                    output,
                    total: self.total.map_or(sum, |t| t.max(sum)),
                    cached_input: v(self.cached),
                    reasoning: v(self.reasoning),
                    cache_creation_input: self.creation,
                }
            }
            UsageProtocol::Gemini => {
                // candidatesTokenCount excludes thoughts; OpenAI's completion_tokens includes them.
                let input = v(self.input);
                let output = v(self.output).saturating_add(v(self.reasoning));
                Usage {
                    input,
                    output,
                    total: self.total.unwrap_or(input.saturating_add(output)),
                    cached_input: v(self.cached),
                    reasoning: v(self.reasoning),
                    cache_creation_input: None,
                }
            }
        }
    }
}

/// Collects usage across the events of one response (or from one whole body).
///
/// Feed every SSE event `data` (or Bedrock event payload) in order with [`feed`](Self::feed), or
/// the whole body once; read the result with [`usage`](Self::usage). Values are never summed
/// across events: each provider's counters are cumulative, so the latest value of each field wins.
#[derive(Debug, Clone)]
pub struct UsageAccumulator {
    protocol: UsageProtocol,
    raw: Raw,
    seen: bool,
}

impl UsageAccumulator {
    /// A fresh accumulator for one response.
    pub fn new(protocol: UsageProtocol) -> Self {
        UsageAccumulator {
            protocol,
            raw: Raw::default(),
            seen: false,
        }
    }

    /// The protocol this accumulator follows.
    pub fn protocol(&self) -> UsageProtocol {
        self.protocol
    }

    /// Feeds one event's data or one whole body. Returns true when it carried usage.
    pub fn feed(&mut self, data: &[u8]) -> bool {
        match parse_raw(self.protocol, data) {
            Some(raw) => {
                self.raw.merge(raw);
                self.seen = true;
                true
            }
            None => false,
        }
    }

    /// Feeds the value of one event's top-level usage key alone (`usage`, Gemini's
    /// `usageMetadata`), for a decoder that parsed the event itself and kept that value raw:
    /// the same counters and rules as [`feed`](Self::feed) with the whole event, without a
    /// second search and parse of it. `null` or a value that is not a usage object carry none.
    /// Returns true when it carried usage.
    pub fn feed_usage_value(&mut self, value: &[u8]) -> bool {
        match parse_usage_value(self.protocol, value) {
            Some(raw) => {
                self.raw.merge(raw);
                self.seen = true;
                true
            }
            None => false,
        }
    }

    /// The usage seen so far, or `None` when no event carried any.
    pub fn usage(&self) -> Option<Usage> {
        self.seen.then(|| self.raw.normalize(self.protocol))
    }
}

/// Usage of one OpenAI body or chunk (`None` for `usage: null` or no usage).
pub fn openai_usage(data: &[u8]) -> Option<Usage> {
    extract(UsageProtocol::OpenAi, data)
}

/// Usage of one Anthropic body or stream event. For a stream use [`UsageAccumulator`]: a single
/// `message_delta` only carries part of the counters.
pub fn anthropic_usage(data: &[u8]) -> Option<Usage> {
    extract(UsageProtocol::Anthropic, data)
}

/// Usage of one Gemini response or stream chunk (cumulative in streams).
pub fn gemini_usage(data: &[u8]) -> Option<Usage> {
    extract(UsageProtocol::Gemini, data)
}

/// Usage of one Responses API body or stream event.
pub fn responses_usage(data: &[u8]) -> Option<Usage> {
    extract(UsageProtocol::Responses, data)
}

/// Usage of one Bedrock Converse body or ConverseStream `metadata` payload.
pub fn bedrock_usage(data: &[u8]) -> Option<Usage> {
    extract(UsageProtocol::Bedrock, data)
}

/// Usage of one body or event under the given protocol's rules.
pub fn extract(protocol: UsageProtocol, data: &[u8]) -> Option<Usage> {
    parse_raw(protocol, data).map(|r| r.normalize(protocol))
}

fn parse_raw(protocol: UsageProtocol, data: &[u8]) -> Option<Raw> {
    // A cheap look for the usage key first: most stream events carry none.
    let key: &[u8] = match protocol {
        UsageProtocol::Gemini => b"\"usageMetadata\"",
        _ => b"\"usage\"",
    };
    if !contains(data, key) {
        return None;
    }
    match protocol {
        UsageProtocol::OpenAi => {
            let env: OpenAiEnvelope = serde_json::from_slice(data).ok()?;
            env.usage.map(OpenAiCounters::raw)
        }
        UsageProtocol::Anthropic => {
            let env: AnthropicEnvelope = serde_json::from_slice(data).ok()?;
            env.usage
                .or(env.message.and_then(|m| m.usage))
                .map(AnthropicCounters::raw)
        }
        UsageProtocol::Gemini => {
            let env: GeminiEnvelope = serde_json::from_slice(data).ok()?;
            env.usage_metadata.map(GeminiCounters::raw)
        }
        UsageProtocol::Responses => {
            let env: ResponsesEnvelope = serde_json::from_slice(data).ok()?;
            env.usage
                .or(env.response.and_then(|r| r.usage))
                .map(ResponsesCounters::raw)
        }
        UsageProtocol::Bedrock => {
            let env: BedrockEnvelope = serde_json::from_slice(data).ok()?;
            env.usage.map(BedrockCounters::raw)
        }
    }
}

/// The counters of a bare usage value (what follows the top-level usage key).
fn parse_usage_value(protocol: UsageProtocol, value: &[u8]) -> Option<Raw> {
    fn counters<'a, T: Deserialize<'a>>(value: &'a [u8]) -> Option<T> {
        serde_json::from_slice::<Option<T>>(value).ok().flatten()
    }
    match protocol {
        UsageProtocol::OpenAi => counters::<OpenAiCounters>(value).map(OpenAiCounters::raw),
        UsageProtocol::Anthropic => {
            counters::<AnthropicCounters>(value).map(AnthropicCounters::raw)
        }
        UsageProtocol::Gemini => counters::<GeminiCounters>(value).map(GeminiCounters::raw),
        UsageProtocol::Responses => {
            counters::<ResponsesCounters>(value).map(ResponsesCounters::raw)
        }
        UsageProtocol::Bedrock => counters::<BedrockCounters>(value).map(BedrockCounters::raw),
    }
}

/// Byte substring search.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find_key(haystack, needle).is_some()
}

/// How rare each byte is in LLM JSON (keys and text): higher is rarer. Letters follow English
/// frequency, upper case and digits are rarer, punctuation is everywhere.
const RARITY: [u8; 256] = {
    const LETTERS: &[u8] = b"etaoinshrdlcumwfgypbvkjxqz";
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < LETTERS.len() {
        table[LETTERS[i] as usize] = i as u8 + 1;
        i += 1;
    }
    let mut b = b'A';
    while b <= b'Z' {
        table[b as usize] = 40;
        b += 1;
    }
    let mut d = b'0';
    while d <= b'9' {
        table[d as usize] = 30;
        d += 1;
    }
    table[b'_' as usize] = 20;
    table
};

/// The first position of `needle` (a short JSON key or fragment) in `haystack`.
///
/// Looks for the needle's rarest byte with `memchr` and compares around each hit. On wasm32
/// without SIMD this is several times faster than a general substring searcher on the small
/// events of a stream, where the general searcher's prefilter keeps stopping on the common
/// bytes of JSON.
pub(crate) fn find_key(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let pivot = (0..needle.len()).max_by_key(|i| {
        needle
            .get(*i)
            .and_then(|b| RARITY.get(usize::from(*b)))
            .copied()
    })?;
    let byte = *needle.get(pivot)?;
    let mut from = pivot;
    while let Some(hit) = haystack.get(from..).and_then(|h| memchr::memchr(byte, h)) {
        let at = from + hit - pivot;
        if haystack.get(at..at + needle.len()) == Some(needle) {
            return Some(at);
        }
        from += hit + 1;
    }
    None
}

#[derive(Deserialize)]
struct OpenAiEnvelope {
    #[serde(default)]
    usage: Option<OpenAiCounters>,
}

#[derive(Deserialize)]
struct OpenAiCounters {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<CachedDetails>,
    #[serde(default)]
    completion_tokens_details: Option<ReasoningDetails>,
    /// DeepSeek's name for cached prompt tokens.
    #[serde(default)]
    prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CachedDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct ReasoningDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl OpenAiCounters {
    fn raw(self) -> Raw {
        Raw {
            input: self.prompt_tokens,
            output: self.completion_tokens,
            total: self.total_tokens,
            cached: self
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .or(self.prompt_cache_hit_tokens),
            reasoning: self
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens),
            creation: None,
        }
    }
}

#[derive(Deserialize)]
struct AnthropicEnvelope {
    #[serde(default)]
    usage: Option<AnthropicCounters>,
    #[serde(default)]
    message: Option<AnthropicMessage>,
}

#[derive(Deserialize)]
struct AnthropicMessage {
    #[serde(default)]
    usage: Option<AnthropicCounters>,
}

#[derive(Deserialize)]
struct AnthropicCounters {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl AnthropicCounters {
    fn raw(self) -> Raw {
        Raw {
            input: self.input_tokens,
            output: self.output_tokens,
            total: None,
            cached: self.cache_read_input_tokens,
            reasoning: None,
            creation: self.cache_creation_input_tokens,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiEnvelope {
    #[serde(default)]
    usage_metadata: Option<GeminiCounters>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiCounters {
    #[serde(default)]
    prompt_token_count: Option<u64>,
    #[serde(default)]
    candidates_token_count: Option<u64>,
    #[serde(default)]
    total_token_count: Option<u64>,
    #[serde(default)]
    cached_content_token_count: Option<u64>,
    #[serde(default)]
    thoughts_token_count: Option<u64>,
}

impl GeminiCounters {
    fn raw(self) -> Raw {
        Raw {
            input: self.prompt_token_count,
            output: self.candidates_token_count,
            total: self.total_token_count,
            cached: self.cached_content_token_count,
            reasoning: self.thoughts_token_count,
            creation: None,
        }
    }
}

#[derive(Deserialize)]
struct ResponsesEnvelope {
    #[serde(default)]
    usage: Option<ResponsesCounters>,
    #[serde(default)]
    response: Option<ResponsesInner>,
}

#[derive(Deserialize)]
struct ResponsesInner {
    #[serde(default)]
    usage: Option<ResponsesCounters>,
}

#[derive(Deserialize)]
struct ResponsesCounters {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<CachedDetails>,
    #[serde(default)]
    output_tokens_details: Option<ReasoningDetails>,
}

impl ResponsesCounters {
    fn raw(self) -> Raw {
        Raw {
            input: self.input_tokens,
            output: self.output_tokens,
            total: self.total_tokens,
            cached: self.input_tokens_details.and_then(|d| d.cached_tokens),
            reasoning: self.output_tokens_details.and_then(|d| d.reasoning_tokens),
            creation: None,
        }
    }
}

#[derive(Deserialize)]
struct BedrockEnvelope {
    #[serde(default)]
    usage: Option<BedrockCounters>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BedrockCounters {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_write_input_tokens: Option<u64>,
}

impl BedrockCounters {
    fn raw(self) -> Raw {
        Raw {
            input: self.input_tokens,
            output: self.output_tokens,
            total: self.total_tokens,
            cached: self.cache_read_input_tokens,
            reasoning: None,
            creation: self.cache_write_input_tokens,
        }
    }
}

/// DashScope's native `usage` object (answers and stream chunks of the text-generation API).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct DashScopeUsage {
    /// Prompt tokens (cached included).
    pub input_tokens: u64,
    /// Output tokens (reasoning included).
    pub output_tokens: u64,
    /// Total.
    pub total_tokens: Option<u64>,
    /// `cached_tokens`.
    pub prompt_tokens_details: Option<DashScopeDetails>,
    /// `reasoning_tokens`.
    pub output_tokens_details: Option<DashScopeDetails>,
}

/// `usage.prompt_tokens_details` / `usage.output_tokens_details` of a DashScope answer.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct DashScopeDetails {
    /// Prompt tokens read from the cache.
    pub cached_tokens: Option<u64>,
    /// Thinking tokens.
    pub reasoning_tokens: Option<u64>,
}

impl DashScopeUsage {
    /// Normalized usage.
    pub fn to_usage(&self) -> Usage {
        Usage {
            input: self.input_tokens,
            output: self.output_tokens,
            total: self
                .total_tokens
                .unwrap_or(self.input_tokens.saturating_add(self.output_tokens)),
            cached_input: self
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            reasoning: self
                .output_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
            cache_creation_input: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(p: UsageProtocol, events: &[&str]) -> Option<Usage> {
        let mut acc = UsageAccumulator::new(p);
        for e in events {
            acc.feed(e.as_bytes());
        }
        acc.usage()
    }

    #[test]
    fn a_bare_usage_value_counts_as_its_whole_event() {
        let cases = [
            (
                UsageProtocol::OpenAi,
                r#"{"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}"#,
                r#"{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}"#,
            ),
            (
                UsageProtocol::OpenAi,
                r#"{"usage":{"prompt_tokens":3,"completion_tokens":1,"prompt_cache_hit_tokens":2}}"#,
                r#"{"prompt_tokens":3,"completion_tokens":1,"prompt_cache_hit_tokens":2}"#,
            ),
            (
                UsageProtocol::Anthropic,
                r#"{"usage":{"input_tokens":7,"output_tokens":3,"cache_read_input_tokens":5,"cache_creation_input_tokens":1}}"#,
                r#"{"input_tokens":7,"output_tokens":3,"cache_read_input_tokens":5,"cache_creation_input_tokens":1}"#,
            ),
            (
                UsageProtocol::Gemini,
                r#"{"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":2,"totalTokenCount":12,"thoughtsTokenCount":3}}"#,
                r#"{"promptTokenCount":7,"candidatesTokenCount":2,"totalTokenCount":12,"thoughtsTokenCount":3}"#,
            ),
            (
                UsageProtocol::Responses,
                r#"{"usage":{"input_tokens":5,"output_tokens":3,"total_tokens":8,"input_tokens_details":{"cached_tokens":1}}}"#,
                r#"{"input_tokens":5,"output_tokens":3,"total_tokens":8,"input_tokens_details":{"cached_tokens":1}}"#,
            ),
            (
                UsageProtocol::Bedrock,
                r#"{"usage":{"inputTokens":3,"outputTokens":1,"totalTokens":10,"cacheReadInputTokens":6}}"#,
                r#"{"inputTokens":3,"outputTokens":1,"totalTokens":10,"cacheReadInputTokens":6}"#,
            ),
        ];
        for (p, whole, value) in cases {
            let mut a = UsageAccumulator::new(p);
            let mut b = UsageAccumulator::new(p);
            assert!(a.feed(whole.as_bytes()), "{p:?}");
            assert!(b.feed_usage_value(value.as_bytes()), "{p:?}");
            assert_eq!(a.usage(), b.usage(), "{p:?}");
            assert!(a.usage().is_some_and(|u| u.input > 0 && u.output > 0));
        }
        let mut acc = UsageAccumulator::new(UsageProtocol::OpenAi);
        for none in ["null", r#""x""#, r#"{"prompt_tokens":"many"}"#, "true"] {
            assert!(!acc.feed_usage_value(none.as_bytes()), "{none}");
        }
        assert_eq!(acc.usage(), None);
    }

    #[test]
    fn openai_stream_usage_only_in_final_chunk() {
        let events = [
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"the \"usage\" word"},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":128,"audio_tokens":0,"accepted_prediction_tokens":0}}}"#,
        ];
        let mut acc = UsageAccumulator::new(UsageProtocol::OpenAi);
        assert!(!acc.feed(events[0].as_bytes()));
        assert!(!acc.feed(events[1].as_bytes()));
        assert!(acc.usage().is_none(), "no usage before the final chunk");
        assert!(!acc.feed(events[2].as_bytes()));
        assert!(acc.feed(events[3].as_bytes()));
        assert_eq!(
            acc.usage(),
            Some(Usage {
                input: 1200,
                output: 300,
                total: 1500,
                cached_input: 1024,
                reasoning: 128,
                cache_creation_input: None
            })
        );
        assert_eq!(acc.usage().map(|u| u.to_openai().prompt_tokens), Some(1200));
    }

    #[test]
    fn openai_non_stream_and_deepseek_cache_fields() {
        let body = br#"{"id":"x","object":"chat.completion","created":1,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"hi","reasoning_content":"..."},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":50,"completion_tokens":10,"total_tokens":60,"prompt_cache_hit_tokens":32,"prompt_cache_miss_tokens":18,"completion_tokens_details":{"reasoning_tokens":4}},"system_fingerprint":"fp"}"#;
        let u = openai_usage(body).unwrap();
        assert_eq!(
            (u.input, u.output, u.total, u.cached_input, u.reasoning),
            (50, 10, 60, 32, 4)
        );
        // Embeddings usage has no completion_tokens.
        let emb = br#"{"object":"list","data":[],"model":"m","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        let u = openai_usage(emb).unwrap();
        assert_eq!((u.input, u.output, u.total), (8, 0, 8));
        assert!(openai_usage(br#"{"usage":null}"#).is_none());
        assert!(openai_usage(b"not json \"usage\"").is_none());
    }

    #[test]
    fn anthropic_message_delta_is_cumulative_and_not_double_counted() {
        let events = [
            r#"{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":200,"cache_read_input_tokens":1500,"output_tokens":2,"service_tier":"standard"}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":40}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            // Newer API versions repeat the input fields in message_delta.
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":472,"cache_creation_input_tokens":200,"cache_read_input_tokens":1500,"output_tokens":89}}"#,
            r#"{"type":"message_stop"}"#,
        ];
        let u = feed_all(UsageProtocol::Anthropic, &events).unwrap();
        assert_eq!(
            u,
            Usage {
                input: 472 + 200 + 1500,
                output: 89,
                total: 472 + 200 + 1500 + 89,
                cached_input: 1500,
                reasoning: 0,
                cache_creation_input: Some(200)
            }
        );
        let back = u.to_anthropic();
        assert_eq!(back.input_tokens, 472);
        assert_eq!(back.cache_read_input_tokens, Some(1500));
    }

    #[test]
    fn anthropic_non_stream_body() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-haiku","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":6}}"#;
        let u = anthropic_usage(body).unwrap();
        assert_eq!((u.input, u.output, u.total, u.cached_input), (12, 6, 18, 0));
        assert_eq!(u.cache_creation_input, None);
        // An error event has no usage.
        assert!(anthropic_usage(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        )
        .is_none());
    }

    #[test]
    fn gemini_cumulative_usage_takes_latest() {
        let events = [
            r#"{"candidates":[{"content":{"parts":[{"text":"Thinking about it","thought":true}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":100,"totalTokenCount":140,"cachedContentTokenCount":64,"thoughtsTokenCount":40},"modelVersion":"gemini-2.5-pro"}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"Hello"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":100,"candidatesTokenCount":3,"totalTokenCount":143,"cachedContentTokenCount":64,"thoughtsTokenCount":40},"modelVersion":"gemini-2.5-pro"}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":" world"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":100,"candidatesTokenCount":7,"totalTokenCount":147,"cachedContentTokenCount":64,"thoughtsTokenCount":40,"promptTokensDetails":[{"modality":"TEXT","tokenCount":100}]},"modelVersion":"gemini-2.5-pro","responseId":"r1"}"#,
        ];
        let u = feed_all(UsageProtocol::Gemini, &events).unwrap();
        assert_eq!(
            u,
            Usage {
                input: 100,
                output: 47,
                total: 147,
                cached_input: 64,
                reasoning: 40,
                cache_creation_input: None
            }
        );
    }

    #[test]
    fn responses_usage_from_completed_event_and_body() {
        let events = [
            r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","output":[],"usage":null}}"#,
            r#"{"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi"}"#,
            r#"{"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","object":"response","status":"completed","output":[],"usage":{"input_tokens":328,"input_tokens_details":{"cached_tokens":256},"output_tokens":52,"output_tokens_details":{"reasoning_tokens":20},"total_tokens":380}}}"#,
        ];
        let u = feed_all(UsageProtocol::Responses, &events).unwrap();
        assert_eq!(
            (u.input, u.output, u.total, u.cached_input, u.reasoning),
            (328, 52, 380, 256, 20)
        );
        let body = br#"{"id":"resp_1","object":"response","status":"completed","output":[],"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}"#;
        assert_eq!(responses_usage(body).map(|u| u.total), Some(7));
    }

    #[test]
    fn bedrock_metadata_usage() {
        let payload = br#"{"usage":{"inputTokens":30,"outputTokens":12,"totalTokens":1042,"cacheReadInputTokens":800,"cacheWriteInputTokens":200},"metrics":{"latencyMs":412}}"#;
        let u = bedrock_usage(payload).unwrap();
        assert_eq!(
            (u.input, u.output, u.total, u.cached_input),
            (1030, 12, 1042, 800)
        );
        assert_eq!(u.cache_creation_input, Some(200));
    }

    #[test]
    fn no_usage_means_none() {
        let acc = UsageAccumulator::new(UsageProtocol::Gemini);
        assert!(acc.usage().is_none());
        assert!(gemini_usage(br#"{"candidates":[]}"#).is_none());
        assert!(contains(b"abcabd", b"abd"));
        assert!(!contains(b"abcab", b"abd"));
        assert!(!contains(b"ab", b"abd"));
        assert!(!contains(b"", b"a"));
        assert_eq!(
            find_key(br#"{"x":"usag","usage":1}"#, b"\"usage\""),
            Some(12)
        );
        assert_eq!(find_key(b"gg\"usage\"", b"\"usage\""), Some(2));
        assert_eq!(find_key(b"\"usag", b"\"usage\""), None);
        assert_eq!(find_key(b"xx", b""), None);
    }
}
