//! The root supervisor: starts the actor tree, hands out its handles, and shuts it down in order.
//!
//! **Owns** the three top actors: the persistence actor, the vision coordinator and the
//! conversation supervisor, all spawned with `spawn_linked` (a later issue adds the scheduler).
//! **Supervised by** no actor: the application holds its [`RootHandle`]. **Talks to** its children
//! only.
//!
//! Written policy (`handle_supervisor_evt`):
//! - the **vision branch** (the coordinator, with its agents and the photos in flight) that fails
//!   or stops outside a shutdown is restarted with the same models, and the [`VisionHandle`]
//!   follows it. Photos in flight at that moment went down with it: their senders get
//!   [`crate::vision::VisionError::Interrupted`], whose text asks the person to send the photo
//!   again (never silence, never a hang); a photo sent during the restart waits for the new
//!   coordinator. More than `vision.max_restarts` failures within `vision.restart_window` (the
//!   bound the conversation supervisor puts on a person's actor) are escalated as below.
//! - **persistence** or the **conversation supervisor** failing or stopping outside a shutdown is
//!   a bug the tree cannot repair (handles point at them), so the root escalates: it drains the
//!   conversations, flushes persistence, stops the vision branch, stops, and
//!   [`RootHandle::stopped`] resolves with the reason so the application exits non-zero and its
//!   supervisor (systemd, docker) restarts it.
//!
//! Shutdown order ([`RootHandle::shutdown`]): stop intake → let conversations finish their
//! current message (a photo among them is still analysed) → stop the vision branch → flush
//! persistence → stop.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::conversation::supervisor::ConversationSupervisor;
use crate::conversation::{Agent, ConversationSettings, ConversationsHandle};
use crate::persistence::{PersistenceActor, PersistenceHandle, PersistenceSettings};
use crate::ports::{Clock, Store};
use crate::vision::coordinator::CoordinatorMsg;
use crate::vision::{VisionArgs, VisionCoordinator, VisionHandle, VisionSettings};

pub enum RootMsg {
    /// The handles of the children, for [`Root::start`].
    Handles(RpcReplyPort<(ConversationsHandle, PersistenceHandle)>),
    /// The ordered shutdown, within `deadline`.
    Shutdown {
        deadline: Duration,
        reply: RpcReplyPort<ShutdownReport>,
    },
}

/// Everything the core needs from the application.
pub struct RootArgs {
    pub store: Arc<dyn Store>,
    pub agent: Arc<dyn Agent>,
    pub clock: Arc<dyn Clock>,
    pub settings: RootSettings,
    /// The vision models (one agent each) and the handle the conversations' agent may already
    /// hold; [`VisionArgs::default`] when photo analysis is not configured.
    pub vision: VisionArgs,
}

/// The settings of every actor under the root.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RootSettings {
    pub conversation: ConversationSettings,
    pub persistence: PersistenceSettings,
    pub vision: VisionSettings,
}

pub struct RootState {
    conversations: ConversationsHandle,
    persistence: PersistenceHandle,
    vision: VisionBranch,
    settings: RootSettings,
    shutting_down: bool,
    stopped: watch::Sender<Option<String>>,
}

/// What the shutdown achieved; logged by the application.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Messages not started before shutdown (their senders were asked to send them again).
    pub interrupted_messages: usize,
    /// Conversations still busy when their share of the deadline ran out.
    pub conversations_timed_out: bool,
    pub written_rows: usize,
    /// Accepted rows that could not be written before the deadline (also logged as an error).
    pub abandoned_rows: usize,
    /// The persistence flush could not even report (it is counted as abandoned).
    pub persistence_unresponsive: bool,
}

/// The vision coordinator running now, what it is restarted from, and its recent failures.
struct VisionBranch {
    args: VisionArgs,
    coordinator: ActorRef<CoordinatorMsg>,
    /// Failures within `vision.restart_window`.
    restarts: Vec<Instant>,
}

pub struct Root;

impl Actor for Root {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = (RootArgs, watch::Sender<Option<String>>);

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (args, stopped): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let RootArgs {
            store,
            agent,
            clock,
            settings,
            vision,
        } = args;
        let persistence = PersistenceActor::start(
            store.clone(),
            settings.persistence.clone(),
            Some(myself.get_cell()),
        )
        .await?;
        // Before the conversations: their agent may send photos from the first message on.
        let coordinator =
            VisionCoordinator::start(&vision, &settings.vision, myself.get_cell()).await?;
        let conversations = ConversationSupervisor::start(
            store,
            agent,
            persistence.clone(),
            clock,
            settings.conversation.clone(),
            myself.get_cell(),
        )
        .await?;
        Ok(RootState {
            conversations,
            persistence,
            vision: VisionBranch {
                args: vision,
                coordinator,
                restarts: Vec::new(),
            },
            settings,
            shutting_down: false,
            stopped,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state
            .conversations
            .actor()
            .stop(Some("root stopped".into()));
        state.persistence.actor().stop(Some("root stopped".into()));
        state.vision.args.detach();
        state.vision.coordinator.stop(Some("root stopped".into()));
        state.stopped.send_if_modified(|reason| {
            let unset = reason.is_none();
            if unset {
                *reason = Some("stopped".into());
            }
            unset
        });
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RootMsg::Handles(reply) => {
                let _ = reply.send((state.conversations.clone(), state.persistence.clone()));
            }
            RootMsg::Shutdown { deadline, reply } => {
                let report = shutdown_in_order(state, deadline).await;
                state.stopped.send_replace(Some("shutdown".into()));
                let _ = reply.send(report);
                myself.stop(Some("shutdown".into()));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (child, reason) = match event {
            SupervisionEvent::ActorFailed(child, error) => (
                child.get_id(),
                format!("{} failed: {error}", child.get_name().unwrap_or_default()),
            ),
            SupervisionEvent::ActorTerminated(child, _, reason) => (
                child.get_id(),
                format!(
                    "{} stopped: {}",
                    child.get_name().unwrap_or_default(),
                    reason.unwrap_or_default()
                ),
            ),
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {
                return Ok(())
            }
        };
        if state.shutting_down {
            return Ok(());
        }
        if child == state.vision.coordinator.get_id() {
            restart_vision(&myself, state, reason).await;
        } else {
            escalate(&myself, state, reason).await;
        }
        Ok(())
    }
}

/// Starts the tree and returns its handle.
impl Root {
    pub async fn start(args: RootArgs) -> Result<RootHandle, StartError> {
        let (stopped_sender, stopped) = watch::channel(None);
        let vision = args.vision.handle();
        let name = crate::persistence::unique_name("root");
        let (root, _join) = Actor::spawn(Some(name), Root, (args, stopped_sender))
            .await
            .map_err(|error| StartError(error.to_string()))?;
        let handles = root
            .call(RootMsg::Handles, Some(Duration::from_secs(5)))
            .await;
        match handles {
            Ok(ractor::rpc::CallResult::Success((conversations, persistence))) => Ok(RootHandle {
                root,
                conversations,
                persistence,
                vision,
                stopped,
            }),
            _ => {
                root.stop(None);
                Err(StartError(
                    "the actor tree did not answer after starting".into(),
                ))
            }
        }
    }
}

/// The actor tree could not start.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the actor core could not start: {0}")]
pub struct StartError(pub String);

/// What the application holds: the way in for messages, and the shutdown.
pub struct RootHandle {
    root: ActorRef<RootMsg>,
    conversations: ConversationsHandle,
    persistence: PersistenceHandle,
    vision: VisionHandle,
    stopped: watch::Receiver<Option<String>>,
}

impl RootHandle {
    /// Where the edges submit messages (cloneable).
    pub fn conversations(&self) -> ConversationsHandle {
        self.conversations.clone()
    }

    /// Writes from outside a conversation (the HTTP API's direct endpoints).
    pub fn persistence(&self) -> PersistenceHandle {
        self.persistence.clone()
    }

    /// Where photos go (cloneable; it follows the vision coordinator across restarts).
    /// [`VisionHandle::agents`] is 0 when no vision model is configured.
    pub fn vision(&self) -> VisionHandle {
        self.vision.clone()
    }

    /// Resolves when the tree has stopped: after [`RootHandle::shutdown`], or by itself after a
    /// failure it escalated (the reason says which).
    pub async fn stopped(&self) -> String {
        let mut stopped = self.stopped.clone();
        let reason = match stopped.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "stopped".into(),
        };
        reason
    }

    /// Stops intake, lets conversations finish their current message, flushes persistence and
    /// stops, all within `deadline` (conversations get at most half of it).
    pub async fn shutdown(self, deadline: Duration) -> ShutdownReport {
        let grace = deadline + Duration::from_secs(2);
        match self
            .root
            .call(|reply| RootMsg::Shutdown { deadline, reply }, Some(grace))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(report)) => report,
            _ => {
                tracing::error!("the actor tree did not shut down in time; stopping it");
                self.root.stop(Some("shutdown timed out".into()));
                ShutdownReport {
                    persistence_unresponsive: true,
                    ..ShutdownReport::default()
                }
            }
        }
    }
}

async fn shutdown_in_order(state: &mut RootState, deadline: Duration) -> ShutdownReport {
    state.shutting_down = true;
    let started = Instant::now();
    let mut report = ShutdownReport::default();
    match state.conversations.drain(deadline / 2).await {
        Ok(drained) => report.interrupted_messages = drained.interrupted,
        Err(error) => {
            tracing::warn!(%error, "conversations did not finish in time; flushing what was accepted");
            report.conversations_timed_out = true;
        }
    }
    // No conversation is left to send a photo.
    state.vision.args.detach();
    state.vision.coordinator.stop(Some("shutdown".into()));
    let remaining = deadline
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(100));
    match state.persistence.shutdown(remaining).await {
        Ok(flushed) => {
            report.written_rows = flushed.written_rows;
            report.abandoned_rows = flushed.abandoned_rows;
        }
        Err(error) => {
            tracing::error!(%error, queued_rows = state.persistence.queued_rows(),
                "the persistence actor did not report its shutdown flush");
            report.persistence_unresponsive = true;
            report.abandoned_rows = state.persistence.queued_rows();
        }
    }
    state.conversations.actor().stop(Some("shutdown".into()));
    tracing::info!(?report, elapsed = ?started.elapsed(), "actor core shut down");
    report
}

/// The vision coordinator failed or stopped outside a shutdown: restart it, unless it failed more
/// than `max_restarts` times within `restart_window` (or cannot start again): then escalate.
async fn restart_vision(myself: &ActorRef<RootMsg>, state: &mut RootState, reason: String) {
    let settings = &state.settings.vision;
    let now = Instant::now();
    let restarts = &mut state.vision.restarts;
    restarts.retain(|at| now.saturating_duration_since(*at) < settings.restart_window);
    restarts.push(now);
    let failures = restarts.len();
    if failures > settings.max_restarts as usize {
        let reason = format!(
            "the vision branch failed {failures} times within {:?}; last: {reason}",
            settings.restart_window
        );
        escalate(myself, state, reason).await;
        return;
    }
    tracing::error!(%reason, failures,
        "the vision branch failed; restarting it (photos in flight are asked to be sent again)");
    let started = VisionCoordinator::start(&state.vision.args, settings, myself.get_cell()).await;
    match started {
        Ok(coordinator) => state.vision.coordinator = coordinator,
        Err(error) => {
            let reason = format!("the vision branch could not restart: {error}");
            escalate(myself, state, reason).await;
        }
    }
}

/// A child died outside a shutdown: save what can be saved, then stop with the reason.
async fn escalate(myself: &ActorRef<RootMsg>, state: &mut RootState, reason: String) {
    tracing::error!(%reason, "a top-level actor stopped; shutting the actor core down");
    let deadline = state.settings.persistence.shutdown_deadline;
    shutdown_in_order(state, deadline).await;
    state.stopped.send_replace(Some(reason.clone()));
    myself.stop(Some(reason));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{SubmitError, TurnOutcome, RESTARTING_NOTICE};
    use crate::domain::{ChatId, Role, UserId};
    use crate::inbound::Inbound;
    use crate::ports::SystemClock;
    use crate::testing::{EchoAgent, MemoryStore, RecordingOutbox};
    use crate::vision::scripted::{photo, Scripted};
    use crate::vision::{PhotoEstimate, VisionError, VisionModel, INTERRUPTED_NOTICE};
    use std::sync::atomic::Ordering;

    const WAIT: Duration = Duration::from_secs(10);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_finishes_current_turns_answers_the_rest_and_flushes_everything_accepted() {
        let store = Arc::new(MemoryStore::new());
        let agent = EchoAgent::new();
        let outbox = RecordingOutbox::new();
        let settings = RootSettings::default();
        let root = Root::start(RootArgs {
            store: store.clone(),
            agent: agent.clone(),
            clock: Arc::new(SystemClock),
            settings,
            vision: crate::vision::VisionArgs::default(),
        })
        .await
        .expect("starts");
        let conversations = root.conversations();
        let message =
            |user: i64, text: &str| Inbound::text(UserId(user), ChatId(user), text, outbox.clone());
        for user in 10..20 {
            conversations
                .submit(message(user, "hello"))
                .await
                .expect("accepted");
        }
        conversations
            .submit(message(1, "block"))
            .await
            .expect("accepted");
        assert!(agent.wait_started(WAIT, UserId(1), "block").await);
        let queued = conversations.clone();
        let queued_message = message(1, "queued");
        let queued =
            tokio::spawn(async move { queued.submit_and_wait(queued_message, WAIT).await });
        // It waits in the mailbox behind "block" before the shutdown begins.
        let deadline = Instant::now() + WAIT;
        while conversations.stats().await.map(|s| s.queued_messages) != Ok(1) {
            assert!(Instant::now() < deadline, "the queued message is routed");
            tokio::task::yield_now().await;
        }
        assert!(
            outbox
                .wait_until(WAIT, |sent| sent
                    .iter()
                    .filter(|s| s.text().is_some_and(|t| t.starts_with("echo")))
                    .count()
                    == 10)
                .await,
            "the other people are answered"
        );

        let shutdown = tokio::spawn(root.shutdown(WAIT));
        assert_eq!(queued.await.expect("joined"), Ok(TurnOutcome::ShuttingDown));
        // The notice follows the outcome (from a side task of the supervisor).
        assert!(
            outbox
                .wait_until(WAIT, |sent| sent.iter().any(
                    |s| s.chat() == ChatId(1) && s.text() == Some(RESTARTING_NOTICE)
                ))
                .await
        );
        assert!(outbox
            .texts_to(ChatId(1))
            .contains(&RESTARTING_NOTICE.to_owned()));
        agent.release(1);
        let report = shutdown.await.expect("joined");
        assert_eq!(report.interrupted_messages, 1);
        assert_eq!(report.abandoned_rows, 0);
        assert!(!report.conversations_timed_out);
        assert!(
            outbox
                .texts_to(ChatId(1))
                .contains(&"echo 0: block".to_owned()),
            "the current turn finished"
        );

        // Every accepted write is stored: 11 users created, 11 turns with two messages each.
        let data = store.snapshot();
        assert_eq!(data.users.len(), 11);
        let messages: usize = data.messages.values().map(Vec::len).sum();
        assert_eq!(messages, 22);
        assert!(data.messages[&UserId(1)]
            .iter()
            .any(|m| m.role == Role::Assistant));
        let late = conversations.submit(message(2, "too late")).await;
        assert!(
            matches!(late, Err(SubmitError::ShuttingDown | SubmitError::Stopped)),
            "{late:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_flushes_writes_still_queued_in_persistence() {
        let store = Arc::new(MemoryStore::new());
        let root = Root::start(RootArgs {
            store: store.clone(),
            agent: EchoAgent::new(),
            clock: Arc::new(SystemClock),
            settings: RootSettings::default(),
            vision: crate::vision::VisionArgs::default(),
        })
        .await
        .expect("starts");
        store.hold_applies();
        let persistence = root.persistence();
        let deadline = Instant::now() + WAIT;
        for n in 0..100 {
            let user = crate::domain::User::new(UserId(n), chrono::Utc::now());
            let write = vec![crate::ports::Write::UpsertUser(user)];
            persistence.submit(write, deadline).await.expect("accepted");
        }
        let shutdown = tokio::spawn(root.shutdown(WAIT));
        store.release_applies();
        let report = shutdown.await.expect("joined");
        assert_eq!(report.abandoned_rows, 0);
        assert_eq!(store.snapshot().users.len(), 100);
    }

    /// A tree with `models` for photos and `vision` settings.
    async fn tree_with_vision(
        models: Vec<Arc<dyn VisionModel>>,
        vision: VisionSettings,
    ) -> RootHandle {
        Root::start(RootArgs {
            store: Arc::new(MemoryStore::new()),
            agent: EchoAgent::new(),
            clock: Arc::new(SystemClock),
            settings: RootSettings {
                vision,
                ..RootSettings::default()
            },
            vision: VisionArgs::new(models),
        })
        .await
        .expect("starts")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_vision_branch_is_restarted_photos_in_flight_are_asked_again_and_the_next_works(
    ) {
        let held = Scripted::held("held", 200.0);
        let fragile = Scripted::new("fragile", 0, Some(210.0));
        let root = tree_with_vision(
            vec![held.clone(), fragile.clone()],
            VisionSettings::default(),
        )
        .await;
        let vision = root.vision();
        assert_eq!(vision.agents(), 2);

        // A photo in flight: the held agent is looking at it.
        let in_flight = tokio::spawn({
            let vision = vision.clone();
            async move { vision.estimate(photo(), None).await }
        });
        assert!(held.wait_started(WAIT).await);
        assert!(
            fragile.wait_started(WAIT).await,
            "answered it (held back by the other)"
        );
        let first = vision.coordinator_id();
        // The coordinator itself panics while it takes the next photo (a model's `name`, which
        // it calls, panics).
        fragile.panic_in_name.store(true, Ordering::SeqCst);
        let taken_when_it_failed = vision.estimate(photo(), None).await;

        // Both photos get an answer, and it asks the person to send the photo again.
        assert_eq!(taken_when_it_failed, Err(VisionError::Interrupted));
        let in_flight = tokio::time::timeout(WAIT, in_flight)
            .await
            .expect("no hang")
            .expect("joined");
        assert_eq!(in_flight, Err(VisionError::Interrupted));
        assert_eq!(VisionError::Interrupted.to_string(), INTERRUPTED_NOTICE);
        assert!(INTERRUPTED_NOTICE.contains("send the photo again"));

        // The branch was restarted with the same models: the next photo works, through the same
        // handle.
        assert!(vision.wait_for_other_coordinator(first, WAIT).await);
        held.release();
        let next = vision.estimate(photo(), None).await.expect("answered");
        let PhotoEstimate::Food { agents, .. } = &next else {
            panic!("food expected: {next:?}")
        };
        assert_eq!(
            agents.iter().filter(|a| a.status == "answered").count(),
            2,
            "{agents:?}"
        );
        // The rest of the tree never noticed.
        let outbox = RecordingOutbox::new();
        let answered = root
            .conversations()
            .submit_and_wait(Inbound::text(UserId(1), ChatId(1), "hi", outbox), WAIT)
            .await;
        assert_eq!(answered, Ok(TurnOutcome::Answered));
        let report = root.shutdown(WAIT).await;
        assert_eq!(report.abandoned_rows, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_vision_branch_failing_more_than_max_restarts_within_the_window_is_escalated() {
        let fragile = Scripted::new("fragile", 0, Some(210.0));
        let settings = VisionSettings {
            max_restarts: 2,
            restart_window: Duration::from_secs(60),
            ..VisionSettings::default()
        };
        let root = tree_with_vision(vec![fragile.clone()], settings).await;
        let vision = root.vision();
        // Two failures are restarted...
        for _ in 0..2 {
            let before = vision.coordinator_id();
            fragile.panic_in_name.store(true, Ordering::SeqCst);
            assert_eq!(
                vision.estimate(photo(), None).await,
                Err(VisionError::Interrupted)
            );
            assert!(vision.wait_for_other_coordinator(before, WAIT).await);
        }
        assert!(vision.estimate(photo(), None).await.is_ok(), "restarted");
        // ...the third within the window is escalated: the tree stops, with the reason.
        fragile.panic_in_name.store(true, Ordering::SeqCst);
        assert_eq!(
            vision.estimate(photo(), None).await,
            Err(VisionError::Interrupted)
        );
        let reason = tokio::time::timeout(WAIT, root.stopped())
            .await
            .expect("the tree stops by itself");
        assert!(
            reason.contains("the vision branch failed 3 times"),
            "{reason}"
        );
        assert!(matches!(
            vision.estimate(photo(), None).await,
            Err(VisionError::Unavailable(_))
        ));
    }
}
