//! The vision coordinator: hands each photo to a consensus actor of its own, which asks every
//! vision agent at once and merges what they said within the deadline.
//!
//! **Owns** one [`VisionAgent`] per configured vision model, spawned with `spawn_linked` when it
//! starts, and one [`ConsensusActor`] per photo in flight, spawned with `spawn_linked` for the
//! photo (it stops itself once it answered). **Supervised by** the root
//! ([`crate::root`]), which starts it with [`VisionCoordinator::start`] and restarts it (within a
//! bound) if it fails. **Talks to** its children only; callers reach it through the
//! [`VisionHandle`], which the root points at the coordinator running now.
//!
//! Written policy (`handle_supervisor_evt`):
//! - an **agent** that fails or stops is restarted with the same model; a photo in flight reports
//!   that agent as unavailable and is merged from the others.
//! - a photo's **consensus actor** that fails costs that photo only: its sender hears
//!   [`VisionError::Interrupted`] (its reply went down with the actor) and sends it again.
//! - when the **coordinator itself** fails, ractor stops all its children: every photo in flight
//!   hears [`VisionError::Interrupted`], and the root's policy applies (restart, bounded).

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::watch;
use tokio::time::Instant;

use super::agent::{Job, VisionAgent, VisionAgentArgs, VisionAgentMsg};
use super::consensus_actor::{Answer, ConsensusActor, ConsensusArgs, PhotoEstimate};
use super::{AgentOutcome, Photo, VisionError, VisionModel};
use crate::consensus::Calibration;

/// Deadlines of a photo, and the bound on restarts of the branch.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionSettings {
    /// Each agent's deadline (`VISION_TIMEOUT_SECS`, 25 s).
    pub agent_timeout: Duration,
    /// Photos one agent analyses at once.
    pub max_concurrent_per_agent: usize,
    /// The root restarts a failed coordinator at most this many times within
    /// `restart_window`, then escalates (as the conversation supervisor bounds its restarts).
    pub max_restarts: u32,
    pub restart_window: Duration,
}

impl Default for VisionSettings {
    fn default() -> Self {
        Self {
            agent_timeout: Duration::from_secs(25),
            max_concurrent_per_agent: 8,
            max_restarts: 3,
            restart_window: Duration::from_secs(10),
        }
    }
}

pub enum CoordinatorMsg {
    /// Every agent's outcome for a photo.
    Analyse {
        photo: Photo,
        caption: Option<String>,
        span: tracing::Span,
        reply: RpcReplyPort<Vec<AgentOutcome>>,
    },
    /// The agents' outcomes merged by the photo's consensus actor, with the person's calibration.
    Estimate {
        photo: Photo,
        caption: Option<String>,
        calibration: Calibration,
        span: tracing::Span,
        reply: RpcReplyPort<PhotoEstimate>,
    },
}

pub struct CoordinatorArgs {
    pub models: Vec<Arc<dyn VisionModel>>,
    pub settings: VisionSettings,
}

struct AgentSlot {
    model: Arc<dyn VisionModel>,
    actor: ActorRef<VisionAgentMsg>,
}

pub struct CoordinatorState {
    agents: Vec<AgentSlot>,
    settings: VisionSettings,
}

pub struct VisionCoordinator;

impl Actor for VisionCoordinator {
    type Msg = CoordinatorMsg;
    type State = CoordinatorState;
    type Arguments = CoordinatorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut agents = Vec::with_capacity(args.models.len());
        for model in args.models {
            let actor = spawn_agent(&myself, model.clone(), &args.settings).await?;
            agents.push(AgentSlot { model, actor });
        }
        Ok(CoordinatorState {
            agents,
            settings: args.settings,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CoordinatorMsg::Analyse {
                photo,
                caption,
                span,
                reply,
            } => {
                start_photo(
                    &myself,
                    state,
                    photo,
                    caption,
                    span,
                    Answer::Outcomes(reply),
                )
                .await
            }
            CoordinatorMsg::Estimate {
                photo,
                caption,
                calibration,
                span,
                reply,
            } => {
                let answer = Answer::Estimate { calibration, reply };
                start_photo(&myself, state, photo, caption, span, answer).await
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
        let (stopped, failure) = match &event {
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell.get_id(), None),
            SupervisionEvent::ActorFailed(cell, error) => (cell.get_id(), Some(error.to_string())),
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {
                return Ok(())
            }
        };
        let Some(slot) = state
            .agents
            .iter_mut()
            .find(|slot| slot.actor.get_id() == stopped)
        else {
            // A photo's consensus actor: it stops by itself once it answered.
            if let Some(reason) = failure {
                tracing::warn!(%reason, "a photo's consensus failed; its sender is asked to send it again");
            }
            return Ok(());
        };
        tracing::warn!(
            agent = slot.model.name(),
            reason = failure.as_deref().unwrap_or("stopped"),
            "a vision agent stopped; restarting it"
        );
        metrics::counter!(crate::metrics::VISION_AGENT_RESTARTS_TOTAL, "agent" => slot.model.name().to_owned()).increment(1);
        slot.actor = spawn_agent(&myself, slot.model.clone(), &state.settings).await?;
        Ok(())
    }
}

impl VisionCoordinator {
    /// Spawns the coordinator (and its agents) linked under `supervisor`, and points `branch`'s
    /// handle at it. The root calls this at start and for each restart.
    pub async fn start(
        branch: &VisionArgs,
        settings: &VisionSettings,
        supervisor: ractor::ActorCell,
    ) -> Result<ActorRef<CoordinatorMsg>, ractor::SpawnErr> {
        let args = CoordinatorArgs {
            models: branch.models.clone(),
            settings: settings.clone(),
        };
        let name = crate::persistence::unique_name("vision");
        let (actor, _join) =
            Actor::spawn_linked(Some(name), VisionCoordinator, args, supervisor).await?;
        branch.running.send_replace(Some(Running {
            actor: actor.clone(),
            agent_timeout: settings.agent_timeout,
        }));
        Ok(actor)
    }
}

async fn spawn_agent(
    myself: &ActorRef<CoordinatorMsg>,
    model: Arc<dyn VisionModel>,
    settings: &VisionSettings,
) -> Result<ActorRef<VisionAgentMsg>, ActorProcessingErr> {
    let args = VisionAgentArgs {
        model,
        max_concurrent: settings.max_concurrent_per_agent,
    };
    let (actor, _) = Actor::spawn_linked(None, VisionAgent, args, myself.get_cell()).await?;
    Ok(actor)
}

/// Hands the photo to a consensus actor of its own; the coordinator never waits on a model. If
/// that actor cannot start, the reply goes down with its arguments and the sender hears
/// [`VisionError::Interrupted`].
async fn start_photo(
    myself: &ActorRef<CoordinatorMsg>,
    state: &CoordinatorState,
    photo: Photo,
    caption: Option<String>,
    span: tracing::Span,
    answer: Answer,
) {
    let deadline = Instant::now() + state.settings.agent_timeout;
    let job = Arc::new(Job {
        photo,
        caption,
        deadline,
        span,
    });
    let agents = state
        .agents
        .iter()
        .map(|slot| (slot.model.name().to_owned(), slot.actor.clone()))
        .collect();
    let args = ConsensusArgs {
        job: job.clone(),
        agents,
        wait: state.settings.agent_timeout + Duration::from_millis(250),
        answer,
    };
    if let Err(error) = Actor::spawn_linked(None, ConsensusActor, args, myself.get_cell()).await {
        job.span.in_scope(
            || tracing::error!(%error, "a photo's consensus actor could not start; its sender is asked to send it again"),
        );
    }
}

/// The coordinator running now, as the root last started it.
#[derive(Clone)]
struct Running {
    actor: ActorRef<CoordinatorMsg>,
    agent_timeout: Duration,
}

/// How long a photo sent while the branch restarts waits for the new coordinator.
const RESTART_PATIENCE: Duration = Duration::from_secs(5);

/// The vision branch as the root gets it in [`crate::root::RootArgs`]: the models (one agent
/// each; none: photo analysis is not configured), and the handle the root keeps pointed at the
/// running coordinator. The handle can be given out before the root starts (the agent of the
/// conversations is built first); it answers once the root has started the branch.
pub struct VisionArgs {
    pub models: Vec<Arc<dyn VisionModel>>,
    running: watch::Sender<Option<Running>>,
    handle: VisionHandle,
}

impl VisionArgs {
    pub fn new(models: Vec<Arc<dyn VisionModel>>) -> Self {
        let (running, current) = watch::channel(None);
        let handle = VisionHandle {
            running: current,
            agents: models.len(),
        };
        Self {
            models,
            running,
            handle,
        }
    }

    /// The way in for photos (cloneable; it follows the coordinator across restarts).
    pub fn handle(&self) -> VisionHandle {
        self.handle.clone()
    }

    /// The branch is stopped for good: photos are answered "not running" at once.
    pub(crate) fn detach(&self) {
        self.running.send_replace(None);
    }
}

impl Default for VisionArgs {
    /// No vision model: photo analysis is not configured.
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

/// The handle on the vision branch, for the conversations' agent, the HTTP API and the CLI.
#[derive(Clone)]
pub struct VisionHandle {
    running: watch::Receiver<Option<Running>>,
    agents: usize,
}

impl VisionHandle {
    /// How many vision agents there are (0: photo analysis is not configured).
    pub fn agents(&self) -> usize {
        self.agents
    }

    /// Every agent's outcome for `photo`, within the deadline.
    pub async fn analyse(
        &self,
        photo: Photo,
        caption: Option<String>,
    ) -> Result<Vec<AgentOutcome>, VisionError> {
        let span = tracing::Span::current();
        self.ask(
            |reply| CoordinatorMsg::Analyse {
                photo: photo.clone(),
                caption: caption.clone(),
                span: span.clone(),
                reply,
            },
            Duration::from_secs(1),
        )
        .await
    }

    /// The agents' outcomes for `photo`, merged with every agent at weight 1 (no person's
    /// calibration).
    pub async fn estimate(
        &self,
        photo: Photo,
        caption: Option<String>,
    ) -> Result<PhotoEstimate, VisionError> {
        self.estimate_calibrated(photo, caption, Calibration::default())
            .await
    }

    /// The agents' outcomes for `photo`, merged with the person's calibration of each agent
    /// (learned from their corrections). The log lines of the branch about this photo are in the
    /// caller's span (the turn's person and message).
    pub async fn estimate_calibrated(
        &self,
        photo: Photo,
        caption: Option<String>,
        calibration: Calibration,
    ) -> Result<PhotoEstimate, VisionError> {
        let span = tracing::Span::current();
        self.ask(
            |reply| CoordinatorMsg::Estimate {
                photo: photo.clone(),
                caption: caption.clone(),
                calibration: calibration.clone(),
                span: span.clone(),
                reply,
            },
            Duration::from_secs(6),
        )
        .await
    }

    /// The coordinator the handle points at now (for tests of the restart policy).
    #[cfg(test)]
    pub(crate) fn coordinator_id(&self) -> Option<ractor::ActorId> {
        self.running
            .borrow()
            .as_ref()
            .map(|running| running.actor.get_id())
    }

    /// Waits (at most `within`) until the handle points at another coordinator than
    /// `previous`: the restarted one, or none once the branch is stopped for good.
    #[cfg(test)]
    pub(crate) async fn wait_for_other_coordinator(
        &self,
        previous: Option<ractor::ActorId>,
        within: Duration,
    ) -> bool {
        let mut running = self.running.clone();
        let changed = running
            .wait_for(|running| running.as_ref().map(|running| running.actor.get_id()) != previous);
        let changed = matches!(tokio::time::timeout(within, changed).await, Ok(Ok(_)));
        changed
    }

    /// Sends the request to the running coordinator and waits (its agents' deadline plus
    /// `margin`). A request the coordinator never received (it had just failed) waits for the
    /// restarted one, once; a request it received and then lost (it failed with the photo in
    /// flight) is [`VisionError::Interrupted`]: the person sends it again.
    async fn ask<T: Send + 'static>(
        &self,
        message: impl Fn(RpcReplyPort<T>) -> CoordinatorMsg,
        margin: Duration,
    ) -> Result<T, VisionError> {
        let mut running = self.running.clone();
        let mut patient = true;
        loop {
            let Some(current) = running.borrow_and_update().clone() else {
                return Err(VisionError::Unavailable(
                    "photo analysis is not running".into(),
                ));
            };
            let wait = current.agent_timeout + margin;
            match current.actor.call(&message, Some(wait)).await {
                Ok(ractor::rpc::CallResult::Success(answer)) => return Ok(answer),
                Ok(ractor::rpc::CallResult::Timeout) => return Err(VisionError::Timeout),
                Ok(ractor::rpc::CallResult::SenderError) => return Err(VisionError::Interrupted),
                Err(_not_delivered) if patient => {
                    patient = false;
                    match tokio::time::timeout(RESTART_PATIENCE, running.changed()).await {
                        Ok(Ok(())) => continue,
                        _ => return Err(VisionError::Interrupted),
                    }
                }
                Err(_not_delivered) => return Err(VisionError::Interrupted),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::vision::scripted::{photo, Scripted};

    /// The coordinator alone, unsupervised (the root's tests run it under the root).
    async fn start(
        models: Vec<Arc<dyn VisionModel>>,
        settings: VisionSettings,
    ) -> (VisionHandle, ActorRef<CoordinatorMsg>) {
        let branch = VisionArgs::new(models.clone());
        let args = CoordinatorArgs {
            models,
            settings: settings.clone(),
        };
        let (actor, _) = Actor::spawn(None, VisionCoordinator, args).await.unwrap();
        branch.running.send_replace(Some(Running {
            actor: actor.clone(),
            agent_timeout: settings.agent_timeout,
        }));
        (branch.handle(), actor)
    }

    #[tokio::test(start_paused = true)]
    async fn agents_run_in_parallel_and_late_ones_are_cut_at_the_deadline() {
        let settings = VisionSettings {
            agent_timeout: Duration::from_secs(25),
            max_concurrent_per_agent: 2,
            ..VisionSettings::default()
        };
        let (handle, coordinator) = start(
            vec![
                Scripted::model("a", 10_000, Some(200.0)),
                Scripted::model("b", 20_000, Some(220.0)),
                Scripted::model("slow", 60_000, Some(900.0)),
                Scripted::model("broken", 5, None),
            ],
            settings,
        )
        .await;
        let started = Instant::now();
        let outcomes = handle.analyse(photo(), Some("rice".into())).await.unwrap();
        let elapsed = started.elapsed();
        // The slowest agent within the deadline bounds the wall time, not the sum (30 s).
        assert!(
            elapsed >= Duration::from_secs(25) && elapsed < Duration::from_secs(27),
            "{elapsed:?}"
        );
        assert_eq!(outcomes.len(), 4);
        let by_agent = |name: &str| {
            outcomes
                .iter()
                .find(|o| o.agent == name)
                .unwrap()
                .result
                .clone()
        };
        assert_eq!(by_agent("a").unwrap().total_kcal(), 200.0);
        assert_eq!(by_agent("b").unwrap().total_kcal(), 220.0);
        assert_eq!(by_agent("slow"), Err(VisionError::Timeout));
        assert!(matches!(
            by_agent("broken"),
            Err(VisionError::Unavailable(_))
        ));
        coordinator.stop(None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_photo_is_not_held_back_by_the_deadline() {
        let (handle, coordinator) = start(
            vec![
                Scripted::model("a", 100, Some(100.0)),
                Scripted::model("b", 300, Some(110.0)),
            ],
            VisionSettings::default(),
        )
        .await;
        let started = Instant::now();
        let outcomes = handle.analyse(photo(), None).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(outcomes.iter().all(|o| o.result.is_ok()));
        coordinator.stop(None);
    }

    #[tokio::test]
    async fn a_panicking_model_costs_only_its_own_answer() {
        let panicking = Scripted::new("panics", 0, Some(1.0));
        panicking.panic_in_analyse.store(true, Ordering::SeqCst);
        let (handle, coordinator) = start(
            vec![panicking, Scripted::model("fine", 10, Some(120.0))],
            VisionSettings::default(),
        )
        .await;
        let outcomes = handle.analyse(photo(), None).await.unwrap();
        assert!(matches!(
            outcomes[0].result,
            Err(VisionError::Unavailable(_))
        ));
        assert_eq!(outcomes[1].result.as_ref().unwrap().total_kcal(), 120.0);
        // The next photo is analysed by both again.
        let outcomes = handle.analyse(photo(), None).await.unwrap();
        assert!(outcomes.iter().all(|o| o.result.is_ok()));
        coordinator.stop(None);
    }

    #[tokio::test(start_paused = true)]
    async fn estimates_merge_the_agents_that_answered() {
        let (handle, coordinator) = start(
            vec![
                Scripted::model("a", 100, Some(200.0)),
                Scripted::model("b", 200, Some(210.0)),
                Scripted::model("down", 5, None),
            ],
            VisionSettings::default(),
        )
        .await;
        let PhotoEstimate::Food { consensus, agents } =
            handle.estimate(photo(), None).await.unwrap()
        else {
            panic!("food expected")
        };
        assert!(
            consensus.total.kcal > 150.0 && consensus.total.kcal < 260.0,
            "{}",
            consensus.total.kcal
        );
        assert_eq!(agents.iter().filter(|a| a.status == "answered").count(), 2);
        assert_eq!(
            agents.iter().find(|a| a.agent == "down").unwrap().status,
            "unavailable"
        );
        coordinator.stop(None);
    }

    #[tokio::test]
    async fn no_agents_means_no_outcomes() {
        let (handle, coordinator) = start(Vec::new(), VisionSettings::default()).await;
        assert_eq!(handle.agents(), 0);
        assert!(handle.analyse(photo(), None).await.unwrap().is_empty());
        coordinator.stop(None);
    }
}
