//! Ports: the traits the core needs from the outside world, implemented by the edges in `src/`.
//!
//! The core never talks to a database, a model provider or Telegram directly; it talks to these.
//! Tests of the core use in-process fakes; the edges are tested against real PostgreSQL and fake
//! HTTP servers on loopback.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::domain::{
    Achievement, ChatId, ConversationMessage, DeadLetter, FoodEntry, Memory, MessageId, Reminder,
    ScoredMemory, Streak, User, UserId, VisionEstimate, WeightLog, XpEvent,
};

/// Why the store could not do what was asked. Callers branch on `Unavailable` (retry later) versus
/// the rest (a bug or bad data: retrying will not help).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or dropped the connection; the same call may work later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A row broke a constraint or the data could not be encoded.
    #[error("the database refused the data: {0}")]
    Rejected(String),
    /// Anything else the database reported.
    #[error("database error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether trying the same operation again later can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// One write. Writes reach the store in batches (see [`Store::apply`]); every write is idempotent
/// on its id, so applying the same batch twice leaves the same rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Insert the user, or replace profile, goals and time zone of an existing one.
    UpsertUser(User),
    InsertFoodEntry(FoodEntry),
    /// Replace the items and totals of an existing entry (a correction).
    UpdateFoodEntry(FoodEntry),
    DeleteFoodEntry {
        user_id: UserId,
        id: Uuid,
    },
    AppendMessage(ConversationMessage),
    InsertMemory(Memory),
    DeleteMemory {
        user_id: UserId,
        id: Uuid,
    },
    InsertWeight(WeightLog),
    UpsertReminder(Reminder),
    DeleteReminder {
        user_id: UserId,
        id: Uuid,
    },
    InsertXp(XpEvent),
    UpsertStreak(Streak),
    /// Recorded once per (user, code); a second insert is ignored.
    InsertAchievement(Achievement),
    InsertDeadLetter(DeadLetter),
    /// A turn starts handling inbox entry `id`: one more attempt is counted (see
    /// [`crate::inbox`]), committed before the turn does anything. Ignored once it is done.
    InboxStarted {
        id: Uuid,
    },
    /// The `step`-th effect write of the turn handling inbox entry `id` is in this transaction
    /// (see [`crate::inbox`]): a replay of the entry skips the writes up to it. `kept` says, in
    /// the person's words, what the step saved ("101 g of rice (130 kcal)"; empty for effects
    /// the person does not name); it is added to the entry's [`InboxEntry::kept`] the first
    /// time the step is recorded.
    InboxStep {
        id: Uuid,
        step: u32,
        kept: Vec<String>,
    },
    /// The inbox entry `id` is handled (how: [`InboxOutcome`]) with what was said to the
    /// person; a done entry is never replayed.
    InboxDone {
        id: Uuid,
        outcome: InboxOutcome,
        replies: Vec<String>,
        at: DateTime<Utc>,
    },
}

impl Write {
    /// A short name for metrics and logs (never the contents).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UpsertUser(_) => "upsert_user",
            Self::InsertFoodEntry(_) => "insert_food_entry",
            Self::UpdateFoodEntry(_) => "update_food_entry",
            Self::DeleteFoodEntry { .. } => "delete_food_entry",
            Self::AppendMessage(_) => "append_message",
            Self::InsertMemory(_) => "insert_memory",
            Self::DeleteMemory { .. } => "delete_memory",
            Self::InsertWeight(_) => "insert_weight",
            Self::UpsertReminder(_) => "upsert_reminder",
            Self::DeleteReminder { .. } => "delete_reminder",
            Self::InsertXp(_) => "insert_xp",
            Self::UpsertStreak(_) => "upsert_streak",
            Self::InsertAchievement(_) => "insert_achievement",
            Self::InsertDeadLetter(_) => "insert_dead_letter",
            Self::InboxStarted { .. } => "inbox_started",
            Self::InboxStep { .. } => "inbox_step",
            Self::InboxDone { .. } => "inbox_done",
        }
    }
}

/// A snapshot of a connection pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// The most connections the pool opens.
    pub max: usize,
    /// Connections open now.
    pub open: usize,
    /// Open connections not in use.
    pub idle: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// What the product keeps. Reads are direct; all writes go through [`Store::apply`] so that the
/// persistence actor can batch them into one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A cheap round trip to the database, for `/health`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// A short description of the backend for logs and `/health` ("postgres+pgvector", ...).
    fn backend(&self) -> &'static str;

    /// Connection pool usage, for `/metrics`; `None` for stores without a pool.
    fn pool_usage(&self) -> Option<PoolUsage> {
        None
    }

    /// Applies the writes in order, in one transaction: all of them or none.
    async fn apply(&self, batch: &[Write]) -> Result<(), StoreError>;

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// Deletes the person and everything stored about them. Returns whether they existed.
    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError>;

    async fn food_entry(&self, user: UserId, id: Uuid) -> Result<Option<FoodEntry>, StoreError>;

    /// Entries whose local date is in `from..=to`, oldest first.
    async fn food_entries(
        &self,
        user: UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FoodEntry>, StoreError>;

    /// The most recently created entry, for "undo".
    async fn last_food_entry(&self, user: UserId) -> Result<Option<FoodEntry>, StoreError>;

    /// The last `limit` messages, oldest first.
    async fn recent_messages(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<ConversationMessage>, StoreError>;

    /// All of the person's memories, oldest first.
    async fn memories(&self, user: UserId) -> Result<Vec<Memory>, StoreError>;

    /// The `limit` memories most similar (cosine) to `query`, among those made by `embedder`;
    /// best first.
    async fn search_memories(
        &self,
        user: UserId,
        embedder: &str,
        query: &[f32],
        limit: usize,
    ) -> Result<Vec<ScoredMemory>, StoreError>;

    /// Weight logs in `from..to` (UTC), oldest first.
    async fn weights(
        &self,
        user: UserId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<WeightLog>, StoreError>;

    async fn reminders(&self, user: UserId) -> Result<Vec<Reminder>, StoreError>;

    /// Active reminders of every user due at or before `at`, soonest first.
    async fn due_reminders(
        &self,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Reminder>, StoreError>;

    async fn xp_events(&self, user: UserId) -> Result<Vec<XpEvent>, StoreError>;

    async fn streaks(&self, user: UserId) -> Result<Vec<Streak>, StoreError>;

    async fn achievements(&self, user: UserId) -> Result<Vec<Achievement>, StoreError>;

    /// The newest dead letters, newest first.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;

    /// A food-database answer cached for `(source, query)` (e.g. `("usda", "avocado")`).
    async fn cached_food(
        &self,
        source: &str,
        query: &str,
    ) -> Result<Option<CachedFood>, StoreError>;

    /// Caches an answer, replacing an older one for the same key. A cache is not the person's
    /// data, so it is written directly rather than through the persistence actor's batches.
    async fn cache_food(&self, entry: CachedFood) -> Result<(), StoreError>;

    /// Keeps a per-user key of the HTTP API, as its SHA-256 hash (never the key itself). Written
    /// directly: the key is shown to the caller only after this returns. Stores that keep no keys
    /// refuse.
    async fn insert_api_key(&self, key: ApiKey) -> Result<(), StoreError> {
        let _ = key;
        Err(StoreError::Rejected(
            "this store does not keep API keys".into(),
        ))
    }

    /// The user of the key with this SHA-256 hash, if such a key exists.
    async fn api_key_user(&self, hash: &str) -> Result<Option<UserId>, StoreError> {
        let _ = hash;
        Ok(None)
    }

    /// Inserts or replaces (on entry, item and agent) what the vision agents estimated for the
    /// items of a photo entry, and later the person's correction of them. Written directly, not
    /// through the persistence actor: it is learning data beside the entry (the entry itself is
    /// committed first), and losing it costs only calibration. Stores that keep none refuse.
    async fn save_vision_estimates(&self, estimates: &[VisionEstimate]) -> Result<(), StoreError> {
        let _ = estimates;
        Err(StoreError::Rejected(
            "this store does not keep vision estimates".into(),
        ))
    }

    /// What the vision agents estimated for the items of one entry of the person.
    async fn vision_estimates(
        &self,
        user: UserId,
        entry_id: Uuid,
    ) -> Result<Vec<VisionEstimate>, StoreError> {
        let _ = (user, entry_id);
        Ok(Vec::new())
    }

    /// The person's `limit` most recently corrected vision estimates, newest first: the track
    /// record each agent is calibrated from.
    async fn corrected_vision_estimates(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<VisionEstimate>, StoreError> {
        let _ = (user, limit);
        Ok(Vec::new())
    }
    /// Keeps `entries` in the inbox, in one transaction and in this order; an entry whose id is
    /// already there (a redelivery) is left as it is. Returns, per entry, whether it was new.
    /// Written directly, not through the persistence actor: the edge acknowledges the messages
    /// to their sender only after this returns. Stores without an inbox refuse.
    async fn inbox_accept(&self, entries: &[InboxEntry]) -> Result<Vec<bool>, StoreError> {
        let _ = entries;
        Err(StoreError::Rejected("this store keeps no inbox".into()))
    }

    /// Entries of `source` not done yet, in the order they were accepted (at most `limit`).
    async fn inbox_pending(
        &self,
        source: &str,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let _ = (source, limit);
        Ok(Vec::new())
    }

    /// One entry, done or not.
    async fn inbox_entry(&self, id: Uuid) -> Result<Option<InboxRecord>, StoreError> {
        let _ = id;
        Ok(None)
    }

    /// The entries of `ids` that exist, done or not, in no particular order. A networked store
    /// answers in one round trip; the default asks for each in turn.
    async fn inbox_entries(&self, ids: &[Uuid]) -> Result<Vec<InboxRecord>, StoreError> {
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            records.extend(self.inbox_entry(*id).await?);
        }
        Ok(records)
    }

    /// Before a replay hands `ids` over: the entries of `ids` not done, with the number of
    /// steps committed for each. Counts no attempt (a turn counts its own when it starts, with
    /// [`Write::InboxStarted`]): an entry replayed and never started is never a dead letter.
    ///
    /// The count is read after any write still in flight on the entry has ended: a process
    /// killed while its step's COMMIT was on the wire may have that step land after this
    /// process looked at the entry, and a replay reading a stale count would apply the step
    /// twice. An id missing from the answer was finished meanwhile (or is unknown), and must
    /// not be handled again.
    async fn inbox_resume(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, u32)>, StoreError> {
        let _ = ids;
        Ok(Vec::new())
    }

    /// Entries not done, and when the oldest of them was received.
    async fn inbox_backlog(&self) -> Result<InboxBacklog, StoreError> {
        Ok(InboxBacklog::default())
    }

    /// Deletes entries done before `before`; returns how many.
    async fn inbox_prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let _ = before;
        Ok(0)
    }
}

/// A message accepted from an edge and not yet known to be handled: what survives a crash.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEntry {
    /// The message's id ([`crate::inbound::Inbound::id`]): derived from the edge's own key
    /// (Telegram's update id, an `Idempotency-Key`), so a redelivery has the same id.
    pub id: Uuid,
    /// The edge it came through ("telegram", "api", "chat"); replies of a replay go there.
    pub source: String,
    pub user_id: UserId,
    pub chat: i64,
    /// [`crate::inbound::InboundContent::to_stored`].
    pub content: serde_json::Value,
    /// A photo's bytes, kept beside the content.
    pub photo: Option<Vec<u8>>,
    pub received_at: DateTime<Utc>,
    /// Effect writes of its turn already committed (see [`Write::InboxStep`]).
    pub steps: u32,
    /// What those steps saved, in the person's words, in the order they were committed.
    pub kept: Vec<String>,
    /// Times a turn started handling it ([`Write::InboxStarted`]).
    pub attempts: u32,
}

/// An inbox entry with its end, if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRecord {
    pub entry: InboxEntry,
    pub done_at: Option<DateTime<Utc>>,
    pub outcome: Option<InboxOutcome>,
    pub replies: Vec<String>,
}

/// How an inbox entry ended. Stored as [`InboxOutcome::as_str`] in the inbox's `outcome` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InboxOutcome {
    /// Its turn ran and its replies were sent.
    Answered,
    /// Its turn failed (or it was replayed too often); a dead letter keeps it.
    Failed,
    /// The person's conversation was too busy to take it; they were told.
    Busy,
    /// The service could not take it (the store or the conversations were down); they were told.
    Unavailable,
}

impl InboxOutcome {
    /// The stored name: "answered", "failed", "busy", "unavailable".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Failed => "failed",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
        }
    }

    /// The outcome a stored name stands for; None for any other text.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "answered" => Some(Self::Answered),
            "failed" => Some(Self::Failed),
            "busy" => Some(Self::Busy),
            "unavailable" => Some(Self::Unavailable),
            _ => None,
        }
    }
}

/// What waits in the inbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxBacklog {
    pub pending: u64,
    pub oldest: Option<DateTime<Utc>>,
}

/// A per-user key of the HTTP API. Deleted with its user.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// SHA-256 of the key, lower-case hex.
    pub hash: String,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
}

/// One cached answer of an outside food database.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedFood {
    pub source: String,
    /// The normalised query it answers.
    pub query: String,
    /// The food as the adapter serialises it; `None` records "the database knows no such food".
    pub food: Option<serde_json::Value>,
    pub fetched_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// Messages out and the clock: the ports the actor core uses to answer people and to read time.
// ---------------------------------------------------------------------------------------------

/// A button under a message. `data` comes back as [`crate::inbound::InboundContent::Button`]
/// when the person presses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub label: String,
    pub data: String,
}

/// Where a sent message landed, so it can be edited later (e.g. a confirmation turning into
/// "saved").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SentMessage {
    pub chat: ChatId,
    pub message: MessageId,
}

/// Why a message could not be delivered. An outbox failure is logged and counted by the caller;
/// it never stops an actor.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutboxError {
    #[error("the messaging service did not answer in time")]
    Timeout,
    #[error("the messaging service asked us to wait {0:?} before sending again")]
    RateLimited(std::time::Duration),
    #[error("the person can no longer be reached (the chat is gone or the bot was blocked)")]
    Unreachable,
    #[error("the messaging service refused the message: {0}")]
    Rejected(String),
    #[error("the messaging service is unavailable: {0}")]
    Unavailable(String),
}

impl OutboxError {
    /// A short name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::RateLimited(_) => "rate_limited",
            Self::Unreachable => "unreachable",
            Self::Rejected(_) => "rejected",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// The way back to a person. Each edge implements it (Telegram, the HTTP API that collects the
/// reply of one request, the CLI `chat`); every [`crate::inbound::Inbound`] carries the outbox its
/// answers go to. Implementations bound their own network calls with timeouts.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    async fn send_text(&self, chat: ChatId, text: &str) -> Result<SentMessage, OutboxError>;

    /// Text with rows of buttons under it.
    async fn send_buttons(
        &self,
        chat: ChatId,
        text: &str,
        buttons: &[Vec<Button>],
    ) -> Result<SentMessage, OutboxError>;

    async fn send_photo(
        &self,
        chat: ChatId,
        photo: &[u8],
        caption: Option<&str>,
    ) -> Result<SentMessage, OutboxError>;

    /// A file the person can download (e.g. the CSV of `/export`).
    async fn send_document(
        &self,
        chat: ChatId,
        file_name: &str,
        bytes: &[u8],
        caption: Option<&str>,
    ) -> Result<SentMessage, OutboxError>;

    /// Replaces the text (and the buttons: `None` removes them) of a message sent earlier.
    async fn edit_text(
        &self,
        message: SentMessage,
        text: &str,
        buttons: Option<&[Vec<Button>]>,
    ) -> Result<(), OutboxError>;

    /// Shows "typing..." for a few seconds.
    async fn typing(&self, chat: ChatId) -> Result<(), OutboxError>;
}

/// The current time, injectable so tests control "today" and schedules.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
