//! Scores the circular-buffer z-score detector on the Numenta Anomaly
//! Benchmark.
//!
//! ```text
//! cargo run --release --example nab_eval -- data/nab/data data/nab/labels/combined_windows.json [--loco] [--files]
//! ```
//!
//! Every series is streamed causally through a fresh detector built with
//! `DetectorConfig::default()`; the alerts are scored with NAB's rules by
//! `dwcp_telemetry::anomaly::nab`. With `--loco`, each category is also
//! scored with parameters tuned on the other categories only.

use std::path::PathBuf;
use std::process::ExitCode;

use dwcp_telemetry::anomaly::nab::{self, Evaluation, PROFILES};
use dwcp_telemetry::anomaly::DetectorConfig;

fn print_report(title: &str, e: &Evaluation, per_file: bool, windows_of: &[nab::Series]) {
    println!("== {title}");
    for (p, profile) in PROFILES.iter().enumerate() {
        println!("  {:<14} {:7.2}", profile.name, e.score(p));
    }
    println!(
        "  {:<24} {:>8} {:>8} {:>8} {:>8} {:>4} {:>4} {:>4}",
        "category", "standard", "low_FP", "low_FN", "raw_std", "TP", "FN", "FP"
    );
    for cat in e.categories() {
        let cell = |p: usize| {
            e.category_score(p, &cat)
                .map_or_else(|| "     n/a".to_owned(), |v| format!("{v:8.2}"))
        };
        let t = e.total(0, |f| f.category == cat);
        println!(
            "  {:<24} {} {} {} {:8.3} {:>4} {:>4} {:>4}",
            cat,
            cell(0),
            cell(1),
            cell(2),
            t.raw,
            t.detected,
            t.missed,
            t.false_positives
        );
    }
    let t = e.total(0, |_| true);
    println!(
        "  all: windows {} detected {} missed {} false positives {}",
        t.windows, t.detected, t.missed, t.false_positives
    );
    println!(
        "  artificialNoAnomaly alerts: {} after probation, {} in all",
        e.scored_alerts("artificialNoAnomaly"),
        e.all_alerts("artificialNoAnomaly")
    );
    if per_file {
        for (f, series) in e.files.iter().zip(windows_of) {
            let s = &f.scores[0];
            let w: Vec<(usize, usize)> = series.windows.iter().map(|w| (w.start, w.end)).collect();
            println!(
                "    {:<58} raw {:7.3} TP {} FN {} FP {} rows {} windows {:?} alerts {:?}",
                f.name, s.raw, s.detected, s.missed, s.false_positives, f.rows, w, f.alerts
            );
        }
    }
}

/// The fixed grid searched by `--loco` (81 candidates): the parameters that
/// matter most, each around its default. Fixed before any LOCO run.
fn grid() -> Vec<DetectorConfig> {
    let mut out = Vec::new();
    for warning in [2.5, 3.0, 3.5] {
        for surprise in [1.25, 1.5, 1.75] {
            for cooldown in [72, 144, 288] {
                for season_weight in [None, Some(0.6), Some(0.8)] {
                    out.push(
                        DetectorConfig::default()
                            .with_warning(warning)
                            .with_surprise(surprise, 16, 2880)
                            .with_cooldown(cooldown)
                            .with_max_incident(Some(cooldown))
                            .with_season(season_weight.map(|_| 288))
                            .with_season_weight(season_weight.unwrap_or(0.6)),
                    );
                }
            }
        }
    }
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let (data, labels) = match positional.as_slice() {
        [d, l] => (PathBuf::from(d), PathBuf::from(l)),
        _ => {
            eprintln!("usage: nab_eval <data_dir> <labels.json> [--loco] [--files]");
            return ExitCode::from(2);
        }
    };
    let corpus = match nab::load_corpus(&data, &labels) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let windows: usize = corpus.iter().map(|s| s.windows.len()).sum();
    println!("NAB corpus: {} series, {} windows", corpus.len(), windows);

    let config = DetectorConfig::default();
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    println!("default config: {config:?}");
    let fixed = nab::evaluate(&corpus, |s| {
        nab::run_detector(config.clone().build().expect("validated"), &s.values)
    });
    print_report("fixed defaults", &fixed, flag("--files"), &corpus);

    if flag("--loco") {
        let grid = grid();
        let evals: Vec<Evaluation> = grid
            .iter()
            .map(|c| {
                nab::evaluate(&corpus, |s| {
                    nab::run_detector(c.clone().build().expect("grid is valid"), &s.values)
                })
            })
            .collect();
        let (best, best_eval) = evals
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.score(0).total_cmp(&b.1.score(0)))
            .expect("non-empty grid");
        println!(
            "== leave-one-category-out over a fixed grid of {} configs",
            grid.len()
        );
        let loco = nab::leave_one_category_out(&evals, 0);
        println!("{loco}");
        for (cat, pick, _) in &loco.folds {
            let c = &grid[*pick];
            println!(
                "  {cat:<24} tuned: warning {} surprise {} cooldown {} season {:?} weight {}",
                c.warning, c.surprise, c.cooldown, c.season, c.season_weight
            );
        }
        println!(
            "  (in-sample best of grid, NOT a valid estimate: #{best} standard {:.2})",
            best_eval.score(0)
        );
    }
    ExitCode::SUCCESS
}
