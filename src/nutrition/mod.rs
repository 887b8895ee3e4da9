//! Nutrition data sources at the edge: USDA FoodData Central over HTTP. The pure engine (parser,
//! built-in table, estimation) lives in `health_actors::nutrition`.

pub mod engine;
pub mod report;
pub mod usda;

/// The engine the settings ask for: with a USDA client when `USDA_API_KEY` is set.
pub fn engine_from_settings(
    settings: &crate::config::UsdaSettings,
) -> Result<engine::NutritionEngine, usda::UsdaError> {
    Ok(match &settings.api_key {
        Some(key) => {
            let client = usda::UsdaClient::new(usda::UsdaSettings::new(
                settings.base_url.clone(),
                key.clone(),
            ))?;
            engine::NutritionEngine::with_usda(std::sync::Arc::new(client))
        }
        None => engine::NutritionEngine::offline(),
    })
}
