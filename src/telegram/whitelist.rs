//! Who the bot serves: the ids of `ALLOWED_TELEGRAM_IDS`, checked before anything about an
//! update is stored or handed to the core.
//!
//! Anyone else gets one short refusal, at most once an hour per id, so a stranger cannot make
//! the bot talk (or spend its rate limit) by sending many messages. The memory of whom was
//! refused when lives only in this process, is bounded, and is never persisted.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one stranger may be told that the bot is not for them.
pub const REFUSAL_INTERVAL: Duration = Duration::from_secs(3600);
/// Past this many remembered strangers, the ones refused over an hour ago are forgotten.
const REMEMBERED_MAX: usize = 10_000;

/// What to do with an update from an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Serve,
    /// A stranger not told recently: send the refusal.
    Refuse,
    /// A stranger told less than an hour ago: drop the update without a word.
    Ignore,
}

pub struct Whitelist {
    allowed: HashSet<i64>,
    refused_at: Mutex<HashMap<i64, Instant>>,
}

impl Whitelist {
    pub fn new(allowed: impl IntoIterator<Item = i64>) -> Self {
        Self {
            allowed: allowed.into_iter().collect(),
            refused_at: Mutex::new(HashMap::new()),
        }
    }

    pub fn allows(&self, user: i64) -> bool {
        self.allowed.contains(&user)
    }

    pub fn verdict(&self, user: i64, now: Instant) -> Verdict {
        if self.allows(user) {
            return Verdict::Serve;
        }
        let mut refused = self
            .refused_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = refused.get(&user) {
            if now.saturating_duration_since(*at) < REFUSAL_INTERVAL {
                return Verdict::Ignore;
            }
        }
        if refused.len() >= REMEMBERED_MAX {
            refused.retain(|_, at| now.saturating_duration_since(*at) < REFUSAL_INTERVAL);
        }
        refused.insert(user, now);
        Verdict::Refuse
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_ids_are_served_and_strangers_refused_once_an_hour() {
        let list = Whitelist::new([1, 2]);
        let start = Instant::now();
        assert_eq!(list.verdict(1, start), Verdict::Serve);
        assert_eq!(list.verdict(9, start), Verdict::Refuse);
        assert_eq!(
            list.verdict(9, start + Duration::from_secs(60)),
            Verdict::Ignore
        );
        assert_eq!(list.verdict(8, start), Verdict::Refuse);
        assert_eq!(
            list.verdict(9, start + REFUSAL_INTERVAL + Duration::from_secs(1)),
            Verdict::Refuse
        );
    }

    #[test]
    fn an_empty_list_serves_nobody() {
        let list = Whitelist::new([]);
        assert!(!list.allows(1));
        assert_eq!(list.verdict(1, Instant::now()), Verdict::Refuse);
    }
}
