//! Photos of meals: the vision agents' consensus, saved as a food entry, in any agent.
//!
//! [`WithPhotos`] wraps the conversation's agent (rules or LLM): a photo goes to the vision
//! coordinator (every configured vision model at once, merged by the consensus actor), anything
//! else to the wrapped agent. Without vision models the wrapped agent answers photos itself (it
//! says photo analysis needs a vision model).
//!
//! The entry is saved at once, with Undo and Edit buttons under the reply: that is what people
//! expect from a food log (the text path saves at once too), and a confirmation step would lose
//! the entries of everyone who never presses the button (see [`super::entries`]). The reply
//! shows the range and how much the agents agreed, so a doubtful estimate is visible as such.
//! Nothing is saved when no agent saw food or none answered: the person is told and asked to
//! describe the meal.
//!
//! Each agent is weighted and scaled by the person's calibration, learned from their earlier
//! corrections; what each agent said about each item is kept beside the entry
//! ([`health_actors::domain::VisionEstimate`]) so that a correction of this entry calibrates
//! them in turn.

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use health_actors::consensus::{Calibration, Consensus};
use health_actors::conversation::{Agent, AgentError, TurnContext};
use health_actors::domain::{FoodEntry, FoodItem, NutritionSource, User, VisionEstimate};
use health_actors::inbound::{Inbound, InboundContent};
use health_actors::ports::Write;
use health_actors::vision::{AgentReport, Photo, PhotoEstimate, VisionError, VisionHandle};
use uuid::Uuid;

use super::entries::{entry_id_for, meal_type_at};
use super::reply::reply_with_entry_buttons;

/// The newest corrected estimates a person's calibration is learned from.
const CALIBRATION_ROWS: usize = 500;

pub struct WithPhotos {
    inner: Arc<dyn Agent>,
    vision: VisionHandle,
}

impl WithPhotos {
    pub fn new(inner: Arc<dyn Agent>, vision: VisionHandle) -> Self {
        Self { inner, vision }
    }
}

#[async_trait]
impl Agent for WithPhotos {
    async fn handle(&self, ctx: &mut TurnContext<'_>, inbound: &Inbound) -> Result<(), AgentError> {
        match &inbound.content {
            InboundContent::Photo { bytes, caption } if self.vision.agents() > 0 => {
                self.photo(ctx, inbound, bytes, caption.as_deref()).await
            }
            _ => self.inner.handle(ctx, inbound).await,
        }
    }
}

impl WithPhotos {
    async fn photo(
        &self,
        ctx: &mut TurnContext<'_>,
        inbound: &Inbound,
        bytes: &[u8],
        caption: Option<&str>,
    ) -> Result<(), AgentError> {
        let Some(photo) = Photo::sniff(bytes.to_vec()) else {
            let _ = ctx.reply("That doesn't look like a photo I can read (JPEG, PNG or WebP). Could you send it again?").await;
            return Ok(());
        };
        ctx.typing().await;
        let caption = caption
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let calibration = calibration(ctx).await;
        let estimate = match self
            .vision
            .estimate_calibrated(photo, caption.clone(), calibration)
            .await
        {
            Ok(estimate) => estimate,
            Err(error @ VisionError::Interrupted) => {
                tracing::warn!("photo analysis restarted with this photo in flight");
                let _ = ctx.reply(error.to_string()).await;
                return Ok(());
            }
            Err(error) => {
                tracing::warn!(%error, "photo analysis failed");
                let _ = ctx.reply(UNAVAILABLE).await;
                return Ok(());
            }
        };
        let (consensus, agents) = match estimate {
            PhotoEstimate::Food { consensus, agents } => (consensus, agents),
            PhotoEstimate::NoFood { .. } => {
                let _ = ctx.reply("I don't see food in this photo, so nothing was saved. If there is, tell me what it was.").await;
                return Ok(());
            }
            PhotoEstimate::Unavailable { .. } => {
                let _ = ctx.reply(UNAVAILABLE).await;
                return Ok(());
            }
        };
        let entry_id = entry_id_for(inbound.id);
        let entry = consensus_entry(
            ctx.user(),
            entry_id,
            &consensus,
            caption,
            inbound.photo_path.clone(),
            ctx.now(),
        );
        ctx.write(vec![Write::InsertFoodEntry(entry)]).await?;
        keep_agent_estimates(ctx, entry_id, &agents).await;

        let mut text = String::from("From your photo (saved):\n");
        for item in &consensus.items {
            let flag = if item.minority {
                " (only some of my photo readers saw this)"
            } else {
                ""
            };
            let _ = writeln!(
                text,
                "• {} ({:.0} g): {:.0} kcal{flag}",
                item.name, item.grams, item.nutrients.kcal
            );
        }
        let (low, high) = consensus.interval_kcal;
        let _ = write!(text, "Total: {:.0} kcal", consensus.total.kcal);
        if high > low {
            let _ = write!(text, ", likely {low:.0}–{high:.0}");
        }
        let answered = agents.iter().filter(|a| a.status == "answered").count();
        let _ = write!(
            text,
            ".\nConfidence: {} ({} of {} photo readers agreed).",
            match consensus.confidence {
                health_actors::consensus::Confidence::High => "high",
                health_actors::consensus::Confidence::Medium => "medium",
                health_actors::consensus::Confidence::Low => "low",
                health_actors::consensus::Confidence::SingleSource => "low, from a single reader",
            },
            answered.saturating_sub(consensus.dropped.len()),
            agents.len()
        );
        for (agent, reason) in &consensus.dropped {
            let _ = write!(text, "\nLeft out {agent}: its {reason}.");
        }
        text.push_str("\nWrong amount? Tell me, e.g. \"the rice was 100 g\".");
        reply_with_entry_buttons(ctx, text, entry_id).await
    }
}

/// The person's calibration of the vision agents; none (every agent equal) if it cannot be read.
async fn calibration(ctx: &TurnContext<'_>) -> Calibration {
    match ctx
        .store()
        .corrected_vision_estimates(ctx.user().id, CALIBRATION_ROWS)
        .await
    {
        Ok(rows) => Calibration::learn(&rows),
        Err(error) => {
            tracing::warn!(%error, "the vision calibration could not be read; agents weigh the same");
            Calibration::default()
        }
    }
}

/// Keeps what each agent said about each saved item, for calibration by a later correction. A
/// failure costs only that learning, so it is logged, not reported to the person.
async fn keep_agent_estimates(ctx: &TurnContext<'_>, entry_id: Uuid, agents: &[AgentReport]) {
    let user_id = ctx.user().id;
    let now = ctx.now();
    let estimates: Vec<VisionEstimate> = agents
        .iter()
        .flat_map(|agent| {
            agent.items.iter().map(move |item| VisionEstimate {
                entry_id,
                item: item.item.clone(),
                agent: agent.agent.clone(),
                user_id,
                grams: item.grams,
                kcal: item.kcal,
                corrected_grams: None,
                created_at: now,
                corrected_at: None,
            })
        })
        .collect();
    if estimates.is_empty() {
        return;
    }
    if let Err(error) = ctx.store().save_vision_estimates(&estimates).await {
        tracing::warn!(%error, "the vision agents' estimates could not be kept");
    }
}

const UNAVAILABLE: &str =
    "Photo analysis is unavailable right now, so nothing was saved. Can you describe what you ate?";

/// The food entry of a photo's consensus, for the conversation and the API alike: the
/// consensus items (from the food table when it knew them), the agreement as each item's
/// confidence, the caption as the description, eaten `now` at the meal of the person's local
/// time.
pub fn consensus_entry(
    user: &User,
    id: Uuid,
    consensus: &Consensus,
    caption: Option<String>,
    photo_path: Option<String>,
    now: DateTime<Utc>,
) -> FoodEntry {
    let items = consensus
        .items
        .iter()
        .map(|item| FoodItem {
            input: item.name.clone(),
            name: item.name.clone(),
            grams: (item.grams * 10.0).round() / 10.0,
            nutrients: item.nutrients,
            source: if item.reference_used {
                NutritionSource::BuiltIn
            } else {
                NutritionSource::ModelEstimate
            },
            confidence: consensus.agreement,
        })
        .collect();
    FoodEntry {
        id,
        user_id: user.id,
        eaten_at: now,
        local_date: user.local_date(now),
        meal_type: Some(meal_type_at(now.with_timezone(&user.tz()).time())),
        description: caption.unwrap_or_else(|| "photo".to_owned()),
        items,
        total: consensus.total,
        photo_path,
        created_at: now,
    }
}
