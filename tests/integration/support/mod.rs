//! Shared helpers for the integration tests: fresh databases, the application on port 0.

pub mod db;
