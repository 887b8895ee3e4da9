INSERT INTO streaks (user_id, domain, current, best, last_date, freezes_left)
SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int4[], $4::int4[], $5::date[], $6::int4[])
ON CONFLICT (user_id, domain) DO UPDATE SET
    current = EXCLUDED.current,
    best = EXCLUDED.best,
    last_date = EXCLUDED.last_date,
    freezes_left = EXCLUDED.freezes_left,
    updated_at = now()
