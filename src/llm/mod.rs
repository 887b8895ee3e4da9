//! The agents behind a conversation: today the offline rule-based agent; model adapters (OpenAI,
//! Anthropic, OpenAI-compatible servers) plug in beside it.

pub mod offline;
