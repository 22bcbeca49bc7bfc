//! ai-statistics configuration.

use aigw::config::{ConfigError, PlainConfig};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Prices of one model in USD per 1M tokens (which is also micro-dollars per token).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Uncached prompt tokens.
    pub input: f64,
    /// Output tokens (reasoning included).
    pub output: f64,
    /// Prompt tokens read from the provider's cache (default: the `input` price).
    #[serde(default)]
    pub cached_input: Option<f64>,
}

impl Price {
    /// Cost in micro-dollars of the given token counts (`input` includes `cached`).
    pub fn cost_micro_usd(&self, input: u64, cached: u64, output: u64) -> u64 {
        let cached = cached.min(input);
        let uncached = input - cached;
        let cost = uncached as f64 * self.input
            + cached as f64 * self.cached_input.unwrap_or(self.input)
            + output as f64 * self.output;
        if cost.is_finite() && cost > 0.0 {
            cost.round() as u64
        } else {
            0
        }
    }
}

/// The plugin configuration.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Header naming the consumer (set by ai-auth / Higress key-auth).
    #[serde(default = "default_consumer_header")]
    pub consumer_header: String,
    /// Price table: model name (exact, or a prefix ending in `*`) → prices per 1M tokens.
    #[serde(default)]
    pub prices: BTreeMap<String, Price>,
    /// Put the last user message in the access-log attributes.
    #[serde(default)]
    pub log_question: bool,
    /// Put the (beginning of the) answer text in the access-log attributes.
    #[serde(default)]
    pub log_answer: bool,
    /// Longest question/answer kept, in bytes (cut at a character boundary).
    #[serde(default = "default_max_log_bytes")]
    pub max_log_bytes: usize,
    /// Request body bytes kept to find the model (and the question): a bounded prefix.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Non-streamed response bytes kept to find usage; beyond this only a tail is kept.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// Largest single SSE event held while it is incomplete.
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
    /// Publish the filter-state property `aigw.log` (JSON) for the access log.
    #[serde(default = "yes")]
    pub log_property: bool,
    /// Write the same record as one info log line per request.
    #[serde(default = "yes")]
    pub log_line: bool,
}

fn yes() -> bool {
    true
}
fn default_consumer_header() -> String {
    aigw::contract::CONSUMER_HEADER.into()
}
fn default_max_log_bytes() -> usize {
    1024
}
fn default_max_request_bytes() -> usize {
    256 << 10
}
fn default_max_response_bytes() -> usize {
    256 << 10
}
fn default_max_event_bytes() -> usize {
    1 << 20
}

impl Config {
    /// The price for `model`: an exact entry, else the longest matching `prefix*` entry.
    pub fn price_for(&self, model: &str) -> Option<&Price> {
        if let Some(p) = self.prices.get(model) {
            return Some(p);
        }
        self.prices
            .iter()
            .filter_map(|(k, p)| {
                let prefix = k.strip_suffix('*')?;
                model.starts_with(prefix).then_some((prefix.len(), p))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, p)| p)
    }
}

impl PlainConfig for Config {
    fn validate(&mut self) -> Result<(), ConfigError> {
        if self.consumer_header.is_empty() {
            return Err(ConfigError::new("consumer_header", "must not be empty"));
        }
        self.consumer_header.make_ascii_lowercase();
        for (model, p) in &self.prices {
            let field = format!("prices.{model}");
            if model.is_empty() || model.strip_suffix('*').unwrap_or(model).contains('*') {
                return Err(ConfigError::new(
                    field,
                    "a model name, or a prefix with one trailing `*`",
                ));
            }
            for (name, v) in [
                ("input", Some(p.input)),
                ("output", Some(p.output)),
                ("cached_input", p.cached_input),
            ] {
                if let Some(v) = v {
                    if !v.is_finite() || v < 0.0 {
                        return Err(ConfigError::new(
                            format!("{field}.{name}"),
                            "must be a non-negative number (USD per 1M tokens)",
                        ));
                    }
                }
            }
        }
        for (name, v) in [
            ("max_request_bytes", self.max_request_bytes),
            ("max_response_bytes", self.max_response_bytes),
            ("max_event_bytes", self.max_event_bytes),
        ] {
            if v < 1024 {
                return Err(ConfigError::new(name, "must be at least 1024"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        aigw::config::parse::<Config>(json.as_bytes())
    }

    #[test]
    fn prices_and_lookup() {
        let c = parse(
            r#"{"prices":{"gpt-4o":{"input":2.5,"output":10,"cached_input":1.25},"gpt-4o*":{"input":1,"output":1},"claude-*":{"input":3,"output":15}}}"#,
        )
        .unwrap();
        assert_eq!(c.price_for("gpt-4o").map(|p| p.input), Some(2.5));
        assert_eq!(c.price_for("gpt-4o-mini").map(|p| p.input), Some(1.0));
        assert_eq!(c.price_for("claude-sonnet-4").map(|p| p.output), Some(15.0));
        assert!(c.price_for("llama").is_none());
        let p = c.price_for("gpt-4o").unwrap();
        // 1000 input of which 400 cached, 100 output: 600*2.5 + 400*1.25 + 100*10.
        assert_eq!(p.cost_micro_usd(1000, 400, 100), 1500 + 500 + 1000);
        assert_eq!(p.cost_micro_usd(0, 5, 0), 0);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            parse(r#"{"prices":{"m":{"input":-1,"output":1}}}"#)
                .unwrap_err()
                .path(),
            "prices.m.input"
        );
        assert_eq!(
            parse(r#"{"prices":{"a*b":{"input":1,"output":1}}}"#)
                .unwrap_err()
                .path(),
            "prices.a*b"
        );
        assert_eq!(
            parse(r#"{"max_event_bytes":10}"#).unwrap_err().path(),
            "max_event_bytes"
        );
        assert!(parse(r#"{"bogus":1}"#).is_err());
    }
}
