//! The one integration test binary: the whole application against real PostgreSQL and fake
//! upstreams on loopback.

mod store_conformance;
mod support;
