//! The person's settings: `/settings` shows them, `/settings timezone Europe/Paris` sets the time
//! zone, and a shared location sets it too (looked up offline, [`crate::geo`]). The time zone is
//! what makes "today" the person's day.

use health_actors::conversation::{AgentError, TurnContext};
use health_actors::domain::Units;

use crate::assistant::reply::reply;

pub(super) async fn settings(ctx: &mut TurnContext<'_>, args: &str) -> Result<(), AgentError> {
    let mut words = args.split_whitespace();
    match (words.next().map(str::to_ascii_lowercase).as_deref(), words.next()) {
        (Some("timezone" | "tz" | "time_zone"), Some(zone)) => match zone.parse::<chrono_tz::Tz>() {
            Ok(tz) => {
                let mut user = ctx.user().clone();
                user.timezone = tz.name().to_owned();
                ctx.save_user(user).await?;
                let local = ctx.now().with_timezone(&tz);
                reply(ctx, format!("Saved: your time zone is {} (it's {} there now).", tz.name(), local.format("%H:%M on %A"))).await
            }
            Err(_) => reply(ctx, format!("I don't know the time zone '{zone}'. Use a name like Europe/Paris or America/New_York.")).await,
        },
        _ => {
            let user = ctx.user();
            let text = format!(
                "Your settings:\n• time zone: {}\n• units: {}\nChange the time zone with /settings timezone Europe/Paris.",
                user.timezone,
                match user.profile.units {
                    Units::Metric => "metric",
                    Units::Imperial => "imperial",
                }
            );
            reply(ctx, text).await
        }
    }
}

/// A shared location sets the time zone (looked up offline).
pub(super) async fn zone_from_location(
    ctx: &mut TurnContext<'_>,
    latitude: f64,
    longitude: f64,
) -> Result<(), AgentError> {
    let Some(zone) = crate::geo::timezone_at_async(latitude, longitude).await else {
        return reply(
            ctx,
            "Thanks! I couldn't find a time zone for that spot. Send /settings timezone followed by \
             your zone, e.g. /settings timezone Europe/Paris.",
        )
        .await;
    };
    let mut user = ctx.user().clone();
    user.timezone = zone.name().to_owned();
    ctx.save_user(user).await?;
    let local = ctx.now().with_timezone(&zone);
    reply(
        ctx,
        format!(
            "Thanks! Your time zone is now {} (it's {} there); \"today\" follows it from now on.",
            zone.name(),
            local.format("%H:%M on %A")
        ),
    )
    .await
}
