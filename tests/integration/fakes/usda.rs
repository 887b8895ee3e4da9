//! A fake USDA FoodData Central: `/v1/foods/search` and `/v1/food/{fdcId}` with FDC's JSON
//! shapes, an API key check on `X-Api-Key`, and scripted failures (429 with `Retry-After`, 500).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::Filter;

pub const KEY: &str = "fdc-test-key";

#[derive(Default)]
pub struct FakeFdcState {
    /// Statuses to answer with before behaving normally, one per request (e.g. 429, 500).
    pub failures: Mutex<VecDeque<u16>>,
    pub requests: Mutex<Vec<String>>,
}

pub struct FakeFdc {
    pub address: SocketAddr,
    pub state: Arc<FakeFdcState>,
}

impl FakeFdc {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn fail_next(&self, statuses: &[u16]) {
        self.state.failures.lock().unwrap().extend(statuses);
    }

    pub fn request_count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }
}

fn avocado_details() -> Value {
    json!({
        "fdcId": 171705,
        "description": "Avocados, raw, all commercial varieties",
        "dataType": "SR Legacy",
        "foodNutrients": [
            {"nutrient": {"id": 1008, "number": "208", "name": "Energy", "unitName": "kcal"}, "amount": 160.0},
            {"nutrient": {"id": 1003, "number": "203", "name": "Protein", "unitName": "g"}, "amount": 2.0},
            {"nutrient": {"id": 1004, "number": "204", "name": "Total lipid (fat)", "unitName": "g"}, "amount": 14.66},
            {"nutrient": {"id": 1005, "number": "205", "name": "Carbohydrate, by difference", "unitName": "g"}, "amount": 8.53},
            {"nutrient": {"id": 1079, "number": "291", "name": "Fiber, total dietary", "unitName": "g"}, "amount": 6.7}
        ],
        "foodPortions": [
            {"id": 83136, "amount": 1.0, "gramWeight": 150.0, "modifier": "cup, cubes", "measureUnit": {"name": "undetermined"}},
            {"id": 83138, "amount": 1.0, "gramWeight": 201.0, "modifier": "avocado, NS as to Florida or California", "measureUnit": {"name": "undetermined"}}
        ]
    })
}

fn search_body(query: &str) -> Value {
    if query.contains("avocado") {
        json!({
            "totalHits": 1, "currentPage": 1, "totalPages": 1,
            "foods": [{
                "fdcId": 171705, "description": "Avocados, raw, all commercial varieties", "dataType": "SR Legacy",
                "foodNutrients": [
                    {"nutrientId": 1008, "nutrientName": "Energy", "nutrientNumber": "208", "unitName": "KCAL", "value": 160.0},
                    {"nutrientId": 1003, "nutrientName": "Protein", "nutrientNumber": "203", "unitName": "G", "value": 2.0},
                    {"nutrientId": 1004, "nutrientName": "Total lipid (fat)", "nutrientNumber": "204", "unitName": "G", "value": 14.66},
                    {"nutrientId": 1005, "nutrientName": "Carbohydrate, by difference", "nutrientNumber": "205", "unitName": "G", "value": 8.53}
                ]
            }]
        })
    } else {
        json!({"totalHits": 0, "currentPage": 1, "totalPages": 0, "foods": []})
    }
}

pub async fn start() -> FakeFdc {
    let state = Arc::new(FakeFdcState::default());
    let shared = state.clone();
    let routes = warp::get()
        .and(warp::path::full())
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .and(warp::header::optional::<String>("x-api-key"))
        .map(
            move |path: warp::path::FullPath,
                  query: std::collections::HashMap<String, String>,
                  key: Option<String>| {
                let path = path.as_str().to_owned();
                shared.requests.lock().unwrap().push(path.clone());
                let reply = |status: StatusCode, body: Value| {
                    warp::reply::with_status(warp::reply::json(&body), status)
                };
                if key.as_deref() != Some(KEY) {
                    return warp::reply::with_header(
                        reply(
                            StatusCode::FORBIDDEN,
                            json!({"error": {"code": "API_KEY_INVALID"}}),
                        ),
                        "retry-after",
                        "0",
                    );
                }
                if let Some(status) = shared.failures.lock().unwrap().pop_front() {
                    let status = StatusCode::from_u16(status).unwrap();
                    return warp::reply::with_header(
                        reply(status, json!({"error": "scripted"})),
                        "retry-after",
                        "0",
                    );
                }
                let (status, body) = if path == "/v1/foods/search" {
                    (
                        StatusCode::OK,
                        search_body(
                            &query
                                .get("query")
                                .cloned()
                                .unwrap_or_default()
                                .to_lowercase(),
                        ),
                    )
                } else if path == "/v1/food/171705" {
                    (StatusCode::OK, avocado_details())
                } else {
                    (StatusCode::NOT_FOUND, json!({"error": "not found"}))
                };
                warp::reply::with_header(reply(status, body), "retry-after", "0")
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(routes).incoming(listener).run());
    FakeFdc { address, state }
}
