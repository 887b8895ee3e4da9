-- The last $2 turns of a person, returned oldest first.
SELECT id, user_id, role, content, created_at FROM (
    SELECT id, user_id, role, content, created_at, seq
    FROM conversation_messages
    WHERE user_id = $1
    ORDER BY created_at DESC, seq DESC
    LIMIT $2
) AS recent
ORDER BY created_at, seq
