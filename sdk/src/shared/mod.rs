//! Counters and rate-limit windows over shared data, safe across VMs (workers).
//!
//! Every update is a compare-and-swap retry loop: read value and CAS token, compute, write
//! with the token, retry on `CasMismatch` — up to [`MAX_ATTEMPTS`] times, then
//! [`SharedError::Contention`]. No update is lost once a key exists. The proxy-wasm ABI has no
//! create-if-absent, so the very first write of a key is unconditional: two VMs creating the
//! same key at the same instant can lose one of those first updates. Everything after is exact.
//!
//! Values are small fixed-size little-endian records:
//!
//! * counter: `count: u64` (8 bytes)
//! * fixed window: `window_start_ms: u64, count: u64` (16 bytes)
//! * sliding window: `window_start_ms: u64, current: u64, previous: u64` (24 bytes)
//!
//! Window records carry their own window start, so a stale window reads as empty and is
//! overwritten in place by the next update (lazy expiry). Keys are therefore never
//! per-window: their number is bounded by the number of distinct identities (shared data
//! cannot be deleted through the ABI, so per-window keys would grow without bound).
//!
//! Storage is pluggable ([`CasStore`]): [`HostStore`] in the gateway, [`MemStore`] in tests.
//!
//! ```
//! use aigw::shared::{FixedWindow, MemStore};
//!
//! let store = MemStore::new();
//! let window = FixedWindow::new(60_000);
//! let d = window.try_acquire(&store, "rl:alice", 1_000, 3, 5).unwrap();
//! assert!(d.allowed && d.remaining == 2);
//! let d = window.try_acquire(&store, "rl:alice", 2_000, 3, 5).unwrap();
//! assert!(!d.allowed);
//! assert_eq!(d.reset_ms, 58_000);
//! // A new window starts from zero.
//! assert!(window.try_acquire(&store, "rl:alice", 60_000, 3, 5).unwrap().allowed);
//! ```

mod slots;
mod store;
mod window;

pub use slots::{window_fits, Check, SlotError, SlotTable, WindowLimit, WindowState};
pub use store::{CasStore, HostStore, MemStore};
pub use window::{Decision, FixedWindow, SlidingWindow};

use crate::host::HostError;
use std::fmt;

/// How many times an update is attempted before giving up with
/// [`SharedError::Contention`].
pub const MAX_ATTEMPTS: u32 = 32;

/// Why a shared update failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedError {
    /// The host refused a read or write.
    Host(HostError),
    /// Every attempt met a concurrent writer.
    Contention {
        /// Attempts made.
        attempts: u32,
    },
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharedError::Host(e) => write!(f, "shared data: {e}"),
            SharedError::Contention { attempts } => {
                write!(
                    f,
                    "shared data: still conflicting after {attempts} attempts"
                )
            }
        }
    }
}

impl std::error::Error for SharedError {}

impl From<HostError> for SharedError {
    fn from(e: HostError) -> Self {
        SharedError::Host(e)
    }
}

/// Runs a CAS loop on `key`. `f` sees the current value (`None` when absent) and returns the
/// bytes to write (`None` to write nothing) and a result.
pub fn update<S, T, F>(store: &S, key: &str, mut f: F) -> Result<T, SharedError>
where
    S: CasStore + ?Sized,
    F: FnMut(Option<&[u8]>) -> (Option<Vec<u8>>, T),
{
    for _ in 0..MAX_ATTEMPTS {
        let current = store.get(key)?;
        let (value, cas) = match &current {
            Some((v, cas)) => (Some(v.as_slice()), *cas),
            None => (None, 0),
        };
        let (write, result) = f(value);
        let Some(write) = write else {
            return Ok(result);
        };
        match store.set(key, &write, cas) {
            Ok(()) => return Ok(result),
            Err(HostError::CasMismatch) => continue,
            Err(e) => return Err(SharedError::Host(e)),
        }
    }
    Err(SharedError::Contention {
        attempts: MAX_ATTEMPTS,
    })
}

/// Adds `delta` to the counter at `key` (saturating at 0 and `u64::MAX`) and returns the new
/// value.
pub fn counter_add<S: CasStore + ?Sized>(
    store: &S,
    key: &str,
    delta: i64,
) -> Result<u64, SharedError> {
    update(store, key, |current| {
        let now = current.and_then(read_u64s::<1>).map_or(0, |[c]| c);
        let next = if delta >= 0 {
            now.saturating_add(delta.unsigned_abs())
        } else {
            now.saturating_sub(delta.unsigned_abs())
        };
        (Some(next.to_le_bytes().to_vec()), next)
    })
}

/// Reads the counter at `key` (0 when absent or malformed).
pub fn counter_get<S: CasStore + ?Sized>(store: &S, key: &str) -> Result<u64, SharedError> {
    Ok(store
        .get(key)?
        .and_then(|(v, _)| read_u64s::<1>(&v))
        .map_or(0, |[c]| c))
}

/// Decodes `N` little-endian u64 fields; `None` when the record has another size.
pub(crate) fn read_u64s<const N: usize>(bytes: &[u8]) -> Option<[u64; N]> {
    if bytes.len() != N * 8 {
        return None;
    }
    let mut out = [0u64; N];
    for (slot, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        let arr: [u8; 8] = chunk.try_into().ok()?;
        *slot = u64::from_le_bytes(arr);
    }
    Some(out)
}

/// Encodes u64 fields little-endian.
pub(crate) fn write_u64s(fields: &[u64]) -> Vec<u8> {
    fields.iter().flat_map(|f| f.to_le_bytes()).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;

    /// A store where, before each of the next `conflicts` conditional writes, another "VM"
    /// adds 1 to the counter record — so that write fails with CasMismatch.
    pub(crate) struct Interfering<F: Fn(Option<&[u8]>) -> Vec<u8>> {
        pub inner: MemStore,
        pub conflicts: Cell<u32>,
        pub interfere: F,
    }

    impl<F: Fn(Option<&[u8]>) -> Vec<u8>> CasStore for Interfering<F> {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
            if self.conflicts.get() > 0 {
                self.conflicts.set(self.conflicts.get() - 1);
                let current = self.inner.get(key)?.map(|(v, _)| v);
                self.inner
                    .set(key, &(self.interfere)(current.as_deref()), 0)?;
            }
            self.inner.set(key, value, cas)
        }
    }

    fn plus_one(v: Option<&[u8]>) -> Vec<u8> {
        let n = v.and_then(read_u64s::<1>).map_or(0, |[c]| c);
        (n + 1).to_le_bytes().to_vec()
    }

    #[test]
    fn counter_never_loses_updates_under_conflicts() {
        let store = Interfering {
            inner: MemStore::new(),
            conflicts: Cell::new(0),
            interfere: plus_one,
        };
        assert_eq!(counter_add(&store, "k", 5).unwrap(), 5);
        store.conflicts.set(3);
        // Three concurrent +1 land first; our +10 is retried on top of them.
        assert_eq!(counter_add(&store, "k", 10).unwrap(), 18);
        assert_eq!(counter_get(&store, "k").unwrap(), 18);
        assert_eq!(counter_add(&store, "k", -20).unwrap(), 0);
    }

    #[test]
    fn contention_is_bounded() {
        let store = Interfering {
            inner: MemStore::new(),
            conflicts: Cell::new(0),
            interfere: plus_one,
        };
        counter_add(&store, "k", 1).unwrap();
        store.conflicts.set(MAX_ATTEMPTS);
        assert_eq!(
            counter_add(&store, "k", 1),
            Err(SharedError::Contention {
                attempts: MAX_ATTEMPTS
            })
        );
        // Only the interfering writers' updates are in.
        assert_eq!(
            counter_get(&store, "k").unwrap(),
            1 + u64::from(MAX_ATTEMPTS)
        );
    }

    #[test]
    fn malformed_records_read_as_zero() {
        let store = MemStore::new();
        store.set("k", b"abc", 0).unwrap();
        assert_eq!(counter_get(&store, "k").unwrap(), 0);
        assert_eq!(counter_add(&store, "k", 2).unwrap(), 2);
        assert_eq!(read_u64s::<2>(&write_u64s(&[1, 2])), Some([1, 2]));
    }

    #[test]
    fn mem_store_cas_semantics() {
        let s = MemStore::new();
        assert!(s.is_empty());
        s.set("a", b"1", 0).unwrap();
        let (_, cas) = s.get("a").unwrap().unwrap();
        s.set("a", b"2", cas).unwrap();
        assert_eq!(s.set("a", b"3", cas), Err(HostError::CasMismatch));
        assert_eq!(s.get("a").unwrap().unwrap().0, b"2");
    }
}
