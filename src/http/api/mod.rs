//! `/api/v1`: the assistant over JSON, for integrators and test tools (`RUN_MODE=api` or `both`).
//!
//! Every route authenticates first ([`auth`]: admin keys from `API_KEYS`, per-user keys from
//! `POST /api/v1/keys`), then takes a token from the key's bucket, then reads its body (JSON up to
//! 64 KiB, photos up to 10 MiB). Failures are [`ApiError`]s, answered as
//! `{"error", "message"}` with the status chosen in one place. Chat goes through the same
//! conversation actors as Telegram ([`chat`]); reads come from the store; writes go through the
//! persistence actor. The OpenAPI document at `/openapi.json` is generated from these types
//! ([`openapi`]).

pub mod auth;
pub mod body;
mod chat;
mod checks;
pub mod error;
mod food;
pub mod openapi;
mod paging;
pub mod photo;
mod users;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use health_actors::conversation::ConversationsHandle;
use health_actors::persistence::PersistenceHandle;
use health_actors::ports::Store;
use health_actors::vision::VisionHandle;
use serde::de::DeserializeOwned;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

pub use self::auth::{Authenticator, Caller, RateLimits};
pub use self::chat::{idempotent_message_id, replay_kept_messages};
use self::error::respond;
pub use self::error::ApiError;
use crate::nutrition::engine::NutritionEngine;

/// Largest JSON body accepted.
pub const JSON_BODY_LIMIT: u64 = 64 * 1024;
/// Largest photo upload accepted (the whole multipart body).
pub const PHOTO_BODY_LIMIT: u64 = 10 * 1024 * 1024;
/// Bound on every request but chat and photos.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often buckets that are full again are forgotten, so that keys seen once (or a scanner
/// trying many) do not keep memory for ever.
const RATE_LIMIT_SHRINK_EVERY: Duration = Duration::from_secs(300);

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub persistence: PersistenceHandle,
    pub conversations: ConversationsHandle,
    pub engine: Arc<NutritionEngine>,
    pub auth: Arc<Authenticator>,
    pub limits: Arc<RateLimits>,
    pub idempotency: Arc<chat::IdempotencyCache>,
    /// Where chat messages are kept before they are handled (see [`ApiState::with_inbox`]).
    pub inbox: health_actors::inbox::Inbox,
    /// The vision agents, when `VISION_MODELS` lists any: photo uploads go to them.
    pub vision: Option<VisionHandle>,
    /// Bound on a photo upload: the vision agents' deadline and some room to save.
    pub photo_timeout: Duration,
    /// `<DATA_DIR>/photos`: uploaded photos are kept under `<user>/`.
    pub photos_dir: PathBuf,
}

/// What the API needs from the rest of the application.
pub struct ApiParts {
    pub store: Arc<dyn Store>,
    pub persistence: PersistenceHandle,
    pub conversations: ConversationsHandle,
    pub engine: Arc<NutritionEngine>,
    pub vision: Option<VisionHandle>,
    /// Each vision agent's deadline (`VISION_TIMEOUT_SECS`).
    pub vision_timeout: Duration,
    pub data_dir: PathBuf,
}

impl ApiState {
    /// The state of the API, and a task that forgets idle rate-limit buckets every few minutes
    /// for as long as the state (held by the routes) lives. Call within a tokio runtime.
    pub fn new(parts: ApiParts, settings: &crate::config::HttpSettings) -> Self {
        let limits = Arc::new(RateLimits::per_minute(settings.api_rate_limit_per_minute));
        limits.shrink_every(RATE_LIMIT_SHRINK_EVERY);
        let inbox =
            health_actors::inbox::Inbox::new(parts.store.clone(), parts.conversations.clone());
        Self {
            auth: Arc::new(Authenticator::new(
                settings.api_keys.clone(),
                parts.store.clone(),
            )),
            store: parts.store,
            persistence: parts.persistence,
            conversations: parts.conversations,
            engine: parts.engine,
            limits,
            idempotency: Arc::new(chat::IdempotencyCache::default()),
            inbox,
            vision: parts.vision,
            // The coordinator waits the deadline and a few seconds for the consensus.
            photo_timeout: REQUEST_TIMEOUT.max(parts.vision_timeout + Duration::from_secs(15)),
            photos_dir: parts.data_dir.join("photos"),
        }
    }

    /// Uses the process's one inbox (shared with the other edges, so that a message is handed
    /// over once).
    pub fn with_inbox(mut self, inbox: health_actors::inbox::Inbox) -> Self {
        self.inbox = inbox;
        self
    }

    /// Loads the user or answers 404.
    async fn user(
        &self,
        id: health_actors::domain::UserId,
    ) -> Result<health_actors::domain::User, ApiError> {
        self.store
            .user(id)
            .await
            .map_err(ApiError::store)?
            .ok_or_else(|| ApiError::user_not_found(id.0))
    }
}

fn with<T: Clone + Send>(value: T) -> impl Filter<Extract = (T,), Error = Infallible> + Clone {
    warp::any().map(move || value.clone())
}

/// The authenticated, rate-limited caller of this request.
fn caller(state: ApiState) -> BoxedFilter<(Caller,)> {
    warp::header::optional::<String>("authorization")
        .and(with(state))
        .and_then(
            |authorization: Option<String>, state: ApiState| async move {
                let caller = state
                    .auth
                    .authenticate(authorization.as_deref())
                    .await
                    .map_err(warp::reject::custom)?;
                state.limits.check(&caller).map_err(warp::reject::custom)?;
                Ok::<_, Rejection>(caller)
            },
        )
        .boxed()
}

/// A JSON body of type `T`, at most [`JSON_BODY_LIMIT`] bytes, declared as JSON if declared at
/// all. Errors name the field when serde can.
fn json_body<T: DeserializeOwned + Send + 'static>() -> BoxedFilter<(T,)> {
    warp::header::optional::<String>("content-type")
        .and(warp::header::optional::<u64>("content-length"))
        .and_then(
            |content_type: Option<String>, length: Option<u64>| async move {
                if let Some(content_type) = content_type {
                    let essence = content_type
                        .split(';')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_ascii_lowercase();
                    if essence != "application/json" && !essence.ends_with("+json") {
                        return Err(warp::reject::custom(ApiError::UnsupportedMediaType(
                            "This route takes JSON: send 'Content-Type: application/json'.".into(),
                        )));
                    }
                }
                if length.is_some_and(|length| length > JSON_BODY_LIMIT) {
                    return Err(warp::reject::custom(too_large_json()));
                }
                Ok(())
            },
        )
        .untuple_one()
        .and(warp::body::content_length_limit(JSON_BODY_LIMIT))
        .and(warp::body::bytes())
        .and_then(|bytes: warp::hyper::body::Bytes| async move {
            serde_json::from_slice::<T>(&bytes).map_err(|error| {
                warp::reject::custom(ApiError::InvalidBody(describe_json_error(&error)))
            })
        })
        .boxed()
}

fn too_large_json() -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "The JSON body is larger than {} KiB.",
        JSON_BODY_LIMIT / 1024
    ))
}

/// serde's message without the line and column of a one-line body, which read as noise.
fn describe_json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.find(" at line ") {
        Some(position) => text[..position].to_owned(),
        None => text,
    }
}

/// Runs a handler with the request timeout.
async fn bounded<T>(
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(REQUEST_TIMEOUT, work)
        .await
        .unwrap_or(Err(ApiError::Timeout))
}

/// Every `/api/v1` route, CORS applied when `CORS_ORIGINS` is set.
pub fn routes(state: ApiState, cors_origins: &[String]) -> BoxedFilter<(warp::reply::Response,)> {
    let api = chat::routes(state.clone())
        .or(users::routes(state.clone()))
        .unify()
        .or(food::routes(state.clone()))
        .unify()
        .or(users::key_routes(state))
        .unify()
        .boxed();
    if cors_origins.is_empty() {
        return api;
    }
    let mut cors = warp::cors()
        .allow_methods(["GET", "POST", "PATCH", "DELETE", "OPTIONS"])
        .allow_headers(["authorization", "content-type", "idempotency-key"])
        .max_age(Duration::from_secs(600));
    cors = if cors_origins.iter().any(|origin| origin == "*") {
        cors.allow_any_origin()
    } else {
        cors.allow_origins(cors_origins.iter().map(String::as_str))
    };
    warp::path("api")
        .and(warp::path("v1"))
        .and(warp::options())
        .map(|| StatusCode::NO_CONTENT.into_response())
        .or(api)
        .unify()
        .with(cors)
        .map(Reply::into_response)
        .boxed()
}

/// Checks `CORS_ORIGINS` entries (`scheme://host[:port]` or `*`), so a typo fails at start rather
/// than at the first cross-origin request.
pub fn check_cors_origins(origins: &[String]) -> Result<(), String> {
    for origin in origins {
        if origin == "*" {
            continue;
        }
        let valid = origin.parse::<warp::http::Uri>().ok().is_some_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.authority().is_some()
                && matches!(uri.path(), "" | "/")
                && !origin.ends_with('/')
        });
        if !valid {
            return Err(format!(
                "CORS_ORIGINS entry '{origin}' is not an origin: write it as scheme://host[:port], e.g. https://app.example.com, or * for any"
            ));
        }
    }
    Ok(())
}

/// The answer for an `/api/v1` rejection, if it is one of ours or a body/CORS failure.
pub fn recover(rejection: &Rejection) -> Option<warp::reply::Response> {
    if let Some(error) = rejection.find::<ApiError>() {
        return Some(error.clone().into_response());
    }
    if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        return Some(too_large_json().into_response());
    }
    if rejection.find::<warp::reject::LengthRequired>().is_some() {
        return Some(crate::http::error_reply(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "Send the body with a Content-Length header.",
        ));
    }
    if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        return Some(
            ApiError::UnsupportedMediaType("This route does not take that content type.".into())
                .into_response(),
        );
    }
    if let Some(error) = rejection.find::<warp::cors::CorsForbidden>() {
        return Some(
            ApiError::Forbidden(format!(
                "This cross-origin request is not allowed: {error}."
            ))
            .into_response(),
        );
    }
    if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        return Some(
            ApiError::InvalidBody("The query string has a parameter that is not valid.".into())
                .into_response(),
        );
    }
    if rejection.find::<warp::reject::MissingHeader>().is_some()
        || rejection.find::<warp::reject::InvalidHeader>().is_some()
    {
        return Some(
            ApiError::InvalidBody("A request header is missing or not valid.".into())
                .into_response(),
        );
    }
    None
}

/// The route template of an `/api/v1` path, for metrics labels; `None` for other paths.
pub fn route_template(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/api/v1/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    Some(match segments.as_slice() {
        ["chat"] => "/api/v1/chat",
        ["keys"] => "/api/v1/keys",
        ["users"] => "/api/v1/users",
        ["users", _] => "/api/v1/users/{user_id}",
        ["users", _, "profile"] => "/api/v1/users/{user_id}/profile",
        ["users", _, "goals"] => "/api/v1/users/{user_id}/goals",
        ["users", _, "food-entries"] => "/api/v1/users/{user_id}/food-entries",
        ["users", _, "food-entries", "photo"] => "/api/v1/users/{user_id}/food-entries/photo",
        ["users", _, "food-entries", _] => "/api/v1/users/{user_id}/food-entries/{entry_id}",
        ["users", _, "summary", "daily"] => "/api/v1/users/{user_id}/summary/daily",
        ["users", _, "summary", "weekly"] => "/api/v1/users/{user_id}/summary/weekly",
        ["users", _, "memories"] => "/api/v1/users/{user_id}/memories",
        ["users", _, "memories", _] => "/api/v1/users/{user_id}/memories/{memory_id}",
        ["users", _, "progress"] => "/api/v1/users/{user_id}/progress",
        _ => "/api/v1/other",
    })
}

/// The methods served at a route template of [`route_template`].
pub fn allowed_methods(template: &str) -> Option<&'static str> {
    Some(match template {
        "/api/v1/chat" | "/api/v1/keys" | "/api/v1/users" => "POST",
        "/api/v1/users/{user_id}" => "GET, DELETE",
        "/api/v1/users/{user_id}/profile" | "/api/v1/users/{user_id}/goals" => "GET, PATCH",
        "/api/v1/users/{user_id}/food-entries" => "GET, POST",
        "/api/v1/users/{user_id}/food-entries/photo" => "POST",
        "/api/v1/users/{user_id}/food-entries/{entry_id}" => "PATCH, DELETE",
        "/api/v1/users/{user_id}/summary/daily"
        | "/api/v1/users/{user_id}/summary/weekly"
        | "/api/v1/users/{user_id}/memories"
        | "/api/v1/users/{user_id}/progress" => "GET",
        "/api/v1/users/{user_id}/memories/{memory_id}" => "DELETE",
        _ => return None,
    })
}

/// Helper for handlers: the JSON reply with a status.
fn json_reply<T: serde::Serialize>(status: StatusCode, body: &T) -> warp::reply::Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// Shared by the route modules: a handler's result as a response.
fn answer<R: Reply>(result: Result<R, ApiError>) -> warp::reply::Response {
    respond(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_have_templates_for_metrics() {
        assert_eq!(
            route_template("/api/v1/users/42/food-entries/abc"),
            Some("/api/v1/users/{user_id}/food-entries/{entry_id}")
        );
        assert_eq!(route_template("/api/v1/chat"), Some("/api/v1/chat"));
        assert_eq!(route_template("/api/v1/x/y/z"), Some("/api/v1/other"));
        assert_eq!(route_template("/health"), None);
    }

    #[test]
    fn cors_origins_are_checked() {
        assert!(check_cors_origins(&["https://app.example.com".into(), "*".into()]).is_ok());
        assert!(check_cors_origins(&["http://localhost:3000".into()]).is_ok());
        assert!(check_cors_origins(&["app.example.com".into()]).is_err());
        assert!(check_cors_origins(&["https://app.example.com/path".into()]).is_err());
    }
}
