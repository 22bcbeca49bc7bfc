//! The client request and the upstream response a test feeds to [`crate::Sim::run`].

use crate::sim::StreamOptions;

/// A client request for [`Sim::run`].
#[derive(Debug, Clone)]
pub struct Request {
    /// `:method`.
    pub method: String,
    /// `:path`.
    pub path: String,
    /// `:authority`.
    pub authority: String,
    /// Other headers.
    pub headers: Vec<(String, String)>,
    /// The body (empty: headers carry end of stream).
    pub body: Vec<u8>,
    /// Deliver the body in pieces of this size (0: one piece).
    pub chunk_size: usize,
    /// Trailers (sent after the body).
    pub trailers: Vec<(String, String)>,
    /// Stream options (worker, properties).
    pub opts: StreamOptions,
}

impl Request {
    /// A request with no body.
    pub fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            authority: "gateway.local".into(),
            headers: vec![],
            body: vec![],
            chunk_size: 0,
            trailers: vec![],
            opts: StreamOptions::default(),
        }
    }

    /// A POST with a JSON body.
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Request {
        Request {
            method: "POST".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            ..Request::get(path)
        }
    }

    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> Request {
        self.headers.push((k.into(), v.into()));
        self
    }

    /// Sets `:authority`.
    pub fn authority(mut self, a: &str) -> Request {
        self.authority = a.into();
        self
    }

    /// Delivers the body in pieces of `n` bytes.
    pub fn chunked(mut self, n: usize) -> Request {
        self.chunk_size = n;
        self
    }

    /// Serves the stream on this worker.
    pub fn worker(mut self, w: usize) -> Request {
        self.opts.worker = Some(w);
        self
    }

    /// Sets the route name plugins see.
    pub fn route(mut self, r: &str) -> Request {
        self.opts.props.route_name = r.into();
        self
    }

    /// Sets the upstream cluster name plugins see (`cluster_name`).
    pub fn cluster(mut self, c: &str) -> Request {
        self.opts.props.cluster_name = c.into();
        self
    }

    /// Sets the client address plugins see (`source.address`, `host:port`).
    pub fn source_address(mut self, a: &str) -> Request {
        self.opts.props.source_address = a.into();
        self
    }

    /// Sets one of Envoy's metadata properties (`metadata`, `route_metadata`,
    /// `listener_metadata`, `cluster_metadata`, `upstream_host_metadata`) to a `Metadata`
    /// message in JSON form, e.g. `{"filter_metadata": {"ns": {"key": "value"}}}`.
    pub fn metadata(mut self, property: &str, value: serde_json::Value) -> Request {
        self.opts.props.metadata.insert(property.into(), value);
        self
    }

    /// The header list as the plugin sees it (pseudo-headers first). A request with a body
    /// and neither `content-length` nor `transfer-encoding` gets the `content-length` an
    /// HTTP/1.1 client sends, which Envoy passes on to the filters.
    pub fn header_list(&self, request_id: &str) -> Vec<(String, String)> {
        let mut h = vec![
            (":method".to_string(), self.method.clone()),
            (":path".to_string(), self.path.clone()),
            (":authority".to_string(), self.authority.clone()),
            (":scheme".to_string(), "http".to_string()),
        ];
        for (k, v) in &self.headers {
            h.push((k.to_ascii_lowercase(), v.clone()));
        }
        let framed = h
            .iter()
            .any(|(k, _)| k == "content-length" || k == "transfer-encoding");
        if !self.body.is_empty() && !framed {
            h.push(("content-length".into(), self.body.len().to_string()));
        }
        if !h.iter().any(|(k, _)| k == "x-request-id") {
            h.push(("x-request-id".into(), request_id.into()));
        }
        h
    }
}

/// An upstream response for [`Sim::run`].
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body pieces, delivered in order.
    pub chunks: Vec<Vec<u8>>,
    /// Trailers.
    pub trailers: Vec<(String, String)>,
}

impl UpstreamResponse {
    /// A JSON response in one piece.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> UpstreamResponse {
        UpstreamResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks: vec![body.into()],
            trailers: vec![],
        }
    }

    /// A `text/event-stream` response in one piece.
    pub fn sse(body: impl Into<Vec<u8>>) -> UpstreamResponse {
        UpstreamResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            chunks: vec![body.into()],
            trailers: vec![],
        }
    }

    /// Re-splits the body into pieces of `n` bytes.
    pub fn chunked(mut self, n: usize) -> UpstreamResponse {
        let all: Vec<u8> = self.chunks.concat();
        self.chunks = if n == 0 {
            vec![all]
        } else {
            all.chunks(n).map(|c| c.to_vec()).collect()
        };
        self
    }

    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> UpstreamResponse {
        self.headers.push((k.into(), v.into()));
        self
    }

    /// The headers as an HTTP/1.1 upstream sends them: a body that is not an event stream
    /// and has neither `content-length` nor `transfer-encoding` gets its `content-length`
    /// (Envoy's filters see it).
    pub fn wire_headers(&self) -> Vec<(String, String)> {
        let mut h = self.headers.clone();
        let framed = h.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
        });
        let sse = h.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("content-type") && v.starts_with("text/event-stream")
        });
        let len: usize = self.chunks.iter().map(Vec::len).sum();
        if len > 0 && !sse && !framed {
            h.push(("content-length".into(), len.to_string()));
        }
        h
    }
}
