//! The HTTP side every model adapter shares: a JSON POST with a per-call timeout, retries with
//! backoff and jitter that honour `Retry-After`, a circuit breaker per provider, and metrics of
//! external calls. Credentials travel in headers, never in URLs, and never reach a log line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use health_actors::ports::SystemClock;
use reqwest::StatusCode;
use serde_json::Value;

use super::model::LlmError;
use crate::metrics::{EXTERNAL_API_CALLS_TOTAL, EXTERNAL_API_DURATION_SECONDS};
use crate::resilience::{parse_retry_after, retry, Attempt, CircuitBreaker, RetryPolicy};

/// Consecutive failed calls (each after its retries) that open a provider's circuit breaker.
pub const BREAKER_THRESHOLD: u32 = 5;
/// How long an open breaker refuses calls before it lets one probe through.
pub const BREAKER_COOL_DOWN: Duration = Duration::from_secs(30);

pub struct Transport {
    pub provider: &'static str,
    http: reqwest::Client,
    breaker: CircuitBreaker,
    retry: RetryPolicy,
}

impl Transport {
    pub fn new(
        provider: &'static str,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("health-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| LlmError::Network(error.to_string()))?;
        Ok(Self {
            provider,
            http,
            breaker: CircuitBreaker::new(
                provider,
                BREAKER_THRESHOLD,
                BREAKER_COOL_DOWN,
                Arc::new(SystemClock),
            ),
            retry,
        })
    }

    /// The same transport with a breaker that opens after `threshold` failed calls and probes
    /// again after `cool_down` (tests and benchmarks use short ones).
    pub fn with_breaker(mut self, threshold: u32, cool_down: Duration) -> Self {
        self.breaker =
            CircuitBreaker::new(self.provider, threshold, cool_down, Arc::new(SystemClock));
        self
    }

    /// POSTs `body` to `url` with `headers`; the parsed JSON answer of a 2xx response.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Result<Value, LlmError> {
        if !self.breaker.allow() {
            metrics::counter!(EXTERNAL_API_CALLS_TOTAL, "provider" => self.provider, "status" => "circuit_open")
                .increment(1);
            return Err(LlmError::CircuitOpen);
        }
        let outcome = retry(self.retry, self.provider, || {
            self.attempt(url, headers, body)
        })
        .await;
        match &outcome {
            Ok(_)
            | Err(
                LlmError::Unauthorized
                | LlmError::Upstream { status: 400..=499 }
                | LlmError::Malformed(_),
            ) => self.breaker.record_success(),
            Err(_) => self.breaker.record_failure(),
        }
        outcome
    }

    async fn attempt(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Attempt<Value, LlmError> {
        let started = Instant::now();
        let mut request = self.http.post(url).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let sent = request.send().await;
        metrics::histogram!(EXTERNAL_API_DURATION_SECONDS, "provider" => self.provider)
            .record(started.elapsed().as_secs_f64());
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                let (label, error) = if error.is_timeout() {
                    ("timeout", LlmError::Timeout)
                } else {
                    ("error", LlmError::Network(error.without_url().to_string()))
                };
                metrics::counter!(EXTERNAL_API_CALLS_TOTAL, "provider" => self.provider, "status" => label).increment(1);
                return Attempt::Retry(error, None);
            }
        };
        let status = response.status();
        metrics::counter!(EXTERNAL_API_CALLS_TOTAL, "provider" => self.provider, "status" => status.as_u16().to_string())
            .increment(1);
        let retry_after = parse_retry_after(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
        );
        match status.as_u16() {
            429 => Attempt::Retry(LlmError::RateLimited, retry_after),
            // 529 is Anthropic's "overloaded"; 503 everyone's.
            503 | 529 => Attempt::Retry(LlmError::Overloaded(status.as_u16()), retry_after),
            500..=599 => Attempt::Retry(
                LlmError::Upstream {
                    status: status.as_u16(),
                },
                retry_after,
            ),
            401 | 403 => Attempt::Fail(LlmError::Unauthorized),
            _ if status != StatusCode::OK && !status.is_success() => {
                Attempt::Fail(LlmError::Upstream {
                    status: status.as_u16(),
                })
            }
            _ => match response.json::<Value>().await {
                Ok(value) => Attempt::Done(value),
                Err(error) => Attempt::Fail(LlmError::Malformed(error.without_url().to_string())),
            },
        }
    }
}
