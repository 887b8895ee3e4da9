//! The warp server: `/health` and `/metrics` in every run mode, `/api/v1` and `/openapi.json` in
//! api mode ([`api`]).
//!
//! Routes are assembled in [`routes`] so that the application and the tests serve exactly the
//! same tree. Handlers receive only what they need ([`HttpState`]), never the whole settings.

pub mod api;
mod health;
mod metrics_route;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use health_actors::ports::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub store: Arc<dyn Store>,
    pub metrics: PrometheusHandle,
    pub metrics_token: Option<Arc<SecretString>>,
    pub started: Instant,
    /// `/api/v1` and `/openapi.json`, when the run mode serves the API.
    pub api: Option<api::ApiState>,
    pub cors_origins: Vec<String>,
}

/// The whole route tree, with request metrics and JSON errors for unknown routes.
pub fn routes(
    state: HttpState,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let health = warp::path("health")
        .and(warp::path::end())
        .and(warp::get())
        .and(with(state.clone()))
        .then(health::health);
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::header::optional::<String>("authorization"))
        .and(with(state.clone()))
        .then(metrics_route::metrics);

    let mut tree = health
        .map(Reply::into_response)
        .or(metrics.map(Reply::into_response))
        .unify()
        .boxed();
    if let Some(api_state) = state.api {
        tree = tree
            .or(api::openapi::route())
            .unify()
            .or(api::routes(api_state, &state.cors_origins))
            .unify()
            .boxed();
    }
    let recovered = tree.recover(recover).unify();
    warp::path::full()
        .and(recovered)
        .map(
            |path: warp::path::FullPath, mut response: warp::reply::Response| {
                // RFC 9110: a 405 says which methods the address does accept.
                if response.status() == StatusCode::METHOD_NOT_ALLOWED {
                    if let Some(allow) = allowed_methods(path.as_str()) {
                        response
                            .headers_mut()
                            .insert("allow", warp::http::HeaderValue::from_static(allow));
                    }
                }
                response
            },
        )
        .with(warp::log::custom(record_request))
}

fn with<T: Clone + Send>(value: T) -> impl Filter<Extract = (T,), Error = Infallible> + Clone {
    warp::any().map(move || value.clone())
}

/// Route label for metrics: the template of a known route, never a raw path (which would let a
/// scanner create unbounded label values).
fn route_label(path: &str) -> &'static str {
    match path {
        "/health" => "/health",
        "/metrics" => "/metrics",
        "/openapi.json" => "/openapi.json",
        _ => api::route_template(path).unwrap_or("other"),
    }
}

/// The methods served at `path`, for the `Allow` header of a 405.
fn allowed_methods(path: &str) -> Option<&'static str> {
    match route_label(path) {
        "/health" | "/metrics" | "/openapi.json" => Some("GET"),
        "other" => None,
        template => api::allowed_methods(template),
    }
}

fn record_request(info: warp::log::Info<'_>) {
    let route = route_label(info.path());
    let status = info.status().as_u16().to_string();
    metrics::counter!(crate::metrics::HTTP_REQUESTS_TOTAL, "route" => route, "status" => status)
        .increment(1);
    metrics::histogram!(crate::metrics::HTTP_REQUEST_DURATION_SECONDS, "route" => route)
        .record(info.elapsed().as_secs_f64());
}

/// The JSON error body every route uses: a stable code and a sentence for a person.
pub fn error_reply(status: StatusCode, code: &str, message: &str) -> warp::reply::Response {
    let body = serde_json::json!({ "error": code, "message": message });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    let reply = if let Some(reply) = api::recover(&rejection) {
        reply
    } else if rejection.is_not_found() {
        error_reply(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is nothing at this address.",
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        error_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This address does not accept that method.",
        )
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        error_reply(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "The request could not be understood.",
        )
    };
    Ok(reply)
}
