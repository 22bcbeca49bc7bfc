//! Response side for whole bodies: translation of non-streamed provider answers and errors
//! back into the client's protocol, usage collection and the reported model name. Streams go
//! through [`crate::pipeline`].

use crate::clients::anthropic::chat_response_to_anthropic;
use crate::clients::responses::chat_response_to_responses;
use crate::error::{parse_upstream_error, TranslateError};
use crate::providers::{upstream, AnswerContext, Protocol as Wire};
use crate::request::ProxyApi;
use aigw::llm::openai as oa;
use aigw::llm::Api;
use aigw::llm::Usage;

/// What the response side needs to know about the exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The API the client called.
    pub api: Api,
    /// The provider's protocol.
    pub wire: Wire,
    /// The client asked for a stream.
    pub client_stream: bool,
    /// The upstream was asked for a stream.
    pub upstream_stream: bool,
    /// The client asked for the OpenAI usage chunk.
    pub include_usage: bool,
    /// The model name to report (`None`: whatever the upstream says).
    pub report_model: Option<String>,
    /// The upstream model (fallback name for translators).
    pub upstream_model: String,
    /// Response id to use when the upstream gives none.
    pub id: String,
    /// Unix seconds for `created`.
    pub created: u64,
}

impl Exchange {
    /// Renders an error in the client's protocol.
    pub fn error_body(
        &self,
        status: u16,
        kind: &str,
        message: &str,
        code: Option<&str>,
    ) -> Vec<u8> {
        let v = if self.api.is_anthropic() {
            serde_json::json!({"type":"error","error":{"type": aigw::llm::stream::anthropic_error_type(status), "message": message}})
        } else {
            serde_json::json!({"error":{"message": message, "type": kind, "param": null, "code": code}})
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// The client status and body for a provider error (`aws_error_type`: Bedrock's
    /// `x-amzn-errortype`).
    pub fn translate_error(
        &self,
        status: u16,
        body: &[u8],
        aws_error_type: Option<&str>,
    ) -> (u16, Vec<u8>) {
        let e = parse_upstream_error(self.wire, status, body, aws_error_type);
        let body = if self.api.is_anthropic() {
            e.to_anthropic_body().into_bytes()
        } else {
            e.to_openai_body().into_bytes()
        };
        (e.status, body)
    }

    /// The client status for a provider error status, known at response headers.
    pub fn error_status(&self, status: u16, aws_error_type: Option<&str>) -> u16 {
        parse_upstream_error(self.wire, status, b"", aws_error_type).status
    }

    /// Translates a whole (non-streamed, successful) upstream body. Returns the client body and
    /// the usage.
    pub fn translate_whole(&self, body: &[u8]) -> Result<(Vec<u8>, Option<Usage>), TranslateError> {
        if let Some(protocol) = self.api.spoken_by(self.wire) {
            let usage = aigw::llm::usage::extract(protocol, body);
            let out = match &self.report_model {
                Some(m) => rewrite_model(body, m).unwrap_or_else(|| body.to_vec()),
                None => body.to_vec(),
            };
            return Ok((out, usage));
        }
        let cx = AnswerContext {
            id: &self.id,
            model: &self.upstream_model,
            created: self.created,
        };
        let (chat, usage) = upstream(self.wire).chat_response(body, cx)?;
        Ok((self.render_chat(chat)?, usage))
    }

    /// Serializes a chat completion for the client (Anthropic clients get a message).
    pub fn render_chat(&self, mut chat: oa::ChatCompletion) -> Result<Vec<u8>, TranslateError> {
        if let Some(m) = &self.report_model {
            chat.model.clone_from(m);
        }
        let ser = |e: serde_json::Error| TranslateError::upstream(format!("cannot serialize: {e}"));
        if self.api.is_anthropic() {
            let mut msg = chat_response_to_anthropic(&chat)?;
            if let Some(m) = &self.report_model {
                msg.model.clone_from(m);
            }
            serde_json::to_vec(&msg).map_err(ser)
        } else if self.api == Api::Responses {
            serde_json::to_vec(&chat_response_to_responses(&chat)?).map_err(ser)
        } else {
            serde_json::to_vec(&chat).map_err(ser)
        }
    }
}

/// Replaces the value of the first `"model"` key of a JSON text with `model`; `None` when
/// there is no such key with a string value (or it already says `model`).
pub fn rewrite_model(json: &[u8], model: &str) -> Option<Vec<u8>> {
    ModelPin::new(model).rewrite(json)
}

/// Where the value of the first `"model"` key (with a string value) of a JSON text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelValue {
    /// No such value in the text seen (in a prefix: none has begun yet; the key itself may
    /// still be arriving).
    Absent,
    /// The value's opening quote is at this offset and its closing quote was not seen.
    Open(usize),
    /// The value's opening and closing quotes are at these offsets.
    Closed(usize, usize),
}

/// Finds the value of the first `"model"` key with a string value in `json`, which may be a
/// prefix of the text: the answer for a prefix never contradicts the answer for the whole
/// text (a value found closed stays where it is; a value found open begins at the same
/// offset; `Absent` means no byte of the value has arrived).
pub fn find_model_value(json: &[u8]) -> ModelValue {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    let finder = FINDER.get_or_init(|| memchr::memmem::Finder::new(b"\"model\""));
    for mut j in key_values(json, finder) {
        while json.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if json.get(j) != Some(&b'"') {
            continue;
        }
        return match string_end(json, j) {
            Some(end) => ModelValue::Closed(j, end),
            None => ModelValue::Open(j),
        };
    }
    ModelValue::Absent
}

/// For every occurrence of the key token `finder` looks for (`"key"`, quotes included) that is
/// not inside a string and is followed by `:`, the offset just after that colon.
pub(crate) fn key_values<'j>(
    json: &'j [u8],
    finder: &'j memchr::memmem::Finder<'_>,
) -> impl Iterator<Item = usize> + 'j {
    let key_len = finder.needle().len();
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(found) = json.get(from..).and_then(|rest| finder.find(rest)) {
            let start = from + found;
            from = start + 1;
            // Inside a JSON string a quote is always escaped: an odd run of backslashes before
            // it means this key is text, not a token.
            let backslashes = json
                .get(..start)
                .unwrap_or_default()
                .iter()
                .rev()
                .take_while(|&&b| b == b'\\')
                .count();
            if backslashes % 2 == 1 {
                continue;
            }
            let mut j = start + key_len;
            while json.get(j).is_some_and(u8::is_ascii_whitespace) {
                j += 1;
            }
            if json.get(j) == Some(&b':') {
                return Some(j + 1);
            }
        }
        None
    })
}

/// The model name responses report, with its JSON form computed once.
#[derive(Debug, Clone)]
pub struct ModelPin {
    name: String,
    /// The name as a JSON string, quotes included.
    escaped: String,
    /// The name needs no escaping.
    plain: bool,
}

impl ModelPin {
    /// A pin for `name`.
    pub fn new(name: &str) -> ModelPin {
        ModelPin {
            name: name.to_string(),
            escaped: serde_json::to_string(name).unwrap_or_else(|_| format!("\"{name}\"")),
            plain: !name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20),
        }
    }

    /// The name as a JSON string, quotes included.
    pub fn escaped(&self) -> &[u8] {
        self.escaped.as_bytes()
    }

    /// Whether the JSON string `json[open..=close]` (quotes included) names another model.
    pub fn differs(&self, json: &[u8], open: usize, close: usize) -> bool {
        let same = (self.plain && json.get(open + 1..close) == Some(self.name.as_bytes()))
            || json.get(open..=close) == Some(self.escaped.as_bytes());
        !same
    }

    /// `json` with the value of its first `"model"` key replaced by this name; `None` when
    /// there is no such key with a string value, or it already names this model.
    pub fn rewrite(&self, json: &[u8]) -> Option<Vec<u8>> {
        let ModelValue::Closed(open, close) = find_model_value(json) else {
            return None;
        };
        if !self.differs(json, open, close) {
            return None;
        }
        let mut out = Vec::with_capacity(json.len() + self.escaped.len());
        out.extend_from_slice(json.get(..open)?);
        out.extend_from_slice(self.escaped.as_bytes());
        out.extend_from_slice(json.get(close + 1..)?);
        Some(out)
    }
}

/// Index of the closing quote of the string opening at `open`.
fn string_end(json: &[u8], open: usize) -> Option<usize> {
    let mut k = open + 1;
    while let Some(&b) = json.get(k) {
        match b {
            b'\\' => k += 2,
            b'"' => return Some(k),
            _ => k += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_rewrite() {
        let j =
            br#"{"id":"x","content":"say \"model\": \"no\"","model" : "gpt-4o-2024","choices":[]}"#;
        let r = rewrite_model(j, "gpt-4o").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r).unwrap();
        assert_eq!(v["model"], "gpt-4o");
        assert_eq!(v["content"], "say \"model\": \"no\"");
        assert!(rewrite_model(br#"{"model":"a"}"#, "a").is_none());
        assert!(rewrite_model(br#"{"x":1}"#, "a").is_none());
        assert!(rewrite_model(br#"{"model":"unterminated"#, "a").is_none());
    }
}
