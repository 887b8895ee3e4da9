-- The last ?2 turns of a person, returned oldest first (rowid: insertion order breaks ties).
SELECT id, user_id, role, content, created_at FROM (
    SELECT id, user_id, role, content, created_at, rowid AS seq
    FROM conversation_messages
    WHERE user_id = ?1
    ORDER BY created_at DESC, rowid DESC
    LIMIT ?2
)
ORDER BY created_at, seq
