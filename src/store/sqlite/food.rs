//! Food entries in SQLite: reads by id, by local date range and the newest; inserts, updates
//! and deletes.

use health_actors::domain::{FoodEntry, MealType, Nutrients, UserId};
use health_actors::ports::StoreError;
use rusqlite::{params, Row, Transaction};
use uuid::Uuid;

use super::codec::{date, from_json, micros, time, to_json, uuid};
use super::{collect, run, SqliteStore};
use chrono::NaiveDate;

const INSERT_FOOD_ENTRY: &str = include_str!("../../../sql/queries/sqlite/insert_food_entry.sql");

const UPDATE_FOOD_ENTRY: &str = include_str!("../../../sql/queries/sqlite/update_food_entry.sql");

const FOOD_ENTRY_COLUMNS: &str =
    include_str!("../../../sql/queries/sqlite/select_food_entry_columns.sql");

pub(super) async fn food_entry(
    store: &SqliteStore,
    user: UserId,
    id: Uuid,
) -> Result<Option<FoodEntry>, StoreError> {
    let sql = format!("{FOOD_ENTRY_COLUMNS} WHERE user_id = ?1 AND id = ?2");
    let rows = store
        .read(move |connection| {
            collect(
                &mut connection.prepare_cached(&sql)?,
                params![user.0, id.to_string()],
                food_row,
            )
        })
        .await?;
    rows.into_iter().next().map(FoodRow::into_entry).transpose()
}

pub(super) async fn food_entries(
    store: &SqliteStore,
    user: UserId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<FoodEntry>, StoreError> {
    let sql = format!(
        "{FOOD_ENTRY_COLUMNS} WHERE user_id = ?1 AND local_date BETWEEN ?2 AND ?3 \
         ORDER BY eaten_at, rowid"
    );
    let rows = store
        .read(move |connection| {
            collect(
                &mut connection.prepare_cached(&sql)?,
                params![user.0, from.to_string(), to.to_string()],
                food_row,
            )
        })
        .await?;
    rows.into_iter().map(FoodRow::into_entry).collect()
}

pub(super) async fn last_food_entry(
    store: &SqliteStore,
    user: UserId,
) -> Result<Option<FoodEntry>, StoreError> {
    let sql = format!(
        "{FOOD_ENTRY_COLUMNS} WHERE user_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1"
    );
    let rows = store.user_rows(sql, user, food_row).await?;
    rows.into_iter().next().map(FoodRow::into_entry).transpose()
}

/// Inserts a new entry.
pub(super) fn insert(
    transaction: &Transaction<'_>,
    entry: &FoodEntry,
    now: i64,
) -> Result<(), StoreError> {
    run(
        transaction,
        INSERT_FOOD_ENTRY,
        params![
            entry.id.to_string(),
            entry.user_id.0,
            micros(entry.eaten_at),
            entry.local_date.to_string(),
            entry.meal_type.map(MealType::as_str),
            entry.description,
            to_json(&entry.items)?,
            entry.total.kcal,
            entry.total.protein_g,
            entry.total.carbs_g,
            entry.total.fat_g,
            entry.total.fiber_g,
            entry.photo_path,
            micros(entry.created_at),
            now
        ],
    )
}

/// Updates a corrected entry.
pub(super) fn update(
    transaction: &Transaction<'_>,
    entry: &FoodEntry,
    now: i64,
) -> Result<(), StoreError> {
    run(
        transaction,
        UPDATE_FOOD_ENTRY,
        params![
            entry.id.to_string(),
            entry.user_id.0,
            micros(entry.eaten_at),
            entry.local_date.to_string(),
            entry.meal_type.map(MealType::as_str),
            entry.description,
            to_json(&entry.items)?,
            entry.total.kcal,
            entry.total.protein_g,
            entry.total.carbs_g,
            entry.total.fat_g,
            entry.total.fiber_g,
            entry.photo_path,
            now
        ],
    )
}

/// Deletes an entry.
pub(super) fn delete(
    transaction: &Transaction<'_>,
    user_id: &UserId,
    id: &Uuid,
) -> Result<(), StoreError> {
    run(
        transaction,
        "DELETE FROM food_entries WHERE user_id = ?1 AND id = ?2",
        params![user_id.0, id.to_string()],
    )
}

/// A food entry's columns as SQLite returns them; decoded outside the blocking closure.
struct FoodRow {
    id: String,
    user_id: i64,
    eaten_at: i64,
    local_date: String,
    meal_type: Option<String>,
    description: String,
    items: String,
    total: Nutrients,
    photo_path: Option<String>,
    created_at: i64,
}

fn food_row(row: &Row<'_>) -> rusqlite::Result<FoodRow> {
    Ok(FoodRow {
        id: row.get(0)?,
        user_id: row.get(1)?,
        eaten_at: row.get(2)?,
        local_date: row.get(3)?,
        meal_type: row.get(4)?,
        description: row.get(5)?,
        items: row.get(6)?,
        total: Nutrients {
            kcal: row.get(7)?,
            protein_g: row.get(8)?,
            carbs_g: row.get(9)?,
            fat_g: row.get(10)?,
            fiber_g: row.get(11)?,
        },
        photo_path: row.get(12)?,
        created_at: row.get(13)?,
    })
}

impl FoodRow {
    fn into_entry(self) -> Result<FoodEntry, StoreError> {
        let meal_type = self
            .meal_type
            .map(|text| {
                MealType::parse(&text)
                    .ok_or_else(|| StoreError::Other(format!("unknown stored meal type {text:?}")))
            })
            .transpose()?;
        Ok(FoodEntry {
            id: uuid(&self.id)?,
            user_id: UserId(self.user_id),
            eaten_at: time(self.eaten_at)?,
            local_date: date(&self.local_date)?,
            meal_type,
            description: self.description,
            items: from_json(&self.items)?,
            total: self.total,
            photo_path: self.photo_path,
            created_at: time(self.created_at)?,
        })
    }
}
