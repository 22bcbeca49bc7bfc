//! The provider catalogue: default host, base path, authentication style, wire protocol and
//! supported endpoints of each model provider, and the upstream path for an endpoint.
//!
//! | provider | default host | base path | auth | protocol |
//! |---|---|---|---|---|
//! | openai | api.openai.com | /v1 | Bearer | OpenAI |
//! | azure | `<resource>.openai.azure.com` (configure) | /openai | `api-key` | OpenAI (deployment URLs or `/openai/v1`) |
//! | anthropic | api.anthropic.com | /v1 | `x-api-key` + `anthropic-version` | Anthropic |
//! | gemini | generativelanguage.googleapis.com | /v1beta | `x-goog-api-key` | Gemini |
//! | bedrock | bedrock-runtime.`<region>`.amazonaws.com | /model | SigV4 (or Bearer API key) | Converse |
//! | qwen | dashscope.aliyuncs.com | /compatible-mode/v1 | Bearer | OpenAI |
//! | qwen-native | dashscope.aliyuncs.com | /api/v1 | Bearer | DashScope native (always streamed) |
//! | deepseek | api.deepseek.com | (none) | Bearer | OpenAI |
//! | moonshot | api.moonshot.cn | /v1 | Bearer | OpenAI |
//! | zhipu | open.bigmodel.cn | /api/paas/v4 | Bearer | OpenAI |
//! | mistral | api.mistral.ai | /v1 | Bearer | OpenAI |
//! | groq | api.groq.com | /openai/v1 | Bearer | OpenAI |
//! | openrouter | openrouter.ai | /api/v1 | Bearer | OpenAI |
//! | ollama | localhost:11434 | /v1 | none | OpenAI |
//! | vllm | localhost:8000 | /v1 | Bearer (optional) | OpenAI |
//! | openai-compatible | (configure) | /v1 | Bearer | OpenAI |

/// A provider known to the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// OpenAI.
    OpenAi,
    /// Azure OpenAI.
    Azure,
    /// Anthropic.
    Anthropic,
    /// Google Gemini API.
    Gemini,
    /// AWS Bedrock runtime (Converse).
    Bedrock,
    /// Alibaba Qwen through DashScope's OpenAI-compatible mode.
    Qwen,
    /// Alibaba DashScope native API.
    QwenNative,
    /// DeepSeek.
    DeepSeek,
    /// Moonshot (Kimi).
    Moonshot,
    /// Zhipu (GLM).
    Zhipu,
    /// Mistral.
    Mistral,
    /// Groq.
    Groq,
    /// OpenRouter.
    OpenRouter,
    /// Ollama.
    Ollama,
    /// vLLM.
    Vllm,
    /// Any other OpenAI-compatible server.
    OpenAiCompatible,
}

/// How requests authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// Azure's `api-key: <key>`.
    ApiKeyHeader,
    /// Anthropic's `x-api-key: <key>` plus `anthropic-version`.
    XApiKey,
    /// Google's `x-goog-api-key: <key>` (or `?key=`).
    GoogApiKey,
    /// AWS Signature Version 4 (see [`crate::providers::bedrock::sigv4`]).
    SigV4,
    /// No authentication (a key, if configured, is sent as Bearer).
    None,
}

/// The wire dialect of a provider's chat endpoint, named by the SDK's API classification
/// (`ChatCompletions`, `AnthropicMessages`, `GeminiGenerateContent`, `BedrockConverse`,
/// `DashScopeText`, `Responses`): the plugin declares no dialect enum of its own.
pub type Protocol = aigw::llm::Api;

/// An API endpoint a client can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completions,
    /// `/v1/embeddings`.
    Embeddings,
    /// `/v1/models`.
    Models,
    /// Anthropic `/v1/messages` (native on Anthropic; translated elsewhere).
    Messages,
    /// `/v1/responses`.
    Responses,
}

/// Which endpoints a provider serves natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// Chat completions (or its native equivalent).
    pub chat: bool,
    /// Legacy completions.
    pub completions: bool,
    /// Embeddings.
    pub embeddings: bool,
    /// Model listing.
    pub models: bool,
    /// Anthropic Messages natively.
    pub messages: bool,
    /// Responses API.
    pub responses: bool,
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderSpec {
    /// The provider.
    pub provider: Provider,
    /// Configuration name (`openai`, `azure`, ...).
    pub name: &'static str,
    /// Default upstream host (empty: must be configured).
    pub default_host: &'static str,
    /// Base path prepended to endpoint paths.
    pub base_path: &'static str,
    /// Authentication style.
    pub auth: AuthStyle,
    /// Chat wire protocol.
    pub protocol: Protocol,
    /// Supported endpoints.
    pub endpoints: Endpoints,
}

const fn eps(
    chat: bool,
    completions: bool,
    embeddings: bool,
    models: bool,
    messages: bool,
    responses: bool,
) -> Endpoints {
    Endpoints {
        chat,
        completions,
        embeddings,
        models,
        messages,
        responses,
    }
}

const fn spec(
    provider: Provider,
    name: &'static str,
    default_host: &'static str,
    base_path: &'static str,
    auth: AuthStyle,
    protocol: Protocol,
    endpoints: Endpoints,
) -> ProviderSpec {
    ProviderSpec {
        provider,
        name,
        default_host,
        base_path,
        auth,
        protocol,
        endpoints,
    }
}

use AuthStyle as A;
use Protocol as P;
use Provider as V;

/// Every provider, in documentation order.
pub static CATALOGUE: &[ProviderSpec] = &[
    spec(
        V::OpenAi,
        "openai",
        "api.openai.com",
        "/v1",
        A::Bearer,
        P::ChatCompletions,
        eps(true, true, true, true, false, true),
    ),
    spec(
        V::Azure,
        "azure",
        "",
        "/openai",
        A::ApiKeyHeader,
        P::ChatCompletions,
        eps(true, true, true, true, false, true),
    ),
    spec(
        V::Anthropic,
        "anthropic",
        "api.anthropic.com",
        "/v1",
        A::XApiKey,
        P::AnthropicMessages,
        eps(true, false, false, true, true, false),
    ),
    spec(
        V::Gemini,
        "gemini",
        "generativelanguage.googleapis.com",
        "/v1beta",
        A::GoogApiKey,
        P::GeminiGenerateContent,
        eps(true, false, false, true, false, false),
    ),
    spec(
        V::Bedrock,
        "bedrock",
        "",
        "",
        A::SigV4,
        P::BedrockConverse,
        eps(true, false, false, false, false, false),
    ),
    spec(
        V::Qwen,
        "qwen",
        "dashscope.aliyuncs.com",
        "/compatible-mode/v1",
        A::Bearer,
        P::ChatCompletions,
        eps(true, true, true, true, false, false),
    ),
    spec(
        V::QwenNative,
        "qwen-native",
        "dashscope.aliyuncs.com",
        "/api/v1",
        A::Bearer,
        P::DashScopeText,
        eps(true, false, false, false, false, false),
    ),
    spec(
        V::DeepSeek,
        "deepseek",
        "api.deepseek.com",
        "",
        A::Bearer,
        P::ChatCompletions,
        eps(true, false, false, true, false, false),
    ),
    spec(
        V::Moonshot,
        "moonshot",
        "api.moonshot.cn",
        "/v1",
        A::Bearer,
        P::ChatCompletions,
        eps(true, false, false, true, false, false),
    ),
    spec(
        V::Zhipu,
        "zhipu",
        "open.bigmodel.cn",
        "/api/paas/v4",
        A::Bearer,
        P::ChatCompletions,
        eps(true, false, true, false, false, false),
    ),
    spec(
        V::Mistral,
        "mistral",
        "api.mistral.ai",
        "/v1",
        A::Bearer,
        P::ChatCompletions,
        eps(true, false, true, true, false, false),
    ),
    spec(
        V::Groq,
        "groq",
        "api.groq.com",
        "/openai/v1",
        A::Bearer,
        P::ChatCompletions,
        eps(true, false, false, true, false, true),
    ),
    spec(
        V::OpenRouter,
        "openrouter",
        "openrouter.ai",
        "/api/v1",
        A::Bearer,
        P::ChatCompletions,
        eps(true, true, true, true, false, false),
    ),
    spec(
        V::Ollama,
        "ollama",
        "localhost:11434",
        "/v1",
        A::None,
        P::ChatCompletions,
        eps(true, true, true, true, false, false),
    ),
    spec(
        V::Vllm,
        "vllm",
        "localhost:8000",
        "/v1",
        A::Bearer,
        P::ChatCompletions,
        eps(true, true, true, true, false, true),
    ),
    GENERIC,
];

impl Provider {
    /// The catalogue entry.
    pub fn spec(self) -> &'static ProviderSpec {
        // Every variant has exactly one entry (checked by a test); fall back to the generic
        // OpenAI-compatible entry rather than panicking.
        CATALOGUE
            .iter()
            .find(|s| s.provider == self)
            .or_else(|| CATALOGUE.last())
            .unwrap_or(&GENERIC)
    }

    /// Looks a provider up by its configuration name (`dashscope` is accepted for `qwen`,
    /// `dashscope-native` and `qwen_native` for `qwen-native`,
    /// `kimi` for `moonshot`, `glm` for `zhipu`, `custom` for `openai-compatible`).
    pub fn from_name(name: &str) -> Option<Provider> {
        let n = name.to_ascii_lowercase();
        let alias = match n.as_str() {
            "dashscope" => "qwen",
            "dashscope-native" | "dashscope_native" | "qwen_native" => "qwen-native",
            "kimi" => "moonshot",
            "glm" | "bigmodel" => "zhipu",
            "custom" | "openai_compatible" => "openai-compatible",
            "google" => "gemini",
            "claude" => "anthropic",
            "azure-openai" => "azure",
            other => other,
        };
        CATALOGUE
            .iter()
            .find(|s| s.name == alias)
            .map(|s| s.provider)
    }
}

/// The generic OpenAI-compatible entry (the catalogue's last).
const GENERIC: ProviderSpec = spec(
    V::OpenAiCompatible,
    "openai-compatible",
    "",
    "/v1",
    A::Bearer,
    P::ChatCompletions,
    eps(true, true, true, true, false, false),
);

/// Per-route settings that shape the upstream path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathOptions {
    /// Overrides the catalogue base path (e.g. a self-hosted server under `/api`).
    pub base_path: Option<String>,
    /// Azure deployment name (defaults to the model name).
    pub azure_deployment: Option<String>,
    /// Azure `api-version` for deployment URLs (e.g. `2024-10-21`); `None` selects the
    /// version-less `/openai/v1/` form.
    pub azure_api_version: Option<String>,
}

/// The authentication headers for an API key (not for SigV4, see
/// [`crate::providers::bedrock::sigv4::sign_bedrock`]). `anthropic_version` defaults to `2023-06-01`.
pub fn auth_headers(
    auth: AuthStyle,
    key: &str,
    anthropic_version: Option<&str>,
) -> Vec<(&'static str, String)> {
    match auth {
        A::Bearer | A::None | A::SigV4 => {
            if key.is_empty() {
                Vec::new()
            } else {
                vec![("authorization", format!("Bearer {key}"))]
            }
        }
        A::ApiKeyHeader => vec![("api-key", key.to_string())],
        A::XApiKey => vec![
            ("x-api-key", key.to_string()),
            (
                "anthropic-version",
                anthropic_version.unwrap_or("2023-06-01").to_string(),
            ),
        ],
        A::GoogApiKey => vec![("x-goog-api-key", key.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::upstream_path;

    #[test]
    fn every_provider_has_one_entry_and_a_name() {
        for s in CATALOGUE {
            assert_eq!(
                CATALOGUE
                    .iter()
                    .filter(|o| o.provider == s.provider)
                    .count(),
                1
            );
            assert_eq!(Provider::from_name(s.name), Some(s.provider));
            assert_eq!(s.provider.spec().name, s.name);
        }
        assert_eq!(Provider::from_name("DashScope"), Some(Provider::Qwen));
        assert_eq!(
            Provider::from_name("dashscope-native"),
            Some(Provider::QwenNative)
        );
        assert_eq!(Provider::from_name("nope"), None);
    }

    #[test]
    fn paths() {
        use Endpoint as E;
        let o = PathOptions::default();
        let az = PathOptions {
            azure_deployment: Some("prod-gpt4o".into()),
            azure_api_version: Some("2024-10-21".into()),
            ..o.clone()
        };
        let az_model = PathOptions {
            azure_deployment: None,
            ..az.clone()
        };
        let custom = PathOptions {
            base_path: Some("/api".into()),
            ..o.clone()
        };
        let bedrock_model = "anthropic.claude-3-5-sonnet-20240620-v1:0";
        // provider, endpoint, model, stream, options, the upstream path.
        #[rustfmt::skip]
        let cases: &[(V, E, &str, bool, &PathOptions, &str)] = &[
            (V::OpenAi, E::Chat, "gpt-4o", true, &o, "/v1/chat/completions"),
            (V::Qwen, E::Embeddings, "text-embedding-v3", false, &o, "/compatible-mode/v1/embeddings"),
            (V::DeepSeek, E::Chat, "deepseek-chat", false, &o, "/chat/completions"),
            (V::Groq, E::Chat, "llama", false, &o, "/openai/v1/chat/completions"),
            (V::Zhipu, E::Chat, "glm-4", false, &o, "/api/paas/v4/chat/completions"),
            (V::Anthropic, E::Chat, "claude", true, &o, "/v1/messages"),
            (V::Gemini, E::Chat, "gemini-2.5-flash", false, &o, "/v1beta/models/gemini-2.5-flash:generateContent"),
            (V::Gemini, E::Chat, "gemini-2.5-flash", true, &o, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
            (V::Bedrock, E::Chat, bedrock_model, true, &o, "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"),
            (V::Azure, E::Chat, "gpt-4o", false, &az, "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"),
            (V::Azure, E::Embeddings, "emb", false, &az_model, "/openai/deployments/emb/embeddings?api-version=2024-10-21"),
            (V::Azure, E::Chat, "gpt-4o", false, &o, "/openai/v1/chat/completions"),
            (V::QwenNative, E::Messages, "qwen-plus", true, &o, "/api/v1/services/aigc/text-generation/generation"),
            (V::OpenAiCompatible, E::Models, "", false, &custom, "/api/models"),
        ];
        for &(prov, ep, model, stream, opts, want) in cases {
            let got = upstream_path(prov, prov.spec().protocol, ep, model, stream, opts);
            assert_eq!(got.unwrap(), want, "{prov:?} {ep:?} {model}");
        }
        let unsupported = [
            (V::QwenNative, E::Embeddings),
            (V::QwenNative, E::Completions),
            (V::Anthropic, E::Embeddings),
            (V::DeepSeek, E::Embeddings),
        ];
        for (prov, ep) in unsupported {
            let got = upstream_path(prov, prov.spec().protocol, ep, "m", false, &o);
            assert!(got.is_err(), "{prov:?} {ep:?}");
        }
    }

    #[test]
    fn auth() {
        assert_eq!(
            auth_headers(V::OpenAi.spec().auth, "sk-1", None),
            vec![("authorization", "Bearer sk-1".to_string())]
        );
        assert_eq!(
            auth_headers(V::Azure.spec().auth, "k", None),
            vec![("api-key", "k".to_string())]
        );
        assert_eq!(
            auth_headers(V::Anthropic.spec().auth, "k", None),
            vec![
                ("x-api-key", "k".to_string()),
                ("anthropic-version", "2023-06-01".to_string())
            ]
        );
        assert_eq!(
            auth_headers(V::Gemini.spec().auth, "k", None),
            vec![("x-goog-api-key", "k".to_string())]
        );
        assert!(auth_headers(V::Ollama.spec().auth, "", None).is_empty());
        assert_eq!(
            auth_headers(V::QwenNative.spec().auth, "sk-d", None),
            vec![("authorization", "Bearer sk-d".to_string())]
        );
    }
}
