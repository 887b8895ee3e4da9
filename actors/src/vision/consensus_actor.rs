//! The consensus actor: one per photo in flight; asks every vision agent at once, collects what
//! they said and merges it.
//!
//! **Owns** one photo from the moment the coordinator hands it over until it is answered: the
//! job (photo, caption, deadline), the person's calibration of each agent, the outcomes that came
//! in so far and the sender's reply port. **Supervised by** the [`super::VisionCoordinator`],
//! which spawns it linked for each photo; it stops itself once it has answered. **Talks to** the
//! [`super::agent::VisionAgent`]s (one request each, from tasks of its own, so the slowest agent
//! bounds the photo's wall time, never the sum) and the photo's sender.
//!
//! Why per photo and not one long-lived actor with each person's calibration: the calibration's
//! source of truth is the store, written by the correction of a photo entry in the conversation
//! (not through this branch), and the HTTP API estimates without one. A cache here would need
//! every correction path to tell it, and a missed one would silently weigh the agents with stale
//! numbers; the caller reads the newest calibration with each photo instead (one indexed query,
//! against vision calls of seconds). What the actor does hold is the photo itself between its
//! agents' answers, and it is the unit of failure: if merging one photo panics, only that photo's
//! sender hears [`super::VisionError::Interrupted`] ("send it again"), nothing else is lost.
//!
//! The merge itself is the pure [`crate::consensus::merge`]; [`judge_calibrated`] decides what
//! the outcomes mean as a whole (food, no food, or nobody answered) and keeps the agents' own
//! reports.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tokio::time::Instant;
use tracing::Instrument;

use super::agent::{Job, VisionAgentMsg};
use super::{AgentOutcome, VisionError};
use crate::consensus::{
    attribute, merge, table_reference, AgentEstimate, Calibration, Consensus, EstimatedItem,
};
use crate::nutrition::FoodTable;

/// What one agent did, for the person and for the operator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentReport {
    pub agent: String,
    /// `answered`, `no_food`, `timeout`, `invalid` or `unavailable`.
    pub status: &'static str,
    /// The agent's own total, when it answered with food.
    pub total_kcal: Option<f64>,
    pub seconds: f64,
    /// Its weight in the merge, from the person's corrections (1 with no track record).
    pub weight: f64,
    /// The factor its grams were multiplied by before the merge (1 with no track record).
    pub scale: f64,
    /// What it said about each merged item, in its own numbers (before the scale): kept with a
    /// saved entry so a later correction calibrates it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<AgentItem>,
}

/// One agent's own estimate of one merged item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentItem {
    /// The merged item's name.
    pub item: String,
    pub grams: f64,
    pub kcal: f64,
}

/// The result of analysing one photo.
#[derive(Debug, Clone, PartialEq)]
pub enum PhotoEstimate {
    /// At least one agent saw food: the merged estimate.
    Food {
        consensus: Consensus,
        agents: Vec<AgentReport>,
    },
    /// Every agent that answered said there is no food.
    NoFood { agents: Vec<AgentReport> },
    /// No agent answered usefully (all failed, timed out or gave invalid answers).
    Unavailable { agents: Vec<AgentReport> },
}

impl PhotoEstimate {
    pub fn agents(&self) -> &[AgentReport] {
        match self {
            Self::Food { agents, .. } | Self::NoFood { agents } | Self::Unavailable { agents } => {
                agents
            }
        }
    }
}

pub enum ConsensusMsg {
    /// What one agent did with the photo (its answer, its failure, or its silence until the
    /// deadline).
    Outcome { index: usize, outcome: AgentOutcome },
}

/// What the photo's sender waits for.
pub enum Answer {
    /// Every agent's outcome, as they said it.
    Outcomes(RpcReplyPort<Vec<AgentOutcome>>),
    /// The outcomes merged with the person's calibration of each agent.
    Estimate {
        calibration: Calibration,
        reply: RpcReplyPort<PhotoEstimate>,
    },
}

pub struct ConsensusArgs {
    pub job: Arc<Job>,
    /// The agents to ask, by name.
    pub agents: Vec<(String, ActorRef<VisionAgentMsg>)>,
    /// How long to wait for each agent: a little beyond the job's deadline, so that an agent's
    /// own timeout outcome arrives first.
    pub wait: Duration,
    pub answer: Answer,
}

pub struct ConsensusState {
    job: Arc<Job>,
    /// Taken when the agents are asked (in `post_start`).
    agents: Vec<(String, ActorRef<VisionAgentMsg>)>,
    wait: Duration,
    /// One slot per agent, filled as their outcomes come in.
    outcomes: Vec<Option<AgentOutcome>>,
    /// Taken when the photo is answered.
    answer: Option<Answer>,
}

pub struct ConsensusActor;

impl Actor for ConsensusActor {
    type Msg = ConsensusMsg;
    type State = ConsensusState;
    type Arguments = ConsensusArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ConsensusArgs,
    ) -> Result<ConsensusState, ActorProcessingErr> {
        Ok(ConsensusState {
            outcomes: args.agents.iter().map(|_| None).collect(),
            job: args.job,
            agents: args.agents,
            wait: args.wait,
            answer: Some(args.answer),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut ConsensusState,
    ) -> Result<(), ActorProcessingErr> {
        ask_every_agent(&myself, state);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut ConsensusState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ConsensusMsg::Outcome { index, outcome } => {
                record_outcome(&myself, state, index, outcome)
            }
        }
        Ok(())
    }
}

/// Asks every agent at once, each from a task of its own that tells this actor the outcome; a
/// photo with no agents is answered at once.
fn ask_every_agent(myself: &ActorRef<ConsensusMsg>, state: &mut ConsensusState) {
    let agents = std::mem::take(&mut state.agents);
    if agents.is_empty() {
        answer(myself, state);
        return;
    }
    for (index, (name, agent)) in agents.into_iter().enumerate() {
        let (job, wait, myself) = (state.job.clone(), state.wait, myself.clone());
        let ask = async move {
            let outcome = ask_agent(name, agent, job, wait).await;
            // This actor is gone only if it failed: its sender already heard "try again".
            let _ = myself.cast(ConsensusMsg::Outcome { index, outcome });
        };
        tokio::spawn(ask.instrument(state.job.span.clone()));
    }
}

/// One agent's outcome: its own answer, or why there is none.
async fn ask_agent(
    name: String,
    agent: ActorRef<VisionAgentMsg>,
    job: Arc<Job>,
    wait: Duration,
) -> AgentOutcome {
    let started = Instant::now();
    let result = match agent
        .call(|reply| VisionAgentMsg::Analyse { job, reply }, Some(wait))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(outcome)) => return outcome,
        Ok(ractor::rpc::CallResult::Timeout) => Err(VisionError::Timeout),
        _ => Err(VisionError::Unavailable("the agent stopped".into())),
    };
    AgentOutcome {
        agent: name,
        result,
        elapsed: started.elapsed(),
    }
}

fn record_outcome(
    myself: &ActorRef<ConsensusMsg>,
    state: &mut ConsensusState,
    index: usize,
    outcome: AgentOutcome,
) {
    if let Some(slot) = state.outcomes.get_mut(index) {
        *slot = Some(outcome);
    }
    if state.outcomes.iter().all(Option::is_some) {
        answer(myself, state);
    }
}

/// Every agent has an outcome: the sender gets them (merged, for an estimate) and this actor
/// stops, its photo done.
fn answer(myself: &ActorRef<ConsensusMsg>, state: &mut ConsensusState) {
    let outcomes: Vec<AgentOutcome> = state.outcomes.iter_mut().filter_map(Option::take).collect();
    match state.answer.take() {
        Some(Answer::Outcomes(reply)) => {
            let _ = reply.send(outcomes);
        }
        Some(Answer::Estimate { calibration, reply }) => {
            let estimate = state
                .job
                .span
                .in_scope(|| judge_calibrated(&outcomes, &calibration));
            let _ = reply.send(estimate);
        }
        None => {}
    }
    myself.stop(None);
}

/// Turns the agents' outcomes into one estimate with no calibration (every agent weight 1).
pub fn judge(outcomes: &[AgentOutcome]) -> PhotoEstimate {
    judge_calibrated(outcomes, &Calibration::default())
}

/// Turns the agents' outcomes into one estimate (pure; the actor runs it): each agent's
/// grams and energy are multiplied by its calibrated scale and its votes by its weight.
pub fn judge_calibrated(outcomes: &[AgentOutcome], calibration: &Calibration) -> PhotoEstimate {
    let mut agents: Vec<AgentReport> = outcomes
        .iter()
        .map(|outcome| report(outcome, calibration))
        .collect();
    // Each answering agent's own items (for the record) and its calibrated estimate (to merge).
    let mut own_items: Vec<(usize, Vec<EstimatedItem>)> = Vec::new();
    let mut estimates: Vec<AgentEstimate> = Vec::new();
    for (index, outcome) in outcomes.iter().enumerate() {
        let Ok(answer) = &outcome.result else {
            continue;
        };
        if answer.no_food || answer.items.is_empty() {
            continue;
        }
        let items: Vec<EstimatedItem> = answer
            .items
            .iter()
            .map(|item| EstimatedItem {
                name: item.name.clone(),
                grams: item.grams,
                kcal: item.kcal,
                protein_g: item.protein_g,
                carbs_g: item.carbs_g,
                fat_g: item.fat_g,
                confidence: item.confidence,
            })
            .collect();
        estimates.push(calibration.apply(&AgentEstimate {
            agent: outcome.agent.clone(),
            items: items.clone(),
            weight: 1.0,
        }));
        own_items.push((index, items));
    }
    let said_no_food = outcomes
        .iter()
        .any(|o| matches!(&o.result, Ok(answer) if answer.no_food));
    if estimates.is_empty() {
        return if said_no_food {
            PhotoEstimate::NoFood { agents }
        } else {
            PhotoEstimate::Unavailable { agents }
        };
    }
    let consensus = merge(&estimates, table_reference(FoodTable::builtin()));
    if consensus.is_empty() {
        return PhotoEstimate::Unavailable { agents };
    }
    for (index, items) in own_items {
        agents[index].items = attribute(&items, &consensus, table_reference(FoodTable::builtin()))
            .into_iter()
            .map(|(position, grams, kcal)| AgentItem {
                item: consensus.items[position].name.clone(),
                grams,
                kcal,
            })
            .collect();
    }
    PhotoEstimate::Food { consensus, agents }
}

fn report(outcome: &AgentOutcome, calibration: &Calibration) -> AgentReport {
    let (status, total_kcal) = match &outcome.result {
        Ok(answer) if answer.no_food => ("no_food", None),
        Ok(answer) => ("answered", Some(answer.total_kcal())),
        Err(VisionError::Timeout) => ("timeout", None),
        Err(VisionError::Invalid(_)) => ("invalid", None),
        Err(VisionError::Unavailable(_) | VisionError::Interrupted) => ("unavailable", None),
    };
    let own = calibration.get(&outcome.agent);
    AgentReport {
        agent: outcome.agent.clone(),
        status,
        total_kcal,
        seconds: outcome.elapsed.as_secs_f64(),
        weight: own.weight,
        scale: own.scale,
        items: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::vision::{SeenItem, VisionAnswer};

    fn answered(agent: &str, kcal: f64) -> AgentOutcome {
        AgentOutcome {
            agent: agent.into(),
            result: Ok(VisionAnswer {
                no_food: false,
                items: vec![SeenItem {
                    name: "chicken breast".into(),
                    grams: kcal / 1.65,
                    kcal,
                    protein_g: 25.0,
                    carbs_g: 0.0,
                    fat_g: 3.0,
                    confidence: 0.8,
                }],
            }),
            elapsed: Duration::from_millis(100),
        }
    }

    fn failed(agent: &str, error: VisionError) -> AgentOutcome {
        AgentOutcome {
            agent: agent.into(),
            result: Err(error),
            elapsed: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_wild_agent_does_not_move_the_estimate_much() {
        let outcomes = [
            answered("a", 140.0),
            answered("b", 135.0),
            answered("wild", 420.0),
        ];
        let PhotoEstimate::Food { consensus, agents } = judge(&outcomes) else {
            panic!("food expected")
        };
        assert!(
            (consensus.total.kcal - 137.0).abs() < 20.0,
            "{}",
            consensus.total.kcal
        );
        assert_eq!(agents.len(), 3);
    }

    #[test]
    fn no_food_and_nobody_answering_are_different_outcomes() {
        let no_food = AgentOutcome {
            agent: "a".into(),
            result: Ok(VisionAnswer {
                no_food: true,
                items: vec![],
            }),
            elapsed: Duration::ZERO,
        };
        assert!(matches!(
            judge(&[no_food, failed("b", VisionError::Timeout)]),
            PhotoEstimate::NoFood { .. }
        ));
        let estimate = judge(&[
            failed("a", VisionError::Timeout),
            failed("b", VisionError::Invalid("x".into())),
        ]);
        let PhotoEstimate::Unavailable { agents } = estimate else {
            panic!("unavailable expected")
        };
        assert_eq!(agents[0].status, "timeout");
        assert_eq!(agents[1].status, "invalid");
        assert!(matches!(judge(&[]), PhotoEstimate::Unavailable { .. }));
    }

    #[test]
    fn calibration_scales_and_weights_agents_and_their_own_numbers_are_kept() {
        let calibration = Calibration::learn(
            &(0..6)
                .flat_map(|i| {
                    let at = chrono::Utc::now() - chrono::Duration::minutes(i);
                    ["a", "b", "big"].map(|agent| crate::domain::VisionEstimate {
                        entry_id: uuid::Uuid::from_u128(i as u128),
                        item: "chicken breast".into(),
                        agent: agent.into(),
                        user_id: crate::domain::UserId(1),
                        grams: if agent == "big" { 150.0 } else { 100.0 },
                        kcal: 165.0,
                        corrected_grams: Some(100.0),
                        created_at: at,
                        corrected_at: Some(at),
                    })
                })
                .collect::<Vec<_>>(),
        );
        let outcomes = [
            answered("a", 140.0),
            answered("b", 135.0),
            answered("big", 210.0),
        ];
        let PhotoEstimate::Food {
            consensus: plain, ..
        } = judge(&outcomes)
        else {
            panic!("food expected")
        };
        let PhotoEstimate::Food { consensus, agents } = judge_calibrated(&outcomes, &calibration)
        else {
            panic!("food expected")
        };
        let big = agents.iter().find(|a| a.agent == "big").unwrap();
        assert!(big.scale < 0.85 && big.weight < agents[0].weight, "{big:?}");
        // Its own numbers are kept as it said them, not as scaled.
        assert_eq!(big.items.len(), 1);
        assert_eq!(big.items[0].kcal, 210.0);
        assert_eq!(big.items[0].item, consensus.items[0].name);
        assert!(
            (consensus.total.kcal - 137.5).abs() < (plain.total.kcal - 137.5).abs() + 1e-9,
            "{} vs {}",
            consensus.total.kcal,
            plain.total.kcal
        );
    }

    #[test]
    fn one_answer_is_a_single_source_estimate() {
        let PhotoEstimate::Food { consensus, .. } =
            judge(&[answered("a", 140.0), failed("b", VisionError::Timeout)])
        else {
            panic!("food expected")
        };
        assert_eq!(
            consensus.confidence,
            crate::consensus::Confidence::SingleSource
        );
    }
}
