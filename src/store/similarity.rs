//! Cosine similarity and in-process ranking of memories.
//!
//! Used wherever vectors are not ranked by the database: the embedded store always, and the
//! PostgreSQL store when the server has no pgvector. One implementation keeps the two in-process
//! rankers (and their edge cases) identical; pgvector's `<=>` ranks the same way.

use health_actors::domain::{Memory, ScoredMemory};
use health_actors::ports::StoreError;

/// Whether a memory search can run: `Ok(false)` when there is nothing to search with (an empty
/// query or no room for results), an error when the query holds a value that is not finite.
pub fn searchable(query: &[f32], limit: usize) -> Result<bool, StoreError> {
    if query.is_empty() || limit == 0 {
        return Ok(false);
    }
    if query.iter().any(|value| !value.is_finite()) {
        return Err(StoreError::Rejected(
            "the query vector holds a value that is not finite".to_owned(),
        ));
    }
    Ok(true)
}

/// The cosine similarity of the core ([`health_actors::memory::cosine`]), so that every
/// in-process ranker scores alike.
pub use health_actors::memory::cosine as cosine_similarity;

/// The `limit` memories most similar to `query`, best first; equal scores keep the input order.
pub fn rank_by_cosine(memories: Vec<Memory>, query: &[f32], limit: usize) -> Vec<ScoredMemory> {
    let mut scored: Vec<ScoredMemory> = memories
        .into_iter()
        .filter(|memory| memory.embedding.len() == query.len())
        .map(|memory| ScoredMemory {
            similarity: cosine_similarity(&memory.embedding, query),
            memory,
        })
        .collect();
    scored.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    scored.truncate(limit);
    scored
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use health_actors::domain::UserId;
    use uuid::Uuid;

    use super::*;

    fn memory(content: &str, embedding: Vec<f32>) -> Memory {
        Memory {
            id: Uuid::now_v7(),
            user_id: UserId(1),
            content: content.to_owned(),
            embedding,
            embedder: "test".to_owned(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine_similarity(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-12);
        assert!(cosine_similarity(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-12);
        assert!((cosine_similarity(&[1.0, 0.0], &[-2.0, 0.0]) + 1.0).abs() < 1e-12);
        assert!((cosine_similarity(&[1.0, 1.0], &[1.0, 0.0]) - 0.5f64.sqrt()).abs() < 1e-7);
    }

    #[test]
    fn incomparable_vectors_score_zero() {
        assert_eq!(cosine_similarity(&[], &[]), 0.0);
        assert_eq!(cosine_similarity(&[1.0], &[1.0, 2.0]), 0.0);
        assert_eq!(cosine_similarity(&[0.0, 0.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn ranking_is_best_first_and_limited() {
        let ranked = rank_by_cosine(
            vec![
                memory("far", vec![0.0, 1.0]),
                memory("near", vec![1.0, 0.1]),
                memory("other length", vec![1.0, 0.0, 0.0]),
                memory("middle", vec![1.0, 1.0]),
            ],
            &[1.0, 0.0],
            2,
        );
        let contents: Vec<&str> = ranked.iter().map(|s| s.memory.content.as_str()).collect();
        assert_eq!(contents, ["near", "middle"]);
    }
}
