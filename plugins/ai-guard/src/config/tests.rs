//! Tests of the configuration: defaults, a full configuration, the Higress
//! fields, block renderings and field-named errors.

use super::*;
use crate::engine::{Report, Verdict};

fn guard(json: &str) -> Result<Guard, ConfigError> {
    Guard::from_json(json.as_bytes())
}

fn error(json: &str) -> String {
    guard(json).map(|_| ()).unwrap_err().to_string()
}

fn redact(g: &Guard, text: &str) -> (String, Verdict) {
    let mut out = String::new();
    let v = g
        .engine
        .redact(text, None, &mut out, &mut Report::default());
    (out, v)
}

#[test]
fn defaults() {
    let g = guard("").unwrap();
    assert!(g.engine.is_empty());
    assert_eq!(g.block.status, 400);
    assert_eq!(g.block.style, BlockStyle::Error);
    assert!(g.request.is_some() && g.response.is_some());
    assert_eq!(g.over_limit, OverLimit::Pass);
    assert_eq!(g.on_parse_error, ParseErrorPolicy::Reject);
}

#[test]
fn full_config_compiles_and_works() {
    let g = guard(
        r#"{
        "scope": {"request": {"roles": ["user"], "json_paths": ["$.prompt"]}, "response": {"enabled": false}},
        "keywords": {"lists": [
            {"name": "politics", "words": ["敏感词"], "words_text": "foo\n\n bar \n", "ignore_separators": true},
            {"name": "soft", "action": "mask", "value": "***", "words": ["darn"], "whole_word": true}
        ]},
        "patterns": [
            {"builtin": "phone_cn", "restore": true},
            {"builtin": "secrets", "action": "block"},
            {"name": "ticket", "regex": "TCK-[0-9]{6}", "type": "hash", "label": "TICKET"}
        ],
        "mask": {"hash_salt": "s3cret"},
        "body": {"max_bytes": 1000, "over_limit": "block"}
    }"#,
    )
    .unwrap();
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
    assert!(g.has_restore);
    assert!(g.response.is_none());
    assert_eq!(g.over_limit, OverLimit::Block);
    assert_eq!(
        redact(&g, "a b.a.r here").1,
        Verdict::Block {
            rule: "politics".into()
        }
    );
    assert_eq!(
        redact(&g, "key AKIAIOSFODNN7EXAMPLE").1,
        Verdict::Block {
            rule: "aws_access_key".into()
        }
    );
    let (out, _) = redact(&g, "darn 13812345678 TCK-123456");
    assert!(out.starts_with("*** [PHONE] [TICKET:"), "{out}");
}

#[test]
fn higress_fields() {
    let g = guard(
        r#"{
        "system_deny": true, "deny_openai": true, "deny_raw": true,
        "deny_jsonpath": ["$.messages[*].content"],
        "deny_code": 200, "deny_message": "blocked!",
        "deny_raw_message": "{\"errmsg\":\"blocked!\"}", "deny_content_type": "application/json",
        "deny_words": ["坏词", "badword"],
        "replace_roles": [
            {"regex": "%{MOBILE}", "type": "replace", "value": "****"},
            {"regex": "%{EMAILLOCALPART}@%{HOSTNAME:domain}", "type": "replace", "value": "****@$domain"},
            {"regex": "%{IP}", "type": "replace", "restore": true},
            {"regex": "sk-[0-9a-zA-Z]*", "type": "hash", "restore": true}
        ]
    }"#,
    )
    .unwrap();
    assert!(g.warnings.iter().any(|w| w.starts_with("system_deny")));
    assert!(g.warnings.iter().any(|w| w.starts_with("mask.hash_salt")));
    assert_eq!((g.block.style, g.block.status), (BlockStyle::Answer, 200));
    assert!(g
        .request
        .as_ref()
        .is_some_and(|s| s.raw && s.paths.len() == 1));
    assert_eq!(
        redact(&g, "含有坏词").1,
        Verdict::Block {
            rule: "deny_words".into()
        }
    );
    let (out, v) = redact(
        &g,
        "call 13812345678 or mail admin@gmail.com from 172.20.5.14",
    );
    assert_eq!(v, Verdict::Pass);
    assert_eq!(out, "call **** or mail ****@gmail.com from [IP]");
    let mut vault = g.new_vault();
    let mut out = String::new();
    g.engine.redact(
        "Authorization: sk-12345 at 10.1.2.3",
        Some(&mut vault),
        &mut out,
        &mut Report::default(),
    );
    assert!(out.starts_with("Authorization: [MASKED:"), "{out}");
    assert!(out.ends_with(" at [IP_1]"), "{out}");
    let mut back = String::new();
    vault.restore_into(&out, crate::vault::Escape::None, &mut back);
    assert_eq!(back, "Authorization: sk-12345 at 10.1.2.3");
    let r = g.block.render(Some(Protocol::OpenAi), false);
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "blocked!");
    assert_eq!(
        g.block.render(None, false).body,
        "{\"errmsg\":\"blocked!\"}"
    );
}

#[test]
fn block_renderings() {
    let g = guard(r#"{"block": {"message": "no"}}"#).unwrap();
    let r = g.block.render(Some(Protocol::OpenAi), true);
    assert_eq!(r.status, 400);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"]["code"], "content_filter");
    assert_eq!(v["error"]["message"], "no");
    let v: serde_json::Value =
        serde_json::from_str(&g.block.render(Some(Protocol::Anthropic), false).body).unwrap();
    assert_eq!(v["type"], "error");
    let g = guard(r#"{"block": {"style": "answer"}}"#).unwrap();
    let sse = g.block.render(Some(Protocol::OpenAi), true);
    assert_eq!(sse.content_type, "text/event-stream");
    assert!(
        sse.body.contains("\"finish_reason\":\"content_filter\"")
            && sse.body.ends_with("data: [DONE]\n\n")
    );
    let sse = g.block.render(Some(Protocol::Anthropic), true);
    assert!(sse.body.starts_with("event: message_start\n") && sse.body.contains("message_stop"));
}

#[test]
fn errors_name_the_field() {
    assert_eq!(
        error(
            r#"{"keywords": {"lists": [{"name": "a", "words": ["x"]}, {"name": "b", "words": ["x"]}, {"name": "c", "words": ["a", "b", "c", "d", "e", "  "]}]}}"#
        ),
        "keywords.lists[2].words[5]: empty word"
    );
    let long = "x".repeat(300);
    assert_eq!(
        error(&format!(
            r#"{{"keywords": {{"lists": [{{"name": "a", "words_text": "ok\n\n{long}"}}]}}}}"#
        )),
        "keywords.lists[0].words_text line 3: longer than 256 characters"
    );
    let e = error(r#"{"patterns": [{"builtin": "email"}, {"regex": "("}]}"#);
    assert!(e.starts_with("patterns[1].regex: invalid regex: "), "{e}");
    let e = error(r#"{"patterns": [{"builtin": "phone"}]}"#);
    assert!(
        e.starts_with("patterns[0].builtin: unknown built-in pattern \"phone\""),
        "{e}"
    );
    assert_eq!(
        error(r#"{"patterns": [{"builtin": "email", "action": "blok"}]}"#),
        "patterns[0].action: unknown variant `blok`, expected one of `block`, `mask`, `replace`, `log`"
    );
    assert_eq!(
        error(r#"{"block": {"style": "page"}}"#),
        "block.style: unknown variant `page`, expected `error` or `answer`"
    );
    let g = guard(r#"{"patterns": [{"builtin": "email", "action": "replace"}]}"#).unwrap();
    let (out, v) = redact(&g, "mail a@example.com");
    assert_eq!((out.as_str(), v), ("mail [EMAIL]", Verdict::Pass));
    assert_eq!(
        error(r#"{"patterns": [{"builtin": "email", "regex": "x"}]}"#),
        "patterns[0]: set exactly one of builtin and regex"
    );
    assert_eq!(
        error(r#"{"patterns": [{"regex": "a*"}]}"#),
        "patterns[0].regex: regex matches the empty string"
    );
    assert_eq!(
        error(r#"{"patterns": [{"builtin": "email", "type": "md5"}]}"#),
        "patterns[0].type: unknown variant `md5`, expected `replace` or `hash`"
    );
    assert_eq!(
        error(r#"{"keywords": {"lists": [{"name": "x", "words": ["a"], "label": "bad label"}]}}"#),
        "keywords.lists[0].label: use 1 to 32 characters among A-Z, 0-9 and _"
    );
    assert_eq!(
        error(r#"{"keywords": {"lists": [{"words": ["a"]}]}}"#),
        "keywords.lists[0].name: a list needs a name"
    );
    assert_eq!(
        error(r#"{"scope": {"request": {"json_paths": ["$.ok", "messages"]}}}"#),
        "scope.request.json_paths[1]: invalid JSON path: must start with `$`"
    );
    assert_eq!(
        error(r#"{"replace_roles": [{"regex": "%{NOPE}"}]}"#),
        "replace_roles[0].regex: unknown grok pattern %{NOPE}"
    );
    assert_eq!(
        error(r#"{"body": {"over_limit": "drop"}}"#),
        "body.over_limit: unknown variant `drop`, expected `pass` or `block`"
    );
    assert_eq!(
        error(r#"{"body": {"on_parse_error": "drop"}}"#),
        "body.on_parse_error: unknown variant `drop`, expected `reject` or `pass`"
    );
    assert_eq!(
        error(r#"{"stream": {"max_match_len": 5}}"#),
        "stream.max_match_len: must be between 16 and 4096"
    );
    assert_eq!(
        error(r#"{"deny_code": 99}"#),
        "deny_code: must be an HTTP status between 200 and 599"
    );
    let e = error(r#"{"keywords": {"lists": [], "extra": 1}}"#);
    assert!(e.starts_with("keywords.extra: unknown field"), "{e}");
    let e = error(r#"{"patterns": [{"builtin": 5}]}"#);
    assert!(e.starts_with("patterns[0].builtin: invalid type"), "{e}");
}

/// The block bodies as the plugin wrote them before the templates: built as
/// `serde_json` values (the oracle of `render_is_what_json_values_wrote`).
fn json_render(b: &BlockSettings, api: Option<Protocol>, stream: bool) -> BlockResponse {
    use serde_json::json;
    let msg = b.message.as_str();
    let (content_type, body) = match (b.style, api) {
        (_, None) => (b.content_type.clone(), b.raw_message.clone()),
        (BlockStyle::Error, Some(Protocol::OpenAi)) => (
            "application/json".to_string(),
            json!({"error": {"message": msg, "type": "invalid_request_error", "param": null, "code": "content_filter"}})
                .to_string(),
        ),
        (BlockStyle::Error, Some(Protocol::Anthropic)) => (
            "application/json".to_string(),
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": msg}}).to_string(),
        ),
        (BlockStyle::Answer, Some(Protocol::OpenAi)) if stream => {
            let chunk = json!({"id": "chatcmpl-blocked", "object": "chat.completion.chunk", "created": 0, "model": "ai-guard",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": msg}, "finish_reason": "content_filter"}]});
            ("text/event-stream".to_string(), format!("data: {chunk}\n\ndata: [DONE]\n\n"))
        }
        (BlockStyle::Answer, Some(Protocol::OpenAi)) => (
            "application/json".to_string(),
            json!({"id": "chatcmpl-blocked", "object": "chat.completion", "created": 0, "model": "ai-guard",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": msg}, "finish_reason": "content_filter"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}})
            .to_string(),
        ),
        (BlockStyle::Answer, Some(Protocol::Anthropic)) if stream => {
            let events = [
                ("message_start", json!({"type": "message_start", "message": {"id": "msg_blocked", "type": "message", "role": "assistant", "model": "ai-guard", "content": [], "stop_reason": null, "usage": {"input_tokens": 0, "output_tokens": 0}}})),
                ("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
                ("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": msg}})),
                ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                ("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "refusal"}, "usage": {"output_tokens": 0}})),
                ("message_stop", json!({"type": "message_stop"})),
            ];
            let mut body = String::new();
            for (name, data) in events {
                body.push_str(&format!("event: {name}\ndata: {data}\n\n"));
            }
            ("text/event-stream".to_string(), body)
        }
        (BlockStyle::Answer, Some(Protocol::Anthropic)) => (
            "application/json".to_string(),
            json!({"id": "msg_blocked", "type": "message", "role": "assistant", "model": "ai-guard",
                "content": [{"type": "text", "text": msg}], "stop_reason": "refusal",
                "usage": {"input_tokens": 0, "output_tokens": 0}})
            .to_string(),
        ),
    };
    BlockResponse {
        status: b.status,
        content_type,
        body,
    }
}

#[test]
fn render_is_what_json_values_wrote() {
    for message in [
        "",
        "blocked",
        "say \"no\"\\ \n\t\u{1} é 禁止 \u{2028} </script>",
    ] {
        for style in [BlockStyle::Error, BlockStyle::Answer] {
            let b = BlockSettings {
                style,
                status: 403,
                message: message.to_string(),
                raw_message: "raw".to_string(),
                content_type: "text/plain".to_string(),
            };
            for api in [None, Some(Protocol::OpenAi), Some(Protocol::Anthropic)] {
                for stream in [false, true] {
                    assert_eq!(
                        b.render(api, stream),
                        json_render(&b, api, stream),
                        "{style:?} {api:?} {stream}"
                    );
                }
            }
        }
    }
}
