//! The router between the downstream filter chain and the upstreams: endpoint priorities, a
//! retry policy that moves to the next priority (Envoy's `previous_priorities` retry plugin),
//! and an *upstream* filter chain that runs once per attempt, as Envoy's upstream HTTP filters
//! do. A plugin in the upstream chain sees the chosen host as the `upstream.address` property.
//!
//! ```no_run
//! use host_sim::router::{Endpoint, Route, Upstream};
//! use host_sim::{PluginSpec, Request, Sim, UpstreamResponse};
//! let mut down = Sim::new(Default::default());
//! let mut up = down.sibling();
//! up.add_plugin(PluginSpec::from_file("dist/ai-proxy.wasm")?.config_json("{}"))?;
//! let route = Route::new(vec![Endpoint::new("10.0.0.1:443", 0), Endpoint::new("10.0.0.2:443", 1)])
//!     .retry_on(&["5xx", "reset"], 1);
//! let out = down.run_routed(&mut up, &route, Request::post("/v1/chat/completions", "{}"), |ep, _req| {
//!     if ep.address.starts_with("10.0.0.1") { Upstream::Respond(UpstreamResponse::json(503, "busy")) }
//!     else { Upstream::Respond(UpstreamResponse::json(200, "{}")) }
//! })?;
//! assert_eq!(out.attempts.len(), 2);
//! # Ok::<(), anyhow::Error>(())
//! ```

use crate::report::{StreamRecord, UpstreamRequest};
use crate::request::{Request, UpstreamResponse};
use crate::sim::{Sim, StreamOptions};
use anyhow::{anyhow, Result};
use std::time::Duration;

/// An upstream host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port` (what the upstream chain reads as `upstream.address`).
    pub address: String,
    /// Priority level (0 first).
    pub priority: u32,
}

impl Endpoint {
    /// An endpoint at a priority.
    pub fn new(address: &str, priority: u32) -> Endpoint {
        Endpoint {
            address: address.into(),
            priority,
        }
    }
}

/// The route's cluster and retry policy.
#[derive(Debug, Clone)]
pub struct Route {
    /// Cluster name (`cluster_name` property).
    pub cluster: String,
    /// Hosts of the cluster.
    pub endpoints: Vec<Endpoint>,
    /// Retry conditions: `5xx`, `gateway-error`, `429`, `connect-failure`, `reset`, `timeout`.
    pub retry_on: Vec<String>,
    /// Retries after the first attempt.
    pub num_retries: u32,
    /// Envoy's route `timeout` (default 15 s; None: disabled), retries included.
    pub timeout: Option<Duration>,
    /// Envoy's `retry_policy.per_try_timeout` (default off; ignored unless below `timeout`).
    pub per_try_timeout: Option<Duration>,
}

impl Route {
    /// A route over these endpoints with no retries.
    pub fn new(endpoints: Vec<Endpoint>) -> Route {
        Route {
            cluster: "llm".into(),
            endpoints,
            retry_on: vec![],
            num_retries: 0,
            timeout: Some(Duration::from_secs(15)),
            per_try_timeout: None,
        }
    }

    /// Sets the route timeout (`Duration::ZERO` disables it, as `0s` in Envoy).
    pub fn timeout(mut self, t: Duration) -> Route {
        self.timeout = (!t.is_zero()).then_some(t);
        self
    }

    /// Sets the per-try timeout.
    pub fn per_try_timeout(mut self, t: Duration) -> Route {
        self.per_try_timeout = (!t.is_zero()).then_some(t);
        self
    }

    /// The per-try timeout in force: Envoy ignores one not below the route timeout.
    fn effective_per_try(&self) -> Option<Duration> {
        match (self.per_try_timeout, self.timeout) {
            (Some(p), Some(g)) if p >= g => None,
            (p, _) => p,
        }
    }

    /// Sets the retry policy.
    pub fn retry_on(mut self, on: &[&str], num_retries: u32) -> Route {
        self.retry_on = on.iter().map(|s| s.to_string()).collect();
        self.num_retries = num_retries;
        self
    }

    /// The endpoint of attempt `n`: each retry moves to the next priority level not tried yet
    /// (wrapping around when all were tried).
    pub fn endpoint_for(&self, n: usize) -> Option<&Endpoint> {
        let mut levels: Vec<u32> = self.endpoints.iter().map(|e| e.priority).collect();
        levels.sort_unstable();
        levels.dedup();
        let level = *levels.get(n % levels.len().max(1))?;
        let same: Vec<&Endpoint> = self
            .endpoints
            .iter()
            .filter(|e| e.priority == level)
            .collect();
        same.get((n / levels.len()) % same.len()).copied()
    }

    fn retriable_status(&self, status: u16) -> bool {
        self.retry_on.iter().any(|c| match c.as_str() {
            "5xx" => status >= 500,
            "gateway-error" => (502..=504).contains(&status),
            "429" | "retriable-status-codes" => status == 429,
            _ => false,
        })
    }

    /// Envoy retries any reset (a per-try timeout resets the try) under `reset`, `5xx` and
    /// `gateway-error`, and connection failures also under `connect-failure`.
    fn retriable_failure(&self, kind: &str) -> bool {
        self.retry_on
            .iter()
            .any(|c| c == kind || matches!(c.as_str(), "5xx" | "gateway-error" | "reset"))
    }
}

/// What an upstream host does with one attempt.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// Answers.
    Respond(UpstreamResponse),
    /// The connection cannot be made.
    ConnectFailure,
    /// The connection resets before response headers.
    Reset,
    /// No response headers within the per-try timeout.
    Timeout,
    /// Never answers: the route's per-try timeout fires if it has one, else its route
    /// timeout (the simulated clock advances by the time waited).
    Stall,
}

/// One attempt as the router made it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The host chosen.
    pub endpoint: Endpoint,
    /// The request as it left the upstream filter chain (None: that chain answered itself).
    pub request: Option<UpstreamRequest>,
    /// The status after the upstream filter chain (0 for connection failures).
    pub status: u16,
    /// `connect-failure`, `reset`, `timeout` (per try), `route-timeout` or `stall` (no timer
    /// to end the wait) when the host did not answer.
    pub failure: Option<&'static str>,
}

/// The outcome of a routed exchange.
#[derive(Debug, Clone)]
pub struct Routed {
    /// The downstream stream's record (what the client got).
    pub record: StreamRecord,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
}

impl Sim {
    /// A new gateway sharing this one's process-wide state (shared data, metrics, logs, clock),
    /// for example the upstream filter chain of a route.
    pub fn sibling(&self) -> Sim {
        Sim::with_host(self.loader().clone(), self.opts.clone(), self.host())
    }

    /// Runs `req` through this (downstream) chain, then through the router: each attempt runs
    /// `upstream`'s chain as upstream filters with `upstream.address` set to the chosen host,
    /// asks `serve` how that host answers, and retries per the route's policy. The response
    /// of the last attempt streams back through both chains.
    pub fn run_routed<F>(
        &mut self,
        upstream: &mut Sim,
        route: &Route,
        req: Request,
        mut serve: F,
    ) -> Result<Routed>
    where
        F: FnMut(&Endpoint, &UpstreamRequest) -> Upstream,
    {
        let sid = self.begin(req.clone())?;
        let mut attempts = Vec::new();
        let down_req = match self.record(sid).and_then(|r| r.upstream_request) {
            Some(u) if u.complete => u,
            _ => {
                let record = self
                    .take_record(sid)
                    .ok_or_else(|| anyhow!("stream vanished"))?;
                return Ok(Routed { record, attempts });
            }
        };
        let headers: Vec<(String, String)> = down_req
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        let tries = route.num_retries as usize + 1;
        let mut head_sent = false;
        let mut last_failure: Option<&'static str> = None;
        let mut waited = Duration::ZERO;
        for n in 0..tries {
            let Some(ep) = route.endpoint_for(n).cloned() else {
                break;
            };
            let mut opts = StreamOptions {
                worker: req.opts.worker,
                props: req.opts.props.clone(),
            };
            opts.props.upstream_address = ep.address.clone();
            opts.props.cluster_name = route.cluster.clone();
            let usid = upstream.start_stream(opts);
            let no_body = down_req.body.is_empty() && down_req.trailers.is_empty();
            upstream.send_request_headers(usid, &headers, no_body)?;
            if !down_req.body.is_empty() {
                upstream.send_request_body(usid, &down_req.body, down_req.trailers.is_empty())?;
            }
            let urec = upstream
                .record(usid)
                .ok_or_else(|| anyhow!("upstream stream vanished"))?;
            // The upstream chain answered by itself (local reply): that is the response.
            if urec.response.status != 0
                || !urec.upstream_request.as_ref().is_some_and(|u| u.complete)
            {
                attempts.push(Attempt {
                    endpoint: ep,
                    request: None,
                    status: urec.response.status,
                    failure: None,
                });
                self.forward(sid, upstream, usid, &mut head_sent)?;
                break;
            }
            let sent = urec.upstream_request.clone().unwrap_or_default();
            let last = n + 1 == tries;
            match serve(&ep, &sent) {
                Upstream::Respond(resp) => {
                    let no_body =
                        resp.chunks.iter().all(|c| c.is_empty()) && resp.trailers.is_empty();
                    upstream.send_response_headers(
                        usid,
                        resp.status,
                        &resp.wire_headers(),
                        no_body,
                    )?;
                    let status = upstream
                        .record(usid)
                        .map(|r| r.response.status)
                        .unwrap_or(0);
                    attempts.push(Attempt {
                        endpoint: ep,
                        request: Some(sent),
                        status,
                        failure: None,
                    });
                    if !last && status != 0 && route.retriable_status(status) {
                        upstream.client_abort(usid);
                        upstream.forget(usid);
                        continue;
                    }
                    // Stream the body through the upstream chain, then downstream.
                    let pieces: Vec<&Vec<u8>> =
                        resp.chunks.iter().filter(|c| !c.is_empty()).collect();
                    let k = pieces.len();
                    self.forward(sid, upstream, usid, &mut head_sent)?;
                    for (i, c) in pieces.into_iter().enumerate() {
                        upstream.send_response_body(
                            usid,
                            c,
                            i + 1 == k && resp.trailers.is_empty(),
                        )?;
                        self.forward(sid, upstream, usid, &mut head_sent)?;
                    }
                    if !resp.trailers.is_empty() {
                        upstream.send_response_trailers(usid, &resp.trailers)?;
                        self.forward(sid, upstream, usid, &mut head_sent)?;
                    }
                    last_failure = None;
                    break;
                }
                failed => {
                    let kind = match failed {
                        Upstream::ConnectFailure => "connect-failure",
                        Upstream::Timeout => "timeout",
                        Upstream::Stall => {
                            let left = route.timeout.map(|t| t.saturating_sub(waited));
                            match (route.effective_per_try(), left) {
                                (Some(p), Some(l)) if p < l => {
                                    waited += p;
                                    self.advance(p);
                                    "timeout"
                                }
                                (Some(p), None) => {
                                    waited += p;
                                    self.advance(p);
                                    "timeout"
                                }
                                (_, Some(l)) => {
                                    self.advance(l);
                                    "route-timeout"
                                }
                                // No timer at all: the stream waits (Envoy's idle timeout
                                // would end it), and so does this record.
                                (None, None) => "stall",
                            }
                        }
                        _ => "reset",
                    };
                    attempts.push(Attempt {
                        endpoint: ep,
                        request: Some(sent),
                        status: 0,
                        failure: Some(kind),
                    });
                    upstream.client_abort(usid);
                    upstream.forget(usid);
                    last_failure = Some(kind);
                    let ends = matches!(kind, "route-timeout" | "stall");
                    if !last && !ends && route.retriable_failure(kind) {
                        continue;
                    }
                    break;
                }
            }
        }
        if let Some(kind) = last_failure {
            match kind {
                "stall" => {}
                "timeout" => self.router_reply(sid, 504, "upstream_per_try_timeout", b"upstream request timeout"),
                "route-timeout" => self.router_reply(sid, 504, "upstream_response_timeout", b"upstream request timeout"),
                _ => self.router_reply(
                    sid,
                    503,
                    "upstream_reset_before_response_started",
                    format!("upstream connect error or disconnect/reset before headers. reset reason: {}", if kind == "reset" { "connection termination" } else { "connection failure" }).as_bytes(),
                ),
            }
        }
        let record = self
            .take_record(sid)
            .ok_or_else(|| anyhow!("stream vanished"))?;
        Ok(Routed { record, attempts })
    }

    /// Moves what the upstream chain produced for its "client" (the router) into this
    /// downstream stream as the upstream response.
    fn forward(
        &mut self,
        sid: u64,
        upstream: &mut Sim,
        usid: u64,
        head_sent: &mut bool,
    ) -> Result<()> {
        let Some(rec) = upstream.record(usid) else {
            return Ok(());
        };
        let started = *head_sent || self.record(sid).is_some_and(|r| r.finished);
        if rec.response.reset {
            self.upstream_reset(sid);
            return Ok(());
        }
        if rec.response.status == 0 {
            return Ok(());
        }
        let body = upstream.take_client_body(usid);
        if !started {
            let hs: Vec<(String, String)> = rec
                .response
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect();
            let end = rec.response.complete && body.is_empty();
            self.send_response_headers(sid, rec.response.status, &hs, end)?;
            *head_sent = true;
            if end {
                upstream.forget(usid);
                return Ok(());
            }
        }
        if !body.is_empty()
            || (rec.response.complete && !self.record(sid).is_some_and(|r| r.finished))
        {
            self.send_response_body(sid, &body, rec.response.complete)?;
        }
        if rec.response.complete {
            upstream.forget(usid);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Request, UpstreamResponse};

    #[test]
    fn retry_conditions_and_timeouts_follow_envoy() {
        let r = Route::new(vec![]).retry_on(&["gateway-error"], 1);
        assert!(r.retriable_failure("reset") && r.retriable_failure("timeout"));
        let r = Route::new(vec![]).retry_on(&["connect-failure"], 1);
        assert!(r.retriable_failure("connect-failure") && !r.retriable_failure("timeout"));
        let r = Route::new(vec![]).per_try_timeout(Duration::from_secs(20));
        assert_eq!(
            r.effective_per_try(),
            None,
            "not below the 15 s route timeout"
        );
        let r = r.timeout(Duration::ZERO);
        assert_eq!(r.effective_per_try(), Some(Duration::from_secs(20)));
    }

    #[test]
    fn a_stalled_upstream_meets_the_per_try_then_the_route_timeout() {
        let mut down = Sim::new(Default::default());
        let mut up = down.sibling();
        let eps = vec![
            Endpoint::new("10.0.0.1:80", 0),
            Endpoint::new("10.0.0.2:80", 1),
        ];
        // Per-try timeout, retried under 5xx: the second host answers.
        let route = Route::new(eps.clone())
            .retry_on(&["5xx"], 1)
            .per_try_timeout(Duration::from_secs(2));
        let t0 = down.now_ns();
        let out = down
            .run_routed(&mut up, &route, Request::post("/v1/x", "{}"), |ep, _| {
                if ep.priority == 0 {
                    Upstream::Stall
                } else {
                    Upstream::Respond(UpstreamResponse::json(200, "{}"))
                }
            })
            .unwrap();
        assert_eq!(out.attempts[0].failure, Some("timeout"));
        assert_eq!(out.record.response.status, 200);
        assert_eq!(down.now_ns() - t0, 2_000_000_000);
        // No per-try timeout: the route timeout (15 s) ends the stream with 504, no retry.
        let route = Route::new(eps).retry_on(&["5xx"], 1);
        let out = down
            .run_routed(&mut up, &route, Request::post("/v1/x", "{}"), |_, _| {
                Upstream::Stall
            })
            .unwrap();
        assert_eq!(out.attempts.len(), 1);
        assert_eq!(out.record.response.status, 504);
        assert_eq!(out.record.response.body_str(), "upstream request timeout");
        let details = out.record.local_reply.map(|l| l.details);
        assert_eq!(details.as_deref(), Some("upstream_response_timeout"));
    }
}
