//! The inbox in SQLite (see `health_actors::inbox`): accepting messages once, the pending ones,
//! turns started, step markers (with what they kept) and ends, where a replay resumes, the
//! backlog and pruning; and the dead letters of messages that could not be handled.

use chrono::{DateTime, Utc};
use health_actors::domain::{DeadLetter, UserId};
use health_actors::ports::{InboxBacklog, InboxEntry, InboxOutcome, InboxRecord, StoreError};
use rusqlite::{params, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use super::codec::{count, from_json, micros, time, to_json, uuid};
use super::{collect, run, sqlite_error, SqliteStore};
use crate::store::sql_limit;

/// The columns of an inbox entry, in [`InboxRow`]'s order.
const INBOX_COLUMNS: &str = "SELECT id, source, user_id, chat_id, content, photo, received_at, \
     steps, attempts, done_at, outcome, replies, kept FROM inbox";

pub(super) async fn inbox_accept(
    store: &SqliteStore,
    entries: &[InboxEntry],
) -> Result<Vec<bool>, StoreError> {
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
    store
        .write(move |transaction| {
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

pub(super) async fn inbox_pending(
    store: &SqliteStore,
    source: &str,
    limit: usize,
) -> Result<Vec<InboxEntry>, StoreError> {
    let source = source.to_owned();
    let sql =
        format!("{INBOX_COLUMNS} WHERE source = ?1 AND done_at IS NULL ORDER BY seq LIMIT ?2");
    let rows = store
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

pub(super) async fn inbox_entry(
    store: &SqliteStore,
    id: Uuid,
) -> Result<Option<InboxRecord>, StoreError> {
    let sql = format!("{INBOX_COLUMNS} WHERE id = ?1");
    let rows = store
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

pub(super) async fn inbox_resume(
    store: &SqliteStore,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, u32)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = ids.to_vec();
    // Read inside a write transaction: one writer at a time, so a step of this process is
    // either committed before or after, never half seen. Counts no attempt.
    store
        .write(move |transaction| {
            let mut statement = transaction
                .prepare_cached("SELECT steps FROM inbox WHERE id = ?1 AND done_at IS NULL")
                .map_err(sqlite_error)?;
            let mut resumed = Vec::with_capacity(ids.len());
            for id in ids {
                let steps: Option<i64> = statement
                    .query_row(params![id.to_string()], |row| row.get(0))
                    .optional()
                    .map_err(sqlite_error)?;
                if let Some(steps) = steps {
                    resumed.push((id, u32::try_from(steps).unwrap_or_default()));
                }
            }
            Ok(resumed)
        })
        .await
}

pub(super) async fn inbox_backlog(store: &SqliteStore) -> Result<InboxBacklog, StoreError> {
    let (pending, oldest) = store
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

pub(super) async fn inbox_prune(
    store: &SqliteStore,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let before = micros(before);
    store
        .write(move |transaction| {
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

pub(super) async fn dead_letters(
    store: &SqliteStore,
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    let rows = store
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

/// Records a step marker (a step count only grows).
pub(super) fn started(transaction: &Transaction<'_>, id: &Uuid) -> Result<(), StoreError> {
    run(
        transaction,
        "UPDATE inbox SET attempts = attempts + 1 WHERE id = ?1 AND done_at IS NULL",
        params![id.to_string()],
    )
}

/// Records a step marker: the step count only grows, and what the step kept is added the first
/// time the step is recorded.
pub(super) fn step(
    transaction: &Transaction<'_>,
    id: &Uuid,
    step: &u32,
    kept: &[String],
) -> Result<(), StoreError> {
    let current: Option<(i64, String)> = transaction
        .prepare_cached("SELECT steps, kept FROM inbox WHERE id = ?1")
        .and_then(|mut statement| {
            statement
                .query_row(params![id.to_string()], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
        })
        .map_err(sqlite_error)?;
    let Some((steps, stored)) = current else {
        return Ok(());
    };
    if i64::from(*step) <= steps {
        return Ok(());
    }
    let mut all: Vec<String> = from_json(&stored)?;
    all.extend(kept.iter().cloned());
    run(
        transaction,
        "UPDATE inbox SET steps = ?2, kept = ?3 WHERE id = ?1",
        params![id.to_string(), step, to_json(&all)?],
    )
}

/// Ends an entry (its first end is its end).
pub(super) fn done(
    transaction: &Transaction<'_>,
    id: &Uuid,
    outcome: &InboxOutcome,
    replies: &[String],
    at: &DateTime<Utc>,
) -> Result<(), StoreError> {
    run(
        transaction,
        "UPDATE inbox SET done_at = ?2, outcome = ?3, replies = ?4 \
         WHERE id = ?1 AND done_at IS NULL",
        params![
            id.to_string(),
            micros(*at),
            outcome.as_str(),
            to_json(&serde_json::json!(replies))?
        ],
    )
}

/// Inserts a dead letter.
pub(super) fn insert_dead_letter(
    transaction: &Transaction<'_>,
    letter: &DeadLetter,
) -> Result<(), StoreError> {
    run(
        transaction,
        "INSERT INTO dead_letters (id, user_id, message, error, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
        params![
            letter.id.to_string(),
            letter.user_id.0,
            to_json(&letter.message)?,
            letter.error,
            micros(letter.created_at)
        ],
    )
}

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
    kept: String,
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
        kept: row.get(12)?,
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
                kept: from_json(&self.kept)?,
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
