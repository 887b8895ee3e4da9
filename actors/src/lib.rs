//! # health-actors: the core of health-agent
//!
//! Domain types, the ports the edges implement, and the actors.
//! This crate knows nothing of Telegram, HTTP or SQL drivers.

pub mod domain;
pub mod nutrition;
pub mod ports;
