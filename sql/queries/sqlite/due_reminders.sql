-- Served by the partial index reminders_due.
SELECT id, user_id, text, schedule, next_fire_at, active, created_at
FROM reminders
WHERE active = 1 AND next_fire_at IS NOT NULL AND next_fire_at <= ?1
ORDER BY next_fire_at, id
LIMIT ?2
