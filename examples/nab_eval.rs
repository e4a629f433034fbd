//! Scores the circular-buffer z-score detector on the Numenta Anomaly
//! Benchmark.
//!
//! ```text
//! cargo run --release --example nab_eval -- data/nab/data data/nab/labels/combined_windows.json [--loco] [--files]
//! ```
//!
//! Every series is streamed causally through a fresh detector built with
//! `DetectorConfig::default()`; the alerts are scored with NAB's rules by
//! `dwcp_support::nab` (the workspace's test support crate). With `--loco`, each category is also
//! scored with parameters tuned on the other categories only.

use std::path::PathBuf;
use std::process::ExitCode;

use dwcp_support::nab::{self, Evaluation, PROFILES};
use dwcp_telemetry::anomaly::{DetectorConfig, Direction};

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

/// Applies one `--set key=value` override to a configuration.
fn apply_override(config: DetectorConfig, spec: &str) -> Result<DetectorConfig, String> {
    let (key, value) = spec
        .split_once('=')
        .ok_or_else(|| format!("--set expects key=value, got {spec:?}"))?;
    let f = || {
        value
            .parse::<f64>()
            .map_err(|e| format!("{key}: {value:?} is not a number ({e})"))
    };
    let n = || {
        value
            .parse::<usize>()
            .map_err(|e| format!("{key}: {value:?} is not a count ({e})"))
    };
    let opt_n = || {
        if value == "none" {
            Ok(None)
        } else {
            n().map(Some)
        }
    };
    let opt_f = || {
        if value == "none" {
            Ok(None)
        } else {
            f().map(Some)
        }
    };
    Ok(match key {
        "window" => config.with_window(n()?),
        "warning" => config.with_warning(f()?),
        "critical" => config.with_critical(f()?),
        "clear" => config.with_clear(f()?),
        "direction" => config.with_direction(match value {
            "both" => Direction::Both,
            "up" => Direction::Up,
            "down" => Direction::Down,
            _ => return Err(format!("direction: {value:?} is not both, up or down")),
        }),
        "min_samples" => config.with_min_samples(n()?),
        "cooldown" => config.with_cooldown(n()?),
        "max_incident" => config.with_max_incident(opt_n()?),
        "min_scale" => config.with_min_scale(f()?),
        "relative_scale_floor" => config.with_relative_scale_floor(f()?),
        "baseline_clip" => config.with_baseline_clip(opt_f()?),
        "smoothing" => config.with_smoothing(f()?),
        "surprise" => {
            let (short, half_life) = (config.surprise_short(), config.surprise_half_life());
            config.with_surprise(f()?, short, half_life)
        }
        "surprise_short" => {
            let (t, half_life) = (config.surprise(), config.surprise_half_life());
            config.with_surprise(t, n()?, half_life)
        }
        "surprise_half_life" => {
            let (t, short) = (config.surprise(), config.surprise_short());
            config.with_surprise(t, short, n()?)
        }
        "gate_bypass" => config.with_gate_bypass(opt_f()?),
        "record_factor" => config.with_record_factor(opt_f()?),
        "season" => config.with_season(opt_n()?),
        "season_weight" => config.with_season_weight(f()?),
        _ => return Err(format!("unknown parameter {key:?}")),
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional: Vec<&String> = Vec::new();
    let mut overrides: Vec<&String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--set" {
            match it.next() {
                Some(spec) => overrides.push(spec),
                None => {
                    eprintln!("error: --set needs key=value");
                    return ExitCode::from(2);
                }
            }
        } else if !a.starts_with("--") {
            positional.push(a);
        }
    }
    let flag = |f: &str| args.iter().any(|a| a == f);
    let (data, labels) = match positional.as_slice() {
        [d, l] => (PathBuf::from(d), PathBuf::from(l)),
        _ => {
            eprintln!(
                "usage: nab_eval <data_dir> <labels.json> [--loco] [--files] [--set key=value]..."
            );
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

    let mut config = DetectorConfig::default();
    for spec in &overrides {
        config = match apply_override(config, spec) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
    }
    println!("default config: {config:?}");
    let fixed = match nab::evaluate_config(&corpus, &config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_report(
        if overrides.is_empty() {
            "fixed defaults"
        } else {
            "defaults with overrides"
        },
        &fixed,
        flag("--files"),
        &corpus,
    );

    if flag("--loco") {
        let grid = nab::loco_grid();
        let evals: Vec<Evaluation> = match grid
            .iter()
            .map(|c| nab::evaluate_config(&corpus, c))
            .collect()
        {
            Ok(evals) => evals,
            Err(e) => {
                eprintln!("error: invalid grid configuration: {e}");
                return ExitCode::FAILURE;
            }
        };
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
                "  {cat:<24} tuned: warning {} surprise {} cooldown {} season {:?} weight {} record {:?}",
                c.warning(),
                c.surprise(),
                c.cooldown(),
                c.season(),
                c.season_weight(),
                c.record_factor()
            );
        }
        println!(
            "  (in-sample best of grid, NOT a valid estimate: #{best} standard {:.2})",
            best_eval.score(0)
        );
    }
    ExitCode::SUCCESS
}
