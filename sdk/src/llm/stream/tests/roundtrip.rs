//! The round-trip property: for every (upstream dialect, client dialect) pair, an answer
//! written as upstream bytes, cut at random offsets, decoded, encoded for the client and
//! decoded back keeps its text per channel, tool calls (id, name, whole arguments, streamed in
//! several deltas when the upstream sent several fragments), stop reason and usage.

use super::util::decode_sse;
use super::writers::{Answer, Upstream, UPSTREAMS};
use crate::llm::stream::*;
use crate::llm::Usage;
use proptest::prelude::*;
use std::collections::HashMap;

/// The client dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    OpenAi,
    Anthropic,
    Responses,
    Aggregate,
}

const CLIENTS: [Client; 4] = [
    Client::OpenAi,
    Client::Anthropic,
    Client::Responses,
    Client::Aggregate,
];

/// What a client sees, read back.
#[derive(Debug, Default)]
struct Seen {
    text: HashMap<&'static str, String>,
    /// id, name, arguments, number of argument deltas.
    tools: Vec<(String, String, String, usize)>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
    done: bool,
}

impl Seen {
    fn from_events(events: &[Event<'_>]) -> Seen {
        let mut s = Seen::default();
        for e in events {
            match e {
                Event::Text { channel, text } => {
                    let key = match channel {
                        Channel::Content => "content",
                        Channel::Reasoning => "reasoning",
                        Channel::Refusal => "refusal",
                    };
                    s.text.entry(key).or_default().push_str(text);
                }
                Event::ToolStart { index, id, name } => {
                    assert_eq!(*index as usize, s.tools.len(), "tool indexes are dense");
                    s.tools
                        .push((id.to_string(), name.to_string(), String::new(), 0));
                }
                Event::ToolArgs { index, fragment } => {
                    let t = &mut s.tools[*index as usize];
                    t.2.push_str(fragment);
                    t.3 += 1;
                }
                Event::Stop(r) => s.stop = Some(*r),
                Event::Usage(u) => s.usage = Some(*u),
                Event::Done => s.done = true,
                Event::Start { .. } => {}
                Event::Error { message, .. } => panic!("unexpected error event: {message}"),
            }
        }
        s
    }
}

fn coarse(r: Option<StopReason>) -> Option<StopReason> {
    r.map(|r| {
        if r == StopReason::StopSequence {
            StopReason::End
        } else {
            r
        }
    })
}

fn decoder(u: Upstream) -> Box<dyn Decoder> {
    match u {
        Upstream::OpenAi => Box::new(OpenAiDecoder::new()),
        Upstream::Anthropic => Box::new(AnthropicDecoder::new()),
        Upstream::Gemini => Box::new(GeminiDecoder::new()),
        Upstream::Bedrock => Box::new(BedrockDecoder::new()),
        Upstream::DashScope => Box::new(DashScopeDecoder::new()),
        Upstream::Responses => Box::new(ResponsesDecoder::new()),
    }
}

/// Upstream bytes cut at `cuts` → decode → client → read back.
/// A decoder of the stream the encoder for `client` writes (Responses' for the other clients).
fn client_decoder(client: Client) -> Box<dyn Decoder> {
    match client {
        Client::OpenAi => Box::new(OpenAiDecoder::new()),
        Client::Anthropic => Box::new(AnthropicDecoder::new()),
        _ => Box::new(ResponsesDecoder::new()),
    }
}

fn run(answer: &Answer, up: Upstream, client: Client, cuts: &[usize]) -> Seen {
    let bytes = answer.write(up);
    let mut dec = decoder(up);
    let events = decode_sse(&mut *dec, &bytes, cuts).unwrap();
    dec.finish().unwrap();
    let mut out = Vec::new();
    let mut enc: Box<dyn Encoder> = match client {
        Client::OpenAi => Box::new(OpenAiEncoder::new("c", "m", 1, true)),
        Client::Anthropic => Box::new(AnthropicEncoder::new("c", "m")),
        Client::Responses => Box::new(ResponsesEncoder::new("c", "m", 1)),
        Client::Aggregate => {
            let mut a = Aggregator::new("c", "m", 1);
            for e in &events {
                a.push(e);
            }
            return seen_from_completion(a.finish().unwrap());
        }
    };
    for e in &events {
        enc.encode(e, &mut out);
    }
    enc.finish(&mut out);
    assert!(enc.is_done());
    let mut back = client_decoder(client);
    let events = decode_sse(&mut *back, &out, &[]).unwrap();
    back.finish().unwrap();
    let seen = Seen::from_events(&events);
    if client == Client::Anthropic {
        for t in &seen.tools {
            assert!(t.0.starts_with("toolu_"), "anthropic tool id {}", t.0);
        }
    }
    seen
}

fn seen_from_completion(c: crate::llm::openai::ChatCompletion) -> Seen {
    let mut s = Seen {
        done: true,
        ..Seen::default()
    };
    let choice = &c.choices[0];
    if let Some(crate::llm::openai::MessageContent::Text(t)) = &choice.message.content {
        s.text.insert("content", t.clone());
    }
    if let Some(r) = &choice.message.reasoning_content {
        s.text.insert("reasoning", r.clone());
    }
    for t in choice.message.tool_calls.iter().flatten() {
        s.tools.push((
            t.id.clone(),
            t.function.name.clone(),
            t.function.arguments.clone(),
            1,
        ));
    }
    s.stop = choice.finish_reason.as_deref().map(StopReason::from_openai);
    s.usage = c.usage.as_ref().map(Usage::from_openai);
    s
}

fn check(answer: &Answer, up: Upstream, client: Client, seen: &Seen) {
    let ctx = format!("{up:?} -> {client:?}");
    let text = |k: &str| seen.text.get(k).cloned().unwrap_or_default();
    assert_eq!(text("content"), answer.content.concat(), "{ctx}: content");
    assert_eq!(
        text("reasoning"),
        answer.reasoning.concat(),
        "{ctx}: reasoning"
    );
    assert_eq!(seen.tools.len(), answer.tools.len(), "{ctx}: tool count");
    for ((id, name, args, deltas), (want_name, frags)) in seen.tools.iter().zip(&answer.tools) {
        assert!(!id.is_empty(), "{ctx}: tool id");
        assert_eq!(name, want_name, "{ctx}: tool name");
        assert_eq!(args, &frags.concat(), "{ctx}: tool arguments");
        if frags.len() > 1 && up != Upstream::Gemini && client != Client::Aggregate {
            assert!(
                *deltas > 1,
                "{ctx}: arguments streamed in {deltas} delta(s)"
            );
        }
    }
    assert_eq!(coarse(seen.stop), coarse(Some(answer.stop)), "{ctx}: stop");
    let u = seen.usage.unwrap_or_else(|| panic!("{ctx}: no usage"));
    let w = answer.usage;
    assert_eq!(
        (u.input, u.output, u.total, u.cached_input),
        (w.input, w.output, w.total, w.cached_input),
        "{ctx}: usage"
    );
    assert!(seen.done, "{ctx}: client saw the end");
}

fn fragments(s: &str, cuts: &[prop::sample::Index]) -> Vec<String> {
    let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).skip(1).collect();
    let mut at: Vec<usize> = cuts
        .iter()
        .filter(|_| !bounds.is_empty())
        .map(|c| bounds[c.index(bounds.len())])
        .collect();
    at.sort_unstable();
    at.dedup();
    let mut out = Vec::new();
    let mut from = 0;
    for a in at.into_iter().chain([s.len()]) {
        out.push(s[from..a].to_string());
        from = a;
    }
    out
}

fn text_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .,!?]{1,12}",
        "[\"\\\\/\n\t\u{0}-\u{1f}é中😀<>&']{1,6}",
        Just("data: [DONE]".to_string()),
    ]
}

fn tool() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        "[a-z][a-z0-9_]{0,8}",
        "[a-zA-Z0-9 \"\\\\é\n]{0,16}",
        any::<i32>(),
        prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    )
        .prop_map(|(name, s, n, cuts)| {
            let args = serde_json::json!({"q": s, "n": n}).to_string();
            (name, fragments(&args, &cuts))
        })
}

fn answer() -> impl Strategy<Value = Answer> {
    (
        prop::collection::vec(text_piece(), 0..3),
        prop::collection::vec(text_piece(), 0..4),
        prop::collection::vec(tool(), 0..3),
        prop_oneof![
            Just(StopReason::End),
            Just(StopReason::Length),
            Just(StopReason::ContentFilter),
            Just(StopReason::StopSequence),
        ],
        (0u64..5000, 0u64..5000, 0u64..5000, 0u64..5000),
    )
        .prop_map(|(reasoning, content, tools, stop, (a, b, c, d))| {
            let (input, cached) = (a.max(b), a.min(b));
            let (output, reasoning_tokens) = (c.max(d), c.min(d));
            Answer {
                reasoning,
                content,
                stop: if tools.is_empty() {
                    stop
                } else {
                    StopReason::ToolCalls
                },
                tools,
                usage: Usage {
                    input,
                    output,
                    total: input + output,
                    cached_input: cached,
                    reasoning: reasoning_tokens,
                    cache_creation_input: None,
                },
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_upstream_client_pair_keeps_the_answer(
        answer in answer(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        for up in UPSTREAMS {
            let len = answer.write(up).len();
            let cuts: Vec<usize> = cuts.iter().map(|c| c.index(len)).collect();
            for client in CLIENTS {
                let seen = run(&answer, up, client, &cuts);
                check(&answer, up, client, &seen);
            }
        }
    }
}

/// A fixed answer with everything in it.
fn sample() -> Answer {
    Answer {
        reasoning: vec!["Let me ".into(), "think \"hard\".".into()],
        content: vec!["Hello,\n".into(), "wörld 😀".into()],
        tools: vec![
            (
                "weather".into(),
                vec!["{\"city\":".into(), "\"Paris\"}".into()],
            ),
            ("time".into(), vec!["{}".into()]),
        ],
        stop: StopReason::ToolCalls,
        usage: Usage {
            input: 100,
            output: 40,
            total: 140,
            cached_input: 30,
            reasoning: 10,
            cache_creation_input: None,
        },
    }
}

#[test]
fn every_byte_offset_decodes_the_same() {
    let a = sample();
    for up in UPSTREAMS {
        let bytes = a.write(up);
        let whole = decode_sse(&mut *decoder(up), &bytes, &[]).unwrap();
        for cut in 1..bytes.len() {
            let ev = decode_sse(&mut *decoder(up), &bytes, &[cut]).unwrap();
            assert_eq!(ev, whole, "{up:?} cut at {cut}");
        }
        for client in CLIENTS {
            check(&a, up, client, &run(&a, up, client, &[]));
        }
    }
}

#[test]
fn truncated_upstreams_fail_and_the_client_sees_an_error() {
    let a = sample();
    for up in UPSTREAMS {
        let bytes = a.write(up);
        let mut dec = decoder(up);
        let events = decode_sse(&mut *dec, &bytes[..bytes.len() / 2], &[]).unwrap();
        let err = dec.finish().unwrap_err();
        for client in [Client::OpenAi, Client::Anthropic, Client::Responses] {
            let mut enc: Box<dyn Encoder> = match client {
                Client::OpenAi => Box::new(OpenAiEncoder::new("c", "m", 1, true)),
                Client::Anthropic => Box::new(AnthropicEncoder::new("c", "m")),
                _ => Box::new(ResponsesEncoder::new("c", "m", 1)),
            };
            let mut out = Vec::new();
            for e in &events {
                enc.encode(e, &mut out);
            }
            enc.fail(&err, &mut out);
            assert!(enc.is_done());
            let mut back = client_decoder(client);
            let got = decode_sse(&mut *back, &out, &[]).unwrap();
            assert!(
                matches!(got.last(), Some(Event::Error { .. })),
                "{up:?} -> {client:?}: {got:?}"
            );
        }
    }
}
