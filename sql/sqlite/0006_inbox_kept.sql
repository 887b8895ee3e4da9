-- 0006: what the committed steps of an inbox entry's turn saved (see
-- sql/migrations/0007_inbox_kept.sql): a JSON array of texts.

ALTER TABLE inbox ADD COLUMN kept TEXT NOT NULL DEFAULT '[]';
