//! Test helpers: run decoders over events or SSE bytes, read SSE output back.

use crate::llm::stream::{Decoder, Event, StreamError};
use crate::sse::Parser;

/// Decodes every `(event name, data)` pair, returning owned events (errors panic).
pub fn decode_all<'d, D: Decoder>(
    d: &mut D,
    input: impl IntoIterator<Item = (Option<&'d str>, &'d [u8])>,
) -> Vec<Event<'static>> {
    let mut all = Vec::new();
    for (name, data) in input {
        let mut out = Vec::new();
        d.decode(name, data, &mut out).unwrap();
        all.extend(out.into_iter().map(Event::into_owned));
    }
    all
}

/// Decodes a whole stream of unnamed events (`data` payloads) and finishes it, which must
/// succeed.
pub fn decode_stream<D: Decoder>(d: &mut D, data: &[&str]) -> Vec<Event<'static>> {
    let events = decode_all(d, data.iter().map(|s| (None, s.as_bytes())));
    d.finish().unwrap();
    events
}

/// Feeds SSE `bytes` cut at `cuts` through the SSE parser into `d`. Unnamed events (type
/// `message`) are passed with no name. Stops at the first decode error.
pub fn decode_sse<D: Decoder + ?Sized>(
    d: &mut D,
    bytes: &[u8],
    cuts: &[usize],
) -> Result<Vec<Event<'static>>, StreamError> {
    let mut parser = Parser::new(1 << 20);
    let mut all = Vec::new();
    let mut err = None;
    let mut from = 0;
    let mut points: Vec<usize> = cuts.iter().copied().filter(|c| *c < bytes.len()).collect();
    points.sort_unstable();
    points.push(bytes.len());
    for to in points {
        let piece = &bytes[from..to.max(from)];
        from = to.max(from);
        parser
            .feed(piece, |ev| {
                let Some(data) = ev.data() else { return };
                if err.is_some() {
                    return;
                }
                let name = (ev.event_type() != "message").then(|| ev.event_type());
                let mut out = Vec::new();
                match d.decode(name, data, &mut out) {
                    Ok(()) => all.extend(out.into_iter().map(Event::into_owned)),
                    Err(e) => err = Some(e),
                }
            })
            .unwrap();
    }
    match err {
        Some(e) => Err(e),
        None => Ok(all),
    }
}

/// Splits SSE text into (event name, data as JSON) pairs; `[DONE]` becomes the string.
pub fn json_events(out: &[u8]) -> Vec<(Option<String>, serde_json::Value)> {
    let text = std::str::from_utf8(out).unwrap();
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let mut name = None;
            let mut data = String::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            let v = serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data));
            (name, v)
        })
        .collect()
}
