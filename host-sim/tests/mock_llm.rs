//! The mock LLM server over real loopback HTTP: every provider shape (streamed and not), the
//! `x-mock-*` controls, AWS event-stream framing checked by an independent decoder, `/metrics`
//! while requests hang or queue, auth recording, and embedding similarity.

use host_sim::mock_llm::{spawn, MockHandle, MockOptions};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client over TcpStream.

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn send(
    mock: &MockHandle,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> TcpStream {
    let mut s = TcpStream::connect(mock.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: mock\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write");
    s
}

fn read_all(mut s: TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits a raw response; `complete` is false when a chunked body lacks its last chunk or a
/// content-length body is short.
fn parse(raw: &[u8]) -> (Resp, bool) {
    let end = find(raw, b"\r\n\r\n").expect("no response head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let mut body = Vec::new();
    let mut complete = true;
    if chunked {
        let mut p = rest;
        complete = false;
        while let Some(le) = find(p, b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&p[..le]).trim(), 16)
                .expect("chunk size");
            if size == 0 {
                complete = true;
                break;
            }
            if p.len() < le + 2 + size + 2 {
                body.extend_from_slice(&p[le + 2..p.len().min(le + 2 + size)]);
                break;
            }
            body.extend_from_slice(&p[le + 2..le + 2 + size]);
            p = &p[le + 2 + size + 2..];
        }
    } else {
        body.extend_from_slice(rest);
        if let Some((_, n)) = headers.iter().find(|(k, _)| k == "content-length") {
            complete = n.parse::<usize>().unwrap() == body.len();
        }
    }
    (
        Resp {
            status,
            headers,
            body,
        },
        complete,
    )
}

fn call(
    mock: &MockHandle,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Resp {
    let b = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let raw = read_all(send(mock, method, path, headers, &b)).expect("read");
    let (r, complete) = parse(&raw);
    assert!(
        complete,
        "incomplete response: {}",
        String::from_utf8_lossy(&raw)
    );
    r
}

fn post(mock: &MockHandle, path: &str, headers: &[(&str, &str)], body: Value) -> Resp {
    call(mock, "POST", path, headers, &body)
}

fn get(mock: &MockHandle, path: &str) -> Resp {
    call(mock, "GET", path, &[], &Value::Null)
}

fn mock() -> MockHandle {
    spawn(MockOptions::default()).expect("spawn mock")
}

/// `data:` payloads of an SSE body (events split on blank lines, `\n` or `\r\n`).
fn sse_data(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    text.split("\n\n")
        .filter_map(|ev| {
            ev.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(String::from)
        })
        .collect()
}

/// (event name, data JSON) pairs of an SSE body with `event:` lines.
fn sse_events(body: &[u8]) -> Vec<(String, Value)> {
    let text = String::from_utf8_lossy(body).into_owned();
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|ev| {
            let name = ev
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or("")
                .to_string();
            let data = ev
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("data line");
            (name, serde_json::from_str(data).expect("event JSON"))
        })
        .collect()
}

fn chat(text: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "be calm"}, {"role": "user", "content": text}]})
}

fn weather_tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather for a place",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "days": {"type": "integer"}}, "required": ["location"]}}}])
}

/// Polls the server's own load until `f` holds (not a timing assertion: it only waits).
fn wait_load(mock: &MockHandle, f: impl Fn(host_sim::mock_llm::Load) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f(mock.load()) {
        assert!(
            Instant::now() < deadline,
            "load never reached: {:?}",
            mock.load()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn metric(text: &str, name: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// OpenAI

#[test]
fn openai_chat_non_stream_echoes_with_usage() {
    let m = mock();
    let r = post(
        &m,
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-test-1")],
        chat("one two six"),
    );
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "Echo: one two six");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // "be calm" = 2 tokens, "one two six" = 3; "Echo: one two six" = Echo|:| one| two| six.
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10})
    );

    let log = m.requests();
    assert_eq!(log.len(), 1);
    let l = &log[0];
    assert_eq!(
        (l.method.as_str(), l.path.as_str(), l.api),
        ("POST", "/v1/chat/completions", "openai.chat")
    );
    assert_eq!(l.header("Authorization"), Some("Bearer sk-test-1"));
    assert_eq!(l.auth.len(), 1);
    assert_eq!(
        (
            l.auth[0].header.as_str(),
            l.auth[0].scheme.as_str(),
            l.auth[0].key.as_str()
        ),
        ("authorization", "Bearer", "sk-test-1")
    );
    assert_eq!(l.json().unwrap()["messages"][1]["content"], "one two six");
    assert_eq!(l.status, Some(200));
    assert_eq!((l.prompt_tokens, l.completion_tokens), (5, 5));
    assert_eq!(l.model.as_deref(), Some("gpt-4o-mini"));
}

#[test]
fn openai_chat_stream_with_include_usage_and_chunk_size() {
    let m = mock();
    let mut body = chat("one two six");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = post(
        &m,
        "/v1/chat/completions",
        &[("x-mock-chunk-size", "2")],
        body,
    );
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let data = sse_data(&r.body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str())
        .filter(|s| !s.is_empty())
        .collect();
    // 5 tokens in chunks of 2: 2 + 2 + 1.
    assert_eq!(content, vec!["Echo:", " one two", " six"]);
    let fin = &chunks[chunks.len() - 2];
    assert_eq!(fin["choices"][0]["finish_reason"], "stop");
    assert!(fin["usage"].is_null());
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10})
    );
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"]));
}

#[test]
fn openai_stream_without_include_usage_has_no_usage_chunk() {
    let m = mock();
    let mut body = chat("hi");
    body["stream"] = json!(true);
    let r = post(&m, "/v1/chat/completions", &[], body);
    let data = sse_data(&r.body);
    assert!(data.iter().all(|d| !d.contains("\"usage\"")), "{data:?}");
    assert_eq!(data.last().unwrap(), "[DONE]");
}

#[test]
fn openai_tool_call_non_stream_and_stream() {
    let m = mock();
    let mut body = chat("What's the weather in Paris?");
    body["tools"] = weather_tools();
    let v = post(&m, "/v1/chat/completions", &[], body.clone()).json();
    let msg = &v["choices"][0]["message"];
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert!(msg["content"].is_null());
    let call = &msg["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "Paris", "days": 1}));
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    body["stream"] = json!(true);
    let r = post(
        &m,
        "/v1/chat/completions",
        &[("x-mock-chunk-size", "3")],
        body.clone(),
    );
    let chunks: Vec<Value> = sse_data(&r.body)
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&streamed).unwrap(), args);
    assert!(
        chunks.len() > 3,
        "arguments should be split over several chunks"
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    // Exact arguments by header; after a tool result the model answers with text.
    body["stream"] = json!(false);
    let v = post(
        &m,
        "/v1/chat/completions",
        &[("x-mock-tool-args", r#"{"location":"Oslo"}"#)],
        body.clone(),
    )
    .json();
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        r#"{"location":"Oslo"}"#
    );
    let msgs = body["messages"].as_array_mut().unwrap();
    msgs.push(json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}));
    msgs.push(json!({"role": "tool", "tool_call_id": "call_1", "content": "sunny"}));
    let v = post(&m, "/v1/chat/completions", &[], body).json();
    assert_eq!(v["choices"][0]["message"]["content"], "Echo: sunny");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[test]
fn openai_max_tokens_cuts_output() {
    let m = mock();
    let mut body = chat("one two six");
    body["max_tokens"] = json!(2);
    let v = post(&m, "/v1/chat/completions", &[], body.clone()).json();
    assert_eq!(v["choices"][0]["message"]["content"], "Echo:");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 2);
    let v = post(
        &m,
        "/v1/chat/completions",
        &[("x-mock-max-tokens-honoured", "false")],
        body,
    )
    .json();
    assert_eq!(v["choices"][0]["message"]["content"], "Echo: one two six");
}

#[test]
fn openai_completions_models_and_azure_paths() {
    let m = mock();
    let v = post(
        &m,
        "/v1/completions",
        &[],
        json!({"model": "davinci", "prompt": "say this"}),
    )
    .json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "Echo: say this");
    assert_eq!(v["usage"]["prompt_tokens"], 2);
    let r = post(
        &m,
        "/v1/completions",
        &[],
        json!({"model": "davinci", "prompt": "say this", "stream": true, "stream_options": {"include_usage": true}}),
    );
    let data = sse_data(&r.body);
    let chunks: Vec<Value> = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["text"].as_str())
        .collect();
    assert_eq!(text, "Echo: say this");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 4);

    let v = get(&m, "/v1/models").json();
    assert_eq!(v["object"], "list");
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["id"] == "mock-llm" && d["object"] == "model"));

    // Azure OpenAI deployment URL with api-key auth.
    let r = post(
        &m,
        "/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21",
        &[("api-key", "azure-key")],
        chat("hi"),
    );
    assert_eq!(r.json()["choices"][0]["message"]["content"], "Echo: hi");
    let l = m.requests().pop().unwrap();
    assert_eq!(l.query, "api-version=2024-10-21");
    assert_eq!(
        (l.auth[0].header.as_str(), l.auth[0].key.as_str()),
        ("api-key", "azure-key")
    );
}

// ---------------------------------------------------------------------------------------------
// Embeddings

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn vecs(v: &Value) -> Vec<Vec<f64>> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn embeddings_are_deterministic_and_similarity_preserving() {
    let m = mock();
    let texts = json!([
        "How do I reset my password?",
        "how can I reset my password",
        "The best pizza toppings in Naples",
        "How do I reset my password?"
    ]);
    let v = post(
        &m,
        "/v1/embeddings",
        &[],
        json!({"model": "text-embedding-3-small", "input": texts}),
    )
    .json();
    assert_eq!(v["object"], "list");
    let e = vecs(&v);
    assert_eq!(e.len(), 4);
    assert_eq!(e[0].len(), 256);
    assert_eq!(v["data"][2]["index"], 2);
    let norm: f64 = e[0].iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    assert_eq!(e[0], e[3]);
    let similar = cosine(&e[0], &e[1]);
    let unrelated = cosine(&e[0], &e[2]);
    assert!(similar > 0.5, "similar {similar}");
    assert!(
        similar > unrelated + 0.3,
        "similar {similar} unrelated {unrelated}"
    );
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    // Same text in a later request gives the same vector; `dimensions` is honoured.
    let again = vecs(
        &post(
            &m,
            "/v1/embeddings",
            &[],
            json!({"model": "x", "input": "How do I reset my password?"}),
        )
        .json(),
    );
    assert_eq!(again[0], e[0]);
    let small = vecs(
        &post(
            &m,
            "/v1/embeddings",
            &[],
            json!({"model": "x", "input": "abc", "dimensions": 64}),
        )
        .json(),
    );
    assert_eq!(small[0].len(), 64);
    // base64: 64 f32 = 256 bytes = 344 base64 characters.
    let b = post(
        &m,
        "/v1/embeddings",
        &[],
        json!({"model": "x", "input": "abc", "dimensions": 64, "encoding_format": "base64"}),
    )
    .json();
    assert_eq!(b["data"][0]["embedding"].as_str().unwrap().len(), 344);

    // Gemini embedContent uses the same vectors.
    let g = post(
        &m,
        "/v1beta/models/text-embedding-004:embedContent",
        &[],
        json!({"content": {"parts": [{"text": "How do I reset my password?"}]}}),
    )
    .json();
    let gv: Vec<f64> = g["embedding"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(gv, e[0]);
}

#[test]
fn moderations_flag_configured_words_in_openai_shape() {
    let m = mock();
    let v = post(
        &m,
        "/v1/moderations",
        &[("authorization", "Bearer sk-mod")],
        json!({"model": "omni-moderation-latest", "input": ["I will KILL the process", "hello"]}),
    )
    .json();
    assert_eq!(v["model"], "omni-moderation-latest");
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["flagged"], true);
    assert_eq!(r[0]["categories"]["violence"], true);
    assert_eq!(r[0]["categories"]["hate"], false);
    assert!(r[0]["category_scores"]["violence"].as_f64().unwrap() > 0.9);
    assert_eq!(r[1]["flagged"], false);
    assert_eq!(r[1]["categories"].as_object().unwrap().len(), 13);
    let logged = m.requests();
    assert_eq!(logged[0].api, "openai.moderations");
    assert_eq!(
        logged[0].auth.first().map(|a| a.key.as_str()),
        Some("sk-mod")
    );

    // Configurable words; a missing input is a 400.
    let m = spawn(MockOptions {
        moderation_flag_words: vec!["pineapple".into()],
        ..Default::default()
    })
    .unwrap();
    let v = post(
        &m,
        "/v1/moderations",
        &[],
        json!({"input": "kill pineapple"}),
    )
    .json();
    assert_eq!(v["results"][0]["flagged"], true);
    let v = post(&m, "/v1/moderations", &[], json!({"input": "kill it"})).json();
    assert_eq!(v["results"][0]["flagged"], false);
    let bad = post(&m, "/v1/moderations", &[], json!({"model": "x"}));
    assert_eq!(bad.status, 400);
}

// ---------------------------------------------------------------------------------------------
// Anthropic

fn claude(text: &str) -> Value {
    json!({"model": "claude-3-5-haiku-latest", "max_tokens": 100, "system": "be calm", "messages": [{"role": "user", "content": text}]})
}

#[test]
fn anthropic_messages_non_stream() {
    let m = mock();
    let r = post(
        &m,
        "/v1/messages",
        &[
            ("x-api-key", "sk-ant-1"),
            ("anthropic-version", "2023-06-01"),
        ],
        claude("one two six"),
    );
    assert_eq!(r.status, 200);
    assert!(r.header("request-id").is_some());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Echo: one two six"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["input_tokens"], 5);
    assert_eq!(v["usage"]["output_tokens"], 5);
    let l = m.requests().pop().unwrap();
    assert_eq!(
        (l.auth[0].header.as_str(), l.auth[0].key.as_str()),
        ("x-api-key", "sk-ant-1")
    );
    assert_eq!(l.header("anthropic-version"), Some("2023-06-01"));
}

#[test]
fn anthropic_messages_stream_events_and_usage() {
    let m = mock();
    let mut body = claude("one two six");
    body["stream"] = json!(true);
    let r = post(&m, "/v1/messages", &[("x-mock-chunk-size", "2")], body);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let evs = sse_events(&r.body);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for (n, d) in &evs {
        assert_eq!(d["type"], n.as_str(), "event name matches data type");
    }
    assert_eq!(evs[0].1["message"]["usage"]["input_tokens"], 5);
    assert_eq!(
        evs[1].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = evs
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Echo: one two six");
    assert_eq!(evs[7].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(evs[7].1["usage"]["output_tokens"], 5);
}

#[test]
fn anthropic_tool_use_stream_and_errors() {
    let m = mock();
    let mut body = claude("weather in Rome please");
    body["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}]);
    let v = post(&m, "/v1/messages", &[], body.clone()).json();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0]["type"], "tool_use");
    assert_eq!(v["content"][0]["name"], "get_weather");
    assert_eq!(v["content"][0]["input"], json!({"location": "Rome please"}));
    assert!(v["content"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("toolu_"));

    body["stream"] = json!(true);
    let evs = sse_events(&post(&m, "/v1/messages", &[], body.clone()).body);
    assert_eq!(evs[1].1["content_block"]["type"], "tool_use");
    assert_eq!(evs[1].1["content_block"]["input"], json!({}));
    let partial: String = evs
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        json!({"location": "Rome please"})
    );
    let delta = evs.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        delta.1["usage"]["output_tokens"].as_u64().unwrap(),
        v["usage"]["output_tokens"].as_u64().unwrap()
    );

    // max_tokens is required, and cuts output.
    let mut nomax = claude("hi");
    nomax.as_object_mut().unwrap().remove("max_tokens");
    let r = post(&m, "/v1/messages", &[], nomax);
    assert_eq!(r.status, 400);
    let e = r.json();
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_tokens"));
    let mut short = claude("one two six");
    short["max_tokens"] = json!(3);
    let v = post(&m, "/v1/messages", &[], short).json();
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"]["output_tokens"], 3);
    assert_eq!(v["content"][0]["text"], "Echo: one");

    let c = post(&m, "/v1/messages/count_tokens", &[], claude("one two six")).json();
    assert_eq!(c, json!({"input_tokens": 5}));
}

// ---------------------------------------------------------------------------------------------
// Gemini

fn gem(text: &str) -> Value {
    json!({"systemInstruction": {"parts": [{"text": "be calm"}]}, "contents": [{"role": "user", "parts": [{"text": text}]}]})
}

#[test]
fn gemini_generate_and_sse_stream() {
    let m = mock();
    let r = post(
        &m,
        "/v1beta/models/gemini-2.0-flash:generateContent",
        &[("x-goog-api-key", "g-key")],
        gem("one two six"),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["candidates"][0]["content"]["role"], "model");
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "Echo: one two six"
    );
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        v["usageMetadata"],
        json!({"promptTokenCount": 5, "candidatesTokenCount": 5, "totalTokenCount": 10})
    );
    assert_eq!(v["modelVersion"], "gemini-2.0-flash");
    let l = m.requests().pop().unwrap();
    assert_eq!(
        (l.api, l.auth[0].header.as_str(), l.auth[0].key.as_str()),
        ("gemini.generate", "x-goog-api-key", "g-key")
    );

    let r = post(
        &m,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key=q-key",
        &[("x-mock-chunk-size", "2")],
        gem("one two six"),
    );
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(
        find(&r.body, b"\r\n\r\n").is_some(),
        "Gemini separates events with CRLF CRLF"
    );
    let chunks: Vec<Value> = sse_data(&r.body)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks.len(), 3);
    let counts: Vec<u64> = chunks
        .iter()
        .map(|c| c["usageMetadata"]["candidatesTokenCount"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![2, 4, 5], "running totals in every chunk");
    assert!(chunks
        .iter()
        .all(|c| c["usageMetadata"]["promptTokenCount"] == 5));
    assert_eq!(chunks[2]["usageMetadata"]["totalTokenCount"], 10);
    let text: String = chunks
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, "Echo: one two six");
    assert!(chunks[0]["candidates"][0].get("finishReason").is_none());
    assert_eq!(chunks[2]["candidates"][0]["finishReason"], "STOP");
    let l = m.requests().pop().unwrap();
    assert_eq!(
        (l.api, l.auth[0].header.as_str(), l.auth[0].key.as_str()),
        ("gemini.stream", "?key", "q-key")
    );

    // Without alt=sse the stream is a JSON array.
    let r = post(
        &m,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
        &[],
        gem("one two six"),
    );
    let arr = r.json();
    assert_eq!(arr.as_array().unwrap().len(), 5);
    assert_eq!(arr[4]["usageMetadata"]["candidatesTokenCount"], 5);
}

#[test]
fn gemini_function_call_and_max_tokens() {
    let m = mock();
    let mut body = gem("weather in Lima?");
    body["tools"] = json!([{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "OBJECT", "properties": {"location": {"type": "STRING"}}}}]}]);
    let v = post(
        &m,
        "/v1beta/models/gemini-2.0-flash:generateContent",
        &[],
        body.clone(),
    )
    .json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["functionCall"],
        json!({"name": "get_weather", "args": {"location": "Lima"}})
    );
    let r = post(
        &m,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        &[],
        body,
    );
    let chunks = sse_data(&r.body);
    assert_eq!(chunks.len(), 1);
    let c: Value = serde_json::from_str(&chunks[0]).unwrap();
    assert_eq!(
        c["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
        "get_weather"
    );

    let mut short = gem("one two six");
    short["generationConfig"] = json!({"maxOutputTokens": 1});
    let v = post(
        &m,
        "/v1beta/models/gemini-2.0-flash:generateContent",
        &[],
        short,
    )
    .json();
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 1);
}

// ---------------------------------------------------------------------------------------------
// Bedrock and an independent AWS event-stream decoder

fn crc32_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    for (i, e) in t.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *e = c;
    }
    t
}

fn crc32(data: &[u8]) -> u32 {
    let t = crc32_table();
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = t[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

#[derive(Debug)]
struct Event {
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

impl Event {
    fn header(&self, n: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap()
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Decodes event-stream messages, checking both CRCs and all lengths.
fn decode_events(mut data: &[u8]) -> Result<Vec<Event>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 16 {
            return Err(format!("{} trailing bytes", data.len()));
        }
        let total = be32(&data[0..4]) as usize;
        let hlen = be32(&data[4..8]) as usize;
        if crc32(&data[0..8]) != be32(&data[8..12]) {
            return Err("prelude CRC mismatch".into());
        }
        if total > data.len() || total < 16 + hlen {
            return Err(format!("bad total length {total}"));
        }
        let msg = &data[..total];
        if crc32(&msg[..total - 4]) != be32(&msg[total - 4..]) {
            return Err("message CRC mismatch".into());
        }
        let mut h = &msg[12..12 + hlen];
        let mut headers = Vec::new();
        while !h.is_empty() {
            let nl = h[0] as usize;
            let name = String::from_utf8(h[1..1 + nl].to_vec()).unwrap();
            if h[1 + nl] != 7 {
                return Err(format!("header {name} is not a string"));
            }
            let vl = u16::from_be_bytes([h[2 + nl], h[3 + nl]]) as usize;
            let value = String::from_utf8(h[4 + nl..4 + nl + vl].to_vec()).unwrap();
            headers.push((name, value));
            h = &h[4 + nl + vl..];
        }
        out.push(Event {
            headers,
            payload: msg[12 + hlen..total - 4].to_vec(),
        });
        data = &data[total..];
    }
    Ok(out)
}

fn converse(text: &str) -> Value {
    json!({"system": [{"text": "be calm"}], "messages": [{"role": "user", "content": [{"text": text}]}], "inferenceConfig": {"maxTokens": 100}})
}

const SIGV4: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcdef";

#[test]
fn bedrock_converse_non_stream() {
    let m = mock();
    let r = post(
        &m,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
        &[("authorization", SIGV4)],
        converse("one two six"),
    );
    assert_eq!(r.status, 200);
    assert!(r.header("x-amzn-requestid").is_some());
    let v = r.json();
    assert_eq!(v["output"]["message"]["role"], "assistant");
    assert_eq!(
        v["output"]["message"]["content"],
        json!([{"text": "Echo: one two six"}])
    );
    assert_eq!(v["stopReason"], "end_turn");
    assert_eq!(
        v["usage"],
        json!({"inputTokens": 5, "outputTokens": 5, "totalTokens": 10})
    );
    assert!(v["metrics"]["latencyMs"].is_u64());
    let l = m.requests().pop().unwrap();
    assert_eq!(
        l.model.as_deref(),
        Some("anthropic.claude-3-haiku-20240307-v1:0")
    );
    assert_eq!(
        (l.auth[0].scheme.as_str(), l.auth[0].key.as_str()),
        ("AWS4-HMAC-SHA256", "AKIDEXAMPLE")
    );
}

#[test]
fn bedrock_converse_stream_frames_have_valid_crcs() {
    let m = mock();
    let r = post(
        &m,
        "/model/amazon.nova-lite-v1:0/converse-stream",
        &[("x-mock-chunk-size", "2")],
        converse("one two six"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.amazon.eventstream")
    );
    let evs = decode_events(&r.body).expect("valid event stream");
    let types: Vec<&str> = evs.iter().map(|e| e.header(":event-type")).collect();
    assert_eq!(
        types,
        vec![
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    for e in &evs {
        assert_eq!(e.header(":message-type"), "event");
        assert_eq!(e.header(":content-type"), "application/json");
    }
    assert_eq!(evs[0].json(), json!({"role": "assistant"}));
    let text: String = evs
        .iter()
        .filter_map(|e| e.json()["delta"]["text"].as_str().map(String::from))
        .collect();
    assert_eq!(text, "Echo: one two six");
    assert_eq!(evs[5].json()["stopReason"], "end_turn");
    assert_eq!(
        evs[6].json()["usage"],
        json!({"inputTokens": 5, "outputTokens": 5, "totalTokens": 10})
    );

    // The decoder really checks: a flipped payload byte breaks the message CRC.
    let mut bad = r.body.clone();
    let last = bad.len() - 6;
    bad[last] ^= 0x01;
    assert_eq!(decode_events(&bad).unwrap_err(), "message CRC mismatch");
}

#[test]
fn bedrock_tool_use_stream() {
    let m = mock();
    let mut body = converse("weather in Kyiv");
    body["toolConfig"] = json!({"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object", "properties": {"location": {"type": "string"}}}}}}]});
    let v = post(&m, "/model/m/converse", &[], body.clone()).json();
    assert_eq!(v["stopReason"], "tool_use");
    assert_eq!(
        v["output"]["message"]["content"][0]["toolUse"]["name"],
        "get_weather"
    );
    assert_eq!(
        v["output"]["message"]["content"][0]["toolUse"]["input"],
        json!({"location": "Kyiv"})
    );
    let r = post(&m, "/model/m/converse-stream", &[], body);
    let evs = decode_events(&r.body).unwrap();
    assert_eq!(evs[1].header(":event-type"), "contentBlockStart");
    assert_eq!(evs[1].json()["start"]["toolUse"]["name"], "get_weather");
    let input: String = evs
        .iter()
        .filter_map(|e| {
            e.json()["delta"]["toolUse"]["input"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&input).unwrap(),
        json!({"location": "Kyiv"})
    );
    let stop = evs
        .iter()
        .find(|e| e.header(":event-type") == "messageStop")
        .unwrap();
    assert_eq!(stop.json()["stopReason"], "tool_use");
}

// ---------------------------------------------------------------------------------------------
// Errors and controls

#[test]
fn errors_in_each_provider_shape() {
    let m = mock();
    let e429 = [("x-mock-error", "429"), ("x-mock-retry-after", "7")];
    let r = post(&m, "/v1/chat/completions", &e429, chat("hi"));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    let v = r.json();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert!(
        v["error"]["message"].is_string()
            && v["error"].get("type").is_some()
            && v["error"].get("param").is_some()
    );

    let r = post(&m, "/v1/messages", &e429, claude("hi"));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");

    let r = post(
        &m,
        "/v1beta/models/g:generateContent",
        &[("x-mock-error", "503")],
        gem("hi"),
    );
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], 503);
    assert_eq!(r.json()["error"]["status"], "UNAVAILABLE");

    let r = post(
        &m,
        "/model/m/converse",
        &[("x-mock-error", "429")],
        converse("hi"),
    );
    assert_eq!(r.status, 429);
    assert!(r
        .header("x-amzn-errortype")
        .unwrap()
        .starts_with("ThrottlingException"));
    assert!(r.json()["message"].is_string());

    let r = post(
        &m,
        "/v1/chat/completions",
        &[("x-mock-error", "500")],
        chat("hi"),
    );
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["type"], "server_error");

    let r = post(&m, "/v1/messages", &[("x-mock-error", "529")], claude("hi"));
    assert_eq!(r.json()["error"]["type"], "overloaded_error");

    // Bad control values and bad bodies: 400 naming the problem.
    let r = post(
        &m,
        "/v1/chat/completions",
        &[("x-mock-chunk-size", "zero")],
        chat("hi"),
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("x-mock-chunk-size"));
    let r = post(&m, "/v1/chat/completions", &[], json!({"model": "x"}));
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("messages"));
    let r = post(&m, "/v1/nothing-here", &[], json!({}));
    assert_eq!(r.status, 404);
}

#[test]
fn reset_closes_without_a_response_and_cut_truncates() {
    let m = mock();
    let s = send(
        &m,
        "POST",
        "/v1/chat/completions",
        &[("x-mock-error", "reset")],
        &chat("hi").to_string(),
    );
    match read_all(s) {
        Ok(bytes) => assert!(
            bytes.is_empty(),
            "got a response: {}",
            String::from_utf8_lossy(&bytes)
        ),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    assert_eq!(m.requests()[0].status, None);

    let mut body = chat("one two six seven eight nine ten");
    body["stream"] = json!(true);
    let s = send(
        &m,
        "POST",
        "/v1/chat/completions",
        &[("x-mock-error", "cut")],
        &body.to_string(),
    );
    let raw = read_all(s).unwrap_or_default();
    let (r, complete) = parse(&raw);
    assert_eq!(r.status, 200);
    assert!(!complete, "the stream must end abruptly");
    assert!(!r.text().contains("[DONE]"));
    assert!(
        r.text().contains("Echo"),
        "some tokens arrived first: {}",
        r.text()
    );

    let s = send(
        &m,
        "POST",
        "/v1/chat/completions",
        &[("x-mock-error", "cut")],
        &chat("hi").to_string(),
    );
    let (r, complete) = parse(&read_all(s).unwrap_or_default());
    assert_eq!(r.status, 200);
    assert!(
        !complete,
        "the JSON body must be cut short of its content-length"
    );
}

#[test]
fn error_times_lets_a_retry_succeed() {
    let m = mock();
    let h = [
        ("x-mock-error", "503"),
        ("x-mock-error-times", "2"),
        ("x-mock-scenario", "failover-1"),
    ];
    assert_eq!(post(&m, "/v1/chat/completions", &h, chat("hi")).status, 503);
    assert_eq!(post(&m, "/v1/chat/completions", &h, chat("hi")).status, 503);
    let r = post(&m, "/v1/chat/completions", &h, chat("hi"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["choices"][0]["message"]["content"], "Echo: hi");
}

#[test]
fn answer_latency_and_ttft_controls() {
    let m = mock();
    let r = post(
        &m,
        "/v1/chat/completions",
        &[("x-mock-answer", "Exactly this.")],
        chat("ignored"),
    );
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Exactly this."
    );

    // Latency controls are accepted (their timing is not asserted: no timed assertions).
    let r = post(
        &m,
        "/v1/chat/completions",
        &[("x-mock-latency-ms", "150")],
        chat("hi"),
    );
    assert_eq!(r.status, 200);

    let mut body = chat("one two six");
    body["stream"] = json!(true);
    let r = post(
        &m,
        "/v1/chat/completions",
        &[("x-mock-ttft-ms", "100"), ("x-mock-tokens-per-sec", "50")],
        body,
    );
    let text: String = sse_data(&r.body)
        .iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| {
            serde_json::from_str::<Value>(d).ok()?["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(text, "Echo: one two six");
}

#[test]
fn require_key_rejects_in_provider_shape_and_accepts_each_auth_style() {
    let m = spawn(MockOptions {
        require_key: Some("k1".into()),
        ..Default::default()
    })
    .unwrap();
    let r = post(&m, "/v1/chat/completions", &[], chat("hi"));
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "invalid_api_key");
    assert_eq!(
        post(
            &m,
            "/v1/chat/completions",
            &[("authorization", "Bearer wrong")],
            chat("hi")
        )
        .status,
        401
    );
    assert_eq!(
        post(
            &m,
            "/v1/chat/completions",
            &[("authorization", "Bearer k1")],
            chat("hi")
        )
        .status,
        200
    );

    let r = post(
        &m,
        "/v1/messages",
        &[("authorization", "Bearer nope")],
        claude("hi"),
    );
    assert_eq!(
        (r.status, r.json()["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );
    assert_eq!(
        post(&m, "/v1/messages", &[("x-api-key", "k1")], claude("hi")).status,
        200
    );

    let r = post(&m, "/v1beta/models/g:generateContent", &[], gem("hi"));
    assert_eq!(
        (r.status, r.json()["error"]["status"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    assert_eq!(
        post(
            &m,
            "/v1beta/models/g:generateContent?key=k1",
            &[],
            gem("hi")
        )
        .status,
        200
    );

    let r = post(&m, "/model/m/converse", &[], converse("hi"));
    assert_eq!(r.status, 403);
    assert!(r
        .header("x-amzn-errortype")
        .unwrap()
        .starts_with("UnrecognizedClientException"));
    let sig = SIGV4.replace("AKIDEXAMPLE", "k1");
    assert_eq!(
        post(
            &m,
            "/model/m/converse",
            &[("authorization", &sig)],
            converse("hi")
        )
        .status,
        200
    );

    // /metrics needs no key.
    assert_eq!(get(&m, "/metrics").status, 200);
}

#[test]
fn metrics_reflect_hanging_and_queued_requests() {
    let m = spawn(MockOptions {
        max_running: 1,
        kv_capacity_tokens: 100,
        ..Default::default()
    })
    .unwrap();
    let text = get(&m, "/metrics").text();
    assert_eq!(metric(&text, "vllm:num_requests_running"), "0.0");
    assert_eq!(metric(&text, "vllm:num_requests_waiting"), "0.0");
    assert!(text.contains("# TYPE vllm:kv_cache_usage_perc gauge"));

    // "abcd efgh" + "be calm" = 2 + 2 prompt tokens held in the KV cache.
    let body = chat("abcd efgh").to_string();
    let hung = send(
        &m,
        "POST",
        "/v1/chat/completions",
        &[("x-mock-error", "hang")],
        &body,
    );
    wait_load(&m, |l| l.running == 1 && l.kv_tokens == 4);
    let queued = send(
        &m,
        "POST",
        "/v1/chat/completions",
        &[("x-mock-error", "hang")],
        &body,
    );
    wait_load(&m, |l| l.waiting == 1);
    let text = get(&m, "/metrics").text();
    assert_eq!(metric(&text, "vllm:num_requests_running"), "1.0");
    assert_eq!(metric(&text, "vllm:num_requests_waiting"), "1.0");
    assert_eq!(metric(&text, "vllm:kv_cache_usage_perc"), "0.04");
    assert!(text.contains("vllm:num_requests_running{model_name=\"mock-llm\"} 1.0"));

    // The client giving up frees the slot; the queued request then runs (and hangs).
    drop(hung);
    wait_load(&m, |l| l.running == 1 && l.waiting == 0);
    drop(queued);
    wait_load(&m, |l| l.running == 0 && l.waiting == 0 && l.kv_tokens == 0);
    let text = get(&m, "/metrics").text();
    assert_eq!(metric(&text, "vllm:num_requests_running"), "0.0");
    assert_eq!(metric(&text, "vllm:kv_cache_usage_perc"), "0.0");
    assert_eq!(metric(&text, "vllm:prompt_tokens_total"), "8.0");
}

#[test]
fn bounded_queue_rejects_with_429() {
    let m = spawn(MockOptions {
        max_running: 1,
        max_waiting: Some(0),
        ..Default::default()
    })
    .unwrap();
    let _hung = send(
        &m,
        "POST",
        "/v1/messages",
        &[("x-mock-error", "hang")],
        &claude("hi").to_string(),
    );
    wait_load(&m, |l| l.running == 1);
    let r = post(&m, "/v1/messages", &[], claude("hi"));
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    assert!(r.header("retry-after").is_some());
}

#[test]
fn defaults_come_from_options_and_cli_flags() {
    let o = host_sim::mock_llm::cli::parse(&[
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--answer=fixed".into(),
        "--chunk-size".into(),
        "3".into(),
        "--quiet".into(),
    ])
    .unwrap();
    assert_eq!(o.defaults.answer.as_deref(), Some("fixed"));
    assert_eq!(o.defaults.chunk_size, 3);
    assert!(!o.access_log);
    assert!(host_sim::mock_llm::cli::parse(&["--chunk-size".into(), "0".into()]).is_err());
    assert!(host_sim::mock_llm::cli::parse(&["--bogus".into()]).is_err());
    let m = spawn(o).unwrap();
    assert_eq!(
        post(&m, "/v1/chat/completions", &[], chat("hi")).json()["choices"][0]["message"]
            ["content"],
        "fixed"
    );
    // A header still overrides the default.
    assert_eq!(
        post(
            &m,
            "/v1/chat/completions",
            &[("x-mock-answer", "other")],
            chat("hi")
        )
        .json()["choices"][0]["message"]["content"],
        "other"
    );
}
