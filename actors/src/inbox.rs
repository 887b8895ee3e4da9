//! The inbox: no message an edge accepted is lost or applied twice, whatever happens to the
//! process.
//!
//! An edge keeps every message it accepts in the store **before** it acknowledges it to the
//! sender (Telegram's `getUpdates` offset, the webhook's 200, the HTTP API's answer), in one
//! transaction per batch, keyed by the message id. The id comes from the edge's own key (the
//! Telegram update id, an `Idempotency-Key`), so a redelivery finds its entry and is ignored.
//! Then the message goes to the conversations as a durable [`Inbound`]:
//!
//! - each effect write of its turn is one numbered step, committed with a step marker
//!   ([`crate::ports::Write::InboxStep`]);
//! - the entry is marked done in the same transaction as the history of its turn (or with its
//!   dead letter when it fails);
//! - on start, entries not done are handed over again in the order they were accepted; the
//!   steps already committed are skipped, so a replay never logs a meal twice, and the person
//!   reads the answer again at most once per restart;
//! - an attempt is counted when a turn starts handling the entry
//!   ([`crate::ports::Write::InboxStarted`], committed before the agent runs), never for an
//!   entry that only waited: a crash loop while messages queue up turns none of them into a
//!   dead letter. An entry whose turn was started [`MAX_ATTEMPTS`] times without finishing (a
//!   message that brings the process down) becomes a dead letter instead of being replayed
//!   forever; its apology says what its turn kept ([`crate::conversation::kept::apology`]) and
//!   asks for the message again only when nothing was saved.
//!
//! Done entries are pruned after a retention period: Telegram restarts update ids at a random
//! value after a week without updates, so deduplication never relies on older rows.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::conversation::kept::apology;
use crate::conversation::{ConversationsHandle, SubmitError};
use crate::domain::DeadLetter;
use crate::inbound::{Durable, Inbound};
use crate::metrics as names;
use crate::ports::{InboxEntry, InboxOutcome, InboxRecord, Outbox, Store, StoreError, Write};

/// Messages from Telegram (polling and webhook).
pub const SOURCE_TELEGRAM: &str = "telegram";
/// Messages from `POST /api/v1/chat`.
pub const SOURCE_API: &str = "api";
/// Lines of `health-agent chat`.
pub const SOURCE_CHAT: &str = "chat";

/// Turns started on an entry without finishing before it becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 3;
/// How long a hand-over waits, in all, for room in a full intake.
const HAND_OVER_PATIENCE: Duration = Duration::from_secs(120);

/// The inbox of one process: the store that keeps it, the conversations it feeds, and which
/// entries this process has handed over. Clones share all three: make one per process.
#[derive(Clone)]
pub struct Inbox {
    store: Arc<dyn Store>,
    conversations: ConversationsHandle,
    handed: Arc<Mutex<HashMap<Uuid, Instant>>>,
}

/// Entries remembered as handed over before the oldest are forgotten (a day at least).
const HANDED_MAX: usize = 100_000;
const HANDED_KEEP: Duration = Duration::from_secs(24 * 60 * 60);

impl Inbox {
    pub fn new(store: Arc<dyn Store>, conversations: ConversationsHandle) -> Self {
        Self {
            store,
            conversations,
            handed: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Records that this process hands `id` over; false if it already did.
    fn mark_handed(&self, id: Uuid) -> bool {
        let mut handed = self.handed.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if handed.len() >= HANDED_MAX {
            handed.retain(|_, at| now.duration_since(*at) < HANDED_KEEP);
        }
        handed.insert(id, now).is_none()
    }

    /// Keeps `messages` in one transaction and returns those to hand over, marked durable, in
    /// their order. Only after this returns may the edge acknowledge the messages to their
    /// sender.
    ///
    /// A redelivery is dropped and counted, unless its entry is neither done nor handed over by
    /// this process: an earlier process that died between its inbox commit and the sender's
    /// acknowledgement (its commit may even land after this process replayed the inbox). Such
    /// an entry is handed over as a replay, skipping the steps already committed.
    pub async fn accept(
        &self,
        source: &'static str,
        messages: Vec<Inbound>,
    ) -> Result<Vec<Inbound>, StoreError> {
        if messages.is_empty() {
            return Ok(messages);
        }
        let entries: Vec<InboxEntry> = messages.iter().map(|m| m.to_inbox(source)).collect();
        let fresh = self.store.inbox_accept(&entries).await?;
        let seen_before: Vec<Uuid> = messages
            .iter()
            .zip(&fresh)
            .filter(|(_, new)| !**new)
            .map(|(message, _)| message.id)
            .collect();
        let mut kept: HashMap<Uuid, InboxRecord> = self
            .store
            .inbox_entries(&seen_before)
            .await?
            .into_iter()
            .map(|record| (record.entry.id, record))
            .collect();
        let mut accepted = Vec::with_capacity(messages.len());
        let mut resumed = Vec::new();
        for (mut message, new) in messages.into_iter().zip(fresh) {
            if new {
                self.mark_handed(message.id);
                message.durable = Some(Durable {
                    skip_steps: 0,
                    source,
                });
                accepted.push(message);
                continue;
            }
            match kept.remove(&message.id) {
                Some(record) if record.done_at.is_none() && self.mark_handed(message.id) => {
                    tracing::info!(inbox_id = %message.id, source, steps = record.entry.steps,
                        "resuming a message an earlier process kept and did not finish");
                    message.durable = Some(Durable {
                        skip_steps: record.entry.steps,
                        source,
                    });
                    resumed.push(message.id);
                    accepted.push(message);
                }
                _ => {
                    metrics::counter!(names::INBOX_DUPLICATES_TOTAL, "source" => source.to_owned())
                        .increment(1);
                    tracing::info!(inbox_id = %message.id, source, "ignored a message delivered twice");
                }
            }
        }
        let fresh_count = accepted.len() - resumed.len();
        if !resumed.is_empty() {
            let started = self.store.inbox_resume(&resumed).await?;
            accepted = with_committed_steps(accepted, &resumed, &started);
            metrics::counter!(names::INBOX_REPLAYED_TOTAL, "source" => source.to_owned())
                .increment(started.len() as u64);
        }
        metrics::counter!(names::INBOX_ACCEPTED_TOTAL, "source" => source.to_owned())
            .increment(fresh_count as u64);
        Ok(accepted)
    }

    /// Hands an accepted message to the conversations. A full intake is waited out (the message
    /// is safe in the inbox; waiting slows the edge down instead of dropping anything); a
    /// shutdown leaves it in the inbox for the next start.
    pub async fn hand_over(&self, message: Inbound) -> Result<(), SubmitError> {
        let deadline = tokio::time::Instant::now() + HAND_OVER_PATIENCE;
        loop {
            match self.conversations.submit(message.clone()).await {
                Err(SubmitError::Overloaded) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    /// The entries of `source` left from before this start, as messages answered through
    /// `reply`, oldest first (no attempt is counted here: the turn counts its own). Entries
    /// whose turn was started [`MAX_ATTEMPTS`] times already, or unreadable, become dead
    /// letters (the person reads the apology) and are not returned.
    pub async fn pending(
        &self,
        source: &'static str,
        reply: Arc<dyn Outbox>,
    ) -> Result<Vec<Inbound>, StoreError> {
        // All at once: a handed-over entry stays pending until its turn ends, so a second page
        // asked for by count would return the first one again.
        let pending = self.store.inbox_pending(source, usize::MAX).await?;
        let mut messages = Vec::with_capacity(pending.len());
        let mut retry = Vec::with_capacity(pending.len());
        for entry in pending {
            match Inbound::from_inbox(&entry, source, reply.clone()) {
                Some(message) if entry.attempts < MAX_ATTEMPTS => {
                    if self.mark_handed(entry.id) {
                        retry.push(entry.id);
                        messages.push(message);
                    }
                }
                readable => {
                    let reason = if readable.is_some() {
                        format!("handling was started {MAX_ATTEMPTS} times and never finished")
                    } else {
                        "the stored message could not be read back".to_owned()
                    };
                    self.give_up(&entry, &reason, reply.as_ref()).await?;
                }
            }
        }
        let started = self.store.inbox_resume(&retry).await?;
        let messages = with_committed_steps(messages, &retry, &started);
        metrics::counter!(names::INBOX_REPLAYED_TOTAL, "source" => source.to_owned())
            .increment(messages.len() as u64);
        if !messages.is_empty() {
            tracing::info!(
                source,
                count = messages.len(),
                "handling messages accepted before the restart"
            );
        }
        Ok(messages)
    }

    /// One entry, done or not.
    pub async fn entry(&self, id: Uuid) -> Result<Option<crate::ports::InboxRecord>, StoreError> {
        self.store.inbox_entry(id).await
    }

    /// [`Inbox::pending`], each handed over in order. Returns how many were.
    pub async fn replay(
        &self,
        source: &'static str,
        reply: Arc<dyn Outbox>,
    ) -> Result<usize, ReplayError> {
        let messages = self.pending(source, reply).await?;
        let count = messages.len();
        for message in messages {
            self.hand_over(message).await?;
        }
        Ok(count)
    }

    async fn give_up(
        &self,
        entry: &InboxEntry,
        reason: &str,
        reply: &dyn Outbox,
    ) -> Result<(), StoreError> {
        // Read again after any step still in flight on the entry has landed: the apology says
        // what the entry's turns kept.
        let resumed = self.store.inbox_resume(&[entry.id]).await?;
        if resumed.is_empty() {
            tracing::info!(inbox_id = %entry.id, "a kept message was finished meanwhile");
            return Ok(());
        }
        let (steps, kept) = match self.store.inbox_entry(entry.id).await? {
            Some(record) => (record.entry.steps, record.entry.kept),
            None => (entry.steps, entry.kept.clone()),
        };
        let notice = apology(steps, &kept);
        tracing::error!(inbox_id = %entry.id, user_id = %entry.user_id, reason, steps, "an inbox entry becomes a dead letter");
        metrics::counter!(names::DEAD_LETTERS_TOTAL).increment(1);
        let now = Utc::now();
        let letter = DeadLetter {
            id: uuid::Uuid::new_v5(&entry.id, b"dead-letter"),
            user_id: entry.user_id,
            message: serde_json::json!({
                "inbound_id": entry.id,
                "chat": entry.chat,
                "received_at": entry.received_at,
                "content": entry.content,
            }),
            error: reason.to_owned(),
            created_at: now,
        };
        self.store
            .apply(&[
                Write::InsertDeadLetter(letter),
                Write::InboxDone {
                    id: entry.id,
                    outcome: InboxOutcome::Failed,
                    replies: vec![notice.clone()],
                    at: now,
                },
            ])
            .await?;
        if let Err(error) = reply
            .send_text(crate::domain::ChatId(entry.chat), &notice)
            .await
        {
            crate::conversation::agent::count_outbox_error("notice", &error);
        }
        Ok(())
    }

    /// Every `period`: the backlog gauges, and done entries older than `retention` deleted.
    pub fn spawn_maintenance(&self, period: Duration, retention: Duration) -> JoinHandle<()> {
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                maintain(store.as_ref(), retention).await;
            }
        })
    }
}

/// `messages` with each of `replayed` given the step count the store reported when it started
/// the entry again (`started`); a replayed message the store did not start (finished meanwhile)
/// is dropped. Messages not in `replayed` pass unchanged.
fn with_committed_steps(
    messages: Vec<Inbound>,
    replayed: &[Uuid],
    started: &[(Uuid, u32)],
) -> Vec<Inbound> {
    let replayed: HashSet<Uuid> = replayed.iter().copied().collect();
    let started: HashMap<Uuid, u32> = started.iter().copied().collect();
    messages
        .into_iter()
        .filter_map(|mut message| {
            if !replayed.contains(&message.id) {
                return Some(message);
            }
            let Some(&steps) = started.get(&message.id) else {
                tracing::info!(inbox_id = %message.id, "a kept message was finished meanwhile");
                return None;
            };
            message.durable = message.durable.map(|durable| Durable {
                skip_steps: steps,
                ..durable
            });
            Some(message)
        })
        .collect()
}

/// Sets the backlog gauges (`health_inbox_pending`, the oldest entry's age) from the store:
/// each `/metrics` scrape calls it, so they are current when read.
pub async fn refresh_backlog_gauges(store: &dyn Store) {
    match store.inbox_backlog().await {
        Ok(backlog) => {
            metrics::gauge!(names::INBOX_PENDING).set(backlog.pending as f64);
            let age = backlog
                .oldest
                .map(|oldest| (Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            metrics::gauge!(names::INBOX_OLDEST_AGE_SECONDS).set(age);
        }
        Err(error) => tracing::warn!(%error, "could not read the inbox backlog"),
    }
}

/// One round of [`Inbox::spawn_maintenance`].
pub async fn maintain(store: &dyn Store, retention: Duration) {
    refresh_backlog_gauges(store).await;
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(3));
    match store.inbox_prune(Utc::now() - retention).await {
        Ok(0) => {}
        Ok(pruned) => {
            metrics::counter!(names::INBOX_PRUNED_TOTAL).increment(pruned);
            tracing::debug!(pruned, "pruned handled inbox entries");
        }
        Err(error) => tracing::warn!(%error, "could not prune the inbox"),
    }
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Submit(#[from] SubmitError),
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::conversation::{Agent, AgentError, TurnContext, APOLOGY};
    use crate::domain::{ChatId, UserId, WeightLog};
    use crate::ports::SystemClock;
    use crate::root::{Root, RootArgs, RootHandle, RootSettings};
    use crate::testing::{MemoryStore, RecordingOutbox};

    const WAIT: Duration = Duration::from_secs(10);
    const PERSON: UserId = UserId(42);

    /// Logs a weight under a fresh id (an effect that is not idempotent by itself), then says
    /// so: a second handling of the same message would log a second weight.
    struct WeighingAgent;

    #[async_trait]
    impl Agent for WeighingAgent {
        async fn handle(
            &self,
            ctx: &mut TurnContext<'_>,
            inbound: &Inbound,
        ) -> Result<(), AgentError> {
            let weight = WeightLog {
                id: Uuid::now_v7(),
                user_id: inbound.user,
                kg: 70.5,
                logged_at: ctx.now(),
            };
            ctx.write(vec![Write::InsertWeight(weight)]).await?;
            let _ = ctx.reply("Logged 70.5 kg.").await;
            Ok(())
        }
    }

    async fn tree(store: &Arc<MemoryStore>) -> (RootHandle, Inbox) {
        let root = Root::start(RootArgs {
            store: store.clone(),
            agent: Arc::new(WeighingAgent),
            clock: Arc::new(SystemClock),
            settings: RootSettings::default(),
            vision: crate::vision::VisionArgs::default(),
        })
        .await
        .expect("the tree starts");
        let inbox = Inbox::new(store.clone(), root.conversations());
        (root, inbox)
    }

    fn message(outbox: &Arc<RecordingOutbox>, update: u128) -> Inbound {
        let mut message = Inbound::text(PERSON, ChatId(PERSON.0), "70.5 kg", outbox.clone());
        message.id = Uuid::from_u128(update);
        message
    }

    async fn done(store: &MemoryStore, id: Uuid) -> bool {
        store
            .wait_until(WAIT, |data| {
                data.inbox
                    .iter()
                    .any(|r| r.entry.id == id && r.done_at.is_some())
            })
            .await
    }

    fn weights(store: &MemoryStore) -> usize {
        store.with_data(|data| data.weights.len())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_kept_before_a_crash_is_handled_once_after_the_restart() {
        let store = Arc::new(MemoryStore::new());
        let outbox = RecordingOutbox::new();
        let (first, inbox) = tree(&store).await;
        let kept = inbox
            .accept(SOURCE_TELEGRAM, vec![message(&outbox, 1)])
            .await
            .unwrap();
        assert_eq!(kept.len(), 1);
        assert!(kept[0].durable.is_some());
        // The process dies before handing it over.
        first.shutdown(WAIT).await;
        assert_eq!(weights(&store), 0);

        let (second, inbox) = tree(&store).await;
        let reply: Arc<dyn Outbox> = outbox.clone();
        assert_eq!(inbox.replay(SOURCE_TELEGRAM, reply).await.unwrap(), 1);
        assert!(done(&store, Uuid::from_u128(1)).await);
        assert_eq!(weights(&store), 1);
        assert_eq!(outbox.texts_to(ChatId(PERSON.0)), ["Logged 70.5 kg."]);
        // Telegram delivering the same update again changes nothing.
        let again = inbox
            .accept(SOURCE_TELEGRAM, vec![message(&outbox, 1)])
            .await
            .unwrap();
        assert!(again.is_empty());
        let reply: Arc<dyn Outbox> = outbox.clone();
        assert_eq!(inbox.replay(SOURCE_TELEGRAM, reply).await.unwrap(), 0);
        second.shutdown(WAIT).await;
        assert_eq!(weights(&store), 1);
        let record = store.with_data(|data| data.inbox[0].clone());
        assert_eq!(record.outcome, Some(InboxOutcome::Answered));
        assert_eq!(record.replies, ["Logged 70.5 kg."]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replay_skips_the_effects_committed_before_the_crash_and_answers_once() {
        let store = Arc::new(MemoryStore::new());
        let outbox = RecordingOutbox::new();
        let (root, inbox) = tree(&store).await;
        let id = Uuid::from_u128(2);
        inbox
            .accept(SOURCE_TELEGRAM, vec![message(&outbox, 2)])
            .await
            .unwrap();
        // The first handling committed its weight (step 1), then the process died before the
        // reply and the history.
        let earlier = WeightLog {
            id: Uuid::now_v7(),
            user_id: PERSON,
            kg: 70.5,
            logged_at: Utc::now(),
        };
        store
            .apply(&[
                Write::InsertWeight(earlier),
                Write::InboxStep {
                    id,
                    step: 1,
                    kept: vec!["your weight of 70.5 kg".into()],
                },
            ])
            .await
            .unwrap();
        let restarted = Inbox::new(store.clone(), root.conversations());
        let reply: Arc<dyn Outbox> = outbox.clone();
        assert_eq!(restarted.replay(SOURCE_TELEGRAM, reply).await.unwrap(), 1);
        assert!(done(&store, id).await);
        root.shutdown(WAIT).await;
        assert_eq!(weights(&store), 1, "the weight is not logged twice");
        assert_eq!(outbox.texts_to(ChatId(PERSON.0)), ["Logged 70.5 kg."]);
        assert_eq!(store.with_data(|data| data.inbox[0].entry.attempts), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_kept_message_an_earlier_process_left_unfinished_is_resumed_on_redelivery() {
        let store = Arc::new(MemoryStore::new());
        let outbox = RecordingOutbox::new();
        let (root, dead) = tree(&store).await;
        // Kept by a process that died before acknowledging it (and after this one replayed).
        dead.accept(SOURCE_TELEGRAM, vec![message(&outbox, 3)])
            .await
            .unwrap();
        let alive = Inbox::new(store.clone(), root.conversations());
        let resumed = alive
            .accept(SOURCE_TELEGRAM, vec![message(&outbox, 3)])
            .await
            .unwrap();
        assert_eq!(resumed.len(), 1, "resumed, not ignored");
        for message in resumed {
            alive.hand_over(message).await.unwrap();
        }
        assert!(done(&store, Uuid::from_u128(3)).await);
        // Handed over once by this process: a further redelivery is a duplicate.
        let again = alive
            .accept(SOURCE_TELEGRAM, vec![message(&outbox, 3)])
            .await
            .unwrap();
        assert!(again.is_empty());
        root.shutdown(WAIT).await;
        assert_eq!(weights(&store), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_that_keeps_killing_the_process_becomes_a_dead_letter() {
        let store = Arc::new(MemoryStore::new());
        let outbox = RecordingOutbox::new();
        let (root, inbox) = tree(&store).await;
        let id = Uuid::from_u128(4);
        inbox
            .accept(SOURCE_TELEGRAM, vec![message(&outbox, 4)])
            .await
            .unwrap();
        // Three turns started on it, and the process died in each.
        for _ in 0..MAX_ATTEMPTS {
            store.apply(&[Write::InboxStarted { id }]).await.unwrap();
        }
        let restarted = Inbox::new(store.clone(), root.conversations());
        let reply: Arc<dyn Outbox> = outbox.clone();
        assert_eq!(restarted.replay(SOURCE_TELEGRAM, reply).await.unwrap(), 0);
        root.shutdown(WAIT).await;
        assert_eq!(weights(&store), 0);
        let (record, letters) =
            store.with_data(|data| (data.inbox[0].clone(), data.dead_letters.len()));
        assert_eq!(record.outcome, Some(InboxOutcome::Failed));
        assert_eq!(letters, 1);
        assert_eq!(outbox.texts_to(ChatId(PERSON.0)), [APOLOGY]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_that_only_waited_through_a_crash_loop_is_never_a_dead_letter() {
        let store = Arc::new(MemoryStore::new());
        let outbox = RecordingOutbox::new();
        let (root, inbox) = tree(&store).await;
        let id = Uuid::from_u128(7);
        inbox
            .accept(SOURCE_TELEGRAM, vec![message(&outbox, 7)])
            .await
            .unwrap();
        // Many starts that each read the inbox and died before the turn began.
        for _ in 0..=MAX_ATTEMPTS * 2 {
            let restarted = Inbox::new(store.clone(), root.conversations());
            let reply: Arc<dyn Outbox> = outbox.clone();
            let pending = restarted.pending(SOURCE_TELEGRAM, reply).await.unwrap();
            assert_eq!(pending.len(), 1, "still replayed, not given up");
        }
        assert_eq!(store.with_data(|data| data.inbox[0].entry.attempts), 0);
        let restarted = Inbox::new(store.clone(), root.conversations());
        let reply: Arc<dyn Outbox> = outbox.clone();
        assert_eq!(restarted.replay(SOURCE_TELEGRAM, reply).await.unwrap(), 1);
        assert!(done(&store, id).await);
        root.shutdown(WAIT).await;
        let (record, letters) =
            store.with_data(|data| (data.inbox[0].clone(), data.dead_letters.len()));
        assert_eq!(record.outcome, Some(InboxOutcome::Answered));
        assert_eq!(record.entry.attempts, 1, "its one turn is counted");
        assert_eq!(letters, 0);
        assert_eq!(weights(&store), 1);
        assert_eq!(outbox.texts_to(ChatId(PERSON.0)), ["Logged 70.5 kg."]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_letter_whose_turn_saved_something_says_what_and_asks_for_nothing_again() {
        let store = Arc::new(MemoryStore::new());
        let outbox = RecordingOutbox::new();
        let (root, inbox) = tree(&store).await;
        let id = Uuid::from_u128(8);
        inbox
            .accept(SOURCE_TELEGRAM, vec![message(&outbox, 8)])
            .await
            .unwrap();
        // Its turns saved the weight (step 1), then the process died, three times.
        let weight = WeightLog {
            id: Uuid::now_v7(),
            user_id: PERSON,
            kg: 70.5,
            logged_at: Utc::now(),
        };
        let kept = crate::conversation::kept::kept_by(&[Write::InsertWeight(weight.clone())]);
        store
            .apply(&[
                Write::InsertWeight(weight),
                Write::InboxStep { id, step: 1, kept },
            ])
            .await
            .unwrap();
        for _ in 0..MAX_ATTEMPTS {
            store.apply(&[Write::InboxStarted { id }]).await.unwrap();
        }
        let restarted = Inbox::new(store.clone(), root.conversations());
        let reply: Arc<dyn Outbox> = outbox.clone();
        assert_eq!(restarted.replay(SOURCE_TELEGRAM, reply).await.unwrap(), 0);
        root.shutdown(WAIT).await;
        let texts = outbox.texts_to(ChatId(PERSON.0));
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert!(
            texts[0].contains("I did save your weight of 70.5 kg"),
            "{texts:?}"
        );
        assert!(!texts[0].contains("send it again"), "{texts:?}");
        let record = store.with_data(|data| data.inbox[0].clone());
        assert_eq!(record.outcome, Some(InboxOutcome::Failed));
        assert_eq!(record.replies, texts);
    }

    /// The names the stores write are the ones deployed databases already hold.
    #[test]
    fn outcomes_are_stored_by_their_names() {
        let named = [
            (InboxOutcome::Answered, "answered"),
            (InboxOutcome::Failed, "failed"),
            (InboxOutcome::Busy, "busy"),
            (InboxOutcome::Unavailable, "unavailable"),
        ];
        for (outcome, name) in named {
            assert_eq!(outcome.as_str(), name);
            assert_eq!(InboxOutcome::parse(name), Some(outcome));
        }
        assert_eq!(InboxOutcome::parse("shutting_down"), None);
    }

    #[tokio::test]
    async fn maintenance_prunes_only_old_handled_entries() {
        let store = MemoryStore::new();
        let outbox = RecordingOutbox::new();
        let old = message(&outbox, 5).to_inbox(SOURCE_API);
        let open = message(&outbox, 6).to_inbox(SOURCE_API);
        store.inbox_accept(&[old, open]).await.unwrap();
        let long_ago = Utc::now() - chrono::Duration::days(10);
        store
            .apply(&[Write::InboxDone {
                id: Uuid::from_u128(5),
                outcome: InboxOutcome::Answered,
                replies: Vec::new(),
                at: long_ago,
            }])
            .await
            .unwrap();
        maintain(&store, Duration::from_secs(3 * 24 * 3600)).await;
        let left: Vec<Uuid> =
            store.with_data(|data| data.inbox.iter().map(|r| r.entry.id).collect());
        assert_eq!(left, [Uuid::from_u128(6)], "the entry not handled stays");
        assert_eq!(store.inbox_backlog().await.unwrap().pending, 1);
    }
}
