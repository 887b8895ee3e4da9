INSERT INTO xp_events (id, user_id, amount, reason, created_at)
SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::text[], $5::timestamptz[])
ON CONFLICT (id) DO NOTHING
