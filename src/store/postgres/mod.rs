//! The PostgreSQL store: production storage, for any PostgreSQL >= 14, pgvector when available.
//!
//! A deadpool-postgres pool of tokio-postgres connections (parameterised, cached statements
//! only). `apply` is the hot path of the persistence actor: it groups consecutive writes of the
//! same kind and sends each group as ONE multi-row statement (`UNNEST` of one array per column)
//! inside one transaction, so a batch of 512 food entries costs a handful of round trips.
//!
//! Memories: migration 0002 turns `memories.embedding` into pgvector's `vector` when the
//! extension can be created, and `search_memories` then ranks in SQL with `<=>` (cosine
//! distance). Without pgvector the column stays `real[]` and ranking happens in process
//! ([`super::similarity`]). The mode is read from the schema after migrating, and logged.
//!
//! Errors: connection trouble (and serialisation failures, deadlocks, a server shutting down)
//! is `StoreError::Unavailable`, which the persistence actor retries; constraint and data errors
//! are `Rejected`.
//!
//! One file per topic of the `Store` port: `users` (people and API keys), `food`, `messages`,
//! `memories`, `progress` (weights, XP, streaks, achievements), `reminders`, `inbox` (with the
//! dead letters), `vision`, `cache` (food lookups) and `migrate`. This file holds the pool, the
//! `Store` impl (one line per method, delegating to the topic) and the batch apply, whose one
//! `match` hands each run of writes to the topic that owns its kind.

mod cache;
mod food;
mod inbox;
mod memories;
mod messages;
mod migrate;
mod progress;
mod reminders;
mod users;
mod vision;

use std::collections::HashSet;
use std::hash::Hash;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{
    Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, Transaction,
};
use health_actors::domain::{
    Achievement, ConversationMessage, DeadLetter, FoodEntry, Memory, Reminder, ScoredMemory,
    Streak, User, UserId, VisionEstimate, WeightLog, XpEvent,
};
use health_actors::ports::{
    ApiKey, CachedFood, InboxBacklog, InboxEntry, InboxRecord, Store, StoreError, Write,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use super::{people_written, validate, MigrationReport};

/// How long to wait for a TCP connection, for a free pooled connection, and for a recycle check.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(10);

const ENSURE_USERS: &str = include_str!("../../../sql/queries/postgres/ensure_users.sql");
const VECTOR_MODE: &str = include_str!("../../../sql/queries/postgres/vector_mode.sql");

/// Where memories are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorMode {
    /// `vector` column, HNSW cosine indexes, ranking in SQL.
    Pgvector,
    /// `real[]` column, ranking in process.
    InProcess,
}

/// The PostgreSQL adapter of the `Store` port.
pub struct PostgresStore {
    pool: Pool,
    vectors: VectorMode,
    /// Whether pgvector supports `hnsw.iterative_scan` (0.8 and later).
    iterative_scan: bool,
    /// Search statements naming the indexed expression `embedding::vector(N)`, by N. The
    /// dimension must be a literal for the planner to match the partial index, so these are
    /// built once from `memories::INDEXED_DIMS` (integers, never input).
    indexed_searches: Vec<(usize, String)>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("vectors", &self.vectors)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Builds the pool (at most `max_connections`), applies pending migrations under an advisory
    /// lock, detects the vector mode and logs it.
    pub async fn connect(
        url: &str,
        max_connections: usize,
    ) -> Result<(Self, MigrationReport), StoreError> {
        let mut pg_config: tokio_postgres::Config = url.parse().map_err(|error| {
            StoreError::Other(format!(
                "DATABASE_URL is not a PostgreSQL connection URL: {error}"
            ))
        })?;
        if pg_config.get_connect_timeout().is_none() {
            pg_config.connect_timeout(CONNECT_TIMEOUT);
        }
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("health-agent");
        }
        let manager = Manager::from_config(
            pg_config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|error| {
                StoreError::Other(format!("cannot build the connection pool: {error}"))
            })?;

        let mut client = pool.get().await.map_err(pool_error)?;
        let applied = migrate::run(&mut client).await?;
        let type_name: String = client
            .query_one(VECTOR_MODE, &[])
            .await
            .map_err(db_error)?
            .try_get(0)
            .map_err(db_error)?;
        let vectors = if type_name == "vector" {
            VectorMode::Pgvector
        } else {
            VectorMode::InProcess
        };
        let version: Option<String> = client
            .query_opt(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
                &[],
            )
            .await
            .map_err(db_error)?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(db_error)?;
        drop(client);
        let iterative_scan = vectors == VectorMode::Pgvector
            && version
                .as_deref()
                .is_some_and(memories::supports_iterative_scan);
        match vectors {
            VectorMode::Pgvector => tracing::info!(
                vector_mode = "pgvector",
                pgvector_version = version.as_deref().unwrap_or("unknown"),
                "memories use pgvector: vector column, HNSW cosine indexes, ranked in SQL"
            ),
            VectorMode::InProcess => tracing::info!(
                vector_mode = "in_process",
                "pgvector is not available: memories are stored as real[] and ranked in process"
            ),
        }
        let store = Self {
            pool,
            vectors,
            iterative_scan,
            indexed_searches: memories::indexed_searches(),
        };
        let report = MigrationReport {
            applied,
            backend: store.backend(),
        };
        Ok((store, report))
    }

    /// Where memories are ranked on this server.
    pub fn vector_mode(&self) -> VectorMode {
        self.vectors
    }

    /// The pool, for metrics (size, available connections).
    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    pub(super) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db_error)?;
        client.query(&statement, params).await.map_err(db_error)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(db_error)?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        match self.vectors {
            VectorMode::Pgvector => "postgres+pgvector",
            VectorMode::InProcess => "postgres",
        }
    }

    fn pool_usage(&self) -> Option<health_actors::ports::PoolUsage> {
        let status = self.pool.status();
        Some(health_actors::ports::PoolUsage {
            max: status.max_size,
            open: status.size,
            idle: status.available,
            waiting: status.waiting,
        })
    }

    async fn apply(&self, batch: &[Write]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        validate(batch)?;
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error)?;
        let people = people_written(batch);
        if !people.is_empty() {
            execute(&transaction, ENSURE_USERS, &[&people]).await?;
        }
        for group in groups(batch) {
            apply_group(&transaction, group).await?;
        }
        transaction.commit().await.map_err(db_error)
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

    async fn inbox_entries(&self, ids: &[Uuid]) -> Result<Vec<InboxRecord>, StoreError> {
        inbox::inbox_entries(self, ids).await
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

/// Applies a run of writes of one kind as one statement, by the topic that owns the kind.
async fn apply_group(transaction: &Transaction<'_>, group: &[Write]) -> Result<(), StoreError> {
    let Some(first) = group.first() else {
        return Ok(());
    };
    match first {
        Write::UpsertUser(_) => users::upsert(transaction, group).await,
        Write::InsertFoodEntry(_) => food::insert(transaction, group).await,
        Write::UpdateFoodEntry(_) => food::update(transaction, group).await,
        Write::DeleteFoodEntry { .. } => food::delete(transaction, group).await,
        Write::AppendMessage(_) => messages::append(transaction, group).await,
        Write::InsertMemory(_) => memories::insert(transaction, group).await,
        Write::DeleteMemory { .. } => memories::delete(transaction, group).await,
        Write::InsertWeight(_) => progress::insert_weights(transaction, group).await,
        Write::UpsertReminder(_) => reminders::upsert(transaction, group).await,
        Write::DeleteReminder { .. } => reminders::delete(transaction, group).await,
        Write::InsertXp(_) => progress::insert_xp(transaction, group).await,
        Write::UpsertStreak(_) => progress::upsert_streaks(transaction, group).await,
        Write::InsertAchievement(_) => progress::insert_achievements(transaction, group).await,
        Write::InsertDeadLetter(_) => inbox::insert_dead_letters(transaction, group).await,
        Write::InboxStarted { .. } => inbox::started(transaction, group).await,
        Write::InboxStep { .. } => inbox::steps(transaction, group).await,
        Write::InboxDone { .. } => inbox::done(transaction, group).await,
    }
}

/// Runs one statement (prepared once per connection) and returns the rows it touched.
pub(super) async fn execute(
    transaction: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = transaction.prepare_cached(sql).await.map_err(db_error)?;
    transaction
        .execute(&statement, params)
        .await
        .map_err(db_error)
}

/// Deletes the rows a run of one delete kind names, as (user_id, id) pairs, with `sql`.
async fn delete_rows(
    transaction: &Transaction<'_>,
    group: &[Write],
    sql: &str,
) -> Result<(), StoreError> {
    let (users, ids): (Vec<i64>, Vec<Uuid>) = group
        .iter()
        .filter_map(|w| match w {
            Write::DeleteFoodEntry { user_id, id }
            | Write::DeleteMemory { user_id, id }
            | Write::DeleteReminder { user_id, id } => Some((user_id.0, *id)),
            _ => None,
        })
        .unzip();
    execute(transaction, sql, &[&users, &ids]).await?;
    Ok(())
}

/// Splits a batch into runs of consecutive writes of the same kind; applying the runs in order
/// is the same as applying the writes in order.
fn groups(batch: &[Write]) -> impl Iterator<Item = &[Write]> {
    batch.chunk_by(|a, b| std::mem::discriminant(a) == std::mem::discriminant(b))
}

/// For upserts and updates, which must not touch one row twice in one statement: the last write
/// of each key, in batch order (what applying them one by one would leave).
pub(super) fn last_per_key<T, K: Eq + Hash>(items: Vec<&T>, key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut seen = HashSet::with_capacity(items.len());
    let mut kept: Vec<&T> = items
        .into_iter()
        .rev()
        .filter(|item| seen.insert(key(item)))
        .collect();
    kept.reverse();
    kept
}

pub(super) fn small(value: u32) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| StoreError::Rejected(format!("{value} is too large to store")))
}

pub(super) fn count(value: i32) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Other(format!("stored count {value} is negative")))
}

/// Classifies a driver error: can a retry help (`Unavailable`), was the data refused
/// (`Rejected`), or something else. Messages carry the server's message and SQLSTATE, never the
/// row values (a constraint's DETAIL may quote them).
pub(super) fn db_error(error: tokio_postgres::Error) -> StoreError {
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        let message = format!("{} (SQLSTATE {code})", db.message());
        return match code.get(..2) {
            // connection exception, insufficient resources, operator intervention (shutdown,
            // cancel), transaction rollback (serialisation failure, deadlock)
            Some("08" | "53" | "57" | "40") => StoreError::Unavailable(message),
            // integrity constraint violation, data exception (encoding, range, format)
            Some("23" | "22") => StoreError::Rejected(message),
            _ => StoreError::Other(message),
        };
    }
    let message = match std::error::Error::source(&error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    };
    let io = std::error::Error::source(&error)
        .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some());
    let text = error.to_string();
    if error.is_closed()
        || io
        || text.starts_with("error connecting")
        || text.starts_with("error communicating")
        || text.starts_with("timeout")
    {
        StoreError::Unavailable(message)
    } else if text.starts_with("error serializing") {
        StoreError::Rejected(message)
    } else {
        StoreError::Other(message)
    }
}

fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(error) => db_error(error),
        PoolError::Timeout(kind) => {
            StoreError::Unavailable(format!("no database connection in time ({kind:?})"))
        }
        PoolError::Closed => StoreError::Unavailable("the connection pool is closed".to_owned()),
        other => StoreError::Other(format!("connection pool: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_follow_runs_of_one_kind() {
        let delete = |n: u128| Write::DeleteFoodEntry {
            user_id: UserId(1),
            id: Uuid::from_u128(n),
        };
        let memory = Write::DeleteMemory {
            user_id: UserId(1),
            id: Uuid::from_u128(9),
        };
        let batch = [delete(1), delete(2), memory.clone(), delete(3)];
        let sizes: Vec<usize> = groups(&batch).map(<[Write]>::len).collect();
        assert_eq!(sizes, [2, 1, 1]);
    }

    #[test]
    fn the_last_write_of_each_key_wins_in_order() {
        let items = [(1, "a"), (2, "b"), (1, "c"), (3, "d")];
        let kept = last_per_key(items.iter().collect(), |item| item.0);
        assert_eq!(kept, [&(2, "b"), &(1, "c"), &(3, "d")]);
    }
}
