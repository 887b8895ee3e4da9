//! Domain records and newtypes: what the product knows about a person and what they ate.
//!
//! These types are shared by every actor and every adapter. They carry no I/O. Numbers that a
//! person reads (kcal, grams) are validated once where they enter the system, through the
//! constructors here, so the rest of the code can trust them.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The person's id. For Telegram users it is their Telegram user id; the HTTP API uses the same
/// number space so one person is one row whatever door they came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The chat a message came from and answers go to (for Telegram private chats it equals the
/// user id; the HTTP API uses the user id too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChatId(pub i64);

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A message inside a chat (Telegram's message id), used to edit it or to know which message a
/// button belonged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub i64);

/// A validation failure for a domain value, with a sentence a person can read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

/// A weight in grams: finite and not negative.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Grams(f64);

impl Grams {
    pub fn new(value: f64) -> Result<Self, InvalidValue> {
        if value.is_finite() && (0.0..=100_000.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(InvalidValue(format!(
                "{value} g is not a weight I can use: it must be between 0 and 100 kg"
            )))
        }
    }
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Grams {
    type Error = InvalidValue;
    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Grams> for f64 {
    fn from(value: Grams) -> f64 {
        value.0
    }
}

/// Energy in kilocalories: finite and not negative.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Kcal(f64);

impl Kcal {
    pub fn new(value: f64) -> Result<Self, InvalidValue> {
        if value.is_finite() && (0.0..=1_000_000.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(InvalidValue(format!(
                "{value} kcal is not an amount of energy I can use"
            )))
        }
    }
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Kcal {
    type Error = InvalidValue;
    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Kcal> for f64 {
    fn from(value: Kcal) -> f64 {
        value.0
    }
}

/// Energy and macronutrients of an amount of food (not per 100 g, unless a name says so).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Nutrients {
    pub kcal: f64,
    pub protein_g: f64,
    pub carbs_g: f64,
    pub fat_g: f64,
    #[serde(default)]
    pub fiber_g: f64,
}

impl Nutrients {
    /// These values scaled by `factor` (e.g. grams / 100 for a per-100 g row).
    pub fn scaled(&self, factor: f64) -> Self {
        Self {
            kcal: self.kcal * factor,
            protein_g: self.protein_g * factor,
            carbs_g: self.carbs_g * factor,
            fat_g: self.fat_g * factor,
            fiber_g: self.fiber_g * factor,
        }
    }

    /// The sum of several amounts.
    pub fn sum<'a>(items: impl IntoIterator<Item = &'a Nutrients>) -> Self {
        items.into_iter().fold(Self::default(), |acc, n| acc + *n)
    }
}

impl std::ops::Add for Nutrients {
    type Output = Nutrients;
    fn add(self, other: Nutrients) -> Nutrients {
        Nutrients {
            kcal: self.kcal + other.kcal,
            protein_g: self.protein_g + other.protein_g,
            carbs_g: self.carbs_g + other.carbs_g,
            fat_g: self.fat_g + other.fat_g,
            fiber_g: self.fiber_g + other.fiber_g,
        }
    }
}

/// Where a number came from. Every item a person sees says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NutritionSource {
    /// USDA FoodData Central, looked up live (and cached).
    Usda,
    /// The built-in food table (values taken from USDA FoodData Central).
    BuiltIn,
    /// A language or vision model's own estimate, for a food no database knows.
    ModelEstimate,
    /// Numbers the person gave.
    User,
}

impl NutritionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usda => "usda",
            Self::BuiltIn => "built_in",
            Self::ModelEstimate => "model_estimate",
            Self::User => "user",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "usda" => Some(Self::Usda),
            "built_in" => Some(Self::BuiltIn),
            "model_estimate" => Some(Self::ModelEstimate),
            "user" => Some(Self::User),
            _ => None,
        }
    }
    /// How the source is named to a person.
    pub fn label(self) -> &'static str {
        match self {
            Self::Usda => "USDA",
            Self::BuiltIn => "built-in table",
            Self::ModelEstimate => "model estimate",
            Self::User => "your numbers",
        }
    }
}

/// One food in a meal, with the amount eaten and what it contains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoodItem {
    /// What the person wrote for this item ("2 eggs").
    pub input: String,
    /// The food it was matched to ("egg, whole, cooked").
    pub name: String,
    pub grams: f64,
    pub nutrients: Nutrients,
    pub source: NutritionSource,
    /// 0.0 ..= 1.0
    pub confidence: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MealType {
    Breakfast,
    Lunch,
    Dinner,
    Snack,
}

impl MealType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Breakfast => "breakfast",
            Self::Lunch => "lunch",
            Self::Dinner => "dinner",
            Self::Snack => "snack",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "breakfast" => Some(Self::Breakfast),
            "lunch" => Some(Self::Lunch),
            "dinner" => Some(Self::Dinner),
            "snack" => Some(Self::Snack),
            _ => None,
        }
    }
}

/// A logged meal: what was eaten, when, and its totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoodEntry {
    /// Client-generated (UUIDv7, or UUIDv5 derived from the update that created it), so a
    /// retried write never duplicates the entry.
    pub id: Uuid,
    pub user_id: UserId,
    pub eaten_at: DateTime<Utc>,
    /// The person's local calendar day when they ate: "today" means this.
    pub local_date: NaiveDate,
    pub meal_type: Option<MealType>,
    /// The text (or photo caption) the entry was made from.
    pub description: String,
    pub items: Vec<FoodItem>,
    pub total: Nutrients,
    /// Set when the entry came from a photo stored under `photos/`.
    pub photo_path: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityLevel {
    Sedentary,
    Light,
    Moderate,
    Active,
    VeryActive,
}

impl ActivityLevel {
    /// The usual multipliers of resting energy expenditure.
    pub fn factor(self) -> f64 {
        match self {
            Self::Sedentary => 1.2,
            Self::Light => 1.375,
            Self::Moderate => 1.55,
            Self::Active => 1.725,
            Self::VeryActive => 1.9,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightGoal {
    Lose,
    Maintain,
    Gain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Units {
    #[default]
    Metric,
    Imperial,
}

/// What the person told us about themselves. Every field is optional: nothing is assumed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub display_name: Option<String>,
    pub age_years: Option<u32>,
    pub sex: Option<Sex>,
    pub height_cm: Option<f64>,
    pub weight_kg: Option<f64>,
    pub activity: Option<ActivityLevel>,
    pub goal: Option<WeightGoal>,
    #[serde(default)]
    pub units: Units,
    /// BCP 47 language tag, e.g. "en".
    pub language: Option<String>,
}

/// Daily targets. Absent targets are shown as "no goal set", never as a made-up number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Goals {
    pub kcal: Option<f64>,
    pub protein_g: Option<f64>,
    pub carbs_g: Option<f64>,
    pub fat_g: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub profile: Profile,
    pub goals: Goals,
    /// IANA time zone name; "UTC" until the person tells us.
    pub timezone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    pub fn new(id: UserId, now: DateTime<Utc>) -> Self {
        Self {
            id,
            profile: Profile::default(),
            goals: Goals::default(),
            timezone: "UTC".to_owned(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The person's time zone, or UTC when the stored name is not a known zone.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// The person's local calendar day at `at`.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz()).date_naive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(Self::User),
            "assistant" => Some(Self::Assistant),
            _ => None,
        }
    }
}

/// One turn of a conversation, kept so the agent has context after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationMessage {
    pub id: Uuid,
    pub user_id: UserId,
    pub role: Role,
    pub content: String,
    pub created_at: DateTime<Utc>,
}

/// A fact the person stated, with the embedding used to find it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub id: Uuid,
    pub user_id: UserId,
    pub content: String,
    pub embedding: Vec<f32>,
    /// Which embedder made the vector ("offline-hash-v1", "openai:text-embedding-3-small"):
    /// vectors of different embedders are never compared.
    pub embedder: String,
    pub created_at: DateTime<Utc>,
}

/// A memory found by a similarity search, with its cosine similarity to the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredMemory {
    pub memory: Memory,
    pub similarity: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightLog {
    pub id: Uuid,
    pub user_id: UserId,
    pub kg: f64,
    pub logged_at: DateTime<Utc>,
}

/// When a reminder fires, in the person's local time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReminderSchedule {
    Daily {
        time: chrono::NaiveTime,
    },
    /// Weekdays as numbers from Monday = 1 to Sunday = 7.
    Weekly {
        time: chrono::NaiveTime,
        weekdays: Vec<u8>,
    },
    Once {
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reminder {
    pub id: Uuid,
    pub user_id: UserId,
    pub text: String,
    pub schedule: ReminderSchedule,
    /// The next time it is due (UTC); `None` once a one-time reminder has fired.
    pub next_fire_at: Option<DateTime<Utc>>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// Experience points earned for one action; the total is the sum of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XpEvent {
    pub id: Uuid,
    pub user_id: UserId,
    pub amount: i64,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// A run of consecutive local days with activity in one domain ("food", "reminders", ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Streak {
    pub user_id: UserId,
    pub domain: String,
    pub current: u32,
    pub best: u32,
    pub last_date: Option<NaiveDate>,
    pub freezes_left: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Achievement {
    pub user_id: UserId,
    pub code: String,
    pub earned_at: DateTime<Utc>,
}

/// A message whose handling failed (the actor panicked or errored), kept for the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: Uuid,
    pub user_id: UserId,
    /// A description of the message (kind and content), as JSON.
    pub message: serde_json::Value,
    pub error: String,
    pub created_at: DateTime<Utc>,
}

/// What one vision agent estimated for one item of a photo entry, and the person's correction of
/// it once they make one. The per-user calibration of each agent's bias is learned from the
/// corrected rows (see [`crate::consensus::calibration`]). Kept when the entry is removed (what a
/// correction taught stays learned); deleted with the person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionEstimate {
    pub entry_id: Uuid,
    /// The item's name as saved in the entry (the consensus name).
    pub item: String,
    /// `provider:model`.
    pub agent: String,
    pub user_id: UserId,
    /// What the agent said, before any calibration.
    pub grams: f64,
    pub kcal: f64,
    /// The grams the person said it was; `Some(0.0)` when the item was not there at all.
    pub corrected_grams: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub corrected_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grams_and_kcal_refuse_impossible_values() {
        assert!(Grams::new(-1.0).is_err());
        assert!(Grams::new(f64::NAN).is_err());
        assert!(Grams::new(150.0).is_ok());
        assert!(Kcal::new(f64::INFINITY).is_err());
        assert_eq!(Kcal::new(52.0).map(Kcal::get), Ok(52.0));
    }

    #[test]
    fn nutrients_scale_and_add() {
        let per_100 = Nutrients {
            kcal: 143.0,
            protein_g: 12.6,
            carbs_g: 0.7,
            fat_g: 9.5,
            fiber_g: 0.0,
        };
        let two_eggs = per_100.scaled(1.0);
        let total = Nutrients::sum([&two_eggs, &per_100.scaled(0.5)]);
        assert!((total.kcal - 214.5).abs() < 1e-9);
    }

    #[test]
    fn local_date_follows_the_persons_timezone() {
        let mut user = User::new(UserId(1), Utc::now());
        user.timezone = "Pacific/Auckland".into();
        let at = "2026-01-01T20:00:00Z".parse().unwrap();
        assert_eq!(
            user.local_date(at),
            NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()
        );
        user.timezone = "Not/AZone".into();
        assert_eq!(
            user.local_date(at),
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
        );
    }
}
