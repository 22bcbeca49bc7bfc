//! Safe, non-panicking wrappers over the proxy-wasm host functions.
//!
//! Every function returns `Result<_, HostError>`: a status the host returns (for example
//! `BadArgument` when request headers are touched after their window closed, which Envoy
//! really does) becomes an error value, never a panic. Buffers the host hands back were
//! allocated through the module's exported allocator and are adopted as `Vec<u8>`.
//!
//! Call-outs are the one exception: [`dispatch_http_call`] goes through
//! `proxy_wasm::hostcalls::dispatch_http_call`, because proxy-wasm's dispatcher must learn the
//! token to route the response back.
//!
//! Plugins normally use these through [`crate::plugin::Ctx`]; the module is public for the
//! rare call the context does not cover.

pub mod ffi;
pub mod wire;

use std::fmt;
use std::ptr::{null, null_mut};
use std::time::Duration;

/// A non-OK status returned by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostError {
    /// 1: the key, header, property or queue does not exist.
    NotFound,
    /// 2: the call is not allowed with these arguments or at this point of the stream
    /// (for example headers outside their callback window).
    BadArgument,
    /// 3: the host could not serialize the value.
    SerializationFailure,
    /// 4: the host could not parse the input.
    ParseFailure,
    /// 5: a bad expression (property path) was given.
    BadExpression,
    /// 6: the host rejected a memory range.
    InvalidMemoryAccess,
    /// 7: nothing to return (for example an empty shared queue).
    Empty,
    /// 8: a shared-data write carried a stale CAS value.
    CasMismatch,
    /// 10: the host failed internally.
    InternalFailure,
    /// 12: the host does not implement this call (and the native, non-wasm build of the SDK).
    Unimplemented,
    /// Any other status code.
    Other(u32),
}

impl HostError {
    /// Maps a raw status word: 0 is `Ok(())`, everything else an error.
    pub fn check(status: u32) -> Result<(), HostError> {
        match status {
            0 => Ok(()),
            1 => Err(HostError::NotFound),
            2 => Err(HostError::BadArgument),
            3 => Err(HostError::SerializationFailure),
            4 => Err(HostError::ParseFailure),
            5 => Err(HostError::BadExpression),
            6 => Err(HostError::InvalidMemoryAccess),
            7 => Err(HostError::Empty),
            8 => Err(HostError::CasMismatch),
            10 => Err(HostError::InternalFailure),
            12 => Err(HostError::Unimplemented),
            other => Err(HostError::Other(other)),
        }
    }

    /// The numeric status code.
    pub fn code(self) -> u32 {
        match self {
            HostError::NotFound => 1,
            HostError::BadArgument => 2,
            HostError::SerializationFailure => 3,
            HostError::ParseFailure => 4,
            HostError::BadExpression => 5,
            HostError::InvalidMemoryAccess => 6,
            HostError::Empty => 7,
            HostError::CasMismatch => 8,
            HostError::InternalFailure => 10,
            HostError::Unimplemented => 12,
            HostError::Other(code) => code,
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            HostError::NotFound => "not found",
            HostError::BadArgument => "bad argument",
            HostError::SerializationFailure => "serialization failure",
            HostError::ParseFailure => "parse failure",
            HostError::BadExpression => "bad expression",
            HostError::InvalidMemoryAccess => "invalid memory access",
            HostError::Empty => "empty",
            HostError::CasMismatch => "cas mismatch",
            HostError::InternalFailure => "internal failure",
            HostError::Unimplemented => "unimplemented",
            HostError::Other(_) => "unknown status",
        };
        write!(f, "host status {} ({})", self.code(), name)
    }
}

impl std::error::Error for HostError {}

/// Which header map a call addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapType {
    /// Request headers (readable/writable in `on_request_headers` or while paused there).
    RequestHeaders = 0,
    /// Request trailers.
    RequestTrailers = 1,
    /// Response headers.
    ResponseHeaders = 2,
    /// Response trailers.
    ResponseTrailers = 3,
    /// gRPC initial metadata of a gRPC call-out.
    GrpcInitialMetadata = 4,
    /// gRPC trailing metadata of a gRPC call-out.
    GrpcTrailingMetadata = 5,
    /// Headers of an HTTP call-out response (inside its callback only).
    CallResponseHeaders = 6,
    /// Trailers of an HTTP call-out response.
    CallResponseTrailers = 7,
}

/// Which buffer a call addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BufferType {
    /// The request body (the current chunk, or everything buffered after a `Pause`).
    RequestBody = 0,
    /// The response body.
    ResponseBody = 1,
    /// Downstream data of a TCP stream.
    DownstreamData = 2,
    /// Upstream data of a TCP stream.
    UpstreamData = 3,
    /// Body of an HTTP call-out response.
    CallResponseBody = 4,
    /// A gRPC message.
    GrpcMessage = 5,
    /// The VM configuration.
    VmConfiguration = 6,
    /// The plugin configuration.
    PluginConfiguration = 7,
    /// Arguments of a foreign function callback.
    ForeignFunctionArgs = 8,
    /// Higress: the RESP reply of a Redis call (inside its callback only).
    RedisCallResponse = 9,
}

/// Log levels of the host logger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very verbose diagnostics.
    Trace = 0,
    /// Diagnostics.
    Debug = 1,
    /// Normal operation.
    Info = 2,
    /// Something unexpected that was handled.
    Warn = 3,
    /// A failure.
    Error = 4,
    /// A failure that affects the whole plugin.
    Critical = 5,
}

impl Level {
    fn from_u32(v: u32) -> Level {
        match v {
            0 => Level::Trace,
            1 => Level::Debug,
            2 => Level::Info,
            3 => Level::Warn,
            4 => Level::Error,
            _ => Level::Critical,
        }
    }
}

/// Which direction of an HTTP stream `continue_stream`/`close_stream` act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// The request direction.
    Request = 0,
    /// The response direction.
    Response = 1,
}

/// Metric kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Monotonic counter.
    Counter = 0,
    /// Value that goes up and down.
    Gauge = 1,
    /// Distribution of recorded values.
    Histogram = 2,
}

/// Adopts a host-allocated buffer. `ptr` came from the module allocator with exactly `len`
/// bytes (the contract of every proxy-wasm "return buffer" parameter).
fn adopt(ptr: *mut u8, len: usize) -> Vec<u8> {
    if ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: the host allocated `len` bytes through the module's exported allocator
    // (`proxy_on_memory_allocate`/`malloc`, which allocates exactly `len` bytes from the global
    // allocator) and transferred ownership to us; this is the same adoption proxy-wasm does.
    unsafe { Vec::from_raw_parts(ptr, len, len) }
}

fn opt_ptr(data: Option<&[u8]>) -> (*const u8, usize) {
    match data {
        Some(d) => (d.as_ptr(), d.len()),
        None => (null(), 0),
    }
}

/// Writes a message to the host log.
pub fn log(level: Level, message: &str) -> Result<(), HostError> {
    // SAFETY: pointer and length describe a live `&str`.
    HostError::check(unsafe { ffi::proxy_log(level as u32, message.as_ptr(), message.len()) })
}

/// The host's current log level (messages below it are dropped by the host).
pub fn log_level() -> Result<Level, HostError> {
    let mut level = 0u32;
    // SAFETY: `level` is a valid out-pointer for the duration of the call.
    HostError::check(unsafe { ffi::proxy_get_log_level(&mut level) })?;
    Ok(Level::from_u32(level))
}

/// Current wall-clock time in nanoseconds since the Unix epoch.
pub fn now_nanos() -> Result<u64, HostError> {
    let mut t = 0u64;
    // SAFETY: `t` is a valid out-pointer.
    HostError::check(unsafe { ffi::proxy_get_current_time_nanoseconds(&mut t) })?;
    Ok(t)
}

/// Current wall-clock time in milliseconds since the Unix epoch.
pub fn now_millis() -> Result<u64, HostError> {
    Ok(now_nanos()? / 1_000_000)
}

/// Sets the tick period of the current root context; `Duration::ZERO` disables ticks.
/// Periods above `u32::MAX` milliseconds are clamped.
pub fn set_tick_period(period: Duration) -> Result<(), HostError> {
    let ms = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: plain value argument.
    HostError::check(unsafe { ffi::proxy_set_tick_period_milliseconds(ms) })
}

/// Reads up to `max_size` bytes of a buffer starting at `start`. A missing buffer reads as
/// empty.
pub fn get_buffer(buffer: BufferType, start: usize, max_size: usize) -> Result<Vec<u8>, HostError> {
    let mut ptr = null_mut();
    let mut len = 0usize;
    // SAFETY: out-pointers are valid; the returned buffer is adopted by `adopt`.
    let status =
        unsafe { ffi::proxy_get_buffer_bytes(buffer as u32, start, max_size, &mut ptr, &mut len) };
    match HostError::check(status) {
        Ok(()) => Ok(adopt(ptr, len)),
        Err(HostError::NotFound) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Reads a whole buffer.
pub fn get_buffer_all(buffer: BufferType) -> Result<Vec<u8>, HostError> {
    get_buffer(buffer, 0, u32::MAX as usize)
}

/// Raw `proxy_set_buffer_bytes`. Hosts accept three shapes only: (0, 0) prepends, (0, n >= len)
/// replaces everything, (start >= len, _) appends; prefer [`replace_buffer`],
/// [`prepend_buffer`] and [`append_buffer`].
pub fn set_buffer(
    buffer: BufferType,
    start: usize,
    size: usize,
    data: &[u8],
) -> Result<(), HostError> {
    // SAFETY: pointer and length describe a live slice.
    HostError::check(unsafe {
        ffi::proxy_set_buffer_bytes(buffer as u32, start, size, data.as_ptr(), data.len())
    })
}

/// Replaces the whole buffer with `data`.
pub fn replace_buffer(buffer: BufferType, data: &[u8]) -> Result<(), HostError> {
    set_buffer(buffer, 0, u32::MAX as usize, data)
}

/// Inserts `data` before the buffer's current content.
pub fn prepend_buffer(buffer: BufferType, data: &[u8]) -> Result<(), HostError> {
    set_buffer(buffer, 0, 0, data)
}

/// Appends `data` after the buffer's current content.
pub fn append_buffer(buffer: BufferType, data: &[u8]) -> Result<(), HostError> {
    set_buffer(buffer, u32::MAX as usize, 0, data)
}

/// The first value of header `name` as bytes, `None` when absent.
pub fn get_header_bytes(map: MapType, name: &str) -> Result<Option<Vec<u8>>, HostError> {
    let mut ptr = null_mut();
    let mut len = 0usize;
    // SAFETY: key slice is live; out-pointers valid; result adopted.
    let status = unsafe {
        ffi::proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut ptr, &mut len)
    };
    match HostError::check(status) {
        Ok(()) => Ok(Some(adopt(ptr, len))),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The first value of header `name` (invalid UTF-8 replaced), `None` when absent.
pub fn get_header(map: MapType, name: &str) -> Result<Option<String>, HostError> {
    Ok(get_header_bytes(map, name)?.map(into_string))
}

/// Sets header `name` to `value`, replacing existing values (the host lowercases the key).
pub fn set_header(map: MapType, name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: both slices are live.
    HostError::check(unsafe {
        ffi::proxy_replace_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Adds a value for header `name`, keeping existing values.
pub fn add_header(map: MapType, name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: both slices are live.
    HostError::check(unsafe {
        ffi::proxy_add_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Removes every value of header `name`.
pub fn remove_header(map: MapType, name: &str) -> Result<(), HostError> {
    // SAFETY: the slice is live.
    HostError::check(unsafe {
        ffi::proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len())
    })
}

/// Header pairs as raw bytes.
pub type BytePairs = Vec<(Vec<u8>, Vec<u8>)>;

/// All header pairs as bytes, in order.
pub fn get_headers_bytes(map: MapType) -> Result<BytePairs, HostError> {
    let mut ptr = null_mut();
    let mut len = 0usize;
    // SAFETY: out-pointers valid; result adopted.
    let status = unsafe { ffi::proxy_get_header_map_pairs(map as u32, &mut ptr, &mut len) };
    HostError::check(status)?;
    let raw = adopt(ptr, len);
    wire::decode_pairs(&raw).ok_or(HostError::SerializationFailure)
}

/// All header pairs (invalid UTF-8 replaced), in order.
pub fn get_headers(map: MapType) -> Result<Vec<(String, String)>, HostError> {
    Ok(get_headers_bytes(map)?
        .into_iter()
        .map(|(k, v)| (into_string(k), into_string(v)))
        .collect())
}

/// Replaces the whole header map.
pub fn set_headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    map: MapType,
    pairs: &[(K, V)],
) -> Result<(), HostError> {
    let raw = wire::encode_pairs(pairs);
    // SAFETY: the slice is live.
    HostError::check(unsafe {
        ffi::proxy_set_header_map_pairs(map as u32, raw.as_ptr(), raw.len())
    })
}

fn into_string(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Reads a property (`["request", "path"]`, `["route_name"]`, ...). `None` when the host
/// does not know the path.
pub fn get_property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    let raw_path = wire::encode_path(path);
    let mut ptr = null_mut();
    let mut len = 0usize;
    // SAFETY: path slice live; out-pointers valid; result adopted.
    let status =
        unsafe { ffi::proxy_get_property(raw_path.as_ptr(), raw_path.len(), &mut ptr, &mut len) };
    match HostError::check(status) {
        Ok(()) => Ok(Some(adopt(ptr, len))),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads a string property (Envoy encodes strings as raw bytes).
pub fn get_property_string(path: &[&str]) -> Result<Option<String>, HostError> {
    Ok(get_property(path)?.map(into_string))
}

/// Reads an integer property (Envoy encodes integers as 8 bytes little endian).
pub fn get_property_i64(path: &[&str]) -> Result<Option<i64>, HostError> {
    match get_property(path)? {
        Some(v) => wire::decode_i64(&v)
            .map(Some)
            .ok_or(HostError::SerializationFailure),
        None => Ok(None),
    }
}

/// Reads an unsigned integer property (8 bytes little endian).
pub fn get_property_u64(path: &[&str]) -> Result<Option<u64>, HostError> {
    match get_property(path)? {
        Some(v) => wire::decode_u64(&v)
            .map(Some)
            .ok_or(HostError::SerializationFailure),
        None => Ok(None),
    }
}

/// Reads a boolean property (one byte).
pub fn get_property_bool(path: &[&str]) -> Result<Option<bool>, HostError> {
    match get_property(path)? {
        Some(v) => wire::decode_bool(&v)
            .map(Some)
            .ok_or(HostError::SerializationFailure),
        None => Ok(None),
    }
}

/// Sets a property; Envoy stores it as filter state readable with [`get_property`].
pub fn set_property(path: &[&str], value: &[u8]) -> Result<(), HostError> {
    let raw_path = wire::encode_path(path);
    // SAFETY: both slices live.
    HostError::check(unsafe {
        ffi::proxy_set_property(
            raw_path.as_ptr(),
            raw_path.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Reads a shared-data entry and its CAS token; `None` when the key does not exist.
pub fn get_shared_data(key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
    let mut ptr = null_mut();
    let mut len = 0usize;
    let mut cas = 0u32;
    // SAFETY: key slice live; out-pointers valid; result adopted.
    let status = unsafe {
        ffi::proxy_get_shared_data(key.as_ptr(), key.len(), &mut ptr, &mut len, &mut cas)
    };
    match HostError::check(status) {
        Ok(()) => Ok(Some((adopt(ptr, len), cas))),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes a shared-data entry. `cas` 0 writes unconditionally; otherwise a stale token gives
/// `Err(HostError::CasMismatch)`.
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    // SAFETY: slices live.
    HostError::check(unsafe {
        ffi::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// Registers (or finds) a shared queue owned by this root context and returns its id.
pub fn register_shared_queue(name: &str) -> Result<u32, HostError> {
    let mut id = 0u32;
    // SAFETY: slice live; out-pointer valid.
    HostError::check(unsafe {
        ffi::proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id)
    })?;
    Ok(id)
}

/// Finds a queue registered by `vm_id`; `None` when it does not exist.
pub fn resolve_shared_queue(vm_id: &str, name: &str) -> Result<Option<u32>, HostError> {
    let mut id = 0u32;
    // SAFETY: slices live; out-pointer valid.
    let status = unsafe {
        ffi::proxy_resolve_shared_queue(
            vm_id.as_ptr(),
            vm_id.len(),
            name.as_ptr(),
            name.len(),
            &mut id,
        )
    };
    match HostError::check(status) {
        Ok(()) => Ok(Some(id)),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Pops the next message of a queue; `None` when the queue is empty.
pub fn dequeue_shared_queue(queue_id: u32) -> Result<Option<Vec<u8>>, HostError> {
    let mut ptr = null_mut();
    let mut len = 0usize;
    // SAFETY: out-pointers valid; result adopted.
    let status = unsafe { ffi::proxy_dequeue_shared_queue(queue_id, &mut ptr, &mut len) };
    match HostError::check(status) {
        Ok(()) => Ok(Some(adopt(ptr, len))),
        Err(HostError::Empty) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Pushes a message onto a queue (wakes the owner's `on_queue_ready`).
pub fn enqueue_shared_queue(queue_id: u32, data: &[u8]) -> Result<(), HostError> {
    // SAFETY: slice live.
    HostError::check(unsafe {
        ffi::proxy_enqueue_shared_queue(queue_id, data.as_ptr(), data.len())
    })
}

/// Defines (or finds) a metric by name and returns its id.
pub fn define_metric(kind: MetricKind, name: &str) -> Result<u32, HostError> {
    let mut id = 0u32;
    // SAFETY: slice live; out-pointer valid.
    HostError::check(unsafe {
        ffi::proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id)
    })?;
    Ok(id)
}

/// Adds `offset` to a counter (must be > 0) or gauge.
pub fn increment_metric(id: u32, offset: i64) -> Result<(), HostError> {
    // SAFETY: value arguments.
    HostError::check(unsafe { ffi::proxy_increment_metric(id, offset) })
}

/// Sets a gauge, records a histogram sample, or adds to a counter.
pub fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    // SAFETY: value arguments.
    HostError::check(unsafe { ffi::proxy_record_metric(id, value) })
}

/// Reads a counter or gauge (histograms give `BadArgument`).
pub fn get_metric(id: u32) -> Result<u64, HostError> {
    let mut v = 0u64;
    // SAFETY: out-pointer valid.
    HostError::check(unsafe { ffi::proxy_get_metric(id, &mut v) })?;
    Ok(v)
}

/// Sends a local reply instead of (or in place of) the upstream response. It takes effect
/// when the current callback returns. `details` is Envoy's response-code detail
/// (`None` for none); `grpc_status` is `None` for a plain HTTP reply.
pub fn send_local_response<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    status: u32,
    details: Option<&str>,
    body: &[u8],
    headers: &[(K, V)],
    grpc_status: Option<i32>,
) -> Result<(), HostError> {
    let raw_headers = wire::encode_pairs(headers);
    let (dptr, dlen) = opt_ptr(details.map(str::as_bytes));
    // SAFETY: all slices live for the call.
    HostError::check(unsafe {
        ffi::proxy_send_local_response(
            status,
            dptr,
            dlen,
            body.as_ptr(),
            body.len(),
            raw_headers.as_ptr(),
            raw_headers.len(),
            grpc_status.unwrap_or(-1),
        )
    })
}

/// Resumes a paused direction of the current HTTP stream.
pub fn continue_stream(stream: StreamType) -> Result<(), HostError> {
    // SAFETY: value argument.
    HostError::check(unsafe { ffi::proxy_continue_stream(stream as u32) })
}

/// Closes (resets) a direction of the current HTTP stream.
pub fn close_stream(stream: StreamType) -> Result<(), HostError> {
    // SAFETY: value argument.
    HostError::check(unsafe { ffi::proxy_close_stream(stream as u32) })
}

/// Makes `context_id` the context later host calls act on (used when a callback arrives on
/// the root context on behalf of a stream).
pub fn set_effective_context(context_id: u32) -> Result<(), HostError> {
    // SAFETY: value argument.
    HostError::check(unsafe { ffi::proxy_set_effective_context(context_id) })
}

/// Higress: sends this request to the upstream host `address` (`ip:port`) of the route's
/// cluster, bypassing the cluster's load balancer. Call it before the request headers leave
/// the filter chain (in `on_request_headers`, or from a body callback while the headers are
/// held). Feature `higress` only: stock Envoy has no such host function.
#[cfg(feature = "higress")]
pub fn set_upstream_override_host(address: &str) -> Result<(), HostError> {
    // SAFETY: the slice lives for the call.
    let status = unsafe { ffi::proxy_set_upstream_override_host(address.as_ptr(), address.len()) };
    HostError::check(status)
}

/// Calls a host-specific foreign function (Envoy: `compress`, `clear_route_cache`, ...).
pub fn call_foreign_function(name: &str, args: &[u8]) -> Result<Vec<u8>, HostError> {
    let mut ptr = null_mut();
    let mut len = 0usize;
    // SAFETY: slices live; out-pointers valid; result adopted.
    let status = unsafe {
        ffi::proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            args.as_ptr(),
            args.len(),
            &mut ptr,
            &mut len,
        )
    };
    HostError::check(status)?;
    Ok(adopt(ptr, len))
}

/// `timeout` clamped to what the ABI carries: `u32::MAX` milliseconds.
fn clamp_to_u32_millis(timeout: Duration) -> Duration {
    Duration::from_millis(
        u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .min(u32::MAX as u64),
    )
}

/// Starts an HTTP call-out to `cluster` and returns its token. `headers` must include
/// `:method`, `:path` and `:authority`. Goes through proxy-wasm so its dispatcher routes the
/// response to the calling context. Timeouts above `u32::MAX` ms are clamped.
pub fn dispatch_http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<u32, HostError> {
    let timeout = clamp_to_u32_millis(timeout);
    match proxy_wasm::hostcalls::dispatch_http_call(
        cluster,
        headers.to_vec(),
        body,
        vec![],
        timeout,
    ) {
        Ok(token) => Ok(token),
        Err(status) => Err(HostError::check(status as u32)
            .err()
            .unwrap_or(HostError::Other(0))),
    }
}

/// The status of the gRPC call whose failure callback is running: its code and message
/// (`proxy_get_status`).
pub fn grpc_status() -> Result<(u32, String), HostError> {
    let mut code = 0u32;
    let mut ptr: *mut u8 = null_mut();
    let mut len = 0usize;
    // SAFETY: out-pointers are valid for the call.
    let status = unsafe { ffi::proxy_get_status(&mut code, &mut ptr, &mut len) };
    HostError::check(status)?;
    let message = String::from_utf8_lossy(&adopt(ptr, len)).into_owned();
    Ok((code, message))
}

/// Starts a unary gRPC call to `cluster` (`/service/method`) and returns its token. Goes
/// through proxy-wasm so its dispatcher routes the answer to the calling context. An unknown
/// cluster is `ParseFailure` in Envoy; timeouts above `u32::MAX` ms are clamped.
pub fn dispatch_grpc_call(
    cluster: &str,
    service: &str,
    method: &str,
    metadata: &[(&str, &[u8])],
    message: &[u8],
    timeout: Duration,
) -> Result<u32, HostError> {
    let timeout = clamp_to_u32_millis(timeout);
    match proxy_wasm::hostcalls::dispatch_grpc_call(
        cluster,
        service,
        method,
        metadata.to_vec(),
        Some(message),
        timeout,
    ) {
        Ok(token) => Ok(token),
        Err(status) => Err(HostError::check(status as u32)
            .err()
            .unwrap_or(HostError::Other(0))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        assert_eq!(HostError::check(0), Ok(()));
        for (code, err) in [
            (1, HostError::NotFound),
            (2, HostError::BadArgument),
            (3, HostError::SerializationFailure),
            (4, HostError::ParseFailure),
            (5, HostError::BadExpression),
            (6, HostError::InvalidMemoryAccess),
            (7, HostError::Empty),
            (8, HostError::CasMismatch),
            (10, HostError::InternalFailure),
            (12, HostError::Unimplemented),
            (9, HostError::Other(9)),
            (99, HostError::Other(99)),
        ] {
            assert_eq!(HostError::check(code), Err(err));
            assert_eq!(err.code(), code);
        }
        assert_eq!(
            HostError::BadArgument.to_string(),
            "host status 2 (bad argument)"
        );
    }

    #[test]
    fn native_build_reports_unimplemented() {
        // The native build has no host: calls fail cleanly instead of crashing.
        assert_eq!(
            get_header(MapType::RequestHeaders, ":path"),
            Err(HostError::Unimplemented)
        );
        assert_eq!(now_nanos(), Err(HostError::Unimplemented));
    }
}
