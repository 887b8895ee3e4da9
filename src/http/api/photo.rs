//! `POST /api/v1/users/{user_id}/food-entries/photo`: a meal from a photo, through the same vision
//! pipeline as a photo sent on Telegram.
//!
//! The upload is `multipart/form-data` with a `photo` (JPEG, PNG or WebP, recognised by its first
//! bytes) and an optional `caption`. Every configured vision agent looks at it at once
//! ([`VisionHandle::estimate`]); their consensus is saved as a food entry, with the photo kept as
//! `<DATA_DIR>/photos/<user>/<entry id>.<ext>` (the layout of the Telegram edge), and the answer
//! shows each agent's status and how much they agreed. Nothing is saved when no agent saw food
//! (422) or none answered (503), or when no vision model is configured (503).

use chrono::Utc;
use futures::TryStreamExt;
use health_actors::ports::Write;
use health_actors::vision::{AgentReport, Photo, PhotoEstimate};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Buf, Filter};

use super::body::{FoodEntryBody, PhotoAgentBody, PhotoFoodEntry};
use super::checks::check_text;
use super::{answer, caller, json_reply, with, ApiError, ApiState, Caller, PHOTO_BODY_LIMIT};
use crate::assistant::consensus_entry;
use crate::telegram::photos::{self, ImageFormat};

const CAPTION_MAX_CHARS: usize = 1_000;

pub(super) fn route(state: ApiState) -> BoxedFilter<(warp::reply::Response,)> {
    warp::path!("api" / "v1" / "users" / i64 / "food-entries" / "photo")
        .and(warp::post())
        .and(caller(state.clone()))
        .and(photo_form())
        .and(with(state))
        .then(|user, caller, form, state: ApiState| async move {
            let bound = state.photo_timeout;
            let result = tokio::time::timeout(bound, photo(user, caller, form, state))
                .await
                .unwrap_or(Err(ApiError::Timeout));
            answer(result)
        })
        .boxed()
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
                if caption.contains('\0') {
                    return Err(ApiError::field(
                        "caption",
                        "contains a NUL character, which cannot be stored",
                    ));
                }
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

/// What the answer says when no agent could look at the photo.
pub const ANALYSIS_UNAVAILABLE: &str = "Photo analysis is unavailable right now, describe it instead: nothing was saved. POST /api/v1/users/{user_id}/food-entries takes the meal as text.";

#[utoipa::path(
    post,
    path = "/api/v1/users/{user_id}/food-entries/photo",
    tag = "food",
    summary = "Log a meal from a photo (multipart/form-data: photo, caption)",
    description = "Every configured vision model looks at the photo at once; their consensus is saved as a food entry and the answer shows each model's status and how much they agreed. The photo must be a JPEG, PNG or WebP image by its first bytes (415 otherwise) and the upload at most 10 MiB (413). Nothing is saved when no model saw food (422), when none answered (503), or when no vision model is configured (VISION_MODELS; 503).",
    params(("user_id" = i64, Path, minimum = -9007199254740991_i64, maximum = 9007199254740991_i64, description = "The person's id")),
    request_body(content = super::body::PhotoUpload, content_type = "multipart/form-data"),
    responses((status = 201, description = "Saved: the entry, each vision model's status and the agreement", body = PhotoFoodEntry), super::error::CommonErrors)
)]
pub(super) async fn photo(
    user: i64,
    caller: Caller,
    form: PhotoForm,
    state: ApiState,
) -> Result<warp::reply::Response, ApiError> {
    let user = state.user(caller.may_act_on(user)?).await?;
    let bytes = form
        .photo
        .filter(|photo| !photo.is_empty())
        .ok_or_else(|| {
            ApiError::field("photo", "is missing: attach the image as the 'photo' field")
        })?;
    let Some(format) = ImageFormat::sniff(&bytes) else {
        return Err(ApiError::UnsupportedMediaType(
            "The photo must be a JPEG, PNG or WebP image.".into(),
        ));
    };
    tracing::info!(user_id = %user.id, bytes = bytes.len(), has_caption = form.caption.is_some(), "photo received through the API");
    let Some(vision) = state.vision.as_ref().filter(|vision| vision.agents() > 0) else {
        return Err(ApiError::Unavailable(
            "Photo analysis needs a vision model, and none is configured (VISION_MODELS): nothing was saved. Log the meal as text instead (POST /api/v1/users/{user_id}/food-entries)."
                .into(),
        ));
    };
    let photo = Photo::sniff(bytes.clone()).ok_or_else(|| {
        ApiError::UnsupportedMediaType("The photo must be a JPEG, PNG or WebP image.".into())
    })?;
    let estimate = vision
        .estimate(photo, form.caption.clone())
        .await
        .map_err(|error| {
            tracing::warn!(user_id = %user.id, %error, "photo analysis failed");
            ApiError::Unavailable(ANALYSIS_UNAVAILABLE.into())
        })?;
    let (consensus, agents) = match estimate {
        PhotoEstimate::Food { consensus, agents } if !consensus.is_empty() => (consensus, agents),
        PhotoEstimate::Food { .. } | PhotoEstimate::NoFood { .. } => {
            return Err(ApiError::field(
                "photo",
                "none of the photo readers saw food in it, so nothing was saved. If there is food, describe it as text (POST /api/v1/users/{user_id}/food-entries)",
            ))
        }
        PhotoEstimate::Unavailable { agents } => {
            tracing::warn!(user_id = %user.id, agents = agents.len(), "no vision agent answered");
            return Err(ApiError::Unavailable(ANALYSIS_UNAVAILABLE.into()));
        }
    };

    let id = Uuid::now_v7();
    let path = photos::store(&state.photos_dir, user.id.0, id, format, &bytes)
        .await
        .map_err(|error| {
            tracing::error!(user_id = %user.id, %error, "could not store an uploaded photo");
            ApiError::Internal
        })?;
    let entry = consensus_entry(
        &user,
        id,
        &consensus,
        form.caption,
        Some(path.display().to_string()),
        Utc::now(),
    );
    if let Err(error) = state
        .persistence
        .write(vec![Write::InsertFoodEntry(entry.clone())])
        .await
    {
        // The entry is not saved, so neither is its photo.
        if let Err(error) = tokio::fs::remove_file(&path).await {
            tracing::warn!(user_id = %user.id, %error, "could not remove the photo of an entry that was not saved");
        }
        return Err(ApiError::persist(error));
    }
    Ok(json_reply(
        StatusCode::CREATED,
        &PhotoFoodEntry {
            entry: FoodEntryBody::from(&entry),
            agents: agents.iter().map(agent_body).collect(),
            agreement: (consensus.agreement * 1000.0).round() / 1000.0,
            confidence: consensus.confidence.as_str().to_owned(),
            kcal_low: consensus.interval_kcal.0.round(),
            kcal_high: consensus.interval_kcal.1.round(),
        },
    ))
}

fn agent_body(report: &AgentReport) -> PhotoAgentBody {
    PhotoAgentBody {
        agent: report.agent.clone(),
        status: report.status.to_owned(),
        total_kcal: report.total_kcal.map(|kcal| kcal.round()),
        seconds: (report.seconds * 100.0).round() / 100.0,
    }
}
