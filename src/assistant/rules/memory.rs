//! The rule agent's memory: "remember that I'm vegetarian" (or "remember: ...") keeps a fact,
//! "what do you remember (about me)?" and `/memory` list them (each with a button that forgets
//! it), "forget that I'm vegetarian" forgets the closest one. The request is read by
//! [`health_actors::understanding::memory_request`].
//!
//! Facts are kept exactly as the LLM agent's `remember` tool keeps them
//! ([`crate::assistant::memory`]): embedded, merged with a near-duplicate, written through the
//! persistence actor. Without an embedder (`ENABLE_MEM0=false`) nothing new is kept, and
//! forgetting matches words only ([`closest_by_words`]).

use std::fmt::Write as _;

use health_actors::conversation::{AgentError, TurnContext};
use health_actors::domain::Memory;
use health_actors::inbound::Inbound;
use health_actors::memory::{Embedder, Remembered};
use health_actors::ports::{Button, Write};
use health_actors::understanding::{closest_by_words, MemoryRequest};
use uuid::Uuid;

use crate::assistant::entries::ENTRY_NAMESPACE;
use crate::assistant::memory::{remember_fact, search};
use crate::assistant::reply::reply;

/// The longest fact kept: a fact is a sentence, not a document.
const MAX_FACT_CHARS: usize = 500;
/// How similar (cosine) a stored fact must be to "forget X" to be the one forgotten: the closest
/// fact may still be about something else entirely.
const FORGET_MIN_SIMILARITY: f64 = 0.3;
/// Button data that forgets one memory: this prefix and the memory's id.
const FORGET_MEMORY_PREFIX: &str = "memory:forget:";

pub(super) async fn memory(
    ctx: &mut TurnContext<'_>,
    embedder: Option<&dyn Embedder>,
    inbound: &Inbound,
    request: MemoryRequest,
) -> Result<(), AgentError> {
    match request {
        MemoryRequest::Remember(fact) => remember(ctx, embedder, inbound, &fact).await,
        MemoryRequest::List => show_memories(ctx).await,
        MemoryRequest::Forget(fact) => forget(ctx, embedder, &fact).await,
        MemoryRequest::ForgetEverything => reply(
            ctx,
            "To delete everything I have about you, send /forget_me (I'll ask you to confirm). \
                 To forget one fact, say e.g. \"forget that I'm vegetarian\", or send /memory.",
        )
        .await,
    }
}

async fn remember(
    ctx: &mut TurnContext<'_>,
    embedder: Option<&dyn Embedder>,
    inbound: &Inbound,
    fact: &str,
) -> Result<(), AgentError> {
    let Some(embedder) = embedder else {
        return reply(
            ctx,
            "My memory is switched off on this server (ENABLE_MEM0=false), so I can't keep that.",
        )
        .await;
    };
    if fact.is_empty() {
        return reply(
            ctx,
            "What should I remember? Say it in one sentence, e.g. \"remember that I'm vegetarian\".",
        )
        .await;
    }
    if fact.chars().count() > MAX_FACT_CHARS {
        return reply(
            ctx,
            "That's a lot to remember at once: tell me one short fact at a time.",
        )
        .await;
    }
    let id = Uuid::new_v5(
        &ENTRY_NAMESPACE,
        format!("{}:memory", inbound.id).as_bytes(),
    );
    let text = match remember_fact(ctx, embedder, id, fact).await? {
        Some(Remembered::New(memory)) => {
            format!("Got it, I'll remember: \"{}\".", memory.content)
        }
        Some(Remembered::Merged { memory, .. }) => format!(
            "Got it. I already knew something very like that, so I updated it: \"{}\".",
            memory.content
        ),
        None => "I couldn't store that just now. Please try again in a minute.".to_owned(),
    };
    reply(ctx, text).await
}

async fn forget(
    ctx: &mut TurnContext<'_>,
    embedder: Option<&dyn Embedder>,
    fact: &str,
) -> Result<(), AgentError> {
    let user_id = ctx.user().id;
    let memories = ctx.store().memories(user_id).await?;
    if memories.is_empty() {
        return reply(
            ctx,
            "I don't remember anything about you, so there's nothing to forget.",
        )
        .await;
    }
    let closest = match embedder {
        Some(embedder) => closest_by_meaning(ctx, embedder, fact).await?,
        None => None,
    };
    let Some(memory) = closest.or_else(|| closest_by_words(&memories, fact)) else {
        return reply(
            ctx,
            format!(
                "I don't remember anything like \"{fact}\". Send /memory to see what I remember \
                 and forget any of it."
            ),
        )
        .await;
    };
    ctx.write(vec![Write::DeleteMemory {
        user_id,
        id: memory.id,
    }])
    .await?;
    reply(ctx, format!("Forgotten: \"{}\".", memory.content)).await
}

/// The stored fact most similar in meaning to `fact`, if similar enough.
async fn closest_by_meaning(
    ctx: &TurnContext<'_>,
    embedder: &dyn Embedder,
    fact: &str,
) -> Result<Option<Memory>, AgentError> {
    let found = search(ctx, embedder, fact, 1).await?.unwrap_or_default();
    Ok(found
        .into_iter()
        .find(|scored| scored.similarity >= FORGET_MIN_SIMILARITY)
        .map(|scored| scored.memory))
}

/// The remembered facts, each with a button that forgets it.
pub(super) async fn show_memories(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let memories = ctx.store().memories(ctx.user().id).await?;
    if memories.is_empty() {
        return reply(
            ctx,
            "I don't remember anything about you yet. Tell me things like \"remember that I'm \
             vegetarian\" or \"remember: I'm allergic to peanuts\" and I'll keep them in mind.",
        )
        .await;
    }
    let mut text = String::from("What I remember about you:\n");
    let mut buttons = Vec::new();
    for (index, memory) in memories.iter().enumerate() {
        let _ = writeln!(text, "{}. {}", index + 1, memory.content);
        buttons.push(vec![Button {
            label: format!("Forget {}", index + 1),
            data: format!("{FORGET_MEMORY_PREFIX}{}", memory.id),
        }]);
    }
    text.push_str("Press a button to make me forget that one.");
    let _ = ctx.reply_with_buttons(text, &buttons).await;
    Ok(())
}

/// Handles a press on a memory's Forget button; `None` when `data` is not one.
pub(super) async fn memory_button(
    ctx: &mut TurnContext<'_>,
    data: &str,
) -> Option<Result<(), AgentError>> {
    let id = data
        .strip_prefix(FORGET_MEMORY_PREFIX)
        .and_then(|id| Uuid::parse_str(id).ok())?;
    Some(forget_by_id(ctx, id).await)
}

/// Forgets the memory `id` of the person, if they still have it.
async fn forget_by_id(ctx: &mut TurnContext<'_>, id: Uuid) -> Result<(), AgentError> {
    let user_id = ctx.user().id;
    let memory = ctx
        .store()
        .memories(user_id)
        .await?
        .into_iter()
        .find(|memory| memory.id == id);
    match memory {
        Some(memory) => {
            ctx.write(vec![Write::DeleteMemory { user_id, id }]).await?;
            reply(ctx, format!("Forgotten: \"{}\".", memory.content)).await
        }
        None => reply(ctx, "I had already forgotten that one.").await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use health_actors::conversation::{Agent, TurnOutcome};
    use health_actors::domain::ChatId;
    use health_actors::domain::UserId;
    use health_actors::memory::OfflineEmbedder;
    use health_actors::ports::{Outbox, Store, SystemClock};
    use health_actors::root::{Root, RootArgs, RootSettings};
    use health_actors::testing::{MemoryStore, RecordingOutbox};

    use super::*;
    use crate::assistant::rules::RuleAgent;
    use crate::nutrition::engine::NutritionEngine;

    struct Chat {
        root: health_actors::root::RootHandle,
        store: Arc<MemoryStore>,
        outbox: Arc<RecordingOutbox>,
    }

    impl Chat {
        async fn start(embedder: Option<Arc<dyn Embedder>>) -> Self {
            let store = Arc::new(MemoryStore::new());
            let agent: Arc<dyn Agent> = Arc::new(
                RuleAgent::new(Arc::new(NutritionEngine::offline())).with_memory(embedder),
            );
            let root = Root::start(RootArgs {
                store: store.clone(),
                agent,
                clock: Arc::new(SystemClock),
                settings: RootSettings::default(),
                vision: health_actors::vision::VisionArgs::default(),
            })
            .await
            .unwrap();
            Self {
                root,
                store,
                outbox: RecordingOutbox::new(),
            }
        }

        async fn say(&self, text: &str) -> String {
            let reply: Arc<dyn Outbox> = self.outbox.clone();
            let before = self.outbox.texts_to(ChatId(5)).len();
            let inbound = Inbound::text(UserId(5), ChatId(5), text, reply);
            let outcome = self
                .root
                .conversations()
                .submit_and_wait(inbound, Duration::from_secs(10))
                .await
                .unwrap();
            assert_eq!(outcome, TurnOutcome::Answered);
            self.outbox.texts_to(ChatId(5))[before..].join("\n")
        }

        async fn facts(&self) -> Vec<String> {
            self.store
                .memories(UserId(5))
                .await
                .unwrap()
                .into_iter()
                .map(|memory| memory.content)
                .collect()
        }
    }

    #[tokio::test]
    async fn remember_merge_list_and_forget_through_the_actor_tree() {
        let chat = Chat::start(Some(Arc::new(OfflineEmbedder::new()))).await;
        let reply = chat.say("remember that I'm vegetarian").await;
        assert_eq!(reply, "Got it, I'll remember: \"I'm vegetarian\".");
        let stored = chat.store.memories(UserId(5)).await.unwrap();
        assert_eq!(stored[0].embedder, OfflineEmbedder::NAME);
        assert_eq!(
            stored[0].embedding.len(),
            OfflineEmbedder::DEFAULT_DIMENSIONS
        );

        // The same fact said again replaces the older wording instead of adding a second row.
        let reply = chat.say("Remember: I am vegetarian.").await;
        assert!(reply.contains("updated it: \"I am vegetarian\""), "{reply}");
        assert_eq!(chat.facts().await, ["I am vegetarian"]);

        chat.say("remember that I'm allergic to peanuts").await;
        let reply = chat.say("what do you remember about me?").await;
        assert!(
            reply.contains("1. I am vegetarian") && reply.contains("2. I'm allergic to peanuts"),
            "{reply}"
        );

        let reply = chat.say("forget that I'm vegetarian").await;
        assert_eq!(reply, "Forgotten: \"I am vegetarian\".");
        assert_eq!(chat.facts().await, ["I'm allergic to peanuts"]);

        let reply = chat.say("forget that I run on Tuesdays").await;
        assert!(reply.contains("I don't remember anything like"), "{reply}");
        assert_eq!(chat.facts().await, ["I'm allergic to peanuts"]);
        chat.root.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn without_an_embedder_nothing_new_is_kept() {
        let chat = Chat::start(None).await;
        let reply = chat.say("remember that I'm vegetarian").await;
        assert!(reply.contains("switched off"), "{reply}");
        assert!(chat.facts().await.is_empty());
        chat.root.shutdown(Duration::from_secs(5)).await;
    }
}
