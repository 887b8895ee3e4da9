//! A daily energy target from what a person told us: Mifflin-St Jeor resting energy ×
//! activity factor, adjusted for the weight goal.
//!
//! Used by the offline agent when someone asks for a goal instead of giving one. Nothing is
//! assumed: if age, sex, height, weight, activity or goal is missing the answer is `None`, so
//! the agent asks for it rather than making a number up.

use crate::domain::{Profile, Sex, WeightGoal};

/// A daily deficit of about 500 kcal loses roughly 0.5 kg a week.
const LOSE_ADJUSTMENT_KCAL: f64 = -500.0;
/// A modest surplus for lean gain.
const GAIN_ADJUSTMENT_KCAL: f64 = 300.0;
/// Common clinical floors below which an unsupervised diet is not advised.
const FLOOR_FEMALE_KCAL: f64 = 1200.0;
const FLOOR_MALE_KCAL: f64 = 1500.0;

/// The numbers behind a daily target, so the agent can explain it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyTarget {
    /// Resting energy (Mifflin-St Jeor), kcal/day.
    pub bmr_kcal: f64,
    /// BMR × activity factor, kcal/day.
    pub maintenance_kcal: f64,
    /// Maintenance adjusted for the goal and floored, rounded to 10 kcal.
    pub target_kcal: f64,
    pub goal: WeightGoal,
}

/// Mifflin-St Jeor BMR: 10·kg + 6.25·cm − 5·age + 5 (men) or − 161 (women).
pub fn mifflin_st_jeor_bmr(sex: Sex, weight_kg: f64, height_cm: f64, age_years: u32) -> f64 {
    let base = 10.0 * weight_kg + 6.25 * height_cm - 5.0 * f64::from(age_years);
    match sex {
        Sex::Male => base + 5.0,
        Sex::Female => base - 161.0,
    }
}

/// The daily kcal target for `profile`, or `None` when a needed field is missing or not
/// plausible (weight 20–400 kg, height 100–250 cm, age 14–110).
pub fn daily_kcal_target(profile: &Profile) -> Option<EnergyTarget> {
    let sex = profile.sex?;
    let weight_kg = profile.weight_kg.filter(|kg| (20.0..=400.0).contains(kg))?;
    let height_cm = profile
        .height_cm
        .filter(|cm| (100.0..=250.0).contains(cm))?;
    let age_years = profile.age_years.filter(|age| (14..=110).contains(age))?;
    let activity = profile.activity?;
    let goal = profile.goal?;
    let bmr_kcal = mifflin_st_jeor_bmr(sex, weight_kg, height_cm, age_years);
    let maintenance_kcal = bmr_kcal * activity.factor();
    let adjustment = match goal {
        WeightGoal::Lose => LOSE_ADJUSTMENT_KCAL,
        WeightGoal::Maintain => 0.0,
        WeightGoal::Gain => GAIN_ADJUSTMENT_KCAL,
    };
    let floor = match sex {
        Sex::Female => FLOOR_FEMALE_KCAL,
        Sex::Male => FLOOR_MALE_KCAL,
    };
    let target_kcal = ((maintenance_kcal + adjustment).max(floor) / 10.0).round() * 10.0;
    Some(EnergyTarget {
        bmr_kcal,
        maintenance_kcal,
        target_kcal,
        goal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ActivityLevel;

    fn profile() -> Profile {
        Profile {
            age_years: Some(30),
            sex: Some(Sex::Male),
            height_cm: Some(180.0),
            weight_kg: Some(80.0),
            activity: Some(ActivityLevel::Moderate),
            goal: Some(WeightGoal::Maintain),
            ..Profile::default()
        }
    }

    #[test]
    fn mifflin_st_jeor_matches_the_published_formula() {
        // 10*80 + 6.25*180 - 5*30 + 5 = 1780
        assert!((mifflin_st_jeor_bmr(Sex::Male, 80.0, 180.0, 30) - 1780.0).abs() < 1e-9);
        // 10*60 + 6.25*165 - 5*40 - 161 = 1270.25
        assert!((mifflin_st_jeor_bmr(Sex::Female, 60.0, 165.0, 40) - 1270.25).abs() < 1e-9);
    }

    #[test]
    fn target_applies_activity_and_goal() {
        let maintain = daily_kcal_target(&profile()).map(|target| target.target_kcal);
        assert_eq!(maintain, Some(2760.0)); // 1780 * 1.55 = 2759
        let lose = Profile {
            goal: Some(WeightGoal::Lose),
            ..profile()
        };
        assert_eq!(
            daily_kcal_target(&lose).map(|target| target.target_kcal),
            Some(2260.0)
        );
        let gain = Profile {
            goal: Some(WeightGoal::Gain),
            ..profile()
        };
        assert_eq!(
            daily_kcal_target(&gain).map(|target| target.target_kcal),
            Some(3060.0)
        );
    }

    #[test]
    fn target_never_goes_below_the_floor() {
        let small = Profile {
            sex: Some(Sex::Female),
            weight_kg: Some(45.0),
            height_cm: Some(150.0),
            age_years: Some(70),
            activity: Some(ActivityLevel::Sedentary),
            goal: Some(WeightGoal::Lose),
            ..Profile::default()
        };
        assert_eq!(
            daily_kcal_target(&small).map(|target| target.target_kcal),
            Some(1200.0)
        );
    }

    #[test]
    fn missing_fields_give_none() {
        assert!(daily_kcal_target(&Profile::default()).is_none());
        assert!(daily_kcal_target(&Profile {
            age_years: None,
            ..profile()
        })
        .is_none());
        assert!(daily_kcal_target(&Profile {
            activity: None,
            ..profile()
        })
        .is_none());
        assert!(daily_kcal_target(&Profile {
            goal: None,
            ..profile()
        })
        .is_none());
        assert!(daily_kcal_target(&Profile {
            weight_kg: Some(f64::NAN),
            ..profile()
        })
        .is_none());
    }
}
