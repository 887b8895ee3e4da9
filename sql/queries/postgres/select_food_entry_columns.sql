SELECT id, user_id, eaten_at, local_date, meal_type, description, items,
    total_kcal, total_protein_g, total_carbs_g, total_fat_g, total_fiber_g, photo_path, created_at
FROM food_entries
