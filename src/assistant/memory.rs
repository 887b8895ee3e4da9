//! Semantic memory as both agents use it: the LLM agent's `remember` / `search_memory` tools and
//! the rule agent's "remember that ..." rule keep and find facts the same way: the fact is
//! embedded, the closest stored fact of the same embedder is looked up, and
//! [`health_actors::memory::remember`] decides between a new row and a merge with a
//! near-duplicate; the writes go through the persistence actor.

use health_actors::conversation::{AgentError, TurnContext};
use health_actors::domain::ScoredMemory;
use health_actors::memory::{remember, Embedder, Remembered};
use uuid::Uuid;

/// Keeps `fact` for the person of `ctx` with the id `id` (derived from the message that stated
/// it, so that a replay writes the same row). `Ok(None)` when the fact could not be embedded
/// right now (nothing was written).
pub(super) async fn remember_fact(
    ctx: &TurnContext<'_>,
    embedder: &dyn Embedder,
    id: Uuid,
    fact: &str,
) -> Result<Option<Remembered>, AgentError> {
    let fact = fact.trim();
    let Some(vector) = embed_one(embedder, fact).await else {
        return Ok(None);
    };
    let user_id = ctx.user().id;
    let closest = ctx
        .store()
        .search_memories(user_id, embedder.name(), &vector, 1)
        .await?;
    let kept = remember(
        id,
        user_id,
        fact,
        vector,
        embedder.name(),
        ctx.now(),
        closest.first(),
    );
    ctx.write(kept.writes()).await?;
    Ok(Some(kept))
}

/// The `limit` stored facts most similar to `query`, best first; `Ok(None)` when the query could
/// not be embedded right now.
pub(super) async fn search(
    ctx: &TurnContext<'_>,
    embedder: &dyn Embedder,
    query: &str,
    limit: usize,
) -> Result<Option<Vec<ScoredMemory>>, AgentError> {
    let Some(vector) = embed_one(embedder, query).await else {
        return Ok(None);
    };
    let found = ctx
        .store()
        .search_memories(ctx.user().id, embedder.name(), &vector, limit)
        .await?;
    Ok(Some(found))
}

/// How long embedding one fact or query the person asked about may take. Longer than the
/// prompt's optional recall (they asked for this one), but bounded: a hanging embeddings
/// endpoint answers "not now" within it instead of holding the turn through every retry.
const EMBED_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

async fn embed_one(embedder: &dyn Embedder, text: &str) -> Option<Vec<f32>> {
    match tokio::time::timeout(EMBED_BUDGET, embedder.embed(&[text.to_owned()])).await {
        Ok(Ok(mut vectors)) if !vectors.is_empty() => Some(vectors.swap_remove(0)),
        Ok(Ok(_)) => None,
        Ok(Err(error)) => {
            tracing::warn!(%error, embedder = embedder.name(), "a memory could not be embedded");
            None
        }
        Err(_) => {
            tracing::warn!(
                embedder = embedder.name(),
                budget_ms = EMBED_BUDGET.as_millis() as u64,
                "a memory could not be embedded in time"
            );
            None
        }
    }
}
