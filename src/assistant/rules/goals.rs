//! Daily goals and the profile they can be worked out from: "my goal is 1800 kcal", "set my
//! protein goal to 120 g", `/goal`, "I'm a 35 year old woman, 165 cm, 62 kg, moderately active,
//! and want to lose weight", "calculate my calorie goal".
//!
//! A goal outside a safe range is refused with the range. A goal the person set stays theirs:
//! a profile that would suggest another one only offers it. The energy target is Mifflin-St Jeor
//! with the activity factor, adjusted for the weight goal ([`daily_kcal_target`]).

use health_actors::conversation::{AgentError, TurnContext};
use health_actors::domain::{ActivityLevel, Sex, WeightGoal};
use health_actors::nutrition::daily_kcal_target;
use health_actors::understanding::{GoalNutrient, ProfileFacts};

use crate::assistant::format::{grams, join_and};
use crate::assistant::reply::reply;

pub(super) async fn set_goal(
    ctx: &mut TurnContext<'_>,
    nutrient: GoalNutrient,
    amount: f64,
) -> Result<(), AgentError> {
    let (range, name, unit) = match nutrient {
        GoalNutrient::Kcal => (800.0..=6000.0, "calorie", "kcal"),
        GoalNutrient::Protein => (10.0..=400.0, "protein", "g"),
        GoalNutrient::Carbs => (10.0..=900.0, "carbohydrate", "g"),
        GoalNutrient::Fat => (10.0..=400.0, "fat", "g"),
    };
    if !range.contains(&amount) {
        return reply(
            ctx,
            format!(
                "{amount:.0} {unit} a day doesn't look like a safe {name} goal; I can set one between {:.0} and {:.0} {unit}.",
                range.start(),
                range.end()
            ),
        )
        .await;
    }
    let mut user = ctx.user().clone();
    match nutrient {
        GoalNutrient::Kcal => user.goals.kcal = Some(amount),
        GoalNutrient::Protein => user.goals.protein_g = Some(amount),
        GoalNutrient::Carbs => user.goals.carbs_g = Some(amount),
        GoalNutrient::Fat => user.goals.fat_g = Some(amount),
    }
    ctx.save_user(user).await?;
    reply(
        ctx,
        format!("Saved: your daily {name} goal is {amount:.0} {unit}."),
    )
    .await
}

pub(super) async fn show_goals(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let goals = ctx.user().goals;
    let show = |value: Option<f64>, unit: &str| {
        value
            .map(|v| format!("{v:.0} {unit}"))
            .unwrap_or_else(|| "not set".into())
    };
    let text = format!(
        "Your daily goals:\n• energy: {}\n• protein: {}\n• carbohydrates: {}\n• fat: {}\nChange one with e.g. /goal 1800 kcal or /goal protein 120 g.",
        show(goals.kcal, "kcal"),
        show(goals.protein_g, "g"),
        show(goals.carbs_g, "g"),
        show(goals.fat_g, "g")
    );
    reply(ctx, text).await
}

/// Saves what the person said about themselves; with the whole profile known, works out and
/// saves their calorie goal too.
pub(super) async fn update_profile(
    ctx: &mut TurnContext<'_>,
    facts: ProfileFacts,
) -> Result<(), AgentError> {
    let mut user = ctx.user().clone();
    let profile = &mut user.profile;
    let mut heard = Vec::new();
    if let Some(age) = facts.age_years {
        profile.age_years = Some(age);
        heard.push(format!("{age} years old"));
    }
    if let Some(sex) = facts.sex {
        profile.sex = Some(sex);
        heard.push(
            match sex {
                Sex::Female => "female",
                Sex::Male => "male",
            }
            .to_owned(),
        );
    }
    if let Some(cm) = facts.height_cm {
        profile.height_cm = Some(cm);
        heard.push(format!("{} cm", grams(cm)));
    }
    if let Some(kg) = facts.weight_kg {
        profile.weight_kg = Some(kg);
        heard.push(format!("{} kg", grams(kg)));
    }
    if let Some(activity) = facts.activity {
        profile.activity = Some(activity);
        heard.push(
            match activity {
                ActivityLevel::Sedentary => "not very active",
                ActivityLevel::Light => "lightly active",
                ActivityLevel::Moderate => "moderately active",
                ActivityLevel::Active => "active",
                ActivityLevel::VeryActive => "very active",
            }
            .to_owned(),
        );
    }
    if let Some(goal) = facts.goal {
        profile.goal = Some(goal);
        heard.push(
            match goal {
                WeightGoal::Lose => "wanting to lose weight",
                WeightGoal::Maintain => "keeping your weight",
                WeightGoal::Gain => "wanting to gain weight",
            }
            .to_owned(),
        );
    }
    ctx.save_user(user).await?;
    let noted = format!("Noted: {}.", join_and(&heard));
    // A goal the person set stays theirs; the profile's goal is only offered.
    match (ctx.user().goals.kcal, daily_kcal_target(&ctx.user().profile)) {
        (Some(goal), Some(target)) if (goal - target.target_kcal).abs() >= 1.0 => {
            reply(
                ctx,
                format!(
                    "{noted} Your goal stays at {goal:.0} kcal a day. From your profile I'd suggest {:.0}: say \"calculate my calorie goal\" to use it.",
                    target.target_kcal
                ),
            )
            .await
        }
        (Some(_), _) => reply(ctx, noted).await,
        (None, _) => {
            let _ = ctx.reply(noted).await;
            goal_from_profile(ctx).await
        }
    }
}

pub(super) async fn goal_from_profile(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let profile = ctx.user().profile.clone();
    let Some(target) = daily_kcal_target(&profile) else {
        let mut missing = Vec::new();
        if profile.age_years.is_none() {
            missing.push("age");
        }
        if profile.sex.is_none() {
            missing.push("sex");
        }
        if profile.height_cm.is_none() {
            missing.push("height");
        }
        if profile.weight_kg.is_none() {
            missing.push("weight");
        }
        if profile.activity.is_none() {
            missing.push("activity level");
        }
        if profile.goal.is_none() {
            missing.push("whether you want to lose, keep or gain weight");
        }
        let missing: Vec<String> = missing.into_iter().map(String::from).collect();
        return reply(
            ctx,
            format!(
                "To work out a calorie goal I still need your {}: tell me like \"I'm a 35 year old woman, 165 cm, 62 kg, moderately active, and I want to lose weight\". Meanwhile you can set one directly: \"my goal is 1800 kcal\".",
                join_and(&missing)
            ),
        )
        .await;
    };
    let mut user = ctx.user().clone();
    user.goals.kcal = Some(target.target_kcal);
    ctx.save_user(user).await?;
    reply(
        ctx,
        format!(
            "Saved: {:.0} kcal a day. Your resting energy is about {:.0} kcal (Mifflin-St Jeor), {:.0} with your activity, adjusted for your goal.",
            target.target_kcal, target.bmr_kcal, target.maintenance_kcal
        ),
    )
    .await
}
