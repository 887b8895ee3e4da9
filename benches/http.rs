//! Load benchmark of the HTTP server: `cargo bench --bench http` (`BENCH_QUICK=1` for a run
//! under a minute).
//!
//! Starts the real application (`RUN_MODE=api`, offline agent, embedded database in a temporary
//! folder) on loopback and, in the same process, a bare warp route as the reference. Many
//! concurrent clients (keep-alive connections) then run, one case after the other:
//! - `bare_warp`: `GET /ping` of a warp server with nothing behind it;
//! - `health`: `GET /health` of the application (a database ping);
//! - `chat`: `POST /api/v1/chat` logging "a banana" (one user per client, so each message goes
//!   through auth, the rate limiter, the person's conversation actor, the offline agent, a
//!   committed write and a read back).
//!
//! Reports requests per second and p50/p99 latency of each, prints a table and writes
//! `target/bench-results/http.json` (under `CARGO_TARGET_DIR` if set).

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use health_agent::config::Settings;
use health_agent::startup::Application;
use serde_json::{json, Map, Value};
use warp::Filter;

const ADMIN_KEY: &str = "bench-admin-key";

struct Case {
    name: &'static str,
    requests: usize,
    errors: usize,
    seconds: f64,
    latencies_us: Vec<f64>,
}

fn main() {
    let quick = common::quick();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let results = runtime.block_on(run(quick));
    print_table(&results);
    common::write_results("http", &Value::Object(results));
}

async fn run(quick: bool) -> Map<String, Value> {
    let clients: usize = std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let duration = if quick {
        Duration::from_secs(4)
    } else {
        Duration::from_secs(15)
    };
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let mut vars = BTreeMap::new();
    for (name, value) in [
        ("RUN_MODE", "api"),
        ("API_HOST", "127.0.0.1"),
        ("API_PORT", "0"),
        ("API_KEYS", ADMIN_KEY),
        ("API_RATE_LIMIT_PER_MINUTE", "1000000"),
        ("LOG_LEVEL", "ERROR"),
    ] {
        vars.insert(name.to_owned(), value.to_owned());
    }
    vars.insert("DATA_DIR".into(), data_dir.path().display().to_string());
    let settings = Settings::from_source(&vars).expect("benchmark settings are valid");
    let application = Application::build(settings)
        .await
        .expect("the application builds");
    let app = application.address();
    let (stop_app, app_stopped) = tokio::sync::oneshot::channel::<()>();
    let app_task = tokio::spawn(application.run_until_stopped(async move {
        let _ = app_stopped.await;
    }));

    let (stop_bare, bare_stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for the bare server");
    let bare = listener.local_addr().expect("an address");
    let bare_task = tokio::spawn(
        warp::serve(warp::path!("ping").map(|| "ok"))
            .incoming(listener)
            .graceful(async move {
                let _ = bare_stopped.await;
            })
            .run(),
    );

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");
    for user in 0..clients {
        let response = client
            .post(format!("http://{app}/api/v1/users"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"id": 1_000_000 + user as i64}))
            .send()
            .await
            .expect("create a user");
        assert_eq!(response.status(), 201, "creating benchmark users");
    }

    let mut cases = Vec::new();
    cases.push(
        load("bare_warp", &client, clients, duration, move |c, _| {
            c.get(format!("http://{bare}/ping"))
        })
        .await,
    );
    cases.push(
        load("health", &client, clients, duration, move |c, _| {
            c.get(format!("http://{app}/health"))
        })
        .await,
    );
    cases.push(
        load("chat", &client, clients, duration, move |c, index| {
            c.post(format!("http://{app}/api/v1/chat"))
                .bearer_auth(ADMIN_KEY)
                .json(&json!({"user_id": 1_000_000 + index as i64, "message": "a banana"}))
        })
        .await,
    );

    let _ = stop_bare.send(());
    let _ = bare_task.await;
    let _ = stop_app.send(());
    if let Ok(Err(error)) = app_task.await {
        eprintln!("the application stopped with an error: {error:#}");
    }

    let mut results = Map::new();
    results.insert("quick".into(), json!(quick));
    results.insert(
        "cores".into(),
        json!(std::thread::available_parallelism().map_or(1, |n| n.get())),
    );
    results.insert("clients".into(), json!(clients));
    results.insert("seconds_per_case".into(), json!(duration.as_secs()));
    for case in cases {
        let mut sorted = case.latencies_us.clone();
        sorted.sort_by(f64::total_cmp);
        results.insert(
            case.name.into(),
            json!({
                "requests": case.requests,
                "errors": case.errors,
                "req_per_s": ((case.requests as f64 / case.seconds) * 10.0).round() / 10.0,
                "p50_ms": percentile_ms(&sorted, 0.50),
                "p99_ms": percentile_ms(&sorted, 0.99),
            }),
        );
    }
    results
}

/// `clients` tasks send requests built by `make` back to back for `duration`.
async fn load(
    name: &'static str,
    client: &reqwest::Client,
    clients: usize,
    duration: Duration,
    make: impl Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> Case {
    let make = Arc::new(make);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(clients);
    for index in 0..clients {
        let client = client.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let sent = Instant::now();
                match make(&client, index).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed().as_secs_f64() * 1e6);
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((latencies, failed)) = task.await {
            latencies_us.extend(latencies);
            errors += failed;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Case {
        name,
        requests: latencies_us.len(),
        errors,
        seconds,
        latencies_us,
    }
}

fn percentile_ms(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
    (sorted[index] / 1000.0 * 100.0).round() / 100.0
}

fn print_table(results: &Map<String, Value>) {
    println!(
        "\nHTTP load: {} concurrent clients, {} s per case, {} cores",
        results["clients"], results["seconds_per_case"], results["cores"]
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>8}",
        "case", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for name in ["bare_warp", "health", "chat"] {
        let case = &results[name];
        println!(
            "{:<10} {:>10} {:>10} {:>10} {:>8}",
            name, case["req_per_s"], case["p50_ms"], case["p99_ms"], case["errors"]
        );
    }
}
