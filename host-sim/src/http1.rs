//! Reading HTTP/1.1 messages from files (`REQ.http`, `RESP.http`) and writing the client's
//! response as an HTTP message, for the command-line tool.

use crate::report::ClientResponse;
use crate::request::{Request, UpstreamResponse};
use anyhow::{anyhow, bail, Result};

fn split_head(data: &[u8]) -> (String, Vec<u8>) {
    let text_end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, p + 4))
        .or_else(|| {
            data.windows(2)
                .position(|w| w == b"\n\n")
                .map(|p| (p, p + 2))
        });
    match text_end {
        Some((h, b)) => (
            String::from_utf8_lossy(&data[..h]).into_owned(),
            data[b..].to_vec(),
        ),
        None => (String::from_utf8_lossy(data).into_owned(), Vec::new()),
    }
}

fn parse_headers<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Vec<(String, String)>> {
    let mut h = Vec::new();
    for l in lines {
        let l = l.trim_end_matches('\r');
        if l.is_empty() {
            continue;
        }
        let (k, v) = l
            .split_once(':')
            .ok_or_else(|| anyhow!("bad header line: {l:?}"))?;
        h.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(h)
}

/// The body of a message file: decoded when it is sent `transfer-encoding: chunked`.
fn unframe(headers: &[(String, String)], body: Vec<u8>) -> Result<Vec<u8>> {
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if !chunked {
        return Ok(body);
    }
    let mut b = body.as_slice();
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .or_else(|| b.iter().position(|c| *c == b'\n'))
            .ok_or_else(|| anyhow!("truncated chunked body"))?;
        let line = String::from_utf8_lossy(&b[..eol]).into_owned();
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| anyhow!("bad chunk size {line:?}"))?;
        let skip = if b.get(eol) == Some(&b'\r') { 2 } else { 1 };
        b = &b[eol + skip..];
        if size == 0 {
            return Ok(out);
        }
        let data = b.get(..size).ok_or_else(|| anyhow!("truncated chunk"))?;
        out.extend_from_slice(data);
        b = &b[size..];
        b = b
            .strip_prefix(b"\r\n")
            .or_else(|| b.strip_prefix(b"\n"))
            .unwrap_or(b);
    }
}

/// Parses an HTTP/1.1 request message: request line, headers, blank line, body.
pub fn parse_request(data: &[u8]) -> Result<Request> {
    let (head, body) = split_head(data);
    let mut lines = head.lines();
    let first = lines.next().ok_or_else(|| anyhow!("empty request"))?;
    let mut parts = first.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        bail!("bad request line: {first:?}");
    };
    let headers = parse_headers(lines)?;
    let mut req = Request::get(path);
    req.method = method.to_string();
    req.body = unframe(&headers, body)?;
    for (k, v) in headers {
        match k.as_str() {
            "host" => req.authority = v,
            // Envoy drops these before the filters; content-length stays (as written: a wrong
            // one shows as a framing error in the report).
            "transfer-encoding" | "connection" => {}
            _ => req.headers.push((k, v)),
        }
    }
    Ok(req)
}

/// Parses an HTTP/1.1 response message: status line, headers, blank line, body.
pub fn parse_response(data: &[u8]) -> Result<UpstreamResponse> {
    let (head, body) = split_head(data);
    let mut lines = head.lines();
    let first = lines.next().ok_or_else(|| anyhow!("empty response"))?;
    let status: u16 = first
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line: {first:?}"))?;
    // The filters see content-length and transfer-encoding as the upstream sent them.
    let headers = parse_headers(lines)?;
    let body = unframe(&headers, body)?;
    Ok(UpstreamResponse {
        status,
        headers,
        chunks: vec![body],
        trailers: vec![],
    })
}

/// Formats what the client received as an HTTP/1.1 message.
pub fn format_response(r: &ClientResponse) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status)).into_bytes();
    for (k, v) in &r.headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&r.body);
    out
}

/// The reason phrase of common statuses.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_messages() {
        let r =
            parse_request(b"POST /v1/x HTTP/1.1\r\nHost: a.b\r\nX-K: v\r\n\r\n{\"a\":1}").unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.authority, "a.b");
        assert_eq!(r.headers, vec![("x-k".to_string(), "v".to_string())]);
        assert_eq!(r.body, b"{\"a\":1}");
        let p = parse_response(b"HTTP/1.1 429 Too Many\nretry-after: 3\n\nbody").unwrap();
        assert_eq!(p.status, 429);
        assert_eq!(p.chunks, vec![b"body".to_vec()]);
        assert!(parse_request(b"").is_err());
    }

    #[test]
    fn framing_headers_stay_for_the_filters() {
        let r = parse_request(
            b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
        )
        .unwrap();
        assert_eq!(
            r.headers,
            vec![("content-length".to_string(), "2".to_string())]
        );
        let p = parse_response(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            p.headers,
            vec![("transfer-encoding".to_string(), "chunked".to_string())]
        );
        assert_eq!(p.chunks, vec![b"abcde".to_vec()]);
        let p = parse_response(b"HTTP/1.1 200 OK\ncontent-length: 4\n\nbody").unwrap();
        assert_eq!(
            p.headers,
            vec![("content-length".to_string(), "4".to_string())]
        );
    }
}
