-- 0003: per-user keys of the HTTP API (`POST /api/v1/keys`). Only the SHA-256 of a key is kept;
-- the key itself is shown once to the admin who created it. Deleted with the user.
-- `created_at` is microseconds since the epoch, like every other timestamp here.

CREATE TABLE IF NOT EXISTS api_keys (
    key_hash    TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS api_keys_user_id ON api_keys (user_id);
