//! Shared helpers for the integration tests: fresh databases, the application on port 0, a TCP
//! proxy that can be cut.

pub mod app;
pub mod db;
pub mod proxy;
pub mod turn;
