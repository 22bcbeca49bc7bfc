//! ai-guard plugin.
