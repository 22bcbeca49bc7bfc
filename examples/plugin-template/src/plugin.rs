//! The plugin type ([`Template`]) and its configuration.

use aigw::prelude::*;

/// The plugin configuration.
#[derive(serde::Deserialize)]
pub struct Config {
    /// The request header to add.
    header_name: String,
    /// Its value.
    header_value: String,
}

// A configuration without a compile step: the raw form is the config itself, and `validate`
// checks it in place. A plugin whose handlers need derived values implements `PluginConfig`
// with a `Raw` serde type and `compile` instead (see the SDK's `config` module).
impl PlainConfig for Config {
    fn validate(&mut self) -> Result<(), ConfigError> {
        if self.header_name.is_empty() {
            return Err(ConfigError::new("header_name", "must not be empty"));
        }
        Ok(())
    }
}

/// The per-request filter.
#[derive(Default)]
pub struct Template;

impl Plugin for Template {
    const NAME: &'static str = "plugin-template";
    type Config = Config;
    type Root = ();

    fn on_request_headers(&mut self, ctx: &mut Ctx<Self>, _end_of_stream: bool) -> Flow {
        let cfg = ctx.config_rc();
        if let Err(e) = ctx.set_request_header(&cfg.header_name, &cfg.header_value) {
            aigw::warn!("cannot set {}: {e}", cfg.header_name);
        }
        Flow::Continue
    }
}
