//! Telemetry: structured logs (tracing) and the one Prometheus metrics registry.
//!
//! Logs go to a console stream and to a daily-rotated file under `<DATA_DIR>/logs/`, as text or
//! JSON. The service logs to stdout (where container runtimes collect it); the one-shot commands
//! (`chat`, `estimate`, `migrate`) log to stderr, so that their stdout holds only their output
//! (`estimate --json` prints a JSON document a script can parse, even when it fails).
//! Metrics are recorded through the `metrics` facade everywhere (the core crate included) and
//! rendered by the Prometheus recorder installed here, once per process.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::{LogFormat, TelemetrySettings};

/// Keeps the log file writer alive; logs still buffered are written when it is dropped.
pub struct TelemetryGuard {
    _file: Option<WorkerGuard>,
}

/// Where console logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// The service (`serve`).
    Stdout,
    /// A command whose stdout is its output (`chat`, `estimate`, `migrate`).
    Stderr,
}

/// Installs the global tracing subscriber. Call once, from `main`.
pub fn init_tracing(settings: &TelemetrySettings, stream: LogStream) -> TelemetryGuard {
    // Dependencies are noisy at debug level; keep them at info unless asked by name. reqwest
    // logs request URLs at debug, and a Bot API URL holds the bot token.
    let directive = if settings.level.contains('=') {
        settings.level.clone()
    } else {
        format!(
            "{level},hyper=info,h2=info,rustls=info,tokio_postgres=info,reqwest=info",
            level = settings.level
        )
    };
    let filter = || EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"));

    let (file_writer, guard) = match &settings.log_dir {
        Some(dir) => match std::fs::create_dir_all(dir) {
            Ok(()) => {
                let appender = tracing_appender::rolling::daily(dir, "health-agent.log");
                let (writer, guard) = tracing_appender::non_blocking(appender);
                (Some(writer), Some(guard))
            }
            Err(error) => {
                eprintln!(
                    "warning: logs go to the console only: cannot create {}: {error}",
                    dir.display()
                );
                (None, None)
            }
        },
        None => (None, None),
    };

    let json = settings.format == LogFormat::Json;
    // Colours only for a person at a terminal, not in a file or a container's log collector.
    let console_layer = match stream {
        LogStream::Stdout => log_layer(json, std::io::stdout().is_terminal(), std::io::stdout),
        LogStream::Stderr => log_layer(json, std::io::stderr().is_terminal(), std::io::stderr),
    }
    .with_filter(filter());
    let file_layer = file_writer.map(|writer| log_layer(json, false, writer).with_filter(filter()));
    // A second init (tests building several applications) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(console_layer)
        .with(file_layer)
        .try_init();
    TelemetryGuard { _file: guard }
}

/// One log output, as text or JSON. Both print the fields of the spans a line is logged in
/// (the text format as `turn{user_id=.. inbound_id=..}:`, JSON under `span`, the current one,
/// and `spans`, all of them), so every line of a turn carries its `user_id`, `inbound_id` and
/// `channel` (see `health_actors::conversation`).
fn log_layer<S, W>(json: bool, ansi: bool, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    W: for<'writer> fmt::MakeWriter<'writer> + Send + Sync + 'static,
{
    if json {
        fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(writer)
            .boxed()
    } else {
        fmt::layer().with_ansi(ansi).with_writer(writer).boxed()
    }
}

/// Buckets for latencies in seconds, from 0.5 ms to 60 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The process-wide Prometheus recorder, installed on first use, with its upkeep task.
///
/// The recorder is global by nature (the `metrics` facade has one), so every `Application` in
/// the process shares it; tests that start several applications all see one registry.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            crate::metrics::describe();
            health_actors::metrics::describe();
            let upkeep = handle.clone();
            // Histograms are drained by upkeep; without the exporter's HTTP feature nobody else
            // calls it. A plain thread keeps this independent of any one tokio runtime.
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "metrics upkeep thread could not start");
            }
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::log_layer;

    /// Log output kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// A line logged in a turn's span, through the layer the service installs.
    fn logged(json: bool) -> String {
        let captured = Captured::default();
        let subscriber =
            tracing_subscriber::registry().with(log_layer(json, false, captured.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::error_span!(
                "turn",
                user_id = 42,
                inbound_id = "0190-abc",
                channel = "telegram"
            );
            span.in_scope(|| tracing::warn!("the photo readers disagree"));
        });
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn both_log_formats_print_the_fields_of_the_turn_span() {
        let json: serde_json::Value = serde_json::from_str(logged(true).trim()).unwrap();
        assert_eq!(json["span"]["user_id"], 42, "{json}");
        assert_eq!(json["span"]["inbound_id"], "0190-abc", "{json}");
        assert_eq!(json["span"]["channel"], "telegram", "{json}");
        assert_eq!(json["spans"][0]["name"], "turn", "{json}");
        let text = logged(false);
        assert!(
            text.contains("turn{user_id=42 inbound_id=\"0190-abc\" channel=\"telegram\"}"),
            "{text}"
        );
    }
}
