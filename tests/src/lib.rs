//! Helpers shared by the end-to-end tests: where the built modules are, and real local
//! servers (Redis) the tests start on free loopback ports.

use host_sim::PluginSpec;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default()
}

/// Path of a built module: `dist/<name>.wasm` for plugins, `dist/test/<name>.wasm` for fixtures.
pub fn module_path(name: &str) -> PathBuf {
    let plugin = root().join("dist").join(format!("{name}.wasm"));
    if plugin.exists() {
        return plugin;
    }
    root().join("dist").join("test").join(format!("{name}.wasm"))
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
    /// Starts redis-server (installed by `make setup`) and waits until it accepts connections.
    pub fn start() -> RedisServer {
        let port = free_port();
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
