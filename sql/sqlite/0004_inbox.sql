-- 0004: the inbox (see sql/migrations/0005_inbox.sql). `seq` is the rowid, so entries come back
-- in the order they were accepted. Timestamps are microseconds since the epoch.

CREATE TABLE IF NOT EXISTS inbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    source       TEXT    NOT NULL,
    user_id      INTEGER NOT NULL,
    chat_id      INTEGER NOT NULL,
    content      TEXT    NOT NULL,
    photo        BLOB,
    received_at  INTEGER NOT NULL,
    steps        INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    done_at      INTEGER,
    outcome      TEXT,
    replies      TEXT
);

CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (source, seq) WHERE done_at IS NULL;
CREATE INDEX IF NOT EXISTS inbox_done_at ON inbox (done_at) WHERE done_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS inbox_user_id ON inbox (user_id);
