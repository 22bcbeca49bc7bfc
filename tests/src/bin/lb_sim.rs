//! `lb_sim`: a heterogeneous GPU fleet behind the real ai-load-balancer module, on the host
//! simulator's simulated clock. Reports mean / p50 / p99 time to first token per policy.
//!
//! Model: each backend runs up to `slots` requests at once (continuous batching) and queues
//! the rest FIFO; a request's first token comes `prefill_ms` after it starts running, then
//! one token every `tpot_ms`. Arrivals are Poisson; output lengths are long-tailed, so
//! request counts are a poor load signal. For the `metrics` policy the scrape call-outs are
//! answered with the model's live queue, running count and slot usage (as KV usage).
//!
//! Run: `cargo run --release -p aigw-tests --bin lb_sim` (after `make build`).

use host_sim::{CallReply, Cluster, PluginSpec, Request, Sim, SimOptions};
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// One simulated GPU server.
struct Gpu {
    host: &'static str,
    slots: usize,
    prefill_ms: u64,
    tpot_ms: u64,
    running: usize,
    queue: VecDeque<Job>,
}

/// A request inside the model.
#[derive(Clone, Copy)]
struct Job {
    sid: u64,
    arrived_ms: u64,
    tokens: u64,
}

enum Event {
    FirstToken { gpu: usize, job: Job },
    Done { gpu: usize, sid: u64 },
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn fleet() -> Vec<Gpu> {
    let gpu = |host, slots, prefill_ms, tpot_ms| Gpu {
        host,
        slots,
        prefill_ms,
        tpot_ms,
        running: 0,
        queue: VecDeque::new(),
    };
    vec![
        gpu("10.0.0.1:8000", 8, 40, 10),  // H100-class
        gpu("10.0.0.2:8000", 8, 40, 10),  // H100-class
        gpu("10.0.0.3:8000", 4, 120, 25), // older card
        gpu("10.0.0.4:8000", 2, 250, 45), // much older card
    ]
}

struct Outcome {
    ttft: Vec<u64>,
    share: Vec<usize>,
}

fn run(policy: &str, requests: usize, mean_gap_ms: f64, seed: u64) -> Outcome {
    let mut gpus = fleet();
    let backends: Vec<_> = gpus.iter().map(|g| json!({"host": g.host})).collect();
    let cfg = json!({
        "policy": policy,
        "backends": backends,
        "latency": {"signal": "ttft", "alpha": 0.3, "half_life_ms": 5000},
        "metrics": {"cluster": "vllm-metrics", "interval_ms": 200, "stale_ms": 2000,
                    "weights": {"waiting": 1.0, "running": 0.0, "kv_cache": 2.0, "in_flight": 0.5}}
    });
    let mut sim = Sim::new(SimOptions {
        workers: 2,
        log_level: host_sim::LogLevel::Warn,
        ..Default::default()
    });
    sim.add_cluster("vllm-metrics", Cluster::Manual);
    let spec = match PluginSpec::from_file(module()) {
        Ok(s) => s.name("ai-load-balancer").config_json(cfg.to_string()),
        Err(e) => panic!(
            "cannot read {}: {e:#} (run `make build`)",
            module().display()
        ),
    };
    if let Err(e) = sim.add_plugin(spec) {
        panic!("module does not load: {e:#}");
    }
    let mut rng = Rng(seed);
    let mut now = 0u64;
    let mut events: BTreeMap<(u64, u64), Event> = BTreeMap::new();
    let mut seq = 0u64;
    let mut next_arrival = 0u64;
    let mut arrived = 0usize;
    let mut ttft = Vec::with_capacity(requests);
    let mut share = vec![0; gpus.len()];
    let body = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

    let start = |gpus: &mut Vec<Gpu>,
                 events: &mut BTreeMap<(u64, u64), Event>,
                 seq: &mut u64,
                 g: usize,
                 job: Job,
                 at: u64| {
        if let Some(gpu) = gpus.get_mut(g) {
            gpu.running += 1;
            *seq += 1;
            events.insert(
                (at + gpu.prefill_ms, *seq),
                Event::FirstToken { gpu: g, job },
            );
        }
    };

    loop {
        let next_event = events.keys().next().copied();
        let take_arrival = arrived < requests && next_event.is_none_or(|(t, _)| next_arrival <= t);
        let t = if take_arrival {
            next_arrival
        } else if let Some((t, _)) = next_event {
            t
        } else {
            break;
        };
        if t > now {
            sim.advance(Duration::from_millis(t - now));
            now = t;
        }
        // Answer scrapes with the live model state.
        for call in sim.pending_http_calls() {
            let host = call
                .call
                .headers
                .iter()
                .find(|(k, _)| k == "x-envoy-original-dst-host")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let reply = match gpus.iter().find(|g| g.host == host) {
                Some(g) => CallReply::json(
                    200,
                    format!(
                        "vllm:num_requests_waiting {}\nvllm:num_requests_running {}\nvllm:kv_cache_usage_perc {}\n",
                        g.queue.len(),
                        g.running,
                        g.running as f64 / g.slots as f64
                    ),
                ),
                None => CallReply::Reset,
            };
            let _ = sim.answer_http(call.id, reply);
        }
        if take_arrival {
            arrived += 1;
            next_arrival = now + (-mean_gap_ms * (1.0 - rng.unit()).ln()).round() as u64;
            // Long-tailed output: 80% short (20..200 tokens), 20% long (500..1500).
            let tokens = if rng.unit() < 0.8 {
                20 + rng.next() % 180
            } else {
                500 + rng.next() % 1000
            };
            let req = Request::post("/v1/chat/completions", body).worker(arrived % 2);
            let Ok(sid) = sim.begin(req) else { continue };
            let host = sim
                .upstream_request(sid)
                .and_then(|u| u.header("x-envoy-original-dst-host").map(String::from));
            let Some(g) = host.and_then(|h| gpus.iter().position(|x| x.host == h)) else {
                continue;
            };
            share[g] += 1;
            let job = Job {
                sid,
                arrived_ms: now,
                tokens,
            };
            let free = gpus.get(g).is_some_and(|x| x.running < x.slots);
            if free {
                start(&mut gpus, &mut events, &mut seq, g, job, now);
            } else if let Some(x) = gpus.get_mut(g) {
                x.queue.push_back(job);
            }
            continue;
        }
        let Some((_, ev)) = events.pop_first() else {
            break;
        };
        match ev {
            Event::FirstToken { gpu, job } => {
                ttft.push(now - job.arrived_ms);
                let sse = [("content-type".to_string(), "text/event-stream".to_string())];
                let _ = sim.send_response_headers(job.sid, 200, &sse, false);
                let _ = sim.send_response_body(job.sid, b"data: {\"t\":0}\n\n", false);
                let tpot = gpus.get(gpu).map_or(0, |g| g.tpot_ms);
                seq += 1;
                events.insert(
                    (now + job.tokens * tpot, seq),
                    Event::Done { gpu, sid: job.sid },
                );
            }
            Event::Done { gpu, sid } => {
                let _ = sim.send_response_body(sid, b"data: [DONE]\n\n", true);
                sim.forget(sid);
                let next = gpus.get_mut(gpu).and_then(|g| {
                    g.running -= 1;
                    g.queue.pop_front()
                });
                if let Some(job) = next {
                    start(&mut gpus, &mut events, &mut seq, gpu, job, now);
                }
            }
        }
    }
    Outcome { ttft, share }
}

/// The module: `$LB_SIM_MODULE`, else `dist/ai-load-balancer.wasm` of this workspace.
fn module() -> std::path::PathBuf {
    std::env::var_os("LB_SIM_MODULE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/ai-load-balancer.wasm")
        })
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3000);
    // Capacity ≈ 2 × 8/2.9 s + 4/7.3 s + 2/13.2 s ≈ 6.2 req/s (mean 288 output tokens); offered
    // ≈ 4.3 req/s (70%). Round robin overloads the two old cards (1.1 req/s each).
    let mean_gap_ms = 230.0;
    println!("{requests} requests, Poisson arrivals every {mean_gap_ms} ms on average, 4 unequal GPUs (2 workers)\n");
    println!(
        "| policy | mean TTFT ms | p50 ms | p99 ms | share per backend (fast, fast, old, oldest) |"
    );
    println!("| --- | ---: | ---: | ---: | --- |");
    for policy in ["round_robin", "least_in_flight", "latency", "metrics"] {
        let mut o = run(policy, requests, mean_gap_ms, 0x5eed_1234_abcd_0001);
        o.ttft.sort_unstable();
        let mean = o.ttft.iter().sum::<u64>() as f64 / o.ttft.len().max(1) as f64;
        println!(
            "| {policy} | {mean:.0} | {} | {} | {:?} |",
            pct(&o.ttft, 0.5),
            pct(&o.ttft, 0.99),
            o.share
        );
    }
}
