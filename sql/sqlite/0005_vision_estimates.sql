-- 0005: what each vision agent estimated for the items of a photo entry, and the person's
-- correction of them. The per-user calibration of each agent (its weight in the consensus and a
-- bounded rescaling of its portions) is learned from the corrected rows. Not tied to the entry:
-- what a correction taught stays learned when the entry is removed. Deleted with the user.
-- Times are microseconds since the epoch, like every other timestamp here.

CREATE TABLE IF NOT EXISTS vision_estimates (
    entry_id         TEXT    NOT NULL,
    item             TEXT    NOT NULL,
    agent            TEXT    NOT NULL,
    user_id          INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    grams            REAL    NOT NULL,
    kcal             REAL    NOT NULL,
    corrected_grams  REAL,
    created_at       INTEGER NOT NULL,
    corrected_at     INTEGER,
    PRIMARY KEY (entry_id, item, agent)
);

CREATE INDEX IF NOT EXISTS vision_estimates_user_corrected
    ON vision_estimates (user_id, corrected_at DESC) WHERE corrected_at IS NOT NULL;
