//! Saved entries after the fact, end to end: corrections with the offline agent and with the LLM
//! agent's `correct_entry` tool (against a fake OpenAI server), and the Undo / Edit buttons under
//! a saved estimate. The real actor tree and the real stores (embedded and PostgreSQL).

use std::sync::Arc;

use chrono::Utc;
use health_actors::domain::{ChatId, FoodEntry, MessageId, UserId};
use health_actors::inbound::InboundContent;
use health_actors::ports::Button;
use health_actors::testing::{RecordingOutbox, Sent};
use health_agent::startup::Core;
use serde_json::json;

use crate::fakes::llm::{self, openai_text, openai_tool};
use crate::support::app::test_settings;
use crate::support::db::{database_url, TestDatabase};
use crate::support::turn;

async fn say(core: &Core, outbox: &Arc<RecordingOutbox>, user: i64, text: &str) -> String {
    turn::say(core.conversations(), outbox, user, text).await
}

/// Presses the button labelled `label` under a message (as [`last_buttons`] gives it).
async fn press(
    core: &Core,
    outbox: &Arc<RecordingOutbox>,
    user: i64,
    (message, buttons): &(MessageId, Vec<Button>),
    label: &str,
) -> String {
    let content = InboundContent::Button {
        data: button(buttons, label),
        message: *message,
    };
    turn::turn(core.conversations(), outbox, user, content).await
}

async fn entries(core: &Core, user: i64) -> Vec<FoodEntry> {
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

/// The last message with buttons sent to `user`, and its buttons.
fn last_buttons(outbox: &RecordingOutbox, user: i64) -> (MessageId, Vec<Button>) {
    outbox
        .sent()
        .into_iter()
        .enumerate()
        .rev()
        .find_map(|(index, sent)| match sent {
            Sent::Buttons { chat, buttons, .. } if chat == ChatId(user) => Some((
                // The recording outbox numbers messages by their place, from 1.
                MessageId(index as i64 + 1),
                buttons.into_iter().flatten().collect(),
            )),
            _ => None,
        })
        .expect("a message with buttons")
}

/// The last thing sent, when it is an edit: the message edited, its text, and whether buttons
/// are left under it.
fn last_edit(outbox: &RecordingOutbox) -> Option<(MessageId, String, bool)> {
    match outbox.sent().pop()? {
        Sent::Edit {
            message,
            text,
            buttons,
        } => Some((message.message, text, buttons.is_some())),
        _ => None,
    }
}

fn button(buttons: &[Button], label: &str) -> String {
    buttons
        .iter()
        .find(|button| button.label == label)
        .unwrap_or_else(|| panic!("no {label} button in {buttons:?}"))
        .data
        .clone()
}

async fn corrections_and_buttons(extra: &[(&str, &str)]) {
    let data_dir = tempfile::tempdir().unwrap();
    let core = Core::start(&test_settings(data_dir.path(), extra))
        .await
        .unwrap();
    let outbox = RecordingOutbox::new();
    let user = 5151;

    // A saved text estimate carries Undo and Edit.
    let reply = say(&core, &outbox, user, "200 g chicken breast and 200 g rice").await;
    assert!(reply.contains("Saved"), "{reply}");
    let lunch_reply = last_buttons(&outbox, user);
    assert_eq!(
        lunch_reply
            .1
            .iter()
            .map(|b| b.label.as_str())
            .collect::<Vec<_>>(),
        ["Undo", "Edit"]
    );
    let lunch = entries(&core, user).await.remove(0);
    let rice_before = lunch
        .items
        .iter()
        .find(|item| item.input.contains("rice"))
        .unwrap()
        .clone();
    let chicken_kcal = lunch.total.kcal - rice_before.nutrients.kcal;

    // Edit explains how, with the entry's own food.
    let reply = press(&core, &outbox, user, &lunch_reply, "Edit").await;
    assert!(
        reply.starts_with("Tell me what to change")
            && reply.contains("e.g. \"the chicken was 100 g\""),
        "{reply}"
    );

    // "the rice was 100 g": the same entry, the rice's numbers halved per gram, totals follow.
    let reply = say(&core, &outbox, user, "the rice was 100 g").await;
    assert!(
        reply.contains("Updated") && reply.contains("200 g → 100 g"),
        "{reply}"
    );
    let corrected = entries(&core, user).await;
    assert_eq!(corrected.len(), 1, "corrected, not logged again");
    assert_eq!(corrected[0].id, lunch.id);
    let rice = corrected[0]
        .items
        .iter()
        .find(|item| item.input.contains("rice"))
        .unwrap();
    assert_eq!(rice.grams, 100.0);
    assert!((rice.nutrients.kcal - rice_before.nutrients.kcal / 2.0).abs() < 1e-6);
    assert!((corrected[0].total.kcal - (chicken_kcal + rice.nutrients.kcal)).abs() < 1e-6);
    assert!(
        reply.contains(&format!("{:.0} kcal", corrected[0].total.kcal)),
        "the new totals are said: {reply}"
    );

    // "no rice": the item goes; the last item cannot be removed this way.
    let reply = say(&core, &outbox, user, "no rice").await;
    assert!(reply.contains("removed rice"), "{reply}");
    let corrected = entries(&core, user).await;
    assert_eq!(corrected[0].items.len(), 1);
    assert!((corrected[0].total.kcal - chicken_kcal).abs() < 1e-6);
    let reply = say(&core, &outbox, user, "no chicken").await;
    assert!(reply.contains("only item"), "{reply}");
    assert_eq!(entries(&core, user).await[0].items.len(), 1);

    // A food that was not logged: nothing changes, and nothing is logged either.
    let reply = say(&core, &outbox, user, "the pasta was 80 g").await;
    assert!(reply.contains("couldn't find pasta"), "{reply}");
    assert_eq!(entries(&core, user).await.len(), 1);
    // "no thanks" is not a correction.
    let reply = say(&core, &outbox, user, "no thanks").await;
    assert!(!reply.contains("couldn't find"), "{reply}");

    // Undo under the lunch, after another entry: only the lunch goes, and pressing it again
    // says so and removes nothing else.
    say(&core, &outbox, user, "a banana").await;
    assert_eq!(entries(&core, user).await.len(), 2);
    let reply = press(&core, &outbox, user, &lunch_reply, "Undo").await;
    assert!(reply.starts_with("Removed \""), "{reply}");
    assert_eq!(
        last_edit(&outbox),
        Some((lunch_reply.0, reply.clone(), false)),
        "the lunch's reply says it was removed, and its buttons are gone"
    );
    let left = entries(&core, user).await;
    assert_eq!(left.len(), 1);
    assert!(left[0].description.contains("banana"));
    let reply = press(&core, &outbox, user, &lunch_reply, "Undo").await;
    assert!(reply.contains("already removed"), "{reply}");
    assert_eq!(entries(&core, user).await.len(), 1);
    let reply = press(&core, &outbox, user, &lunch_reply, "Edit").await;
    assert!(reply.contains("removed"), "{reply}");

    // A count: the same eggs, one more of them; a count for a weighed food changes nothing.
    say(&core, &outbox, user, "2 eggs and 150 g rice").await;
    let reply = say(&core, &outbox, user, "it was 3 eggs, not 2").await;
    assert!(
        reply.contains("Updated") && reply.contains("100 g → 150 g"),
        "{reply}"
    );
    let reply = say(&core, &outbox, user, "the rice was 2").await;
    assert!(
        reply.contains("not as a number of pieces") && reply.contains("nothing changed"),
        "{reply}"
    );

    core.shutdown().await;
}

#[tokio::test]
async fn corrections_and_buttons_on_the_embedded_store() {
    corrections_and_buttons(&[]).await;
}

#[tokio::test]
async fn corrections_and_buttons_on_postgres() {
    let Some(url) = database_url("TEST_DATABASE_URL") else {
        return;
    };
    let database = TestDatabase::create(&url).await.unwrap();
    corrections_and_buttons(&[("DATABASE_URL", database.url())]).await;
    database.drop_database().await;
}

#[tokio::test]
async fn the_llm_agent_corrects_with_its_tool() {
    let fake = llm::start().await;
    let url = format!("{}/v1", fake.base_url());
    fake.script(
        "/v1/chat/completions",
        [
            openai_tool(
                "log_food",
                json!({"description": "rice and chicken", "items": [
                    {"name": "white rice, cooked", "grams": 200},
                    {"name": "chicken breast", "grams": 150}
                ]}),
            ),
            openai_text("Logged your rice and chicken."),
            openai_tool("correct_entry", json!({"food": "rice", "grams": 120})),
            openai_text("Done: the rice is now 120 g."),
            openai_tool("correct_entry", json!({"food": "chicken", "remove": true})),
            openai_text("Removed the chicken."),
        ],
    );
    let data_dir = tempfile::tempdir().unwrap();
    let settings = test_settings(
        data_dir.path(),
        &[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", &url),
            ("AGENT_MODEL", "openai:gpt-test"),
            ("ENABLE_MEM0", "false"),
        ],
    );
    let core = Core::start(&settings).await.unwrap();
    let outbox = RecordingOutbox::new();
    let user = 5252;

    let reply = say(&core, &outbox, user, "rice and chicken for lunch").await;
    assert_eq!(reply, "Logged your rice and chicken.");
    // One meal saved this turn: Undo / Edit under the model's reply.
    let (_, buttons) = last_buttons(&outbox, user);
    assert!(button(&buttons, "Undo").ends_with(&entries(&core, user).await[0].id.to_string()));
    let before = entries(&core, user).await.remove(0);
    let rice_before = before
        .items
        .iter()
        .find(|item| item.name.to_lowercase().contains("rice"))
        .unwrap()
        .clone();

    say(&core, &outbox, user, "actually the rice was 120 g").await;
    let after = entries(&core, user).await;
    assert_eq!(after.len(), 1);
    let rice = after[0]
        .items
        .iter()
        .find(|item| item.name.to_lowercase().contains("rice"))
        .unwrap();
    assert_eq!(rice.grams, 120.0);
    assert!((rice.nutrients.kcal - rice_before.nutrients.kcal * 0.6).abs() < 1e-6);
    // The model saw what changed and the new totals.
    let requests = fake.requests("/v1/chat/completions");
    let tool_result = requests[3].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|message| message["role"] == "tool")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let result: serde_json::Value = serde_json::from_str(&tool_result).unwrap();
    assert_eq!(result["updated"], true, "{result}");
    assert_eq!(result["after"]["grams"], 120.0);
    assert_eq!(
        result["meal_total_kcal"].as_f64().unwrap(),
        after[0].total.kcal.round()
    );

    say(&core, &outbox, user, "there was no chicken").await;
    let after = entries(&core, user).await;
    assert_eq!(after[0].items.len(), 1);
    assert!((after[0].total.kcal - rice.nutrients.kcal).abs() < 1e-6);
    core.shutdown().await;
}
