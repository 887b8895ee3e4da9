-- Memories with embeddings of any length in one statement: the vectors arrive concatenated in
-- $6 and each row slices its own part (`start` .. `start + dims`). In pgvector mode the real[]
-- slice is converted to `vector` by pgvector's assignment cast.
INSERT INTO memories (id, user_id, content, embedder, dims, embedding, created_at)
SELECT m.id, m.user_id, m.content, m.embedder, m.dims,
    ($6::real[])[m.start + 1 : m.start + m.dims], m.created_at
FROM UNNEST($1::uuid[], $2::int8[], $3::text[], $4::text[], $5::int4[], $7::int4[],
    $8::timestamptz[]) AS m(id, user_id, content, embedder, dims, start, created_at)
ON CONFLICT (id) DO NOTHING
