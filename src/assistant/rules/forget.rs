//! `/forget_me`: deleting everything about a person, after they confirm with a button.
//!
//! The store deletes every row of the person in one transaction; the turn's own history is
//! dropped too, so that nothing of this conversation brings them back.

use health_actors::conversation::{AgentError, TurnContext};
use health_actors::domain::MessageId;
use health_actors::ports::Button;

/// Button data of the `/forget_me` confirmation. An edge that keeps files about the person
/// (Telegram's photos) deletes them when it sees [`FORGET_ME_CONFIRM`] answered.
pub const FORGET_ME_CONFIRM: &str = "forget_me:yes";
pub(super) const FORGET_ME_CANCEL: &str = "forget_me:no";
/// What the person reads once everything about them is gone.
pub(super) const FORGOTTEN: &str = "Done: I deleted everything I had about you (food log, weights, goals, memories, reminders, photos and our conversation). If you write again, I'll start from scratch.";

pub(super) async fn ask_forget_me(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let buttons = [vec![
        Button {
            label: "Yes, delete everything".into(),
            data: FORGET_ME_CONFIRM.into(),
        },
        Button {
            label: "No, keep it".into(),
            data: FORGET_ME_CANCEL.into(),
        },
    ]];
    let _ = ctx
        .reply_with_buttons(
            "This deletes everything I have about you: food log, weights, goals, memories, reminders, \
             photos and our conversation. It can't be undone. Are you sure?",
            &buttons,
        )
        .await;
    Ok(())
}

/// Handles a press on the confirmation's buttons; `None` when `data` is not one of them.
/// `message` is the question the buttons were under, which the answer replaces.
pub(super) async fn forget_me_button(
    ctx: &mut TurnContext<'_>,
    data: &str,
    message: MessageId,
) -> Option<Result<(), AgentError>> {
    if data == FORGET_ME_CONFIRM {
        let user_id = ctx.user().id;
        if let Err(error) = ctx.store().delete_user(user_id).await {
            return Some(Err(error.into()));
        }
        tracing::info!(user_id = %user_id, "deleted everything about a person at their request");
        // The history of this turn must not bring the person back.
        ctx.forget_this_turn();
        let _ = ctx.reply_in_place(message, FORGOTTEN).await;
        return Some(Ok(()));
    }
    if data == FORGET_ME_CANCEL {
        let _ = ctx
            .reply_in_place(message, "Okay, I kept everything; nothing was deleted.")
            .await;
        return Some(Ok(()));
    }
    None
}
