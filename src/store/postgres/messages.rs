//! The conversation history in PostgreSQL: appending messages and reading the last ones.

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use health_actors::domain::{ConversationMessage, Role, UserId};
use health_actors::ports::{StoreError, Write};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{db_error, execute, PostgresStore};
use crate::store::sql_limit;

const INSERT_MESSAGES: &str = include_str!("../../../sql/queries/postgres/insert_messages.sql");

const RECENT_MESSAGES: &str = include_str!("../../../sql/queries/postgres/recent_messages.sql");

pub(super) async fn recent_messages(
    store: &PostgresStore,
    user: UserId,
    limit: usize,
) -> Result<Vec<ConversationMessage>, StoreError> {
    let rows = store
        .query(RECENT_MESSAGES, &[&user.0, &sql_limit(limit)])
        .await?;
    rows.iter().map(message_from_row).collect()
}

/// Appends a run of messages.
pub(super) async fn append(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    let messages: Vec<&ConversationMessage> = group
        .iter()
        .filter_map(|w| match w {
            Write::AppendMessage(message) => Some(message),
            _ => None,
        })
        .collect();
    let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
    let users: Vec<i64> = messages.iter().map(|m| m.user_id.0).collect();
    let roles: Vec<&str> = messages.iter().map(|m| m.role.as_str()).collect();
    let contents: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
    let created: Vec<DateTime<Utc>> = messages.iter().map(|m| m.created_at).collect();
    execute(
        transaction,
        INSERT_MESSAGES,
        &[&ids, &users, &roles, &contents, &created],
    )
    .await?;
    Ok(())
}

fn message_from_row(row: &Row) -> Result<ConversationMessage, StoreError> {
    let role: String = row.try_get(2).map_err(db_error)?;
    Ok(ConversationMessage {
        id: row.try_get(0).map_err(db_error)?,
        user_id: UserId(row.try_get(1).map_err(db_error)?),
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Other(format!("unknown stored role {role:?}")))?,
        content: row.try_get(3).map_err(db_error)?,
        created_at: row.try_get(4).map_err(db_error)?,
    })
}
