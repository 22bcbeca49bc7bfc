//! Request side: which API the client called (from the path) and the translation of the
//! request body into the provider's protocol, with model mapping and forced stream usage.

use crate::clients::anthropic::anthropic_request_to_chat;
use crate::clients::responses::responses_request_to_chat;
use crate::config::ProviderConfig;
use crate::error::TranslateError;
use crate::providers::{upstream, Endpoint, Protocol as Wire};
use aigw::llm::anthropic as an;
use aigw::llm::openai as oa;
use aigw::llm::responses as rs;
use aigw::llm::{Extra, UsageProtocol};

/// The API a client called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientApi {
    /// OpenAI `/v1/chat/completions`.
    Chat,
    /// OpenAI `/v1/completions`.
    Completions,
    /// OpenAI `/v1/embeddings`.
    Embeddings,
    /// OpenAI `GET /v1/models`.
    Models,
    /// OpenAI `GET /v1/models/{id}`.
    Model,
    /// Anthropic `/v1/messages`.
    Messages,
    /// OpenAI Responses `/v1/responses`.
    Responses,
}

impl ClientApi {
    /// Classifies a request path (query ignored); `None` for paths this plugin does not serve.
    pub fn from_path(path: &str) -> Option<ClientApi> {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let path = path.trim_end_matches('/');
        if path.ends_with("/chat/completions") {
            Some(ClientApi::Chat)
        } else if path.ends_with("/completions") {
            Some(ClientApi::Completions)
        } else if path.ends_with("/embeddings") {
            Some(ClientApi::Embeddings)
        } else if path.ends_with("/models") {
            Some(ClientApi::Models)
        } else if path.contains("/models/") {
            Some(ClientApi::Model)
        } else if path.ends_with("/messages") {
            Some(ClientApi::Messages)
        } else if path.ends_with("/responses") {
            Some(ClientApi::Responses)
        } else {
            None
        }
    }

    /// The catalogue endpoint this API needs from `provider`: Responses clients of providers
    /// that do not serve the Responses API are translated to chat.
    pub fn endpoint(self, provider: &ProviderConfig) -> Endpoint {
        match self {
            ClientApi::Chat => Endpoint::Chat,
            ClientApi::Completions => Endpoint::Completions,
            ClientApi::Embeddings => Endpoint::Embeddings,
            ClientApi::Models | ClientApi::Model => Endpoint::Models,
            ClientApi::Messages => Endpoint::Messages,
            ClientApi::Responses if provider.serves_responses() => Endpoint::Responses,
            ClientApi::Responses => Endpoint::Chat,
        }
    }

    /// The protocol the upstream speaks for this API: the provider's own, except that
    /// OpenAI-protocol endpoints other than chat stay OpenAI on a Responses-configured
    /// provider and that Responses clients of a provider serving the Responses API pass
    /// through.
    pub fn wire(self, provider: &ProviderConfig) -> Wire {
        match self {
            ClientApi::Completions
            | ClientApi::Embeddings
            | ClientApi::Models
            | ClientApi::Model
                if provider.wire() == Wire::Responses =>
            {
                Wire::OpenAi
            }
            ClientApi::Responses if provider.serves_responses() => Wire::Responses,
            _ => provider.wire(),
        }
    }

    /// Whether the gateway answers this API itself (model listing and lookup).
    pub fn is_local(self) -> bool {
        matches!(self, ClientApi::Models | ClientApi::Model)
    }

    /// The model id of `GET /v1/models/{id}` (percent-decoded; ids may contain `/`).
    pub fn model_id(path: &str) -> Option<String> {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let at = path.find("/models/")?;
        let id = path.get(at + "/models/".len()..)?.trim_end_matches('/');
        let id = aigw::llm::path::normalize(id)
            .replace("%2F", "/")
            .replace("%2f", "/");
        (!id.is_empty()).then_some(id)
    }

    /// The usage rules when the upstream speaks this client's own dialect (answers and streams
    /// then pass untouched but for the model name); `None` when they must be translated.
    pub fn spoken_by(self, wire: Wire) -> Option<UsageProtocol> {
        match (self, wire) {
            (ClientApi::Chat | ClientApi::Completions | ClientApi::Embeddings, Wire::OpenAi) => {
                Some(UsageProtocol::OpenAi)
            }
            (ClientApi::Messages, Wire::Anthropic) => Some(UsageProtocol::Anthropic),
            (ClientApi::Responses, Wire::Responses) => Some(UsageProtocol::Responses),
            _ => None,
        }
    }

    /// Whether the client speaks the Anthropic protocol.
    pub fn is_anthropic(self) -> bool {
        self == ClientApi::Messages
    }
}

/// A translated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// The body to send upstream.
    pub body: Vec<u8>,
    /// The model the client asked for.
    pub client_model: String,
    /// The model sent upstream.
    pub upstream_model: String,
    /// The client asked for a stream.
    pub stream: bool,
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
}

fn bad_json(e: &serde_json::Error) -> TranslateError {
    TranslateError::bad_json(e)
}

fn model_not_found(model: &str, provider: &ProviderConfig) -> TranslateError {
    TranslateError {
        status: 404,
        kind: "invalid_request_error",
        message: format!(
            "model `{}` is not served by provider `{}`",
            aigw::log::untrusted(model),
            provider.id
        ),
        param: Some("model".into()),
        code: Some("model_not_found".into()),
    }
}

fn to_vec<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, TranslateError> {
    serde_json::to_vec(v).map_err(|e| TranslateError {
        status: 500,
        kind: "api_error",
        message: format!("cannot serialize the upstream request: {e}"),
        param: None,
        code: None,
    })
}

/// Resolves the upstream model: the model fixed at request headers (`path_model`) wins, then
/// the provider's mapping.
fn upstream_model(
    provider: &ProviderConfig,
    client_model: &str,
    path_model: Option<&str>,
) -> Result<String, TranslateError> {
    if let Some(m) = path_model {
        return Ok(m.to_string());
    }
    if client_model.is_empty() && provider.model.is_none() {
        return Err(TranslateError::invalid("model", "`model` is required"));
    }
    provider
        .map_model(client_model)
        .ok_or_else(|| model_not_found(client_model, provider))
}

/// Translates a client request body for `provider`. `path_model` is the upstream model when
/// it was fixed at request headers (it is in the URL).
pub fn translate(
    api: ClientApi,
    provider: &ProviderConfig,
    body: &[u8],
    path_model: Option<&str>,
) -> Result<Translated, TranslateError> {
    if !api.is_local() {
        aigw::json::check_strict(body).map_err(|p| TranslateError::not_strict(&p))?;
    }
    match api {
        ClientApi::Chat => {
            let req: oa::ChatCompletionRequest =
                serde_json::from_slice(body).map_err(|e| bad_json(&e))?;
            chat(provider, req, path_model)
        }
        ClientApi::Messages => {
            let mut req: an::MessagesRequest =
                serde_json::from_slice(body).map_err(|e| bad_json(&e))?;
            let client_model = req.model.clone();
            let model = upstream_model(provider, &client_model, path_model)?;
            let stream = req.stream == Some(true);
            if provider.wire() == Wire::Anthropic {
                req.model = model.clone();
                return Ok(Translated {
                    body: to_vec(&req)?,
                    client_model,
                    upstream_model: model,
                    stream,
                    include_usage: true,
                });
            }
            let mut chat_req = anthropic_request_to_chat(&req, &provider.opts)?;
            chat_req.model = model;
            let mut t = chat(provider, chat_req, path_model)?;
            t.client_model = client_model;
            t.include_usage = true;
            Ok(t)
        }
        ClientApi::Completions => {
            let mut req: oa::CompletionRequest =
                serde_json::from_slice(body).map_err(|e| bad_json(&e))?;
            let client_model = std::mem::take(&mut req.model);
            let model = upstream_model(provider, &client_model, path_model)?;
            req.model = model.clone();
            let stream = req.stream == Some(true);
            let include_usage = force_usage(stream, &mut req.stream_options);
            Ok(Translated {
                body: to_vec(&req)?,
                client_model,
                upstream_model: model,
                stream,
                include_usage,
            })
        }
        ClientApi::Embeddings => {
            let mut req: oa::EmbeddingRequest =
                serde_json::from_slice(body).map_err(|e| bad_json(&e))?;
            let client_model = std::mem::take(&mut req.model);
            let model = upstream_model(provider, &client_model, path_model)?;
            req.model = model.clone();
            Ok(Translated {
                body: to_vec(&req)?,
                client_model,
                upstream_model: model,
                stream: false,
                include_usage: false,
            })
        }
        ClientApi::Responses => {
            let mut req: rs::ResponsesRequest =
                serde_json::from_slice(body).map_err(|e| bad_json(&e))?;
            let client_model = req.model.clone();
            let stream = req.stream == Some(true);
            if api.wire(provider) == Wire::Responses {
                let model = upstream_model(provider, &client_model, path_model)?;
                req.model = model.clone();
                return Ok(Translated {
                    body: to_vec(&req)?,
                    client_model,
                    upstream_model: model,
                    stream,
                    include_usage: true,
                });
            }
            let chat_req = responses_request_to_chat(&req)?;
            let mut t = chat(provider, chat_req, path_model)?;
            t.client_model = client_model;
            t.include_usage = true;
            Ok(t)
        }
        ClientApi::Models | ClientApi::Model => {
            Err(TranslateError::invalid("", "models are answered locally"))
        }
    }
}

/// Sets `stream_options.include_usage = true` on a stream and returns what the client asked.
fn force_usage(stream: bool, options: &mut Option<oa::StreamOptions>) -> bool {
    if !stream {
        return false;
    }
    let asked = options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let o = options.get_or_insert_with(|| oa::StreamOptions {
        include_usage: None,
        extra: Extra::new(),
    });
    o.include_usage = Some(true);
    asked
}

fn chat(
    provider: &ProviderConfig,
    mut req: oa::ChatCompletionRequest,
    path_model: Option<&str>,
) -> Result<Translated, TranslateError> {
    let client_model = std::mem::take(&mut req.model);
    let model = upstream_model(provider, &client_model, path_model)?;
    req.model = model.clone();
    let stream = req.stream == Some(true);
    let include_usage = stream
        && req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
    let body = upstream(provider.wire()).chat_request(&mut req, &provider.opts)?;
    Ok(Translated {
        body,
        client_model,
        upstream_model: model,
        stream,
        include_usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn provider(json: &str) -> ProviderConfig {
        let c: crate::config::Config =
            aigw::config::parse(format!(r#"{{"providers":[{json}]}}"#).as_bytes()).unwrap();
        c.providers.into_iter().next().unwrap()
    }

    #[test]
    fn paths() {
        assert_eq!(
            ClientApi::from_path("/v1/chat/completions?x=1"),
            Some(ClientApi::Chat)
        );
        assert_eq!(
            ClientApi::from_path("/v1/completions"),
            Some(ClientApi::Completions)
        );
        assert_eq!(
            ClientApi::from_path("/openai/v1/embeddings"),
            Some(ClientApi::Embeddings)
        );
        assert_eq!(ClientApi::from_path("/v1/models"), Some(ClientApi::Models));
        assert_eq!(
            ClientApi::from_path("/v1/messages"),
            Some(ClientApi::Messages)
        );
        assert_eq!(ClientApi::from_path("/v1/files"), None);
    }

    #[test]
    fn openai_stream_forces_usage_and_maps_model() {
        let p = provider(r#"{"type":"openai","model_mapping":{"gpt-4":"gpt-4o"}}"#);
        let t = translate(
            ClientApi::Chat,
            &p,
            br#"{"model":"gpt-4","stream":true,"messages":[{"role":"user","content":"hi"}],"logit_bias":{"1":2}}"#,
            None,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&t.body).unwrap();
        assert_eq!(v["model"], "gpt-4o");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(
            v["logit_bias"],
            json!({"1":2}),
            "unknown fields pass through"
        );
        assert!(!t.include_usage);
        assert_eq!(
            (t.client_model.as_str(), t.upstream_model.as_str()),
            ("gpt-4", "gpt-4o")
        );
    }

    #[test]
    fn strict_models_and_bad_json() {
        let p = provider(r#"{"type":"openai","strict_models":true,"model_mapping":{"a":"b"}}"#);
        let e =
            translate(ClientApi::Chat, &p, br#"{"model":"z","messages":[]}"#, None).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_deref()),
            (404, Some("model_not_found"))
        );
        let e = translate(ClientApi::Chat, &p, b"{nope", None).unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn anthropic_client_to_openai_upstream() {
        let p = provider(r#"{"type":"deepseek"}"#);
        let t = translate(
            ClientApi::Messages,
            &p,
            br#"{"model":"deepseek-chat","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
            None,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&t.body).unwrap();
        assert_eq!(v["messages"][0]["content"], "hi");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert!(t.stream);
    }
}
