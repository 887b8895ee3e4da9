//! Reading what a person means, by plain rules (pure code, no I/O).
//!
//! The assistant (in the application crate, `src/assistant/`) answers chat messages; before it
//! acts it must know what a message asks for. That reading needs no model, no store and no
//! network, so it lives here in the core, deterministic and tested in-module:
//!
//! - [`intent`]: what a message asks for ([`classify`] → [`Intent`]: log a meal, a totals
//!   question, a goal, a weight, undo, help).
//! - [`profile`]: what a person says about themselves ([`parse_profile`] → [`ProfileFacts`]:
//!   age, sex, height, weight, activity, weight goal), for a calorie goal.
//! - [`correction`]: a correction of a saved meal ("the rice was 100 g", "no rice"): read by
//!   [`parse_correction`], applied to an entry by [`apply_correction`] (numbers rescaled, never
//!   estimated anew).
//! - [`memory`]: what a message asks of the memory ([`memory_request`]: remember, list, forget).
//!
//! What a food *is* and how much it weighs is [`crate::nutrition`]'s (parser, table, units); this
//! module uses it to tell a meal from a question. Everything here errs on the side of not
//! understanding: a message no rule reads is answered with what the assistant can do, never
//! with a guess.

pub mod correction;
pub mod intent;
pub mod memory;
pub mod profile;

pub use correction::{
    apply_correction, find_item, parse_correction, Change, Correction, CorrectionError,
};
pub use intent::{classify, DayRef, GoalNutrient, Intent, Metric, Period, QuestionKind};
pub use memory::{closest_by_words, memory_request, MemoryRequest};
pub use profile::{parse_profile, ProfileFacts};
