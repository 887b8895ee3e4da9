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

use std::collections::HashSet;
use std::hash::Hash;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use health_actors::domain::{
    Achievement, ConversationMessage, DeadLetter, FoodEntry, FoodItem, Goals, MealType, Memory,
    Nutrients, Profile, Reminder, ReminderSchedule, Role, ScoredMemory, Streak, User, UserId,
    VisionEstimate, WeightLog, XpEvent,
};
use health_actors::ports::{
    ApiKey, CachedFood, InboxBacklog, InboxEntry, InboxOutcome, InboxRecord, Store, StoreError,
    Write,
};
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use super::similarity::rank_by_cosine;
use super::{people_written, sql_limit, validate, Migration, MigrationReport};

/// The schema, in order. A unit test checks this list against `sql/migrations/`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_initial",
        sql: include_str!("../../sql/migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "0002_pgvector",
        sql: include_str!("../../sql/migrations/0002_pgvector.sql"),
    },
    Migration {
        version: 3,
        name: "0003_food_cache",
        sql: include_str!("../../sql/migrations/0003_food_cache.sql"),
    },
    Migration {
        version: 4,
        name: "0004_api_keys",
        sql: include_str!("../../sql/migrations/0004_api_keys.sql"),
    },
    Migration {
        version: 5,
        name: "0005_inbox",
        sql: include_str!("../../sql/migrations/0005_inbox.sql"),
    },
    Migration {
        version: 6,
        name: "0006_vision_estimates",
        sql: include_str!("../../sql/migrations/0006_vision_estimates.sql"),
    },
];

/// Serialises migrations of concurrent starts (`pg_advisory_xact_lock`; per database).
/// The bytes spell "hlthmigr".
const MIGRATION_LOCK_KEY: i64 = 0x686c_7468_6d69_6772;

const LEDGER_SQL: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
    version integer PRIMARY KEY, name text NOT NULL, \
    applied_at timestamptz NOT NULL DEFAULT now())";

/// How long to wait for a TCP connection, for a free pooled connection, and for a recycle check.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Dimensions that have an HNSW partial index in 0002 (keep the two lists equal).
const INDEXED_DIMS: [usize; 6] = [256, 384, 512, 768, 1024, 1536];

const ENSURE_USERS: &str = include_str!("../../sql/queries/postgres/ensure_users.sql");
const UPSERT_USERS: &str = include_str!("../../sql/queries/postgres/upsert_users.sql");
const INSERT_FOOD_ENTRIES: &str =
    include_str!("../../sql/queries/postgres/insert_food_entries.sql");
const UPDATE_FOOD_ENTRIES: &str =
    include_str!("../../sql/queries/postgres/update_food_entries.sql");
const FOOD_ENTRY_COLUMNS: &str =
    include_str!("../../sql/queries/postgres/select_food_entry_columns.sql");
const INSERT_MESSAGES: &str = include_str!("../../sql/queries/postgres/insert_messages.sql");
const RECENT_MESSAGES: &str = include_str!("../../sql/queries/postgres/recent_messages.sql");
const INSERT_MEMORIES: &str = include_str!("../../sql/queries/postgres/insert_memories.sql");
const INSERT_WEIGHTS: &str = include_str!("../../sql/queries/postgres/insert_weights.sql");
const UPSERT_REMINDERS: &str = include_str!("../../sql/queries/postgres/upsert_reminders.sql");
const DUE_REMINDERS: &str = include_str!("../../sql/queries/postgres/due_reminders.sql");
const INSERT_XP: &str = include_str!("../../sql/queries/postgres/insert_xp.sql");
const UPSERT_STREAKS: &str = include_str!("../../sql/queries/postgres/upsert_streaks.sql");
const INSERT_ACHIEVEMENTS: &str =
    include_str!("../../sql/queries/postgres/insert_achievements.sql");
const INSERT_DEAD_LETTERS: &str =
    include_str!("../../sql/queries/postgres/insert_dead_letters.sql");
const VECTOR_MODE: &str = include_str!("../../sql/queries/postgres/vector_mode.sql");

const DELETE_FOOD_ENTRIES: &str =
    "DELETE FROM food_entries f USING UNNEST($1::int8[], $2::uuid[]) \
    AS d(user_id, id) WHERE f.user_id = d.user_id AND f.id = d.id";
const DELETE_MEMORIES: &str = "DELETE FROM memories m USING UNNEST($1::int8[], $2::uuid[]) \
    AS d(user_id, id) WHERE m.user_id = d.user_id AND m.id = d.id";
const DELETE_REMINDERS: &str = "DELETE FROM reminders r USING UNNEST($1::int8[], $2::uuid[]) \
    AS d(user_id, id) WHERE r.user_id = d.user_id AND r.id = d.id";
const MEMORY_COLUMNS: &str =
    "SELECT id, user_id, content, embedding::real[], embedder, created_at \
    FROM memories";
const REMINDER_COLUMNS: &str = "SELECT id, user_id, text, schedule, next_fire_at, active, \
    created_at FROM reminders";

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
    /// built once from [`INDEXED_DIMS`] (integers, never input).
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
        let applied = run_migrations(&mut client).await?;
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
            && version.as_deref().is_some_and(supports_iterative_scan);
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
            indexed_searches: indexed_searches(),
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

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db_error)?;
        client.query(&statement, params).await.map_err(db_error)
    }

    async fn search_in_sql(
        &self,
        user: UserId,
        embedder: &str,
        query: &[f32],
        limit: i64,
    ) -> Result<Vec<ScoredMemory>, StoreError> {
        let dims = i32::try_from(query.len())
            .map_err(|_| StoreError::Rejected("the query vector is too long".to_owned()))?;
        let query_vector = query.to_vec();
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error)?;
        if self.iterative_scan {
            // An HNSW scan filtered by person returns fewer than `limit` rows unless it may keep
            // scanning (pgvector >= 0.8); strict order keeps the ranking exact.
            transaction
                .batch_execute("SET LOCAL hnsw.iterative_scan = strict_order")
                .await
                .map_err(db_error)?;
        }
        let rows = match self
            .indexed_searches
            .iter()
            .find(|(n, _)| *n == query.len())
        {
            Some((_, sql)) => {
                let statement = transaction.prepare_cached(sql).await.map_err(db_error)?;
                transaction
                    .query(&statement, &[&user.0, &embedder, &query_vector, &limit])
                    .await
                    .map_err(db_error)?
            }
            None => {
                let sql = "SELECT id, user_id, content, embedding::real[], embedder, created_at, \
                    1 - (embedding <=> $3::real[]::vector) FROM memories \
                    WHERE user_id = $1 AND embedder = $2 AND dims = $5 \
                    ORDER BY embedding <=> $3::real[]::vector LIMIT $4";
                let statement = transaction.prepare_cached(sql).await.map_err(db_error)?;
                transaction
                    .query(
                        &statement,
                        &[&user.0, &embedder, &query_vector, &limit, &dims],
                    )
                    .await
                    .map_err(db_error)?
            }
        };
        transaction.commit().await.map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let similarity: f64 = row.try_get(6).map_err(db_error)?;
                // pgvector's distance to a zero vector is NaN; in process it scores 0.
                let similarity = if similarity.is_nan() { 0.0 } else { similarity };
                Ok(ScoredMemory {
                    memory: memory_from_row(row)?,
                    similarity,
                })
            })
            .collect()
    }
}

/// Whether a pgvector version ("0.8.2") has `hnsw.iterative_scan` (0.8.0 and later).
fn supports_iterative_scan(version: &str) -> bool {
    let mut parts = version
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= (0, 8)
}

fn indexed_searches() -> Vec<(usize, String)> {
    INDEXED_DIMS
        .iter()
        .map(|dims| {
            let sql = format!(
                "SELECT id, user_id, content, embedding::real[], embedder, created_at, \
                 1 - (embedding::vector({dims}) <=> $3::real[]::vector({dims})) FROM memories \
                 WHERE user_id = $1 AND embedder = $2 AND dims = {dims} \
                 ORDER BY embedding::vector({dims}) <=> $3::real[]::vector({dims}) LIMIT $4"
            );
            (*dims, sql)
        })
        .collect()
}

/// Applies each pending migration in its own transaction, under a transaction-scoped advisory
/// lock, so two processes starting at once apply each migration once, one after the other.
async fn run_migrations(client: &mut deadpool_postgres::Client) -> Result<Vec<String>, StoreError> {
    let mut applied = Vec::new();
    for migration in MIGRATIONS {
        let transaction = client.transaction().await.map_err(db_error)?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await
            .map_err(db_error)?;
        transaction
            .batch_execute(LEDGER_SQL)
            .await
            .map_err(db_error)?;
        let done = transaction
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[&migration.version],
            )
            .await
            .map_err(db_error)?
            .is_some();
        if !done {
            transaction
                .batch_execute(migration.sql)
                .await
                .map_err(|error| {
                    let error = db_error(error);
                    tracing::error!(migration = migration.name, %error, "migration failed");
                    error
                })?;
            transaction
                .execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    &[&migration.version, &migration.name],
                )
                .await
                .map_err(db_error)?;
            applied.push(migration.name.to_owned());
        }
        transaction.commit().await.map_err(db_error)?;
        if !done {
            tracing::info!(migration = migration.name, "migration applied");
        }
    }
    Ok(applied)
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
        let rows = self
            .query(
                "SELECT id, profile, goals, timezone, created_at, updated_at FROM users WHERE id = $1",
                &[&id.0],
            )
            .await?;
        rows.first().map(user_from_row).transpose()
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error)?;
        execute(
            &transaction,
            "DELETE FROM dead_letters WHERE user_id = $1",
            &[&id.0],
        )
        .await?;
        execute(
            &transaction,
            "DELETE FROM inbox WHERE user_id = $1",
            &[&id.0],
        )
        .await?;
        // Every other table cascades from users.
        let deleted = execute(&transaction, "DELETE FROM users WHERE id = $1", &[&id.0]).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(deleted > 0)
    }

    async fn food_entry(&self, user: UserId, id: Uuid) -> Result<Option<FoodEntry>, StoreError> {
        let sql = format!("{FOOD_ENTRY_COLUMNS} WHERE user_id = $1 AND id = $2");
        let rows = self.query(&sql, &[&user.0, &id]).await?;
        rows.first().map(food_entry_from_row).transpose()
    }

    async fn food_entries(
        &self,
        user: UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FoodEntry>, StoreError> {
        let sql = format!(
            "{FOOD_ENTRY_COLUMNS} WHERE user_id = $1 AND local_date BETWEEN $2 AND $3 \
             ORDER BY eaten_at, seq"
        );
        let rows = self.query(&sql, &[&user.0, &from, &to]).await?;
        rows.iter().map(food_entry_from_row).collect()
    }

    async fn last_food_entry(&self, user: UserId) -> Result<Option<FoodEntry>, StoreError> {
        let sql = format!(
            "{FOOD_ENTRY_COLUMNS} WHERE user_id = $1 ORDER BY created_at DESC, seq DESC LIMIT 1"
        );
        let rows = self.query(&sql, &[&user.0]).await?;
        rows.first().map(food_entry_from_row).transpose()
    }

    async fn recent_messages(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<ConversationMessage>, StoreError> {
        let rows = self
            .query(RECENT_MESSAGES, &[&user.0, &sql_limit(limit)])
            .await?;
        rows.iter().map(message_from_row).collect()
    }

    async fn memories(&self, user: UserId) -> Result<Vec<Memory>, StoreError> {
        let sql = format!("{MEMORY_COLUMNS} WHERE user_id = $1 ORDER BY created_at, id");
        let rows = self.query(&sql, &[&user.0]).await?;
        rows.iter().map(memory_from_row).collect()
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
        match self.vectors {
            VectorMode::Pgvector => {
                self.search_in_sql(user, embedder, query, sql_limit(limit))
                    .await
            }
            VectorMode::InProcess => {
                let dims = i32::try_from(query.len())
                    .map_err(|_| StoreError::Rejected("the query vector is too long".to_owned()))?;
                let sql = format!(
                    "{MEMORY_COLUMNS} WHERE user_id = $1 AND embedder = $2 AND dims = $3 \
                     ORDER BY created_at, id"
                );
                let rows = self.query(&sql, &[&user.0, &embedder, &dims]).await?;
                let memories = rows
                    .iter()
                    .map(memory_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rank_by_cosine(memories, query, limit))
            }
        }
    }

    async fn weights(
        &self,
        user: UserId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<WeightLog>, StoreError> {
        let rows = self
            .query(
                "SELECT id, user_id, kg, logged_at FROM weight_logs \
                 WHERE user_id = $1 AND logged_at >= $2 AND logged_at < $3 ORDER BY logged_at, id",
                &[&user.0, &from, &to],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(WeightLog {
                    id: row.try_get(0).map_err(db_error)?,
                    user_id: UserId(row.try_get(1).map_err(db_error)?),
                    kg: row.try_get(2).map_err(db_error)?,
                    logged_at: row.try_get(3).map_err(db_error)?,
                })
            })
            .collect()
    }

    async fn reminders(&self, user: UserId) -> Result<Vec<Reminder>, StoreError> {
        let sql = format!("{REMINDER_COLUMNS} WHERE user_id = $1 ORDER BY created_at, id");
        let rows = self.query(&sql, &[&user.0]).await?;
        rows.iter().map(reminder_from_row).collect()
    }

    async fn due_reminders(
        &self,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Reminder>, StoreError> {
        let rows = self.query(DUE_REMINDERS, &[&at, &sql_limit(limit)]).await?;
        rows.iter().map(reminder_from_row).collect()
    }

    async fn xp_events(&self, user: UserId) -> Result<Vec<XpEvent>, StoreError> {
        let rows = self
            .query(
                "SELECT id, user_id, amount, reason, created_at FROM xp_events \
                 WHERE user_id = $1 ORDER BY created_at, id",
                &[&user.0],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(XpEvent {
                    id: row.try_get(0).map_err(db_error)?,
                    user_id: UserId(row.try_get(1).map_err(db_error)?),
                    amount: row.try_get(2).map_err(db_error)?,
                    reason: row.try_get(3).map_err(db_error)?,
                    created_at: row.try_get(4).map_err(db_error)?,
                })
            })
            .collect()
    }

    async fn streaks(&self, user: UserId) -> Result<Vec<Streak>, StoreError> {
        let rows = self
            .query(
                "SELECT user_id, domain, current, best, last_date, freezes_left FROM streaks \
                 WHERE user_id = $1 ORDER BY domain",
                &[&user.0],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Streak {
                    user_id: UserId(row.try_get(0).map_err(db_error)?),
                    domain: row.try_get(1).map_err(db_error)?,
                    current: count(row.try_get(2).map_err(db_error)?)?,
                    best: count(row.try_get(3).map_err(db_error)?)?,
                    last_date: row.try_get(4).map_err(db_error)?,
                    freezes_left: count(row.try_get(5).map_err(db_error)?)?,
                })
            })
            .collect()
    }

    async fn achievements(&self, user: UserId) -> Result<Vec<Achievement>, StoreError> {
        let rows = self
            .query(
                "SELECT user_id, code, earned_at FROM achievements \
                 WHERE user_id = $1 ORDER BY earned_at, code",
                &[&user.0],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Achievement {
                    user_id: UserId(row.try_get(0).map_err(db_error)?),
                    code: row.try_get(1).map_err(db_error)?,
                    earned_at: row.try_get(2).map_err(db_error)?,
                })
            })
            .collect()
    }

    async fn cached_food(
        &self,
        source: &str,
        query: &str,
    ) -> Result<Option<CachedFood>, StoreError> {
        let rows = self
            .query(
                "SELECT source, query, food, fetched_at FROM food_cache \
                 WHERE source = $1 AND query = $2",
                &[&source, &query],
            )
            .await?;
        rows.first()
            .map(|row| {
                Ok(CachedFood {
                    source: row.try_get(0).map_err(db_error)?,
                    query: row.try_get(1).map_err(db_error)?,
                    food: row
                        .try_get::<_, Option<Json<serde_json::Value>>>(2)
                        .map_err(db_error)?
                        .map(|Json(food)| food),
                    fetched_at: row.try_get(3).map_err(db_error)?,
                })
            })
            .transpose()
    }

    async fn cache_food(&self, entry: CachedFood) -> Result<(), StoreError> {
        super::check_cached_food(&entry)?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO food_cache (source, query, food, fetched_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (source, query) DO UPDATE \
                 SET food = EXCLUDED.food, fetched_at = EXCLUDED.fetched_at",
                &[
                    &entry.source,
                    &entry.query,
                    &entry.food.as_ref().map(Json),
                    &entry.fetched_at,
                ],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn insert_api_key(&self, key: ApiKey) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO api_keys (key_hash, user_id, created_at) VALUES ($1, $2, $3)",
                &[&key.hash, &key.user_id.0, &key.created_at],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn api_key_user(&self, hash: &str) -> Result<Option<UserId>, StoreError> {
        let rows = self
            .query("SELECT user_id FROM api_keys WHERE key_hash = $1", &[&hash])
            .await?;
        Ok(rows.first().map(|row| UserId(row.get(0))))
    }

    async fn save_vision_estimates(&self, estimates: &[VisionEstimate]) -> Result<(), StoreError> {
        if estimates.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error)?;
        for estimate in estimates {
            execute(
                &transaction,
                "INSERT INTO vision_estimates (entry_id, item, agent, user_id, grams, kcal, \
                 corrected_grams, created_at, corrected_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (entry_id, item, agent) DO UPDATE SET grams = EXCLUDED.grams, \
                 kcal = EXCLUDED.kcal, corrected_grams = EXCLUDED.corrected_grams, \
                 corrected_at = EXCLUDED.corrected_at \
                 WHERE vision_estimates.user_id = EXCLUDED.user_id",
                &[
                    &estimate.entry_id,
                    &estimate.item,
                    &estimate.agent,
                    &estimate.user_id.0,
                    &estimate.grams,
                    &estimate.kcal,
                    &estimate.corrected_grams,
                    &estimate.created_at,
                    &estimate.corrected_at,
                ],
            )
            .await?;
        }
        transaction.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn vision_estimates(
        &self,
        user: UserId,
        entry_id: Uuid,
    ) -> Result<Vec<VisionEstimate>, StoreError> {
        let sql = format!(
            "{VISION_ESTIMATE_COLUMNS} WHERE user_id = $1 AND entry_id = $2 ORDER BY item, agent"
        );
        let rows = self.query(&sql, &[&user.0, &entry_id]).await?;
        rows.iter().map(vision_estimate_from_row).collect()
    }

    async fn corrected_vision_estimates(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<VisionEstimate>, StoreError> {
        let sql = format!(
            "{VISION_ESTIMATE_COLUMNS} WHERE user_id = $1 AND corrected_at IS NOT NULL \
             ORDER BY corrected_at DESC, entry_id, item, agent LIMIT $2"
        );
        let rows = self.query(&sql, &[&user.0, &sql_limit(limit)]).await?;
        rows.iter().map(vision_estimate_from_row).collect()
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = self
            .query(
                "SELECT id, user_id, message, error, created_at FROM dead_letters \
                 ORDER BY created_at DESC, id DESC LIMIT $1",
                &[&sql_limit(limit)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadLetter {
                    id: row.try_get(0).map_err(db_error)?,
                    user_id: UserId(row.try_get(1).map_err(db_error)?),
                    message: row.try_get(2).map_err(db_error)?,
                    error: row.try_get(3).map_err(db_error)?,
                    created_at: row.try_get(4).map_err(db_error)?,
                })
            })
            .collect()
    }

    async fn inbox_accept(&self, entries: &[InboxEntry]) -> Result<Vec<bool>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = entries.iter().map(|e| e.id).collect();
        let sources: Vec<&str> = entries.iter().map(|e| e.source.as_str()).collect();
        let users: Vec<i64> = entries.iter().map(|e| e.user_id.0).collect();
        let chats: Vec<i64> = entries.iter().map(|e| e.chat).collect();
        let contents: Vec<Json<&serde_json::Value>> =
            entries.iter().map(|e| Json(&e.content)).collect();
        let photos: Vec<Option<&[u8]>> = entries.iter().map(|e| e.photo.as_deref()).collect();
        let received: Vec<DateTime<Utc>> = entries.iter().map(|e| e.received_at).collect();
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error)?;
        let statement = transaction
            .prepare_cached(
                "INSERT INTO inbox (id, source, user_id, chat_id, content, photo, received_at) \
                 SELECT id, source, user_id, chat_id, content, photo, received_at \
                 FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::jsonb[], \
                             $6::bytea[], $7::timestamptz[]) WITH ORDINALITY \
                      AS v(id, source, user_id, chat_id, content, photo, received_at, n) \
                 ORDER BY n \
                 ON CONFLICT (id) DO NOTHING RETURNING id",
            )
            .await
            .map_err(db_error)?;
        let rows = transaction
            .query(
                &statement,
                &[
                    &ids, &sources, &users, &chats, &contents, &photos, &received,
                ],
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        let mut inserted: HashSet<Uuid> = rows.iter().map(|row| row.get(0)).collect();
        // An id twice in one batch: only its first occurrence is new.
        Ok(ids.iter().map(|id| inserted.remove(id)).collect())
    }

    async fn inbox_pending(
        &self,
        source: &str,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let sql =
            format!("{INBOX_COLUMNS} WHERE source = $1 AND done_at IS NULL ORDER BY seq LIMIT $2");
        let rows = self.query(&sql, &[&source, &sql_limit(limit)]).await?;
        rows.iter()
            .map(|row| inbox_from_row(row).map(|record| record.entry))
            .collect()
    }

    async fn inbox_entry(&self, id: Uuid) -> Result<Option<InboxRecord>, StoreError> {
        let sql = format!("{INBOX_COLUMNS} WHERE id = $1");
        let rows = self.query(&sql, &[&id]).await?;
        rows.first().map(inbox_from_row).transpose()
    }

    async fn inbox_entries(&self, ids: &[Uuid]) -> Result<Vec<InboxRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("{INBOX_COLUMNS} WHERE id = ANY($1)");
        let rows = self.query(&sql, &[&ids]).await?;
        rows.iter().map(inbox_from_row).collect()
    }

    async fn inbox_attempted(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, u32)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // An UPDATE waits for a transaction still holding the row (a step or the end of a
        // process that was killed while its COMMIT was on the wire), then reads the row as
        // that transaction left it: the step count it returns is never stale.
        let rows = self
            .query(
                "UPDATE inbox SET attempts = attempts + 1 \
                 WHERE id = ANY($1) AND done_at IS NULL RETURNING id, steps",
                &[&ids],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let steps: i32 = row.try_get(1).map_err(db_error)?;
                Ok((
                    row.try_get(0).map_err(db_error)?,
                    u32::try_from(steps).unwrap_or_default(),
                ))
            })
            .collect()
    }

    async fn inbox_backlog(&self) -> Result<InboxBacklog, StoreError> {
        let rows = self
            .query(
                "SELECT count(*), min(received_at) FROM inbox WHERE done_at IS NULL",
                &[],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(InboxBacklog::default());
        };
        let pending: i64 = row.try_get(0).map_err(db_error)?;
        Ok(InboxBacklog {
            pending: u64::try_from(pending).unwrap_or_default(),
            oldest: row.try_get(1).map_err(db_error)?,
        })
    }

    async fn inbox_prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM inbox WHERE done_at IS NOT NULL AND done_at < $1",
                &[&before],
            )
            .await
            .map_err(db_error)
    }
}

const VISION_ESTIMATE_COLUMNS: &str = "SELECT entry_id, item, agent, user_id, grams, kcal, \
     corrected_grams, created_at, corrected_at FROM vision_estimates";

fn vision_estimate_from_row(row: &tokio_postgres::Row) -> Result<VisionEstimate, StoreError> {
    Ok(VisionEstimate {
        entry_id: row.try_get(0).map_err(db_error)?,
        item: row.try_get(1).map_err(db_error)?,
        agent: row.try_get(2).map_err(db_error)?,
        user_id: UserId(row.try_get(3).map_err(db_error)?),
        grams: row.try_get(4).map_err(db_error)?,
        kcal: row.try_get(5).map_err(db_error)?,
        corrected_grams: row.try_get(6).map_err(db_error)?,
        created_at: row.try_get(7).map_err(db_error)?,
        corrected_at: row.try_get(8).map_err(db_error)?,
    })
}

/// Runs one statement (prepared once per connection) and returns the rows it touched.
async fn execute(
    transaction: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = transaction.prepare_cached(sql).await.map_err(db_error)?;
    transaction
        .execute(&statement, params)
        .await
        .map_err(db_error)
}

/// Splits a batch into runs of consecutive writes of the same kind; applying the runs in order
/// is the same as applying the writes in order.
fn groups(batch: &[Write]) -> impl Iterator<Item = &[Write]> {
    batch.chunk_by(|a, b| std::mem::discriminant(a) == std::mem::discriminant(b))
}

/// For upserts and updates, which must not touch one row twice in one statement: the last write
/// of each key, in batch order (what applying them one by one would leave).
fn last_per_key<T, K: Eq + Hash>(items: Vec<&T>, key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut seen = HashSet::with_capacity(items.len());
    let mut kept: Vec<&T> = items
        .into_iter()
        .rev()
        .filter(|item| seen.insert(key(item)))
        .collect();
    kept.reverse();
    kept
}

/// The columns of food entries, as arrays for UNNEST.
struct FoodColumns<'a> {
    ids: Vec<Uuid>,
    users: Vec<i64>,
    eaten_at: Vec<DateTime<Utc>>,
    local_dates: Vec<NaiveDate>,
    meal_types: Vec<Option<&'static str>>,
    descriptions: Vec<&'a str>,
    items: Vec<Json<&'a [FoodItem]>>,
    kcal: Vec<f64>,
    protein: Vec<f64>,
    carbs: Vec<f64>,
    fat: Vec<f64>,
    fiber: Vec<f64>,
    photos: Vec<Option<&'a str>>,
    created_at: Vec<DateTime<Utc>>,
}

impl<'a> FoodColumns<'a> {
    fn new(entries: &[&'a FoodEntry]) -> Self {
        Self {
            ids: entries.iter().map(|e| e.id).collect(),
            users: entries.iter().map(|e| e.user_id.0).collect(),
            eaten_at: entries.iter().map(|e| e.eaten_at).collect(),
            local_dates: entries.iter().map(|e| e.local_date).collect(),
            meal_types: entries
                .iter()
                .map(|e| e.meal_type.map(MealType::as_str))
                .collect(),
            descriptions: entries.iter().map(|e| e.description.as_str()).collect(),
            items: entries.iter().map(|e| Json(e.items.as_slice())).collect(),
            kcal: entries.iter().map(|e| e.total.kcal).collect(),
            protein: entries.iter().map(|e| e.total.protein_g).collect(),
            carbs: entries.iter().map(|e| e.total.carbs_g).collect(),
            fat: entries.iter().map(|e| e.total.fat_g).collect(),
            fiber: entries.iter().map(|e| e.total.fiber_g).collect(),
            photos: entries.iter().map(|e| e.photo_path.as_deref()).collect(),
            created_at: entries.iter().map(|e| e.created_at).collect(),
        }
    }

    /// The columns an update sets, in the order of `UPDATE_FOOD_ENTRIES`'s parameters.
    fn update_params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.ids,
            &self.users,
            &self.eaten_at,
            &self.local_dates,
            &self.meal_types,
            &self.descriptions,
            &self.items,
            &self.kcal,
            &self.protein,
            &self.carbs,
            &self.fat,
            &self.fiber,
            &self.photos,
        ]
    }

    /// The update's columns plus `created_at`, in the order of `INSERT_FOOD_ENTRIES`'s.
    fn insert_params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params = self.update_params();
        params.push(&self.created_at);
        params
    }
}

/// Applies a run of writes of one kind as one statement.
async fn apply_group(
    transaction: &deadpool_postgres::Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    let Some(first) = group.first() else {
        return Ok(());
    };
    match first {
        Write::UpsertUser(_) => {
            let users = last_per_key(
                group
                    .iter()
                    .filter_map(|w| match w {
                        Write::UpsertUser(user) => Some(user),
                        _ => None,
                    })
                    .collect(),
                |user| user.id,
            );
            let ids: Vec<i64> = users.iter().map(|u| u.id.0).collect();
            let profiles: Vec<Json<&Profile>> = users.iter().map(|u| Json(&u.profile)).collect();
            let goals: Vec<Json<&Goals>> = users.iter().map(|u| Json(&u.goals)).collect();
            let zones: Vec<&str> = users.iter().map(|u| u.timezone.as_str()).collect();
            let created: Vec<DateTime<Utc>> = users.iter().map(|u| u.created_at).collect();
            let updated: Vec<DateTime<Utc>> = users.iter().map(|u| u.updated_at).collect();
            execute(
                transaction,
                UPSERT_USERS,
                &[&ids, &profiles, &goals, &zones, &created, &updated],
            )
            .await?;
        }
        Write::InsertFoodEntry(_) => {
            let entries: Vec<&FoodEntry> = group
                .iter()
                .filter_map(|w| match w {
                    Write::InsertFoodEntry(entry) => Some(entry),
                    _ => None,
                })
                .collect();
            let columns = FoodColumns::new(&entries);
            execute(transaction, INSERT_FOOD_ENTRIES, &columns.insert_params()).await?;
        }
        Write::UpdateFoodEntry(_) => {
            let entries = last_per_key(
                group
                    .iter()
                    .filter_map(|w| match w {
                        Write::UpdateFoodEntry(entry) => Some(entry),
                        _ => None,
                    })
                    .collect(),
                |entry| entry.id,
            );
            let columns = FoodColumns::new(&entries);
            execute(transaction, UPDATE_FOOD_ENTRIES, &columns.update_params()).await?;
        }
        Write::DeleteFoodEntry { .. }
        | Write::DeleteMemory { .. }
        | Write::DeleteReminder { .. } => {
            let (users, ids): (Vec<i64>, Vec<Uuid>) = group
                .iter()
                .filter_map(|w| match w {
                    Write::DeleteFoodEntry { user_id, id }
                    | Write::DeleteMemory { user_id, id }
                    | Write::DeleteReminder { user_id, id } => Some((user_id.0, *id)),
                    _ => None,
                })
                .unzip();
            let sql = match first {
                Write::DeleteFoodEntry { .. } => DELETE_FOOD_ENTRIES,
                Write::DeleteMemory { .. } => DELETE_MEMORIES,
                _ => DELETE_REMINDERS,
            };
            execute(transaction, sql, &[&users, &ids]).await?;
        }
        Write::AppendMessage(_) => {
            let messages: Vec<&ConversationMessage> = group
                .iter()
                .filter_map(|w| match w {
                    Write::AppendMessage(message) => Some(message),
                    _ => None,
                })
                .collect();
            let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
            let users: Vec<i64> = messages.iter().map(|m| m.user_id.0).collect();
            let roles: Vec<&str> = messages.iter().map(|m| m.role.as_str()).collect();
            let contents: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
            let created: Vec<DateTime<Utc>> = messages.iter().map(|m| m.created_at).collect();
            execute(
                transaction,
                INSERT_MESSAGES,
                &[&ids, &users, &roles, &contents, &created],
            )
            .await?;
        }
        Write::InsertMemory(_) => {
            let memories: Vec<&Memory> = group
                .iter()
                .filter_map(|w| match w {
                    Write::InsertMemory(memory) => Some(memory),
                    _ => None,
                })
                .collect();
            let ids: Vec<Uuid> = memories.iter().map(|m| m.id).collect();
            let users: Vec<i64> = memories.iter().map(|m| m.user_id.0).collect();
            let contents: Vec<&str> = memories.iter().map(|m| m.content.as_str()).collect();
            let embedders: Vec<&str> = memories.iter().map(|m| m.embedder.as_str()).collect();
            let mut dims = Vec::with_capacity(memories.len());
            let mut starts = Vec::with_capacity(memories.len());
            let mut flat: Vec<f32> = Vec::new();
            for memory in &memories {
                let too_long =
                    || StoreError::Rejected("the embeddings of a batch are too long".to_owned());
                starts.push(i32::try_from(flat.len()).map_err(|_| too_long())?);
                dims.push(i32::try_from(memory.embedding.len()).map_err(|_| too_long())?);
                flat.extend_from_slice(&memory.embedding);
            }
            let created: Vec<DateTime<Utc>> = memories.iter().map(|m| m.created_at).collect();
            execute(
                transaction,
                INSERT_MEMORIES,
                &[
                    &ids, &users, &contents, &embedders, &dims, &flat, &starts, &created,
                ],
            )
            .await?;
        }
        Write::InsertWeight(_) => {
            let weights: Vec<&WeightLog> = group
                .iter()
                .filter_map(|w| match w {
                    Write::InsertWeight(weight) => Some(weight),
                    _ => None,
                })
                .collect();
            let ids: Vec<Uuid> = weights.iter().map(|w| w.id).collect();
            let users: Vec<i64> = weights.iter().map(|w| w.user_id.0).collect();
            let kg: Vec<f64> = weights.iter().map(|w| w.kg).collect();
            let logged: Vec<DateTime<Utc>> = weights.iter().map(|w| w.logged_at).collect();
            execute(transaction, INSERT_WEIGHTS, &[&ids, &users, &kg, &logged]).await?;
        }
        Write::UpsertReminder(_) => {
            let reminders = last_per_key(
                group
                    .iter()
                    .filter_map(|w| match w {
                        Write::UpsertReminder(reminder) => Some(reminder),
                        _ => None,
                    })
                    .collect(),
                |reminder| reminder.id,
            );
            let ids: Vec<Uuid> = reminders.iter().map(|r| r.id).collect();
            let users: Vec<i64> = reminders.iter().map(|r| r.user_id.0).collect();
            let texts: Vec<&str> = reminders.iter().map(|r| r.text.as_str()).collect();
            let schedules: Vec<Json<&ReminderSchedule>> =
                reminders.iter().map(|r| Json(&r.schedule)).collect();
            let next: Vec<Option<DateTime<Utc>>> =
                reminders.iter().map(|r| r.next_fire_at).collect();
            let active: Vec<bool> = reminders.iter().map(|r| r.active).collect();
            let created: Vec<DateTime<Utc>> = reminders.iter().map(|r| r.created_at).collect();
            execute(
                transaction,
                UPSERT_REMINDERS,
                &[&ids, &users, &texts, &schedules, &next, &active, &created],
            )
            .await?;
        }
        Write::InsertXp(_) => {
            let events: Vec<&XpEvent> = group
                .iter()
                .filter_map(|w| match w {
                    Write::InsertXp(event) => Some(event),
                    _ => None,
                })
                .collect();
            let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
            let users: Vec<i64> = events.iter().map(|e| e.user_id.0).collect();
            let amounts: Vec<i64> = events.iter().map(|e| e.amount).collect();
            let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
            let created: Vec<DateTime<Utc>> = events.iter().map(|e| e.created_at).collect();
            execute(
                transaction,
                INSERT_XP,
                &[&ids, &users, &amounts, &reasons, &created],
            )
            .await?;
        }
        Write::UpsertStreak(_) => {
            let streaks = last_per_key(
                group
                    .iter()
                    .filter_map(|w| match w {
                        Write::UpsertStreak(streak) => Some(streak),
                        _ => None,
                    })
                    .collect(),
                |streak| (streak.user_id, streak.domain.clone()),
            );
            let users: Vec<i64> = streaks.iter().map(|s| s.user_id.0).collect();
            let domains: Vec<&str> = streaks.iter().map(|s| s.domain.as_str()).collect();
            let current = streaks
                .iter()
                .map(|s| small(s.current))
                .collect::<Result<Vec<_>, _>>()?;
            let best = streaks
                .iter()
                .map(|s| small(s.best))
                .collect::<Result<Vec<_>, _>>()?;
            let last: Vec<Option<NaiveDate>> = streaks.iter().map(|s| s.last_date).collect();
            let freezes = streaks
                .iter()
                .map(|s| small(s.freezes_left))
                .collect::<Result<Vec<_>, _>>()?;
            execute(
                transaction,
                UPSERT_STREAKS,
                &[&users, &domains, &current, &best, &last, &freezes],
            )
            .await?;
        }
        Write::InsertAchievement(_) => {
            let achievements: Vec<&Achievement> = group
                .iter()
                .filter_map(|w| match w {
                    Write::InsertAchievement(achievement) => Some(achievement),
                    _ => None,
                })
                .collect();
            let users: Vec<i64> = achievements.iter().map(|a| a.user_id.0).collect();
            let codes: Vec<&str> = achievements.iter().map(|a| a.code.as_str()).collect();
            let earned: Vec<DateTime<Utc>> = achievements.iter().map(|a| a.earned_at).collect();
            execute(transaction, INSERT_ACHIEVEMENTS, &[&users, &codes, &earned]).await?;
        }
        Write::InsertDeadLetter(_) => {
            let letters: Vec<&DeadLetter> = group
                .iter()
                .filter_map(|w| match w {
                    Write::InsertDeadLetter(letter) => Some(letter),
                    _ => None,
                })
                .collect();
            let ids: Vec<Uuid> = letters.iter().map(|l| l.id).collect();
            let users: Vec<i64> = letters.iter().map(|l| l.user_id.0).collect();
            let messages: Vec<&serde_json::Value> = letters.iter().map(|l| &l.message).collect();
            let errors: Vec<&str> = letters.iter().map(|l| l.error.as_str()).collect();
            let created: Vec<DateTime<Utc>> = letters.iter().map(|l| l.created_at).collect();
            execute(
                transaction,
                INSERT_DEAD_LETTERS,
                &[&ids, &users, &messages, &errors, &created],
            )
            .await?;
        }
        Write::InboxStep { .. } => {
            let (ids, steps): (Vec<Uuid>, Vec<i32>) = group
                .iter()
                .filter_map(|w| match w {
                    Write::InboxStep { id, step } => Some((*id, i32::try_from(*step).ok()?)),
                    _ => None,
                })
                .unzip();
            execute(
                transaction,
                "UPDATE inbox SET steps = GREATEST(inbox.steps, v.step) \
                 FROM (SELECT id, max(step) AS step FROM UNNEST($1::uuid[], $2::int4[]) \
                       AS u(id, step) GROUP BY id) AS v \
                 WHERE inbox.id = v.id",
                &[&ids, &steps],
            )
            .await?;
        }
        Write::InboxDone { .. } => {
            let mut seen = HashSet::new();
            let mut ids = Vec::new();
            let mut at = Vec::new();
            let mut outcomes = Vec::new();
            let mut replies = Vec::new();
            for write in group {
                if let Write::InboxDone {
                    id,
                    outcome,
                    replies: said,
                    at: when,
                } = write
                {
                    // The first end of an entry is its end.
                    if seen.insert(*id) {
                        ids.push(*id);
                        at.push(*when);
                        outcomes.push(outcome.as_str());
                        replies.push(Json(said));
                    }
                }
            }
            execute(
                transaction,
                "UPDATE inbox SET done_at = v.at, outcome = v.outcome, replies = v.replies \
                 FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::jsonb[]) \
                      AS v(id, at, outcome, replies) \
                 WHERE inbox.id = v.id AND inbox.done_at IS NULL",
                &[&ids, &at, &outcomes, &replies],
            )
            .await?;
        }
    }
    Ok(())
}

/// The columns [`inbox_from_row`] reads.
const INBOX_COLUMNS: &str = "SELECT id, source, user_id, chat_id, content, photo, received_at, \
     steps, attempts, done_at, outcome, replies FROM inbox";

fn inbox_from_row(row: &Row) -> Result<InboxRecord, StoreError> {
    let steps: i32 = row.try_get(7).map_err(db_error)?;
    let attempts: i32 = row.try_get(8).map_err(db_error)?;
    let replies: Option<Json<Vec<String>>> = row.try_get(11).map_err(db_error)?;
    Ok(InboxRecord {
        entry: InboxEntry {
            id: row.try_get(0).map_err(db_error)?,
            source: row.try_get(1).map_err(db_error)?,
            user_id: UserId(row.try_get(2).map_err(db_error)?),
            chat: row.try_get(3).map_err(db_error)?,
            content: row.try_get(4).map_err(db_error)?,
            photo: row.try_get(5).map_err(db_error)?,
            received_at: row.try_get(6).map_err(db_error)?,
            steps: count(steps)?,
            attempts: count(attempts)?,
        },
        done_at: row.try_get(9).map_err(db_error)?,
        outcome: row
            .try_get::<_, Option<String>>(10)
            .map_err(db_error)?
            .as_deref()
            .map(inbox_outcome)
            .transpose()?,
        replies: replies.map(|Json(replies)| replies).unwrap_or_default(),
    })
}

fn inbox_outcome(text: &str) -> Result<InboxOutcome, StoreError> {
    InboxOutcome::parse(text)
        .ok_or_else(|| StoreError::Other(format!("unknown stored inbox outcome {text:?}")))
}

fn small(value: u32) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| StoreError::Rejected(format!("{value} is too large to store")))
}

fn count(value: i32) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Other(format!("stored count {value} is negative")))
}

fn user_from_row(row: &Row) -> Result<User, StoreError> {
    let profile: Json<Profile> = row.try_get(1).map_err(db_error)?;
    let goals: Json<Goals> = row.try_get(2).map_err(db_error)?;
    Ok(User {
        id: UserId(row.try_get(0).map_err(db_error)?),
        profile: profile.0,
        goals: goals.0,
        timezone: row.try_get(3).map_err(db_error)?,
        created_at: row.try_get(4).map_err(db_error)?,
        updated_at: row.try_get(5).map_err(db_error)?,
    })
}

fn food_entry_from_row(row: &Row) -> Result<FoodEntry, StoreError> {
    let meal_type: Option<String> = row.try_get(4).map_err(db_error)?;
    let meal_type = meal_type
        .map(|text| {
            MealType::parse(&text)
                .ok_or_else(|| StoreError::Other(format!("unknown stored meal type {text:?}")))
        })
        .transpose()?;
    let items: Json<Vec<FoodItem>> = row.try_get(6).map_err(db_error)?;
    Ok(FoodEntry {
        id: row.try_get(0).map_err(db_error)?,
        user_id: UserId(row.try_get(1).map_err(db_error)?),
        eaten_at: row.try_get(2).map_err(db_error)?,
        local_date: row.try_get(3).map_err(db_error)?,
        meal_type,
        description: row.try_get(5).map_err(db_error)?,
        items: items.0,
        total: Nutrients {
            kcal: row.try_get(7).map_err(db_error)?,
            protein_g: row.try_get(8).map_err(db_error)?,
            carbs_g: row.try_get(9).map_err(db_error)?,
            fat_g: row.try_get(10).map_err(db_error)?,
            fiber_g: row.try_get(11).map_err(db_error)?,
        },
        photo_path: row.try_get(12).map_err(db_error)?,
        created_at: row.try_get(13).map_err(db_error)?,
    })
}

fn message_from_row(row: &Row) -> Result<ConversationMessage, StoreError> {
    let role: String = row.try_get(2).map_err(db_error)?;
    Ok(ConversationMessage {
        id: row.try_get(0).map_err(db_error)?,
        user_id: UserId(row.try_get(1).map_err(db_error)?),
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Other(format!("unknown stored role {role:?}")))?,
        content: row.try_get(3).map_err(db_error)?,
        created_at: row.try_get(4).map_err(db_error)?,
    })
}

fn memory_from_row(row: &Row) -> Result<Memory, StoreError> {
    Ok(Memory {
        id: row.try_get(0).map_err(db_error)?,
        user_id: UserId(row.try_get(1).map_err(db_error)?),
        content: row.try_get(2).map_err(db_error)?,
        embedding: row.try_get(3).map_err(db_error)?,
        embedder: row.try_get(4).map_err(db_error)?,
        created_at: row.try_get(5).map_err(db_error)?,
    })
}

fn reminder_from_row(row: &Row) -> Result<Reminder, StoreError> {
    let schedule: Json<ReminderSchedule> = row.try_get(3).map_err(db_error)?;
    Ok(Reminder {
        id: row.try_get(0).map_err(db_error)?,
        user_id: UserId(row.try_get(1).map_err(db_error)?),
        text: row.try_get(2).map_err(db_error)?,
        schedule: schedule.0,
        next_fire_at: row.try_get(4).map_err(db_error)?,
        active: row.try_get(5).map_err(db_error)?,
        created_at: row.try_get(6).map_err(db_error)?,
    })
}

/// Classifies a driver error: can a retry help (`Unavailable`), was the data refused
/// (`Rejected`), or something else. Messages carry the server's message and SQLSTATE, never the
/// row values (a constraint's DETAIL may quote them).
fn db_error(error: tokio_postgres::Error) -> StoreError {
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

    #[test]
    fn iterative_scans_from_pgvector_0_8() {
        assert!(supports_iterative_scan("0.8.2"));
        assert!(supports_iterative_scan("0.10.0"));
        assert!(supports_iterative_scan("1.0"));
        assert!(!supports_iterative_scan("0.7.4"));
        assert!(!supports_iterative_scan("garbage"));
    }

    #[test]
    fn indexed_search_statements_match_the_migration() {
        let migration = MIGRATIONS[1].sql;
        let listed: Vec<String> = INDEXED_DIMS.iter().map(usize::to_string).collect();
        assert!(migration.contains(&format!("ARRAY[{}]", listed.join(", "))));
    }
}
