//! The local gateway's configuration file: listener, clusters, routes with plugin chains and
//! retry policy. JSON, with the plugin configurations in the same form Envoy and Higress use.
//!
//! ```json
//! {
//!   "listen": "127.0.0.1:10000",
//!   "workers": 2,
//!   "clusters": {
//!     "llm": { "endpoints": [ {"address": "127.0.0.1:8000", "priority": 0},
//!                             {"address": "127.0.0.1:8001", "priority": 1} ] }
//!   },
//!   "stream_idle_timeout": "300s",
//!   "max_request_headers_kb": 60,
//!   "max_headers_count": 100,
//!   "routes": [
//!     { "name": "chat", "prefix": "/v1/", "cluster": "llm", "timeout": "15s",
//!       "retry": { "retry_on": ["5xx", "connect-failure", "reset"], "num_retries": 1,
//!                  "per_try_timeout": "5s" },
//!       "plugins": [ { "name": "ai-proxy", "wasm": "../dist/ai-proxy.wasm", "config": {} } ] }
//!   ]
//! }
//! ```

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;

/// Parses a duration as Envoy's JSON writes one: `"15s"`, `"0.3s"`; `"300ms"` is accepted too.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        bail!("expected a duration like \"15s\", \"0.3s\" or \"300ms\", got {text:?}");
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow!("expected a duration like \"15s\", got {text:?}"))?;
    if !v.is_finite() || v < 0.0 {
        bail!("a duration must be 0 or positive, got {text:?}");
    }
    Ok(Duration::from_secs_f64(v * scale))
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| parse_duration(&t).map_err(serde::de::Error::custom))
        .transpose()
}

/// Envoy's default route timeout.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
/// Envoy's default `stream_idle_timeout`.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Envoy's default `max_request_headers_kb`.
pub const DEFAULT_MAX_REQUEST_HEADERS_KB: u32 = 60;
/// Envoy's default `max_headers_count`.
pub const DEFAULT_MAX_HEADERS_COUNT: u32 = 100;

/// A configured timeout: `None` when it is 0 (disabled, as in Envoy).
fn enabled(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// One upstream host of a cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EndpointSpec {
    /// `"host:port"`.
    Plain(String),
    /// `{"address": "host:port", "priority": 0}`.
    Full {
        /// `host:port`.
        address: String,
        /// Lower is preferred; higher priorities are used on retries (failover).
        #[serde(default)]
        priority: u32,
    },
}

/// A cluster as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSpec {
    /// Upstream hosts.
    pub endpoints: Vec<EndpointSpec>,
    /// `original_dst`: the host comes from the `x-envoy-original-dst-host` request header.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Ignored (older files set it); timeouts are the route's `timeout` and
    /// `retry.per_try_timeout`, as in Envoy.
    pub timeout_ms: Option<u64>,
    /// TLS to the endpoints (`{}`: verify against the built-in web roots, SNI = host name).
    pub tls: Option<TlsSpec>,
}

/// TLS settings of a cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSpec {
    /// Server name for SNI and the certificate check (default: the endpoint's host name).
    pub sni: Option<String>,
    /// PEM file of CA certificates to trust instead of the built-in web roots (relative to the
    /// config file).
    pub ca_file: Option<PathBuf>,
}

/// What an endpoint of a TLS cluster is connected with.
#[derive(Clone)]
pub struct TlsTarget {
    /// The client configuration (trust roots), shared by the cluster's endpoints.
    pub config: Arc<rustls::ClientConfig>,
    /// SNI and certificate name.
    pub server_name: String,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// The rustls client configuration of a cluster's `tls` block.
fn tls_config(spec: &TlsSpec, base: &Path) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    match &spec.ca_file {
        Some(file) => {
            let path = base.join(file);
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
                .map_err(|e| anyhow!("ca_file {}: {e}", path.display()))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| anyhow!("ca_file {}: {e}", path.display()))?;
            if certs.is_empty() {
                bail!("ca_file {}: no certificate", path.display());
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| anyhow!("ca_file {}: {e}", path.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("{e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A plugin in a route's chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// Name (`plugin_name` property).
    pub name: String,
    /// Path of the module (relative to the config file).
    pub wasm: PathBuf,
    /// Plugin configuration (any JSON; given to the plugin as text).
    #[serde(default)]
    pub config: serde_json::Value,
    /// Or: a file holding the configuration (relative to the config file).
    #[serde(default)]
    pub config_file: Option<PathBuf>,
    /// vm_id (shared data namespace).
    #[serde(default)]
    pub vm_id: String,
    /// Envoy's root_id: which root context of the module serves this plugin (AssemblyScript
    /// proxy-runtime modules and modules with several root contexts need it).
    #[serde(default)]
    pub root_id: String,
    /// `closed` (default), `open` or `reload`.
    #[serde(default)]
    pub fail: Option<String>,
    /// Envoy's `PluginConfig.allow_on_headers_stop_iteration` (Envoy 1.35+).
    #[serde(default)]
    pub allow_on_headers_stop_iteration: bool,
}

/// Retry policy of a route.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySpec {
    /// Conditions: `5xx`, `connect-failure`, `reset`, `retriable-4xx` (409), `429`.
    pub retry_on: Vec<String>,
    /// Retries after the first try.
    pub num_retries: u32,
    /// Envoy's `per_try_timeout`: how long each try waits for response headers once the
    /// request is complete (off by default; ignored when not below the route's `timeout`).
    #[serde(deserialize_with = "duration")]
    pub per_try_timeout: Option<Duration>,
}

/// A route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Route name (`route_name` property).
    pub name: String,
    /// Path prefix to match (default `/`).
    #[serde(default = "slash")]
    pub prefix: String,
    /// Host to match: exact, `*.suffix`, or `*` (default).
    #[serde(default)]
    pub host: Option<String>,
    /// Target cluster.
    pub cluster: String,
    /// A request header naming the cluster instead (Envoy's `cluster_header`).
    #[serde(default)]
    pub cluster_header: Option<String>,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetrySpec,
    /// Envoy's route `timeout`: from the end of the request to the end of the response,
    /// retries included (default 15s, `"0s"` disables).
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
    /// Envoy's route `idle_timeout`: overrides the gateway's `stream_idle_timeout`.
    #[serde(default, deserialize_with = "duration")]
    pub idle_timeout: Option<Duration>,
    /// Plugin chain, in request order.
    #[serde(default)]
    pub plugins: Vec<PluginEntry>,
}

fn slash() -> String {
    "/".into()
}

impl RouteSpec {
    /// The route timeout in force (None: disabled).
    pub fn route_timeout(&self) -> Option<Duration> {
        enabled(self.timeout.unwrap_or(DEFAULT_ROUTE_TIMEOUT))
    }

    /// The per-try timeout in force: Envoy ignores one that is not below the route timeout.
    pub fn per_try_timeout(&self) -> Option<Duration> {
        let per_try = enabled(self.retry.per_try_timeout?)?;
        match self.route_timeout() {
            Some(global) if per_try >= global => None,
            _ => Some(per_try),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    /// Listen address (loopback).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Worker VMs per plugin.
    #[serde(default = "one")]
    pub workers: usize,
    /// Per-stream buffer limit in bytes (default 1 MiB).
    #[serde(default)]
    pub buffer_limit: Option<usize>,
    /// Clusters by name.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterSpec>,
    /// Routes, first match wins.
    pub routes: Vec<RouteSpec>,
    /// Access log: `stdout` (default), `off`, or a file path.
    #[serde(default)]
    pub access_log: Option<String>,
    /// Envoy's HCM `stream_idle_timeout` (default 300s, `"0s"` disables).
    #[serde(default, deserialize_with = "duration")]
    pub stream_idle_timeout: Option<Duration>,
    /// Envoy's HCM `max_request_headers_kb` (default 60): larger request headers get 431.
    #[serde(default)]
    pub max_request_headers_kb: Option<u32>,
    /// Envoy's `common_http_protocol_options.max_headers_count` (default 100): more request
    /// headers get 431.
    #[serde(default)]
    pub max_headers_count: Option<u32>,
    /// TLS client configurations of the clusters with `tls`, built at load.
    #[serde(skip)]
    pub tls_configs: HashMap<String, Arc<rustls::ClientConfig>>,
}

fn default_listen() -> String {
    "127.0.0.1:10000".into()
}

fn one() -> usize {
    1
}

/// A resolved cluster endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Address.
    pub addr: SocketAddr,
    /// Priority (0 first).
    pub priority: u32,
    /// TLS, for endpoints of a cluster with `tls`.
    pub tls: Option<TlsTarget>,
}

impl GatewaySpec {
    /// The idle timeout of streams on a route (None: disabled).
    pub fn idle_timeout(&self, route: &RouteSpec) -> Option<Duration> {
        enabled(
            route
                .idle_timeout
                .or(self.stream_idle_timeout)
                .unwrap_or(DEFAULT_STREAM_IDLE_TIMEOUT),
        )
    }

    /// Request header limits: (bytes, count).
    pub fn header_limits(&self) -> (usize, usize) {
        (
            self.max_request_headers_kb
                .unwrap_or(DEFAULT_MAX_REQUEST_HEADERS_KB) as usize
                * 1024,
            self.max_headers_count.unwrap_or(DEFAULT_MAX_HEADERS_COUNT) as usize,
        )
    }

    /// Reads and checks a config file. Errors name the place and the reason.
    pub fn load(path: &Path) -> Result<GatewaySpec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut spec: GatewaySpec = serde_json::from_str(&text)
            .map_err(|e| anyhow!("{}:{}:{}: {}", path.display(), e.line(), e.column(), e))?;
        spec.check()
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for (name, c) in &spec.clusters {
            if let Some(t) = &c.tls {
                let config = tls_config(t, base)
                    .map_err(|e| anyhow!("{}: clusters.{name}.tls.{e}", path.display()))?;
                spec.tls_configs.insert(name.clone(), config);
            }
        }
        Ok(spec)
    }

    fn check(&self) -> Result<()> {
        if self.routes.is_empty() {
            bail!("routes: at least one route is required");
        }
        if self
            .max_request_headers_kb
            .is_some_and(|k| !(1..=8192).contains(&k))
        {
            bail!("max_request_headers_kb: must be 1 to 8192 (as in Envoy)");
        }
        if self.max_headers_count == Some(0) {
            bail!("max_headers_count: must be at least 1");
        }
        for (i, r) in self.routes.iter().enumerate() {
            if !self.clusters.contains_key(&r.cluster) {
                bail!("routes[{i}].cluster: unknown cluster {:?}", r.cluster);
            }
            for rc in &r.retry.retry_on {
                if ![
                    "5xx",
                    "connect-failure",
                    "reset",
                    "retriable-4xx",
                    "429",
                    "gateway-error",
                ]
                .contains(&rc.as_str())
                {
                    bail!("routes[{i}].retry.retry_on: unknown condition {rc:?}");
                }
            }
            for (j, p) in r.plugins.iter().enumerate() {
                if let Some(f) = &p.fail {
                    if !["closed", "open", "reload"].contains(&f.as_str()) {
                        bail!("routes[{i}].plugins[{j}].fail: expected closed, open or reload, got {f:?}");
                    }
                }
            }
        }
        for (name, c) in &self.clusters {
            let dst = c.kind.as_deref() == Some("original_dst");
            if c.kind.is_some() && !dst {
                bail!("clusters.{name}.type: only \"original_dst\" is supported");
            }
            if !dst && c.endpoints.is_empty() {
                bail!("clusters.{name}.endpoints: at least one endpoint is required");
            }
            for (k, e) in c.endpoints.iter().enumerate() {
                let a = match e {
                    EndpointSpec::Plain(a) => a,
                    EndpointSpec::Full { address, .. } => address,
                };
                resolve(a).map_err(|e| anyhow!("clusters.{name}.endpoints[{k}]: {e}"))?;
            }
        }
        Ok(())
    }

    /// Endpoints of a cluster, by priority.
    pub fn endpoints(&self, cluster: &str) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = self
            .clusters
            .get(cluster)
            .map(|c| {
                c.endpoints
                    .iter()
                    .filter_map(|e| {
                        let (a, p) = match e {
                            EndpointSpec::Plain(a) => (a, 0),
                            EndpointSpec::Full { address, priority } => (address, *priority),
                        };
                        let tls = self.tls_configs.get(cluster).map(|config| TlsTarget {
                            config: config.clone(),
                            server_name: c
                                .tls
                                .as_ref()
                                .and_then(|t| t.sni.clone())
                                .unwrap_or_else(|| host_of(a).to_string()),
                        });
                        resolve(a).ok().map(|addr| Endpoint {
                            addr,
                            priority: p,
                            tls,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by_key(|e| e.priority);
        out
    }

    /// The first route matching a path and host.
    pub fn route_for(&self, path: &str, host: &str) -> Option<usize> {
        let host = host.split(':').next().unwrap_or(host);
        self.routes.iter().position(|r| {
            path.starts_with(&r.prefix)
                && match r.host.as_deref() {
                    None | Some("*") => true,
                    Some(h) if h.starts_with("*.") => host.ends_with(&h[1..]),
                    Some(h) => h.eq_ignore_ascii_case(host),
                }
        })
    }
}

/// Resolves `host:port`.
/// The host part of `host:port` (brackets of an IPv6 literal removed).
fn host_of(a: &str) -> &str {
    let host = a.rsplit_once(':').map_or(a, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Resolves `host:port` to its first address.
pub fn resolve(a: &str) -> Result<SocketAddr> {
    a.to_socket_addrs()
        .map_err(|e| anyhow!("bad address {a:?}: {e}"))?
        .next()
        .ok_or_else(|| anyhow!("no address for {a:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_place() {
        let bad = r#"{"routes":[{"name":"r","cluster":"nope"}]}"#;
        let s: GatewaySpec = serde_json::from_str(bad).unwrap();
        assert_eq!(
            s.check().unwrap_err().to_string(),
            "routes[0].cluster: unknown cluster \"nope\""
        );
        let bad = r#"{"clusters":{"c":{"endpoints":["127.0.0.1:1"]}},"routes":[{"name":"r","cluster":"c","retry":{"retry_on":["sometimes"]}}]}"#;
        let s: GatewaySpec = serde_json::from_str(bad).unwrap();
        assert!(s
            .check()
            .unwrap_err()
            .to_string()
            .contains("retry.retry_on"));
        let bad = r#"{"clusters":{"c":{"endpoints":["127.0.0.1:1"]}},"routes":[{"name":"r","cluster":"c","timeout":"soon"}]}"#;
        let e = serde_json::from_str::<GatewaySpec>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a duration"), "{e}");
    }

    #[test]
    fn timeouts_follow_envoy_defaults_and_rules() {
        let s: GatewaySpec = serde_json::from_str(
            r#"{"clusters":{"c":{"endpoints":["127.0.0.1:1"]}},"stream_idle_timeout":"0.5s","routes":[
            {"name":"a","cluster":"c"},
            {"name":"b","cluster":"c","timeout":"0s","idle_timeout":"0s","retry":{"per_try_timeout":"300ms"}},
            {"name":"c","cluster":"c","timeout":"1s","retry":{"per_try_timeout":"2s"}}]}"#,
        )
        .unwrap();
        let (a, b, c) = (&s.routes[0], &s.routes[1], &s.routes[2]);
        assert_eq!(a.route_timeout(), Some(Duration::from_secs(15)));
        assert_eq!(a.per_try_timeout(), None);
        assert_eq!(s.idle_timeout(a), Some(Duration::from_millis(500)));
        assert_eq!(b.route_timeout(), None);
        assert_eq!(b.per_try_timeout(), Some(Duration::from_millis(300)));
        assert_eq!(s.idle_timeout(b), None);
        // A per-try timeout not below the route timeout is ignored.
        assert_eq!(c.per_try_timeout(), None);
        assert_eq!(s.header_limits(), (60 * 1024, 100));
    }

    #[test]
    fn routes_match_prefix_and_host() {
        let s: GatewaySpec = serde_json::from_str(
            r#"{"clusters":{"c":{"endpoints":["127.0.0.1:1"]}},"routes":[
            {"name":"a","prefix":"/v1/","host":"*.example.com","cluster":"c"},
            {"name":"b","cluster":"c"}]}"#,
        )
        .unwrap();
        assert_eq!(s.route_for("/v1/chat", "api.example.com:443"), Some(0));
        assert_eq!(s.route_for("/v1/chat", "other"), Some(1));
        assert_eq!(s.route_for("/x", "api.example.com"), Some(1));
    }
}
