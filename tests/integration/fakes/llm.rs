//! A fake model provider on 127.0.0.1 speaking OpenAI's Chat Completions and embeddings and
//! Anthropic's Messages wire formats. Answers are scripted per path; every request is recorded
//! with its headers so tests can check what the adapters sent.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::Filter;

/// One scripted answer: a status and a JSON body.
pub type Scripted = (u16, Value);

#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

#[derive(Default)]
struct State {
    scripts: Mutex<HashMap<String, VecDeque<Scripted>>>,
    /// Answers for one model on a path (e.g. two OpenAI vision models), used before `scripts`.
    model_scripts: Mutex<HashMap<(String, String), VecDeque<Scripted>>>,
    /// How long a model takes to answer on a path.
    delays: Mutex<HashMap<(String, String), std::time::Duration>>,
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
    pub fn script(&self, path: &str, answers: impl IntoIterator<Item = Scripted>) {
        self.state
            .scripts
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default()
            .extend(answers);
    }

    /// Queues answers for requests to `path` naming `model` (the body's `model` field).
    pub fn script_model(
        &self,
        path: &str,
        model: &str,
        answers: impl IntoIterator<Item = Scripted>,
    ) {
        self.state
            .model_scripts
            .lock()
            .unwrap()
            .entry((path.to_owned(), model.to_owned()))
            .or_default()
            .extend(answers);
    }

    /// Makes requests to `path` naming `model` wait `delay` before the answer.
    pub fn delay_model(&self, path: &str, model: &str, delay: std::time::Duration) {
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
        .then(
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
                    });
                    let for_model = shared
                        .model_scripts
                        .lock()
                        .unwrap()
                        .get_mut(&model_key)
                        .and_then(VecDeque::pop_front);
                    let (status, answer) = if path.ends_with("/embeddings") {
                        (200, embeddings(&body))
                    } else if let Some(scripted) = for_model {
                        scripted
                    } else {
                        shared
                            .scripts
                            .lock()
                            .unwrap()
                            .get_mut(&path)
                            .and_then(VecDeque::pop_front)
                            .unwrap_or((500, json!({"error": {"message": "nothing scripted"}})))
                    };
                    warp::reply::with_header(
                        warp::reply::with_status(
                            warp::reply::json(&answer),
                            StatusCode::from_u16(status).unwrap(),
                        ),
                        "retry-after",
                        "0",
                    )
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
