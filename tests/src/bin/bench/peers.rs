//! Peer comparisons: each of our plugins next to a Go-built Higress module doing the same job,
//! on the same requests in the same run, as ratios against the no-op plugin on those requests.
//!
//! Every row is checked before and after it is timed: a module that rejects its configuration,
//! answers locally, or does not do the job (nothing proxied, nothing counted, nothing masked,
//! nothing limited) gets a note in the table instead of a number.

use crate::{chat_request, chat_response, sse_stream, thread_cpu};
use aigw_tests::{gpustack_module, module_path};
use host_sim::{LogLevel, PluginSpec, Request, Sim, SimOptions, StreamRecord, UpstreamResponse};
use std::path::PathBuf;

/// Timed rounds per measurement, each one batch of `BENCH_N / 2` requests per lane: with the
/// default `BENCH_N` of 2000, 10,000 timed requests per lane.
const ROUNDS: usize = 10;

/// Requests per timed batch for `BENCH_N` = `n`.
fn batch_len(n: usize) -> usize {
    (n / 2).max(1)
}

/// The upstream key both AI proxies are configured with (the client sends `sk-demo-key`).
const UPSTREAM_KEY: &str = "sk-bench-upstream";

/// One module of a chain and its configuration.
struct Module {
    name: &'static str,
    path: PathBuf,
    config: Option<String>,
}

impl Module {
    /// One of our modules from `dist/`.
    fn ours(name: &'static str, config: &str) -> Module {
        Module {
            name,
            path: module_path(name),
            config: Some(config.to_string()),
        }
    }

    /// A module of the `gpustack-higress-plugins` wheel (Higress plugins built with Go).
    fn wheel(name: &'static str, version: &str, config: &str) -> Module {
        Module {
            name,
            path: gpustack_module(name, version),
            config: Some(config.to_string()),
        }
    }

    /// The no-op plugin, the baseline of every ratio.
    fn noop() -> Module {
        Module {
            name: "noop",
            path: module_path("noop"),
            config: None,
        }
    }
}

/// A row of the table: a chain of modules (usually one) doing the job.
struct Row {
    label: String,
    chain: Vec<Module>,
    /// The same chain with a tiny limit. When set, the row counts only if one of three
    /// requests through it is refused with 429: proof that the configuration takes effect.
    probe: Option<Vec<Module>>,
}

impl Row {
    fn new(label: impl Into<String>, chain: Vec<Module>) -> Row {
        Row {
            label: label.into(),
            chain,
            probe: None,
        }
    }

    fn probe(mut self, chain: Vec<Module>) -> Row {
        self.probe = Some(chain);
        self
    }
}

/// One request/answer shape every row of a job is timed on.
#[derive(Clone)]
struct Scenario {
    name: &'static str,
    request: Request,
    response: UpstreamResponse,
    /// Text the client must receive (the upstream's answer went through).
    answer: &'static str,
    /// Completion tokens the upstream reports.
    output_tokens: i64,
}

/// Checks one exchange of a row: `Ok`, or why the row does not do the job.
type Check = fn(&Sim, &StreamRecord, &Scenario) -> Result<(), String>;

/// One job: the rows that do it, the shapes they are timed on and how to tell a row did it.
struct Job {
    title: &'static str,
    scenarios: Vec<Scenario>,
    rows: Vec<Row>,
    /// How to tell a row did the job.
    check: Check,
}

/// A timed cell: µs per request and the VM memory (all modules of the chain) afterwards.
#[derive(Clone, Copy, Debug)]
struct Cell {
    us: f64,
    mem: usize,
    /// Median over rounds of this chain's batch time over the no-op's batch time in the same
    /// round (`None` when the baseline could not be timed).
    ratio: Option<f64>,
}

/// A simulated gateway with `chain`, or why it could not start.
fn gateway(chain: &[Module]) -> Result<Sim, String> {
    let mut sim = Sim::new(SimOptions {
        // Envoy's default: debug lines are handed to the host and dropped there.
        log_level: LogLevel::Info,
        ..SimOptions::default()
    });
    for m in chain {
        let mut spec = PluginSpec::from_file(&m.path)
            .map_err(|e| format!("{}: cannot load {}: {e:#}", m.name, m.path.display()))?
            .name(m.name);
        if let Some(c) = &m.config {
            spec = spec.config_json(c);
        }
        sim.add_plugin(spec)
            .map_err(|e| format!("{} rejected its configuration: {e:#}", m.name))?;
    }
    Ok(sim)
}

/// The two rows of the ai-proxy jobs: ours with config `ours`, Higress's (Go) with config
/// `higress`.
fn proxy_rows(ours: &str, higress: &str) -> Vec<Row> {
    vec![
        Row::new("ai-proxy", vec![Module::ours("ai-proxy", ours)]),
        Row::new(
            "gpustack-ai-proxy 2.0.3-patched (Higress ai-proxy, Go)",
            vec![Module::wheel("gpustack-ai-proxy", "2.0.3-patched", higress)],
        ),
    ]
}

/// What every job needs: the request reached the upstream whole, the client got a 200 with
/// the upstream's answer, and no filter answered locally.
fn proxied(rec: &StreamRecord, sc: &Scenario) -> Result<(), String> {
    if let Some(l) = &rec.local_reply {
        return Err(format!(
            "answered locally with {} ({})",
            l.status,
            String::from_utf8_lossy(&l.body)
                .chars()
                .take(120)
                .collect::<String>()
        ));
    }
    match &rec.upstream_request {
        Some(u) if u.complete => {}
        _ => return Err("the request did not reach the upstream".into()),
    }
    if rec.response.status != 200 {
        return Err(format!("the client got status {}", rec.response.status));
    }
    let body = rec.response.body_str();
    if !body.contains(sc.answer) && !streamed_text(&body).contains(sc.answer) {
        return Err(format!("the client's answer lacks {:?}", sc.answer));
    }
    Ok(())
}

/// The answer text of an SSE body (OpenAI `delta.content`, Anthropic `delta.text`), joined: a
/// plugin may re-split text across events (ai-guard releases a word still being written with
/// the next event).
fn streamed_text(body: &str) -> String {
    let mut text = String::new();
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
            continue;
        };
        for p in ["/choices/0/delta/content", "/delta/text"] {
            if let Some(t) = v.pointer(p).and_then(serde_json::Value::as_str) {
                text.push_str(t);
            }
        }
    }
    text
}

/// A chain ready to be timed on one scenario: its gateway (first exchange checked, warmed up).
struct Lane<'a> {
    chain: &'a [Module],
    sim: Sim,
    check: Check,
    /// µs per request of each timed batch, in round order.
    batches: Vec<f64>,
}

impl<'a> Lane<'a> {
    /// Starts `chain`, checks one exchange and warms it up with `min(n, 200)` requests.
    fn start(
        chain: &'a [Module],
        sc: &Scenario,
        check: Check,
        n: usize,
    ) -> Result<Lane<'a>, String> {
        let mut sim = gateway(chain)?;
        let first = sim
            .run(sc.request.clone(), sc.response.clone())
            .map_err(|e| format!("{e:#}"))?;
        check(&sim, &first, sc)?;
        for _ in 0..n.min(200) {
            let _ = sim.run(sc.request.clone(), sc.response.clone());
        }
        Ok(Lane {
            chain,
            sim,
            check,
            batches: Vec::new(),
        })
    }

    /// Times one batch of `n` requests.
    fn batch(&mut self, sc: &Scenario, n: usize) {
        let t = thread_cpu();
        for _ in 0..n {
            let _ = self.sim.run(sc.request.clone(), sc.response.clone());
        }
        self.batches
            .push((thread_cpu() - t).as_secs_f64() * 1e6 / n as f64);
    }

    /// Checks the last exchange and the VMs, and sums the chain's VM memory.
    fn finish(mut self, sc: &Scenario) -> Result<Timed, String> {
        let last = self
            .sim
            .run(sc.request.clone(), sc.response.clone())
            .map_err(|e| format!("{e:#}"))?;
        (self.check)(&self.sim, &last, sc).map_err(|e| format!("after the timed run: {e}"))?;
        if (0..self.chain.len()).any(|i| self.sim.vm_failed(i, 0)) {
            return Err("a VM failed during the timed run".into());
        }
        let mem = (0..self.chain.len())
            .filter_map(|i| self.sim.vm_memory(i, 0))
            .sum();
        Ok(Timed {
            us: median(self.batches.clone()),
            batches: self.batches,
            mem,
        })
    }
}

/// A lane after its timed rounds.
struct Timed {
    /// Median µs per request.
    us: f64,
    /// µs per request of each round's batch.
    batches: Vec<f64>,
    /// The chain's VM memory afterwards.
    mem: usize,
}

/// The median of `v` (0 when empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Times the no-op baseline and every chain of `chains` on one scenario, interleaved: each
/// round times one batch of every lane, starting at a different lane each round, so a slow
/// spell of the machine falls on all of them alike. A cell's ratio is the median over rounds
/// of its batch time divided by the baseline's batch time in the same round. Returns the
/// baseline's cell, then one cell per chain (`Err` where a chain could not be timed).
fn measure_interleaved(
    baseline: &[Module],
    chains: &[(&[Module], Check)],
    sc: &Scenario,
    n: usize,
) -> Vec<Result<Cell, String>> {
    let base_check: Check = |_, rec, sc| proxied(rec, sc);
    let mut lanes: Vec<Result<Lane, String>> =
        std::iter::once(Lane::start(baseline, sc, base_check, n))
            .chain(
                chains
                    .iter()
                    .map(|(c, check)| Lane::start(c, sc, *check, n)),
            )
            .collect();
    for round in 0..ROUNDS {
        let k = lanes.len();
        for i in 0..k {
            if let Ok(lane) = &mut lanes[(round + i) % k] {
                lane.batch(sc, batch_len(n));
            }
        }
    }
    let finished: Vec<Result<Timed, String>> = lanes
        .into_iter()
        .map(|l| l.and_then(|l| l.finish(sc)))
        .collect();
    let base_batches = finished[0].as_ref().ok().map(|t| t.batches.clone());
    finished
        .into_iter()
        .map(|f| {
            f.map(|t| Cell {
                us: t.us,
                mem: t.mem,
                ratio: base_batches
                    .as_ref()
                    .map(|base| median(t.batches.iter().zip(base).map(|(a, b)| a / b).collect())),
            })
        })
        .collect()
}

/// One of three requests through `chain` must be refused with 429.
fn limits(chain: &[Module], sc: &Scenario) -> Result<(), String> {
    let mut sim = gateway(chain)?;
    for _ in 0..3 {
        let rec = sim
            .run(sc.request.clone(), sc.response.clone())
            .map_err(|e| format!("{e:#}"))?;
        if rec.response.status == 429 {
            return Ok(());
        }
    }
    Err("with a tiny limit, 3 requests were all admitted: the limit is not applied".into())
}

/// The OpenAI chat request of `examples/chat.http`, asking for a stream.
fn stream_request() -> Request {
    let mut req = chat_request();
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&req.body) {
        v["stream"] = serde_json::Value::Bool(true);
        req.body = v.to_string().into_bytes();
    }
    req
}

/// The chat request and a 200-event stream (with a usage chunk) answering it.
fn chat_scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "chat",
            request: chat_request(),
            response: chat_response(),
            answer: "Hello!",
            output_tokens: 3,
        },
        Scenario {
            name: "stream",
            request: stream_request(),
            response: sse_stream(200),
            answer: "tok199 ",
            output_tokens: 200,
        },
    ]
}

fn ai_proxy_job() -> Job {
    let ours = format!(
        r#"{{"providers":[{{"id":"openai","type":"openai","api_keys":["{UPSTREAM_KEY}"]}}]}}"#
    );
    let higress = format!(r#"{{"provider":{{"type":"openai","apiTokens":["{UPSTREAM_KEY}"]}}}}"#);
    Job {
        title: "ai-proxy: OpenAI chat → OpenAI upstream (key swapped, host set)",
        scenarios: chat_scenarios(),
        rows: proxy_rows(&ours, &higress),
        check: |_, rec, sc| {
            proxied(rec, sc)?;
            let Some(u) = &rec.upstream_request else {
                return Err("nothing reached the upstream".into());
            };
            let want = format!("Bearer {UPSTREAM_KEY}");
            if u.header("authorization") != Some(want.as_str()) {
                return Err(format!(
                    "the upstream did not get the configured key (authorization {})",
                    if u.header("authorization").is_some() {
                        "is another value"
                    } else {
                        "is missing"
                    }
                ));
            }
            if u.header(":path") != Some("/v1/chat/completions") {
                return Err(format!("upstream path {:?}", u.header(":path")));
            }
            if u.header(":authority") != Some("api.openai.com") {
                return Err(format!("upstream host {:?}", u.header(":authority")));
            }
            Ok(())
        },
    }
}

/// An Anthropic Messages stream of `n` text deltas ("tok0 " … ) with usage, as
/// `api.anthropic.com` sends it.
fn anthropic_stream(n: usize) -> UpstreamResponse {
    let mut body = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-20250514\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":20,\"output_tokens\":1}}}\n\n\
         event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    );
    for i in 0..n {
        body.push_str(&format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"tok{i} \"}}}}\n\n"
        ));
    }
    body.push_str(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
         event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":200}}\n\n\
         event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    UpstreamResponse::sse(body.into_bytes()).chunked(512)
}

/// An OpenAI client's streamed chat answered by an Anthropic upstream: the translated-stream
/// job (Anthropic SSE decoded and re-encoded as OpenAI chunks).
fn translated_stream_job() -> Job {
    let ours = format!(
        r#"{{"providers":[{{"id":"claude","type":"anthropic","api_keys":["{UPSTREAM_KEY}"],"model_mapping":{{"*":"claude-sonnet-4-20250514"}}}}]}}"#
    );
    let higress = format!(
        r#"{{"provider":{{"type":"claude","apiTokens":["{UPSTREAM_KEY}"],"claudeVersion":"2023-06-01","modelMapping":{{"*":"claude-sonnet-4-20250514"}}}}}}"#
    );
    Job {
        title: "ai-proxy: OpenAI client ← Anthropic upstream (answer and stream translated)",
        scenarios: vec![
            Scenario {
                name: "chat",
                request: chat_request(),
                response: UpstreamResponse::json(
                    200,
                    r#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":3}}"#,
                ),
                answer: "Hello!",
                output_tokens: 3,
            },
            Scenario {
                name: "stream",
                request: stream_request(),
                response: anthropic_stream(200),
                answer: "tok199 ",
                output_tokens: 200,
            },
        ],
        rows: proxy_rows(&ours, &higress),
        check: |_, rec, sc| {
            proxied(rec, sc)?;
            let Some(u) = &rec.upstream_request else {
                return Err("nothing reached the upstream".into());
            };
            if u.header(":path") != Some("/v1/messages") {
                return Err(format!("upstream path {:?}", u.header(":path")));
            }
            let body = rec.response.body_str();
            if !body.contains("chat.completion") || body.contains("\"type\":\"message\"") {
                return Err("the client did not get an OpenAI answer".into());
            }
            Ok(())
        },
    }
}

fn ai_statistics_job() -> Job {
    // Token metrics plus the question and the answer in the access-log record, on both sides.
    const HIGRESS: &str = r#"{"attributes": [
      {"key": "question", "value_source": "request_body", "value": "messages.@reverse.0.content", "apply_to_log": true},
      {"key": "answer", "value_source": "response_streaming_body", "value": "choices.0.delta.content", "rule": "append", "apply_to_log": true},
      {"key": "answer", "value_source": "response_body", "value": "choices.0.message.content", "apply_to_log": true}]}"#;
    Job {
        title: "ai-statistics: token metrics + question/answer in the log",
        scenarios: chat_scenarios(),
        rows: vec![
            Row::new(
                "ai-statistics",
                vec![Module::ours(
                    "ai-statistics",
                    r#"{"log_question":true,"log_answer":true}"#,
                )],
            ),
            Row::new(
                "ai-statistics 2.0.0 (Higress, Go)",
                vec![Module::wheel("ai-statistics", "2.0.0", HIGRESS)],
            ),
        ],
        check: |sim, rec, sc| {
            proxied(rec, sc)?;
            // Our counter is `gen_ai_client_token_usage;...;token_type=output`, Higress's
            // `route....metric.output_token`: either way a name with both words.
            let counted = sim.metrics().into_iter().any(|(name, m)| {
                name.contains("output")
                    && name.contains("token")
                    && m.value > 0
                    && m.value % sc.output_tokens == 0
            });
            if counted {
                Ok(())
            } else {
                Err(format!(
                    "no output-token metric counting {} tokens per request",
                    sc.output_tokens
                ))
            }
        },
    }
}

fn rate_limit_jobs() -> Vec<Job> {
    const HUGE: u64 = 1_000_000_000_000;
    let ours_requests = |limit: u64| {
        format!(
            r#"{{"limits":[{{"name":"per-key","key":[{{"by":"api_key"}}],"count":"requests","per_minute":{limit}}}]}}"#
        )
    };
    let gpustack = |kind: &str, limit: u64| {
        format!(
            r#"{{"rule_name":"bench","limit_combinations":[{{"name":"per-key","match":[{{"source":"header","name":"authorization","value":"*"}}],"{kind}":{{"per_minute":{limit}}}}}]}}"#
        )
    };
    let ours_tokens = |limit: u64| {
        format!(
            r#"{{"limits":[{{"name":"per-key","key":[{{"by":"api_key"}}],"count":"total","per_minute":{limit}}}]}}"#
        )
    };
    let gpustack_tokens = |limit: u64| {
        vec![
            Module::wheel("ai-statistics", "2.0.0", "{}"),
            Module::wheel(
                "gpustack-rate-limit",
                "1.0.1",
                &gpustack("token_limits", limit),
            ),
        ]
    };
    let check: Check = |_, rec, sc| proxied(rec, sc).map_err(|e| format!("not admitted: {e}"));
    vec![
        Job {
            title: "rate limit, local mode: requests/minute per API key",
            scenarios: chat_scenarios(),
            rows: vec![
                Row::new(
                    "ai-token-ratelimit",
                    vec![Module::ours("ai-token-ratelimit", &ours_requests(HUGE))],
                )
                .probe(vec![Module::ours("ai-token-ratelimit", &ours_requests(1))]),
                Row::new(
                    "gpustack-rate-limit 1.0.1 (Go), query_limits",
                    vec![Module::wheel(
                        "gpustack-rate-limit",
                        "1.0.1",
                        &gpustack("query_limits", HUGE),
                    )],
                )
                .probe(vec![Module::wheel(
                    "gpustack-rate-limit",
                    "1.0.1",
                    &gpustack("query_limits", 1),
                )]),
            ],
            check,
        },
        Job {
            title: "rate limit, local mode: tokens/minute per API key",
            scenarios: chat_scenarios(),
            rows: vec![
                Row::new(
                    "ai-token-ratelimit",
                    vec![Module::ours("ai-token-ratelimit", &ours_tokens(HUGE))],
                )
                .probe(vec![Module::ours("ai-token-ratelimit", &ours_tokens(100))]),
                Row::new(
                    "ai-statistics 2.0.0 + gpustack-rate-limit 1.0.1 (Go), token_limits",
                    gpustack_tokens(HUGE),
                )
                .probe(gpustack_tokens(10)),
            ],
            check,
        },
    ]
}

fn masking_job() -> Job {
    const MASKING: &str = r#"{"deny_openai": true, "system_deny": false, "deny_code": 403,
        "deny_message": "blocked by policy", "deny_words": ["forbiddenword"],
        "replace_roles": [{"regex": "%{MOBILE}", "type": "replace", "value": "****"}]}"#;
    let request = |stream: bool| {
        Request::post(
            "/v1/chat/completions",
            format!(
                r#"{{"model":"gpt-4o","stream":{stream},"messages":[{{"role":"user","content":"call me at 13812345678 please, it is about the invoice"}}]}}"#
            ),
        )
    };
    Job {
        title: "ai-guard: mask a phone number, deny a word (ai-data-masking config)",
        scenarios: vec![
            Scenario {
                name: "chat",
                request: request(false),
                response: chat_response(),
                answer: "Hello!",
                output_tokens: 3,
            },
            Scenario {
                name: "stream",
                request: request(true),
                response: sse_stream(200),
                answer: "tok199 ",
                output_tokens: 200,
            },
        ],
        rows: vec![
            Row::new("ai-guard", vec![Module::ours("ai-guard", MASKING)]),
            Row::new(
                "ai-data-masking 2.0.3 (Higress, Go)",
                vec![Module::wheel("ai-data-masking", "2.0.3", MASKING)],
            ),
        ],
        check: |_, rec, sc| {
            proxied(rec, sc)?;
            match &rec.upstream_request {
                Some(u) if u.body_str().contains("13812345678") => {
                    Err("the phone number reached the upstream".into())
                }
                _ => Ok(()),
            }
        },
    }
}

/// A measured row.
struct Line {
    job: &'static str,
    label: String,
    bytes: u64,
    cells: Vec<Result<Cell, String>>,
}

/// Runs every job and prints one table, then the notes of rows that could not be timed.
pub fn run(n: usize) {
    let mut jobs = vec![ai_proxy_job(), translated_stream_job(), ai_statistics_job()];
    jobs.extend(rate_limit_jobs());
    jobs.push(masking_job());
    // `BENCH_JOBS=ai-proxy,masking`: only the jobs whose title contains one of the words.
    if let Ok(filter) = std::env::var("BENCH_JOBS") {
        let words: Vec<&str> = filter
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .collect();
        jobs.retain(|j| words.iter().any(|w| j.title.contains(w)));
    }
    // The checked first request, the warm-up, the timed batches, the checked last request.
    let total = 1 + n.min(200) + batch_len(n) * ROUNDS + 1;
    let mut lines = Vec::new();
    for job in &jobs {
        eprintln!("peers: {}", job.title);
        // Rows whose limit probe failed are not timed; the others are timed together with
        // the no-op baseline, scenario by scenario.
        let probes: Vec<Result<(), String>> = job
            .rows
            .iter()
            .map(|row| match (&row.probe, job.scenarios.first()) {
                (Some(chain), Some(sc)) => limits(chain, sc),
                _ => Ok(()),
            })
            .collect();
        let timed: Vec<(&[Module], Check)> = job
            .rows
            .iter()
            .zip(&probes)
            .filter(|(_, p)| p.is_ok())
            .map(|(row, _)| (row.chain.as_slice(), job.check))
            .collect();
        let noop = [Module::noop()];
        // cells[lane][scenario]: lane 0 is the baseline, then the timed rows in order.
        let mut cells: Vec<Vec<Result<Cell, String>>> = vec![Vec::new(); timed.len() + 1];
        for sc in &job.scenarios {
            for (lane, cell) in measure_interleaved(&noop, &timed, sc, n)
                .into_iter()
                .enumerate()
            {
                cells[lane].push(cell.map_err(|e| format!("{} scenario: {e}", sc.name)));
            }
        }
        let mut cells = cells.into_iter();
        lines.push(Line {
            job: job.title,
            label: "no-op (baseline)".into(),
            bytes: file_size(&module_path("noop")),
            cells: cells.next().unwrap_or_default(),
        });
        for (row, probe) in job.rows.iter().zip(probes) {
            let cells = match probe {
                Err(e) => vec![Err(e); job.scenarios.len()],
                Ok(()) => cells.next().unwrap_or_default(),
            };
            lines.push(Line {
                job: job.title,
                label: row.label.clone(),
                bytes: row.chain.iter().map(|m| file_size(&m.path)).sum(),
                cells,
            });
        }
    }
    print_table(&lines, total);
}

fn file_size(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn print_table(lines: &[Line], total: usize) {
    println!("\n## Peers: same job, same requests, same run\n");
    println!(
        "Higress modules: PyPI `gpustack-higress-plugins` 0.5.1 (Go, proxy-wasm ABI 0.2.100). \
         Ratios are against the no-op plugin on the same requests, timed in the same rounds \
         (each round times one batch of the no-op and of every row of the job, in rotating \
         order; a ratio is the median of the per-round ratios); VM memory is the linear \
         memory of the chain's VMs after {total} requests.\n"
    );
    println!(
        "| job | module | µs/request chat | vs no-op | µs/request 200-event stream | vs no-op | module bytes | VM memory chat / stream |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut notes = Vec::new();
    let mut last_job = "";
    for l in lines {
        let job = if l.job == last_job { "" } else { l.job };
        last_job = l.job;
        let mut cols = Vec::new();
        let mut mems = Vec::new();
        for c in &l.cells {
            match c {
                Ok(c) => {
                    cols.push(format!("{:.1}", c.us));
                    cols.push(match c.ratio {
                        Some(r) => format!("{r:.2}x"),
                        None => "-".into(),
                    });
                    mems.push(format!("{} KiB", c.mem / 1024));
                }
                Err(e) => {
                    let note = format!("{}: {e}", l.label);
                    let at = match notes.iter().position(|x| *x == note) {
                        Some(i) => i + 1,
                        None => {
                            notes.push(note);
                            notes.len()
                        }
                    };
                    cols.push(format!("not timed [{at}]"));
                    cols.push("-".into());
                    mems.push("-".into());
                }
            }
        }
        println!(
            "| {job} | {} | {} | {} | {} |",
            l.label,
            cols.join(" | "),
            l.bytes,
            mems.join(" / ")
        );
    }
    for (i, n) in notes.iter().enumerate() {
        println!("\n[{}] {n}", i + 1);
    }
    println!(
        "\nNot compared: gpustack-token-usage 1.2.2 is not a limiter (it adds timing fields to \
         the usage object and reports usage to an HTTP endpoint) and does not publish `ai_log`, \
         so it cannot feed gpustack-rate-limit's token limits; Higress's ai-statistics does \
         that job in the token row. gpustack-rate-limit's Redis mode is not timed (both \
         plugins' cluster modes need Redis); its local mode keeps one 16-byte entry per \
         request in each sliding window and rewrites the list on every request, so its cost \
         grows with the requests inside the window (here all of them: the simulated clock \
         stands still)."
    );
}
