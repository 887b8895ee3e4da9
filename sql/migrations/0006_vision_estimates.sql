-- 0006: what each vision agent estimated for the items of a photo entry, and the person's
-- correction of them. The per-user calibration of each agent (its weight in the consensus and a
-- bounded rescaling of its portions) is learned from the corrected rows. Not tied to the entry:
-- what a correction taught stays learned when the entry is removed. Deleted with the user.

CREATE TABLE IF NOT EXISTS vision_estimates (
    entry_id         uuid             NOT NULL,
    -- the item's name as saved in the entry
    item             text             NOT NULL,
    -- provider:model
    agent            text             NOT NULL,
    user_id          bigint           NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- what the agent said, before calibration
    grams            double precision NOT NULL,
    kcal             double precision NOT NULL,
    -- what the person said it was; 0 when the item was not there
    corrected_grams  double precision,
    created_at       timestamptz      NOT NULL,
    corrected_at     timestamptz,
    PRIMARY KEY (entry_id, item, agent)
);

CREATE INDEX IF NOT EXISTS vision_estimates_user_corrected
    ON vision_estimates (user_id, corrected_at DESC) WHERE corrected_at IS NOT NULL;
