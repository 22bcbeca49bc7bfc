//! The plugin chain: VMs per worker, generations (hot reload), canary configuration and
//! FAIL_RELOAD.

use super::*;

/// One configuration generation of a plugin (hot reload adds generations).
pub(crate) struct Generation {
    pub spec: PluginSpec,
    /// VM arena key per worker.
    pub vms: Vec<usize>,
    /// Root context id per worker.
    pub roots: Vec<u32>,
    /// Streams that started on this generation and are still open.
    pub live: usize,
    /// A newer generation took over.
    pub retired: bool,
    /// Root contexts were finished (on_done/on_delete).
    pub closed: bool,
    /// When a worker's VM failed (for FAIL_RELOAD backoff).
    pub failed_at: Vec<Option<u64>>,
}

pub(crate) struct PluginSlot {
    pub gens: Vec<Generation>,
}

impl Sim {
    pub(super) fn new_vm(&mut self, spec: &PluginSpec, worker: usize) -> Result<Vm> {
        let pre = self.loader.instance_pre(&spec.module)?;
        let ctx = VmCtx {
            host: self.host.clone(),
            key: self.chain.next_vm_key(),
            worker,
            plugin_name: spec.name.clone(),
            vm_id: spec.vm_id.clone(),
            env: spec.env.clone(),
            memory: None,
            malloc: None,
            contexts: HashMap::new(),
            effective: 0,
            deferred: Vec::new(),
            http_calls: Vec::new(),
            grpc_calls: Vec::new(),
            redis_calls: Vec::new(),
            redis_inited: HashMap::new(),
            redis_clusters: self.calls.redis_names(),
            clusters: self.calls.cluster_names(),
            call_response: None,
            last_status: (0, String::new()),
            next_token: 0,
            plugin_root_id: spec.root_id.clone(),
            root_props: HashMap::new(),
            starting: false,
            log_level: self.opts.log_level,
        };
        Vm::new(spec.module.clone(), &pre, ctx)
    }

    pub(super) fn host_log(&self, level: LogLevel, message: String) {
        if let Ok(mut h) = self.host.lock() {
            h.push_log(LogEntry {
                plugin: "host-sim".into(),
                worker: 0,
                level,
                message,
            });
        }
    }

    /// Creates a root context on `vm`, starts and configures it. Returns its id.
    pub(super) fn start_root(&mut self, vm: &mut Vm, spec: &PluginSpec) -> Result<u32> {
        let id = vm.next_context_id();
        vm.store.data_mut().contexts.insert(
            id,
            CtxKind::Root(RootInfo {
                plugin_config: spec.config.clone(),
                vm_config: spec.vm_config.clone(),
                root_id: spec.root_id.clone(),
                tick_ms: 0,
                next_tick_ns: 0,
            }),
        );
        let since = self.host.lock().map(|h| h.logs_pushed).unwrap_or(0);
        let trap = |e: crate::vm::VmTrap| anyhow!("plugin {} trapped: {}", spec.name, e.0);
        vm.on_context_create(id, 0).map_err(trap)?;
        if !vm.on_vm_start(id, spec.vm_config.len()).map_err(trap)? {
            bail!(
                "plugin {} failed to start (on_vm_start returned false)",
                spec.name
            );
        }
        if !vm.on_configure(id, spec.config.len()).map_err(trap)? {
            bail!(
                "plugin {} rejected its configuration{}",
                spec.name,
                self.recent_plugin_errors(&spec.name, since)
            );
        }
        Ok(id)
    }

    /// The plugin's warnings and errors logged since `since` (a `logs_pushed` count), at most
    /// three, for a rejected configuration's error message.
    pub(super) fn recent_plugin_errors(&self, plugin: &str, since: u64) -> String {
        let Ok(h) = self.host.lock() else {
            return String::new();
        };
        let new = usize::try_from(h.logs_pushed.saturating_sub(since)).unwrap_or(usize::MAX);
        let lines: Vec<&str> = h
            .logs
            .iter()
            .rev()
            .take(new)
            .filter(|l| l.plugin == plugin && l.level >= LogLevel::Warn)
            .take(3)
            .map(|l| l.message.as_str())
            .collect();
        if lines.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )
        }
    }

    /// Checks that `spec` would be accepted (module loads, VM starts, `on_configure` returns
    /// true) on a throwaway VM, changing nothing: what a reload runs first. Lets a caller
    /// check every plugin of a multi-plugin change before applying any of it.
    pub fn check_plugin(&mut self, spec: &PluginSpec) -> Result<()> {
        self.canary(spec)
    }

    /// Validates a spec on a throwaway VM, as Envoy's canary does.
    pub(super) fn canary(&mut self, spec: &PluginSpec) -> Result<()> {
        let mut vm = self.new_vm(spec, 0)?;
        let r = self.start_root(&mut vm, spec);
        // The canary's side effects (call-outs) are dropped with it.
        drop(vm);
        r.map(|_| ())
    }

    pub(super) fn build_generation(
        &mut self,
        spec: PluginSpec,
        reuse: Option<&[usize]>,
    ) -> Result<Generation> {
        let mut vms = Vec::new();
        let mut roots = Vec::new();
        for w in 0..self.opts.workers {
            let (key, mut vm) = match reuse {
                Some(keys) => {
                    let key = keys[w];
                    let vm = self
                        .chain
                        .take_vm(key)
                        .ok_or_else(|| anyhow!("VM {key} is gone"))?;
                    (key, vm)
                }
                None => {
                    let vm = self.new_vm(&spec, w)?;
                    (self.chain.reserve_vm(), vm)
                }
            };
            vm.store.data_mut().key = key;
            let r = self.start_root(&mut vm, &spec);
            let effects = vm.take_effects();
            self.chain.put_vm(key, vm);
            roots.push(r?);
            vms.push(key);
            self.apply_effects(key, effects);
        }
        Ok(Generation {
            failed_at: vec![None; vms.len()],
            spec,
            vms,
            roots,
            live: 0,
            retired: false,
            closed: false,
        })
    }

    /// Adds a plugin at the end of the chain: canary configure, then one VM per worker.
    /// Returns its index in the chain.
    pub fn add_plugin(&mut self, spec: PluginSpec) -> Result<usize> {
        self.canary(&spec)?;
        let gen = self.build_generation(spec, None)?;
        let index = self.chain.push(PluginSlot { gens: vec![gen] });
        self.pump();
        Ok(index)
    }

    /// Hot reload: new streams use `spec`, streams in flight finish on the old instance.
    /// The same module code (and vm_id) adds a root context to the existing VMs; other code
    /// gets new VMs. A rejected configuration leaves the old one serving.
    pub fn reload(&mut self, plugin: usize, spec: PluginSpec) -> Result<()> {
        let slot = self
            .chain
            .plugin(plugin)
            .ok_or_else(|| anyhow!("no plugin {plugin}"))?;
        let cur = slot.gens.len() - 1;
        let old = &slot.gens[cur];
        let same_code = old.spec.module.hash == spec.module.hash && old.spec.vm_id == spec.vm_id;
        let reuse: Option<Vec<usize>> = same_code.then(|| old.vms.clone());
        self.canary(&spec)?;
        let gen = self.build_generation(spec, reuse.as_deref())?;
        let slot = &mut self.chain[plugin];
        slot.gens[cur].retired = true;
        slot.gens.push(gen);
        self.retire_idle(plugin);
        self.pump();
        Ok(())
    }

    /// Finishes root contexts of retired generations with no streams left.
    pub(crate) fn retire_idle(&mut self, plugin: usize) {
        let n = self.chain[plugin].gens.len();
        for g in 0..n {
            let gen = &self.chain[plugin].gens[g];
            if !gen.retired || gen.closed || gen.live > 0 {
                continue;
            }
            let pairs: Vec<(usize, u32)> = gen
                .vms
                .iter()
                .copied()
                .zip(gen.roots.iter().copied())
                .collect();
            self.chain[plugin].gens[g].closed = true;
            for (vm_key, root) in pairs {
                if let Some(vm) = self.chain.vm_mut(vm_key) {
                    if !vm.failed {
                        let _ = vm.on_done(root);
                        let _ = vm.on_delete(root);
                    }
                }
            }
            // Drop VMs no open generation uses any more.
            self.chain.drop_unused_vms(plugin, g);
        }
    }

    /// Number of plugins in the chain.
    pub fn chain_len(&self) -> usize {
        self.chain.len()
    }

    /// The current configuration of a plugin.
    pub fn plugin_spec(&self, plugin: usize) -> Option<&PluginSpec> {
        self.chain
            .plugin(plugin)
            .and_then(|s| s.gens.last())
            .map(|g| &g.spec)
    }

    /// Linear memory in bytes of the current VM of `plugin` on `worker`.
    pub fn vm_memory(&self, plugin: usize, worker: usize) -> Option<usize> {
        let g = self.chain.plugin(plugin)?.gens.last()?;
        let key = *g.vms.get(worker)?;
        self.chain.vm(key).map(|vm| vm.memory_size())
    }

    /// Whether the current VM of `plugin` on `worker` has failed.
    pub fn vm_failed(&self, plugin: usize, worker: usize) -> bool {
        self.chain
            .plugin(plugin)
            .and_then(|s| s.gens.last())
            .and_then(|g| g.vms.get(worker))
            .is_none_or(|k| self.chain.vm_failed(*k))
    }

    pub(super) fn reload_failed_vms(&mut self, worker: usize) {
        let now = self.mono_ns();
        let backoff = self.opts.reload_backoff.as_nanos() as u64;
        for p in 0..self.chain.len() {
            let g = self.chain[p].gens.len() - 1;
            let gen = &self.chain[p].gens[g];
            if gen.spec.fail_policy != FailPolicy::Reload {
                continue;
            }
            let key = gen.vms[worker];
            if !self.chain.vm_failed(key) {
                continue;
            }
            let spec = gen.spec.clone();
            let since = gen.failed_at[worker].unwrap_or(now);
            if gen.failed_at[worker].is_none() {
                self.chain[p].gens[g].failed_at[worker] = Some(now);
            }
            if now < since + backoff {
                continue;
            }
            let Ok(mut vm) = self.new_vm(&spec, worker) else {
                continue;
            };
            let key = self.chain.reserve_vm();
            vm.store.data_mut().key = key;
            match self.start_root(&mut vm, &spec) {
                Ok(root) => {
                    self.host_log(
                        LogLevel::Warn,
                        format!(
                            "FAIL_RELOAD: new VM for plugin {} on worker {worker}",
                            spec.name
                        ),
                    );
                    let eff = vm.take_effects();
                    self.chain.put_vm(key, vm);
                    let gen = &mut self.chain[p].gens[g];
                    gen.vms[worker] = key;
                    gen.roots[worker] = root;
                    gen.failed_at[worker] = None;
                    self.apply_effects(key, eff);
                }
                Err(e) => self.host_log(LogLevel::Error, format!("FAIL_RELOAD failed: {e}")),
            }
        }
    }
}
