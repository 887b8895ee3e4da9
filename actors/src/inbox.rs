//! The inbox: no message an edge accepted is lost or applied twice, whatever happens to the
//! process.
//!
//! An edge keeps every message it accepts in the store **before** it acknowledges it to the
//! sender (Telegram's `getUpdates` offset, the webhook's 200, the HTTP API's answer), in one
//! transaction per batch, keyed by the message id. The id comes from the edge's own key (the
//! Telegram update id, an `Idempotency-Key`), so a redelivery finds its entry and is ignored.
//! Then the message goes to the conversations as a durable [`Inbound`]:
//!
//! - each effect write of its turn is one numbered step, committed with a step marker
//!   ([`crate::ports::Write::InboxStep`]);
//! - the entry is marked done in the same transaction as the history of its turn (or with its
//!   dead letter when it fails);
//! - on start, entries not done are handed over again in the order they were accepted; the
//!   steps already committed are skipped, so a replay never logs a meal twice, and the person
//!   reads the answer again at most once per restart;
//! - an entry whose handling was started [`MAX_ATTEMPTS`] times without finishing (a message
//!   that brings the process down) becomes a dead letter instead of being replayed forever.
//!
//! Done entries are pruned after a retention period: Telegram restarts update ids at a random
//! value after a week without updates, so deduplication never relies on older rows.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;

use crate::conversation::{ConversationsHandle, SubmitError, APOLOGY};
use crate::domain::DeadLetter;
use crate::inbound::{Durable, Inbound};
use crate::metrics as names;
use crate::ports::{InboxEntry, Outbox, Store, StoreError, Write};

/// Messages from Telegram (polling and webhook).
pub const SOURCE_TELEGRAM: &str = "telegram";
/// Messages from `POST /api/v1/chat`.
pub const SOURCE_API: &str = "api";
/// Lines of `health-agent chat`.
pub const SOURCE_CHAT: &str = "chat";

/// Handlings started after restarts before an entry becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 3;
/// Entries read per round of a replay.
const REPLAY_PAGE: usize = 500;
/// How long a hand-over waits, in all, for room in a full intake.
const HAND_OVER_PATIENCE: Duration = Duration::from_secs(120);

/// The inbox of one process: the store that keeps it and the conversations it feeds.
#[derive(Clone)]
pub struct Inbox {
    store: Arc<dyn Store>,
    conversations: ConversationsHandle,
}

impl Inbox {
    pub fn new(store: Arc<dyn Store>, conversations: ConversationsHandle) -> Self {
        Self {
            store,
            conversations,
        }
    }

    /// Keeps `messages` in one transaction and returns the new ones, marked durable, in their
    /// order; redeliveries are dropped and counted. Only after this returns may the edge
    /// acknowledge the messages to their sender.
    pub async fn accept(
        &self,
        source: &str,
        messages: Vec<Inbound>,
    ) -> Result<Vec<Inbound>, StoreError> {
        if messages.is_empty() {
            return Ok(messages);
        }
        let entries: Vec<InboxEntry> = messages.iter().map(|m| m.to_inbox(source)).collect();
        let fresh = self.store.inbox_accept(&entries).await?;
        let mut accepted = Vec::with_capacity(messages.len());
        for (mut message, new) in messages.into_iter().zip(fresh) {
            if new {
                message.durable = Some(Durable::default());
                accepted.push(message);
            } else {
                metrics::counter!(names::INBOX_DUPLICATES_TOTAL, "source" => source.to_owned())
                    .increment(1);
                tracing::info!(inbox_id = %message.id, source, "ignored a message delivered twice");
            }
        }
        metrics::counter!(names::INBOX_ACCEPTED_TOTAL, "source" => source.to_owned())
            .increment(accepted.len() as u64);
        Ok(accepted)
    }

    /// Hands an accepted message to the conversations. A full intake is waited out (the message
    /// is safe in the inbox; waiting slows the edge down instead of dropping anything); a
    /// shutdown leaves it in the inbox for the next start.
    pub async fn hand_over(&self, message: Inbound) -> Result<(), SubmitError> {
        let deadline = tokio::time::Instant::now() + HAND_OVER_PATIENCE;
        loop {
            match self.conversations.submit(message.clone()).await {
                Err(SubmitError::Overloaded) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    /// The entries of `source` left from before this start, as messages answered through
    /// `reply`, oldest first, each counted as one more attempt. Entries attempted
    /// [`MAX_ATTEMPTS`] times already, or unreadable, become dead letters (the person reads the
    /// apology) and are not returned.
    pub async fn pending(
        &self,
        source: &str,
        reply: Arc<dyn Outbox>,
    ) -> Result<Vec<Inbound>, StoreError> {
        let mut messages = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let page = self.store.inbox_pending(source, REPLAY_PAGE).await?;
            let page: Vec<InboxEntry> = page.into_iter().filter(|e| seen.insert(e.id)).collect();
            if page.is_empty() {
                break;
            }
            let mut retry = Vec::with_capacity(page.len());
            for entry in page {
                match Inbound::from_inbox(&entry, reply.clone()) {
                    Some(message) if entry.attempts < MAX_ATTEMPTS => {
                        retry.push(entry.id);
                        messages.push(message);
                    }
                    readable => {
                        let reason = if readable.is_some() {
                            format!("handling was started {MAX_ATTEMPTS} times and never finished")
                        } else {
                            "the stored message could not be read back".to_owned()
                        };
                        self.give_up(&entry, &reason, reply.as_ref()).await?;
                    }
                }
            }
            self.store.inbox_attempted(&retry).await?;
        }
        metrics::counter!(names::INBOX_REPLAYED_TOTAL, "source" => source.to_owned())
            .increment(messages.len() as u64);
        if !messages.is_empty() {
            tracing::info!(
                source,
                count = messages.len(),
                "handling messages accepted before the restart"
            );
        }
        Ok(messages)
    }

    /// [`Inbox::pending`], each handed over in order. Returns how many were.
    pub async fn replay(&self, source: &str, reply: Arc<dyn Outbox>) -> Result<usize, ReplayError> {
        let messages = self.pending(source, reply).await?;
        let count = messages.len();
        for message in messages {
            self.hand_over(message).await?;
        }
        Ok(count)
    }

    async fn give_up(
        &self,
        entry: &InboxEntry,
        reason: &str,
        reply: &dyn Outbox,
    ) -> Result<(), StoreError> {
        tracing::error!(inbox_id = %entry.id, user_id = %entry.user_id, reason, "an inbox entry becomes a dead letter");
        metrics::counter!(names::DEAD_LETTERS_TOTAL).increment(1);
        let now = Utc::now();
        let letter = DeadLetter {
            id: uuid::Uuid::new_v5(&entry.id, b"dead-letter"),
            user_id: entry.user_id,
            message: serde_json::json!({
                "inbound_id": entry.id,
                "chat": entry.chat,
                "received_at": entry.received_at,
                "content": entry.content,
            }),
            error: reason.to_owned(),
            created_at: now,
        };
        self.store
            .apply(&[
                Write::InsertDeadLetter(letter),
                Write::InboxDone {
                    id: entry.id,
                    outcome: "failed".into(),
                    replies: vec![APOLOGY.to_owned()],
                    at: now,
                },
            ])
            .await?;
        if let Err(error) = reply
            .send_text(crate::inbound::ChatId(entry.chat), APOLOGY)
            .await
        {
            crate::conversation::agent::count_outbox_error("notice", &error);
        }
        Ok(())
    }

    /// Every `period`: the backlog gauges, and done entries older than `retention` deleted.
    pub fn spawn_maintenance(&self, period: Duration, retention: Duration) -> JoinHandle<()> {
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                maintain(store.as_ref(), retention).await;
            }
        })
    }
}

/// One round of [`Inbox::spawn_maintenance`].
pub async fn maintain(store: &dyn Store, retention: Duration) {
    match store.inbox_backlog().await {
        Ok(backlog) => {
            metrics::gauge!(names::INBOX_PENDING).set(backlog.pending as f64);
            let age = backlog
                .oldest
                .map(|oldest| (Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            metrics::gauge!(names::INBOX_OLDEST_AGE_SECONDS).set(age);
        }
        Err(error) => tracing::warn!(%error, "could not read the inbox backlog"),
    }
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(3));
    match store.inbox_prune(Utc::now() - retention).await {
        Ok(0) => {}
        Ok(pruned) => {
            metrics::counter!(names::INBOX_PRUNED_TOTAL).increment(pruned);
            tracing::debug!(pruned, "pruned handled inbox entries");
        }
        Err(error) => tracing::warn!(%error, "could not prune the inbox"),
    }
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Submit(#[from] SubmitError),
}
