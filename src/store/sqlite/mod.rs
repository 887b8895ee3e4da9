//! The embedded store: SQLite (bundled, no server), the default when no `DATABASE_URL` is set.
//!
//! So that a newcomer can run the service with no setup, and so that the same product works on a
//! laptop. The file lives under `DATA_DIR` (`production/data/health_agent.db`); WAL mode lets the
//! reader connection read while the writer writes; foreign keys are on (deletes cascade from
//! users); a busy timeout makes a second process wait rather than fail.
//!
//! rusqlite is blocking, so every call runs on tokio's blocking pool (`spawn_blocking`) holding
//! one of two connections (writer, reader) behind a mutex: the async runtime is never blocked.
//! Batches are one `BEGIN IMMEDIATE` transaction; memories are ranked in process by cosine
//! ([`super::similarity`]). Its own schema lives in `sql/sqlite/`, with the same ledger
//! (`schema_migrations`) as PostgreSQL.
//!
//! One file per topic of the `Store` port: `users` (people and API keys), `food`, `messages`,
//! `memories`, `progress` (weights, XP, streaks, achievements), `reminders`, `inbox` (with the
//! dead letters), `vision`, `cache` (food lookups) and `migrate`; `codec` converts between
//! SQLite's types and the domain's. This file holds the connections, the `Store` impl (one line
//! per method, delegating to the topic) and the batch apply, whose one `match` hands each write
//! to the topic that owns its kind.

mod cache;
mod codec;
mod food;
mod inbox;
mod memories;
mod messages;
mod migrate;
mod progress;
mod reminders;
mod users;
mod vision;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use health_actors::domain::{
    Achievement, ConversationMessage, DeadLetter, FoodEntry, Memory, Reminder, ScoredMemory,
    Streak, User, UserId, VisionEstimate, WeightLog, XpEvent,
};
use health_actors::ports::{
    ApiKey, CachedFood, InboxBacklog, InboxEntry, InboxRecord, Store, StoreError, Write,
};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, Row, Transaction, TransactionBehavior};
use uuid::Uuid;

use self::codec::micros;
use super::{people_written, validate, MigrationReport};

/// How long a connection waits for another process's write lock before reporting "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite adapter of the `Store` port.
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating the file and its parent folders if needed) and migrates the database.
    pub async fn open(path: &Path) -> Result<(Self, MigrationReport), StoreError> {
        let path = path.to_owned();
        let opened_path = path.clone();
        let (writer, reader, applied) = tokio::task::spawn_blocking(move || {
            if let Some(parent) = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|error| {
                    StoreError::Unavailable(format!(
                        "cannot create the folder {}: {error}",
                        parent.display()
                    ))
                })?;
            }
            let mut writer = connect(&path)?;
            let applied = migrate::run(&mut writer)?;
            let reader = connect(&path)?;
            reader
                .pragma_update(None, "query_only", true)
                .map_err(sqlite_error)?;
            Ok::<_, StoreError>((writer, reader, applied))
        })
        .await
        .map_err(join_error)??;
        tracing::info!(
            path = %opened_path.display(),
            vector_mode = "in_process",
            "embedded database (SQLite) open: memories ranked in process"
        );
        let store = Self {
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
            path: opened_path,
        };
        Ok((
            store,
            MigrationReport {
                applied,
                backend: "sqlite",
            },
        ))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` with the reader connection on the blocking pool.
    pub(super) async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let connection = reader.lock().unwrap_or_else(PoisonError::into_inner);
            work(&connection).map_err(sqlite_error)
        })
        .await
        .map_err(join_error)?
    }

    /// The rows of `sql` (whose one parameter is the person's id), mapped by `map`.
    pub(super) async fn user_rows<T, F>(
        &self,
        sql: String,
        user: UserId,
        map: F,
    ) -> Result<Vec<T>, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Row<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        self.read(move |connection| {
            collect(&mut connection.prepare_cached(&sql)?, params![user.0], map)
        })
        .await
    }

    /// Runs `work` inside one immediate transaction of the writer connection, on the blocking
    /// pool; commits when it returns Ok, rolls back otherwise.
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let writer = Arc::clone(&self.writer);
        tokio::task::spawn_blocking(move || {
            let mut connection = writer.lock().unwrap_or_else(PoisonError::into_inner);
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_error)?;
            let result = work(&transaction)?;
            transaction.commit().map_err(sqlite_error)?;
            Ok(result)
        })
        .await
        .map_err(join_error)?
    }
}

/// Opens one connection with the settings every connection needs.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|error| StoreError::Unavailable(format!("cannot open {}: {error}", path.display())))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(sqlite_error)?;
    let mode = enable_wal(&connection)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(journal_mode = %mode, "SQLite did not switch to WAL mode");
    }
    // FULL: a batch acknowledged as saved survives a power cut, not only a crash.
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(sqlite_error)?;
    connection
        .pragma_update(None, "foreign_keys", true)
        .map_err(sqlite_error)?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

/// Switches the database to WAL mode and returns the mode it is in. SQLite answers "busy" at
/// once, without waiting through the busy timeout, when another connection holds the lock the
/// switch needs (two processes opening a new file at the same moment), so the switch is tried
/// again here until the timeout. Blocking: runs on the blocking pool.
fn enable_wal(connection: &Connection) -> Result<String, StoreError> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match connection.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.code == ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other.map_err(sqlite_error),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|connection| connection.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn apply(&self, batch: &[Write]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        validate(batch)?;
        let batch = batch.to_vec();
        self.write(move |transaction| {
            let now = micros(Utc::now());
            {
                let mut ensure = transaction
                    .prepare_cached(
                        "INSERT INTO users (id, created_at, updated_at) VALUES (?1, ?2, ?2) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .map_err(sqlite_error)?;
                for id in people_written(&batch) {
                    ensure.execute(params![id, now]).map_err(sqlite_error)?;
                }
            }
            for write in &batch {
                apply_one(transaction, write, now)?;
            }
            Ok(())
        })
        .await
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        users::user(self, id).await
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        users::delete_user(self, id).await
    }

    async fn food_entry(&self, user: UserId, id: Uuid) -> Result<Option<FoodEntry>, StoreError> {
        food::food_entry(self, user, id).await
    }

    async fn food_entries(
        &self,
        user: UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FoodEntry>, StoreError> {
        food::food_entries(self, user, from, to).await
    }

    async fn last_food_entry(&self, user: UserId) -> Result<Option<FoodEntry>, StoreError> {
        food::last_food_entry(self, user).await
    }

    async fn recent_messages(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<ConversationMessage>, StoreError> {
        messages::recent_messages(self, user, limit).await
    }

    async fn memories(&self, user: UserId) -> Result<Vec<Memory>, StoreError> {
        memories::memories(self, user).await
    }

    async fn search_memories(
        &self,
        user: UserId,
        embedder: &str,
        query: &[f32],
        limit: usize,
    ) -> Result<Vec<ScoredMemory>, StoreError> {
        memories::search_memories(self, user, embedder, query, limit).await
    }

    async fn weights(
        &self,
        user: UserId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<WeightLog>, StoreError> {
        progress::weights(self, user, from, to).await
    }

    async fn reminders(&self, user: UserId) -> Result<Vec<Reminder>, StoreError> {
        reminders::reminders(self, user).await
    }

    async fn due_reminders(
        &self,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Reminder>, StoreError> {
        reminders::due_reminders(self, at, limit).await
    }

    async fn xp_events(&self, user: UserId) -> Result<Vec<XpEvent>, StoreError> {
        progress::xp_events(self, user).await
    }

    async fn streaks(&self, user: UserId) -> Result<Vec<Streak>, StoreError> {
        progress::streaks(self, user).await
    }

    async fn achievements(&self, user: UserId) -> Result<Vec<Achievement>, StoreError> {
        progress::achievements(self, user).await
    }

    async fn cached_food(
        &self,
        source: &str,
        query: &str,
    ) -> Result<Option<CachedFood>, StoreError> {
        cache::cached_food(self, source, query).await
    }

    async fn cache_food(&self, entry: CachedFood) -> Result<(), StoreError> {
        cache::cache_food(self, entry).await
    }

    async fn insert_api_key(&self, key: ApiKey) -> Result<(), StoreError> {
        users::insert_api_key(self, key).await
    }

    async fn api_key_user(&self, hash: &str) -> Result<Option<UserId>, StoreError> {
        users::api_key_user(self, hash).await
    }

    async fn save_vision_estimates(&self, estimates: &[VisionEstimate]) -> Result<(), StoreError> {
        vision::save_vision_estimates(self, estimates).await
    }

    async fn vision_estimates(
        &self,
        user: UserId,
        entry_id: Uuid,
    ) -> Result<Vec<VisionEstimate>, StoreError> {
        vision::vision_estimates(self, user, entry_id).await
    }

    async fn corrected_vision_estimates(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<VisionEstimate>, StoreError> {
        vision::corrected_vision_estimates(self, user, limit).await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        inbox::dead_letters(self, limit).await
    }

    async fn inbox_accept(&self, entries: &[InboxEntry]) -> Result<Vec<bool>, StoreError> {
        inbox::inbox_accept(self, entries).await
    }

    async fn inbox_pending(
        &self,
        source: &str,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        inbox::inbox_pending(self, source, limit).await
    }

    async fn inbox_entry(&self, id: Uuid) -> Result<Option<InboxRecord>, StoreError> {
        inbox::inbox_entry(self, id).await
    }

    async fn inbox_resume(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, u32)>, StoreError> {
        inbox::inbox_resume(self, ids).await
    }

    async fn inbox_backlog(&self) -> Result<InboxBacklog, StoreError> {
        inbox::inbox_backlog(self).await
    }

    async fn inbox_prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        inbox::inbox_prune(self, before).await
    }
}

/// Applies one write inside the batch's transaction, by the topic that owns its kind.
fn apply_one(transaction: &Transaction<'_>, write: &Write, now: i64) -> Result<(), StoreError> {
    match write {
        Write::UpsertUser(user) => users::upsert(transaction, user),
        Write::InsertFoodEntry(entry) => food::insert(transaction, entry, now),
        Write::UpdateFoodEntry(entry) => food::update(transaction, entry, now),
        Write::DeleteFoodEntry { user_id, id } => food::delete(transaction, user_id, id),
        Write::AppendMessage(message) => messages::append(transaction, message),
        Write::InsertMemory(memory) => memories::insert(transaction, memory),
        Write::DeleteMemory { user_id, id } => memories::delete(transaction, user_id, id),
        Write::InsertWeight(weight) => progress::insert_weight(transaction, weight),
        Write::UpsertReminder(reminder) => reminders::upsert(transaction, reminder, now),
        Write::DeleteReminder { user_id, id } => reminders::delete(transaction, user_id, id),
        Write::InsertXp(event) => progress::insert_xp(transaction, event),
        Write::UpsertStreak(streak) => progress::upsert_streak(transaction, streak, now),
        Write::InsertAchievement(achievement) => {
            progress::insert_achievement(transaction, achievement)
        }
        Write::InsertDeadLetter(letter) => inbox::insert_dead_letter(transaction, letter),
        Write::InboxStarted { id } => inbox::started(transaction, id),
        Write::InboxStep { id, step, kept } => inbox::step(transaction, id, step, kept),
        Write::InboxDone {
            id,
            outcome,
            replies,
            at,
        } => inbox::done(transaction, id, outcome, replies, at),
    }
}

/// Runs one statement (prepared once per connection) inside the batch's transaction.
fn run(
    transaction: &Transaction<'_>,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<(), StoreError> {
    transaction
        .prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map(drop)
        .map_err(sqlite_error)
}

/// Runs a query and maps every row, inside the blocking closure.
pub(super) fn collect<T>(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: &[&dyn rusqlite::ToSql],
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    statement.query_map(params, map)?.collect()
}

/// Classifies a SQLite error: busy/locked/I/O can pass (`Unavailable`), constraints and
/// conversions refuse the data (`Rejected`).
pub(super) fn sqlite_error(error: rusqlite::Error) -> StoreError {
    let message = error.to_string();
    match &error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch => {
                StoreError::Rejected(message)
            }
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::OutOfMemory => StoreError::Unavailable(message),
            _ => StoreError::Other(message),
        },
        rusqlite::Error::ToSqlConversionFailure(_) => StoreError::Rejected(message),
        _ => StoreError::Other(message),
    }
}

fn join_error(error: tokio::task::JoinError) -> StoreError {
    StoreError::Other(format!("the database task did not finish: {error}"))
}
