//! The conversation actor: one per person, handling their messages strictly in order.
//!
//! **Owns** the person's cached context (their `User` and recent messages) while messages keep
//! coming; the cache is dropped when the mailbox runs dry, so an idle actor is a few words
//! (`user`, two `Arc`s, two `Option`s) and the future of a turn is boxed, allocated only while
//! the turn runs. The history of a turn is queued for writing without waiting for the commit
//! (the answer is already out); the next turn waits for that commit before reading the store. **Supervised by** the `ConversationSupervisor`, which
//! spawns it on the person's first message, passivates it when idle and restarts it after a
//! failure. **Talks to** the [`Agent`](super::Agent) (one call per message), the store (reads), the
//! persistence actor (writes, acknowledged after commit) and the message's outbox.
//!
//! A turn of a message kept in the inbox first commits its start mark
//! ([`crate::ports::Write::InboxStarted`]): attempts count turns that ran, never restarts a
//! message only waited through.
//!
//! A turn that fails (the agent returns an error, panics, or exceeds `turn_timeout`) stops the
//! actor with an error; the supervisor finds the failed message in the shared mailbox and applies
//! the failure policy. Nothing here answers the person about failures.
//!
//! A turn runs inside its message's `turn` span ([`super::turn_span`]: `user_id`, `inbound_id`,
//! `channel`), so every line logged during it, by the agent or the adapters it calls, names the
//! person and the message.

use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;
use tracing::Instrument;

use super::agent::{AgentError, InboxTurn, TurnContext};
use super::mailbox::UserMailbox;
use super::{Shared, TurnOutcome};
use crate::domain::{ConversationMessage, Role, User, UserId};
use crate::inbound::Inbound;
use crate::metrics as names;
use crate::persistence::PersistError;
use crate::ports::{InboxOutcome, Write};

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
    /// The commit acknowledgement of the last writes of the actor itself (new user, history).
    /// They are not awaited at the end of a turn (the answer is already out); the next turn
    /// awaits them before reading the store, so it always sees them. Persistence commits in
    /// order, so the last acknowledgement covers the earlier ones.
    unconfirmed: Option<Unconfirmed>,
}

/// The commit acknowledgement of queued writes.
type Unconfirmed = oneshot::Receiver<Result<(), PersistError>>;

struct Context {
    user: User,
    history: Vec<ConversationMessage>,
}

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
            unconfirmed: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            // Boxed: the turn's future is large and lives only during a turn, so an idle
            // actor's task stays small.
            ConversationMsg::Wake => Box::pin(run_next_turn(&myself, state)).await,
        }
    }
}

/// Why a turn failed; the supervisor records `Display` in the dead letter.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TurnFailure(pub String);

/// Handles the next queued message, if any.
async fn run_next_turn(
    myself: &ActorRef<ConversationMsg>,
    state: &mut ConversationState,
) -> Result<(), ActorProcessingErr> {
    let Some((inbound, accepted_at, span)) = state.mailbox.begin_turn() else {
        state.context = None;
        return Ok(());
    };
    let limit = state.shared.settings.turn_timeout;
    let (outbox, chat) = (inbound.reply.clone(), inbound.chat);
    let turn = with_typing(turn(state, &inbound), outbox, chat).instrument(span);
    match tokio::time::timeout(limit, turn).await {
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

/// "typing..." lasts about five seconds on Telegram: a turn longer than [`TYPING_REFRESH`]
/// shows it again every [`TYPING_REFRESH`] until it ends. A short turn costs nothing.
const TYPING_REFRESH: std::time::Duration = std::time::Duration::from_millis(4500);

async fn with_typing<T>(
    turn: impl std::future::Future<Output = T>,
    outbox: Arc<dyn crate::ports::Outbox>,
    chat: crate::domain::ChatId,
) -> T {
    tokio::pin!(turn);
    loop {
        tokio::select! {
            done = &mut turn => return done,
            () = tokio::time::sleep(TYPING_REFRESH) => {
                let outbox = outbox.clone();
                // Not awaited here: a slow messaging service never slows the turn down.
                let typing = async move {
                    if let Err(error) = outbox.typing(chat).await {
                        super::agent::count_typing_failure(&error);
                    }
                };
                tokio::spawn(typing.in_current_span());
            }
        }
    }
}

/// One turn: context, agent, history.
async fn turn(state: &mut ConversationState, inbound: &Inbound) -> Result<(), AgentError> {
    let shared = state.shared.clone();
    if let Some(unconfirmed) = state.unconfirmed.take() {
        await_commit(&shared, state.user, unconfirmed).await;
    }
    if state.mailbox.take_stale() {
        state.context = None;
    }
    if state.context.is_none() {
        let (context, unconfirmed) = load_context(&shared, state.user).await?;
        state.context = Some(Box::new(context));
        state.unconfirmed = unconfirmed;
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
        keep_history: true,
        inbox: inbound.durable.map(|durable| InboxTurn {
            id: inbound.id,
            skip: durable.skip_steps,
            step: AtomicU32::new(0),
        }),
    };
    if inbound.durable.is_some() {
        // Counted before the agent does anything, so that a message that brings the process
        // down is counted, and one that never started is not (see `crate::inbox`).
        shared
            .persistence
            .write(vec![Write::InboxStarted { id: inbound.id }])
            .await?;
    }
    shared.agent.handle(&mut ctx, inbound).await?;
    let replies = std::mem::take(&mut ctx.replies);
    let keep_history = ctx.keep_history;
    if !keep_history {
        // The person was deleted: nothing of this turn may bring them back.
        context.history.clear();
        mark_done_without_history(&shared, inbound).await;
        return Ok(());
    }
    if let Some(unconfirmed) = record_history(&shared, context, inbound, replies).await {
        state.unconfirmed = Some(unconfirmed);
    }
    Ok(())
}

/// Waits for the commit of the actor's own earlier writes; a failure is logged (the person
/// already had their answer).
async fn await_commit(shared: &Shared, user_id: UserId, unconfirmed: Unconfirmed) {
    let limit = shared.persistence.write_timeout();
    let error = match tokio::time::timeout(limit, unconfirmed).await {
        Ok(Ok(Ok(()))) => return,
        Ok(Ok(Err(error))) => error,
        Ok(Err(_)) => PersistError::Abandoned,
        Err(_) => PersistError::Unconfirmed(limit),
    };
    tracing::warn!(user_id = %user_id, %error, "the conversation history could not be saved");
}

/// The person and their recent messages; a person seen for the first time is created (the
/// write is queued, not awaited: whatever is written later commits after it).
async fn load_context(
    shared: &Shared,
    user_id: UserId,
) -> Result<(Context, Option<Unconfirmed>), AgentError> {
    let Some(user) = shared.store.user(user_id).await? else {
        let user = User::new(user_id, shared.clock.now());
        let unconfirmed = shared
            .persistence
            .enqueue(vec![Write::UpsertUser(user.clone())])
            .await?;
        let context = Context {
            user,
            history: Vec::new(),
        };
        return Ok((context, Some(unconfirmed)));
    };
    let history = shared
        .store
        .recent_messages(user_id, shared.settings.history_limit)
        .await?;
    Ok((Context { user, history }, None))
}

/// Marks a kept message done when its turn leaves no history.
async fn mark_done_without_history(shared: &Shared, inbound: &Inbound) {
    if inbound.durable.is_none() {
        return;
    }
    let done = Write::InboxDone {
        id: inbound.id,
        outcome: InboxOutcome::Answered,
        replies: Vec::new(),
        at: shared.clock.now(),
    };
    if let Err(error) = shared.persistence.enqueue(vec![done]).await {
        tracing::warn!(user_id = %inbound.user, %error, "an inbox entry could not be marked done");
    }
}

/// Queues the person's message and the answers for writing and returns the commit
/// acknowledgement, which the next turn awaits before reading the store. A failure here is
/// logged, not fatal: the person already has their answer.
async fn record_history(
    shared: &Shared,
    context: &mut Context,
    inbound: &Inbound,
    replies: Vec<String>,
) -> Option<Unconfirmed> {
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
    let done = inbound.durable.map(|_| Write::InboxDone {
        id: inbound.id,
        outcome: InboxOutcome::Answered,
        replies: replies.clone(),
        at: now,
    });
    for (index, reply) in replies.into_iter().enumerate() {
        messages.push(ConversationMessage {
            // Derived from the message's id: writing the same turn twice keeps one row.
            id: uuid::Uuid::new_v5(&inbound.id, &(index as u64).to_be_bytes()),
            user_id,
            role: Role::Assistant,
            content: reply,
            created_at: now,
        });
    }
    // The inbox entry is done in the same transaction as the history of its turn.
    let writes = messages
        .iter()
        .cloned()
        .map(Write::AppendMessage)
        .chain(done)
        .collect();
    let unconfirmed = match shared.persistence.enqueue(writes).await {
        Ok(unconfirmed) => Some(unconfirmed),
        Err(error) => {
            tracing::warn!(user_id = %user_id, %error, "the conversation history could not be saved");
            None
        }
    };
    context.history.extend(messages);
    let excess = context
        .history
        .len()
        .saturating_sub(shared.settings.history_limit);
    context.history.drain(..excess);
    unconfirmed
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use tracing::Instrument as _;
    use tracing_subscriber::fmt::MakeWriter;

    use crate::conversation::{Agent, AgentError, TurnContext, TurnOutcome};
    use crate::domain::ChatId;
    use crate::domain::UserId;
    use crate::inbound::Inbound;
    use crate::inbox::{Inbox, SOURCE_TELEGRAM};
    use crate::ports::SystemClock;
    use crate::root::{Root, RootArgs, RootSettings};
    use crate::testing::{MemoryStore, RecordingOutbox};

    const WAIT: Duration = Duration::from_secs(10);

    /// Logs during its turn, as an agent and its adapters do; a text with "fail" fails.
    struct LoggingAgent;

    #[async_trait]
    impl Agent for LoggingAgent {
        async fn handle(
            &self,
            ctx: &mut TurnContext<'_>,
            inbound: &Inbound,
        ) -> Result<(), AgentError> {
            tracing::debug!(text = %inbound.content.to_history_text(), "contents only at debug");
            tracing::info!("the agent reads the message");
            let spawned =
                tokio::spawn(async { tracing::warn!("a task the turn spawned") }.in_current_span());
            let _ = spawned.await;
            if inbound.content.to_history_text().contains("fail") {
                return Err(AgentError::Other("told to fail".into()));
            }
            let _ = ctx.reply("noted").await;
            Ok(())
        }
    }

    /// Log output kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        /// The lines written since the last call, as JSON.
        fn take_lines(&self) -> Vec<serde_json::Value> {
            let bytes = std::mem::take(&mut *self.0.lock().unwrap());
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).expect("a JSON log line"))
                .collect()
        }
    }

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// One actor tree on this thread (a current-thread runtime runs every actor here, so the
    /// thread's default subscriber sees them all).
    #[tokio::test]
    async fn every_line_of_a_turn_names_its_person_its_message_and_its_channel() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(captured.clone())
            .finish();
        // tracing decides once per callsite, when it is first hit, whether it can be enabled.
        // While a single dispatcher exists it asks the hitting thread's default only, so a
        // callsite first hit by another test's thread (which has no subscriber) would stay off
        // here for good. A second live dispatcher makes it ask every registered one; then the
        // callsites decided before this test began are decided again.
        let _second = tracing::Dispatch::new(tracing_subscriber::registry());
        let _default = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        let store = Arc::new(MemoryStore::new());
        let root = Root::start(RootArgs {
            store: store.clone(),
            agent: Arc::new(LoggingAgent),
            clock: Arc::new(SystemClock),
            settings: RootSettings::default(),
            vision: crate::vision::VisionArgs::default(),
        })
        .await
        .expect("starts");
        let inbox = Inbox::new(store, root.conversations());
        let outbox = RecordingOutbox::new();

        for (text, outcome) in [
            ("secret meal 7", TurnOutcome::Answered),
            ("secret fail 9", TurnOutcome::Failed),
        ] {
            let message = Inbound::text(UserId(42), ChatId(42), text, outbox.clone());
            let id = message.id.to_string();
            let kept = inbox
                .accept(SOURCE_TELEGRAM, vec![message])
                .await
                .expect("kept");
            captured.take_lines();
            let done = root
                .conversations()
                .submit_and_wait(kept.into_iter().next().expect("new"), WAIT)
                .await;
            assert_eq!(done, Ok(outcome));
            if outcome == TurnOutcome::Failed {
                // The supervisor's failure line comes from its own actor, in the same span.
                assert!(outbox.wait_until(WAIT, |sent| sent.len() >= 2).await);
            }
            let lines = captured.take_lines();
            assert!(lines.len() >= 2, "{lines:?}");
            for line in &lines {
                let span = &line["span"];
                assert_eq!(span["name"], "turn", "{line}");
                assert_eq!(span["user_id"], "42", "{line}");
                assert_eq!(span["inbound_id"], id.as_str(), "{line}");
                assert_eq!(span["channel"], "telegram", "{line}");
                assert!(
                    !line.to_string().contains(text),
                    "no contents above DEBUG: {line}"
                );
            }
            let said = |message: &str| {
                lines
                    .iter()
                    .any(|line| line["fields"]["message"].as_str() == Some(message))
            };
            assert!(said("the agent reads the message") && said("a task the turn spawned"));
            if outcome == TurnOutcome::Failed {
                assert!(said("a conversation failed while handling a message"));
            }
        }
        root.shutdown(WAIT).await;
    }
}
