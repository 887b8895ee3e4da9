//! What a message asks of the memory, by plain rules (pure code): "remember that I'm
//! vegetarian" (or "remember: ...") keeps a fact, "what do you remember (about me)?" lists them,
//! "forget that I'm vegetarian" forgets the closest one, "forget everything about me" is the
//! request to delete everything (which the assistant answers by pointing to `/forget_me`).
//!
//! The reading is conservative: "remember to drink water" is a reminder and "remember what I
//! ate?" a question, so neither is a fact to keep; "forget it" is a "never mind". Politeness
//! ("please", "can you") around the request is dropped, the person's own wording of the fact is
//! kept. [`closest_by_words`] finds a stored fact by its words, for facts kept by another
//! embedder or when no embedder is configured.

use crate::domain::Memory;

/// What a message asks of the memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryRequest {
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
pub fn memory_request(text: &str) -> Option<MemoryRequest> {
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

/// A stored fact containing `fact`'s words (or contained in them): for facts kept by another
/// embedder, or when there is none.
pub fn closest_by_words(memories: &[Memory], fact: &str) -> Option<Memory> {
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
    use uuid::Uuid;

    use super::*;
    use crate::domain::UserId;

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
}
