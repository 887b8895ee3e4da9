//! Per-user calibration of each vision agent, learned from the person's corrections (pure code).
//!
//! Why: models have habits. One may over-estimate portions for everyone; another may misjudge
//! the plates of one person in particular (their bowls are bigger than average). When the person
//! corrects a photo entry ("the rice was 100 g"), every agent that estimated that item gets one
//! sample of its error: `ln(agent's grams / corrected grams)`. From an agent's samples:
//!
//! - **bias**: the median log ratio, shrunk toward zero by a prior worth [`PRIOR_STRENGTH`]
//!   corrections and applied only from [`MIN_SAMPLES_FOR_SCALE`] samples on, so one correction
//!   never rescales anyone; the agent's grams (and energy, at its own density) are multiplied by
//!   `exp(-bias)`, bounded to [`MIN_SCALE`]..=[`MAX_SCALE`].
//! - **weight**: from the median absolute error left *after* that scaling (what the merge will
//!   actually see), blended with a typical error of [`PRIOR_LOG_ERROR`] (≈ 35 %, published
//!   single-model error) by the same prior; the weight is `(prior error / blended error)²`
//!   (inverse variance), bounded to [`MIN_WEIGHT`]..=[`MAX_WEIGHT`]. An item the agent saw that
//!   the person says was not there counts as an error of [`MISSING_ITEM_LOG_ERROR`] (×3).
//!
//! One corrected entry is one sample (the median of its corrected items' log ratios): the items
//! of one photo share that photo's errors, so ten corrected items of one plate are not ten
//! pieces of evidence.
//!
//! An agent with no corrections gets weight 1 and scale 1: without data, nobody is favoured.
//! Only the [`MAX_SAMPLES_PER_AGENT`] newest samples count, so a model that improves is
//! forgiven.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{AgentEstimate, EstimatedItem};
use crate::domain::VisionEstimate;

/// A typical absolute log error of one model's portion (≈ 35 %).
pub const PRIOR_LOG_ERROR: f64 = 0.30;
/// The prior counts as this many corrections.
pub const PRIOR_STRENGTH: f64 = 5.0;
/// Corrections an agent needs before its estimates are rescaled at all.
pub const MIN_SAMPLES_FOR_SCALE: usize = 2;
/// Bounds of the rescaling: a model off by more than ×2 is left to the outlier rules.
pub const MIN_SCALE: f64 = 0.5;
pub const MAX_SCALE: f64 = 2.0;
/// Bounds of the weight relative to an agent with no track record.
pub const MIN_WEIGHT: f64 = 0.25;
pub const MAX_WEIGHT: f64 = 4.0;
/// The error of an item seen that was not there (as if off by ×3).
pub const MISSING_ITEM_LOG_ERROR: f64 = 1.0986;
/// Newest corrected entries per agent that count.
pub const MAX_SAMPLES_PER_AGENT: usize = 50;

/// How one agent's estimates are adjusted for one person.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AgentCalibration {
    /// Multiplies the agent's votes in the merge (1 = no track record).
    pub weight: f64,
    /// Multiplies the agent's grams and energy before the merge (1 = no correction).
    pub scale: f64,
    /// Corrections this is learned from.
    pub corrections: usize,
}

impl Default for AgentCalibration {
    fn default() -> Self {
        Self {
            weight: 1.0,
            scale: 1.0,
            corrections: 0,
        }
    }
}

/// Every agent's calibration for one person.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    agents: HashMap<String, AgentCalibration>,
}

impl Calibration {
    /// The agent's calibration (neutral when it has no track record).
    pub fn get(&self, agent: &str) -> AgentCalibration {
        self.agents.get(agent).copied().unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// The agent's estimate as the merge should see it: grams, energy and macros multiplied by
    /// its scale (its density unchanged), its votes by its weight.
    pub fn apply(&self, estimate: &AgentEstimate) -> AgentEstimate {
        let own = self.get(&estimate.agent);
        AgentEstimate {
            agent: estimate.agent.clone(),
            items: estimate
                .items
                .iter()
                .map(|item| EstimatedItem {
                    grams: item.grams * own.scale,
                    kcal: item.kcal * own.scale,
                    protein_g: item.protein_g * own.scale,
                    carbs_g: item.carbs_g * own.scale,
                    fat_g: item.fat_g * own.scale,
                    ..item.clone()
                })
                .collect(),
            weight: estimate.weight * own.weight,
        }
    }

    /// Learns every agent's calibration from corrected estimates (uncorrected ones are
    /// ignored). `corrected` is expected newest first, as the store returns it.
    pub fn learn(corrected: &[VisionEstimate]) -> Calibration {
        // Per agent, per corrected entry (newest first): the log ratios of its items, and
        // whether it saw an item that was not there.
        type PerEntry = (uuid::Uuid, Vec<f64>, bool);
        let mut per_entry: HashMap<&str, Vec<PerEntry>> = HashMap::new();
        for estimate in corrected {
            let Some(truth) = estimate.corrected_grams else {
                continue;
            };
            let ratio = if truth <= 0.0 {
                None
            } else if estimate.grams > 0.0 && estimate.grams.is_finite() && truth.is_finite() {
                Some((estimate.grams / truth).ln())
            } else {
                continue;
            };
            let entries = per_entry.entry(estimate.agent.as_str()).or_default();
            let position = match entries
                .iter()
                .position(|(entry, _, _)| *entry == estimate.entry_id)
            {
                Some(position) => position,
                None if entries.len() < MAX_SAMPLES_PER_AGENT => {
                    entries.push((estimate.entry_id, Vec::new(), false));
                    entries.len() - 1
                }
                None => continue,
            };
            match ratio {
                Some(ratio) => entries[position].1.push(ratio),
                None => entries[position].2 = true,
            }
        }
        // One sample per corrected entry: the items of one photo share its errors (the agent
        // misjudged that plate), so they are not independent evidence. An entry where the agent
        // only saw items that were not there is a "not there" sample.
        let samples: HashMap<&str, Vec<Sample>> = per_entry
            .into_iter()
            .map(|(agent, entries)| {
                let samples = entries
                    .into_iter()
                    .map(|(_, ratios, _)| {
                        if ratios.is_empty() {
                            Sample::NotThere
                        } else {
                            Sample::Ratio(median(&ratios))
                        }
                    })
                    .collect();
                (agent, samples)
            })
            .collect();
        let agents = samples
            .into_iter()
            .map(|(agent, samples)| (agent.to_owned(), calibrate(&samples)))
            .collect();
        Calibration { agents }
    }
}

#[derive(Debug, Clone, Copy)]
enum Sample {
    /// `ln(estimated / corrected)`.
    Ratio(f64),
    /// The agent saw an item the person says was not there.
    NotThere,
}

fn calibrate(samples: &[Sample]) -> AgentCalibration {
    let ratios: Vec<f64> = samples
        .iter()
        .filter_map(|sample| match sample {
            Sample::Ratio(ratio) => Some(*ratio),
            Sample::NotThere => None,
        })
        .collect();
    let bias = if ratios.len() >= MIN_SAMPLES_FOR_SCALE {
        let count = ratios.len() as f64;
        (median(&ratios) * count / (count + PRIOR_STRENGTH)).clamp(-MAX_SCALE.ln(), -MIN_SCALE.ln())
    } else {
        0.0
    };
    let errors: Vec<f64> = samples
        .iter()
        .map(|sample| match sample {
            Sample::Ratio(ratio) => (ratio - bias).abs(),
            Sample::NotThere => MISSING_ITEM_LOG_ERROR,
        })
        .collect();
    let count = errors.len() as f64;
    let blended =
        (PRIOR_STRENGTH * PRIOR_LOG_ERROR + count * median(&errors)) / (PRIOR_STRENGTH + count);
    let weight = (PRIOR_LOG_ERROR / blended.max(1e-6))
        .powi(2)
        .clamp(MIN_WEIGHT, MAX_WEIGHT);
    AgentCalibration {
        weight,
        scale: (-bias).exp(),
        corrections: samples.len(),
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::consensus::{merge, Reference};
    use crate::domain::UserId;

    fn corrected(agent: &str, grams: f64, truth: f64, minutes_ago: i64) -> VisionEstimate {
        let at = Utc::now() - Duration::minutes(minutes_ago);
        VisionEstimate {
            entry_id: Uuid::from_u128(minutes_ago as u128),
            item: "rice".into(),
            agent: agent.into(),
            user_id: UserId(1),
            grams,
            kcal: grams * 1.3,
            corrected_grams: Some(truth),
            created_at: at,
            corrected_at: Some(at),
        }
    }

    fn no_reference(_: &str) -> Option<Reference> {
        None
    }

    /// Three agents estimate a 200 g portion: two honest ones, one that over-estimates by 60 %.
    fn photo_estimates(calibration: &Calibration, truth: f64) -> Vec<AgentEstimate> {
        [("honest:a", 0.9), ("honest:b", 1.05), ("greedy:c", 1.6)]
            .iter()
            .map(|(agent, factor)| {
                let grams = truth * factor;
                calibration.apply(&AgentEstimate {
                    agent: (*agent).to_owned(),
                    items: vec![EstimatedItem {
                        name: "stew".into(),
                        grams,
                        kcal: grams * 1.5,
                        protein_g: 0.0,
                        carbs_g: 0.0,
                        fat_g: 0.0,
                        confidence: 0.8,
                    }],
                    weight: 1.0,
                })
            })
            .collect()
    }

    #[test]
    fn no_track_record_is_neutral() {
        let calibration = Calibration::learn(&[]);
        assert!(calibration.is_empty());
        assert_eq!(
            calibration.get("openai:gpt-4o"),
            AgentCalibration::default()
        );
        // Uncorrected rows teach nothing.
        let mut row = corrected("a", 100.0, 50.0, 1);
        row.corrected_grams = None;
        assert!(Calibration::learn(&[row]).is_empty());
    }

    #[test]
    fn one_correction_moves_the_weight_only_a_little_and_never_rescales() {
        let calibration = Calibration::learn(&[corrected("a", 200.0, 100.0, 1)]);
        let own = calibration.get("a");
        assert_eq!(own.scale, 1.0);
        assert!(own.weight < 1.0 && own.weight > 0.6, "{own:?}");
        assert_eq!(own.corrections, 1);
    }

    #[test]
    fn a_consistently_over_estimating_agent_loses_weight_and_is_scaled_down() {
        // Five photos: the honest agents within ±10 %, "greedy" 60 % over every time.
        let mut history = Vec::new();
        for photo in 0..5 {
            let truth = 150.0 + 20.0 * photo as f64;
            let minutes = i64::from(photo) * 10;
            history.push(corrected("honest:a", truth * 0.92, truth, minutes));
            history.push(corrected("honest:b", truth * 1.08, truth, minutes + 1));
            history.push(corrected("greedy:c", truth * 1.6, truth, minutes + 2));
        }
        let calibration = Calibration::learn(&history);
        let greedy = calibration.get("greedy:c");
        let honest = calibration.get("honest:a");
        // Its share of the vote falls from a third to well under a fifth (weights are relative:
        // the merge's weighted median does not change when all of them are multiplied).
        let total: f64 = ["honest:a", "honest:b", "greedy:c"]
            .iter()
            .map(|agent| calibration.get(agent).weight)
            .sum();
        assert!(greedy.weight / total < 0.2, "{greedy:?} of {total}");
        assert!(greedy.weight < honest.weight / 2.0, "{greedy:?} {honest:?}");
        assert!(honest.weight > 1.0, "{honest:?}");
        assert!(
            greedy.scale < 0.9 && greedy.scale >= MIN_SCALE,
            "{greedy:?}"
        );
        assert!((honest.scale - 1.0).abs() < 0.05, "{honest:?}");

        // The next photo: the calibrated consensus is closer to the truth than the plain one.
        let truth = 200.0;
        let plain = merge(
            &photo_estimates(&Calibration::default(), truth),
            no_reference,
        );
        let calibrated = merge(&photo_estimates(&calibration, truth), no_reference);
        let plain_error = (plain.items[0].grams / truth).ln().abs();
        let calibrated_error = (calibrated.items[0].grams / truth).ln().abs();
        assert!(
            calibrated_error < plain_error * 0.7,
            "plain {} g, calibrated {} g",
            plain.items[0].grams,
            calibrated.items[0].grams
        );
    }

    #[test]
    fn the_items_of_one_photo_count_as_one_sample() {
        let mut plate: Vec<VisionEstimate> = (0..10)
            .map(|item| {
                let mut row = corrected("a", 200.0, 100.0, 1);
                row.item = format!("item {item}");
                row
            })
            .collect();
        let own = Calibration::learn(&plate).get("a");
        assert_eq!(own.corrections, 1);
        assert_eq!(own.scale, 1.0, "one photo never rescales");
        plate.push(corrected("a", 200.0, 100.0, 2));
        assert_eq!(Calibration::learn(&plate).get("a").corrections, 2);
    }

    #[test]
    fn items_that_were_not_there_cost_weight_but_not_scale() {
        let history: Vec<VisionEstimate> =
            (0..4).map(|i| corrected("dreamer", 80.0, 0.0, i)).collect();
        let own = Calibration::learn(&history).get("dreamer");
        assert_eq!(own.scale, 1.0);
        assert!(own.weight < 0.5, "{own:?}");
    }

    #[test]
    fn calibration_is_bounded_whatever_the_history() {
        let history: Vec<VisionEstimate> = (0..200)
            .map(|i| corrected("wild", 5000.0, 1.0, i))
            .chain((0..200).map(|i| corrected("perfect", 100.0, 100.0, i)))
            .chain([
                corrected("nan", f64::NAN, 100.0, 1),
                corrected("zero", 0.0, 5.0, 1),
            ])
            .collect();
        let calibration = Calibration::learn(&history);
        let wild = calibration.get("wild");
        assert_eq!(wild.scale, MIN_SCALE);
        assert_eq!(wild.weight, MIN_WEIGHT);
        assert_eq!(wild.corrections, MAX_SAMPLES_PER_AGENT);
        assert_eq!(calibration.get("perfect").weight, MAX_WEIGHT);
        assert_eq!(calibration.get("nan"), AgentCalibration::default());
        assert_eq!(calibration.get("zero"), AgentCalibration::default());
    }
}
