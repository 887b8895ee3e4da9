//! `/health` and `/metrics` of the real application, and the binary's start-up behaviour.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use health_actors::testing::eventually;

use crate::support::app::{spawn_app, spawn_app_behind_proxy, Backend};

#[tokio::test]
async fn health_is_healthy_on_the_embedded_database() {
    let app = spawn_app(Backend::Embedded, &[]).await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["database"], "connected");
    assert_eq!(body["backend"], "sqlite");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(app.data_dir.path().join("data/health_agent.db").exists());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_request_counts() {
    let app = spawn_app(Backend::Embedded, &[]).await;
    assert_eq!(app.get("/health").await.status(), 200);
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    assert!(
        text.contains("# TYPE http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{route="/health",status="200"}"#),
        "{text}"
    );
    assert!(text.contains("health_agent_build_info"), "{text}");
    promtool_check(&text);
    app.stop().await.unwrap();
}

/// `promtool check metrics` on the exposition, when promtool is installed (CI installs it; a
/// laptop without it skips the check with a note).
fn promtool_check(text: &str) {
    use std::io::Write as _;
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(_) if std::env::var("CI").is_ok() => {
            panic!("promtool is not installed (apt-get install prometheus)")
        }
        Err(_) => {
            eprintln!("skipping promtool check: promtool not installed");
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn metrics_token_guards_metrics_but_not_health() {
    let app = spawn_app(Backend::Embedded, &[("METRICS_TOKEN", "scrape-me")]).await;
    assert_eq!(app.get("/metrics").await.status(), 401);
    let with_token = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 200);
    assert_eq!(app.get("/health").await.status(), 200);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_routes_get_a_json_error() {
    let app = spawn_app(Backend::Embedded, &[]).await;
    let response = app.get("/nothing/here").await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    let response = app.client.post(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    app.stop().await.unwrap();
}

/// The binary with a clean environment (only what the test sets).
fn binary(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_health-agent"));
    command
        .env_clear()
        .env("DATA_DIR", data_dir)
        .current_dir(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[test]
fn a_port_out_of_range_fails_fast_naming_the_variable() {
    let data_dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = binary(data_dir.path())
        .env("API_PORT", "99999")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(started.elapsed() < Duration::from_secs(5));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("API_PORT"), "{stderr}");
}

#[test]
fn config_hides_secrets() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = binary(data_dir.path())
        .arg("config")
        .env("OPENAI_API_KEY", "sk-test-should-not-appear")
        .env("DATABASE_URL", "postgresql://app:hunter2@127.0.0.1:5432/x")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("OPENAI_API_KEY=(set, hidden)"), "{stdout}");
    assert!(
        stdout.contains("DATABASE_URL=postgresql://app:***@127.0.0.1:5432/x"),
        "{stdout}"
    );
    assert!(!stdout.contains("sk-test-should-not-appear") && !stdout.contains("hunter2"));
}

#[test]
fn the_binary_serves_health_with_an_empty_environment_and_stops_on_sigterm() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = binary(data_dir.path())
        .env("API_HOST", "127.0.0.1")
        .env("API_PORT", "0")
        .spawn()
        .unwrap();
    // The start-up line names the address: "... GET http://127.0.0.1:PORT/health".
    let stdout = child.stdout.take().unwrap();
    let (found, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(at) = line.find("GET http://") {
                let url = line[at + 4..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = found.send(url);
            }
        }
    });
    let url = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("the binary announced its address");
    let body = plain_http::get(&url);
    assert!(body.contains(r#""status":"healthy""#), "{body}");
    assert!(body.contains(r#""database":"connected""#), "{body}");

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status after SIGTERM: {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the binary did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

mod plain_http {
    /// A blocking GET without pulling reqwest's blocking feature: a tiny HTTP/1.0 client.
    pub fn get(url: &str) -> String {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").expect("http url");
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut stream = std::net::TcpStream::connect(host).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }
}

#[tokio::test]
async fn health_on_postgres_with_and_without_pgvector_and_a_second_start_applies_nothing() {
    for (backend, name) in [
        (Backend::Postgres, "postgres+pgvector"),
        (Backend::PlainPostgres, "postgres"),
    ] {
        let Some(backend) = backend.available() else {
            continue;
        };
        let app = spawn_app(backend, &[]).await;
        let body: serde_json::Value = app.get("/health").await.json().await.unwrap();
        assert_eq!(body["status"], "healthy");
        assert_eq!(body["backend"], name);
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(metrics.contains("db_pool_max_connections"), "{metrics}");
        let stopped = app.shut_down().await.unwrap();

        let report = health_agent::store::migrate(&health_agent::store::StoreConfig::Postgres {
            url: stopped
                .database_url()
                .expect("a PostgreSQL database")
                .to_owned(),
            max_connections: 2,
        })
        .await
        .unwrap();
        assert!(
            report.applied.is_empty(),
            "a second start applied {:?}",
            report.applied
        );
        let app = stopped.start().await;
        assert_eq!(app.get("/health").await.status(), 200);
        app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn health_is_degraded_while_the_database_is_away_and_recovers() {
    let Some(backend) = Backend::PlainPostgres.available() else {
        return;
    };
    let (app, proxy) = spawn_app_behind_proxy(backend, &[]).await;
    assert_eq!(app.get("/health").await.status(), 200);

    proxy.cut();
    let response = app.get("/health").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["database"], "unavailable");
    assert!(
        body["error"].as_str().unwrap().contains("database"),
        "{body}"
    );

    proxy.restore();
    assert!(
        eventually(Duration::from_secs(10), || async {
            app.get("/health").await.status() == 200
        })
        .await,
        "/health did not recover within 10 s"
    );
    app.stop().await.unwrap();
}
