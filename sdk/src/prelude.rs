//! What most plugins need: `use aigw::prelude::*;`.

pub use crate::body::{BodyChunk, OverLimit, Rewriter, Whole};
pub use crate::config::{ConfigError, PlainConfig, PluginConfig};
pub use crate::host::HostError;
pub use crate::plugin::{
    CallError, CallRequest, CallResponse, CallResult, Ctx, Flow, Plugin, RootCtx,
};
pub use crate::reply::{ErrorReply, Protocol, RateLimit};
