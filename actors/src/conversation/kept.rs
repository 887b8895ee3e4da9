//! What a message's turn kept, and the apology that says so.
//!
//! Each effect write of a turn whose message is kept in the inbox names, in the person's words,
//! what it saves ([`kept_by`]: "101 g of rice (131 kcal)"); the store adds that to the inbox
//! entry with the step marker, in the same transaction. When the message becomes a dead letter
//! (its turn failed, or was started [`crate::inbox::MAX_ATTEMPTS`] times and never finished),
//! [`apology`] tells the person what was kept, and asks them to send the message again only
//! when nothing of it was saved: sending a saved meal again would count it twice.

use super::APOLOGY;
use crate::ports::Write;

/// What the person reads when part of their message was saved but not what (effects they do
/// not name, such as a changed profile).
pub const PARTLY_SAVED_APOLOGY: &str = "Sorry, something went wrong while I was handling that \
    message, after part of it was saved. Please look at your log before sending any of it \
    again, so that nothing is counted twice.";

/// What `writes` save, each named in the person's words; effects the person does not name
/// (history, XP, streaks, the profile) are left out.
pub fn kept_by(writes: &[Write]) -> Vec<String> {
    writes
        .iter()
        .filter_map(|write| match write {
            Write::InsertFoodEntry(entry) => Some(format!(
                "{} ({:.0} kcal)",
                entry.description, entry.total.kcal
            )),
            Write::UpdateFoodEntry(entry) => Some(format!("the change to {}", entry.description)),
            Write::DeleteFoodEntry { .. } => Some("the removal of an entry".to_owned()),
            Write::InsertWeight(weight) => Some(format!("your weight of {} kg", weight.kg)),
            Write::UpsertReminder(reminder) => Some(format!("the reminder \"{}\"", reminder.text)),
            Write::DeleteReminder { .. } => Some("the removal of a reminder".to_owned()),
            _ => None,
        })
        .collect()
}

/// The apology for a message whose turn committed `steps` effect writes that kept `kept`.
pub fn apology(steps: u32, kept: &[String]) -> String {
    if steps == 0 {
        return APOLOGY.to_owned();
    }
    if kept.is_empty() {
        return PARTLY_SAVED_APOLOGY.to_owned();
    }
    format!(
        "Sorry, something went wrong while I was handling that message. I did save {}; \
         anything else in it was not done. No need to send what was saved again.",
        join_and(kept)
    )
}

fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apology_asks_to_send_again_only_when_nothing_was_saved() {
        assert_eq!(apology(0, &[]), APOLOGY);
        assert_eq!(apology(2, &[]), PARTLY_SAVED_APOLOGY);
        let saved = apology(1, &["2 eggs (143 kcal)".to_owned()]);
        assert!(saved.contains("I did save 2 eggs (143 kcal);"), "{saved}");
        let two = apology(
            2,
            &["2 eggs (143 kcal)".into(), "your weight of 70.5 kg".into()],
        );
        assert!(
            two.contains("2 eggs (143 kcal) and your weight of 70.5 kg"),
            "{two}"
        );
        for text in [saved, two, PARTLY_SAVED_APOLOGY.to_owned()] {
            assert!(!text.contains("send it again"), "{text}");
        }
    }
}
