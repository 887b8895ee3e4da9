//! The offline agent: the assistant with no model behind it, used when no LLM key is configured.
//!
//! Deterministic rules ([`health_actors::nutrition::classify`]) decide what a message asks for;
//! the nutrition engine (built-in table, and USDA when a key is set) supplies every number. It
//! logs meals ("2 eggs and toast for breakfast", "yesterday at 8am: porridge"), answers totals
//! questions from the stored entries, sets goals, logs weight, undoes the last entry and explains
//! itself. It never invents a number: a food it does not know is named back to the person and
//! nothing is saved for it. Every write goes through the persistence actor and the reply that
//! says "saved" is sent only after the commit.

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use health_actors::conversation::{Agent, AgentError, TurnContext};
use health_actors::domain::MessageId;
use health_actors::domain::{
    ActivityLevel, FoodEntry, Goals, MealType, Nutrients, Sex, User, WeightGoal, WeightLog,
};
use health_actors::inbound::{Inbound, InboundContent};
use health_actors::memory::Embedder;
use health_actors::nutrition::{
    classify, daily_kcal_target, parse_meal, parse_profile, DayRef, GoalNutrient, Intent, LeftOut,
    MealEstimate, Metric, Period, ProfileFacts, QuestionKind,
};
use health_actors::ports::Write;
use uuid::Uuid;

use crate::nutrition::engine::NutritionEngine;

mod memory_rule;

pub const HELP: &str = "I keep track of what you eat, with honest numbers.\n\
\n\
• Tell me what you ate: \"2 eggs and a slice of toast\", \"150 g chicken breast with rice\", \"yesterday at 8pm: a bowl of pasta\".\n\
• Ask: \"how much protein today?\", \"what did I eat yesterday?\", \"am I on track this week?\"\n\
• Goals: \"my goal is 1800 kcal\", \"set my protein goal to 120 g\", or tell me about yourself and I'll work one out: \"I'm a 35 year old woman, 165 cm, 62 kg, moderately active, and want to lose weight\".\n\
• Weight: \"I weigh 72.5 kg\".\n\
• Memory: \"remember that I'm vegetarian\", \"what do you remember?\", \"forget that I'm vegetarian\".\n\
• Made a mistake? \"undo\" removes the last entry; \"the rice was 100 g\", \"it was 3 eggs\" or \"no rice\" corrects it.\n\
\n\
Commands: /today, /week, /goal, /weight, /undo, /export, /memory, /settings, /forget_me, /help.";

const WELCOME: &str = "Hi! I'm your health coach. Tell me what you eat and I'll work out the calories and macros, keep your daily totals and track your goals.";

/// The first steps, on /start: the time zone makes "today" right, a goal makes totals useful.
const START_TIPS: &str = "Two things help from the start: share your location once (or send /settings timezone Europe/Paris) so that \"today\" is your day, and set a daily goal with /goal 1800 kcal.";

/// A namespace for ids derived from the message that created a row, so that handling the same
/// message again (a redelivery, a replay after a crash) writes the same ids and the store ignores
/// the duplicate.
const ENTRY_NAMESPACE: Uuid = Uuid::from_u128(0x6d8f_1c3e_52a4_4b7e_9a0d_1f2e_3c4b_5a69);

/// The id of the food entry (or weight log) that the message `inbound_id` creates, so that an
/// edge can read back what a message saved (the HTTP API's chat answer).
pub fn entry_id_for(inbound_id: Uuid) -> Uuid {
    Uuid::new_v5(&ENTRY_NAMESPACE, inbound_id.as_bytes())
}

pub struct OfflineAgent {
    engine: Arc<NutritionEngine>,
    /// Embeds the facts of the memory rule; `None` when memory is off (`ENABLE_MEM0=false`).
    embedder: Option<Arc<dyn Embedder>>,
}

impl OfflineAgent {
    pub fn new(engine: Arc<NutritionEngine>) -> Self {
        Self {
            engine,
            embedder: None,
        }
    }

    /// Lets "remember that ..." keep facts, embedded by `embedder` (the LLM agent's, so both
    /// agents keep and find facts in one space).
    pub fn with_memory(mut self, embedder: Option<Arc<dyn Embedder>>) -> Self {
        self.embedder = embedder;
        self
    }
}

#[async_trait]
impl Agent for OfflineAgent {
    async fn handle(&self, ctx: &mut TurnContext<'_>, inbound: &Inbound) -> Result<(), AgentError> {
        match &inbound.content {
            InboundContent::Text(text) => {
                if let Some(request) = memory_rule::memory_request(text) {
                    return self.memory(ctx, inbound, request).await;
                }
                if let Some(done) =
                    super::entries::offline_correction(ctx, self.engine.table(), text).await
                {
                    return done;
                }
                if let Some(facts) = parse_profile(text) {
                    return update_profile(ctx, facts).await;
                }
                let intent = classify(text, self.engine.table());
                self.act(ctx, inbound, intent).await
            }
            InboundContent::Command { name, args } => self.command(ctx, inbound, name, args).await,
            InboundContent::Photo { caption, .. } => {
                let mut text = String::from(
                    "I can't look at photos yet: that needs a vision model (set OPENAI_API_KEY or ANTHROPIC_API_KEY). \
                     Tell me in words what was on the plate, with amounts if you know them, and I'll log it.",
                );
                if let Some(caption) = caption.as_deref().filter(|c| !c.trim().is_empty()) {
                    let _ = write!(text, "\n\nYour caption was: \"{}\". Send it as a message if it lists everything.", caption.trim());
                }
                reply(ctx, text).await
            }
            InboundContent::Location {
                latitude,
                longitude,
            } => zone_from_location(ctx, *latitude, *longitude).await,
            InboundContent::Button { data, message } => button(ctx, data, *message).await,
        }
    }
}

impl OfflineAgent {
    async fn act(
        &self,
        ctx: &mut TurnContext<'_>,
        inbound: &Inbound,
        intent: Intent,
    ) -> Result<(), AgentError> {
        match intent {
            Intent::LogMeal {
                text,
                meal_type,
                day,
                time,
            } => {
                self.log_meal(ctx, inbound, &text, meal_type, day, time)
                    .await
            }
            Intent::Question { kind, period } => answer_question(ctx, kind, period).await,
            Intent::FoodInfo { text } => self.food_info(ctx, &text).await,
            Intent::SetGoal { nutrient, amount } => set_goal(ctx, nutrient, amount).await,
            Intent::GoalFromProfile => goal_from_profile(ctx).await,
            Intent::LogWeight { kg, .. } => log_weight(ctx, inbound, kg).await,
            Intent::Undo => undo(ctx).await,
            Intent::Help => reply(ctx, HELP).await,
            Intent::Greeting => reply(ctx, format!("{WELCOME}\n\n{HELP}")).await,
            Intent::Unknown => match inbound.content {
                // "a plate of zorblax": shaped like food, so say which food is unknown (or let
                // USDA find it) instead of answering with the help text.
                InboundContent::Text(ref text) if looks_like_food(text) => {
                    self.log_meal(ctx, inbound, text, None, DayRef::Today, None)
                        .await
                }
                _ => reply(ctx, format!("Sorry, I didn't understand that.\n\n{HELP}")).await,
            },
        }
    }

    async fn command(
        &self,
        ctx: &mut TurnContext<'_>,
        inbound: &Inbound,
        name: &str,
        args: &str,
    ) -> Result<(), AgentError> {
        let args = args.trim();
        match name.to_ascii_lowercase().as_str() {
            "start" => reply(ctx, format!("{WELCOME}\n\n{HELP}\n\n{START_TIPS}")).await,
            "help" => reply(ctx, HELP).await,
            "today" => {
                answer_question(
                    ctx,
                    QuestionKind::Total(Metric::All),
                    Period::Day(DayRef::Today),
                )
                .await
            }
            "week" => {
                week_chart(ctx).await?;
                answer_question(ctx, QuestionKind::OnTrack, Period::ThisWeek).await
            }
            "export" => export(ctx).await,
            "memory" => show_memories(ctx).await,
            "forget_me" => ask_forget_me(ctx).await,
            "undo" => undo(ctx).await,
            "goal" if args.is_empty() => show_goals(ctx).await,
            "goal" => {
                let intent = classify(&format!("my goal is {args}"), self.engine.table());
                match intent {
                    Intent::SetGoal { .. } | Intent::GoalFromProfile => self.act(ctx, inbound, intent).await,
                    _ => reply(ctx, "Tell me the goal as a number, e.g. /goal 1800 kcal or /goal protein 120 g.").await,
                }
            }
            "weight" if args.is_empty() => show_weights(ctx).await,
            "weight" => match classify(&format!("I weigh {args}"), self.engine.table()) {
                Intent::LogWeight { kg, .. } => log_weight(ctx, inbound, kg).await,
                _ => reply(
                    ctx,
                    "Tell me your weight with its unit, e.g. /weight 72.5 kg or /weight 160 lb.",
                )
                .await,
            },
            "settings" => settings(ctx, args).await,
            other => {
                reply(
                    ctx,
                    format!("I don't know the command /{other}. Send /help to see what I can do."),
                )
                .await
            }
        }
    }

    async fn log_meal(
        &self,
        ctx: &mut TurnContext<'_>,
        inbound: &Inbound,
        text: &str,
        meal_type: Option<MealType>,
        day: DayRef,
        time: Option<NaiveTime>,
    ) -> Result<(), AgentError> {
        let estimate = self.engine.estimate(text).await;
        if !estimate.has_items() {
            return reply(ctx, not_counted(&estimate, true)).await;
        }
        let user = ctx.user().clone();
        let now = ctx.now();
        let today = user.local_date(now);
        let local_date = today - Duration::days(i64::from(day.days_ago()));
        let meal_type = meal_type.or_else(|| time.map(meal_type_at)).or_else(|| {
            (day == DayRef::Today).then(|| meal_type_at(now.with_timezone(&user.tz()).time()))
        });
        let eaten_at = eaten_at(&user, now, local_date, time, meal_type);
        let entry_id = Uuid::new_v5(&ENTRY_NAMESPACE, inbound.id.as_bytes());
        let entry = FoodEntry {
            id: entry_id,
            user_id: user.id,
            eaten_at,
            local_date,
            meal_type,
            // What was saved, in the person's words, without the "yesterday at 8pm:" that the
            // entry's date and meal already say, and without what was left out.
            description: join_and(
                &estimate
                    .items
                    .iter()
                    .map(|item| item.input.clone())
                    .collect::<Vec<_>>(),
            ),
            items: estimate.items.clone(),
            total: estimate.total,
            photo_path: None,
            created_at: now,
        };
        ctx.write(vec![Write::InsertFoodEntry(entry)]).await?;

        let day_total = day_total(ctx, &user, local_date).await?;
        let mut text = String::new();
        let when = day_label(local_date, today);
        let _ = match meal_type {
            Some(meal) => writeln!(text, "Saved {} ({when}):", meal.as_str()),
            None => writeln!(text, "Saved ({when}):"),
        };
        for item in &estimate.items {
            let _ = writeln!(
                text,
                "• {} → {} ({} g): {} [{}]",
                item.input,
                short_name(&item.name),
                grams(item.grams),
                macros_line(&item.nutrients),
                item.source.label()
            );
        }
        if estimate.items.len() > 1 {
            let _ = writeln!(text, "Meal: {}", macros_line(&estimate.total));
        }
        for note in &estimate.notes {
            let _ = writeln!(text, "Note: {note}");
        }
        if !estimate.unknown.is_empty() || !estimate.left_out.is_empty() {
            let _ = writeln!(text, "{}", not_counted(&estimate, false));
        }
        let _ = write!(text, "{}", goal_line(&user.goals, &day_total, &when));
        super::entries::reply_with_entry_buttons(ctx, text, entry_id).await
    }

    async fn food_info(&self, ctx: &mut TurnContext<'_>, text: &str) -> Result<(), AgentError> {
        let estimate = self.engine.estimate(text).await;
        if !estimate.has_items() {
            return reply(ctx, not_counted(&estimate, false)).await;
        }
        let mut out = String::new();
        for item in &estimate.items {
            let _ = writeln!(
                out,
                "{} ({} g of {}): {} [{}]",
                item.input,
                grams(item.grams),
                short_name(&item.name),
                macros_line(&item.nutrients),
                item.source.label()
            );
        }
        if !estimate.unknown.is_empty() || !estimate.left_out.is_empty() {
            let _ = writeln!(out, "{}", not_counted(&estimate, false));
        }
        out.push_str("Nothing was logged. Tell me \"I had ...\" to log it.");
        reply(ctx, out).await
    }
}

/// Every part of the text has an amount ("a plate of X", "200 g of Y"): it reads as food even
/// when no food in it is known.
fn looks_like_food(text: &str) -> bool {
    let items = parse_meal(text, &|_| false);
    !items.is_empty()
        && items
            .iter()
            .all(|item| !item.name.is_empty() && (item.quantity.is_some() || item.unit.is_some()))
}

async fn reply(ctx: &mut TurnContext<'_>, text: impl Into<String>) -> Result<(), AgentError> {
    // A delivery failure is logged and counted by the context; the turn itself succeeded.
    let _ = ctx.reply(text).await;
    Ok(())
}

/// What was not counted and why: "'1000 eggs' comes to 50 kg, which looks like a typo, so I
/// left it out." for each item whose amount cannot be right, then "I don't know 'X' yet: ..."
/// for the unknown ones.
fn not_counted(estimate: &MealEstimate, nothing_saved: bool) -> String {
    let mut sentences: Vec<String> = estimate.left_out.iter().map(LeftOut::sentence).collect();
    let names: Vec<String> = estimate
        .unknown
        .iter()
        .map(|name| format!("'{}'", name.trim()))
        .collect();
    match names.len() {
        0 if sentences.is_empty() => sentences.push("I couldn't find a food in that.".to_owned()),
        0 => {}
        1 => sentences.push(format!(
            "I don't know {} yet: can you give grams or a similar food?",
            names[0]
        )),
        _ => sentences.push(format!(
            "I don't know {} yet: can you give grams or similar foods?",
            join_and(&names)
        )),
    }
    if nothing_saved {
        sentences.push("Nothing was saved.".to_owned());
    } else if !names.is_empty() {
        sentences.push("Nothing was counted for it.".to_owned());
    }
    sentences.join(" ")
}

fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The food's USDA description without its qualifiers: "Egg, whole, raw, fresh" → "egg, whole".
fn short_name(name: &str) -> String {
    let parts: Vec<&str> = name.split(',').map(str::trim).take(2).collect();
    parts.join(", ").to_lowercase()
}

pub(crate) fn grams(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn macro_amount(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

pub(crate) fn macros_line(n: &Nutrients) -> String {
    format!(
        "{:.0} kcal · P {} g · C {} g · F {} g",
        n.kcal,
        macro_amount(n.protein_g),
        macro_amount(n.carbs_g),
        macro_amount(n.fat_g)
    )
}

pub(crate) fn day_label(date: NaiveDate, today: NaiveDate) -> String {
    match (today - date).num_days() {
        0 => "today".into(),
        1 => "yesterday".into(),
        _ => date.format("%A %-d %B").to_string(),
    }
}

/// The meal a local time of day most likely is.
pub fn meal_type_at(time: NaiveTime) -> MealType {
    match time.hour() {
        5..=10 => MealType::Breakfast,
        11..=14 => MealType::Lunch,
        17..=21 => MealType::Dinner,
        _ => MealType::Snack,
    }
}

/// When the meal was eaten: the stated time on that local day; else now (today) or a typical
/// time for the meal (another day).
fn eaten_at(
    user: &User,
    now: DateTime<Utc>,
    date: NaiveDate,
    time: Option<NaiveTime>,
    meal: Option<MealType>,
) -> DateTime<Utc> {
    let today = user.local_date(now);
    let time = match time {
        Some(time) => time,
        None if date == today => return now,
        None => match meal {
            Some(MealType::Breakfast) => NaiveTime::from_hms_opt(8, 0, 0),
            Some(MealType::Lunch) => NaiveTime::from_hms_opt(12, 30, 0),
            Some(MealType::Dinner) => NaiveTime::from_hms_opt(19, 0, 0),
            Some(MealType::Snack) | None => NaiveTime::from_hms_opt(12, 0, 0),
        }
        .unwrap_or_default(),
    };
    user.tz()
        .from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or(now)
}

pub(crate) async fn day_total(
    ctx: &TurnContext<'_>,
    user: &User,
    date: NaiveDate,
) -> Result<Nutrients, AgentError> {
    let entries = ctx.store().food_entries(user.id, date, date).await?;
    Ok(Nutrients::sum(entries.iter().map(|entry| &entry.total)))
}

/// "Today: 1,240 of 1,800 kcal (560 left)." or the total with a hint to set a goal.
pub(crate) fn goal_line(goals: &Goals, total: &Nutrients, when: &str) -> String {
    let when_title = capitalise(when);
    let Some(goal) = goals.kcal else {
        return format!(
            "{when_title}: {}. No daily goal yet: tell me one, e.g. \"my goal is 1800 kcal\".",
            macros_line(total)
        );
    };
    let (difference, side) = if total.kcal <= goal {
        (goal - total.kcal, "left")
    } else {
        (total.kcal - goal, "over")
    };
    format!(
        "{when_title}: {:.0} of {goal:.0} kcal ({difference:.0} {side}) · P {} g · C {} g · F {} g.",
        total.kcal,
        macro_amount(total.protein_g),
        macro_amount(total.carbs_g),
        macro_amount(total.fat_g)
    )
}

/// The local dates a period covers, up to today.
fn period_dates(period: Period, today: NaiveDate) -> (NaiveDate, NaiveDate, &'static str) {
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    match period {
        Period::Day(day) => {
            let date = today - Duration::days(i64::from(day.days_ago()));
            (date, date, "day")
        }
        Period::ThisWeek => (monday, today, "this week"),
        Period::LastWeek => (
            monday - Duration::days(7),
            monday - Duration::days(1),
            "last week",
        ),
    }
}

async fn answer_question(
    ctx: &mut TurnContext<'_>,
    kind: QuestionKind,
    period: Period,
) -> Result<(), AgentError> {
    let user = ctx.user().clone();
    let today = user.local_date(ctx.now());
    let (from, to, span) = period_dates(period, today);
    let entries = ctx.store().food_entries(user.id, from, to).await?;
    let total = Nutrients::sum(entries.iter().map(|entry| &entry.total));
    let label = if span == "day" {
        day_label(from, today)
    } else {
        span.to_owned()
    };
    let one_day = from == to;
    let days_logged = logged_days(&entries).len();
    let text = match kind {
        _ if entries.is_empty() => format!("Nothing is logged for {label} yet."),
        QuestionKind::Total(Metric::All) if one_day => {
            let text = entry_lines(&entries, false);
            format!("{text}{}", goal_line(&user.goals, &total, &label))
        }
        QuestionKind::Total(Metric::All) => format!(
            "{}{}: {}. {}",
            entry_lines(&entries, true),
            capitalise(&label),
            macros_line(&total),
            daily_average(Metric::Kcal, total.kcal, days_logged, user.goals.kcal)
        ),
        QuestionKind::Total(metric) => {
            let amount = metric_amount(metric, metric_of(&total, metric));
            let goal = goal_for_metric(&user.goals, metric);
            let entries_said = format!(
                "from {} logged {}",
                entries.len(),
                plural(entries.len(), "entry", "entries")
            );
            if one_day {
                let goal = goal
                    .map(|goal| format!(" (goal {goal:.0})"))
                    .unwrap_or_default();
                format!(
                    "{} you had {amount}{goal}, {entries_said}.",
                    capitalise(&label)
                )
            } else {
                format!(
                    "{} you had {amount}, {entries_said}. {}",
                    capitalise(&label),
                    daily_average(metric, metric_of(&total, metric), days_logged, goal)
                )
            }
        }
        QuestionKind::Diary => {
            let lines = entry_lines(&entries, from != to);
            format!(
                "{}:\n{lines}Total: {}.",
                capitalise(&label),
                macros_line(&total)
            )
        }
        QuestionKind::OnTrack if one_day => goal_line(&user.goals, &total, &label),
        QuestionKind::OnTrack => on_track(&user.goals, &entries, from, to, &label),
    };
    reply(ctx, text).await
}

/// One line per entry: "• Mon lunch: 2 eggs — 143 kcal" (the weekday only when `with_day`).
fn entry_lines(entries: &[FoodEntry], with_day: bool) -> String {
    let mut text = String::new();
    for entry in entries {
        let day = if with_day {
            format!("{} ", entry.local_date.format("%a"))
        } else {
            String::new()
        };
        let meal = entry
            .meal_type
            .map(|m| format!("{}: ", m.as_str()))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "• {day}{meal}{} — {:.0} kcal",
            entry.description, entry.total.kcal
        );
    }
    text
}

fn on_track(
    goals: &Goals,
    entries: &[FoodEntry],
    from: NaiveDate,
    to: NaiveDate,
    label: &str,
) -> String {
    let days_logged = logged_days(entries);
    let total = Nutrients::sum(entries.iter().map(|entry| &entry.total));
    let mut text = String::new();
    let mut date = from;
    while date <= to {
        let kcal: f64 = entries
            .iter()
            .filter(|e| e.local_date == date)
            .map(|e| e.total.kcal)
            .sum();
        let bar = if days_logged.contains(&date) {
            format!("{kcal:.0} kcal")
        } else {
            "nothing logged".into()
        };
        let _ = writeln!(text, "{}: {bar}", date.format("%a %-d"));
        date += Duration::days(1);
    }
    let average = total.kcal / days_logged.len().max(1) as f64;
    match goals.kcal {
        Some(goal) => {
            let verdict = if average <= goal * 1.05 && average >= goal * 0.8 {
                "you're on track"
            } else if average > goal * 1.05 {
                "you're above your goal"
            } else {
                "you're well under your goal (make sure you log everything)"
            };
            let _ = write!(
                text,
                "Average {average:.0} kcal a day over {} logged {} against a goal of {goal:.0}: {verdict}.",
                days_logged.len(),
                plural(days_logged.len(), "day", "days")
            );
        }
        None => {
            let _ = write!(
                text,
                "Average {average:.0} kcal a day over {} logged {} {label}. Set a goal (\"my goal is 1800 kcal\") and I'll tell you how you're doing.",
                days_logged.len(),
                plural(days_logged.len(), "day", "days")
            );
        }
    }
    text
}

/// The local days that have at least one entry.
fn logged_days(entries: &[FoodEntry]) -> std::collections::BTreeSet<NaiveDate> {
    entries.iter().map(|entry| entry.local_date).collect()
}

/// The amount of `metric` in `total`.
fn metric_of(total: &Nutrients, metric: Metric) -> f64 {
    match metric {
        Metric::Kcal | Metric::All => total.kcal,
        Metric::Protein => total.protein_g,
        Metric::Carbs => total.carbs_g,
        Metric::Fat => total.fat_g,
        Metric::Fiber => total.fiber_g,
    }
}

/// "1240 kcal", "80 g of protein".
fn metric_amount(metric: Metric, amount: f64) -> String {
    match metric {
        Metric::Kcal | Metric::All => format!("{amount:.0} kcal"),
        Metric::Protein => format!("{} g of protein", macro_amount(amount)),
        Metric::Carbs => format!("{} g of carbohydrates", macro_amount(amount)),
        Metric::Fat => format!("{} g of fat", macro_amount(amount)),
        Metric::Fiber => format!("{} g of fiber", macro_amount(amount)),
    }
}

/// For a span of several days, where a daily goal means nothing against the span's total:
/// "That is 1240 kcal a day on average over 3 logged days (goal 1800 a day)."
fn daily_average(metric: Metric, amount: f64, days_logged: usize, goal: Option<f64>) -> String {
    let days = days_logged.max(1);
    let goal = goal
        .map(|goal| format!(" (goal {goal:.0} a day)"))
        .unwrap_or_default();
    format!(
        "That is {} a day on average over {days} logged {}{goal}.",
        metric_amount(metric, amount / days as f64),
        plural(days, "day", "days")
    )
}

fn goal_for_metric(goals: &Goals, metric: Metric) -> Option<f64> {
    match metric {
        Metric::Kcal => goals.kcal,
        Metric::Protein => goals.protein_g,
        Metric::Carbs => goals.carbs_g,
        Metric::Fat => goals.fat_g,
        Metric::Fiber | Metric::All => None,
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn plural(count: usize, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 {
        one
    } else {
        many
    }
}

async fn set_goal(
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

async fn show_goals(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
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
async fn update_profile(ctx: &mut TurnContext<'_>, facts: ProfileFacts) -> Result<(), AgentError> {
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

async fn goal_from_profile(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
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

async fn log_weight(
    ctx: &mut TurnContext<'_>,
    inbound: &Inbound,
    kg: f64,
) -> Result<(), AgentError> {
    if !(20.0..=400.0).contains(&kg) {
        return reply(ctx, format!("{kg:.1} kg doesn't look right; tell me your weight with its unit, e.g. 72.5 kg or 160 lb.")).await;
    }
    let now = ctx.now();
    let user_id = ctx.user().id;
    let previous = ctx
        .store()
        .weights(user_id, now - Duration::days(3650), now)
        .await?;
    let log = WeightLog {
        id: Uuid::new_v5(&ENTRY_NAMESPACE, inbound.id.as_bytes()),
        user_id,
        kg,
        logged_at: now,
    };
    ctx.write(vec![Write::InsertWeight(log)]).await?;
    let mut user = ctx.user().clone();
    user.profile.weight_kg = Some(kg);
    ctx.save_user(user).await?;
    let change = previous
        .last()
        .map(|last| {
            let delta = kg - last.kg;
            if delta.abs() < 0.05 {
                format!(" Same as on {}.", last.logged_at.format("%-d %B"))
            } else {
                format!(
                    " That's {}{:.1} kg since {}.",
                    if delta > 0.0 { "+" } else { "−" },
                    delta.abs(),
                    last.logged_at.format("%-d %B")
                )
            }
        })
        .unwrap_or_default();
    reply(ctx, format!("Saved your weight: {kg:.1} kg.{change}")).await
}

async fn show_weights(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let now = ctx.now();
    let weights = ctx
        .store()
        .weights(ctx.user().id, now - Duration::days(90), now)
        .await?;
    if weights.is_empty() {
        return reply(
            ctx,
            "No weight logged in the last 90 days. Send e.g. /weight 72.5 kg.",
        )
        .await;
    }
    let mut text = String::from("Your weight, last 90 days:\n");
    for log in weights.iter().rev().take(10).rev() {
        let _ = writeln!(
            text,
            "• {}: {:.1} kg",
            log.logged_at.format("%-d %b"),
            log.kg
        );
    }
    reply(ctx, text.trim_end().to_owned()).await
}

async fn undo(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let user = ctx.user().clone();
    let Some(entry) = ctx.store().last_food_entry(user.id).await? else {
        return reply(ctx, "There's nothing to undo: no food is logged.").await;
    };
    ctx.write(vec![Write::DeleteFoodEntry {
        user_id: user.id,
        id: entry.id,
    }])
    .await?;
    let today = user.local_date(ctx.now());
    let total = day_total(ctx, &user, entry.local_date).await?;
    let when = day_label(entry.local_date, today);
    reply(
        ctx,
        format!(
            "Removed \"{}\" ({:.0} kcal, {when}).\n{}",
            entry.description,
            entry.total.kcal,
            goal_line(&user.goals, &total, &when)
        ),
    )
    .await
}

async fn settings(ctx: &mut TurnContext<'_>, args: &str) -> Result<(), AgentError> {
    let mut words = args.split_whitespace();
    match (words.next().map(str::to_ascii_lowercase).as_deref(), words.next()) {
        (Some("timezone" | "tz" | "time_zone"), Some(zone)) => match zone.parse::<chrono_tz::Tz>() {
            Ok(tz) => {
                let mut user = ctx.user().clone();
                user.timezone = tz.name().to_owned();
                ctx.save_user(user).await?;
                let local = ctx.now().with_timezone(&tz);
                reply(ctx, format!("Saved: your time zone is {} (it's {} there now).", tz.name(), local.format("%H:%M on %A"))).await
            }
            Err(_) => reply(ctx, format!("I don't know the time zone '{zone}'. Use a name like Europe/Paris or America/New_York.")).await,
        },
        _ => {
            let user = ctx.user();
            let text = format!(
                "Your settings:\n• time zone: {}\n• units: {}\nChange the time zone with /settings timezone Europe/Paris.",
                user.timezone,
                match user.profile.units {
                    health_actors::domain::Units::Metric => "metric",
                    health_actors::domain::Units::Imperial => "imperial",
                }
            );
            reply(ctx, text).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Location, /week chart, /export, /memory, /forget_me and the buttons they put under messages.
// ---------------------------------------------------------------------------------------------

/// Button data of the `/forget_me` confirmation. An edge that keeps files about the person
/// (Telegram's photos) deletes them when it sees [`FORGET_ME_CONFIRM`] answered.
pub const FORGET_ME_CONFIRM: &str = "forget_me:yes";
pub const FORGET_ME_CANCEL: &str = "forget_me:no";
/// Button data that forgets one memory: this prefix and the memory's id.
const FORGET_MEMORY_PREFIX: &str = "memory:forget:";
/// What the person reads once everything about them is gone.
pub const FORGOTTEN: &str = "Done: I deleted everything I had about you (food log, weights, goals, memories, reminders, photos and our conversation). If you write again, I'll start from scratch.";

/// A shared location sets the time zone (looked up offline).
async fn zone_from_location(
    ctx: &mut TurnContext<'_>,
    latitude: f64,
    longitude: f64,
) -> Result<(), AgentError> {
    let Some(zone) = crate::geo::timezone_at_async(latitude, longitude).await else {
        return reply(
            ctx,
            "Thanks! I couldn't find a time zone for that spot. Send /settings timezone followed by \
             your zone, e.g. /settings timezone Europe/Paris.",
        )
        .await;
    };
    let mut user = ctx.user().clone();
    user.timezone = zone.name().to_owned();
    ctx.save_user(user).await?;
    let local = ctx.now().with_timezone(&zone);
    reply(
        ctx,
        format!(
            "Thanks! Your time zone is now {} (it's {} there); \"today\" follows it from now on.",
            zone.name(),
            local.format("%H:%M on %A")
        ),
    )
    .await
}

/// The last seven local days as a PNG chart of kcal against the goal. A failure to draw or send
/// is logged; the text summary that follows still answers the person.
async fn week_chart(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let user = ctx.user().clone();
    let today = user.local_date(ctx.now());
    let from = today - Duration::days(6);
    let entries = ctx.store().food_entries(user.id, from, today).await?;
    let days: Vec<crate::reports::DayKcal> = (0..7)
        .map(|offset| {
            let date = from + Duration::days(offset);
            let mut on_day = entries.iter().filter(|e| e.local_date == date).peekable();
            let kcal = on_day
                .peek()
                .is_some()
                .then(|| on_day.map(|e| e.total.kcal).sum());
            crate::reports::DayKcal { date, kcal }
        })
        .collect();
    let png = match crate::reports::week_chart_png(&days, user.goals.kcal) {
        Ok(png) => png,
        Err(error) => {
            tracing::error!(%error, "the week chart could not be drawn");
            return Ok(());
        }
    };
    let caption = "Calories per day, last 7 days";
    match ctx
        .outbox()
        .send_photo(ctx.chat(), &png, Some(caption))
        .await
    {
        Ok(_) => ctx.record_assistant(format!("[chart] {caption}")),
        Err(error) => tracing::warn!(%error, "the week chart could not be sent"),
    }
    Ok(())
}

/// Every food entry as a CSV document.
async fn export(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let user = ctx.user().clone();
    let today = user.local_date(ctx.now());
    let first = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    let entries = ctx
        .store()
        .food_entries(user.id, first, today + Duration::days(1))
        .await?;
    if entries.is_empty() {
        return reply(ctx, "There's nothing to export yet: no food is logged.").await;
    }
    let csv = crate::reports::entries_csv(&entries, user.tz());
    let name = format!("food-log-{today}.csv");
    let caption = format!(
        "All {} of your food {}, as a spreadsheet (CSV).",
        entries.len(),
        plural(entries.len(), "entry", "entries")
    );
    match ctx
        .outbox()
        .send_document(ctx.chat(), &name, csv.as_bytes(), Some(&caption))
        .await
    {
        Ok(_) => {
            ctx.record_assistant(format!("[file {name}] {caption}"));
            Ok(())
        }
        Err(error) => {
            tracing::warn!(%error, "the export could not be sent");
            reply(
                ctx,
                "I couldn't send the file just now. Please try /export again in a minute.",
            )
            .await
        }
    }
}

/// The remembered facts, each with a button that forgets it.
async fn show_memories(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let memories = ctx.store().memories(ctx.user().id).await?;
    if memories.is_empty() {
        return reply(
            ctx,
            "I don't remember anything about you yet. Tell me things like \"remember that I'm \
             vegetarian\" or \"remember: I'm allergic to peanuts\" and I'll keep them in mind.",
        )
        .await;
    }
    let mut text = String::from("What I remember about you:\n");
    let mut buttons = Vec::new();
    for (index, memory) in memories.iter().enumerate() {
        let _ = writeln!(text, "{}. {}", index + 1, memory.content);
        buttons.push(vec![health_actors::ports::Button {
            label: format!("Forget {}", index + 1),
            data: format!("{FORGET_MEMORY_PREFIX}{}", memory.id),
        }]);
    }
    text.push_str("Press a button to make me forget that one.");
    let _ = ctx.reply_with_buttons(text, &buttons).await;
    Ok(())
}

async fn ask_forget_me(ctx: &mut TurnContext<'_>) -> Result<(), AgentError> {
    let buttons = [vec![
        health_actors::ports::Button {
            label: "Yes, delete everything".into(),
            data: FORGET_ME_CONFIRM.into(),
        },
        health_actors::ports::Button {
            label: "No, keep it".into(),
            data: FORGET_ME_CANCEL.into(),
        },
    ]];
    let _ = ctx
        .reply_with_buttons(
            "This deletes everything I have about you: food log, weights, goals, memories, reminders, \
             photos and our conversation. It can't be undone. Are you sure?",
            &buttons,
        )
        .await;
    Ok(())
}

/// A press on one of our buttons; `message` is the message it was under.
async fn button(
    ctx: &mut TurnContext<'_>,
    data: &str,
    message: MessageId,
) -> Result<(), AgentError> {
    if let Some(done) = super::entries::entry_button(ctx, data, message).await {
        return done;
    }
    if data == FORGET_ME_CONFIRM {
        let user_id = ctx.user().id;
        ctx.store().delete_user(user_id).await?;
        tracing::info!(user_id = %user_id, "deleted everything about a person at their request");
        // The history of this turn must not bring the person back.
        ctx.forget_this_turn();
        let _ = ctx.reply_in_place(message, FORGOTTEN).await;
        return Ok(());
    }
    if data == FORGET_ME_CANCEL {
        let _ = ctx
            .reply_in_place(message, "Okay, I kept everything; nothing was deleted.")
            .await;
        return Ok(());
    }
    if let Some(id) = data
        .strip_prefix(FORGET_MEMORY_PREFIX)
        .and_then(|id| Uuid::parse_str(id).ok())
    {
        let user_id = ctx.user().id;
        let memory = ctx
            .store()
            .memories(user_id)
            .await?
            .into_iter()
            .find(|memory| memory.id == id);
        return match memory {
            Some(memory) => {
                ctx.write(vec![Write::DeleteMemory { user_id, id }]).await?;
                reply(ctx, format!("Forgotten: \"{}\".", memory.content)).await
            }
            None => reply(ctx, "I had already forgotten that one.").await,
        };
    }
    reply(
        ctx,
        "That button belongs to an older message; there is nothing to do with it now.",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meal_types_follow_the_time_of_day() {
        let at = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
        assert_eq!(meal_type_at(at(8)), MealType::Breakfast);
        assert_eq!(meal_type_at(at(13)), MealType::Lunch);
        assert_eq!(meal_type_at(at(19)), MealType::Dinner);
        assert_eq!(meal_type_at(at(23)), MealType::Snack);
    }

    #[test]
    fn goal_line_counts_down_or_asks_for_a_goal() {
        let total = Nutrients {
            kcal: 1240.0,
            protein_g: 80.0,
            carbs_g: 120.0,
            fat_g: 40.0,
            fiber_g: 10.0,
        };
        let goals = Goals {
            kcal: Some(1800.0),
            ..Goals::default()
        };
        assert!(
            goal_line(&goals, &total, "today").starts_with("Today: 1240 of 1800 kcal (560 left)")
        );
        assert!(goal_line(&Goals::default(), &total, "today").contains("No daily goal yet"));
    }

    #[test]
    fn a_span_of_days_is_compared_with_the_daily_goal_on_average() {
        assert_eq!(
            daily_average(Metric::Kcal, 3600.0, 2, Some(1800.0)),
            "That is 1800 kcal a day on average over 2 logged days (goal 1800 a day)."
        );
        assert_eq!(
            daily_average(Metric::Protein, 45.0, 1, None),
            "That is 45 g of protein a day on average over 1 logged day."
        );
    }

    #[test]
    fn past_meals_get_a_typical_time_in_the_persons_zone() {
        let mut user = User::new(health_actors::domain::UserId(1), Utc::now());
        user.timezone = "Europe/Paris".into();
        let now: DateTime<Utc> = "2026-06-10T12:00:00Z".parse().unwrap();
        let yesterday = NaiveDate::from_ymd_opt(2026, 6, 9).unwrap();
        let at = eaten_at(&user, now, yesterday, None, Some(MealType::Breakfast));
        assert_eq!(at, "2026-06-09T06:00:00Z".parse::<DateTime<Utc>>().unwrap());
        let at = eaten_at(
            &user,
            now,
            yesterday,
            NaiveTime::from_hms_opt(20, 0, 0),
            None,
        );
        assert_eq!(at, "2026-06-09T18:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }

    #[test]
    fn amounts_make_unknown_text_read_as_food() {
        assert!(looks_like_food("a plate of zorblax"));
        assert!(looks_like_food("200 g of quinotto"));
        assert!(!looks_like_food("what's the weather like"));
    }

    #[test]
    fn unknown_foods_and_unlikely_amounts_are_named_back() {
        let mut estimate = MealEstimate {
            items: vec![],
            unknown: vec!["zorblax".into()],
            left_out: vec![],
            total: Nutrients::default(),
            notes: vec![],
        };
        assert_eq!(
            not_counted(&estimate, true),
            "I don't know 'zorblax' yet: can you give grams or a similar food? Nothing was saved."
        );
        estimate.unknown.clear();
        estimate.left_out.push(LeftOut {
            input: "1000 eggs".into(),
            reason: "comes to 50 kg, which looks like a typo".into(),
        });
        assert_eq!(
            not_counted(&estimate, true),
            "'1000 eggs' comes to 50 kg, which looks like a typo, so I left it out. Nothing was saved."
        );
        assert_eq!(
            not_counted(&estimate, false),
            "'1000 eggs' comes to 50 kg, which looks like a typo, so I left it out."
        );
    }
}
