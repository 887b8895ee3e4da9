//! The food table: per-100 g nutrients, household portions and densities, and the fuzzy index
//! that finds a food from what a person typed.
//!
//! The built-in table (`actors/data/foods.tsv`, embedded at compile time) carries USDA
//! FoodData Central values, so the product gives honest numbers with no network and no API key.
//! A later USDA client produces [`Food`] records of the same shape, so everything downstream
//! (portions, estimation) works on either source. Matching tolerates case, plurals, word
//! order, small typos and synonyms, and says how sure it is; below [`MATCH_THRESHOLD`] the
//! answer is "unknown", never a guess.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::domain::Nutrients;

use super::text::{edit_distance_within, plain_words, singular, word_weight};

/// The embedded table. See the header of the file for its columns and provenance.
const BUILTIN_TABLE: &str = include_str!("../../data/foods.tsv");

/// A match scoring below this is reported as unknown.
pub const MATCH_THRESHOLD: f64 = 0.75;

/// Which USDA FoodData Central data set a row's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// SR Legacy (the former Standard Reference).
    SrLegacy,
    /// FNDDS, the survey database of foods as eaten (dishes, drinks).
    Fndds,
    /// Foundation Foods.
    Foundation,
    /// Computed from a USDA row by a documented rule (e.g. weight with refuse).
    Derived,
}

impl Dataset {
    pub fn parse(code: &str) -> Option<Self> {
        match code.trim().to_ascii_lowercase().as_str() {
            "sr" | "sr_legacy" | "sr legacy" => Some(Self::SrLegacy),
            "fndds" => Some(Self::Fndds),
            "foundation" => Some(Self::Foundation),
            "derived" => Some(Self::Derived),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::SrLegacy => "USDA SR Legacy",
            Self::Fndds => "USDA FNDDS",
            Self::Foundation => "USDA Foundation Foods",
            Self::Derived => "derived from USDA",
        }
    }
}

/// Where a food's numbers come from.
#[derive(Debug, Clone, PartialEq)]
pub struct FoodSource {
    /// The FoodData Central id, when recorded.
    pub fdc_id: Option<u32>,
    pub dataset: Dataset,
    /// A remark on the provenance ("approximate", how a derived row was computed, ...).
    pub note: Option<String>,
}

/// A named household measure of one food, in grams ("cup" = 158 g of cooked rice).
#[derive(Debug, Clone, PartialEq)]
pub struct Portion {
    /// The measure's key: "cup", "tbsp", "slice", "medium", "large", "can", "clove", ...
    pub unit: String,
    pub grams: f64,
}

/// One food: what 100 g contain and how much its household measures weigh.
#[derive(Debug, Clone, PartialEq)]
pub struct Food {
    /// A stable key ("white_rice").
    pub id: String,
    /// The USDA description ("Rice, white, long-grain, regular, enriched, cooked").
    pub name: String,
    pub per_100g: Nutrients,
    /// The first portion is the default one: what "2 eggs" or "an apple" means.
    pub portions: Vec<Portion>,
    /// Grams per millilitre, for liquids measured by volume.
    pub density_g_per_ml: Option<f64>,
    /// Other names people use; plurals need not be listed.
    pub synonyms: Vec<String>,
    pub source: FoodSource,
}

impl Food {
    /// The portion used for a bare count ("2 eggs") or no amount at all ("an apple").
    pub fn default_portion(&self) -> Option<&Portion> {
        self.portions.first()
    }

    /// The portion with this key, if the food has one.
    pub fn portion(&self, unit: &str) -> Option<&Portion> {
        self.portions.iter().find(|portion| portion.unit == unit)
    }

    /// The nutrients of `grams` of this food.
    pub fn nutrients_for(&self, grams: f64) -> Nutrients {
        self.per_100g.scaled(grams / 100.0)
    }

    /// True when the food is measured as a liquid (it has a density).
    pub fn is_liquid(&self) -> bool {
        self.density_g_per_ml.is_some()
    }
}

/// A food found for a name, with how well the name matched (1.0 = exactly a known name).
#[derive(Debug, Clone, PartialEq)]
pub struct FoodMatch<'table> {
    pub food: &'table Food,
    /// 0.0 ..= 1.0
    pub score: f64,
    /// The table name or synonym that matched.
    pub matched_name: String,
}

/// Why a table file could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FoodTableError {
    #[error("food table line {line}: {reason}")]
    BadLine { line: usize, reason: String },
    #[error("food table: the id '{0}' appears twice")]
    DuplicateId(String),
}

/// One indexed name of a food.
#[derive(Debug, Clone)]
struct IndexedName {
    food: usize,
    text: String,
    words: Vec<String>,
    total_weight: f64,
}

/// Foods and the index that finds them by name.
#[derive(Debug, Clone, Default)]
pub struct FoodTable {
    foods: Vec<Food>,
    names: Vec<IndexedName>,
    /// Normalised words as typed (plural kept) -> name index.
    exact_plain: HashMap<String, usize>,
    /// Singularised words -> name index.
    exact_singular: HashMap<String, usize>,
    /// Sorted singular words -> name index (word order does not matter).
    sorted_words: HashMap<String, usize>,
    /// Word -> the names containing it.
    names_by_word: HashMap<String, Vec<usize>>,
    /// Every distinct word, for typo search.
    vocabulary: Vec<String>,
    by_id: HashMap<String, usize>,
}

impl FoodTable {
    /// The built-in table, parsed and indexed once per process.
    pub fn builtin() -> &'static FoodTable {
        static TABLE: OnceLock<FoodTable> = OnceLock::new();
        TABLE.get_or_init(|| match FoodTable::from_tsv(BUILTIN_TABLE) {
            Ok(table) => table,
            Err(error) => {
                // A test guards the embedded file; this only keeps a bad build from crashing.
                tracing::error!(%error, "the built-in food table could not be read");
                FoodTable::from_foods(Vec::new())
            }
        })
    }

    /// Reads a table in the format of `actors/data/foods.tsv`.
    pub fn from_tsv(text: &str) -> Result<FoodTable, FoodTableError> {
        let mut foods = Vec::new();
        let mut seen = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let food = parse_food_line(line).map_err(|reason| FoodTableError::BadLine {
                line: line_number,
                reason,
            })?;
            if seen.insert(food.id.clone(), ()).is_some() {
                return Err(FoodTableError::DuplicateId(food.id));
            }
            foods.push(food);
        }
        Ok(FoodTable::from_foods(foods))
    }

    /// Builds the index over `foods` (e.g. foods fetched from USDA).
    pub fn from_foods(foods: Vec<Food>) -> FoodTable {
        let mut table = FoodTable {
            foods,
            ..FoodTable::default()
        };
        // Names whose typed form is already singular are indexed first, so that a singular
        // name is not taken over by another food's plural that singularises to it.
        let mut pending: Vec<(usize, String)> = Vec::new();
        for (food_index, food) in table.foods.iter().enumerate() {
            table.by_id.insert(food.id.clone(), food_index);
            pending.push((food_index, food.id.replace('_', " ")));
            pending.push((food_index, food.name.clone()));
            for synonym in &food.synonyms {
                pending.push((food_index, synonym.clone()));
            }
        }
        for (food_index, text) in &pending {
            let plain = plain_words(text);
            if plain.is_empty() {
                continue;
            }
            let words: Vec<String> = plain.iter().map(|word| singular(word)).collect();
            let name_index = table.names.len();
            table.names.push(IndexedName {
                food: *food_index,
                text: text.clone(),
                total_weight: words.iter().map(|word| word_weight(word)).sum(),
                words: words.clone(),
            });
            table
                .exact_plain
                .entry(plain.join(" "))
                .or_insert(name_index);
            let mut unique_words = words.clone();
            unique_words.sort();
            unique_words.dedup();
            for word in unique_words {
                table
                    .names_by_word
                    .entry(word)
                    .or_default()
                    .push(name_index);
            }
        }
        // Singular keys: first the names typed in singular, then the rest.
        for pass in [true, false] {
            for (name_index, name) in table.names.iter().enumerate() {
                let plain = plain_words(&name.text);
                let typed_singular = plain == name.words;
                if typed_singular != pass {
                    continue;
                }
                table
                    .exact_singular
                    .entry(name.words.join(" "))
                    .or_insert(name_index);
                let mut sorted = name.words.clone();
                sorted.sort();
                table
                    .sorted_words
                    .entry(sorted.join(" "))
                    .or_insert(name_index);
            }
        }
        table.vocabulary = table.names_by_word.keys().cloned().collect();
        table.vocabulary.sort();
        table
    }

    pub fn foods(&self) -> &[Food] {
        &self.foods
    }

    pub fn len(&self) -> usize {
        self.foods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.foods.is_empty()
    }

    /// The food with this id ("white_rice").
    pub fn get(&self, id: &str) -> Option<&Food> {
        self.by_id.get(id).map(|&index| &self.foods[index])
    }

    /// True when `name` is exactly a known food name or synonym (up to case, plurals and
    /// punctuation). The parser uses it to keep "mac and cheese" in one piece.
    pub fn knows_name(&self, name: &str) -> bool {
        let plain = plain_words(name);
        if plain.is_empty() {
            return false;
        }
        let singular_words: Vec<String> = plain.iter().map(|word| singular(word)).collect();
        self.exact_plain.contains_key(&plain.join(" "))
            || self.exact_singular.contains_key(&singular_words.join(" "))
    }

    /// Finds the food a person means by `name`, or `None` when nothing matches well enough.
    pub fn lookup(&self, name: &str) -> Option<FoodMatch<'_>> {
        let plain = plain_words(name);
        if plain.is_empty() || plain.len() > 12 {
            return None;
        }
        if let Some(&name_index) = self.exact_plain.get(&plain.join(" ")) {
            return Some(self.food_match(name_index, 1.0));
        }
        let words: Vec<String> = plain.iter().map(|word| singular(word)).collect();
        if let Some(&name_index) = self.exact_singular.get(&words.join(" ")) {
            return Some(self.food_match(name_index, 1.0));
        }
        let mut sorted = words.clone();
        sorted.sort();
        if let Some(&name_index) = self.sorted_words.get(&sorted.join(" ")) {
            return Some(self.food_match(name_index, 0.97));
        }
        self.fuzzy_lookup(&words)
    }

    fn food_match(&self, name_index: usize, score: f64) -> FoodMatch<'_> {
        let name = &self.names[name_index];
        FoodMatch {
            food: &self.foods[name.food],
            score,
            matched_name: name.text.clone(),
        }
    }

    /// Scores every name that shares a word (or a near-spelling of one) with the query.
    fn fuzzy_lookup(&self, query: &[String]) -> Option<FoodMatch<'_>> {
        // For each query word: the table words it may stand for, with a similarity.
        let mut alternatives: Vec<Vec<(String, f64)>> = Vec::with_capacity(query.len());
        for word in query {
            let mut options = Vec::new();
            if self.names_by_word.contains_key(word) {
                options.push((word.clone(), 1.0));
            } else if word.chars().count() >= 4 && word_weight(word) >= 1.0 {
                let limit = if word.chars().count() >= 8 { 2 } else { 1 };
                for candidate in &self.vocabulary {
                    if let Some(distance) = edit_distance_within(word, candidate, limit) {
                        let similarity = if distance <= 1 { 0.8 } else { 0.6 };
                        options.push((candidate.clone(), similarity));
                    }
                }
            }
            alternatives.push(options);
        }
        let mut candidates: Vec<usize> = alternatives
            .iter()
            .flatten()
            .filter_map(|(word, _)| self.names_by_word.get(word))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();

        let query_weight: f64 = query.iter().map(|word| word_weight(word)).sum();
        let head_word = query.iter().rev().find(|word| word_weight(word) >= 1.0);
        let mut best: Option<(f64, usize)> = None;
        for name_index in candidates {
            let name = &self.names[name_index];
            let mut used = vec![false; name.words.len()];
            let mut matched = 0.0;
            let mut head_matched = head_word.is_none();
            for (query_word, options) in query.iter().zip(&alternatives) {
                let mut best_here: Option<(usize, f64)> = None;
                for (position, name_word) in name.words.iter().enumerate() {
                    if used[position] {
                        continue;
                    }
                    let similarity = options
                        .iter()
                        .filter(|(word, _)| word == name_word)
                        .map(|(_, similarity)| *similarity)
                        .fold(0.0, f64::max);
                    if similarity > best_here.map_or(0.0, |(_, best)| best) {
                        best_here = Some((position, similarity));
                    }
                }
                if let Some((position, similarity)) = best_here {
                    used[position] = true;
                    matched += similarity * word_weight(query_word);
                    if Some(query_word) == head_word {
                        head_matched = true;
                    }
                }
            }
            let mut score = 2.0 * matched / (query_weight + name.total_weight);
            if !head_matched {
                score *= 0.85;
            }
            let better = match best {
                None => true,
                Some((best_score, best_index)) => {
                    score > best_score + 1e-9
                        || ((score - best_score).abs() <= 1e-9
                            && name.words.len() < self.names[best_index].words.len())
                }
            };
            if better {
                best = Some((score, name_index));
            }
        }
        match best {
            Some((score, name_index)) if score >= MATCH_THRESHOLD => {
                Some(self.food_match(name_index, score.min(0.95)))
            }
            _ => None,
        }
    }
}

/// Parses one tab-separated row: id, name, kcal, protein, carbs, fat, fiber, portions,
/// density, synonyms, fdc_id, dataset, note.
fn parse_food_line(line: &str) -> Result<Food, String> {
    let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
    if fields.len() < 12 {
        return Err(format!(
            "expected at least 12 tab-separated fields, found {}",
            fields.len()
        ));
    }
    let number = |index: usize, what: &str| -> Result<f64, String> {
        fields[index]
            .parse::<f64>()
            .ok()
            .filter(|value| value.is_finite() && *value >= 0.0)
            .ok_or_else(|| format!("{what} '{}' is not a non-negative number", fields[index]))
    };
    let id = fields[0].to_owned();
    if id.is_empty() {
        return Err("empty id".into());
    }
    let per_100g = Nutrients {
        kcal: number(2, "kcal")?,
        protein_g: number(3, "protein")?,
        carbs_g: number(4, "carbs")?,
        fat_g: number(5, "fat")?,
        fiber_g: number(6, "fiber")?,
    };
    let mut portions = Vec::new();
    for part in fields[7].split(';').filter(|part| !part.trim().is_empty()) {
        let (unit, grams) = part
            .split_once('=')
            .ok_or_else(|| format!("portion '{part}' is not unit=grams"))?;
        let grams = grams
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|grams| grams.is_finite() && *grams > 0.0)
            .ok_or_else(|| format!("portion '{part}' has no positive gram weight"))?;
        portions.push(Portion {
            unit: unit.trim().to_owned(),
            grams,
        });
    }
    if portions.is_empty() {
        return Err(format!("food '{id}' has no portion"));
    }
    let density_g_per_ml = if fields[8].is_empty() {
        None
    } else {
        Some(number(8, "density")?).filter(|density| *density > 0.0)
    };
    let synonyms = fields[9]
        .split(';')
        .map(str::trim)
        .filter(|synonym| !synonym.is_empty())
        .map(str::to_owned)
        .collect();
    let fdc_id = if fields[10].is_empty() {
        None
    } else {
        Some(
            fields[10]
                .parse::<u32>()
                .map_err(|_| format!("fdc_id '{}'", fields[10]))?,
        )
    };
    let dataset =
        Dataset::parse(fields[11]).ok_or_else(|| format!("unknown dataset '{}'", fields[11]))?;
    let note = fields
        .get(12)
        .filter(|note| !note.is_empty())
        .map(|note| (*note).to_owned());
    Ok(Food {
        id,
        name: fields[1].to_owned(),
        per_100g,
        portions,
        density_g_per_ml,
        synonyms,
        source: FoodSource {
            fdc_id,
            dataset,
            note,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> &'static FoodTable {
        FoodTable::builtin()
    }

    #[test]
    fn the_embedded_table_parses_and_is_large_enough() {
        let parsed = FoodTable::from_tsv(BUILTIN_TABLE);
        assert!(parsed.is_ok(), "{parsed:?}");
        assert!(table().len() >= 500, "only {} foods", table().len());
        for food in table().foods() {
            assert!(
                food.default_portion().is_some(),
                "{} has no portion",
                food.id
            );
            assert!(
                food.per_100g.kcal <= 902.0,
                "{} has impossible energy",
                food.id
            );
            let macros = food.per_100g.protein_g + food.per_100g.carbs_g + food.per_100g.fat_g;
            assert!(
                macros <= 100.5,
                "{} has more than 100 g of macros per 100 g",
                food.id
            );
        }
    }

    #[test]
    fn reference_values_match_usda() {
        let egg = table()
            .get("egg")
            .map(|food| (food.per_100g.kcal, food.portion("large")));
        assert_eq!(egg.map(|(kcal, _)| kcal), Some(143.0));
        assert_eq!(
            table()
                .get("egg")
                .and_then(|food| food.portion("large"))
                .map(|p| p.grams),
            Some(50.0)
        );
        let rice = table().get("white_rice");
        assert_eq!(rice.map(|food| food.per_100g.kcal), Some(130.0));
        assert_eq!(
            rice.and_then(|food| food.portion("cup")).map(|p| p.grams),
            Some(158.0)
        );
        let milk = table().get("whole_milk");
        assert_eq!(milk.map(|food| food.per_100g.kcal), Some(61.0));
        assert_eq!(
            milk.and_then(|food| food.portion("cup")).map(|p| p.grams),
            Some(244.0)
        );
    }

    #[test]
    fn lookup_handles_case_plurals_order_typos_and_synonyms() {
        let id = |name: &str| table().lookup(name).map(|found| found.food.id.clone());
        assert_eq!(id("Eggs").as_deref(), Some("egg"));
        assert_eq!(id("TOMATOES").as_deref(), Some("tomato"));
        assert_eq!(id("breast chicken").as_deref(), Some("chicken_breast"));
        assert_eq!(id("chiken breast").as_deref(), Some("chicken_breast"));
        assert_eq!(id("bannana").as_deref(), Some("banana"));
        assert_eq!(id("courgette").as_deref(), Some("zucchini"));
        assert_eq!(id("spinach (raw)").as_deref(), Some("spinach"));
        assert_eq!(id("spinach (cooked)").as_deref(), Some("spinach_cooked"));
        assert_eq!(id("grilled salmon").as_deref(), Some("salmon"));
        // A pepper of unnamed kind is the vegetable (USDA "Peppers, raw, NFS"); the spice is
        // "black pepper", and "salt and pepper" stays the seasoning.
        assert_eq!(id("peppers").as_deref(), Some("peppers_raw"));
        assert_eq!(id("pepper").as_deref(), Some("peppers_raw"));
        assert_eq!(id("bell peppers").as_deref(), Some("bell_pepper"));
        assert_eq!(id("black pepper").as_deref(), Some("black_pepper"));
        assert_eq!(id("salt and pepper").as_deref(), Some("black_pepper"));
        assert_eq!(id("mixed greens").as_deref(), Some("mixed_salad_greens"));
        assert_eq!(id("roasted potatoes").as_deref(), Some("roasted_potatoes"));
        assert_eq!(id("berries").as_deref(), Some("mixed_berries"));
        assert_eq!(id("mac and cheese").as_deref(), Some("mac_and_cheese"));
        let fuzzy = table()
            .lookup("chiken breast")
            .map(|found| found.score)
            .unwrap_or(0.0);
        assert!((MATCH_THRESHOLD..1.0).contains(&fuzzy));
    }

    #[test]
    fn unknown_names_are_not_guessed() {
        for name in [
            "unicorn steak tartare",
            "xyzzy",
            "",
            "🍕🍕",
            "qwertyuiop asdf",
        ] {
            assert!(
                table().lookup(name).is_none(),
                "{name} matched {:?}",
                table().lookup(name)
            );
        }
    }

    #[test]
    fn bad_rows_are_reported_with_their_line() {
        let error = FoodTable::from_tsv("# header\nbroken\trow");
        assert!(matches!(
            error,
            Err(FoodTableError::BadLine { line: 2, .. })
        ));
    }
}
