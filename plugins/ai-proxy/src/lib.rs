//! ai-proxy plugin: one OpenAI-compatible (and Anthropic-compatible) front for many model
//! providers.
//!
//! The translation modules are pure (no host calls) so that they are tested natively:
//! request/response translators between OpenAI chat, Anthropic Messages, Gemini and Bedrock
//! Converse and DashScope native ([`openai_to_anthropic`], [`anthropic_to_openai`], [`gemini`],
//! [`bedrock`], [`dashscope`]),
//! streaming state machines ([`stream`]), the AWS event-stream decoder and SigV4 signer
//! ([`bedrock`]), model-name mapping ([`model_map`]), the provider catalogue ([`providers`]) and
//! error translation ([`error`]).
//!
//! The gateway side ([`plugin`]) wires them into the proxy-wasm phases: [`config`] (the
//! configuration), [`request`] (request translation), [`response`] (answers and streams),
//! [`aggregate`] (streams assembled for non-stream clients) and [`keys`] (API-key choice and
//! shared cooldown).

pub mod anthropic_to_openai;
pub mod bedrock;
pub mod common;
pub mod config;
pub mod dashscope;
pub mod error;
pub mod gemini;
pub mod keys;
pub mod media;
pub mod model_map;
pub mod openai_to_anthropic;
pub mod options;
pub mod pipeline;
pub mod plugin;
pub mod providers;
pub mod request;
pub mod response;
pub mod responses_api;

aigw::export_plugin!(plugin::AiProxy);
