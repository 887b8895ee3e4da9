//! Calling services we do not control: retry with backoff and jitter (the core's
//! [`Backoff`], honouring `Retry-After`),
//! and a circuit breaker per provider so that a provider that is down costs one fast failure per
//! call instead of a timeout each.
//!
//! Used by the USDA client and the model adapters. Pure state machines plus a small async retry
//! loop; the breaker reads the time from the core's [`Clock`] port, so its test moves a manual
//! clock instead of sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use health_actors::backoff::{Backoff, Jitter};
use health_actors::ports::Clock;

use crate::metrics::{CIRCUIT_BREAKER_STATE, EXTERNAL_API_RETRIES_TOTAL};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based), or `None` for no retry: exponential with
    /// jitter between half and all of the delay when the server did not say; exactly what it
    /// asked for in `Retry-After` when that is at most `max_delay`. A server that asks for longer
    /// is not retried at all: asking sooner would only be refused again, and the caller's
    /// fallback (another model, the rule agent) can answer now instead of the person waiting.
    pub fn wait_before(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        match retry_after {
            Some(asked) if asked > self.max_delay => None,
            Some(asked) => Some(asked),
            None => Some(self.backoff().delay(retry.saturating_sub(1))),
        }
    }

    /// The schedule between attempts when the server did not say.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: self.base_delay,
            max: self.max_delay,
            jitter: Jitter::DownToHalf,
        }
    }
}

/// Parses an HTTP `Retry-After` header given in seconds (the form APIs use for rate limits).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// What one attempt tells the retry loop.
pub enum Attempt<T, E> {
    Done(T),
    /// Worth trying again (429, 5xx, a timeout), optionally after the server's `Retry-After`.
    Retry(E, Option<Duration>),
    /// Not worth trying again (4xx other than 429, a malformed answer).
    Fail(E),
}

/// Runs `attempt` up to `policy.attempts` times, sleeping between tries.
pub async fn retry<T, E, F, Fut>(
    policy: RetryPolicy,
    provider: &'static str,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Attempt<T, E>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Fail(error) => return Err(error),
            Attempt::Retry(error, retry_after) => {
                if tries >= policy.attempts {
                    return Err(error);
                }
                let Some(wait) = policy.wait_before(tries, retry_after) else {
                    tracing::info!(
                        provider,
                        asked_ms = retry_after.unwrap_or_default().as_millis() as u64,
                        "the service asked for a longer wait than we give it; not retrying"
                    );
                    return Err(error);
                };
                metrics::counter!(EXTERNAL_API_RETRIES_TOTAL, "provider" => provider).increment(1);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// 0 closed, 1 half-open, 2 open: the value of the `circuit_breaker_state` gauge.
    pub fn gauge_value(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed {
        consecutive_failures: u32,
    },
    Open {
        since: DateTime<Utc>,
    },
    /// One probe is in flight; everyone else is refused until it reports.
    HalfOpen,
}

/// Opens after `threshold` consecutive failures, refuses calls for `cool_down`, then lets one
/// probe through: its success closes the breaker, its failure opens it again.
pub struct CircuitBreaker {
    provider: &'static str,
    threshold: u32,
    cool_down: Duration,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("provider", &self.provider)
            .field("threshold", &self.threshold)
            .field("cool_down", &self.cool_down)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// A closed breaker for `provider` that reads the time from `clock`.
    pub fn new(
        provider: &'static str,
        threshold: u32,
        cool_down: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        metrics::gauge!(CIRCUIT_BREAKER_STATE, "provider" => provider)
            .set(BreakerState::Closed.gauge_value());
        Self {
            provider,
            threshold: threshold.max(1),
            cool_down,
            clock,
            inner: Mutex::new(Inner::Closed {
                consecutive_failures: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the state half-written (every update is a
        // single assignment), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// Whether the cool-down of a breaker opened at `since` is over at `now`. A wall clock set
    /// back past the opening counts as over (one probe), rather than keeping the breaker open
    /// for as long as the clock went back.
    fn cooled_down(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let cool_down = TimeDelta::from_std(self.cool_down).unwrap_or(TimeDelta::MAX);
        now < since
            || since
                .checked_add_signed(cool_down)
                .is_some_and(|until| now >= until)
    }

    /// Whether a call may go out now.
    pub fn allow(&self) -> bool {
        let now = self.clock.now();
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => true,
            Inner::Open { since } if self.cooled_down(since, now) => {
                *inner = Inner::HalfOpen;
                self.publish(BreakerState::HalfOpen);
                true
            }
            Inner::Open { .. } | Inner::HalfOpen => false,
        }
    }

    pub fn record_success(&self) {
        let mut inner = self.lock();
        if !matches!(
            *inner,
            Inner::Closed {
                consecutive_failures: 0
            }
        ) {
            *inner = Inner::Closed {
                consecutive_failures: 0,
            };
            self.publish(BreakerState::Closed);
        }
    }

    pub fn record_failure(&self) {
        let now = self.clock.now();
        let mut inner = self.lock();
        let next = match *inner {
            Inner::Closed {
                consecutive_failures,
            } if consecutive_failures + 1 < self.threshold => Inner::Closed {
                consecutive_failures: consecutive_failures + 1,
            },
            _ => Inner::Open { since: now },
        };
        let opened = matches!(next, Inner::Open { .. }) && !matches!(*inner, Inner::Open { .. });
        *inner = next;
        if opened {
            tracing::warn!(
                provider = self.provider,
                cool_down_s = self.cool_down.as_secs(),
                "circuit breaker opened"
            );
            self.publish(BreakerState::Open);
        }
    }

    fn publish(&self, state: BreakerState) {
        metrics::gauge!(CIRCUIT_BREAKER_STATE, "provider" => self.provider)
            .set(state.gauge_value());
    }
}

#[cfg(test)]
mod tests {
    use health_actors::testing::ManualClock;

    use super::*;

    fn breaker(threshold: u32, cool_down: Duration) -> (CircuitBreaker, Arc<ManualClock>) {
        let clock = ManualClock::new(Utc::now());
        let breaker = CircuitBreaker::new("test", threshold, cool_down, clock.clone());
        (breaker, clock)
    }

    fn seconds(count: i64) -> chrono::Duration {
        chrono::Duration::seconds(count)
    }

    #[test]
    fn breaker_opens_after_threshold_then_half_opens_and_closes_on_success() {
        let (breaker, clock) = breaker(3, Duration::from_secs(30));
        for _ in 0..2 {
            assert!(breaker.allow());
            breaker.record_failure();
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        clock.advance(seconds(29));
        assert!(!breaker.allow());
        // After the cool-down exactly one probe goes through.
        clock.advance(seconds(1));
        assert!(breaker.allow());
        assert!(!breaker.allow());
        breaker.record_success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        clock.advance(seconds(1));
        assert!(breaker.allow());
    }

    #[test]
    fn a_failed_probe_opens_the_breaker_again() {
        let (breaker, clock) = breaker(1, Duration::from_secs(10));
        breaker.record_failure();
        clock.advance(seconds(10));
        assert!(breaker.allow());
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        clock.advance(seconds(9));
        assert!(!breaker.allow());
    }

    #[test]
    fn a_clock_set_back_lets_one_probe_through_instead_of_staying_open() {
        let (breaker, clock) = breaker(1, Duration::from_secs(60));
        breaker.record_failure();
        clock.advance(seconds(-3600));
        assert!(breaker.allow());
        assert!(!breaker.allow());
    }

    #[test]
    fn retry_delays_grow_honour_retry_after_exactly_and_stay_capped() {
        let policy = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let wait = |retry, asked| policy.wait_before(retry, asked).expect("a retry");
        let first = wait(1, None);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let fourth = wait(4, None);
        assert!(fourth >= Duration::from_millis(400) && fourth <= Duration::from_millis(800));
        assert!(wait(10, None) <= Duration::from_secs(1));
        assert_eq!(
            wait(1, Some(Duration::from_millis(300))),
            Duration::from_millis(300)
        );
        assert_eq!(
            wait(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        // Asked for longer than we wait: no retry (it used to retry after the cap, early).
        assert_eq!(policy.wait_before(1, Some(Duration::from_secs(60))), None);
        assert_eq!(parse_retry_after(Some(" 2 ")), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_stops_at_the_first_success_or_a_permanent_failure() {
        let mut calls = 0;
        let outcome: Result<u32, &str> = retry(RetryPolicy::default(), "test", || {
            calls += 1;
            let call = calls;
            async move {
                if call < 3 {
                    Attempt::Retry("busy", None)
                } else {
                    Attempt::Done(call)
                }
            }
        })
        .await;
        assert_eq!(outcome, Ok(3));

        let mut calls = 0;
        let outcome: Result<u32, &str> = retry(RetryPolicy::default(), "test", || {
            calls += 1;
            async { Attempt::Fail("bad request") }
        })
        .await;
        assert_eq!((outcome, calls), (Err("bad request"), 1));
    }
}
