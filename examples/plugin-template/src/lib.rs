//! A template plugin: adds a configured header to every request on its way upstream.
//! Configuration: `{"header_name": "x-template", "header_value": "hello"}`.
//!
//! `src/plugin.rs` holds the plugin type and its configuration; this file declares the module
//! and registers the plugin with the host.

mod plugin;

pub use plugin::{Config, Template};

aigw::export_plugin!(plugin::Template);
