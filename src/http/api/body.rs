//! The JSON shapes of `/api/v1`: what requests carry and answers return, with their OpenAPI
//! schemas. Domain records are converted here, so the wire format is stated in one place and does
//! not change by accident when a domain type does.

use chrono::{DateTime, NaiveDate, Utc};
use health_actors::domain::{
    Achievement, ActivityLevel, FoodEntry, FoodItem, Goals, MealType, Memory, Nutrients, Profile,
    Sex, Streak, Units, User, WeightGoal, XpEvent,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The largest id magnitude the API takes: 2^53 - 1, the whole numbers every JSON client
/// (JavaScript's numbers included) holds exactly. Telegram ids and the ids the API chooses are
/// far below it.
pub const ID_MAX: i64 = (1 << 53) - 1;
/// The largest item index a correction may name (an entry never has this many items).
pub const ITEM_INDEX_MAX: usize = 1_000;

/// Whole JSON numbers. JSON Schema's `integer` is any number without a fractional part, `1324.0`
/// as much as `1324`, so the fields the document calls integers read both.
pub mod whole {
    use std::fmt;

    use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

    use super::{ID_MAX, ITEM_INDEX_MAX};

    struct WholeVisitor;

    impl Visitor<'_> for WholeVisitor {
        type Value = i128;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a whole number")
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<i128, E> {
            Ok(value.into())
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<i128, E> {
            Ok(value.into())
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<i128, E> {
            // 2^100 bounds the cast; anything that large is out of every range below anyway.
            if value.is_finite() && value.fract() == 0.0 && value.abs() < 2f64.powi(100) {
                Ok(value as i128)
            } else {
                Err(E::invalid_value(Unexpected::Float(value), &self))
            }
        }
    }

    fn within<'de, D: Deserializer<'de>>(
        deserializer: D,
        min: i128,
        max: i128,
        what: &str,
    ) -> Result<i128, D::Error> {
        let value = deserializer.deserialize_any(WholeVisitor)?;
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(de::Error::custom(format!(
                "{value} is out of range: {what} is a whole number from {min} to {max}"
            )))
        }
    }

    /// A person's id: a whole number within +-[`ID_MAX`].
    pub fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        within(
            deserializer,
            -i128::from(ID_MAX),
            i128::from(ID_MAX),
            "an id",
        )
        .map(|v| v as i64)
    }

    struct Id(i64);

    impl<'de> Deserialize<'de> for Id {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            id(deserializer).map(Id)
        }
    }

    pub fn optional_id<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        Ok(Option::<Id>::deserialize(deserializer)?.map(|id| id.0))
    }

    /// An item's position: 0 to [`ITEM_INDEX_MAX`].
    pub fn index<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
        within(deserializer, 0, ITEM_INDEX_MAX as i128, "an item index").map(|v| v as usize)
    }

    struct Count(u32);

    impl<'de> Deserialize<'de> for Count {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            within(deserializer, 0, u32::MAX.into(), "this number").map(|v| Count(v as u32))
        }
    }

    /// A count such as an age in years: 0 to `u32::MAX`, or null.
    pub fn optional_count<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u32>, D::Error> {
        Ok(Option::<Count>::deserialize(deserializer)?.map(|count| count.0))
    }
}

/// Text fields: no NUL character, which no store can keep (the document's patterns exclude it).
pub mod text {
    use serde::de::{self, Deserialize, Deserializer};

    fn checked<E: de::Error>(text: String) -> Result<String, E> {
        if text.contains('\0') {
            Err(E::custom(
                "the text contains a NUL character (\\u0000), which cannot be stored",
            ))
        } else {
            Ok(text)
        }
    }

    pub fn without_nul<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        checked(String::deserialize(deserializer)?)
    }

    pub fn optional_without_nul<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<String>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(checked)
            .transpose()
    }
}

/// The names the API takes for closed sets of values. They exist for the document (each
/// becomes an `enum` schema); the server reads the domain types, and a test checks that both
/// take exactly the same names.
pub mod names {
    #![allow(dead_code)]

    use utoipa::ToSchema;

    /// breakfast, lunch, dinner or snack.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[schema(as = MealType)]
    pub enum MealTypeName {
        Breakfast,
        Lunch,
        Dinner,
        Snack,
    }

    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[schema(as = Sex)]
    pub enum SexName {
        Female,
        Male,
    }

    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[schema(as = ActivityLevel)]
    pub enum ActivityLevelName {
        Sedentary,
        Light,
        Moderate,
        Active,
        VeryActive,
    }

    /// What the person wants their weight to do.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[schema(as = WeightGoal)]
    pub enum WeightGoalName {
        Lose,
        Maintain,
        Gain,
    }

    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[schema(as = Units)]
    pub enum UnitsName {
        Metric,
        Imperial,
    }

    /// What a vision model did with a photo: answered with food, saw no food, ran out of time,
    /// gave an answer that could not be read, or could not be reached.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[schema(as = AgentStatus)]
    pub enum AgentStatusName {
        Answered,
        NoFood,
        Timeout,
        Invalid,
        Unavailable,
    }

    /// How far the vision models' estimate can be trusted; single_source when only one model
    /// contributed.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[schema(as = PhotoConfidence)]
    pub enum ConfidenceName {
        High,
        Medium,
        Low,
        SingleSource,
    }

    /// A person's id to create: a whole number within +-(2^53 - 1), not 0; or null.
    pub fn new_user_id() -> utoipa::openapi::schema::Schema {
        use utoipa::openapi::schema::{KnownFormat, SchemaFormat, Type};
        use utoipa::openapi::{ObjectBuilder, OneOfBuilder};
        let range = |min: i64, max: i64| {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(min))
                .maximum(Some(max))
        };
        OneOfBuilder::new()
            .item(range(-super::ID_MAX, -1))
            .item(range(1, super::ID_MAX))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(
                "The person's id, not 0. Telegram users are their Telegram id; leave it out and a new id is chosen (negative, so it never collides with a Telegram id).",
            ))
            .into()
    }

    /// An IANA time zone name, exactly as the tz database spells it ("Europe/Paris", "UTC").
    pub struct TimeZoneName;

    impl utoipa::PartialSchema for TimeZoneName {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .description(Some(
                    "An IANA time zone name, exactly as the tz database spells it: \"today\" is the person's local day in it.",
                ))
                .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
                .examples(["Europe/Paris"])
                .into()
        }
    }

    impl ToSchema for TimeZoneName {
        fn name() -> std::borrow::Cow<'static, str> {
            "TimeZone".into()
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct NutrientsBody {
    pub kcal: f64,
    pub protein_g: f64,
    pub carbs_g: f64,
    pub fat_g: f64,
    pub fiber_g: f64,
}

impl From<&Nutrients> for NutrientsBody {
    fn from(n: &Nutrients) -> Self {
        Self {
            kcal: round1(n.kcal),
            protein_g: round1(n.protein_g),
            carbs_g: round1(n.carbs_g),
            fat_g: round1(n.fat_g),
            fiber_g: round1(n.fiber_g),
        }
    }
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Daily targets; `null` means "no goal set".
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoalsBody {
    #[schema(minimum = 500, maximum = 10000)]
    pub kcal: Option<f64>,
    #[schema(minimum = 0, maximum = 1000)]
    pub protein_g: Option<f64>,
    #[schema(minimum = 0, maximum = 2000)]
    pub carbs_g: Option<f64>,
    #[schema(minimum = 0, maximum = 1000)]
    pub fat_g: Option<f64>,
}

impl From<&Goals> for GoalsBody {
    fn from(goals: &Goals) -> Self {
        Self {
            kcal: goals.kcal,
            protein_g: goals.protein_g,
            carbs_g: goals.carbs_g,
            fat_g: goals.fat_g,
        }
    }
}

impl From<GoalsBody> for Goals {
    fn from(body: GoalsBody) -> Self {
        Self {
            kcal: body.kcal,
            protein_g: body.protein_g,
            carbs_g: body.carbs_g,
            fat_g: body.fat_g,
        }
    }
}

/// What the person told us about themselves, and their time zone. Every field may be `null`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    #[serde(default, deserialize_with = "text::optional_without_nul")]
    pub display_name: Option<String>,
    #[schema(minimum = 1, maximum = 130)]
    #[serde(default, deserialize_with = "whole::optional_count")]
    pub age_years: Option<u32>,
    #[schema(value_type = Option<names::SexName>)]
    pub sex: Option<Sex>,
    #[schema(minimum = 40, maximum = 280)]
    pub height_cm: Option<f64>,
    #[schema(minimum = 2, maximum = 650)]
    pub weight_kg: Option<f64>,
    #[schema(value_type = Option<names::ActivityLevelName>)]
    pub activity: Option<ActivityLevel>,
    #[schema(value_type = Option<names::WeightGoalName>)]
    pub goal: Option<WeightGoal>,
    #[schema(value_type = names::UnitsName)]
    #[serde(default)]
    pub units: Units,
    /// BCP 47 language tag, e.g. "en".
    #[schema(min_length = 2, max_length = 35, pattern = "^[A-Za-z0-9-]+$")]
    pub language: Option<String>,
    #[schema(value_type = names::TimeZoneName)]
    pub timezone: String,
}

/// `PATCH /api/v1/users/{user_id}/profile`: a merge patch of [`ProfileBody`]. A field present
/// replaces the stored value (`null` clears it; `units` and `timezone` cannot be cleared), a
/// field left out is kept. The server applies the patch to the stored profile and reads the
/// result as a [`ProfileBody`]; this type states that contract in the document.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ProfilePatch {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    display_name: Option<String>,
    #[schema(minimum = 1, maximum = 130)]
    age_years: Option<u32>,
    #[schema(value_type = Option<names::SexName>)]
    sex: Option<Sex>,
    #[schema(minimum = 40, maximum = 280)]
    height_cm: Option<f64>,
    #[schema(minimum = 2, maximum = 650)]
    weight_kg: Option<f64>,
    #[schema(value_type = Option<names::ActivityLevelName>)]
    activity: Option<ActivityLevel>,
    #[schema(value_type = Option<names::WeightGoalName>)]
    goal: Option<WeightGoal>,
    #[schema(value_type = Option<names::UnitsName>, nullable = false)]
    units: Option<Units>,
    /// BCP 47 language tag, e.g. "en".
    #[schema(min_length = 2, max_length = 35, pattern = "^[A-Za-z0-9-]+$")]
    language: Option<String>,
    #[schema(value_type = Option<names::TimeZoneName>, nullable = false)]
    timezone: Option<String>,
}

impl ProfileBody {
    pub fn of(user: &User) -> Self {
        let p = &user.profile;
        Self {
            display_name: p.display_name.clone(),
            age_years: p.age_years,
            sex: p.sex,
            height_cm: p.height_cm,
            weight_kg: p.weight_kg,
            activity: p.activity,
            goal: p.goal,
            units: p.units,
            language: p.language.clone(),
            timezone: user.timezone.clone(),
        }
    }

    pub fn into_profile(self) -> (Profile, String) {
        (
            Profile {
                display_name: self.display_name,
                age_years: self.age_years,
                sex: self.sex,
                height_cm: self.height_cm,
                weight_kg: self.weight_kg,
                activity: self.activity,
                goal: self.goal,
                units: self.units,
                language: self.language,
            },
            self.timezone,
        )
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserBody {
    pub id: i64,
    pub profile: ProfileBody,
    pub goals: GoalsBody,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&User> for UserBody {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.0,
            profile: ProfileBody::of(user),
            goals: GoalsBody::from(&user.goals),
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// `POST /api/v1/users`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    /// The person's id, not 0. Telegram users are their Telegram id; leave it out and a new id
    /// is chosen (negative, so it never collides with a Telegram id).
    #[schema(schema_with = names::new_user_id)]
    #[serde(default, deserialize_with = "whole::optional_id")]
    pub id: Option<i64>,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    #[serde(default, deserialize_with = "text::optional_without_nul")]
    pub display_name: Option<String>,
    /// "UTC" when left out.
    #[schema(value_type = Option<names::TimeZoneName>)]
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FoodItemBody {
    /// What the person wrote for this item ("2 eggs").
    pub input: String,
    /// The food it was matched to.
    pub name: String,
    pub grams: f64,
    pub nutrients: NutrientsBody,
    /// usda, built_in, model_estimate or user.
    pub source: String,
    /// 0 to 1.
    pub confidence: f64,
}

impl From<&FoodItem> for FoodItemBody {
    fn from(item: &FoodItem) -> Self {
        Self {
            input: item.input.clone(),
            name: item.name.clone(),
            grams: item.grams,
            nutrients: NutrientsBody::from(&item.nutrients),
            source: item.source.as_str().to_owned(),
            confidence: item.confidence,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FoodEntryBody {
    pub id: Uuid,
    pub user_id: i64,
    pub eaten_at: DateTime<Utc>,
    /// The person's local day when they ate.
    pub local_date: NaiveDate,
    #[schema(value_type = Option<names::MealTypeName>)]
    pub meal_type: Option<String>,
    pub description: String,
    pub items: Vec<FoodItemBody>,
    pub total: NutrientsBody,
    /// Whether the entry was logged from a photo the server keeps.
    pub has_photo: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&FoodEntry> for FoodEntryBody {
    fn from(entry: &FoodEntry) -> Self {
        Self {
            id: entry.id,
            user_id: entry.user_id.0,
            eaten_at: entry.eaten_at,
            local_date: entry.local_date,
            meal_type: entry.meal_type.map(|m| m.as_str().to_owned()),
            description: entry.description.clone(),
            items: entry.items.iter().map(FoodItemBody::from).collect(),
            total: NutrientsBody::from(&entry.total),
            has_photo: entry.photo_path.is_some(),
            created_at: entry.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FoodEntryPage {
    pub entries: Vec<FoodEntryBody>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `POST /api/v1/users/{user_id}/food-entries`: a meal in words.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFoodEntryBody {
    /// What was eaten, with amounts; it must name at least one food the nutrition databases
    /// know (422 otherwise, and nothing is saved).
    #[schema(
        example = "2 eggs and a slice of toast",
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    #[serde(deserialize_with = "text::without_nul")]
    pub text: String,
    /// When it was eaten, at most 5 minutes ahead and at most ten years back (422 otherwise);
    /// now when left out.
    pub eaten_at: Option<DateTime<Utc>>,
    /// From the time of day when left out.
    #[schema(value_type = Option<names::MealTypeName>)]
    pub meal_type: Option<MealType>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedFoodEntry {
    pub entry: FoodEntryBody,
    /// Parts of the text no food database knew: nothing was saved for them.
    pub unknown: Vec<String>,
    /// Parts whose food is known but whose amount cannot be right (nothing, or more than 5 kg
    /// of one food), each with why: nothing was saved for them either.
    pub left_out: Vec<LeftOutBody>,
}

/// An item understood but not saved, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeftOutBody {
    /// The item as written.
    pub input: String,
    /// Why, for the person: "comes to 50 kg, which looks like a typo".
    pub reason: String,
}

impl From<&health_actors::nutrition::LeftOut> for LeftOutBody {
    fn from(left_out: &health_actors::nutrition::LeftOut) -> Self {
        Self {
            input: left_out.input.clone(),
            reason: left_out.reason.clone(),
        }
    }
}

/// One item's corrected amount.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemCorrection {
    /// Position of the item in the entry's `items`, from 0 (422 when the entry has no such item).
    #[schema(minimum = 0, maximum = 1000)]
    #[serde(deserialize_with = "whole::index")]
    pub index: usize,
    /// The amount actually eaten; nutrients are scaled to it.
    #[schema(minimum = 0, maximum = 100000)]
    pub grams: f64,
}

/// `PATCH /api/v1/users/{user_id}/food-entries/{entry_id}`: fields left out stay as they are.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectFoodEntryBody {
    /// A new description: the items are estimated again from it (422 when it names no food the
    /// nutrition databases know).
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    #[serde(default, deserialize_with = "text::optional_without_nul")]
    pub text: Option<String>,
    /// New amounts for some items (applied after `text`).
    #[serde(default)]
    pub items: Vec<ItemCorrection>,
    #[schema(value_type = Option<names::MealTypeName>)]
    pub meal_type: Option<MealType>,
    /// At most 5 minutes ahead and at most ten years back (422 otherwise).
    pub eaten_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DailySummary {
    pub date: NaiveDate,
    pub total: NutrientsBody,
    pub goals: GoalsBody,
    /// Goal minus total for each nutrient with a goal; negative when over.
    pub remaining: RemainingBody,
    pub entries: usize,
}

/// What is left of each goal on a day: goal minus total, negative when over; `null` where no
/// goal is set.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct RemainingBody {
    pub kcal: Option<f64>,
    pub protein_g: Option<f64>,
    pub carbs_g: Option<f64>,
    pub fat_g: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WeeklySummary {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<DailySummary>,
    pub total: NutrientsBody,
    /// Average over the days with at least one entry.
    pub daily_average: NutrientsBody,
    pub days_logged: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemoryBody {
    pub id: Uuid,
    pub content: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Memory> for MemoryBody {
    fn from(memory: &Memory) -> Self {
        Self {
            id: memory.id,
            content: memory.content.clone(),
            created_at: memory.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemoryPage {
    pub memories: Vec<MemoryBody>,
    pub next_cursor: Option<String>,
}

/// `POST /api/v1/chat`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    #[schema(minimum = -9007199254740991_i64, maximum = 9007199254740991_i64)]
    #[serde(deserialize_with = "whole::id")]
    pub user_id: i64,
    #[schema(
        example = "2 eggs and a slice of toast",
        min_length = 1,
        max_length = 4000,
        pattern = r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    #[serde(deserialize_with = "text::without_nul")]
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ChatButton {
    pub label: String,
    /// What pressing the button means to the assistant (the HTTP API cannot press buttons yet).
    pub data: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ChatReply {
    pub text: String,
    pub buttons: Vec<ChatButton>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChatSaved {
    /// The meal this message logged, if it logged one.
    pub food_entry: Option<FoodEntryBody>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChatResponse {
    /// Names this turn; the same `Idempotency-Key` gives the same id.
    pub message_id: Uuid,
    /// What the assistant said, in order.
    pub replies: Vec<ChatReply>,
    pub saved: ChatSaved,
}

/// `POST /api/v1/keys`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    #[schema(minimum = -9007199254740991_i64, maximum = 9007199254740991_i64)]
    #[serde(deserialize_with = "whole::id")]
    pub user_id: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedKey {
    pub user_id: i64,
    /// The key, shown only now: it is stored as a hash and cannot be shown again.
    pub key: String,
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/users/{user_id}/food-entries/photo` as `multipart/form-data`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PhotoUpload {
    /// A JPEG, PNG or WebP image, recognised by its first bytes (415 otherwise); the whole upload
    /// at most 10 MiB (413).
    #[schema(value_type = String, format = Binary, min_length = 1)]
    photo: Vec<u8>,
    /// What the photo shows or how much, in the person's words; the vision models take it as
    /// ground truth. Blank is the same as left out.
    #[schema(max_length = 1000, nullable = false, pattern = r"^[^\x00]*$")]
    caption: Option<String>,
}

/// What one vision model did with the photo.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PhotoAgentBody {
    /// `provider:model`.
    pub agent: String,
    #[schema(value_type = names::AgentStatusName)]
    pub status: String,
    /// The model's own total, when it answered with food.
    pub total_kcal: Option<f64>,
    pub seconds: f64,
}

/// A meal logged from a photo.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PhotoFoodEntry {
    /// The saved entry: the vision models' consensus.
    pub entry: FoodEntryBody,
    /// Every configured vision model, whether it answered or not.
    pub agents: Vec<PhotoAgentBody>,
    /// 0 to 1: how close the models' totals were (0 with a single model).
    #[schema(minimum = 0, maximum = 1)]
    pub agreement: f64,
    #[schema(value_type = names::ConfidenceName)]
    pub confidence: String,
    /// A likely range of the total kcal, from the models' spread.
    pub kcal_low: f64,
    pub kcal_high: f64,
}

/// Experience points earned for one action.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct XpEventBody {
    pub id: Uuid,
    pub amount: i64,
    /// What earned them.
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// A run of consecutive local days with activity in one domain.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreakBody {
    /// What the streak counts, e.g. "food".
    pub domain: String,
    pub current: u32,
    pub best: u32,
    /// The last local day that counted.
    pub last_date: Option<NaiveDate>,
    pub freezes_left: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AchievementBody {
    pub code: String,
    pub earned_at: DateTime<Utc>,
}

/// `GET /api/v1/users/{user_id}/progress`: what the person has earned. Lists are empty until
/// something earns them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProgressBody {
    /// The sum of every XP event, not only those on this page.
    pub xp_total: i64,
    /// XP events, newest first, one page.
    pub xp_events: Vec<XpEventBody>,
    /// Pass as `cursor` for older XP events; `null` on the last page.
    pub next_cursor: Option<String>,
    pub streaks: Vec<StreakBody>,
    /// Oldest first.
    pub achievements: Vec<AchievementBody>,
}

impl From<&XpEvent> for XpEventBody {
    fn from(event: &XpEvent) -> Self {
        Self {
            id: event.id,
            amount: event.amount,
            reason: event.reason.clone(),
            created_at: event.created_at,
        }
    }
}

impl From<&Streak> for StreakBody {
    fn from(streak: &Streak) -> Self {
        Self {
            domain: streak.domain.clone(),
            current: streak.current,
            best: streak.best,
            last_date: streak.last_date,
            freezes_left: streak.freezes_left,
        }
    }
}

impl From<&Achievement> for AchievementBody {
    fn from(achievement: &Achievement) -> Self {
        Self {
            code: achievement.code.clone(),
            earned_at: achievement.earned_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use serde_json::json;
    use utoipa::PartialSchema;

    use super::*;

    /// The names an `enum` schema lists.
    fn listed<T: PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("not an enum schema: {schema}"))
            .iter()
            .map(|value| value.as_str().unwrap().to_owned())
            .collect()
    }

    /// Every listed name is read by the domain type, and the domain type writes only listed names.
    fn agree<Name: PartialSchema, Domain: DeserializeOwned + Serialize>(count: usize) {
        let names = listed::<Name>();
        assert_eq!(names.len(), count, "{names:?}");
        for name in &names {
            let value: Domain = serde_json::from_value(json!(name))
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(serde_json::to_value(value).unwrap(), json!(name));
        }
        assert!(serde_json::from_value::<Domain>(json!("not a name")).is_err());
    }

    #[test]
    fn the_documented_names_are_the_ones_the_server_reads() {
        agree::<names::MealTypeName, MealType>(4);
        agree::<names::SexName, Sex>(2);
        agree::<names::ActivityLevelName, ActivityLevel>(5);
        agree::<names::WeightGoalName, WeightGoal>(3);
        agree::<names::UnitsName, Units>(2);
        let zones = listed::<names::TimeZoneName>();
        assert!(zones.len() > 300);
        for zone in zones {
            assert!(zone.parse::<chrono_tz::Tz>().is_ok(), "{zone}");
        }
        let statuses = listed::<names::AgentStatusName>();
        assert_eq!(
            statuses,
            ["answered", "no_food", "timeout", "invalid", "unavailable"]
        );
        let confidences = listed::<names::ConfidenceName>();
        for confidence in [
            health_actors::consensus::Confidence::High,
            health_actors::consensus::Confidence::Medium,
            health_actors::consensus::Confidence::Low,
            health_actors::consensus::Confidence::SingleSource,
        ] {
            assert!(confidences.contains(&confidence.as_str().to_owned()));
        }
    }

    #[test]
    fn whole_numbers_are_read_with_or_without_a_fraction_and_kept_in_range() {
        let chat: ChatRequest =
            serde_json::from_value(json!({"user_id": -2264.0, "message": "hi"})).unwrap();
        assert_eq!(chat.user_id, -2264);
        let key: CreateKeyBody = serde_json::from_slice(br#"{"user_id": 8407293372.0}"#).unwrap();
        assert_eq!(key.user_id, 8_407_293_372);
        assert!(serde_json::from_value::<CreateKeyBody>(json!({"user_id": 1.5})).is_err());
        assert!(serde_json::from_value::<CreateKeyBody>(json!({"user_id": ID_MAX + 1})).is_err());
        let user: CreateUserBody = serde_json::from_value(json!({})).unwrap();
        assert_eq!(user.id, None);
        let user: CreateUserBody = serde_json::from_value(json!({"id": null})).unwrap();
        assert_eq!(user.id, None);
        let user: CreateUserBody = serde_json::from_value(json!({"id": -5.0})).unwrap();
        assert_eq!(user.id, Some(-5));
        let item: ItemCorrection =
            serde_json::from_value(json!({"index": 2.0, "grams": 10})).unwrap();
        assert_eq!(item.index, 2);
        assert!(
            serde_json::from_value::<ItemCorrection>(json!({"index": 1001, "grams": 10})).is_err()
        );
        assert!(
            serde_json::from_value::<ItemCorrection>(json!({"index": -1, "grams": 10})).is_err()
        );
    }

    /// The pattern that says "not blank" in the document names exactly the characters Rust's
    /// `trim` removes, so the server and the document agree on what is blank; it also excludes
    /// NUL, which the server refuses.
    #[test]
    fn not_blank_means_what_trim_means() {
        let ranges: [(u32, u32); 10] = [
            (0x09, 0x0D),
            (0x20, 0x20),
            (0x85, 0x85),
            (0xA0, 0xA0),
            (0x1680, 0x1680),
            (0x2000, 0x200A),
            (0x2028, 0x2029),
            (0x202F, 0x202F),
            (0x205F, 0x205F),
            (0x3000, 0x3000),
        ];
        let whitespace: Vec<u32> = (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .map(u32::from)
            .collect();
        let listed: Vec<u32> = ranges.iter().flat_map(|&(low, high)| low..=high).collect();
        assert_eq!(whitespace, listed);
        let document = serde_json::to_value(CreateFoodEntryBody::schema()).unwrap();
        assert_eq!(
            document["properties"]["text"]["pattern"],
            r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
        );
        assert!(serde_json::from_value::<CreateFoodEntryBody>(json!({"text": "egg\0"})).is_err());
    }
}
