//! Durable intake: the bot is killed (`SIGKILL`) and restarted while people write to it; every
//! message is handled exactly once, in order per person.
//!
//! The bot runs as a child process (the real binary, `RUN_MODE=bot`) against the fake Bot API
//! of this process and a fresh PostgreSQL database. The fake behaves as Telegram does: an
//! update is confirmed only when the bot asks `getUpdates` with a later offset, and an
//! unconfirmed update is sent again to whoever asks next.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::fakes::telegram::{self, FakeTelegram, TOKEN};
use crate::support::db::{database_url, TestDatabase};

const PEOPLE: i64 = 50;
const MEALS: i64 = 20;
const FIRST_PERSON: i64 = 7001;
const KILLS: usize = 3;
/// Everything must be handled within this after the last restart.
/// Generous: replies are throttled as Telegram requires (1 per second per chat, 30 per second in
/// all), and CI runs this beside the other tests on two cores. The test ends as soon as all is
/// handled.
const SETTLE: Duration = Duration::from_secs(300);

/// The meal text of person-independent number `n` (1-based): its grams say which it is.
fn meal(n: i64) -> String {
    format!("{} g of rice", 100 + n)
}

fn meal_number(description: &str) -> Option<i64> {
    let grams: i64 = description.split_whitespace().next()?.parse().ok()?;
    Some(grams - 100)
}

/// A small deterministic generator (xorshift), seeded from the clock and printed, so that a
/// failing run can be repeated with `DURABLE_SEED`.
struct Random(u64);

impl Random {
    fn new() -> Self {
        let seed = std::env::var("DURABLE_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|since| since.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        eprintln!("durable intake: DURABLE_SEED={seed}");
        Self(seed)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn spawn_bot(telegram: &FakeTelegram, database: &str, data_dir: &Path, run: usize) -> Child {
    let allowed: Vec<String> = (0..PEOPLE)
        .map(|p| (FIRST_PERSON + p).to_string())
        .collect();
    let log = std::fs::File::create(data_dir.join(format!("bot-{run}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_health-agent"))
        .env_clear()
        .env("RUN_MODE", "bot")
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("TELEGRAM_API_URL", telegram.api_url())
        .env("ALLOWED_TELEGRAM_IDS", allowed.join(","))
        .env("DATABASE_URL", database)
        .env("DATA_DIR", data_dir)
        .env("API_HOST", "127.0.0.1")
        .env("API_PORT", "0")
        .env("LOG_LEVEL", "info")
        .current_dir(data_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts")
}

/// `(person, description, created_at)` of every food entry, oldest first per person.
async fn entries(client: &tokio_postgres::Client) -> Vec<(i64, String)> {
    client
        .query(
            "SELECT user_id, description FROM food_entries ORDER BY user_id, created_at, seq",
            &[],
        )
        .await
        .map(|rows| rows.iter().map(|row| (row.get(0), row.get(1))).collect())
        .unwrap_or_default()
}

async fn pending_in_inbox(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM inbox WHERE done_at IS NULL", &[])
        .await
        .map(|row| row.get(0))
        .unwrap_or(i64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_people_twenty_meals_three_kills_every_meal_once_in_order() {
    let Some(server) = database_url("TEST_DATABASE_URL") else {
        return;
    };
    let database = TestDatabase::create(&server).await.unwrap();
    let telegram = telegram::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    if std::env::var_os("DURABLE_KEEP").is_some() {
        eprintln!("durable intake: logs in {}", data_dir.path().display());
    }
    let mut random = Random::new();
    let started = Instant::now();

    let mut bot = spawn_bot(&telegram, database.url(), data_dir.path(), 0);
    // People write in rounds: meal n of everyone, then meal n + 1, a few milliseconds apart.
    let sender = {
        let state = telegram.state.clone();
        let address = telegram.address;
        tokio::spawn(async move {
            let telegram = FakeTelegram { address, state };
            for n in 1..=MEALS {
                for person in 0..PEOPLE {
                    telegram.send_text(FIRST_PERSON + person, &meal(n));
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    // Three kills at random moments while the meals arrive (the rounds take about 3 s; the
    // first start also has to migrate), each followed by a restart.
    let mut kills = Vec::new();
    for run in 1..=KILLS {
        let wait = Duration::from_millis(400 + random.below(1800));
        tokio::time::sleep(wait).await;
        bot.start_kill().expect("SIGKILL sent");
        let status = bot.wait().await.unwrap();
        assert!(!status.success(), "the bot was killed: {status}");
        kills.push(started.elapsed());
        bot = spawn_bot(&telegram, database.url(), data_dir.path(), run);
    }
    sender.await.unwrap();

    let (client, connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let total = (PEOPLE * MEALS) as usize;
    let deadline = Instant::now() + SETTLE;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        seen = entries(&client).await;
        if seen.len() >= total && pending_in_inbox(&client).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let settled = started.elapsed();
    // A little longer: a duplicate would show up now if any were coming.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen_now = entries(&client).await;
    bot.start_kill().unwrap();
    let _ = bot.wait().await;

    let replayed: i64 = client
        .query_one("SELECT count(*) FROM inbox WHERE attempts > 0", &[])
        .await
        .unwrap()
        .get(0);
    let kept: i64 = client
        .query_one("SELECT count(*) FROM inbox", &[])
        .await
        .unwrap()
        .get(0);
    let outcomes: Vec<(Option<String>, i64)> = client
        .query(
            "SELECT outcome, count(*) FROM inbox GROUP BY outcome ORDER BY outcome",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    eprintln!("durable intake: inbox outcomes {outcomes:?}");
    let waiting: Vec<(i64, i64, i32)> = client
        .query(
            "SELECT user_id, count(*), max(attempts) FROM inbox WHERE done_at IS NULL \
             GROUP BY user_id ORDER BY user_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    if !waiting.is_empty() {
        eprintln!(
            "durable intake: not done (person, entries, attempts): {waiting:?}; {} messages sent",
            telegram.calls_of("sendMessage")
        );
    }
    if seen.len() != total {
        for run in 0..=KILLS {
            let log = std::fs::read_to_string(data_dir.path().join(format!("bot-{run}.log")))
                .unwrap_or_default();
            let lines: Vec<&str> = log.lines().filter(|l| !l.contains(" INFO ")).collect();
            eprintln!(
                "--- bot run {run}: {} lines, not INFO:",
                log.lines().count()
            );
            for line in lines.iter().take(20) {
                eprintln!("{line}");
            }
        }
    }
    let updates_sent = telegram.calls_of("getUpdates");
    eprintln!(
        "durable intake: {total} meals from {PEOPLE} people; kills at {kills:?}; \
         {} entries after {settled:?}; {kept} inbox entries, {replayed} handled again after a \
         restart; {updates_sent} getUpdates calls",
        seen.len()
    );
    drop(client);
    database.drop_database().await;
    if std::env::var_os("DURABLE_KEEP").is_some() {
        let _ = data_dir.keep();
    }

    assert_eq!(seen, seen_now, "nothing changed after settling");
    assert_eq!(seen.len(), total, "every meal saved exactly once");
    let mut per_person: HashMap<i64, Vec<i64>> = HashMap::new();
    for (person, description) in &seen {
        let n = meal_number(description)
            .unwrap_or_else(|| panic!("an entry that is not a numbered meal: {description:?}"));
        per_person.entry(*person).or_default().push(n);
    }
    assert_eq!(per_person.len(), PEOPLE as usize);
    let expected: Vec<i64> = (1..=MEALS).collect();
    for (person, numbers) in per_person {
        assert_eq!(
            numbers, expected,
            "person {person}: each meal once, in order"
        );
    }
}

/// `POST /api/v1/chat` goes through the same inbox: a message a killed process kept is handled
/// at the next start, and a retry with the same `Idempotency-Key` after a restart gets the
/// stored answer instead of a second handling.
#[tokio::test]
async fn api_chat_messages_survive_a_restart_and_a_retry_gets_the_stored_answer() {
    use health_actors::domain::UserId;
    use serde_json::{json, Value};

    use health_actors::testing::eventually;

    use crate::support::app::{spawn_app, Backend};

    const ADMIN: &str = "admin-key-for-durable-tests";
    let Some(backend) = Backend::Postgres.available() else {
        return;
    };
    let vars = [("RUN_MODE", "api"), ("API_KEYS", ADMIN)];
    let chat = |app: &crate::support::app::TestApp, key: &str, message: &str| {
        app.client
            .post(app.url("/api/v1/chat"))
            .bearer_auth(ADMIN)
            .header("idempotency-key", key)
            .json(&json!({"user_id": 5, "message": message}))
            .send()
    };

    let first_app = spawn_app(backend, &vars).await;
    let created = first_app
        .client
        .post(first_app.url("/api/v1/users"))
        .bearer_auth(ADMIN)
        .json(&json!({"id": 5, "timezone": "Europe/Paris"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let eggs = chat(&first_app, "meal-1", "2 eggs").await.unwrap();
    assert_eq!(eggs.status(), 200);
    let eggs: Value = eggs.json().await.unwrap();
    assert!(eggs["saved"]["food_entry"].is_object(), "{eggs}");
    let stopped = first_app.shut_down().await.unwrap();

    // A process that kept "a banana" (key meal-2) and was killed before handling it.
    let database_url = stopped.database_url().expect("a PostgreSQL database");
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let banana_id = health_agent::http::api::idempotent_message_id(UserId(5), "meal-2");
    client
        .execute(
            "INSERT INTO inbox (id, source, user_id, chat_id, content, received_at) \
             VALUES ($1, 'api', 5, 5, $2, now())",
            &[&banana_id, &json!({"kind": "text", "text": "a banana"})],
        )
        .await
        .unwrap();

    let second_app = stopped.start().await;
    // Handled at start, before any retry.
    let handled = eventually(Duration::from_secs(20), || async {
        client
            .query_one(
                "SELECT done_at IS NOT NULL FROM inbox WHERE id = $1",
                &[&banana_id],
            )
            .await
            .unwrap()
            .get::<_, bool>(0)
    })
    .await;
    assert!(handled, "the kept message is handled after the restart");
    let banana = chat(&second_app, "meal-2", "a banana").await.unwrap();
    assert_eq!(banana.status(), 200);
    assert_eq!(banana.headers()["idempotent-replay"], "true");
    let banana: Value = banana.json().await.unwrap();
    assert!(
        banana["replies"][0]["text"]
            .as_str()
            .unwrap()
            .contains("banana"),
        "{banana}"
    );
    assert!(banana["saved"]["food_entry"].is_object(), "{banana}");
    // The first message's retry after the restart: the same answer, nothing saved twice.
    let again = chat(&second_app, "meal-1", "2 eggs").await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    // The stored answer keeps what was said (buttons belong to the first answer only).
    let texts = |answer: &Value| -> Vec<String> {
        answer["replies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|reply| reply["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(texts(&again), texts(&eggs));
    assert_eq!(again["saved"], eggs["saved"]);
    let conflict = chat(&second_app, "meal-1", "a pizza").await.unwrap();
    assert_eq!(conflict.status(), 409);
    let entries: i64 = client
        .query_one("SELECT count(*) FROM food_entries WHERE user_id = 5", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(entries, 2, "2 eggs and a banana, once each");
    drop(client);
    second_app.stop().await.unwrap();
}
