//! Whether nutrient numbers someone stated (a language model's estimate for a food no database
//! knows) can describe a real food, before they are saved.
//!
//! [`super::check_amount`] checks the amount of every item on every path; this checks the
//! numbers that come with it when they were not computed from a database. Three rules, each with
//! the tolerance it allows stated here so a refusal can name it:
//!
//! - [`Rule::MacrosWithinGrams`]: protein + carbs + fat + alcohol weigh no more than the food
//!   (the rest is water, fibre, ash), within [`MASS_TOLERANCE_SHARE`] of the grams or
//!   [`MASS_TOLERANCE_MIN_G`], whichever is larger (rounded figures).
//! - [`Rule::EnergyPerGram`]: at most [`MAX_KCAL_PER_GRAM`] (pure fat is 9 kcal/g).
//! - [`Rule::EnergyMatchesMacros`]: kcal agree with the Atwater factors 4 (protein, carbs), 9
//!   (fat) and 7 (alcohol) within [`ENERGY_TOLERANCE_SHARE`] or [`ENERGY_TOLERANCE_MIN_KCAL`],
//!   whichever is larger. When some macros are not given, only what the given ones carry is
//!   checked: they may not hold more energy than the stated total.
//!
//! Pure code: the LLM agent's tools call it and answer a violation to the model, naming the
//! rule, so the model can correct itself; nothing is saved.

use std::fmt;

/// The most energy a gram of food can hold, kcal (fat's 9, plus rounding).
pub const MAX_KCAL_PER_GRAM: f64 = 9.5;
/// Share of the grams the macros may exceed them by (rounding).
pub const MASS_TOLERANCE_SHARE: f64 = 0.02;
/// Grams the macros may always exceed the weight by (rounding of small items).
pub const MASS_TOLERANCE_MIN_G: f64 = 1.0;
/// Share of the 4/4/9/7 energy the stated kcal may differ by (food-specific factors, fibre).
pub const ENERGY_TOLERANCE_SHARE: f64 = 0.2;
/// kcal the stated energy may always differ by (rounding of small items).
pub const ENERGY_TOLERANCE_MIN_KCAL: f64 = 10.0;

/// Atwater general factors, kcal per gram.
const PROTEIN_KCAL_PER_G: f64 = 4.0;
const CARBS_KCAL_PER_G: f64 = 4.0;
const FAT_KCAL_PER_G: f64 = 9.0;
const ALCOHOL_KCAL_PER_G: f64 = 7.0;

/// Numbers stated for `grams` of one food; a macro left out is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StatedNutrients {
    pub grams: f64,
    pub kcal: f64,
    pub protein_g: Option<f64>,
    pub carbs_g: Option<f64>,
    pub fat_g: Option<f64>,
    pub alcohol_g: Option<f64>,
}

/// The rules, by the name a refusal gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Every number is finite and not negative, and the food weighs something.
    NumbersAreReal,
    MacrosWithinGrams,
    EnergyPerGram,
    EnergyMatchesMacros,
}

impl Rule {
    /// The name a tool error carries: `macros_within_grams`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::NumbersAreReal => "numbers_are_real",
            Self::MacrosWithinGrams => "macros_within_grams",
            Self::EnergyPerGram => "energy_per_gram",
            Self::EnergyMatchesMacros => "energy_matches_macros",
        }
    }
}

/// One broken rule, with the figures that broke it.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub rule: Rule,
    /// What is wrong, with the numbers and the tolerance: "protein + carbs + fat + alcohol come
    /// to 1600 g, more than the 100 g of food (allowed: 2 g over)".
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule.name(), self.detail)
    }
}

/// Every rule `stated` breaks; `Ok` when it could describe a real food.
pub fn check_nutrients(stated: &StatedNutrients) -> Result<(), Vec<Violation>> {
    let mut violations = Vec::new();
    let fields = [
        ("grams", Some(stated.grams)),
        ("kcal", Some(stated.kcal)),
        ("protein_g", stated.protein_g),
        ("carbs_g", stated.carbs_g),
        ("fat_g", stated.fat_g),
        ("alcohol_g", stated.alcohol_g),
    ];
    let unreal: Vec<&str> = fields
        .iter()
        .filter(|(_, value)| value.is_some_and(|v| !v.is_finite() || v < 0.0))
        .map(|(name, _)| *name)
        .collect();
    if !unreal.is_empty() || stated.grams <= 0.0 {
        let detail = if unreal.is_empty() {
            "the food must weigh more than 0 g".to_owned()
        } else {
            format!("{} must be finite numbers of 0 or more", unreal.join(", "))
        };
        violations.push(Violation {
            rule: Rule::NumbersAreReal,
            detail,
        });
        return Err(violations);
    }
    let grams = stated.grams;
    let macros = [
        stated.protein_g,
        stated.carbs_g,
        stated.fat_g,
        stated.alcohol_g,
    ];
    let macro_grams: f64 = macros.iter().flatten().sum();
    let mass_tolerance = (grams * MASS_TOLERANCE_SHARE).max(MASS_TOLERANCE_MIN_G);
    if macro_grams > grams + mass_tolerance {
        violations.push(Violation {
            rule: Rule::MacrosWithinGrams,
            detail: format!(
                "protein + carbs + fat + alcohol come to {} g, more than the {} g of food (allowed: {} g over)",
                round1(macro_grams),
                round1(grams),
                round1(mass_tolerance)
            ),
        });
    }
    let most = grams * MAX_KCAL_PER_GRAM;
    if stated.kcal > most {
        violations.push(Violation {
            rule: Rule::EnergyPerGram,
            detail: format!(
                "{} kcal in {} g is {} kcal per gram; no food holds more than {MAX_KCAL_PER_GRAM} (pure fat is 9)",
                round1(stated.kcal),
                round1(grams),
                round1(stated.kcal / grams)
            ),
        });
    }
    let from_macros = stated.protein_g.unwrap_or(0.0) * PROTEIN_KCAL_PER_G
        + stated.carbs_g.unwrap_or(0.0) * CARBS_KCAL_PER_G
        + stated.fat_g.unwrap_or(0.0) * FAT_KCAL_PER_G
        + stated.alcohol_g.unwrap_or(0.0) * ALCOHOL_KCAL_PER_G;
    let energy_tolerance = (from_macros * ENERGY_TOLERANCE_SHARE).max(ENERGY_TOLERANCE_MIN_KCAL);
    let all_macros =
        stated.protein_g.is_some() && stated.carbs_g.is_some() && stated.fat_g.is_some();
    let too_little = stated.kcal < from_macros - energy_tolerance;
    let too_much = all_macros && stated.kcal > from_macros + energy_tolerance;
    if too_little || too_much {
        violations.push(Violation {
            rule: Rule::EnergyMatchesMacros,
            detail: format!(
                "{} kcal, but 4 kcal/g protein + 4 carbs + 9 fat + 7 alcohol give {} kcal (allowed: {} kcal apart{})",
                round1(stated.kcal),
                round1(from_macros),
                round1(energy_tolerance),
                if all_macros { "" } else { "; the macros given may not carry more than the total" }
            ),
        });
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stated(grams: f64, kcal: f64, protein: f64, carbs: f64, fat: f64) -> StatedNutrients {
        StatedNutrients {
            grams,
            kcal,
            protein_g: Some(protein),
            carbs_g: Some(carbs),
            fat_g: Some(fat),
            alcohol_g: None,
        }
    }

    fn rules(stated: &StatedNutrients) -> Vec<Rule> {
        match check_nutrients(stated) {
            Ok(()) => Vec::new(),
            Err(violations) => violations.iter().map(|v| v.rule).collect(),
        }
    }

    #[test]
    fn the_issues_impossible_meal_breaks_the_mass_and_energy_rules() {
        let impossible = stated(100.0, 900.0, 500.0, 800.0, 300.0);
        let violations = check_nutrients(&impossible).unwrap_err();
        let names: Vec<&str> = violations.iter().map(|v| v.rule.name()).collect();
        assert_eq!(names, ["macros_within_grams", "energy_matches_macros"]);
        assert!(
            violations[0].to_string().contains("1600 g"),
            "{}",
            violations[0]
        );
        assert!(
            violations[1].to_string().contains("7900 kcal"),
            "{}",
            violations[1]
        );
    }

    #[test]
    fn real_foods_pass() {
        // Egg (USDA): 143 kcal, P 12.6, C 0.7, F 9.5 per 100 g.
        assert!(check_nutrients(&stated(100.0, 143.0, 12.6, 0.7, 9.5)).is_ok());
        // Almonds: 579 kcal, P 21.2, C 21.6, F 49.9 (4/4/9 gives 620).
        assert!(check_nutrients(&stated(100.0, 579.0, 21.2, 21.6, 49.9)).is_ok());
        // Olive oil: 884 kcal, 100 g fat.
        assert!(check_nutrients(&stated(100.0, 884.0, 0.0, 0.0, 100.0)).is_ok());
        // Beer, 330 g: 142 kcal, P 1.5, C 11.7, F 0, alcohol 13 g.
        let beer = StatedNutrients {
            alcohol_g: Some(13.0),
            ..stated(330.0, 142.0, 1.5, 11.7, 0.0)
        };
        assert!(check_nutrients(&beer).is_ok());
        // kcal alone.
        let kcal_only = StatedNutrients {
            grams: 300.0,
            kcal: 420.0,
            ..StatedNutrients::default()
        };
        assert!(check_nutrients(&kcal_only).is_ok());
    }

    #[test]
    fn macros_may_exceed_the_grams_by_the_tolerance_and_no_more() {
        // 100 g: 2 g over is allowed (2 %), beyond it is not. Energy kept consistent.
        assert!(rules(&stated(100.0, 408.0, 0.0, 102.0, 0.0)).is_empty());
        assert_eq!(
            rules(&stated(100.0, 408.0, 0.0, 102.1, 0.0)),
            [Rule::MacrosWithinGrams]
        );
        // 10 g: the 1 g floor applies.
        assert!(rules(&stated(10.0, 44.0, 0.0, 11.0, 0.0)).is_empty());
        assert_eq!(
            rules(&stated(10.0, 44.4, 0.0, 11.1, 0.0)),
            [Rule::MacrosWithinGrams]
        );
        // Alcohol counts towards the weight.
        let spirit = StatedNutrients {
            alcohol_g: Some(45.0),
            ..stated(50.0, 414.0, 0.0, 0.0, 11.0)
        };
        assert!(rules(&spirit).contains(&Rule::MacrosWithinGrams));
    }

    #[test]
    fn energy_must_agree_with_4_4_9_7_within_the_tolerance() {
        // 4·10 + 4·20 + 9·10 = 210 kcal; 20 % is 42 kcal.
        assert!(rules(&stated(200.0, 252.0, 10.0, 20.0, 10.0)).is_empty());
        assert!(rules(&stated(200.0, 168.0, 10.0, 20.0, 10.0)).is_empty());
        assert_eq!(
            rules(&stated(200.0, 252.5, 10.0, 20.0, 10.0)),
            [Rule::EnergyMatchesMacros]
        );
        assert_eq!(
            rules(&stated(200.0, 167.5, 10.0, 20.0, 10.0)),
            [Rule::EnergyMatchesMacros]
        );
        // Small items: at least 10 kcal apart is allowed.
        assert!(rules(&stated(10.0, 14.0, 1.0, 0.0, 0.0)).is_empty());
        assert_eq!(
            rules(&stated(10.0, 14.5, 1.0, 0.0, 0.0)),
            [Rule::EnergyMatchesMacros]
        );
        // Alcohol is 7 kcal/g: 14 g of it and nothing else is 98 kcal.
        let wine = StatedNutrients {
            alcohol_g: Some(14.0),
            ..stated(150.0, 98.0, 0.0, 0.0, 0.0)
        };
        assert!(rules(&wine).is_empty());
        let without_alcohol = stated(150.0, 98.0, 0.0, 0.0, 0.0);
        assert_eq!(rules(&without_alcohol), [Rule::EnergyMatchesMacros]);
    }

    #[test]
    fn with_some_macros_missing_only_what_they_carry_is_checked() {
        // 30 g protein carry 120 kcal: 420 kcal in total is possible (the rest is unknown).
        let partial = StatedNutrients {
            grams: 300.0,
            kcal: 420.0,
            protein_g: Some(30.0),
            ..StatedNutrients::default()
        };
        assert!(check_nutrients(&partial).is_ok());
        // 100 g of fat carry 900 kcal: a total of 500 cannot be.
        let too_little = StatedNutrients {
            grams: 300.0,
            kcal: 500.0,
            fat_g: Some(100.0),
            ..StatedNutrients::default()
        };
        assert_eq!(rules(&too_little), [Rule::EnergyMatchesMacros]);
    }

    #[test]
    fn energy_per_gram_is_at_most_9_5() {
        let at_limit = StatedNutrients {
            grams: 100.0,
            kcal: 950.0,
            ..StatedNutrients::default()
        };
        assert!(check_nutrients(&at_limit).is_ok());
        let over = StatedNutrients {
            kcal: 950.5,
            ..at_limit
        };
        assert_eq!(rules(&over), [Rule::EnergyPerGram]);
    }

    #[test]
    fn negative_or_missing_weight_is_refused_first() {
        let negative = StatedNutrients {
            fat_g: Some(-1.0),
            ..stated(100.0, 100.0, 0.0, 0.0, 0.0)
        };
        let violations = check_nutrients(&negative).unwrap_err();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].rule, Rule::NumbersAreReal);
        assert!(violations[0].detail.contains("fat_g"));
        let weightless = stated(0.0, 0.0, 0.0, 0.0, 0.0);
        assert_eq!(rules(&weightless), [Rule::NumbersAreReal]);
        let not_a_number = stated(100.0, f64::NAN, 0.0, 0.0, 0.0);
        assert_eq!(rules(&not_a_number), [Rule::NumbersAreReal]);
    }
}
