//! The stream filter: decide per request (bypass / refresh / lookup), derive the key from the
//! buffered request body, answer hits locally (JSON or replayed SSE), and store complete,
//! normal answers as they pass.

use crate::config::{Config, Scope, StoreKind, VectorIndexConfig};
use crate::entry::{self, stored_api, Entry, Skip, StreamAssembler};
use crate::key::{self, Digest, RequestKey};
use crate::replay;
use crate::semantic::{self, LocalIndex, VectorIndex};
use crate::store::SlotStore;
use crate::vector_service::{Qdrant, ServiceCall, VectorService};
use aigw::contract::{self, UsageRecord};
use aigw::host;
use aigw::llm::Api;
use aigw::metrics;
use aigw::prelude::*;
use aigw::shared::HostStore;
use std::time::Duration;

#[cfg(feature = "higress")]
mod redis_mode;

/// What this request does with the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    /// Not a cacheable request (wrong method/path, no body): untouched.
    #[default]
    Off,
    /// Neither look up nor store.
    Bypass,
    /// Do not look up; store the fresh answer.
    Refresh,
    /// Look up, store on a miss.
    Lookup,
}

/// One value per HTTP stream.
#[derive(Default)]
pub struct AiCache {
    mode: Mode,
    dialect: Option<Api>,
    key: Option<RequestKey>,
    vector: Option<Vec<f32>>,
    decided: bool,
    storing: bool,
    assembler: Option<StreamAssembler>,
    body: Vec<u8>,
    skip: Option<Skip>,
    consumer: String,
}

fn count(name: &str, labels: &[(&str, &str)]) {
    if let Ok(c) = metrics::counter(name, labels) {
        let _ = c.increment(1);
    }
}

fn now_ms() -> u64 {
    host::now_millis().unwrap_or(0)
}

/// The dialect of a cacheable request: chat completions, Anthropic messages and the OpenAI
/// Responses API are cached; every other API is not.
fn dialect_for(api: Option<Api>) -> Option<Api> {
    match api? {
        Api::ChatCompletions => Some(Api::ChatCompletions),
        Api::AnthropicMessages => Some(Api::AnthropicMessages),
        Api::Responses => Some(Api::Responses),
        _ => None,
    }
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl AiCache {
    fn status(&self) -> &'static str {
        match self.mode {
            Mode::Off => "",
            Mode::Bypass => "bypass",
            Mode::Refresh => "refresh",
            Mode::Lookup => "miss",
        }
    }

    /// Gives up on caching this request (uncacheable): it passes through marked `bypass`.
    fn give_up(&mut self, reason: &str) {
        self.mode = Mode::Bypass;
        self.key = None;
        count("ai_cache_uncacheable", &[("reason", reason)]);
    }

    fn decide(&mut self) {
        if !self.decided {
            self.decided = true;
            count("ai_cache_requests", &[("status", self.status())]);
        }
    }

    /// Answers the request from `entry`.
    fn reply_hit(&mut self, ctx: &mut Ctx<Self>, entry: &Entry, similarity: Option<f32>) -> bool {
        let Some(k) = &self.key else { return false };
        let now = now_ms();
        let key_hex = key::hex(&k.exact);
        let id = format!("cache-{}", key_hex.get(..16).unwrap_or(""));
        let (body, ctype) = if k.stream {
            let opts = replay::StreamOptions {
                id: &id,
                now_s: now / 1000,
                chars: ctx.config().replay_chunk_chars,
                include_usage: k.include_usage,
            };
            (replay::sse_body(entry, &opts), "text/event-stream")
        } else {
            (
                replay::json_body(entry, &id, now / 1000),
                "application/json",
            )
        };
        let age = (now.saturating_sub(entry.created_ms) / 1000).to_string();
        let usage = UsageRecord {
            input: entry.input_tokens,
            output: entry.output_tokens,
            total: entry.input_tokens.saturating_add(entry.output_tokens),
            cached_input: entry.input_tokens,
            ..UsageRecord::default()
        };
        if let Err(e) = usage.publish() {
            aigw::warn!("cannot publish usage: {e}");
        }
        let sim = similarity.map(|s| format!("{s:.4}"));
        let mut headers = vec![
            ("content-type", ctype),
            (contract::CACHE_STATUS_HEADER, "hit"),
            ("x-cache-key", key_hex.as_str()),
            ("age", age.as_str()),
        ];
        if let Some(s) = &sim {
            headers.push(("x-cache-similarity", s.as_str()));
        }
        match ctx.send_response(200, &headers, &body) {
            Ok(()) => {
                self.decided = true;
                self.storing = false;
                let kind = if similarity.is_some() {
                    "semantic"
                } else {
                    "exact"
                };
                count("ai_cache_requests", &[("status", "hit")]);
                count("ai_cache_hits", &[("kind", kind)]);
                true
            }
            Err(e) => {
                aigw::warn!("cannot answer from cache: {e}");
                false
            }
        }
    }

    fn lookup_exact(&self, cfg: &Config, digest: &Digest) -> Option<Entry> {
        let store = SlotStore::new(&HostStore, &cfg.namespace, cfg.max_entries);
        match store.get(digest, now_ms()) {
            Ok(e) => e,
            Err(e) => {
                aigw::warn!("cache read failed: {e}");
                None
            }
        }
    }

    /// Starts the embeddings call; `false` when it could not be sent.
    fn embed(&mut self, ctx: &mut Ctx<Self>) -> bool {
        let cfg = ctx.config_rc();
        let (Some(sem), Some(k)) = (&cfg.semantic, &self.key) else {
            return false;
        };
        if k.question.is_empty() {
            return false;
        }
        let mut req = CallRequest::post(
            &sem.authority,
            &sem.path,
            semantic::request_body(&sem.model, &k.question),
        )
        .header("content-type", "application/json");
        if let Some(api_key) = &sem.api_key {
            req = req.header("authorization", &format!("Bearer {api_key}"));
        }
        let timeout = Duration::from_millis(sem.timeout_ms);
        let sent = ctx.http_call(
            &sem.cluster,
            req,
            timeout,
            |plugin: &mut AiCache, ctx, result| {
                plugin.on_embedding(ctx, result);
            },
        );
        match sent {
            Ok(()) => true,
            Err(e) => {
                aigw::warn!("embeddings call not sent: {e}");
                count("ai_cache_embedding_failures", &[("reason", "dispatch")]);
                false
            }
        }
    }

    fn on_embedding(&mut self, ctx: &mut Ctx<Self>, result: CallResult) {
        let cfg = ctx.config_rc();
        let max_dims = cfg.semantic.as_ref().map_or(0, |s| s.max_dims as usize);
        let vector = match result {
            Ok(resp) => {
                let v = semantic::parse_response(&resp.body, max_dims);
                if v.is_none() {
                    count("ai_cache_embedding_failures", &[("reason", "malformed")]);
                }
                v
            }
            Err(e) => {
                let reason = match e {
                    CallError::Timeout(_) => "timeout",
                    CallError::Unreachable(_) | CallError::Reset => "unreachable",
                    CallError::Status(_) => "status",
                    CallError::Host(_) => "host",
                };
                aigw::warn!("embeddings call failed: {e}");
                count("ai_cache_embedding_failures", &[("reason", reason)]);
                None
            }
        };
        if cfg.store == StoreKind::Redis {
            self.vector = vector;
            if self.mode == Mode::Lookup && self.redis_lookup(ctx) {
                return;
            }
            self.decide();
            if let Err(e) = ctx.resume_request() {
                aigw::warn!("cannot resume request: {e}");
            }
            return;
        }
        if let (Some(v), Some(sem), Some(k), Mode::Lookup, Some(remote)) = (
            &vector,
            &cfg.semantic,
            &self.key,
            self.mode,
            RemoteIndex::of(&cfg),
        ) {
            let call = remote
                .service
                .search(&k.context, v, sem.threshold, now_ms());
            let threshold = sem.threshold;
            let sent = remote.send(ctx, call, move |plugin: &mut AiCache, ctx, result| {
                plugin.on_vector_search(ctx, result, threshold);
            });
            self.vector = vector;
            if sent {
                return;
            }
            count(
                "ai_cache_vector_failures",
                &[("op", "search"), ("reason", "dispatch")],
            );
            self.decide();
            if let Err(e) = ctx.resume_request() {
                aigw::warn!("cannot resume request: {e}");
            }
            return;
        }
        if let (Some(v), Some(sem), Some(k), Mode::Lookup) =
            (&vector, &cfg.semantic, &self.key, self.mode)
        {
            let index = LocalIndex::new(&HostStore, &cfg.namespace, sem.max_vectors);
            match index.search(&k.context, v, sem.threshold, now_ms()) {
                Ok(Some(hit)) => {
                    if let Some(entry) = self.lookup_exact(&cfg, &hit.entry) {
                        if entry.dialect == self.dialect.unwrap_or(Api::ChatCompletions)
                            && self.reply_hit(ctx, &entry, Some(hit.score))
                        {
                            return;
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => aigw::warn!("vector search failed: {e}"),
            }
        }
        self.vector = vector;
        self.decide();
        if let Err(e) = ctx.resume_request() {
            aigw::warn!("cannot resume request: {e}");
        }
    }

    /// The answer of a remote vector search: reply from the cache on a hit, else go on.
    fn on_vector_search(&mut self, ctx: &mut Ctx<Self>, result: CallResult, threshold: f32) {
        let cfg = ctx.config_rc();
        let hit = match (result, RemoteIndex::of(&cfg)) {
            (Ok(resp), Some(remote)) => {
                match remote.service.parse_search(&resp.body, threshold, now_ms()) {
                    Ok(hit) => hit,
                    Err(why) => {
                        aigw::warn!("vector search answer unusable: {why}");
                        count(
                            "ai_cache_vector_failures",
                            &[("op", "search"), ("reason", "malformed")],
                        );
                        None
                    }
                }
            }
            (Ok(_), None) => None,
            (Err(e), _) => {
                aigw::warn!("vector search failed: {e}");
                count(
                    "ai_cache_vector_failures",
                    &[("op", "search"), ("reason", call_reason(&e))],
                );
                None
            }
        };
        if let Some(hit) = hit {
            if let Some(entry) = self.lookup_exact(&cfg, &hit.entry) {
                if entry.dialect == self.dialect.unwrap_or(Api::ChatCompletions)
                    && self.reply_hit(ctx, &entry, Some(hit.score))
                {
                    return;
                }
            }
        }
        self.decide();
        if let Err(e) = ctx.resume_request() {
            aigw::warn!("cannot resume request: {e}");
        }
    }

    fn store(&mut self, ctx: &mut Ctx<Self>, result: Result<Entry, Skip>) {
        let entry = match result {
            Ok(e) => e,
            Err(s) => {
                count("ai_cache_not_stored", &[("reason", s.label())]);
                return;
            }
        };
        if ctx.config().store == StoreKind::Redis {
            self.redis_store(ctx, &entry);
            return;
        }
        let cfg = ctx.config_rc();
        let Some(k) = &self.key else { return };
        let now = now_ms();
        let expires = now.saturating_add(cfg.ttl_seconds.saturating_mul(1000));
        let store = SlotStore::new(&HostStore, &cfg.namespace, cfg.max_entries);
        match store.put(&k.exact, &entry, expires, now) {
            Ok(true) => count("ai_cache_stored", &[]),
            Ok(false) => count("ai_cache_not_stored", &[("reason", "contention")]),
            Err(e) => {
                aigw::warn!("cache write failed: {e}");
                count("ai_cache_not_stored", &[("reason", "host")]);
                return;
            }
        }
        if let (Some(sem), Some(v)) = (&cfg.semantic, &self.vector) {
            if let Some(remote) = RemoteIndex::of(&cfg) {
                // Not waited for: the answer only reports failures.
                let call = remote.service.insert(&k.context, &k.exact, v, expires);
                let sent = remote.send(ctx, call, |_: &mut AiCache, _, result| {
                    if let Err(e) = result {
                        aigw::warn!("vector insert failed: {e}");
                        count(
                            "ai_cache_vector_failures",
                            &[("op", "insert"), ("reason", call_reason(&e))],
                        );
                    }
                });
                if !sent {
                    count(
                        "ai_cache_vector_failures",
                        &[("op", "insert"), ("reason", "dispatch")],
                    );
                }
                return;
            }
            let index = LocalIndex::new(&HostStore, &cfg.namespace, sem.max_vectors);
            if let Err(e) = index.insert(&k.context, &k.exact, v, expires) {
                aigw::warn!("vector insert failed: {e}");
            }
        }
    }
}

/// A vector database reached by call-outs (`semantic.index` other than `local`).
struct RemoteIndex<'a> {
    service: Qdrant,
    cluster: &'a str,
    authority: &'a str,
    api_key: Option<&'a str>,
    timeout: Duration,
}

impl<'a> RemoteIndex<'a> {
    fn of(cfg: &'a Config) -> Option<RemoteIndex<'a>> {
        match &cfg.semantic.as_ref()?.index {
            VectorIndexConfig::Local => None,
            VectorIndexConfig::Qdrant {
                cluster,
                authority,
                collection,
                api_key,
                timeout_ms,
            } => Some(RemoteIndex {
                service: Qdrant {
                    collection: collection.clone(),
                },
                cluster,
                authority: authority.as_deref().unwrap_or(cluster),
                api_key: api_key.as_deref(),
                timeout: Duration::from_millis(*timeout_ms),
            }),
        }
    }

    /// Sends `call`; `false` when the host refused it.
    fn send<F>(&self, ctx: &mut Ctx<AiCache>, call: ServiceCall, then: F) -> bool
    where
        F: FnOnce(&mut AiCache, &mut Ctx<AiCache>, CallResult) + 'static,
    {
        let mut req = CallRequest::new(call.method, self.authority, &call.path)
            .header("content-type", "application/json")
            .body(call.body);
        if let Some(key) = self.api_key {
            req = req.header("api-key", key);
        }
        match ctx.http_call(self.cluster, req, self.timeout, then) {
            Ok(()) => true,
            Err(e) => {
                aigw::warn!("vector index call not sent: {e}");
                false
            }
        }
    }
}

fn call_reason(e: &CallError) -> &'static str {
    match e {
        CallError::Timeout(_) => "timeout",
        CallError::Unreachable(_) | CallError::Reset => "unreachable",
        CallError::Status(_) => "status",
        CallError::Host(_) => "host",
    }
}

#[cfg(not(feature = "higress"))]
impl AiCache {
    /// Not reachable: validation refuses the Redis store without the `higress` feature.
    fn redis_lookup(&mut self, _ctx: &mut Ctx<Self>) -> bool {
        false
    }

    /// Not reachable (see `redis_lookup`).
    fn redis_store(&mut self, _ctx: &mut Ctx<Self>, _entry: &Entry) {}
}

impl Plugin for AiCache {
    const NAME: &'static str = "ai-cache";
    type Config = Config;
    type Root = ();

    fn on_configure(root: &mut RootCtx<Self>) -> Result<(), ConfigError> {
        for cfg in root.configs() {
            if cfg.store == StoreKind::Redis {
                #[cfg(feature = "higress")]
                redis_mode::init(cfg)?;
            }
        }
        Ok(())
    }

    fn on_request_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        let method = ctx
            .request_header(":method")
            .ok()
            .flatten()
            .unwrap_or_default();
        let content_type = ctx.request_header("content-type").ok().flatten();
        self.dialect = dialect_for(Api::classify(
            &method,
            ctx.request_path(),
            content_type.as_deref(),
        ));
        if end_of_stream || !method.eq_ignore_ascii_case("POST") || self.dialect.is_none() {
            return Flow::Continue;
        }
        let cc = ctx
            .request_header("cache-control")
            .ok()
            .flatten()
            .unwrap_or_default();
        let control_name = ctx.config().control_header.clone();
        let control = ctx
            .request_header(&control_name)
            .ok()
            .flatten()
            .unwrap_or_default();
        self.mode = if has_token(&cc, "no-store") || has_token(&control, "bypass") {
            Mode::Bypass
        } else if has_token(&cc, "no-cache") || has_token(&control, "refresh") {
            Mode::Refresh
        } else {
            Mode::Lookup
        };
        if self.mode == Mode::Bypass {
            self.decide();
        }
        // Request headers are only readable here once the body flows.
        self.consumer = ctx
            .request_header(contract::CONSUMER_HEADER)
            .ok()
            .flatten()
            .unwrap_or_default();
        Flow::Continue
    }

    fn on_request_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        if !matches!(self.mode, Mode::Lookup | Mode::Refresh) || self.key.is_some() {
            return Flow::Continue;
        }
        let cfg = ctx.config_rc();
        // Too large to key: the request goes on uncached (the SDK sends nothing).
        let body = match ctx.whole_request_body_or(chunk, cfg.max_request_bytes, OverLimit::Pass) {
            Whole::Ready(b) => b,
            Whole::Pending => return Flow::Pause,
            Whole::TooLarge { .. } => {
                self.give_up("request_too_large");
                self.decide();
                return Flow::Continue;
            }
            Whole::Failed(e) => {
                aigw::warn!("cannot read request body: {e}");
                self.give_up("host");
                self.decide();
                return Flow::Continue;
            }
        };
        let route;
        let mut scope: Vec<(&str, &str)> = Vec::new();
        if cfg.scope.contains(&Scope::Consumer) {
            scope.push(("consumer", self.consumer.as_str()));
        }
        if cfg.scope.contains(&Scope::Route) {
            route = ctx
                .property_string(&["route_name"])
                .ok()
                .flatten()
                .unwrap_or_default();
            scope.push(("route", route.as_str()));
        }
        let protocol = stored_api::name(self.dialect.unwrap_or(Api::ChatCompletions));
        let k = match key::derive(&cfg, protocol, &scope, &body) {
            Ok(k) => k,
            Err(key::Uncacheable::NotJson) => {
                self.give_up("not_json");
                self.decide();
                return Flow::Continue;
            }
            Err(key::Uncacheable::NotStrict) => {
                self.give_up("not_strict_json");
                self.decide();
                return Flow::Continue;
            }
            Err(key::Uncacheable::Multiple) => {
                self.give_up("multiple_choices");
                self.decide();
                return Flow::Continue;
            }
        };
        let exact = k.exact;
        self.key = Some(k);
        self.storing = true;
        if cfg.store == StoreKind::Redis {
            if cfg.semantic.is_some() && self.embed(ctx) {
                return Flow::Pause;
            }
            if self.mode == Mode::Lookup && self.redis_lookup(ctx) {
                return Flow::Pause;
            }
            self.decide();
            return Flow::Continue;
        }
        if self.mode == Mode::Lookup {
            if let Some(entry) = self.lookup_exact(&cfg, &exact) {
                if self.reply_hit(ctx, &entry, None) {
                    return Flow::Pause;
                }
            }
        }
        if cfg.semantic.is_some() && self.embed(ctx) {
            return Flow::Pause;
        }
        self.decide();
        Flow::Continue
    }

    fn on_response_headers(&mut self, ctx: &mut Ctx<Self>, end_of_stream: bool) -> Flow {
        if self.mode == Mode::Off {
            return Flow::Continue;
        }
        let _ = ctx.set_response_header(contract::CACHE_STATUS_HEADER, self.status());
        if let Some(k) = &self.key {
            let _ = ctx.set_response_header("x-cache-key", &key::hex(&k.exact));
        }
        let status = ctx
            .response_header(":status")
            .ok()
            .flatten()
            .unwrap_or_default();
        if status.trim() != "200" || end_of_stream || self.key.is_none() {
            if self.storing {
                count("ai_cache_not_stored", &[("reason", "status")]);
            }
            self.storing = false;
            return Flow::Continue;
        }
        let sse = ctx
            .response_header("content-type")
            .ok()
            .flatten()
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/event-stream")
            });
        if sse {
            let limit = ctx.config().max_entry_bytes;
            self.assembler = Some(StreamAssembler::new(
                self.dialect.unwrap_or(Api::ChatCompletions),
                limit,
            ));
        }
        Flow::Continue
    }

    fn on_response_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
        if !self.storing || self.skip.is_some() {
            return Flow::Continue;
        }
        let limit = ctx.config().max_entry_bytes;
        let data = match ctx.response_body(chunk) {
            Ok(d) => d,
            Err(e) => {
                aigw::warn!("cannot read response body: {e}");
                self.skip = Some(Skip::Incomplete);
                self.storing = false;
                return Flow::Continue;
            }
        };
        match &mut self.assembler {
            Some(a) => {
                a.feed(&data);
                if let Some(s) = a.failed() {
                    self.skip = Some(s);
                }
            }
            None => {
                if self.body.len().saturating_add(data.len()) > limit {
                    self.skip = Some(Skip::TooLarge);
                    self.body = Vec::new();
                } else {
                    self.body.extend_from_slice(&data);
                }
            }
        }
        if let Some(s) = self.skip {
            count("ai_cache_not_stored", &[("reason", s.label())]);
            self.storing = false;
            self.assembler = None;
            return Flow::Continue;
        }
        if chunk.end_of_stream {
            self.storing = false;
            let now = now_ms();
            let result = match self.assembler.take() {
                Some(a) => a.finish(now),
                None => entry::from_json(
                    self.dialect.unwrap_or(Api::ChatCompletions),
                    &std::mem::take(&mut self.body),
                    now,
                ),
            };
            self.store(ctx, result);
        }
        Flow::Continue
    }

    fn on_done(&mut self, _ctx: &mut Ctx<Self>) {
        if self.storing {
            // The response never ended normally (client abort, upstream reset).
            count("ai_cache_not_stored", &[("reason", "incomplete")]);
            self.storing = false;
        }
    }
}
