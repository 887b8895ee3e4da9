//! Memories in SQLite: inserting and deleting them (embeddings as little-endian `f32` blobs), and
//! the search, which ranks them by cosine in process.

use health_actors::domain::{Memory, ScoredMemory, UserId};
use health_actors::ports::StoreError;
use rusqlite::{params, Row, Transaction};
use uuid::Uuid;

use super::codec::{micros, time, uuid};
use super::{collect, run, SqliteStore};
use crate::store::similarity::rank_by_cosine;
use crate::store::sql_limit;

const MEMORY_COLUMNS: &str =
    "SELECT id, user_id, content, embedding, embedder, created_at FROM memories";

pub(super) async fn memories(store: &SqliteStore, user: UserId) -> Result<Vec<Memory>, StoreError> {
    let sql = format!("{MEMORY_COLUMNS} WHERE user_id = ?1 ORDER BY created_at, id");
    let rows = store.user_rows(sql, user, memory_row).await?;
    rows.into_iter().map(MemoryRow::into_memory).collect()
}

pub(super) async fn search_memories(
    store: &SqliteStore,
    user: UserId,
    embedder: &str,
    query: &[f32],
    limit: usize,
) -> Result<Vec<ScoredMemory>, StoreError> {
    if !crate::store::similarity::searchable(query, limit)? {
        return Ok(Vec::new());
    }
    let sql = format!(
        "{MEMORY_COLUMNS} WHERE user_id = ?1 AND embedder = ?2 AND dims = ?3 \
         ORDER BY created_at, id"
    );
    let embedder = embedder.to_owned();
    let dims = sql_limit(query.len());
    let rows = store
        .read(move |connection| {
            collect(
                &mut connection.prepare_cached(&sql)?,
                params![user.0, embedder, dims],
                memory_row,
            )
        })
        .await?;
    let memories = rows
        .into_iter()
        .map(MemoryRow::into_memory)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rank_by_cosine(memories, query, limit))
}

/// Inserts a memory.
pub(super) fn insert(transaction: &Transaction<'_>, memory: &Memory) -> Result<(), StoreError> {
    let blob: Vec<u8> = memory
        .embedding
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect();
    run(
        transaction,
        "INSERT INTO memories (id, user_id, content, embedder, dims, embedding, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
        params![
            memory.id.to_string(),
            memory.user_id.0,
            memory.content,
            memory.embedder,
            sql_limit(memory.embedding.len()),
            blob,
            micros(memory.created_at)
        ],
    )
}

/// Deletes a memory.
pub(super) fn delete(
    transaction: &Transaction<'_>,
    user_id: &UserId,
    id: &Uuid,
) -> Result<(), StoreError> {
    run(
        transaction,
        "DELETE FROM memories WHERE user_id = ?1 AND id = ?2",
        params![user_id.0, id.to_string()],
    )
}

struct MemoryRow {
    id: String,
    user_id: i64,
    content: String,
    embedding: Vec<u8>,
    embedder: String,
    created_at: i64,
}

fn memory_row(row: &Row<'_>) -> rusqlite::Result<MemoryRow> {
    Ok(MemoryRow {
        id: row.get(0)?,
        user_id: row.get(1)?,
        content: row.get(2)?,
        embedding: row.get(3)?,
        embedder: row.get(4)?,
        created_at: row.get(5)?,
    })
}

impl MemoryRow {
    fn into_memory(self) -> Result<Memory, StoreError> {
        let embedding = self
            .embedding
            .chunks_exact(4)
            .map(|bytes| <[u8; 4]>::try_from(bytes).map(f32::from_le_bytes))
            .collect::<Result<Vec<f32>, _>>()
            .map_err(|_| StoreError::Other("a stored embedding is malformed".to_owned()))?;
        Ok(Memory {
            id: uuid(&self.id)?,
            user_id: UserId(self.user_id),
            content: self.content,
            embedding,
            embedder: self.embedder,
            created_at: time(self.created_at)?,
        })
    }
}
