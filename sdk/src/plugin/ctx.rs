//! The per-stream context handed to every [`Plugin`] handler.

use super::callout::{CallRequest, CallResult};
use super::Plugin;
use crate::body::{whole_step, BodyChunk, OverLimit, Rewriter, Whole, WholeStep};
use crate::host::{self, BufferType, HostError, MapType, StreamType};
use crate::reply::{ErrorReply, Protocol};
use std::rc::Rc;
use std::time::Duration;

type StreamCallback<P> = Box<dyn FnOnce(&mut P, &mut Ctx<P>, CallResult)>;

/// Everything a handler can do on its stream: the selected configuration, root state,
/// headers, bodies, local replies, properties and call-outs. All host-facing methods return
/// `Result` and never panic (for example headers touched outside their window give
/// `Err(HostError::BadArgument)`).
pub struct Ctx<P: Plugin> {
    id: u32,
    pub(crate) root_id: u32,
    config: Rc<P::Config>,
    root: Rc<P::Root>,
    protocol: Protocol,
    path: String,
    replied: bool,
    request_overflow: bool,
    response_overflow: bool,
    callouts: Vec<(u32, StreamCallback<P>)>,
    pub(crate) grpc_callouts: Vec<(u32, super::grpc::StreamGrpcCallback<P>)>,
    #[cfg(feature = "higress")]
    pub(crate) redis_callouts: Vec<(u32, crate::redis::StreamRedisCallback<P>)>,
}

impl<P: Plugin> Ctx<P> {
    pub(crate) fn new(
        id: u32,
        root_id: u32,
        config: Rc<P::Config>,
        root: Rc<P::Root>,
        path: String,
    ) -> Ctx<P> {
        Ctx {
            id,
            root_id,
            config,
            root,
            protocol: Protocol::from_path(&path),
            path,
            replied: false,
            request_overflow: false,
            response_overflow: false,
            callouts: Vec::new(),
            grpc_callouts: Vec::new(),
            #[cfg(feature = "higress")]
            redis_callouts: Vec::new(),
        }
    }

    /// The host's id of this stream context.
    pub fn context_id(&self) -> u32 {
        self.id
    }

    /// The configuration selected for this request (rule or global).
    pub fn config(&self) -> &P::Config {
        &self.config
    }

    /// The configuration as a shared handle (to keep it in a call-out closure).
    pub fn config_rc(&self) -> Rc<P::Config> {
        Rc::clone(&self.config)
    }

    /// The root state shared with the root context and the other streams of this VM.
    pub fn root(&self) -> &P::Root {
        &self.root
    }

    /// The request's `:path` (with query), as it was at request headers; empty when absent.
    pub fn request_path(&self) -> &str {
        &self.path
    }

    /// The client's API dialect, detected from the request path; decides error shapes.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Overrides the detected protocol (for plugins that know better, e.g. from the body).
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }

    /// Whether this plugin already sent a local reply on this stream.
    pub fn replied(&self) -> bool {
        self.replied
    }

    // ---- headers -------------------------------------------------------------------------

    /// A request header (first value), `None` when absent.
    pub fn request_header(&self, name: &str) -> Result<Option<String>, HostError> {
        host::get_header(MapType::RequestHeaders, name)
    }

    /// Sets a request header, replacing existing values.
    pub fn set_request_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        host::set_header(MapType::RequestHeaders, name, value)
    }

    /// Adds a request header value, keeping existing ones.
    pub fn add_request_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        host::add_header(MapType::RequestHeaders, name, value)
    }

    /// Removes a request header.
    pub fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        host::remove_header(MapType::RequestHeaders, name)
    }

    /// All request headers in order.
    pub fn request_headers(&self) -> Result<Vec<(String, String)>, HostError> {
        host::get_headers(MapType::RequestHeaders)
    }

    /// A response header (first value), `None` when absent.
    pub fn response_header(&self, name: &str) -> Result<Option<String>, HostError> {
        host::get_header(MapType::ResponseHeaders, name)
    }

    /// Sets a response header, replacing existing values.
    pub fn set_response_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        host::set_header(MapType::ResponseHeaders, name, value)
    }

    /// Adds a response header value.
    pub fn add_response_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        host::add_header(MapType::ResponseHeaders, name, value)
    }

    /// Removes a response header.
    pub fn remove_response_header(&self, name: &str) -> Result<(), HostError> {
        host::remove_header(MapType::ResponseHeaders, name)
    }

    /// All response headers in order.
    pub fn response_headers(&self) -> Result<Vec<(String, String)>, HostError> {
        host::get_headers(MapType::ResponseHeaders)
    }

    // ---- bodies --------------------------------------------------------------------------

    /// The request body bytes available in this callback (the chunk, or everything buffered
    /// after a pause).
    pub fn request_body(&self, chunk: BodyChunk) -> Result<Vec<u8>, HostError> {
        read_body(BufferType::RequestBody, chunk)
    }

    /// The response body bytes available in this callback.
    pub fn response_body(&self, chunk: BodyChunk) -> Result<Vec<u8>, HostError> {
        read_body(BufferType::ResponseBody, chunk)
    }

    /// Replaces the request body bytes of this callback with `data`.
    pub fn replace_request_body(&self, data: &[u8]) -> Result<(), HostError> {
        host::replace_buffer(BufferType::RequestBody, data)
    }

    /// Replaces the response body bytes of this callback with `data`.
    pub fn replace_response_body(&self, data: &[u8]) -> Result<(), HostError> {
        host::replace_buffer(BufferType::ResponseBody, data)
    }

    /// Collects the whole request body, at most `limit` bytes. Return `whole.flow()` unless
    /// it is `Ready`. Over the limit, a 413 error in the client's protocol is sent.
    ///
    /// ```no_run
    /// # use aigw::prelude::*;
    /// # #[derive(Default)] struct P;
    /// # #[derive(serde::Deserialize)] struct C; impl PlainConfig for C {}
    /// # impl Plugin for P { const NAME: &'static str = "p"; type Config = C; type Root = ();
    /// fn on_request_body(&mut self, ctx: &mut Ctx<Self>, chunk: BodyChunk) -> Flow {
    ///     let body = match ctx.whole_request_body(chunk, 1 << 20) {
    ///         Whole::Ready(body) => body,
    ///         other => return other.flow(),
    ///     };
    ///     // ... inspect or rewrite `body` ...
    ///     Flow::Continue
    /// }
    /// # }
    /// ```
    pub fn whole_request_body(&mut self, chunk: BodyChunk, limit: usize) -> Whole {
        self.whole_request_body_or(chunk, limit, OverLimit::Reject)
    }

    /// Like [`Ctx::whole_request_body`], with a choice of what happens over the limit:
    /// [`OverLimit::Reject`] sends the 413 error reply, [`OverLimit::Pass`] sends nothing and
    /// reports `Whole::TooLarge { replied: false }` (flow `Continue`), so the plugin can let
    /// the body through unchecked or answer in its own way.
    pub fn whole_request_body_or(
        &mut self,
        chunk: BodyChunk,
        limit: usize,
        over_limit: OverLimit,
    ) -> Whole {
        if self.request_overflow {
            return Whole::TooLarge {
                replied: self.replied,
            };
        }
        match whole_step(chunk, limit) {
            WholeStep::Wait => Whole::Pending,
            WholeStep::Read => read_whole(BufferType::RequestBody, chunk),
            WholeStep::Overflow if over_limit == OverLimit::Pass => {
                self.request_overflow = true;
                Whole::TooLarge { replied: false }
            }
            WholeStep::Overflow => {
                self.request_overflow = true;
                let err =
                    ErrorReply::new(413, format!("request body is larger than {limit} bytes"));
                let replied = self.send_error(&err).is_ok();
                Whole::TooLarge { replied }
            }
        }
    }

    /// Collects the whole response body, at most `limit` bytes. Over the limit nothing is
    /// sent: the body passes through unmodified (`Whole::TooLarge { replied: false }`, flow
    /// `Continue`).
    pub fn whole_response_body(&mut self, chunk: BodyChunk, limit: usize) -> Whole {
        if self.response_overflow {
            return Whole::TooLarge { replied: false };
        }
        match whole_step(chunk, limit) {
            WholeStep::Wait => Whole::Pending,
            WholeStep::Read => read_whole(BufferType::ResponseBody, chunk),
            WholeStep::Overflow => {
                self.response_overflow = true;
                Whole::TooLarge { replied: false }
            }
        }
    }

    /// Rewrites the response body chunk by chunk through `rewriter` (see [`Rewriter`]); the
    /// chunk is replaced only when the output differs. Return `Flow::Continue`.
    pub fn rewrite_response_body<F>(
        &self,
        rewriter: &mut Rewriter,
        chunk: BodyChunk,
        f: F,
    ) -> Result<(), HostError>
    where
        F: FnOnce(&[u8], bool, &mut Vec<u8>) -> usize,
    {
        let data = read_body(BufferType::ResponseBody, chunk)?;
        let out = rewriter.process(&data, chunk.end_of_stream, f);
        if out != data.as_slice() {
            host::replace_buffer(BufferType::ResponseBody, out)?;
        }
        Ok(())
    }

    // ---- replies and flow ----------------------------------------------------------------

    /// Sends an error reply shaped for the client's protocol (OpenAI or Anthropic). The stream
    /// is answered when the current callback returns; the SDK pauses the request and skips
    /// this plugin's response handlers for the reply.
    ///
    /// The reply carries `x-request-id`, as the providers' own errors do: the request's id
    /// (Envoy's `request.id`, from the `x-request-id` it sets) when it is a plain token,
    /// otherwise a new `req_…` id, so a client can quote it when it reports the error.
    pub fn send_error(&mut self, error: &ErrorReply) -> Result<(), HostError> {
        let mut reply = error.render(self.protocol);
        if !reply.headers.iter().any(|(k, _)| k == "x-request-id") {
            reply
                .headers
                .push(("x-request-id".into(), self.reply_request_id()));
        }
        host::send_local_response(reply.status, None, &reply.body, &reply.headers, None)?;
        self.replied = true;
        Ok(())
    }

    /// The request id a local error reply carries (see [`send_error`](Self::send_error)).
    fn reply_request_id(&self) -> String {
        let given = host::get_property(&["request", "id"])
            .ok()
            .flatten()
            .and_then(|v| String::from_utf8(v).ok());
        if let Some(id) = given.filter(|id| is_token(id)) {
            return id;
        }
        thread_local! {
            static SEQ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
        }
        let seq = SEQ.with(|c| {
            c.set(c.get().wrapping_add(1));
            c.get()
        });
        let now = host::now_nanos().unwrap_or(0);
        let mut h = crate::hash::Fnv1a::new();
        h.write(&now.to_le_bytes());
        h.write(&seq.to_le_bytes());
        format!("req_{:016x}{:08x}", h.finish(), seq as u32)
    }

    /// Sends an arbitrary local reply.
    pub fn send_response(
        &mut self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        host::send_local_response(status, None, body, headers, None)?;
        self.replied = true;
        Ok(())
    }

    /// Resumes a request paused by a handler that returned [`Flow::Pause`](super::Flow::Pause).
    pub fn resume_request(&self) -> Result<(), HostError> {
        host::continue_stream(StreamType::Request)
    }

    /// Resumes a paused response.
    pub fn resume_response(&self) -> Result<(), HostError> {
        host::continue_stream(StreamType::Response)
    }

    /// Resets the stream.
    pub fn reset_stream(&self) -> Result<(), HostError> {
        host::close_stream(StreamType::Request)
    }

    // ---- properties ----------------------------------------------------------------------

    /// Reads a property as bytes (`&["request", "id"]`, `&["route_name"]`, ...).
    pub fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        host::get_property(path)
    }

    /// Reads a string property.
    pub fn property_string(&self, path: &[&str]) -> Result<Option<String>, HostError> {
        host::get_property_string(path)
    }

    /// Sets a property (Envoy filter state `wasm.<path>`).
    pub fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        host::set_property(path, value)
    }

    // ---- call-outs -----------------------------------------------------------------------

    /// Sends an HTTP request to `cluster`; `callback` runs with this stream's plugin and
    /// context when the response (or a reset or timeout) arrives. Typically the handler
    /// returns [`Flow::Pause`](super::Flow::Pause) and the callback resumes the stream or answers it.
    ///
    /// ```no_run
    /// # use aigw::prelude::*;
    /// # use std::time::Duration;
    /// # #[derive(Default)] struct P;
    /// # #[derive(serde::Deserialize)] struct C; impl PlainConfig for C {}
    /// # impl Plugin for P { const NAME: &'static str = "p"; type Config = C; type Root = ();
    /// fn on_request_headers(&mut self, ctx: &mut Ctx<Self>, _eos: bool) -> Flow {
    ///     let req = CallRequest::get("auth.internal", "/check");
    ///     let sent = ctx.http_call("auth", req, Duration::from_secs(2), |_plugin, ctx, result| {
    ///         match result {
    ///             Ok(_) => { let _ = ctx.resume_request(); }
    ///             Err(e) => { let _ = ctx.send_error(&ErrorReply::new(503, e.to_string())); }
    ///         }
    ///     });
    ///     match sent {
    ///         Ok(()) => Flow::Pause,
    ///         Err(_) => Flow::Continue,
    ///     }
    /// }
    /// # }
    /// ```
    pub fn http_call<F>(
        &mut self,
        cluster: &str,
        request: CallRequest,
        timeout: Duration,
        callback: F,
    ) -> Result<(), HostError>
    where
        F: FnOnce(&mut P, &mut Ctx<P>, CallResult) + 'static,
    {
        let headers = request.header_pairs();
        let token = host::dispatch_http_call(cluster, &headers, request.body_bytes(), timeout)?;
        self.callouts.push((token, Box::new(callback)));
        Ok(())
    }

    /// Number of call-outs (HTTP, gRPC and Redis) still waiting for a response.
    pub fn pending_calls(&self) -> usize {
        #[cfg(feature = "higress")]
        let redis = self.redis_callouts.len();
        #[cfg(not(feature = "higress"))]
        let redis = 0;
        self.callouts.len() + self.grpc_callouts.len() + redis
    }

    pub(crate) fn take_callout(&mut self, token: u32) -> Option<StreamCallback<P>> {
        let at = self.callouts.iter().position(|(t, _)| *t == token)?;
        Some(self.callouts.swap_remove(at).1)
    }
}

fn read_body(buffer: BufferType, chunk: BodyChunk) -> Result<Vec<u8>, HostError> {
    if chunk.size == 0 {
        return Ok(Vec::new());
    }
    host::get_buffer(buffer, 0, chunk.size)
}

fn read_whole(buffer: BufferType, chunk: BodyChunk) -> Whole {
    match read_body(buffer, chunk) {
        Ok(body) => Whole::Ready(body),
        Err(e) => Whole::Failed(e),
    }
}

/// A request id safe to echo in a header: 1 to 128 visible ASCII characters.
fn is_token(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}
