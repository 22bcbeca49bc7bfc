//! Guards the bench's 200-event OpenAI stream through [`SseGuard`] the way the plugin does
//! for the `make bench` masking job (its ai-data-masking style configuration, 512-byte
//! chunks) `N` times: a native harness for counting instructions.
//!
//! ```sh
//! cargo build --release -p ai-guard --example stream_cost
//! valgrind --tool=callgrind target/release/examples/stream_cost 0
//! valgrind --tool=callgrind target/release/examples/stream_cost 20
//! ```
//!
//! (Ir(20) - Ir(0)) / 20 is the cost of one stream; `callgrind_annotate` shows where it goes.

use ai_guard::answer_sse::{SseGuard, SseSettings};
use ai_guard::settings::Config;
use std::rc::Rc;

/// The configuration of the bench's masking job (`tests/src/bin/bench/peers.rs`).
const MASKING: &str = r#"{"deny_openai": true, "system_deny": false, "deny_code": 403,
    "deny_message": "blocked by policy", "deny_words": ["forbiddenword"],
    "replace_roles": [{"regex": "%{MOBILE}", "type": "replace", "value": "****"}]}"#;

/// Guards the stream `n` times; returns a checksum (bytes sent).
#[no_mangle]
pub extern "C" fn run(n: u32) -> u64 {
    let Ok(cfg) = aigw::config::parse::<Config>(MASKING.as_bytes()) else {
        eprintln!("the bench configuration does not parse");
        return 0;
    };
    let c = &cfg;
    let guard = &c.guard;
    let body = aigw_test_kit::sse::bench_stream(200);
    let mut check = 0u64;
    let mut out = Vec::new();
    for _ in 0..n {
        let mut sse = SseGuard::new(SseSettings {
            engine: Some(Rc::clone(&guard.engine)),
            vault: None,
            paths: c.stream_paths.clone(),
            max_event_bytes: guard.max_body_bytes,
            over_limit: guard.over_limit,
            message: None,
            log_limit: 0,
        });
        let chunks = body.chunks(512).count();
        for (i, chunk) in body.chunks(512).enumerate() {
            out.clear();
            sse.feed(chunk, &mut out);
            if i + 1 == chunks {
                sse.finish(&mut out);
            }
            check += out.len() as u64;
        }
    }
    check
}

fn main() {
    aigw_test_kit::sse::stream_cost_main(|n| run(n));
}
