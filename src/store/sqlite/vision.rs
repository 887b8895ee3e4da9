//! The vision agents' estimates in SQLite: kept per photo, item and agent, corrected later by the
//! person, and read back to calibrate the agents.

use health_actors::domain::{UserId, VisionEstimate};
use health_actors::ports::StoreError;
use rusqlite::{params, Row};
use uuid::Uuid;

use super::codec::{micros, time, uuid};
use super::{collect, sqlite_error, SqliteStore};
use crate::store::sql_limit;

const VISION_ESTIMATE_COLUMNS: &str = "SELECT entry_id, item, agent, user_id, grams, kcal, \
     corrected_grams, created_at, corrected_at FROM vision_estimates";

pub(super) async fn save_vision_estimates(
    store: &SqliteStore,
    estimates: &[VisionEstimate],
) -> Result<(), StoreError> {
    if estimates.is_empty() {
        return Ok(());
    }
    let estimates = estimates.to_vec();
    store
        .write(move |transaction| {
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

pub(super) async fn vision_estimates(
    store: &SqliteStore,
    user: UserId,
    entry_id: Uuid,
) -> Result<Vec<VisionEstimate>, StoreError> {
    let sql = format!(
        "{VISION_ESTIMATE_COLUMNS} WHERE user_id = ?1 AND entry_id = ?2 ORDER BY item, agent"
    );
    let rows = store
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

pub(super) async fn corrected_vision_estimates(
    store: &SqliteStore,
    user: UserId,
    limit: usize,
) -> Result<Vec<VisionEstimate>, StoreError> {
    let sql = format!(
        "{VISION_ESTIMATE_COLUMNS} WHERE user_id = ?1 AND corrected_at IS NOT NULL \
         ORDER BY corrected_at DESC, entry_id, item, agent LIMIT ?2"
    );
    let rows = store
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
