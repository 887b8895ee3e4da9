//! Reminders in PostgreSQL: a person's reminders, the ones due, upserts and deletes.

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use health_actors::domain::{Reminder, ReminderSchedule, UserId};
use health_actors::ports::{StoreError, Write};
use tokio_postgres::types::Json;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{db_error, delete_rows, execute, last_per_key, PostgresStore};
use crate::store::sql_limit;

const UPSERT_REMINDERS: &str = include_str!("../../../sql/queries/postgres/upsert_reminders.sql");

const DUE_REMINDERS: &str = include_str!("../../../sql/queries/postgres/due_reminders.sql");

const DELETE_REMINDERS: &str = "DELETE FROM reminders r USING UNNEST($1::int8[], $2::uuid[]) \
    AS d(user_id, id) WHERE r.user_id = d.user_id AND r.id = d.id";

const REMINDER_COLUMNS: &str = "SELECT id, user_id, text, schedule, next_fire_at, active, \
    created_at FROM reminders";

pub(super) async fn reminders(
    store: &PostgresStore,
    user: UserId,
) -> Result<Vec<Reminder>, StoreError> {
    let sql = format!("{REMINDER_COLUMNS} WHERE user_id = $1 ORDER BY created_at, id");
    let rows = store.query(&sql, &[&user.0]).await?;
    rows.iter().map(reminder_from_row).collect()
}

pub(super) async fn due_reminders(
    store: &PostgresStore,
    at: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Reminder>, StoreError> {
    let rows = store
        .query(DUE_REMINDERS, &[&at, &sql_limit(limit)])
        .await?;
    rows.iter().map(reminder_from_row).collect()
}

/// Upserts a run of reminders (the last write of each wins).
pub(super) async fn upsert(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
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
    let next: Vec<Option<DateTime<Utc>>> = reminders.iter().map(|r| r.next_fire_at).collect();
    let active: Vec<bool> = reminders.iter().map(|r| r.active).collect();
    let created: Vec<DateTime<Utc>> = reminders.iter().map(|r| r.created_at).collect();
    execute(
        transaction,
        UPSERT_REMINDERS,
        &[&ids, &users, &texts, &schedules, &next, &active, &created],
    )
    .await?;
    Ok(())
}

/// Deletes a run of reminders.
pub(super) async fn delete(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    delete_rows(transaction, group, DELETE_REMINDERS).await
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
