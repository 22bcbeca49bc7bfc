//! `host-sim serve`: the local gateway mode (real HTTP on loopback, the same host engine).

pub mod config;
pub mod generation;
mod redact;
pub mod server;
pub mod upstream;
