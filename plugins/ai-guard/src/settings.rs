//! The plugin's configuration type for the SDK: the JSON document of
//! [`crate::config`] ([`GuardConfig`]), compiled once at configure time by
//! [`PluginConfig::compile`] into what the phase handlers use.

use aigw::config::{ConfigError, PluginConfig};

use crate::config::{Guard, GuardConfig};
use crate::scope::Selection;

/// The compiled plugin configuration (a bad rule rejects the configuration
/// with one error naming the field).
#[derive(Debug)]
pub struct Config {
    /// The rules and settings.
    pub guard: Guard,
    /// Configured response JSON paths, checked per streamed event (`None`
    /// when there are none).
    pub stream_paths: Option<Selection>,
}

impl PluginConfig for Config {
    type Raw = GuardConfig;

    fn compile(raw: GuardConfig) -> Result<Config, ConfigError> {
        // The word lists end up in the compiled automaton; `raw` is dropped.
        let guard = Guard::from_config(&raw)?;
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
        Ok(Config {
            guard,
            stream_paths,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_on_parse() {
        let c: Config = aigw::config::parse(
            br#"{"keywords":{"lists":[{"name":"w","words":["bad"]}]},"scope":{"response":{"json_paths":["$.extra"]}}}"#,
        )
        .unwrap();
        assert!(!c.guard.engine.is_empty());
        let paths = c.stream_paths.as_ref().unwrap();
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
        assert_eq!(c.guard.log_max_bytes, 0);
        let c = aigw::config::parse::<Config>(b"{}").unwrap();
        assert_eq!(c.guard.log_max_bytes, 4096);
    }
}
