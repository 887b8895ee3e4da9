-- Once per (person, code): the first earning is kept.
INSERT INTO achievements (user_id, code, earned_at)
SELECT * FROM UNNEST($1::int8[], $2::text[], $3::timestamptz[])
ON CONFLICT (user_id, code) DO NOTHING
