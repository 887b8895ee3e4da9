//! `health-agent chat`: talk to the assistant in a terminal, or pipe lines in from a script.
//!
//! Each line goes through the same path as a Telegram message: an [`Inbound`] for the
//! conversation supervisor, the person's conversation actor, the agent, the persistence actor
//! and the configured store. Replies print to standard output through [`TerminalOutbox`].

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use health_actors::conversation::{ConversationsHandle, TurnOutcome};
use health_actors::domain::{ChatId, MessageId, UserId};
use health_actors::inbound::{Inbound, InboundContent};
use health_actors::inbox::{Inbox, SOURCE_CHAT};
use health_actors::ports::{Button, Outbox, OutboxError, SentMessage};
use tokio::io::AsyncBufReadExt;

/// How long one line may take to be answered before `chat` gives up on it.
const TURN_TIMEOUT: Duration = Duration::from_secs(180);

/// Prints what the assistant says; files (an export, a chart) are written to `files_dir`.
pub struct TerminalOutbox {
    files_dir: PathBuf,
    next_message: AtomicI64,
}

impl TerminalOutbox {
    pub fn new(files_dir: PathBuf) -> Self {
        Self {
            files_dir,
            next_message: AtomicI64::new(1),
        }
    }

    fn sent(&self, chat: ChatId) -> SentMessage {
        SentMessage {
            chat,
            message: MessageId(self.next_message.fetch_add(1, Ordering::Relaxed)),
        }
    }

    fn print(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}\n");
        let _ = stdout.flush();
    }

    fn save(&self, file_name: &str, bytes: &[u8]) -> Result<PathBuf, OutboxError> {
        // Only the last path component: a file name never chooses the directory.
        let name = std::path::Path::new(file_name)
            .file_name()
            .unwrap_or_else(|| "file".as_ref());
        std::fs::create_dir_all(&self.files_dir)
            .map_err(|e| OutboxError::Rejected(e.to_string()))?;
        let path = self.files_dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| OutboxError::Rejected(e.to_string()))?;
        Ok(path)
    }
}

fn buttons_line(buttons: &[Vec<Button>]) -> String {
    buttons
        .iter()
        .flatten()
        .map(|b| format!("[{}]", b.label))
        .collect::<Vec<_>>()
        .join(" ")
}

#[async_trait]
impl Outbox for TerminalOutbox {
    async fn send_text(&self, chat: ChatId, text: &str) -> Result<SentMessage, OutboxError> {
        self.print(text);
        Ok(self.sent(chat))
    }

    async fn send_buttons(
        &self,
        chat: ChatId,
        text: &str,
        buttons: &[Vec<Button>],
    ) -> Result<SentMessage, OutboxError> {
        self.print(&format!("{text}\n{}", buttons_line(buttons)));
        Ok(self.sent(chat))
    }

    async fn send_photo(
        &self,
        chat: ChatId,
        photo: &[u8],
        caption: Option<&str>,
    ) -> Result<SentMessage, OutboxError> {
        let message = self.sent(chat);
        let path = self.save(&format!("photo-{}.png", message.message.0), photo)?;
        self.print(&format!(
            "{}(picture saved to {})",
            caption.map(|c| format!("{c}\n")).unwrap_or_default(),
            path.display()
        ));
        Ok(message)
    }

    async fn send_document(
        &self,
        chat: ChatId,
        file_name: &str,
        bytes: &[u8],
        caption: Option<&str>,
    ) -> Result<SentMessage, OutboxError> {
        let path = self.save(file_name, bytes)?;
        self.print(&format!(
            "{}(file saved to {})",
            caption.map(|c| format!("{c}\n")).unwrap_or_default(),
            path.display()
        ));
        Ok(self.sent(chat))
    }

    async fn edit_text(
        &self,
        _message: SentMessage,
        text: &str,
        buttons: Option<&[Vec<Button>]>,
    ) -> Result<(), OutboxError> {
        match buttons {
            Some(buttons) => self.print(&format!("(updated) {text}\n{}", buttons_line(buttons))),
            None => self.print(&format!("(updated) {text}")),
        }
        Ok(())
    }

    async fn typing(&self, _chat: ChatId) -> Result<(), OutboxError> {
        Ok(())
    }
}

/// A typed line as what a person sends: `/name args` is a command, anything else text.
pub fn line_to_content(line: &str) -> Option<InboundContent> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    Some(match line.strip_prefix('/') {
        Some(command) if !command.is_empty() && !command.starts_with(' ') => {
            let (name, args) = command
                .split_once(char::is_whitespace)
                .unwrap_or((command, ""));
            InboundContent::Command {
                name: name.to_lowercase(),
                args: args.trim().to_owned(),
            }
        }
        _ => InboundContent::Text(line.to_owned()),
    })
}

/// Reads lines until the end of input, handing each to the conversation of `user` and waiting
/// for its answer before reading the next. Each line is kept in the inbox first, like a
/// Telegram message: lines an earlier `chat` accepted and did not finish (it was killed) are
/// answered first.
pub async fn run(
    inbox: Inbox,
    conversations: ConversationsHandle,
    user: UserId,
    files_dir: PathBuf,
) -> std::io::Result<()> {
    let interactive = std::io::stdin().is_terminal();
    let outbox: Arc<dyn Outbox> = Arc::new(TerminalOutbox::new(files_dir));
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    match inbox.pending(SOURCE_CHAT, outbox.clone()).await {
        Ok(earlier) => {
            if !earlier.is_empty() {
                eprintln!(
                    "Answering {} line(s) from an earlier session that was interrupted.",
                    earlier.len()
                );
            }
            for inbound in earlier {
                wait_for_turn(&conversations, inbound).await;
            }
        }
        Err(error) => eprintln!("Could not read the lines kept from an earlier session: {error}"),
    }
    if interactive {
        println!(
            "Talking to health-agent as user {user}. Type what you ate, or /help. Ctrl-D ends.\n"
        );
    }
    loop {
        if interactive {
            print!("> ");
            let _ = std::io::stdout().flush();
        }
        let Some(line) = lines.next_line().await? else {
            break;
        };
        let Some(content) = line_to_content(&line) else {
            continue;
        };
        let inbound = Inbound::new(user, ChatId(user.0), content, outbox.clone());
        let kept = match inbox.accept(SOURCE_CHAT, vec![inbound]).await {
            Ok(kept) => kept,
            Err(error) => {
                eprintln!("That line could not be saved, so it was not sent: {error}");
                continue;
            }
        };
        for inbound in kept {
            if !wait_for_turn(&conversations, inbound).await {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Hands a kept line over and waits for its answer; false when the assistant is stopping.
async fn wait_for_turn(conversations: &ConversationsHandle, inbound: Inbound) -> bool {
    match conversations.submit_and_wait(inbound, TURN_TIMEOUT).await {
        Ok(
            TurnOutcome::Answered
            | TurnOutcome::Busy
            | TurnOutcome::Failed
            | TurnOutcome::Unavailable,
        ) => true,
        Ok(TurnOutcome::ShuttingDown) => false,
        Err(error) => {
            eprintln!("{error}");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_commands_or_text() {
        assert_eq!(line_to_content("   "), None);
        assert_eq!(
            line_to_content("/Goal 1800 kcal"),
            Some(InboundContent::Command {
                name: "goal".into(),
                args: "1800 kcal".into()
            })
        );
        assert_eq!(
            line_to_content("/today"),
            Some(InboundContent::Command {
                name: "today".into(),
                args: String::new()
            })
        );
        assert_eq!(
            line_to_content("2 eggs"),
            Some(InboundContent::Text("2 eggs".into()))
        );
        assert_eq!(
            line_to_content("/ not a command"),
            Some(InboundContent::Text("/ not a command".into()))
        );
    }
}
