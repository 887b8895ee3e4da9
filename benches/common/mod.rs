//! What every load bench shares: the quick switch and where its results go.
//!
//! Included by each bench with `#[path = "common/mod.rs"] mod common;` (a folder, so cargo does
//! not take it for a bench of its own).

use std::path::PathBuf;

/// `BENCH_QUICK=1` (any value but empty or 0): a run of under a minute.
pub fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok_and(|value| !value.is_empty() && value != "0")
}

/// Writes `results` as `target/bench-results/<bench>.json` (under `CARGO_TARGET_DIR` when set)
/// and says where, or why it could not.
pub fn write_results(bench: &str, results: &serde_json::Value) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let folder = target.join("bench-results");
    let path = folder.join(format!("{bench}.json"));
    let text = serde_json::to_string_pretty(results).unwrap_or_default();
    match std::fs::create_dir_all(&folder).and_then(|()| std::fs::write(&path, text + "\n")) {
        Ok(()) => println!("results written to {}", path.display()),
        Err(error) => eprintln!("could not write {}: {error}", path.display()),
    }
}
