//! Webhook mode: Telegram posts each update to `TELEGRAM_WEBHOOK_URL`, served by the same warp
//! server as `/health`.
//!
//! [`filter`] takes `POST <path of the webhook URL>`, checks the
//! `X-Telegram-Bot-Api-Secret-Token` header against `TELEGRAM_WEBHOOK_SECRET` (in constant
//! time), and hands the update to the [`Intake`], answering 200 only once the inbox holds it.
//! When the inbox cannot keep it (or the replay at start is not done yet) the answer is 503 and
//! Telegram posts the update again later; a post Telegram repeats is recognised by its update id.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use teloxide::types::Update;
use warp::http::StatusCode;
use warp::Filter;

use super::intake::Intake;

/// Telegram's updates are small; anything larger is not one.
const BODY_LIMIT: u64 = 1024 * 1024;

/// The receiving side of the webhook, shared by the warp filter.
pub struct WebhookIntake {
    path: String,
    secret: Option<SecretString>,
    intake: Arc<Intake>,
}

impl WebhookIntake {
    /// The intake for `url` (only its path is served here).
    pub fn new(
        url: &str,
        secret: Option<SecretString>,
        intake: Arc<Intake>,
    ) -> anyhow::Result<Self> {
        let parsed: reqwest::Url = url
            .parse()
            .map_err(|_| anyhow::anyhow!("TELEGRAM_WEBHOOK_URL '{url}' is not a URL"))?;
        Ok(Self {
            path: parsed.path().to_owned(),
            secret,
            intake,
        })
    }

    /// The path Telegram posts to.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn secret_matches(&self, given: Option<&str>) -> bool {
        match &self.secret {
            None => true,
            Some(secret) => given.is_some_and(|given| {
                constant_time_eq(secret.expose_secret().as_bytes(), given.as_bytes())
            }),
        }
    }
}

/// Compares the SHA-256 digests of both, every byte, so the time taken says nothing about
/// where they differ or how long the secret is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// `POST <webhook path>`; rejects (so other routes answer) for any other path, or when there is
/// no webhook.
pub fn filter(
    intake: Option<Arc<WebhookIntake>>,
) -> impl Filter<Extract = (warp::reply::WithStatus<&'static str>,), Error = warp::Rejection> + Clone
{
    warp::post()
        .and(warp::path::full())
        .and_then(move |path: warp::path::FullPath| {
            let intake = intake.clone();
            async move {
                match intake {
                    Some(intake) if intake.path == path.as_str() => Ok(intake),
                    _ => Err(warp::reject::not_found()),
                }
            }
        })
        .and(warp::header::optional::<String>(
            "x-telegram-bot-api-secret-token",
        ))
        .and(warp::body::content_length_limit(BODY_LIMIT))
        .and(warp::body::bytes())
        .then(
            |intake: Arc<WebhookIntake>, secret: Option<String>, body: warp::hyper::body::Bytes| async move {
                accept(&intake, secret.as_deref(), &body).await
            },
        )
}

async fn accept(
    intake: &WebhookIntake,
    secret: Option<&str>,
    body: &[u8],
) -> warp::reply::WithStatus<&'static str> {
    if !intake.secret_matches(secret) {
        metrics::counter!(super::REFUSED_UPDATES_TOTAL, "action" => "bad_webhook_secret")
            .increment(1);
        return warp::reply::with_status("wrong secret token", StatusCode::UNAUTHORIZED);
    }
    let Ok(update) = serde_json::from_slice::<Update>(body) else {
        return warp::reply::with_status("not an update", StatusCode::BAD_REQUEST);
    };
    if !intake.intake.is_ready() {
        return warp::reply::with_status("starting", StatusCode::SERVICE_UNAVAILABLE);
    }
    match intake.intake.take(vec![update]).await {
        Ok(_) => warp::reply::with_status("ok", StatusCode::OK),
        Err(error) => {
            // Not kept: Telegram posts it again later.
            tracing::warn!(%error, "could not keep a Telegram update; Telegram will retry");
            warp::reply::with_status("try again", StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_compared_exactly() {
        assert!(constant_time_eq(b"s3cret-token", b"s3cret-token"));
        assert!(!constant_time_eq(b"s3cret-token", b"s3cret-tokeN"));
        assert!(!constant_time_eq(b"s3cret-token", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret-token", b""));
    }
}
