INSERT INTO food_entries (id, user_id, eaten_at, local_date, meal_type, description, items,
    total_kcal, total_protein_g, total_carbs_g, total_fat_g, total_fiber_g, photo_path,
    created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
ON CONFLICT (id) DO NOTHING
