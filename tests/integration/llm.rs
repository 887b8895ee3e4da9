//! The LLM agent through the real actor tree and store, against fake OpenAI and Anthropic
//! servers on loopback.
//!
//! What each test covers:
//! - a tool-call round trip in both wire formats (`log_food` with the database's numbers; an
//!   unknown food not saved; `remember` with the offline embedder and recall in the next prompt);
//! - resilience: 429 then success honouring `Retry-After`; repeated 500s opening the circuit
//!   breaker, which refuses calls without reaching the server until a half-open probe closes it;
//!   a malformed answer and a timeout each giving a friendly sentence and the offline agent's
//!   answer; an overloaded model falling back to the other provider;
//! - semantic memory stored through the `remember` tool and recalled (system prompt and
//!   `search_memory`) on the embedded store, PostgreSQL with pgvector and plain PostgreSQL;
//! - the `chat` command of the real binary answering with the model's text;
//! - the model's tool calls checked like any other input: impossible numbers (macros heavier
//!   than the food, kcal that 4/4/9 cannot give) and a date beyond the tools' range refused with
//!   the rule named to the model and nothing saved; a malformed call (not JSON, a required field
//!   missing) sent back once, then answered truthfully; "Done." never said when nothing was done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use health_actors::domain::{NutritionSource, UserId};
use health_actors::memory::OfflineEmbedder;
use health_actors::ports::{Store, SystemClock};
use health_actors::root::{Root, RootArgs, RootHandle, RootSettings};
use health_actors::testing::RecordingOutbox;
use health_agent::assistant::LlmAgent;
use health_agent::llm::model::ChatModel;
use health_agent::llm::openai::OpenAiChat;
use health_agent::nutrition::engine::NutritionEngine;
use health_agent::resilience::RetryPolicy;
use health_agent::startup::Core;
use serde_json::json;

use crate::fakes::llm::{
    self, anthropic_text, anthropic_tool, openai_text, openai_tool, openai_tool_raw, Answer,
    FakeLlm, Recorded,
};
use crate::support::app::test_settings;
use crate::support::db::{database_url, TestDatabase};
use crate::support::turn;

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
        turn::say(self.core.conversations(), &self.outbox, user, text).await
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

/// A session on the fake's OpenAI-compatible server with memories off.
async fn openai_session(fake: &FakeLlm) -> Session {
    let vars = openai_vars(fake);
    let mut vars = borrow(&vars);
    vars.push(("ENABLE_MEM0", "false"));
    Session::start(&vars).await
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

/// Anthropic's "overloaded" answer.
fn anthropic_overloaded() -> (u16, serde_json::Value) {
    (
        529,
        json!({"type": "error", "error": {"type": "overloaded_error"}}),
    )
}

/// A session on the fake's Anthropic endpoint, with its OpenAI-compatible one as the fallback.
async fn anthropic_with_openai_fallback(fake: &FakeLlm) -> Session {
    let url = fake.base_url();
    let openai_url = format!("{url}/v1");
    Session::start(&[
        ("ANTHROPIC_API_KEY", "ak-test-key"),
        ("ANTHROPIC_BASE_URL", url.as_str()),
        ("OPENAI_API_KEY", "sk-test-key"),
        ("OPENAI_BASE_URL", openai_url.as_str()),
        ("AGENT_MODEL", "anthropic:claude-test"),
        ("AGENT_FALLBACK_MODEL", "openai:gpt-test"),
        ("ENABLE_MEM0", "false"),
    ])
    .await
}

#[tokio::test]
async fn an_overloaded_model_falls_back_to_the_other_provider() {
    let fake = llm::start().await;
    fake.script(ANTHROPIC_MESSAGES, vec![anthropic_overloaded(); 3]);
    fake.script(OPENAI_CHAT, [openai_text("Hello from the fallback.")]);
    let session = anthropic_with_openai_fallback(&fake).await;
    assert_eq!(session.say(14, "hi").await, "Hello from the fallback.");
    assert_eq!(
        fake.requests(ANTHROPIC_MESSAGES).len(),
        3,
        "retried before falling back"
    );
    session.core.shutdown().await;
}

/// Once the fallback model has answered, the rest of the turn stays on it: its tool round goes
/// to the fallback too, not back to the overloaded primary for three more tries.
#[tokio::test]
async fn after_the_fallback_answers_the_turn_stays_on_it() {
    let fake = llm::start().await;
    fake.script(ANTHROPIC_MESSAGES, vec![anthropic_overloaded(); 6]);
    fake.script(
        OPENAI_CHAT,
        [
            openai_tool(
                "log_food",
                json!({"description": "two eggs", "items": [{"name": "egg", "grams": 100}]}),
            ),
            openai_text("Logged two eggs."),
        ],
    );
    let session = anthropic_with_openai_fallback(&fake).await;
    assert_eq!(session.say(15, "I had two eggs").await, "Logged two eggs.");
    assert_eq!(
        fake.requests(ANTHROPIC_MESSAGES).len(),
        3,
        "the primary was tried (with its retries) for the first round only"
    );
    assert_eq!(
        fake.requests(OPENAI_CHAT).len(),
        2,
        "both rounds on the fallback"
    );
    assert_eq!(session.entries(15).await.len(), 1);
    session.core.shutdown().await;
}

#[tokio::test]
async fn when_no_model_answers_the_offline_agent_does_without_raw_errors() {
    let fake = llm::start().await;
    // Nothing scripted: every call answers 500.
    let session = openai_session(&fake).await;
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

/// Raw error text that must never reach a person.
const RAW_ERROR_WORDS: &[&str] = &[
    "500",
    "nothing scripted",
    "circuit",
    "timed out",
    "Malformed",
    "EOF",
    "expected",
    "choices",
    "error sending request",
];

fn assert_friendly(reply: &str) {
    for word in RAW_ERROR_WORDS {
        assert!(!reply.contains(word), "raw error text {word:?} in: {reply}");
    }
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_as_retry_after_asks_then_the_model_answers() {
    let fake = llm::start().await;
    let rate_limited = Answer::json(
        429,
        &json!({"error": {"message": "Rate limit reached for gpt-test", "type": "requests", "code": "rate_limit_exceeded"}}),
    )
    .retry_after("1");
    fake.script(
        OPENAI_CHAT,
        [
            rate_limited,
            openai_text("Two eggs are about 143 kcal.").into(),
        ],
    );
    let session = openai_session(&fake).await;

    let reply = session.say(21, "how many kcal in two eggs?").await;
    assert_eq!(reply, "Two eggs are about 143 kcal.");
    let requests = fake.requests(OPENAI_CHAT);
    assert_eq!(requests.len(), 2, "one retry after the 429");
    let waited = requests[1].at - requests[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "the retry came {waited:?} after the 429, before Retry-After: 1"
    );
    assert_eq!(requests[1].body, requests[0].body, "the same request again");
    session.core.shutdown().await;
}

/// A 429 whose `Retry-After` (20 s) is longer than the model path ever waits: no retry, the rule
/// agent answers at once and the person reads that the model is busy. It used to retry after
/// 8 s, twice (the cap shortened the server's wait instead of giving up), and still fail.
#[tokio::test]
async fn a_retry_after_longer_than_we_wait_is_not_retried_and_the_rules_answer_at_once() {
    let fake = llm::start().await;
    let rate_limited = Answer::json(
        429,
        &json!({"error": {"message": "Rate limit reached for gpt-test", "type": "requests", "code": "rate_limit_exceeded"}}),
    )
    .retry_after("20");
    fake.script(OPENAI_CHAT, [rate_limited]);
    let vars = openai_vars(&fake);
    let session = Session::start(&borrow(&vars)).await;

    let asked = Instant::now();
    let reply = session.say(22, "2 eggs").await;
    let took = asked.elapsed();
    assert!(reply.contains("busy"), "{reply}");
    assert!(reply.contains("kcal"), "the rule agent answered: {reply}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(fake.requests(OPENAI_CHAT).len(), 1, "no retry");
    assert_eq!(
        session.entries(22).await.len(),
        1,
        "the meal was saved once"
    );
    session.core.shutdown().await;
}

#[tokio::test]
async fn a_malformed_answer_gives_a_friendly_sentence_and_the_offline_answer() {
    let fake = llm::start().await;
    // Truncated JSON from OpenAI; valid JSON of the wrong shape from Anthropic.
    fake.script(
        OPENAI_CHAT,
        [Answer::raw(
            200,
            r#"{"id": "chatcmpl-9", "choices": [{"message": {"content": "Hel"#,
        )],
    );
    fake.script(
        ANTHROPIC_MESSAGES,
        [(
            200,
            json!({"id": "msg_9", "type": "message", "content": "not a list of blocks"}),
        )],
    );
    let session = openai_session(&fake).await;
    let reply = session.say(22, "2 eggs").await;
    assert!(
        reply.starts_with("I couldn't reach my language model just now."),
        "{reply}"
    );
    assert!(
        reply.contains("143 kcal"),
        "the offline agent logged it: {reply}"
    );
    assert_friendly(&reply);
    assert_eq!(session.entries(22).await.len(), 1);
    assert_eq!(
        fake.requests(OPENAI_CHAT).len(),
        1,
        "a malformed answer is not retried"
    );
    session.core.shutdown().await;

    let url = fake.base_url();
    let session = Session::start(&[
        ("ANTHROPIC_API_KEY", "ak-test-key"),
        ("ANTHROPIC_BASE_URL", url.as_str()),
        ("AGENT_MODEL", "anthropic:claude-test"),
        ("ENABLE_MEM0", "false"),
    ])
    .await;
    let reply = session.say(23, "a banana").await;
    assert!(
        reply.starts_with("I couldn't reach my language model just now."),
        "{reply}"
    );
    assert!(
        reply.contains("Saved"),
        "the offline agent logged it: {reply}"
    );
    assert_friendly(&reply);
    session.core.shutdown().await;
}

/// The real actor tree, embedded store and LLM agent around a chat model built by the test (to
/// give it a short timeout or a quick circuit breaker); memory off.
struct Harness {
    root: RootHandle,
    store: Arc<dyn Store>,
    outbox: Arc<RecordingOutbox>,
    _data_dir: tempfile::TempDir,
}

impl Harness {
    async fn start(model: Arc<dyn ChatModel>) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let settings = test_settings(data_dir.path(), &[]);
        let (store, _) = health_agent::store::open(&settings.store).await.unwrap();
        let engine = Arc::new(NutritionEngine::offline());
        let root = Root::start(RootArgs {
            store: store.clone(),
            agent: Arc::new(LlmAgent::new(model, None, engine, None)),
            clock: Arc::new(SystemClock),
            settings: RootSettings::default(),
            vision: health_actors::vision::VisionArgs::default(),
        })
        .await
        .unwrap();
        Self {
            root,
            store,
            outbox: RecordingOutbox::new(),
            _data_dir: data_dir,
        }
    }

    async fn say(&self, user: i64, text: &str) -> String {
        turn::say(self.root.conversations(), &self.outbox, user, text).await
    }

    async fn stop(self) {
        self.root.shutdown(Duration::from_secs(10)).await;
    }
}

/// Two attempts per call, a few milliseconds apart.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 2,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(5),
    }
}

#[tokio::test]
async fn repeated_500s_open_the_breaker_and_a_probe_after_the_cool_down_closes_it() {
    let fake = llm::start().await;
    let cool_down = Duration::from_millis(800);
    let model = OpenAiChat::new(
        &format!("{}/v1", fake.base_url()),
        Some("sk-test-key".to_owned().into()),
        "gpt-test",
        Duration::from_secs(10),
        quick_retries(),
    )
    .unwrap()
    .with_breaker(2, cool_down);
    let harness = Harness::start(Arc::new(model)).await;

    // Nothing scripted: every call answers 500. Two failed calls (two attempts each) open it.
    for (text, kcal) in [("2 eggs", "143 kcal"), ("a banana", "kcal")] {
        let reply = harness.say(31, text).await;
        assert!(
            reply.starts_with("I couldn't reach my language model just now."),
            "{reply}"
        );
        assert!(reply.contains(kcal), "the offline agent answered: {reply}");
        assert_friendly(&reply);
    }
    assert_eq!(fake.requests(OPENAI_CHAT).len(), 4);

    // Open: the call fails at once, without reaching the server.
    let started = Instant::now();
    let reply = harness.say(31, "an apple").await;
    assert!(started.elapsed() < cool_down, "failed fast");
    assert!(
        reply.starts_with("My language model is busy right now."),
        "{reply}"
    );
    assert!(
        reply.contains("Saved"),
        "the offline agent logged it: {reply}"
    );
    assert_friendly(&reply);
    assert_eq!(
        fake.requests(OPENAI_CHAT).len(),
        4,
        "the open breaker refused the call"
    );
    let entries = harness
        .store
        .food_entries(
            UserId(31),
            Utc::now().date_naive() - chrono::Duration::days(2),
            Utc::now().date_naive() + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    assert_eq!(entries.len(), 3, "every message was still logged offline");

    // After the cool-down one probe goes through; its success closes the breaker.
    tokio::time::sleep(cool_down + Duration::from_millis(100)).await;
    fake.script(
        OPENAI_CHAT,
        [openai_text("I'm back."), openai_text("Still here.")],
    );
    assert_eq!(harness.say(31, "hello?").await, "I'm back.");
    assert_eq!(
        fake.requests(OPENAI_CHAT).len(),
        5,
        "the probe reached the server"
    );
    assert_eq!(harness.say(31, "and now?").await, "Still here.");
    assert_eq!(
        fake.requests(OPENAI_CHAT).len(),
        6,
        "closed: calls go through again"
    );
    harness.stop().await;
}

#[tokio::test]
async fn a_timeout_gives_a_friendly_sentence_and_the_offline_answer() {
    let fake = llm::start().await;
    let slow = Answer::from(openai_text("too late")).delayed(Duration::from_secs(5));
    fake.script(OPENAI_CHAT, [slow.clone(), slow]);
    let timeout = Duration::from_millis(300);
    let model = OpenAiChat::new(
        &format!("{}/v1", fake.base_url()),
        Some("sk-test-key".to_owned().into()),
        "gpt-test",
        timeout,
        quick_retries(),
    )
    .unwrap();
    let harness = Harness::start(Arc::new(model)).await;

    let started = Instant::now();
    let reply = harness.say(32, "2 eggs").await;
    let took = started.elapsed();
    assert!(
        reply.starts_with("My language model is busy right now."),
        "{reply}"
    );
    assert!(
        reply.contains("143 kcal"),
        "the offline agent logged it: {reply}"
    );
    assert!(!reply.contains("too late"), "{reply}");
    assert_friendly(&reply);
    assert_eq!(
        fake.requests(OPENAI_CHAT).len(),
        2,
        "the timeout was retried once"
    );
    assert!(
        took >= timeout * 2 && took < Duration::from_secs(4),
        "two attempts of {timeout:?} each, then the offline answer: {took:?}"
    );
    harness.stop().await;
}

/// Only the embeddings endpoint hangs. Memories are optional: the prompt goes without them
/// after their short budget, the model is asked and answers. Before, every message waited on
/// the embedder's retries (60 s a try) and failed without the chat model ever being called.
#[tokio::test]
async fn a_hanging_embedder_costs_the_memories_not_the_answer() {
    let fake = llm::start().await;
    // Every embeddings call is held for five minutes before the fake even records it.
    fake.delay_model(
        "/v1/embeddings",
        "text-embedding-3-small",
        Duration::from_secs(300),
    );
    fake.script(
        OPENAI_CHAT,
        [openai_text("Hello! What did you have today?")],
    );
    let vars = openai_vars(&fake);
    let session = Session::start(&borrow(&vars)).await;

    let asked = Instant::now();
    assert_eq!(
        session.say(52, "hi there").await,
        "Hello! What did you have today?"
    );
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(6), "answered after {took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "the memories had their budget: {took:?}"
    );
    assert_eq!(fake.requests(OPENAI_CHAT).len(), 1, "the model was asked");
    session.core.shutdown().await;
}

/// `remember` through the OpenAI tool format (OpenAI embeddings from the fake, 1536
/// dimensions), then recall: the next request's system prompt and a `search_memory` result.
async fn memory_is_stored_and_recalled(store_vars: &[(&str, &str)]) {
    let fake = llm::start().await;
    fake.script(
        OPENAI_CHAT,
        [
            openai_tool("remember", json!({"fact": "I'm vegetarian"})),
            openai_text("Noted: you're vegetarian."),
            openai_tool("search_memory", json!({"query": "diet"})),
            openai_text("How about a lentil curry?"),
        ],
    );
    let vars = openai_vars(&fake);
    let mut vars = borrow(&vars);
    vars.extend_from_slice(store_vars);
    let session = Session::start(&vars).await;

    assert_eq!(
        session.say(41, "Remember that I'm vegetarian").await,
        "Noted: you're vegetarian."
    );
    let memories = session.core.store.memories(UserId(41)).await.unwrap();
    assert_eq!(memories.len(), 1);
    assert_eq!(memories[0].content, "I'm vegetarian");
    assert_eq!(memories[0].embedder, "openai:text-embedding-3-small");
    assert_eq!(memories[0].embedding.len(), 1536);
    let remembered = &fake.requests(OPENAI_CHAT)[1];
    let result = remembered.body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(result["role"], "tool");
    assert!(
        result["content"]
            .as_str()
            .unwrap()
            .contains("\"saved\":true"),
        "{result}"
    );

    assert_eq!(
        session.say(41, "What should I cook tonight?").await,
        "How about a lentil curry?"
    );
    let requests = fake.requests(OPENAI_CHAT);
    assert_eq!(requests.len(), 4);
    let system = requests[2].body["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("- I'm vegetarian (memory id"), "{system}");
    let found = requests[3].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(found["tool_call_id"], "call_1");
    let found: serde_json::Value =
        serde_json::from_str(found["content"].as_str().unwrap()).unwrap();
    assert_eq!(found["memories"][0]["fact"], "I'm vegetarian");
    assert_eq!(found["memories"][0]["id"], memories[0].id.to_string());
    // The embeddings went to the OpenAI-compatible server with the key.
    let embeddings = fake.requests("/v1/embeddings");
    assert!(!embeddings.is_empty());
    assert_eq!(embeddings[0].headers["authorization"], "Bearer sk-test-key");
    session.core.shutdown().await;
}

#[tokio::test]
async fn memory_is_stored_and_recalled_on_the_embedded_store() {
    memory_is_stored_and_recalled(&[]).await;
}

#[tokio::test]
async fn memory_is_stored_and_recalled_on_postgres_with_pgvector() {
    let Some(url) = database_url("TEST_DATABASE_URL") else {
        return;
    };
    let database = TestDatabase::create(&url).await.unwrap();
    memory_is_stored_and_recalled(&[("DATABASE_URL", database.url())]).await;
    database.drop_database().await;
}

#[tokio::test]
async fn memory_is_stored_and_recalled_on_plain_postgres() {
    let Some(url) = database_url("TEST_PLAIN_DATABASE_URL") else {
        return;
    };
    let database = TestDatabase::create(&url).await.unwrap();
    memory_is_stored_and_recalled(&[("DATABASE_URL", database.url())]).await;
    database.drop_database().await;
}

/// The issue's "done when": `echo ... | OPENAI_API_KEY=k OPENAI_BASE_URL=http://127.0.0.1:PORT/v1
/// AGENT_MODEL=openai:MODEL health-agent chat` prints the model's answer.
#[tokio::test]
async fn the_chat_command_prints_the_models_answer() {
    use tokio::io::AsyncWriteExt as _;

    let fake = llm::start().await;
    fake.script(
        OPENAI_CHAT,
        [openai_text("Hello from the model on loopback!")],
    );
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_health-agent"))
        .arg("chat")
        .env_clear()
        .env("DATA_DIR", data_dir.path())
        .env("OPENAI_API_KEY", "k")
        .env("OPENAI_BASE_URL", format!("{}/v1", fake.base_url()))
        .env("AGENT_MODEL", "openai:gpt-test")
        .current_dir(data_dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello there\n").await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("chat ends at the end of its input")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "Hello from the model on loopback!",
        "only the answer: {stdout}"
    );
    let requests = fake.requests(OPENAI_CHAT);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers["authorization"], "Bearer k");
    assert_eq!(requests[0].body["model"], "gpt-test");
    let messages = requests[0].body["messages"].as_array().unwrap();
    assert_eq!(messages.last().unwrap()["content"], "hello there");
}

/// What the model was sent back for its last tool call, in `request`.
fn last_tool_result(request: &Recorded) -> String {
    let message = request.body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(message["role"], "tool", "{message}");
    message["content"].as_str().unwrap().to_owned()
}

/// Every entry of `user` on any day up to tomorrow (a date cut to some range is found too).
async fn every_entry(session: &Session, user: i64) -> Vec<health_actors::domain::FoodEntry> {
    let today = Utc::now().date_naive();
    session
        .core
        .store
        .food_entries(
            UserId(user),
            today - chrono::Duration::days(400_000),
            today + chrono::Duration::days(1),
        )
        .await
        .unwrap()
}

fn says_saved(reply: &str) -> bool {
    reply.contains("Saved") || reply.contains("logged") || reply.trim() == "Done."
}

#[tokio::test]
async fn impossible_numbers_from_the_model_are_refused_naming_the_rule() {
    let fake = llm::start().await;
    // 100 g cannot hold 1600 g of macros, and 4/4/9 of them is 7900 kcal, not 900. The model
    // then says nothing more, so what the person reads is the agent's own.
    fake.script(
        OPENAI_CHAT,
        [
            openai_tool(
                "log_food",
                json!({"description": "a bowl of zorblax paste", "items": [{"name": "zorblax paste", "grams": 100, "kcal": 900, "protein_g": 500, "carbs_g": 800, "fat_g": 300}]}),
            ),
            openai_text(""),
        ],
    );
    let session = openai_session(&fake).await;
    let reply = session.say(31, "I had a bowl of zorblax paste").await;
    assert!(session.entries(31).await.is_empty(), "nothing is saved");
    let requests = fake.requests(OPENAI_CHAT);
    assert_eq!(requests.len(), 2);
    let result = last_tool_result(&requests[1]);
    assert!(result.contains("\"saved\":false"), "{result}");
    assert!(result.contains("macros_within_grams"), "{result}");
    assert!(result.contains("energy_matches_macros"), "{result}");
    assert!(!says_saved(&reply), "{reply}");
    session.core.shutdown().await;
}

#[tokio::test]
async fn plausible_numbers_from_the_model_are_saved_as_its_estimate() {
    let fake = llm::start().await;
    // 4·20 + 4·30 + 9·10 = 290 kcal in 250 g: plausible.
    fake.script(
        OPENAI_CHAT,
        [
            openai_tool(
                "log_food",
                json!({"description": "grandma's stew", "items": [{"name": "grandma's stew", "grams": 250, "kcal": 300, "protein_g": 20, "carbs_g": 30, "fat_g": 10}]}),
            ),
            openai_text(""),
        ],
    );
    let session = openai_session(&fake).await;
    let reply = session.say(32, "I had a bowl of grandma's stew").await;
    let entries = session.entries(32).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].items[0].source, NutritionSource::ModelEstimate);
    assert_eq!(reply, "Saved: 300 kcal logged.");
    session.core.shutdown().await;
}

#[tokio::test]
async fn a_date_beyond_the_tools_range_is_refused_and_nothing_is_saved() {
    let fake = llm::start().await;
    fake.script(
        OPENAI_CHAT,
        [
            openai_tool(
                "log_food",
                json!({"description": "two eggs", "days_ago": 100000, "items": [{"name": "egg", "grams": 100}]}),
            ),
            openai_text(""),
        ],
    );
    let session = openai_session(&fake).await;
    let reply = session.say(33, "I had two eggs 100000 days ago").await;
    assert!(
        every_entry(&session, 33).await.is_empty(),
        "nothing is saved, on any day"
    );
    let requests = fake.requests(OPENAI_CHAT);
    assert_eq!(requests.len(), 2);
    let result = last_tool_result(&requests[1]);
    assert!(result.contains("days_ago"), "{result}");
    assert!(result.contains("30"), "the range is named: {result}");
    assert!(!says_saved(&reply), "{reply}");
    session.core.shutdown().await;
}

#[tokio::test]
async fn a_malformed_tool_call_is_sent_back_once_then_answered_truthfully() {
    let fake = llm::start().await;
    // Arguments that are not JSON, then a call missing the required grams: two malformed calls.
    fake.script(
        OPENAI_CHAT,
        [
            openai_tool_raw(
                "log_food",
                r#"{"description": "two eggs", "items": [{"name": "egg", "#,
            ),
            openai_tool(
                "log_food",
                json!({"description": "two eggs", "items": [{"name": "egg"}]}),
            ),
            openai_text("This must not be asked for."),
        ],
    );
    let session = openai_session(&fake).await;
    let reply = session.say(34, "2 eggs").await;
    let requests = fake.requests(OPENAI_CHAT);
    assert_eq!(requests.len(), 2, "sent back once, not a third time");
    let result = last_tool_result(&requests[1]);
    assert!(result.contains("not valid JSON"), "{result}");
    assert!(!reply.contains("couldn't reach"), "{reply}");
    assert!(reply.contains("couldn't read"), "{reply}");
    assert_friendly(&reply);
    assert!(
        reply.contains("143 kcal"),
        "the rule agent logged it instead: {reply}"
    );
    assert_eq!(session.entries(34).await.len(), 1);
    session.core.shutdown().await;
}

#[tokio::test]
async fn a_malformed_tool_call_corrected_by_the_model_is_saved_once() {
    let fake = llm::start().await;
    fake.script(
        OPENAI_CHAT,
        [
            openai_tool(
                "log_food",
                json!({"description": "two eggs", "items": [{"name": "egg"}]}),
            ),
            openai_tool(
                "log_food",
                json!({"description": "two eggs", "items": [{"name": "egg", "grams": 100}]}),
            ),
            openai_text("Logged two eggs: 143 kcal."),
        ],
    );
    let session = openai_session(&fake).await;
    let reply = session.say(35, "2 eggs").await;
    let requests = fake.requests(OPENAI_CHAT);
    assert_eq!(requests.len(), 3);
    let result = last_tool_result(&requests[1]);
    assert!(result.contains("grams"), "{result}");
    assert!(result.contains("required"), "{result}");
    assert_eq!(reply, "Logged two eggs: 143 kcal.");
    assert_eq!(session.entries(35).await.len(), 1);
    session.core.shutdown().await;
}

#[tokio::test]
async fn done_is_never_said_when_nothing_was_done() {
    let fake = llm::start().await;
    fake.script(
        OPENAI_CHAT,
        [
            // An empty answer at once.
            openai_text(""),
            // A summary read, then an empty answer.
            openai_tool("get_summary", json!({"period": "today"})),
            openai_text(""),
            // A food no database knows, without numbers (nothing saved), then an empty answer.
            openai_tool(
                "log_food",
                json!({"description": "zorblax", "items": [{"name": "zorblax", "grams": 200}]}),
            ),
            openai_text(""),
        ],
    );
    let session = openai_session(&fake).await;
    for message in ["hello", "how am I doing today?", "I had a zorblax"] {
        let reply = session.say(36, message).await;
        assert!(!reply.contains("Done"), "{message:?} got {reply:?}");
        assert!(!says_saved(&reply), "{message:?} got {reply:?}");
        assert!(!reply.trim().is_empty(), "{message:?} got silence");
    }
    assert!(session.entries(36).await.is_empty());
    session.core.shutdown().await;
}
