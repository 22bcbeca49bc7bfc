//! Upstream providers: one module per wire dialect behind one trait, [`Upstream`], and one
//! catalogue ([`catalogue`]) naming every provider type with its host, base path, auth style,
//! dialect and endpoints.
//!
//! The rest of the plugin never matches on a dialect: requests are translated with
//! [`Upstream::chat_request`], whole answers with [`Upstream::chat_response`], streams with
//! [`Upstream::stream_decoder`], errors by the dialect's shape ([`crate::error::parse_upstream_error`]), and paths and auth
//! headers come from [`Upstream::path`] and [`Upstream::auth_headers`], whose defaults are the
//! OpenAI conventions.
//!
//! | module | dialect | providers |
//! |---|---|---|
//! | [`openai`] | OpenAI chat completions | openai, azure, qwen, deepseek, moonshot, zhipu, mistral, groq, openrouter, ollama, vllm, openai-compatible |
//! | [`responses`] | OpenAI Responses (`api: responses`) | openai, azure, groq, vllm |
//! | [`anthropic`] | Anthropic Messages | anthropic |
//! | [`gemini`] | Gemini generateContent | gemini |
//! | [`bedrock`] | Bedrock Converse | bedrock |
//! | [`dashscope`] | DashScope native | qwen-native |
//!
//! Adding an OpenAI-compatible provider is one row in [`catalogue::CATALOGUE`]. Adding a new
//! dialect is one module implementing [`Upstream`] (usually only the request and response
//! translations; the SDK's `aigw::llm::stream` gives the stream decoder), a [`Protocol`]
//! variant and its arm in [`upstream`].

pub mod anthropic;
pub mod bedrock;
pub mod catalogue;
pub mod dashscope;
pub mod gemini;
pub mod openai;
pub mod responses;

pub use catalogue::{
    auth_headers, AuthStyle, Endpoint, Endpoints, PathOptions, Protocol, Provider, ProviderSpec,
    CATALOGUE,
};

use crate::error::TranslateError;
use crate::options::TranslateOptions;
use aigw::llm::openai as oa;
use aigw::llm::stream::Decoder;
use aigw::llm::{Usage, UsageProtocol};

/// What an answer translation needs to know about the exchange.
#[derive(Debug, Clone, Copy)]
pub struct AnswerContext<'a> {
    /// Response id to use when the upstream gives none.
    pub id: &'a str,
    /// The upstream model (fallback name).
    pub model: &'a str,
    /// Unix seconds for `created`.
    pub created: u64,
}

/// What [`Upstream::path`] builds an upstream path from.
#[derive(Debug, Clone, Copy)]
pub struct PathArgs<'a> {
    /// The provider's catalogue entry.
    pub spec: &'a ProviderSpec,
    /// The base path (the route's override or the catalogue's).
    pub base: &'a str,
    /// The endpoint called.
    pub endpoint: Endpoint,
    /// The upstream model (for dialects that put it in the URL).
    pub model: &'a str,
    /// Whether the answer is streamed.
    pub stream: bool,
    /// The route's path settings.
    pub opts: &'a PathOptions,
}

/// A translated request body, or why there is none.
pub type Body = Result<Vec<u8>, TranslateError>;

/// A translated answer with its usage, or why there is none.
pub type Answer = Result<(oa::ChatCompletion, Option<Usage>), TranslateError>;

/// Serializes a translated request body.
pub fn to_body<T: serde::Serialize>(v: &T) -> Body {
    serde_json::to_vec(v).map_err(|e| TranslateError {
        status: 500,
        kind: "api_error",
        message: format!("cannot serialize the upstream request: {e}"),
        param: None,
        code: None,
    })
}

/// A 502 for an upstream answer that does not parse.
pub fn bad_answer(e: serde_json::Error) -> TranslateError {
    TranslateError::upstream(format!("unparseable upstream response: {e}"))
}

/// One upstream dialect: everything ai-proxy needs to call a provider that speaks it. The
/// default methods are the OpenAI conventions, except [`Upstream::usage_protocol`] and
/// [`Upstream::always_streams`], which follow from [`Upstream::protocol`] in one table each.
pub trait Upstream: Sync {
    /// The dialect's identifier.
    fn protocol(&self) -> Protocol;

    /// How token usage is counted in this dialect's answers and streams (OpenAI's counting for
    /// the dialects not named).
    fn usage_protocol(&self) -> UsageProtocol {
        match self.protocol() {
            Protocol::Responses => UsageProtocol::Responses,
            Protocol::AnthropicMessages => UsageProtocol::Anthropic,
            Protocol::GeminiGenerateContent => UsageProtocol::Gemini,
            Protocol::BedrockConverse => UsageProtocol::Bedrock,
            _ => UsageProtocol::OpenAi,
        }
    }

    /// Whether the stream choice is in the URL or a header, so that the upstream is always
    /// called in streaming mode (the request headers are sent before the body says).
    fn always_streams(&self) -> bool {
        matches!(
            self.protocol(),
            Protocol::GeminiGenerateContent | Protocol::BedrockConverse | Protocol::DashScopeText
        )
    }

    /// The upstream path (with query) for the endpoint under the base path.
    fn path(&self, p: &PathArgs<'_>) -> String {
        openai::path(p, false)
    }

    /// The authentication headers for an API key.
    fn auth_headers(
        &self,
        spec: &ProviderSpec,
        key: &str,
        anthropic_version: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        auth_headers(spec.auth, key, anthropic_version)
    }

    /// Headers this dialect needs on every request besides authentication (for example the
    /// API version).
    fn request_headers(&self, _anthropic_version: Option<&str>) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Translates a chat request (the model already mapped) into this dialect's body.
    fn chat_request(&self, req: &mut oa::ChatCompletionRequest, opts: &TranslateOptions) -> Body;

    /// Translates a whole (non-streamed, successful) answer into a chat completion, with its
    /// usage.
    fn chat_response(&self, body: &[u8], cx: AnswerContext<'_>) -> Answer;

    /// A decoder of this dialect's stream into neutral events.
    fn stream_decoder(&self) -> Box<dyn Decoder>;
}

/// The implementation of a dialect.
pub fn upstream(protocol: Protocol) -> &'static dyn Upstream {
    match protocol {
        Protocol::ChatCompletions => &openai::OpenAi,
        Protocol::Responses => &responses::Responses,
        Protocol::AnthropicMessages => &anthropic::Anthropic,
        Protocol::GeminiGenerateContent => &gemini::Gemini,
        Protocol::BedrockConverse => &bedrock::Bedrock,
        Protocol::DashScopeText => &dashscope::DashScope,
        // Every other API is OpenAI-shaped where ai-proxy meets it (completions, embeddings).
        _ => &openai::OpenAi,
    }
}

/// The upstream path (with query) for an endpoint of `provider` spoken in `wire`. Unsupported
/// endpoints are a 400 (404 semantics are the caller's choice).
pub fn upstream_path(
    provider: Provider,
    wire: Protocol,
    endpoint: Endpoint,
    model: &str,
    stream: bool,
    opts: &PathOptions,
) -> Result<String, TranslateError> {
    let spec = provider.spec();
    let base = opts.base_path.as_deref().unwrap_or(spec.base_path);
    let supported = match endpoint {
        Endpoint::Chat => spec.endpoints.chat,
        Endpoint::Completions => spec.endpoints.completions,
        Endpoint::Embeddings => spec.endpoints.embeddings,
        Endpoint::Models => spec.endpoints.models,
        // Messages are translated to the chat protocol when not native.
        Endpoint::Messages => spec.endpoints.chat,
        Endpoint::Responses => spec.endpoints.responses,
    };
    if !supported {
        return Err(TranslateError::unsupported(
            "endpoint",
            format!("{} does not serve {:?}", spec.name, endpoint),
        ));
    }
    let args = PathArgs {
        spec,
        base,
        endpoint,
        model,
        stream,
        opts,
    };
    Ok(upstream(wire).path(&args))
}
