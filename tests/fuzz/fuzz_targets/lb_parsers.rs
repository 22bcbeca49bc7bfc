//! ai-load-balancer parsers: the Prometheus text parser (vLLM gauges), the streamed-event
//! counter, prompt prefix material and its hash chain. The first byte picks the parser.
//!
//! Properties: no panic; the load figures are finite and non-negative and do not depend on
//! CRLF vs LF line ends or on comment lines; the event count does not depend on chunking;
//! prefix material does not depend on JSON formatting or key order; the hash chain of a
//! block-aligned prefix is a prefix of the full chain.
#![no_main]

use ai_load_balancer::hash::prefix_chain;
use ai_load_balancer::prom::parse_vllm;
use ai_load_balancer::prompt::material;
use ai_load_balancer::sse_count::EventCounter;
use libfuzzer_sys::fuzz_target;

fn prom(body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    let load = parse_vllm(&text);
    if let Some(l) = load {
        for v in [l.waiting, l.running, l.kv_cache] {
            assert!(v.is_finite() && v >= 0.0, "load figure {v} in {l:?}");
        }
    }
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let lf = text.replace("\r\n", "\n");
    assert_eq!(parse_vllm(&lf), parse_vllm(&crlf), "CRLF changes the parse");
    let commented = format!("# HELP x y\n# TYPE x gauge\n{lf}\n# EOF\n");
    assert_eq!(
        parse_vllm(&lf),
        parse_vllm(&commented),
        "comments change the parse"
    );
}

fn count(seed: u8, body: &[u8]) {
    let mut whole = EventCounter::default();
    whole.feed(body);
    let mut split = EventCounter::default();
    for c in body.chunks(usize::from(seed % 13) + 1) {
        split.feed(c);
    }
    assert_eq!(
        whole.count(),
        split.count(),
        "the event count depends on chunking"
    );
    let lines = body
        .split(|&b| b == b'\n' || b == b'\r')
        .filter(|l| l.starts_with(b"data:"))
        .count();
    assert!(whole.count() <= lines as u64);
}

fn prefix(seed: u8, body: &[u8]) {
    let Some(m) = material(body) else {
        return;
    };
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let pretty = serde_json::to_vec_pretty(&v).expect("a value serializes");
        // serde_json's default float parsing is not correctly rounded: a number with more
        // than 17 significant digits may not survive print + parse. Only compare when the
        // value itself round-trips.
        if serde_json::from_slice::<serde_json::Value>(&pretty)
            .ok()
            .as_ref()
            == Some(&v)
        {
            assert_eq!(
                material(&pretty),
                Some(m.clone()),
                "formatting changes the material"
            );
        }
    }
    let block = usize::from(seed % 32) + 1;
    let full = prefix_chain(&m, block, 64);
    assert!(full.len() <= 64 && full.iter().all(|&h| h != 0));
    let k = m.len() / block / 2;
    if k > 0 {
        let head = prefix_chain(m.get(..k * block).unwrap_or_default(), block, 64);
        assert_eq!(head.as_slice(), full.get(..head.len()).unwrap_or_default());
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&which, body)) = input.split_first() else {
        return;
    };
    match which % 3 {
        0 => prom(body),
        1 => count(which, body),
        _ => prefix(which, body),
    }
});
