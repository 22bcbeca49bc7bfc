//! OpenAI Responses API (`POST /v1/responses`) wire types: request, response object and the main
//! stream events.

use super::open_struct::open_struct;
use super::{tagged, Extra, Usage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /v1/responses` request body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponsesRequest {
    /// Model name.
    pub model: String,
    /// A string or a list of input items.
    pub input: Input,
    /// System-style instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Tools (function and built-in), raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    /// Tool choice, raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Stream events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Output token limit (reasoning included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Reasoning configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// Continue from a stored response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(ResponsesRequest {
    model: req "model",
    input: req "input",
    instructions: def "instructions",
    tools: def "tools",
    tool_choice: def "tool_choice",
    stream: def "stream",
    max_output_tokens: def "max_output_tokens",
    temperature: def "temperature",
    top_p: def "top_p",
    reasoning: def "reasoning",
    previous_response_id: def "previous_response_id",
});

/// `reasoning` of a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reasoning {
    /// `minimal`, `low`, `medium`, `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// `auto`, `concise`, `detailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

open_struct!(closed Reasoning {
    effort: def "effort",
    summary: def "summary",
});

/// `input`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Input {
    /// One user message.
    Text(String),
    /// Items.
    Items(Vec<Item>),
}

/// An input or output item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    /// A message.
    Message {
        /// Item id (outputs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// `user`, `assistant`, `system`, `developer`.
        role: String,
        /// Text or parts.
        content: ItemContent,
        /// `completed`, `in_progress`...
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
    },
    /// A function call by the model.
    FunctionCall {
        /// Item id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Call id, echoed by the output.
        call_id: String,
        /// Function name.
        name: String,
        /// JSON arguments string.
        #[serde(default)]
        arguments: String,
        /// Status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
    },
    /// A function result.
    FunctionCallOutput {
        /// The call it answers.
        call_id: String,
        /// Output (string or parts), raw.
        output: Value,
    },
    /// Reasoning (summary and/or encrypted content).
    Reasoning {
        /// Item id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Summary parts, raw.
        #[serde(default)]
        summary: Vec<Value>,
        /// Encrypted reasoning.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
    },
    /// A message without `type` (the "easy" input form).
    #[serde(untagged)]
    EasyMessage {
        /// Role.
        role: String,
        /// Text or parts.
        content: ItemContent,
    },
    /// Any other item (built-in tool calls...), raw.
    #[serde(untagged)]
    Other(Value),
}

/// Content of a message item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ItemContent {
    /// Text.
    Text(String),
    /// Parts.
    Parts(Vec<ContentPart>),
}

/// A content part of a message item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Input text.
    InputText {
        /// Text.
        text: String,
    },
    /// Input image.
    InputImage {
        /// URL or data URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image_url: Option<String>,
        /// Uploaded file id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_id: Option<String>,
        /// Detail level.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Output text.
    OutputText {
        /// Text.
        text: String,
        /// Citations, raw.
        #[serde(default)]
        annotations: Vec<Value>,
    },
    /// Refusal.
    Refusal {
        /// Refusal text.
        refusal: String,
    },
    /// Any other part (`input_file`, `input_audio`...), raw.
    #[serde(untagged)]
    Other(Value),
}

tagged::text_or_parts_enum!(Input {
    Text,
    Items: Item::from_value
});

tagged::known_or_other!(Item else Item::easy);

/// A `Vec<Value>` field with `#[serde(default)]`: missing is empty, an array its items, any
/// other type `None` (the variant fails).
fn raw_list(m: &Map<String, Value>, k: &str) -> Option<Vec<Value>> {
    match m.get(k) {
        None => Some(Vec::new()),
        Some(Value::Array(a)) => Some(a.clone()),
        Some(_) => None,
    }
}

impl Item {
    /// A message without `type` (`EasyMessage`) when `role` and `content` fit.
    fn easy(v: &Value) -> Option<Self> {
        let m = v.as_object()?;
        Some(Item::EasyMessage {
            role: tagged::req_str(m, "role")?,
            content: ItemContent::from_value(m.get("content")?.clone()).ok()?,
        })
    }

    fn known(v: &Value) -> Option<Self> {
        let (kind, m) = tagged::tag(v)?;
        Some(match kind {
            "message" => Item::Message {
                id: tagged::opt_str(m, "id")?,
                role: tagged::req_str(m, "role")?,
                content: ItemContent::from_value(m.get("content")?.clone()).ok()?,
                status: tagged::opt_str(m, "status")?,
            },
            "function_call" => Item::FunctionCall {
                id: tagged::opt_str(m, "id")?,
                call_id: tagged::req_str(m, "call_id")?,
                name: tagged::req_str(m, "name")?,
                arguments: match m.get("arguments") {
                    None => String::new(),
                    Some(a) => a.as_str()?.to_owned(),
                },
                status: tagged::opt_str(m, "status")?,
            },
            "function_call_output" => Item::FunctionCallOutput {
                call_id: tagged::req_str(m, "call_id")?,
                output: m.get("output")?.clone(),
            },
            "reasoning" => Item::Reasoning {
                id: tagged::opt_str(m, "id")?,
                summary: raw_list(m, "summary")?,
                encrypted_content: tagged::opt_str(m, "encrypted_content")?,
            },
            _ => return None,
        })
    }
}

tagged::text_or_parts_enum!(ItemContent {
    Text,
    Parts: ContentPart::from_value
});

tagged::known_or_other!(ContentPart);

impl ContentPart {
    fn known(v: &Value) -> Option<Self> {
        let (kind, m) = tagged::tag(v)?;
        Some(match kind {
            "input_text" => ContentPart::InputText {
                text: tagged::req_str(m, "text")?,
            },
            "input_image" => ContentPart::InputImage {
                image_url: tagged::opt_str(m, "image_url")?,
                file_id: tagged::opt_str(m, "file_id")?,
                detail: tagged::opt_str(m, "detail")?,
            },
            "output_text" => ContentPart::OutputText {
                text: tagged::req_str(m, "text")?,
                annotations: raw_list(m, "annotations")?,
            },
            "refusal" => ContentPart::Refusal {
                refusal: tagged::req_str(m, "refusal")?,
            },
            _ => return None,
        })
    }
}

/// The response object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    /// Response id.
    pub id: String,
    /// `response`.
    #[serde(default)]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: u64,
    /// `completed`, `incomplete`, `failed`, `in_progress`...
    #[serde(default)]
    pub status: String,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// Output items.
    #[serde(default)]
    pub output: Vec<Item>,
    /// Usage (set once completed).
    #[serde(default)]
    pub usage: Option<ResponsesUsage>,
    /// Error, raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Why the response is incomplete, raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_details: Option<Value>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

open_struct!(Response {
    id: req "id",
    object: def "object",
    created_at: def "created_at",
    status: def "status",
    model: def "model",
    output: def "output",
    usage: def "usage",
    error: def "error",
    incomplete_details: def "incomplete_details",
});

/// Responses API usage: `input_tokens` includes cached ones, `output_tokens` includes reasoning.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResponsesUsage {
    /// Input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Total.
    #[serde(default)]
    pub total_tokens: u64,
    /// Input breakdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens_details: Option<InputTokensDetails>,
    /// Output breakdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_details: Option<OutputTokensDetails>,
}

open_struct!(closed ResponsesUsage {
    input_tokens: def "input_tokens",
    output_tokens: def "output_tokens",
    total_tokens: def "total_tokens",
    input_tokens_details: def "input_tokens_details",
    output_tokens_details: def "output_tokens_details",
});

/// `input_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InputTokensDetails {
    /// Cached input tokens.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Input tokens written to the cache (Anthropic's `cache_creation_input_tokens`). Current
    /// OpenAI clients require the field, so it is always written (0 when unknown).
    #[serde(default)]
    pub cache_write_tokens: u64,
}

open_struct!(closed InputTokensDetails {
    cached_tokens: def "cached_tokens",
    cache_write_tokens: def "cache_write_tokens",
});

/// `output_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OutputTokensDetails {
    /// Reasoning tokens.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

open_struct!(closed OutputTokensDetails {
    reasoning_tokens: def "reasoning_tokens",
});

impl ResponsesUsage {
    /// The Responses `usage` object for normalized usage (every detail written: current
    /// OpenAI clients require `cache_write_tokens`).
    pub fn from_usage(u: &Usage) -> ResponsesUsage {
        ResponsesUsage {
            input_tokens: u.input,
            output_tokens: u.output,
            total_tokens: if u.total > 0 {
                u.total
            } else {
                u.input + u.output
            },
            input_tokens_details: Some(InputTokensDetails {
                cached_tokens: u.cached_input,
                cache_write_tokens: u.cache_creation_input.unwrap_or(0),
            }),
            output_tokens_details: Some(OutputTokensDetails {
                reasoning_tokens: u.reasoning,
            }),
        }
    }

    /// As normalized usage.
    pub fn to_usage(&self) -> Usage {
        let writes = self
            .input_tokens_details
            .as_ref()
            .map_or(0, |d| d.cache_write_tokens);
        Usage {
            input: self.input_tokens,
            output: self.output_tokens,
            total: self.total_tokens,
            cached_input: self
                .input_tokens_details
                .as_ref()
                .map_or(0, |d| d.cached_tokens),
            reasoning: self
                .output_tokens_details
                .as_ref()
                .map_or(0, |d| d.reasoning_tokens),
            cache_creation_input: (writes > 0).then_some(writes),
        }
    }
}

/// A stream event (SSE `data`, tagged by `type`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StreamEvent {
    /// The response was created.
    #[serde(rename = "response.created")]
    Created {
        /// Snapshot.
        response: Response,
    },
    /// The response is in progress.
    #[serde(rename = "response.in_progress")]
    InProgress {
        /// Snapshot.
        response: Response,
    },
    /// An output item starts.
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        /// Output position.
        output_index: u32,
        /// The item.
        item: Item,
    },
    /// An output item is complete.
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        /// Output position.
        output_index: u32,
        /// The item.
        item: Item,
    },
    /// Text increment.
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        /// Item id.
        #[serde(default)]
        item_id: String,
        /// Output position.
        #[serde(default)]
        output_index: u32,
        /// Part position.
        #[serde(default)]
        content_index: u32,
        /// Text.
        delta: String,
    },
    /// Text complete.
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        /// Item id.
        #[serde(default)]
        item_id: String,
        /// Full text.
        text: String,
    },
    /// Function arguments increment.
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        /// Item id.
        #[serde(default)]
        item_id: String,
        /// Output position.
        #[serde(default)]
        output_index: u32,
        /// Fragment.
        delta: String,
    },
    /// Function arguments complete.
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        /// Item id.
        #[serde(default)]
        item_id: String,
        /// Full arguments.
        arguments: String,
    },
    /// Reasoning summary increment.
    #[serde(rename = "response.reasoning_summary_text.delta")]
    ReasoningSummaryTextDelta {
        /// Item id.
        #[serde(default)]
        item_id: String,
        /// Fragment.
        delta: String,
    },
    /// Finished; carries usage.
    #[serde(rename = "response.completed")]
    Completed {
        /// Final response.
        response: Response,
    },
    /// Finished early (token limit, content filter); carries usage.
    #[serde(rename = "response.incomplete")]
    Incomplete {
        /// Final response.
        response: Response,
    },
    /// Failed.
    #[serde(rename = "response.failed")]
    Failed {
        /// Final response with `error`.
        response: Response,
    },
    /// Stream-level error.
    #[serde(rename = "error")]
    Error {
        /// Code.
        #[serde(default)]
        code: Option<String>,
        /// Message.
        #[serde(default)]
        message: String,
        /// Parameter.
        #[serde(default)]
        param: Option<String>,
    },
    /// Any other event, raw.
    #[serde(untagged)]
    Other(Value),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_round_trips_with_every_detail() {
        let u = Usage {
            input: 30,
            output: 9,
            total: 39,
            cached_input: 8,
            reasoning: 4,
            cache_creation_input: Some(6),
        };
        let r = ResponsesUsage::from_usage(&u);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["input_tokens_details"]["cache_write_tokens"], 6);
        assert_eq!(v["output_tokens_details"]["reasoning_tokens"], 4);
        assert_eq!(r.to_usage(), u);
        let none = Usage {
            total: 0,
            cache_creation_input: None,
            ..u
        };
        assert_eq!(
            ResponsesUsage::from_usage(&none).total_tokens,
            39,
            "total falls back to the sum"
        );
    }

    #[test]
    fn parses_request_items_and_stream_events() {
        let req: ResponsesRequest = serde_json::from_str(
            r#"{"model":"gpt-4.1","instructions":"be nice","input":[
                 {"role":"user","content":"hi"},
                 {"type":"message","role":"user","content":[{"type":"input_text","text":"look"},{"type":"input_image","image_url":"https://x/a.png"}]},
                 {"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},
                 {"type":"function_call_output","call_id":"c1","output":"42"},
                 {"type":"web_search_call","id":"ws1"}],
               "reasoning":{"effort":"low"},"store":false}"#,
        )
        .unwrap();
        let Input::Items(items) = &req.input else {
            panic!()
        };
        assert!(matches!(&items[0], Item::EasyMessage { role, .. } if role == "user"));
        assert!(
            matches!(&items[1], Item::Message { content: ItemContent::Parts(p), .. } if p.len() == 2)
        );
        assert!(matches!(&items[3], Item::FunctionCallOutput { call_id, .. } if call_id == "c1"));
        assert!(matches!(&items[4], Item::Other(_)));
        assert_eq!(req.extra.get("store"), Some(&serde_json::json!(false)));

        let ev: StreamEvent = serde_json::from_str(
            r#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hel","logprobs":[]}"#,
        )
        .unwrap();
        assert!(matches!(ev, StreamEvent::OutputTextDelta { ref delta, .. } if delta == "Hel"));
        let done: StreamEvent = serde_json::from_str(
            r#"{"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4.1",
                "output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello","annotations":[]}]}],
                "usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":4},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":64},"total_tokens":123}}}"#,
        )
        .unwrap();
        let StreamEvent::Completed { response } = done else {
            panic!()
        };
        let u = response.usage.unwrap();
        assert_eq!(u.output_tokens_details.unwrap().reasoning_tokens, 64);
        let other: StreamEvent =
            serde_json::from_str(r#"{"type":"response.queued","x":1}"#).unwrap();
        assert!(matches!(other, StreamEvent::Other(_)));
    }
}
