//! Fresh PostgreSQL databases for tests: each test gets its own, and drops it when done.
//!
//! Tests must not see each other's rows, and must leave nothing behind. Given a maintenance URL
//! (any database on the server, e.g. `.../postgres`), [`TestDatabase::create`] makes a uniquely
//! named database and yields its URL; [`TestDatabase::drop_database`] drops it with
//! `WITH (FORCE)` (PostgreSQL >= 13), closing connections still open. `Drop` cannot be async, so
//! a database not dropped explicitly (a failed test) is dropped best-effort from a helper thread.
//!
//! [`database_url`] reads the server's URL from the environment: unset means "skip" on a laptop,
//! and a clear failure when `REQUIRE_POSTGRES=1` (CI).

use tokio_postgres::NoTls;

/// The URL in `variable`, or `None` (after printing why the test skips). Panics when the URL is
/// unset and `REQUIRE_POSTGRES=1`, so CI cannot pass by skipping.
pub fn database_url(variable: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("REQUIRE_POSTGRES").is_ok_and(|value| value == "1") => panic!(
            "{variable} is not set but REQUIRE_POSTGRES=1: set it to a maintenance URL such as \
             postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        _ => {
            eprintln!("skipping: {variable} not set");
            None
        }
    }
}

/// A database created for one test.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    maintenance_url: String,
    dropped: bool,
}

impl TestDatabase {
    /// Creates `test_<uuid>` on the server of `maintenance_url`.
    pub async fn create(maintenance_url: &str) -> Result<Self, tokio_postgres::Error> {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let client = connect(maintenance_url).await?;
        // The name is ours (hex digits), not input: identifiers cannot be bound parameters.
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        Ok(Self {
            url: with_database(maintenance_url, &name),
            name,
            maintenance_url: maintenance_url.to_owned(),
            dropped: false,
        })
    }

    /// The URL of the new database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database, closing any connection still open to it.
    pub async fn drop_database(mut self) {
        self.dropped = true;
        if let Err(error) = drop_named(&self.maintenance_url, &self.name).await {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Best effort, on a thread of its own: this may run inside (or outside) a runtime.
        let (maintenance_url, name) = (self.maintenance_url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                if let Err(error) = runtime.block_on(drop_named(&maintenance_url, &name)) {
                    eprintln!("could not drop test database {name}: {error}");
                }
            }
        });
        let _ = cleanup.join();
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("maintenance connection: {error}");
        }
    });
    Ok(client)
}

async fn drop_named(maintenance_url: &str, name: &str) -> Result<(), tokio_postgres::Error> {
    let client = connect(maintenance_url).await?;
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
}

/// `url` with its database name replaced by `database` (URL form only:
/// `postgresql://user@host:port/db?params`).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(
        with_database("postgresql://postgres@127.0.0.1:5432/postgres", "t1"),
        "postgresql://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "t2"),
        "postgres://u:p@h/t2?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h:1", "t3"), "postgres://h:1/t3");
}
