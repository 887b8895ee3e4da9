//! Durable intake of Telegram updates: nothing the person sent is lost or applied twice.
//!
//! teloxide's own polling asks for the next batch as soon as the current one is handed to the
//! dispatcher, and its webhook listener answers 200 before anything is stored, so a crash in
//! between loses what the person sent. Here instead:
//!
//! - [`Intake::take`] runs the handler tree ([`super::handlers::schema`]) over a batch of
//!   updates, keeps the messages in the inbox in **one transaction**, and only then hands them
//!   to the conversations;
//! - [`poll`] asks `getUpdates` for the next offset only after that commit (Telegram counts an
//!   update as delivered once a later offset is asked for); when the commit fails, the same
//!   batch is asked for again after a pause;
//! - the webhook route ([`super::webhook`]) answers 200 only after the commit;
//! - on start, [`Intake::replay`] hands over what the inbox holds from before the restart,
//!   before any new update is taken.
//!
//! A redelivered update (the offset was not acknowledged before a crash) has the same inbound
//! id, so the inbox ignores it.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use health_actors::backoff::{Backoff, Jitter};
use health_actors::inbox::{Inbox, ReplayError, SOURCE_TELEGRAM};
use health_actors::ports::{Outbox, StoreError};
use teloxide::dispatching::DpHandlerDescription;
use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, Update};
use tokio::sync::{watch, Mutex};
use tracing::Instrument;

use super::handlers::{self, Edge, Prepared};
use super::{Redactor, SEND_FAILURES_TOTAL};

/// Updates asked for per `getUpdates` (Telegram's maximum).
const BATCH: u8 = 100;
/// Pauses after a failed `getUpdates` or inbox commit: doubling from 250 ms to 30 s, without
/// jitter (one process polls one bot).
const BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(250),
    max: Duration::from_secs(30),
    jitter: Jitter::None,
};

/// Turns updates into kept messages for the conversations.
pub struct Intake {
    edge: Arc<Edge>,
    inbox: Inbox,
    tree: dptree::Handler<'static, Prepared, DpHandlerDescription>,
    /// One batch at a time (polling) or one post at a time (webhook), so that messages reach
    /// the conversations in the order they were accepted.
    order: Mutex<()>,
    /// False until the replay at start is handed over; the webhook asks Telegram to come back.
    ready: AtomicBool,
}

impl Intake {
    pub fn new(edge: Arc<Edge>, inbox: Inbox) -> Self {
        Self {
            edge,
            inbox,
            tree: handlers::schema(),
            order: Mutex::new(()),
            ready: AtomicBool::new(false),
        }
    }

    /// Whether [`Intake::replay`] has run.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Hands over the messages kept before a restart (oldest first); then new updates may come.
    pub async fn replay(&self) -> Result<usize, ReplayError> {
        let _order = self.order.lock().await;
        let reply: Arc<dyn Outbox> = self.edge.outbox.clone();
        let messages = self.inbox.pending(SOURCE_TELEGRAM, reply).await?;
        let count = messages.len();
        for message in messages {
            self.edge.hand_over(&self.inbox, message).await?;
        }
        self.ready.store(true, Ordering::Release);
        Ok(count)
    }

    /// Runs the handler tree over `updates`, keeps the messages in the inbox (one
    /// transaction), then hands the new ones over in order. Returns once they are kept: only
    /// then may the updates be acknowledged to Telegram. An error means nothing was kept.
    pub async fn take(&self, updates: Vec<Update>) -> Result<usize, StoreError> {
        let _order = self.order.lock().await;
        let mut messages = Vec::with_capacity(updates.len());
        for update in updates {
            // Every line the edge logs for this update (a photo download, a refusal) names it.
            let span = tracing::error_span!(
                "telegram_update",
                update_id = update.id.0,
                inbound_id = %self.edge.inbound_id(update.id),
            );
            let deps = dptree::deps![update, self.edge.clone()];
            let prepared = self.tree.dispatch(deps).instrument(span.clone()).await;
            if let ControlFlow::Break(Prepared::Message(message)) = prepared {
                messages.push((span, message));
            }
        }
        let (spans, messages): (Vec<_>, Vec<_>) = messages.into_iter().unzip();
        let accepted = self.inbox.accept(SOURCE_TELEGRAM, messages).await?;
        for span in spans {
            // Ties the update id to the inbound id that every line of its turn carries, so
            // `grep <update id>` finds the inbound id and `grep <inbound id>` the whole path.
            span.in_scope(|| tracing::info!("a Telegram message is in the inbox"));
        }
        let count = accepted.len();
        for message in accepted {
            if let Err(error) = self.edge.hand_over(&self.inbox, message).await {
                // Kept in the inbox: the next start handles it.
                tracing::warn!(%error, "a kept Telegram message waits for the next start");
            }
        }
        Ok(count)
    }
}

/// Long polling until `stop` turns true: `getUpdates` with the offset after the last batch
/// kept, so an update is acknowledged only once the inbox holds it. Telegram holds each call up
/// to `timeout` and answers an empty list when nothing came: that is the normal case, asked
/// again at once. The pauses are for real failures (an error, or no answer within
/// `call_timeout`) and start from the first again after any answer.
pub async fn poll(
    bot: Bot,
    intake: Arc<Intake>,
    redactor: Redactor,
    timeout: Duration,
    call_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut offset: Option<i32> = None;
    // Failed calls in a row; the next pause is `BACKOFF.delay(failures)`.
    let mut failures: u32 = 0;
    let pause = |failures: &mut u32| {
        let wait = BACKOFF.delay(*failures);
        *failures = failures.saturating_add(1);
        wait
    };
    while !*stop.borrow() {
        let mut request = bot
            .get_updates()
            .limit(BATCH)
            .timeout(timeout.as_secs() as u32)
            .allowed_updates([AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
        if let Some(offset) = offset {
            request = request.offset(offset);
        }
        let answer = tokio::select! {
            _ = stop.changed() => break,
            answer = tokio::time::timeout(call_timeout, request.send()) => answer,
        };
        let updates = match answer {
            Ok(Ok(updates)) => updates,
            Ok(Err(error)) => {
                metrics::counter!(SEND_FAILURES_TOTAL, "method" => "getUpdates", "error" => "unavailable")
                    .increment(1);
                tracing::warn!(error = %redactor.redact(&error.to_string()), "could not get updates from Telegram; retrying");
                sleep_or_stop(pause(&mut failures), &mut stop).await;
                continue;
            }
            Err(_) => {
                metrics::counter!(SEND_FAILURES_TOTAL, "method" => "getUpdates", "error" => "timeout")
                    .increment(1);
                tracing::warn!("Telegram did not answer getUpdates in time; retrying");
                sleep_or_stop(pause(&mut failures), &mut stop).await;
                continue;
            }
        };
        let Some(last) = updates.last().map(|update| update.id.0) else {
            failures = 0;
            continue;
        };
        match intake.take(updates).await {
            Ok(_) => {
                failures = 0;
                // Asking for the next offset acknowledges this batch to Telegram.
                offset = Some(last.wrapping_add(1) as i32);
            }
            Err(error) => {
                // Not acknowledged: Telegram sends the same updates again.
                tracing::warn!(%error, "could not keep Telegram updates; asking for them again");
                sleep_or_stop(pause(&mut failures), &mut stop).await;
            }
        }
    }
}

async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = stop.changed() => {}
        _ = tokio::time::sleep(wait) => {}
    }
}
