//! The plugin type ([`AiAuth`]) and its phase handlers: authentication at request headers, the
//! consumer's model policy at the body.

use crate::{config, credential, model};
use aigw::contract;
use aigw::log::untrusted;
use aigw::prelude::*;
use config::{Config, Consumer};
use std::cell::Cell;

/// Per-VM state: which configuration is the global one, to apply Higress's `global_auth`.
#[derive(Default)]
pub struct Root {
    global_addr: Cell<usize>,
    rule_count: Cell<usize>,
}

/// Per-stream state.
#[derive(Default)]
pub struct AiAuth {
    /// Index of the authenticated consumer whose model policy must be checked on the body.
    check_body_for: Option<usize>,
}

/// What authentication decided at request headers.
enum Verdict {
    Pass(usize),
    Missing,
    Repeated,
    Conflicting,
    Invalid,
    NotAllowed,
}

fn auth_applies(ctx: &Ctx<AiAuth>) -> bool {
    let cfg = ctx.config();
    let is_global = std::ptr::eq(cfg, ctx.root().global_addr.get() as *const Config);
    if !is_global {
        return true;
    }
    match cfg.global_auth {
        Some(v) => v,
        None => ctx.root().rule_count.get() == 0,
    }
}

/// Every place the client put a credential, with the credential found there (`None` when
/// the value is not a usable credential, such as `Authorization: Basic …`). A header or query
/// parameter that appears more than once is listed once per appearance.
fn collect(ctx: &Ctx<AiAuth>, cfg: &Config) -> Vec<(credential::Source, Option<String>)> {
    let mut found = Vec::new();
    if cfg.in_header {
        match ctx.request_headers() {
            Ok(headers) => {
                for (name, value) in &headers {
                    if let Some(key) = cfg.keys.iter().find(|k| k.eq_ignore_ascii_case(name)) {
                        let c = credential::from_header(key, value);
                        found.push((credential::Source::Header(key.clone()), c));
                    }
                }
            }
            Err(e) => aigw::warn!("cannot read request headers: {e}"),
        }
    }
    if cfg.in_query {
        for name in &cfg.keys {
            for c in credential::from_query(ctx.request_path(), name) {
                found.push((credential::Source::Query(name.clone()), Some(c)));
            }
        }
    }
    found
}

fn decide(cfg: &Config, found: &[(credential::Source, Option<String>)]) -> Verdict {
    // One header or parameter sent twice is refused whatever the values: hosts and upstreams
    // disagree on which one counts.
    for (i, (source, _)) in found.iter().enumerate() {
        if found.iter().skip(i + 1).any(|(other, _)| other == source) {
            return Verdict::Repeated;
        }
    }
    let mut values = found.iter().filter_map(|(_, c)| c.as_deref());
    let Some(first) = values.next() else {
        return Verdict::Missing;
    };
    if values.any(|c| c != first) {
        return Verdict::Conflicting;
    }
    let Some(consumer) = credential::find_consumer(&cfg.consumers, first) else {
        return Verdict::Invalid;
    };
    if let Some(allow) = &cfg.allow {
        if !allow.iter().any(|n| n == &consumer.name) {
            return Verdict::NotAllowed;
        }
    }
    match cfg.consumers.iter().position(|c| std::ptr::eq(c, consumer)) {
        Some(index) => Verdict::Pass(index),
        // Cannot happen (the consumer came from this list); refuse rather than guess.
        None => Verdict::Invalid,
    }
}

/// Sends a 401 with a `www-authenticate` challenge in the client's protocol.
fn unauthorized(ctx: &mut Ctx<AiAuth>, message: &str) {
    let realm = ctx.config().realm.replace('"', "");
    let reply = ErrorReply::new(401, message)
        .code("invalid_api_key")
        .header("www-authenticate", format!("Bearer realm=\"{realm}\""));
    if let Err(e) = ctx.send_error(&reply) {
        aigw::warn!("cannot send 401: {e}");
    }
}

fn forbidden(ctx: &mut Ctx<AiAuth>, message: &str, code: &str) {
    let err = ErrorReply::new(403, message).code(code);
    if let Err(e) = ctx.send_error(&err) {
        aigw::warn!("cannot send 403: {e}");
    }
}

fn denied_message(model: &str) -> String {
    format!("this API key may not use model `{}`", untrusted(model))
}

/// A 400 for a request whose model cannot be decided.
fn undecidable(ctx: &mut Ctx<AiAuth>, why: &model::Undecidable) {
    aigw::info!("request refused, model cannot be decided: {why}");
    let err = ErrorReply::bad_request(why.to_string(), Some("model"));
    if let Err(e) = ctx.send_error(&err) {
        aigw::warn!("cannot send 400: {e}");
    }
}

impl AiAuth {
    fn strip_credentials(ctx: &Ctx<Self>, found: &[(credential::Source, Option<String>)]) {
        let mut query_names = Vec::new();
        for (source, _) in found.iter().filter(|(_, c)| c.is_some()) {
            match source {
                credential::Source::Header(name) => {
                    if let Err(e) = ctx.remove_request_header(name) {
                        aigw::warn!("cannot remove credential header {name}: {e}");
                    }
                }
                credential::Source::Query(name) => query_names.push(name.clone()),
            }
        }
        if !query_names.is_empty() {
            let path = credential::strip_query(ctx.request_path(), &query_names);
            if let Err(e) = ctx.set_request_header(":path", &path) {
                aigw::warn!("cannot remove credential from the query: {e}");
            }
        }
    }

    /// Tells later plugins who this is: the consumer's name in the consumer header, the
    /// fingerprint of the key ([`contract::key_id`], never the key) in
    /// [`contract::AUTH_KEY_ID_PROPERTY`] (ai-token-ratelimit's `by: api_key` limits count
    /// by it once the key is removed), and the model policy header.
    fn publish_identity(ctx: &Ctx<Self>, cfg: &Config, consumer: &Consumer, credential: &str) {
        if let Err(e) = ctx.set_request_header(&cfg.consumer_header, &consumer.name) {
            aigw::warn!("cannot set {}: {e}", cfg.consumer_header);
        }
        if let Err(e) = contract::publish_key_id(&contract::key_id(credential)) {
            aigw::warn!("cannot set {}: {e}", contract::AUTH_KEY_ID_PROPERTY);
        }
        if cfg.allowed_models_header.is_empty() {
            return;
        }
        let value = consumer.models.to_header();
        if let Err(e) = ctx.set_request_header(&cfg.allowed_models_header, &value) {
            aigw::warn!("cannot set {}: {e}", cfg.allowed_models_header);
        }
    }
}

impl Plugin for AiAuth {
    const NAME: &'static str = "ai-auth";
    type Config = Config;
    type Root = Root;

    fn on_configure(root: &mut RootCtx<Self>) -> Result<(), ConfigError> {
        let addr = root
            .global_config()
            .map_or(0, |c| c as *const Config as usize);
        let rules = root.rules().map_or(0, |r| r.rule_count());
        root.state().global_addr.set(addr);
        root.state().rule_count.set(rules);
        Ok(())
    }

    fn on_request_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        let cfg = ctx.config_rc();
        // Identity headers are ours alone: drop whatever the client sent.
        for name in [&cfg.consumer_header, &cfg.allowed_models_header] {
            if !name.is_empty() {
                if let Err(e) = ctx.remove_request_header(name) {
                    aigw::warn!("cannot remove client-sent {name}: {e}");
                }
            }
        }
        if !auth_applies(ctx) {
            return Flow::Continue;
        }
        let found = collect(ctx, &cfg);
        let index = match decide(&cfg, &found) {
            Verdict::Pass(i) => i,
            Verdict::Missing => {
                aigw::info!("request without credential refused");
                unauthorized(ctx, "No API key found in the request");
                return Flow::Pause;
            }
            Verdict::Repeated => {
                aigw::info!("request with a repeated credential header or parameter refused");
                unauthorized(
                    ctx,
                    "The request carries a credential header or parameter more than once",
                );
                return Flow::Pause;
            }
            Verdict::Conflicting => {
                aigw::info!("request with conflicting credentials refused");
                unauthorized(ctx, "The request carries more than one different API key");
                return Flow::Pause;
            }
            Verdict::Invalid => {
                aigw::info!("request with an unknown credential refused");
                unauthorized(ctx, "Invalid API key");
                return Flow::Pause;
            }
            Verdict::NotAllowed => {
                aigw::info!("consumer not allowed on this route");
                forbidden(
                    ctx,
                    "This API key is not allowed to access this route",
                    "consumer_not_allowed",
                );
                return Flow::Pause;
            }
        };
        let Some(consumer) = cfg.consumers.get(index) else {
            unauthorized(ctx, "Invalid API key");
            return Flow::Pause;
        };
        aigw::debug!("authenticated consumer {}", consumer.name);
        // Every credential found is this one (different ones were refused above).
        let credential = found
            .iter()
            .find_map(|(_, c)| c.clone())
            .unwrap_or_default();
        Self::strip_credentials(ctx, &found);
        Self::publish_identity(ctx, &cfg, consumer, &credential);
        if consumer.models.restricts() {
            // Models that are known before the body: ai-proxy's header and Gemini-style paths
            // (compared normalised, and forwarded as compared).
            let header_model = ctx.request_header(contract::MODEL_HEADER).ok().flatten();
            let path_model = match model::in_path(ctx.request_path()) {
                Ok((normal, m)) => {
                    if normal != ctx.request_path() {
                        if let Err(e) = ctx.set_request_header(":path", &normal) {
                            aigw::warn!("cannot forward the normalised path: {e}");
                        }
                    }
                    m
                }
                Err(why) => {
                    undecidable(ctx, &why);
                    return Flow::Pause;
                }
            };
            for model in header_model.iter().chain(path_model.iter()) {
                if !consumer.models.permits(model) {
                    aigw::info!(
                        "consumer {} refused model {}",
                        consumer.name,
                        untrusted(model)
                    );
                    forbidden(ctx, &denied_message(model), "model_not_allowed");
                    return Flow::Pause;
                }
            }
            if !end_of_stream && path_model.is_none() {
                self.check_body_for = Some(index);
            }
        }
        Flow::Continue
    }

    fn on_request_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        let Some(index) = self.check_body_for else {
            return Flow::Continue;
        };
        let cfg = ctx.config_rc();
        let body = match ctx.whole_request_body(chunk, cfg.max_body_bytes) {
            Whole::Ready(body) => body,
            other => return other.flow(),
        };
        self.check_body_for = None;
        let Some(consumer) = cfg.consumers.get(index) else {
            return Flow::Continue;
        };
        let model = match model::in_body(&body) {
            Ok(m) => m,
            Err(why) => {
                undecidable(ctx, &why);
                return Flow::Pause;
            }
        };
        if consumer.models.permits(&model) {
            Flow::Continue
        } else {
            aigw::info!(
                "consumer {} refused model {}",
                consumer.name,
                untrusted(&model)
            );
            forbidden(ctx, &denied_message(&model), "model_not_allowed");
            Flow::Pause
        }
    }
}
