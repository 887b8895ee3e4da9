//! A fake model provider on 127.0.0.1 speaking OpenAI's Chat Completions and embeddings and
//! Anthropic's Messages wire formats. Answers are scripted per path; every request is recorded
//! with its headers and arrival time so tests can check what the adapters sent, and when.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::Filter;

/// One scripted answer: a status and a JSON body.
pub type Scripted = (u16, Value);

/// One scripted answer with everything a test may vary: the status, the body (JSON, or raw bytes
/// for a malformed answer), the `Retry-After` header (`0` unless set) and a delay before
/// answering (longer than the client's timeout, it is a timeout).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after: String,
    pub delay: Duration,
}

impl Answer {
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            body: body.to_string().into_bytes(),
            retry_after: "0".into(),
            delay: Duration::ZERO,
        }
    }

    /// A body sent as is, with `content-type: application/json`.
    pub fn raw(status: u16, body: &str) -> Self {
        Self {
            body: body.as_bytes().to_vec(),
            ..Self::json(status, &Value::Null)
        }
    }

    pub fn retry_after(mut self, value: &str) -> Self {
        value.clone_into(&mut self.retry_after);
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl From<Scripted> for Answer {
    fn from((status, body): Scripted) -> Self {
        Self::json(status, &body)
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
    /// When the request arrived.
    pub at: Instant,
}

#[derive(Default)]
struct State {
    scripts: Mutex<HashMap<String, VecDeque<Answer>>>,
    /// Answers for one model on a path (e.g. two OpenAI vision models), used before `scripts`.
    model_scripts: Mutex<HashMap<(String, String), VecDeque<Answer>>>,
    /// How long a model takes to answer on a path.
    delays: Mutex<HashMap<(String, String), Duration>>,
    requests: Mutex<Vec<Recorded>>,
}

pub struct FakeLlm {
    pub address: SocketAddr,
    state: Arc<State>,
}

impl FakeLlm {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Queues answers for `path` (e.g. `/v1/chat/completions`); when the queue is empty the path
    /// answers 500.
    pub fn script<A: Into<Answer>>(&self, path: &str, answers: impl IntoIterator<Item = A>) {
        self.state
            .scripts
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default()
            .extend(answers.into_iter().map(Into::into));
    }

    /// Queues answers for requests to `path` naming `model` (the body's `model` field).
    pub fn script_model<A: Into<Answer>>(
        &self,
        path: &str,
        model: &str,
        answers: impl IntoIterator<Item = A>,
    ) {
        self.state
            .model_scripts
            .lock()
            .unwrap()
            .entry((path.to_owned(), model.to_owned()))
            .or_default()
            .extend(answers.into_iter().map(Into::into));
    }

    /// Makes requests to `path` naming `model` wait `delay` before the answer.
    pub fn delay_model(&self, path: &str, model: &str, delay: Duration) {
        self.state
            .delays
            .lock()
            .unwrap()
            .insert((path.to_owned(), model.to_owned()), delay);
    }

    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

/// An OpenAI answer with text.
pub fn openai_text(text: &str) -> Scripted {
    (
        200,
        json!({
            "id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        }),
    )
}

/// An OpenAI answer calling one tool.
pub fn openai_tool(name: &str, arguments: Value) -> Scripted {
    (
        200,
        json!({
            "id": "chatcmpl-2", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments.to_string()}}]
            }}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        }),
    )
}

/// An OpenAI answer calling one tool with `arguments` sent exactly as given (e.g. text that is
/// not JSON, as a model sometimes writes).
pub fn openai_tool_raw(name: &str, arguments: &str) -> Scripted {
    (
        200,
        json!({
            "id": "chatcmpl-3", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}]
            }}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        }),
    )
}

/// An Anthropic answer calling one tool.
pub fn anthropic_tool(name: &str, input: Value) -> Scripted {
    (
        200,
        json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test", "stop_reason": "tool_use",
            "content": [{"type": "text", "text": "One moment."}, {"type": "tool_use", "id": "toolu_1", "name": name, "input": input}],
            "usage": {"input_tokens": 80, "output_tokens": 15}
        }),
    )
}

/// An Anthropic answer with text.
pub fn anthropic_text(text: &str) -> Scripted {
    (
        200,
        json!({
            "id": "msg_2", "type": "message", "role": "assistant", "model": "claude-test", "stop_reason": "end_turn",
            "content": [{"type": "text", "text": text}],
            "usage": {"input_tokens": 90, "output_tokens": 12}
        }),
    )
}

pub async fn start() -> FakeLlm {
    let state = Arc::new(State::default());
    let shared = state.clone();
    let routes = warp::post()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(warp::body::json::<Value>())
        .and_then(
            move |path: warp::path::FullPath, headers: warp::http::HeaderMap, body: Value| {
                let shared = shared.clone();
                async move {
                    let path = path.as_str().to_owned();
                    let model_key = (
                        path.clone(),
                        body["model"].as_str().unwrap_or_default().to_owned(),
                    );
                    let delay = shared.delays.lock().unwrap().get(&model_key).copied();
                    if let Some(delay) = delay {
                        tokio::time::sleep(delay).await;
                    }
                    let headers = headers
                        .iter()
                        .map(|(name, value)| {
                            (
                                name.as_str().to_owned(),
                                value.to_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect();
                    shared.requests.lock().unwrap().push(Recorded {
                        path: path.clone(),
                        headers,
                        body: body.clone(),
                        at: Instant::now(),
                    });
                    let for_model = shared
                        .model_scripts
                        .lock()
                        .unwrap()
                        .get_mut(&model_key)
                        .and_then(VecDeque::pop_front);
                    let answer = if path.ends_with("/embeddings") {
                        Answer::json(200, &embeddings(&body))
                    } else if let Some(answer) = for_model {
                        answer
                    } else {
                        shared
                            .scripts
                            .lock()
                            .unwrap()
                            .get_mut(&path)
                            .and_then(VecDeque::pop_front)
                            .unwrap_or_else(|| {
                                Answer::json(
                                    500,
                                    &json!({"error": {"message": "nothing scripted"}}),
                                )
                            })
                    };
                    if !answer.delay.is_zero() {
                        tokio::time::sleep(answer.delay).await;
                    }
                    let response = warp::http::Response::builder()
                        .status(StatusCode::from_u16(answer.status).unwrap())
                        .header("content-type", "application/json")
                        .header("retry-after", answer.retry_after)
                        .body(answer.body)
                        .unwrap();
                    Ok::<_, Infallible>(response)
                }
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(routes).incoming(listener).run());
    FakeLlm { address, state }
}

/// Deterministic 1536-dimension embeddings: the same text gives the same vector.
fn embeddings(body: &Value) -> Value {
    let inputs: Vec<String> = match &body["input"] {
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_owned())
            .collect(),
        Value::String(text) => vec![text.clone()],
        _ => Vec::new(),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let mut vector = vec![0.0f32; 1536];
            for (position, byte) in text.bytes().enumerate() {
                vector[(usize::from(byte) * 7 + position) % 1536] += 1.0;
            }
            json!({"object": "embedding", "index": index, "embedding": vector})
        })
        .collect();
    json!({"object": "list", "data": data, "model": "text-embedding-3-small", "usage": {"prompt_tokens": 5, "total_tokens": 5}})
}
