//! One conversation turn through the real actor tree, handed over as an edge would.

use std::sync::Arc;
use std::time::Duration;

use health_actors::conversation::{ConversationsHandle, TurnOutcome};
use health_actors::domain::{ChatId, UserId};
use health_actors::inbound::{Inbound, InboundContent};
use health_actors::ports::Outbox;
use health_actors::testing::RecordingOutbox;

/// How long a turn may take before the test fails.
pub const TURN: Duration = Duration::from_secs(60);

/// Hands `content` from `user` to `conversations`, waits until the turn is answered, and returns
/// what the person was sent during it, one message per line.
pub async fn turn(
    conversations: ConversationsHandle,
    outbox: &Arc<RecordingOutbox>,
    user: i64,
    content: InboundContent,
) -> String {
    let reply: Arc<dyn Outbox> = outbox.clone();
    let before = outbox.texts_to(ChatId(user)).len();
    let inbound = Inbound::new(UserId(user), ChatId(user), content, reply);
    let outcome = conversations
        .submit_and_wait(inbound, TURN)
        .await
        .expect("the turn was taken");
    assert_eq!(outcome, TurnOutcome::Answered);
    outbox.texts_to(ChatId(user))[before..].join("\n")
}

/// [`turn`] with a text message.
pub async fn say(
    conversations: ConversationsHandle,
    outbox: &Arc<RecordingOutbox>,
    user: i64,
    text: &str,
) -> String {
    turn(
        conversations,
        outbox,
        user,
        InboundContent::Text(text.to_owned()),
    )
    .await
}
