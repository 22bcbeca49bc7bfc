//! `host-sim`: run proxy-wasm plugins on a request from the command line, inspect a module,
//! serve a local gateway, or start a mock LLM server. `host-sim --help` and
//! `host-sim <command> --help` describe every flag and the exit codes.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    let code = match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("host-sim: {e:#}");
            cli::exit::USAGE
        }
    };
    std::process::exit(code);
}
