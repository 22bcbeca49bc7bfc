//! The VM chain component: the plugins in declared order (each with its configuration
//! generations) and the arena of VMs they run on, by key. The driver and the rest of `Sim`
//! reach VMs and generations only through these methods.

use super::plugins::Generation;
use super::*;
use std::ops::{Index, IndexMut};

/// The plugins of the chain and every VM, by arena key (a dropped VM leaves `None`).
#[derive(Default)]
pub(crate) struct VmChain {
    vms: Vec<Option<Vm>>,
    slots: Vec<PluginSlot>,
}

impl VmChain {
    /// Number of plugins in the chain.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Appends a plugin; returns its index.
    pub fn push(&mut self, slot: PluginSlot) -> usize {
        self.slots.push(slot);
        self.slots.len() - 1
    }

    /// Plugin `plugin`, when it exists.
    pub fn plugin(&self, plugin: usize) -> Option<&PluginSlot> {
        self.slots.get(plugin)
    }

    /// Generation `gen` of plugin `plugin`.
    pub fn generation(&self, plugin: usize, gen: usize) -> Option<&Generation> {
        self.slots.get(plugin)?.gens.get(gen)
    }

    /// Generation `gen` of plugin `plugin`, to update.
    pub fn generation_mut(&mut self, plugin: usize, gen: usize) -> Option<&mut Generation> {
        self.slots.get_mut(plugin)?.gens.get_mut(gen)
    }

    /// Notes that VM `key` failed at `now` (monotonic ns) in every generation that uses it
    /// (for the FAIL_RELOAD backoff); an earlier failure time is kept.
    pub fn mark_failed(&mut self, key: usize, now: u64) {
        for g in self.slots.iter_mut().flat_map(|s| s.gens.iter_mut()) {
            if let Some(w) = g.vms.iter().position(|k| *k == key) {
                g.failed_at[w].get_or_insert(now);
            }
        }
    }

    /// The plugin index and worker of VM `key`; `(len, 0)` for a VM no generation uses.
    pub fn owner_of(&self, key: usize) -> (usize, usize) {
        for (p, slot) in self.slots.iter().enumerate() {
            for g in &slot.gens {
                if let Some(w) = g.vms.iter().position(|k| *k == key) {
                    return (p, w);
                }
            }
        }
        (self.slots.len(), 0)
    }

    /// The VM with arena key `key`, when it is alive.
    pub fn vm(&self, key: usize) -> Option<&Vm> {
        self.vms.get(key)?.as_ref()
    }

    /// The VM with arena key `key`, when it is alive, to call into.
    pub fn vm_mut(&mut self, key: usize) -> Option<&mut Vm> {
        self.vms.get_mut(key)?.as_mut()
    }

    /// Whether VM `key` failed (a missing VM counts as failed).
    pub fn vm_failed(&self, key: usize) -> bool {
        self.vm(key).map(|v| v.failed).unwrap_or(true)
    }

    /// Every live VM.
    pub fn vms(&self) -> impl Iterator<Item = &Vm> {
        self.vms.iter().flatten()
    }

    /// Every live VM, to update.
    pub fn vms_mut(&mut self) -> impl Iterator<Item = &mut Vm> {
        self.vms.iter_mut().flatten()
    }

    /// The arena keys handed out so far (some may be dropped VMs).
    pub fn vm_keys(&self) -> std::ops::Range<usize> {
        0..self.vms.len()
    }

    /// The key the next reserved VM gets.
    pub fn next_vm_key(&self) -> usize {
        self.vms.len()
    }

    /// Reserves an arena key for a VM being started; [`put_vm`](Self::put_vm) fills it.
    pub fn reserve_vm(&mut self) -> usize {
        self.vms.push(None);
        self.vms.len() - 1
    }

    /// Takes VM `key` out of the arena (to start a root on it without borrowing the chain).
    pub fn take_vm(&mut self, key: usize) -> Option<Vm> {
        self.vms.get_mut(key)?.take()
    }

    /// Puts VM `key` (back) into the arena.
    pub fn put_vm(&mut self, key: usize, vm: Vm) {
        if let Some(slot) = self.vms.get_mut(key) {
            *slot = Some(vm);
        }
    }

    /// Drops the VMs of generation `gen` of plugin `plugin` that no open generation uses.
    pub fn drop_unused_vms(&mut self, plugin: usize, gen: usize) {
        let in_use: Vec<usize> = self
            .slots
            .iter()
            .flat_map(|s| s.gens.iter().filter(|g| !g.closed))
            .flat_map(|g| g.vms.iter().copied())
            .collect();
        let Some(g) = self.generation(plugin, gen) else {
            return;
        };
        let unused: Vec<usize> = g
            .vms
            .iter()
            .copied()
            .filter(|k| !in_use.contains(k))
            .collect();
        for k in unused {
            if let Some(slot) = self.vms.get_mut(k) {
                *slot = None;
            }
        }
    }
}

impl Index<usize> for VmChain {
    type Output = PluginSlot;

    fn index(&self, plugin: usize) -> &PluginSlot {
        &self.slots[plugin]
    }
}

impl IndexMut<usize> for VmChain {
    fn index_mut(&mut self, plugin: usize) -> &mut PluginSlot {
        &mut self.slots[plugin]
    }
}
