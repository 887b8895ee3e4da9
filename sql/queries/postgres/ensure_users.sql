-- A bare row for every person a batch touches, so child rows satisfy their foreign key even when
-- the UpsertUser comes later (or never); defaults fill the rest.
INSERT INTO users (id)
SELECT DISTINCT u.id FROM UNNEST($1::int8[]) AS u(id)
ON CONFLICT (id) DO NOTHING
