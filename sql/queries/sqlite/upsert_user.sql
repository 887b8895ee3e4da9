-- Insert a person, or replace profile, goals and time zone; created_at keeps the earliest known.
INSERT INTO users (id, profile, goals, timezone, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (id) DO UPDATE SET
    profile = excluded.profile,
    goals = excluded.goals,
    timezone = excluded.timezone,
    created_at = MIN(users.created_at, excluded.created_at),
    updated_at = excluded.updated_at
