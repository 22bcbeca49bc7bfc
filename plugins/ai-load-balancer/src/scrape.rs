//! Scraping vLLM `/metrics` from the root context on ticks. Each backend is scraped once per
//! `metrics.interval_ms` by whichever worker claims its lease in shared data first; the
//! parsed figures go to shared data for every worker's picks.

use crate::config::{Config, ORIGINAL_DST_HEADER};
use crate::plugin::LoadBalancer;
use crate::state::{self, Keys, MetricsRecord};
use aigw::host;
use aigw::prelude::*;
use aigw::shared::{CasStore, HostStore};
use std::time::Duration;

/// One scrape to start.
struct Job {
    cluster: String,
    host: String,
    path: String,
    original_dst: bool,
    metrics_key: String,
    lease_key: String,
    timeout_ms: u64,
    interval_ms: u64,
}

/// Sets the tick period to the shortest scrape interval of the configurations (ticks off
/// when no configuration scrapes).
pub fn configure(root: &mut RootCtx<LoadBalancer>) -> Result<(), ConfigError> {
    let period = root
        .configs()
        .iter()
        .filter_map(|c| c.metrics.as_ref().map(|m| m.interval_ms))
        .min();
    let period = Duration::from_millis(period.unwrap_or(0));
    if let Err(e) = root.set_tick_period(period) {
        aigw::warn!("cannot set the scrape tick: {e}; metrics will be missing");
    }
    Ok(())
}

fn jobs(cfg: &Config) -> Vec<Job> {
    let Some(m) = &cfg.metrics else {
        return Vec::new();
    };
    let keys = Keys::new(cfg.set_id);
    cfg.backends
        .iter()
        .map(|b| Job {
            cluster: b
                .metrics_cluster
                .clone()
                .unwrap_or_else(|| m.cluster.clone()),
            host: b.host.clone(),
            path: m.path.clone(),
            original_dst: cfg.target_header == ORIGINAL_DST_HEADER,
            metrics_key: keys.metrics(&b.host),
            lease_key: keys.lease(&b.host),
            timeout_ms: m.timeout_ms,
            interval_ms: m.interval_ms,
        })
        .collect()
}

/// Starts the scrapes that are due.
pub fn tick(root: &mut RootCtx<LoadBalancer>) {
    let now = host::now_millis().unwrap_or(0);
    let jobs: Vec<Job> = root.configs().into_iter().flat_map(jobs).collect();
    for job in jobs {
        match state::claim_lease(&HostStore, &job.lease_key, now, job.interval_ms) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                aigw::debug!("scrape lease of {} not claimed: {e}", job.host);
                continue;
            }
        }
        let mut req = CallRequest::get(&job.host, &job.path).header("accept", "text/plain");
        if job.original_dst {
            req = req.header(ORIGINAL_DST_HEADER, &job.host);
        }
        let key = job.metrics_key;
        let backend = job.host.clone();
        let sent = root.http_call(
            &job.cluster,
            req,
            Duration::from_millis(job.timeout_ms),
            move |_root, result| store(&key, &backend, result),
        );
        if let Err(e) = sent {
            aigw::warn!("cannot scrape {} through {}: {e}", job.host, job.cluster);
        }
    }
}

/// Parses a scrape answer and publishes it; failures leave the old record to go stale.
fn store(key: &str, backend: &str, result: CallResult) {
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            aigw::debug!("scrape of {backend} failed: {e}");
            return;
        }
    };
    let Some(load) = crate::prom::parse_vllm(&String::from_utf8_lossy(&resp.body)) else {
        aigw::debug!("scrape of {backend} had no vLLM metrics");
        return;
    };
    let rec = MetricsRecord {
        load,
        at_ms: host::now_millis().unwrap_or(0),
    };
    if let Err(e) = HostStore.set(key, &rec.encode(), 0) {
        aigw::warn!("metrics of {backend} not stored: {e}");
    }
}
