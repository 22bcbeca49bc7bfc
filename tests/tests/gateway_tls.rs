//! `host-sim serve` to a TLS upstream: a cluster with `"tls"` connects with rustls, checks the
//! certificate against the configured CA and the SNI name, and a wrong CA is a connect
//! failure (503 from the router), never a silent plain-text fallback. The upstream is the mock
//! LLM behind a local TLS terminator with a certificate made for the test.

use aigw_tests::{free_port, host_sim_bin, module_path};
use host_sim::mock_llm::{self, MockOptions};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_rustls::rustls;

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A CA, and a server certificate for `name` signed by it (PEM).
fn pki(name: &str) -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// Terminates TLS on a free loopback port and forwards the bytes to `backend`.
fn tls_terminator(cert_pem: &str, key_pem: &str, backend: SocketAddr) -> SocketAddr {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut up) = tokio::net::TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                });
            }
        });
    });
    addr
}

fn start_gateway(
    dir: &std::path::Path,
    config: &Value,
    port: u16,
) -> (Gateway, std::path::PathBuf) {
    let cfg = dir.join("gateway.json");
    std::fs::write(&cfg, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let err = dir.join("gateway.err");
    let gw = Gateway(
        Command::new(host_sim_bin())
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("start host-sim serve"),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "gateway did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (gw, err)
}

/// POSTs a chat request to the gateway; returns status and body.
fn chat(port: u16, route_host: &str) -> (u16, String) {
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello over tls"}]}"#;
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {route_host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, raw) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            dechunk(raw)
        } else {
            raw.to_string()
        },
    )
}

/// The payload of a chunked HTTP/1.1 body.
fn dechunk(mut raw: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        raw = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[test]
fn tls_cluster_verifies_the_upstream_certificate() {
    let mock = mock_llm::spawn(MockOptions::default()).unwrap();
    let (ca, cert, key) = pki("llm.test");
    let (other_ca, _, _) = pki("llm.test");
    let upstream = tls_terminator(&cert, &key, mock.addr);
    let dir = std::env::temp_dir().join(format!("aigw-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca).unwrap();
    std::fs::write(dir.join("other-ca.pem"), &other_ca).unwrap();
    let port = free_port();
    let proxy =
        json!({"providers":[{"type":"openai-compatible","host":"llm.test","api_keys":["sk-up"]}]});
    let plugins = json!([{ "name": "ai-proxy", "wasm": module_path("ai-proxy"), "config": proxy }]);
    let config = json!({
        "listen": format!("127.0.0.1:{port}"),
        "access_log": "off",
        "clusters": {
            "secure": { "endpoints": [upstream.to_string()], "tls": { "sni": "llm.test", "ca_file": "ca.pem" } },
            "wrong-ca": { "endpoints": [upstream.to_string()], "tls": { "sni": "llm.test", "ca_file": "other-ca.pem" } },
            "plain": { "endpoints": [upstream.to_string()] }
        },
        "routes": [
            { "name": "bad", "host": "bad.local", "cluster": "wrong-ca", "plugins": plugins.clone() },
            { "name": "plain", "host": "plain.local", "cluster": "plain", "plugins": plugins.clone() },
            { "name": "secure", "cluster": "secure", "plugins": plugins }
        ]
    });
    let (_gw, err) = start_gateway(&dir, &config, port);

    let (status, body) = chat(port, "secure.local");
    assert_eq!(status, 200, "{body:?}");
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert_eq!(
        v["choices"][0]["message"]["content"], "Echo: hello over tls",
        "{body}"
    );
    // The mock saw the request that came through TLS, with the provider key.
    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].auth.first().map(|a| a.key.as_str()), Some("sk-up"));

    // A certificate from another CA: the handshake fails and nothing reaches the mock.
    let (status, _) = chat(port, "bad.local");
    assert_eq!(status, 503);
    // Plain HTTP to a TLS port is not an answer either.
    let (status, _) = chat(port, "plain.local");
    assert!(status == 503 || status == 502, "{status}");
    assert_eq!(mock.requests().len(), 1);
    let log = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(log.contains("TLS to") && log.contains("llm.test"), "{log}");
}

#[test]
fn a_missing_ca_file_is_a_config_error_naming_the_cluster() {
    let dir = std::env::temp_dir().join(format!("aigw-tls-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("gateway.json");
    let config = json!({
        "listen": "127.0.0.1:0",
        "clusters": { "c": { "endpoints": ["127.0.0.1:9"], "tls": { "ca_file": "nope.pem" } } },
        "routes": [ { "name": "r", "cluster": "c", "plugins": [] } ]
    });
    std::fs::write(&cfg, serde_json::to_vec(&config).unwrap()).unwrap();
    let out = Command::new(host_sim_bin())
        .arg("serve")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("clusters.c.tls.ca_file"), "{text}");
}
