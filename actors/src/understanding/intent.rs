//! What a chat message asks for, decided by plain rules (the rule agent has no model).
//!
//! The rule agent of the application turns each message into an [`Intent`] and acts on it: log
//! a meal, answer a totals question, set a goal, log a weight, undo, help. The rules are
//! deterministic and conservative: when nothing fits, the answer is [`Intent::Unknown`] and the
//! agent says what it can do, rather than guessing.

use chrono::NaiveTime;

use crate::domain::MealType;
use crate::nutrition::estimate::estimate_meal;
use crate::nutrition::table::FoodTable;

/// A calendar day relative to the person's today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayRef {
    Today,
    Yesterday,
    DaysAgo(u32),
}

impl DayRef {
    /// Days before today (0 = today).
    pub fn days_ago(self) -> u32 {
        match self {
            Self::Today => 0,
            Self::Yesterday => 1,
            Self::DaysAgo(days) => days,
        }
    }
}

/// The span a question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day(DayRef),
    /// Monday of this week through today.
    ThisWeek,
    LastWeek,
}

/// Which number a totals question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Kcal,
    Protein,
    Carbs,
    Fat,
    Fiber,
    /// Energy and all macronutrients.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestionKind {
    /// "how much protein today"
    Total(Metric),
    /// "what did I eat yesterday"
    Diary,
    /// "am I on track this week"
    OnTrack,
}

/// A daily goal a person can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalNutrient {
    Kcal,
    Protein,
    Carbs,
    Fat,
}

/// What a message asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// Log what was eaten. `text` is the message (the meal parser ignores the chatter).
    LogMeal {
        text: String,
        meal_type: Option<MealType>,
        day: DayRef,
        time: Option<NaiveTime>,
    },
    /// A question about logged totals.
    Question {
        kind: QuestionKind,
        period: Period,
    },
    /// "how many calories in a banana": a look-up, nothing is logged.
    FoodInfo {
        text: String,
    },
    SetGoal {
        nutrient: GoalNutrient,
        amount: f64,
    },
    /// "calculate my calorie goal": compute it from the profile.
    GoalFromProfile,
    /// A body weight, in kg. `unit_stated` is false for a bare number (taken as kg).
    LogWeight {
        kg: f64,
        unit_stated: bool,
    },
    Undo,
    Help,
    Greeting,
    Unknown,
}

const KG_PER_POUND: f64 = 0.453_592_37;
const KG_PER_STONE: f64 = 6.350_293;

/// A token of a message: a lowercased word or a number.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Word(String),
    Number(f64),
}

fn pieces(text: &str) -> Vec<Piece> {
    let mut result = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, result: &mut Vec<Piece>| {
        // A colon that ends a word is punctuation ("at 8pm: pasta", "lunch: rice").
        while current.ends_with(':') {
            current.pop();
        }
        if current.is_empty() {
            return;
        }
        if current.starts_with(|c: char| c.is_ascii_digit()) && current.contains(':') {
            result.push(Piece::Word(current.clone()));
            current.clear();
            return;
        }
        let digits_end = current
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(current.len());
        let (number_part, word_part) = current.split_at(digits_end);
        match number_part.trim_end_matches('.').parse::<f64>() {
            Ok(value) if value.is_finite() && !number_part.is_empty() => {
                result.push(Piece::Number(value));
                if !word_part.is_empty() {
                    result.push(Piece::Word(word_part.to_owned()));
                }
            }
            _ => result.push(Piece::Word(current.clone())),
        }
        current.clear();
    };
    for character in text.chars() {
        if character.is_alphanumeric() || character == '.' || character == '\'' || character == ':'
        {
            for lower in character.to_lowercase() {
                current.push(lower);
            }
        } else {
            flush(&mut current, &mut result);
        }
    }
    flush(&mut current, &mut result);
    // Strip sentence dots from words ("today." -> "today").
    result
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Word(word) => {
                let trimmed = word
                    .trim_matches(|c| c == '.' || c == '\'' || c == ':')
                    .to_owned();
                (!trimmed.is_empty()).then_some(Piece::Word(trimmed))
            }
            number => Some(number),
        })
        .collect()
}

fn words(pieces: &[Piece]) -> Vec<&str> {
    pieces
        .iter()
        .filter_map(|piece| match piece {
            Piece::Word(word) => Some(word.as_str()),
            Piece::Number(_) => None,
        })
        .collect()
}

fn first_number(pieces: &[Piece]) -> Option<(usize, f64)> {
    pieces
        .iter()
        .enumerate()
        .find_map(|(index, piece)| match piece {
            Piece::Number(value) => Some((index, *value)),
            Piece::Word(_) => None,
        })
}

fn word_after(pieces: &[Piece], index: usize) -> Option<&str> {
    match pieces.get(index + 1) {
        Some(Piece::Word(word)) => Some(word),
        _ => None,
    }
}

/// Classifies one message. `table` decides whether unmarked text names foods ("2 eggs").
pub fn classify(text: &str, table: &FoodTable) -> Intent {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Intent::Unknown;
    }
    let pieces = pieces(trimmed);
    let words = words(&pieces);
    let has = |word: &str| words.contains(&word);
    let has_any = |candidates: &[&str]| candidates.iter().any(|word| words.contains(word));
    let phrase = format!(" {} ", words.join(" "));
    let has_phrase = |needle: &str| phrase.contains(&format!(" {needle} "));

    if let Some(intent) = classify_command(trimmed, &words, &has_phrase) {
        return intent;
    }
    if has_any(&["goal", "target", "aim"])
        || (has("set") && has_any(&["calories", "kcal", "protein"]))
    {
        if let Some(intent) = classify_goal(&pieces, &has, &has_any) {
            return intent;
        }
    }
    if has_any(&["weigh", "weight", "weighed", "weighing", "scale"]) {
        if let Some(intent) = classify_weight(&pieces) {
            return intent;
        }
    }
    if let Some(intent) = classify_question(trimmed, &words, &has, &has_any, &has_phrase, table) {
        return intent;
    }
    classify_meal(trimmed, &words, &has, &has_any, &has_phrase, &pieces, table)
}

fn classify_command(
    trimmed: &str,
    words: &[&str],
    has_phrase: &dyn Fn(&str) -> bool,
) -> Option<Intent> {
    let first = words.first().copied().unwrap_or_default();
    let short = words.len() <= 6;
    let undo_verb = words
        .iter()
        .any(|word| matches!(*word, "delete" | "remove" | "erase" | "cancel" | "scratch"));
    let undo_object = words
        .iter()
        .any(|word| matches!(*word, "last" | "that" | "previous" | "entry" | "it"));
    if first == "undo" || (short && undo_verb && undo_object) || has_phrase("take that back") {
        return Some(Intent::Undo);
    }
    if trimmed.starts_with("/help")
        || (short
            && (first == "help"
                || has_phrase("what can you do")
                || has_phrase("how does this work")))
        || has_phrase("how do i use")
        || words == ["commands"]
    {
        return Some(Intent::Help);
    }
    const GREETINGS: &[&str] = &[
        "hi",
        "hello",
        "hey",
        "hiya",
        "howdy",
        "yo",
        "greetings",
        "morning",
        "evening",
        "sup",
        "start",
    ];
    let greeting_start = GREETINGS.contains(&first)
        || (first == "good"
            && words
                .get(1)
                .is_some_and(|w| matches!(*w, "morning" | "afternoon" | "evening")))
        || trimmed.starts_with("/start");
    if greeting_start && words.len() <= 4 {
        return Some(Intent::Greeting);
    }
    None
}

fn classify_goal(
    pieces: &[Piece],
    has: &dyn Fn(&str) -> bool,
    has_any: &dyn Fn(&[&str]) -> bool,
) -> Option<Intent> {
    let nutrient_word = if has("protein") {
        Some(GoalNutrient::Protein)
    } else if has_any(&["carbs", "carb", "carbohydrates", "carbohydrate"]) {
        Some(GoalNutrient::Carbs)
    } else if has_any(&["fat", "fats"]) {
        Some(GoalNutrient::Fat)
    } else if has_any(&["kcal", "calories", "calorie", "cal", "cals", "energy"]) {
        Some(GoalNutrient::Kcal)
    } else {
        None
    };
    match first_number(pieces) {
        Some((index, amount)) if amount > 0.0 => {
            let unit = word_after(pieces, index).unwrap_or_default();
            let nutrient = match (nutrient_word, unit) {
                (Some(nutrient), _) => nutrient,
                (None, "kcal" | "calories" | "cal" | "cals" | "kcals") => GoalNutrient::Kcal,
                (None, "kg" | "kgs" | "lb" | "lbs" | "pounds" | "stone") => return None,
                (None, _) if amount >= 500.0 => GoalNutrient::Kcal,
                _ => return None,
            };
            Some(Intent::SetGoal { nutrient, amount })
        }
        _ => {
            let asks_for_calculation = has_any(&[
                "calculate",
                "compute",
                "recommend",
                "suggest",
                "what",
                "should",
            ]);
            asks_for_calculation.then_some(Intent::GoalFromProfile)
        }
    }
}

fn classify_weight(pieces: &[Piece]) -> Option<Intent> {
    let (index, value) = first_number(pieces)?;
    let unit = word_after(pieces, index).unwrap_or_default();
    let (kg, unit_stated) = match unit {
        "kg" | "kgs" | "kilo" | "kilos" | "kilograms" | "kilogram" => (value, true),
        "lb" | "lbs" | "pound" | "pounds" => (value * KG_PER_POUND, true),
        "st" | "stone" | "stones" => (value * KG_PER_STONE, true),
        _ => (value, false),
    };
    ((20.0..=400.0).contains(&kg)).then_some(Intent::LogWeight { kg, unit_stated })
}

fn period_of(has: &dyn Fn(&str) -> bool, has_phrase: &dyn Fn(&str) -> bool) -> Period {
    if has_phrase("last week") || has_phrase("previous week") {
        Period::LastWeek
    } else if has("week") || has("weekly") {
        Period::ThisWeek
    } else if has("yesterday") {
        Period::Day(DayRef::Yesterday)
    } else {
        Period::Day(DayRef::Today)
    }
}

fn classify_question(
    trimmed: &str,
    words: &[&str],
    has: &dyn Fn(&str) -> bool,
    has_any: &dyn Fn(&[&str]) -> bool,
    has_phrase: &dyn Fn(&str) -> bool,
    table: &FoodTable,
) -> Option<Intent> {
    let first = words.first().copied().unwrap_or_default();
    let question_start = matches!(
        first,
        "how"
            | "what"
            | "whats"
            | "what's"
            | "am"
            | "did"
            | "show"
            | "total"
            | "totals"
            | "summary"
            | "status"
            | "progress"
            | "remaining"
            | "left"
            | "have"
            | "give"
            | "tell"
            | "list"
            | "report"
    );
    let asks = question_start
        || trimmed.ends_with('?')
        || has_phrase("how much")
        || has_phrase("how many");
    if !asks {
        return None;
    }
    let personal = has_any(&[
        "i",
        "i've",
        "me",
        "my",
        "today",
        "yesterday",
        "week",
        "weekly",
        "so",
        "far",
        "left",
        "remaining",
    ]);
    // "how many calories in a banana" -> a look-up about a food.
    if let Some(position) = words
        .iter()
        .position(|word| matches!(*word, "in" | "does" | "is"))
    {
        let rest = words[position + 1..].join(" ");
        let about_food = !personal && !rest.is_empty() && estimate_meal(&rest, table).has_items();
        if about_food {
            return Some(Intent::FoodInfo { text: rest });
        }
    }
    let period = period_of(has, has_phrase);
    if has_phrase("on track")
        || has_phrase("how am i doing")
        || has_phrase("how did i do")
        || has("progress")
    {
        return Some(Intent::Question {
            kind: QuestionKind::OnTrack,
            period,
        });
    }
    if has_phrase("what did i eat")
        || has_phrase("what have i eaten")
        || has_phrase("what did i have")
        || has_phrase("what i ate")
        || has_any(&["diary", "log", "entries", "meals"])
    {
        return Some(Intent::Question {
            kind: QuestionKind::Diary,
            period,
        });
    }
    let metric = if has("protein") {
        Metric::Protein
    } else if has_any(&["carbs", "carb", "carbohydrates"]) {
        Metric::Carbs
    } else if has_any(&["fat", "fats"]) {
        Metric::Fat
    } else if has_any(&["fiber", "fibre"]) {
        Metric::Fiber
    } else if has_any(&["calories", "calorie", "kcal", "cals", "energy"]) {
        Metric::Kcal
    } else if has_any(&[
        "total", "totals", "summary", "status", "macros", "eaten", "ate",
    ]) || personal
    {
        Metric::All
    } else {
        return None;
    };
    Some(Intent::Question {
        kind: QuestionKind::Total(metric),
        period,
    })
}

#[allow(clippy::too_many_arguments)]
fn classify_meal(
    trimmed: &str,
    words: &[&str],
    has: &dyn Fn(&str) -> bool,
    has_any: &dyn Fn(&[&str]) -> bool,
    has_phrase: &dyn Fn(&str) -> bool,
    pieces: &[Piece],
    table: &FoodTable,
) -> Intent {
    let first = words.first().copied().unwrap_or_default();
    let eating_verb = has_any(&[
        "ate", "eaten", "had", "eating", "drank", "drinking", "snacked",
    ]) || matches!(
        first,
        "breakfast" | "lunch" | "dinner" | "supper" | "snack" | "brunch" | "log" | "add"
    );
    let has_food = estimate_meal(trimmed, table).has_items();
    if !(eating_verb || has_food) {
        return Intent::Unknown;
    }
    let meal_type = if has_any(&["breakfast", "brunch"]) {
        Some(MealType::Breakfast)
    } else if has("lunch") {
        Some(MealType::Lunch)
    } else if has_any(&["dinner", "supper"]) || has_phrase("last night") || has("tonight") {
        Some(MealType::Dinner)
    } else if has_any(&["snack", "snacked", "snacks"]) {
        Some(MealType::Snack)
    } else if has_phrase("this morning") {
        Some(MealType::Breakfast)
    } else {
        None
    };
    let day = if has("yesterday") || has_phrase("last night") {
        DayRef::Yesterday
    } else if let Some(days) = days_ago(pieces) {
        DayRef::DaysAgo(days)
    } else {
        DayRef::Today
    };
    Intent::LogMeal {
        text: trimmed.to_owned(),
        meal_type,
        day,
        time: clock_time(pieces),
    }
}

/// "2 days ago", "three days ago".
fn days_ago(pieces: &[Piece]) -> Option<u32> {
    for (index, window) in pieces.windows(3).enumerate() {
        let count = match &window[0] {
            Piece::Number(value) if value.fract() == 0.0 && (1.0..=14.0).contains(value) => {
                *value as u32
            }
            Piece::Word(word) => match word.as_str() {
                "two" => 2,
                "three" => 3,
                "four" => 4,
                "five" => 5,
                "six" => 6,
                _ => continue,
            },
            Piece::Number(_) => continue,
        };
        let _ = index;
        if window[1] == Piece::Word("days".into()) && window[2] == Piece::Word("ago".into()) {
            return Some(count);
        }
    }
    None
}

/// "at 8am", "at 8:30", "at 20:15", "8 pm", "at noon".
fn clock_time(pieces: &[Piece]) -> Option<NaiveTime> {
    for (index, piece) in pieces.iter().enumerate() {
        let previous_is_at = index > 0
            && matches!(&pieces[index - 1], Piece::Word(word) if word == "at" || word == "around");
        match piece {
            Piece::Word(word) if word == "noon" && previous_is_at => {
                return NaiveTime::from_hms_opt(12, 0, 0)
            }
            Piece::Word(word) if word.contains(':') => {
                let (hours, rest) = word.split_once(':')?;
                let minutes: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let suffix: String = rest.chars().skip_while(char::is_ascii_digit).collect();
                let hours: u32 = hours.parse().ok()?;
                let minutes: u32 = minutes.parse().ok()?;
                let meridiem = if suffix.is_empty() {
                    word_after(pieces, index).unwrap_or_default()
                } else {
                    suffix.as_str()
                };
                return to_time(hours, minutes, meridiem);
            }
            Piece::Number(value) if value.fract() == 0.0 && (0.0..=24.0).contains(value) => {
                let meridiem = word_after(pieces, index).unwrap_or_default();
                if matches!(meridiem, "am" | "pm" | "a.m" | "p.m") || previous_is_at {
                    if let Some(time) = to_time(*value as u32, 0, meridiem) {
                        return Some(time);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

fn to_time(hours: u32, minutes: u32, meridiem: &str) -> Option<NaiveTime> {
    let hours = match meridiem {
        "pm" | "p.m" if hours < 12 => hours + 12,
        "am" | "a.m" if hours == 12 => 0,
        _ => hours,
    };
    NaiveTime::from_hms_opt(hours, minutes, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(text: &str) -> Intent {
        classify(text, FoodTable::builtin())
    }

    #[test]
    fn meals_with_type_day_and_time() {
        match intent("I had 2 eggs and toast for breakfast") {
            Intent::LogMeal {
                meal_type,
                day,
                time,
                ..
            } => {
                assert_eq!(meal_type, Some(MealType::Breakfast));
                assert_eq!(day, DayRef::Today);
                assert_eq!(time, None);
            }
            other => panic!("{other:?}"),
        }
        match intent("yesterday I ate a burger for dinner at 8pm") {
            Intent::LogMeal {
                meal_type,
                day,
                time,
                ..
            } => {
                assert_eq!(meal_type, Some(MealType::Dinner));
                assert_eq!(day, DayRef::Yesterday);
                assert_eq!(time, NaiveTime::from_hms_opt(20, 0, 0));
            }
            other => panic!("{other:?}"),
        }
        match intent("yesterday at 8pm: 200 g pasta") {
            Intent::LogMeal { day, time, .. } => {
                assert_eq!(day, DayRef::Yesterday);
                assert_eq!(time, NaiveTime::from_hms_opt(20, 0, 0));
            }
            other => panic!("{other:?}"),
        }
        match intent("lunch: chicken salad at 12:30") {
            Intent::LogMeal {
                meal_type, time, ..
            } => {
                assert_eq!(meal_type, Some(MealType::Lunch));
                assert_eq!(time, NaiveTime::from_hms_opt(12, 30, 0));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            intent("2 eggs"),
            Intent::LogMeal {
                meal_type: None,
                ..
            }
        ));
        assert!(matches!(
            intent("a banana this morning"),
            Intent::LogMeal {
                meal_type: Some(MealType::Breakfast),
                ..
            }
        ));
        assert!(matches!(
            intent("pasta 3 days ago"),
            Intent::LogMeal {
                day: DayRef::DaysAgo(3),
                ..
            }
        ));
    }

    #[test]
    fn questions_about_totals() {
        assert_eq!(
            intent("how much protein today?"),
            Intent::Question {
                kind: QuestionKind::Total(Metric::Protein),
                period: Period::Day(DayRef::Today)
            }
        );
        assert_eq!(
            intent("how many calories did I eat yesterday"),
            Intent::Question {
                kind: QuestionKind::Total(Metric::Kcal),
                period: Period::Day(DayRef::Yesterday)
            }
        );
        assert_eq!(
            intent("how much protein this week"),
            Intent::Question {
                kind: QuestionKind::Total(Metric::Protein),
                period: Period::ThisWeek
            }
        );
        assert_eq!(
            intent("what did I eat yesterday"),
            Intent::Question {
                kind: QuestionKind::Diary,
                period: Period::Day(DayRef::Yesterday)
            }
        );
        assert_eq!(
            intent("am I on track this week?"),
            Intent::Question {
                kind: QuestionKind::OnTrack,
                period: Period::ThisWeek
            }
        );
        assert!(matches!(
            intent("how many calories in a banana?"),
            Intent::FoodInfo { .. }
        ));
    }

    #[test]
    fn goals_weights_and_commands() {
        assert_eq!(
            intent("my goal is 1800 kcal"),
            Intent::SetGoal {
                nutrient: GoalNutrient::Kcal,
                amount: 1800.0
            }
        );
        assert_eq!(
            intent("set my protein goal to 120 g"),
            Intent::SetGoal {
                nutrient: GoalNutrient::Protein,
                amount: 120.0
            }
        );
        assert_eq!(intent("calculate my calorie goal"), Intent::GoalFromProfile);
        assert_eq!(
            intent("I weigh 72.5 kg"),
            Intent::LogWeight {
                kg: 72.5,
                unit_stated: true
            }
        );
        match intent("weight 160 lb") {
            Intent::LogWeight { kg, unit_stated } => {
                assert!((kg - 72.57).abs() < 0.01);
                assert!(unit_stated);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(intent("undo"), Intent::Undo);
        assert_eq!(intent("delete the last entry"), Intent::Undo);
        assert_eq!(intent("help"), Intent::Help);
        assert_eq!(intent("/help"), Intent::Help);
        assert_eq!(intent("hello!"), Intent::Greeting);
        assert_eq!(intent("good morning"), Intent::Greeting);
        assert_eq!(intent("the weather is nice"), Intent::Unknown);
        assert_eq!(intent(""), Intent::Unknown);
    }

    #[test]
    fn odd_messages_never_panic() {
        for text in [
            "?",
            "🍕",
            "at 99:99",
            "at 25pm",
            "weight 9999999 kg",
            "goal -5",
            "99999999999999999999999",
            "at",
        ] {
            let _ = intent(text);
        }
    }
}
