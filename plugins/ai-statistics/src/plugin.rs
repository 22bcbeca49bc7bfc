//! The plugin type ([`AiStatistics`]) and its phase handlers: observe the request and the answer,
//! publish the usage record, metrics and the access-log property.

use crate::{config, guarded, request, scan, text};
use aigw::contract::{self, GuardRecord, GuardText, UsageRecord};
use aigw::llm::usage::Usage;
use aigw::llm::Api;
use aigw::metrics;
use aigw::prelude::*;
use config::Config;
use guarded::Guarded;
use scan::Scan;
use text::Bounded;

/// The filter-state property with the access-log record (`wasm.aigw.log` in Envoy).
pub use aigw::contract::LOG_PROPERTY;

/// Metric names.
pub mod names {
    /// Token counter (label `token_type`).
    pub const TOKENS: &str = "gen_ai_client_token_usage";
    /// Request counter (label `status_class`).
    pub const REQUESTS: &str = "gen_ai_client_requests";
    /// Request duration histogram (ms).
    pub const DURATION: &str = "gen_ai_server_request_duration";
    /// Time to first token histogram (ms).
    pub const TTFT: &str = "gen_ai_server_time_to_first_token";
    /// Time per output token histogram (ms).
    pub const TPOT: &str = "gen_ai_server_time_per_output_token";
    /// Cost counter (micro-dollars).
    pub const COST: &str = "gen_ai_client_cost_micro_usd";
}

/// Per-stream state.
#[derive(Default)]
pub struct AiStatistics {
    start_ms: u64,
    first_byte_ms: Option<u64>,
    end_ms: Option<u64>,
    /// The request's API (the answer comes back in its dialect).
    api: Option<Api>,
    consumer: Option<String>,
    model: Option<String>,
    /// Bounded request prefix, while the model (or question) is still wanted.
    request: Vec<u8>,
    request_done: bool,
    question: Option<Bounded>,
    scan: Option<Scan>,
    logged: bool,
}

fn now_ms() -> u64 {
    aigw::host::now_millis().unwrap_or(0)
}

fn status_class(code: Option<i64>) -> String {
    match code {
        Some(c @ 100..=599) => format!("{}xx", c / 100),
        _ => "none".into(),
    }
}

impl AiStatistics {
    fn finish_request_body(&mut self, ctx: &Ctx<Self>, complete: bool) {
        if self.request_done {
            return;
        }
        self.request_done = true;
        let cfg = ctx.config();
        let (model, question) = request::inspect(
            &self.request,
            complete,
            cfg.log_question.then_some(cfg.max_log_bytes),
        );
        if self.model.is_none() {
            self.model = model;
        }
        self.question = question;
        self.request = Vec::new();
    }

    fn record(&mut self, ctx: &mut Ctx<Self>) {
        if self.logged {
            return;
        }
        self.logged = true;
        let cfg = ctx.config_rc();
        if !self.request_done {
            self.finish_request_body(ctx, false);
        }
        let end = self.end_ms.unwrap_or_else(now_ms);
        let mut usage: Option<Usage> = self.scan.as_mut().and_then(|s| s.finish());
        let mut upstream_model = self.scan.as_ref().and_then(|s| s.model.clone());
        if let Some(p) = UsageRecord::read() {
            usage = Some(p.usage());
            if p.model.is_some() {
                upstream_model = p.model;
            }
        }
        let model = self
            .model
            .clone()
            .or(upstream_model)
            .unwrap_or_else(|| "unknown".into());
        // Read at log time first: an auth filter later in the chain (ai-auth) sets or
        // replaces the header after this plugin saw the request headers.
        // A header it removed (no credential) means no consumer, not the client's claim.
        if let Ok(c) = ctx.request_header(&cfg.consumer_header) {
            self.consumer = c.filter(|c| !c.is_empty());
        }
        let consumer = self.consumer.clone().unwrap_or_else(|| "unknown".into());
        let route = ctx
            .property_string(&["route_name"])
            .ok()
            .flatten()
            .unwrap_or_default();
        let cluster = ctx
            .property_string(&["cluster_name"])
            .ok()
            .flatten()
            .unwrap_or_default();
        let code = aigw::host::get_property_i64(&["response", "code"])
            .ok()
            .flatten();
        let base = [
            ("route", route.as_str()),
            ("cluster", cluster.as_str()),
            ("model", model.as_str()),
            ("consumer", consumer.as_str()),
        ];
        let with = |k: &'static str, v: &'static str| {
            let mut l: Vec<(&str, &str)> = base.to_vec();
            l.push((k, v));
            l
        };
        let class = status_class(code);
        let mut labels: Vec<(&str, &str)> = base.to_vec();
        labels.push(("status_class", class.as_str()));
        if let Ok(c) = metrics::counter(names::REQUESTS, &labels) {
            let _ = c.increment(1);
        }
        let u = usage.unwrap_or_default();
        for (kind, n) in [
            ("input", u.input),
            ("output", u.output),
            ("cached_input", u.cached_input),
            ("reasoning", u.reasoning),
        ] {
            if n > 0 {
                if let Ok(c) = metrics::counter(names::TOKENS, &with("token_type", kind)) {
                    let _ = c.increment(n);
                }
            }
        }
        let duration = end.saturating_sub(self.start_ms);
        if let Ok(h) = metrics::histogram(names::DURATION, &base) {
            let _ = h.record(duration);
        }
        let stream = self.scan.as_ref().is_some_and(|s| s.is_stream());
        let ttft = if stream {
            self.first_byte_ms.map(|t| t.saturating_sub(self.start_ms))
        } else {
            None
        };
        if let Some(t) = ttft {
            if let Ok(h) = metrics::histogram(names::TTFT, &base) {
                let _ = h.record(t);
            }
            if let (Some(first), true) = (self.first_byte_ms, u.output >= 2) {
                let per = end.saturating_sub(first) / (u.output - 1);
                if let Ok(h) = metrics::histogram(names::TPOT, &base) {
                    let _ = h.record(per);
                }
            }
        }
        let cost = cfg
            .price_for(&model)
            .map(|p| p.cost_micro_usd(u.input, u.cached_input, u.output));
        if let Some(c) = cost.filter(|c| *c > 0) {
            if let Ok(m) = metrics::counter(names::COST, &base) {
                let _ = m.increment(c);
            }
        }
        if !(cfg.log_property || cfg.log_line) {
            return;
        }
        let mut rec = serde_json::json!({
            "model": model,
            "consumer": self.consumer,
            "route": route,
            "cluster": cluster,
            "status": code,
            "stream": stream,
            "input_tokens": usage.map(|u| u.input),
            "output_tokens": usage.map(|u| u.output),
            "total_tokens": usage.map(|u| u.total),
            "cached_tokens": usage.map(|u| u.cached_input),
            "reasoning_tokens": usage.map(|u| u.reasoning),
            "duration_ms": duration,
            "ttft_ms": ttft,
            "finish_reason": self.scan.as_ref().and_then(|s| s.finish_reason()),
        });
        if let (Some(c), Some(obj)) = (cost, rec.as_object_mut()) {
            obj.insert("cost_micro_usd".into(), c.into());
        }
        if let Some(obj) = rec.as_object_mut() {
            // ai-guard's masked texts win over what this plugin read itself
            // (the client's own data, restored answers).
            let guarded = |on: bool, which: GuardText| {
                if !on {
                    return None;
                }
                let record = GuardRecord::read(which)?;
                Some(guarded::bound(record, cfg.max_log_bytes))
            };
            let own_question = self.question.as_ref().map(|q| (q.as_str(), q.truncated()));
            let question = guarded(cfg.log_question, GuardText::Question);
            insert_text(obj, "question", question, own_question);
            let own_answer = self.scan.as_ref().and_then(|s| s.answer());
            let answer = guarded(cfg.log_answer, GuardText::Answer);
            insert_text(obj, "answer", answer, own_answer);
        }
        let line = rec.to_string();
        if cfg.log_property {
            if let Err(e) = ctx.set_property(&[LOG_PROPERTY], line.as_bytes()) {
                aigw::debug!("cannot set {LOG_PROPERTY}: {e}");
            }
        }
        if cfg.log_line {
            aigw::info!("{line}");
        }
    }
}

/// Puts `name` (and `name_truncated`, or `name_withheld`) in the record:
/// ai-guard's published text when there is one, else this plugin's own.
fn insert_text(
    obj: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    guarded: Option<Guarded>,
    own: Option<(&str, bool)>,
) {
    let (text, cut) = match &guarded {
        Some(Guarded::Withheld(why)) => {
            obj.insert(format!("{name}_withheld"), why.as_str().into());
            return;
        }
        Some(Guarded::Text(b)) => (b.as_str(), b.truncated()),
        None => match own {
            Some(t) => t,
            None => return,
        },
    };
    obj.insert(name.into(), text.into());
    if cut {
        obj.insert(format!("{name}_truncated"), true.into());
    }
}

impl Plugin for AiStatistics {
    const NAME: &'static str = "ai-statistics";
    type Config = Config;
    type Root = ();

    fn on_request_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        self.start_ms = now_ms();
        let header = |name: &str| ctx.request_header(name).ok().flatten();
        let api = Api::classify(
            header(":method").as_deref().unwrap_or(""),
            ctx.request_path(),
            header("content-type").as_deref(),
        );
        self.api = api;
        let cfg = ctx.config_rc();
        self.consumer = ctx
            .request_header(&cfg.consumer_header)
            .ok()
            .flatten()
            .filter(|c| !c.is_empty());
        self.model = ctx
            .request_header(contract::MODEL_HEADER)
            .ok()
            .flatten()
            .filter(|m| !m.is_empty())
            .or_else(|| api.and_then(|a| a.model_in_path(ctx.request_path())));
        if end_of_stream {
            self.request_done = true;
        }
        Flow::Continue
    }

    fn on_request_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        if self.request_done {
            return Flow::Continue;
        }
        let limit = ctx.config().max_request_bytes;
        let room = limit.saturating_sub(self.request.len());
        if room > 0 && chunk.size > 0 {
            let take = room.min(chunk.size);
            match aigw::host::get_buffer(aigw::host::BufferType::RequestBody, 0, take) {
                Ok(bytes) => self.request.extend_from_slice(&bytes),
                Err(e) => aigw::debug!("cannot read request body: {e}"),
            }
        }
        let over = chunk.size > room;
        if chunk.end_of_stream || over {
            self.finish_request_body(ctx, chunk.end_of_stream && !over);
        }
        Flow::Continue
    }

    fn on_response_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        let cfg = ctx.config_rc();
        let stream = ctx
            .response_header("content-type")
            .ok()
            .flatten()
            .is_some_and(|t| t.to_ascii_lowercase().contains("text/event-stream"));
        self.scan = Some(Scan::new(
            self.api,
            stream,
            cfg.max_event_bytes,
            cfg.max_response_bytes,
            cfg.log_answer.then_some(cfg.max_log_bytes),
        ));
        if end_of_stream {
            self.end_ms = Some(now_ms());
        }
        Flow::Continue
    }

    fn on_response_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        if chunk.size > 0 {
            if self.first_byte_ms.is_none() {
                self.first_byte_ms = Some(now_ms());
            }
            match ctx.response_body(chunk) {
                Ok(bytes) => {
                    if let Some(s) = self.scan.as_mut() {
                        s.feed(&bytes);
                    }
                }
                Err(e) => aigw::debug!("cannot read response body: {e}"),
            }
        }
        if chunk.end_of_stream {
            self.end_ms = Some(now_ms());
        }
        Flow::Continue
    }

    fn on_log(&mut self, ctx: &mut Ctx<Self>) {
        self.record(ctx);
    }
}
