use aigw_tests::gpustack_module;
use host_sim::{PluginSpec, Request, Sim, SimOptions, UpstreamResponse};

#[test]
fn explore_masking() {
    let p = gpustack_module("ai-data-masking", "2.0.3");
    let mut sim = Sim::new(SimOptions::default());
    let cfg = r#"{"deny_openai":true,"system_deny":false,"deny_code":403,"deny_message":"blocked by policy","deny_words":["forbiddenword"],"replace_roles":[{"regex":"1[3-9]\\d{9}","type":"replace","value":"****"}]}"#;
    let r = sim.add_plugin(PluginSpec::from_file(&p).unwrap().name("ai-data-masking").config_json(cfg));
    for l in sim.logs() { println!("LOG {:?} {}", l.level, l.message); }
    r.unwrap();
    sim.clear_logs();
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"call me at 13800138000 please"}]}"#;
    let rec = sim.run(Request::post("/v1/chat/completions", body), UpstreamResponse::json(200, r#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}]}"#)).unwrap();
    println!("{:#?}", rec.upstream_request.as_ref().map(|u| u.body_str()));
    println!("status={} headers={:?} body={} complete={}", rec.response.status, rec.response.headers, rec.response.body_str(), rec.response.complete);
    for l in sim.logs() { println!("LOG {:?} {}", l.level, l.message); }
    sim.clear_logs();
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"say forbiddenword now"}]}"#;
    let rec = sim.run(Request::post("/v1/chat/completions", body), UpstreamResponse::json(200, "{}")).unwrap();
    println!("status={} headers={:?} body={}", rec.response.status, rec.response.headers, rec.response.body_str()); println!("local={:?}", rec.local_reply.as_ref().map(|l| (l.status, &l.details)));
    for l in sim.logs() { println!("LOG {:?} {}", l.level, l.message); }
}

#[test]
fn explore_stats() {
    let p = gpustack_module("ai-statistics", "2.0.0");
    let mut sim = Sim::new(SimOptions::default());
    let cfg = r#"{"attributes":[{"key":"question","value_source":"request_body","value":"messages.@reverse.0.content","apply_to_log":true},{"key":"answer","value_source":"response_streaming_body","value":"choices.0.delta.content","rule":"append","apply_to_log":true},{"key":"answer","value_source":"response_body","value":"choices.0.message.content","apply_to_log":true}]}"#;
    let r = sim.add_plugin(PluginSpec::from_file(&p).unwrap().name("ai-statistics").config_json(cfg));
    for l in sim.logs() { println!("LOG {:?} {}", l.level, l.message); }
    r.unwrap();
    sim.clear_logs();
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello there"}]}"#;
    let resp = r#"{"id":"c1","object":"chat.completion","model":"gpt-4o-2024","choices":[{"index":0,"message":{"role":"assistant","content":"hi!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}"#;
    let rec = sim.run(Request::post("/v1/chat/completions", body), UpstreamResponse::json(200, resp)).unwrap();
    println!("up={:?}", rec.upstream_request.as_ref().map(|u| u.body_str()));
    println!("status={} body={} fs={:?}", rec.response.status, rec.response.body_str(), rec.filter_state.iter().map(|(k,v)| (k.clone(), String::from_utf8_lossy(v).into_owned())).collect::<Vec<_>>());
    for l in sim.logs() { println!("LOG {:?} {}", l.level, l.message); }
    for (k, m) in sim.metrics() { println!("METRIC {k} {:?} {}", m.kind, m.value); }
    sim.clear_logs();
    let body = r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"count"}]}"#;
    let sse = "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"one\"}}]}\n\ndata: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" two\"}}]}\n\ndata: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\ndata: [DONE]\n\n";
    let rec = sim.run(Request::post("/v1/chat/completions", body), UpstreamResponse::sse(sse).chunked(40)).unwrap();
    println!("status={} fs={:?}", rec.response.status, rec.filter_state.iter().map(|(k,v)| (k.clone(), String::from_utf8_lossy(v).into_owned())).collect::<Vec<_>>());
    for l in sim.logs() { println!("LOG {:?} {}", l.level, l.message); }
    for (k, m) in sim.metrics() { println!("METRIC {k} {:?} {}", m.kind, m.value); }
}
