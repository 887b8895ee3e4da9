//! A fake Telegram Bot API on loopback: `POST /bot<token>/<Method>` with JSON or multipart
//! bodies and `GET /file/bot<token>/<path>` for downloads, answering with the Bot API's JSON
//! shapes. Tests queue updates (as a person would send them), read what the bot sent, serve
//! files for `getFile`, and script failures (a 429 with `retry_after`).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Notify;
use warp::http::StatusCode;
use warp::Filter;

/// A token that passes the configuration's format check.
pub const TOKEN: &str = "123456789:TESTtokenTESTtokenTESTtokenTEST1234";
pub const BOT_ID: i64 = 123456789;
/// The bot's counter of failed Bot API calls, as `/metrics` names it.
pub const SEND_FAILURES_METRIC: &str = health_agent::telegram::SEND_FAILURES_TOTAL;

/// One call the bot made to a sending method.
#[derive(Debug, Clone)]
pub struct Sent {
    pub method: String,
    pub chat_id: i64,
    pub text: Option<String>,
    pub caption: Option<String>,
    pub file_name: Option<String>,
    pub file: Option<Vec<u8>>,
    pub reply_markup: Option<Value>,
    pub message_id: i64,
    /// When the bot's call arrived.
    pub at: tokio::time::Instant,
}

impl Sent {
    /// The `callback_data` of every button under the message.
    pub fn button_data(&self) -> Vec<String> {
        self.reply_markup
            .as_ref()
            .and_then(|markup| markup["inline_keyboard"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .flat_map(|row| row.as_array().cloned().unwrap_or_default())
            .filter_map(|button| button["callback_data"].as_str().map(str::to_owned))
            .collect()
    }
}

#[derive(Default)]
pub struct FakeTelegramState {
    updates: Mutex<Vec<Value>>,
    update_arrived: Notify,
    next_update: AtomicI64,
    /// The offset the bot last asked with: updates below it are confirmed.
    pub confirmed: AtomicI64,
    next_message: AtomicI64,
    pub sent: Mutex<Vec<Sent>>,
    pub sent_changed: Notify,
    /// Every method called, in order.
    pub calls: Mutex<Vec<String>>,
    /// `file_id` → (`file_path`, bytes).
    files: Mutex<HashMap<String, (String, Vec<u8>)>>,
    /// Statuses to answer a method with before behaving normally (429 carries `retry_after` 1).
    failures: Mutex<HashMap<String, VecDeque<u16>>>,
    /// Sizes `getFile` reports instead of the real one (to fake a huge file cheaply).
    reported_sizes: Mutex<HashMap<String, u64>>,
}

pub struct FakeTelegram {
    pub address: SocketAddr,
    pub state: Arc<FakeTelegramState>,
}

fn from_user(user: i64) -> Value {
    json!({"id": user, "is_bot": false, "first_name": "Test", "username": format!("user{user}")})
}

fn private_chat(chat: i64) -> Value {
    json!({"id": chat, "type": "private", "first_name": "Test"})
}

impl FakeTelegram {
    pub fn api_url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn push_update(&self, body: Value) -> i64 {
        let id = self.state.next_update.fetch_add(1, Ordering::SeqCst) + 1;
        let mut update = body;
        update["update_id"] = json!(id);
        self.state.updates.lock().unwrap().push(update);
        self.state.update_arrived.notify_waiters();
        id
    }

    fn message_base(&self, user: i64) -> Value {
        let message_id = self.state.next_message.fetch_add(1, Ordering::SeqCst) + 1;
        json!({
            "message_id": message_id,
            "date": chrono::Utc::now().timestamp(),
            "chat": private_chat(user),
            "from": from_user(user),
        })
    }

    /// A text message (a command when it starts with '/').
    pub fn send_text(&self, user: i64, text: &str) -> i64 {
        let update = self.text_update(user, text);
        self.push_update(update)
    }

    /// The update of a text message, without an `update_id`, for a test to deliver itself
    /// (webhook mode).
    pub fn text_update(&self, user: i64, text: &str) -> Value {
        let mut message = self.message_base(user);
        message["text"] = json!(text);
        if text.starts_with('/') {
            let length = text
                .split_whitespace()
                .next()
                .unwrap_or(text)
                .chars()
                .count();
            message["entities"] = json!([{"type": "bot_command", "offset": 0, "length": length}]);
        }
        json!({ "message": message })
    }

    /// Serves `bytes` as a file and returns its `file_id`.
    pub fn add_file(&self, name: &str, bytes: Vec<u8>) -> String {
        let file_id = format!("file-{name}");
        self.state
            .files
            .lock()
            .unwrap()
            .insert(file_id.clone(), (format!("documents/{name}"), bytes));
        file_id
    }

    /// Makes `getFile` report `size` bytes for the file.
    pub fn report_size(&self, file_id: &str, size: u64) {
        self.state
            .reported_sizes
            .lock()
            .unwrap()
            .insert(file_id.to_owned(), size);
    }

    /// A photo message with the sizes Telegram would offer (the served file is the largest).
    pub fn send_photo(&self, user: i64, file_id: &str, size: u64, caption: Option<&str>) -> i64 {
        let mut message = self.message_base(user);
        message["photo"] = json!([
            {"file_id": "thumbnail-not-served", "file_unique_id": "t1", "width": 90, "height": 67, "file_size": 1000},
            {"file_id": file_id, "file_unique_id": "u1", "width": 1280, "height": 960, "file_size": size}
        ]);
        if let Some(caption) = caption {
            message["caption"] = json!(caption);
        }
        self.push_update(json!({ "message": message }))
    }

    /// A file sent as a document.
    pub fn send_document(&self, user: i64, file_id: &str, name: &str, size: u64) -> i64 {
        let mut message = self.message_base(user);
        message["document"] = json!({
            "file_id": file_id, "file_unique_id": format!("u-{file_id}"), "file_name": name,
            "mime_type": "application/octet-stream", "file_size": size
        });
        self.push_update(json!({ "message": message }))
    }

    pub fn send_location(&self, user: i64, latitude: f64, longitude: f64) -> i64 {
        let mut message = self.message_base(user);
        message["location"] = json!({"latitude": latitude, "longitude": longitude});
        self.push_update(json!({ "message": message }))
    }

    /// A press on a button with `data` under the bot's message `message_id`.
    pub fn press_button(&self, user: i64, message_id: i64, data: &str) -> i64 {
        let message = json!({
            "message_id": message_id,
            "date": chrono::Utc::now().timestamp(),
            "chat": private_chat(user),
            "from": {"id": BOT_ID, "is_bot": true, "first_name": "Bot"},
            "text": "(the bot's question)",
        });
        self.push_update(json!({
            "callback_query": {
                "id": format!("query-{message_id}-{data}"),
                "from": from_user(user),
                "message": message,
                "chat_instance": "instance",
                "data": data,
            }
        }))
    }

    /// The next `count` calls of `method` fail with `status`.
    pub fn fail_next(&self, method: &str, status: u16, count: usize) {
        let mut failures = self.state.failures.lock().unwrap();
        let queue = failures.entry(method.to_owned()).or_default();
        queue.extend(std::iter::repeat_n(status, count));
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.state.sent.lock().unwrap().clone()
    }

    pub fn sent_to(&self, chat: i64) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| s.chat_id == chat)
            .collect()
    }

    pub fn calls_of(&self, method: &str) -> usize {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.as_str() == method)
            .count()
    }

    /// Waits until something sent to `chat` after the first `after` messages satisfies `check`.
    pub async fn wait_for(
        &self,
        chat: i64,
        after: usize,
        what: &str,
        check: impl Fn(&Sent) -> bool,
    ) -> Sent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let changed = self.state.sent_changed.notified();
            if let Some(found) = self.sent_to(chat).into_iter().skip(after).find(&check) {
                return found;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!(
                    "timed out waiting for {what}; sent to {chat}: {:#?}; calls: {:?}",
                    self.sent_to(chat),
                    self.state.calls.lock().unwrap()
                );
            }
        }
    }

    /// Waits for a text to `chat` (after the first `after` messages) containing `needle`.
    pub async fn wait_for_text(&self, chat: i64, after: usize, needle: &str) -> String {
        self.wait_for(chat, after, needle, |s| {
            s.text.as_deref().is_some_and(|t| t.contains(needle))
        })
        .await
        .text
        .unwrap_or_default()
    }
}

/// `multipart/form-data` parts as (name, file name, bytes).
fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<(String, Option<String>, Vec<u8>)> {
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return Vec::new();
    };
    let delimiter = format!("--{}", boundary.trim_matches('"'));
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let mut positions = Vec::new();
    let mut at = 0;
    while let Some(found) = find(&body[at..], delimiter) {
        positions.push(at + found);
        at += found + delimiter.len();
    }
    for window in positions.windows(2) {
        let part = &body[window[0] + delimiter.len()..window[1]];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(split) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let headers = String::from_utf8_lossy(&part[..split]).to_string();
        let content = part[split + 4..].to_vec();
        let field = |key: &str| {
            headers
                .split(';')
                .map(str::trim)
                .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches(['"', '\r', '\n']).to_owned())
        };
        if let Some(name) = field("name") {
            parts.push((name, field("filename"), content));
        }
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn ok(result: Value) -> (StatusCode, Value) {
    (StatusCode::OK, json!({"ok": true, "result": result}))
}

async fn answer(
    state: Arc<FakeTelegramState>,
    method: String,
    content_type: String,
    body: bytes::Bytes,
) -> (StatusCode, Value) {
    // teloxide writes method names in PascalCase; the Bot API ignores the case.
    let mut method = method;
    if let Some(first) = method.get_mut(..1) {
        first.make_ascii_lowercase();
    }
    state.calls.lock().unwrap().push(method.clone());
    let mut parts = Vec::new();
    let params: Value = if content_type.starts_with("multipart/form-data") {
        parts = multipart_parts(&content_type, &body);
        let mut object = serde_json::Map::new();
        for (name, file_name, bytes) in &parts {
            if file_name.is_none() {
                let text = String::from_utf8_lossy(bytes).to_string();
                let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                object.insert(name.clone(), value);
            }
        }
        Value::Object(object)
    } else {
        serde_json::from_slice(&body).unwrap_or(json!({}))
    };
    let failure = state
        .failures
        .lock()
        .unwrap()
        .get_mut(&method)
        .and_then(VecDeque::pop_front);
    if let Some(status) = failure {
        let body = if status == 429 {
            json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}})
        } else {
            json!({"ok": false, "error_code": status, "description": "Internal Server Error"})
        };
        return (StatusCode::from_u16(status).unwrap(), body);
    }
    let chat_id = params["chat_id"]
        .as_i64()
        .or_else(|| params["chat_id"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_default();
    match method.as_str() {
        "getMe" => ok(json!({
            "id": BOT_ID, "is_bot": true, "first_name": "Health", "username": "health_test_bot",
            "can_join_groups": false, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        })),
        "getWebhookInfo" => {
            ok(json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0}))
        }
        "deleteWebhook"
        | "setWebhook"
        | "setMyCommands"
        | "sendChatAction"
        | "answerCallbackQuery" => ok(json!(true)),
        "getUpdates" => {
            // As Telegram does: asking with an offset confirms every update before it, and
            // confirmed updates are never sent again; without one, the first unconfirmed come.
            let confirmed = match params["offset"].as_i64() {
                Some(offset) => state
                    .confirmed
                    .fetch_max(offset, Ordering::SeqCst)
                    .max(offset),
                None => state.confirmed.load(Ordering::SeqCst),
            };
            let limit = params["limit"].as_u64().unwrap_or(100).clamp(1, 100) as usize;
            // Long polling as Telegram does it: the call is held until an update arrives or the
            // `timeout` the bot asked for (seconds; 0 answers at once) runs out, then answered
            // with an empty list. A stopping bot drops its call; nothing waits on the answer.
            let hold = Duration::from_secs(params["timeout"].as_u64().unwrap_or(0).min(60));
            let deadline = tokio::time::Instant::now() + hold;
            loop {
                let arrived = state.update_arrived.notified();
                let pending: Vec<Value> = state
                    .updates
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= confirmed)
                    .take(limit)
                    .cloned()
                    .collect();
                if !pending.is_empty() {
                    return ok(Value::Array(pending));
                }
                if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                    return ok(json!([]));
                }
            }
        }
        "getFile" => {
            let file_id = params["file_id"].as_str().unwrap_or_default().to_owned();
            let files = state.files.lock().unwrap();
            match files.get(&file_id) {
                Some((path, bytes)) => {
                    let size = state
                        .reported_sizes
                        .lock()
                        .unwrap()
                        .get(&file_id)
                        .copied()
                        .unwrap_or(bytes.len() as u64);
                    ok(
                        json!({"file_id": file_id, "file_unique_id": format!("u-{file_id}"), "file_size": size, "file_path": path}),
                    )
                }
                None => (
                    StatusCode::BAD_REQUEST,
                    json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"}),
                ),
            }
        }
        "sendMessage" | "sendPhoto" | "sendDocument" | "editMessageText" => {
            let message_id = if method == "editMessageText" {
                params["message_id"].as_i64().unwrap_or_default()
            } else {
                state.next_message_id()
            };
            let file = parts
                .iter()
                .find(|(_, file_name, _)| file_name.is_some())
                .cloned();
            let sent = Sent {
                method: method.clone(),
                chat_id,
                text: params["text"].as_str().map(str::to_owned),
                caption: params["caption"].as_str().map(str::to_owned),
                file_name: file.as_ref().and_then(|(_, name, _)| name.clone()),
                file: file.map(|(_, _, bytes)| bytes),
                reply_markup: params.get("reply_markup").cloned(),
                message_id,
                at: tokio::time::Instant::now(),
            };
            let mut message = json!({
                "message_id": message_id,
                "date": chrono::Utc::now().timestamp(),
                "chat": private_chat(chat_id),
                "from": {"id": BOT_ID, "is_bot": true, "first_name": "Health"},
            });
            match method.as_str() {
                "sendPhoto" => {
                    message["photo"] = json!([{"file_id": "sent-photo", "file_unique_id": "sp", "width": 800, "height": 500, "file_size": 1}]);
                }
                "sendDocument" => {
                    message["document"] = json!({"file_id": "sent-document", "file_unique_id": "sd", "file_name": sent.file_name});
                }
                _ => message["text"] = json!(sent.text.clone().unwrap_or_default()),
            }
            state.sent.lock().unwrap().push(sent);
            state.sent_changed.notify_waiters();
            ok(message)
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({"ok": false, "error_code": 404, "description": "Not Found: method not found"}),
        ),
    }
}

impl FakeTelegramState {
    fn next_message_id(&self) -> i64 {
        // Bot messages get ids far from the people's, so tests can tell them apart.
        self.next_message.fetch_add(1, Ordering::SeqCst) + 100_001
    }
}

pub async fn start() -> FakeTelegram {
    let state = Arc::new(FakeTelegramState::default());
    let api_state = state.clone();
    let api = warp::post()
        .and(warp::path::param::<String>())
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::bytes())
        .then(
            move |bot: String, method: String, content_type: Option<String>, body: bytes::Bytes| {
                let state = api_state.clone();
                async move {
                    let (status, body) = if bot != format!("bot{TOKEN}") {
                        (
                            StatusCode::UNAUTHORIZED,
                            json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
                        )
                    } else {
                        answer(state, method, content_type.unwrap_or_default(), body).await
                    };
                    warp::reply::with_status(warp::reply::json(&body), status)
                }
            },
        );
    let file_state = state.clone();
    let files = warp::get()
        .and(warp::path("file"))
        .and(warp::path::param::<String>())
        .and(warp::path::tail())
        .map(move |bot: String, tail: warp::path::Tail| {
            // teloxide sends the path's slashes percent-encoded.
            let path = tail.as_str().replace("%2F", "/").replace("%2f", "/");
            let found = (bot == format!("bot{TOKEN}"))
                .then(|| {
                    file_state
                        .files
                        .lock()
                        .unwrap()
                        .values()
                        .find(|(file_path, _)| *file_path == path)
                        .map(|(_, bytes)| bytes.clone())
                })
                .flatten();
            match found {
                Some(bytes) => warp::reply::with_status(bytes, StatusCode::OK),
                None => warp::reply::with_status(Vec::new(), StatusCode::NOT_FOUND),
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(api.or(files)).incoming(listener).run());
    FakeTelegram { address, state }
}
