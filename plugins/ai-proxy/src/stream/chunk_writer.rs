//! Writes OpenAI `chat.completion.chunk` SSE events from borrowed pieces, without building
//! JSON trees.

use super::{write_data, write_done};
use aigw::llm::openai::OpenAiUsage;
use aigw::llm::Usage;
use serde::Serialize;

/// Emits the chunks of one OpenAI chat completion stream.
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChoiceOut<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<OpenAiUsage>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    delta: DeltaOut<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize, Default)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolOut<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolOut<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FnOut<'a>,
}

#[derive(Serialize)]
struct FnOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

impl ChunkWriter {
    /// A writer for one stream. `include_usage`: emit the final usage chunk (the client asked
    /// for `stream_options.include_usage`).
    pub fn new(
        id: impl Into<String>,
        model: impl Into<String>,
        created: u64,
        include_usage: bool,
    ) -> Self {
        ChunkWriter {
            id: id.into(),
            model: model.into(),
            created,
            include_usage,
        }
    }

    /// Replaces the response id (e.g. with the upstream's).
    pub fn set_id(&mut self, id: &str) {
        id.clone_into(&mut self.id);
    }

    /// Replaces the model name (e.g. with the upstream's).
    pub fn set_model(&mut self, model: &str) {
        model.clone_into(&mut self.model);
    }

    fn delta(&self, out: &mut Vec<u8>, delta: DeltaOut<'_>, finish: Option<&str>) {
        let choices = [ChoiceOut {
            index: 0,
            delta,
            finish_reason: finish,
        }];
        write_data(
            out,
            &Chunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                choices: &choices,
                usage: None,
            },
        );
    }

    /// The first chunk: `{"role":"assistant","content":""}`.
    pub fn role(&self, out: &mut Vec<u8>) {
        self.delta(
            out,
            DeltaOut {
                role: Some("assistant"),
                content: Some(""),
                ..DeltaOut::default()
            },
            None,
        );
    }

    /// A text increment.
    pub fn text(&self, out: &mut Vec<u8>, text: &str) {
        self.delta(
            out,
            DeltaOut {
                content: Some(text),
                ..DeltaOut::default()
            },
            None,
        );
    }

    /// A reasoning increment (`reasoning_content`, as DeepSeek streams it).
    pub fn reasoning(&self, out: &mut Vec<u8>, text: &str) {
        self.delta(
            out,
            DeltaOut {
                reasoning_content: Some(text),
                ..DeltaOut::default()
            },
            None,
        );
    }

    /// The first increment of tool call `index`: id, name and initial arguments.
    pub fn tool_start(&self, out: &mut Vec<u8>, index: u32, id: &str, name: &str, arguments: &str) {
        let call = ToolOut {
            index,
            id: Some(id),
            kind: Some("function"),
            function: FnOut {
                name: Some(name),
                arguments,
            },
        };
        self.delta(
            out,
            DeltaOut {
                tool_calls: Some([call]),
                ..DeltaOut::default()
            },
            None,
        );
    }

    /// An arguments fragment of tool call `index`.
    pub fn tool_args(&self, out: &mut Vec<u8>, index: u32, fragment: &str) {
        let call = ToolOut {
            index,
            id: None,
            kind: None,
            function: FnOut {
                name: None,
                arguments: fragment,
            },
        };
        self.delta(
            out,
            DeltaOut {
                tool_calls: Some([call]),
                ..DeltaOut::default()
            },
            None,
        );
    }

    /// The chunk carrying `finish_reason`.
    pub fn finish(&self, out: &mut Vec<u8>, reason: &str) {
        self.delta(out, DeltaOut::default(), Some(reason));
    }

    /// The usage chunk (empty `choices`), when the client asked for it; then `[DONE]`.
    pub fn usage_and_done(&self, out: &mut Vec<u8>, usage: Option<Usage>) {
        if self.include_usage {
            let u = usage.unwrap_or_default().to_openai();
            write_data(
                out,
                &Chunk {
                    id: &self.id,
                    object: "chat.completion.chunk",
                    created: self.created,
                    model: &self.model,
                    choices: &[],
                    usage: Some(u),
                },
            );
        }
        write_done(out);
    }

    /// An in-stream error event `{"error":{...}}` as OpenAI sends it.
    pub fn error(&self, out: &mut Vec<u8>, kind: &str, message: &str, code: Option<&str>) {
        write_data(
            out,
            &serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        );
    }
}
