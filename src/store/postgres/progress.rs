//! Progress in PostgreSQL: weight logs, XP events, streaks and achievements.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Transaction;
use health_actors::domain::{Achievement, Streak, UserId, WeightLog, XpEvent};
use health_actors::ports::{StoreError, Write};
use uuid::Uuid;

use super::{count, db_error, execute, last_per_key, small, PostgresStore};

const INSERT_WEIGHTS: &str = include_str!("../../../sql/queries/postgres/insert_weights.sql");

const INSERT_XP: &str = include_str!("../../../sql/queries/postgres/insert_xp.sql");

const UPSERT_STREAKS: &str = include_str!("../../../sql/queries/postgres/upsert_streaks.sql");

const INSERT_ACHIEVEMENTS: &str =
    include_str!("../../../sql/queries/postgres/insert_achievements.sql");

pub(super) async fn weights(
    store: &PostgresStore,
    user: UserId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<WeightLog>, StoreError> {
    let rows = store
        .query(
            "SELECT id, user_id, kg, logged_at FROM weight_logs \
             WHERE user_id = $1 AND logged_at >= $2 AND logged_at < $3 ORDER BY logged_at, id",
            &[&user.0, &from, &to],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(WeightLog {
                id: row.try_get(0).map_err(db_error)?,
                user_id: UserId(row.try_get(1).map_err(db_error)?),
                kg: row.try_get(2).map_err(db_error)?,
                logged_at: row.try_get(3).map_err(db_error)?,
            })
        })
        .collect()
}

pub(super) async fn xp_events(
    store: &PostgresStore,
    user: UserId,
) -> Result<Vec<XpEvent>, StoreError> {
    let rows = store
        .query(
            "SELECT id, user_id, amount, reason, created_at FROM xp_events \
             WHERE user_id = $1 ORDER BY created_at, id",
            &[&user.0],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(XpEvent {
                id: row.try_get(0).map_err(db_error)?,
                user_id: UserId(row.try_get(1).map_err(db_error)?),
                amount: row.try_get(2).map_err(db_error)?,
                reason: row.try_get(3).map_err(db_error)?,
                created_at: row.try_get(4).map_err(db_error)?,
            })
        })
        .collect()
}

pub(super) async fn streaks(
    store: &PostgresStore,
    user: UserId,
) -> Result<Vec<Streak>, StoreError> {
    let rows = store
        .query(
            "SELECT user_id, domain, current, best, last_date, freezes_left FROM streaks \
             WHERE user_id = $1 ORDER BY domain",
            &[&user.0],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Streak {
                user_id: UserId(row.try_get(0).map_err(db_error)?),
                domain: row.try_get(1).map_err(db_error)?,
                current: count(row.try_get(2).map_err(db_error)?)?,
                best: count(row.try_get(3).map_err(db_error)?)?,
                last_date: row.try_get(4).map_err(db_error)?,
                freezes_left: count(row.try_get(5).map_err(db_error)?)?,
            })
        })
        .collect()
}

pub(super) async fn achievements(
    store: &PostgresStore,
    user: UserId,
) -> Result<Vec<Achievement>, StoreError> {
    let rows = store
        .query(
            "SELECT user_id, code, earned_at FROM achievements \
             WHERE user_id = $1 ORDER BY earned_at, code",
            &[&user.0],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Achievement {
                user_id: UserId(row.try_get(0).map_err(db_error)?),
                code: row.try_get(1).map_err(db_error)?,
                earned_at: row.try_get(2).map_err(db_error)?,
            })
        })
        .collect()
}

/// Inserts a run of weight logs.
pub(super) async fn insert_weights(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    let weights: Vec<&WeightLog> = group
        .iter()
        .filter_map(|w| match w {
            Write::InsertWeight(weight) => Some(weight),
            _ => None,
        })
        .collect();
    let ids: Vec<Uuid> = weights.iter().map(|w| w.id).collect();
    let users: Vec<i64> = weights.iter().map(|w| w.user_id.0).collect();
    let kg: Vec<f64> = weights.iter().map(|w| w.kg).collect();
    let logged: Vec<DateTime<Utc>> = weights.iter().map(|w| w.logged_at).collect();
    execute(transaction, INSERT_WEIGHTS, &[&ids, &users, &kg, &logged]).await?;
    Ok(())
}

/// Inserts a run of XP events.
pub(super) async fn insert_xp(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    let events: Vec<&XpEvent> = group
        .iter()
        .filter_map(|w| match w {
            Write::InsertXp(event) => Some(event),
            _ => None,
        })
        .collect();
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let users: Vec<i64> = events.iter().map(|e| e.user_id.0).collect();
    let amounts: Vec<i64> = events.iter().map(|e| e.amount).collect();
    let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
    let created: Vec<DateTime<Utc>> = events.iter().map(|e| e.created_at).collect();
    execute(
        transaction,
        INSERT_XP,
        &[&ids, &users, &amounts, &reasons, &created],
    )
    .await?;
    Ok(())
}

/// Upserts a run of streaks (the last write of each wins).
pub(super) async fn upsert_streaks(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    let streaks = last_per_key(
        group
            .iter()
            .filter_map(|w| match w {
                Write::UpsertStreak(streak) => Some(streak),
                _ => None,
            })
            .collect(),
        |streak| (streak.user_id, streak.domain.clone()),
    );
    let users: Vec<i64> = streaks.iter().map(|s| s.user_id.0).collect();
    let domains: Vec<&str> = streaks.iter().map(|s| s.domain.as_str()).collect();
    let current = streaks
        .iter()
        .map(|s| small(s.current))
        .collect::<Result<Vec<_>, _>>()?;
    let best = streaks
        .iter()
        .map(|s| small(s.best))
        .collect::<Result<Vec<_>, _>>()?;
    let last: Vec<Option<NaiveDate>> = streaks.iter().map(|s| s.last_date).collect();
    let freezes = streaks
        .iter()
        .map(|s| small(s.freezes_left))
        .collect::<Result<Vec<_>, _>>()?;
    execute(
        transaction,
        UPSERT_STREAKS,
        &[&users, &domains, &current, &best, &last, &freezes],
    )
    .await?;
    Ok(())
}

/// Inserts a run of achievements (each earned once).
pub(super) async fn insert_achievements(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    let achievements: Vec<&Achievement> = group
        .iter()
        .filter_map(|w| match w {
            Write::InsertAchievement(achievement) => Some(achievement),
            _ => None,
        })
        .collect();
    let users: Vec<i64> = achievements.iter().map(|a| a.user_id.0).collect();
    let codes: Vec<&str> = achievements.iter().map(|a| a.code.as_str()).collect();
    let earned: Vec<DateTime<Utc>> = achievements.iter().map(|a| a.earned_at).collect();
    execute(transaction, INSERT_ACHIEVEMENTS, &[&users, &codes, &earned]).await?;
    Ok(())
}
