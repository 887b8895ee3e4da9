//! The inbox in PostgreSQL (see `health_actors::inbox`): accepting messages once, the pending
//! ones, turns started, step markers (with what they kept) and ends of a batch, where a replay
//! resumes, the backlog and pruning;
//! and the dead letters of messages that could not be handled.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use health_actors::domain::{DeadLetter, UserId};
use health_actors::ports::{
    InboxBacklog, InboxEntry, InboxOutcome, InboxRecord, StoreError, Write,
};
use tokio_postgres::types::Json;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{count, db_error, execute, PostgresStore};
use crate::store::sql_limit;

const INSERT_DEAD_LETTERS: &str =
    include_str!("../../../sql/queries/postgres/insert_dead_letters.sql");

/// The columns [`inbox_from_row`] reads.
const INBOX_COLUMNS: &str = "SELECT id, source, user_id, chat_id, content, photo, received_at, \
     steps, attempts, done_at, outcome, replies, kept FROM inbox";

pub(super) async fn inbox_accept(
    store: &PostgresStore,
    entries: &[InboxEntry],
) -> Result<Vec<bool>, StoreError> {
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
    let mut client = store.client().await?;
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

pub(super) async fn inbox_pending(
    store: &PostgresStore,
    source: &str,
    limit: usize,
) -> Result<Vec<InboxEntry>, StoreError> {
    let sql =
        format!("{INBOX_COLUMNS} WHERE source = $1 AND done_at IS NULL ORDER BY seq LIMIT $2");
    let rows = store.query(&sql, &[&source, &sql_limit(limit)]).await?;
    rows.iter()
        .map(|row| inbox_from_row(row).map(|record| record.entry))
        .collect()
}

pub(super) async fn inbox_entry(
    store: &PostgresStore,
    id: Uuid,
) -> Result<Option<InboxRecord>, StoreError> {
    let sql = format!("{INBOX_COLUMNS} WHERE id = $1");
    let rows = store.query(&sql, &[&id]).await?;
    rows.first().map(inbox_from_row).transpose()
}

pub(super) async fn inbox_entries(
    store: &PostgresStore,
    ids: &[Uuid],
) -> Result<Vec<InboxRecord>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("{INBOX_COLUMNS} WHERE id = ANY($1)");
    let rows = store.query(&sql, &[&ids]).await?;
    rows.iter().map(inbox_from_row).collect()
}

pub(super) async fn inbox_resume(
    store: &PostgresStore,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, u32)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // A locking read waits for a transaction still holding the row (a step or the end of a
    // process that was killed while its COMMIT was on the wire), then reads the row as that
    // transaction left it: the step count it returns is never stale. It counts no attempt.
    let mut client = store.client().await?;
    let transaction = client.transaction().await.map_err(db_error)?;
    let rows = transaction
        .query(
            "SELECT id, steps FROM inbox WHERE id = ANY($1) AND done_at IS NULL FOR UPDATE",
            &[&ids],
        )
        .await
        .map_err(db_error)?;
    transaction.commit().await.map_err(db_error)?;
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

pub(super) async fn inbox_backlog(store: &PostgresStore) -> Result<InboxBacklog, StoreError> {
    let rows = store
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

pub(super) async fn inbox_prune(
    store: &PostgresStore,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let client = store.client().await?;
    client
        .execute(
            "DELETE FROM inbox WHERE done_at IS NOT NULL AND done_at < $1",
            &[&before],
        )
        .await
        .map_err(db_error)
}

pub(super) async fn dead_letters(
    store: &PostgresStore,
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    let rows = store
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

/// Counts one more started turn for each entry of a run of start marks (not done ones).
pub(super) async fn started(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    let ids: Vec<Uuid> = group
        .iter()
        .filter_map(|w| match w {
            Write::InboxStarted { id } => Some(*id),
            _ => None,
        })
        .collect();
    execute(
        transaction,
        "UPDATE inbox SET attempts = inbox.attempts + v.starts \
         FROM (SELECT id, count(*)::int4 AS starts FROM UNNEST($1::uuid[]) AS u(id) \
               GROUP BY id) AS v \
         WHERE inbox.id = v.id AND inbox.done_at IS NULL",
        &[&ids],
    )
    .await?;
    Ok(())
}

/// Records a run of step markers: a step count only grows, and what a step kept is added when
/// the step is beyond every step recorded before it (as if applied one by one: a batch applied
/// twice adds nothing).
pub(super) async fn steps(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    let mut ids = Vec::new();
    let mut steps = Vec::new();
    // Each text a step kept, with its entry and step; only steps beyond the earlier ones of the
    // run for their entry (the stored count decides the rest, in SQL).
    let (mut kept_ids, mut kept_steps, mut kept_texts) = (Vec::new(), Vec::new(), Vec::new());
    let mut highest: HashMap<Uuid, i32> = HashMap::new();
    for write in group {
        let Write::InboxStep { id, step, kept } = write else {
            continue;
        };
        let Ok(step) = i32::try_from(*step) else {
            continue;
        };
        ids.push(*id);
        steps.push(step);
        let before = highest.entry(*id).or_insert(0);
        if step > *before {
            *before = step;
            for text in kept {
                kept_ids.push(*id);
                kept_steps.push(step);
                kept_texts.push(text.as_str());
            }
        }
    }
    execute(
        transaction,
        "UPDATE inbox SET steps = GREATEST(inbox.steps, v.step), \
             kept = inbox.kept || COALESCE(( \
                 SELECT jsonb_agg(k.text ORDER BY k.n) \
                 FROM UNNEST($3::uuid[], $4::int4[], $5::text[]) WITH ORDINALITY \
                      AS k(id, step, text, n) \
                 WHERE k.id = inbox.id AND k.step > inbox.steps), '[]'::jsonb) \
         FROM (SELECT id, max(step) AS step FROM UNNEST($1::uuid[], $2::int4[]) \
               AS u(id, step) GROUP BY id) AS v \
         WHERE inbox.id = v.id",
        &[&ids, &steps, &kept_ids, &kept_steps, &kept_texts],
    )
    .await?;
    Ok(())
}

/// Ends a run of entries (the first end of an entry is its end).
pub(super) async fn done(transaction: &Transaction<'_>, group: &[Write]) -> Result<(), StoreError> {
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
    Ok(())
}

/// Inserts a run of dead letters.
pub(super) async fn insert_dead_letters(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
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
    Ok(())
}

fn inbox_from_row(row: &Row) -> Result<InboxRecord, StoreError> {
    let steps: i32 = row.try_get(7).map_err(db_error)?;
    let attempts: i32 = row.try_get(8).map_err(db_error)?;
    let replies: Option<Json<Vec<String>>> = row.try_get(11).map_err(db_error)?;
    let Json(kept): Json<Vec<String>> = row.try_get(12).map_err(db_error)?;
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
            kept,
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
