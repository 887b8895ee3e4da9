//! The application: builds every component from [`Settings`], binds the HTTP server and runs
//! until a shutdown signal, then stops in a fixed order.
//!
//! `Application::build` does all the fallible work (open and migrate the store, bind the port) so
//! that a misconfiguration fails before anything is served. Tests build it with port 0 and read
//! [`Application::address`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use health_actors::ports::Store;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::http::{self, HttpState};
use crate::store::{self, MigrationReport};
use crate::telemetry;

pub struct Application {
    address: SocketAddr,
    listener: TcpListener,
    store: Arc<dyn Store>,
    migrations: MigrationReport,
    http_state: HttpState,
    settings: Settings,
}

impl Application {
    /// Opens the store (applying migrations) and binds `API_HOST:API_PORT`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let started = Instant::now();
        let (store, migrations) = store::open(&settings.store)
            .await
            .with_context(|| format!("could not open the database ({})", describe_store(&settings)))?;
        let bind_to = SocketAddr::new(settings.http.host, settings.http.port);
        let listener = TcpListener::bind(bind_to).await.with_context(|| {
            format!("could not listen on {bind_to}: is another program using API_PORT {}?", bind_to.port())
        })?;
        let address = listener.local_addr().context("the bound socket has no address")?;

        let metrics = telemetry::metrics_handle();
        metrics::gauge!(
            crate::metrics::BUILD_INFO,
            "version" => env!("CARGO_PKG_VERSION"),
            "backend" => store.backend()
        )
        .set(1.0);
        let http_state = HttpState {
            store: store.clone(),
            metrics,
            metrics_token: settings.http.metrics_token.clone().map(Arc::new),
            started,
        };
        Ok(Self { address, listener, store, migrations, http_state, settings })
    }

    /// The address the HTTP server listens on (the real port when `API_PORT=0`).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Runs until `shutdown` completes, then drains the HTTP server and closes the store.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self { address, listener, store, migrations, http_state, settings } = self;
        tracing::info!(
            %address,
            backend = store.backend(),
            migrations_applied = migrations.applied.len(),
            run_mode = settings.run_mode.as_str(),
            agent_model = %settings.llm.agent_model,
            "health-agent is serving: GET http://{address}/health"
        );
        let server = warp::serve(http::routes(http_state)).incoming(listener).graceful(shutdown);
        server.run().await;
        tracing::info!("HTTP server drained");
        drop(store);
        tracing::info!("stopped");
        Ok(())
    }
}

fn describe_store(settings: &Settings) -> String {
    match &settings.store {
        store::StoreConfig::Embedded { path } => format!("embedded, {}", path.display()),
        store::StoreConfig::Postgres { url, .. } => crate::config::redact_url_password(url),
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (docker stop).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("interrupt received: shutting down"),
        () = terminate => tracing::info!("SIGTERM received: shutting down"),
    }
}
