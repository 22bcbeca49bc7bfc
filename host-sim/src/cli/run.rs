//! `host-sim run`: one request through a chain of plugins, with the upstream's answer from a
//! file, call-outs to real local servers, and an exit code that says how the stream ended.

use super::exit;
use anyhow::{anyhow, bail, Context, Result};
use host_sim::{
    http1, Cluster, FilterKind, PluginSpec, Request, Sim, SimOptions, StreamRecord,
    UpstreamResponse,
};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `host-sim run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Plugin modules, in request order (first sees the request first).
    #[arg(value_name = "PLUGIN.wasm")]
    plugins: Vec<PathBuf>,
    /// More plugin modules, appended after the positional ones.
    #[arg(long = "plugin", value_name = "PLUGIN.wasm")]
    more_plugins: Vec<PathBuf>,
    /// Plugin configuration (inline JSON or a file), one per plugin in chain order.
    #[arg(long, value_name = "CONFIG.json")]
    config: Vec<String>,
    /// Envoy's root_id, one per plugin in chain order (needed by AssemblyScript
    /// proxy-runtime modules and modules with several root contexts).
    #[arg(long = "root-id", value_name = "ID")]
    root_id: Vec<String>,
    /// Envoy's vm_id, one per plugin in chain order (namespace of shared data and queues).
    #[arg(long = "vm-id", value_name = "ID")]
    vm_id: Vec<String>,
    /// The client's request as an HTTP/1.1 message.
    #[arg(long, value_name = "REQ.http", required_unless_present = "service")]
    request: Option<PathBuf>,
    /// Run the modules as background services (Envoy's bootstrap `WasmService`): root
    /// contexts only, no stream; use --advance-ms to let their ticks fire.
    #[arg(long, conflicts_with = "request")]
    service: bool,
    /// The upstream's answer as an HTTP/1.1 message (default: 200 with an empty JSON body).
    #[arg(long, value_name = "RESP.http")]
    upstream: Option<PathBuf>,
    /// Deliver request and response bodies in pieces of N bytes (0: one piece).
    #[arg(long = "chunk-size", value_name = "N", default_value_t = 0)]
    chunk_size: usize,
    /// Send HTTP and gRPC call-outs to cluster NAME to this address (repeatable).
    #[arg(long, value_name = "NAME=HOST:PORT", value_parser = name_addr)]
    cluster: Vec<(String, SocketAddr)>,
    /// Send Higress Redis calls to cluster NAME to this Redis server (repeatable).
    #[arg(long, value_name = "NAME=HOST:PORT", value_parser = name_addr)]
    redis: Vec<(String, SocketAddr)>,
    /// Worker VMs per plugin.
    #[arg(long, value_name = "N", default_value_t = 1)]
    workers: usize,
    /// The `route_name` property.
    #[arg(long = "route-name", value_name = "NAME")]
    route_name: Option<String>,
    /// The `cluster_name` property (the route's upstream cluster).
    #[arg(long = "cluster-name", value_name = "NAME")]
    cluster_name: Option<String>,
    /// The client's address (`source.address`, HOST:PORT).
    #[arg(long = "source-address", value_name = "HOST:PORT")]
    source_address: Option<String>,
    /// The upstream host's address (`upstream.address` once the request reaches it).
    #[arg(long = "upstream-address", value_name = "HOST:PORT")]
    upstream_address: Option<String>,
    /// Dynamic metadata (property `metadata`): a Metadata message as JSON, inline or a file,
    /// e.g. '{"filter_metadata":{"envoy.filters.http.lua":{"key":"value"}}}'.
    #[arg(long, value_name = "JSON")]
    metadata: Option<String>,
    /// The route's metadata (property `route_metadata`), as for --metadata.
    #[arg(long = "route-metadata", value_name = "JSON")]
    route_metadata: Option<String>,
    /// The listener's metadata (property `listener_metadata`), as for --metadata.
    #[arg(long = "listener-metadata", value_name = "JSON")]
    listener_metadata: Option<String>,
    /// The cluster's metadata (property `cluster_metadata`), as for --metadata.
    #[arg(long = "cluster-metadata", value_name = "JSON")]
    cluster_metadata: Option<String>,
    /// Simulated time (ms) to let ticks and call-out timeouts fire while the stream has not
    /// finished, before it is reported as incomplete.
    #[arg(long = "settle-ms", value_name = "MS", default_value_t = 60_000)]
    settle_ms: u64,
    /// Simulated time (ms) to run after the stream has ended, firing ticks and queue
    /// deliveries (to watch root-context work such as periodic logs).
    #[arg(long = "advance-ms", value_name = "MS", default_value_t = 0)]
    advance_ms: u64,
    /// Print a JSON report (upstream request, response, logs, metrics, call-outs).
    #[arg(long)]
    json: bool,
    /// Do not print the plugins' log lines (text mode).
    #[arg(long, short)]
    quiet: bool,
}

fn name_addr(spec: &str) -> Result<(String, SocketAddr), String> {
    let (name, hp) = spec
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=HOST:PORT, got {spec:?}"))?;
    let a = hp
        .to_socket_addrs()
        .map_err(|e| format!("bad address {hp:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {hp:?}"))?;
    Ok((name.to_string(), a))
}

/// Inline JSON, or the bytes of a file.
pub(super) fn inline_or_file(arg: &str, flag: &str) -> Result<Vec<u8>> {
    let t = arg.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        return Ok(arg.as_bytes().to_vec());
    }
    std::fs::read(arg).with_context(|| format!("{flag}: cannot read {arg}"))
}

fn json_arg(arg: &str, flag: &str) -> Result<serde_json::Value> {
    let bytes = inline_or_file(arg, flag)?;
    serde_json::from_slice(&bytes).with_context(|| format!("{flag}: not JSON"))
}

/// One value per plugin, in order: more values than plugins is an error naming the flag.
fn per_plugin<'a>(values: &'a [String], n: usize, flag: &str) -> Result<&'a [String]> {
    if values.len() > n {
        bail!(
            "{} {flag} given for {n} plugin(s): give at most one {flag} per plugin, in chain order",
            values.len()
        );
    }
    Ok(values)
}

fn request(a: &RunArgs, path: &Path) -> Result<Request> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("--request: cannot read {}", path.display()))?;
    let mut req =
        http1::parse_request(&bytes).with_context(|| format!("--request {}", path.display()))?;
    req.chunk_size = a.chunk_size;
    let p = &mut req.opts.props;
    if let Some(r) = &a.route_name {
        p.route_name = r.clone();
    }
    if let Some(c) = &a.cluster_name {
        p.cluster_name = c.clone();
    }
    if let Some(s) = &a.source_address {
        p.source_address = s.clone();
    }
    if let Some(u) = &a.upstream_address {
        p.upstream_host = u.clone();
    }
    for (flag, prop, v) in [
        ("--metadata", "metadata", &a.metadata),
        ("--route-metadata", "route_metadata", &a.route_metadata),
        (
            "--listener-metadata",
            "listener_metadata",
            &a.listener_metadata,
        ),
        (
            "--cluster-metadata",
            "cluster_metadata",
            &a.cluster_metadata,
        ),
    ] {
        if let Some(v) = v {
            p.metadata.insert(prop.into(), json_arg(v, flag)?);
        }
    }
    Ok(req)
}

fn upstream(a: &RunArgs) -> Result<UpstreamResponse> {
    let resp = match &a.upstream {
        Some(p) => {
            let b = std::fs::read(p)
                .with_context(|| format!("--upstream: cannot read {}", p.display()))?;
            http1::parse_response(&b).with_context(|| format!("--upstream {}", p.display()))?
        }
        None => UpstreamResponse::json(200, Vec::new()),
    };
    Ok(resp.chunked(a.chunk_size))
}

/// Builds the chain. A plugin that fails to start shows its log lines, then the reason.
fn gateway(a: &RunArgs) -> Result<Sim> {
    let plugins: Vec<&PathBuf> = a.plugins.iter().chain(&a.more_plugins).collect();
    if plugins.is_empty() {
        bail!("no plugin given: name a module (host-sim run PLUGIN.wasm ...) or use --plugin");
    }
    let configs = per_plugin(&a.config, plugins.len(), "--config")?;
    let roots = per_plugin(&a.root_id, plugins.len(), "--root-id")?;
    let vm_ids = per_plugin(&a.vm_id, plugins.len(), "--vm-id")?;
    let mut sim = Sim::new(SimOptions {
        workers: a.workers.max(1),
        ..Default::default()
    });
    for (n, addr) in &a.cluster {
        sim.add_cluster(n.clone(), Cluster::Addr(*addr));
    }
    for (n, addr) in &a.redis {
        sim.add_redis(n.clone(), *addr);
    }
    for (i, p) in plugins.iter().enumerate() {
        let mut spec = PluginSpec::from_file(p)?;
        let kind = host_sim::inspect(&spec.module).kind;
        if kind == FilterKind::Network {
            bail!(
                "{} is a network (TCP) filter: `host-sim run` drives HTTP streams (see `host-sim inspect`)",
                p.display()
            );
        }
        if let Some(c) = configs.get(i) {
            spec = spec.config(inline_or_file(c, "--config")?);
        }
        if let Some(r) = roots.get(i) {
            spec = spec.root_id(r.clone());
        }
        if let Some(v) = vm_ids.get(i) {
            spec = spec.vm_id(v.clone());
        }
        let no_root_id = spec.root_id.is_empty();
        if let Err(e) = sim.add_plugin(spec) {
            print_logs(&sim);
            if no_root_id && format!("{e:#}").contains("trapped") {
                return Err(e.context(
                    "if the module has several root contexts or is built on AssemblyScript's \
                     proxy-runtime, name its root context with --root-id",
                ));
            }
            return Err(e);
        }
    }
    Ok(sim)
}

fn print_logs(sim: &Sim) {
    for l in sim.logs() {
        eprintln!("[{:?}] {}: {}", l.level, l.plugin, l.message);
    }
}

/// Drives the stream to its end: answers it with `resp` once the request reached the upstream,
/// and lets simulated time run (ticks, call-out timeouts) while something may still resume it.
fn drive(sim: &mut Sim, req: Request, resp: &UpstreamResponse, settle: Duration) -> Result<u64> {
    let sid = sim.begin(req)?;
    let step = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    let mut answered = false;
    loop {
        let rec = sim
            .record(sid)
            .ok_or_else(|| anyhow!("stream {sid} vanished"))?;
        if rec.finished {
            return Ok(sid);
        }
        let reached = rec.upstream_request.as_ref().is_some_and(|u| u.complete);
        if reached && !answered && rec.response.status == 0 && rec.local_reply.is_none() {
            answered = true;
            sim.respond(sid, resp)?;
            continue;
        }
        if waited >= settle {
            return Ok(sid);
        }
        sim.advance(step);
        waited += step;
    }
}

/// `host-sim run`.
pub fn run(a: RunArgs) -> Result<i32> {
    let mut sim = gateway(&a)?;
    let Some(req_path) = a.request.clone() else {
        // A background service: start-up, then ticks for --advance-ms.
        sim.advance(Duration::from_millis(a.advance_ms));
        if !a.quiet {
            print_logs(&sim);
        }
        let trapped =
            (0..sim.chain_len()).any(|p| (0..a.workers.max(1)).any(|w| sim.vm_failed(p, w)));
        return Ok(if trapped { exit::TRAP } else { exit::OK });
    };
    let req = request(&a, &req_path)?;
    let resp = upstream(&a)?;
    let sid = drive(&mut sim, req, &resp, Duration::from_millis(a.settle_ms))?;
    let rec = sim
        .take_record(sid)
        .ok_or_else(|| anyhow!("stream {sid} vanished"))?;
    if a.advance_ms > 0 {
        sim.advance(Duration::from_millis(a.advance_ms));
    }
    let trapped = (0..sim.chain_len()).any(|p| (0..a.workers.max(1)).any(|w| sim.vm_failed(p, w)));
    let upstream_framing = rec
        .upstream_request
        .as_ref()
        .and_then(|u| u.framing_error.clone());
    let framing = upstream_framing.is_some() || rec.response.framing_error.is_some();
    let code = if trapped {
        exit::TRAP
    } else if !rec.finished || rec.response.reset || !rec.response.complete || framing {
        exit::INCOMPLETE
    } else {
        exit::OK
    };
    if a.json {
        print_json(&sim, &rec, code)?;
    } else {
        print_text(&sim, &rec, a.quiet)?;
    }
    for l in sim.logs() {
        if let Some(rest) = l.message.strip_prefix("host-sim: ") {
            if rest.contains("unknown cluster") {
                eprintln!("host-sim: {rest} (add --cluster NAME=HOST:PORT)");
            }
        }
    }
    match code {
        exit::TRAP => eprintln!("host-sim: a module trapped while serving the stream"),
        exit::INCOMPLETE if !rec.finished => eprintln!(
            "host-sim: the stream did not complete: {}",
            rec.incomplete.as_deref().unwrap_or("unknown reason")
        ),
        exit::INCOMPLETE if rec.response.reset => match &rec.response.reset_reason {
            Some(r) => eprintln!("host-sim: the stream was reset ({r})"),
            None => eprintln!("host-sim: the stream was reset"),
        },
        _ => {}
    }
    // A `content-length` left in place over a body of another size: Envoy would send a
    // broken message.
    if let Some(e) = &upstream_framing {
        eprintln!("host-sim: error: request to the upstream: {e}");
    }
    if let Some(e) = &rec.response.framing_error {
        eprintln!("host-sim: error: response to the client: {e}");
    }
    Ok(code)
}

fn print_json(sim: &Sim, rec: &StreamRecord, code: i32) -> Result<()> {
    let metrics: serde_json::Map<String, serde_json::Value> = sim
        .metrics()
        .into_iter()
        .map(|(k, m)| (k, serde_json::json!(m.value)))
        .collect();
    let logs: Vec<serde_json::Value> = sim
        .logs()
        .iter()
        .map(|l| serde_json::json!({"level": l.level, "plugin": l.plugin, "message": l.message}))
        .collect();
    let report = serde_json::json!({
        "upstream_request": rec.upstream_request,
        "response": rec.response,
        "local_reply": rec.local_reply,
        "logs": logs,
        "metrics": metrics,
        "http_calls": sim.http_call_log(),
        "finished": rec.finished,
        "incomplete": rec.incomplete,
        "exit_code": code,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn print_text(sim: &Sim, rec: &StreamRecord, quiet: bool) -> Result<()> {
    use std::io::Write;
    if rec.response.status != 0 {
        let out = http1::format_response(&rec.response);
        std::io::stdout().write_all(&out)?;
        if !out.ends_with(b"\n") {
            println!();
        }
    }
    std::io::stdout().flush()?;
    if !quiet {
        print_logs(sim);
    }
    Ok(())
}
