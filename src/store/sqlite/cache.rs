//! The food lookup cache in SQLite: answers of the nutrition sources by (source, query).

use health_actors::ports::{CachedFood, StoreError};
use rusqlite::{params, OptionalExtension};

use super::codec::{micros, time};
use super::{sqlite_error, SqliteStore};

pub(super) async fn cached_food(
    store: &SqliteStore,
    source: &str,
    query: &str,
) -> Result<Option<CachedFood>, StoreError> {
    let key = (source.to_owned(), query.to_owned());
    let row = store
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
                .map_err(|error| StoreError::Other(format!("cached food is not JSON: {error}")))?,
            fetched_at: time(fetched_at)?,
        })
    })
    .transpose()
}

pub(super) async fn cache_food(store: &SqliteStore, entry: CachedFood) -> Result<(), StoreError> {
    crate::store::check_cached_food(&entry)?;
    let food = entry.food.as_ref().map(serde_json::Value::to_string);
    let fetched_at = micros(entry.fetched_at);
    store
        .write(move |transaction| {
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
