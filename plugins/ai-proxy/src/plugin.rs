//! The proxy-wasm phase handlers.
//!
//! * Request headers: classify the API from the path, pick the provider (from the
//!   configuration, or in upstream mode from `upstream.address`), answer `GET /v1/models`,
//!   choose an API key, and rewrite `:path`, `:authority`, authentication and the cluster
//!   header. On stock Envoy request headers cannot change once the body is read, so everything
//!   header-shaped is decided here (see the README: models in Gemini/Bedrock URLs come from
//!   the provider's `model` or the `x-aigw-model` header, and those upstreams — and native
//!   DashScope, whose streaming is chosen by the `X-DashScope-SSE` header — are always called
//!   in streaming mode).
//! * Request body: read whole (up to `max_request_body_bytes`), translate, replace.
//! * Response headers: cool the key down on 401/403/429, translate the status of errors, set
//!   content type and `x-aigw-*` headers, choose whole-body or stream translation.
//! * Response body: translate event by event (streams) or the whole body (answers and
//!   errors), then publish usage as the `aigw.usage` property.

use crate::config::{Config, KeySelection, Mode, ProviderConfig, ReportModel};
use crate::error::TranslateError;
use crate::keys;
use crate::pipeline::{Output, StreamPipeline};
use crate::providers::bedrock::sigv4::{amz_date, sign_bedrock};
use crate::providers::{upstream, upstream_path};
use crate::request::{served_api, translate, ProxyApi};
use crate::response::Exchange;
use aigw::contract::{UsageRecord, MODEL_HEADER, PROVIDER_HEADER, USAGE_PROPERTY};
use aigw::llm::access::ModelPolicy;
use aigw::llm::Api;
use aigw::llm::Usage;
use aigw::prelude::*;
use aigw::shared::HostStore;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Per-VM state: round-robin counters per provider and a counter for random picks.
#[derive(Default)]
pub struct Root {
    round_robin: RefCell<HashMap<String, u64>>,
    draws: Cell<u64>,
}

/// How the response body is handled.
#[derive(Default)]
enum Body {
    /// Nothing to do (no exchange, or passed through).
    #[default]
    Pass,
    /// A whole successful answer to translate.
    Whole,
    /// A provider error to translate (`aws`: Bedrock's error type header).
    Error { status: u16, aws: Option<String> },
    /// A stream.
    Stream(Box<StreamPipeline>),
}

/// One HTTP stream.
#[derive(Default)]
pub struct AiProxy {
    api: Option<Api>,
    provider: Option<usize>,
    key: Option<usize>,
    path_model: Option<String>,
    upstream_stream: bool,
    /// The request headers are held until the body is translated (`hold_headers`).
    hold: bool,
    request_id: String,
    exchange: Option<Exchange>,
    body: Body,
    usage: Option<Usage>,
    published: bool,
}

fn now_ms() -> u64 {
    aigw::host::now_millis().unwrap_or(0)
}

fn reply_error(ctx: &mut Ctx<AiProxy>, e: &TranslateError) -> Flow {
    let mut r = ErrorReply::new(e.status, e.message.clone()).kind(e.kind);
    if let Some(p) = &e.param {
        if !p.is_empty() {
            r = r.param(p.clone());
        }
    }
    if let Some(c) = &e.code {
        r = r.code(c.clone());
    }
    if let Err(err) = ctx.send_error(&r) {
        aigw::warn!("cannot send an error reply: {err}");
    }
    Flow::Pause
}

/// Signs the held request for Bedrock with SigV4: over the wire path, the authority, the
/// content type and the translated body, at the host's current time.
fn sign_sigv4(
    ctx: &mut Ctx<AiProxy>,
    p: &ProviderConfig,
    body: &[u8],
) -> Result<(), TranslateError> {
    let unavailable = |what: &str| TranslateError {
        status: 500,
        kind: "api_error",
        message: format!("cannot sign the Bedrock request: {what}"),
        param: None,
        code: None,
    };
    let creds = p
        .credentials()
        .ok_or_else(|| unavailable("no credentials"))?;
    let path = ctx
        .request_header(":path")
        .ok()
        .flatten()
        .ok_or_else(|| unavailable("no path"))?;
    let region = p.bedrock_region.as_deref().unwrap_or("us-east-1");
    let date = amz_date(now_ms() / 1000);
    let signed = sign_bedrock(creds, p.authority(), region, &path, body, &date);
    for (name, value) in &signed.headers {
        ctx.set_request_header(name, value)
            .map_err(|e| unavailable(&format!("cannot set {name}: {e}")))?;
    }
    Ok(())
}

fn plain_error(ctx: &mut Ctx<AiProxy>, status: u16, message: String) -> Flow {
    let _ = ctx.send_error(&ErrorReply::new(status, message));
    Flow::Pause
}

impl AiProxy {
    fn provider<'a>(&self, cfg: &'a Config) -> Option<&'a ProviderConfig> {
        cfg.providers.get(self.provider?)
    }

    /// Picks the API key index for this request.
    fn choose_key(ctx: &Ctx<Self>, cfg: &Config, p: &ProviderConfig) -> Option<usize> {
        if p.api_keys.is_empty() {
            return None;
        }
        let root = ctx.root();
        let start = match cfg.key_selection {
            KeySelection::RoundRobin => {
                let mut rr = root.round_robin.borrow_mut();
                let c = rr.entry(p.id.clone()).or_insert(0);
                let v = *c;
                *c = c.wrapping_add(1);
                v
            }
            KeySelection::Random => {
                let n = root.draws.get().wrapping_add(1);
                root.draws.set(n);
                let seed =
                    aigw::host::now_nanos().unwrap_or(0) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                keys::scramble(seed | 1)
            }
            KeySelection::Consumer => {
                let consumer = ctx
                    .request_header(&cfg.consumer_header)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                aigw::hash::fnv1a(consumer.as_bytes())
            }
        };
        keys::pick(&HostStore, &p.id, &p.api_keys, start, now_ms())
    }

    /// The providers whose models this route lists.
    fn listed_providers(cfg: &Config) -> Vec<&ProviderConfig> {
        match cfg.mode {
            Mode::Upstream => cfg.providers.iter().collect(),
            Mode::Downstream => cfg.downstream_provider().into_iter().collect(),
        }
    }

    /// The consumer's model policy when ai-auth runs before this plugin.
    fn consumer_policy(ctx: &Ctx<Self>, cfg: &Config) -> Option<ModelPolicy> {
        if cfg.allowed_models_header.is_empty() {
            return None;
        }
        let value = ctx
            .request_header(&cfg.allowed_models_header)
            .ok()
            .flatten()?;
        Some(ModelPolicy::from_header(&value))
    }

    /// Answers `GET /v1/models` (the configured and mapped names this consumer may use) and
    /// `GET /v1/models/{id}` (that entry, or a 404 `model_not_found`).
    fn models_reply(ctx: &mut Ctx<Self>, cfg: &Config, api: Api) -> Flow {
        let listed = Self::listed_providers(cfg);
        let mut ids: Vec<String> = Vec::new();
        for p in &listed {
            for id in p.listed_models() {
                if !ids.iter().any(|x| x == id) {
                    ids.push(id.to_string());
                }
            }
        }
        let policy = Self::consumer_policy(ctx, cfg);
        let permitted = |id: &str| policy.as_ref().is_none_or(|p| p.permits(id));
        ids.retain(|id| permitted(id));
        let created = now_ms() / 1000;
        let entry = |id: &str| serde_json::json!({"id": id, "object": "model", "created": created, "owned_by": "aigw"});
        let body = if api == Api::ModelRetrieve {
            let id = Api::retrieved_model(ctx.request_path()).unwrap_or_default();
            // Listed, or routed by an explicit mapping rule (prefix, regex or `*`).
            let served = ids.contains(&id)
                || (!id.is_empty()
                    && permitted(&id)
                    && listed.iter().any(|p| p.maps_explicitly(&id)));
            if !served {
                let r = ErrorReply::new(
                    404,
                    format!(
                        "The model `{}` does not exist or you do not have access to it.",
                        aigw::log::untrusted(&id)
                    ),
                )
                .code("model_not_found");
                if let Err(e) = ctx.send_error(&r) {
                    aigw::warn!("cannot answer a model lookup: {e}");
                }
                return Flow::Pause;
            }
            entry(&id)
        } else {
            let data: Vec<serde_json::Value> = ids.iter().map(|id| entry(id)).collect();
            serde_json::json!({"object": "list", "data": data})
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        if let Err(e) = ctx.send_response(200, &[("content-type", "application/json")], &body) {
            aigw::warn!("cannot answer {}: {e}", ctx.request_path());
            return Flow::Continue;
        }
        Flow::Pause
    }

    /// Rewrites the request headers for the provider. Errors are answered by the caller.
    fn prepare_headers(
        &mut self,
        ctx: &mut Ctx<Self>,
        cfg: &Config,
        p: &ProviderConfig,
    ) -> Result<(), TranslateError> {
        let api = self.api.unwrap_or(Api::ChatCompletions);
        let wire = p.wire();
        // With held headers the model came from the body already.
        if p.path_needs_model() && self.path_model.is_none() {
            let header = ctx.request_header(MODEL_HEADER).ok().flatten();
            let model = match (&p.model, header) {
                (Some(m), _) => m.clone(),
                (None, Some(h)) => p.map_model(&h).ok_or_else(|| {
                    TranslateError::invalid(MODEL_HEADER, format!("model `{h}` is not served by provider `{}`", p.id))
                })?,
                (None, None) => {
                    return Err(TranslateError::invalid(
                        "model",
                        format!(
                            "provider `{}` puts the model in the URL, which must be known before the body is read: set the provider's `model` or send the `{MODEL_HEADER}` header",
                            p.id
                        ),
                    ))
                }
            };
            self.path_model = Some(model);
        }
        // Gemini and Bedrock choose streaming by URL, DashScope by a header; the body is not
        // read yet, so stream always and assemble the answer for clients that did not ask for
        // a stream.
        self.upstream_stream = upstream(wire).always_streams();
        let path = upstream_path(
            p.provider(),
            api.wire(p),
            api.endpoint(p),
            self.path_model.as_deref().unwrap_or(""),
            self.upstream_stream,
            p.path_options(),
        )
        .map_err(|mut e| {
            e.status = 404;
            e
        })?;
        let set = |name: &str, value: &str| {
            if let Err(e) = ctx.set_request_header(name, value) {
                aigw::warn!("cannot set request header {name}: {e}");
            }
        };
        set(":path", &path);
        set(":authority", p.authority());
        for h in [
            "authorization",
            "x-api-key",
            "api-key",
            "x-goog-api-key",
            "content-length",
            "accept-encoding",
            MODEL_HEADER,
        ] {
            let _ = ctx.remove_request_header(h);
        }
        if !api.is_local() {
            set("content-type", "application/json");
        }
        let dialect = upstream(wire);
        for (name, value) in dialect.request_headers(p.anthropic_version.as_deref()) {
            set(name, &value);
        }
        if let Some(i) = self.key {
            let key = p.api_keys.get(i).map(String::as_str).unwrap_or("");
            let spec = p.provider().spec();
            for (name, value) in dialect.auth_headers(spec, key, p.anthropic_version.as_deref()) {
                set(name, &value);
            }
        }
        if let Some(cluster) = &p.cluster {
            set(&cfg.cluster_header, cluster);
            if let Err(e) = aigw::host::call_foreign_function("clear_route_cache", &[]) {
                aigw::debug!("clear_route_cache unavailable: {e}");
            }
        }
        Ok(())
    }

    fn publish_usage(&mut self, ctx: &Ctx<Self>) {
        if self.published {
            return;
        }
        self.published = true;
        let cfg = ctx.config();
        if !cfg.usage_property {
            return;
        }
        let (Some(p), Some(ex)) = (self.provider(cfg), &self.exchange) else {
            return;
        };
        let u = self.usage.unwrap_or_default();
        let record = UsageRecord {
            model: Some(ex.upstream_model.clone()),
            provider: Some(p.id.clone()),
            ..UsageRecord::from_usage(&u)
        };
        if let Err(e) = record.publish() {
            aigw::debug!("cannot set {USAGE_PROPERTY}: {e}");
        }
    }
}

impl Plugin for AiProxy {
    const NAME: &'static str = "ai-proxy";
    type Config = Config;
    type Root = Root;

    fn on_request_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        let cfg = ctx.config_rc();
        let method = ctx
            .request_header(":method")
            .ok()
            .flatten()
            .unwrap_or_default();
        // The content type is not checked here: a body that is not JSON gets a 400 that says
        // so, which helps a client more than a 404.
        let Some(api) = served_api(&method, ctx.request_path(), None) else {
            let path = ctx
                .request_path()
                .split('?')
                .next()
                .unwrap_or("")
                .to_string();
            let mut r = ErrorReply::new(404, format!("ai-proxy does not serve `{path}`"));
            r = r.code("unknown_url");
            let _ = ctx.send_error(&r);
            return Flow::Pause;
        };
        if api.is_anthropic() {
            ctx.set_protocol(Protocol::Anthropic);
        }
        self.api = Some(api);
        let provider = match cfg.mode {
            Mode::Downstream => cfg.downstream_provider(),
            Mode::Upstream => {
                let address = ctx
                    .property_string(&["upstream", "address"])
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let found = cfg.provider_for_address(&address);
                if found.is_none() {
                    return plain_error(
                        ctx,
                        502,
                        format!("no provider is configured for upstream address `{address}`"),
                    );
                }
                found
            }
        };
        let Some(p) = provider else {
            return plain_error(ctx, 500, "no provider configured".into());
        };
        self.provider = cfg.providers.iter().position(|q| std::ptr::eq(q, p));
        if api.is_local() {
            return Self::models_reply(ctx, &cfg, api);
        }
        if end_of_stream {
            return reply_error(
                ctx,
                &TranslateError::invalid("", "a request body is required"),
            );
        }
        self.request_id = ctx
            .request_header("x-request-id")
            .ok()
            .flatten()
            .unwrap_or_default();
        if !p.signs_sigv4(cfg.hold_headers) {
            self.key = Self::choose_key(ctx, &cfg, p);
        }
        aigw::debug!("{} request to provider {}", ctx.request_path(), p.id);
        if cfg.hold_headers {
            // The headers are set from the body callback (the host holds them until then).
            self.hold = true;
            return Flow::Pause;
        }
        if let Err(e) = self.prepare_headers(ctx, &cfg, p) {
            return reply_error(ctx, &e);
        }
        Flow::Continue
    }

    fn on_request_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        let (Some(api), Some(_)) = (self.api, self.provider) else {
            return Flow::Continue;
        };
        let cfg = ctx.config_rc();
        let body = match ctx.whole_request_body(chunk, cfg.max_request_body_bytes) {
            Whole::Ready(b) => b,
            other => return other.flow(),
        };
        let Some(p) = self.provider(&cfg) else {
            return Flow::Continue;
        };
        let t = match translate(api, p, &body, self.path_model.as_deref()) {
            Ok(t) => t,
            Err(e) => return reply_error(ctx, &e),
        };
        if self.hold {
            if p.path_needs_model() {
                self.path_model = Some(t.upstream_model.clone());
            }
            if let Err(e) = self.prepare_headers(ctx, &cfg, p) {
                return reply_error(ctx, &e);
            }
            if p.signs_sigv4(true) {
                if let Err(e) = sign_sigv4(ctx, p, &t.body) {
                    return reply_error(ctx, &e);
                }
            }
        }
        if let Err(e) = ctx.replace_request_body(&t.body) {
            aigw::warn!("cannot replace the request body: {e}");
            return plain_error(ctx, 500, "cannot rewrite the request body".into());
        }
        let report_model = match cfg.report_model {
            ReportModel::Request if !t.client_model.is_empty() => Some(t.client_model.clone()),
            _ => None,
        };
        let suffix: String = self
            .request_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(24)
            .collect();
        let suffix = if suffix.is_empty() {
            format!("{:x}", aigw::host::now_nanos().unwrap_or(0))
        } else {
            suffix
        };
        let prefix = match api {
            Api::AnthropicMessages => "msg_",
            Api::Responses => "resp_",
            _ => "chatcmpl-",
        };
        self.exchange = Some(Exchange {
            api,
            wire: api.wire(p),
            client_stream: t.stream,
            upstream_stream: self.upstream_stream || t.stream,
            include_usage: t.include_usage,
            report_model,
            upstream_model: t.upstream_model,
            id: format!("{prefix}{suffix}"),
            created: now_ms() / 1000,
        });
        Flow::Continue
    }

    fn on_response_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        let Some(ex) = &self.exchange else {
            return Flow::Continue;
        };
        let cfg = ctx.config_rc();
        let status: u16 = ctx
            .response_header(":status")
            .ok()
            .flatten()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(200);
        if let (Some(p), Some(i)) = (self.provider(&cfg), self.key) {
            if cfg.cooldown_statuses.contains(&status) && cfg.key_cooldown_secs > 0 {
                if let Some(key) = p.api_keys.get(i) {
                    let until = now_ms().saturating_add(cfg.key_cooldown_secs.saturating_mul(1000));
                    keys::cool_down(&HostStore, &p.id, key, until);
                    aigw::info!(
                        "provider {} key #{i} cooling down for {}s after status {status}",
                        p.id,
                        cfg.key_cooldown_secs
                    );
                }
            }
        }
        let content_type = ctx
            .response_header("content-type")
            .ok()
            .flatten()
            .unwrap_or_default();
        let _ = ctx.remove_response_header("content-length");
        if cfg.response_headers {
            if let Some(p) = self.provider(&cfg) {
                let _ = ctx.set_response_header(PROVIDER_HEADER, &p.id);
            }
            let _ = ctx.set_response_header(MODEL_HEADER, &ex.upstream_model);
        }
        if status >= 400 {
            let aws = ctx.response_header("x-amzn-errortype").ok().flatten();
            let client_status = ex.error_status(status, aws.as_deref());
            let _ = ctx.set_response_header(":status", &client_status.to_string());
            let _ = ctx.set_response_header("content-type", "application/json");
            self.body = if end_of_stream {
                Body::Pass
            } else {
                Body::Error { status, aws }
            };
            return Flow::Continue;
        }
        let streamed = content_type.starts_with("text/event-stream")
            || content_type.contains("amazon.eventstream");
        if ex.upstream_stream && (streamed || !content_type.starts_with("application/json")) {
            let pipeline = StreamPipeline::new(ex.clone(), cfg.max_event_bytes);
            let ct = if pipeline.client_stream() {
                "text/event-stream"
            } else {
                "application/json"
            };
            let _ = ctx.set_response_header("content-type", ct);
            self.body = Body::Stream(Box::new(pipeline));
        } else {
            let _ = ctx.set_response_header("content-type", "application/json");
            self.body = Body::Whole;
        }
        if end_of_stream {
            self.body = Body::Pass;
        }
        Flow::Continue
    }

    fn on_response_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        match &mut self.body {
            Body::Pass => Flow::Continue,
            Body::Stream(pipeline) => {
                let data = match ctx.response_body(chunk) {
                    Ok(d) => d,
                    Err(e) => {
                        aigw::warn!("cannot read the response body: {e}");
                        return Flow::Continue;
                    }
                };
                // A chunk in which nothing changes is left in place (no copy back to the host).
                let mut out = Vec::new();
                let output = pipeline.push_chunk(&data, chunk.end_of_stream, &mut out);
                if output == Output::Replaced && out != data {
                    if let Err(e) = ctx.replace_response_body(&out) {
                        aigw::warn!("cannot replace the response body: {e}");
                    }
                }
                if chunk.end_of_stream {
                    self.usage = pipeline.usage();
                    self.publish_usage(ctx);
                }
                Flow::Continue
            }
            Body::Whole | Body::Error { .. } => {
                let cfg = ctx.config_rc();
                let body = match ctx.whole_response_body(chunk, cfg.max_response_body_bytes) {
                    Whole::Ready(b) => b,
                    Whole::TooLarge { .. } => {
                        aigw::warn!("response body larger than max_response_body_bytes: passed through untranslated");
                        self.body = Body::Pass;
                        return Flow::Continue;
                    }
                    other => return other.flow(),
                };
                let Some(ex) = &self.exchange else {
                    return Flow::Continue;
                };
                let out = match &self.body {
                    Body::Error { status, aws } => {
                        let out = ex.translate_error(*status, &body, aws.as_deref()).1;
                        match self.provider(&cfg) {
                            Some(p) => p.redact_secrets(out),
                            None => out,
                        }
                    }
                    _ => match ex.translate_whole(&body) {
                        Ok((out, usage)) => {
                            self.usage = usage;
                            out
                        }
                        Err(e) => {
                            aigw::warn!("cannot translate the upstream answer: {e}");
                            ex.error_body(502, e.kind, &e.message, e.code.as_deref())
                        }
                    },
                };
                if let Err(e) = ctx.replace_response_body(&out) {
                    aigw::warn!("cannot replace the response body: {e}");
                }
                self.body = Body::Pass;
                self.publish_usage(ctx);
                Flow::Continue
            }
        }
    }

    fn on_log(&mut self, ctx: &mut Ctx<Self>) {
        if self.exchange.is_some() {
            self.publish_usage(ctx);
        }
    }
}
