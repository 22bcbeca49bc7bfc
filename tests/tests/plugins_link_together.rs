//! Several plugin crates link into one native binary: `export_plugin!` exports the module's
//! entry points only when building for wasm, so native tools, fuzzers and benches can use the
//! plugins' logic side by side.

#[test]
fn three_plugins_in_one_native_binary() {
    // ai-auth: the strict model reader.
    assert_eq!(
        ai_auth::model::in_body(br#"{"model":"gpt-4o"}"#).as_deref(),
        Ok("gpt-4o")
    );
    // ai-guard: keyword folding.
    assert_eq!(ai_guard::normalize::fold_width('Ａ'), 'A');
    // ai-proxy: its SigV4 signer is reachable as well.
    let signer: fn(_, _) -> _ = ai_proxy::providers::bedrock::sigv4::sign;
    assert!(signer as usize != 0);
}
