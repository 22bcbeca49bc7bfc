//! The plugin type ([`Hello`]) and its configuration.

use aigw::prelude::*;

/// The configuration: the header to add and the blocked path prefixes.
#[derive(serde::Deserialize)]
pub struct Config {
    header_name: String,
    header_value: String,
    #[serde(default)]
    blocked_prefixes: Vec<String>,
}

impl PlainConfig for Config {}

/// The plugin: one value per request stream (it keeps no state).
#[derive(Default)]
pub struct Hello;

impl Plugin for Hello {
    const NAME: &'static str = "hello";
    type Config = Config;
    type Root = ();

    fn on_request_headers(&mut self, ctx: &mut Ctx<Self>, _end_of_stream: bool) -> Flow {
        let cfg = ctx.config_rc();
        let blocked = |prefix: &String| ctx.request_path().starts_with(prefix.as_str());
        if cfg.blocked_prefixes.iter().any(blocked) {
            let _ = ctx.send_error(&ErrorReply::new(403, "this path is blocked"));
            return Flow::Pause;
        }
        if let Err(e) = ctx.set_request_header(&cfg.header_name, &cfg.header_value) {
            aigw::warn!("cannot set {}: {e}", cfg.header_name);
        }
        Flow::Continue
    }
}
