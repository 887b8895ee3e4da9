//! Nutrition data sources at the edge: USDA FoodData Central over HTTP. The pure engine (parser,
//! built-in table, estimation) lives in `health_actors::nutrition`.

pub mod usda;
