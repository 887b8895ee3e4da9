//! The conversation supervisor: routes each message to its person's conversation actor.
//!
//! **Owns** the table of people with a live (or cooling-off) conversation: their actor, their
//! bounded mailbox and their recent restarts. **Supervised by** the root supervisor. **Talks to**
//! the conversation actors it spawns with `spawn_linked`, the outbox of a message (for the notices
//! it sends itself) and the persistence actor (dead letters).
//!
//! It never awaits a person's turn: routing is a hash lookup, a push into the person's mailbox
//! and at most one `Wake`; notices and dead letters are sent from side tasks. So one person's
//! slow turn never delays another person.
//!
//! Written policy (`handle_supervisor_evt`):
//! - a child that **fails** (error, panic, turn timeout): the person gets [`APOLOGY`] (or, when
//!   the turn had saved something, [`super::kept::apology`] naming what), the message
//!   becomes a dead letter, the actor is restarted at once with its state reloaded from the store
//!   and picks up the messages still queued. More than `max_restarts` failures within
//!   `restart_window` put the person in cool-off: they read [`UNAVAILABLE_NOTICE`] (for the failed
//!   message, the queued ones and any sent during `cool_off`), and their actor stays down. Other
//!   people are never affected.
//! - a child that **stops** because it was idle (the sweep stops actors quiet for `idle`) is
//!   forgotten; the next message respawns it. A child stopped by anything else while messages
//!   wait is respawned.
//! - on **drain** (shutdown): intake closes, messages not yet started are answered with
//!   [`RESTARTING_NOTICE`], every actor stops after its current turn; the drain answers once all
//!   children are gone and the side tasks (notices, dead letters) are done.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::Instrument;

use super::actor::{ConversationActor, ConversationArgs, ConversationMsg};
use super::agent::count_outbox_error;
use super::kept::{apology, PARTLY_SAVED_APOLOGY};
use super::mailbox::{Offer, Queued, UserMailbox};
use super::{
    Agent, ConversationSettings, Shared, TurnOutcome, APOLOGY, BUSY_NOTICE, RESTARTING_NOTICE,
    UNAVAILABLE_NOTICE,
};
use crate::domain::{ChatId, DeadLetter, UserId};
use crate::inbound::Inbound;
use crate::metrics as names;
use crate::persistence::PersistenceHandle;
use crate::ports::{Clock, InboxOutcome, Outbox, Store, Write};

pub enum SupervisorMsg {
    /// A message from a person, to hand to their actor.
    Route(Routed),
    /// The person's stored data changed outside their conversation: reload it next turn.
    Refresh(UserId),
    /// Periodic: passivate idle actors, forget expired cool-offs, reap side tasks.
    Sweep,
    Stats(RpcReplyPort<ConversationStats>),
    /// Shutdown: stop intake, let every actor finish its current turn, then answer.
    Drain(RpcReplyPort<DrainReport>),
}

/// A submitted message on its way to the person's mailbox.
pub struct Routed {
    inbound: Inbound,
    accepted_at: Instant,
    done: Option<oneshot::Sender<TurnOutcome>>,
    /// Room in the intake, released once routed.
    _permit: OwnedSemaphorePermit,
}

/// Why a message was not accepted. The `Display` can be shown to the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("I'm restarting right now. Please send that again in a minute.")]
    ShuttingDown,
    #[error("I'm very busy right now. Please send that again in a moment.")]
    Overloaded,
    #[error("That is taking longer than expected; I'll answer as soon as I can.")]
    TimedOut,
    #[error("I'm not running right now. Please try again later.")]
    Stopped,
}

/// A snapshot for `/health`, tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConversationStats {
    /// Conversation actors alive.
    pub active_actors: usize,
    /// People in the table (alive, restarting or cooling off).
    pub tracked_users: usize,
    pub cooling_off: usize,
    /// Messages waiting in mailboxes.
    pub queued_messages: usize,
}

/// What the drain did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Messages not started, answered with [`RESTARTING_NOTICE`].
    pub interrupted: usize,
}

/// The cloneable handle the edges submit messages through.
#[derive(Clone)]
pub struct ConversationsHandle {
    actor: ActorRef<SupervisorMsg>,
    intake: Arc<Semaphore>,
    submit_timeout: Duration,
}

impl ConversationsHandle {
    /// Hands `inbound` to the person's conversation; answers go to `inbound.reply`. Returns once
    /// the message is accepted (waiting up to `submit_timeout` when the intake is full), not
    /// when it is answered.
    pub async fn submit(&self, inbound: Inbound) -> Result<(), SubmitError> {
        self.send(inbound, None).await
    }

    /// Like [`ConversationsHandle::submit`], then waits (at most `timeout`) for the end of the
    /// message's turn: the HTTP API uses it to return the answers collected by its outbox.
    pub async fn submit_and_wait(
        &self,
        inbound: Inbound,
        timeout: Duration,
    ) -> Result<TurnOutcome, SubmitError> {
        let deadline = Instant::now() + timeout;
        let (done, outcome) = oneshot::channel();
        self.send(inbound, Some(done)).await?;
        match tokio::time::timeout_at(deadline, outcome).await {
            Err(_) => Err(SubmitError::TimedOut),
            Ok(Err(_)) => Err(SubmitError::Stopped),
            Ok(Ok(outcome)) => Ok(outcome),
        }
    }

    /// Like [`ConversationsHandle::submit`], and returns how the message's turn will end,
    /// without waiting for it (so the caller keeps its order of submissions).
    pub async fn submit_for_outcome(
        &self,
        inbound: Inbound,
    ) -> Result<oneshot::Receiver<TurnOutcome>, SubmitError> {
        let (done, outcome) = oneshot::channel();
        self.send(inbound, Some(done)).await?;
        Ok(outcome)
    }

    async fn send(
        &self,
        inbound: Inbound,
        done: Option<oneshot::Sender<TurnOutcome>>,
    ) -> Result<(), SubmitError> {
        let acquire = self.intake.clone().acquire_owned();
        let permit = match tokio::time::timeout(self.submit_timeout, acquire).await {
            Err(_) => return Err(SubmitError::Overloaded),
            Ok(Err(_closed)) => return Err(SubmitError::ShuttingDown),
            Ok(Ok(permit)) => permit,
        };
        let routed = Routed {
            inbound,
            accepted_at: Instant::now(),
            done,
            _permit: permit,
        };
        self.actor
            .cast(SupervisorMsg::Route(routed))
            .map_err(|_| SubmitError::Stopped)
    }

    /// Tells the person's conversation (if one is running) that their profile, goals or other
    /// stored data changed elsewhere, such as through the HTTP API: its next turn reads them
    /// again instead of using what it loaded earlier.
    pub fn refresh(&self, user: UserId) {
        let _ = self.actor.cast(SupervisorMsg::Refresh(user));
    }

    pub async fn stats(&self) -> Result<ConversationStats, SubmitError> {
        match self
            .actor
            .call(SupervisorMsg::Stats, Some(Duration::from_secs(5)))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(stats)) => Ok(stats),
            Ok(ractor::rpc::CallResult::Timeout) => Err(SubmitError::TimedOut),
            Ok(ractor::rpc::CallResult::SenderError) | Err(_) => Err(SubmitError::Stopped),
        }
    }

    /// Closes intake and lets every conversation finish its current message (at most
    /// `deadline`). Used by the root supervisor's shutdown.
    pub async fn drain(&self, deadline: Duration) -> Result<DrainReport, SubmitError> {
        self.intake.close();
        match self.actor.call(SupervisorMsg::Drain, Some(deadline)).await {
            Ok(ractor::rpc::CallResult::Success(report)) => Ok(report),
            Ok(ractor::rpc::CallResult::Timeout) => Err(SubmitError::TimedOut),
            Ok(ractor::rpc::CallResult::SenderError) | Err(_) => Err(SubmitError::Stopped),
        }
    }

    /// The supervisor actor behind the handle.
    pub fn actor(&self) -> &ActorRef<SupervisorMsg> {
        &self.actor
    }
}

pub struct SupervisorArgs {
    pub store: Arc<dyn Store>,
    pub agent: Arc<dyn Agent>,
    pub persistence: PersistenceHandle,
    pub clock: Arc<dyn Clock>,
    pub settings: ConversationSettings,
    pub intake: Arc<Semaphore>,
}

pub struct SupervisorState {
    shared: Arc<Shared>,
    users: HashMap<UserId, UserEntry>,
    /// Which person each live child serves (supervision events name the child, not the person).
    children: HashMap<ActorId, UserId>,
    /// Notices and dead letters in flight; awaited before the drain answers.
    side_tasks: JoinSet<()>,
    intake: Arc<Semaphore>,
    draining: Option<Draining>,
    sweeper: Option<JoinHandle<()>>,
}

struct UserEntry {
    actor: Option<ActorRef<ConversationMsg>>,
    mailbox: Arc<UserMailbox>,
    /// Failures within `restart_window`.
    restarts: Vec<Instant>,
    cool_off_until: Option<Instant>,
}

struct Draining {
    reply: Option<RpcReplyPort<DrainReport>>,
    report: DrainReport,
}

pub struct ConversationSupervisor;

impl Actor for ConversationSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let shared = Shared {
            store: args.store,
            agent: args.agent,
            persistence: args.persistence,
            clock: args.clock,
            settings: args.settings,
        };
        Ok(SupervisorState {
            shared: Arc::new(shared),
            users: HashMap::new(),
            children: HashMap::new(),
            side_tasks: JoinSet::new(),
            intake: args.intake,
            draining: None,
            sweeper: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let period = (state.shared.settings.idle / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(30));
        state.sweeper = Some(myself.send_interval(period, || SupervisorMsg::Sweep));
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(sweeper) = state.sweeper.take() {
            sweeper.abort();
        }
        for entry in state.users.values() {
            if let Some(actor) = &entry.actor {
                actor.stop(Some("supervisor stopped".into()));
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Route(routed) => route(&myself, state, routed).await,
            SupervisorMsg::Refresh(user) => {
                if let Some(entry) = state.users.get(&user) {
                    entry.mailbox.mark_stale();
                }
            }
            SupervisorMsg::Sweep => sweep(state),
            SupervisorMsg::Stats(reply) => {
                let _ = reply.send(stats(state));
            }
            SupervisorMsg::Drain(reply) => drain(state, reply),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(child, _, _) => {
                child_stopped(&myself, state, child.get_id(), None).await;
            }
            SupervisionEvent::ActorFailed(child, error) => {
                child_stopped(&myself, state, child.get_id(), Some(error.to_string())).await;
            }
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {}
        }
        Ok(())
    }
}

impl ConversationSupervisor {
    /// Spawns the supervisor under `supervisor` and returns the handle the edges use.
    pub async fn start(
        store: Arc<dyn Store>,
        agent: Arc<dyn Agent>,
        persistence: PersistenceHandle,
        clock: Arc<dyn Clock>,
        settings: ConversationSettings,
        supervisor: ractor::ActorCell,
    ) -> Result<ConversationsHandle, ractor::SpawnErr> {
        let intake = Arc::new(Semaphore::new(settings.intake_max.max(1)));
        let submit_timeout = settings.submit_timeout;
        let args = SupervisorArgs {
            store,
            agent,
            persistence,
            clock,
            settings,
            intake: intake.clone(),
        };
        let name = crate::persistence::unique_name("conversations");
        let (actor, _join) =
            Actor::spawn_linked(Some(name), ConversationSupervisor, args, supervisor).await?;
        Ok(ConversationsHandle {
            actor,
            intake,
            submit_timeout,
        })
    }
}

impl UserEntry {
    fn new() -> Self {
        Self {
            actor: None,
            mailbox: UserMailbox::new(),
            restarts: Vec::new(),
            cool_off_until: None,
        }
    }
}

async fn route(myself: &ActorRef<SupervisorMsg>, state: &mut SupervisorState, routed: Routed) {
    let Routed {
        inbound,
        accepted_at,
        done,
        _permit,
    } = routed;
    metrics::counter!(names::INBOUND_MESSAGES_TOTAL, "kind" => inbound.content.kind()).increment(1);
    let span = super::turn_span(&inbound);
    let message = Queued {
        inbound: Arc::new(inbound),
        accepted_at,
        done,
        span: span.clone(),
    };
    route_message(myself, state, message).instrument(span).await;
}

/// Routing of one message, in its `turn` span.
async fn route_message(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    message: Queued,
) {
    let user = message.inbound.user;
    if state.draining.is_some() {
        reject(state, message, TurnOutcome::ShuttingDown, RESTARTING_NOTICE);
        return;
    }
    let now = Instant::now();
    let entry = state.users.entry(user).or_insert_with(UserEntry::new);
    if let Some(until) = entry.cool_off_until {
        if now < until {
            reject(state, message, TurnOutcome::Unavailable, UNAVAILABLE_NOTICE);
            return;
        }
        entry.cool_off_until = None;
        entry.restarts.clear();
    }
    if entry.actor.is_none() {
        match spawn_child(myself, &state.shared, user, entry.mailbox.clone()).await {
            Ok(actor) => {
                state.children.insert(actor.get_id(), user);
                entry.actor = Some(actor);
            }
            Err(error) => {
                tracing::error!(user_id = %user, %error, "could not start a conversation actor");
                reject(state, message, TurnOutcome::Failed, APOLOGY);
                return;
            }
        }
    }
    // A message kept in the inbox is never turned away as "busy": it is already safe, and the
    // edge that accepted it does not ask the person to send it again.
    let max = if message.inbound.durable.is_some() {
        usize::MAX
    } else {
        state.shared.settings.mailbox_max
    };
    let (offer, depth) = entry.mailbox.offer(message, max);
    metrics::histogram!(names::CONVERSATION_MAILBOX_DEPTH).record(depth as f64);
    match offer {
        Offer::Wake => {
            if let Some(actor) = &entry.actor {
                // If the actor just died, the supervision event restarts it and wakes it.
                let _ = actor.cast(ConversationMsg::Wake);
            }
        }
        Offer::Queued => {}
        Offer::Full { message, notify } => {
            metrics::counter!(names::INBOUND_REJECTED_TOTAL, "reason" => "busy").increment(1);
            let reply = message.inbound.reply.clone();
            let chat = message.inbound.chat;
            let span = message.span.clone();
            message.finish(TurnOutcome::Busy);
            if notify {
                let timeout = state.shared.settings.reply_timeout;
                spawn_side_task(
                    &mut state.side_tasks,
                    notify_person(reply, chat, BUSY_NOTICE, timeout).instrument(span),
                );
            }
        }
    }
}

async fn spawn_child(
    myself: &ActorRef<SupervisorMsg>,
    shared: &Arc<Shared>,
    user: UserId,
    mailbox: Arc<UserMailbox>,
) -> Result<ActorRef<ConversationMsg>, ractor::SpawnErr> {
    let args = ConversationArgs {
        user,
        mailbox,
        shared: shared.clone(),
    };
    let (actor, _join) =
        Actor::spawn_linked(None, ConversationActor, args, myself.get_cell()).await?;
    metrics::gauge!(names::CONVERSATION_ACTORS_ACTIVE).increment(1.0);
    Ok(actor)
}

/// Answers a message without a turn: the outcome to a waiting caller, the notice to the person.
fn reject(
    state: &mut SupervisorState,
    message: Queued,
    outcome: TurnOutcome,
    notice: &'static str,
) {
    let reason = match outcome {
        TurnOutcome::Busy => "busy",
        TurnOutcome::Unavailable => "unavailable",
        TurnOutcome::ShuttingDown => "shutting_down",
        TurnOutcome::Failed | TurnOutcome::Answered => "failed",
    };
    metrics::counter!(names::INBOUND_REJECTED_TOTAL, "reason" => reason).increment(1);
    let inbound = message.inbound.clone();
    let span = message.span.clone();
    message.finish(outcome);
    let done = match (inbound.durable, outcome) {
        // Kept in the inbox: handled after the restart, nothing to send again.
        (Some(_), TurnOutcome::ShuttingDown) => return,
        (Some(_), _) => Some(Write::InboxDone {
            id: inbound.id,
            outcome: match outcome {
                TurnOutcome::Busy => InboxOutcome::Busy,
                TurnOutcome::Unavailable => InboxOutcome::Unavailable,
                _ => InboxOutcome::Failed,
            },
            replies: vec![notice.to_owned()],
            at: state.shared.clock.now(),
        }),
        (None, _) => None,
    };
    let timeout = state.shared.settings.reply_timeout;
    let persistence = state.shared.persistence.clone();
    let task = async move {
        notify_person(inbound.reply.clone(), inbound.chat, notice, timeout).await;
        if let Some(done) = done {
            if let Err(error) = persistence.write(vec![done]).await {
                tracing::error!(user_id = %inbound.user, %error, "an inbox entry could not be marked done");
            }
        }
    };
    spawn_side_task(&mut state.side_tasks, task.instrument(span));
}

fn spawn_side_task(
    tasks: &mut JoinSet<()>,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) {
    while tasks.try_join_next().is_some() {}
    tasks.spawn(task);
}

async fn notify_person(reply: Arc<dyn Outbox>, chat: ChatId, text: &str, timeout: Duration) {
    match tokio::time::timeout(timeout, reply.send_text(chat, text)).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => count_outbox_error("notice", &error),
        Err(_) => count_outbox_error("notice", &crate::ports::OutboxError::Timeout),
    }
}

/// A child stopped (`failure: None`) or failed. Applies the policy written in the module docs.
async fn child_stopped(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    child: ActorId,
    failure: Option<String>,
) {
    let Some(user) = state.children.remove(&child) else {
        return;
    };
    metrics::gauge!(names::CONVERSATION_ACTORS_ACTIVE).decrement(1.0);
    let current = state.users.get(&user).is_some_and(|entry| {
        entry
            .actor
            .as_ref()
            .is_some_and(|actor| actor.get_id() == child)
    });
    if current {
        if let Some(entry) = state.users.get(&user) {
            entry.mailbox.mark_stopped();
        }
        match failure {
            Some(reason) => child_failed(myself, state, user, reason).await,
            None => {
                if let Some(entry) = state.users.get_mut(&user) {
                    entry.actor = None;
                }
                if state.draining.is_none() {
                    restart_if_needed(myself, state, user).await;
                }
            }
        }
    } else if let Some(reason) = failure {
        tracing::warn!(user_id = %user, %reason, "a passivated conversation actor failed while stopping");
    }
    finish_drain_when_done(state);
}

async fn child_failed(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    user: UserId,
    reason: String,
) {
    let settings = &state.shared.settings;
    let now = Instant::now();
    let Some(entry) = state.users.get_mut(&user) else {
        return;
    };
    entry.actor = None;
    entry
        .restarts
        .retain(|at| now.saturating_duration_since(*at) < settings.restart_window);
    entry.restarts.push(now);
    let cooling = entry.restarts.len() > settings.max_restarts as usize;
    let failed = entry.mailbox.take_in_flight();
    let span = failed
        .as_ref()
        .map_or_else(tracing::Span::none, |message| message.span.clone());
    span.in_scope(|| {
        tracing::error!(user_id = %user, %reason, restarts = entry.restarts.len(), cooling,
            "a conversation failed while handling a message");
    });
    let mut unavailable = Vec::new();
    if cooling && state.draining.is_none() {
        entry.cool_off_until = Some(now + settings.cool_off);
        unavailable = entry.mailbox.drain_queued();
        metrics::counter!(names::CONVERSATION_COOL_OFFS_TOTAL).increment(1);
    }
    if let Some(message) = failed {
        record_failure(
            state,
            message,
            &reason,
            if cooling { UNAVAILABLE_NOTICE } else { APOLOGY },
        );
    }
    for message in unavailable {
        reject(state, message, TurnOutcome::Unavailable, UNAVAILABLE_NOTICE);
    }
    if !cooling && state.draining.is_none() {
        metrics::counter!(names::CONVERSATION_RESTARTS_TOTAL).increment(1);
        restart(myself, state, user).await;
    }
}

/// Apology (or unavailable notice) to the person and the dead letter, from a side task.
fn record_failure(
    state: &mut SupervisorState,
    message: Queued,
    reason: &str,
    notice: &'static str,
) {
    metrics::counter!(names::DEAD_LETTERS_TOTAL).increment(1);
    let inbound = message.inbound.clone();
    let span = message.span.clone();
    message.finish(TurnOutcome::Failed);
    let letter = DeadLetter {
        // Derived from the message id: recording the same failure twice keeps one row.
        id: uuid::Uuid::new_v5(&inbound.id, b"dead-letter"),
        user_id: inbound.user,
        message: inbound.to_json(),
        error: reason.to_owned(),
        created_at: state.shared.clock.now(),
    };
    let failed_at = letter.created_at;
    let persistence = state.shared.persistence.clone();
    let store = state.shared.store.clone();
    let timeout = state.shared.settings.reply_timeout;
    let task = async move {
        let notice = if notice == APOLOGY && inbound.durable.is_some() {
            // The steps the turn committed are in the inbox entry: say what was kept.
            match store.inbox_entry(inbound.id).await {
                Ok(Some(record)) => apology(record.entry.steps, &record.entry.kept),
                Ok(None) => APOLOGY.to_owned(),
                Err(error) => {
                    tracing::warn!(user_id = %inbound.user, %error, "could not read what a failed turn kept");
                    PARTLY_SAVED_APOLOGY.to_owned()
                }
            }
        } else {
            notice.to_owned()
        };
        notify_person(inbound.reply.clone(), inbound.chat, &notice, timeout).await;
        let mut writes = vec![Write::InsertDeadLetter(letter)];
        if inbound.durable.is_some() {
            // Done as failed, with the dead letter: a message that fails is not replayed.
            writes.push(Write::InboxDone {
                id: inbound.id,
                outcome: InboxOutcome::Failed,
                replies: vec![notice],
                at: failed_at,
            });
        }
        if let Err(error) = persistence.write(writes).await {
            tracing::error!(user_id = %inbound.user, %error, "a dead letter could not be recorded");
        }
    };
    spawn_side_task(&mut state.side_tasks, task.instrument(span));
}

/// A child that stopped for another reason than idleness while messages wait is started again.
async fn restart_if_needed(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    user: UserId,
) {
    let waiting = state
        .users
        .get(&user)
        .is_some_and(|entry| entry.mailbox.depth() > 0);
    if waiting {
        restart(myself, state, user).await;
    }
}

/// Spawns a fresh actor for `user` (it reloads its state from the store at its first turn) and
/// wakes it if messages wait.
async fn restart(myself: &ActorRef<SupervisorMsg>, state: &mut SupervisorState, user: UserId) {
    let Some(entry) = state.users.get_mut(&user) else {
        return;
    };
    match spawn_child(myself, &state.shared, user, entry.mailbox.clone()).await {
        Ok(actor) => {
            state.children.insert(actor.get_id(), user);
            if entry.mailbox.reschedule() {
                let _ = actor.cast(ConversationMsg::Wake);
            }
            entry.actor = Some(actor);
        }
        Err(error) => {
            tracing::error!(user_id = %user, %error, "could not restart a conversation actor");
            let queued = entry.mailbox.drain_queued();
            for message in queued {
                reject(state, message, TurnOutcome::Failed, APOLOGY);
            }
        }
    }
}

fn sweep(state: &mut SupervisorState) {
    while state.side_tasks.try_join_next().is_some() {}
    if state.draining.is_some() {
        return;
    }
    let now = Instant::now();
    let settings = &state.shared.settings;
    let mut forget = Vec::new();
    for (user, entry) in &state.users {
        match (&entry.actor, entry.cool_off_until) {
            (_, Some(until)) if now < until => {}
            (Some(actor), _) => {
                if entry.mailbox.is_idle(now, settings.idle) {
                    actor.stop(Some("idle".into()));
                    metrics::counter!(names::CONVERSATION_PASSIVATIONS_TOTAL).increment(1);
                    forget.push(*user);
                }
            }
            (None, _) => {
                if entry.mailbox.depth() == 0 {
                    forget.push(*user);
                }
            }
        }
    }
    for user in forget {
        state.users.remove(&user);
    }
}

fn stats(state: &SupervisorState) -> ConversationStats {
    let now = Instant::now();
    ConversationStats {
        active_actors: state.children.len(),
        tracked_users: state.users.len(),
        cooling_off: state
            .users
            .values()
            .filter(|e| e.cool_off_until.is_some_and(|until| now < until))
            .count(),
        queued_messages: state.users.values().map(|e| e.mailbox.depth()).sum(),
    }
}

fn drain(state: &mut SupervisorState, reply: RpcReplyPort<DrainReport>) {
    state.intake.close();
    let mut report = DrainReport::default();
    let mut interrupted = Vec::new();
    for entry in state.users.values() {
        interrupted.extend(entry.mailbox.drain_queued());
        if let Some(actor) = &entry.actor {
            // Handled after the current turn: a stop request goes before queued messages.
            actor.stop(Some("shutdown".into()));
        }
    }
    report.interrupted = interrupted.len();
    for message in interrupted {
        reject(state, message, TurnOutcome::ShuttingDown, RESTARTING_NOTICE);
    }
    state.draining = Some(Draining {
        reply: Some(reply),
        report,
    });
    finish_drain_when_done(state);
}

/// Answers the drain once no child is left and the side tasks are done.
fn finish_drain_when_done(state: &mut SupervisorState) {
    if !state.children.is_empty() {
        return;
    }
    let Some(draining) = state.draining.as_mut() else {
        return;
    };
    let Some(reply) = draining.reply.take() else {
        return;
    };
    let report = draining.report;
    let mut side_tasks = std::mem::take(&mut state.side_tasks);
    tokio::spawn(async move {
        while side_tasks.join_next().await.is_some() {}
        let _ = reply.send(report);
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::domain::{ChatId, Role};
    use crate::inbound::Inbound;
    use crate::ports::SystemClock;
    use crate::root::{Root, RootArgs, RootHandle, RootSettings};
    use crate::testing::{EchoAgent, MemoryStore, RecordingOutbox};

    const WAIT: Duration = Duration::from_secs(10);

    struct Tree {
        root: RootHandle,
        store: Arc<MemoryStore>,
        agent: Arc<EchoAgent>,
        outbox: Arc<RecordingOutbox>,
    }

    async fn start(settings: ConversationSettings) -> Tree {
        let store = Arc::new(MemoryStore::new());
        let agent = EchoAgent::new();
        let outbox = RecordingOutbox::new();
        let settings = RootSettings {
            conversation: settings,
            ..RootSettings::default()
        };
        let root = Root::start(RootArgs {
            store: store.clone(),
            agent: agent.clone(),
            clock: Arc::new(SystemClock),
            settings,
            vision: crate::vision::VisionArgs::default(),
        })
        .await
        .expect("the tree starts");
        Tree {
            root,
            store,
            agent,
            outbox,
        }
    }

    impl Tree {
        fn message(&self, user: i64, text: &str) -> Inbound {
            Inbound::text(UserId(user), ChatId(user), text, self.outbox.clone())
        }

        async fn send(&self, user: i64, text: &str) {
            self.root
                .conversations()
                .submit(self.message(user, text))
                .await
                .expect("accepted");
        }

        async fn ask(&self, user: i64, text: &str) -> TurnOutcome {
            let message = self.message(user, text);
            self.root
                .conversations()
                .submit_and_wait(message, WAIT)
                .await
                .expect("answered")
        }

        async fn wait_for_text(&self, user: i64, text: &str) -> bool {
            let chat = ChatId(user);
            self.outbox
                .wait_until(WAIT, |sent| {
                    sent.iter()
                        .any(|s| s.chat() == chat && s.text() == Some(text))
                })
                .await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_persons_messages_are_handled_in_order_under_concurrency() {
        let tree = start(ConversationSettings {
            mailbox_max: 64,
            ..Default::default()
        })
        .await;
        let users = 40;
        let per_user = 25;
        let mut senders = Vec::new();
        for lane in 0..4 {
            let handle = tree.root.conversations();
            let outbox = tree.outbox.clone();
            senders.push(tokio::spawn(async move {
                for n in 0..per_user {
                    for user in (lane..users).step_by(4) {
                        let inbound = Inbound::text(
                            UserId(user),
                            ChatId(user),
                            format!("m{n}"),
                            outbox.clone(),
                        );
                        handle.submit(inbound).await.expect("accepted");
                    }
                }
            }));
        }
        for sender in senders {
            sender.await.expect("sender finished");
        }
        let total = (users * per_user) as usize;
        assert!(
            tree.outbox
                .wait_until(WAIT, |sent| sent.len() == total)
                .await,
            "every message answered"
        );
        for user in 0..users {
            // The agent sees at most `history_limit` messages: 10 of the person's.
            let expected: Vec<String> = (0..per_user)
                .map(|n| format!("echo {}: m{n}", n.min(10)))
                .collect();
            assert_eq!(
                tree.outbox.texts_to(ChatId(user)),
                expected,
                "order of person {user}"
            );
        }
        let stored = tree.store.wait_until(WAIT, |data| {
            data.messages.values().map(Vec::len).sum::<usize>() == total * 2
        });
        assert!(stored.await, "every message and answer recorded");
        tree.root.shutdown(WAIT).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_person_does_not_delay_another() {
        let tree = start(ConversationSettings::default()).await;
        tree.send(1, "block").await;
        assert!(tree.agent.wait_started(WAIT, UserId(1), "block").await);
        assert_eq!(tree.ask(2, "hello").await, TurnOutcome::Answered);
        assert!(tree.wait_for_text(2, "echo 0: hello").await);
        assert!(
            tree.outbox.texts_to(ChatId(1)).is_empty(),
            "the slow turn is still running"
        );
        tree.agent.release(1);
        assert!(tree.wait_for_text(1, "echo 0: block").await);
        tree.root.shutdown(WAIT).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_gets_an_apology_a_dead_letter_and_a_restart_with_state() {
        let tree = start(ConversationSettings::default()).await;
        assert_eq!(tree.ask(7, "hello").await, TurnOutcome::Answered);
        // A queued message behind the panicking one survives the restart.
        tree.send(7, "block").await;
        assert!(tree.agent.wait_started(WAIT, UserId(7), "block").await);
        tree.send(7, "panic").await;
        tree.send(7, "after").await;
        tree.agent.release(1);
        assert!(
            tree.wait_for_text(7, APOLOGY).await,
            "the person gets an apology"
        );
        assert!(
            tree.wait_for_text(7, "echo 2: after").await,
            "restarted with the history reloaded"
        );
        let letters = tree
            .store
            .wait_until(WAIT, |data| data.dead_letters.len() == 1)
            .await;
        assert!(letters, "the message is a dead letter");
        let letter = tree
            .store
            .snapshot()
            .dead_letters
            .into_values()
            .next()
            .expect("one letter");
        assert_eq!(letter.user_id, UserId(7));
        assert_eq!(letter.message["content"]["text"], "panic");
        assert!(letter.error.contains("told to panic"), "{}", letter.error);
        // Other people are not affected.
        assert_eq!(tree.ask(8, "hi").await, TurnOutcome::Answered);
        let stats = tree.root.conversations().stats().await.expect("stats");
        assert_eq!(stats.active_actors, 2);
        let history = tree.store.snapshot().messages[&UserId(7)].clone();
        let said: Vec<&str> = history
            .iter()
            .filter(|m| m.role == Role::User)
            .map(|m| m.content.as_str())
            .collect();
        assert_eq!(said, ["hello", "block", "after"]);
        tree.root.shutdown(WAIT).await;
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_failures_put_only_that_person_in_cool_off() {
        let settings = ConversationSettings {
            max_restarts: 3,
            restart_window: Duration::from_secs(10),
            cool_off: Duration::from_secs(60),
            ..Default::default()
        };
        let tree = start(settings).await;
        for _ in 0..3 {
            assert_eq!(tree.ask(5, "fail").await, TurnOutcome::Failed);
        }
        assert_eq!(tree.ask(5, "fail").await, TurnOutcome::Failed);
        assert!(tree.wait_for_text(5, UNAVAILABLE_NOTICE).await);
        assert_eq!(
            tree.outbox
                .texts_to(ChatId(5))
                .iter()
                .filter(|t| *t == APOLOGY)
                .count(),
            3
        );
        assert_eq!(tree.ask(5, "hello").await, TurnOutcome::Unavailable);
        assert_eq!(
            tree.ask(6, "hello").await,
            TurnOutcome::Answered,
            "others are served"
        );
        let stats = tree.root.conversations().stats().await.expect("stats");
        assert_eq!(stats.cooling_off, 1);
        assert!(
            tree.store
                .wait_until(WAIT, |data| data.dead_letters.len() == 4)
                .await
        );
        // Paused time: this returns as soon as nothing else can run, with the clock moved on.
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(
            tree.ask(5, "hello").await,
            TurnOutcome::Answered,
            "back after the cool-off"
        );
        tree.root.shutdown(WAIT).await;
    }

    #[tokio::test(start_paused = true)]
    async fn idle_actors_are_passivated_and_respawn_with_their_state() {
        let settings = ConversationSettings {
            idle: Duration::from_secs(60),
            ..Default::default()
        };
        let tree = start(settings).await;
        assert_eq!(tree.ask(3, "hello").await, TurnOutcome::Answered);
        let handle = tree.root.conversations();
        assert_eq!(handle.stats().await.expect("stats").active_actors, 1);
        let passivated = crate::testing::eventually(Duration::from_secs(120), || async {
            handle
                .stats()
                .await
                .is_ok_and(|stats| stats.active_actors == 0 && stats.tracked_users == 0)
        });
        assert!(passivated.await, "the idle actor stops");
        assert_eq!(tree.ask(3, "again").await, TurnOutcome::Answered);
        assert!(
            tree.wait_for_text(3, "echo 1: again").await,
            "the history was reloaded"
        );
        tree.root.shutdown(WAIT).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flooding_person_is_asked_to_wait_past_the_mailbox_bound() {
        let tree = start(ConversationSettings {
            mailbox_max: 2,
            ..Default::default()
        })
        .await;
        tree.send(9, "block").await;
        assert!(tree.agent.wait_started(WAIT, UserId(9), "block").await);
        tree.send(9, "one").await;
        tree.send(9, "two").await;
        let handle = tree.root.conversations();
        let third = handle.submit_and_wait(tree.message(9, "three"), WAIT).await;
        assert_eq!(third, Ok(TurnOutcome::Busy));
        let fourth = handle.submit_and_wait(tree.message(9, "four"), WAIT).await;
        assert_eq!(fourth, Ok(TurnOutcome::Busy));
        assert!(tree.wait_for_text(9, BUSY_NOTICE).await);
        tree.agent.release(1);
        assert!(tree.wait_for_text(9, "echo 2: two").await);
        let texts = tree.outbox.texts_to(ChatId(9));
        assert_eq!(
            texts.iter().filter(|t| *t == BUSY_NOTICE).count(),
            1,
            "one notice per turn: {texts:?}"
        );
        assert!(!texts.iter().any(|t| t.contains("three")));
        tree.root.shutdown(WAIT).await;
    }

    /// Answers with the person's time zone; the first message waits for a signal.
    struct TimeZoneAgent {
        release: tokio::sync::Notify,
        started: tokio::sync::Notify,
    }

    #[async_trait::async_trait]
    impl Agent for TimeZoneAgent {
        async fn handle(
            &self,
            ctx: &mut crate::conversation::TurnContext<'_>,
            inbound: &Inbound,
        ) -> Result<(), crate::conversation::AgentError> {
            if inbound.content.to_history_text() == "wait" {
                self.started.notify_one();
                self.release.notified().await;
            }
            let zone = ctx.user().timezone.clone();
            let _ = ctx.reply(zone).await;
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_made_elsewhere_is_seen_by_the_next_turn() {
        let store = Arc::new(MemoryStore::new());
        let person = crate::domain::User::new(UserId(3), chrono::Utc::now());
        store.apply(&[Write::UpsertUser(person)]).await.unwrap();
        let outbox = RecordingOutbox::new();
        let agent = Arc::new(TimeZoneAgent {
            release: tokio::sync::Notify::new(),
            started: tokio::sync::Notify::new(),
        });
        let root = Root::start(RootArgs {
            store: store.clone(),
            agent: agent.clone(),
            clock: Arc::new(SystemClock),
            settings: RootSettings::default(),
            vision: crate::vision::VisionArgs::default(),
        })
        .await
        .expect("the tree starts");
        let handle = root.conversations();
        let started = agent.started.notified();
        handle
            .submit(Inbound::text(UserId(3), ChatId(3), "wait", outbox.clone()))
            .await
            .unwrap();
        started.await;
        // While the first turn runs (the person's data loaded), the API changes the time zone.
        let mut user = store.user(UserId(3)).await.unwrap().expect("stored");
        user.timezone = "Europe/Paris".into();
        store.apply(&[Write::UpsertUser(user)]).await.unwrap();
        handle.refresh(UserId(3));
        let next = Inbound::text(UserId(3), ChatId(3), "and now?", outbox.clone());
        let answered = handle.submit_and_wait(next, WAIT);
        agent.release.notify_one();
        assert_eq!(answered.await, Ok(TurnOutcome::Answered));
        let texts = outbox.texts_to(ChatId(3));
        assert_eq!(
            texts.last().map(String::as_str),
            Some("Europe/Paris"),
            "{texts:?}"
        );
        root.shutdown(WAIT).await;
    }

    /// Takes `seconds` to answer.
    struct SlowAgent {
        seconds: u64,
    }

    #[async_trait::async_trait]
    impl Agent for SlowAgent {
        async fn handle(
            &self,
            ctx: &mut crate::conversation::TurnContext<'_>,
            _inbound: &Inbound,
        ) -> Result<(), crate::conversation::AgentError> {
            tokio::time::sleep(Duration::from_secs(self.seconds)).await;
            let _ = ctx.reply("done").await;
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_turn_keeps_showing_typing_and_a_short_one_does_not() {
        let outbox = RecordingOutbox::new();
        let typing = |outbox: &RecordingOutbox| {
            outbox
                .sent()
                .iter()
                .filter(|sent| matches!(sent, crate::testing::Sent::Typing { .. }))
                .count()
        };
        for (seconds, expected) in [(1, 0), (20, 4)] {
            let root = Root::start(RootArgs {
                store: Arc::new(MemoryStore::new()),
                agent: Arc::new(SlowAgent { seconds }),
                clock: Arc::new(SystemClock),
                settings: RootSettings::default(),
                vision: crate::vision::VisionArgs::default(),
            })
            .await
            .expect("the tree starts");
            let before = typing(&outbox);
            let message = Inbound::text(UserId(4), ChatId(4), "hello", outbox.clone());
            let outcome = root
                .conversations()
                .submit_and_wait(message, WAIT * 10)
                .await;
            assert_eq!(outcome, Ok(TurnOutcome::Answered));
            tokio::task::yield_now().await;
            // 20 s of work: "typing..." again at 4.5, 9, 13.5 and 18 s.
            assert_eq!(typing(&outbox) - before, expected, "a {seconds} s turn");
            root.shutdown(WAIT).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_outbox_failure_does_not_stop_the_conversation() {
        let tree = start(ConversationSettings::default()).await;
        tree.outbox.set_failing(true);
        assert_eq!(tree.ask(4, "lost").await, TurnOutcome::Answered);
        tree.outbox.set_failing(false);
        assert_eq!(tree.ask(4, "hello").await, TurnOutcome::Answered);
        // The undelivered answer is not in the history; the person's message is.
        assert!(tree.wait_for_text(4, "echo 1: hello").await);
        tree.root.shutdown(WAIT).await;
    }
}
