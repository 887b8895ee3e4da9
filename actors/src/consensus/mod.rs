//! Merging several vision models' estimates of one meal into one answer (pure code, no I/O).
//!
//! Why: single frontier models miss photographed meals by about 36 % on average and disagree
//! with each other, sometimes wildly. Asking several and combining their answers robustly does
//! better than any one of them, provided one wild answer cannot drag the result. This module is
//! the math the `ConsensusActor` runs; it knows nothing of actors or models, so it is tested
//! in-module and measured by `benches/consensus.rs`.
//!
//! How [`merge`] works:
//! 1. Each agent's items are cleaned (non-finite or impossible numbers are ignored) and an
//!    agent that reported nothing usable is dropped with a reason.
//! 2. Agents whose *total* is an outlier (more than 2× from the weighted median total *and*
//!    beyond 3 scaled MADs of it, in log space; see `RobustFilter::outlier_reason` for why
//!    both) are dropped with a reason. This needs at least
//!    three agents: with two there is no majority to say which one is wrong.
//! 3. Items are aligned across the surviving agents by name: names the food table knows align
//!    on the table's food (so "courgette" meets "zucchini", "Eggs" meets "egg"); other names on
//!    a normalised form (case, punctuation, plurals, word order) with a small edit distance.
//! 4. Per item, a weighted median of grams and, separately, of kcal per gram (weight = the
//!    item's stated confidence × the agent's track-record weight), after the same outlier
//!    rule. The density is checked against the reference: a density outside
//!    [`PLAUSIBLE_DENSITY_FACTOR`] of the food table's value is pulled to the edge of that band,
//!    and a known food's macros come from the table (scaled to the kept energy).
//! 5. Items seen by no majority of the surviving agents are kept but flagged `minority`.
//! 6. The interval comes from the surviving agents' totals; the agreement score from their
//!    dispersion; the [`Confidence`] label from agreement and agent count only, never from
//!    what the models say about themselves.
//!
//! One agent gives its own estimate (still checked against the table), labelled
//! [`Confidence::SingleSource`]; no agent, or nothing usable, gives a [`Consensus`] with no
//! items, from which the caller saves nothing.

pub mod calibration;

use serde::{Deserialize, Serialize};

pub use calibration::{AgentCalibration, Calibration};

use crate::domain::Nutrients;
use crate::nutrition::text::{levenshtein_within, singular};
use crate::nutrition::FoodTable;

/// A vote further than this factor from the median (either way) is an outlier.
pub const OUTLIER_RATIO: f64 = 2.0;

/// A vote beyond this many scaled MADs from the median (in log space) is an outlier.
pub const OUTLIER_SCALED_MADS: f64 = 3.0;

/// The scaled MAD never counts as smaller than this (log space, ≈ ±15 %): when the other votes
/// agree almost exactly, a model that is 20 % off is ordinary disagreement, not an outlier.
const MIN_SCALED_MAD: f64 = 0.14;

/// The consistency constant that makes a MAD estimate a normal standard deviation.
const MAD_SCALE: f64 = 1.4826;

/// Foods that share a name in USDA rarely differ in energy density by more than about this
/// factor (cuts of meat, rice varieties); a model's density outside the band around the
/// reference is implausible and is pulled to the band's edge.
pub const PLAUSIBLE_DENSITY_FACTOR: f64 = 1.3;

/// Nothing eaten has more energy than pure fat (9 kcal/g); a density above this is an error.
const MAX_KCAL_PER_GRAM: f64 = 9.5;

/// A single item heavier than this (grams) is not a plausible reading of a photo.
const MAX_ITEM_GRAMS: f64 = 5_000.0;

/// Offsets that let densities and totals of zero (water, black coffee) live in log space.
const DENSITY_OFFSET: f64 = 0.1;
const TOTAL_OFFSET: f64 = 10.0;

/// The interval is never narrower than ± this share of the total: agents agreeing is not proof
/// (they share biases, e.g. all under-estimate large portions).
const MIN_INTERVAL_HALF_WIDTH: f64 = 0.10;

/// The interval of a single-source estimate: published single-model error is about 36 %.
const SINGLE_SOURCE_HALF_WIDTH: f64 = 0.35;

/// Agreement and agent count behind each label.
const HIGH_AGREEMENT: f64 = 0.75;
const MEDIUM_AGREEMENT: f64 = 0.5;
const HIGH_MIN_AGENTS: usize = 3;

/// Names are cut to this many characters before they are compared, so odd input stays cheap.
const MAX_NAME_CHARS: usize = 120;

/// One food item as one model reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstimatedItem {
    pub name: String,
    pub grams: f64,
    pub kcal: f64,
    pub protein_g: f64,
    pub carbs_g: f64,
    pub fat_g: f64,
    /// The model's own confidence, 0..=1. Used only to weight its votes, never for the label.
    pub confidence: f64,
}

/// One model's answer for one photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentEstimate {
    /// `provider:model`, e.g. "openai:gpt-4o".
    pub agent: String,
    pub items: Vec<EstimatedItem>,
    /// The provider's track record for this person (learned from corrections); 1.0 by default.
    pub weight: f64,
}

impl AgentEstimate {
    /// The sum of the reported energy of the items with usable numbers.
    pub fn total_kcal(&self) -> f64 {
        self.items
            .iter()
            .filter_map(CleanItem::from_item)
            .map(|item| item.kcal)
            .sum()
    }
}

/// What the food database says about a name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// The key items align on: two names with the same canonical name are the same food
    /// (for the built-in table, the food's id such as "white_rice").
    pub canonical_name: String,
    pub per_100g: Nutrients,
}

/// A reference lookup backed by a [`FoodTable`] (its normalisation, synonyms and fuzzy
/// matching); the application passes `table_reference(FoodTable::builtin())` to [`merge`].
pub fn table_reference(table: &FoodTable) -> impl Fn(&str) -> Option<Reference> + '_ {
    move |name| {
        table.lookup(name).map(|found| Reference {
            canonical_name: found.food.id.clone(),
            per_100g: found.food.per_100g,
        })
    }
}

/// How much to trust a consensus, from agreement and agent count only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    High,
    Medium,
    Low,
    /// Only one agent contributed: nothing corroborates it.
    SingleSource,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
            Self::SingleSource => "single_source",
        }
    }
}

/// One merged item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsensusItem {
    /// The name most of its agents used.
    pub name: String,
    pub grams: f64,
    pub nutrients: Nutrients,
    /// How many surviving agents listed it.
    pub seen_by: usize,
    /// Listed by no majority of the surviving agents: kept, but worth asking about.
    pub minority: bool,
    /// The food database knew the food: its density was checked and its macros used.
    pub reference_used: bool,
}

/// The merged estimate of one photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consensus {
    pub items: Vec<ConsensusItem>,
    pub total: Nutrients,
    /// A likely range of the total kcal, from the surviving agents' spread.
    pub interval_kcal: (f64, f64),
    /// 0..=1, from the dispersion of the surviving agents' totals (0 with a single source).
    pub agreement: f64,
    pub confidence: Confidence,
    /// Agents left out, with why.
    pub dropped: Vec<(String, String)>,
}

impl Consensus {
    /// True when there is nothing to save.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn empty(dropped: Vec<(String, String)>) -> Self {
        Consensus {
            items: Vec::new(),
            total: Nutrients::default(),
            interval_kcal: (0.0, 0.0),
            agreement: 0.0,
            confidence: Confidence::Low,
            dropped,
        }
    }
}

/// An item with numbers that can be used.
#[derive(Debug, Clone)]
struct CleanItem {
    grams: f64,
    kcal: f64,
    protein_g: f64,
    carbs_g: f64,
    fat_g: f64,
    confidence: f64,
}

impl CleanItem {
    fn from_item(item: &EstimatedItem) -> Option<CleanItem> {
        if !(item.grams.is_finite() && item.grams > 0.0 && item.grams <= MAX_ITEM_GRAMS) {
            return None;
        }
        let non_negative = |value: f64| {
            if value.is_finite() {
                value.max(0.0)
            } else {
                0.0
            }
        };
        let kcal = if item.kcal.is_finite()
            && item.kcal >= 0.0
            && item.kcal <= MAX_ITEM_GRAMS * MAX_KCAL_PER_GRAM
        {
            item.kcal
        } else {
            return None;
        };
        let confidence = if item.confidence.is_finite() {
            item.confidence.clamp(0.05, 1.0)
        } else {
            0.5
        };
        Some(CleanItem {
            grams: item.grams,
            kcal,
            protein_g: non_negative(item.protein_g),
            carbs_g: non_negative(item.carbs_g),
            fat_g: non_negative(item.fat_g),
            confidence,
        })
    }

    fn kcal_per_gram(&self) -> f64 {
        self.kcal / self.grams
    }
}

/// A surviving agent's cleaned answer.
struct Answer<'input> {
    agent: &'input str,
    weight: f64,
    items: Vec<(&'input str, CleanItem)>,
    total_kcal: f64,
}

/// One item of one agent, placed in a group.
struct Vote {
    answer: usize,
    name: String,
    item: CleanItem,
    weight: f64,
}

/// The items of all agents that name the same food.
struct Group {
    key: Key,
    reference: Option<Reference>,
    votes: Vec<Vote>,
}

#[derive(Debug, Clone, PartialEq)]
enum Key {
    /// The food database's canonical name.
    Known(String),
    /// A normalised name the database does not know.
    Unknown(String),
}

/// Merges the agents' estimates of one photo. `reference` finds a food by name (see
/// [`table_reference`]). Never panics, whatever the names and numbers.
pub fn merge<F>(estimates: &[AgentEstimate], reference: F) -> Consensus
where
    F: Fn(&str) -> Option<Reference>,
{
    let mut dropped = Vec::new();
    let mut answers: Vec<Answer<'_>> = Vec::with_capacity(estimates.len());
    for estimate in estimates {
        let items: Vec<(&str, CleanItem)> = estimate
            .items
            .iter()
            .filter_map(|item| CleanItem::from_item(item).map(|clean| (item.name.as_str(), clean)))
            .collect();
        if items.is_empty() {
            let reason = if estimate.items.is_empty() {
                "no items"
            } else {
                "no item with usable numbers"
            };
            dropped.push((estimate.agent.clone(), reason.to_owned()));
            continue;
        }
        let weight = if estimate.weight.is_finite() && estimate.weight > 0.0 {
            estimate.weight
        } else if estimate.weight.is_finite() {
            0.0
        } else {
            1.0
        };
        let total_kcal = items.iter().map(|(_, item)| item.kcal).sum();
        answers.push(Answer {
            agent: &estimate.agent,
            weight,
            items,
            total_kcal,
        });
    }
    if answers.is_empty() {
        return Consensus::empty(dropped);
    }
    // Weights of zero everywhere mean "no information", not "ignore everyone".
    if answers.iter().all(|answer| answer.weight <= 0.0) {
        for answer in &mut answers {
            answer.weight = 1.0;
        }
    }
    let answered = answers.len();

    // Agents whose total is an outlier.
    if answers.len() >= 3 {
        let totals: Vec<(f64, f64)> = answers
            .iter()
            .map(|answer| {
                (
                    log_with_offset(answer.total_kcal, TOTAL_OFFSET),
                    answer.weight,
                )
            })
            .collect();
        if let Some(filter) = RobustFilter::new(&totals) {
            let mut kept = Vec::with_capacity(answers.len());
            for (answer, (log_total, _)) in answers.into_iter().zip(&totals) {
                match filter.outlier_reason(*log_total) {
                    Some(reason) => dropped.push((
                        answer.agent.to_owned(),
                        format!(
                            "total {:.0} kcal is {reason} the others' median of {:.0} kcal",
                            answer.total_kcal,
                            (filter.median.exp() - TOTAL_OFFSET).max(0.0)
                        ),
                    )),
                    None => kept.push(answer),
                }
            }
            answers = kept;
        }
    }

    let groups = align(&answers, &reference);
    let surviving = answers.len();
    let mut items = Vec::with_capacity(groups.len());
    for group in &groups {
        if let Some(item) = merge_group(group, surviving) {
            items.push(item);
        }
    }
    let total = Nutrients::sum(items.iter().map(|item| &item.nutrients));

    let (interval_kcal, agreement, confidence) = if surviving == 1 {
        (
            (
                total.kcal * (1.0 - SINGLE_SOURCE_HALF_WIDTH),
                total.kcal * (1.0 + SINGLE_SOURCE_HALF_WIDTH),
            ),
            0.0,
            Confidence::SingleSource,
        )
    } else {
        let mut low = total.kcal * (1.0 - MIN_INTERVAL_HALF_WIDTH);
        let mut high = total.kcal * (1.0 + MIN_INTERVAL_HALF_WIDTH);
        for answer in &answers {
            low = low.min(answer.total_kcal);
            high = high.max(answer.total_kcal);
        }
        let log_total = log_with_offset(total.kcal, TOTAL_OFFSET);
        let deviations: Vec<(f64, f64)> = answers
            .iter()
            .map(|answer| {
                let deviation =
                    (log_with_offset(answer.total_kcal, TOTAL_OFFSET) - log_total).abs();
                (deviation, answer.weight.max(1e-9))
            })
            .collect();
        let dispersion = weighted_median(&deviations).unwrap_or(0.0);
        let survived_share = surviving as f64 / answered as f64;
        let agreement = ((1.0 - dispersion / OUTLIER_RATIO.ln()).clamp(0.0, 1.0) * survived_share)
            .clamp(0.0, 1.0);
        let confidence = if agreement >= HIGH_AGREEMENT && surviving >= HIGH_MIN_AGENTS {
            Confidence::High
        } else if agreement >= MEDIUM_AGREEMENT {
            Confidence::Medium
        } else {
            Confidence::Low
        };
        ((low.max(0.0), high), agreement, confidence)
    };

    if items.is_empty() {
        return Consensus::empty(dropped);
    }
    Consensus {
        items,
        total,
        interval_kcal,
        agreement,
        confidence,
        dropped,
    }
}

/// What one agent said about each item of a merged estimate: `(index in consensus.items, grams,
/// kcal)`, its own numbers (duplicates added up), for the items it listed. Its items that match
/// no merged item are left out. Works for dropped agents too (their items are matched by name
/// like any other), so an outlier's estimates are on record for its calibration.
pub fn attribute<F>(
    items: &[EstimatedItem],
    consensus: &Consensus,
    reference: F,
) -> Vec<(usize, f64, f64)>
where
    F: Fn(&str) -> Option<Reference>,
{
    let key_of = |name: &str| match reference(name) {
        Some(found) => Key::Known(found.canonical_name),
        None => Key::Unknown(normalised_name(name)),
    };
    let merged: Vec<Key> = consensus
        .items
        .iter()
        .map(|item| key_of(&item.name))
        .collect();
    let mut found: Vec<(usize, f64, f64)> = Vec::new();
    for item in items {
        let Some(clean) = CleanItem::from_item(item) else {
            continue;
        };
        let key = key_of(&item.name);
        let position = merged
            .iter()
            .position(|other| *other == key)
            .or_else(|| match &key {
                Key::Unknown(text) => merged.iter().position(|other| match other {
                    Key::Unknown(other) => similar_names(text, other),
                    Key::Known(_) => false,
                }),
                Key::Known(_) => None,
            });
        let Some(position) = position else {
            continue;
        };
        match found.iter_mut().find(|(index, _, _)| *index == position) {
            Some(existing) => {
                existing.1 += clean.grams;
                existing.2 += clean.kcal;
            }
            None => found.push((position, clean.grams, clean.kcal)),
        }
    }
    found
}

/// Groups the surviving agents' items by food.
fn align<F>(answers: &[Answer<'_>], reference: &F) -> Vec<Group>
where
    F: Fn(&str) -> Option<Reference>,
{
    // Agents mostly use the same names: look each distinct name up once.
    let mut looked_up: Vec<(&str, Option<Reference>)> = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    for (answer_index, answer) in answers.iter().enumerate() {
        for (name, item) in &answer.items {
            let found = match looked_up.iter().find(|(seen, _)| seen == name) {
                Some((_, found)) => found.clone(),
                None => {
                    let found = reference(name);
                    looked_up.push((*name, found.clone()));
                    found
                }
            };
            let key = match &found {
                Some(found) => Key::Known(found.canonical_name.clone()),
                None => Key::Unknown(normalised_name(name)),
            };
            let weight = item.confidence * answer.weight;
            let position =
                groups
                    .iter()
                    .position(|group| group.key == key)
                    .or_else(|| match &key {
                        Key::Unknown(text) => groups.iter().position(|group| match &group.key {
                            Key::Unknown(other) => similar_names(text, other),
                            Key::Known(_) => false,
                        }),
                        Key::Known(_) => None,
                    });
            let display = display_name(name);
            match position {
                Some(position) => {
                    let group = &mut groups[position];
                    // The same food listed twice by one agent is one portion of it.
                    if let Some(vote) = group
                        .votes
                        .iter_mut()
                        .find(|vote| vote.answer == answer_index)
                    {
                        vote.item.grams += item.grams;
                        vote.item.kcal += item.kcal;
                        vote.item.protein_g += item.protein_g;
                        vote.item.carbs_g += item.carbs_g;
                        vote.item.fat_g += item.fat_g;
                        vote.item.confidence = vote.item.confidence.max(item.confidence);
                        vote.weight = vote.weight.max(weight);
                    } else {
                        group.votes.push(Vote {
                            answer: answer_index,
                            name: display,
                            item: item.clone(),
                            weight,
                        });
                    }
                }
                None => groups.push(Group {
                    key,
                    reference: found,
                    votes: vec![Vote {
                        answer: answer_index,
                        name: display,
                        item: item.clone(),
                        weight,
                    }],
                }),
            }
        }
    }
    groups
}

/// Merges one food's votes.
fn merge_group(group: &Group, surviving_agents: usize) -> Option<ConsensusItem> {
    let seen_by = group.votes.len();
    let weight_of = |vote: &Vote| vote.weight.max(1e-9);

    let grams_votes: Vec<(f64, f64)> = group
        .votes
        .iter()
        .map(|vote| (vote.item.grams.ln(), weight_of(vote)))
        .collect();
    let grams = robust_center(&grams_votes)?.exp();

    let density_votes: Vec<(f64, f64)> = group
        .votes
        .iter()
        .filter(|vote| vote.item.kcal_per_gram() <= MAX_KCAL_PER_GRAM)
        .map(|vote| {
            (
                log_with_offset(vote.item.kcal_per_gram(), DENSITY_OFFSET),
                weight_of(vote),
            )
        })
        .collect();
    let agents_density = robust_center(&density_votes)
        .map(|log_density| (log_density.exp() - DENSITY_OFFSET).max(0.0));

    let (nutrients, reference_used) = match &group.reference {
        Some(reference)
            if reference.per_100g.kcal.is_finite() && reference.per_100g.kcal >= 0.0 =>
        {
            let reference_density = reference.per_100g.kcal / 100.0;
            let density = match agents_density {
                Some(density) => pull_toward(density, reference_density),
                None => reference_density,
            };
            let factor = if reference_density > 0.0 {
                density / reference_density
            } else {
                1.0
            };
            let mut nutrients = reference.per_100g.scaled(grams / 100.0 * factor);
            nutrients.kcal = density * grams;
            (nutrients, true)
        }
        _ => {
            let density = agents_density.unwrap_or(0.0);
            let per_gram = |value: fn(&CleanItem) -> f64| {
                let votes: Vec<(f64, f64)> = group
                    .votes
                    .iter()
                    .map(|vote| (value(&vote.item) / vote.item.grams, weight_of(vote)))
                    .collect();
                weighted_median(&votes).unwrap_or(0.0)
            };
            let nutrients = Nutrients {
                kcal: density * grams,
                protein_g: per_gram(|item| item.protein_g) * grams,
                carbs_g: per_gram(|item| item.carbs_g) * grams,
                fat_g: per_gram(|item| item.fat_g) * grams,
                fiber_g: 0.0,
            };
            (nutrients, false)
        }
    };

    Some(ConsensusItem {
        name: most_used_name(&group.votes),
        grams,
        nutrients,
        seen_by,
        minority: seen_by * 2 <= surviving_agents && surviving_agents > 1,
        reference_used,
    })
}

/// A density outside the plausible band around the reference is moved to the band's edge.
fn pull_toward(density: f64, reference_density: f64) -> f64 {
    let low = (reference_density + DENSITY_OFFSET) / PLAUSIBLE_DENSITY_FACTOR - DENSITY_OFFSET;
    let high = (reference_density + DENSITY_OFFSET) * PLAUSIBLE_DENSITY_FACTOR - DENSITY_OFFSET;
    density.clamp(low.max(0.0), high)
}

/// The name most votes used (the first of equals).
fn most_used_name(votes: &[Vote]) -> String {
    let mut best: Option<(&str, usize)> = None;
    for vote in votes {
        let count = votes.iter().filter(|other| other.name == vote.name).count();
        if best.is_none_or(|(_, best_count)| count > best_count) {
            best = Some((&vote.name, count));
        }
    }
    best.map(|(name, _)| name.to_owned()).unwrap_or_default()
}

fn display_name(name: &str) -> String {
    let trimmed: String = name.trim().chars().take(MAX_NAME_CHARS).collect();
    if trimmed.is_empty() {
        "unnamed item".to_owned()
    } else {
        trimmed
    }
}

fn log_with_offset(value: f64, offset: f64) -> f64 {
    (value.max(0.0) + offset).ln()
}

/// The weighted median of `(value, weight)` pairs, interpolated: each sorted value sits at the
/// middle of its share of the total weight, and the median is read off between the two values
/// around one half. Equal weights give the ordinary median (the mean of the middle two for an
/// even count); unlike the plain weighted median it moves smoothly with the weights, so
/// slightly different self-reported confidences do not make it jump from one vote to another.
/// Non-finite values and non-positive weights are ignored.
fn weighted_median(votes: &[(f64, f64)]) -> Option<f64> {
    let mut sorted: Vec<(f64, f64)> = votes
        .iter()
        .copied()
        .filter(|(value, weight)| value.is_finite() && weight.is_finite() && *weight > 0.0)
        .collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(|left, right| left.0.total_cmp(&right.0));
    let total: f64 = sorted.iter().map(|(_, weight)| weight).sum();
    if !total.is_finite() {
        return Some(sorted[sorted.len() / 2].0);
    }
    let mut cumulative = 0.0;
    let mut previous: Option<(f64, f64)> = None;
    for (value, weight) in &sorted {
        let position = (cumulative + weight / 2.0) / total;
        cumulative += weight;
        if position >= 0.5 {
            return Some(match previous {
                Some((previous_value, previous_position)) if position > previous_position => {
                    let share = (0.5 - previous_position) / (position - previous_position);
                    previous_value + share * (value - previous_value)
                }
                _ => *value,
            });
        }
        previous = Some((*value, position));
    }
    sorted.last().map(|(value, _)| *value)
}

/// The median and scaled MAD of votes in log space, and the outlier rule.
struct RobustFilter {
    median: f64,
    scaled_mad: f64,
}

impl RobustFilter {
    fn new(votes: &[(f64, f64)]) -> Option<RobustFilter> {
        let median = weighted_median(votes)?;
        let deviations: Vec<(f64, f64)> = votes
            .iter()
            .map(|(value, weight)| ((value - median).abs(), *weight))
            .collect();
        let mad = weighted_median(&deviations).unwrap_or(0.0);
        Some(RobustFilter {
            median,
            scaled_mad: (MAD_SCALE * mad).max(MIN_SCALED_MAD),
        })
    }

    /// A vote is an outlier when it is both more than 2× from the median and beyond 3 scaled
    /// MADs: the ratio alone would trim models that are merely as far apart as good models
    /// usually are (about 36 % error each), and trimming one side of a wide spread shifts the
    /// median; the MADs alone would call a 10 % difference an outlier when the others agree
    /// exactly.
    fn outlier_reason(&self, value: f64) -> Option<&'static str> {
        let distance = value - self.median;
        if !distance.is_finite() {
            return Some("not comparable with");
        }
        let far = distance.abs() > OUTLIER_RATIO.ln();
        let beyond_spread = distance.abs() > OUTLIER_SCALED_MADS * self.scaled_mad;
        match (far && beyond_spread, distance > 0.0) {
            (false, _) => None,
            (true, true) => Some("more than twice, and far outside the spread of,"),
            (true, false) => Some("less than half, and far outside the spread of,"),
        }
    }
}

/// The weighted median of the votes that are not outliers (all votes when fewer than three:
/// two disagreeing votes give no majority to side with).
fn robust_center(votes: &[(f64, f64)]) -> Option<f64> {
    if votes.len() < 3 {
        return weighted_median(votes);
    }
    let filter = RobustFilter::new(votes)?;
    let kept: Vec<(f64, f64)> = votes
        .iter()
        .copied()
        .filter(|(value, _)| filter.outlier_reason(*value).is_none())
        .collect();
    if kept.is_empty() {
        Some(filter.median)
    } else {
        weighted_median(&kept)
    }
}

/// Words that say nothing about which food it is.
const FILLER_WORDS: &[&str] = &[
    "a", "an", "the", "of", "some", "with", "piece", "portion", "serving",
];

/// Lowercase, letters and digits only, singulars, sorted words: "Grilled Tomatoes" and
/// "tomato, grilled" meet. Only for names the food table does not know.
fn normalised_name(name: &str) -> String {
    let mut cleaned = String::with_capacity(name.len().min(MAX_NAME_CHARS * 4));
    for character in name.chars().take(MAX_NAME_CHARS) {
        if character.is_alphanumeric() {
            cleaned.extend(character.to_lowercase());
        } else if character != '\'' && character != '’' {
            cleaned.push(' ');
        }
    }
    let mut words: Vec<String> = cleaned
        .split_whitespace()
        .filter(|word| !FILLER_WORDS.contains(word))
        .map(singular)
        .collect();
    words.sort();
    words.dedup();
    words.join(" ")
}

/// Two normalised names are the same food when they differ by a typo or two.
fn similar_names(left: &str, right: &str) -> bool {
    let shorter = left.chars().count().min(right.chars().count());
    let limit = match shorter {
        0..=3 => 0,
        4..=9 => 1,
        _ => 2,
    };
    limit > 0 && levenshtein_within(left, right, limit).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, grams: f64, kcal: f64) -> EstimatedItem {
        EstimatedItem {
            name: name.to_owned(),
            grams,
            kcal,
            protein_g: kcal * 0.05,
            carbs_g: kcal * 0.1,
            fat_g: kcal * 0.03,
            confidence: 0.8,
        }
    }

    fn agent(name: &str, items: Vec<EstimatedItem>) -> AgentEstimate {
        AgentEstimate {
            agent: name.to_owned(),
            items,
            weight: 1.0,
        }
    }

    fn no_reference(_: &str) -> Option<Reference> {
        None
    }

    fn builtin(name: &str) -> Option<Reference> {
        table_reference(FoodTable::builtin())(name)
    }

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance * expected.abs().max(1.0)
    }

    #[test]
    fn weighted_median_handles_odd_even_and_weights() {
        assert_eq!(weighted_median(&[]), None);
        assert_eq!(
            weighted_median(&[(3.0, 1.0), (1.0, 1.0), (2.0, 1.0)]),
            Some(2.0)
        );
        assert_eq!(weighted_median(&[(1.0, 1.0), (3.0, 1.0)]), Some(2.0));
        assert_eq!(weighted_median(&[(1.0, 3.0), (3.0, 1.0)]), Some(1.5));
        assert_eq!(
            weighted_median(&[(1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (10.0, 1.0)]),
            Some(2.5)
        );
        assert_eq!(
            weighted_median(&[(1.0, 1.0), (2.0, 100.0), (3.0, 1.0)]),
            Some(2.0)
        );
        assert_eq!(
            weighted_median(&[(f64::NAN, 1.0), (5.0, 1.0), (7.0, 0.0)]),
            Some(5.0)
        );
    }

    #[test]
    fn empty_input_gives_nothing_to_save() {
        let consensus = merge(&[], no_reference);
        assert!(consensus.is_empty());
        assert_eq!(consensus.total, Nutrients::default());
        assert!(consensus.dropped.is_empty());

        let consensus = merge(
            &[
                agent("a:x", vec![]),
                agent("b:y", vec![item("rice", -5.0, 100.0)]),
            ],
            no_reference,
        );
        assert!(consensus.is_empty());
        assert_eq!(consensus.dropped.len(), 2);
        assert_eq!(consensus.dropped[0].0, "a:x");
    }

    #[test]
    fn a_single_agent_gives_its_own_estimate_as_single_source() {
        let consensus = merge(
            &[agent(
                "openai:gpt-4o",
                vec![item("mystery stew", 300.0, 450.0)],
            )],
            no_reference,
        );
        assert_eq!(consensus.confidence, Confidence::SingleSource);
        assert_eq!(consensus.items.len(), 1);
        assert!(close(consensus.total.kcal, 450.0, 1e-9));
        assert!(close(consensus.items[0].grams, 300.0, 1e-9));
        assert!(!consensus.items[0].minority);
        assert!(consensus.interval_kcal.0 < 450.0 && consensus.interval_kcal.1 > 450.0);
        assert_eq!(consensus.agreement, 0.0);
    }

    #[test]
    fn an_outlier_agent_is_dropped_and_ignored() {
        let estimates = [
            agent(
                "a:1",
                vec![item("stew", 300.0, 450.0), item("bread", 50.0, 130.0)],
            ),
            agent(
                "b:2",
                vec![item("stew", 320.0, 470.0), item("bread", 55.0, 140.0)],
            ),
            agent(
                "c:3",
                vec![item("stew", 280.0, 430.0), item("bread", 45.0, 120.0)],
            ),
            agent(
                "d:wild",
                vec![item("stew", 900.0, 1400.0), item("bread", 150.0, 400.0)],
            ),
        ];
        let with_wild = merge(&estimates, no_reference);
        let without_wild = merge(&estimates[..3], no_reference);
        assert_eq!(with_wild.dropped.len(), 1, "{:?}", with_wild.dropped);
        assert_eq!(with_wild.dropped[0].0, "d:wild");
        assert!(with_wild.dropped[0].1.contains("more than twice"));
        assert!(close(with_wild.total.kcal, without_wild.total.kcal, 1e-9));
        assert!(
            close(with_wild.total.kcal, 580.0, 0.05),
            "{}",
            with_wild.total.kcal
        );
        // Three close agents are high confidence; one of four being wild lowers it.
        assert_eq!(without_wild.confidence, Confidence::High);
        assert_eq!(with_wild.confidence, Confidence::Medium);
        assert!(with_wild.agreement < without_wild.agreement);
    }

    #[test]
    fn a_wild_times_three_agent_cannot_move_the_result_much() {
        // Three agents in the same ballpark, one three times over on every item.
        let base = [
            ("chicken breast", 150.0),
            ("white rice", 200.0),
            ("broccoli", 80.0),
        ];
        let make = |label: &str, scale: f64, density_noise: f64| {
            agent(
                label,
                base.iter()
                    .map(|(name, grams)| {
                        let reference =
                            builtin(name).map_or(1.0, |found| found.per_100g.kcal / 100.0);
                        item(
                            name,
                            grams * scale,
                            grams * scale * reference * density_noise,
                        )
                    })
                    .collect(),
            )
        };
        let honest = [
            make("a", 1.0, 1.0),
            make("b", 0.9, 1.1),
            make("c", 1.15, 0.95),
        ];
        let mut with_wild = honest.to_vec();
        with_wild.push(make("wild", 3.0, 1.0));
        let clean = merge(&honest, builtin);
        let dirty = merge(&with_wild, builtin);
        let moved = (dirty.total.kcal - clean.total.kcal).abs() / clean.total.kcal;
        assert!(moved < 0.05, "moved by {moved}");
        assert_eq!(dirty.dropped.len(), 1);
        assert!(dirty.items.iter().all(|item| item.reference_used));
    }

    #[test]
    fn a_wild_item_inside_a_normal_total_is_rejected_per_item() {
        let estimates = [
            agent(
                "a",
                vec![item("cake", 100.0, 350.0), item("tea", 250.0, 2.0)],
            ),
            agent(
                "b",
                vec![item("cake", 110.0, 380.0), item("tea", 250.0, 2.0)],
            ),
            agent(
                "c",
                vec![item("cake", 95.0, 340.0), item("tea", 2500.0, 20.0)],
            ),
        ];
        let consensus = merge(&estimates, no_reference);
        let tea = consensus.items.iter().find(|item| item.name == "tea");
        assert!(
            tea.is_some_and(|tea| close(tea.grams, 250.0, 1e-6)),
            "{tea:?}"
        );
    }

    #[test]
    fn items_seen_by_a_minority_are_kept_and_flagged() {
        let estimates = [
            agent(
                "a",
                vec![item("soup", 300.0, 200.0), item("crackers", 20.0, 90.0)],
            ),
            agent("b", vec![item("soup", 310.0, 210.0)]),
            agent("c", vec![item("soup", 290.0, 190.0)]),
        ];
        let consensus = merge(&estimates, no_reference);
        assert_eq!(consensus.items.len(), 2);
        let crackers = &consensus.items[1];
        assert_eq!(crackers.name, "crackers");
        assert_eq!(crackers.seen_by, 1);
        assert!(crackers.minority);
        assert!(!consensus.items[0].minority);
        assert_eq!(consensus.items[0].seen_by, 3);
        assert!(close(consensus.total.kcal, 200.0 + 90.0, 0.02));
    }

    #[test]
    fn names_align_through_table_synonyms_plurals_case_and_typos() {
        let estimates = [
            agent(
                "a",
                vec![item("zucchini", 100.0, 17.0), item("Eggs", 100.0, 143.0)],
            ),
            agent(
                "b",
                vec![item("courgette", 110.0, 19.0), item("egg", 95.0, 136.0)],
            ),
            agent(
                "c",
                vec![item("Courgettes", 90.0, 15.0), item("EGG", 105.0, 150.0)],
            ),
        ];
        let consensus = merge(&estimates, builtin);
        assert_eq!(consensus.items.len(), 2, "{:?}", consensus.items);
        assert!(consensus
            .items
            .iter()
            .all(|item| item.seen_by == 3 && item.reference_used));

        // Names the table does not know still align on their normalised form.
        let estimates = [
            agent("a", vec![item("Grandma's Dumplings", 200.0, 400.0)]),
            agent("b", vec![item("grandmas dumpling", 210.0, 410.0)]),
            agent("c", vec![item("Grandmas dumplngs", 190.0, 390.0)]),
        ];
        let consensus = merge(&estimates, no_reference);
        assert_eq!(consensus.items.len(), 1, "{:?}", consensus.items);
        assert_eq!(consensus.items[0].seen_by, 3);
    }

    #[test]
    fn implausible_density_is_pulled_toward_the_reference_with_its_macros() {
        // Cooked white rice is 1.30 kcal/g; all agents claim 4 kcal/g.
        let estimates = [
            agent("a", vec![item("white rice", 200.0, 800.0)]),
            agent("b", vec![item("white rice", 200.0, 800.0)]),
        ];
        let consensus = merge(&estimates, builtin);
        let rice = &consensus.items[0];
        assert!(rice.reference_used);
        let density = rice.nutrients.kcal / rice.grams;
        let reference = builtin("white rice").map_or(0.0, |found| found.per_100g.kcal / 100.0);
        assert!(density < 4.0 * 0.5, "density {density}");
        assert!(density <= (reference + DENSITY_OFFSET) * PLAUSIBLE_DENSITY_FACTOR);
        // Macros come from the table (rice is mostly carbohydrate), not from the agents.
        assert!(rice.nutrients.carbs_g > 5.0 * rice.nutrients.fat_g);

        // A plausible density is left alone.
        let estimates = [agent("a", vec![item("white rice", 200.0, 270.0)])];
        let consensus = merge(&estimates, builtin);
        assert!(close(consensus.total.kcal, 270.0, 1e-9));
    }

    #[test]
    fn two_disagreeing_agents_are_both_kept_with_low_confidence() {
        let estimates = [
            agent("a", vec![item("pie", 100.0, 300.0)]),
            agent("b", vec![item("pie", 300.0, 900.0)]),
        ];
        let consensus = merge(&estimates, no_reference);
        assert!(consensus.dropped.is_empty());
        assert_eq!(consensus.confidence, Confidence::Low);
        assert!(consensus.interval_kcal.0 <= 300.0 && consensus.interval_kcal.1 >= 900.0);
        assert!(consensus.total.kcal > 300.0 && consensus.total.kcal < 900.0);
    }

    #[test]
    fn agent_weights_and_confidence_weight_the_votes() {
        let mut trusted = agent("trusted", vec![item("stew", 400.0, 600.0)]);
        trusted.weight = 5.0;
        let estimates = [trusted, agent("other", vec![item("stew", 300.0, 450.0)])];
        let consensus = merge(&estimates, no_reference);
        // Interpolated between the two, much closer to the trusted agent.
        let grams = consensus.items[0].grams;
        assert!(grams > 375.0 && grams < 400.0, "{grams}");
    }

    #[test]
    fn the_label_never_comes_from_self_reported_confidence() {
        let make = |confidence: f64| {
            let mut estimates = Vec::new();
            for (label, grams) in [("a", 100.0), ("b", 300.0), ("c", 180.0)] {
                let mut estimated = item("pasta", grams, grams * 1.6);
                estimated.confidence = confidence;
                estimates.push(agent(label, vec![estimated]));
            }
            merge(&estimates, no_reference)
        };
        let sure = make(1.0);
        let unsure = make(0.1);
        assert_eq!(sure.confidence, unsure.confidence);
        assert_eq!(sure.agreement, unsure.agreement);
        assert_ne!(sure.confidence, Confidence::High);
    }

    #[test]
    fn duplicate_items_of_one_agent_add_up() {
        let estimates = [agent(
            "a",
            vec![item("rice", 100.0, 130.0), item("Rice", 50.0, 65.0)],
        )];
        let consensus = merge(&estimates, no_reference);
        assert_eq!(consensus.items.len(), 1);
        assert!(close(consensus.items[0].grams, 150.0, 1e-9));
    }

    #[test]
    fn strange_names_and_numbers_never_panic() {
        let long_name = "x".repeat(10_000);
        let names = [
            "",
            "   ",
            "🍕🍕🍕",
            "\u{0}\u{1}",
            "ß",
            "İstanbul kebab",
            "a",
            "s",
            "ies",
            long_name.as_str(),
            "中文 米饭",
            "'''",
            "-- ; DROP TABLE",
        ]
        .map(str::to_owned);
        let numbers = [0.0, -1.0, f64::NAN, f64::INFINITY, 1e300, 1e-300, 50.0];
        let mut estimates = Vec::new();
        for (index, name) in names.iter().enumerate() {
            let value = numbers[index % numbers.len()];
            let mut items = vec![
                item(name, value, value),
                item(name, 100.0, value),
                item(name, value, 100.0),
            ];
            items[0].confidence = numbers[(index + 2) % numbers.len()];
            estimates.push(AgentEstimate {
                agent: name.clone(),
                items,
                weight: numbers[(index + 3) % numbers.len()],
            });
        }
        for reference in [no_reference as fn(&str) -> Option<Reference>, builtin] {
            let consensus = merge(&estimates, reference);
            assert!(consensus.total.kcal.is_finite());
            assert!(consensus.interval_kcal.0.is_finite() && consensus.interval_kcal.1.is_finite());
            assert!((0.0..=1.0).contains(&consensus.agreement));
            for merged in &consensus.items {
                assert!(merged.grams.is_finite() && merged.grams > 0.0);
                assert!(merged.nutrients.kcal.is_finite() && merged.nutrients.kcal >= 0.0);
            }
        }
    }

    #[test]
    fn each_agents_own_numbers_are_attributed_to_the_merged_items() {
        let estimates = [
            agent(
                "a",
                vec![item("white rice", 200.0, 260.0), item("Eggs", 100.0, 143.0)],
            ),
            agent(
                "b",
                vec![
                    item("rice", 180.0, 234.0),
                    item("egg", 50.0, 70.0),
                    item("egg", 50.0, 72.0),
                ],
            ),
            agent("c", vec![item("rice", 220.0, 286.0)]),
            agent(
                "wild",
                vec![item("rice", 900.0, 1170.0), item("caviar", 30.0, 80.0)],
            ),
        ];
        let consensus = merge(&estimates, builtin);
        assert_eq!(consensus.dropped[0].0, "wild");
        let rice = consensus
            .items
            .iter()
            .position(|merged| merged.name.contains("rice"))
            .unwrap();
        let egg = consensus
            .items
            .iter()
            .position(|merged| merged.name.to_lowercase().contains("egg"))
            .unwrap();
        assert_eq!(
            attribute(&estimates[1].items, &consensus, builtin),
            vec![(rice, 180.0, 234.0), (egg, 100.0, 142.0)]
        );
        // The dropped agent's own numbers are on record; what matches nothing is left out.
        assert_eq!(
            attribute(&estimates[3].items, &consensus, builtin),
            vec![(rice, 900.0, 1170.0)]
        );
    }

    #[test]
    fn zero_weights_everywhere_count_as_equal_weights() {
        let mut first = agent("a", vec![item("stew", 100.0, 150.0)]);
        let mut second = agent("b", vec![item("stew", 300.0, 450.0)]);
        first.weight = 0.0;
        second.weight = 0.0;
        let consensus = merge(&[first, second], no_reference);
        // Two equal votes meet in the middle (geometrically: errors are relative).
        assert!(close(
            consensus.items[0].grams,
            (100.0f64 * 300.0).sqrt(),
            1e-6
        ));
    }
}
