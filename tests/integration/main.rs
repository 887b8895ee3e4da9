//! The one integration test binary: the whole application against real PostgreSQL and fake
//! upstreams on loopback.

mod agent;
mod api;
mod corrections;
mod durable;
mod fakes;
mod health;
mod llm;
mod persistence;
mod store_conformance;
mod support;
mod telegram;
mod usda;
mod vision;
