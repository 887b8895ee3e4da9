//! Users, their profile and goals, their memories, and per-user keys.
//!
//! Changes are written through the persistence actor (one transaction, returned after the
//! commit); deleting a user goes straight to the store, which removes every row about them.
//! PATCH bodies are merge patches: a field present replaces the stored value (`null` clears it),
//! a field left out is kept.

use chrono::Utc;
use health_actors::domain::{User, UserId};
use health_actors::ports::{ApiKey, Write};
use serde_json::{Map, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Reply};

use super::auth::{generate_key, hash_key};
use super::body::{
    AchievementBody, CreateKeyBody, CreateUserBody, CreatedKey, GoalsBody, MemoryBody, MemoryPage,
    ProfileBody, ProfilePatch, ProgressBody, StreakBody, UserBody, XpEventBody,
};
use super::checks::check_text;
use super::paging::{page, page_limit, Order, PageQuery};
use super::{answer, bounded, caller, json_body, json_reply, with, ApiError, ApiState, Caller};

/// Memories per page when the client does not say.
const MEMORY_PAGE_DEFAULT: usize = 50;

pub(super) fn routes(state: ApiState) -> BoxedFilter<(warp::reply::Response,)> {
    let create = warp::path!("api" / "v1" / "users")
        .and(warp::post())
        .and(caller(state.clone()))
        .and(json_body::<CreateUserBody>())
        .and(with(state.clone()))
        .then(|caller, body, state| async move {
            answer(bounded(create_user(caller, body, state)).await)
        });
    let get =
        warp::path!("api" / "v1" / "users" / i64)
            .and(warp::get())
            .and(caller(state.clone()))
            .and(with(state.clone()))
            .then(|user, caller, state| async move {
                answer(bounded(get_user(user, caller, state)).await)
            });
    let delete = warp::path!("api" / "v1" / "users" / i64)
        .and(warp::delete())
        .and(caller(state.clone()))
        .and(with(state.clone()))
        .then(|user, caller, state| async move {
            answer(bounded(delete_user(user, caller, state)).await)
        });
    let get_profile = warp::path!("api" / "v1" / "users" / i64 / "profile")
        .and(warp::get())
        .and(caller(state.clone()))
        .and(with(state.clone()))
        .then(|user, caller, state| async move {
            answer(bounded(get_profile(user, caller, state)).await)
        });
    let patch_profile = warp::path!("api" / "v1" / "users" / i64 / "profile")
        .and(warp::patch())
        .and(caller(state.clone()))
        .and(json_body::<Map<String, Value>>())
        .and(with(state.clone()))
        .then(|user, caller, patch, state| async move {
            answer(bounded(patch_profile(user, caller, patch, state)).await)
        });
    let get_goals = warp::path!("api" / "v1" / "users" / i64 / "goals")
        .and(warp::get())
        .and(caller(state.clone()))
        .and(with(state.clone()))
        .then(|user, caller, state| async move {
            answer(bounded(get_goals(user, caller, state)).await)
        });
    let patch_goals = warp::path!("api" / "v1" / "users" / i64 / "goals")
        .and(warp::patch())
        .and(caller(state.clone()))
        .and(json_body::<Map<String, Value>>())
        .and(with(state.clone()))
        .then(|user, caller, patch, state| async move {
            answer(bounded(patch_goals(user, caller, patch, state)).await)
        });
    let memories = warp::path!("api" / "v1" / "users" / i64 / "memories")
        .and(warp::get())
        .and(caller(state.clone()))
        .and(warp::query::<PageQuery>())
        .and(with(state.clone()))
        .then(|user, caller, query, state| async move {
            answer(bounded(list_memories(user, caller, query, state)).await)
        });
    let delete_memory = warp::path!("api" / "v1" / "users" / i64 / "memories" / Uuid)
        .and(warp::delete())
        .and(caller(state.clone()))
        .and(with(state.clone()))
        .then(|user, memory, caller, state| async move {
            answer(bounded(delete_memory(user, memory, caller, state)).await)
        });
    let progress = warp::path!("api" / "v1" / "users" / i64 / "progress")
        .and(warp::get())
        .and(caller(state.clone()))
        .and(warp::query::<PageQuery>())
        .and(with(state))
        .then(|user, caller, query, state| async move {
            answer(bounded(progress(user, caller, query, state)).await)
        });
    create
        .or(get)
        .unify()
        .or(delete)
        .unify()
        .or(get_profile)
        .unify()
        .or(patch_profile)
        .unify()
        .or(get_goals)
        .unify()
        .or(patch_goals)
        .unify()
        .or(memories)
        .unify()
        .or(delete_memory)
        .unify()
        .or(progress)
        .unify()
        .boxed()
}

pub(super) fn key_routes(state: ApiState) -> BoxedFilter<(warp::reply::Response,)> {
    warp::path!("api" / "v1" / "keys")
        .and(warp::post())
        .and(caller(state.clone()))
        .and(json_body::<CreateKeyBody>())
        .and(with(state))
        .then(|caller, body, state| async move {
            answer(bounded(create_key(caller, body, state)).await)
        })
        .boxed()
}

#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    summary = "Create a user (admin keys only)",
    request_body = CreateUserBody,
    responses((status = 201, description = "Created", body = UserBody), super::error::CommonErrors)
)]
pub(super) async fn create_user(
    caller: Caller,
    body: CreateUserBody,
    state: ApiState,
) -> Result<warp::reply::Response, ApiError> {
    caller.require_admin()?;
    let id = match body.id {
        Some(id) if id != 0 => UserId(id),
        Some(_) => return Err(ApiError::field("id", "must not be 0")),
        None => new_user_id(),
    };
    if state
        .store
        .user(id)
        .await
        .map_err(ApiError::store)?
        .is_some()
    {
        return Err(ApiError::Conflict(format!("User {id} already exists.")));
    }
    let mut user = User::new(id, Utc::now());
    if let Some(timezone) = body.timezone {
        user.timezone = check_timezone(&timezone)?;
    }
    if let Some(name) = body.display_name {
        user.profile.display_name = Some(check_display_name(&name)?);
    }
    state
        .persistence
        .write(vec![Write::UpsertUser(user.clone())])
        .await
        .map_err(ApiError::persist)?;
    state.conversations.refresh(user.id);
    let mut reply = json_reply(StatusCode::CREATED, &UserBody::from(&user));
    if let Ok(location) = warp::http::HeaderValue::from_str(&format!("/api/v1/users/{id}")) {
        reply.headers_mut().insert("location", location);
    }
    Ok(reply)
}

/// A random negative id: Telegram ids are positive, so API-made people never collide with them.
fn new_user_id() -> UserId {
    let random = Uuid::new_v4().as_u128() as u64 & ((1 << 52) - 1);
    UserId(-(random as i64) - 1)
}

/// An IANA name spelt exactly as the tz database does (the document lists them).
fn check_timezone(name: &str) -> Result<String, ApiError> {
    name.parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| {
            ApiError::field(
                "timezone",
                format!("'{name}' is not an IANA time zone name, e.g. Europe/Paris"),
            )
        })
}

fn check_display_name(name: &str) -> Result<String, ApiError> {
    check_text("display_name", name, 100)
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}",
    tag = "users",
    summary = "A user with profile and goals",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id")),
    responses((status = 200, description = "The user", body = UserBody), super::error::CommonErrors)
)]
pub(super) async fn get_user(
    user: i64,
    caller: Caller,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    Ok(warp::reply::json(&UserBody::from(&user)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/users/{user_id}",
    tag = "users",
    summary = "Delete the user and everything stored about them",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id")),
    responses((status = 204, description = "Deleted"), super::error::CommonErrors)
)]
pub(super) async fn delete_user(
    user: i64,
    caller: Caller,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let user = caller.may_act_on(user)?;
    state.user(user).await?;
    // Writes already queued for the person (the history of their last chat turn is queued, not
    // awaited) commit before this no-op one; deleting after it means they cannot bring the
    // person back.
    state
        .persistence
        .write(vec![Write::DeleteFoodEntry {
            user_id: user,
            id: Uuid::nil(),
        }])
        .await
        .map_err(ApiError::persist)?;
    if state
        .store
        .delete_user(user)
        .await
        .map_err(ApiError::store)?
    {
        state.conversations.refresh(user);
        tracing::info!(user_id = %user, "user deleted through the API");
        // The photos they uploaded go with them.
        let photos = crate::telegram::photos::user_dir(&state.photos_dir, user.0);
        match tokio::fs::remove_dir_all(&photos).await {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::error!(user_id = %user, %error, "could not delete a person's photos")
            }
        }
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::user_not_found(user.0))
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}/profile",
    tag = "users",
    summary = "The profile and time zone",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id")),
    responses((status = 200, description = "The profile", body = ProfileBody), super::error::CommonErrors)
)]
pub(super) async fn get_profile(
    user: i64,
    caller: Caller,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    Ok(warp::reply::json(&ProfileBody::of(&user)))
}

/// Applies a merge patch to the JSON of `current`: each field of `patch` replaces the stored one.
fn merge<T: serde::Serialize + serde::de::DeserializeOwned>(
    current: &T,
    patch: Map<String, Value>,
) -> Result<T, ApiError> {
    let mut value = serde_json::to_value(current).map_err(|_| ApiError::Internal)?;
    let object = value.as_object_mut().ok_or(ApiError::Internal)?;
    for (field, new) in patch {
        if !object.contains_key(&field) {
            return Err(ApiError::field(field, "is not a field that can be changed"));
        }
        let old = object.insert(field.clone(), new).unwrap_or(Value::Null);
        // Deserialising field by field names the one that is wrong.
        if let Err(error) = serde_json::from_value::<T>(Value::Object(object.clone())) {
            let message = super::describe_json_error(&error);
            object.insert(field.clone(), old);
            return Err(ApiError::field(field, message));
        }
    }
    serde_json::from_value(value).map_err(|error| ApiError::InvalidBody(error.to_string()))
}

fn check_range(field: &str, value: Option<f64>, min: f64, max: f64) -> Result<(), ApiError> {
    match value {
        Some(v) if !(v.is_finite() && (min..=max).contains(&v)) => Err(ApiError::field(
            field,
            format!("must be between {min} and {max}"),
        )),
        _ => Ok(()),
    }
}

#[utoipa::path(
    patch,
    path = "/api/v1/users/{user_id}/profile",
    tag = "users",
    summary = "Change profile fields (merge patch: null clears a field)",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id")),
    request_body(content = ProfilePatch, description = "Any subset of the profile's fields"),
    responses((status = 200, description = "The changed profile", body = ProfileBody), super::error::CommonErrors)
)]
pub(super) async fn patch_profile(
    user: i64,
    caller: Caller,
    patch: Map<String, Value>,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let mut user = state.user(caller.may_act_on(user)?).await?;
    let mut body = merge(&ProfileBody::of(&user), patch)?;
    body.timezone = check_timezone(&body.timezone)?;
    if let Some(name) = &body.display_name {
        body.display_name = Some(check_display_name(name)?);
    }
    if body.age_years.is_some_and(|age| !(1..=130).contains(&age)) {
        return Err(ApiError::field("age_years", "must be between 1 and 130"));
    }
    check_range("height_cm", body.height_cm, 40.0, 280.0)?;
    check_range("weight_kg", body.weight_kg, 2.0, 650.0)?;
    if let Some(language) = &body.language {
        let valid = (2..=35).contains(&language.len())
            && language
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return Err(ApiError::field(
                "language",
                "must be a language tag such as en or pt-BR",
            ));
        }
    }
    let (profile, timezone) = body.into_profile();
    user.profile = profile;
    user.timezone = timezone;
    user.updated_at = Utc::now();
    state
        .persistence
        .write(vec![Write::UpsertUser(user.clone())])
        .await
        .map_err(ApiError::persist)?;
    state.conversations.refresh(user.id);
    Ok(warp::reply::json(&ProfileBody::of(&user)))
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}/goals",
    tag = "users",
    summary = "Daily targets",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id")),
    responses((status = 200, description = "The goals", body = GoalsBody), super::error::CommonErrors)
)]
pub(super) async fn get_goals(
    user: i64,
    caller: Caller,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    Ok(warp::reply::json(&GoalsBody::from(&user.goals)))
}

#[utoipa::path(
    patch,
    path = "/api/v1/users/{user_id}/goals",
    tag = "users",
    summary = "Change daily targets (merge patch: null clears a goal)",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id")),
    request_body(content = GoalsBody, description = "Any subset of the goals"),
    responses((status = 200, description = "The changed goals", body = GoalsBody), super::error::CommonErrors)
)]
pub(super) async fn patch_goals(
    user: i64,
    caller: Caller,
    patch: Map<String, Value>,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let mut user = state.user(caller.may_act_on(user)?).await?;
    let goals = merge(&GoalsBody::from(&user.goals), patch)?;
    check_range("kcal", goals.kcal, 500.0, 10_000.0)?;
    check_range("protein_g", goals.protein_g, 0.0, 1_000.0)?;
    check_range("carbs_g", goals.carbs_g, 0.0, 2_000.0)?;
    check_range("fat_g", goals.fat_g, 0.0, 1_000.0)?;
    user.goals = goals.into();
    user.updated_at = Utc::now();
    state
        .persistence
        .write(vec![Write::UpsertUser(user.clone())])
        .await
        .map_err(ApiError::persist)?;
    state.conversations.refresh(user.id);
    Ok(warp::reply::json(&GoalsBody::from(&user.goals)))
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}/memories",
    tag = "memories",
    summary = "Facts the person stated, oldest first",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id"), ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,16}_[0-9a-f]{32}$", description = "next_cursor of the previous page")),
    responses((status = 200, description = "A page of memories", body = MemoryPage), super::error::CommonErrors)
)]
pub(super) async fn list_memories(
    user: i64,
    caller: Caller,
    query: PageQuery,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    let limit = page_limit(query.limit, MEMORY_PAGE_DEFAULT)?;
    let memories = state
        .store
        .memories(user.id)
        .await
        .map_err(ApiError::store)?;
    let (page, next_cursor) = page(
        memories,
        |memory| (memory.created_at, memory.id),
        Order::OldestFirst,
        query.cursor.as_deref(),
        limit,
    )?;
    Ok(warp::reply::json(&MemoryPage {
        memories: page.iter().map(MemoryBody::from).collect(),
        next_cursor,
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/users/{user_id}/memories/{memory_id}",
    tag = "memories",
    summary = "Forget one memory",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id"), ("memory_id" = uuid::Uuid, Path, description = "The memory's id")),
    responses((status = 204, description = "Forgotten"), super::error::CommonErrors)
)]
pub(super) async fn delete_memory(
    user: i64,
    memory: Uuid,
    caller: Caller,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    let memories = state
        .store
        .memories(user.id)
        .await
        .map_err(ApiError::store)?;
    if !memories.iter().any(|m| m.id == memory) {
        return Err(ApiError::NotFound(format!(
            "User {} has no memory {memory}.",
            user.id
        )));
    }
    state
        .persistence
        .write(vec![Write::DeleteMemory {
            user_id: user.id,
            id: memory,
        }])
        .await
        .map_err(ApiError::persist)?;
    Ok(StatusCode::NO_CONTENT)
}

/// XP events per page when the client does not say.
const XP_PAGE_DEFAULT: usize = 50;

#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}/progress",
    tag = "progress",
    summary = "XP (total and events, newest first), streaks and achievements",
    description = "Lists are empty until something earns them.",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id"), ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "XP events per page, 1 to 200, default 50"), ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,16}_[0-9a-f]{32}$", description = "next_cursor of the previous page")),
    responses((status = 200, description = "The person's progress", body = ProgressBody), super::error::CommonErrors)
)]
pub(super) async fn progress(
    user: i64,
    caller: Caller,
    query: PageQuery,
    state: ApiState,
) -> Result<impl Reply, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    let limit = page_limit(query.limit, XP_PAGE_DEFAULT)?;
    let (events, streaks, mut achievements) = tokio::try_join!(
        state.store.xp_events(user.id),
        state.store.streaks(user.id),
        state.store.achievements(user.id),
    )
    .map_err(ApiError::store)?;
    let xp_total = events.iter().map(|event| event.amount).sum();
    let (page, next_cursor) = page(
        events,
        |event| (event.created_at, event.id),
        Order::NewestFirst,
        query.cursor.as_deref(),
        limit,
    )?;
    achievements.sort_by_key(|achievement| (achievement.earned_at, achievement.code.clone()));
    let mut streaks: Vec<StreakBody> = streaks.iter().map(StreakBody::from).collect();
    streaks.sort_by(|a, b| a.domain.cmp(&b.domain));
    Ok(warp::reply::json(&ProgressBody {
        xp_total,
        xp_events: page.iter().map(XpEventBody::from).collect(),
        next_cursor,
        streaks,
        achievements: achievements.iter().map(AchievementBody::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/keys",
    tag = "keys",
    summary = "Create a key that acts only on one user (admin keys only)",
    request_body = CreateKeyBody,
    responses((status = 201, description = "The key, shown only now", body = CreatedKey), super::error::CommonErrors)
)]
pub(super) async fn create_key(
    caller: Caller,
    body: CreateKeyBody,
    state: ApiState,
) -> Result<warp::reply::Response, ApiError> {
    caller.require_admin()?;
    let user = state.user(UserId(body.user_id)).await?;
    let key = generate_key();
    let created_at = Utc::now();
    state
        .store
        .insert_api_key(ApiKey {
            hash: hash_key(&key),
            user_id: user.id,
            created_at,
        })
        .await
        .map_err(ApiError::store)?;
    tracing::info!(user_id = %user.id, "per-user API key created");
    Ok(json_reply(
        StatusCode::CREATED,
        &CreatedKey {
            user_id: user.id.0,
            key,
            created_at,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patches_replace_clear_and_name_the_bad_field() {
        let goals = GoalsBody {
            kcal: Some(2000.0),
            protein_g: Some(100.0),
            ..GoalsBody::default()
        };
        let patch = serde_json::json!({"kcal": 1800, "protein_g": null});
        let merged = merge(&goals, patch.as_object().unwrap().clone()).unwrap();
        assert_eq!(merged.kcal, Some(1800.0));
        assert_eq!(merged.protein_g, None);
        let bad = serde_json::json!({"kcal": "lots"});
        match merge(&goals, bad.as_object().unwrap().clone()) {
            Err(ApiError::InvalidField { field, .. }) => assert_eq!(field, "kcal"),
            other => panic!("expected a field error, got {other:?}"),
        }
        let unknown = serde_json::json!({"sugar_g": 10});
        assert!(matches!(
            merge(&goals, unknown.as_object().unwrap().clone()),
            Err(ApiError::InvalidField { .. })
        ));
    }

    #[test]
    fn generated_user_ids_are_negative() {
        for _ in 0..100 {
            assert!(new_user_id().0 < 0);
        }
    }
}
