//! `ShouldRateLimit` on Limitador, with envoyproxy/ratelimit's semantics: every descriptor's
//! counter is increased by `hits_addend` (0 means 1), and a descriptor is OVER_LIMIT when its
//! counter is above its limit afterwards. Hits of a refused request stay counted, as in
//! envoyproxy/ratelimit.

use crate::limits::Table;
use crate::messages::{self, DescriptorStatus, RateLimitRequest, RateLimitResponse};
use limitador::AsyncRateLimiter;

/// The service: its limits and the limiter with its storage.
pub struct Service {
    table: Table,
    limiter: AsyncRateLimiter,
}

/// What one request did, for the service's log line.
#[derive(Debug)]
pub struct Outcome {
    /// The answer.
    pub response: RateLimitResponse,
    /// The hits counted.
    pub hits: u64,
}

impl Service {
    /// A service holding `table`'s limits in `limiter`.
    pub fn new(table: Table, limiter: AsyncRateLimiter) -> Service {
        for l in table.limits() {
            limiter.add_limit(l.clone());
        }
        Service { table, limiter }
    }

    /// Answers one request; an error is a storage failure (the caller answers UNAVAILABLE).
    pub async fn should_rate_limit(&self, req: &RateLimitRequest) -> Result<Outcome, String> {
        let hits = u64::from(req.hits_addend.max(1));
        let delta = i64::try_from(hits).unwrap_or(i64::MAX);
        let mut statuses = Vec::with_capacity(req.descriptors.len());
        let mut overall = messages::OK;
        for d in &req.descriptors {
            let entries: Vec<(String, String)> = d
                .entries
                .iter()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect();
            let Some((known, values)) = self.table.lookup(&req.domain, &entries) else {
                statuses.push(DescriptorStatus {
                    code: messages::OK,
                    ..Default::default()
                });
                continue;
            };
            let ns = known.limit.namespace().clone();
            self.limiter
                .update_counters(&ns, &values, delta)
                .await
                .map_err(|e| format!("storage: {e}"))?;
            // Delta 0: reads the counter (value and expiry) without moving it.
            let check = self
                .limiter
                .check_rate_limited_and_update(&ns, &values, 0, true)
                .await
                .map_err(|e| format!("storage: {e}"))?;
            let counter = check.counters.iter().find(|c| c.limit() == &known.limit);
            let remaining = counter.and_then(|c| c.remaining()).unwrap_or(0).max(0);
            let reset = counter.and_then(|c| c.expires_in());
            let code = if check.limited {
                overall = messages::OVER_LIMIT;
                messages::OVER_LIMIT
            } else {
                messages::OK
            };
            statuses.push(DescriptorStatus {
                code,
                current_limit: Some(messages::RateLimit {
                    requests_per_unit: u32::try_from(known.spec.limit).unwrap_or(u32::MAX),
                    unit: messages::unit_of(known.spec.secs),
                    name: known.spec.name.clone(),
                }),
                limit_remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                duration_until_reset: reset.map(|r| messages::Duration {
                    seconds: i64::try_from(r.as_secs()).unwrap_or(i64::MAX),
                    nanos: i32::try_from(r.subsec_nanos()).unwrap_or(0),
                }),
            });
        }
        Ok(Outcome {
            response: RateLimitResponse {
                overall_code: overall,
                statuses,
            },
            hits,
        })
    }
}
