//! Progress in SQLite: weight logs, XP events, streaks and achievements.

use chrono::{DateTime, Utc};
use health_actors::domain::{Achievement, Streak, UserId, WeightLog, XpEvent};
use health_actors::ports::StoreError;
use rusqlite::{params, Transaction};

use super::codec::{count, date, micros, time, uuid};
use super::{collect, run, SqliteStore};

const UPSERT_STREAK: &str = include_str!("../../../sql/queries/sqlite/upsert_streak.sql");

pub(super) async fn weights(
    store: &SqliteStore,
    user: UserId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<WeightLog>, StoreError> {
    let rows = store
        .read(move |connection| {
            collect(
                &mut connection.prepare_cached(
                    "SELECT id, user_id, kg, logged_at FROM weight_logs \
                     WHERE user_id = ?1 AND logged_at >= ?2 AND logged_at < ?3 \
                     ORDER BY logged_at, id",
                )?,
                params![user.0, micros(from), micros(to)],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, f64>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                },
            )
        })
        .await?;
    rows.into_iter()
        .map(|(id, user_id, kg, logged_at)| {
            Ok(WeightLog {
                id: uuid(&id)?,
                user_id: UserId(user_id),
                kg,
                logged_at: time(logged_at)?,
            })
        })
        .collect()
}

pub(super) async fn xp_events(
    store: &SqliteStore,
    user: UserId,
) -> Result<Vec<XpEvent>, StoreError> {
    let rows = store
        .user_rows(
            "SELECT id, user_id, amount, reason, created_at FROM xp_events \
                     WHERE user_id = ?1 ORDER BY created_at, id"
                .to_owned(),
            user,
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            },
        )
        .await?;
    rows.into_iter()
        .map(|(id, user_id, amount, reason, created_at)| {
            Ok(XpEvent {
                id: uuid(&id)?,
                user_id: UserId(user_id),
                amount,
                reason,
                created_at: time(created_at)?,
            })
        })
        .collect()
}

pub(super) async fn streaks(store: &SqliteStore, user: UserId) -> Result<Vec<Streak>, StoreError> {
    let rows = store
        .user_rows(
            "SELECT user_id, domain, current, best, last_date, freezes_left \
                     FROM streaks WHERE user_id = ?1 ORDER BY domain"
                .to_owned(),
            user,
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, i64>(5)?,
                ))
            },
        )
        .await?;
    rows.into_iter()
        .map(
            |(user_id, domain, current, best, last_date, freezes_left)| {
                Ok(Streak {
                    user_id: UserId(user_id),
                    domain,
                    current: count(current)?,
                    best: count(best)?,
                    last_date: last_date.as_deref().map(date).transpose()?,
                    freezes_left: count(freezes_left)?,
                })
            },
        )
        .collect()
}

pub(super) async fn achievements(
    store: &SqliteStore,
    user: UserId,
) -> Result<Vec<Achievement>, StoreError> {
    let rows = store
        .user_rows(
            "SELECT user_id, code, earned_at FROM achievements \
                     WHERE user_id = ?1 ORDER BY earned_at, code"
                .to_owned(),
            user,
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            },
        )
        .await?;
    rows.into_iter()
        .map(|(user_id, code, earned_at)| {
            Ok(Achievement {
                user_id: UserId(user_id),
                code,
                earned_at: time(earned_at)?,
            })
        })
        .collect()
}

/// Inserts a weight log.
pub(super) fn insert_weight(
    transaction: &Transaction<'_>,
    weight: &WeightLog,
) -> Result<(), StoreError> {
    run(
        transaction,
        "INSERT INTO weight_logs (id, user_id, kg, logged_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (id) DO NOTHING",
        params![
            weight.id.to_string(),
            weight.user_id.0,
            weight.kg,
            micros(weight.logged_at)
        ],
    )
}

/// Inserts an XP event.
pub(super) fn insert_xp(transaction: &Transaction<'_>, event: &XpEvent) -> Result<(), StoreError> {
    run(
        transaction,
        "INSERT INTO xp_events (id, user_id, amount, reason, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
        params![
            event.id.to_string(),
            event.user_id.0,
            event.amount,
            event.reason,
            micros(event.created_at)
        ],
    )
}

/// Upserts a streak.
pub(super) fn upsert_streak(
    transaction: &Transaction<'_>,
    streak: &Streak,
    now: i64,
) -> Result<(), StoreError> {
    run(
        transaction,
        UPSERT_STREAK,
        params![
            streak.user_id.0,
            streak.domain,
            streak.current,
            streak.best,
            streak.last_date.map(|day| day.to_string()),
            streak.freezes_left,
            now
        ],
    )
}

/// Inserts an achievement (each earned once).
pub(super) fn insert_achievement(
    transaction: &Transaction<'_>,
    achievement: &Achievement,
) -> Result<(), StoreError> {
    run(
        transaction,
        "INSERT INTO achievements (user_id, code, earned_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (user_id, code) DO NOTHING",
        params![
            achievement.user_id.0,
            achievement.code,
            micros(achievement.earned_at)
        ],
    )
}
