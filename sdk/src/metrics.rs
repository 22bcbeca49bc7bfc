//! Counters, gauges and histograms with labels, defined once per VM.
//!
//! Naming convention: `<name>;<label>=<value>;<label>=<value>` in the order given, e.g.
//! `aigw_tokens_total;model=gpt-4o;route=r1`. Envoy shows it as
//! `wasmcustom.aigw_tokens_total;model=gpt-4o;route=r1`; to get real Prometheus labels add one
//! tag extractor per label to Envoy's `stats_config.stats_tags`, e.g.
//! `{tag_name: model, regex: "(;model=([^;]*))"}` (the first group is removed from the name,
//! the second is the value). Names keep `[A-Za-z0-9_.:]` (other bytes become `_`); label
//! values have `;`, `=` and control characters replaced by `_` so they cannot break the form.
//!
//! Metric ids are cached per VM: the host is asked to define a name only the first time.
//!
//! ```no_run
//! use aigw::metrics;
//!
//! if let Ok(c) = metrics::counter("aigw_tokens_total", &[("model", "gpt-4o"), ("kind", "input")]) {
//!     let _ = c.increment(42);
//! }
//! ```

use crate::host::{self, HostError, MetricKind};
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static IDS: RefCell<HashMap<String, u32>> = RefCell::new(HashMap::new());
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Writes the full metric name for `name` and `labels` into `out` (cleared first).
pub fn full_name(name: &str, labels: &[(&str, &str)], out: &mut String) {
    out.clear();
    push_clean(out, name, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':')
    });
    for (k, v) in labels {
        out.push(';');
        push_clean(out, k, |c| c.is_ascii_alphanumeric() || c == '_');
        out.push('=');
        push_clean(out, v, |c| !matches!(c, ';' | '=') && !c.is_control());
    }
}

fn push_clean(out: &mut String, s: &str, keep: impl Fn(char) -> bool) {
    out.extend(s.chars().map(|c| if keep(c) { c } else { '_' }));
}

/// The id for a metric, defining it with the host the first time. The cache key includes
/// the kind, so a counter and a gauge of the same name do not collide in the cache.
fn metric_id(kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> Result<u32, HostError> {
    SCRATCH.with(|scratch| {
        let mut key = scratch
            .try_borrow_mut()
            .map_err(|_| HostError::InternalFailure)?;
        full_name(name, labels, &mut key);
        key.push(match kind {
            MetricKind::Counter => 'c',
            MetricKind::Gauge => 'g',
            MetricKind::Histogram => 'h',
        });
        let cached = IDS.with(|ids| {
            ids.try_borrow()
                .ok()
                .and_then(|ids| ids.get(key.as_str()).copied())
        });
        if let Some(id) = cached {
            return Ok(id);
        }
        let full = key.get(..key.len() - 1).unwrap_or_default();
        let id = host::define_metric(kind, full)?;
        IDS.with(|ids| {
            if let Ok(mut ids) = ids.try_borrow_mut() {
                ids.insert(key.clone(), id);
            }
        });
        Ok(id)
    })
}

/// A monotonic counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter(u32);

/// A value that goes up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauge(u32);

/// A distribution of recorded values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram(u32);

/// The counter `name` with `labels` (defined on first use).
pub fn counter(name: &str, labels: &[(&str, &str)]) -> Result<Counter, HostError> {
    metric_id(MetricKind::Counter, name, labels).map(Counter)
}

/// The gauge `name` with `labels`.
pub fn gauge(name: &str, labels: &[(&str, &str)]) -> Result<Gauge, HostError> {
    metric_id(MetricKind::Gauge, name, labels).map(Gauge)
}

/// The histogram `name` with `labels`.
pub fn histogram(name: &str, labels: &[(&str, &str)]) -> Result<Histogram, HostError> {
    metric_id(MetricKind::Histogram, name, labels).map(Histogram)
}

impl Counter {
    /// Adds `by` (0 is a no-op; hosts reject non-positive increments).
    pub fn increment(self, by: u64) -> Result<(), HostError> {
        if by == 0 {
            return Ok(());
        }
        host::increment_metric(self.0, i64::try_from(by).unwrap_or(i64::MAX))
    }

    /// The current value.
    pub fn value(self) -> Result<u64, HostError> {
        host::get_metric(self.0)
    }
}

impl Gauge {
    /// Sets the value.
    pub fn set(self, value: u64) -> Result<(), HostError> {
        host::record_metric(self.0, value)
    }

    /// Adds `delta` (may be negative).
    pub fn adjust(self, delta: i64) -> Result<(), HostError> {
        if delta == 0 {
            return Ok(());
        }
        host::increment_metric(self.0, delta)
    }

    /// The current value.
    pub fn value(self) -> Result<u64, HostError> {
        host::get_metric(self.0)
    }
}

impl Histogram {
    /// Records a sample.
    pub fn record(self, value: u64) -> Result<(), HostError> {
        host::record_metric(self.0, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming() {
        let mut s = String::new();
        full_name(
            "aigw_tokens_total",
            &[("model", "gpt-4.1"), ("route", "r1")],
            &mut s,
        );
        assert_eq!(s, "aigw_tokens_total;model=gpt-4.1;route=r1");
        full_name("bad name!", &[("k-y", "a;b=c\n")], &mut s);
        assert_eq!(s, "bad_name_;k_y=a_b_c_");
        full_name("plain", &[], &mut s);
        assert_eq!(s, "plain");
    }

    #[test]
    fn native_build_reports_host_error() {
        assert_eq!(counter("x", &[]), Err(HostError::Unimplemented));
    }
}
