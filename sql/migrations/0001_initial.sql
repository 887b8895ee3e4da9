-- 0001: the tables of health-agent (PostgreSQL >= 14).
--
-- Applied by the binary at start (recorded in schema_migrations) and also valid as a
-- docker-entrypoint-initdb.d script, so every statement is idempotent.
--
-- Referential integrity: every per-person table references users(id) ON DELETE CASCADE, so
-- deleting a person deletes everything about them in one statement. The persistence actor may
-- write a food entry before the UpsertUser that creates its person (same or an earlier batch), so
-- the store's `apply` first inserts a bare users row (defaults below) for every person a batch
-- touches (ON CONFLICT DO NOTHING); a later UpsertUser fills it in. dead_letters is the exception:
-- it has no foreign key (a failure may concern someone who is not, or no longer, a user) and
-- `delete_user` deletes its rows explicitly in the same transaction.
--
-- Times are timestamptz (UTC), days are date. Records that are always read whole and whose
-- shape evolves with the code (profile, goals, food items, reminder schedules, dead-letter
-- messages) are jsonb; numbers that SQL may aggregate (entry totals) are columns.

CREATE TABLE IF NOT EXISTS users (
    id          bigint      PRIMARY KEY,
    profile     jsonb       NOT NULL DEFAULT '{}',
    goals       jsonb       NOT NULL DEFAULT '{}',
    timezone    text        NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS food_entries (
    id               uuid             PRIMARY KEY,
    -- insertion order: the tie-break when two entries share a timestamp ("undo" the last one)
    seq              bigint           GENERATED ALWAYS AS IDENTITY,
    user_id          bigint           NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    eaten_at         timestamptz      NOT NULL,
    local_date       date             NOT NULL,
    meal_type        text             CHECK (meal_type IN ('breakfast', 'lunch', 'dinner', 'snack')),
    description      text             NOT NULL,
    items            jsonb            NOT NULL,
    total_kcal       double precision NOT NULL,
    total_protein_g  double precision NOT NULL,
    total_carbs_g    double precision NOT NULL,
    total_fat_g      double precision NOT NULL,
    total_fiber_g    double precision NOT NULL,
    photo_path       text,
    created_at       timestamptz      NOT NULL,
    -- set when a correction replaces the items
    updated_at       timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS food_entries_user_local_date ON food_entries (user_id, local_date);
CREATE INDEX IF NOT EXISTS food_entries_user_created ON food_entries (user_id, created_at, seq);

CREATE TABLE IF NOT EXISTS conversation_messages (
    id          uuid        PRIMARY KEY,
    seq         bigint      GENERATED ALWAYS AS IDENTITY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text        NOT NULL CHECK (role IN ('user', 'assistant')),
    content     text        NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS conversation_messages_user_created
    ON conversation_messages (user_id, created_at, seq);

-- Embeddings start as real[] (works everywhere); 0002 turns the column into pgvector's `vector`
-- when the extension can be created. `dims` is kept beside the vector because the dimension
-- depends on the embedder.
CREATE TABLE IF NOT EXISTS memories (
    id          uuid        PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    content     text        NOT NULL,
    embedder    text        NOT NULL,
    dims        integer     NOT NULL CHECK (dims > 0),
    embedding   real[]      NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS memories_user_embedder ON memories (user_id, embedder, dims);
CREATE INDEX IF NOT EXISTS memories_user_created ON memories (user_id, created_at);

CREATE TABLE IF NOT EXISTS weight_logs (
    id          uuid             PRIMARY KEY,
    user_id     bigint           NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kg          double precision NOT NULL CHECK (kg > 0 AND kg < 1000),
    logged_at   timestamptz      NOT NULL
);
CREATE INDEX IF NOT EXISTS weight_logs_user_logged ON weight_logs (user_id, logged_at);

CREATE TABLE IF NOT EXISTS reminders (
    id            uuid        PRIMARY KEY,
    user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text          text        NOT NULL,
    schedule      jsonb       NOT NULL,
    next_fire_at  timestamptz,
    active        boolean     NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS reminders_user ON reminders (user_id, created_at);
-- the scheduler's query: active reminders due soonest
CREATE INDEX IF NOT EXISTS reminders_due ON reminders (next_fire_at)
    WHERE active AND next_fire_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS xp_events (
    id          uuid        PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    amount      bigint      NOT NULL,
    reason      text        NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS xp_events_user_created ON xp_events (user_id, created_at);

CREATE TABLE IF NOT EXISTS streaks (
    user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    domain        text        NOT NULL,
    current       integer     NOT NULL CHECK (current >= 0),
    best          integer     NOT NULL CHECK (best >= 0),
    last_date     date,
    freezes_left  integer     NOT NULL CHECK (freezes_left >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, domain)
);

CREATE TABLE IF NOT EXISTS achievements (
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code       text        NOT NULL,
    earned_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, code)
);

CREATE TABLE IF NOT EXISTS dead_letters (
    id          uuid        PRIMARY KEY,
    user_id     bigint      NOT NULL,
    message     jsonb       NOT NULL,
    error       text        NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_created ON dead_letters (created_at DESC);
CREATE INDEX IF NOT EXISTS dead_letters_user ON dead_letters (user_id);
