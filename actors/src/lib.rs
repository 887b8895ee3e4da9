//! # health-actors: the core of health-agent
//!
//! Domain types, the ports the edges implement, and the actors.
//! This crate knows nothing of Telegram, HTTP or SQL drivers.
//!
//! ## Supervision tree
//!
//! ```text
//! Root (root.rs)                      started by the application: Root::start(RootArgs) -> RootHandle
//!  │  policy: the vision branch failing → restarted with the same models (photos in flight read
//!  │          "send the photo again"), at most vision.max_restarts in vision.restart_window, then
//!  │          escalated; any other child failing or stopping outside shutdown is escalated (drain,
//!  │          flush, stop; RootHandle::stopped() resolves with the reason and the application exits)
//!  ├── PersistenceActor (persistence.rs)
//!  │      batches writes (batch_max rows or `flush` after the first row), one Store::apply per
//!  │      batch, acks each sender after commit, retries transient failures keeping the batch,
//!  │      bounded queue then backpressure, flushes on shutdown within a deadline
//!  ├── VisionCoordinator (vision/coordinator.rs)   reached through the VisionHandle, which follows
//!  │    │                                          it across restarts
//!  │    │  policy: a failed agent → restarted with its model (the photo merges the others);
//!  │    │          a failed consensus actor → only its photo reads "send the photo again"
//!  │    ├── VisionAgent × one per vision model (vision/agent.rs)
//!  │    │      asks its model, each photo in a task of its own, cut at the photo's deadline
//!  │    └── ConsensusActor × one per photo in flight (vision/consensus_actor.rs)
//!  │           asks every agent at once, merges their answers with the person's calibration,
//!  │           answers the photo's sender, stops
//!  └── ConversationSupervisor (conversation/supervisor.rs)
//!       │  routes by user id, never awaits a turn; bounded mailbox per person ("one moment");
//!       │  passivates actors idle for `idle`
//!       │  policy: a failed child → apology + dead letter + restart with state reloaded;
//!       │          more than max_restarts in restart_window → "temporarily unavailable" + cool-off
//!       └── ConversationActor × one per active person (conversation/actor.rs)
//!              runs the Agent (conversation/agent.rs) for one message at a time
//! ```
//!
//! Every child is spawned with `spawn_linked` under its parent. Shutdown
//! ([`root::RootHandle::shutdown`]): stop intake → let conversations finish their current message
//! → stop the vision branch → flush persistence → stop.
//!
//! Messages come in as [`inbound::Inbound`] (each carrying the [`ports::Outbox`] its answers go
//! to); metric names are in [`metrics`]; in-process fakes of the ports for tests and benchmarks
//! are in `testing`, compiled only for tests and with the `testing` feature (which the root
//! package's dev-dependency turns on), so release builds do not carry them.

pub mod backoff;
pub mod consensus;
pub mod conversation;
pub mod domain;
pub mod inbound;
pub mod inbox;
pub mod memory;
pub mod metrics;
pub mod nutrition;
pub mod persistence;
pub mod ports;
pub mod root;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod understanding;
pub mod vision;
