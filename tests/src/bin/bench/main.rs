//! `make bench`: per-request cost, VM start-up time, module size and memory of every plugin,
//! as ratios against baselines measured in the same run (the bare host and the no-op plugin).
//!
//! Then the peer table (`peers`: our plugins next to Go-built Higress modules doing the same
//! job) and keyword-scanning throughput (`scan`: ai-guard in the VM against native
//! aho-corasick), and time to first token through the full shipped chain against the mock
//! LLM directly (`ttft`). `BENCH_N` sets the requests per batch (default 2000, five batches;
//! the peer table times ten rounds of `BENCH_N / 2` per row, interleaved with its no-op
//! baseline).
//!
//! Timings are medians over several batches of the benchmarking thread's CPU time (host-sim
//! runs the VMs on the calling thread, so that is the whole cost of a request, and other
//! processes on a shared machine inflate it far less than wall time); they vary by machine,
//! the ratios much less. Module compile and VM start-up, the cache section's upstream round
//! trips and time to first token span other threads and servers, so they use wall time.

mod cache;
mod peers;
mod scan;
mod ttft;

use aigw_tests::{module_path, root, spec};
use host_sim::{Request, Sim, SimOptions, UpstreamResponse};
use std::time::{Duration, Instant};

/// The CPU time this thread has used so far (`CLOCK_THREAD_CPUTIME_ID`): the bench's clock.
/// Wall-clock time on a shared machine charges a batch with whatever else ran meanwhile, and
/// more so the longer the batch, which skews ratios between cheap and costly rows.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One benchmark scenario: a chain of plugins (with configs) on a request/response shape.
struct Case {
    label: String,
    plugins: Vec<(String, Option<String>)>,
    request: Request,
    response: UpstreamResponse,
}

/// The chat request of `examples/chat.http` (OpenAI chat, client key `sk-demo-key`).
pub fn chat_request() -> Request {
    chat_request_with_key("sk-demo-key")
}

/// The chat request of `examples/chat.http` with the client key `key`.
pub fn chat_request_with_key(key: &str) -> Request {
    let body = std::fs::read(root().join("examples/chat.http"))
        .ok()
        .and_then(|b| host_sim::http1::parse_request(&b).ok())
        .map(|r| r.body)
        .unwrap_or_default();
    Request::post("/v1/chat/completions", body).header("authorization", &format!("Bearer {key}"))
}

/// The answer of `examples/chat-response.http` (OpenAI chat completion with usage).
pub fn chat_response() -> UpstreamResponse {
    std::fs::read(root().join("examples/chat-response.http"))
        .ok()
        .and_then(|b| host_sim::http1::parse_response(&b).ok())
        .unwrap_or_else(|| UpstreamResponse::json(200, "{}"))
}

/// An OpenAI-style stream of `n` content events, the finish event, a usage chunk and `[DONE]`.
pub fn sse_stream(n: usize) -> UpstreamResponse {
    UpstreamResponse::sse(aigw_test_kit::sse::bench_stream(n)).chunked(512)
}

fn build(case: &Case) -> Option<Sim> {
    let mut sim = Sim::new(SimOptions::default());
    for (name, cfg) in &case.plugins {
        let mut s = spec(name);
        if let Some(c) = cfg {
            s = s.config_json(c);
        }
        if let Err(e) = sim.add_plugin(s) {
            eprintln!("  skipped {}: {e:#}", case.label);
            return None;
        }
    }
    Some(sim)
}

/// Median µs per request over `batches` batches of `n` requests, after `min(n, 200)` warm-up
/// requests (so a gateway has served `min(n, 200) + n * batches` requests afterwards).
pub fn per_request(
    sim: &mut Sim,
    request: &Request,
    response: &UpstreamResponse,
    n: usize,
    batches: usize,
) -> f64 {
    for _ in 0..n.min(200) {
        let _ = sim.run(request.clone(), response.clone());
    }
    let mut samples = Vec::new();
    for _ in 0..batches {
        let t = thread_cpu();
        for _ in 0..n {
            let _ = sim.run(request.clone(), response.clone());
        }
        samples.push((thread_cpu() - t).as_secs_f64() * 1e6 / n as f64);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn config_for(name: &str) -> Option<String> {
    std::fs::read_to_string(aigw_tests::example_config(name)).ok()
}

/// The example config and the request each plugin is timed with in the main table, so that
/// every row times the path a real request takes: ai-auth gets a key its example accepts,
/// ai-token-ratelimit's example limits are raised so that 10,000 requests under a clock that
/// stands still are all admitted. ai-cache answers repeated chat requests from its cache: that
/// row times hits (a streamed answer to a non-stream request is not stored).
fn main_table_setup(plugin: &str) -> (Option<String>, Request, &'static str) {
    let mut config = config_for(plugin);
    let mut request = chat_request();
    let mut note = "";
    match plugin {
        "ai-auth" => {
            request = chat_request_with_key("sk-web-3f9a1c7e5b2d4068");
        }
        "ai-token-ratelimit" => {
            config = config.map(|c| raise_limits(&c));
        }
        "ai-cache" => note = " (cache hits)",
        _ => {}
    }
    (config, request, note)
}

/// A rate-limit config with every `per_*` limit set far beyond what the bench sends.
fn raise_limits(config: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(config) else {
        return config.to_string();
    };
    if let Some(limits) = v.get_mut("limits").and_then(|l| l.as_array_mut()) {
        for limit in limits.iter_mut().filter_map(|l| l.as_object_mut()) {
            for (k, val) in limit.iter_mut() {
                if k.starts_with("per_") {
                    *val = serde_json::json!(1_000_000_000_000u64);
                }
            }
        }
    }
    v.to_string()
}

/// `--compare PLUGIN label=path...`: the same plugin built differently, side by side.
fn compare(args: &[String], n: usize) {
    let plugin = &args[0];
    let config = config_for(plugin);
    println!("| build | module bytes | µs/request (chat) | µs/request (200-event stream) |");
    println!("| --- | ---: | ---: | ---: |");
    for a in &args[1..] {
        let Some((label, path)) = a.rsplit_once('=') else {
            continue;
        };
        let mut row = vec![label.to_string()];
        row.push(
            std::fs::metadata(path)
                .map(|m| m.len().to_string())
                .unwrap_or_default(),
        );
        for resp in [chat_response(), sse_stream(200)] {
            let case = Case {
                label: label.into(),
                plugins: vec![],
                request: chat_request(),
                response: resp,
            };
            let mut sim = Sim::new(SimOptions::default());
            let mut spec = match host_sim::PluginSpec::from_file(path) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{path}: {e:#}");
                    return;
                }
            };
            if let Some(c) = &config {
                spec = spec.config_json(c);
            }
            if let Err(e) = sim.add_plugin(spec) {
                eprintln!("{path}: {e:#}");
                return;
            }
            row.push(format!(
                "{:.1}",
                per_request(&mut sim, &case.request, &case.response, n, 5)
            ));
        }
        println!("| {} |", row.join(" | "));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(|a| a.as_str()) == Some("--compare") {
        let n: usize = std::env::var("BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        compare(&args[1..], n);
        return;
    }
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    // `BENCH_ONLY=cache` (or `peers`, `scan`, `ttft`): one section only.
    match std::env::var("BENCH_ONLY").as_deref() {
        Ok("cache") => return cache::run(n),
        Ok("peers") => return peers::run(n),
        Ok("scan") => return scan::run(),
        Ok("ttft") => return ttft::run(),
        _ => {}
    }
    println!("# aigw benchmarks (host-sim, wasmtime/cranelift, {n} requests per batch)\n");

    // VM start-up: compile once, then instantiate + start + configure (canary and one worker).
    let noop = module_path("noop");
    let t = Instant::now();
    let _ = host_sim::global_loader().load_file(&noop);
    let compile = t.elapsed();
    let t = Instant::now();
    let rounds = 50;
    for _ in 0..rounds {
        let mut sim = Sim::new(SimOptions::default());
        let _ = sim.add_plugin(spec("noop"));
    }
    let start = t.elapsed() / (rounds * 2);
    println!("no-op module: compile {:.1} ms (once per module), VM instantiate+start+configure {:.1} µs\n",
        compile.as_secs_f64() * 1e3, start.as_secs_f64() * 1e6);

    let mut cases = vec![Case {
        label: "bare host (no plugin)".into(),
        plugins: vec![],
        request: chat_request(),
        response: chat_response(),
    }];
    let mut plugins: Vec<String> = std::fs::read_dir(root().join("dist"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().map(|s| s.to_string()))
                .filter(|f| f.ends_with(".wasm"))
                .map(|f| f.trim_end_matches(".wasm").to_string())
                .collect()
        })
        .unwrap_or_default();
    plugins.sort();
    plugins.retain(|p| p != "noop");
    plugins.insert(0, "noop".into());
    for p in &plugins {
        let (config, request, note) = main_table_setup(p);
        cases.push(Case {
            label: format!("{p}: chat request{note}"),
            plugins: vec![(p.clone(), config.clone())],
            request: request.clone(),
            response: chat_response(),
        });
        cases.push(Case {
            label: format!("{p}: 200-event stream"),
            plugins: vec![(p.clone(), config)],
            request,
            response: sse_stream(200),
        });
    }

    println!(
        "| case | µs/request | vs no-op | module bytes | VM memory after run | last request |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | --- |");
    let mut noop_chat = None;
    let mut noop_stream = None;
    for case in &cases {
        let Some(mut sim) = build(case) else { continue };
        let us = per_request(&mut sim, &case.request, &case.response, n, 5);
        let stream = case.label.contains("stream");
        if case.label.starts_with("noop") {
            if stream {
                noop_stream = Some(us);
            } else {
                noop_chat = Some(us);
            }
        }
        let base = if stream { noop_stream } else { noop_chat };
        let ratio = base
            .map(|b| format!("{:.2}x", us / b))
            .unwrap_or_else(|| "-".into());
        let (size, mem) = match case.plugins.first() {
            Some((p, _)) => (
                std::fs::metadata(module_path(p))
                    .map(|m| m.len().to_string())
                    .unwrap_or_default(),
                sim.vm_memory(0, 0)
                    .map(|m| format!("{} KiB", m / 1024))
                    .unwrap_or_default(),
            ),
            None => (String::new(), String::new()),
        };
        // What the timed requests amounted to by the end: a plugin that answers locally (a
        // refused key, a used-up limit) is timed on its refusal, not on proxying.
        let last = match sim.run(case.request.clone(), case.response.clone()) {
            Ok(rec) => match rec.local_reply {
                Some(l) => format!("answered locally ({})", l.status),
                None => format!("proxied ({})", rec.response.status),
            },
            Err(e) => format!("error: {e:#}"),
        };
        println!(
            "| {} | {us:.1} | {ratio} | {size} | {mem} | {last} |",
            case.label
        );
    }
    peers::run(n);
    scan::run();
    cache::run(n);
    ttft::run();
}
