//! Metric names of the actor core, each defined once.
//!
//! The core records through the `metrics` facade; the application installs the Prometheus
//! recorder and calls [`describe`] once so `/metrics` carries help texts. Names follow Prometheus
//! conventions: counters end in `_total`, durations are in seconds.

/// Counter, label `kind` (text, photo, command, button, location): messages accepted from people.
pub const INBOUND_MESSAGES_TOTAL: &str = "health_inbound_messages_total";
/// Counter, label `reason` (busy, unavailable, shutting_down): messages answered without a turn.
pub const INBOUND_REJECTED_TOTAL: &str = "health_inbound_rejected_total";
/// Histogram (seconds): from acceptance of a message to the end of its turn.
pub const REPLY_LATENCY_SECONDS: &str = "health_reply_latency_seconds";
/// Gauge: conversation actors alive now.
pub const CONVERSATION_ACTORS_ACTIVE: &str = "health_conversation_actors_active";
/// Counter: conversation actors restarted after a failure.
pub const CONVERSATION_RESTARTS_TOTAL: &str = "health_conversation_restarts_total";
/// Counter: users put in cool-off after too many restarts.
pub const CONVERSATION_COOL_OFFS_TOTAL: &str = "health_conversation_cool_offs_total";
/// Counter: conversation actors stopped because they were idle.
pub const CONVERSATION_PASSIVATIONS_TOTAL: &str = "health_conversation_passivations_total";
/// Histogram: messages waiting in a person's mailbox when a new one arrives.
pub const CONVERSATION_MAILBOX_DEPTH: &str = "health_conversation_mailbox_depth";
/// Counter: messages recorded as dead letters.
pub const DEAD_LETTERS_TOTAL: &str = "health_dead_letters_total";
/// Counter, label `error`: outbox calls that failed (answers and edits; not "typing...").
pub const OUTBOX_ERRORS_TOTAL: &str = "health_outbox_errors_total";
/// Counter, label `error`: "typing..." notices that could not be shown (harmless to the person,
/// so apart from [`OUTBOX_ERRORS_TOTAL`]).
pub const TYPING_FAILURES_TOTAL: &str = "health_typing_failures_total";
/// Counter: food entries committed to the store (every channel: Telegram, the API, the terminal).
pub const MEALS_SAVED_TOTAL: &str = "health_meals_saved_total";
/// Histogram (rows): size of each batch written by the persistence actor.
pub const PERSISTENCE_BATCH_ROWS: &str = "health_persistence_batch_rows";
/// Histogram (seconds): duration of each batch commit (one `Store::apply`).
pub const PERSISTENCE_FLUSH_SECONDS: &str = "health_persistence_flush_seconds";
/// Gauge (rows): writes accepted and not yet committed.
pub const PERSISTENCE_QUEUE_ROWS: &str = "health_persistence_queue_rows";
/// Counter: batch commits retried after a transient store failure.
pub const PERSISTENCE_RETRIES_TOTAL: &str = "health_persistence_write_retries_total";
/// Counter, label `reason` (rejected, abandoned): rows that could not be written.
pub const PERSISTENCE_FAILED_ROWS_TOTAL: &str = "health_persistence_failed_rows_total";

/// Gauge: inbox entries not done yet.
pub const INBOX_PENDING: &str = "health_inbox_pending";
/// Gauge (seconds): age of the oldest inbox entry not done yet (0 when none waits).
pub const INBOX_OLDEST_AGE_SECONDS: &str = "health_inbox_oldest_age_seconds";
/// Counter, label `source`: messages accepted into the inbox.
pub const INBOX_ACCEPTED_TOTAL: &str = "health_inbox_accepted_total";
/// Counter, label `source`: redelivered messages ignored because the inbox already had them.
pub const INBOX_DUPLICATES_TOTAL: &str = "health_inbox_duplicates_total";
/// Counter, label `source`: entries handled again after a restart.
pub const INBOX_REPLAYED_TOTAL: &str = "health_inbox_replayed_total";
/// Counter: done entries deleted after the retention period.
pub const INBOX_PRUNED_TOTAL: &str = "health_inbox_pruned_total";
/// Registers units and help texts with the installed recorder. Call once after installing it.
/// Vision agent calls by `agent` and `status` (answered, no_food, timeout, invalid, unavailable).
pub const VISION_AGENT_CALLS_TOTAL: &str = "health_vision_agent_calls_total";
/// Vision agent latency by `agent`.
pub const VISION_AGENT_SECONDS: &str = "health_vision_agent_seconds";
/// Vision agents restarted by the coordinator, by `agent`.
pub const VISION_AGENT_RESTARTS_TOTAL: &str = "health_vision_agent_restarts_total";

pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        INBOUND_MESSAGES_TOTAL,
        "Messages accepted from people, by kind"
    );
    describe_counter!(
        INBOUND_REJECTED_TOTAL,
        "Messages answered without a turn, by reason"
    );
    describe_histogram!(
        REPLY_LATENCY_SECONDS,
        Unit::Seconds,
        "From acceptance of a message to the end of its turn"
    );
    describe_gauge!(CONVERSATION_ACTORS_ACTIVE, "Conversation actors alive");
    describe_counter!(
        CONVERSATION_RESTARTS_TOTAL,
        "Conversation actors restarted after a failure"
    );
    describe_counter!(
        CONVERSATION_COOL_OFFS_TOTAL,
        "Users put in cool-off after repeated failures"
    );
    describe_counter!(
        CONVERSATION_PASSIVATIONS_TOTAL,
        "Conversation actors stopped when idle"
    );
    describe_histogram!(
        CONVERSATION_MAILBOX_DEPTH,
        Unit::Count,
        "Messages already waiting for the person when a new one arrives"
    );
    describe_counter!(DEAD_LETTERS_TOTAL, "Messages whose handling failed");
    describe_gauge!(INBOX_PENDING, Unit::Count, "Inbox entries not handled yet");
    describe_gauge!(
        INBOX_OLDEST_AGE_SECONDS,
        Unit::Seconds,
        "Age of the oldest inbox entry not handled yet"
    );
    describe_counter!(
        INBOX_ACCEPTED_TOTAL,
        "Messages kept in the inbox, by source"
    );
    describe_counter!(
        INBOX_DUPLICATES_TOTAL,
        "Redelivered messages ignored because the inbox had them, by source"
    );
    describe_counter!(
        INBOX_REPLAYED_TOTAL,
        "Inbox entries handled again after a restart, by source"
    );
    describe_counter!(
        INBOX_PRUNED_TOTAL,
        "Handled inbox entries deleted after retention"
    );
    describe_counter!(
        OUTBOX_ERRORS_TOTAL,
        "Answers and edits that could not be delivered, by error"
    );
    describe_counter!(
        TYPING_FAILURES_TOTAL,
        "Typing notices that could not be shown, by error"
    );
    describe_counter!(MEALS_SAVED_TOTAL, "Food entries committed to the store");
    describe_histogram!(
        PERSISTENCE_BATCH_ROWS,
        Unit::Count,
        "Rows per committed batch"
    );
    describe_histogram!(
        PERSISTENCE_FLUSH_SECONDS,
        Unit::Seconds,
        "Duration of one batch commit"
    );
    describe_gauge!(
        PERSISTENCE_QUEUE_ROWS,
        Unit::Count,
        "Rows accepted and not yet committed"
    );
    describe_counter!(
        PERSISTENCE_RETRIES_TOTAL,
        "Batch commits retried after a transient failure"
    );
    describe_counter!(
        PERSISTENCE_FAILED_ROWS_TOTAL,
        "Rows that could not be written, by reason"
    );
    describe_counter!(
        VISION_AGENT_CALLS_TOTAL,
        "Vision agent calls, by agent and status"
    );
    describe_histogram!(
        VISION_AGENT_SECONDS,
        "Vision agent latency in seconds, by agent"
    );
    describe_counter!(
        VISION_AGENT_RESTARTS_TOTAL,
        "Vision agents restarted by the coordinator, by agent"
    );
}
