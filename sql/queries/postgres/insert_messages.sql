-- Conversation turns, in batch order (`seq` breaks ties between equal timestamps).
INSERT INTO conversation_messages (id, user_id, role, content, created_at)
SELECT id, user_id, role, content, created_at
FROM UNNEST($1::uuid[], $2::int8[], $3::text[], $4::text[], $5::timestamptz[])
    WITH ORDINALITY AS m(id, user_id, role, content, created_at, position)
ORDER BY position
ON CONFLICT (id) DO NOTHING
