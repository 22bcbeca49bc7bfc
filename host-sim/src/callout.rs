//! Real call-outs for clusters mapped to addresses: a small blocking HTTP/1.1 client, and RESP
//! over TCP for Higress's Redis calls.

use crate::sim::CallReply;
use crate::vm::HttpCallRecord;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends a call-out over HTTP/1.1 and maps failures the way Envoy's router does: connect
/// failure → 503, timeout → 504, a connection that dies mid-response → reset.
pub fn http_request(addr: SocketAddr, call: &HttpCallRecord) -> CallReply {
    let timeout = if call.timeout_ms == 0 {
        Duration::from_secs(60)
    } else {
        Duration::from_millis(call.timeout_ms as u64)
    };
    let Ok(mut s) = TcpStream::connect_timeout(&addr, timeout) else {
        return CallReply::ConnectFailure;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let get = |k: &str| {
        call.headers
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let mut req = format!(
        "{} {} HTTP/1.1\r\nhost: {}\r\n",
        get(":method"),
        get(":path"),
        get(":authority")
    );
    for (k, v) in &call.headers {
        if k.starts_with(':')
            || k.eq_ignore_ascii_case("host")
            || k.eq_ignore_ascii_case("content-length")
        {
            continue;
        }
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        call.body.len()
    ));
    if s.write_all(req.as_bytes())
        .and_then(|_| s.write_all(&call.body))
        .is_err()
    {
        return CallReply::Reset;
    }
    match read_response(&mut BufReader::new(s)) {
        Ok(Some((status, headers, body))) => CallReply::Response {
            status,
            headers,
            body,
        },
        Ok(None) => CallReply::Reset,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            CallReply::Timeout
        }
        Err(_) => CallReply::Reset,
    }
}

/// A parsed HTTP/1.1 response: status, headers, body.
pub type Parsed = (u16, Vec<(String, String)>, Vec<u8>);

/// Reads one HTTP/1.1 response (content-length, chunked, or until close).
pub fn read_response<R: BufRead>(r: &mut R) -> std::io::Result<Option<Parsed>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |k: &str| headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Ok(None);
            }
            let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if n == 0 {
                line.clear();
                let _ = r.read_line(&mut line);
                break;
            }
            let mut buf = vec![0u8; n + 2];
            r.read_exact(&mut buf)?;
            buf.truncate(n);
            body.extend_from_slice(&buf);
        }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
    }
    let headers = headers
        .into_iter()
        .filter(|(k, _)| k != "transfer-encoding" && k != "connection")
        .collect();
    Ok(Some((status, headers, body)))
}

/// Sends a RESP query to Redis and reads one reply. Returns (status, reply): status 0 with the
/// raw RESP reply on success, non-zero with an empty reply on connect failure or timeout.
pub fn redis_request(addr: SocketAddr, query: &[u8], timeout_ms: u32) -> (i32, Vec<u8>) {
    let t = Duration::from_millis(timeout_ms.max(1) as u64);
    let Ok(mut s) = TcpStream::connect_timeout(&addr, t) else {
        return (1, Vec::new());
    };
    let _ = s.set_read_timeout(Some(t));
    let _ = s.set_write_timeout(Some(t));
    if s.write_all(query).is_err() {
        return (1, Vec::new());
    }
    let mut r = BufReader::new(s);
    let mut out = Vec::new();
    match read_resp(&mut r, &mut out) {
        Ok(()) => (0, out),
        Err(_) => (1, Vec::new()),
    }
}

/// Reads one complete RESP value, appending its raw bytes to `out`.
fn read_resp<R: BufRead>(r: &mut R, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut line = Vec::new();
    if r.read_until(b'\n', &mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "eof",
        ));
    }
    out.extend_from_slice(&line);
    let text = String::from_utf8_lossy(&line[1..]).trim().to_string();
    match line.first() {
        Some(b'$') => {
            let n: i64 = text.parse().unwrap_or(-1);
            if n >= 0 {
                let mut buf = vec![0u8; n as usize + 2];
                r.read_exact(&mut buf)?;
                out.extend_from_slice(&buf);
            }
        }
        Some(b'*') => {
            let n: i64 = text.parse().unwrap_or(-1);
            for _ in 0..n.max(0) {
                read_resp(r, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}
