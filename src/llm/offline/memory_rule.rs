//! The offline agent's memory rule: "remember that I'm vegetarian" (or "remember: ...") keeps a
//! fact, "what do you remember (about me)?" lists them, "forget that I'm vegetarian" forgets the
//! closest one.
//!
//! Facts are kept exactly as the LLM agent's `remember` tool keeps them ([`crate::llm::memory`]):
//! embedded, merged with a near-duplicate, written through the persistence actor. Without an
//! embedder (`ENABLE_MEM0=false`) nothing new is kept, and forgetting matches words only.

use health_actors::conversation::{AgentError, TurnContext};
use health_actors::domain::Memory;
use health_actors::inbound::Inbound;
use health_actors::memory::{Embedder, Remembered};
use health_actors::ports::Write;
use uuid::Uuid;

use super::{reply, show_memories, ENTRY_NAMESPACE};

/// The longest fact kept: a fact is a sentence, not a document.
const MAX_FACT_CHARS: usize = 500;
/// How similar (cosine) a stored fact must be to "forget X" to be the one forgotten: the closest
/// fact may still be about something else entirely.
const FORGET_MIN_SIMILARITY: f64 = 0.3;

/// What a message asks of the memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MemoryRequest {
    /// Keep this fact (empty when the person said only "remember").
    Remember(String),
    /// List what is remembered.
    List,
    /// Forget the stored fact closest to this one.
    Forget(String),
    /// "Forget everything about me": that is /forget_me, which asks for confirmation.
    ForgetEverything,
}

/// Reads a memory request in `text`, or `None` when the message is about something else.
pub(super) fn memory_request(text: &str) -> Option<MemoryRequest> {
    let text = strip_politeness(text.trim());
    let normalized = normalize(text);
    if is_list_request(&normalized) {
        return Some(MemoryRequest::List);
    }
    if let Some(rest) = strip_word(text, "remember").or_else(|| strip_phrase(text, "keep in mind"))
    {
        let fact = clean_fact(rest);
        let first = normalize(&fact);
        let first = first.split(' ').next().unwrap_or_default();
        // "remember to drink water" is a reminder, "remember what I ate?" a question.
        if matches!(
            first,
            "to" | "what" | "when" | "where" | "how" | "which" | "who" | "why" | "if" | "whether"
        ) || fact.ends_with('?')
        {
            return None;
        }
        return Some(MemoryRequest::Remember(fact));
    }
    if let Some(rest) = strip_word(text, "forget") {
        let fact = clean_fact(rest);
        let fact = strip_word(&fact, "about").map_or(fact.clone(), clean_fact);
        let normalized = normalize(&fact);
        if matches!(
            normalized.as_str(),
            "me" | "all"
                | "everything"
                | "everything about me"
                | "all about me"
                | "everything you know about me"
                | "all my data"
                | "my data"
        ) {
            return Some(MemoryRequest::ForgetEverything);
        }
        // "forget it", "forget that": a "never mind", not a fact.
        if matches!(normalized.as_str(), "" | "it" | "that" | "this") {
            return None;
        }
        return Some(MemoryRequest::Forget(fact));
    }
    None
}

impl super::OfflineAgent {
    pub(super) async fn memory(
        &self,
        ctx: &mut TurnContext<'_>,
        inbound: &Inbound,
        request: MemoryRequest,
    ) -> Result<(), AgentError> {
        match request {
            MemoryRequest::Remember(fact) => self.remember(ctx, inbound, &fact).await,
            MemoryRequest::List => show_memories(ctx).await,
            MemoryRequest::Forget(fact) => self.forget(ctx, &fact).await,
            MemoryRequest::ForgetEverything => {
                reply(
                    ctx,
                    "To delete everything I have about you, send /forget_me (I'll ask you to confirm). \
                     To forget one fact, say e.g. \"forget that I'm vegetarian\", or send /memory.",
                )
                .await
            }
        }
    }

    async fn remember(
        &self,
        ctx: &mut TurnContext<'_>,
        inbound: &Inbound,
        fact: &str,
    ) -> Result<(), AgentError> {
        let Some(embedder) = &self.embedder else {
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
        let text = match crate::llm::memory::remember_fact(ctx, embedder.as_ref(), id, fact).await?
        {
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

    async fn forget(&self, ctx: &mut TurnContext<'_>, fact: &str) -> Result<(), AgentError> {
        let user_id = ctx.user().id;
        let memories = ctx.store().memories(user_id).await?;
        if memories.is_empty() {
            return reply(
                ctx,
                "I don't remember anything about you, so there's nothing to forget.",
            )
            .await;
        }
        let closest = match &self.embedder {
            Some(embedder) => closest_by_meaning(ctx, embedder.as_ref(), fact).await?,
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
}

/// The stored fact most similar in meaning to `fact`, if similar enough.
async fn closest_by_meaning(
    ctx: &TurnContext<'_>,
    embedder: &dyn Embedder,
    fact: &str,
) -> Result<Option<Memory>, AgentError> {
    let found = crate::llm::memory::search(ctx, embedder, fact, 1)
        .await?
        .unwrap_or_default();
    Ok(found
        .into_iter()
        .find(|scored| scored.similarity >= FORGET_MIN_SIMILARITY)
        .map(|scored| scored.memory))
}

/// A stored fact containing `fact`'s words (or contained in them): for facts kept by another
/// embedder, or when there is none.
fn closest_by_words(memories: &[Memory], fact: &str) -> Option<Memory> {
    let wanted = normalize(fact);
    if wanted.is_empty() {
        return None;
    }
    memories
        .iter()
        .find(|memory| {
            let content = normalize(&memory.content);
            !content.is_empty() && (content.contains(&wanted) || wanted.contains(&content))
        })
        .cloned()
}

fn is_list_request(normalized: &str) -> bool {
    const STARTS: &[&str] = &[
        "what do you remember",
        "what did you remember",
        "what have you remembered",
        "what else do you remember",
        "what do you recall",
        "what do you know about me",
        "do you remember anything",
        "tell me what you remember",
    ];
    const WHOLE: &[&str] = &[
        "memories",
        "my memories",
        "your memories",
        "show memories",
        "show my memories",
        "show me my memories",
        "show your memories",
        "list memories",
        "list my memories",
    ];
    STARTS.iter().any(|start| {
        normalized
            .strip_prefix(start)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    }) || WHOLE.contains(&normalized)
}

/// Lower case, apostrophes unified, punctuation at the ends dropped, spaces collapsed.
fn normalize(text: &str) -> String {
    let lowered = text.to_lowercase().replace('’', "'");
    lowered
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_matches(|c: char| c.is_ascii_punctuation() && c != '\'')
        .trim()
        .to_owned()
}

/// Drops "please", "can you", "could you"... around the request.
fn strip_politeness(mut text: &str) -> &str {
    loop {
        let before = text;
        for polite in [
            "please",
            "pls",
            "hey",
            "ok",
            "okay",
            "can you",
            "could you",
            "would you",
            "will you",
        ] {
            if let Some(rest) = strip_phrase(text, polite) {
                text = rest.trim_start_matches([',', ' ']);
            }
        }
        if text == before {
            break;
        }
    }
    for polite in [", please", " please"] {
        if text.len() > polite.len()
            && text.is_char_boundary(text.len() - polite.len())
            && text[text.len() - polite.len()..].eq_ignore_ascii_case(polite)
        {
            text = &text[..text.len() - polite.len()];
        }
    }
    text.trim()
}

/// `text` after the whole word `word` at its start (any case), or `None`.
fn strip_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let rest = strip_phrase(text, word)?;
    match rest.chars().next() {
        None => Some(rest),
        Some(c) if c.is_whitespace() || matches!(c, ':' | ',' | '-' | '—' | ';') => Some(rest),
        Some(_) => None,
    }
}

/// `text` after `phrase` at its start (ASCII case-insensitive), or `None`; the phrase must end
/// at a word boundary.
fn strip_phrase<'a>(text: &'a str, phrase: &str) -> Option<&'a str> {
    let head = text.get(..phrase.len())?;
    if !head.eq_ignore_ascii_case(phrase) {
        return None;
    }
    let rest = &text[phrase.len()..];
    match rest.chars().next() {
        Some(c) if c.is_alphanumeric() => None,
        _ => Some(rest),
    }
}

/// The fact itself: separators, a leading "that" and closing punctuation removed.
fn clean_fact(rest: &str) -> String {
    let mut fact = rest.trim_start_matches(|c: char| {
        c.is_whitespace() || matches!(c, ':' | ',' | '-' | '—' | ';')
    });
    if let Some(after) = strip_word(fact, "that") {
        fact = after.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | ','));
    }
    fact.trim().trim_end_matches(['.', '!']).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use health_actors::conversation::{Agent, TurnOutcome};
    use health_actors::domain::{ChatId, UserId};
    use health_actors::memory::OfflineEmbedder;
    use health_actors::ports::{Outbox, Store, SystemClock};
    use health_actors::root::{Root, RootArgs, RootSettings};
    use health_actors::testing::{MemoryStore, RecordingOutbox};

    use super::*;
    use crate::llm::offline::OfflineAgent;
    use crate::nutrition::engine::NutritionEngine;

    #[test]
    fn remember_requests_keep_the_persons_wording() {
        let remember = |fact: &str| Some(MemoryRequest::Remember(fact.to_owned()));
        assert_eq!(
            memory_request("remember that I'm vegetarian"),
            remember("I'm vegetarian")
        );
        assert_eq!(
            memory_request("Remember: I'm allergic to peanuts."),
            remember("I'm allergic to peanuts")
        );
        assert_eq!(
            memory_request("please remember I train on Tuesdays"),
            remember("I train on Tuesdays")
        );
        assert_eq!(
            memory_request("Can you remember that I don't eat pork, please"),
            remember("I don't eat pork")
        );
        assert_eq!(
            memory_request("keep in mind that I'm lactose intolerant"),
            remember("I'm lactose intolerant")
        );
        assert_eq!(memory_request("remember"), remember(""));
        // Not facts: a reminder, a question, another word.
        assert_eq!(memory_request("remember to drink water"), None);
        assert_eq!(memory_request("remember what I ate yesterday?"), None);
        assert_eq!(memory_request("remembering is hard"), None);
        assert_eq!(memory_request("2 eggs and toast"), None);
    }

    #[test]
    fn list_and_forget_requests() {
        for text in [
            "what do you remember",
            "What do you remember about me?",
            "what do you know about me",
            "show my memories",
            "please, what do you remember?",
        ] {
            assert_eq!(memory_request(text), Some(MemoryRequest::List), "{text}");
        }
        assert_eq!(memory_request("what do you remembering"), None);
        assert_eq!(
            memory_request("forget that I'm vegetarian"),
            Some(MemoryRequest::Forget("I'm vegetarian".into()))
        );
        assert_eq!(
            memory_request("Please forget about my peanut allergy."),
            Some(MemoryRequest::Forget("my peanut allergy".into()))
        );
        assert_eq!(
            memory_request("forget everything about me"),
            Some(MemoryRequest::ForgetEverything)
        );
        assert_eq!(
            memory_request("forget me"),
            Some(MemoryRequest::ForgetEverything)
        );
        assert_eq!(memory_request("forget it"), None);
        assert_eq!(memory_request("forgetful today"), None);
    }

    #[test]
    fn forgetting_by_words_matches_either_way_round() {
        let memory = |content: &str| Memory {
            id: Uuid::new_v4(),
            user_id: UserId(1),
            content: content.into(),
            embedding: Vec::new(),
            embedder: "other".into(),
            created_at: chrono::Utc::now(),
        };
        let memories = [memory("I'm vegetarian"), memory("Allergic to peanuts")];
        assert_eq!(
            closest_by_words(&memories, "allergic to PEANUTS")
                .unwrap()
                .content,
            "Allergic to peanuts"
        );
        assert_eq!(
            closest_by_words(&memories, "vegetarian").unwrap().content,
            "I'm vegetarian"
        );
        assert!(closest_by_words(&memories, "I run on Tuesdays").is_none());
    }

    struct Chat {
        root: health_actors::root::RootHandle,
        store: Arc<MemoryStore>,
        outbox: Arc<RecordingOutbox>,
    }

    impl Chat {
        async fn start(embedder: Option<Arc<dyn Embedder>>) -> Self {
            let store = Arc::new(MemoryStore::new());
            let agent: Arc<dyn Agent> = Arc::new(
                OfflineAgent::new(Arc::new(NutritionEngine::offline())).with_memory(embedder),
            );
            let root = Root::start(RootArgs {
                store: store.clone(),
                agent,
                clock: Arc::new(SystemClock),
                settings: RootSettings::default(),
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
