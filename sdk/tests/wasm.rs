//! The SDK's pure logic, compiled to wasm32 and run under Node with `wasm-bindgen-test`
//! (`scripts/test-wasm.sh`), so that what runs inside the gateway VM is tested and not only the
//! native build. The same tests also run natively under `cargo test -p aigw-sdk`.
//!
//! Covered: the SSE parser and writer (including every way of splitting a stream into chunks),
//! configuration parsing and `_rules_` matching/merging, error-reply shapes, fixed and sliding
//! windows over `MemStore` with concurrent writers, RESP encoding/decoding, token-usage
//! extraction for OpenAI/Anthropic/Gemini payloads, log redaction, the body `Rewriter`'s
//! hold-back, and the proxy-wasm header-map wire format.
//!
//! Nothing here calls a host function: on wasm32 those are real `env.proxy_*` imports and the
//! test runner has no proxy-wasm host. Where wasm32 behaves differently from the native build
//! (its `usize` is 32 bits), the test says so and checks what the VM does.

use aigw::body::Rewriter;
use aigw::config::{self, ConfigError, Fact, PlainConfig, Rules};
use aigw::host::wire;
use aigw::host::HostError;
use aigw::llm::usage::{anthropic_usage, gemini_usage, openai_usage};
use aigw::llm::{Usage, UsageAccumulator, UsageProtocol};
use aigw::log::{Redactor, REDACTED};
use aigw::reply::{ErrorReply, Protocol, RateLimit};
use aigw::resp::{self, Command, RespError, Value};
use aigw::shared::{
    counter_add, counter_get, CasStore, FixedWindow, MemStore, SharedError, SlidingWindow,
    SlotError, SlotTable, WindowLimit, MAX_ATTEMPTS,
};
use aigw::sse::{self, Event, Parser, SseError};
use serde::Deserialize;
use serde_json::json;
use std::cell::{Cell, RefCell};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A deterministic pseudo-random sequence (xorshift64*), so "random" splits are the same on
/// every run and every target.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..bound` (`bound > 0`).
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Splits `input` at the given (sorted) cut points.
fn split_at<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut prev = 0;
    for &c in cuts {
        chunks.push(&input[prev..c]);
        prev = c;
    }
    chunks.push(&input[prev..]);
    chunks
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events
// ---------------------------------------------------------------------------------------------

/// An owned copy of everything an [`Event`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    raw: Vec<u8>,
    data: Option<Vec<u8>>,
    event_type: String,
    id: Vec<u8>,
    retry: Option<u64>,
    done: bool,
}

impl Block {
    fn of(e: Event<'_>) -> Block {
        Block {
            raw: e.raw().to_vec(),
            data: e.data().map(<[u8]>::to_vec),
            event_type: e.event_type().to_string(),
            id: e.id().to_vec(),
            retry: e.retry(),
            done: e.is_done(),
        }
    }
}

/// Parses a stream given as chunks; returns every block and the leftover of `finish`.
fn parse_sse(chunks: &[&[u8]]) -> (Vec<Block>, Vec<u8>) {
    let mut parser = Parser::new(1 << 20);
    let mut blocks = Vec::new();
    for chunk in chunks {
        parser
            .feed(chunk, |e| blocks.push(Block::of(e)))
            .expect("under the pending limit");
    }
    let leftover = parser.finish(|e| blocks.push(Block::of(e)));
    (blocks, leftover)
}

/// A stream with every feature that depends on chunk boundaries: a BOM, CRLF, CR-only and LF
/// line endings, comments, an `id` that persists, `retry`, multi-line data, multi-byte UTF-8,
/// a field without a colon, the `[DONE]` marker and an unterminated last block.
const SSE_STREAM: &[u8] = b"\xEF\xBB\xBF: keep-alive\r\n\r\n\
event: delta\r\nid: 1\r\ndata: {\"t\":\"h\xC3\xA9\"}\r\n\r\n\
data: line one\rdata:line two\r\r\
retry: 2500\ndata: \xE4\xB8\xAD\xF0\x9F\x98\x80\n\n\
id: 2\ndata\n\n\
: comment only\ndata: [DONE]\n\n\
data: partial";

/// What a data-carrying block reports: data, event type, id, retry and whether it is `[DONE]`.
type EventFields<'a> = (Vec<u8>, &'a str, &'a [u8], Option<u64>, bool);

/// The data-carrying blocks of [`SSE_STREAM`].
fn expected_sse_events() -> Vec<EventFields<'static>> {
    vec![
        (
            "{\"t\":\"h\u{e9}\"}".as_bytes().to_vec(),
            "delta",
            b"1",
            None,
            false,
        ),
        (b"line one\nline two".to_vec(), "message", b"1", None, false),
        (
            "\u{4e2d}\u{1F600}".as_bytes().to_vec(),
            "message",
            b"1",
            Some(2500),
            false,
        ),
        (Vec::new(), "message", b"2", None, false),
        (b"[DONE]".to_vec(), "message", b"2", None, true),
    ]
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn sse_whole_stream_fields_and_raw_bytes() {
    let (blocks, leftover) = parse_sse(&[SSE_STREAM]);
    // The keep-alive block is reported (with the BOM in its raw bytes) but is not an event.
    assert_eq!(blocks[0].raw, b"\xEF\xBB\xBF: keep-alive\r\n\r\n");
    assert_eq!(blocks[0].data, None);
    let events: Vec<_> = blocks
        .iter()
        .filter_map(|b| {
            let data = b.data.clone()?;
            Some((
                data,
                b.event_type.as_str(),
                b.id.as_slice(),
                b.retry,
                b.done,
            ))
        })
        .collect();
    assert_eq!(events, expected_sse_events());
    assert_eq!(leftover, b"data: partial");
    // Raw bytes of every block plus the leftover are exactly the input.
    let mut joined: Vec<u8> = blocks.iter().flat_map(|b| b.raw.clone()).collect();
    joined.extend_from_slice(&leftover);
    assert_eq!(joined, SSE_STREAM);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn sse_same_blocks_for_every_split() {
    let whole = parse_sse(&[SSE_STREAM]);
    assert_eq!(whole.0.len(), 6, "five events and the keep-alive block");
    let len = SSE_STREAM.len();
    let mut checked = 0usize;

    // Every split into two and three chunks (empty chunks included).
    for i in 0..=len {
        for j in i..=len {
            let split = parse_sse(&split_at(SSE_STREAM, &[i, j]));
            assert_eq!(split, whole, "cuts at {i} and {j}");
            checked += 1;
        }
    }

    // One byte at a time.
    let bytes: Vec<&[u8]> = SSE_STREAM.chunks(1).collect();
    assert_eq!(parse_sse(&bytes), whole, "byte by byte");

    // Deterministic pseudo-random splits into up to 16 chunks.
    let mut rng = Rng(0x5EED_0F55_E5EE_D123);
    for round in 0..500 {
        let n = rng.below(16);
        let mut cuts: Vec<usize> = (0..n).map(|_| rng.below(len + 1)).collect();
        cuts.sort_unstable();
        assert_eq!(
            parse_sse(&split_at(SSE_STREAM, &cuts)),
            whole,
            "round {round}, cuts {cuts:?}"
        );
        checked += 1;
    }
    assert!(checked > len * len / 2, "the split loop ran ({checked})");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn sse_pending_limit_stops_and_keeps_bytes() {
    let mut parser = Parser::new(32);
    let mut seen = 0;
    parser.feed(b"data: small\n\n", |_| seen += 1).unwrap();
    assert_eq!(seen, 1);
    let err = parser
        .feed(b"data: an event that never ends and keeps growing", |_| {})
        .unwrap_err();
    assert_eq!(err, SseError::PendingTooLarge { limit: 32 });
    assert_eq!(err.to_string(), "server-sent event larger than 32 bytes");
    assert!(parser.has_failed());
    assert!(parser.feed(b"\n\n", |_| seen += 1).is_err());
    assert_eq!(
        parser.take_pending(),
        b"data: an event that never ends and keeps growing"
    );
    parser.reset();
    parser.feed(b"data: again\n\n", |_| seen += 1).unwrap();
    assert_eq!(seen, 2);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn sse_writer_output_parses_back() {
    let mut out = Vec::new();
    sse::write_comment(&mut out, "ping\npong");
    sse::write_event(&mut out, Some("delta\r\n"), Some("7"), "a\r\nb\rc\nd");
    sse::write_data(&mut out, r#"{"x":1}"#);
    sse::write_retry(&mut out, 3000);
    sse::write_done(&mut out);
    assert!(out.starts_with(b": ping\n: pong\nevent: delta\nid: 7\ndata: a\ndata: b\n"));
    assert!(out.ends_with(b"retry: 3000\n\ndata: [DONE]\n\n"));
    let (blocks, leftover) = parse_sse(&[&out]);
    assert!(leftover.is_empty());
    let events: Vec<_> = blocks
        .iter()
        .filter_map(|b| Some((b.event_type.as_str(), b.data.clone()?, b.id.clone())))
        .collect();
    assert_eq!(
        events,
        vec![
            ("delta", b"a\nb\nc\nd".to_vec(), b"7".to_vec()),
            ("message", br#"{"x":1}"#.to_vec(), b"7".to_vec()),
            ("message", b"[DONE]".to_vec(), b"7".to_vec()),
        ]
    );
    assert_eq!(
        blocks.iter().find_map(|b| b.retry),
        Some(3000),
        "the retry block is reported"
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration and `_rules_`
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Provider {
    name: String,
    #[serde(default)]
    weight: u32,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Limits {
    tokens_per_minute: u64,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    providers: Vec<Provider>,
}

impl PlainConfig for Limits {
    fn validate(&mut self) -> Result<(), ConfigError> {
        if self.tokens_per_minute == 0 {
            return Err(ConfigError::new(
                "tokens_per_minute",
                "must be greater than 0",
            ));
        }
        for p in &mut self.providers {
            if p.weight == 0 {
                p.weight = 1;
            }
        }
        Ok(())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn config_errors_name_the_field() {
    let err = config::parse::<Limits>(br#"{"tokens_per_minute":"lots"}"#).unwrap_err();
    assert_eq!(err.path(), "tokens_per_minute");
    assert!(err.reason().contains("invalid type"), "{err}");

    let err = config::parse::<Limits>(
        br#"{"tokens_per_minute":5,"providers":[{"name":"a"},{"name":"b","wieght":2}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.path(), "providers[1].wieght");
    assert!(err.reason().starts_with("unknown field"), "{err}");

    let err = config::parse::<Limits>(br#"{"providers":[]}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tokens_per_minute: required field is missing"
    );
    // Empty input is `{}`.
    assert_eq!(config::parse::<Limits>(b" \n").unwrap_err(), err);

    let err = config::parse::<Limits>(br#"{"tokens_per_minute":0}"#).unwrap_err();
    assert_eq!(err.to_string(), "tokens_per_minute: must be greater than 0");

    let err = config::parse::<Limits>(b"{oops").unwrap_err();
    assert_eq!(err.path(), "");
    assert!(err.reason().starts_with("not valid JSON"), "{err}");

    // Validation may normalise.
    let cfg =
        config::parse::<Limits>(br#"{"tokens_per_minute":9,"providers":[{"name":"a"}]}"#).unwrap();
    assert_eq!(cfg.providers[0].weight, 1);
}

const RULES_DOC: &[u8] = br#"{
    "tokens_per_minute": 100,
    "header": "x-global",
    "_rules_": [
        {"_match_route_": ["chat"], "tokens_per_minute": 10},
        {"_match_route_prefix_": ["batch-"], "_match_domain_": ["api.*"], "tokens_per_minute": 40},
        {"_match_domain_": ["*.corp.example", "Exact.Host"], "tokens_per_minute": 20, "header": null},
        {"_match_service_": ["llm.ai", "gpu:8443"], "tokens_per_minute": 30}
    ]
}"#;

/// The `tokens_per_minute` selected for a request with these facts, and the facts asked for.
fn select(
    rules: &Rules<Limits>,
    route: Option<&str>,
    authority: Option<&str>,
    cluster: Option<&str>,
) -> (Option<u64>, Vec<Fact>) {
    let asked = RefCell::new(Vec::new());
    let picked = rules
        .select(|fact| {
            asked.borrow_mut().push(fact);
            match fact {
                Fact::RouteName => route,
                Fact::Authority => authority,
                Fact::ClusterName => cluster,
            }
            .map(String::from)
        })
        .map(|c| c.tokens_per_minute);
    (picked, asked.into_inner())
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn rules_match_first_rule_and_merge_over_global() {
    let rules = Rules::<Limits>::parse(RULES_DOC).unwrap();
    assert_eq!(rules.rule_count(), 4);
    assert!(rules.has_global());
    assert!(rules.global_error().is_none());
    assert!(rules.needs(Fact::RouteName) && rules.needs(Fact::Authority));
    assert!(rules.needs(Fact::ClusterName));
    assert_eq!(rules.configs().count(), 5);

    // Route rule: merged over the global object (the header is inherited). Only the route is
    // looked up, once, even though later rules need other facts.
    let chosen = rules
        .select(|f| (f == Fact::RouteName).then(|| "chat".to_string()))
        .unwrap();
    assert_eq!(chosen.tokens_per_minute, 10);
    assert_eq!(chosen.header.as_deref(), Some("x-global"));
    assert_eq!(
        select(&rules, Some("chat"), Some("x"), None),
        (Some(10), vec![Fact::RouteName])
    );

    // A rule with two matchers needs both.
    assert_eq!(
        select(&rules, Some("batch-7"), Some("api.vendor.io:443"), None).0,
        Some(40)
    );
    assert_eq!(
        select(&rules, Some("batch-7"), Some("www.vendor.io"), None).0,
        Some(100)
    );

    // Domains: suffix wildcard, case-insensitive exact, port stripped.
    assert_eq!(
        select(&rules, None, Some("a.b.corp.example:8080"), None).0,
        Some(20)
    );
    assert_eq!(select(&rules, None, Some("exact.HOST"), None).0, Some(20));
    assert_eq!(
        select(&rules, None, Some("corp.example"), None).0,
        Some(100)
    );
    // A rule setting a key to null replaces the global value as a whole (shallow merge).
    let domain_rule = rules
        .select(|f| (f == Fact::Authority).then(|| "x.corp.example".to_string()))
        .unwrap();
    assert_eq!(domain_rule.header, None);

    // Services: Istio cluster names by FQDN prefix, or FQDN with port.
    assert_eq!(
        select(
            &rules,
            None,
            None,
            Some("outbound|80||llm.ai.svc.cluster.local")
        )
        .0,
        Some(30)
    );
    assert_eq!(
        select(&rules, None, None, Some("outbound|8443||gpu.ns.svc")).0,
        Some(30)
    );
    assert_eq!(
        select(&rules, None, None, Some("outbound|80||gpu.ns.svc")).0,
        Some(100)
    );
    assert_eq!(select(&rules, None, None, Some("llm.aix")).0, Some(100));

    // No facts at all: every fact is asked once, the global configuration applies.
    let (picked, asked) = select(&rules, None, None, None);
    assert_eq!(picked, Some(100));
    assert_eq!(
        asked,
        vec![Fact::RouteName, Fact::Authority, Fact::ClusterName]
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn rules_errors_and_pass_through() {
    let err = Rules::<Limits>::parse(
        br#"{"tokens_per_minute":1,"_rules_":[{"_match_route_":["a"]},{"_match_route_":["b"],"tokens_per_minute":0}]}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "_rules_[1].tokens_per_minute: must be greater than 0"
    );
    let err = Rules::<Limits>::parse(br#"{"tokens_per_minute":1,"_rules_":[{"header":"h"}]}"#)
        .unwrap_err();
    assert_eq!(err.path(), "_rules_[0]");
    let err = Rules::<Limits>::parse(
        br#"{"tokens_per_minute":1,"_rules_":[{"_match_domain_":["ok",""]}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.path(), "_rules_[0]._match_domain_[1]");
    let err = Rules::<Limits>::parse(br#"{"tokens_per_minute":1,"_rules_":"all"}"#).unwrap_err();
    assert_eq!(err.path(), "_rules_");

    // With rules, an incomplete global part is a warning, and unmatched requests pass through.
    let rules = Rules::<Limits>::parse(
        br#"{"header":"h","_rules_":[{"_match_route_":["a"],"tokens_per_minute":5}]}"#,
    )
    .unwrap();
    assert!(!rules.has_global());
    assert_eq!(
        rules.global_error().map(ConfigError::path),
        Some("tokens_per_minute")
    );
    assert_eq!(select(&rules, Some("a"), None, None).0, Some(5));
    assert_eq!(select(&rules, Some("b"), None, None).0, None);
}

// ---------------------------------------------------------------------------------------------
// Error replies
// ---------------------------------------------------------------------------------------------

fn reply_json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("reply bodies are JSON")
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn reply_shapes_per_protocol() {
    let openai = ErrorReply::bad_request("'messages' is required", Some("messages"))
        .render(Protocol::from_path("/v1/chat/completions?x=1"));
    assert_eq!(openai.status, 400);
    assert_eq!(
        openai.headers,
        vec![("content-type".to_string(), "application/json".to_string())]
    );
    assert_eq!(
        reply_json(&openai.body),
        json!({"error": {"message": "'messages' is required", "type": "invalid_request_error",
                         "param": "messages", "code": null}})
    );

    let anthropic = ErrorReply::new(401, "bad key \"x\"")
        .render(Protocol::from_path("/anthropic/v1/messages/count_tokens"));
    assert_eq!(anthropic.status, 401);
    assert_eq!(
        reply_json(&anthropic.body),
        json!({"type": "error", "error": {"type": "authentication_error", "message": "bad key \"x\""}})
    );

    assert_eq!(Protocol::from_path("/v1/messagesx"), Protocol::OpenAi);
    assert_eq!(
        reply_json(&ErrorReply::new(503, "m").render(Protocol::OpenAi).body)["error"]["code"],
        "service_unavailable"
    );
    assert_eq!(
        reply_json(&ErrorReply::new(529, "m").render(Protocol::Anthropic).body)["error"]["type"],
        "overloaded_error"
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn reply_rate_limit_headers() {
    let r = ErrorReply::new(429, "token budget exhausted")
        .rate_limit(RateLimit::tokens(5_000_000_000, 0, 42))
        .render(Protocol::OpenAi);
    assert_eq!(r.status, 429);
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("retry-after"), Some("42"));
    // Limits above u32::MAX survive (u64 arithmetic on a 32-bit target).
    assert_eq!(header("x-ratelimit-limit-tokens"), Some("5000000000"));
    assert_eq!(header("x-ratelimit-remaining-tokens"), Some("0"));
    assert_eq!(header("x-ratelimit-reset-tokens"), Some("42s"));
    let body = reply_json(&r.body);
    assert_eq!(body["error"]["type"], "tokens");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    let r = ErrorReply::new(429, "slow down")
        .rate_limit(RateLimit::requests(10, 1, 7))
        .retry_after(3)
        .render(Protocol::Anthropic);
    assert!(r.headers.contains(&("retry-after".into(), "3".into())));
    assert!(r
        .headers
        .contains(&("x-ratelimit-remaining-requests".into(), "1".into())));
    assert_eq!(reply_json(&r.body)["error"]["type"], "rate_limit_error");
}

// ---------------------------------------------------------------------------------------------
// Shared windows over MemStore
// ---------------------------------------------------------------------------------------------

/// A store where, just before each of the next `conflicts` conditional writes, another VM
/// rewrites the record with `interfere` — so that write fails with `CasMismatch` and the
/// caller must retry on top of the other VM's update.
struct Racing<F: Fn(Option<&[u8]>) -> Vec<u8>> {
    inner: MemStore,
    conflicts: Cell<u32>,
    conditional_writes: Cell<u32>,
    interfere: F,
}

impl<F: Fn(Option<&[u8]>) -> Vec<u8>> Racing<F> {
    fn new(interfere: F) -> Self {
        Racing {
            inner: MemStore::new(),
            conflicts: Cell::new(0),
            conditional_writes: Cell::new(0),
            interfere,
        }
    }
}

impl<F: Fn(Option<&[u8]>) -> Vec<u8>> CasStore for Racing<F> {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
        self.inner.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        if cas != 0 {
            self.conditional_writes
                .set(self.conditional_writes.get() + 1);
            if self.conflicts.get() > 0 {
                self.conflicts.set(self.conflicts.get() - 1);
                let current = self.inner.get(key)?.map(|(v, _)| v);
                self.inner
                    .set(key, &(self.interfere)(current.as_deref()), 0)?;
            }
        }
        self.inner.set(key, value, cas)
    }
}

/// Little-endian u64 fields, the documented record format of `aigw::shared`.
fn fields(record: Option<&[u8]>) -> Vec<u64> {
    record
        .unwrap_or_default()
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect()
}

fn record(fields: &[u64]) -> Vec<u8> {
    fields.iter().flat_map(|f| f.to_le_bytes()).collect()
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn fixed_window_limits_and_expires() {
    let store = MemStore::new();
    let w = FixedWindow::new(60_000);
    // Timestamps beyond u32::MAX milliseconds (today's epoch times) on a 32-bit target.
    let t0 = 1_750_000_040_000u64;
    assert_eq!(w.start(t0), 1_750_000_020_000);
    let d = w.try_acquire(&store, "rl:alice", t0, 3, 5).unwrap();
    assert!(d.allowed);
    assert_eq!((d.count, d.remaining, d.reset_ms), (3, 2, 40_000));
    let d = w.try_acquire(&store, "rl:alice", t0 + 1_000, 3, 5).unwrap();
    assert!(!d.allowed);
    assert_eq!((d.count, d.remaining, d.reset_ms), (3, 2, 39_000));
    assert_eq!(w.add(&store, "rl:alice", t0 + 2_000, 2).unwrap(), 5);
    assert_eq!(w.usage(&store, "rl:alice", t0 + 39_999).unwrap(), 5);
    // The next window reads as empty; the same key is reused.
    assert_eq!(w.usage(&store, "rl:alice", t0 + 40_000).unwrap(), 0);
    assert!(
        w.try_acquire(&store, "rl:alice", t0 + 40_000, 5, 5)
            .unwrap()
            .allowed
    );
    assert_eq!(store.len(), 1);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn fixed_window_loses_no_update_under_conflicts() {
    let w = FixedWindow::new(1_000);
    // Another VM counts one request in the same window each time it interferes.
    let store = Racing::new(|r| {
        let f = fields(r);
        record(&[f[0], f[1] + 1])
    });
    assert_eq!(w.add(&store, "k", 5_010, 4).unwrap(), 4);
    store.conflicts.set(3);
    let d = w.try_acquire(&store, "k", 5_020, 5, 100).unwrap();
    assert!(d.allowed);
    assert_eq!(d.count, 4 + 3 + 5, "three concurrent +1 and ours");
    assert_eq!(
        store.conditional_writes.get(),
        4,
        "three failed attempts, one success"
    );
    assert_eq!(w.usage(&store, "k", 5_999).unwrap(), 12);

    // A denial writes nothing, whatever the other VMs do.
    let before = store.conditional_writes.get();
    let d = w.try_acquire(&store, "k", 5_030, 89, 100).unwrap();
    assert!(!d.allowed);
    assert_eq!((d.count, d.remaining), (12, 88));
    assert_eq!(store.conditional_writes.get(), before);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn sliding_window_weights_previous_bucket_under_conflicts() {
    let w = SlidingWindow::new(1_000);
    // Another VM adds 2 to the current bucket when it interferes.
    let store = Racing::new(|r| {
        let f = fields(r);
        record(&[f[0], f[1] + 2, f[2]])
    });
    assert_eq!(w.add(&store, "k", 10_500, 10).unwrap(), 10);
    // 25% into the next bucket: 75% of the previous 10 still counts.
    assert_eq!(w.usage(&store, "k", 11_250).unwrap(), 7);
    // The first write of the new bucket rolls the record over; later writes race.
    assert_eq!(w.add(&store, "k", 11_250, 1).unwrap(), 8);
    store.conflicts.set(2);
    let d = w.try_acquire(&store, "k", 11_500, 2, 100).unwrap();
    // 50% of 10, plus 1 + 2 + 2 (other VM) + 2 (ours).
    assert_eq!(d.count, 5 + 7);
    assert!(d.allowed);
    assert_eq!(d.reset_ms, 500);
    assert_eq!(w.usage(&store, "k", 11_900).unwrap(), 1 + 7);
    let d = w.try_acquire(&store, "k", 11_900, 100, 100).unwrap();
    assert!(!d.allowed);
    assert_eq!((d.count, d.remaining), (8, 92));
    // Two buckets later nothing is left.
    assert_eq!(w.usage(&store, "k", 13_000).unwrap(), 0);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn counters_retry_and_give_up_after_max_attempts() {
    let store = Racing::new(|r| {
        let n = fields(r).first().copied().unwrap_or(0);
        record(&[n + 1])
    });
    assert_eq!(counter_add(&store, "c", 5).unwrap(), 5);
    store.conflicts.set(MAX_ATTEMPTS - 1);
    assert_eq!(
        counter_add(&store, "c", 10).unwrap(),
        5 + u64::from(MAX_ATTEMPTS - 1) + 10
    );
    store.conflicts.set(MAX_ATTEMPTS);
    let before = counter_get(&store, "c").unwrap();
    assert_eq!(
        counter_add(&store, "c", 10),
        Err(SharedError::Contention {
            attempts: MAX_ATTEMPTS
        })
    );
    assert_eq!(
        counter_get(&store, "c").unwrap(),
        before + u64::from(MAX_ATTEMPTS),
        "only the other VMs' updates landed"
    );
    assert_eq!(
        counter_add(&store, "c", i64::MIN).unwrap(),
        0,
        "saturates at 0"
    );
}

// ---------------------------------------------------------------------------------------------
// RESP
// ---------------------------------------------------------------------------------------------

/// Encodes a reply (the SDK only decodes replies; this is the test's own encoder).
fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Simple(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
        Value::Error(s) => out.extend_from_slice(format!("-{s}\r\n").as_bytes()),
        Value::Integer(i) => out.extend_from_slice(format!(":{i}\r\n").as_bytes()),
        Value::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
        Value::Bulk(Some(b)) => {
            out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Value::Array(None) => out.extend_from_slice(b"*-1\r\n"),
        Value::Array(Some(items)) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            for item in items {
                encode_value(item, out);
            }
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn resp_commands_decode_back_to_their_arguments() {
    let binary: &[u8] = b"v\r\n\0\xFF";
    for (cmd, args) in [
        (
            Command::set("quota:alice", binary, Some(60)),
            vec![&b"SET"[..], b"quota:alice", binary, b"EX", b"60"],
        ),
        (
            Command::incr_by("k", i64::MIN),
            vec![&b"INCRBY"[..], b"k", b"-9223372036854775808"],
        ),
        (
            Command::eval("return redis.call('GET', KEYS[1])", &["a", "b"], &["x"]),
            vec![
                &b"EVAL"[..],
                b"return redis.call('GET', KEYS[1])",
                b"2",
                b"a",
                b"b",
                b"x",
            ],
        ),
        (
            Command::new("EXPIRE").arg("k").arg(u64::MAX),
            vec![&b"EXPIRE"[..], b"k", b"18446744073709551615"],
        ),
    ] {
        let wire = cmd.encode();
        let expected = Value::Array(Some(
            args.iter().map(|a| Value::Bulk(Some(a.to_vec()))).collect(),
        ));
        assert_eq!(resp::decode(&wire), Ok((expected, wire.len())));
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn resp_replies_round_trip_and_prefixes_are_incomplete() {
    let replies = vec![
        Value::Simple("OK".into()),
        Value::Error("ERR wrong type".into()),
        Value::Integer(-42),
        Value::Integer(i64::MAX),
        Value::Bulk(None),
        Value::Bulk(Some(Vec::new())),
        Value::Bulk(Some(b"\r\n*1\r\n".to_vec())),
        Value::Array(None),
        Value::Array(Some(vec![])),
        Value::Array(Some(vec![
            Value::Integer(1),
            Value::Array(Some(vec![
                Value::Bulk(Some(b"x".to_vec())),
                Value::Bulk(None),
            ])),
            Value::Simple("QUEUED".into()),
        ])),
    ];
    // Pipelined: decoding one after another consumes exactly each encoding.
    let mut wire = Vec::new();
    for r in &replies {
        encode_value(r, &mut wire);
    }
    let mut at = 0;
    for r in &replies {
        let (v, used) = resp::decode(&wire[at..]).unwrap();
        assert_eq!(&v, r);
        at += used;
    }
    assert_eq!(at, wire.len());

    // Every strict prefix of a reply is incomplete, never an error or a wrong value.
    for r in &replies {
        let mut one = Vec::new();
        encode_value(r, &mut one);
        for cut in 0..one.len() {
            assert_eq!(
                resp::decode(&one[..cut]),
                Err(RespError::Incomplete),
                "{r:?} cut at {cut}"
            );
        }
    }
    assert_eq!(Value::Bulk(Some(b" 17 ".to_vec())).as_i64(), Some(17));
    assert_eq!(Value::Simple("x".into()).as_bytes(), Some(&b"x"[..]));
    assert!(Value::Array(None).is_nil());
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn resp_rejects_bad_and_oversized_replies() {
    assert_eq!(
        resp::decode(b"$2\r\nabcd"),
        Err(RespError::Invalid("bulk string not terminated by CRLF"))
    );
    assert_eq!(
        resp::decode(b":1x\r\n"),
        Err(RespError::Invalid("bad integer"))
    );
    assert_eq!(
        resp::decode(b"!\r\n"),
        Err(RespError::Invalid("unknown type byte"))
    );
    let deep = "*1\r\n".repeat(resp::MAX_DEPTH + 1) + ":1\r\n";
    assert_eq!(resp::decode(deep.as_bytes()), Err(RespError::TooDeep));

    // Lengths that do not fit a 32-bit `usize`: inside the wasm VM they are rejected as
    // invalid; natively (64-bit) they merely wait for more input. Neither allocates.
    let (huge_bulk, huge_array) = if cfg!(target_pointer_width = "32") {
        (
            Err(RespError::Invalid("bulk length")),
            Err(RespError::Invalid("array length")),
        )
    } else {
        (Err(RespError::Incomplete), Err(RespError::Incomplete))
    };
    assert_eq!(resp::decode(b"$99999999999\r\n"), huge_bulk);
    assert_eq!(resp::decode(b"*99999999999\r\n"), huge_array);
}

// ---------------------------------------------------------------------------------------------
// Token usage
// ---------------------------------------------------------------------------------------------

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn usage_openai_stream_and_body() {
    let chunks = [
        r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null}"#,
        r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"a \"usage\": {} mention"}}],"usage":null}"#,
        r#"{"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":6000000000,"completion_tokens":300,"total_tokens":6000000300,"prompt_tokens_details":{"cached_tokens":1024},"completion_tokens_details":{"reasoning_tokens":128}}}"#,
    ];
    let mut acc = UsageAccumulator::new(UsageProtocol::OpenAi);
    assert!(!acc.feed(chunks[0].as_bytes()));
    assert!(
        !acc.feed(chunks[1].as_bytes()),
        "usage inside content is not usage"
    );
    assert_eq!(acc.usage(), None);
    assert!(acc.feed(chunks[2].as_bytes()));
    assert_eq!(
        acc.usage(),
        Some(Usage {
            input: 6_000_000_000,
            output: 300,
            total: 6_000_000_300,
            cached_input: 1024,
            reasoning: 128,
            cache_creation_input: None,
        })
    );
    let body = br#"{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3}}"#;
    let u = openai_usage(body).unwrap();
    assert_eq!((u.input, u.output, u.total), (9, 3, 12));
    assert_eq!(openai_usage(br#"{"choices":[]}"#), None);
    assert_eq!(u.to_openai().total_tokens, 12);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn usage_anthropic_stream_is_not_double_counted() {
    let events = [
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","usage":{"input_tokens":25,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":1}}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":15}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":25,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":31}}"#,
        r#"{"type":"message_stop"}"#,
    ];
    let mut acc = UsageAccumulator::new(UsageProtocol::Anthropic);
    let carried: Vec<bool> = events.iter().map(|e| acc.feed(e.as_bytes())).collect();
    assert_eq!(carried, vec![true, false, true, true, false]);
    let u = acc.usage().unwrap();
    assert_eq!(
        u,
        Usage {
            input: 25 + 100 + 2000,
            output: 31,
            total: 2125 + 31,
            cached_input: 2000,
            reasoning: 0,
            cache_creation_input: Some(100),
        }
    );
    assert_eq!(u.to_anthropic().input_tokens, 25);
    let body = br#"{"type":"message","content":[],"usage":{"input_tokens":12,"output_tokens":6}}"#;
    assert_eq!(anthropic_usage(body).map(|u| u.total), Some(18));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn usage_gemini_cumulative_latest_wins() {
    let chunks = [
        r#"{"candidates":[{"content":{"parts":[{"text":"..."}]}}],"usageMetadata":{"promptTokenCount":80,"totalTokenCount":110,"thoughtsTokenCount":30}}"#,
        r#"{"candidates":[{"content":{"parts":[{"text":"Hello"}]}}],"usageMetadata":{"promptTokenCount":80,"candidatesTokenCount":4,"totalTokenCount":114,"thoughtsTokenCount":30}}"#,
        r#"{"candidates":[{"content":{"parts":[{"text":"!"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":80,"candidatesTokenCount":9,"totalTokenCount":119,"cachedContentTokenCount":64,"thoughtsTokenCount":30}}"#,
    ];
    let mut acc = UsageAccumulator::new(UsageProtocol::Gemini);
    for c in chunks {
        assert!(acc.feed(c.as_bytes()));
    }
    assert_eq!(
        acc.usage(),
        Some(Usage {
            input: 80,
            output: 9 + 30,
            total: 119,
            cached_input: 64,
            reasoning: 30,
            cache_creation_input: None,
        })
    );
    assert_eq!(gemini_usage(br#"{"candidates":[]}"#), None);
}

// ---------------------------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------------------------

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn redaction_masks_secrets_only() {
    let r = Redactor::new(&["X-Tenant-Secret"]);
    for h in [
        "Authorization",
        "x-api-key",
        "X-Goog-Api-Key",
        "cookie",
        "x-tenant-secret",
    ] {
        assert_eq!(r.header(h, "value"), REDACTED, "{h}");
    }
    assert_eq!(
        r.header("content-type", "application/json"),
        "application/json"
    );
    assert_eq!(
        r.header("x-debug", "upstream said: Bearer eyJhbGciOi.x-y_z"),
        "upstream said: Bearer [redacted]"
    );
    assert_eq!(
        r.text("clé sk-proj-ABCDEFGHijklmnop0123 ✓"),
        "clé [redacted] ✓"
    );
    assert_eq!(
        r.text(r#"{"model":"m","api_key":"k\"1","x-tenant-secret":"t"}"#),
        r#"{"model":"m","api_key":"[redacted]","x-tenant-secret":"[redacted]"}"#
    );
    assert_eq!(
        r.text("GET /v1?key=1&access_token=abc&token=def; password = hunter2"),
        "GET /v1?key=1&access_token=[redacted]&token=[redacted]; password = [redacted]"
    );
    // Near misses stay as they are.
    for plain in [
        "max_tokens=5",
        "sk-short",
        "task-abcdefghijklmnopqrstu",
        "tokens: 7",
    ] {
        assert_eq!(r.text(plain), plain);
    }
}

// ---------------------------------------------------------------------------------------------
// Body rewriting with hold-back
// ---------------------------------------------------------------------------------------------

/// Upper-cases complete SSE blocks (up to the last blank line) and holds back the rest.
fn upper_complete_blocks(input: &[u8], _end_of_stream: bool, out: &mut Vec<u8>) -> usize {
    let done = input
        .windows(2)
        .rposition(|w| w == b"\n\n")
        .map_or(0, |i| i + 2);
    out.extend(input[..done].iter().map(u8::to_ascii_uppercase));
    input.len() - done
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn rewriter_holds_back_incomplete_blocks_for_every_split() {
    let body: &[u8] = b"data: one\n\ndata: two\n\ndata: tail";
    let expected: &[u8] = b"DATA: ONE\n\nDATA: TWO\n\ndata: tail";
    for i in 0..=body.len() {
        for j in i..=body.len() {
            let mut rw = Rewriter::new(1024);
            let mut out = Vec::new();
            out.extend_from_slice(rw.process(&body[..i], false, upper_complete_blocks));
            out.extend_from_slice(rw.process(&body[i..j], false, upper_complete_blocks));
            // Exactly the bytes after the last complete block seen so far are held.
            let complete = body[..j]
                .windows(2)
                .rposition(|w| w == b"\n\n")
                .map_or(0, |p| p + 2);
            assert_eq!(rw.held(), j - complete, "cuts at {i} and {j}");
            out.extend_from_slice(rw.process(&body[j..], true, upper_complete_blocks));
            assert_eq!(out, expected, "cuts at {i} and {j}");
            assert_eq!(rw.held(), 0);
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn rewriter_hold_is_bounded_and_flush_releases() {
    let mut rw = Rewriter::new(4);
    // The block is longer than the hold limit: what does not fit is released unchanged.
    assert_eq!(
        rw.process(b"data: long", false, upper_complete_blocks),
        b"data: "
    );
    assert_eq!(rw.held(), 4);
    assert_eq!(
        rw.process(b"er\n\n", false, upper_complete_blocks),
        b"LONGER\n\n"
    );
    assert_eq!(rw.held(), 0);
    assert_eq!(rw.process(b"data", false, upper_complete_blocks), b"");
    // A stream that ends without an end-of-stream chunk (trailers) flushes what is held.
    assert_eq!(rw.flush(), b"data");
    assert_eq!(rw.held(), 0);
}

// ---------------------------------------------------------------------------------------------
// proxy-wasm wire format
// ---------------------------------------------------------------------------------------------

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn header_map_wire_format_round_trips_and_rejects_truncation() {
    let pairs: Vec<(&[u8], &[u8])> = vec![
        (b":authority", b"api.example.com"),
        (b"x-empty", b""),
        (b"x-bin", b"\0\xFF\r\n"),
    ];
    let raw = wire::encode_pairs(&pairs);
    assert_eq!(&raw[..4], &3u32.to_le_bytes());
    let back = wire::decode_pairs(&raw).unwrap();
    let back: Vec<(&[u8], &[u8])> = back
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    assert_eq!(back, pairs);
    // Any cut into the counts, lengths, keys or values is rejected (the decoder does not
    // require the very last NUL terminator, so that one cut is not checked here).
    for cut in 1..raw.len() - 1 {
        assert_eq!(wire::decode_pairs(&raw[..cut]), None, "cut at {cut}");
    }
    // A count far beyond the data is refused before allocating.
    assert_eq!(wire::decode_pairs(&u32::MAX.to_le_bytes()), None);
    assert_eq!(wire::encode_path(&["request", "path"]), b"request\0path");
}

// ---------------------------------------------------------------------------------------------
// slot tables and FNV-1a
// ---------------------------------------------------------------------------------------------

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn slot_table_counts_settles_and_stays_bounded() {
    let store = MemStore::new();
    let windows = [WindowLimit::new(1, 10), WindowLimit::new(60, 25)];
    let table = SlotTable::new("t", "w", 2, &windows);
    table.create_slots(&store).unwrap();
    assert_eq!(store.len(), 2);
    let c = table.acquire(&store, 7, 0, 10).unwrap();
    assert!(c.allowed);
    assert_eq!(c.windows[0].remaining(), 0);
    assert_eq!(c.windows[1].remaining(), 15);
    // The per-second window is full; a second later it has room, the minute counts on.
    assert!(!table.acquire(&store, 7, 500, 1).unwrap().allowed);
    let c = table.acquire(&store, 7, 1000, 10).unwrap();
    assert!(c.allowed && c.windows[1].used == 20);
    // Settling gives back what the reservation over-estimated, in both windows.
    let starts: Vec<u64> = c.windows.iter().map(|w| w.start_ms).collect();
    table.settle(&store, 7, 1500, &starts, 10, 4).unwrap();
    let c = table.acquire(&store, 7, 1500, 0).unwrap();
    assert_eq!((c.windows[0].used, c.windows[1].used), (4, 14));
    // Two slots: a third live identity does not fit until the windows end.
    assert!(table.acquire(&store, 8, 1500, 1).unwrap().allowed);
    assert_eq!(table.acquire(&store, 9, 1500, 1), Err(SlotError::TableFull));
    assert!(table.acquire(&store, 9, 61_000, 1).unwrap().allowed);
    assert_eq!(store.len(), 2);
    assert_eq!(table.key(1), "t|w|1.60s2|1");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn fnv1a_is_the_same_inside_the_vm() {
    use aigw::hash::{fnv1a, Fnv1a};
    assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    let mut h = Fnv1a::new();
    for part in [&b"foo"[..], b"", b"bar"] {
        h.write(part);
    }
    assert_eq!(h.finish(), fnv1a(b"foobar"));
}
