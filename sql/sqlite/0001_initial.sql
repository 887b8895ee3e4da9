-- 0001: the tables of health-agent in the embedded database (SQLite, bundled).
--
-- The same tables and rules as sql/migrations/0001_initial.sql, in SQLite's types:
-- ids are uuid TEXT (hyphenated, readable in the sqlite3 shell), times are INTEGER microseconds
-- since the Unix epoch (UTC; the precision PostgreSQL keeps, and they sort), days are TEXT
-- 'YYYY-MM-DD', records read whole are JSON TEXT, embeddings are BLOBs of little-endian f32
-- (ranked in process by cosine). Insertion order is the implicit rowid.
--
-- Foreign keys (PRAGMA foreign_keys = ON on every connection) cascade deletes from users; `apply`
-- inserts a bare users row for every person a batch touches, so writes may precede UpsertUser.
-- dead_letters has no foreign key; `delete_user` deletes its rows explicitly.

CREATE TABLE IF NOT EXISTS users (
    id          INTEGER PRIMARY KEY,
    profile     TEXT    NOT NULL DEFAULT '{}',
    goals       TEXT    NOT NULL DEFAULT '{}',
    timezone    TEXT    NOT NULL DEFAULT 'UTC',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS food_entries (
    id               TEXT    PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    eaten_at         INTEGER NOT NULL,
    local_date       TEXT    NOT NULL,
    meal_type        TEXT    CHECK (meal_type IN ('breakfast', 'lunch', 'dinner', 'snack')),
    description      TEXT    NOT NULL,
    items            TEXT    NOT NULL,
    total_kcal       REAL    NOT NULL,
    total_protein_g  REAL    NOT NULL,
    total_carbs_g    REAL    NOT NULL,
    total_fat_g      REAL    NOT NULL,
    total_fiber_g    REAL    NOT NULL,
    photo_path       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS food_entries_user_local_date ON food_entries (user_id, local_date);
CREATE INDEX IF NOT EXISTS food_entries_user_created ON food_entries (user_id, created_at);

CREATE TABLE IF NOT EXISTS conversation_messages (
    id          TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    content     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS conversation_messages_user_created
    ON conversation_messages (user_id, created_at);

CREATE TABLE IF NOT EXISTS memories (
    id          TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    content     TEXT    NOT NULL,
    embedder    TEXT    NOT NULL,
    dims        INTEGER NOT NULL CHECK (dims > 0),
    embedding   BLOB    NOT NULL CHECK (length(embedding) = 4 * dims),
    created_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS memories_user_embedder ON memories (user_id, embedder, dims);
CREATE INDEX IF NOT EXISTS memories_user_created ON memories (user_id, created_at);

CREATE TABLE IF NOT EXISTS weight_logs (
    id          TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kg          REAL    NOT NULL CHECK (kg > 0 AND kg < 1000),
    logged_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS weight_logs_user_logged ON weight_logs (user_id, logged_at);

CREATE TABLE IF NOT EXISTS reminders (
    id            TEXT    PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text          TEXT    NOT NULL,
    schedule      TEXT    NOT NULL,
    next_fire_at  INTEGER,
    active        INTEGER NOT NULL CHECK (active IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS reminders_user ON reminders (user_id, created_at);
CREATE INDEX IF NOT EXISTS reminders_due ON reminders (next_fire_at)
    WHERE active = 1 AND next_fire_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS xp_events (
    id          TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    amount      INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS xp_events_user_created ON xp_events (user_id, created_at);

CREATE TABLE IF NOT EXISTS streaks (
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    domain        TEXT    NOT NULL,
    current       INTEGER NOT NULL CHECK (current >= 0),
    best          INTEGER NOT NULL CHECK (best >= 0),
    last_date     TEXT,
    freezes_left  INTEGER NOT NULL CHECK (freezes_left >= 0),
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, domain)
);

CREATE TABLE IF NOT EXISTS achievements (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code       TEXT    NOT NULL,
    earned_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, code)
);

CREATE TABLE IF NOT EXISTS dead_letters (
    id          TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL,
    message     TEXT    NOT NULL,
    error       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_created ON dead_letters (created_at);
CREATE INDEX IF NOT EXISTS dead_letters_user ON dead_letters (user_id);
