INSERT INTO dead_letters (id, user_id, message, error, created_at)
SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::jsonb[], $4::text[], $5::timestamptz[])
ON CONFLICT (id) DO NOTHING
