//! The policies as pure functions over a snapshot of the available backends.

use crate::config::Weights;
use crate::state::{BackendState, MetricsRecord};

/// One available backend as a policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// Index into the configured backends.
    pub index: usize,
    /// Configured weight (>= 1).
    pub weight: u32,
    /// Its shared record.
    pub state: BackendState,
    /// Fresh scraped metrics, if any.
    pub metrics: Option<MetricsRecord>,
}

/// The candidate with the lowest score; ties go to the first one at or after position
/// `rotate % len`, so equal backends take turns. `None` when `cands` is empty.
pub fn lowest<F>(cands: &[Candidate], rotate: u64, mut score: F) -> Option<usize>
where
    F: FnMut(&Candidate) -> f64,
{
    let n = cands.len();
    if n == 0 {
        return None;
    }
    let start = usize::try_from(rotate % n as u64).unwrap_or(0);
    let mut best: Option<(f64, usize)> = None;
    for k in 0..n {
        let Some(c) = cands.get((start + k) % n) else {
            continue;
        };
        let s = score(c);
        if best.is_none_or(|(b, _)| s < b) {
            best = Some((s, c.index));
        }
    }
    best.map(|(_, i)| i)
}

/// Weighted round robin: walks the smooth WRR `sequence` from position `counter` to the
/// first backend that is available.
pub fn round_robin(sequence: &[usize], counter: u64, cands: &[Candidate]) -> Option<usize> {
    let n = sequence.len();
    if n == 0 {
        return None;
    }
    let start = usize::try_from(counter % n as u64).unwrap_or(0);
    (0..n)
        .filter_map(|k| sequence.get((start + k) % n).copied())
        .find(|i| cands.iter().any(|c| c.index == *i))
}

/// Fewest in-flight requests per unit of weight.
pub fn least_in_flight(cands: &[Candidate], rotate: u64) -> Option<usize> {
    lowest(cands, rotate, |c| {
        c.state.in_flight as f64 / f64::from(c.weight)
    })
}

/// Lowest decayed latency EWMA × (in-flight + 1) / weight. A backend without samples scores
/// 0 and is tried first.
pub fn latency(cands: &[Candidate], rotate: u64, now_ms: u64, half_life_ms: u64) -> Option<usize> {
    lowest(cands, rotate, |c| {
        c.state.effective_latency_us(now_ms, half_life_ms) * (c.state.in_flight as f64 + 1.0)
            / f64::from(c.weight)
    })
}

/// The metrics score of a candidate with fresh metrics.
pub fn metrics_score(c: &Candidate, m: &MetricsRecord, w: &Weights) -> f64 {
    w.waiting * m.load.waiting
        + w.running * m.load.running
        + w.kv_cache * m.load.kv_cache
        + w.in_flight * c.state.in_flight as f64
}

/// Lowest metrics score when every candidate has fresh metrics; otherwise least in-flight
/// (mixing scraped and unscraped backends would compare unlike figures). The flag says
/// whether the metrics were used.
pub fn metrics(cands: &[Candidate], rotate: u64, w: &Weights) -> (Option<usize>, bool) {
    if cands.iter().all(|c| c.metrics.is_some()) {
        let pick = lowest(cands, rotate, |c| {
            c.metrics.map_or(f64::MAX, |m| metrics_score(c, &m, w))
        });
        (pick, true)
    } else {
        (least_in_flight(cands, rotate), false)
    }
}

/// Bounded load: whether `affine` can take one more request, i.e. its in-flight count plus
/// one stays within `ceil(load_factor × (total in-flight + 1) / candidates)`.
pub fn within_bound(cands: &[Candidate], affine: usize, load_factor: f64) -> bool {
    let n = cands.len();
    let Some(a) = cands.iter().find(|c| c.index == affine) else {
        return false;
    };
    if n == 0 {
        return false;
    }
    let total: u64 = cands.iter().map(|c| c.state.in_flight).sum();
    let cap = (load_factor * (total as f64 + 1.0) / n as f64).ceil();
    (a.state.in_flight as f64 + 1.0) <= cap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(index: usize, weight: u32, in_flight: u64) -> Candidate {
        Candidate {
            index,
            weight,
            state: BackendState {
                in_flight,
                ..Default::default()
            },
            metrics: None,
        }
    }

    #[test]
    fn ties_rotate_and_least_wins() {
        let c = [cand(0, 1, 0), cand(1, 1, 0), cand(2, 1, 0)];
        let picks: Vec<_> = (0..6).map(|r| least_in_flight(&c, r).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        let c = [cand(0, 1, 2), cand(1, 1, 1), cand(2, 2, 1)];
        assert_eq!(least_in_flight(&c, 0), Some(2), "1/2 beats 1/1");
    }

    #[test]
    fn wrr_skips_unavailable() {
        let seq = crate::config::smooth_wrr(&[3, 1]);
        assert_eq!(seq, [0, 0, 1, 0]);
        let only0 = [cand(0, 3, 0)];
        assert_eq!(round_robin(&seq, 2, &only0), Some(0));
        assert_eq!(round_robin(&seq, 2, &[]), None);
    }

    #[test]
    fn bounded_load() {
        let c = [cand(0, 1, 2), cand(1, 1, 0), cand(2, 1, 0)];
        // total 2 → cap ceil(1.25 × 3 / 3) = 2; backend 0 would have 3.
        assert!(!within_bound(&c, 0, 1.25));
        assert!(within_bound(&c, 1, 1.25));
        let c = [cand(0, 1, 1), cand(1, 1, 1), cand(2, 1, 1)];
        // total 3 → cap ceil(1.25 × 4 / 3) = 2.
        assert!(within_bound(&c, 0, 1.25));
    }
}
