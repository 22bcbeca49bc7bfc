//! Writing event-stream blocks.
//!
//! ```
//! let mut out = Vec::new();
//! aigw::sse::write_event(&mut out, Some("delta"), None, "line one\nline two");
//! aigw::sse::write_done(&mut out);
//! assert_eq!(out, b"event: delta\ndata: line one\ndata: line two\n\ndata: [DONE]\n\n");
//! ```

/// Appends `value` with CR and LF removed (field values other than data cannot span lines).
fn push_single_line(out: &mut Vec<u8>, value: &[u8]) {
    out.extend(value.iter().copied().filter(|&b| b != b'\r' && b != b'\n'));
}

/// Appends one event: optional `event` and `id` fields, then `data` split into one `data:`
/// line per line of input (CR, LF and CRLF all split), then the blank line.
pub fn write_event(
    out: &mut Vec<u8>,
    event: Option<&str>,
    id: Option<&str>,
    data: impl AsRef<[u8]>,
) {
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        push_single_line(out, event.as_bytes());
        out.push(b'\n');
    }
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        push_single_line(out, id.as_bytes());
        out.push(b'\n');
    }
    let data = data.as_ref();
    let mut rest = data;
    loop {
        let end = memchr::memchr2(b'\n', b'\r', rest);
        let (line, next) = match end {
            Some(i) => {
                let skip = if rest.get(i) == Some(&b'\r') && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                (rest.get(..i).unwrap_or_default(), rest.get(i + skip..))
            }
            None => (rest, None),
        };
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    out.push(b'\n');
}

/// Appends an unnamed event with `data` (the common `data: {...}\n\n` block).
pub fn write_data(out: &mut Vec<u8>, data: impl AsRef<[u8]>) {
    write_event(out, None, None, data);
}

/// Appends a comment line (`: text`), used as a keep-alive; multi-line text becomes several
/// comment lines. Comments are not events and need no blank line.
pub fn write_comment(out: &mut Vec<u8>, text: &str) {
    for line in text.split(['\n', '\r']) {
        out.extend_from_slice(b": ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
}

/// Appends a `retry:` field in its own block.
pub fn write_retry(out: &mut Vec<u8>, millis: u64) {
    out.extend_from_slice(format!("retry: {millis}\n\n").as_bytes());
}

/// Appends the OpenAI end-of-stream marker `data: [DONE]`.
pub fn write_done(out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: [DONE]\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::Parser;

    #[test]
    fn writes_and_parses_back() {
        let mut out = Vec::new();
        write_comment(&mut out, "keep-alive");
        write_event(&mut out, Some("a\nb"), Some("42"), "x\r\ny\rz");
        write_data(&mut out, "");
        write_retry(&mut out, 1000);
        write_done(&mut out);
        let mut got = Vec::new();
        let mut p = Parser::new(1024);
        p.feed(&out, |e| {
            if let Some(d) = e.data() {
                got.push((e.event_type().to_string(), e.id().to_vec(), d.to_vec()));
            }
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("ab".to_string(), b"42".to_vec(), b"x\ny\nz".to_vec()),
                ("message".to_string(), b"42".to_vec(), b"".to_vec()),
                ("message".to_string(), b"42".to_vec(), b"[DONE]".to_vec()),
            ]
        );
        assert!(out.starts_with(b": keep-alive\n"));
    }
}
