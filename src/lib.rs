//! # health-agent: the edges and the wiring
//!
//! This crate holds everything that talks to the outside world (configuration, HTTP, the
//! database, model providers, Telegram) and wires it to the core in `health_actors`, and the
//! assistant itself ([`assistant`]: the rule and LLM agents a conversation runs).
//! `main.rs` only parses the command line and calls [`startup::Application`].

pub mod assistant;
pub mod chat;
pub mod config;
pub mod geo;
pub mod http;
pub mod llm;
pub mod metrics;
pub mod nutrition;
pub mod reports;
pub mod resilience;
pub mod startup;
pub mod store;
pub mod telegram;
pub mod telemetry;
