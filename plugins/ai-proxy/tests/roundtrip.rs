//! Property test: random valid OpenAI chat requests survive OpenAI → Anthropic → OpenAI and
//! OpenAI → Gemini → OpenAI without losing messages, content, tool calls, tool results or tools,
//! and OpenAI → DashScope native (whose messages are OpenAI-shaped) for text-only requests
//! (image parts are a 400 there).

use ai_proxy::clients::anthropic::anthropic_request_to_chat;
use ai_proxy::options::TranslateOptions;
use ai_proxy::providers::anthropic::chat_request_to_anthropic;
use ai_proxy::providers::dashscope::chat_request_to_dashscope;
use ai_proxy::providers::gemini::{chat_request_to_gemini, gemini_request_to_chat};
use aigw::llm::openai::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Value};

/// A message reduced to what must survive: role, text, image URLs, tool calls, tool call id.
#[derive(Debug, PartialEq)]
struct Norm {
    role: Role,
    text: String,
    images: Vec<String>,
    calls: Vec<(String, String, Value)>,
    tool_call_id: Option<String>,
}

/// A tool reduced to name, description and schema.
type NormTool = (String, Option<String>, Option<Value>);

fn normalize(req: &ChatCompletionRequest) -> (Vec<Norm>, Vec<NormTool>) {
    let msgs = req
        .messages
        .iter()
        .map(|m| {
            let (text, images) = match &m.content {
                None => (String::new(), vec![]),
                Some(MessageContent::Text(s)) => (s.clone(), vec![]),
                Some(MessageContent::Parts(parts)) => {
                    let mut t = String::new();
                    let mut imgs = vec![];
                    for p in parts {
                        match p {
                            ContentPart::Text { text } => t.push_str(text),
                            ContentPart::ImageUrl { image_url } => imgs.push(image_url.url.clone()),
                            other => panic!("unexpected part {other:?}"),
                        }
                    }
                    (t, imgs)
                }
            };
            let calls = m
                .tool_calls
                .iter()
                .flatten()
                .map(|c| {
                    (
                        c.id.clone(),
                        c.function.name.clone(),
                        serde_json::from_str(&c.function.arguments).unwrap(),
                    )
                })
                .collect();
            Norm {
                role: m.role,
                text,
                images,
                calls,
                tool_call_id: m.tool_call_id.clone(),
            }
        })
        .collect();
    let tools = req
        .tools
        .iter()
        .flatten()
        .map(|t| {
            (
                t.function.name.clone(),
                t.function.description.clone(),
                t.function.parameters.clone(),
            )
        })
        .collect();
    (msgs, tools)
}

#[derive(Debug, Clone)]
struct Turn {
    user_text: String,
    image: Option<String>,
    calls: Vec<(String, Value)>,
    results: Vec<String>,
    answer: Option<String>,
    preface: Option<String>,
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{1,16}"
}

fn args() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        "[a-z]{1,6}",
        prop_oneof![
            any::<i32>().prop_map(Value::from),
            text().prop_map(Value::from)
        ],
        0..3,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn turn() -> impl Strategy<Value = Turn> {
    (
        text(),
        prop::option::of("[A-Za-z0-9+/]{4,24}"),
        prop::collection::vec(("[a-z_]{1,10}", args()), 0..3),
        prop::collection::vec(text(), 3),
        prop::option::of(text()),
        prop::option::of(text()),
    )
        .prop_map(|(user_text, image, calls, results, answer, preface)| Turn {
            user_text,
            image,
            calls,
            results,
            answer,
            preface,
        })
}

fn request() -> impl Strategy<Value = ChatCompletionRequest> {
    (
        prop::option::of(text()),
        prop::collection::vec(turn(), 1..4),
        prop::collection::vec(("[a-z]{1,8}", prop::option::of(text())), 0..3),
    )
        .prop_map(|(system, turns, tools)| {
            let mut messages = Vec::new();
            if let Some(s) = system {
                messages.push(ChatMessage::text(Role::System, s));
            }
            let mut call_no = 0;
            for t in turns {
                let mut user = ChatMessage::text(Role::User, t.user_text.clone());
                if let Some(img) = &t.image {
                    user.content = Some(MessageContent::Parts(vec![
                        ContentPart::Text {
                            text: t.user_text.clone(),
                        },
                        ContentPart::ImageUrl {
                            image_url: ImageUrl {
                                url: format!("data:image/png;base64,{img}"),
                                detail: None,
                            },
                        },
                    ]));
                }
                messages.push(user);
                if !t.calls.is_empty() {
                    let mut a = ChatMessage::text(Role::Assistant, String::new());
                    a.content = t.preface.clone().map(MessageContent::Text);
                    let calls: Vec<ToolCall> = t
                        .calls
                        .iter()
                        .map(|(name, args)| {
                            call_no += 1;
                            ToolCall {
                                id: format!("call_{call_no}"),
                                kind: "function".into(),
                                function: FunctionCall {
                                    name: name.clone(),
                                    arguments: args.to_string(),
                                },
                            }
                        })
                        .collect();
                    a.tool_calls = Some(calls.clone());
                    messages.push(a);
                    for (c, r) in calls.iter().zip(&t.results) {
                        let mut m = ChatMessage::text(Role::Tool, r.clone());
                        m.tool_call_id = Some(c.id.clone());
                        messages.push(m);
                    }
                }
                if let Some(ans) = t.answer {
                    messages.push(ChatMessage::text(Role::Assistant, ans));
                }
            }
            let tools = (!tools.is_empty()).then(|| {
                tools
                    .into_iter()
                    .enumerate()
                    .map(|(i, (name, description))| Tool {
                        kind: "function".into(),
                        function: FunctionDef {
                            name: format!("{name}_{i}"),
                            description,
                            parameters: Some(
                                json!({"type": "object", "properties": {"q": {"type": "string"}}}),
                            ),
                            strict: None,
                        },
                    })
                    .collect()
            });
            ChatCompletionRequest {
                model: "m".into(),
                messages,
                tools,
                ..ChatCompletionRequest::default()
            }
        })
}

#[test]
fn normalization_notices_lost_content() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let req = request().new_tree(&mut runner).unwrap().current();
    let mut changed = req.clone();
    changed.messages.pop();
    assert_ne!(normalize(&changed), normalize(&req));
    let mut changed = req.clone();
    changed.tools = None;
    changed
        .messages
        .push(ChatMessage::text(Role::User, "extra"));
    assert_ne!(normalize(&changed), normalize(&req));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn openai_anthropic_openai(req in request()) {
        let opts = TranslateOptions::default();
        let anthropic = chat_request_to_anthropic(&req, &opts).unwrap();
        // Through the wire format too.
        let wire = serde_json::to_string(&anthropic).unwrap();
        let anthropic = serde_json::from_str(&wire).unwrap();
        let back = anthropic_request_to_chat(&anthropic, &opts).unwrap();
        prop_assert_eq!(normalize(&back), normalize(&req));
    }

    #[test]
    fn openai_gemini_openai(req in request()) {
        let opts = TranslateOptions::default();
        let gemini = chat_request_to_gemini(&req, &opts).unwrap();
        let wire = serde_json::to_string(&gemini).unwrap();
        let gemini = serde_json::from_str(&wire).unwrap();
        let back = gemini_request_to_chat(&gemini, "m").unwrap();
        prop_assert_eq!(normalize(&back), normalize(&req));
    }

    #[test]
    fn openai_dashscope_native(req in request()) {
        let opts = TranslateOptions::default();
        let has_image = req.messages.iter().any(|m| matches!(m.content, Some(MessageContent::Parts(_))));
        match chat_request_to_dashscope(&req, &opts) {
            Err(e) => {
                prop_assert!(has_image, "unexpected rejection: {e}");
                prop_assert_eq!(e.status, 400);
                prop_assert!(e.param.as_deref().is_some_and(|p| p.ends_with(".content[1]")));
            }
            Ok(native) => {
                prop_assert!(!has_image);
                let wire = serde_json::to_value(&native).unwrap();
                let back = ChatCompletionRequest {
                    model: wire["model"].as_str().unwrap().to_string(),
                    messages: serde_json::from_value(wire["input"]["messages"].clone()).unwrap(),
                    tools: serde_json::from_value(wire["parameters"]["tools"].clone()).unwrap(),
                    ..ChatCompletionRequest::default()
                };
                prop_assert_eq!(normalize(&back), normalize(&req));
            }
        }
    }
}
