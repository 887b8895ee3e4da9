-- Insert a reminder or replace text, schedule, next firing and state (never the owner).
INSERT INTO reminders (id, user_id, text, schedule, next_fire_at, active, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
ON CONFLICT (id) DO UPDATE SET
    text = excluded.text,
    schedule = excluded.schedule,
    next_fire_at = excluded.next_fire_at,
    active = excluded.active,
    updated_at = excluded.updated_at
WHERE reminders.user_id = excluded.user_id
