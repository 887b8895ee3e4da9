//! Units and sizes, and how an amount of one food becomes grams.
//!
//! A cup of rice, a cup of milk and a cup of spinach weigh 158 g, 244 g and 30 g: every
//! conversion therefore goes through the food's own portion weights or density, never a
//! generic "per 100 g × count". When a food has no measure for the unit a person used, its
//! default portion is taken instead and the result says so, with a lower confidence.

use super::table::{Food, FoodTable};

/// Millilitres in the volume units people type.
const ML_PER_CUP: f64 = 236.588;
const ML_PER_TABLESPOON: f64 = 14.787;
const ML_PER_TEASPOON: f64 = 4.929;
const ML_PER_FLUID_OUNCE: f64 = 29.574;
const ML_PER_PINT: f64 = 473.176;
const ML_PER_QUART: f64 = 946.353;
/// A drinking glass (8 fl oz), a drink can (12 fl oz) and a bottle (500 ml), used only for
/// liquids that have no such portion of their own.
const ML_PER_GLASS: f64 = 240.0;
const ML_PER_CAN: f64 = 355.0;
const ML_PER_BOTTLE: f64 = 500.0;
const GRAMS_PER_OUNCE: f64 = 28.349_523;
const GRAMS_PER_POUND: f64 = 453.592_37;

/// Size words ("a large egg").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    Small,
    Medium,
    Large,
    ExtraLarge,
}

impl Size {
    /// The portion key a food table uses for this size.
    pub fn portion_key(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Medium => "medium",
            Self::Large => "large",
            Self::ExtraLarge => "xl",
        }
    }

    /// Reads a single size word.
    pub fn from_word(word: &str) -> Option<Size> {
        match word {
            "small" | "smal" | "sm" | "little" | "mini" | "tiny" => Some(Self::Small),
            "medium" | "med" | "regular" | "normal" | "average" => Some(Self::Medium),
            "large" | "big" | "lg" | "huge" => Some(Self::Large),
            "xl" | "jumbo" | "xlarge" => Some(Self::ExtraLarge),
            _ => None,
        }
    }
}

/// A unit of amount as a person writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Unit {
    Gram,
    Kilogram,
    Milligram,
    Ounce,
    Pound,
    Milliliter,
    Liter,
    Cup,
    Tablespoon,
    Teaspoon,
    FluidOunce,
    Pint,
    Quart,
    Glass,
    Can,
    Bottle,
    Slice,
    Piece,
    Scoop,
    Serving,
    Bowl,
    Handful,
    Size(Size),
    /// A food-specific measure: "clove", "strip", "wedge", "stalk", "bar", ...
    Named(String),
}

/// Words that name a food-specific measure; they are units only where the food has them or
/// where "of" follows ("a wedge of lemon").
pub(crate) const NAMED_MEASURES: &[&str] = &[
    "clove",
    "stalk",
    "strip",
    "rasher",
    "leaf",
    "spear",
    "wedge",
    "ear",
    "link",
    "patty",
    "fillet",
    "bar",
    "packet",
    "package",
    "container",
    "carton",
    "cube",
    "stick",
    "sheet",
    "shot",
    "jar",
    "bag",
    "box",
    "pat",
    "head",
    "bunch",
    "sprig",
    "square",
    "plate",
    "mug",
    "chunk",
    "floret",
    "tail",
    "block",
    "chop",
    "rib",
    "pinch",
    "dash",
    "cob",
    "breast",
    "thigh",
    "wing",
    "drumstick",
    "leg",
    "steak",
    "half",
    "quarter",
    "ring",
    "roll",
    "pouch",
    "tub",
];

impl Unit {
    /// Reads a unit word (already lowercased; plurals accepted).
    pub fn from_word(word: &str) -> Option<Unit> {
        let unit = match word {
            "g" | "gr" | "gm" | "gms" | "gram" | "grams" | "gramme" | "grammes" => Unit::Gram,
            "kg" | "kgs" | "kilo" | "kilos" | "kilogram" | "kilograms" => Unit::Kilogram,
            "mg" | "milligram" | "milligrams" => Unit::Milligram,
            "oz" | "ounce" | "ounces" => Unit::Ounce,
            "lb" | "lbs" | "pound" | "pounds" => Unit::Pound,
            "ml" | "mls" | "milliliter" | "milliliters" | "millilitre" | "millilitres" => {
                Unit::Milliliter
            }
            "l" | "liter" | "liters" | "litre" | "litres" | "ltr" => Unit::Liter,
            "cup" | "cups" | "cupful" => Unit::Cup,
            "tbsp" | "tbsps" | "tbs" | "tbl" | "tablespoon" | "tablespoons" | "tblsp" => {
                Unit::Tablespoon
            }
            "tsp" | "tsps" | "teaspoon" | "teaspoons" => Unit::Teaspoon,
            "floz" => Unit::FluidOunce,
            "pint" | "pints" | "pt" => Unit::Pint,
            "quart" | "quarts" | "qt" => Unit::Quart,
            "glass" | "glasses" => Unit::Glass,
            "can" | "cans" | "tin" | "tins" => Unit::Can,
            "bottle" | "bottles" => Unit::Bottle,
            "slice" | "slices" | "slouce" => Unit::Slice,
            "piece" | "pieces" | "pc" | "pcs" => Unit::Piece,
            "scoop" | "scoops" => Unit::Scoop,
            "serving" | "servings" | "portion" | "portions" | "helping" | "helpings" => {
                Unit::Serving
            }
            "bowl" | "bowls" | "bowlful" => Unit::Bowl,
            "handful" | "handfuls" => Unit::Handful,
            _ => return None,
        };
        Some(unit)
    }

    /// Reads a food-specific measure word ("cloves" -> "clove").
    pub fn named_from_word(word: &str) -> Option<Unit> {
        let singular = super::text::singular(word);
        let singular = if singular == "halve" {
            "half".to_owned()
        } else {
            singular
        };
        NAMED_MEASURES
            .contains(&singular.as_str())
            .then_some(Unit::Named(singular))
    }

    /// The key of the food portion this unit refers to, when a food may have one.
    pub fn portion_key(&self) -> Option<&str> {
        match self {
            Unit::Cup => Some("cup"),
            Unit::Tablespoon => Some("tbsp"),
            Unit::Teaspoon => Some("tsp"),
            Unit::Pint => Some("pint"),
            Unit::Glass => Some("glass"),
            Unit::Can => Some("can"),
            Unit::Bottle => Some("bottle"),
            Unit::Slice => Some("slice"),
            Unit::Piece => Some("piece"),
            Unit::Scoop => Some("scoop"),
            Unit::Serving => Some("serving"),
            Unit::Bowl => Some("bowl"),
            Unit::Handful => Some("handful"),
            Unit::Size(size) => Some(size.portion_key()),
            Unit::Named(name) => Some(name),
            _ => None,
        }
    }

    /// Grams in one unit, for units of mass.
    pub fn grams_per_unit(&self) -> Option<f64> {
        match self {
            Unit::Gram => Some(1.0),
            Unit::Kilogram => Some(1000.0),
            Unit::Milligram => Some(0.001),
            Unit::Ounce => Some(GRAMS_PER_OUNCE),
            Unit::Pound => Some(GRAMS_PER_POUND),
            _ => None,
        }
    }

    /// Millilitres in one unit, for units of volume (containers included).
    pub fn millilitres_per_unit(&self) -> Option<f64> {
        match self {
            Unit::Milliliter => Some(1.0),
            Unit::Liter => Some(1000.0),
            Unit::Cup => Some(ML_PER_CUP),
            Unit::Tablespoon => Some(ML_PER_TABLESPOON),
            Unit::Teaspoon => Some(ML_PER_TEASPOON),
            Unit::FluidOunce => Some(ML_PER_FLUID_OUNCE),
            Unit::Pint => Some(ML_PER_PINT),
            Unit::Quart => Some(ML_PER_QUART),
            Unit::Glass => Some(ML_PER_GLASS),
            Unit::Can => Some(ML_PER_CAN),
            Unit::Bottle => Some(ML_PER_BOTTLE),
            _ => None,
        }
    }

    /// How the unit is written back to a person.
    pub fn label(&self) -> String {
        match self {
            Unit::Gram => "g".into(),
            Unit::Kilogram => "kg".into(),
            Unit::Milligram => "mg".into(),
            Unit::Ounce => "oz".into(),
            Unit::Pound => "lb".into(),
            Unit::Milliliter => "ml".into(),
            Unit::Liter => "l".into(),
            Unit::FluidOunce => "fl oz".into(),
            Unit::Quart => "quart".into(),
            other => other.portion_key().unwrap_or("unit").to_owned(),
        }
    }
}

/// How the grams of an item were obtained; it sets the confidence and the notes.
#[derive(Debug, Clone, PartialEq)]
pub enum PortionBasis {
    /// A weight was given.
    Mass,
    /// The food's own named portion ("cup" of rice = 158 g).
    FoodPortion(String),
    /// A volume through the food's density.
    Density,
    /// A volume scaled from the food's own cup or tablespoon weight.
    ScaledFromPortion(String),
    /// A count of the default portion ("2 eggs").
    CountOfDefault,
    /// No amount given: one default portion.
    DefaultPortion,
    /// The unit (or size) is not one this food has: its default portion was used instead.
    DefaultForUnknownUnit(String),
}

impl PortionBasis {
    /// How much this way of getting grams can be trusted (0..=1).
    pub fn confidence(&self) -> f64 {
        match self {
            Self::Mass => 1.0,
            Self::FoodPortion(_) | Self::Density => 0.95,
            Self::ScaledFromPortion(_) => 0.85,
            Self::CountOfDefault => 0.85,
            Self::DefaultPortion => 0.75,
            Self::DefaultForUnknownUnit(_) => 0.5,
        }
    }
}

/// For an item written with no amount ("milk"), which counted one default portion: the
/// assumption, for the person to see ("no amount given for 'milk': counted one cup (244 g)").
pub fn no_amount_note(input: &str, food: &Food) -> Option<String> {
    let portion = food.default_portion()?;
    Some(format!(
        "no amount given for '{}': counted one {} ({:.0} g)",
        input.trim(),
        portion.unit,
        portion.grams
    ))
}

/// An amount of a food in grams and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedAmount {
    pub grams: f64,
    pub basis: PortionBasis,
    /// A sentence for the person when a default or an assumption was used.
    pub note: Option<String>,
}

/// Grams in `quantity` × `unit` of `food` (no unit: a count of the default portion; no
/// quantity: one). Returns `None` only when the food has no portion at all and no mass was
/// given.
pub fn resolve_amount(
    food: &Food,
    quantity: Option<f64>,
    unit: Option<&Unit>,
) -> Option<ResolvedAmount> {
    let count = quantity.unwrap_or(1.0);
    let default = food.default_portion();
    let resolved = |grams: f64, basis: PortionBasis, note: Option<String>| ResolvedAmount {
        grams: grams * count,
        basis,
        note,
    };
    let Some(unit) = unit else {
        let portion = default?;
        if quantity.is_some() {
            return Some(resolved(portion.grams, PortionBasis::CountOfDefault, None));
        }
        // No amount at all: the caller says so in the person's words (`no_amount_note`).
        return Some(resolved(portion.grams, PortionBasis::DefaultPortion, None));
    };
    if let Some(grams) = unit.grams_per_unit() {
        return Some(resolved(grams, PortionBasis::Mass, None));
    }
    if let Some(key) = unit.portion_key() {
        if let Some(portion) = food.portion(key) {
            return Some(resolved(
                portion.grams,
                PortionBasis::FoodPortion(key.to_owned()),
                None,
            ));
        }
    }
    if let Some(millilitres) = unit.millilitres_per_unit() {
        let container = matches!(unit, Unit::Glass | Unit::Can | Unit::Bottle);
        if let Some(density) = food.density_g_per_ml {
            return Some(resolved(millilitres * density, PortionBasis::Density, None));
        }
        if !container {
            if let Some(cup) = food.portion("cup") {
                let grams = cup.grams * millilitres / ML_PER_CUP;
                return Some(resolved(
                    grams,
                    PortionBasis::ScaledFromPortion("cup".into()),
                    None,
                ));
            }
            if let Some(tablespoon) = food.portion("tbsp") {
                let grams = tablespoon.grams * millilitres / ML_PER_TABLESPOON;
                return Some(resolved(
                    grams,
                    PortionBasis::ScaledFromPortion("tbsp".into()),
                    None,
                ));
            }
        }
    }
    let portion = default?;
    match unit {
        Unit::Piece | Unit::Serving => {
            return Some(resolved(portion.grams, PortionBasis::CountOfDefault, None));
        }
        Unit::Size(Size::Medium) => {
            return Some(resolved(portion.grams, PortionBasis::CountOfDefault, None));
        }
        Unit::Bowl => {
            if let Some(cup) = food.portion("cup") {
                let note = format!(
                    "a bowl of {} counted as 1½ cups ({:.0} g)",
                    food.name,
                    cup.grams * 1.5
                );
                return Some(resolved(
                    cup.grams * 1.5,
                    PortionBasis::ScaledFromPortion("cup".into()),
                    Some(note),
                ));
            }
        }
        _ => {}
    }
    let label = unit.label();
    let note = format!(
        "{} has no '{}' measure in the table: used its default portion ({} = {:.0} g)",
        food.name, label, portion.unit, portion.grams
    );
    Some(resolved(
        portion.grams,
        PortionBasis::DefaultForUnknownUnit(label),
        Some(note),
    ))
}

impl FoodTable {
    /// Grams in `quantity` × `unit` of `food`, through the food's own measures (see
    /// [`resolve_amount`]). Works for foods of any source (built-in or USDA).
    pub fn portion_grams(
        &self,
        food: &Food,
        quantity: Option<f64>,
        unit: Option<&Unit>,
    ) -> Option<ResolvedAmount> {
        resolve_amount(food, quantity, unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nutrition::table::FoodTable;

    fn grams(id: &str, quantity: Option<f64>, unit: Option<Unit>) -> f64 {
        let food = FoodTable::builtin().get(id).expect("food in table");
        resolve_amount(food, quantity, unit.as_ref()).map_or(f64::NAN, |amount| amount.grams)
    }

    #[test]
    fn a_cup_weighs_what_that_food_weighs() {
        assert_eq!(grams("white_rice", Some(1.0), Some(Unit::Cup)), 158.0);
        assert_eq!(grams("whole_milk", Some(1.0), Some(Unit::Cup)), 244.0);
        assert_eq!(grams("spinach", Some(1.0), Some(Unit::Cup)), 30.0);
    }

    #[test]
    fn counts_use_the_default_portion_and_mass_is_mass() {
        assert_eq!(grams("egg", Some(2.0), None), 100.0);
        assert_eq!(grams("egg", None, Some(Unit::Size(Size::Large))), 50.0);
        assert_eq!(grams("white_rice", Some(200.0), Some(Unit::Gram)), 200.0);
        assert!((grams("steak", Some(8.0), Some(Unit::Ounce)) - 226.796).abs() < 0.01);
    }

    #[test]
    fn volumes_go_through_density_or_the_foods_cup() {
        let milk_ml = grams("whole_milk", Some(100.0), Some(Unit::Milliliter));
        assert!((milk_ml - 103.0).abs() < 0.01);
        let beer = grams("beer", Some(1.0), Some(Unit::Pint));
        assert!((beer - 473.0).abs() < 1.0, "{beer}");
        // Half a cup of rice through its own cup weight.
        let rice = grams("white_rice", Some(4.0), Some(Unit::Tablespoon));
        assert!((rice - 40.0).abs() < 1e-9, "{rice}");
    }

    #[test]
    fn no_amount_counts_one_default_portion_and_says_so() {
        let table = FoodTable::builtin();
        let milk = table.lookup("milk").expect("milk").food;
        let amount = resolve_amount(milk, None, None).expect("an amount");
        assert_eq!(amount.basis, PortionBasis::DefaultPortion);
        let portion = milk.default_portion().expect("a portion");
        assert_eq!(
            no_amount_note("milk", milk).expect("a note"),
            format!(
                "no amount given for 'milk': counted one {} ({:.0} g)",
                portion.unit, portion.grams
            )
        );
        let counted = resolve_amount(milk, Some(2.0), None).expect("an amount");
        assert_eq!(counted.basis, PortionBasis::CountOfDefault);
    }

    #[test]
    fn an_unknown_unit_falls_back_to_the_default_portion_with_a_note() {
        let food = FoodTable::builtin().get("banana").expect("banana");
        let amount = resolve_amount(food, Some(1.0), Some(&Unit::Scoop));
        let amount = amount.expect("an amount");
        assert_eq!(amount.grams, 118.0);
        assert!(matches!(
            amount.basis,
            PortionBasis::DefaultForUnknownUnit(_)
        ));
        assert!(amount.note.is_some());
        assert!(amount.basis.confidence() < PortionBasis::CountOfDefault.confidence());
    }
}
