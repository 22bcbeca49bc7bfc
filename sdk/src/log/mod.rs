//! Leveled logging to the host log, prefixed with the plugin name, and secret redaction.
//!
//! ```no_run
//! aigw::info!("selected provider {}", "openai");
//! aigw::warn!("retrying after {} ms", 200);
//! ```
//!
//! Every line is written as `<plugin>: <message>`, with control characters escaped and at most
//! [`MAX_LINE_BYTES`] long ([`sanitize_line`]). Never log header values or bodies without
//! passing them through [`Redactor`] first, and wrap any other client value in [`untrusted`].

mod redact;
mod untrusted;

pub use redact::{Redactor, REDACTED};
pub use untrusted::{
    bounded_message, sanitize_line, untrusted, Untrusted, MAX_LINE_BYTES, UNTRUSTED_MAX_CHARS,
};

use crate::host::{self, Level};
use std::cell::Cell;
use std::fmt::{self, Write as _};

thread_local! {
    static PLUGIN_NAME: Cell<&'static str> = const { Cell::new("aigw") };
}

/// Sets the name every log line is prefixed with (done by `export_plugin!`).
pub fn set_plugin_name(name: &'static str) {
    PLUGIN_NAME.with(|n| n.set(name));
}

/// The name log lines are prefixed with.
pub fn plugin_name() -> &'static str {
    PLUGIN_NAME.with(Cell::get)
}

/// Formats and writes one log line; host errors are ignored (logging must never fail a
/// request). Use the macros instead of calling this directly.
pub fn write(level: Level, args: fmt::Arguments<'_>) {
    let mut line = String::with_capacity(64);
    line.push_str(plugin_name());
    line.push_str(": ");
    let _ = line.write_fmt(args);
    let _ = host::log(level, &sanitize_line(&line));
}

/// Logs at trace level: `aigw::trace!("x = {}", x)`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log::write($crate::host::Level::Trace, format_args!($($arg)+)) };
}

/// Logs at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::write($crate::host::Level::Debug, format_args!($($arg)+)) };
}

/// Logs at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::write($crate::host::Level::Info, format_args!($($arg)+)) };
}

/// Logs at warn level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::write($crate::host::Level::Warn, format_args!($($arg)+)) };
}

/// Logs at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::write($crate::host::Level::Error, format_args!($($arg)+)) };
}
