//! The vision agents' estimates in PostgreSQL: kept per photo, item and agent, corrected later by
//! the person, and read back to calibrate the agents.

use health_actors::domain::{UserId, VisionEstimate};
use health_actors::ports::StoreError;
use uuid::Uuid;

use super::{db_error, execute, PostgresStore};
use crate::store::sql_limit;

const VISION_ESTIMATE_COLUMNS: &str = "SELECT entry_id, item, agent, user_id, grams, kcal, \
     corrected_grams, created_at, corrected_at FROM vision_estimates";

pub(super) async fn save_vision_estimates(
    store: &PostgresStore,
    estimates: &[VisionEstimate],
) -> Result<(), StoreError> {
    if estimates.is_empty() {
        return Ok(());
    }
    let mut client = store.client().await?;
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

pub(super) async fn vision_estimates(
    store: &PostgresStore,
    user: UserId,
    entry_id: Uuid,
) -> Result<Vec<VisionEstimate>, StoreError> {
    let sql = format!(
        "{VISION_ESTIMATE_COLUMNS} WHERE user_id = $1 AND entry_id = $2 ORDER BY item, agent"
    );
    let rows = store.query(&sql, &[&user.0, &entry_id]).await?;
    rows.iter().map(vision_estimate_from_row).collect()
}

pub(super) async fn corrected_vision_estimates(
    store: &PostgresStore,
    user: UserId,
    limit: usize,
) -> Result<Vec<VisionEstimate>, StoreError> {
    let sql = format!(
        "{VISION_ESTIMATE_COLUMNS} WHERE user_id = $1 AND corrected_at IS NOT NULL \
         ORDER BY corrected_at DESC, entry_id, item, agent LIMIT $2"
    );
    let rows = store.query(&sql, &[&user.0, &sql_limit(limit)]).await?;
    rows.iter().map(vision_estimate_from_row).collect()
}

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
