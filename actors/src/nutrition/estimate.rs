//! Meal text -> items with grams and nutrients, totals, and what could not be estimated.
//!
//! This is the pure heart of the offline nutrition path: parse the text, find each food,
//! turn its amount into grams through that food's own portions, and add up. A food the table
//! does not know is listed in `unknown` and contributes nothing: the product never invents a
//! number. Each item carries a confidence that drops for fuzzy matches and assumed portions.

use crate::domain::{FoodItem, Grams, Nutrients, NutritionSource};

use super::parser::{parse_meal, ParsedItem};
use super::table::FoodTable;
use super::units::{no_amount_note, resolve_amount, PortionBasis};

/// The most one item may weigh. More is taken for a typo ("1000 eggs" is 50 kg), not logged:
/// a day's totals ruined by one slip are worse than asking again.
pub const MAX_ITEM_GRAMS: f64 = 5_000.0;

/// The estimate for one meal description.
#[derive(Debug, Clone, PartialEq)]
pub struct MealEstimate {
    pub items: Vec<FoodItem>,
    /// The items (as written) that no food matched; nothing was counted for them.
    pub unknown: Vec<String>,
    /// Items whose food is known but whose amount cannot be right (nothing, or a typo's
    /// 50 kg); nothing was counted for them either.
    pub left_out: Vec<LeftOut>,
    pub total: Nutrients,
    /// Assumptions a person should know about ("no 'slice' for banana: used a medium one").
    pub notes: Vec<String>,
}

/// An item understood but not counted, and why, in words for the person.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftOut {
    /// The item as written.
    pub input: String,
    /// Why: "comes to 50 kg, which looks like a typo".
    pub reason: String,
}

impl LeftOut {
    /// "'1000 eggs' comes to 50 kg, which looks like a typo, so I left it out."
    pub fn sentence(&self) -> String {
        format!("'{}' {}, so I left it out.", self.input.trim(), self.reason)
    }
}

/// Whether `grams` of the item written as `input` is an amount to log: something, and not so
/// much that it must be a slip of the keyboard.
pub fn check_amount(input: &str, grams: f64) -> Result<(), LeftOut> {
    let reason = if !grams.is_finite() || grams <= 0.0 {
        "is no amount".to_owned()
    } else if grams > MAX_ITEM_GRAMS {
        let kilograms = grams / 1000.0;
        let amount = if kilograms < 1000.0 {
            format!("{kilograms:.1} kg").replace(".0 kg", " kg")
        } else {
            "more than a tonne".to_owned()
        };
        format!("comes to {amount}, which looks like a typo")
    } else {
        return Ok(());
    };
    Err(LeftOut {
        input: input.to_owned(),
        reason,
    })
}

impl MealEstimate {
    /// True when at least one item was estimated.
    pub fn has_items(&self) -> bool {
        !self.items.is_empty()
    }
}

/// Estimates every item of `text` with `table`.
pub fn estimate_meal(text: &str, table: &FoodTable) -> MealEstimate {
    let parsed = parse_meal(text, &|name| table.knows_name(name));
    let mut estimate = MealEstimate {
        items: Vec::new(),
        unknown: Vec::new(),
        left_out: Vec::new(),
        total: Nutrients::default(),
        notes: Vec::new(),
    };
    for item in parsed {
        match estimate_item(&item, table) {
            Ok((food_item, note)) => {
                if let Some(note) = note {
                    estimate.notes.push(note);
                }
                estimate.items.push(food_item);
            }
            Err(Missed::LeftOut(left_out)) => estimate.left_out.push(left_out),
            Err(Missed::Unknown) => {
                let label = if item.input.is_empty() {
                    item.name.clone()
                } else {
                    item.input.clone()
                };
                estimate.unknown.push(label);
            }
        }
    }
    estimate.total = Nutrients::sum(estimate.items.iter().map(|item| &item.nutrients));
    estimate
}

/// Why an item was not counted.
enum Missed {
    /// No food matched (or the amount could not be read).
    Unknown,
    /// The food is known; the amount cannot be right.
    LeftOut(LeftOut),
}

/// One parsed item -> a food item (and maybe a note), or why it was not counted.
fn estimate_item(
    item: &ParsedItem,
    table: &FoodTable,
) -> Result<(FoodItem, Option<String>), Missed> {
    if item.name.is_empty() {
        return Err(Missed::Unknown);
    }
    let found = table.lookup(&item.name).ok_or(Missed::Unknown)?;
    let food = found.food;
    let amount = resolve_amount(food, item.quantity, item.unit.as_ref()).ok_or(Missed::Unknown)?;
    check_amount(&item.input, amount.grams).map_err(Missed::LeftOut)?;
    let grams = Grams::new(amount.grams).map_err(|_| Missed::Unknown)?;
    let mut confidence = found.score * amount.basis.confidence();
    if matches!(amount.basis, PortionBasis::Mass) && found.score >= 1.0 {
        confidence = 1.0;
    }
    let food_item = FoodItem {
        input: item.input.clone(),
        name: food.name.clone(),
        grams: round_to(grams.get(), 1),
        nutrients: food.nutrients_for(grams.get()),
        source: NutritionSource::BuiltIn,
        confidence: round_to(confidence.clamp(0.0, 1.0), 2),
    };
    let note = match amount.basis {
        PortionBasis::DefaultPortion => no_amount_note(&item.input, food),
        _ => amount.note,
    };
    Ok((food_item, note))
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(text: &str) -> MealEstimate {
        estimate_meal(text, FoodTable::builtin())
    }

    #[test]
    fn eggs_use_the_egg_portion() {
        let meal = estimate("2 eggs");
        assert_eq!(meal.items.len(), 1);
        assert_eq!(meal.items[0].grams, 100.0);
        assert!((meal.total.kcal - 143.0).abs() < 1e-6);
        assert_eq!(meal.items[0].source, NutritionSource::BuiltIn);
    }

    #[test]
    fn a_cup_of_rice_and_two_eggs() {
        let meal = estimate("a cup of rice and 2 eggs");
        assert_eq!(meal.items.len(), 2);
        // 158 g x 1.30 + 100 g x 1.43
        assert!(
            (meal.total.kcal - (205.4 + 143.0)).abs() < 0.5,
            "{}",
            meal.total.kcal
        );
        assert!(meal.unknown.is_empty());
    }

    #[test]
    fn unknown_foods_are_listed_and_not_counted() {
        let meal = estimate("2 eggs and a plate of zorblax");
        assert_eq!(meal.items.len(), 1);
        assert_eq!(meal.unknown, ["a plate of zorblax"]);
        assert!((meal.total.kcal - 143.0).abs() < 1e-6);
    }

    #[test]
    fn a_unit_the_food_lacks_is_defaulted_with_a_note_and_lower_confidence() {
        let meal = estimate("a scoop of banana");
        assert_eq!(meal.items.len(), 1);
        let counted = estimate("a banana");
        assert_eq!(meal.items[0].grams, counted.items[0].grams);
        assert!(meal.items[0].confidence < counted.items[0].confidence);
        assert_eq!(meal.notes.len(), 1);
    }

    #[test]
    fn fuzzy_matches_are_less_certain_than_exact_ones() {
        let exact = estimate("100 g chicken breast");
        let typo = estimate("100 g chiken brest");
        assert_eq!(exact.items[0].confidence, 1.0);
        assert!(typo.items[0].confidence < 1.0);
        assert_eq!(exact.items[0].name, typo.items[0].name);
    }

    #[test]
    fn impossible_amounts_are_left_out_and_said_not_counted() {
        let meal = estimate("9999999 kg rice");
        assert!(meal.items.is_empty());
        assert!(meal.unknown.is_empty(), "rice is a food it knows");
        assert_eq!(
            meal.left_out[0].sentence(),
            "'9999999 kg rice' comes to more than a tonne, which looks like a typo, so I left it out."
        );

        let meal = estimate("1000 eggs, 0 g rice and a banana");
        assert_eq!(meal.items.len(), 1, "the banana is counted");
        assert!((meal.total.kcal - meal.items[0].nutrients.kcal).abs() < 1e-9);
        let sentences: Vec<String> = meal.left_out.iter().map(LeftOut::sentence).collect();
        assert_eq!(
            sentences,
            [
                "'1000 eggs' comes to 50 kg, which looks like a typo, so I left it out.",
                "'0 g rice' is no amount, so I left it out."
            ]
        );
        // Five kilograms is still a (large) amount.
        assert!(check_amount("5 kg watermelon", 5_000.0).is_ok());
        assert!(check_amount("5.1 kg watermelon", 5_100.0).is_err());
    }

    #[test]
    fn household_meals_are_within_20_percent() {
        let cases = include_str!("../../data/household_meals.tsv");
        let mut total = 0usize;
        let mut within = 0usize;
        let mut failures = Vec::new();
        for line in cases
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        {
            let mut fields = line.split('\t');
            let (Some(text), Some(expected)) = (fields.next(), fields.next()) else {
                panic!("bad household line: {line}");
            };
            let expected: f64 = expected.parse().unwrap_or(f64::NAN);
            let meal = estimate(text);
            total += 1;
            let error = (meal.total.kcal - expected) / expected;
            if error.abs() <= 0.20 {
                within += 1;
            } else {
                let items: Vec<String> = meal
                    .items
                    .iter()
                    .map(|item| format!("{} -> {} {:.0} g", item.input, item.name, item.grams))
                    .collect();
                failures.push(format!(
                    "{text:?}: estimated {:.0} kcal, expected {expected:.0} ({:+.0} %); items {items:?}; unknown {:?}",
                    meal.total.kcal,
                    error * 100.0,
                    meal.unknown
                ));
            }
        }
        for failure in &failures {
            println!("household miss: {failure}");
        }
        let share = within as f64 / total as f64;
        println!(
            "household: {within}/{total} within ±20 % ({:.1} %)",
            share * 100.0
        );
        assert!(total >= 60, "only {total} household meals");
        assert!(
            share >= 0.90,
            "{within}/{total} within ±20 %:\n{}",
            failures.join("\n")
        );
    }
}
