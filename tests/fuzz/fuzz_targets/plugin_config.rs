//! Every plugin's configuration parser, as the SDK runs it at configure time
//! (`Rules::<Config>::parse`: global part plus `_rules_`). The first byte picks the plugin; the
//! rest is the JSON document.
//!
//! Properties: no panic; parsing is deterministic; a plain configuration (its own raw form)
//! that validated once validates again (normalisation is idempotent).
#![no_main]

use aigw::config::{parse, PlainConfig, PluginConfig, Rules};
use libfuzzer_sys::fuzz_target;

fn check<C: PluginConfig>(json: &[u8]) {
    let rules = Rules::<C>::parse(json);
    assert_eq!(
        rules.is_ok(),
        Rules::<C>::parse(json).is_ok(),
        "parse is not deterministic"
    );
}

fn check_plain<C: PlainConfig>(json: &[u8]) {
    check::<C>(json);
    if let Ok(mut c) = parse::<C>(json) {
        if let Err(e) = c.validate() {
            panic!("a validated configuration fails validation again: {e}");
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&which, json)) = input.split_first() else {
        return;
    };
    match which % 8 {
        0 => check::<ai_auth::config::Config>(json),
        1 => check_plain::<ai_cache::config::Config>(json),
        2 => check::<ai_guard::settings::Config>(json),
        3 => check::<ai_load_balancer::config::Config>(json),
        4 => check::<ai_proxy::config::Config>(json),
        5 => check_plain::<ai_statistics::config::Config>(json),
        6 => check::<ai_token_ratelimit::config::Config>(json),
        _ => check_plain::<hello::Config>(json),
    }
});
