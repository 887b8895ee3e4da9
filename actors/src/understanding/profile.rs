//! What a person says about themselves, for a calorie goal worked out from their profile
//! (pure code): "I'm a 35 year old woman, 165 cm, 62 kg, moderately active, I want to lose
//! weight".
//!
//! [`parse_profile`] reads age, sex, height, weight, activity level and weight goal from one
//! message. It only answers when the message is clearly about the person: two facts or more,
//! or one fact said as such ("my height is 165 cm", "I'm moderately active"). A lone "62 kg"
//! stays a weight log, and anything it cannot read is left out, never guessed.

use crate::domain::{ActivityLevel, Sex, WeightGoal};
use crate::nutrition::text::message_words;

const CM_PER_INCH: f64 = 2.54;
const KG_PER_POUND: f64 = 0.453_592_37;

/// The facts found in one message; `None` where the message said nothing about it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProfileFacts {
    pub age_years: Option<u32>,
    pub sex: Option<Sex>,
    pub height_cm: Option<f64>,
    pub weight_kg: Option<f64>,
    pub activity: Option<ActivityLevel>,
    pub goal: Option<WeightGoal>,
}

impl ProfileFacts {
    /// How many facts were found.
    pub fn count(&self) -> usize {
        [
            self.age_years.is_some(),
            self.sex.is_some(),
            self.height_cm.is_some(),
            self.weight_kg.is_some(),
            self.activity.is_some(),
            self.goal.is_some(),
        ]
        .iter()
        .filter(|found| **found)
        .count()
    }
}

/// The profile facts of `text`, or `None` when it is not a message about the person.
pub fn parse_profile(text: &str) -> Option<ProfileFacts> {
    let words = message_words(text);
    if words.is_empty() || words.len() > 40 {
        return None;
    }
    let phrase = format!(" {} ", words.join(" "));
    let has = |needle: &str| phrase.contains(&format!(" {needle} "));
    let facts = ProfileFacts {
        age_years: age(&words),
        sex: sex(&words),
        height_cm: height(&words),
        weight_kg: weight(&words),
        activity: activity(&has),
        goal: goal(&has),
    };
    let about_me = [
        "i am",
        "im",
        "i m",
        "my height",
        "my age",
        "i want to",
        "i d like to",
        "id like to",
        "i exercise",
        "i work out",
    ]
    .iter()
    .any(|lead| has(lead));
    // A lone weight is a weight log ("I weigh 62 kg", "62 kg today").
    let only_weight = facts.count() == 1 && facts.weight_kg.is_some();
    let enough = facts.count() >= 2 || (facts.count() == 1 && about_me && !only_weight);
    enough.then_some(facts)
}

fn number(word: &str) -> Option<f64> {
    word.parse::<f64>().ok().filter(|value| value.is_finite())
}

fn word_is(words: &[String], at: usize, candidates: &[&str]) -> bool {
    words
        .get(at)
        .is_some_and(|word| candidates.contains(&word.as_str()))
}

/// A whole number that can be an adult's age.
fn is_age(word: &str) -> bool {
    number(word).is_some_and(|value| value.fract() == 0.0 && (14.0..=110.0).contains(&value))
}

/// "35 years old", "35 year old woman", "35 yo", "age 35", "aged 35".
fn age(words: &[String]) -> Option<u32> {
    words.iter().enumerate().find_map(|(index, word)| {
        let said_as_age = word_is(words, index + 1, &["years", "year", "yrs", "yr", "yo"])
            || (index > 0 && word_is(words, index - 1, &["age", "aged"]));
        (said_as_age && is_age(word)).then(|| number(word).unwrap_or_default() as u32)
    })
}

/// "woman", "male", or a letter right after an age ("28 f", "35 m"); `None` when the message
/// says both.
fn sex(words: &[String]) -> Option<Sex> {
    let mut found = None;
    for (index, word) in words.iter().enumerate() {
        let after_age = index > 0 && is_age(&words[index - 1]);
        let sex = match word.as_str() {
            "woman" | "female" | "girl" | "lady" => Sex::Female,
            "man" | "male" | "guy" => Sex::Male,
            "f" if after_age => Sex::Female,
            "m" if after_age => Sex::Male,
            _ => continue,
        };
        match found {
            None => found = Some(sex),
            Some(earlier) if earlier != sex => return None,
            Some(_) => {}
        }
    }
    found
}

/// "165 cm", "1.65 m", "5 ft 5 in", "5 foot 5", "5 ft".
fn height(words: &[String]) -> Option<f64> {
    for (index, word) in words.iter().enumerate() {
        let Some(value) = number(word) else {
            continue;
        };
        let unit = words.get(index + 1).map(String::as_str);
        let centimetres = match unit {
            Some("cm" | "centimeters" | "centimetres") => Some(value),
            Some("m" | "meters" | "metres" | "meter" | "metre") if (1.0..=2.5).contains(&value) => {
                Some(value * 100.0)
            }
            Some("ft" | "foot" | "feet") => {
                let inches = words
                    .get(index + 2)
                    .and_then(|next| number(next))
                    .filter(|inches| (0.0..12.0).contains(inches))
                    .unwrap_or(0.0);
                Some((value * 12.0 + inches) * CM_PER_INCH)
            }
            _ => None,
        };
        if let Some(cm) = centimetres.filter(|cm| (100.0..=250.0).contains(cm)) {
            return Some((cm * 10.0).round() / 10.0);
        }
    }
    None
}

/// "62 kg", "136 lb", "136 pounds".
fn weight(words: &[String]) -> Option<f64> {
    for (index, word) in words.iter().enumerate() {
        let Some(value) = number(word) else {
            continue;
        };
        let kilograms = match words.get(index + 1).map(String::as_str) {
            Some("kg" | "kgs" | "kilos" | "kilograms" | "kilo") => value,
            Some("lb" | "lbs" | "pounds" | "pound") => value * KG_PER_POUND,
            _ => continue,
        };
        if (20.0..=400.0).contains(&kilograms) {
            return Some((kilograms * 10.0).round() / 10.0);
        }
    }
    None
}

fn activity(has: &dyn Fn(&str) -> bool) -> Option<ActivityLevel> {
    // Most specific first: "not very active" is sedentary, not very active.
    let levels: &[(&[&str], ActivityLevel)] = &[
        (
            &[
                "sedentary",
                "not active",
                "not very active",
                "desk job",
                "inactive",
            ],
            ActivityLevel::Sedentary,
        ),
        (
            &[
                "very active",
                "extremely active",
                "athlete",
                "train every day",
            ],
            ActivityLevel::VeryActive,
        ),
        (
            &["moderately active", "moderate activity", "moderately"],
            ActivityLevel::Moderate,
        ),
        (
            &[
                "lightly active",
                "light activity",
                "slightly active",
                "somewhat active",
            ],
            ActivityLevel::Light,
        ),
        (
            &["active", "quite active", "fairly active"],
            ActivityLevel::Active,
        ),
    ];
    levels
        .iter()
        .find(|(phrases, _)| phrases.iter().any(|phrase| has(phrase)))
        .map(|(_, level)| *level)
}

fn goal(has: &dyn Fn(&str) -> bool) -> Option<WeightGoal> {
    let goals: &[(&[&str], WeightGoal)] = &[
        (
            &[
                "lose weight",
                "lose fat",
                "lose some weight",
                "cut",
                "slim down",
                "weight loss",
            ],
            WeightGoal::Lose,
        ),
        (
            &[
                "gain weight",
                "gain muscle",
                "build muscle",
                "bulk",
                "put on weight",
                "weight gain",
            ],
            WeightGoal::Gain,
        ),
        (
            &[
                "maintain",
                "keep my weight",
                "stay the same",
                "maintenance",
                "keep weight",
            ],
            WeightGoal::Maintain,
        ),
    ];
    goals
        .iter()
        .find(|(phrases, _)| phrases.iter().any(|phrase| has(phrase)))
        .map(|(_, goal)| *goal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_profile_in_one_sentence() {
        let facts = parse_profile(
            "I'm a 35 year old woman, 165 cm, 62 kg, moderately active, and I want to lose weight",
        )
        .expect("a profile");
        assert_eq!(
            facts,
            ProfileFacts {
                age_years: Some(35),
                sex: Some(Sex::Female),
                height_cm: Some(165.0),
                weight_kg: Some(62.0),
                activity: Some(ActivityLevel::Moderate),
                goal: Some(WeightGoal::Lose),
            }
        );
    }

    #[test]
    fn imperial_units_and_short_forms() {
        let facts = parse_profile("male, 40 yo, 5'11\", 180 lbs, sedentary, maintain").unwrap();
        assert_eq!(facts.sex, Some(Sex::Male));
        assert_eq!(facts.age_years, Some(40));
        assert_eq!(facts.height_cm, Some(180.3));
        assert_eq!(facts.weight_kg, Some(81.6));
        assert_eq!(facts.activity, Some(ActivityLevel::Sedentary));
        assert_eq!(facts.goal, Some(WeightGoal::Maintain));
        let facts = parse_profile("I am 1.80 m and 75 kg").unwrap();
        assert_eq!(facts.height_cm, Some(180.0));
        assert_eq!(facts.sex, None, "the m of metres is no sex");
        assert_eq!(
            parse_profile("28 f, 170 cm").unwrap().sex,
            Some(Sex::Female)
        );
        assert_eq!(
            parse_profile("I'm not very active").unwrap().activity,
            Some(ActivityLevel::Sedentary)
        );
    }

    #[test]
    fn one_fact_counts_when_said_about_oneself() {
        assert_eq!(
            parse_profile("I'm moderately active").unwrap().activity,
            Some(ActivityLevel::Moderate)
        );
        assert_eq!(
            parse_profile("I want to gain muscle").unwrap().goal,
            Some(WeightGoal::Gain)
        );
        assert_eq!(
            parse_profile("my height is 172 cm").unwrap().height_cm,
            Some(172.0)
        );
    }

    #[test]
    fn other_messages_are_not_profiles() {
        for text in [
            "I weigh 62 kg",
            "62 kg",
            "2 eggs and a slice of toast",
            "200 g chicken breast",
            "how much protein today?",
            "my goal is 1800 kcal",
            "I am hungry",
            "",
        ] {
            assert_eq!(parse_profile(text), None, "{text}");
        }
    }

    #[test]
    fn implausible_numbers_are_left_out() {
        let facts = parse_profile("I am 5 years old, 900 cm, female").unwrap();
        assert_eq!(facts.age_years, None);
        assert_eq!(facts.height_cm, None);
        assert_eq!(facts.sex, Some(Sex::Female));
    }
}
