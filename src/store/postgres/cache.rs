//! The food lookup cache in PostgreSQL: answers of the nutrition sources by (source, query).

use health_actors::ports::{CachedFood, StoreError};
use tokio_postgres::types::Json;

use super::{db_error, PostgresStore};

pub(super) async fn cached_food(
    store: &PostgresStore,
    source: &str,
    query: &str,
) -> Result<Option<CachedFood>, StoreError> {
    let rows = store
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

pub(super) async fn cache_food(store: &PostgresStore, entry: CachedFood) -> Result<(), StoreError> {
    crate::store::check_cached_food(&entry)?;
    let client = store.client().await?;
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
