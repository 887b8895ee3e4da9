//! Meals in words: "2 eggs and toast for breakfast", "yesterday at 8pm: a bowl of pasta" logs
//! the meal; "how many calories in an avocado?" only tells (nothing is logged).
//!
//! The nutrition engine (built-in table, and USDA when a key is set) supplies every number. A
//! food it does not know is named back to the person and nothing is counted for it; an amount
//! that cannot be right ("1000 eggs") is left out and said so. The entry is written through the
//! persistence actor and the reply that says "Saved" (with Undo / Edit under it) is sent only
//! after the commit; its id derives from the message, so a replay writes the same row.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use health_actors::conversation::{AgentError, TurnContext};
use health_actors::domain::{FoodEntry, MealType, User};
use health_actors::inbound::Inbound;
use health_actors::nutrition::{parse_meal, LeftOut, MealEstimate};
use health_actors::ports::Write;
use health_actors::understanding::DayRef;

use crate::assistant::entries::{day_total, entry_id_for, meal_type_at};
use crate::assistant::format::{day_label, goal_line, grams, join_and, macros_line, short_name};
use crate::assistant::reply::{reply, reply_with_entry_buttons};
use crate::nutrition::engine::NutritionEngine;

pub(super) async fn log_meal(
    ctx: &mut TurnContext<'_>,
    engine: &NutritionEngine,
    inbound: &Inbound,
    text: &str,
    meal_type: Option<MealType>,
    day: DayRef,
    time: Option<NaiveTime>,
) -> Result<(), AgentError> {
    let estimate = engine.estimate(text).await;
    if !estimate.has_items() {
        return reply(ctx, not_counted(&estimate, true)).await;
    }
    let user = ctx.user().clone();
    let now = ctx.now();
    let today = user.local_date(now);
    let local_date = today - Duration::days(i64::from(day.days_ago()));
    let meal_type = meal_type.or_else(|| time.map(meal_type_at)).or_else(|| {
        (day == DayRef::Today).then(|| meal_type_at(now.with_timezone(&user.tz()).time()))
    });
    let eaten_at = eaten_at(&user, now, local_date, time, meal_type);
    let entry_id = entry_id_for(inbound.id);
    let entry = FoodEntry {
        id: entry_id,
        user_id: user.id,
        eaten_at,
        local_date,
        meal_type,
        // What was saved, in the person's words, without the "yesterday at 8pm:" that the
        // entry's date and meal already say, and without what was left out.
        description: join_and(
            &estimate
                .items
                .iter()
                .map(|item| item.input.clone())
                .collect::<Vec<_>>(),
        ),
        items: estimate.items.clone(),
        total: estimate.total,
        photo_path: None,
        created_at: now,
    };
    ctx.write(vec![Write::InsertFoodEntry(entry)]).await?;

    let day_total = day_total(ctx, &user, local_date).await?;
    let mut text = String::new();
    let when = day_label(local_date, today);
    let _ = match meal_type {
        Some(meal) => writeln!(text, "Saved {} ({when}):", meal.as_str()),
        None => writeln!(text, "Saved ({when}):"),
    };
    for item in &estimate.items {
        let _ = writeln!(
            text,
            "• {} → {} ({} g): {} [{}]",
            item.input,
            short_name(&item.name),
            grams(item.grams),
            macros_line(&item.nutrients),
            item.source.label()
        );
    }
    if estimate.items.len() > 1 {
        let _ = writeln!(text, "Meal: {}", macros_line(&estimate.total));
    }
    for note in &estimate.notes {
        let _ = writeln!(text, "Note: {note}");
    }
    if !estimate.unknown.is_empty() || !estimate.left_out.is_empty() {
        let _ = writeln!(text, "{}", not_counted(&estimate, false));
    }
    let _ = write!(text, "{}", goal_line(&user.goals, &day_total, &when));
    reply_with_entry_buttons(ctx, text, entry_id).await
}

pub(super) async fn food_info(
    ctx: &mut TurnContext<'_>,
    engine: &NutritionEngine,
    text: &str,
) -> Result<(), AgentError> {
    let estimate = engine.estimate(text).await;
    if !estimate.has_items() {
        return reply(ctx, not_counted(&estimate, false)).await;
    }
    let mut out = String::new();
    for item in &estimate.items {
        let _ = writeln!(
            out,
            "{} ({} g of {}): {} [{}]",
            item.input,
            grams(item.grams),
            short_name(&item.name),
            macros_line(&item.nutrients),
            item.source.label()
        );
    }
    if !estimate.unknown.is_empty() || !estimate.left_out.is_empty() {
        let _ = writeln!(out, "{}", not_counted(&estimate, false));
    }
    out.push_str("Nothing was logged. Tell me \"I had ...\" to log it.");
    reply(ctx, out).await
}

/// Every part of the text has an amount ("a plate of X", "200 g of Y"): it reads as food even
/// when no food in it is known.
pub(super) fn looks_like_food(text: &str) -> bool {
    let items = parse_meal(text, &|_| false);
    !items.is_empty()
        && items
            .iter()
            .all(|item| !item.name.is_empty() && (item.quantity.is_some() || item.unit.is_some()))
}

/// What was not counted and why: "'1000 eggs' comes to 50 kg, which looks like a typo, so I
/// left it out." for each item whose amount cannot be right, then "I don't know 'X' yet: ..."
/// for the unknown ones.
pub(super) fn not_counted(estimate: &MealEstimate, nothing_saved: bool) -> String {
    let mut sentences: Vec<String> = estimate.left_out.iter().map(LeftOut::sentence).collect();
    let names: Vec<String> = estimate
        .unknown
        .iter()
        .map(|name| format!("'{}'", name.trim()))
        .collect();
    match names.len() {
        0 if sentences.is_empty() => sentences.push("I couldn't find a food in that.".to_owned()),
        0 => {}
        1 => sentences.push(format!(
            "I don't know {} yet: can you give grams or a similar food?",
            names[0]
        )),
        _ => sentences.push(format!(
            "I don't know {} yet: can you give grams or similar foods?",
            join_and(&names)
        )),
    }
    if nothing_saved {
        sentences.push("Nothing was saved.".to_owned());
    } else if !names.is_empty() {
        sentences.push("Nothing was counted for it.".to_owned());
    }
    sentences.join(" ")
}

/// When the meal was eaten: the stated time on that local day; else now (today) or a typical
/// time for the meal (another day).
pub(super) fn eaten_at(
    user: &User,
    now: DateTime<Utc>,
    date: NaiveDate,
    time: Option<NaiveTime>,
    meal: Option<MealType>,
) -> DateTime<Utc> {
    let today = user.local_date(now);
    let time = match time {
        Some(time) => time,
        None if date == today => return now,
        None => match meal {
            Some(MealType::Breakfast) => NaiveTime::from_hms_opt(8, 0, 0),
            Some(MealType::Lunch) => NaiveTime::from_hms_opt(12, 30, 0),
            Some(MealType::Dinner) => NaiveTime::from_hms_opt(19, 0, 0),
            Some(MealType::Snack) | None => NaiveTime::from_hms_opt(12, 0, 0),
        }
        .unwrap_or_default(),
    };
    user.tz()
        .from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use health_actors::domain::{Nutrients, UserId};

    use super::*;

    #[test]
    fn past_meals_get_a_typical_time_in_the_persons_zone() {
        let mut user = User::new(UserId(1), Utc::now());
        user.timezone = "Europe/Paris".into();
        let now: DateTime<Utc> = "2026-06-10T12:00:00Z".parse().unwrap();
        let yesterday = NaiveDate::from_ymd_opt(2026, 6, 9).unwrap();
        let at = eaten_at(&user, now, yesterday, None, Some(MealType::Breakfast));
        assert_eq!(at, "2026-06-09T06:00:00Z".parse::<DateTime<Utc>>().unwrap());
        let at = eaten_at(
            &user,
            now,
            yesterday,
            NaiveTime::from_hms_opt(20, 0, 0),
            None,
        );
        assert_eq!(at, "2026-06-09T18:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }

    #[test]
    fn amounts_make_unknown_text_read_as_food() {
        assert!(looks_like_food("a plate of zorblax"));
        assert!(looks_like_food("200 g of quinotto"));
        assert!(!looks_like_food("what's the weather like"));
    }

    #[test]
    fn unknown_foods_and_unlikely_amounts_are_named_back() {
        let mut estimate = MealEstimate {
            items: vec![],
            unknown: vec!["zorblax".into()],
            left_out: vec![],
            total: Nutrients::default(),
            notes: vec![],
        };
        assert_eq!(
            not_counted(&estimate, true),
            "I don't know 'zorblax' yet: can you give grams or a similar food? Nothing was saved."
        );
        estimate.unknown.clear();
        estimate.left_out.push(LeftOut {
            input: "1000 eggs".into(),
            reason: "comes to 50 kg, which looks like a typo".into(),
        });
        assert_eq!(
            not_counted(&estimate, true),
            "'1000 eggs' comes to 50 kg, which looks like a typo, so I left it out. Nothing was saved."
        );
        assert_eq!(
            not_counted(&estimate, false),
            "'1000 eggs' comes to 50 kg, which looks like a typo, so I left it out."
        );
    }
}
