//! Vision models: OpenAI (image parts, a strict JSON-schema answer) and Anthropic (image blocks,
//! a forced tool whose input is the answer), behind the core's `VisionModel` port.
//!
//! Both are asked for `{"no_food": bool, "items": [{"name", "grams", "kcal", "protein_g",
//! "carbs_g", "fat_g", "confidence"}]}`, with the person's caption given as ground truth for what
//! and how much. Answers are parsed tolerantly (code fences, text around the JSON); an answer that
//! still does not parse counts as that agent failing, never as a guess.

use std::time::Duration;

use async_trait::async_trait;
use health_actors::vision::{parse_answer, Photo, VisionAnswer, VisionError, VisionModel};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::model::LlmError;
use super::transport::Transport;
use crate::resilience::RetryPolicy;

const INSTRUCTIONS: &str = "You estimate the food in a meal photo. List each distinct food you can see with its \
estimated weight in grams and its energy and macronutrients for that weight, and your confidence (0 to 1). If \
there is no food in the photo, answer no_food true and no items. Answer only with the JSON object.";

/// The JSON schema of the answer, shared by both providers.
fn answer_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["no_food", "items"],
        "properties": {
            "no_food": {"type": "boolean"},
            "items": {"type": "array", "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "grams", "kcal", "protein_g", "carbs_g", "fat_g", "confidence"],
                "properties": {
                    "name": {"type": "string"}, "grams": {"type": "number"}, "kcal": {"type": "number"},
                    "protein_g": {"type": "number"}, "carbs_g": {"type": "number"}, "fat_g": {"type": "number"},
                    "confidence": {"type": "number"}
                }
            }}
        }
    })
}

fn prompt(caption: Option<&str>) -> String {
    match caption.map(str::trim).filter(|c| !c.is_empty()) {
        Some(caption) => format!(
            "{INSTRUCTIONS}\nThe person wrote this about the photo; treat it as true for what the food is and how much: \"{caption}\""
        ),
        None => INSTRUCTIONS.to_owned(),
    }
}

fn to_vision_error(error: LlmError) -> VisionError {
    match error {
        LlmError::Timeout => VisionError::Timeout,
        LlmError::Malformed(reason) => VisionError::Invalid(reason),
        other => VisionError::Unavailable(other.to_string()),
    }
}

pub struct OpenAiVision {
    name: String,
    base_url: String,
    api_key: Option<SecretString>,
    model: String,
    transport: Transport,
}

impl OpenAiVision {
    pub fn new(
        base_url: &str,
        api_key: Option<SecretString>,
        model: &str,
        timeout: Duration,
    ) -> Result<Self, LlmError> {
        Ok(Self {
            name: format!("openai:{model}"),
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            model: model.to_owned(),
            // One attempt: the coordinator's deadline is the retry budget.
            transport: Transport::new(
                "openai",
                timeout,
                RetryPolicy {
                    attempts: 1,
                    ..RetryPolicy::default()
                },
            )?,
        })
    }

    pub fn body(&self, photo: &Photo, caption: Option<&str>) -> Value {
        let data_url = format!("data:{};base64,{}", photo.media_type, base64(&photo.bytes));
        json!({
            "model": self.model,
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": prompt(caption)},
                {"type": "image_url", "image_url": {"url": data_url}}
            ]}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "meal", "strict": true, "schema": answer_schema()}}
        })
    }
}

#[async_trait]
impl VisionModel for OpenAiVision {
    fn name(&self) -> &str {
        &self.name
    }

    async fn analyse(
        &self,
        photo: &Photo,
        caption: Option<&str>,
    ) -> Result<VisionAnswer, VisionError> {
        let authorization = self
            .api_key
            .as_ref()
            .map(|key| format!("Bearer {}", key.expose_secret()));
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|value| ("authorization", value.as_str()))
            .collect();
        let url = format!("{}/chat/completions", self.base_url);
        let answer = self
            .transport
            .post(&url, &headers, &self.body(photo, caption))
            .await
            .map_err(to_vision_error)?;
        let text = answer
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| VisionError::Invalid("no message content".into()))?;
        parse_answer(text)
    }
}

pub struct AnthropicVision {
    name: String,
    base_url: String,
    api_key: SecretString,
    model: String,
    transport: Transport,
}

impl AnthropicVision {
    pub fn new(
        base_url: &str,
        api_key: SecretString,
        model: &str,
        timeout: Duration,
    ) -> Result<Self, LlmError> {
        Ok(Self {
            name: format!("anthropic:{model}"),
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            model: model.to_owned(),
            transport: Transport::new(
                "anthropic",
                timeout,
                RetryPolicy {
                    attempts: 1,
                    ..RetryPolicy::default()
                },
            )?,
        })
    }

    pub fn body(&self, photo: &Photo, caption: Option<&str>) -> Value {
        json!({
            "model": self.model,
            "max_tokens": 1024,
            "tools": [{"name": "report_meal", "description": "Report the food seen in the photo.", "input_schema": answer_schema()}],
            "tool_choice": {"type": "tool", "name": "report_meal"},
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": photo.media_type, "data": base64(&photo.bytes)}},
                {"type": "text", "text": prompt(caption)}
            ]}]
        })
    }
}

#[async_trait]
impl VisionModel for AnthropicVision {
    fn name(&self) -> &str {
        &self.name
    }

    async fn analyse(
        &self,
        photo: &Photo,
        caption: Option<&str>,
    ) -> Result<VisionAnswer, VisionError> {
        let url = format!("{}/v1/messages", self.base_url);
        let headers = [
            ("x-api-key", self.api_key.expose_secret()),
            ("anthropic-version", "2023-06-01"),
        ];
        let answer = self
            .transport
            .post(&url, &headers, &self.body(photo, caption))
            .await
            .map_err(to_vision_error)?;
        let blocks = answer
            .get("content")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(input) = blocks
            .iter()
            .find(|b| b["type"] == "tool_use")
            .and_then(|b| b.get("input"))
        {
            return serde_json::from_value::<VisionAnswer>(input.clone())
                .map_err(|error| VisionError::Invalid(error.to_string()))?
                .validated();
        }
        // A model that ignored the forced tool may still have written the JSON as text.
        let text: String = blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect();
        parse_answer(&text)
    }
}

/// Standard base64 with padding (RFC 4648), for image data in requests.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63] as char);
        out.push(ALPHABET[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_test_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn requests_carry_the_image_the_caption_and_the_schema() {
        let photo = Photo::sniff(vec![0xFF, 0xD8, 0xFF, 0xE0]).unwrap();
        let openai = OpenAiVision::new(
            "http://127.0.0.1:1/v1",
            None,
            "gpt-4o",
            Duration::from_secs(1),
        )
        .unwrap();
        let body = openai.body(&photo, Some("150 g rice"));
        assert_eq!(
            body["messages"][0]["content"][1]["image_url"]["url"],
            "data:image/jpeg;base64,/9j/4A=="
        );
        assert!(body["messages"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("150 g rice"));
        assert_eq!(body["response_format"]["json_schema"]["strict"], true);
        let anthropic = AnthropicVision::new(
            "http://127.0.0.1:1",
            SecretString::from("k".to_owned()),
            "claude",
            Duration::from_secs(1),
        )
        .unwrap();
        let body = anthropic.body(&photo, None);
        assert_eq!(body["tool_choice"]["name"], "report_meal");
        assert_eq!(
            body["messages"][0]["content"][0]["source"]["media_type"],
            "image/jpeg"
        );
    }
}
