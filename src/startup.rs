//! The application: builds every component from [`Settings`], binds the HTTP server and runs
//! until a shutdown signal, then stops in a fixed order.
//!
//! `Application::build` does all the fallible work (open and migrate the store, start the actor
//! tree, bind the port) so that a misconfiguration fails before anything is served. Tests build
//! it with port 0 and read [`Application::address`]. [`Core`] is the part without HTTP, used by
//! the `chat` command.
//!
//! Shutdown order: the Telegram bot stops taking updates, the HTTP server stops taking requests
//! and drains, then the actor tree stops
//! intake, lets conversations finish their current message and flushes persistence, then the
//! store closes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use std::time::Duration;

use anyhow::Context;
use health_actors::conversation::{Agent, ConversationsHandle};
use health_actors::inbox::Inbox;
use health_actors::persistence::PersistenceHandle;
use health_actors::ports::{Store, SystemClock};
use health_actors::root::{Root, RootArgs, RootHandle};
use health_actors::vision::{VisionArgs, VisionHandle};
use tokio::net::TcpListener;
use warp::Filter;

use crate::config::Settings;
use crate::http::{self, HttpState};
use crate::nutrition::engine::NutritionEngine;
use crate::store::{self, MigrationReport};
use crate::telegram::TelegramBot;
use crate::telemetry;

/// Time given to conversations and persistence to finish on shutdown.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);
/// How often the inbox gauges are refreshed and handled entries pruned.
const INBOX_MAINTENANCE_PERIOD: Duration = Duration::from_secs(15);
/// How long handled inbox entries are kept: long enough to recognise any redelivery (Telegram
/// keeps undelivered updates for 24 hours), short of the week after which update ids restart.
const INBOX_RETENTION: Duration = Duration::from_secs(3 * 24 * 60 * 60);

/// The store and the actor tree: everything but the edges.
pub struct Core {
    pub store: Arc<dyn Store>,
    pub migrations: MigrationReport,
    /// The nutrition engine the agent uses, shared with the HTTP API.
    pub engine: Arc<NutritionEngine>,
    /// The way to the vision branch (under the root), when `VISION_MODELS` lists any model.
    pub vision: Option<VisionHandle>,
    root: RootHandle,
    /// Where the edges keep what they accept (one per process: it knows what it handed over).
    inbox: Inbox,
    /// Refreshes the inbox gauges and prunes handled entries.
    inbox_maintenance: tokio::task::JoinHandle<()>,
}

impl Core {
    /// Opens (and migrates) the store, builds the agent and starts the actor tree.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        let (store, migrations) = store::open(&settings.store).await.with_context(|| {
            format!(
                "could not open the database ({})",
                crate::config::describe_store(&settings.store)
            )
        })?;
        let engine = crate::nutrition::engine_from_settings(&settings.usda, Some(store.clone()))
            .context("could not set up the USDA FoodData Central client")?;
        let engine = Arc::new(engine);
        let mut agent: Arc<dyn Agent> =
            crate::assistant::agent(&settings.llm, settings.enable_memory, engine.clone())
                .context("could not set up the language model")?;
        let vision_models = crate::llm::vision_models(&settings.llm)
            .context("could not set up the vision models")?;
        // The root starts the vision branch; the agent gets its handle now (it answers photos
        // once the tree runs).
        let vision = VisionArgs::new(vision_models);
        if vision.handle().agents() > 0 {
            agent = Arc::new(crate::assistant::WithPhotos::new(agent, vision.handle()));
        }
        let root = Root::start(RootArgs {
            store: store.clone(),
            agent,
            clock: Arc::new(SystemClock),
            settings: settings.actors.clone(),
            vision,
        })
        .await?;
        let vision = Some(root.vision()).filter(|vision| vision.agents() > 0);
        let inbox = Inbox::new(store.clone(), root.conversations());
        let inbox_maintenance = inbox.spawn_maintenance(INBOX_MAINTENANCE_PERIOD, INBOX_RETENTION);
        Ok(Self {
            store,
            migrations,
            engine,
            vision,
            root,
            inbox,
            inbox_maintenance,
        })
    }

    /// Where the edges keep the messages they accept before acknowledging them.
    pub fn inbox(&self) -> Inbox {
        self.inbox.clone()
    }

    /// Where the edges write (after commit) what they change outside a conversation.
    pub fn persistence(&self) -> PersistenceHandle {
        self.root.persistence()
    }

    /// Where the edges submit messages.
    pub fn conversations(&self) -> ConversationsHandle {
        self.root.conversations()
    }

    /// Resolves if the actor tree stops by itself (an escalated failure), with the reason.
    pub async fn stopped(&self) -> String {
        self.root.stopped().await
    }

    /// Stops intake, lets conversations finish, flushes persistence.
    pub async fn shutdown(self) {
        self.inbox_maintenance.abort();
        let report = self.root.shutdown(SHUTDOWN_DEADLINE).await;
        if report.abandoned_rows > 0 || report.persistence_unresponsive {
            tracing::error!(
                ?report,
                "shutdown could not write everything that was accepted"
            );
        } else {
            tracing::info!(?report, "actors stopped; every accepted write is committed");
        }
    }
}

pub struct Application {
    address: SocketAddr,
    listener: TcpListener,
    core: Core,
    http_state: HttpState,
    settings: Settings,
    /// The Telegram bot when the run mode serves it; it starts polling in `run_until_stopped`.
    telegram: Option<TelegramBot>,
}

impl Application {
    /// Opens the store (applying migrations), starts the actors and binds `API_HOST:API_PORT`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let started = Instant::now();
        http::api::check_cors_origins(&settings.http.cors_origins).map_err(anyhow::Error::msg)?;
        let core = Core::start(&settings).await?;
        let store = core.store.clone();
        let bind_to = SocketAddr::new(settings.http.host, settings.http.port);
        let listener = TcpListener::bind(bind_to).await.with_context(|| {
            format!(
                "could not listen on {bind_to}: is another program using API_PORT {}?",
                bind_to.port()
            )
        })?;
        let address = listener
            .local_addr()
            .context("the bound socket has no address")?;

        let metrics = telemetry::metrics_handle();
        metrics::gauge!(
            crate::metrics::BUILD_INFO,
            "version" => env!("CARGO_PKG_VERSION"),
            "backend" => store.backend()
        )
        .set(1.0);
        let api = settings.run_mode.runs_api().then(|| {
            http::api::ApiState::new(
                http::api::ApiParts {
                    store: store.clone(),
                    persistence: core.persistence(),
                    conversations: core.conversations(),
                    engine: core.engine.clone(),
                    vision: core.vision.clone(),
                    vision_timeout: settings.llm.vision_timeout,
                    data_dir: settings.data_dir.clone(),
                },
                &settings.http,
            )
            .with_inbox(core.inbox())
        });
        let http_state = HttpState {
            store: store.clone(),
            metrics,
            metrics_token: settings.http.metrics_token.clone().map(Arc::new),
            started,
            api,
            cors_origins: settings.http.cors_origins.clone(),
        };
        let telegram = match (&settings.telegram, settings.run_mode.runs_bot()) {
            (Some(telegram), true) => Some(
                TelegramBot::build(
                    telegram,
                    &settings.data_dir,
                    core.conversations(),
                    core.inbox(),
                )
                .context("could not set up the Telegram bot")?,
            ),
            _ => None,
        };
        Ok(Self {
            address,
            listener,
            core,
            http_state,
            settings,
            telegram,
        })
    }

    /// The address the HTTP server listens on (the real port when `API_PORT=0`).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.core.store.clone()
    }

    pub fn conversations(&self) -> ConversationsHandle {
        self.core.conversations()
    }

    /// Runs until `shutdown` completes (or the actor tree fails for good), then drains the HTTP
    /// server, stops the actors in order and closes the store.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            address,
            listener,
            core,
            http_state,
            settings,
            telegram,
        } = self;
        tracing::info!(
            %address,
            backend = core.store.backend(),
            migrations_applied = core.migrations.applied.len(),
            run_mode = settings.run_mode.as_str(),
            agent_model = %settings.llm.agent_model,
            "health-agent is serving: GET http://{address}/health"
        );
        let (stop_http, http_stopping) = tokio::sync::oneshot::channel::<()>();
        // In webhook mode Telegram posts updates to this same server.
        let webhook = telegram.as_ref().and_then(TelegramBot::webhook_intake);
        let routes = crate::telegram::webhook::filter(webhook).or(http::routes(http_state));
        let server = warp::serve(routes)
            .incoming(listener)
            .graceful(async move {
                let _ = http_stopping.await;
            })
            .run();
        let server = tokio::spawn(server);
        if settings.run_mode.runs_api() {
            // Chat messages a killed process kept and did not finish: handled now; their answer
            // is stored for the client's retry with the same Idempotency-Key.
            match http::api::replay_kept_messages(&core.inbox()).await {
                Ok(0) => {}
                Ok(count) => {
                    tracing::info!(count, "handled API chat messages kept before the restart")
                }
                Err(error) => {
                    tracing::error!(%error, "could not hand over the API chat messages kept before the restart")
                }
            }
        }
        let bot = match telegram {
            Some(bot) => match bot.start().await {
                Ok(running) => Some(running),
                Err(error) => {
                    let _ = stop_http.send(());
                    let _ = server.await;
                    core.shutdown().await;
                    return Err(error);
                }
            },
            None => None,
        };
        let failure = tokio::select! {
            () = shutdown => None,
            reason = core.stopped() => Some(reason),
        };
        // Updates first: whatever the bot took is with the conversations before they drain.
        if let Some(bot) = bot {
            bot.stop().await;
        }
        let _ = stop_http.send(());
        if server.await.is_err() {
            tracing::error!("the HTTP server task failed while draining");
        }
        tracing::info!("HTTP server drained");
        core.shutdown().await;
        tracing::info!("stopped");
        match failure {
            None => Ok(()),
            Some(reason) => anyhow::bail!("the actor tree stopped by itself: {reason}"),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (docker stop).
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// signal that arrives while the service is still starting (the HTTP server announced, the
/// inbox being replayed) then stops it gracefully instead of killing it.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (interrupt, terminate) = streams;
            let wait = |stream: std::io::Result<tokio::signal::unix::Signal>,
                        name: &'static str| async move {
                match stream {
                    Ok(mut stream) => {
                        stream.recv().await;
                    }
                    Err(error) => {
                        tracing::warn!(%error, signal = name, "cannot listen for the signal");
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                () = wait(interrupt, "SIGINT") => tracing::info!("interrupt received: shutting down"),
                () = wait(terminate, "SIGTERM") => tracing::info!("SIGTERM received: shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::warn!(%error, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
            tracing::info!("interrupt received: shutting down");
        }
    }
}
