//! Meal text parsing, the built-in food table and nutrient estimation (pure code, no I/O).
