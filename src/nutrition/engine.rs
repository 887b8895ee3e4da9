//! The nutrition engine the agents call: the built-in table first, USDA FoodData Central for what
//! the table does not know (when `USDA_API_KEY` is set).
//!
//! Why this order: the built-in table is curated (every row a chosen USDA food with household
//! portions), answers in microseconds and never fails; FDC's search ranks by text relevance and
//! can return "Rice bran, crude" for "rice". So FDC is asked only for the foods the table cannot
//! match, and when FDC fails or knows nothing the item stays unknown: no number is invented.
//! Each item says which source it came from.

use std::sync::Arc;

use health_actors::domain::{FoodItem, Grams, Nutrients, NutritionSource};
use health_actors::nutrition::{
    check_amount, estimate_meal, no_amount_note, parse_meal, resolve_amount, Dataset, Food,
    FoodSource, FoodTable, LeftOut, MealEstimate, ParsedItem, Portion, PortionBasis,
};

use super::usda::{UsdaClient, UsdaFood};

/// Confidence is scaled by this for FDC matches: its search is by relevance, not by identity.
const USDA_MATCH_CONFIDENCE: f64 = 0.8;

pub struct NutritionEngine {
    table: &'static FoodTable,
    usda: Option<Arc<UsdaClient>>,
}

impl NutritionEngine {
    /// The built-in table only.
    pub fn offline() -> Self {
        Self {
            table: FoodTable::builtin(),
            usda: None,
        }
    }

    pub fn with_usda(usda: Arc<UsdaClient>) -> Self {
        Self {
            table: FoodTable::builtin(),
            usda: Some(usda),
        }
    }

    pub fn table(&self) -> &'static FoodTable {
        self.table
    }

    /// `grams` of the food called `name` (a model names the food and weighs it; the numbers come
    /// from here): the built-in table first, then USDA. `None` when neither knows the food.
    pub async fn item(&self, name: &str, grams: f64) -> Option<FoodItem> {
        let grams = Grams::new(grams).ok()?.get();
        if let Some(found) = self.table.lookup(name) {
            return Some(FoodItem {
                input: name.to_owned(),
                name: found.food.name.clone(),
                grams,
                nutrients: found.food.nutrients_for(grams),
                source: NutritionSource::BuiltIn,
                confidence: (found.score * 100.0).round() / 100.0,
            });
        }
        let usda = self.usda.as_ref()?;
        match usda.lookup(name).await {
            Ok(Some(food)) => Some(FoodItem {
                input: name.to_owned(),
                name: food.description.clone(),
                grams,
                nutrients: food.per_100g.scaled(grams / 100.0),
                source: NutritionSource::Usda,
                confidence: USDA_MATCH_CONFIDENCE,
            }),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "USDA lookup failed; the item stays unknown");
                None
            }
        }
    }

    /// Items, totals and the unknown rest of a meal description.
    pub async fn estimate(&self, text: &str) -> MealEstimate {
        let mut estimate = estimate_meal(text, self.table);
        let Some(usda) = &self.usda else {
            return estimate;
        };
        let mut still_unknown = Vec::new();
        for label in std::mem::take(&mut estimate.unknown) {
            let parsed = parse_meal(&label, &|_| false);
            let Some(item) = parsed.into_iter().next() else {
                still_unknown.push(label);
                continue;
            };
            match usda.lookup(&item.name).await {
                Ok(Some(food)) => match usda_item(&label, &item, &food) {
                    Ok((food_item, note)) => {
                        estimate.notes.extend(note);
                        estimate.items.push(food_item);
                    }
                    Err(Some(left_out)) => estimate.left_out.push(left_out),
                    Err(None) => still_unknown.push(label),
                },
                Ok(None) => still_unknown.push(label),
                Err(error) => {
                    tracing::warn!(%error, "USDA lookup failed; the item stays unknown");
                    still_unknown.push(label);
                }
            }
        }
        estimate.unknown = still_unknown;
        estimate.total = Nutrients::sum(estimate.items.iter().map(|item| &item.nutrients));
        estimate
    }
}

/// An FDC food as a table [`Food`], so that amounts resolve through the same rules.
pub fn food_from_usda(usda: &UsdaFood) -> Food {
    let mut portions: Vec<Portion> = usda
        .portions
        .iter()
        .filter_map(|portion| {
            let unit = portion_key(&portion.unit)?;
            Some(Portion {
                unit,
                grams: portion.grams / portion.amount,
            })
        })
        .collect();
    // The default portion (what "2 avocados" counts) is a whole item, not a cup.
    let whole_item_rank = |portion: &Portion| match portion.unit.as_str() {
        "medium" => 0,
        "large" => 2,
        "small" => 3,
        "piece" | "each" | "item" => 4,
        "slice" => 5,
        "serving" => 6,
        "cup" | "tbsp" | "tsp" => 9,
        _ if usda.description.to_lowercase().contains(&portion.unit) => 1,
        _ => 7,
    };
    portions.sort_by_key(whole_item_rank);
    Food {
        id: format!("fdc:{}", usda.fdc_id),
        name: usda.description.clone(),
        per_100g: usda.per_100g,
        portions,
        density_g_per_ml: None,
        synonyms: Vec::new(),
        source: FoodSource {
            fdc_id: u32::try_from(usda.fdc_id).ok(),
            dataset: match usda.data_type.as_str() {
                "Foundation" => Dataset::Foundation,
                "Survey (FNDDS)" => Dataset::Fndds,
                _ => Dataset::SrLegacy,
            },
            note: None,
        },
    }
}

/// FDC measure names → the table's portion keys.
fn portion_key(unit: &str) -> Option<String> {
    let key = match unit.trim() {
        "cup" | "cups" => "cup",
        "tablespoon" | "tbsp" => "tbsp",
        "teaspoon" | "tsp" => "tsp",
        "fl oz" | "oz" | "g" | "lb" => return None,
        "" => return None,
        other => other,
    };
    Some(key.to_owned())
}

/// `Err(Some(_))` when the amount cannot be right, `Err(None)` when it cannot be read.
fn usda_item(
    label: &str,
    item: &ParsedItem,
    usda: &UsdaFood,
) -> Result<(FoodItem, Option<String>), Option<LeftOut>> {
    let food = food_from_usda(usda);
    let amount = resolve_amount(&food, item.quantity, item.unit.as_ref()).ok_or(None)?;
    check_amount(label, amount.grams).map_err(Some)?;
    let grams = Grams::new(amount.grams).map_err(|_| None)?;
    let food_item = FoodItem {
        input: label.to_owned(),
        name: food.name.clone(),
        grams: (grams.get() * 10.0).round() / 10.0,
        nutrients: food.nutrients_for(grams.get()),
        source: NutritionSource::Usda,
        confidence: ((amount.basis.confidence() * USDA_MATCH_CONFIDENCE) * 100.0).round() / 100.0,
    };
    let note = match amount.basis {
        PortionBasis::DefaultPortion => no_amount_note(label, &food),
        _ => amount.note,
    };
    Ok((food_item, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nutrition::usda::UsdaPortion;

    fn avocado() -> UsdaFood {
        UsdaFood {
            fdc_id: 171705,
            description: "Avocados, raw, all commercial varieties".into(),
            data_type: "SR Legacy".into(),
            per_100g: Nutrients {
                kcal: 160.0,
                protein_g: 2.0,
                carbs_g: 8.53,
                fat_g: 14.66,
                fiber_g: 6.7,
            },
            portions: vec![
                UsdaPortion {
                    unit: "cup".into(),
                    amount: 1.0,
                    description: "cup, cubes".into(),
                    grams: 150.0,
                },
                UsdaPortion {
                    unit: "avocado".into(),
                    amount: 1.0,
                    description: "avocado".into(),
                    grams: 201.0,
                },
            ],
        }
    }

    #[test]
    fn a_whole_item_is_the_default_portion_not_a_cup() {
        let food = food_from_usda(&avocado());
        assert_eq!(food.default_portion().map(|p| p.grams), Some(201.0));
        assert_eq!(food.portion("cup").map(|p| p.grams), Some(150.0));
        assert_eq!(food.source.fdc_id, Some(171705));
    }

    #[test]
    fn usda_items_use_the_foods_own_portions_and_say_their_source() {
        let item = ParsedItem {
            input: "half an avocado".into(),
            quantity: Some(0.5),
            unit: None,
            name: "avocado".into(),
        };
        let (food_item, _) = usda_item("half an avocado", &item, &avocado()).unwrap();
        assert_eq!(food_item.grams, 100.5);
        assert!((food_item.nutrients.kcal - 160.8).abs() < 1e-9);
        assert_eq!(food_item.source, NutritionSource::Usda);
        assert!(food_item.confidence < 1.0);
    }
}
