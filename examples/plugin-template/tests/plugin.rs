//! Loads the plugin's .wasm into host-sim, sends one request and checks what reached the
//! upstream. Build the module first (see README.md).

use host_sim::{PluginSpec, Request, Sim, UpstreamResponse};
use std::path::PathBuf;

/// The module: `$PLUGIN_WASM`, else this repository's `dist/test/plugin-template.wasm`
/// (`scripts/build-wasm.sh plugin-template`), else this crate's own wasm32-wasip1 release build.
fn module() -> PathBuf {
    if let Some(p) = std::env::var_os("PLUGIN_WASM") {
        return p.into();
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let in_repo = dir.join("../../dist/test/plugin-template.wasm");
    if in_repo.exists() {
        return in_repo;
    }
    dir.join("target/wasm32-wasip1/release/plugin_template.wasm")
}

#[test]
fn adds_the_configured_header() {
    let spec = PluginSpec::from_file(module())
        .expect("build the module first (README.md)")
        .config_json(r#"{"header_name": "x-template", "header_value": "hello"}"#);
    let mut sim = Sim::new(Default::default());
    sim.add_plugin(spec)
        .expect("the plugin accepts its configuration");

    let rec = sim
        .run(
            Request::get("/v1/models"),
            UpstreamResponse::json(200, "{}"),
        )
        .expect("the stream runs");

    let upstream = rec
        .upstream_request
        .expect("the request reached the upstream");
    assert_eq!(upstream.header("x-template"), Some("hello"));
    assert_eq!(rec.response.status, 200);
}

#[test]
fn rejects_a_configuration_without_the_header() {
    let spec = PluginSpec::from_file(module())
        .expect("build the module first (README.md)")
        .config_json(r#"{"header_value": "hello"}"#);
    let mut sim = Sim::new(Default::default());
    let err = sim.add_plugin(spec).expect_err("header_name is required");
    assert!(
        err.to_string().contains("rejected its configuration"),
        "{err:#}"
    );
}

#[test]
fn rejects_an_empty_header_name() {
    let spec = PluginSpec::from_file(module())
        .expect("build the module first (README.md)")
        .config_json(r#"{"header_name": "", "header_value": "hello"}"#);
    let mut sim = Sim::new(Default::default());
    let err = sim
        .add_plugin(spec)
        .expect_err("an empty header_name is refused");
    assert!(
        err.to_string().contains("rejected its configuration"),
        "{err:#}"
    );
}
