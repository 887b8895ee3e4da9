//! The vision coordinator: fans a photo out to every vision agent at once and collects what
//! they said within the deadline.
//!
//! **Owns** one [`VisionAgent`] per configured vision model and the [`ConsensusActor`], spawned
//! with `spawn_linked`.
//! **Supervised by** the application (it is started beside the root tree and stopped after it).
//! **Policy**: an agent that fails or stops is restarted with the same model (a photo in flight
//! reports that agent as unavailable); so is the consensus actor. **Talks to** its agents and the
//! consensus actor; the caller decides what to save from the [`PhotoEstimate`].

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::time::Instant;

use super::agent::{Job, VisionAgent, VisionAgentArgs, VisionAgentMsg};
use super::consensus_actor::{ConsensusActor, ConsensusMsg, PhotoEstimate};
use super::{AgentOutcome, Photo, VisionError, VisionModel};
use crate::consensus::Calibration;

/// Deadlines of a photo.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionSettings {
    /// Each agent's deadline (`VISION_TIMEOUT_SECS`, 25 s).
    pub agent_timeout: Duration,
    /// Photos one agent analyses at once.
    pub max_concurrent_per_agent: usize,
}

impl Default for VisionSettings {
    fn default() -> Self {
        Self {
            agent_timeout: Duration::from_secs(25),
            max_concurrent_per_agent: 8,
        }
    }
}

pub enum CoordinatorMsg {
    /// Every agent's outcome for a photo.
    Analyse {
        photo: Photo,
        caption: Option<String>,
        reply: RpcReplyPort<Vec<AgentOutcome>>,
    },
    /// The agents' outcomes merged by the consensus actor, with the person's calibration.
    Estimate {
        photo: Photo,
        caption: Option<String>,
        calibration: Calibration,
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
    consensus: ActorRef<ConsensusMsg>,
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
        let (consensus, _) =
            Actor::spawn_linked(None, ConsensusActor, (), myself.get_cell()).await?;
        Ok(CoordinatorState {
            agents,
            consensus,
            settings: args.settings,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CoordinatorMsg::Analyse {
                photo,
                caption,
                reply,
            } => analyse(state, photo, caption, reply),
            CoordinatorMsg::Estimate {
                photo,
                caption,
                calibration,
                reply,
            } => estimate(state, photo, caption, calibration, reply),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let stopped = match &event {
            SupervisionEvent::ActorTerminated(cell, _, _)
            | SupervisionEvent::ActorFailed(cell, _) => cell.get_id(),
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {
                return Ok(())
            }
        };
        if state.consensus.get_id() == stopped {
            tracing::warn!("the consensus actor stopped; restarting it");
            state.consensus = Actor::spawn_linked(None, ConsensusActor, (), myself.get_cell())
                .await?
                .0;
            return Ok(());
        }
        if let Some(slot) = state
            .agents
            .iter_mut()
            .find(|slot| slot.actor.get_id() == stopped)
        {
            tracing::warn!(
                agent = slot.model.name(),
                "a vision agent stopped; restarting it"
            );
            metrics::counter!(crate::metrics::VISION_AGENT_RESTARTS_TOTAL, "agent" => slot.model.name().to_owned()).increment(1);
            slot.actor = spawn_agent(&myself, slot.model.clone(), &state.settings).await?;
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        for slot in &state.agents {
            slot.actor.unlink(_myself.get_cell());
            slot.actor.stop(None);
        }
        state.consensus.unlink(_myself.get_cell());
        state.consensus.stop(None);
        Ok(())
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

fn analyse(
    state: &CoordinatorState,
    photo: Photo,
    caption: Option<String>,
    reply: RpcReplyPort<Vec<AgentOutcome>>,
) {
    let outcomes = fan_out(state, photo, caption);
    tokio::spawn(async move {
        let _ = reply.send(outcomes.await);
    });
}

/// Fans out, then hands the outcomes to the consensus actor; if that fails on this input, the
/// same judgement runs here rather than losing the photo.
fn estimate(
    state: &CoordinatorState,
    photo: Photo,
    caption: Option<String>,
    calibration: Calibration,
    reply: RpcReplyPort<PhotoEstimate>,
) {
    let outcomes = fan_out(state, photo, caption);
    let consensus = state.consensus.clone();
    tokio::spawn(async move {
        let outcomes = outcomes.await;
        let merged = consensus
            .call(
                |reply| ConsensusMsg::Merge {
                    outcomes: outcomes.clone(),
                    calibration: calibration.clone(),
                    reply,
                },
                Some(Duration::from_secs(5)),
            )
            .await;
        let estimate = match merged {
            Ok(ractor::rpc::CallResult::Success(estimate)) => estimate,
            _ => super::consensus_actor::judge_calibrated(&outcomes, &calibration),
        };
        let _ = reply.send(estimate);
    });
}

/// Asks every agent at once; the returned future (run in a task, so the coordinator never waits
/// on a model) ends with one outcome per agent when all answered or the deadline passed.
fn fan_out(
    state: &CoordinatorState,
    photo: Photo,
    caption: Option<String>,
) -> impl std::future::Future<Output = Vec<AgentOutcome>> + Send + 'static {
    let deadline = Instant::now() + state.settings.agent_timeout;
    let job = Arc::new(Job {
        photo,
        caption,
        deadline,
    });
    let agents: Vec<(String, ActorRef<VisionAgentMsg>)> = state
        .agents
        .iter()
        .map(|slot| (slot.model.name().to_owned(), slot.actor.clone()))
        .collect();
    // A little beyond the deadline, so an agent's own timeout outcome arrives first.
    let wait = state.settings.agent_timeout + Duration::from_millis(250);
    async move {
        let calls = agents.into_iter().map(|(name, actor)| {
            let job = job.clone();
            async move {
                let started = Instant::now();
                match actor
                    .call(|reply| VisionAgentMsg::Analyse { job, reply }, Some(wait))
                    .await
                {
                    Ok(ractor::rpc::CallResult::Success(outcome)) => outcome,
                    Ok(ractor::rpc::CallResult::Timeout) => AgentOutcome {
                        agent: name,
                        result: Err(VisionError::Timeout),
                        elapsed: started.elapsed(),
                    },
                    _ => AgentOutcome {
                        agent: name,
                        result: Err(VisionError::Unavailable("the agent stopped".into())),
                        elapsed: started.elapsed(),
                    },
                }
            }
        });
        futures::future::join_all(calls).await
    }
}

/// The application's handle on the coordinator.
#[derive(Clone)]
pub struct VisionHandle {
    actor: ActorRef<CoordinatorMsg>,
    agent_timeout: Duration,
    agents: usize,
}

impl VisionHandle {
    /// Starts the coordinator and one agent per model.
    pub async fn start(
        models: Vec<Arc<dyn VisionModel>>,
        settings: VisionSettings,
    ) -> Result<Self, ActorProcessingErr> {
        let agents = models.len();
        let agent_timeout = settings.agent_timeout;
        let (actor, _) = Actor::spawn(
            None,
            VisionCoordinator,
            CoordinatorArgs { models, settings },
        )
        .await?;
        Ok(Self {
            actor,
            agent_timeout,
            agents,
        })
    }

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
        let wait = self.agent_timeout + Duration::from_secs(1);
        match self
            .actor
            .call(
                |reply| CoordinatorMsg::Analyse {
                    photo,
                    caption,
                    reply,
                },
                Some(wait),
            )
            .await
        {
            Ok(ractor::rpc::CallResult::Success(outcomes)) => Ok(outcomes),
            Ok(ractor::rpc::CallResult::Timeout) => Err(VisionError::Timeout),
            _ => Err(VisionError::Unavailable(
                "photo analysis is not running".into(),
            )),
        }
    }

    /// The agents' outcomes for `photo`, merged by the consensus actor with every agent at
    /// weight 1 (no person's calibration).
    pub async fn estimate(
        &self,
        photo: Photo,
        caption: Option<String>,
    ) -> Result<PhotoEstimate, VisionError> {
        self.estimate_calibrated(photo, caption, Calibration::default())
            .await
    }

    /// The agents' outcomes for `photo`, merged by the consensus actor with the person's
    /// calibration of each agent (learned from their corrections).
    pub async fn estimate_calibrated(
        &self,
        photo: Photo,
        caption: Option<String>,
        calibration: Calibration,
    ) -> Result<PhotoEstimate, VisionError> {
        let wait = self.agent_timeout + Duration::from_secs(6);
        match self
            .actor
            .call(
                |reply| CoordinatorMsg::Estimate {
                    photo,
                    caption,
                    calibration,
                    reply,
                },
                Some(wait),
            )
            .await
        {
            Ok(ractor::rpc::CallResult::Success(estimate)) => Ok(estimate),
            Ok(ractor::rpc::CallResult::Timeout) => Err(VisionError::Timeout),
            _ => Err(VisionError::Unavailable(
                "photo analysis is not running".into(),
            )),
        }
    }

    pub fn stop(&self) {
        self.actor.stop(None);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::vision::{SeenItem, VisionAnswer};

    /// A scripted model: answers `kcal` after `delay`, or fails, or panics once.
    struct Scripted {
        name: String,
        delay: Duration,
        kcal: Option<f64>,
        panic_once: AtomicBool,
    }

    impl Scripted {
        fn model(name: &str, delay_ms: u64, kcal: Option<f64>) -> Arc<dyn VisionModel> {
            Arc::new(Self {
                name: name.into(),
                delay: Duration::from_millis(delay_ms),
                kcal,
                panic_once: AtomicBool::new(false),
            })
        }
    }

    #[async_trait]
    impl VisionModel for Scripted {
        fn name(&self) -> &str {
            &self.name
        }

        async fn analyse(
            &self,
            _photo: &Photo,
            _caption: Option<&str>,
        ) -> Result<VisionAnswer, VisionError> {
            if self.panic_once.swap(false, Ordering::SeqCst) {
                panic!("scripted panic");
            }
            tokio::time::sleep(self.delay).await;
            match self.kcal {
                Some(kcal) => Ok(VisionAnswer {
                    no_food: false,
                    items: vec![SeenItem {
                        name: "rice".into(),
                        grams: 150.0,
                        kcal,
                        protein_g: 4.0,
                        carbs_g: 40.0,
                        fat_g: 0.5,
                        confidence: 0.8,
                    }],
                }),
                None => Err(VisionError::Unavailable("scripted failure".into())),
            }
        }
    }

    fn photo() -> Photo {
        Photo::sniff(vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0]).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn agents_run_in_parallel_and_late_ones_are_cut_at_the_deadline() {
        let settings = VisionSettings {
            agent_timeout: Duration::from_secs(25),
            max_concurrent_per_agent: 2,
        };
        let handle = VisionHandle::start(
            vec![
                Scripted::model("a", 10_000, Some(200.0)),
                Scripted::model("b", 20_000, Some(220.0)),
                Scripted::model("slow", 60_000, Some(900.0)),
                Scripted::model("broken", 5, None),
            ],
            settings,
        )
        .await
        .unwrap();
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
        handle.stop();
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_photo_is_not_held_back_by_the_deadline() {
        let handle = VisionHandle::start(
            vec![
                Scripted::model("a", 100, Some(100.0)),
                Scripted::model("b", 300, Some(110.0)),
            ],
            VisionSettings::default(),
        )
        .await
        .unwrap();
        let started = Instant::now();
        let outcomes = handle.analyse(photo(), None).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(outcomes.iter().all(|o| o.result.is_ok()));
        handle.stop();
    }

    #[tokio::test]
    async fn a_panicking_model_costs_only_its_own_answer() {
        let panicking = Arc::new(Scripted {
            name: "panics".into(),
            delay: Duration::ZERO,
            kcal: Some(1.0),
            panic_once: AtomicBool::new(true),
        });
        let handle = VisionHandle::start(
            vec![panicking, Scripted::model("fine", 10, Some(120.0))],
            VisionSettings::default(),
        )
        .await
        .unwrap();
        let outcomes = handle.analyse(photo(), None).await.unwrap();
        assert!(matches!(
            outcomes[0].result,
            Err(VisionError::Unavailable(_))
        ));
        assert_eq!(outcomes[1].result.as_ref().unwrap().total_kcal(), 120.0);
        // The next photo is analysed by both again.
        let outcomes = handle.analyse(photo(), None).await.unwrap();
        assert!(outcomes.iter().all(|o| o.result.is_ok()));
        handle.stop();
    }

    #[tokio::test(start_paused = true)]
    async fn estimates_merge_the_agents_that_answered() {
        let handle = VisionHandle::start(
            vec![
                Scripted::model("a", 100, Some(200.0)),
                Scripted::model("b", 200, Some(210.0)),
                Scripted::model("down", 5, None),
            ],
            VisionSettings::default(),
        )
        .await
        .unwrap();
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
        handle.stop();
    }

    #[tokio::test]
    async fn no_agents_means_no_outcomes() {
        let handle = VisionHandle::start(Vec::new(), VisionSettings::default())
            .await
            .unwrap();
        assert_eq!(handle.agents(), 0);
        assert!(handle.analyse(photo(), None).await.unwrap().is_empty());
        handle.stop();
    }
}
