//! Process-wide state that every worker VM sees: shared data, shared queues, metrics, logs and
//! the clock. In Envoy these are process-wide too; VM memory is not.

use crate::abi::{status, LogLevel};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One log line written by a plugin (through `proxy_log` or WASI stdout/stderr).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogEntry {
    /// The plugin's name.
    pub plugin: String,
    /// The worker VM that wrote it.
    pub worker: usize,
    /// Its level.
    pub level: LogLevel,
    /// The text.
    pub message: String,
}

/// The kind of a metric, with Envoy's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Goes both ways.
    Gauge,
    /// Records samples.
    Histogram,
}

/// A metric as the host keeps it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Metric {
    /// Its name as defined by the plugin (Envoy shows it with a `wasmcustom.` prefix).
    pub name: String,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Current value (counter/gauge); for histograms the sum of samples.
    pub value: i64,
    /// Recorded samples (histograms only).
    pub samples: Vec<u64>,
}

/// The simulated or real clock.
#[derive(Debug, Clone)]
pub struct Clock {
    simulated: bool,
    /// Simulated wall-clock time in ns since the Unix epoch.
    wall_ns: u64,
    /// Simulated monotonic time in ns.
    mono_ns: u64,
    start: std::time::Instant,
}

impl Clock {
    /// A simulated clock starting at a fixed instant (2026-01-01T00:00:00Z).
    pub fn simulated() -> Clock {
        Clock {
            simulated: true,
            wall_ns: 1_767_225_600_000_000_000,
            mono_ns: 1_000_000_000,
            start: std::time::Instant::now(),
        }
    }

    /// The machine's real clock.
    pub fn real() -> Clock {
        Clock {
            simulated: false,
            ..Clock::simulated()
        }
    }

    /// Whether time only moves when a test advances it.
    pub fn is_simulated(&self) -> bool {
        self.simulated
    }

    /// Wall-clock time in ns since the Unix epoch.
    pub fn now_ns(&self) -> u64 {
        if self.simulated {
            self.wall_ns
        } else {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        }
    }

    /// Monotonic time in ns.
    pub fn mono_ns(&self) -> u64 {
        if self.simulated {
            self.mono_ns
        } else {
            self.mono_ns + self.start.elapsed().as_nanos() as u64
        }
    }

    /// Moves simulated time forward (no effect on a real clock).
    pub fn advance(&mut self, d: Duration) {
        if self.simulated {
            self.wall_ns += d.as_nanos() as u64;
            self.mono_ns += d.as_nanos() as u64;
        }
    }
}

#[derive(Debug, Default)]
struct Queue {
    vm_id: String,
    name: String,
    items: VecDeque<Vec<u8>>,
    /// (worker VM key, root context id) that registered the queue, notified on enqueue.
    owner: (usize, u32),
}

/// How many log lines the host keeps in memory.
pub const MAX_LOGS: usize = 100_000;

/// State shared by every VM of one simulated gateway process.
#[derive(Debug)]
pub struct HostShared {
    shared_data: HashMap<(String, String), (Vec<u8>, u32)>,
    next_cas: u32,
    queues: Vec<Queue>,
    metrics: Vec<Metric>,
    metric_ids: HashMap<String, u32>,
    /// Every log line, in order.
    pub logs: Vec<LogEntry>,
    /// Log lines recorded since the start (dropped ones included).
    pub logs_pushed: u64,
    /// The clock.
    pub clock: Clock,
    /// Queue notifications waiting for delivery: (vm key, root context id, queue id).
    pub queue_ready: Vec<(usize, u32, u32)>,
    /// Lowest level that is recorded.
    pub log_level: LogLevel,
}

impl HostShared {
    /// Fresh state with the given clock.
    pub fn new(clock: Clock) -> HostShared {
        HostShared {
            shared_data: HashMap::new(),
            next_cas: 1,
            queues: Vec::new(),
            metrics: Vec::new(),
            metric_ids: HashMap::new(),
            logs: Vec::new(),
            logs_pushed: 0,
            clock,
            queue_ready: Vec::new(),
            log_level: LogLevel::Trace,
        }
    }

    /// Records a log line. At most [`MAX_LOGS`] lines are kept (the oldest half goes when the
    /// limit is reached), so a long-running gateway does not grow without bound.
    pub fn push_log(&mut self, entry: LogEntry) {
        if self.logs.len() >= MAX_LOGS {
            self.logs.drain(..MAX_LOGS / 2);
        }
        self.logs.push(entry);
        self.logs_pushed += 1;
    }

    /// `proxy_get_shared_data`: value and CAS, or NOT_FOUND.
    pub fn get_shared(&self, vm_id: &str, key: &str) -> Result<(Vec<u8>, u32), i32> {
        self.shared_data
            .get(&(vm_id.to_string(), key.to_string()))
            .cloned()
            .ok_or(status::NOT_FOUND)
    }

    /// `proxy_set_shared_data`: cas 0 is unconditional; a stale CAS gives CAS_MISMATCH. Every
    /// successful set assigns a new CAS.
    pub fn set_shared(&mut self, vm_id: &str, key: &str, value: &[u8], cas: u32) -> i32 {
        let k = (vm_id.to_string(), key.to_string());
        if cas != 0 {
            match self.shared_data.get(&k) {
                Some((_, cur)) if *cur == cas => {}
                _ => return status::CAS_MISMATCH,
            }
        }
        let c = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        self.shared_data.insert(k, (value.to_vec(), c));
        status::OK
    }

    /// Every shared-data key of a vm_id (for tests).
    pub fn shared_keys(&self, vm_id: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .shared_data
            .keys()
            .filter(|(v, _)| v == vm_id)
            .map(|(_, k)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    /// `proxy_register_shared_queue`: returns the queue id (re-registering moves ownership).
    pub fn register_queue(&mut self, vm_id: &str, name: &str, owner: (usize, u32)) -> u32 {
        if let Some(i) = self
            .queues
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name)
        {
            self.queues[i].owner = owner;
            return i as u32 + 1;
        }
        self.queues.push(Queue {
            vm_id: vm_id.to_string(),
            name: name.to_string(),
            items: VecDeque::new(),
            owner,
        });
        self.queues.len() as u32
    }

    /// `proxy_resolve_shared_queue`.
    pub fn resolve_queue(&self, vm_id: &str, name: &str) -> Result<u32, i32> {
        self.queues
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name)
            .map(|i| i as u32 + 1)
            .ok_or(status::NOT_FOUND)
    }

    /// `proxy_enqueue_shared_queue`: posts `on_queue_ready` to the owner.
    pub fn enqueue(&mut self, id: u32, value: &[u8]) -> i32 {
        let Some(q) = self.queues.get_mut((id as usize).wrapping_sub(1)) else {
            return status::NOT_FOUND;
        };
        q.items.push_back(value.to_vec());
        let (vm, root) = q.owner;
        self.queue_ready.push((vm, root, id));
        status::OK
    }

    /// `proxy_dequeue_shared_queue`: EMPTY when there is nothing, NOT_FOUND for an unknown id.
    pub fn dequeue(&mut self, id: u32) -> Result<Vec<u8>, i32> {
        let Some(q) = self.queues.get_mut((id as usize).wrapping_sub(1)) else {
            return Err(status::NOT_FOUND);
        };
        q.items.pop_front().ok_or(status::EMPTY)
    }

    /// `proxy_define_metric`: the same name always gives the same id.
    pub fn define_metric(&mut self, kind: MetricKind, name: &str) -> u32 {
        if let Some(id) = self.metric_ids.get(name) {
            return *id;
        }
        self.metrics.push(Metric {
            name: name.to_string(),
            kind,
            value: 0,
            samples: Vec::new(),
        });
        let id = self.metrics.len() as u32;
        self.metric_ids.insert(name.to_string(), id);
        id
    }

    fn metric_mut(&mut self, id: u32) -> Option<&mut Metric> {
        self.metrics.get_mut((id as usize).wrapping_sub(1))
    }

    /// `proxy_increment_metric` with Envoy's rules: counters only go up (offset <= 0 is
    /// BAD_ARGUMENT), gauges both ways, histograms cannot be incremented.
    pub fn increment_metric(&mut self, id: u32, offset: i64) -> i32 {
        let Some(m) = self.metric_mut(id) else {
            return status::NOT_FOUND;
        };
        match m.kind {
            MetricKind::Counter if offset > 0 => m.value += offset,
            MetricKind::Gauge => m.value += offset,
            _ => return status::BAD_ARGUMENT,
        }
        status::OK
    }

    /// `proxy_record_metric`: record on a counter adds, on a gauge sets, on a histogram
    /// records a sample.
    pub fn record_metric(&mut self, id: u32, value: u64) -> i32 {
        let Some(m) = self.metric_mut(id) else {
            return status::NOT_FOUND;
        };
        match m.kind {
            MetricKind::Counter => m.value += value as i64,
            MetricKind::Gauge => m.value = value as i64,
            MetricKind::Histogram => {
                m.value += value as i64;
                m.samples.push(value);
            }
        }
        status::OK
    }

    /// `proxy_get_metric`: BAD_ARGUMENT on a histogram.
    pub fn get_metric(&self, id: u32) -> Result<u64, i32> {
        let m = self
            .metrics
            .get((id as usize).wrapping_sub(1))
            .ok_or(status::NOT_FOUND)?;
        if m.kind == MetricKind::Histogram {
            return Err(status::BAD_ARGUMENT);
        }
        Ok(m.value as u64)
    }

    /// All metrics by name.
    pub fn metrics(&self) -> BTreeMap<String, Metric> {
        self.metrics
            .iter()
            .map(|m| (m.name.clone(), m.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_rules() {
        let mut h = HostShared::new(Clock::simulated());
        assert_eq!(h.get_shared("vm", "k"), Err(status::NOT_FOUND));
        assert_eq!(h.set_shared("vm", "k", b"1", 0), status::OK);
        let (_, cas) = h.get_shared("vm", "k").unwrap();
        assert_eq!(h.set_shared("vm", "k", b"2", cas), status::OK);
        assert_eq!(h.set_shared("vm", "k", b"3", cas), status::CAS_MISMATCH);
        assert_eq!(h.get_shared("vm", "k").unwrap().0, b"2");
        assert_eq!(h.get_shared("other", "k"), Err(status::NOT_FOUND));
    }

    #[test]
    fn metric_rules() {
        let mut h = HostShared::new(Clock::simulated());
        let c = h.define_metric(MetricKind::Counter, "c");
        let g = h.define_metric(MetricKind::Gauge, "g");
        let hi = h.define_metric(MetricKind::Histogram, "h");
        assert_eq!(h.define_metric(MetricKind::Counter, "c"), c);
        assert_eq!(h.increment_metric(c, 0), status::BAD_ARGUMENT);
        assert_eq!(h.increment_metric(c, -1), status::BAD_ARGUMENT);
        assert_eq!(h.increment_metric(c, 2), status::OK);
        assert_eq!(h.record_metric(c, 3), status::OK);
        assert_eq!(h.get_metric(c), Ok(5));
        assert_eq!(h.increment_metric(g, -4), status::OK);
        assert_eq!(h.get_metric(g), Ok((-4i64) as u64));
        assert_eq!(h.increment_metric(hi, 1), status::BAD_ARGUMENT);
        assert_eq!(h.record_metric(hi, 7), status::OK);
        assert_eq!(h.get_metric(hi), Err(status::BAD_ARGUMENT));
    }

    #[test]
    fn logs_are_bounded() {
        let mut h = HostShared::new(Clock::simulated());
        for i in 0..=MAX_LOGS {
            h.push_log(LogEntry {
                plugin: "p".into(),
                worker: 0,
                level: LogLevel::Info,
                message: i.to_string(),
            });
        }
        assert_eq!(h.logs.len(), MAX_LOGS / 2 + 1);
        assert_eq!(h.logs[0].message, (MAX_LOGS / 2).to_string());
        assert_eq!(
            h.logs.last().map(|l| l.message.clone()),
            Some(MAX_LOGS.to_string())
        );
    }

    #[test]
    fn queues() {
        let mut h = HostShared::new(Clock::simulated());
        let q = h.register_queue("vm", "q", (0, 1));
        assert_eq!(h.resolve_queue("vm", "q"), Ok(q));
        assert_eq!(h.resolve_queue("vm", "nope"), Err(status::NOT_FOUND));
        assert_eq!(h.dequeue(q), Err(status::EMPTY));
        assert_eq!(h.enqueue(q, b"x"), status::OK);
        assert_eq!(h.queue_ready, vec![(0, 1, q)]);
        assert_eq!(h.dequeue(q), Ok(b"x".to_vec()));
        assert_eq!(h.enqueue(99, b"x"), status::NOT_FOUND);
    }
}
