-- 0002: semantic memory with pgvector, where the server has it.
--
-- On a server without the extension (plain Debian PostgreSQL) this does nothing: embeddings stay
-- real[] and the store ranks them in process. Where `CREATE EXTENSION vector` succeeds, the column
-- becomes an untyped `vector` (the dimension depends on the embedder, and `dims` says which) with
-- one HNSW cosine index per common dimension: a partial expression index
-- `(embedding::vector(N)) WHERE dims = N` (pgvector's documented way to index mixed dimensions).
-- The store's search names the same expression and predicate, so the planner may use the index;
-- dimensions without an index (or above HNSW's 2000 limit) are still ranked in SQL, exactly.
-- Idempotent and safe to re-run; also valid as a docker-entrypoint-initdb.d script. If pgvector
-- is installed later, run this file again by hand (psql -f) to switch the column over.
DO $$
DECLARE
    dimension integer;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS vector;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'pgvector is available but could not be created (%); memories keep real[] embeddings', SQLERRM;
        END;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        RAISE NOTICE 'pgvector is not installed; memories keep real[] embeddings, ranked in process';
        RETURN;
    END IF;

    IF (SELECT t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = 'memories'::regclass AND a.attname = 'embedding') <> 'vector' THEN
        EXECUTE 'ALTER TABLE memories ALTER COLUMN embedding TYPE vector USING embedding::vector';
    END IF;

    FOREACH dimension IN ARRAY ARRAY[256, 384, 512, 768, 1024, 1536] LOOP
        EXECUTE format(
            'CREATE INDEX IF NOT EXISTS memories_embedding_hnsw_%s ON memories '
            'USING hnsw ((embedding::vector(%s)) vector_cosine_ops) WHERE dims = %s',
            dimension, dimension, dimension);
    END LOOP;
END
$$;
