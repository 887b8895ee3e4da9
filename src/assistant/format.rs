//! How numbers, days and foods read in a reply, one way for every part of the assistant: day
//! labels ("today", "yesterday", "Monday 8 June"), the goal line under a day's total, macro lines,
//! grams, food names as a person says them, and the small text helpers (capitalise, "a and b",
//! plurals).
//!
//! Pure functions of values, no store and no context, so that the rule agent, the corrections
//! and the photo path say the same thing the same way, and so that this file imports nothing of
//! the assistant's own.

use chrono::NaiveDate;
use health_actors::domain::{Goals, Nutrients};

pub(super) fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The food's USDA description without its qualifiers: "Egg, whole, raw, fresh" → "egg, whole".
pub(super) fn short_name(name: &str) -> String {
    let parts: Vec<&str> = name.split(',').map(str::trim).take(2).collect();
    parts.join(", ").to_lowercase()
}

/// "Rice, white, cooked" -> "rice": how a person would name the food.
pub(super) fn plain_food_name(name: &str) -> String {
    name.split(',').next().unwrap_or(name).trim().to_lowercase()
}

/// An amount in grams (of a food or a macro): whole from 10 up, one decimal below.
pub(super) fn grams(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// A number of pieces: "2", not "2.0"; a fraction keeps its decimal ("1.5").
pub(super) fn pieces(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        grams(value)
    }
}

pub(super) fn macros_line(n: &Nutrients) -> String {
    format!(
        "{:.0} kcal · P {} g · C {} g · F {} g",
        n.kcal,
        grams(n.protein_g),
        grams(n.carbs_g),
        grams(n.fat_g)
    )
}

pub(super) fn day_label(date: NaiveDate, today: NaiveDate) -> String {
    match (today - date).num_days() {
        0 => "today".into(),
        1 => "yesterday".into(),
        _ => date.format("%A %-d %B").to_string(),
    }
}

/// "Today: 1,240 of 1,800 kcal (560 left)." or the total with a hint to set a goal.
pub(super) fn goal_line(goals: &Goals, total: &Nutrients, when: &str) -> String {
    let when_title = capitalise(when);
    let Some(goal) = goals.kcal else {
        return format!(
            "{when_title}: {}. No daily goal yet: tell me one, e.g. \"my goal is 1800 kcal\".",
            macros_line(total)
        );
    };
    let (difference, side) = if total.kcal <= goal {
        (goal - total.kcal, "left")
    } else {
        (total.kcal - goal, "over")
    };
    format!(
        "{when_title}: {:.0} of {goal:.0} kcal ({difference:.0} {side}) · P {} g · C {} g · F {} g.",
        total.kcal,
        grams(total.protein_g),
        grams(total.carbs_g),
        grams(total.fat_g)
    )
}

pub(super) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub(super) fn plural(count: usize, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 {
        one
    } else {
        many
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goal_line_counts_down_or_asks_for_a_goal() {
        let total = Nutrients {
            kcal: 1240.0,
            protein_g: 80.0,
            carbs_g: 120.0,
            fat_g: 40.0,
            fiber_g: 10.0,
        };
        let goals = Goals {
            kcal: Some(1800.0),
            ..Goals::default()
        };
        assert!(
            goal_line(&goals, &total, "today").starts_with("Today: 1240 of 1800 kcal (560 left)")
        );
        assert!(goal_line(&Goals::default(), &total, "today").contains("No daily goal yet"));
    }

    #[test]
    fn pieces_are_whole_unless_a_fraction_was_said() {
        assert_eq!(pieces(2.0), "2");
        assert_eq!(pieces(1.5), "1.5");
        assert_eq!(grams(2.0), "2.0");
        assert_eq!(grams(150.0), "150");
    }
}
