//! Measured time to first token (issue 16, point 2): the mock LLM streams at a fixed token
//! rate, one token per event, an answer that matches no ai-guard rule; the same request goes
//! through the gateway with the full shipped chain (`envoy/gateway.json`'s main route:
//! ai-statistics, ai-auth, ai-guard, ai-cache, ai-token-ratelimit, ai-proxy) and directly to
//! the mock, in the same run. The measurement is `aigw_tests::ttft`; the timed figures are in
//! `make bench` (`BENCH_ONLY=ttft`).
//!
//! The target is that the chain adds at most one upstream event's time (plus 20 ms) to the
//! first token. The assertions count events rather than milliseconds, so a loaded machine
//! does not make them fail: the client's first content must arrive before the upstream has
//! sent a tenth of its content events, and most content events must reach the client while
//! the upstream is still sending. The figures are printed (run with `--nocapture`).

use aigw_tests::ttft::{Client, Measurement, Rig, Route, Scenario};

/// The mock's pace: 25 tokens (events) per second, one event every 40 ms.
const TOKENS_PER_SEC: f64 = 25.0;
/// Tokens in a text answer: about 480 characters, 4 s at the pace above.
const ANSWER_TOKENS: usize = 100;
/// Tokens in a tool call's arguments.
const ARGUMENT_TOKENS: usize = 40;

fn rig(label: &str) -> Rig {
    let rig = Rig::start(label).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rig.chain(),
        aigw_tests::SHIPPED_CHAIN,
        "the gateway does not run the full shipped chain"
    );
    if let Err(e) = rig.warm_up() {
        panic!("{e}\ngateway stderr:\n{}", rig.gateway_stderr());
    }
    rig
}

/// The scenario on both routes, direct first; both printed.
fn both(rig: &Rig, s: &Scenario) -> (Measurement, Measurement) {
    let run = |route| {
        let m = rig
            .measure(route, s)
            .unwrap_or_else(|e| panic!("{}: {e}", route.label()));
        eprintln!("{}", m.summary());
        assert_eq!(
            m.status,
            200,
            "{}: {}\ngateway stderr:\n{}",
            route.label(),
            m.error_body,
            rig.gateway_stderr()
        );
        m
    };
    (run(Route::Direct), run(Route::Chain))
}

/// The upstream really streamed the answer at the pace, one token per event, on both routes.
fn check_instrument(s: &Scenario, direct: &Measurement, chain: &Measurement) {
    for m in [direct, chain] {
        assert_eq!(
            m.upstream_content_events(),
            s.tokens,
            "{}: the mock did not send one event per token",
            m.route.label()
        );
        let interval = m.upstream_interval().unwrap_or_default();
        assert!(
            interval.as_secs_f64() > 0.5 / s.tokens_per_sec,
            "{}: the mock did not pace its events ({interval:?})",
            m.route.label()
        );
    }
}

/// The first content reaches the client early and the rest follows while the upstream is
/// still sending; the reason otherwise.
fn early_and_spread(m: &Measurement) -> Result<(), String> {
    let upstream = m.upstream_content_events();
    if m.first_content().is_none() {
        return Err(format!("no content reached the client: {}", m.summary()));
    }
    if m.upstream_sent_before_first_content() > upstream / 10 {
        return Err(format!(
            "the client's first content came only after the upstream had sent {} of its \
             {upstream} content events (target: within the first event; at most {} allowed \
             for a loaded machine): {}",
            m.upstream_sent_before_first_content(),
            upstream / 10,
            m.summary()
        ));
    }
    if m.client_content_before_upstream_end() < upstream / 2 {
        return Err(format!(
            "only {} client content events arrived before the upstream's last of {upstream}: \
             the content was released at the end: {}",
            m.client_content_before_upstream_end(),
            m.summary()
        ));
    }
    Ok(())
}

/// Every scenario against one gateway (starting one compiles the six modules): text to an
/// OpenAI and to an Anthropic client, and a tool call to each. All failures are reported
/// together, after all the figures are printed.
#[test]
fn first_token_and_tool_call_arguments_stream_through_the_full_chain_like_direct() {
    let started = std::time::Instant::now();
    let rig = rig("all");
    eprintln!(
        "gateway up and warmed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut failures = Vec::new();
    for client in [Client::OpenAi, Client::Anthropic] {
        let s = Scenario::text(client, ANSWER_TOKENS, TOKENS_PER_SEC);
        let (direct, chain) = both(&rig, &s);
        assert_eq!(direct.text(), s.expected(), "direct: the mock's answer");
        assert_eq!(chain.text(), s.expected(), "the chain changed the answer");
        check_instrument(&s, &direct, &chain);
        if let Err(e) = early_and_spread(&direct) {
            panic!("the measurement itself is off on the direct route: {e}");
        }
        if let Err(e) = early_and_spread(&chain) {
            failures.push(format!("{} text: {e}", client.label()));
        }
    }
    for client in [Client::OpenAi, Client::Anthropic] {
        let s = Scenario::tool_call(client, ARGUMENT_TOKENS, TOKENS_PER_SEC);
        let (direct, chain) = both(&rig, &s);
        let expected: serde_json::Value =
            serde_json::from_str(&s.expected()).unwrap_or_else(|e| panic!("{e}"));
        for m in [&direct, &chain] {
            let got: serde_json::Value = serde_json::from_str(&m.tool_args())
                .unwrap_or_else(|e| panic!("{}: {e}: {:?}", m.route.label(), m.tool_args()));
            assert_eq!(got, expected, "{}", m.route.label());
        }
        if let Err(e) = early_and_spread(&direct) {
            panic!("the measurement itself is off on the direct route: {e}");
        }
        let check = if chain.client_content_events() > 1 {
            early_and_spread(&chain)
        } else {
            Err(format!(
                "the arguments came in one delta: {}",
                chain.summary()
            ))
        };
        if let Err(e) = check {
            failures.push(format!("{} tool call: {e}", client.label()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
