//! RESP2 (`aigw::resp`): decoding never panics and never claims more bytes than it was given;
//! a decoded reply re-encodes to bytes that decode to the same reply; an encoded command decodes
//! as an array of its bulk-string arguments.
#![no_main]

use aigw::resp::{decode, Command, RespError, Value};
use libfuzzer_sys::fuzz_target;

/// Canonical RESP2 encoding of a reply (the SDK only encodes commands).
fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Simple(s) => {
            out.push(b'+');
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Value::Error(s) => {
            out.push(b'-');
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Value::Integer(i) => out.extend_from_slice(format!(":{i}\r\n").as_bytes()),
        Value::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
        Value::Bulk(Some(b)) => {
            out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Value::Array(None) => out.extend_from_slice(b"*-1\r\n"),
        Value::Array(Some(items)) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            for i in items {
                encode(i, out);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok((value, used)) => {
            assert!(
                used <= data.len(),
                "consumed {used} of {} bytes",
                data.len()
            );
            // The same reply with trailing bytes after it decodes identically.
            let prefix = data.get(..used).unwrap_or_default();
            assert_eq!(decode(prefix), Ok((value.clone(), used)));
            let mut enc = Vec::new();
            encode(&value, &mut enc);
            assert_eq!(
                decode(&enc),
                Ok((value, enc.len())),
                "re-encoded reply differs"
            );
        }
        Err(RespError::Incomplete) => {
            // Every strict prefix of an incomplete reply is incomplete too (or invalid).
            if let Some(p) = data.len().checked_sub(1) {
                assert!(decode(data.get(..p).unwrap_or_default()).is_err());
            }
        }
        Err(_) => {}
    }

    // Command encoding: the input split at 0xff bytes gives the arguments.
    let mut parts = data.split(|&b| b == 0xff);
    let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let args: Vec<&[u8]> = parts.collect();
    let mut cmd = Command::new(&name);
    for a in &args {
        cmd = cmd.arg(*a);
    }
    let wire = cmd.encode();
    let mut expected = vec![Value::Bulk(Some(name.into_bytes()))];
    expected.extend(args.iter().map(|a| Value::Bulk(Some(a.to_vec()))));
    assert_eq!(
        decode(&wire),
        Ok((Value::Array(Some(expected)), wire.len())),
        "an encoded command does not decode to its arguments"
    );
});
