//! The LLM agent: a chat model with tools, run inside the person's conversation actor. This
//! file is the loop (prompt, model calls, tool rounds, the reply); [`tools`] are the tools and
//! [`arguments`] checks each call against its tool's schema before it runs.
//!
//! Each text message becomes one request with a system prompt (the person's profile and goals,
//! their local date and time, today's totals, the most relevant memories), the recent
//! conversation, and tools. The model decides *what* was eaten and *how much*; the numbers come
//! from the nutrition engine (built-in table, USDA); a model's own numbers are used only for a
//! food no database knows, and are labelled "model estimate". Every effect is a write through the
//! persistence actor, so "saved" is said only after the commit, and a reply the agent writes
//! itself says what was saved or that nothing was (never a bare "Done."). Tool rounds are
//! bounded. A call that follows its schema runs; a value out of the tool's range (a date beyond
//! it) and numbers no food can have are refused with the rule, and the model may correct them;
//! a malformed call (not JSON, a required field missing) is sent back once, and a second one
//! ends the model's part of the turn with a truthful sentence and the rule agent's answer.
//!
//! Commands, photos, locations and buttons go to the rule agent ([`super::rules`]), whose
//! handling of them is deterministic. When the model cannot be reached (after retries and the
//! fallback model), the person is told in one sentence and the rule agent handles the message:
//! never silence, never a made-up number.

mod arguments;
mod tools;

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use health_actors::conversation::{Agent, AgentError, TurnContext};
use health_actors::domain::{Nutrients, Role as HistoryRole};
use health_actors::inbound::{Inbound, InboundContent};
use health_actors::memory::Embedder;
use uuid::Uuid;

use self::arguments::Invalid;
use self::tools::Effects;
use super::reply::reply_with_entry_buttons;
use super::rules::RuleAgent;
use crate::llm::model::{ChatModel, ChatRequest, ChatResponse, LlmError, Message, Role};
use crate::nutrition::engine::NutritionEngine;

/// Model calls per message: enough for "log, then summarise", small enough to bound cost.
pub const MAX_TOOL_ROUNDS: usize = 6;
/// Malformed tool calls sent back to the model in one turn; the next one ends its turn.
const MALFORMED_CALLS_SENT_BACK: usize = 1;
/// What the agent says when the model said nothing and nothing was saved.
const NOTHING_DONE: &str = "I didn't save or change anything. Could you say that another way?";
/// Memories put in the system prompt.
const PROMPT_MEMORIES: usize = 5;
/// How long finding those memories may take. They are optional: a slow or hanging embedder
/// (or search) costs this turn its memories, never its answer. Before this bound, an embeddings
/// endpoint that hung made every message wait for the embedder's own retries (60 s a try) and
/// fail, without the chat model ever being asked.
const RECALL_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

pub struct LlmAgent {
    model: Arc<dyn ChatModel>,
    fallback: Option<Arc<dyn ChatModel>>,
    engine: Arc<NutritionEngine>,
    /// `None` when semantic memory is off (`ENABLE_MEM0=false`).
    embedder: Option<Arc<dyn Embedder>>,
    /// Answers what is not a text message, and every message the model cannot.
    rules: RuleAgent,
}

impl LlmAgent {
    pub fn new(
        model: Arc<dyn ChatModel>,
        fallback: Option<Arc<dyn ChatModel>>,
        engine: Arc<NutritionEngine>,
        embedder: Option<Arc<dyn Embedder>>,
    ) -> Self {
        let rules = RuleAgent::new(engine.clone()).with_memory(embedder.clone());
        Self {
            model,
            fallback,
            engine,
            embedder,
            rules,
        }
    }

    /// One model call of a turn. Once the fallback model has answered in this turn
    /// (`on_fallback`), the turn's later rounds stay on it: the primary was just found
    /// overloaded, and asking it again (with its retries) each round only made the person wait.
    async fn complete(
        &self,
        request: &ChatRequest,
        on_fallback: &mut bool,
    ) -> Result<ChatResponse, LlmError> {
        if let (true, Some(fallback)) = (*on_fallback, &self.fallback) {
            return fallback.complete(request).await;
        }
        match self.model.complete(request).await {
            Err(error) if error.is_overload() => match &self.fallback {
                Some(fallback) => {
                    tracing::warn!(%error, primary = self.model.model(), fallback = fallback.model(), "using the fallback model");
                    let answer = fallback.complete(request).await;
                    *on_fallback = answer.is_ok();
                    answer
                }
                None => Err(error),
            },
            outcome => outcome,
        }
    }

    async fn system_prompt(&self, ctx: &TurnContext<'_>, text: &str) -> Result<String, AgentError> {
        let user = ctx.user();
        let now = ctx.now();
        let local = now.with_timezone(&user.tz());
        let today = local.date_naive();
        let entries = ctx.store().food_entries(user.id, today, today).await?;
        let total = Nutrients::sum(entries.iter().map(|e| &e.total));
        let mut prompt = String::from(
            "You are a friendly, concise health coach in a chat. Log what the person eats with the log_food tool \
             (name each food plainly and estimate grams; the database computes the numbers). Answer questions \
             about their history from get_summary, never from memory. When they correct a logged meal \
             (\"the rice was 100 g\", \"no rice\"), use correct_entry, never log_food again. Never invent a \
             number: if you cannot estimate something, say so. Keep replies short; plain text, no markdown tables.\n\n",
        );
        let _ = writeln!(
            prompt,
            "Local time: {} ({}), {}.",
            local.format("%Y-%m-%d %H:%M"),
            user.timezone,
            local.format("%A")
        );
        let _ = writeln!(
            prompt,
            "Profile: {}",
            serde_json::to_string(&user.profile).unwrap_or_default()
        );
        let _ = writeln!(
            prompt,
            "Daily goals: {}",
            serde_json::to_string(&user.goals).unwrap_or_default()
        );
        let _ = writeln!(
            prompt,
            "Today so far: {:.0} kcal, protein {:.0} g, carbs {:.0} g, fat {:.0} g in {} entries.",
            total.kcal,
            total.protein_g,
            total.carbs_g,
            total.fat_g,
            entries.len()
        );
        if let Some(embedder) = &self.embedder {
            let recall = self.relevant_memories(ctx, embedder.as_ref(), text);
            let memories = match tokio::time::timeout(RECALL_BUDGET, recall).await {
                Ok(memories) => memories,
                Err(_) => {
                    skipped_recall("timeout");
                    tracing::warn!(
                        budget_ms = RECALL_BUDGET.as_millis() as u64,
                        "no memories for this message: finding them took longer than their budget"
                    );
                    Vec::new()
                }
            };
            if !memories.is_empty() {
                prompt.push_str("What you remember about them:\n");
                for (id, content) in memories {
                    let _ = writeln!(prompt, "- {content} (memory id {id})");
                }
            }
        }
        Ok(prompt)
    }

    /// The memories most related to `text`; a failing embedder costs only the memories.
    async fn relevant_memories(
        &self,
        ctx: &TurnContext<'_>,
        embedder: &dyn Embedder,
        text: &str,
    ) -> Vec<(Uuid, String)> {
        let vectors = match embedder.embed(&[text.to_owned()]).await {
            Ok(vectors) => vectors,
            Err(error) => {
                skipped_recall("error");
                tracing::warn!(%error, "no memories for this message: the embedder failed");
                return Vec::new();
            }
        };
        let Some(query) = vectors.first() else {
            return Vec::new();
        };
        match ctx
            .store()
            .search_memories(ctx.user().id, embedder.name(), query, PROMPT_MEMORIES)
            .await
        {
            Ok(found) => found
                .into_iter()
                .map(|m| (m.memory.id, m.memory.content))
                .collect(),
            Err(error) => {
                skipped_recall("error");
                tracing::warn!(%error, "no memories for this message: the search failed");
                Vec::new()
            }
        }
    }

    async fn converse(
        &self,
        ctx: &mut TurnContext<'_>,
        inbound: &Inbound,
        text: &str,
    ) -> Result<(), AgentError> {
        ctx.typing().await;
        let system = self.system_prompt(ctx, text).await?;
        let mut messages: Vec<Message> = ctx
            .history()
            .iter()
            .map(|message| Message::Text {
                role: match message.role {
                    HistoryRole::User => Role::User,
                    HistoryRole::Assistant => Role::Assistant,
                },
                text: message.content.clone(),
            })
            .collect();
        messages.push(Message::Text {
            role: Role::User,
            text: text.to_owned(),
        });
        let mut effects = Effects::default();
        let specs = tools::specs(self.embedder.is_some());
        let mut malformed_calls = 0;
        let mut on_fallback = false;
        for _round in 0..MAX_TOOL_ROUNDS {
            let request = ChatRequest {
                system: system.clone(),
                messages: messages.clone(),
                tools: specs.clone(),
                max_tokens: 1024,
            };
            let response = match self.complete(&request, &mut on_fallback).await {
                Ok(response) => response,
                Err(error) => return self.unavailable(ctx, inbound, &error, &effects).await,
            };
            if response.tool_calls.is_empty() {
                let text = response
                    .text
                    .unwrap_or_else(|| effects.summary_or(NOTHING_DONE));
                match effects.entries.as_slice() {
                    // One meal saved this turn: Undo / Edit under the reply.
                    [entry_id] => {
                        reply_with_entry_buttons(ctx, text, *entry_id).await?;
                    }
                    _ => {
                        let _ = ctx.reply(text).await;
                    }
                }
                return Ok(());
            }
            messages.push(Message::ToolCalls {
                text: response.text.clone(),
                calls: response.tool_calls.clone(),
            });
            for call in &response.tool_calls {
                let result = match arguments::check(&specs, call) {
                    Ok(()) => {
                        tools::run(
                            ctx,
                            &self.engine,
                            self.embedder.as_deref(),
                            inbound,
                            call,
                            &mut effects,
                        )
                        .await?
                    }
                    Err(invalid) => {
                        let malformed = matches!(invalid, Invalid::Malformed(_));
                        tracing::warn!(tool = %call.name, malformed, "the model's tool call was refused");
                        tracing::debug!(tool = %call.name, ?invalid, "why the tool call was refused");
                        if malformed {
                            malformed_calls += 1;
                            if malformed_calls > MALFORMED_CALLS_SENT_BACK {
                                return self.unreadable(ctx, inbound, &effects).await;
                            }
                        }
                        invalid.tool_result()
                    }
                };
                messages.push(Message::ToolResult {
                    call_id: call.id.clone(),
                    content: result.to_string(),
                });
            }
        }
        let _ = ctx
            .reply(effects.summary_or("I couldn't finish that in a reasonable number of steps. Could you say it more simply?"))
            .await;
        Ok(())
    }

    /// The model's tool calls could not be read, again: say so in one sentence, then let the
    /// rule agent answer (unless tools already saved something this turn, which is then
    /// reported instead). Not "I couldn't reach my language model": it was reached.
    async fn unreadable(
        &self,
        ctx: &mut TurnContext<'_>,
        inbound: &Inbound,
        effects: &Effects,
    ) -> Result<(), AgentError> {
        tracing::warn!("the model sent malformed tool calls twice; the rule agent answers");
        if !effects.saved.is_empty() {
            let _ = ctx.reply(effects.summary_or("")).await;
            return Ok(());
        }
        let _ = ctx
            .reply("My language model sent me instructions I couldn't read, so I'll answer with my simpler built-in rules.")
            .await;
        self.rules.handle(ctx, inbound).await
    }

    /// The model is out of reach: say so in one sentence, then let the rule agent answer
    /// (unless tools already saved something this turn, which is then reported instead).
    async fn unavailable(
        &self,
        ctx: &mut TurnContext<'_>,
        inbound: &Inbound,
        error: &LlmError,
        effects: &Effects,
    ) -> Result<(), AgentError> {
        tracing::warn!(%error, "the language model failed; the rule agent answers");
        if !effects.saved.is_empty() {
            let _ = ctx.reply(effects.summary_or("")).await;
            return Ok(());
        }
        let _ = ctx
            .reply(format!(
                "{} I'll answer with my simpler built-in rules.",
                error.for_person()
            ))
            .await;
        self.rules.handle(ctx, inbound).await
    }
}

#[async_trait]
impl Agent for LlmAgent {
    async fn handle(&self, ctx: &mut TurnContext<'_>, inbound: &Inbound) -> Result<(), AgentError> {
        match &inbound.content {
            InboundContent::Text(text) => self.converse(ctx, inbound, text).await,
            _ => self.rules.handle(ctx, inbound).await,
        }
    }
}

/// Counts a prompt that went without memories.
fn skipped_recall(reason: &'static str) {
    metrics::counter!(crate::metrics::MEMORY_RECALL_SKIPPED_TOTAL, "reason" => reason).increment(1);
}
