//! The model a request asks for, read so that the policy check cannot be stepped around.
//!
//! The body must be strict JSON ([`aigw::json::check_strict`]: no repeated key, no byte order
//! mark) and `model` a string; a body that does not say which model it wants, or says it in a
//! way parsers disagree on, cannot be decided and is refused. Paths are compared in their
//! normalised form ([`aigw::llm::path::normalize`]), which is also what goes upstream.

use aigw::json::{check_strict, JsonProblem};
use aigw::llm::Api;
use aigw::log::untrusted;
use std::borrow::Cow;

/// Why the model cannot be decided; each is a 400 for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undecidable {
    /// The body is not strict JSON.
    Json(JsonProblem),
    /// The body is JSON but not an object.
    NotObject,
    /// `model` is there but not a string.
    NotString,
    /// There is no `model`.
    Missing,
    /// The model in the path still has percent escapes after normalising.
    EscapedPathModel(String),
}

impl std::fmt::Display for Undecidable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undecidable::Json(p) => write!(f, "{p}"),
            Undecidable::NotObject => f.write_str("the request body must be a JSON object"),
            Undecidable::NotString => f.write_str("`model` must be a string"),
            Undecidable::Missing => f.write_str("you must provide a model parameter"),
            Undecidable::EscapedPathModel(m) => write!(
                f,
                "the model name in the path has percent-encoded characters: `{}`",
                untrusted(m)
            ),
        }
    }
}

/// The top-level `model` of a JSON request body. Only `model` is materialised; the rest of
/// the body is skipped by the parser.
pub fn in_body(body: &[u8]) -> Result<String, Undecidable> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        model: Option<serde_json::Value>,
    }
    check_strict(body).map_err(Undecidable::Json)?;
    // serde would also read a struct from an array; only an object names a model.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Undecidable::NotObject);
    }
    let probe: Probe = serde_json::from_slice(body)
        .map_err(|e| Undecidable::Json(JsonProblem::NotJson(e.to_string())))?;
    match probe.model {
        None | Some(serde_json::Value::Null) => Err(Undecidable::Missing),
        Some(serde_json::Value::String(m)) if m.is_empty() => Err(Undecidable::Missing),
        Some(serde_json::Value::String(m)) => Ok(m),
        Some(_) => Err(Undecidable::NotString),
    }
}

/// The normalised path (borrowed when unchanged) and the model it names, if any: the model
/// of any Gemini- or Bedrock-style path, whatever the operation ([`Api::any_model_in_path`]).
pub fn in_path(path: &str) -> Result<(Cow<'_, str>, Option<String>), Undecidable> {
    let normal = aigw::llm::path::normalize(path);
    let model = Api::any_model_in_path(&normal);
    if let Some(m) = &model {
        if m.contains('%') {
            return Err(Undecidable::EscapedPathModel(m.clone()));
        }
    }
    Ok((normal, model))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_models() {
        assert_eq!(
            in_body(br#"{"messages":[],"model":"gpt-4o"}"#),
            Ok("gpt-4o".into())
        );
        assert_eq!(in_body(br#"{"messages":[]}"#), Err(Undecidable::Missing));
        assert_eq!(in_body(br#"{"model":""}"#), Err(Undecidable::Missing));
        assert_eq!(
            in_body(br#"{"model":["gpt-4o"]}"#),
            Err(Undecidable::NotString)
        );
        assert_eq!(in_body(br#"[{"model":"x"}]"#), Err(Undecidable::NotObject));
        assert!(matches!(in_body(b"not json"), Err(Undecidable::Json(_))));
        assert!(matches!(
            in_body(br#"{"model":"gpt-4o-mini","model":"gpt-4o"}"#),
            Err(Undecidable::Json(JsonProblem::DuplicateKey { .. }))
        ));
        assert!(matches!(
            in_body(b"\xEF\xBB\xBF{\"model\":\"gpt-4o\"}"),
            Err(Undecidable::Json(JsonProblem::ByteOrderMark))
        ));
    }

    #[test]
    fn path_models_are_normalised() {
        let (p, m) = in_path("/v1beta/models/gpt-4o-realtim%65-preview:generateContent").unwrap();
        assert_eq!(p, "/v1beta/models/gpt-4o-realtime-preview:generateContent");
        assert_eq!(m.as_deref(), Some("gpt-4o-realtime-preview"));
        let (p, m) = in_path("/v1beta/m%6Fdels/gemini:generateContent?alt=sse").unwrap();
        assert_eq!(p, "/v1beta/models/gemini:generateContent?alt=sse");
        assert_eq!(m.as_deref(), Some("gemini"));
        assert!(matches!(
            in_path("/v1beta/models/a%25b:x"),
            Err(Undecidable::EscapedPathModel(_))
        ));
        assert!(matches!(
            in_path("/v1/chat/completions"),
            Ok((Cow::Borrowed(_), None))
        ));
    }
}
