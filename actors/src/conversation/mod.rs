//! Conversations: one actor per person, under one supervisor.
//!
//! - [`supervisor`]: the `ConversationSupervisor` routes each [`crate::inbound::Inbound`] to its
//!   person's actor, spawning it on demand, bounds each person's mailbox, passivates idle actors
//!   and applies the failure policy.
//! - [`actor`]: the `ConversationActor` runs the [`Agent`] for one message at a time.
//! - [`agent`]: the agent port and the [`TurnContext`] a turn gets.
//! - `mailbox`: the bounded per-person queue both share.
//! - [`kept`]: what a turn kept, and the apology for a dead letter that says so.
//!
//! Every message gets one `turn` span ([`turn_span`]) when the supervisor routes it, carrying
//! `user_id`, `inbound_id` and `channel`; the supervisor enters it for what it does about that
//! message (routing, notices, the failure policy) and the conversation actor for the whole turn,
//! tasks it spawns included. Photos carry it into the vision branch. So every log line about one
//! message can be found by its inbound id. Contents are never span fields.

pub mod actor;
pub mod agent;
pub mod kept;
mod mailbox;
pub mod supervisor;

use std::sync::Arc;
use std::time::Duration;

pub use agent::{Agent, AgentError, TurnContext};
pub use supervisor::{ConversationStats, ConversationsHandle, DrainReport, SubmitError};

use crate::inbound::Inbound;
use crate::persistence::PersistenceHandle;
use crate::ports::{Clock, Store};

/// What the person reads when their message could not be handled and nothing of it was saved
/// (see [`kept::apology`] for a message of which something was).
pub const APOLOGY: &str =
    "Sorry, something went wrong while I was handling that message. Please send it again.";
/// What a person who sends faster than they are answered reads (once per turn).
pub const BUSY_NOTICE: &str = "One moment, I'm still working on your last message.";
/// What the person reads while their conversation cools off after repeated failures.
pub const UNAVAILABLE_NOTICE: &str =
    "I'm temporarily unavailable because something keeps going wrong. Please try again in a few minutes.";
/// What a person whose message was not started before a shutdown reads.
pub const RESTARTING_NOTICE: &str =
    "I'm restarting for maintenance and didn't get to that message. Please send it again in a minute.";

/// Tuning of the conversations; the application fills it from `CONVERSATION_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationSettings {
    /// An actor with nothing to do for this long is stopped (`CONVERSATION_IDLE_SECS`, 900 s);
    /// its state lives in the store, the next message respawns it. Checked every `idle / 4`
    /// (at most every 30 s), so an actor stops between `idle` and `idle` + that period.
    pub idle: Duration,
    /// Messages that may wait behind the one being handled; past it the person reads
    /// [`BUSY_NOTICE`].
    pub mailbox_max: usize,
    /// At most this many restarts of one person's actor within `restart_window`...
    pub max_restarts: u32,
    pub restart_window: Duration,
    /// ...then the person reads [`UNAVAILABLE_NOTICE`] for this long.
    pub cool_off: Duration,
    /// One turn longer than this counts as a failure.
    pub turn_timeout: Duration,
    /// Bound on each notice the supervisor sends itself (apology, busy, unavailable).
    pub reply_timeout: Duration,
    /// Conversation messages loaded for the agent at the start of a run of turns.
    pub history_limit: usize,
    /// Messages submitted and not yet routed by the supervisor before `submit` waits.
    pub intake_max: usize,
    /// How long `submit` waits for room in the intake.
    pub submit_timeout: Duration,
}

impl Default for ConversationSettings {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(900),
            mailbox_max: 8,
            max_restarts: 3,
            restart_window: Duration::from_secs(10),
            cool_off: Duration::from_secs(60),
            turn_timeout: Duration::from_secs(120),
            reply_timeout: Duration::from_secs(10),
            history_limit: 20,
            intake_max: 65_536,
            submit_timeout: Duration::from_secs(5),
        }
    }
}

/// How one message ended (for callers that wait, such as the HTTP API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnOutcome {
    /// The agent handled it; its answers went to the message's outbox.
    Answered,
    /// The person's mailbox was full: they read [`BUSY_NOTICE`].
    Busy,
    /// Handling failed: they read [`APOLOGY`], the message is a dead letter.
    Failed,
    /// Their conversation is cooling off: they read [`UNAVAILABLE_NOTICE`].
    Unavailable,
    /// Not started before shutdown: they read [`RESTARTING_NOTICE`].
    ShuttingDown,
}

/// What every conversation actor shares (one allocation, so an idle actor stays small).
pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    pub agent: Arc<dyn Agent>,
    pub persistence: PersistenceHandle,
    pub clock: Arc<dyn Clock>,
    pub settings: ConversationSettings,
}

/// The span of one message's turn: who (`user_id`), which message (`inbound_id`: the id the
/// edge gave it, derived from the Telegram update id or the API's idempotency key), through
/// which edge (`channel`) and what kind (`kind`: text, photo, ...; never the content).
///
/// Its level is ERROR so that it is enabled whatever the log level: a span below the filter's
/// level is disabled, and its fields would be missing from the warnings logged inside it.
pub(crate) fn turn_span(inbound: &Inbound) -> tracing::Span {
    tracing::error_span!(
        "turn",
        user_id = %inbound.user,
        inbound_id = %inbound.id,
        channel = inbound.channel(),
        kind = inbound.content.kind(),
    )
}
