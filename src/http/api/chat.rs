//! `POST /api/v1/chat`: one message through the same conversation actor as Telegram, answered
//! with what the assistant said and what it saved.
//!
//! The message carries a [`CollectingOutbox`], so the assistant's answers land in this request
//! instead of a chat. With an `Idempotency-Key` header, the message's id is derived from
//! `(user, key)`: both agents derive their rows' ids from the message id (the first meal a
//! message saves is [`crate::assistant::entry_id_for`]'s, which is how the answer's
//! `saved.food_entry` is found on either agent's path), so a retry after a lost answer never
//! logs the meal twice, and a retry within [`IDEMPOTENCY_TTL`] gets the first
//! answer back without running the turn again (concurrent retries wait for the first). Every
//! message is kept in the inbox before it is handled, like a Telegram update: a message whose
//! handling was cut by a restart is handled after it, and a retry with the same key after a
//! restart gets the stored answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use health_actors::conversation::TurnOutcome;
use health_actors::domain::{ChatId, MessageId, UserId};
use health_actors::inbound::{Inbound, InboundContent};
use health_actors::inbox::SOURCE_API;
use health_actors::ports::{Button, Outbox, OutboxError, SentMessage};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::Filter;

use super::body::{ChatButton, ChatReply, ChatRequest, ChatResponse, ChatSaved, FoodEntryBody};
use super::{answer, caller, json_body, json_reply, with, ApiError, ApiState, Caller};

/// How long a chat request waits for the assistant's turn.
const CHAT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a finished answer is replayed for its `Idempotency-Key`.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Answers remembered at most; the oldest are forgotten first.
const IDEMPOTENCY_MAX: usize = 10_000;
/// The longest message accepted, in characters.
const MESSAGE_MAX_CHARS: usize = 4_000;
/// Namespace of message ids derived from `(user, Idempotency-Key)`.
const MESSAGE_NAMESPACE: Uuid = Uuid::from_u128(0x3b1e_8c52_9d4f_4a67_b2c1_7e5d_0a9f_4c18);

pub(super) fn routes(state: ApiState) -> BoxedFilter<(warp::reply::Response,)> {
    warp::path!("api" / "v1" / "chat")
        .and(warp::post())
        .and(caller(state.clone()))
        .and(warp::header::optional::<String>("idempotency-key"))
        .and(json_body::<ChatRequest>())
        .and(with(state))
        .then(chat)
        .boxed()
}

#[utoipa::path(
    post,
    path = "/api/v1/chat",
    tag = "chat",
    summary = "Send the assistant a message as the user; answers with its replies and what it saved",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retrying with the same key replays the first answer instead of handling the message again")),
    request_body = ChatRequest,
    responses((status = 200, description = "The assistant's answer", body = ChatResponse), super::error::CommonErrors)
)]
pub(super) async fn chat(
    caller: Caller,
    idempotency_key: Option<String>,
    request: ChatRequest,
    state: ApiState,
) -> warp::reply::Response {
    answer(handle(caller, idempotency_key, request, state).await)
}

async fn handle(
    caller: Caller,
    idempotency_key: Option<String>,
    request: ChatRequest,
    state: ApiState,
) -> Result<warp::reply::Response, ApiError> {
    let user = caller.may_act_on(request.user_id)?;
    // Counted as sent, as the schema's maxLength counts it; blank space around is then dropped.
    if request.message.chars().count() > MESSAGE_MAX_CHARS {
        return Err(ApiError::field(
            "message",
            format!("must be at most {MESSAGE_MAX_CHARS} characters"),
        ));
    }
    let message = request.message.trim().to_owned();
    if message.is_empty() {
        return Err(ApiError::field("message", "must not be empty"));
    }
    state.user(user).await?;
    let Some(key) = idempotency_key else {
        let response = run_turn(&state, user, Uuid::now_v7(), message).await?;
        return Ok(json_reply(StatusCode::OK, &response));
    };
    let key = check_idempotency_key(&key)?;
    let message_id = idempotent_message_id(user, key);
    let fingerprint = fingerprint(&message);
    let slot = state.idempotency.slot(message_id);
    let stored = slot
        .get_or_try_init(|| async {
            let response = run_turn(&state, user, message_id, message.clone()).await?;
            Ok::<_, ApiError>(Stored {
                fingerprint,
                body: serde_json::to_value(&response).map_err(|_| ApiError::Internal)?,
            })
        })
        .await?;
    if stored.fingerprint != fingerprint {
        return Err(ApiError::Conflict(
            "This Idempotency-Key was already used with a different message; use a new key for a new message.".into(),
        ));
    }
    let mut reply = json_reply(StatusCode::OK, &stored.body);
    reply.headers_mut().insert(
        "idempotent-replay",
        warp::http::HeaderValue::from_static("true"),
    );
    Ok(reply)
}

/// The id of the message `user` sends with `Idempotency-Key: key`: the same on every process,
/// so the inbox recognises a retry after a restart.
pub fn idempotent_message_id(user: UserId, key: &str) -> Uuid {
    Uuid::new_v5(&MESSAGE_NAMESPACE, format!("{}:{key}", user.0).as_bytes())
}

fn check_idempotency_key(key: &str) -> Result<&str, ApiError> {
    let valid = (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Ok(key)
    } else {
        Err(ApiError::field(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        ))
    }
}

fn fingerprint(message: &str) -> [u8; 32] {
    Sha256::digest(message.as_bytes()).into()
}

/// Keeps the message in the inbox, submits it and waits for its turn; the answer is what the
/// outbox collected. A message the inbox already holds (the same `Idempotency-Key` sent to an
/// earlier process) is not handled again: its stored answer is returned.
async fn run_turn(
    state: &ApiState,
    user: UserId,
    message_id: Uuid,
    message: String,
) -> Result<ChatResponse, ApiError> {
    let outbox = Arc::new(CollectingOutbox::default());
    let mut inbound = Inbound::new(
        user,
        ChatId(user.0),
        InboundContent::Text(message.clone()),
        outbox.clone(),
    );
    inbound.id = message_id;
    let kept = state
        .inbox
        .accept(SOURCE_API, vec![inbound])
        .await
        .map_err(ApiError::store)?;
    let Some(inbound) = kept.into_iter().next() else {
        return stored_answer(state, user, message_id, &message).await;
    };
    let outcome = state
        .conversations
        .submit_and_wait(inbound, CHAT_TIMEOUT)
        .await
        .map_err(ApiError::submit)?;
    match outcome {
        TurnOutcome::Answered => {}
        TurnOutcome::Busy => {
            return Err(ApiError::Conflict(
                "The assistant is still working on earlier messages for this user; send this one again when they are answered.".into(),
            ))
        }
        TurnOutcome::Failed => return Err(ApiError::Internal),
        TurnOutcome::Unavailable => {
            return Err(ApiError::Unavailable(
                "The assistant is temporarily unavailable for this user because something keeps going wrong. Please try again in a few minutes.".into(),
            ))
        }
        TurnOutcome::ShuttingDown => {
            return Err(ApiError::Unavailable(
                "The assistant is restarting; this message is kept and will be handled after the restart. Send the same request with the same Idempotency-Key later to get its answer.".into(),
            ))
        }
    }
    let replies = outbox.take();
    answer_with(state, user, message_id, replies).await
}

/// The answer of a message the inbox held already.
async fn stored_answer(
    state: &ApiState,
    user: UserId,
    message_id: Uuid,
    message: &str,
) -> Result<ChatResponse, ApiError> {
    let record = state
        .inbox
        .entry(message_id)
        .await
        .map_err(ApiError::store)?
        .ok_or(ApiError::Internal)?;
    let same_message = record.entry.user_id == user
        && record.entry.content.get("text").and_then(|t| t.as_str()) == Some(message);
    if !same_message {
        return Err(ApiError::Conflict(
            "This Idempotency-Key was already used with a different message; use a new key for a new message.".into(),
        ));
    }
    if record.done_at.is_none() {
        return Err(ApiError::Conflict(
            "This message is still being handled; send the same request again in a moment to get its answer.".into(),
        ));
    }
    let replies = record
        .replies
        .into_iter()
        .map(|text| ChatReply {
            text,
            buttons: Vec::new(),
        })
        .collect();
    answer_with(state, user, message_id, replies).await
}

async fn answer_with(
    state: &ApiState,
    user: UserId,
    message_id: Uuid,
    replies: Vec<ChatReply>,
) -> Result<ChatResponse, ApiError> {
    let food_entry = state
        .store
        .food_entry(user, crate::assistant::entry_id_for(message_id))
        .await
        .map_err(ApiError::store)?;
    Ok(ChatResponse {
        message_id,
        replies,
        saved: ChatSaved {
            food_entry: food_entry.as_ref().map(FoodEntryBody::from),
        },
    })
}

/// Hands over the chat messages kept before a restart and not finished; their answers go to
/// the inbox (and the history), where a retry finds them. Returns how many.
pub async fn replay_kept_messages(
    inbox: &health_actors::inbox::Inbox,
) -> Result<usize, health_actors::inbox::ReplayError> {
    inbox
        .replay(SOURCE_API, Arc::new(CollectingOutbox::default()))
        .await
}

/// A finished answer kept for its `Idempotency-Key`.
pub(super) struct Stored {
    fingerprint: [u8; 32],
    body: serde_json::Value,
}

/// When an answer's slot was made, and the answer once there is one.
type Slot = (Instant, Arc<OnceCell<Stored>>);

/// Answers by message id; each slot is filled once, concurrent requests wait on it.
#[derive(Default)]
pub struct IdempotencyCache {
    slots: Mutex<HashMap<Uuid, Slot>>,
}

impl IdempotencyCache {
    fn slot(&self, id: Uuid) -> Arc<OnceCell<Stored>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if slots.len() >= IDEMPOTENCY_MAX {
            slots.retain(|_, (created, _)| now.duration_since(*created) < IDEMPOTENCY_TTL);
        }
        if slots.len() >= IDEMPOTENCY_MAX {
            if let Some(oldest) = slots
                .iter()
                .min_by_key(|(_, (created, _))| *created)
                .map(|(id, _)| *id)
            {
                slots.remove(&oldest);
            }
        }
        let (created, cell) = slots
            .entry(id)
            .or_insert_with(|| (now, Arc::new(OnceCell::new())));
        if now.duration_since(*created) >= IDEMPOTENCY_TTL {
            *created = now;
            *cell = Arc::new(OnceCell::new());
        }
        cell.clone()
    }
}

/// Collects what the assistant sends during one turn.
#[derive(Default)]
pub struct CollectingOutbox {
    replies: Mutex<Vec<(MessageId, ChatReply)>>,
    next_message: AtomicI64,
}

impl CollectingOutbox {
    fn push(&self, chat: ChatId, text: String, buttons: &[Vec<Button>]) -> SentMessage {
        let message = MessageId(self.next_message.fetch_add(1, Ordering::Relaxed) + 1);
        let reply = ChatReply {
            text,
            buttons: buttons_body(buttons),
        };
        self.replies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((message, reply));
        SentMessage { chat, message }
    }

    fn take(&self) -> Vec<ChatReply> {
        std::mem::take(&mut *self.replies.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .map(|(_, reply)| reply)
            .collect()
    }
}

fn buttons_body(buttons: &[Vec<Button>]) -> Vec<ChatButton> {
    buttons
        .iter()
        .flatten()
        .map(|button| ChatButton {
            label: button.label.clone(),
            data: button.data.clone(),
        })
        .collect()
}

fn with_caption(caption: Option<&str>, note: &str) -> String {
    match caption {
        Some(caption) => format!("{caption}\n({note})"),
        None => format!("({note})"),
    }
}

#[async_trait]
impl Outbox for CollectingOutbox {
    async fn send_text(&self, chat: ChatId, text: &str) -> Result<SentMessage, OutboxError> {
        Ok(self.push(chat, text.to_owned(), &[]))
    }

    async fn send_buttons(
        &self,
        chat: ChatId,
        text: &str,
        buttons: &[Vec<Button>],
    ) -> Result<SentMessage, OutboxError> {
        Ok(self.push(chat, text.to_owned(), buttons))
    }

    async fn send_photo(
        &self,
        chat: ChatId,
        _photo: &[u8],
        caption: Option<&str>,
    ) -> Result<SentMessage, OutboxError> {
        let text = with_caption(
            caption,
            "a picture was made; the HTTP API does not return pictures yet",
        );
        Ok(self.push(chat, text, &[]))
    }

    async fn send_document(
        &self,
        chat: ChatId,
        file_name: &str,
        _bytes: &[u8],
        caption: Option<&str>,
    ) -> Result<SentMessage, OutboxError> {
        let text = with_caption(
            caption,
            &format!("the file {file_name} was made; the HTTP API does not return files yet"),
        );
        Ok(self.push(chat, text, &[]))
    }

    async fn edit_text(
        &self,
        message: SentMessage,
        text: &str,
        buttons: Option<&[Vec<Button>]>,
    ) -> Result<(), OutboxError> {
        let mut replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        match replies.iter_mut().find(|(id, _)| *id == message.message) {
            Some((_, reply)) => {
                reply.text = text.to_owned();
                reply.buttons = buttons_body(buttons.unwrap_or_default());
                Ok(())
            }
            None => Err(OutboxError::Rejected(
                "no such message in this request".into(),
            )),
        }
    }

    async fn typing(&self, _chat: ChatId) -> Result<(), OutboxError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_outbox_collects_texts_buttons_and_edits() {
        let outbox = CollectingOutbox::default();
        let chat = ChatId(1);
        outbox.send_text(chat, "hello").await.unwrap();
        let sent = outbox
            .send_buttons(
                chat,
                "save?",
                &[vec![Button {
                    label: "Yes".into(),
                    data: "yes".into(),
                }]],
            )
            .await
            .unwrap();
        outbox.edit_text(sent, "saved", None).await.unwrap();
        let replies = outbox.take();
        assert_eq!(replies.len(), 2);
        assert_eq!(replies[0].text, "hello");
        assert_eq!(replies[1].text, "saved");
        assert!(replies[1].buttons.is_empty());
    }

    #[test]
    fn idempotency_keys_are_checked() {
        assert!(check_idempotency_key("abc-123").is_ok());
        assert!(check_idempotency_key("").is_err());
        assert!(check_idempotency_key("has space").is_err());
        assert!(check_idempotency_key(&"x".repeat(256)).is_err());
    }

    #[test]
    fn the_same_message_id_gets_the_same_slot() {
        let cache = IdempotencyCache::default();
        let id = Uuid::now_v7();
        assert!(Arc::ptr_eq(&cache.slot(id), &cache.slot(id)));
        assert!(!Arc::ptr_eq(&cache.slot(id), &cache.slot(Uuid::now_v7())));
    }
}
