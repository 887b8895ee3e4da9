//! Anthropic Messages API.
//!
//! Wire format: `POST {base}/v1/messages` with headers `x-api-key` and `anthropic-version`, a
//! top-level `system`, `messages` whose content is a list of blocks (`text`, `tool_use`,
//! `tool_result`), and `tools` as `{name, description, input_schema}`. The answer's `content` is
//! a list of `text` and `tool_use {id, name, input}` blocks; `usage` has `input_tokens` and
//! `output_tokens`. 529 means overloaded.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::model::{
    record_call, ChatModel, ChatRequest, ChatResponse, LlmError, Message, Role, ToolCall, Usage,
};
use super::transport::Transport;
use crate::resilience::RetryPolicy;

const PROVIDER: &str = "anthropic";
const API_VERSION: &str = "2023-06-01";

pub struct AnthropicChat {
    base_url: String,
    api_key: SecretString,
    model: String,
    transport: Transport,
}

impl AnthropicChat {
    pub fn new(
        base_url: &str,
        api_key: SecretString,
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

    fn body(&self, request: &ChatRequest) -> Value {
        // Anthropic wants alternating roles; tool results travel as user turns.
        let mut messages: Vec<Value> = Vec::new();
        for message in &request.messages {
            let (role, block) = match message {
                Message::Text {
                    role: Role::User,
                    text,
                } => ("user", json!({"type": "text", "text": text})),
                Message::Text {
                    role: Role::Assistant,
                    text,
                } => ("assistant", json!({"type": "text", "text": text})),
                Message::ToolCalls { text, calls } => {
                    let mut blocks: Vec<Value> = text
                        .iter()
                        .map(|t| json!({"type": "text", "text": t}))
                        .collect();
                    blocks.extend(calls.iter().map(|call| {
                        // `input` must be an object: arguments another provider sent as unreadable text
                        // are echoed as none.
                        let input = if call.arguments.is_object() { call.arguments.clone() } else { json!({}) };
                        json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input})
                    }));
                    push_blocks(&mut messages, "assistant", blocks);
                    continue;
                }
                Message::ToolResult { call_id, content } => (
                    "user",
                    json!({"type": "tool_result", "tool_use_id": call_id, "content": content}),
                ),
            };
            push_blocks(&mut messages, role, vec![block]);
        }
        let mut body = json!({
            "model": self.model,
            "max_tokens": request.max_tokens,
            "system": request.system,
            "messages": messages,
        });
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|tool| json!({"name": tool.name, "description": tool.description, "input_schema": tool.parameters}))
                .collect();
        }
        body
    }
}

/// Appends blocks to the last message when it has the same role, else starts a new message.
fn push_blocks(messages: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if let Some(last) = messages.last_mut() {
        if last["role"] == role {
            if let Some(content) = last["content"].as_array_mut() {
                content.extend(blocks);
                return;
            }
        }
    }
    messages.push(json!({"role": role, "content": blocks}));
}

/// Reads the content blocks of a Messages answer.
pub fn parse_response(value: &Value) -> Result<ChatResponse, LlmError> {
    let blocks = value
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| LlmError::Malformed("no content blocks".into()))?;
    let mut texts = Vec::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                texts.extend(block.get("text").and_then(Value::as_str).map(str::to_owned))
            }
            Some("tool_use") => tool_calls.push(ToolCall {
                id: block
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                name: block
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| LlmError::Malformed("a tool_use block without a name".into()))?
                    .to_owned(),
                arguments: block.get("input").cloned().unwrap_or_else(|| json!({})),
            }),
            _ => {}
        }
    }
    let text = Some(texts.join("\n")).filter(|t| !t.trim().is_empty());
    let usage = Usage {
        input_tokens: value
            .pointer("/usage/input_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output_tokens: value
            .pointer("/usage/output_tokens")
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
impl ChatModel for AnthropicChat {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let started = Instant::now();
        let url = format!("{}/v1/messages", self.base_url);
        let headers = [
            ("x-api-key", self.api_key.expose_secret()),
            ("anthropic-version", API_VERSION),
        ];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::model::ToolSpec;

    #[test]
    fn tool_results_become_user_blocks_and_roles_alternate() {
        let chat = AnthropicChat::new(
            "http://127.0.0.1:1",
            SecretString::from("k".to_owned()),
            "claude",
            Duration::from_secs(1),
            RetryPolicy::default(),
        )
        .unwrap();
        let request = ChatRequest {
            system: "be kind".into(),
            messages: vec![
                Message::Text {
                    role: Role::User,
                    text: "2 eggs".into(),
                },
                Message::ToolCalls {
                    text: None,
                    calls: vec![
                        ToolCall {
                            id: "a".into(),
                            name: "log_food".into(),
                            arguments: json!({}),
                        },
                        ToolCall {
                            id: "b".into(),
                            name: "get_summary".into(),
                            arguments: json!({}),
                        },
                    ],
                },
                Message::ToolResult {
                    call_id: "a".into(),
                    content: "{}".into(),
                },
                Message::ToolResult {
                    call_id: "b".into(),
                    content: "{}".into(),
                },
            ],
            tools: vec![ToolSpec {
                name: "log_food",
                description: "d",
                parameters: json!({"type": "object"}),
            }],
            max_tokens: 100,
        };
        let body = chat.body(&request);
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[2]["role"], "user");
        assert_eq!(messages[2]["content"].as_array().unwrap().len(), 2);
        assert_eq!(body["system"], "be kind");
        assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    }

    #[test]
    fn text_and_tool_use_blocks_are_read() {
        let answer = json!({
            "content": [
                {"type": "text", "text": "Logging that."},
                {"type": "tool_use", "id": "toolu_1", "name": "log_food", "input": {"items": []}}
            ],
            "usage": {"input_tokens": 50, "output_tokens": 20}
        });
        let response = parse_response(&answer).unwrap();
        assert_eq!(response.text.as_deref(), Some("Logging that."));
        assert_eq!(response.tool_calls[0].id, "toolu_1");
        assert_eq!(response.usage.output_tokens, 20);
    }
}
