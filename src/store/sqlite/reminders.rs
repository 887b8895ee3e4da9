//! Reminders in SQLite: a person's reminders, the ones due, upserts and deletes.

use chrono::{DateTime, Utc};
use health_actors::domain::{Reminder, UserId};
use health_actors::ports::StoreError;
use rusqlite::{params, Row, Transaction};
use uuid::Uuid;

use super::codec::{from_json, micros, time, to_json, uuid};
use super::{collect, run, SqliteStore};
use crate::store::sql_limit;

const UPSERT_REMINDER: &str = include_str!("../../../sql/queries/sqlite/upsert_reminder.sql");

const DUE_REMINDERS: &str = include_str!("../../../sql/queries/sqlite/due_reminders.sql");

const REMINDER_COLUMNS: &str =
    "SELECT id, user_id, text, schedule, next_fire_at, active, created_at FROM reminders";

pub(super) async fn reminders(
    store: &SqliteStore,
    user: UserId,
) -> Result<Vec<Reminder>, StoreError> {
    let sql = format!("{REMINDER_COLUMNS} WHERE user_id = ?1 ORDER BY created_at, id");
    let rows = store.user_rows(sql, user, reminder_row).await?;
    rows.into_iter().map(ReminderRow::into_reminder).collect()
}

pub(super) async fn due_reminders(
    store: &SqliteStore,
    at: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Reminder>, StoreError> {
    let rows = store
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

/// Upserts a reminder.
pub(super) fn upsert(
    transaction: &Transaction<'_>,
    reminder: &Reminder,
    now: i64,
) -> Result<(), StoreError> {
    run(
        transaction,
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
    )
}

/// Deletes a reminder.
pub(super) fn delete(
    transaction: &Transaction<'_>,
    user_id: &UserId,
    id: &Uuid,
) -> Result<(), StoreError> {
    run(
        transaction,
        "DELETE FROM reminders WHERE user_id = ?1 AND id = ?2",
        params![user_id.0, id.to_string()],
    )
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
