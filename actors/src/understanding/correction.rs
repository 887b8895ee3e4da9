//! Corrections of a saved meal: "the rice was 100 g", "it was 150 g of rice", "no rice" (pure
//! code, no I/O).
//!
//! [`parse_correction`] reads the sentence; [`find_item`] finds the item it names in an entry;
//! [`apply_correction`] returns the entry with that item's grams changed (its energy and macros
//! scaled at the item's own numbers per gram, which came from the food table, USDA or the photo
//! consensus: nothing new is estimated) or the item removed, and the totals recomputed. The
//! agents decide which entry (the person's most recent one that has the item) and save it.

use crate::domain::{FoodEntry, FoodItem, Nutrients};
use crate::nutrition::parser::{cardinal_word, parse_meal};
use crate::nutrition::table::FoodTable;
use crate::nutrition::text::{message_words, singular};
use crate::nutrition::units::Unit;

/// The heaviest single item a correction may set (grams).
pub const MAX_CORRECTED_GRAMS: f64 = 5_000.0;

/// What the person wants changed in a saved meal.
#[derive(Debug, Clone, PartialEq)]
pub enum Correction {
    /// The food was this many grams.
    Grams { food: String, grams: f64 },
    /// The food was this many pieces ("the eggs were 3", "it was 3 eggs, not 2").
    Count { food: String, count: f64 },
    /// The food was not there.
    Remove { food: String },
}

impl Correction {
    /// The food the correction is about, as the person named it.
    pub fn food(&self) -> &str {
        match self {
            Self::Grams { food, .. } | Self::Count { food, .. } | Self::Remove { food } => food,
        }
    }
}

/// Why a correction could not be applied to an entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CorrectionError {
    #[error("that was the only item of the entry")]
    OnlyItem,
    #[error("no such item in the entry")]
    NoSuchItem,
    #[error("{0} g is not an amount I can use")]
    BadAmount(f64),
    /// A count for an item not logged as a number of pieces ("the rice was 3" after
    /// "200 g rice", or after a photo's "rice").
    #[error("the item was not logged as a number of pieces")]
    NotCounted,
}

/// One changed item of an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub before: FoodItem,
    /// `None` when the item was removed.
    pub after: Option<FoodItem>,
}

/// Words that may open a correction and say nothing ("actually, the rice was 100 g").
const OPENERS: &[&str] = &[
    "actually",
    "sorry",
    "oops",
    "oh",
    "correction",
    "wait",
    "no",
    "nope",
    "and",
    "but",
    "ah",
    "hmm",
    "well",
];
/// Words between the verb and the amount ("was only 100 g").
const HEDGES: &[&str] = &[
    "actually",
    "only",
    "just",
    "about",
    "around",
    "roughly",
    "more",
    "like",
    "really",
    "closer",
    "to",
    "nearer",
    "approximately",
    "maybe",
    "probably",
    "exactly",
];
/// Verbs that link the food to its amount ("the rice was 100 g").
const LINKS: &[&[&str]] = &[
    &["should", "have", "been"],
    &["should", "be"],
    &["was"],
    &["were"],
    &["is"],
    &["are"],
    &["weighed"],
    &["weighs"],
];
/// Words that close a removal ("no rice in it").
const REMOVAL_TAILS: &[&[&str]] = &[
    &["from", "my", "last", "entry"],
    &["from", "the", "last", "entry"],
    &["from", "my", "last", "meal"],
    &["from", "the", "entry"],
    &["from", "the", "meal"],
    &["on", "the", "plate"],
    &["from", "it"],
    &["from", "that"],
    &["in", "it"],
    &["on", "it"],
    &["at", "all"],
    &["please"],
    &["actually"],
];

/// Reads a correction of a saved meal, or `None` when the text is not shaped like one. The food
/// is not checked here: the caller looks it up in the entry and treats the text as something
/// else when the entry has no such food ("no thanks" is not a correction).
pub fn parse_correction(text: &str) -> Option<Correction> {
    let mut words = message_words(text);
    if words.is_empty() || words.len() > 16 {
        return None;
    }
    let is_opener = |word: &str| OPENERS.contains(&word) && !["no", "nope"].contains(&word);
    while words.len() > 2 && is_opener(&words[0]) {
        words.remove(0);
    }
    let read = |words: &[String]| {
        grams_correction(words)
            .or_else(|| count_correction(words))
            .or_else(|| removal(words))
    };
    if let Some(found) = read(&words) {
        return Some(found);
    }
    // "no, the rice was 100 g": a "no" that is not "no rice".
    if words.len() > 2 && ["no", "nope"].contains(&words[0].as_str()) {
        words.remove(0);
        while words.len() > 2 && is_opener(&words[0]) {
            words.remove(0);
        }
        return read(&words);
    }
    None
}

/// A count written as digits or as a word ("3", "three").
fn count_at(words: &[String], at: usize) -> Option<f64> {
    let word = words.get(at)?;
    let count = cardinal_word(word).or_else(|| word.parse::<f64>().ok())?;
    (count.is_finite() && count > 0.0 && count <= 100.0).then_some(count)
}

/// The food of a count, without the pieces it is counted in: "slices of toast" -> "toast".
fn counted_food(words: &[String]) -> Option<String> {
    let name = food_name(words)?;
    let words: Vec<&str> = name.split(' ').collect();
    match words.as_slice() {
        [unit, "of", rest @ ..] if !rest.is_empty() && Unit::from_word(unit).is_some() => {
            Some(rest.join(" "))
        }
        _ => Some(name),
    }
}

/// "the eggs were 3", "it was (only) 3 eggs", "there were 3 eggs", "change the eggs to 3".
fn count_correction(words: &[String]) -> Option<Correction> {
    amount_correction(words, 1, count_at, counted_food)
        .map(|(food, count)| Correction::Count { food, count })
}

/// The shapes every amount correction takes, with an amount of `width` words that `amount`
/// reads at a position and a food that `food` reads from its words: "it was (only) AMOUNT
/// FOOD", "there were AMOUNT FOOD", "change FOOD to AMOUNT" and "FOOD was (only) AMOUNT"
/// (a "not ..." tail dropped).
fn amount_correction(
    words: &[String],
    width: usize,
    amount: impl Fn(&[String], usize) -> Option<f64>,
    food: impl Fn(&[String]) -> Option<String>,
) -> Option<(String, f64)> {
    let words = without_tail(words);
    let count = words.len();
    if count < 3 {
        return None;
    }
    let opening = match (words[0].as_str(), words[1].as_str()) {
        ("it" | "that" | "this", "was" | "is") | ("there", "was" | "were") => Some(2),
        ("its" | "thats", _) => Some(1),
        _ => None,
    };
    if let Some(at) = opening {
        let at = skip_hedges(words, at);
        if let Some(value) = amount(words, at) {
            return Some((food(words.get(at + width..)?)?, value));
        }
    }
    // In the other shapes the amount ends the sentence.
    let mut end = count.checked_sub(width)?;
    let value = amount(words, end)?;
    if ["change", "make", "set", "correct", "update"].contains(&words[0].as_str()) {
        if end > 1 && words[end - 1] == "to" {
            end -= 1;
        }
        return Some((food(words.get(1..end)?)?, value));
    }
    while end > 0 && HEDGES.contains(&words[end - 1].as_str()) {
        end -= 1;
    }
    let link = LINKS
        .iter()
        .find(|link| end > link.len() && words[end - link.len()..end].iter().eq(link.iter()))?;
    Some((food(&words[..end - link.len()])?, value))
}

/// The grams of "100 g", "0.2 kg", "5 oz" (two words) at `words[at..]`.
fn amount_at(words: &[String], at: usize) -> Option<f64> {
    let number: f64 = words.get(at)?.parse().ok()?;
    let unit = Unit::from_word(words.get(at + 1)?)?;
    let grams = number * unit.grams_per_unit()?;
    (grams.is_finite() && grams > 0.0).then_some(grams)
}

/// Drops "not 200 g", "not 200", "instead" from the end.
fn without_tail(words: &[String]) -> &[String] {
    let mut end = words.len();
    if end >= 1 && words[end - 1] == "instead" {
        end -= 1;
    }
    if let Some(not) = words[..end].iter().rposition(|word| word == "not") {
        let rest = &words[not + 1..end];
        let is_amount = match rest.len() {
            1 => rest[0].parse::<f64>().is_ok(),
            2 => amount_at(rest, 0).is_some(),
            _ => false,
        };
        if is_amount {
            end = not;
        }
    }
    &words[..end]
}

/// A food name as the person wrote it: no digits, a few words, articles dropped.
fn food_name(words: &[String]) -> Option<String> {
    let mut words = words;
    while let Some(first) = words.first() {
        if ["the", "my", "that", "this", "those", "these", "any", "of"].contains(&first.as_str()) {
            words = &words[1..];
        } else {
            break;
        }
    }
    let name = words.join(" ");
    // "no, the eggs were 2": the "no" answers, it is not part of the food.
    // "no, the toast was two" is no removal of a food called "toast was two".
    let acceptable = !words.is_empty()
        && !["no", "nope"].contains(&words[0].as_str())
        && !words
            .iter()
            .any(|word| ["was", "were", "is", "are"].contains(&word.as_str()))
        && words.len() <= 5
        && !name.chars().any(|c| c.is_ascii_digit())
        && ![
            "it", "that", "this", "i", "me", "you", "he", "she", "we", "they",
        ]
        .contains(&name.as_str());
    acceptable.then_some(name)
}

fn skip_hedges(words: &[String], mut at: usize) -> usize {
    while at < words.len() && HEDGES.contains(&words[at].as_str()) {
        at += 1;
    }
    at
}

/// "the rice was 100 g", "it was 150 g of rice", "change the rice to 100 g".
fn grams_correction(words: &[String]) -> Option<Correction> {
    amount_correction(words, 2, amount_at, food_name)
        .map(|(food, grams)| Correction::Grams { food, grams })
}

fn removal(words: &[String]) -> Option<Correction> {
    let mut words = words;
    // Trailing "in it", "from the entry", "please", ...
    loop {
        let before = words.len();
        for tail in REMOVAL_TAILS {
            if words.len() > tail.len() && words[words.len() - tail.len()..].iter().eq(tail.iter())
            {
                words = &words[..words.len() - tail.len()];
                break;
            }
        }
        if words.len() == before {
            break;
        }
    }
    let starts = |prefix: &[&str]| {
        words.len() > prefix.len() && words[..prefix.len()].iter().eq(prefix.iter())
    };
    let prefixes: &[&[&str]] = &[
        &["there", "was", "no"],
        &["there", "were", "no"],
        &["there", "wasnt", "any"],
        &["there", "werent", "any"],
        &["it", "had", "no"],
        &["it", "was", "without"],
        &["i", "didnt", "have"],
        &["i", "didnt", "eat"],
        &["i", "did", "not", "have"],
        &["i", "did", "not", "eat"],
        &["didnt", "have"],
        &["didnt", "eat"],
        &["take", "out"],
        &["take", "off"],
        &["without"],
        &["remove"],
        &["delete"],
        &["drop"],
        &["no"],
    ];
    let prefix = prefixes.iter().find(|prefix| starts(prefix))?;
    let food = food_name(&words[prefix.len()..])?;
    // "remove the last entry" is an undo, not an item.
    if [
        "last entry",
        "last meal",
        "entry",
        "meal",
        "last one",
        "everything",
    ]
    .contains(&food.as_str())
    {
        return None;
    }
    Some(Correction::Remove { food })
}

/// How many pieces an item was logged as: "2 eggs" 2, "a slice of toast" 1. `None` for an item
/// logged by weight or volume ("200 g rice", "a cup of rice"), or with no count at all (a photo's
/// "scrambled eggs"): a count cannot correct those without guessing how many there were.
fn pieces_logged(item: &FoodItem) -> Option<f64> {
    let parsed = parse_meal(&item.input, &|_| false);
    let first = parsed.first()?;
    let by_measure = first.unit.as_ref().is_some_and(|unit| {
        unit.grams_per_unit().is_some() || unit.millilitres_per_unit().is_some()
    });
    if by_measure {
        return None;
    }
    first.quantity.filter(|count| *count > 0.0)
}

/// The index of the item of `entry` that `food` names: the same food in the table, else every
/// word of `food` among the words of the item's name or of what the person wrote for it
/// ("rice" names "white rice, cooked"). The closest match wins.
pub fn find_item(entry: &FoodEntry, food: &str, table: &FoodTable) -> Option<usize> {
    let wanted = plain_words(food);
    if wanted.is_empty() {
        return None;
    }
    let wanted_food = table.lookup(food).filter(|found| found.score >= 0.9);
    let mut best: Option<(usize, usize)> = None;
    for (index, item) in entry.items.iter().enumerate() {
        let same_food = wanted_food.as_ref().is_some_and(|wanted| {
            [&item.name, &item.input].iter().any(|name| {
                table
                    .lookup(name)
                    .is_some_and(|found| found.food.id == wanted.food.id)
            })
        });
        let extra_words = [&item.name, &item.input]
            .iter()
            .filter_map(|name| {
                let words = plain_words(name);
                wanted
                    .iter()
                    .all(|word| words.contains(word))
                    .then(|| words.len().saturating_sub(wanted.len()))
            })
            .min();
        let score = match (same_food, extra_words) {
            (true, _) => Some(0),
            (false, Some(extra)) => Some(1 + extra),
            (false, None) => None,
        };
        if let Some(score) = score {
            if best.is_none_or(|(_, best_score)| score < best_score) {
                best = Some((index, score));
            }
        }
    }
    best.map(|(index, _)| index)
}

/// Lower-case singular words without articles ("Eggs, whole" -> ["egg", "whole"]).
fn plain_words(text: &str) -> Vec<String> {
    message_words(text)
        .into_iter()
        .filter(|word| !["the", "a", "an", "of", "my", "some"].contains(&word.as_str()))
        .map(|word| singular(&word))
        .collect()
}

/// The entry with the correction applied to its item `index`, and what changed.
pub fn apply_correction(
    entry: &FoodEntry,
    index: usize,
    correction: &Correction,
) -> Result<(FoodEntry, Change), CorrectionError> {
    let before = entry
        .items
        .get(index)
        .cloned()
        .ok_or(CorrectionError::NoSuchItem)?;
    let mut corrected = entry.clone();
    let target = match correction {
        Correction::Remove { .. } => None,
        Correction::Grams { grams, .. } => Some(*grams),
        // As many of the same pieces: the item's weight per piece stays.
        Correction::Count { count, .. } => {
            let logged = pieces_logged(&before).ok_or(CorrectionError::NotCounted)?;
            Some(before.grams * count / logged)
        }
    };
    let after = match target {
        None => {
            if entry.items.len() == 1 {
                return Err(CorrectionError::OnlyItem);
            }
            corrected.items.remove(index);
            None
        }
        Some(grams) => {
            if !(grams.is_finite() && grams > 0.0 && grams <= MAX_CORRECTED_GRAMS)
                || before.grams <= 0.0
            {
                return Err(CorrectionError::BadAmount(grams));
            }
            let item = &mut corrected.items[index];
            item.nutrients = before.nutrients.scaled(grams / before.grams);
            item.grams = grams;
            // The amount is now the person's; the numbers per gram are as before.
            item.confidence = item.confidence.max(0.9);
            Some(item.clone())
        }
    };
    corrected.total = Nutrients::sum(corrected.items.iter().map(|item| &item.nutrients));
    Ok((corrected, Change { before, after }))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{NutritionSource, UserId};

    fn grams(food: &str, grams: f64) -> Option<Correction> {
        Some(Correction::Grams {
            food: food.into(),
            grams,
        })
    }

    fn remove(food: &str) -> Option<Correction> {
        Some(Correction::Remove { food: food.into() })
    }

    #[test]
    fn the_usual_ways_of_saying_it_are_read() {
        assert_eq!(parse_correction("the rice was 100 g"), grams("rice", 100.0));
        assert_eq!(parse_correction("The rice was 100g."), grams("rice", 100.0));
        assert_eq!(
            parse_correction("actually, the rice was only 100 grams"),
            grams("rice", 100.0)
        );
        assert_eq!(
            parse_correction("it was 150 g of rice"),
            grams("rice", 150.0)
        );
        assert_eq!(
            parse_correction("No, it was actually 150g of white rice"),
            grams("white rice", 150.0)
        );
        assert_eq!(
            parse_correction("the chicken should have been 0,2 kg"),
            grams("chicken", 200.0)
        );
        assert_eq!(
            parse_correction("change the pasta to 80 g"),
            grams("pasta", 80.0)
        );
        assert_eq!(
            parse_correction("rice was 100 g, not 200 g"),
            grams("rice", 100.0)
        );
        assert_eq!(
            parse_correction("the steak was 8 oz").map(|c| match c {
                Correction::Grams { grams, .. } => (grams - 226.8).abs() < 0.1,
                Correction::Count { .. } | Correction::Remove { .. } => false,
            }),
            Some(true)
        );
        assert_eq!(parse_correction("no rice"), remove("rice"));
        assert_eq!(parse_correction("There was no rice."), remove("rice"));
        assert_eq!(parse_correction("remove the bread please"), remove("bread"));
        assert_eq!(parse_correction("I didn't have the fries"), remove("fries"));
        assert_eq!(parse_correction("oops, no cheese on it"), remove("cheese"));
    }

    #[test]
    fn other_sentences_are_not_corrections() {
        for text in [
            "2 eggs and a slice of toast",
            "150 g chicken breast with rice",
            "how much protein today?",
            "my goal is 1800 kcal",
            "I weigh 72.5 kg",
            "it was great",
            "the rice was tasty",
            "remove the last entry",
            "undo",
            "",
            "it was 3",
            "there were 3",
        ] {
            assert_eq!(parse_correction(text), None, "{text}");
        }
    }

    fn count(food: &str, count: f64) -> Option<Correction> {
        Some(Correction::Count {
            food: food.into(),
            count,
        })
    }

    #[test]
    fn counts_are_read_in_the_usual_ways() {
        assert_eq!(parse_correction("the eggs were 3"), count("eggs", 3.0));
        assert_eq!(parse_correction("It was 3 eggs, not 2"), count("eggs", 3.0));
        assert_eq!(
            parse_correction("there were three eggs"),
            count("eggs", 3.0)
        );
        assert_eq!(parse_correction("change the eggs to 3"), count("eggs", 3.0));
        assert_eq!(
            parse_correction("no, the slices of toast were only two"),
            count("toast", 2.0)
        );
        assert_eq!(
            parse_correction("there were 2 slices of toast"),
            count("toast", 2.0)
        );
        assert_eq!(
            parse_correction("no, the toast was two"),
            count("toast", 2.0)
        );
        // A bare number after a food logged by weight is read as a count; applying it then
        // says the item was weighed (see below), rather than guessing grams.
        assert_eq!(parse_correction("the rice was 100"), count("rice", 100.0));
        assert_eq!(parse_correction("the eggs were 0"), None);
    }

    #[test]
    fn a_count_keeps_the_weight_of_each_piece() {
        let breakfast = entry(&[
            ("2 eggs", "Egg, whole", 100.0, 143.0),
            ("a slice of toast", "Bread, toasted", 25.0, 72.0),
            ("200 g rice", "Rice, white, cooked", 200.0, 260.0),
            ("a cup of milk", "Milk, whole", 244.0, 149.0),
            (
                "scrambled eggs",
                "Egg, whole, cooked, scrambled",
                120.0,
                179.0,
            ),
        ]);
        let three_eggs = apply_correction(&breakfast, 0, &count("eggs", 3.0).unwrap()).unwrap();
        let eggs = three_eggs.1.after.unwrap();
        assert_eq!(eggs.grams, 150.0);
        assert!((eggs.nutrients.kcal - 214.5).abs() < 1e-9);
        let two_slices = apply_correction(&breakfast, 1, &count("toast", 2.0).unwrap()).unwrap();
        assert_eq!(two_slices.1.after.unwrap().grams, 50.0);
        // Weighed, measured, or never counted (from a photo): nothing to scale by.
        for uncounted in [2, 3, 4] {
            assert_eq!(
                apply_correction(&breakfast, uncounted, &count("x", 3.0).unwrap()),
                Err(CorrectionError::NotCounted)
            );
        }
    }

    fn entry(items: &[(&str, &str, f64, f64)]) -> FoodEntry {
        let now = Utc::now();
        let items: Vec<FoodItem> = items
            .iter()
            .map(|(input, name, grams, kcal)| FoodItem {
                input: (*input).into(),
                name: (*name).into(),
                grams: *grams,
                nutrients: Nutrients {
                    kcal: *kcal,
                    protein_g: kcal / 20.0,
                    carbs_g: kcal / 8.0,
                    fat_g: kcal / 40.0,
                    fiber_g: 0.0,
                },
                source: NutritionSource::BuiltIn,
                confidence: 0.7,
            })
            .collect();
        FoodEntry {
            id: Uuid::nil(),
            user_id: UserId(1),
            eaten_at: now,
            local_date: now.date_naive(),
            meal_type: None,
            description: "lunch".into(),
            total: Nutrients::sum(items.iter().map(|item| &item.nutrients)),
            items,
            photo_path: None,
            created_at: now,
        }
    }

    #[test]
    fn items_are_found_by_food_or_by_words() {
        let table = FoodTable::builtin();
        let lunch = entry(&[
            ("chicken breast", "Chicken, breast, roasted", 150.0, 248.0),
            ("rice", "Rice, white, cooked", 200.0, 260.0),
            ("courgette", "zucchini", 100.0, 17.0),
        ]);
        assert_eq!(find_item(&lunch, "rice", table), Some(1));
        assert_eq!(find_item(&lunch, "white rice", table), Some(1));
        assert_eq!(find_item(&lunch, "chicken", table), Some(0));
        assert_eq!(find_item(&lunch, "zucchini", table), Some(2));
        assert_eq!(find_item(&lunch, "Courgettes", table), Some(2));
        assert_eq!(find_item(&lunch, "bread", table), None);
        assert_eq!(find_item(&lunch, "thanks", table), None);
    }

    #[test]
    fn grams_are_rescaled_at_the_items_own_numbers_and_totals_follow() {
        let lunch = entry(&[
            ("chicken", "chicken breast", 150.0, 248.0),
            ("rice", "white rice", 200.0, 260.0),
        ]);
        let (corrected, change) = apply_correction(
            &lunch,
            1,
            &Correction::Grams {
                food: "rice".into(),
                grams: 100.0,
            },
        )
        .unwrap();
        let rice = change.after.unwrap();
        assert_eq!(rice.grams, 100.0);
        assert!((rice.nutrients.kcal - 130.0).abs() < 1e-9);
        assert!((rice.nutrients.carbs_g - 260.0 / 8.0 / 2.0).abs() < 1e-9);
        assert_eq!(change.before.grams, 200.0);
        assert!((corrected.total.kcal - (248.0 + 130.0)).abs() < 1e-9);
        assert_eq!(corrected.id, lunch.id);

        let (corrected, change) = apply_correction(
            &lunch,
            0,
            &Correction::Remove {
                food: "chicken".into(),
            },
        )
        .unwrap();
        assert!(change.after.is_none());
        assert_eq!(corrected.items.len(), 1);
        assert!((corrected.total.kcal - 260.0).abs() < 1e-9);

        let single = entry(&[("rice", "white rice", 200.0, 260.0)]);
        assert_eq!(
            apply_correction(
                &single,
                0,
                &Correction::Remove {
                    food: "rice".into()
                }
            ),
            Err(CorrectionError::OnlyItem)
        );
        assert_eq!(
            apply_correction(
                &single,
                0,
                &Correction::Grams {
                    food: "rice".into(),
                    grams: 1e9
                }
            ),
            Err(CorrectionError::BadAmount(1e9))
        );
    }
}
