//! The conversation history in SQLite: appending messages and reading the last ones.

use health_actors::domain::{ConversationMessage, Role, UserId};
use health_actors::ports::StoreError;
use rusqlite::{params, Transaction};

use super::codec::{micros, time, uuid};
use super::{collect, run, SqliteStore};
use crate::store::sql_limit;

const RECENT_MESSAGES: &str = include_str!("../../../sql/queries/sqlite/recent_messages.sql");

pub(super) async fn recent_messages(
    store: &SqliteStore,
    user: UserId,
    limit: usize,
) -> Result<Vec<ConversationMessage>, StoreError> {
    let rows = store
        .read(move |connection| {
            collect(
                &mut connection.prepare_cached(RECENT_MESSAGES)?,
                params![user.0, sql_limit(limit)],
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
        .map(|(id, user_id, role, content, created_at)| {
            Ok(ConversationMessage {
                id: uuid(&id)?,
                user_id: UserId(user_id),
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Other(format!("unknown stored role {role:?}")))?,
                content,
                created_at: time(created_at)?,
            })
        })
        .collect()
}

/// Appends a message.
pub(super) fn append(
    transaction: &Transaction<'_>,
    message: &ConversationMessage,
) -> Result<(), StoreError> {
    run(
        transaction,
        "INSERT INTO conversation_messages (id, user_id, role, content, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
        params![
            message.id.to_string(),
            message.user_id.0,
            message.role.as_str(),
            message.content,
            micros(message.created_at)
        ],
    )
}
