//! The z-score detector: baseline ring, thresholds, hysteresis and cooldown.

use super::config::DetectorConfig;
use super::ring::RollingWindow;
use super::surprise::SurpriseGate;

/// Which deviations from the baseline count as anomalies; also the side on
/// which an [`Anomaly`] deviated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Both sides (configuration only).
    #[default]
    Both,
    /// Above the baseline (e.g. latency, error rate).
    Up,
    /// Below the baseline (e.g. throughput, success rate).
    Down,
}

impl Direction {
    /// Lower-case name: `both`, `up`, `down`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Both => "both",
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// How far out an anomaly is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// |z| at or above the warning threshold.
    Warning,
    /// |z| at or above the critical threshold.
    Critical,
}

impl Severity {
    /// Lower-case name: `warning` or `critical` (handy as a metric label).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One alert: the first anomalous sample of an incident.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anomaly {
    /// Warning or critical.
    pub severity: Severity,
    /// Signed z-score of the tested value against the baseline.
    pub z: f64,
    /// The observed value.
    pub value: f64,
    /// Side of the deviation: [`Direction::Up`] or [`Direction::Down`].
    pub direction: Direction,
    /// Baseline mean at the time of the alert.
    pub baseline_mean: f64,
    /// Scale (floored standard deviation) at the time of the alert.
    pub baseline_scale: f64,
}

/// Where a detector is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetectorState {
    /// Fewer than `min_samples` in the baseline: never alerts.
    Warming,
    /// Watching; the next anomalous sample raises an alert.
    Normal,
    /// Inside an incident (|z| has not yet fallen below `clear`).
    Anomalous,
    /// Incident over, but within `cooldown` samples of the last alert.
    CoolingDown,
}

/// A point-in-time view of a detector, see [`Detector::snapshot`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// Samples currently in the baseline window.
    pub n: usize,
    /// Finite samples observed since creation (or reset).
    pub observed: u64,
    /// Baseline mean.
    pub mean: f64,
    /// Baseline sample standard deviation (before the scale floor).
    pub sd: f64,
    /// z-score of the last finite sample (0 while warming).
    pub last_z: f64,
    /// Current state.
    pub state: DetectorState,
    /// Alerts raised.
    pub alerts: u64,
    /// Anomalous samples that raised no alert (same incident, or cooldown).
    pub suppressed: u64,
    /// NaN or infinite inputs, ignored.
    pub invalid: u64,
    /// Largest recent deviation (|z| or its one-sided version), decaying
    /// with the surprise gate's half-life and never below `warning`: the
    /// level the record bypass compares against (times `record_factor`).
    /// Stays at `warning` when the surprise gate is off (nothing to bypass).
    pub record: f64,
}

/// A circular-buffer z-score anomaly detector.
///
/// Each finite sample `x` (or its exponential smoothing, if configured) is
/// scored against the mean and standard deviation of the previous `window`
/// samples: `z = (x - mean) / max(sd, floors)`. A sample is anomalous when
/// `|z|` (`z` or `-z` for a one-sided detector) reaches `warning` and the
/// surprise gate agrees that the recent run of |z| is unusual for this
/// series, or the deviation is `record_factor` times the largest recent one,
/// or it reaches `gate_bypass`. (With a seasonal channel the deviation is
/// the larger of the plain and the weighted seasonal one.) The first
/// anomalous sample raises one [`Anomaly`] and opens an
/// incident, which lasts until `|z|` falls below `clear` (or for at most
/// `max_incident` samples); no second alert is raised during the incident
/// or within `cooldown` samples of the alert. Those anomalous samples are
/// counted as suppressed.
///
/// Memory is fixed at creation (one `f64` per window slot plus a few
/// hundred bytes); `observe` is O(1) amortised and never allocates.
///
/// ```
/// use dwcp_telemetry::anomaly::{DetectorConfig, Severity};
///
/// let mut d = DetectorConfig::new()
///     .with_window(64)
///     .with_min_samples(32)
///     .build()
///     .unwrap();
/// for i in 0..200 {
///     assert!(d.observe(10.0 + (i % 5) as f64).is_none());
/// }
/// let a = d.observe(100.0).expect("a spike is an anomaly");
/// assert_eq!(a.severity, Severity::Critical);
/// assert!(d.observe(101.0).is_none(), "same incident: no second alert");
/// assert_eq!(d.snapshot().alerts, 1);
/// ```
#[derive(Debug, Clone)]
pub struct Detector {
    // Hot state and the configuration the hot path reads, copied out of
    // `cfg` at build time: together, ahead of the cold fields.
    ring: RollingWindow,
    smoothed: f64,
    scale: f64,
    inv_scale: f64,
    /// `cfg.smoothing`.
    alpha: f64,
    /// `cfg.warning`.
    warning: f64,
    /// `cfg.surprise` squared (0: gate off).
    surprise_sq: f64,
    gate_bypass: f64,
    /// Largest recent deviation, decayed by `record_decay` per push (in
    /// steps, by `refresh_scale`).
    record: f64,
    /// `2^(-1 / surprise_half_life)`, and its `SCALE_REFRESH`-th power.
    record_decay: f64,
    record_decay_steady: f64,
    /// `cfg.record_factor`, or +inf when the record bypass is off.
    record_factor: f64,
    /// `cfg.min_samples`.
    min_samples: usize,
    /// `cfg.baseline_clip`.
    clip: Option<f64>,
    cooldown_left: usize,
    last_z: f64,
    observed: u64,
    /// Pushes until the next scale refresh (once the ring is full).
    refresh_left: u32,
    /// Sign-bit masks for `cfg.direction`: `Both` clears the sign (`abs`),
    /// `Up` keeps it, `Down` flips it (negation).
    sign_keep: u64,
    sign_flip: u64,
    /// `cfg.surprise > 0`.
    gate_on: bool,
    has_smoothed: bool,
    in_incident: bool,
    last_scored: bool,
    season: Season,
    gate: SurpriseGate,
    // Cold: read on alerts, incidents, snapshots.
    incident_len: usize,
    smoothing_sd: f64,
    alerts: u64,
    suppressed: u64,
    invalid: u64,
    cfg: DetectorConfig,
}

/// Once the ring is full, the scale (a square root and a division per
/// channel) is recomputed every this many pushes. A 1024-sample standard
/// deviation barely moves in 8 pushes; while the ring fills it is
/// recomputed on every push.
const SCALE_REFRESH: u32 = 8;

/// Largest deviation the record bypass remembers (see `record`).
const RECORD_CAP: f64 = 1e12;

/// The sign bit of an `f64`.
const SIGN: u64 = 1 << 63;

impl Detector {
    /// A detector with the default configuration.
    #[must_use]
    pub fn with_defaults() -> Self {
        Self::from_valid_config(DetectorConfig::default())
    }

    pub(crate) fn from_valid_config(cfg: DetectorConfig) -> Self {
        let recompute = cfg.recompute_every().unwrap_or(cfg.window());
        let gate_bypass = cfg.gate_bypass().unwrap_or(f64::INFINITY);
        let warning = cfg.warning();
        let record_factor = cfg.record_factor().unwrap_or(f64::INFINITY);
        let record_decay = (-std::f64::consts::LN_2 / cfg.surprise_half_life().max(1) as f64).exp();
        // Standard deviation of an EWMA of independent samples, relative to
        // theirs: sqrt(alpha / (2 - alpha)) (the EWMA control chart).
        let smoothing_sd = (cfg.smoothing() / (2.0 - cfg.smoothing())).sqrt();
        let gate = SurpriseGate::new(cfg.surprise_short(), cfg.surprise_half_life());
        let period = cfg.season().filter(|&p| p < cfg.window()).unwrap_or(0);
        let season = Season::new(period, cfg.window(), cfg.season_weight() / smoothing_sd);
        let mut detector = Self {
            season,
            ring: RollingWindow::new(cfg.window(), recompute),
            alpha: cfg.smoothing(),
            warning: cfg.warning(),
            surprise_sq: cfg.surprise() * cfg.surprise(),
            min_samples: cfg.min_samples(),
            clip: cfg.baseline_clip(),
            sign_keep: if cfg.direction() == Direction::Both {
                !SIGN
            } else {
                !0
            },
            sign_flip: if cfg.direction() == Direction::Down {
                SIGN
            } else {
                0
            },
            gate_on: cfg.surprise() > 0.0,
            cfg,
            smoothed: 0.0,
            has_smoothed: false,
            in_incident: false,
            scale: 0.0,
            inv_scale: 0.0,
            gate_bypass,
            record: warning,
            record_decay,
            record_decay_steady: record_decay.powi(SCALE_REFRESH as i32),
            record_factor,
            smoothing_sd,
            refresh_left: 0,
            incident_len: 0,
            gate,
            cooldown_left: 0,
            last_z: 0.0,
            last_scored: false,
            observed: 0,
            alerts: 0,
            suppressed: 0,
            invalid: 0,
        };
        detector.refresh_scale();
        detector
    }

    /// The configuration this detector was built from.
    #[must_use]
    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    /// Heap bytes owned by this detector (the ring and, with a seasonal
    /// channel, one flag byte per ring slot).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.ring.heap_bytes() + std::mem::size_of_val::<[u8]>(&self.season.flags)
    }

    /// The scale the next sample will be divided by: the baseline standard
    /// deviation, floored by `min_scale` and `relative_scale_floor * |mean|`
    /// (refreshed every push while the ring fills, then every 8 pushes).
    #[must_use]
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Feeds one sample. Returns `Some` only for the first anomalous sample
    /// of an incident, outside any cooldown. NaN and infinite values are
    /// counted in [`Snapshot::invalid`] and otherwise ignored.
    #[must_use = "an alert is returned only once per incident"]
    #[inline]
    pub fn observe(&mut self, value: f64) -> Option<Anomaly> {
        self.last_scored = false;
        // `is_finite()` as one float comparison (NaN fails it too).
        let finite = value.abs() < f64::INFINITY;
        if !finite {
            self.invalid += 1;
            return None;
        }
        self.observed += 1;
        let alpha = self.alpha;
        let tested = if alpha >= 1.0 {
            value
        } else if self.has_smoothed {
            self.smoothed += alpha * (value - self.smoothed);
            self.smoothed
        } else {
            self.has_smoothed = true;
            self.smoothed = value;
            value
        };

        // Seasonal residual against the sample one period ago, unless that
        // sample was itself anomalous (no echo of a past spike).
        let mut season_z = 0.0;
        // One comparison: `lag` is `usize::MAX` when the channel is off.
        if self.season.lag <= self.ring.len() {
            let slot = self.ring.slot_back(self.season.lag);
            if !self.season.flagged(slot) {
                let r = value - self.ring.slot_value(slot);
                season_z = self.season.score(r, alpha);
            }
        }

        let slot = self.ring.next_slot();
        if self.ring.len() < self.min_samples {
            self.warm_up(slot, value);
            return None;
        }

        // The sample is scored against the baseline as it was before this
        // push; the push and the scale refresh come first in program order
        // anyway, so that their long dependency chains (the sliding update,
        // then a square root and a division every few pushes) start early
        // and overlap with the scoring below instead of delaying the next
        // sample's z-score.
        let mean = self.ring.mean();
        let scale = self.scale;
        let inv_scale = self.inv_scale;
        let stored = match self.clip {
            // max/min rather than clamp: never panics, even if an overflow
            // made the bounds NaN.
            Some(c) => value.max(mean - c * scale).min(mean + c * scale),
            None => value,
        };
        self.ring.push(stored);
        // `refresh_scale` set the countdown to 1 while the ring fills (a
        // refresh on every push) and to `SCALE_REFRESH` from the push that
        // fills it on.
        self.refresh_left -= 1;
        if self.refresh_left == 0 {
            self.refresh_scale();
        }

        let z = (tested - mean) * inv_scale;
        self.last_z = z;
        self.last_scored = true;
        // `abs`, identity or negation (per `direction`) as two bit
        // operations on the sign: exactly what `abs` and `-` do.
        let side = |v: f64| f64::from_bits((v.to_bits() & self.sign_keep) ^ self.sign_flip);
        let deviation = side(z).max(side(season_z));

        // With the gate off every sample is "surprising" and the record
        // (a bypass of the gate) has nothing to do.
        let surprising = if self.gate_on {
            self.gate.update(deviation, self.surprise_sq) | self.record_break(deviation)
        } else {
            true
        };

        let anomalous = deviation >= self.warning;
        // Non-short-circuit: one well-predicted branch on the rare outcome
        // instead of one on `anomalous`, which a series hovering around the
        // warning level flips often.
        let gated = anomalous & (surprising | (deviation >= self.gate_bypass));
        // Quiet sample outside any incident or cooldown: nothing to update.
        let alert = if gated | self.in_incident | (self.cooldown_left > 0) {
            self.incident(gated, z, value, deviation, mean, scale)
        } else {
            None
        };

        self.season.set_flag(slot, anomalous);
        alert
    }

    /// Record bypass of the surprise gate: is `deviation` well beyond the
    /// largest recent one (at least `warning`, so at least `record_factor *
    /// warning`)? Also raises the record. With the rule off the bound is
    /// +inf, which no deviation exceeds. The record stays within
    /// `[warning, RECORD_CAP]`: the two selects below are a `minsd` and a
    /// `maxsd`, without a branch; an overflowed (+inf) deviation is stored
    /// as the cap, so it cannot switch the rule off for good, and a NaN one
    /// (only possible with both scale floors set to 0) passes the first
    /// select and fails the second, keeping the old record. `f64::min`/`max`
    /// would add NaN handling on top. The decay and the floor are applied in
    /// `refresh_scale`.
    #[inline(always)]
    fn record_break(&mut self, deviation: f64) -> bool {
        let broken = deviation > self.record * self.record_factor;
        let capped = if deviation > RECORD_CAP {
            RECORD_CAP
        } else {
            deviation
        };
        self.record = if capped > self.record {
            capped
        } else {
            self.record
        };
        broken
    }

    /// Cooldown, incident and alert bookkeeping for a sample that is gated
    /// anomalous, or arrives during an incident or a cooldown.
    #[inline]
    fn incident(
        &mut self,
        gated: bool,
        z: f64,
        value: f64,
        deviation: f64,
        mean: f64,
        scale: f64,
    ) -> Option<Anomaly> {
        let cooling = self.cooldown_left > 0;
        if cooling {
            self.cooldown_left -= 1;
        }

        if self.in_incident {
            self.incident_len += 1;
            if self
                .cfg
                .max_incident()
                .is_some_and(|m| self.incident_len > m)
            {
                self.in_incident = false;
            }
        }

        let mut alert = None;
        if gated {
            if self.in_incident || cooling {
                self.suppressed += 1;
            } else {
                alert = Some(self.raise(z, value, deviation, mean, scale));
            }
            self.in_incident = true;
        } else if self.in_incident && deviation < self.cfg.clear() {
            self.in_incident = false;
        }
        alert
    }

    /// A sample during warm-up: stored, not scored.
    #[cold]
    #[inline(never)]
    fn warm_up(&mut self, slot: usize, value: f64) {
        self.season.set_flag(slot, false);
        self.ring.push(value);
        self.refresh_scale();
        self.last_z = 0.0;
    }

    #[cold]
    fn raise(&mut self, z: f64, value: f64, deviation: f64, mean: f64, scale: f64) -> Anomaly {
        self.alerts += 1;
        self.cooldown_left = self.cfg.cooldown();
        self.incident_len = 0;
        Anomaly {
            severity: if deviation >= self.cfg.critical() {
                Severity::Critical
            } else {
                Severity::Warning
            },
            z,
            value,
            direction: if z >= 0.0 {
                Direction::Up
            } else {
                Direction::Down
            },
            baseline_mean: mean,
            baseline_scale: scale,
        }
    }

    /// Computes the scales (square roots and divisions) for the next
    /// samples now, right after a push, so that this latency overlaps with
    /// the caller's work instead of delaying the next z-score.
    #[inline]
    fn refresh_scale(&mut self) {
        // Every push until the ring is full; every `SCALE_REFRESH` pushes
        // once the next push leaves it full.
        // The record decays by one factor per push until the next refresh.
        let (refresh, decay) = if self.ring.len() + 1 >= self.ring.capacity() {
            (SCALE_REFRESH, self.record_decay_steady)
        } else {
            (1, self.record_decay)
        };
        self.refresh_left = refresh;
        // Floored at `warning`: before the series has deviated much (right
        // after the warm-up, say), the bypass still needs `record_factor`
        // times the warning level, not just any anomalous sample.
        self.record = (self.record * decay).max(self.warning);
        let floor = self
            .cfg
            .min_scale()
            .max(self.cfg.relative_scale_floor() * self.ring.mean().abs());
        self.scale = self.ring.sample_sd().max(floor);
        self.inv_scale = 1.0 / (self.scale * self.smoothing_sd);
        if self.season.period > 0 {
            self.season.inv_scale = self.season.gain / self.season.var.sqrt().max(floor);
        }
    }

    /// Current state.
    #[must_use]
    pub fn state(&self) -> DetectorState {
        if self.ring.len() < self.cfg.min_samples() {
            DetectorState::Warming
        } else if self.in_incident {
            DetectorState::Anomalous
        } else if self.cooldown_left > 0 {
            DetectorState::CoolingDown
        } else {
            DetectorState::Normal
        }
    }

    /// A point-in-time view of the detector.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            n: self.ring.len(),
            observed: self.observed,
            mean: self.ring.mean(),
            sd: self.ring.sample_sd(),
            last_z: self.last_z,
            state: self.state(),
            alerts: self.alerts,
            suppressed: self.suppressed,
            invalid: self.invalid,
            record: self.record,
        }
    }

    /// z-score of the last finite sample (0 while warming).
    #[must_use]
    pub fn last_z(&self) -> f64 {
        self.last_z
    }

    /// `true` when the last call to [`observe`](Self::observe) computed a
    /// z-score (finite input, warm-up over).
    #[must_use]
    pub fn last_was_scored(&self) -> bool {
        self.last_scored
    }

    /// Forgets every sample and counter (keeps the allocation and config).
    pub fn reset(&mut self) {
        self.ring.clear();
        self.season.reset();
        self.refresh_scale();
        self.smoothed = 0.0;
        self.has_smoothed = false;
        self.in_incident = false;
        self.incident_len = 0;
        self.record = self.warning;
        self.gate.reset();
        self.season.reset();
        self.cooldown_left = 0;
        self.last_z = 0.0;
        self.last_scored = false;
        self.observed = 0;
        self.alerts = 0;
        self.suppressed = 0;
        self.invalid = 0;
    }
}

/// Seasonal channel: an EWMA of the residual `x[t] - x[t - period]`, scored
/// against an exponentially weighted mean and variance of past residuals
/// (half-life about `window / 2.9` samples).
#[derive(Debug, Clone)]
struct Season {
    /// 0: channel off.
    period: usize,
    /// `period`, or `usize::MAX` when the channel is off.
    lag: usize,
    /// Residuals after which `score` takes its steady-state path: the
    /// weight is `alpha` and the channel scores.
    steady: u64,
    /// One byte per ring slot (empty when the channel is off): was that
    /// sample anomalous (deviation at or above `warning`)? Such samples are
    /// not used as seasonal references. A byte rather than a bit: reading
    /// and writing a flag is then one load or store instead of a
    /// shift-and-mask read-modify-write, which saved about 0.8 ns per
    /// sample for 896 more bytes at the default window.
    flags: Box<[u8]>,
    alpha: f64,
    /// `1 - alpha`.
    keep_alpha: f64,
    /// Samples after which the weight `1/n` falls below `alpha`.
    switch: u64,
    /// `season_weight / sqrt(alpha_smoothing / (2 - alpha_smoothing))`.
    gain: f64,
    /// `gain / max(sd, floor)`, refreshed with the detector's scale.
    inv_scale: f64,
    n: u64,
    smoothed: f64,
    mean: f64,
    var: f64,
}

/// Residuals seen before the seasonal channel scores at all.
const SEASON_MIN: u64 = 32;

impl Season {
    fn new(period: usize, window: usize, gain: f64) -> Self {
        let alpha = 2.0 / (window as f64 + 1.0);
        let slots = if period > 0 { window } else { 0 };
        let switch = (1.0 / alpha).ceil() as u64;
        Self {
            period,
            lag: if period > 0 { period } else { usize::MAX },
            steady: switch.max(SEASON_MIN),
            flags: vec![0; slots].into_boxed_slice(),
            alpha,
            keep_alpha: 1.0 - alpha,
            switch,
            gain,
            inv_scale: 0.0,
            n: 0,
            smoothed: 0.0,
            mean: 0.0,
            var: 0.0,
        }
    }

    #[inline]
    fn flagged(&self, slot: usize) -> bool {
        self.flags[slot] != 0
    }

    #[inline]
    fn set_flag(&mut self, slot: usize, on: bool) {
        if let Some(f) = self.flags.get_mut(slot) {
            *f = u8::from(on);
        }
    }

    /// Feeds residual `r`; returns the seasonal z-score (already weighted):
    /// the smoothed residual minus the mean of past residuals, times
    /// `inv_scale`. 0 until `SEASON_MIN` residuals have been seen.
    #[inline]
    fn score(&mut self, r: f64, smoothing: f64) -> f64 {
        if self.n >= self.steady {
            // n > 0, n >= SEASON_MIN and n + 1 > switch: the general path
            // below with its tests resolved (`n` no longer matters and
            // stays put).
            self.smoothed += smoothing * (r - self.smoothed);
            let out = (self.smoothed - self.mean) * self.inv_scale;
            let d = r - self.mean;
            self.mean += self.alpha * d;
            self.var = self.keep_alpha * (self.var + self.alpha * d * d);
            return out;
        }
        self.score_early(r, smoothing)
    }

    /// `score` for the first `steady` residuals.
    #[cold]
    #[inline(never)]
    fn score_early(&mut self, r: f64, smoothing: f64) -> f64 {
        self.smoothed = if self.n == 0 {
            r
        } else {
            self.smoothed + smoothing * (r - self.smoothed)
        };
        let out = if self.n >= SEASON_MIN {
            (self.smoothed - self.mean) * self.inv_scale
        } else {
            0.0
        };
        self.n += 1;
        let d = r - self.mean;
        if self.n < self.switch {
            let w = 1.0 / self.n as f64;
            let keep = 1.0 - w;
            self.mean += w * d;
            self.var = keep * (self.var + w * d * d);
        } else {
            // Steady state: the same arithmetic with `w = alpha`.
            self.mean += self.alpha * d;
            self.var = self.keep_alpha * (self.var + self.alpha * d * d);
        }
        out
    }

    fn reset(&mut self) {
        self.flags.fill(0);
        self.n = 0;
        self.smoothed = 0.0;
        self.mean = 0.0;
        self.var = 0.0;
        self.inv_scale = 0.0;
    }
}

impl Default for Detector {
    fn default() -> Self {
        Self::with_defaults()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::ConfigError;

    /// The plain statistic: raw samples, no surprise gate, no clamp.
    fn plain(window: usize) -> DetectorConfig {
        DetectorConfig::new()
            .with_window(window)
            .with_min_samples(8)
            .with_smoothing(1.0)
            .with_surprise(0.0, 1, 1)
            .with_baseline_clip(None)
            .with_clear(1.0)
            .with_cooldown(0)
    }

    /// Alternating 10, 11: mean 10.5, sd ≈ 0.5.
    fn calm(d: &mut Detector, n: usize) -> usize {
        (0..n)
            .filter(|i| d.observe(10.0 + (i % 2) as f64).is_some())
            .count()
    }

    #[test]
    fn anomaly_detector_exact_mean_and_sd() {
        let mut d = plain(8).build().unwrap();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            assert!(d.observe(x).is_none());
        }
        let s = d.snapshot();
        assert_eq!(s.n, 8);
        assert_eq!(s.observed, 8);
        assert_eq!(s.mean, 5.0);
        assert!((s.sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        // The next sample is scored against the previous window.
        let _ = d.observe(5.0 + 2.0 * s.sd);
        assert!((d.last_z() - 2.0).abs() < 1e-12);
        assert!(d.last_was_scored());
    }

    #[test]
    fn anomaly_detector_warm_up() {
        let mut d = plain(64).with_min_samples(10).build().unwrap();
        for i in 0..9 {
            let x = if i == 5 { 1e6 } else { 1.0 };
            assert!(d.observe(x).is_none());
            assert_eq!(d.state(), DetectorState::Warming);
            assert!(!d.last_was_scored());
        }
        assert!(d.observe(1.0).is_none());
        assert_eq!(d.snapshot().n, 10);
        assert_eq!(d.state(), DetectorState::Normal);
        assert_eq!(d.snapshot().alerts, 0);
    }

    #[test]
    fn anomaly_detector_one_incident_one_alert_and_cooldown() {
        let mut d = plain(64)
            .with_cooldown(50)
            .with_baseline_clip(Some(3.0))
            .build()
            .unwrap();
        assert_eq!(calm(&mut d, 64), 0);
        assert_eq!(d.state(), DetectorState::Normal);
        // A five-sample incident raises exactly one alert.
        let alerts = (0..5).filter(|_| d.observe(20.0).is_some()).count();
        assert_eq!(alerts, 1);
        assert_eq!(d.state(), DetectorState::Anomalous);
        let s = d.snapshot();
        assert_eq!((s.alerts, s.suppressed), (1, 4));
        // Back to normal: incident over, cooldown still running.
        assert_eq!(calm(&mut d, 10), 0);
        assert_eq!(d.state(), DetectorState::CoolingDown);
        // A new spike inside the cooldown is suppressed...
        assert!(d.observe(20.0).is_none());
        assert_eq!(d.snapshot().suppressed, 5);
        // ...and once the cooldown is over, the next one alerts.
        assert_eq!(calm(&mut d, 40), 0);
        assert_eq!(d.state(), DetectorState::Normal);
        assert!(d.observe(20.0).is_some());
        assert_eq!(d.snapshot().alerts, 2);
    }

    #[test]
    fn anomaly_detector_hysteresis_without_cooldown() {
        let mut d = plain(64)
            .with_baseline_clip(Some(3.0))
            .with_clear(1.0)
            .build()
            .unwrap();
        assert_eq!(calm(&mut d, 64), 0);
        assert!(d.observe(14.0).is_some());
        // Still above `clear` (z ≈ 2.5 < warning): same incident, no alert.
        assert!(d.observe(11.8).is_none());
        assert!(d.observe(14.0).is_none());
        assert_eq!(d.snapshot().alerts, 1);
        // Below `clear`: the incident ends, a new one alerts at once.
        assert!(d.observe(10.5).is_none());
        assert_eq!(d.state(), DetectorState::Normal);
        assert!(d.observe(14.0).is_some());
        assert_eq!(d.snapshot().alerts, 2);
    }

    #[test]
    fn anomaly_detector_direction_filters() {
        let run = |dir: Direction, x: f64| {
            let mut d = plain(64).with_direction(dir).build().unwrap();
            calm(&mut d, 64);
            d.observe(x)
        };
        let up = run(Direction::Up, 20.0).unwrap();
        assert_eq!(up.direction, Direction::Up);
        assert!(up.z > 0.0);
        assert!(run(Direction::Up, 1.0).is_none());
        let down = run(Direction::Down, 1.0).unwrap();
        assert_eq!(down.direction, Direction::Down);
        assert!(down.z < 0.0);
        assert!(run(Direction::Down, 20.0).is_none());
        assert!(run(Direction::Both, 20.0).is_some());
        assert!(run(Direction::Both, 1.0).is_some());
    }

    #[test]
    fn anomaly_detector_severity() {
        let run = |x: f64| {
            let mut d = plain(64).build().unwrap();
            calm(&mut d, 64);
            d.observe(x)
        };
        let sd = {
            let mut d = plain(64).build().unwrap();
            calm(&mut d, 64);
            d.snapshot().sd
        };
        let warn = run(10.5 + 4.0 * sd).unwrap();
        assert_eq!(warn.severity, Severity::Warning);
        assert!((warn.z - 4.0).abs() < 1e-9);
        assert_eq!(warn.value, 10.5 + 4.0 * sd);
        assert_eq!(warn.baseline_mean, 10.5);
        let crit = run(10.5 - 6.0 * sd).unwrap();
        assert_eq!(crit.severity, Severity::Critical);
        assert!((crit.z + 6.0).abs() < 1e-9);
        assert!(run(10.5 + 2.9 * sd).is_none());
    }

    #[test]
    fn anomaly_detector_scale_floor_on_constant_series() {
        let mut d = plain(1024).build().unwrap();
        for _ in 0..2_000 {
            assert!(d.observe(5.0).is_none());
        }
        let s = d.snapshot();
        assert_eq!((s.mean, s.sd, s.last_z), (5.0, 0.0, 0.0));
        // 1% relative floor: 5.01 is z = 0.2, no alert, no division by zero.
        assert_eq!(d.scale(), 0.05);
        assert!(d.observe(5.01).is_none());
        assert!((d.last_z() - 0.2).abs() < 1e-9);

        // A flat zero series has no relative floor: the absolute floor holds.
        let mut d = plain(64).build().unwrap();
        for _ in 0..100 {
            assert!(d.observe(0.0).is_none());
        }
        assert_eq!(d.scale(), 1e-9);
        let a = d.observe(1e-3).expect("any move off a flat zero line");
        assert!(a.z.is_finite());
        assert!((a.z - 1e6).abs() < 1e-3);
        assert_eq!(a.severity, Severity::Critical);
    }

    #[test]
    fn anomaly_detector_non_finite_input_is_counted_and_ignored() {
        let mut d = plain(16).build().unwrap();
        for x in [1.0, 2.0, 3.0] {
            let _ = d.observe(x);
        }
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -f64::NAN] {
            assert!(d.observe(x).is_none());
        }
        let s = d.snapshot();
        assert_eq!((s.invalid, s.observed, s.n), (4, 3, 3));
        assert_eq!(s.mean, 2.0);
        assert_eq!(s.sd, 1.0);
        d.reset();
        let s = d.snapshot();
        assert_eq!((s.invalid, s.observed, s.n, s.alerts), (0, 0, 0, 0));
        assert_eq!(d.heap_bytes(), 16 * 8);
    }

    #[test]
    fn anomaly_detector_state_cycle() {
        let mut d = plain(64).with_cooldown(5).build().unwrap();
        assert_eq!(d.state(), DetectorState::Warming);
        calm(&mut d, 64);
        assert_eq!(d.state(), DetectorState::Normal);
        assert!(d.observe(30.0).is_some());
        assert_eq!(d.state(), DetectorState::Anomalous);
        let _ = d.observe(10.5);
        assert_eq!(d.state(), DetectorState::CoolingDown);
        calm(&mut d, 4);
        assert_eq!(d.state(), DetectorState::Normal);
    }

    #[test]
    fn anomaly_detector_surprise_gate_quietens_routine_spikes() {
        // A 10σ spike every 50 samples is routine for this series.
        let series = |i: usize| {
            if i % 50 == 49 {
                30.0
            } else {
                10.0 + (i % 2) as f64
            }
        };
        let count = |cfg: DetectorConfig| {
            let mut d = cfg.build().unwrap();
            (0..5_000)
                .filter(|&i| d.observe(series(i)).is_some())
                .count()
        };
        let base = plain(1024).with_min_samples(32).with_cooldown(0);
        let ungated = count(base.clone());
        let gated = count(base.with_surprise(2.0, 16, 2880));
        assert_eq!(ungated, 100);
        assert_eq!(gated, 1);
    }

    #[test]
    fn anomaly_detector_record_bypass_pages_on_an_unprecedented_spike() {
        // Routine spikes (z ≈ 7 once the baseline holds them) every 50
        // samples, and at sample 12_049 one spike twice as large: the gate
        // has learnt that spikes are routine, but none was ever this large.
        let series = |i: usize| {
            if i == 12_049 {
                50.0
            } else if i % 50 == 49 {
                30.0
            } else {
                10.0 + (i % 2) as f64
            }
        };
        let run = |record: Option<f64>| {
            let mut d = plain(1024)
                .with_min_samples(32)
                .with_surprise(2.0, 16, 2880)
                .with_record_factor(record)
                .build()
                .unwrap();
            let mut at = Vec::new();
            let mut before = 0.0;
            for i in 0..13_000 {
                if i == 12_049 {
                    before = d.snapshot().record;
                }
                if d.observe(series(i)).is_some() {
                    at.push(i);
                }
            }
            (at, before)
        };
        // Without the rule the gate silences the big spike too. (The first
        // spike alerts either way: its z ≈ 39 against a spike-free baseline
        // reaches the fixed bypass of 20.)
        let (off, _) = run(None);
        assert_eq!(off, vec![49]);
        // With it, the unprecedented spike pages; the routine ones stay quiet.
        let (on, record) = run(Some(1.5));
        assert_eq!(on, vec![49, 12_049]);
        // The record before the big spike is the routine spikes' deviation,
        // measured 6.884 (a spike's z against a 1024-sample baseline that
        // holds 20 or 21 spikes): the first spike's 39 has decayed away over
        // 12_000 samples of half-life 2880.
        assert!((6.8..7.0).contains(&record), "record {record}");
        // Factor 3: the big spike is not 3x the routine ones.
        let (strict, _) = run(Some(3.0));
        assert_eq!(strict, vec![49]);
    }

    #[test]
    fn anomaly_detector_record_survives_an_infinite_deviation() {
        // 1e308 against a baseline of ones (scale floored at 0.01) overflows
        // z to +inf: it alerts, and the record ends up at a finite cap
        // instead of +inf, which would switch the record bypass off for
        // good.
        let mut d = plain(16)
            .with_surprise(1.5, 16, 2880)
            .with_record_factor(Some(1.5))
            .build()
            .unwrap();
        for _ in 0..16 {
            let _ = d.observe(1.0);
        }
        let a = d.observe(1e308).expect("alerts");
        assert_eq!(a.z, f64::INFINITY);
        assert_eq!(d.snapshot().record, RECORD_CAP);
        // The next samples (z still overflows against the stale scale, then
        // the huge sample leaves the 16-slot window) keep it within bounds.
        for _ in 0..32 {
            let _ = d.observe(1.0);
            let record = d.snapshot().record;
            assert!((3.0..=RECORD_CAP).contains(&record), "{record}");
        }
        // Decayed by at most 32 pushes of half-life 2880 since the cap.
        assert!(d.snapshot().record >= RECORD_CAP * 0.99);
    }

    #[test]
    fn anomaly_detector_max_incident_ends_a_lasting_shift() {
        // A level shift from ~10.5 to 20 that the 1024-sample baseline takes
        // long to absorb: z stays above `clear` for hundreds of samples.
        let run = |max_incident: Option<usize>| {
            let mut d = plain(1024)
                .with_cooldown(20)
                .with_max_incident(max_incident)
                .build()
                .unwrap();
            calm(&mut d, 1024);
            let alerts = (0..100).filter(|_| d.observe(20.0).is_some()).count();
            (alerts, d.snapshot().suppressed)
        };
        // Unlimited: one incident, one alert, 99 suppressed samples.
        assert_eq!(run(None), (1, 99));
        // Incidents capped at 30 samples: a reminder every 31 samples while
        // the shift is still 3σ out.
        assert_eq!(run(Some(30)), (4, 96));
    }

    #[test]
    fn anomaly_detector_extreme_finite_values_do_not_panic() {
        for clip in [None, Some(3.0)] {
            let mut d = plain(16).with_baseline_clip(clip).build().unwrap();
            for i in 0..100 {
                let x = if i % 2 == 0 { f64::MAX } else { -f64::MAX };
                let _ = d.observe(x);
            }
            let s = d.snapshot();
            assert_eq!(s.observed, 100);
            // Overflowed z-scores never leave an infinite or NaN record.
            assert!((0.0..=RECORD_CAP).contains(&s.record), "{}", s.record);
        }
    }

    /// A sine of period 48 with a little deterministic jitter.
    fn daily(i: usize) -> f64 {
        let phase = (i % 48) as f64 / 48.0 * std::f64::consts::TAU;
        10.0 + 5.0 * phase.sin() + 0.1 * ((i * 7919) % 13) as f64 / 13.0
    }

    /// Alert rows of `cfg` on the daily series with `edit` applied.
    fn alerts_on(cfg: DetectorConfig, n: usize, edit: impl Fn(usize, f64) -> f64) -> Vec<usize> {
        let mut d = cfg.build().unwrap();
        (0..n)
            .filter(|&i| d.observe(edit(i, daily(i))).is_some())
            .collect()
    }

    #[test]
    fn anomaly_detector_season_sees_a_shape_change_within_range() {
        // From row 700, one cycle is held flat at its mean: every value is
        // inside the normal range, so the plain z-score stays quiet.
        let flat = |i: usize, x: f64| if (700..748).contains(&i) { 10.05 } else { x };
        let base = DetectorConfig::new()
            .with_window(256)
            .with_min_samples(96)
            .with_cooldown(48)
            .with_max_incident(Some(48));
        assert_eq!(
            alerts_on(base.clone().with_season(None), 1_000, flat),
            Vec::<usize>::new()
        );
        assert_eq!(
            alerts_on(base.clone().with_season(Some(48)), 1_000, flat),
            vec![700]
        );
        // Untouched, neither alerts.
        assert_eq!(
            alerts_on(base.with_season(Some(48)), 1_000, |_, x| x),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn anomaly_detector_season_does_not_echo_a_past_spike() {
        // One spike at row 500: it alerts once, and its seasonal echo one
        // period later (row 548, where x - x[t - 48] is hugely negative)
        // does not, because an anomalous sample is never a reference.
        let spike = |i: usize, x: f64| if i == 500 { 40.0 } else { x };
        let cfg = DetectorConfig::new()
            .with_window(256)
            .with_min_samples(96)
            .with_cooldown(10)
            .with_max_incident(Some(10))
            .with_season(Some(48));
        assert_eq!(alerts_on(cfg.clone(), 700, spike), vec![500]);
        let d = cfg.build().unwrap();
        // Ring plus one flag byte per slot.
        assert_eq!(d.heap_bytes(), 256 * 8 + 256);
        // A period not shorter than the window leaves the channel off.
        let off = DetectorConfig::new().with_window(64).with_min_samples(32);
        assert_eq!(off.build().unwrap().heap_bytes(), 64 * 8);
    }

    #[test]
    fn anomaly_detector_build_rejects_bad_config() {
        assert_eq!(
            DetectorConfig::new().with_window(0).build().unwrap_err(),
            ConfigError::WindowTooSmall(0)
        );
        assert!(matches!(
            DetectorConfig::new().with_surprise(1.0, 0, 10).build(),
            Err(ConfigError::InvalidSurprise { short: 0, .. })
        ));
        assert_eq!(
            DetectorConfig::new()
                .with_season(Some(0))
                .build()
                .unwrap_err(),
            ConfigError::InvalidSeason
        );
        assert_eq!(
            DetectorConfig::new()
                .with_season_weight(1.5)
                .build()
                .unwrap_err(),
            ConfigError::InvalidSeasonWeight(1.5)
        );
        let d = Detector::default();
        assert_eq!(d.config(), &DetectorConfig::default());
        assert_eq!(d.config().season(), Some(288));
        assert_eq!(d.heap_bytes(), 1024 * 8 + 1024);
        assert_eq!(Severity::Critical.as_str(), "critical");
        assert_eq!(Direction::Down.as_str(), "down");
    }
}
