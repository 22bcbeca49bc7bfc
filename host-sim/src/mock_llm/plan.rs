//! What the mock answers: a provider-neutral view of the request ([`Turn`]) and the answer
//! decided for it ([`Plan`]), which each provider module renders in its own wire format.

use super::controls::{Controls, ToolMode};
use super::tokens;
use serde_json::{json, Map, Value};

/// A tool the request offers.
#[derive(Clone, Debug)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// Its JSON schema for arguments (`Value::Null` when absent).
    pub schema: Value,
}

/// The tools a request offers: each element of the array at JSON pointer `list`, with the
/// tool's `name` and its argument schema (pointer `schema`) inside the object at pointer
/// `spec` of the element (`""` for the element itself). Elements without a name are skipped.
pub fn tools_at(body: &Value, list: &str, spec: &str, schema: &str) -> Vec<Tool> {
    let tool = |t: &Value| {
        let s = t.pointer(spec)?;
        Some(Tool {
            name: s.get("name")?.as_str()?.to_string(),
            schema: s.pointer(schema).cloned().unwrap_or(Value::Null),
        })
    };
    body.pointer(list)
        .and_then(Value::as_array)
        .map(|ts| ts.iter().filter_map(tool).collect())
        .unwrap_or_default()
}

/// The `model` of a request body (empty when absent).
pub fn model_of(body: &Value) -> String {
    body.get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The non-empty array `key` of a request body, or the provider's own error text: `missing` when the
/// field is absent or not an array, `empty` when it holds nothing.
pub fn required_list<'a>(
    body: &'a Value,
    key: &str,
    missing: &str,
    empty: &str,
) -> Result<&'a Vec<Value>, String> {
    let list = body
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| missing.to_string())?;
    if list.is_empty() {
        return Err(empty.into());
    }
    Ok(list)
}

/// Whether a request body asks for a stream (`"stream": true`).
pub fn wants_stream(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool).unwrap_or(false)
}

/// The parts of a chat request the mock cares about, whatever the provider.
#[derive(Clone, Debug, Default)]
pub struct Turn {
    /// The model named by the request (body or path).
    pub model: String,
    /// Whether a stream was asked for.
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    /// The request's output-token limit.
    pub max_tokens: Option<u64>,
    /// Tokens in every piece of text of the prompt (system, messages, tool results).
    pub prompt_tokens: u64,
    /// The text of the last message (a user's text or a tool result).
    pub last_text: String,
    /// Whether the last message is the user's own text (not a tool result).
    pub last_from_user: bool,
    /// The tools offered.
    pub tools: Vec<Tool>,
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// The answer is complete.
    Stop,
    /// The max-token limit cut it.
    Length,
    /// The model asks for a tool.
    ToolUse,
}

impl Finish {
    /// The Anthropic `stop_reason` (and Bedrock `stopReason`) for it.
    pub fn anthropic_reason(self) -> &'static str {
        match self {
            Finish::Stop => "end_turn",
            Finish::Length => "max_tokens",
            Finish::ToolUse => "tool_use",
        }
    }
}

/// The decided output.
#[derive(Clone, Debug)]
pub enum Output {
    /// Text, as token pieces whose concatenation is the answer.
    Text(Vec<String>),
    /// A call of one tool.
    ToolCall {
        /// A call id (`call_…`, `toolu_…` or `tooluse_…` prefixes are added by providers).
        id: String,
        /// The tool's name.
        name: String,
        /// The arguments as a JSON object text.
        arguments: String,
    },
}

/// The answer to one request.
#[derive(Clone, Debug)]
pub struct Plan {
    /// What to say.
    pub output: Output,
    /// Why it ends.
    pub finish: Finish,
    /// Prompt tokens (from the [`Turn`]).
    pub prompt_tokens: u64,
    /// Output tokens (the number of pieces; for tool calls, of the arguments text).
    pub completion_tokens: u64,
}

/// Text after "weather in " up to punctuation, for a friendly default tool argument.
fn place(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let at = lower.find("weather in ")? + "weather in ".len();
    let rest = text.get(at..)?;
    let end = rest.find(['?', '.', '!', ',', '\n']).unwrap_or(rest.len());
    let p = rest.get(..end)?.trim();
    (!p.is_empty()).then(|| p.to_string())
}

/// Deterministic arguments for a tool from its schema: strings get the place named after
/// "weather in " (or "mock"), numbers 1, booleans true, arrays empty, objects empty.
fn synth_arguments(schema: &Value, last_text: &str) -> String {
    let mut args = Map::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let ty = prop.get("type").and_then(Value::as_str).unwrap_or("string");
            let v = match ty.to_ascii_lowercase().as_str() {
                "number" | "integer" => json!(1),
                "boolean" => json!(true),
                "array" => json!([]),
                "object" => json!({}),
                _ => match prop
                    .get("enum")
                    .and_then(Value::as_array)
                    .and_then(|e| e.first())
                {
                    Some(first) => first.clone(),
                    None => json!(place(last_text).unwrap_or_else(|| "mock".to_string())),
                },
            };
            args.insert(name.clone(), v);
        }
    }
    Value::Object(args).to_string()
}

/// Decides the answer for `turn` under `controls`. `seq` makes the tool-call id unique.
pub fn plan(turn: &Turn, controls: &Controls, seq: u64) -> Plan {
    let wants_tool = match controls.tool {
        ToolMode::Off => false,
        ToolMode::Force => true,
        ToolMode::Auto => turn.last_text.to_lowercase().contains("weather"),
    };
    if wants_tool && turn.last_from_user {
        if let Some(tool) = turn.tools.first() {
            let arguments = controls
                .tool_args
                .clone()
                .unwrap_or_else(|| synth_arguments(&tool.schema, &turn.last_text));
            let completion_tokens = tokens::count(&arguments);
            return Plan {
                output: Output::ToolCall {
                    id: format!("mock{seq}"),
                    name: tool.name.clone(),
                    arguments,
                },
                finish: Finish::ToolUse,
                prompt_tokens: turn.prompt_tokens,
                completion_tokens,
            };
        }
    }
    let answer = controls
        .answer
        .clone()
        .unwrap_or_else(|| format!("Echo: {}", turn.last_text));
    let mut pieces: Vec<String> = tokens::pieces(&answer)
        .into_iter()
        .map(String::from)
        .collect();
    let mut finish = Finish::Stop;
    if controls.honour_max_tokens {
        if let Some(max) = turn.max_tokens {
            let max = usize::try_from(max).unwrap_or(usize::MAX);
            if pieces.len() > max {
                pieces.truncate(max);
                finish = Finish::Length;
            }
        }
    }
    Plan {
        completion_tokens: pieces.len() as u64,
        output: Output::Text(pieces),
        finish,
        prompt_tokens: turn.prompt_tokens,
    }
}

impl Plan {
    /// The output split into stream chunks of `size` tokens: (text, tokens in it). For tool
    /// calls the text is a slice of the arguments.
    pub fn chunks(&self, size: usize) -> Vec<(String, u64)> {
        let size = size.max(1);
        let owned;
        let pieces: Vec<&str> = match &self.output {
            Output::Text(p) => p.iter().map(String::as_str).collect(),
            Output::ToolCall { arguments, .. } => {
                owned = arguments.clone();
                tokens::pieces(&owned)
            }
        };
        pieces
            .chunks(size)
            .map(|c| (c.concat(), c.len() as u64))
            .collect()
    }

    /// The whole output text (the answer, or the tool arguments).
    pub fn text(&self) -> String {
        match &self.output {
            Output::Text(p) => p.concat(),
            Output::ToolCall { arguments, .. } => arguments.clone(),
        }
    }

    /// The tool-call arguments parsed as JSON (an empty object for text answers).
    pub fn arguments_json(&self) -> Value {
        match &self.output {
            Output::ToolCall { arguments, .. } => {
                serde_json::from_str(arguments).unwrap_or_else(|_| json!({}))
            }
            Output::Text(_) => json!({}),
        }
    }
}

/// Text of a JSON value that is a string, or of an array of content blocks with `text` fields
/// (nested `content` arrays included); other values are rendered as JSON.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|b| {
                    if let Some(t) = b.get("text").and_then(Value::as_str) {
                        t.to_string()
                    } else if let Some(c) = b.get("content") {
                        text_of(c)
                    } else if let Some(j) = b.get("json") {
                        j.to_string()
                    } else if b.is_string() {
                        text_of(b)
                    } else {
                        String::new()
                    }
                })
                .filter(|s| !s.is_empty())
                .collect();
            parts.join("\n")
        }
        other => other.to_string(),
    }
}
