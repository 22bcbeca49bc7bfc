//! `host-sim serve`: the local gateway mode (real HTTP on loopback, the same host engine).

mod config;
mod generation;
mod redact;
pub mod server;
mod upstream;
