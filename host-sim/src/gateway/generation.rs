//! The gateway's loaded configuration: one simulator per route built from the file, the
//! access log, and hot reload (new requests use the new chain, open streams finish on the
//! old one).

use crate::gateway::config::GatewaySpec;
use crate::sim::{FailPolicy, PluginSpec, Sim, SimOptions};
use anyhow::{anyhow, Result};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One loaded configuration: the spec and one simulator per route.
pub struct Generation {
    /// The parsed file.
    pub spec: GatewaySpec,
    /// One chain per route (sharing process-wide state).
    pub sims: Vec<Arc<Mutex<Sim>>>,
    /// Module files and their modification times (for hot reload).
    stamps: Vec<(PathBuf, Option<SystemTime>)>,
}

/// The running gateway.
pub struct Gateway {
    path: PathBuf,
    current: Mutex<Arc<Generation>>,
    log: Mutex<Option<Box<dyn std::io::Write + Send>>>,
    /// File times of the last rejected attempt (not retried until one changes).
    rejected: Mutex<Option<Vec<Option<SystemTime>>>>,
}

fn stamp(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn fail_policy(s: Option<&str>) -> FailPolicy {
    match s {
        Some("open") => FailPolicy::Open,
        Some("reload") => FailPolicy::Reload,
        _ => FailPolicy::Closed,
    }
}

fn plugin_spec(base: &Path, p: &crate::gateway::config::PluginEntry) -> Result<PluginSpec> {
    let path = base.join(&p.wasm);
    let config = match (&p.config_file, &p.config) {
        (Some(file), _) => std::fs::read_to_string(base.join(file))
            .map_err(|e| anyhow!("plugin {}: config_file {}: {e}", p.name, file.display()))?,
        (None, serde_json::Value::String(s)) => s.clone(),
        (None, serde_json::Value::Null) => String::new(),
        (None, v) => v.to_string(),
    };
    Ok(PluginSpec::from_file(&path)
        .map_err(|e| anyhow!("plugin {}: {e:#}", p.name))?
        .name(p.name.clone())
        .vm_id(p.vm_id.clone())
        .root_id(p.root_id.clone())
        .fail_policy(fail_policy(p.fail.as_deref()))
        .allow_on_headers_stop_iteration(p.allow_on_headers_stop_iteration)
        .config_json(config))
}

impl Gateway {
    /// Loads the file and builds every route's chain.
    pub fn load(path: &Path) -> Result<Gateway> {
        let gen = build(path, None)?;
        let log: Option<Box<dyn std::io::Write + Send>> = match gen.spec.access_log.as_deref() {
            Some("off") => None,
            None | Some("stdout") => Some(Box::new(std::io::stdout())),
            Some(file) => Some(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(file)
                    .map_err(|e| anyhow!("access_log {file}: {e}"))?,
            )),
        };
        Ok(Gateway {
            path: path.to_path_buf(),
            current: Mutex::new(Arc::new(gen)),
            log: Mutex::new(log),
            rejected: Mutex::new(None),
        })
    }

    /// The configuration in use.
    pub fn current(&self) -> Arc<Generation> {
        self.current
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reloads when the file or a module changed. A bad new config is reported and the old
    /// one keeps serving.
    pub fn maybe_reload(&self) -> Option<Result<()>> {
        let cur = self.current();
        let now: Vec<Option<SystemTime>> = cur.stamps.iter().map(|(p, _)| stamp(p)).collect();
        let changed = cur.stamps.iter().zip(&now).any(|((_, was), is)| was != is);
        if !changed {
            return None;
        }
        // A rejected file is tried again only once something changed since.
        if let Ok(mut rejected) = self.rejected.lock() {
            if rejected.as_ref() == Some(&now) {
                return None;
            }
            *rejected = None;
        }
        let r = build(&self.path, Some(&cur)).map(|g| {
            if let Ok(mut c) = self.current.lock() {
                *c = Arc::new(g);
            }
        });
        if r.is_err() {
            if let Ok(mut rejected) = self.rejected.lock() {
                *rejected = Some(now);
            }
        }
        Some(r)
    }

    pub(crate) fn access_log(&self, line: String) {
        if let Ok(mut l) = self.log.lock() {
            if let Some(w) = l.as_mut() {
                let _ = writeln!(w, "{line}");
                let _ = w.flush();
            }
        }
    }
}

/// Builds a generation. With `prev`, routes whose chain has the same shape are hot-reloaded in
/// place (streams in flight finish on the old plugin instances); other routes get new chains.
fn build(path: &Path, prev: Option<&Generation>) -> Result<Generation> {
    let spec = GatewaySpec::load(path)?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut stamps = vec![(path.to_path_buf(), stamp(path))];
    // One host for every route, as one Envoy process: shared data, queues, metrics and logs
    // are process-wide (kept across reloads too).
    let mut host = prev
        .and_then(|p| p.sims.first())
        .and_then(|s| s.lock().ok().map(|s| s.host()));
    let opts = SimOptions {
        workers: spec.workers.max(1),
        clock: crate::shared::Clock::real(),
        buffer_limit: spec.buffer_limit.unwrap_or(1024 * 1024),
        ..Default::default()
    };
    let mut sims = Vec::new();
    let mut reloads = Vec::new();
    for (i, r) in spec.routes.iter().enumerate() {
        let mut specs = Vec::new();
        for (j, p) in r.plugins.iter().enumerate() {
            stamps.push((base.join(&p.wasm), stamp(&base.join(&p.wasm))));
            if let Some(f) = &p.config_file {
                stamps.push((base.join(f), stamp(&base.join(f))));
            }
            specs.push(
                plugin_spec(&base, p).map_err(|e| anyhow!("routes[{i}].plugins[{j}]: {e:#}"))?,
            );
        }
        let reuse = prev.and_then(|p| {
            let (old_route, old_sim) = p.spec.routes.get(i).zip(p.sims.get(i))?;
            (old_route.name == r.name
                && old_route.plugins.len() == r.plugins.len()
                && old_route
                    .plugins
                    .iter()
                    .zip(&r.plugins)
                    .all(|(a, b)| a.name == b.name)
                && p.spec.workers == spec.workers)
                .then(|| old_sim.clone())
        });
        let sim = match reuse {
            Some(sim) => {
                // Checked now, applied only when every route's new plugins passed: a rejected
                // file changes nothing.
                let mut changed = Vec::new();
                {
                    let mut s = sim.lock().map_err(|_| anyhow!("poisoned"))?;
                    for (k, ps) in specs.into_iter().enumerate() {
                        let same = s.plugin_spec(k).is_some_and(|old| {
                            old.config == ps.config && old.module.hash == ps.module.hash
                        });
                        if !same {
                            s.check_plugin(&ps)
                                .map_err(|e| anyhow!("routes[{i}].plugins[{k}]: {e:#}"))?;
                            changed.push((k, ps));
                        }
                    }
                }
                reloads.push((i, sim.clone(), changed));
                sim
            }
            None => {
                let mut s = match &host {
                    Some(h) => {
                        Sim::with_host(crate::sim::global_loader().clone(), opts.clone(), h.clone())
                    }
                    None => {
                        let s = Sim::new(opts.clone());
                        host = Some(s.host());
                        s
                    }
                };
                for (k, ps) in specs.into_iter().enumerate() {
                    s.add_plugin(ps)
                        .map_err(|e| anyhow!("routes[{i}].plugins[{k}]: {e:#}"))?;
                }
                Arc::new(Mutex::new(s))
            }
        };
        if let Ok(mut s) = sim.lock() {
            for (name, c) in &spec.clusters {
                if let Some(e) = spec.endpoints(name).first() {
                    if c.kind.is_none() {
                        s.add_cluster(name.clone(), crate::sim::Cluster::Addr(e.addr));
                    }
                }
            }
        }
        sims.push(sim);
    }
    for (i, sim, changed) in reloads {
        let mut s = sim.lock().map_err(|_| anyhow!("poisoned"))?;
        for (k, ps) in changed {
            // Checked above; a failure here (a VM that cannot be built) is reported, and the
            // plugins reloaded before it stay reloaded.
            s.reload(k, ps)
                .map_err(|e| anyhow!("routes[{i}].plugins[{k}]: {e:#}"))?;
        }
    }
    Ok(Generation { spec, sims, stamps })
}
