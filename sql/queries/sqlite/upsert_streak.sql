INSERT INTO streaks (user_id, domain, current, best, last_date, freezes_left, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (user_id, domain) DO UPDATE SET
    current = excluded.current,
    best = excluded.best,
    last_date = excluded.last_date,
    freezes_left = excluded.freezes_left,
    updated_at = excluded.updated_at
