//! Per-backend state in shared data, visible to every worker VM: in-flight count, passive
//! health, latency EWMA (one record per backend), scraped metrics, scrape leases, the
//! round-robin counter and the prefix index. Every update is a CAS loop
//! ([`aigw::shared::update`]).

use crate::config::{Health, Latency};
use aigw::shared::{self, CasStore, SharedError};

/// A backend's record (eight little-endian u64 fields).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendState {
    /// Requests picked for this backend and not finished yet.
    pub in_flight: u64,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// Ejections so far (each doubles the next period; each success takes one off).
    pub ejections: u64,
    /// Ejected until this time (ms); 0 when never ejected.
    pub ejected_until_ms: u64,
    /// Latency EWMA in microseconds (0 with no sample).
    pub ewma_us: u64,
    /// When the EWMA was last updated (ms).
    pub ewma_at_ms: u64,
    /// Latency samples taken.
    pub samples: u64,
}

const FIELDS: usize = 8;

impl BackendState {
    /// Decodes a record; a malformed one reads as empty.
    pub fn decode(bytes: Option<&[u8]>) -> BackendState {
        let mut f = [0u64; FIELDS];
        if let Some(b) = bytes.filter(|b| b.len() == FIELDS * 8) {
            for (slot, chunk) in f.iter_mut().zip(b.chunks_exact(8)) {
                let mut a = [0u8; 8];
                a.copy_from_slice(chunk);
                *slot = u64::from_le_bytes(a);
            }
        }
        let [in_flight, consecutive_failures, ejections, ejected_until_ms, ewma_us, ewma_at_ms, samples, _] =
            f;
        BackendState {
            in_flight,
            consecutive_failures,
            ejections,
            ejected_until_ms,
            ewma_us,
            ewma_at_ms,
            samples,
        }
    }

    /// Encodes the record.
    pub fn encode(&self) -> Vec<u8> {
        let f = [
            self.in_flight,
            self.consecutive_failures,
            self.ejections,
            self.ejected_until_ms,
            self.ewma_us,
            self.ewma_at_ms,
            self.samples,
            0,
        ];
        f.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// Whether the backend may receive traffic at `now_ms`.
    pub fn available(&self, now_ms: u64) -> bool {
        self.ejected_until_ms <= now_ms
    }

    /// The EWMA decayed by idle time: halves every `half_life_ms` since the last sample, so an
    /// idle (e.g. recovered) backend looks faster over time and gets probed again.
    pub fn effective_latency_us(&self, now_ms: u64, half_life_ms: u64) -> f64 {
        if self.samples == 0 {
            return 0.0;
        }
        let age = now_ms.saturating_sub(self.ewma_at_ms) as f64;
        self.ewma_us as f64 * 0.5f64.powf(age / half_life_ms.max(1) as f64)
    }

    /// Records a success.
    pub fn success(&mut self) {
        self.consecutive_failures = 0;
        self.ejections = self.ejections.saturating_sub(1);
    }

    /// Records a failure; ejects when the threshold is reached. Returns whether it ejected.
    pub fn failure(&mut self, now_ms: u64, h: &Health) -> bool {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.consecutive_failures < u64::from(h.consecutive_failures) {
            return false;
        }
        let shift = u32::try_from(self.ejections.min(32)).unwrap_or(32);
        let period = h
            .base_ejection_ms
            .saturating_mul(1u64 << shift)
            .min(h.max_ejection_ms);
        self.ejections = self.ejections.saturating_add(1);
        self.consecutive_failures = 0;
        self.ejected_until_ms = now_ms.saturating_add(period);
        true
    }

    /// Folds a latency sample (µs) into the decayed EWMA.
    pub fn sample(&mut self, sample_us: u64, now_ms: u64, l: &Latency) {
        let next = if self.samples == 0 {
            sample_us as f64
        } else {
            let old = self.effective_latency_us(now_ms, l.half_life_ms);
            l.alpha * sample_us as f64 + (1.0 - l.alpha) * old
        };
        self.ewma_us = next.round() as u64;
        self.ewma_at_ms = now_ms;
        self.samples = self.samples.saturating_add(1);
    }
}

/// Shared-data keys of one backend set.
#[derive(Debug, Clone)]
pub struct Keys {
    set: u64,
}

impl Keys {
    /// Keys for the backend set `set_id`.
    pub fn new(set_id: u64) -> Keys {
        Keys { set: set_id }
    }

    /// The record of backend `host`.
    pub fn backend(&self, host: &str) -> String {
        format!("alb|b|{host}")
    }

    /// The scraped metrics of backend `host`.
    pub fn metrics(&self, host: &str) -> String {
        format!("alb|m|{host}")
    }

    /// The scrape lease of backend `host`.
    pub fn lease(&self, host: &str) -> String {
        format!("alb|l|{host}")
    }

    /// The round-robin counter of the set.
    pub fn rr(&self) -> String {
        format!("alb|rr|{:016x}", self.set)
    }

    /// A prefix-index slot of the set.
    pub fn prefix_slot(&self, slot: u64) -> String {
        format!("alb|px|{:016x}|{slot}", self.set)
    }
}

/// Reads a backend record (empty when absent).
pub fn read<S: CasStore + ?Sized>(store: &S, key: &str) -> Result<BackendState, SharedError> {
    Ok(BackendState::decode(
        store.get(key)?.as_ref().map(|(v, _)| v.as_slice()),
    ))
}

/// Applies `f` to a backend record atomically and returns the result of `f`.
pub fn modify<S, T, F>(store: &S, key: &str, mut f: F) -> Result<T, SharedError>
where
    S: CasStore + ?Sized,
    F: FnMut(&mut BackendState) -> T,
{
    shared::update(store, key, |cur| {
        let mut st = BackendState::decode(cur);
        let out = f(&mut st);
        (Some(st.encode()), out)
    })
}

/// Scraped metrics of a backend and when they were scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MetricsRecord {
    /// The figures.
    pub load: crate::prom::VllmLoad,
    /// Scrape time (ms).
    pub at_ms: u64,
}

impl MetricsRecord {
    /// Encodes as four little-endian u64 (f64 bits for the figures).
    pub fn encode(&self) -> Vec<u8> {
        [
            self.load.waiting.to_bits(),
            self.load.running.to_bits(),
            self.load.kv_cache.to_bits(),
            self.at_ms,
        ]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
    }

    /// Decodes; `None` when malformed.
    pub fn decode(bytes: &[u8]) -> Option<MetricsRecord> {
        if bytes.len() != 32 {
            return None;
        }
        let mut f = [0u64; 4];
        for (slot, chunk) in f.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut a = [0u8; 8];
            a.copy_from_slice(chunk);
            *slot = u64::from_le_bytes(a);
        }
        let [w, r, k, at_ms] = f;
        Some(MetricsRecord {
            load: crate::prom::VllmLoad {
                waiting: f64::from_bits(w),
                running: f64::from_bits(r),
                kv_cache: f64::from_bits(k),
            },
            at_ms,
        })
    }
}

/// Claims the scrape lease of a backend: true when the last claim is at least `interval_ms`
/// old (or absent), in which case this caller scrapes. One worker wins per period.
pub fn claim_lease<S: CasStore + ?Sized>(
    store: &S,
    key: &str,
    now_ms: u64,
    interval_ms: u64,
) -> Result<bool, SharedError> {
    shared::update(store, key, |cur| {
        let last = cur
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes);
        match last {
            Some(t) if now_ms.saturating_sub(t) < interval_ms && t <= now_ms => (None, false),
            _ => (Some(now_ms.to_le_bytes().to_vec()), true),
        }
    })
}

/// Reads a prefix-index slot: the backend index stored for `hash`, if the slot holds it.
pub fn prefix_lookup<S: CasStore + ?Sized>(store: &S, key: &str, hash: u64) -> Option<usize> {
    let (v, _) = store.get(key).ok().flatten()?;
    if v.len() != 16 {
        return None;
    }
    let h = u64::from_le_bytes(<[u8; 8]>::try_from(v.get(..8)?).ok()?);
    let b = u64::from_le_bytes(<[u8; 8]>::try_from(v.get(8..)?).ok()?);
    if h != hash {
        return None;
    }
    usize::try_from(b).ok()
}

/// Stores `hash → backend` in a prefix-index slot (overwriting whatever it held).
pub fn prefix_store<S: CasStore + ?Sized>(
    store: &S,
    key: &str,
    hash: u64,
    backend: usize,
) -> Result<(), SharedError> {
    let mut v = hash.to_le_bytes().to_vec();
    v.extend_from_slice(&(backend as u64).to_le_bytes());
    store.set(key, &v, 0).map_err(SharedError::Host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw::shared::MemStore;

    #[test]
    fn ejection_grows_and_recovers() {
        let h = Health {
            consecutive_failures: 2,
            base_ejection_ms: 1_000,
            max_ejection_ms: 3_000,
        };
        let mut s = BackendState::default();
        assert!(!s.failure(0, &h));
        assert!(s.failure(0, &h));
        assert_eq!(s.ejected_until_ms, 1_000);
        assert!(!s.available(999) && s.available(1_000));
        s.failure(1_000, &h);
        assert!(s.failure(1_000, &h));
        assert_eq!(s.ejected_until_ms, 3_000);
        s.failure(3_000, &h);
        s.failure(3_000, &h);
        assert_eq!(s.ejected_until_ms, 6_000, "capped at max_ejection_ms");
        s.success();
        assert_eq!((s.ejections, s.consecutive_failures), (2, 0));
    }

    #[test]
    fn ewma_decays_when_idle() {
        let l = Latency {
            alpha: 0.5,
            half_life_ms: 1_000,
            ..Latency::default()
        };
        let mut s = BackendState::default();
        s.sample(1_000, 0, &l);
        assert_eq!(s.ewma_us, 1_000);
        s.sample(3_000, 0, &l);
        assert_eq!(s.ewma_us, 2_000);
        assert_eq!(s.effective_latency_us(1_000, 1_000), 1_000.0);
        assert_eq!(s.effective_latency_us(2_000, 1_000), 500.0);
        // A new sample after idling mixes with the decayed value.
        s.sample(500, 2_000, &l);
        assert_eq!(s.ewma_us, 500);
    }

    #[test]
    fn records_round_trip_and_leases() {
        let store = MemStore::new();
        modify(&store, "k", |s| s.in_flight += 2).unwrap();
        modify(&store, "k", |s| s.in_flight -= 1).unwrap();
        assert_eq!(read(&store, "k").unwrap().in_flight, 1);
        assert!(claim_lease(&store, "l", 100, 1_000).unwrap());
        assert!(!claim_lease(&store, "l", 1_099, 1_000).unwrap());
        assert!(claim_lease(&store, "l", 1_100, 1_000).unwrap());
        prefix_store(&store, "p", 42, 3).unwrap();
        assert_eq!(prefix_lookup(&store, "p", 42), Some(3));
        assert_eq!(prefix_lookup(&store, "p", 43), None);
        let m = MetricsRecord {
            load: crate::prom::VllmLoad {
                waiting: 1.5,
                running: 2.0,
                kv_cache: 0.25,
            },
            at_ms: 7,
        };
        assert_eq!(MetricsRecord::decode(&m.encode()), Some(m));
    }
}
