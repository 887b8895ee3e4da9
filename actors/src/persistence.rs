//! The persistence actor: every write of the core goes through it, batched into one transaction.
//!
//! **Owns** the queue of accepted writes and the batch being committed. **Supervised by** the
//! root supervisor (a failure of this actor is escalated: the application stops). **Talks to** the
//! [`Store`] (one [`Store::apply`] per batch) and answers each sender through a oneshot after the
//! commit of the batch that holds its rows, so that a "saved" reply is only sent after commit.
//!
//! Batching: a batch is flushed when it reaches `batch_max` rows or `flush` after its first row,
//! whichever comes first. A transient store failure keeps the batch and retries it with
//! exponential backoff and jitter; meanwhile new writes are accepted up to `queue_max` rows, then
//! senders wait in [`PersistenceHandle::write`] (backpressure through a semaphore whose permits the
//! queued rows hold). A batch the store rejects for good is split per sender, so only the sender
//! whose rows are bad gets the error. Nothing accepted is dropped; on shutdown the queue is
//! flushed within a deadline and whatever could not be written is logged with a count.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::backoff::{Backoff, Jitter};
use crate::metrics as names;
use crate::ports::{Store, StoreError, Write};

/// Why a write was not confirmed. The `Display` is written for the operator; agents tell the
/// person "I could not save that" in their own words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PersistError {
    /// The queue stayed full for the whole wait: the write was not accepted.
    #[error("too many writes are waiting for the database; nothing was saved, try again shortly")]
    Overloaded,
    /// The application is shutting down: the write was not accepted.
    #[error("saving is closed because the assistant is shutting down")]
    ShuttingDown,
    /// The write was accepted and will still be committed, but not within the wait.
    #[error("the write was accepted but its commit was not confirmed within {0:?}")]
    Unconfirmed(Duration),
    /// The database refused the rows (a constraint or bad data); retrying will not help.
    #[error("the database refused the data: {0}")]
    Rejected(String),
    /// The write was accepted but could not be committed before shutdown.
    #[error("the write could not be saved before shutdown")]
    Abandoned,
}

/// Tuning of the persistence actor; the application fills it from `PERSIST_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistenceSettings {
    /// Flush when a batch holds this many rows (`PERSIST_BATCH_MAX`).
    pub batch_max: usize,
    /// Flush this long after the first row of a batch (`PERSIST_FLUSH_MS`).
    pub flush: Duration,
    /// Rows accepted and not yet committed before senders wait (`PERSIST_QUEUE_MAX`).
    pub queue_max: usize,
    /// Time given to flush the queue on shutdown.
    pub shutdown_deadline: Duration,
    /// First retry delay after a transient failure; doubles up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// One `Store::apply` taking longer than this counts as a transient failure (the batch is
    /// retried; ids make the retry harmless if the first attempt did commit).
    pub apply_timeout: Duration,
    /// How long [`PersistenceHandle::write`] waits in total (for room in the queue, then for the
    /// commit).
    pub write_timeout: Duration,
}

impl Default for PersistenceSettings {
    fn default() -> Self {
        Self {
            batch_max: 512,
            flush: Duration::from_millis(20),
            queue_max: 65_536,
            shutdown_deadline: Duration::from_secs(10),
            retry_base: Duration::from_millis(50),
            retry_max: Duration::from_secs(5),
            apply_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(60),
        }
    }
}

/// What the shutdown flush achieved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Rows committed by the shutdown flush.
    pub written_rows: usize,
    /// Rows accepted but not committed before the deadline (logged as an error).
    pub abandoned_rows: usize,
}

pub enum PersistenceMsg {
    /// Rows to write; the permit holds their room in the queue until the commit.
    Write(QueuedWrite),
    /// The flush timer of batch `generation` fired.
    FlushDue { generation: u64 },
    /// The backoff before retrying the failed batch has passed.
    RetryDue,
    /// Flush everything accepted within `deadline`, answer, and stop.
    Shutdown {
        deadline: Duration,
        reply: RpcReplyPort<FlushReport>,
    },
}

/// One sender's rows and the way to tell it they are committed.
pub struct QueuedWrite {
    writes: Vec<Write>,
    ack: oneshot::Sender<Result<(), PersistError>>,
    permit: OwnedSemaphorePermit,
}

/// The cloneable handle through which actors (and the application) write. It hides the reply
/// channel and applies backpressure and the write timeout.
#[derive(Clone)]
pub struct PersistenceHandle {
    actor: ActorRef<PersistenceMsg>,
    permits: Arc<Semaphore>,
    queue_max: usize,
    write_timeout: Duration,
}

impl PersistenceHandle {
    /// Writes `writes` in order in one transaction (possibly together with other senders' rows)
    /// and returns after the commit. Waits while the queue is full (backpressure). Errors say
    /// whether the write was accepted (`Unconfirmed`, `Rejected`, `Abandoned`) or not
    /// (`Overloaded`, `ShuttingDown`).
    pub async fn write(&self, writes: Vec<Write>) -> Result<(), PersistError> {
        let deadline = Instant::now() + self.write_timeout;
        let receiver = self.submit(writes, deadline).await?;
        match tokio::time::timeout_at(deadline, receiver).await {
            Err(_) => Err(PersistError::Unconfirmed(self.write_timeout)),
            Ok(Err(_)) => Err(PersistError::Abandoned),
            Ok(Ok(result)) => result,
        }
    }

    /// Queues `writes` (waiting for room until `deadline`) and returns the receiver of the commit
    /// acknowledgement, without waiting for it. For callers that must not wait for the commit,
    /// such as the supervisor recording a dead letter from a side task.
    pub async fn submit(
        &self,
        writes: Vec<Write>,
        deadline: Instant,
    ) -> Result<oneshot::Receiver<Result<(), PersistError>>, PersistError> {
        let (ack, receiver) = oneshot::channel();
        if writes.is_empty() {
            let _ = ack.send(Ok(()));
            return Ok(receiver);
        }
        let needed = u32::try_from(writes.len().min(self.queue_max)).unwrap_or(u32::MAX);
        let acquire = self.permits.clone().acquire_many_owned(needed);
        let permit = match tokio::time::timeout_at(deadline, acquire).await {
            Err(_) => return Err(PersistError::Overloaded),
            Ok(Err(_closed)) => return Err(PersistError::ShuttingDown),
            Ok(Ok(permit)) => permit,
        };
        self.actor
            .cast(PersistenceMsg::Write(QueuedWrite {
                writes,
                ack,
                permit,
            }))
            .map_err(|_| PersistError::ShuttingDown)?;
        Ok(receiver)
    }

    /// [`PersistenceHandle::submit`] with the handle's own wait for room (`write_timeout`).
    pub async fn enqueue(
        &self,
        writes: Vec<Write>,
    ) -> Result<oneshot::Receiver<Result<(), PersistError>>, PersistError> {
        self.submit(writes, Instant::now() + self.write_timeout)
            .await
    }

    /// How long [`PersistenceHandle::write`] waits in total.
    pub fn write_timeout(&self) -> Duration {
        self.write_timeout
    }

    /// Rows accepted and not yet committed.
    pub fn queued_rows(&self) -> usize {
        self.queue_max
            .saturating_sub(self.permits.available_permits())
    }

    /// Closes the door to new writes, flushes everything accepted within `deadline` and stops
    /// the actor.
    pub async fn shutdown(&self, deadline: Duration) -> Result<FlushReport, PersistError> {
        self.permits.close();
        let grace = deadline + Duration::from_secs(1);
        match self
            .actor
            .call(
                |reply| PersistenceMsg::Shutdown { deadline, reply },
                Some(grace),
            )
            .await
        {
            Ok(ractor::rpc::CallResult::Success(report)) => Ok(report),
            Ok(_) | Err(_) => Err(PersistError::Abandoned),
        }
    }

    /// The actor behind the handle (for supervision and tests).
    pub fn actor(&self) -> &ActorRef<PersistenceMsg> {
        &self.actor
    }
}

pub struct PersistenceArgs {
    pub store: Arc<dyn Store>,
    pub settings: PersistenceSettings,
    /// Shared with the handles: the permits of the queue.
    pub permits: Arc<Semaphore>,
}

pub struct PersistenceState {
    store: Arc<dyn Store>,
    settings: PersistenceSettings,
    permits: Arc<Semaphore>,
    /// Accepted writes not yet in a batch.
    pending: Vec<QueuedWrite>,
    pending_rows: usize,
    first_pending_at: Option<Instant>,
    /// Identifies the flush timer of the current pending batch; bumped by each flush.
    generation: u64,
    timer_armed: bool,
    /// A batch that failed transiently and waits for its retry.
    retrying: Option<Batch>,
}

/// Rows being committed together, and who to tell.
struct Batch {
    rows: Vec<Write>,
    senders: Vec<BatchSender>,
    attempt: u32,
}

struct BatchSender {
    ack: oneshot::Sender<Result<(), PersistError>>,
    /// Released after the commit, making room in the queue.
    permit: OwnedSemaphorePermit,
    range: std::ops::Range<usize>,
}

pub struct PersistenceActor;

impl Actor for PersistenceActor {
    type Msg = PersistenceMsg;
    type State = PersistenceState;
    type Arguments = PersistenceArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(PersistenceState {
            store: args.store,
            settings: args.settings,
            permits: args.permits,
            pending: Vec::new(),
            pending_rows: 0,
            first_pending_at: None,
            generation: 0,
            timer_armed: false,
            retrying: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            PersistenceMsg::Write(write) => accept_write(&myself, state, write).await,
            PersistenceMsg::FlushDue { generation } => flush_due(&myself, state, generation).await,
            PersistenceMsg::RetryDue => retry_due(&myself, state).await,
            PersistenceMsg::Shutdown { deadline, reply } => {
                shutdown(&myself, state, deadline, reply).await
            }
        }
        Ok(())
    }
}

impl PersistenceActor {
    /// Spawns the actor (linked to `supervisor`, if any) and returns the handle writers use.
    pub async fn start(
        store: Arc<dyn Store>,
        settings: PersistenceSettings,
        supervisor: Option<ractor::ActorCell>,
    ) -> Result<PersistenceHandle, ractor::SpawnErr> {
        let permits = Arc::new(Semaphore::new(settings.queue_max.max(1)));
        let queue_max = settings.queue_max.max(1);
        let write_timeout = settings.write_timeout;
        let args = PersistenceArgs {
            store,
            settings,
            permits: permits.clone(),
        };
        let name = Some(unique_name("persistence"));
        let (actor, _join) = match supervisor {
            Some(supervisor) => {
                Actor::spawn_linked(name, PersistenceActor, args, supervisor).await?
            }
            None => Actor::spawn(name, PersistenceActor, args).await?,
        };
        Ok(PersistenceHandle {
            actor,
            permits,
            queue_max,
            write_timeout,
        })
    }
}

/// Actor names must be unique in the process; tests start several trees at once.
pub(crate) fn unique_name(base: &str) -> String {
    format!("{base}-{}", uuid::Uuid::now_v7().simple())
}

async fn accept_write(
    myself: &ActorRef<PersistenceMsg>,
    state: &mut PersistenceState,
    write: QueuedWrite,
) {
    state.pending_rows += write.writes.len();
    state.pending.push(write);
    state.first_pending_at.get_or_insert_with(Instant::now);
    report_queue(state);
    if state.retrying.is_some() {
        // The failed batch goes first; these rows wait for it.
        return;
    }
    if state.pending_rows >= state.settings.batch_max {
        flush_pending(myself, state).await;
    } else if !state.timer_armed {
        arm_flush_timer(myself, state);
    }
}

async fn flush_due(
    myself: &ActorRef<PersistenceMsg>,
    state: &mut PersistenceState,
    generation: u64,
) {
    if generation != state.generation {
        return;
    }
    state.timer_armed = false;
    if state.retrying.is_none() && !state.pending.is_empty() {
        flush_pending(myself, state).await;
    }
}

async fn retry_due(myself: &ActorRef<PersistenceMsg>, state: &mut PersistenceState) {
    if let Some(batch) = state.retrying.take() {
        commit(myself, state, batch).await;
    }
    // Writes that arrived during the outage go next.
    if state.retrying.is_none() && !state.pending.is_empty() {
        let overdue = state
            .first_pending_at
            .is_some_and(|first| first.elapsed() >= state.settings.flush);
        if state.pending_rows >= state.settings.batch_max || overdue {
            flush_pending(myself, state).await;
        } else if !state.timer_armed {
            arm_flush_timer(myself, state);
        }
    }
}

/// Commits batches from the pending writes while there is a full batch or an overdue one.
async fn flush_pending(myself: &ActorRef<PersistenceMsg>, state: &mut PersistenceState) {
    loop {
        if state.pending.is_empty() || state.retrying.is_some() {
            return;
        }
        let batch = take_batch(state);
        commit(myself, state, batch).await;
        if state.retrying.is_some() || state.pending.is_empty() {
            return;
        }
        let overdue = state
            .first_pending_at
            .is_some_and(|first| first.elapsed() >= state.settings.flush);
        if state.pending_rows < state.settings.batch_max && !overdue {
            if !state.timer_armed {
                arm_flush_timer(myself, state);
            }
            return;
        }
    }
}

/// Moves pending writes into a batch of about `batch_max` rows (a single larger write is kept
/// whole: its rows belong in one transaction).
fn take_batch(state: &mut PersistenceState) -> Batch {
    let mut take = 0;
    let mut rows = 0;
    for write in &state.pending {
        if take > 0 && rows + write.writes.len() > state.settings.batch_max {
            break;
        }
        rows += write.writes.len();
        take += 1;
    }
    let mut batch = Batch {
        rows: Vec::with_capacity(rows),
        senders: Vec::with_capacity(take),
        attempt: 0,
    };
    for write in state.pending.drain(..take) {
        let start = batch.rows.len();
        batch.rows.extend(write.writes);
        batch.senders.push(BatchSender {
            ack: write.ack,
            permit: write.permit,
            range: start..batch.rows.len(),
        });
    }
    state.pending_rows -= rows;
    state.first_pending_at = if state.pending.is_empty() {
        None
    } else {
        Some(Instant::now())
    };
    state.generation += 1;
    state.timer_armed = false;
    batch
}

fn arm_flush_timer(myself: &ActorRef<PersistenceMsg>, state: &mut PersistenceState) {
    state.timer_armed = true;
    let generation = state.generation;
    myself.send_after(state.settings.flush, move || PersistenceMsg::FlushDue {
        generation,
    });
}

/// One attempt at committing `batch`; on a transient failure it is kept for a retry.
async fn commit(myself: &ActorRef<PersistenceMsg>, state: &mut PersistenceState, mut batch: Batch) {
    let started = Instant::now();
    match apply_with_timeout(state, &batch.rows, state.settings.apply_timeout).await {
        Ok(()) => {
            metrics::histogram!(names::PERSISTENCE_FLUSH_SECONDS)
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!(names::PERSISTENCE_BATCH_ROWS).record(batch.rows.len() as f64);
            acknowledge(batch.senders, Ok(()));
        }
        Err(error) if error.is_transient() => {
            metrics::counter!(names::PERSISTENCE_RETRIES_TOTAL).increment(1);
            let delay = backoff(&state.settings, batch.attempt);
            tracing::warn!(rows = batch.rows.len(), attempt = batch.attempt + 1, ?delay, %error,
                "a batch could not be committed; it is kept and retried");
            batch.attempt += 1;
            state.retrying = Some(batch);
            myself.send_after(delay, || PersistenceMsg::RetryDue);
        }
        Err(error) => {
            tracing::error!(rows = batch.rows.len(), %error,
                "the database refused a batch; committing each sender's rows on their own");
            commit_each_sender(myself, state, batch).await;
        }
    }
    report_queue(state);
}

/// After a permanent failure of a batch: every sender's rows in their own transaction, so one
/// bad write does not fail the others.
async fn commit_each_sender(
    myself: &ActorRef<PersistenceMsg>,
    state: &mut PersistenceState,
    batch: Batch,
) {
    let Batch {
        rows,
        senders,
        attempt,
    } = batch;
    let mut remaining = senders.into_iter();
    while let Some(sender) = remaining.next() {
        let slice = &rows[sender.range.clone()];
        match apply_with_timeout(state, slice, state.settings.apply_timeout).await {
            Ok(()) => {
                let _ = sender.ack.send(Ok(()));
            }
            Err(error) if error.is_transient() => {
                // The database went away meanwhile: keep this sender and the rest for a retry.
                let mut kept = Batch {
                    rows: Vec::new(),
                    senders: Vec::new(),
                    attempt,
                };
                for sender in std::iter::once(sender).chain(remaining) {
                    let start = kept.rows.len();
                    kept.rows.extend_from_slice(&rows[sender.range.clone()]);
                    kept.senders.push(BatchSender {
                        range: start..kept.rows.len(),
                        ..sender
                    });
                }
                metrics::counter!(names::PERSISTENCE_RETRIES_TOTAL).increment(1);
                let delay = backoff(&state.settings, attempt);
                state.retrying = Some(Batch {
                    attempt: attempt + 1,
                    ..kept
                });
                myself.send_after(delay, || PersistenceMsg::RetryDue);
                return;
            }
            Err(error) => {
                let kinds: Vec<&str> = slice.iter().map(Write::kind).collect();
                tracing::error!(?kinds, %error, "the database refused a write; it is not saved");
                metrics::counter!(names::PERSISTENCE_FAILED_ROWS_TOTAL, "reason" => "rejected")
                    .increment(slice.len() as u64);
                let _ = sender
                    .ack
                    .send(Err(PersistError::Rejected(error.to_string())));
            }
        }
    }
}

async fn apply_with_timeout(
    state: &PersistenceState,
    rows: &[Write],
    limit: Duration,
) -> Result<(), StoreError> {
    match tokio::time::timeout(limit, state.store.apply(rows)).await {
        Ok(Ok(())) => {
            let meals = rows
                .iter()
                .filter(|row| matches!(row, Write::InsertFoodEntry(_)))
                .count();
            if meals > 0 {
                metrics::counter!(names::MEALS_SAVED_TOTAL).increment(meals as u64);
            }
            Ok(())
        }
        Ok(Err(error)) => Err(error),
        Err(_) => Err(StoreError::Unavailable(format!(
            "the database did not commit within {limit:?}"
        ))),
    }
}

fn acknowledge(senders: Vec<BatchSender>, result: Result<(), PersistError>) {
    for sender in senders {
        let _ = sender.ack.send(result.clone());
        drop(sender.permit);
    }
}

/// Exponential backoff (`retry_base` × 2^attempt, at most `retry_max`) with up to 50 % random
/// jitter, so that many processes do not retry in step.
fn backoff(settings: &PersistenceSettings, attempt: u32) -> Duration {
    Backoff {
        initial: settings.retry_base,
        max: settings.retry_max,
        jitter: Jitter::UpToHalfMore,
    }
    .delay(attempt)
}

fn report_queue(state: &PersistenceState) {
    let queued = state
        .settings
        .queue_max
        .max(1)
        .saturating_sub(state.permits.available_permits());
    metrics::gauge!(names::PERSISTENCE_QUEUE_ROWS).set(queued as f64);
}

/// Flushes everything accepted (including writes still in the mailbox ahead of this message,
/// which FIFO order has already handed to `accept_write`) until `deadline`, then stops.
async fn shutdown(
    myself: &ActorRef<PersistenceMsg>,
    state: &mut PersistenceState,
    deadline: Duration,
    reply: RpcReplyPort<FlushReport>,
) {
    state.permits.close();
    let deadline_at = Instant::now() + deadline;
    let mut report = FlushReport::default();
    let mut batches: Vec<Batch> = state.retrying.take().into_iter().collect();
    while !state.pending.is_empty() {
        batches.push(take_batch(state));
    }
    for mut batch in batches {
        loop {
            let remaining = deadline_at.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                abandon(&mut report, batch);
                break;
            }
            let limit = remaining.min(state.settings.apply_timeout);
            match apply_with_timeout(state, &batch.rows, limit).await {
                Ok(()) => {
                    report.written_rows += batch.rows.len();
                    acknowledge(batch.senders, Ok(()));
                    break;
                }
                Err(error) if error.is_transient() => {
                    metrics::counter!(names::PERSISTENCE_RETRIES_TOTAL).increment(1);
                    let delay = backoff(&state.settings, batch.attempt).min(remaining);
                    batch.attempt += 1;
                    tracing::warn!(%error, ?delay, "shutdown flush: retrying a batch");
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    tracing::error!(%error, "shutdown flush: the database refused a batch");
                    let rows = batch.rows.len();
                    commit_each_sender_now(state, batch, &mut report).await;
                    tracing::debug!(rows, "shutdown flush: batch split per sender");
                    break;
                }
            }
        }
    }
    if report.abandoned_rows > 0 {
        tracing::error!(
            rows = report.abandoned_rows,
            "shutdown: these accepted rows could not be written before the deadline and are lost"
        );
    } else {
        tracing::info!(
            rows = report.written_rows,
            "shutdown: persistence queue flushed"
        );
    }
    report_queue(state);
    let _ = reply.send(report);
    myself.stop(Some("shutdown".to_owned()));
}

/// The shutdown variant of [`commit_each_sender`]: no retries are scheduled, failures are
/// counted as abandoned.
async fn commit_each_sender_now(state: &PersistenceState, batch: Batch, report: &mut FlushReport) {
    for sender in batch.senders {
        let slice = &batch.rows[sender.range.clone()];
        match apply_with_timeout(state, slice, state.settings.apply_timeout).await {
            Ok(()) => {
                report.written_rows += slice.len();
                let _ = sender.ack.send(Ok(()));
            }
            Err(error) => {
                report.abandoned_rows += slice.len();
                metrics::counter!(names::PERSISTENCE_FAILED_ROWS_TOTAL, "reason" => "rejected")
                    .increment(slice.len() as u64);
                let _ = sender
                    .ack
                    .send(Err(PersistError::Rejected(error.to_string())));
            }
        }
    }
}

fn abandon(report: &mut FlushReport, batch: Batch) {
    report.abandoned_rows += batch.rows.len();
    metrics::counter!(names::PERSISTENCE_FAILED_ROWS_TOTAL, "reason" => "abandoned")
        .increment(batch.rows.len() as u64);
    acknowledge(batch.senders, Err(PersistError::Abandoned));
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{ConversationMessage, Role, UserId};
    use crate::testing::MemoryStore;

    const WAIT: Duration = Duration::from_secs(10);

    fn message(user: i64, n: usize) -> Write {
        Write::AppendMessage(ConversationMessage {
            id: Uuid::now_v7(),
            user_id: UserId(user),
            role: Role::User,
            content: format!("message {n}"),
            created_at: Utc::now(),
        })
    }

    async fn start(store: &Arc<MemoryStore>, settings: PersistenceSettings) -> PersistenceHandle {
        PersistenceActor::start(store.clone(), settings, None)
            .await
            .expect("starts")
    }

    fn stored_ids(store: &MemoryStore) -> Vec<Uuid> {
        store.with_data(|data| data.messages.values().flatten().map(|m| m.id).collect())
    }

    /// Writes `count` one-row writes concurrently; returns each sender's result.
    async fn write_concurrently(
        handle: &PersistenceHandle,
        count: usize,
    ) -> Vec<Result<(), PersistError>> {
        let tasks: Vec<_> = (0..count)
            .map(|n| {
                let handle = handle.clone();
                tokio::spawn(async move { handle.write(vec![message(1, n)]).await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("writer finished"));
        }
        results
    }

    #[tokio::test(start_paused = true)]
    async fn batches_by_size_and_by_time_after_the_first_row() {
        let store = Arc::new(MemoryStore::new());
        let settings = PersistenceSettings {
            batch_max: 10,
            flush: Duration::from_millis(20),
            ..Default::default()
        };
        let handle = start(&store, settings).await;
        let results = write_concurrently(&handle, 25).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(stored_ids(&store).len(), 25);
        // Two full batches by size, the rest by the timer.
        assert_eq!(store.commits(), 3);
        // One row alone waits for the timer, then commits by itself.
        let started = Instant::now();
        handle.write(vec![message(1, 99)]).await.expect("written");
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert_eq!(store.commits(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_and_every_row_lands_exactly_once() {
        let store = Arc::new(MemoryStore::new());
        store.fail_next_applies(4);
        let settings = PersistenceSettings {
            batch_max: 16,
            ..Default::default()
        };
        let handle = start(&store, settings).await;
        let results = write_concurrently(&handle, 100).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let ids = stored_ids(&store);
        assert_eq!(ids.len(), 100);
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            100,
            "no duplicates"
        );
        assert_eq!(store.committed_rows(), 100, "each batch committed once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_makes_senders_wait_and_drops_nothing() {
        let store = Arc::new(MemoryStore::new());
        store.hold_applies();
        let settings = PersistenceSettings {
            batch_max: 4,
            queue_max: 10,
            ..Default::default()
        };
        let handle = start(&store, settings).await;
        let writers: Vec<_> = (0..30)
            .map(|n| {
                let handle = handle.clone();
                tokio::spawn(async move { handle.write(vec![message(2, n)]).await })
            })
            .collect();
        let full = crate::testing::eventually(WAIT, || async { handle.queued_rows() == 10 });
        assert!(full.await, "the queue fills up to queue_max");
        tokio::time::sleep(Duration::from_secs(1)).await; // paused time: lets everything run
        assert_eq!(
            handle.queued_rows(),
            10,
            "no more than queue_max rows are accepted"
        );
        assert!(writers.iter().all(|w| !w.is_finished()), "senders wait");
        store.release_applies();
        for writer in writers {
            assert_eq!(writer.await.expect("writer finished"), Ok(()));
        }
        assert_eq!(stored_ids(&store).len(), 30);
        assert_eq!(handle.queued_rows(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_write_fails_only_its_sender() {
        let store = Arc::new(MemoryStore::new());
        store.refuse_rows(|row| matches!(row, Write::AppendMessage(m) if m.content == "message 3"));
        let handle = start(&store, PersistenceSettings::default()).await;
        let results = write_concurrently(&handle, 8).await;
        for (n, result) in results.iter().enumerate() {
            if n == 3 {
                assert!(
                    matches!(result, Err(PersistError::Rejected(_))),
                    "{result:?}"
                );
            } else {
                assert_eq!(result, &Ok(()), "write {n}");
            }
        }
        assert_eq!(stored_ids(&store).len(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_flushes_everything_accepted() {
        let store = Arc::new(MemoryStore::new());
        store.fail_next_applies(2);
        let settings = PersistenceSettings {
            flush: Duration::from_secs(3600),
            ..Default::default()
        };
        let handle = start(&store, settings).await;
        let mut acks = Vec::new();
        for n in 0..50 {
            let deadline = Instant::now() + WAIT;
            acks.push(
                handle
                    .submit(vec![message(3, n)], deadline)
                    .await
                    .expect("accepted"),
            );
        }
        let report = handle.shutdown(WAIT).await.expect("flushed");
        assert_eq!(
            report,
            FlushReport {
                written_rows: 50,
                abandoned_rows: 0
            }
        );
        for ack in acks {
            assert_eq!(ack.await, Ok(Ok(())));
        }
        assert_eq!(stored_ids(&store).len(), 50);
        assert_eq!(
            handle.write(vec![message(3, 99)]).await,
            Err(PersistError::ShuttingDown)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_reports_what_it_could_not_write_by_the_deadline() {
        let store = Arc::new(MemoryStore::new());
        store.fail_next_applies(usize::MAX);
        let settings = PersistenceSettings {
            flush: Duration::from_secs(3600),
            ..Default::default()
        };
        let handle = start(&store, settings).await;
        let deadline = Instant::now() + WAIT;
        let ack = handle
            .submit(vec![message(4, 0), message(4, 1)], deadline)
            .await
            .expect("accepted");
        let report = handle
            .shutdown(Duration::from_secs(2))
            .await
            .expect("reported");
        assert_eq!(
            report,
            FlushReport {
                written_rows: 0,
                abandoned_rows: 2
            }
        );
        assert_eq!(ack.await, Ok(Err(PersistError::Abandoned)));
    }
}
