//! The store: where everything the product knows is kept, behind the `Store` port of the core.
//!
//! Two adapters implement [`health_actors::ports::Store`]:
//! - [`postgres::PostgresStore`] for production (PostgreSQL >= 14; pgvector when the server has
//!   it, otherwise embeddings ranked in process), selected by `DATABASE_URL`;
//! - [`sqlite::SqliteStore`], the embedded default, so the service runs with no database server.
//!
//! Both apply their own numbered migrations at start (listed from the files and recorded in
//! `schema_migrations` by `migrations`), take every
//! write through `apply` (one transaction per batch, idempotent on ids), and are held to the same
//! behaviour by `tests/integration/store_conformance.rs`. This module is the entry point startup
//! code uses: [`open`] and [`migrate`].

mod migrations;
pub mod postgres;
pub mod similarity;
pub mod sqlite;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use health_actors::domain::{FoodEntry, FoodItem, Nutrients, Profile};
pub use health_actors::ports::StoreError;
use health_actors::ports::{Store, Write};

pub use self::postgres::PostgresStore;
pub use self::sqlite::SqliteStore;

/// Which database to use and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded default: SQLite file (e.g. production/data/health_agent.db); parent dirs created.
    Embedded { path: PathBuf },
    /// PostgreSQL; the url may hold a password: Debug must redact it.
    Postgres { url: String, max_connections: usize },
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Embedded { path } => f.debug_struct("Embedded").field("path", path).finish(),
            Self::Postgres {
                url,
                max_connections,
            } => f
                .debug_struct("Postgres")
                .field("url", &redact_url(url))
                .field("max_connections", max_connections)
                .finish(),
        }
    }
}

/// What a start (or `health-agent migrate`) did to the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Names of the migrations applied now (e.g. "0001_initial"), in order; empty when the schema
    /// was already current.
    pub applied: Vec<String>,
    /// "postgres+pgvector", "postgres" (embeddings ranked in process) or "sqlite".
    pub backend: &'static str,
}

/// Connects, applies pending migrations, logs which vector mode is in use, returns the store.
pub async fn open(config: &StoreConfig) -> Result<(Arc<dyn Store>, MigrationReport), StoreError> {
    let (store, report): (Arc<dyn Store>, MigrationReport) = match config {
        StoreConfig::Embedded { path } => {
            let (store, report) = SqliteStore::open(path).await?;
            (Arc::new(store), report)
        }
        StoreConfig::Postgres {
            url,
            max_connections,
        } => {
            let (store, report) = PostgresStore::connect(url, *max_connections).await?;
            (Arc::new(store), report)
        }
    };
    tracing::info!(
        backend = report.backend,
        applied = ?report.applied,
        "store ready"
    );
    Ok((store, report))
}

/// Applies pending migrations and returns what it applied (for `health-agent migrate`).
pub async fn migrate(config: &StoreConfig) -> Result<MigrationReport, StoreError> {
    open(config).await.map(|(_, report)| report)
}

/// The URL with any password replaced by `***`, for logs and `Debug`.
///
/// Handles `scheme://user:password@host/...` and `password=...` in a query string or a
/// key/value connection string.
pub fn redact_url(url: &str) -> String {
    let mut text = url.to_owned();
    if let Some(scheme_end) = text.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = text[authority_start..]
            .find(['/', '?'])
            .map_or(text.len(), |offset| authority_start + offset);
        if let Some(at) = text[authority_start..authority_end].rfind('@') {
            let userinfo_end = authority_start + at;
            if let Some(colon) = text[authority_start..userinfo_end].find(':') {
                text.replace_range(authority_start + colon + 1..userinfo_end, "***");
            }
        }
    }
    let mut redacted = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(position) = rest.to_ascii_lowercase().find("password=") {
        let value_start = position + "password=".len();
        redacted.push_str(&rest[..value_start]);
        redacted.push_str("***");
        let value_end = rest[value_start..]
            .find(['&', ' '])
            .map_or(rest.len(), |offset| value_start + offset);
        rest = &rest[value_end..];
    }
    redacted.push_str(rest);
    redacted
}

/// Checks what both databases must refuse alike, before anything is written: text with NUL
/// characters (PostgreSQL cannot store them), numbers that are not finite where they are stored
/// as JSON or totals (JSON has no NaN), embeddings that are empty, not finite or too long for
/// pgvector, and counts that do not fit the schema's integers.
pub(crate) fn validate(batch: &[Write]) -> Result<(), StoreError> {
    batch.iter().try_for_each(validate_write)
}

/// pgvector's limit on the number of dimensions of a `vector`.
pub(crate) const MAX_EMBEDDING_DIMS: usize = 16_000;

fn validate_write(write: &Write) -> Result<(), StoreError> {
    let kind = write.kind();
    match write {
        Write::UpsertUser(user) => {
            check_profile(kind, &user.profile)?;
            check_text(kind, "timezone", &user.timezone)?;
            let goals = &user.goals;
            [goals.kcal, goals.protein_g, goals.carbs_g, goals.fat_g]
                .into_iter()
                .flatten()
                .try_for_each(|value| check_finite(kind, "goals", value))
        }
        Write::InsertFoodEntry(entry) | Write::UpdateFoodEntry(entry) => {
            check_food_entry(kind, entry)
        }
        Write::AppendMessage(message) => check_text(kind, "content", &message.content),
        Write::InsertMemory(memory) => {
            check_text(kind, "content", &memory.content)?;
            check_text(kind, "embedder", &memory.embedder)?;
            if memory.embedding.is_empty() || memory.embedding.len() > MAX_EMBEDDING_DIMS {
                return Err(StoreError::Rejected(format!(
                    "{kind}: an embedding must have 1 to {MAX_EMBEDDING_DIMS} dimensions, not {}",
                    memory.embedding.len()
                )));
            }
            if memory.embedding.iter().any(|value| !value.is_finite()) {
                return Err(StoreError::Rejected(format!(
                    "{kind}: the embedding holds a value that is not finite"
                )));
            }
            Ok(())
        }
        Write::UpsertReminder(reminder) => check_text(kind, "text", &reminder.text),
        Write::InsertXp(event) => check_text(kind, "reason", &event.reason),
        Write::UpsertStreak(streak) => {
            check_text(kind, "domain", &streak.domain)?;
            for (field, value) in [
                ("current", streak.current),
                ("best", streak.best),
                ("freezes_left", streak.freezes_left),
            ] {
                if i32::try_from(value).is_err() {
                    return Err(StoreError::Rejected(format!(
                        "{kind}: {field} is too large"
                    )));
                }
            }
            Ok(())
        }
        Write::InsertAchievement(achievement) => check_text(kind, "code", &achievement.code),
        Write::InsertDeadLetter(letter) => {
            check_text(kind, "error", &letter.error)?;
            check_json(kind, "message", &letter.message)
        }
        Write::InboxDone { replies, .. } => replies
            .iter()
            .try_for_each(|reply| check_text(kind, "replies", reply)),
        Write::InboxStep { step, kept, .. } => {
            if i32::try_from(*step).is_err() {
                return Err(StoreError::Rejected(format!("{kind}: step is too large")));
            }
            kept.iter()
                .try_for_each(|text| check_text(kind, "kept", text))
        }
        Write::InsertWeight(_)
        | Write::InboxStarted { .. }
        | Write::DeleteFoodEntry { .. }
        | Write::DeleteMemory { .. }
        | Write::DeleteReminder { .. } => Ok(()),
    }
}

fn check_food_entry(kind: &str, entry: &FoodEntry) -> Result<(), StoreError> {
    check_text(kind, "description", &entry.description)?;
    if let Some(path) = &entry.photo_path {
        check_text(kind, "photo_path", path)?;
    }
    check_nutrients(kind, &entry.total)?;
    entry
        .items
        .iter()
        .try_for_each(|item| check_item(kind, item))
}

fn check_item(kind: &str, item: &FoodItem) -> Result<(), StoreError> {
    check_text(kind, "item input", &item.input)?;
    check_text(kind, "item name", &item.name)?;
    check_finite(kind, "item grams", item.grams)?;
    check_finite(kind, "item confidence", item.confidence)?;
    check_nutrients(kind, &item.nutrients)
}

fn check_nutrients(kind: &str, nutrients: &Nutrients) -> Result<(), StoreError> {
    [
        nutrients.kcal,
        nutrients.protein_g,
        nutrients.carbs_g,
        nutrients.fat_g,
        nutrients.fiber_g,
    ]
    .into_iter()
    .try_for_each(|value| check_finite(kind, "nutrients", value))
}

fn check_profile(kind: &str, profile: &Profile) -> Result<(), StoreError> {
    for text in [&profile.display_name, &profile.language]
        .into_iter()
        .flatten()
    {
        check_text(kind, "profile", text)?;
    }
    [profile.height_cm, profile.weight_kg]
        .into_iter()
        .flatten()
        .try_for_each(|value| check_finite(kind, "profile", value))
}

fn check_json(kind: &str, field: &str, value: &serde_json::Value) -> Result<(), StoreError> {
    match value {
        serde_json::Value::String(text) => check_text(kind, field, text),
        serde_json::Value::Array(values) => values
            .iter()
            .try_for_each(|value| check_json(kind, field, value)),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(key, value)| {
            check_text(kind, field, key)?;
            check_json(kind, field, value)
        }),
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
            Ok(())
        }
    }
}

/// What both backends refuse in a cache entry, as for any write.
pub(crate) fn check_cached_food(
    entry: &health_actors::ports::CachedFood,
) -> Result<(), StoreError> {
    check_text("cache_food", "source", &entry.source)?;
    check_text("cache_food", "query", &entry.query)?;
    if let Some(food) = &entry.food {
        check_json("cache_food", "food", food)?;
    }
    Ok(())
}

fn check_text(kind: &str, field: &str, text: &str) -> Result<(), StoreError> {
    if text.contains('\0') {
        Err(StoreError::Rejected(format!(
            "{kind}: {field} contains a NUL character"
        )))
    } else {
        Ok(())
    }
}

fn check_finite(kind: &str, field: &str, value: f64) -> Result<(), StoreError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(StoreError::Rejected(format!(
            "{kind}: {field} holds a number that is not finite"
        )))
    }
}

/// The people a batch writes rows for (sorted, without repeats): each needs a users row before
/// its rows can reference it. Deletes and dead letters need none.
pub(crate) fn people_written(batch: &[Write]) -> Vec<i64> {
    let mut ids: Vec<i64> = batch
        .iter()
        .filter_map(|write| match write {
            Write::UpsertUser(user) => Some(user.id),
            Write::InsertFoodEntry(entry) | Write::UpdateFoodEntry(entry) => Some(entry.user_id),
            Write::AppendMessage(message) => Some(message.user_id),
            Write::InsertMemory(memory) => Some(memory.user_id),
            Write::InsertWeight(weight) => Some(weight.user_id),
            Write::UpsertReminder(reminder) => Some(reminder.user_id),
            Write::InsertXp(event) => Some(event.user_id),
            Write::UpsertStreak(streak) => Some(streak.user_id),
            Write::InsertAchievement(achievement) => Some(achievement.user_id),
            Write::DeleteFoodEntry { .. }
            | Write::DeleteMemory { .. }
            | Write::DeleteReminder { .. }
            | Write::InsertDeadLetter(_)
            | Write::InboxStarted { .. }
            | Write::InboxStep { .. }
            | Write::InboxDone { .. } => None,
        })
        .map(|id| id.0)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Converts a row limit to SQL's integer; anything beyond i64 means "no limit" anyway.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgresql://bot:s3cr%40t@db.example:5432/health"),
            "postgresql://bot:***@db.example:5432/health"
        );
        assert_eq!(
            redact_url("postgres://db/health?user=bot&password=hunter2&sslmode=disable"),
            "postgres://db/health?user=bot&password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("host=db user=bot PASSWORD=x dbname=h"),
            "host=db user=bot PASSWORD=*** dbname=h"
        );
        assert_eq!(
            redact_url("postgresql://postgres@127.0.0.1:5432/postgres"),
            "postgresql://postgres@127.0.0.1:5432/postgres"
        );
    }

    #[test]
    fn debug_of_the_config_hides_the_password() {
        let config = StoreConfig::Postgres {
            url: "postgresql://bot:topsecret@db/health".to_owned(),
            max_connections: 4,
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
        assert!(shown.contains("bot:***@db"), "{shown}");
    }
}
