//! A small parser for the Prometheus text exposition format, reading the vLLM gauges.

/// The load figures of one vLLM server.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VllmLoad {
    /// `vllm:num_requests_waiting` (summed over label sets).
    pub waiting: f64,
    /// `vllm:num_requests_running` (summed over label sets).
    pub running: f64,
    /// `vllm:kv_cache_usage_perc` (or the older `vllm:gpu_cache_usage_perc`), 0..1; the
    /// highest over label sets.
    pub kv_cache: f64,
}

/// Parses a `/metrics` body. `None` when none of the three metrics is present (not a vLLM
/// server, or an error page), so the caller treats the backend's metrics as missing.
pub fn parse_vllm(text: &str) -> Option<VllmLoad> {
    let mut load = VllmLoad::default();
    let mut seen = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = sample(line) else {
            continue;
        };
        match name {
            "vllm:num_requests_waiting" => load.waiting += value,
            "vllm:num_requests_running" => load.running += value,
            "vllm:kv_cache_usage_perc" | "vllm:gpu_cache_usage_perc" => {
                load.kv_cache = load.kv_cache.max(value)
            }
            _ => continue,
        }
        seen = true;
    }
    seen.then_some(load)
}

/// Splits a sample line into metric name and value (labels and timestamp skipped). Negative,
/// NaN and infinite values are rejected.
fn sample(line: &str) -> Option<(&str, f64)> {
    let name_end = line.find(['{', ' ', '\t'])?;
    let name = line.get(..name_end)?;
    let mut rest = line.get(name_end..)?;
    if rest.starts_with('{') {
        // Label values may contain '}' inside quotes; walk the quotes.
        let mut in_quotes = false;
        let mut escaped = false;
        let mut close = None;
        for (i, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if in_quotes => escaped = true,
                '"' => in_quotes = !in_quotes,
                '}' if !in_quotes => {
                    close = Some(i);
                    break;
                }
                _ => {}
            }
        }
        rest = rest.get(close? + 1..)?;
    }
    let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vllm_gauges() {
        let text = "# HELP vllm:num_requests_waiting Waiting.\n\
# TYPE vllm:num_requests_waiting gauge\n\
vllm:num_requests_waiting{model_name=\"m\",engine=\"0\"} 3.0\n\
vllm:num_requests_waiting{model_name=\"m\",engine=\"1\"} 2\n\
vllm:num_requests_running{model_name=\"a}b\"} 7 1700000000000\n\
vllm:kv_cache_usage_perc{model_name=\"m\"} 0.25\n\
vllm:kv_cache_usage_perc{model_name=\"n\"} 0.5\n\
vllm:num_requests_waiting_total 99\n\
other_metric 1\n";
        let l = parse_vllm(text).unwrap();
        assert_eq!(l.waiting, 5.0);
        assert_eq!(l.running, 7.0);
        assert_eq!(l.kv_cache, 0.5);
    }

    #[test]
    fn missing_or_garbage_is_none() {
        assert_eq!(parse_vllm("up 1\n"), None);
        assert_eq!(parse_vllm("<html>502</html>"), None);
        assert_eq!(parse_vllm("vllm:num_requests_waiting NaN\n"), None);
        let old = parse_vllm("vllm:gpu_cache_usage_perc 0.75\n").unwrap();
        assert_eq!(old.kv_cache, 0.75);
    }
}
