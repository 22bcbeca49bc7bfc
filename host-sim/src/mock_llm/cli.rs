//! `host-sim mock-llm [options]`: command-line flags for [`super::MockOptions`].

use super::controls::{parse_bool, parse_tool_mode, ErrorMode};
use super::MockOptions;
use anyhow::{anyhow, bail, Context, Result};

/// The usage text of the subcommand.
pub const USAGE: &str = "host-sim mock-llm [--listen 127.0.0.1:8000] [--require-key KEY] [--models a,b]
        [--latency-ms N] [--ttft-ms N] [--tokens-per-sec N] [--chunk-size N] [--answer TEXT]
        [--error 429|500|503|reset|hang|cut] [--tool-call auto|force|off] [--max-tokens-honoured BOOL]
        [--max-running N] [--max-waiting N] [--kv-capacity TOKENS] [--embedding-dims N]
        [--moderation-flag-words a,b] [--served-model-name NAME] [--quiet]";

/// Parses the subcommand's arguments (everything after `mock-llm`).
pub fn parse(args: &[String]) -> Result<MockOptions> {
    let mut o = MockOptions {
        listen: "127.0.0.1:8000".into(),
        access_log: true,
        ..Default::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut val = || -> Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| anyhow!("{flag} needs a value")),
            }
        };
        match flag {
            "--listen" => o.listen = val()?,
            "--require-key" => o.require_key = Some(val()?),
            "--models" => o.models = comma_list(&val()?),
            "--served-model-name" => o.served_model_name = val()?,
            "--latency-ms" => o.defaults.latency_ms = val()?.parse().context("--latency-ms")?,
            "--ttft-ms" => o.defaults.ttft_ms = val()?.parse().context("--ttft-ms")?,
            "--tokens-per-sec" => {
                let v: f64 = val()?.parse().context("--tokens-per-sec")?;
                if !v.is_finite() || v < 0.0 {
                    bail!("--tokens-per-sec must be 0 or positive");
                }
                o.defaults.tokens_per_sec = v;
            }
            "--chunk-size" => {
                o.defaults.chunk_size = val()?.parse().context("--chunk-size")?;
                if o.defaults.chunk_size == 0 {
                    bail!("--chunk-size must be at least 1");
                }
            }
            "--answer" => o.defaults.answer = Some(val()?),
            "--error" => {
                o.defaults.error =
                    Some(ErrorMode::parse(&val()?).map_err(|e| anyhow!("--error: {e}"))?)
            }
            "--tool-call" => {
                o.defaults.tool =
                    parse_tool_mode(&val()?).map_err(|e| anyhow!("--tool-call: {e}"))?
            }
            "--max-tokens-honoured" => {
                o.defaults.honour_max_tokens =
                    parse_bool(&val()?).map_err(|e| anyhow!("--max-tokens-honoured: {e}"))?
            }
            "--max-running" => o.max_running = val()?.parse().context("--max-running")?,
            "--max-waiting" => o.max_waiting = Some(val()?.parse().context("--max-waiting")?),
            "--kv-capacity" => o.kv_capacity_tokens = val()?.parse().context("--kv-capacity")?,
            "--embedding-dims" => o.embedding_dims = val()?.parse().context("--embedding-dims")?,
            "--moderation-flag-words" => o.moderation_flag_words = comma_list(&val()?),
            "--quiet" => o.access_log = false,
            other => bail!("unknown option {other:?}\nusage: {USAGE}"),
        }
    }
    Ok(o)
}

/// The trimmed, non-empty items of a comma-separated option value.
fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Runs the subcommand; returns the process exit code.
pub fn main(args: &[String]) -> Result<i32> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: {USAGE}");
        return Ok(0);
    }
    super::run(parse(args)?)?;
    Ok(0)
}
