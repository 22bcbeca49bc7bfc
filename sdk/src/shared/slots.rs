//! Bounded tables of multi-window counters in shared data, visible to every worker VM of one
//! gateway process, updated with compare-and-swap loops. This is what a rate limiter with many
//! identities needs: [`FixedWindow`](super::FixedWindow) keeps one key per identity forever,
//! a [`SlotTable`] keeps at most `slots` keys per limit and reclaims expired ones.
//!
//! Each table owns counter slots (`<namespace>|<name>|<windows>s<slots>|<slot>`).
//! A slot holds one identity and all windows of the limit:
//! `id: u64, (window_start_ms: u64, count: u64) * windows`, little-endian. An identity lives
//! in one of [`PROBES`] consecutive slots from `id % slots`; a slot whose windows have all
//! ended is free and is taken over by the next identity that needs one, so expired windows
//! are reclaimed and the number of keys never exceeds `slots` per limit (shared data has no
//! delete). Checking and charging every window of a limit is one CAS write, so a limit's
//! windows never disagree.
//!
//! Slots are created empty at configure time: later writes are all conditional on the CAS
//! token they read, which is what makes concurrent updates exact (no create-if-absent exists
//! in the ABI, so a slot first created by two VMs at the same instant could lose one update;
//! creating them before traffic avoids that).

//!
//! ```
//! use aigw::shared::{MemStore, SlotTable, WindowLimit};
//!
//! let store = MemStore::new();
//! // 100 tokens a minute and 1000 a day, for up to 64 identities at a time.
//! let windows = [WindowLimit::new(60, 100), WindowLimit::new(86_400, 1000)];
//! let table = SlotTable::new("rl", "per-user", 64, &windows);
//! table.create_slots(&store).unwrap();
//! let alice = 42; // a hash of the identity
//! let check = table.acquire(&store, alice, 1_000, 60).unwrap();
//! assert!(check.allowed && check.windows[0].remaining() == 40);
//! // The request really used 30 tokens: give back the rest of the reservation.
//! let starts: Vec<u64> = check.windows.iter().map(|w| w.start_ms).collect();
//! table.settle(&store, alice, 2_000, &starts, 60, 30).unwrap();
//! assert!(!table.acquire(&store, alice, 3_000, 71).unwrap().allowed);
//! ```

use super::{CasStore, SharedError, MAX_ATTEMPTS};
use crate::host::HostError;
use std::fmt;

/// One window of a [`SlotTable`]: its length and the most it may count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    /// Length in seconds.
    pub secs: u64,
    /// The most units (tokens, requests) per window.
    pub limit: u64,
}

impl WindowLimit {
    /// A window of `secs` seconds allowing `limit` units.
    pub const fn new(secs: u64, limit: u64) -> WindowLimit {
        WindowLimit { secs, limit }
    }
}

/// Consecutive slots an identity may occupy.
pub const PROBES: u32 = 8;

/// Why a local update failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// The host refused a read or write, or every attempt met a concurrent writer.
    Shared(SharedError),
    /// Every slot an identity may use holds another identity with a live window.
    TableFull,
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotError::Shared(e) => write!(f, "{e}"),
            SlotError::TableFull => f.write_str(
                "counter table full (raise the table's slot count): every slot for this identity holds a live window",
            ),
        }
    }
}

impl From<HostError> for SlotError {
    fn from(e: HostError) -> Self {
        SlotError::Shared(SharedError::Host(e))
    }
}

/// One window's state after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    /// The window's limit.
    pub limit: u64,
    /// Usage of the current window (after the amount when admitted).
    pub used: u64,
    /// Milliseconds until the window ends.
    pub reset_ms: u64,
    /// Start of the current window (ms since the epoch).
    pub start_ms: u64,
    /// Whether the amount fitted in this window.
    pub fits: bool,
}

impl WindowState {
    /// What is left.
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

/// The result of an admission check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Whether every window had room (and the amount was counted).
    pub allowed: bool,
    /// Per window, in the limit's order.
    pub windows: Vec<WindowState>,
}

/// The start of the window of `secs` seconds containing `now_ms`.
pub fn window_start(now_ms: u64, secs: u64) -> u64 {
    let len = secs.saturating_mul(1000).max(1);
    now_ms - now_ms % len
}

/// Whether `amount` fits on top of `used` under `limit`. An amount of 0 (no estimate)
/// still needs one unit of room: a used-up window rejects.
pub fn window_fits(used: u64, amount: u64, limit: u64) -> bool {
    used.saturating_add(amount.max(1)) <= limit
}

/// The slot table of one limit: where its counters live and what its windows are.
#[derive(Debug, Clone, Copy)]
pub struct SlotTable<'a> {
    /// A prefix shared by the tables of one plugin (keeps plugins apart in shared data).
    pub namespace: &'a str,
    /// The limit's name.
    pub name: &'a str,
    /// Number of slots: the most identities with a live window at once.
    pub slots: u32,
    /// The limit's windows, all checked and charged together.
    pub windows: &'a [WindowLimit],
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    id: u64,
    wins: Vec<(u64, u64)>,
}

impl<'a> SlotTable<'a> {
    /// A table in `namespace` named `name` with `slots` slots and these windows.
    pub fn new(
        namespace: &'a str,
        name: &'a str,
        slots: u32,
        windows: &'a [WindowLimit],
    ) -> SlotTable<'a> {
        SlotTable {
            namespace,
            name,
            slots,
            windows,
        }
    }

    /// The shared-data key of a slot. The window lengths and slot count are part of it, so
    /// changing them starts a fresh table instead of misreading old records.
    pub fn key(&self, slot: u32) -> String {
        let mut k = String::with_capacity(self.namespace.len() + self.name.len() + 32);
        k.push_str(self.namespace);
        k.push('|');
        k.push_str(self.name);
        k.push('|');
        for (i, w) in self.windows.iter().enumerate() {
            if i > 0 {
                k.push('.');
            }
            k.push_str(&w.secs.to_string());
        }
        k.push('s');
        k.push_str(&self.slots.to_string());
        k.push('|');
        k.push_str(&slot.to_string());
        k
    }

    fn empty(&self) -> Record {
        Record {
            id: 0,
            wins: vec![(0, 0); self.windows.len()],
        }
    }

    fn decode(&self, bytes: &[u8]) -> Option<Record> {
        if bytes.len() != 8 + 16 * self.windows.len() {
            return None;
        }
        let mut words = bytes
            .chunks_exact(8)
            .map(|c| c.try_into().map(u64::from_le_bytes).unwrap_or(0));
        let id = words.next()?;
        let mut wins = Vec::with_capacity(self.windows.len());
        for _ in self.windows {
            wins.push((words.next()?, words.next()?));
        }
        Some(Record { id, wins })
    }

    fn encode(rec: &Record) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 16 * rec.wins.len());
        out.extend_from_slice(&rec.id.to_le_bytes());
        for (s, c) in &rec.wins {
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&c.to_le_bytes());
        }
        out
    }

    /// Whether any window of a record is the current one.
    fn live(&self, rec: &Record, now_ms: u64) -> bool {
        rec.id != 0
            && self
                .windows
                .iter()
                .zip(&rec.wins)
                .any(|(w, (start, _))| *start == window_start(now_ms, w.secs))
    }

    /// The slot of `id` (its record), or else the first free slot (an empty record), with
    /// the CAS token to write it; `None` when every probed slot is taken.
    fn probe<S: CasStore + ?Sized>(
        &self,
        store: &S,
        id: u64,
        now_ms: u64,
    ) -> Result<Option<(u32, Record, u32, bool)>, SlotError> {
        let slots = self.slots.max(1);
        let first = (id % u64::from(slots)) as u32;
        let mut free = None;
        for p in 0..PROBES.min(slots) {
            let slot = (first + p) % slots;
            let (rec, cas) = match store.get(&self.key(slot))? {
                Some((bytes, cas)) => (self.decode(&bytes), cas),
                None => (None, 0),
            };
            match rec {
                Some(rec) if rec.id == id => return Ok(Some((slot, rec, cas, true))),
                Some(rec) if self.live(&rec, now_ms) => {}
                _ => {
                    if free.is_none() {
                        free = Some((slot, self.empty(), cas, false));
                    }
                }
            }
        }
        Ok(free)
    }

    /// The current usage of each window for a record (0 for a stale window).
    fn usage(&self, rec: &Record, now_ms: u64) -> Vec<(u64, u64)> {
        self.windows
            .iter()
            .zip(&rec.wins)
            .map(|(w, (start, count))| {
                let cur = window_start(now_ms, w.secs);
                (cur, if *start == cur { *count } else { 0 })
            })
            .collect()
    }

    fn states(
        &self,
        usage: &[(u64, u64)],
        amount: u64,
        now_ms: u64,
        admit: bool,
    ) -> Vec<WindowState> {
        self.windows
            .iter()
            .zip(usage)
            .map(|(w, (start, used))| {
                let len = w.secs.saturating_mul(1000);
                WindowState {
                    limit: w.limit,
                    used: if admit {
                        used.saturating_add(amount)
                    } else {
                        *used
                    },
                    reset_ms: (start + len).saturating_sub(now_ms),
                    start_ms: *start,
                    fits: window_fits(*used, amount, w.limit),
                }
            })
            .collect()
    }

    /// Counts `amount` in every window if it fits in all of them.
    pub fn acquire<S: CasStore + ?Sized>(
        &self,
        store: &S,
        id: u64,
        now_ms: u64,
        amount: u64,
    ) -> Result<Check, SlotError> {
        for _ in 0..MAX_ATTEMPTS {
            let Some((slot, rec, cas, _)) = self.probe(store, id, now_ms)? else {
                return Err(SlotError::TableFull);
            };
            let usage = self.usage(&rec, now_ms);
            let states = self.states(&usage, amount, now_ms, true);
            if !states.iter().all(|s| s.fits) {
                return Ok(Check {
                    allowed: false,
                    windows: self.states(&usage, amount, now_ms, false),
                });
            }
            let next = Record {
                id,
                wins: usage
                    .iter()
                    .map(|(start, used)| (*start, used.saturating_add(amount)))
                    .collect(),
            };
            match store.set(&self.key(slot), &Self::encode(&next), cas) {
                Ok(()) => {
                    return Ok(Check {
                        allowed: true,
                        windows: states,
                    })
                }
                Err(HostError::CasMismatch) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(SlotError::Shared(SharedError::Contention {
            attempts: MAX_ATTEMPTS,
        }))
    }

    /// Settles a reservation: `reserved` was counted in the windows starting at
    /// `reserved_starts`; the request really cost `actual`. In a window that is still the
    /// reservation's, the count moves by `actual - reserved`; in a window that has rolled
    /// over since, only what the estimate missed (`actual - reserved`, if positive) is added.
    pub fn settle<S: CasStore + ?Sized>(
        &self,
        store: &S,
        id: u64,
        now_ms: u64,
        reserved_starts: &[u64],
        reserved: u64,
        actual: u64,
    ) -> Result<(), SlotError> {
        let extra = actual.saturating_sub(reserved);
        for _ in 0..MAX_ATTEMPTS {
            let Some((slot, rec, cas, ours)) = self.probe(store, id, now_ms)? else {
                return if extra == 0 {
                    Ok(())
                } else {
                    Err(SlotError::TableFull)
                };
            };
            if !ours && extra == 0 {
                return Ok(());
            }
            let mut next = Record {
                id,
                wins: Vec::with_capacity(self.windows.len()),
            };
            let mut changed = false;
            for (i, (w, (start, count))) in self.windows.iter().zip(&rec.wins).enumerate() {
                let cur = window_start(now_ms, w.secs);
                let count = if *start == cur { *count } else { 0 };
                let same = reserved_starts.get(i) == Some(&cur) && *start == cur && ours;
                let updated = if same {
                    count.saturating_sub(reserved).saturating_add(actual)
                } else {
                    count.saturating_add(extra)
                };
                changed |= updated != count || *start != cur;
                next.wins.push((cur, updated));
            }
            if !changed {
                return Ok(());
            }
            match store.set(&self.key(slot), &Self::encode(&next), cas) {
                Ok(()) => return Ok(()),
                Err(HostError::CasMismatch) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(SlotError::Shared(SharedError::Contention {
            attempts: MAX_ATTEMPTS,
        }))
    }

    /// Creates every missing slot empty (done at configure time, before traffic).
    pub fn create_slots<S: CasStore + ?Sized>(&self, store: &S) -> Result<u32, HostError> {
        let empty = Self::encode(&self.empty());
        let mut created = 0;
        for slot in 0..self.slots {
            let key = self.key(slot);
            if store.get(&key)?.is_none() {
                store.set(&key, &empty, 0)?;
                created += 1;
            }
        }
        Ok(created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::MemStore;
    use std::cell::Cell;

    const MIN: WindowLimit = WindowLimit {
        secs: 60,
        limit: 100,
    };

    fn table(windows: &[WindowLimit], slots: u32) -> SlotTable<'_> {
        SlotTable::new("atr", "t", slots, windows)
    }

    #[test]
    fn admits_until_full_and_rolls_over() {
        let store = MemStore::new();
        let w = [MIN];
        let t = table(&w, 16);
        t.create_slots(&store).unwrap();
        assert_eq!(store.len(), 16);
        let now = 120_000;
        let c = t.acquire(&store, 7, now, 60).unwrap();
        assert!(c.allowed);
        assert_eq!(c.windows[0].remaining(), 40);
        assert_eq!(c.windows[0].reset_ms, 60_000);
        let c = t.acquire(&store, 7, now + 1000, 41).unwrap();
        assert!(!c.allowed);
        assert_eq!(c.windows[0].used, 60);
        assert_eq!(c.windows[0].remaining(), 40);
        assert!(t.acquire(&store, 7, now + 1000, 40).unwrap().allowed);
        // Used up: even a zero amount is refused.
        assert!(!t.acquire(&store, 7, now + 2000, 0).unwrap().allowed);
        // Other identities are separate.
        assert!(t.acquire(&store, 8, now + 2000, 100).unwrap().allowed);
        // The next window starts from zero, in the same slot.
        let c = t.acquire(&store, 7, now + 60_000, 100).unwrap();
        assert!(c.allowed);
        assert_eq!(store.len(), 16);
    }

    #[test]
    fn all_windows_must_fit_and_are_updated_together() {
        let store = MemStore::new();
        let w = [
            WindowLimit { secs: 1, limit: 10 },
            WindowLimit {
                secs: 60,
                limit: 25,
            },
        ];
        let t = table(&w, 4);
        t.create_slots(&store).unwrap();
        for s in 0..2 {
            assert!(t.acquire(&store, 1, s * 1000, 10).unwrap().allowed);
        }
        let c = t.acquire(&store, 1, 2000, 6).unwrap();
        assert!(!c.allowed);
        assert_eq!(
            c.windows.iter().map(|s| s.fits).collect::<Vec<_>>(),
            vec![true, false]
        );
        // A refused check counts nothing in the window that had room either.
        let c = t.acquire(&store, 1, 2000, 5).unwrap();
        assert!(c.allowed);
        assert_eq!(c.windows[0].used, 5);
        assert_eq!(c.windows[1].used, 25);
    }

    #[test]
    fn settle_moves_the_reservation_to_the_real_cost() {
        let store = MemStore::new();
        let w = [MIN];
        let t = table(&w, 4);
        t.create_slots(&store).unwrap();
        let c = t.acquire(&store, 3, 1000, 50).unwrap();
        let starts: Vec<u64> = c.windows.iter().map(|s| s.start_ms).collect();
        t.settle(&store, 3, 2000, &starts, 50, 20).unwrap();
        assert_eq!(t.acquire(&store, 3, 3000, 0).unwrap().windows[0].used, 20);
        t.settle(&store, 3, 3000, &starts, 0, 30).unwrap();
        assert_eq!(t.acquire(&store, 3, 3000, 0).unwrap().windows[0].used, 50);
        // After the window rolled over only what the estimate missed is added.
        t.settle(&store, 3, 61_000, &starts, 10, 25).unwrap();
        assert_eq!(t.acquire(&store, 3, 61_000, 0).unwrap().windows[0].used, 15);
        t.settle(&store, 3, 61_000, &starts, 10, 5).unwrap();
        assert_eq!(t.acquire(&store, 3, 61_000, 0).unwrap().windows[0].used, 15);
        // Release never goes below zero.
        let c = t.acquire(&store, 4, 61_000, 5).unwrap();
        let s4: Vec<u64> = c.windows.iter().map(|s| s.start_ms).collect();
        t.settle(&store, 4, 61_000, &s4, 500, 0).unwrap();
        assert_eq!(t.acquire(&store, 4, 61_000, 0).unwrap().windows[0].used, 0);
    }

    #[test]
    fn expired_slots_are_reused_and_the_table_is_bounded() {
        let store = MemStore::new();
        let w = [MIN];
        let t = table(&w, 4);
        t.create_slots(&store).unwrap();
        for id in 1..=4 {
            assert!(t.acquire(&store, id, 0, 1).unwrap().allowed);
        }
        assert_eq!(t.acquire(&store, 5, 0, 1), Err(SlotError::TableFull));
        // A minute later every window has ended: new identities take the slots over.
        for id in 5..=8 {
            assert!(t.acquire(&store, id, 60_000, 1).unwrap().allowed);
        }
        assert_eq!(store.len(), 4);
        // An identity whose slot was taken over starts fresh elsewhere later.
        assert_eq!(t.acquire(&store, 1, 60_000, 1), Err(SlotError::TableFull));
        assert!(t.acquire(&store, 1, 120_000, 1).unwrap().allowed);
    }

    /// A store that runs another writer's update right before each of our conditional
    /// writes, as another worker VM would, so our write meets a stale CAS token.
    struct Racing<'a> {
        inner: MemStore,
        table: SlotTable<'a>,
        races: Cell<u32>,
        rival: u64,
    }

    impl CasStore for Racing<'_> {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
            if cas != 0 && self.races.get() > 0 {
                self.races.set(self.races.get() - 1);
                self.table
                    .acquire(&self.inner, self.rival, 0, 1)
                    .map_err(|_| HostError::InternalFailure)?;
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn no_update_is_lost_under_contention() {
        let w = [WindowLimit {
            secs: 60,
            limit: 1_000_000,
        }];
        let t = table(&w, 1);
        let store = Racing {
            inner: MemStore::new(),
            table: t,
            races: Cell::new(0),
            rival: 9,
        };
        t.create_slots(&store.inner).unwrap();
        // Same identity for both writers: every one of our writes is preceded by a rival +1.
        store.races.set(5);
        for _ in 0..5 {
            assert!(t.acquire(&store, 9, 0, 10).unwrap().allowed);
        }
        assert_eq!(
            t.acquire(&store.inner, 9, 0, 0).unwrap().windows[0].used,
            55
        );
        // Endless contention ends with an error, never a lost or doubled update.
        store.races.set(1000);
        assert!(matches!(
            t.acquire(&store, 9, 0, 10),
            Err(SlotError::Shared(SharedError::Contention { .. }))
        ));
    }

    #[test]
    fn keys_name_the_table_shape() {
        let w = [
            WindowLimit { secs: 1, limit: 1 },
            WindowLimit {
                secs: 86_400,
                limit: 1,
            },
        ];
        assert_eq!(table(&w, 16).key(3), "atr|t|1.86400s16|3");
    }
}
