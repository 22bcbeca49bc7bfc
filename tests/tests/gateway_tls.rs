//! `host-sim serve` to a TLS upstream: a cluster with `"tls"` connects with rustls, checks the
//! certificate against the configured CA and the SNI name, and a wrong CA is a connect
//! failure (503 from the router), never a silent plain-text fallback. The upstream is the mock
//! LLM behind a local TLS terminator with a certificate made for the test.

use aigw_tests::{free_port, host_sim_bin, http, module_path, ServeProcess};
use host_sim::mock_llm::{self, MockOptions};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use tokio_rustls::rustls;

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

fn start_gateway(dir: &std::path::Path, config: &Value, port: u16) -> ServeProcess {
    let cfg = dir.join("gateway.json");
    std::fs::write(&cfg, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    ServeProcess::start(&cfg, &dir.join("gateway.err"), port)
}

/// POSTs a chat request to the gateway; returns status and body.
fn chat(port: u16, route_host: &str) -> (u16, String) {
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello over tls"}]}"#;
    let (status, _, body) = http::exchange(
        ("127.0.0.1", port),
        route_host,
        "POST",
        "/v1/chat/completions",
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .unwrap_or((0, vec![], vec![]));
    (status, String::from_utf8_lossy(&body).into_owned())
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
    let gw = start_gateway(&dir, &config, port);

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
    let log = gw.stderr_text();
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
