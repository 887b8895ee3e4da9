//! The rule agent: the assistant with no model behind it, used when no LLM key is configured
//! (`AGENT_MODEL=offline:rules`), and by the LLM agent for commands, locations, buttons and
//! whenever the model cannot be reached.
//!
//! Deterministic rules ([`health_actors::understanding`]) decide what a message asks for; the
//! nutrition engine (built-in table, and USDA when a key is set) supplies every number. It
//! never invents a number: a food it does not know is named back to the person and nothing is
//! saved for it. Every write goes through the persistence actor and the reply that says "saved"
//! is sent only after the commit.
//!
//! This file reads the message and hands it to one family of rules, one file each:
//!
//! | file | what it answers |
//! | --- | --- |
//! | [`meals`] | a meal in words (logged), "calories in an avocado?" (only told) |
//! | [`corrections`] | "the rice was 100 g", "no rice": a saved entry corrected |
//! | [`totals`] | "how much protein today?", "what did I eat yesterday?", `/today`, `/week` |
//! | [`goals`] | "my goal is 1800 kcal", `/goal`, the profile and the goal worked out from it |
//! | [`weight`] | "I weigh 72.5 kg", `/weight` |
//! | [`undo`] | "undo", `/undo` |
//! | [`settings`] | `/settings`, a shared location (the time zone) |
//! | [`export`] | `/export` (a CSV document) |
//! | [`memory`] | "remember that ...", "what do you remember?", "forget that ...", `/memory` |
//! | [`forget`] | `/forget_me` (everything about the person, after a confirmation) |
//!
//! The order of the text rules matters: a memory request first ("remember that I had 2 eggs" is
//! a fact, not a meal), then a correction of a saved entry, then a profile, then the intent.

mod corrections;
mod export;
mod forget;
mod goals;
mod meals;
mod memory;
mod settings;
mod totals;
mod undo;
mod weight;

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use health_actors::conversation::{Agent, AgentError, TurnContext};
use health_actors::domain::MessageId;
use health_actors::inbound::{Inbound, InboundContent};
use health_actors::memory::Embedder;
use health_actors::understanding::{
    classify, memory_request, parse_profile, DayRef, Intent, Metric, Period, QuestionKind,
};

pub use self::forget::FORGET_ME_CONFIRM;
use super::entries::entry_button;
use super::reply::reply;
use crate::nutrition::engine::NutritionEngine;

pub const HELP: &str = "I keep track of what you eat, with honest numbers.\n\
\n\
• Tell me what you ate: \"2 eggs and a slice of toast\", \"150 g chicken breast with rice\", \"yesterday at 8pm: a bowl of pasta\".\n\
• Ask: \"how much protein today?\", \"what did I eat yesterday?\", \"am I on track this week?\"\n\
• Goals: \"my goal is 1800 kcal\", \"set my protein goal to 120 g\", or tell me about yourself and I'll work one out: \"I'm a 35 year old woman, 165 cm, 62 kg, moderately active, and want to lose weight\".\n\
• Weight: \"I weigh 72.5 kg\".\n\
• Memory: \"remember that I'm vegetarian\", \"what do you remember?\", \"forget that I'm vegetarian\".\n\
• Made a mistake? \"undo\" removes the last entry; \"the rice was 100 g\", \"it was 3 eggs\" or \"no rice\" corrects it.\n\
\n\
Commands: /today, /week, /goal, /weight, /undo, /export, /memory, /settings, /forget_me, /help.";

const WELCOME: &str = "Hi! I'm your health coach. Tell me what you eat and I'll work out the calories and macros, keep your daily totals and track your goals.";

/// The first steps, on /start: the time zone makes "today" right, a goal makes totals useful.
const START_TIPS: &str = "Two things help from the start: share your location once (or send /settings timezone Europe/Paris) so that \"today\" is your day, and set a daily goal with /goal 1800 kcal.";

/// The assistant by rules: no model, every number from the nutrition engine.
pub struct RuleAgent {
    engine: Arc<NutritionEngine>,
    /// Embeds the facts of the memory rule; `None` when memory is off (`ENABLE_MEM0=false`).
    embedder: Option<Arc<dyn Embedder>>,
}

impl RuleAgent {
    pub fn new(engine: Arc<NutritionEngine>) -> Self {
        Self {
            engine,
            embedder: None,
        }
    }

    /// Lets "remember that ..." keep facts, embedded by `embedder` (the LLM agent's, so both
    /// agents keep and find facts in one space).
    pub fn with_memory(mut self, embedder: Option<Arc<dyn Embedder>>) -> Self {
        self.embedder = embedder;
        self
    }
}

#[async_trait]
impl Agent for RuleAgent {
    async fn handle(&self, ctx: &mut TurnContext<'_>, inbound: &Inbound) -> Result<(), AgentError> {
        match &inbound.content {
            InboundContent::Text(text) => {
                if let Some(request) = memory_request(text) {
                    return memory::memory(ctx, self.embedder.as_deref(), inbound, request).await;
                }
                if let Some(done) = corrections::correction(ctx, self.engine.table(), text).await {
                    return done;
                }
                if let Some(facts) = parse_profile(text) {
                    return goals::update_profile(ctx, facts).await;
                }
                let intent = classify(text, self.engine.table());
                self.act(ctx, inbound, intent).await
            }
            InboundContent::Command { name, args } => self.command(ctx, inbound, name, args).await,
            InboundContent::Photo { caption, .. } => {
                let mut text = String::from(
                    "I can't look at photos yet: that needs a vision model (set OPENAI_API_KEY or ANTHROPIC_API_KEY). \
                     Tell me in words what was on the plate, with amounts if you know them, and I'll log it.",
                );
                if let Some(caption) = caption.as_deref().filter(|c| !c.trim().is_empty()) {
                    let _ = write!(text, "\n\nYour caption was: \"{}\". Send it as a message if it lists everything.", caption.trim());
                }
                reply(ctx, text).await
            }
            InboundContent::Location {
                latitude,
                longitude,
            } => settings::zone_from_location(ctx, *latitude, *longitude).await,
            InboundContent::Button { data, message } => button(ctx, data, *message).await,
        }
    }
}

impl RuleAgent {
    async fn act(
        &self,
        ctx: &mut TurnContext<'_>,
        inbound: &Inbound,
        intent: Intent,
    ) -> Result<(), AgentError> {
        match intent {
            Intent::LogMeal {
                text,
                meal_type,
                day,
                time,
            } => meals::log_meal(ctx, &self.engine, inbound, &text, meal_type, day, time).await,
            Intent::Question { kind, period } => totals::answer_question(ctx, kind, period).await,
            Intent::FoodInfo { text } => meals::food_info(ctx, &self.engine, &text).await,
            Intent::SetGoal { nutrient, amount } => goals::set_goal(ctx, nutrient, amount).await,
            Intent::GoalFromProfile => goals::goal_from_profile(ctx).await,
            Intent::LogWeight { kg, .. } => weight::log_weight(ctx, inbound, kg).await,
            Intent::Undo => undo::undo(ctx).await,
            Intent::Help => reply(ctx, HELP).await,
            Intent::Greeting => reply(ctx, format!("{WELCOME}\n\n{HELP}")).await,
            Intent::Unknown => match inbound.content {
                // "a plate of zorblax": shaped like food, so say which food is unknown (or let
                // USDA find it) instead of answering with the help text.
                InboundContent::Text(ref text) if meals::looks_like_food(text) => {
                    meals::log_meal(ctx, &self.engine, inbound, text, None, DayRef::Today, None)
                        .await
                }
                _ => reply(ctx, format!("Sorry, I didn't understand that.\n\n{HELP}")).await,
            },
        }
    }

    async fn command(
        &self,
        ctx: &mut TurnContext<'_>,
        inbound: &Inbound,
        name: &str,
        args: &str,
    ) -> Result<(), AgentError> {
        let args = args.trim();
        match name.to_ascii_lowercase().as_str() {
            "start" => reply(ctx, format!("{WELCOME}\n\n{HELP}\n\n{START_TIPS}")).await,
            "help" => reply(ctx, HELP).await,
            "today" => {
                totals::answer_question(
                    ctx,
                    QuestionKind::Total(Metric::All),
                    Period::Day(DayRef::Today),
                )
                .await
            }
            "week" => {
                totals::week_chart(ctx).await?;
                totals::answer_question(ctx, QuestionKind::OnTrack, Period::ThisWeek).await
            }
            "export" => export::export(ctx).await,
            "memory" => memory::show_memories(ctx).await,
            "forget_me" => forget::ask_forget_me(ctx).await,
            "undo" => undo::undo(ctx).await,
            "goal" if args.is_empty() => goals::show_goals(ctx).await,
            "goal" => {
                let intent = classify(&format!("my goal is {args}"), self.engine.table());
                match intent {
                    Intent::SetGoal { .. } | Intent::GoalFromProfile => self.act(ctx, inbound, intent).await,
                    _ => reply(ctx, "Tell me the goal as a number, e.g. /goal 1800 kcal or /goal protein 120 g.").await,
                }
            }
            "weight" if args.is_empty() => weight::show_weights(ctx).await,
            "weight" => match classify(&format!("I weigh {args}"), self.engine.table()) {
                Intent::LogWeight { kg, .. } => weight::log_weight(ctx, inbound, kg).await,
                _ => reply(
                    ctx,
                    "Tell me your weight with its unit, e.g. /weight 72.5 kg or /weight 160 lb.",
                )
                .await,
            },
            "settings" => settings::settings(ctx, args).await,
            other => {
                reply(
                    ctx,
                    format!("I don't know the command /{other}. Send /help to see what I can do."),
                )
                .await
            }
        }
    }
}

/// A press on one of our buttons; `message` is the message it was under.
async fn button(
    ctx: &mut TurnContext<'_>,
    data: &str,
    message: MessageId,
) -> Result<(), AgentError> {
    if let Some(done) = entry_button(ctx, data, message).await {
        return done;
    }
    if let Some(done) = forget::forget_me_button(ctx, data, message).await {
        return done;
    }
    if let Some(done) = memory::memory_button(ctx, data).await {
        return done;
    }
    reply(
        ctx,
        "That button belongs to an older message; there is nothing to do with it now.",
    )
    .await
}
