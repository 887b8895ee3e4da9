//! "undo" and `/undo`: removes the person's most recent food entry and says what the day's total
//! is without it. (The Undo button under a reply removes exactly the entry it was under: that is
//! [`crate::assistant::entries`]'s.)

use health_actors::conversation::{AgentError, TurnContext};
use health_actors::ports::Write;

use crate::assistant::entries::day_total;
use crate::assistant::format::{day_label, goal_line};
use crate::assistant::reply::reply;

pub(super) async fn undo(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let user = ctx.user().clone();
    let Some(entry) = ctx.store().last_food_entry(user.id).await? else {
        return reply(ctx, "There's nothing to undo: no food is logged.").await;
    };
    ctx.write(vec![Write::DeleteFoodEntry {
        user_id: user.id,
        id: entry.id,
    }])
    .await?;
    let today = user.local_date(ctx.now());
    let total = day_total(ctx, &user, entry.local_date).await?;
    let when = day_label(entry.local_date, today);
    reply(
        ctx,
        format!(
            "Removed \"{}\" ({:.0} kcal, {when}).\n{}",
            entry.description,
            entry.total.kcal,
            goal_line(&user.goals, &total, &when)
        ),
    )
    .await
}
