//! The Telegram edge: the bot people talk to.
//!
//! [`TelegramBot::build`] makes the bot (pointed at `TELEGRAM_API_URL`, wrapped in teloxide's
//! `Throttle`), [`TelegramBot::start`] registers the command menu and starts a teloxide
//! `Dispatcher` over the handler tree of [`handlers::schema`] (long polling by default; with
//! `TELEGRAM_WEBHOOK_URL`, a webhook served by the application's warp server, see [`webhook`]),
//! and [`RunningBot::stop`] stops taking updates (the application does this before it stops the
//! actors, so that every update taken is handled).
//!
//! Per update: the whitelist first (a stranger gets one refusal an hour and nothing about them
//! is stored or reaches the core), then the update becomes an [`health_actors::inbound::Inbound`]
//! whose id is a UUIDv5 of the bot id and the update id (a redelivered update keeps its id) and
//! goes to the conversation supervisor; answers come back through [`outbox::TelegramOutbox`].
//! The bot token never appears in logs: every error text passes through [`Redactor`].

pub mod handlers;
pub mod outbox;
pub mod photos;
pub mod webhook;
pub mod whitelist;

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use health_actors::conversation::ConversationsHandle;
use metrics::{describe_counter, Unit};
use secrecy::ExposeSecret;
use teloxide::adaptors::throttle::{Limits, Settings as ThrottleSettings};
use teloxide::adaptors::Throttle;
use teloxide::dispatching::{Dispatcher, ShutdownToken};
use teloxide::error_handlers::ErrorHandler;
use teloxide::prelude::*;
use teloxide::types::BotCommand;
use teloxide::update_listeners::Polling;
use tokio::task::JoinHandle;

use crate::config::TelegramSettings;
use handlers::Edge;
use outbox::TelegramOutbox;
use webhook::{WebhookIntake, WebhookListener};
use whitelist::Whitelist;

/// Updates refused, by `action`: from ids outside `ALLOWED_TELEGRAM_IDS` (`refused`: told once;
/// `ignored`: told within the hour already), or webhook posts with a wrong secret
/// (`bad_webhook_secret`).
pub const REFUSED_UPDATES_TOTAL: &str = "telegram_refused_updates_total";
/// Telegram calls that failed, by `method` and `error` kind.
pub const SEND_FAILURES_TOTAL: &str = "telegram_send_failures_total";
/// Updates handed to the conversations, by `kind`.
pub const UPDATES_TOTAL: &str = "telegram_updates_total";
/// Pictures and files refused, by `reason`.
pub const PHOTOS_REJECTED_TOTAL: &str = "telegram_photos_rejected_total";

/// Bound on one call to the Bot API, including throttle waits after a 429.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `getUpdates` waits on the server for something to arrive.
const POLL_TIMEOUT: Duration = Duration::from_secs(25);
/// How long stopping may take before the polling task is abandoned.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The command menu registered with Telegram at start.
pub const COMMANDS: &[(&str, &str)] = &[
    ("start", "Welcome and how I work"),
    ("help", "What I can do"),
    ("today", "Today's food and totals"),
    ("week", "This week's calories as a chart"),
    ("goal", "Show or set your daily goals"),
    ("weight", "Log or show your weight"),
    ("undo", "Remove the last food entry"),
    ("export", "All your entries as a CSV file"),
    ("settings", "Time zone and units"),
    ("memory", "What I remember about you"),
    ("forget_me", "Delete everything about you"),
];

fn describe_metrics() {
    describe_counter!(
        REFUSED_UPDATES_TOTAL,
        Unit::Count,
        "Updates refused: from ids outside the whitelist (action refused or ignored), or webhook posts with a wrong secret (bad_webhook_secret)"
    );
    describe_counter!(
        SEND_FAILURES_TOTAL,
        Unit::Count,
        "Telegram calls that failed, by method and error kind"
    );
    describe_counter!(
        UPDATES_TOTAL,
        Unit::Count,
        "Telegram updates handed to the conversations, by kind"
    );
    describe_counter!(
        PHOTOS_REJECTED_TOTAL,
        Unit::Count,
        "Pictures and files people sent that were refused, by reason"
    );
}

/// Removes the bot token (and its secret half on its own) from a text, such as an error that
/// quotes a request URL.
#[derive(Clone)]
pub struct Redactor {
    token: Arc<str>,
}

impl Redactor {
    pub fn new(token: &str) -> Self {
        Self {
            token: Arc::from(token),
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut text = text.replace(&*self.token, "<bot-token>");
        if let Some((_, secret)) = self.token.split_once(':') {
            if secret.len() >= 8 {
                text = text.replace(secret, "<hidden>");
            }
        }
        text
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(<bot-token>)")
    }
}

/// Logs errors of the update listener (network trouble while polling) without the token.
struct RedactingErrorHandler {
    redactor: Redactor,
}

impl<E: std::fmt::Display + Send + 'static> ErrorHandler<E> for RedactingErrorHandler {
    fn handle_error(self: Arc<Self>, error: E) -> BoxFuture<'static, ()> {
        let text = self.redactor.redact(&error.to_string());
        Box::pin(async move {
            metrics::counter!(SEND_FAILURES_TOTAL, "method" => "getUpdates", "error" => "unavailable")
                .increment(1);
            tracing::warn!(error = %text, "could not get updates from Telegram; retrying");
        })
    }
}

/// The bot, built and not yet taking updates.
pub struct TelegramBot {
    bot: Throttle<Bot>,
    edge: Arc<Edge>,
    redactor: Redactor,
    /// Set in webhook mode (`TELEGRAM_WEBHOOK_URL`); long polling otherwise.
    webhook: Option<Webhook>,
}

struct Webhook {
    url: reqwest::Url,
    secret: Option<String>,
    intake: Arc<WebhookIntake>,
    listener: WebhookListener,
}

impl TelegramBot {
    /// Builds the bot for `settings`; pictures go under `<data_dir>/photos`. No network yet.
    pub fn build(
        settings: &TelegramSettings,
        data_dir: &Path,
        conversations: ConversationsHandle,
    ) -> anyhow::Result<Self> {
        describe_metrics();
        let token = settings.token.expose_secret();
        let redactor = Redactor::new(token);
        let api_url: reqwest::Url = settings.api_url.parse().with_context(|| {
            format!(
                "TELEGRAM_API_URL '{}' is not a URL",
                redactor.redact(&settings.api_url)
            )
        })?;
        let bot_id: i64 = token
            .split_once(':')
            .and_then(|(id, _)| id.parse().ok())
            .context("TELEGRAM_BOT_TOKEN does not start with the bot's numeric id")?;
        let raw = Bot::new(token).set_api_url(api_url);
        let bot = Throttle::spawn_with_settings(
            raw.clone(),
            ThrottleSettings::default().limits(Limits::default()),
        );
        let outbox = Arc::new(TelegramOutbox::new(
            bot.clone(),
            redactor.clone(),
            CALL_TIMEOUT,
        ));
        let edge = Arc::new(Edge {
            conversations,
            outbox,
            whitelist: Whitelist::new(settings.allowed_ids.iter().copied()),
            bot_id,
            photos_dir: data_dir.join("photos"),
            markdown_dir: data_dir.join("data"),
            files: raw,
            redactor: redactor.clone(),
        });
        let webhook = match &settings.webhook_url {
            Some(url) => {
                let (intake, listener) = WebhookIntake::new(url, settings.webhook_secret.clone())?;
                Some(Webhook {
                    url: url
                        .parse()
                        .with_context(|| format!("TELEGRAM_WEBHOOK_URL '{url}' is not a URL"))?,
                    secret: settings
                        .webhook_secret
                        .as_ref()
                        .map(|secret| secret.expose_secret().to_owned()),
                    intake: Arc::new(intake),
                    listener,
                })
            }
            None => None,
        };
        Ok(Self {
            bot,
            edge,
            redactor,
            webhook,
        })
    }

    /// In webhook mode, what the HTTP server must route to the bot.
    pub fn webhook_intake(&self) -> Option<Arc<WebhookIntake>> {
        self.webhook.as_ref().map(|webhook| webhook.intake.clone())
    }

    /// Registers the command menu (a failure is a warning), leaves webhook mode if Telegram
    /// had it on, and starts polling. Fails when the token is refused or the Bot API cannot be
    /// reached at all (`getMe`).
    pub async fn start(self) -> anyhow::Result<RunningBot> {
        let Self {
            bot,
            edge,
            redactor,
            webhook,
        } = self;
        let me = tokio::time::timeout(CALL_TIMEOUT, bot.get_me().send())
            .await
            .map_err(|_| anyhow::anyhow!("the Telegram Bot API did not answer getMe in time"))?
            .map_err(|error| {
                anyhow::anyhow!(
                    "the Telegram Bot API refused the bot (getMe): {}; check TELEGRAM_BOT_TOKEN and TELEGRAM_API_URL",
                    redactor.redact(&error.to_string())
                )
            })?;
        register_commands(&bot, &redactor).await;

        let mut dispatcher = Dispatcher::builder(bot.clone(), handlers::schema())
            .dependencies(dptree::deps![edge])
            .default_handler(|_update| Box::pin(async {}))
            .build();
        let shutdown = dispatcher.shutdown_token();
        let errors = Arc::new(RedactingErrorHandler {
            redactor: redactor.clone(),
        });
        let bot_name = me.user.username.clone().unwrap_or_default();
        let task = match webhook {
            Some(webhook) => {
                let mut request = bot.set_webhook(webhook.url.clone());
                if let Some(secret) = webhook.secret {
                    request = request.secret_token(secret);
                }
                tokio::time::timeout(CALL_TIMEOUT, request.send())
                    .await
                    .map_err(|_| anyhow::anyhow!("Telegram did not answer setWebhook in time"))?
                    .map_err(|error| {
                        anyhow::anyhow!(
                            "Telegram refused the webhook {}: {}",
                            webhook.url,
                            redactor.redact(&error.to_string())
                        )
                    })?;
                tracing::info!(bot = %bot_name, path = webhook.intake.path(), "the Telegram bot takes updates through its webhook");
                let listener = webhook.listener;
                tokio::spawn(async move {
                    if let Err(error) = dispatcher
                        .try_dispatch_with_listener(listener, errors)
                        .await
                    {
                        tracing::error!(error = %redactor.redact(&error.to_string()), "the Telegram dispatcher stopped");
                    }
                })
            }
            None => {
                leave_webhook_mode(&bot, &redactor).await;
                let listener = Polling::builder(bot).timeout(POLL_TIMEOUT).build();
                tracing::info!(bot = %bot_name, "the Telegram bot is polling for updates");
                tokio::spawn(async move {
                    if let Err(error) = dispatcher
                        .try_dispatch_with_listener(listener, errors)
                        .await
                    {
                        tracing::error!(error = %redactor.redact(&error.to_string()), "the Telegram dispatcher stopped");
                    }
                })
            }
        };
        Ok(RunningBot { shutdown, task })
    }
}

async fn register_commands(bot: &Throttle<Bot>, redactor: &Redactor) {
    let commands: Vec<BotCommand> = COMMANDS
        .iter()
        .map(|(name, description)| BotCommand::new(*name, *description))
        .collect();
    match tokio::time::timeout(CALL_TIMEOUT, bot.set_my_commands(commands).send()).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(
            error = %redactor.redact(&error.to_string()),
            "could not register the command menu with Telegram; commands still work when typed"
        ),
        Err(_) => tracing::warn!(
            "registering the command menu with Telegram timed out; commands still work when typed"
        ),
    }
}

/// Long polling and a webhook exclude each other: drop a webhook left from an earlier run.
async fn leave_webhook_mode(bot: &Throttle<Bot>, redactor: &Redactor) {
    let info = match tokio::time::timeout(CALL_TIMEOUT, bot.get_webhook_info().send()).await {
        Ok(Ok(info)) => info,
        Ok(Err(error)) => {
            tracing::warn!(error = %redactor.redact(&error.to_string()), "could not ask Telegram whether a webhook is set");
            return;
        }
        Err(_) => return,
    };
    if info.url.is_none() {
        return;
    }
    match tokio::time::timeout(CALL_TIMEOUT, bot.delete_webhook().send()).await {
        Ok(Ok(_)) => tracing::info!("removed the webhook left from an earlier run"),
        Ok(Err(error)) => tracing::warn!(
            error = %redactor.redact(&error.to_string()),
            "could not remove the webhook; polling may get no updates"
        ),
        Err(_) => tracing::warn!("removing the webhook timed out; polling may get no updates"),
    }
}

/// The bot while it polls.
pub struct RunningBot {
    shutdown: ShutdownToken,
    task: JoinHandle<()>,
}

impl RunningBot {
    /// Stops taking updates and waits (bounded) for the handlers in flight; their messages are
    /// already with the conversations, which the application drains next.
    pub async fn stop(self) {
        let Self { shutdown, mut task } = self;
        match shutdown.shutdown() {
            Ok(stopping) => {
                if tokio::time::timeout(STOP_DEADLINE, stopping).await.is_err() {
                    tracing::warn!("the Telegram dispatcher did not stop in time");
                }
            }
            Err(_idle) => {}
        }
        if tokio::time::timeout(STOP_DEADLINE, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
        tracing::info!("the Telegram bot stopped taking updates");
    }
}

/// The handler error type: handlers deal with every failure themselves (logged, counted, and
/// the person told when it concerns them), so none reaches the dispatcher.
pub type HandlerError = Infallible;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_and_its_secret_half_are_redacted() {
        let token = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789";
        let redactor = Redactor::new(token);
        let error = format!("error sending request for url (http://127.0.0.1:1/bot{token}/getMe)");
        let redacted = redactor.redact(&error);
        assert!(!redacted.contains("ABCdefGHI"), "{redacted}");
        assert!(redacted.contains("/bot<bot-token>/getMe"), "{redacted}");
        assert_eq!(
            redactor.redact("secret ABCdefGHIjklMNOpqrSTUvwxYZ0123456789 alone"),
            "secret <hidden> alone"
        );
        assert_eq!(format!("{redactor:?}"), "Redactor(<bot-token>)");
    }

    #[test]
    fn the_menu_has_every_command_of_the_spec() {
        let names: Vec<&str> = COMMANDS.iter().map(|(name, _)| *name).collect();
        for name in [
            "start",
            "help",
            "today",
            "week",
            "goal",
            "weight",
            "undo",
            "export",
            "settings",
            "memory",
            "forget_me",
        ] {
            assert!(names.contains(&name), "{name}");
        }
    }
}
