//! Time to first token through the full shipped chain against the mock LLM directly, in the
//! same run (issue 16, point 2; the measurement is `aigw_tests::ttft`, the count-based checks
//! are `tests/tests/gateway_ttft.rs`).
//!
//! The mock streams a 100-token answer that matches no ai-guard rule at `BENCH_TTFT_TPS`
//! tokens per second (default 25), one token per event, to an OpenAI and an Anthropic
//! client. Each repetition (`BENCH_TTFT_REPS`, default 3) sends the same kind of request
//! directly and through the gateway, alternating which goes first; the table gives medians.
//! "added" is the median of the per-repetition differences; the target is one upstream
//! event's time plus 20 ms. For reference the same runs go through a second gateway whose
//! chain leaves out ai-guard; then one tool call per client shows whether the arguments
//! arrive in several deltas.

use aigw_tests::ttft::{median, Client, Measurement, Rig, Route, Scenario};
use std::time::Duration;

/// Tokens (= upstream content events) of the text answer: about 480 characters, 4 s at 25
/// tokens/s.
const ANSWER_TOKENS: usize = 100;
/// Tokens of the tool call's arguments.
const ARGUMENT_TOKENS: usize = 40;
/// The allowance on top of one upstream event.
const SLACK: Duration = Duration::from_millis(20);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// One measurement that must have succeeded with content; the reason otherwise.
fn ok(rig: &Rig, route: Route, s: &Scenario) -> Result<Measurement, String> {
    let m = rig.measure(route, s)?;
    if m.status != 200 {
        return Err(format!(
            "{} answered {}: {}",
            route.label(),
            m.status,
            m.error_body
        ));
    }
    if m.first_content().is_none() {
        return Err(format!("{}: no content: {}", route.label(), m.summary()));
    }
    Ok(m)
}

/// `reps` pairs (direct, chain), alternating which route goes first.
fn pairs(rig: &Rig, s: &Scenario, reps: usize) -> Result<Vec<(Measurement, Measurement)>, String> {
    let mut out = Vec::new();
    for rep in 0..reps {
        let (direct, chain) = if rep % 2 == 0 {
            let d = ok(rig, Route::Direct, s)?;
            (d, ok(rig, Route::Chain, s)?)
        } else {
            let c = ok(rig, Route::Chain, s)?;
            (ok(rig, Route::Direct, s)?, c)
        };
        out.push((direct, chain));
    }
    Ok(out)
}

fn first(m: &Measurement) -> Duration {
    m.first_content().unwrap_or(m.total)
}

/// One table row per client: the text scenario on `rig`, `reps` times on each route.
fn text_rows(rig: &Rig, chain: &str, reps: usize, tps: f64) {
    for client in [Client::OpenAi, Client::Anthropic] {
        let s = Scenario::text(client, ANSWER_TOKENS, tps);
        let runs = match pairs(rig, &s, reps) {
            Ok(r) => r,
            Err(e) => {
                println!("| {} | {chain} | {e} |", client.label());
                continue;
            }
        };
        let direct = median(runs.iter().map(|(d, _)| first(d)).collect()).unwrap_or_default();
        let through = median(runs.iter().map(|(_, c)| first(c)).collect()).unwrap_or_default();
        let added = median(
            runs.iter()
                .map(|(d, c)| first(c).saturating_sub(first(d)))
                .collect(),
        )
        .unwrap_or_default();
        let interval = median(
            runs.iter()
                .filter_map(|(d, c)| Some((d.upstream_interval()? + c.upstream_interval()?) / 2))
                .collect(),
        )
        .unwrap_or_default();
        let target = interval + SLACK;
        let mut sent: Vec<usize> = runs
            .iter()
            .map(|(_, c)| c.upstream_sent_before_first_content())
            .collect();
        sent.sort_unstable();
        let total_d = median(runs.iter().map(|(d, _)| d.total).collect()).unwrap_or_default();
        let total_c = median(runs.iter().map(|(_, c)| c.total).collect()).unwrap_or_default();
        println!(
            "| {} | {chain} | {} | {} | {} | {} | {} | {} | {} of {} | {} / {} |",
            client.label(),
            ms(direct),
            ms(through),
            ms(added),
            ms(interval),
            ms(target),
            if added <= target { "yes" } else { "**no**" },
            sent[sent.len() / 2],
            ANSWER_TOKENS,
            ms(total_d),
            ms(total_c),
        );
    }
}

/// Runs the section and prints its tables.
pub fn run() {
    let reps: usize = env_or("BENCH_TTFT_REPS", 3usize).max(1);
    let tps: f64 = env_or("BENCH_TTFT_TPS", 25.0f64);
    println!(
        "\n## Time to first token: full shipped chain against the mock LLM directly ({ANSWER_TOKENS}-token answer at {tps} tokens/s, one token per event, medians of {reps})\n"
    );
    let rig = match Rig::start("bench") {
        Ok(r) => r,
        Err(e) => {
            println!("ttft: cannot start: {e}");
            return;
        }
    };
    println!("full chain: {}\n", rig.chain().join(" → "));
    if let Err(e) = rig.warm_up() {
        println!("ttft: warm-up failed: {e}");
        return;
    }
    println!("| client | chain | TTFT direct ms | TTFT through chain ms | added ms | one upstream event ms | target ms (event + 20) | met | upstream events sent before the chain's first content | total direct / chain ms |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |");
    text_rows(&rig, "full", reps, tps);
    // For reference: the same chain without ai-guard, in its own gateway.
    match Rig::start_without("bench-no-guard", &["ai-guard"]) {
        Ok(other) => match other.warm_up() {
            Ok(()) => text_rows(&other, "full without ai-guard", reps, tps),
            Err(e) => println!("| | without ai-guard: warm-up failed: {e} |"),
        },
        Err(e) => println!("| | without ai-guard: cannot start: {e} |"),
    }

    println!("\n| tool call ({ARGUMENT_TOKENS}-token arguments), full chain | upstream argument events | argument deltas direct | argument deltas through chain | first arguments direct ms | through chain ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for client in [Client::OpenAi, Client::Anthropic] {
        let s = Scenario::tool_call(client, ARGUMENT_TOKENS, tps);
        match pairs(&rig, &s, 1) {
            Ok(runs) => {
                for (d, c) in runs {
                    println!(
                        "| {} | {} | {} | {} | {} | {} |",
                        client.label(),
                        c.upstream_content_events(),
                        d.client_content_events(),
                        c.client_content_events(),
                        ms(first(&d)),
                        ms(first(&c)),
                    );
                }
            }
            Err(e) => println!("| {} | {e} |", client.label()),
        }
    }
}
