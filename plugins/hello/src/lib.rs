//! Example plugin: adds a configured request header; answers blocked path prefixes with a 403
//! in the client's protocol. `{"header_name":"x-hello","header_value":"hi","blocked_prefixes":["/admin"]}`

mod plugin;

pub use plugin::{Config, Hello};

aigw::export_plugin!(plugin::Hello);
