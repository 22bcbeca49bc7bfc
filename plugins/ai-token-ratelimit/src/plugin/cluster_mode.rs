//! Cluster mode: limits counted in Redis through the Higress Redis hostcalls (the `higress`
//! build), and the stand-ins the default build links (validation refuses cluster mode there).

use super::*;

#[cfg(not(feature = "higress"))]
pub(super) fn cluster_init(_cfg: &Config) -> Result<(), ConfigError> {
    // Configuration validation refuses cluster mode in this build.
    Err(ConfigError::new(
        "mode",
        "\"cluster\" needs the module built with the `higress` feature",
    ))
}

#[cfg(not(feature = "higress"))]
impl TokenRateLimit {
    pub(super) fn admit_cluster(
        &mut self,
        ctx: &mut Ctx<Self>,
        cfg: &Config,
        applied: Vec<Applied>,
        now: u64,
    ) -> Flow {
        // Not reachable: validation refuses cluster mode without the feature.
        self.admit_local(ctx, cfg, applied, now)
    }

    pub(super) fn settle_cluster(
        &mut self,
        _ctx: &mut Ctx<Self>,
        _cfg: &Config,
        _charges: &[(Reservation, u64)],
        _now: u64,
    ) {
    }
}

#[cfg(feature = "higress")]
fn redis_client(cfg: &Config) -> Option<aigw::redis::RedisClient> {
    let r = cfg.redis.as_ref()?;
    Some(aigw::redis::RedisClient::new(
        &r.cluster_name(),
        std::time::Duration::from_millis(r.timeout),
    ))
}

#[cfg(feature = "higress")]
pub(super) fn cluster_init(cfg: &Config) -> Result<(), ConfigError> {
    let (Some(client), Some(r)) = (redis_client(cfg), cfg.redis.as_ref()) else {
        return Err(ConfigError::new("redis", "required in cluster mode"));
    };
    client
        .init(r.username.as_deref(), r.password.as_deref())
        .map_err(|e| {
            ConfigError::new(
                "redis",
                format!(
                    "the gateway refused Redis cluster {:?} ({e}); check service_name/service_port or cluster",
                    client.cluster()
                ),
            )
        })
}

#[cfg(feature = "higress")]
impl TokenRateLimit {
    pub(super) fn admit_cluster(
        &mut self,
        ctx: &mut Ctx<Self>,
        cfg: &Config,
        applied: Vec<Applied>,
        now: u64,
    ) -> Flow {
        let Some(redis) = cfg.redis.as_ref() else {
            return Flow::Continue;
        };
        let mut pending = Vec::with_capacity(applied.len());
        let mut pairs = Vec::new();
        for a in applied {
            let Some(limit) = limit_of(cfg, &a) else {
                continue;
            };
            let amount = self.amount(cfg, limit);
            let counters: Vec<Counter> = limit
                .windows
                .iter()
                .map(|w| {
                    Counter::new(
                        redis.key_prefix(crate::config::DEFAULT_KEY_PREFIX),
                        &limit.name,
                        a.id,
                        w.secs,
                        w.limit,
                        now,
                    )
                })
                .collect();
            pairs.extend(counters.iter().map(|c| (c.clone(), amount)));
            pending.push(Reservation {
                applied: a,
                amount,
                starts: Vec::new(),
                counters,
            });
        }
        self.pending = pending;
        let call = crate::cluster::admit_call(&pairs);
        match self.send_admission(ctx, call, now, true) {
            Ok(()) => Flow::Pause,
            Err(why) => {
                self.pending.clear();
                self.cluster_failure(ctx, &why)
            }
        }
    }

    /// Sends the admission script: by SHA-1 first, with its text after a `NOSCRIPT` reply.
    /// If the stream finishes before the reply, the reply goes to [`release_abandoned`],
    /// which gives back whatever the script counted.
    fn send_admission(
        &mut self,
        ctx: &mut Ctx<Self>,
        call: crate::cluster::ScriptCall,
        now: u64,
        by_sha: bool,
    ) -> Result<(), String> {
        let cfg = ctx.config_rc();
        let (Some(client), Some(scripts)) = (redis_client(&cfg), cfg.scripts.as_ref()) else {
            return Err("no redis configuration".into());
        };
        let command = if by_sha {
            call.evalsha(&scripts.admit)
        } else {
            call.eval(&scripts.admit)
        };
        let abandoned = self.pending.clone();
        let orphan_cfg = Rc::clone(&cfg);
        ctx.redis_call_or(
            &client,
            &command,
            move |plugin, ctx, result| plugin.on_admit_reply(ctx, result, call, now, by_sha),
            move |result| release_abandoned(&orphan_cfg, &abandoned, result),
        )
        .map_err(|e| format!("redis call refused: {e}"))
    }

    /// A Redis failure at admission: counted, logged, then open or closed per config.
    fn cluster_failure(&mut self, ctx: &mut Ctx<Self>, why: &str) -> Flow {
        count_metric(
            "ai_token_ratelimit_store_errors_total",
            &[("store", "redis"), ("op", "admit")],
            1,
        );
        aigw::warn!("redis admission failed: {why}");
        if ctx.config().failure_mode == FailureMode::Closed {
            return self.fail_closed(ctx);
        }
        count_metric(
            "ai_token_ratelimit_requests_total",
            &[("result", "failed_open")],
            1,
        );
        Flow::Continue
    }

    fn on_admit_reply(
        &mut self,
        ctx: &mut Ctx<Self>,
        result: aigw::redis::RedisResult,
        call: crate::cluster::ScriptCall,
        now: u64,
        by_sha: bool,
    ) {
        let cfg = ctx.config_rc();
        if self.settled {
            // The stream already ended (the SDK normally routes such replies to the
            // fallback; this covers a reply between on_log and on_done).
            let pending = std::mem::take(&mut self.pending);
            release_abandoned(&cfg, &pending, result);
            return;
        }
        let flow = match result {
            Err(e) if by_sha && e.is_noscript() => {
                // Redis lost its script cache (restart, SCRIPT FLUSH): nothing was counted;
                // the same call goes again with the script's text, the request stays paused.
                aigw::debug!("redis does not know the admission script; sending it");
                match self.send_admission(ctx, call, now, false) {
                    Ok(()) => return,
                    Err(why) => {
                        self.pending.clear();
                        self.cluster_failure(ctx, &why)
                    }
                }
            }
            result => self.decide_from_reply(ctx, &cfg, result, now),
        };
        if flow == Flow::Continue && !ctx.replied() {
            if let Err(e) = ctx.resume_request() {
                aigw::warn!("cannot resume the request: {e}");
            }
        }
    }

    /// Admits or rejects from the admission script's reply.
    fn decide_from_reply(
        &mut self,
        ctx: &mut Ctx<Self>,
        cfg: &Config,
        result: aigw::redis::RedisResult,
        now: u64,
    ) -> Flow {
        let pending = std::mem::take(&mut self.pending);
        let n: usize = pending.iter().map(|r| r.counters.len()).sum();
        let parsed = result
            .map_err(|e| e.to_string())
            .and_then(|v| crate::cluster::parse_admit(&v, n));
        let (admitted, used) = match parsed {
            Err(why) => return self.cluster_failure(ctx, &why),
            Ok(p) => p,
        };
        let mut used = used.into_iter();
        let (mut tokens, mut requests) = (None, None);
        let mut refusal = None;
        for r in &pending {
            let Some(limit) = limit_of(cfg, &r.applied) else {
                continue;
            };
            let states: Vec<WindowState> = r
                .counters
                .iter()
                .map(|c| {
                    let u = used.next().unwrap_or(0);
                    let before = if admitted {
                        u.saturating_sub(r.amount)
                    } else {
                        u
                    };
                    WindowState {
                        limit: c.limit,
                        used: u,
                        reset_ms: c.reset_ms(now),
                        start_ms: c.start_ms,
                        fits: aigw::shared::window_fits(before, r.amount, c.limit),
                    }
                })
                .collect();
            if admitted {
                let slot = if limit.is_requests() {
                    &mut requests
                } else {
                    &mut tokens
                };
                for w in &states {
                    Tightest::offer(slot, w.limit, w.remaining(), w.reset_ms);
                }
            } else if refusal.is_none() && states.iter().any(|s| !s.fits) {
                refusal = Some((r.applied, states, r.amount));
            }
        }
        if admitted {
            self.admitted(cfg, pending, tokens, requests);
            Flow::Continue
        } else if let Some((a, states, amount)) = refusal {
            match limit_of(cfg, &a) {
                Some(limit) => self.reject(ctx, cfg, limit, &states, amount),
                None => Flow::Continue,
            }
        } else {
            self.cluster_failure(ctx, "refusal without a refusing window")
        }
    }

    pub(super) fn settle_cluster(
        &mut self,
        ctx: &mut Ctx<Self>,
        cfg: &Config,
        charges: &[(Reservation, u64)],
        now: u64,
    ) {
        let moves = cluster_moves(cfg, charges.iter().map(|(r, a)| (r, *a)), now);
        if let Some(call) = crate::cluster::settle_call(&moves) {
            run_settle_script(&ctx.config_rc(), call, "settle");
        }
    }
}

/// The counter moves that settle reservations at `charge` each, in the windows current at
/// `now` (after a rollover only what a charge exceeds its reservation by).
#[cfg(feature = "higress")]
fn cluster_moves<'r>(
    cfg: &Config,
    charges: impl Iterator<Item = (&'r Reservation, u64)>,
    now: u64,
) -> Vec<(Counter, i64)> {
    let Some(redis) = cfg.redis.as_ref() else {
        return Vec::new();
    };
    let mut moves = Vec::new();
    for (r, actual) in charges {
        let Some(limit) = limit_of(cfg, &r.applied) else {
            continue;
        };
        for c in &r.counters {
            let current = Counter::new(
                redis.key_prefix(crate::config::DEFAULT_KEY_PREFIX),
                &limit.name,
                r.applied.id,
                c.secs,
                c.limit,
                now,
            );
            let delta = crate::cluster::settle_delta(c, &current, r.amount, actual);
            moves.push((current, delta));
        }
    }
    moves
}

/// The reply to an admission whose stream finished before it arrived (the client went
/// away). The request never went upstream, so whatever the script counted is given back:
/// the reservations are settled at a charge of 0.
#[cfg(feature = "higress")]
fn release_abandoned(cfg: &Rc<Config>, pending: &[Reservation], result: aigw::redis::RedisResult) {
    count_metric(
        "ai_token_ratelimit_requests_total",
        &[("result", "abandoned")],
        1,
    );
    let n: usize = pending.iter().map(|r| r.counters.len()).sum();
    let admitted = result
        .ok()
        .and_then(|v| crate::cluster::parse_admit(&v, n).ok())
        .is_some_and(|(admitted, _)| admitted);
    if !admitted {
        // Refused, failed, or NOSCRIPT: the script counted nothing.
        return;
    }
    let now = host::now_millis().unwrap_or(0);
    let moves = cluster_moves(cfg, pending.iter().map(|r| (r, 0)), now);
    if let Some(call) = crate::cluster::settle_call(&moves) {
        aigw::debug!("client left during admission; releasing its reservation");
        run_settle_script(cfg, call, "release");
    }
}

/// Runs the settling script bound to no stream (its reply may come after the stream is
/// gone): by SHA-1, then by text after `NOSCRIPT`. Failures are counted under `op`.
#[cfg(feature = "higress")]
fn run_settle_script(cfg: &Rc<Config>, call: crate::cluster::ScriptCall, op: &'static str) {
    let (Some(client), Some(scripts)) = (redis_client(cfg), cfg.scripts.as_ref()) else {
        return;
    };
    let command = call.evalsha(&scripts.settle);
    let retry = (client.clone(), Rc::clone(cfg));
    let sent = client.call_detached(&command, move |result| match result {
        Err(e) if e.is_noscript() => {
            let (client, cfg) = retry;
            let Some(scripts) = cfg.scripts.as_ref() else {
                return;
            };
            let sent = client.call_detached(&call.eval(&scripts.settle), move |result| {
                if let Err(e) = result {
                    settle_failed(op, &e.to_string());
                }
            });
            if let Err(e) = sent {
                settle_failed(op, &format!("refused: {e}"));
            }
        }
        Err(e) => settle_failed(op, &e.to_string()),
        Ok(_) => {}
    });
    if let Err(e) = sent {
        settle_failed(op, &format!("refused: {e}"));
    }
}

#[cfg(feature = "higress")]
fn settle_failed(op: &'static str, why: &str) {
    count_metric(
        "ai_token_ratelimit_store_errors_total",
        &[("store", "redis"), ("op", op)],
        1,
    );
    aigw::warn!("redis {op} failed: {why}");
}
