-- How memories.embedding is stored: 'vector' (pgvector) or '_float4' (real[]).
SELECT t.typname
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = 'memories'::regclass AND a.attname = 'embedding'
