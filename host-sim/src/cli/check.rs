//! `host-sim check`: does a plugin accept a configuration? Two checks, both must pass:
//! the configuration against the plugin's JSON Schema (`--schema FILE`, or
//! `<module stem>.schema.json` next to the module when present), each problem named by its
//! JSON pointer; and the plugin itself: load the module, start a VM and run
//! `proxy_on_vm_start` and `proxy_on_configure` with the configuration, as Envoy does when it
//! loads a filter. For CI before a deploy.

use super::exit;
use super::run::inline_or_file;
use anyhow::Context;
use host_sim::config_schema;
use host_sim::{LogLevel, PluginSpec, Sim, SimOptions};
use std::path::{Path, PathBuf};

/// `host-sim check PLUGIN.wasm [CONFIG.json] [--schema FILE]`.
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
    /// The JSON Schema to check the configuration against (default:
    /// `<module stem>.schema.json` next to the module, or one directory up for a module in
    /// `higress/`, when there is one).
    #[arg(long, value_name = "FILE", conflicts_with = "no_schema")]
    schema: Option<PathBuf>,
    /// Check against the plugin only, not a JSON Schema.
    #[arg(long = "no-schema")]
    no_schema: bool,
    /// Print only the verdicts, not the plugin's log lines.
    #[arg(long, short)]
    quiet: bool,
}

/// Where a module's schema is looked for: `dist/ai-proxy.wasm` → `dist/ai-proxy.schema.json`;
/// a Higress build (`dist/higress/ai-proxy.wasm`) has the same configuration, so its schema
/// may also be one directory up.
fn schema_candidates(module: &Path) -> Vec<PathBuf> {
    let stem = module
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = format!("{stem}.schema.json");
    let mut out = vec![module.with_file_name(&name)];
    if let Some(dir) = module.parent() {
        if dir.file_name().is_some_and(|d| d == "higress") {
            out.push(dir.with_file_name(&name));
        }
    }
    out
}

/// The schema half: `Ok(Some(note))` when the configuration matches (or no schema applies),
/// with what the final verdict says about the schema; `Ok(None)` after printing the problems.
fn schema_verdict(a: &CheckArgs, config: &[u8]) -> anyhow::Result<Option<String>> {
    if a.no_schema {
        return Ok(Some("schema not checked (--no-schema)".into()));
    }
    let path = match &a.schema {
        Some(p) => p.clone(),
        None => {
            let candidates = schema_candidates(&a.module);
            match candidates.iter().find(|p| p.is_file()) {
                Some(p) => p.clone(),
                None => {
                    let looked: Vec<String> =
                        candidates.iter().map(|p| p.display().to_string()).collect();
                    return Ok(Some(format!(
                        "no schema found: looked for {}",
                        looked.join(" and ")
                    )));
                }
            }
        }
    };
    let text = std::fs::read(&path)
        .with_context(|| format!("--schema: cannot read {}", path.display()))?;
    let schema: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("--schema: {} is not JSON", path.display()))?;
    let shown = path.display();
    // Envoy passes an empty configuration when there is none: the plugins read it as `{}`.
    let value = if config.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(Default::default())
    } else {
        match serde_json::from_slice(config) {
            Ok(v) => v,
            Err(e) => {
                eprintln!(
                    "host-sim: schema {shown}: the configuration is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                );
                return Ok(None);
            }
        }
    };
    let problems = config_schema::check(&schema, &value)
        .map_err(|e| anyhow::anyhow!("--schema: {shown} is not a usable JSON Schema: {e}"))?;
    if problems.is_empty() {
        return Ok(Some(format!("it matches the schema {shown}")));
    }
    for p in &problems {
        eprintln!("host-sim: schema {shown}: {p}");
    }
    Ok(None)
}

/// Exit 0 when the configuration matches the schema (if any) and the plugin accepts it; 2
/// when either rejects it (or the plugin traps, or the module does not load).
pub fn check(a: CheckArgs) -> anyhow::Result<i32> {
    let mut spec = PluginSpec::from_file(&a.module)?;
    let config = match &a.config {
        Some(c) => inline_or_file(c, "CONFIG.json")?,
        None => Vec::new(),
    };
    let schema_note = schema_verdict(&a, &config)?;
    if a.config.is_some() {
        spec = spec.config(config);
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
    match (verdict, schema_note) {
        (Ok(()), Some(note)) => {
            println!("ok: {name} accepts the configuration; {note}");
            Ok(exit::OK)
        }
        (Ok(()), None) => {
            eprintln!(
                "host-sim: {name} accepts the configuration, but it does not match the schema"
            );
            Ok(exit::USAGE)
        }
        (Err(e), _) => {
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
