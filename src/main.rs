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
        /// A photo of the meal (JPEG, PNG or WebP), analysed by the VISION_MODELS; the text is
        /// then its caption.
        #[arg(long, value_name = "FILE")]
        photo: Option<std::path::PathBuf>,
        /// The meal, as a person would type it (or the photo's caption).
        #[arg(required_unless_present = "photo", num_args = 0..)]
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
    // The service logs to stdout; a one-shot command's stdout is its output, so it logs to stderr.
    let stream = match cli.command {
        None | Some(Command::Serve) => telemetry::LogStream::Stdout,
        Some(_) => telemetry::LogStream::Stderr,
    };
    let _telemetry = telemetry::init_tracing(&settings.telemetry, stream);
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
            Command::Estimate {
                json,
                photo: Some(photo),
                text,
            } => estimate_photo(&settings, json, &photo, &text.join(" ")).await,
            Command::Estimate {
                json,
                photo: None,
                text,
            } => estimate(&settings, json, &text.join(" ")).await,
            Command::Chat { user } => {
                let core = Core::start(&settings).await?;
                let files_dir = settings.data_dir.join("exports");
                let outcome =
                    chat::run(core.inbox(), core.conversations(), UserId(user), files_dir).await;
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

/// Runs the photo pipeline (every vision agent at once, the consensus) through the same actor
/// tree as the service ([`Core::start`], which opens the configured store too) and prints its
/// result; fails, printing no kcal, when no agent produced an estimate.
async fn estimate_photo(
    settings: &Settings,
    json: bool,
    path: &std::path::Path,
    caption: &str,
) -> anyhow::Result<()> {
    use health_actors::vision::{Photo, PhotoEstimate};
    let bytes = std::fs::read(path)
        .map_err(|error| anyhow::anyhow!("cannot read {}: {error}", path.display()))?;
    anyhow::ensure!(
        bytes.len() <= 10 * 1024 * 1024,
        "{} is larger than 10 MB",
        path.display()
    );
    let photo = Photo::sniff(bytes)
        .ok_or_else(|| anyhow::anyhow!("{} is not a JPEG, PNG or WebP image", path.display()))?;
    anyhow::ensure!(
        !settings.llm.vision_models.is_empty(),
        "photo estimates need a vision model: set VISION_MODELS (and OPENAI_API_KEY or ANTHROPIC_API_KEY)"
    );
    // The same tree as the service: the root starts the vision branch.
    let core = Core::start(settings).await?;
    let estimate = match core.vision.clone() {
        Some(vision) => {
            let caption = Some(caption.trim().to_owned()).filter(|c| !c.is_empty());
            vision
                .estimate(photo, caption)
                .await
                .map_err(anyhow::Error::from)
        }
        None => Err(anyhow::anyhow!("no vision agent started")),
    };
    core.shutdown().await;
    let estimate = estimate?;
    let agents = estimate.agents().to_vec();
    let consensus = match estimate {
        PhotoEstimate::Food { consensus, .. } => Some(consensus),
        PhotoEstimate::NoFood { .. } | PhotoEstimate::Unavailable { .. } => None,
    };
    if json {
        let body = match &consensus {
            Some(consensus) => serde_json::json!({
                "items": consensus.items.iter().map(|item| serde_json::json!({
                    "input": item.name, "name": item.name, "grams": (item.grams * 10.0).round() / 10.0,
                    "kcal": item.nutrients.kcal.round(), "protein_g": (item.nutrients.protein_g * 10.0).round() / 10.0,
                    "carbs_g": (item.nutrients.carbs_g * 10.0).round() / 10.0, "fat_g": (item.nutrients.fat_g * 10.0).round() / 10.0,
                    "source": if item.reference_used { "built_in" } else { "model_estimate" },
                    "confidence": consensus.agreement, "minority": item.minority,
                })).collect::<Vec<_>>(),
                "total": {"kcal": consensus.total.kcal.round(), "protein_g": (consensus.total.protein_g * 10.0).round() / 10.0,
                          "carbs_g": (consensus.total.carbs_g * 10.0).round() / 10.0, "fat_g": (consensus.total.fat_g * 10.0).round() / 10.0},
                "unknown": [],
                "interval_kcal": [consensus.interval_kcal.0.round(), consensus.interval_kcal.1.round()],
                "agreement": consensus.agreement,
                "confidence": consensus.confidence.as_str(),
                "dropped": consensus.dropped.iter().map(|(agent, why)| serde_json::json!({"agent": agent, "reason": why})).collect::<Vec<_>>(),
                "agents": agents,
            }),
            None => serde_json::json!({"items": [], "unknown": [], "agents": agents}),
        };
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        for agent in &agents {
            let total = agent
                .total_kcal
                .map(|kcal| format!(", {kcal:.0} kcal"))
                .unwrap_or_default();
            println!(
                "agent {}: {}{total} ({:.1} s)",
                agent.agent, agent.status, agent.seconds
            );
        }
        if let Some(consensus) = &consensus {
            for item in &consensus.items {
                println!(
                    "{:<32} {:>7.1} g {:>6.0} kcal",
                    item.name, item.grams, item.nutrients.kcal
                );
            }
            println!(
                "total {:.0} kcal, likely {:.0}–{:.0}; agreement {:.2} ({})",
                consensus.total.kcal,
                consensus.interval_kcal.0,
                consensus.interval_kcal.1,
                consensus.agreement,
                consensus.confidence.as_str()
            );
        }
    }
    match consensus {
        Some(_) => Ok(()),
        None => anyhow::bail!(
            "no vision agent produced an estimate for {}",
            path.display()
        ),
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
