//! The conversation actor: one per person, handling their messages strictly in order.
//!
//! **Owns** the person's cached context (their `User` and recent messages) while messages keep
//! coming; the cache is dropped when the mailbox runs dry, so an idle actor is a few words
//! (`user`, two `Arc`s, an empty `Option`). **Supervised by** the `ConversationSupervisor`, which
//! spawns it on the person's first message, passivates it when idle and restarts it after a
//! failure. **Talks to** the [`Agent`](super::Agent) (one call per message), the store (reads), the
//! persistence actor (writes, acknowledged after commit) and the message's outbox.
//!
//! A turn that fails (the agent returns an error, panics, or exceeds `turn_timeout`) stops the
//! actor with an error; the supervisor finds the failed message in the shared mailbox and applies
//! the failure policy. Nothing here answers the person about failures.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::agent::{AgentError, TurnContext};
use super::mailbox::UserMailbox;
use super::{Shared, TurnOutcome};
use crate::domain::{ConversationMessage, Role, User, UserId};
use crate::inbound::Inbound;
use crate::metrics as names;
use crate::ports::Write;

pub enum ConversationMsg {
    /// Messages wait in the mailbox: handle the next one (and wake yourself for the rest).
    Wake,
}

pub struct ConversationArgs {
    pub(crate) user: UserId,
    pub(crate) mailbox: Arc<UserMailbox>,
    pub(crate) shared: Arc<Shared>,
}

pub struct ConversationState {
    user: UserId,
    mailbox: Arc<UserMailbox>,
    shared: Arc<Shared>,
    /// Loaded at the first turn of a run of messages, dropped when the mailbox is empty.
    context: Option<Box<Context>>,
}

struct Context {
    user: User,
    history: Vec<ConversationMessage>,
}

/// Why a turn failed; the supervisor records `Display` in the dead letter.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TurnFailure(pub String);

pub struct ConversationActor;

impl Actor for ConversationActor {
    type Msg = ConversationMsg;
    type State = ConversationState;
    type Arguments = ConversationArgs;

    /// Deliberately does no I/O: the supervisor awaits this, and must never wait on a store.
    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(ConversationState {
            user: args.user,
            mailbox: args.mailbox,
            shared: args.shared,
            context: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ConversationMsg::Wake => run_next_turn(&myself, state).await,
        }
    }
}

/// Handles the next queued message, if any.
async fn run_next_turn(
    myself: &ActorRef<ConversationMsg>,
    state: &mut ConversationState,
) -> Result<(), ActorProcessingErr> {
    let Some((inbound, accepted_at)) = state.mailbox.begin_turn() else {
        state.context = None;
        return Ok(());
    };
    let limit = state.shared.settings.turn_timeout;
    match tokio::time::timeout(limit, turn(state, &inbound)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(Box::new(TurnFailure(error.to_string()))),
        Err(_) => {
            return Err(Box::new(TurnFailure(format!(
                "the turn took longer than {limit:?}"
            ))));
        }
    }
    metrics::histogram!(names::REPLY_LATENCY_SECONDS).record(accepted_at.elapsed().as_secs_f64());
    if state.mailbox.finish_turn(TurnOutcome::Answered) {
        // Yield to the mailbox between turns (a stop request is handled here) and go on.
        myself.cast(ConversationMsg::Wake)?;
    } else {
        state.context = None;
    }
    Ok(())
}

/// One turn: context, agent, history.
async fn turn(state: &mut ConversationState, inbound: &Inbound) -> Result<(), AgentError> {
    let shared = state.shared.clone();
    if state.context.is_none() {
        state.context = Some(Box::new(load_context(&shared, state.user).await?));
    }
    let Some(context) = state.context.as_deref_mut() else {
        return Err(AgentError::Other(
            "the conversation context is missing".into(),
        ));
    };
    let mut ctx = TurnContext {
        user: &mut context.user,
        history: &context.history,
        store: shared.store.as_ref(),
        persistence: &shared.persistence,
        outbox: &inbound.reply,
        chat: inbound.chat,
        clock: shared.clock.as_ref(),
        replies: Vec::new(),
    };
    shared.agent.handle(&mut ctx, inbound).await?;
    let replies = std::mem::take(&mut ctx.replies);
    record_history(&shared, context, inbound, replies).await;
    Ok(())
}

/// The person and their recent messages; a person seen for the first time is created.
async fn load_context(shared: &Shared, user_id: UserId) -> Result<Context, AgentError> {
    let user = match shared.store.user(user_id).await? {
        Some(user) => user,
        None => {
            let user = User::new(user_id, shared.clock.now());
            shared
                .persistence
                .write(vec![Write::UpsertUser(user.clone())])
                .await?;
            user
        }
    };
    let history = shared
        .store
        .recent_messages(user_id, shared.settings.history_limit)
        .await?;
    Ok(Context { user, history })
}

/// Records the person's message and the answers, and returns after the commit, so the next
/// turn (or a restarted actor) reads them back. A failure here is logged, not fatal: the person
/// already has their answer.
async fn record_history(
    shared: &Shared,
    context: &mut Context,
    inbound: &Inbound,
    replies: Vec<String>,
) {
    let user_id = context.user.id;
    let mut messages = Vec::with_capacity(1 + replies.len());
    messages.push(ConversationMessage {
        id: inbound.id,
        user_id,
        role: Role::User,
        content: inbound.content.to_history_text(),
        created_at: inbound.received_at,
    });
    let now = shared.clock.now();
    for reply in replies {
        messages.push(ConversationMessage {
            id: uuid::Uuid::now_v7(),
            user_id,
            role: Role::Assistant,
            content: reply,
            created_at: now,
        });
    }
    let writes = messages.iter().cloned().map(Write::AppendMessage).collect();
    if let Err(error) = shared.persistence.write(writes).await {
        tracing::warn!(user_id = %user_id, %error, "the conversation history could not be saved");
    }
    context.history.extend(messages);
    let excess = context
        .history
        .len()
        .saturating_sub(shared.settings.history_limit);
    context.history.drain(..excess);
}
