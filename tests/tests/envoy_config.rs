//! The Envoy and Higress configuration we ship: every Envoy YAML is validated against Envoy's
//! own API (xds-protos: unknown or misspelled fields fail at any depth), and every plugin
//! configuration embedded in it is checked by the plugin itself (host-sim runs on_configure).

use aigw_tests::root;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A Python venv with xds-protos, created once under target/.
fn venv_python() -> PathBuf {
    let venv = root().join("target").join("venv-xds");
    let py = venv.join("bin").join("python");
    let marker = venv.join(".ready");
    if marker.exists() {
        return py;
    }
    let lock = root().join("target").join("venv-xds.lock");
    // One creator at a time (tests run in parallel).
    for _ in 0..600 {
        if std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
            .is_ok()
        {
            break;
        }
        if marker.exists() {
            return py;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    if !marker.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
            && Command::new(&py)
                .args(["-m", "pip", "install", "-q", "xds-protos==1.85.0", "pyyaml"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
        assert!(
            ok,
            "could not create the xds-protos venv (needs python3 and PyPI)"
        );
        std::fs::write(&marker, b"ok").unwrap();
    }
    let _ = std::fs::remove_file(&lock);
    py
}

fn check(files: &[PathBuf]) -> Result<Vec<serde_json::Value>, String> {
    let out = Command::new(venv_python())
        .arg(root().join("envoy").join("check_config.py"))
        .args(files)
        .output()
        .expect("run check_config.py");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect())
}

fn shipped() -> Vec<PathBuf> {
    let mut files = vec![root().join("envoy").join("envoy.yaml")];
    for dir in ["ecds", "higress"] {
        if let Ok(rd) = std::fs::read_dir(root().join("envoy").join(dir)) {
            let mut v: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .collect();
            v.sort();
            files.extend(v);
        }
    }
    files
}

#[test]
fn shipped_envoy_and_higress_files_are_valid_and_their_plugin_configs_load() {
    let files = shipped();
    let filters = check(&files).unwrap_or_else(|e| panic!("invalid Envoy config: {e}"));
    assert!(!filters.is_empty(), "no wasm filters found");
    let mut checked = 0;
    for f in filters {
        let module = Path::new(f["module"].as_str().unwrap_or(""))
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = root().join("dist").join(&module);
        assert!(
            path.exists(),
            "{}: module {module} is not built by this project",
            f["file"]
        );
        let spec = host_sim::PluginSpec::from_file(&path)
            .unwrap()
            .config_json(f["config"].as_str().unwrap_or(""));
        let mut sim = host_sim::Sim::new(Default::default());
        if let Err(e) = sim.add_plugin(spec) {
            panic!(
                "{} ({}): the plugin rejects its config: {e:#}",
                f["file"], f["name"]
            );
        }
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} plugin configs checked");
    // ECDS files referenced by envoy.yaml exist.
    let text = std::fs::read_to_string(root().join("envoy").join("envoy.yaml")).unwrap();
    for line in text
        .lines()
        .filter(|l| l.contains("path: /etc/envoy/ecds/"))
    {
        let name = line
            .rsplit('/')
            .next()
            .unwrap_or("")
            .trim_end_matches(|c: char| c == '}' || c.is_whitespace());
        assert!(
            root().join("envoy/ecds").join(name).exists(),
            "missing ECDS file {name}"
        );
    }
}

#[test]
fn a_misspelled_field_deep_inside_typed_config_is_rejected() {
    let text = std::fs::read_to_string(root().join("envoy").join("envoy.yaml")).unwrap();
    assert!(text.contains("stat_prefix"), "fixture assumption");
    let bad = text.replacen("stat_prefix", "stat_prefx", 1);
    let dir = std::env::temp_dir().join(format!("aigw-envoy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("envoy.yaml");
    std::fs::write(&path, bad).unwrap();
    let err = check(&[path]).unwrap_err();
    assert!(err.contains("stat_prefx"), "{err}");
    // And an unknown field inside the wasm filter's own config message (an ECDS file).
    let ecds = std::fs::read_to_string(root().join("envoy/ecds/ai-proxy.yaml")).unwrap();
    assert!(ecds.contains("vm_config:"), "fixture assumption");
    let bad = ecds.replacen("vm_config:", "vm_confg:", 1);
    let path = dir.join("envoy2.yaml");
    std::fs::write(&path, bad).unwrap();
    let err = check(&[path]).unwrap_err();
    assert!(err.contains("vm_confg"), "{err}");
}

#[test]
fn shipped_plugin_configs_match_the_examples() {
    let out = Command::new("python3")
        .arg(root().join("scripts").join("gen-envoy-config.py"))
        .arg("--check")
        .output()
        .expect("run gen-envoy-config.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `envoy/gateway.json` (what `make run` serves) loads: every route's chain is built and every
/// plugin accepts its configuration, with the whole pack on the main route.
#[test]
fn the_local_gateway_config_loads_with_every_plugin() {
    let path = aigw_tests::root().join("envoy/gateway.json");
    let gw = host_sim::gateway::server::Gateway::load(&path)
        .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    let current = gw.current();
    let names = |route: &str| -> Vec<String> {
        current
            .spec
            .routes
            .iter()
            .find(|r| r.name == route)
            .map(|r| r.plugins.iter().map(|p| p.name.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(names("llm"), aigw_tests::SHIPPED_CHAIN);
    assert_eq!(names("balanced"), vec!["ai-load-balancer", "ai-proxy"]);
    for sim in &current.sims {
        let sim = sim.lock().unwrap();
        assert!(sim.chain_len() > 0);
    }
}

/// ai-token-ratelimit runs in mode rls on Envoy: the service's configuration
/// (envoy/ratelimit/config.yaml) is what `aigw-rls --envoy-ratelimit-config` generates from
/// the same example, Envoy has an HTTP/2 cluster for the service under the name the plugin
/// calls, and the compose file runs envoyproxy/ratelimit with that configuration and a Redis.
#[test]
fn the_rate_limit_service_matches_the_plugin_config_and_envoy_reaches_it() {
    let example = aigw_tests::example_config("ai-token-ratelimit-rls");
    let out = Command::new(aigw_tests::rls_bin())
        .arg("--envoy-ratelimit-config")
        .arg(&example)
        .output()
        .expect("run aigw-rls");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shipped = std::fs::read_to_string(root().join("envoy/ratelimit/config.yaml")).unwrap();
    let body: String = shipped
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        body,
        String::from_utf8_lossy(&out.stdout),
        "envoy/ratelimit/config.yaml is stale (see its header)"
    );

    let example: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&example).unwrap()).unwrap();
    assert_eq!(example["mode"], "rls");
    let cluster = example["rls"]["cluster"].as_str().unwrap();
    let ecds = std::fs::read_to_string(root().join("envoy/ecds/ai-token-ratelimit.yaml")).unwrap();
    assert!(ecds.contains("\"mode\": \"rls\""), "{ecds}");
    assert!(
        ecds.contains(&format!("\"cluster\": \"{cluster}\"")),
        "{ecds}"
    );

    let envoy = std::fs::read_to_string(root().join("envoy/envoy.yaml")).unwrap();
    let at = envoy
        .find(&format!("  - name: {cluster}\n"))
        .unwrap_or_else(|| panic!("envoy.yaml has no cluster {cluster}"));
    let block = &envoy[at + 1..];
    let block = &block[..block.find("\n  - name: ").unwrap_or(block.len())];
    assert!(
        block.contains("http2_protocol_options"),
        "gRPC needs HTTP/2: {block}"
    );
    assert!(block.contains("port_value: 8081"), "{block}");

    let compose = std::fs::read_to_string(root().join("envoy/docker-compose.yaml")).unwrap();
    for want in [
        "image: envoyproxy/ratelimit:",
        "./ratelimit:/data/ratelimit/config:ro",
        "REDIS_URL=ratelimit-redis:6379",
        "GRPC_PORT=8081",
        "  ratelimit-redis:\n    image: redis:",
        "depends_on: [mock-llm, mock-llm-backup, redis, ratelimit]",
    ] {
        assert!(compose.contains(want), "docker-compose.yaml lacks {want:?}");
    }
}
