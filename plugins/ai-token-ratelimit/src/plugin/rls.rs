//! RLS mode on a stream: admission asks the rate limit service with the estimate as
//! `hits_addend` (one call per distinct amount, every window of every applying limit a
//! descriptor), and when the response ended the positive difference between the real cost
//! and what admission sent is reported with another `ShouldRateLimit` call. The service
//! cannot give hits back: a request that cost less than its estimate stays counted at the
//! estimate.

use super::{count_metric, limit_of, Reservation, Tightest, TokenRateLimit};
use crate::config::{Config, FailureMode};
use crate::identity::Applied;
use crate::rls::{self, Code, Descriptor};
use aigw::plugin::{GrpcCall, GrpcResult};
use aigw::prelude::*;
use aigw::shared::WindowState;
use std::time::Duration;

/// The counter of the plugin's own errors with the service.
const ERRORS: &str = "ai_token_ratelimit_rls_errors_total";

/// A failure: metric reason and a detail for the log.
type Failure = (&'static str, String);

/// An admission waiting for the service's answers.
#[derive(Debug, Default)]
pub(super) struct Pending {
    reservations: Vec<Reservation>,
    /// Per reservation, the call it went in.
    call_of: Vec<usize>,
    /// Per call, the (reservation, window) of each descriptor, in order.
    calls: Vec<Vec<(usize, usize)>>,
    answers: Vec<Option<Result<rls::Response, Failure>>>,
}

/// Descriptors grouped by the hits they carry: one call each.
struct Batch {
    hits: u64,
    slots: Vec<(usize, usize)>,
    descriptors: Vec<Descriptor>,
}

fn batch_for(batches: &mut Vec<Batch>, hits: u64) -> usize {
    if let Some(i) = batches.iter().position(|b| b.hits == hits) {
        return i;
    }
    batches.push(Batch {
        hits,
        slots: Vec::new(),
        descriptors: Vec::new(),
    });
    batches.len() - 1
}

fn call<'a>(cfg: &'a Config, message: &'a [u8]) -> Option<GrpcCall<'a>> {
    let spec = cfg.rls.as_ref()?;
    Some(GrpcCall {
        cluster: spec.cluster(),
        service: rls::SERVICE,
        method: rls::METHOD,
        metadata: &[],
        message,
        timeout: Duration::from_millis(spec.timeout_ms),
    })
}

/// Reads an answer: a decoded response, or why there is none.
fn read_answer(result: GrpcResult, descriptors: usize) -> Result<rls::Response, Failure> {
    let bytes = result.map_err(|e| (e.reason(), e.to_string()))?;
    let resp = rls::decode_response(&bytes).map_err(|e| ("bad_answer", e.to_string()))?;
    if resp.overall == Code::Unknown {
        return Err(("bad_answer", "overall_code is UNKNOWN".into()));
    }
    if !resp.statuses.is_empty() && resp.statuses.len() != descriptors {
        return Err((
            "bad_answer",
            format!(
                "{} statuses for {descriptors} descriptors",
                resp.statuses.len()
            ),
        ));
    }
    Ok(resp)
}

fn rls_error(op: &'static str, failure: &Failure) {
    count_metric(ERRORS, &[("op", op), ("reason", failure.0)], 1);
    aigw::warn!(
        "rate limit service {op} failed ({}): {}",
        failure.0,
        failure.1
    );
}

impl TokenRateLimit {
    /// The key values of `limit` for this request, in key order.
    fn rls_values<'s>(&'s self, cfg: &Config, a: &Applied) -> Vec<&'s str> {
        limit_of(cfg, a)
            .map(|limit| {
                limit
                    .dims
                    .iter()
                    .map(|d| self.value_of(&d.source).unwrap_or(""))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sends the admission calls; the request waits for their answers.
    pub(super) fn admit_rls(
        &mut self,
        ctx: &mut Ctx<Self>,
        cfg: &Config,
        applied: Vec<Applied>,
    ) -> Flow {
        let mut pending = Pending::default();
        let mut batches: Vec<Batch> = Vec::new();
        for a in applied {
            let Some(limit) = limit_of(cfg, &a) else {
                continue;
            };
            // The service reads 0 hits as 1: admission always counts at least one, and the
            // report after the response sends only what the real cost exceeds it by.
            let hits = self.amount(cfg, limit).max(1);
            let values = self.rls_values(cfg, &a);
            let r = pending.reservations.len();
            let b = batch_for(&mut batches, hits);
            for (w, window) in limit.windows.iter().enumerate() {
                if let Some(batch) = batches.get_mut(b) {
                    batch.slots.push((r, w));
                    batch
                        .descriptors
                        .push(rls::descriptor(limit, &values, window.secs));
                }
            }
            pending.call_of.push(b);
            pending.reservations.push(Reservation {
                applied: a,
                amount: hits,
                starts: Vec::new(),
                counters: Vec::new(),
            });
        }
        let Some(domain) = cfg.rls.as_ref().map(|s| s.domain().to_string()) else {
            return Flow::Continue;
        };
        let mut tokens = Vec::with_capacity(batches.len());
        for (i, batch) in batches.iter().enumerate() {
            let message = rls::encode_request(&domain, &batch.descriptors, batch.hits);
            pending.calls.push(batch.slots.clone());
            let Some(grpc) = call(cfg, &message) else {
                pending
                    .answers
                    .push(Some(Err(("host", "no rls section".into()))));
                continue;
            };
            let sent = ctx.grpc_call(&grpc, move |plugin: &mut Self, ctx, result| {
                plugin.on_rls_answer(ctx, i, result)
            });
            match sent {
                Ok(()) => {
                    pending.answers.push(None);
                    tokens.push(i);
                }
                Err(e) => pending.answers.push(Some(Err((
                    "host",
                    format!("the gateway refused the call: {e}"),
                )))),
            }
        }
        self.rls = Some(Box::new(pending));
        if tokens.is_empty() {
            return self.rls_decide(ctx);
        }
        Flow::Pause
    }

    fn on_rls_answer(&mut self, ctx: &mut Ctx<Self>, call: usize, result: GrpcResult) {
        let Some(pending) = self.rls.as_mut() else {
            return;
        };
        let descriptors = pending.calls.get(call).map_or(0, Vec::len);
        if let Some(slot) = pending.answers.get_mut(call) {
            *slot = Some(read_answer(result, descriptors));
        }
        if pending.answers.iter().any(Option::is_none) {
            return;
        }
        let flow = self.rls_decide(ctx);
        if flow == Flow::Continue && !ctx.replied() {
            if let Err(e) = ctx.resume_request() {
                aigw::warn!("cannot resume the request: {e}");
            }
        }
    }

    /// Decides once every call answered: any descriptor over its limit rejects (429), else
    /// a failed call goes by `failure_mode`, else the request is admitted.
    fn rls_decide(&mut self, ctx: &mut Ctx<Self>) -> Flow {
        let Some(pending) = self.rls.take() else {
            return Flow::Continue;
        };
        let cfg = ctx.config_rc();
        let now = aigw::host::now_millis().unwrap_or(0);
        // Per reservation, one state per window of its limit.
        let mut states: Vec<Vec<WindowState>> = pending
            .reservations
            .iter()
            .map(|r| {
                limit_of(&cfg, &r.applied)
                    .map(|l| {
                        l.windows
                            .iter()
                            .map(|w| WindowState {
                                limit: w.limit,
                                used: 0,
                                reset_ms: rls::window_reset_ms(w.secs, now),
                                start_ms: 0,
                                fits: true,
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let mut failure: Option<Failure> = None;
        let mut failed_calls = Vec::new();
        for (c, answer) in pending.answers.iter().enumerate() {
            let resp = match answer {
                Some(Ok(resp)) => resp,
                Some(Err(f)) => {
                    failure.get_or_insert_with(|| f.clone());
                    failed_calls.push(c);
                    continue;
                }
                None => continue,
            };
            let slots = pending.calls.get(c).map(Vec::as_slice).unwrap_or_default();
            for (k, (r, w)) in slots.iter().enumerate() {
                let Some(state) = states.get_mut(*r).and_then(|s| s.get_mut(*w)) else {
                    continue;
                };
                match resp.statuses.get(k) {
                    Some(s) => {
                        if let Some(limit) = s.limit {
                            state.limit = limit;
                        }
                        state.used = state.limit.saturating_sub(s.remaining);
                        if let Some(reset) = s.reset_ms.filter(|ms| *ms > 0) {
                            state.reset_ms = reset;
                        }
                        state.fits = s.code != Some(Code::OverLimit);
                    }
                    None => state.fits = resp.overall != Code::OverLimit,
                }
            }
        }
        let refused = pending
            .reservations
            .iter()
            .zip(&states)
            .find(|(_, s)| s.iter().any(|w| !w.fits));
        if let Some((r, s)) = refused {
            let Some(limit) = limit_of(&cfg, &r.applied) else {
                return Flow::Continue;
            };
            return self.reject(ctx, &cfg, limit, s, r.amount);
        }
        if let Some(f) = failure {
            rls_error("admit", &f);
            if cfg.failure_mode == FailureMode::Closed {
                return self.fail_closed(ctx);
            }
            count_metric(
                "ai_token_ratelimit_requests_total",
                &[("result", "failed_open")],
                1,
            );
        }
        let (mut tokens, mut requests) = (None, None);
        let mut reserved = Vec::with_capacity(pending.reservations.len());
        for ((r, s), call) in pending
            .reservations
            .into_iter()
            .zip(&states)
            .zip(&pending.call_of)
        {
            if failed_calls.contains(call) {
                continue;
            }
            let Some(limit) = limit_of(&cfg, &r.applied) else {
                continue;
            };
            let slot = if limit.is_requests() {
                &mut requests
            } else {
                &mut tokens
            };
            for w in s {
                Tightest::offer(slot, w.limit, w.remaining(), w.reset_ms);
            }
            reserved.push(r);
        }
        self.admitted(&cfg, reserved, tokens, requests);
        Flow::Continue
    }

    /// Reports what the real cost exceeds each reservation by (nothing when it does not):
    /// one call per distinct difference, sent on behalf of the root context so the stream's
    /// end does not cancel it.
    pub(super) fn settle_rls(
        &mut self,
        ctx: &mut Ctx<Self>,
        cfg: &Config,
        charges: &[(Reservation, u64)],
    ) {
        let Some(domain) = cfg.rls.as_ref().map(|s| s.domain().to_string()) else {
            return;
        };
        let mut batches: Vec<Batch> = Vec::new();
        for (r, actual) in charges {
            let extra = actual.saturating_sub(r.amount);
            let Some(limit) = limit_of(cfg, &r.applied) else {
                continue;
            };
            if extra == 0 {
                continue;
            }
            let values = self.rls_values(cfg, &r.applied);
            let b = batch_for(&mut batches, extra);
            if let Some(batch) = batches.get_mut(b) {
                for w in &limit.windows {
                    batch
                        .descriptors
                        .push(rls::descriptor(limit, &values, w.secs));
                }
            }
        }
        for batch in batches {
            let message = rls::encode_request(&domain, &batch.descriptors, batch.hits);
            let Some(grpc) = call(cfg, &message) else {
                return;
            };
            let n = batch.descriptors.len();
            let sent = ctx.grpc_call_detached(&grpc, move |result| {
                if let Err(f) = read_answer(result, n) {
                    rls_error("settle", &f);
                }
            });
            if let Err(e) = sent {
                rls_error(
                    "settle",
                    &("host", format!("the gateway refused the call: {e}")),
                );
            }
        }
    }
}
