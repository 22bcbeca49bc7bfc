//! One builder for the requests every plugin test sends: OpenAI chat completions and Anthropic
//! messages.

use host_sim::Request;
use serde_json::Value;

/// A chat request body built field by field, written as compact JSON with its fields in the
/// order they were set and `messages` last, each message as `{"role":…,"content":…}`. The
/// exact bytes matter to some tests (token estimates, cache keys), so nothing is reordered.
///
/// `Chat::openai("gpt-4o").max_tokens(10).user("hello there").request()` is a
/// `POST /v1/chat/completions` with
/// `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hello there"}]}`.
#[derive(Debug, Clone)]
pub struct Chat {
    path: String,
    fields: Vec<(String, Value)>,
    messages: Vec<(String, Value)>,
}

impl Chat {
    /// An OpenAI chat completion request (`POST /v1/chat/completions`) for `model`.
    pub fn openai(model: &str) -> Chat {
        Chat::at("/v1/chat/completions", model)
    }

    /// An Anthropic messages request (`POST /v1/messages`) for `model`.
    pub fn anthropic(model: &str) -> Chat {
        Chat::at("/v1/messages", model)
    }

    /// A request for `model` to any path (a chat body sent where a test needs it).
    pub fn at(path: &str, model: &str) -> Chat {
        Chat {
            path: path.to_string(),
            fields: vec![("model".to_string(), Value::from(model))],
            messages: Vec::new(),
        }
    }

    /// Sets field `key` (in place if it is already set, else after the others).
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Chat {
        let value = value.into();
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(f) => f.1 = value,
            None => self.fields.push((key.to_string(), value)),
        }
        self
    }

    /// Sets `stream`.
    pub fn stream(self, on: bool) -> Chat {
        self.set("stream", on)
    }

    /// Sets `max_tokens`.
    pub fn max_tokens(self, n: u64) -> Chat {
        self.set("max_tokens", n)
    }

    /// Adds a message of `role` (content a string, or parts as a JSON array).
    pub fn message(mut self, role: &str, content: impl Into<Value>) -> Chat {
        self.messages.push((role.to_string(), content.into()));
        self
    }

    /// Adds a system message.
    pub fn system(self, content: &str) -> Chat {
        self.message("system", content)
    }

    /// Adds a user message.
    pub fn user(self, content: &str) -> Chat {
        self.message("user", content)
    }

    /// The body as sent.
    pub fn body(&self) -> String {
        let mut s = String::from("{");
        for (k, v) in &self.fields {
            s.push_str(&format!("{}:{v},", Value::from(k.as_str())));
        }
        s.push_str("\"messages\":[");
        for (i, (role, content)) in self.messages.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                "{{\"role\":{},\"content\":{content}}}",
                Value::from(role.as_str())
            ));
        }
        s.push_str("]}");
        s
    }

    /// The request (`POST` of [`Chat::body`]).
    pub fn request(&self) -> Request {
        Request::post(&self.path, self.body())
    }
}

impl From<Chat> for Request {
    fn from(c: Chat) -> Request {
        c.request()
    }
}
