//! The handler tree ([`schema`]) and what each branch does with an update.
//!
//! Order matters: the whitelist branch comes first, so an update from a stranger never reaches
//! the code that downloads, stores or submits anything. The other branches turn a message or a
//! button press into an [`Inbound`] for the person's conversation; pictures are downloaded,
//! checked and stored on the way (see [`super::photos`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures::StreamExt;
use health_actors::conversation::{ConversationsHandle, SubmitError, TurnOutcome};
use health_actors::domain::{ChatId, MessageId, UserId};
use health_actors::inbound::{Inbound, InboundContent};
use health_actors::inbox::Inbox;
use health_actors::ports::Outbox;
use teloxide::dispatching::DpHandlerDescription;
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::FileMeta;
use uuid::Uuid;

use crate::assistant::FORGET_ME_CONFIRM;

use super::outbox::TelegramOutbox;
use super::photos::{self, PhotoRejection, MAX_PHOTO_BYTES};
use super::whitelist::{Verdict, Whitelist};
use super::{Redactor, PHOTOS_REJECTED_TOTAL, REFUSED_UPDATES_TOTAL, UPDATES_TOTAL};

/// What a stranger reads (at most once an hour).
pub const REFUSAL: &str = "Sorry, this is a private health assistant and it isn't set up to talk with you. Nothing you send here is kept.";
/// What a person reads after sending something the bot cannot take (a sticker, a voice note).
pub const UNSUPPORTED: &str = "I can read text, photos of food and shared locations. Tell me in words what you ate, or send /help.";

/// How long the handler of a `/forget_me` confirmation waits for the deletion.
const FORGET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Namespace of inbound ids: UUIDv5 of "<bot id>:<update id>".
const INBOUND_NAMESPACE: Uuid = Uuid::from_u128(0x3b1e_67a2_0c4d_4f58_a9e1_7d20_54c6_8f13);

/// What every handler needs; one per bot, shared through the dispatcher's dependencies.
pub struct Edge {
    pub conversations: ConversationsHandle,
    pub outbox: Arc<TelegramOutbox>,
    pub whitelist: Whitelist,
    /// The numeric id at the start of the token (part of every inbound id).
    pub bot_id: i64,
    /// `<DATA_DIR>/photos`.
    pub photos_dir: PathBuf,
    /// `<DATA_DIR>/data`, where each person's readable markdown lives in `<user>/`.
    pub markdown_dir: PathBuf,
    /// The bot without the throttle, for `getFile` and downloads (not rate limited).
    pub files: Bot,
    pub redactor: Redactor,
}

impl Edge {
    /// Whether the update comes from someone on the whitelist.
    fn serves(&self, update: &Update) -> bool {
        update
            .from()
            .is_some_and(|user| self.whitelist.allows(user_id(user)))
    }

    /// The same update always gets the same id, so a redelivery is recognised downstream.
    pub fn inbound_id(&self, update: teloxide::types::UpdateId) -> Uuid {
        inbound_id(self.bot_id, update.0)
    }

    pub fn inbound(&self, id: Uuid, user: i64, chat: ChatId, content: InboundContent) -> Inbound {
        metrics::counter!(UPDATES_TOTAL, "kind" => content.kind()).increment(1);
        let outbox = self.outbox.clone();
        tokio::spawn(async move {
            // Failures are counted by the outbox; "typing" is only a courtesy.
            let _ = outbox.typing(chat).await;
        });
        let reply: Arc<dyn Outbox> = self.outbox.clone();
        Inbound {
            id,
            user: UserId(user),
            chat,
            content,
            received_at: Utc::now(),
            reply,
            durable: None,
            photo_path: None,
        }
    }

    /// Hands a message kept in the inbox to the person's conversation. The confirmed
    /// `/forget_me` waits (in a task of its own) for the deletion, then removes the files this
    /// edge keeps about the person (photos, markdown).
    pub async fn hand_over(&self, inbox: &Inbox, inbound: Inbound) -> Result<(), SubmitError> {
        let confirms_forget_me = matches!(
            &inbound.content,
            InboundContent::Button { data, .. } if data == FORGET_ME_CONFIRM
        );
        if !confirms_forget_me {
            return inbox.hand_over(inbound).await;
        }
        let user = inbound.user.0;
        let outcome = self.conversations.submit_for_outcome(inbound).await?;
        let photos_dir = photos::user_dir(&self.photos_dir, user);
        let markdown_dir = self.markdown_dir.join(user.to_string());
        tokio::spawn(async move {
            match tokio::time::timeout(FORGET_TIMEOUT, outcome).await {
                Ok(Ok(TurnOutcome::Answered)) => {
                    for dir in [photos_dir, markdown_dir] {
                        match tokio::fs::remove_dir_all(&dir).await {
                            Ok(()) => {}
                            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                            Err(error) => {
                                tracing::error!(user_id = user, %error, dir = %dir.display(), "could not delete a person's files")
                            }
                        }
                    }
                }
                _ => tracing::warn!(
                    user_id = user,
                    "the /forget_me confirmation did not finish; the person's files are kept"
                ),
            }
        });
        Ok(())
    }

    /// What the message says, as the core's content, with where a photo was stored (relative to
    /// the data folder); `Ok(None)` for kinds the bot does not take.
    async fn content(
        &self,
        message: &Message,
        user: i64,
        id: Uuid,
    ) -> Result<Option<(InboundContent, Option<String>)>, PhotoRejection> {
        if let Some(text) = message.text() {
            return Ok(text_content(text).map(|content| (content, None)));
        }
        if let Some(location) = message.location() {
            let content = InboundContent::Location {
                latitude: location.latitude,
                longitude: location.longitude,
            };
            return Ok(Some((content, None)));
        }
        let file = if let Some(sizes) = message.photo() {
            sizes
                .iter()
                .max_by_key(|size| u64::from(size.width) * u64::from(size.height))
                .map(|size| &size.file)
        } else {
            message.document().map(|document| &document.file)
        };
        let Some(file) = file else {
            return Ok(None);
        };
        let bytes = self.download(file).await?;
        let format = photos::validate(&bytes)?;
        let stored = match photos::store(&self.photos_dir, user, id, format, &bytes).await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(user_id = user, %error, "could not store a picture");
                return Err(PhotoRejection::NotSaved);
            }
        };
        let path = stored
            .file_name()
            .map(|name| format!("photos/{user}/{}", name.to_string_lossy()));
        Ok(Some((
            InboundContent::Photo {
                bytes,
                caption: message.caption().map(str::to_owned),
            },
            path,
        )))
    }

    /// `getFile`, then the download, refused as soon as it is known to exceed the limit.
    async fn download(&self, file: &FileMeta) -> Result<Vec<u8>, PhotoRejection> {
        let too_large = |bytes: usize| PhotoRejection::TooLarge(photos::megabytes(bytes));
        if file.size as usize > MAX_PHOTO_BYTES {
            return Err(too_large(file.size as usize));
        }
        let remote = self
            .files
            .get_file(file.id.clone())
            .await
            .map_err(|error| self.download_failed(&error.to_string()))?;
        if remote.size as usize > MAX_PHOTO_BYTES {
            return Err(too_large(remote.size as usize));
        }
        let mut stream = self.files.download_file_stream(&remote.path);
        let mut bytes = Vec::with_capacity(remote.size as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| self.download_failed(&error.to_string()))?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_PHOTO_BYTES {
                return Err(too_large(bytes.len()));
            }
        }
        Ok(bytes)
    }

    fn download_failed(&self, error: &str) -> PhotoRejection {
        tracing::warn!(error = %self.redactor.redact(error), "could not download a file from Telegram");
        PhotoRejection::DownloadFailed
    }
}

/// UUIDv5 of "<bot id>:<update id>".
pub fn inbound_id(bot_id: i64, update_id: u32) -> Uuid {
    Uuid::new_v5(
        &INBOUND_NAMESPACE,
        format!("{bot_id}:{update_id}").as_bytes(),
    )
}

fn user_id(user: &teloxide::types::User) -> i64 {
    // Telegram user ids fit in 52 bits.
    user.id.0 as i64
}

/// `/name@bot args` becomes a command without the bot's name; anything else is text.
pub fn text_content(text: &str) -> Option<InboundContent> {
    match crate::chat::line_to_content(text)? {
        InboundContent::Command { name, args } => {
            let name = name.split('@').next().unwrap_or_default().to_owned();
            if name.is_empty() {
                return Some(InboundContent::Text(text.trim().to_owned()));
            }
            Some(InboundContent::Command { name, args })
        }
        other => Some(other),
    }
}

/// What the handler tree makes of one update.
pub enum Prepared {
    /// A message for the person's conversation, to keep in the inbox first.
    Message(Inbound),
    /// Nothing to keep: a stranger, or something the bot cannot take (already answered).
    Nothing,
}

/// The whole handler tree: an update in, what to keep out. Run for each update by
/// [`super::intake::Intake`] before the inbox commit.
pub fn schema() -> dptree::Handler<'static, Prepared, DpHandlerDescription> {
    dptree::entry()
        .branch(
            dptree::filter(|update: Update, edge: Arc<Edge>| !edge.serves(&update))
                .endpoint(turn_away),
        )
        .branch(Update::filter_message().endpoint(on_message))
        .branch(Update::filter_callback_query().endpoint(on_button))
}

/// A stranger: one refusal an hour, nothing stored, nothing handed on.
async fn turn_away(update: Update, edge: Arc<Edge>) -> Prepared {
    let Some(user) = update.from() else {
        // Channel posts and the like: nobody to answer.
        return Prepared::Nothing;
    };
    let id = user_id(user);
    match edge.whitelist.verdict(id, Instant::now()) {
        Verdict::Serve => {}
        Verdict::Ignore => {
            metrics::counter!(REFUSED_UPDATES_TOTAL, "action" => "ignored").increment(1);
        }
        Verdict::Refuse => {
            metrics::counter!(REFUSED_UPDATES_TOTAL, "action" => "refused").increment(1);
            tracing::info!(
                telegram_id = id,
                "refused an update from an id outside ALLOWED_TELEGRAM_IDS"
            );
            let chat = update.chat().map(|chat| chat.id.0).unwrap_or(id);
            let _ = edge.outbox.send_text(ChatId(chat), REFUSAL).await;
        }
    }
    Prepared::Nothing
}

async fn on_message(message: Message, update: Update, edge: Arc<Edge>) -> Prepared {
    let Some(from) = message.from.as_ref() else {
        return Prepared::Nothing;
    };
    let user = user_id(from);
    let chat = ChatId(message.chat.id.0);
    let id = edge.inbound_id(update.id);
    match edge.content(&message, user, id).await {
        Ok(Some((content, photo_path))) => {
            let mut inbound = edge.inbound(id, user, chat, content);
            inbound.photo_path = photo_path;
            Prepared::Message(inbound)
        }
        Ok(None) => {
            let _ = edge.outbox.send_text(chat, UNSUPPORTED).await;
            Prepared::Nothing
        }
        Err(rejection) => {
            let reason = match rejection {
                PhotoRejection::TooLarge(_) => "too_large",
                PhotoRejection::NotAnImage => "not_an_image",
                PhotoRejection::DownloadFailed => "download_failed",
                PhotoRejection::NotSaved => "not_saved",
            };
            metrics::counter!(PHOTOS_REJECTED_TOTAL, "reason" => reason).increment(1);
            let _ = edge.outbox.send_text(chat, &rejection.to_string()).await;
            Prepared::Nothing
        }
    }
}

async fn on_button(query: CallbackQuery, update: Update, edge: Arc<Edge>) -> Prepared {
    // Stops the spinner on the button whatever happens next.
    edge.outbox.answer_button(query.id.clone()).await;
    let (Some(data), Some(message)) = (query.data.clone(), query.message.as_ref()) else {
        return Prepared::Nothing;
    };
    let user = user_id(&query.from);
    let chat = ChatId(message.chat().id.0);
    let content = InboundContent::Button {
        data,
        message: MessageId(i64::from(message.id().0)),
    };
    let id = edge.inbound_id(update.id);
    Prepared::Message(edge.inbound(id, user, chat, content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_lose_the_bot_name() {
        assert_eq!(
            text_content("/today@health_bot"),
            Some(InboundContent::Command {
                name: "today".into(),
                args: String::new()
            })
        );
        assert_eq!(
            text_content("/goal@health_bot 1800 kcal"),
            Some(InboundContent::Command {
                name: "goal".into(),
                args: "1800 kcal".into()
            })
        );
        assert_eq!(
            text_content("2 eggs"),
            Some(InboundContent::Text("2 eggs".into()))
        );
        assert_eq!(text_content("  "), None);
    }

    #[test]
    fn inbound_ids_are_stable_per_update_and_differ_between_updates_and_bots() {
        assert_eq!(inbound_id(1, 7), inbound_id(1, 7));
        assert_ne!(inbound_id(1, 7), inbound_id(1, 8));
        assert_ne!(inbound_id(1, 7), inbound_id(2, 7));
        assert_eq!(inbound_id(1, 7).get_version_num(), 5);
    }
}
