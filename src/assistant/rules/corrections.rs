//! The rule agent's reading of a correction of a saved entry: "the rice was 100 g", "it was 3
//! eggs", "no rice". The sentence is read by [`parse_correction`]; the correction is applied and
//! described by [`crate::assistant::entries`], exactly as the LLM agent's `correct_entry` tool
//! applies it.
//!
//! A sentence shaped like a correction that names nothing logged and no known food ("no
//! thanks") is not one: the other rules answer it.

use health_actors::conversation::{AgentError, TurnContext};
use health_actors::nutrition::FoodTable;
use health_actors::understanding::parse_correction;

use crate::assistant::entries::{correct_recent_entry, describe, Corrected};

/// The correction rule; `None` when `text` is not a correction (or names nothing eaten), so the
/// other rules answer it.
pub(super) async fn correction(
    ctx: &mut TurnContext<'_>,
    table: &FoodTable,
    text: &str,
) -> Option<Result<(), AgentError>> {
    let correction = parse_correction(text)?;
    let outcome = match correct_recent_entry(ctx, table, &correction).await {
        Ok(outcome) => outcome,
        Err(error) => return Some(Err(error)),
    };
    let known_food = table
        .lookup(correction.food())
        .is_some_and(|found| found.score >= 0.9);
    // Not about anything logged, and not a food either: some other sentence.
    if matches!(outcome, Corrected::NotFound { .. } | Corrected::NoEntry) && !known_food {
        return None;
    }
    let text = match describe(ctx, &correction, &outcome).await {
        Ok(text) => text,
        Err(error) => return Some(Err(error)),
    };
    let _ = ctx.reply(text).await;
    Some(Ok(()))
}
