//! The store conformance suite: the same behaviours against every adapter of the `Store` port.
//!
//! The product must behave the same on the embedded default (SQLite in a temp dir), on
//! PostgreSQL with pgvector (`TEST_DATABASE_URL`, e.g. the 55432 server) and on plain PostgreSQL
//! (`TEST_PLAIN_DATABASE_URL`, e.g. Debian's 5432), and the core's tests rely on the in-memory
//! fake (`health_actors::testing::MemoryStore`) behaving as they do. Each behaviour below is one
//! `async fn` taking a freshly migrated store; the `conformance!` macro turns it into one test per
//! backend (`store_conformance::{embedded,pgvector,plain_postgres,memory}::<behaviour>`; the
//! behaviours of a database's schema run on the three databases only). PostgreSQL tests get a
//! database of their own and drop it; without the URL they skip, unless `REQUIRE_POSTGRES=1`.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use health_actors::domain::{
    Achievement, ConversationMessage, DeadLetter, FoodEntry, FoodItem, Goals, MealType, Memory,
    Nutrients, NutritionSource, Profile, Reminder, ReminderSchedule, Role, Sex, Streak, User,
    UserId, VisionEstimate, WeightLog, XpEvent,
};
use health_actors::ports::{InboxEntry, InboxOutcome, Store, StoreError, Write};
use health_agent::store::{self, MigrationReport, StoreConfig};
use uuid::Uuid;

use crate::support::db::{database_url, TestDatabase};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Embedded,
    Pgvector,
    PlainPostgres,
    /// The core's in-memory fake: no schema, nothing to migrate.
    Memory,
}

/// What a behaviour gets: a migrated store and how it was opened.
#[derive(Clone)]
struct Ctx {
    backend: Backend,
    store: Arc<dyn Store>,
    report: MigrationReport,
    /// How to open the store again; None for the in-memory fake.
    config: Option<StoreConfig>,
}

/// Where a test's data lives, removed when the test ends.
enum Target {
    Directory(PathBuf),
    Database(TestDatabase),
}

impl Target {
    async fn remove(self) {
        match self {
            Self::Directory(path) => {
                let _ = std::fs::remove_dir_all(path);
            }
            Self::Database(database) => database.drop_database().await,
        }
    }
}

/// The backend's migration files as (name, SQL), in order, read from the folder the binary
/// embeds them from: what a first start must apply.
fn migration_files(backend: Backend) -> Vec<(String, String)> {
    let folder = match backend {
        Backend::Embedded => "sql/sqlite",
        Backend::Pgvector | Backend::PlainPostgres => "sql/migrations",
        Backend::Memory => panic!("the in-memory store has no migrations"),
    };
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&folder)
        .expect("the migrations folder")
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "sql"))
        .map(|path| {
            let name = path
                .file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            (
                name,
                std::fs::read_to_string(&path).expect("a readable migration"),
            )
        })
        .collect();
    files.sort();
    files
}

fn migration_names(backend: Backend) -> Vec<String> {
    migration_files(backend)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// A fresh, empty place for `backend` (None: skipped, the URL is not set).
async fn fresh_target(backend: Backend) -> Option<(StoreConfig, Target)> {
    let variable = match backend {
        Backend::Embedded => {
            let dir = std::env::temp_dir().join(format!("health-agent-store-{}", Uuid::new_v4()));
            let path = dir.join("nested").join("health_agent.db");
            return Some((StoreConfig::Embedded { path }, Target::Directory(dir)));
        }
        Backend::Pgvector => "TEST_DATABASE_URL",
        Backend::PlainPostgres => "TEST_PLAIN_DATABASE_URL",
        Backend::Memory => panic!("the in-memory store needs no place"),
    };
    let url = database_url(variable)?;
    let database = TestDatabase::create(&url)
        .await
        .unwrap_or_else(|error| panic!("cannot create a test database via {variable}: {error}"));
    let config = StoreConfig::Postgres {
        url: database.url().to_owned(),
        max_connections: 4,
    };
    Some((config, Target::Database(database)))
}

/// Runs one behaviour against a freshly migrated store of `backend`, then removes its data.
async fn run<F, Fut>(backend: Backend, behaviour: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some((config, target)) = fresh_target(backend).await else {
        return;
    };
    let (store, report) = store::open(&config)
        .await
        .expect("the store opens and migrates");
    behaviour(Ctx {
        backend,
        store,
        report,
        config: Some(config),
    })
    .await;
    target.remove().await;
}

/// Runs one behaviour against a fresh in-memory fake store.
async fn run_in_memory<F, Fut>(behaviour: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let store = Arc::new(health_actors::testing::MemoryStore::new());
    let report = MigrationReport {
        applied: Vec::new(),
        backend: store.backend(),
    };
    behaviour(Ctx {
        backend: Backend::Memory,
        store,
        report,
        config: None,
    })
    .await;
}

macro_rules! conformance {
    (
        databases: [$($schema:ident),* $(,)?],
        every_store: [$($behaviour:ident),* $(,)?] $(,)?
    ) => {
        mod embedded {
            $( #[tokio::test] async fn $schema() {
                super::run(super::Backend::Embedded, super::$schema).await
            } )*
            $( #[tokio::test] async fn $behaviour() {
                super::run(super::Backend::Embedded, super::$behaviour).await
            } )*
        }
        mod pgvector {
            $( #[tokio::test] async fn $schema() {
                super::run(super::Backend::Pgvector, super::$schema).await
            } )*
            $( #[tokio::test] async fn $behaviour() {
                super::run(super::Backend::Pgvector, super::$behaviour).await
            } )*
        }
        mod plain_postgres {
            $( #[tokio::test] async fn $schema() {
                super::run(super::Backend::PlainPostgres, super::$schema).await
            } )*
            $( #[tokio::test] async fn $behaviour() {
                super::run(super::Backend::PlainPostgres, super::$behaviour).await
            } )*
        }
        mod memory {
            $( #[tokio::test] async fn $behaviour() {
                super::run_in_memory(super::$behaviour).await
            } )*
        }
    };
}

conformance!(
    // About a database's schema: migrations and the vector mode found in it.
    databases: [migrations_apply_once, the_vector_mode_is_detected],
    every_store: [
    the_inbox_keeps_accepts_once_steps_ends_and_prunes,
    ping_answers,
    users_round_trip_and_update,
    deleting_a_person_deletes_everything_about_them,
    food_entries_by_local_date_range,
    reapplying_a_batch_stores_everything_exactly_once,
    entries_can_be_corrected_and_deleted,
    the_last_entry_is_the_newest_created,
    recent_messages_are_the_last_n_oldest_first,
    memory_search_ranks_by_cosine_within_one_embedder,
    weights_in_a_time_range,
    due_reminders_are_active_due_and_soonest_first,
    xp_streaks_and_achievements_are_recorded_once,
    dead_letters_newest_first,
    a_batch_with_a_bad_row_changes_nothing,
    strange_unicode_round_trips,
    writes_may_come_before_their_person,
    a_full_batch_of_mixed_writes,
    food_answers_are_cached_and_replaced,
    vision_estimates_are_kept_corrected_and_deleted_with_the_person,
    ],
);

// ------------------------------------------------------------------------------------------
// Records
// ------------------------------------------------------------------------------------------

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a UTC time")
}

fn day(text: &str) -> NaiveDate {
    text.parse().expect("a date")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn user(n: i64) -> User {
    let mut user = User::new(UserId(n), at("2026-01-01T08:00:00.123456Z"));
    user.profile = Profile {
        display_name: Some("Ada".to_owned()),
        age_years: Some(36),
        sex: Some(Sex::Female),
        height_cm: Some(168.5),
        weight_kg: Some(61.2),
        ..Profile::default()
    };
    user.goals = Goals {
        kcal: Some(2000.0),
        protein_g: Some(120.0),
        carbs_g: None,
        fat_g: Some(70.0),
    };
    user.timezone = "Europe/Berlin".to_owned();
    user
}

fn item(name: &str, grams: f64, kcal: f64) -> FoodItem {
    FoodItem {
        input: format!("{grams} g {name}"),
        name: name.to_owned(),
        grams,
        nutrients: Nutrients {
            kcal,
            protein_g: 12.5,
            carbs_g: 0.75,
            fat_g: 9.5,
            fiber_g: 0.0,
        },
        source: NutritionSource::BuiltIn,
        confidence: 0.875,
    }
}

fn food(user: i64, n: u128, local_date: &str, eaten_at: &str) -> FoodEntry {
    let items = vec![
        item("egg, whole, cooked", 100.0, 143.0),
        item("toast", 30.0, 80.5),
    ];
    FoodEntry {
        id: id(n),
        user_id: UserId(user),
        eaten_at: at(eaten_at),
        local_date: day(local_date),
        meal_type: Some(MealType::Breakfast),
        description: "2 eggs and a slice of toast".to_owned(),
        total: Nutrients::sum(items.iter().map(|item| &item.nutrients)),
        items,
        photo_path: None,
        created_at: at(eaten_at),
    }
}

fn message(user: i64, n: u128, role: Role, content: &str, created_at: &str) -> ConversationMessage {
    ConversationMessage {
        id: id(n),
        user_id: UserId(user),
        role,
        content: content.to_owned(),
        created_at: at(created_at),
    }
}

fn memory(user: i64, n: u128, content: &str, embedder: &str, embedding: Vec<f32>) -> Memory {
    Memory {
        id: id(n),
        user_id: UserId(user),
        content: content.to_owned(),
        embedding,
        embedder: embedder.to_owned(),
        created_at: at("2026-01-01T00:00:00Z") + Duration::seconds(i64::try_from(n).unwrap_or(0)),
    }
}

fn weight(user: i64, n: u128, kg: f64, logged_at: &str) -> WeightLog {
    WeightLog {
        id: id(n),
        user_id: UserId(user),
        kg,
        logged_at: at(logged_at),
    }
}

fn reminder(user: i64, n: u128, next_fire_at: Option<&str>, active: bool) -> Reminder {
    Reminder {
        id: id(n),
        user_id: UserId(user),
        text: format!("drink water #{n}"),
        schedule: ReminderSchedule::Weekly {
            time: NaiveTime::from_hms_opt(9, 30, 0).expect("a time"),
            weekdays: vec![1, 3, 5],
        },
        next_fire_at: next_fire_at.map(at),
        active,
        created_at: at("2026-01-01T00:00:00Z") + Duration::seconds(i64::try_from(n).unwrap_or(0)),
    }
}

fn xp(user: i64, n: u128, amount: i64) -> XpEvent {
    XpEvent {
        id: id(n),
        user_id: UserId(user),
        amount,
        reason: "food_logged".to_owned(),
        created_at: at("2026-01-02T10:00:00Z") + Duration::seconds(i64::try_from(n).unwrap_or(0)),
    }
}

fn streak(user: i64, domain: &str, current: u32, best: u32) -> Streak {
    Streak {
        user_id: UserId(user),
        domain: domain.to_owned(),
        current,
        best,
        last_date: Some(day("2026-01-02")),
        freezes_left: 2,
    }
}

fn achievement(user: i64, code: &str, earned_at: &str) -> Achievement {
    Achievement {
        user_id: UserId(user),
        code: code.to_owned(),
        earned_at: at(earned_at),
    }
}

fn dead_letter(user: i64, n: u128, created_at: &str) -> DeadLetter {
    DeadLetter {
        id: id(n),
        user_id: UserId(user),
        message: serde_json::json!({"kind": "text", "content": format!("message {n}")}),
        error: "the conversation actor panicked".to_owned(),
        created_at: at(created_at),
    }
}

fn unit(values: &[f32]) -> Vec<f32> {
    values.to_vec()
}

/// A vector of `dims` dimensions pointing mostly along `axis`.
fn spike(dims: usize, axis: usize, strength: f32) -> Vec<f32> {
    (0..dims)
        .map(|i| if i == axis { strength } else { 0.01 })
        .collect()
}

async fn apply(ctx: &Ctx, batch: &[Write]) {
    ctx.store.apply(batch).await.expect("the batch applies");
}

fn everything_about(user: i64, base: u128) -> Vec<Write> {
    vec![
        Write::UpsertUser(self::user(user)),
        Write::InsertFoodEntry(food(user, base + 1, "2026-01-02", "2026-01-02T08:00:00Z")),
        Write::AppendMessage(message(
            user,
            base + 2,
            Role::User,
            "hi",
            "2026-01-02T08:00:00Z",
        )),
        Write::InsertMemory(memory(
            user,
            base + 3,
            "vegetarian",
            "test",
            unit(&[1.0, 0.0, 0.0]),
        )),
        Write::InsertWeight(weight(user, base + 4, 61.5, "2026-01-02T07:00:00Z")),
        Write::UpsertReminder(reminder(user, base + 5, Some("2026-01-03T08:30:00Z"), true)),
        Write::InsertXp(xp(user, base + 6, 5)),
        Write::UpsertStreak(streak(user, "food", 1, 1)),
        Write::InsertAchievement(achievement(user, "first_meal", "2026-01-02T08:00:00Z")),
        Write::InsertDeadLetter(dead_letter(user, base + 7, "2026-01-02T08:00:01Z")),
    ]
}

// ------------------------------------------------------------------------------------------
// Behaviours
// ------------------------------------------------------------------------------------------

fn inbox_entry(id: u128, source: &str, user: i64, content: serde_json::Value) -> InboxEntry {
    InboxEntry {
        id: Uuid::from_u128(id),
        source: source.to_owned(),
        user_id: UserId(user),
        chat: user,
        content,
        photo: None,
        received_at: at("2026-03-01T08:00:00Z") + Duration::seconds(id as i64),
        steps: 0,
        kept: Vec::new(),
        attempts: 0,
    }
}

async fn the_inbox_keeps_accepts_once_steps_ends_and_prunes(ctx: Ctx) {
    let store = &ctx.store;
    let text = |t: &str| serde_json::json!({"kind": "text", "text": t});
    let mut photo = inbox_entry(
        3,
        "telegram",
        7,
        serde_json::json!({"kind": "photo", "caption": "lunch «🍜»"}),
    );
    photo.photo = Some(vec![0xff, 0xd8, 0xff, 0x00, 0x01]);
    let first = vec![
        inbox_entry(1, "telegram", 7, text("2 eggs")),
        inbox_entry(2, "api", 8, text("toast")),
        photo.clone(),
        // The same id twice in one batch: only the first is new.
        inbox_entry(1, "telegram", 7, text("2 eggs")),
    ];
    assert_eq!(
        store.inbox_accept(&first).await.unwrap(),
        [true, true, true, false]
    );
    // A redelivery in a later batch, between new ones, keeps the order of the new ones.
    let second = vec![
        inbox_entry(4, "telegram", 9, text("an apple")),
        inbox_entry(3, "telegram", 7, text("different content is not kept")),
        inbox_entry(5, "telegram", 7, text("a banana")),
    ];
    assert_eq!(
        store.inbox_accept(&second).await.unwrap(),
        [true, false, true]
    );
    let pending = store.inbox_pending("telegram", 10).await.unwrap();
    let ids: Vec<u128> = pending.iter().map(|e| e.id.as_u128()).collect();
    assert_eq!(ids, [1, 3, 4, 5], "in the order accepted, telegram only");
    assert_eq!(
        pending[1], photo,
        "the photo and its caption come back whole"
    );
    assert_eq!(store.inbox_pending("telegram", 2).await.unwrap().len(), 2);
    let backlog = store.inbox_backlog().await.unwrap();
    assert_eq!(backlog.pending, 5);
    assert_eq!(backlog.oldest, Some(first[0].received_at));

    // Steps only grow, and what a step kept is added once; started turns count; the first
    // end is the end.
    let one = Uuid::from_u128(1);
    let step = |step: u32, kept: &[&str]| Write::InboxStep {
        id: one,
        step,
        kept: kept.iter().map(|text| text.to_string()).collect(),
    };
    apply(
        &ctx,
        &[
            Write::InboxStarted { id: one },
            Write::InboxStarted {
                id: Uuid::from_u128(4),
            },
            Write::InboxStarted {
                id: Uuid::from_u128(99),
            },
            step(1, &["2 eggs (143 kcal)"]),
            step(2, &[]),
            step(1, &["a step recorded twice keeps nothing new"]),
        ],
    )
    .await;
    apply(
        &ctx,
        &[step(2, &["nor here"]), step(3, &["«toast» 🍞 (80 kcal)"])],
    )
    .await;
    apply(&ctx, &[step(3, &["nor after"])]).await;
    let started = store
        .inbox_resume(&[one, Uuid::from_u128(4), Uuid::from_u128(99)])
        .await
        .unwrap();
    let mut started: Vec<(u128, u32)> = started
        .into_iter()
        .map(|(id, steps)| (id.as_u128(), steps))
        .collect();
    started.sort_unstable();
    assert_eq!(
        started,
        [(1, 3), (4, 0)],
        "each known entry, with its steps"
    );
    assert_eq!(
        store
            .inbox_entry(one)
            .await
            .unwrap()
            .expect("kept")
            .entry
            .kept,
        ["2 eggs (143 kcal)", "«toast» 🍞 (80 kcal)"],
        "what each step kept, once, in order"
    );
    let mut found: Vec<(u128, u32, u32)> = store
        .inbox_entries(&[Uuid::from_u128(4), one, Uuid::from_u128(99)])
        .await
        .unwrap()
        .into_iter()
        .map(|record| {
            (
                record.entry.id.as_u128(),
                record.entry.steps,
                record.entry.attempts,
            )
        })
        .collect();
    found.sort_unstable();
    assert_eq!(
        found,
        [(1, 3, 1), (4, 0, 1)],
        "the known ones, in one call; resuming counts no attempt"
    );
    let done_at = at("2026-03-01T09:00:00Z");
    apply(
        &ctx,
        &[
            Write::InboxDone {
                id: one,
                outcome: InboxOutcome::Answered,
                replies: vec!["Logged 2 eggs: 143 kcal.".into(), "«ok» 🍳".into()],
                at: done_at,
            },
            Write::InboxDone {
                id: one,
                outcome: InboxOutcome::Failed,
                replies: Vec::new(),
                at: done_at + Duration::hours(1),
            },
        ],
    )
    .await;
    let record = store.inbox_entry(one).await.unwrap().expect("kept");
    assert_eq!(record.entry.steps, 3);
    assert_eq!(record.entry.attempts, 1);
    assert_eq!(record.done_at, Some(done_at));
    apply(&ctx, &[Write::InboxStarted { id: one }]).await;
    assert!(
        store.inbox_resume(&[one]).await.unwrap().is_empty(),
        "a done entry is not resumed"
    );
    assert_eq!(
        store
            .inbox_entry(one)
            .await
            .unwrap()
            .expect("kept")
            .entry
            .attempts,
        1
    );
    assert_eq!(record.outcome, Some(InboxOutcome::Answered));
    assert_eq!(record.replies, ["Logged 2 eggs: 143 kcal.", "«ok» 🍳"]);
    let ids: Vec<u128> = store
        .inbox_pending("telegram", 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id.as_u128())
        .collect();
    assert_eq!(ids, [3, 4, 5], "a done entry is not pending");
    assert!(store
        .inbox_entry(Uuid::from_u128(99))
        .await
        .unwrap()
        .is_none());

    // Pruning deletes only entries done before the cut; deleting a person deletes theirs.
    assert_eq!(store.inbox_prune(done_at).await.unwrap(), 0);
    assert_eq!(
        store
            .inbox_prune(done_at + Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert!(store.inbox_entry(one).await.unwrap().is_none());
    store.delete_user(UserId(7)).await.unwrap();
    let ids: Vec<u128> = store
        .inbox_pending("telegram", 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id.as_u128())
        .collect();
    assert_eq!(ids, [4]);
    assert_eq!(store.inbox_backlog().await.unwrap().pending, 2);
}

async fn migrations_apply_once(ctx: Ctx) {
    let expected = migration_names(ctx.backend);
    assert_eq!(
        ctx.report.applied, expected,
        "the first start applies every migration"
    );
    let config = ctx.config.as_ref().expect("a database");
    let second = store::migrate(config).await.expect("a second start");
    assert!(
        second.applied.is_empty(),
        "a second start applies nothing: {second:?}"
    );
    assert_eq!(second.backend, ctx.report.backend);
    // Two more starts at once on the migrated schema: both succeed, neither applies anything.
    let (a, b) = tokio::join!(store::migrate(config), store::migrate(config));
    assert!(a.expect("concurrent start").applied.is_empty());
    assert!(b.expect("concurrent start").applied.is_empty());
}

async fn food_answers_are_cached_and_replaced(ctx: Ctx) {
    use health_actors::ports::CachedFood;
    assert_eq!(
        ctx.store.cached_food("usda", "avocado").await.unwrap(),
        None
    );
    let found = CachedFood {
        source: "usda".into(),
        query: "avocado".into(),
        food: Some(serde_json::json!({"fdc_id": 171705, "description": "Avocados, raw"})),
        fetched_at: at("2026-01-02T03:04:05.123456Z"),
    };
    ctx.store.cache_food(found.clone()).await.unwrap();
    assert_eq!(
        ctx.store.cached_food("usda", "avocado").await.unwrap(),
        Some(found)
    );
    // A negative answer replaces it; other sources and queries are separate keys.
    let unknown = CachedFood {
        source: "usda".into(),
        query: "avocado".into(),
        food: None,
        fetched_at: at("2026-02-01T00:00:00Z"),
    };
    ctx.store.cache_food(unknown.clone()).await.unwrap();
    assert_eq!(
        ctx.store.cached_food("usda", "avocado").await.unwrap(),
        Some(unknown)
    );
    assert_eq!(
        ctx.store.cached_food("other", "avocado").await.unwrap(),
        None
    );
    assert_eq!(
        ctx.store.cached_food("usda", "Avocado").await.unwrap(),
        None
    );
    let bad = CachedFood {
        source: "usda".into(),
        query: "nul\0byte".into(),
        food: None,
        fetched_at: at("2026-02-01T00:00:00Z"),
    };
    assert!(matches!(
        ctx.store.cache_food(bad).await,
        Err(StoreError::Rejected(_))
    ));
}

async fn the_vector_mode_is_detected(ctx: Ctx) {
    let expected = match ctx.backend {
        Backend::Embedded => "sqlite",
        Backend::Pgvector => "postgres+pgvector",
        Backend::PlainPostgres => "postgres",
        Backend::Memory => "memory",
    };
    assert_eq!(ctx.report.backend, expected);
    assert_eq!(ctx.store.backend(), expected);
}

async fn ping_answers(ctx: Ctx) {
    tokio::time::timeout(std::time::Duration::from_secs(2), ctx.store.ping())
        .await
        .expect("ping answers quickly")
        .expect("ping succeeds");
}

async fn users_round_trip_and_update(ctx: Ctx) {
    assert_eq!(ctx.store.user(UserId(1)).await.expect("read"), None);
    let original = user(1);
    apply(&ctx, &[Write::UpsertUser(original.clone())]).await;
    assert_eq!(
        ctx.store.user(UserId(1)).await.expect("read"),
        Some(original.clone())
    );

    let mut changed = original.clone();
    changed.profile.display_name = Some("Ada L.".to_owned());
    changed.profile.goal = Some(health_actors::domain::WeightGoal::Lose);
    changed.goals.kcal = Some(1800.0);
    changed.timezone = "Pacific/Auckland".to_owned();
    changed.created_at = original.created_at + Duration::days(3);
    changed.updated_at = original.updated_at + Duration::days(3);
    apply(&ctx, &[Write::UpsertUser(changed.clone())]).await;
    let stored = ctx
        .store
        .user(UserId(1))
        .await
        .expect("read")
        .expect("the user");
    assert_eq!(stored.profile, changed.profile);
    assert_eq!(stored.goals, changed.goals);
    assert_eq!(stored.timezone, "Pacific/Auckland");
    assert_eq!(stored.updated_at, changed.updated_at);
    assert_eq!(
        stored.created_at, original.created_at,
        "created_at keeps the first moment"
    );
}

async fn deleting_a_person_deletes_everything_about_them(ctx: Ctx) {
    apply(&ctx, &everything_about(1, 100)).await;
    apply(&ctx, &everything_about(2, 200)).await;
    let all_days = (day("2000-01-01"), day("2100-01-01"));
    let all_time = (at("2000-01-01T00:00:00Z"), at("2100-01-01T00:00:00Z"));

    assert!(ctx.store.delete_user(UserId(1)).await.expect("delete"));
    let s = &ctx.store;
    let one = UserId(1);
    assert_eq!(s.user(one).await.expect("read"), None);
    assert!(s
        .food_entries(one, all_days.0, all_days.1)
        .await
        .expect("read")
        .is_empty());
    assert!(s.recent_messages(one, 100).await.expect("read").is_empty());
    assert!(s.memories(one).await.expect("read").is_empty());
    assert!(s
        .weights(one, all_time.0, all_time.1)
        .await
        .expect("read")
        .is_empty());
    assert!(s.reminders(one).await.expect("read").is_empty());
    assert!(s.xp_events(one).await.expect("read").is_empty());
    assert!(s.streaks(one).await.expect("read").is_empty());
    assert!(s.achievements(one).await.expect("read").is_empty());
    let letters = s.dead_letters(100).await.expect("read");
    assert!(
        letters.iter().all(|letter| letter.user_id == UserId(2)),
        "{letters:?}"
    );
    assert_eq!(letters.len(), 1);
    let due = s
        .due_reminders(at("2100-01-01T00:00:00Z"), 100)
        .await
        .expect("read");
    assert!(due.iter().all(|reminder| reminder.user_id == UserId(2)));

    // The other person is untouched.
    let two = UserId(2);
    assert!(s.user(two).await.expect("read").is_some());
    assert_eq!(
        s.food_entries(two, all_days.0, all_days.1)
            .await
            .expect("read")
            .len(),
        1
    );
    assert_eq!(s.memories(two).await.expect("read").len(), 1);
    assert_eq!(s.achievements(two).await.expect("read").len(), 1);

    assert!(
        !s.delete_user(one).await.expect("delete again"),
        "nobody left to delete"
    );
}

fn vision_estimate(user: i64, entry: u128, item: &str, agent: &str, grams: f64) -> VisionEstimate {
    VisionEstimate {
        entry_id: id(entry),
        item: item.to_owned(),
        agent: agent.to_owned(),
        user_id: UserId(user),
        grams,
        kcal: grams * 1.3,
        corrected_grams: None,
        created_at: at("2026-03-01T12:00:00.654321Z"),
        corrected_at: None,
    }
}

async fn vision_estimates_are_kept_corrected_and_deleted_with_the_person(ctx: Ctx) {
    vision_estimates_behaviour(ctx.store.as_ref()).await;
}

async fn vision_estimates_behaviour(s: &dyn Store) {
    s.apply(&[Write::UpsertUser(user(1)), Write::UpsertUser(user(2))])
        .await
        .expect("users");
    let rice = |agent: &str, grams: f64| vision_estimate(1, 10, "white rice 🍚", agent, grams);
    let first = vec![
        rice("openai:gpt-4o", 200.0),
        rice("anthropic:claude", 180.0),
        vision_estimate(1, 10, "chicken", "openai:gpt-4o", 120.0),
        vision_estimate(1, 11, "bread", "openai:gpt-4o", 50.0),
        vision_estimate(2, 20, "soup", "openai:gpt-4o", 300.0),
    ];
    s.save_vision_estimates(&first).await.expect("save");
    // Saving again is idempotent.
    s.save_vision_estimates(&first).await.expect("save again");
    s.save_vision_estimates(&[]).await.expect("nothing to save");

    let entry = s.vision_estimates(UserId(1), id(10)).await.expect("read");
    assert_eq!(entry.len(), 3);
    // Ordered by item, then agent.
    assert_eq!(entry[0].item, "chicken");
    assert_eq!(entry[1], rice("anthropic:claude", 180.0));
    assert_eq!(entry[2], rice("openai:gpt-4o", 200.0));
    // Another person's entry is not visible.
    assert!(s
        .vision_estimates(UserId(2), id(10))
        .await
        .expect("read")
        .is_empty());
    assert!(s
        .corrected_vision_estimates(UserId(1), 10)
        .await
        .expect("read")
        .is_empty());

    // The person corrects the rice (100 g), later removes the bread.
    let corrected: Vec<VisionEstimate> = entry[1..]
        .iter()
        .map(|estimate| VisionEstimate {
            corrected_grams: Some(100.0),
            corrected_at: Some(at("2026-03-01T12:05:00.000001Z")),
            ..estimate.clone()
        })
        .collect();
    s.save_vision_estimates(&corrected).await.expect("correct");
    let mut bread = vision_estimate(1, 11, "bread", "openai:gpt-4o", 50.0);
    bread.corrected_grams = Some(0.0);
    bread.corrected_at = Some(at("2026-03-02T08:00:00Z"));
    s.save_vision_estimates(std::slice::from_ref(&bread))
        .await
        .expect("remove");
    // Someone else cannot overwrite the person's row under the same key.
    let mut intruder = bread.clone();
    intruder.user_id = UserId(2);
    intruder.corrected_grams = Some(999.0);
    let _ = s.save_vision_estimates(&[intruder]).await;

    let record = s
        .corrected_vision_estimates(UserId(1), 10)
        .await
        .expect("read");
    assert_eq!(record.len(), 3, "{record:?}");
    assert_eq!(record[0], bread, "newest first");
    assert_eq!(record[1..], corrected[..]);
    assert_eq!(
        s.corrected_vision_estimates(UserId(1), 1)
            .await
            .expect("read")
            .len(),
        1
    );
    assert!(s
        .corrected_vision_estimates(UserId(2), 10)
        .await
        .expect("read")
        .is_empty());

    // A row for nobody is refused.
    assert!(s
        .save_vision_estimates(&[vision_estimate(99, 30, "x", "y", 1.0)])
        .await
        .is_err());

    // Removing the entry keeps what was learned; forgetting the person removes it all.
    s.apply(&[Write::DeleteFoodEntry {
        user_id: UserId(1),
        id: id(10),
    }])
    .await
    .expect("delete entry");
    assert_eq!(
        s.corrected_vision_estimates(UserId(1), 10)
            .await
            .expect("read")
            .len(),
        3
    );
    assert!(s.delete_user(UserId(1)).await.expect("delete"));
    assert!(s
        .vision_estimates(UserId(1), id(10))
        .await
        .expect("read")
        .is_empty());
    assert!(s
        .corrected_vision_estimates(UserId(1), 10)
        .await
        .expect("read")
        .is_empty());
    assert_eq!(
        s.vision_estimates(UserId(2), id(20))
            .await
            .expect("read")
            .len(),
        1
    );
}

async fn food_entries_by_local_date_range(ctx: Ctx) {
    // Eaten on Jan 1st in UTC but Jan 2nd where the person lives: the local date counts.
    let late = food(1, 1, "2026-01-02", "2026-01-01T23:30:00Z");
    let mut lunch = food(1, 2, "2026-01-02", "2026-01-02T12:00:00.000001Z");
    lunch.meal_type = Some(MealType::Lunch);
    lunch.photo_path = Some("photos/1/lunch.jpg".to_owned());
    let mut next_day = food(1, 3, "2026-01-03", "2026-01-03T07:00:00Z");
    next_day.meal_type = None;
    let before = food(1, 4, "2026-01-01", "2026-01-01T07:00:00Z");
    let other_person = food(2, 5, "2026-01-02", "2026-01-02T09:00:00Z");
    // Stored out of order: reads are oldest first.
    apply(
        &ctx,
        &[
            Write::InsertFoodEntry(next_day.clone()),
            Write::InsertFoodEntry(lunch.clone()),
            Write::InsertFoodEntry(before.clone()),
            Write::InsertFoodEntry(late.clone()),
            Write::InsertFoodEntry(other_person),
        ],
    )
    .await;
    let entries = ctx
        .store
        .food_entries(UserId(1), day("2026-01-02"), day("2026-01-03"))
        .await
        .expect("read");
    assert_eq!(entries, vec![late.clone(), lunch.clone(), next_day]);
    let one_day = ctx
        .store
        .food_entries(UserId(1), day("2026-01-02"), day("2026-01-02"))
        .await
        .expect("read");
    assert_eq!(one_day, vec![late, lunch.clone()]);
    assert_eq!(
        ctx.store.food_entry(UserId(1), id(2)).await.expect("read"),
        Some(lunch)
    );
    assert_eq!(
        ctx.store.food_entry(UserId(2), id(2)).await.expect("read"),
        None,
        "not theirs"
    );
    assert!(ctx
        .store
        .food_entries(UserId(1), day("2026-02-01"), day("2026-02-28"))
        .await
        .expect("read")
        .is_empty());
}

async fn reapplying_a_batch_stores_everything_exactly_once(ctx: Ctx) {
    let mut batch = everything_about(1, 100);
    // The same write twice within one batch, too.
    batch.push(Write::InsertFoodEntry(food(
        1,
        101,
        "2026-01-02",
        "2026-01-02T08:00:00Z",
    )));
    apply(&ctx, &batch).await;
    apply(&ctx, &batch).await;
    let s = &ctx.store;
    let one = UserId(1);
    assert_eq!(
        s.food_entries(one, day("2026-01-01"), day("2026-12-31"))
            .await
            .expect("r")
            .len(),
        1
    );
    assert_eq!(s.recent_messages(one, 10).await.expect("read").len(), 1);
    assert_eq!(s.memories(one).await.expect("read").len(), 1);
    let weights = s
        .weights(one, at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))
        .await;
    assert_eq!(weights.expect("read").len(), 1);
    assert_eq!(s.reminders(one).await.expect("read").len(), 1);
    assert_eq!(s.xp_events(one).await.expect("read").len(), 1);
    assert_eq!(s.streaks(one).await.expect("read").len(), 1);
    assert_eq!(s.achievements(one).await.expect("read").len(), 1);
    assert_eq!(s.dead_letters(10).await.expect("read").len(), 1);
}

async fn entries_can_be_corrected_and_deleted(ctx: Ctx) {
    let original = food(1, 1, "2026-01-02", "2026-01-02T08:00:00Z");
    apply(&ctx, &[Write::InsertFoodEntry(original.clone())]).await;

    let mut corrected = original.clone();
    corrected.items = vec![item("rice, white, cooked", 100.0, 130.0)];
    corrected.total = Nutrients::sum(corrected.items.iter().map(|item| &item.nutrients));
    corrected.description = "the rice was 100 g".to_owned();
    corrected.meal_type = Some(MealType::Dinner);
    // A correction never moves created_at.
    corrected.created_at = original.created_at + Duration::hours(5);
    apply(&ctx, &[Write::UpdateFoodEntry(corrected.clone())]).await;
    let stored = ctx
        .store
        .food_entry(UserId(1), id(1))
        .await
        .expect("read")
        .expect("entry");
    assert_eq!(stored.items, corrected.items);
    assert_eq!(stored.total, corrected.total);
    assert_eq!(stored.description, corrected.description);
    assert_eq!(stored.meal_type, Some(MealType::Dinner));
    assert_eq!(stored.created_at, original.created_at);

    // Someone else cannot correct or delete it.
    let mut intruder = corrected.clone();
    intruder.user_id = UserId(2);
    intruder.description = "not yours".to_owned();
    apply(
        &ctx,
        &[
            Write::UpdateFoodEntry(intruder),
            Write::DeleteFoodEntry {
                user_id: UserId(2),
                id: id(1),
            },
        ],
    )
    .await;
    let stored = ctx
        .store
        .food_entry(UserId(1), id(1))
        .await
        .expect("read")
        .expect("entry");
    assert_eq!(stored.description, corrected.description);

    apply(
        &ctx,
        &[Write::DeleteFoodEntry {
            user_id: UserId(1),
            id: id(1),
        }],
    )
    .await;
    assert_eq!(
        ctx.store.food_entry(UserId(1), id(1)).await.expect("read"),
        None
    );
    // Deleting again (a retried batch) is fine.
    apply(
        &ctx,
        &[Write::DeleteFoodEntry {
            user_id: UserId(1),
            id: id(1),
        }],
    )
    .await;
}

async fn the_last_entry_is_the_newest_created(ctx: Ctx) {
    assert_eq!(
        ctx.store.last_food_entry(UserId(1)).await.expect("read"),
        None
    );
    let first = food(1, 1, "2026-01-02", "2026-01-02T08:00:00Z");
    let newest = food(1, 2, "2026-01-01", "2026-01-02T09:00:00Z");
    let middle = food(1, 3, "2026-01-03", "2026-01-02T08:30:00Z");
    let someone_else = food(2, 4, "2026-01-03", "2026-01-05T08:30:00Z");
    apply(
        &ctx,
        &[
            Write::InsertFoodEntry(first),
            Write::InsertFoodEntry(newest.clone()),
            Write::InsertFoodEntry(middle),
            Write::InsertFoodEntry(someone_else),
        ],
    )
    .await;
    assert_eq!(
        ctx.store.last_food_entry(UserId(1)).await.expect("read"),
        Some(newest.clone())
    );
    // Same created_at: the one stored last wins (insertion order breaks the tie).
    let mut twin = food(1, 5, "2026-01-02", "2026-01-02T09:00:00Z");
    twin.created_at = newest.created_at;
    apply(&ctx, &[Write::InsertFoodEntry(twin.clone())]).await;
    assert_eq!(
        ctx.store.last_food_entry(UserId(1)).await.expect("read"),
        Some(twin)
    );
}

async fn recent_messages_are_the_last_n_oldest_first(ctx: Ctx) {
    let messages: Vec<ConversationMessage> = (1..=5u128)
        .map(|n| {
            let role = if n % 2 == 1 {
                Role::User
            } else {
                Role::Assistant
            };
            let second = i64::try_from(n).unwrap_or(0);
            let created = at("2026-01-02T08:00:00Z") + Duration::seconds(second);
            ConversationMessage {
                id: id(100 - n),
                user_id: UserId(1),
                role,
                content: format!("turn {n}"),
                created_at: created,
            }
        })
        .collect();
    // Stored newest first in two batches; reads come back in time order.
    let writes: Vec<Write> = messages
        .iter()
        .rev()
        .cloned()
        .map(Write::AppendMessage)
        .collect();
    apply(&ctx, &writes[..2]).await;
    apply(&ctx, &writes[2..]).await;
    apply(
        &ctx,
        &[Write::AppendMessage(message(
            2,
            500,
            Role::User,
            "other",
            "2026-01-03T00:00:00Z",
        ))],
    )
    .await;
    let recent = ctx.store.recent_messages(UserId(1), 3).await.expect("read");
    assert_eq!(recent, messages[2..].to_vec());
    assert_eq!(
        ctx.store
            .recent_messages(UserId(1), 50)
            .await
            .expect("read"),
        messages
    );
    assert!(ctx
        .store
        .recent_messages(UserId(1), 0)
        .await
        .expect("read")
        .is_empty());

    // Turns with the same timestamp keep the order they were appended in.
    let same = "2026-01-04T00:00:00Z";
    let question = message(3, 900, Role::User, "question", same);
    let answer = message(3, 800, Role::Assistant, "answer", same);
    apply(
        &ctx,
        &[
            Write::AppendMessage(question.clone()),
            Write::AppendMessage(answer.clone()),
        ],
    )
    .await;
    assert_eq!(
        ctx.store.recent_messages(UserId(3), 2).await.expect("read"),
        vec![question, answer]
    );
}

async fn memory_search_ranks_by_cosine_within_one_embedder(ctx: Ctx) {
    let near = memory(
        1,
        1,
        "allergic to peanuts",
        "hash-v1",
        unit(&[1.0, 0.1, 0.0]),
    );
    let middle = memory(1, 2, "likes running", "hash-v1", unit(&[1.0, 1.0, 0.0]));
    let far = memory(1, 3, "vegetarian", "hash-v1", unit(&[0.0, 0.0, 1.0]));
    let opposite = memory(1, 4, "hates mornings", "hash-v1", unit(&[-1.0, 0.0, 0.0]));
    let other_embedder = memory(
        1,
        5,
        "same direction, other model",
        "openai",
        unit(&[1.0, 0.0, 0.0]),
    );
    let other_dims = memory(
        1,
        6,
        "longer vector",
        "hash-v1",
        unit(&[1.0, 0.0, 0.0, 0.0]),
    );
    let other_person = memory(2, 7, "not theirs", "hash-v1", unit(&[1.0, 0.0, 0.0]));
    let all = [
        &near,
        &middle,
        &far,
        &opposite,
        &other_embedder,
        &other_dims,
        &other_person,
    ];
    let writes: Vec<Write> = all
        .iter()
        .map(|m| Write::InsertMemory((*m).clone()))
        .collect();
    apply(&ctx, &writes).await;

    let found = ctx
        .store
        .search_memories(UserId(1), "hash-v1", &[1.0, 0.0, 0.0], 3)
        .await;
    let found = found.expect("search");
    let contents: Vec<&str> = found.iter().map(|s| s.memory.content.as_str()).collect();
    assert_eq!(
        contents,
        ["allergic to peanuts", "likes running", "vegetarian"]
    );
    assert_eq!(found[0].memory, near);
    let expected = [1.0 / 1.01f64.sqrt(), 0.5f64.sqrt(), 0.0];
    for (scored, expected) in found.iter().zip(expected) {
        assert!(
            (scored.similarity - expected).abs() < 1e-5,
            "{} vs {expected}",
            scored.similarity
        );
    }
    let all_four = ctx
        .store
        .search_memories(UserId(1), "hash-v1", &[1.0, 0.0, 0.0], 10)
        .await;
    let all_four = all_four.expect("search");
    assert_eq!(
        all_four.len(),
        4,
        "only this embedder's 3-dimensional vectors"
    );
    assert!((all_four[3].similarity + 1.0).abs() < 1e-5);
    let other = ctx
        .store
        .search_memories(UserId(1), "openai", &[1.0, 0.0, 0.0], 10)
        .await;
    assert_eq!(other.expect("search").len(), 1);
    assert!(ctx
        .store
        .search_memories(UserId(1), "nobody", &[1.0, 0.0, 0.0], 5)
        .await
        .expect("s")
        .is_empty());
    assert!(ctx
        .store
        .search_memories(UserId(1), "hash-v1", &[], 5)
        .await
        .expect("s")
        .is_empty());

    // A common embedder dimension (indexed with HNSW under pgvector).
    let wide: Vec<Write> = (0..5u128)
        .map(|n| {
            let axis = usize::try_from(n).unwrap_or(0);
            Write::InsertMemory(memory(
                1,
                20 + n,
                &format!("wide {n}"),
                "wide",
                spike(384, axis, 1.0),
            ))
        })
        .collect();
    apply(&ctx, &wide).await;
    let mut query = spike(384, 2, 1.0);
    query[3] = 0.5;
    let found = ctx
        .store
        .search_memories(UserId(1), "wide", &query, 2)
        .await
        .expect("search");
    let contents: Vec<&str> = found.iter().map(|s| s.memory.content.as_str()).collect();
    assert_eq!(contents, ["wide 2", "wide 3"]);
    assert_eq!(found[0].memory.embedding.len(), 384);

    // Listing and forgetting.
    assert_eq!(ctx.store.memories(UserId(1)).await.expect("read").len(), 11);
    apply(
        &ctx,
        &[Write::DeleteMemory {
            user_id: UserId(1),
            id: id(1),
        }],
    )
    .await;
    let found = ctx
        .store
        .search_memories(UserId(1), "hash-v1", &[1.0, 0.0, 0.0], 1)
        .await;
    assert_eq!(found.expect("search")[0].memory.content, "likes running");
    let listed = ctx.store.memories(UserId(1)).await.expect("read");
    assert_eq!(listed.len(), 10);
    assert_eq!(listed[0], middle, "oldest first");
}

async fn weights_in_a_time_range(ctx: Ctx) {
    let w1 = weight(1, 1, 80.5, "2026-01-01T07:00:00Z");
    let w2 = weight(1, 2, 80.1, "2026-01-02T07:00:00Z");
    let w3 = weight(1, 3, 79.75, "2026-01-03T07:00:00Z");
    apply(
        &ctx,
        &[
            Write::InsertWeight(w3.clone()),
            Write::InsertWeight(w1.clone()),
            Write::InsertWeight(w2.clone()),
            Write::InsertWeight(weight(2, 4, 70.0, "2026-01-02T07:00:00Z")),
        ],
    )
    .await;
    let range = ctx.store.weights(
        UserId(1),
        at("2026-01-01T07:00:00Z"),
        at("2026-01-03T07:00:00Z"),
    );
    assert_eq!(
        range.await.expect("read"),
        vec![w1.clone(), w2.clone()],
        "from..to, to excluded"
    );
    let all = ctx.store.weights(
        UserId(1),
        at("2025-01-01T00:00:00Z"),
        at("2027-01-01T00:00:00Z"),
    );
    assert_eq!(all.await.expect("read"), vec![w1, w2, w3]);
}

async fn due_reminders_are_active_due_and_soonest_first(ctx: Ctx) {
    let later_due = reminder(1, 1, Some("2026-01-02T09:00:00Z"), true);
    let sooner_due = reminder(2, 2, Some("2026-01-02T08:00:00Z"), true);
    let future = reminder(1, 3, Some("2026-01-05T08:00:00Z"), true);
    let inactive = reminder(1, 4, Some("2026-01-01T08:00:00Z"), false);
    let fired_once = Reminder {
        schedule: ReminderSchedule::Once {
            at: at("2026-01-01T06:00:00Z"),
        },
        ..reminder(1, 5, None, true)
    };
    let exactly_now = reminder(3, 6, Some("2026-01-02T10:00:00Z"), true);
    let all = [
        &later_due,
        &sooner_due,
        &future,
        &inactive,
        &fired_once,
        &exactly_now,
    ];
    let writes: Vec<Write> = all
        .iter()
        .map(|r| Write::UpsertReminder((*r).clone()))
        .collect();
    apply(&ctx, &writes).await;

    let now = at("2026-01-02T10:00:00Z");
    let due = ctx.store.due_reminders(now, 10).await.expect("read");
    assert_eq!(
        due,
        vec![sooner_due.clone(), later_due.clone(), exactly_now]
    );
    assert_eq!(
        ctx.store.due_reminders(now, 1).await.expect("read"),
        vec![sooner_due.clone()]
    );
    let mine = ctx.store.reminders(UserId(1)).await.expect("read");
    assert_eq!(mine, vec![later_due.clone(), future, inactive, fired_once]);

    // Fired: the scheduler moves it to tomorrow; snoozed twice in one batch: the last wins.
    let mut moved = sooner_due.clone();
    moved.next_fire_at = Some(at("2026-01-03T08:00:00Z"));
    let mut snoozed = later_due.clone();
    snoozed.next_fire_at = Some(at("2026-01-02T09:30:00Z"));
    let mut snoozed_again = later_due.clone();
    snoozed_again.next_fire_at = Some(at("2026-01-02T11:00:00Z"));
    snoozed_again.text = "drink water (snoozed)".to_owned();
    apply(
        &ctx,
        &[
            Write::UpsertReminder(moved),
            Write::UpsertReminder(snoozed),
            Write::UpsertReminder(snoozed_again.clone()),
        ],
    )
    .await;
    let due = ctx.store.due_reminders(now, 10).await.expect("read");
    assert_eq!(due.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id(6)]);
    let stored = ctx.store.reminders(UserId(1)).await.expect("read");
    assert_eq!(stored[0], snoozed_again);

    apply(
        &ctx,
        &[Write::DeleteReminder {
            user_id: UserId(1),
            id: id(1),
        }],
    )
    .await;
    assert_eq!(ctx.store.reminders(UserId(1)).await.expect("read").len(), 3);
}

async fn xp_streaks_and_achievements_are_recorded_once(ctx: Ctx) {
    let first = xp(1, 1, 5);
    let bonus = xp(1, 2, 10);
    apply(
        &ctx,
        &[
            Write::InsertXp(first.clone()),
            Write::InsertXp(bonus.clone()),
        ],
    )
    .await;
    apply(&ctx, &[Write::InsertXp(first.clone())]).await;
    let events = ctx.store.xp_events(UserId(1)).await.expect("read");
    assert_eq!(events, vec![first, bonus]);
    assert_eq!(events.iter().map(|e| e.amount).sum::<i64>(), 15);

    apply(
        &ctx,
        &[
            Write::UpsertStreak(streak(1, "food", 1, 1)),
            Write::UpsertStreak(streak(1, "water", 4, 9)),
        ],
    )
    .await;
    let grown = Streak {
        freezes_left: 1,
        last_date: Some(day("2026-01-03")),
        ..streak(1, "food", 2, 2)
    };
    apply(
        &ctx,
        &[
            Write::UpsertStreak(streak(1, "food", 5, 5)),
            Write::UpsertStreak(grown.clone()),
        ],
    )
    .await;
    assert_eq!(
        ctx.store.streaks(UserId(1)).await.expect("read"),
        vec![grown, streak(1, "water", 4, 9)]
    );

    let earned = achievement(1, "first_meal", "2026-01-02T08:00:00Z");
    apply(&ctx, &[Write::InsertAchievement(earned.clone())]).await;
    apply(
        &ctx,
        &[
            Write::InsertAchievement(achievement(1, "first_meal", "2026-02-02T08:00:00Z")),
            Write::InsertAchievement(achievement(1, "week_streak", "2026-01-09T08:00:00Z")),
            Write::InsertAchievement(achievement(1, "week_streak", "2026-01-10T08:00:00Z")),
        ],
    )
    .await;
    let achievements = ctx.store.achievements(UserId(1)).await.expect("read");
    assert_eq!(
        achievements,
        vec![
            earned,
            achievement(1, "week_streak", "2026-01-09T08:00:00Z")
        ]
    );
}

async fn dead_letters_newest_first(ctx: Ctx) {
    let oldest = dead_letter(1, 1, "2026-01-01T00:00:00Z");
    let newest = dead_letter(2, 2, "2026-01-03T00:00:00Z");
    let middle = dead_letter(0, 3, "2026-01-02T00:00:00Z");
    apply(
        &ctx,
        &[
            Write::InsertDeadLetter(oldest.clone()),
            Write::InsertDeadLetter(newest.clone()),
            Write::InsertDeadLetter(middle.clone()),
        ],
    )
    .await;
    assert_eq!(
        ctx.store.dead_letters(2).await.expect("read"),
        vec![newest.clone(), middle.clone()]
    );
    assert_eq!(
        ctx.store.dead_letters(10).await.expect("read"),
        vec![newest, middle, oldest]
    );
    // A dead letter is not a person.
    assert_eq!(ctx.store.user(UserId(0)).await.expect("read"), None);
}

async fn a_batch_with_a_bad_row_changes_nothing(ctx: Ctx) {
    // The database itself refuses the last row (weight out of range): nothing before it stays.
    let batch = [
        Write::UpsertUser(user(1)),
        Write::InsertFoodEntry(food(1, 1, "2026-01-02", "2026-01-02T08:00:00Z")),
        Write::AppendMessage(message(1, 2, Role::User, "hi", "2026-01-02T08:00:00Z")),
        Write::InsertWeight(weight(1, 3, -5.0, "2026-01-02T07:00:00Z")),
    ];
    let error = ctx
        .store
        .apply(&batch)
        .await
        .expect_err("a negative weight is refused");
    assert!(matches!(error, StoreError::Rejected(_)), "{error:?}");
    assert!(!error.is_transient());
    assert_eq!(ctx.store.user(UserId(1)).await.expect("read"), None);
    assert_eq!(
        ctx.store.food_entry(UserId(1), id(1)).await.expect("read"),
        None
    );
    assert!(ctx
        .store
        .recent_messages(UserId(1), 10)
        .await
        .expect("read")
        .is_empty());

    // Refused before reaching the database, alike everywhere: NUL characters, NaN, empty vectors.
    let mut nul = food(1, 4, "2026-01-02", "2026-01-02T08:00:00Z");
    nul.description = "bad\0byte".to_owned();
    let mut nan = food(1, 5, "2026-01-02", "2026-01-02T08:00:00Z");
    nan.items[0].grams = f64::NAN;
    let empty = memory(1, 6, "nothing", "hash-v1", Vec::new());
    for bad in [
        Write::InsertFoodEntry(nul),
        Write::InsertFoodEntry(nan),
        Write::InsertMemory(empty),
    ] {
        let batch = [Write::InsertXp(xp(1, 7, 5)), bad];
        let error = ctx.store.apply(&batch).await.expect_err("refused");
        assert!(matches!(error, StoreError::Rejected(_)), "{error:?}");
    }
    assert!(ctx
        .store
        .xp_events(UserId(1))
        .await
        .expect("read")
        .is_empty());

    // The store still works afterwards.
    apply(&ctx, &batch[..3]).await;
    assert!(ctx.store.user(UserId(1)).await.expect("read").is_some());
}

async fn strange_unicode_round_trips(ctx: Ctx) {
    let strange = [
        "Crème brûlée, jalapeño, Ærøskøbing",
        "寿司 🍣 と味噌汁",
        "👩🏽‍🍳 cooked 🇩🇪 Käsespätzle (ZWJ + flags)",
        "שקשוקה עם לחם — مع خبز",
        "e\u{301}\u{302} combining, \u{200B}zero width, \u{FEFF}BOM, \u{1F600}",
        "quotes ' \" ` backslash \\ and '); DROP TABLE users; --",
        "tabs\tand\nnewlines\r\n and \u{7F} \u{1} controls",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 outside the BMP: 𐍈 𝄞",
    ];
    let text = strange.join(" | ");
    let mut person = user(1);
    person.profile.display_name = Some(strange[2].to_owned());
    person.timezone = "America/Argentina/Buenos_Aires".to_owned();
    let mut entry = food(1, 1, "2026-01-02", "2026-01-02T08:00:00Z");
    entry.description = text.clone();
    entry.items = strange.iter().map(|name| item(name, 50.0, 100.0)).collect();
    entry.total = Nutrients::sum(entry.items.iter().map(|item| &item.nutrients));
    entry.photo_path = Some("photos/1/🍣.jpg".to_owned());
    let said = message(1, 2, Role::User, &text, "2026-01-02T08:00:00Z");
    let fact = memory(1, 3, strange[1], "émbedder-✓", unit(&[0.5, -0.25, 1.0e-30]));
    let mut note = reminder(1, 4, Some("2026-01-03T08:00:00Z"), true);
    note.text = strange[3].to_owned();
    let mut letter = dead_letter(1, 5, "2026-01-02T08:00:00Z");
    letter.message =
        serde_json::json!({"content": text, "nested": [strange[4], {"k🔑": strange[5]}]});
    letter.error = strange[6].to_owned();
    let mut gained = xp(1, 6, 5);
    gained.reason = strange[7].to_owned();
    let badge = achievement(1, "🏅 première", "2026-01-02T08:00:00Z");
    let run = streak(1, "ストリーク", 3, 3);
    apply(
        &ctx,
        &[
            Write::UpsertUser(person.clone()),
            Write::InsertFoodEntry(entry.clone()),
            Write::AppendMessage(said.clone()),
            Write::InsertMemory(fact.clone()),
            Write::UpsertReminder(note.clone()),
            Write::InsertDeadLetter(letter.clone()),
            Write::InsertXp(gained.clone()),
            Write::InsertAchievement(badge.clone()),
            Write::UpsertStreak(run.clone()),
        ],
    )
    .await;
    let s = &ctx.store;
    assert_eq!(s.user(UserId(1)).await.expect("read"), Some(person));
    assert_eq!(
        s.food_entry(UserId(1), id(1)).await.expect("read"),
        Some(entry)
    );
    assert_eq!(
        s.recent_messages(UserId(1), 1).await.expect("read"),
        vec![said]
    );
    assert_eq!(
        s.memories(UserId(1)).await.expect("read"),
        vec![fact.clone()]
    );
    let found = s
        .search_memories(UserId(1), "émbedder-✓", &[0.5, -0.25, 0.0], 1)
        .await;
    assert_eq!(found.expect("search")[0].memory, fact);
    assert_eq!(s.reminders(UserId(1)).await.expect("read"), vec![note]);
    assert_eq!(s.dead_letters(1).await.expect("read"), vec![letter]);
    assert_eq!(s.xp_events(UserId(1)).await.expect("read"), vec![gained]);
    assert_eq!(s.achievements(UserId(1)).await.expect("read"), vec![badge]);
    assert_eq!(s.streaks(UserId(1)).await.expect("read"), vec![run]);
}

async fn writes_may_come_before_their_person(ctx: Ctx) {
    // The persistence actor may see an entry before the UpsertUser that creates its person.
    let person = user(7);
    let entry = food(7, 1, "2026-01-02", "2026-01-02T08:00:00Z");
    apply(
        &ctx,
        &[
            Write::InsertFoodEntry(entry.clone()),
            Write::UpsertUser(person.clone()),
        ],
    )
    .await;
    assert_eq!(ctx.store.user(UserId(7)).await.expect("read"), Some(person));
    assert_eq!(
        ctx.store.food_entry(UserId(7), id(1)).await.expect("read"),
        Some(entry)
    );

    // Without any UpsertUser, the person exists with defaults (and can be deleted whole).
    apply(
        &ctx,
        &[Write::AppendMessage(message(
            8,
            2,
            Role::User,
            "hello",
            "2026-01-02T08:00:00Z",
        ))],
    )
    .await;
    let bare = ctx
        .store
        .user(UserId(8))
        .await
        .expect("read")
        .expect("a bare person");
    assert_eq!(bare.profile, Profile::default());
    assert_eq!(bare.goals, Goals::default());
    assert_eq!(bare.timezone, "UTC");
    // A later UpsertUser fills the row in and keeps the earliest created_at.
    let mut later = user(8);
    later.created_at = bare.created_at + Duration::days(1);
    apply(&ctx, &[Write::UpsertUser(later.clone())]).await;
    let stored = ctx
        .store
        .user(UserId(8))
        .await
        .expect("read")
        .expect("the person");
    assert_eq!(stored.profile, later.profile);
    assert_eq!(stored.created_at, bare.created_at);
    assert!(ctx.store.delete_user(UserId(8)).await.expect("delete"));
    assert!(ctx
        .store
        .recent_messages(UserId(8), 10)
        .await
        .expect("read")
        .is_empty());
}

async fn a_full_batch_of_mixed_writes(ctx: Ctx) {
    // 512 writes as the persistence actor sends them: mostly food, interleaved with other kinds.
    let mut batch = Vec::with_capacity(512);
    for n in 0..512u128 {
        let person = i64::try_from(n % 16).unwrap_or(0) + 1;
        let minute = i64::try_from(n).unwrap_or(0);
        let eaten = at("2026-01-02T00:00:00Z") + Duration::minutes(minute);
        let write = match n % 8 {
            5 => Write::AppendMessage(ConversationMessage {
                id: id(10_000 + n),
                user_id: UserId(person),
                role: Role::User,
                content: format!("message {n}"),
                created_at: eaten,
            }),
            6 => Write::InsertXp(XpEvent {
                created_at: eaten,
                ..xp(person, 20_000 + n, 5)
            }),
            7 => Write::UpsertStreak(streak(person, "food", u32::try_from(n).unwrap_or(0), 600)),
            _ => {
                let mut entry = food(person, n, "2026-01-02", "2026-01-02T00:00:00Z");
                entry.eaten_at = eaten;
                entry.created_at = eaten;
                entry.local_date = eaten.date_naive();
                Write::InsertFoodEntry(entry)
            }
        };
        batch.push(write);
    }
    apply(&ctx, &batch).await;
    apply(&ctx, &batch).await;
    let mut entries = 0;
    let mut messages = 0;
    for person in 1..=16 {
        let person = UserId(person);
        entries += ctx
            .store
            .food_entries(person, day("2026-01-01"), day("2026-01-31"))
            .await
            .expect("r")
            .len();
        messages += ctx
            .store
            .recent_messages(person, 1000)
            .await
            .expect("read")
            .len();
        let expected_streaks = usize::from(person.0 % 8 == 0);
        assert_eq!(
            ctx.store.streaks(person).await.expect("read").len(),
            expected_streaks
        );
    }
    assert_eq!(entries, 512 / 8 * 5);
    assert_eq!(messages, 512 / 8);
    // The last streak write of each person wins: n = 16k + 7 for the largest k.
    let streaks = ctx.store.streaks(UserId(8)).await.expect("read");
    assert_eq!(streaks[0].current, 503);
}

// ------------------------------------------------------------------------------------------
// Starts
// ------------------------------------------------------------------------------------------

/// Two processes starting at once on an empty database: each migration is applied exactly once.
async fn concurrent_first_starts(backend: Backend) {
    let Some((config, target)) = fresh_target(backend).await else {
        return;
    };
    let (a, b) = tokio::join!(store::open(&config), store::open(&config));
    let (store_a, report_a) = a.expect("first start");
    let (store_b, report_b) = b.expect("second start");
    let mut applied = [report_a.applied, report_b.applied].concat();
    applied.sort();
    assert_eq!(applied, migration_names(backend));
    store_a.ping().await.expect("ping");
    store_b.ping().await.expect("ping");
    drop((store_a, store_b));
    target.remove().await;
}

#[tokio::test]
async fn store_concurrent_first_starts_embedded() {
    concurrent_first_starts(Backend::Embedded).await;
}

#[tokio::test]
async fn store_concurrent_first_starts_pgvector() {
    concurrent_first_starts(Backend::Pgvector).await;
}

#[tokio::test]
async fn store_concurrent_first_starts_plain_postgres() {
    concurrent_first_starts(Backend::PlainPostgres).await;
}

/// The migrations folder used as `docker-entrypoint-initdb.d` (plain SQL, no ledger), then the
/// binary's first start: it records the migrations again without failing on existing objects.
async fn initdb_scripts_then_first_start(backend: Backend) {
    let Some((config, target)) = fresh_target(backend).await else {
        return;
    };
    let StoreConfig::Postgres { url, .. } = &config else {
        panic!("initdb scripts are a PostgreSQL matter");
    };
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let connection = tokio::spawn(connection);
    for (_, script) in migration_files(backend) {
        client
            .batch_execute(&script)
            .await
            .expect("the script runs as plain SQL");
    }
    drop(client);
    let _ = connection.await;
    let (store, report) = store::open(&config).await.expect("the first start");
    assert_eq!(report.applied, migration_names(backend));
    let expected = if backend == Backend::Pgvector {
        "postgres+pgvector"
    } else {
        "postgres"
    };
    assert_eq!(report.backend, expected);
    drop(store);
    target.remove().await;
}

#[tokio::test]
async fn store_initdb_scripts_then_first_start_pgvector() {
    initdb_scripts_then_first_start(Backend::Pgvector).await;
}

#[tokio::test]
async fn store_initdb_scripts_then_first_start_plain_postgres() {
    initdb_scripts_then_first_start(Backend::PlainPostgres).await;
}

/// A database migrated by the earlier code, whose ledger was written by hand in each store (every
/// file run, then recorded in `schema_migrations` by version and name): the binary opens it
/// without applying anything again and without adding a row to the ledger.
async fn a_database_migrated_by_the_earlier_ledger_is_not_migrated_again(backend: Backend) {
    let Some((config, target)) = fresh_target(backend).await else {
        return;
    };
    let files = migration_files(backend);
    let version = |name: &str| -> i32 { name[..4].parse().expect("a numbered file") };
    match &config {
        StoreConfig::Embedded { path } => {
            std::fs::create_dir_all(path.parent().expect("a folder")).expect("the folder");
            let connection = rusqlite::Connection::open(path).expect("open");
            connection
                .execute_batch(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, \
                     name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
                )
                .expect("the earlier ledger");
            for (name, script) in &files {
                connection.execute_batch(script).expect("the migration");
                connection
                    .execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) \
                         VALUES (?1, ?2, ?3)",
                        rusqlite::params![version(name), name, Utc::now().timestamp_micros()],
                    )
                    .expect("recorded");
            }
        }
        StoreConfig::Postgres { url, .. } => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            let connection = tokio::spawn(connection);
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, \
                     name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                )
                .await
                .expect("the earlier ledger");
            for (name, script) in &files {
                client.batch_execute(script).await.expect("the migration");
                client
                    .execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        &[&version(name), name],
                    )
                    .await
                    .expect("recorded");
            }
            drop(client);
            let _ = connection.await;
        }
    }
    let (store, report) = store::open(&config)
        .await
        .expect("the start after the upgrade");
    assert!(
        report.applied.is_empty(),
        "nothing is applied again: {report:?}"
    );
    let (again, report) = store::open(&config).await.expect("a second start");
    assert!(report.applied.is_empty(), "{report:?}");
    let ledger_rows = match &config {
        StoreConfig::Embedded { path } => rusqlite::Connection::open(path)
            .expect("open")
            .query_row("SELECT count(*) FROM schema_migrations", [], |row| {
                row.get::<_, i64>(0)
            })
            .expect("the ledger"),
        StoreConfig::Postgres { url, .. } => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            let connection = tokio::spawn(connection);
            let rows: i64 = client
                .query_one("SELECT count(*) FROM schema_migrations", &[])
                .await
                .expect("the ledger")
                .get(0);
            drop(client);
            let _ = connection.await;
            rows
        }
    };
    assert_eq!(ledger_rows, i64::try_from(files.len()).expect("a count"));
    drop((store, again));
    target.remove().await;
}

#[tokio::test]
async fn store_a_database_migrated_by_the_earlier_ledger_is_not_migrated_again_embedded() {
    a_database_migrated_by_the_earlier_ledger_is_not_migrated_again(Backend::Embedded).await;
}

#[tokio::test]
async fn store_a_database_migrated_by_the_earlier_ledger_is_not_migrated_again_pgvector() {
    a_database_migrated_by_the_earlier_ledger_is_not_migrated_again(Backend::Pgvector).await;
}

#[tokio::test]
async fn store_a_database_migrated_by_the_earlier_ledger_is_not_migrated_again_plain_postgres() {
    a_database_migrated_by_the_earlier_ledger_is_not_migrated_again(Backend::PlainPostgres).await;
}

/// A process killed while the COMMIT of one of its steps was on the wire: the server still
/// holds that transaction when the next process starts the entry again. The step count the
/// restart reads must be the one that transaction leaves, or a replay would apply it twice.
async fn a_replay_waits_for_a_step_still_being_committed(backend: Backend) {
    let Some((config, target)) = fresh_target(backend).await else {
        return;
    };
    let StoreConfig::Postgres { url, .. } = &config else {
        panic!("a transaction outliving its process is a PostgreSQL matter");
    };
    let (store, _) = store::open(&config).await.expect("the store opens");
    let id = Uuid::from_u128(41);
    let entry = inbox_entry(
        41,
        "telegram",
        7,
        serde_json::json!({"text": "delete the last entry"}),
    );
    assert_eq!(store.inbox_accept(&[entry]).await.unwrap(), [true]);

    // The dying process's step: written, not yet committed.
    let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let connection = tokio::spawn(connection);
    let in_flight = client.transaction().await.expect("begin");
    in_flight
        .execute("UPDATE inbox SET steps = 1 WHERE id = $1", &[&id])
        .await
        .expect("the step");

    let restart = tokio::spawn({
        let store = store.clone();
        async move { store.inbox_resume(&[id]).await }
    });
    // Whether the restart has reached the row yet or not, the commit decides what it reads.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    in_flight.commit().await.expect("the late commit lands");
    let started = restart.await.expect("joined").expect("started");
    assert_eq!(started, [(id, 1)], "the replay skips the step that landed");

    drop(client);
    let _ = connection.await;
    drop(store);
    target.remove().await;
}

#[tokio::test]
async fn store_a_replay_waits_for_a_step_still_being_committed_pgvector() {
    a_replay_waits_for_a_step_still_being_committed(Backend::Pgvector).await;
}

#[tokio::test]
async fn store_a_replay_waits_for_a_step_still_being_committed_plain_postgres() {
    a_replay_waits_for_a_step_still_being_committed(Backend::PlainPostgres).await;
}

/// Nothing listens on the port: the error says "try again later", and says it quickly.
#[tokio::test]
async fn store_unreachable_postgres_is_unavailable() {
    let config = StoreConfig::Postgres {
        url: "postgresql://postgres:secret@127.0.0.1:1/postgres".to_owned(),
        max_connections: 2,
    };
    let started = std::time::Instant::now();
    let error = match store::open(&config).await {
        Ok(_) => panic!("nothing listens on port 1"),
        Err(error) => error,
    };
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(error.is_transient());
    assert!(!error.to_string().contains("secret"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

// ------------------------------------------------------------------------------------------
// Throughput (not a conformance check): run by hand, in release mode, e.g.
//   TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:55432/postgres \
//   cargo test --release --test integration store_apply_throughput -- --ignored --nocapture
// ------------------------------------------------------------------------------------------

async fn measure_apply_throughput(backend: Backend) {
    const BATCH: usize = 512;
    const BATCHES: usize = 40;
    let Some((config, target)) = fresh_target(backend).await else {
        return;
    };
    let (store, _) = store::open(&config).await.expect("the store opens");
    let batches: Vec<Vec<Write>> = (0..=BATCHES)
        .map(|b| {
            (0..BATCH)
                .map(|i| {
                    let n = u128::try_from(b * BATCH + i).unwrap_or(0);
                    let person = i64::try_from(i % 64).unwrap_or(0) + 1;
                    Write::InsertFoodEntry(food(
                        person,
                        n + 1,
                        "2026-01-02",
                        "2026-01-02T08:00:00Z",
                    ))
                })
                .collect()
        })
        .collect();
    // The first batch warms the pool and the statement cache.
    store.apply(&batches[0]).await.expect("warm-up batch");
    let started = std::time::Instant::now();
    for batch in &batches[1..] {
        store.apply(batch).await.expect("batch");
    }
    let elapsed = started.elapsed();
    let rows = (BATCH * BATCHES) as f64;
    println!(
        "{backend:?}: {BATCHES} batches of {BATCH} food entries in {:.3} s = {:.0} rows/s ({:.2} ms per batch)",
        elapsed.as_secs_f64(),
        rows / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / BATCHES as f64
    );
    drop(store);
    target.remove().await;
}

#[tokio::test]
#[ignore = "a measurement, not a check: run by hand in release mode"]
async fn store_apply_throughput_pgvector() {
    measure_apply_throughput(Backend::Pgvector).await;
}

#[tokio::test]
#[ignore = "a measurement, not a check: run by hand in release mode"]
async fn store_apply_throughput_plain_postgres() {
    measure_apply_throughput(Backend::PlainPostgres).await;
}

#[tokio::test]
#[ignore = "a measurement, not a check: run by hand in release mode"]
async fn store_apply_throughput_embedded() {
    measure_apply_throughput(Backend::Embedded).await;
}
