//! The compare-and-swap store behind shared counters: the host's shared data, or memory.

use crate::host::{self, HostError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// A key-value store with compare-and-swap writes, the shape of proxy-wasm shared data.
pub trait CasStore {
    /// The value and its CAS token, `None` when the key does not exist.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError>;
    /// Writes `value` if `cas` is the current token (0 writes unconditionally); a stale token
    /// gives `Err(HostError::CasMismatch)`.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError>;
}

/// The host's shared data: process-wide, visible to every VM (worker) with the same vm_id.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostStore;

impl CasStore for HostStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
        host::get_shared_data(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        host::set_shared_data(key, value, cas)
    }
}

/// An in-memory store with the host's CAS semantics (every write assigns a new token), for
/// native tests of code built on [`CasStore`].
#[derive(Debug, Default)]
pub struct MemStore {
    entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: Cell<u32>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether the store has no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CasStore for MemStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
        Ok(self.entries.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        let mut entries = self.entries.borrow_mut();
        if let Some((_, current)) = entries.get(key) {
            if cas != 0 && cas != *current {
                return Err(HostError::CasMismatch);
            }
        }
        let next = self.next_cas.get().wrapping_add(1).max(1);
        self.next_cas.set(next);
        entries.insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }
}
