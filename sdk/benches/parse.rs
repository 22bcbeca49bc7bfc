//! SSE parse throughput and usage-extraction cost per chunk, on real-shaped provider streams.
//! Run with `cargo bench -p aigw-sdk` (part of `make bench`).

use aigw::llm::usage::{
    anthropic_usage, gemini_usage, openai_usage, UsageAccumulator, UsageProtocol,
};
use aigw::sse::Parser;
use std::hint::black_box;
use std::time::Instant;

fn openai_stream(events: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..events {
        s.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"token{i} \"}},\"finish_reason\":null}}],\"usage\":null}}\n\n"
        ));
    }
    s.push_str("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":200,\"total_tokens\":220,\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n\ndata: [DONE]\n\n");
    s.into_bytes()
}

fn time<F: FnMut()>(iters: usize, mut f: F) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_secs_f64() / iters as f64
}

fn main() {
    let stream = openai_stream(200);
    println!("# aigw SDK benchmarks (native; the same code runs inside the VM)\n");
    println!("| benchmark | result |");
    println!("| --- | ---: |");
    for chunk in [64usize, 512, 4096] {
        let secs = time(300, || {
            let mut p = Parser::new(64 * 1024);
            let mut n = 0;
            for c in stream.chunks(chunk) {
                let _ = p.feed(c, |ev| {
                    n += ev.data().map_or(0, |d| d.len());
                });
            }
            black_box(n);
        });
        println!(
            "| SSE parse, 200-event OpenAI stream in {chunk}-byte chunks | {:.0} MB/s |",
            stream.len() as f64 / secs / 1e6
        );
    }
    let no_usage = br#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"hello "},"finish_reason":null}],"usage":null}"#;
    let with_usage = br#"{"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":200,"total_tokens":220,"prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":3}}}"#;
    let anthropic = br#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":200}}"#;
    let gemini = br#"{"candidates":[{"content":{"parts":[{"text":"hello"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":7,"totalTokenCount":27},"modelVersion":"gemini-2.0-flash"}"#;
    type Extract = fn(&[u8]) -> Option<aigw::llm::usage::Usage>;
    let cases: [(&str, &[u8], Extract); 4] = [
        ("OpenAI chunk without usage", no_usage, openai_usage),
        ("OpenAI final chunk with usage", with_usage, openai_usage),
        ("Anthropic message_delta", anthropic, anthropic_usage),
        ("Gemini chunk (cumulative usage)", gemini, gemini_usage),
    ];
    for (label, data, f) in cases {
        let secs = time(200_000, || {
            black_box(f(black_box(data)));
        });
        println!("| usage extraction: {label} | {:.0} ns/chunk |", secs * 1e9);
    }
    let secs = time(300, || {
        let mut acc = UsageAccumulator::new(UsageProtocol::OpenAi);
        let mut p = Parser::new(64 * 1024);
        for c in stream.chunks(512) {
            let _ = p.feed(c, |ev| {
                if let Some(d) = ev.data() {
                    acc.feed(d);
                }
            });
        }
        black_box(acc.usage());
    });
    println!(
        "| SSE parse + usage accumulation, 200-event stream | {:.1} µs/stream ({:.0} ns/event) |",
        secs * 1e6,
        secs * 1e9 / 202.0
    );
    // The strict-JSON check every body-deciding plugin runs, next to a plain serde_json parse
    // of the same body into a Value (what the check costs compared with reading the body).
    let mut chat = String::from(r#"{"model":"gpt-4o-mini","temperature":0.2,"messages":["#);
    for i in 0..20 {
        chat.push_str(&format!(
            r#"{{"role":"user","content":"message {i}: tell me about the weather in Paris today, and tomorrow"}},"#
        ));
    }
    chat.push_str(r#"{"role":"user","content":"ok"}],"stream":true}"#);
    let body = chat.into_bytes();
    let strict = time(20_000, || {
        black_box(aigw::json::check_strict(black_box(&body)).is_ok());
    });
    let value = time(20_000, || {
        black_box(serde_json::from_slice::<serde_json::Value>(black_box(&body)).is_ok());
    });
    println!(
        "| strict JSON check (no repeated key), {}-byte chat body | {:.1} µs ({:.2}x a serde_json Value parse of it) |",
        body.len(),
        strict * 1e6,
        strict / value
    );
}
