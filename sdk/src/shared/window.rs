//! Fixed and sliding window counters (the arithmetic is pure; storage goes through
//! [`CasStore`]).

use super::{read_u64s, update, write_u64s, CasStore, SharedError};

/// The outcome of a rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the amount fit under the limit (and was counted).
    pub allowed: bool,
    /// The usage after this call (including the amount when allowed).
    pub count: u64,
    /// What is left under the limit.
    pub remaining: u64,
    /// Milliseconds until the current window ends.
    pub reset_ms: u64,
}

impl Decision {
    /// Whether `amount` more fits on top of the usage `count` under `limit`: allowed with the
    /// new count, or refused with the old one.
    fn check(count: u64, amount: u64, limit: u64, reset_ms: u64) -> Decision {
        let after = count.saturating_add(amount);
        if after <= limit {
            Decision {
                allowed: true,
                count: after,
                remaining: limit - after,
                reset_ms,
            }
        } else {
            Decision {
                allowed: false,
                count,
                remaining: limit.saturating_sub(count),
                reset_ms,
            }
        }
    }
}

/// Counts per fixed window of `window_ms` milliseconds aligned to the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindow {
    window_ms: u64,
}

impl FixedWindow {
    /// A window of `window_ms` milliseconds (0 is treated as 1).
    pub fn new(window_ms: u64) -> FixedWindow {
        FixedWindow {
            window_ms: window_ms.max(1),
        }
    }

    /// The start of the window containing `now_ms`.
    pub fn start(&self, now_ms: u64) -> u64 {
        now_ms - now_ms % self.window_ms
    }

    /// Milliseconds from `now_ms` to the end of its window.
    pub fn reset_ms(&self, now_ms: u64) -> u64 {
        self.start(now_ms) + self.window_ms - now_ms
    }

    /// The count a stored record means at `now_ms` (0 for a stale or missing record).
    fn current(&self, record: Option<&[u8]>, now_ms: u64) -> u64 {
        match record.and_then(read_u64s::<2>) {
            Some([start, count]) if start == self.start(now_ms) => count,
            _ => 0,
        }
    }

    /// The usage of the current window.
    pub fn usage<S: CasStore + ?Sized>(
        &self,
        store: &S,
        key: &str,
        now_ms: u64,
    ) -> Result<u64, SharedError> {
        let record = store.get(key)?;
        Ok(self.current(record.as_ref().map(|(v, _)| v.as_slice()), now_ms))
    }

    /// Adds `amount` unconditionally (e.g. tokens counted after a response) and returns the
    /// new usage.
    pub fn add<S: CasStore + ?Sized>(
        &self,
        store: &S,
        key: &str,
        now_ms: u64,
        amount: u64,
    ) -> Result<u64, SharedError> {
        update(store, key, |record| {
            let next = self.current(record, now_ms).saturating_add(amount);
            (Some(write_u64s(&[self.start(now_ms), next])), next)
        })
    }

    /// Counts `amount` only if the usage stays within `limit`.
    pub fn try_acquire<S: CasStore + ?Sized>(
        &self,
        store: &S,
        key: &str,
        now_ms: u64,
        amount: u64,
        limit: u64,
    ) -> Result<Decision, SharedError> {
        let reset_ms = self.reset_ms(now_ms);
        update(store, key, |record| {
            let d = Decision::check(self.current(record, now_ms), amount, limit, reset_ms);
            let write = d
                .allowed
                .then(|| write_u64s(&[self.start(now_ms), d.count]));
            (write, d)
        })
    }
}

/// An approximate sliding window: the current fixed window's count plus the previous
/// window's count weighted by how much of it still overlaps the last `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindow {
    fixed: FixedWindow,
}

impl SlidingWindow {
    /// A sliding window of `window_ms` milliseconds (0 is treated as 1).
    pub fn new(window_ms: u64) -> SlidingWindow {
        SlidingWindow {
            fixed: FixedWindow::new(window_ms),
        }
    }

    /// The (previous, current) bucket counts a record means at `now_ms`.
    fn buckets(&self, record: Option<&[u8]>, now_ms: u64) -> (u64, u64) {
        let start = self.fixed.start(now_ms);
        match record.and_then(read_u64s::<3>) {
            Some([s, current, previous]) if s == start => (previous, current),
            Some([s, current, _]) if s.checked_add(self.fixed.window_ms) == Some(start) => {
                (current, 0)
            }
            _ => (0, 0),
        }
    }

    /// The weighted usage for buckets at `now_ms`.
    pub fn estimate(&self, previous: u64, current: u64, now_ms: u64) -> u64 {
        let w = u128::from(self.fixed.window_ms);
        let elapsed = u128::from(now_ms - self.fixed.start(now_ms));
        let weighted = u128::from(previous) * (w - elapsed) / w;
        let total = weighted + u128::from(current);
        u64::try_from(total).unwrap_or(u64::MAX)
    }

    /// The weighted usage now.
    pub fn usage<S: CasStore + ?Sized>(
        &self,
        store: &S,
        key: &str,
        now_ms: u64,
    ) -> Result<u64, SharedError> {
        let record = store.get(key)?;
        let (p, c) = self.buckets(record.as_ref().map(|(v, _)| v.as_slice()), now_ms);
        Ok(self.estimate(p, c, now_ms))
    }

    /// Adds `amount` unconditionally and returns the new weighted usage.
    pub fn add<S: CasStore + ?Sized>(
        &self,
        store: &S,
        key: &str,
        now_ms: u64,
        amount: u64,
    ) -> Result<u64, SharedError> {
        update(store, key, |record| {
            let (p, c) = self.buckets(record, now_ms);
            let c = c.saturating_add(amount);
            (
                Some(write_u64s(&[self.fixed.start(now_ms), c, p])),
                self.estimate(p, c, now_ms),
            )
        })
    }

    /// Counts `amount` only if the weighted usage stays within `limit`. `reset_ms` is the time
    /// to the end of the current bucket (when the weighting next drops markedly).
    pub fn try_acquire<S: CasStore + ?Sized>(
        &self,
        store: &S,
        key: &str,
        now_ms: u64,
        amount: u64,
        limit: u64,
    ) -> Result<Decision, SharedError> {
        let reset_ms = self.fixed.reset_ms(now_ms);
        update(store, key, |record| {
            let (p, c) = self.buckets(record, now_ms);
            let d = Decision::check(self.estimate(p, c, now_ms), amount, limit, reset_ms);
            let write = d
                .allowed
                .then(|| write_u64s(&[self.fixed.start(now_ms), c.saturating_add(amount), p]));
            (write, d)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::tests::Interfering;
    use crate::shared::MemStore;
    use std::cell::Cell;

    #[test]
    fn fixed_window_arithmetic() {
        let w = FixedWindow::new(1000);
        assert_eq!(w.start(0), 0);
        assert_eq!(w.start(999), 0);
        assert_eq!(w.start(1000), 1000);
        assert_eq!(w.reset_ms(250), 750);
        assert_eq!(w.reset_ms(1000), 1000);
        assert_eq!(FixedWindow::new(0).start(5), 5);
    }

    #[test]
    fn fixed_window_counts_and_expires_in_place() {
        let store = MemStore::new();
        let w = FixedWindow::new(1000);
        assert_eq!(w.add(&store, "k", 100, 3).unwrap(), 3);
        assert_eq!(w.add(&store, "k", 900, 4).unwrap(), 7);
        assert_eq!(w.usage(&store, "k", 999).unwrap(), 7);
        // Next window: the stale record reads as 0 and is overwritten, not a new key.
        assert_eq!(w.usage(&store, "k", 1000).unwrap(), 0);
        assert_eq!(w.add(&store, "k", 1500, 1).unwrap(), 1);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn fixed_window_limit() {
        let store = MemStore::new();
        let w = FixedWindow::new(1000);
        let d = w.try_acquire(&store, "k", 10, 6, 10).unwrap();
        assert_eq!(
            d,
            Decision {
                allowed: true,
                count: 6,
                remaining: 4,
                reset_ms: 990
            }
        );
        let d = w.try_acquire(&store, "k", 20, 5, 10).unwrap();
        assert_eq!(
            d,
            Decision {
                allowed: false,
                count: 6,
                remaining: 4,
                reset_ms: 980
            }
        );
        let d = w.try_acquire(&store, "k", 30, 4, 10).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
    }

    #[test]
    fn fixed_window_no_lost_update_under_conflicts() {
        let w = FixedWindow::new(1000);
        // The interfering writer adds 1 in the same window.
        let store = Interfering {
            inner: MemStore::new(),
            conflicts: Cell::new(0),
            interfere: |v: Option<&[u8]>| {
                let [s, c] = v.and_then(read_u64s::<2>).unwrap_or([0, 0]);
                write_u64s(&[s, c + 1])
            },
        };
        w.add(&store, "k", 10, 1).unwrap();
        store.conflicts.set(2);
        let d = w.try_acquire(&store, "k", 20, 5, 100).unwrap();
        assert_eq!(d.count, 8);
        assert_eq!(w.usage(&store, "k", 30).unwrap(), 8);
    }

    #[test]
    fn sliding_window_weights_previous_bucket() {
        let store = MemStore::new();
        let w = SlidingWindow::new(1000);
        assert_eq!(w.add(&store, "k", 500, 10).unwrap(), 10);
        // 25% into the next bucket: 75% of the previous 10 still counts.
        assert_eq!(w.usage(&store, "k", 1250).unwrap(), 7);
        assert_eq!(w.add(&store, "k", 1250, 2).unwrap(), 9);
        // Two buckets later everything expired.
        assert_eq!(w.usage(&store, "k", 3000).unwrap(), 0);
        assert_eq!(w.estimate(0, 0, 123), 0);
        assert_eq!(w.estimate(u64::MAX, u64::MAX, 0), u64::MAX);
    }

    #[test]
    fn sliding_window_limit() {
        let store = MemStore::new();
        let w = SlidingWindow::new(1000);
        assert!(w.try_acquire(&store, "k", 900, 10, 10).unwrap().allowed);
        let d = w.try_acquire(&store, "k", 1100, 2, 10).unwrap();
        assert!(!d.allowed, "90% of the previous 10 plus 2 exceeds 10");
        assert_eq!(d.count, 9);
        assert_eq!(d.remaining, 1);
        let d = w.try_acquire(&store, "k", 1800, 2, 10).unwrap();
        assert!(d.allowed, "20% of 10 plus 2 fits");
        assert_eq!(d.count, 4);
        assert_eq!(d.reset_ms, 200);
    }
}
