//! `/api/v1` through real HTTP on loopback: the whole journey of an integrator, auth and scoped
//! keys, validation, limits, idempotent chat, CORS, metrics and the OpenAPI document.

use chrono::{DateTime, Utc};
use health_actors::domain::{Achievement, Streak, UserId, XpEvent};
use health_actors::ports::{Store, Write};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

use crate::fakes::llm::{self, openai_text, openai_tool, FakeLlm, Scripted};
use crate::support::app::{spawn_app, Backend, TestApp};

const ADMIN: &str = "admin-key-for-tests";

/// A JPEG of a meal (tests/fixtures/meal.jpg); the fake vision models answer as if it showed
/// about 83 g of chicken (137 kcal).
const PHOTO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/meal.jpg");

fn chicken(kcal: f64, grams: f64) -> Value {
    json!({"no_food": false, "items": [{"name": "chicken breast", "grams": grams, "kcal": kcal, "protein_g": 25.0, "carbs_g": 0.0, "fat_g": 3.0, "confidence": 0.8}]})
}

/// A vision answer in OpenAI's Chat Completions format.
fn openai_vision(answer: Value) -> Scripted {
    (
        200,
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": answer.to_string()}}], "usage": {"prompt_tokens": 800, "completion_tokens": 60}}),
    )
}

/// A vision answer in Anthropic's Messages format (a tool call).
fn anthropic_vision(answer: Value) -> Scripted {
    (
        200,
        json!({"content": [{"type": "tool_use", "id": "toolu_1", "name": "report_meal", "input": answer}], "stop_reason": "tool_use", "usage": {"input_tokens": 900, "output_tokens": 70}}),
    )
}

/// Variables for two vision agents (OpenAI and Anthropic formats) on the fake provider; the chat
/// agent stays offline.
fn vision_vars(fake: &FakeLlm) -> Vec<(&'static str, String)> {
    let url = fake.base_url();
    vec![
        ("OPENAI_API_KEY", "sk-test".to_owned()),
        ("OPENAI_BASE_URL", format!("{url}/v1")),
        ("ANTHROPIC_API_KEY", "ak-test".to_owned()),
        ("ANTHROPIC_BASE_URL", url),
        ("AGENT_MODEL", "offline:rules".to_owned()),
        (
            "VISION_MODELS",
            "openai:gpt-vision,anthropic:claude-vision".to_owned(),
        ),
        ("VISION_TIMEOUT_SECS", "5".to_owned()),
    ]
}

async fn upload_photo(
    app: &TestApp,
    user: i64,
    photo: &[u8],
    caption: Option<&str>,
) -> (StatusCode, Value) {
    let (content_type, body) = multipart(photo, caption);
    call(
        request(
            app,
            Method::POST,
            &format!("/api/v1/users/{user}/food-entries/photo"),
            Some(ADMIN),
        )
        .header("content-type", content_type)
        .body(body),
    )
    .await
}

/// The files under `<data dir>/photos/<user>`.
fn stored_photos(app: &TestApp, user: i64) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(app.data_dir.path().join("photos").join(user.to_string())) {
        Ok(entries) => entries.map(|entry| entry.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

fn request(app: &TestApp, method: Method, path: &str, key: Option<&str>) -> RequestBuilder {
    let builder = app.client.request(method, app.url(path));
    match key {
        Some(key) => builder.bearer_auth(key),
        None => builder,
    }
}

async fn send(builder: RequestBuilder) -> Response {
    builder
        .send()
        .await
        .expect("request to the test application")
}

/// The status and the JSON body (Null when empty).
async fn call(builder: RequestBuilder) -> (StatusCode, Value) {
    let response = send(builder).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, body)
}

async fn create_user(app: &TestApp, id: i64) -> Value {
    let (status, body) = call(
        request(app, Method::POST, "/api/v1/users", Some(ADMIN))
            .json(&json!({"id": id, "display_name": "Ada", "timezone": "Europe/Paris"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn chat(app: &TestApp, key: &str, user: i64, message: &str) -> (StatusCode, Value) {
    call(
        request(app, Method::POST, "/api/v1/chat", Some(key))
            .json(&json!({"user_id": user, "message": message})),
    )
    .await
}

/// A multipart body with one file field `photo` (and a caption), built by hand.
fn multipart(photo: &[u8], caption: Option<&str>) -> (String, Vec<u8>) {
    let boundary = "health-agent-test-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"meal.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(photo);
    body.extend_from_slice(b"\r\n");
    if let Some(caption) = caption {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\n{caption}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.len() > 10, "a sentence for a person: {body}");
}

/// The "done when" of the API, through the real application with `RUN_MODE=api` and an admin
/// key: create a user, log "2 eggs and a slice of toast" through chat, read it back from the
/// list and the daily summary, upload a photo (two vision agents on a fake provider), delete
/// the user (and their photo).
async fn an_integrator_logs_a_meal_and_deletes_the_user(backend: Backend) {
    let fake = llm::start().await;
    fake.script(
        "/v1/chat/completions",
        [openai_vision(chicken(140.0, 85.0))],
    );
    fake.script("/v1/messages", [anthropic_vision(chicken(130.0, 80.0))]);
    let vision = vision_vars(&fake);
    let mut vars = vec![("RUN_MODE", "api"), ("API_KEYS", ADMIN)];
    vars.extend(vision.iter().map(|(name, value)| (*name, value.as_str())));
    let app = spawn_app(backend, &vars).await;
    let user = create_user(&app, 4242).await;
    assert_eq!(user["id"], 4242);
    assert_eq!(user["profile"]["timezone"], "Europe/Paris");

    let (status, answer) = chat(&app, ADMIN, 4242, "2 eggs and a slice of toast").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let replies = answer["replies"].as_array().unwrap();
    assert!(!replies.is_empty());
    assert!(
        replies[0]["text"].as_str().unwrap().contains("Saved"),
        "{answer}"
    );
    let saved = &answer["saved"]["food_entry"];
    assert_eq!(saved["items"].as_array().unwrap().len(), 2, "{answer}");
    let kcal = saved["total"]["kcal"].as_f64().unwrap();
    assert!((150.0..400.0).contains(&kcal), "{answer}");

    let (status, list) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/4242/food-entries",
        Some(ADMIN),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["entries"].as_array().unwrap().len(), 1);
    assert_eq!(list["entries"][0]["id"], saved["id"]);
    assert_eq!(list["next_cursor"], Value::Null);

    let (status, daily) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/4242/summary/daily",
        Some(ADMIN),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{daily}");
    assert_eq!(daily["entries"], 1);
    assert_eq!(daily["total"]["kcal"], saved["total"]["kcal"]);

    let photo = std::fs::read(PHOTO).expect("the test photo tests/fixtures/meal.jpg");
    let (status, logged) = upload_photo(&app, 4242, &photo, Some("chicken")).await;
    assert_eq!(status, StatusCode::CREATED, "{logged}");
    let agents = logged["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2, "{logged}");
    assert!(agents.iter().all(|a| a["status"] == "answered"), "{logged}");
    assert!(logged["agreement"].as_f64().unwrap() > 0.5, "{logged}");
    let photo_kcal = logged["entry"]["total"]["kcal"].as_f64().unwrap();
    assert!((100.0..=180.0).contains(&photo_kcal), "{logged}");
    assert_eq!(logged["entry"]["has_photo"], true);
    assert_eq!(logged["entry"]["description"], "chicken");
    let photo_id = logged["entry"]["id"].as_str().unwrap().to_owned();
    // The photo is kept as photos/<user>/<entry id>.jpg, byte for byte.
    let kept = stored_photos(&app, 4242);
    assert_eq!(
        kept,
        vec![app
            .data_dir
            .path()
            .join("photos")
            .join("4242")
            .join(format!("{photo_id}.jpg"))]
    );
    assert_eq!(std::fs::read(&kept[0]).unwrap(), photo);
    let (_, list) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/4242/food-entries",
        Some(ADMIN),
    ))
    .await;
    let ids: Vec<&str> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [saved["id"].as_str().unwrap(), photo_id.as_str()]);

    let (status, _) = call(request(
        &app,
        Method::DELETE,
        "/api/v1/users/4242",
        Some(ADMIN),
    ))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/4242",
        Some(ADMIN),
    ))
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/4242/food-entries",
        Some(ADMIN),
    ))
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert!(
        stored_photos(&app, 4242).is_empty(),
        "the photo went with the user"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_integrator_logs_a_meal_on_the_embedded_database() {
    an_integrator_logs_a_meal_and_deletes_the_user(Backend::Embedded).await;
}

#[tokio::test]
async fn an_integrator_logs_a_meal_on_postgres() {
    let Some(backend) = Backend::Postgres.available() else {
        return;
    };
    an_integrator_logs_a_meal_and_deletes_the_user(backend).await;
}

#[tokio::test]
async fn without_api_keys_the_api_refuses_with_a_clear_message() {
    let app = spawn_app(Backend::Embedded, &[("RUN_MODE", "api")]).await;
    let (status, body) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/1",
        Some("anything"),
    ))
    .await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "api_not_configured",
    );
    assert!(body["message"].as_str().unwrap().contains("API_KEYS"));
    // /health stays open.
    assert_eq!(app.get("/health").await.status(), 200);
    app.stop().await.unwrap();
}

/// Bot mode serves `/health` and `/metrics` only: the same route tree without the API.
#[tokio::test]
async fn the_api_is_not_mounted_when_the_run_mode_does_not_serve_it() {
    let data_dir = tempfile::tempdir().unwrap();
    let (store, _) = health_agent::store::SqliteStore::open(&data_dir.path().join("db.sqlite"))
        .await
        .unwrap();
    let state = health_agent::http::HttpState {
        store: std::sync::Arc::new(store),
        metrics: health_agent::telemetry::metrics_handle(),
        metrics_token: None,
        started: std::time::Instant::now(),
        api: None,
        cors_origins: Vec::new(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(
        warp::serve(health_agent::http::routes(state))
            .incoming(listener)
            .run(),
    );
    let client = reqwest::Client::new();
    for path in ["/api/v1/users/1", "/openapi.json"] {
        let response = client
            .get(format!("http://{address}{path}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let health = client
        .get(format!("http://{address}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    server.abort();
}

#[tokio::test]
async fn keys_are_required_and_per_user_keys_act_only_on_their_user() {
    let app = spawn_app(
        Backend::Embedded,
        &[("RUN_MODE", "api"), ("API_KEYS", &format!("other,{ADMIN}"))],
    )
    .await;
    create_user(&app, 1).await;
    create_user(&app, 2).await;

    let (status, body) = call(request(&app, Method::GET, "/api/v1/users/1", None)).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "missing_api_key");
    let (status, body) = call(request(&app, Method::GET, "/api/v1/users/1", Some("wrong"))).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_api_key");
    let (status, body) = call(
        request(&app, Method::GET, "/api/v1/users/1", None).header("authorization", "Basic eDp5"),
    )
    .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "missing_api_key");
    // The second admin key works too.
    let (status, _) = call(request(&app, Method::GET, "/api/v1/users/1", Some("other"))).await;
    assert_eq!(status, StatusCode::OK);

    let (status, created) =
        call(request(&app, Method::POST, "/api/v1/keys", Some(ADMIN)).json(&json!({"user_id": 1})))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("hak_"));

    let (status, body) = call(request(&app, Method::GET, "/api/v1/users/1", Some(&key))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, answer) = chat(&app, &key, 1, "a banana").await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let (status, body) = call(request(&app, Method::GET, "/api/v1/users/2", Some(&key))).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = chat(&app, &key, 2, "a banana").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) =
        call(request(&app, Method::POST, "/api/v1/keys", Some(&key)).json(&json!({"user_id": 1})))
            .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) =
        call(request(&app, Method::POST, "/api/v1/users", Some(&key)).json(&json!({"id": 3})))
            .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = call(
        request(&app, Method::POST, "/api/v1/keys", Some(ADMIN)).json(&json!({"user_id": 99})),
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // Deleting the user deletes their keys.
    let (status, _) = call(request(&app, Method::DELETE, "/api/v1/users/1", Some(&key))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(request(&app, Method::GET, "/api/v1/users/1", Some(&key))).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_api_key");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_same_idempotency_key_replays_the_answer_and_saves_once() {
    let app = spawn_app(
        Backend::Embedded,
        &[("RUN_MODE", "api"), ("API_KEYS", ADMIN)],
    )
    .await;
    create_user(&app, 5).await;
    let send_with_key = |key: &'static str, message: &'static str| {
        request(&app, Method::POST, "/api/v1/chat", Some(ADMIN))
            .header("idempotency-key", key)
            .json(&json!({"user_id": 5, "message": message}))
    };
    let first = send(send_with_key("meal-1", "150 g chicken breast with rice")).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    let second = send(send_with_key("meal-1", "150 g chicken breast with rice")).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(second.headers()["idempotent-replay"], "true");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second);

    let (status, body) = call(send_with_key("meal-1", "a banana")).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = call(send_with_key("not valid", "a banana")).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));

    let (_, list) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/5/food-entries",
        Some(ADMIN),
    ))
    .await;
    assert_eq!(list["entries"].as_array().unwrap().len(), 1, "{list}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn bodies_are_validated_limited_and_typed() {
    let app = spawn_app(
        Backend::Embedded,
        &[("RUN_MODE", "api"), ("API_KEYS", ADMIN)],
    )
    .await;
    create_user(&app, 6).await;

    let (status, body) = chat(&app, ADMIN, 6, "   ").await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert!(body["message"].as_str().unwrap().starts_with("message"));
    // The limit counts the message as sent (as the schema's maxLength does), blank space too.
    let padded = format!("2 eggs{}", " ".repeat(4_000));
    let (status, body) = chat(&app, ADMIN, 6, &padded).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert!(
        body["message"].as_str().unwrap().contains("at most 4000"),
        "{body}"
    );
    let (status, body) = chat(&app, ADMIN, 77, "hello").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let (status, body) =
        call(request(&app, Method::POST, "/api/v1/chat", Some(ADMIN)).json(&json!({"user_id": 6})))
            .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert!(
        body["message"].as_str().unwrap().contains("message"),
        "{body}"
    );
    let (status, body) = call(
        request(&app, Method::POST, "/api/v1/chat", Some(ADMIN))
            .header("content-type", "text/plain")
            .body("hello"),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let huge = "x".repeat(65 * 1024);
    let (status, body) = call(
        request(&app, Method::POST, "/api/v1/chat", Some(ADMIN))
            .json(&json!({"user_id": 6, "message": huge})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    let (content_type, body) = multipart(&vec![0xFF; 10 * 1024 * 1024 + 1], None);
    let (status, body) = call(
        request(
            &app,
            Method::POST,
            "/api/v1/users/6/food-entries/photo",
            Some(ADMIN),
        )
        .header("content-type", content_type)
        .body(body),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let (content_type, body) = multipart(b"GIF89a not a supported image", None);
    let (status, body) = call(
        request(
            &app,
            Method::POST,
            "/api/v1/users/6/food-entries/photo",
            Some(ADMIN),
        )
        .header("content-type", content_type)
        .body(body),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let (status, body) = call(
        request(
            &app,
            Method::POST,
            "/api/v1/users/6/food-entries/photo",
            Some(ADMIN),
        )
        .json(&json!({"photo": "base64?"})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    let (status, body) =
        call(request(&app, Method::POST, "/api/v1/users", Some(ADMIN)).json(&json!({"id": 6})))
            .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = call(
        request(&app, Method::POST, "/api/v1/users", Some(ADMIN))
            .json(&json!({"timezone": "Mars/Olympus"})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert!(body["message"].as_str().unwrap().starts_with("timezone"));
    let (status, created) =
        call(request(&app, Method::POST, "/api/v1/users", Some(ADMIN)).json(&json!({}))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(created["id"].as_i64().unwrap() < 0, "{created}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    let app = spawn_app(
        Backend::Embedded,
        &[
            ("RUN_MODE", "api"),
            ("API_KEYS", &format!("{ADMIN},second")),
            ("API_RATE_LIMIT_PER_MINUTE", "3"),
        ],
    )
    .await;
    for _ in 0..3 {
        let (status, _) = call(request(&app, Method::GET, "/api/v1/users/1", Some(ADMIN))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let response = send(request(&app, Method::GET, "/api/v1/users/1", Some(ADMIN))).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    // Another key has its own bucket.
    let (status, _) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/1",
        Some("second"),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("http_rate_limited_total 1"), "{metrics}");
    assert!(
        metrics.contains(r#"http_requests_total{route="/api/v1/users/{user_id}",status="429"}"#),
        "{metrics}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn profile_and_goals_are_read_and_patched() {
    let app = spawn_app(
        Backend::Embedded,
        &[("RUN_MODE", "api"), ("API_KEYS", ADMIN)],
    )
    .await;
    create_user(&app, 8).await;
    let (status, profile) = call(
        request(&app, Method::PATCH, "/api/v1/users/8/profile", Some(ADMIN)).json(&json!({
            "age_years": 34, "sex": "female", "height_cm": 168.0, "weight_kg": 61.5,
            "activity": "moderate", "goal": "maintain", "timezone": "America/New_York"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["age_years"], 34);
    assert_eq!(profile["display_name"], "Ada");
    assert_eq!(profile["timezone"], "America/New_York");
    let (_, profile) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/8/profile",
        Some(ADMIN),
    ))
    .await;
    assert_eq!(profile["activity"], "moderate");
    assert_eq!(profile["timezone"], "America/New_York");

    let (status, body) = call(
        request(&app, Method::PATCH, "/api/v1/users/8/profile", Some(ADMIN))
            .json(&json!({"sex": "sometimes"})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert!(body["message"].as_str().unwrap().starts_with("sex"));
    let (status, body) = call(
        request(&app, Method::PATCH, "/api/v1/users/8/profile", Some(ADMIN))
            .json(&json!({"height_cm": 5000})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );

    let (status, goals) = call(
        request(&app, Method::PATCH, "/api/v1/users/8/goals", Some(ADMIN))
            .json(&json!({"kcal": 1800, "protein_g": 120})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{goals}");
    let (_, goals) = call(
        request(&app, Method::PATCH, "/api/v1/users/8/goals", Some(ADMIN))
            .json(&json!({"protein_g": null})),
    )
    .await;
    assert_eq!(
        goals,
        json!({"kcal": 1800.0, "protein_g": null, "carbs_g": null, "fat_g": null})
    );
    let (status, body) = call(
        request(&app, Method::PATCH, "/api/v1/users/8/goals", Some(ADMIN))
            .json(&json!({"kcal": -5})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    let (_, daily) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/8/summary/daily",
        Some(ADMIN),
    ))
    .await;
    assert_eq!(daily["remaining"]["kcal"], 1800.0);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn food_entries_are_created_paged_corrected_and_deleted() {
    let app = spawn_app(
        Backend::Embedded,
        &[("RUN_MODE", "api"), ("API_KEYS", ADMIN)],
    )
    .await;
    create_user(&app, 9).await;
    let path = "/api/v1/users/9/food-entries";
    let meals = [
        ("2026-03-01T07:30:00Z", "a banana"),
        ("2026-03-01T12:00:00Z", "150 g chicken breast with rice"),
        ("2026-03-02T19:00:00Z", "a cup of milk"),
    ];
    let mut ids = Vec::new();
    for (eaten_at, text) in meals {
        let (status, created) = call(
            request(&app, Method::POST, path, Some(ADMIN))
                .json(&json!({"text": text, "eaten_at": eaten_at})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push(created["entry"]["id"].as_str().unwrap().to_owned());
    }
    let (status, body) = call(
        request(&app, Method::POST, path, Some(ADMIN)).json(&json!({"text": "a plate of zorblax"})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert!(
        body["message"].as_str().unwrap().contains("zorblax"),
        "{body}"
    );
    // An amount that must be a typo is not saved, and the answer says why.
    let (status, body) =
        call(request(&app, Method::POST, path, Some(ADMIN)).json(&json!({"text": "1000 eggs"})))
            .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert!(
        body["message"].as_str().unwrap().contains("comes to 50 kg"),
        "{body}"
    );
    let (status, created) = call(
        request(&app, Method::POST, path, Some(ADMIN))
            .json(&json!({"text": "1000 eggs and a banana", "eaten_at": "2026-03-03T08:00:00Z"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["entry"]["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        created["left_out"],
        json!([{"input": "1000 eggs", "reason": "comes to 50 kg, which looks like a typo"}])
    );

    let (_, day) = call(request(
        &app,
        Method::GET,
        &format!("{path}?date=2026-03-01"),
        Some(ADMIN),
    ))
    .await;
    assert_eq!(day["entries"].as_array().unwrap().len(), 2, "{day}");
    let (_, page) = call(request(
        &app,
        Method::GET,
        &format!("{path}?from=2026-03-01&to=2026-03-02&limit=2"),
        Some(ADMIN),
    ))
    .await;
    assert_eq!(page["entries"][0]["id"], ids[0]);
    assert_eq!(page["entries"][1]["id"], ids[1]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = call(request(
        &app,
        Method::GET,
        &format!("{path}?from=2026-03-01&to=2026-03-02&limit=2&cursor={cursor}"),
        Some(ADMIN),
    ))
    .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    assert_eq!(page["entries"][0]["id"], ids[2]);
    assert_eq!(page["next_cursor"], Value::Null);
    let (status, body) = call(request(
        &app,
        Method::GET,
        &format!("{path}?date=yesterday"),
        Some(ADMIN),
    ))
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    let (status, body) = call(request(
        &app,
        Method::GET,
        &format!("{path}?from=2026-03-02&to=2026-03-01"),
        Some(ADMIN),
    ))
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );

    let entry = format!("{path}/{}", ids[1]);
    let (status, corrected) = call(
        request(&app, Method::PATCH, &entry, Some(ADMIN))
            .json(&json!({"items": [{"index": 1, "grams": 100}], "meal_type": "dinner"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{corrected}");
    assert_eq!(corrected["items"][1]["grams"], 100.0);
    assert_eq!(corrected["meal_type"], "dinner");
    let (status, body) = call(
        request(&app, Method::PATCH, &entry, Some(ADMIN))
            .json(&json!({"items": [{"index": 7, "grams": 100}]})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );

    let (_, week) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/9/summary/weekly?end=2026-03-02",
        Some(ADMIN),
    ))
    .await;
    assert_eq!(week["days"].as_array().unwrap().len(), 7, "{week}");
    assert_eq!(week["days_logged"], 2);

    let (status, _) = call(request(&app, Method::DELETE, &entry, Some(ADMIN))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(request(&app, Method::DELETE, &entry, Some(ADMIN))).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn memories_are_listed_and_unknown_ones_cannot_be_deleted() {
    let app = spawn_app(
        Backend::Embedded,
        &[("RUN_MODE", "api"), ("API_KEYS", ADMIN)],
    )
    .await;
    create_user(&app, 10).await;
    let (status, page) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/10/memories",
        Some(ADMIN),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, json!({"memories": [], "next_cursor": null}));
    let (status, body) = call(request(
        &app,
        Method::DELETE,
        "/api/v1/users/10/memories/0191e3a4-7b2c-7d3e-9f40-1a2b3c4d5e6f",
        Some(ADMIN),
    ))
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn cors_preflight_allows_only_configured_origins() {
    let app = spawn_app(
        Backend::Embedded,
        &[
            ("RUN_MODE", "api"),
            ("API_KEYS", ADMIN),
            ("CORS_ORIGINS", "https://app.example.com"),
        ],
    )
    .await;
    let allowed = send(
        request(&app, Method::OPTIONS, "/api/v1/chat", None)
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            ),
    )
    .await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let refused = send(
        request(&app, Method::OPTIONS, "/api/v1/chat", None)
            .header("origin", "https://evil.example.com")
            .header("access-control-request-method", "POST"),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_the_bearer_scheme() {
    let app = spawn_app(
        Backend::Embedded,
        &[("RUN_MODE", "api"), ("API_KEYS", ADMIN)],
    )
    .await;
    let (status, document) = call(request(&app, Method::GET, "/openapi.json", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/v1/chat",
        "/api/v1/keys",
        "/api/v1/users",
        "/api/v1/users/{user_id}",
        "/api/v1/users/{user_id}/profile",
        "/api/v1/users/{user_id}/goals",
        "/api/v1/users/{user_id}/food-entries",
        "/api/v1/users/{user_id}/food-entries/photo",
        "/api/v1/users/{user_id}/food-entries/{entry_id}",
        "/api/v1/users/{user_id}/summary/daily",
        "/api/v1/users/{user_id}/summary/weekly",
        "/api/v1/users/{user_id}/memories",
        "/api/v1/users/{user_id}/memories/{memory_id}",
        "/api/v1/users/{user_id}/progress",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the document");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_photo_with_no_food_or_no_answer_saves_nothing_and_says_why() {
    let fake = llm::start().await;
    let vision = vision_vars(&fake);
    let mut vars = vec![("RUN_MODE", "api"), ("API_KEYS", ADMIN)];
    vars.extend(vision.iter().map(|(name, value)| (*name, value.as_str())));
    let app = spawn_app(Backend::Embedded, &vars).await;
    create_user(&app, 31).await;
    let photo = std::fs::read(PHOTO).expect("the test photo tests/fixtures/meal.jpg");

    // Nothing scripted: both providers answer 500.
    let (status, body) = upload_photo(&app, 31, &photo, None).await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Photo analysis is unavailable right now, describe it instead"),
        "{body}"
    );

    // Both agents see no food.
    fake.script(
        "/v1/chat/completions",
        [openai_vision(json!({"no_food": true, "items": []}))],
    );
    fake.script(
        "/v1/messages",
        [anthropic_vision(json!({"no_food": true, "items": []}))],
    );
    let (status, body) = upload_photo(&app, 31, &photo, Some("my desk")).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("photo:") && message.contains("nothing was saved"),
        "{body}"
    );

    let (_, list) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/31/food-entries",
        Some(ADMIN),
    ))
    .await;
    assert_eq!(list["entries"], json!([]), "{list}");
    assert!(stored_photos(&app, 31).is_empty());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn without_vision_models_a_photo_is_refused_with_503() {
    let app = spawn_app(
        Backend::Embedded,
        &[("RUN_MODE", "api"), ("API_KEYS", ADMIN)],
    )
    .await;
    create_user(&app, 32).await;
    let photo = std::fs::read(PHOTO).expect("the test photo tests/fixtures/meal.jpg");
    let (status, body) = upload_photo(&app, 32, &photo, Some("lunch")).await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
    assert!(
        body["message"].as_str().unwrap().contains("VISION_MODELS"),
        "{body}"
    );
    assert!(stored_photos(&app, 32).is_empty());
    app.stop().await.unwrap();
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

#[tokio::test]
async fn progress_shows_xp_streaks_and_achievements_from_the_store() {
    let Some(backend) = Backend::Postgres.available() else {
        return;
    };
    let app = spawn_app(backend, &[("RUN_MODE", "api"), ("API_KEYS", ADMIN)]).await;
    create_user(&app, 40).await;
    let path = "/api/v1/users/40/progress";

    // Nothing earns progress yet: every list is empty, and the total is 0, not invented.
    let (status, empty) = call(request(&app, Method::GET, path, Some(ADMIN))).await;
    assert_eq!(status, StatusCode::OK, "{empty}");
    assert_eq!(
        empty,
        json!({"xp_total": 0, "xp_events": [], "next_cursor": null, "streaks": [], "achievements": []})
    );

    let database_url = app
        .database_url()
        .expect("a PostgreSQL database")
        .to_owned();
    let (store, _) = health_agent::store::PostgresStore::connect(&database_url, 2)
        .await
        .unwrap();
    let xp = |n: u128, amount: i64, created_at: &str| XpEvent {
        id: uuid::Uuid::from_u128(n),
        user_id: UserId(40),
        amount,
        reason: format!("reason {n}"),
        created_at: at(created_at),
    };
    store
        .apply(&[
            Write::InsertXp(xp(1, 10, "2026-03-01T08:00:00Z")),
            Write::InsertXp(xp(2, 5, "2026-03-02T08:00:00Z")),
            Write::InsertXp(xp(3, 20, "2026-03-03T08:00:00Z")),
            Write::UpsertStreak(Streak {
                user_id: UserId(40),
                domain: "food".to_owned(),
                current: 3,
                best: 7,
                last_date: Some("2026-03-03".parse().unwrap()),
                freezes_left: 1,
            }),
            Write::InsertAchievement(Achievement {
                user_id: UserId(40),
                code: "first_meal".to_owned(),
                earned_at: at("2026-03-01T08:00:01Z"),
            }),
        ])
        .await
        .unwrap();

    let (status, page) = call(request(
        &app,
        Method::GET,
        &format!("{path}?limit=2"),
        Some(ADMIN),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["xp_total"], 35);
    let amounts: Vec<i64> = page["xp_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [20, 5], "newest first: {page}");
    assert_eq!(page["xp_events"][0]["reason"], "reason 3");
    assert_eq!(
        page["streaks"],
        json!([{"domain": "food", "current": 3, "best": 7, "last_date": "2026-03-03", "freezes_left": 1}])
    );
    assert_eq!(
        page["achievements"],
        json!([{"code": "first_meal", "earned_at": "2026-03-01T08:00:01Z"}])
    );
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = call(request(
        &app,
        Method::GET,
        &format!("{path}?limit=2&cursor={cursor}"),
        Some(ADMIN),
    ))
    .await;
    assert_eq!(rest["xp_events"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["xp_events"][0]["amount"], 10);
    assert_eq!(rest["next_cursor"], Value::Null);
    assert_eq!(rest["xp_total"], 35);

    let (status, body) = call(request(
        &app,
        Method::GET,
        &format!("{path}?cursor=not-a-cursor"),
        Some(ADMIN),
    ))
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn whole_numbers_are_integers_and_the_document_lists_the_accepted_names() {
    let app = spawn_app(
        Backend::Embedded,
        &[("RUN_MODE", "api"), ("API_KEYS", ADMIN)],
    )
    .await;
    // JSON Schema's integer includes 1324.0.
    let (status, user) = call(
        request(&app, Method::POST, "/api/v1/users", Some(ADMIN))
            .json(&json!({"id": 1324.0, "timezone": "Asia/Tokyo"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["id"], 1324);
    let (status, profile) = call(
        request(
            &app,
            Method::PATCH,
            "/api/v1/users/1324/profile",
            Some(ADMIN),
        )
        .json(&json!({"age_years": 48.0})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["age_years"], 48);
    let (status, body) = call(
        request(&app, Method::POST, "/api/v1/keys", Some(ADMIN)).json(&json!({"user_id": 1324.5})),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    let (status, body) = call(
        request(&app, Method::POST, "/api/v1/users", Some(ADMIN))
            .json(&json!({"id": 9007199254740992_i64})),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    // Time zones are spelt exactly as the document lists them.
    let (status, body) = call(
        request(
            &app,
            Method::PATCH,
            "/api/v1/users/1324/profile",
            Some(ADMIN),
        )
        .json(&json!({"timezone": " Asia/Tokyo"})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );

    let (_, document) = call(request(&app, Method::GET, "/openapi.json", None)).await;
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["MealType"]["enum"],
        json!(["breakfast", "lunch", "dinner", "snack"])
    );
    let zones = schemas["TimeZone"]["enum"].as_array().unwrap();
    assert!(zones.contains(&json!("Asia/Tokyo")) && zones.len() > 300);
    // PATCH bodies are merge patches: no field is required.
    assert!(schemas["ProfilePatch"].get("required").is_none());
    assert!(document["paths"]["/api/v1/users/{user_id}/progress"]["get"].is_object());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn chat_on_the_model_path_answers_with_the_saved_entry() {
    let fake = llm::start().await;
    fake.script(
        "/v1/chat/completions",
        [
            openai_tool(
                "log_food",
                json!({"description": "two eggs", "items": [{"name": "egg", "grams": 100}]}),
            ),
            openai_text("Logged two eggs: 143 kcal."),
        ],
    );
    let url = format!("{}/v1", fake.base_url());
    let app = spawn_app(
        Backend::Embedded,
        &[
            ("RUN_MODE", "api"),
            ("API_KEYS", ADMIN),
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", url.as_str()),
            ("AGENT_MODEL", "openai:gpt-test"),
            ("ENABLE_MEM0", "false"),
        ],
    )
    .await;
    create_user(&app, 51).await;
    let (status, answer) = chat(&app, ADMIN, 51, "I had two eggs").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["replies"][0]["text"], "Logged two eggs: 143 kcal.");
    let saved = &answer["saved"]["food_entry"];
    assert!(
        saved.is_object(),
        "the model's entry is in the answer: {answer}"
    );
    let kcal = saved["total"]["kcal"].as_f64().unwrap();
    assert!((kcal - 143.0).abs() < 1.0, "{answer}");
    let (_, list) = call(request(
        &app,
        Method::GET,
        "/api/v1/users/51/food-entries",
        Some(ADMIN),
    ))
    .await;
    assert_eq!(list["entries"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["entries"][0]["id"], saved["id"], "{list}");
    app.stop().await.unwrap();
}
