//! ai-guard scanner: the keyword/pattern engine, the streaming scanner and the JSON scope
//! walker, under the example configuration (`plugins/ai-guard/example.json`) and a second one with
//! custom regexes, separator-insensitive mask words and restorable masks.
//!
//! The first byte picks the configuration and the chunking; the rest is the text or body.
//! Properties: findings are in order, non-overlapping and on character boundaries; the
//! streaming scanner, whatever the split, writes exactly what `Engine::redact` writes on the
//! whole text, gives the same verdict, and never buffers more than its window; every span the
//! walker extracts is a string literal of the body that JSON decodes to the span's text; a
//! rewritten JSON body is still JSON with the same shape.
#![no_main]

use ai_guard::config::Guard;
use ai_guard::engine::{Report, Verdict};
use ai_guard::scope::{extract, redact_body, BodyOutcome, Direction, JsonPath, Selection};
use ai_guard::stream::StreamScanner;
use libfuzzer_sys::fuzz_target;

mod split;
use std::rc::Rc;

const SECOND: &str = r#"{
  "scope": {"request": {"roles": ["user"], "json_paths": ["$.metadata.notes", "$.extra[*]['x']"]},
            "response": {"raw": true}},
  "keywords": {"lists": [
    {"name": "spam", "action": "mask", "ignore_separators": true, "words": ["free money", "wire transfer", "密码"]},
    {"name": "stop", "action": "block", "whole_word": true, "words": ["forbidden"]}
  ]},
  "patterns": [
    {"name": "ticket", "regex": "TCK-[0-9]{6}", "action": "mask", "type": "hash"},
    {"name": "quoted", "regex": "\"[a-z]+\\s*=\\s*[0-9]+\"", "action": "mask", "restore": true},
    {"builtin": "ipv4", "action": "mask", "restore": true},
    {"builtin": "email", "action": "mask", "restore": true}
  ],
  "mask": {"hash_salt": "fuzz-salt"},
  "stream": {"enabled": true, "max_match_len": 64}
}"#;

thread_local! {
    static GUARDS: [Guard; 2] = [
        Guard::from_json(include_bytes!("../../../plugins/ai-guard/example.json"))
            .expect("the example configuration compiles"),
        Guard::from_json(SECOND.as_bytes()).expect("the second configuration compiles"),
    ];
}

fn chunks(text: &str, seed: u8) -> Vec<&str> {
    let mut out = Vec::new();
    let mut lengths = split::Lengths::new(seed);
    let mut rest = text;
    while !rest.is_empty() {
        let mut n = lengths.next(40).min(rest.len());
        while !rest.is_char_boundary(n) {
            n += 1;
        }
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    out
}

fn check_text(guard: &Guard, text: &str, seed: u8) {
    let engine = &guard.engine;
    let findings = engine.scan(text);
    let mut last = 0;
    for f in &findings {
        assert!(
            last <= f.start && f.start < f.end && f.end <= text.len(),
            "{f:?}"
        );
        assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        last = f.end;
    }

    let mut whole = String::new();
    let mut report = Report::default();
    let verdict = engine.redact(text, None, &mut whole, &mut report);

    let mut scanner = StreamScanner::new(Rc::clone(engine));
    let mut streamed = String::new();
    let mut sv = Verdict::Pass;
    for c in chunks(text, seed) {
        sv = scanner.push(c, &mut streamed);
        assert!(scanner.buffered() <= scanner.window());
        if sv.is_block() {
            break;
        }
    }
    if !sv.is_block() {
        sv = scanner.finish(&mut streamed);
    }
    assert!(scanner.peak_buffered() <= scanner.window());
    assert_eq!(
        sv, verdict,
        "stream verdict differs from the whole-text verdict"
    );
    if verdict == Verdict::Pass {
        assert_eq!(
            streamed, whole,
            "stream output differs from the whole-text output"
        );
    }

    // The same text as raw bytes split anywhere (inside code points too).
    let mut scanner = StreamScanner::new(Rc::clone(engine));
    let mut streamed = String::new();
    let mut bv = Verdict::Pass;
    for c in text.as_bytes().chunks(usize::from(seed % 7) + 1) {
        bv = scanner.push_bytes(c, &mut streamed);
        if bv.is_block() {
            break;
        }
    }
    if !bv.is_block() {
        bv = scanner.finish(&mut streamed);
    }
    assert_eq!(bv, verdict);
    if verdict == Verdict::Pass {
        assert_eq!(streamed, whole, "byte-chunked stream output differs");
    }
}

fn check_body(guard: &Guard, body: &str) {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    for sel in [&guard.request, &guard.response].into_iter().flatten() {
        for sel in [sel.clone(), Selection::chat(Direction::Request)] {
            let Ok(spans) = extract(body, &sel) else {
                continue;
            };
            let mut last = 0;
            for s in &spans {
                assert!(last <= s.start && s.start < s.end && s.end <= body.len());
                last = s.end;
                let lit = body.get(s.start..s.end).expect("span on char boundaries");
                if let Ok(decoded) = serde_json::from_str::<String>(lit) {
                    assert_eq!(decoded, s.text, "span text differs from its literal");
                }
            }
            let mut vault = guard.new_vault();
            let mut report = Report::default();
            let out = redact_body(
                &guard.engine,
                body.as_bytes(),
                true,
                &sel,
                Some(&mut vault),
                &mut report,
            );
            if let (Ok(BodyOutcome::Rewritten(new)), Some(before)) = (out, &parsed) {
                let after: serde_json::Value =
                    serde_json::from_str(&new).expect("a rewritten JSON body is JSON");
                assert_eq!(
                    shape(before),
                    shape(&after),
                    "rewriting changed the JSON shape"
                );
            }
        }
    }
}

/// The JSON value with every string replaced by a marker.
fn shape(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(_) => Value::Null,
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        other => other.clone(),
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&sel, body)) = input.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(body);
    GUARDS.with(|guards| {
        let guard = &guards[usize::from(sel & 1)];
        if sel & 2 == 0 {
            check_text(guard, &text, sel);
        } else {
            check_body(guard, &text);
            let _ = JsonPath::parse(&text);
        }
    });
});
