//! How an estimate is shown: the JSON of `health-agent estimate --json` and the plain-text
//! table of `health-agent estimate`.

use health_actors::nutrition::MealEstimate;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct EstimateJson<'a> {
    pub items: Vec<ItemJson<'a>>,
    pub total: TotalJson,
    pub unknown: &'a [String],
    /// Items whose food is known but whose amount cannot be right, and why.
    pub left_out: Vec<LeftOutJson<'a>>,
    pub notes: &'a [String],
}

#[derive(Debug, Serialize)]
pub struct LeftOutJson<'a> {
    pub input: &'a str,
    pub reason: &'a str,
}

#[derive(Debug, Serialize)]
pub struct ItemJson<'a> {
    pub input: &'a str,
    pub name: &'a str,
    pub grams: f64,
    pub kcal: f64,
    pub protein_g: f64,
    pub carbs_g: f64,
    pub fat_g: f64,
    pub source: &'static str,
    pub confidence: f64,
}

#[derive(Debug, Serialize)]
pub struct TotalJson {
    pub kcal: f64,
    pub protein_g: f64,
    pub carbs_g: f64,
    pub fat_g: f64,
}

/// Rounds for display: kcal to whole numbers, grams to one decimal.
fn one_decimal(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

pub fn to_json(estimate: &MealEstimate) -> EstimateJson<'_> {
    EstimateJson {
        items: estimate
            .items
            .iter()
            .map(|item| ItemJson {
                input: &item.input,
                name: &item.name,
                grams: one_decimal(item.grams),
                kcal: item.nutrients.kcal.round(),
                protein_g: one_decimal(item.nutrients.protein_g),
                carbs_g: one_decimal(item.nutrients.carbs_g),
                fat_g: one_decimal(item.nutrients.fat_g),
                source: item.source.as_str(),
                confidence: item.confidence,
            })
            .collect(),
        total: TotalJson {
            kcal: estimate.total.kcal.round(),
            protein_g: one_decimal(estimate.total.protein_g),
            carbs_g: one_decimal(estimate.total.carbs_g),
            fat_g: one_decimal(estimate.total.fat_g),
        },
        unknown: &estimate.unknown,
        left_out: estimate
            .left_out
            .iter()
            .map(|left_out| LeftOutJson {
                input: &left_out.input,
                reason: &left_out.reason,
            })
            .collect(),
        notes: &estimate.notes,
    }
}

/// A table a person can read in a terminal.
pub fn to_text(estimate: &MealEstimate) -> String {
    let mut out = String::new();
    for item in &estimate.items {
        out.push_str(&format!(
            "{input:<28} {name:<44} {grams:>7.1} g {kcal:>6.0} kcal  P {protein:>5.1}  C {carbs:>5.1}  F {fat:>5.1}  ({source}, confidence {confidence:.2})\n",
            input = truncate(&item.input, 28),
            name = truncate(&item.name, 44),
            grams = item.grams,
            kcal = item.nutrients.kcal,
            protein = item.nutrients.protein_g,
            carbs = item.nutrients.carbs_g,
            fat = item.nutrients.fat_g,
            source = item.source.label(),
            confidence = item.confidence,
        ));
    }
    if !estimate.items.is_empty() {
        out.push_str(&format!(
            "{:<28} {:<44} {:>9} {:>6.0} kcal  P {:>5.1}  C {:>5.1}  F {:>5.1}\n",
            "total",
            "",
            "",
            estimate.total.kcal,
            estimate.total.protein_g,
            estimate.total.carbs_g,
            estimate.total.fat_g
        ));
    }
    for note in &estimate.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    for left_out in &estimate.left_out {
        out.push_str(&format!("left out: {}\n", left_out.sentence()));
    }
    for unknown in &estimate.unknown {
        out.push_str(&format!(
            "unknown: I don't know '{unknown}' yet: give grams or a similar food\n"
        ));
    }
    out
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}
