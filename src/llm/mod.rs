//! The agents behind a conversation: the offline rule-based agent (no key needed) and the LLM
//! agent over OpenAI, Anthropic or any OpenAI-compatible server, chosen by `AGENT_MODEL`.

pub mod agent;
pub mod anthropic;
pub mod entries;
pub mod memory;
pub mod model;
pub mod offline;
pub mod openai;
pub mod photo;
mod transport;
pub mod vision;

use std::sync::Arc;
use std::time::Duration;

use health_actors::conversation::Agent;
use health_actors::memory::{Embedder, OfflineEmbedder};

use crate::config::{LlmSettings, ModelSpec, Provider};
use crate::nutrition::engine::NutritionEngine;
use crate::resilience::RetryPolicy;
use model::{ChatModel, LlmError};

/// Per-call timeout of a chat completion.
const CHAT_TIMEOUT: Duration = Duration::from_secs(60);
/// The OpenAI embedding model used for memories when an OpenAI key is set.
const OPENAI_EMBEDDING_MODEL: &str = "text-embedding-3-small";
const OPENAI_EMBEDDING_DIMENSIONS: usize = 1536;

/// The chat model of a `provider:model` spec; `None` for the offline agent.
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

/// The agent `AGENT_MODEL` asks for: the LLM agent (with its fallback model and memory), or the
/// offline agent.
pub fn agent(
    settings: &LlmSettings,
    enable_memory: bool,
    engine: Arc<NutritionEngine>,
) -> Result<Arc<dyn Agent>, LlmError> {
    let embedder = if enable_memory {
        Some(embedder(settings)?)
    } else {
        None
    };
    let Some(model) = chat_model(settings, &settings.agent_model)? else {
        return Ok(Arc::new(
            offline::OfflineAgent::new(engine).with_memory(embedder),
        ));
    };
    let fallback = match &settings.fallback_model {
        Some(spec) => chat_model(settings, spec)?,
        None => None,
    };
    Ok(Arc::new(agent::LlmAgent::new(
        model, fallback, engine, embedder,
    )))
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
