//! The command line: subcommands and flags (clap), and the exit codes.

mod check;
mod inspect;
mod run;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Exit codes of `host-sim`.
pub mod exit {
    /// The command succeeded; for `run`, the stream completed (the client got a whole
    /// response, a local reply included).
    pub const OK: i32 = 0;
    /// Bad usage or configuration: an unknown flag, a missing file, a module that does not
    /// load, a plugin that rejects its configuration or fails to start (for `check`: the
    /// configuration is rejected).
    pub const USAGE: i32 = 2;
    /// `run`: the stream did not complete: it was reset, or it can never finish (a filter
    /// holds it and nothing will resume it).
    pub const INCOMPLETE: i32 = 3;
    /// `run`: a module trapped while serving the stream (the VM failed).
    pub const TRAP: i32 = 4;
}

/// The exit codes, as `--help` shows them.
pub const EXIT_CODES: &str = "Exit codes:
  0  success; for `run`, the stream completed (a local reply included); for `check`, the
     configuration matches the schema (when there is one) and the plugin accepts it
  2  usage or configuration error (bad flag, missing file, module that does not load,
     plugin that rejects its configuration or fails to start)
  3  `run`: the stream did not complete (reset, or held by a filter that never resumes it)
  4  `run`: a module trapped while serving the stream";

/// A proxy-wasm host on wasmtime that behaves like Envoy (and Higress for ABI 0_2_100).
#[derive(Debug, Parser)]
#[command(name = "host-sim", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one request (and an upstream answer) through a chain of plugins.
    #[command(after_help = EXIT_CODES)]
    Run(Box<run::RunArgs>),
    /// Describe a module: ABI, filter kind, imports (flagging those stock Envoy lacks), exports.
    #[command(after_help = EXIT_CODES)]
    Inspect(inspect::InspectArgs),
    /// Check a configuration against the plugin's JSON Schema (`--schema`, or
    /// `<module>.schema.json` next to the module) and the plugin itself: load the module, start
    /// it and run `on_configure` as Envoy does (exit 0: accepted, 2: rejected).
    #[command(after_help = EXIT_CODES)]
    Check(check::CheckArgs),
    /// Serve a local gateway on loopback from a gateway file; reloads when it or a module
    /// changes.
    #[command(after_help = EXIT_CODES)]
    Serve(ServeArgs),
    /// Start a mock OpenAI/Anthropic/Gemini/Bedrock/vLLM server (`mock-llm --help` lists its
    /// flags).
    #[command(disable_help_flag = true)]
    MockLlm {
        /// The mock server's flags.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// `host-sim serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The gateway file (JSON: listener, clusters, routes with plugin chains).
    #[arg(value_name = "GATEWAY.json")]
    config: PathBuf,
}

/// Runs the chosen subcommand and returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Run(a) => run::run(*a),
        Cmd::Inspect(a) => inspect::inspect(a),
        Cmd::Check(a) => check::check(a),
        Cmd::Serve(a) => serve(a),
        Cmd::MockLlm { args } => host_sim::mock_llm::cli::main(&args),
    }
}

fn serve(a: ServeArgs) -> Result<i32> {
    let gw = std::sync::Arc::new(host_sim::gateway::server::Gateway::load(&a.config)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(host_sim::gateway::server::serve(gw))?;
    Ok(exit::OK)
}
