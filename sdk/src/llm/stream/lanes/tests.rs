use super::*;
use crate::llm::stream::{
    AnthropicDecoder, Decoder, Event, OpenAiDecoder, ResponsesDecoder, StopReason,
};
use crate::sse::Parser;

fn lane(api: Api, choice: u32, block: u32, part: Part) -> Lane {
    Lane {
        api,
        choice,
        block,
        part,
    }
}

/// (lane, text) of every field, and checks each span holds the JSON string of its text.
fn fields(data: &[u8]) -> (Vec<(Lane, String)>, Located<'_>) {
    let found = locate(data).unwrap();
    for f in found.fields.iter().chain(&found.whole) {
        let lit = std::str::from_utf8(&data[f.span.clone()]).unwrap();
        assert_eq!(serde_json::from_str::<String>(lit).unwrap(), f.text);
    }
    let list = found
        .fields
        .iter()
        .map(|f| (f.lane, f.text.to_string()))
        .collect();
    (list, found)
}

#[test]
fn openai_chunks_every_text_of_every_choice() {
    let data = br#"{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[
        {"index":0,"delta":{"role":"assistant","content":"Hi \"you\"\n","reasoning_content":"think","refusal":"no"},"finish_reason":null},
        {"index":3,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}},{"index":2,"function":{"name":"f","arguments":":1}"}}]},"finish_reason":"tool_calls"}]}"#;
    let (list, found) = fields(data);
    let chat = Api::ChatCompletions;
    assert_eq!(
        list,
        vec![
            (
                lane(chat, 0, 0, Part::Text(Channel::Content)),
                "Hi \"you\"\n".into()
            ),
            (
                lane(chat, 0, 0, Part::Text(Channel::Reasoning)),
                "think".into()
            ),
            (lane(chat, 0, 0, Part::Text(Channel::Refusal)), "no".into()),
            (lane(chat, 3, 0, Part::ToolArgs), "{\"a\"".into()),
            (lane(chat, 3, 2, Part::ToolArgs), ":1}".into()),
        ]
    );
    assert_eq!(found.ends, vec![End::Choice(3)]);
    let mut meta = StreamMeta::default();
    found.fill_meta(&mut meta);
    assert_eq!(meta.id.as_deref(), Some("c1"));
    assert_eq!(meta.created, Some(7));
    assert!(!meta.legacy);
    // Unescaped text borrows from the data.
    assert!(matches!(found.fields[1].text, Cow::Borrowed("think")));
}

#[test]
fn legacy_completions_and_odd_indexes() {
    let data = br#"{"object":"text_completion","choices":[{"index":99999999999,"text":"abc","finish_reason":null},{"text":"x"}]}"#;
    let (list, found) = fields(data);
    let mut meta = StreamMeta::default();
    found.fill_meta(&mut meta);
    assert!(meta.legacy);
    let chat = Api::ChatCompletions;
    assert_eq!(
        list,
        vec![
            (lane(chat, u32::MAX, 0, Part::Legacy), "abc".into()),
            (lane(chat, 1, 0, Part::Legacy), "x".into()),
        ]
    );
    assert!(found.ends.is_empty());
}

#[test]
fn anthropic_events() {
    let a = Api::AnthropicMessages;
    let (_, found) = fields(
        br#"{"type":"message_start","message":{"id":"msg_1","model":"claude","content":[]}}"#,
    );
    assert_eq!(found.api, Some(a));
    let mut meta = StreamMeta::default();
    found.fill_meta(&mut meta);
    assert_eq!(meta.model.as_deref(), Some("claude"));
    let (list, found) = fields(
        br#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":"Hello"}}"#,
    );
    assert_eq!(found.opens, Some(1));
    assert_eq!(
        list,
        vec![(lane(a, 0, 1, Part::Text(Channel::Content)), "Hello".into())]
    );
    for (delta, part, text) in [
        (
            r#"{"type":"text_delta","text":"t"}"#,
            Part::Text(Channel::Content),
            "t",
        ),
        (
            r#"{"type":"thinking_delta","thinking":"r"}"#,
            Part::Text(Channel::Reasoning),
            "r",
        ),
        (
            r#"{"type":"input_json_delta","partial_json":"{\"q\":"}"#,
            Part::ToolArgs,
            "{\"q\":",
        ),
        (
            r#"{"type":"future_delta","text":"u"}"#,
            Part::Text(Channel::Content),
            "u",
        ),
    ] {
        let data = format!(r#"{{"type":"content_block_delta","index":2,"delta":{delta}}}"#);
        let (list, _) = fields(data.as_bytes());
        assert_eq!(list, vec![(lane(a, 0, 2, part), text.to_string())]);
    }
    let (_, found) = fields(br#"{"type":"content_block_stop","index":2}"#);
    assert_eq!(found.ends, vec![End::Block(2)]);
    let (_, found) = fields(br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"}}"#);
    assert_eq!(found.ends, vec![End::All]);
}

#[test]
fn responses_events() {
    let r = Api::Responses;
    let (list, found) = fields(
        br#"{"type":"response.output_text.delta","item_id":"msg_1","output_index":1,"content_index":0,"delta":"Hi","sequence_number":4}"#,
    );
    assert_eq!(
        list,
        vec![(lane(r, 1, 0, Part::Text(Channel::Content)), "Hi".into())]
    );
    assert_eq!(found.item_id.as_deref(), Some("msg_1"));
    let (list, _) = fields(
        br#"{"type":"response.function_call_arguments.delta","output_index":2,"delta":"{\"a\":"}"#,
    );
    assert_eq!(
        list,
        vec![(lane(r, 2, 0, Part::ToolArgs), "{\"a\":".into())]
    );
    let (list, found) = fields(
        br#"{"type":"response.output_text.done","output_index":1,"content_index":0,"text":"Hi there"}"#,
    );
    assert!(list.is_empty());
    assert_eq!(found.whole.len(), 1);
    assert_eq!(found.whole[0].text, "Hi there");
    assert_eq!(
        found.ends,
        vec![End::Lane(lane(r, 1, 0, Part::Text(Channel::Content)))]
    );
    let (_, found) = fields(
        br#"{"type":"response.completed","response":{"id":"resp_1","model":"m","output":[{"type":"message","content":[{"type":"output_text","text":"A"},{"type":"refusal","refusal":"B"}]},{"type":"function_call","arguments":"{}"}]}}"#,
    );
    let whole: Vec<&str> = found.whole.iter().map(|f| f.text.as_ref()).collect();
    assert_eq!(whole, vec!["A", "B", "{}"]);
    assert_eq!(found.ends, vec![End::All]);
    let mut meta = StreamMeta::default();
    found.fill_meta(&mut meta);
    assert_eq!(meta.id.as_deref(), Some("resp_1"));
}

#[test]
fn other_json_and_non_json() {
    let found = locate(br#"{"hello":"world","text":"x"}"#).unwrap();
    assert_eq!(found.api, None);
    assert!(found.fields.is_empty() && found.whole.is_empty());
    assert!(locate(b"[DONE]").is_err());
    assert!(locate(br#"{"choices":{"not":"a list"}}"#).is_err());
}

#[test]
fn an_event_of_two_dialects_is_refused() {
    for data in [
        &br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"},"choices":[]}"#[..],
        br#"{"choices":[{"delta":{"content":"a"}}],"type":"response.output_text.delta","delta":"b"}"#,
        br#"{"type":"message_start","choices":[]}"#,
    ] {
        assert!(locate(data).is_err(), "{}", String::from_utf8_lossy(data));
    }
    // A chat chunk with some other `type` is still a chat chunk.
    let found = locate(br#"{"type":"chunk","choices":[{"delta":{"content":"a"}}]}"#).unwrap();
    assert_eq!(found.fields.len(), 1);
}

#[test]
fn splice_keeps_every_other_byte() {
    let data = br#"{"z":1, "choices":[{"delta":{"content":"a\u0062c"}, "logprobs":{"x":[1]}}]}"#;
    let found = locate(data).unwrap();
    assert_eq!(found.fields[0].text, "abc");
    let mut out = Vec::new();
    splice(
        data,
        &[(found.fields[0].span.clone(), "new \"q\"")],
        &mut out,
    );
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{"z":1, "choices":[{"delta":{"content":"new \"q\""}, "logprobs":{"x":[1]}}]}"#
    );
}

/// The data of each SSE event in `body`, with its event name.
fn events(body: &[u8]) -> Vec<(Option<String>, Vec<u8>)> {
    let mut p = Parser::new(1 << 20);
    let mut evs = Vec::new();
    p.feed(body, |ev| {
        if let Some(d) = ev.data() {
            let name = ev.is_event().then(|| ev.event_type().to_string());
            evs.push((name, d.to_vec()));
        }
    })
    .unwrap();
    evs
}

#[test]
fn extra_deltas_are_found_again_on_their_lane() {
    let meta = StreamMeta {
        id: Some("c1".into()),
        model: Some("m".into()),
        created: Some(3),
        legacy: false,
    };
    let cases = [
        lane(Api::ChatCompletions, 2, 0, Part::Text(Channel::Content)),
        lane(Api::ChatCompletions, 0, 0, Part::Text(Channel::Reasoning)),
        lane(Api::ChatCompletions, 0, 0, Part::Text(Channel::Refusal)),
        lane(Api::ChatCompletions, 1, 4, Part::ToolArgs),
        lane(Api::AnthropicMessages, 0, 3, Part::Text(Channel::Content)),
        lane(Api::AnthropicMessages, 0, 1, Part::Text(Channel::Reasoning)),
        lane(Api::AnthropicMessages, 0, 2, Part::ToolArgs),
        lane(Api::Responses, 1, 2, Part::Text(Channel::Content)),
        lane(Api::Responses, 0, 0, Part::Text(Channel::Refusal)),
        lane(Api::Responses, 3, 0, Part::ToolArgs),
    ];
    for l in cases {
        let mut out = Vec::new();
        write_delta(&l, &meta, Some("item_9"), "tail \"x\"\n", &mut out);
        let evs = events(&out);
        assert_eq!(evs.len(), 1, "{l:?}");
        let (list, found) = fields(&evs[0].1);
        assert_eq!(list, vec![(l, "tail \"x\"\n".to_string())], "{l:?}");
        assert!(found.ends.is_empty());
    }
    let mut legacy = Vec::new();
    let meta = StreamMeta {
        legacy: true,
        ..StreamMeta::default()
    };
    let l = lane(Api::ChatCompletions, 0, 0, Part::Legacy);
    write_delta(&l, &meta, None, "t", &mut legacy);
    let evs = events(&legacy);
    let (list, found) = fields(&evs[0].1);
    assert_eq!(list, vec![(l, "t".to_string())]);
    let mut meta = StreamMeta::default();
    found.fill_meta(&mut meta);
    assert!(meta.legacy);
}

/// Runs `body` through a decoder, returning its events (owned).
fn decode(dec: &mut dyn Decoder, body: &[u8]) -> Vec<Event<'static>> {
    let mut all = Vec::new();
    for (name, data) in events(body) {
        let mut evs = Vec::new();
        dec.decode(name.as_deref(), &data, &mut evs).unwrap();
        all.extend(evs.into_iter().map(Event::into_owned));
    }
    all
}

#[test]
fn cuts_end_each_dialect_as_its_own_decoder_reads_it() {
    let meta = StreamMeta {
        id: Some("x1".into()),
        model: Some("m".into()),
        created: None,
        legacy: false,
    };
    let text_of = |evs: &[Event<'_>]| -> String {
        evs.iter()
            .filter_map(|e| match e {
                Event::Text { text, .. } => Some(text.to_string()),
                _ => None,
            })
            .collect()
    };
    // OpenAI: the decoder needs no start of its own.
    let mut out = Vec::new();
    let cut = Cut {
        api: Api::ChatCompletions,
        lane: None,
        text: "safe part",
        args: "",
        open_blocks: &[],
    };
    write_cut(&cut, &meta, None, &mut out);
    let mut dec = OpenAiDecoder::new();
    let evs = decode(&mut dec, &out);
    assert_eq!(text_of(&evs), "safe part");
    assert!(evs.contains(&Event::Stop(StopReason::ContentFilter)));
    assert!(evs.contains(&Event::Done));
    dec.finish().unwrap();

    // Anthropic: after a real start and an open block.
    let mut body = br#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1","model":"claude","usage":{"input_tokens":3,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

"#
    .to_vec();
    let cut = Cut {
        api: Api::AnthropicMessages,
        lane: Some(lane(
            Api::AnthropicMessages,
            0,
            0,
            Part::Text(Channel::Content),
        )),
        text: "safe",
        args: "",
        open_blocks: &[0],
    };
    write_cut(&cut, &meta, None, &mut body);
    let mut dec = AnthropicDecoder::new();
    let evs = decode(&mut dec, &body);
    assert_eq!(text_of(&evs), "safe");
    assert!(evs.contains(&Event::Stop(StopReason::ContentFilter)));
    assert!(evs.contains(&Event::Done));
    dec.finish().unwrap();

    // Responses: after a real start.
    let mut body = br#"event: response.created
data: {"type":"response.created","response":{"id":"resp_1","model":"m","status":"in_progress","output":[]}}

"#
    .to_vec();
    let cut = Cut {
        api: Api::Responses,
        lane: None,
        text: "safe",
        args: "",
        open_blocks: &[],
    };
    write_cut(&cut, &meta, Some("msg_1"), &mut body);
    let mut dec = ResponsesDecoder::new();
    let evs = decode(&mut dec, &body);
    assert_eq!(text_of(&evs), "safe");
    assert!(evs.contains(&Event::Stop(StopReason::ContentFilter)));
    assert!(evs.contains(&Event::Done));
    dec.finish().unwrap();
}

/// The lanes and texts `locate` finds, or `None` for an error.
fn texts(data: &[u8]) -> Option<Vec<(Lane, String)>> {
    let found = locate(data).ok()?;
    Some(
        found
            .fields
            .iter()
            .chain(&found.whole)
            .map(|f| (f.lane, f.text.to_string()))
            .collect(),
    )
}

#[test]
fn keys_written_with_escapes_are_the_same_keys() {
    let chat = Api::ChatCompletions;
    let content = lane(chat, 0, 0, Part::Text(Channel::Content));
    let plain = br#"{"choices":[{"index":0,"delta":{"content":"13812345678"}}]}"#;
    assert_eq!(texts(plain), Some(vec![(content, "13812345678".into())]));
    for data in [
        &br#"{"choices":[{"index":0,"delta":{"con\u0074ent":"13812345678"}}]}"#[..],
        br#"{"\u0063hoices":[{"index":0,"delta":{"content":"13812345678"}}]}"#,
        br#"{"choices":[{"index":0,"\u0064\u0065\u006C\u0074\u0061":{"content":"13812345678"}}]}"#,
        br#"{"choices":[{"index":0,"delta":{"c\u006Fntent":"13812345678"}}]}"#,
    ] {
        assert_eq!(
            texts(data),
            Some(vec![(content, "13812345678".into())]),
            "{}",
            String::from_utf8_lossy(data)
        );
    }
    // Anthropic and Responses kinds and keys too.
    let a = texts(
        br#"{"t\u0079pe":"content_block_\u0064elta","index":0,"delta":{"type":"text_delta","te\u0078t":"secret"}}"#,
    );
    assert_eq!(
        a,
        Some(vec![(
            lane(Api::AnthropicMessages, 0, 0, Part::Text(Channel::Content)),
            "secret".into()
        )])
    );
    let r =
        texts(br#"{"type":"response.output_text.delta","output_index":0,"d\u0065lta":"secret"}"#);
    assert_eq!(
        r,
        Some(vec![(
            lane(Api::Responses, 0, 0, Part::Text(Channel::Content)),
            "secret".into()
        )])
    );
}

#[test]
fn duplicate_keys_are_errors_never_a_hidden_value() {
    for data in [
        // A second `content` (a reader keeping the last one would show it).
        &br#"{"choices":[{"delta":{"content":"ok","content":"13812345678"}}]}"#[..],
        // The same key, once escaped.
        br#"{"choices":[{"delta":{"content":"ok","con\u0074ent":"13812345678"}}]}"#,
        br#"{"choices":[{"delta":{"content":"x"}}],"choices":[{"delta":{"content":"13812345678"}}]}"#,
        br#"{"choices":[{"delta":{"content":"x"},"delta":{"content":"13812345678"}}]}"#,
        br#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"a","arguments":"b"}}]}}]}"#,
        br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok","text":"13812345678"}}"#,
        br#"{"type":"content_block_delta","type":"message_stop","delta":{"type":"text_delta","text":"x"}}"#,
        br#"{"type":"response.output_text.delta","delta":"ok","delta":"13812345678"}"#,
        br#"{"type":"response.completed","response":{"output":[{"content":[{"text":"a","text":"b"}]}]}}"#,
    ] {
        assert!(
            locate(data).is_err(),
            "{}",
            String::from_utf8_lossy(data)
        );
    }
    // Unknown keys may repeat.
    assert!(locate(br#"{"x":1,"x":2,"choices":[]}"#).is_ok());
}

#[test]
fn shapes_that_could_hide_text_are_errors() {
    for data in [
        // Wrong types for fields that hold text.
        &br#"{"choices":[{"delta":"13812345678"}]}"#[..],
        br#"{"choices":["13812345678"]}"#,
        br#"{"type":"content_block_delta","index":0,"delta":"13812345678"}"#,
        br#"{"type":"content_block_delta","index":0,"delta":["13812345678"]}"#,
        br#"{"type":"content_block_start","index":0,"content_block":"13812345678"}"#,
        br#"{"type":"response.completed","response":{"output":{"text":"x"}}}"#,
        br#"{"type":7,"choices":[]}"#,
        // Not an object at the top.
        br#"["13812345678"]"#,
        br#""13812345678""#,
        // Text that cannot be decoded.
        br#"{"choices":[{"delta":{"content":"13812345678\ud800"}}]}"#,
        b"{\"choices\":[{\"delta\":{\"content\":\"1381234\xff5678\"}}]}",
        // Not JSON.
        br#"{"choices":[{"delta":{"content":"x"}},]}"#,
        br#"{"choices":[]} x"#,
        br#"{"choices":[],}"#,
        br#"{"choices":[{"index":01}]}"#,
        br#"{"choices":[{"index":-}]}"#,
        br#"{"choices":[{"index":1.}]}"#,
        br#"{"choices":[{"delta":{"content":"a\qb"}}]}"#,
        br#"{"choices":[{"delta":{"content":"a\u12"}}]}"#,
        b"{\"choices\":[{\"delta\":{\"content\":\"a\nb\"}}]}",
        br#"{"choices":[{"delta":{"content":"x"}}]"#,
        br#"{"choices":[{"delta":{"content":"x"}}]}}"#,
        br#"{"choices" [] }"#,
        br#"{"a":tru}"#,
        br#"{"a":nul,"choices":[]}"#,
        b"",
    ] {
        assert!(locate(data).is_err(), "{}", String::from_utf8_lossy(data));
    }
    // Deep nesting is refused, as serde_json does.
    let deep = format!(r#"{{"x":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
    assert!(locate(deep.as_bytes()).is_err());
    let ok = format!(r#"{{"x":{}1{}}}"#, "[".repeat(100), "]".repeat(100));
    assert!(locate(ok.as_bytes()).is_ok());
    // Values nobody reads may be anything JSON allows, bytes included.
    let data = b"{\"x\":\"\xff\",\"n\":-1.5e+3,\"t\":[true,false,null,{}],\"choices\":[{\"delta\":{\"content\":\"hi\",\"role\":null}}]}";
    assert_eq!(
        texts(data),
        Some(vec![(
            lane(Api::ChatCompletions, 0, 0, Part::Text(Channel::Content)),
            "hi".into()
        )])
    );
    // `null` is an absent field.
    assert_eq!(
        texts(br#"{"type":null,"choices":[{"text":null,"delta":null,"finish_reason":null}]}"#),
        Some(vec![])
    );
}

#[test]
fn every_byte_deleted_or_cut_is_never_more_than_json_allows() {
    let events: [&[u8]; 4] = [
        br#"{"id":"c1","object":"chat.completion.chunk","created":7,"choices":[{"index":0,"delta":{"content":"a\"b\u00e9","tool_calls":[{"index":1,"function":{"arguments":"{}"}}]},"finish_reason":null}],"usage":{"x":-1.25e-3,"y":[true,false]}}"#,
        br#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Hello"}}"#,
        br#"{"type":"response.completed","response":{"id":"r","output":[{"content":[{"type":"output_text","text":"A"}]}]}}"#,
        br#"{"type":"message_start","message":{"id":"msg_1","model":"claude","content":[]}}"#,
    ];
    for data in events {
        assert!(locate(data).is_ok());
        for i in 0..data.len() {
            let mut cut = data.to_vec();
            cut.remove(i);
            for d in [&cut[..], &data[..i]] {
                if serde_json::from_slice::<serde::de::IgnoredAny>(d).is_err() {
                    assert!(locate(d).is_err(), "{}", String::from_utf8_lossy(d));
                }
            }
        }
    }
}

#[test]
fn strings_are_read_exactly_wherever_quotes_escapes_and_controls_fall() {
    let content = lane(Api::ChatCompletions, 0, 0, Part::Text(Channel::Content));
    for k in 0..20 {
        for special in [
            "\\\"", "\\\\", "\\n", "\\u00e9", "é", "\u{1}", "\u{1f}", "\u{7f}", " ", "\"",
        ] {
            let text = format!("{}{special}{}", "a".repeat(k), "b".repeat(19 - k));
            let data = format!(r#"{{"choices":[{{"delta":{{"content":"{text}"}}}}]}}"#);
            let want: Option<String> = serde_json::from_str::<serde_json::Value>(&data)
                .ok()
                .and_then(|v| {
                    v["choices"][0]["delta"]["content"]
                        .as_str()
                        .map(String::from)
                });
            assert_eq!(
                texts(data.as_bytes()),
                want.map(|w| vec![(content, w)]),
                "{data}"
            );
        }
    }
}

/// Chat chunks of many shapes in a row (from a seed): plain content chunks repeating the last
/// one's bytes, others around them, awkward strings and broken events.
fn chunk_sequence(mut seed: u64) -> Vec<Vec<u8>> {
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let texts = [
        r#""tok1 ""#,
        r#""""#,
        r#""a\nb""#,
        r#""q\"q""#,
        "\"中文\"",
        "\"c\u{1}\"",
        r#""\ud800""#,
        r#""x","content":"y""#,
        r#""x"},"finish_reason":"stop""#,
        "7",
        "null",
        r#""trunc"#,
    ];
    let shapes = [
        (
            r#"{"id":"c","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"#,
            r#"},"finish_reason":null}]}"#,
        ),
        (
            r#"{"id":"c","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"#,
            r#"},"finish_reason":"stop"}]}"#,
        ),
        (
            r#"{"id":"c","choices":[{"index":1,"delta":{"role":"assistant","content":"#,
            r#"}}],"usage":null}"#,
        ),
        (
            r#"{"id":"c","choices":[{"index":0,"delta":{"refusal":"#,
            r#"}}]}"#,
        ),
        (
            r#"{"type":"message_start","choices":[{"delta":{"content":"#,
            r#"}}]}"#,
        ),
        (
            r#"{"id":"c","choices":[{"index":0,"delta":{"content":"#,
            r#"}},{"index":1,"delta":{"content":"b"}}]}"#,
        ),
    ];
    (0..40)
        .map(|_| {
            let (a, b) = shapes[if next(3) == 0 { next(shapes.len()) } else { 0 }];
            let t = if next(2) == 0 {
                texts[0]
            } else {
                texts[next(texts.len())]
            };
            let t = if next(4) == 0 {
                format!("\"tok{}\"", next(1000))
            } else {
                t.to_string()
            };
            format!("{a}{t}{b}").into_bytes()
        })
        .collect()
}

#[test]
fn a_locator_answers_as_locate_on_every_event() {
    let mut fast = 0;
    for seed in 1..400u64 {
        let mut locator = Locator::new();
        for data in chunk_sequence(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1) {
            let quick = locator.shape_matches(&data);
            let got = locator.locate(&data);
            let want = locate(&data);
            let text = String::from_utf8_lossy(&data);
            match (&got, &want) {
                (Ok(g), Ok(w)) => {
                    assert_eq!(g, w, "{text}");
                    let (mut a, mut b) = (StreamMeta::default(), StreamMeta::default());
                    g.fill_meta(&mut a);
                    w.fill_meta(&mut b);
                    assert_eq!(format!("{a:?}"), format!("{b:?}"), "{text}");
                }
                (Err(_), Err(_)) => {}
                _ => panic!("{text}: {got:?} vs {want:?}"),
            }
            fast += usize::from(quick);
        }
    }
    assert!(fast > 2000, "{fast} events answered without a parse");
}
