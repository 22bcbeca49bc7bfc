//! Admission like a vLLM server: at most `max_running` requests run at once, the rest wait in a
//! queue (optionally bounded), and the "KV cache" holds the prompt and generated tokens of the
//! running requests. The counters feed `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Shared scheduler state.
pub struct Sched {
    sem: Arc<Semaphore>,
    running: AtomicU64,
    waiting: AtomicU64,
    kv_tokens: AtomicU64,
    prompt_total: AtomicU64,
    generation_total: AtomicU64,
    success_total: AtomicU64,
    max_waiting: Option<u64>,
    kv_capacity: u64,
}

/// A running request's hold on a slot and its KV tokens; released on drop.
pub struct Slot {
    sched: Arc<Sched>,
    kv: u64,
    _permit: OwnedSemaphorePermit,
}

/// Counted while a request waits for a slot (also when the wait is abandoned).
struct Waiting<'a>(&'a Sched);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A snapshot of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Load {
    /// Requests holding a slot.
    pub running: u64,
    /// Requests queued for a slot.
    pub waiting: u64,
    /// Tokens held by running requests.
    pub kv_tokens: u64,
    /// `kv_tokens / kv_capacity`, at most 1.
    pub kv_usage: f64,
}

impl Sched {
    /// A scheduler with these limits (`max_running` at least 1, `kv_capacity` at least 1).
    pub fn new(max_running: usize, max_waiting: Option<u64>, kv_capacity: u64) -> Arc<Sched> {
        Arc::new(Sched {
            sem: Arc::new(Semaphore::new(max_running.clamp(1, Semaphore::MAX_PERMITS))),
            running: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            kv_tokens: AtomicU64::new(0),
            prompt_total: AtomicU64::new(0),
            generation_total: AtomicU64::new(0),
            success_total: AtomicU64::new(0),
            max_waiting,
            kv_capacity: kv_capacity.max(1),
        })
    }

    /// Waits for a slot; `None` when the queue is full.
    pub async fn admit(self: &Arc<Self>) -> Option<Slot> {
        let permit = match self.sem.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let before = self.waiting.fetch_add(1, Ordering::SeqCst);
                let guard = Waiting(self);
                if self.max_waiting.is_some_and(|m| before >= m) {
                    return None;
                }
                let p = self.sem.clone().acquire_owned().await.ok()?;
                drop(guard);
                p
            }
        };
        self.running.fetch_add(1, Ordering::SeqCst);
        Some(Slot {
            sched: self.clone(),
            kv: 0,
            _permit: permit,
        })
    }

    /// The current load.
    pub fn load(&self) -> Load {
        let kv_tokens = self.kv_tokens.load(Ordering::SeqCst);
        Load {
            running: self.running.load(Ordering::SeqCst),
            waiting: self.waiting.load(Ordering::SeqCst),
            kv_tokens,
            kv_usage: (kv_tokens as f64 / self.kv_capacity as f64).min(1.0),
        }
    }

    /// Prometheus text exposition with vLLM's metric names.
    pub fn metrics_text(&self, model: &str) -> String {
        let l = self.load();
        let model = model.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, v: f64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{model_name=\"{model}\"}} {}\n",
                super::wire::prom_number(v)
            ));
        };
        metric(
            "vllm:num_requests_running",
            "gauge",
            "Number of requests in model execution batches.",
            l.running as f64,
        );
        metric(
            "vllm:num_requests_waiting",
            "gauge",
            "Number of requests waiting to be processed.",
            l.waiting as f64,
        );
        metric(
            "vllm:kv_cache_usage_perc",
            "gauge",
            "KV-cache usage. 1 means 100 percent usage.",
            l.kv_usage,
        );
        metric(
            "vllm:gpu_cache_usage_perc",
            "gauge",
            "GPU KV-cache usage (older name of kv_cache_usage_perc).",
            l.kv_usage,
        );
        metric(
            "vllm:prompt_tokens_total",
            "counter",
            "Number of prefill tokens processed.",
            self.prompt_total.load(Ordering::SeqCst) as f64,
        );
        metric(
            "vllm:generation_tokens_total",
            "counter",
            "Number of generation tokens processed.",
            self.generation_total.load(Ordering::SeqCst) as f64,
        );
        metric(
            "vllm:request_success_total",
            "counter",
            "Count of successfully processed requests.",
            self.success_total.load(Ordering::SeqCst) as f64,
        );
        out
    }
}

impl Slot {
    /// Records prompt tokens entering the KV cache.
    pub fn prompt(&mut self, n: u64) {
        self.kv += n;
        self.sched.kv_tokens.fetch_add(n, Ordering::SeqCst);
        self.sched.prompt_total.fetch_add(n, Ordering::SeqCst);
    }

    /// Records generated tokens.
    pub fn generated(&mut self, n: u64) {
        self.kv += n;
        self.sched.kv_tokens.fetch_add(n, Ordering::SeqCst);
        self.sched.generation_total.fetch_add(n, Ordering::SeqCst);
    }

    /// Marks the request as successfully finished (counted once per call).
    pub fn success(&self) {
        self.sched.success_total.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.sched.running.fetch_sub(1, Ordering::SeqCst);
        self.sched.kv_tokens.fetch_sub(self.kv, Ordering::SeqCst);
    }
}
