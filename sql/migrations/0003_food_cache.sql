-- 0003: answers of outside food databases (USDA FoodData Central), cached across restarts.
--
-- Keyed by source and normalised query; `food` is NULL when the database knows no such food (a
-- negative answer is worth caching too). Not per-person data: no foreign key, and `delete_user`
-- leaves it alone. Idempotent, like every migration here.

CREATE TABLE IF NOT EXISTS food_cache (
    source      text        NOT NULL,
    query       text        NOT NULL,
    food        jsonb,
    fetched_at  timestamptz NOT NULL,
    PRIMARY KEY (source, query)
);
