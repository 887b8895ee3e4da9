//! In-process fakes of the ports, for the tests of the core, the integration tests and the
//! benchmarks: an in-memory [`Store`] (with switches to fail or hold commits), a recording
//! [`Outbox`] and a manual [`Clock`].
//!
//! They are not actors and are supervised by no one; they are plain shared objects. They are
//! compiled into the library (not only under `cfg(test)`) because `benches/` and `tests/` use them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::domain::{
    Achievement, ConversationMessage, DeadLetter, FoodEntry, Goals, Memory, Profile, Reminder,
    ScoredMemory, Streak, User, UserId, VisionEstimate, WeightLog, XpEvent,
};
use crate::domain::{ChatId, MessageId};
use crate::ports::{
    Button, CachedFood, Clock, InboxBacklog, InboxEntry, InboxRecord, Outbox, OutboxError,
    SentMessage, Store, StoreError, Write,
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything the in-memory store keeps, keyed by id so that re-applying a batch changes
/// nothing.
#[derive(Debug, Default, Clone)]
pub struct MemoryData {
    pub users: HashMap<UserId, User>,
    pub food_entries: HashMap<Uuid, FoodEntry>,
    /// Per user, in insertion order; ids are unique.
    pub messages: HashMap<UserId, Vec<ConversationMessage>>,
    /// Per user, the ids of their messages (per person, so that no single table grows with
    /// everyone's history: the benchmarks use this store too).
    pub message_ids: HashMap<UserId, std::collections::HashSet<Uuid>>,
    pub memories: HashMap<Uuid, Memory>,
    pub weights: HashMap<Uuid, WeightLog>,
    pub reminders: HashMap<Uuid, Reminder>,
    pub xp: HashMap<Uuid, XpEvent>,
    pub streaks: HashMap<(UserId, String), Streak>,
    pub achievements: HashMap<(UserId, String), Achievement>,
    pub dead_letters: HashMap<Uuid, DeadLetter>,
    pub food_cache: HashMap<(String, String), CachedFood>,
    /// Keyed by (entry, item, agent).
    pub vision_estimates: HashMap<(Uuid, String, String), VisionEstimate>,
    /// In the order entries were accepted.
    pub inbox: Vec<InboxRecord>,
}

impl MemoryData {
    fn apply_one(&mut self, write: &Write) {
        match write {
            Write::UpsertUser(user) => {
                let entry = self.users.entry(user.id).or_insert_with(|| user.clone());
                // created_at keeps the earliest known, as in the real stores.
                let created_at = entry.created_at.min(user.created_at);
                *entry = User {
                    created_at,
                    ..user.clone()
                };
            }
            Write::InsertFoodEntry(entry) => {
                self.food_entries
                    .entry(entry.id)
                    .or_insert_with(|| entry.clone());
            }
            Write::UpdateFoodEntry(entry) => {
                if let Some(existing) = self
                    .food_entries
                    .get_mut(&entry.id)
                    .filter(|existing| existing.user_id == entry.user_id)
                {
                    // Only its owner's update applies; a correction never moves created_at, as in the real stores.
                    *existing = FoodEntry {
                        created_at: existing.created_at,
                        ..entry.clone()
                    };
                }
            }
            Write::DeleteFoodEntry { user_id, id } => {
                if self
                    .food_entries
                    .get(id)
                    .is_some_and(|e| e.user_id == *user_id)
                {
                    self.food_entries.remove(id);
                }
            }
            Write::AppendMessage(message) => {
                let ids = self.message_ids.entry(message.user_id).or_default();
                if ids.insert(message.id) {
                    self.messages
                        .entry(message.user_id)
                        .or_default()
                        .push(message.clone());
                }
            }
            Write::InsertMemory(memory) => {
                self.memories
                    .entry(memory.id)
                    .or_insert_with(|| memory.clone());
            }
            Write::DeleteMemory { user_id, id } => {
                if self.memories.get(id).is_some_and(|m| m.user_id == *user_id) {
                    self.memories.remove(id);
                }
            }
            Write::InsertWeight(weight) => {
                self.weights
                    .entry(weight.id)
                    .or_insert_with(|| weight.clone());
            }
            Write::UpsertReminder(reminder) => {
                self.reminders.insert(reminder.id, reminder.clone());
            }
            Write::DeleteReminder { user_id, id } => {
                if self
                    .reminders
                    .get(id)
                    .is_some_and(|r| r.user_id == *user_id)
                {
                    self.reminders.remove(id);
                }
            }
            Write::InsertXp(event) => {
                self.xp.entry(event.id).or_insert_with(|| event.clone());
            }
            Write::UpsertStreak(streak) => {
                self.streaks
                    .insert((streak.user_id, streak.domain.clone()), streak.clone());
            }
            Write::InsertAchievement(achievement) => {
                self.achievements
                    .entry((achievement.user_id, achievement.code.clone()))
                    .or_insert_with(|| achievement.clone());
            }
            Write::InsertDeadLetter(letter) => {
                self.dead_letters
                    .entry(letter.id)
                    .or_insert_with(|| letter.clone());
            }
            Write::InboxStarted { id } => {
                if let Some(record) = self
                    .inbox
                    .iter_mut()
                    .find(|r| r.entry.id == *id && r.done_at.is_none())
                {
                    record.entry.attempts += 1;
                }
            }
            Write::InboxStep { id, step, kept } => {
                if let Some(record) = self.inbox.iter_mut().find(|r| r.entry.id == *id) {
                    if *step > record.entry.steps {
                        record.entry.kept.extend(kept.iter().cloned());
                    }
                    record.entry.steps = record.entry.steps.max(*step);
                }
            }
            Write::InboxDone {
                id,
                outcome,
                replies,
                at,
            } => {
                if let Some(record) = self
                    .inbox
                    .iter_mut()
                    .find(|r| r.entry.id == *id && r.done_at.is_none())
                {
                    record.done_at = Some(*at);
                    record.outcome = Some(*outcome);
                    record.replies = replies.clone();
                }
            }
        }
    }
}

/// Why the real stores would refuse `write` (their checks before writing and their schema's
/// constraints), so that the fake refuses the same batches: text with NUL characters, numbers
/// that are not finite, embeddings that are empty, too long or not finite, weights out of
/// range, counts beyond the schema's integers.
fn refusal(write: &Write) -> Option<String> {
    let kind = write.kind();
    let nul = |text: &str| text.contains('\0');
    let finite = |values: &[f64]| values.iter().all(|value| value.is_finite());
    let refused = match write {
        Write::UpsertUser(user) => {
            let profile = &user.profile;
            let goals = &user.goals;
            [&profile.display_name, &profile.language]
                .into_iter()
                .flatten()
                .any(|text| nul(text))
                || nul(&user.timezone)
                || !finite(&[profile.height_cm, profile.weight_kg].map(|v| v.unwrap_or(0.0)))
                || !finite(
                    &[goals.kcal, goals.protein_g, goals.carbs_g, goals.fat_g]
                        .map(|v| v.unwrap_or(0.0)),
                )
        }
        Write::InsertFoodEntry(entry) | Write::UpdateFoodEntry(entry) => {
            let totals =
                |n: &crate::domain::Nutrients| [n.kcal, n.protein_g, n.carbs_g, n.fat_g, n.fiber_g];
            nul(&entry.description)
                || entry.photo_path.as_deref().is_some_and(nul)
                || !finite(&totals(&entry.total))
                || entry.items.iter().any(|item| {
                    nul(&item.input)
                        || nul(&item.name)
                        || !finite(&[item.grams, item.confidence])
                        || !finite(&totals(&item.nutrients))
                })
        }
        Write::AppendMessage(message) => nul(&message.content),
        Write::InsertMemory(memory) => {
            nul(&memory.content)
                || nul(&memory.embedder)
                || memory.embedding.is_empty()
                || memory.embedding.len() > 16_000
                || memory.embedding.iter().any(|value| !value.is_finite())
        }
        Write::InsertWeight(weight) => !(weight.kg > 0.0 && weight.kg < 1000.0),
        Write::UpsertReminder(reminder) => nul(&reminder.text),
        Write::InsertXp(event) => nul(&event.reason),
        Write::UpsertStreak(streak) => {
            nul(&streak.domain)
                || [streak.current, streak.best, streak.freezes_left]
                    .into_iter()
                    .any(|count| i32::try_from(count).is_err())
        }
        Write::InsertAchievement(achievement) => nul(&achievement.code),
        Write::InsertDeadLetter(letter) => nul(&letter.error) || nul(&letter.message.to_string()),
        Write::InboxDone { replies, .. } => replies.iter().any(|reply| nul(reply)),
        Write::InboxStep { step, kept, .. } => {
            i32::try_from(*step).is_err() || kept.iter().any(|text| nul(text))
        }
        Write::InboxStarted { .. }
        | Write::DeleteFoodEntry { .. }
        | Write::DeleteMemory { .. }
        | Write::DeleteReminder { .. } => false,
    };
    refused.then(|| format!("the test store refuses {kind}, as the real stores do"))
}

/// The person a write needs a users row for (deletes, dead letters and the inbox need none).
fn person_written(write: &Write) -> Option<UserId> {
    match write {
        Write::UpsertUser(user) => Some(user.id),
        Write::InsertFoodEntry(entry) | Write::UpdateFoodEntry(entry) => Some(entry.user_id),
        Write::AppendMessage(message) => Some(message.user_id),
        Write::InsertMemory(memory) => Some(memory.user_id),
        Write::InsertWeight(weight) => Some(weight.user_id),
        Write::UpsertReminder(reminder) => Some(reminder.user_id),
        Write::InsertXp(event) => Some(event.user_id),
        Write::UpsertStreak(streak) => Some(streak.user_id),
        Write::InsertAchievement(achievement) => Some(achievement.user_id),
        Write::DeleteFoodEntry { .. }
        | Write::DeleteMemory { .. }
        | Write::DeleteReminder { .. }
        | Write::InsertDeadLetter(_)
        | Write::InboxStarted { .. }
        | Write::InboxStep { .. }
        | Write::InboxDone { .. } => None,
    }
}

/// Which rows a store refuses.
type RowPredicate = Box<dyn Fn(&Write) -> bool + Send + Sync>;

/// An in-memory [`Store`]: `apply` is atomic (one lock), idempotent on ids, and can be told to
/// fail transiently, to refuse rows, or to hold commits until released.
pub struct MemoryStore {
    data: Mutex<MemoryData>,
    transient_failures: AtomicUsize,
    /// While `false`, `apply` waits (to build up a queue in tests).
    open: watch::Sender<bool>,
    apply_calls: AtomicU64,
    applied_rows: AtomicU64,
    committed: Notify,
    /// Rows for which `apply` fails permanently (a constraint violation, say).
    refuse: Mutex<Option<RowPredicate>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self {
            data: Mutex::new(MemoryData::default()),
            transient_failures: AtomicUsize::new(0),
            open: watch::channel(true).0,
            apply_calls: AtomicU64::new(0),
            applied_rows: AtomicU64::new(0),
            committed: Notify::new(),
            refuse: Mutex::new(None),
        }
    }

    /// The next `count` calls of `apply` fail with `StoreError::Unavailable` (nothing written).
    pub fn fail_next_applies(&self, count: usize) {
        self.transient_failures.store(count, Ordering::SeqCst);
    }

    /// `apply` fails permanently for any batch holding a row that `predicate` matches.
    pub fn refuse_rows(&self, predicate: impl Fn(&Write) -> bool + Send + Sync + 'static) {
        *lock(&self.refuse) = Some(Box::new(predicate));
    }

    /// Holds every `apply` until [`MemoryStore::release_applies`].
    pub fn hold_applies(&self) {
        self.open.send_replace(false);
    }

    pub fn release_applies(&self) {
        self.open.send_replace(true);
    }

    /// Calls of `apply` that committed.
    pub fn commits(&self) -> u64 {
        self.apply_calls.load(Ordering::SeqCst)
    }

    /// Rows committed (counting a re-applied row again).
    pub fn committed_rows(&self) -> u64 {
        self.applied_rows.load(Ordering::SeqCst)
    }

    /// A copy of everything stored.
    pub fn snapshot(&self) -> MemoryData {
        lock(&self.data).clone()
    }

    /// Reads the data in place.
    pub fn with_data<R>(&self, read: impl FnOnce(&MemoryData) -> R) -> R {
        read(&lock(&self.data))
    }

    /// Waits until `condition` holds on the stored data (checked after every commit), or the
    /// timeout passes. Returns whether it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        condition: impl Fn(&MemoryData) -> bool,
    ) -> bool {
        wait_for(timeout, &self.committed, || self.with_data(&condition)).await
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn apply(&self, batch: &[Write]) -> Result<(), StoreError> {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        let failed = self
            .transient_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if failed {
            return Err(StoreError::Unavailable("the test store is down".into()));
        }
        if let Some(refuse) = lock(&self.refuse).as_ref() {
            if let Some(row) = batch.iter().find(|row| refuse(row)) {
                return Err(StoreError::Rejected(format!(
                    "the test store refuses {}",
                    row.kind()
                )));
            }
        }
        if let Some(reason) = batch.iter().find_map(refusal) {
            return Err(StoreError::Rejected(reason));
        }
        {
            let mut data = lock(&self.data);
            let now = Utc::now();
            // Every person a row is written for has a users row, as in the real stores.
            for user_id in batch.iter().filter_map(person_written) {
                data.users.entry(user_id).or_insert_with(|| User {
                    id: user_id,
                    profile: Profile::default(),
                    goals: Goals::default(),
                    timezone: "UTC".to_owned(),
                    created_at: now,
                    updated_at: now,
                });
            }
            for write in batch {
                data.apply_one(write);
            }
        }
        self.apply_calls.fetch_add(1, Ordering::SeqCst);
        self.applied_rows
            .fetch_add(batch.len() as u64, Ordering::SeqCst);
        self.committed.notify_waiters();
        Ok(())
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(lock(&self.data).users.get(&id).cloned())
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        let mut data = lock(&self.data);
        let existed = data.users.remove(&id).is_some();
        data.food_entries.retain(|_, e| e.user_id != id);
        data.messages.remove(&id);
        data.message_ids.remove(&id);
        data.memories.retain(|_, m| m.user_id != id);
        data.weights.retain(|_, w| w.user_id != id);
        data.reminders.retain(|_, r| r.user_id != id);
        data.xp.retain(|_, x| x.user_id != id);
        data.streaks.retain(|(user, _), _| *user != id);
        data.achievements.retain(|(user, _), _| *user != id);
        data.vision_estimates.retain(|_, v| v.user_id != id);
        data.inbox.retain(|r| r.entry.user_id != id);
        data.dead_letters.retain(|_, letter| letter.user_id != id);
        Ok(existed)
    }

    async fn food_entry(&self, user: UserId, id: Uuid) -> Result<Option<FoodEntry>, StoreError> {
        Ok(lock(&self.data)
            .food_entries
            .get(&id)
            .filter(|e| e.user_id == user)
            .cloned())
    }

    async fn food_entries(
        &self,
        user: UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FoodEntry>, StoreError> {
        let data = lock(&self.data);
        let mut entries: Vec<FoodEntry> = data
            .food_entries
            .values()
            .filter(|e| e.user_id == user && e.local_date >= from && e.local_date <= to)
            .cloned()
            .collect();
        entries.sort_by_key(|e| (e.eaten_at, e.id));
        Ok(entries)
    }

    async fn last_food_entry(&self, user: UserId) -> Result<Option<FoodEntry>, StoreError> {
        let data = lock(&self.data);
        Ok(data
            .food_entries
            .values()
            .filter(|e| e.user_id == user)
            .max_by_key(|e| (e.created_at, e.id))
            .cloned())
    }

    async fn recent_messages(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<ConversationMessage>, StoreError> {
        let data = lock(&self.data);
        let mut messages = data.messages.get(&user).cloned().unwrap_or_default();
        // By time, insertion order breaking ties (a stable sort), as in the real stores.
        messages.sort_by_key(|m| m.created_at);
        Ok(messages.split_off(messages.len().saturating_sub(limit)))
    }

    async fn memories(&self, user: UserId) -> Result<Vec<Memory>, StoreError> {
        let data = lock(&self.data);
        let mut memories: Vec<Memory> = data
            .memories
            .values()
            .filter(|m| m.user_id == user)
            .cloned()
            .collect();
        memories.sort_by_key(|m| (m.created_at, m.id));
        Ok(memories)
    }

    async fn search_memories(
        &self,
        user: UserId,
        embedder: &str,
        query: &[f32],
        limit: usize,
    ) -> Result<Vec<ScoredMemory>, StoreError> {
        if query.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        if query.iter().any(|value| !value.is_finite()) {
            return Err(StoreError::Rejected(
                "the query vector holds a value that is not finite".into(),
            ));
        }
        let data = lock(&self.data);
        let mut candidates: Vec<&Memory> = data
            .memories
            .values()
            .filter(|m| {
                m.user_id == user && m.embedder == embedder && m.embedding.len() == query.len()
            })
            .collect();
        // Oldest first before ranking, so equal scores keep the real stores' order.
        candidates.sort_by_key(|m| (m.created_at, m.id));
        let mut scored: Vec<ScoredMemory> = candidates
            .into_iter()
            .map(|m| ScoredMemory {
                memory: m.clone(),
                similarity: crate::memory::cosine(&m.embedding, query),
            })
            .collect();
        scored.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        scored.truncate(limit);
        Ok(scored)
    }

    async fn weights(
        &self,
        user: UserId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<WeightLog>, StoreError> {
        let data = lock(&self.data);
        let mut weights: Vec<WeightLog> = data
            .weights
            .values()
            .filter(|w| w.user_id == user && w.logged_at >= from && w.logged_at < to)
            .cloned()
            .collect();
        weights.sort_by_key(|w| (w.logged_at, w.id));
        Ok(weights)
    }

    async fn reminders(&self, user: UserId) -> Result<Vec<Reminder>, StoreError> {
        let data = lock(&self.data);
        let mut reminders: Vec<Reminder> = data
            .reminders
            .values()
            .filter(|r| r.user_id == user)
            .cloned()
            .collect();
        reminders.sort_by_key(|r| (r.created_at, r.id));
        Ok(reminders)
    }

    async fn due_reminders(
        &self,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Reminder>, StoreError> {
        let data = lock(&self.data);
        let mut due: Vec<Reminder> = data
            .reminders
            .values()
            .filter(|r| r.active && r.next_fire_at.is_some_and(|next| next <= at))
            .cloned()
            .collect();
        due.sort_by_key(|r| (r.next_fire_at, r.id));
        due.truncate(limit);
        Ok(due)
    }

    async fn xp_events(&self, user: UserId) -> Result<Vec<XpEvent>, StoreError> {
        let data = lock(&self.data);
        let mut events: Vec<XpEvent> = data
            .xp
            .values()
            .filter(|x| x.user_id == user)
            .cloned()
            .collect();
        events.sort_by_key(|x| (x.created_at, x.id));
        Ok(events)
    }

    async fn streaks(&self, user: UserId) -> Result<Vec<Streak>, StoreError> {
        let data = lock(&self.data);
        let mut streaks: Vec<Streak> = data
            .streaks
            .values()
            .filter(|s| s.user_id == user)
            .cloned()
            .collect();
        streaks.sort_by(|a, b| a.domain.cmp(&b.domain));
        Ok(streaks)
    }

    async fn achievements(&self, user: UserId) -> Result<Vec<Achievement>, StoreError> {
        let data = lock(&self.data);
        let mut earned: Vec<Achievement> = data
            .achievements
            .values()
            .filter(|a| a.user_id == user)
            .cloned()
            .collect();
        earned.sort_by_key(|a| a.earned_at);
        Ok(earned)
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let data = lock(&self.data);
        let mut letters: Vec<DeadLetter> = data.dead_letters.values().cloned().collect();
        letters.sort_by_key(|letter| std::cmp::Reverse((letter.created_at, letter.id)));
        letters.truncate(limit);
        Ok(letters)
    }

    async fn cached_food(
        &self,
        source: &str,
        query: &str,
    ) -> Result<Option<CachedFood>, StoreError> {
        let data = lock(&self.data);
        Ok(data
            .food_cache
            .get(&(source.to_owned(), query.to_owned()))
            .cloned())
    }

    async fn cache_food(&self, entry: CachedFood) -> Result<(), StoreError> {
        let food_text = entry.food.as_ref().map(serde_json::Value::to_string);
        if [Some(&entry.source), Some(&entry.query), food_text.as_ref()]
            .into_iter()
            .flatten()
            .any(|text| text.contains('\0'))
        {
            return Err(StoreError::Rejected(
                "cache_food: text contains a NUL character".into(),
            ));
        }
        let key = (entry.source.clone(), entry.query.clone());
        lock(&self.data).food_cache.insert(key, entry);
        Ok(())
    }

    async fn inbox_accept(&self, entries: &[InboxEntry]) -> Result<Vec<bool>, StoreError> {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        let failed = self
            .transient_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if failed {
            return Err(StoreError::Unavailable("the test store is down".into()));
        }
        let mut data = lock(&self.data);
        let fresh = entries
            .iter()
            .map(|entry| {
                let new = !data.inbox.iter().any(|r| r.entry.id == entry.id);
                if new {
                    data.inbox.push(InboxRecord {
                        entry: entry.clone(),
                        done_at: None,
                        outcome: None,
                        replies: Vec::new(),
                    });
                }
                new
            })
            .collect();
        drop(data);
        self.committed.notify_waiters();
        Ok(fresh)
    }

    async fn inbox_pending(
        &self,
        source: &str,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        Ok(lock(&self.data)
            .inbox
            .iter()
            .filter(|r| r.done_at.is_none() && r.entry.source == source)
            .take(limit)
            .map(|r| r.entry.clone())
            .collect())
    }

    async fn inbox_entry(&self, id: Uuid) -> Result<Option<InboxRecord>, StoreError> {
        Ok(lock(&self.data)
            .inbox
            .iter()
            .find(|r| r.entry.id == id)
            .cloned())
    }

    async fn inbox_resume(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, u32)>, StoreError> {
        let data = lock(&self.data);
        Ok(data
            .inbox
            .iter()
            .filter(|record| record.done_at.is_none() && ids.contains(&record.entry.id))
            .map(|record| (record.entry.id, record.entry.steps))
            .collect())
    }

    async fn inbox_backlog(&self) -> Result<InboxBacklog, StoreError> {
        let data = lock(&self.data);
        let pending = data.inbox.iter().filter(|r| r.done_at.is_none());
        Ok(InboxBacklog {
            pending: pending.clone().count() as u64,
            oldest: pending.map(|r| r.entry.received_at).min(),
        })
    }

    async fn inbox_prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut data = lock(&self.data);
        let count = data.inbox.len();
        data.inbox
            .retain(|r| r.done_at.is_none_or(|at| at >= before));
        Ok((count - data.inbox.len()) as u64)
    }

    async fn save_vision_estimates(&self, estimates: &[VisionEstimate]) -> Result<(), StoreError> {
        let mut data = lock(&self.data);
        if let Some(orphan) = estimates
            .iter()
            .find(|estimate| !data.users.contains_key(&estimate.user_id))
        {
            return Err(StoreError::Rejected(format!(
                "no user {} for a vision estimate",
                orphan.user_id
            )));
        }
        for estimate in estimates {
            let key = (
                estimate.entry_id,
                estimate.item.clone(),
                estimate.agent.clone(),
            );
            // Another person's row under the same key is left alone.
            if data
                .vision_estimates
                .get(&key)
                .is_none_or(|existing| existing.user_id == estimate.user_id)
            {
                data.vision_estimates.insert(key, estimate.clone());
            }
        }
        Ok(())
    }

    async fn vision_estimates(
        &self,
        user: UserId,
        entry_id: Uuid,
    ) -> Result<Vec<VisionEstimate>, StoreError> {
        let mut found: Vec<VisionEstimate> = lock(&self.data)
            .vision_estimates
            .values()
            .filter(|v| v.user_id == user && v.entry_id == entry_id)
            .cloned()
            .collect();
        found.sort_by(|a, b| (&a.item, &a.agent).cmp(&(&b.item, &b.agent)));
        Ok(found)
    }

    async fn corrected_vision_estimates(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<Vec<VisionEstimate>, StoreError> {
        let mut found: Vec<VisionEstimate> = lock(&self.data)
            .vision_estimates
            .values()
            .filter(|v| v.user_id == user && v.corrected_at.is_some())
            .cloned()
            .collect();
        found.sort_by(|a, b| {
            b.corrected_at.cmp(&a.corrected_at).then_with(|| {
                (&a.entry_id, &a.item, &a.agent).cmp(&(&b.entry_id, &b.item, &b.agent))
            })
        });
        found.truncate(limit);
        Ok(found)
    }
}

/// One thing the recording outbox was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    Text {
        chat: ChatId,
        text: String,
    },
    Buttons {
        chat: ChatId,
        text: String,
        buttons: Vec<Vec<Button>>,
    },
    Photo {
        chat: ChatId,
        bytes: usize,
        caption: Option<String>,
    },
    Document {
        chat: ChatId,
        file_name: String,
        bytes: usize,
    },
    Edit {
        message: SentMessage,
        text: String,
        /// The buttons left under the message (`None`: none).
        buttons: Option<Vec<Vec<Button>>>,
    },
    Typing {
        chat: ChatId,
    },
}

impl Sent {
    pub fn chat(&self) -> ChatId {
        match self {
            Self::Text { chat, .. }
            | Self::Buttons { chat, .. }
            | Self::Photo { chat, .. }
            | Self::Document { chat, .. }
            | Self::Typing { chat } => *chat,
            Self::Edit { message, .. } => message.chat,
        }
    }

    /// The text shown to the person, if any.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text { text, .. } | Self::Buttons { text, .. } | Self::Edit { text, .. } => {
                Some(text)
            }
            Self::Photo { caption, .. } => caption.as_deref(),
            Self::Document { .. } | Self::Typing { .. } => None,
        }
    }
}

/// An [`Outbox`] that records what it is asked to send, and can be told to fail.
#[derive(Default)]
pub struct RecordingOutbox {
    sent: Mutex<Vec<Sent>>,
    failing: std::sync::atomic::AtomicBool,
    changed: Notify,
}

impl RecordingOutbox {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Every later call fails with `OutboxError::Unavailable` (while `failing`).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn sent(&self) -> Vec<Sent> {
        lock(&self.sent).clone()
    }

    /// The texts sent to `chat`, in order.
    pub fn texts_to(&self, chat: ChatId) -> Vec<String> {
        lock(&self.sent)
            .iter()
            .filter(|sent| sent.chat() == chat && !matches!(sent, Sent::Typing { .. }))
            .filter_map(|sent| sent.text().map(str::to_owned))
            .collect()
    }

    /// Waits until `condition` holds on what was sent, or the timeout passes.
    pub async fn wait_until(&self, timeout: Duration, condition: impl Fn(&[Sent]) -> bool) -> bool {
        wait_for(timeout, &self.changed, || condition(&lock(&self.sent))).await
    }

    fn record(&self, sent: Sent) -> Result<SentMessage, OutboxError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(OutboxError::Unavailable(
                "the test outbox is failing".into(),
            ));
        }
        let chat = sent.chat();
        // A message's id is its place in `sent()`, counted from 1.
        let id = {
            let mut sent_so_far = lock(&self.sent);
            sent_so_far.push(sent);
            sent_so_far.len() as i64
        };
        self.changed.notify_waiters();
        Ok(SentMessage {
            chat,
            message: MessageId(id),
        })
    }
}

#[async_trait]
impl Outbox for RecordingOutbox {
    async fn send_text(&self, chat: ChatId, text: &str) -> Result<SentMessage, OutboxError> {
        self.record(Sent::Text {
            chat,
            text: text.to_owned(),
        })
    }

    async fn send_buttons(
        &self,
        chat: ChatId,
        text: &str,
        buttons: &[Vec<Button>],
    ) -> Result<SentMessage, OutboxError> {
        self.record(Sent::Buttons {
            chat,
            text: text.to_owned(),
            buttons: buttons.to_vec(),
        })
    }

    async fn send_photo(
        &self,
        chat: ChatId,
        photo: &[u8],
        caption: Option<&str>,
    ) -> Result<SentMessage, OutboxError> {
        self.record(Sent::Photo {
            chat,
            bytes: photo.len(),
            caption: caption.map(str::to_owned),
        })
    }

    async fn send_document(
        &self,
        chat: ChatId,
        file_name: &str,
        bytes: &[u8],
        _caption: Option<&str>,
    ) -> Result<SentMessage, OutboxError> {
        self.record(Sent::Document {
            chat,
            file_name: file_name.to_owned(),
            bytes: bytes.len(),
        })
    }

    async fn edit_text(
        &self,
        message: SentMessage,
        text: &str,
        buttons: Option<&[Vec<Button>]>,
    ) -> Result<(), OutboxError> {
        self.record(Sent::Edit {
            message,
            text: text.to_owned(),
            buttons: buttons.map(<[Vec<Button>]>::to_vec),
        })
        .map(|_| ())
    }

    async fn typing(&self, chat: ChatId) -> Result<(), OutboxError> {
        self.record(Sent::Typing { chat }).map(|_| ())
    }
}

/// A clock that only moves when told to.
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self {
            now: Mutex::new(start),
        })
    }

    pub fn advance(&self, by: chrono::Duration) {
        *lock(&self.now) += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *lock(&self.now) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.now)
    }
}

/// How often a waiting condition is checked again when nothing notifies.
const POLL: Duration = Duration::from_millis(5);

/// Polls `condition` (an async check) until it holds or `within` has passed; whether it held.
/// The one wait-with-a-deadline of the tests: it returns as soon as the condition holds (not a
/// bare sleep), and it runs in paused tokio time too.
pub async fn eventually<F, Fut>(within: Duration, condition: F) -> bool
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    poll_until(within, None, condition).await
}

/// [`eventually`] for a check that is told when to look again: re-checks `check` whenever
/// `changed` is notified (and at least every few milliseconds) for at most `within`.
pub async fn wait_for(within: Duration, changed: &Notify, check: impl Fn() -> bool) -> bool {
    poll_until(within, Some(changed), || std::future::ready(check())).await
}

async fn poll_until<F, Fut>(within: Duration, changed: Option<&Notify>, condition: F) -> bool
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        // Registered before the check, so a change between the check and the wait is not missed.
        let notified = changed.map(Notify::notified);
        if condition().await {
            return true;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return false;
        }
        let wake = (now + POLL).min(deadline);
        match notified {
            Some(notified) => {
                let _ = tokio::time::timeout_at(wake, notified).await;
            }
            None => tokio::time::sleep_until(wake).await,
        }
    }
}

/// An agent for tests. For a text message it answers `echo <n>: <text>`, where `n` counts the
/// person's earlier messages in the history it was given (so a test sees whether state was
/// reloaded). Special texts: `panic` panics, `fail` returns an error, `block` waits until
/// [`EchoAgent::release`] lets it go.
pub struct EchoAgent {
    gate: tokio::sync::Semaphore,
    started: Mutex<Vec<(UserId, String)>>,
    changed: Notify,
}

impl EchoAgent {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            gate: tokio::sync::Semaphore::new(0),
            started: Mutex::new(Vec::new()),
            changed: Notify::new(),
        })
    }

    /// Lets `count` blocked (or future `block`) turns go on.
    pub fn release(&self, count: usize) {
        self.gate.add_permits(count);
    }

    /// Turns started so far, in order: (person, text).
    pub fn started(&self) -> Vec<(UserId, String)> {
        lock(&self.started).clone()
    }

    /// Waits until a turn for `user` with `text` has started.
    pub async fn wait_started(&self, timeout: Duration, user: UserId, text: &str) -> bool {
        wait_for(timeout, &self.changed, || {
            lock(&self.started)
                .iter()
                .any(|(who, said)| *who == user && said == text)
        })
        .await
    }
}

#[async_trait]
impl crate::conversation::Agent for EchoAgent {
    async fn handle(
        &self,
        ctx: &mut crate::conversation::TurnContext<'_>,
        inbound: &crate::inbound::Inbound,
    ) -> Result<(), crate::conversation::AgentError> {
        let text = inbound.content.to_history_text();
        lock(&self.started).push((inbound.user, text.clone()));
        self.changed.notify_waiters();
        match text.as_str() {
            "panic" => panic!("the test agent was told to panic"),
            "fail" => {
                return Err(crate::conversation::AgentError::Other(
                    "told to fail".into(),
                ))
            }
            "block" => {
                let permit = self.gate.acquire().await;
                drop(permit.map(|p| p.forget()));
            }
            _ => {}
        }
        let earlier = ctx
            .history()
            .iter()
            .filter(|m| m.role == crate::domain::Role::User)
            .count();
        let _ = ctx.reply(format!("echo {earlier}: {text}")).await;
        Ok(())
    }
}
