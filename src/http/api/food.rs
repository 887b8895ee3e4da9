//! Food entries (list, create from text or a photo, correct, delete) and the daily and weekly
//! summaries.
//!
//! Text is estimated by the same nutrition engine the assistant uses (built-in table, then USDA
//! when configured); a meal with no known food is refused rather than saved as zero. "Today" is
//! the person's local day in their time zone. Lists are ordered by when the food was eaten and
//! paged with an opaque cursor that stays valid while entries are added.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::TryStreamExt;
use health_actors::domain::{FoodEntry, Grams, Nutrients, User};
use health_actors::ports::Write;
use serde::Deserialize;
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Buf, Filter, Reply};

use super::body::{
    CorrectFoodEntryBody, CreateFoodEntryBody, CreatedFoodEntry, DailySummary, FoodEntryBody,
    FoodEntryPage, GoalsBody, NutrientsBody, WeeklySummary,
};
use super::users::page_limit;
use super::{
    answer, bounded, caller, json_body, json_reply, with, ApiError, ApiState, Caller,
    PHOTO_BODY_LIMIT,
};

const ENTRY_PAGE_DEFAULT: usize = 50;
/// The longest range one list request may cover.
const RANGE_MAX_DAYS: i64 = 366;
const TEXT_MAX_CHARS: usize = 2_000;
const CAPTION_MAX_CHARS: usize = 1_000;

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
    let photo = warp::path!("api" / "v1" / "users" / i64 / "food-entries" / "photo")
        .and(warp::post())
        .and(caller(state.clone()))
        .and(photo_form())
        .and(with(state.clone()))
        .then(|user, caller, form, state| async move {
            answer(bounded(photo(user, caller, form, state)).await)
        });
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

/// Where the next page starts: after this (time, id) — eaten_at for entries, created_at for
/// memories.
pub(super) fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{}", at.timestamp_micros(), id.simple())
}

pub(super) fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let invalid = || ApiError::field("cursor", "is not a cursor this API gave out");
    let (micros, id) = cursor.split_once('_').ok_or_else(invalid)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((at, id))
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}/food-entries",
    tag = "food",
    summary = "Food entries of a local day or a range of days, by time eaten",
    params(("user_id" = i64, Path, description = "The person's id"), ("date" = Option<chrono::NaiveDate>, Query, description = "One local day, YYYY-MM-DD (default today)"), ("from" = Option<chrono::NaiveDate>, Query, description = "First local day of a range"), ("to" = Option<chrono::NaiveDate>, Query, description = "Last local day of a range (default today)"), ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, pattern = "^[0-9]+_[0-9a-f]{32}$", description = "next_cursor of the previous page")),
    responses((status = 200, description = "A page of entries", body = FoodEntryPage), super::openapi::CommonErrors)
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
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut entries = state
        .store
        .food_entries(user.id, from, to)
        .await
        .map_err(ApiError::store)?;
    entries.sort_by_key(|entry| (entry.eaten_at, entry.id));
    let start = match after {
        Some(after) => entries.partition_point(|entry| (entry.eaten_at, entry.id) <= after),
        None => 0,
    };
    let page: Vec<&FoodEntry> = entries.iter().skip(start).take(limit).collect();
    let next_cursor = (start + page.len() < entries.len())
        .then(|| {
            page.last()
                .map(|entry| encode_cursor(entry.eaten_at, entry.id))
        })
        .flatten();
    Ok(warp::reply::json(&FoodEntryPage {
        entries: page.into_iter().map(FoodEntryBody::from).collect(),
        next_cursor,
    }))
}

fn check_text(field: &str, text: &str, max: usize) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::field(field, "must not be empty"));
    }
    if text.chars().count() > max {
        return Err(ApiError::field(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(text.to_owned())
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
    crate::llm::offline::meal_type_at(eaten_at.with_timezone(&user.tz()).time())
}

#[utoipa::path(
    post,
    path = "/api/v1/users/{user_id}/food-entries",
    tag = "food",
    summary = "Log a meal described in words",
    params(("user_id" = i64, Path, description = "The person's id")),
    request_body = CreateFoodEntryBody,
    responses((status = 201, description = "Saved", body = CreatedFoodEntry), super::openapi::CommonErrors)
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
        return Err(ApiError::field(
            "text",
            format!(
                "no food in it is one I know ({}); nothing was saved. Name the foods with amounts, e.g. \"2 eggs and a slice of toast\"",
                estimate.unknown.join(", ")
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
    params(("user_id" = i64, Path, description = "The person's id"), ("entry_id" = uuid::Uuid, Path, description = "The entry's id")),
    request_body = CorrectFoodEntryBody,
    responses((status = 200, description = "The corrected entry", body = FoodEntryBody), super::openapi::CommonErrors)
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
    params(("user_id" = i64, Path, description = "The person's id"), ("entry_id" = uuid::Uuid, Path, description = "The entry's id")),
    responses((status = 204, description = "Deleted"), super::openapi::CommonErrors)
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
        remaining: GoalsBody {
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
    params(("user_id" = i64, Path, description = "The person's id"), ("date" = Option<chrono::NaiveDate>, Query, description = "YYYY-MM-DD, default today")),
    responses((status = 200, description = "The day", body = DailySummary), super::openapi::CommonErrors)
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
    params(("user_id" = i64, Path, description = "The person's id"), ("end" = Option<chrono::NaiveDate>, Query, description = "YYYY-MM-DD, default today")),
    responses((status = 200, description = "The week", body = WeeklySummary), super::openapi::CommonErrors)
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

/// The uploaded photo and its caption.
pub(super) struct PhotoForm {
    photo: Option<Vec<u8>>,
    caption: Option<String>,
}

/// `multipart/form-data` with a `photo` file (JPEG, PNG or WebP) and an optional `caption`; the
/// whole body at most [`PHOTO_BODY_LIMIT`].
fn photo_form() -> BoxedFilter<(PhotoForm,)> {
    warp::header::optional::<String>("content-type")
        .and(warp::header::optional::<u64>("content-length"))
        .and_then(
            |content_type: Option<String>, length: Option<u64>| async move {
                let multipart = content_type.is_some_and(|value| {
                    value
                        .trim()
                        .to_ascii_lowercase()
                        .starts_with("multipart/form-data")
                });
                if !multipart {
                    return Err(warp::reject::custom(ApiError::UnsupportedMediaType(
                        "Upload the photo as multipart/form-data with a field named 'photo'."
                            .into(),
                    )));
                }
                if length.is_some_and(|length| length > PHOTO_BODY_LIMIT) {
                    return Err(warp::reject::custom(photo_too_large()));
                }
                Ok(())
            },
        )
        .untuple_one()
        .and(warp::multipart::form().max_length(PHOTO_BODY_LIMIT))
        .and_then(|form: warp::multipart::FormData| async move {
            read_photo_form(form).await.map_err(warp::reject::custom)
        })
        .boxed()
}

fn photo_too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "The photo upload is larger than {} MiB.",
        PHOTO_BODY_LIMIT / 1024 / 1024
    ))
}

async fn read_photo_form(mut form: warp::multipart::FormData) -> Result<PhotoForm, ApiError> {
    let unreadable = |_| ApiError::InvalidBody("the multipart form could not be read".to_owned());
    let mut result = PhotoForm {
        photo: None,
        caption: None,
    };
    while let Some(part) = form.try_next().await.map_err(unreadable)? {
        let name = part.name().to_owned();
        let bytes: Vec<u8> = part
            .stream()
            .try_fold(Vec::new(), |mut bytes, mut chunk| async move {
                while chunk.has_remaining() {
                    let piece = chunk.chunk();
                    bytes.extend_from_slice(piece);
                    let advance = piece.len();
                    chunk.advance(advance);
                }
                Ok(bytes)
            })
            .await
            .map_err(unreadable)?;
        match name.as_str() {
            "photo" => result.photo = Some(bytes),
            "caption" => {
                let caption = String::from_utf8(bytes)
                    .map_err(|_| ApiError::field("caption", "must be UTF-8 text"))?;
                if !caption.trim().is_empty() {
                    result.caption = Some(check_text("caption", &caption, CAPTION_MAX_CHARS)?);
                }
            }
            other => {
                return Err(ApiError::field(
                    other,
                    "is not a field of this form (send 'photo' and optionally 'caption')",
                ))
            }
        }
    }
    Ok(result)
}

/// The image format of `bytes` from its magic numbers.
pub(super) fn image_format(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpeg")
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("webp")
    } else {
        None
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/users/{user_id}/food-entries/photo",
    tag = "food",
    summary = "Log a meal from a photo (multipart/form-data: photo, caption)",
    description = "The photo is checked (JPEG, PNG or WebP, at most 10 MiB); until a vision model is configured the answer is 503 and nothing is saved.",
    params(("user_id" = i64, Path, description = "The person's id")),
    request_body(content = String, content_type = "multipart/form-data", description = "Fields: photo (JPEG, PNG or WebP, up to 10 MiB in all), caption (optional text)"),
    responses(super::openapi::CommonErrors)
)]
pub(super) async fn photo(
    user: i64,
    caller: Caller,
    form: PhotoForm,
    state: ApiState,
) -> Result<warp::reply::Response, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    let photo = form
        .photo
        .filter(|photo| !photo.is_empty())
        .ok_or_else(|| {
            ApiError::field("photo", "is missing: attach the image as the 'photo' field")
        })?;
    if image_format(&photo).is_none() {
        return Err(ApiError::UnsupportedMediaType(
            "The photo must be a JPEG, PNG or WebP image.".into(),
        ));
    }
    tracing::info!(user_id = %user.id, bytes = photo.len(), has_caption = form.caption.is_some(), "photo received through the API");
    Err(ApiError::Unavailable(
        "Photo analysis needs a vision model, and none is configured yet: nothing was saved. Log the meal as text instead (POST /api/v1/users/{user_id}/food-entries)."
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_their_magic_numbers() {
        assert_eq!(image_format(&[0xFF, 0xD8, 0xFF, 0xE0, 0]), Some("jpeg"));
        assert_eq!(image_format(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("png"));
        assert_eq!(image_format(b"RIFF\x10\0\0\0WEBPVP8 "), Some("webp"));
        assert_eq!(image_format(b"GIF89a"), None);
        assert_eq!(image_format(b""), None);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        let entry = FoodEntry {
            id,
            user_id: health_actors::domain::UserId(1),
            eaten_at: at,
            local_date: at.date_naive(),
            meal_type: None,
            description: String::new(),
            items: Vec::new(),
            total: Nutrients::default(),
            photo_path: None,
            created_at: at,
        };
        assert_eq!(
            decode_cursor(&encode_cursor(entry.eaten_at, entry.id)).unwrap(),
            (at, id)
        );
        assert!(decode_cursor("nonsense").is_err());
        assert!(decode_cursor("12_notauuid").is_err());
    }
}
