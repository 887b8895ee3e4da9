-- A correction: everything but the id, the person and created_at is replaced.
UPDATE food_entries SET
    eaten_at = ?3, local_date = ?4, meal_type = ?5, description = ?6, items = ?7,
    total_kcal = ?8, total_protein_g = ?9, total_carbs_g = ?10, total_fat_g = ?11,
    total_fiber_g = ?12, photo_path = ?13, updated_at = ?14
WHERE id = ?1 AND user_id = ?2
