//! The shared SDK for AI gateway proxy-wasm plugins.

pub mod llm;
