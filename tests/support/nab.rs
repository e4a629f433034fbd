//! Scoring on the Numenta Anomaly Benchmark (NAB).
//!
//! This module implements NAB's scoring rules as summarised in
//! `data/nab/README.md` (probation, anomaly windows, scaled sigmoid, false
//! positive weighting, three application profiles, normalisation), a loader
//! for NAB's CSV files and `combined_windows.json` labels, and a
//! leave-one-category-out tuner. The `nab_eval` example and the
//! `anomaly_nab` integration test both use it. It is test support code of the
//! repository, not part of the published `dwcp-telemetry` crate, and uses only
//! that crate's public API.
//!
//! Rows are identified by index. Every detector is run causally: it sees
//! the rows of a file one at a time and marks the rows it alerts on.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use dwcp_telemetry::anomaly::{ConfigError, Detector, DetectorConfig};

/// Application profile: weights of true positives, missed windows and false
/// positives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Profile name as NAB spells it.
    pub name: &'static str,
    /// Weight of a detected window (`A_TP`).
    pub a_tp: f64,
    /// Cost of a missed window (`A_FN`).
    pub a_fn: f64,
    /// Cost of a false positive (`A_FP`).
    pub a_fp: f64,
}

/// NAB's standard profile `(1, 1, 0.11)`.
pub const STANDARD: Profile = Profile {
    name: "standard",
    a_tp: 1.0,
    a_fn: 1.0,
    a_fp: 0.11,
};

/// NAB's reward_low_FP profile `(1, 1, 0.22)`.
pub const REWARD_LOW_FP: Profile = Profile {
    name: "reward_low_FP",
    a_tp: 1.0,
    a_fn: 1.0,
    a_fp: 0.22,
};

/// NAB's reward_low_FN profile `(1, 2, 0.11)`.
pub const REWARD_LOW_FN: Profile = Profile {
    name: "reward_low_FN",
    a_tp: 1.0,
    a_fn: 2.0,
    a_fp: 0.11,
};

/// The three profiles, in the order standard, low-FP, low-FN.
pub const PROFILES: [Profile; 3] = [STANDARD, REWARD_LOW_FP, REWARD_LOW_FN];

/// NAB's scaled sigmoid `s(y) = 2 / (1 + e^(5y)) - 1`: +1 far to the left,
/// 0 at `y = 0`, -1 far to the right.
#[must_use]
pub fn scaled_sigmoid(y: f64) -> f64 {
    2.0 / (1.0 + (5.0 * y).exp()) - 1.0
}

/// Rows at the start of a file during which alerts are ignored:
/// `min(floor(0.15 * n), 750)`.
#[must_use]
pub fn probation(n: usize) -> usize {
    (n.saturating_mul(15) / 100).min(750)
}

/// An anomaly window, as inclusive row indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First row inside the window.
    pub start: usize,
    /// Last row inside the window.
    pub end: usize,
}

impl Window {
    /// Number of rows in the window (0 if `end < start`).
    #[must_use]
    pub fn width(&self) -> usize {
        self.end.saturating_add(1).saturating_sub(self.start)
    }
}

/// Score of one file under one profile.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FileScore {
    /// Raw (un-normalised) score.
    pub raw: f64,
    /// Windows scored (those ending after the probation).
    pub windows: usize,
    /// Windows with at least one alert.
    pub detected: usize,
    /// Windows with no alert.
    pub missed: usize,
    /// Alerts after the probation outside every window.
    pub false_positives: usize,
}

impl FileScore {
    /// Adds another score to this one.
    pub fn add(&mut self, other: &FileScore) {
        self.raw += other.raw;
        self.windows += other.windows;
        self.detected += other.detected;
        self.missed += other.missed;
        self.false_positives += other.false_positives;
    }
}

/// Scores the alerts (row indices, any order) raised on a file of `n` rows
/// with the given windows (sorted, disjoint), under `profile`.
///
/// An alert on the first row of a window scores exactly `A_TP`, a window
/// with no alert `-A_FN` (see the unit tests below and
/// `tests/anomaly_nab.rs`).
#[must_use]
pub fn score_file(n: usize, windows: &[Window], alerts: &[usize], profile: &Profile) -> FileScore {
    let prob = probation(n);
    let mut sorted: Vec<usize> = alerts
        .iter()
        .copied()
        .filter(|&i| i >= prob && i < n)
        .collect();
    sorted.sort_unstable();
    sorted.dedup();

    let mut first_alert: Vec<Option<usize>> = vec![None; windows.len()];
    let mut score = FileScore::default();
    let s_minus_one = scaled_sigmoid(-1.0);

    for &i in &sorted {
        if let Some(k) = windows.iter().position(|w| w.start <= i && i <= w.end) {
            if first_alert[k].is_none() {
                first_alert[k] = Some(i);
            }
            continue;
        }
        score.false_positives += 1;
        let previous = windows.iter().filter(|w| w.end < i).max_by_key(|w| w.end);
        score.raw += match previous {
            Some(w) if w.width() > 1 => {
                let y = (i - w.end) as f64 / (w.width() - 1) as f64;
                profile.a_fp * scaled_sigmoid(y)
            }
            _ => -profile.a_fp,
        };
    }

    for (w, first) in windows.iter().zip(&first_alert) {
        if w.end < prob {
            continue;
        }
        score.windows += 1;
        match first {
            Some(i) => {
                score.detected += 1;
                let y = -((w.end - i + 1) as f64) / w.width() as f64;
                score.raw += profile.a_tp * scaled_sigmoid(y) / s_minus_one;
            }
            None => {
                score.missed += 1;
                score.raw -= profile.a_fn;
            }
        }
    }
    score
}

/// Normalises a raw score over `windows` windows:
/// `100 * (raw - null) / (perfect - null)`. `None` when there are no windows.
#[must_use]
pub fn normalise(raw: f64, windows: usize, profile: &Profile) -> Option<f64> {
    if windows == 0 {
        return None;
    }
    let null = -profile.a_fn * windows as f64;
    let perfect = profile.a_tp * windows as f64;
    Some(100.0 * (raw - null) / (perfect - null))
}

/// Errors loading the NAB corpus.
#[derive(Debug)]
#[non_exhaustive]
pub enum NabError {
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The labels file is not valid JSON.
    Json(serde_json::Error),
    /// The labels file is valid JSON but not the expected shape
    /// (`{"file": [["start", "end"], ...], ...}`).
    Labels(String),
}

impl fmt::Display for NabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NabError::Io { path, source } => write!(f, "reading {}: {source}", path.display()),
            NabError::Json(e) => write!(f, "labels file: {e}"),
            NabError::Labels(what) => write!(f, "labels file: {what}"),
        }
    }
}

impl std::error::Error for NabError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NabError::Io { source, .. } => Some(source),
            NabError::Json(e) => Some(e),
            NabError::Labels(_) => None,
        }
    }
}

/// One labelled series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Path relative to the data folder, e.g. `realKnownCause/nyc_taxi.csv`.
    pub name: String,
    /// The category (first path component), e.g. `realKnownCause`.
    pub category: String,
    /// The values, one per row (unparseable cells become NaN).
    pub values: Vec<f64>,
    /// Anomaly windows as row indices.
    pub windows: Vec<Window>,
}

/// Normalises a NAB timestamp to `YYYY-MM-DD HH:MM:SS` (drops fractions).
fn normalise_timestamp(ts: &str) -> &str {
    let ts = ts.trim();
    ts.get(..19).unwrap_or(ts)
}

/// Loads every file named in the labels file, in name order.
pub fn load_corpus(data_dir: &Path, labels_path: &Path) -> Result<Vec<Series>, NabError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| NabError::Io {
            path: path.to_owned(),
            source,
        })
    };
    let labels = parse_labels(&read(labels_path)?)?;
    let mut corpus = Vec::with_capacity(labels.len());
    for (name, label_windows) in labels {
        let text = read(&data_dir.join(&name))?;
        let mut stamps = Vec::new();
        let mut values = Vec::new();
        for line in text.lines().skip(1) {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (ts, v) = line.split_once(',').unwrap_or((line, ""));
            stamps.push(normalise_timestamp(ts).to_owned());
            values.push(v.trim().parse::<f64>().unwrap_or(f64::NAN));
        }
        let mut windows = Vec::new();
        for (from, to) in label_windows {
            let (from, to) = (normalise_timestamp(&from), normalise_timestamp(&to));
            let start = stamps.iter().position(|t| t.as_str() >= from);
            let end = stamps.iter().rposition(|t| t.as_str() <= to);
            if let (Some(start), Some(end)) = (start, end) {
                if start <= end {
                    windows.push(Window { start, end });
                }
            }
        }
        windows.sort_by_key(|w| w.start);
        let category = name.split('/').next().unwrap_or("").to_owned();
        corpus.push(Series {
            name,
            category,
            values,
            windows,
        });
    }
    Ok(corpus)
}

type Labels = BTreeMap<String, Vec<(String, String)>>;

/// Parses `combined_windows.json`: `{"file": [["start", "end"], ...], ...}`
/// (with `serde_json`, so every JSON escape, `\uXXXX` and surrogate pairs
/// included, is decoded). A file named twice keeps its last entry.
fn parse_labels(text: &str) -> Result<Labels, NabError> {
    use serde_json::Value;
    let shape = |what: String| NabError::Labels(what);
    let root: Value = serde_json::from_str(text).map_err(NabError::Json)?;
    let Value::Object(files) = root else {
        return Err(shape("expected an object of file names".to_owned()));
    };
    let mut out = Labels::new();
    for (name, windows) in files {
        let Value::Array(windows) = windows else {
            return Err(shape(format!("{name:?}: expected an array of windows")));
        };
        let mut pairs = Vec::with_capacity(windows.len());
        for window in &windows {
            match window.as_array().map(Vec::as_slice) {
                Some([Value::String(from), Value::String(to)]) => {
                    pairs.push((from.clone(), to.clone()));
                }
                _ => {
                    return Err(shape(format!(
                        "{name:?}: expected a window [\"start\", \"end\"], got {window}"
                    )))
                }
            }
        }
        out.insert(name, pairs);
    }
    Ok(out)
}

/// Runs a detector over a series causally and returns the rows it alerted on.
#[must_use]
pub fn run_detector(mut detector: Detector, values: &[f64]) -> Vec<usize> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, &v)| detector.observe(v).map(|_| i))
        .collect()
}

/// Results of one detector on one file.
#[derive(Debug, Clone)]
pub struct FileResult {
    /// Series name (path relative to the data folder).
    pub name: String,
    /// Category.
    pub category: String,
    /// Rows.
    pub rows: usize,
    /// Rows alerted on (all, including probation).
    pub alerts: Vec<usize>,
    /// Scores under [`PROFILES`], same order.
    pub scores: [FileScore; 3],
}

/// Results of one detector on a corpus.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Per-file results, in corpus order.
    pub files: Vec<FileResult>,
}

/// Streams every series of the corpus through a fresh detector built from `config` and scores
/// its alerts: [`evaluate`] with [`run_detector`]. An invalid `config` is an error, before any
/// series is read.
pub fn evaluate_config(
    corpus: &[Series],
    config: &DetectorConfig,
) -> Result<Evaluation, ConfigError> {
    // Built (and validated) once; every series gets a clone of the fresh detector, which is
    // the same as building it again.
    let fresh = config.clone().build()?;
    Ok(evaluate(corpus, |s| run_detector(fresh.clone(), &s.values)))
}

/// Scores `alerts_of(series)` on every series of the corpus.
pub fn evaluate<F>(corpus: &[Series], mut alerts_of: F) -> Evaluation
where
    F: FnMut(&Series) -> Vec<usize>,
{
    let files = corpus
        .iter()
        .map(|s| {
            let alerts = alerts_of(s);
            let scores = PROFILES.map(|p| score_file(s.values.len(), &s.windows, &alerts, &p));
            FileResult {
                name: s.name.clone(),
                category: s.category.clone(),
                rows: s.values.len(),
                alerts,
                scores,
            }
        })
        .collect();
    Evaluation { files }
}

impl Evaluation {
    /// Sum of the file scores of profile `p` (index into [`PROFILES`]) over
    /// the files accepted by `keep`.
    pub fn total<K: Fn(&FileResult) -> bool>(&self, p: usize, keep: K) -> FileScore {
        let mut t = FileScore::default();
        for f in self.files.iter().filter(|f| keep(f)) {
            t.add(&f.scores[p]);
        }
        t
    }

    /// Normalised score of profile `p` over the whole corpus.
    #[must_use]
    pub fn score(&self, p: usize) -> f64 {
        let t = self.total(p, |_| true);
        normalise(t.raw, t.windows, &PROFILES[p]).unwrap_or(0.0)
    }

    /// Normalised score of profile `p` over one category (`None` if it has no
    /// windows).
    #[must_use]
    pub fn category_score(&self, p: usize, category: &str) -> Option<f64> {
        let t = self.total(p, |f| f.category == category);
        normalise(t.raw, t.windows, &PROFILES[p])
    }

    /// Alerts raised after the probation in a category (on
    /// `artificialNoAnomaly` every one is a false positive).
    #[must_use]
    pub fn scored_alerts(&self, category: &str) -> usize {
        self.files
            .iter()
            .filter(|f| f.category == category)
            .map(|f| {
                let prob = probation(f.rows);
                f.alerts.iter().filter(|&&i| i >= prob).count()
            })
            .sum()
    }

    /// Alerts raised in a category, including during the probation.
    #[must_use]
    pub fn all_alerts(&self, category: &str) -> usize {
        self.files
            .iter()
            .filter(|f| f.category == category)
            .map(|f| f.alerts.len())
            .sum()
    }

    /// Category names, sorted.
    #[must_use]
    pub fn categories(&self) -> Vec<String> {
        let mut c: Vec<String> = self.files.iter().map(|f| f.category.clone()).collect();
        c.sort();
        c.dedup();
        c
    }
}

/// Outcome of [`leave_one_category_out`].
#[derive(Debug, Clone)]
pub struct Loco {
    /// Per held-out category: (category, index of the candidate chosen on
    /// the other categories, held-out score of that candidate).
    pub folds: Vec<(String, usize, FileScore)>,
    /// Held-out scores summed over the folds.
    pub total: FileScore,
    /// The profile tuned and scored.
    pub profile: Profile,
}

impl Loco {
    /// Normalised held-out score over the whole corpus.
    #[must_use]
    pub fn score(&self) -> f64 {
        normalise(self.total.raw, self.total.windows, &self.profile).unwrap_or(0.0)
    }
}

impl fmt::Display for Loco {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (cat, pick, s) in &self.folds {
            let norm = normalise(s.raw, s.windows, &self.profile)
                .map_or_else(|| "   n/a".to_owned(), |v| format!("{v:6.2}"));
            writeln!(
                f,
                "  held out {cat:<24} candidate #{pick:<3} score {norm} raw {:8.3} FP {}",
                s.raw, s.false_positives
            )?;
        }
        write!(f, "  LOCO {} score: {:.2}", self.profile.name, self.score())
    }
}

/// The fixed grid of candidate configurations that `examples/nab_eval.rs
/// --loco` tunes over (243 of them): the parameters that matter most, each
/// around its default. Every value was fixed before the first
/// leave-one-category-out run that used it.
///
/// warning {2.5, 3, 3.5} × surprise {1.25, 1.5, 1.75} × cooldown (=
/// `max_incident`) {72, 144, 288} × seasonal channel {off, weight 0.6,
/// weight 0.8} × record factor {off, 1.5, 2}; everything else is the
/// default.
#[must_use]
pub fn loco_grid() -> Vec<DetectorConfig> {
    let mut out = Vec::with_capacity(243);
    for warning in [2.5, 3.0, 3.5] {
        for surprise in [1.25, 1.5, 1.75] {
            for cooldown in [72, 144, 288] {
                for season_weight in [None, Some(0.6), Some(0.8)] {
                    for record_factor in [None, Some(1.5), Some(2.0)] {
                        out.push(
                            DetectorConfig::default()
                                .with_warning(warning)
                                .with_surprise(surprise, 16, 2880)
                                .with_cooldown(cooldown)
                                .with_max_incident(Some(cooldown))
                                .with_season(season_weight.map(|_| 288))
                                .with_season_weight(season_weight.unwrap_or(0.6))
                                .with_record_factor(record_factor),
                        );
                    }
                }
            }
        }
    }
    out
}

/// Leave-one-category-out: for each category, picks the candidate with the
/// best normalised score of profile `p` on the other categories (ties go to
/// the lower index) and scores it on the held-out category.
pub fn leave_one_category_out(candidates: &[Evaluation], p: usize) -> Loco {
    let profile = PROFILES[p];
    let categories = candidates
        .first()
        .map(Evaluation::categories)
        .unwrap_or_default();
    let mut folds = Vec::new();
    let mut total = FileScore::default();
    for held in &categories {
        let mut best: Option<(usize, f64)> = None;
        for (k, e) in candidates.iter().enumerate() {
            let t = e.total(p, |f| &f.category != held);
            let s = normalise(t.raw, t.windows, &profile).unwrap_or(t.raw);
            if best.map_or(true, |(_, b)| s > b) {
                best = Some((k, s));
            }
        }
        if let Some((k, _)) = best {
            let t = candidates[k].total(p, |f| &f.category == held);
            total.add(&t);
            folds.push((held.clone(), k, t));
        }
    }
    Loco {
        folds,
        total,
        profile,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: [Window; 1] = [Window {
        start: 300,
        end: 399,
    }];

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn anomaly_nab_sigmoid_and_probation() {
        close(scaled_sigmoid(0.0), 0.0);
        close(scaled_sigmoid(-1.0), 2.0 / (1.0 + (-5.0f64).exp()) - 1.0);
        close(scaled_sigmoid(-1.0), 0.986_614_298_151_430_3);
        assert_eq!(probation(1000), 150);
        assert_eq!(probation(4032), 604);
        assert_eq!(probation(22695), 750);
        assert_eq!(probation(6), 0);
    }

    #[test]
    fn anomaly_nab_true_positive_at_window_start_scores_one() {
        let s = score_file(1000, &W, &[300], &STANDARD);
        close(s.raw, 1.0);
        assert_eq!(
            (s.windows, s.detected, s.missed, s.false_positives),
            (1, 1, 0, 0)
        );
        // Later alerts in the same window add nothing.
        close(score_file(1000, &W, &[300, 310, 399], &STANDARD).raw, 1.0);
    }

    #[test]
    fn anomaly_nab_true_positive_at_window_end_and_middle() {
        let end = score_file(1000, &W, &[399], &STANDARD).raw;
        close(end, scaled_sigmoid(-0.01) / scaled_sigmoid(-1.0));
        close(end, 0.025_333_905_068_325_23);
        let mid = score_file(1000, &W, &[350], &STANDARD).raw;
        close(mid, scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0));
    }

    #[test]
    fn anomaly_nab_missed_window_scores_minus_a_fn() {
        close(score_file(1000, &W, &[], &STANDARD).raw, -1.0);
        close(score_file(1000, &W, &[], &REWARD_LOW_FN).raw, -2.0);
    }

    #[test]
    fn anomaly_nab_false_positive_before_any_window() {
        let s = score_file(1000, &W, &[200], &STANDARD);
        close(s.raw, -0.11 - 1.0);
        assert_eq!(s.false_positives, 1);
        close(
            score_file(1000, &W, &[200], &REWARD_LOW_FP).raw,
            -0.22 - 1.0,
        );
    }

    #[test]
    fn anomaly_nab_false_positive_after_a_window_is_discounted() {
        // Right after the window: |r' - i| / (w' - 1) = 1 / 99.
        let s = score_file(1000, &W, &[300, 400], &STANDARD);
        close(s.raw, 1.0 + 0.11 * scaled_sigmoid(1.0 / 99.0));
        // Far after: approaches -A_FP.
        let far = score_file(1000, &W, &[300, 999], &STANDARD).raw - 1.0;
        close(far, 0.11 * scaled_sigmoid(600.0 / 99.0));
        assert!(far < -0.1099 && far > -0.11);
    }

    #[test]
    fn anomaly_nab_probation_ignores_alerts_and_windows() {
        // n = 1000: probation is rows 0..150.
        let early = [Window {
            start: 10,
            end: 100,
        }];
        let s = score_file(1000, &early, &[50], &STANDARD);
        assert_eq!(s.windows, 0);
        close(s.raw, 0.0);
        // An alert in probation is ignored: the window is missed.
        close(score_file(1000, &W, &[149], &STANDARD).raw, -1.0);
        // A false positive after an unscored window is still discounted by it.
        let s = score_file(1000, &early, &[101 + 150], &STANDARD);
        close(s.raw, 0.11 * scaled_sigmoid(151.0 / 90.0));
    }

    #[test]
    fn anomaly_nab_odd_input_does_not_panic() {
        let odd = [
            Window {
                start: 500,
                end: 400,
            },
            Window {
                start: 0,
                end: usize::MAX,
            },
        ];
        assert_eq!(odd[0].width(), 0);
        let s = score_file(1000, &odd, &[usize::MAX, 999, 600], &STANDARD);
        // The inverted window is never hit and counts as missed; the huge one
        // catches the in-range alerts.
        assert_eq!((s.windows, s.detected, s.missed), (2, 1, 1));
        assert_eq!(score_file(0, &[], &[0, 1], &STANDARD), FileScore::default());
    }

    #[test]
    fn anomaly_nab_normalisation() {
        assert_eq!(normalise(-3.0, 3, &STANDARD), Some(0.0));
        assert_eq!(normalise(3.0, 3, &STANDARD), Some(100.0));
        assert_eq!(normalise(0.0, 4, &STANDARD), Some(50.0));
        assert_eq!(normalise(-4.0, 2, &REWARD_LOW_FN), Some(0.0));
        assert_eq!(normalise(1.0, 0, &STANDARD), None);
    }

    #[test]
    fn anomaly_nab_parse_labels() {
        let l = parse_labels(
            r#"{ "a/x.csv": [], "b/y.csv": [["2014-01-01 00:00:00.000000", "2014-01-02 00:00:00"],
               ["2014-02-01 00:00:00", "2014-02-02 00:00:00"]] }"#,
        )
        .unwrap();
        assert_eq!(l.len(), 2);
        assert!(l["a/x.csv"].is_empty());
        assert_eq!(l["b/y.csv"].len(), 2);
        assert_eq!(l["b/y.csv"][0].0, "2014-01-01 00:00:00.000000");
        assert!(matches!(
            parse_labels("{\"a\": [[\"x\"]]}"),
            Err(NabError::Labels(_))
        ));
        assert!(matches!(parse_labels("["), Err(NabError::Json(_))));
        assert!(matches!(parse_labels("[]"), Err(NabError::Labels(_))));
        assert!(matches!(
            parse_labels("{\"a\": [[\"x\", 1]]}"),
            Err(NabError::Labels(_))
        ));
        assert!(parse_labels("{}").unwrap().is_empty());
        assert_eq!(
            normalise_timestamp(" 2014-01-01 00:00:00.000000"),
            "2014-01-01 00:00:00"
        );
    }

    #[test]
    fn anomaly_nab_parse_labels_decodes_escapes() {
        // The hand-written parser this replaced turned `\u00e9` into `u00e9`.
        let l = parse_labels(
            r#"{"caf\u00e9/s\u00e9rie.csv": [["2014-01-01 00:00:00", "2014-01-02\t00:00:00"]],
                "smile/\ud83d\ude00 \"q\" \\ \/.csv": []}"#,
        )
        .unwrap();
        let names: Vec<&str> = l.keys().map(String::as_str).collect();
        assert_eq!(names, ["café/série.csv", "smile/\u{1F600} \"q\" \\ /.csv"]);
        assert_eq!(l["café/série.csv"][0].1, "2014-01-02\t00:00:00");
        // A lone surrogate is not valid JSON text.
        assert!(matches!(
            parse_labels(r#"{"\ud83d": []}"#),
            Err(NabError::Json(_))
        ));
    }

    #[test]
    fn anomaly_nab_error_sources() {
        use std::error::Error as _;
        let json = parse_labels("{").unwrap_err();
        assert!(json.source().is_some());
        assert!(json.to_string().starts_with("labels file: "));
        let shape = parse_labels("[]").unwrap_err();
        assert!(shape.source().is_none());
        let missing = load_corpus(
            Path::new("/nonexistent-nab-dir"),
            Path::new("/nonexistent-nab-dir/labels.json"),
        )
        .unwrap_err();
        assert!(matches!(missing, NabError::Io { .. }));
        assert!(missing.source().is_some());
        assert!(missing.to_string().contains("nonexistent-nab-dir"));
    }

    #[test]
    fn anomaly_nab_loco_picks_on_other_categories() {
        let file = |cat: &str, alerts: Vec<usize>| FileResult {
            name: format!("{cat}/f.csv"),
            category: cat.to_owned(),
            rows: 1000,
            scores: PROFILES.map(|p| score_file(1000, &W, &alerts, &p)),
            alerts,
        };
        // Candidate 0 is perfect on A, misses B; candidate 1 the reverse.
        let c0 = Evaluation {
            files: vec![file("A", vec![300]), file("B", vec![])],
        };
        let c1 = Evaluation {
            files: vec![file("A", vec![]), file("B", vec![300])],
        };
        let loco = leave_one_category_out(&[c0, c1], 0);
        // Holding out A picks candidate 1 (best on B), which misses A, and
        // the other way round: every held-out window is missed.
        assert_eq!(loco.folds[0].1, 1);
        assert_eq!(loco.folds[1].1, 0);
        close(loco.total.raw, -2.0);
        close(loco.score(), 0.0);
    }
}
