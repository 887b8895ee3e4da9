//! Latency overhead of the LLM agent per turn: `cargo bench --bench llm` (`BENCH_QUICK=1` for a
//! run under a minute).
//!
//! A fake OpenAI-compatible model server on loopback answers every request at once (zero model
//! latency): `/v1/chat/completions` calls `log_food` when the person's last message mentions
//! eggs and answers with text otherwise (or after a tool result), `/v1/embeddings` answers a
//! fixed 1536-dimension vector. Against it, in one process:
//! - `ours`: a turn through the real application core (`Core::start` with `AGENT_MODEL=openai:…`,
//!   the embedded database in a temporary folder, memory on as by default): the conversation
//!   supervisor, the person's conversation actor, the LLM agent (system prompt with today's
//!   totals and the relevant memories, tools), the OpenAI adapter with its retry and circuit
//!   breaker, and for a tool turn the nutrition engine and a committed write;
//! - `raw`: the same HTTP requests with the same bodies (recorded by the fake during that very
//!   turn), POSTed one after the other with reqwest on a keep-alive connection.
//!
//! Cases: `plain` ("hello", one model call); `tool` ("I had 2 eggs": the model calls `log_food`,
//! the entry is saved, the model answers), whose write waits for the persistence actor's batch
//! (flushed `PERSIST_FLUSH_MS`, 20 ms by default, after its first row) to commit; and
//! `tool_flush_1ms`, the same with a 1 ms batching window. Turns alternate with their raw replay. Reports per-turn p50/p99 of both and the overhead (ours − raw), prints a table and
//! writes `target/bench-results/llm.json` (under `CARGO_TARGET_DIR` if set).

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use health_actors::conversation::TurnOutcome;
use health_actors::domain::{ChatId, UserId};
use health_actors::inbound::Inbound;
use health_actors::ports::Outbox;
use health_actors::testing::RecordingOutbox;
use health_agent::config::Settings;
use health_agent::startup::Core;
use serde_json::{json, Map, Value};
use warp::Filter;

const API_KEY: &str = "sk-bench";
/// Distinct people the turns rotate over, so that histories stay at a realistic length.
const PEOPLE: i64 = 32;

/// The requests the fake received, in order: (path, body).
type Log = Arc<Mutex<Vec<(String, Value)>>>;

#[derive(Clone, Copy)]
struct Kind {
    name: &'static str,
    text: &'static str,
    answer: &'static str,
    model_calls: usize,
}

const PLAIN: Kind = Kind {
    name: "plain",
    text: "hello, how am I doing today?",
    answer: "You're doing fine.",
    model_calls: 1,
};
const TOOL: Kind = Kind {
    name: "tool",
    text: "I had 2 eggs",
    answer: "Logged 2 eggs: 143 kcal.",
    model_calls: 2,
};

fn main() {
    let quick = common::quick();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let results = runtime.block_on(run(quick));
    print_table(&results);
    common::write_results("llm", &Value::Object(results));
}

async fn run(quick: bool) -> Map<String, Value> {
    let turns: usize = std::env::var("BENCH_TURNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 300 } else { 2000 });
    let log: Log = Arc::default();
    let (fake, stop_fake) = fake_model(log.clone()).await;
    let bench = Bench {
        fake,
        log,
        outbox: RecordingOutbox::new(),
        raw_client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client"),
        turns,
    };

    let mut results = Map::new();
    results.insert("quick".into(), json!(quick));
    results.insert(
        "cores".into(),
        json!(std::thread::available_parallelism().map_or(1, |n| n.get())),
    );
    results.insert("turns_per_case".into(), json!(turns));

    // The default configuration: a write waits for its batch, flushed 20 ms after its first row.
    let (core, settings, data_dir) = start_core(fake, &[]).await;
    results.insert("store".into(), json!(core.store.backend()));
    results.insert("memory".into(), json!(settings.enable_memory));
    results.insert(
        "persist_flush_ms".into(),
        json!(settings.actors.persistence.flush.as_millis()),
    );
    let mut users = 0i64;
    results.insert(
        "plain".into(),
        bench.measure(&core, PLAIN, &mut users).await,
    );
    results.insert("tool".into(), bench.measure(&core, TOOL, &mut users).await);
    core.shutdown().await;
    drop(data_dir);

    // The same tool turn with a 1 ms batching window: what is left is the agent and the commit.
    let (core, _, data_dir) = start_core(fake, &[("PERSIST_FLUSH_MS", "1")]).await;
    results.insert(
        "tool_flush_1ms".into(),
        bench.measure(&core, TOOL, &mut users).await,
    );
    core.shutdown().await;
    drop(data_dir);

    let _ = stop_fake.send(());
    results
}

/// The application core against the fake model, on the embedded database in a fresh folder.
async fn start_core(
    fake: SocketAddr,
    extra: &[(&str, &str)],
) -> (Core, Settings, tempfile::TempDir) {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let mut vars = BTreeMap::new();
    for (name, value) in [
        ("OPENAI_API_KEY", API_KEY.to_owned()),
        ("OPENAI_BASE_URL", format!("http://{fake}/v1")),
        ("AGENT_MODEL", "openai:gpt-bench".to_owned()),
        ("LOG_LEVEL", "ERROR".to_owned()),
        ("DATA_DIR", data_dir.path().display().to_string()),
    ] {
        vars.insert(name.to_owned(), value);
    }
    for (name, value) in extra {
        vars.insert((*name).to_owned(), (*value).to_owned());
    }
    let settings = Settings::from_source(&vars).expect("benchmark settings are valid");
    let core = Core::start(&settings).await.expect("the core starts");
    (core, settings, data_dir)
}

struct Bench {
    fake: SocketAddr,
    log: Log,
    outbox: Arc<RecordingOutbox>,
    raw_client: reqwest::Client,
    turns: usize,
}

impl Bench {
    /// `turns` turns of `kind` (after a checked warm-up), each followed by its raw replay.
    async fn measure(&self, core: &Core, kind: Kind, users: &mut i64) -> Value {
        let warm_up = 30;
        let mut ours_us = Vec::with_capacity(self.turns);
        let mut raw_us = Vec::with_capacity(self.turns);
        let mut requests_per_turn = 0;
        for round in 0..warm_up + self.turns {
            *users += 1;
            let user = 2_000_000 + *users % PEOPLE;
            self.log.lock().expect("the log").clear();
            let before = self.outbox.texts_to(ChatId(user)).len();
            let reply: Arc<dyn Outbox> = self.outbox.clone();
            let inbound = Inbound::text(UserId(user), ChatId(user), kind.text, reply);
            let started = Instant::now();
            let outcome = core
                .conversations()
                .submit_and_wait(inbound, Duration::from_secs(30))
                .await
                .expect("the turn is accepted");
            let ours = started.elapsed();
            assert_eq!(outcome, TurnOutcome::Answered);
            let sent: Vec<(String, Value)> =
                std::mem::take(&mut *self.log.lock().expect("the log"));
            if round < warm_up {
                // Check that the turn did what it is meant to measure.
                let texts = self.outbox.texts_to(ChatId(user));
                assert_eq!(texts[before..], [kind.answer.to_owned()], "{}", kind.name);
                let chat_calls = sent.iter().filter(|(p, _)| p.ends_with("/completions"));
                assert_eq!(chat_calls.count(), kind.model_calls, "{}", kind.name);
                requests_per_turn = sent.len();
                continue;
            }
            let started = Instant::now();
            for (path, body) in &sent {
                let response = self
                    .raw_client
                    .post(format!("http://{}{path}", self.fake))
                    .bearer_auth(API_KEY)
                    .json(body)
                    .send()
                    .await
                    .expect("the raw request");
                assert!(response.status().is_success());
                let _: Value = response.json().await.expect("a JSON answer");
            }
            let raw = started.elapsed();
            self.log.lock().expect("the log").clear();
            ours_us.push(ours.as_secs_f64() * 1e6);
            raw_us.push(raw.as_secs_f64() * 1e6);
        }
        let mut overhead: Vec<f64> = ours_us.iter().zip(&raw_us).map(|(o, r)| o - r).collect();
        ours_us.sort_by(f64::total_cmp);
        raw_us.sort_by(f64::total_cmp);
        overhead.sort_by(f64::total_cmp);
        let (ours_p50, ours_p99) = (percentile_ms(&ours_us, 0.5), percentile_ms(&ours_us, 0.99));
        let (raw_p50, raw_p99) = (percentile_ms(&raw_us, 0.5), percentile_ms(&raw_us, 0.99));
        json!({
            "model_calls": kind.model_calls,
            "http_requests": requests_per_turn,
            "ours_p50_ms": ours_p50,
            "ours_p99_ms": ours_p99,
            "raw_p50_ms": raw_p50,
            "raw_p99_ms": raw_p99,
            "overhead_p50_ms": round2(ours_p50 - raw_p50),
            "overhead_p99_ms": round2(ours_p99 - raw_p99),
            "overhead_median_of_turns_ms": percentile_ms(&overhead, 0.5),
        })
    }
}

/// The zero-latency model server; returns its address and a stop switch.
async fn fake_model(log: Log) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let vector: Arc<Vec<f32>> = Arc::new((0..1536).map(|i| ((i % 7) as f32) / 7.0).collect());
    let routes = warp::post()
        .and(warp::path::full())
        .and(warp::body::json::<Value>())
        .map(move |path: warp::path::FullPath, body: Value| {
            let path = path.as_str().to_owned();
            let answer = if path.ends_with("/embeddings") {
                let inputs = body["input"].as_array().map_or(1, Vec::len);
                json!({
                    "object": "list",
                    "data": (0..inputs).map(|index| json!({"object": "embedding", "index": index, "embedding": *vector})).collect::<Vec<_>>(),
                    "model": "text-embedding-3-small",
                    "usage": {"prompt_tokens": 5, "total_tokens": 5}
                })
            } else {
                chat_answer(&body)
            };
            log.lock().expect("the log").push((path, body));
            warp::reply::json(&answer)
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for the fake model");
    let address = listener.local_addr().expect("an address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        warp::serve(routes)
            .incoming(listener)
            .graceful(async move {
                let _ = stopped.await;
            })
            .run(),
    );
    (address, stop)
}

/// A Chat Completions answer: `log_food` for eggs, text otherwise and after a tool result.
fn chat_answer(body: &Value) -> Value {
    let last = body["messages"]
        .as_array()
        .and_then(|messages| messages.last())
        .cloned()
        .unwrap_or_default();
    let usage = json!({"prompt_tokens": 400, "completion_tokens": 20, "total_tokens": 420});
    let eggs = last["role"] == "user"
        && last["content"]
            .as_str()
            .is_some_and(|text| text.contains("eggs"));
    if eggs {
        let arguments = json!({"description": "2 eggs", "items": [{"name": "egg", "grams": 100}]});
        json!({
            "id": "chatcmpl-bench", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "log_food", "arguments": arguments.to_string()}}]
            }}],
            "usage": usage
        })
    } else {
        let text = if last["role"] == "tool" {
            TOOL.answer
        } else {
            PLAIN.answer
        };
        json!({
            "id": "chatcmpl-bench", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": usage
        })
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn percentile_ms(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
    round2(sorted[index] / 1000.0)
}

fn print_table(results: &Map<String, Value>) {
    println!(
        "\nLLM agent overhead per turn: zero-latency fake model on loopback, {} turns per case, {} store, memory {}, {} cores",
        results["turns_per_case"],
        results["store"].as_str().unwrap_or_default(),
        results["memory"],
        results["cores"]
    );
    println!(
        "{:<15} {:>5} {:>9} {:>9} {:>9} {:>9} {:>13} {:>13}",
        "turn",
        "HTTP",
        "ours p50",
        "ours p99",
        "raw p50",
        "raw p99",
        "overhead p50",
        "overhead p99"
    );
    for name in ["plain", "tool", "tool_flush_1ms"] {
        let case = &results[name];
        let ms = |key: &str| format!("{:.2}", case[key].as_f64().unwrap_or(f64::NAN));
        println!(
            "{:<15} {:>5} {:>9} {:>9} {:>9} {:>9} {:>13} {:>13}",
            name,
            case["http_requests"],
            ms("ours_p50_ms"),
            ms("ours_p99_ms"),
            ms("raw_p50_ms"),
            ms("raw_p99_ms"),
            ms("overhead_p50_ms"),
            ms("overhead_p99_ms")
        );
    }
    println!(
        "(milliseconds; HTTP = requests per turn to the model server, embeddings included; \
         tool_flush_1ms = PERSIST_FLUSH_MS=1 instead of {})",
        results["persist_flush_ms"]
    );
}
