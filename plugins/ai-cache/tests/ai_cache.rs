//! ai-cache end to end in the host simulator: exact hits and misses, TTL under the simulated
//! clock, bypass and refresh, streams stored and replayed, aborted streams, workers sharing
//! the local cache, and the semantic lookup against the mock LLM's real embeddings endpoint.

use aigw_test_kit::answer::{anthropic_stream, openai_stream, usage};
use aigw_test_kit::{assert_configs_rejected, load, reached_upstream, send_200, spec, sse, Chat};
use host_sim::mock_llm::{self, embed::embed, MockOptions};
use host_sim::{Cluster, Request, Sim, SimOptions, StreamRecord, UpstreamResponse};
use serde_json::Value;
use std::time::Duration;

fn sim_with(workers: usize, config: &str) -> Sim {
    load("ai-cache", workers, config)
}

fn question(question: &str, stream: bool) -> Chat {
    Chat::openai("gpt-4o")
        .set("temperature", 0)
        .stream(stream)
        .user(question)
}

fn chat_body(q: &str, stream: bool) -> String {
    question(q, stream).body()
}

fn chat(q: &str) -> Request {
    question(q, false).request()
}

fn chat_stream(q: &str) -> Request {
    question(q, true).request()
}

/// A stream request that asks for the usage chunk (`stream_options.include_usage`); the same
/// cache key as [`chat_stream`], since `stream_options` does not change the answer.
fn chat_stream_with_usage(q: &str) -> Request {
    question(q, true)
        .set("stream_options", serde_json::json!({"include_usage": true}))
        .request()
}

fn answer(text: &str) -> UpstreamResponse {
    aigw_test_kit::answer::openai("gpt-4o", text, usage(11, 5))
}

/// An OpenAI stream of `words`, with a finish reason, a usage chunk and `[DONE]`.
fn openai_sse(words: &[&str], finish: &str) -> String {
    openai_stream("gpt-4o", words, finish, Some(usage(9, 7)))
}

const WORDS: &[&str] = &[
    "Caching ",
    "keeps ",
    "repeated ",
    "questions ",
    "off ",
    "the ",
    "GPU, ",
    "which ",
    "saves ",
    "a ",
    "great ",
    "deal ",
    "of ",
    "money.",
];

fn header<'a>(rec: &'a StreamRecord, name: &str) -> Option<&'a str> {
    rec.response.header(name)
}

/// Runs `req` against `resp` and checks the `x-cache-status` the client got.
fn cached(sim: &mut Sim, req: Request, resp: UpstreamResponse, status: &str) -> StreamRecord {
    let rec = sim.run(req, resp).expect("exchange");
    assert_eq!(header(&rec, "x-cache-status"), Some(status));
    rec
}

/// The `data:` payloads of an SSE body, in order.
fn sse_data(body: &[u8]) -> Vec<String> {
    sse::data(body)
}

/// The content deltas of an OpenAI stream (events with non-empty content).
fn content_deltas(body: &[u8]) -> Vec<String> {
    sse_data(body)
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn exact_miss_then_hit_with_headers_usage_and_stored_json() {
    let mut sim = sim_with(1, r#"{"ttl_seconds":300}"#);
    let miss = sim
        .run(chat("What is Rust?"), answer("A language."))
        .unwrap();
    assert_eq!(miss.response.status, 200);
    assert!(reached_upstream(&miss));
    assert_eq!(header(&miss, "x-cache-status"), Some("miss"));
    let key = header(&miss, "x-cache-key").unwrap().to_string();
    assert_eq!(key.len(), 32);

    // Same request with keys reordered and extra whitespace: the same key, a hit.
    let reordered = Request::post(
        "/v1/chat/completions",
        r#"{ "messages": [ {"content": "What is Rust?", "role": "user"} ],
             "temperature": 0, "model": "gpt-4o" }"#,
    );
    let hit = sim.run(reordered, answer("WRONG")).unwrap();
    assert!(!reached_upstream(&hit), "a hit does not reach the upstream");
    assert_eq!(hit.response.status, 200);
    assert_eq!(header(&hit, "x-cache-status"), Some("hit"));
    assert_eq!(header(&hit, "x-cache-key"), Some(key.as_str()));
    assert_eq!(header(&hit, "age"), Some("0"));
    assert_eq!(hit.response.body, miss.response.body, "the stored JSON");
    let usage: Value = serde_json::from_slice(&hit.filter_state["aigw.usage"]).unwrap();
    assert_eq!(usage["input"], 11);
    assert_eq!(usage["cached_input"], 11);
    assert_eq!(usage["output"], 5);

    // Another temperature is another key.
    let other = Request::post(
        "/v1/chat/completions",
        r#"{"model":"gpt-4o","temperature":1,"messages":[{"role":"user","content":"What is Rust?"}]}"#,
    );
    let rec = cached(&mut sim, other, answer("Creative."), "miss");
    assert!(reached_upstream(&rec));
    assert_eq!(sim.metric("ai_cache_hits;kind=exact"), Some(1));
    assert_eq!(sim.metric("ai_cache_requests;status=miss"), Some(2));
}

#[test]
fn ttl_expires_under_the_simulated_clock() {
    let mut sim = sim_with(1, r#"{"ttl_seconds":60}"#);
    sim.run(chat("q"), answer("first")).unwrap();
    sim.advance(Duration::from_secs(30));
    let hit = cached(&mut sim, chat("q"), answer("second"), "hit");
    assert_eq!(header(&hit, "age"), Some("30"));
    assert!(hit.response.body_str().contains("first"));
    sim.advance(Duration::from_secs(31));
    let after = cached(&mut sim, chat("q"), answer("second"), "miss");
    assert!(reached_upstream(&after));
    assert!(after.response.body_str().contains("second"));
    // The fresh answer replaced the expired one.
    let hit = sim.run(chat("q"), answer("third")).unwrap();
    assert!(hit.response.body_str().contains("second"));
}

#[test]
fn bypass_and_refresh_controls() {
    let mut sim = sim_with(1, "{}");
    // no-store: neither looked up nor stored.
    let rec = cached(
        &mut sim,
        chat("q").header("cache-control", "no-store"),
        answer("a"),
        "bypass",
    );
    assert!(reached_upstream(&rec));
    let rec = sim.run(chat("q"), answer("b")).unwrap();
    assert_eq!(
        header(&rec, "x-cache-status"),
        Some("miss"),
        "no-store stored nothing"
    );
    // A hit now; bypass by header skips it.
    let rec = cached(
        &mut sim,
        chat("q").header("x-ai-cache", "bypass"),
        answer("c"),
        "bypass",
    );
    assert!(rec.response.body_str().contains("\"c\""));
    // Refresh (cache-control: no-cache) skips the lookup and stores the fresh answer.
    let rec = cached(
        &mut sim,
        chat("q").header("cache-control", "max-age=0, no-cache"),
        answer("d"),
        "refresh",
    );
    assert!(reached_upstream(&rec));
    let rec = cached(&mut sim, chat("q"), answer("e"), "hit");
    assert!(rec.response.body_str().contains("\"d\""));
    // The control header's refresh works too.
    cached(
        &mut sim,
        chat("q").header("x-ai-cache", "refresh"),
        answer("f"),
        "refresh",
    );
    let rec = sim.run(chat("q"), answer("g")).unwrap();
    assert!(rec.response.body_str().contains("\"f\""));
}

#[test]
fn a_request_over_max_request_bytes_passes_through_uncached_and_intact() {
    let mut sim = sim_with(1, r#"{"max_request_bytes": 200}"#);
    let long = "why ".repeat(80);
    let body = chat_body(&long, false);
    assert!(body.len() > 200);
    for text in ["a", "b"] {
        let req = Request::post("/v1/chat/completions", body.clone()).chunked(64);
        let rec = sim.run(req, answer(text)).unwrap();
        // Never a local reply: the whole body went upstream unchanged, and nothing was
        // stored, so the second request is not a hit.
        assert!(rec.local_reply.is_none(), "{:?}", rec.local_reply);
        assert_eq!(header(&rec, "x-cache-status"), Some("bypass"));
        let up = rec.upstream_request.as_ref().expect("went upstream");
        assert_eq!(up.body_str(), body);
        assert!(rec.response.body_str().contains(&format!("\"{text}\"")));
    }
    assert_eq!(
        sim.metric("ai_cache_uncacheable;reason=request_too_large"),
        Some(2)
    );
    // A small request on the same gateway is still cached.
    sim.run(chat("short"), answer("c")).unwrap();
    cached(&mut sim, chat("short"), answer("d"), "hit");
}

#[test]
fn stream_is_stored_then_replayed_as_several_sse_events() {
    let mut sim = sim_with(1, r#"{"replay_chunk_chars":16}"#);
    let original = openai_sse(WORDS, "stop");
    let miss = cached(
        &mut sim,
        chat_stream("tell me"),
        UpstreamResponse::sse(original.clone()).chunked(37),
        "miss",
    );
    assert_eq!(
        miss.response.body_str(),
        original,
        "a miss passes unchanged"
    );
    assert_eq!(sim.metric("ai_cache_stored"), Some(1));

    let hit = sim
        .run(
            chat_stream_with_usage("tell me"),
            UpstreamResponse::sse("data: wrong\n\n"),
        )
        .unwrap();
    assert!(!reached_upstream(&hit));
    assert_eq!(header(&hit, "x-cache-status"), Some("hit"));
    assert_eq!(header(&hit, "content-type"), Some("text/event-stream"));

    // Event by event: the same content, in several events, with usage and [DONE] last.
    let want: String = content_deltas(original.as_bytes()).concat();
    let got = content_deltas(&hit.response.body);
    assert_eq!(got.concat(), want);
    assert!(got.len() >= 5, "several content events: {got:?}");
    assert!(got.iter().all(|p| p.chars().count() <= 16));
    let events = sse_data(&hit.response.body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let usage_event: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage_event["usage"]["prompt_tokens"], 9);
    assert_eq!(usage_event["usage"]["completion_tokens"], 7);
    assert_eq!(
        usage_event["usage"]["prompt_tokens_details"]["cached_tokens"],
        9
    );
    for e in &events[..events.len() - 1] {
        let v: Value = serde_json::from_str(e).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
    }
    let finish: Vec<&Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter(|v| v["choices"][0]["finish_reason"] == "stop")
        .map(|_| &Value::Null)
        .collect();
    assert_eq!(finish.len(), 1, "one finish event");

    // A non-stream request for the same question gets a JSON answer built from the stream.
    let json = cached(&mut sim, chat("tell me"), answer("WRONG"), "hit");
    let v: Value = serde_json::from_slice(&json.response.body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], want.as_str());
    assert_eq!(v["usage"]["completion_tokens"], 7);
}

#[test]
fn anthropic_stream_replays_as_anthropic_events() {
    let mut sim = sim_with(1, "{}");
    let body = r#"{"model":"claude-3-5-haiku-latest","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let text = [
        "Hello ", "there, ", "how ", "can ", "I ", "help ", "you ", "today?",
    ];
    let usage = serde_json::json!({"input_tokens": 8, "output_tokens": 1});
    let sse = anthropic_stream("claude-3-5-haiku-latest", &text, usage, "end_turn", 9);
    cached(
        &mut sim,
        Request::post("/v1/messages", body),
        UpstreamResponse::sse(sse).chunked(50),
        "miss",
    );
    let hit = cached(
        &mut sim,
        Request::post("/v1/messages", body),
        UpstreamResponse::sse("x"),
        "hit",
    );
    let events: Vec<Value> = sse_data(&hit.response.body)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"message_start"));
    assert_eq!(types.last(), Some(&"message_stop"));
    let deltas: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "content_block_delta")
        .map(|e| e["delta"]["text"].as_str().unwrap())
        .collect();
    assert!(deltas.len() >= 2, "{deltas:?}");
    assert_eq!(deltas.concat(), text.concat());
    let md = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(md["delta"]["stop_reason"], "end_turn");
    assert_eq!(md["usage"]["output_tokens"], 9);
    // The whole prompt is reported as read from the cache (Anthropic's `input_tokens`
    // counts uncached input only).
    assert_eq!(events[0]["message"]["usage"]["cache_read_input_tokens"], 8);
    assert_eq!(events[0]["message"]["usage"]["input_tokens"], 0);
    assert!(String::from_utf8_lossy(&hit.response.body).contains("event: message_stop\n"));
}

#[test]
fn aborted_filtered_and_failed_answers_are_not_stored() {
    let mut sim = sim_with(1, "{}");
    let full = openai_sse(WORDS, "stop");
    // Client abort in the middle of the stream.
    let sid = sim.begin(chat_stream("abort")).unwrap();
    send_200(&mut sim, sid, "text/event-stream");
    sim.send_response_body(sid, &full.as_bytes()[..300], false)
        .unwrap();
    sim.client_abort(sid);
    let rec = sim
        .run(chat_stream("abort"), UpstreamResponse::sse(full.clone()))
        .unwrap();
    assert_eq!(
        header(&rec, "x-cache-status"),
        Some("miss"),
        "aborted stream not stored"
    );
    assert_eq!(
        sim.metric("ai_cache_not_stored;reason=incomplete"),
        Some(1),
        "{:?}",
        sim.metrics()
    );

    // A content-filter ending.
    let filtered = openai_sse(&["bad"], "content_filter");
    sim.run(chat_stream("filtered"), UpstreamResponse::sse(filtered))
        .unwrap();
    cached(
        &mut sim,
        chat_stream("filtered"),
        UpstreamResponse::sse(full.clone()),
        "miss",
    );
    assert_eq!(sim.metric("ai_cache_not_stored;reason=filtered"), Some(1));

    // A stream that ends without a finish reason or [DONE] (cut off upstream).
    let cut = &full[..full.find("\"finish_reason\":\"stop\"").unwrap() - 60];
    let cut = &cut[..cut.rfind("\n\n").unwrap() + 2];
    sim.run(chat_stream("cut"), UpstreamResponse::sse(cut.to_string()))
        .unwrap();
    cached(
        &mut sim,
        chat_stream("cut"),
        UpstreamResponse::sse(full.clone()),
        "miss",
    );

    // An error status.
    sim.run(
        chat("err"),
        UpstreamResponse::json(500, r#"{"error":{"message":"boom"}}"#),
    )
    .unwrap();
    cached(&mut sim, chat("err"), answer("ok"), "miss");

    // An answer over max_entry_bytes.
    let mut small = sim_with(1, r#"{"max_entry_bytes":64}"#);
    small
        .run(chat_stream("big"), UpstreamResponse::sse(full.clone()))
        .unwrap();
    cached(
        &mut small,
        chat_stream("big"),
        UpstreamResponse::sse(full),
        "miss",
    );
    // Both answers were too large to keep.
    assert_eq!(
        small.metric("ai_cache_not_stored;reason=too_large"),
        Some(2)
    );
}

#[test]
fn workers_share_the_local_cache_and_memory_stays_bounded() {
    let mut sim = sim_with(2, r#"{"max_entries":8}"#);
    sim.run(chat("shared").worker(0), answer("from worker 0"))
        .unwrap();
    let hit = cached(&mut sim, chat("shared").worker(1), answer("WRONG"), "hit");
    assert_eq!(hit.worker, 1);
    assert!(hit.response.body_str().contains("from worker 0"));
    for i in 0..100 {
        sim.run(chat(&format!("q{i}")).worker(i % 2), answer("x"))
            .unwrap();
    }
    let entries = sim
        .shared_keys("")
        .iter()
        .filter(|k| k.starts_with("ai-cache|default|e|"))
        .count();
    assert!(entries <= 8, "slots bound the store: {entries}");
    let hit = sim.run(chat("q99"), answer("WRONG")).unwrap();
    assert_eq!(
        header(&hit, "x-cache-status"),
        Some("hit"),
        "newest entry kept"
    );
}

#[test]
fn scope_by_consumer_separates_caches() {
    let mut sim = sim_with(1, r#"{"scope":["consumer"]}"#);
    sim.run(
        chat("q").header("x-mse-consumer", "alice"),
        answer("for alice"),
    )
    .unwrap();
    cached(
        &mut sim,
        chat("q").header("x-mse-consumer", "bob"),
        answer("for bob"),
        "miss",
    );
    let alice = cached(
        &mut sim,
        chat("q").header("x-mse-consumer", "alice"),
        answer("WRONG"),
        "hit",
    );
    assert!(alice.response.body_str().contains("for alice"));
}

#[test]
fn scope_by_route_and_last_user_key() {
    let mut sim = sim_with(1, r#"{"scope":["route"],"key_messages":"last_user"}"#);
    sim.run(chat("q").route("r1"), answer("for r1")).unwrap();
    cached(&mut sim, chat("q").route("r2"), answer("for r2"), "miss");
    // Only the last user question keys the cache: a system prompt does not change the key.
    let with_system = Request::post(
        "/v1/chat/completions",
        r#"{"model":"gpt-4o","temperature":0,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"q"}]}"#,
    )
    .route("r1");
    let hit = cached(&mut sim, with_system, answer("WRONG"), "hit");
    assert!(hit.response.body_str().contains("for r1"));
}

#[test]
fn anthropic_json_hit_and_other_paths_untouched() {
    let mut sim = sim_with(1, "{}");
    let body = r#"{"model":"claude-3-5-haiku-latest","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}"#;
    let msg = r#"{"id":"m1","type":"message","role":"assistant","model":"claude-3-5-haiku-latest","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","usage":{"input_tokens":6,"output_tokens":3}}"#;
    sim.run(
        Request::post("/v1/messages", body),
        UpstreamResponse::json(200, msg),
    )
    .unwrap();
    let hit = cached(
        &mut sim,
        Request::post("/v1/messages", body),
        UpstreamResponse::json(200, "{}"),
        "hit",
    );
    assert_eq!(hit.response.body_str(), msg);
    // The same body on the OpenAI path is another key (another protocol).
    cached(
        &mut sim,
        Request::post("/v1/chat/completions", body),
        answer("x"),
        "miss",
    );
    // Paths the plugin does not cache pass through without cache headers.
    let rec = sim
        .run(
            Request::post("/v1/embeddings", r#"{"input":"x"}"#),
            answer("x"),
        )
        .unwrap();
    assert_eq!(header(&rec, "x-cache-status"), None);
    assert!(reached_upstream(&rec));
}

fn semantic_sim(threshold: f32, embeddings: Cluster) -> Sim {
    let mut sim = sim_with(
        1,
        &format!(
            r#"{{"semantic":{{"cluster":"embeddings","model":"text-embedding-3-small","threshold":{threshold},"api_key":"sk-embed"}}}}"#
        ),
    );
    sim.add_cluster("embeddings", embeddings);
    sim
}

#[test]
fn semantic_hits_and_misses_around_the_threshold() {
    let mock = mock_llm::spawn(MockOptions::default()).unwrap();
    let stored = "How do I reset my password?";
    let near = "How can I reset the password for my account?";
    let far = "Best pizza toppings in Naples";
    let s = {
        let (a, b) = (embed(stored, 256), embed(near, 256));
        let dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        dot
    };
    assert!(s > 0.2 && s < 0.98, "similarity {s}");

    // Threshold just below the similarity: a semantic hit.
    let mut sim = semantic_sim(s - 0.02, Cluster::Addr(mock.addr));
    cached(
        &mut sim,
        chat(stored),
        answer("Use the reset link."),
        "miss",
    );
    let hit = cached(&mut sim, chat(near), answer("WRONG"), "hit");
    assert!(!reached_upstream(&hit));
    assert!(hit.response.body_str().contains("Use the reset link."));
    let sim_score: f32 = header(&hit, "x-cache-similarity").unwrap().parse().unwrap();
    assert!((sim_score - s).abs() < 0.01, "{sim_score} vs {s}");
    assert_eq!(sim.metric("ai_cache_hits;kind=semantic"), Some(1));
    let far_rec = cached(&mut sim, chat(far), answer("Margherita."), "miss");
    assert!(reached_upstream(&far_rec));
    // The embeddings call carried the model, the question and the key.
    let calls: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.api == "openai.embeddings")
        .collect();
    assert_eq!(calls.len(), 3);
    let body: Value = serde_json::from_slice(&calls[1].body).unwrap();
    assert_eq!(body["model"], "text-embedding-3-small");
    assert_eq!(body["input"], near);
    assert_eq!(
        calls[0].auth.first().map(|a| a.key.as_str()),
        Some("sk-embed")
    );

    // Threshold just above: the near question misses.
    let mut sim = semantic_sim(s + 0.02, Cluster::Addr(mock.addr));
    sim.run(chat(stored), answer("Use the reset link."))
        .unwrap();
    let rec = cached(&mut sim, chat(near), answer("Fresh answer."), "miss");
    assert!(rec.response.body_str().contains("Fresh answer."));
    // The same wording (identical embedding) still hits semantically.
    cached(
        &mut sim,
        chat("how do i reset my password"),
        answer("WRONG"),
        "hit",
    );
}

/// `semantic.index: qdrant`: vectors go to a Qdrant collection over its REST API (the test
/// plays Qdrant on a manual cluster), embeddings come from the real mock LLM.
#[test]
fn semantic_index_in_qdrant() {
    let mock = mock_llm::spawn(MockOptions::default()).unwrap();
    let mut sim = sim_with(
        1,
        r#"{"semantic":{"cluster":"embeddings","model":"text-embedding-3-small","threshold":0.5,
            "index":{"type":"qdrant","cluster":"qdrant","authority":"qdrant.local","collection":"answers","api_key":"qd-key","timeout_ms":300}}}"#,
    );
    sim.add_cluster("embeddings", Cluster::Addr(mock.addr));
    sim.add_cluster("qdrant", Cluster::Manual);
    let header_of = |c: &host_sim::PendingHttpCall, name: &str| {
        c.call
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    // A miss: the search finds nothing, the upstream answers, the vector is inserted.
    let sid = sim.begin(chat("How do I reset my password?")).unwrap();
    let calls = sim.pending_http_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let search = &calls[0];
    assert_eq!(search.call.cluster, "qdrant");
    assert_eq!(header_of(search, ":method").as_deref(), Some("POST"));
    assert_eq!(
        header_of(search, ":path").as_deref(),
        Some("/collections/answers/points/search")
    );
    assert_eq!(
        header_of(search, ":authority").as_deref(),
        Some("qdrant.local")
    );
    assert_eq!(header_of(search, "api-key").as_deref(), Some("qd-key"));
    assert_eq!(search.call.timeout_ms, 300);
    let q: Value = serde_json::from_slice(&search.call.body).unwrap();
    let dims = q["vector"].as_array().map_or(0, Vec::len);
    assert!(dims > 0);
    let context = q["filter"]["must"][0]["match"]["value"].clone();
    assert!(sim.upstream_request(sid).is_none_or(|u| !u.complete));
    sim.answer_http(
        search.id,
        host_sim::CallReply::json(200, r#"{"result":[],"status":"ok"}"#),
    )
    .unwrap();
    sim.respond(sid, &answer("Use the reset link.")).unwrap();
    let rec = sim.take_record(sid).unwrap();
    assert_eq!(header(&rec, "x-cache-status"), Some("miss"));
    let calls = sim.pending_http_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let insert = &calls[0];
    assert_eq!(header_of(insert, ":method").as_deref(), Some("PUT"));
    assert_eq!(
        header_of(insert, ":path").as_deref(),
        Some("/collections/answers/points?wait=false")
    );
    let p: Value = serde_json::from_slice(&insert.call.body).unwrap();
    let point = &p["points"][0];
    assert_eq!(point["payload"]["context"], context);
    assert_eq!(point["vector"].as_array().map_or(0, Vec::len), dims);
    let entry = point["payload"]["entry"].as_str().unwrap().to_string();
    let expires = point["payload"]["expires_ms"].as_u64().unwrap();
    sim.answer_http(
        insert.id,
        host_sim::CallReply::json(200, r#"{"result":{"status":"acknowledged"},"status":"ok"}"#),
    )
    .unwrap();

    // A near question: Qdrant returns the point, the answer comes from the exact store.
    let sid = sim
        .begin(chat("How can I reset the password for my account?"))
        .unwrap();
    let calls = sim.pending_http_calls();
    assert_eq!(calls.len(), 1);
    let hit = format!(
        r#"{{"result":[{{"id":"p","score":0.93,"payload":{{"context":{context},"entry":"{entry}","expires_ms":{expires}}}}}],"status":"ok"}}"#
    );
    sim.answer_http(calls[0].id, host_sim::CallReply::json(200, hit))
        .unwrap();
    let rec = sim.take_record(sid).unwrap();
    assert_eq!(header(&rec, "x-cache-status"), Some("hit"));
    assert!(!reached_upstream(&rec));
    assert!(rec.response.body_str().contains("Use the reset link."));
    assert_eq!(header(&rec, "x-cache-similarity"), Some("0.9300"));

    // Qdrant not answering in time: the request goes upstream, counted, never failed.
    let sid = sim.begin(chat("Where is my parcel?")).unwrap();
    assert_eq!(sim.pending_http_calls().len(), 1);
    sim.advance(std::time::Duration::from_millis(400));
    sim.respond(sid, &answer("On its way.")).unwrap();
    let rec = sim.take_record(sid).unwrap();
    assert_eq!(rec.response.status, 200);
    assert!(reached_upstream(&rec));
    assert_eq!(
        sim.metric("ai_cache_vector_failures;op=search;reason=timeout"),
        Some(1)
    );
    assert!(sim.logs().iter().all(|l| !l.message.contains("qd-key")));
}

#[test]
fn failing_embeddings_never_fail_the_request() {
    let port = aigw_test_kit::free_port();
    let mut sim = semantic_sim(0.8, Cluster::Addr(([127, 0, 0, 1], port).into()));
    let rec = sim.run(chat("q"), answer("fine")).unwrap();
    assert_eq!(rec.response.status, 200);
    assert!(reached_upstream(&rec));
    assert_eq!(header(&rec, "x-cache-status"), Some("miss"));
    assert_eq!(
        sim.metric("ai_cache_embedding_failures;reason=unreachable"),
        Some(1)
    );
    // The exact cache still works.
    cached(&mut sim, chat("q"), answer("WRONG"), "hit");

    // A manual cluster answering 500: skipped and counted too.
    let mut sim = semantic_sim(0.8, Cluster::Manual);
    let sid = sim.begin(chat("q2")).unwrap();
    let calls = sim.pending_http_calls();
    assert_eq!(calls.len(), 1);
    assert!(sim.upstream_request(sid).is_none_or(|u| !u.complete));
    sim.answer_http(calls[0].id, host_sim::CallReply::json(500, "{}"))
        .unwrap();
    assert!(sim.upstream_request(sid).is_some_and(|u| u.complete));
    assert_eq!(
        sim.metric("ai_cache_embedding_failures;reason=status"),
        Some(1)
    );
}

#[test]
fn invalid_config_names_the_field() {
    assert_configs_rejected(
        "ai-cache",
        &[
            (r#"{"ttl_seconds":0}"#, "ttl_seconds"),
            (r#"{"max_entries":0}"#, "max_entries"),
            (
                r#"{"semantic":{"cluster":"e","model":"m","threshold":2}}"#,
                "semantic.threshold",
            ),
            (
                r#"{"semantic":{"cluster":"e","model":"m","index":{"type":"qdrant","cluster":"q","collection":"a/b"}}}"#,
                "semantic.index.collection",
            ),
        ],
    );
}

// ---- Redis store (module built with `--features higress`) ---------------------------------
//
// Needs `dist/higress/ai-cache.wasm` (`scripts/build-wasm.sh` builds it).

const REDIS_CLUSTER: &str = "outbound|6379||redis.static";

fn replica(redis: std::net::SocketAddr, extra: &str) -> Sim {
    let mut sim = Sim::new(SimOptions {
        workers: 2,
        ..Default::default()
    });
    sim.add_redis(REDIS_CLUSTER, redis);
    sim.add_plugin(spec("ai-cache-higress").config_json(format!(
        r#"{{"store":"redis","ttl_seconds":120,
            "redis":{{"service_name":"redis.static","service_port":6379,"timeout_ms":500}}{extra}}}"#
    )))
    .expect("plugin loads");
    sim
}

/// Sends one command to Redis and returns the raw reply.
fn redis_cmd(addr: std::net::SocketAddr, args: &[&str]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut q = format!("*{}\r\n", args.len());
    for a in args {
        q.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(q.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn redis_store_is_shared_by_replicas_streams_included() {
    let redis = aigw_test_kit::RedisServer::start();
    let mut a = replica(redis.addr, "");
    let mut b = replica(redis.addr, "");
    let miss = a.run(chat("shared q"), answer("from replica a")).unwrap();
    assert_eq!(header(&miss, "x-cache-status"), Some("miss"));
    let key = header(&miss, "x-cache-key").unwrap().to_string();
    // The entry is in Redis with the configured TTL.
    let ttl = redis_cmd(redis.addr, &["PTTL", &format!("ai-cache:default:e:{key}")]);
    let ms: i64 = ttl.trim().trim_start_matches(':').parse().unwrap();
    assert!(ms > 100_000 && ms <= 120_000, "{ttl}");

    let hit = b.run(chat("shared q").worker(1), answer("WRONG")).unwrap();
    assert_eq!(header(&hit, "x-cache-status"), Some("hit"));
    assert!(!reached_upstream(&hit));
    assert_eq!(hit.response.body, miss.response.body);
    let usage: Value = serde_json::from_slice(&hit.filter_state["aigw.usage"]).unwrap();
    assert_eq!(usage["cached_input"], 11);

    // A stream stored by one replica is replayed by the other, event by event.
    let original = openai_sse(WORDS, "stop");
    b.run(
        chat_stream("stream q"),
        UpstreamResponse::sse(original.clone()).chunked(41),
    )
    .unwrap();
    let hit = a
        .run(chat_stream("stream q"), UpstreamResponse::sse("x"))
        .unwrap();
    assert_eq!(header(&hit, "x-cache-status"), Some("hit"));
    let got = content_deltas(&hit.response.body);
    assert_eq!(got.concat(), content_deltas(original.as_bytes()).concat());
    // 80 characters at the default 24 per event.
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(
        sse_data(&hit.response.body).last().map(String::as_str),
        Some("[DONE]")
    );

    // Bypass: nothing read, nothing written.
    let rec = a
        .run(
            chat("other").header("cache-control", "no-store"),
            answer("x"),
        )
        .unwrap();
    assert_eq!(header(&rec, "x-cache-status"), Some("bypass"));
    let rec = b.run(chat("other"), answer("y")).unwrap();
    assert_eq!(header(&rec, "x-cache-status"), Some("miss"));
}

#[test]
fn redis_semantic_hit_across_replicas_and_redis_down_never_fails() {
    let mut redis = aigw_test_kit::RedisServer::start();
    let mock = mock_llm::spawn(MockOptions::default()).unwrap();
    let extra = r#","semantic":{"cluster":"embeddings","model":"e","threshold":0.5}"#;
    let mut a = replica(redis.addr, extra);
    a.add_cluster("embeddings", Cluster::Addr(mock.addr));
    let mut b = replica(redis.addr, extra);
    b.add_cluster("embeddings", Cluster::Addr(mock.addr));
    a.run(
        chat("How do I reset my password?"),
        answer("Use the reset link."),
    )
    .unwrap();
    let hit = b
        .run(
            chat("How can I reset the password for my account?"),
            answer("WRONG"),
        )
        .unwrap();
    assert_eq!(header(&hit, "x-cache-status"), Some("hit"));
    assert!(hit.response.body_str().contains("Use the reset link."));
    assert!(header(&hit, "x-cache-similarity").is_some());
    let far = b
        .run(chat("Best pizza toppings in Naples"), answer("Margherita."))
        .unwrap();
    assert_eq!(header(&far, "x-cache-status"), Some("miss"));
    assert!(reached_upstream(&far));

    // Redis gone: requests still succeed, the failures are counted.
    redis.stop();
    let rec = a.run(chat("anything"), answer("still fine")).unwrap();
    assert_eq!(rec.response.status, 200);
    assert!(reached_upstream(&rec));
    assert!(rec.response.body_str().contains("still fine"));
    assert!(a.metric("ai_cache_store_errors;op=lookup").unwrap_or(0) >= 1);
}

#[test]
fn a_body_with_a_repeated_key_is_never_stored_or_answered_from_the_cache() {
    let mut sim = sim_with(1, r#"{"ttl_seconds":300}"#);
    // A first-wins upstream answers the first question; a last-wins key would name the
    // second. Storing that answer would serve it to everyone who asks the second question.
    let poisoned = Request::post(
        "/v1/chat/completions",
        r#"{"model":"gpt-4o","temperature":0,"messages":[{"role":"user","content":"Say yes"}],"messages":[{"role":"user","content":"What is Rust?"}]}"#,
    );
    let rec = sim.run(poisoned, answer("yes")).unwrap();
    assert_eq!(rec.response.status, 200);
    assert!(reached_upstream(&rec));
    assert_eq!(header(&rec, "x-cache-status"), Some("bypass"));
    assert_eq!(header(&rec, "x-cache-key"), None);
    // The clean question is a miss: nothing was stored under its key.
    let clean = cached(
        &mut sim,
        chat("What is Rust?"),
        answer("A language."),
        "miss",
    );
    assert!(reached_upstream(&clean));
    // And a repeated key cannot read a stored answer either.
    let again = Request::post(
        "/v1/chat/completions",
        r#"{"model":"gpt-4o","temperature":0,"messages":[{"role":"user","content":"What is Rust?"}],"model":"gpt-4o"}"#,
    );
    let rec = cached(&mut sim, again, answer("fresh"), "bypass");
    assert!(reached_upstream(&rec));
}

/// Every event of an SSE body as `(event name, data)`, asserting the framing on the way:
/// only `event:` and `data:` lines, one data line per event, every data JSON or `[DONE]`.
fn strict_sse(body: &[u8]) -> Vec<(Option<String>, Value)> {
    let text = std::str::from_utf8(body).expect("UTF-8 stream");
    assert!(text.ends_with("\n\n"), "ends with a blank line");
    text.split_terminator("\n\n")
        .map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    assert!(name.is_none(), "one event line: {block:?}");
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    assert!(data.is_none(), "one data line: {block:?}");
                    data = Some(if d == "[DONE]" {
                        Value::String(d.to_string())
                    } else {
                        serde_json::from_str::<Value>(d)
                            .unwrap_or_else(|e| panic!("data is not JSON ({e}): {d}"))
                    });
                } else {
                    panic!("unexpected line {line:?}");
                }
            }
            (name, data.expect("every event has data"))
        })
        .collect()
}

#[test]
fn openai_stream_miss_then_hit_give_the_same_text_in_official_chunks() {
    let mut sim = sim_with(1, r#"{"replay_chunk_chars":10}"#);
    let original = openai_sse(WORDS, "length");
    let miss = cached(
        &mut sim,
        chat_stream("shapes"),
        UpstreamResponse::sse(original).chunked(29),
        "miss",
    );
    let text = content_deltas(&miss.response.body).concat();
    assert_eq!(text, WORDS.concat());

    for with_usage in [false, true] {
        let req = if with_usage {
            chat_stream_with_usage("shapes")
        } else {
            chat_stream("shapes")
        };
        let hit = cached(&mut sim, req, UpstreamResponse::sse("x"), "hit");
        assert!(!reached_upstream(&hit));
        let events = strict_sse(&hit.response.body);
        assert!(events.iter().all(|(name, _)| name.is_none()), "unnamed");
        let (last, chunks) = events.split_last().unwrap();
        assert_eq!(last.1, "[DONE]");
        let chunks: Vec<&Value> = chunks.iter().map(|(_, v)| v).collect();
        // role chunk, content chunks, finish chunk, then the usage chunk when asked for.
        let usage_chunks = usize::from(with_usage);
        let (head, usage) = chunks.split_at(chunks.len() - usage_chunks);
        let (finish, body) = head.split_last().unwrap();
        let (role, content) = body.split_first().unwrap();
        assert_eq!(
            role["choices"][0]["delta"],
            serde_json::json!({"role": "assistant", "content": ""})
        );
        assert!(content.len() >= 8, "several content chunks");
        let mut got = String::new();
        for c in content {
            let delta = c["choices"][0]["delta"].as_object().unwrap();
            assert_eq!(delta.len(), 1, "content only: {delta:?}");
            let piece = delta["content"].as_str().unwrap();
            assert!(!piece.is_empty() && piece.chars().count() <= 10);
            assert!(c["choices"][0]["finish_reason"].is_null());
            got.push_str(piece);
        }
        assert_eq!(got, text, "the same text as the miss");
        assert_eq!(finish["choices"][0]["finish_reason"], "length");
        assert_eq!(finish["choices"][0]["delta"], serde_json::json!({}));
        for c in &chunks {
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["id"], chunks[0]["id"]);
            assert_eq!(c["model"], "gpt-4o");
            assert!(c["created"].is_u64());
        }
        if let Some(u) = usage.first() {
            assert_eq!(u["choices"], serde_json::json!([]));
            assert_eq!(u["usage"]["prompt_tokens"], 9);
            assert_eq!(u["usage"]["completion_tokens"], 7);
            assert_eq!(u["usage"]["total_tokens"], 16);
            assert_eq!(u["usage"]["prompt_tokens_details"]["cached_tokens"], 9);
        } else {
            assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        }
    }
}

#[test]
fn anthropic_stream_miss_then_hit_give_the_same_text_in_official_events() {
    let mut sim = sim_with(1, r#"{"replay_chunk_chars":7}"#);
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":20,"stream":true,"messages":[{"role":"user","content":"shapes"}]}"#;
    let usage =
        serde_json::json!({"input_tokens": 3, "cache_read_input_tokens": 5, "output_tokens": 1});
    let sse = anthropic_stream("claude-sonnet-4-5", WORDS, usage, "max_tokens", 20);
    let miss = cached(
        &mut sim,
        Request::post("/v1/messages", body),
        UpstreamResponse::sse(sse).chunked(33),
        "miss",
    );
    let text_of = |events: &[(Option<String>, Value)]| -> String {
        events
            .iter()
            .filter(|(_, v)| v["type"] == "content_block_delta")
            .map(|(_, v)| v["delta"]["text"].as_str().unwrap().to_string())
            .collect()
    };
    let miss_text = text_of(&strict_sse(&miss.response.body));
    assert_eq!(miss_text, WORDS.concat());

    let hit = cached(
        &mut sim,
        Request::post("/v1/messages", body),
        UpstreamResponse::sse("x"),
        "hit",
    );
    assert!(!reached_upstream(&hit));
    let events = strict_sse(&hit.response.body);
    // Every event is named, and the name is the data's type.
    for (name, v) in &events {
        assert_eq!(name.as_deref(), v["type"].as_str(), "{v}");
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    let deltas = names
        .iter()
        .filter(|n| **n == "content_block_delta")
        .count();
    assert!(deltas >= 10, "several deltas: {deltas}");
    let mut want = vec!["message_start", "content_block_start"];
    want.extend(std::iter::repeat_n("content_block_delta", deltas));
    want.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, want);
    assert_eq!(text_of(&events), miss_text, "the same text as the miss");
    for (_, v) in events
        .iter()
        .filter(|(_, v)| v["type"] == "content_block_delta")
    {
        assert_eq!(v["index"], 0);
        assert_eq!(v["delta"]["type"], "text_delta");
        assert!(v["delta"]["text"].as_str().unwrap().chars().count() <= 7);
    }
    let msg = &events[0].1["message"];
    assert!(msg["id"].as_str().unwrap().starts_with("msg_"), "{msg}");
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["role"], "assistant");
    assert_eq!(msg["model"], "claude-sonnet-4-5");
    assert_eq!(msg["content"], serde_json::json!([]));
    // 3 uncached + 5 cache-read prompt tokens upstream: all 8 read from the cache now.
    assert_eq!(msg["usage"]["cache_read_input_tokens"], 8);
    assert_eq!(msg["usage"]["input_tokens"], 0);
    assert_eq!(
        events[1].1["content_block"],
        serde_json::json!({"type": "text", "text": ""})
    );
    let md = &events[events.len() - 2].1;
    assert_eq!(md["delta"]["stop_reason"], "max_tokens");
    assert_eq!(md["usage"]["output_tokens"], 20);
    let usage: Value = serde_json::from_slice(&hit.filter_state["aigw.usage"]).unwrap();
    assert_eq!(
        (usage["input"].as_u64(), usage["output"].as_u64()),
        (Some(8), Some(20))
    );
}

/// An OpenAI Responses API stream of `words` (reasoning item first, then one message).
fn responses_sse(words: &[&str]) -> String {
    let mut seq = 0;
    let mut s = String::new();
    let mut event = |s: &mut String, name: &str, body: String| {
        s.push_str(&format!(
            "event: {name}\ndata: {{\"type\":\"{name}\",\"sequence_number\":{seq},{body}}}\n\n"
        ));
        seq += 1;
    };
    let resp = |status: &str, extra: &str| {
        format!(
            r#""response":{{"id":"resp_up1","object":"response","created_at":1,"status":"{status}","model":"gpt-5","output":[]{extra}}}"#
        )
    };
    event(&mut s, "response.created", resp("in_progress", ""));
    event(&mut s, "response.in_progress", resp("in_progress", ""));
    event(
        &mut s,
        "response.output_item.added",
        r#""output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}"#.into(),
    );
    event(
        &mut s,
        "response.output_item.done",
        r#""output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}"#.into(),
    );
    event(&mut s, "response.output_item.added", r#""output_index":1,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}"#.into());
    event(&mut s, "response.content_part.added", r#""item_id":"msg_1","output_index":1,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}"#.into());
    for w in words {
        event(
            &mut s,
            "response.output_text.delta",
            format!(
                r#""item_id":"msg_1","output_index":1,"content_index":0,"delta":"{w}","logprobs":[]"#
            ),
        );
    }
    let all = words.concat();
    event(
        &mut s,
        "response.output_text.done",
        format!(
            r#""item_id":"msg_1","output_index":1,"content_index":0,"text":"{all}","logprobs":[]"#
        ),
    );
    event(
        &mut s,
        "response.content_part.done",
        format!(
            r#""item_id":"msg_1","output_index":1,"content_index":0,"part":{{"type":"output_text","text":"{all}","annotations":[]}}"#
        ),
    );
    event(
        &mut s,
        "response.output_item.done",
        format!(
            r#""output_index":1,"item":{{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{{"type":"output_text","text":"{all}","annotations":[]}}]}}"#
        ),
    );
    event(
        &mut s,
        "response.completed",
        resp(
            "completed",
            r#","usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":0},"output_tokens":30,"output_tokens_details":{"reasoning_tokens":16},"total_tokens":42}"#,
        ),
    );
    s
}

#[test]
fn responses_stream_miss_then_hit_give_the_same_text_in_official_events() {
    let mut sim = sim_with(1, r#"{"replay_chunk_chars":12}"#);
    let body = |stream: bool| {
        format!(
            r#"{{"model":"gpt-5","instructions":"Be brief.","input":[{{"role":"user","content":[{{"type":"input_text","text":"shapes"}}]}}],"stream":{stream}}}"#
        )
    };
    let miss = cached(
        &mut sim,
        Request::post("/v1/responses", body(true)),
        UpstreamResponse::sse(responses_sse(WORDS)).chunked(45),
        "miss",
    );
    assert_eq!(
        sim.metric("ai_cache_stored"),
        Some(1),
        "{:?}",
        sim.metrics()
    );
    let text_of = |events: &[(Option<String>, Value)]| -> String {
        events
            .iter()
            .filter(|(_, v)| v["type"] == "response.output_text.delta")
            .map(|(_, v)| v["delta"].as_str().unwrap().to_string())
            .collect()
    };
    let miss_text = text_of(&strict_sse(&miss.response.body));
    assert_eq!(miss_text, WORDS.concat());

    let hit = cached(
        &mut sim,
        Request::post("/v1/responses", body(true)),
        UpstreamResponse::sse("x"),
        "hit",
    );
    assert!(!reached_upstream(&hit));
    assert_eq!(header(&hit, "content-type"), Some("text/event-stream"));
    let events = strict_sse(&hit.response.body);
    for (i, (name, v)) in events.iter().enumerate() {
        assert_eq!(name.as_deref(), v["type"].as_str(), "{v}");
        assert_eq!(v["sequence_number"], i, "increasing sequence numbers");
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    let deltas = names
        .iter()
        .filter(|n| **n == "response.output_text.delta")
        .count();
    assert!(deltas >= 6, "several deltas: {deltas}");
    assert_eq!(
        names,
        aigw_test_kit::sse::responses_text_event_types(deltas)
    );
    assert_eq!(text_of(&events), miss_text, "the same text as the miss");
    let done = &events[events.len() - 1].1["response"];
    assert!(done["id"].as_str().unwrap().starts_with("resp_"), "{done}");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["model"], "gpt-5");
    assert_eq!(done["output"][0]["type"], "message");
    assert_eq!(done["output"][0]["content"][0]["text"], miss_text.as_str());
    assert_eq!(done["usage"]["input_tokens"], 12);
    assert_eq!(done["usage"]["input_tokens_details"]["cached_tokens"], 12);
    assert_eq!(done["usage"]["output_tokens"], 30);

    // A non-stream request for the same input gets a Responses object built from the stream.
    let json = cached(
        &mut sim,
        Request::post("/v1/responses", body(false)),
        UpstreamResponse::json(200, "{}"),
        "hit",
    );
    assert_eq!(header(&json, "content-type"), Some("application/json"));
    let v: Value = serde_json::from_slice(&json.response.body).unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(v["output"][0]["content"][0]["text"], miss_text.as_str());

    // Other instructions, the same input on the chat path, and a tool call are not hits.
    let other = body(true).replace("Be brief.", "Be long.");
    cached(
        &mut sim,
        Request::post("/v1/responses", other),
        UpstreamResponse::sse(responses_sse(&["x"])),
        "miss",
    );
    cached(
        &mut sim,
        Request::post("/v1/chat/completions", body(true)),
        UpstreamResponse::sse(openai_sse(&["x"], "stop")),
        "miss",
    );
    let tool = responses_sse(&["x"]).replace(
        r#""type":"reasoning""#,
        r#""type":"function_call","call_id":"c1","name":"f","arguments":"{}""#,
    );
    let q = body(true).replace("shapes", "tool");
    sim.run(
        Request::post("/v1/responses", q.clone()),
        UpstreamResponse::sse(tool),
    )
    .unwrap();
    cached(
        &mut sim,
        Request::post("/v1/responses", q),
        UpstreamResponse::sse(responses_sse(&["y"])),
        "miss",
    );
    assert_eq!(sim.metric("ai_cache_not_stored;reason=not_text"), Some(1));
}

#[test]
fn responses_json_miss_then_hit_returns_the_stored_object() {
    let mut sim = sim_with(1, "{}");
    let body = r#"{"model":"gpt-5","input":"What is Rust?"}"#;
    let resp = r#"{"id":"resp_9","object":"response","created_at":1,"status":"completed","model":"gpt-5","output":[{"type":"message","id":"msg_9","role":"assistant","status":"completed","content":[{"type":"output_text","text":"A language.","annotations":[]}]}],"usage":{"input_tokens":5,"output_tokens":3,"total_tokens":8}}"#;
    cached(
        &mut sim,
        Request::post("/v1/responses", body),
        UpstreamResponse::json(200, resp),
        "miss",
    );
    let hit = cached(
        &mut sim,
        Request::post("/v1/responses", body),
        UpstreamResponse::json(200, "{}"),
        "hit",
    );
    assert_eq!(hit.response.body_str(), resp);
    // A stream request for the same input is replayed from the stored object.
    let stream = cached(
        &mut sim,
        Request::post(
            "/v1/responses",
            r#"{"model":"gpt-5","input":"What is Rust?","stream":true}"#,
        ),
        UpstreamResponse::sse("x"),
        "hit",
    );
    let events = strict_sse(&stream.response.body);
    let text: String = events
        .iter()
        .filter(|(n, _)| n.as_deref() == Some("response.output_text.delta"))
        .map(|(_, v)| v["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, "A language.");
    assert_eq!(
        events.last().unwrap().0.as_deref(),
        Some("response.completed")
    );
    let usage: Value = serde_json::from_slice(&stream.filter_state["aigw.usage"]).unwrap();
    assert_eq!(
        (usage["input"].as_u64(), usage["output"].as_u64()),
        (Some(5), Some(3))
    );
}
