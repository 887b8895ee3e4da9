//! Food entries (list, create from text, correct, delete) and the daily and weekly summaries;
//! entries from a photo are created in [`super::photo`].
//!
//! Text is estimated by the same nutrition engine the assistant uses (built-in table, then USDA
//! when configured); a meal with no known food is refused rather than saved as zero. "Today" is
//! the person's local day in their time zone. Lists are ordered by when the food was eaten and
//! paged with an opaque cursor that stays valid while entries are added.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use health_actors::domain::{FoodEntry, Grams, Nutrients, User};
use health_actors::ports::Write;
use serde::Deserialize;
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Reply};

use super::body::{
    CorrectFoodEntryBody, CreateFoodEntryBody, CreatedFoodEntry, DailySummary, FoodEntryBody,
    FoodEntryPage, GoalsBody, LeftOutBody, NutrientsBody, RemainingBody, WeeklySummary,
};
use super::checks::check_text;
use super::paging::{page, page_limit, Order};
use super::{answer, bounded, caller, json_body, json_reply, with, ApiError, ApiState, Caller};

const ENTRY_PAGE_DEFAULT: usize = 50;
/// The longest range one list request may cover.
const RANGE_MAX_DAYS: i64 = 366;
const TEXT_MAX_CHARS: usize = 2_000;

pub(super) fn routes(state: ApiState) -> BoxedFilter<(warp::reply::Response,)> {
    let list = warp::path!("api" / "v1" / "users" / i64 / "food-entries")
        .and(warp::get())
        .and(caller(state.clone()))
        .and(warp::query::<ListQuery>())
        .and(with(state.clone()))
        .then(|user, caller, query, state| async move {
            answer(bounded(list(user, caller, query, state)).await)
        });
    let create = warp::path!("api" / "v1" / "users" / i64 / "food-entries")
        .and(warp::post())
        .and(caller(state.clone()))
        .and(json_body::<CreateFoodEntryBody>())
        .and(with(state.clone()))
        .then(|user, caller, body, state| async move {
            answer(bounded(create(user, caller, body, state)).await)
        });
    let photo = super::photo::route(state.clone());
    let correct = warp::path!("api" / "v1" / "users" / i64 / "food-entries" / Uuid)
        .and(warp::patch())
        .and(caller(state.clone()))
        .and(json_body::<CorrectFoodEntryBody>())
        .and(with(state.clone()))
        .then(|user, entry, caller, body, state| async move {
            answer(bounded(correct(user, entry, caller, body, state)).await)
        });
    let delete = warp::path!("api" / "v1" / "users" / i64 / "food-entries" / Uuid)
        .and(warp::delete())
        .and(caller(state.clone()))
        .and(with(state.clone()))
        .then(|user, entry, caller, state| async move {
            answer(bounded(delete(user, entry, caller, state)).await)
        });
    let daily = warp::path!("api" / "v1" / "users" / i64 / "summary" / "daily")
        .and(warp::get())
        .and(caller(state.clone()))
        .and(warp::query::<DayQuery>())
        .and(with(state.clone()))
        .then(|user, caller, query, state| async move {
            answer(bounded(daily(user, caller, query, state)).await)
        });
    let weekly = warp::path!("api" / "v1" / "users" / i64 / "summary" / "weekly")
        .and(warp::get())
        .and(caller(state.clone()))
        .and(warp::query::<WeekQuery>())
        .and(with(state))
        .then(|user, caller, query, state| async move {
            answer(bounded(weekly(user, caller, query, state)).await)
        });
    list.or(create)
        .unify()
        .or(photo)
        .unify()
        .or(correct)
        .unify()
        .or(delete)
        .unify()
        .or(daily)
        .unify()
        .or(weekly)
        .unify()
        .boxed()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// One local day.
    date: Option<String>,
    /// A range of local days, both included.
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DayQuery {
    date: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WeekQuery {
    /// The last day of the seven; today when left out.
    end: Option<String>,
}

fn parse_date(field: &str, text: &str) -> Result<NaiveDate, ApiError> {
    text.parse::<NaiveDate>()
        .map_err(|_| ApiError::field(field, format!("'{text}' is not a date like 2026-01-31")))
}

fn optional_date(field: &str, text: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    text.map(|text| parse_date(field, text)).transpose()
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}/food-entries",
    tag = "food",
    summary = "Food entries of a local day or a range of days, by time eaten",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id"), ("date" = Option<chrono::NaiveDate>, Query, description = "One local day, YYYY-MM-DD (default today)"), ("from" = Option<chrono::NaiveDate>, Query, description = "First local day of a range"), ("to" = Option<chrono::NaiveDate>, Query, description = "Last local day of a range (default today)"), ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,16}_[0-9a-f]{32}$", description = "next_cursor of the previous page")),
    responses((status = 200, description = "A page of entries", body = FoodEntryPage), super::error::CommonErrors)
)]
pub(super) async fn list(
    user: i64,
    caller: Caller,
    query: ListQuery,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    let limit = page_limit(query.limit, ENTRY_PAGE_DEFAULT)?;
    let today = user.local_date(Utc::now());
    let (from, to) = match (
        optional_date("date", query.date.as_deref())?,
        optional_date("from", query.from.as_deref())?,
        optional_date("to", query.to.as_deref())?,
    ) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(ApiError::field(
                "date",
                "give either date, or from and to, not both",
            ))
        }
        (Some(date), None, None) => (date, date),
        (None, from, to) => {
            let to = to.unwrap_or(today);
            (from.unwrap_or(to), to)
        }
    };
    if from > to {
        return Err(ApiError::field("from", "must not be after to"));
    }
    if (to - from).num_days() >= RANGE_MAX_DAYS {
        return Err(ApiError::field(
            "from",
            format!("the range may cover at most {RANGE_MAX_DAYS} days"),
        ));
    }
    let entries = state
        .store
        .food_entries(user.id, from, to)
        .await
        .map_err(ApiError::store)?;
    let (page, next_cursor) = page(
        entries,
        |entry| (entry.eaten_at, entry.id),
        Order::OldestFirst,
        query.cursor.as_deref(),
        limit,
    )?;
    Ok(warp::reply::json(&FoodEntryPage {
        entries: page.iter().map(FoodEntryBody::from).collect(),
        next_cursor,
    }))
}

fn check_eaten_at(eaten_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), ApiError> {
    if eaten_at > now + Duration::minutes(5) {
        return Err(ApiError::field("eaten_at", "must not be in the future"));
    }
    if eaten_at < now - Duration::days(3650) {
        return Err(ApiError::field("eaten_at", "is more than ten years ago"));
    }
    Ok(())
}

fn local_meal(user: &User, eaten_at: DateTime<Utc>) -> health_actors::domain::MealType {
    crate::assistant::meal_type_at(eaten_at.with_timezone(&user.tz()).time())
}

#[utoipa::path(
    post,
    path = "/api/v1/users/{user_id}/food-entries",
    tag = "food",
    summary = "Log a meal described in words",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id")),
    request_body = CreateFoodEntryBody,
    responses((status = 201, description = "Saved", body = CreatedFoodEntry), super::error::CommonErrors)
)]
pub(super) async fn create(
    user: i64,
    caller: Caller,
    body: CreateFoodEntryBody,
    state: ApiState,
) -> Result<warp::reply::Response, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    let text = check_text("text", &body.text, TEXT_MAX_CHARS)?;
    let now = Utc::now();
    let eaten_at = body.eaten_at.unwrap_or(now);
    check_eaten_at(eaten_at, now)?;
    let estimate = state.engine.estimate(&text).await;
    if !estimate.has_items() {
        let mut why: Vec<String> = estimate
            .left_out
            .iter()
            .map(|left_out| format!("'{}' {}", left_out.input, left_out.reason))
            .collect();
        if !estimate.unknown.is_empty() {
            why.push(format!("no food I know in {}", estimate.unknown.join(", ")));
        }
        return Err(ApiError::field(
            "text",
            format!(
                "nothing in it could be counted ({}); nothing was saved. Name the foods with amounts, e.g. \"2 eggs and a slice of toast\"",
                why.join("; ")
            ),
        ));
    }
    let entry = FoodEntry {
        id: Uuid::now_v7(),
        user_id: user.id,
        eaten_at,
        local_date: user.local_date(eaten_at),
        meal_type: Some(
            body.meal_type
                .unwrap_or_else(|| local_meal(&user, eaten_at)),
        ),
        description: text,
        items: estimate.items,
        total: estimate.total,
        photo_path: None,
        created_at: now,
    };
    state
        .persistence
        .write(vec![Write::InsertFoodEntry(entry.clone())])
        .await
        .map_err(ApiError::persist)?;
    Ok(json_reply(
        StatusCode::CREATED,
        &CreatedFoodEntry {
            entry: FoodEntryBody::from(&entry),
            unknown: estimate.unknown,
            left_out: estimate.left_out.iter().map(LeftOutBody::from).collect(),
        },
    ))
}

async fn entry_of(state: &ApiState, user: &User, entry: Uuid) -> Result<FoodEntry, ApiError> {
    state
        .store
        .food_entry(user.id, entry)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::NotFound(format!("User {} has no food entry {entry}.", user.id)))
}

#[utoipa::path(
    patch,
    path = "/api/v1/users/{user_id}/food-entries/{entry_id}",
    tag = "food",
    summary = "Correct an entry: new text, item amounts, meal or time",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id"), ("entry_id" = uuid::Uuid, Path, description = "The entry's id")),
    request_body = CorrectFoodEntryBody,
    responses((status = 200, description = "The corrected entry", body = FoodEntryBody), super::error::CommonErrors)
)]
pub(super) async fn correct(
    user: i64,
    entry: Uuid,
    caller: Caller,
    body: CorrectFoodEntryBody,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    let mut entry = entry_of(&state, &user, entry).await?;
    if body.text.is_none()
        && body.items.is_empty()
        && body.meal_type.is_none()
        && body.eaten_at.is_none()
    {
        return Err(ApiError::field(
            "text",
            "nothing to change: give text, items, meal_type or eaten_at",
        ));
    }
    if let Some(text) = &body.text {
        let text = check_text("text", text, TEXT_MAX_CHARS)?;
        let estimate = state.engine.estimate(&text).await;
        if !estimate.has_items() {
            return Err(ApiError::field(
                "text",
                "no food in it is one I know; the entry was not changed",
            ));
        }
        entry.items = estimate.items;
        entry.description = text;
    }
    for correction in &body.items {
        let count = entry.items.len();
        let item = entry.items.get_mut(correction.index).ok_or_else(|| {
            ApiError::field(
                "items",
                format!(
                    "index {} is past the entry's {count} items",
                    correction.index
                ),
            )
        })?;
        let grams = Grams::new(correction.grams)
            .map_err(|error| ApiError::field("items", error.to_string()))?;
        if item.grams <= 0.0 {
            return Err(ApiError::field(
                "items",
                format!(
                    "item {} weighs 0 g, so its nutrients cannot be scaled; describe it again with text",
                    correction.index
                ),
            ));
        }
        item.nutrients = item.nutrients.scaled(grams.get() / item.grams);
        item.grams = grams.get();
    }
    entry.total = Nutrients::sum(entry.items.iter().map(|item| &item.nutrients));
    if let Some(meal_type) = body.meal_type {
        entry.meal_type = Some(meal_type);
    }
    if let Some(eaten_at) = body.eaten_at {
        check_eaten_at(eaten_at, Utc::now())?;
        entry.eaten_at = eaten_at;
        entry.local_date = user.local_date(eaten_at);
    }
    state
        .persistence
        .write(vec![Write::UpdateFoodEntry(entry.clone())])
        .await
        .map_err(ApiError::persist)?;
    Ok(warp::reply::json(&FoodEntryBody::from(&entry)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/users/{user_id}/food-entries/{entry_id}",
    tag = "food",
    summary = "Delete an entry",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id"), ("entry_id" = uuid::Uuid, Path, description = "The entry's id")),
    responses((status = 204, description = "Deleted"), super::error::CommonErrors)
)]
pub(super) async fn delete(
    user: i64,
    entry: Uuid,
    caller: Caller,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    let entry = entry_of(&state, &user, entry).await?;
    state
        .persistence
        .write(vec![Write::DeleteFoodEntry {
            user_id: user.id,
            id: entry.id,
        }])
        .await
        .map_err(ApiError::persist)?;
    Ok(StatusCode::NO_CONTENT)
}

fn day_summary(user: &User, date: NaiveDate, entries: &[&FoodEntry]) -> DailySummary {
    let total = Nutrients::sum(entries.iter().map(|entry| &entry.total));
    let remaining =
        |goal: Option<f64>, eaten: f64| goal.map(|goal| ((goal - eaten) * 10.0).round() / 10.0);
    DailySummary {
        date,
        total: NutrientsBody::from(&total),
        goals: GoalsBody::from(&user.goals),
        remaining: RemainingBody {
            kcal: remaining(user.goals.kcal, total.kcal),
            protein_g: remaining(user.goals.protein_g, total.protein_g),
            carbs_g: remaining(user.goals.carbs_g, total.carbs_g),
            fat_g: remaining(user.goals.fat_g, total.fat_g),
        },
        entries: entries.len(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}/summary/daily",
    tag = "summary",
    summary = "Totals of a local day against the goals",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id"), ("date" = Option<chrono::NaiveDate>, Query, description = "YYYY-MM-DD, default today")),
    responses((status = 200, description = "The day", body = DailySummary), super::error::CommonErrors)
)]
pub(super) async fn daily(
    user: i64,
    caller: Caller,
    query: DayQuery,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    let date = optional_date("date", query.date.as_deref())?
        .unwrap_or_else(|| user.local_date(Utc::now()));
    let entries = state
        .store
        .food_entries(user.id, date, date)
        .await
        .map_err(ApiError::store)?;
    let entries: Vec<&FoodEntry> = entries.iter().collect();
    Ok(warp::reply::json(&day_summary(&user, date, &entries)))
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}/summary/weekly",
    tag = "summary",
    summary = "Seven local days ending on end",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id"), ("end" = Option<chrono::NaiveDate>, Query, description = "YYYY-MM-DD, default today")),
    responses((status = 200, description = "The week", body = WeeklySummary), super::error::CommonErrors)
)]
pub(super) async fn weekly(
    user: i64,
    caller: Caller,
    query: WeekQuery,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    let to =
        optional_date("end", query.end.as_deref())?.unwrap_or_else(|| user.local_date(Utc::now()));
    let from = to - Duration::days(6);
    let entries = state
        .store
        .food_entries(user.id, from, to)
        .await
        .map_err(ApiError::store)?;
    let days: Vec<DailySummary> = from
        .iter_days()
        .take(7)
        .map(|date| {
            let of_day: Vec<&FoodEntry> = entries.iter().filter(|e| e.local_date == date).collect();
            day_summary(&user, date, &of_day)
        })
        .collect();
    let total = Nutrients::sum(entries.iter().map(|entry| &entry.total));
    let days_logged = days.iter().filter(|day| day.entries > 0).count();
    let average = total.scaled(1.0 / days_logged.max(1) as f64);
    Ok(warp::reply::json(&WeeklySummary {
        from,
        to,
        days,
        total: NutrientsBody::from(&total),
        daily_average: NutrientsBody::from(&average),
        days_logged,
    }))
}
