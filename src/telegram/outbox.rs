//! The way back to a person on Telegram: [`TelegramOutbox`] implements the core's [`Outbox`].
//!
//! Every send goes through teloxide's `Throttle` adaptor (at most one message a second per chat,
//! thirty a second overall), which also waits out a `429 Too Many Requests` for the `retry_after`
//! Telegram names and sends again. Each call is bounded by a timeout. Messages are plain text
//! (no parse mode), so nothing a person typed can break the formatting; texts longer than
//! Telegram's 4096 characters are split at line breaks. Failures are mapped to [`OutboxError`],
//! counted by method and kind, and their text never contains the bot token.

use std::time::Duration;

use async_trait::async_trait;
use health_actors::domain::{ChatId, MessageId};
use health_actors::ports::{Button, Outbox, OutboxError, SentMessage};
use teloxide::adaptors::Throttle;
use teloxide::payloads::{EditMessageTextSetters, SendDocumentSetters, SendPhotoSetters};
use teloxide::prelude::*;
use teloxide::types::{
    ChatAction, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, ReplyMarkup,
};
use teloxide::{ApiError, RequestError};

use super::{Redactor, MESSAGES_SENT_TOTAL, SEND_FAILURES_TOTAL};

/// Telegram's limit on the text of one message (in UTF-16 code units).
pub const MESSAGE_LIMIT: usize = 4096;
/// Telegram's limit on a photo or document caption.
const CAPTION_LIMIT: usize = 1024;

/// Sends through the throttled bot. Cheap to clone.
#[derive(Clone)]
pub struct TelegramOutbox {
    bot: Throttle<Bot>,
    redactor: Redactor,
    timeout: Duration,
}

impl TelegramOutbox {
    /// `timeout` bounds each call, including the waits the throttle makes after a 429.
    pub fn new(bot: Throttle<Bot>, redactor: Redactor, timeout: Duration) -> Self {
        Self {
            bot,
            redactor,
            timeout,
        }
    }

    async fn call<T>(
        &self,
        method: &'static str,
        request: impl std::future::IntoFuture<Output = Result<T, RequestError>>,
    ) -> Result<T, OutboxError> {
        let error = match tokio::time::timeout(self.timeout, request.into_future()).await {
            Ok(Ok(value)) => {
                if method.starts_with("send") && method != "sendChatAction"
                    || method == "editMessageText"
                {
                    metrics::counter!(MESSAGES_SENT_TOTAL, "method" => method).increment(1);
                }
                return Ok(value);
            }
            Ok(Err(error)) => self.map_error(error),
            Err(_) => OutboxError::Timeout,
        };
        tracing::warn!(method, %error, "a Telegram call failed");
        metrics::counter!(SEND_FAILURES_TOTAL, "method" => method, "error" => error.kind())
            .increment(1);
        Err(error)
    }

    /// Acknowledges a button press (stops its spinner); a failure is only counted.
    pub async fn answer_button(&self, id: teloxide::types::CallbackQueryId) {
        let _ = self
            .call("answerCallbackQuery", self.bot.answer_callback_query(id))
            .await;
    }

    fn map_error(&self, error: RequestError) -> OutboxError {
        match error {
            RequestError::RetryAfter(seconds) => OutboxError::RateLimited(seconds.duration()),
            RequestError::Api(
                ApiError::BotBlocked
                | ApiError::ChatNotFound
                | ApiError::UserNotFound
                | ApiError::UserDeactivated
                | ApiError::BotKicked
                | ApiError::BotKickedFromSupergroup
                | ApiError::BotKickedFromChannel
                | ApiError::CantInitiateConversation,
            ) => OutboxError::Unreachable,
            RequestError::Api(api) => OutboxError::Rejected(self.redactor.redact(&api.to_string())),
            RequestError::Network(network) if network.is_timeout() => OutboxError::Timeout,
            other => OutboxError::Unavailable(self.redactor.redact(&other.to_string())),
        }
    }
}

fn sent(message: &Message) -> SentMessage {
    SentMessage {
        chat: ChatId(message.chat.id.0),
        message: MessageId(i64::from(message.id.0)),
    }
}

fn keyboard(buttons: &[Vec<Button>]) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(buttons.iter().map(|row| {
        row.iter()
            .map(|button| InlineKeyboardButton::callback(&button.label, &button.data))
            .collect::<Vec<_>>()
    }))
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Cuts `text` into pieces of at most `limit` UTF-16 units: at the last line break that fits,
/// else the last space, else anywhere (between characters).
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while utf16_len(rest) > limit {
        // The longest prefix that fits, on a char boundary.
        let mut units = 0;
        let mut fits = 0;
        for (index, character) in rest.char_indices() {
            units += character.len_utf16();
            if units > limit {
                break;
            }
            fits = index + character.len_utf8();
        }
        let head = &rest[..fits];
        let cut = head
            .rfind('\n')
            .or_else(|| head.rfind(' '))
            .filter(|&at| at > 0)
            .unwrap_or(fits);
        pieces.push(rest[..cut].trim_end().to_owned());
        rest = rest[cut..].trim_start_matches(['\n', ' ']);
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest.to_owned());
    }
    pieces
}

/// A caption within Telegram's limit (the full text goes in a message when it is longer).
fn caption_fits(caption: Option<&str>) -> Option<&str> {
    caption.filter(|c| utf16_len(c) <= CAPTION_LIMIT)
}

#[async_trait]
impl Outbox for TelegramOutbox {
    async fn send_text(&self, chat: ChatId, text: &str) -> Result<SentMessage, OutboxError> {
        let mut last = None;
        for piece in split_message(text, MESSAGE_LIMIT) {
            let message = self
                .call(
                    "sendMessage",
                    self.bot
                        .send_message(teloxide::types::ChatId(chat.0), piece),
                )
                .await?;
            last = Some(sent(&message));
        }
        last.ok_or_else(|| OutboxError::Rejected("the message was empty".into()))
    }

    async fn send_buttons(
        &self,
        chat: ChatId,
        text: &str,
        buttons: &[Vec<Button>],
    ) -> Result<SentMessage, OutboxError> {
        // The buttons go under the last piece, so they stay next to the question.
        let mut pieces = split_message(text, MESSAGE_LIMIT);
        let last_piece = pieces.pop().unwrap_or_default();
        for piece in pieces {
            self.call(
                "sendMessage",
                self.bot
                    .send_message(teloxide::types::ChatId(chat.0), piece),
            )
            .await?;
        }
        let message = self
            .call(
                "sendMessage",
                self.bot
                    .send_message(teloxide::types::ChatId(chat.0), last_piece)
                    .reply_markup(ReplyMarkup::InlineKeyboard(keyboard(buttons))),
            )
            .await?;
        Ok(sent(&message))
    }

    async fn send_photo(
        &self,
        chat: ChatId,
        photo: &[u8],
        caption: Option<&str>,
    ) -> Result<SentMessage, OutboxError> {
        let file = InputFile::memory(photo.to_vec()).file_name("chart.png");
        let mut request = self.bot.send_photo(teloxide::types::ChatId(chat.0), file);
        if let Some(caption) = caption_fits(caption) {
            request = request.caption(caption);
        }
        let message = self.call("sendPhoto", request).await?;
        if let Some(long) = caption.filter(|c| caption_fits(Some(c)).is_none()) {
            self.send_text(chat, long).await?;
        }
        Ok(sent(&message))
    }

    async fn send_document(
        &self,
        chat: ChatId,
        file_name: &str,
        bytes: &[u8],
        caption: Option<&str>,
    ) -> Result<SentMessage, OutboxError> {
        let file = InputFile::memory(bytes.to_vec()).file_name(file_name.to_owned());
        let mut request = self
            .bot
            .send_document(teloxide::types::ChatId(chat.0), file);
        if let Some(caption) = caption_fits(caption) {
            request = request.caption(caption);
        }
        let message = self.call("sendDocument", request).await?;
        if let Some(long) = caption.filter(|c| caption_fits(Some(c)).is_none()) {
            self.send_text(chat, long).await?;
        }
        Ok(sent(&message))
    }

    async fn edit_text(
        &self,
        message: SentMessage,
        text: &str,
        buttons: Option<&[Vec<Button>]>,
    ) -> Result<(), OutboxError> {
        let text = split_message(text, MESSAGE_LIMIT)
            .into_iter()
            .next()
            .unwrap_or_default();
        let mut request = self.bot.edit_message_text(
            teloxide::types::ChatId(message.chat.0),
            teloxide::types::MessageId(message.message.0 as i32),
            text,
        );
        if let Some(buttons) = buttons {
            request = request.reply_markup(keyboard(buttons));
        }
        self.call("editMessageText", request).await.map(|_| ())
    }

    async fn typing(&self, chat: ChatId) -> Result<(), OutboxError> {
        self.call(
            "sendChatAction",
            self.bot
                .send_chat_action(teloxide::types::ChatId(chat.0), ChatAction::Typing),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_one_piece() {
        assert_eq!(split_message("hello", 10), vec!["hello".to_owned()]);
        assert_eq!(split_message("", 10), vec![String::new()]);
    }

    #[test]
    fn long_texts_split_at_line_breaks_then_spaces_then_anywhere() {
        assert_eq!(
            split_message("aaaa\nbbbb\ncccc", 10),
            vec!["aaaa\nbbbb".to_owned(), "cccc".to_owned()]
        );
        assert_eq!(
            split_message("aaaa bbbb cccc", 10),
            vec!["aaaa bbbb".to_owned(), "cccc".to_owned()]
        );
        assert_eq!(
            split_message("abcdefghijkl", 5),
            vec!["abcde".to_owned(), "fghij".to_owned(), "kl".to_owned()]
        );
    }

    #[test]
    fn pieces_respect_the_limit_in_utf16_units_and_keep_every_character() {
        let text = "🍎 apple ".repeat(1000);
        let pieces = split_message(&text, MESSAGE_LIMIT);
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|p| utf16_len(p) <= MESSAGE_LIMIT));
        let apples: usize = pieces.iter().map(|p| p.matches('🍎').count()).sum();
        assert_eq!(apples, 1000);
    }
}
