//! ai-auth end to end in the host simulator: every failure path (missing, wrong, wrong
//! place, conflicting, not allowed, model denied), hashed credentials, credential removal,
//! identity headers (and their spoofing), and that no credential reaches the logs.

use aigw_test_kit::answer::ok;
use aigw_test_kit::{
    assert_configs_rejected, assert_refused, config_error, error_message, load,
    reached_upstream as reached, upstream_header, Chat,
};
use host_sim::{Request, Sim, StreamRecord};

const ALICE_KEY: &str = "sk-alice-0123456789";
const BOB_KEY: &str = "sk-bob-9876543210";
const CAROL_KEY: &str = "carol-secret-key";
/// SHA-256 of CAROL_KEY (`printf %s carol-secret-key | sha256sum`), computed outside the
/// plugin so the test does not rest on the plugin's own SHA-256.
const CAROL_SHA: &str = "6339a584a728963c4acf905b798927c73a8b6298c61f9160fdc2bb11e706312e";

fn carol_sha() -> String {
    CAROL_SHA.to_string()
}

fn config(extra: &str) -> String {
    format!(
        r#"{{
        "consumers": [
            {{"name": "alice", "credential": "{ALICE_KEY}", "allowed_models": ["gpt-4*", "o4-mini"], "denied_models": ["gpt-4-32k*"]}},
            {{"name": "bob", "credentials": ["{BOB_KEY}", "sk-bob-second"]}},
            {{"name": "carol", "credential": "sha256:{}", "denied_models": ["claude-*"]}}
        ]{extra}
    }}"#,
        carol_sha()
    )
}

fn sim(cfg: &str) -> Sim {
    load("ai-auth", 1, cfg)
}

fn chat(model: &str) -> Request {
    Chat::openai(model).user("hi").request()
}

fn messages(model: &str) -> Request {
    Chat::anthropic(model).max_tokens(5).user("hi").request()
}

/// Sends `req`; the upstream, when reached, answers 200.
fn send(sim: &mut Sim, req: Request) -> StreamRecord {
    sim.run(req, ok()).expect("exchange")
}

fn assert_401_openai(rec: &StreamRecord) {
    assert_refused(rec, 401, "no credential");
    assert_eq!(
        rec.response.header("www-authenticate"),
        Some("Bearer realm=\"aigw\"")
    );
    let body = rec.response.json();
    assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
    assert!(body["error"]["message"].is_string());
    assert!(body["error"].get("type").is_some() && body["error"].get("param").is_some());
}

fn assert_no_secret_in_logs(sim: &Sim) {
    for l in sim.logs() {
        for k in [ALICE_KEY, BOB_KEY, "sk-bob-second", CAROL_KEY] {
            assert!(!l.message.contains(k), "secret in log: {}", l.message);
        }
    }
}

#[test]
fn bearer_x_api_key_and_api_key_authenticate_and_are_removed() {
    let mut sim = sim(&config(""));
    let cases = [
        ("authorization", format!("Bearer {ALICE_KEY}"), "alice"),
        ("authorization", format!("bearer {BOB_KEY}"), "bob"),
        ("x-api-key", "sk-bob-second".to_string(), "bob"),
        ("api-key", ALICE_KEY.to_string(), "alice"),
    ];
    for (header, value, who) in cases {
        let rec = send(&mut sim, chat("gpt-4o").header(header, &value));
        assert_eq!(
            rec.response.status,
            200,
            "{header}: {}",
            rec.response.body_str()
        );
        assert!(reached(&rec));
        assert_eq!(upstream_header(&rec, "x-mse-consumer"), Some(who));
        assert_eq!(
            upstream_header(&rec, header),
            None,
            "{header} must be removed"
        );
        // The body passes unchanged.
        assert_eq!(
            rec.upstream_request.as_ref().unwrap().json()["model"],
            "gpt-4o"
        );
    }
    assert_no_secret_in_logs(&sim);
}

#[test]
fn hashed_credential_authenticates() {
    let mut sim = sim(&config(""));
    let rec = send(&mut sim, chat("gpt-4o").header("x-api-key", CAROL_KEY));
    assert_eq!(rec.response.status, 200, "{}", rec.response.body_str());
    assert_eq!(upstream_header(&rec, "x-mse-consumer"), Some("carol"));
    // The digest itself is not a credential.
    let rec = send(&mut sim, chat("gpt-4o").header("x-api-key", &carol_sha()));
    assert_401_openai(&rec);
    let rec = send(
        &mut sim,
        chat("gpt-4o").header("x-api-key", &format!("sha256:{}", carol_sha())),
    );
    assert_401_openai(&rec);
}

#[test]
fn missing_credential_is_401_in_the_clients_protocol() {
    let mut sim = sim(&config(""));
    let rec = send(&mut sim, chat("gpt-4o"));
    assert_401_openai(&rec);
    let rec = send(&mut sim, messages("claude-x"));
    assert_eq!(rec.response.status, 401);
    assert!(rec.response.header("www-authenticate").is_some());
    let body = rec.response.json();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    // A GET (no body) is refused the same way.
    let rec = send(&mut sim, Request::get("/v1/models"));
    assert_401_openai(&rec);
}

#[test]
fn wrong_credential_is_401() {
    let mut sim = sim(&config(""));
    for value in [
        "Bearer sk-alice-012345678",   // one character short
        "Bearer sk-alice-01234567890", // one character more
        "Bearer SK-ALICE-0123456789",  // case matters
        "Bearer ",
    ] {
        let rec = send(&mut sim, chat("gpt-4o").header("authorization", value));
        assert_401_openai(&rec);
    }
    assert!(sim.logged("unknown credential"));
    assert_no_secret_in_logs(&sim);
}

#[test]
fn credential_in_the_wrong_place_is_401() {
    let mut sim = sim(&config(""));
    // Query parameters are off by default.
    let rec = send(
        &mut sim,
        Request::post(
            &format!("/v1/chat/completions?api-key={ALICE_KEY}"),
            r#"{"model":"gpt-4o"}"#,
        ),
    );
    assert_401_openai(&rec);
    // A header that is not one of `keys`.
    let rec = send(&mut sim, chat("gpt-4o").header("x-auth-token", ALICE_KEY));
    assert_401_openai(&rec);
    // Authorization with a scheme other than Bearer, or without a scheme.
    for v in [format!("Basic {ALICE_KEY}"), ALICE_KEY.to_string()] {
        let rec = send(&mut sim, chat("gpt-4o").header("authorization", &v));
        assert_401_openai(&rec);
    }
    // With in_header off, a header credential no longer counts.
    let mut sim2 = self::sim(&config(
        r#", "in_header": false, "in_query": true, "keys": ["api-key"]"#,
    ));
    let rec = send(&mut sim2, chat("gpt-4o").header("api-key", ALICE_KEY));
    assert_401_openai(&rec);
    assert_no_secret_in_logs(&sim);
    assert_no_secret_in_logs(&sim2);
}

#[test]
fn query_credential_when_enabled_is_removed_from_the_path() {
    let mut sim = sim(&config(r#", "in_query": true"#));
    let rec = send(
        &mut sim,
        Request::post(
            &format!("/v1/chat/completions?x=1&api-key={ALICE_KEY}&y=2"),
            r#"{"model":"gpt-4o"}"#,
        ),
    );
    assert_eq!(rec.response.status, 200, "{}", rec.response.body_str());
    assert_eq!(
        upstream_header(&rec, ":path"),
        Some("/v1/chat/completions?x=1&y=2")
    );
    assert_eq!(upstream_header(&rec, "x-mse-consumer"), Some("alice"));
}

#[test]
fn conflicting_credentials_are_401_and_equal_ones_pass() {
    let mut sim = sim(&config(""));
    let mut both = |x_api_key: &str| {
        let req = alice(chat("gpt-4o")).header("x-api-key", x_api_key);
        send(&mut sim, req)
    };
    assert_401_openai(&both(BOB_KEY));
    let rec = both(ALICE_KEY);
    assert_eq!(rec.response.status, 200);
    assert_eq!(upstream_header(&rec, "authorization"), None);
    assert_eq!(upstream_header(&rec, "x-api-key"), None);
}

#[test]
fn model_allow_and_deny_lists() {
    let mut sim = sim(&config(""));
    // Allowed by `gpt-4*` and by the exact `o4-mini`, also with the body in small pieces.
    for (model, chunk) in [("gpt-4o", 0), ("gpt-4.1-mini", 7), ("o4-mini", 1)] {
        let rec = send(&mut sim, alice(chat(model)).chunked(chunk));
        assert_eq!(
            rec.response.status,
            200,
            "{model}: {}",
            rec.response.body_str()
        );
        assert_eq!(
            rec.upstream_request.as_ref().unwrap().json()["model"],
            model
        );
    }
    // Denied: not in the allow list, or in the deny list (deny wins over `gpt-4*`).
    for (model, chunk) in [
        ("gpt-3.5-turbo", 0),
        ("gpt-4-32k-0613", 5),
        ("o4-mini-high", 3),
    ] {
        let rec = send(&mut sim, alice(chat(model)).chunked(chunk));
        assert_eq!(rec.response.status, 403, "{model}");
        assert!(!reached(&rec), "{model} must not reach the upstream");
        let body = rec.response.json();
        assert_eq!(body["error"]["code"], "model_not_allowed", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(model));
    }
    // A body without a model does not slip past an allow list: it is a 400 naming `model`.
    let rec = send(
        &mut sim,
        alice(Request::post("/v1/chat/completions", r#"{"messages":[]}"#)),
    );
    assert_eq!(rec.response.status, 400);
    assert!(!reached(&rec));
    assert_eq!(rec.response.json()["error"]["param"], "model");
    // Anthropic shape on /v1/messages, for carol's deny list.
    let rec = send(
        &mut sim,
        messages("claude-sonnet-4").header("x-api-key", CAROL_KEY),
    );
    assert_eq!(rec.response.status, 403);
    assert!(!reached(&rec));
    let body = rec.response.json();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "permission_error", "{body}");
    let rec = send(&mut sim, messages("gpt-4o").header("x-api-key", CAROL_KEY));
    assert_eq!(rec.response.status, 200);
    // The model in ai-proxy's header, or in a Gemini-style path, is checked at headers.
    let rec = send(
        &mut sim,
        alice(chat("gpt-4o")).header("x-aigw-model", "claude-3"),
    );
    assert_eq!(rec.response.status, 403);
    let rec = send(
        &mut sim,
        alice(Request::post(
            "/v1beta/models/gemini-2.5-pro:generateContent",
            r#"{"contents":[]}"#,
        )),
    );
    assert_eq!(rec.response.status, 403);
    // Bob has no restrictions: any model, no body check.
    let rec = send(&mut sim, chat("anything").header("x-api-key", BOB_KEY));
    assert_eq!(rec.response.status, 200);
}

#[test]
fn allowed_models_header_lists_the_consumers_patterns() {
    let mut sim = sim(&config(""));
    let rec = send(
        &mut sim,
        Request::get("/v1/models")
            .header("authorization", &format!("Bearer {ALICE_KEY}"))
            .header("x-aigw-allowed-models", "*"),
    );
    assert_eq!(rec.response.status, 200);
    assert_eq!(
        upstream_header(&rec, "x-aigw-allowed-models"),
        Some("gpt-4*,o4-mini,!gpt-4-32k*")
    );
    let rec = send(
        &mut sim,
        Request::get("/v1/models").header("x-api-key", BOB_KEY),
    );
    assert_eq!(upstream_header(&rec, "x-aigw-allowed-models"), Some("*"));
}

#[test]
fn client_sent_consumer_header_is_overwritten_or_removed() {
    let mut sim = sim(&config(""));
    let rec = send(
        &mut sim,
        chat("gpt-4o")
            .header("x-mse-consumer", "admin")
            .header("x-api-key", BOB_KEY),
    );
    assert_eq!(rec.response.status, 200);
    let up = rec.upstream_request.as_ref().unwrap();
    let values: Vec<_> = up
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("x-mse-consumer"))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(values, vec!["bob".to_string()]);
    // A spoofed identity without a credential is refused, not trusted.
    let rec = send(&mut sim, chat("gpt-4o").header("x-mse-consumer", "alice"));
    assert_401_openai(&rec);

    // Where authentication does not apply (global_auth false, no rule matched), the
    // spoofed header is removed.
    let cfg = config(
        r#", "global_auth": false, "_rules_": [{"_match_route_": ["private"], "allow": ["alice"]}]"#,
    );
    let mut sim = self::sim(&cfg);
    let rec = send(
        &mut sim,
        chat("gpt-4o")
            .route("public")
            .header("x-mse-consumer", "alice"),
    );
    assert_eq!(rec.response.status, 200);
    assert_eq!(upstream_header(&rec, "x-mse-consumer"), None);
}

#[test]
fn global_auth_and_allow_follow_higress() {
    let rules = r#", "_rules_": [{"_match_route_": ["private"], "allow": ["alice"]}]"#;
    // global_auth false: only the rule's route is authenticated.
    let mut sim = sim(&config(&format!(r#", "global_auth": false{rules}"#)));
    let rec = send(&mut sim, chat("gpt-4o").route("public"));
    assert_eq!(rec.response.status, 200);
    let rec = send(&mut sim, chat("gpt-4o").route("private"));
    assert_401_openai(&rec);
    let rec = send(
        &mut sim,
        chat("gpt-4o").route("private").header("x-api-key", BOB_KEY),
    );
    assert_eq!(
        rec.response.status, 403,
        "bob is not in the rule's allow list"
    );
    assert_eq!(rec.response.json()["error"]["code"], "consumer_not_allowed");
    let rec = send(
        &mut sim,
        chat("gpt-4o")
            .route("private")
            .header("x-api-key", ALICE_KEY),
    );
    assert_eq!(rec.response.status, 200);
    // Unset with rules present: same as false (Higress's compatibility rule).
    let mut sim = self::sim(&config(rules));
    let rec = send(&mut sim, chat("gpt-4o").route("public"));
    assert_eq!(rec.response.status, 200);
    // global_auth true: every route.
    let mut sim = self::sim(&config(&format!(r#", "global_auth": true{rules}"#)));
    let rec = send(&mut sim, chat("gpt-4o").route("public"));
    assert_401_openai(&rec);
    let rec = send(
        &mut sim,
        chat("gpt-4o").route("public").header("x-api-key", BOB_KEY),
    );
    assert_eq!(rec.response.status, 200);
}

#[test]
fn bad_config_is_one_clear_error() {
    assert_configs_rejected(
        "ai-auth",
        &[(
            r#"{"consumers":[{"name":"a","credential":"sha256:abc"}]}"#,
            "ai-auth: invalid config: consumers[0].credential: a sha256: credential needs exactly 64 hex digits",
        )],
    );
    // The error never echoes a credential.
    let err = config_error(
        "ai-auth",
        r#"{"consumers":[{"name":"a","credential":"sk-secret-1"},{"name":"b","credential":"sk-secret-1"}]}"#,
    );
    assert!(err.contains("consumers[1].credential"), "{err}");
    assert!(!err.contains("sk-secret-1"), "{err}");
}

#[test]
fn example_config_loads_and_authenticates() {
    let text = aigw_test_kit::read_example_config("ai-auth");
    let mut sim = sim(&text);
    let rec = send(
        &mut sim,
        chat("gpt-4o-mini").header("authorization", "Bearer sk-batch-8c2e61d09a7f4b35"),
    );
    assert_eq!(rec.response.status, 200, "{}", rec.response.body_str());
    assert_eq!(upstream_header(&rec, "x-mse-consumer"), Some("batch-jobs"));
    // team-web's second credential is stored as the SHA-256 of this key.
    let rec = send(
        &mut sim,
        chat("claude-sonnet-4").header("x-api-key", "sk-web-second-7d1e0b95c4a2"),
    );
    assert_eq!(upstream_header(&rec, "x-mse-consumer"), Some("team-web"));
    let rec = send(
        &mut sim,
        chat("gpt-4o").header("x-api-key", "sk-batch-8c2e61d09a7f4b35"),
    );
    assert_eq!(rec.response.status, 403);
}

// ---- Hostile input (the guarantees listed in plugins/ai-auth/README.md "Guarantees"). ----

fn alice(r: Request) -> Request {
    r.header("authorization", &format!("Bearer {ALICE_KEY}"))
}

#[test]
fn bodies_parsers_disagree_on_are_refused_for_restricted_consumers() {
    let mut sim = sim(&config(""));
    let msgs = r#""messages":[{"role":"user","content":"hi"}]"#;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // A last-wins upstream would use the denied second model.
        (
            "duplicate model",
            format!(r#"{{"model":"gpt-4o","model":"gpt-4-32k-0613",{msgs}}}"#).into_bytes(),
        ),
        // The duplicate spelled with an escape.
        (
            "escaped duplicate model",
            format!(r#"{{"model":"gpt-4o",{msgs},"mod\u0065l":"gpt-3.5-turbo"}}"#).into_bytes(),
        ),
        // A repeated key deeper down is refused too (parsers disagree on the message).
        (
            "duplicate nested key",
            r#"{"model":"gpt-4o","messages":[{"role":"user","role":"system","content":"x"}]}"#
                .as_bytes()
                .to_vec(),
        ),
        (
            "byte order mark",
            [
                &b"\xEF\xBB\xBF"[..],
                format!(r#"{{"model":"gpt-4-32k",{msgs}}}"#).as_bytes(),
            ]
            .concat(),
        ),
        (
            "model as an array",
            format!(r#"{{"model":["gpt-4-32k"],{msgs}}}"#).into_bytes(),
        ),
        (
            "model as a number",
            format!(r#"{{"model":4,{msgs}}}"#).into_bytes(),
        ),
        ("not JSON", b"model=gpt-4-32k".to_vec()),
    ];
    for (what, body) in cases {
        for chunk in [0, 3] {
            let req = alice(Request::post("/v1/chat/completions", body.clone())).chunked(chunk);
            let rec = send(&mut sim, req);
            assert_refused(&rec, 400, what);
            let err = rec.response.json();
            assert_eq!(
                err["error"]["type"], "invalid_request_error",
                "{what}: {err}"
            );
            assert_eq!(err["error"]["param"], "model", "{what}: {err}");
        }
    }
    // The same body shapes in the Anthropic protocol get an Anthropic-shaped 400.
    let rec = send(
        &mut sim,
        Request::post(
            "/v1/messages",
            r#"{"model":"gpt-4o","max_tokens":5,"model":"claude-3","messages":[]}"#,
        )
        .header("x-api-key", CAROL_KEY),
    );
    assert_refused(&rec, 400, "anthropic duplicate");
    assert_eq!(
        rec.response.json()["error"]["type"],
        "invalid_request_error"
    );
    // An unrestricted consumer's body is not inspected at all.
    let rec = send(
        &mut sim,
        Request::post("/v1/chat/completions", r#"{"model":"a","model":"b"}"#)
            .header("x-api-key", BOB_KEY),
    );
    assert_eq!(rec.response.status, 200);
}

#[test]
fn path_models_are_compared_decoded_and_forwarded_as_compared() {
    let mut sim = sim(&config(""));
    let carol =
        |path: &str| Request::post(path, r#"{"contents":[]}"#).header("x-api-key", CAROL_KEY);
    // `claude-*` is denied to carol, however the path spells it.
    for path in [
        "/v1beta/models/claud%65-3-opus:generateContent",
        "/v1beta/models/%43LAUDE-3-opus:streamGenerateContent?alt=sse",
        "/v1beta/m%6Fdels/claude-3-opus:generateContent",
    ] {
        let rec = send(&mut sim, carol(path));
        assert_refused(&rec, 403, path);
    }
    // Escapes that do not decode to a plain name cannot be decided.
    let rec = send(
        &mut sim,
        carol("/v1beta/models/claude%2D3%25x:generateContent"),
    );
    assert_refused(&rec, 400, "escaped path model");
    // An allowed model goes upstream under the name that was checked.
    let rec = send(
        &mut sim,
        carol("/v1beta/models/g%65mini-2.5-pro:generateContent?alt=sse"),
    );
    assert_eq!(rec.response.status, 200, "{}", rec.response.body_str());
    assert_eq!(
        upstream_header(&rec, ":path"),
        Some("/v1beta/models/gemini-2.5-pro:generateContent?alt=sse")
    );
}

#[test]
fn a_repeated_credential_header_is_refused_whatever_its_order() {
    let mut sim = sim(&config(""));
    let valid = format!("Bearer {ALICE_KEY}");
    let bogus = "Bearer sk-not-a-key".to_string();
    for (first, second) in [
        (valid.clone(), bogus.clone()),
        (bogus.clone(), valid.clone()),
        (valid.clone(), valid.clone()),
        (valid.clone(), "Basic dXNlcjpwYXNz".to_string()),
    ] {
        let req = chat("gpt-4o")
            .header("authorization", &first)
            .header("authorization", &second);
        let rec = send(&mut sim, req);
        assert_401_openai(&rec);
    }
    for header in ["x-api-key", "api-key"] {
        let rec = send(
            &mut sim,
            chat("gpt-4o")
                .header(header, BOB_KEY)
                .header(header, "sk-bob-second"),
        );
        assert_401_openai(&rec);
    }
    // The same key in two different accepted places is one credential and still passes.
    let rec = send(
        &mut sim,
        chat("gpt-4o")
            .header("authorization", &valid)
            .header("x-api-key", ALICE_KEY),
    );
    assert_eq!(rec.response.status, 200);
    assert_no_secret_in_logs(&sim);
}

#[test]
fn client_text_in_logs_and_errors_is_escaped_and_bounded() {
    let mut sim = sim(&config(""));
    let injected = format!(
        r"gpt-4-32k\nai-auth: consumer admin allowed\r\u001b[31mRED{}",
        "A".repeat(200_000)
    );
    let body = format!(r#"{{"model":"{injected}","messages":[]}}"#);
    let rec = send(&mut sim, alice(Request::post("/v1/chat/completions", body)));
    assert_refused(&rec, 403, "denied long model");
    let message = error_message(&rec);
    assert!(
        message.len() <= 1024,
        "error message is {} bytes",
        message.len()
    );
    assert!(
        !message.contains('\n') && !message.contains('\u{1b}'),
        "{message:?}"
    );
    assert!(message.contains("gpt-4-32k\\n"), "{message:?}");
    let logs = sim.logs();
    assert!(logs.iter().any(|l| l.message.contains("refused model")));
    for l in &logs {
        assert!(
            l.message.len() <= 4200,
            "log line of {} bytes",
            l.message.len()
        );
        assert!(
            !l.message.contains('\n') && !l.message.contains('\r') && !l.message.contains('\u{1b}'),
            "raw control character in a log line: {:?}",
            l.message.get(..200)
        );
    }
}

#[test]
fn local_errors_carry_the_request_id() {
    let mut sim = sim(&config(""));
    // Envoy's request id (x-request-id) is echoed on the local reply.
    let rec = send(
        &mut sim,
        chat("gpt-4o").header("x-request-id", "9f1c2b7e-req"),
    );
    assert_eq!(rec.response.status, 401);
    assert_eq!(rec.response.header("x-request-id"), Some("9f1c2b7e-req"));
    // An id that is not a plain token is not echoed: a fresh one is made.
    let rec = send(&mut sim, chat("gpt-4o").header("x-request-id", "two words"));
    let id = rec.response.header("x-request-id").unwrap_or_default();
    assert!(id.starts_with("req_") && id.len() == 28, "{id}");
    let again = send(&mut sim, chat("gpt-4o").header("x-request-id", "two words"));
    assert_ne!(
        again.response.header("x-request-id"),
        Some(id),
        "ids are not reused"
    );
}
