//! The admission estimate of a request: prompt tokens from the body text, completion tokens
//! from `max_tokens` (or a default), and the model.
//!
//! The prompt estimate walks the JSON string literals of the body once, without allocating:
//! ASCII bytes count `1 / bytes_per_token` token each, every non-ASCII character (and every
//! `\uXXXX` escape) one token, and every inline image (a `data:` URL, or a long base64 string
//! as in Anthropic image blocks) a fixed number of tokens. JSON syntax outside strings is not
//! counted; keys are (a small overestimate).

use crate::config::{Admission, Count};
use serde::Deserialize;

/// What admission knows about a request before the upstream sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Estimate {
    /// The `model` of the body (or of a Gemini path).
    pub model: Option<String>,
    /// Estimated prompt tokens.
    pub prompt: u64,
    /// Estimated completion tokens (all choices).
    pub completion: u64,
}

impl Estimate {
    /// The amount a limit reserves for this request.
    pub fn amount(&self, count: Count) -> u64 {
        match count {
            Count::Total => self.prompt.saturating_add(self.completion),
            Count::Prompt => self.prompt,
            Count::Completion => self.completion,
            Count::Requests => 1,
        }
    }
}

/// Strings at least this long made only of base64 characters count as an image.
const BASE64_IMAGE_MIN: usize = 1024;

/// The most choices (`n`) the completion estimate multiplies by.
const MAX_CHOICES: u64 = 128;

#[derive(Deserialize, Default)]
struct Fields {
    #[serde(default)]
    model: Option<serde_json::Value>,
    #[serde(default)]
    max_tokens: Option<serde_json::Value>,
    #[serde(default)]
    max_completion_tokens: Option<serde_json::Value>,
    #[serde(default)]
    max_output_tokens: Option<serde_json::Value>,
    #[serde(default, rename = "generationConfig")]
    generation_config: Option<GenerationConfig>,
    #[serde(default)]
    n: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct GenerationConfig {
    #[serde(default, rename = "maxOutputTokens")]
    max_output_tokens: Option<serde_json::Value>,
    #[serde(default, rename = "candidateCount")]
    candidate_count: Option<serde_json::Value>,
}

fn as_u64(v: &Option<serde_json::Value>) -> Option<u64> {
    match v.as_ref()? {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        _ => None,
    }
}

/// Estimates a request from its body. `body` is `None` when the body was too large to
/// parse: then the prompt estimate comes from `body_len` alone.
pub fn estimate(body: Option<&[u8]>, body_len: usize, cfg: &Admission) -> Estimate {
    let bpt = u64::from(cfg.bytes_per_token.max(1));
    let Some(body) = body else {
        return Estimate {
            model: None,
            prompt: (body_len as u64).div_ceil(bpt),
            completion: cfg.default_max_tokens.min(cfg.max_completion_estimate),
        };
    };
    let fields: Fields = if body.is_empty() {
        Fields::default()
    } else {
        serde_json::from_slice(body).unwrap_or_default()
    };
    let per_choice = as_u64(&fields.max_completion_tokens)
        .or_else(|| as_u64(&fields.max_tokens))
        .or_else(|| as_u64(&fields.max_output_tokens))
        .or_else(|| {
            fields
                .generation_config
                .as_ref()
                .and_then(|g| as_u64(&g.max_output_tokens))
        })
        .unwrap_or(cfg.default_max_tokens)
        .min(cfg.max_completion_estimate);
    let choices = as_u64(&fields.n)
        .or_else(|| {
            fields
                .generation_config
                .as_ref()
                .and_then(|g| as_u64(&g.candidate_count))
        })
        .unwrap_or(1)
        .clamp(1, MAX_CHOICES);
    let model = match fields.model {
        Some(serde_json::Value::String(m)) if !m.is_empty() => Some(m),
        _ => None,
    };
    Estimate {
        model,
        prompt: prompt_tokens(body, bpt, cfg.image_tokens),
        completion: per_choice.saturating_mul(choices),
    }
}

/// The prompt-token estimate of a JSON body (see the module docs).
pub fn prompt_tokens(body: &[u8], bytes_per_token: u64, image_tokens: u64) -> u64 {
    let mut counter = StringCounter::default();
    let mut in_string = false;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        if !in_string {
            if b == b'"' {
                in_string = true;
                counter.start();
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = false;
                counter.end(image_tokens);
            }
            b'\\' => {
                if body.get(i + 1) == Some(&b'u') {
                    counter.other(1);
                    i += 6;
                    continue;
                }
                counter.ascii(b'\\');
                i += 2;
                continue;
            }
            b if b < 0x80 => counter.ascii(b),
            b if b >= 0xC0 => counter.other(1),
            _ => {}
        }
        i += 1;
    }
    if in_string {
        counter.end(image_tokens);
    }
    counter.total_ascii.div_ceil(bytes_per_token) + counter.total_other
}

/// Per-string accounting: a string is either text (ASCII bytes plus other characters) or an
/// inline image, decided when it ends.
#[derive(Default)]
struct StringCounter {
    ascii: u64,
    other: u64,
    len: usize,
    base64: bool,
    prefix: [u8; 5],
    total_ascii: u64,
    total_other: u64,
}

impl StringCounter {
    fn start(&mut self) {
        self.ascii = 0;
        self.other = 0;
        self.len = 0;
        self.base64 = true;
        self.prefix = [0; 5];
    }

    fn ascii(&mut self, b: u8) {
        if let Some(slot) = self.prefix.get_mut(self.len) {
            *slot = b;
        }
        self.len += 1;
        self.ascii += 1;
        self.base64 &= b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    }

    fn other(&mut self, tokens: u64) {
        self.len += 1;
        self.other += tokens;
        self.base64 = false;
    }

    fn end(&mut self, image_tokens: u64) {
        let data_url = &self.prefix == b"data:";
        if data_url || (self.base64 && self.len >= BASE64_IMAGE_MIN) {
            self.total_other = self.total_other.saturating_add(image_tokens);
        } else {
            self.total_ascii = self.total_ascii.saturating_add(self.ascii);
            self.total_other = self.total_other.saturating_add(self.other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Admission {
        Admission::default()
    }

    #[test]
    fn counts_text_not_syntax() {
        // "model" (5) + "gpt" (3) + "messages" (8) + "role" (4) + "user" (4) + "content" (7)
        // + 40 bytes of text = 71 ASCII bytes -> 18 tokens at 4 bytes per token.
        let body = br#"{"model":"gpt","messages":[{"role":"user","content":"0123456789012345678901234567890123456789"}]}"#;
        assert_eq!(prompt_tokens(body, 4, 1000), 18);
    }

    #[test]
    fn non_ascii_and_escapes_count_one_token_per_character() {
        assert_eq!(
            prompt_tokens("{\"c\":\"你好世界\"}".as_bytes(), 4, 0),
            1 + 4
        );
        assert_eq!(prompt_tokens(br#"{"c":"\u4f60\u597d"}"#, 4, 0), 1 + 2);
        // An escaped quote does not end the string.
        assert_eq!(prompt_tokens(br#"{"c":"ab\"cd"}"#, 1, 0), 6);
    }

    #[test]
    fn images_count_a_fixed_amount() {
        let data_url = format!(
            r#"{{"url":"data:image/png;base64,{}"}}"#,
            "A".repeat(100_000)
        );
        assert_eq!(prompt_tokens(data_url.as_bytes(), 4, 1000), 1 + 1000);
        let anthropic = format!(r#"{{"data":"{}"}}"#, "iVBOR".repeat(1000));
        assert_eq!(prompt_tokens(anthropic.as_bytes(), 4, 700), 1 + 700);
        // Long prose is text, not an image.
        let prose = format!(r#"{{"t":"{}"}}"#, "word ".repeat(400));
        assert_eq!(prompt_tokens(prose.as_bytes(), 4, 700), 501);
    }

    #[test]
    fn completion_from_the_request() {
        let e = estimate(Some(br#"{"model":"m","max_tokens":50,"n":2}"#), 0, &cfg());
        assert_eq!(e.model.as_deref(), Some("m"));
        assert_eq!(e.completion, 100);
        let e = estimate(
            Some(br#"{"max_completion_tokens":7,"max_tokens":50}"#),
            0,
            &cfg(),
        );
        assert_eq!(e.completion, 7);
        let e = estimate(Some(br#"{"max_output_tokens":9}"#), 0, &cfg());
        assert_eq!(e.completion, 9);
        let e = estimate(
            Some(br#"{"generationConfig":{"maxOutputTokens":11,"candidateCount":3}}"#),
            0,
            &cfg(),
        );
        assert_eq!(e.completion, 33);
        let e = estimate(Some(br#"{"max_tokens":1000000}"#), 0, &cfg());
        assert_eq!(e.completion, 4096, "capped by max_completion_estimate");
        let e = estimate(Some(br#"{"messages":[]}"#), 0, &cfg());
        assert_eq!(e.completion, 1024, "default");
        let e = estimate(Some(br#"{"max_tokens":"many","model":5}"#), 0, &cfg());
        assert_eq!((e.completion, e.model), (1024, None), "odd types fall back");
        let e = estimate(Some(b"not json"), 0, &cfg());
        assert_eq!(e.completion, 1024);
        let e = estimate(None, 4000, &cfg());
        assert_eq!((e.prompt, e.completion, e.model), (1000, 1024, None));
    }

    #[test]
    fn amounts_by_count() {
        let e = Estimate {
            model: None,
            prompt: 10,
            completion: 5,
        };
        assert_eq!(e.amount(Count::Total), 15);
        assert_eq!(e.amount(Count::Prompt), 10);
        assert_eq!(e.amount(Count::Completion), 5);
        assert_eq!(e.amount(Count::Requests), 1);
    }
}
