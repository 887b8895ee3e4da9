-- Insert people, or replace profile, goals and time zone. created_at keeps the earliest known
-- moment (a bare row made by an earlier write may be younger than the record's own created_at).
INSERT INTO users (id, profile, goals, timezone, created_at, updated_at)
SELECT * FROM UNNEST($1::int8[], $2::jsonb[], $3::jsonb[], $4::text[], $5::timestamptz[], $6::timestamptz[])
ON CONFLICT (id) DO UPDATE SET
    profile = EXCLUDED.profile,
    goals = EXCLUDED.goals,
    timezone = EXCLUDED.timezone,
    created_at = LEAST(users.created_at, EXCLUDED.created_at),
    updated_at = EXCLUDED.updated_at
