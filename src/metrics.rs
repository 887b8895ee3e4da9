//! Names of the metrics the edges record, each defined once, with their descriptions.
//!
//! The core crate defines its own (conversations, persistence) in `health_actors::metrics`;
//! together they form the one registry rendered at `/metrics`. Names follow Prometheus
//! conventions: `_total` for counters, base units (`_seconds`, `_bytes`) in the name.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// HTTP requests served, by `route` (template, not raw path) and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
/// HTTP request latency by `route`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";
/// `/api/v1` requests refused by a key's rate limit.
pub const HTTP_RATE_LIMITED_TOTAL: &str = "http_rate_limited_total";
/// Health probes whose database ping failed or timed out.
pub const HEALTH_CHECK_FAILURES_TOTAL: &str = "health_check_failures_total";
/// Always 1; labels carry the version and store backend.
pub const BUILD_INFO: &str = "health_agent_build_info";
/// Seconds since the process started serving.
pub const UPTIME_SECONDS: &str = "health_agent_uptime_seconds";

/// Calls to outside services, by `provider` (usda, openai, anthropic, telegram) and `status`
/// (an HTTP status, `timeout`, `error` or `circuit_open`).
pub const EXTERNAL_API_CALLS_TOTAL: &str = "external_api_calls_total";
/// Latency of calls to outside services, by `provider`.
pub const EXTERNAL_API_DURATION_SECONDS: &str = "external_api_duration_seconds";
/// Retries of calls to outside services, by `provider`.
pub const EXTERNAL_API_RETRIES_TOTAL: &str = "external_api_retries_total";
/// Circuit breaker per `provider`: 0 closed, 1 half-open, 2 open.
pub const CIRCUIT_BREAKER_STATE: &str = "circuit_breaker_state";

/// Database connection pool: connections by `state` (`idle`, `in_use`), callers waiting, size.
pub const DB_POOL_CONNECTIONS: &str = "db_pool_connections";
pub const DB_POOL_WAITING: &str = "db_pool_waiting";
pub const DB_POOL_MAX_CONNECTIONS: &str = "db_pool_max_connections";

/// Model tokens by `provider`, `model` and `kind` (`input`, `output`).
pub const LLM_TOKENS_TOTAL: &str = "llm_tokens_total";
/// Latency of model calls by `provider` and `model`.
pub const LLM_REQUEST_DURATION_SECONDS: &str = "llm_request_duration_seconds";
/// Turns whose prompt went without the person's memories, by `reason` (`timeout`: the embedder
/// or the search took longer than the recall's budget; `error`: either failed).
pub const MEMORY_RECALL_SKIPPED_TOTAL: &str = "health_memory_recall_skipped_total";

/// Registers descriptions so that `/metrics` carries HELP and TYPE lines.
pub fn describe() {
    describe_counter!(
        HTTP_RATE_LIMITED_TOTAL,
        Unit::Count,
        "API requests refused by a key's rate limit"
    );
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        Unit::Count,
        "HTTP requests served, by route and status"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "HTTP request latency, by route"
    );
    describe_counter!(
        HEALTH_CHECK_FAILURES_TOTAL,
        Unit::Count,
        "Health probes whose database ping failed or timed out"
    );
    describe_gauge!(
        BUILD_INFO,
        "Build information: always 1, labelled with version and store backend"
    );
    describe_counter!(
        EXTERNAL_API_CALLS_TOTAL,
        Unit::Count,
        "Calls to outside services, by provider and status"
    );
    describe_histogram!(
        EXTERNAL_API_DURATION_SECONDS,
        Unit::Seconds,
        "Latency of calls to outside services, by provider"
    );
    describe_counter!(
        EXTERNAL_API_RETRIES_TOTAL,
        Unit::Count,
        "Retried calls to outside services, by provider"
    );
    describe_gauge!(
        CIRCUIT_BREAKER_STATE,
        "Circuit breaker per provider: 0 closed, 1 half-open, 2 open"
    );
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        "Open database connections, by state (idle, in_use)"
    );
    describe_gauge!(DB_POOL_WAITING, "Callers waiting for a database connection");
    describe_gauge!(
        DB_POOL_MAX_CONNECTIONS,
        "Most database connections the pool opens"
    );
    describe_counter!(
        LLM_TOKENS_TOTAL,
        Unit::Count,
        "Language model tokens, by provider, model and kind (input, output)"
    );
    describe_histogram!(
        LLM_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Language model calls that answered, by provider and model"
    );
    describe_counter!(
        MEMORY_RECALL_SKIPPED_TOTAL,
        Unit::Count,
        "Turns whose prompt went without the person's memories, by reason (timeout, error)"
    );
    describe_gauge!(
        UPTIME_SECONDS,
        Unit::Seconds,
        "Seconds since the service started"
    );
}
