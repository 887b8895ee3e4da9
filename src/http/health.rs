//! `GET /health`: is the service able to serve? A store ping with a short timeout.

use std::time::Duration;

use serde::Serialize;
use warp::http::StatusCode;
use warp::Reply;

use super::HttpState;

/// Long enough for a busy pool, short enough for a load balancer's probe.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
struct HealthBody {
    status: &'static str,
    database: &'static str,
    backend: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub(super) async fn health(state: HttpState) -> warp::reply::Response {
    let outcome = tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await;
    let error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(format!("database ping failed: {error}")),
        Err(_) => Some(format!(
            "database ping timed out after {} s",
            PING_TIMEOUT.as_secs()
        )),
    };
    let healthy = error.is_none();
    if !healthy {
        metrics::counter!(crate::metrics::HEALTH_CHECK_FAILURES_TOTAL).increment(1);
    }
    let body = HealthBody {
        status: if healthy { "healthy" } else { "degraded" },
        database: if healthy { "connected" } else { "unavailable" },
        backend: state.store.backend(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        error,
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}
