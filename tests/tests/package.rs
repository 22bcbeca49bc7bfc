//! `make package`: the Higress plugin images, checked with real OCI tools from Debian.
//!
//! * `skopeo inspect --raw` / `skopeo inspect` read each image layout: media types, layer order
//!   (README, spec.yaml, then the tar+gzip `plugin.wasm` layer last, as Higress's and Istio's
//!   fetchers need), digests and sizes of the blobs, and the module inside (unpacked with the
//!   system `tar`) byte for byte against `dist/<plugin>.wasm` and its `.sha256` file.
//! * Debian's `docker-registry` on a free loopback port: `skopeo copy` pushes the images and
//!   copies them back out; the manifest keeps its digest and the module comes back identical.
//! * spec.yaml (parsed with serde_yaml): name, version, and the phase and priority the
//!   plugin's README documents; an OpenAPI 3.0 schema with no `$ref`/`$defs`/`$schema` left.
//! * Same inputs, same digests; a missing schema fails with a message naming the file.
//!
//! The configuration schemas are generated in the test from the plugins' config types, as
//! `scripts/config-schemas.sh` does, into the test's own scratch folder.

use aigw_package::plugins::{PluginMeta, PLUGINS};
use aigw_tests::{free_port, root};
use serde_json::Value;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Plugins whose images also go through the registry: one with a Higress build (two
/// images), one without. Every image is checked with skopeo.
const ROUND_TRIP: &[&str] = &["ai-token-ratelimit", "ai-statistics"];

/// `<tmp>/aigw-package-<pid>-<test>`, emptied.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aigw-package-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when skopeo and docker-registry are there, installing them (as `make setup` does)
/// when they are not. False, with a visible message, only when they cannot be installed.
fn oci_tools() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        if have("skopeo") && have("docker-registry") {
            return true;
        }
        let install = || {
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "skopeo",
                    "docker-registry",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !install() {
            // A fresh machine may have no package lists yet.
            let _ = Command::new("apt-get")
                .args(["update", "-qq"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            install();
        }
        let ok = have("skopeo") && have("docker-registry");
        if !ok {
            eprintln!(
                "SKIPPED: skopeo and docker-registry are missing and could not be installed \
                 (run `make setup` as root on Debian)"
            );
        }
        ok
    })
}

/// The packager binary, built next to this test (same target directory and profile).
fn packager() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| aigw_tests::workspace_bin("aigw-package", "aigw-package"))
}

/// A folder with each plugin's configuration schema, generated from its Rust config types
/// (what `scripts/config-schemas.sh` writes to `dist/`).
fn schemas(dir: &Path, plugins: &[&str]) -> PathBuf {
    let out = dir.join("schemas");
    std::fs::create_dir_all(&out).expect("schemas dir");
    for p in plugins {
        let schema = config_schema::schema(p).unwrap_or_else(|| panic!("{p}: no schema"));
        std::fs::write(
            out.join(config_schema::file_name(p)),
            config_schema::render(&schema),
        )
        .expect("write schema");
    }
    out
}

/// Runs the packager for `plugins` into `dir/<out>`.
fn package(dir: &Path, schemas: &Path, out: &str, plugins: &[&str]) -> Output {
    Command::new(packager())
        .arg("--root")
        .arg(root())
        .arg("--dist")
        .arg(root().join("dist"))
        .arg("--schemas")
        .arg(schemas)
        .arg("--out")
        .arg(dir.join(out))
        .args(plugins)
        .output()
        .expect("run aigw-package")
}

fn module_for(image: &str) -> PathBuf {
    let p = aigw_tests::module_path(image);
    assert!(
        p.exists(),
        "{} is missing: run `make build` first",
        p.display()
    );
    p
}

fn sha256_hex(bytes: &[u8]) -> String {
    aigw_package::oci::digest(bytes)
        .trim_start_matches("sha256:")
        .to_string()
}

/// `plugin.wasm` out of a tar+gzip layer, unpacked by the system `tar`.
fn unpack_wasm(layer: &Path, dir: &Path) -> Vec<u8> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("unpack dir");
    run(Command::new("tar")
        .arg("-xzf")
        .arg(layer)
        .arg("-C")
        .arg(dir));
    let names: Vec<String> = std::fs::read_dir(dir)
        .expect("unpacked")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["plugin.wasm"], "the layer holds plugin.wasm only");
    std::fs::read(dir.join("plugin.wasm")).expect("plugin.wasm")
}

/// The module must equal the shipped one and match its `.sha256` file.
fn assert_module(wasm: &[u8], image: &str) {
    let module = module_for(image);
    assert!(
        wasm == std::fs::read(&module).expect("module"),
        "{image}: module differs from {}",
        module.display()
    );
    let sha_file = format!("{}.sha256", module.display());
    let want = std::fs::read_to_string(&sha_file).unwrap_or_else(|e| panic!("{sha_file}: {e}"));
    assert_eq!(
        want.split_whitespace().next(),
        Some(sha256_hex(wasm).as_str()),
        "{image}: sha256 differs from {sha_file}"
    );
}

/// Phase and priority of the `WasmPlugin` example in a plugin's README (Higress's defaults,
/// UNSPECIFIED_PHASE and 0, where the README sets none).
fn readme_phase_priority(plugin: &str) -> (String, i64) {
    let text = std::fs::read_to_string(root().join("plugins").join(plugin).join("README.md"))
        .expect("README");
    let block = text.split("kind: WasmPlugin").nth(1).unwrap_or("");
    let block = block.split("```").next().unwrap_or("");
    let field = |name: &str| {
        block
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let phase = field("phase:").unwrap_or_else(|| "UNSPECIFIED_PHASE".into());
    let priority = field("priority:").map_or(0, |p| p.parse().expect("priority"));
    (phase, priority)
}

fn workspace_version() -> String {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let pkg = text
        .split("[workspace.package]")
        .nth(1)
        .expect("[workspace.package]");
    let line = pkg
        .lines()
        .find(|l| l.trim_start().starts_with("version"))
        .expect("version");
    line.split('"').nth(1).expect("quoted version").to_string()
}

fn meta(plugin: &str) -> &'static PluginMeta {
    PLUGINS
        .iter()
        .find(|p| p.name == plugin)
        .expect("packaged plugin")
}

/// Checks one image layout with skopeo and by reading its blobs; returns the manifest bytes.
fn check_layout(layout: &Path, plugin: &str, image: &str, work: &Path) -> Vec<u8> {
    let oci_ref = format!("oci:{}", layout.display());
    let raw = run(Command::new("skopeo").args(["inspect", "--raw", &oci_ref])).stdout;
    let manifest: Value = serde_json::from_slice(&raw).expect("manifest JSON");
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(
        manifest["annotations"]["module.wasm.image/variant"],
        "compat"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    let types: Vec<&str> = layers
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        types,
        [
            "application/vnd.module.wasm.doc.v1+markdown",
            "application/vnd.module.wasm.spec.v1+yaml",
            "application/vnd.oci.image.layer.v1.tar+gzip"
        ],
        "{image}: README, spec.yaml, then plugin.wasm last"
    );
    let blob = |d: &Value| -> Vec<u8> {
        let d = d["digest"].as_str().expect("digest");
        let bytes = std::fs::read(
            layout
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .expect("blob");
        assert_eq!(
            format!("sha256:{}", sha256_hex(&bytes)),
            d,
            "{image}: blob digest"
        );
        bytes
    };
    for d in layers.iter().chain([&manifest["config"]]) {
        assert_eq!(
            d["size"].as_u64(),
            Some(blob(d).len() as u64),
            "{image}: blob size"
        );
    }
    // README layer: the plugin's README as it is.
    let readme =
        std::fs::read(root().join("plugins").join(plugin).join("README.md")).expect("README");
    assert!(blob(&layers[0]) == readme, "{image}: README layer");
    // spec.yaml layer.
    let spec: Value = serde_yaml::from_slice(&blob(&layers[1])).expect("spec.yaml is YAML");
    let (phase, priority) = readme_phase_priority(plugin);
    assert_eq!(spec["apiVersion"], "1.0.0");
    assert_eq!(spec["info"]["name"], plugin);
    assert_eq!(spec["info"]["version"], workspace_version().as_str());
    assert_eq!(spec["info"]["category"], meta(plugin).category);
    assert_eq!(
        spec["spec"]["phase"],
        phase.as_str(),
        "{image}: phase as in its README"
    );
    assert_eq!(
        spec["spec"]["priority"], priority,
        "{image}: priority as in its README"
    );
    let schema = &spec["spec"]["configSchema"]["openAPIV3Schema"];
    assert_eq!(schema["type"], "object");
    let text = schema.to_string();
    // `$schema` as a keyword is dropped; the property of that name (editors' schema link,
    // which the plugins accept) stays.
    assert!(
        schema.get("$schema").is_none(),
        "{image}: $schema keyword left"
    );
    for gone in ["\"$ref\"", "\"$defs\"", "\"const\"", "\"prefixItems\""] {
        assert!(
            !text.contains(gone),
            "{image}: {gone} left in openAPIV3Schema"
        );
    }
    if let Ok(example) = std::fs::read_to_string(aigw_tests::example_config(plugin)) {
        let example: Value = serde_json::from_str(&example).expect("example JSON");
        assert_eq!(
            schema["example"], example,
            "{image}: example is plugins/{plugin}/example.json"
        );
    }
    // The wasm layer: a tar+gzip holding plugin.wasm, the shipped module.
    let tgz = work.join(format!("{image}.tar.gz"));
    std::fs::write(&tgz, blob(&layers[2])).expect("write layer");
    assert_module(
        &unpack_wasm(&tgz, &work.join(format!("{image}-unpacked"))),
        image,
    );
    // The config's diff ids name the uncompressed layers.
    let config: Value = serde_json::from_slice(&blob(&manifest["config"])).expect("config JSON");
    let tar_bytes = {
        let out = run(Command::new("gzip").arg("-dc").arg(&tgz)).stdout;
        format!("sha256:{}", sha256_hex(&out))
    };
    assert_eq!(config["rootfs"]["diff_ids"][2], tar_bytes.as_str());
    // skopeo's own reading: the manifest digest the index names, the same layers.
    let info: Value =
        serde_json::from_slice(&run(Command::new("skopeo").args(["inspect", &oci_ref])).stdout)
            .expect("inspect JSON");
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("index JSON");
    assert_eq!(info["Digest"], index["manifests"][0]["digest"]);
    assert_eq!(
        format!("sha256:{}", sha256_hex(&raw)),
        index["manifests"][0]["digest"].as_str().unwrap_or("")
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        workspace_version().as_str()
    );
    let want: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
    let got: Vec<&Value> = info["Layers"].as_array().expect("Layers").iter().collect();
    assert_eq!(got, want);
    assert_eq!(info["Architecture"], "wasm");
    raw
}

/// Debian's docker-registry on a free loopback port, storing under a scratch folder; killed
/// when dropped.
struct Registry {
    child: Child,
    addr: String,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        let port = free_port();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("registry-data").display()
            ),
        )
        .expect("registry config");
        let log = std::fs::File::create(dir.join("registry.log")).expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start (see {})",
                dir.join("registry.log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Registry { child, addr }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn images_pass_skopeo_and_survive_a_registry_round_trip() {
    if !oci_tools() {
        return;
    }
    let dir = scratch("round-trip");
    let all: Vec<&str> = PLUGINS.iter().map(|p| p.name).collect();
    let schemas = schemas(&dir, &all);
    // Every plugin (one run, as `make package` does): the packager's stdout lists each image.
    let out = package(&dir, &schemas, "oci", &[]);
    assert!(
        out.status.success(),
        "aigw-package failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();

    let mut images = Vec::new();
    for plugin in &all {
        images.push((plugin.to_string(), plugin.to_string()));
        if aigw_tests::module_path(&format!("{plugin}-higress")).exists() {
            images.push((plugin.to_string(), format!("{plugin}-higress")));
        }
    }
    assert!(
        images.len() > all.len(),
        "ai-token-ratelimit has a Higress build: run `make build`"
    );
    assert_eq!(listed.lines().count(), images.len(), "{listed}");
    let mut manifests = Vec::new();
    for (plugin, image) in &images {
        let layout = dir.join("oci").join(image);
        let manifest = check_layout(&layout, plugin, image, &dir);
        let digest = format!("sha256:{}", sha256_hex(&manifest));
        assert!(listed.contains(&digest), "{image}: digest {digest} printed");
        manifests.push(manifest);
    }

    let registry = Registry::start(&dir);
    let version = workspace_version();
    for ((plugin, image), manifest) in images.iter().zip(&manifests) {
        if !ROUND_TRIP.contains(&plugin.as_str()) {
            continue;
        }
        let layout = dir.join("oci").join(image);

        let remote = format!("docker://{}/aigw/{image}:{version}", registry.addr);
        run(Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}", layout.display()))
            .arg(&remote));
        let back = dir.join(format!("{image}-pulled"));
        run(Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(&remote)
            .arg(format!("dir:{}", back.display())));
        // The registry kept the manifest as written (same digest as the layout's).
        let pulled = std::fs::read(back.join("manifest.json")).expect("pulled manifest");
        assert!(
            &pulled == manifest,
            "{image}: manifest changed through the registry"
        );
        let m: Value = serde_json::from_slice(&pulled).expect("manifest JSON");
        // As Higress's and Istio's fetchers do: the last layer, a tar+gzip with plugin.wasm.
        let last = m["layers"]
            .as_array()
            .and_then(|l| l.last())
            .expect("a layer");
        assert_eq!(
            last["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let layer = back.join(
            last["digest"]
                .as_str()
                .expect("digest")
                .trim_start_matches("sha256:"),
        );
        assert_module(
            &unpack_wasm(&layer, &dir.join(format!("{image}-pulled-unpacked"))),
            image,
        );
    }
    drop(registry);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn same_inputs_give_the_same_digests() {
    let dir = scratch("deterministic");
    let plugin = ["ai-statistics"];
    module_for("ai-statistics");
    let schemas = schemas(&dir, &plugin);
    for out in ["a", "b"] {
        let o = package(&dir, &schemas, out, &plugin);
        assert!(
            o.status.success(),
            "aigw-package failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let index = |out: &str| {
        std::fs::read(dir.join(out).join("ai-statistics/index.json")).expect("index.json")
    };
    assert!(
        index("a") == index("b"),
        "index.json (and so the manifest digest) differs between runs"
    );
    let blobs = |out: &str| {
        let mut names: Vec<String> =
            std::fs::read_dir(dir.join(out).join("ai-statistics/blobs/sha256"))
                .expect("blobs")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
        names.sort();
        names
    };
    assert_eq!(blobs("a"), blobs("b"));
    assert_eq!(
        blobs("a").len(),
        5,
        "README, spec.yaml, plugin layer, config, manifest"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_schema_fails_naming_the_file() {
    let dir = scratch("no-schema");
    module_for("ai-auth");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    let out = package(&dir, &empty, "oci", &["ai-auth"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ai-auth.schema.json") && err.contains("scripts/config-schemas.sh"),
        "{err}"
    );
    assert!(
        !dir.join("oci/ai-auth").exists(),
        "no image without a schema"
    );
    let out = package(&dir, &empty, "oci", &["no-such-plugin"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-plugin: no Higress metadata"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_plugin_is_packaged_with_the_phase_and_priority_its_readme_documents() {
    let mut dirs: Vec<String> = std::fs::read_dir(root().join("plugins"))
        .expect("plugins/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        // The SDK example and the benchmark baseline are not products.
        .filter(|name| name != "hello" && name != "noop")
        .collect();
    dirs.sort();
    let mut listed: Vec<String> = PLUGINS.iter().map(|p| p.name.to_string()).collect();
    listed.sort();
    assert_eq!(
        listed, dirs,
        "tools/package/src/plugins.rs lists every plugin"
    );
    for p in PLUGINS {
        let (phase, priority) = readme_phase_priority(p.name);
        assert_eq!(
            (p.phase, p.priority),
            (phase.as_str(), priority),
            "{}: README vs spec.yaml",
            p.name
        );
        assert!(
            [
                "auth",
                "security",
                "protocol",
                "flow-control",
                "flow-monitor",
                "custom"
            ]
            .contains(&p.category),
            "{}: a Higress category",
            p.name
        );
        // The README's WasmPlugin pulls the image `make package` names.
        let text = std::fs::read_to_string(root().join("plugins").join(p.name).join("README.md"))
            .expect("README");
        let url = text
            .lines()
            .find_map(|l| l.split("url: oci://").nth(1))
            .unwrap_or_else(|| panic!("{}: README has a WasmPlugin url", p.name));
        let image = url
            .split(['/', ':'])
            .find(|s| s.starts_with(p.name))
            .unwrap_or("");
        assert!(
            image == p.name || image == format!("{}-higress", p.name),
            "{}: README url {url:?} names the image {}",
            p.name,
            p.name
        );
    }
}
