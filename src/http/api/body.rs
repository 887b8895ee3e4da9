//! The JSON shapes of `/api/v1`: what requests carry and answers return, with their OpenAPI
//! schemas. Domain records are converted here, so the wire format is stated in one place and does
//! not change by accident when a domain type does.

use chrono::{DateTime, NaiveDate, Utc};
use health_actors::domain::{
    ActivityLevel, FoodEntry, FoodItem, Goals, MealType, Memory, Nutrients, Profile, Sex, Units,
    User, WeightGoal,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

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
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub display_name: Option<String>,
    #[schema(minimum = 1, maximum = 130)]
    pub age_years: Option<u32>,
    #[schema(value_type = Option<String>, example = "female")]
    pub sex: Option<Sex>,
    #[schema(minimum = 40, maximum = 280)]
    pub height_cm: Option<f64>,
    #[schema(minimum = 2, maximum = 650)]
    pub weight_kg: Option<f64>,
    /// sedentary, light, moderate, active or very_active.
    #[schema(value_type = Option<String>, example = "moderate")]
    pub activity: Option<ActivityLevel>,
    /// lose, maintain or gain.
    #[schema(value_type = Option<String>, example = "maintain")]
    pub goal: Option<WeightGoal>,
    /// metric or imperial.
    #[schema(value_type = String, example = "metric")]
    #[serde(default)]
    pub units: Units,
    /// BCP 47 language tag, e.g. "en".
    #[schema(pattern = "^[A-Za-z0-9-]{2,35}$")]
    pub language: Option<String>,
    /// IANA time zone name: "today" is the person's local day in it.
    #[schema(example = "Europe/Paris")]
    pub timezone: String,
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
    /// The person's id. Telegram users are their Telegram id; leave it out and a new id is
    /// chosen (negative, so it never collides with a Telegram id).
    pub id: Option<i64>,
    pub display_name: Option<String>,
    /// IANA time zone name; "UTC" when left out.
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
    /// breakfast, lunch, dinner or snack.
    pub meal_type: Option<String>,
    pub description: String,
    pub items: Vec<FoodItemBody>,
    pub total: NutrientsBody,
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
    #[schema(
        example = "2 eggs and a slice of toast",
        min_length = 1,
        max_length = 2000,
        pattern = r"\S"
    )]
    pub text: String,
    /// When it was eaten; now when left out.
    pub eaten_at: Option<DateTime<Utc>>,
    /// breakfast, lunch, dinner or snack; from the time of day when left out.
    #[schema(value_type = Option<String>, example = "breakfast")]
    pub meal_type: Option<MealType>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedFoodEntry {
    pub entry: FoodEntryBody,
    /// Parts of the text no food database knew: nothing was saved for them.
    pub unknown: Vec<String>,
}

/// One item's corrected amount.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemCorrection {
    /// Position of the item in the entry's `items`, from 0.
    pub index: usize,
    /// The amount actually eaten; nutrients are scaled to it.
    #[schema(minimum = 0, maximum = 100000)]
    pub grams: f64,
}

/// `PATCH /api/v1/users/{user_id}/food-entries/{entry_id}`: fields left out stay as they are.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectFoodEntryBody {
    /// A new description: the items are estimated again from it.
    pub text: Option<String>,
    /// New amounts for some items (applied after `text`).
    #[serde(default)]
    pub items: Vec<ItemCorrection>,
    #[schema(value_type = Option<String>, example = "lunch")]
    pub meal_type: Option<MealType>,
    pub eaten_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DailySummary {
    pub date: NaiveDate,
    pub total: NutrientsBody,
    pub goals: GoalsBody,
    /// Goal minus total for each nutrient with a goal; negative when over.
    pub remaining: GoalsBody,
    pub entries: usize,
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
    pub user_id: i64,
    #[schema(
        example = "2 eggs and a slice of toast",
        min_length = 1,
        max_length = 4000,
        pattern = r"\S"
    )]
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
    pub user_id: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedKey {
    pub user_id: i64,
    /// The key, shown only now: it is stored as a hash and cannot be shown again.
    pub key: String,
    pub created_at: DateTime<Utc>,
}
