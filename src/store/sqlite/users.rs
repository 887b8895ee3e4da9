//! People and their API keys in SQLite: the `users` row (profile, goals, time zone), deleting a
//! person with everything about them, and the keys of the HTTP API.

use health_actors::domain::{User, UserId};
use health_actors::ports::{ApiKey, StoreError};
use rusqlite::{params, OptionalExtension, Transaction};

use super::codec::{from_json, micros, time, to_json};
use super::{collect, run, sqlite_error, SqliteStore};

const UPSERT_USER: &str = include_str!("../../../sql/queries/sqlite/upsert_user.sql");

pub(super) async fn user(store: &SqliteStore, id: UserId) -> Result<Option<User>, StoreError> {
    let row = store
        .read(move |connection| {
            connection
                .prepare_cached(
                    "SELECT id, profile, goals, timezone, created_at, updated_at \
                     FROM users WHERE id = ?1",
                )?
                .query_row([id.0], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, i64>(5)?,
                    ))
                })
                .optional()
        })
        .await?;
    row.map(|(id, profile, goals, timezone, created_at, updated_at)| {
        Ok(User {
            id: UserId(id),
            profile: from_json(&profile)?,
            goals: from_json(&goals)?,
            timezone,
            created_at: time(created_at)?,
            updated_at: time(updated_at)?,
        })
    })
    .transpose()
}

pub(super) async fn delete_user(store: &SqliteStore, id: UserId) -> Result<bool, StoreError> {
    store
        .write(move |transaction| {
            transaction
                .execute("DELETE FROM dead_letters WHERE user_id = ?1", [id.0])
                .map_err(sqlite_error)?;
            transaction
                .execute("DELETE FROM inbox WHERE user_id = ?1", [id.0])
                .map_err(sqlite_error)?;
            // Every other table cascades from users.
            let deleted = transaction
                .execute("DELETE FROM users WHERE id = ?1", [id.0])
                .map_err(sqlite_error)?;
            Ok(deleted > 0)
        })
        .await
}

pub(super) async fn insert_api_key(store: &SqliteStore, key: ApiKey) -> Result<(), StoreError> {
    let created_at = micros(key.created_at);
    store
        .write(move |transaction| {
            transaction
                .execute(
                    "INSERT INTO api_keys (key_hash, user_id, created_at) VALUES (?1, ?2, ?3)",
                    params![key.hash, key.user_id.0, created_at],
                )
                .map_err(sqlite_error)?;
            Ok(())
        })
        .await
}

pub(super) async fn api_key_user(
    store: &SqliteStore,
    hash: &str,
) -> Result<Option<UserId>, StoreError> {
    let hash = hash.to_owned();
    let users = store
        .read(move |connection| {
            collect(
                &mut connection
                    .prepare_cached("SELECT user_id FROM api_keys WHERE key_hash = ?1")?,
                params![hash],
                |row| row.get::<_, i64>(0),
            )
        })
        .await?;
    Ok(users.into_iter().next().map(UserId))
}

/// Upserts a person.
pub(super) fn upsert(transaction: &Transaction<'_>, user: &User) -> Result<(), StoreError> {
    run(
        transaction,
        UPSERT_USER,
        params![
            user.id.0,
            to_json(&user.profile)?,
            to_json(&user.goals)?,
            user.timezone,
            micros(user.created_at),
            micros(user.updated_at)
        ],
    )
}
