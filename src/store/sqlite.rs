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

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use health_actors::domain::{
    Achievement, ConversationMessage, DeadLetter, FoodEntry, MealType, Memory, Nutrients, Reminder,
    Role, ScoredMemory, Streak, User, UserId, VisionEstimate, WeightLog, XpEvent,
};
use health_actors::ports::{
    ApiKey, CachedFood, InboxBacklog, InboxEntry, InboxOutcome, InboxRecord, Store, StoreError,
    Write,
};
use rusqlite::{
    params, Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior,
};
use uuid::Uuid;

use super::similarity::rank_by_cosine;
use super::{people_written, sql_limit, validate, Migration, MigrationReport};

/// The schema, in order. A unit test checks this list against `sql/sqlite/`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_initial",
        sql: include_str!("../../sql/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "0002_food_cache",
        sql: include_str!("../../sql/sqlite/0002_food_cache.sql"),
    },
    Migration {
        version: 3,
        name: "0003_api_keys",
        sql: include_str!("../../sql/sqlite/0003_api_keys.sql"),
    },
    Migration {
        version: 4,
        name: "0004_inbox",
        sql: include_str!("../../sql/sqlite/0004_inbox.sql"),
    },
    Migration {
        version: 5,
        name: "0005_vision_estimates",
        sql: include_str!("../../sql/sqlite/0005_vision_estimates.sql"),
    },
];

const LEDGER_SQL: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)";

/// How long a connection waits for another process's write lock before reporting "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const UPSERT_USER: &str = include_str!("../../sql/queries/sqlite/upsert_user.sql");
const INSERT_FOOD_ENTRY: &str = include_str!("../../sql/queries/sqlite/insert_food_entry.sql");
const UPDATE_FOOD_ENTRY: &str = include_str!("../../sql/queries/sqlite/update_food_entry.sql");
const FOOD_ENTRY_COLUMNS: &str =
    include_str!("../../sql/queries/sqlite/select_food_entry_columns.sql");
const RECENT_MESSAGES: &str = include_str!("../../sql/queries/sqlite/recent_messages.sql");
const UPSERT_REMINDER: &str = include_str!("../../sql/queries/sqlite/upsert_reminder.sql");
const UPSERT_STREAK: &str = include_str!("../../sql/queries/sqlite/upsert_streak.sql");
const DUE_REMINDERS: &str = include_str!("../../sql/queries/sqlite/due_reminders.sql");

const MEMORY_COLUMNS: &str =
    "SELECT id, user_id, content, embedding, embedder, created_at FROM memories";
const REMINDER_COLUMNS: &str =
    "SELECT id, user_id, text, schedule, next_fire_at, active, created_at FROM reminders";

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
            let applied = run_migrations(&mut writer)?;
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
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
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
    async fn user_rows<T, F>(&self, sql: String, user: UserId, map: F) -> Result<Vec<T>, StoreError>
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
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
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

/// Applies each pending migration in its own immediate transaction (which also keeps a second
/// process out until it commits) and records it in the ledger.
fn run_migrations(connection: &mut Connection) -> Result<Vec<String>, StoreError> {
    let mut applied = Vec::new();
    for migration in MIGRATIONS {
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error)?;
        transaction
            .execute_batch(LEDGER_SQL)
            .map_err(sqlite_error)?;
        let done = transaction
            .query_row(
                "SELECT 1 FROM schema_migrations WHERE version = ?1",
                [migration.version],
                |_| Ok(()),
            )
            .optional()
            .map_err(sqlite_error)?
            .is_some();
        if !done {
            transaction
                .execute_batch(migration.sql)
                .map_err(sqlite_error)?;
            transaction
                .execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                    params![migration.version, migration.name, micros(Utc::now())],
                )
                .map_err(sqlite_error)?;
            applied.push(migration.name.to_owned());
        }
        transaction.commit().map_err(sqlite_error)?;
        if !done {
            tracing::info!(migration = migration.name, "embedded migration applied");
        }
    }
    Ok(applied)
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
        let row = self
            .read(move |connection| {
                connection
                    .prepare_cached(
                        "SELECT id, profile, goals, timezone, created_at, updated_at \
                         FROM users WHERE id = ?1",
                    )?
                    .query_row([id.0], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, i64>(4)?,
                            row.get::<_, i64>(5)?,
                        ))
                    })
                    .optional()
            })
            .await?;
        row.map(|(id, profile, goals, timezone, created_at, updated_at)| {
            Ok(User {
                id: UserId(id),
                profile: from_json(&profile)?,
                goals: from_json(&goals)?,
                timezone,
                created_at: time(created_at)?,
                updated_at: time(updated_at)?,
            })
        })
        .transpose()
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        self.write(move |transaction| {
            transaction
                .execute("DELETE FROM dead_letters WHERE user_id = ?1", [id.0])
                .map_err(sqlite_error)?;
            transaction
                .execute("DELETE FROM inbox WHERE user_id = ?1", [id.0])
                .map_err(sqlite_error)?;
            // Every other table cascades from users.
            let deleted = transaction
                .execute("DELETE FROM users WHERE id = ?1", [id.0])
                .map_err(sqlite_error)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn food_entry(&self, user: UserId, id: Uuid) -> Result<Option<FoodEntry>, StoreError> {
        let sql = format!("{FOOD_ENTRY_COLUMNS} WHERE user_id = ?1 AND id = ?2");
        let rows = self
            .read(move |connection| {
                collect(
                    &mut connection.prepare_cached(&sql)?,
                    params![user.0, id.to_string()],
                    food_row,
                )
            })
            .await?;
        rows.into_iter().next().map(FoodRow::into_entry).transpose()
    }

    async fn food_entries(
        &self,
        user: UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FoodEntry>, StoreError> {
        let sql = format!(
            "{FOOD_ENTRY_COLUMNS} WHERE user_id = ?1 AND local_date BETWEEN ?2 AND ?3 \
             ORDER BY eaten_at, rowid"
        );
        let rows = self
            .read(move |connection| {
                collect(
                    &mut connection.prepare_cached(&sql)?,
                    params![user.0, from.to_string(), to.to_string()],
                    food_row,
                )
            })
            .await?;
        rows.into_iter().map(FoodRow::into_entry).collect()
    }

    async fn last_food_entry(&self, user: UserId) -> Result<Option<FoodEntry>, StoreError> {
        let sql = format!(
            "{FOOD_ENTRY_COLUMNS} WHERE user_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1"
        );
        let rows = self.user_rows(sql, user, food_row).await?;
        rows.into_iter().next().map(FoodRow::into_entry).transpose()
    }

    async fn recent_messages(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<ConversationMessage>, StoreError> {
        let rows = self
            .read(move |connection| {
                collect(
                    &mut connection.prepare_cached(RECENT_MESSAGES)?,
                    params![user.0, sql_limit(limit)],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, i64>(4)?,
                        ))
                    },
                )
            })
            .await?;
        rows.into_iter()
            .map(|(id, user_id, role, content, created_at)| {
                Ok(ConversationMessage {
                    id: uuid(&id)?,
                    user_id: UserId(user_id),
                    role: Role::parse(&role).ok_or_else(|| {
                        StoreError::Other(format!("unknown stored role {role:?}"))
                    })?,
                    content,
                    created_at: time(created_at)?,
                })
            })
            .collect()
    }

    async fn memories(&self, user: UserId) -> Result<Vec<Memory>, StoreError> {
        let sql = format!("{MEMORY_COLUMNS} WHERE user_id = ?1 ORDER BY created_at, id");
        let rows = self.user_rows(sql, user, memory_row).await?;
        rows.into_iter().map(MemoryRow::into_memory).collect()
    }

    async fn search_memories(
        &self,
        user: UserId,
        embedder: &str,
        query: &[f32],
        limit: usize,
    ) -> Result<Vec<ScoredMemory>, StoreError> {
        if !super::similarity::searchable(query, limit)? {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{MEMORY_COLUMNS} WHERE user_id = ?1 AND embedder = ?2 AND dims = ?3 \
             ORDER BY created_at, id"
        );
        let embedder = embedder.to_owned();
        let dims = sql_limit(query.len());
        let rows = self
            .read(move |connection| {
                collect(
                    &mut connection.prepare_cached(&sql)?,
                    params![user.0, embedder, dims],
                    memory_row,
                )
            })
            .await?;
        let memories = rows
            .into_iter()
            .map(MemoryRow::into_memory)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rank_by_cosine(memories, query, limit))
    }

    async fn weights(
        &self,
        user: UserId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<WeightLog>, StoreError> {
        let rows = self
            .read(move |connection| {
                collect(
                    &mut connection.prepare_cached(
                        "SELECT id, user_id, kg, logged_at FROM weight_logs \
                         WHERE user_id = ?1 AND logged_at >= ?2 AND logged_at < ?3 \
                         ORDER BY logged_at, id",
                    )?,
                    params![user.0, micros(from), micros(to)],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, f64>(2)?,
                            row.get::<_, i64>(3)?,
                        ))
                    },
                )
            })
            .await?;
        rows.into_iter()
            .map(|(id, user_id, kg, logged_at)| {
                Ok(WeightLog {
                    id: uuid(&id)?,
                    user_id: UserId(user_id),
                    kg,
                    logged_at: time(logged_at)?,
                })
            })
            .collect()
    }

    async fn reminders(&self, user: UserId) -> Result<Vec<Reminder>, StoreError> {
        let sql = format!("{REMINDER_COLUMNS} WHERE user_id = ?1 ORDER BY created_at, id");
        let rows = self.user_rows(sql, user, reminder_row).await?;
        rows.into_iter().map(ReminderRow::into_reminder).collect()
    }

    async fn due_reminders(
        &self,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Reminder>, StoreError> {
        let rows = self
            .read(move |connection| {
                collect(
                    &mut connection.prepare_cached(DUE_REMINDERS)?,
                    params![micros(at), sql_limit(limit)],
                    reminder_row,
                )
            })
            .await?;
        rows.into_iter().map(ReminderRow::into_reminder).collect()
    }

    async fn xp_events(&self, user: UserId) -> Result<Vec<XpEvent>, StoreError> {
        let rows = self
            .user_rows(
                "SELECT id, user_id, amount, reason, created_at FROM xp_events \
                         WHERE user_id = ?1 ORDER BY created_at, id"
                    .to_owned(),
                user,
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                },
            )
            .await?;
        rows.into_iter()
            .map(|(id, user_id, amount, reason, created_at)| {
                Ok(XpEvent {
                    id: uuid(&id)?,
                    user_id: UserId(user_id),
                    amount,
                    reason,
                    created_at: time(created_at)?,
                })
            })
            .collect()
    }

    async fn streaks(&self, user: UserId) -> Result<Vec<Streak>, StoreError> {
        let rows = self
            .user_rows(
                "SELECT user_id, domain, current, best, last_date, freezes_left \
                         FROM streaks WHERE user_id = ?1 ORDER BY domain"
                    .to_owned(),
                user,
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, Option<String>>(4)?,
                        row.get::<_, i64>(5)?,
                    ))
                },
            )
            .await?;
        rows.into_iter()
            .map(
                |(user_id, domain, current, best, last_date, freezes_left)| {
                    Ok(Streak {
                        user_id: UserId(user_id),
                        domain,
                        current: count(current)?,
                        best: count(best)?,
                        last_date: last_date.as_deref().map(date).transpose()?,
                        freezes_left: count(freezes_left)?,
                    })
                },
            )
            .collect()
    }

    async fn achievements(&self, user: UserId) -> Result<Vec<Achievement>, StoreError> {
        let rows = self
            .user_rows(
                "SELECT user_id, code, earned_at FROM achievements \
                         WHERE user_id = ?1 ORDER BY earned_at, code"
                    .to_owned(),
                user,
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                },
            )
            .await?;
        rows.into_iter()
            .map(|(user_id, code, earned_at)| {
                Ok(Achievement {
                    user_id: UserId(user_id),
                    code,
                    earned_at: time(earned_at)?,
                })
            })
            .collect()
    }

    async fn cached_food(
        &self,
        source: &str,
        query: &str,
    ) -> Result<Option<CachedFood>, StoreError> {
        let key = (source.to_owned(), query.to_owned());
        let row = self
            .read(move |connection| {
                connection
                    .prepare_cached(
                        "SELECT source, query, food, fetched_at FROM food_cache \
                         WHERE source = ?1 AND query = ?2",
                    )?
                    .query_row(params![key.0, key.1], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, Option<String>>(2)?,
                            row.get::<_, i64>(3)?,
                        ))
                    })
                    .optional()
            })
            .await?;
        row.map(|(source, query, food, fetched_at)| {
            Ok(CachedFood {
                source,
                query,
                food: food
                    .map(|text| serde_json::from_str(&text))
                    .transpose()
                    .map_err(|error| {
                        StoreError::Other(format!("cached food is not JSON: {error}"))
                    })?,
                fetched_at: time(fetched_at)?,
            })
        })
        .transpose()
    }

    async fn cache_food(&self, entry: CachedFood) -> Result<(), StoreError> {
        super::check_cached_food(&entry)?;
        let food = entry.food.as_ref().map(serde_json::Value::to_string);
        let fetched_at = micros(entry.fetched_at);
        self.write(move |transaction| {
            transaction
                .prepare_cached(
                    "INSERT INTO food_cache (source, query, food, fetched_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (source, query) DO UPDATE \
                     SET food = excluded.food, fetched_at = excluded.fetched_at",
                )
                .and_then(|mut statement| {
                    statement.execute(params![entry.source, entry.query, food, fetched_at])
                })
                .map_err(sqlite_error)?;
            Ok(())
        })
        .await
    }

    async fn insert_api_key(&self, key: ApiKey) -> Result<(), StoreError> {
        let created_at = micros(key.created_at);
        self.write(move |transaction| {
            transaction
                .execute(
                    "INSERT INTO api_keys (key_hash, user_id, created_at) VALUES (?1, ?2, ?3)",
                    params![key.hash, key.user_id.0, created_at],
                )
                .map_err(sqlite_error)?;
            Ok(())
        })
        .await
    }

    async fn api_key_user(&self, hash: &str) -> Result<Option<UserId>, StoreError> {
        let hash = hash.to_owned();
        let users = self
            .read(move |connection| {
                collect(
                    &mut connection
                        .prepare_cached("SELECT user_id FROM api_keys WHERE key_hash = ?1")?,
                    params![hash],
                    |row| row.get::<_, i64>(0),
                )
            })
            .await?;
        Ok(users.into_iter().next().map(UserId))
    }

    async fn save_vision_estimates(&self, estimates: &[VisionEstimate]) -> Result<(), StoreError> {
        if estimates.is_empty() {
            return Ok(());
        }
        let estimates = estimates.to_vec();
        self.write(move |transaction| {
            let mut statement = transaction
                .prepare_cached(
                    "INSERT INTO vision_estimates (entry_id, item, agent, user_id, grams, kcal, \
                     corrected_grams, created_at, corrected_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                     ON CONFLICT (entry_id, item, agent) DO UPDATE SET grams = excluded.grams, \
                     kcal = excluded.kcal, corrected_grams = excluded.corrected_grams, \
                     corrected_at = excluded.corrected_at \
                     WHERE vision_estimates.user_id = excluded.user_id",
                )
                .map_err(sqlite_error)?;
            for estimate in &estimates {
                statement
                    .execute(params![
                        estimate.entry_id.to_string(),
                        estimate.item,
                        estimate.agent,
                        estimate.user_id.0,
                        estimate.grams,
                        estimate.kcal,
                        estimate.corrected_grams,
                        micros(estimate.created_at),
                        estimate.corrected_at.map(micros),
                    ])
                    .map_err(sqlite_error)?;
            }
            Ok(())
        })
        .await
    }

    async fn vision_estimates(
        &self,
        user: UserId,
        entry_id: Uuid,
    ) -> Result<Vec<VisionEstimate>, StoreError> {
        let sql = format!(
            "{VISION_ESTIMATE_COLUMNS} WHERE user_id = ?1 AND entry_id = ?2 ORDER BY item, agent"
        );
        let rows = self
            .read(move |connection| {
                collect(
                    &mut connection.prepare_cached(&sql)?,
                    params![user.0, entry_id.to_string()],
                    vision_estimate_row,
                )
            })
            .await?;
        rows.into_iter().map(VisionEstimateRow::decode).collect()
    }

    async fn corrected_vision_estimates(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<VisionEstimate>, StoreError> {
        let sql = format!(
            "{VISION_ESTIMATE_COLUMNS} WHERE user_id = ?1 AND corrected_at IS NOT NULL \
             ORDER BY corrected_at DESC, entry_id, item, agent LIMIT ?2"
        );
        let rows = self
            .read(move |connection| {
                collect(
                    &mut connection.prepare_cached(&sql)?,
                    params![user.0, sql_limit(limit)],
                    vision_estimate_row,
                )
            })
            .await?;
        rows.into_iter().map(VisionEstimateRow::decode).collect()
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = self
            .read(move |connection| {
                collect(
                    &mut connection.prepare_cached(
                        "SELECT id, user_id, message, error, created_at FROM dead_letters \
                         ORDER BY created_at DESC, id DESC LIMIT ?1",
                    )?,
                    params![sql_limit(limit)],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, i64>(4)?,
                        ))
                    },
                )
            })
            .await?;
        rows.into_iter()
            .map(|(id, user_id, message, error, created_at)| {
                Ok(DeadLetter {
                    id: uuid(&id)?,
                    user_id: UserId(user_id),
                    message: from_json(&message)?,
                    error,
                    created_at: time(created_at)?,
                })
            })
            .collect()
    }

    async fn inbox_accept(&self, entries: &[InboxEntry]) -> Result<Vec<bool>, StoreError> {
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            rows.push((
                entry.id.to_string(),
                entry.source.clone(),
                entry.user_id.0,
                entry.chat,
                to_json(&entry.content)?,
                entry.photo.clone(),
                micros(entry.received_at),
            ));
        }
        self.write(move |transaction| {
            let mut statement = transaction
                .prepare_cached(
                    "INSERT INTO inbox (id, source, user_id, chat_id, content, photo, received_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                )
                .map_err(sqlite_error)?;
            rows.iter()
                .map(|(id, source, user, chat, content, photo, received_at)| {
                    statement
                        .execute(params![id, source, user, chat, content, photo, received_at])
                        .map(|inserted| inserted > 0)
                        .map_err(sqlite_error)
                })
                .collect()
        })
        .await
    }

    async fn inbox_pending(
        &self,
        source: &str,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let source = source.to_owned();
        let sql =
            format!("{INBOX_COLUMNS} WHERE source = ?1 AND done_at IS NULL ORDER BY seq LIMIT ?2");
        let rows = self
            .read(move |connection| {
                collect(
                    &mut connection.prepare_cached(&sql)?,
                    params![source, sql_limit(limit)],
                    inbox_row,
                )
            })
            .await?;
        rows.into_iter()
            .map(|row| row.into_record().map(|record| record.entry))
            .collect()
    }

    async fn inbox_entry(&self, id: Uuid) -> Result<Option<InboxRecord>, StoreError> {
        let sql = format!("{INBOX_COLUMNS} WHERE id = ?1");
        let rows = self
            .read(move |connection| {
                collect(
                    &mut connection.prepare_cached(&sql)?,
                    params![id.to_string()],
                    inbox_row,
                )
            })
            .await?;
        rows.into_iter()
            .next()
            .map(InboxRow::into_record)
            .transpose()
    }

    async fn inbox_attempted(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, u32)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        // One writer at a time: a step of this process is either committed before or after.
        self.write(move |transaction| {
            let mut statement = transaction
                .prepare_cached(
                    "UPDATE inbox SET attempts = attempts + 1 \
                     WHERE id = ?1 AND done_at IS NULL RETURNING steps",
                )
                .map_err(sqlite_error)?;
            let mut started = Vec::with_capacity(ids.len());
            for id in ids {
                let steps: Option<i64> = statement
                    .query_row(params![id.to_string()], |row| row.get(0))
                    .optional()
                    .map_err(sqlite_error)?;
                if let Some(steps) = steps {
                    started.push((id, u32::try_from(steps).unwrap_or_default()));
                }
            }
            Ok(started)
        })
        .await
    }

    async fn inbox_backlog(&self) -> Result<InboxBacklog, StoreError> {
        let (pending, oldest) = self
            .read(|connection| {
                connection
                    .prepare_cached(
                        "SELECT count(*), min(received_at) FROM inbox WHERE done_at IS NULL",
                    )?
                    .query_row([], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, Option<i64>>(1)?))
                    })
            })
            .await?;
        Ok(InboxBacklog {
            pending: u64::try_from(pending).unwrap_or_default(),
            oldest: oldest.map(time).transpose()?,
        })
    }

    async fn inbox_prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let before = micros(before);
        self.write(move |transaction| {
            let deleted = transaction
                .execute(
                    "DELETE FROM inbox WHERE done_at IS NOT NULL AND done_at < ?1",
                    params![before],
                )
                .map_err(sqlite_error)?;
            Ok(deleted as u64)
        })
        .await
    }
}

/// Applies one write inside the batch's transaction.
fn apply_one(
    transaction: &rusqlite::Transaction<'_>,
    write: &Write,
    now: i64,
) -> Result<(), StoreError> {
    let run = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Result<(), StoreError> {
        transaction
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(params))
            .map(drop)
            .map_err(sqlite_error)
    };
    match write {
        Write::UpsertUser(user) => run(
            UPSERT_USER,
            params![
                user.id.0,
                to_json(&user.profile)?,
                to_json(&user.goals)?,
                user.timezone,
                micros(user.created_at),
                micros(user.updated_at)
            ],
        ),
        Write::InsertFoodEntry(entry) => run(
            INSERT_FOOD_ENTRY,
            params![
                entry.id.to_string(),
                entry.user_id.0,
                micros(entry.eaten_at),
                entry.local_date.to_string(),
                entry.meal_type.map(MealType::as_str),
                entry.description,
                to_json(&entry.items)?,
                entry.total.kcal,
                entry.total.protein_g,
                entry.total.carbs_g,
                entry.total.fat_g,
                entry.total.fiber_g,
                entry.photo_path,
                micros(entry.created_at),
                now
            ],
        ),
        Write::UpdateFoodEntry(entry) => run(
            UPDATE_FOOD_ENTRY,
            params![
                entry.id.to_string(),
                entry.user_id.0,
                micros(entry.eaten_at),
                entry.local_date.to_string(),
                entry.meal_type.map(MealType::as_str),
                entry.description,
                to_json(&entry.items)?,
                entry.total.kcal,
                entry.total.protein_g,
                entry.total.carbs_g,
                entry.total.fat_g,
                entry.total.fiber_g,
                entry.photo_path,
                now
            ],
        ),
        Write::DeleteFoodEntry { user_id, id } => run(
            "DELETE FROM food_entries WHERE user_id = ?1 AND id = ?2",
            params![user_id.0, id.to_string()],
        ),
        Write::AppendMessage(message) => run(
            "INSERT INTO conversation_messages (id, user_id, role, content, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
            params![
                message.id.to_string(),
                message.user_id.0,
                message.role.as_str(),
                message.content,
                micros(message.created_at)
            ],
        ),
        Write::InsertMemory(memory) => {
            let blob: Vec<u8> = memory
                .embedding
                .iter()
                .flat_map(|value| value.to_le_bytes())
                .collect();
            run(
                "INSERT INTO memories (id, user_id, content, embedder, dims, embedding, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                params![
                    memory.id.to_string(),
                    memory.user_id.0,
                    memory.content,
                    memory.embedder,
                    sql_limit(memory.embedding.len()),
                    blob,
                    micros(memory.created_at)
                ],
            )
        }
        Write::DeleteMemory { user_id, id } => run(
            "DELETE FROM memories WHERE user_id = ?1 AND id = ?2",
            params![user_id.0, id.to_string()],
        ),
        Write::InsertWeight(weight) => run(
            "INSERT INTO weight_logs (id, user_id, kg, logged_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO NOTHING",
            params![
                weight.id.to_string(),
                weight.user_id.0,
                weight.kg,
                micros(weight.logged_at)
            ],
        ),
        Write::UpsertReminder(reminder) => run(
            UPSERT_REMINDER,
            params![
                reminder.id.to_string(),
                reminder.user_id.0,
                reminder.text,
                to_json(&reminder.schedule)?,
                reminder.next_fire_at.map(micros),
                reminder.active,
                micros(reminder.created_at),
                now
            ],
        ),
        Write::DeleteReminder { user_id, id } => run(
            "DELETE FROM reminders WHERE user_id = ?1 AND id = ?2",
            params![user_id.0, id.to_string()],
        ),
        Write::InsertXp(event) => run(
            "INSERT INTO xp_events (id, user_id, amount, reason, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
            params![
                event.id.to_string(),
                event.user_id.0,
                event.amount,
                event.reason,
                micros(event.created_at)
            ],
        ),
        Write::UpsertStreak(streak) => run(
            UPSERT_STREAK,
            params![
                streak.user_id.0,
                streak.domain,
                streak.current,
                streak.best,
                streak.last_date.map(|day| day.to_string()),
                streak.freezes_left,
                now
            ],
        ),
        Write::InsertAchievement(achievement) => run(
            "INSERT INTO achievements (user_id, code, earned_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (user_id, code) DO NOTHING",
            params![
                achievement.user_id.0,
                achievement.code,
                micros(achievement.earned_at)
            ],
        ),
        Write::InsertDeadLetter(letter) => run(
            "INSERT INTO dead_letters (id, user_id, message, error, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
            params![
                letter.id.to_string(),
                letter.user_id.0,
                to_json(&letter.message)?,
                letter.error,
                micros(letter.created_at)
            ],
        ),
        Write::InboxStep { id, step } => run(
            "UPDATE inbox SET steps = MAX(steps, ?2) WHERE id = ?1",
            params![id.to_string(), step],
        ),
        Write::InboxDone {
            id,
            outcome,
            replies,
            at,
        } => run(
            "UPDATE inbox SET done_at = ?2, outcome = ?3, replies = ?4 \
             WHERE id = ?1 AND done_at IS NULL",
            params![
                id.to_string(),
                micros(*at),
                outcome.as_str(),
                to_json(&serde_json::json!(replies))?
            ],
        ),
    }
}

/// The columns of an inbox entry, in [`InboxRow`]'s order.
const INBOX_COLUMNS: &str = "SELECT id, source, user_id, chat_id, content, photo, received_at, \
     steps, attempts, done_at, outcome, replies FROM inbox";

/// An inbox row as SQLite returns it; decoded outside the blocking closure.
struct InboxRow {
    id: String,
    source: String,
    user_id: i64,
    chat_id: i64,
    content: String,
    photo: Option<Vec<u8>>,
    received_at: i64,
    steps: i64,
    attempts: i64,
    done_at: Option<i64>,
    outcome: Option<String>,
    replies: Option<String>,
}

fn inbox_row(row: &Row<'_>) -> rusqlite::Result<InboxRow> {
    Ok(InboxRow {
        id: row.get(0)?,
        source: row.get(1)?,
        user_id: row.get(2)?,
        chat_id: row.get(3)?,
        content: row.get(4)?,
        photo: row.get(5)?,
        received_at: row.get(6)?,
        steps: row.get(7)?,
        attempts: row.get(8)?,
        done_at: row.get(9)?,
        outcome: row.get(10)?,
        replies: row.get(11)?,
    })
}

impl InboxRow {
    fn into_record(self) -> Result<InboxRecord, StoreError> {
        Ok(InboxRecord {
            entry: InboxEntry {
                id: uuid(&self.id)?,
                source: self.source,
                user_id: UserId(self.user_id),
                chat: self.chat_id,
                content: from_json(&self.content)?,
                photo: self.photo,
                received_at: time(self.received_at)?,
                steps: count(self.steps)?,
                attempts: count(self.attempts)?,
            },
            done_at: self.done_at.map(time).transpose()?,
            outcome: self
                .outcome
                .as_deref()
                .map(|text| {
                    InboxOutcome::parse(text).ok_or_else(|| {
                        StoreError::Other(format!("unknown stored inbox outcome {text:?}"))
                    })
                })
                .transpose()?,
            replies: self
                .replies
                .as_deref()
                .map(from_json)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// Runs a query and maps every row, inside the blocking closure.
fn collect<T>(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: &[&dyn rusqlite::ToSql],
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    statement.query_map(params, map)?.collect()
}

/// A food entry's columns as SQLite returns them; decoded outside the blocking closure.
struct FoodRow {
    id: String,
    user_id: i64,
    eaten_at: i64,
    local_date: String,
    meal_type: Option<String>,
    description: String,
    items: String,
    total: Nutrients,
    photo_path: Option<String>,
    created_at: i64,
}

fn food_row(row: &Row<'_>) -> rusqlite::Result<FoodRow> {
    Ok(FoodRow {
        id: row.get(0)?,
        user_id: row.get(1)?,
        eaten_at: row.get(2)?,
        local_date: row.get(3)?,
        meal_type: row.get(4)?,
        description: row.get(5)?,
        items: row.get(6)?,
        total: Nutrients {
            kcal: row.get(7)?,
            protein_g: row.get(8)?,
            carbs_g: row.get(9)?,
            fat_g: row.get(10)?,
            fiber_g: row.get(11)?,
        },
        photo_path: row.get(12)?,
        created_at: row.get(13)?,
    })
}

impl FoodRow {
    fn into_entry(self) -> Result<FoodEntry, StoreError> {
        let meal_type = self
            .meal_type
            .map(|text| {
                MealType::parse(&text)
                    .ok_or_else(|| StoreError::Other(format!("unknown stored meal type {text:?}")))
            })
            .transpose()?;
        Ok(FoodEntry {
            id: uuid(&self.id)?,
            user_id: UserId(self.user_id),
            eaten_at: time(self.eaten_at)?,
            local_date: date(&self.local_date)?,
            meal_type,
            description: self.description,
            items: from_json(&self.items)?,
            total: self.total,
            photo_path: self.photo_path,
            created_at: time(self.created_at)?,
        })
    }
}

struct MemoryRow {
    id: String,
    user_id: i64,
    content: String,
    embedding: Vec<u8>,
    embedder: String,
    created_at: i64,
}

fn memory_row(row: &Row<'_>) -> rusqlite::Result<MemoryRow> {
    Ok(MemoryRow {
        id: row.get(0)?,
        user_id: row.get(1)?,
        content: row.get(2)?,
        embedding: row.get(3)?,
        embedder: row.get(4)?,
        created_at: row.get(5)?,
    })
}

impl MemoryRow {
    fn into_memory(self) -> Result<Memory, StoreError> {
        let embedding = self
            .embedding
            .chunks_exact(4)
            .map(|bytes| <[u8; 4]>::try_from(bytes).map(f32::from_le_bytes))
            .collect::<Result<Vec<f32>, _>>()
            .map_err(|_| StoreError::Other("a stored embedding is malformed".to_owned()))?;
        Ok(Memory {
            id: uuid(&self.id)?,
            user_id: UserId(self.user_id),
            content: self.content,
            embedding,
            embedder: self.embedder,
            created_at: time(self.created_at)?,
        })
    }
}

struct ReminderRow {
    id: String,
    user_id: i64,
    text: String,
    schedule: String,
    next_fire_at: Option<i64>,
    active: bool,
    created_at: i64,
}

fn reminder_row(row: &Row<'_>) -> rusqlite::Result<ReminderRow> {
    Ok(ReminderRow {
        id: row.get(0)?,
        user_id: row.get(1)?,
        text: row.get(2)?,
        schedule: row.get(3)?,
        next_fire_at: row.get(4)?,
        active: row.get(5)?,
        created_at: row.get(6)?,
    })
}

impl ReminderRow {
    fn into_reminder(self) -> Result<Reminder, StoreError> {
        Ok(Reminder {
            id: uuid(&self.id)?,
            user_id: UserId(self.user_id),
            text: self.text,
            schedule: from_json(&self.schedule)?,
            next_fire_at: self.next_fire_at.map(time).transpose()?,
            active: self.active,
            created_at: time(self.created_at)?,
        })
    }
}

const VISION_ESTIMATE_COLUMNS: &str = "SELECT entry_id, item, agent, user_id, grams, kcal, \
     corrected_grams, created_at, corrected_at FROM vision_estimates";

/// A vision estimate's columns as SQLite returns them; decoded outside the blocking closure.
struct VisionEstimateRow {
    entry_id: String,
    item: String,
    agent: String,
    user_id: i64,
    grams: f64,
    kcal: f64,
    corrected_grams: Option<f64>,
    created_at: i64,
    corrected_at: Option<i64>,
}

fn vision_estimate_row(row: &Row<'_>) -> rusqlite::Result<VisionEstimateRow> {
    Ok(VisionEstimateRow {
        entry_id: row.get(0)?,
        item: row.get(1)?,
        agent: row.get(2)?,
        user_id: row.get(3)?,
        grams: row.get(4)?,
        kcal: row.get(5)?,
        corrected_grams: row.get(6)?,
        created_at: row.get(7)?,
        corrected_at: row.get(8)?,
    })
}

impl VisionEstimateRow {
    fn decode(self) -> Result<VisionEstimate, StoreError> {
        Ok(VisionEstimate {
            entry_id: uuid(&self.entry_id)?,
            item: self.item,
            agent: self.agent,
            user_id: UserId(self.user_id),
            grams: self.grams,
            kcal: self.kcal,
            corrected_grams: self.corrected_grams,
            created_at: time(self.created_at)?,
            corrected_at: self.corrected_at.map(time).transpose()?,
        })
    }
}

/// Times are stored as microseconds since the Unix epoch (PostgreSQL's precision).
fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn time(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::Other(format!("stored time {micros} is out of range")))
}

fn date(text: &str) -> Result<NaiveDate, StoreError> {
    text.parse()
        .map_err(|error| StoreError::Other(format!("stored date {text:?}: {error}")))
}

fn uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|error| StoreError::Other(format!("stored id {text:?}: {error}")))
}

fn count(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::Other(format!("stored count {value} is out of range")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|error| StoreError::Rejected(format!("cannot encode as JSON: {error}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|error| StoreError::Other(format!("stored JSON cannot be read: {error}")))
}

/// Classifies a SQLite error: busy/locked/I/O can pass (`Unavailable`), constraints and
/// conversions refuse the data (`Rejected`).
fn sqlite_error(error: rusqlite::Error) -> StoreError {
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
