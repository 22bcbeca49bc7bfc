//! Client dialects ai-proxy accepts besides OpenAI chat, translated to and from the chat types
//! every upstream dialect is translated from: Anthropic Messages ([`anthropic`]) and the OpenAI
//! Responses API ([`responses`]). Their streams are written by the SDK's encoders
//! (`aigw::llm::stream`).

pub mod anthropic;
pub mod responses;
