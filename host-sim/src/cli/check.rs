//! `host-sim check`: does a plugin accept a configuration? Loads the module, starts a VM and
//! runs `proxy_on_vm_start` and `proxy_on_configure` with the configuration, as Envoy does
//! when it loads a filter, and reports the verdict. For CI before a deploy.

use super::exit;
use super::run::inline_or_file;
use host_sim::{LogLevel, PluginSpec, Sim, SimOptions};
use std::path::PathBuf;

/// `host-sim check PLUGIN.wasm [CONFIG.json]`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The module (.wasm, or WAT text).
    #[arg(value_name = "PLUGIN.wasm")]
    module: PathBuf,
    /// The plugin configuration: a file, or inline JSON (default: empty, as Envoy passes
    /// when the filter has no `configuration`).
    #[arg(value_name = "CONFIG.json")]
    config: Option<String>,
    /// Envoy's root_id (needed by AssemblyScript proxy-runtime modules and modules with
    /// several root contexts).
    #[arg(long = "root-id", value_name = "ID")]
    root_id: Option<String>,
    /// Envoy's vm_id.
    #[arg(long = "vm-id", value_name = "ID")]
    vm_id: Option<String>,
    /// The VM configuration (`vm_config.configuration`): a file, or inline JSON.
    #[arg(long = "vm-config", value_name = "JSON")]
    vm_config: Option<String>,
    /// Print only the verdict, not the plugin's log lines.
    #[arg(long, short)]
    quiet: bool,
}

/// Exit 0 when the plugin accepts the configuration, 2 when it rejects it (or traps, or the
/// module does not load).
pub fn check(a: CheckArgs) -> anyhow::Result<i32> {
    let mut spec = PluginSpec::from_file(&a.module)?;
    if let Some(c) = &a.config {
        spec = spec.config(inline_or_file(c, "CONFIG.json")?);
    }
    if let Some(v) = &a.vm_config {
        spec.vm_config = inline_or_file(v, "--vm-config")?;
    }
    if let Some(r) = &a.root_id {
        spec = spec.root_id(r.clone());
    }
    if let Some(v) = &a.vm_id {
        spec = spec.vm_id(v.clone());
    }
    let name = spec.name.clone();
    let mut sim = Sim::new(SimOptions {
        log_level: LogLevel::Info,
        ..Default::default()
    });
    let verdict = sim.check_plugin(&spec);
    if !a.quiet {
        for l in sim.logs() {
            eprintln!("[{:?}] {}: {}", l.level, l.plugin, l.message);
        }
    }
    match verdict {
        Ok(()) => {
            println!("ok: {name} accepts the configuration");
            Ok(exit::OK)
        }
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("host-sim: {msg}");
            if a.root_id.is_none() && msg.contains("trapped") {
                eprintln!(
                    "host-sim: if the module has several root contexts or is built on \
                     AssemblyScript's proxy-runtime, name its root context with --root-id"
                );
            }
            Ok(exit::USAGE)
        }
    }
}
