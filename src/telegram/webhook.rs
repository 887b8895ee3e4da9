//! Webhook mode: Telegram posts each update to `TELEGRAM_WEBHOOK_URL`, served by the same warp
//! server as `/health`.
//!
//! [`filter`] takes `POST <path of the webhook URL>`, checks the
//! `X-Telegram-Bot-Api-Secret-Token` header against `TELEGRAM_WEBHOOK_SECRET` (in constant
//! time), and hands the update to [`WebhookListener`], the dispatcher's update listener, through
//! a bounded channel. The handler tree is the same as with long polling.

use std::convert::Infallible;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use teloxide::stop::{mk_stop_token, StopFlag, StopToken};
use teloxide::types::Update;
use teloxide::update_listeners::{AsUpdateStream, UpdateListener};
use tokio::sync::{mpsc, Mutex};
use warp::http::StatusCode;
use warp::Filter;

/// Updates accepted and not yet taken by the dispatcher before Telegram is asked to retry.
const QUEUE: usize = 1024;
/// Telegram's updates are small; anything larger is not one.
const BODY_LIMIT: u64 = 1024 * 1024;

/// The receiving side of the webhook, shared by the warp filter.
pub struct WebhookIntake {
    path: String,
    secret: Option<SecretString>,
    sender: mpsc::Sender<Update>,
}

impl WebhookIntake {
    /// The intake for `url` (only its path is served here) and the listener it feeds.
    pub fn new(url: &str, secret: Option<SecretString>) -> anyhow::Result<(Self, WebhookListener)> {
        let parsed: reqwest::Url = url
            .parse()
            .map_err(|_| anyhow::anyhow!("TELEGRAM_WEBHOOK_URL '{url}' is not a URL"))?;
        let (sender, receiver) = mpsc::channel(QUEUE);
        let (token, flag) = mk_stop_token();
        Ok((
            Self {
                path: parsed.path().to_owned(),
                secret,
                sender,
            },
            WebhookListener {
                receiver: Arc::new(Mutex::new(receiver)),
                token,
                flag: Some(flag),
            },
        ))
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    match intake.sender.try_send(update) {
        Ok(()) => warp::reply::with_status("ok", StatusCode::OK),
        // Telegram retries a webhook that fails; nothing is lost.
        Err(_) => warp::reply::with_status("busy", StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// The dispatcher's update listener in webhook mode: updates from [`filter`] until stopped.
pub struct WebhookListener {
    receiver: Arc<Mutex<mpsc::Receiver<Update>>>,
    token: StopToken,
    flag: Option<StopFlag>,
}

impl<'a> AsUpdateStream<'a> for WebhookListener {
    type StreamErr = Infallible;
    type Stream = BoxStream<'a, Result<Update, Infallible>>;

    fn as_stream(&'a mut self) -> Self::Stream {
        let receiver = self.receiver.clone();
        let updates = futures::stream::unfold(receiver, |receiver| async move {
            let update = receiver.lock().await.recv().await?;
            Some((Ok(update), receiver))
        });
        match self.flag.take() {
            Some(flag) => updates.take_until(flag).boxed(),
            None => futures::stream::empty().boxed(),
        }
    }
}

impl UpdateListener for WebhookListener {
    type Err = Infallible;

    fn stop_token(&mut self) -> StopToken {
        self.token.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_compared_exactly() {
        let (intake, _listener) = WebhookIntake::new(
            "https://bot.example.org/telegram/hook",
            Some(SecretString::from("s3cret-token")),
        )
        .unwrap();
        assert_eq!(intake.path(), "/telegram/hook");
        assert!(intake.secret_matches(Some("s3cret-token")));
        assert!(!intake.secret_matches(Some("s3cret-tokeN")));
        assert!(!intake.secret_matches(Some("s3cret")));
        assert!(!intake.secret_matches(None));
    }
}
