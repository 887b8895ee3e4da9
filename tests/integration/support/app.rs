//! `spawn_app`: the real application on 127.0.0.1 port 0, with a fresh data directory, shut down
//! when the test ends.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use health_agent::config::Settings;
use health_agent::startup::Application;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
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

    /// Signals shutdown and waits (bounded) for the application to stop.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.server.take() {
            Some(server) => tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("the application did not stop within 10 s")
                .expect("the application task panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Settings for a test: port 0 on loopback, a fresh data directory, no API keys of any provider,
/// plus `extra` variables (e.g. `DATABASE_URL`).
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

/// Builds and starts the application with `extra` variables on top of [`test_settings`].
pub async fn spawn_app(extra: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temporary data directory");
    let settings = test_settings(data_dir.path(), extra);
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
        shutdown: Some(shutdown),
        server: Some(server),
    }
}
