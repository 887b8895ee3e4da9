//! [`ApiError`]: every way an `/api/v1` request can fail, mapped to an HTTP status in one place
//! ([`ApiError::status_and_code`]).
//!
//! The body is always `{"error": "snake_case_code", "message": "a sentence for a person"}`. The
//! `Display` of each variant is exactly that sentence; internal details (database errors, actor
//! failures) are logged by whoever builds an [`ApiError::Internal`] and never reach the client.

use std::time::Duration;

use health_actors::conversation::SubmitError;
use health_actors::persistence::PersistError;
use health_actors::ports::StoreError;
use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::Reply;

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, snake_case code a program can branch on.
    #[schema(example = "not_found")]
    pub error: String,
    /// A sentence for a person.
    #[schema(example = "There is no user 42.")]
    pub message: String,
}

/// The errors any `/api/v1` route may answer, all with an [`ErrorBody`].
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum CommonErrors {
    #[response(status = 400, description = "The body or query could not be read")]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "No key, or not a valid key")]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "The key may not act on this user, or this needs an admin key"
    )]
    Forbidden(ErrorBody),
    #[response(status = 404, description = "No such user or record")]
    NotFound(ErrorBody),
    #[response(
        status = 409,
        description = "Already exists, an Idempotency-Key reused with another message, or the user's conversation is busy"
    )]
    Conflict(ErrorBody),
    #[response(status = 411, description = "The body has no Content-Length")]
    LengthRequired(ErrorBody),
    #[response(
        status = 413,
        description = "The body is too large (JSON 64 KiB, photo 10 MiB)"
    )]
    PayloadTooLarge(ErrorBody),
    #[response(
        status = 415,
        description = "Wrong content type, or a photo that is not JPEG, PNG or WebP"
    )]
    UnsupportedMediaType(ErrorBody),
    #[response(
        status = 422,
        description = "A field is missing or not valid; the message names it"
    )]
    InvalidField(ErrorBody),
    #[response(
        status = 429,
        description = "The key's rate limit is used up",
        headers(("Retry-After" = u64, description = "Seconds to wait"))
    )]
    RateLimited(ErrorBody),
    #[response(status = 500, description = "A failure on the server's side")]
    Internal(ErrorBody),
    #[response(
        status = 503,
        description = "No API_KEYS configured, the database or the assistant is unavailable, or photo analysis has no vision model or no answer from one"
    )]
    Unavailable(ErrorBody),
    #[response(status = 504, description = "The request took too long")]
    Timeout(ErrorBody),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("The API is switched off because no key is configured: set API_KEYS to one or more comma-separated keys and restart.")]
    NotConfigured,
    #[error("This request needs an API key, sent as 'Authorization: Bearer <key>'.")]
    MissingKey,
    #[error("This API key is not valid.")]
    InvalidKey,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// A request field is missing or has a value that cannot be used; the message names it.
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    /// The body is not the JSON (or form) this route expects.
    #[error("The request body could not be read: {0}")]
    InvalidBody(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("Too many requests with this key; try again in {} s.", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("{0}")]
    Unavailable(String),
    #[error("The request took too long and was stopped. Please try again.")]
    Timeout,
    #[error("Something went wrong on our side. Please try again; if it keeps failing, tell the operator.")]
    Internal,
}

impl ApiError {
    /// The one place where errors become HTTP statuses and codes.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotConfigured => (StatusCode::SERVICE_UNAVAILABLE, "api_not_configured"),
            Self::MissingKey => (StatusCode::UNAUTHORIZED, "missing_api_key"),
            Self::InvalidKey => (StatusCode::UNAUTHORIZED, "invalid_api_key"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::InvalidField { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            Self::InvalidBody(_) => (StatusCode::BAD_REQUEST, "invalid_body"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn user_not_found(user: i64) -> Self {
        Self::NotFound(format!(
            "There is no user {user}. Create it with POST /api/v1/users."
        ))
    }

    /// A store failure: logged here with its details, answered without them.
    pub fn store(error: StoreError) -> Self {
        tracing::error!(%error, "the store failed during an API request");
        if error.is_transient() {
            Self::Unavailable(
                "The database is unavailable right now. Please try again shortly.".into(),
            )
        } else {
            Self::Internal
        }
    }

    /// A write through the persistence actor that did not commit.
    pub fn persist(error: PersistError) -> Self {
        tracing::error!(%error, "a write failed during an API request");
        match error {
            PersistError::Overloaded | PersistError::ShuttingDown => {
                Self::Unavailable(format!("Nothing was saved: {error}."))
            }
            _ => Self::Internal,
        }
    }

    /// The conversation supervisor did not take or finish a message.
    pub fn submit(error: SubmitError) -> Self {
        tracing::warn!(%error, "a chat message could not be handled");
        match error {
            SubmitError::TimedOut => Self::Timeout,
            _ => Self::Unavailable(
                "The assistant cannot take messages right now. Please try again shortly.".into(),
            ),
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.status_and_code().1.to_owned(),
            message: self.to_string(),
        }
    }
}

impl warp::reject::Reject for ApiError {}

impl Reply for ApiError {
    fn into_response(self) -> warp::reply::Response {
        let (status, _) = self.status_and_code();
        let mut response =
            warp::reply::with_status(warp::reply::json(&self.body()), status).into_response();
        if let Self::RateLimited { retry_after } = &self {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(value) = warp::http::HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}

/// The answer of a handler: its reply, or the error's.
pub fn respond<R: Reply>(result: Result<R, ApiError>) -> warp::reply::Response {
    match result {
        Ok(reply) => reply.into_response(),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_status_a_code_and_a_sentence() {
        let error = ApiError::field("message", "must not be empty");
        assert_eq!(
            error.status_and_code(),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
        );
        assert_eq!(error.to_string(), "message: must not be empty");
        let limited = ApiError::RateLimited {
            retry_after: Duration::from_millis(1500),
        };
        let response = limited.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "2");
        assert!(ApiError::NotConfigured.to_string().contains("API_KEYS"));
    }
}
