//! Who is calling: bearer keys, what each may touch, and how often it may call.
//!
//! Admin keys come from `API_KEYS` and may act on any user. Per-user keys are created by an admin
//! (`POST /api/v1/keys`), stored as SHA-256 hashes, and act only on their own user. Admin keys are
//! compared in constant time; a per-user key is found by its hash, which reveals nothing about
//! the key. Every key has its own token bucket ([`RateLimits`]).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use health_actors::domain::UserId;
use health_actors::ports::Store;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::http::metrics_route::constant_time_eq;

/// Prefix of per-user keys, so a leaked key is recognisable in a secret scanner.
pub const USER_KEY_PREFIX: &str = "hak_";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    Admin,
    User(UserId),
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// Names the key for rate limiting ("admin:0", "user:<hash prefix>"); never the key itself.
    pub key_label: String,
}

impl Caller {
    /// Whether this caller may act on `user`: admins on anyone, a per-user key on its own user.
    pub fn may_act_on(&self, user: i64) -> Result<UserId, ApiError> {
        match self.principal {
            Principal::Admin => Ok(UserId(user)),
            Principal::User(own) if own.0 == user => Ok(own),
            Principal::User(_) => Err(ApiError::Forbidden(
                "This key belongs to another user and cannot act on this one.".into(),
            )),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.principal {
            Principal::Admin => Ok(()),
            Principal::User(_) => Err(ApiError::Forbidden(
                "Only an admin key (from API_KEYS) can do this.".into(),
            )),
        }
    }
}

type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// One token bucket per key.
pub struct RateLimits {
    limiter: KeyedLimiter,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn per_minute(requests: u32) -> Self {
        let requests = NonZeroU32::new(requests.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(requests)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one token from the caller's bucket, or says how long to wait.
    pub fn check(&self, caller: &Caller) -> Result<(), ApiError> {
        match self.limiter.check_key(&caller.key_label) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                metrics::counter!(crate::metrics::HTTP_RATE_LIMITED_TOTAL).increment(1);
                let wait: Duration = not_until.wait_time_from(self.clock.now());
                Err(ApiError::RateLimited { retry_after: wait })
            }
        }
    }

    /// Forgets buckets that are full again, so memory does not grow with old keys.
    pub fn shrink(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// How many keys have a bucket now.
    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }

    /// Shrinks every `period` on a task that ends once these limits are dropped (it holds them
    /// weakly). Call within a tokio runtime.
    pub fn shrink_every(self: &Arc<Self>, period: Duration) {
        let limits = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match limits.upgrade() {
                    Some(limits) => limits.shrink(),
                    None => break,
                }
            }
        });
    }
}

/// Checks bearer keys.
pub struct Authenticator {
    admin_keys: Vec<SecretString>,
    store: Arc<dyn Store>,
}

impl Authenticator {
    pub fn new(admin_keys: Vec<SecretString>, store: Arc<dyn Store>) -> Self {
        Self { admin_keys, store }
    }

    /// The caller behind an `Authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        if self.admin_keys.is_empty() {
            return Err(ApiError::NotConfigured);
        }
        let presented = authorization
            .and_then(|value| {
                let (scheme, key) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
            })
            .filter(|key| !key.is_empty())
            .ok_or(ApiError::MissingKey)?;
        // Every admin key is compared, whichever matches, so timing says nothing about which.
        let mut admin_index = None;
        for (index, key) in self.admin_keys.iter().enumerate() {
            if constant_time_eq(presented.as_bytes(), key.expose_secret().as_bytes()) {
                admin_index.get_or_insert(index);
            }
        }
        if let Some(index) = admin_index {
            return Ok(Caller {
                principal: Principal::Admin,
                key_label: format!("admin:{index}"),
            });
        }
        if !presented.starts_with(USER_KEY_PREFIX) {
            return Err(ApiError::InvalidKey);
        }
        let hash = hash_key(presented);
        match self.store.api_key_user(&hash).await {
            Ok(Some(user)) => Ok(Caller {
                principal: Principal::User(user),
                key_label: format!("user:{}", &hash[..16]),
            }),
            Ok(None) => Err(ApiError::InvalidKey),
            Err(error) => Err(ApiError::store(error)),
        }
    }
}

/// A new per-user key: the prefix and 244 random bits (two UUIDv4) in hex.
pub fn generate_key() -> String {
    let random = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    format!("{USER_KEY_PREFIX}{random}")
}

/// The SHA-256 of a key in lower-case hex: what the store keeps.
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(principal: Principal) -> Caller {
        Caller {
            principal,
            key_label: format!("{principal:?}"),
        }
    }

    #[test]
    fn per_user_keys_act_only_on_their_user() {
        let own = caller(Principal::User(UserId(7)));
        assert_eq!(own.may_act_on(7), Ok(UserId(7)));
        assert!(matches!(own.may_act_on(8), Err(ApiError::Forbidden(_))));
        assert!(own.require_admin().is_err());
        assert_eq!(caller(Principal::Admin).may_act_on(8), Ok(UserId(8)));
    }

    #[test]
    fn keys_are_random_and_hashed_to_hex() {
        let key = generate_key();
        assert!(key.starts_with(USER_KEY_PREFIX));
        assert_ne!(key, generate_key());
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_bucket_empties_and_says_when_to_retry() {
        let limits = RateLimits::per_minute(2);
        let key = caller(Principal::Admin);
        assert!(limits.check(&key).is_ok());
        assert!(limits.check(&key).is_ok());
        match limits.check(&key) {
            Err(ApiError::RateLimited { retry_after }) => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(30))
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert!(limits.check(&caller(Principal::User(UserId(1)))).is_ok());
    }

    #[tokio::test]
    async fn idle_buckets_are_forgotten() {
        // A cell every 0.1 ms: a bucket is full again almost at once.
        let limits = Arc::new(RateLimits::per_minute(600_000));
        for user in 0..1_000 {
            assert!(limits.check(&caller(Principal::User(UserId(user)))).is_ok());
        }
        assert_eq!(limits.tracked_keys(), 1_000);
        limits.shrink_every(Duration::from_millis(5));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while limits.tracked_keys() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} buckets are still kept",
                limits.tracked_keys()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The task holds the limits weakly: dropping them ends it.
        let weak = Arc::downgrade(&limits);
        drop(limits);
        assert!(weak.upgrade().is_none());
    }
}
