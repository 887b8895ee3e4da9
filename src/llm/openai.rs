//! OpenAI Chat Completions (and any OpenAI-compatible server: Ollama, vLLM, LM Studio through
//! `OPENAI_BASE_URL`), plus OpenAI embeddings for semantic memory.
//!
//! Wire format: `POST {base}/chat/completions` with `messages` (system, user, assistant with
//! `tool_calls`, `tool` results), `tools` as `{"type":"function","function":{name, description,
//! parameters}}`; the answer's `choices[0].message` carries `content` and `tool_calls` whose
//! `function.arguments` is a JSON *string*. `POST {base}/embeddings` with `{model, input}`
//! answers `data[].embedding` in input order.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use health_actors::memory::{EmbedError, Embedder};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::model::{
    record_call, ChatModel, ChatRequest, ChatResponse, LlmError, Message, Role, ToolCall, Usage,
};
use super::transport::Transport;
use crate::resilience::RetryPolicy;

const PROVIDER: &str = "openai";

pub struct OpenAiChat {
    base_url: String,
    api_key: Option<SecretString>,
    model: String,
    transport: Transport,
}

impl OpenAiChat {
    /// `api_key` may be absent for a local OpenAI-compatible server.
    pub fn new(
        base_url: &str,
        api_key: Option<SecretString>,
        model: &str,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, LlmError> {
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            model: model.to_owned(),
            transport: Transport::new(PROVIDER, timeout, retry)?,
        })
    }

    /// Replaces the circuit breaker of this model's calls (by default it opens after 5 failed
    /// calls in a row and lets a probe through after 30 s).
    pub fn with_breaker(mut self, threshold: u32, cool_down: Duration) -> Self {
        self.transport = self.transport.with_breaker(threshold, cool_down);
        self
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        self.api_key
            .as_ref()
            .map(|key| vec![("authorization", format!("Bearer {}", key.expose_secret()))])
            .unwrap_or_default()
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let mut messages = vec![json!({"role": "system", "content": request.system})];
        for message in &request.messages {
            messages.push(match message {
                Message::Text {
                    role: Role::User,
                    text,
                } => json!({"role": "user", "content": text}),
                Message::Text {
                    role: Role::Assistant,
                    text,
                } => json!({"role": "assistant", "content": text}),
                Message::ToolCalls { text, calls } => json!({
                    "role": "assistant",
                    "content": text,
                    "tool_calls": calls.iter().map(|call| json!({
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": arguments_text(&call.arguments)},
                    })).collect::<Vec<_>>(),
                }),
                Message::ToolResult { call_id, content } => {
                    json!({"role": "tool", "tool_call_id": call_id, "content": content})
                }
            });
        }
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
        });
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|tool| {
                    json!({"type": "function", "function": {
                        "name": tool.name, "description": tool.description, "parameters": tool.parameters,
                    }})
                })
                .collect();
        }
        body
    }
}

/// A call's arguments as the JSON string the wire carries; arguments that were not JSON are
/// echoed as the model wrote them.
fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

/// Reads `choices[0].message` of a Chat Completions answer.
pub fn parse_response(value: &Value) -> Result<ChatResponse, LlmError> {
    let message = value
        .pointer("/choices/0/message")
        .ok_or_else(|| LlmError::Malformed("no choices[0].message".into()))?;
    let text = message
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .map(str::to_owned);
    let mut tool_calls = Vec::new();
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or_else(|| LlmError::Malformed("a tool call without a name".into()))?
            .to_owned();
        let raw = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        // Arguments that are not JSON are kept as the text they were (the agent answers the
        // call as malformed, so the model can send it again), not a failed answer.
        let arguments = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
        tool_calls.push(ToolCall {
            id,
            name,
            arguments,
        });
    }
    let usage = Usage {
        input_tokens: value
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output_tokens: value
            .pointer("/usage/completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    };
    Ok(ChatResponse {
        text,
        tool_calls,
        usage,
    })
}

#[async_trait]
impl ChatModel for OpenAiChat {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let started = Instant::now();
        let headers = self.headers();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let url = format!("{}/chat/completions", self.base_url);
        let answer = self
            .transport
            .post(&url, &headers, &self.body(request))
            .await?;
        let response = parse_response(&answer)?;
        record_call(
            PROVIDER,
            &self.model,
            response.usage,
            started.elapsed().as_secs_f64(),
        );
        Ok(response)
    }
}

/// OpenAI embeddings (e.g. `text-embedding-3-small`, 1536 dimensions).
pub struct OpenAiEmbedder {
    base_url: String,
    api_key: Option<SecretString>,
    model: String,
    name: String,
    dimensions: usize,
    transport: Transport,
}

impl OpenAiEmbedder {
    pub fn new(
        base_url: &str,
        api_key: Option<SecretString>,
        model: &str,
        dimensions: usize,
        timeout: Duration,
    ) -> Result<Self, LlmError> {
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            model: model.to_owned(),
            name: format!("openai:{model}"),
            dimensions,
            transport: Transport::new(PROVIDER, timeout, RetryPolicy::default())?,
        })
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let authorization = self
            .api_key
            .as_ref()
            .map(|key| format!("Bearer {}", key.expose_secret()));
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|value| ("authorization", value.as_str()))
            .collect();
        let url = format!("{}/embeddings", self.base_url);
        let body = json!({"model": self.model, "input": texts});
        let answer =
            self.transport
                .post(&url, &headers, &body)
                .await
                .map_err(|error| match error {
                    LlmError::Timeout => EmbedError::Timeout,
                    other => EmbedError::Upstream(other.to_string()),
                })?;
        let data = answer
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| EmbedError::Upstream("no data in the embeddings answer".into()))?;
        let mut vectors = vec![Vec::new(); texts.len()];
        for (position, item) in data.iter().enumerate() {
            let index = item
                .get("index")
                .and_then(Value::as_u64)
                .map_or(position, |i| i as usize);
            let vector: Vec<f32> = item
                .get("embedding")
                .and_then(Value::as_array)
                .ok_or_else(|| EmbedError::Upstream("an embedding is missing".into()))?
                .iter()
                .map(|v| v.as_f64().unwrap_or(0.0) as f32)
                .collect();
            if vector.len() != self.dimensions {
                return Err(EmbedError::Upstream(format!(
                    "expected {} dimensions, got {}",
                    self.dimensions,
                    vector.len()
                )));
            }
            if let Some(slot) = vectors.get_mut(index) {
                *slot = vector;
            }
        }
        if vectors.iter().any(Vec::is_empty) {
            return Err(EmbedError::Upstream("fewer embeddings than texts".into()));
        }
        Ok(vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_arguments_that_are_not_json_are_kept_as_their_text() {
        let raw = r#"{"items": [{"name": "egg", "#;
        let answer = json!({
            "choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "log_food", "arguments": raw}}
            ]}}]
        });
        let response = parse_response(&answer).unwrap();
        assert_eq!(
            response.tool_calls[0].arguments,
            Value::String(raw.to_owned())
        );
        assert_eq!(arguments_text(&response.tool_calls[0].arguments), raw);
    }

    #[test]
    fn tool_calls_arguments_are_parsed_from_their_json_string() {
        let answer = json!({
            "choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "log_food", "arguments": "{\"items\":[{\"name\":\"egg\",\"grams\":100}]}"}}
            ]}}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30}
        });
        let response = parse_response(&answer).unwrap();
        assert_eq!(response.text, None);
        assert_eq!(response.tool_calls[0].name, "log_food");
        assert_eq!(response.tool_calls[0].arguments["items"][0]["grams"], 100);
        assert_eq!(
            response.usage,
            Usage {
                input_tokens: 120,
                output_tokens: 30
            }
        );
        assert!(parse_response(&json!({"choices": []})).is_err());
    }
}
