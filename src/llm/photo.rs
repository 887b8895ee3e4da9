//! Photos of meals: the vision agents' consensus, saved as a food entry, in any agent.
//!
//! [`WithPhotos`] wraps the conversation's agent (offline or LLM): a photo goes to the vision
//! coordinator (every configured vision model at once, merged by the consensus actor), anything
//! else to the wrapped agent. Without vision models the wrapped agent answers photos itself (it
//! says photo analysis needs a vision model).
//!
//! The entry is saved at once, with "undo" one message away: that is what people expect from a
//! food log (the text path saves at once too), and a confirmation step would lose the entries of
//! everyone who never presses the button. The reply shows the range and how much the agents
//! agreed, so a doubtful estimate is visible as such. Nothing is saved when no agent saw food or
//! none answered: the person is told and asked to describe the meal.

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use health_actors::conversation::{Agent, AgentError, TurnContext};
use health_actors::domain::{FoodEntry, FoodItem, NutritionSource};
use health_actors::inbound::{Inbound, InboundContent};
use health_actors::ports::Write;
use health_actors::vision::{Photo, PhotoEstimate, VisionHandle};

use super::offline::{entry_id_for, meal_type_at};

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
        let estimate = match self.vision.estimate(photo, caption.clone()).await {
            Ok(estimate) => estimate,
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
        let user = ctx.user().clone();
        let now = ctx.now();
        let items: Vec<FoodItem> = consensus
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
        let entry = FoodEntry {
            id: entry_id_for(inbound.id),
            user_id: user.id,
            eaten_at: now,
            local_date: user.local_date(now),
            meal_type: Some(meal_type_at(now.with_timezone(&user.tz()).time())),
            description: caption.unwrap_or_else(|| "photo".to_owned()),
            items,
            total: consensus.total,
            photo_path: None,
            created_at: now,
        };
        ctx.write(vec![Write::InsertFoodEntry(entry)]).await?;

        let mut text = String::from("From your photo (saved; say \"undo\" to remove it):\n");
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
        let _ = ctx.reply(text).await;
        Ok(())
    }
}

const UNAVAILABLE: &str =
    "Photo analysis is unavailable right now, so nothing was saved. Can you describe what you ate?";
