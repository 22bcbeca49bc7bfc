//! The plugin type ([`LoadBalancer`]) and its phase handlers: pick a backend at request headers,
//! account for it when the stream ends.

use crate::{config, hash, pick, prompt, scrape, sse_count, state};
use aigw::host;
use aigw::prelude::*;
use aigw::shared::{self, HostStore};
use config::{Config, Policy, PrefixSource, Signal};
use pick::Candidate;
use state::{BackendState, Keys, MetricsRecord};

/// Longest prefix chain considered (blocks).
const MAX_CHAIN: usize = 32;

/// Per-stream state: the chosen backend and what the response showed about it.
#[derive(Default)]
pub struct LoadBalancer {
    /// Index of the chosen backend, once picked.
    picked: Option<usize>,
    /// The in-flight count was taken and not yet given back.
    holding: bool,
    /// When the backend was picked (ms).
    start_ms: u64,
    /// When the first response body byte arrived (ms).
    first_byte_ms: Option<u64>,
    /// When the last response body byte arrived (ms).
    last_byte_ms: u64,
    /// The response reached its end.
    response_done: bool,
    /// Status of the upstream response headers.
    status: u16,
    /// SSE events counted for the per-token latency.
    events: sse_count::EventCounter,
    /// The headers are held until the body gives the prefix material.
    awaiting_body: bool,
}

impl Plugin for LoadBalancer {
    const NAME: &'static str = "ai-load-balancer";
    type Config = Config;
    type Root = ();

    fn on_configure(root: &mut RootCtx<Self>) -> Result<(), ConfigError> {
        scrape::configure(root)
    }

    fn on_tick(root: &mut RootCtx<Self>) {
        scrape::tick(root);
    }

    fn on_request_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        let cfg = ctx.config_rc();
        if cfg.policy == Policy::PrefixAffinity
            && cfg.prefix.source == PrefixSource::Body
            && !end_of_stream
        {
            // Held until the body is read (the host keeps the headers writable meanwhile).
            self.awaiting_body = true;
            return Flow::Pause;
        }
        let material = match cfg.prefix.source {
            PrefixSource::Header if cfg.policy == Policy::PrefixAffinity => ctx
                .request_header(&cfg.prefix.header)
                .ok()
                .flatten()
                .filter(|m| !m.is_empty())
                .map(String::into_bytes),
            _ => None,
        };
        self.route(ctx, &cfg, material.as_deref())
    }

    fn on_request_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        if !self.awaiting_body {
            return Flow::Continue;
        }
        let cfg = ctx.config_rc();
        let material =
            match ctx.whole_request_body_or(chunk, cfg.prefix.max_body_bytes, OverLimit::Pass) {
                Whole::Pending => return Flow::Pause,
                Whole::Ready(body) => prompt::material(&body),
                Whole::TooLarge { .. } => None,
                Whole::Failed(e) => {
                    aigw::debug!("request body unreadable: {e}");
                    None
                }
            };
        self.awaiting_body = false;
        self.route(ctx, &cfg, material.as_deref())
    }

    fn on_request_trailers(&mut self, ctx: &mut Ctx<Self>) -> Flow {
        if !self.awaiting_body {
            return Flow::Continue;
        }
        self.awaiting_body = false;
        let cfg = ctx.config_rc();
        self.route(ctx, &cfg, None)
    }

    fn on_response_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        self.status = ctx
            .response_header(":status")
            .ok()
            .flatten()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if end_of_stream {
            self.response_done = true;
            self.first_byte(ctx, now_ms());
        }
        Flow::Continue
    }

    fn on_response_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        if self.picked.is_none() {
            return Flow::Continue;
        }
        let now = now_ms();
        if chunk.size > 0 {
            self.first_byte(ctx, now);
            self.last_byte_ms = now;
            if ctx.config().latency.signal == Signal::Tpot && ctx.config().policy == Policy::Latency
            {
                match ctx.response_body(chunk) {
                    Ok(bytes) => self.events.feed(&bytes),
                    Err(e) => aigw::debug!("cannot read response body: {e}"),
                }
            }
        }
        if chunk.end_of_stream {
            self.response_done = true;
        }
        Flow::Continue
    }

    fn on_log(&mut self, ctx: &mut Ctx<Self>) {
        self.finish(ctx, true);
    }

    fn on_done(&mut self, ctx: &mut Ctx<Self>) {
        self.finish(ctx, false);
    }
}

/// What a finished exchange says about the backend's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    /// Says nothing about the backend (client went away, another filter replied).
    Neutral,
}

impl LoadBalancer {
    /// The time-to-first-token sample, once per stream.
    fn first_byte(&mut self, ctx: &mut Ctx<Self>, now: u64) {
        if self.first_byte_ms.is_some() {
            return;
        }
        self.first_byte_ms = Some(now);
        let cfg = ctx.config_rc();
        if cfg.policy != Policy::Latency
            || cfg.latency.signal != Signal::Ttft
            || !(200..300).contains(&self.status)
        {
            return;
        }
        let Some(b) = self.picked.and_then(|i| cfg.backends.get(i)) else {
            return;
        };
        let sample_us = now.saturating_sub(self.start_ms).saturating_mul(1_000);
        let key = Keys::new(cfg.set_id).backend(&b.host);
        if let Err(e) = state::modify(&HostStore, &key, |s| s.sample(sample_us, now, &cfg.latency))
        {
            aigw::warn!("latency sample of {} lost: {e}", b.host);
        }
    }

    /// Gives the in-flight count back (exactly once) and, from `on_log`, records the health
    /// outcome and the per-token latency.
    fn finish(&mut self, ctx: &mut Ctx<Self>, in_log: bool) {
        if !self.holding && (!in_log || self.picked.is_none()) {
            return;
        }
        let cfg = ctx.config_rc();
        let Some(b) = self.picked.and_then(|i| cfg.backends.get(i)) else {
            return;
        };
        let outcome = if in_log {
            self.outcome()
        } else {
            Outcome::Neutral
        };
        let tpot_us = self.tpot_sample(&cfg);
        let now = now_ms();
        let release = self.holding;
        let key = Keys::new(cfg.set_id).backend(&b.host);
        let mut ejected = false;
        let result = state::modify(&HostStore, &key, |s: &mut BackendState| {
            if release {
                s.in_flight = s.in_flight.saturating_sub(1);
            }
            ejected = false;
            match outcome {
                Outcome::Success => s.success(),
                Outcome::Failure => ejected = s.failure(now, &cfg.health),
                Outcome::Neutral => {}
            }
            if let Some(t) = tpot_us {
                s.sample(t, now, &cfg.latency);
            }
        });
        match result {
            Ok(()) => {
                if ejected {
                    aigw::warn!("backend {} ejected after consecutive failures", b.host);
                }
            }
            Err(e) => aigw::warn!("state of {} not updated: {e}", b.host),
        }
        // Whatever happened, never try again: a failed release must not be retried twice.
        self.holding = false;
        self.picked = None;
    }

    fn outcome(&self) -> Outcome {
        let details = host::get_property_string(&["response", "code_details"])
            .ok()
            .flatten()
            .unwrap_or_default();
        let code = host::get_property_i64(&["response", "code"])
            .ok()
            .flatten()
            .unwrap_or(0);
        if details.starts_with("upstream_reset")
            || details.starts_with("upstream_response_timeout")
            || details.starts_with("upstream_per_try_timeout")
        {
            return Outcome::Failure;
        }
        if details == "via_upstream" {
            if code >= 500 || !self.response_done {
                // A 5xx, or an upstream that reset the stream after its headers.
                return Outcome::Failure;
            }
            return Outcome::Success;
        }
        Outcome::Neutral
    }

    /// Mean time between streamed events of a successful streamed response, in µs.
    fn tpot_sample(&self, cfg: &Config) -> Option<u64> {
        if cfg.policy != Policy::Latency
            || cfg.latency.signal != Signal::Tpot
            || !self.response_done
            || !(200..300).contains(&self.status)
        {
            return None;
        }
        let first = self.first_byte_ms?;
        let gaps = self.events.count().checked_sub(1).filter(|g| *g > 0)?;
        Some(
            self.last_byte_ms
                .saturating_sub(first)
                .saturating_mul(1_000)
                / gaps,
        )
    }
}

impl LoadBalancer {
    /// Picks the backend (prefix `material` for prefix affinity), counts it in flight and
    /// writes the target header; a 503 in the client's protocol when none is available.
    fn route(&mut self, ctx: &mut Ctx<Self>, cfg: &Config, material: Option<&[u8]>) -> Flow {
        let now = now_ms();
        let Some(index) = choose(cfg, now, material) else {
            let reply = ErrorReply::new(503, "no healthy upstream backend is available")
                .code("no_healthy_upstream");
            if let Err(e) = ctx.send_error(&reply) {
                aigw::warn!("cannot send 503: {e}");
            }
            return Flow::Pause;
        };
        let Some(backend) = cfg.backends.get(index) else {
            return Flow::Continue;
        };
        let keys = Keys::new(cfg.set_id);
        match state::modify(&HostStore, &keys.backend(&backend.host), |s| {
            s.in_flight = s.in_flight.saturating_add(1)
        }) {
            Ok(()) => self.holding = true,
            Err(e) => aigw::warn!("in-flight count of {} not taken: {e}", backend.host),
        }
        self.picked = Some(index);
        self.start_ms = now;
        if let Err(e) = ctx.set_request_header(&cfg.target_header, &backend.host) {
            aigw::warn!("cannot set {}: {e}", cfg.target_header);
        }
        // Higress: also pick the host directly, so any cluster of the route works.
        #[cfg(feature = "higress")]
        if let Err(e) = host::set_upstream_override_host(&backend.host) {
            aigw::warn!("cannot override the upstream host: {e}");
        }
        Flow::Continue
    }
}

fn now_ms() -> u64 {
    host::now_millis().unwrap_or(0)
}

/// Picks a backend index for this request, `None` when none is available.
fn choose(cfg: &Config, now: u64, material: Option<&[u8]>) -> Option<usize> {
    let store = HostStore;
    let keys = Keys::new(cfg.set_id);
    let fresh_metrics = cfg.policy == Policy::Metrics;
    let stale_ms = cfg.metrics.as_ref().map_or(0, |m| m.stale_ms);
    let mut cands = Vec::with_capacity(cfg.backends.len());
    for (index, b) in cfg.backends.iter().enumerate() {
        let st = state::read(&store, &keys.backend(&b.host)).unwrap_or_else(|e| {
            aigw::debug!("state of {} unreadable: {e}", b.host);
            BackendState::default()
        });
        if !st.available(now) {
            continue;
        }
        let metrics = if fresh_metrics {
            read_metrics(&keys.metrics(&b.host))
                .filter(|m| m.at_ms <= now && now - m.at_ms <= stale_ms)
        } else {
            None
        };
        cands.push(Candidate {
            index,
            weight: b.weight,
            state: st,
            metrics,
        });
    }
    if cands.is_empty() {
        return None;
    }
    let rotate = shared::counter_add(&store, &keys.rr(), 1)
        .map(|n| n.saturating_sub(1))
        .unwrap_or(0);
    match cfg.policy {
        Policy::RoundRobin => pick::round_robin(&cfg.sequence, rotate, &cands),
        Policy::LeastInFlight => pick::least_in_flight(&cands, rotate),
        Policy::Latency => pick::latency(&cands, rotate, now, cfg.latency.half_life_ms),
        Policy::Metrics => {
            let w = cfg
                .metrics
                .as_ref()
                .map(|m| m.weights.clone())
                .unwrap_or_default();
            pick::metrics(&cands, rotate, &w).0
        }
        Policy::PrefixAffinity => prefix_pick(cfg, &cands, rotate, material),
    }
}

fn read_metrics(key: &str) -> Option<MetricsRecord> {
    use aigw::shared::CasStore;
    let (v, _) = HostStore.get(key).ok().flatten()?;
    MetricsRecord::decode(&v)
}

/// Prefix affinity: the deepest indexed entry of the request's prefix chain names the
/// backend, if it is available and within the load bound; otherwise least in-flight. The
/// chain is then (re)indexed to the chosen backend.
fn prefix_pick(
    cfg: &Config,
    cands: &[Candidate],
    rotate: u64,
    material: Option<&[u8]>,
) -> Option<usize> {
    let Some(material) = material.filter(|m| !m.is_empty()) else {
        return pick::least_in_flight(cands, rotate);
    };
    let chain = hash::prefix_chain(material, cfg.prefix.block_bytes, MAX_CHAIN);
    let keys = Keys::new(cfg.set_id);
    let slots = u64::from(cfg.prefix.index_slots);
    let slot_key = |h: u64| keys.prefix_slot(h % slots);
    let mut hit: Option<(usize, usize)> = None; // (depth, backend)
    for (depth, h) in chain.iter().enumerate().rev() {
        if let Some(b) = state::prefix_lookup(&HostStore, &slot_key(*h), *h) {
            hit = Some((depth, b));
            break;
        }
    }
    let affine = hit.filter(|(_, b)| {
        cands.iter().any(|c| c.index == *b) && pick::within_bound(cands, *b, cfg.prefix.load_factor)
    });
    let (chosen, known_depth) = match affine {
        Some((depth, b)) => (b, depth + 1),
        None => (pick::least_in_flight(cands, rotate)?, 0),
    };
    for h in chain.iter().skip(known_depth) {
        if let Err(e) = state::prefix_store(&HostStore, &slot_key(*h), *h, chosen) {
            aigw::debug!("prefix index not updated: {e}");
            break;
        }
    }
    Some(chosen)
}
