//! The chat-model port of the edges: one request/response shape for every provider, and the
//! typed error every adapter returns.
//!
//! The agent loop ([`crate::assistant::LlmAgent`]) speaks only these types; the OpenAI and Anthropic adapters
//! translate them to their wire formats. Keeping tools and tool results provider-neutral is what
//! lets one agent loop run on either provider, and fall back from one to the other.

use async_trait::async_trait;
use serde_json::Value;

/// Why a model call failed. `Display` is for logs; a person reads [`LlmError::for_person`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("the model did not answer in time")]
    Timeout,
    #[error("the model provider is rate limiting us")]
    RateLimited,
    #[error("the model provider is overloaded ({0})")]
    Overloaded(u16),
    #[error("the model provider refused our credentials")]
    Unauthorized,
    #[error("the model provider failing repeatedly; not calling it for a while")]
    CircuitOpen,
    #[error("the model provider answered {status}")]
    Upstream { status: u16 },
    #[error("the model provider could not be reached: {0}")]
    Network(String),
    #[error("the model's answer could not be read: {0}")]
    Malformed(String),
}

impl LlmError {
    /// Whether another model may succeed where this one failed (the fallback model is tried).
    pub fn is_overload(&self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Overloaded(_) | Self::CircuitOpen | Self::Timeout
        )
    }

    /// What the person reads: short, honest, never the raw error.
    pub fn for_person(&self) -> &'static str {
        match self {
            Self::Timeout | Self::RateLimited | Self::Overloaded(_) | Self::CircuitOpen => {
                "My language model is busy right now."
            }
            Self::Unauthorized => {
                "My language model isn't set up correctly (the operator should check its API key)."
            }
            Self::Upstream { .. } | Self::Network(_) | Self::Malformed(_) => {
                "I couldn't reach my language model just now."
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One turn of the conversation the model sees.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Plain text from the person or the assistant.
    Text { role: Role, text: String },
    /// The assistant asked for tools (with any text it said alongside).
    ToolCalls {
        text: Option<String>,
        calls: Vec<ToolCall>,
    },
    /// The result of one tool call, as JSON text.
    ToolResult { call_id: String, content: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The provider's id of the call, echoed in the result.
    pub id: String,
    pub name: String,
    /// The arguments as the model sent them: a JSON object when it followed the tool's schema;
    /// when the provider's wire carried text that is not JSON, that text as a JSON string (the
    /// agent answers such a call as malformed instead of failing the whole answer).
    pub arguments: Value,
}

/// A tool the model may call: a name, what it does, and a JSON schema of its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub max_tokens: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// What the model answered: text, tool calls, or both.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatResponse {
    pub text: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
}

/// A chat model of one provider.
#[async_trait]
pub trait ChatModel: Send + Sync + 'static {
    /// `openai`, `anthropic`.
    fn provider(&self) -> &'static str;
    fn model(&self) -> &str;
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError>;
}

/// Token usage and latency of one call, by provider and model.
pub fn record_call(provider: &'static str, model: &str, usage: Usage, seconds: f64) {
    let model = model.to_owned();
    metrics::counter!(crate::metrics::LLM_TOKENS_TOTAL, "provider" => provider, "model" => model.clone(), "kind" => "input")
        .increment(usage.input_tokens);
    metrics::counter!(crate::metrics::LLM_TOKENS_TOTAL, "provider" => provider, "model" => model.clone(), "kind" => "output")
        .increment(usage.output_tokens);
    metrics::histogram!(crate::metrics::LLM_REQUEST_DURATION_SECONDS, "provider" => provider, "model" => model)
        .record(seconds);
}
