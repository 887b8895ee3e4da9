//! People and their API keys in PostgreSQL: the `users` row (profile, goals, time zone), deleting
//! a person with everything about them, and the keys of the HTTP API.

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use health_actors::domain::{Goals, Profile, User, UserId};
use health_actors::ports::{ApiKey, StoreError, Write};
use tokio_postgres::types::Json;
use tokio_postgres::Row;

use super::{db_error, execute, last_per_key, PostgresStore};

const UPSERT_USERS: &str = include_str!("../../../sql/queries/postgres/upsert_users.sql");

pub(super) async fn user(store: &PostgresStore, id: UserId) -> Result<Option<User>, StoreError> {
    let rows = store
        .query(
            "SELECT id, profile, goals, timezone, created_at, updated_at FROM users WHERE id = $1",
            &[&id.0],
        )
        .await?;
    rows.first().map(user_from_row).transpose()
}

pub(super) async fn delete_user(store: &PostgresStore, id: UserId) -> Result<bool, StoreError> {
    let mut client = store.client().await?;
    let transaction = client.transaction().await.map_err(db_error)?;
    execute(
        &transaction,
        "DELETE FROM dead_letters WHERE user_id = $1",
        &[&id.0],
    )
    .await?;
    execute(
        &transaction,
        "DELETE FROM inbox WHERE user_id = $1",
        &[&id.0],
    )
    .await?;
    // Every other table cascades from users.
    let deleted = execute(&transaction, "DELETE FROM users WHERE id = $1", &[&id.0]).await?;
    transaction.commit().await.map_err(db_error)?;
    Ok(deleted > 0)
}

pub(super) async fn insert_api_key(store: &PostgresStore, key: ApiKey) -> Result<(), StoreError> {
    let client = store.client().await?;
    client
        .execute(
            "INSERT INTO api_keys (key_hash, user_id, created_at) VALUES ($1, $2, $3)",
            &[&key.hash, &key.user_id.0, &key.created_at],
        )
        .await
        .map_err(db_error)?;
    Ok(())
}

pub(super) async fn api_key_user(
    store: &PostgresStore,
    hash: &str,
) -> Result<Option<UserId>, StoreError> {
    let rows = store
        .query("SELECT user_id FROM api_keys WHERE key_hash = $1", &[&hash])
        .await?;
    Ok(rows.first().map(|row| UserId(row.get(0))))
}

/// Upserts a run of people (the last write of each wins).
pub(super) async fn upsert(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    let users = last_per_key(
        group
            .iter()
            .filter_map(|w| match w {
                Write::UpsertUser(user) => Some(user),
                _ => None,
            })
            .collect(),
        |user| user.id,
    );
    let ids: Vec<i64> = users.iter().map(|u| u.id.0).collect();
    let profiles: Vec<Json<&Profile>> = users.iter().map(|u| Json(&u.profile)).collect();
    let goals: Vec<Json<&Goals>> = users.iter().map(|u| Json(&u.goals)).collect();
    let zones: Vec<&str> = users.iter().map(|u| u.timezone.as_str()).collect();
    let created: Vec<DateTime<Utc>> = users.iter().map(|u| u.created_at).collect();
    let updated: Vec<DateTime<Utc>> = users.iter().map(|u| u.updated_at).collect();
    execute(
        transaction,
        UPSERT_USERS,
        &[&ids, &profiles, &goals, &zones, &created, &updated],
    )
    .await?;
    Ok(())
}

fn user_from_row(row: &Row) -> Result<User, StoreError> {
    let profile: Json<Profile> = row.try_get(1).map_err(db_error)?;
    let goals: Json<Goals> = row.try_get(2).map_err(db_error)?;
    Ok(User {
        id: UserId(row.try_get(0).map_err(db_error)?),
        profile: profile.0,
        goals: goals.0,
        timezone: row.try_get(3).map_err(db_error)?,
        created_at: row.try_get(4).map_err(db_error)?,
        updated_at: row.try_get(5).map_err(db_error)?,
    })
}
