//! Request side: which API the client called (from the path) and the translation of the
//! request body into the provider's protocol, with model mapping and forced stream usage.

use crate::clients::anthropic::anthropic_request_to_chat;
use crate::clients::responses::responses_request_to_chat;
use crate::config::ProviderConfig;
use crate::error::TranslateError;
use crate::providers::openai::force_usage;
use crate::providers::{to_body, upstream, Endpoint, Protocol as Wire};
use aigw::llm::anthropic as an;
use aigw::llm::openai as oa;
use aigw::llm::responses as rs;
use aigw::llm::{Api, UsageProtocol};

/// The client APIs ai-proxy serves, classified by the SDK's [`Api::classify`]: OpenAI chat,
/// completions, embeddings, Responses, the models list and lookup, and Anthropic Messages.
/// Anything else is `None` (a 404).
pub fn served_api(method: &str, path: &str, content_type: Option<&str>) -> Option<Api> {
    match Api::classify(method, path, content_type)? {
        api @ (Api::ChatCompletions
        | Api::Completions
        | Api::Embeddings
        | Api::ModelsList
        | Api::ModelRetrieve
        | Api::Responses
        | Api::AnthropicMessages) => Some(api),
        _ => None,
    }
}

/// What ai-proxy needs to know about a client API besides the SDK's capability table.
pub trait ProxyApi: Copy {
    /// The catalogue endpoint this API needs from `provider`: Responses clients of providers
    /// that do not serve the Responses API are translated to chat.
    fn endpoint(self, provider: &ProviderConfig) -> Endpoint;

    /// The protocol the upstream speaks for this API: the provider's own, except that
    /// OpenAI-protocol endpoints other than chat stay OpenAI on a Responses-configured
    /// provider and that Responses clients of a provider serving the Responses API pass
    /// through.
    fn wire(self, provider: &ProviderConfig) -> Wire;

    /// Whether the gateway answers this API itself (model listing and lookup).
    fn is_local(self) -> bool;

    /// The usage rules when the upstream speaks this client's own dialect (answers and streams
    /// then pass untouched but for the model name); `None` when they must be translated.
    fn spoken_by(self, wire: Wire) -> Option<UsageProtocol>;

    /// Whether the client speaks the Anthropic protocol.
    fn is_anthropic(self) -> bool;
}

impl ProxyApi for Api {
    fn endpoint(self, provider: &ProviderConfig) -> Endpoint {
        match self {
            Api::Completions => Endpoint::Completions,
            Api::Embeddings => Endpoint::Embeddings,
            Api::ModelsList | Api::ModelRetrieve => Endpoint::Models,
            Api::AnthropicMessages => Endpoint::Messages,
            Api::Responses if provider.serves_responses() => Endpoint::Responses,
            _ => Endpoint::Chat,
        }
    }

    fn wire(self, provider: &ProviderConfig) -> Wire {
        match self {
            Api::Completions | Api::Embeddings | Api::ModelsList | Api::ModelRetrieve
                if provider.wire() == Wire::Responses =>
            {
                Wire::ChatCompletions
            }
            Api::Responses if provider.serves_responses() => Wire::Responses,
            _ => provider.wire(),
        }
    }

    fn is_local(self) -> bool {
        matches!(self, Api::ModelsList | Api::ModelRetrieve)
    }

    fn spoken_by(self, wire: Wire) -> Option<UsageProtocol> {
        match (self, wire) {
            (Api::ChatCompletions | Api::Completions | Api::Embeddings, Wire::ChatCompletions) => {
                Some(UsageProtocol::OpenAi)
            }
            (Api::AnthropicMessages, Wire::AnthropicMessages) => Some(UsageProtocol::Anthropic),
            (Api::Responses, Wire::Responses) => Some(UsageProtocol::Responses),
            _ => None,
        }
    }

    fn is_anthropic(self) -> bool {
        self == Api::AnthropicMessages
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

impl Translated {
    /// A request sent on in its own API: `req` itself is the upstream body.
    fn passed<T: serde::Serialize>(
        req: &T,
        client_model: String,
        upstream_model: String,
        stream: bool,
        include_usage: bool,
    ) -> Result<Self, TranslateError> {
        Ok(Translated {
            body: to_body(req)?,
            client_model,
            upstream_model,
            stream,
            include_usage,
        })
    }
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

/// Puts the upstream model in the request's `model` field; returns the client's model and
/// the upstream one.
fn swap_model(
    model: &mut String,
    provider: &ProviderConfig,
    path_model: Option<&str>,
) -> Result<(String, String), TranslateError> {
    let client_model = std::mem::take(model);
    let upstream = upstream_model(provider, &client_model, path_model)?;
    model.clone_from(&upstream);
    Ok((client_model, upstream))
}

/// Translates a client request body for `provider`. `path_model` is the upstream model when
/// it was fixed at request headers (it is in the URL).
pub fn translate(
    api: Api,
    provider: &ProviderConfig,
    body: &[u8],
    path_model: Option<&str>,
) -> Result<Translated, TranslateError> {
    if !api.is_local() {
        aigw::json::check_strict(body).map_err(|p| TranslateError::not_strict(&p))?;
    }
    match api {
        Api::ChatCompletions => {
            let req: oa::ChatCompletionRequest =
                serde_json::from_slice(body).map_err(|e| bad_json(&e))?;
            chat(provider, req, path_model)
        }
        Api::AnthropicMessages => {
            let mut req: an::MessagesRequest =
                serde_json::from_slice(body).map_err(|e| bad_json(&e))?;
            let client_model = req.model.clone();
            let model = upstream_model(provider, &client_model, path_model)?;
            let stream = req.stream == Some(true);
            if api.spoken_by(api.wire(provider)).is_some() {
                req.model = model.clone();
                return Translated::passed(&req, client_model, model, stream, true);
            }
            let mut chat_req = anthropic_request_to_chat(&req, &provider.opts)?;
            chat_req.model = model;
            let mut t = chat(provider, chat_req, path_model)?;
            t.client_model = client_model;
            t.include_usage = true;
            Ok(t)
        }
        Api::Completions => {
            let mut req: oa::CompletionRequest =
                serde_json::from_slice(body).map_err(|e| bad_json(&e))?;
            let (client_model, model) = swap_model(&mut req.model, provider, path_model)?;
            let stream = req.stream == Some(true);
            let include_usage = force_usage(stream, &mut req.stream_options);
            Translated::passed(&req, client_model, model, stream, include_usage)
        }
        Api::Embeddings => {
            let mut req: oa::EmbeddingRequest =
                serde_json::from_slice(body).map_err(|e| bad_json(&e))?;
            let (client_model, model) = swap_model(&mut req.model, provider, path_model)?;
            Translated::passed(&req, client_model, model, false, false)
        }
        Api::Responses => {
            let mut req: rs::ResponsesRequest =
                serde_json::from_slice(body).map_err(|e| bad_json(&e))?;
            let client_model = req.model.clone();
            let stream = req.stream == Some(true);
            if api.spoken_by(api.wire(provider)).is_some() {
                let model = upstream_model(provider, &client_model, path_model)?;
                req.model = model.clone();
                return Translated::passed(&req, client_model, model, stream, true);
            }
            let chat_req = responses_request_to_chat(&req)?;
            let mut t = chat(provider, chat_req, path_model)?;
            t.client_model = client_model;
            t.include_usage = true;
            Ok(t)
        }
        Api::ModelsList | Api::ModelRetrieve => {
            Err(TranslateError::invalid("", "models are answered locally"))
        }
        other => Err(TranslateError::unsupported(
            "",
            format!("ai-proxy does not serve the {} API", other.name()),
        )),
    }
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
            served_api("", "/v1/chat/completions?x=1", None),
            Some(Api::ChatCompletions)
        );
        assert_eq!(
            served_api("", "/v1/completions", None),
            Some(Api::Completions)
        );
        assert_eq!(
            served_api("", "/openai/v1/embeddings", None),
            Some(Api::Embeddings)
        );
        assert_eq!(served_api("", "/v1/models", None), Some(Api::ModelsList));
        assert_eq!(
            served_api("", "/v1/messages", None),
            Some(Api::AnthropicMessages)
        );
        assert_eq!(served_api("", "/v1/files", None), None);
    }

    #[test]
    fn openai_stream_forces_usage_and_maps_model() {
        let p = provider(r#"{"type":"openai","model_mapping":{"gpt-4":"gpt-4o"}}"#);
        let t = translate(
            Api::ChatCompletions,
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
        let e = translate(
            Api::ChatCompletions,
            &p,
            br#"{"model":"z","messages":[]}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(
            (e.status, e.code.as_deref()),
            (404, Some("model_not_found"))
        );
        let e = translate(Api::ChatCompletions, &p, b"{nope", None).unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn anthropic_client_to_openai_upstream() {
        let p = provider(r#"{"type":"deepseek"}"#);
        let t = translate(
            Api::AnthropicMessages,
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
