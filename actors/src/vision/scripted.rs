//! A scripted vision model for the actor tests of the vision branch and of the root.
//!
//! It answers a fixed energy after a delay, or fails; it can be told to panic once inside
//! `analyse` (which runs in the agent's task: costs only that agent's answer) or once inside
//! `name` (which the coordinator calls while it handles a photo: the coordinator itself fails),
//! and to hold its answers until the test releases them (a photo kept in flight).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use super::{Photo, SeenItem, VisionAnswer, VisionError, VisionModel};

pub(crate) struct Scripted {
    name: String,
    delay: Duration,
    kcal: Option<f64>,
    /// The next `analyse` panics.
    pub panic_in_analyse: AtomicBool,
    /// The next `name` panics.
    pub panic_in_name: AtomicBool,
    /// When set, `analyse` waits for a permit (see [`Scripted::release`]).
    held: Option<Semaphore>,
    /// One permit per `analyse` started.
    started: Semaphore,
}

impl Scripted {
    /// Answers `kcal` of rice after `delay_ms`, or fails when `kcal` is `None`.
    pub fn new(name: &str, delay_ms: u64, kcal: Option<f64>) -> Arc<Self> {
        Self::build(name, delay_ms, kcal, None)
    }

    /// Like [`Scripted::new`] (no delay), but every answer waits until [`Scripted::release`].
    pub fn held(name: &str, kcal: f64) -> Arc<Self> {
        Self::build(name, 0, Some(kcal), Some(Semaphore::new(0)))
    }

    fn build(name: &str, delay_ms: u64, kcal: Option<f64>, held: Option<Semaphore>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            delay: Duration::from_millis(delay_ms),
            kcal,
            panic_in_analyse: AtomicBool::new(false),
            panic_in_name: AtomicBool::new(false),
            held,
            started: Semaphore::new(0),
        })
    }

    /// The same, as the trait object the coordinator takes.
    pub fn model(name: &str, delay_ms: u64, kcal: Option<f64>) -> Arc<dyn VisionModel> {
        Self::new(name, delay_ms, kcal)
    }

    /// Lets every held answer (and all later ones) through.
    pub fn release(&self) {
        if let Some(held) = &self.held {
            held.add_permits(Semaphore::MAX_PERMITS / 2);
        }
    }

    /// Waits (at most `within`) until an `analyse` has started.
    pub async fn wait_started(&self, within: Duration) -> bool {
        match tokio::time::timeout(within, self.started.acquire()).await {
            Ok(Ok(permit)) => {
                permit.forget();
                true
            }
            _ => false,
        }
    }
}

#[async_trait]
impl VisionModel for Scripted {
    fn name(&self) -> &str {
        if self.panic_in_name.swap(false, Ordering::SeqCst) {
            panic!("scripted panic in name()");
        }
        &self.name
    }

    async fn analyse(
        &self,
        _photo: &Photo,
        _caption: Option<&str>,
    ) -> Result<VisionAnswer, VisionError> {
        self.started.add_permits(1);
        if self.panic_in_analyse.swap(false, Ordering::SeqCst) {
            panic!("scripted panic in analyse()");
        }
        if let Some(held) = &self.held {
            let _ = held.acquire().await;
        }
        tokio::time::sleep(self.delay).await;
        match self.kcal {
            Some(kcal) => Ok(VisionAnswer {
                no_food: false,
                items: vec![SeenItem {
                    name: "rice".into(),
                    grams: 150.0,
                    kcal,
                    protein_g: 4.0,
                    carbs_g: 40.0,
                    fat_g: 0.5,
                    confidence: 0.8,
                }],
            }),
            None => Err(VisionError::Unavailable("scripted failure".into())),
        }
    }
}

/// A tiny JPEG header: enough for [`Photo::sniff`].
pub(crate) fn photo() -> Photo {
    Photo::sniff(vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0]).expect("a JPEG header")
}
