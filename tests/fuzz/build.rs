//! Every plugin crate's `export_plugin!` defines an unmangled `_initialize` (the proxy-wasm
//! entry point). `plugin_config` links all plugins into one native binary, where that entry
//! point is never called: let the linker keep the first definition instead of failing.
fn main() {
    println!("cargo:rustc-link-arg-bin=plugin_config=-Wl,--allow-multiple-definition");
}
