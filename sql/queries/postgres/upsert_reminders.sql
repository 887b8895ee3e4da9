-- Insert reminders or replace text, schedule, next firing and state (never the owner).
INSERT INTO reminders (id, user_id, text, schedule, next_fire_at, active, created_at)
SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::text[], $4::jsonb[], $5::timestamptz[],
    $6::bool[], $7::timestamptz[])
ON CONFLICT (id) DO UPDATE SET
    text = EXCLUDED.text,
    schedule = EXCLUDED.schedule,
    next_fire_at = EXCLUDED.next_fire_at,
    active = EXCLUDED.active,
    updated_at = now()
WHERE reminders.user_id = EXCLUDED.user_id
