-- 0007: what the committed steps of an inbox entry's turn saved, in the person's words (a JSON
-- array of texts, one per saved thing, in the order committed). When the entry becomes a dead
-- letter, the apology says what was kept instead of asking to send it all again. `attempts`
-- now counts the turns that started handling the entry (not the starts of the process).

ALTER TABLE inbox ADD COLUMN IF NOT EXISTS kept jsonb NOT NULL DEFAULT '[]'::jsonb;
