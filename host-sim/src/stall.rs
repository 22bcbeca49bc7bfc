//! Why a stream has not ended: which filter holds which part of it, or which call-out it waits
//! for. Used for [`StreamRecord::incomplete`](crate::StreamRecord::incomplete) and by
//! `host-sim run` to explain a stream that can never finish.

use crate::sim::Sim;
use crate::stream_data::{DirState, StreamData};

impl Sim {
    /// A one-line account of what keeps stream `sid` open.
    pub fn stall_reason(&self, sid: u64) -> String {
        let Some(s) = self.streams.get(sid) else {
            return format!("no stream {sid}");
        };
        if s.finished {
            return "finished".into();
        }
        let vms: Vec<usize> = s.filters.iter().map(|f| f.vm).collect();
        let calls = self.calls_waiting(&vms);
        let Ok(d) = s.data.lock() else {
            return "stream state unavailable".into();
        };
        let mut held = Vec::new();
        for (i, f) in s.filters.iter().enumerate() {
            let name = self
                .chain
                .generation(f.plugin, f.gen)
                .map(|g| g.spec.name.clone())
                .unwrap_or_default();
            let slot = &d.filters[i];
            for (dir, st) in [("request", &slot.req), ("response", &slot.resp)] {
                if let Some(what) = holding(st, dir) {
                    held.push(format!("filter {i} ({name}) {what}"));
                }
            }
        }
        let mut parts = held;
        if !calls.is_empty() {
            parts.push(format!("waiting for {}", calls.join(", ")));
        }
        if parts.is_empty() {
            parts.push(where_it_stands(
                s.upstream_started,
                &d,
                s.record.response.status,
            ));
        }
        parts.join("; ")
    }
}

/// What one direction of one filter holds, if anything.
fn holding(st: &DirState, dir: &str) -> Option<String> {
    if st.headers_paused {
        let kind = if st.headers_stop_single {
            "StopIteration"
        } else {
            "stop all"
        };
        return Some(format!(
            "holds the {dir} headers (on_{dir}_headers paused: {kind}) and was never continued"
        ));
    }
    if st.buffering && st.end_passed {
        return None;
    }
    if st.buffering {
        let end = if st.end_seen {
            ", the end of the body has arrived"
        } else {
            ""
        };
        return Some(format!(
            "holds {} bytes of the {dir} body (on_{dir}_body paused{end}) and was never continued",
            st.body.len()
        ));
    }
    if st.trailers_paused {
        return Some(format!(
            "holds the {dir} trailers (on_{dir}_trailers paused) and was never continued"
        ));
    }
    None
}

/// Where a stream with no filter holding it stands.
fn where_it_stands(upstream_started: bool, d: &StreamData, status: u16) -> String {
    if !upstream_started {
        return "the request has not reached the upstream".into();
    }
    if d.resp_headers.is_empty() {
        return "waiting for the upstream's response".into();
    }
    if status == 0 {
        return "the response headers have not reached the client".into();
    }
    "the response body has not ended".into()
}
