//! The offline agent end to end: the real actor tree, the real stores, the `chat` binary.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;

use chrono::Utc;
use health_actors::conversation::TurnOutcome;
use health_actors::domain::{ChatId, UserId};
use health_actors::inbound::{Inbound, InboundContent};
use health_actors::ports::Outbox;
use health_actors::testing::RecordingOutbox;
use health_agent::startup::Core;

use crate::support::app::test_settings;
use crate::support::db::{database_url, TestDatabase};
use crate::support::turn::{self, TURN};

async fn say(core: &Core, outbox: &Arc<RecordingOutbox>, user: i64, text: &str) -> String {
    turn::say(core.conversations(), outbox, user, text).await
}

/// The conversation behaviours, against whichever store `extra` selects.
async fn logs_answers_and_undoes(extra: &[(&str, &str)]) {
    let data_dir = tempfile::tempdir().unwrap();
    let core = Core::start(&test_settings(data_dir.path(), extra))
        .await
        .unwrap();
    let outbox = RecordingOutbox::new();
    let user = 4242;

    let reply = say(&core, &outbox, user, "2 eggs and a slice of toast").await;
    assert!(reply.contains("143 kcal"), "{reply}");
    assert!(reply.contains("[built-in table]"), "{reply}");
    let today = Utc::now().date_naive();
    let from = today - chrono::Duration::days(1);
    let to = today + chrono::Duration::days(1);
    let entries = core
        .store
        .food_entries(UserId(user), from, to)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "the reply came after the commit");
    assert_eq!(entries[0].items.len(), 2);

    let reply = say(&core, &outbox, user, "my goal is 1800 kcal").await;
    assert!(reply.contains("1800 kcal"), "{reply}");
    assert_eq!(
        core.store
            .user(UserId(user))
            .await
            .unwrap()
            .unwrap()
            .goals
            .kcal,
        Some(1800.0)
    );

    let reply = say(&core, &outbox, user, "how much protein today?").await;
    assert!(reply.contains("15 g of protein"), "{reply}");
    // Over a week the daily goal is compared with the average of the days logged.
    let reply = say(&core, &outbox, user, "how many calories this week?").await;
    assert!(
        reply.contains("207 kcal a day on average over 1 logged day (goal 1800 a day)"),
        "{reply}"
    );
    let reply = say(&core, &outbox, user, "am I on track today?").await;
    assert!(
        reply.starts_with("Today: 207 of 1800 kcal (1593 left)"),
        "{reply}"
    );

    let reply = say(&core, &outbox, user, "a plate of zorblax").await;
    assert!(
        reply.contains("I don't know")
            && reply.contains("zorblax")
            && reply.contains("Nothing was saved"),
        "{reply}"
    );
    assert_eq!(
        core.store
            .food_entries(UserId(user), from, to)
            .await
            .unwrap()
            .len(),
        1,
        "nothing saved for an unknown food"
    );

    let reply = say(&core, &outbox, user, "undo").await;
    assert!(reply.contains("Removed"), "{reply}");
    assert!(core
        .store
        .food_entries(UserId(user), from, to)
        .await
        .unwrap()
        .is_empty());

    core.shutdown().await;
}

#[tokio::test]
async fn the_offline_agent_on_the_embedded_store() {
    logs_answers_and_undoes(&[]).await;
}

#[tokio::test]
async fn the_offline_agent_on_postgres() {
    let Some(url) = database_url("TEST_DATABASE_URL") else {
        return;
    };
    let database = TestDatabase::create(&url).await.unwrap();
    logs_answers_and_undoes(&[("DATABASE_URL", database.url())]).await;
    database.drop_database().await;
}

#[tokio::test]
async fn what_a_person_says_about_themselves_works_out_their_calorie_goal() {
    let data_dir = tempfile::tempdir().unwrap();
    let core = Core::start(&test_settings(data_dir.path(), &[]))
        .await
        .unwrap();
    let outbox = RecordingOutbox::new();
    let user = 4343;

    let reply = say(
        &core,
        &outbox,
        user,
        "I'm a 35 year old woman, 165 cm, 62 kg",
    )
    .await;
    assert!(
        reply.contains("Noted: 35 years old, female, 165 cm and 62 kg")
            && reply.contains("activity level and whether you want to lose, keep or gain weight"),
        "{reply}"
    );
    let stored = || async { core.store.user(UserId(user)).await.unwrap().unwrap() };
    assert_eq!(stored().await.goals.kcal, None, "nothing guessed");

    let reply = say(
        &core,
        &outbox,
        user,
        "moderately active, and I want to lose weight",
    )
    .await;
    // Mifflin-St Jeor: 10 x 62 + 6.25 x 165 - 5 x 35 - 161 = 1315 kcal; x 1.55, less 500.
    assert!(reply.contains("Saved: 1540 kcal a day"), "{reply}");
    assert_eq!(stored().await.goals.kcal, Some(1540.0));

    // A goal the person set themselves is kept; the worked-out one is only offered.
    say(&core, &outbox, user, "my goal is 1800 kcal").await;
    let reply = say(&core, &outbox, user, "I'm 36 years old").await;
    assert!(
        reply.contains("Your goal stays at 1800 kcal") && reply.contains("I'd suggest"),
        "{reply}"
    );
    assert_eq!(stored().await.goals.kcal, Some(1800.0));
    assert_eq!(stored().await.profile.age_years, Some(36));
    core.shutdown().await;
}

#[tokio::test]
async fn handling_the_same_message_twice_saves_one_entry() {
    let data_dir = tempfile::tempdir().unwrap();
    let core = Core::start(&test_settings(data_dir.path(), &[]))
        .await
        .unwrap();
    let outbox = RecordingOutbox::new();
    let reply: Arc<dyn Outbox> = outbox.clone();
    let inbound = Inbound::new(
        UserId(7),
        ChatId(7),
        InboundContent::Text("a banana".into()),
        reply,
    );
    for _ in 0..2 {
        let outcome = core
            .conversations()
            .submit_and_wait(inbound.clone(), TURN)
            .await
            .unwrap();
        assert_eq!(outcome, TurnOutcome::Answered);
    }
    let today = Utc::now().date_naive();
    let entries = core
        .store
        .food_entries(
            UserId(7),
            today - chrono::Duration::days(1),
            today + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "the entry id derives from the message id");
    core.shutdown().await;
}

fn chat(data_dir: &std::path::Path, input: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_health-agent"))
        .arg("chat")
        .env_clear()
        .env("DATA_DIR", data_dir)
        .env("LOG_LEVEL", "warn")
        .current_dir(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn chat_works_in_scripts_and_keeps_what_it_saved() {
    let data_dir = tempfile::tempdir().unwrap();
    let (ok, out) = chat(data_dir.path(), "2 eggs\n");
    assert!(ok);
    assert!(out.contains("Saved") && out.contains("143 kcal"), "{out}");
    // A second process reads it back from the embedded database.
    let (ok, out) = chat(data_dir.path(), "/today\n");
    assert!(ok);
    assert!(out.contains("2 eggs") && out.contains("143 kcal"), "{out}");
}

#[test]
fn estimate_prints_json_and_fails_when_nothing_is_known() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_health-agent"))
        .args(["estimate", "--json", "a cup of rice and 2 eggs"])
        .env_clear()
        .env("DATA_DIR", data_dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 2);
    assert_eq!(json["total"]["kcal"], 348.0);
    assert_eq!(json["items"][0]["source"], "built_in");
    assert!(json["unknown"].as_array().unwrap().is_empty());

    let output = Command::new(env!("CARGO_BIN_EXE_health-agent"))
        .args(["estimate", "zorblax"])
        .env_clear()
        .env("DATA_DIR", data_dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("I don't know 'zorblax'"));
}

#[test]
fn estimate_json_stays_parseable_when_it_fails() {
    let data_dir = tempfile::tempdir().unwrap();
    // Logs at the default level (info): they go to stderr, never after the JSON on stdout.
    let output = Command::new(env!("CARGO_BIN_EXE_health-agent"))
        .args(["estimate", "--json", "zorblax"])
        .env_clear()
        .env("DATA_DIR", data_dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not one JSON document ({error}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert!(json["items"].as_array().unwrap().is_empty());
    assert_eq!(json["unknown"][0], "zorblax");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("could be estimated"), "{stderr}");
}

#[test]
fn the_offline_agent_remembers_lists_and_forgets_across_chat_sessions() {
    let data_dir = tempfile::tempdir().unwrap();
    let (ok, out) = chat(
        data_dir.path(),
        "remember that I'm vegetarian\nremember: I'm allergic to peanuts\n",
    );
    assert!(ok);
    assert!(
        out.contains("Got it, I'll remember: \"I'm vegetarian\".")
            && out.contains("Got it, I'll remember: \"I'm allergic to peanuts\"."),
        "{out}"
    );
    // Another process finds them in the embedded database, and forgets the closest one.
    let (ok, out) = chat(
        data_dir.path(),
        "what do you remember about me?\nforget that I'm vegetarian\nwhat do you remember?\n",
    );
    assert!(ok);
    let (before, after) = out
        .split_once("Forgotten: \"I'm vegetarian\".")
        .expect(&out);
    assert!(
        before.contains("1. I'm vegetarian") && before.contains("2. I'm allergic to peanuts"),
        "{out}"
    );
    assert!(
        after.contains("1. I'm allergic to peanuts") && !after.contains("vegetarian"),
        "{out}"
    );
}
