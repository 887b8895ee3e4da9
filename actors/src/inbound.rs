//! Messages in: what a person sent, whichever door it came through (Telegram, the HTTP API, the
//! CLI `chat`).
//!
//! An edge turns its request into an [`Inbound`] and submits it to the conversation supervisor
//! (see [`crate::conversation::ConversationsHandle`]). The `Inbound` carries the [`Outbox`] its
//! answers go to, so the HTTP API can collect the reply of one request while Telegram answers in
//! the chat. Nothing here does I/O.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::domain::{ChatId, MessageId, UserId};
use crate::ports::{InboxEntry, Outbox};

/// What the person sent.
#[derive(Clone, PartialEq)]
pub enum InboundContent {
    Text(String),
    /// A photo (already downloaded) with its optional caption.
    Photo {
        bytes: Vec<u8>,
        caption: Option<String>,
    },
    /// `/name args`, without the slash and without a `@botname` suffix.
    Command {
        name: String,
        args: String,
    },
    /// A press on a button under one of our messages.
    Button {
        data: String,
        message: MessageId,
    },
    /// A shared location (used to find the person's time zone).
    Location {
        latitude: f64,
        longitude: f64,
    },
}

impl InboundContent {
    /// A short name for metrics and logs (never the contents).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Photo { .. } => "photo",
            Self::Command { .. } => "command",
            Self::Button { .. } => "button",
            Self::Location { .. } => "location",
        }
    }

    /// How the message is kept in the conversation history the agent reads back.
    pub fn to_history_text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Photo {
                caption: Some(caption),
                ..
            } => format!("[photo] {caption}"),
            Self::Photo { caption: None, .. } => "[photo]".to_owned(),
            Self::Command { name, args } if args.is_empty() => format!("/{name}"),
            Self::Command { name, args } => format!("/{name} {args}"),
            Self::Button { data, .. } => format!("[button] {data}"),
            Self::Location {
                latitude,
                longitude,
            } => format!("[location] {latitude}, {longitude}"),
        }
    }

    /// A description for a dead letter: the kind and the content, photo bytes reduced to their
    /// size.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Text(text) => json!({ "kind": "text", "text": text }),
            Self::Photo { bytes, caption } => {
                json!({ "kind": "photo", "bytes": bytes.len(), "caption": caption })
            }
            Self::Command { name, args } => {
                json!({ "kind": "command", "name": name, "args": args })
            }
            Self::Button { data, message } => {
                json!({ "kind": "button", "data": data, "message_id": message.0 })
            }
            Self::Location {
                latitude,
                longitude,
            } => {
                json!({ "kind": "location", "latitude": latitude, "longitude": longitude })
            }
        }
    }
}

impl InboundContent {
    /// The content as kept in the inbox: JSON, with a photo's bytes apart (they go to their own
    /// column).
    ///
    /// NUL characters (which no database keeps in text) become U+FFFD.
    pub fn to_stored(&self) -> (serde_json::Value, Option<Vec<u8>>) {
        let clean = |text: &str| text.replace('\0', "\u{FFFD}");
        match self {
            Self::Photo { bytes, caption } => (
                json!({ "kind": "photo", "caption": caption.as_deref().map(clean) }),
                Some(bytes.clone()),
            ),
            Self::Text(text) => (json!({ "kind": "text", "text": clean(text) }), None),
            Self::Command { name, args } => (
                json!({ "kind": "command", "name": clean(name), "args": clean(args) }),
                None,
            ),
            Self::Button { data, message } => (
                json!({ "kind": "button", "data": clean(data), "message_id": message.0 }),
                None,
            ),
            location @ Self::Location { .. } => (location.to_json(), None),
        }
    }

    /// The content back from [`InboundContent::to_stored`]; `None` if it is not one.
    pub fn from_stored(value: &serde_json::Value, photo: Option<&[u8]>) -> Option<Self> {
        let text = |field: &str| value.get(field).and_then(|v| v.as_str()).map(str::to_owned);
        let number = |field: &str| value.get(field).and_then(serde_json::Value::as_f64);
        Some(match value.get("kind")?.as_str()? {
            "text" => Self::Text(text("text")?),
            "photo" => Self::Photo {
                bytes: photo?.to_vec(),
                caption: text("caption"),
            },
            "command" => Self::Command {
                name: text("name")?,
                args: text("args")?,
            },
            "button" => Self::Button {
                data: text("data")?,
                message: MessageId(value.get("message_id")?.as_i64()?),
            },
            "location" => Self::Location {
                latitude: number("latitude")?,
                longitude: number("longitude")?,
            },
            _ => return None,
        })
    }
}

/// Contents stay out of `Debug` so that they never reach logs by accident.
impl fmt::Debug for InboundContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InboundContent::{}", self.kind())
    }
}

/// One message from a person, with the way back to them.
#[derive(Clone)]
pub struct Inbound {
    /// Client-generated (UUIDv7, or UUIDv5 of the Telegram update id so a redelivered update
    /// keeps its id); names the dead letter if handling fails.
    pub id: Uuid,
    pub user: UserId,
    pub chat: ChatId,
    pub content: InboundContent,
    pub received_at: DateTime<Utc>,
    /// Where the answers go.
    pub reply: Arc<dyn Outbox>,
    /// Set when the message is kept in the inbox (see [`crate::inbox`]): its turn marks the
    /// entry done and a replay skips the effects already committed.
    pub durable: Option<Durable>,
    /// Where the edge stored a photo, relative to the data folder (`photos/<user>/<id>.jpg`),
    /// for the entry made from it.
    pub photo_path: Option<String>,
}

/// How a message kept in the inbox is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Durable {
    /// Effect writes of an earlier, interrupted handling that are already committed: the turn
    /// skips that many of its writes (see [`crate::conversation::TurnContext::write`]).
    pub skip_steps: u32,
    /// The edge that kept it (the inbox's `source`: `telegram`, `api`, `chat`), for the logs.
    pub source: &'static str,
}

impl Inbound {
    /// A message received now, with a fresh UUIDv7 id.
    pub fn new(
        user: UserId,
        chat: ChatId,
        content: InboundContent,
        reply: Arc<dyn Outbox>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            user,
            chat,
            content,
            received_at: Utc::now(),
            reply,
            durable: None,
            photo_path: None,
        }
    }

    /// The inbox entry that keeps this message (`source`: the edge it came through).
    pub fn to_inbox(&self, source: &str) -> InboxEntry {
        let (mut content, photo) = self.content.to_stored();
        if let Some(path) = &self.photo_path {
            content["path"] = json!(path);
        }
        InboxEntry {
            id: self.id,
            source: source.to_owned(),
            user_id: self.user,
            chat: self.chat.0,
            content,
            photo,
            received_at: self.received_at,
            steps: 0,
            kept: Vec::new(),
            attempts: 0,
        }
    }

    /// The message of an inbox entry kept by `source`, answered through `reply`; `None` when the
    /// stored content cannot be read back.
    pub fn from_inbox(
        entry: &InboxEntry,
        source: &'static str,
        reply: Arc<dyn Outbox>,
    ) -> Option<Self> {
        let content = InboundContent::from_stored(&entry.content, entry.photo.as_deref())?;
        Some(Self {
            id: entry.id,
            user: entry.user_id,
            chat: ChatId(entry.chat),
            content,
            received_at: entry.received_at,
            reply,
            durable: Some(Durable {
                skip_steps: entry.steps,
                source,
            }),
            photo_path: entry
                .content
                .get("path")
                .and_then(|path| path.as_str())
                .map(str::to_owned),
        })
    }

    /// Shorthand for a text message.
    pub fn text(
        user: UserId,
        chat: ChatId,
        text: impl Into<String>,
        reply: Arc<dyn Outbox>,
    ) -> Self {
        Self::new(user, chat, InboundContent::Text(text.into()), reply)
    }

    /// The edge it came through, for the logs: the inbox's source when it is kept there
    /// (`telegram`, `api`, `chat`), `direct` when it was submitted without the inbox (tests,
    /// benchmarks).
    pub fn channel(&self) -> &'static str {
        match self.durable {
            Some(Durable { source, .. }) if !source.is_empty() => source,
            Some(_) => "inbox",
            None => "direct",
        }
    }

    /// The dead letter's description of this message.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "inbound_id": self.id,
            "chat": self.chat.0,
            "received_at": self.received_at,
            "content": self.content.to_json(),
        })
    }
}

impl fmt::Debug for Inbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbound")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("chat", &self.chat)
            .field("content", &self.content)
            .field("received_at", &self.received_at)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_text_and_dead_letter_json_describe_each_kind() {
        let photo = InboundContent::Photo {
            bytes: vec![1, 2, 3],
            caption: Some("lunch".into()),
        };
        assert_eq!(photo.to_history_text(), "[photo] lunch");
        assert_eq!(photo.to_json()["bytes"], 3);
        let command = InboundContent::Command {
            name: "today".into(),
            args: String::new(),
        };
        assert_eq!(command.to_history_text(), "/today");
        assert_eq!(command.kind(), "command");
        assert_eq!(
            format!("{:?}", InboundContent::Text("secret".into())),
            "InboundContent::text"
        );
    }

    #[test]
    fn every_kind_survives_the_inbox() {
        let contents = [
            InboundContent::Text("2 eggs «and» toast 🍳".into()),
            InboundContent::Photo {
                bytes: vec![0xff, 0xd8, 0xff, 0],
                caption: Some("lunch".into()),
            },
            InboundContent::Photo {
                bytes: vec![1],
                caption: None,
            },
            InboundContent::Command {
                name: "goal".into(),
                args: "1800 kcal".into(),
            },
            InboundContent::Button {
                data: "undo:1".into(),
                message: MessageId(42),
            },
            InboundContent::Location {
                latitude: 52.5,
                longitude: -13.25,
            },
        ];
        for content in contents {
            let (value, photo) = content.to_stored();
            assert_eq!(
                InboundContent::from_stored(&value, photo.as_deref()),
                Some(content.clone())
            );
        }
        assert_eq!(
            InboundContent::from_stored(&json!({"kind": "sticker"}), None),
            None
        );
    }

    #[test]
    fn a_kept_photo_keeps_where_it_was_stored() {
        let outbox: Arc<dyn Outbox> = crate::testing::RecordingOutbox::new();
        let content = InboundContent::Photo {
            bytes: vec![0xff, 0xd8, 0xff],
            caption: None,
        };
        let mut message = Inbound::new(UserId(7), ChatId(7), content, outbox.clone());
        message.photo_path = Some("photos/7/a.jpg".into());
        let kept = message.to_inbox("telegram");
        let back = Inbound::from_inbox(&kept, "telegram", outbox).expect("readable");
        assert_eq!(back.photo_path.as_deref(), Some("photos/7/a.jpg"));
        assert_eq!(back.content, message.content);
        assert_eq!(
            back.durable,
            Some(Durable {
                skip_steps: 0,
                source: "telegram"
            })
        );
        assert_eq!(back.channel(), "telegram");
        assert_eq!(message.channel(), "direct");
    }
}
