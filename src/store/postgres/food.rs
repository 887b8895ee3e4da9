//! Food entries in PostgreSQL: reads by id, by local date range and the newest; inserts, updates
//! and deletes of a batch as one `UNNEST` statement per run.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Transaction;
use health_actors::domain::{FoodEntry, FoodItem, MealType, Nutrients, UserId};
use health_actors::ports::{StoreError, Write};
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{db_error, delete_rows, execute, last_per_key, PostgresStore};

const INSERT_FOOD_ENTRIES: &str =
    include_str!("../../../sql/queries/postgres/insert_food_entries.sql");

const UPDATE_FOOD_ENTRIES: &str =
    include_str!("../../../sql/queries/postgres/update_food_entries.sql");

const FOOD_ENTRY_COLUMNS: &str =
    include_str!("../../../sql/queries/postgres/select_food_entry_columns.sql");

const DELETE_FOOD_ENTRIES: &str =
    "DELETE FROM food_entries f USING UNNEST($1::int8[], $2::uuid[]) \
    AS d(user_id, id) WHERE f.user_id = d.user_id AND f.id = d.id";

pub(super) async fn food_entry(
    store: &PostgresStore,
    user: UserId,
    id: Uuid,
) -> Result<Option<FoodEntry>, StoreError> {
    let sql = format!("{FOOD_ENTRY_COLUMNS} WHERE user_id = $1 AND id = $2");
    let rows = store.query(&sql, &[&user.0, &id]).await?;
    rows.first().map(food_entry_from_row).transpose()
}

pub(super) async fn food_entries(
    store: &PostgresStore,
    user: UserId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<FoodEntry>, StoreError> {
    let sql = format!(
        "{FOOD_ENTRY_COLUMNS} WHERE user_id = $1 AND local_date BETWEEN $2 AND $3 \
         ORDER BY eaten_at, seq"
    );
    let rows = store.query(&sql, &[&user.0, &from, &to]).await?;
    rows.iter().map(food_entry_from_row).collect()
}

pub(super) async fn last_food_entry(
    store: &PostgresStore,
    user: UserId,
) -> Result<Option<FoodEntry>, StoreError> {
    let sql = format!(
        "{FOOD_ENTRY_COLUMNS} WHERE user_id = $1 ORDER BY created_at DESC, seq DESC LIMIT 1"
    );
    let rows = store.query(&sql, &[&user.0]).await?;
    rows.first().map(food_entry_from_row).transpose()
}

/// Inserts a run of new entries.
pub(super) async fn insert(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    let entries: Vec<&FoodEntry> = group
        .iter()
        .filter_map(|w| match w {
            Write::InsertFoodEntry(entry) => Some(entry),
            _ => None,
        })
        .collect();
    let columns = FoodColumns::new(&entries);
    execute(transaction, INSERT_FOOD_ENTRIES, &columns.insert_params()).await?;
    Ok(())
}

/// Updates a run of corrected entries (the last write of each wins).
pub(super) async fn update(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    let entries = last_per_key(
        group
            .iter()
            .filter_map(|w| match w {
                Write::UpdateFoodEntry(entry) => Some(entry),
                _ => None,
            })
            .collect(),
        |entry| entry.id,
    );
    let columns = FoodColumns::new(&entries);
    execute(transaction, UPDATE_FOOD_ENTRIES, &columns.update_params()).await?;
    Ok(())
}

/// Deletes a run of entries.
pub(super) async fn delete(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    delete_rows(transaction, group, DELETE_FOOD_ENTRIES).await
}

/// The columns of food entries, as arrays for UNNEST.
struct FoodColumns<'a> {
    ids: Vec<Uuid>,
    users: Vec<i64>,
    eaten_at: Vec<DateTime<Utc>>,
    local_dates: Vec<NaiveDate>,
    meal_types: Vec<Option<&'static str>>,
    descriptions: Vec<&'a str>,
    items: Vec<Json<&'a [FoodItem]>>,
    kcal: Vec<f64>,
    protein: Vec<f64>,
    carbs: Vec<f64>,
    fat: Vec<f64>,
    fiber: Vec<f64>,
    photos: Vec<Option<&'a str>>,
    created_at: Vec<DateTime<Utc>>,
}

impl<'a> FoodColumns<'a> {
    fn new(entries: &[&'a FoodEntry]) -> Self {
        Self {
            ids: entries.iter().map(|e| e.id).collect(),
            users: entries.iter().map(|e| e.user_id.0).collect(),
            eaten_at: entries.iter().map(|e| e.eaten_at).collect(),
            local_dates: entries.iter().map(|e| e.local_date).collect(),
            meal_types: entries
                .iter()
                .map(|e| e.meal_type.map(MealType::as_str))
                .collect(),
            descriptions: entries.iter().map(|e| e.description.as_str()).collect(),
            items: entries.iter().map(|e| Json(e.items.as_slice())).collect(),
            kcal: entries.iter().map(|e| e.total.kcal).collect(),
            protein: entries.iter().map(|e| e.total.protein_g).collect(),
            carbs: entries.iter().map(|e| e.total.carbs_g).collect(),
            fat: entries.iter().map(|e| e.total.fat_g).collect(),
            fiber: entries.iter().map(|e| e.total.fiber_g).collect(),
            photos: entries.iter().map(|e| e.photo_path.as_deref()).collect(),
            created_at: entries.iter().map(|e| e.created_at).collect(),
        }
    }

    /// The columns an update sets, in the order of `UPDATE_FOOD_ENTRIES`'s parameters.
    fn update_params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.ids,
            &self.users,
            &self.eaten_at,
            &self.local_dates,
            &self.meal_types,
            &self.descriptions,
            &self.items,
            &self.kcal,
            &self.protein,
            &self.carbs,
            &self.fat,
            &self.fiber,
            &self.photos,
        ]
    }

    /// The update's columns plus `created_at`, in the order of `INSERT_FOOD_ENTRIES`'s.
    fn insert_params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params = self.update_params();
        params.push(&self.created_at);
        params
    }
}

fn food_entry_from_row(row: &Row) -> Result<FoodEntry, StoreError> {
    let meal_type: Option<String> = row.try_get(4).map_err(db_error)?;
    let meal_type = meal_type
        .map(|text| {
            MealType::parse(&text)
                .ok_or_else(|| StoreError::Other(format!("unknown stored meal type {text:?}")))
        })
        .transpose()?;
    let items: Json<Vec<FoodItem>> = row.try_get(6).map_err(db_error)?;
    Ok(FoodEntry {
        id: row.try_get(0).map_err(db_error)?,
        user_id: UserId(row.try_get(1).map_err(db_error)?),
        eaten_at: row.try_get(2).map_err(db_error)?,
        local_date: row.try_get(3).map_err(db_error)?,
        meal_type,
        description: row.try_get(5).map_err(db_error)?,
        items: items.0,
        total: Nutrients {
            kcal: row.try_get(7).map_err(db_error)?,
            protein_g: row.try_get(8).map_err(db_error)?,
            carbs_g: row.try_get(9).map_err(db_error)?,
            fat_g: row.try_get(10).map_err(db_error)?,
            fiber_g: row.try_get(11).map_err(db_error)?,
        },
        photo_path: row.try_get(12).map_err(db_error)?,
        created_at: row.try_get(13).map_err(db_error)?,
    })
}
