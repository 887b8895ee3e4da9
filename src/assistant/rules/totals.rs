//! Questions about what was eaten, answered from the stored entries: "how much protein today?",
//! "what did I eat yesterday?", "am I on track this week?", `/today`, and `/week` (a chart of the
//! last seven days, then how the week compares with the goal).
//!
//! A day is compared with the daily goal; a span of days is given as a daily average over the
//! days that have entries (a day with nothing logged is not a day of fasting), so a weekly total
//! is never set against a daily goal.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{Datelike, Duration, NaiveDate};
use health_actors::conversation::{AgentError, TurnContext};
use health_actors::domain::{FoodEntry, Goals, Nutrients};
use health_actors::understanding::{Metric, Period, QuestionKind};

use crate::assistant::format::{capitalise, day_label, goal_line, grams, macros_line, plural};
use crate::assistant::reply::reply;

/// The local dates a period covers, up to today.
fn period_dates(period: Period, today: NaiveDate) -> (NaiveDate, NaiveDate, &'static str) {
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    match period {
        Period::Day(day) => {
            let date = today - Duration::days(i64::from(day.days_ago()));
            (date, date, "day")
        }
        Period::ThisWeek => (monday, today, "this week"),
        Period::LastWeek => (
            monday - Duration::days(7),
            monday - Duration::days(1),
            "last week",
        ),
    }
}

pub(super) async fn answer_question(
    ctx: &mut TurnContext<'_>,
    kind: QuestionKind,
    period: Period,
) -> Result<(), AgentError> {
    let user = ctx.user().clone();
    let today = user.local_date(ctx.now());
    let (from, to, span) = period_dates(period, today);
    let entries = ctx.store().food_entries(user.id, from, to).await?;
    let total = Nutrients::sum(entries.iter().map(|entry| &entry.total));
    let label = if span == "day" {
        day_label(from, today)
    } else {
        span.to_owned()
    };
    let one_day = from == to;
    let days_logged = logged_days(&entries).len();
    let text = match kind {
        _ if entries.is_empty() => format!("Nothing is logged for {label} yet."),
        QuestionKind::Total(Metric::All) if one_day => {
            let text = entry_lines(&entries, false);
            format!("{text}{}", goal_line(&user.goals, &total, &label))
        }
        QuestionKind::Total(Metric::All) => format!(
            "{}{}: {}. {}",
            entry_lines(&entries, true),
            capitalise(&label),
            macros_line(&total),
            daily_average(Metric::Kcal, total.kcal, days_logged, user.goals.kcal)
        ),
        QuestionKind::Total(metric) => {
            let amount = metric_amount(metric, metric_of(&total, metric));
            let goal = goal_for_metric(&user.goals, metric);
            let entries_said = format!(
                "from {} logged {}",
                entries.len(),
                plural(entries.len(), "entry", "entries")
            );
            if one_day {
                let goal = goal
                    .map(|goal| format!(" (goal {goal:.0})"))
                    .unwrap_or_default();
                format!(
                    "{} you had {amount}{goal}, {entries_said}.",
                    capitalise(&label)
                )
            } else {
                format!(
                    "{} you had {amount}, {entries_said}. {}",
                    capitalise(&label),
                    daily_average(metric, metric_of(&total, metric), days_logged, goal)
                )
            }
        }
        QuestionKind::Diary => {
            let lines = entry_lines(&entries, from != to);
            format!(
                "{}:\n{lines}Total: {}.",
                capitalise(&label),
                macros_line(&total)
            )
        }
        QuestionKind::OnTrack if one_day => goal_line(&user.goals, &total, &label),
        QuestionKind::OnTrack => on_track(&user.goals, &entries, from, to, &label),
    };
    reply(ctx, text).await
}

/// One line per entry: "• Mon lunch: 2 eggs — 143 kcal" (the weekday only when `with_day`).
fn entry_lines(entries: &[FoodEntry], with_day: bool) -> String {
    let mut text = String::new();
    for entry in entries {
        let day = if with_day {
            format!("{} ", entry.local_date.format("%a"))
        } else {
            String::new()
        };
        let meal = entry
            .meal_type
            .map(|m| format!("{}: ", m.as_str()))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "• {day}{meal}{} — {:.0} kcal",
            entry.description, entry.total.kcal
        );
    }
    text
}

fn on_track(
    goals: &Goals,
    entries: &[FoodEntry],
    from: NaiveDate,
    to: NaiveDate,
    label: &str,
) -> String {
    let days_logged = logged_days(entries);
    let total = Nutrients::sum(entries.iter().map(|entry| &entry.total));
    let mut text = String::new();
    let mut date = from;
    while date <= to {
        let kcal: f64 = entries
            .iter()
            .filter(|e| e.local_date == date)
            .map(|e| e.total.kcal)
            .sum();
        let bar = if days_logged.contains(&date) {
            format!("{kcal:.0} kcal")
        } else {
            "nothing logged".into()
        };
        let _ = writeln!(text, "{}: {bar}", date.format("%a %-d"));
        date += Duration::days(1);
    }
    let average = total.kcal / days_logged.len().max(1) as f64;
    match goals.kcal {
        Some(goal) => {
            let verdict = if average <= goal * 1.05 && average >= goal * 0.8 {
                "you're on track"
            } else if average > goal * 1.05 {
                "you're above your goal"
            } else {
                "you're well under your goal (make sure you log everything)"
            };
            let _ = write!(
                text,
                "Average {average:.0} kcal a day over {} logged {} against a goal of {goal:.0}: {verdict}.",
                days_logged.len(),
                plural(days_logged.len(), "day", "days")
            );
        }
        None => {
            let _ = write!(
                text,
                "Average {average:.0} kcal a day over {} logged {} {label}. Set a goal (\"my goal is 1800 kcal\") and I'll tell you how you're doing.",
                days_logged.len(),
                plural(days_logged.len(), "day", "days")
            );
        }
    }
    text
}

/// The local days that have at least one entry.
fn logged_days(entries: &[FoodEntry]) -> BTreeSet<NaiveDate> {
    entries.iter().map(|entry| entry.local_date).collect()
}

/// The amount of `metric` in `total`.
fn metric_of(total: &Nutrients, metric: Metric) -> f64 {
    match metric {
        Metric::Kcal | Metric::All => total.kcal,
        Metric::Protein => total.protein_g,
        Metric::Carbs => total.carbs_g,
        Metric::Fat => total.fat_g,
        Metric::Fiber => total.fiber_g,
    }
}

/// "1240 kcal", "80 g of protein".
fn metric_amount(metric: Metric, amount: f64) -> String {
    match metric {
        Metric::Kcal | Metric::All => format!("{amount:.0} kcal"),
        Metric::Protein => format!("{} g of protein", grams(amount)),
        Metric::Carbs => format!("{} g of carbohydrates", grams(amount)),
        Metric::Fat => format!("{} g of fat", grams(amount)),
        Metric::Fiber => format!("{} g of fiber", grams(amount)),
    }
}

/// For a span of several days, where a daily goal means nothing against the span's total:
/// "That is 1240 kcal a day on average over 3 logged days (goal 1800 a day)."
fn daily_average(metric: Metric, amount: f64, days_logged: usize, goal: Option<f64>) -> String {
    let days = days_logged.max(1);
    let goal = goal
        .map(|goal| format!(" (goal {goal:.0} a day)"))
        .unwrap_or_default();
    format!(
        "That is {} a day on average over {days} logged {}{goal}.",
        metric_amount(metric, amount / days as f64),
        plural(days, "day", "days")
    )
}

fn goal_for_metric(goals: &Goals, metric: Metric) -> Option<f64> {
    match metric {
        Metric::Kcal => goals.kcal,
        Metric::Protein => goals.protein_g,
        Metric::Carbs => goals.carbs_g,
        Metric::Fat => goals.fat_g,
        Metric::Fiber | Metric::All => None,
    }
}

/// The last seven local days as a PNG chart of kcal against the goal. A failure to draw or send
/// is logged; the text summary that follows still answers the person.
pub(super) async fn week_chart(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let user = ctx.user().clone();
    let today = user.local_date(ctx.now());
    let from = today - Duration::days(6);
    let entries = ctx.store().food_entries(user.id, from, today).await?;
    let days: Vec<crate::reports::DayKcal> = (0..7)
        .map(|offset| {
            let date = from + Duration::days(offset);
            let mut on_day = entries.iter().filter(|e| e.local_date == date).peekable();
            let kcal = on_day
                .peek()
                .is_some()
                .then(|| on_day.map(|e| e.total.kcal).sum());
            crate::reports::DayKcal { date, kcal }
        })
        .collect();
    let png = match crate::reports::week_chart_png(&days, user.goals.kcal) {
        Ok(png) => png,
        Err(error) => {
            tracing::error!(%error, "the week chart could not be drawn");
            return Ok(());
        }
    };
    let caption = "Calories per day, last 7 days";
    match ctx
        .outbox()
        .send_photo(ctx.chat(), &png, Some(caption))
        .await
    {
        Ok(_) => ctx.record_assistant(format!("[chart] {caption}")),
        Err(error) => tracing::warn!(%error, "the week chart could not be sent"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_of_days_is_compared_with_the_daily_goal_on_average() {
        assert_eq!(
            daily_average(Metric::Kcal, 3600.0, 2, Some(1800.0)),
            "That is 1800 kcal a day on average over 2 logged days (goal 1800 a day)."
        );
        assert_eq!(
            daily_average(Metric::Protein, 45.0, 1, None),
            "That is 45 g of protein a day on average over 1 logged day."
        );
    }
}
