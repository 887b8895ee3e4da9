//! Semantic memory: facts a person states ("I'm vegetarian", "allergic to peanuts"), kept with an
//! embedding so that the relevant ones can be found again for a later answer.
//!
//! Pure logic, no I/O: the [`OfflineEmbedder`] turns text into a vector deterministically (the
//! default when no embedding model is configured), and [`remember`] decides which writes keep a
//! new fact, merging it with a near-duplicate instead of storing the same fact twice. The agent
//! reads candidates with `Store::search_memories` and writes through the persistence actor.
//!
//! Every vector carries the name of the embedder that made it (`Memory::embedder`), and searches
//! filter on it, so changing the embedder never compares vectors of different spaces.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{Memory, ScoredMemory, UserId};
use crate::ports::Write;

/// Two facts at least this similar (cosine) are the same fact said again.
pub const NEAR_DUPLICATE: f64 = 0.9;

/// Why an embedding could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbedError {
    #[error("the embedding service did not answer in time")]
    Timeout,
    #[error("the embedding service failed: {0}")]
    Upstream(String),
}

/// Turns texts into vectors of one fixed dimension.
#[async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// A stable name stored beside each vector, e.g. `offline-hash-v1` or
    /// `openai:text-embedding-3-small`.
    fn name(&self) -> &str;

    fn dimensions(&self) -> usize;

    /// One vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Feature hashing of words and character trigrams: no model, no network, the same vector for
/// the same text on every platform (FNV-1a over UTF-8 bytes, no randomised hasher).
///
/// It finds facts that share words or word pieces ("vegetarian" ~ "vegetables" weakly,
/// "peanut allergy" ~ "allergic to peanuts" well); it does not know synonyms. That is the honest
/// reach of an offline embedder; an embedding model does better when configured.
#[derive(Debug, Clone, Copy)]
pub struct OfflineEmbedder {
    dimensions: usize,
}

impl OfflineEmbedder {
    /// 384 dimensions: one of the sizes with an HNSW index in PostgreSQL.
    pub const DEFAULT_DIMENSIONS: usize = 384;
    pub const NAME: &'static str = "offline-hash-v1";

    pub fn new() -> Self {
        Self {
            dimensions: Self::DEFAULT_DIMENSIONS,
        }
    }

    /// The vector of one text, L2-normalised (all zeros for a text without letters or digits).
    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut vector = vec![0f32; self.dimensions];
        let lowered = text.to_lowercase();
        let words = lowered
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty() && !STOP_WORDS.contains(word));
        for word in words {
            self.add(&mut vector, word.as_bytes(), 1.0);
            let padded: Vec<char> = format!("#{word}#").chars().collect();
            for trigram in padded.windows(3) {
                let piece: String = trigram.iter().collect();
                self.add(&mut vector, piece.as_bytes(), 0.5);
            }
        }
        let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|v| *v /= norm);
        }
        vector
    }

    fn add(&self, vector: &mut [f32], feature: &[u8], weight: f32) {
        let hash = fnv1a(feature);
        let index = (hash % self.dimensions as u64) as usize;
        // The sign from another bit keeps collisions from only ever adding up.
        let sign = if hash & (1 << 63) == 0 { 1.0 } else { -1.0 };
        vector[index] += sign * weight;
    }
}

impl Default for OfflineEmbedder {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Embedder for OfflineEmbedder {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|text| self.vector(text)).collect())
    }
}

/// Words that carry no meaning for matching facts.
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "i", "i'm", "im", "am", "is", "are", "to", "of", "and", "or", "my", "me",
    "that", "this", "it", "in", "on", "for", "with", "be", "do", "don", "t", "s", "m",
];

fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

/// What keeping a new fact means, given the most similar stored fact of the same embedder.
#[derive(Debug, Clone, PartialEq)]
pub enum Remembered {
    /// A new fact.
    New(Memory),
    /// The same fact said again: the newer wording replaces `replaced`.
    Merged { memory: Memory, replaced: Uuid },
}

impl Remembered {
    pub fn memory(&self) -> &Memory {
        match self {
            Self::New(memory) | Self::Merged { memory, .. } => memory,
        }
    }

    /// The writes that keep it (one transaction).
    pub fn writes(&self) -> Vec<Write> {
        match self {
            Self::New(memory) => vec![Write::InsertMemory(memory.clone())],
            Self::Merged { memory, replaced } => vec![
                Write::DeleteMemory {
                    user_id: memory.user_id,
                    id: *replaced,
                },
                Write::InsertMemory(memory.clone()),
            ],
        }
    }
}

/// Decides how to keep `content`: `id` should derive from the message that stated it so a replay
/// writes the same row; `closest` is the best match of a search with the same embedder.
pub fn remember(
    id: Uuid,
    user_id: UserId,
    content: &str,
    embedding: Vec<f32>,
    embedder: &str,
    now: DateTime<Utc>,
    closest: Option<&ScoredMemory>,
) -> Remembered {
    let memory = Memory {
        id,
        user_id,
        content: content.trim().to_owned(),
        embedding,
        embedder: embedder.to_owned(),
        created_at: now,
    };
    match closest {
        Some(found)
            if found.similarity >= NEAR_DUPLICATE
                && found.memory.embedder == embedder
                && found.memory.id != id =>
        {
            Remembered::Merged {
                memory,
                replaced: found.memory.id,
            }
        }
        _ => Remembered::New(memory),
    }
}

/// The cosine similarity of two vectors, in `-1.0..=1.0`, computed in f64. Vectors of different
/// lengths, empty ones and all-zero ones are not comparable: 0.0.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut norm_a, mut norm_b) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
    }
    if norm_a == 0.0 || norm_b == 0.0 {
        0.0
    } else {
        (dot / (norm_a.sqrt() * norm_b.sqrt())).clamp(-1.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn similarity(a: &str, b: &str) -> f64 {
        let embedder = OfflineEmbedder::new();
        cosine(&embedder.vector(a), &embedder.vector(b))
    }

    #[test]
    fn vectors_are_deterministic_normalised_and_of_the_stated_dimension() {
        let embedder = OfflineEmbedder::new();
        let a = embedder.vector("I'm allergic to peanuts");
        assert_eq!(a, embedder.vector("I'm allergic to peanuts"));
        assert_eq!(a.len(), OfflineEmbedder::DEFAULT_DIMENSIONS);
        let norm: f32 = a.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(embedder.vector("!!! ...").iter().all(|v| *v == 0.0));
        // The published FNV-1a test vectors: a change of hashing would silently make stored
        // vectors incomparable with new ones.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn related_facts_are_closer_than_unrelated_ones() {
        let related = similarity("I'm allergic to peanuts", "peanut allergy");
        let unrelated = similarity("I'm allergic to peanuts", "I run every Tuesday morning");
        assert!(related > 0.3, "{related}");
        assert!(unrelated < 0.15, "{unrelated}");
        assert!(similarity("I'm vegetarian", "I am vegetarian.") > NEAR_DUPLICATE);
    }

    #[test]
    fn strange_text_never_panics() {
        let embedder = OfflineEmbedder::new();
        for text in [
            "",
            "💥🍕",
            "ǅemal ﬁsh",
            "\u{0}\u{200b}",
            &"x".repeat(10_000),
        ] {
            let vector = embedder.vector(text);
            assert_eq!(vector.len(), OfflineEmbedder::DEFAULT_DIMENSIONS);
            assert!(vector.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn a_near_duplicate_is_merged_and_a_new_fact_is_added() {
        let embedder = OfflineEmbedder::new();
        let now = Utc::now();
        let old = Memory {
            id: Uuid::from_u128(1),
            user_id: UserId(7),
            content: "I'm vegetarian".into(),
            embedding: embedder.vector("I'm vegetarian"),
            embedder: OfflineEmbedder::NAME.into(),
            created_at: now,
        };
        let closest = ScoredMemory {
            similarity: 0.95,
            memory: old.clone(),
        };
        let merged = remember(
            Uuid::from_u128(2),
            UserId(7),
            " I am vegetarian ",
            embedder.vector("I am vegetarian"),
            OfflineEmbedder::NAME,
            now,
            Some(&closest),
        );
        assert_eq!(merged.memory().content, "I am vegetarian");
        assert_eq!(
            merged.writes()[0],
            Write::DeleteMemory {
                user_id: UserId(7),
                id: Uuid::from_u128(1)
            }
        );
        let far = ScoredMemory {
            similarity: 0.4,
            memory: old,
        };
        let new = remember(
            Uuid::from_u128(3),
            UserId(7),
            "allergic to peanuts",
            embedder.vector("allergic to peanuts"),
            OfflineEmbedder::NAME,
            now,
            Some(&far),
        );
        assert!(matches!(new, Remembered::New(_)));
        assert_eq!(new.writes().len(), 1);
    }
}
