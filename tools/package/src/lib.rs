//! `make package`: every plugin as a Higress plugin image in an OCI image layout directory
//! (`dist/oci/<plugin>/`, and `dist/oci/<plugin>-higress/` for the `higress`-feature build),
//! ready for `skopeo copy oci:dist/oci/<plugin> docker://<registry>/aigw/<plugin>:<version>`
//! and a `WasmPlugin` with `url: oci://<registry>/aigw/<plugin>:<version>`.
//!
//! Each image has three layers, in the order Higress's own images use: the plugin's README
//! (`application/vnd.module.wasm.doc.v1+markdown`), its `spec.yaml`
//! (`application/vnd.module.wasm.spec.v1+yaml`: name, version, phase, priority and the
//! configuration's schema in OpenAPI 3.0 form) and, last, `plugin.wasm` in a tar+gzip layer
//! (the layer Higress's and Istio's image fetchers take the module from). See [`oci`] for the
//! sources of these facts.

pub mod oci;
pub mod openapi;
pub mod plugins;
pub mod yaml;

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The version every image carries (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where the inputs are and where the images go.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workspace root (`plugins/<p>/README.md`, `plugins/<p>/example.json`).
    pub root: PathBuf,
    /// The build output: `<p>.wasm`, `<p>.wasm.sha256`, `higress/<p>.wasm`.
    pub dist: PathBuf,
    /// Where `<p>.schema.json` (the configuration's JSON Schema) is read from.
    pub schemas: PathBuf,
    /// Where the image layouts are written (`<out>/<p>/`, `<out>/<p>-higress/`).
    pub out: PathBuf,
    /// The plugins to package; empty: all of [`plugins::PLUGINS`].
    pub plugins: Vec<String>,
}

/// One image written.
#[derive(Debug, Clone)]
pub struct Packaged {
    /// Image name (`ai-proxy`, `ai-proxy-higress`).
    pub image: String,
    /// Its OCI layout directory.
    pub dir: PathBuf,
    /// Digest of its manifest.
    pub manifest_digest: String,
    /// Size of the module inside.
    pub wasm_bytes: usize,
}

/// Packages the plugins `opts` names. Stops at the first plugin that cannot be packaged, with
/// an error naming the missing or bad input.
pub fn run(opts: &Options) -> Result<Vec<Packaged>, String> {
    let names: Vec<String> = if opts.plugins.is_empty() {
        plugins::PLUGINS
            .iter()
            .map(|p| p.name.to_string())
            .collect()
    } else {
        opts.plugins.clone()
    };
    let mut done = Vec::new();
    for name in &names {
        let meta = plugins::find(name).ok_or_else(|| {
            format!("{name}: no Higress metadata (phase, priority, category): add it to tools/package/src/plugins.rs")
        })?;
        let schema_path = opts.schemas.join(format!("{name}.schema.json"));
        let schema_text = std::fs::read_to_string(&schema_path).map_err(|e| {
            format!(
                "{name}: cannot read the configuration schema {}: {e} (scripts/config-schemas.sh writes it; `make package` runs it)",
                schema_path.display()
            )
        })?;
        let schema: Value = serde_json::from_str(&schema_text)
            .map_err(|e| format!("{}: not JSON: {e}", schema_path.display()))?;
        let mut open =
            openapi::convert(&schema).map_err(|e| format!("{}: {e}", schema_path.display()))?;
        let example_path = opts.root.join("plugins").join(name).join("example.json");
        if let Ok(text) = std::fs::read_to_string(&example_path) {
            let example: Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not JSON: {e}", example_path.display()))?;
            if let Value::Object(m) = &mut open {
                m.insert("example".into(), example);
            }
        }
        let readme_path = opts.root.join("plugins").join(name).join("README.md");
        let readme = std::fs::read(&readme_path)
            .map_err(|e| format!("{name}: cannot read {}: {e}", readme_path.display()))?;

        let builds = [
            (
                opts.dist.join(format!("{name}.wasm")),
                name.clone(),
                meta.title.to_string(),
            ),
            (
                opts.dist.join("higress").join(format!("{name}.wasm")),
                format!("{name}-higress"),
                format!("{} (Higress build)", meta.title),
            ),
        ];
        for (i, (module, image, title)) in builds.iter().enumerate() {
            if i > 0 && !module.exists() {
                continue; // no higress build of this plugin
            }
            let wasm = read_module(module)?;
            let spec = spec_yaml(meta, title, &open);
            let img = oci::Image {
                layers: vec![
                    oci::Blob {
                        media_type: oci::README_LAYER,
                        bytes: readme.clone(),
                        title: Some("README.md"),
                    },
                    oci::Blob {
                        media_type: oci::SPEC_LAYER,
                        bytes: spec.into_bytes(),
                        title: Some("spec.yaml"),
                    },
                    oci::Blob {
                        media_type: oci::WASM_LAYER,
                        bytes: oci::gzip(&oci::tar_one("plugin.wasm", &wasm)?)?,
                        title: Some("plugin.tar.gz"),
                    },
                ],
                annotations: vec![
                    ("module.wasm.image/variant", "compat".to_string()),
                    ("org.opencontainers.image.title", image.clone()),
                    (
                        "org.opencontainers.image.description",
                        meta.description.to_string(),
                    ),
                    ("org.opencontainers.image.version", VERSION.to_string()),
                    (
                        "org.opencontainers.image.licenses",
                        env!("CARGO_PKG_LICENSE").to_string(),
                    ),
                ],
            };
            let dir = opts.out.join(image);
            let manifest_digest = img.write_layout(&dir, VERSION)?;
            done.push(Packaged {
                image: image.clone(),
                dir,
                manifest_digest,
                wasm_bytes: wasm.len(),
            });
        }
    }
    Ok(done)
}

/// Reads a module and, when a `<module>.sha256` file is next to it, checks that it matches
/// (a stale digest file would make the image and the published digest disagree).
fn read_module(path: &Path) -> Result<Vec<u8>, String> {
    let wasm = std::fs::read(path)
        .map_err(|e| format!("cannot read {}: {e} (run `make build`)", path.display()))?;
    if !wasm.starts_with(b"\0asm") {
        return Err(format!("{}: not a wasm module", path.display()));
    }
    let mut sha = path.as_os_str().to_owned();
    sha.push(".sha256");
    if let Ok(text) = std::fs::read_to_string(PathBuf::from(&sha)) {
        let want = text.split_whitespace().next().unwrap_or_default();
        let have = oci::digest(&wasm);
        if have.strip_prefix("sha256:") != Some(want) {
            return Err(format!(
                "{}: its .sha256 file says {want}, the module is {have} (run `make build`)",
                path.display()
            ));
        }
    }
    Ok(wasm)
}

/// The `spec.yaml` of a plugin (Higress's plugin metadata format, `apiVersion: 1.0.0`).
pub fn spec_yaml(meta: &plugins::PluginMeta, title: &str, schema: &Value) -> String {
    let mut out = String::from("apiVersion: 1.0.0\ninfo:\n");
    let s = |v: &str| Value::String(v.to_string());
    yaml::entry(&mut out, 2, "category", &s(meta.category), false);
    yaml::entry(&mut out, 2, "name", &s(meta.name), false);
    yaml::entry(&mut out, 2, "title", &s(title), false);
    yaml::entry(&mut out, 2, "description", &s(meta.description), false);
    yaml::entry(
        &mut out,
        2,
        "iconUrl",
        &s(plugins::icon(meta.category)),
        false,
    );
    yaml::entry(&mut out, 2, "version", &s(VERSION), false);
    out.push_str("  contact:\n");
    yaml::entry(&mut out, 4, "name", &s("aigw"), false);
    out.push_str("spec:\n");
    yaml::entry(&mut out, 2, "phase", &s(meta.phase), false);
    yaml::entry(&mut out, 2, "priority", &Value::from(meta.priority), false);
    out.push_str("  configSchema:\n");
    yaml::entry(&mut out, 4, "openAPIV3Schema", schema, true);
    out
}
