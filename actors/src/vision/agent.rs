//! One vision agent: asks one vision model about photos.
//!
//! **Owns** its model and a bound on how many photos it analyses at once. **Supervised by** the
//! [`super::VisionCoordinator`], which restarts it if it fails. **Talks to** its [`VisionModel`]
//! only; a photo's [`super::ConsensusActor`] asks it and gets the [`AgentOutcome`] back. Each
//! photo is analysed in a task of its own (in the span of the turn that sent the photo), so one
//! slow photo never queues another behind it, and the call is cut at the job's deadline (a late
//! model is cancelled, not awaited).

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;

use super::{AgentOutcome, Photo, VisionError, VisionModel};
use crate::metrics as names;

/// One photo job, shared by every agent it fans out to.
#[derive(Debug)]
pub struct Job {
    pub photo: Photo,
    pub caption: Option<String>,
    /// When every agent must have answered.
    pub deadline: Instant,
    /// The span of the turn that sent the photo (its person and message), so the branch's log
    /// lines about this photo carry them.
    pub span: tracing::Span,
}

pub enum VisionAgentMsg {
    /// Analyse the photo; the outcome (answer, failure or timeout) comes back on `reply`.
    Analyse {
        job: Arc<Job>,
        reply: RpcReplyPort<AgentOutcome>,
    },
}

pub struct VisionAgentArgs {
    pub model: Arc<dyn VisionModel>,
    /// Photos analysed at once by this agent; more wait (within their deadline).
    pub max_concurrent: usize,
}

pub struct VisionAgentState {
    model: Arc<dyn VisionModel>,
    permits: Arc<Semaphore>,
}

pub struct VisionAgent;

impl Actor for VisionAgent {
    type Msg = VisionAgentMsg;
    type State = VisionAgentState;
    type Arguments = VisionAgentArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(VisionAgentState {
            model: args.model,
            permits: Arc::new(Semaphore::new(args.max_concurrent.max(1))),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            VisionAgentMsg::Analyse { job, reply } => analyse(state, job, reply),
        }
        Ok(())
    }
}

fn analyse(state: &VisionAgentState, job: Arc<Job>, reply: RpcReplyPort<AgentOutcome>) {
    let model = state.model.clone();
    let permits = state.permits.clone();
    let span = job.span.clone();
    let task = async move {
        let started = Instant::now();
        let agent = model.name().to_owned();
        let work = async {
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|_| VisionError::Unavailable("the agent is stopping".into()))?;
            model.analyse(&job.photo, job.caption.as_deref()).await
        };
        let result = match tokio::time::timeout_at(job.deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(VisionError::Timeout),
        };
        let elapsed = started.elapsed();
        let status = match &result {
            Ok(answer) if answer.no_food => "no_food",
            Ok(_) => "answered",
            Err(VisionError::Timeout) => "timeout",
            Err(VisionError::Invalid(_)) => "invalid",
            Err(VisionError::Unavailable(_) | VisionError::Interrupted) => "unavailable",
        };
        metrics::counter!(names::VISION_AGENT_CALLS_TOTAL, "agent" => agent.clone(), "status" => status).increment(1);
        metrics::histogram!(names::VISION_AGENT_SECONDS, "agent" => agent.clone())
            .record(elapsed.as_secs_f64());
        // The coordinator may have stopped waiting (its own deadline); nobody to tell then.
        let _ = reply.send(AgentOutcome {
            agent,
            result,
            elapsed,
        });
    };
    tokio::spawn(task.instrument(span));
}
