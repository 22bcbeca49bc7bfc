//! Time: advancing the simulated clock, ticks and call-out timeouts.

use super::*;

impl Sim {
    /// Advances the simulated clock, firing ticks and call-out timeouts in time order.
    pub fn advance(&mut self, d: Duration) {
        let target = self.mono_ns() + d.as_nanos() as u64;
        loop {
            let next = self.next_timer();
            match next {
                Some(t) if t <= target => {
                    let now = self.mono_ns();
                    if t > now {
                        if let Ok(mut h) = self.host.lock() {
                            h.clock.advance(Duration::from_nanos(t - now));
                        }
                    }
                    self.fire_timers(t);
                    self.pump();
                }
                _ => break,
            }
        }
        let now = self.mono_ns();
        if target > now {
            if let Ok(mut h) = self.host.lock() {
                h.clock.advance(Duration::from_nanos(target - now));
            }
        }
    }

    /// Fires whatever is due now on the real clock (for the gateway mode).
    pub fn poll_timers(&mut self) {
        let now = self.mono_ns();
        if self.next_timer().is_some_and(|t| t <= now) {
            self.fire_timers(now);
            self.pump();
        }
    }

    pub(super) fn next_timer(&self) -> Option<u64> {
        let mut best: Option<u64> = None;
        let mut consider = |t: u64| best = Some(best.map_or(t, |b: u64| b.min(t)));
        for vm in self.chain.vms() {
            if vm.failed {
                continue;
            }
            for c in vm.store.data().contexts.values() {
                if let CtxKind::Root(info) = c {
                    if info.tick_ms > 0 {
                        consider(info.next_tick_ns);
                    }
                }
            }
        }
        if let Some(d) = self.calls.next_deadline() {
            consider(d);
        }
        best
    }

    pub(super) fn fire_timers(&mut self, now: u64) {
        // Call-out timeouts first: Envoy answers them with 504.
        for id in self.calls.due(now) {
            let _ = self.answer_http(id, CallReply::Timeout);
        }
        for key in self.chain.vm_keys() {
            let roots: Vec<(u32, u32)> = match self.chain.vm(key) {
                Some(vm) if !vm.failed => vm
                    .store
                    .data()
                    .contexts
                    .iter()
                    .filter_map(|(id, c)| match c {
                        CtxKind::Root(i) if i.tick_ms > 0 && i.next_tick_ns <= now => {
                            Some((*id, i.tick_ms))
                        }
                        _ => None,
                    })
                    .collect(),
                _ => continue,
            };
            for (root, ms) in roots {
                if let Some(vm) = self.chain.vm_mut(key) {
                    if let Some(CtxKind::Root(info)) = vm.store.data_mut().contexts.get_mut(&root) {
                        info.next_tick_ns = now + ms as u64 * 1_000_000;
                    }
                    let _ = vm.on_tick(root);
                    let eff = vm.take_effects();
                    self.apply_effects(key, eff);
                }
            }
        }
    }
}
