//! Exponential backoff with jitter: how long to wait before trying again.
//!
//! Every retry loop of the program uses this one schedule: the persistence actor between commits
//! of a batch the database refused for now, the model and USDA clients between HTTP attempts
//! (`src/resilience.rs`), and the Telegram intake between failed `getUpdates` calls. Each keeps
//! its own numbers; the doubling, the cap and the jitter are written once, here.
//!
//! Jitter spreads the retries of many processes (or many actors) so they do not hit a recovering
//! service in step. The random fraction comes from the standard library's per-instance hash keys:
//! good enough to spread retries, not meant for anything secret.

use std::time::Duration;

/// How the computed delay is spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the computed delay.
    None,
    /// Uniformly between half the computed delay and all of it ("equal jitter").
    DownToHalf,
    /// Uniformly between the computed delay and half again as much, never above the cap.
    UpToHalfMore,
}

/// `initial` × 2^attempt, at most `max`, spread by `jitter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry (attempt 0), before jitter.
    pub initial: Duration,
    /// The doubling stops here. Jitter never takes a delay above the larger of `max` and
    /// `initial`.
    pub max: Duration,
    pub jitter: Jitter,
}

/// Doublings stop growing past this many attempts (2^16 × the initial delay is far past any
/// cap in use, and the shift cannot overflow).
const MAX_DOUBLINGS: u32 = 16;

impl Backoff {
    /// The wait before retry `attempt`, counted from 0 for the first retry.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponential = self
            .initial
            .saturating_mul(1u32 << attempt.min(MAX_DOUBLINGS));
        let capped = exponential.min(self.max);
        match self.jitter {
            Jitter::None => capped,
            Jitter::DownToHalf => capped.mul_f64(0.5 + 0.5 * random_fraction()),
            Jitter::UpToHalfMore => capped
                .mul_f64(1.0 + 0.5 * random_fraction())
                .min(self.max.max(self.initial)),
        }
    }
}

/// A number in [0, 1) that differs between calls.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    // Each RandomState is keyed afresh, so hashing the same input gives a new value each call.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(jitter: Jitter) -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter,
        }
    }

    #[test]
    fn without_jitter_delays_double_up_to_the_cap() {
        let plain = backoff(Jitter::None);
        let delays: Vec<u128> = (0..6).map(|a| plain.delay(a).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(plain.delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_down_to_half_stays_between_half_and_all_of_the_delay() {
        let spread = backoff(Jitter::DownToHalf);
        for _ in 0..200 {
            let first = spread.delay(0);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let fourth = spread.delay(3);
            assert!(fourth >= Duration::from_millis(400) && fourth <= Duration::from_millis(800));
            assert!(spread.delay(20) <= Duration::from_secs(1));
        }
    }

    #[test]
    fn jitter_up_to_half_more_stays_above_the_delay_and_under_the_cap() {
        let spread = backoff(Jitter::UpToHalfMore);
        for _ in 0..200 {
            let first = spread.delay(0);
            assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(150));
            let capped = spread.delay(4);
            assert_eq!(capped, Duration::from_secs(1));
        }
        // A cap below the first delay: capped first, then spread up to the first delay.
        let odd = Backoff {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(1),
            jitter: Jitter::UpToHalfMore,
        };
        let delay = odd.delay(0);
        assert!(delay >= Duration::from_secs(1) && delay <= Duration::from_millis(1500));
    }

    #[test]
    fn jitter_varies_between_calls() {
        let spread = backoff(Jitter::DownToHalf);
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| spread.delay(3)).collect();
        assert!(delays.len() > 1, "jitter spreads the delays: {delays:?}");
    }
}
