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
}

/// A circular-buffer z-score anomaly detector.
///
/// Each finite sample is compared with the mean and standard deviation of
/// the previous `window` samples: `z = (x - mean) / max(sd, floor)`. When
/// `|z|` (or `z`, `-z` for one-sided detectors) reaches `warning`, the
/// detector raises one [`Anomaly`] and enters an incident, which lasts until
/// `|z|` falls below `clear`; and no second alert is raised for `cooldown`
/// samples. Anomalous samples enter the baseline clamped, so an incident
/// does not inflate the variance it is measured against.
///
/// Memory is fixed at creation (one `f64` per window slot); `observe` is
/// O(1) amortised and never allocates.
///
/// ```
/// use dwcp_telemetry::anomaly::{DetectorConfig, Severity};
///
/// let mut d = DetectorConfig::new().with_window(64).build().unwrap();
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
    cfg: DetectorConfig,
    ring: RollingWindow,
    smoothed: f64,
    has_smoothed: bool,
    in_incident: bool,
    peak: f64,
    peak_decay: f64,
    gate: SurpriseGate,
    cooldown_left: usize,
    last_z: f64,
    last_scored: bool,
    observed: u64,
    alerts: u64,
    suppressed: u64,
    invalid: u64,
}

impl Detector {
    /// A detector with the default configuration.
    #[must_use]
    pub fn with_defaults() -> Self {
        Self::from_valid_config(DetectorConfig::default())
    }

    pub(crate) fn from_valid_config(cfg: DetectorConfig) -> Self {
        let recompute = cfg.recompute_every.unwrap_or(cfg.window);
        let gate = SurpriseGate::new(cfg.surprise_short, cfg.surprise_half_life);
        let peak_decay = (-std::f64::consts::LN_2 / cfg.peak_half_life.max(1) as f64).exp();
        Self {
            ring: RollingWindow::new(cfg.window, recompute),
            cfg,
            smoothed: 0.0,
            has_smoothed: false,
            in_incident: false,
            peak: 0.0,
            peak_decay,
            gate,
            cooldown_left: 0,
            last_z: 0.0,
            last_scored: false,
            observed: 0,
            alerts: 0,
            suppressed: 0,
            invalid: 0,
        }
    }

    /// The configuration this detector was built from.
    #[must_use]
    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    /// Heap bytes owned by this detector (the ring).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.ring.heap_bytes()
    }

    /// The scale the next sample would be divided by: the baseline standard
    /// deviation, floored by `min_scale` and `relative_scale_floor * |mean|`.
    #[must_use]
    pub fn scale(&self) -> f64 {
        let floor = self
            .cfg
            .min_scale
            .max(self.cfg.relative_scale_floor * self.ring.mean().abs());
        self.ring.sample_sd().max(floor)
    }

    /// Feeds one sample. Returns `Some` only for the first anomalous sample
    /// of an incident, outside any cooldown. NaN and infinite values are
    /// counted in [`Snapshot::invalid`] and otherwise ignored.
    #[must_use = "an alert is returned only once per incident"]
    pub fn observe(&mut self, value: f64) -> Option<Anomaly> {
        self.last_scored = false;
        if !value.is_finite() {
            self.invalid += 1;
            return None;
        }
        self.observed += 1;
        let alpha = self.cfg.smoothing;
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

        if self.ring.len() < self.cfg.min_samples {
            self.ring.push(value);
            self.last_z = 0.0;
            return None;
        }

        let mean = self.ring.mean();
        let scale = self.scale();
        let z = (tested - mean) / scale;
        self.last_z = z;
        self.last_scored = true;
        let deviation = match self.cfg.direction {
            Direction::Both => z.abs(),
            Direction::Up => z,
            Direction::Down => -z,
        };

        let threshold = self.cfg.warning.max(self.cfg.peak_ratio * self.peak);
        self.peak = (self.peak * self.peak_decay).max(deviation);

        let surprising = if self.cfg.surprise > 0.0 {
            self.gate.update(deviation) >= self.cfg.surprise
        } else {
            true
        };

        let cooling = self.cooldown_left > 0;
        if cooling {
            self.cooldown_left -= 1;
        }

        let mut alert = None;
        if deviation >= threshold && surprising {
            if self.in_incident || cooling {
                self.suppressed += 1;
            } else {
                self.alerts += 1;
                self.cooldown_left = self.cfg.cooldown;
                alert = Some(Anomaly {
                    severity: if deviation >= self.cfg.critical {
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
                });
            }
            self.in_incident = true;
        } else if self.in_incident && deviation < self.cfg.clear {
            self.in_incident = false;
        }

        let stored = match self.cfg.baseline_clip {
            Some(c) => value.clamp(mean - c * scale, mean + c * scale),
            None => value,
        };
        self.ring.push(stored);
        alert
    }

    /// Current state.
    #[must_use]
    pub fn state(&self) -> DetectorState {
        if self.ring.len() < self.cfg.min_samples {
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
        self.smoothed = 0.0;
        self.has_smoothed = false;
        self.in_incident = false;
        self.peak = 0.0;
        self.gate.reset();
        self.cooldown_left = 0;
        self.last_z = 0.0;
        self.last_scored = false;
        self.observed = 0;
        self.alerts = 0;
        self.suppressed = 0;
        self.invalid = 0;
    }
}

impl Default for Detector {
    fn default() -> Self {
        Self::with_defaults()
    }
}
