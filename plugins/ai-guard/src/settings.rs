//! The plugin's configuration type for the SDK: the JSON document of
//! [`crate::config`], compiled once at configure time by
//! [`PluginConfig::validate`].

use aigw::config::{ConfigError, PluginConfig};
use serde::Deserialize;

use crate::config::{Guard, GuardConfig};
use crate::scope::Selection;

/// The plugin configuration: parsed as [`GuardConfig`], compiled into a
/// [`Guard`] by `validate` (a bad rule rejects the configuration with one
/// error naming the field).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Config {
    source: GuardConfig,
    #[serde(skip)]
    compiled: Option<Compiled>,
}

/// What the phase handlers use.
#[derive(Debug)]
pub struct Compiled {
    /// The rules and settings.
    pub guard: Guard,
    /// Configured response JSON paths, checked per streamed event (`None`
    /// when there are none).
    pub stream_paths: Option<Selection>,
}

impl Config {
    /// The compiled configuration (always present once validated).
    pub fn compiled(&self) -> Option<&Compiled> {
        self.compiled.as_ref()
    }
}

impl PluginConfig for Config {
    fn validate(&mut self) -> Result<(), ConfigError> {
        let guard =
            Guard::from_config(&self.source).map_err(|e| ConfigError::new(e.field, e.reason))?;
        let stream_paths = guard
            .response
            .as_ref()
            .filter(|sel| !sel.paths.is_empty())
            .map(|sel| Selection {
                openai: false,
                anthropic: false,
                raw: false,
                ..sel.clone()
            });
        // The word lists now live in the compiled automaton; drop the source.
        self.source = GuardConfig::default();
        self.compiled = Some(Compiled {
            guard,
            stream_paths,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_on_validate() {
        let c: Config = aigw::config::parse(
            br#"{"keywords":{"lists":[{"name":"w","words":["bad"]}]},"scope":{"response":{"json_paths":["$.extra"]}}}"#,
        )
        .unwrap();
        let compiled = c.compiled().unwrap();
        assert!(!compiled.guard.engine.is_empty());
        let paths = compiled.stream_paths.as_ref().unwrap();
        assert!(!paths.openai && !paths.anthropic && paths.paths.len() == 1);
    }

    #[test]
    fn errors_name_the_field() {
        let e =
            aigw::config::parse::<Config>(br#"{"patterns":[{"builtin":"phone"}]}"#).unwrap_err();
        assert_eq!(e.path(), "patterns[0].builtin");
        let e =
            aigw::config::parse::<Config>(br#"{"keywords":{"lists":[{"name":"a","wrds":[]}]}}"#)
                .unwrap_err();
        assert_eq!(e.path(), "keywords.lists[0].wrds");
        assert!(e.reason().starts_with("unknown field"), "{e}");
        let e = aigw::config::parse::<Config>(br#"{"block":{"status":"x"}}"#).unwrap_err();
        assert_eq!(e.path(), "block.status");
        let e = aigw::config::parse::<Config>(br#"{"log":{"max_bytes":2000000}}"#).unwrap_err();
        assert_eq!(e.path(), "log.max_bytes");
        let c = aigw::config::parse::<Config>(br#"{"log":{"max_bytes":0}}"#).unwrap();
        assert_eq!(c.compiled().unwrap().guard.log_max_bytes, 0);
        let c = aigw::config::parse::<Config>(b"{}").unwrap();
        assert_eq!(c.compiled().unwrap().guard.log_max_bytes, 4096);
    }
}
