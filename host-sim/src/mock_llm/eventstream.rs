//! An encoder for the AWS event-stream binary framing that Bedrock's `converse-stream` uses.
//!
//! A message is: total length (u32, big-endian), headers length (u32), CRC32 of those eight
//! bytes, the headers, the payload, and a CRC32 of everything before it. A header is a one-byte
//! name length, the name, a one-byte value type (7 = string) and, for strings, a two-byte length
//! and the bytes.

/// The CRC-32 (IEEE 802.3, the zlib one) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32_update(0, data)
}

/// Continues a CRC-32 over more data: `crc32_update(crc32(a), b) == crc32(a ++ b)`.
pub fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            let mask = (c & 1).wrapping_neg();
            c = (c >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !c
}

/// Header value type for strings.
const TYPE_STRING: u8 = 7;

/// Encodes one message with string headers. Header names must be shorter than 256 bytes and
/// values shorter than 65536 bytes; longer ones are cut (the mock only uses short constants).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut hdr = Vec::new();
    for (name, value) in headers {
        let name = name.as_bytes();
        let name = name.get(..name.len().min(255)).unwrap_or(name);
        let value = value.as_bytes();
        let value = value.get(..value.len().min(65535)).unwrap_or(value);
        hdr.push(name.len() as u8);
        hdr.extend_from_slice(name);
        hdr.push(TYPE_STRING);
        hdr.extend_from_slice(&(value.len() as u16).to_be_bytes());
        hdr.extend_from_slice(value);
    }
    let total = 12 + hdr.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(hdr.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&hdr);
    out.extend_from_slice(payload);
    let msg_crc = crc32(&out);
    out.extend_from_slice(&msg_crc.to_be_bytes());
    out
}

/// An `event` message as Bedrock sends them: `:event-type`, `:content-type: application/json`,
/// `:message-type: event`, with a JSON payload.
pub fn event(event_type: &str, json: &[u8]) -> Vec<u8> {
    encode(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        json,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_known_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32_update(crc32(b"1234"), b"56789"), 0xCBF4_3926);
    }

    #[test]
    fn empty_message_matches_spec_vector() {
        // The "empty message" test vector of the event-stream spec: 16 bytes, fixed CRCs.
        let m = encode(&[], b"");
        assert_eq!(
            m,
            vec![0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff]
        );
    }
}
