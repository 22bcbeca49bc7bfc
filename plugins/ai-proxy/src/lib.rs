//! ai-proxy plugin.
