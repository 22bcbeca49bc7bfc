//! OpenAI chat completions and every provider that speaks it (Azure's deployment URLs
//! included): requests pass with the model mapped and stream usage forced on, answers and
//! streams pass as they are.

use super::{
    bad_answer, to_body, Answer, AnswerContext, Body, Endpoint, PathArgs, Protocol, Upstream,
};
use crate::options::TranslateOptions;
use crate::providers::Provider;
use aigw::llm::openai as oa;
use aigw::llm::stream::{Decoder, OpenAiDecoder};
use aigw::llm::{Extra, Usage};

/// The OpenAI chat-completions dialect.
pub struct OpenAi;

/// The OpenAI-style path: `{base}/{endpoint}`, or Azure's deployment and `api-version` forms.
/// `responses` sends chat-shaped endpoints to `/responses`.
pub fn path(p: &PathArgs<'_>, responses: bool) -> String {
    let PathArgs {
        spec,
        base,
        endpoint,
        model,
        opts,
        ..
    } = *p;
    let tail = match endpoint {
        Endpoint::Chat | Endpoint::Messages if responses => "responses",
        Endpoint::Chat | Endpoint::Messages => "chat/completions",
        Endpoint::Completions => "completions",
        Endpoint::Embeddings => "embeddings",
        Endpoint::Models => "models",
        Endpoint::Responses => "responses",
    };
    if spec.provider != Provider::Azure {
        return format!("{base}/{tail}");
    }
    match (&opts.azure_api_version, endpoint) {
        (None, _) => format!("{base}/v1/{tail}"),
        (Some(v), Endpoint::Models) => format!("{base}/models?api-version={v}"),
        (Some(v), Endpoint::Responses) => format!("{base}/responses?api-version={v}"),
        (Some(v), _) if tail == "responses" => format!("{base}/responses?api-version={v}"),
        (Some(v), _) => {
            let dep = opts.azure_deployment.as_deref().unwrap_or(model);
            format!("{base}/deployments/{dep}/{tail}?api-version={v}")
        }
    }
}

/// Sets `stream_options.include_usage = true` on a stream, so the gateway always learns the
/// usage (the chunk is removed again for clients that did not ask for it), and returns what
/// the client asked. Chat and legacy completions share it.
pub fn force_usage(stream: bool, options: &mut Option<oa::StreamOptions>) -> bool {
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

impl Upstream for OpenAi {
    fn protocol(&self) -> Protocol {
        Protocol::ChatCompletions
    }

    fn chat_request(&self, req: &mut oa::ChatCompletionRequest, opts: &TranslateOptions) -> Body {
        force_usage(req.stream == Some(true), &mut req.stream_options);
        if opts.use_max_completion_tokens && req.max_completion_tokens.is_none() {
            req.max_completion_tokens = req.max_tokens.take();
        }
        to_body(req)
    }

    fn chat_response(&self, body: &[u8], _cx: AnswerContext<'_>) -> Answer {
        let chat: oa::ChatCompletion = serde_json::from_slice(body).map_err(bad_answer)?;
        let usage = chat.usage.as_ref().map(Usage::from_openai);
        Ok((chat, usage))
    }

    fn stream_decoder(&self) -> Box<dyn Decoder> {
        Box::new(OpenAiDecoder::new())
    }
}
