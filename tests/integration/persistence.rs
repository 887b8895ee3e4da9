//! The persistence actor against a real PostgreSQL: every accepted write lands exactly once even
//! when the database drops its connections mid-stream, and shutdown flushes what was accepted.
//!
//! Needs `TEST_DATABASE_URL` (a maintenance URL; each test creates and drops its own database);
//! skips without it unless `REQUIRE_POSTGRES=1`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use health_actors::domain::{ConversationMessage, Role, User, UserId};
use health_actors::persistence::{PersistenceActor, PersistenceHandle, PersistenceSettings};
use health_actors::ports::{Store, Write};
use health_actors::testing::eventually;
use health_agent::store::{self, StoreConfig};
use tokio::time::Instant;
use uuid::Uuid;

use crate::support::db::{database_url, TestDatabase};
use crate::support::proxy::CuttableProxy;

const USER: UserId = UserId(4242);
const WAIT: Duration = Duration::from_secs(60);

fn settings() -> PersistenceSettings {
    PersistenceSettings {
        batch_max: 64,
        flush: Duration::from_millis(5),
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(500),
        apply_timeout: Duration::from_secs(5),
        write_timeout: WAIT,
        ..PersistenceSettings::default()
    }
}

fn row(n: usize) -> Write {
    Write::AppendMessage(ConversationMessage {
        id: Uuid::now_v7(),
        user_id: USER,
        role: Role::User,
        content: format!("message {n}"),
        created_at: Utc::now(),
    })
}

async fn open(url: &str) -> Arc<dyn Store> {
    let config = StoreConfig::Postgres {
        url: url.to_owned(),
        max_connections: 4,
    };
    let (store, _) = store::open(&config)
        .await
        .expect("the store opens and migrates");
    store
        .apply(&[Write::UpsertUser(User::new(USER, Utc::now()))])
        .await
        .expect("the user is stored");
    store
}

/// `writers` tasks each writing `per_writer` rows one at a time, each awaited until committed.
/// Returns the ids of the rows, and counts acknowledgements in `acked`.
fn spawn_writers(
    handle: &PersistenceHandle,
    writers: usize,
    per_writer: usize,
    acked: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<Vec<Uuid>>> {
    (0..writers)
        .map(|writer| {
            let (handle, acked) = (handle.clone(), acked.clone());
            tokio::spawn(async move {
                let mut ids = Vec::with_capacity(per_writer);
                for n in 0..per_writer {
                    let write = row(writer * per_writer + n);
                    if let Write::AppendMessage(message) = &write {
                        ids.push(message.id);
                    }
                    handle
                        .write(vec![write])
                        .await
                        .expect("every accepted write is committed");
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                ids
            })
        })
        .collect()
}

/// Every id written is stored exactly once.
async fn assert_stored_exactly_once(store: &Arc<dyn Store>, expected: &[Uuid]) {
    let stored = store
        .recent_messages(USER, expected.len() + 100)
        .await
        .expect("messages read back");
    let stored_ids: Vec<Uuid> = stored.iter().map(|m| m.id).collect();
    let unique: HashSet<Uuid> = stored_ids.iter().copied().collect();
    assert_eq!(stored_ids.len(), unique.len(), "no row is duplicated");
    assert_eq!(
        unique,
        expected.iter().copied().collect::<HashSet<_>>(),
        "every row is stored"
    );
}

async fn terminate_backends(url: &str) -> u64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("a second connection");
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .expect("backends terminated");
    rows.len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_writes_land_exactly_once_when_backends_are_terminated_mid_stream() {
    let Some(url) = database_url("TEST_DATABASE_URL") else {
        return;
    };
    let database = TestDatabase::create(&url).await.expect("a test database");
    let store = open(database.url()).await;
    let handle = PersistenceActor::start(store.clone(), settings(), None)
        .await
        .expect("starts");

    let acked = Arc::new(AtomicUsize::new(0));
    let writers = spawn_writers(&handle, 32, 60, &acked);
    let mut terminated = 0;
    for round in 1..=5 {
        // Kill the pool's connections each time another slice of the stream is committed.
        let reached = eventually(WAIT, || async {
            acked.load(Ordering::SeqCst) >= round * 300
        })
        .await;
        assert!(reached, "writes go on between interruptions");
        terminated += terminate_backends(database.url()).await;
    }
    assert!(terminated > 0, "connections were dropped");
    let mut ids = Vec::new();
    for writer in writers {
        ids.extend(writer.await.expect("writer finished"));
    }
    assert_eq!(ids.len(), 32 * 60);
    assert_stored_exactly_once(&store, &ids).await;
    let report = handle
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shut down");
    assert_eq!(report.abandoned_rows, 0);
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_writes_land_exactly_once_after_the_network_is_cut_and_restored() {
    let Some(url) = database_url("TEST_DATABASE_URL") else {
        return;
    };
    let database = TestDatabase::create(&url).await.expect("a test database");
    let upstream = upstream_address(database.url()).await;
    let proxy = CuttableProxy::start(upstream).await;
    let store = open(&proxy.rewrite_url(database.url())).await;
    let handle = PersistenceActor::start(store.clone(), settings(), None)
        .await
        .expect("starts");

    let acked = Arc::new(AtomicUsize::new(0));
    let writers = spawn_writers(&handle, 16, 50, &acked);
    assert!(eventually(WAIT, || async { acked.load(Ordering::SeqCst) >= 200 }).await);
    proxy.cut();
    // While cut, writes are accepted but not acknowledged.
    let before = acked.load(Ordering::SeqCst);
    let down = eventually(WAIT, || async { store.ping().await.is_err() });
    assert!(
        down.await,
        "the database is unreachable through the cut proxy"
    );
    assert!(
        acked.load(Ordering::SeqCst) <= before + 16,
        "nothing is acknowledged without a commit"
    );
    proxy.restore();
    let mut ids = Vec::new();
    for writer in writers {
        ids.extend(writer.await.expect("writer finished"));
    }
    assert_eq!(ids.len(), 16 * 50);
    assert_stored_exactly_once(&store, &ids).await;
    handle
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shut down");
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_every_accepted_write_into_postgres() {
    let Some(url) = database_url("TEST_DATABASE_URL") else {
        return;
    };
    let database = TestDatabase::create(&url).await.expect("a test database");
    let store = open(database.url()).await;
    // Nothing would be flushed by size or time: only the shutdown writes these rows.
    let settings = PersistenceSettings {
        batch_max: 100_000,
        flush: Duration::from_secs(3600),
        ..settings()
    };
    let handle = PersistenceActor::start(store.clone(), settings, None)
        .await
        .expect("starts");
    let deadline = Instant::now() + WAIT;
    let mut ids = Vec::new();
    let mut acks = Vec::new();
    for n in 0..2_000 {
        let write = row(n);
        if let Write::AppendMessage(message) = &write {
            ids.push(message.id);
        }
        acks.push(
            handle
                .submit(vec![write], deadline)
                .await
                .expect("accepted"),
        );
    }
    assert!(store
        .recent_messages(USER, 10)
        .await
        .expect("read")
        .is_empty());
    let report = handle
        .shutdown(Duration::from_secs(20))
        .await
        .expect("flushed");
    assert_eq!(report.written_rows, 2_000);
    assert_eq!(report.abandoned_rows, 0);
    for ack in acks {
        assert_eq!(ack.await, Ok(Ok(())));
    }
    assert_stored_exactly_once(&store, &ids).await;
    database.drop_database().await;
}

/// The host:port of a `postgresql://user@host:port/db` URL, resolved.
async fn upstream_address(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    tokio::net::lookup_host(host_port)
        .await
        .expect("the database host resolves")
        .next()
        .expect("an address")
}
