//! LLM message types and usage extraction.
