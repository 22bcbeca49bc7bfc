//! `host-sim inspect`.

use super::exit;
use anyhow::Result;
use std::path::PathBuf;

/// `host-sim inspect MODULE [--json]`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The module (.wasm, or WAT text).
    #[arg(value_name = "PLUGIN.wasm")]
    module: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Prints what the module is and whether stock Envoy can load it.
pub fn inspect(a: InspectArgs) -> Result<i32> {
    let m = host_sim::global_loader().load_file(&a.module)?;
    let info = host_sim::inspect(&m);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(exit::OK);
    }
    println!("module:  {}", a.module.display());
    println!("size:    {} bytes", info.size);
    println!("abi:     {}", info.abi.marker());
    println!("kind:    {}", info.kind.describe());
    println!("imports: {}", info.imports.len());
    for i in &info.imports {
        let flag = if info.non_envoy_imports.contains(i) {
            "  (not in stock Envoy)"
        } else {
            ""
        };
        println!("  {i}{flag}");
    }
    println!("exports: {}", info.exports.join(", "));
    if info.non_envoy_imports.is_empty() {
        println!("portable: yes (stock Envoy provides every import)");
    } else {
        println!(
            "portable: no ({} imports stock Envoy lacks)",
            info.non_envoy_imports.len()
        );
    }
    Ok(exit::OK)
}
