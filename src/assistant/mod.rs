//! # The assistant: what the product says and does in a conversation
//!
//! Every message a person sends (Telegram, the HTTP API's `/chat`, the terminal chat) reaches
//! their conversation actor in the core, which runs one [`Agent`] for it. The agents are here:
//!
//! - the **rule agent** ([`RuleAgent`], `AGENT_MODEL=offline:rules`): deterministic rules, no
//!   model, every number from the nutrition engine. One file per family of rules under
//!   `rules/` (meals, corrections, totals, goals, weight, undo, settings, export, memory,
//!   forget me).
//! - the **LLM agent** ([`LlmAgent`]): a chat model with tools (`llm_agent/`: the loop, and
//!   its tools); the numbers still come from the nutrition engine, and the rule agent answers
//!   commands, buttons and whatever the model cannot.
//! - **photos** ([`WithPhotos`]): wraps either agent; a photo goes to the vision agents and
//!   their consensus is saved as an entry (`photo.rs`).
//!
//! What they share: `entries.rs` (the ids and meal of a new entry, a day's total, corrections,
//! the Undo / Edit buttons), `memory.rs` (keeping and finding facts), `reply.rs` (sending a
//! reply, with the buttons under a saved entry) and `format.rs` (how numbers, days and goals
//! read). Reading what a message means needs no I/O and lives in the core,
//! [`health_actors::understanding`]; the model providers the LLM agent talks to are
//! [`crate::llm`]'s.
//!
//! The edges use only what this file exports: [`agent`] (and [`WithPhotos`]) to build the agent
//! at start, and the few facts they need about what an agent did: [`entry_id_for`] (the entry a
//! message saved), [`meal_type_at`] (the meal of a time of day), [`consensus_entry`] (a photo
//! estimate as an entry) and [`FORGET_ME_CONFIRM`] (the button that deleted a person).
//!
//! Dependencies point one way: `rules/*` and `llm_agent/*` use `entries.rs`, `memory.rs`,
//! `reply.rs` and `format.rs`; `entries.rs` uses `reply.rs` and `format.rs`; `format.rs` and
//! `reply.rs` use nothing of the assistant's.

mod entries;
mod format;
mod llm_agent;
mod memory;
mod photo;
mod reply;
mod rules;

use std::sync::Arc;

use health_actors::conversation::Agent;

pub use self::entries::{entry_id_for, meal_type_at};
pub use self::llm_agent::{LlmAgent, MAX_TOOL_ROUNDS};
pub use self::photo::{consensus_entry, WithPhotos};
pub use self::rules::{RuleAgent, FORGET_ME_CONFIRM};
use crate::config::LlmSettings;
use crate::llm::model::LlmError;
use crate::llm::{chat_model, embedder};
use crate::nutrition::engine::NutritionEngine;

/// The agent `AGENT_MODEL` asks for: the LLM agent (with its fallback model and memory), or the
/// rule agent (`offline:rules`, or any spec whose provider has no chat model).
pub fn agent(
    settings: &LlmSettings,
    enable_memory: bool,
    engine: Arc<NutritionEngine>,
) -> Result<Arc<dyn Agent>, LlmError> {
    let embedder = if enable_memory {
        Some(embedder(settings)?)
    } else {
        None
    };
    let Some(model) = chat_model(settings, &settings.agent_model)? else {
        return Ok(Arc::new(RuleAgent::new(engine).with_memory(embedder)));
    };
    let fallback = match &settings.fallback_model {
        Some(spec) => chat_model(settings, spec)?,
        None => None,
    };
    Ok(Arc::new(LlmAgent::new(model, fallback, engine, embedder)))
}
