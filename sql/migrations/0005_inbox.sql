-- 0005: the inbox. Every message an edge accepts (a Telegram update, an API chat message, a line
-- of `health-agent chat`) is kept here before it is acknowledged to its sender, and marked done in
-- the same transaction as the history of its turn. On start, entries not done are handled again
-- in `seq` order. No foreign key to users: a message may come before its person exists; entries
-- are deleted with the person all the same (see `delete_user`).

CREATE TABLE IF NOT EXISTS inbox (
    id           uuid        PRIMARY KEY,
    seq          bigserial   NOT NULL,
    source       text        NOT NULL,
    user_id      bigint      NOT NULL,
    chat_id      bigint      NOT NULL,
    content      jsonb       NOT NULL,
    photo        bytea,
    received_at  timestamptz NOT NULL,
    steps        integer     NOT NULL DEFAULT 0,
    attempts     integer     NOT NULL DEFAULT 0,
    done_at      timestamptz,
    outcome      text,
    replies      jsonb
);

CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (source, seq) WHERE done_at IS NULL;
CREATE INDEX IF NOT EXISTS inbox_done_at ON inbox (done_at) WHERE done_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS inbox_user_id ON inbox (user_id);
