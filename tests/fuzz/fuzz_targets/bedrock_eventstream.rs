//! AWS event-stream decoder (ai-proxy `bedrock::eventstream`).
//!
//! The first byte picks the mode. Raw mode feeds the input as wire bytes (split in chunks the
//! second byte decides): no panic, the same messages and error whatever the split, and nothing
//! is decoded after an error. Framed mode reads the input as a list of (header bytes, payload)
//! records, frames each with valid lengths and CRCs (`encode_raw`) and checks that the decoder
//! returns exactly the string headers and payloads, in order, or fails on a malformed header.
#![no_main]

use ai_proxy::providers::bedrock::eventstream::{encode, encode_raw, Decoder, EventStreamError, Message};
use libfuzzer_sys::fuzz_target;

mod split;

const MAX_FRAME: usize = 1 << 16;

fn decode_all(chunks: &[&[u8]]) -> (Vec<Message>, Option<EventStreamError>) {
    let mut d = Decoder::new(MAX_FRAME);
    let mut out = Vec::new();
    for c in chunks {
        // `push_with`, as the plugin uses it: messages completed before an error are kept.
        match d.push_with(c, |m| out.push(m)) {
            Ok(()) => {}
            Err(e) => {
                // A failed decoder keeps failing.
                assert!(d.push(b"\0\0\0\0").is_err());
                return (out, Some(e));
            }
        }
    }
    (out, None)
}

/// Reads `[header len u8][header bytes][payload len / 4 u8][payload]` records.
fn records(data: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(&hl) = data.get(pos) {
        pos += 1;
        let h_end = (pos + usize::from(hl)).min(data.len());
        let h = data.get(pos..h_end).unwrap_or_default();
        pos = h_end;
        let pl = data.get(pos).map_or(0, |&b| usize::from(b) * 4);
        pos = (pos + 1).min(data.len());
        let p_end = (pos + pl).min(data.len());
        let p = data.get(pos..p_end).unwrap_or_default();
        pos = p_end;
        out.push((h, p));
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let [mode, seed, body @ ..] = input else {
        return;
    };
    if mode & 1 == 0 {
        let (whole, whole_err) = decode_all(&[body]);
        let (split_msgs, split_err) = decode_all(&split::split(body, *seed, 23));
        assert_eq!(whole, split_msgs, "messages depend on the chunking");
        assert_eq!(whole_err, split_err, "error depends on the chunking");
        return;
    }
    // Framed mode: valid frames around fuzzed headers and payloads.
    let recs = records(body);
    let mut wire = Vec::new();
    for (h, p) in &recs {
        wire.extend_from_slice(&encode_raw(h, p));
    }
    let (msgs, err) = decode_all(&split::split(&wire, *seed, 23));
    match err {
        None => {
            assert_eq!(msgs.len(), recs.len());
            for (m, (h, p)) in msgs.iter().zip(&recs) {
                assert_eq!(&m.payload, p);
                // Re-encoding the string headers decodes to the same message.
                let pairs: Vec<(&str, &str)> = m
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let again = decode_all(&[&encode(&pairs, p)]);
                assert_eq!(again, (vec![m.clone()], None));
                if h.is_empty() {
                    assert!(m.headers.is_empty());
                }
            }
        }
        Some(EventStreamError::BadHeader(_)) => {}
        Some(EventStreamError::FrameTooLarge { len, max }) => assert!(len > max),
        Some(e) => panic!("a well-framed stream failed with {e:?}"),
    }
});
