-- Corrections: everything but the id, the person and created_at is replaced. Ids are unique in
-- the arrays (the caller keeps the last correction of each entry).
UPDATE food_entries AS f SET
    eaten_at = e.eaten_at,
    local_date = e.local_date,
    meal_type = e.meal_type,
    description = e.description,
    items = e.items,
    total_kcal = e.total_kcal,
    total_protein_g = e.total_protein_g,
    total_carbs_g = e.total_carbs_g,
    total_fat_g = e.total_fat_g,
    total_fiber_g = e.total_fiber_g,
    photo_path = e.photo_path,
    updated_at = now()
FROM UNNEST($1::uuid[], $2::int8[], $3::timestamptz[], $4::date[], $5::text[], $6::text[],
    $7::jsonb[], $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::float8[],
    $13::text[])
    AS e(id, user_id, eaten_at, local_date, meal_type, description, items,
        total_kcal, total_protein_g, total_carbs_g, total_fat_g, total_fiber_g, photo_path)
WHERE f.id = e.id AND f.user_id = e.user_id
