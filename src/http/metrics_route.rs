//! `GET /metrics`: the Prometheus text format. Optionally guarded by `METRICS_TOKEN`; without it,
//! keep the port off the public internet (see the README).

use secrecy::ExposeSecret;
use warp::http::StatusCode;
use warp::Reply;

use super::{error_reply, HttpState};

/// How long a scrape waits for the inbox backlog.
const BACKLOG_READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) async fn metrics(
    authorization: Option<String>,
    state: HttpState,
) -> warp::reply::Response {
    if let Some(token) = &state.metrics_token {
        let presented = authorization
            .as_deref()
            .and_then(|value| value.strip_prefix("Bearer "));
        let allowed = presented.is_some_and(|presented| {
            constant_time_eq(presented.as_bytes(), token.expose_secret().as_bytes())
        });
        if !allowed {
            return error_reply(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Metrics need the token set in METRICS_TOKEN, as 'Authorization: Bearer <token>'.",
            );
        }
    }
    metrics::gauge!(crate::metrics::UPTIME_SECONDS).set(state.started.elapsed().as_secs_f64());
    if let Some(pool) = state.store.pool_usage() {
        let in_use = pool.open.saturating_sub(pool.idle);
        metrics::gauge!(crate::metrics::DB_POOL_CONNECTIONS, "state" => "idle")
            .set(pool.idle as f64);
        metrics::gauge!(crate::metrics::DB_POOL_CONNECTIONS, "state" => "in_use")
            .set(in_use as f64);
        metrics::gauge!(crate::metrics::DB_POOL_WAITING).set(pool.waiting as f64);
        metrics::gauge!(crate::metrics::DB_POOL_MAX_CONNECTIONS).set(pool.max as f64);
    }
    // Read at each scrape: a backlog shows at once, not at the next maintenance round. Bounded,
    // so a database that is down never holds the scrape (the gauges keep their last values).
    let backlog = health_actors::inbox::refresh_backlog_gauges(state.store.as_ref());
    if tokio::time::timeout(BACKLOG_READ_LIMIT, backlog)
        .await
        .is_err()
    {
        tracing::warn!("the inbox backlog was not read in time for this scrape");
    }
    let body = state.metrics.render();
    warp::reply::with_header(
        body,
        "content-type",
        "text/plain; version=0.0.4; charset=utf-8",
    )
    .into_response()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn constant_time_comparison_is_equality() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret-longer"));
    }
}
