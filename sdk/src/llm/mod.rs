//! LLM wire types and token-usage extraction.
//!
//! The type modules ([`openai`], [`responses`], [`anthropic`], [`gemini`]) model the request,
//! response and streaming shapes of each provider protocol with serde. They are tolerant: unknown
//! fields are accepted, and the top-level objects keep them in an `extra` map so that a
//! pass-through re-serialises what it did not understand. Unknown content-part or block types are
//! kept as raw JSON in an `Other` variant instead of failing the parse, so that a translator can
//! reject them with a message that names the type.
//!
//! [`api`] names every LLM API the pack sees and classifies a request into one ([`Api::classify`]),
//! with what each API implies: usage rules, error shape, framing, model in the path.
//!
//! [`usage`] extracts token counts cheaply from response bodies and stream events, following each
//! provider's counting rules (cumulative vs incremental), through [`usage::UsageAccumulator`].

pub mod access;
pub mod anthropic;
pub mod api;
pub mod gemini;
mod open_struct;
pub mod openai;
pub mod path;
pub mod responses;
pub mod stream;
mod tagged;
pub mod usage;

pub use api::{Api, Framing};
pub use usage::{Usage, UsageAccumulator, UsageProtocol};

/// A JSON object of fields this crate does not model, kept for pass-through.
pub type Extra = serde_json::Map<String, serde_json::Value>;
