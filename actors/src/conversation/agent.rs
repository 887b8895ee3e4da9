//! The agent port: what a conversation actor runs for each message.
//!
//! The offline rule-based agent, the LLM agent and the benchmark's cheap handler all implement
//! [`Agent`]. The conversation actor calls it once per message, in order, with a [`TurnContext`]
//! that gives everything a turn needs and nothing else: the person, the recent conversation,
//! read access to the store, writes that return after commit, the way to answer, and the time.
//! Not an actor: it runs inside the turn of the person's `ConversationActor`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{ChatId, ConversationMessage, MessageId, User};
use crate::inbound::Inbound;
use crate::metrics as names;
use crate::persistence::{PersistError, PersistenceHandle};
use crate::ports::{Button, Clock, Outbox, OutboxError, SentMessage, Store, StoreError, Write};

/// Why a turn failed. The conversation supervisor turns any of these into an apology to the
/// person, a dead letter (with this `Display` as the error) and a restart of the actor.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the language model did not answer in time")]
    ModelTimeout,
    #[error("the language model failed: {0}")]
    Model(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error("{0}")]
    Other(String),
}

/// Handles one message of one person. Implementations hold no per-person state: what must
/// survive a turn goes to the store through [`TurnContext::write`].
#[async_trait]
pub trait Agent: Send + Sync + 'static {
    async fn handle(&self, ctx: &mut TurnContext<'_>, inbound: &Inbound) -> Result<(), AgentError>;
}

/// Everything one turn may use. Built by the conversation actor for each message.
pub struct TurnContext<'a> {
    pub(crate) user: &'a mut User,
    pub(crate) history: &'a [ConversationMessage],
    pub(crate) store: &'a dyn Store,
    pub(crate) persistence: &'a PersistenceHandle,
    pub(crate) outbox: &'a Arc<dyn Outbox>,
    pub(crate) chat: ChatId,
    pub(crate) clock: &'a dyn Clock,
    /// Texts sent to the person during the turn, recorded as assistant messages at its end.
    pub(crate) replies: Vec<String>,
    /// Whether the turn is recorded in the conversation history (see
    /// [`TurnContext::forget_this_turn`]).
    pub(crate) keep_history: bool,
    /// Set when the message is kept in the inbox.
    pub(crate) inbox: Option<InboxTurn>,
}

/// The effect writes of a turn whose message is kept in the inbox. Each [`TurnContext::write`]
/// is one numbered step, committed together with a [`Write::InboxStep`] marker; a replay after
/// a crash skips the steps already committed, so an effect that is not idempotent by itself
/// ("delete the last entry") still happens once.
pub(crate) struct InboxTurn {
    pub id: uuid::Uuid,
    pub skip: u32,
    pub step: AtomicU32,
}

impl<'a> TurnContext<'a> {
    /// The person, as stored (created with defaults on their first message).
    pub fn user(&self) -> &User {
        self.user
    }

    /// The last messages of the conversation, oldest first (the current one is not included).
    pub fn history(&self) -> &[ConversationMessage] {
        self.history
    }

    /// Read access to everything stored. Writes go through [`TurnContext::write`].
    pub fn store(&self) -> &dyn Store {
        self.store
    }

    /// The current time (a manual clock in tests).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The chat answers go to.
    pub fn chat(&self) -> ChatId {
        self.chat
    }

    /// The raw outbox of this message's edge, for what the helpers below do not cover (photos,
    /// documents, edits). Nothing sent through it is recorded in the history.
    pub fn outbox(&self) -> &dyn Outbox {
        self.outbox.as_ref()
    }

    /// The persistence handle, for writes that must not wait (rare: prefer `write`).
    pub fn persistence(&self) -> &PersistenceHandle {
        self.persistence
    }

    /// Writes `writes` in one transaction and returns after the commit: say "saved" only after
    /// this returns `Ok`.
    ///
    /// For a message kept in the inbox, each call is one step of the turn: a replay of the
    /// message after a crash returns `Ok` at once for the steps an earlier handling committed.
    pub async fn write(&self, mut writes: Vec<Write>) -> Result<(), PersistError> {
        if let Some(inbox) = &self.inbox {
            let step = inbox.step.fetch_add(1, Ordering::Relaxed) + 1;
            if step <= inbox.skip {
                tracing::debug!(inbox_id = %inbox.id, step, "skipping a write committed before a restart");
                return Ok(());
            }
            let kept = super::kept::kept_by(&writes);
            writes.push(Write::InboxStep {
                id: inbox.id,
                step,
                kept,
            });
        }
        self.persistence.write(writes).await
    }

    /// Saves a changed profile, goals or time zone, and uses it for the rest of the turn.
    pub async fn save_user(&mut self, mut user: User) -> Result<(), PersistError> {
        user.updated_at = self.clock.now();
        self.write(vec![Write::UpsertUser(user.clone())]).await?;
        *self.user = user;
        Ok(())
    }

    /// Sends `text` to the person and records it in the conversation history. A delivery
    /// failure is logged and counted; the caller may ignore the error.
    pub async fn reply(&mut self, text: impl Into<String>) -> Result<SentMessage, OutboxError> {
        let text = text.into();
        let result = self.outbox.send_text(self.chat, &text).await;
        self.note_reply(text, &result);
        result
    }

    /// Like [`TurnContext::reply`], with rows of buttons under the text.
    pub async fn reply_with_buttons(
        &mut self,
        text: impl Into<String>,
        buttons: &[Vec<Button>],
    ) -> Result<SentMessage, OutboxError> {
        let text = text.into();
        let result = self.outbox.send_buttons(self.chat, &text, buttons).await;
        self.note_reply(text, &result);
        result
    }

    /// Answers a button press in place: the message the button was under becomes `text`, with
    /// no buttons left to press a second time. When that message cannot be edited any more
    /// (deleted by the person, say), `text` is sent as a new message instead.
    pub async fn reply_in_place(
        &mut self,
        message: MessageId,
        text: impl Into<String>,
    ) -> Result<SentMessage, OutboxError> {
        let text = text.into();
        let sent = SentMessage {
            chat: self.chat,
            message,
        };
        match self.outbox.edit_text(sent, &text, None).await {
            Ok(()) => {
                self.replies.push(text);
                Ok(sent)
            }
            Err(error) => {
                count_outbox_error("edit", &error);
                self.reply(text).await
            }
        }
    }

    /// Shows "typing..." (failures are only counted).
    pub async fn typing(&self) {
        if let Err(error) = self.outbox.typing(self.chat).await {
            count_typing_failure(&error);
        }
    }

    /// Keeps this turn (the person's message and the answers) out of the history: for a turn
    /// that deleted the person, whom a history row would bring back.
    pub fn forget_this_turn(&mut self) {
        self.keep_history = false;
    }

    /// Records `text` as said by the assistant without sending it (e.g. the caption of a chart
    /// sent through [`TurnContext::outbox`]).
    pub fn record_assistant(&mut self, text: impl Into<String>) {
        self.replies.push(text.into());
    }

    fn note_reply(&mut self, text: String, result: &Result<SentMessage, OutboxError>) {
        match result {
            Ok(_) => self.replies.push(text),
            Err(error) => count_outbox_error("reply", error),
        }
    }
}

/// A "typing..." notice that could not be shown: logged at DEBUG and counted on its own, since
/// the person loses nothing by it.
pub(crate) fn count_typing_failure(error: &OutboxError) {
    tracing::debug!(%error, "a typing notice could not be shown");
    metrics::counter!(names::TYPING_FAILURES_TOTAL, "error" => error.kind()).increment(1);
}

pub(crate) fn count_outbox_error(operation: &'static str, error: &OutboxError) {
    tracing::warn!(operation, %error, "a message could not be delivered");
    metrics::counter!(names::OUTBOX_ERRORS_TOTAL, "error" => error.kind()).increment(1);
}
