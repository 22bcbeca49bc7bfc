//! The default build of every plugin must import only the standard proxy-wasm ABI and the WASI
//! functions Envoy provides: a Higress-only import would make it unloadable on stock Envoy.

use aigw_tests::root;
use host_sim::{inspect, portability_violations, Loader};

#[test]
fn every_plugin_in_dist_is_portable() {
    let loader = Loader::new();
    let dist = root().join("dist");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dist).expect("dist/ exists: run `make build`") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
            continue;
        }
        let m = loader.load_file(&path).unwrap_or_else(|e| panic!("{e:#}"));
        let bad = portability_violations(&inspect(&m));
        assert!(
            bad.is_empty(),
            "{} imports functions stock Envoy lacks: {bad:?}",
            path.display()
        );
        checked += 1;
    }
    assert!(
        checked >= 1,
        "no plugin modules found in {}",
        dist.display()
    );
}

#[test]
fn the_check_flags_higress_only_imports() {
    // The conformance fixture deliberately imports Higress's Redis calls.
    let loader = Loader::new();
    let m = loader
        .load_file(aigw_tests::module_path("conformance"))
        .unwrap();
    let bad = portability_violations(&inspect(&m));
    assert!(bad.contains(&"env.proxy_redis_call".to_string()), "{bad:?}");
    assert!(bad.contains(&"env.proxy_redis_init".to_string()), "{bad:?}");
    // And a hand-made module importing something unknown.
    let wat = r#"(module
        (import "env" "proxy_get_upstream_hosts" (func (param i32 i32) (result i32)))
        (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "proxy_abi_version_0_2_1")))"#;
    let m = loader.load_bytes(wat.as_bytes()).unwrap();
    assert_eq!(
        portability_violations(&inspect(&m)),
        vec!["env.proxy_get_upstream_hosts".to_string()]
    );
}
