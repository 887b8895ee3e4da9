-- 0002: answers of outside food databases (USDA FoodData Central), cached across restarts.
-- `food` is JSON text, NULL for "no such food"; `fetched_at` is microseconds since the epoch.

CREATE TABLE IF NOT EXISTS food_cache (
    source      TEXT    NOT NULL,
    query       TEXT    NOT NULL,
    food        TEXT,
    fetched_at  INTEGER NOT NULL,
    PRIMARY KEY (source, query)
);
