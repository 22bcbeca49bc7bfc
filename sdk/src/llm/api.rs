//! Which LLM API a request speaks, decided once from its method, path and content type.
//!
//! Every plugin of the pack asks the same questions of a request: is this a chat completion
//! or an Anthropic message, which usage rules apply to its answer, which error shape does the
//! client expect, does the path name the model. [`Api::classify`] answers the first, and the
//! capability methods of [`Api`] the others, so that no plugin sniffs paths on its own.
//!
//! ```
//! use aigw::llm::api::{Api, Framing};
//! use aigw::llm::UsageProtocol;
//! use aigw::reply::Protocol;
//!
//! let api = Api::classify("POST", "/anthropic/v1/messages?beta=true", Some("application/json"));
//! assert_eq!(api, Some(Api::AnthropicMessages));
//! let api = api.unwrap();
//! assert_eq!(api.usage_protocol(), Some(UsageProtocol::Anthropic));
//! assert_eq!(api.error_protocol(), Protocol::Anthropic);
//! assert_eq!(api.framing(), Framing::Sse);
//!
//! let path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
//! let api = Api::classify("POST", path, None).unwrap();
//! assert_eq!(api, Api::GeminiStreamGenerateContent);
//! assert_eq!(api.model_in_path(path).as_deref(), Some("gemini-2.5-flash"));
//! ```
//!
//! Paths are matched on their tail, so prefixes a gateway or SDK adds (`/openai/v1/...`,
//! `/anthropic/v1/messages`, Azure's `/openai/deployments/{d}/chat/completions?api-version=…`,
//! DashScope's `/compatible-mode/v1/...`) classify as the API they end in. The query and
//! fragment are ignored, and percent-encoded unreserved characters are decoded first
//! ([`super::path::normalize`]), as the upstream reads them.

use super::path::normalize;
use super::usage::UsageProtocol;
use crate::reply::Protocol;

/// An LLM API the pack recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// OpenAI chat completions: `POST …/chat/completions` (also Azure deployments and every
    /// OpenAI-compatible provider).
    ChatCompletions,
    /// OpenAI legacy completions: `POST …/completions`.
    Completions,
    /// OpenAI embeddings: `POST …/embeddings`.
    Embeddings,
    /// The models list: `GET …/models`.
    ModelsList,
    /// One model: `GET …/models/{id}`.
    ModelRetrieve,
    /// OpenAI Responses: `POST …/responses`.
    Responses,
    /// Anthropic Messages: `POST …/v1/messages`.
    AnthropicMessages,
    /// Anthropic token counting: `POST …/v1/messages/count_tokens`.
    AnthropicCountTokens,
    /// Gemini `POST …/models/{model}:generateContent`.
    GeminiGenerateContent,
    /// Gemini `POST …/models/{model}:streamGenerateContent`.
    GeminiStreamGenerateContent,
    /// AWS Bedrock Converse: `POST …/model/{id}/converse`.
    BedrockConverse,
    /// AWS Bedrock ConverseStream: `POST …/model/{id}/converse-stream`.
    BedrockConverseStream,
    /// DashScope native text generation: `POST …/api/v1/services/aigc/text-generation/generation`.
    DashScopeText,
    /// DashScope native multimodal generation:
    /// `POST …/api/v1/services/aigc/multimodal-generation/generation`.
    DashScopeMultimodal,
}

/// How an answer of an API is framed on the wire when it streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-Sent Events (`text/event-stream`).
    Sse,
    /// AWS event stream (`application/vnd.amazon.eventstream`, binary frames with CRCs).
    AwsEventStream,
    /// One JSON document (the API does not stream).
    Json,
}

/// Which HTTP method an API is called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

impl Api {
    /// Every API, in declaration order (for tables and tests).
    pub const ALL: [Api; 14] = [
        Api::ChatCompletions,
        Api::Completions,
        Api::Embeddings,
        Api::ModelsList,
        Api::ModelRetrieve,
        Api::Responses,
        Api::AnthropicMessages,
        Api::AnthropicCountTokens,
        Api::GeminiGenerateContent,
        Api::GeminiStreamGenerateContent,
        Api::BedrockConverse,
        Api::BedrockConverseStream,
        Api::DashScopeText,
        Api::DashScopeMultimodal,
    ];

    /// The API a request speaks, or `None` when it is none the pack knows.
    ///
    /// * `method`: the `:method` (any case); an empty method is not checked, for callers
    ///   that only know the path.
    /// * `path`: the `:path` as received, query included (ignored, as is the fragment).
    /// * `content_type`: the request's `content-type`, when known. A body API (every `POST`
    ///   one) sent with a content type that is not JSON (`multipart/form-data`, `text/plain`)
    ///   is not classified: it is not the API's request, whatever its path.
    pub fn classify(method: &str, path: &str, content_type: Option<&str>) -> Option<Api> {
        let normal = normalize(path);
        let path = normal.split(['?', '#']).next().unwrap_or("");
        let path = path.trim_end_matches('/');
        let api = Api::by_path(path)?;
        let wanted = api.method();
        let method_ok = method.is_empty()
            || match wanted {
                Method::Get => method.eq_ignore_ascii_case("GET"),
                Method::Post => method.eq_ignore_ascii_case("POST"),
            };
        if !method_ok {
            return None;
        }
        if wanted == Method::Post && !content_type.is_none_or(is_json) {
            return None;
        }
        Some(api)
    }

    fn by_path(path: &str) -> Option<Api> {
        let (parent, last) = path.rsplit_once('/')?;
        // Gemini: …/models/{model}:generateContent.
        if let Some((model, verb)) = last.split_once(':') {
            if !model.is_empty() && parent.ends_with("/models") {
                return match verb {
                    "generateContent" => Some(Api::GeminiGenerateContent),
                    "streamGenerateContent" => Some(Api::GeminiStreamGenerateContent),
                    _ => None,
                };
            }
            return None;
        }
        match last {
            "completions" if parent.ends_with("/chat") => Some(Api::ChatCompletions),
            "completions" => Some(Api::Completions),
            "embeddings" => Some(Api::Embeddings),
            "models" => Some(Api::ModelsList),
            "responses" => Some(Api::Responses),
            "messages" if parent.ends_with("/v1") => Some(Api::AnthropicMessages),
            "count_tokens" if parent.ends_with("/v1/messages") => Some(Api::AnthropicCountTokens),
            "converse" | "converse-stream" if bedrock_model(parent).is_some() => {
                Some(if last == "converse" {
                    Api::BedrockConverse
                } else {
                    Api::BedrockConverseStream
                })
            }
            "generation" if parent.ends_with("/services/aigc/text-generation") => {
                Some(Api::DashScopeText)
            }
            "generation" if parent.ends_with("/services/aigc/multimodal-generation") => {
                Some(Api::DashScopeMultimodal)
            }
            id if !id.is_empty() && parent.ends_with("/models") => Some(Api::ModelRetrieve),
            // Model ids may contain `/` (`meta-llama/Llama-3.1-8B`).
            _ if path.contains("/models/") => Some(Api::ModelRetrieve),
            _ => None,
        }
    }

    fn method(self) -> Method {
        match self {
            Api::ModelsList | Api::ModelRetrieve => Method::Get,
            _ => Method::Post,
        }
    }

    /// The usage rules for this API's answers, or `None` when its answers carry no token
    /// usage the pack counts (models, token counting) or in a shape no extractor reads
    /// (DashScope native).
    pub fn usage_protocol(self) -> Option<UsageProtocol> {
        match self {
            Api::ChatCompletions | Api::Completions | Api::Embeddings => {
                Some(UsageProtocol::OpenAi)
            }
            Api::Responses => Some(UsageProtocol::Responses),
            Api::AnthropicMessages => Some(UsageProtocol::Anthropic),
            Api::GeminiGenerateContent | Api::GeminiStreamGenerateContent => {
                Some(UsageProtocol::Gemini)
            }
            Api::BedrockConverse | Api::BedrockConverseStream => Some(UsageProtocol::Bedrock),
            Api::ModelsList
            | Api::ModelRetrieve
            | Api::AnthropicCountTokens
            | Api::DashScopeText
            | Api::DashScopeMultimodal => None,
        }
    }

    /// The error shape the client of this API expects: Anthropic's for the Messages APIs,
    /// OpenAI's for the rest.
    pub fn error_protocol(self) -> Protocol {
        match self {
            Api::AnthropicMessages | Api::AnthropicCountTokens => Protocol::Anthropic,
            _ => Protocol::OpenAi,
        }
    }

    /// How a streamed answer is framed: SSE for the APIs that stream on request (`stream:
    /// true`, Gemini's `alt=sse`, DashScope's `X-DashScope-SSE: enable`), the AWS event
    /// stream for ConverseStream, JSON for APIs that never stream.
    pub fn framing(self) -> Framing {
        match self {
            Api::ChatCompletions
            | Api::Completions
            | Api::Responses
            | Api::AnthropicMessages
            | Api::GeminiStreamGenerateContent
            | Api::DashScopeText
            | Api::DashScopeMultimodal => Framing::Sse,
            Api::BedrockConverseStream => Framing::AwsEventStream,
            Api::Embeddings
            | Api::ModelsList
            | Api::ModelRetrieve
            | Api::AnthropicCountTokens
            | Api::GeminiGenerateContent
            | Api::BedrockConverse => Framing::Json,
        }
    }

    /// Whether the path alone says the answer streams (Gemini `streamGenerateContent`,
    /// Bedrock `converse-stream`); the other streaming APIs say it in the body.
    pub fn streams_by_path(self) -> bool {
        matches!(
            self,
            Api::GeminiStreamGenerateContent | Api::BedrockConverseStream
        )
    }

    /// Whether the API generates text (and so spends output tokens): chat, completions,
    /// Responses, messages, Gemini, Bedrock and DashScope generation. Embeddings, models and
    /// token counting do not.
    pub fn is_generation(self) -> bool {
        !matches!(
            self,
            Api::Embeddings | Api::ModelsList | Api::ModelRetrieve | Api::AnthropicCountTokens
        )
    }

    /// Whether the model is named in the path rather than in the body (Gemini, Bedrock).
    pub fn has_model_in_path(self) -> bool {
        matches!(
            self,
            Api::GeminiGenerateContent
                | Api::GeminiStreamGenerateContent
                | Api::BedrockConverse
                | Api::BedrockConverseStream
        )
    }

    /// The model id of a [`Api::ModelRetrieve`] path (`GET …/models/{id}`), percent-decoded;
    /// ids may contain `/`.
    ///
    /// ```
    /// use aigw::llm::api::Api;
    /// assert_eq!(Api::retrieved_model("/v1/models/meta-llama/Llama-3.1-8B").as_deref(),
    ///            Some("meta-llama/Llama-3.1-8B"));
    /// assert_eq!(Api::retrieved_model("/v1/models/a%2Fb?x=1").as_deref(), Some("a/b"));
    /// assert_eq!(Api::retrieved_model("/v1/models"), None);
    /// ```
    pub fn retrieved_model(path: &str) -> Option<String> {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let at = path.find("/models/")?;
        let id = path.get(at + "/models/".len()..)?.trim_end_matches('/');
        let id = normalize(id).replace("%2F", "/").replace("%2f", "/");
        (!id.is_empty()).then_some(id)
    }

    /// The model a Gemini or Bedrock path names, in its normalised spelling
    /// ([`super::path::normalize`]: what the upstream reads); `None` for other APIs and for
    /// paths that name no model.
    pub fn model_in_path(self, path: &str) -> Option<String> {
        if !self.has_model_in_path() {
            return None;
        }
        let normal = normalize(path);
        let path = normal.split(['?', '#']).next().unwrap_or("");
        let path = path.trim_end_matches('/');
        let (parent, last) = path.rsplit_once('/')?;
        let model = match self {
            Api::GeminiGenerateContent | Api::GeminiStreamGenerateContent => {
                parent.ends_with("/models").then_some(())?;
                last.split_once(':')?.0
            }
            _ => bedrock_model(parent)?,
        };
        (!model.is_empty()).then(|| model.to_string())
    }

    /// The model any Gemini-style (`…/models/{model}:{verb}`, whatever the verb) or
    /// Bedrock-style (`…/model/{id}/{converse|converse-stream|invoke|invoke-with-response-stream}`)
    /// path names, normalised. Wider than [`Api::model_in_path`]: for checks that must see
    /// the model of operations the pack does not otherwise classify (`:countTokens`,
    /// `:embedContent`, `:predict`, Bedrock `invoke`), such as a consumer's model policy.
    pub fn any_model_in_path(path: &str) -> Option<String> {
        let normal = normalize(path);
        let path = normal.split(['?', '#']).next().unwrap_or("");
        let path = path.trim_end_matches('/');
        let (parent, last) = path.rsplit_once('/')?;
        let model = match last.split_once(':') {
            Some((model, _)) if parent.ends_with("/models") => model,
            Some(_) => return None,
            None => match last {
                "converse" | "converse-stream" | "invoke" | "invoke-with-response-stream" => {
                    bedrock_model(parent)?
                }
                _ => return None,
            },
        };
        (!model.is_empty()).then(|| model.to_string())
    }

    /// A short, stable name for labels and logs (`chat_completions`, `anthropic_messages`, …).
    pub fn name(self) -> &'static str {
        match self {
            Api::ChatCompletions => "chat_completions",
            Api::Completions => "completions",
            Api::Embeddings => "embeddings",
            Api::ModelsList => "models_list",
            Api::ModelRetrieve => "model_retrieve",
            Api::Responses => "responses",
            Api::AnthropicMessages => "anthropic_messages",
            Api::AnthropicCountTokens => "anthropic_count_tokens",
            Api::GeminiGenerateContent => "gemini_generate_content",
            Api::GeminiStreamGenerateContent => "gemini_stream_generate_content",
            Api::BedrockConverse => "bedrock_converse",
            Api::BedrockConverseStream => "bedrock_converse_stream",
            Api::DashScopeText => "dashscope_text",
            Api::DashScopeMultimodal => "dashscope_multimodal",
        }
    }
}

/// The model id of a Bedrock `…/model/{id}` prefix.
fn bedrock_model(parent: &str) -> Option<&str> {
    let (head, id) = parent.rsplit_once('/')?;
    (head.ends_with("/model") || head == "/model")
        .then_some(id)
        .filter(|id| !id.is_empty())
}

/// Whether a content type is JSON (`application/json`, `…+json`, any parameters).
fn is_json(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    media.is_empty()
        || media.eq_ignore_ascii_case("application/json")
        || media
            .get(media.len().saturating_sub(5)..)
            .is_some_and(|t| t.eq_ignore_ascii_case("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str) -> Option<Api> {
        Api::classify("POST", path, Some("application/json"))
    }

    #[test]
    fn openai_paths_with_prefixes() {
        for p in [
            "/v1/chat/completions",
            "/openai/v1/chat/completions",
            "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21",
            "/compatible-mode/v1/chat/completions",
            "/v1/chat/completions/",
            "/v1/chat/c%6Fmpletions",
        ] {
            assert_eq!(post(p), Some(Api::ChatCompletions), "{p}");
        }
        assert_eq!(post("/v1/completions"), Some(Api::Completions));
        assert_eq!(
            post("/openai/deployments/emb/embeddings?api-version=2024-10-21"),
            Some(Api::Embeddings)
        );
        assert_eq!(post("/v1/responses"), Some(Api::Responses));
        assert_eq!(
            Api::classify("GET", "/v1/models", None),
            Some(Api::ModelsList)
        );
        assert_eq!(
            Api::classify("get", "/v1/models/gpt-4o-mini", None),
            Some(Api::ModelRetrieve)
        );
        // Methods and bodies that are not the API's.
        assert_eq!(Api::classify("GET", "/v1/chat/completions", None), None);
        assert_eq!(Api::classify("POST", "/v1/models", None), None);
        assert_eq!(
            Api::classify(
                "POST",
                "/v1/chat/completions",
                Some("multipart/form-data; b=x")
            ),
            None
        );
        assert_eq!(
            Api::classify(
                "POST",
                "/v1/chat/completions",
                Some("application/json; charset=utf-8")
            ),
            Some(Api::ChatCompletions)
        );
        // Unknown method: classified by path alone.
        assert_eq!(
            Api::classify("", "/v1/embeddings", None),
            Some(Api::Embeddings)
        );
    }

    #[test]
    fn anthropic_paths() {
        let cases = [
            ("/v1/messages", Some(Api::AnthropicMessages)),
            ("/v1/messages?beta=true", Some(Api::AnthropicMessages)),
            ("/anthropic/v1/messages", Some(Api::AnthropicMessages)),
            ("/v1/messages/count_tokens", Some(Api::AnthropicCountTokens)),
            ("/v1/messagesx", None),
            ("/x?next=/v1/messages", None),
            // The Assistants API's thread messages are not Anthropic's.
            ("/v1/threads/thread_1/messages", None),
            ("", None),
            ("/", None),
        ];
        for (path, api) in cases {
            assert_eq!(post(path), api, "{path}");
        }
    }

    #[test]
    fn gemini_bedrock_dashscope_paths() {
        #[rustfmt::skip]
        let cases = [
            ("/v1beta/models/gemini-2.0-flash:generateContent?key=k", Some(Api::GeminiGenerateContent)),
            ("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", Some(Api::GeminiStreamGenerateContent)),
            ("/v1beta/models/gemini-2.0-flash:countTokens", None),
            ("/v1beta/models/:generateContent", None),
            ("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse", Some(Api::BedrockConverse)),
            ("/model/us.amazon.nova-pro-v1:0/converse-stream", Some(Api::BedrockConverseStream)),
            ("/converse", None),
            ("/api/v1/services/aigc/text-generation/generation", Some(Api::DashScopeText)),
            ("/api/v1/services/aigc/multimodal-generation/generation", Some(Api::DashScopeMultimodal)),
        ];
        for (path, api) in cases {
            assert_eq!(post(path), api, "{path}");
        }
    }

    #[test]
    fn models_in_paths() {
        let g = "/v1beta/models/g%65mini-2.0-flash:generateContent";
        assert_eq!(
            Api::GeminiGenerateContent.model_in_path(g).as_deref(),
            Some("gemini-2.0-flash")
        );
        assert_eq!(
            Api::BedrockConverse
                .model_in_path("/model/us.amazon.nova-pro-v1:0/converse?x=1")
                .as_deref(),
            Some("us.amazon.nova-pro-v1:0")
        );
        assert_eq!(
            Api::ChatCompletions.model_in_path("/v1/chat/completions"),
            None
        );
        assert_eq!(
            Api::GeminiGenerateContent.model_in_path("/v1/chat/completions"),
            None
        );
        // Every operation's model, for policy checks.
        assert_eq!(
            Api::any_model_in_path("/v1beta/models/gemini-pro:countTokens").as_deref(),
            Some("gemini-pro")
        );
        assert_eq!(
            Api::any_model_in_path("/model/amazon.titan-embed-text-v2:0/invoke").as_deref(),
            Some("amazon.titan-embed-text-v2:0")
        );
        assert_eq!(Api::any_model_in_path("/v1/models/gpt-4o"), None);
        assert_eq!(Api::any_model_in_path("/v1beta/models/:x"), None);
        assert_eq!(Api::any_model_in_path("/v1/chat/completions"), None);
    }

    #[test]
    fn capability_table() {
        use UsageProtocol as U;
        let table: [(Api, Option<U>, Protocol, Framing, bool, bool); 14] = [
            (
                Api::ChatCompletions,
                Some(U::OpenAi),
                Protocol::OpenAi,
                Framing::Sse,
                true,
                false,
            ),
            (
                Api::Completions,
                Some(U::OpenAi),
                Protocol::OpenAi,
                Framing::Sse,
                true,
                false,
            ),
            (
                Api::Embeddings,
                Some(U::OpenAi),
                Protocol::OpenAi,
                Framing::Json,
                false,
                false,
            ),
            (
                Api::ModelsList,
                None,
                Protocol::OpenAi,
                Framing::Json,
                false,
                false,
            ),
            (
                Api::ModelRetrieve,
                None,
                Protocol::OpenAi,
                Framing::Json,
                false,
                false,
            ),
            (
                Api::Responses,
                Some(U::Responses),
                Protocol::OpenAi,
                Framing::Sse,
                true,
                false,
            ),
            (
                Api::AnthropicMessages,
                Some(U::Anthropic),
                Protocol::Anthropic,
                Framing::Sse,
                true,
                false,
            ),
            (
                Api::AnthropicCountTokens,
                None,
                Protocol::Anthropic,
                Framing::Json,
                false,
                false,
            ),
            (
                Api::GeminiGenerateContent,
                Some(U::Gemini),
                Protocol::OpenAi,
                Framing::Json,
                true,
                true,
            ),
            (
                Api::GeminiStreamGenerateContent,
                Some(U::Gemini),
                Protocol::OpenAi,
                Framing::Sse,
                true,
                true,
            ),
            (
                Api::BedrockConverse,
                Some(U::Bedrock),
                Protocol::OpenAi,
                Framing::Json,
                true,
                true,
            ),
            (
                Api::BedrockConverseStream,
                Some(U::Bedrock),
                Protocol::OpenAi,
                Framing::AwsEventStream,
                true,
                true,
            ),
            (
                Api::DashScopeText,
                None,
                Protocol::OpenAi,
                Framing::Sse,
                true,
                false,
            ),
            (
                Api::DashScopeMultimodal,
                None,
                Protocol::OpenAi,
                Framing::Sse,
                true,
                false,
            ),
        ];
        for (i, (api, usage, error, framing, generation, model)) in table.into_iter().enumerate() {
            assert_eq!(api, Api::ALL[i]);
            assert_eq!(api.usage_protocol(), usage, "{api:?}");
            assert_eq!(api.error_protocol(), error, "{api:?}");
            assert_eq!(api.framing(), framing, "{api:?}");
            assert_eq!(api.is_generation(), generation, "{api:?}");
            assert_eq!(api.has_model_in_path(), model, "{api:?}");
        }
        assert!(Api::BedrockConverseStream.streams_by_path());
        assert!(!Api::ChatCompletions.streams_by_path());
    }
}
