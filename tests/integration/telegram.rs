//! The Telegram bot end to end: the real application in `RUN_MODE=bot` with the embedded store,
//! polling a fake Bot API on loopback (see `fakes::telegram`).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use health_actors::domain::UserId;
use health_actors::ports::Store;
use health_actors::testing::eventually;
use health_agent::startup::Application;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fakes::telegram::{self, FakeTelegram, TOKEN};
use crate::support::app::test_settings;

const PERSON: i64 = 5001;
const STRANGER: i64 = 6666;
const JPEG_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/meal.jpg");

fn jpeg() -> Vec<u8> {
    std::fs::read(JPEG_PATH).expect("the test photo tests/fixtures/meal.jpg")
}

struct BotApp {
    telegram: FakeTelegram,
    store: Arc<dyn Store>,
    address: std::net::SocketAddr,
    data_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl BotApp {
    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("the application stopped within 30 s")
                .expect("the application task did not panic")
                .expect("the application stopped cleanly");
        }
    }

    /// Sends `text` as the person and returns the first answer that contains `needle`.
    async fn say(&self, user: i64, text: &str, needle: &str) -> String {
        let before = self.telegram.sent_to(user).len();
        self.telegram.send_text(user, text);
        self.telegram.wait_for_text(user, before, needle).await
    }

    async fn entries(&self, user: i64) -> Vec<health_actors::domain::FoodEntry> {
        let today = Utc::now().date_naive();
        self.store
            .food_entries(
                UserId(user),
                today - chrono::Duration::days(400),
                today + chrono::Duration::days(2),
            )
            .await
            .unwrap()
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.address))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for BotApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

async fn spawn_bot() -> BotApp {
    spawn_bot_with(&[]).await
}

async fn spawn_bot_with(extra: &[(&str, &str)]) -> BotApp {
    let telegram = telegram::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let api_url = telegram.api_url();
    let allowed = format!("{PERSON},5002,5003,5004,5005");
    let mut vars = vec![
        ("RUN_MODE", "bot"),
        ("TELEGRAM_BOT_TOKEN", TOKEN),
        ("TELEGRAM_API_URL", api_url.as_str()),
        ("ALLOWED_TELEGRAM_IDS", allowed.as_str()),
    ];
    vars.extend_from_slice(extra);
    let settings = test_settings(data_dir.path(), &vars);
    let application = Application::build(settings).await.unwrap();
    let store = application.store();
    let address = application.address();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    BotApp {
        telegram,
        store,
        address,
        data_dir,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

#[tokio::test]
async fn start_a_text_meal_and_today_through_the_bot_api() {
    let app = spawn_bot().await;
    let welcome = app.say(PERSON, "/start", "health coach").await;
    assert!(welcome.contains("/today"), "{welcome}");
    assert!(welcome.contains("share your location"), "{welcome}");
    assert_eq!(app.telegram.calls_of("setMyCommands"), 1);

    let reply = app
        .say(PERSON, "2 eggs and a slice of toast", "Saved")
        .await;
    let entries = app.entries(PERSON).await;
    assert_eq!(entries.len(), 1, "the reply came after the commit");
    assert_eq!(entries[0].description, "2 eggs and a slice of toast");
    let kcal = format!("{:.0} kcal", entries[0].total.kcal);
    assert!(reply.contains(&kcal), "{reply} should show {kcal}");

    let today = app.say(PERSON, "/today@health_test_bot", "kcal").await;
    assert!(today.contains("2 eggs and a slice of toast"), "{today}");
    assert!(today.contains(&kcal), "{today}");
    app.stop().await;
}

#[tokio::test]
async fn a_stranger_is_refused_once_and_nothing_about_them_is_stored() {
    let app = spawn_bot().await;
    let refusal = app
        .say(STRANGER, "2 eggs and a slice of toast", "private")
        .await;
    assert!(!refusal.contains("kcal"), "{refusal}");
    // A second message within the hour is dropped without a word.
    app.telegram.send_text(STRANGER, "/today");
    assert!(
        eventually(Duration::from_secs(20), || async {
            app.metrics()
                .await
                .contains("telegram_refused_updates_total{action=\"ignored\"}")
        })
        .await,
        "the second message was never counted"
    );
    // The person on the list is answered meanwhile; the stranger got exactly one message.
    app.say(PERSON, "/help", "Commands").await;
    let to_stranger = app.telegram.sent_to(STRANGER);
    assert_eq!(to_stranger.len(), 1, "{to_stranger:#?}");
    assert!(app.store.user(UserId(STRANGER)).await.unwrap().is_none());
    assert!(app.entries(STRANGER).await.is_empty());
    assert!(app
        .store
        .recent_messages(UserId(STRANGER), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(!app
        .data_dir
        .path()
        .join("photos")
        .join(STRANGER.to_string())
        .exists());
    app.stop().await;
}

#[tokio::test]
async fn a_photo_is_downloaded_checked_stored_and_answered_honestly() {
    let app = spawn_bot().await;
    let user = 5002;
    let photo = jpeg();
    let file_id = app.telegram.add_file("dish.jpeg", photo.clone());
    let before = app.telegram.sent_to(user).len();
    app.telegram
        .send_photo(user, &file_id, photo.len() as u64, Some("rice and chicken"));
    let reply = app
        .telegram
        .wait_for_text(user, before, "vision model")
        .await;
    assert!(reply.contains("rice and chicken"), "{reply}");
    assert!(!reply.contains("kcal"), "no made-up numbers: {reply}");

    let dir = app.data_dir.path().join("photos").join(user.to_string());
    let stored: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].extension().unwrap(), "jpg");
    let name = stored[0].file_stem().unwrap().to_str().unwrap();
    assert!(uuid::Uuid::parse_str(name).is_ok(), "{name}");
    assert_eq!(std::fs::read(&stored[0]).unwrap(), photo);
    assert!(
        app.entries(user).await.is_empty(),
        "nothing saved from a photo"
    );
    app.stop().await;
}

#[tokio::test]
async fn oversized_and_non_image_files_are_refused_with_a_reason() {
    let app = spawn_bot().await;
    let user = 5003;
    let huge = app.telegram.add_file("huge.jpg", jpeg());
    app.telegram.report_size(&huge, 11 * 1024 * 1024);
    let before = app.telegram.sent_to(user).len();
    app.telegram
        .send_document(user, &huge, "huge.jpg", 11 * 1024 * 1024);
    let reply = app.telegram.wait_for_text(user, before, "10 MB").await;
    assert!(reply.contains("11.0 MB"), "{reply}");

    let pdf = app
        .telegram
        .add_file("menu.pdf", b"%PDF-1.7\n% not a picture\n".to_vec());
    let before = app.telegram.sent_to(user).len();
    app.telegram.send_document(user, &pdf, "menu.pdf", 25);
    let reply = app
        .telegram
        .wait_for_text(user, before, "JPEG, PNG or WebP")
        .await;
    assert!(!reply.contains("kcal"), "{reply}");
    assert!(!app
        .data_dir
        .path()
        .join("photos")
        .join(user.to_string())
        .exists());
    app.stop().await;
}

#[tokio::test]
async fn a_429_on_send_message_is_retried_after_the_wait_telegram_names() {
    let app = spawn_bot().await;
    let user = 5004;
    app.telegram.fail_next("sendMessage", 429, 1);
    let started = std::time::Instant::now();
    let reply = app.say(user, "/help", "Commands").await;
    assert!(reply.contains("/today"), "{reply}");
    assert!(
        app.telegram.calls_of("sendMessage") >= 2,
        "the refused message was sent again"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "retry_after (1 s) was honoured"
    );
    app.stop().await;
}

/// Telegram holds a quiet `getUpdates` for the 25 s the bot asks for and then answers an empty
/// list: the normal case of a quiet bot. The HTTP client used to give up after 17 s, so every
/// quiet poll was a failure (a WARN, a counted error) and the pause after failures grew until
/// an answer after three quiet minutes came about 30 s late.
#[tokio::test]
async fn a_message_after_a_quiet_spell_is_answered_at_once() {
    let app = spawn_bot().await;
    let user = 5002;
    // One whole quiet poll: held 25 s by the fake, answered empty, and asked again.
    assert!(
        eventually(Duration::from_secs(45), || async {
            app.telegram.calls_of("getUpdates") >= 2
        })
        .await,
        "the bot polls again after a quiet poll"
    );
    let metrics = app.metrics().await;
    assert!(
        !metrics.lines().any(|line| {
            line.starts_with(telegram::SEND_FAILURES_METRIC) && line.contains("getUpdates")
        }),
        "a quiet poll is not a failure: {metrics}"
    );
    let asked = tokio::time::Instant::now();
    let reply = app.say(user, "/help", "Commands").await;
    assert!(reply.contains("/today"), "{reply}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "answered in {:?} after the quiet spell",
        asked.elapsed()
    );
    app.stop().await;
}

/// 25 messages from one person within 30 s are all answered, none more than 2 s after
/// Telegram's one message a second per chat allows. The throttle held private chats to 20 a
/// minute too, so from the 21st answer on each waited until the minute was over (20-40 s).
#[tokio::test]
async fn a_burst_from_one_person_is_answered_at_one_a_second() {
    let app = spawn_bot().await;
    let user = 5003;
    let before = app.telegram.sent_to(user).len();
    let start = tokio::time::Instant::now();
    let mut sent_at = Vec::new();
    for index in 0..25u32 {
        // As a person types: one message every 1.1 s, 25 in 27.5 s.
        tokio::time::sleep_until(start + Duration::from_millis(1100) * index).await;
        sent_at.push(tokio::time::Instant::now());
        app.telegram.send_text(user, "/today");
    }
    assert!(
        eventually(Duration::from_secs(60), || async {
            app.telegram.sent_to(user).len() >= before + 25
        })
        .await,
        "25 answers; got {}",
        app.telegram.sent_to(user).len() - before
    );
    let answers: Vec<_> = app
        .telegram
        .sent_to(user)
        .into_iter()
        .skip(before)
        .collect();
    assert_eq!(answers.len(), 25, "one answer a message: {answers:#?}");
    let mut allowed_from = start;
    for (index, (answer, asked)) in answers.iter().zip(&sent_at).enumerate() {
        // The earliest Telegram allows: when it was asked, and a second after the last answer.
        let earliest = (*asked).max(allowed_from);
        let late = answer.at.saturating_duration_since(earliest);
        assert!(
            late <= Duration::from_secs(2),
            "answer {} came {late:?} after Telegram's limit allowed it",
            index + 1
        );
        allowed_from = answer.at + Duration::from_secs(1);
    }
    app.stop().await;
}

/// The sum of every sample of `name` (any labels) in a Prometheus text page.
fn metric_sum(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.split(['{', ' ']).next() == Some(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `/metrics` counts meals saved and messages sent, and a "typing..." notice Telegram refused
/// as a typing failure, not as an answer that could not be delivered.
#[tokio::test]
async fn metrics_count_meals_saved_messages_sent_and_typing_failures_apart() {
    let app = spawn_bot().await;
    let user = 5005;
    let before = app.metrics().await;
    app.say(user, "2 eggs", "Saved").await;
    app.say(user, "a banana", "Saved").await;
    let after = app.metrics().await;
    // Other tests share the process's recorder, so the counters grow at least by ours.
    let grew = |name: &str| metric_sum(&after, name) - metric_sum(&before, name);
    assert!(grew("health_meals_saved_total") >= 2.0, "{after}");
    assert!(grew("telegram_messages_sent_total") >= 2.0, "{after}");
    app.stop().await;

    // The model agent shows "typing..." before it asks the model; Telegram refuses it once.
    let model = crate::fakes::llm::start().await;
    model.script(
        "/v1/chat/completions",
        [crate::fakes::llm::openai_text("Noted.")],
    );
    let base_url = format!("{}/v1", model.base_url());
    let app = spawn_bot_with(&[
        ("OPENAI_API_KEY", "sk-test-key"),
        ("OPENAI_BASE_URL", base_url.as_str()),
        ("AGENT_MODEL", "openai:gpt-test"),
    ])
    .await;
    // A 400 (teloxide waits 10 s after a 5xx before it reports the failure).
    app.telegram.fail_next("sendChatAction", 400, 2);
    let before = app.metrics().await;
    app.say(user, "hello", "Noted.").await;
    // The notice is not awaited by the answer: wait for its count.
    let counted = eventually(Duration::from_secs(5), || async {
        let after = app.metrics().await;
        metric_sum(&after, "health_typing_failures_total")
            > metric_sum(&before, "health_typing_failures_total")
    })
    .await;
    assert!(counted, "a refused typing notice is counted as such");
    app.stop().await;
}

#[tokio::test]
async fn week_sends_a_png_chart_and_export_a_csv_of_every_entry() {
    let app = spawn_bot().await;
    let user = 5005;
    app.say(user, "/goal 1800 kcal", "1800").await;
    app.say(user, "2 eggs and a slice of toast", "Saved").await;
    app.say(user, "a cup of milk", "Saved").await;

    let before = app.telegram.sent_to(user).len();
    app.telegram.send_text(user, "/week");
    let chart = app
        .telegram
        .wait_for(user, before, "the chart", |s| s.method == "sendPhoto")
        .await;
    let png = chart.file.expect("the chart is uploaded");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert!(width >= 400 && height >= 300, "{width}x{height}");
    assert!(chart.caption.unwrap_or_default().contains("Calories"));
    app.telegram.wait_for_text(user, before, "Average").await;

    let before = app.telegram.sent_to(user).len();
    app.telegram.send_text(user, "/export");
    let export = app
        .telegram
        .wait_for(user, before, "the export", |s| s.method == "sendDocument")
        .await;
    assert!(
        export
            .file_name
            .as_deref()
            .unwrap_or_default()
            .ends_with(".csv"),
        "{:?}",
        export.file_name
    );
    let csv = String::from_utf8(export.file.expect("the CSV is uploaded")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("date,time,meal,description,kcal"),
        "{csv}"
    );
    let entries = app.entries(user).await;
    assert_eq!(lines.len(), 1 + entries.len(), "{csv}");
    assert_eq!(entries.len(), 2);
    for entry in &entries {
        let row = lines
            .iter()
            .find(|line| line.contains(&entry.description))
            .unwrap_or_else(|| panic!("no row for {}: {csv}", entry.description));
        assert!(row.starts_with(&entry.local_date.to_string()), "{row}");
        assert!(row.contains(&format!(",{:.0},", entry.total.kcal)), "{row}");
    }
    app.stop().await;
}

#[tokio::test]
async fn forget_me_asks_first_then_leaves_no_row_and_no_photo() {
    let app = spawn_bot().await;
    let user = PERSON;
    app.say(user, "2 eggs and a slice of toast", "Saved").await;
    let photo = jpeg();
    let file_id = app.telegram.add_file("lunch.jpeg", photo.clone());
    let before = app.telegram.sent_to(user).len();
    app.telegram
        .send_photo(user, &file_id, photo.len() as u64, None);
    app.telegram
        .wait_for_text(user, before, "vision model")
        .await;
    let photos = app.data_dir.path().join("photos").join(user.to_string());
    assert!(photos.exists());

    let before = app.telegram.sent_to(user).len();
    app.telegram.send_text(user, "/forget_me");
    let question = app
        .telegram
        .wait_for(user, before, "the confirmation", |s| {
            !s.button_data().is_empty()
        })
        .await;
    assert!(question
        .text
        .as_deref()
        .unwrap_or_default()
        .contains("can't be undone"));
    assert_eq!(
        question.button_data(),
        vec!["forget_me:yes", "forget_me:no"]
    );
    // Nothing is deleted before the person confirms.
    assert_eq!(app.entries(user).await.len(), 1);

    let before = app.telegram.sent_to(user).len();
    app.telegram
        .press_button(user, question.message_id, "forget_me:yes");
    let answer = app
        .telegram
        .wait_for(user, before, "deleted everything", |s| {
            s.text
                .as_deref()
                .is_some_and(|t| t.contains("deleted everything"))
        })
        .await;
    assert_eq!(
        (answer.method.as_str(), answer.message_id),
        ("editMessageText", question.message_id),
        "the question itself says it is done"
    );
    assert!(answer.button_data().is_empty(), "no button left to press");
    assert!(
        eventually(Duration::from_secs(20), || async { !photos.exists() }).await,
        "timed out: the photos are deleted"
    );
    assert!(app.store.user(UserId(user)).await.unwrap().is_none());
    assert!(app.entries(user).await.is_empty());
    assert!(app
        .store
        .recent_messages(UserId(user), 100)
        .await
        .unwrap()
        .is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_shared_location_sets_the_time_zone() {
    let app = spawn_bot().await;
    let user = 5004;
    let before = app.telegram.sent_to(user).len();
    app.telegram.send_location(user, 48.8566, 2.3522);
    let reply = app.telegram.wait_for_text(user, before, "time zone").await;
    assert!(reply.contains("Europe/Paris"), "{reply}");
    assert_eq!(
        app.store
            .user(UserId(user))
            .await
            .unwrap()
            .unwrap()
            .timezone,
        "Europe/Paris"
    );
    app.stop().await;
}

#[tokio::test]
async fn webhook_mode_takes_updates_on_the_http_server_with_the_secret() {
    let app = spawn_bot_with(&[
        (
            "TELEGRAM_WEBHOOK_URL",
            "https://bot.example.org/telegram/hook",
        ),
        ("TELEGRAM_WEBHOOK_SECRET", "hook-secret-0123"),
    ])
    .await;
    let hook = format!("http://{}/telegram/hook", app.address);
    let client = reqwest::Client::new();
    let mut update = app.telegram.text_update(PERSON, "/start");
    update["update_id"] = serde_json::json!(1);

    let refused = client
        .post(&hook)
        .header("X-Telegram-Bot-Api-Secret-Token", "wrong")
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // Until the messages kept before a start are handed over, the hook asks Telegram to come
    // back later (503), as it does when the inbox cannot keep the update.
    let post = || {
        client
            .post(&hook)
            .header("X-Telegram-Bot-Api-Secret-Token", "hook-secret-0123")
            .json(&update)
            .send()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut accepted = post().await.unwrap();
    while accepted.status() == 503 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        accepted = post().await.unwrap();
    }
    assert_eq!(accepted.status(), 200);
    // 200 only once the inbox holds it.
    let id = health_agent::telegram::handlers::inbound_id(telegram::BOT_ID, 1);
    assert!(app.store.inbox_entry(id).await.unwrap().is_some());
    let welcome = app.telegram.wait_for_text(PERSON, 0, "health coach").await;
    assert!(welcome.contains("/today"), "{welcome}");
    // Telegram posting the same update again (it did not see our 200) changes nothing.
    assert_eq!(post().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.telegram.sent_to(PERSON).len(),
        1,
        "the refused post and the repeated one did nothing"
    );
    assert_eq!(app.telegram.calls_of("setWebhook"), 1);
    assert_eq!(app.telegram.calls_of("getUpdates"), 0, "no polling");
    // The other routes are still served.
    let health = client
        .get(format!("http://{}/health", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    app.stop().await;
}
