//! Sending what the person reads: a plain reply, and the reply to a saved entry with its Undo /
//! Edit buttons under it (the button data this module writes, [`crate::assistant::entries`]
//! reads back when one is pressed).
//!
//! A delivery failure is logged and counted by the turn's context ([`TurnContext::reply`]); the
//! turn itself succeeded (what was saved stays saved), so these helpers answer `Ok` either way.

use health_actors::conversation::{AgentError, TurnContext};
use health_actors::ports::Button;
use uuid::Uuid;

/// Sends `text` to the person.
pub(super) async fn reply(
    ctx: &mut TurnContext<'_>,
    text: impl Into<String>,
) -> Result<(), AgentError> {
    // A delivery failure is logged and counted by the context; the turn itself succeeded.
    let _ = ctx.reply(text).await;
    Ok(())
}

/// Button data: this prefix and the entry's id.
pub(super) const UNDO_PREFIX: &str = "entry:undo:";
pub(super) const EDIT_PREFIX: &str = "entry:edit:";

/// The buttons under the reply to a saved estimate.
pub(super) fn entry_buttons(entry_id: Uuid) -> Vec<Vec<Button>> {
    vec![vec![
        Button {
            label: "Undo".into(),
            data: format!("{UNDO_PREFIX}{entry_id}"),
        },
        Button {
            label: "Edit".into(),
            data: format!("{EDIT_PREFIX}{entry_id}"),
        },
    ]]
}

/// Sends the reply to a saved estimate with its Undo / Edit buttons.
pub(super) async fn reply_with_entry_buttons(
    ctx: &mut TurnContext<'_>,
    text: impl Into<String>,
    entry_id: Uuid,
) -> Result<(), AgentError> {
    // A delivery failure is logged and counted by the context; the entry is saved either way.
    let _ = ctx.reply_with_buttons(text, &entry_buttons(entry_id)).await;
    Ok(())
}
