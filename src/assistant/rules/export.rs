//! `/export`: every food entry as a CSV document sent to the chat ([`crate::reports::entries_csv`]),
//! times in the person's zone.

use chrono::{Duration, NaiveDate};
use health_actors::conversation::{AgentError, TurnContext};

use crate::assistant::format::plural;
use crate::assistant::reply::reply;

/// Every food entry as a CSV document.
pub(super) async fn export(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let user = ctx.user().clone();
    let today = user.local_date(ctx.now());
    let first = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    let entries = ctx
        .store()
        .food_entries(user.id, first, today + Duration::days(1))
        .await?;
    if entries.is_empty() {
        return reply(ctx, "There's nothing to export yet: no food is logged.").await;
    }
    let csv = crate::reports::entries_csv(&entries, user.tz());
    let name = format!("food-log-{today}.csv");
    let caption = format!(
        "All {} of your food {}, as a spreadsheet (CSV).",
        entries.len(),
        plural(entries.len(), "entry", "entries")
    );
    match ctx
        .outbox()
        .send_document(ctx.chat(), &name, csv.as_bytes(), Some(&caption))
        .await
    {
        Ok(_) => {
            ctx.record_assistant(format!("[file {name}] {caption}"));
            Ok(())
        }
        Err(error) => {
            tracing::warn!(%error, "the export could not be sent");
            reply(
                ctx,
                "I couldn't send the file just now. Please try /export again in a minute.",
            )
            .await
        }
    }
}
