//! Photos through the real actor tree: vision agents against fake OpenAI and Anthropic servers on
//! loopback, the consensus, and what is (or is not) saved. Uses a real photo from
//! `../shared/benchmarks/photos/` (83 g chicken, 137 kcal).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use health_actors::conversation::TurnOutcome;
use health_actors::domain::UserId;
use health_actors::inbound::{ChatId, Inbound, InboundContent};
use health_actors::ports::Outbox;
use health_actors::testing::RecordingOutbox;
use health_agent::startup::Core;
use serde_json::json;

use crate::fakes::llm::{self, FakeLlm, Scripted};
use crate::support::app::test_settings;

const PHOTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/benchmarks/photos/dish_1550704750_camera_A.jpeg"
);

fn chicken(kcal: f64, grams: f64) -> serde_json::Value {
    json!({"no_food": false, "items": [{"name": "chicken breast", "grams": grams, "kcal": kcal, "protein_g": 25.0, "carbs_g": 0.0, "fat_g": 3.0, "confidence": 0.8}]})
}

fn openai_vision(answer: serde_json::Value) -> Scripted {
    (
        200,
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": answer.to_string()}}], "usage": {"prompt_tokens": 800, "completion_tokens": 60}}),
    )
}

fn anthropic_vision(answer: serde_json::Value) -> Scripted {
    (
        200,
        json!({"content": [{"type": "tool_use", "id": "toolu_1", "name": "report_meal", "input": answer}], "stop_reason": "tool_use", "usage": {"input_tokens": 900, "output_tokens": 70}}),
    )
}

async fn core(fake: &FakeLlm, data_dir: &std::path::Path) -> Core {
    let url = fake.base_url();
    let openai_url = format!("{url}/v1");
    let settings = test_settings(
        data_dir,
        &[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", &openai_url),
            ("ANTHROPIC_API_KEY", "ak-test"),
            ("ANTHROPIC_BASE_URL", &url),
            ("AGENT_MODEL", "offline:rules"),
            ("VISION_MODELS", "openai:gpt-vision,anthropic:claude-vision"),
            ("VISION_TIMEOUT_SECS", "5"),
        ],
    );
    Core::start(&settings).await.unwrap()
}

async fn send_photo(core: &Core, outbox: &Arc<RecordingOutbox>, user: i64) -> String {
    let bytes = std::fs::read(PHOTO).expect("the shared benchmark photo");
    let reply: Arc<dyn Outbox> = outbox.clone();
    let inbound = Inbound::new(
        UserId(user),
        ChatId(user),
        InboundContent::Photo {
            bytes,
            caption: None,
        },
        reply,
    );
    let outcome = core
        .conversations()
        .submit_and_wait(inbound, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(outcome, TurnOutcome::Answered);
    outbox.texts_to(ChatId(user)).join("\n")
}

async fn entries(core: &Core, user: i64) -> usize {
    let today = Utc::now().date_naive();
    core.store
        .food_entries(
            UserId(user),
            today - chrono::Duration::days(1),
            today + chrono::Duration::days(1),
        )
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn two_agents_agree_and_the_consensus_is_saved() {
    let fake = llm::start().await;
    fake.script(
        "/v1/chat/completions",
        [openai_vision(chicken(140.0, 85.0))],
    );
    fake.script("/v1/messages", [anthropic_vision(chicken(130.0, 80.0))]);
    let data_dir = tempfile::tempdir().unwrap();
    let core = core(&fake, data_dir.path()).await;
    let outbox = RecordingOutbox::new();
    let reply = send_photo(&core, &outbox, 21).await;
    assert!(reply.contains("From your photo"), "{reply}");
    assert!(reply.contains("chicken"), "{reply}");
    assert_eq!(entries(&core, 21).await, 1);
    // The image reached both providers in their own formats.
    let openai = &fake.requests("/v1/chat/completions")[0].body;
    assert!(openai["messages"][0]["content"][1]["image_url"]["url"]
        .as_str()
        .unwrap()
        .starts_with("data:image/jpeg;base64,/9j/"));
    let anthropic = &fake.requests("/v1/messages")[0].body;
    assert_eq!(
        anthropic["messages"][0]["content"][0]["source"]["media_type"],
        "image/jpeg"
    );
    core.shutdown().await;
}

#[tokio::test]
async fn no_answer_or_no_food_saves_nothing() {
    let fake = llm::start().await;
    // Nothing scripted: both providers answer 500.
    let data_dir = tempfile::tempdir().unwrap();
    let core = core(&fake, data_dir.path()).await;
    let outbox = RecordingOutbox::new();
    let reply = send_photo(&core, &outbox, 22).await;
    assert!(
        reply.contains("unavailable") && reply.contains("nothing was saved"),
        "{reply}"
    );
    assert_eq!(entries(&core, 22).await, 0);

    fake.script(
        "/v1/chat/completions",
        [openai_vision(json!({"no_food": true, "items": []}))],
    );
    fake.script(
        "/v1/messages",
        [(
            200,
            json!({"content": [{"type": "text", "text": "not json at all"}]}),
        )],
    );
    let reply = send_photo(&core, &outbox, 23).await;
    assert!(reply.contains("don't see food"), "{reply}");
    assert_eq!(entries(&core, 23).await, 0);
    core.shutdown().await;
}

/// The JSON document at the start of stdout (log lines may follow it).
fn first_json(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    serde_json::Deserializer::from_str(&text)
        .into_iter::<serde_json::Value>()
        .next()
        .expect("a JSON document")
        .unwrap_or_else(|error| panic!("{error}: {text}"))
}

fn estimate_photo(env: &[(&str, &str)], data_dir: &std::path::Path) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_health-agent"));
    command
        .args(["estimate", "--json", "--photo", PHOTO])
        .env_clear()
        .env("DATA_DIR", data_dir);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[tokio::test]
async fn estimate_photo_prints_the_agents_and_the_agreement_or_fails_without_kcal() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = estimate_photo(&[], data_dir.path());
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("VISION_MODELS"));

    let fake = llm::start().await;
    fake.script(
        "/v1/chat/completions",
        [openai_vision(chicken(140.0, 85.0))],
    );
    fake.script("/v1/messages", [anthropic_vision(chicken(130.0, 80.0))]);
    let url = fake.base_url();
    let openai_url = format!("{url}/v1");
    let env: Vec<(&'static str, String)> = vec![
        ("OPENAI_API_KEY", "sk-test".into()),
        ("OPENAI_BASE_URL", openai_url),
        ("ANTHROPIC_API_KEY", "ak-test".into()),
        ("ANTHROPIC_BASE_URL", url),
        (
            "VISION_MODELS",
            "openai:gpt-vision,anthropic:claude-vision".into(),
        ),
        ("LOG_LEVEL", "warn".into()),
    ];
    let run = |env: Vec<(&'static str, String)>, dir: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
            estimate_photo(&env, &dir)
        })
    };
    let output = run(env.clone(), data_dir.path().to_owned()).await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = first_json(&output.stdout);
    assert_eq!(json["agents"].as_array().unwrap().len(), 2);
    assert!(json["agreement"].as_f64().unwrap() > 0.5, "{json}");
    let kcal = json["total"]["kcal"].as_f64().unwrap();
    assert!((100.0..=180.0).contains(&kcal), "{json}");

    // Both agents failing (nothing scripted any more): non-zero, and no kcal printed.
    let output = run(env, data_dir.path().to_owned()).await.unwrap();
    assert!(!output.status.success());
    let json = first_json(&output.stdout);
    assert!(
        json["items"].as_array().unwrap().is_empty() && json.get("total").is_none(),
        "{json}"
    );
    assert!(json["agents"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["total_kcal"].is_null()));
}
