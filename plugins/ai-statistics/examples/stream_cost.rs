//! Reads the bench's 200-event OpenAI stream through [`Scan`] the way the plugin does (answer
//! logging on, 1 KiB, 512-byte chunks) `N` times: a native harness for counting instructions.
//!
//! ```sh
//! cargo build --release -p ai-statistics --example stream_cost
//! valgrind --tool=callgrind target/release/examples/stream_cost 0
//! valgrind --tool=callgrind target/release/examples/stream_cost 20
//! ```
//!
//! (Ir(20) - Ir(0)) / 20 is the cost of one stream; `callgrind_annotate` shows where it goes.

use ai_statistics::scan::Scan;
use aigw::llm::Api;

/// Reads the stream `n` times; returns a checksum (usage total, answer bytes, stop seen).
#[no_mangle]
pub extern "C" fn run(n: u32) -> u64 {
    let body = aigw_test_kit::sse::bench_stream(200);
    let mut check = 0u64;
    for _ in 0..n {
        let mut scan = Scan::new(
            Some(Api::ChatCompletions),
            true,
            1 << 20,
            256 << 10,
            Some(1024),
        );
        for chunk in body.chunks(512) {
            scan.feed(chunk);
        }
        let usage = scan.finish().unwrap_or_default();
        let answer = scan.answer().map_or(0, |(a, _)| a.len());
        check += usage.total + answer as u64 + u64::from(scan.finish_reason() == Some("stop"));
    }
    check
}

fn main() {
    aigw_test_kit::sse::stream_cost_main(|n| run(n));
}
