//! The `health-agent` binary: parse the command line, load settings, run.
//!
//! Kept thin on purpose: everything that can be tested lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use health_actors::domain::UserId;
use health_agent::chat;
use health_agent::config::Settings;
use health_agent::nutrition::report;
use health_agent::startup::{shutdown_signal, Application, Core};
use health_agent::{store, telemetry};

/// A self-hosted AI health coach on Telegram. Configuration comes from environment variables
/// (and a .env file); see the README for the list.
#[derive(Debug, Parser)]
#[command(name = "health-agent", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default): Telegram bot and/or HTTP API, /health and /metrics.
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Print the effective configuration, secrets hidden, then exit.
    Config,
    /// Estimate calories and macros of a meal description, e.g. `estimate "2 eggs and toast"`.
    Estimate {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The meal, as a person would type it.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Talk to the assistant from the terminal (or pipe lines in), stored in the configured
    /// database: `echo "2 eggs" | health-agent chat`.
    Chat {
        /// The user id to talk as.
        #[arg(long, default_value_t = 1)]
        user: i64,
    },
    /// Ask the running service's /health (on API_PORT); exit 0 when healthy. For Docker.
    Healthcheck,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Config) = cli.command {
        for (name, value) in settings.describe() {
            println!("{name}={value}");
        }
        return ExitCode::SUCCESS;
    }

    if let Some(Command::Healthcheck) = cli.command {
        return healthcheck(&settings);
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _telemetry = telemetry::init_tracing(&settings.telemetry);
    let outcome = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                let application = Application::build(settings).await?;
                application.run_until_stopped(shutdown_signal()).await
            }
            Command::Migrate => {
                let report = store::migrate(&settings.store).await?;
                if report.applied.is_empty() {
                    println!(
                        "{}: the schema is up to date; nothing applied",
                        report.backend
                    );
                } else {
                    println!("{}: applied {}", report.backend, report.applied.join(", "));
                }
                Ok(())
            }
            Command::Estimate { json, text } => estimate(&settings, json, &text.join(" ")).await,
            Command::Chat { user } => {
                let core = Core::start(&settings).await?;
                let files_dir = settings.data_dir.join("exports");
                let outcome = chat::run(core.conversations(), UserId(user), files_dir).await;
                core.shutdown().await;
                Ok(outcome?)
            }
            Command::Config | Command::Healthcheck => Ok(()),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the estimate; fails (exit 1) when nothing in the text could be estimated.
async fn estimate(settings: &Settings, json: bool, text: &str) -> anyhow::Result<()> {
    // The store is opened only to cache FoodData Central answers; the built-in table needs none.
    let store = match settings.usda.api_key {
        Some(_) => Some(store::open(&settings.store).await?.0),
        None => None,
    };
    let engine = health_agent::nutrition::engine_from_settings(&settings.usda, store)?;
    let estimate = engine.estimate(text).await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::to_json(&estimate))?
        );
    } else {
        print!("{}", report::to_text(&estimate));
    }
    if estimate.has_items() {
        Ok(())
    } else {
        anyhow::bail!("nothing in '{text}' could be estimated")
    }
}

/// `GET /health` on this machine's API port; prints the body and exits 0 only when healthy.
fn healthcheck(settings: &Settings) -> ExitCode {
    let host = if settings.http.host.is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        settings.http.host
    };
    let url = format!(
        "http://{}/health",
        std::net::SocketAddr::new(host, settings.http.port)
    );
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|runtime| {
            runtime.block_on(async {
                let client = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(3))
                    .build()?;
                let response = client.get(&url).send().await?;
                let status = response.status();
                Ok::<_, reqwest::Error>((status, response.text().await.unwrap_or_default()))
            })
        });
    match outcome {
        Ok(Ok((status, body))) => {
            println!("{body}");
            if status.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Ok(Err(error)) => {
            eprintln!("unhealthy: {url}: {error}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}
