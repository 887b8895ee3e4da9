//! Photo analysis: vision agents run as parallel actors, one per configured vision model, under a
//! coordinator that hands each photo to a consensus actor of its own, which asks all of them at
//! once with a deadline and merges what they said.
//!
//! ```text
//! VisionCoordinator (coordinator.rs)   spawn_linked by the root; restarted by it (bounded)
//!  ├── VisionAgent × N (agent.rs)      one per VISION_MODELS entry, spawn_linked; restarted if it fails
//!  └── ConsensusActor × one per photo in flight (consensus_actor.rs)
//!                                      spawn_linked per photo: asks every agent, merges, answers, stops
//! ```
//!
//! The wall time of a photo is that of the slowest agent within the deadline, never the sum: the
//! consensus actor asks every agent at once and stops waiting at the deadline. What each agent
//! said (or why it said nothing) comes back as [`AgentOutcome`]s for the consensus to merge.
//! Callers hold a [`VisionHandle`], which follows the coordinator across restarts.

pub mod agent;
pub mod consensus_actor;
pub mod coordinator;
#[cfg(test)]
pub(crate) mod scripted;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use consensus_actor::{AgentItem, AgentReport, PhotoEstimate};
pub use coordinator::{VisionArgs, VisionCoordinator, VisionHandle, VisionSettings};

/// A photo to analyse, already validated by the edge (an image, within the size limit).
#[derive(Clone, PartialEq)]
pub struct Photo {
    pub bytes: Vec<u8>,
    /// `image/jpeg`, `image/png` or `image/webp`.
    pub media_type: &'static str,
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Photo({}, {} bytes)", self.media_type, self.bytes.len())
    }
}

impl Photo {
    /// The photo when `bytes` start like a JPEG, PNG or WebP file; `None` otherwise.
    pub fn sniff(bytes: Vec<u8>) -> Option<Self> {
        let media_type = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            "image/jpeg"
        } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
            "image/png"
        } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            "image/webp"
        } else {
            return None;
        };
        Some(Self { bytes, media_type })
    }
}

/// One food a vision model saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeenItem {
    pub name: String,
    pub grams: f64,
    pub kcal: f64,
    #[serde(default)]
    pub protein_g: f64,
    #[serde(default)]
    pub carbs_g: f64,
    #[serde(default)]
    pub fat_g: f64,
    /// The model's own confidence, 0..=1 (used only as a weight, never as the result's
    /// confidence).
    #[serde(default = "half")]
    pub confidence: f64,
}

fn half() -> f64 {
    0.5
}

/// A vision model's structured answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionAnswer {
    #[serde(default)]
    pub no_food: bool,
    #[serde(default)]
    pub items: Vec<SeenItem>,
}

impl VisionAnswer {
    /// Drops items whose numbers are not usable (not finite, negative, no grams); an answer with
    /// none left and not `no_food` is invalid.
    pub fn validated(mut self) -> Result<Self, VisionError> {
        self.items.retain(|item| {
            let numbers = [
                item.grams,
                item.kcal,
                item.protein_g,
                item.carbs_g,
                item.fat_g,
            ];
            !item.name.trim().is_empty()
                && numbers.iter().all(|n| n.is_finite() && *n >= 0.0)
                && item.grams > 0.0
                && item.grams <= 5_000.0
        });
        for item in &mut self.items {
            item.confidence = if item.confidence.is_finite() {
                item.confidence.clamp(0.0, 1.0)
            } else {
                0.5
            };
        }
        if !self.no_food && self.items.is_empty() {
            return Err(VisionError::Invalid("no usable item in the answer".into()));
        }
        Ok(self)
    }

    /// The total energy of the items.
    pub fn total_kcal(&self) -> f64 {
        self.items.iter().map(|item| item.kcal).sum()
    }
}

/// Why a vision model gave no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VisionError {
    #[error("the model did not answer within the deadline")]
    Timeout,
    #[error("the model could not be reached: {0}")]
    Unavailable(String),
    #[error("the model's answer was not valid: {0}")]
    Invalid(String),
    /// The branch failed (and is restarting) while the photo was in flight. Unlike the others,
    /// its `Display` is what the person reads: [`INTERRUPTED_NOTICE`].
    #[error("{}", INTERRUPTED_NOTICE)]
    Interrupted,
}

/// What a person whose photo was in flight when photo analysis failed reads.
pub const INTERRUPTED_NOTICE: &str =
    "Photo analysis restarted while it was reading your photo, so nothing was saved. Please send the photo again.";

/// A vision model: looks at a photo (with the person's caption as ground truth for what and how
/// much) and answers structured JSON.
#[async_trait]
pub trait VisionModel: Send + Sync + 'static {
    /// `provider:model`.
    fn name(&self) -> &str;
    async fn analyse(
        &self,
        photo: &Photo,
        caption: Option<&str>,
    ) -> Result<VisionAnswer, VisionError>;
}

/// What one agent did with one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentOutcome {
    pub agent: String,
    pub result: Result<VisionAnswer, VisionError>,
    pub elapsed: std::time::Duration,
}

/// Reads a model's text as a [`VisionAnswer`], tolerating code fences and text around the JSON.
pub fn parse_answer(text: &str) -> Result<VisionAnswer, VisionError> {
    let start = text
        .find('{')
        .ok_or_else(|| VisionError::Invalid("no JSON object in the answer".into()))?;
    let end = text
        .rfind('}')
        .filter(|end| *end > start)
        .ok_or_else(|| VisionError::Invalid("an unterminated JSON object".into()))?;
    serde_json::from_str::<VisionAnswer>(&text[start..=end])
        .map_err(|error| VisionError::Invalid(error.to_string()))?
        .validated()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_their_first_bytes() {
        assert_eq!(
            Photo::sniff(vec![0xFF, 0xD8, 0xFF, 0xE0])
                .unwrap()
                .media_type,
            "image/jpeg"
        );
        assert_eq!(
            Photo::sniff(b"\x89PNG\r\n\x1a\nrest".to_vec())
                .unwrap()
                .media_type,
            "image/png"
        );
        assert_eq!(
            Photo::sniff(b"RIFF\0\0\0\0WEBPVP8 ".to_vec())
                .unwrap()
                .media_type,
            "image/webp"
        );
        assert!(Photo::sniff(b"%PDF-1.7".to_vec()).is_none());
        assert!(Photo::sniff(Vec::new()).is_none());
    }

    #[test]
    fn answers_are_parsed_through_fences_and_chatter() {
        let text = "Sure! Here it is:\n```json\n{\"no_food\": false, \"items\": [{\"name\": \"rice\", \"grams\": 150, \"kcal\": 195, \"confidence\": 1.7}]}\n```";
        let answer = parse_answer(text).unwrap();
        assert_eq!(answer.items[0].name, "rice");
        assert_eq!(answer.items[0].confidence, 1.0);
        assert!(parse_answer("{\"no_food\": true}").unwrap().no_food);
        assert!(parse_answer("I cannot tell").is_err());
        assert!(
            parse_answer("{\"items\": [{\"name\": \"x\", \"grams\": -1, \"kcal\": 5}]}").is_err()
        );
        assert!(parse_answer(
            "{\"items\": [{\"name\": \"x\", \"grams\": 10, \"kcal\": \"lots\"}]}"
        )
        .is_err());
    }
}
