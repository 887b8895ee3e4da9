//! Memories in PostgreSQL: inserting and deleting them, and the search that ranks them by cosine,
//! in SQL with pgvector (HNSW partial indexes for the common dimensions) or in process without.

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use health_actors::domain::{Memory, ScoredMemory, UserId};
use health_actors::ports::{StoreError, Write};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{db_error, delete_rows, execute, PostgresStore, VectorMode};
use crate::store::similarity::rank_by_cosine;
use crate::store::sql_limit;

/// Dimensions that have an HNSW partial index in 0002 (keep the two lists equal).
pub(super) const INDEXED_DIMS: [usize; 6] = [256, 384, 512, 768, 1024, 1536];

const INSERT_MEMORIES: &str = include_str!("../../../sql/queries/postgres/insert_memories.sql");

const DELETE_MEMORIES: &str = "DELETE FROM memories m USING UNNEST($1::int8[], $2::uuid[]) \
    AS d(user_id, id) WHERE m.user_id = d.user_id AND m.id = d.id";

const MEMORY_COLUMNS: &str =
    "SELECT id, user_id, content, embedding::real[], embedder, created_at \
    FROM memories";

pub(super) async fn memories(
    store: &PostgresStore,
    user: UserId,
) -> Result<Vec<Memory>, StoreError> {
    let sql = format!("{MEMORY_COLUMNS} WHERE user_id = $1 ORDER BY created_at, id");
    let rows = store.query(&sql, &[&user.0]).await?;
    rows.iter().map(memory_from_row).collect()
}

pub(super) async fn search_memories(
    store: &PostgresStore,
    user: UserId,
    embedder: &str,
    query: &[f32],
    limit: usize,
) -> Result<Vec<ScoredMemory>, StoreError> {
    if !crate::store::similarity::searchable(query, limit)? {
        return Ok(Vec::new());
    }
    match store.vectors {
        VectorMode::Pgvector => search_in_sql(store, user, embedder, query, sql_limit(limit)).await,
        VectorMode::InProcess => {
            let dims = i32::try_from(query.len())
                .map_err(|_| StoreError::Rejected("the query vector is too long".to_owned()))?;
            let sql = format!(
                "{MEMORY_COLUMNS} WHERE user_id = $1 AND embedder = $2 AND dims = $3 \
                 ORDER BY created_at, id"
            );
            let rows = store.query(&sql, &[&user.0, &embedder, &dims]).await?;
            let memories = rows
                .iter()
                .map(memory_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rank_by_cosine(memories, query, limit))
        }
    }
}

async fn search_in_sql(
    store: &PostgresStore,
    user: UserId,
    embedder: &str,
    query: &[f32],
    limit: i64,
) -> Result<Vec<ScoredMemory>, StoreError> {
    let dims = i32::try_from(query.len())
        .map_err(|_| StoreError::Rejected("the query vector is too long".to_owned()))?;
    let query_vector = query.to_vec();
    let mut client = store.client().await?;
    let transaction = client.transaction().await.map_err(db_error)?;
    if store.iterative_scan {
        // An HNSW scan filtered by person returns fewer than `limit` rows unless it may keep
        // scanning (pgvector >= 0.8); strict order keeps the ranking exact.
        transaction
            .batch_execute("SET LOCAL hnsw.iterative_scan = strict_order")
            .await
            .map_err(db_error)?;
    }
    let rows = match store
        .indexed_searches
        .iter()
        .find(|(n, _)| *n == query.len())
    {
        Some((_, sql)) => {
            let statement = transaction.prepare_cached(sql).await.map_err(db_error)?;
            transaction
                .query(&statement, &[&user.0, &embedder, &query_vector, &limit])
                .await
                .map_err(db_error)?
        }
        None => {
            let sql = "SELECT id, user_id, content, embedding::real[], embedder, created_at, \
                1 - (embedding <=> $3::real[]::vector) FROM memories \
                WHERE user_id = $1 AND embedder = $2 AND dims = $5 \
                ORDER BY embedding <=> $3::real[]::vector LIMIT $4";
            let statement = transaction.prepare_cached(sql).await.map_err(db_error)?;
            transaction
                .query(
                    &statement,
                    &[&user.0, &embedder, &query_vector, &limit, &dims],
                )
                .await
                .map_err(db_error)?
        }
    };
    transaction.commit().await.map_err(db_error)?;
    rows.iter()
        .map(|row| {
            let similarity: f64 = row.try_get(6).map_err(db_error)?;
            // pgvector's distance to a zero vector is NaN; in process it scores 0.
            let similarity = if similarity.is_nan() { 0.0 } else { similarity };
            Ok(ScoredMemory {
                memory: memory_from_row(row)?,
                similarity,
            })
        })
        .collect()
}

/// Whether a pgvector version ("0.8.2") has `hnsw.iterative_scan` (0.8.0 and later).
pub(super) fn supports_iterative_scan(version: &str) -> bool {
    let mut parts = version
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= (0, 8)
}

pub(super) fn indexed_searches() -> Vec<(usize, String)> {
    INDEXED_DIMS
        .iter()
        .map(|dims| {
            let sql = format!(
                "SELECT id, user_id, content, embedding::real[], embedder, created_at, \
                 1 - (embedding::vector({dims}) <=> $3::real[]::vector({dims})) FROM memories \
                 WHERE user_id = $1 AND embedder = $2 AND dims = {dims} \
                 ORDER BY embedding::vector({dims}) <=> $3::real[]::vector({dims}) LIMIT $4"
            );
            (*dims, sql)
        })
        .collect()
}

/// Inserts a run of memories, their embeddings flattened into one array.
pub(super) async fn insert(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    let memories: Vec<&Memory> = group
        .iter()
        .filter_map(|w| match w {
            Write::InsertMemory(memory) => Some(memory),
            _ => None,
        })
        .collect();
    let ids: Vec<Uuid> = memories.iter().map(|m| m.id).collect();
    let users: Vec<i64> = memories.iter().map(|m| m.user_id.0).collect();
    let contents: Vec<&str> = memories.iter().map(|m| m.content.as_str()).collect();
    let embedders: Vec<&str> = memories.iter().map(|m| m.embedder.as_str()).collect();
    let mut dims = Vec::with_capacity(memories.len());
    let mut starts = Vec::with_capacity(memories.len());
    let mut flat: Vec<f32> = Vec::new();
    for memory in &memories {
        let too_long = || StoreError::Rejected("the embeddings of a batch are too long".to_owned());
        starts.push(i32::try_from(flat.len()).map_err(|_| too_long())?);
        dims.push(i32::try_from(memory.embedding.len()).map_err(|_| too_long())?);
        flat.extend_from_slice(&memory.embedding);
    }
    let created: Vec<DateTime<Utc>> = memories.iter().map(|m| m.created_at).collect();
    execute(
        transaction,
        INSERT_MEMORIES,
        &[
            &ids, &users, &contents, &embedders, &dims, &flat, &starts, &created,
        ],
    )
    .await?;
    Ok(())
}

/// Deletes a run of memories.
pub(super) async fn delete(
    transaction: &Transaction<'_>,
    group: &[Write],
) -> Result<(), StoreError> {
    delete_rows(transaction, group, DELETE_MEMORIES).await
}

fn memory_from_row(row: &Row) -> Result<Memory, StoreError> {
    Ok(Memory {
        id: row.try_get(0).map_err(db_error)?,
        user_id: UserId(row.try_get(1).map_err(db_error)?),
        content: row.try_get(2).map_err(db_error)?,
        embedding: row.try_get(3).map_err(db_error)?,
        embedder: row.try_get(4).map_err(db_error)?,
        created_at: row.try_get(5).map_err(db_error)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations::POSTGRES;

    #[test]
    fn iterative_scans_from_pgvector_0_8() {
        assert!(supports_iterative_scan("0.8.2"));
        assert!(supports_iterative_scan("0.10.0"));
        assert!(supports_iterative_scan("1.0"));
        assert!(!supports_iterative_scan("0.7.4"));
        assert!(!supports_iterative_scan("garbage"));
    }

    #[test]
    fn indexed_search_statements_match_the_migration() {
        let migration = POSTGRES.migrations[1].sql;
        let listed: Vec<String> = INDEXED_DIMS.iter().map(usize::to_string).collect();
        assert!(migration.contains(&format!("ARRAY[{}]", listed.join(", "))));
    }
}
