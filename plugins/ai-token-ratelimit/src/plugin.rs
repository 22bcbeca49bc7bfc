//! The plugin: admission before the upstream is called, usage tracking while the response
//! passes, settling when the stream ends.
//!
//! * Request headers: the key values (consumer, API key, headers, parameters, cookies, client
//!   IP, route) are read while the headers are readable. When admission needs the body (a
//!   token estimate or a model key) the decision waits for its end; otherwise it is made now.
//! * Decision: every limit that applies reserves its amount (1 request, or the token
//!   estimate) in every window; if any window has no room the reservations already made are
//!   released and the request gets 429 in the client's protocol.
//! * Response: `x-ratelimit-*` headers are added; the body passes unchanged while usage is
//!   read from it.
//! * `on_log` (or `on_done` when a host skips it): each reservation is settled against the
//!   real cost, exactly once, whatever way the stream ended.
//!
//! Cluster mode (Redis) is in [`cluster_mode`]; rls mode (an Envoy rate limit service) is in
//! [`rls`].

mod cluster_mode;
use cluster_mode::cluster_init;
mod rls;

use crate::cluster::Counter;
use crate::config::{Config, FailureMode, Limit, Source};
use crate::estimate::{self, Estimate};
use crate::identity::{self, Applied};
use crate::usage::{self, Outcome, Tracker};
use aigw::contract::{self, UsageRecord};
use aigw::host;
use aigw::llm::Api;
use aigw::metrics;
use aigw::prelude::*;
use aigw::shared::{HostStore, SlotTable, WindowState};
use std::cell::RefCell;
#[cfg(feature = "higress")]
use std::rc::Rc;

/// The plugin's per-stream state.
#[derive(Default)]
pub struct TokenRateLimit {
    /// The API the request speaks (from method, path and content type).
    api: Option<Api>,
    /// Key values captured at request headers (the model comes from the body).
    values: Vec<(Source, Option<String>)>,
    decided: bool,
    /// Size of the paused request body so far.
    body_seen: usize,
    estimate: Estimate,
    reserved: Vec<Reservation>,
    /// Cluster mode: reservations waiting for the Redis reply.
    #[cfg_attr(not(feature = "higress"), allow(dead_code))]
    pending: Vec<Reservation>,
    /// RLS mode: the admission waiting for the service.
    rls: Option<Box<rls::Pending>>,
    /// `x-ratelimit-*` headers for the response.
    headers: Vec<(String, String)>,
    status: Option<u16>,
    complete: bool,
    cache_hit: bool,
    tracker: Option<Tracker>,
    settled: bool,
}

/// One limit's reservation.
#[derive(Debug, Clone)]
struct Reservation {
    applied: Applied,
    amount: u64,
    /// Local mode: the start of each window the amount was counted in.
    starts: Vec<u64>,
    /// Cluster mode: the Redis counters the amount was counted in.
    #[cfg_attr(not(feature = "higress"), allow(dead_code))]
    counters: Vec<Counter>,
}

/// The tightest window of a kind (tokens or requests) among the admitted limits.
#[derive(Debug, Clone, Copy)]
struct Tightest {
    limit: u64,
    remaining: u64,
    reset_ms: u64,
}

impl Tightest {
    fn offer(slot: &mut Option<Tightest>, limit: u64, remaining: u64, reset_ms: u64) {
        let better = slot.is_none_or(|t| remaining < t.remaining);
        if better {
            *slot = Some(Tightest {
                limit,
                remaining,
                reset_ms,
            });
        }
    }
}

fn secs_ceil(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

/// The shared-data counter table of a local limit.
fn slot_table(limit: &Limit) -> SlotTable<'_> {
    SlotTable::new("atr", &limit.name, limit.slots, &limit.windows)
}

fn limit_of<'c>(cfg: &'c Config, a: &Applied) -> Option<&'c Limit> {
    cfg.groups.get(a.group)?.limits.get(a.limit)
}

fn window_name(secs: u64) -> &'static str {
    match secs {
        1 => "second",
        60 => "minute",
        3600 => "hour",
        _ => "day",
    }
}

thread_local! {
    /// Limits already warned about in this VM for having no API key to count by.
    static WARNED_NO_KEY: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// A `by: api_key` limit met a request with neither a key nor an authenticated key id: the
/// limit cannot apply. Counted every time (`ai_token_ratelimit_no_api_key_total{limit}`),
/// logged once per limit and VM.
fn no_api_key(limit: &str) {
    count_metric(
        "ai_token_ratelimit_no_api_key_total",
        &[("limit", limit)],
        1,
    );
    let first = WARNED_NO_KEY.with(|w| {
        let mut w = w.borrow_mut();
        let first = !w.iter().any(|n| n == limit);
        if first {
            w.push(limit.to_string());
        }
        first
    });
    if first {
        aigw::warn!(
            "limit `{limit}` (by: api_key) does not apply: the request has no API key and no authenticated key id ({}); put ai-auth before this plugin, or the key header must reach it (counted in ai_token_ratelimit_no_api_key_total; logged once)",
            contract::AUTH_KEY_ID_PROPERTY
        );
    }
}

fn count_metric(name: &str, labels: &[(&str, &str)], by: u64) {
    if let Ok(c) = metrics::counter(name, labels) {
        let _ = c.increment(by);
    }
}

impl TokenRateLimit {
    /// Reads every key value the configured limits need (except the model).
    fn capture_values(&mut self, ctx: &Ctx<Self>, cfg: &Config) {
        let header = |name: &str| {
            ctx.request_header(name)
                .ok()
                .flatten()
                .filter(|v| !v.is_empty())
        };
        for limit in cfg.groups.iter().flat_map(|g| &g.limits) {
            for dim in &limit.dims {
                if dim.source == Source::Model || self.values.iter().any(|(s, _)| *s == dim.source)
                {
                    continue;
                }
                let value = match &dim.source {
                    Source::Consumer => header(&cfg.consumer_header),
                    Source::ApiKey => identity::api_key_id(header, contract::read_key_id),
                    Source::Header(name) => header(name),
                    Source::Param(name) => identity::query_param(ctx.request_path(), name),
                    Source::Cookie(name) => {
                        header("cookie").and_then(|c| identity::cookie(&c, name))
                    }
                    Source::ClientIp => {
                        let peer = ctx
                            .property_string(&["source", "address"])
                            .ok()
                            .flatten()
                            .unwrap_or_default();
                        let xff = header("x-forwarded-for");
                        let ip = identity::client_ip(
                            xff.as_deref(),
                            &peer,
                            cfg.client_ip.xff_trusted_hops,
                        );
                        Some(ip)
                    }
                    Source::IpHeader(name) => header(name).and_then(|v| identity::leftmost_ip(&v)),
                    Source::Route => ctx.property_string(&["route_name"]).ok().flatten(),
                    Source::Model => None,
                };
                let value = value.filter(|v| !v.is_empty());
                self.values.push((dim.source.clone(), value));
            }
        }
        let no_key = self
            .values
            .iter()
            .any(|(s, v)| *s == Source::ApiKey && v.is_none());
        if no_key {
            for limit in cfg.groups.iter().flat_map(|g| &g.limits) {
                if limit.dims.iter().any(|d| d.source == Source::ApiKey) {
                    no_api_key(&limit.name);
                }
            }
        }
    }

    /// The value of a key part for this request (`None` when it has none).
    fn value_of(&self, source: &Source) -> Option<&str> {
        match source {
            Source::Model => self.estimate.model.as_deref(),
            other => self
                .values
                .iter()
                .find(|(k, _)| k == other)
                .and_then(|(_, v)| v.as_deref()),
        }
    }

    fn applied(&self, cfg: &Config) -> Vec<Applied> {
        identity::select(&cfg.groups, |s| self.value_of(s))
    }

    /// What a limit reserves at admission.
    fn amount(&self, cfg: &Config, limit: &Limit) -> u64 {
        if limit.is_requests() {
            1
        } else if cfg.admission.estimate {
            self.estimate.amount(limit.count)
        } else {
            0
        }
    }

    /// Decides the request. Returns the flow for the current callback.
    fn decide(&mut self, ctx: &mut Ctx<Self>) -> Flow {
        self.decided = true;
        let cfg = ctx.config_rc();
        if self.estimate.model.is_none() {
            self.estimate.model = identity::model_from_path(self.api, ctx.request_path());
        }
        let applied = self.applied(&cfg);
        if applied.is_empty() {
            return Flow::Continue;
        }
        let now = host::now_millis().unwrap_or(0);
        if cfg.cluster {
            return self.admit_cluster(ctx, &cfg, applied, now);
        }
        if cfg.rls.is_some() {
            return self.admit_rls(ctx, &cfg, applied);
        }
        self.admit_local(ctx, &cfg, applied, now)
    }

    fn admit_local(
        &mut self,
        ctx: &mut Ctx<Self>,
        cfg: &Config,
        applied: Vec<Applied>,
        now: u64,
    ) -> Flow {
        let store = HostStore;
        let mut reserved: Vec<Reservation> = Vec::with_capacity(applied.len());
        let (mut tokens, mut requests) = (None, None);
        for a in applied {
            let Some(limit) = limit_of(cfg, &a) else {
                continue;
            };
            let amount = self.amount(cfg, limit);
            let table = slot_table(limit);
            match table.acquire(&store, a.id, now, amount) {
                Ok(check) if check.allowed => {
                    let slot = if limit.is_requests() {
                        &mut requests
                    } else {
                        &mut tokens
                    };
                    for w in &check.windows {
                        Tightest::offer(slot, w.limit, w.remaining(), w.reset_ms);
                    }
                    reserved.push(Reservation {
                        applied: a,
                        amount,
                        starts: check.windows.iter().map(|w| w.start_ms).collect(),
                        counters: Vec::new(),
                    });
                }
                Ok(check) => {
                    release_local(cfg, &reserved, now);
                    return self.reject(ctx, cfg, limit, &check.windows, amount);
                }
                Err(e) => {
                    count_metric(
                        "ai_token_ratelimit_store_errors_total",
                        &[("store", "local"), ("op", "admit")],
                        1,
                    );
                    aigw::warn!("limit {:?}: counter update failed: {e}", limit.name);
                    if cfg.failure_mode == FailureMode::Closed {
                        release_local(cfg, &reserved, now);
                        return self.fail_closed(ctx);
                    }
                    count_metric(
                        "ai_token_ratelimit_requests_total",
                        &[("result", "failed_open")],
                        1,
                    );
                }
            }
        }
        self.admitted(cfg, reserved, tokens, requests);
        Flow::Continue
    }

    /// Records an admission and the response headers it implies.
    fn admitted(
        &mut self,
        cfg: &Config,
        reserved: Vec<Reservation>,
        tokens: Option<Tightest>,
        requests: Option<Tightest>,
    ) {
        count_metric(
            "ai_token_ratelimit_requests_total",
            &[("result", "allowed")],
            1,
        );
        self.reserved = reserved;
        if !cfg.response_headers {
            return;
        }
        for (unit, t) in [("tokens", tokens), ("requests", requests)] {
            if let Some(t) = t {
                self.headers
                    .push((format!("x-ratelimit-limit-{unit}"), t.limit.to_string()));
                self.headers.push((
                    format!("x-ratelimit-remaining-{unit}"),
                    t.remaining.to_string(),
                ));
                self.headers.push((
                    format!("x-ratelimit-reset-{unit}"),
                    format!("{}s", secs_ceil(t.reset_ms)),
                ));
            }
        }
    }

    /// Answers a limited request: 429 (or `rejected_code`) in the client's protocol with the
    /// state of the window that refused it (the one that resets last when several did).
    fn reject(
        &mut self,
        ctx: &mut Ctx<Self>,
        cfg: &Config,
        limit: &Limit,
        windows: &[WindowState],
        amount: u64,
    ) -> Flow {
        count_metric(
            "ai_token_ratelimit_requests_total",
            &[("result", "limited")],
            1,
        );
        count_metric(
            "ai_token_ratelimit_limited_total",
            &[("limit", &limit.name)],
            1,
        );
        let refused = windows
            .iter()
            .zip(&limit.windows)
            .filter(|(s, _)| !s.fits)
            .max_by_key(|(s, _)| s.reset_ms);
        let Some((state, window)) = refused else {
            // Cannot happen: a refusal has a refusing window. Admit rather than guess.
            return Flow::Continue;
        };
        let reset = secs_ceil(state.reset_ms);
        let unit = if limit.is_requests() {
            "requests"
        } else {
            "tokens"
        };
        let message = match &cfg.rejected_msg {
            Some(m) => m.clone(),
            None if amount > state.limit => format!(
                "request too large for limit {:?}: it needs about {amount} {unit}, the limit is {} per {}",
                limit.name,
                state.limit,
                window_name(window.secs)
            ),
            None => format!(
                "rate limit reached for limit {:?}: {} of {} {unit} per {} used; retry in {reset}s",
                limit.name,
                state.used,
                state.limit,
                window_name(window.secs)
            ),
        };
        let rl = if limit.is_requests() {
            RateLimit::requests(state.limit, state.remaining(), reset)
        } else {
            RateLimit::tokens(state.limit, state.remaining(), reset)
        };
        let reply = ErrorReply::new(cfg.rejected_code, message).rate_limit(rl);
        if let Err(e) = ctx.send_error(&reply) {
            aigw::warn!("cannot send the rate-limit reply: {e}");
            return Flow::Continue;
        }
        Flow::Pause
    }

    /// Failure mode closed: 503, retry after a second.
    fn fail_closed(&mut self, ctx: &mut Ctx<Self>) -> Flow {
        count_metric(
            "ai_token_ratelimit_requests_total",
            &[("result", "failed_closed")],
            1,
        );
        let reply = ErrorReply::new(503, "rate limit state is unavailable").retry_after(1);
        if ctx.send_error(&reply).is_err() {
            return Flow::Continue;
        }
        Flow::Pause
    }

    /// Settles every reservation against the real cost, once.
    fn settle(&mut self, ctx: &mut Ctx<Self>) {
        if self.settled {
            return;
        }
        self.settled = true;
        if self.reserved.is_empty() {
            return;
        }
        let cfg = ctx.config_rc();
        let published = UsageRecord::read().map(|r| r.usage());
        let (tracked, events) = match self.tracker.as_mut() {
            Some(t) => {
                t.finish();
                (t.usage(), t.events())
            }
            None => (None, 0),
        };
        let outcome = Outcome {
            status: self.status,
            complete: self.complete,
            cache_hit: self.cache_hit,
            usage: published.or(tracked),
            events,
        };
        let now = host::now_millis().unwrap_or(0);
        let mut charges = Vec::with_capacity(self.reserved.len());
        for r in &self.reserved {
            let Some(limit) = limit_of(&cfg, &r.applied) else {
                continue;
            };
            let actual = usage::charge(limit.count, limit.cached_weight, &self.estimate, &outcome);
            if !limit.is_requests() {
                count_metric(
                    "ai_token_ratelimit_tokens_total",
                    &[("limit", &limit.name)],
                    actual,
                );
            }
            charges.push((r.clone(), actual));
        }
        if cfg.cluster {
            self.settle_cluster(ctx, &cfg, &charges, now);
            return;
        }
        if cfg.rls.is_some() {
            self.settle_rls(ctx, &cfg, &charges);
            return;
        }
        let store = HostStore;
        for (r, actual) in &charges {
            let Some(limit) = limit_of(&cfg, &r.applied) else {
                continue;
            };
            let table = slot_table(limit);
            if let Err(e) = table.settle(&store, r.applied.id, now, &r.starts, r.amount, *actual) {
                count_metric(
                    "ai_token_ratelimit_store_errors_total",
                    &[("store", "local"), ("op", "settle")],
                    1,
                );
                aigw::warn!("limit {:?}: settling the usage failed: {e}", limit.name);
            }
        }
    }
}

/// Releases reservations made before a later limit refused the request.
fn release_local(cfg: &Config, reserved: &[Reservation], now: u64) {
    let store = HostStore;
    for r in reserved {
        let Some(limit) = limit_of(cfg, &r.applied) else {
            continue;
        };
        let table = slot_table(limit);
        if let Err(e) = table.settle(&store, r.applied.id, now, &r.starts, r.amount, 0) {
            aigw::warn!(
                "limit {:?}: releasing a reservation failed: {e}",
                limit.name
            );
        }
    }
}

impl Plugin for TokenRateLimit {
    const NAME: &'static str = "ai-token-ratelimit";
    type Config = Config;
    type Root = ();

    fn on_configure(root: &mut RootCtx<Self>) -> Result<(), ConfigError> {
        for cfg in root.configs() {
            if cfg.redis_ignored {
                aigw::warn!(
                    "a redis section is configured but this module was built without the \
                     `higress` feature: counters stay local to this gateway"
                );
            }
            if cfg.cluster {
                cluster_init(cfg)?;
                continue;
            }
            if cfg.rls.is_some() {
                // The service keeps the counters: nothing to create here.
                continue;
            }
            for limit in cfg.groups.iter().flat_map(|g| &g.limits) {
                let table = slot_table(limit);
                if let Err(e) = table.create_slots(&HostStore) {
                    aigw::warn!("limit {:?}: cannot create counter slots: {e}", limit.name);
                }
            }
        }
        Ok(())
    }

    fn on_request_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        let cfg = ctx.config_rc();
        let header = |name: &str| ctx.request_header(name).ok().flatten();
        self.api = Api::classify(
            header(":method").as_deref().unwrap_or(""),
            ctx.request_path(),
            header("content-type").as_deref(),
        );
        self.capture_values(ctx, &cfg);
        if cfg.needs_body && !end_of_stream {
            return Flow::Continue;
        }
        self.decide(ctx)
    }

    fn on_request_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        if self.decided {
            return Flow::Continue;
        }
        self.body_seen = chunk.size;
        if !chunk.end_of_stream {
            return Flow::Pause;
        }
        let cfg = ctx.config_rc();
        let body = if chunk.size <= cfg.admission.max_body_bytes {
            ctx.request_body(chunk).ok()
        } else {
            None
        };
        if let Some(b) = body.as_deref() {
            // A repeated key (`"n":1,"n":128`, two models) is read one way here and maybe
            // another way upstream: no estimate or per-model limit can be decided on it.
            if let Some(p) = aigw::json::ambiguity(b) {
                self.decided = true;
                aigw::info!("request refused: {p}");
                let err = ErrorReply::bad_request(p.to_string(), None).code("invalid_json");
                if let Err(e) = ctx.send_error(&err) {
                    aigw::warn!("cannot send 400: {e}");
                }
                return Flow::Pause;
            }
        }
        self.estimate = estimate::estimate(body.as_deref(), chunk.size, &cfg.admission);
        drop(body);
        self.decide(ctx)
    }

    fn on_request_trailers(&mut self, ctx: &mut Ctx<Self>) -> Flow {
        if self.decided {
            return Flow::Continue;
        }
        let cfg = ctx.config_rc();
        self.estimate = estimate::estimate(None, self.body_seen, &cfg.admission);
        self.decide(ctx)
    }

    fn on_response_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        self.status = ctx
            .response_header(":status")
            .ok()
            .flatten()
            .and_then(|s| s.trim().parse().ok());
        self.complete = end_of_stream;
        if self.reserved.is_empty() {
            return Flow::Continue;
        }
        let cfg = ctx.config_rc();
        self.cache_hit = ctx
            .response_header(contract::CACHE_STATUS_HEADER)
            .ok()
            .flatten()
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("hit"));
        let sse = ctx
            .response_header("content-type")
            .ok()
            .flatten()
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/event-stream")
            });
        if !self.cache_hit {
            self.tracker = Some(Tracker::new(self.api, sse, &cfg.response));
        }
        for (k, v) in &self.headers {
            if let Err(e) = ctx.set_response_header(k, v) {
                aigw::debug!("cannot set {k}: {e}");
            }
        }
        Flow::Continue
    }

    fn on_response_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        if let Some(t) = self.tracker.as_mut() {
            if chunk.size > 0 {
                match ctx.response_body(chunk) {
                    Ok(data) => t.feed(&data),
                    Err(e) => aigw::debug!("cannot read the response body: {e}"),
                }
            }
            if chunk.end_of_stream {
                t.finish();
            }
        }
        if chunk.end_of_stream {
            self.complete = true;
        }
        Flow::Continue
    }

    fn on_response_trailers(&mut self, _ctx: &mut Ctx<Self>) -> Flow {
        self.complete = true;
        if let Some(t) = self.tracker.as_mut() {
            t.finish();
        }
        Flow::Continue
    }

    fn on_log(&mut self, ctx: &mut Ctx<Self>) {
        self.settle(ctx);
    }

    fn on_done(&mut self, ctx: &mut Ctx<Self>) {
        self.settle(ctx);
    }
}
