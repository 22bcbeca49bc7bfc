//! ai-cache: the cost of a hit against calling an upstream, the cost of a miss against the
//! no-op plugin, and memory with 10,000 entries stored.
//!
//! The "upstream" is the mock LLM over loopback HTTP with no artificial delay: the cheapest
//! upstream there can be, so the ratio is a floor (a real model answers in hundreds of ms).

use crate::chat_response;
use aigw_tests::spec;
use host_sim::mock_llm::{self, MockOptions};
use host_sim::{Request, Sim, SimOptions, UpstreamResponse};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

/// Entries stored for the memory figure.
const ENTRIES: usize = 10_000;

const CONFIG: &str = r#"{"ttl_seconds": 3600, "key_messages": "all", "store": "local",
    "max_entries": 16384, "max_entry_bytes": 65536}"#;

fn question(i: usize) -> Request {
    Request::post(
        "/v1/chat/completions",
        format!(
            r#"{{"model":"gpt-4o-mini","temperature":0,"messages":[{{"role":"system","content":"You are terse."}},{{"role":"user","content":"question number {i}: what is the capital of country {i}?"}}]}}"#
        ),
    )
}

fn gateway(plugin: &str, config: Option<&str>) -> Option<Sim> {
    let mut sim = Sim::new(SimOptions::default());
    let mut s = spec(plugin);
    if let Some(c) = config {
        s = s.config_json(c);
    }
    match sim.add_plugin(s) {
        Ok(_) => Some(sim),
        Err(e) => {
            eprintln!("cache bench: {plugin}: {e:#}");
            None
        }
    }
}

/// µs per request over `reqs` (one pass each), median of three passes over fresh ranges.
fn time_each(
    sim: &mut Sim,
    reqs: impl Fn(usize) -> Request,
    n: usize,
    resp: &UpstreamResponse,
) -> f64 {
    let mut samples = Vec::new();
    for pass in 0..3 {
        let t = crate::thread_cpu();
        for i in 0..n {
            let _ = sim.run(reqs(pass * n + i), resp.clone());
        }
        samples.push((crate::thread_cpu() - t).as_secs_f64() * 1e6 / n as f64);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[1]
}

/// µs for one chat request to the mock LLM over a fresh loopback connection (median of `n`).
fn upstream_us(addr: SocketAddr, n: usize) -> Option<f64> {
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"what is the capital of France?"}],"max_tokens":16}"#;
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut s = TcpStream::connect(addr).ok()?;
        s.write_all(req.as_bytes()).ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).ok()?;
        if !out.starts_with(b"HTTP/1.1 200") {
            eprintln!(
                "cache bench: the mock answered {:?}",
                String::from_utf8_lossy(&out[..out.len().min(40)])
            );
            return None;
        }
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    samples.get(samples.len() / 2).copied()
}

/// Prints the ai-cache table.
pub fn run(n: usize) {
    println!("\n## ai-cache: hits, misses and memory\n");
    let resp = chat_response();
    let (Some(mut cache), Some(mut noop)) =
        (gateway("ai-cache", Some(CONFIG)), gateway("noop", None))
    else {
        return;
    };
    // A hit: the same question again and again (stored on the first request).
    let first = cache.run(question(0), resp.clone()).ok();
    let hit_status = cache
        .run(question(0), resp.clone())
        .ok()
        .and_then(|r| r.response.header("x-cache-status").map(String::from));
    if hit_status.as_deref() != Some("hit") || first.is_none() {
        println!("(ai-cache did not answer the repeated question from its cache: {hit_status:?}; no figures)");
        return;
    }
    let hit = time_each(&mut cache, |_| question(0), n, &resp);
    // Misses: distinct questions (each is looked up, then stored from the answer).
    let miss = time_each(&mut cache, |i| question(1_000_000 + i), n, &resp);
    let base = time_each(&mut noop, |i| question(1_000_000 + i), n, &resp);
    let mock = mock_llm::spawn(MockOptions::default()).ok();
    let upstream = mock.as_ref().and_then(|m| upstream_us(m.addr, n.min(500)));

    // Memory: a fresh gateway filled with 10,000 distinct entries.
    let Some(mut filled) = gateway("ai-cache", Some(CONFIG)) else {
        return;
    };
    let before = filled.vm_memory(0, 0).unwrap_or(0);
    for i in 0..ENTRIES {
        let _ = filled.run(question(i), resp.clone());
    }
    let stored = filled.metric("ai_cache_stored").unwrap_or(0);
    let keys = filled.shared_keys("");
    let shared: usize = keys
        .iter()
        .filter_map(|k| filled.shared_data("", k).map(|v| v.len() + k.len()))
        .sum();
    let after = filled.vm_memory(0, 0).unwrap_or(0);
    let still_hit = filled
        .run(question(0), resp.clone())
        .ok()
        .and_then(|r| r.response.header("x-cache-status").map(String::from));

    println!("| case | µs/request | against |");
    println!("| --- | ---: | --- |");
    println!("| no-op plugin, distinct questions | {base:.1} | 1.00x (baseline) |");
    println!("| ai-cache miss (lookup + store), distinct questions | {miss:.1} | {:.2}x the no-op plugin |", miss / base);
    match upstream {
        Some(u) => {
            println!(
                "| mock LLM over loopback HTTP, no delay (the cheapest upstream) | {u:.1} | |"
            );
            println!(
                "| ai-cache hit (answer from the cache) | {hit:.1} | {:.3}x the upstream call |",
                hit / u
            );
        }
        None => {
            println!("| ai-cache hit (answer from the cache) | {hit:.1} | (mock LLM unavailable) |")
        }
    }
    println!(
        "\nAfter {ENTRIES} distinct answers: {stored} stored, {} shared-data keys holding {} KiB (shared by all workers), VM linear memory {} KiB (was {} KiB before); the first question is still a {}.",
        keys.len(),
        shared / 1024,
        after / 1024,
        before / 1024,
        still_hit.as_deref().unwrap_or("?")
    );
}
