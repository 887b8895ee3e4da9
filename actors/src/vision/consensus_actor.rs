//! The consensus actor: merges what the vision agents said about one photo.
//!
//! **Owns** nothing but the reference lookup (the built-in food table). **Supervised by** the
//! [`super::VisionCoordinator`], which restarts it if it fails. **Talks to** no one: the
//! coordinator's fan-out task sends it the agents' outcomes and gets back a [`PhotoEstimate`].
//! The merge itself is the pure [`crate::consensus::merge`]; this actor decides what the outcomes
//! mean as a whole (food, no food, or nobody answered) and keeps the agents' own reports.

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;

use super::{AgentOutcome, VisionError};
use crate::consensus::{merge, table_reference, AgentEstimate, Consensus, EstimatedItem};
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
    Merge {
        outcomes: Vec<AgentOutcome>,
        reply: RpcReplyPort<PhotoEstimate>,
    },
}

pub struct ConsensusActor;

impl Actor for ConsensusActor {
    type Msg = ConsensusMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ConsensusMsg::Merge { outcomes, reply } => {
                let _ = reply.send(judge(&outcomes));
            }
        }
        Ok(())
    }
}

/// Turns the agents' outcomes into one estimate (pure; the actor only runs it).
pub fn judge(outcomes: &[AgentOutcome]) -> PhotoEstimate {
    let agents: Vec<AgentReport> = outcomes.iter().map(report).collect();
    let estimates: Vec<AgentEstimate> = outcomes
        .iter()
        .filter_map(|outcome| match &outcome.result {
            Ok(answer) if !answer.no_food && !answer.items.is_empty() => Some(AgentEstimate {
                agent: outcome.agent.clone(),
                items: answer
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
                    .collect(),
                weight: 1.0,
            }),
            _ => None,
        })
        .collect();
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
    PhotoEstimate::Food { consensus, agents }
}

fn report(outcome: &AgentOutcome) -> AgentReport {
    let (status, total_kcal) = match &outcome.result {
        Ok(answer) if answer.no_food => ("no_food", None),
        Ok(answer) => ("answered", Some(answer.total_kcal())),
        Err(VisionError::Timeout) => ("timeout", None),
        Err(VisionError::Invalid(_)) => ("invalid", None),
        Err(VisionError::Unavailable(_)) => ("unavailable", None),
    };
    AgentReport {
        agent: outcome.agent.clone(),
        status,
        total_kcal,
        seconds: outcome.elapsed.as_secs_f64(),
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
