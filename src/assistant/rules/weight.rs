//! Body weight: "I weigh 72.5 kg", `/weight 160 lb` saves it (and the profile's weight, which
//! the calorie goal uses) with the change since the last one; `/weight` alone lists the last
//! 90 days.

use std::fmt::Write as _;

use chrono::Duration;
use health_actors::conversation::{AgentError, TurnContext};
use health_actors::domain::WeightLog;
use health_actors::inbound::Inbound;
use health_actors::ports::Write;

use crate::assistant::entries::entry_id_for;
use crate::assistant::reply::reply;

pub(super) async fn log_weight(
    ctx: &mut TurnContext<'_>,
    inbound: &Inbound,
    kg: f64,
) -> Result<(), AgentError> {
    if !(20.0..=400.0).contains(&kg) {
        return reply(ctx, format!("{kg:.1} kg doesn't look right; tell me your weight with its unit, e.g. 72.5 kg or 160 lb.")).await;
    }
    let now = ctx.now();
    let user_id = ctx.user().id;
    let previous = ctx
        .store()
        .weights(user_id, now - Duration::days(3650), now)
        .await?;
    let log = WeightLog {
        id: entry_id_for(inbound.id),
        user_id,
        kg,
        logged_at: now,
    };
    ctx.write(vec![Write::InsertWeight(log)]).await?;
    let mut user = ctx.user().clone();
    user.profile.weight_kg = Some(kg);
    ctx.save_user(user).await?;
    let change = previous
        .last()
        .map(|last| {
            let delta = kg - last.kg;
            if delta.abs() < 0.05 {
                format!(" Same as on {}.", last.logged_at.format("%-d %B"))
            } else {
                format!(
                    " That's {}{:.1} kg since {}.",
                    if delta > 0.0 { "+" } else { "−" },
                    delta.abs(),
                    last.logged_at.format("%-d %B")
                )
            }
        })
        .unwrap_or_default();
    reply(ctx, format!("Saved your weight: {kg:.1} kg.{change}")).await
}

pub(super) async fn show_weights(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let now = ctx.now();
    let weights = ctx
        .store()
        .weights(ctx.user().id, now - Duration::days(90), now)
        .await?;
    if weights.is_empty() {
        return reply(
            ctx,
            "No weight logged in the last 90 days. Send e.g. /weight 72.5 kg.",
        )
        .await;
    }
    let mut text = String::from("Your weight, last 90 days:\n");
    for log in weights.iter().rev().take(10).rev() {
        let _ = writeln!(
            text,
            "• {}: {:.1} kg",
            log.logged_at.format("%-d %b"),
            log.kg
        );
    }
    reply(ctx, text.trim_end().to_owned()).await
}
