//! Fake upstream servers on 127.0.0.1 that speak the real services' wire formats.

pub mod llm;
pub mod telegram;
pub mod usda;
