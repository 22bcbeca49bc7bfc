//! The test kit: helpers shared by every test that runs the built `.wasm` modules in host-sim
//! (each plugin's own tests in `plugins/<name>/tests/`, the cross-plugin, gateway and CLI tests
//! in `tests/tests/`) and by the benchmarks. Where the built modules are ([`spec`],
//! [`module_path`]); one simulator per plugin ([`load`]); one chat/messages request builder
//! ([`Chat`]); upstream answers ([`answer`]); one "at every split" driver ([`at_every_split`]);
//! SSE readers ([`sse`]); real local servers (Redis, the rate limit service, `host-sim serve`) on
//! free loopback ports.

pub mod answer;
pub mod chat;
pub mod sse;

pub use chat::Chat;

use host_sim::{PluginSpec, Request, Sim, SimOptions, StreamRecord, UpstreamResponse};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root (this crate is `tests/kit`).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(|p| p.to_path_buf())
        .unwrap_or_default()
}

/// Path of a shipped example configuration: `plugins/<plugin>/example.json` for `<plugin>`,
/// and `plugins/<plugin>/example-<variant>.json` for the variants `<plugin>-upstream` and
/// `<plugin>-rls` (ai-proxy in upstream mode, ai-token-ratelimit in rls mode).
pub fn example_config(name: &str) -> PathBuf {
    for variant in ["upstream", "rls"] {
        if let Some(plugin) = name.strip_suffix(&format!("-{variant}")) {
            return root()
                .join("plugins")
                .join(plugin)
                .join(format!("example-{variant}.json"));
        }
    }
    root().join("plugins").join(name).join("example.json")
}

/// The text of a shipped example configuration (see [`example_config`]); panics (in a test)
/// when it is missing.
pub fn read_example_config(name: &str) -> String {
    let path = example_config(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Path of a built module: `dist/<name>.wasm` for plugins, `dist/higress/<plugin>.wasm` for
/// `<plugin>-higress` (the `higress`-feature build), `dist/test/<name>.wasm` for fixtures.
pub fn module_path(name: &str) -> PathBuf {
    if let Some(plugin) = name.strip_suffix("-higress") {
        return root()
            .join("dist")
            .join("higress")
            .join(format!("{plugin}.wasm"));
    }
    let plugin = root().join("dist").join(format!("{name}.wasm"));
    if plugin.exists() {
        return plugin;
    }
    root()
        .join("dist")
        .join("test")
        .join(format!("{name}.wasm"))
}

/// The error plugin `name` fails to load with under `config` (the field path and reason its
/// `on_configure` logs). Panics when the plugin accepts the configuration.
pub fn config_error(name: &str, config: &str) -> String {
    let mut sim = Sim::new(SimOptions::default());
    match sim.add_plugin(spec(name).config_json(config)) {
        Ok(_) => panic!("{name} accepted {config}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that plugin `name` rejects each configuration, with a load error containing the
/// paired text (the field path and reason its `on_configure` logs).
pub fn assert_configs_rejected(name: &str, cases: &[(&str, &str)]) {
    for (config, want) in cases {
        let err = config_error(name, config);
        assert!(
            err.contains(want),
            "config {config}\n want: {want}\n got: {err}"
        );
    }
}

/// A plugin spec for a built module. Panics with a hint when the module was not built.
pub fn spec(name: &str) -> PluginSpec {
    let p = module_path(name);
    assert!(
        p.exists(),
        "{} is missing: run `make build` first",
        p.display()
    );
    match PluginSpec::from_file(&p) {
        Ok(s) => s.name(name),
        Err(e) => panic!("cannot load {}: {e:#}", p.display()),
    }
}

/// A simulator with `workers` worker VMs and plugin `name` (see [`spec`]) loaded with JSON
/// `config`. Panics with the plugin's logs when it rejects the configuration.
pub fn load(name: &str, workers: usize, config: &str) -> Sim {
    let mut sim = Sim::new(SimOptions {
        workers,
        ..Default::default()
    });
    if let Err(e) = sim.add_plugin(spec(name).config_json(config)) {
        panic!("{name} rejected its config: {e:#}\n{:#?}", sim.logs());
    }
    sim
}

/// Runs `req` once for every way of splitting the upstream answer `resp` into pieces: with
/// pieces of 1 byte, 2 bytes, ... up to the whole body in one piece. `check` gets the
/// simulator, the piece size and the stream's record.
pub fn at_every_split(
    sim: &mut Sim,
    req: &Request,
    resp: &UpstreamResponse,
    mut check: impl FnMut(&Sim, usize, &StreamRecord),
) {
    let len: usize = resp.chunks.iter().map(Vec::len).sum();
    for k in 1..=len.max(1) {
        let rec = sim
            .run(req.clone(), resp.clone().chunked(k))
            .unwrap_or_else(|e| panic!("pieces of {k} bytes: {e:#}"));
        check(sim, k, &rec);
    }
}

/// Runs `req` once for every byte of the upstream answer `resp`: the body cut in two at that
/// byte (from before the first to after the last), the two pieces delivered one after the
/// other. `check` gets the simulator, the cut's offset and the stream's record.
pub fn at_every_cut(
    sim: &mut Sim,
    req: &Request,
    resp: &UpstreamResponse,
    mut check: impl FnMut(&Sim, usize, &StreamRecord),
) {
    let body: Vec<u8> = resp.chunks.concat();
    for at in 0..=body.len() {
        let mut cut = resp.clone();
        cut.chunks = vec![body[..at].to_vec(), body[at..].to_vec()];
        let rec = sim
            .run(req.clone(), cut)
            .unwrap_or_else(|e| panic!("cut at {at}: {e:#}"));
        check(sim, at, &rec);
    }
}

/// Sends the upstream's response headers of open stream `sid`: status 200 with `content_type`,
/// more to come.
pub fn send_200(sim: &mut Sim, sid: u64, content_type: &str) {
    sim.send_response_headers(
        sid,
        200,
        &[("content-type".into(), content_type.into())],
        false,
    )
    .unwrap_or_else(|e| panic!("response headers: {e:#}"));
}

/// The whole request reached the upstream.
pub fn reached_upstream(rec: &StreamRecord) -> bool {
    rec.upstream_request.as_ref().is_some_and(|u| u.complete)
}

/// Asserts the client got `status` and the request never reached the upstream whole.
pub fn assert_refused(rec: &StreamRecord, status: u16, what: &str) {
    assert_eq!(
        rec.response.status,
        status,
        "{what}: {}",
        rec.response.body_str()
    );
    assert!(
        !reached_upstream(rec),
        "{what}: a refused request must not reach the upstream"
    );
}

/// The `error.message` of an OpenAI-shaped error the client got ("" when there is none).
pub fn error_message(rec: &StreamRecord) -> String {
    rec.response.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A header of the request the upstream got (None when nothing reached it).
pub fn upstream_header<'a>(rec: &'a StreamRecord, name: &str) -> Option<&'a str> {
    rec.upstream_request.as_ref().and_then(|u| u.header(name))
}

/// The JSON a plugin published as filter state `key` (such as `aigw.usage`, `aigw.log`).
/// Panics, naming the keys there are, when it is not set.
pub fn filter_state_json(rec: &StreamRecord, key: &str) -> serde_json::Value {
    let raw = rec.filter_state.get(key).unwrap_or_else(|| {
        panic!(
            "no {key} in {:?}",
            rec.filter_state.keys().collect::<Vec<_>>()
        )
    });
    serde_json::from_slice(raw).unwrap_or_else(|e| panic!("{key} is not JSON: {e}"))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A real `redis-server` on a free loopback port, stopped when dropped.
pub struct RedisServer {
    child: Option<Child>,
    /// Its address.
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts redis-server (installed by `make setup`) on a free loopback port and waits until
    /// it accepts connections.
    pub fn start() -> RedisServer {
        RedisServer::start_on(free_port())
    }

    /// Starts redis-server on loopback port `port` (for example where a stopped one listened,
    /// to test a restart) and waits until it accepts connections.
    pub fn start_on(port: u16) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("aigw-redis-{port}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server (run `make setup`): {e}"));
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer {
            child: Some(child),
            addr,
            dir,
        }
    }

    /// Stops the server (as if it crashed).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The log messages of a simulator that contain `needle`, in order.
pub fn logs_with(sim: &host_sim::Sim, needle: &str) -> Vec<String> {
    sim.logs()
        .into_iter()
        .filter(|l| l.message.contains(needle))
        .map(|l| l.message)
        .collect()
}

/// The third-party wheel the interoperability tests run: Higress plugins built by others with
/// the Go toolchain (ABI `proxy_abi_version_0_2_100`).
const GPUSTACK_WHEEL: &str = "gpustack-higress-plugins==0.5.1";

/// Path of a plugin module shipped in the PyPI package `gpustack-higress-plugins` 0.5.1, e.g.
/// `gpustack_module("ai-statistics", "2.0.0")`.
///
/// The wheel is downloaded once per machine with `python3 -m pip download` and unpacked with
/// python3's `zipfile` into `target/third-party/`. Parallel tests (threads or processes) each
/// unpack into their own temporary directory and publish it with one atomic `rename`; whoever
/// loses the race throws its copy away, so a half-written tree is never visible. The modules
/// are never committed. Panics with the reason when the download or the module is missing.
pub fn gpustack_module(name: &str, version: &str) -> PathBuf {
    let tree = gpustack_tree();
    let p = tree
        .join("gpustack_higress_plugins")
        .join("plugins")
        .join(name)
        .join(version)
        .join("plugin.wasm");
    assert!(p.exists(), "{} is not in {GPUSTACK_WHEEL}", p.display());
    p
}

/// The unpacked wheel, downloading it on first use.
fn gpustack_tree() -> PathBuf {
    // One download per process at a time; other processes are handled by the rename below.
    static ONCE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    let base = root().join("target").join("third-party");
    let done = base.join("gpustack-higress-plugins-0.5.1");
    if done.join("gpustack_higress_plugins").is_dir() {
        return done;
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tmp = base.join(format!(".tmp-{}-{stamp}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", tmp.display()));
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
        ])
        .arg(GPUSTACK_WHEEL)
        .arg("-d")
        .arg(&tmp)
        .status()
        .unwrap_or_else(|e| panic!("cannot run python3 -m pip: {e}"));
    assert!(
        status.success(),
        "pip download {GPUSTACK_WHEEL} failed ({status})"
    );
    let wheel = std::fs::read_dir(&tmp)
        .ok()
        .and_then(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "whl"))
        })
        .unwrap_or_else(|| panic!("pip left no wheel in {}", tmp.display()));
    let tree = tmp.join("tree");
    let status = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])",
        ])
        .arg(&wheel)
        .arg(&tree)
        .status()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
    assert!(
        status.success(),
        "unzipping {} failed ({status})",
        wheel.display()
    );
    // Publish atomically. If another process published first, its tree is as good as ours.
    if std::fs::rename(&tree, &done).is_err() {
        assert!(
            done.join("gpustack_higress_plugins").is_dir(),
            "cannot move {} to {}",
            tree.display(),
            done.display()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
    done
}

/// The `host-sim` binary, built once per test run next to this test's own executable (the
/// same target directory and profile). Building through cargo keeps it current under
/// `cargo test --workspace`, which does not build other packages' binaries by itself. The
/// bench binary (`target/<profile>/bench`) finds it the same way.
pub fn host_sim_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| workspace_bin("host-sim", "host-sim"))
}

/// The `aigw-rls` binary (the test rate limit service), built like [`host_sim_bin`].
pub fn rls_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| workspace_bin("aigw-rls", "aigw-rls"))
}

/// Builds binary `bin` of workspace package `package` next to this executable (same target
/// directory and profile) and returns its path.
///
/// The build selects the whole workspace (`--workspace --bin`), not the package alone: cargo
/// then resolves dependency features as `cargo test --workspace` does, so the binary that run
/// already built is reused. With `-p` the features differ and wasmtime, cranelift and the
/// servers' crates were rebuilt once more (about nine minutes of a CI run on two cores).
pub fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    // Tests: target/<profile>/deps/cli-<hash>; binaries: target/<profile>/bench.
    let exe = std::env::current_exe().expect("test executable path");
    let mut profile_dir = exe.parent().expect("target/<profile>").to_path_buf();
    if profile_dir.file_name().is_some_and(|n| n == "deps") {
        profile_dir = profile_dir
            .parent()
            .expect("target/<profile>")
            .to_path_buf();
    }
    let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let out = Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["build", "-q", "--workspace", "--bin", bin, "--profile"])
        .arg(&profile)
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .expect("run cargo build");
    assert!(
        out.status.success(),
        "cargo build --bin {bin} (package {package}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = profile_dir.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} was not built", bin.display());
    bin
}

/// A real `aigw-rls` (an Envoy rate limit service on Limitador and Redis) on a free loopback
/// port, stopped when dropped. It prints one JSON line per `ShouldRateLimit` request, which
/// [`RlsServer::requests`] returns: what the gateways sent, as the service decoded it.
pub struct RlsServer {
    child: Option<Child>,
    /// Its address.
    pub addr: SocketAddr,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RlsServer {
    /// Starts the service with the limits of plugin configuration `config`, counting in the
    /// Redis at `redis`, and waits until it listens.
    pub fn start(config: &Path, redis: SocketAddr) -> RlsServer {
        use std::io::BufRead;
        let mut child = Command::new(rls_bin())
            .args(["--listen", "127.0.0.1:0", "--redis"])
            .arg(format!("redis://{redis}"))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aigw-rls");
        let stdout = child.stdout.take().expect("aigw-rls stdout");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_string());
                } else if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("aigw-rls did not start listening")
            .parse()
            .expect("aigw-rls printed its address");
        RlsServer {
            child: Some(child),
            addr,
            lines,
        }
    }

    /// Every request the service answered so far, in order (one JSON object each: `domain`,
    /// `hits_addend`, `hits`, `descriptors` as `[key, value]` lists, `codes`).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .map(|l| {
                l.iter()
                    .filter_map(|s| serde_json::from_str(s).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (up to 10 s) until the service answered `n` requests and returns them.
    pub fn wait_requests(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.requests();
            if r.len() >= n || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the service.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RlsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `host-sim serve` as a child process (the gateway in a second process), killed when dropped.
pub struct ServeProcess {
    child: Child,
    stderr: PathBuf,
}

impl ServeProcess {
    /// Starts `host-sim serve <config>` with stderr in `stderr` and waits (up to 120 s) until
    /// it listens on `port` of 127.0.0.1. Panics with the gateway's stderr otherwise.
    pub fn start(config: &Path, stderr: &Path, port: u16) -> ServeProcess {
        let err = std::fs::File::create(stderr).expect("create the stderr file");
        let child = Command::new(host_sim_bin())
            .arg("serve")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start host-sim serve");
        let gw = ServeProcess {
            child,
            stderr: stderr.to_path_buf(),
        };
        let up = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < up,
                "the gateway did not listen within 120 s; its stderr:\n{}",
                gw.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        gw
    }

    /// What the gateway wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal blocking HTTP/1.1 client for tests against real servers (`Connection: close`).
pub mod http {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    /// A response: status, lower-case headers, decoded body.
    pub type Response = (u16, Vec<(String, String)>, Vec<u8>);

    /// The head of a `Connection: close` request with a `content-length` of `body_len` and
    /// the extra `headers`, up to and including the blank line.
    pub fn request_head<K: AsRef<str>, V: AsRef<str>>(
        method: &str,
        host: &str,
        path: &str,
        headers: &[(K, V)],
        body_len: usize,
    ) -> String {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {body_len}\r\n"
        );
        for (k, v) in headers {
            head.push_str(&format!("{}: {}\r\n", k.as_ref(), v.as_ref()));
        }
        head.push_str("\r\n");
        head
    }

    /// One exchange with `addr`; `host` is the `host` header. A chunked body is decoded.
    pub fn exchange(
        addr: (&str, u16),
        host: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let head = request_head(method, host, path, headers, body.len());
        s.write_all(head.as_bytes())
            .and_then(|_| s.write_all(body))
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no end of the response head")?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let rest = &raw[split + 4..];
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("bad status line in {head:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked {
            dechunk(rest)?
        } else {
            rest.to_vec()
        };
        Ok((status, headers, body))
    }

    /// Decodes a chunked body.
    pub fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        loop {
            let eol = b
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("truncated chunked body")?;
            let size_text = String::from_utf8_lossy(&b[..eol]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| format!("bad chunk size {size_text:?}"))?;
            b = &b[eol + 2..];
            if size == 0 {
                return Ok(out);
            }
            let data = b.get(..size).ok_or("truncated chunk")?;
            out.extend_from_slice(data);
            b = b.get(size + 2..).ok_or("truncated chunk")?;
        }
    }
}

/// Helpers for tests that drive the `host-sim` command line: scratch folders, files, runs and
/// their output.
pub mod cli {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    /// A fresh-enough scratch folder for one test: `<tmp>/aigw-<suite>-<pid>-<test>`.
    pub fn scratch(suite: &str, test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("aigw-{suite}-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    /// Writes `text` to `dir/name` and returns the path.
    pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    /// Runs `host-sim` with `args` and returns its status and output.
    pub fn host_sim(args: &[&str]) -> Output {
        Command::new(super::host_sim_bin())
            .args(args)
            .output()
            .expect("run host-sim")
    }

    /// Runs `host-sim run <module> --request <request>` and then the `extra` arguments; returns
    /// its status and output.
    pub fn run_request(
        module: impl AsRef<std::ffi::OsStr>,
        request: &Path,
        extra: &[&str],
    ) -> Output {
        Command::new(super::host_sim_bin())
            .arg("run")
            .arg(module)
            .arg("--request")
            .arg(request)
            .args(extra)
            .output()
            .expect("run host-sim")
    }

    /// What a run wrote to stdout.
    pub fn stdout(o: &Output) -> String {
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Asserts a run exited with `code` and wrote `want` to stdout (both streams in the
    /// messages when not).
    pub fn assert_run(o: &Output, code: i32, want: &str) {
        assert_eq!(o.status.code(), Some(code), "{}", stderr(o));
        assert!(stdout(o).contains(want), "want {want:?} in:\n{}", stdout(o));
    }

    /// What a run wrote to stderr.
    pub fn stderr(o: &Output) -> String {
        String::from_utf8_lossy(&o.stderr).into_owned()
    }
}

/// A gRPC server over plain-text HTTP/2 on a free loopback port that answers every call, after
/// `delay`, with an empty message, proper framing and trailer `grpc-status: grpc_status`: a
/// service that is not the one a plugin expects, or one that fails or is slow.
pub fn grpc_stub(grpc_status: u32, delay: Duration) -> SocketAddr {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).expect("listener");
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| async move {
                            let framed = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            assert!(framed.len() >= 5, "a gRPC message is framed");
                            tokio::time::sleep(delay).await;
                            let mut trailers = hyper::HeaderMap::new();
                            trailers.insert("grpc-status", grpc_status.into());
                            let body = Full::new(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]))
                                .with_trailers(async move { Some(Ok(trailers)) });
                            let resp = hyper::Response::builder()
                                .header("content-type", "application/grpc")
                                .body(body)
                                .expect("response");
                            Ok::<_, std::convert::Infallible>(resp)
                        },
                    );
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
    });
    addr
}
