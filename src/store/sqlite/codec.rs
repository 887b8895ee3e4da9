//! Conversions between SQLite's values and the domain's: times as microseconds since the epoch,
//! dates and ids as text, JSON as text, counts as integers.

use chrono::{DateTime, NaiveDate, Utc};
use health_actors::ports::StoreError;
use uuid::Uuid;

/// Times are stored as microseconds since the Unix epoch (PostgreSQL's precision).
pub(super) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(super) fn time(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::Other(format!("stored time {micros} is out of range")))
}

pub(super) fn date(text: &str) -> Result<NaiveDate, StoreError> {
    text.parse()
        .map_err(|error| StoreError::Other(format!("stored date {text:?}: {error}")))
}

pub(super) fn uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|error| StoreError::Other(format!("stored id {text:?}: {error}")))
}

pub(super) fn count(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::Other(format!("stored count {value} is out of range")))
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|error| StoreError::Rejected(format!("cannot encode as JSON: {error}")))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|error| StoreError::Other(format!("stored JSON cannot be read: {error}")))
}
