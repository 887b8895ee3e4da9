//! Durable intake: the bot is killed (`SIGKILL`) and restarted while people write to it; every
//! message is handled exactly once, in order per person. A crash loop (four kills within 12 s
//! while three people send ten meals each, on SQLite and PostgreSQL) loses no meal, doubles
//! none, turns no message that only waited into a dead letter, and asks nobody to send a saved
//! meal again. `health_inbox_pending` is current at every scrape.
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
    spawn_bot_for(
        telegram,
        FIRST_PERSON,
        PEOPLE,
        Some(database),
        data_dir,
        run,
    )
}

/// The bot for `people` people from `first`, on PostgreSQL at `database` or, when `None`, on
/// the embedded SQLite file under `data_dir`. Its log goes to `bot-{run}.log` there.
fn spawn_bot_for(
    telegram: &FakeTelegram,
    first: i64,
    people: i64,
    database: Option<&str>,
    data_dir: &Path,
    run: usize,
) -> Child {
    let allowed: Vec<String> = (0..people).map(|p| (first + p).to_string()).collect();
    let log = std::fs::File::create(data_dir.join(format!("bot-{run}.log"))).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_health-agent"));
    command.env_clear();
    if let Some(database) = database {
        command.env("DATABASE_URL", database);
    }
    command
        .env("RUN_MODE", "bot")
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("TELEGRAM_API_URL", telegram.api_url())
        .env("ALLOWED_TELEGRAM_IDS", allowed.join(","))
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

/// The crash loop: four `SIGKILL`s within 12 s while three people send ten meals each.
const LOOP_PEOPLE: i64 = 3;
const LOOP_MEALS: i64 = 10;
const LOOP_KILLS: usize = 4;
/// Between two rounds of meals (one from each person): ten rounds take a second, far faster
/// than the answers may go out (one a second per chat), so most meals wait in the inbox
/// across several kills.
const LOOP_ROUND: Duration = Duration::from_millis(100);
/// The kills: each about `LOOP_KILL_EVERY` after the one before (± 300 ms of seeded jitter),
/// the fourth before 9.5 s: the last meals still wait at the fourth start.
const LOOP_KILL_EVERY: Duration = Duration::from_millis(2000);
/// Everything must be handled within this after the last restart; the test ends as soon as it is.
const LOOP_SETTLE: Duration = Duration::from_secs(120);

/// What a crash loop left behind.
struct CrashLoop {
    /// How many food entries each meal (person, number) has.
    saved: HashMap<(i64, i64), usize>,
    /// The inbound ids of the dead letters, with whether their meal was saved.
    dead_letters: Vec<(uuid::Uuid, bool)>,
    /// Texts that asked the person to send a message again, per person.
    send_again: Vec<(i64, String)>,
    /// Inbox entries not done when the test stopped waiting.
    pending: u64,
}

impl CrashLoop {
    fn lost(&self) -> usize {
        (0..LOOP_PEOPLE)
            .flat_map(|p| (1..=LOOP_MEALS).map(move |n| (p, n)))
            .filter(|meal| self.saved.get(meal).copied().unwrap_or(0) == 0)
            .count()
    }

    fn doubled(&self) -> usize {
        self.saved.values().filter(|&&count| count > 1).count()
    }

    /// Dead letters of entries whose turn committed nothing (the offline agent's only effect
    /// of a meal is its entry): entries that never ran, or ran without saving anything.
    fn dead_letters_that_saved_nothing(&self) -> usize {
        self.dead_letters.iter().filter(|(_, saved)| !saved).count()
    }
}

/// Runs the crash loop for people from `first` on PostgreSQL at `database` (or the embedded
/// SQLite when `None`), and reads what it left.
async fn crash_loop(first: i64, database: Option<&str>) -> CrashLoop {
    use health_actors::testing::eventually;
    use health_agent::store::{self, StoreConfig};

    let telegram = telegram::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut random = Random::new();
    let started = Instant::now();
    let spawn = |run| {
        spawn_bot_for(
            &telegram,
            first,
            LOOP_PEOPLE,
            database,
            data_dir.path(),
            run,
        )
    };
    let mut bot = spawn(0);
    let sender = {
        let telegram = FakeTelegram {
            address: telegram.address,
            state: telegram.state.clone(),
        };
        tokio::spawn(async move {
            let mut last = 0;
            for n in 1..=LOOP_MEALS {
                for person in 0..LOOP_PEOPLE {
                    last = telegram.send_text(first + person, &meal(n));
                }
                tokio::time::sleep(LOOP_ROUND).await;
            }
            last
        })
    };
    let mut kills = Vec::new();
    for run in 1..=LOOP_KILLS {
        let jitter = Duration::from_millis(random.below(600));
        tokio::time::sleep(LOOP_KILL_EVERY - Duration::from_millis(300) + jitter).await;
        bot.start_kill().expect("SIGKILL sent");
        let status = bot.wait().await.unwrap();
        assert!(!status.success(), "the bot was killed: {status}");
        kills.push(started.elapsed());
        bot = spawn(run);
    }
    assert!(
        kills
            .last()
            .is_some_and(|last| *last < Duration::from_secs(13)),
        "four kills within about 12 s: {kills:?}"
    );
    let last_update = sender.await.unwrap();

    let config = match database {
        Some(url) => StoreConfig::Postgres {
            url: url.to_owned(),
            max_connections: 2,
        },
        None => StoreConfig::Embedded {
            path: data_dir.path().join("data").join("health_agent.db"),
        },
    };
    let (store, _) = store::open(&config).await.expect("the store opens");
    // Settled: Telegram had every update confirmed and the inbox holds nothing unfinished.
    let settled = eventually(LOOP_SETTLE, || async {
        telegram
            .state
            .confirmed
            .load(std::sync::atomic::Ordering::SeqCst)
            > last_update
            && store
                .inbox_backlog()
                .await
                .is_ok_and(|backlog| backlog.pending == 0)
    })
    .await;
    let pending = store
        .inbox_backlog()
        .await
        .map(|b| b.pending)
        .unwrap_or(u64::MAX);
    bot.start_kill().unwrap();
    let _ = bot.wait().await;

    let today = chrono::Utc::now().date_naive();
    let mut saved = HashMap::new();
    let mut saved_ids = std::collections::HashSet::new();
    for person in 0..LOOP_PEOPLE {
        let user = health_actors::domain::UserId(first + person);
        let entries = store
            .food_entries(
                user,
                today - chrono::Duration::days(2),
                today + chrono::Duration::days(2),
            )
            .await
            .unwrap();
        for entry in entries {
            let n = meal_number(&entry.description)
                .unwrap_or_else(|| panic!("an entry that is not a numbered meal: {entry:?}"));
            *saved.entry((person, n)).or_insert(0) += 1;
            saved_ids.insert(entry.id);
        }
    }
    let dead_letters = store
        .dead_letters(1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|letter| {
            let inbound: uuid::Uuid = letter.message["inbound_id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .expect("a dead letter names its inbound id");
            let entry = health_agent::assistant::entry_id_for(inbound);
            (inbound, saved_ids.contains(&entry))
        })
        .collect();
    let send_again = telegram
        .sent()
        .into_iter()
        .filter_map(|sent| {
            let text = sent.text?;
            text.to_lowercase()
                .contains("send it again")
                .then_some((sent.chat_id - first, text))
        })
        .collect();
    let report = CrashLoop {
        saved,
        dead_letters,
        send_again,
        pending,
    };
    eprintln!(
        "crash loop ({}): kills at {kills:?}; settled {settled} after {:?}; {} lost, {} doubled, \
         {} dead letters ({} of entries that saved nothing), {} \"send it again\" texts, {} \
         entries pending; {} messages sent",
        if database.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        started.elapsed(),
        report.lost(),
        report.doubled(),
        report.dead_letters.len(),
        report.dead_letters_that_saved_nothing(),
        report.send_again.len(),
        report.pending,
        telegram.calls_of("sendMessage"),
    );
    if std::env::var_os("DURABLE_KEEP").is_some() {
        eprintln!("crash loop: logs in {}", data_dir.path().display());
        let _ = data_dir.keep();
    }
    report
}

fn assert_crash_loop_lost_nothing_and_lied_to_no_one(report: &CrashLoop) {
    assert_eq!(report.pending, 0, "every kept message was handled");
    assert_eq!(report.lost(), 0, "no meal lost: {:?}", report.saved);
    assert_eq!(
        report.doubled(),
        0,
        "no meal saved twice: {:?}",
        report.saved
    );
    assert_eq!(
        report.dead_letters_that_saved_nothing(),
        0,
        "no dead letter for a message that never ran: {:?}",
        report.dead_letters
    );
    // Every meal was saved, so no text may ask for one to be sent again.
    assert!(
        report.send_again.is_empty(),
        "nobody is asked to send a saved meal again: {:?}",
        report.send_again
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_on_sqlite_loses_nothing_doubles_nothing_and_asks_no_one_to_resend() {
    let report = crash_loop(8101, None).await;
    assert_crash_loop_lost_nothing_and_lied_to_no_one(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_on_postgres_loses_nothing_doubles_nothing_and_asks_no_one_to_resend() {
    let Some(server) = database_url("TEST_DATABASE_URL") else {
        return;
    };
    let database = TestDatabase::create(&server).await.unwrap();
    let report = crash_loop(8201, Some(database.url())).await;
    database.drop_database().await;
    assert_crash_loop_lost_nothing_and_lied_to_no_one(&report);
}

/// `health_inbox_pending` is read at each scrape of `/metrics`, not at the inbox's next
/// maintenance round (every 15 s): a backlog shows at once, and so does its end.
///
/// The application runs as its own process (the gauge is global to a process, and other tests
/// of this binary run applications beside this one), in API mode on SQLite; the entries are
/// Telegram messages, which an API process keeps and never handles.
#[tokio::test]
async fn the_inbox_backlog_gauge_is_current_at_every_scrape() {
    use health_actors::inbound::Inbound;
    use health_actors::inbox::SOURCE_TELEGRAM;
    use health_actors::ports::{InboxOutcome, Write};
    use health_actors::testing::{eventually, RecordingOutbox};
    use health_agent::store::{self, StoreConfig};

    let data_dir = tempfile::tempdir().unwrap();
    let log_path = data_dir.path().join("api.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut app = Command::new(env!("CARGO_BIN_EXE_health-agent"))
        .env_clear()
        .env("RUN_MODE", "api")
        .env("DATA_DIR", data_dir.path())
        .env("API_HOST", "127.0.0.1")
        .env("API_PORT", "0")
        .env("LOG_LEVEL", "info")
        .current_dir(data_dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    // The address it serves on, from its start-up line.
    let address = || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let (_, rest) = log.split_once("is serving: GET http://")?;
        let (address, _) = rest.split_once("/health")?;
        Some(address.to_owned())
    };
    assert!(
        eventually(Duration::from_secs(30), || async { address().is_some() }).await,
        "the application starts: {:?}",
        std::fs::read_to_string(&log_path)
    );
    let metrics_url = format!("http://{}/metrics", address().unwrap());
    let client = reqwest::Client::new();
    let pending = || async {
        let text = client
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix("health_inbox_pending "))
            .and_then(|value| value.trim().parse::<f64>().ok())
    };
    assert_eq!(pending().await, Some(0.0));

    let config = StoreConfig::Embedded {
        path: data_dir.path().join("data").join("health_agent.db"),
    };
    let (store, _) = store::open(&config).await.expect("the store opens");
    let outbox = RecordingOutbox::new();
    let entries: Vec<_> = [9301, 9302]
        .into_iter()
        .map(|person| {
            Inbound::text(
                health_actors::domain::UserId(person),
                health_actors::domain::ChatId(person),
                "2 eggs",
                outbox.clone(),
            )
            .to_inbox(SOURCE_TELEGRAM)
        })
        .collect();
    assert_eq!(store.inbox_accept(&entries).await.unwrap(), [true, true]);
    // Scraped well within the 15 s between maintenance rounds (the first ran at start, before
    // these entries): only the scrape itself can have read them.
    assert_eq!(
        pending().await,
        Some(2.0),
        "the backlog shows at the next scrape"
    );
    store
        .apply(&[Write::InboxDone {
            id: entries[0].id,
            outcome: InboxOutcome::Answered,
            replies: Vec::new(),
            at: chrono::Utc::now(),
        }])
        .await
        .unwrap();
    assert_eq!(pending().await, Some(1.0), "and so does its end");
    drop(store);
    app.start_kill().unwrap();
    let _ = app.wait().await;
}
