//! Constants and wire formats of the proxy-wasm ABI (v0.2.x, plus Higress's 0_2_100).

/// Status codes returned by hostcalls.
#[allow(missing_docs)]
pub mod status {
    pub const OK: i32 = 0;
    pub const NOT_FOUND: i32 = 1;
    pub const BAD_ARGUMENT: i32 = 2;
    pub const PARSE_FAILURE: i32 = 4;
    pub const INVALID_MEMORY_ACCESS: i32 = 6;
    pub const EMPTY: i32 = 7;
    pub const CAS_MISMATCH: i32 = 8;
    pub const INTERNAL_FAILURE: i32 = 10;
    pub const UNIMPLEMENTED: i32 = 12;
}

/// Buffer types of `proxy_get_buffer_bytes` / `proxy_set_buffer_bytes`.
#[allow(missing_docs)]
pub mod buffer {
    pub const HTTP_REQUEST_BODY: i32 = 0;
    pub const HTTP_RESPONSE_BODY: i32 = 1;
    pub const HTTP_CALL_RESPONSE_BODY: i32 = 4;
    pub const GRPC_RECEIVE_BUFFER: i32 = 5;
    pub const VM_CONFIGURATION: i32 = 6;
    pub const PLUGIN_CONFIGURATION: i32 = 7;
    /// Higress: the reply of a Redis call, readable inside `proxy_on_redis_call_response`.
    pub const REDIS_CALL_RESPONSE: i32 = 9;
}

/// Header map types.
#[allow(missing_docs)]
pub mod map {
    pub const REQUEST_HEADERS: i32 = 0;
    pub const REQUEST_TRAILERS: i32 = 1;
    pub const RESPONSE_HEADERS: i32 = 2;
    pub const RESPONSE_TRAILERS: i32 = 3;
    pub const GRPC_INITIAL_METADATA: i32 = 4;
    pub const GRPC_TRAILING_METADATA: i32 = 5;
    pub const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
    pub const HTTP_CALL_RESPONSE_TRAILERS: i32 = 7;
}

/// Filter actions returned by the plugin's HTTP callbacks.
#[allow(missing_docs)]
pub mod action {
    pub const CONTINUE: i32 = 0;
    pub const PAUSE: i32 = 1;
}

/// Stream types of `proxy_continue_stream` / `proxy_close_stream` (the network-filter ones,
/// downstream and upstream, are not supported).
#[allow(missing_docs)]
pub mod stream_type {
    pub const REQUEST: i32 = 0;
    pub const RESPONSE: i32 = 1;
}

/// Metric types of `proxy_define_metric`.
#[allow(missing_docs)]
pub mod metric_type {
    pub const COUNTER: i32 = 0;
    pub const GAUGE: i32 = 1;
    pub const HISTOGRAM: i32 = 2;
}

/// Log levels, as the plugin passes them to `proxy_log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Most verbose.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected but handled.
    Warn,
    /// A failure.
    Error,
    /// A failure that stops the plugin.
    Critical,
}

impl LogLevel {
    /// Decodes the ABI's numeric level; unknown values are treated as `Critical`.
    pub fn from_i32(v: i32) -> LogLevel {
        match v {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Critical,
        }
    }

    /// The ABI's numeric level.
    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

/// The ABI versions this host accepts, detected from the module's marker export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AbiVersion {
    /// `proxy_abi_version_0_2_0`
    V0_2_0,
    /// `proxy_abi_version_0_2_1`
    V0_2_1,
    /// `proxy_abi_version_0_2_100` (Higress: adds Redis calls and more).
    V0_2_100,
}

impl AbiVersion {
    /// The name of the marker export.
    pub fn marker(self) -> &'static str {
        match self {
            AbiVersion::V0_2_0 => "proxy_abi_version_0_2_0",
            AbiVersion::V0_2_1 => "proxy_abi_version_0_2_1",
            AbiVersion::V0_2_100 => "proxy_abi_version_0_2_100",
        }
    }
}

/// An ordered header map as the host keeps it: lowercase keys, byte values, duplicates allowed.
pub type Headers = Vec<(String, Vec<u8>)>;

/// Serializes header pairs in the proxy-wasm wire format: u32 LE count, then (key_len,
/// value_len) u32 LE pairs, then each key and value followed by a NUL byte.
pub fn serialize_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let mut size = 4 + pairs.len() * 8;
    for (k, v) in pairs {
        size += k.as_ref().len() + v.as_ref().len() + 2;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.as_ref().len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.as_ref().len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

/// Parses the proxy-wasm header-pairs wire format. Returns `None` when it is malformed.
pub fn deserialize_pairs(data: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if data.is_empty() {
        return Some(Vec::new());
    }
    let count = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?) as usize;
    let mut sizes = Vec::with_capacity(count.min(1024));
    let mut pos = 4usize;
    for _ in 0..count {
        let k = u32::from_le_bytes(data.get(pos..pos + 4)?.try_into().ok()?) as usize;
        let v = u32::from_le_bytes(data.get(pos + 4..pos + 8)?.try_into().ok()?) as usize;
        sizes.push((k, v));
        pos += 8;
    }
    let mut out = Vec::with_capacity(count.min(1024));
    for (k, v) in sizes {
        let key = data.get(pos..pos + k)?.to_vec();
        pos += k + 1;
        let value = data.get(pos..pos + v)?.to_vec();
        pos += v + 1;
        out.push((key, value));
    }
    Some(out)
}

/// Splits a NUL-joined property path into its segments.
pub fn split_path(data: &[u8]) -> Vec<String> {
    data.split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let pairs = vec![(":path", "/v1"), ("x-a", ""), ("k", "v\u{e9}")];
        let wire = serialize_pairs(&pairs);
        let back = deserialize_pairs(&wire).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0], (b":path".to_vec(), b"/v1".to_vec()));
        assert_eq!(back[1], (b"x-a".to_vec(), Vec::new()));
        assert_eq!(back[2].1, "v\u{e9}".as_bytes());
    }

    #[test]
    fn malformed_pairs_are_rejected() {
        let mut wire = serialize_pairs(&[("a", "b")]);
        wire.truncate(wire.len() - 3);
        assert!(deserialize_pairs(&wire).is_none());
        assert!(deserialize_pairs(&[1, 0, 0]).is_none());
    }
}
