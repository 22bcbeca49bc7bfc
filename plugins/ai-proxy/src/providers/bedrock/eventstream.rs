//! Incremental decoder for the AWS event-stream binary framing (`application/vnd.amazon.eventstream`)
//! used by Bedrock ConverseStream.
//!
//! Frame layout (all integers big-endian):
//!
//! ```text
//! total length (u32) | headers length (u32) | prelude CRC32 (u32, over the first 8 bytes)
//! headers: { name len (u8) | name | value type (u8) | value }*
//! payload
//! message CRC32 (u32, over everything before it)
//! ```
//!
//! Bytes may arrive split anywhere; [`Decoder::push`] buffers at most one partial frame, and a
//! frame that claims to be larger than the configured cap is rejected before it is buffered.

use super::crypto::{crc32, crc32_update};

/// The smallest possible frame: 12-byte prelude and 4-byte message CRC.
const MIN_FRAME: usize = 16;

/// A decoding failure; the stream cannot continue after one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStreamError {
    /// The frame announces more bytes than the cap allows.
    FrameTooLarge {
        /// Announced length.
        len: usize,
        /// Configured cap.
        max: usize,
    },
    /// The announced lengths are inconsistent.
    BadLength(&'static str),
    /// The prelude checksum does not match.
    PreludeCrc,
    /// The message checksum does not match.
    MessageCrc,
    /// A header is malformed.
    BadHeader(&'static str),
}

impl std::fmt::Display for EventStreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventStreamError::FrameTooLarge { len, max } => write!(
                f,
                "event-stream frame of {len} bytes exceeds the {max}-byte cap"
            ),
            EventStreamError::BadLength(w) => write!(f, "event-stream frame has a bad length: {w}"),
            EventStreamError::PreludeCrc => f.write_str("event-stream prelude checksum mismatch"),
            EventStreamError::MessageCrc => f.write_str("event-stream message checksum mismatch"),
            EventStreamError::BadHeader(w) => write!(f, "event-stream header is malformed: {w}"),
        }
    }
}

impl std::error::Error for EventStreamError {}

/// One decoded message. Only string-typed headers (type 7) are kept; others are skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// String headers in frame order.
    pub headers: Vec<(String, String)>,
    /// The payload (JSON for Bedrock).
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of a string header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `:event-type` (e.g. `contentBlockDelta`).
    pub fn event_type(&self) -> Option<&str> {
        self.header(":event-type")
    }

    /// `:message-type`: `event`, `exception` or `error`.
    pub fn message_type(&self) -> Option<&str> {
        self.header(":message-type")
    }

    /// `:exception-type` of exception messages (e.g. `throttlingException`).
    pub fn exception_type(&self) -> Option<&str> {
        self.header(":exception-type")
    }

    /// `:content-type` (e.g. `application/json`).
    pub fn content_type(&self) -> Option<&str> {
        self.header(":content-type")
    }

    /// True for `exception` and `error` messages.
    pub fn is_error(&self) -> bool {
        matches!(self.message_type(), Some("exception") | Some("error"))
    }
}

/// Incremental frame decoder.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: Vec<u8>,
    max_frame: usize,
    failed: bool,
}

impl Decoder {
    /// A decoder that rejects frames larger than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            max_frame: max_frame.max(MIN_FRAME),
            failed: false,
        }
    }

    /// Bytes waiting for the rest of their frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes and returns every message they complete, in order. After an error the
    /// decoder keeps failing, and the messages this call completed before the error are not
    /// returned: use [`push_with`](Self::push_with) (as the plugin does) to receive them.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Message>, EventStreamError> {
        let mut messages = Vec::new();
        self.push_with(bytes, |m| messages.push(m))?;
        Ok(messages)
    }

    /// Like [`push`](Self::push) but hands each message to `on_message` as it completes.
    pub fn push_with(
        &mut self,
        mut bytes: &[u8],
        mut on_message: impl FnMut(Message),
    ) -> Result<(), EventStreamError> {
        if self.failed {
            return Err(EventStreamError::BadLength("decoder already failed"));
        }
        loop {
            // Complete the buffered prelude/frame first, taking only what it needs.
            let need = self.frame_len()?.unwrap_or(12);
            if self.buf.len() < need {
                let take = (need - self.buf.len()).min(bytes.len());
                let (head, rest) = bytes.split_at(take);
                self.buf.extend_from_slice(head);
                bytes = rest;
                if self.buf.len() < need {
                    return Ok(());
                }
                if need == 12 {
                    continue; // the prelude is complete: learn the frame length
                }
            }
            let frame = std::mem::take(&mut self.buf);
            match decode_frame(&frame) {
                Ok(m) => on_message(m),
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
            self.buf = frame;
            self.buf.clear();
        }
    }

    /// The total length of the buffered frame once its prelude is complete and valid.
    fn frame_len(&mut self) -> Result<Option<usize>, EventStreamError> {
        let Some(prelude) = self.buf.get(..12) else {
            return Ok(None);
        };
        let total = be_u32(prelude, 0) as usize;
        let headers = be_u32(prelude, 4) as usize;
        let crc = be_u32(prelude, 8);
        let err = if prelude.get(..8).map(crc32) != Some(crc) {
            Some(EventStreamError::PreludeCrc)
        } else if total > self.max_frame {
            Some(EventStreamError::FrameTooLarge {
                len: total,
                max: self.max_frame,
            })
        } else if total < MIN_FRAME || headers > total - MIN_FRAME {
            Some(EventStreamError::BadLength(
                "headers do not fit in the frame",
            ))
        } else {
            None
        };
        match err {
            Some(e) => {
                self.failed = true;
                Err(e)
            }
            None => Ok(Some(total)),
        }
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// Decodes one complete frame (lengths already checked against the prelude).
fn decode_frame(frame: &[u8]) -> Result<Message, EventStreamError> {
    let total = frame.len();
    let headers_len = be_u32(frame, 4) as usize;
    let body_len = total
        .checked_sub(4)
        .ok_or(EventStreamError::BadLength("frame"))?;
    let (body, crc) = frame.split_at(body_len);
    if crc32(body) != be_u32(crc, 0) {
        return Err(EventStreamError::MessageCrc);
    }
    let headers_bytes = frame
        .get(12..12 + headers_len)
        .ok_or(EventStreamError::BadLength("headers"))?;
    let payload = frame
        .get(12 + headers_len..body_len)
        .ok_or(EventStreamError::BadLength("payload"))?;
    Ok(Message {
        headers: decode_headers(headers_bytes)?,
        payload: payload.to_vec(),
    })
}

fn decode_headers(mut h: &[u8]) -> Result<Vec<(String, String)>, EventStreamError> {
    fn take<'a>(
        h: &mut &'a [u8],
        n: usize,
        what: &'static str,
    ) -> Result<&'a [u8], EventStreamError> {
        if h.len() < n {
            return Err(EventStreamError::BadHeader(what));
        }
        let (a, b) = h.split_at(n);
        *h = b;
        Ok(a)
    }
    let mut out = Vec::new();
    while !h.is_empty() {
        let name_len = usize::from(*take(&mut h, 1, "name length")?.first().unwrap_or(&0));
        let name = take(&mut h, name_len, "name")?;
        let ty = *take(&mut h, 1, "value type")?.first().unwrap_or(&255);
        let value_len = match ty {
            0 | 1 => 0, // bool true / false
            2 => 1,     // byte
            3 => 2,     // short
            4 => 4,     // integer
            5 | 8 => 8, // long, timestamp
            9 => 16,    // uuid
            6 | 7 => {
                let l = take(&mut h, 2, "value length")?;
                usize::from(u16::from_be_bytes([
                    l.first().copied().unwrap_or(0),
                    l.get(1).copied().unwrap_or(0),
                ]))
            }
            _ => return Err(EventStreamError::BadHeader("unknown value type")),
        };
        let value = take(&mut h, value_len, "value")?;
        if ty == 7 {
            let name = std::str::from_utf8(name)
                .map_err(|_| EventStreamError::BadHeader("name is not UTF-8"))?;
            let value = std::str::from_utf8(value)
                .map_err(|_| EventStreamError::BadHeader("value is not UTF-8"))?;
            out.push((name.to_string(), value.to_string()));
        }
    }
    Ok(out)
}

/// Encodes a frame with string headers (for tests and mock upstreams).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut hb = Vec::new();
    for (n, v) in headers {
        hb.push(n.len().min(255) as u8);
        hb.extend_from_slice(n.as_bytes().get(..n.len().min(255)).unwrap_or_default());
        hb.push(7);
        let vl = v.len().min(u16::MAX as usize);
        hb.extend_from_slice(&(vl as u16).to_be_bytes());
        hb.extend_from_slice(v.as_bytes().get(..vl).unwrap_or_default());
    }
    encode_raw(&hb, payload)
}

/// Encodes a frame from pre-encoded header bytes.
pub fn encode_raw(header_bytes: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = 12 + header_bytes.len() + payload.len() + 4;
    let mut f = Vec::with_capacity(total);
    f.extend_from_slice(&(total as u32).to_be_bytes());
    f.extend_from_slice(&(header_bytes.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&f);
    f.extend_from_slice(&prelude_crc.to_be_bytes());
    f.extend_from_slice(header_bytes);
    f.extend_from_slice(payload);
    let crc = crc32_update(0, &f);
    f.extend_from_slice(&crc.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ty: &str, payload: &str) -> Vec<u8> {
        encode(
            &[
                (":event-type", ty),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.as_bytes(),
        )
    }

    fn stream() -> Vec<u8> {
        let mut s = Vec::new();
        s.extend(event("messageStart", r#"{"p":"abcd","role":"assistant"}"#));
        // A frame with every non-string header type before a string header.
        let mut hb = Vec::new();
        for (name, ty, value) in [
            ("t", 0u8, vec![]),
            ("f", 1, vec![]),
            ("b", 2, vec![7]),
            ("s", 3, vec![0, 1]),
            ("i", 4, vec![0, 0, 0, 2]),
            ("l", 5, vec![0; 8]),
            ("ts", 8, vec![0; 8]),
            ("u", 9, vec![1; 16]),
        ] {
            hb.push(name.len() as u8);
            hb.extend_from_slice(name.as_bytes());
            hb.push(ty);
            hb.extend_from_slice(&value);
        }
        hb.extend_from_slice(&[5, b'b', b'y', b't', b'e', b's', 6, 0, 3, 1, 2, 3]);
        hb.extend_from_slice(&[11]);
        hb.extend_from_slice(b":event-type");
        hb.push(7);
        hb.extend_from_slice(&17u16.to_be_bytes());
        hb.extend_from_slice(b"contentBlockDelta");
        s.extend(encode_raw(
            &hb,
            br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
        ));
        s.extend(event("messageStop", r#"{"stopReason":"end_turn"}"#));
        s.extend(encode(
            &[
                (":message-type", "exception"),
                (":exception-type", "throttlingException"),
            ],
            br#"{"message":"slow down"}"#,
        ));
        s
    }

    #[test]
    fn decodes_all_header_types() {
        let mut d = Decoder::new(1 << 20);
        let msgs = d.push(&stream()).unwrap();
        assert_eq!(msgs.len(), 4);
        assert_eq!(msgs[0].event_type(), Some("messageStart"));
        assert_eq!(msgs[0].content_type(), Some("application/json"));
        assert_eq!(
            msgs[1].headers,
            vec![(":event-type".to_string(), "contentBlockDelta".to_string())]
        );
        assert_eq!(
            msgs[1].payload,
            br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#
        );
        assert!(msgs[3].is_error());
        assert_eq!(msgs[3].exception_type(), Some("throttlingException"));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn every_split_point_decodes_the_same() {
        let s = stream();
        let whole = Decoder::new(1 << 20).push(&s).unwrap();
        for split in 0..=s.len() {
            let mut d = Decoder::new(1 << 20);
            let mut got = d.push(&s[..split]).unwrap();
            got.extend(d.push(&s[split..]).unwrap());
            assert_eq!(got, whole, "split at {split}");
        }
        // Two split points, and byte by byte.
        for a in (0..s.len()).step_by(7) {
            for b in (a..s.len()).step_by(11) {
                let mut d = Decoder::new(1 << 20);
                let mut got = d.push(&s[..a]).unwrap();
                got.extend(d.push(&s[a..b]).unwrap());
                got.extend(d.push(&s[b..]).unwrap());
                assert_eq!(got, whole, "splits at {a},{b}");
            }
        }
        let mut d = Decoder::new(1 << 20);
        let mut got = Vec::new();
        for byte in &s {
            got.extend(d.push(std::slice::from_ref(byte)).unwrap());
            assert!(d.buffered() < 200, "never buffers more than one frame");
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn rejects_corruption_and_oversize() {
        let f = event("messageStart", r#"{"role":"assistant"}"#);
        let mut bad = f.clone();
        bad[20] ^= 1;
        assert_eq!(
            Decoder::new(1024).push(&bad),
            Err(EventStreamError::MessageCrc)
        );
        let mut bad = f.clone();
        bad[9] ^= 1;
        assert_eq!(
            Decoder::new(1024).push(&bad),
            Err(EventStreamError::PreludeCrc)
        );
        // The cap is checked from the prelude alone, before the body is buffered.
        let mut d = Decoder::new(32);
        assert!(matches!(
            d.push(&f[..12]),
            Err(EventStreamError::FrameTooLarge { .. })
        ));
        assert!(d.push(b"more").is_err(), "a failed decoder stays failed");
        // Headers longer than the frame.
        let mut hdr = Vec::new();
        hdr.extend_from_slice(&16u32.to_be_bytes());
        hdr.extend_from_slice(&8u32.to_be_bytes());
        let c = crc32(&hdr);
        hdr.extend_from_slice(&c.to_be_bytes());
        assert!(matches!(
            Decoder::new(1024).push(&hdr),
            Err(EventStreamError::BadLength(_))
        ));
        // Truncated header inside a frame with valid CRCs.
        let frame = encode_raw(&[11, b':'], b"{}");
        assert!(matches!(
            Decoder::new(1024).push(&frame),
            Err(EventStreamError::BadHeader(_))
        ));
    }
}
