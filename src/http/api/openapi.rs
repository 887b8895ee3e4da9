//! `GET /openapi.json`: the OpenAPI 3.1 document of `/api/v1`, generated from the handlers'
//! annotations and the body types, so that it describes what the server does.
//!
//! This module reads the handlers; none of them reads it (the errors they declare,
//! [`CommonErrors`](super::error::CommonErrors), are [`super::error`]'s).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use super::body;
use super::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    paths(
        super::chat::chat,
        super::users::create_user,
        super::users::get_user,
        super::users::delete_user,
        super::users::get_profile,
        super::users::patch_profile,
        super::users::get_goals,
        super::users::patch_goals,
        super::users::list_memories,
        super::users::delete_memory,
        super::users::create_key,
        super::users::progress,
        super::food::list,
        super::food::create,
        super::photo::photo,
        super::food::correct,
        super::food::delete,
        super::food::daily,
        super::food::weekly,
    ),
    info(
        title = "health-agent API",
        description = "The health-agent assistant over JSON. Every route needs 'Authorization: Bearer <key>': an admin key from API_KEYS, or a per-user key from POST /api/v1/keys (which acts only on its own user). Errors are {\"error\": code, \"message\": sentence}.",
    ),
    components(schemas(
        ErrorBody,
        body::NutrientsBody,
        body::GoalsBody,
        body::ProfileBody,
        body::UserBody,
        body::CreateUserBody,
        body::FoodItemBody,
        body::FoodEntryBody,
        body::FoodEntryPage,
        body::CreateFoodEntryBody,
        body::CreatedFoodEntry,
        body::LeftOutBody,
        body::ItemCorrection,
        body::CorrectFoodEntryBody,
        body::DailySummary,
        body::RemainingBody,
        body::WeeklySummary,
        body::MemoryBody,
        body::MemoryPage,
        body::ChatRequest,
        body::ChatButton,
        body::ChatReply,
        body::ChatSaved,
        body::ChatResponse,
        body::CreateKeyBody,
        body::CreatedKey,
        body::ProfilePatch,
        body::PhotoUpload,
        body::PhotoAgentBody,
        body::PhotoFoodEntry,
        body::XpEventBody,
        body::StreakBody,
        body::AchievementBody,
        body::ProgressBody,
    )),
    modifiers(&BearerScheme, &PhotoEncoding, &IdempotencyKeyShape),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// States the media types a photo part may have (the macros cannot write `encoding`).
struct PhotoEncoding;

impl Modify for PhotoEncoding {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let operation = openapi
            .paths
            .paths
            .get_mut("/api/v1/users/{user_id}/food-entries/photo")
            .and_then(|item| item.post.as_mut());
        let Some(body) = operation.and_then(|operation| operation.request_body.as_mut()) else {
            return;
        };
        if let Some(content) = body.content.get_mut("multipart/form-data") {
            content.encoding.insert(
                "photo".into(),
                utoipa::openapi::encoding::EncodingBuilder::new()
                    .content_type(Some("image/jpeg, image/png, image/webp"))
                    .build(),
            );
        }
    }
}

/// The shape `POST /api/v1/chat` checks an `Idempotency-Key` against (1 to 255 visible ASCII
/// characters, 422 otherwise), stated here because the chat route's annotation gives only the
/// parameter's description.
struct IdempotencyKeyShape;

impl Modify for IdempotencyKeyShape {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::Type;
        let parameters = openapi
            .paths
            .paths
            .get_mut("/api/v1/chat")
            .and_then(|item| item.post.as_mut())
            .and_then(|operation| operation.parameters.as_mut());
        for parameter in parameters.into_iter().flatten() {
            if parameter.name.eq_ignore_ascii_case("idempotency-key") {
                parameter.schema = Some(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(255))
                        .pattern(Some("^[!-~]+$"))
                        .into(),
                );
            }
        }
    }
}

/// The document, built once per call (it is small and rarely fetched).
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub fn route() -> BoxedFilter<(warp::reply::Response,)> {
    warp::path!("openapi.json")
        .and(warp::get())
        .map(|| warp::reply::json(&document()).into_response())
        .boxed()
}
