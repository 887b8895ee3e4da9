//! Accuracy and speed of the offline nutrition engine on the Nutrition5k text meals.
//!
//! Why: the built-in engine must give honest numbers with no API key; this bench measures how
//! close its kcal totals come to Nutrition5k's ground truth (USDA-derived) for 4,340 real
//! cafeteria meals written as "68 g brown rice, 59 g pork, ...". It measures the engine; the
//! table is never fitted to it. The data lives outside the repository in
//! `../shared/benchmarks/`; without it the bench says so and exits 0.
//!
//! Prints: meals, share within ±20 % of the true kcal, MAPE, signed bias, share of meals with
//! an unknown item, the most frequent unknown names and throughput; writes
//! `target/bench-results/nutrition.json`. `BENCH_QUICK=1` runs one timing pass only.

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use health_actors::nutrition::{estimate_meal, FoodTable};

struct Meal {
    id: String,
    text: String,
    true_kcal: f64,
}

fn load_meals(path: &PathBuf) -> Result<Vec<Meal>, String> {
    let content = std::fs::read_to_string(path).map_err(|error| error.to_string())?;
    let mut meals = Vec::new();
    for (line_number, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|error| format!("line {}: {error}", line_number + 1))?;
        let text = value
            .get("text")
            .and_then(|text| text.as_str())
            .unwrap_or_default();
        let kcal = value
            .get("kcal")
            .and_then(|kcal| kcal.as_f64())
            .unwrap_or(f64::NAN);
        let id = value
            .get("id")
            .and_then(|id| id.as_str())
            .unwrap_or_default();
        meals.push(Meal {
            id: id.to_owned(),
            text: text.to_owned(),
            true_kcal: kcal,
        });
    }
    Ok(meals)
}

fn main() {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data_path = manifest_dir.join("../shared/benchmarks/nutrition5k-text-meals.jsonl");
    if !data_path.exists() {
        println!(
            "nutrition bench: {} is missing; nothing to measure",
            data_path.display()
        );
        return;
    }
    let meals = match load_meals(&data_path) {
        Ok(meals) => meals,
        Err(error) => {
            eprintln!(
                "nutrition bench: cannot read {}: {error}",
                data_path.display()
            );
            std::process::exit(1);
        }
    };
    let quick = common::quick();

    let started = Instant::now();
    let table = FoodTable::builtin();
    let table_build_ms = started.elapsed().as_secs_f64() * 1000.0;

    // Accuracy pass.
    let mut within_20 = 0usize;
    let mut scored = 0usize;
    let mut absolute_percentage_sum = 0.0;
    let mut signed_percentage_sum = 0.0;
    let mut with_unknown = 0usize;
    let mut unknown_counts: HashMap<String, usize> = HashMap::new();
    let mut worst: Vec<(f64, String, String, f64, f64)> = Vec::new();
    for meal in &meals {
        let estimate = estimate_meal(&meal.text, table);
        if !estimate.unknown.is_empty() {
            with_unknown += 1;
            for unknown in &estimate.unknown {
                *unknown_counts.entry(unknown_name(unknown)).or_default() += 1;
            }
        }
        if !(meal.true_kcal.is_finite() && meal.true_kcal > 0.0) {
            continue;
        }
        scored += 1;
        let error = (estimate.total.kcal - meal.true_kcal) / meal.true_kcal;
        if error.abs() <= 0.20 {
            within_20 += 1;
        }
        absolute_percentage_sum += error.abs();
        signed_percentage_sum += error;
        worst.push((
            error,
            meal.id.clone(),
            meal.text.clone(),
            estimate.total.kcal,
            meal.true_kcal,
        ));
    }

    // Throughput pass(es).
    let passes = if quick { 1 } else { 5 };
    let timing_started = Instant::now();
    let mut checksum = 0.0;
    for _ in 0..passes {
        for meal in &meals {
            checksum += estimate_meal(&meal.text, table).total.kcal;
        }
    }
    let elapsed = timing_started.elapsed().as_secs_f64();
    let meals_per_second = (meals.len() * passes) as f64 / elapsed.max(1e-9);

    let scored_f = scored.max(1) as f64;
    let within_share = within_20 as f64 / scored_f;
    let mape = absolute_percentage_sum / scored_f;
    let bias = signed_percentage_sum / scored_f;
    let unknown_share = with_unknown as f64 / meals.len().max(1) as f64;
    let mut top_unknown: Vec<(String, usize)> = unknown_counts.into_iter().collect();
    top_unknown.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top_unknown.truncate(10);
    worst.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));

    println!(
        "nutrition engine on Nutrition5k text meals ({} foods in the table)",
        table.len()
    );
    println!("| metric | value |");
    println!("| --- | --- |");
    println!("| meals | {} |", meals.len());
    println!(
        "| within ±20 % of true kcal | {:.1} % |",
        within_share * 100.0
    );
    println!("| MAPE | {:.2} % |", mape * 100.0);
    println!("| signed bias | {:+.2} % |", bias * 100.0);
    println!(
        "| meals with an unknown item | {:.1} % |",
        unknown_share * 100.0
    );
    println!("| throughput | {meals_per_second:.0} meals/s ({passes} pass(es)) |");
    println!("| table build | {table_build_ms:.1} ms |");
    println!("most frequent unknown names:");
    for (name, count) in &top_unknown {
        println!("  {count:>5}  {name}");
    }
    if std::env::var("BENCH_VERBOSE").is_ok() {
        println!("largest errors:");
        for (error, id, text, estimated, truth) in worst.iter().take(25) {
            println!(
                "  {:+6.1} %  {id}  est {estimated:.0} / true {truth:.0}  {text}",
                error * 100.0
            );
        }
    }

    let result = serde_json::json!({
        "bench": "nutrition",
        "dataset": "nutrition5k-text-meals.jsonl",
        "meals": meals.len(),
        "foods_in_table": table.len(),
        "within_20_percent": within_share,
        "mape": mape,
        "signed_bias": bias,
        "meals_with_unknown_share": unknown_share,
        "top_unknown": top_unknown.iter().map(|(name, count)| serde_json::json!({"name": name, "count": count})).collect::<Vec<_>>(),
        "meals_per_second": meals_per_second,
        "timing_passes": passes,
        "quick": quick,
        "checksum_kcal": checksum,
    });
    common::write_results("nutrition", &result);
}

/// "12 g tatsoi" -> "tatsoi": the name without its amount, for counting.
fn unknown_name(item: &str) -> String {
    let mut words = item.split_whitespace();
    match (words.next(), words.next()) {
        (Some(amount), Some("g")) if amount.parse::<f64>().is_ok() => {
            words.collect::<Vec<_>>().join(" ")
        }
        _ => item.to_owned(),
    }
}
