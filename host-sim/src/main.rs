//! `host-sim`: run proxy-wasm plugins on a request from the command line, or inspect a module.
//!
//! ```text
//! host-sim run PLUGIN.wasm [--plugin MORE.wasm ...] --config CONFIG.json [...]
//!          --request REQ.http [--upstream RESP.http] [--chunk-size N]
//!          [--cluster NAME=HOST:PORT ...] [--redis NAME=HOST:PORT] [--workers N] [--json]
//! host-sim inspect PLUGIN.wasm [--json]
//! ```

use anyhow::{anyhow, bail, Context, Result};
use host_sim::http1;
use host_sim::{inspect, Cluster, PluginSpec, Sim, SimOptions, UpstreamResponse};
use std::net::{SocketAddr, ToSocketAddrs};

const USAGE: &str = "usage:
  host-sim run PLUGIN.wasm [--plugin MORE.wasm ...] [--config CONFIG.json ...]
               --request REQ.http [--upstream RESP.http] [--chunk-size N]
               [--cluster NAME=HOST:PORT ...] [--redis NAME=HOST:PORT ...] [--workers N] [--json]
  host-sim inspect PLUGIN.wasm [--json]
  host-sim serve GATEWAY.json        (local gateway; reloads when the file or a module changes)
  host-sim mock-llm [--listen 127.0.0.1:8000] [...]   (mock LLM server; mock-llm --help)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(|s| s.as_str()) {
        Some("run") => cmd_run(&args[1..]),
        Some("inspect") => cmd_inspect(&args[1..]),
        Some("serve") => cmd_serve(&args[1..]),
        Some("mock-llm") => host_sim::mock_llm::cli::main(&args[1..]),
        Some("-h") | Some("--help") | None => {
            println!("{USAGE}");
            Ok(0)
        }
        Some(other) => Err(anyhow!("unknown command {other:?}\n{USAGE}")),
    };
    match r {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("host-sim: {e:#}");
            std::process::exit(2);
        }
    }
}

fn addr(spec: &str) -> Result<(String, SocketAddr)> {
    let (name, hp) = spec
        .split_once('=')
        .ok_or_else(|| anyhow!("expected NAME=HOST:PORT, got {spec:?}"))?;
    let a = hp
        .to_socket_addrs()
        .with_context(|| format!("bad address {hp:?}"))?
        .next()
        .ok_or_else(|| anyhow!("no address for {hp:?}"))?;
    Ok((name.to_string(), a))
}

fn read_config(arg: &str) -> Result<Vec<u8>> {
    if arg.trim_start().starts_with('{') || arg.trim_start().starts_with('[') {
        return Ok(arg.as_bytes().to_vec());
    }
    std::fs::read(arg).with_context(|| format!("cannot read config {arg}"))
}

fn cmd_run(args: &[String]) -> Result<i32> {
    let mut positional = Vec::new();
    let mut plugins = Vec::new();
    let mut configs = Vec::new();
    let mut request = None;
    let mut upstream = None;
    let mut clusters = Vec::new();
    let mut redis = Vec::new();
    let mut chunk = 0usize;
    let mut workers = 1usize;
    let mut json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--plugin" => plugins.push(val()?),
            "--config" => configs.push(val()?),
            "--request" => request = Some(val()?),
            "--upstream" => upstream = Some(val()?),
            "--cluster" => clusters.push(addr(&val()?)?),
            "--redis" => redis.push(addr(&val()?)?),
            "--chunk-size" => chunk = val()?.parse().context("--chunk-size")?,
            "--workers" => workers = val()?.parse().context("--workers")?,
            "--json" => json = true,
            s if s.starts_with("--") => bail!("unknown option {s}\n{USAGE}"),
            s => positional.push(s.to_string()),
        }
    }
    positional.append(&mut plugins);
    let plugins = positional;
    if plugins.is_empty() {
        bail!("no plugin given\n{USAGE}");
    }
    if configs.len() > plugins.len() {
        bail!(
            "{} --config given for {} plugins",
            configs.len(),
            plugins.len()
        );
    }
    let req_path = request.ok_or_else(|| anyhow!("--request REQ.http is required"))?;
    let req_bytes =
        std::fs::read(&req_path).with_context(|| format!("cannot read request {req_path}"))?;
    let mut req = http1::parse_request(&req_bytes).with_context(|| req_path.clone())?;
    req.chunk_size = chunk;
    let resp = match &upstream {
        Some(p) => {
            let b = std::fs::read(p).with_context(|| format!("cannot read upstream {p}"))?;
            http1::parse_response(&b).with_context(|| p.clone())?
        }
        None => UpstreamResponse::json(200, Vec::new()),
    }
    .chunked(chunk);

    let mut sim = Sim::new(SimOptions {
        workers,
        ..Default::default()
    });
    for (n, a) in clusters {
        sim.add_cluster(n, Cluster::Addr(a));
    }
    for (n, a) in redis {
        sim.add_redis(n, a);
    }
    for (i, p) in plugins.iter().enumerate() {
        let mut spec = PluginSpec::from_file(p)?;
        if let Some(c) = configs.get(i) {
            spec = spec.config(read_config(c)?);
        }
        if let Err(e) = sim.add_plugin(spec) {
            for l in sim.logs() {
                eprintln!("[{:?}] {}: {}", l.level, l.plugin, l.message);
            }
            return Err(e);
        }
    }
    sim.clear_logs();
    let rec = sim.run(req, resp)?;
    for l in sim.logs() {
        if l.message
            .starts_with("host-sim: http call to unknown cluster")
        {
            eprintln!(
                "host-sim: {} (add --cluster NAME=HOST:PORT)",
                &l.message[10..]
            );
        }
    }
    if json {
        let metrics: serde_json::Map<String, serde_json::Value> = sim
            .metrics()
            .into_iter()
            .map(|(k, m)| (k, serde_json::json!(m.value)))
            .collect();
        let report = serde_json::json!({
            "upstream_request": rec.upstream_request,
            "response": rec.response,
            "local_reply": rec.local_reply,
            "logs": sim.logs().iter().map(|l| serde_json::json!({"level": l.level, "message": l.message})).collect::<Vec<_>>(),
            "metrics": metrics,
            "http_calls": sim.http_call_log,
            "finished": rec.finished,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        use std::io::Write;
        let out = http1::format_response(&rec.response);
        std::io::stdout().write_all(&out)?;
        if !out.ends_with(b"\n") {
            println!();
        }
        if rec.response.reset {
            match &rec.response.reset_reason {
                Some(r) => eprintln!("host-sim: the stream was reset ({r})"),
                None => eprintln!("host-sim: the stream was reset"),
            }
        }
        if let Some(e) = rec
            .upstream_request
            .as_ref()
            .and_then(|u| u.framing_error.as_ref())
        {
            eprintln!("host-sim: error: request to the upstream: {e}");
        }
        if let Some(e) = &rec.response.framing_error {
            eprintln!("host-sim: error: response to the client: {e}");
        }
    }
    Ok(0)
}

fn cmd_serve(args: &[String]) -> Result<i32> {
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .ok_or_else(|| anyhow!("serve needs a gateway config file\n{USAGE}"))?;
    let gw = std::sync::Arc::new(host_sim::gateway::server::Gateway::load(
        std::path::Path::new(path),
    )?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(host_sim::gateway::server::serve(gw))?;
    Ok(0)
}

fn cmd_inspect(args: &[String]) -> Result<i32> {
    let json = args.iter().any(|a| a == "--json");
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .ok_or_else(|| anyhow!("inspect needs a module path"))?;
    let m = host_sim::global_loader().load_file(path)?;
    let info = inspect(&m);
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(0);
    }
    println!("module:  {path}");
    println!("size:    {} bytes", info.size);
    println!("abi:     {}", info.abi.marker());
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
    Ok(0)
}
