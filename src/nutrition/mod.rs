//! Nutrition data sources at the edge: USDA FoodData Central over HTTP. The pure engine (parser,
//! built-in table, estimation) lives in `health_actors::nutrition`.

pub mod engine;
pub mod report;
pub mod usda;

use std::sync::Arc;

use health_actors::ports::Store;

/// How long a cached FoodData Central answer is used before FDC is asked again.
pub const USDA_CACHE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// The engine the settings ask for: with a USDA client when `USDA_API_KEY` is set, whose answers
/// are cached in `store` when there is one.
pub fn engine_from_settings(
    settings: &crate::config::UsdaSettings,
    store: Option<Arc<dyn Store>>,
) -> Result<engine::NutritionEngine, usda::UsdaError> {
    Ok(match &settings.api_key {
        Some(key) => {
            let mut client = usda::UsdaClient::new(usda::UsdaSettings::new(
                settings.base_url.clone(),
                key.clone(),
            ))?;
            if let Some(store) = store {
                client = client.with_store_cache(store, USDA_CACHE_MAX_AGE);
            }
            engine::NutritionEngine::with_usda(Arc::new(client))
        }
        None => engine::NutritionEngine::offline(),
    })
}
