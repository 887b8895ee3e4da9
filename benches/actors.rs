//! Load benchmark of the actor core: `cargo bench --bench actors` (`BENCH_QUICK=1` for a run
//! under a minute).
//!
//! Measures, each beside the raw reference case run in the same process:
//! - conversations: 10,000 people × N messages through supervisor → conversation actor → a cheap
//!   in-process agent → outbox, with the in-memory store (throughput, then latency at a paced
//!   load below saturation); reference: a bare ractor fan-out (10,000 actors, N casts each).
//! - idle actor memory: RSS growth per idle conversation actor with 100,000 spawned; reference:
//!   100,000 bare ractor actors.
//! - with `BENCH_DATABASE_URL` (a fresh PostgreSQL database): rows/s through the persistence actor
//!   (batched) against one row per transaction through the same store.
//!
//! Prints a table and writes `target/bench-results/actors.json` (under `CARGO_TARGET_DIR` if set).
//! `BENCH_TRACE=1` also prints the latency tail per 100 ms of each paced run.

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use health_actors::conversation::{Agent, AgentError, ConversationSettings, TurnContext};
use health_actors::domain::{
    Achievement, ConversationMessage, DeadLetter, FoodEntry, Memory, Reminder, Role, ScoredMemory,
    Streak, User, UserId, WeightLog, XpEvent,
};
use health_actors::domain::{ChatId, MessageId};
use health_actors::inbound::{Inbound, InboundContent};
use health_actors::persistence::{PersistenceActor, PersistenceSettings};
use health_actors::ports::{
    Button, CachedFood, Outbox, OutboxError, SentMessage, Store, StoreError, SystemClock, Write,
};
use health_actors::root::{Root, RootArgs, RootHandle, RootSettings};
use health_actors::testing::MemoryStore;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::{json, Map, Value};
use uuid::Uuid;

const USERS: usize = 10_000;
const IDLE_ACTORS: usize = 100_000;

fn main() {
    let quick = common::quick();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let results = runtime.block_on(run(quick));
    print_table(&results);
    common::write_results("actors", &Value::Object(results));
    // Hundreds of thousands of actors are alive; exiting is faster than tearing them down.
    std::process::exit(0);
}

async fn run(quick: bool) -> Map<String, Value> {
    let mut results = Map::new();
    results.insert("quick".into(), json!(quick));
    results.insert(
        "cores".into(),
        json!(std::thread::available_parallelism().map_or(0, |n| n.get())),
    );
    let per_user = if quick { 5 } else { 20 };

    let raw = bare_fan_out(USERS, per_user).await;
    let conversation = conversation_throughput(per_user).await;
    results.insert("conversation_users".into(), json!(USERS));
    results.insert("conversation_messages_per_user".into(), json!(per_user));
    results.insert(
        "conversation_msgs_per_s".into(),
        json!(conversation.round()),
    );
    results.insert("raw_ractor_fan_out_msgs_per_s".into(), json!(raw.round()));
    results.insert(
        "conversation_vs_raw_ratio".into(),
        json!(round3(conversation / raw)),
    );

    // Latency at paced loads below saturation (open loop); the headline is the 25 % load, the
    // others show how the tail grows with load.
    let seconds = if quick { 2 } else { 10 };
    let mut sweep = Map::new();
    for fraction in [0.10, 0.25, 0.50] {
        let rate = (conversation * fraction).clamp(1_000.0, 200_000.0);
        let (p50, p99, p999) = conversation_latency(rate, Duration::from_secs(seconds)).await;
        sweep.insert(
            format!("{}pct", (fraction * 100.0).round()),
            json!({ "msgs_per_s": rate.round(), "p50_us": p50, "p99_us": p99, "p999_us": p999 }),
        );
        if fraction == 0.25 {
            results.insert(
                "conversation_latency_load_msgs_per_s".into(),
                json!(rate.round()),
            );
            results.insert("conversation_p50_us".into(), json!(p50));
            results.insert("conversation_p99_us".into(), json!(p99));
            results.insert("conversation_p999_us".into(), json!(p999));
        }
    }
    results.insert("conversation_latency_sweep".into(), Value::Object(sweep));
    let raw_call = raw_call_round_trip(if quick { 20_000 } else { 100_000 }).await;
    results.insert("raw_ractor_call_p50_us".into(), json!(raw_call.0));
    results.insert("raw_ractor_call_p99_us".into(), json!(raw_call.1));

    let raw_bytes = bare_idle_actor_bytes(IDLE_ACTORS).await;
    let idle_bytes = idle_conversation_actor_bytes(IDLE_ACTORS).await;
    results.insert("idle_actors".into(), json!(IDLE_ACTORS));
    results.insert("idle_actor_bytes".into(), json!(idle_bytes.round()));
    results.insert(
        "raw_idle_ractor_actor_bytes".into(),
        json!(raw_bytes.round()),
    );
    results.insert(
        "idle_actor_vs_raw_ratio".into(),
        json!(round3(idle_bytes / raw_bytes)),
    );

    match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) if !url.is_empty() => match persistence_against_postgres(&url, quick).await {
            Ok((batched, single)) => {
                results.insert("persist_batched_rows_per_s".into(), json!(batched.round()));
                results.insert("persist_single_rows_per_s".into(), json!(single.round()));
                results.insert("persist_ratio".into(), json!(round3(batched / single)));
            }
            Err(error) => {
                eprintln!("persistence benchmark skipped: {error}");
                results.insert("persist_error".into(), json!(error));
            }
        },
        _ => {
            eprintln!(
                "BENCH_DATABASE_URL is not set: the PostgreSQL persistence benchmark is skipped"
            );
        }
    }
    results
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

// ---------------------------------------------------------------------------------------------
// Conversations
// ---------------------------------------------------------------------------------------------

/// The cheap in-process handler: answers the text back.
struct CheapAgent;

#[async_trait]
impl Agent for CheapAgent {
    async fn handle(&self, ctx: &mut TurnContext<'_>, inbound: &Inbound) -> Result<(), AgentError> {
        if let InboundContent::Text(text) = &inbound.content {
            let _ = ctx.reply(text.clone()).await;
        }
        Ok(())
    }
}

/// Records, per message index (the text), when its answer arrived.
struct LatencyOutbox {
    start: Instant,
    submitted: Vec<AtomicU64>,
    replied: Vec<AtomicU64>,
    answered: AtomicUsize,
}

impl LatencyOutbox {
    fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            submitted: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            replied: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            answered: AtomicUsize::new(0),
        })
    }

    fn nanos(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn mark_submitted(&self, index: usize) {
        self.submitted[index].store(self.nanos(), Ordering::Relaxed);
    }

    async fn wait_answered(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.answered.load(Ordering::Acquire) < count {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        true
    }

    /// Latencies in microseconds of the answered messages in `range`, sorted.
    fn latencies_us(&self, range: std::ops::Range<usize>) -> Vec<f64> {
        let mut latencies: Vec<f64> = range
            .filter_map(|i| {
                let replied = self.replied[i].load(Ordering::Relaxed);
                let submitted = self.submitted[i].load(Ordering::Relaxed);
                (replied > 0).then(|| replied.saturating_sub(submitted) as f64 / 1_000.0)
            })
            .collect();
        latencies.sort_by(f64::total_cmp);
        latencies
    }
}

#[async_trait]
impl Outbox for LatencyOutbox {
    async fn send_text(&self, chat: ChatId, text: &str) -> Result<SentMessage, OutboxError> {
        if let Ok(index) = text.parse::<usize>() {
            if let Some(slot) = self.replied.get(index) {
                slot.store(self.nanos(), Ordering::Relaxed);
            }
        }
        self.answered.fetch_add(1, Ordering::Release);
        Ok(SentMessage {
            chat,
            message: MessageId(0),
        })
    }
    async fn send_buttons(
        &self,
        chat: ChatId,
        _: &str,
        _: &[Vec<Button>],
    ) -> Result<SentMessage, OutboxError> {
        Ok(SentMessage {
            chat,
            message: MessageId(0),
        })
    }
    async fn send_photo(
        &self,
        chat: ChatId,
        _: &[u8],
        _: Option<&str>,
    ) -> Result<SentMessage, OutboxError> {
        Ok(SentMessage {
            chat,
            message: MessageId(0),
        })
    }
    async fn send_document(
        &self,
        chat: ChatId,
        _: &str,
        _: &[u8],
        _: Option<&str>,
    ) -> Result<SentMessage, OutboxError> {
        Ok(SentMessage {
            chat,
            message: MessageId(0),
        })
    }
    async fn edit_text(
        &self,
        _: SentMessage,
        _: &str,
        _: Option<&[Vec<Button>]>,
    ) -> Result<(), OutboxError> {
        Ok(())
    }
    async fn typing(&self, _: ChatId) -> Result<(), OutboxError> {
        Ok(())
    }
}

async fn start_tree(store: Arc<dyn Store>, mailbox_max: usize) -> RootHandle {
    let settings = RootSettings {
        conversation: ConversationSettings {
            mailbox_max,
            ..ConversationSettings::default()
        },
        persistence: PersistenceSettings::default(),
        ..RootSettings::default()
    };
    Root::start(RootArgs {
        store,
        agent: Arc::new(CheapAgent),
        clock: Arc::new(SystemClock),
        settings,
        vision: health_actors::vision::VisionArgs::default(),
    })
    .await
    .expect("the actor tree starts")
}

/// All messages submitted as fast as the intake takes them, round-robin over the people.
async fn conversation_throughput(per_user: usize) -> f64 {
    let total = USERS * per_user;
    let tree = start_tree(Arc::new(MemoryStore::new()), per_user + 2).await;
    let outbox = LatencyOutbox::new(total);
    let reply: Arc<dyn Outbox> = outbox.clone();
    let conversations = tree.conversations();
    let started = Instant::now();
    for round in 0..per_user {
        for user in 0..USERS {
            let index = round * USERS + user;
            let inbound = Inbound::text(
                UserId(user as i64),
                ChatId(user as i64),
                index.to_string(),
                reply.clone(),
            );
            outbox.mark_submitted(index);
            conversations.submit(inbound).await.expect("accepted");
        }
    }
    assert!(
        outbox.wait_answered(total, Duration::from_secs(300)).await,
        "every message answered"
    );
    let rate = total as f64 / started.elapsed().as_secs_f64();
    tree.shutdown(Duration::from_secs(30)).await;
    rate
}

/// Latency at a paced load: every millisecond, `rate / 1000` messages round-robin over the
/// people (open loop: the pace does not wait for answers).
async fn conversation_latency(rate: f64, duration: Duration) -> (f64, f64, f64) {
    let total = (rate * duration.as_secs_f64()) as usize;
    let tree = start_tree(Arc::new(MemoryStore::new()), 64).await;
    let outbox = LatencyOutbox::new(total);
    let reply: Arc<dyn Outbox> = outbox.clone();
    let conversations = tree.conversations();
    let per_tick = (rate / 1000.0).max(1.0);
    let started = Instant::now();
    let mut interval = tokio::time::interval(Duration::from_millis(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0usize;
    let mut due = 0.0f64;
    while sent < total {
        interval.tick().await;
        due += per_tick;
        while (sent as f64) < due && sent < total {
            let user = (sent % USERS) as i64;
            let inbound =
                Inbound::text(UserId(user), ChatId(user), sent.to_string(), reply.clone());
            outbox.mark_submitted(sent);
            conversations.submit(inbound).await.expect("accepted");
            sent += 1;
        }
    }
    assert!(
        outbox.wait_answered(total, Duration::from_secs(120)).await,
        "every message answered"
    );
    let elapsed = started.elapsed();
    tree.shutdown(Duration::from_secs(30)).await;
    if std::env::var_os("BENCH_TRACE").is_some() {
        trace_latency_over_time(&outbox, total);
    }
    // The first 10 % warm up (spawning 10,000 actors); measure the rest.
    let latencies = outbox.latencies_us(total / 10..total);
    eprintln!("latency phase: {total} messages in {elapsed:?}");
    (
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
    )
}

/// `BENCH_TRACE=1`: the latency tail per 100 ms of submissions, to see where stalls happen.
fn trace_latency_over_time(outbox: &LatencyOutbox, total: usize) {
    let mut windows: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
    for index in 0..total {
        let submitted = outbox.submitted[index].load(Ordering::Relaxed);
        let replied = outbox.replied[index].load(Ordering::Relaxed);
        let latency = replied.saturating_sub(submitted) as f64 / 1_000.0;
        windows
            .entry(submitted / 100_000_000)
            .or_default()
            .push(latency);
    }
    for (window, mut latencies) in windows {
        latencies.sort_by(f64::total_cmp);
        eprintln!(
            "t={:>5} ms n={:>6} p50={:>8.1} p99={:>8.1} max={:>8.1} us",
            window * 100,
            latencies.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default()
        );
    }
}

fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
    (sorted[index] * 10.0).round() / 10.0
}

// ---------------------------------------------------------------------------------------------
// Raw ractor reference cases
// ---------------------------------------------------------------------------------------------

struct CountingActor;

impl Actor for CountingActor {
    type Msg = CountingMsg;
    type State = Arc<AtomicUsize>;
    type Arguments = Arc<AtomicUsize>;

    async fn pre_start(
        &self,
        _: ActorRef<Self::Msg>,
        counter: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(counter)
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        message: Self::Msg,
        counter: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CountingMsg::Count => {
                counter.fetch_add(1, Ordering::Release);
            }
            CountingMsg::Ping(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

enum CountingMsg {
    Count,
    Ping(ractor::RpcReplyPort<()>),
}

async fn spawn_counting(count: usize, counter: &Arc<AtomicUsize>) -> Vec<ActorRef<CountingMsg>> {
    let mut actors = Vec::with_capacity(count);
    for _ in 0..count {
        let (actor, _) = Actor::spawn(None, CountingActor, counter.clone())
            .await
            .expect("spawns");
        actors.push(actor);
    }
    actors
}

/// `actors` bare actors, `per_actor` casts each, round-robin from one task.
async fn bare_fan_out(actors: usize, per_actor: usize) -> f64 {
    let counter = Arc::new(AtomicUsize::new(0));
    let refs = spawn_counting(actors, &counter).await;
    let total = actors * per_actor;
    let started = Instant::now();
    for _ in 0..per_actor {
        for actor in &refs {
            let _ = actor.cast(CountingMsg::Count);
        }
    }
    while counter.load(Ordering::Acquire) < total {
        tokio::task::yield_now().await;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    for actor in refs {
        actor.stop(None);
    }
    rate
}

/// Round trips of `call` to one bare actor: p50 and p99 in microseconds.
async fn raw_call_round_trip(count: usize) -> (f64, f64) {
    let counter = Arc::new(AtomicUsize::new(0));
    let actors = spawn_counting(1, &counter).await;
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let _ = actors[0]
            .call(CountingMsg::Ping, Some(Duration::from_secs(1)))
            .await;
        latencies.push(started.elapsed().as_nanos() as f64 / 1_000.0);
    }
    latencies.sort_by(f64::total_cmp);
    actors[0].stop(None);
    (percentile(&latencies, 0.50), percentile(&latencies, 0.99))
}

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

fn resident_bytes() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib * 1024.0)
}

/// RSS growth per bare idle ractor actor. They stay alive (so the memory is not reused by the
/// next measurement).
async fn bare_idle_actor_bytes(count: usize) -> f64 {
    let counter = Arc::new(AtomicUsize::new(0));
    let before = resident_bytes();
    let actors = spawn_counting(count, &counter).await;
    let after = resident_bytes();
    std::mem::forget(actors);
    (after - before) / count as f64
}

/// RSS growth per idle conversation actor: `count` people send one message each, then their
/// actors sit idle. The store keeps nothing, so only the actors (and the supervisor's table)
/// grow.
async fn idle_conversation_actor_bytes(count: usize) -> f64 {
    let tree = start_tree(Arc::new(NullStore), 4).await;
    let outbox = LatencyOutbox::new(count);
    let reply: Arc<dyn Outbox> = outbox.clone();
    let conversations = tree.conversations();
    // A warm-up person so the allocator's arenas and the tree's first allocations are counted out.
    let warm_up = Inbound::text(UserId(-1), ChatId(-1), "warm-up", reply.clone());
    conversations
        .submit_and_wait(warm_up, Duration::from_secs(10))
        .await
        .expect("answered");
    let before = resident_bytes();
    for user in 0..count {
        let inbound = Inbound::text(
            UserId(user as i64),
            ChatId(user as i64),
            user.to_string(),
            reply.clone(),
        );
        conversations.submit(inbound).await.expect("accepted");
    }
    assert!(
        outbox.wait_answered(count, Duration::from_secs(300)).await,
        "every message answered"
    );
    let stats = conversations.stats().await.expect("stats");
    let after = resident_bytes();
    eprintln!(
        "idle phase: {} conversation actors alive, {} queued",
        stats.active_actors, stats.queued_messages
    );
    let per_actor = (after - before) / count as f64;
    std::mem::forget(tree);
    per_actor
}

/// A store that keeps nothing (memory benchmark): every read is empty, every write succeeds.
struct NullStore;

#[async_trait]
impl Store for NullStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn backend(&self) -> &'static str {
        "null"
    }
    async fn apply(&self, _: &[Write]) -> Result<(), StoreError> {
        Ok(())
    }
    async fn user(&self, _: UserId) -> Result<Option<User>, StoreError> {
        Ok(None)
    }
    async fn delete_user(&self, _: UserId) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn food_entry(&self, _: UserId, _: Uuid) -> Result<Option<FoodEntry>, StoreError> {
        Ok(None)
    }
    async fn food_entries(
        &self,
        _: UserId,
        _: NaiveDate,
        _: NaiveDate,
    ) -> Result<Vec<FoodEntry>, StoreError> {
        Ok(Vec::new())
    }
    async fn last_food_entry(&self, _: UserId) -> Result<Option<FoodEntry>, StoreError> {
        Ok(None)
    }
    async fn recent_messages(
        &self,
        _: UserId,
        _: usize,
    ) -> Result<Vec<ConversationMessage>, StoreError> {
        Ok(Vec::new())
    }
    async fn memories(&self, _: UserId) -> Result<Vec<Memory>, StoreError> {
        Ok(Vec::new())
    }
    async fn search_memories(
        &self,
        _: UserId,
        _: &str,
        _: &[f32],
        _: usize,
    ) -> Result<Vec<ScoredMemory>, StoreError> {
        Ok(Vec::new())
    }
    async fn weights(
        &self,
        _: UserId,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<WeightLog>, StoreError> {
        Ok(Vec::new())
    }
    async fn reminders(&self, _: UserId) -> Result<Vec<Reminder>, StoreError> {
        Ok(Vec::new())
    }
    async fn due_reminders(&self, _: DateTime<Utc>, _: usize) -> Result<Vec<Reminder>, StoreError> {
        Ok(Vec::new())
    }
    async fn xp_events(&self, _: UserId) -> Result<Vec<XpEvent>, StoreError> {
        Ok(Vec::new())
    }
    async fn streaks(&self, _: UserId) -> Result<Vec<Streak>, StoreError> {
        Ok(Vec::new())
    }
    async fn achievements(&self, _: UserId) -> Result<Vec<Achievement>, StoreError> {
        Ok(Vec::new())
    }
    async fn dead_letters(&self, _: usize) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(Vec::new())
    }

    async fn cached_food(&self, _: &str, _: &str) -> Result<Option<CachedFood>, StoreError> {
        Ok(None)
    }

    async fn cache_food(&self, _: CachedFood) -> Result<(), StoreError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Persistence against PostgreSQL
// ---------------------------------------------------------------------------------------------

fn message_row(user: UserId, n: usize) -> Write {
    Write::AppendMessage(ConversationMessage {
        id: Uuid::now_v7(),
        user_id: user,
        role: Role::User,
        content: format!("benchmark message {n}: two eggs and a slice of toast"),
        created_at: Utc::now(),
    })
}

/// Same kind of rows: one per transaction (sequential `Store::apply`, the raw case), then
/// through the persistence actor (many senders, batched). Returns (batched, single) rows/s.
async fn persistence_against_postgres(url: &str, quick: bool) -> Result<(f64, f64), String> {
    let config = health_agent::store::StoreConfig::Postgres {
        url: url.to_owned(),
        max_connections: 8,
    };
    let (store, _) = health_agent::store::open(&config)
        .await
        .map_err(|e| e.to_string())?;
    let user = UserId(900_000_000 + (Utc::now().timestamp_subsec_micros() as i64));
    store
        .apply(&[Write::UpsertUser(User::new(user, Utc::now()))])
        .await
        .map_err(|e| e.to_string())?;

    let single_rows = if quick { 1_000 } else { 5_000 };
    let started = Instant::now();
    for n in 0..single_rows {
        store
            .apply(&[message_row(user, n)])
            .await
            .map_err(|e| e.to_string())?;
    }
    let single = single_rows as f64 / started.elapsed().as_secs_f64();

    let batched_rows = if quick { 30_000 } else { 200_000 };
    let handle = PersistenceActor::start(store.clone(), PersistenceSettings::default(), None)
        .await
        .map_err(|e| e.to_string())?;
    let rows: Vec<Write> = (0..batched_rows).map(|n| message_row(user, n)).collect();
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let mut acks = Vec::with_capacity(batched_rows);
    for row in rows {
        acks.push(
            handle
                .submit(vec![row], deadline)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    for ack in acks {
        ack.await
            .map_err(|_| "an acknowledgement was lost".to_owned())?
            .map_err(|e| e.to_string())?;
    }
    let batched = batched_rows as f64 / started.elapsed().as_secs_f64();
    let _ = handle.shutdown(Duration::from_secs(10)).await;
    let _ = store.delete_user(user).await;
    Ok((batched, single))
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

fn print_table(results: &Map<String, Value>) {
    let rows = [
        (
            "conversation_msgs_per_s",
            "raw_ractor_fan_out_msgs_per_s",
            "conversation_vs_raw_ratio",
            ">= 100000",
        ),
        ("conversation_p50_us", "raw_ractor_call_p50_us", "", ""),
        (
            "conversation_p99_us",
            "raw_ractor_call_p99_us",
            "",
            "<= 1000",
        ),
        (
            "idle_actor_bytes",
            "raw_idle_ractor_actor_bytes",
            "idle_actor_vs_raw_ratio",
            "<= 8192",
        ),
        (
            "persist_batched_rows_per_s",
            "persist_single_rows_per_s",
            "persist_ratio",
            "ratio >= 20",
        ),
    ];
    let show = |key: &str| {
        results
            .get(key)
            .map_or_else(|| "-".to_owned(), Value::to_string)
    };
    println!();
    println!(
        "{:<30} {:>12} | {:<30} {:>12} | {:>7} | target",
        "measure", "value", "raw reference", "value", "ratio"
    );
    println!("{}", "-".repeat(118));
    for (key, raw, ratio, target) in rows {
        let ratio = if ratio.is_empty() {
            "".to_owned()
        } else {
            show(ratio)
        };
        println!(
            "{key:<30} {:>12} | {raw:<30} {:>12} | {ratio:>7} | {target}",
            show(key),
            show(raw)
        );
    }
    println!(
        "latency measured at {} msg/s (open loop); p99.9 {} us",
        show("conversation_latency_load_msgs_per_s"),
        show("conversation_p999_us")
    );
}
