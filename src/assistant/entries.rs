//! Food entries for every agent: the ids and meal of a new entry, a day's total, and saved
//! entries after the fact: corrections ("the rice was 100 g", "no rice") and the presses on the
//! Undo / Edit buttons under the reply to a saved estimate ([`super::reply`] puts them there).
//!
//! Why save at once with Undo rather than ask Confirm first: people log a meal and put the phone
//! away. An estimate waiting for a Confirm press is lost for everyone who never presses it, and
//! the day's totals would be wrong until they do; an entry that is saved at once is right for
//! the many who agree with it and one press (or "undo") away from gone for the few who don't.
//! A wrong amount is fixed by saying so, which is quicker than a form.
//!
//! A correction applies to the person's most recent entry (of the last few days) that has the
//! named food. The item's grams change and its numbers are rescaled at the item's own values per
//! gram (from the food table, USDA or the photo consensus): nothing new is estimated. When the
//! entry came from a photo, each vision agent's own estimate of that item is marked with the
//! correction, which calibrates the agents for this person's next photos
//! ([`health_actors::consensus::calibration`]).

use std::fmt::Write as _;

use chrono::{Duration, NaiveDate, NaiveTime, Timelike};
use health_actors::conversation::{AgentError, TurnContext};
use health_actors::domain::{FoodEntry, FoodItem, MealType, MessageId, Nutrients, User};
use health_actors::nutrition::FoodTable;
use health_actors::ports::Write;
use health_actors::understanding::{
    apply_correction, find_item, Change, Correction, CorrectionError,
};
use uuid::Uuid;

use super::format::{
    capitalise, day_label, goal_line, grams, macros_line, pieces, plain_food_name,
};
use super::reply::{EDIT_PREFIX, UNDO_PREFIX};

/// How many local days back a correction looks for the food.
const CORRECTION_DAYS: i64 = 2;

/// A namespace for ids derived from the message that created a row, so that handling the same
/// message again (a redelivery, a replay after a crash) writes the same ids and the store ignores
/// the duplicate.
pub(super) const ENTRY_NAMESPACE: Uuid = Uuid::from_u128(0x6d8f_1c3e_52a4_4b7e_9a0d_1f2e_3c4b_5a69);

/// The id of the food entry (or weight log) that the message `inbound_id` creates, so that an
/// edge can read back what a message saved (the HTTP API's chat answer).
pub fn entry_id_for(inbound_id: Uuid) -> Uuid {
    Uuid::new_v5(&ENTRY_NAMESPACE, inbound_id.as_bytes())
}

/// The meal a local time of day most likely is.
pub fn meal_type_at(time: NaiveTime) -> MealType {
    match time.hour() {
        5..=10 => MealType::Breakfast,
        11..=14 => MealType::Lunch,
        17..=21 => MealType::Dinner,
        _ => MealType::Snack,
    }
}

pub(super) async fn day_total(
    ctx: &TurnContext<'_>,
    user: &User,
    date: NaiveDate,
) -> Result<Nutrients, AgentError> {
    let entries = ctx.store().food_entries(user.id, date, date).await?;
    Ok(Nutrients::sum(entries.iter().map(|entry| &entry.total)))
}

/// Handles a press on an entry's button; `None` when `data` is not one.
/// `message` is the reply the button was under.
pub(super) async fn entry_button(
    ctx: &mut TurnContext<'_>,
    data: &str,
    message: MessageId,
) -> Option<Result<(), AgentError>> {
    if let Some(id) = data.strip_prefix(UNDO_PREFIX) {
        return Some(undo_entry(ctx, Uuid::parse_str(id).ok(), message).await);
    }
    if let Some(id) = data.strip_prefix(EDIT_PREFIX) {
        return Some(edit_entry(ctx, Uuid::parse_str(id).ok()).await);
    }
    None
}

/// Removes exactly the entry the button was under, whatever was logged since, and says so in
/// place of the reply that offered it: its Undo / Edit buttons go with it.
async fn undo_entry(
    ctx: &mut TurnContext<'_>,
    id: Option<Uuid>,
    message: MessageId,
) -> Result<(), AgentError> {
    let user = ctx.user().clone();
    let entry = match id {
        Some(id) => ctx.store().food_entry(user.id, id).await?,
        None => None,
    };
    let Some(entry) = entry else {
        let _ = ctx
            .reply_in_place(
                message,
                "That entry is already removed; nothing else was changed.",
            )
            .await;
        return Ok(());
    };
    ctx.write(vec![Write::DeleteFoodEntry {
        user_id: user.id,
        id: entry.id,
    }])
    .await?;
    let today = user.local_date(ctx.now());
    let when = day_label(entry.local_date, today);
    let total = day_total(ctx, &user, entry.local_date).await?;
    let _ = ctx
        .reply_in_place(
            message,
            format!(
                "Removed \"{}\" ({:.0} kcal, {when}).\n{}",
                entry.description,
                entry.total.kcal,
                goal_line(&user.goals, &total, &when)
            ),
        )
        .await;
    Ok(())
}

/// Explains how to correct the entry, with one of its own foods as the example.
async fn edit_entry(ctx: &mut TurnContext<'_>, id: Option<Uuid>) -> Result<(), AgentError> {
    let user_id = ctx.user().id;
    let entry = match id {
        Some(id) => ctx.store().food_entry(user_id, id).await?,
        None => None,
    };
    let text = match entry {
        None => "That entry was removed, so there is nothing to edit. Tell me what you ate and I'll log it again.".to_owned(),
        Some(entry) => {
            let food = entry
                .items
                .first()
                .map(|item| plain_food_name(&item.name))
                .unwrap_or_else(|| "rice".to_owned());
            format!(
                "Tell me what to change in \"{}\", e.g. \"the {food} was 100 g\" or \"no {food}\".",
                entry.description
            )
        }
    };
    let _ = ctx.reply(text).await;
    Ok(())
}

/// What a correction did.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Corrected {
    /// Saved: the entry as it is now, and the item that changed.
    Updated {
        after: Box<FoodEntry>,
        change: Change,
        /// How many vision agents' estimates the correction calibrates.
        calibrated_agents: usize,
    },
    /// Nothing is logged in the last few days.
    NoEntry,
    /// No recent entry has the food; the latest entry is named to the person.
    NotFound { latest: FoodEntry },
    /// Removing the item would leave the entry empty.
    OnlyItem { entry: FoodEntry },
    /// The amount is not usable.
    BadAmount(f64),
    /// A count for an item that was not logged as a number of pieces.
    NotCounted { item: Box<FoodItem> },
}

/// Applies `correction` to the person's most recent entry that has the food, saves it (the
/// numbers rescaled, never estimated anew) and calibrates the vision agents when the entry came
/// from a photo.
pub(super) async fn correct_recent_entry(
    ctx: &mut TurnContext<'_>,
    table: &FoodTable,
    correction: &Correction,
) -> Result<Corrected, AgentError> {
    let user = ctx.user().clone();
    let Some(latest) = ctx.store().last_food_entry(user.id).await? else {
        return Ok(Corrected::NoEntry);
    };
    let mut candidates = vec![latest.clone()];
    let today = user.local_date(ctx.now());
    let mut recent = ctx
        .store()
        .food_entries(user.id, today - Duration::days(CORRECTION_DAYS), today)
        .await?;
    recent.sort_by_key(|entry| std::cmp::Reverse(entry.created_at));
    candidates.extend(recent.into_iter().filter(|entry| entry.id != latest.id));
    let found = candidates.iter().find_map(|entry| {
        find_item(entry, correction.food(), table).map(|index| (entry.clone(), index))
    });
    let Some((entry, index)) = found else {
        return Ok(Corrected::NotFound { latest });
    };
    let (after, change) = match apply_correction(&entry, index, correction) {
        Ok(applied) => applied,
        Err(CorrectionError::OnlyItem) => return Ok(Corrected::OnlyItem { entry }),
        Err(CorrectionError::BadAmount(grams)) => return Ok(Corrected::BadAmount(grams)),
        Err(CorrectionError::NotCounted) => {
            return Ok(Corrected::NotCounted {
                item: Box::new(entry.items[index].clone()),
            })
        }
        Err(CorrectionError::NoSuchItem) => return Ok(Corrected::NotFound { latest }),
    };
    ctx.write(vec![Write::UpdateFoodEntry(after.clone())])
        .await?;
    let calibrated_agents = calibrate_agents(ctx, &entry, &change).await;
    Ok(Corrected::Updated {
        after: Box::new(after),
        change,
        calibrated_agents,
    })
}

/// Marks every vision agent's estimate of the corrected item with the person's amount (0 when
/// it was not there). Calibration is worth having but not worth failing the correction for: a
/// store error is logged and costs only the learning.
async fn calibrate_agents(ctx: &TurnContext<'_>, entry: &FoodEntry, change: &Change) -> usize {
    let user_id = ctx.user().id;
    let estimates = match ctx.store().vision_estimates(user_id, entry.id).await {
        Ok(estimates) => estimates,
        Err(error) => {
            tracing::warn!(%error, "the vision estimates of a corrected entry could not be read");
            return 0;
        }
    };
    let corrected_grams = change.after.as_ref().map_or(0.0, |item| item.grams);
    let now = ctx.now();
    let marked: Vec<_> = estimates
        .into_iter()
        .filter(|estimate| estimate.item == change.before.name)
        .map(|mut estimate| {
            estimate.corrected_grams = Some(corrected_grams);
            estimate.corrected_at = Some(now);
            estimate
        })
        .collect();
    if marked.is_empty() {
        return 0;
    }
    match ctx.store().save_vision_estimates(&marked).await {
        Ok(()) => marked.len(),
        Err(error) => {
            tracing::warn!(%error, "a correction could not calibrate the vision agents");
            0
        }
    }
}

/// What the person reads about a correction.
pub(super) async fn describe(
    ctx: &TurnContext<'_>,
    correction: &Correction,
    outcome: &Corrected,
) -> Result<String, AgentError> {
    let user = ctx.user().clone();
    let food = correction.food();
    Ok(match outcome {
        Corrected::NoEntry => format!(
            "There's no recent entry to correct, so nothing changed. To log {food}, tell me what you had, e.g. \"100 g {food}\"."
        ),
        Corrected::NotFound { latest } => {
            let mut text = format!(
                "I couldn't find {food} in your recent entries (the latest is \"{}\"), so nothing changed.",
                latest.description
            );
            match correction {
                Correction::Grams { grams: amount, .. } => {
                    let _ = write!(
                        text,
                        " To log it as a new meal, say \"I had {} g {food}\".",
                        grams(*amount)
                    );
                }
                Correction::Count { count, .. } => {
                    let _ = write!(
                        text,
                        " To log it as a new meal, say \"I had {} {food}\".",
                        pieces(*count)
                    );
                }
                Correction::Remove { .. } => {}
            }
            text
        }
        Corrected::OnlyItem { entry } => format!(
            "{} is the only item of \"{}\", so I kept it. To remove the whole entry, say \"undo\" or press Undo under it.",
            capitalise(food),
            entry.description
        ),
        Corrected::NotCounted { item } => format!(
            "I logged {food} as \"{}\" ({} g), not as a number of pieces, so nothing changed. Tell me the grams instead, e.g. \"the {food} was 100 g\".",
            item.input,
            grams(item.grams)
        ),
        Corrected::BadAmount(amount) => format!(
            "{} g doesn't look like a portion I can use; nothing changed. Tell me the weight in grams, e.g. \"the {food} was 100 g\".",
            grams(*amount)
        ),
        Corrected::Updated {
            after,
            change,
            calibrated_agents,
            ..
        } => {
            let today = user.local_date(ctx.now());
            let when = day_label(after.local_date, today);
            let mut text = format!("Updated \"{}\" ({when}):\n", after.description);
            let name = plain_food_name(&change.before.name);
            let _ = match &change.after {
                Some(item) => writeln!(
                    text,
                    "• {name}: {} g → {} g, {:.0} → {:.0} kcal",
                    grams(change.before.grams),
                    grams(item.grams),
                    change.before.nutrients.kcal,
                    item.nutrients.kcal
                ),
                None => writeln!(
                    text,
                    "• removed {name} ({:.0} kcal)",
                    change.before.nutrients.kcal
                ),
            };
            let _ = writeln!(text, "Meal now: {}", macros_line(&after.total));
            let total = day_total(ctx, &user, after.local_date).await?;
            text.push_str(&goal_line(&user.goals, &total, &when));
            if *calibrated_agents > 0 {
                text.push_str(
                    "\nNoted: your next photos will lean on the photo readers that got this right.",
                );
            }
            text
        }
    })
}

/// The items of an entry as the LLM agent's tools report them.
pub(super) fn item_json(item: &FoodItem) -> serde_json::Value {
    serde_json::json!({
        "name": item.name,
        "grams": (item.grams * 10.0).round() / 10.0,
        "kcal": item.nutrients.kcal.round(),
        "source": item.source.label(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meal_types_follow_the_time_of_day() {
        let at = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
        assert_eq!(meal_type_at(at(8)), MealType::Breakfast);
        assert_eq!(meal_type_at(at(13)), MealType::Lunch);
        assert_eq!(meal_type_at(at(19)), MealType::Dinner);
        assert_eq!(meal_type_at(at(23)), MealType::Snack);
    }
}
