//! A person's bounded mailbox, shared by the conversation supervisor (which fills it) and the
//! person's conversation actor (which empties it, one turn at a time).
//!
//! ractor mailboxes are unbounded and die with their actor. This one is bounded (past
//! `mailbox_max` the supervisor answers "one moment") and outlives the actor: when an actor fails
//! mid-turn, the supervisor finds the message that was being handled (`in_flight`, for the apology
//! and the dead letter) and the restarted actor picks up the messages still queued. The actor is
//! woken by one `Wake` per run of messages (`scheduled`), so a busy person costs one ractor
//! message per turn at most. The lock is never held across an await.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::TurnOutcome;
use crate::inbound::Inbound;

/// A message waiting for its turn.
pub(crate) struct Queued {
    pub inbound: Arc<Inbound>,
    pub accepted_at: Instant,
    /// Told how the message ended, for callers that wait (the HTTP API).
    pub done: Option<oneshot::Sender<TurnOutcome>>,
    /// The message's `turn` span (see [`super::turn_span`]).
    pub span: tracing::Span,
}

impl Queued {
    pub fn finish(self, outcome: TurnOutcome) {
        if let Some(done) = self.done {
            let _ = done.send(outcome);
        }
    }
}

pub(crate) struct UserMailbox {
    inner: Mutex<Inner>,
}

struct Inner {
    queue: VecDeque<Queued>,
    in_flight: Option<Queued>,
    /// A `Wake` is on its way or a turn is running: no new `Wake` needed.
    scheduled: bool,
    /// The "one moment" notice was sent during the current turn (one per turn is enough).
    busy_notified: bool,
    /// The person's stored data changed outside the conversation: reload before the next turn.
    stale: bool,
    last_active: Instant,
}

/// What the supervisor must do after offering a message.
pub(crate) enum Offer {
    /// Queued; the actor is idle and must be woken.
    Wake,
    /// Queued behind others; the actor will get to it.
    Queued,
    /// Full: the message is handed back, and whether to send the "one moment" notice.
    Full { message: Queued, notify: bool },
}

impl UserMailbox {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                in_flight: None,
                scheduled: false,
                busy_notified: false,
                stale: false,
                last_active: Instant::now(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `message` unless `max` messages already wait. Returns the depth before it too.
    pub fn offer(&self, message: Queued, max: usize) -> (Offer, usize) {
        let mut inner = self.lock();
        let depth = inner.queue.len();
        if depth >= max {
            let notify = !inner.busy_notified;
            inner.busy_notified = true;
            return (Offer::Full { message, notify }, depth);
        }
        inner.queue.push_back(message);
        if inner.scheduled {
            (Offer::Queued, depth)
        } else {
            inner.scheduled = true;
            (Offer::Wake, depth)
        }
    }

    /// Starts the next turn: the first queued message becomes `in_flight`. `None` when the queue
    /// is empty (the actor goes idle and the next offer wakes it).
    pub fn begin_turn(&self) -> Option<(Arc<Inbound>, Instant, tracing::Span)> {
        let mut inner = self.lock();
        match inner.queue.pop_front() {
            Some(message) => {
                let started = (
                    message.inbound.clone(),
                    message.accepted_at,
                    message.span.clone(),
                );
                inner.in_flight = Some(message);
                inner.busy_notified = false;
                Some(started)
            }
            None => {
                inner.scheduled = false;
                None
            }
        }
    }

    /// Ends the turn of the `in_flight` message. Returns whether more messages wait (the actor
    /// then wakes itself again).
    pub fn finish_turn(&self, outcome: TurnOutcome) -> bool {
        let mut inner = self.lock();
        if let Some(message) = inner.in_flight.take() {
            message.finish(outcome);
        }
        inner.last_active = Instant::now();
        if inner.queue.is_empty() {
            inner.scheduled = false;
            false
        } else {
            true
        }
    }

    /// After a failure: the message whose turn failed, if the actor was in a turn.
    pub fn take_in_flight(&self) -> Option<Queued> {
        let mut inner = self.lock();
        inner.last_active = Instant::now();
        inner.in_flight.take()
    }

    /// The actor is gone (failed or stopped): nobody is scheduled until a new actor is woken.
    pub fn mark_stopped(&self) {
        self.lock().scheduled = false;
    }

    /// For a restarted actor: whether it must be woken because messages wait.
    pub fn reschedule(&self) -> bool {
        let mut inner = self.lock();
        inner.scheduled = !inner.queue.is_empty();
        inner.scheduled
    }

    /// Removes every queued (not started) message.
    pub fn drain_queued(&self) -> Vec<Queued> {
        let mut inner = self.lock();
        inner.queue.drain(..).collect()
    }

    /// Nothing queued, nothing running, and quiet for `idle`.
    pub fn is_idle(&self, now: Instant, idle: std::time::Duration) -> bool {
        let inner = self.lock();
        inner.queue.is_empty()
            && inner.in_flight.is_none()
            && !inner.scheduled
            && now.saturating_duration_since(inner.last_active) >= idle
    }

    /// The person's stored data changed elsewhere (the HTTP API): the next turn reloads it.
    pub fn mark_stale(&self) {
        self.lock().stale = true;
    }

    /// Whether the data changed since the last call.
    pub fn take_stale(&self) -> bool {
        std::mem::take(&mut self.lock().stale)
    }

    pub fn depth(&self) -> usize {
        self.lock().queue.len()
    }
}
