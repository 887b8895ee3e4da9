//! The Telegram edge: the bot people talk to.
//!
//! [`TelegramBot::build`] makes the bot (pointed at `TELEGRAM_API_URL`, wrapped in teloxide's
//! `Throttle`), [`TelegramBot::start`] registers the command menu, hands over what the inbox
//! kept from before a restart, and starts taking updates through the durable [`intake`] (long
//! polling by default; with `TELEGRAM_WEBHOOK_URL`, a webhook served by the application's warp
//! server, see [`webhook`]). [`RunningBot::stop`] stops taking updates (the application does
//! this before it stops the actors).
//!
//! Per update: the handler tree of [`handlers::schema`] applies the whitelist first (a stranger
//! gets one refusal an hour and nothing about them is stored or reaches the core), then makes
//! the update an [`health_actors::inbound::Inbound`] whose id is a UUIDv5 of the bot id and the
//! update id (a redelivered update keeps its id). The batch is kept in the inbox before it is
//! acknowledged to Telegram, then goes to the conversation supervisor; answers come back
//! through [`outbox::TelegramOutbox`]. The bot token never appears in logs: every error text
//! passes through [`Redactor`].

pub mod handlers;
pub mod intake;
pub mod outbox;
pub mod photos;
pub mod webhook;
pub mod whitelist;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use health_actors::conversation::ConversationsHandle;
use health_actors::inbox::Inbox;
use metrics::{describe_counter, Unit};
use secrecy::ExposeSecret;
use teloxide::adaptors::throttle::{Limits, Settings as ThrottleSettings};
use teloxide::adaptors::Throttle;
use teloxide::prelude::*;
use teloxide::types::BotCommand;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::TelegramSettings;
use handlers::Edge;
use intake::Intake;
use outbox::TelegramOutbox;
use webhook::WebhookIntake;
use whitelist::Whitelist;

/// Updates refused, by `action`: from ids outside `ALLOWED_TELEGRAM_IDS` (`refused`: told once;
/// `ignored`: told within the hour already), or webhook posts with a wrong secret
/// (`bad_webhook_secret`).
pub const REFUSED_UPDATES_TOTAL: &str = "telegram_refused_updates_total";
/// Telegram calls that failed, by `method` and `error` kind.
pub const SEND_FAILURES_TOTAL: &str = "telegram_send_failures_total";
/// Messages Telegram accepted from the bot (new messages and edits), by `method`.
pub const MESSAGES_SENT_TOTAL: &str = "telegram_messages_sent_total";
/// Updates handed to the conversations, by `kind`.
pub const UPDATES_TOTAL: &str = "telegram_updates_total";
/// Pictures and files refused, by `reason`.
pub const PHOTOS_REJECTED_TOTAL: &str = "telegram_photos_rejected_total";

/// Bound on one call to the Bot API, including throttle waits after a 429.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `getUpdates` waits on the server for something to arrive. An empty answer after
/// this wait is the normal case of a quiet bot, not a failure.
const POLL_TIMEOUT: Duration = Duration::from_secs(25);
/// Beyond the poll's own wait, how long the HTTP client gives Telegram to answer. The client's
/// timeout must be longer than the poll's: with teloxide's default (17 s) every quiet 25 s poll
/// was cut off as a failure, and the pause after failures grew to 30 s while nobody wrote.
const POLL_MARGIN: Duration = Duration::from_secs(10);
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
        MESSAGES_SENT_TOTAL,
        Unit::Count,
        "Messages Telegram accepted from the bot (new messages and edits), by method"
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

/// The bot, built and not yet taking updates.
pub struct TelegramBot {
    bot: Throttle<Bot>,
    /// Without the throttle, for `getUpdates`.
    raw: Bot,
    intake: Arc<Intake>,
    redactor: Redactor,
    /// Set in webhook mode (`TELEGRAM_WEBHOOK_URL`); long polling otherwise.
    webhook: Option<Webhook>,
}

struct Webhook {
    url: reqwest::Url,
    secret: Option<String>,
    intake: Arc<WebhookIntake>,
}

impl TelegramBot {
    /// Builds the bot for `settings`; pictures go under `<data_dir>/photos`; messages are kept
    /// in `inbox` before they are acknowledged. No network yet.
    pub fn build(
        settings: &TelegramSettings,
        data_dir: &Path,
        conversations: ConversationsHandle,
        inbox: Inbox,
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
        let client = teloxide::net::default_reqwest_settings()
            .timeout(POLL_TIMEOUT + POLL_MARGIN)
            .build()
            .context("could not set up the HTTP client for Telegram")?;
        let raw = Bot::with_client(token, client).set_api_url(api_url);
        let bot = Throttle::spawn_with_settings(
            raw.clone(),
            ThrottleSettings::default().limits(telegram_limits()),
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
            files: raw.clone(),
            redactor: redactor.clone(),
        });
        let intake = Arc::new(Intake::new(edge, inbox));
        let webhook = match &settings.webhook_url {
            Some(url) => {
                let webhook_intake =
                    WebhookIntake::new(url, settings.webhook_secret.clone(), intake.clone())?;
                Some(Webhook {
                    url: url
                        .parse()
                        .with_context(|| format!("TELEGRAM_WEBHOOK_URL '{url}' is not a URL"))?,
                    secret: settings
                        .webhook_secret
                        .as_ref()
                        .map(|secret| secret.expose_secret().to_owned()),
                    intake: Arc::new(webhook_intake),
                })
            }
            None => None,
        };
        Ok(Self {
            bot,
            raw,
            intake,
            redactor,
            webhook,
        })
    }

    /// In webhook mode, what the HTTP server must route to the bot.
    pub fn webhook_intake(&self) -> Option<Arc<WebhookIntake>> {
        self.webhook.as_ref().map(|webhook| webhook.intake.clone())
    }

    /// Registers the command menu (a failure is a warning), hands over the messages the inbox
    /// kept from before a restart, then takes updates: through the webhook, or by long polling
    /// (leaving webhook mode if Telegram had it on). Fails when the token is refused or the Bot
    /// API cannot be reached at all (`getMe`), or the inbox cannot be read.
    pub async fn start(self) -> anyhow::Result<RunningBot> {
        let Self {
            bot,
            raw,
            intake,
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
        let replayed = intake
            .replay()
            .await
            .context("could not hand over the Telegram messages kept before the restart")?;
        if replayed > 0 {
            tracing::info!(
                replayed,
                "handed over Telegram messages kept before the restart"
            );
        }
        let bot_name = me.user.username.clone().unwrap_or_default();
        let (stop, stopped) = watch::channel(false);
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
                None
            }
            None => {
                leave_webhook_mode(&bot, &redactor).await;
                tracing::info!(bot = %bot_name, "the Telegram bot is polling for updates");
                Some(tokio::spawn(intake::poll(
                    raw,
                    intake,
                    redactor,
                    POLL_TIMEOUT,
                    POLL_TIMEOUT + 2 * POLL_MARGIN,
                    stopped,
                )))
            }
        };
        Ok(RunningBot { stop, task })
    }
}

/// The sending limits Telegram states for bots: about one message a second in one chat, 20 a
/// minute in a group, 30 a second in all. teloxide's defaults also hold every chat to 20 a
/// minute, private chats too, so after about 20 answers in a minute a person waited 20-40 s for
/// each further one. Private chats are held to one a second only (60 a minute); supergroups
/// and channels to 20 a minute. Basic groups share the private chats' class in teloxide's
/// throttle; past Telegram's 20 a minute there, its 429 `retry_after` is waited out by the
/// throttle and the message still goes.
fn telegram_limits() -> Limits {
    Limits {
        messages_per_sec_chat: 1,
        messages_per_min_chat: 60,
        messages_per_min_channel_or_supergroup: 20,
        messages_per_sec_overall: 30,
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

/// The bot while it takes updates.
pub struct RunningBot {
    stop: watch::Sender<bool>,
    /// The polling task (none in webhook mode).
    task: Option<JoinHandle<()>>,
}

impl RunningBot {
    /// Stops taking updates and waits (bounded) for the batch in hand: its messages are kept
    /// in the inbox and already with the conversations, which the application drains next.
    pub async fn stop(self) {
        let Self { stop, task } = self;
        let _ = stop.send(true);
        if let Some(mut task) = task {
            if tokio::time::timeout(STOP_DEADLINE, &mut task)
                .await
                .is_err()
            {
                tracing::warn!("the Telegram polling did not stop in time");
                task.abort();
            }
        }
        tracing::info!("the Telegram bot stopped taking updates");
    }
}

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
