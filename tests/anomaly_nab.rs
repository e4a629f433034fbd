//! The anomaly detector on the real NAB data shipped in `data/nab/`, scored
//! by `dwcp_support::nab` in `tests/support/nab.rs` (the same code as
//! `examples/nab_eval.rs`).

use std::path::PathBuf;

use dwcp_support::nab::{self, Evaluation, Window, REWARD_LOW_FN, STANDARD};
use dwcp_telemetry::anomaly::DetectorConfig;

/// Standard-profile NAB score of `DetectorConfig::default()`, as measured.
/// A change to the detector that moves it must update this on purpose.
const EXPECTED_STANDARD: f64 = 62.302827470066816;
const EXPECTED_LOW_FP: f64 = 52.86409460192332;
const EXPECTED_LOW_FN: f64 = 67.59582437398394;

/// The NAB subset shipped in `data/nab/`: 35 series, 55 windows.
fn corpus() -> Vec<nab::Series> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/nab");
    let corpus = nab::load_corpus(
        &root.join("data"),
        &root.join("labels/combined_windows.json"),
    )
    .expect("data/nab is part of the repository");
    assert_eq!(corpus.len(), 35);
    assert_eq!(corpus.iter().map(|s| s.windows.len()).sum::<usize>(), 55);
    corpus
}

fn evaluate_defaults() -> Evaluation {
    nab::evaluate_config(&corpus(), &DetectorConfig::default()).unwrap()
}

#[test]
fn nab_default_detector_scores() {
    let e = evaluate_defaults();
    let got = [e.score(0), e.score(1), e.score(2)];
    println!(
        "standard {:?} low_FP {:?} low_FN {:?}",
        got[0], got[1], got[2]
    );
    assert!(
        (got[0] - EXPECTED_STANDARD).abs() < 1e-6,
        "standard {}",
        got[0]
    );
    assert!((got[1] - EXPECTED_LOW_FP).abs() < 1e-6, "low_FP {}", got[1]);
    assert!((got[2] - EXPECTED_LOW_FN).abs() < 1e-6, "low_FN {}", got[2]);
    let t = e.total(0, |_| true);
    assert_eq!((t.detected, t.missed, t.false_positives), (43, 12, 98));
}

#[test]
fn nab_no_alert_on_artificial_no_anomaly() {
    let e = evaluate_defaults();
    assert_eq!(e.scored_alerts("artificialNoAnomaly"), 0);
    assert_eq!(e.all_alerts("artificialNoAnomaly"), 0);
    let t = e.total(0, |f| f.category == "artificialNoAnomaly");
    assert_eq!(t.false_positives, 0);
    assert_eq!(t.raw, 0.0);
}

#[test]
fn nab_scorer_hand_built_cases() {
    let w = [Window {
        start: 500,
        end: 599,
    }];
    let n = 2_000; // probation: 300 rows
                   // An alert at the window start scores 1.
    assert!((nab::score_file(n, &w, &[500], &STANDARD).raw - 1.0).abs() < 1e-12);
    // A missed window scores -A_FN.
    assert_eq!(nab::score_file(n, &w, &[], &STANDARD).raw, -1.0);
    assert_eq!(nab::score_file(n, &w, &[], &REWARD_LOW_FN).raw, -2.0);
    // A false positive before any window scores -A_FP (plus the miss).
    assert!((nab::score_file(n, &w, &[400], &STANDARD).raw + 1.11).abs() < 1e-12);
    // Alerts in the probation are ignored entirely.
    assert_eq!(nab::score_file(n, &w, &[10, 299], &STANDARD).raw, -1.0);
    // Half-way through the window: s(-0.5) / s(-1).
    let mid = nab::score_file(n, &w, &[550], &STANDARD).raw;
    assert!((mid - nab::scaled_sigmoid(-0.5) / nab::scaled_sigmoid(-1.0)).abs() < 1e-12);
    assert!((mid - 0.859_792_566_909_783_7).abs() < 1e-12, "{mid}");
    // A false positive just after the window costs almost nothing.
    let after = nab::score_file(n, &w, &[500, 600], &STANDARD).raw - 1.0;
    assert!((after - 0.11 * nab::scaled_sigmoid(1.0 / 99.0)).abs() < 1e-12);
    assert!(after < 0.0 && after > -0.003);
    // Normalisation: null detector 0, perfect detector 100.
    assert_eq!(nab::normalise(-55.0, 55, &STANDARD), Some(0.0));
    assert_eq!(nab::normalise(55.0, 55, &STANDARD), Some(100.0));
}

/// The held-out figure: for each category, the configuration of
/// `nab::loco_grid()` that scores best on the *other* categories, scored on
/// that one. Pinned like the defaults; docs/ANOMALY.md reports it.
#[test]
fn nab_leave_one_category_out() {
    let corpus = corpus();
    let grid = nab::loco_grid();
    assert_eq!(grid.len(), 243);
    let evals: Vec<Evaluation> = grid
        .iter()
        .map(|c| nab::evaluate_config(&corpus, c).unwrap())
        .collect();
    let loco = nab::leave_one_category_out(&evals, 0);
    println!("{loco}");
    let picks: Vec<(&str, usize)> = loco
        .folds
        .iter()
        .map(|(cat, pick, _)| (cat.as_str(), *pick))
        .collect();
    assert_eq!(
        picks,
        [
            ("artificialNoAnomaly", 151),
            ("artificialWithAnomaly", 70),
            ("realAWSCloudwatch", 151),
            ("realKnownCause", 151),
        ]
    );
    // Every fold keeps the record bypass at 1.5.
    for (_, pick, _) in &loco.folds {
        assert_eq!(grid[*pick].record_factor(), Some(1.5));
    }
    assert!(
        (loco.score() - EXPECTED_LOCO).abs() < 1e-6,
        "{}",
        loco.score()
    );
    assert_eq!(loco.total.windows, 55);
}

/// Standard-profile LOCO score over `nab::loco_grid()`, as measured.
const EXPECTED_LOCO: f64 = 63.1735297255709;

/// The loader decodes JSON escapes in the labels file (`\u00e9` is `é`, a
/// surrogate pair one character), so a file whose name needs them is found
/// and its windows are read.
#[test]
fn nab_loader_decodes_unicode_escapes() {
    let dir = std::env::temp_dir().join(format!("dwcp_nab_escapes_{}", std::process::id()));
    let category = dir.join("caf\u{e9}");
    std::fs::create_dir_all(&category).unwrap();
    let mut csv = String::from("timestamp,value\n");
    for i in 0..10 {
        csv.push_str(&format!("2014-01-01 00:0{i}:00,{i}\n"));
    }
    std::fs::write(category.join("s\u{e9}rie \u{1F600}.csv"), csv).unwrap();
    let labels = dir.join("labels.json");
    std::fs::write(
        &labels,
        r#"{"caf\u00e9/s\u00e9rie \ud83d\ude00.csv": [["2014-01-01 00:02:00.000000", "2014-01-01 00:04:00"]]}"#,
    )
    .unwrap();
    let corpus = nab::load_corpus(&dir, &labels);
    std::fs::remove_dir_all(&dir).unwrap();
    let corpus = corpus.expect("the escaped name resolves to the file on disk");
    assert_eq!(corpus.len(), 1);
    assert_eq!(corpus[0].name, "caf\u{e9}/s\u{e9}rie \u{1F600}.csv");
    assert_eq!(corpus[0].category, "caf\u{e9}");
    assert_eq!(corpus[0].values.len(), 10);
    assert_eq!(corpus[0].windows, [Window { start: 2, end: 4 }]);
}
