//! The LLM agent through the real actor tree and store, against fake OpenAI and Anthropic
//! servers on loopback.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use health_actors::conversation::TurnOutcome;
use health_actors::domain::{NutritionSource, UserId};
use health_actors::inbound::{ChatId, Inbound};
use health_actors::memory::OfflineEmbedder;
use health_actors::ports::Outbox;
use health_actors::testing::RecordingOutbox;
use health_agent::startup::Core;
use serde_json::json;

use crate::fakes::llm::{self, anthropic_text, anthropic_tool, openai_text, openai_tool, FakeLlm};
use crate::support::app::test_settings;

const TURN: Duration = Duration::from_secs(60);
const OPENAI_CHAT: &str = "/v1/chat/completions";
const ANTHROPIC_MESSAGES: &str = "/v1/messages";

struct Session {
    core: Core,
    outbox: Arc<RecordingOutbox>,
    _data_dir: tempfile::TempDir,
}

impl Session {
    async fn start(vars: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let core = Core::start(&test_settings(data_dir.path(), vars))
            .await
            .unwrap();
        Self {
            core,
            outbox: RecordingOutbox::new(),
            _data_dir: data_dir,
        }
    }

    async fn say(&self, user: i64, text: &str) -> String {
        let reply: Arc<dyn Outbox> = self.outbox.clone();
        let before = self.outbox.texts_to(ChatId(user)).len();
        let inbound = Inbound::text(UserId(user), ChatId(user), text, reply);
        let outcome = self
            .core
            .conversations()
            .submit_and_wait(inbound, TURN)
            .await
            .unwrap();
        assert_eq!(outcome, TurnOutcome::Answered);
        self.outbox.texts_to(ChatId(user))[before..].join("\n")
    }

    async fn entries(&self, user: i64) -> Vec<health_actors::domain::FoodEntry> {
        let today = Utc::now().date_naive();
        self.core
            .store
            .food_entries(
                UserId(user),
                today - chrono::Duration::days(2),
                today + chrono::Duration::days(1),
            )
            .await
            .unwrap()
    }
}

fn openai_vars(fake: &FakeLlm) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_API_KEY", "sk-test-key".to_owned()),
        ("OPENAI_BASE_URL", format!("{}/v1", fake.base_url())),
        ("AGENT_MODEL", "openai:gpt-test".to_owned()),
    ]
}

fn borrow<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

#[tokio::test]
async fn openai_tool_calls_log_food_with_the_databases_numbers() {
    let fake = llm::start().await;
    // The model names the food and weighs it, and offers a wrong kcal that must be ignored.
    fake.script(OPENAI_CHAT, [
        openai_tool("log_food", json!({"description": "two eggs", "items": [{"name": "egg", "grams": 100, "kcal": 999}]})),
        openai_text("Logged two eggs: 143 kcal."),
    ]);
    let vars = openai_vars(&fake);
    let session = Session::start(&borrow(&vars)).await;

    let reply = session.say(11, "I had two eggs").await;
    assert_eq!(reply, "Logged two eggs: 143 kcal.");
    let entries = session.entries(11).await;
    assert_eq!(entries.len(), 1);
    assert!(
        (entries[0].total.kcal - 143.0).abs() < 1.0,
        "{}",
        entries[0].total.kcal
    );
    assert_eq!(entries[0].items[0].source, NutritionSource::BuiltIn);

    let requests = fake.requests(OPENAI_CHAT);
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].headers["authorization"], "Bearer sk-test-key");
    assert_eq!(requests[0].body["model"], "gpt-test");
    assert!(requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["function"]["name"] == "log_food"));
    assert!(requests[0].body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("Local time"));
    let tool_result = requests[1].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(tool_result["role"], "tool");
    assert_eq!(tool_result["tool_call_id"], "call_1");
    let result: serde_json::Value =
        serde_json::from_str(tool_result["content"].as_str().unwrap()).unwrap();
    assert_eq!(result["saved"], true);
    assert_eq!(result["items"][0]["kcal"], 143.0);
    session.core.shutdown().await;
}

#[tokio::test]
async fn an_unknown_food_without_numbers_is_not_saved() {
    let fake = llm::start().await;
    fake.script(
        OPENAI_CHAT,
        [
            openai_tool(
                "log_food",
                json!({"description": "zorblax", "items": [{"name": "zorblax", "grams": 200}]}),
            ),
            openai_text("I don't know zorblax; what is it similar to?"),
        ],
    );
    let vars = openai_vars(&fake);
    let session = Session::start(&borrow(&vars)).await;
    let reply = session.say(12, "I had a zorblax").await;
    assert!(reply.contains("zorblax"), "{reply}");
    assert!(session.entries(12).await.is_empty());
    let requests = fake.requests(OPENAI_CHAT);
    let content = requests[1].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(content.contains("\"saved\":false"), "{content}");
    session.core.shutdown().await;
}

#[tokio::test]
async fn anthropic_tools_and_memory_with_the_offline_embedder() {
    let fake = llm::start().await;
    fake.script(
        ANTHROPIC_MESSAGES,
        [
            anthropic_tool("remember", json!({"fact": "I'm vegetarian"})),
            anthropic_text("Noted: you're vegetarian."),
            anthropic_text("Here's a vegetarian idea: lentil soup."),
        ],
    );
    let url = fake.base_url();
    let session = Session::start(&[
        ("ANTHROPIC_API_KEY", "ak-test-key"),
        ("ANTHROPIC_BASE_URL", url.as_str()),
        ("AGENT_MODEL", "anthropic:claude-test"),
    ])
    .await;

    assert_eq!(
        session.say(13, "Remember that I'm vegetarian").await,
        "Noted: you're vegetarian."
    );
    let memories = session.core.store.memories(UserId(13)).await.unwrap();
    assert_eq!(memories.len(), 1);
    assert_eq!(memories[0].content, "I'm vegetarian");
    assert_eq!(memories[0].embedder, OfflineEmbedder::NAME);

    // The next message's system prompt carries the relevant memory.
    session
        .say(13, "what should I eat, I'm vegetarian after all")
        .await;
    let requests = fake.requests(ANTHROPIC_MESSAGES);
    assert_eq!(requests[0].headers["x-api-key"], "ak-test-key");
    assert_eq!(requests[0].headers["anthropic-version"], "2023-06-01");
    let last = requests.last().unwrap();
    assert!(
        last.body["system"]
            .as_str()
            .unwrap()
            .contains("I'm vegetarian"),
        "{}",
        last.body["system"]
    );
    let tool_turn = &requests[1].body["messages"].as_array().unwrap()[2];
    assert_eq!(tool_turn["content"][0]["type"], "tool_result");
    session.core.shutdown().await;
}

#[tokio::test]
async fn an_overloaded_model_falls_back_to_the_other_provider() {
    let fake = llm::start().await;
    let overloaded = (
        529,
        json!({"type": "error", "error": {"type": "overloaded_error"}}),
    );
    fake.script(ANTHROPIC_MESSAGES, vec![overloaded; 3]);
    fake.script(OPENAI_CHAT, [openai_text("Hello from the fallback.")]);
    let url = fake.base_url();
    let openai_url = format!("{url}/v1");
    let session = Session::start(&[
        ("ANTHROPIC_API_KEY", "ak-test-key"),
        ("ANTHROPIC_BASE_URL", url.as_str()),
        ("OPENAI_API_KEY", "sk-test-key"),
        ("OPENAI_BASE_URL", openai_url.as_str()),
        ("AGENT_MODEL", "anthropic:claude-test"),
        ("AGENT_FALLBACK_MODEL", "openai:gpt-test"),
        ("ENABLE_MEM0", "false"),
    ])
    .await;
    assert_eq!(session.say(14, "hi").await, "Hello from the fallback.");
    assert_eq!(
        fake.requests(ANTHROPIC_MESSAGES).len(),
        3,
        "retried before falling back"
    );
    session.core.shutdown().await;
}

#[tokio::test]
async fn when_no_model_answers_the_offline_agent_does_without_raw_errors() {
    let fake = llm::start().await;
    // Nothing scripted: every call answers 500.
    let vars = openai_vars(&fake);
    let mut vars = borrow(&vars);
    vars.push(("ENABLE_MEM0", "false"));
    let session = Session::start(&vars).await;
    let reply = session.say(15, "2 eggs").await;
    assert!(
        reply.contains("couldn't reach my language model"),
        "{reply}"
    );
    assert!(
        reply.contains("143 kcal"),
        "the offline agent logged it: {reply}"
    );
    assert!(
        !reply.contains("500") && !reply.contains("nothing scripted"),
        "{reply}"
    );
    assert_eq!(session.entries(15).await.len(), 1);
    session.core.shutdown().await;
}
