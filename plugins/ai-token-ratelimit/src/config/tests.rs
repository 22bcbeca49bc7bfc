//! Tests of both configuration forms, the field-named errors and the compiled limits.

use super::*;
use aigw::config::{self, ConfigError};

fn parse(json: &str) -> Result<Config, ConfigError> {
    config::parse::<Config>(json.as_bytes())
}

fn err(json: &str) -> String {
    match parse(json) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn clear_form_compiles() {
    let c = parse(
        r#"{"limits":[
            {"name":"team-model","key":[{"by":"consumer"},{"by":"model","match":"regexp:^gpt-4"}],
             "per_minute":1000,"per_day":50000,"cached_input_weight":0.25},
            {"name":"ip","key":[{"by":"ip","match":"10.0.0.0/8"}],"count":"requests","per_second":5},
            {"key":[{"by":"header","name":"X-Team","match":"blue"}],"count":"completion","per_hour":9}
        ]}"#,
    )
    .unwrap();
    let g = &c.groups;
    assert_eq!(g.len(), 3);
    assert!(!g[0].first_match);
    let l = &g[0].limits[0];
    assert_eq!(l.name, "team-model");
    assert_eq!(
        l.windows,
        vec![
            Window {
                secs: 60,
                limit: 1000
            },
            Window {
                secs: 86_400,
                limit: 50_000
            }
        ]
    );
    assert_eq!(l.cached_weight, 0.25);
    assert_eq!(l.slots, 4096);
    assert_eq!(g[1].limits[0].count, Count::Requests);
    assert_eq!(g[2].limits[0].name, "limit-2");
    assert_eq!(
        g[2].limits[0].dims[0].source,
        Source::Header("x-team".into())
    );
    assert_eq!(g[2].limits[0].slots, 1, "exact keys need one slot");
    assert!(c.needs_body);
    assert!(!c.cluster);
}

#[test]
fn higress_form_compiles() {
    let c = parse(
        r#"{"rule_name":"default_rule","rule_items":[
            {"limit_by_param":"apikey","limit_keys":[{"key":"k1","token_per_minute":10},{"key":123,"token_per_hour":100}]},
            {"limit_by_per_header":"x-ca-key","limit_keys":[{"key":"regexp:^a.*","token_per_second":10,"limit_type":"request"},{"key":"*","token_per_hour":1000}]},
            {"limit_by_per_ip":"from-header-x-forwarded-for","limit_keys":[{"key":"1.1.1.0/24","token_per_day":100}]},
            {"limit_by_consumer":"","limit_keys":[{"key":"alice","token_per_day":5}]}
        ],"redis":{"service_name":"redis.static"},"rejected_code":200}"#,
    )
    .unwrap();
    let g = &c.groups;
    assert_eq!(g.len(), 1);
    assert!(g[0].first_match);
    let names: Vec<&str> = g[0].limits.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "default_rule:param:apikey:k1",
            "default_rule:param:apikey:123",
            "default_rule:per_header:x-ca-key:regexp:^a.*",
            "default_rule:per_header:x-ca-key:*",
            "default_rule:per_ip:x-forwarded-for:1.1.1.0/24",
            "default_rule:consumer:alice",
        ]
    );
    assert_eq!(g[0].limits[2].count, Count::Requests);
    assert_eq!(
        g[0].limits[4].dims[0].source,
        Source::IpHeader("x-forwarded-for".into())
    );
    // Without the higress feature a redis section falls back to local mode.
    assert_eq!(c.cluster, cfg!(feature = "higress"));
    assert_eq!(c.redis_ignored, !cfg!(feature = "higress"));
    assert_eq!(c.redis.unwrap().cluster_name(), "outbound|80||redis.static");
}

#[test]
fn redis_cluster_names() {
    let r = |json: &str| {
        serde_json::from_str::<RedisSpec>(json)
            .unwrap()
            .cluster_name()
    };
    assert_eq!(
        r(r#"{"service_name":"redis.ns.svc.cluster.local"}"#),
        "outbound|6379||redis.ns.svc.cluster.local"
    );
    assert_eq!(
        r(r#"{"service_name":"r.dns","service_port":7000}"#),
        "outbound|7000||r.dns"
    );
    assert_eq!(r(r#"{"cluster":"my-redis"}"#), "my-redis");
    let dbg = format!(
        "{:?}",
        serde_json::from_str::<RedisSpec>(r#"{"cluster":"c","password":"hunter2"}"#).unwrap()
    );
    assert!(!dbg.contains("hunter2"), "{dbg}");
}

#[test]
fn every_bad_field_is_named() {
    let cases: &[(&str, &str)] = &[
        (r#"{}"#, "limits: required"),
        (r#"{"limits":[]}"#, "limits: must list at least one limit"),
        (
            r#"{"limits":[{"per_minute":1}],"rule_items":[]}"#,
            "limits: cannot be combined",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"rule_name":"x"}"#,
            "rule_name: only used with rule_items",
        ),
        (
            r#"{"limits":[{}]}"#,
            "limits[0]: needs at least one of per_second",
        ),
        (
            r#"{"limits":[{"per_minute":0}]}"#,
            "limits[0].per_minute: must be greater than 0",
        ),
        (
            r#"{"limits":[{"per_minute":-1}]}"#,
            "limits[0].per_minute: invalid value",
        ),
        (
            r#"{"limits":[{"per_minute":"ten"}]}"#,
            "limits[0].per_minute: invalid type",
        ),
        (
            r#"{"limits":[{"per_minut":1}]}"#,
            "limits[0].per_minut: unknown field",
        ),
        (
            r#"{"limits":[{"name":"a","per_minute":1},{"name":"a","per_hour":1}]}"#,
            "limits[1].name: duplicate limit name",
        ),
        (
            r#"{"limits":[{"name":" ","per_minute":1}]}"#,
            "limits[0].name: must not be empty",
        ),
        (
            r#"{"limits":[{"name":"a|b","per_minute":1}]}"#,
            "limits[0].name: must not contain",
        ),
        (
            r#"{"limits":[{"count":"tokens","per_minute":1}]}"#,
            "limits[0].count: unknown variant `tokens`",
        ),
        (
            r#"{"limits":[{"count":"requests","cached_input_weight":0.5,"per_minute":1}]}"#,
            "limits[0].cached_input_weight: only applies",
        ),
        (
            r#"{"limits":[{"cached_input_weight":1.5,"per_minute":1}]}"#,
            "limits[0].cached_input_weight: must be between 0 and 1",
        ),
        (
            r#"{"limits":[{"key":[{"by":"user"}],"per_minute":1}]}"#,
            "limits[0].key[0].by: unknown variant `user`",
        ),
        (
            r#"{"limits":[{"key":[{"name":"x"}],"per_minute":1}]}"#,
            "limits[0].key[0].by: required field is missing",
        ),
        (
            r#"{"limits":[{"key":[{"by":"header"}],"per_minute":1}]}"#,
            "limits[0].key[0].name: required when by is \"header\"",
        ),
        (
            r#"{"limits":[{"key":[{"by":"consumer","name":"x"}],"per_minute":1}]}"#,
            "limits[0].key[0].name: not used when by is \"consumer\"",
        ),
        (
            r#"{"limits":[{"key":[{"by":"model","match":"regexp:(("}],"per_minute":1}]}"#,
            "limits[0].key[0].match: invalid regular expression",
        ),
        (
            r#"{"limits":[{"key":[{"by":"ip","match":"10.0.0.0/40"}],"per_minute":1}]}"#,
            "limits[0].key[0].match: `10.0.0.0/40`: prefix length",
        ),
        (
            r#"{"limits":[{"key":[{"by":"ip","match":"nope"}],"per_minute":1}]}"#,
            "limits[0].key[0].match: `nope` is not an IP",
        ),
        (
            r#"{"limits":[{"key":[{"by":"param","name":"k","match":""}],"per_minute":1}]}"#,
            "limits[0].key[0].match: must not be empty",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"rejected_code":99}"#,
            "rejected_code: must be an HTTP status",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"rejected_code":"x"}"#,
            "rejected_code: invalid type",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"mode":"global"}"#,
            "mode: unknown variant `global`",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"mode":"cluster"}"#,
            "redis: required when mode is \"cluster\"",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"mode":"rls"}"#,
            "rls: required when mode is \"rls\"",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"domain":"d"}}"#,
            "rls.cluster: required in rls mode",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"cluster":"c"}}"#,
            "rls.domain: required in rls mode",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"cluster":" ","domain":"d"}}"#,
            "rls.cluster: must not be empty",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"cluster":"c","domain":"d","timeout_ms":0}}"#,
            "rls.timeout_ms: must be between 1 and 60000",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"cluster":"c","domain":"d","timeout_ms":"fast"}}"#,
            "rls.timeout_ms: invalid type",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"cluster":"c","domain":"d","timeout":5}}"#,
            "rls.timeout: unknown field",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"mode":"rls","rls":{"cluster":"c","domain":"d"},"redis":{"cluster":"r"}}"#,
            "redis: not used when mode is \"rls\"",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"rls":{"cluster":"c","domain":"d"}}"#,
            "rls: only used when mode is \"rls\"",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"failure_mode":"maybe"}"#,
            "failure_mode: unknown variant",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"consumer_header":""}"#,
            "consumer_header: must not be empty",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"client_ip":{"xff_trusted_hops":99}}"#,
            "client_ip.xff_trusted_hops: must be at most 32",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"client_ip":{"hops":1}}"#,
            "client_ip.hops: unknown field",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"admission":{"bytes_per_token":0}}"#,
            "admission.bytes_per_token: must be greater than 0",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"admission":{"max_completion_estimate":0}}"#,
            "admission.max_completion_estimate: must be greater than 0",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"admission":{"max_body_bytes":0}}"#,
            "admission.max_body_bytes: must be greater than 0",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"admission":{"estimate":"yes"}}"#,
            "admission.estimate: invalid type",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"response":{"max_body_bytes":0}}"#,
            "response.max_body_bytes: must be greater than 0",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"response":{"max_event_bytes":10}}"#,
            "response.max_event_bytes: must be at least 1024",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"local":{"slots":0}}"#,
            "local.slots: must be between 1 and",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"redis":{}}"#,
            "redis.service_name: required",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"redis":{"service_name":""}}"#,
            "redis.service_name: must not be empty",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"redis":{"cluster":"r","timeout":0}}"#,
            "redis.timeout: must be between 1 and 60000",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"redis":{"cluster":"r","service_port":0}}"#,
            "redis.service_port: must be between 1 and 65535",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"redis":{"cluster":"r","key_prefix":""}}"#,
            "redis.key_prefix: must be non-empty",
        ),
        (
            r#"{"limits":[{"per_minute":1}],"redis":{"cluster":"r","pasword":"x"}}"#,
            "redis.pasword: unknown field",
        ),
        (
            r#"{"rule_items":[]}"#,
            "rule_name: required with rule_items",
        ),
        (
            r#"{"rule_name":"","rule_items":[]}"#,
            "rule_name: must not be empty",
        ),
        (
            r#"{"rule_name":"r","rule_items":[]}"#,
            "rule_items: must list at least one item",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_keys":[]}]}"#,
            "rule_items[0]: needs exactly one limit_by_* field",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_by_header":"a","limit_by_param":"b","limit_keys":[]}]}"#,
            "rule_items[0].limit_by_param: only one limit_by_* field",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_by_header":"a"}]}"#,
            "rule_items[0].limit_keys: required field is missing",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_by_header":"a","limit_keys":[]}]}"#,
            "rule_items[0].limit_keys: must list at least one key",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_by_header":"","limit_keys":[{"key":"a","token_per_minute":1}]}]}"#,
            "rule_items[0].limit_by_header: must name the header",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_by_per_ip":"from-socket","limit_keys":[{"key":"*","token_per_minute":1}]}]}"#,
            "rule_items[0].limit_by_per_ip: must be \"from-remote-addr\"",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_by_per_ip":"from-remote-addr","limit_keys":[{"key":"1.2.3.4/99","token_per_minute":1}]}]}"#,
            "rule_items[0].limit_keys[0].key: `1.2.3.4/99`",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_by_per_param":"k","limit_keys":[{"key":"regexp:[","token_per_minute":1}]}]}"#,
            "rule_items[0].limit_keys[0].key: invalid regular expression",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_by_param":"k","limit_keys":[{"key":true,"token_per_minute":1}]}]}"#,
            "rule_items[0].limit_keys[0].key: expected a string or a number",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_by_param":"k","limit_keys":[{"key":"a"}]}]}"#,
            "rule_items[0].limit_keys[0]: needs at least one of token_per_second",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_by_param":"k","limit_keys":[{"key":"a","token_per_day":0}]}]}"#,
            "rule_items[0].limit_keys[0].token_per_day: must be greater than 0",
        ),
        (
            r#"{"rule_name":"r","rule_items":[{"limit_by_param":"k","limit_keys":[{"key":"a","token_per_day":1,"limit_type":"tokens"}]}]}"#,
            "rule_items[0].limit_keys[0].limit_type: unknown variant `tokens`",
        ),
    ];
    for (json, want) in cases {
        let got = err(json);
        assert!(
            got.starts_with(want),
            "config {json}\n  want prefix: {want}\n  got: {got}"
        );
    }
}

#[test]
fn cluster_mode_needs_the_feature() {
    let r = parse(r#"{"limits":[{"per_minute":1}],"mode":"cluster","redis":{"cluster":"r"}}"#);
    if cfg!(feature = "higress") {
        assert!(r.unwrap().cluster);
    } else {
        assert!(r
            .unwrap_err()
            .to_string()
            .starts_with("mode: \"cluster\" needs"));
    }
    let local =
        parse(r#"{"limits":[{"per_minute":1}],"mode":"local","redis":{"cluster":"r"}}"#).unwrap();
    assert!(!local.cluster && !local.redis_ignored);
}

#[test]
fn request_only_limits_do_not_wait_for_the_body() {
    let c =
        parse(r#"{"limits":[{"key":[{"by":"ip"}],"count":"requests","per_second":1}]}"#).unwrap();
    assert!(!c.needs_body);
    let c = parse(r#"{"limits":[{"per_minute":100}],"admission":{"estimate":false}}"#).unwrap();
    assert!(!c.needs_body);
    let c = parse(r#"{"limits":[{"key":[{"by":"model"}],"count":"requests","per_second":1}]}"#)
        .unwrap();
    assert!(c.needs_body);
}

#[test]
fn api_key_matches_compare_fingerprints() {
    let c = parse(r#"{"limits":[{"key":[{"by":"api_key","match":"sk-vip"}],"per_minute":1}]}"#)
        .unwrap();
    let dim = &c.groups[0].limits[0].dims[0];
    assert!(dim.pattern.matches(&aigw::contract::key_id("sk-vip")));
    assert!(!dim.pattern.matches("sk-vip"));
    let err =
        parse(r#"{"limits":[{"key":[{"by":"api_key","match":"regexp:^sk-"}],"per_minute":1}]}"#)
            .unwrap_err()
            .to_string();
    assert!(err.contains("fingerprint"), "{err}");
}
