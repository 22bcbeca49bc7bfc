//! The per-stream state that hostcalls read and write: header maps, per-filter body buffers,
//! header access windows, filter state and stream properties.
//!
//! One [`StreamData`] is shared by every filter of a chain on one stream (headers flow from one
//! filter to the next in Envoy, so they are one map); the body buffers and access windows are
//! per filter.

use crate::abi::Headers;
use std::collections::HashMap;

/// Which way data flows through a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to upstream.
    Request,
    /// Upstream to client.
    Response,
}

/// One direction of one filter on one stream.
#[derive(Debug, Default)]
pub struct DirState {
    /// Headers are readable and writable (inside the headers callback, or while paused there).
    pub header_window: bool,
    /// Trailers are readable and writable (inside the trailers callback, or while paused there).
    pub trailer_window: bool,
    /// The filter stopped iteration in its headers callback.
    pub headers_paused: bool,
    /// The pause of `headers_paused` is Envoy's plain `StopIteration`: headers wait here, but
    /// body data and trailers still go through this filter's callbacks. Higress's host gives a
    /// module that: for ABI `proxy_abi_version_0_2_100` it passes a headers StopIteration (1)
    /// to Envoy unchanged in both directions, where stock hosts turn it into "stop all and
    /// buffer" (unless `allow_on_headers_stop_iteration`). Higress's Go plugins rely on it to
    /// read the body before releasing headers.
    pub headers_stop_single: bool,
    /// Headers have passed this filter.
    pub headers_passed: bool,
    /// The headers carried end of stream.
    pub headers_end: bool,
    /// Body bytes held at this filter (paused headers, or a body callback that returned Pause).
    pub body: Vec<u8>,
    /// The last body callback returned Pause: the next one sees the accumulated body.
    pub buffering: bool,
    /// A body callback is running now (the body buffer is the callback's buffer).
    pub in_body_callback: bool,
    /// End of stream has reached this filter's input.
    pub end_seen: bool,
    /// End of stream has passed this filter.
    pub end_passed: bool,
    /// Trailers held at this filter.
    pub held_trailers: Option<Headers>,
    /// The trailers callback returned Pause.
    pub trailers_paused: bool,
}

/// Per-filter state of one stream.
#[derive(Debug, Default)]
pub struct FilterSlot {
    /// Request direction.
    pub req: DirState,
    /// Response direction.
    pub resp: DirState,
    /// The plugin context exists (created lazily at request headers).
    pub created: bool,
    /// The filter is skipped (FAIL_OPEN after a VM failure).
    pub skipped: bool,
}

impl FilterSlot {
    /// The state of one direction.
    pub fn dir(&mut self, d: Dir) -> &mut DirState {
        match d {
            Dir::Request => &mut self.req,
            Dir::Response => &mut self.resp,
        }
    }
}

/// Facts about a stream that plugins read as properties.
#[derive(Debug, Clone)]
pub struct StreamProps {
    /// `route_name` / `xds.route_name`.
    pub route_name: String,
    /// `cluster_name` / `xds.cluster_name`.
    pub cluster_name: String,
    /// `source.address` (with port).
    pub source_address: String,
    /// `destination.address` (with port).
    pub destination_address: String,
    /// `request.id`.
    pub request_id: String,
    /// `request.protocol`.
    pub protocol: String,
    /// `connection.id`.
    pub connection_id: u64,
    /// `upstream.address`: empty (the property is absent) until an upstream host was chosen.
    /// A router that picks the host before the filters run (upstream filters) sets it up
    /// front; otherwise it becomes `upstream_host` when the request reaches the upstream.
    pub upstream_address: String,
    /// The address the upstream host has once the request reaches it (`host:port`).
    pub upstream_host: String,
    /// Envoy's metadata properties as JSON, by property name: `metadata` (dynamic metadata),
    /// `route_metadata`, `listener_metadata`, `cluster_metadata`, `upstream_host_metadata`.
    /// Each is a `Metadata` message in JSON form (`{"filter_metadata": {"ns": {...}}}`).
    pub metadata: HashMap<String, serde_json::Value>,
    /// Extra properties a test sets (path segments joined by '.').
    pub extra: HashMap<String, Vec<u8>>,
}

/// The metadata property names Envoy resolves (see [`StreamProps::metadata`]).
pub const METADATA_PROPERTIES: &[&str] = &[
    "metadata",
    "route_metadata",
    "listener_metadata",
    "cluster_metadata",
    "upstream_host_metadata",
];

impl Default for StreamProps {
    fn default() -> Self {
        StreamProps {
            route_name: "default".into(),
            cluster_name: "upstream".into(),
            source_address: "127.0.0.1:50000".into(),
            destination_address: "127.0.0.1:10000".into(),
            request_id: String::new(),
            protocol: "HTTP/1.1".into(),
            connection_id: 1,
            upstream_address: String::new(),
            upstream_host: "127.0.0.1:8080".into(),
            metadata: HashMap::new(),
            extra: HashMap::new(),
        }
    }
}

/// All hostcall-visible state of one stream.
#[derive(Debug, Default)]
pub struct StreamData {
    /// Request headers (lowercase keys).
    pub req_headers: Headers,
    /// Request trailers.
    pub req_trailers: Headers,
    /// Response headers.
    pub resp_headers: Headers,
    /// Response trailers.
    pub resp_trailers: Headers,
    /// One slot per filter in the chain.
    pub filters: Vec<FilterSlot>,
    /// `set_property` values (Envoy filter state `wasm.<path>`), shared by the chain.
    pub filter_state: HashMap<String, Vec<u8>>,
    /// Properties of the stream.
    pub props: StreamProps,
    /// `on_log` is running: headers are readable copies.
    pub in_log: bool,
    /// Request body bytes received from the client.
    pub req_body_size: u64,
    /// Response body bytes sent to the client.
    pub resp_body_size: u64,
    /// `response.code`, once known.
    pub response_code: Option<u16>,
    /// `response.code_details`.
    pub code_details: String,
    /// Start time (ns since epoch).
    pub start_ns: u64,
    /// `clear_route_cache` was called.
    pub route_cache_cleared: bool,
    /// Higress `proxy_set_upstream_override_host`: the upstream host to use.
    pub upstream_override_host: Option<String>,
}

impl StreamData {
    /// The header map of a direction.
    pub fn headers(&mut self, d: Dir) -> &mut Headers {
        match d {
            Dir::Request => &mut self.req_headers,
            Dir::Response => &mut self.resp_headers,
        }
    }

    /// The trailer map of a direction.
    pub fn trailers(&mut self, d: Dir) -> &mut Headers {
        match d {
            Dir::Request => &mut self.req_trailers,
            Dir::Response => &mut self.resp_trailers,
        }
    }
}

/// Header map operations with Envoy's semantics.
pub mod hmap {
    use crate::abi::Headers;

    /// First value of `key` (keys compare case-insensitively).
    pub fn get<'a>(h: &'a Headers, key: &str) -> Option<&'a [u8]> {
        h.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice())
    }

    /// Appends a value (a duplicate when the key exists).
    pub fn add(h: &mut Headers, key: &str, value: &[u8]) {
        h.push((key.to_ascii_lowercase(), value.to_vec()));
    }

    /// Sets the only value of `key`: the first entry is updated in place and the others go.
    pub fn replace(h: &mut Headers, key: &str, value: &[u8]) {
        let key = key.to_ascii_lowercase();
        if let Some(i) = h.iter().position(|(k, _)| *k == key) {
            h[i].1 = value.to_vec();
            let mut n = 0;
            h.retain(|(k, _)| {
                n += 1;
                n - 1 == i || *k != key
            });
        } else {
            h.push((key, value.to_vec()));
        }
    }

    /// Removes every value of `key`.
    pub fn remove(h: &mut Headers, key: &str) {
        h.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }
}

#[cfg(test)]
mod tests {
    use super::hmap;

    #[test]
    fn header_semantics() {
        let mut h = vec![];
        hmap::add(&mut h, "X-A", b"1");
        hmap::add(&mut h, "x-b", b"2");
        hmap::add(&mut h, "x-a", b"3");
        assert_eq!(hmap::get(&h, "x-a"), Some(&b"1"[..]));
        assert_eq!(h[0].0, "x-a");
        hmap::replace(&mut h, "X-A", b"9");
        assert_eq!(
            h,
            vec![("x-a".into(), b"9".to_vec()), ("x-b".into(), b"2".to_vec())]
        );
        hmap::remove(&mut h, "x-a");
        assert_eq!(h.len(), 1);
        hmap::replace(&mut h, "new", b"v");
        assert_eq!(hmap::get(&h, "new"), Some(&b"v"[..]));
    }
}
