//! USDA FoodData Central client: food search and food details (with `foodPortions` gram weights).
//!
//! Documented API: `GET {base}/v1/foods/search?query=...&dataType=...&pageSize=N` and
//! `GET {base}/v1/food/{fdcId}`, authenticated with the api.data.gov key in the `X-Api-Key`
//! header (never in the URL, so the key cannot end up in a log line). Each call has a 5 s
//! timeout; 429 and 5xx are retried honouring `Retry-After`; a circuit breaker stops calling a
//! service that keeps failing. Answers are cached in memory for the life of the process and, when
//! a store is given, in the store's `food_cache` table across restarts: food composition does not
//! change from one day to the next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use health_actors::domain::Nutrients;
use health_actors::ports::{CachedFood, Store, SystemClock};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::metrics::{EXTERNAL_API_CALLS_TOTAL, EXTERNAL_API_DURATION_SECONDS};
use crate::resilience::{parse_retry_after, retry, Attempt, CircuitBreaker, RetryPolicy};

const PROVIDER: &str = "usda";
/// Datasets with lab-analysed or standard-reference values, best first.
const DATA_TYPES: &str = "Foundation,SR Legacy,Survey (FNDDS)";

/// FDC nutrient ids (and the legacy nutrient numbers of search results).
const ENERGY_KCAL: (u32, &str) = (1008, "208");
/// Foundation foods often report energy only as Atwater general/specific factors.
const ENERGY_ATWATER_GENERAL: (u32, &str) = (2047, "957");
const ENERGY_ATWATER_SPECIFIC: (u32, &str) = (2048, "958");
const PROTEIN: (u32, &str) = (1003, "203");
const FAT: (u32, &str) = (1004, "204");
const CARBS: (u32, &str) = (1005, "205");
const FIBER: (u32, &str) = (1079, "291");

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UsdaError {
    #[error("USDA FoodData Central did not answer in time")]
    Timeout,
    #[error("USDA FoodData Central is rate limiting us")]
    RateLimited,
    #[error("USDA FoodData Central refused the API key (check USDA_API_KEY)")]
    Unauthorized,
    #[error("USDA FoodData Central is failing; not calling it for a while")]
    CircuitOpen,
    #[error("USDA FoodData Central answered {0}")]
    Status(u16),
    #[error("USDA FoodData Central could not be reached: {0}")]
    Network(String),
    #[error("USDA FoodData Central sent an answer we could not read: {0}")]
    Malformed(String),
}

/// A food as FDC describes it, reduced to what the nutrition engine needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsdaFood {
    pub fdc_id: i64,
    pub description: String,
    pub data_type: String,
    /// Per 100 g.
    pub per_100g: Nutrients,
    /// Household portions with their gram weights ("cup, chopped" = 160 g).
    pub portions: Vec<UsdaPortion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsdaPortion {
    /// E.g. "cup", "slice", "large", "tbsp", as FDC names the measure (lower case).
    pub unit: String,
    /// How many `unit`s weigh `grams` (usually 1).
    pub amount: f64,
    /// The rest of FDC's description ("chopped", "1 cup, sliced").
    pub description: String,
    pub grams: f64,
}

#[derive(Debug, Clone)]
pub struct UsdaSettings {
    pub base_url: String,
    pub api_key: SecretString,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl UsdaSettings {
    pub fn new(base_url: impl Into<String>, api_key: SecretString) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }
}

pub struct UsdaClient {
    http: reqwest::Client,
    settings: UsdaSettings,
    breaker: CircuitBreaker,
    cache: Mutex<HashMap<String, Option<Arc<UsdaFood>>>>,
    store_cache: Option<(Arc<dyn Store>, Duration)>,
}

impl UsdaClient {
    pub fn new(settings: UsdaSettings) -> Result<Self, UsdaError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("health-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| UsdaError::Network(error.to_string()))?;
        Ok(Self {
            http,
            settings,
            breaker: CircuitBreaker::new(
                PROVIDER,
                5,
                Duration::from_secs(60),
                Arc::new(SystemClock),
            ),
            cache: Mutex::new(HashMap::new()),
            store_cache: None,
        })
    }

    /// Keeps answers in `store` too, so they survive restarts (answers older than `max_age`
    /// are asked again).
    pub fn with_store_cache(mut self, store: Arc<dyn Store>, max_age: Duration) -> Self {
        self.store_cache = Some((store, max_age));
        self
    }

    /// The best FDC food for a name: search, then the details (portions) of the first hit.
    /// `Ok(None)` when FDC knows no such food. Cached per normalised name, in memory and, with
    /// [`UsdaClient::with_store_cache`], in the store.
    pub async fn lookup(&self, name: &str) -> Result<Option<Arc<UsdaFood>>, UsdaError> {
        let key = name.trim().to_lowercase();
        if let Some(hit) = self.cache_get(&key) {
            return Ok(hit);
        }
        if let Some(stored) = self.stored(&key).await {
            self.cache_lock().insert(key, stored.clone());
            return Ok(stored);
        }
        let hits = self.search(&key, 5).await?;
        let found = match hits.first() {
            Some(hit) => Some(Arc::new(self.food(hit.fdc_id).await?)),
            None => None,
        };
        self.store(&key, found.as_deref()).await;
        self.cache_lock().insert(key, found.clone());
        Ok(found)
    }

    /// A fresh answer from the store cache; a store failure only costs a call to FDC.
    async fn stored(&self, key: &str) -> Option<Option<Arc<UsdaFood>>> {
        let (store, max_age) = self.store_cache.as_ref()?;
        let cached = match store.cached_food(PROVIDER, key).await {
            Ok(cached) => cached?,
            Err(error) => {
                tracing::warn!(%error, "the USDA cache could not be read; asking FDC");
                return None;
            }
        };
        let age = Utc::now()
            .signed_duration_since(cached.fetched_at)
            .to_std()
            .unwrap_or_default();
        if age > *max_age {
            return None;
        }
        match cached.food {
            None => Some(None),
            Some(json) => serde_json::from_value::<UsdaFood>(json)
                .ok()
                .map(|food| Some(Arc::new(food))),
        }
    }

    async fn store(&self, key: &str, food: Option<&UsdaFood>) {
        let Some((store, _)) = &self.store_cache else {
            return;
        };
        let entry = CachedFood {
            source: PROVIDER.to_owned(),
            query: key.to_owned(),
            food: food.and_then(|food| serde_json::to_value(food).ok()),
            fetched_at: Utc::now(),
        };
        if let Err(error) = store.cache_food(entry).await {
            tracing::warn!(%error, "a USDA answer could not be cached in the store");
        }
    }

    fn cache_get(&self, key: &str) -> Option<Option<Arc<UsdaFood>>> {
        self.cache_lock().get(key).cloned()
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Arc<UsdaFood>>>> {
        // Every update is a single insert, so a poisoned map is still consistent.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `GET /v1/foods/search`: the foods matching `query`, FDC's relevance order.
    pub async fn search(
        &self,
        query: &str,
        page_size: u32,
    ) -> Result<Vec<UsdaSearchHit>, UsdaError> {
        let url = format!("{}/v1/foods/search", self.settings.base_url);
        let page_size = page_size.clamp(1, 50).to_string();
        let params = [
            ("query", query),
            ("dataType", DATA_TYPES),
            ("pageSize", page_size.as_str()),
        ];
        let response: SearchResponse = self.get_json(&url, &params).await?;
        Ok(response
            .foods
            .into_iter()
            .map(|food| UsdaSearchHit {
                fdc_id: food.fdc_id,
                description: food.description,
                data_type: food.data_type.unwrap_or_default(),
                per_100g: nutrients_from_search(&food.food_nutrients),
            })
            .collect())
    }

    /// `GET /v1/food/{fdcId}`: one food with its nutrients and portions.
    pub async fn food(&self, fdc_id: i64) -> Result<UsdaFood, UsdaError> {
        let url = format!("{}/v1/food/{fdc_id}", self.settings.base_url);
        let details: FoodDetails = self.get_json(&url, &[]).await?;
        Ok(details.into_food())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        params: &[(&str, &str)],
    ) -> Result<T, UsdaError> {
        if !self.breaker.allow() {
            metrics::counter!(EXTERNAL_API_CALLS_TOTAL, "provider" => PROVIDER, "status" => "circuit_open").increment(1);
            return Err(UsdaError::CircuitOpen);
        }
        let outcome = retry(self.settings.retry, PROVIDER, || {
            self.attempt::<T>(url, params)
        })
        .await;
        match &outcome {
            Ok(_) => self.breaker.record_success(),
            // A key problem or an unknown food is not the service failing.
            Err(UsdaError::Unauthorized | UsdaError::Status(404) | UsdaError::Status(400)) => {
                self.breaker.record_success()
            }
            Err(_) => self.breaker.record_failure(),
        }
        outcome
    }

    async fn attempt<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        params: &[(&str, &str)],
    ) -> Attempt<T, UsdaError> {
        let started = Instant::now();
        let sent = self
            .http
            .get(url)
            .query(params)
            .header("X-Api-Key", self.settings.api_key.expose_secret())
            .header("Accept", "application/json")
            .send()
            .await;
        metrics::histogram!(EXTERNAL_API_DURATION_SECONDS, "provider" => PROVIDER)
            .record(started.elapsed().as_secs_f64());
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                let (label, error) = if error.is_timeout() {
                    ("timeout", UsdaError::Timeout)
                } else {
                    // reqwest's error text may contain the URL: strip it (no key in it, but keep logs lean).
                    ("error", UsdaError::Network(error.without_url().to_string()))
                };
                metrics::counter!(EXTERNAL_API_CALLS_TOTAL, "provider" => PROVIDER, "status" => label).increment(1);
                return Attempt::Retry(error, None);
            }
        };
        let status = response.status();
        metrics::counter!(EXTERNAL_API_CALLS_TOTAL, "provider" => PROVIDER, "status" => status.as_u16().to_string()).increment(1);
        let retry_after = parse_retry_after(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
        );
        match status {
            StatusCode::TOO_MANY_REQUESTS => Attempt::Retry(UsdaError::RateLimited, retry_after),
            status if status.is_server_error() => {
                Attempt::Retry(UsdaError::Status(status.as_u16()), retry_after)
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Attempt::Fail(UsdaError::Unauthorized)
            }
            status if !status.is_success() => Attempt::Fail(UsdaError::Status(status.as_u16())),
            _ => match response.json::<T>().await {
                Ok(value) => Attempt::Done(value),
                Err(error) => Attempt::Fail(UsdaError::Malformed(error.without_url().to_string())),
            },
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct UsdaSearchHit {
    pub fdc_id: i64,
    pub description: String,
    pub data_type: String,
    pub per_100g: Nutrients,
}

#[derive(Debug, Deserialize)]
struct SearchResponse {
    #[serde(default)]
    foods: Vec<SearchFood>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchFood {
    fdc_id: i64,
    description: String,
    data_type: Option<String>,
    #[serde(default)]
    food_nutrients: Vec<SearchNutrient>,
}

/// Search results list nutrients flat: `{"nutrientId":1008,"nutrientNumber":"208","value":52}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchNutrient {
    nutrient_id: Option<u32>,
    nutrient_number: Option<String>,
    value: Option<f64>,
}

/// Details list them nested: `{"nutrient":{"id":1008,"number":"208"},"amount":52}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FoodDetails {
    fdc_id: i64,
    description: String,
    data_type: Option<String>,
    #[serde(default)]
    food_nutrients: Vec<DetailNutrient>,
    #[serde(default)]
    food_portions: Vec<DetailPortion>,
}

#[derive(Debug, Deserialize)]
struct DetailNutrient {
    nutrient: Option<NutrientRef>,
    amount: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct NutrientRef {
    id: Option<u32>,
    number: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DetailPortion {
    amount: Option<f64>,
    gram_weight: Option<f64>,
    modifier: Option<String>,
    portion_description: Option<String>,
    measure_unit: Option<MeasureUnit>,
}

#[derive(Debug, Deserialize)]
struct MeasureUnit {
    name: Option<String>,
}

/// Picks the nutrients out of (id, number, value) triples; energy falls back to the Atwater
/// values that Foundation foods report instead of plain kcal.
fn collect_nutrients(
    values: impl Iterator<Item = (Option<u32>, Option<String>, Option<f64>)>,
) -> Nutrients {
    let mut found: HashMap<u32, f64> = HashMap::new();
    for (id, number, value) in values {
        let Some(value) = value.filter(|v| v.is_finite() && *v >= 0.0) else {
            continue;
        };
        let known = [
            ENERGY_KCAL,
            ENERGY_ATWATER_GENERAL,
            ENERGY_ATWATER_SPECIFIC,
            PROTEIN,
            FAT,
            CARBS,
            FIBER,
        ];
        let matched = known.iter().find(|(known_id, known_number)| {
            id == Some(*known_id) || number.as_deref() == Some(*known_number)
        });
        if let Some((known_id, _)) = matched {
            found.entry(*known_id).or_insert(value);
        }
    }
    let get = |id: u32| found.get(&id).copied();
    Nutrients {
        kcal: get(ENERGY_KCAL.0)
            .or(get(ENERGY_ATWATER_GENERAL.0))
            .or(get(ENERGY_ATWATER_SPECIFIC.0))
            .unwrap_or(0.0),
        protein_g: get(PROTEIN.0).unwrap_or(0.0),
        carbs_g: get(CARBS.0).unwrap_or(0.0),
        fat_g: get(FAT.0).unwrap_or(0.0),
        fiber_g: get(FIBER.0).unwrap_or(0.0),
    }
}

fn nutrients_from_search(nutrients: &[SearchNutrient]) -> Nutrients {
    collect_nutrients(
        nutrients
            .iter()
            .map(|n| (n.nutrient_id, n.nutrient_number.clone(), n.value)),
    )
}

impl FoodDetails {
    fn into_food(self) -> UsdaFood {
        let per_100g = collect_nutrients(self.food_nutrients.iter().map(|n| {
            let (id, number) = match &n.nutrient {
                Some(reference) => (reference.id, reference.number.clone()),
                None => (None, None),
            };
            (id, number, n.amount)
        }));
        let portions = self
            .food_portions
            .into_iter()
            .filter_map(DetailPortion::into_portion)
            .collect();
        UsdaFood {
            fdc_id: self.fdc_id,
            description: self.description,
            data_type: self.data_type.unwrap_or_default(),
            per_100g,
            portions,
        }
    }
}

impl DetailPortion {
    /// SR Legacy names the measure in `modifier` ("cup, chopped") with unit "undetermined";
    /// Foundation uses `measureUnit.name` ("cup"); FNDDS writes `portionDescription` ("1 cup").
    fn into_portion(self) -> Option<UsdaPortion> {
        let grams = self.gram_weight.filter(|g| g.is_finite() && *g > 0.0)?;
        let amount = self
            .amount
            .filter(|a| a.is_finite() && *a > 0.0)
            .unwrap_or(1.0);
        let unit_name = self
            .measure_unit
            .and_then(|u| u.name)
            .map(|n| n.to_lowercase());
        let described = self
            .modifier
            .or(self.portion_description)
            .unwrap_or_default();
        let unit = match unit_name {
            Some(name) if name != "undetermined" && !name.is_empty() => name,
            _ => described
                .split([',', '(', ' '])
                .map(str::trim)
                .find(|word| !word.is_empty() && word.parse::<f64>().is_err())
                .unwrap_or("serving")
                .to_lowercase(),
        };
        Some(UsdaPortion {
            unit,
            amount,
            description: described,
            grams,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_json_becomes_a_food_with_portions() {
        let json = r#"{
            "fdcId": 171705, "description": "Avocados, raw, all commercial varieties", "dataType": "SR Legacy",
            "foodNutrients": [
                {"nutrient": {"id": 1008, "number": "208", "name": "Energy", "unitName": "kcal"}, "amount": 160},
                {"nutrient": {"id": 1003, "number": "203", "name": "Protein", "unitName": "g"}, "amount": 2.0},
                {"nutrient": {"id": 1004, "number": "204"}, "amount": 14.66},
                {"nutrient": {"id": 1005, "number": "205"}, "amount": 8.53},
                {"nutrient": {"id": 1079, "number": "291"}, "amount": 6.7},
                {"nutrient": {"id": 1062, "number": "268"}, "amount": 670}
            ],
            "foodPortions": [
                {"id": 1, "amount": 1, "gramWeight": 150, "modifier": "cup, cubes", "measureUnit": {"name": "undetermined"}},
                {"id": 2, "amount": 1, "gramWeight": 201, "modifier": "avocado, NS as to Florida or California", "measureUnit": {"name": "undetermined"}},
                {"id": 3, "amount": 0.5, "gramWeight": 68, "measureUnit": {"name": "cup"}},
                {"id": 4, "gramWeight": 0, "modifier": "broken"}
            ]
        }"#;
        let food = serde_json::from_str::<FoodDetails>(json)
            .unwrap()
            .into_food();
        assert_eq!(food.fdc_id, 171705);
        assert_eq!(food.per_100g.kcal, 160.0);
        assert_eq!(food.per_100g.fat_g, 14.66);
        assert_eq!(food.per_100g.fiber_g, 6.7);
        assert_eq!(food.portions.len(), 3);
        assert_eq!(food.portions[0].unit, "cup");
        assert_eq!(food.portions[1].unit, "avocado");
        assert_eq!(
            (food.portions[2].unit.as_str(), food.portions[2].amount),
            ("cup", 0.5)
        );
    }

    #[test]
    fn foundation_energy_falls_back_to_atwater() {
        let nutrients = collect_nutrients(
            [
                (Some(2047), None, Some(120.0)),
                (Some(1003), None, Some(20.0)),
            ]
            .into_iter(),
        );
        assert_eq!(nutrients.kcal, 120.0);
        assert_eq!(nutrients.protein_g, 20.0);
    }
}
