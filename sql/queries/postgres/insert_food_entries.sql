-- New entries; an id seen before is ignored (a retried batch never duplicates an entry).
-- Ordered by position so that `seq` follows the order of the batch.
INSERT INTO food_entries (id, user_id, eaten_at, local_date, meal_type, description, items,
    total_kcal, total_protein_g, total_carbs_g, total_fat_g, total_fiber_g, photo_path, created_at)
SELECT id, user_id, eaten_at, local_date, meal_type, description, items,
    total_kcal, total_protein_g, total_carbs_g, total_fat_g, total_fiber_g, photo_path, created_at
FROM UNNEST($1::uuid[], $2::int8[], $3::timestamptz[], $4::date[], $5::text[], $6::text[],
    $7::jsonb[], $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::float8[],
    $13::text[], $14::timestamptz[])
    WITH ORDINALITY AS e(id, user_id, eaten_at, local_date, meal_type, description, items,
        total_kcal, total_protein_g, total_carbs_g, total_fat_g, total_fiber_g, photo_path,
        created_at, position)
ORDER BY position
ON CONFLICT (id) DO NOTHING
