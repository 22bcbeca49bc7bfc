//! Keyword-scanning throughput: ai-guard checking a ~1 MB prompt inside its VM (10,000-word
//! list plus every built-in pattern), against native `aho-corasick` scanning the same text with
//! the same words in this process.

use crate::{chat_response, per_request};
use aho_corasick::{AhoCorasickBuilder, MatchKind};
use aigw_tests::module_path;
use host_sim::{LogLevel, PluginSpec, Request, Sim, SimOptions};

/// Size of the prompt text in bytes.
const TEXT_BYTES: usize = 1_000_000;
/// Words in the keyword list.
const WORDS: usize = 10_000;
/// One list word is planted after this many prose words.
const PLANT_EVERY: usize = 400;

/// Syllables of the list's made-up words: common letters, varied first letters, so the
/// automaton sees many partial matches in English prose (no first-byte shortcut).
const SYLLABLES: [&str; 24] = [
    "ta", "re", "mo", "si", "lu", "ne", "ka", "po", "di", "ve", "ro", "sa", "te", "li", "ma", "no",
    "be", "ga", "fi", "co", "pe", "hu", "wa", "ye",
];

/// Prose vocabulary.
const PROSE: [&str; 48] = [
    "the",
    "model",
    "answered",
    "a",
    "question",
    "about",
    "invoices",
    "and",
    "shipping",
    "of",
    "orders",
    "to",
    "customers",
    "in",
    "several",
    "countries",
    "while",
    "support",
    "team",
    "reviewed",
    "logs",
    "from",
    "last",
    "week",
    "because",
    "some",
    "requests",
    "were",
    "slow",
    "during",
    "peak",
    "hours",
    "so",
    "engineers",
    "added",
    "caching",
    "for",
    "frequent",
    "prompts",
    "then",
    "measured",
    "latency",
    "again",
    "with",
    "new",
    "settings",
    "today",
    "tomorrow",
];

/// The keyword list: `WORDS` distinct three-syllable words (6 letters each).
fn word_list() -> Vec<String> {
    let n = SYLLABLES.len();
    (0..WORDS)
        .map(|i| {
            let s = |k: usize| SYLLABLES.get(k % n).copied().unwrap_or("x");
            format!("{}{}{}", s(i), s(i / n), s(i / (n * n)))
        })
        .collect()
}

/// `TEXT_BYTES` of prose (a fixed pseudo-random walk over `PROSE`) with a list word planted
/// every `PLANT_EVERY` words.
fn prose(words: &[String]) -> String {
    let mut text = String::with_capacity(TEXT_BYTES + 16);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut count = 0usize;
    while text.len() < TEXT_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        count += 1;
        let word = if count.is_multiple_of(PLANT_EVERY) {
            words
                .get(state as usize % words.len().max(1))
                .map(|w| w.as_str())
        } else {
            PROSE.get(state as usize % PROSE.len()).copied()
        };
        text.push_str(word.unwrap_or("x"));
        text.push(if count.is_multiple_of(17) { '.' } else { ' ' });
    }
    text.truncate(TEXT_BYTES);
    text
}

/// Median seconds of `f` over `runs` runs after one warm-up run.
fn median_secs(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = crate::thread_cpu();
            f();
            (crate::thread_cpu() - t).as_secs_f64()
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A gateway with one module (large buffer limit: the prompt is 1 MB).
fn gateway(name: &str, config: Option<&str>) -> Result<Sim, String> {
    let mut sim = Sim::new(SimOptions {
        log_level: LogLevel::Info,
        buffer_limit: 4 * 1024 * 1024,
        ..SimOptions::default()
    });
    let path = module_path(name);
    let mut spec = PluginSpec::from_file(&path)
        .map_err(|e| format!("cannot load {}: {e:#}", path.display()))?
        .name(name);
    if let Some(c) = config {
        spec = spec.config_json(c);
    }
    sim.add_plugin(spec)
        .map_err(|e| format!("{name} rejected its configuration: {e:#}"))?;
    Ok(sim)
}

/// Measures and prints the throughput table.
pub fn run() {
    let words = word_list();
    let text = prose(&words);
    let mb = text.len() as f64 / 1e6;

    let ac = match AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostLongest)
        .ascii_case_insensitive(true)
        .build(&words)
    {
        Ok(ac) => ac,
        Err(e) => {
            println!("\nscan throughput: cannot build the native automaton: {e}");
            return;
        }
    };
    let native_hits = ac.find_iter(&text).count();
    let native = median_secs(15, || {
        std::hint::black_box(ac.find_iter(std::hint::black_box(&text)).count());
    });

    let config = serde_json::json!({
        "scope": {"response": {"enabled": false}},
        "keywords": {"lists": [{"name": "bench", "action": "log", "words_text": words.join("\n")}]},
        "patterns": [{"builtin": "all", "action": "log"}],
        "body": {"max_bytes": 2 * 1024 * 1024, "over_limit": "block"}
    })
    .to_string();
    let body = serde_json::json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": text}]
    })
    .to_string();
    // Envoy hands a filter the body in pieces; 64 KiB is a typical read size.
    let request = Request::post("/v1/chat/completions", body.clone()).chunked(64 * 1024);
    let response = chat_response();

    let in_vm = |name: &str, config: Option<&str>| -> Result<f64, String> {
        let mut sim = gateway(name, config)?;
        let rec = sim
            .run(request.clone(), response.clone())
            .map_err(|e| format!("{e:#}"))?;
        match &rec.upstream_request {
            Some(u) if u.complete && u.body.len() == body.len() => {}
            _ => {
                return Err(format!(
                    "{name}: the prompt did not reach the upstream whole"
                ))
            }
        }
        if config.is_some() {
            let hits = sim
                .metric("aigw_guard_hits_total;rule=bench;action=log;direction=request")
                .unwrap_or(0);
            if hits != native_hits as i64 {
                return Err(format!(
                    "{name} counted {hits} keyword hits, native aho-corasick {native_hits}"
                ));
            }
        }
        Ok(per_request(&mut sim, &request, &response, 3, 5) / 1e6)
    };
    let guard = in_vm("ai-guard", Some(&config));
    let noop = in_vm("noop", None);

    println!(
        "\n## Keyword scanning: ai-guard in the VM vs native aho-corasick\n\n\
         {mb:.2} MB of English prose in one user message, {WORDS} list words ({native_hits} \
         occurrences planted), ai-guard with every built-in pattern too (action `log`, so the \
         body passes unchanged); native: `aho-corasick` 1.1 leftmost-longest, ASCII \
         case-insensitive, same words, same text, same process.\n"
    );
    println!("| scanner | ms per MB | MB/s | time vs native |");
    println!("| --- | ---: | ---: | ---: |");
    let row = |label: &str, secs: f64| {
        println!(
            "| {label} | {:.2} | {:.1} | {:.2}x |",
            secs * 1e3 / mb,
            mb / secs,
            secs / native
        );
    };
    row("native aho-corasick (no VM, no JSON)", native);
    match guard {
        Ok(s) => row("ai-guard in host-sim (whole request)", s),
        Err(e) => println!("| ai-guard in host-sim | not timed: {e} | | |"),
    }
    match noop {
        Ok(s) => row("no-op in host-sim, same request (host cost)", s),
        Err(e) => println!("| no-op in host-sim | not timed: {e} | | |"),
    }
}
