//! The LLM agent's tools: what each one is for (the specs the model reads) and what it does.
//!
//! Every number a tool saves comes from the nutrition engine (built-in table, USDA); a model's
//! own numbers are used only for a food no database knows, labelled "model estimate", and only
//! when they could describe a real food ([`check_nutrients`]: macros within the grams, kcal
//! agreeing with 4/4/9/7, energy per gram); otherwise the whole call is refused naming the rule
//! and nothing is saved. The first meal a message saves has the id [`entry_id_for`] gives, as
//! on the rule agent's path, so the HTTP API's chat answer finds it. Every
//! effect is a write through the persistence actor, with an id derived from the message (a
//! replay writes the same rows), and what a tool answers is JSON the model reads back: what was
//! saved, or why not, with a note on what to tell the person.

use chrono::{Datelike, Duration};
use health_actors::conversation::{AgentError, TurnContext};
use health_actors::domain::{
    ActivityLevel, FoodEntry, FoodItem, MealType, Nutrients, NutritionSource, Sex, WeightGoal,
    WeightLog,
};
use health_actors::inbound::Inbound;
use health_actors::memory::{Embedder, Remembered};
use health_actors::nutrition::{
    check_amount, check_nutrients, daily_kcal_target, FoodTable, StatedNutrients, Violation,
};
use health_actors::ports::Write;
use health_actors::understanding::Correction;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::assistant::entries::{
    correct_recent_entry, entry_id_for, item_json, meal_type_at, Corrected,
};
use crate::assistant::memory::{remember_fact, search};
use crate::llm::model::{ToolCall, ToolSpec};
use crate::nutrition::engine::NutritionEngine;

/// Confidence of numbers a model gave for a food no database knows.
const MODEL_ESTIMATE_CONFIDENCE: f64 = 0.4;
/// How far back `log_food` may date a meal, in days.
const MAX_DAYS_AGO: i64 = 30;
/// Ids of what one message creates derive from its id (a replay writes the same rows).
const LLM_NAMESPACE: Uuid = Uuid::from_u128(0x3b1f_8e2a_7c4d_4f60_8a9b_5d6e_7f80_9102);

/// The tools offered to the model; the memory tools only when memory is on.
pub(super) fn specs(with_memory: bool) -> Vec<ToolSpec> {
    let mut tools = vec![
        ToolSpec {
            name: "log_food",
            description: "Save what the person ate. Name each food plainly (e.g. 'egg', 'white rice, cooked') and estimate its grams; the numbers are computed from a food database. Only give kcal and macros for a food you believe no database knows; they must be possible (macros weigh no more than the food, kcal about 4 per g protein and carbs, 9 fat, 7 alcohol), or nothing is saved.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "description": {"type": "string", "description": "the meal as the person said it"},
                    "meal_type": {"type": "string", "enum": ["breakfast", "lunch", "dinner", "snack"]},
                    "days_ago": {"type": "integer", "minimum": 0, "maximum": MAX_DAYS_AGO, "description": "0 for today, 1 for yesterday"},
                    "items": {"type": "array", "minItems": 1, "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "grams": {"type": "number", "exclusiveMinimum": 0},
                            "kcal": {"type": "number", "minimum": 0}, "protein_g": {"type": "number", "minimum": 0},
                            "carbs_g": {"type": "number", "minimum": 0}, "fat_g": {"type": "number", "minimum": 0},
                            "alcohol_g": {"type": "number", "minimum": 0, "description": "for a drink with alcohol (7 kcal/g), when giving numbers"}
                        },
                        "required": ["name", "grams"]
                    }}
                },
                "required": ["description", "items"]
            }),
        },
        ToolSpec {
            name: "get_summary",
            description: "Totals and entries of a period, from the stored data.",
            parameters: json!({"type": "object", "properties": {
                "period": {"type": "string", "enum": ["today", "yesterday", "this_week", "last_week"]}
            }, "required": ["period"]}),
        },
        ToolSpec {
            name: "set_goal",
            description: "Set daily targets the person asked for.",
            parameters: json!({"type": "object", "properties": {
                "kcal": {"type": "number"}, "protein_g": {"type": "number"},
                "carbs_g": {"type": "number"}, "fat_g": {"type": "number"}
            }}),
        },
        ToolSpec {
            name: "update_profile",
            description: "Record facts of the person's profile they stated.",
            parameters: json!({"type": "object", "properties": {
                "age_years": {"type": "integer"}, "sex": {"type": "string", "enum": ["female", "male"]},
                "height_cm": {"type": "number"}, "weight_kg": {"type": "number"},
                "activity": {"type": "string", "enum": ["sedentary", "light", "moderate", "active", "very_active"]},
                "goal": {"type": "string", "enum": ["lose", "maintain", "gain"]}
            }}),
        },
        ToolSpec {
            name: "log_weight",
            description: "Save a body weight in kilograms.",
            parameters: json!({"type": "object", "properties": {"kg": {"type": "number"}}, "required": ["kg"]}),
        },
        ToolSpec {
            name: "correct_entry",
            description: "Correct a food already logged when the person says an amount was different ('the rice was 100 g', 'it was 150 g of rice') or a food was not there ('no rice'). Changes their most recent entry that has the food; the numbers are recomputed per gram. Use this instead of logging the food again.",
            parameters: json!({"type": "object", "properties": {
                "food": {"type": "string", "description": "the food as the person named it"},
                "grams": {"type": "number", "exclusiveMinimum": 0, "description": "the corrected amount in grams"},
                "remove": {"type": "boolean", "description": "true when the food was not there at all"}
            }, "required": ["food"]}),
        },
        ToolSpec {
            name: "delete_last_entry",
            description: "Undo: delete the most recently logged food entry.",
            parameters: json!({"type": "object", "properties": {}}),
        },
    ];
    if with_memory {
        tools.extend([
            ToolSpec {
                name: "remember",
                description: "Keep a lasting fact about the person (diet, allergies, preferences, routines).",
                parameters: json!({"type": "object", "properties": {"fact": {"type": "string"}}, "required": ["fact"]}),
            },
            ToolSpec {
                name: "forget",
                description: "Delete a remembered fact by its id.",
                parameters: json!({"type": "object", "properties": {"memory_id": {"type": "string"}}, "required": ["memory_id"]}),
            },
            ToolSpec {
                name: "search_memory",
                description: "Find remembered facts related to a query.",
                parameters: json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
            },
        ]);
    }
    tools
}

/// Runs the tool the model called and answers what the model reads back.
pub(super) async fn run(
    ctx: &mut TurnContext<'_>,
    engine: &NutritionEngine,
    embedder: Option<&dyn Embedder>,
    inbound: &Inbound,
    call: &ToolCall,
    effects: &mut Effects,
) -> Result<Value, AgentError> {
    let arguments = &call.arguments;
    let result = match call.name.as_str() {
        "log_food" => log_food(ctx, engine, inbound, arguments, effects).await?,
        "get_summary" => summary(ctx, arguments).await?,
        "set_goal" => set_goal(ctx, arguments, effects).await?,
        "update_profile" => update_profile(ctx, arguments, effects).await?,
        "log_weight" => log_weight(ctx, inbound, arguments, effects).await?,
        "delete_last_entry" => delete_last_entry(ctx, effects).await?,
        "correct_entry" => correct_entry(ctx, engine.table(), arguments, effects).await?,
        "remember" | "forget" | "search_memory" if embedder.is_some() => {
            memory_tool(ctx, embedder, inbound, call, effects).await?
        }
        other => json!({"error": format!("there is no tool called {other}")}),
    };
    Ok(result)
}

async fn log_food(
    ctx: &mut TurnContext<'_>,
    engine: &NutritionEngine,
    inbound: &Inbound,
    arguments: &Value,
    effects: &mut Effects,
) -> Result<Value, AgentError> {
    let Some(requested) = arguments
        .get("items")
        .and_then(Value::as_array)
        .filter(|items| !items.is_empty())
    else {
        return Ok(json!({"error": "items must list at least one food with grams"}));
    };
    let mut items: Vec<FoodItem> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut impossible: Vec<(String, Vec<Violation>)> = Vec::new();
    for requested in requested {
        let name = requested
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim();
        let grams = requested
            .get("grams")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        if name.is_empty() {
            unknown.push("an item without a name (each needs a name and grams)".to_owned());
            continue;
        }
        if let Err(left_out) = check_amount(name, grams) {
            unknown.push(format!(
                "{name}: {grams} g {}; nothing was saved for it, ask the person for the amount",
                left_out.reason
            ));
            continue;
        }
        match engine.item(name, grams).await {
            Some(item) => items.push(item),
            None => match model_numbers(name, grams, requested) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => unknown.push(name.to_owned()),
                Err(broken) => impossible.push((name.to_owned(), broken)),
            },
        }
    }
    if !impossible.is_empty() {
        return Ok(impossible_numbers(&impossible));
    }
    if items.is_empty() {
        return Ok(
            json!({"saved": false, "unknown": unknown, "note": "nothing was saved: ask the person for a similar food or the numbers"}),
        );
    }
    let user = ctx.user().clone();
    let now = ctx.now();
    let days_ago = arguments
        .get("days_ago")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if !(0..=MAX_DAYS_AGO).contains(&days_ago) {
        return Ok(
            json!({"saved": false, "error": format!("days_ago is {days_ago}; it must be 0 (today) to {MAX_DAYS_AGO}"), "note": "nothing was saved"}),
        );
    }
    let local_date = user.local_date(now) - Duration::days(days_ago);
    let meal_type = arguments
        .get("meal_type")
        .and_then(Value::as_str)
        .and_then(MealType::parse)
        .or_else(|| (days_ago == 0).then(|| meal_type_at(now.with_timezone(&user.tz()).time())));
    let total = Nutrients::sum(items.iter().map(|item| &item.nutrients));
    let id = if effects.entries.is_empty() {
        entry_id_for(inbound.id)
    } else {
        Uuid::new_v5(
            &LLM_NAMESPACE,
            format!("{}:food:{}", inbound.id, effects.saved.len()).as_bytes(),
        )
    };
    let entry = FoodEntry {
        id,
        user_id: user.id,
        eaten_at: if days_ago == 0 {
            now
        } else {
            now - Duration::days(days_ago)
        },
        local_date,
        meal_type,
        description: arguments
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("meal")
            .trim()
            .to_owned(),
        items: items.clone(),
        total,
        photo_path: None,
        created_at: now,
    };
    let entry_id = entry.id;
    ctx.write(vec![Write::InsertFoodEntry(entry)]).await?;
    effects.entries.push(entry_id);
    let day = ctx
        .store()
        .food_entries(user.id, local_date, local_date)
        .await?;
    let day_total = Nutrients::sum(day.iter().map(|e| &e.total));
    effects.saved.push(format!("{:.0} kcal logged", total.kcal));
    Ok(json!({
        "saved": true,
        "items": items.iter().map(|item| json!({
            "name": item.name, "grams": item.grams, "kcal": item.nutrients.kcal.round(),
            "protein_g": round1(item.nutrients.protein_g), "carbs_g": round1(item.nutrients.carbs_g),
            "fat_g": round1(item.nutrients.fat_g), "source": item.source.label(),
        })).collect::<Vec<_>>(),
        "unknown": unknown,
        "meal_total_kcal": total.kcal.round(),
        "day_total": {"kcal": day_total.kcal.round(), "protein_g": round1(day_total.protein_g), "carbs_g": round1(day_total.carbs_g), "fat_g": round1(day_total.fat_g)},
        "daily_goal_kcal": user.goals.kcal,
        "note": "tell the person the items with their numbers and sources, and the day's total against the goal"
    }))
}

async fn memory_tool(
    ctx: &mut TurnContext<'_>,
    embedder: Option<&dyn Embedder>,
    inbound: &Inbound,
    call: &ToolCall,
    effects: &mut Effects,
) -> Result<Value, AgentError> {
    let Some(embedder) = embedder else {
        return Ok(json!({"error": "memory is off"}));
    };
    let user_id = ctx.user().id;
    match call.name.as_str() {
        "remember" => {
            let fact = call
                .arguments
                .get("fact")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_owned();
            if fact.is_empty() {
                return Ok(json!({"error": "fact is empty"}));
            }
            let id = Uuid::new_v5(
                &LLM_NAMESPACE,
                format!("{}:memory:{}", inbound.id, effects.saved.len()).as_bytes(),
            );
            let Some(kept) = remember_fact(ctx, embedder, id, &fact).await? else {
                return Ok(
                    json!({"saved": false, "error": "the fact could not be embedded right now"}),
                );
            };
            effects.saved.push("remembered".into());
            Ok(
                json!({"saved": true, "memory_id": id, "merged_with_an_older_fact": matches!(kept, Remembered::Merged { .. })}),
            )
        }
        "forget" => {
            let id = call
                .arguments
                .get("memory_id")
                .and_then(Value::as_str)
                .and_then(|id| Uuid::parse_str(id).ok());
            let Some(id) = id else {
                return Ok(json!({"error": "memory_id is not a valid id"}));
            };
            let owned = ctx
                .store()
                .memories(user_id)
                .await?
                .iter()
                .any(|memory| memory.id == id);
            if !owned {
                return Ok(json!({"deleted": false, "error": "no such memory"}));
            }
            ctx.write(vec![Write::DeleteMemory { user_id, id }]).await?;
            effects.saved.push("forgotten".into());
            Ok(json!({"deleted": true}))
        }
        _ => {
            let query = call
                .arguments
                .get("query")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let Some(found) = search(ctx, embedder, &query, 5).await? else {
                return Ok(json!({"error": "the search is unavailable right now"}));
            };
            Ok(
                json!({"memories": found.iter().map(|m| json!({"id": m.memory.id, "fact": m.memory.content, "similarity": round2(m.similarity)})).collect::<Vec<_>>()}),
            )
        }
    }
}

/// What this turn's tools did, for a reply when the model says nothing more.
#[derive(Default)]
pub(super) struct Effects {
    pub(super) saved: Vec<String>,
    /// Food entries saved this turn.
    pub(super) entries: Vec<Uuid>,
}

impl Effects {
    pub(super) fn summary_or(&self, otherwise: &str) -> String {
        if self.saved.is_empty() {
            otherwise.to_owned()
        } else {
            format!("Saved: {}.", self.saved.join(", "))
        }
    }
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// A food no database knows, with the model's own numbers (labelled as such): `None` when it
/// gave no kcal, the rules broken when they cannot describe a real food.
fn model_numbers(
    name: &str,
    grams: f64,
    requested: &Value,
) -> Result<Option<FoodItem>, Vec<Violation>> {
    let number = |key: &str| requested.get(key).and_then(Value::as_f64);
    let Some(kcal) = number("kcal") else {
        return Ok(None);
    };
    let stated = StatedNutrients {
        grams,
        kcal,
        protein_g: number("protein_g"),
        carbs_g: number("carbs_g"),
        fat_g: number("fat_g"),
        alcohol_g: number("alcohol_g"),
    };
    check_nutrients(&stated)?;
    Ok(Some(FoodItem {
        input: name.to_owned(),
        name: name.to_owned(),
        grams,
        nutrients: Nutrients {
            kcal,
            protein_g: stated.protein_g.unwrap_or(0.0),
            carbs_g: stated.carbs_g.unwrap_or(0.0),
            fat_g: stated.fat_g.unwrap_or(0.0),
            fiber_g: 0.0,
        },
        source: NutritionSource::ModelEstimate,
        confidence: MODEL_ESTIMATE_CONFIDENCE,
    }))
}

/// The refusal of a `log_food` whose own numbers no food can have: every item and rule, so
/// the model can correct them.
fn impossible_numbers(impossible: &[(String, Vec<Violation>)]) -> Value {
    let mut rules: Vec<&str> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for (name, violations) in impossible {
        for violation in violations {
            if !rules.contains(&violation.rule.name()) {
                rules.push(violation.rule.name());
            }
            problems.push(format!("{name}: {violation}"));
        }
    }
    json!({
        "saved": false,
        "error": format!("these numbers cannot describe a real food: {}", problems.join("; ")),
        "rules": rules,
        "note": "nothing was saved: correct the numbers (or leave them out) and call log_food again, or ask the person"
    })
}

async fn summary(ctx: &TurnContext<'_>, arguments: &Value) -> Result<Value, AgentError> {
    let user = ctx.user();
    let today = user.local_date(ctx.now());
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let (from, to) = match arguments
        .get("period")
        .and_then(Value::as_str)
        .unwrap_or("today")
    {
        "yesterday" => (today - Duration::days(1), today - Duration::days(1)),
        "this_week" => (monday, today),
        "last_week" => (monday - Duration::days(7), monday - Duration::days(1)),
        _ => (today, today),
    };
    let entries = ctx.store().food_entries(user.id, from, to).await?;
    let total = Nutrients::sum(entries.iter().map(|e| &e.total));
    Ok(json!({
        "from": from, "to": to,
        "total": {"kcal": total.kcal.round(), "protein_g": round1(total.protein_g), "carbs_g": round1(total.carbs_g), "fat_g": round1(total.fat_g)},
        "daily_goals": user.goals,
        "entries": entries.iter().map(|e| json!({
            "date": e.local_date, "meal": e.meal_type.map(MealType::as_str), "description": e.description, "kcal": e.total.kcal.round(),
        })).collect::<Vec<_>>(),
    }))
}

async fn set_goal(
    ctx: &mut TurnContext<'_>,
    arguments: &Value,
    effects: &mut Effects,
) -> Result<Value, AgentError> {
    let mut user = ctx.user().clone();
    let value = |key: &str, range: std::ops::RangeInclusive<f64>| {
        arguments
            .get(key)
            .and_then(Value::as_f64)
            .filter(|v| range.contains(v))
    };
    let before = user.goals;
    if let Some(kcal) = value("kcal", 800.0..=6000.0) {
        user.goals.kcal = Some(kcal);
    }
    if let Some(protein) = value("protein_g", 10.0..=400.0) {
        user.goals.protein_g = Some(protein);
    }
    if let Some(carbs) = value("carbs_g", 10.0..=900.0) {
        user.goals.carbs_g = Some(carbs);
    }
    if let Some(fat) = value("fat_g", 10.0..=400.0) {
        user.goals.fat_g = Some(fat);
    }
    if user.goals == before {
        return Ok(
            json!({"saved": false, "error": "no goal in a safe range was given (kcal 800-6000, protein 10-400 g, carbs 10-900 g, fat 10-400 g)"}),
        );
    }
    let goals = user.goals;
    ctx.save_user(user).await?;
    effects.saved.push("daily goals set".into());
    Ok(json!({"saved": true, "goals": goals}))
}

async fn update_profile(
    ctx: &mut TurnContext<'_>,
    arguments: &Value,
    effects: &mut Effects,
) -> Result<Value, AgentError> {
    let mut user = ctx.user().clone();
    let before = user.profile.clone();
    let profile = &mut user.profile;
    if let Some(age) = arguments
        .get("age_years")
        .and_then(Value::as_u64)
        .filter(|a| (10..=120).contains(a))
    {
        profile.age_years = u32::try_from(age).ok();
    }
    match arguments.get("sex").and_then(Value::as_str) {
        Some("female") => profile.sex = Some(Sex::Female),
        Some("male") => profile.sex = Some(Sex::Male),
        _ => {}
    }
    if let Some(cm) = arguments
        .get("height_cm")
        .and_then(Value::as_f64)
        .filter(|cm| (50.0..=260.0).contains(cm))
    {
        profile.height_cm = Some(cm);
    }
    if let Some(kg) = arguments
        .get("weight_kg")
        .and_then(Value::as_f64)
        .filter(|kg| (20.0..=400.0).contains(kg))
    {
        profile.weight_kg = Some(kg);
    }
    if let Some(activity) = arguments
        .get("activity")
        .and_then(|a| serde_json::from_value::<ActivityLevel>(a.clone()).ok())
    {
        profile.activity = Some(activity);
    }
    if let Some(goal) = arguments
        .get("goal")
        .and_then(|g| serde_json::from_value::<WeightGoal>(g.clone()).ok())
    {
        profile.goal = Some(goal);
    }
    let profile = user.profile.clone();
    ctx.save_user(user).await?;
    if profile != before {
        effects.saved.push("profile updated".into());
    }
    let target = daily_kcal_target(&profile);
    Ok(
        json!({"saved": true, "profile": profile, "suggested_daily_kcal": target.map(|t| t.target_kcal)}),
    )
}

async fn log_weight(
    ctx: &mut TurnContext<'_>,
    inbound: &Inbound,
    arguments: &Value,
    effects: &mut Effects,
) -> Result<Value, AgentError> {
    let Some(kg) = arguments
        .get("kg")
        .and_then(Value::as_f64)
        .filter(|kg| (20.0..=400.0).contains(kg))
    else {
        return Ok(json!({"saved": false, "error": "kg must be between 20 and 400"}));
    };
    let now = ctx.now();
    let user_id = ctx.user().id;
    let id = Uuid::new_v5(&LLM_NAMESPACE, format!("{}:weight", inbound.id).as_bytes());
    ctx.write(vec![Write::InsertWeight(WeightLog {
        id,
        user_id,
        kg,
        logged_at: now,
    })])
    .await?;
    let mut user = ctx.user().clone();
    user.profile.weight_kg = Some(kg);
    ctx.save_user(user).await?;
    effects.saved.push(format!("weight {kg:.1} kg"));
    Ok(json!({"saved": true, "kg": kg}))
}

/// A correction of a logged food, through the same code as the rule agent's.
async fn correct_entry(
    ctx: &mut TurnContext<'_>,
    table: &FoodTable,
    arguments: &Value,
    effects: &mut Effects,
) -> Result<Value, AgentError> {
    let food = arguments
        .get("food")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned();
    if food.is_empty() {
        return Ok(json!({"updated": false, "error": "food is required"}));
    }
    let remove = arguments
        .get("remove")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let correction = match arguments.get("grams").and_then(Value::as_f64) {
        _ if remove => Correction::Remove { food },
        Some(grams) => Correction::Grams { food, grams },
        None => {
            return Ok(
                json!({"updated": false, "error": "give grams, or remove: true when the food was not there"}),
            )
        }
    };
    Ok(match correct_recent_entry(ctx, table, &correction).await? {
        Corrected::Updated {
            after,
            change,
            calibrated_agents,
            ..
        } => {
            let user = ctx.user().clone();
            let day = ctx
                .store()
                .food_entries(user.id, after.local_date, after.local_date)
                .await?;
            let day_total = Nutrients::sum(day.iter().map(|e| &e.total));
            effects
                .saved
                .push(format!("corrected \"{}\"", after.description));
            json!({
                "updated": true,
                "entry": after.description,
                "before": item_json(&change.before),
                "after": change.after.as_ref().map(item_json),
                "removed": change.after.is_none(),
                "meal_total_kcal": after.total.kcal.round(),
                "day_total": {"kcal": day_total.kcal.round(), "protein_g": round1(day_total.protein_g), "carbs_g": round1(day_total.carbs_g), "fat_g": round1(day_total.fat_g)},
                "daily_goal_kcal": user.goals.kcal,
                "photo_readers_calibrated": calibrated_agents,
                "note": "tell the person what changed and the new totals"
            })
        }
        Corrected::NoEntry => json!({"updated": false, "error": "nothing is logged recently"}),
        Corrected::NotFound { latest } => {
            json!({"updated": false, "error": "no recent entry has that food", "latest_entry": latest.description})
        }
        Corrected::OnlyItem { entry } => {
            json!({"updated": false, "error": "it is the only item of the entry: offer to delete the entry instead", "entry": entry.description})
        }
        Corrected::BadAmount(grams) => {
            json!({"updated": false, "error": format!("{grams} g is not a usable amount")})
        }
        Corrected::NotCounted { item } => {
            json!({"updated": false, "error": "that item was logged by weight: give grams", "item": item_json(&item)})
        }
    })
}

async fn delete_last_entry(
    ctx: &mut TurnContext<'_>,
    effects: &mut Effects,
) -> Result<Value, AgentError> {
    let user_id = ctx.user().id;
    let Some(entry) = ctx.store().last_food_entry(user_id).await? else {
        return Ok(json!({"deleted": false, "error": "no entry to delete"}));
    };
    ctx.write(vec![Write::DeleteFoodEntry {
        user_id,
        id: entry.id,
    }])
    .await?;
    effects
        .saved
        .push(format!("removed \"{}\"", entry.description));
    Ok(json!({"deleted": true, "description": entry.description, "kcal": entry.total.kcal.round()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_numbers_are_used_only_when_given_and_plausible() {
        let item = model_numbers(
            "grandma's stew",
            300.0,
            &json!({"kcal": 420, "protein_g": 30}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(item.source, NutritionSource::ModelEstimate);
        assert_eq!(item.nutrients.kcal, 420.0);
        assert!(model_numbers("stew", 300.0, &json!({})).unwrap().is_none());
        assert!(model_numbers("stew", 100.0, &json!({"kcal": 5000})).is_err());
    }

    #[test]
    fn impossible_model_numbers_are_refused_naming_every_rule() {
        let broken = model_numbers(
            "zorblax paste",
            100.0,
            &json!({"kcal": 900, "protein_g": 500, "carbs_g": 800, "fat_g": 300}),
        )
        .unwrap_err();
        let refusal = impossible_numbers(&[("zorblax paste".into(), broken)]);
        assert_eq!(refusal["saved"], false);
        assert_eq!(
            refusal["rules"],
            json!(["macros_within_grams", "energy_matches_macros"])
        );
        let error = refusal["error"].as_str().unwrap();
        assert!(
            error.starts_with(
                "these numbers cannot describe a real food: zorblax paste: macros_within_grams"
            ),
            "{error}"
        );
    }
}
