INSERT INTO weight_logs (id, user_id, kg, logged_at)
SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::float8[], $4::timestamptz[])
ON CONFLICT (id) DO NOTHING
