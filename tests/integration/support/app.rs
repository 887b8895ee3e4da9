//! `spawn_app`: the real application on 127.0.0.1 port 0, with a fresh data directory and a
//! fresh database of the chosen [`Backend`], shut down (and the database dropped) when the test
//! ends.
//!
//! The helper owns the database: for PostgreSQL it creates a uniquely named database on the
//! server of `TEST_DATABASE_URL` / `TEST_PLAIN_DATABASE_URL`, the application migrates it when
//! it starts, and [`TestApp::stop`] drops it (a test that fails before stopping drops it
//! best-effort, see [`super::db::TestDatabase`]). A test that restarts the application keeps the
//! database and the data directory through [`TestApp::shut_down`] and [`StoppedApp::start`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use health_agent::config::Settings;
use health_agent::startup::Application;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::db::{database_url, TestDatabase};
use super::proxy::{url_address, CuttableProxy};

/// Which store the application runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the data directory (no server needed).
    Embedded,
    /// PostgreSQL with pgvector, on the server of `TEST_DATABASE_URL`.
    Postgres,
    /// PostgreSQL without pgvector, on the server of `TEST_PLAIN_DATABASE_URL`.
    PlainPostgres,
}

impl Backend {
    /// The variable naming the backend's server, if it needs one.
    fn server_variable(self) -> Option<&'static str> {
        match self {
            Self::Embedded => None,
            Self::Postgres => Some("TEST_DATABASE_URL"),
            Self::PlainPostgres => Some("TEST_PLAIN_DATABASE_URL"),
        }
    }

    /// The backend when it can run here: `None` (the test skips, saying why) when its server is
    /// not configured; a failure instead when `REQUIRE_POSTGRES=1`.
    pub fn available(self) -> Option<Self> {
        match self.server_variable() {
            None => Some(self),
            Some(variable) => database_url(variable).map(|_| self),
        }
    }

    /// A fresh database on the backend's server (none for the embedded store).
    async fn create_database(self) -> Option<TestDatabase> {
        let variable = self.server_variable()?;
        let server = database_url(variable).unwrap_or_else(|| {
            panic!("{variable} is not set: check Backend::available() before spawn_app")
        });
        Some(
            TestDatabase::create(&server)
                .await
                .expect("a fresh test database"),
        )
    }
}

pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    database: Option<TestDatabase>,
    /// The variables the application was started with (for a restart).
    vars: Vec<(String, String)>,
    /// The URL the application uses, when it is not the database's own (through a proxy).
    database_url_override: Option<String>,
    /// Sent (or dropped, when a test ends without stopping) to shut the application down.
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request to the test application failed")
    }

    /// The URL of the application's PostgreSQL database (`None` on the embedded store), for a
    /// test that reads or writes rows directly.
    pub fn database_url(&self) -> Option<&str> {
        self.database.as_ref().map(TestDatabase::url)
    }

    /// Signals shutdown, waits (bounded) for the application to stop, then drops its database.
    pub async fn stop(self) -> anyhow::Result<()> {
        let stopped = self.shut_down().await?;
        if let Some(database) = stopped.database {
            database.drop_database().await;
        }
        Ok(())
    }

    /// Stops the application but keeps its database and data directory, for a restart.
    pub async fn shut_down(mut self) -> anyhow::Result<StoppedApp> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("the application did not stop within 10 s")
                .expect("the application task panicked")?;
        }
        Ok(StoppedApp {
            data_dir: self.data_dir,
            database: self.database,
            vars: self.vars,
            database_url_override: self.database_url_override,
        })
    }
}

/// An application stopped by [`TestApp::shut_down`]: its database and data directory are kept
/// until it is started again (or dropped).
pub struct StoppedApp {
    data_dir: tempfile::TempDir,
    database: Option<TestDatabase>,
    vars: Vec<(String, String)>,
    database_url_override: Option<String>,
}

impl StoppedApp {
    /// The URL of the kept PostgreSQL database (`None` on the embedded store).
    pub fn database_url(&self) -> Option<&str> {
        self.database.as_ref().map(TestDatabase::url)
    }

    /// Starts the application again on the same database, data directory and variables.
    pub async fn start(self) -> TestApp {
        start(
            self.data_dir,
            self.database,
            self.vars,
            self.database_url_override,
        )
        .await
    }
}

/// Settings for a test: port 0 on loopback, a fresh data directory, no API keys of any provider,
/// plus `extra` variables.
pub fn test_settings(data_dir: &std::path::Path, extra: &[(&str, &str)]) -> Settings {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    vars.insert("API_HOST".into(), "127.0.0.1".into());
    vars.insert("API_PORT".into(), "0".into());
    vars.insert("DATA_DIR".into(), data_dir.display().to_string());
    for (name, value) in extra {
        vars.insert((*name).into(), (*value).into());
    }
    Settings::from_source(&vars).expect("test settings are valid")
}

/// Builds and starts the application on a fresh database of `backend`, with `extra` variables
/// on top of [`test_settings`]. `DATABASE_URL` is the helper's to set: do not pass it.
pub async fn spawn_app(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temporary data directory");
    let database = backend.create_database().await;
    start(data_dir, database, owned(extra), None).await
}

/// [`spawn_app`] on a fresh database of `backend` reached through a proxy the test can cut, to
/// make the database go away and come back without touching its server.
pub async fn spawn_app_behind_proxy(
    backend: Backend,
    extra: &[(&str, &str)],
) -> (TestApp, CuttableProxy) {
    let data_dir = tempfile::tempdir().expect("temporary data directory");
    let database = backend
        .create_database()
        .await
        .expect("a proxy needs a database server, not the embedded store");
    let proxy = CuttableProxy::start(url_address(database.url())).await;
    let proxied = proxy.rewrite_url(database.url());
    let app = start(data_dir, Some(database), owned(extra), Some(proxied)).await;
    (app, proxy)
}

fn owned(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    assert!(
        vars.iter().all(|(name, _)| *name != "DATABASE_URL"),
        "spawn_app sets DATABASE_URL itself: choose a Backend instead"
    );
    vars.iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

async fn start(
    data_dir: tempfile::TempDir,
    database: Option<TestDatabase>,
    vars: Vec<(String, String)>,
    database_url_override: Option<String>,
) -> TestApp {
    let database_url = database_url_override
        .clone()
        .or_else(|| database.as_ref().map(|database| database.url().to_owned()));
    let mut extra: Vec<(&str, &str)> = vars
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    if let Some(url) = &database_url {
        extra.push(("DATABASE_URL", url));
    }
    let settings = test_settings(data_dir.path(), &extra);
    let application = Application::build(settings)
        .await
        .expect("the application builds");
    let address = application.address();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client"),
        data_dir,
        database,
        vars,
        database_url_override,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}
