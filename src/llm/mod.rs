//! The model providers: chat models ([`model::ChatModel`]) over OpenAI (and any
//! OpenAI-compatible server) and Anthropic, their vision models for photos, and OpenAI
//! embeddings for memories, each behind one resilient HTTP transport (retries, circuit breaker,
//! metrics). [`chat_model`], [`embedder`] and [`vision_models`] build them from the settings.
//!
//! What the assistant does with a model (the agent loop, its tools, the rules it falls back on)
//! is [`crate::assistant`]'s; this module only speaks to providers.

pub mod anthropic;
pub mod model;
pub mod openai;
mod transport;
pub mod vision;

use std::sync::Arc;
use std::time::Duration;

use health_actors::memory::{Embedder, OfflineEmbedder};

use crate::config::{LlmSettings, ModelSpec, Provider};
use crate::resilience::RetryPolicy;
use model::{ChatModel, LlmError};

/// Per-call timeout of a chat completion.
const CHAT_TIMEOUT: Duration = Duration::from_secs(60);
/// The OpenAI embedding model used for memories when an OpenAI key is set.
const OPENAI_EMBEDDING_MODEL: &str = "text-embedding-3-small";
const OPENAI_EMBEDDING_DIMENSIONS: usize = 1536;

/// The chat model of a `provider:model` spec; `None` for `offline` (the rule agent, which has
/// no model).
pub fn chat_model(
    settings: &LlmSettings,
    spec: &ModelSpec,
) -> Result<Option<Arc<dyn ChatModel>>, LlmError> {
    let retry = RetryPolicy::default();
    Ok(match spec.provider {
        Provider::Offline => None,
        Provider::OpenAi => Some(Arc::new(openai::OpenAiChat::new(
            &settings.openai_base_url,
            settings.openai_api_key.clone(),
            &spec.model,
            CHAT_TIMEOUT,
            retry,
        )?)),
        Provider::Anthropic => {
            let key = settings
                .anthropic_api_key
                .clone()
                .ok_or(LlmError::Unauthorized)?;
            Some(Arc::new(anthropic::AnthropicChat::new(
                &settings.anthropic_base_url,
                key,
                &spec.model,
                CHAT_TIMEOUT,
                retry,
            )?))
        }
    })
}

/// The embedder for memories: OpenAI embeddings with an OpenAI key (not for a keyless local
/// server, which may serve no embedding model), else the offline embedder.
pub fn embedder(settings: &LlmSettings) -> Result<Arc<dyn Embedder>, LlmError> {
    Ok(match &settings.openai_api_key {
        Some(key) => Arc::new(openai::OpenAiEmbedder::new(
            &settings.openai_base_url,
            Some(key.clone()),
            OPENAI_EMBEDDING_MODEL,
            OPENAI_EMBEDDING_DIMENSIONS,
            CHAT_TIMEOUT,
        )?),
        None => Arc::new(OfflineEmbedder::new()),
    })
}

/// One vision model per `VISION_MODELS` entry (the offline provider has none).
pub fn vision_models(
    settings: &LlmSettings,
) -> Result<Vec<Arc<dyn health_actors::vision::VisionModel>>, LlmError> {
    let mut models: Vec<Arc<dyn health_actors::vision::VisionModel>> = Vec::new();
    for spec in &settings.vision_models {
        match spec.provider {
            Provider::OpenAi => models.push(Arc::new(vision::OpenAiVision::new(
                &settings.openai_base_url,
                settings.openai_api_key.clone(),
                &spec.model,
                settings.vision_timeout,
            )?)),
            Provider::Anthropic => {
                let key = settings
                    .anthropic_api_key
                    .clone()
                    .ok_or(LlmError::Unauthorized)?;
                models.push(Arc::new(vision::AnthropicVision::new(
                    &settings.anthropic_base_url,
                    key,
                    &spec.model,
                    settings.vision_timeout,
                )?));
            }
            Provider::Offline => {}
        }
    }
    Ok(models)
}
