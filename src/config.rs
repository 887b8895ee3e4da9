//! Settings: every environment variable the program reads, parsed once at start into typed
//! structs.
//!
//! Nothing else in the program reads the environment. Each component receives only its own part
//! (`settings.http`, `settings.store`, ...). Invalid values fail fast with a message that names the
//! variable and says how to fix it. Secrets are wrapped in [`SecretString`] so that `Debug` and
//! `config` output never show them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use health_actors::conversation::ConversationSettings;
use health_actors::persistence::PersistenceSettings;
use health_actors::root::RootSettings;
use health_actors::vision::VisionSettings;

use crate::store::StoreConfig;

/// A configuration problem, worded for the operator: which variable, what is wrong, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

/// Which edges run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// The Telegram bot (and `/health`, `/metrics`).
    Bot,
    /// The HTTP API under `/api/v1` (and `/health`, `/metrics`).
    Api,
    Both,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::Api => "api",
            Self::Both => "both",
        }
    }
    pub fn runs_bot(self) -> bool {
        matches!(self, Self::Bot | Self::Both)
    }
    pub fn runs_api(self) -> bool {
        matches!(self, Self::Api | Self::Both)
    }
}

/// A model provider that can be named in `AGENT_MODEL` or `VISION_MODELS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
    /// The rule-based agent that needs no key (not valid for vision).
    Offline,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Offline => "offline",
        }
    }
}

/// `provider:model`, e.g. `openai:gpt-4o` or `anthropic:claude-sonnet-4-5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    pub provider: Provider,
    pub model: String,
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider.as_str(), self.model)
    }
}

pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const ANTHROPIC_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const TELEGRAM_DEFAULT_API_URL: &str = "https://api.telegram.org";
pub const USDA_DEFAULT_BASE_URL: &str = "https://api.nal.usda.gov/fdc";

#[derive(Debug, Clone)]
pub struct TelegramSettings {
    pub token: SecretString,
    /// Only these Telegram user ids are served. Empty means nobody is (a bot that answers
    /// strangers must be configured on purpose).
    pub allowed_ids: Vec<i64>,
    pub api_url: String,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub openai_api_key: Option<SecretString>,
    pub openai_base_url: String,
    pub anthropic_api_key: Option<SecretString>,
    pub anthropic_base_url: String,
    pub agent_model: ModelSpec,
    /// Used when the agent model is overloaded (`AGENT_FALLBACK_MODEL`).
    pub fallback_model: Option<ModelSpec>,
    pub vision_models: Vec<ModelSpec>,
    pub vision_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct UsdaSettings {
    pub api_key: Option<SecretString>,
    pub base_url: String,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub host: IpAddr,
    pub port: u16,
    /// Admin keys for `/api/v1`.
    pub api_keys: Vec<SecretString>,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<SecretString>,
    pub cors_origins: Vec<String>,
    /// Requests per minute each API key may make (`API_RATE_LIMIT_PER_MINUTE`), as a token
    /// bucket that refills continuously and holds a minute's worth.
    pub api_rate_limit_per_minute: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// A tracing filter directive, e.g. `info` or `health_agent=debug,info`.
    pub level: String,
    pub format: LogFormat,
    /// Where the daily-rotated log file goes; `None` logs to stdout only.
    pub log_dir: Option<PathBuf>,
}

/// Everything the program is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub run_mode: RunMode,
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    pub telegram: Option<TelegramSettings>,
    pub llm: LlmSettings,
    pub usda: UsdaSettings,
    pub http: HttpSettings,
    pub enable_memory: bool,
    pub telemetry: TelemetrySettings,
    /// The actor tree's settings, in the core's own types: what a variable does not set keeps
    /// the default the actor defines (`ConversationSettings::default()`, ...).
    pub actors: RootSettings,
}

/// Where variables come from: the process environment, or a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment (after an optional `.env` was loaded into it).
pub struct Environment;

impl Source for Environment {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Source for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

impl Settings {
    /// Reads `.env` (when present, without overriding the environment), then the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(error) if error.not_found() => {}
            Err(error) => {
                return Err(ConfigError::new(
                    ".env",
                    format!("the .env file could not be read ({error}); fix or remove it"),
                ))
            }
        }
        Self::from_source(&Environment)
    }

    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let vars = Vars(source);
        let data_dir = PathBuf::from(
            vars.string("DATA_DIR")
                .unwrap_or_else(|| "production".into()),
        );

        let store = match vars.string("DATABASE_URL") {
            Some(url) => {
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(ConfigError::new(
                        "DATABASE_URL",
                        "must start with postgresql:// (or leave it unset to use the embedded database)",
                    ));
                }
                StoreConfig::Postgres {
                    url,
                    max_connections: vars.number("DATABASE_MAX_CONNECTIONS", 16, 1, 1_000)?
                        as usize,
                }
            }
            None => StoreConfig::Embedded {
                path: data_dir.join("data").join("health_agent.db"),
            },
        };

        let token = vars.secret("TELEGRAM_BOT_TOKEN");
        if let Some(token) = &token {
            check_bot_token(token.expose_secret())?;
        }
        let run_mode = match vars
            .string("RUN_MODE")
            .map(|mode| mode.to_ascii_lowercase())
        {
            None if token.is_some() => RunMode::Bot,
            None => RunMode::Api,
            Some(mode) => match mode.as_str() {
                "bot" => RunMode::Bot,
                "api" => RunMode::Api,
                "both" => RunMode::Both,
                _ => {
                    return Err(ConfigError::new(
                        "RUN_MODE",
                        format!("'{mode}' is not a run mode: use bot, api or both"),
                    ))
                }
            },
        };
        let allowed_ids = vars.id_list("ALLOWED_TELEGRAM_IDS")?;
        let telegram = match token {
            Some(token) => Some(TelegramSettings {
                token,
                allowed_ids,
                api_url: vars
                    .url("TELEGRAM_API_URL")?
                    .unwrap_or_else(|| TELEGRAM_DEFAULT_API_URL.into()),
                webhook_url: vars.url("TELEGRAM_WEBHOOK_URL")?,
                webhook_secret: vars.secret("TELEGRAM_WEBHOOK_SECRET"),
            }),
            None if run_mode.runs_bot() => {
                return Err(ConfigError::new(
                    "TELEGRAM_BOT_TOKEN",
                    format!(
                    "RUN_MODE={} needs a bot token: get one from @BotFather, or set RUN_MODE=api",
                    run_mode.as_str()
                ),
                ))
            }
            None => None,
        };

        let llm = llm_settings(&vars)?;
        let usda = UsdaSettings {
            api_key: vars.secret("USDA_API_KEY"),
            base_url: vars
                .url("USDA_BASE_URL")?
                .unwrap_or_else(|| USDA_DEFAULT_BASE_URL.into()),
        };

        let host = match vars.string("API_HOST") {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(host) => host.parse().map_err(|_| {
                ConfigError::new(
                    "API_HOST",
                    format!("'{host}' is not an IP address: use e.g. 0.0.0.0 or 127.0.0.1"),
                )
            })?,
        };
        let http = HttpSettings {
            host,
            port: vars.number("API_PORT", 8080, 0, u16::MAX as u64)? as u16,
            api_keys: vars
                .list("API_KEYS")
                .into_iter()
                .map(SecretString::from)
                .collect(),
            metrics_token: vars.secret("METRICS_TOKEN"),
            cors_origins: vars.list("CORS_ORIGINS"),
            api_rate_limit_per_minute: vars.number(
                "API_RATE_LIMIT_PER_MINUTE",
                120,
                1,
                1_000_000,
            )? as u32,
        };

        let telemetry = TelemetrySettings {
            level: log_level(vars.string("LOG_LEVEL"))?,
            format: match vars
                .string("LOG_FORMAT")
                .map(|f| f.to_ascii_lowercase())
                .as_deref()
            {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(ConfigError::new(
                        "LOG_FORMAT",
                        format!("'{other}' is not a log format: use text or json"),
                    ))
                }
            },
            log_dir: Some(data_dir.join("logs")),
        };

        let actors = actor_settings(&vars, &llm)?;

        Ok(Self {
            run_mode,
            data_dir,
            store,
            telegram,
            llm,
            usda,
            http,
            enable_memory: vars.boolean("ENABLE_MEM0", true)?,
            telemetry,
            actors,
        })
    }

    /// The effective configuration as `NAME=value` lines, secrets redacted, for `health-agent
    /// config`.
    pub fn describe(&self) -> Vec<(String, String)> {
        let secret = |value: &Option<SecretString>| match value {
            Some(_) => "(set, hidden)".to_owned(),
            None => "(not set)".to_owned(),
        };
        let mut lines = vec![
            ("RUN_MODE".into(), self.run_mode.as_str().into()),
            ("DATA_DIR".into(), self.data_dir.display().to_string()),
            ("DATABASE_URL".into(), describe_store(&self.store)),
        ];
        match &self.telegram {
            Some(telegram) => {
                lines.push((
                    "TELEGRAM_BOT_TOKEN".into(),
                    redact_token(telegram.token.expose_secret()),
                ));
                lines.push((
                    "ALLOWED_TELEGRAM_IDS".into(),
                    if telegram.allowed_ids.is_empty() {
                        "(none: nobody is served)".into()
                    } else {
                        join(&telegram.allowed_ids)
                    },
                ));
                lines.push(("TELEGRAM_API_URL".into(), telegram.api_url.clone()));
                lines.push((
                    "TELEGRAM_WEBHOOK_URL".into(),
                    telegram
                        .webhook_url
                        .clone()
                        .unwrap_or_else(|| "(not set: long polling)".into()),
                ));
            }
            None => lines.push(("TELEGRAM_BOT_TOKEN".into(), "(not set)".into())),
        }
        lines.extend([
            ("OPENAI_API_KEY".into(), secret(&self.llm.openai_api_key)),
            ("OPENAI_BASE_URL".into(), self.llm.openai_base_url.clone()),
            (
                "ANTHROPIC_API_KEY".into(),
                secret(&self.llm.anthropic_api_key),
            ),
            (
                "ANTHROPIC_BASE_URL".into(),
                self.llm.anthropic_base_url.clone(),
            ),
            ("AGENT_MODEL".into(), self.llm.agent_model.to_string()),
            (
                "AGENT_FALLBACK_MODEL".into(),
                self.llm
                    .fallback_model
                    .as_ref()
                    .map_or_else(|| "(not set)".into(), ToString::to_string),
            ),
            (
                "VISION_MODELS".into(),
                if self.llm.vision_models.is_empty() {
                    "(none: photos need a vision model)".into()
                } else {
                    join(&self.llm.vision_models)
                },
            ),
            (
                "VISION_TIMEOUT_SECS".into(),
                self.llm.vision_timeout.as_secs().to_string(),
            ),
            ("USDA_API_KEY".into(), secret(&self.usda.api_key)),
            ("API_HOST".into(), self.http.host.to_string()),
            ("API_PORT".into(), self.http.port.to_string()),
            (
                "API_KEYS".into(),
                match self.http.api_keys.len() {
                    0 => "(none: the API refuses every call)".into(),
                    n => format!("({n} set, hidden)"),
                },
            ),
            ("METRICS_TOKEN".into(), secret(&self.http.metrics_token)),
            ("ENABLE_MEM0".into(), self.enable_memory.to_string()),
            ("LOG_LEVEL".into(), self.telemetry.level.clone()),
            (
                "LOG_FORMAT".into(),
                match self.telemetry.format {
                    LogFormat::Text => "text".into(),
                    LogFormat::Json => "json".into(),
                },
            ),
            (
                "CONVERSATION_IDLE_SECS".into(),
                self.actors.conversation.idle.as_secs().to_string(),
            ),
            (
                "PERSIST_BATCH_MAX".into(),
                self.actors.persistence.batch_max.to_string(),
            ),
            (
                "PERSIST_FLUSH_MS".into(),
                self.actors.persistence.flush.as_millis().to_string(),
            ),
            (
                "PERSIST_QUEUE_MAX".into(),
                self.actors.persistence.queue_max.to_string(),
            ),
        ]);
        lines
    }
}

/// How the store is named in logs and `config` output (passwords hidden).
pub fn describe_store(store: &StoreConfig) -> String {
    match store {
        StoreConfig::Embedded { path } => {
            format!("(not set: embedded database at {})", path.display())
        }
        StoreConfig::Postgres { url, .. } => crate::store::redact_url(url),
    }
}

fn join<T: fmt::Display>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Shows the bot id part of a token (public) and hides the secret part.
fn redact_token(token: &str) -> String {
    match token.split_once(':') {
        Some((bot_id, _)) => format!("{bot_id}:(hidden)"),
        None => "(hidden)".into(),
    }
}

/// Telegram bot tokens look like `123456789:AAH...` (a numeric bot id, a colon, 30+ characters
/// of `[A-Za-z0-9_-]`).
fn check_bot_token(token: &str) -> Result<(), ConfigError> {
    let valid = match token.split_once(':') {
        Some((bot_id, secret)) => {
            !bot_id.is_empty()
                && bot_id.bytes().all(|b| b.is_ascii_digit())
                && secret.len() >= 30
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ConfigError::new(
            "TELEGRAM_BOT_TOKEN",
            "does not look like a bot token (expected digits, a colon, then at least 30 letters, \
             digits, '_' or '-'): copy it again from @BotFather",
        ))
    }
}

fn log_level(value: Option<String>) -> Result<String, ConfigError> {
    let Some(value) = value else {
        return Ok("info".into());
    };
    let lower = value.trim().to_ascii_lowercase();
    let level = match lower.as_str() {
        "trace" | "debug" | "info" | "error" | "off" => lower,
        "warn" | "warning" => "warn".into(),
        "critical" | "fatal" => "error".into(),
        // A full filter directive such as `health_agent=debug,info`.
        directive if directive.contains('=') => directive.to_owned(),
        _ => {
            return Err(ConfigError::new(
                "LOG_LEVEL",
                format!("'{value}' is not a log level: use DEBUG, INFO, WARN or ERROR"),
            ))
        }
    };
    Ok(level)
}

/// The actors' settings: each variable overrides one field, every other field (and the default
/// of each variable) comes from the actor's own `Default`. The vision coordinator's agents wait
/// `VISION_TIMEOUT_SECS` (read with the model settings, which use it too).
fn actor_settings(vars: &Vars<'_>, llm: &LlmSettings) -> Result<RootSettings, ConfigError> {
    let conversation = ConversationSettings::default();
    let persistence = PersistenceSettings::default();
    Ok(RootSettings {
        conversation: ConversationSettings {
            idle: vars.seconds(
                "CONVERSATION_IDLE_SECS",
                conversation.idle,
                1,
                7 * 24 * 3600,
            )?,
            max_restarts: vars.number(
                "CONVERSATION_MAX_RESTARTS",
                conversation.max_restarts.into(),
                1,
                1_000,
            )? as u32,
            restart_window: vars.seconds(
                "CONVERSATION_RESTART_WINDOW_SECS",
                conversation.restart_window,
                1,
                3600,
            )?,
            ..conversation
        },
        persistence: PersistenceSettings {
            batch_max: vars.number("PERSIST_BATCH_MAX", persistence.batch_max as u64, 1, 65_536)?
                as usize,
            flush: vars.milliseconds("PERSIST_FLUSH_MS", persistence.flush, 1, 60_000)?,
            queue_max: vars.number(
                "PERSIST_QUEUE_MAX",
                persistence.queue_max as u64,
                1,
                10_000_000,
            )? as usize,
            ..persistence
        },
        vision: VisionSettings {
            agent_timeout: llm.vision_timeout,
            ..VisionSettings::default()
        },
    })
}

fn llm_settings(vars: &Vars<'_>) -> Result<LlmSettings, ConfigError> {
    let openai_api_key = vars.secret("OPENAI_API_KEY");
    let openai_custom_url = vars.url("OPENAI_BASE_URL")?;
    let anthropic_api_key = vars.secret("ANTHROPIC_API_KEY");
    let anthropic_base_url = vars
        .url("ANTHROPIC_BASE_URL")?
        .unwrap_or_else(|| ANTHROPIC_DEFAULT_BASE_URL.into());
    // An OpenAI-compatible local server (Ollama, vLLM, LM Studio) usually needs no key.
    let openai_usable = openai_api_key.is_some() || openai_custom_url.is_some();
    let anthropic_usable = anthropic_api_key.is_some();

    let check = |variable: &'static str, spec: ModelSpec| -> Result<ModelSpec, ConfigError> {
        match spec.provider {
            Provider::OpenAi if !openai_usable => Err(ConfigError::new(
                variable,
                format!("'{spec}' needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)"),
            )),
            Provider::Anthropic if !anthropic_usable => Err(ConfigError::new(
                variable,
                format!("'{spec}' needs ANTHROPIC_API_KEY"),
            )),
            _ => Ok(spec),
        }
    };

    let agent_model = match vars.string("AGENT_MODEL") {
        Some(text) => check("AGENT_MODEL", parse_model_spec("AGENT_MODEL", &text)?)?,
        None if openai_usable => ModelSpec {
            provider: Provider::OpenAi,
            model: "gpt-4o-mini".into(),
        },
        None if anthropic_usable => ModelSpec {
            provider: Provider::Anthropic,
            model: "claude-sonnet-4-5".into(),
        },
        None => ModelSpec {
            provider: Provider::Offline,
            model: "rules".into(),
        },
    };

    let fallback_model = match vars.string("AGENT_FALLBACK_MODEL") {
        Some(text) => Some(check(
            "AGENT_FALLBACK_MODEL",
            parse_model_spec("AGENT_FALLBACK_MODEL", &text)?,
        )?),
        None => None,
    };

    let vision_models = match vars.string("VISION_MODELS") {
        Some(text) => {
            let mut specs = Vec::new();
            for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let spec = check("VISION_MODELS", parse_model_spec("VISION_MODELS", entry)?)?;
                if spec.provider == Provider::Offline {
                    return Err(ConfigError::new(
                        "VISION_MODELS",
                        "the offline agent cannot look at photos: list openai:... or anthropic:... models",
                    ));
                }
                specs.push(spec);
            }
            specs
        }
        None => {
            let mut specs = Vec::new();
            if openai_api_key.is_some() {
                specs.push(ModelSpec {
                    provider: Provider::OpenAi,
                    model: "gpt-4o".into(),
                });
            }
            if anthropic_usable {
                specs.push(ModelSpec {
                    provider: Provider::Anthropic,
                    model: "claude-sonnet-4-5".into(),
                });
            }
            specs
        }
    };

    Ok(LlmSettings {
        openai_api_key,
        openai_base_url: openai_custom_url.unwrap_or_else(|| OPENAI_DEFAULT_BASE_URL.into()),
        anthropic_api_key,
        anthropic_base_url,
        agent_model,
        fallback_model,
        vision_models,
        vision_timeout: vars.seconds(
            "VISION_TIMEOUT_SECS",
            VisionSettings::default().agent_timeout,
            1,
            600,
        )?,
    })
}

fn parse_model_spec(variable: &'static str, text: &str) -> Result<ModelSpec, ConfigError> {
    let Some((provider, model)) = text.trim().split_once(':') else {
        return Err(ConfigError::new(
            variable,
            format!("'{text}' must be provider:model, e.g. openai:gpt-4o or anthropic:claude-sonnet-4-5"),
        ));
    };
    let provider = match provider.trim().to_ascii_lowercase().as_str() {
        "openai" => Provider::OpenAi,
        "anthropic" => Provider::Anthropic,
        "offline" => Provider::Offline,
        other => {
            return Err(ConfigError::new(
                variable,
                format!("unknown provider '{other}' in '{text}': use openai, anthropic or offline"),
            ))
        }
    };
    let model = model.trim();
    if model.is_empty() {
        return Err(ConfigError::new(
            variable,
            format!("'{text}' names no model after the colon"),
        ));
    }
    Ok(ModelSpec {
        provider,
        model: model.to_owned(),
    })
}

/// Typed access to the variables of a [`Source`]; empty values count as unset.
struct Vars<'a>(&'a dyn Source);

impl Vars<'_> {
    fn string(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn secret(&self, name: &str) -> Option<SecretString> {
        self.string(name).map(SecretString::from)
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.string(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn number(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(text) = self.string(name) else {
            return Ok(default);
        };
        match text.parse::<u64>() {
            Ok(value) if (min..=max).contains(&value) => Ok(value),
            _ => Err(ConfigError::new(
                name,
                format!("'{text}' is not valid: use a whole number from {min} to {max} (default {default})"),
            )),
        }
    }

    /// A whole number of seconds from `min` to `max`.
    fn seconds(
        &self,
        name: &'static str,
        default: Duration,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default.as_secs(), min, max)
            .map(Duration::from_secs)
    }

    /// A whole number of milliseconds from `min` to `max`.
    fn milliseconds(
        &self,
        name: &'static str,
        default: Duration,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        let default = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
        self.number(name, default, min, max)
            .map(Duration::from_millis)
    }

    fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(text) = self.string(name) else {
            return Ok(default);
        };
        match text.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::new(
                name,
                format!("'{text}' is not true or false"),
            )),
        }
    }

    fn id_list(&self, name: &'static str) -> Result<Vec<i64>, ConfigError> {
        self.list(name)
            .into_iter()
            .map(|id| {
                id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                    ConfigError::new(
                        name,
                        format!(
                            "'{id}' is not a Telegram user id: use numbers separated by commas"
                        ),
                    )
                })
            })
            .collect()
    }

    fn url(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(text) = self.string(name) else {
            return Ok(None);
        };
        if text.starts_with("http://") || text.starts_with("https://") {
            Ok(Some(text.trim_end_matches('/').to_owned()))
        } else {
            Err(ConfigError::new(
                name,
                format!("'{text}' must be an http:// or https:// URL"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456:test_token_for_unit_tests_only_0000000";

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_source(&map)
    }

    fn error(pairs: &[(&str, &str)]) -> ConfigError {
        settings(pairs).expect_err("configuration should be refused")
    }

    #[test]
    fn an_empty_environment_runs_the_api_offline_on_the_embedded_database() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.run_mode, RunMode::Api);
        assert!(
            matches!(s.store, StoreConfig::Embedded { ref path } if path.ends_with("data/health_agent.db"))
        );
        assert_eq!(s.http.port, 8080);
        assert_eq!(s.llm.agent_model.provider, Provider::Offline);
        assert!(s.llm.vision_models.is_empty());
        assert!(s.enable_memory);
        assert_eq!(s.telemetry.level, "info");
    }

    #[test]
    fn actor_defaults_are_the_documented_ones_and_variables_override_them() {
        // The defaults the README and .env.example document.
        let s = settings(&[]).unwrap();
        assert_eq!(s.actors.conversation.idle, Duration::from_secs(900));
        assert_eq!(s.actors.conversation.max_restarts, 3);
        assert_eq!(
            s.actors.conversation.restart_window,
            Duration::from_secs(10)
        );
        assert_eq!(s.actors.persistence.batch_max, 512);
        assert_eq!(s.actors.persistence.flush, Duration::from_millis(20));
        assert_eq!(s.actors.persistence.queue_max, 65_536);
        assert_eq!(s.llm.vision_timeout, Duration::from_secs(25));
        assert_eq!(s.actors, RootSettings::default());

        let s = settings(&[
            ("CONVERSATION_IDLE_SECS", "60"),
            ("CONVERSATION_MAX_RESTARTS", "5"),
            ("CONVERSATION_RESTART_WINDOW_SECS", "30"),
            ("PERSIST_BATCH_MAX", "64"),
            ("PERSIST_FLUSH_MS", "5"),
            ("PERSIST_QUEUE_MAX", "1000"),
            ("VISION_TIMEOUT_SECS", "40"),
        ])
        .unwrap();
        assert_eq!(s.actors.conversation.idle, Duration::from_secs(60));
        assert_eq!(s.actors.conversation.max_restarts, 5);
        assert_eq!(
            s.actors.conversation.restart_window,
            Duration::from_secs(30)
        );
        assert_eq!(
            s.actors.conversation.mailbox_max,
            ConversationSettings::default().mailbox_max
        );
        assert_eq!(s.actors.persistence.batch_max, 64);
        assert_eq!(s.actors.persistence.flush, Duration::from_millis(5));
        assert_eq!(s.actors.persistence.queue_max, 1000);
        assert_eq!(
            s.actors.persistence.retry_max,
            PersistenceSettings::default().retry_max
        );
        assert_eq!(s.actors.vision.agent_timeout, Duration::from_secs(40));
        assert_eq!(
            error(&[("PERSIST_FLUSH_MS", "0")]).variable,
            "PERSIST_FLUSH_MS"
        );
    }

    #[test]
    fn a_token_selects_bot_mode_and_ids_are_parsed() {
        let s = settings(&[
            ("TELEGRAM_BOT_TOKEN", TOKEN),
            ("ALLOWED_TELEGRAM_IDS", "1, 42"),
        ])
        .unwrap();
        assert_eq!(s.run_mode, RunMode::Bot);
        assert_eq!(s.telegram.unwrap().allowed_ids, vec![1, 42]);
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(error(&[("API_PORT", "99999")]).variable, "API_PORT");
        assert_eq!(error(&[("API_PORT", "eighty")]).variable, "API_PORT");
        assert_eq!(error(&[("RUN_MODE", "server")]).variable, "RUN_MODE");
        assert_eq!(
            error(&[("TELEGRAM_BOT_TOKEN", "not-a-token")]).variable,
            "TELEGRAM_BOT_TOKEN"
        );
        assert_eq!(error(&[("RUN_MODE", "bot")]).variable, "TELEGRAM_BOT_TOKEN");
        assert_eq!(
            error(&[
                ("TELEGRAM_BOT_TOKEN", TOKEN),
                ("ALLOWED_TELEGRAM_IDS", "12,abc")
            ])
            .variable,
            "ALLOWED_TELEGRAM_IDS"
        );
        assert_eq!(
            error(&[("AGENT_MODEL", "mistral:large")]).variable,
            "AGENT_MODEL"
        );
        assert_eq!(
            error(&[("AGENT_MODEL", "openai:gpt-4o")]).variable,
            "AGENT_MODEL"
        );
        assert_eq!(
            error(&[("VISION_MODELS", "anthropic:claude-sonnet-4-5")]).variable,
            "VISION_MODELS"
        );
        assert_eq!(
            error(&[("DATABASE_URL", "mysql://x")]).variable,
            "DATABASE_URL"
        );
        assert_eq!(error(&[("LOG_FORMAT", "xml")]).variable, "LOG_FORMAT");
        assert_eq!(error(&[("ENABLE_MEM0", "maybe")]).variable, "ENABLE_MEM0");
        assert_eq!(error(&[("API_HOST", "localhost:80")]).variable, "API_HOST");
    }

    #[test]
    fn models_are_checked_against_configured_providers() {
        let s = settings(&[
            ("OPENAI_API_KEY", "sk-test"),
            ("ANTHROPIC_API_KEY", "ak-test"),
            (
                "VISION_MODELS",
                "openai:gpt-4o, anthropic:claude-sonnet-4-5",
            ),
        ])
        .unwrap();
        assert_eq!(s.llm.agent_model.to_string(), "openai:gpt-4o-mini");
        assert_eq!(s.llm.vision_models.len(), 2);
        // A local OpenAI-compatible server needs no key.
        let s = settings(&[
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1/"),
            ("AGENT_MODEL", "openai:llama3"),
        ])
        .unwrap();
        assert_eq!(s.llm.openai_base_url, "http://127.0.0.1:11434/v1");
    }

    #[test]
    fn secrets_never_show_in_debug_or_config_output() {
        let s = settings(&[
            ("TELEGRAM_BOT_TOKEN", TOKEN),
            ("OPENAI_API_KEY", "sk-very-secret-value"),
            ("API_KEYS", "admin-key-1,admin-key-2"),
            ("DATABASE_URL", "postgresql://app:hunter2@db:5432/health"),
        ])
        .unwrap();
        let debug = format!("{s:?}");
        let described = format!("{:?}", s.describe());
        for text in [debug, described] {
            assert!(
                !text.contains("test_token_for_unit_tests_only_0000000"),
                "{text}"
            );
            assert!(!text.contains("sk-very-secret-value"));
            assert!(!text.contains("admin-key-1"));
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            crate::store::redact_url("postgresql://app:hunter2@db:5432/health"),
            "postgresql://app:***@db:5432/health"
        );
        assert_eq!(
            crate::store::redact_url("postgres://db/health"),
            "postgres://db/health"
        );
    }

    #[test]
    fn log_levels_accept_the_usual_spellings() {
        assert_eq!(
            settings(&[("LOG_LEVEL", "DEBUG")]).unwrap().telemetry.level,
            "debug"
        );
        assert_eq!(
            settings(&[("LOG_LEVEL", "WARNING")])
                .unwrap()
                .telemetry
                .level,
            "warn"
        );
        assert_eq!(error(&[("LOG_LEVEL", "loud")]).variable, "LOG_LEVEL");
    }
}
