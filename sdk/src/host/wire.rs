//! Byte formats of the proxy-wasm ABI: header-map pairs, property paths and property values.
//!
//! All functions here are pure and never panic on malformed input.

/// Serializes header pairs in the proxy-wasm map format: a u32 LE count, then a (key length,
/// value length) u32 LE pair per entry, then every key and value followed by a NUL byte.
pub fn encode_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let mut size = 4;
    for (k, v) in pairs {
        size += 8 + k.as_ref().len() + v.as_ref().len() + 2;
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

/// Parses the proxy-wasm map format into byte pairs. Returns `None` when the data is
/// truncated or its lengths do not add up. An empty input is an empty map.
pub fn decode_pairs(data: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if data.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(data, 0)? as usize;
    // Each entry needs at least 10 bytes (two lengths and two NULs): reject absurd counts
    // before allocating for them.
    if count > data.len() / 10 + 1 {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    let mut lens = 4usize;
    let mut pos = 4usize.checked_add(count.checked_mul(8)?)?;
    for _ in 0..count {
        let klen = read_u32(data, lens)? as usize;
        let vlen = read_u32(data, lens + 4)? as usize;
        lens += 8;
        let key = data.get(pos..pos.checked_add(klen)?)?.to_vec();
        pos = pos.checked_add(klen + 1)?;
        let value = data.get(pos..pos.checked_add(vlen)?)?.to_vec();
        pos = pos.checked_add(vlen + 1)?;
        pairs.push((key, value));
    }
    Some(pairs)
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes);
    Some(u32::from_le_bytes(word))
}

/// Joins property path segments with NUL bytes, the form `proxy_get_property` expects
/// (`["request", "path"]` becomes `request\0path`).
pub fn encode_path(path: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.iter().map(|s| s.len() + 1).sum());
    for (i, segment) in path.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(segment.as_bytes());
    }
    out
}

/// Decodes an Envoy integer property (8 bytes, little endian) as signed.
pub fn decode_i64(value: &[u8]) -> Option<i64> {
    let bytes: [u8; 8] = value.try_into().ok()?;
    Some(i64::from_le_bytes(bytes))
}

/// Decodes an Envoy unsigned integer property (8 bytes, little endian).
pub fn decode_u64(value: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = value.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Decodes an Envoy boolean property (one byte, non-zero is true).
pub fn decode_bool(value: &[u8]) -> Option<bool> {
    match value {
        [b] => Some(*b != 0),
        _ => None,
    }
}

/// Decodes an Envoy string property (raw bytes); invalid UTF-8 is replaced, never rejected.
pub fn decode_string(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let pairs = [(":path", "/v1/chat"), ("x-a", ""), ("k", "v\u{e9}")];
        let bytes = encode_pairs(&pairs);
        assert_eq!(&bytes[0..4], &3u32.to_le_bytes());
        let back = decode_pairs(&bytes).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0], (b":path".to_vec(), b"/v1/chat".to_vec()));
        assert_eq!(back[1], (b"x-a".to_vec(), Vec::new()));
        assert_eq!(back[2].1, "v\u{e9}".as_bytes());
    }

    #[test]
    fn pairs_exact_layout() {
        let bytes = encode_pairs(&[("ab", "c")]);
        let expected = [1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, b'a', b'b', 0, b'c', 0];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn pairs_empty_and_malformed() {
        assert_eq!(decode_pairs(&[]), Some(vec![]));
        assert_eq!(decode_pairs(&[0, 0, 0, 0]), Some(vec![]));
        let bytes = encode_pairs(&[("abc", "def")]);
        for cut in 1..bytes.len() - 1 {
            assert_eq!(decode_pairs(&bytes[..cut]), None, "cut at {cut}");
        }
        // A huge count with no data must not allocate or panic.
        assert_eq!(decode_pairs(&[255, 255, 255, 255]), None);
        // Lengths that overflow.
        let mut evil = vec![1, 0, 0, 0];
        evil.extend_from_slice(&u32::MAX.to_le_bytes());
        evil.extend_from_slice(&u32::MAX.to_le_bytes());
        evil.extend_from_slice(&[0, 0]);
        assert_eq!(decode_pairs(&evil), None);
    }

    #[test]
    fn path_and_values() {
        assert_eq!(encode_path(&["request", "path"]), b"request\0path");
        assert_eq!(encode_path(&["route_name"]), b"route_name");
        assert_eq!(decode_i64(&(-5i64).to_le_bytes()), Some(-5));
        assert_eq!(decode_u64(&7u64.to_le_bytes()), Some(7));
        assert_eq!(decode_u64(&[1, 2]), None);
        assert_eq!(decode_bool(&[1]), Some(true));
        assert_eq!(decode_bool(&[0]), Some(false));
        assert_eq!(decode_bool(&[]), None);
        assert_eq!(decode_string(b"abc"), "abc");
    }
}
