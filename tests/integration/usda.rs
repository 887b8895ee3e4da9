//! The USDA FoodData Central client against a fake FDC server on loopback.

use std::time::Duration;

use health_agent::nutrition::usda::{UsdaClient, UsdaError, UsdaSettings};
use health_agent::resilience::RetryPolicy;
use secrecy::SecretString;

use crate::fakes::usda::{self, FakeFdc};

fn client(fake: &FakeFdc, key: &str) -> UsdaClient {
    let mut settings = UsdaSettings::new(fake.base_url(), SecretString::from(key.to_owned()));
    settings.retry = RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
    };
    UsdaClient::new(settings).unwrap()
}

#[tokio::test]
async fn lookup_finds_a_food_with_its_portions_and_caches_it() {
    let fake = usda::start().await;
    let client = client(&fake, usda::KEY);
    let food = client
        .lookup("Avocado")
        .await
        .unwrap()
        .expect("avocado is found");
    assert_eq!(food.fdc_id, 171705);
    assert_eq!(food.per_100g.kcal, 160.0);
    assert_eq!(food.per_100g.protein_g, 2.0);
    assert!(food
        .portions
        .iter()
        .any(|p| p.unit == "cup" && p.grams == 150.0));
    let calls = fake.request_count();
    assert_eq!(calls, 2, "a search and a details call");
    client.lookup("avocado ").await.unwrap();
    assert_eq!(
        fake.request_count(),
        calls,
        "the second lookup is served from the cache"
    );
}

#[tokio::test]
async fn an_unknown_food_is_none_not_a_guess() {
    let fake = usda::start().await;
    assert_eq!(
        client(&fake, usda::KEY).lookup("moon rocks").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let fake = usda::start().await;
    fake.fail_next(&[429, 503]);
    let client = client(&fake, usda::KEY);
    let hits = client.search("avocado", 5).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn a_wrong_key_is_reported_without_retrying() {
    let fake = usda::start().await;
    let outcome = client(&fake, "wrong").search("avocado", 5).await;
    assert_eq!(outcome, Err(UsdaError::Unauthorized));
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_failures() {
    let fake = usda::start().await;
    fake.fail_next(&[500; 64]);
    let client = client(&fake, usda::KEY);
    let mut last = Ok(Vec::new());
    for _ in 0..6 {
        last = client.search("avocado", 5).await;
    }
    assert_eq!(last, Err(UsdaError::CircuitOpen));
    let before = fake.request_count();
    assert_eq!(
        client.search("avocado", 5).await,
        Err(UsdaError::CircuitOpen)
    );
    assert_eq!(
        fake.request_count(),
        before,
        "an open breaker makes no call"
    );
}

#[tokio::test]
async fn answers_are_cached_in_the_store_across_clients() {
    let fake = usda::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let config = health_agent::store::StoreConfig::Embedded {
        path: data_dir.path().join("cache.db"),
    };
    let (store, _) = health_agent::store::open(&config).await.unwrap();
    let day = Duration::from_secs(24 * 3600);

    let first = client(&fake, usda::KEY).with_store_cache(store.clone(), day);
    let food = first.lookup("avocado").await.unwrap().expect("found");
    assert_eq!(first.lookup("moon rocks").await.unwrap(), None);
    let calls = fake.request_count();

    // A new client (a restarted process) answers from the store, negative answers included.
    let second = client(&fake, usda::KEY).with_store_cache(store.clone(), day);
    assert_eq!(
        second.lookup("Avocado").await.unwrap().as_deref(),
        Some(&*food)
    );
    assert_eq!(second.lookup("moon rocks").await.unwrap(), None);
    assert_eq!(
        fake.request_count(),
        calls,
        "no call to FDC for cached answers"
    );

    // Answers older than the maximum age are asked again.
    let third = client(&fake, usda::KEY).with_store_cache(store, Duration::ZERO);
    third.lookup("avocado").await.unwrap();
    assert!(fake.request_count() > calls);
}
