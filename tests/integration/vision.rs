//! Photos through the real actor tree: vision agents against fake OpenAI and Anthropic servers on
//! loopback, the consensus, and what is (or is not) saved. Uses the JPEG of
//! `tests/fixtures/meal.jpg`; the fake models answer as if it showed about 83 g of chicken
//! (137 kcal).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use health_actors::conversation::TurnOutcome;
use health_actors::domain::{ChatId, UserId};
use health_actors::inbound::{Inbound, InboundContent};
use health_actors::ports::Outbox;
use health_actors::testing::RecordingOutbox;
use health_agent::startup::Core;
use serde_json::json;

use crate::fakes::llm::{self, FakeLlm, Scripted};
use crate::support::app::test_settings;

const PHOTO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/meal.jpg");

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
    let bytes = std::fs::read(PHOTO).expect("the test photo tests/fixtures/meal.jpg");
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

/// A core with three vision agents: two OpenAI models (told apart by the fake through the
/// request's `model`) and one Anthropic model.
async fn core_with_three(fake: &FakeLlm, data_dir: &std::path::Path, timeout_secs: &str) -> Core {
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
            (
                "VISION_MODELS",
                "openai:gpt-a,openai:gpt-wild,anthropic:claude-vision",
            ),
            ("VISION_TIMEOUT_SECS", timeout_secs),
        ],
    );
    Core::start(&settings).await.unwrap()
}

async fn saved(core: &Core, user: i64) -> Vec<health_actors::domain::FoodEntry> {
    let today = Utc::now().date_naive();
    core.store
        .food_entries(
            UserId(user),
            today - chrono::Duration::days(1),
            today + chrono::Duration::days(1),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_wild_agent_among_three_is_dropped_and_the_consensus_follows_the_two_that_agree() {
    let fake = llm::start().await;
    let completions = "/v1/chat/completions";
    fake.script_model(completions, "gpt-a", [openai_vision(chicken(140.0, 85.0))]);
    // Three times the others, on a photo of about 83 g of chicken (137 kcal).
    fake.script_model(
        completions,
        "gpt-wild",
        [openai_vision(chicken(410.0, 250.0))],
    );
    fake.script("/v1/messages", [anthropic_vision(chicken(130.0, 80.0))]);
    let data_dir = tempfile::tempdir().unwrap();
    let core = core_with_three(&fake, data_dir.path(), "5").await;
    let outbox = RecordingOutbox::new();

    let reply = send_photo(&core, &outbox, 31).await;
    assert!(
        reply.contains("Left out openai:gpt-wild") && reply.contains("more than twice"),
        "{reply}"
    );
    let entries = saved(&core, 31).await;
    assert_eq!(entries.len(), 1);
    let kcal = entries[0].total.kcal;
    assert!((125.0..=145.0).contains(&kcal), "{kcal} kcal: {reply}");
    assert!(
        (78.0..=87.0).contains(&entries[0].items[0].grams),
        "{entries:?}"
    );
    // Every agent's own numbers are kept with the entry, the wild one's too, for calibration.
    let kept = core
        .store
        .vision_estimates(UserId(31), entries[0].id)
        .await
        .unwrap();
    assert_eq!(kept.len(), 3, "{kept:?}");
    let wild = kept.iter().find(|k| k.agent == "openai:gpt-wild").unwrap();
    assert_eq!((wild.grams, wild.kcal), (250.0, 410.0));
    // The reply carries Undo and Edit.
    assert!(outbox.sent().iter().any(|sent| matches!(
        sent,
        health_actors::testing::Sent::Buttons { buttons, .. }
            if buttons[0].iter().map(|b| b.label.as_str()).eq(["Undo", "Edit"])
    )));
    core.shutdown().await;
}

#[tokio::test]
async fn a_timed_out_agent_leaves_the_result_to_the_others_within_the_deadline() {
    let fake = llm::start().await;
    let completions = "/v1/chat/completions";
    fake.script_model(completions, "gpt-a", [openai_vision(chicken(140.0, 85.0))]);
    fake.script_model(
        completions,
        "gpt-wild",
        [openai_vision(chicken(135.0, 82.0))],
    );
    fake.delay_model(completions, "gpt-wild", Duration::from_secs(30));
    fake.script("/v1/messages", [anthropic_vision(chicken(130.0, 80.0))]);
    let data_dir = tempfile::tempdir().unwrap();
    let core = core_with_three(&fake, data_dir.path(), "2").await;
    let outbox = RecordingOutbox::new();

    let started = std::time::Instant::now();
    let reply = send_photo(&core, &outbox, 32).await;
    let elapsed = started.elapsed();
    // The deadline is 2 s; the slow agent would take 30 s.
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert!(reply.contains("2 of 3 photo readers"), "{reply}");
    let entries = saved(&core, 32).await;
    assert_eq!(entries.len(), 1);
    assert!((120.0..=150.0).contains(&entries[0].total.kcal), "{reply}");
    let kept = core
        .store
        .vision_estimates(UserId(32), entries[0].id)
        .await
        .unwrap();
    assert!(
        kept.iter().all(|k| k.agent != "openai:gpt-wild"),
        "{kept:?}"
    );
    core.shutdown().await;
}

#[tokio::test]
async fn corrections_of_photo_entries_calibrate_the_next_photo() {
    let fake = llm::start().await;
    let completions = "/v1/chat/completions";
    // Every photo: gpt-a and claude near the truth (80 g), "gpt-wild" 50 % over (not wild enough
    // to be dropped as an outlier, so only calibration can discount it).
    let photos = 4;
    fake.script_model(
        completions,
        "gpt-a",
        (0..photos).map(|_| openai_vision(chicken(140.0, 85.0))),
    );
    fake.script_model(
        completions,
        "gpt-wild",
        (0..photos).map(|_| openai_vision(chicken(198.0, 120.0))),
    );
    fake.script(
        "/v1/messages",
        (0..photos).map(|_| anthropic_vision(chicken(132.0, 80.0))),
    );
    let data_dir = tempfile::tempdir().unwrap();
    let core = core_with_three(&fake, data_dir.path(), "5").await;
    let outbox = RecordingOutbox::new();
    let user = 33;

    let mut saved_grams = Vec::new();
    for photo in 0..photos {
        send_photo(&core, &outbox, user).await;
        let entries = saved(&core, user).await;
        let latest = entries.iter().max_by_key(|e| e.created_at).unwrap();
        saved_grams.push(latest.items[0].grams);
        if photo + 1 < photos {
            let reply = say(&core, &outbox, user, "the chicken was 80 g").await;
            assert!(
                reply.contains("→ 80 g") && reply.contains("Noted"),
                "{reply}"
            );
        }
    }
    let record = core
        .store
        .corrected_vision_estimates(UserId(user), 100)
        .await
        .unwrap();
    assert_eq!(record.len(), 3 * (photos - 1), "{record:?}");
    assert!(record.iter().all(|r| r.corrected_grams == Some(80.0)));
    // The first photo's consensus (85 g) moves toward the corrected 80 g once the agents' track
    // records are known.
    assert!(saved_grams[0] > 84.0, "{saved_grams:?}");
    let last = saved_grams[photos - 1];
    assert!(
        last < saved_grams[0] - 1.5 && last >= 79.0,
        "{saved_grams:?}"
    );
    core.shutdown().await;
}

async fn say(core: &Core, outbox: &Arc<RecordingOutbox>, user: i64, text: &str) -> String {
    crate::support::turn::say(core.conversations(), outbox, user, text).await
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
