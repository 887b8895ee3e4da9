//! Meal text parsing, the built-in food table and nutrient estimation (pure code, no I/O).
//!
//! The offline product must give honest numbers with no API key: a person types what they ate,
//! [`estimate_meal`] parses it ([`parser`]), finds each food in a [`FoodTable`] of USDA
//! FoodData Central values ([`table`]), converts amounts to grams through the food's own
//! portions and density ([`units`]) and adds up, and [`energy`] computes a daily energy target
//! from a profile. Numbers stated rather than computed (a model's estimate for a food no
//! database knows) are checked against physics by [`plausibility`] before they are saved.
//! Reading what a chat message means (intents, profiles, corrections) is
//! [`crate::understanding`]'s, which builds on this module.
//!
//! Everything here is deterministic and side-effect free, so it is tested in-module and
//! benchmarked by `benches/nutrition.rs` against the Nutrition5k text meals.

pub mod energy;
pub mod estimate;
pub mod parser;
pub mod plausibility;
pub mod table;
pub(crate) mod text;
pub mod units;

pub use energy::{daily_kcal_target, EnergyTarget};
pub use estimate::{check_amount, estimate_meal, LeftOut, MealEstimate, MAX_ITEM_GRAMS};
pub use parser::{parse_meal, ParsedItem};
pub use plausibility::{check_nutrients, Rule, StatedNutrients, Violation};
pub use table::{Dataset, Food, FoodMatch, FoodSource, FoodTable, FoodTableError, Portion};
pub use units::{no_amount_note, resolve_amount, PortionBasis, ResolvedAmount, Size, Unit};
